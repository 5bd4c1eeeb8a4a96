/* ast.c - the filter tree itself (filter.h): names of operators and metrics, which
 * operator fits which type, building, copying, comparing, freeing and checking trees.
 * Parsing and printing live in json.c and text.c, evaluation in eval.c.
 */
#include "filter.h"
#include "../base/alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[FOP_COUNT_] = {
    [FOP_NONE] = "",
    [FOP_EQ] = "eq", [FOP_NE] = "ne",
    [FOP_CONTAINS] = "contains", [FOP_NOT_CONTAINS] = "not_contains",
    [FOP_STARTS_WITH] = "starts_with", [FOP_ENDS_WITH] = "ends_with",
    [FOP_IN] = "in", [FOP_NOT_IN] = "not_in",
    [FOP_IS_SET] = "is_set", [FOP_IS_NOT_SET] = "is_not_set",
    [FOP_GT] = "gt", [FOP_GTE] = "gte", [FOP_LT] = "lt", [FOP_LTE] = "lte",
    [FOP_BETWEEN] = "between",
    [FOP_BEFORE] = "before", [FOP_AFTER] = "after",
    [FOP_MORE_THAN_AGO] = "more_than_ago", [FOP_LESS_THAN_AGO] = "less_than_ago",
    [FOP_ON_DAY] = "on_day",
    [FOP_IS_EMPTY] = "is_empty", [FOP_IS_NOT_EMPTY] = "is_not_empty",
    [FOP_IN_CACHED] = "in_cached",
};

static const char *const fn_names[FFN_COUNT_] = {
    [FFN_COUNT] = "count", [FFN_SUM] = "sum", [FFN_AVG] = "avg", [FFN_MIN] = "min",
    [FFN_MAX] = "max", [FFN_COUNT_DISTINCT] = "count_distinct",
    [FFN_FIRST_AT] = "first_at", [FFN_LAST_AT] = "last_at",
};

const char *filter_op_name(filter_op op)
{
    return op > FOP_NONE && op < FOP_COUNT_ ? op_names[op] : "";
}

filter_op filter_op_parse(const char *name, size_t len)
{
    for (int op = FOP_NONE + 1; op < FOP_COUNT_; op++)
        if (strlen(op_names[op]) == len && memcmp(op_names[op], name, len) == 0) return (filter_op)op;
    return FOP_NONE;
}

const char *filter_fn_name(filter_fn fn)
{
    return fn >= FFN_COUNT && fn < FFN_COUNT_ ? fn_names[fn] : "";
}

filter_fn filter_fn_parse(const char *name, size_t len)
{
    for (int fn = 0; fn < FFN_COUNT_; fn++)
        if (strlen(fn_names[fn]) == len && memcmp(fn_names[fn], name, len) == 0) return (filter_fn)fn;
    return FFN_COUNT_;
}

/* The operators of each type, in the order error messages list them. */
static const filter_op string_ops[] = { FOP_EQ, FOP_NE, FOP_CONTAINS, FOP_NOT_CONTAINS,
    FOP_STARTS_WITH, FOP_ENDS_WITH, FOP_IN, FOP_NOT_IN, FOP_IS_SET, FOP_IS_NOT_SET, FOP_NONE };
static const filter_op number_ops[] = { FOP_EQ, FOP_NE, FOP_GT, FOP_GTE, FOP_LT, FOP_LTE,
    FOP_BETWEEN, FOP_IN, FOP_NOT_IN, FOP_IS_SET, FOP_IS_NOT_SET, FOP_NONE };
static const filter_op bool_ops[] = { FOP_EQ, FOP_IS_SET, FOP_IS_NOT_SET, FOP_NONE };
static const filter_op datetime_ops[] = { FOP_BEFORE, FOP_AFTER, FOP_BETWEEN,
    FOP_MORE_THAN_AGO, FOP_LESS_THAN_AGO, FOP_ON_DAY, FOP_IS_SET, FOP_IS_NOT_SET, FOP_NONE };
static const filter_op list_ops[] = { FOP_CONTAINS, FOP_NOT_CONTAINS, FOP_IS_EMPTY,
    FOP_IS_NOT_EMPTY, FOP_NONE };
static const filter_op json_ops[] = { FOP_IS_SET, FOP_IS_NOT_SET, FOP_NONE };
static const filter_op no_ops[] = { FOP_NONE };

static const filter_op *ops_of(segd_type type)
{
    switch (type) {
    case SEGD_T_STRING: return string_ops;
    case SEGD_T_NUMBER: return number_ops;
    case SEGD_T_BOOL: return bool_ops;
    case SEGD_T_DATETIME: return datetime_ops;
    case SEGD_T_LIST: return list_ops;
    case SEGD_T_JSON: return json_ops;
    default: return no_ops;
    }
}

int filter_op_fits(filter_op op, segd_type type)
{
    for (const filter_op *o = ops_of(type); *o != FOP_NONE; o++)
        if (*o == op) return 1;
    return 0;
}

char *filter_ops_for_type(segd_type type, char *buf, size_t cap)
{
    size_t used = 0;
    if (cap) buf[0] = 0;
    for (const filter_op *o = ops_of(type); *o != FOP_NONE && cap; o++) {
        int n = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", op_names[*o]);
        if (n < 0 || (size_t)n >= cap - used) break;
        used += (size_t)n;
    }
    return buf;
}

/* ---- building and freeing ---- */

filter_node *filter_node_new(filter_kind kind)
{
    filter_node *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->index = -1;
    n->metric_prop = -1;
    n->type = SEGD_T_NONE;
    n->fn = FFN_COUNT;
    return n;
}

void filter_node_add(filter_node *parent, filter_node *child)
{
    parent->children = xrealloc(parent->children, (parent->n_children + 1) * sizeof *parent->children);
    parent->children[parent->n_children++] = child;
}

void filter_free(filter_node *n)
{
    if (!n) return;
    for (uint32_t i = 0; i < n->n_children; i++) filter_free(n->children[i]);
    free(n->children);
    for (uint32_t i = 0; i < n->n_values; i++) {
        free(n->values[i].str);
        free(n->values[i].folded);
    }
    free(n->values);
    free(n->name);
    free(n->metric_property);
    filter_free(n->where);
    free(n);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

filter_node *filter_clone(const filter_node *n)
{
    if (!n) return NULL;
    filter_node *c = xmalloc(sizeof *c);
    *c = *n;
    c->children = NULL;
    if (n->n_children) {
        c->children = xmalloc(n->n_children * sizeof *c->children);
        for (uint32_t i = 0; i < n->n_children; i++) c->children[i] = filter_clone(n->children[i]);
    }
    c->values = NULL;
    if (n->n_values) {
        c->values = xmalloc(n->n_values * sizeof *c->values);
        for (uint32_t i = 0; i < n->n_values; i++) {
            c->values[i] = n->values[i];
            if (n->values[i].str) {
                c->values[i].str = xmalloc(n->values[i].len + 1);
                memcpy(c->values[i].str, n->values[i].str, n->values[i].len + 1);
            }
            if (n->values[i].folded) {
                c->values[i].folded = xmalloc(n->values[i].folded_len + 1);
                memcpy(c->values[i].folded, n->values[i].folded, n->values[i].folded_len + 1);
            }
        }
    }
    c->name = dup_or_null(n->name);
    c->metric_property = dup_or_null(n->metric_property);
    c->where = filter_clone(n->where);
    return c;
}

static int str_equal(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static int literal_equal(const filter_literal *a, const filter_literal *b)
{
    if (a->kind != b->kind || a->is_time != b->is_time) return 0;
    if (a->is_time && a->time_ms != b->time_ms) return 0;
    switch (a->kind) {
    case FLIT_STRING:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case FLIT_NUMBER:
        return a->number == b->number || (isnan(a->number) && isnan(b->number));
    case FLIT_BOOL:
        return a->boolean == b->boolean;
    }
    return 0;
}

int filter_equal(const filter_node *a, const filter_node *b)
{
    if (!a || !b) return a == b;
    if (a->kind != b->kind || a->n_children != b->n_children || a->op != b->op ||
        a->case_sensitive != b->case_sensitive || a->n_values != b->n_values ||
        a->duration_ms != b->duration_ms || a->offset_min != b->offset_min ||
        a->window != b->window || a->fn != b->fn || a->bucket_from != b->bucket_from ||
        a->bucket_to != b->bucket_to)
        return 0;
    if (a->window == FWIN_WITHIN && a->within_ms != b->within_ms) return 0;
    if (a->window == FWIN_RANGE && (a->from_ms != b->from_ms || a->to_ms != b->to_ms)) return 0;
    if (!str_equal(a->name, b->name) || !str_equal(a->metric_property, b->metric_property)) return 0;
    for (uint32_t i = 0; i < a->n_children; i++)
        if (!filter_equal(a->children[i], b->children[i])) return 0;
    for (uint32_t i = 0; i < a->n_values; i++)
        if (!literal_equal(&a->values[i], &b->values[i])) return 0;
    return filter_equal(a->where, b->where);
}

/* ---- invariants ---- */

static int fail(const char *what, const filter_node *n)
{
    fprintf(stderr, "filter_check: %s (node kind %d, op %s)\n", what, (int)n->kind,
            filter_op_name(n->op));
    return -1;
}

/* How many values an operator takes: exact count, or -1 for "one or more". */
static int values_wanted(filter_op op)
{
    switch (op) {
    case FOP_IS_SET: case FOP_IS_NOT_SET: case FOP_IS_EMPTY: case FOP_IS_NOT_EMPTY:
    case FOP_IN_CACHED:
        return 0;
    case FOP_BETWEEN:
        return 2;
    case FOP_IN: case FOP_NOT_IN:
        return -1;
    default:
        return 1;
    }
}

static int check_condition_values(const filter_node *n)
{
    int want = values_wanted(n->op);
    if (want >= 0 && n->n_values != (uint32_t)want) return fail("wrong number of values", n);
    if (want < 0 && n->n_values == 0) return fail("in / not_in without values", n);
    if (n->n_values && !n->values) return fail("values missing", n);
    for (uint32_t i = 0; i < n->n_values; i++) {
        const filter_literal *v = &n->values[i];
        if (v->kind < FLIT_STRING || v->kind > FLIT_BOOL) return fail("bad literal kind", n);
        if (v->kind == FLIT_STRING && (!v->str || strlen(v->str) != v->len))
            return fail("string literal length", n);
        if (v->kind != FLIT_STRING && v->str) return fail("non-string literal with text", n);
        if (v->is_time && v->kind != FLIT_STRING) return fail("time from a non-string", n);
    }
    if (n->op == FOP_ON_DAY && (!n->values[0].is_time || n->offset_min < -24 * 60 || n->offset_min > 24 * 60))
        return fail("on_day without a parsed date", n);
    if ((n->op == FOP_BEFORE || n->op == FOP_AFTER) && !n->values[0].is_time)
        return fail("before / after without a parsed datetime", n);
    if ((n->op == FOP_MORE_THAN_AGO || n->op == FOP_LESS_THAN_AGO) && n->duration_ms <= 0)
        return fail("duration not positive", n);
    if (n->op == FOP_BETWEEN && n->values[0].kind != n->values[1].kind)
        return fail("between bounds of two kinds", n);
    return 0;
}

static int check_node(const filter_node *n, int in_where)
{
    if (!n) return fprintf(stderr, "filter_check: NULL node\n"), -1;
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR: case FILTER_NOT:
        if (n->kind == FILTER_NOT && n->n_children != 1) return fail("not needs one child", n);
        if (n->n_children && !n->children) return fail("children missing", n);
        if (n->name || n->n_values || n->where) return fail("group with condition fields", n);
        for (uint32_t i = 0; i < n->n_children; i++)
            if (check_node(n->children[i], in_where)) return -1;
        return 0;
    case FILTER_ATTRIBUTE: case FILTER_PROPERTY:
        if ((n->kind == FILTER_PROPERTY) != in_where) return fail("property outside where, or attribute inside", n);
        if (!n->name || !n->name[0]) return fail("condition without a name", n);
        if (n->op <= FOP_NONE || n->op >= FOP_COUNT_ || n->op == FOP_IN_CACHED) return fail("bad operator", n);
        if (n->n_children || n->where) return fail("condition with children", n);
        return check_condition_values(n);
    case FILTER_EVENT:
        if (in_where) return fail("event inside where", n);
        if (!n->name || !n->name[0]) return fail("event without a name", n);
        if (n->fn < FFN_COUNT || n->fn >= FFN_COUNT_) return fail("bad metric", n);
        if ((n->fn >= FFN_SUM && n->fn <= FFN_COUNT_DISTINCT) != (n->metric_property != NULL))
            return fail("metric property present iff the metric reads one", n);
        if (n->window == FWIN_WITHIN && n->within_ms <= 0) return fail("window not positive", n);
        if (n->window == FWIN_RANGE && n->from_ms > n->to_ms) return fail("window from after to", n);
        if (n->op <= FOP_NONE || n->op >= FOP_COUNT_ || n->op == FOP_IN_CACHED) return fail("bad operator", n);
        if (n->where && check_node(n->where, 1)) return -1;
        return check_condition_values(n);
    case FILTER_BUCKET:
        if (in_where) return fail("bucket inside where", n);
        if (!n->name) return fail("bucket without a salt", n);
        if (n->bucket_from < 0 || n->bucket_to > 99 || n->bucket_from > n->bucket_to)
            return fail("bucket range outside 0..99", n);
        return 0;
    case FILTER_SEGMENT:
        if (in_where) return fail("segment inside where", n);
        if (!n->name || !n->name[0]) return fail("segment without an id", n);
        if (n->op != FOP_IN && n->op != FOP_NOT_IN && n->op != FOP_IN_CACHED) return fail("bad segment operator", n);
        return 0;
    }
    return fail("unknown kind", n);
}

int filter_check(const filter_node *n)
{
    return check_node(n, 0);
}

size_t filter_words(const engine *e)
{
    return ((size_t)engine_person_limit(e) + 63) / 64;
}
