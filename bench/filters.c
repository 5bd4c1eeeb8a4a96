/* filters.c - `make bench`, filters: segd's evaluator against SQLite on the same data.
 *
 * Generates people and events deterministically (fixed xorshift seed, fixed clock;
 * events in arrival order over the last year, as a tracking stream delivers them)
 * straight into an engine, copies the engine into SQLite with the oracle schema and its
 * indexes (src/filter/sql.c: one column per attribute, an index per column and on the
 * folded strings, a table per event type indexed by (person, time) and (time, person)),
 * then times each filter: the median of several runs of filter_eval (and of the sorted
 * first page), and the median of SQLite running the compiled SQL. Both must find the
 * same number of people, or the benchmark fails. Prints a markdown table.
 *
 * usage: filters PEOPLE EVENTS [RUNS]
 * Environment: FILTERS_NO_SQLITE=1 skips SQLite (quick runs while tuning);
 * FILTERS_CPU_TIME=1 times segd by its thread's CPU time instead of the wall clock
 * (steadier on a busy machine; the recorded figures are wall-clock).
 */
#include "../src/base/alloc.h"
#include "../src/base/error.h"
#include "../src/engine/engine.h"
#include "../src/filter/filter.h"

#include <inttypes.h>
#include <sqlite3.h>
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

static clockid_t segd_clock = CLOCK_MONOTONIC;

static double clock_s(clockid_t id)
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

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct bench_filter {
    const char *label;
    const char *text;
    int sorted_page;        /* also time the first page sorted by last_seen desc */
} bench_filter;

static const bench_filter FILTERS[] = {
    { "attributes", "plan = \"pro\" and country in (\"DE\", \"FR\")", 0 },
    { "number range", "ltv between 100 and 500", 0 },
    { "tags", "tags contains \"vip\"", 0 },
    { "event count", "count(purchase) >= 3", 0 },
    { "event sum", "sum(purchase.amount) >= 500", 0 },
    { "high-value (count or sum)", "count(purchase) >= 3 or sum(purchase.amount) >= 500", 0 },
    { "count, property and window", "count(page_view where path contains \"/pricing\", within 14d) >= 2", 0 },
    { "never did", "count(purchase) = 0", 0 },
    { "nested mix", "count(page_view where path contains \"/pricing\", within 14d) >= 2 and not count(purchase, within 90d) >= 1", 0 },
    { "nested mix 2", "plan = \"pro\" and (country = \"DE\" or ltv > 1000) and count(purchase, within 30d) >= 1", 0 },
    { "sorted first page", "plan in (\"pro\", \"enterprise\") and count(purchase) >= 1", 1 },
};
#define N_FILTERS (sizeof FILTERS / sizeof FILTERS[0])

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: filters PEOPLE EVENTS [RUNS]\n");
        return 2;
    }
    uint32_t people = (uint32_t)strtoul(argv[1], NULL, 10);
    uint64_t events = strtoull(argv[2], NULL, 10);
    int runs = argc > 3 ? atoi(argv[3]) : 11;
    int sql_runs = 3;
    if (people < 100 || runs < 1) return 2;

    double t0 = now_s();
    engine *e = engine_new(NULL);
    gen_people(e, people);
    gen_events(e, people, events);
    engine_compact(e);
    double t1 = now_s();
    fprintf(stderr, "generated %u people and %" PRIu64 " events in %.1f s\n", people, events, t1 - t0);

    int use_sqlite = !getenv("FILTERS_NO_SQLITE") || !*getenv("FILTERS_NO_SQLITE") || strcmp(getenv("FILTERS_NO_SQLITE"), "0") == 0;
    if (getenv("FILTERS_CPU_TIME") && strcmp(getenv("FILTERS_CPU_TIME"), "1") == 0) segd_clock = CLOCK_THREAD_CPUTIME_ID;
    sqlite3 *db = NULL;
    if (use_sqlite) {
        if (sqlite3_open(":memory:", &db) != SQLITE_OK) return 1;
        sqlite3_exec(db, "PRAGMA cache_size=-4000000; PRAGMA temp_store=MEMORY", NULL, NULL, NULL);
        must(filter_sql_load(db, e), "filter_sql_load");
        fprintf(stderr, "loaded SQLite (with indexes) in %.1f s\n", now_s() - t1);
    }

    printf("| filter (%u people, %" PRIu64 " events) | matches | segd median | SQLite median | SQLite / segd |\n",
           people, events);
    printf("|---|---|---|---|---|\n");
    size_t words = filter_words(e);
    uint64_t *bits = xmalloc(words * sizeof *bits);
    person_id page[50];
    int failed = 0;
    for (size_t f = 0; f < N_FILTERS; f++) {
        segd_error err;
        segd_error_clear(&err);
        filter_node *tree = filter_parse_text(FILTERS[f].text, strlen(FILTERS[f].text), NULL, &err);
        if (!tree || filter_bind(tree, e, NULL, &err) != 0) {
            fprintf(stderr, "bench/filters: %s: %s %s\n", FILTERS[f].text, err.code, err.message);
            return 1;
        }
        filter_env env = { .e = e, .now_ms = NOW_MS };
        double times[64];
        uint64_t matches = 0;
        int n_runs = runs > 64 ? 64 : runs;
        for (int r = 0; r < n_runs; r++) {
            double s = clock_s(segd_clock);
            must(filter_eval(tree, &env, bits), "filter_eval");
            if (FILTERS[f].sorted_page) {
                filter_sort sort = { ATTR_LAST_SEEN, 1 };
                int more;
                filter_page(e, bits, &sort, 1, NULL, 50, page, &more);
            }
            times[r] = clock_s(segd_clock) - s;
        }
        for (size_t w = 0; w < words; w++) matches += (uint64_t)__builtin_popcountll(bits[w]);
        double segd_ms = median(times, n_runs) * 1000;

        if (!use_sqlite) {
            printf("| %s: `%s` | %" PRIu64 " | %.2f ms | - | - |\n", FILTERS[f].label, FILTERS[f].text, matches, segd_ms);
            fflush(stdout);
            filter_free(tree);
            continue;
        }
        char *where = filter_to_sql(tree, e, NOW_MS);
        char *sql = xmalloc(strlen(where) + 256);
        if (FILTERS[f].sorted_page)
            sprintf(sql, "SELECT count(*) FROM (SELECT id FROM people p WHERE %s ORDER BY \"last_seen\" DESC NULLS LAST, id LIMIT 50)", where);
        else
            sprintf(sql, "SELECT count(*) FROM people p WHERE %s", where);
        double sql_times[8];
        long long sql_matches = -1;
        for (int r = 0; r < sql_runs; r++) {
            sqlite3_stmt *st;
            double s = now_s();
            if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
                fprintf(stderr, "bench/filters: SQLite: %s\n%s\n", sqlite3_errmsg(db), sql);
                return 1;
            }
            if (sqlite3_step(st) == SQLITE_ROW) sql_matches = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
            sql_times[r] = now_s() - s;
        }
        double sql_ms = median(sql_times, sql_runs) * 1000;
        uint64_t want = FILTERS[f].sorted_page ? (matches < 50 ? matches : 50) : matches;
        if ((uint64_t)sql_matches != want) {
            fprintf(stderr, "bench/filters: %s: segd found %" PRIu64 ", SQLite %lld\n", FILTERS[f].label, want, sql_matches);
            failed = 1;
        }
        printf("| %s: `%s` | %" PRIu64 " | %.2f ms | %.1f ms | %.0fx |\n", FILTERS[f].label, FILTERS[f].text, matches,
               segd_ms, sql_ms, sql_ms / (segd_ms > 0 ? segd_ms : 1e-6));
        fflush(stdout);
        free(sql);
        free(where);
        filter_free(tree);
    }
    free(bits);
    if (db) sqlite3_close(db);
    engine_free(e);
    return failed;
}
