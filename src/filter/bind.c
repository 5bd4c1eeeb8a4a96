/* bind.c - resolving a filter tree's names against an engine's catalog (filter_bind).
 *
 * Fills each condition's bound fields (attribute index, event type, property index,
 * value type) and checks that every operator fits the type it reads and every value
 * is of that type, so evaluation never meets a mismatch. Errors name the JSON path of
 * the bad node and, for an unknown name, the closest known ones. Workload: once per
 * parse and again when the catalog changes; a tree has at most a few hundred nodes.
 */
#include "filter.h"
#include "../base/alloc.h"
#include "../base/fold.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct binder {
    const engine *e;
    const filter_resolver *resolver;
    segd_error *err;
    char path[sizeof ((segd_error *)0)->field];
} binder;

/* Edit distance between two names, capped at cap + 1 (enough to rank suggestions). */
static size_t edit_distance(const char *a, const char *b, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return cap + 1;
    if ((la > lb ? la - lb : lb - la) > cap) return cap + 1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Collects up to 3 names closest to `name` (edit distance <= max(2, len / 3), or a
 * shared prefix of 3+ characters) into buf as `"a", "b"`; empty when none is close. */
typedef struct suggest {
    const char *name;
    size_t cap;
    const char *best[3];
    size_t dist[3];
} suggest;

static void suggest_init(suggest *s, const char *name)
{
    memset(s, 0, sizeof *s);
    s->name = name;
    size_t len = strlen(name);
    s->cap = len / 3 > 2 ? len / 3 : 2;
}

static void suggest_offer(suggest *s, const char *candidate)
{
    if (!candidate) return;
    size_t d = edit_distance(s->name, candidate, s->cap);
    if (d > s->cap) {
        size_t la = strlen(s->name);
        if (la < 3 || strncmp(s->name, candidate, la < 3 ? la : 3) != 0) return;
        d = s->cap;   /* a shared prefix ranks like the farthest close name */
    }
    for (int i = 0; i < 3; i++) {
        if (!s->best[i] || d < s->dist[i]) {
            for (int k = 2; k > i; k--) {
                s->best[k] = s->best[k - 1];
                s->dist[k] = s->dist[k - 1];
            }
            s->best[i] = candidate;
            s->dist[i] = d;
            return;
        }
    }
}

/* " Did you mean "a" or "b"?" or "" */
static const char *suggest_text(const suggest *s, char *buf, size_t cap)
{
    buf[0] = 0;
    int n = 0;
    while (n < 3 && s->best[n]) n++;
    if (n == 0) return buf;
    size_t used = (size_t)snprintf(buf, cap, " Did you mean ");
    for (int i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s\"%.60s\"",
                                 i == 0 ? "" : i == n - 1 ? " or " : ", ", s->best[i]);
    if (used < cap) snprintf(buf + used, cap - used, "?");
    return buf;
}

static int bind_error(binder *b, const char *code, const char *fmt, const char *a, const char *c)
{
    char msg[400];
    snprintf(msg, sizeof msg, fmt, a, c);
    segd_error_set(b->err, 422, code, "%s", msg);
    snprintf(b->err->field, sizeof b->err->field, "%s", b->path);
    return SEGD_EINVAL;
}

/* Path helpers: push appends a suffix, returning the old length to restore. */
static size_t path_push(binder *b, const char *fmt, uint32_t i)
{
    size_t old = strlen(b->path);
    snprintf(b->path + old, sizeof b->path - old, fmt, i);
    return old;
}

static void path_pop(binder *b, size_t old)
{
    b->path[old] = 0;
}

static const char *kind_name(filter_lit_kind kind)
{
    switch (kind) {
    case FLIT_STRING: return "a string";
    case FLIT_NUMBER: return "a number";
    case FLIT_BOOL: return "a boolean";
    }
    return "a value";
}

/* The literal kind a value of `type` is written as. */
static filter_lit_kind literal_kind_for(segd_type type)
{
    switch (type) {
    case SEGD_T_NUMBER: return FLIT_NUMBER;
    case SEGD_T_BOOL: return FLIT_BOOL;
    default: return FLIT_STRING;
    }
}

/* Checks that node n's operator fits `type` and its values are of that type. `what`
 * names the thing compared ("attribute \"plan\"") for messages. */
static int check_op_and_values(binder *b, const filter_node *n, segd_type type, const char *what)
{
    if (!filter_op_fits(n->op, type)) {
        char ops[300], msg[200];
        filter_ops_for_type(type, ops, sizeof ops);
        snprintf(msg, sizeof msg, "%s is a %s", what, segd_type_name(type));
        size_t old = path_push(b, ".op", 0);
        segd_error_set(b->err, 422, "operator_mismatch",
                       "Operator \"%s\" does not apply here: %s. Use one of: %s.",
                       filter_op_name(n->op), msg, ops[0] ? ops : "none (this type cannot be filtered)");
        snprintf(b->err->field, sizeof b->err->field, "%s", b->path);
        int rc = SEGD_EINVAL;
        path_pop(b, old);
        return rc;
    }
    filter_lit_kind want = literal_kind_for(type);
    for (uint32_t i = 0; i < n->n_values; i++) {
        const filter_literal *v = &n->values[i];
        int ok;
        if (type == SEGD_T_DATETIME) {
            /* durations are checked by the parser; dates and date-times arrive parsed */
            ok = n->op == FOP_MORE_THAN_AGO || n->op == FOP_LESS_THAN_AGO || v->is_time;
        } else {
            ok = v->kind == want && !v->is_time;
            if (v->kind == want && v->is_time && type == SEGD_T_STRING) ok = 1;
        }
        if (!ok) {
            size_t old = n->n_values > 1 ? path_push(b, ".value[%u]", i) : path_push(b, ".value", 0);
            char msg[200];
            snprintf(msg, sizeof msg, "%s is a %s, so the value must be %s", what,
                     segd_type_name(type),
                     type == SEGD_T_DATETIME ? "an ISO 8601 date-time such as \"2026-11-28T09:00:00Z\""
                                             : kind_name(want));
            segd_error_set(b->err, 422, "value_mismatch", "The value is %s, but %s.", kind_name(v->kind), msg);
            snprintf(b->err->field, sizeof b->err->field, "%s", b->path);
            path_pop(b, old);
            return SEGD_EINVAL;
        }
    }
    return 0;
}

static int bind_node(binder *b, filter_node *n, int event_type);

/* Folds the string literals of a case-insensitive string or list condition once, so
 * evaluation compares without folding them again (or frees folds a rebinding no longer
 * needs). */
static void fold_literals(filter_node *n)
{
    int want = (n->type == SEGD_T_STRING || n->type == SEGD_T_LIST) && !n->case_sensitive;
    fold_buf fb = { 0 };
    for (uint32_t i = 0; i < n->n_values; i++) {
        filter_literal *v = &n->values[i];
        free(v->folded);
        v->folded = NULL;
        v->folded_len = 0;
        if (!want || v->kind != FLIT_STRING || !v->str) continue;
        fold_utf8(v->str, v->len, &fb);
        v->folded = xstrndup(fb.s, fb.len);
        v->folded_len = fb.len;
    }
    fold_buf_release(&fb);
}

/* FNV-1a 64 over bytes, continuing h. */
static uint64_t mix(uint64_t h, const void *p, size_t len)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < len; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

#define MIX(h, x) mix((h), &(x), sizeof(x))

/* A structural hash of a bound where tree (kinds, operators, properties, values). */
static uint64_t tree_hash(uint64_t h, const filter_node *n)
{
    if (!n) return mix(h, "-", 1);
    int kind = n->kind, op = n->op, index = n->index, cs = n->case_sensitive;
    h = MIX(h, kind);
    h = MIX(h, op);
    h = MIX(h, index);
    h = MIX(h, cs);
    h = MIX(h, n->duration_ms);
    h = MIX(h, n->offset_min);
    h = MIX(h, n->n_values);
    for (uint32_t i = 0; i < n->n_values; i++) {
        const filter_literal *v = &n->values[i];
        int k = v->kind;
        h = MIX(h, k);
        h = MIX(h, v->number);
        h = MIX(h, v->boolean);
        h = MIX(h, v->time_ms);
        if (v->str) h = mix(h, v->str, v->len + 1);
    }
    h = MIX(h, n->n_children);
    for (uint32_t i = 0; i < n->n_children; i++) h = tree_hash(h, n->children[i]);
    return h;
}

/* The metric key of a bound event node: everything its metric reads but op and value. */
static uint64_t metric_key(const filter_node *n)
{
    uint64_t h = 14695981039346656037ULL;
    int type = n->index, fn = n->fn, prop = n->metric_prop, window = n->window;
    h = MIX(h, type);
    h = MIX(h, fn);
    h = MIX(h, prop);
    h = MIX(h, window);
    if (n->window == FWIN_WITHIN) h = MIX(h, n->within_ms);
    if (n->window == FWIN_RANGE) {
        h = MIX(h, n->from_ms);
        h = MIX(h, n->to_ms);
    }
    h = tree_hash(h, n->where);
    return h ? h : 1;
}

/* The rows key of a bound event node: its type and where, nothing else. */
static uint64_t rows_key(const filter_node *n)
{
    uint64_t h = 1099511628211ULL;
    int type = n->index;
    h = MIX(h, type);
    h = tree_hash(h, n->where);
    return h ? h : 1;
}

/* The names an unknown name is compared with: attributes, event types, or the
 * properties of one event type. */
typedef enum { NAMES_ATTRIBUTES, NAMES_EVENTS, NAMES_PROPERTIES } name_kind;

/* 422 for an unknown name (code, with the sentence `fmt` taking a and c), with the
 * closest known names of that kind appended, at the path b->path + suffix. */
static int unknown_name(binder *b, name_kind kind, int event_type, const char *name, const char *suffix,
                        const char *code, const char *fmt, const char *a, const char *c)
{
    suggest s;
    suggest_init(&s, name);
    int n = kind == NAMES_ATTRIBUTES ? engine_attr_slots(b->e)
          : kind == NAMES_EVENTS ? engine_event_type_count(b->e) : engine_prop_count(b->e, event_type);
    for (int i = 0; i < n; i++)
        suggest_offer(&s, kind == NAMES_ATTRIBUTES ? engine_attr_name(b->e, i)
                        : kind == NAMES_EVENTS ? engine_event_type_name(b->e, i) : engine_prop_name(b->e, event_type, i));
    char hint[300];
    size_t old = path_push(b, suffix, 0);
    int rc = bind_error(b, code, fmt, a, c);
    suggest_text(&s, hint, sizeof hint);
    size_t used = strlen(b->err->message);
    snprintf(b->err->message + used, sizeof b->err->message - used, "%s", hint);
    path_pop(b, old);
    return rc;
}

static int unknown_property(binder *b, int event_type, const char *name, const char *suffix)
{
    return unknown_name(b, NAMES_PROPERTIES, event_type, name, suffix, "unknown_property",
                        "Event \"%.100s\" has no property called \"%.100s\": check the spelling.",
                        engine_event_type_name(b->e, event_type), name);
}

/* Checks a bound condition's operator and values against its type (kind names it in
 * messages: "attribute", "property") and folds its literals. */
static int bind_values(binder *b, filter_node *n, const char *kind)
{
    char what[160];
    snprintf(what, sizeof what, "%s \"%.100s\"", kind, n->name);
    int rc = check_op_and_values(b, n, n->type, what);
    if (rc == 0) fold_literals(n);
    return rc;
}

static int bind_attribute(binder *b, filter_node *n)
{
    int attr = engine_attr_find(b->e, n->name);
    if (attr < 0)
        return unknown_name(b, NAMES_ATTRIBUTES, -1, n->name, ".attribute", "unknown_attribute",
                            "No attribute is called \"%.100s\": check the spelling, or declare it with "
                            "POST /api/attributes.%s", n->name, "");
    n->index = attr;
    n->type = engine_attr_type(b->e, attr);
    return bind_values(b, n, "attribute");
}

static int bind_property(binder *b, filter_node *n, int event_type)
{
    int prop = engine_prop_find(b->e, event_type, n->name);
    if (prop < 0) return unknown_property(b, event_type, n->name, ".property");
    n->index = prop;
    n->type = engine_prop_type(b->e, event_type, prop);
    return bind_values(b, n, "property");
}

static int bind_event(binder *b, filter_node *n)
{
    int type = engine_event_type_find(b->e, n->name);
    if (type < 0)
        return unknown_name(b, NAMES_EVENTS, -1, n->name, ".event", "unknown_event",
                            "No event is called \"%.100s\": check the spelling, or declare it with "
                            "POST /api/event-types.%s", n->name, "");
    n->index = type;
    n->metric_prop = -1;
    if (n->metric_property) {
        int prop = engine_prop_find(b->e, type, n->metric_property);
        if (prop < 0) return unknown_property(b, type, n->metric_property, ".metric.property");
        size_t old = path_push(b, ".metric.property", 0);
        segd_type ptype = engine_prop_type(b->e, type, prop);
        int numeric = n->fn == FFN_SUM || n->fn == FFN_AVG || n->fn == FFN_MIN || n->fn == FFN_MAX;
        if (numeric && ptype != SEGD_T_NUMBER) {
            char msg[400];
            snprintf(msg, sizeof msg, "%s needs a numeric property, and \"%.100s\" of event \"%.100s\" is a %s: "
                     "use count_distinct, or a where condition on it.", filter_fn_name(n->fn),
                     n->metric_property, n->name, segd_type_name(ptype));
            segd_error_set(b->err, 422, "metric_mismatch", "%s", msg);
            snprintf(b->err->field, sizeof b->err->field, "%s", b->path);
            path_pop(b, old);
            return SEGD_EINVAL;
        }
        path_pop(b, old);
        n->metric_prop = prop;
    }
    n->type = n->fn == FFN_FIRST_AT || n->fn == FFN_LAST_AT ? SEGD_T_DATETIME : SEGD_T_NUMBER;
    char what[200];
    snprintf(what, sizeof what, "the %s of event \"%.100s\"", filter_fn_name(n->fn), n->name);
    int rc = check_op_and_values(b, n, n->type, what);
    if (rc) return rc;
    if (n->where) {
        size_t old = path_push(b, ".where", 0);
        rc = bind_node(b, n->where, type);
        path_pop(b, old);
    }
    if (rc == 0) {
        n->metric_key = metric_key(n);
        n->rows_key = rows_key(n);
    }
    return rc;
}

static int bind_node(binder *b, filter_node *n, int event_type)
{
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR: {
        const char *key = n->kind == FILTER_AND ? ".and[%u]" : ".or[%u]";
        for (uint32_t i = 0; i < n->n_children; i++) {
            size_t old = path_push(b, key, i);
            int rc = bind_node(b, n->children[i], event_type);
            path_pop(b, old);
            if (rc) return rc;
        }
        return 0;
    }
    case FILTER_NOT: {
        size_t old = path_push(b, ".not", 0);
        int rc = bind_node(b, n->children[0], event_type);
        path_pop(b, old);
        return rc;
    }
    case FILTER_ATTRIBUTE:
        return bind_attribute(b, n);
    case FILTER_PROPERTY:
        return bind_property(b, n, event_type);
    case FILTER_EVENT:
        return bind_event(b, n);
    case FILTER_BUCKET:
        return 0;
    case FILTER_SEGMENT:
        if (!b->resolver || !b->resolver->check || b->resolver->check(b->resolver->ctx, n->name) != 0) {
            size_t old = path_push(b, ".segment", 0);
            int rc = bind_error(b, "unknown_segment",
                                "No segment has the id \"%.100s\": list segments with GET /api/segments.%s",
                                n->name, "");
            path_pop(b, old);
            return rc;
        }
        return 0;
    }
    return SEGD_EINVAL;
}

int filter_bind(filter_node *n, const engine *e, const filter_resolver *resolver, segd_error *err)
{
    binder b = { .e = e, .resolver = resolver, .err = err };
    strcpy(b.path, "$");
    return bind_node(&b, n, -1);
}
