/* diff_gen.h - what the differential tests share: a seeded random source, pools of
 * values that aim at the filter contract's corners, random filter trees over any
 * engine's catalog, the SQL oracle's answer as a people set, and printers for a
 * counterexample.
 *
 * Header-only (static functions) because the Makefile builds each tests/unit/test_*.c
 * alone: included by test_filter_diff.c (filters against the oracle on engines built
 * directly) and test_segments_diff.c (segments kept by ingest against the oracle).
 * Include it after <cmocka.h> and <sqlite3.h>: the generators assert with cmocka.
 * Times are laid around NOW, the fixed moment both tests start from.
 */
#ifndef SEGD_TEST_DIFF_GEN_H
#define SEGD_TEST_DIFF_GEN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/timefmt.h"
#include "engine/engine.h"
#include "filter/filter.h"

#define NOW 1795867200000LL         /* 2026-11-28T12:00:00Z */
#define SEC 1000LL
#define HOUR 3600000LL
#define DAY 86400000LL

/* ---- randomness ---- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint32_t below(rng *r, uint32_t n)
{
    return n ? (uint32_t)(next(r) % n) : 0;
}

static int chance(rng *r, int percent)
{
    return (int)below(r, 100) < percent;
}

#define PICK(r, arr) ((arr)[below((r), sizeof(arr) / sizeof((arr)[0]))])

/* ---- value pools ---- */

static const char *const strings[] = {
    "", "pro", "Pro", "PRO", "free", "Stra\xc3\x9f" "e", "STRASSE", "strasse", "\xc3\x9f",
    "\xc3\x89" "COLE", "\xc3\xa9" "cole", "Ecole", "\xe2\x84\xaa", "k", "K", "a", "ab", "abc", "b c",
    "\xc5\xbf", "s", "\xce\xa3", "\xcf\x83", "\xcf\x82", "\xc4\xb0", "i", "\xc4\xb1",
    "\xe6\x97\xa5\xe6\x9c\xac", "x'y\"z", "%_*?[", "/pricing", "/Pricing/x", "/blog",
    /* long enough to live outside the pool's inline slots */
    "Lorem ipsum dolor sit amet, Stra\xc3\x9f" "e \xc3\x89" "COLE consectetur adipiscing elit",
    "LOREM IPSUM DOLOR SIT AMET, STRA\xc3\x9f" "E \xc3\xa9" "cole CONSECTETUR ADIPISCING ELIT",
    "lorem ipsum dolor sit amet, stra\xc3\x9f" "e \xc3\xa9" "cole consectetur adipiscing elit, sed do eiusmod "
    "tempor incididunt ut labore et dolore magna aliqua \xe2\x84\xaa",
};

/* Substrings that hit: pieces of the pool entries, in various cases. */
static const char *const pieces[] = {
    "", "p", "r", "o", "PR", "ro", "\xc3\x9f", "SS", "co", "\xc3\x89", "\xc3\xa9", "LE", "k", "b",
    "c", "\xcf\x83", "\xce\xa3", "S", "/", "/p", "/P", "ing", "'", "%", "_", "x", "\xe6\x97\xa5",
    "LOREM", "ipsum dolor", "aliqua k", "ELIT", "\xc3\xa9" "cole consectetur",
};

static const double numbers[] = {
    0, -0.0, 1, -1, 0.5, 2.5, 3, 100, 500, 1e15, -1e15, 9007199254740992.0, 1e308, -1e308,
    5e-324, 0.1, 0.30000000000000004,
};

/* Exact in sums of a few: small dyadic fractions. */
static const double amounts[] = { 0, -0.0, 1, -1, 0.5, 2.5, 3, 100, 250, 500, 1024, -7.25 };

static const double metric_values[] = { 0, 1, 2, 3, 2.5, 100, 250, 350, 500, 550, -1, 1024 };

static const int64_t times[] = {
    NOW, NOW - 1, NOW + 1, NOW - DAY, NOW - DAY - 1, NOW - 7 * DAY, NOW - 7 * DAY + 1,
    NOW - 14 * DAY, NOW - 14 * DAY - 1, NOW - 14 * DAY + 1, NOW - 30 * DAY, NOW - 30 * DAY - 1,
    NOW - 12 * HOUR, NOW - 12 * HOUR - 1, NOW - 14 * HOUR, NOW + 12 * HOUR, NOW + 30 * DAY, 0,
    -1000, NOW - 2 * DAY, NOW - 7 * HOUR, NOW - 7 * HOUR - 1, NOW - 17 * HOUR - 30 * 60 * SEC,
    NOW - 36 * HOUR, NOW - 36 * HOUR - 1,
};

static const struct { int64_t ms; const char *text; } durations[] = {
    { SEC, "1s" }, { HOUR, "1h" }, { 12 * HOUR, "12h" }, { DAY, "1d" }, { 7 * DAY, "7d" },
    { 14 * DAY, "14d" }, { 30 * DAY, "30d" }, { 2 * DAY, "2d" },
};

/* on_day dates: midnight UTC of days around now, and offsets in minutes. */
static const int64_t day_starts[] = { NOW - 12 * HOUR, NOW - 36 * HOUR, NOW + 12 * HOUR, NOW - 12 * HOUR - 30 * DAY, 0 };
static const int offsets[] = { 0, 120, -300, 330, -720, 840 };

/* A random value of a type into v; list items point at the pool (static). */
static void random_value(rng *r, segd_type type, int exact_numbers, segd_value *v, const char **items)
{
    memset(v, 0, sizeof *v);
    v->type = type;
    switch (type) {
    case SEGD_T_STRING: v->str = PICK(r, strings); v->str_len = strlen(v->str); break;
    case SEGD_T_NUMBER: v->number = exact_numbers ? PICK(r, amounts) : PICK(r, numbers); break;
    case SEGD_T_BOOL: v->boolean = (int)below(r, 2); break;
    case SEGD_T_DATETIME: v->time_ms = PICK(r, times); break;
    case SEGD_T_JSON: v->str = chance(r, 50) ? "{}" : "[1,{\"a\":2}]"; v->str_len = strlen(v->str); break;
    case SEGD_T_LIST:
        v->n_items = below(r, 4);
        for (size_t i = 0; i < v->n_items; i++) items[i] = PICK(r, strings);
        v->items = items;
        break;
    default: break;
    }
}

/* ---- random filters ---- */

static filter_literal lit_str(const char *s)
{
    return (filter_literal){ .kind = FLIT_STRING, .str = xstrdup(s), .len = strlen(s) };
}

static filter_literal lit_num(double d)
{
    return (filter_literal){ .kind = FLIT_NUMBER, .number = d };
}

static filter_literal lit_time(int64_t ms)
{
    char buf[TIMEFMT_LEN];
    filter_literal l = lit_str(timefmt_format(ms, buf));
    l.is_time = 1;
    l.time_ms = ms;
    return l;
}

static void add_value(filter_node *n, filter_literal l)
{
    n->values = xrealloc(n->values, (n->n_values + 1) * sizeof *n->values);
    n->values[n->n_values++] = l;
}

/* Fills op and values of a condition on a value of `type`; metric 1 for an event
 * condition (values fit counts and sums). */
static void random_comparison(rng *r, filter_node *n, segd_type type, int metric)
{
    filter_op fit[FOP_COUNT_];
    int n_fit = 0;
    for (int op = FOP_NONE + 1; op < FOP_COUNT_; op++)
        if (filter_op_fits((filter_op)op, type)) fit[n_fit++] = (filter_op)op;
    assert_true(n_fit > 0);
    n->op = fit[below(r, (uint32_t)n_fit)];
    n->case_sensitive = chance(r, 30);
    int count = n->op == FOP_BETWEEN ? 2 : n->op == FOP_IN || n->op == FOP_NOT_IN ? 1 + (int)below(r, 3) : 1;
    switch (n->op) {
    case FOP_IS_SET: case FOP_IS_NOT_SET: case FOP_IS_EMPTY: case FOP_IS_NOT_EMPTY:
        n->case_sensitive = 0;
        return;
    case FOP_MORE_THAN_AGO: case FOP_LESS_THAN_AGO: {
        int d = (int)below(r, sizeof durations / sizeof *durations);
        n->duration_ms = durations[d].ms;
        add_value(n, lit_str(durations[d].text));
        n->case_sensitive = 0;
        return;
    }
    case FOP_ON_DAY: {
        char buf[TIMEFMT_LEN];
        int64_t day = PICK(r, day_starts);
        n->offset_min = PICK(r, offsets);
        timefmt_format(day, buf);
        buf[10] = 0;
        filter_literal l = lit_str(buf);
        l.is_time = 1;
        l.time_ms = day - (int64_t)n->offset_min * 60000;
        add_value(n, l);
        n->case_sensitive = 0;
        return;
    }
    default: break;
    }
    for (int i = 0; i < count; i++) {
        switch (type) {
        case SEGD_T_STRING: case SEGD_T_LIST:
            add_value(n, lit_str(chance(r, 60) ? PICK(r, strings) : PICK(r, pieces)));
            break;
        case SEGD_T_NUMBER:
            add_value(n, lit_num(metric ? PICK(r, metric_values) : chance(r, 70) ? PICK(r, numbers) : PICK(r, amounts)));
            break;
        case SEGD_T_BOOL:
            add_value(n, (filter_literal){ .kind = FLIT_BOOL, .boolean = (int)below(r, 2) });
            break;
        case SEGD_T_DATETIME:
            add_value(n, lit_time(PICK(r, times)));
            break;
        default: break;
        }
    }
    if (type != SEGD_T_STRING && type != SEGD_T_LIST) n->case_sensitive = 0;
    /* mostly low <= high as the parsers demand; sometimes reversed, which matches no one */
    if (n->op == FOP_BETWEEN && chance(r, 85)) {
        filter_literal *v = n->values;
        if (v[0].is_time ? v[0].time_ms > v[1].time_ms : v[0].number > v[1].number) {
            filter_literal t = v[0];
            v[0] = v[1];
            v[1] = t;
        }
    }
}

static filter_node *random_leaf(rng *r, const engine *e, int event_type);

/* A random tree: groups down to `depth`, leaves of attributes, events and buckets (or
 * properties of event_type inside a where). */
static filter_node *random_tree(rng *r, const engine *e, int depth, int event_type)
{
    if (depth <= 0 || chance(r, 45)) return random_leaf(r, e, event_type);
    uint32_t k = below(r, 10);
    if (k < 2) {
        filter_node *n = filter_node_new(FILTER_NOT);
        filter_node_add(n, random_tree(r, e, depth - 1, event_type));
        return n;
    }
    filter_node *n = filter_node_new(k < 6 ? FILTER_AND : FILTER_OR);
    uint32_t children = chance(r, 10) ? 0 : 1 + below(r, 3);
    for (uint32_t i = 0; i < children; i++) filter_node_add(n, random_tree(r, e, depth - 1, event_type));
    return n;
}

/* An event condition on any type of the catalog: a where over its properties (when it
 * has some), a window, a metric and a comparison that fits the metric. */
static filter_node *random_event(rng *r, const engine *e)
{
    filter_node *n = filter_node_new(FILTER_EVENT);
    int type = (int)below(r, (uint32_t)engine_event_type_count(e));
    n->name = xstrdup(engine_event_type_name(e, type));
    if (engine_prop_count(e, type) > 0 && chance(r, 50)) n->where = random_tree(r, e, 2, type);
    uint32_t w = below(r, 3);
    if (w == 1) {
        n->window = FWIN_WITHIN;
        n->within_ms = durations[below(r, sizeof durations / sizeof *durations)].ms;
    } else if (w == 2) {
        int64_t a = PICK(r, times), b = PICK(r, times);
        n->window = FWIN_RANGE;
        n->from_ms = a < b ? a : b;
        n->to_ms = a < b ? b : a;
    }
    /* the metric: a property that fits it, when the type has one */
    n->fn = (filter_fn)(chance(r, 40) ? FFN_COUNT : below(r, FFN_COUNT_));
    if (n->fn >= FFN_SUM && n->fn <= FFN_COUNT_DISTINCT) {
        int candidates[64], c = 0;
        assert_true(engine_prop_count(e, type) <= 64);
        for (int pr = 0; pr < engine_prop_count(e, type); pr++) {
            segd_type pt = engine_prop_type(e, type, pr);
            if (n->fn == FFN_COUNT_DISTINCT ? pt != SEGD_T_LIST : pt == SEGD_T_NUMBER) candidates[c++] = pr;
        }
        if (c == 0) n->fn = FFN_COUNT;
        else n->metric_property = xstrdup(engine_prop_name(e, type, candidates[below(r, (uint32_t)c)]));
    }
    random_comparison(r, n, n->fn == FFN_FIRST_AT || n->fn == FFN_LAST_AT ? SEGD_T_DATETIME : SEGD_T_NUMBER, 1);
    return n;
}

static filter_node *random_leaf(rng *r, const engine *e, int event_type)
{
    if (event_type >= 0) {
        filter_node *n = filter_node_new(FILTER_PROPERTY);
        int pr = (int)below(r, (uint32_t)engine_prop_count(e, event_type));
        n->name = xstrdup(engine_prop_name(e, event_type, pr));
        random_comparison(r, n, engine_prop_type(e, event_type, pr), 0);
        return n;
    }
    uint32_t k = below(r, 20);
    if (k < 9) {
        filter_node *n = filter_node_new(FILTER_ATTRIBUTE);
        int a;
        do a = (int)below(r, (uint32_t)engine_attr_slots(e));
        while (a == ATTR_ANONYMOUS_IDS || !engine_attr_name(e, a));   /* dropped slots have no name */
        n->name = xstrdup(engine_attr_name(e, a));
        random_comparison(r, n, engine_attr_type(e, a), 0);
        return n;
    }
    if (k < 18) return random_event(r, e);
    filter_node *n = filter_node_new(FILTER_BUCKET);
    static const char *const salts[] = { "exp-1", "", "\xc3\xbc", "a:b" };
    n->name = xstrdup(PICK(r, salts));
    n->bucket_from = (int)below(r, 100);
    n->bucket_to = n->bucket_from + (int)below(r, (uint32_t)(100 - n->bucket_from));
    return n;
}

/* ---- the SQL oracle ---- */

typedef struct oracle {
    const engine *e;
    sqlite3 *db;
    uint64_t *eval_bits, *sql_bits, *match_bits;
    size_t words;
    uint64_t *nontrivial;   /* counts cases that select some but not all live people */
} oracle;

/* The oracle's answer as bits; 0, or -1 if the SQL failed (printed). */
static int sql_answer(oracle *o, const char *sql, uint64_t *bits)
{
    memset(bits, 0, o->words * sizeof *bits);
    char *q = NULL;
    assert_true(asprintf(&q, "SELECT id FROM people p WHERE %s", sql) > 0);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(o->db, q, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(st, 0);
            assert_true(id >= 0 && (size_t)id < o->words * 64);
            bits[id >> 6] |= 1ULL << (id & 63);
        }
    }
    if (rc != SQLITE_DONE) fprintf(stderr, "oracle SQL failed: %s\n%s\n", sqlite3_errmsg(o->db), q);
    sqlite3_finalize(st);
    free(q);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- printing ---- */

static void dump_node(FILE *out, const filter_node *n)
{
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR: case FILTER_NOT:
        fprintf(out, "%s(", n->kind == FILTER_AND ? "and" : n->kind == FILTER_OR ? "or" : "not");
        for (uint32_t i = 0; i < n->n_children; i++) {
            if (i) fputs(", ", out);
            dump_node(out, n->children[i]);
        }
        fputs(")", out);
        return;
    case FILTER_BUCKET:
        fprintf(out, "bucket(\"%s\", %d..%d)", n->name, n->bucket_from, n->bucket_to);
        return;
    default: break;
    }
    if (n->kind == FILTER_EVENT) {
        fprintf(out, "%s(%s", filter_fn_name(n->fn), n->name);
        if (n->metric_property) fprintf(out, ".%s", n->metric_property);
        if (n->where) { fputs(" where ", out); dump_node(out, n->where); }
        if (n->window == FWIN_WITHIN) fprintf(out, ", within %lldms", (long long)n->within_ms);
        if (n->window == FWIN_RANGE) fprintf(out, ", from %lld to %lld (now %+lld, %+lld ms)", (long long)n->from_ms,
                                             (long long)n->to_ms, (long long)(n->from_ms - NOW), (long long)(n->to_ms - NOW));
        fputs(")", out);
    } else {
        fprintf(out, "%s", n->name);
    }
    fprintf(out, " %s%s", filter_op_name(n->op), n->case_sensitive ? "/sensitive" : "");
    for (uint32_t i = 0; i < n->n_values; i++) {
        const filter_literal *v = &n->values[i];
        if (v->is_time) fprintf(out, " %s=%lld(now%+lld)", v->str, (long long)v->time_ms, (long long)(v->time_ms - NOW));
        else if (v->kind == FLIT_STRING) fprintf(out, " \"%s\"", v->str);
        else if (v->kind == FLIT_NUMBER) fprintf(out, " %.17g", v->number);
        else fprintf(out, " %s", v->boolean ? "true" : "false");
    }
    if (n->duration_ms) fprintf(out, " (%lld ms)", (long long)n->duration_ms);
    if (n->offset_min) fprintf(out, " offset %+d min", n->offset_min);
}

static void dump_cell(FILE *out, const engine *e, const segd_cell *c)
{
    switch (c->type) {
    case SEGD_T_STRING: case SEGD_T_JSON: fprintf(out, "\"%s\"", engine_string(e, c->code, NULL)); break;
    case SEGD_T_NUMBER: fprintf(out, "%.17g", c->number); break;
    case SEGD_T_BOOL: fputs(c->boolean ? "true" : "false", out); break;
    case SEGD_T_DATETIME: fprintf(out, "%lld(now%+lld)", (long long)c->time_ms, (long long)(c->time_ms - NOW)); break;
    case SEGD_T_LIST:
        fputs("[", out);
        for (uint32_t i = 0; i < c->n_codes; i++) fprintf(out, "%s\"%s\"", i ? ", " : "", engine_string(e, c->codes[i], NULL));
        fputs("]", out);
        break;
    default: fputs("missing", out);
    }
}

static void dump_person(FILE *out, const engine *e, person_id p)
{
    fprintf(out, "  person %u%s:", p, engine_person_exists(e, p) ? "" : " (erased)");
    for (int a = 0; a < engine_attr_slots(e); a++) {
        segd_cell c;
        if (!engine_attr_get(e, p, a, &c)) continue;
        fprintf(out, " %s=", engine_attr_name(e, a));
        dump_cell(out, e, &c);
    }
    fputs("\n", out);
    for (int t = 0; t < engine_event_type_count(e); t++) {
        const uint32_t *prevs = engine_event_prevs(e, t);
        for (uint32_t row = engine_person_event_newest(e, p, t); row != ENGINE_NO_ROW; row = prevs[row]) {
            int64_t at = engine_event_times(e, t)[row];
            fprintf(out, "    %s row %u at %lld(now%+lld):", engine_event_type_name(e, t), row, (long long)at,
                    (long long)(at - NOW));
            for (int pr = 0; pr < engine_prop_count(e, t); pr++) {
                segd_cell c;
                if (!engine_event_prop_get(e, t, row, pr, &c)) continue;
                fprintf(out, " %s=", engine_prop_name(e, t, pr));
                dump_cell(out, e, &c);
            }
            fputs("\n", out);
        }
    }
}

/* 1 if some between in the tree has low > high: the evaluators must answer it (no one
 * matches), but the parsers refuse to read it, so it cannot round-trip. */
static int has_reversed_between(const filter_node *n)
{
    if (!n) return 0;
    if (n->op == FOP_BETWEEN && n->n_values == 2) {
        const filter_literal *v = n->values;
        if (v[0].is_time ? v[0].time_ms > v[1].time_ms : v[0].number > v[1].number) return 1;
    }
    for (uint32_t i = 0; i < n->n_children; i++)
        if (has_reversed_between(n->children[i])) return 1;
    return has_reversed_between(n->where);
}

#endif
