/* test_segments_diff.c - the differential test of segments: after random sequences of
 * identify, track, page, group, alias, erase and clock moves sent through ingest's
 * write path, every segment's membership must equal the SQL oracle's answer for its
 * filter at ingest's clock.
 *
 * A run opens a store and an ingest with the test clock in a temporary directory,
 * builds a small world (people with traits of every type and events around the clock,
 * some anonymous and identified or aliased later, some erased), defines 10 to 30
 * segments with random filters (diff_gen.h's trees, often joined to a time-relative
 * condition; some name earlier segments with in / not_in) and takes random steps.
 * After every step, under the read lock, segments_check runs and each segment's
 * members (segments_is_member) are compared, for every live person, with the oracle:
 * the filter compiled to SQL (filter_to_sql) at ingest_now_ms, over a SQLite copy of
 * the engine (filter_sql_load) loaded afresh whenever the engine's content changed.
 * The oracle does not answer segment conditions: above them, this test combines the
 * oracle's answers (groups as set operations, a named segment as the oracle's answer
 * for that segment's own filter). At the end of a run ingest and store are closed and
 * reopened (restart_check): the store's member rows match memory before and after,
 * memberships come back the same, and the restart writes no transition but for
 * segments whose answer can move with time, which it recomputes at the real clock.
 *
 * `make test` runs SEG_DIFF_DEFAULT_RUNS runs of SEG_DIFF_DEFAULT_STEPS steps from
 * seed 1. Environment: SEGD_SEG_DIFF_SEED (first seed), SEGD_SEG_DIFF_RUNS (runs),
 * SEGD_SEG_DIFF_STEPS (steps a run). A disagreement prints the seed that replays it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ingest/ingest.h"
#include "diff_gen.h"

#define SEG_DIFF_DEFAULT_RUNS 10     /* about 5 s under the sanitizers: each check costs a */
#define SEG_DIFF_DEFAULT_STEPS 50    /* SQLite query (and often a fresh copy) */
#define MAX_SEGMENTS 30
#define MAX_REPORTED 4              /* disagreements printed for one check */

/* ---- a run ---- */

typedef struct totals {
    uint64_t runs, steps, checks;
    uint64_t loads;                 /* fresh SQLite copies of the engine */
    uint64_t comparisons;           /* (segment, live person) pairs compared */
    uint64_t segment_checks;        /* one segment compared over everyone */
    uint64_t nontrivial;            /* segment checks with some but not all people members */
    uint64_t clock_transitions;     /* transitions written by clock moves */
    uint64_t timed_checks;          /* segment checks of a time-relative filter */
    uint64_t ref_checks;            /* segment checks of a filter naming segments */
    uint64_t restart_full;          /* restarts where every segment could be compared */
    uint64_t restart_moving_rows;   /* transitions written by restarts (moving segments) */
} totals;

typedef struct seg_def {
    char id[SEGMENT_ID_LEN + 1];
    filter_node *filter;            /* as sent (not bound) */
} seg_def;

typedef struct run {
    uint64_t seed;
    rng r;
    char dir[64];
    ingest_config cfg;
    store *st;
    ingest *ing;
    int64_t clock;
    int step;                       /* -1 while the world is built and segments defined */
    char what[1200];                /* the last step, for a report */
    int users, anons;               /* keys u0.. and a0.. handed out so far */
    const char *only_key;           /* when set, every message names this key ... */
    int only_anonymous;             /* ... as its anonymousId (else userId) */
    seg_def seg[MAX_SEGMENTS];
    int n_seg;
    sqlite3 *copy;                  /* the oracle's copy of the engine ... */
    uint64_t copy_print;            /* ... while the engine's fingerprint is this */
    totals *t;
} run;

static int bit(const uint64_t *bits, person_id p)
{
    return (int)(bits[p >> 6] >> (p & 63) & 1);
}

/* The catalog, declared before any message so that filters can name it all (but "meta",
 * a JSON attribute: those cannot be declared, they come with their first value). */
static const struct { const char *name; const char *type; } attributes[] = {
    { "plan", "string" }, { "score", "number" }, { "vip", "boolean" }, { "renewal_at", "datetime" },
    { "groups", "list" },
};

/* What identify sends: custom attributes and standard ones (createdAt pins created_at). */
static const struct { const char *name; segd_type type; int percent; } traits[] = {
    { "plan", SEGD_T_STRING, 50 }, { "score", SEGD_T_NUMBER, 40 }, { "vip", SEGD_T_BOOL, 30 },
    { "renewal_at", SEGD_T_DATETIME, 35 }, { "tags", SEGD_T_LIST, 30 }, { "meta", SEGD_T_JSON, 10 },
    { "country", SEGD_T_STRING, 25 }, { "email", SEGD_T_STRING, 15 }, { "createdAt", SEGD_T_DATETIME, 8 },
};

static const struct { const char *name; segd_type type; } purchase_props[] = {
    { "amount", SEGD_T_NUMBER }, { "sku", SEGD_T_STRING }, { "labels", SEGD_T_LIST }, { "at", SEGD_T_DATETIME },
    { "gift", SEGD_T_BOOL },
};

static const char *const kind_names[] = { "identify", "track", "page", "screen", "group", "alias" };

/* ---- values as JSON ---- */

static cJSON *time_json(int64_t ms)
{
    char buf[TIMEFMT_LEN];
    return cJSON_CreateString(timefmt_format(ms, buf));
}

/* A time around the clock (the pool's offsets from NOW, moved with the clock) or, less
 * often, one of the pool's fixed times. */
static int64_t random_time(run *w)
{
    int64_t t = PICK(&w->r, times);
    return chance(&w->r, 70) ? w->clock + (t - NOW) : t;
}

/* A random value of a type as a message carries it; exact for event numbers (sums). */
static cJSON *value_json(run *w, segd_type type, int exact_numbers)
{
    segd_value v;
    const char *items[4];
    if (type == SEGD_T_DATETIME) return time_json(random_time(w));
    random_value(&w->r, type, exact_numbers, &v, items);
    switch (type) {
    case SEGD_T_STRING: return cJSON_CreateString(v.str);
    case SEGD_T_NUMBER: return cJSON_CreateNumber(v.number);
    case SEGD_T_BOOL: return cJSON_CreateBool(v.boolean);
    case SEGD_T_LIST: return cJSON_CreateStringArray(v.items, (int)v.n_items);
    case SEGD_T_JSON: return cJSON_Parse(v.str);   /* an object, or an array holding a non-string */
    default: return cJSON_CreateNull();
    }
}

/* ---- who a message is about ---- */

static void key_name(char *buf, size_t size, char prefix, int k)
{
    snprintf(buf, size, "%c%d", prefix, k);
}

/* A user id handed out before, or (percent_new, or when none exists) a new one. */
static void pick_user(run *w, int percent_new, char *buf, size_t size)
{
    int k = w->users == 0 || chance(&w->r, percent_new) ? w->users++ : (int)below(&w->r, (uint32_t)w->users);
    key_name(buf, size, 'u', k);
}

static void pick_anon(run *w, int percent_new, char *buf, size_t size)
{
    int k = w->anons == 0 || chance(&w->r, percent_new) ? w->anons++ : (int)below(&w->r, (uint32_t)w->anons);
    key_name(buf, size, 'a', k);
}

/* Names the person: a user id, an anonymous id, or both (which may identify or merge
 * an anonymous person). */
static void add_who(run *w, cJSON *m)
{
    char key[32];
    if (w->only_key) {
        cJSON_AddStringToObject(m, w->only_anonymous ? "anonymousId" : "userId", w->only_key);
        return;
    }
    uint32_t k = below(&w->r, 10);
    if (k < 6 || k == 9) {
        pick_user(w, 12, key, sizeof key);
        cJSON_AddStringToObject(m, "userId", key);
    }
    if (k >= 6) {
        pick_anon(w, 25, key, sizeof key);
        cJSON_AddStringToObject(m, "anonymousId", key);
    }
}

/* ---- messages ---- */

static cJSON *msg_identify(run *w)
{
    cJSON *m = cJSON_CreateObject();
    add_who(w, m);
    cJSON *tr = cJSON_AddObjectToObject(m, "traits");
    for (size_t i = 0; i < sizeof traits / sizeof *traits; i++) {
        if (!chance(&w->r, traits[i].percent)) continue;
        /* null clears the attribute (createdAt: unpins created_at) */
        int clear = chance(&w->r, 12);
        cJSON_AddItemToObject(tr, traits[i].name, clear ? cJSON_CreateNull() : value_json(w, traits[i].type, 0));
    }
    cJSON_AddItemToObject(m, "timestamp", time_json(random_time(w)));
    return m;
}

static cJSON *msg_event(run *w, int *kind)
{
    cJSON *m = cJSON_CreateObject();
    add_who(w, m);
    uint32_t k = below(&w->r, 10);
    cJSON *props = cJSON_CreateObject();
    if (k < 6) {
        *kind = INGEST_TRACK;
        cJSON_AddStringToObject(m, "event", "purchase");
        for (size_t i = 0; i < sizeof purchase_props / sizeof *purchase_props; i++)
            if (chance(&w->r, 70)) cJSON_AddItemToObject(props, purchase_props[i].name, value_json(w, purchase_props[i].type, 1));
    } else if (k < 9) {
        *kind = INGEST_PAGE;
        cJSON_AddStringToObject(m, "name", chance(&w->r, 50) ? "Pricing" : PICK(&w->r, strings));
        if (chance(&w->r, 80)) cJSON_AddItemToObject(props, "url", value_json(w, SEGD_T_STRING, 0));
        if (chance(&w->r, 50)) cJSON_AddItemToObject(props, "n", value_json(w, SEGD_T_NUMBER, 1));
    } else {
        *kind = INGEST_TRACK;
        cJSON_AddStringToObject(m, "event", "signup");
    }
    cJSON_AddItemToObject(m, "properties", props);
    cJSON_AddItemToObject(m, "timestamp", time_json(random_time(w)));
    return m;
}

static cJSON *msg_group(run *w)
{
    cJSON *m = cJSON_CreateObject();
    add_who(w, m);
    const char *g;
    do g = PICK(&w->r, strings);
    while (!*g);
    cJSON_AddStringToObject(m, "groupId", g);
    cJSON_AddItemToObject(m, "timestamp", time_json(random_time(w)));
    return m;
}

/* Links two keys: identify with both ids (an anonymous person identified, or merged
 * into the identified one), or alias (previousId merged into userId). */
static cJSON *msg_link(run *w, int *kind)
{
    char user[32], other[32];
    cJSON *m = cJSON_CreateObject();
    pick_user(w, 30, user, sizeof user);
    if (chance(&w->r, 50)) {
        *kind = INGEST_IDENTIFY;
        pick_anon(w, 10, other, sizeof other);
        cJSON_AddStringToObject(m, "userId", user);
        cJSON_AddStringToObject(m, "anonymousId", other);
        cJSON *tr = cJSON_AddObjectToObject(m, "traits");
        if (chance(&w->r, 50)) cJSON_AddItemToObject(tr, "plan", value_json(w, SEGD_T_STRING, 0));
    } else {
        *kind = INGEST_ALIAS;
        if (chance(&w->r, 60)) pick_anon(w, 10, other, sizeof other);
        else pick_user(w, 10, other, sizeof other);
        cJSON_AddStringToObject(m, "previousId", other);
        cJSON_AddStringToObject(m, "userId", user);
    }
    cJSON_AddItemToObject(m, "timestamp", time_json(random_time(w)));
    return m;
}

/* One random message of any kind. */
static cJSON *random_message(run *w, int *kind)
{
    uint32_t k = below(&w->r, 20);
    if (k < 6) {
        *kind = INGEST_IDENTIFY;
        return msg_identify(w);
    }
    if (k < 15) return msg_event(w, kind);
    if (k < 17) {
        *kind = INGEST_GROUP;
        return msg_group(w);
    }
    return msg_link(w, kind);
}

/* Sends one message (kind >= 0) or a batch (kind < 0) and frees it. Every message is
 * valid: a refusal is printed and fails the run. */
static int send(run *w, cJSON *msg, int kind)
{
    char *text = cJSON_PrintUnformatted(msg);
    snprintf(w->what, sizeof w->what, "%s %s", kind < 0 ? "batch" : kind_names[kind], text);
    segd_error err;
    segd_error_clear(&err);
    cJSON *bad = NULL;
    int rc = ingest_messages(w->ing, "default", msg, kind, 0, NULL, &bad, &err);
    if (rc) {
        char *why = bad ? cJSON_PrintUnformatted(bad) : NULL;
        fprintf(stderr, "seed %llu step %d: ingest refused %s (%s: %s, field %s) %s\n", (unsigned long long)w->seed,
                w->step, text, err.code, err.message, err.field, why ? why : "");
        free(why);
    }
    cJSON_Delete(bad);
    cJSON_Delete(msg);
    free(text);
    return rc;
}

/* Appends a message to a batch array, naming its kind. */
static void batch_add(cJSON *batch, cJSON *m, int kind)
{
    cJSON_AddStringToObject(m, "type", kind_names[kind]);
    cJSON_AddItemToArray(batch, m);
}

/* Erases a person named by a random key that exists (tries a few); 1 if none was
 * found (nothing sent), else the result of ingest_erase. */
static int erase_someone(run *w)
{
    for (int tries = 0; tries < 8; tries++) {
        char key[32];
        int by_user = w->anons == 0 || chance(&w->r, 60);
        if (by_user && w->users == 0) return 1;
        if (by_user) key_name(key, sizeof key, 'u', (int)below(&w->r, (uint32_t)w->users));
        else key_name(key, sizeof key, 'a', (int)below(&w->r, (uint32_t)w->anons));
        ingest_key_kind by = by_user ? INGEST_BY_USER_ID : INGEST_BY_ANONYMOUS_ID;
        const engine *e = ingest_read_begin(w->ing);
        int found = ingest_find_person(e, by, key) != PERSON_NONE;
        ingest_read_end(w->ing);
        if (!found) continue;
        snprintf(w->what, sizeof w->what, "erase %s", key);
        segd_error err;
        segd_error_clear(&err);
        int rc = ingest_erase(w->ing, by, key, &err);
        if (rc) fprintf(stderr, "seed %llu step %d: erase %s failed: %s\n", (unsigned long long)w->seed, w->step, key, err.message);
        return rc;
    }
    return 1;
}

/* ---- the clock ---- */

/* The times that relative conditions count from: datetime attributes of live people,
 * event times and datetime properties. Returns how many (in a new array *out). */
static size_t data_times(const engine *e, int64_t **out)
{
    int64_t *v = NULL;
    size_t n = 0, cap = 0;
    segd_cell c;
    for (person_id p = 0; p < engine_person_limit(e); p++) {
        if (!engine_person_exists(e, p)) continue;
        for (int a = 0; a < engine_attr_slots(e); a++)
            if (engine_attr_name(e, a) && engine_attr_type(e, a) == SEGD_T_DATETIME && engine_attr_get(e, p, a, &c)) {
                v = xgrow(v, sizeof *v, &cap, n + 1, 64);
                v[n++] = c.time_ms;
            }
    }
    for (int type = 0; type < engine_event_type_count(e); type++) {
        const int64_t *at = engine_event_times(e, type);
        for (uint32_t row = 0; row < engine_event_rows(e, type); row++) {
            v = xgrow(v, sizeof *v, &cap, n + 1, 64);
            v[n++] = at[row];
            for (int pr = 0; pr < engine_prop_count(e, type); pr++)
                if (engine_prop_type(e, type, pr) == SEGD_T_DATETIME && engine_event_prop_get(e, type, row, pr, &c)) {
                    v = xgrow(v, sizeof *v, &cap, n + 1, 64);
                    v[n++] = c.time_ms;
                }
        }
    }
    *out = v;
    return n;
}

/* Moves the clock forward: by 1 ms to 40 days, or onto an edge where a relative
 * condition flips (a data time plus a window or duration, give or take 1 ms). */
static int step_clock(run *w)
{
    int64_t target = 0;
    const char *how = "by";
    if (chance(&w->r, 40)) {
        const engine *e = ingest_read_begin(w->ing);
        int64_t *ts;
        size_t n = data_times(e, &ts);
        ingest_read_end(w->ing);
        for (int tries = 0; n && tries < 10 && !target; tries++) {
            static const int64_t nudge[] = { 0, 1, -1 };
            int64_t t = ts[below(&w->r, (uint32_t)n)];
            int64_t d = chance(&w->r, 15) ? 0 : durations[below(&w->r, sizeof durations / sizeof *durations)].ms;
            int64_t at = t + d + PICK(&w->r, nudge);
            if (at > w->clock && at - w->clock <= 400 * DAY) target = at;
        }
        free(ts);
        how = "onto an edge, by";
    }
    if (!target) {
        static const int64_t spans[] = { 1, 1000, HOUR, DAY, 40 * DAY };
        int64_t span = PICK(&w->r, spans);
        target = w->clock + (span == 1 ? 1 : 1 + (int64_t)(next(&w->r) % (uint64_t)span));
        how = "by";
    }
    snprintf(w->what, sizeof w->what, "clock %s %lld ms to now%+lld", how, (long long)(target - w->clock),
             (long long)(target - NOW));
    ingest_stats before, after;
    ingest_get_stats(w->ing, &before);
    segd_error err;
    segd_error_clear(&err);
    int rc = ingest_set_test_clock(w->ing, target, &err);
    if (rc) {
        fprintf(stderr, "seed %llu step %d: ingest_set_test_clock failed: %s\n", (unsigned long long)w->seed, w->step, err.message);
        return rc;
    }
    w->clock = target;
    ingest_get_stats(w->ing, &after);
    w->t->clock_transitions += after.segment_transitions - before.segment_transitions;
    return 0;
}

/* ---- segment filters ---- */

/* A condition that time alone moves: an event within a window, a datetime attribute
 * more or less than some time ago, or an event's first or last time so. */
static filter_node *relative_leaf(rng *r, const engine *e)
{
    uint32_t k = below(r, 3);
    int d = (int)below(r, sizeof durations / sizeof *durations);
    if (k == 0) {
        filter_node *n = random_event(r, e);
        n->window = FWIN_WITHIN;
        n->within_ms = durations[d].ms;
        return n;
    }
    filter_node *n;
    if (k == 1) {
        int dated[64], c = 0;
        for (int a = 0; a < engine_attr_slots(e) && c < 64; a++)
            if (engine_attr_name(e, a) && engine_attr_type(e, a) == SEGD_T_DATETIME) dated[c++] = a;
        assert_true(c > 0);
        n = filter_node_new(FILTER_ATTRIBUTE);
        n->name = xstrdup(engine_attr_name(e, dated[below(r, (uint32_t)c)]));
    } else {
        n = filter_node_new(FILTER_EVENT);
        n->name = xstrdup(engine_event_type_name(e, (int)below(r, (uint32_t)engine_event_type_count(e))));
        n->fn = chance(r, 60) ? FFN_LAST_AT : FFN_FIRST_AT;
        if (chance(r, 25)) {
            n->window = FWIN_WITHIN;
            n->within_ms = durations[below(r, sizeof durations / sizeof *durations)].ms;
        }
    }
    n->op = chance(r, 50) ? FOP_MORE_THAN_AGO : FOP_LESS_THAN_AGO;
    n->duration_ms = durations[d].ms;
    add_value(n, lit_str(durations[d].text));
    return n;
}

/* {"segment": one of the first `before` segments, "op": "in" | "not_in"}. */
static filter_node *segment_ref(run *w, int before)
{
    filter_node *n = filter_node_new(FILTER_SEGMENT);
    n->name = xstrdup(w->seg[below(&w->r, (uint32_t)before)].id);
    n->op = chance(&w->r, 50) ? FOP_IN : FOP_NOT_IN;
    return n;
}

/* random_tree's shapes with segment conditions and relative conditions among the leaves. */
static filter_node *tree_with_refs(run *w, const engine *e, int depth, int before)
{
    rng *r = &w->r;
    if (depth <= 0 || chance(r, 45)) {
        if (chance(r, 35)) return segment_ref(w, before);
        return chance(r, 30) ? relative_leaf(r, e) : random_leaf(r, e, -1);
    }
    uint32_t k = below(r, 10);
    filter_node *n = filter_node_new(k < 2 ? FILTER_NOT : k < 6 ? FILTER_AND : FILTER_OR);
    uint32_t children = k < 2 ? 1 : chance(r, 10) ? 0 : 1 + below(r, 3);
    for (uint32_t i = 0; i < children; i++) filter_node_add(n, tree_with_refs(w, e, depth - 1, before));
    return n;
}

/* A filter for the segment at index `index` (it may name the segments before it): a
 * random tree, often joined to a relative condition so that clock moves matter. */
static filter_node *segment_filter(run *w, const engine *e, int index)
{
    rng *r = &w->r;
    for (;;) {
        filter_node *f;
        if (index > 0 && chance(r, 35)) {
            f = filter_node_new(chance(r, 60) ? FILTER_AND : FILTER_OR);
            filter_node_add(f, segment_ref(w, index));
            filter_node_add(f, tree_with_refs(w, e, 2, index));
        } else {
            f = random_tree(r, e, 3, -1);
        }
        if (chance(r, 55)) {
            filter_node *g = filter_node_new(chance(r, 65) ? FILTER_AND : FILTER_OR);
            filter_node *rel = relative_leaf(r, e);
            if (chance(r, 20)) {
                filter_node *not = filter_node_new(FILTER_NOT);
                filter_node_add(not, rel);
                rel = not;
            }
            filter_node_add(g, f);
            filter_node_add(g, rel);
            f = g;
        }
        /* a reversed between cannot be spelled in JSON (the parser refuses it) */
        if (!has_reversed_between(f)) {
            assert_int_equal(filter_check(f), 0);
            return f;
        }
        filter_free(f);
    }
}

static int names_segment(const filter_node *n)
{
    if (n->kind == FILTER_SEGMENT) return 1;
    for (uint32_t i = 0; i < n->n_children; i++)
        if (names_segment(n->children[i])) return 1;
    return 0;
}

static int segment_index(const run *w, const char *id)
{
    for (int i = 0; i < w->n_seg; i++)
        if (strcmp(w->seg[i].id, id) == 0) return i;
    return -1;
}

/* 1 for each segment whose answer can change with time alone: its filter is
 * time-relative, or it names (in, not_in) a segment that is. */
static void moving_segments(const run *w, int *moves)
{
    for (int i = 0; i < w->n_seg; i++) moves[i] = 0;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < w->n_seg; i++) {
            if (moves[i]) continue;
            int m = filter_time_relative(w->seg[i].filter);
            /* references: walk the groups for segment conditions */
            const filter_node *stack[256];
            int sp = 0;
            stack[sp++] = w->seg[i].filter;
            while (sp && !m) {
                const filter_node *n = stack[--sp];
                if (n->kind == FILTER_SEGMENT) {
                    int j = segment_index(w, n->name);
                    m = j >= 0 && moves[j];
                }
                for (uint32_t c = 0; c < n->n_children && sp < 256; c++) stack[sp++] = n->children[c];
            }
            if (m) {
                moves[i] = 1;
                changed = 1;
            }
        }
    }
}

/* Creates a segment (a new one, or with `update` a new filter for segment `index`). */
static int define_segment(run *w, int index, int update)
{
    const engine *e = ingest_read_begin(w->ing);
    filter_node *f = segment_filter(w, e, index);
    ingest_read_end(w->ing);
    cJSON *body = cJSON_CreateObject();
    char name[64];
    snprintf(name, sizeof name, "segment %d", index);
    if (!update) cJSON_AddStringToObject(body, "name", name);
    /* as a client sends it: printed and parsed (filter_to_json keeps a number that cJSON
     * would print inexactly as a raw item, which only the printer reads) */
    char *json = filter_print_json(f);
    cJSON_AddItemToObject(body, "filter", cJSON_Parse(json));
    free(json);
    if (chance(&w->r, 30)) cJSON_AddBoolToObject(body, "backfill", 1);
    char *text = filter_print_text(f);
    snprintf(w->what, sizeof w->what, "%s segment %d: %s", update ? "update" : "create", index, text);
    free(text);
    segd_error err;
    segd_error_clear(&err);
    int rc = update ? ingest_segment_update(w->ing, w->seg[index].id, body, &err)
                    : ingest_segment_create(w->ing, body, "test", w->seg[index].id, &err);
    cJSON_Delete(body);
    if (rc) {
        fprintf(stderr, "seed %llu step %d: %s refused (%s: %s at %s)\n", (unsigned long long)w->seed, w->step, w->what,
                err.code, err.message, err.field);
        filter_free(f);
        return rc;
    }
    filter_free(w->seg[index].filter);
    w->seg[index].filter = f;
    if (!update) w->n_seg++;
    return 0;
}

/* ---- the comparison ---- */

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t fnv_str(uint64_t h, const char *s, size_t len)
{
    h = fnv(h, &len, sizeof len);
    return fnv(h, s ? s : "", s ? len : 0);
}

static uint64_t fnv_cell(uint64_t h, const engine *e, const segd_cell *c)
{
    size_t len = 0;
    const char *str;
    h = fnv(h, &c->type, sizeof c->type);
    switch (c->type) {
    case SEGD_T_STRING: case SEGD_T_JSON:
        str = engine_string(e, c->code, &len);
        return fnv_str(h, str, len);
    case SEGD_T_NUMBER: return fnv(h, &c->number, sizeof c->number);
    case SEGD_T_BOOL: return fnv(h, &c->boolean, sizeof c->boolean);
    case SEGD_T_DATETIME: return fnv(h, &c->time_ms, sizeof c->time_ms);
    case SEGD_T_LIST:
        for (uint32_t i = 0; i < c->n_codes; i++) {
            str = engine_string(e, c->codes[i], &len);
            h = fnv_str(h, str, len);
        }
        return fnv(h, &c->n_codes, sizeof c->n_codes);
    default: return h;
    }
}

/* A hash of all that filter_sql_load copies: the catalog, live people and their
 * attributes, live people's events with their properties. */
static uint64_t engine_fingerprint(const engine *e)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    segd_cell c;
    for (int a = 0; a < engine_attr_slots(e); a++) {
        const char *name = engine_attr_name(e, a);
        segd_type type = name ? engine_attr_type(e, a) : SEGD_T_NONE;
        h = fnv_str(h, name, name ? strlen(name) : 0);
        h = fnv(h, &type, sizeof type);
    }
    person_id limit = engine_person_limit(e);
    h = fnv(h, &limit, sizeof limit);
    for (person_id p = 0; p < limit; p++) {
        int live = engine_person_exists(e, p);
        h = fnv(h, &live, sizeof live);
        for (int a = 0; live && a < engine_attr_slots(e); a++) {
            if (!engine_attr_name(e, a) || !engine_attr_get(e, p, a, &c)) continue;
            h = fnv(h, &a, sizeof a);
            h = fnv_cell(h, e, &c);
        }
    }
    for (int type = 0; type < engine_event_type_count(e); type++) {
        const char *name = engine_event_type_name(e, type);
        h = fnv_str(h, name, strlen(name));
        for (int pr = 0; pr < engine_prop_count(e, type); pr++) {
            const char *prop = engine_prop_name(e, type, pr);
            segd_type pt = engine_prop_type(e, type, pr);
            h = fnv_str(h, prop, strlen(prop));
            h = fnv(h, &pt, sizeof pt);
        }
        const person_id *who = engine_event_persons(e, type);
        const int64_t *at = engine_event_times(e, type);
        for (uint32_t row = 0; row < engine_event_rows(e, type); row++) {
            if (who[row] == PERSON_NONE || !engine_person_exists(e, who[row])) continue;
            h = fnv(h, &row, sizeof row);
            h = fnv(h, &who[row], sizeof who[row]);
            h = fnv(h, &at[row], sizeof at[row]);
            for (int pr = 0; pr < engine_prop_count(e, type); pr++) {
                if (!engine_event_prop_get(e, type, row, pr, &c)) continue;
                h = fnv(h, &pr, sizeof pr);
                h = fnv_cell(h, e, &c);
            }
        }
    }
    return h;
}

/* The oracle over a SQLite copy of the engine as it is now. A fresh copy is loaded
 * whenever the engine's content differs from the last copy's (steps that change no
 * data, such as clock moves and segment definitions, keep it: loading is most of the
 * test's time under the sanitizers). */
static void oracle_open(run *w, const engine *e, oracle *o)
{
    uint64_t print = engine_fingerprint(e);
    if (!w->copy || print != w->copy_print) {
        sqlite3_close(w->copy);
        assert_int_equal(sqlite3_open(":memory:", &w->copy), SQLITE_OK);
        assert_int_equal(filter_sql_load(w->copy, e), 0);
        w->copy_print = print;
        w->t->loads++;
    }
    memset(o, 0, sizeof *o);
    o->e = e;
    o->db = w->copy;
    o->words = filter_words(e) ? filter_words(e) : 1;
}

/* The parts of the filters that SQL answers: the largest subtrees without a segment
 * condition, in the order expect() meets them. */
typedef struct leaves {
    char **sql;
    uint64_t **bits;
    size_t n, cap, next;
} leaves;

typedef struct expect_ctx {
    run *w;
    const engine *e;
    int64_t now;
    size_t words;
    uint64_t *live;
    uint64_t **expected;            /* per segment index, filled in index order */
    leaves l;
} expect_ctx;

static int collect_leaves(expect_ctx *x, const filter_node *n)
{
    if (!names_segment(n)) {
        char *sql = filter_to_sql(n, x->e, x->now);
        if (!sql) {
            fprintf(stderr, "filter_to_sql refused a generated tree\n");
            return -1;
        }
        x->l.sql = xgrow(x->l.sql, sizeof *x->l.sql, &x->l.cap, x->l.n + 1, 32);
        x->l.sql[x->l.n++] = sql;
        return 0;
    }
    for (uint32_t i = 0; i < n->n_children; i++)
        if (collect_leaves(x, n->children[i])) return -1;
    return 0;
}

/* Answers every leaf and the live people in one statement, "SELECT p.id, CASE WHEN
 * <leaf> THEN 1 ELSE 0 END, ... FROM people p" (a statement per leaf costs more under
 * the sanitizers). Returns 0, or -1 after printing the failing SQL. */
static int answer_leaves(expect_ctx *x, oracle *o)
{
    sqlite3 *db = o->db;
    size_t len = 32;
    for (size_t k = 0; k < x->l.n; k++) len += strlen(x->l.sql[k]) + 40;
    char *q = xmalloc(len), *at = q;
    at += sprintf(at, "SELECT p.id");
    for (size_t k = 0; k < x->l.n; k++) at += sprintf(at, ", CASE WHEN (%s) THEN 1 ELSE 0 END", x->l.sql[k]);
    sprintf(at, " FROM people p");
    x->l.bits = xcalloc(x->l.n + 1, sizeof *x->l.bits);
    for (size_t k = 0; k < x->l.n; k++) x->l.bits[k] = xcalloc(x->words, sizeof *x->l.bits[k]);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(st, 0);
            assert_true(id >= 0 && (size_t)id < x->words * 64);
            x->live[id >> 6] |= 1ULL << (id & 63);
            for (size_t k = 0; k < x->l.n; k++)
                if (sqlite3_column_int(st, (int)k + 1)) x->l.bits[k][id >> 6] |= 1ULL << (id & 63);
        }
    }
    sqlite3_finalize(st);
    free(q);
    if (rc == SQLITE_DONE) return 0;
    /* the leaves one by one, to name the one that fails (sql_answer prints it) */
    fprintf(stderr, "oracle SQL failed: %s\n", sqlite3_errmsg(db));
    uint64_t *bits = xcalloc(x->words, sizeof *bits);
    for (size_t k = 0; k < x->l.n; k++)
        if (sql_answer(o, x->l.sql[k], bits) != 0) break;
    free(bits);
    return -1;
}

static void leaves_release(leaves *l)
{
    for (size_t k = 0; k < l->n; k++) {
        free(l->sql[k]);
        if (l->bits) free(l->bits[k]);
    }
    free(l->sql);
    free(l->bits);
    memset(l, 0, sizeof *l);
}

/* The oracle's answer for a bound tree: a leaf's SQL answer for a tree without segment
 * conditions; above them, groups combined as sets over the live people, and a named
 * segment's answer as computed for its own filter. */
static void expect(expect_ctx *x, const filter_node *n, uint64_t *out)
{
    size_t words = x->words;
    if (!names_segment(n)) {
        assert_true(x->l.next < x->l.n);
        memcpy(out, x->l.bits[x->l.next++], words * sizeof *out);
        return;
    }
    if (n->kind == FILTER_SEGMENT) {
        int j = segment_index(x->w, n->name);
        assert_true(j >= 0 && x->expected[j]);
        for (size_t k = 0; k < words; k++) out[k] = n->op == FOP_IN ? x->expected[j][k] : x->live[k] & ~x->expected[j][k];
        return;
    }
    uint64_t *child = xcalloc(words, sizeof *child);
    if (n->kind == FILTER_AND) memcpy(out, x->live, words * sizeof *out);
    else memset(out, 0, words * sizeof *out);
    for (uint32_t i = 0; i < n->n_children; i++) {
        expect(x, n->children[i], child);
        for (size_t k = 0; k < words; k++) {
            if (n->kind == FILTER_AND) out[k] &= child[k];
            else if (n->kind == FILTER_OR) out[k] |= child[k];
            else out[k] = x->live[k] & ~child[k];
        }
    }
    free(child);
}

static void print_filter(FILE *out, const char *label, const filter_node *f)
{
    char *text = filter_print_text(f), *json = filter_print_json(f);
    fprintf(out, "%s text: %s\n%s json: %s\n%s tree: ", label, text, label, json, label);
    dump_node(out, f);               /* times shown from NOW */
    fputs("\n", out);
    free(json);
    free(text);
}

/* Prints one disagreement: where in the run, the filter (and the filters it names),
 * the person, and both answers. */
static void report(run *w, const engine *e, int i, const filter_node *bound, person_id p, int member, int expected)
{
    FILE *out = stderr;
    fprintf(out, "\n=== segment disagreement (seed %llu, step %d) ===\nafter: %s\n", (unsigned long long)w->seed, w->step,
            w->what);
    fprintf(out, "clock: %lld (NOW%+lld ms)\nsegment %d (%s):\n", (long long)w->clock, (long long)(w->clock - NOW), i,
            w->seg[i].id);
    print_filter(out, "  filter", w->seg[i].filter);
    for (int j = 0; j < i; j++) {
        char *json = filter_print_json(w->seg[i].filter);
        int named = strstr(json, w->seg[j].id) != NULL;
        free(json);
        if (!named) continue;
        char label[64];
        snprintf(label, sizeof label, "  names segment %d (%s):", j, w->seg[j].id);
        print_filter(out, label, w->seg[j].filter);
    }
    if (!names_segment(bound)) {
        char *sql = filter_to_sql(bound, e, w->clock);
        fprintf(out, "  sql: %s\n", sql);
        free(sql);
    }
    fprintf(out, "person %u: segments_is_member %d, oracle %d\n", p, member, expected);
    dump_person(out, e, p);
    fprintf(out, "replay: SEGD_SEG_DIFF_SEED=%llu SEGD_SEG_DIFF_RUNS=1 build/asan/tests/test_segments_diff\n",
            (unsigned long long)w->seed);
}

/* Compares every segment (only those with check[i], when check is not NULL) with the
 * oracle for every live person, under the read lock; copies the members into
 * members_out[i] (room for out_words words) when given. Returns the disagreements. */
static int compare(run *w, const int *check, uint64_t **members_out, size_t out_words)
{
    const engine *e = ingest_read_begin(w->ing);
    assert_non_null(e);
    segments *segs = ingest_segments(w->ing);
    int found = 0;
    int64_t now = ingest_now_ms(w->ing);
    if (now != w->clock) {
        fprintf(stderr, "seed %llu step %d: ingest_now_ms is %lld, the test clock %lld\n", (unsigned long long)w->seed,
                w->step, (long long)now, (long long)w->clock);
        found++;
    }
    if (segments_check(segs, e) != 0) {
        fprintf(stderr, "seed %llu step %d: segments_check failed after %s\n", (unsigned long long)w->seed, w->step, w->what);
        found++;
    }
    oracle o;
    oracle_open(w, e, &o);
    uint64_t *expected[MAX_SEGMENTS] = { 0 };
    expect_ctx x = { .w = w, .e = e, .now = now, .words = o.words, .expected = expected };
    x.live = xcalloc(o.words, sizeof *x.live);
    /* clones bound against this engine (a restart brings another) */
    filter_node *bound[MAX_SEGMENTS] = { 0 };
    filter_resolver resolver = segments_resolver(segs);
    for (int i = 0; i < w->n_seg && !found; i++) {
        bound[i] = filter_clone(w->seg[i].filter);
        segd_error err;
        segd_error_clear(&err);
        if (filter_bind(bound[i], e, &resolver, &err) != 0) {
            fprintf(stderr, "seed %llu: segment %d's filter no longer binds: %s\n", (unsigned long long)w->seed, i, err.message);
            found++;
        } else if (collect_leaves(&x, bound[i]) != 0) {
            found++;
        }
    }
    if (!found) found = answer_leaves(&x, &o) != 0;
    uint32_t n_live = engine_person_count(e);
    int reported = 0;
    for (int i = 0; i < w->n_seg && !found; i++) {
        expected[i] = xcalloc(o.words, sizeof *expected[i]);
        expect(&x, bound[i], expected[i]);
        int slot = segments_find(segs, w->seg[i].id);
        if (slot < 0) {
            fprintf(stderr, "seed %llu: segment %d (%s) is gone\n", (unsigned long long)w->seed, i, w->seg[i].id);
            found++;
            break;
        }
        if (members_out) {
            assert_true(o.words <= out_words);
            memset(members_out[i], 0, out_words * sizeof *members_out[i]);
            segments_members(segs, slot, 0, members_out[i]);
        }
        if (check && !check[i]) continue;
        uint32_t members = 0;
        int before = found;
        for (person_id p = 0; p < engine_person_limit(e); p++) {
            if (!engine_person_exists(e, p)) continue;
            int is = segments_is_member(segs, slot, p, 0), want = bit(expected[i], p);
            w->t->comparisons++;
            members += (uint32_t)want;
            if (is != want) {
                found++;
                if (reported++ < MAX_REPORTED) report(w, e, i, bound[i], p, is, want);
            }
        }
        segment_view v;
        segments_view(segs, slot, &v);
        if (v.size != members && found == before) {
            fprintf(stderr, "seed %llu step %d: segment %d has size %llu, the oracle %u members\n",
                    (unsigned long long)w->seed, w->step, i, (unsigned long long)v.size, members);
            found++;
        }
        w->t->segment_checks++;
        w->t->nontrivial += members > 0 && members < n_live;
        w->t->timed_checks += (uint64_t)filter_time_relative(bound[i]);
        w->t->ref_checks += (uint64_t)names_segment(bound[i]);
    }
    w->t->checks++;
    for (int i = 0; i < w->n_seg; i++) {
        free(expected[i]);
        filter_free(bound[i]);
    }
    leaves_release(&x.l);
    free(x.live);
    ingest_read_end(w->ing);
    return found;
}

/* ---- opening, the restart ---- */

static int open_all(run *w)
{
    segd_error err;
    segd_error_clear(&err);
    w->st = store_open(w->dir, &err);
    assert_non_null(w->st);
    w->ing = ingest_open(w->st, &w->cfg, &err);
    assert_non_null(w->ing);
    return ingest_wait_ready(w->ing, &err);
}

static void close_all(run *w)
{
    ingest_close(w->ing);
    store_close(w->st);
    w->ing = NULL;
    w->st = NULL;
}

static int newest_seq(void *ctx, const store_transition *t)
{
    *(int64_t *)ctx = t->seq;
    return 0;
}

typedef struct outbox_ctx {
    run *w;
    const int *moves;
    const int64_t *nums;
    int found;
    uint64_t rows;
    int64_t last_seq;
} outbox_ctx;

static int outbox_row(void *ctx, const store_transition *t)
{
    outbox_ctx *c = ctx;
    int i = 0;
    while (i < c->w->n_seg && c->nums[i] != t->num) i++;
    c->rows++;
    c->last_seq = t->seq;
    if (i < c->w->n_seg && c->moves[i]) return 0;
    if (c->found++ < MAX_REPORTED) {
        fprintf(stderr, "seed %llu: the restart wrote a transition (seq %lld, %s, cause %s, person %u, at NOW%+lld) for "
                "segment %d, whose answer time alone cannot change\n", (unsigned long long)c->w->seed, (long long)t->seq,
                t->dir == SEG_ENTERED ? "entered" : "exited", seg_cause_name(t->cause), t->person,
                (long long)(t->at - NOW), i);
        if (i < c->w->n_seg) print_filter(stderr, "  filter", c->w->seg[i].filter);
    }
    return 0;
}

/* The transitions after seq *after: only moving segments may have any. Moves *after
 * past the rows read. Returns how many rows name another segment. */
static int outbox_only_moving(run *w, int64_t *after, const int *moves, const int64_t *nums, const char *when)
{
    outbox_ctx c = { w, moves, nums, 0, 0, *after };
    assert_int_equal(store_read_outbox(w->st, *after, INT_MAX, outbox_row, &c), 0);
    if (c.found) fprintf(stderr, "seed %llu: %d transition(s) written %s\n", (unsigned long long)w->seed, c.found, when);
    w->t->restart_moving_rows += c.rows - (uint64_t)c.found;
    *after = c.last_seq;
    return c.found;
}

/* Store rows agree with memory: a member row (entered_at of someone who entered after the
 * segment was created) only for a member. The member set itself lives in the store as a
 * checkpoint plus the log after it; the restart check compares what that gives back. */
static int store_members_agree(run *w)
{
    const engine *e = ingest_read_begin(w->ing);
    segments *segs = ingest_segments(w->ing);
    int found = 0;
    for (int i = 0; i < w->n_seg; i++) {
        int slot = segments_find(segs, w->seg[i].id);
        int64_t num = ingest_segment_num(w->ing, slot);
        for (person_id p = 0; p < engine_person_limit(e); p++) {
            int64_t entered_at;
            int cause;
            int row = store_read_member(w->st, num, p, &entered_at, &cause);
            int is = segments_is_member(segs, slot, p, 0);
            if (row == 1 && !is && found++ < MAX_REPORTED)
                fprintf(stderr, "seed %llu: segment %d, person %u: member in memory %d, member row in the store %d\n",
                        (unsigned long long)w->seed, i, p, is, row);
        }
    }
    ingest_read_end(w->ing);
    return found;
}

/* Closes and reopens ingest and store. Segments whose answer time alone cannot change
 * must come back with the same members, and the restart must write no transition for
 * them. The others the restart recomputes at the real clock (the test clock is set only
 * once ingest is open): the test clock is first put past the real clock, so that after
 * the restart it runs forward from the restart's moment back to the test clock, and
 * every segment must match the oracle again. (Were the real clock past the test clock
 * after all, the moving segments would be at another time, and are left out.) */
static int restart_check(run *w)
{
    /* the restart recomputes at the real clock: with the test clock behind it, moving
     * segments could not be compared afterwards; move it past the real clock first */
    if (w->clock < timefmt_now_ms() + HOUR) {
        int64_t target = timefmt_now_ms() + DAY + (int64_t)below(&w->r, (uint32_t)DAY);
        segd_error err;
        segd_error_clear(&err);
        assert_int_equal(ingest_set_test_clock(w->ing, target, &err), 0);
        snprintf(w->what, sizeof w->what, "clock past the real clock, to now%+lld", (long long)(target - NOW));
        w->clock = target;
        int found = compare(w, NULL, NULL, 0);
        if (found) return found;
    }
    int found = store_members_agree(w);
    int moves[MAX_SEGMENTS];
    moving_segments(w, moves);
    int64_t last_seq = 0, nums[MAX_SEGMENTS];
    assert_true(store_read_transitions(w->st, -1, -1, 0, 1, newest_seq, &last_seq) >= 0);
    size_t words;
    uint64_t *before[MAX_SEGMENTS], *after[MAX_SEGMENTS];
    {
        const engine *e = ingest_read_begin(w->ing);
        words = filter_words(e) ? filter_words(e) : 1;
        segments *segs = ingest_segments(w->ing);
        for (int i = 0; i < w->n_seg; i++) {
            before[i] = xcalloc(words, sizeof *before[i]);
            after[i] = xcalloc(words, sizeof *after[i]);
            int slot = segments_find(segs, w->seg[i].id);
            segments_members(segs, slot, 0, before[i]);
            nums[i] = ingest_segment_num(w->ing, slot);
        }
        ingest_read_end(w->ing);
    }
    snprintf(w->what, sizeof w->what, "restart");
    close_all(w);
    assert_int_equal(open_all(w), 0);
    int64_t recomputed_by = timefmt_now_ms();    /* the restart's recomputation ran before this */
    found += outbox_only_moving(w, &last_seq, moves, nums, "by the restart");
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(ingest_set_test_clock(w->ing, w->clock, &err), 0);
    found += outbox_only_moving(w, &last_seq, moves, nums, "when the test clock was set again after the restart");
    int full = w->clock >= recomputed_by, fixed[MAX_SEGMENTS];
    for (int i = 0; i < w->n_seg; i++) fixed[i] = !moves[i];
    w->t->restart_full += (uint64_t)full;
    found += compare(w, full ? NULL : fixed, after, words);
    for (int i = 0; i < w->n_seg; i++) {
        if (!moves[i] && memcmp(before[i], after[i], words * sizeof *before[i]) != 0 && found++ < MAX_REPORTED + 8) {
            fprintf(stderr, "seed %llu: segment %d's members differ after the restart\n", (unsigned long long)w->seed, i);
            print_filter(stderr, "  filter", w->seg[i].filter);
        }
        free(before[i]);
        free(after[i]);
    }
    found += store_members_agree(w);
    return found;
}

/* ---- one run ---- */

static int declare_catalog(run *w)
{
    segd_error err;
    segd_error_clear(&err);
    for (size_t i = 0; i < sizeof attributes / sizeof *attributes; i++)
        if (ingest_declare_attribute(w->ing, attributes[i].name, attributes[i].type, &err) != 0) {
            fprintf(stderr, "declaring attribute %s: %s\n", attributes[i].name, err.message);
            return -1;
        }
    static const char *const types[] = {
        "{\"name\": \"purchase\", \"properties\": {\"amount\": \"number\", \"sku\": \"string\", \"labels\": \"list\","
        " \"at\": \"datetime\", \"gift\": \"boolean\"}}",
        "{\"name\": \"page_view\", \"properties\": {\"name\": \"string\", \"url\": \"string\", \"n\": \"number\"}}",
        "{\"name\": \"signup\"}",
        "{\"name\": \"never\"}",       /* declared, never sent */
    };
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        cJSON *body = cJSON_Parse(types[i]);
        int created;
        int rc = ingest_declare_event_type(w->ing, body, &created, &err);
        cJSON_Delete(body);
        if (rc) {
            fprintf(stderr, "declaring %s: %s\n", types[i], err.message);
            return rc;
        }
    }
    return 0;
}

/* 20 to 40 people with traits and events, a third anonymous (some identified or
 * aliased afterwards), a few erased; sent in batches as a backfill would. */
static int build_world(run *w)
{
    uint32_t people = 20 + below(&w->r, 21);
    cJSON *batch = cJSON_CreateArray();
    int rc = 0;
    for (uint32_t i = 0; i < people && rc == 0; i++) {
        char key[32];
        int anonymous = chance(&w->r, 33);
        if (anonymous) key_name(key, sizeof key, 'a', w->anons++);
        else key_name(key, sizeof key, 'u', w->users++);
        int kind;
        w->only_key = key;
        w->only_anonymous = anonymous;
        if (!anonymous || chance(&w->r, 50)) batch_add(batch, msg_identify(w), INGEST_IDENTIFY);
        for (uint32_t k = below(&w->r, 5); k > 0; k--) {
            cJSON *m = msg_event(w, &kind);
            batch_add(batch, m, kind);
        }
        w->only_key = NULL;
        if (cJSON_GetArraySize(batch) >= 25) {
            rc = send(w, batch, -1);
            batch = cJSON_CreateArray();
        }
    }
    for (int k = 0; k < w->anons / 2 && rc == 0; k++) {
        int kind;
        cJSON *m = msg_link(w, &kind);
        batch_add(batch, m, kind);
    }
    if (rc == 0 && cJSON_GetArraySize(batch) > 0) rc = send(w, batch, -1);
    else cJSON_Delete(batch);
    for (uint32_t k = 1 + below(&w->r, 3); k > 0 && rc == 0; k--) {
        int e = erase_someone(w);
        if (e < 0) rc = e;
    }
    snprintf(w->what, sizeof w->what, "building the world");
    return rc;
}

/* One random step. */
static int take_step(run *w)
{
    uint32_t k = below(&w->r, 100);
    int kind;
    if (k < 18) return send(w, msg_identify(w), INGEST_IDENTIFY);
    if (k < 40) {
        cJSON *m = msg_event(w, &kind);
        return send(w, m, kind);
    }
    if (k < 48) {
        cJSON *m = msg_link(w, &kind);
        return send(w, m, kind);
    }
    if (k < 53) {
        int rc = erase_someone(w);
        if (rc != 1) return rc;
        return send(w, msg_identify(w), INGEST_IDENTIFY);    /* nobody to erase */
    }
    if (k < 56) return send(w, msg_group(w), INGEST_GROUP);
    if (k < 61) {
        cJSON *batch = cJSON_CreateArray();
        for (uint32_t n = 2 + below(&w->r, 5); n > 0; n--) {
            cJSON *m = random_message(w, &kind);
            batch_add(batch, m, kind);
        }
        return send(w, batch, -1);
    }
    if (k < 94) return step_clock(w);
    if (w->n_seg < MAX_SEGMENTS && chance(&w->r, 50)) return define_segment(w, w->n_seg, 0);
    return define_segment(w, (int)below(&w->r, (uint32_t)w->n_seg), 1);
}

static int make_dir(run *w)
{
    /* the store commits with synchronous=FULL: on tmpfs that costs nothing */
    struct stat sb;
    const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(w->dir, sizeof w->dir, "%s/segd-test-segdiff-XXXXXX", base);
    if (mkdtemp(w->dir)) return 0;
    snprintf(w->dir, sizeof w->dir, "/tmp/segd-test-segdiff-XXXXXX");
    return mkdtemp(w->dir) ? 0 : -1;
}

/* Runs one world from seed for `steps` steps. Returns the disagreements (and harness
 * failures) found; stops at the first step that has any. */
static int run_one(uint64_t seed, int steps, totals *t)
{
    run w = { .seed = seed, .r = { seed }, .step = -1, .clock = NOW, .t = t };
    ingest_config_defaults(&w.cfg);
    w.cfg.test_clock = 1;
    assert_int_equal(make_dir(&w), 0);
    assert_int_equal(open_all(&w), 0);
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(ingest_set_test_clock(w.ing, NOW, &err), 0);
    int found = declare_catalog(&w) != 0;
    if (!found) found = build_world(&w) != 0;
    if (!found) found = compare(&w, NULL, NULL, 0);
    for (int n = 10 + (int)below(&w.r, 21); n > 0 && !found; n--) found = define_segment(&w, w.n_seg, 0) != 0;
    if (!found) found = compare(&w, NULL, NULL, 0);
    for (int k = 0; k < steps && !found; k++) {
        w.step = k;
        found = take_step(&w) < 0 ? 1 : 0;
        if (!found) found = compare(&w, NULL, NULL, 0);
        t->steps++;
    }
    if (!found) found = restart_check(&w);
    close_all(&w);
    sqlite3_close(w.copy);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", w.dir);
    assert_int_equal(system(cmd), 0);
    for (int i = 0; i < w.n_seg; i++) filter_free(w.seg[i].filter);
    t->runs++;
    if (found)
        fprintf(stderr, "segments diff: seed %llu failed at step %d, after %.200s\n", (unsigned long long)seed, w.step,
                w.what);
    return found;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *s = getenv(name);
    return s && *s ? strtoull(s, NULL, 10) : dflt;
}

static void test_differential(void **state)
{
    (void)state;
    uint64_t seed = env_u64("SEGD_SEG_DIFF_SEED", 1);
    uint64_t runs = env_u64("SEGD_SEG_DIFF_RUNS", SEG_DIFF_DEFAULT_RUNS);
    int steps = (int)env_u64("SEGD_SEG_DIFF_STEPS", SEG_DIFF_DEFAULT_STEPS);
    totals t = { 0 };
    int failed_runs = 0;
    for (uint64_t k = 0; k < runs; k++) failed_runs += run_one(seed + k, steps, &t) != 0;
    fprintf(stderr, "segments diff: %llu runs, %llu steps, %llu checks (%llu copies loaded), %llu comparisons (%llu segment checks "
            "selecting some but not all people, %llu of time-relative filters, %llu naming segments), %llu transitions "
            "by clock moves, %llu restarts compared in full, %llu transitions of moving segments by restarts; %d runs failed\n",
            (unsigned long long)t.runs, (unsigned long long)t.steps, (unsigned long long)t.checks, (unsigned long long)t.loads,
            (unsigned long long)t.comparisons, (unsigned long long)t.nontrivial, (unsigned long long)t.timed_checks,
            (unsigned long long)t.ref_checks, (unsigned long long)t.clock_transitions, (unsigned long long)t.restart_full,
            (unsigned long long)t.restart_moving_rows, failed_runs);
    assert_int_equal(failed_runs, 0);
    /* a harness that drifted into comparing nothing, or nothing that moves, tests nothing */
    assert_true(t.comparisons >= t.runs * (uint64_t)steps * 100);
    assert_true(t.nontrivial * 5 >= t.segment_checks);
    if (t.runs * (uint64_t)steps >= 400) {
        assert_true(t.clock_transitions > 0);
        assert_true(t.timed_checks > 0 && t.ref_checks > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_differential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
