/* test_filter_diff.c - the differential test of the filter language: random people and
 * events in an engine, random filter trees, and three answers that must agree for every
 * case: filter_eval (src/filter/eval.c, everyone at once), filter_match (eval.c, one
 * person at a time) and the SQL oracle (src/filter/sql.c over SQLite, written apart
 * from eval.c from docs/FILTERS.md). On a disagreement it shrinks the filter while the
 * disagreement lasts and prints the filter, the SQL and the people involved.
 *
 * The data aims at the contract's corners: every type, missing values, empty strings
 * and lists, unicode whose case folding is subtle (ß, the Kelvin sign, final sigma,
 * long s), extreme numbers, times exactly on window edges around a fixed now, erased
 * and merged people. Event numbers are small dyadic fractions so that sums are exact
 * in any order (a disagreement is then semantic, never rounding).
 *
 * `make test` runs DIFF_DEFAULT_WORLDS worlds of DIFF_FILTERS_PER_WORLD filters from a
 * fixed seed. Environment: SEGD_DIFF_SEED (first seed), SEGD_DIFF_CASES (how many
 * cases), SEGD_DIFF_SECONDS (run for that long; 0 = until stopped: what `make soak`
 * uses, with a seed from the clock, printing every counterexample and the seed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "filter/filter.h"
#include "base/alloc.h"
#include "base/timefmt.h"
#include "diff_gen.h"

#define DIFF_DEFAULT_WORLDS 40
#define DIFF_FILTERS_PER_WORLD 100
#define MAX_PEOPLE 40

/* ---- the world ---- */

enum { A_PLAN, A_PLAN_NUM, A_SCORE, A_VIP, A_SEEN, A_GROUPS, A_META, A_ID, N_CUSTOM };

static const struct { const char *name; segd_type type; } custom_attrs[N_CUSTOM] = {
    { "plan", SEGD_T_STRING }, { "Plan", SEGD_T_NUMBER }, { "score", SEGD_T_NUMBER },
    { "vip", SEGD_T_BOOL }, { "seen", SEGD_T_DATETIME }, { "groups", SEGD_T_LIST },
    { "meta", SEGD_T_JSON }, { "id", SEGD_T_STRING },
};

static const struct { const char *name; segd_type type; } purchase_props[] = {
    { "amount", SEGD_T_NUMBER }, { "item", SEGD_T_STRING }, { "labels", SEGD_T_LIST },
    { "at", SEGD_T_DATETIME }, { "gift", SEGD_T_BOOL }, { "blob", SEGD_T_JSON },
};

static const struct { const char *name; segd_type type; } view_props[] = {
    { "url", SEGD_T_STRING }, { "n", SEGD_T_NUMBER }, { "time", SEGD_T_STRING },
};

/* Builds a random engine: custom attributes, three event types, people with random
 * values and events, some erased, some merged. One world in BIG_EVERY has more people
 * than a column page (ENGINE_PAGE_ROWS) and more event rows than one, sometimes a whole
 * page of people erased; each attribute has a density of its own per world (never set,
 * rare, common, always), so that scans meet empty, sparse and full pages. */
#define BIG_EVERY 16

typedef struct pending_event {
    person_id person;
    int type;
    int64_t time_ms;
} pending_event;

static int cmp_pending(const void *a, const void *b)
{
    const pending_event *x = a, *y = b;
    if (x->time_ms != y->time_ms) return x->time_ms < y->time_ms ? -1 : 1;
    if (x->person != y->person) return x->person < y->person ? -1 : 1;
    return x->type - y->type;   /* a total order: qsort is not stable */
}

static engine *world_new(rng *r, int big)
{
    engine *e = engine_new(NULL);
    for (int a = 0; a < N_CUSTOM; a++)
        assert_true(engine_attr_declare(e, custom_attrs[a].name, custom_attrs[a].type) >= 0);
    int purchase = engine_event_type_declare(e, "purchase");
    int view = engine_event_type_declare(e, "view");
    assert_true(engine_event_type_declare(e, "never") >= 0);
    for (size_t i = 0; i < sizeof purchase_props / sizeof *purchase_props; i++)
        assert_true(engine_prop_declare(e, purchase, purchase_props[i].name, purchase_props[i].type) >= 0);
    for (size_t i = 0; i < sizeof view_props / sizeof *view_props; i++)
        assert_true(engine_prop_declare(e, view, view_props[i].name, view_props[i].type) >= 0);

    static const int densities[] = { 0, 3, 50, 70, 70, 100 };
    int slots = engine_attr_slots(e);
    int density[64];
    assert_true(slots < 64);
    for (int a = 0; a < slots; a++) density[a] = PICK(r, densities);
    int user_density = PICK(r, densities) ? 80 : 0;

    uint32_t people = big ? ENGINE_PAGE_ROWS + below(r, 2 * ENGINE_PAGE_ROWS)
                          : chance(r, 5) ? below(r, 3) : 5 + below(r, MAX_PEOPLE - 4);
    uint32_t max_events = big ? 4 : 7;
    pending_event *pending = NULL;
    size_t n_pending = 0, pending_cap = 0;
    for (uint32_t i = 0; i < people; i++) {
        person_id p = engine_person_create(e, 1000 + i);
        assert_true(p != PERSON_NONE);
        const char *items[4];
        segd_value v;
        if (chance(r, user_density)) {
            char uid[32];
            snprintf(uid, sizeof uid, chance(r, 20) ? "\xc3\x9cser-%u" : "u%u", i);
            v = (segd_value){ .type = SEGD_T_STRING, .str = uid, .str_len = strlen(uid) };
            assert_int_equal(engine_attr_set(e, p, ATTR_USER_ID, &v), 0);
        }
        for (int a = ATTR_EMAIL; a < slots; a++) {
            if (a == ATTR_USER_ID || a == ATTR_ANONYMOUS_IDS || !chance(r, density[a])) continue;
            random_value(r, engine_attr_type(e, a), 0, &v, items);
            assert_int_equal(engine_attr_set(e, p, a, &v), 0);
        }
        for (int t = 0; t < 2; t++) {
            uint32_t events = below(r, max_events);
            for (uint32_t k = 0; k < events; k++) {
                pending = xgrow(pending, sizeof *pending, &pending_cap, n_pending + 1, 256);
                pending[n_pending++] = (pending_event){ p, t, PICK(r, times) };
            }
        }
    }
    /* events arrive per person, or (as in production and the bench) in time order,
     * where blocks of the log hold narrow time ranges that a scan may skip */
    if (n_pending && chance(r, 50)) qsort(pending, n_pending, sizeof *pending, cmp_pending);
    for (size_t k = 0; k < n_pending; k++) {
        int t = pending[k].type, props[8];
        segd_value vals[8];
        const char *list_items[8][4];
        size_t n = 0;
        for (int pr = 0; pr < engine_prop_count(e, t); pr++) {
            if (!chance(r, 70)) continue;
            props[n] = pr;
            random_value(r, engine_prop_type(e, t, pr), 1, &vals[n], list_items[n]);
            n++;
        }
        assert_true(engine_event_append(e, pending[k].person, t, pending[k].time_ms, n, props, vals) >= 0);
    }
    free(pending);
    /* overwrites and clears, which indexes over the columns must follow */
    for (uint32_t i = 0; i < people; i++) {
        if (!chance(r, 20)) continue;
        int a = ATTR_EMAIL + (int)below(r, (uint32_t)(slots - ATTR_EMAIL));
        const char *items[4];
        segd_value v = { .type = SEGD_T_NONE };
        if (chance(r, 70)) random_value(r, engine_attr_type(e, a), 0, &v, items);
        assert_int_equal(engine_attr_set(e, i, a, &v), 0);
    }
    /* a list of ids rather than labels: thousands of distinct items, past what the
     * engine's item index keeps (column.h), beside a few common ones that filters hit */
    if (big && chance(r, 50)) {
        int groups = engine_attr_find(e, "groups");
        for (uint32_t i = 0; i < people; i++) {
            char ids[5][32];
            const char *items[6] = { PICK(r, strings) };
            for (int k = 0; k < 5; k++) {
                snprintf(ids[k], sizeof ids[k], k % 2 ? "ID-%u-%d" : "id-%u-%d", i, k);
                items[k + 1] = ids[k];
            }
            /* the common item first or left out; 5 ids a person: > 4096 distinct */
            segd_value v = { .type = SEGD_T_LIST, .items = items + below(r, 2), .n_items = 5 };
            assert_int_equal(engine_attr_set(e, i, groups, &v), 0);
        }
    }
    /* an attribute dropped after use, then declared again with another type: filters
     * must read the new column only */
    if (chance(r, 30)) {
        int temp = engine_attr_declare(e, "temp", SEGD_T_STRING);
        assert_true(temp >= 0);
        for (uint32_t i = 0; i < people; i += 2) {
            segd_value v = { .type = SEGD_T_STRING, .str = "pro", .str_len = 3 };
            assert_int_equal(engine_attr_set(e, i, temp, &v), 0);
        }
        assert_int_equal(engine_attr_drop(e, temp), 0);
        temp = engine_attr_declare(e, "temp", SEGD_T_NUMBER);
        assert_true(temp >= 0);
        for (uint32_t i = 0; i < people; i += 3) {
            segd_value v = { .type = SEGD_T_NUMBER, .number = PICK(r, numbers) };
            assert_int_equal(engine_attr_set(e, i, temp, &v), 0);
        }
    }
    /* holes in an event log, as a rebuild after erasures leaves them */
    if (chance(r, 20)) {
        int t = (int)below(r, 2);
        assert_int_equal(engine_event_pad(e, t, engine_event_rows(e, t) + 1 + below(r, 2000)), 0);
        segd_value v = { .type = SEGD_T_NUMBER, .number = 1 };
        int prop = engine_prop_find(e, t, t == 0 ? "amount" : "n");
        if (people && engine_person_exists(e, 0)) assert_true(engine_event_append(e, 0, t, NOW, 1, &prop, &v) >= 0);
    }
    /* erase some, merge a few (events move, attributes copied) */
    int erase_page = big && chance(r, 50);
    for (uint32_t i = 0; i < people; i++) {
        if (!engine_person_exists(e, i)) continue;
        if (chance(r, 10) || (erase_page && i / ENGINE_PAGE_ROWS == 1)) assert_int_equal(engine_person_erase(e, i), 0);
        else if (chance(r, 4) && i + 1 < people && engine_person_exists(e, i + 1))
            assert_int_equal(engine_person_merge(e, i, i + 1), 0);
    }
    /* a person with nothing at all: what a new person is before any write (segments
     * re-check a new person only where filter_match_blank says it matches) */
    assert_true(engine_person_create(e, 999) != PERSON_NONE);
    if (chance(r, 30)) engine_compact(e);
    assert_int_equal(engine_check(e), 0);
    return e;
}

/* 1 if the person has no attribute and no event. */
static int is_blank(const engine *e, person_id id)
{
    segd_cell c;
    for (int a = 0; a < engine_attr_slots(e); a++)
        if (engine_attr_get(e, id, a, &c)) return 0;
    return engine_person_events(e, id, NULL, 0) == 0;
}

static int no_segment(void *ctx, const char *id, int cached)
{
    (void)ctx, (void)id, (void)cached;
    return 0;
}

/* ---- one case ---- */

/* Runs one bound-or-not filter through the three evaluators. Returns 1 if they agree,
 * 0 if not, -1 if the tree does not bind or compile (the generator's fault). */
static int agree(oracle *o, filter_node *f)
{
    segd_error err;
    segd_error_clear(&err);
    if (filter_bind(f, o->e, NULL, &err) != 0) {
        fprintf(stderr, "filter_bind refused a generated tree: %s (%s at %s)\n", err.message, err.code, err.field);
        return -1;
    }
    char *sql = filter_to_sql(f, o->e, NOW);
    if (!sql) {
        fprintf(stderr, "filter_to_sql refused a generated tree\n");
        return -1;
    }
    int rc = sql_answer(o, sql, o->sql_bits);
    free(sql);
    if (rc) return -1;
    filter_env env = { .e = o->e, .now_ms = NOW, .resolver = NULL };
    /* filter_eval must overwrite its words, bits past the last person included */
    memset(o->eval_bits, 0, o->words * sizeof *o->eval_bits);
    memset(o->eval_bits, 0xA5, filter_words(o->e) * sizeof *o->eval_bits);
    assert_int_equal(filter_eval(f, &env, o->eval_bits), 0);
    memset(o->match_bits, 0, o->words * sizeof *o->match_bits);
    int blank = filter_match_blank(f, &env, no_segment, NULL);
    for (person_id id = 0; id < engine_person_limit(o->e); id++) {
        int m = filter_match(f, &env, id);
        assert_true(m == 0 || m == 1);
        if (m) o->match_bits[id >> 6] |= 1ULL << (id & 63);
        if (engine_person_exists(o->e, id) && is_blank(o->e, id) && m != blank) {
            fprintf(stderr, "filter_match_blank says %d, a person with nothing (%u) gets %d\n", blank, id, m);
            return 0;
        }
    }
    uint32_t selected = 0;
    for (size_t w = 0; w < o->words; w++) selected += (uint32_t)__builtin_popcountll(o->sql_bits[w]);
    if (o->nontrivial && selected > 0 && selected < engine_person_count(o->e)) (*o->nontrivial)++;
    return memcmp(o->eval_bits, o->sql_bits, o->words * 8) == 0 &&
           memcmp(o->match_bits, o->sql_bits, o->words * 8) == 0;
}

/* filter_next_change promises that nobody's answer moves before the moment it gives:
 * checks each person's answer one millisecond before it and halfway there (or far in
 * the future when it promises never). A time-free tree must also say never. Returns 1
 * and prints the case on a broken promise. Run after agree() bound the tree. */
static int next_change_holds(oracle *o, filter_node *f, uint64_t *moments)
{
    filter_env env = { .e = o->e, .now_ms = NOW, .resolver = NULL };
    int relative = filter_time_relative(f);
    int64_t *bulk = xmalloc(((size_t)engine_person_limit(o->e) + 1) * sizeof *bulk);
    filter_next_changes(f, &env, bulk);
    for (person_id id = 0; id < engine_person_limit(o->e); id++) {
        int now_answer = filter_match(f, &env, id);
        int64_t m = filter_next_change(f, &env, id);
        if (bulk[id] != m) {
            fprintf(stderr, "filter_next_changes: person %u gets %lld, filter_next_change %lld\n", id,
                    (long long)bulk[id], (long long)m);
            free(bulk);
            return 1;
        }
        if (!relative && m != INT64_MAX) {
            fprintf(stderr, "filter_next_change: a time-free tree gave a moment for person %u\n", id);
            free(bulk);
            return 1;
        }
        int64_t probes[2] = { NOW + 3000 * DAY, NOW + 3000 * DAY };
        if (m != INT64_MAX) {
            (*moments)++;
            if (m <= NOW) {
                fprintf(stderr, "filter_next_change: moment %lld is not after now\n", (long long)m);
                free(bulk);
                return 1;
            }
            probes[0] = m - 1;
            probes[1] = NOW + (m - NOW) / 2;
        }
        for (int k = 0; k < 2; k++) {
            if (probes[k] <= NOW) continue;
            filter_env later = { .e = o->e, .now_ms = probes[k], .resolver = NULL };
            if (filter_match(f, &later, id) != now_answer) {
                fprintf(stderr, "filter_next_change: person %u's answer moved at now + %lld ms, before the promised %s\n",
                        id, (long long)(probes[k] - NOW), m == INT64_MAX ? "never" : "moment");
                dump_person(stderr, o->e, id);
                free(bulk);
                return 1;
            }
        }
    }
    free(bulk);
    return 0;
}

/* The metric cache (filter_cache) must not change an answer: every tree of a world is
 * evaluated for each person through one shared cache, in turn, as the segments of a
 * write are, and compared with the uncached answer and next-change moment. Returns the
 * number of differences (printed). */
static int cache_agrees(const engine *e, filter_node **trees, size_t n)
{
    filter_cache *cache = filter_cache_new();
    int bad = 0;
    for (person_id id = 0; id < engine_person_limit(e) && !bad; id++) {
        for (size_t t = 0; t < n && !bad; t++) {
            filter_env plain = { .e = e, .now_ms = NOW }, cached = { .e = e, .now_ms = NOW, .cache = cache };
            if (filter_match(trees[t], &plain, id) != filter_match(trees[t], &cached, id) ||
                filter_next_change(trees[t], &plain, id) != filter_next_change(trees[t], &cached, id)) {
                fprintf(stderr, "filter_cache: tree %zu of the world answers otherwise for person %u through the cache:\n", t, id);
                dump_node(stderr, trees[t]);
                fputs("\n", stderr);
                bad = 1;
            }
        }
    }
    filter_cache_free(cache);
    return bad;
}

/* ---- shrinking and printing a counterexample ---- */

/* The places in a tree where a smaller tree can stand. */
typedef struct slot {
    filter_node **at;
} slot;

static void collect_slots(filter_node **at, slot *out, size_t *n, size_t cap)
{
    if (*n < cap) out[(*n)++] = (slot){ at };
    filter_node *node = *at;
    for (uint32_t i = 0; i < node->n_children; i++) collect_slots(&node->children[i], out, n, cap);
    if (node->where) collect_slots(&node->where, out, n, cap);
}

/* Tries smaller versions of f (a child in place of its group, a group without one
 * child, an event without its where or window) and keeps each that still disagrees.
 * Returns the smallest tree found (f itself or a replacement; f is consumed). */
static filter_node *shrink(oracle *o, filter_node *f)
{
    for (int progress = 1; progress;) {
        progress = 0;
        slot slots[1024];
        size_t n = 0;
        collect_slots(&f, slots, &n, 1024);
        for (size_t s = 0; s < n && !progress; s++) {
            /* each candidate is a clone of f with one change at slot s */
            for (int variant = 0; variant < 40 && !progress; variant++) {
                filter_node *c = filter_clone(f);
                slot cs[1024];
                size_t cn = 0;
                collect_slots(&c, cs, &cn, 1024);
                filter_node **at = cs[s].at, *node = *at;
                int changed = 0;
                if (variant < 16 && (uint32_t)variant < node->n_children) {
                    /* the child replaces its group */
                    filter_node *child = node->children[variant];
                    node->children[variant] = node->children[--node->n_children];
                    filter_free(node);
                    *at = child;
                    changed = 1;
                } else if (variant >= 16 && variant < 32 && node->kind != FILTER_NOT &&
                           (uint32_t)(variant - 16) < node->n_children) {
                    /* the group loses a child */
                    uint32_t i = (uint32_t)(variant - 16);
                    filter_free(node->children[i]);
                    memmove(&node->children[i], &node->children[i + 1], (node->n_children - i - 1) * sizeof *node->children);
                    node->n_children--;
                    changed = 1;
                } else if (variant == 32 && node->kind == FILTER_EVENT && node->where) {
                    filter_free(node->where);
                    node->where = NULL;
                    changed = 1;
                } else if (variant == 33 && node->kind == FILTER_EVENT && node->window != FWIN_ALL) {
                    node->window = FWIN_ALL;
                    changed = 1;
                }
                if (changed && filter_check(c) == 0 && agree(o, c) == 0) {
                    filter_free(f);
                    f = c;
                    progress = 1;
                } else {
                    filter_free(c);
                }
            }
        }
    }
    return f;
}

/* Prints the shrunk counterexample: filter, SQL, and each person on whom the answers
 * differ, with which evaluator said what. */
static void report(oracle *o, filter_node *f, uint64_t seed, int index)
{
    FILE *out = stderr;
    agree(o, f);
    fprintf(out, "\n=== filter disagreement (world seed %llu, filter %d) ===\nfilter: ", (unsigned long long)seed, index);
    dump_node(out, f);
    fputs("\n", out);
    char *json = filter_print_json(f), *text = filter_print_text(f);
    fprintf(out, "json: %s\ntext: %s\n", json ? json : "(null)", text ? text : "(null)");
    free(text);
    free(json);
    char *sql = filter_to_sql(f, o->e, NOW);
    fprintf(out, "sql: %s\nnow: %lld (2026-11-28T12:00:00Z)\n", sql, (long long)NOW);
    free(sql);
    for (person_id p = 0; p < o->words * 64; p++) {
        if (p >= engine_person_limit(o->e) && (o->eval_bits[p >> 6] >> (p & 63) & 1))
            fprintf(out, "filter_eval set bit %u, past the last person (%u)\n", p, engine_person_limit(o->e));
        if (p >= engine_person_limit(o->e)) continue;
        int ev = (int)(o->eval_bits[p >> 6] >> (p & 63) & 1), sq = (int)(o->sql_bits[p >> 6] >> (p & 63) & 1);
        int ma = (int)(o->match_bits[p >> 6] >> (p & 63) & 1);
        if (ev == sq && ma == sq) continue;
        fprintf(out, "filter_eval %d, filter_match %d, sql %d for:\n", ev, ma, sq);
        dump_person(out, o->e, p);
    }
}

/* Both spellings of a generated tree read back as the same tree (json.c, text.c): the
 * counterexamples this test prints are then reproducible from either. Returns 1 if so. */
static int round_trips(const filter_node *f)
{
    int ok = 1;
    segd_error err;
    char *json = filter_print_json(f);
    char *text = filter_print_text(f);
    assert_non_null(json);
    assert_non_null(text);
    segd_error_clear(&err);
    filter_node *from_json = filter_parse_json_text(json, strlen(json), NULL, &err);
    if (!from_json || !filter_equal(f, from_json)) {
        fprintf(stderr, "JSON round trip differs (%s): %s\n", from_json ? "another tree" : err.message, json);
        ok = 0;
    }
    segd_error_clear(&err);
    filter_node *from_text = filter_parse_text(text, strlen(text), NULL, &err);
    if (!from_text || !filter_equal(f, from_text)) {
        fprintf(stderr, "text round trip differs (%s): %s\n", from_text ? "another tree" : err.message, text);
        ok = 0;
    }
    if (!ok) {
        fputs("tree: ", stderr);
        dump_node(stderr, f);
        fputs("\n", stderr);
    }
    filter_free(from_text);
    filter_free(from_json);
    free(text);
    free(json);
    return ok;
}

/* ---- the driver ---- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *s = getenv(name);
    return s && *s ? strtoull(s, NULL, 10) : dflt;
}

/* Runs worlds from `seed` until `cases` filters ran (or, with seconds > 0, until the
 * time is up; seconds 0 with forever: until stopped). Returns the disagreements found. */
static int run(uint64_t seed, uint64_t cases, int timed, uint64_t seconds)
{
    int found = 0;
    uint64_t done = 0, nontrivial = 0, spelled = 0, moments = 0;
    time_t start = time(NULL);
    uint64_t first = seed;
    for (;; seed++) {
        if (!timed && done >= cases) break;
        if (timed && seconds && (uint64_t)(time(NULL) - start) >= seconds) break;
        rng r = { seed };
        engine *e = world_new(&r, seed % BIG_EVERY == 0);
        oracle o = { .e = e, .nontrivial = &nontrivial };
        o.words = filter_words(e) ? filter_words(e) : 1;
        o.eval_bits = xcalloc(o.words, 8);
        o.sql_bits = xcalloc(o.words, 8);
        o.match_bits = xcalloc(o.words, 8);
        assert_int_equal(sqlite3_open(":memory:", &o.db), SQLITE_OK);
        assert_int_equal(filter_sql_load(o.db, e), 0);
        filter_node *kept[DIFF_FILTERS_PER_WORLD];
        size_t n_kept = 0;
        for (int i = 0; i < DIFF_FILTERS_PER_WORLD && (timed || done < cases); i++, done++) {
            filter_node *f = random_tree(&r, e, 4, -1);
            assert_int_equal(filter_check(f), 0);
            if (!has_reversed_between(f)) {
                spelled++;
                if (!round_trips(f)) found++;
            }
            int a = agree(&o, f);
            if (a > 0 && next_change_holds(&o, f, &moments)) {
                dump_node(stderr, f);
                fputs("\n", stderr);
                found++;
            }
            if (a < 0) {
                dump_node(stderr, f);
                fputs("\n", stderr);
                found++;
            } else if (a == 0) {
                f = shrink(&o, f);
                report(&o, f, seed, i);
                found++;
            }
            if (a > 0) kept[n_kept++] = f;
            else filter_free(f);
        }
        found += cache_agrees(e, kept, n_kept);
        for (size_t k = 0; k < n_kept; k++) filter_free(kept[k]);
        sqlite3_close(o.db);
        free(o.match_bits);
        free(o.sql_bits);
        free(o.eval_bits);
        engine_free(e);
        if (timed && (seed - first) % 100 == 99) fprintf(stderr, "filter diff: %llu cases, %d disagreements (seed %llu)\n",
                                             (unsigned long long)done, found, (unsigned long long)seed);
        if (found >= 20 && !timed) break;
    }
    fprintf(stderr, "filter diff: %llu cases (%llu selecting some but not all people, %llu round-tripped "
            "through JSON and text, %llu next-change moments checked), %d disagreements\n",
            (unsigned long long)done, (unsigned long long)nontrivial, (unsigned long long)spelled,
            (unsigned long long)moments, found);
    /* a generator that drifted into trivial filters would test nothing */
    if (done >= 1000 && nontrivial * 4 < done) {
        fprintf(stderr, "filter diff: too few discriminating cases\n");
        found++;
    }
    return found;
}

static void test_differential(void **state)
{
    (void)state;
    const char *secs = getenv("SEGD_DIFF_SECONDS");
    int timed = secs && *secs;
    uint64_t seed = env_u64("SEGD_DIFF_SEED", timed ? (uint64_t)time(NULL) * 1000 : 1);
    uint64_t cases = env_u64("SEGD_DIFF_CASES", DIFF_DEFAULT_WORLDS * DIFF_FILTERS_PER_WORLD);
    if (timed) fprintf(stderr, "filter diff: first seed %llu\n", (unsigned long long)seed);
    assert_int_equal(run(seed, cases, timed, timed ? strtoull(secs, NULL, 10) : 0), 0);
}

/* The harness itself: a filter that the oracle and eval.c must both answer, on a
 * known world, so that a broken generator (no people, everything refused) cannot pass
 * silently. */
static void test_harness_sees_people(void **state)
{
    (void)state;
    int worlds_with_matches = 0;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        rng r = { seed };
        engine *e = world_new(&r, 0);
        oracle o = { .e = e };
        o.words = filter_words(e) ? filter_words(e) : 1;
        o.eval_bits = xcalloc(o.words, 8);
        o.sql_bits = xcalloc(o.words, 8);
        o.match_bits = xcalloc(o.words, 8);
        assert_int_equal(sqlite3_open(":memory:", &o.db), SQLITE_OK);
        assert_int_equal(filter_sql_load(o.db, e), 0);
        filter_node *f = filter_node_new(FILTER_EVENT);
        f->name = xstrdup("purchase");
        f->op = FOP_GTE;
        add_value(f, lit_num(1));
        assert_int_equal(agree(&o, f), 1);
        int any = 0;
        for (size_t w = 0; w < o.words; w++) any |= o.sql_bits[w] != 0;
        worlds_with_matches += any;
        filter_free(f);
        sqlite3_close(o.db);
        free(o.match_bits);
        free(o.sql_bits);
        free(o.eval_bits);
        engine_free(e);
    }
    assert_true(worlds_with_matches >= 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_harness_sees_people),
        cmocka_unit_test(test_differential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
