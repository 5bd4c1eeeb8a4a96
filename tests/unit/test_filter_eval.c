/* test_filter_eval.c - unit tests of filter binding and evaluation (src/filter/bind.c,
 * src/filter/eval.c): every operator per type with missing values, groups, every event
 * metric with where and windows, buckets, segments through a resolver, and binding
 * errors. Trees are built by hand so these tests do not depend on the parsers. Every
 * case checks filter_eval (everyone at once) against the expected people and
 * filter_match (one person) against filter_eval for every person.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "engine/engine.h"
#include "filter/filter.h"

#define NOW 1780000000000LL      /* the test clock */
#define DAY 86400000LL

/* ---- building trees ---- */

static filter_literal lit_str(const char *s)
{
    return (filter_literal){ .kind = FLIT_STRING, .str = xstrdup(s), .len = strlen(s) };
}

static filter_literal lit_num(double x)
{
    return (filter_literal){ .kind = FLIT_NUMBER, .number = x };
}

static filter_literal lit_time(int64_t t)
{
    filter_literal l = lit_str("(time)");
    l.time_ms = t;
    l.is_time = 1;
    return l;
}

static filter_node *cond_n(filter_kind kind, const char *name, filter_op op, int n, ...)
{
    filter_node *c = filter_node_new(kind);
    c->name = xstrdup(name);
    c->op = op;
    c->n_values = (uint32_t)n;
    c->values = n ? xcalloc((size_t)n, sizeof *c->values) : NULL;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) c->values[i] = va_arg(ap, filter_literal);
    va_end(ap);
    return c;
}

#define ATTR(name, op, ...) cond_n(FILTER_ATTRIBUTE, name, op, __VA_ARGS__)
#define PROP(name, op, ...) cond_n(FILTER_PROPERTY, name, op, __VA_ARGS__)

static filter_node *group(filter_kind kind, int n, ...)
{
    filter_node *g = filter_node_new(kind);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) filter_node_add(g, va_arg(ap, filter_node *));
    va_end(ap);
    return g;
}

static filter_node *event_n(const char *name, filter_fn fn, const char *prop, filter_op op, int n, ...)
{
    filter_node *c = filter_node_new(FILTER_EVENT);
    c->name = xstrdup(name);
    c->fn = fn;
    c->metric_property = prop ? xstrdup(prop) : NULL;
    c->op = op;
    c->n_values = (uint32_t)n;
    c->values = n ? xcalloc((size_t)n, sizeof *c->values) : NULL;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) c->values[i] = va_arg(ap, filter_literal);
    va_end(ap);
    return c;
}

/* ---- data: six people ----
 * p0 ann:   plan "Pro", age 30, vip true,  signup NOW-40d, tags [vip, Beta], city "Straße"
 * p1 bob:   plan "free", age 17.5, vip false, signup NOW-5d, tags [],       city "STRASSE"
 * p2 cy:    plan "pro", no age, no vip, no signup, no tags, city "Straße" (long s)
 * p3 erased (had plan "pro")
 * p4 dee:   no attributes but user_id; events only
 * p5 (no user id, anonymous): plan "Enterprise", age 45
 * events purchase(amount number, sku string): p0: 10@NOW-1d sku a, 20@NOW-10d sku b, 5@NOW-100d sku a
 *                                              p1: 100@NOW-14d exactly (window edge), sku c
 *                                              p4: no amount @NOW-2d, sku a
 * events page_view(url): p0 "/pricing" @NOW-3d, "/Pricing/x" @NOW-20d; p2 "/home" @NOW-1d
 */
typedef struct fixture {
    engine *e;
    person_id p[6];
} fixture;

static void set(engine *e, person_id p, const char *attr, segd_value v)
{
    int a = engine_attr_find(e, attr);
    assert_true(a >= 0);
    assert_int_equal(engine_attr_set(e, p, a, &v), 0);
}

static segd_value sv(const char *s) { return (segd_value){ .type = SEGD_T_STRING, .str = s, .str_len = strlen(s) }; }
static segd_value nv(double x) { return (segd_value){ .type = SEGD_T_NUMBER, .number = x }; }
static segd_value bv(int b) { return (segd_value){ .type = SEGD_T_BOOL, .boolean = b }; }
static segd_value tv(int64_t t) { return (segd_value){ .type = SEGD_T_DATETIME, .time_ms = t }; }

static void purchase(fixture *f, int who, int64_t t, int has_amount, double amount, const char *sku)
{
    int type = engine_event_type_find(f->e, "purchase");
    int props[2] = { engine_prop_find(f->e, type, "amount"), engine_prop_find(f->e, type, "sku") };
    segd_value vals[2] = { has_amount ? nv(amount) : (segd_value){ .type = SEGD_T_NONE }, sv(sku) };
    assert_true(engine_event_append(f->e, f->p[who], type, t, 2, props, vals) >= 0);
}

static void page_view(fixture *f, int who, int64_t t, const char *url)
{
    int type = engine_event_type_find(f->e, "page_view");
    int prop = engine_prop_find(f->e, type, "url");
    segd_value v = sv(url);
    assert_true(engine_event_append(f->e, f->p[who], type, t, 1, &prop, &v) >= 0);
}

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    engine *e = f->e = engine_new(NULL);
    for (int i = 0; i < 6; i++) f->p[i] = engine_person_create(e, 1000 + (uint64_t)i);
    assert_true(engine_attr_declare(e, "plan", SEGD_T_STRING) >= 0);
    assert_true(engine_attr_declare(e, "age", SEGD_T_NUMBER) >= 0);
    assert_true(engine_attr_declare(e, "vip", SEGD_T_BOOL) >= 0);
    assert_true(engine_attr_declare(e, "signup", SEGD_T_DATETIME) >= 0);
    const char *tags0[] = { "vip", "Beta" };
    set(e, f->p[0], "user_id", sv("ann"));
    set(e, f->p[0], "plan", sv("Pro"));
    set(e, f->p[0], "age", nv(30));
    set(e, f->p[0], "vip", bv(1));
    set(e, f->p[0], "signup", tv(NOW - 40 * DAY));
    set(e, f->p[0], "tags", (segd_value){ .type = SEGD_T_LIST, .items = tags0, .n_items = 2 });
    set(e, f->p[0], "city", sv("Straße"));
    set(e, f->p[1], "user_id", sv("bob"));
    set(e, f->p[1], "plan", sv("free"));
    set(e, f->p[1], "age", nv(17.5));
    set(e, f->p[1], "vip", bv(0));
    set(e, f->p[1], "signup", tv(NOW - 5 * DAY));
    set(e, f->p[1], "tags", (segd_value){ .type = SEGD_T_LIST, .items = NULL, .n_items = 0 });
    set(e, f->p[1], "city", sv("STRASSE"));
    set(e, f->p[2], "user_id", sv("cy"));
    set(e, f->p[2], "plan", sv("pro"));
    set(e, f->p[2], "city", sv("\xC5\xBFtra\xC3\x9F" "e"));
    set(e, f->p[3], "user_id", sv("gone"));
    set(e, f->p[3], "plan", sv("pro"));
    set(e, f->p[4], "user_id", sv("dee"));
    set(e, f->p[5], "plan", sv("Enterprise"));
    set(e, f->p[5], "age", nv(45));

    int type = engine_event_type_declare(e, "purchase");
    assert_true(engine_prop_declare(e, type, "amount", SEGD_T_NUMBER) >= 0);
    assert_true(engine_prop_declare(e, type, "sku", SEGD_T_STRING) >= 0);
    int pv = engine_event_type_declare(e, "page_view");
    assert_true(engine_prop_declare(e, pv, "url", SEGD_T_STRING) >= 0);
    purchase(f, 0, NOW - 1 * DAY, 1, 10, "a");
    purchase(f, 3, NOW - 1 * DAY, 1, 999, "a");
    purchase(f, 0, NOW - 10 * DAY, 1, 20, "b");
    purchase(f, 1, NOW - 14 * DAY, 1, 100, "c");
    purchase(f, 0, NOW - 100 * DAY, 1, 5, "a");
    purchase(f, 4, NOW - 2 * DAY, 0, 0, "a");
    page_view(f, 0, NOW - 3 * DAY, "/pricing");
    page_view(f, 2, NOW - 1 * DAY, "/home");
    page_view(f, 0, NOW - 20 * DAY, "/Pricing/x");
    assert_int_equal(engine_person_erase(e, f->p[3]), 0);
    assert_int_equal(engine_check(e), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    engine_free(f->e);
    free(f);
    return 0;
}

/* Binds and evaluates tree (freed here); `want` is a string of person indexes such as
 * "025" (people 0, 2 and 5). filter_match must agree for every person. */
static void expect(fixture *f, filter_node *tree, const char *want)
{
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(filter_check(tree), 0);
    int rc = filter_bind(tree, f->e, NULL, &err);
    if (rc) fail_msg("bind failed: %s %s at %s", err.code, err.message, err.field);
    filter_env env = { .e = f->e, .now_ms = NOW };
    size_t words = filter_words(f->e);
    uint64_t *bits = xcalloc(words, sizeof *bits);
    assert_int_equal(filter_eval(tree, &env, bits), 0);
    char got[32] = "";
    for (int i = 0; i < 6; i++) {
        int in = (int)(bits[f->p[i] >> 6] >> (f->p[i] & 63) & 1);
        if (in) snprintf(got + strlen(got), sizeof got - strlen(got), "%d", i);
        int m = filter_match(tree, &env, f->p[i]);
        if (m != in) fail_msg("person %d: filter_eval says %d, filter_match %d (want \"%s\")", i, in, m, want);
    }
    if (strcmp(got, want) != 0) fail_msg("matched \"%s\", want \"%s\"", got, want);
    free(bits);
    filter_free(tree);
}

static void test_string_ops(void **state)
{
    fixture *f = *state;
    expect(f, ATTR("plan", FOP_EQ, 1, lit_str("pro")), "02");
    filter_node *cs = ATTR("plan", FOP_EQ, 1, lit_str("pro"));
    cs->case_sensitive = 1;
    expect(f, cs, "2");
    expect(f, ATTR("plan", FOP_NE, 1, lit_str("PRO")), "145");      /* missing counts for ne */
    expect(f, ATTR("plan", FOP_CONTAINS, 1, lit_str("O")), "02");
    expect(f, ATTR("plan", FOP_NOT_CONTAINS, 1, lit_str("o")), "145");
    expect(f, ATTR("plan", FOP_STARTS_WITH, 1, lit_str("ent")), "5");
    expect(f, ATTR("plan", FOP_ENDS_WITH, 1, lit_str("EE")), "1");
    expect(f, ATTR("plan", FOP_IN, 2, lit_str("free"), lit_str("enterprise")), "15");
    expect(f, ATTR("plan", FOP_NOT_IN, 2, lit_str("free"), lit_str("enterprise")), "024");
    expect(f, ATTR("plan", FOP_IS_SET, 0), "0125");
    expect(f, ATTR("plan", FOP_IS_NOT_SET, 0), "4");
    expect(f, ATTR("plan", FOP_CONTAINS, 1, lit_str("")), "0125");
    /* simple case folding: long s folds to s, sharp s stays (no full folding to "ss") */
    expect(f, ATTR("city", FOP_EQ, 1, lit_str("STRASSE")), "1");
    expect(f, ATTR("city", FOP_EQ, 1, lit_str("straße")), "02");
}

static void test_number_bool_ops(void **state)
{
    fixture *f = *state;
    expect(f, ATTR("age", FOP_GT, 1, lit_num(17.5)), "05");
    expect(f, ATTR("age", FOP_GTE, 1, lit_num(17.5)), "015");
    expect(f, ATTR("age", FOP_LT, 1, lit_num(30)), "1");
    expect(f, ATTR("age", FOP_LTE, 1, lit_num(30)), "01");
    expect(f, ATTR("age", FOP_EQ, 1, lit_num(45)), "5");
    expect(f, ATTR("age", FOP_NE, 1, lit_num(45)), "0124");
    expect(f, ATTR("age", FOP_BETWEEN, 2, lit_num(17.5), lit_num(30)), "01");
    expect(f, ATTR("age", FOP_IN, 2, lit_num(30), lit_num(45)), "05");
    expect(f, ATTR("age", FOP_NOT_IN, 2, lit_num(30), lit_num(45)), "124");
    expect(f, ATTR("age", FOP_IS_NOT_SET, 0), "24");
    filter_node *t = ATTR("vip", FOP_EQ, 0);
    t->n_values = 1;
    t->values = xcalloc(1, sizeof *t->values);
    t->values[0] = (filter_literal){ .kind = FLIT_BOOL, .boolean = 1 };
    expect(f, t, "0");
    t = ATTR("vip", FOP_EQ, 0);
    t->n_values = 1;
    t->values = xcalloc(1, sizeof *t->values);
    t->values[0] = (filter_literal){ .kind = FLIT_BOOL, .boolean = 0 };
    expect(f, t, "1");
    expect(f, ATTR("vip", FOP_IS_SET, 0), "01");
}

static void test_datetime_ops(void **state)
{
    fixture *f = *state;
    expect(f, ATTR("signup", FOP_BEFORE, 1, lit_time(NOW - 5 * DAY)), "0");
    expect(f, ATTR("signup", FOP_AFTER, 1, lit_time(NOW - 5 * DAY)), "");
    expect(f, ATTR("signup", FOP_BETWEEN, 2, lit_time(NOW - 40 * DAY), lit_time(NOW - 5 * DAY)), "01");
    filter_node *t = ATTR("signup", FOP_MORE_THAN_AGO, 1, lit_str("30d"));
    t->duration_ms = 30 * DAY;
    expect(f, t, "0");
    t = ATTR("signup", FOP_LESS_THAN_AGO, 1, lit_str("5d"));
    t->duration_ms = 5 * DAY;   /* exactly 5 days ago counts as less than 5 days ago */
    expect(f, t, "1");
    t = ATTR("signup", FOP_MORE_THAN_AGO, 1, lit_str("5d"));
    t->duration_ms = 5 * DAY;
    expect(f, t, "0");
    int64_t day0 = (NOW - 40 * DAY) / DAY * DAY;
    expect(f, ATTR("signup", FOP_ON_DAY, 1, lit_time(day0)), "0");
    expect(f, ATTR("signup", FOP_ON_DAY, 1, lit_time(day0 + DAY)), "");
    expect(f, ATTR("signup", FOP_IS_NOT_SET, 0), "245");
}

static void test_list_ops(void **state)
{
    fixture *f = *state;
    expect(f, ATTR("tags", FOP_CONTAINS, 1, lit_str("beta")), "0");
    filter_node *t = ATTR("tags", FOP_CONTAINS, 1, lit_str("beta"));
    t->case_sensitive = 1;
    expect(f, t, "");
    expect(f, ATTR("tags", FOP_CONTAINS, 1, lit_str("vi")), "");   /* items, not substrings */
    expect(f, ATTR("tags", FOP_NOT_CONTAINS, 1, lit_str("VIP")), "1245");
    expect(f, ATTR("tags", FOP_IS_EMPTY, 0), "1245");
    expect(f, ATTR("tags", FOP_IS_NOT_EMPTY, 0), "0");
}

static void test_groups(void **state)
{
    fixture *f = *state;
    expect(f, group(FILTER_AND, 0), "01245");
    expect(f, group(FILTER_OR, 0), "");
    expect(f, group(FILTER_AND, 2, ATTR("plan", FOP_EQ, 1, lit_str("pro")), ATTR("age", FOP_IS_SET, 0)), "0");
    expect(f, group(FILTER_OR, 2, ATTR("plan", FOP_EQ, 1, lit_str("free")), ATTR("age", FOP_GT, 1, lit_num(40))), "15");
    /* not is plain negation: people without a plan are in */
    expect(f, group(FILTER_NOT, 1, ATTR("plan", FOP_EQ, 1, lit_str("pro"))), "145");
    expect(f, group(FILTER_NOT, 1, group(FILTER_AND, 0)), "");
}

static void test_event_counts(void **state)
{
    fixture *f = *state;
    expect(f, event_n("purchase", FFN_COUNT, NULL, FOP_GTE, 1, lit_num(1)), "014");
    expect(f, event_n("purchase", FFN_COUNT, NULL, FOP_GTE, 1, lit_num(3)), "0");
    /* never did: also people with no events at all, never the erased */
    expect(f, event_n("purchase", FFN_COUNT, NULL, FOP_EQ, 1, lit_num(0)), "25");
    filter_node *t = event_n("purchase", FFN_COUNT, NULL, FOP_GTE, 1, lit_num(1));
    t->window = FWIN_WITHIN;
    t->within_ms = 14 * DAY;   /* NOW-14d is inside: now - 14d <= t */
    expect(f, t, "014");
    t = event_n("purchase", FFN_COUNT, NULL, FOP_GTE, 1, lit_num(1));
    t->window = FWIN_WITHIN;
    t->within_ms = 14 * DAY - 1;
    expect(f, t, "04");
    t = event_n("purchase", FFN_COUNT, NULL, FOP_EQ, 1, lit_num(1));
    t->window = FWIN_RANGE;   /* from inclusive, to exclusive */
    t->from_ms = NOW - 14 * DAY;
    t->to_ms = NOW - 10 * DAY;
    expect(f, t, "1");
    t = event_n("purchase", FFN_COUNT, NULL, FOP_GTE, 1, lit_num(2));
    t->where = PROP("sku", FOP_EQ, 1, lit_str("A"));
    expect(f, t, "0");
    t = event_n("page_view", FFN_COUNT, NULL, FOP_GTE, 1, lit_num(2));
    t->where = PROP("url", FOP_CONTAINS, 1, lit_str("/pricing"));
    expect(f, t, "0");
    t = event_n("page_view", FFN_COUNT, NULL, FOP_GTE, 1, lit_num(1));
    t->where = group(FILTER_NOT, 1, PROP("url", FOP_STARTS_WITH, 1, lit_str("/pricing")));
    expect(f, t, "2");
    /* a property missing on the event counts for ne */
    t = event_n("purchase", FFN_COUNT, NULL, FOP_GTE, 1, lit_num(1));
    t->where = PROP("amount", FOP_NE, 1, lit_num(10));
    expect(f, t, "014");
    t = event_n("purchase", FFN_COUNT, NULL, FOP_GTE, 1, lit_num(1));
    t->where = PROP("amount", FOP_IS_NOT_SET, 0);
    expect(f, t, "4");
}

static void test_event_metrics(void **state)
{
    fixture *f = *state;
    expect(f, event_n("purchase", FFN_SUM, "amount", FOP_GTE, 1, lit_num(35)), "01");
    expect(f, event_n("purchase", FFN_SUM, "amount", FOP_EQ, 1, lit_num(0)), "245");
    expect(f, event_n("purchase", FFN_AVG, "amount", FOP_LT, 1, lit_num(12)), "0");
    expect(f, event_n("purchase", FFN_AVG, "amount", FOP_IS_NOT_SET, 0), "245");
    expect(f, event_n("purchase", FFN_MIN, "amount", FOP_EQ, 1, lit_num(5)), "0");
    expect(f, event_n("purchase", FFN_MAX, "amount", FOP_GTE, 1, lit_num(100)), "1");
    expect(f, event_n("purchase", FFN_MAX, "amount", FOP_NE, 1, lit_num(100)), "0245");
    expect(f, event_n("purchase", FFN_COUNT_DISTINCT, "sku", FOP_EQ, 1, lit_num(2)), "0");
    expect(f, event_n("purchase", FFN_COUNT_DISTINCT, "sku", FOP_EQ, 1, lit_num(1)), "14");
    expect(f, event_n("purchase", FFN_LAST_AT, NULL, FOP_AFTER, 1, lit_time(NOW - 3 * DAY)), "04");
    expect(f, event_n("purchase", FFN_FIRST_AT, NULL, FOP_BEFORE, 1, lit_time(NOW - 50 * DAY)), "0");
    filter_node *t = event_n("purchase", FFN_FIRST_AT, NULL, FOP_MORE_THAN_AGO, 1, lit_str("7d"));
    t->duration_ms = 7 * DAY;
    expect(f, t, "01");
    t = event_n("purchase", FFN_SUM, "amount", FOP_GTE, 1, lit_num(30));
    t->window = FWIN_WITHIN;
    t->within_ms = 30 * DAY;
    expect(f, t, "01");
    t = event_n("purchase", FFN_SUM, "amount", FOP_GTE, 1, lit_num(15));
    t->where = PROP("sku", FOP_EQ, 1, lit_str("a"));
    expect(f, t, "0");
    /* the example: at least 3 purchases OR spent at least 500 */
    expect(f, group(FILTER_OR, 2, event_n("purchase", FFN_COUNT, NULL, FOP_GTE, 1, lit_num(3)),
                    event_n("purchase", FFN_SUM, "amount", FOP_GTE, 1, lit_num(100))), "01");
}

static void test_bucket(void **state)
{
    fixture *f = *state;
    /* bucket of everyone with a user id, computed here independently of eval.c */
    const char *ids[6] = { "ann", "bob", "cy", NULL, "dee", NULL };
    char want[32] = "";
    for (int i = 0; i < 6; i++) {
        if (!ids[i]) continue;
        char buf[64];
        snprintf(buf, sizeof buf, "exp-1:%s", ids[i]);
        uint64_t h = 0xcbf29ce484222325ULL;
        for (const char *s = buf; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
        if (h % 100 < 50) snprintf(want + strlen(want), sizeof want - strlen(want), "%d", i);
    }
    filter_node *t = filter_node_new(FILTER_BUCKET);
    t->name = xstrdup("exp-1");
    t->bucket_from = 0;
    t->bucket_to = 49;
    expect(f, t, want);
    t = filter_node_new(FILTER_BUCKET);
    t->name = xstrdup("exp-1");
    t->bucket_from = 0;
    t->bucket_to = 99;
    expect(f, t, "0124");   /* everyone with a user id */
}

/* A resolver that knows one segment, "seg_a" = {p1, p5}; its snapshot is {p0}. */
typedef struct seg_ctx {
    fixture *f;
} seg_ctx;

static int seg_check(void *ctx, const char *id)
{
    (void)ctx;
    return strcmp(id, "seg_a") == 0 ? 0 : SEGD_ENOTFOUND;
}

static int seg_members(void *ctx, const char *id, int cached, uint64_t *out, uint32_t limit)
{
    seg_ctx *s = ctx;
    (void)limit;
    if (strcmp(id, "seg_a") != 0) return SEGD_ENOTFOUND;
    if (cached) {
        out[s->f->p[0] >> 6] |= (uint64_t)1 << (s->f->p[0] & 63);
    } else {
        out[s->f->p[1] >> 6] |= (uint64_t)1 << (s->f->p[1] & 63);
        out[s->f->p[5] >> 6] |= (uint64_t)1 << (s->f->p[5] & 63);
    }
    return 0;
}

static int seg_is_member(void *ctx, const char *id, int cached, person_id p)
{
    seg_ctx *s = ctx;
    if (strcmp(id, "seg_a") != 0) return SEGD_ENOTFOUND;
    return cached ? p == s->f->p[0] : p == s->f->p[1] || p == s->f->p[5];
}

static void test_segments(void **state)
{
    fixture *f = *state;
    seg_ctx ctx = { f };
    filter_resolver r = { &ctx, seg_check, seg_members, seg_is_member };
    const filter_op ops[3] = { FOP_IN, FOP_NOT_IN, FOP_IN_CACHED };
    const char *want[3] = { "15", "024", "0" };
    for (int k = 0; k < 3; k++) {
        filter_node *t = filter_node_new(FILTER_SEGMENT);
        t->name = xstrdup("seg_a");
        t->op = ops[k];
        segd_error err;
        segd_error_clear(&err);
        assert_int_equal(filter_bind(t, f->e, &r, &err), 0);
        filter_env env = { .e = f->e, .now_ms = NOW, .resolver = &r };
        uint64_t bits[1] = { 0 };
        assert_int_equal(filter_eval(t, &env, bits), 0);
        char got[32] = "";
        for (int i = 0; i < 6; i++) {
            int in = (int)(bits[0] >> f->p[i] & 1);
            assert_int_equal(filter_match(t, &env, f->p[i]), in);
            if (in) snprintf(got + strlen(got), sizeof got - strlen(got), "%d", i);
        }
        assert_string_equal(got, want[k]);
        filter_free(t);
    }
    filter_node *t = filter_node_new(FILTER_SEGMENT);
    t->name = xstrdup("seg_zzz");
    t->op = FOP_IN;
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(filter_bind(t, f->e, &r, &err), SEGD_EINVAL);
    assert_string_equal(err.code, "unknown_segment");
    filter_free(t);
}

/* Binds tree and expects the error code, the path, and a message containing `hint`. */
static void expect_bind_error(fixture *f, filter_node *tree, const char *code, const char *path, const char *hint)
{
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(filter_bind(tree, f->e, NULL, &err), SEGD_EINVAL);
    assert_int_equal(err.status, 422);
    assert_string_equal(err.code, code);
    assert_string_equal(err.field, path);
    if (!strstr(err.message, hint)) fail_msg("message \"%s\" lacks \"%s\"", err.message, hint);
    filter_free(tree);
}

static void test_bind_errors(void **state)
{
    fixture *f = *state;
    expect_bind_error(f, ATTR("plna", FOP_EQ, 1, lit_str("x")), "unknown_attribute", "$.attribute", "\"plan\"");
    expect_bind_error(f, group(FILTER_AND, 2, ATTR("plan", FOP_EQ, 1, lit_str("x")), ATTR("age", FOP_CONTAINS, 1, lit_str("3"))),
                      "operator_mismatch", "$.and[1].op", "gt, gte");
    expect_bind_error(f, ATTR("age", FOP_EQ, 1, lit_str("3")), "value_mismatch", "$.value", "a number");
    expect_bind_error(f, ATTR("plan", FOP_IN, 2, lit_str("a"), lit_num(3)), "value_mismatch", "$.value[1]", "a string");
    expect_bind_error(f, event_n("purchace", FFN_COUNT, NULL, FOP_GTE, 1, lit_num(1)), "unknown_event", "$.event",
                      "\"purchase\"");
    expect_bind_error(f, event_n("purchase", FFN_SUM, "sku", FOP_GTE, 1, lit_num(1)), "metric_mismatch",
                      "$.metric.property", "numeric");
    expect_bind_error(f, event_n("purchase", FFN_SUM, "amout", FOP_GTE, 1, lit_num(1)), "unknown_property",
                      "$.metric.property", "\"amount\"");
    filter_node *t = event_n("purchase", FFN_COUNT, NULL, FOP_GTE, 1, lit_num(1));
    t->where = group(FILTER_OR, 1, PROP("url", FOP_EQ, 1, lit_str("x")));
    expect_bind_error(f, t, "unknown_property", "$.where.or[0].property", "no property");
    expect_bind_error(f, ATTR("tags", FOP_EQ, 1, lit_str("x")), "operator_mismatch", "$.op", "contains");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_string_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_bool_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_datetime_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bucket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
