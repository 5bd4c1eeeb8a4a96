/* test_engine_events.c - unit tests of the event log (src/engine/events.c): catalogs and
 * limits, appends, per-(person, type) chains and counts, newest-first listing, erasure
 * holes, moving a person's events with chain merging, and a random run against a
 * plain model with compactions along the way. events_check runs after every mutation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "engine/events.h"
#include "base/error.h"

enum { MAX_PEOPLE = 64 };

/* Which people the test considers live (events.c asks through a callback). */
typedef struct world {
    events ev;
    strpool pool;
    int live[MAX_PEOPLE];
} world;

static int is_live(const void *ctx, person_id p)
{
    const world *w = ctx;
    return p < MAX_PEOPLE && w->live[p];
}

static void check(const world *w)
{
    assert_int_equal(events_check(&w->ev, &w->pool, is_live, w), 0);
    assert_int_equal(strpool_check(&w->pool), 0);
    static uint32_t uses[1024];
    memset(uses, 0, sizeof uses);
    events_count_uses(&w->ev, uses, 1024);
    for (uint32_t c = 0; c < w->pool.n_codes; c++) assert_int_equal(uses[c], strpool_refs(&w->pool, c));
}

static void world_init(world *w)
{
    memset(w, 0, sizeof *w);
    events_init(&w->ev, 4, 3);
    strpool_init(&w->pool);
    for (int p = 0; p < MAX_PEOPLE; p++) w->live[p] = 1;
}

static void world_release(world *w)
{
    events_release(&w->ev, &w->pool);
    assert_int_equal(w->pool.live, 0);
    strpool_release(&w->pool);
}

static void test_catalogs(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    assert_int_equal(events_type_declare(&w.ev, "a"), 0);
    assert_int_equal(events_type_declare(&w.ev, "b"), 1);
    assert_int_equal(events_type_declare(&w.ev, "a"), 0);
    assert_int_equal(events_type_declare(&w.ev, NULL), SEGD_EINVAL);
    assert_int_equal(events_type_declare(&w.ev, "c"), 2);
    assert_int_equal(events_type_declare(&w.ev, "d"), 3);
    assert_int_equal(events_type_declare(&w.ev, "e"), SEGD_ELIMIT);
    assert_int_equal(events_type_count(&w.ev), 4);
    assert_int_equal(events_type_find(&w.ev, "c"), 2);
    assert_int_equal(events_type_find(&w.ev, NULL), -1);
    assert_string_equal(events_type_name(&w.ev, 3), "d");
    assert_null(events_type_name(&w.ev, 4));
    assert_int_equal(events_prop_declare(&w.ev, 0, "x", SEGD_T_NUMBER), 0);
    assert_int_equal(events_prop_declare(&w.ev, 0, "y", SEGD_T_STRING), 1);
    assert_int_equal(events_prop_declare(&w.ev, 0, "z", SEGD_T_LIST), 2);
    assert_int_equal(events_prop_declare(&w.ev, 0, "w", SEGD_T_LIST), SEGD_ELIMIT);
    assert_int_equal(events_prop_declare(&w.ev, 0, "x", SEGD_T_STRING), SEGD_ECONFLICT);
    assert_int_equal(events_prop_declare(&w.ev, 0, "x", SEGD_T_NUMBER), 0);
    assert_int_equal(events_prop_declare(&w.ev, 4, "x", SEGD_T_NUMBER), SEGD_ENOTFOUND);
    assert_int_equal(events_prop_find(&w.ev, 0, "y"), 1);
    assert_int_equal(events_prop_find(&w.ev, 1, "y"), -1);
    assert_int_equal(events_prop_find(&w.ev, 9, "y"), -1);
    assert_int_equal(events_prop_type(&w.ev, 0, 2), SEGD_T_LIST);
    assert_int_equal(events_prop_count(&w.ev, 0), 3);
    assert_int_equal(events_prop_count(&w.ev, 1), 0);
    check(&w);
    world_release(&w);
}

static void test_chains_and_holes(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    int t = events_type_declare(&w.ev, "visit");
    int url = events_prop_declare(&w.ev, t, "url", SEGD_T_STRING);
    char buf[16];
    for (int i = 0; i < 300; i++) {
        person_id p = (person_id)(i % 5);
        strcpy(buf, i % 2 ? "/a" : "/b");
        if (p == 3) buf[1] = 'c';   /* only person 3 visits /c */
        segd_value v = { .type = SEGD_T_STRING, .str = buf, .str_len = 2 };
        assert_int_equal(events_append(&w.ev, &w.pool, p, t, 1000 - i, 1, &url, &v), i);
        if (i % 37 == 0) check(&w);
    }
    check(&w);
    assert_int_equal(events_rows(&w.ev, t), 300);
    assert_int_equal(events_type_live(&w.ev, t), 300);
    assert_int_equal(events_person_count(&w.ev, 3, t), 60);
    assert_int_equal(events_person_count(&w.ev, 7, t), 0);
    engine_event_ref out[100];
    assert_int_equal(events_person_list(&w.ev, 3, out, 100), 60);
    for (int k = 0; k < 60; k++) assert_int_equal(out[k].row, 3 + 5 * k);   /* times fall as rows grow */
    assert_int_not_equal(strpool_find(&w.pool, "/c", 2), STRPOOL_NONE);

    events_person_erase(&w.ev, &w.pool, 3);
    w.live[3] = 0;
    check(&w);
    assert_int_equal(strpool_find(&w.pool, "/c", 2), STRPOOL_NONE);
    assert_int_equal(events_type_live(&w.ev, t), 240);
    assert_int_equal(events_person_count(&w.ev, 3, t), 0);
    assert_int_equal(events_person_list(&w.ev, 3, out, 100), 0);
    const person_id *persons = events_persons(&w.ev, t);
    const int64_t *times = events_times(&w.ev, t);
    segd_cell c;
    for (uint32_t row = 3; row < 300; row += 5) {
        assert_int_equal(persons[row], PERSON_NONE);
        assert_int_equal(times[row], 0);
        assert_int_equal(events_prop_get(&w.ev, t, row, url, &c), 0);
    }
    assert_int_equal(events_prop_get(&w.ev, t, 4, url, &c), 1);
    assert_int_equal(events_prop_get(&w.ev, t, 300, url, &c), 0);
    events_person_erase(&w.ev, &w.pool, 3);   /* nothing left: no-op */
    check(&w);
    world_release(&w);
}

static void test_move(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    int a = events_type_declare(&w.ev, "a");
    int b = events_type_declare(&w.ev, "b");
    /* a: rows alternate 1, 2, 1, 2...; b: only person 1 */
    for (int i = 0; i < 20; i++) events_append(&w.ev, &w.pool, (person_id)(1 + i % 2), a, i, 0, NULL, NULL);
    for (int i = 0; i < 3; i++) events_append(&w.ev, &w.pool, 1, b, 100 + i, 0, NULL, NULL);
    check(&w);
    events_person_move(&w.ev, 1, 2);
    w.live[1] = 0;
    check(&w);
    assert_int_equal(events_person_count(&w.ev, 2, a), 20);
    assert_int_equal(events_person_count(&w.ev, 2, b), 3);
    assert_int_equal(events_person_count(&w.ev, 1, a), 0);
    engine_event_ref out[30];
    assert_int_equal(events_person_list(&w.ev, 2, out, 30), 23);
    for (int k = 0; k < 3; k++) assert_int_equal(out[k].type, b);
    for (int k = 0; k < 20; k++) assert_int_equal(out[3 + k].row, 19 - k);
    /* into someone with no events at all */
    events_person_move(&w.ev, 2, 9);
    w.live[2] = 0;
    check(&w);
    assert_int_equal(events_person_list(&w.ev, 9, out, 30), 23);
    events_person_move(&w.ev, 5, 9);   /* from has nothing: no-op */
    check(&w);
    world_release(&w);
}

static void test_append_errors(void **state)
{
    (void)state;
    world w;
    world_init(&w);
    int t = events_type_declare(&w.ev, "t");
    int n = events_prop_declare(&w.ev, t, "n", SEGD_T_NUMBER);
    segd_value s = { .type = SEGD_T_STRING, .str = "x", .str_len = 1 };
    assert_int_equal(events_append(&w.ev, &w.pool, 0, t, 1, 1, &n, &s), SEGD_ECONFLICT);
    int bad = 5;
    assert_int_equal(events_append(&w.ev, &w.pool, 0, t, 1, 1, &bad, &s), SEGD_ENOTFOUND);
    assert_int_equal(events_append(&w.ev, &w.pool, 0, 3, 1, 0, NULL, NULL), SEGD_ENOTFOUND);
    assert_int_equal(events_append(&w.ev, &w.pool, 0, -1, 1, 0, NULL, NULL), SEGD_ENOTFOUND);
    assert_int_equal(events_rows(&w.ev, t), 0);
    assert_int_equal(w.pool.live, 0);
    check(&w);
    world_release(&w);
}

/* Random appends, erasures and moves against a list of (type, row) -> person. */
static void test_random(void **state)
{
    (void)state;
    enum { OPS = 4000, TYPES = 3 };
    static person_id owner[TYPES][OPS];
    uint32_t rows[TYPES] = { 0 };
    world w;
    world_init(&w);
    for (int t = 0; t < TYPES; t++) {
        events_type_declare(&w.ev, t == 0 ? "x" : t == 1 ? "y" : "z");
        events_prop_declare(&w.ev, t, "tag", SEGD_T_STRING);
    }
    uint64_t rng = 99;
    for (int op = 0; op < OPS; op++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        person_id p = (person_id)(rng % MAX_PEOPLE), q = (person_id)((rng >> 20) % MAX_PEOPLE);
        int t = (int)((rng >> 40) % TYPES), kind = (int)((rng >> 50) % 10);
        if (!w.live[p]) continue;
        if (kind < 7) {
            char tag[8] = { 't', (char)('0' + p % 10), 0 };
            segd_value v = { .type = SEGD_T_STRING, .str = tag, .str_len = 2 };
            int prop = 0;
            assert_int_equal(events_append(&w.ev, &w.pool, p, t, (int64_t)(rng >> 58), 1, &prop, &v), rows[t]);
            owner[t][rows[t]++] = p;
        } else if (kind < 8) {
            events_person_erase(&w.ev, &w.pool, p);
            w.live[p] = 0;
            for (int tt = 0; tt < TYPES; tt++)
                for (uint32_t r = 0; r < rows[tt]; r++)
                    if (owner[tt][r] == p) owner[tt][r] = PERSON_NONE;
        } else if (p != q && w.live[q]) {
            events_person_move(&w.ev, p, q);
            w.live[p] = 0;
            for (int tt = 0; tt < TYPES; tt++)
                for (uint32_t r = 0; r < rows[tt]; r++)
                    if (owner[tt][r] == p) owner[tt][r] = q;
        }
        if (op % 500 == 250) {
            /* compaction moves the arrays and shrinks the head tables; nothing else changes */
            size_t eb0, pb0, eb1, pb1;
            uint32_t counts[TYPES][MAX_PEOPLE];
            for (int tt = 0; tt < TYPES; tt++)
                for (person_id pp = 0; pp < MAX_PEOPLE; pp++) counts[tt][pp] = events_person_count(&w.ev, pp, tt);
            events_memory(&w.ev, &eb0, &pb0);
            events_compact(&w.ev);
            events_memory(&w.ev, &eb1, &pb1);
            assert_true(eb1 <= eb0 && pb1 <= pb0);
            for (int tt = 0; tt < TYPES; tt++)
                for (person_id pp = 0; pp < MAX_PEOPLE; pp++)
                    assert_int_equal(events_person_count(&w.ev, pp, tt), counts[tt][pp]);
        }
        check(&w);
        for (int tt = 0; tt < TYPES; tt++) {
            const person_id *persons = events_persons(&w.ev, tt);
            for (uint32_t r = 0; r < rows[tt]; r++) assert_int_equal(persons[r], owner[tt][r]);
        }
    }
    size_t event_bytes, prop_bytes;
    events_memory(&w.ev, &event_bytes, &prop_bytes);
    assert_true(event_bytes >= 16 * (size_t)(rows[0] + rows[1] + rows[2]));
    assert_true(prop_bytes > 0);
    world_release(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalogs),
        cmocka_unit_test(test_chains_and_holes),
        cmocka_unit_test(test_move),
        cmocka_unit_test(test_append_errors),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
