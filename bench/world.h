/* world.h - the deterministic data set of `make bench`'s in-memory benchmarks
 * (bench/filters.c, bench/segments.c): people and events generated straight into an
 * engine from a fixed xorshift seed and a fixed clock, so every run measures the same
 * data. 10 attributes a person (user_id, email, name, phone, country, city, created_at,
 * plan, ltv, newsletter), tags on about half, last_seen from their events; a year of
 * events in arrival order (times rise with the row, up to an hour of disorder, as a
 * tracking stream delivers them): 3/8 page_view (path, referrer), 1/8 purchase
 * (amount, sku, currency), then click, signup_step, search, add_to_cart.
 * Header-only: each benchmark is one program.
 */
#ifndef SEGD_BENCH_WORLD_H
#define SEGD_BENCH_WORLD_H

#include "../src/base/alloc.h"
#include "../src/base/error.h"
#include "../src/engine/engine.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOW_MS 1780272000000LL   /* 2026-06-01T00:00:00Z: the clock of every filter */
#define DAY_MS 86400000LL

static uint64_t seed = 0x2545F4914F6CDD1DULL;

static uint64_t rnd(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

static inline double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *COUNTRIES[] = { "DE", "FR", "US", "GB", "ES", "JP", "BR", "IN", "IT", "NL" };
static const char *CITIES[] = { "Berlin", "Paris", "New York", "London", "Madrid", "Tokyo", "Sao Paulo",
                                "Bengaluru", "Rome", "Amsterdam" };
static const char *PLANS[] = { "free", "starter", "pro", "enterprise" };
static const char *TAGS[] = { "vip", "beta", "churn-risk", "newsletter", "partner", "trial", "webinar",
                              "enterprise-lead", "survey", "support" };
static const char *PATHS[] = { "/", "/pricing", "/docs", "/blog", "/features", "/signup", "/checkout", "/account",
                               "/pricing/enterprise", "/docs/api" };

static void must(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "bench/filters: %s failed: %s\n", what, segd_strerror(rc));
        exit(1);
    }
}

static int declare(engine *e, const char *name, segd_type type)
{
    int a = engine_attr_declare(e, name, type);
    must(a, name);
    return a;
}

static segd_value str(const char *s) { return (segd_value){ .type = SEGD_T_STRING, .str = s, .str_len = strlen(s) }; }

static void set(engine *e, person_id p, int attr, segd_value v)
{
    must(engine_attr_set(e, p, attr, &v), "engine_attr_set");
}

/* 10 attributes a person (user_id, email, name, phone, country, city, created_at,
 * plan, ltv, newsletter), tags on about half, last_seen from their events. */
static void gen_people(engine *e, uint32_t people)
{
    int plan = declare(e, "plan", SEGD_T_STRING);
    int ltv = declare(e, "ltv", SEGD_T_NUMBER);
    int newsletter = declare(e, "newsletter", SEGD_T_BOOL);
    engine_reserve(e, people, people * 4 + 64);
    char buf[128];
    for (uint32_t i = 0; i < people; i++) {
        person_id p = engine_person_create(e, 0x1000000ULL + i);
        if (p == PERSON_NONE) must(SEGD_EINVAL, "engine_person_create");
        snprintf(buf, sizeof buf, "user-%07u", i);
        set(e, p, ATTR_USER_ID, str(buf));
        snprintf(buf, sizeof buf, "person%u@example%u.com", i, (unsigned)(rnd() % 50));
        set(e, p, ATTR_EMAIL, str(buf));
        snprintf(buf, sizeof buf, "Person %u", (unsigned)(rnd() % (people / 2 + 1)));
        set(e, p, ATTR_NAME, str(buf));
        snprintf(buf, sizeof buf, "+49%09u", (unsigned)(rnd() % 1000000000));
        set(e, p, ATTR_PHONE, str(buf));
        uint64_t c = rnd() % 10;
        set(e, p, ATTR_COUNTRY, str(COUNTRIES[c]));
        set(e, p, ATTR_CITY, str(CITIES[c]));
        segd_value created = { .type = SEGD_T_DATETIME, .time_ms = NOW_MS - (int64_t)(rnd() % (730 * DAY_MS)) };
        set(e, p, ATTR_CREATED_AT, created);
        set(e, p, plan, str(PLANS[rnd() % 4]));
        set(e, p, ltv, (segd_value){ .type = SEGD_T_NUMBER, .number = (double)(rnd() % 500000) / 100.0 });
        set(e, p, newsletter, (segd_value){ .type = SEGD_T_BOOL, .boolean = (int)(rnd() & 1) });
        if (rnd() & 1) {
            const char *tags[3];
            size_t n = 1 + rnd() % 3;
            for (size_t k = 0; k < n; k++) tags[k] = TAGS[rnd() % 10];
            set(e, p, ATTR_TAGS, (segd_value){ .type = SEGD_T_LIST, .items = tags, .n_items = n });
        }
    }
}

/* Events over the last year, in time order: 3/8 page_view (path, referrer), 1/8 purchase (amount,
 * sku, currency), then click, signup_step, search, add_to_cart. */
static void gen_events(engine *e, uint32_t people, uint64_t events)
{
    static const char *types[] = { "page_view", "page_view", "page_view", "click", "purchase", "signup_step",
                                   "search", "add_to_cart" };
    int t_page = engine_event_type_declare(e, "page_view");
    int t_purchase = engine_event_type_declare(e, "purchase");
    int t_cart = engine_event_type_declare(e, "add_to_cart");
    int t_search = engine_event_type_declare(e, "search");
    int p_path = engine_prop_declare(e, t_page, "path", SEGD_T_STRING);
    int p_ref = engine_prop_declare(e, t_page, "referrer", SEGD_T_STRING);
    int p_amount = engine_prop_declare(e, t_purchase, "amount", SEGD_T_NUMBER);
    int p_sku = engine_prop_declare(e, t_purchase, "sku", SEGD_T_STRING);
    int p_cur = engine_prop_declare(e, t_purchase, "currency", SEGD_T_STRING);
    int c_amount = engine_prop_declare(e, t_cart, "amount", SEGD_T_NUMBER);
    int p_query = engine_prop_declare(e, t_search, "query", SEGD_T_STRING);
    int64_t *last_seen = xcalloc(people, sizeof *last_seen);
    char a[64], b[64];
    for (uint64_t i = 0; i < events; i++) {
        const char *name = types[rnd() % 8];
        int type = engine_event_type_find(e, name);
        if (type < 0) type = engine_event_type_declare(e, name);
        /* a skewed choice of person: some people are far more active */
        uint32_t who = (uint32_t)(rnd() % people);
        if (rnd() % 4 == 0) who = (uint32_t)(rnd() % (people / 20 + 1));
        /* a year of events in arrival order, as a tracking stream delivers them: times
         * rise with the row, with up to an hour of disorder */
        int64_t t = NOW_MS - 365 * DAY_MS + (int64_t)((double)i / (double)events * 365.0 * DAY_MS)
                    - (int64_t)(rnd() % 3600000);
        int props[3];
        segd_value vals[3];
        size_t n = 0;
        if (type == t_page) {
            props[n] = p_path;
            vals[n++] = str(PATHS[rnd() % 10]);
            snprintf(a, sizeof a, "https://ref%u.example", (unsigned)(rnd() % 50));
            props[n] = p_ref;
            vals[n++] = str(a);
        } else if (type == t_purchase) {
            props[n] = p_amount;
            vals[n++] = (segd_value){ .type = SEGD_T_NUMBER, .number = (double)(rnd() % 50000) / 100.0 };
            snprintf(b, sizeof b, "SKU-%04u", (unsigned)(rnd() % 2000));
            props[n] = p_sku;
            vals[n++] = str(b);
            props[n] = p_cur;
            vals[n++] = str("EUR");
        } else if (type == t_cart) {
            props[n] = c_amount;
            vals[n++] = (segd_value){ .type = SEGD_T_NUMBER, .number = (double)(rnd() % 50000) / 100.0 };
        } else if (type == t_search) {
            snprintf(a, sizeof a, "term %u", (unsigned)(rnd() % 5000));
            props[n] = p_query;
            vals[n++] = str(a);
        }
        int64_t row = engine_event_append(e, (person_id)who, type, t, n, props, vals);
        must(row < 0 ? (int)row : 0, "engine_event_append");
        if (t > last_seen[who]) last_seen[who] = t;
    }
    for (uint32_t p = 0; p < people; p++)
        if (last_seen[p])
            set(e, p, ATTR_LAST_SEEN, (segd_value){ .type = SEGD_T_DATETIME, .time_ms = last_seen[p] });
    free(last_seen);
}

/* ---- the segments of bench/segments.c and bench/segments_ingest.c ---- */

/* The text of segment i: ten templates, parameters from i. ids[] are the ids made so
 * far, for templates that name an earlier segment. */
static inline void segment_text(int i, char ids[][17], char *buf, size_t cap)
{
    int k = i / 10;
    switch (i % 10) {
    case 0: snprintf(buf, cap, "plan = \"%s\" and country = \"%s\"", PLANS[k % 4], COUNTRIES[k % 10]); break;
    case 1: snprintf(buf, cap, "count(purchase) >= %d", 1 + k % 6); break;
    case 2: snprintf(buf, cap, "sum(purchase.amount) >= %d", 100 * (1 + k % 12)); break;
    case 3: snprintf(buf, cap, "count(page_view where path = \"%s\", within %dd) >= %d", PATHS[k % 10], 1 + k % 30, 1 + k % 3); break;
    case 4: snprintf(buf, cap, "last_seen more than %dd ago", 1 + k % 90); break;
    case 5: snprintf(buf, cap, "tags contains \"%s\" and ltv > %d", TAGS[k % 10], (k * 37) % 5000); break;
    case 6: snprintf(buf, cap, "count(purchase, within %dd) = 0 and plan != \"free\"", 1 + k % 60); break;
    case 7: snprintf(buf, cap, "country in (\"DE\", \"FR\") and count(add_to_cart) >= %d and not did(purchase)", 1 + k % 4); break;
    case 8: snprintf(buf, cap, "in segment \"%s\" and newsletter = true", ids[i - 8]); break;
    default: snprintf(buf, cap, "count_distinct(purchase.sku) >= %d", 2 + k % 5); break;
    }
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static inline double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}


/* A new engine holding the world: people, then events, compacted. */
static inline engine *world_new(uint32_t people, uint64_t events)
{
    engine *e = engine_new(NULL);
    gen_people(e, people);
    gen_events(e, people, events);
    engine_compact(e);
    return e;
}

#endif
