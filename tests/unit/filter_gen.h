/* filter_gen.h - random valid filter trees for the round-trip tests of json.c and text.c.
 *
 * Header-only (static functions) because the Makefile builds each tests/unit/test_*.c
 * alone: included by test_filter_json.c and test_filter_text.c. Trees are built the way
 * the parsers build them (canonical datetime and duration text, day starts at the
 * offset), with names and strings chosen to stress quoting: keywords, dots, spaces,
 * backticks, quotes, escapes, control characters and non-ASCII text.
 */
#ifndef SEGD_TEST_FILTER_GEN_H
#define SEGD_TEST_FILTER_GEN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/timefmt.h"
#include "filter/filter.h"

typedef struct filter_gen {
    uint64_t state;
} filter_gen;

static uint32_t gen_next(filter_gen *g)
{
    g->state ^= g->state << 13;   /* xorshift64 */
    g->state ^= g->state >> 7;
    g->state ^= g->state << 17;
    return (uint32_t)(g->state >> 16);
}

static uint32_t gen_below(filter_gen *g, uint32_t n)
{
    return n ? gen_next(g) % n : 0;
}

static const char *const gen_names[] = {
    "plan", "country", "address.city", "$email", "_x1", "and", "OR", "in", "not", "true", "count", "bucket",
    "where", "within", "case", "a b", "a.b.", ".x", "1st", "with`tick", "quote\"d", "back\\slash", "tab\there",
    "new\nline", "größe", "日本", "x.1", "a..b", "did", "segment", "from", "\x7f" "del", "e\xcc\x81", "ends",
};

static const char *const gen_strings[] = {
    "", "pro", "DE", "/pricing", "with \"quotes\"", "back\\slash", "ctl\x01\x1f", "tab\t", "ünïcödé",
    "\xf0\x9f\x98\x80 emoji", "`tick`", "30d", "2026-11-28", "and", "a,b", "(paren)",
};

static char *gen_name(filter_gen *g)
{
    return xstrdup(gen_names[gen_below(g, sizeof gen_names / sizeof gen_names[0])]);
}

static double gen_number(filter_gen *g)
{
    switch (gen_below(g, 8)) {
    case 0: return 0;
    case 1: return (double)gen_below(g, 1000);
    case 2: return -(double)gen_below(g, 100000);
    case 3: return (double)gen_next(g) / 7.0;
    case 4: return 1e20;
    case 5: return -2.5e-7;
    case 6: return 0.1;
    default: return 123456789012345.0;
    }
}

static void gen_string_literal(filter_gen *g, filter_literal *v)
{
    v->kind = FLIT_STRING;
    v->str = xstrdup(gen_strings[gen_below(g, sizeof gen_strings / sizeof gen_strings[0])]);
    v->len = strlen(v->str);
}

/* A time within years 1900..2100, whole milliseconds. */
static int64_t gen_time(filter_gen *g)
{
    int64_t span = 6311433600000LL;        /* 200 years */
    return -2208988800000LL + (int64_t)(((uint64_t)gen_next(g) << 20 ^ gen_next(g)) % (uint64_t)span);
}

static void gen_time_literal(filter_gen *g, filter_literal *v, int64_t ms)
{
    char buf[TIMEFMT_LEN];
    (void)g;
    v->kind = FLIT_STRING;
    v->str = xstrdup(timefmt_format(ms, buf));
    v->len = strlen(v->str);
    v->time_ms = ms;
    v->is_time = 1;
}

static filter_literal *gen_values(filter_node *n, uint32_t count)
{
    n->values = xcalloc(count, sizeof *n->values);
    n->n_values = count;
    return n->values;
}

static int64_t gen_duration(filter_gen *g)
{
    static const int64_t units[] = {1000, 60000, 3600000, 86400000, 604800000};
    return (int64_t)(1 + gen_below(g, 500)) * units[gen_below(g, 5)];
}

/* Fills op and values for a condition comparing a value of `type`. */
static void gen_op_values(filter_gen *g, filter_node *n, segd_type type)
{
    static const filter_op string_ops[] = {FOP_EQ, FOP_NE, FOP_CONTAINS, FOP_NOT_CONTAINS, FOP_STARTS_WITH,
                                           FOP_ENDS_WITH, FOP_IN, FOP_NOT_IN, FOP_IS_SET, FOP_IS_NOT_SET};
    static const filter_op number_ops[] = {FOP_EQ, FOP_NE, FOP_GT, FOP_GTE, FOP_LT, FOP_LTE, FOP_BETWEEN,
                                           FOP_IN, FOP_NOT_IN, FOP_IS_SET, FOP_IS_NOT_SET};
    static const filter_op time_ops[] = {FOP_BEFORE, FOP_AFTER, FOP_BETWEEN, FOP_MORE_THAN_AGO,
                                         FOP_LESS_THAN_AGO, FOP_ON_DAY, FOP_IS_SET, FOP_IS_NOT_SET};
    static const filter_op list_ops[] = {FOP_CONTAINS, FOP_NOT_CONTAINS, FOP_IS_EMPTY, FOP_IS_NOT_EMPTY};
    filter_literal *v;
    switch (type) {
    case SEGD_T_STRING:
        n->op = string_ops[gen_below(g, 10)];
        if (n->op == FOP_IS_SET || n->op == FOP_IS_NOT_SET) break;
        if (n->op == FOP_IN || n->op == FOP_NOT_IN) {
            uint32_t k = 1 + gen_below(g, 4);
            v = gen_values(n, k);
            for (uint32_t i = 0; i < k; i++) gen_string_literal(g, &v[i]);
        } else {
            gen_string_literal(g, gen_values(n, 1));
        }
        n->case_sensitive = (int)gen_below(g, 2);
        break;
    case SEGD_T_NUMBER:
        n->op = number_ops[gen_below(g, 11)];
        if (n->op == FOP_IS_SET || n->op == FOP_IS_NOT_SET) break;
        if (n->op == FOP_IN || n->op == FOP_NOT_IN) {
            uint32_t k = 1 + gen_below(g, 4);
            v = gen_values(n, k);
            for (uint32_t i = 0; i < k; i++) v[i].kind = FLIT_NUMBER, v[i].number = gen_number(g);
        } else if (n->op == FOP_BETWEEN) {
            v = gen_values(n, 2);
            double a = gen_number(g), b = gen_number(g);
            v[0].kind = v[1].kind = FLIT_NUMBER;
            v[0].number = a < b ? a : b;
            v[1].number = a < b ? b : a;
        } else {
            v = gen_values(n, 1);
            v->kind = FLIT_NUMBER;
            v->number = gen_number(g);
        }
        break;
    case SEGD_T_BOOL:
        n->op = FOP_EQ;
        v = gen_values(n, 1);
        v->kind = FLIT_BOOL;
        v->boolean = (int)gen_below(g, 2);
        break;
    case SEGD_T_DATETIME:
        n->op = time_ops[gen_below(g, 8)];
        if (n->op == FOP_BEFORE || n->op == FOP_AFTER) {
            gen_time_literal(g, gen_values(n, 1), gen_time(g));
        } else if (n->op == FOP_BETWEEN) {
            int64_t a = gen_time(g), b = gen_time(g);
            v = gen_values(n, 2);
            gen_time_literal(g, &v[0], a < b ? a : b);
            gen_time_literal(g, &v[1], a < b ? b : a);
        } else if (n->op == FOP_MORE_THAN_AGO || n->op == FOP_LESS_THAN_AGO) {
            char buf[FILTER_DURATION_LEN];
            n->duration_ms = gen_duration(g);
            v = gen_values(n, 1);
            v->kind = FLIT_STRING;
            v->str = xstrdup(filter_duration_format(n->duration_ms, buf));
            v->len = strlen(v->str);
        } else if (n->op == FOP_ON_DAY) {
            char buf[TIMEFMT_LEN];
            int64_t day = gen_time(g) / 86400000 * 86400000;
            timefmt_format(day, buf);
            buf[10] = 0;
            int64_t day_start;
            timefmt_parse(buf, 10, 1, &day_start);
            n->offset_min = gen_below(g, 3) ? 0 : (int32_t)gen_below(g, 2 * 23 * 60 + 1) - 23 * 60;
            v = gen_values(n, 1);
            v->kind = FLIT_STRING;
            v->str = xstrdup(buf);
            v->len = 10;
            v->time_ms = day_start - (int64_t)n->offset_min * 60000;
            v->is_time = 1;
        }
        break;
    default:                                   /* lists */
        n->op = list_ops[gen_below(g, 4)];
        if (n->op == FOP_CONTAINS || n->op == FOP_NOT_CONTAINS) {
            gen_string_literal(g, gen_values(n, 1));
            n->case_sensitive = (int)gen_below(g, 2);
        }
        break;
    }
}

static filter_node *gen_node(filter_gen *g, int depth, int in_where);

static filter_node *gen_group(filter_gen *g, int depth, int in_where)
{
    uint32_t pick = gen_below(g, 3);
    filter_node *n = filter_node_new(pick == 0 ? FILTER_AND : pick == 1 ? FILTER_OR : FILTER_NOT);
    uint32_t k = n->kind == FILTER_NOT ? 1 : gen_below(g, 4);
    for (uint32_t i = 0; i < k; i++) filter_node_add(n, gen_node(g, depth + 1, in_where));
    return n;
}

static filter_node *gen_condition(filter_gen *g, int in_where)
{
    static const segd_type types[] = {SEGD_T_STRING, SEGD_T_NUMBER, SEGD_T_BOOL, SEGD_T_DATETIME, SEGD_T_LIST};
    filter_node *n = filter_node_new(in_where ? FILTER_PROPERTY : FILTER_ATTRIBUTE);
    n->name = gen_name(g);
    gen_op_values(g, n, types[gen_below(g, 5)]);
    return n;
}

static filter_node *gen_event(filter_gen *g, int depth)
{
    filter_node *n = filter_node_new(FILTER_EVENT);
    n->name = gen_name(g);
    n->fn = (filter_fn)gen_below(g, FFN_COUNT_);
    if (n->fn >= FFN_SUM && n->fn <= FFN_COUNT_DISTINCT) n->metric_property = gen_name(g);
    if (depth < 6 && gen_below(g, 2)) n->where = gen_node(g, depth + 1, 1);
    switch (gen_below(g, 3)) {
    case 1:
        n->window = FWIN_WITHIN;
        n->within_ms = gen_duration(g);
        break;
    case 2: {
        int64_t a = gen_time(g), b = gen_time(g);
        n->window = FWIN_RANGE;
        n->from_ms = a < b ? a : b;
        n->to_ms = a < b ? b : a;
        break;
    }
    default:
        break;
    }
    if (n->fn == FFN_COUNT && gen_below(g, 3) == 0) {     /* "did it", the default */
        filter_literal *v = gen_values(n, 1);
        n->op = FOP_GTE;
        v->kind = FLIT_NUMBER;
        v->number = 1;
        return n;
    }
    gen_op_values(g, n, n->fn == FFN_FIRST_AT || n->fn == FFN_LAST_AT ? SEGD_T_DATETIME : SEGD_T_NUMBER);
    return n;
}

static filter_node *gen_node(filter_gen *g, int depth, int in_where)
{
    uint32_t pick = gen_below(g, depth >= 6 ? 6 : 10);
    if (in_where) return pick < 4 ? gen_condition(g, 1) : depth >= 6 ? gen_condition(g, 1) : gen_group(g, depth, 1);
    switch (pick) {
    case 0: case 1: return gen_condition(g, 0);
    case 2: case 3: return gen_event(g, depth);
    case 4: {
        filter_node *n = filter_node_new(FILTER_BUCKET);
        n->name = xstrdup(gen_strings[gen_below(g, sizeof gen_strings / sizeof gen_strings[0])]);
        n->bucket_from = (int)gen_below(g, 100);
        n->bucket_to = n->bucket_from + (int)gen_below(g, (uint32_t)(100 - n->bucket_from));
        return n;
    }
    case 5: {
        static const filter_op ops[] = {FOP_IN, FOP_NOT_IN, FOP_IN_CACHED};
        filter_node *n = filter_node_new(FILTER_SEGMENT);
        n->name = gen_name(g);
        n->op = ops[gen_below(g, 3)];
        return n;
    }
    default:
        return gen_group(g, depth, 0);
    }
}

/* A random valid tree from seed (never 0 after mixing). The caller frees it. */
static filter_node *filter_gen_tree(uint64_t seed)
{
    filter_gen g = {seed * 0x9E3779B97F4A7C15ULL + 1};
    return gen_node(&g, 0, 0);
}

#endif
