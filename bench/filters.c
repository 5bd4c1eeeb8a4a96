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
#include "world.h"
#include "../src/filter/filter.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static clockid_t segd_clock = CLOCK_MONOTONIC;   /* FILTERS_CPU_TIME=1: the thread's CPU time */

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
    engine *e = world_new(people, events);
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
