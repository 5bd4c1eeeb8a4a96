/* test_filter_search.c - unit tests of result pages and cursors (src/filter/search.c):
 * the order (sort keys in turn, missing values last in both directions, then the dense
 * id), pages that continue exactly where the cursor left off, people added between
 * pages, and cursors that are refused (garbage, another sort order, a wrong key type).
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
#include "engine/engine.h"
#include "filter/filter.h"

/* people 0..7: score (number) and name (string), some missing */
static const double scores[8] = { 5, 3, -1, 5, 0, 9, 3, 7 };
static const int has_score[8] = { 1, 1, 1, 1, 0, 1, 1, 0 };
static const char *names[8] = { "bo", "al", "cy", NULL, "al", "Zed", "dee", "bo" };

static engine *world(int *score, int *name)
{
    engine *e = engine_new(NULL);
    *score = engine_attr_declare(e, "score", SEGD_T_NUMBER);
    *name = ATTR_NAME;
    for (int i = 0; i < 8; i++) {
        person_id p = engine_person_create(e, 100 + (uint64_t)i);
        if (has_score[i]) {
            segd_value v = { .type = SEGD_T_NUMBER, .number = scores[i] };
            assert_int_equal(engine_attr_set(e, p, *score, &v), 0);
        }
        if (names[i]) {
            segd_value v = { .type = SEGD_T_STRING, .str = names[i], .str_len = strlen(names[i]) };
            assert_int_equal(engine_attr_set(e, p, *name, &v), 0);
        }
    }
    return e;
}

/* All matching people in pages of `limit`, following cursors, as a string of ids. */
static void walk(const engine *e, const uint64_t *bits, const filter_sort *sorts, int n, uint32_t limit, char *out)
{
    out[0] = 0;
    filter_after after;
    int have = 0, pages = 0;
    for (;;) {
        person_id page[8];
        int more = 0;
        uint32_t got = filter_page(e, bits, sorts, n, have ? &after : NULL, limit, page, &more);
        if (have) filter_after_release(&after);
        for (uint32_t i = 0; i < got; i++) out[strlen(out) + 1] = 0, out[strlen(out)] = (char)('0' + page[i]);
        assert_true(++pages < 20);
        if (!more) break;
        char *cursor = filter_cursor_encode(e, sorts, n, page[got - 1]);
        segd_error err;
        segd_error_clear(&err);
        assert_int_equal(filter_cursor_decode(cursor, e, sorts, n, &after, &err), 0);
        free(cursor);
        have = 1;
    }
}

static void test_order_and_pages(void **state)
{
    (void)state;
    int score, name;
    engine *e = world(&score, &name);
    uint64_t bits[1] = { 0xFF };
    char got[16];
    filter_sort by_score = { score, 0 };
    for (uint32_t limit = 1; limit <= 8; limit++) {
        walk(e, bits, &by_score, 1, limit, got);
        assert_string_equal(got, "21603547");   /* -1, 3, 3, 5, 5, 9, then the missing by id */
    }
    filter_sort by_score_desc = { score, 1 };
    walk(e, bits, &by_score_desc, 1, 3, got);
    assert_string_equal(got, "50316247");       /* missing last in either direction */
    /* strings by their bytes ("Zed" before "al"), missing last; ties by the next key */
    filter_sort two[2] = { { name, 0 }, { score, 1 } };
    walk(e, bits, two, 2, 2, got);
    assert_string_equal(got, "51407263");
    /* only the matching people */
    bits[0] = 0x2A;   /* 1, 3, 5 */
    walk(e, bits, &by_score, 1, 1, got);
    assert_string_equal(got, "135");
    engine_free(e);
}

static void test_people_added_between_pages(void **state)
{
    (void)state;
    int score, name;
    engine *e = world(&score, &name);
    uint64_t bits[1] = { 0xFF };
    filter_sort by_score = { score, 0 };
    person_id page[3];
    int more;
    assert_int_equal(filter_page(e, bits, &by_score, 1, NULL, 3, page, &more), 3);
    char *cursor = filter_cursor_encode(e, &by_score, 1, page[2]);   /* after person 6 (score 3) */
    /* a newcomer sorting before the cursor and one after it */
    person_id early = engine_person_create(e, 900), late = engine_person_create(e, 901);
    segd_value low = { .type = SEGD_T_NUMBER, .number = -5 }, high = { .type = SEGD_T_NUMBER, .number = 6 };
    assert_int_equal(engine_attr_set(e, early, score, &low), 0);
    assert_int_equal(engine_attr_set(e, late, score, &high), 0);
    uint64_t all[1] = { 0x3FF };
    filter_after after;
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(filter_cursor_decode(cursor, e, &by_score, 1, &after, &err), 0);
    person_id rest[10];
    uint32_t got = filter_page(e, all, &by_score, 1, &after, 10, rest, &more);
    filter_after_release(&after);
    assert_int_equal(got, 6);
    assert_int_equal(more, 0);
    const person_id want[6] = { 0, 3, late, 5, 4, 7 };   /* 5, 5, 6, 9, missing: nobody twice, early not */
    for (int i = 0; i < 6; i++) assert_int_equal(rest[i], want[i]);
    free(cursor);
    engine_free(e);
}

static void test_bad_cursors(void **state)
{
    (void)state;
    int score, name;
    engine *e = world(&score, &name);
    filter_sort by_score = { score, 0 }, by_name = { name, 0 };
    char *cursor = filter_cursor_encode(e, &by_score, 1, 3);
    const char *garbage[] = { "", "!!!", "bm90IGEgY3Vyc29y", "WzEsIngiXQ", cursor };
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        filter_after after;
        segd_error err;
        segd_error_clear(&err);
        /* the last one is a real cursor, but for another sort order */
        assert_int_equal(filter_cursor_decode(garbage[i], e, &by_name, 1, &after, &err), SEGD_EINVAL);
        assert_int_equal(err.status, 400);
        assert_string_equal(err.code, "invalid_cursor");
    }
    free(cursor);
    engine_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_pages),
        cmocka_unit_test(test_people_added_between_pages),
        cmocka_unit_test(test_bad_cursors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
