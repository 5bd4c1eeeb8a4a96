/* test_engine_column.c - unit tests of the paged typed column (src/engine/column.c):
 * each type's set/get/clear, null markers, pages freed when empty, list
 * de-duplication, copies, scans of set rows, reference counting into the pool, and
 * column_check after every mutation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "engine/column.h"

#define ROWS (COLUMN_PAGE_ROWS * 4)

/* Checks the column and that the pool's counts equal the column's uses. */
static void check_all(const column *c, const strpool *pool)
{
    assert_int_equal(column_check(c, pool, ROWS, "test column"), 0);
    assert_int_equal(strpool_check(pool), 0);
    static uint32_t uses[4096];
    memset(uses, 0, sizeof uses);
    column_count_uses(c, uses, 4096);
    for (uint32_t code = 0; code < pool->n_codes; code++) assert_int_equal(uses[code], strpool_refs(pool, code));
}

static void test_numbers_times_bools(void **state)
{
    (void)state;
    strpool pool;
    strpool_init(&pool);
    segd_type types[] = { SEGD_T_NUMBER, SEGD_T_DATETIME, SEGD_T_BOOL };
    for (int t = 0; t < 3; t++) {
        column c;
        column_init(&c, types[t]);
        segd_cell cell;
        assert_int_equal(column_get(&c, 5, &cell), 0);
        assert_int_equal(cell.type, SEGD_T_NONE);
        assert_int_equal(column_memory(&c), 0);
        for (uint32_t row = 0; row < ROWS; row += 7) {
            segd_value v = { .type = types[t], .number = row * 0.5, .time_ms = -(int64_t)row, .boolean = row % 2 };
            column_set(&c, row, &v, &pool);
        }
        check_all(&c, &pool);
        assert_int_equal(c.n_set, (ROWS + 6) / 7);
        for (uint32_t row = 0; row < ROWS; row++) {
            int set = column_get(&c, row, &cell);
            assert_int_equal(set, row % 7 == 0);
            assert_int_equal(column_has(&c, row), set);
            if (!set) continue;
            assert_int_equal(cell.type, types[t]);
            if (types[t] == SEGD_T_NUMBER) assert_true(cell.number == row * 0.5);
            if (types[t] == SEGD_T_DATETIME) assert_int_equal(cell.time_ms, -(int64_t)row);
            if (types[t] == SEGD_T_BOOL) assert_int_equal(cell.boolean, (int)(row % 2));
        }
        /* overwrite true with false, zero with a value */
        segd_value v = { .type = types[t] };
        column_set(&c, 7, &v, &pool);
        assert_int_equal(column_get(&c, 7, &cell), 1);
        assert_int_equal(cell.boolean, 0);
        assert_true(cell.number == 0);
        check_all(&c, &pool);
        size_t full = column_memory(&c);
        /* clearing every row frees every page */
        for (uint32_t row = 0; row < ROWS; row++) column_clear(&c, row, &pool);
        check_all(&c, &pool);
        assert_int_equal(c.n_set, 0);
        assert_int_equal(c.pages_alloc, 0);
        assert_true(column_memory(&c) < full);
        assert_int_equal(column_next(&c, 0), COLUMN_NONE);
        column_release(&c, &pool);
    }
    strpool_release(&pool);
}

static void test_strings_and_json(void **state)
{
    (void)state;
    strpool pool;
    strpool_init(&pool);
    column c, j;
    column_init(&c, SEGD_T_STRING);
    column_init(&j, SEGD_T_JSON);
    segd_value v = { .type = SEGD_T_STRING, .str = "hello", .str_len = 5 };
    column_set(&c, 3, &v, &pool);
    column_set(&c, 2000, &v, &pool);
    check_all(&c, &pool);
    uint32_t code = column_code(&c, 3);
    assert_int_equal(strpool_refs(&pool, code), 2);
    assert_int_equal(column_code(&c, 4), STRPOOL_NONE);
    assert_int_equal(column_code(&c, 999999), STRPOOL_NONE);
    /* the same value again keeps its code */
    column_set(&c, 3, &v, &pool);
    assert_int_equal(column_code(&c, 3), code);
    assert_int_equal(strpool_refs(&pool, code), 2);
    segd_value w = { .type = SEGD_T_STRING, .str = "world", .str_len = 5 };
    column_set(&c, 3, &w, &pool);
    assert_int_equal(strpool_refs(&pool, code), 1);
    check_all(&c, &pool);
    column_copy(&c, 3, 4, &pool);
    column_copy(&c, 3, 3, &pool);
    assert_int_equal(column_code(&c, 4), column_code(&c, 3));
    assert_int_equal(strpool_refs(&pool, column_code(&c, 3)), 2);
    column_copy(&c, 10, 4, &pool);   /* copying a missing value clears */
    assert_int_equal(column_has(&c, 4), 0);
    check_all(&c, &pool);
    segd_value null_str = { .type = SEGD_T_STRING, .str = NULL, .str_len = 0 };
    column_set(&c, 5, &null_str, &pool);
    assert_string_equal(strpool_get(&pool, column_code(&c, 5), NULL), "");

    segd_value doc = { .type = SEGD_T_JSON, .str = "[{\"a\":1}]", .str_len = 9 };
    column_set(&j, 0, &doc, &pool);
    segd_cell cell;
    assert_int_equal(column_get(&j, 0, &cell), 1);
    assert_int_equal(cell.type, SEGD_T_JSON);
    assert_string_equal(strpool_get(&pool, cell.code, NULL), "[{\"a\":1}]");
    column_release(&j, &pool);

    /* scans of set rows cross pages */
    assert_int_equal(column_next(&c, 0), 3);
    assert_int_equal(column_next(&c, 4), 5);
    assert_int_equal(column_next(&c, 6), 2000);
    assert_int_equal(column_next(&c, 2001), COLUMN_NONE);
    assert_int_equal(column_next(&c, 1u << 30), COLUMN_NONE);
    column_release(&c, &pool);
    assert_int_equal(pool.live, 0);
    strpool_release(&pool);
}

static void test_lists(void **state)
{
    (void)state;
    strpool pool;
    strpool_init(&pool);
    column c;
    column_init(&c, SEGD_T_LIST);
    const char *items[] = { "x", "y", "x", "z", "y" };
    segd_value v = { .type = SEGD_T_LIST, .items = items, .n_items = 5 };
    column_set(&c, 1, &v, &pool);
    check_all(&c, &pool);
    segd_cell cell;
    assert_int_equal(column_get(&c, 1, &cell), 1);
    assert_int_equal(cell.n_codes, 3);
    assert_string_equal(strpool_get(&pool, cell.codes[0], NULL), "x");
    assert_string_equal(strpool_get(&pool, cell.codes[1], NULL), "y");
    assert_string_equal(strpool_get(&pool, cell.codes[2], NULL), "z");
    assert_int_equal(pool.live, 3);

    /* an empty list is present but has no cell */
    segd_value empty = { .type = SEGD_T_LIST };
    column_set(&c, 2, &empty, &pool);
    assert_int_equal(column_get(&c, 2, &cell), 1);
    assert_int_equal(cell.n_codes, 0);
    assert_null(cell.codes);
    const char *dup[] = { "q", "q" };
    segd_value dv = { .type = SEGD_T_LIST, .items = dup, .n_items = 2 };
    column_set(&c, 2, &dv, &pool);
    assert_int_equal(column_get(&c, 2, &cell), 1);
    assert_int_equal(cell.n_codes, 1);
    check_all(&c, &pool);

    /* set_codes takes its own references and de-duplicates */
    column_get(&c, 1, &cell);
    uint32_t codes[] = { cell.codes[2], cell.codes[0], cell.codes[2] };
    column_set_codes(&c, 3, codes, 3, &pool);
    assert_int_equal(column_get(&c, 3, &cell), 1);
    assert_int_equal(cell.n_codes, 2);
    assert_string_equal(strpool_get(&pool, cell.codes[0], NULL), "z");
    check_all(&c, &pool);
    column_copy(&c, 1, 4000, &pool);
    check_all(&c, &pool);
    size_t before = column_memory(&c);
    column_clear(&c, 1, &pool);
    column_clear(&c, 4000, &pool);
    assert_true(column_memory(&c) < before);
    check_all(&c, &pool);
    assert_int_equal(strpool_find(&pool, "y", 1), STRPOOL_NONE);

    /* long lists de-duplicate through a hash map */
    const char *many[200];
    char names[200][8];
    for (int i = 0; i < 200; i++) {
        snprintf(names[i], sizeof names[i], "n%d", i % 70);
        many[i] = names[i];
    }
    segd_value mv = { .type = SEGD_T_LIST, .items = many, .n_items = 200 };
    column_set(&c, 5, &mv, &pool);
    assert_int_equal(column_get(&c, 5, &cell), 1);
    assert_int_equal(cell.n_codes, 70);
    check_all(&c, &pool);
    column_release(&c, &pool);
    assert_int_equal(pool.live, 0);
    strpool_release(&pool);
}

/* Compaction trims the page directory after the last page with a value; values stay. */
static void test_compact(void **state)
{
    (void)state;
    strpool pool;
    strpool_init(&pool);
    column c;
    column_init(&c, SEGD_T_STRING);
    column_compact(&c);   /* empty: nothing to do */
    check_all(&c, &pool);
    segd_value v = { .type = SEGD_T_STRING, .str = "x", .str_len = 1 };
    column_set(&c, 5, &v, &pool);
    column_set(&c, 3 * COLUMN_PAGE_ROWS + 1, &v, &pool);
    column_clear(&c, 3 * COLUMN_PAGE_ROWS + 1, &pool);   /* its page goes, the entry stays */
    assert_int_equal(c.n_pages, 4);
    size_t before = column_memory(&c);
    column_compact(&c);
    check_all(&c, &pool);
    assert_int_equal(c.n_pages, 1);
    assert_int_equal(c.dir_cap, 1);
    assert_true(column_memory(&c) < before);
    assert_int_equal(column_code(&c, 5), strpool_find(&pool, "x", 1));
    assert_int_equal(column_next(&c, 0), 5);
    assert_int_equal(column_next(&c, 6), COLUMN_NONE);
    assert_false(column_has(&c, 3 * COLUMN_PAGE_ROWS + 1));
    column_set(&c, 2 * COLUMN_PAGE_ROWS, &v, &pool);   /* the directory grows again */
    check_all(&c, &pool);
    assert_int_equal(column_next(&c, 6), 2 * COLUMN_PAGE_ROWS);
    column_clear(&c, 5, &pool);
    column_clear(&c, 2 * COLUMN_PAGE_ROWS, &pool);
    column_compact(&c);   /* no value left: no directory */
    check_all(&c, &pool);
    assert_int_equal(column_memory(&c), 0);
    column_release(&c, &pool);
    strpool_release(&pool);
}

static void test_check_finds_rows_past_limit(void **state)
{
    (void)state;
    strpool pool;
    strpool_init(&pool);
    column c;
    column_init(&c, SEGD_T_NUMBER);
    segd_value v = { .type = SEGD_T_NUMBER, .number = 1 };
    column_set(&c, 10, &v, &pool);
    assert_int_equal(column_check(&c, &pool, 11, "c"), 0);
    assert_int_equal(column_check(&c, &pool, 10, "c (a violation is expected here)"), -1);
    column_release(&c, &pool);
    strpool_release(&pool);
}

/* The rows of item i of the index, as a sorted string of row numbers. */
static void item_rows(const column *c, uint32_t i, uint64_t *words, size_t n_words, char *buf, size_t cap)
{
    memset(words, 0, n_words * sizeof *words);
    column_item_rows(c, i, words);
    buf[0] = 0;
    for (size_t w = 0; w < n_words; w++)
        for (uint64_t b = words[w]; b; b &= b - 1)
            snprintf(buf + strlen(buf), cap - strlen(buf), "%zu,", w * 64 + (size_t)__builtin_ctzll(b));
}

/* The item index follows every set, replace, copy and clear, and is dropped for good
 * when a list column turns out to hold ids rather than labels. */
static void test_list_item_index(void **state)
{
    (void)state;
    strpool pool;
    strpool_init(&pool);
    column c;
    column_init(&c, SEGD_T_LIST);
    assert_int_equal(column_items_count(&c), -1);   /* off unless asked for */
    column_index_items(&c);
    assert_int_equal(column_items_count(&c), 0);
    const char *vip_beta[] = { "vip", "beta" }, *beta[] = { "beta" };
    column_set(&c, 3, &(segd_value){ .type = SEGD_T_LIST, .items = vip_beta, .n_items = 2 }, &pool);
    column_set(&c, 2000, &(segd_value){ .type = SEGD_T_LIST, .items = beta, .n_items = 1 }, &pool);
    column_set(&c, 7, &(segd_value){ .type = SEGD_T_LIST, .items = NULL, .n_items = 0 }, &pool);
    check_all(&c, &pool);
    assert_int_equal(column_items_count(&c), 2);
    static uint64_t words[ROWS / 64];
    char buf[256];
    uint32_t vip = strpool_find(&pool, "vip", 3), b = strpool_find(&pool, "beta", 4);
    for (uint32_t i = 0; i < 2; i++) {
        item_rows(&c, i, words, ROWS / 64, buf, sizeof buf);
        uint32_t code = column_item_rows(&c, i, NULL);
        assert_string_equal(buf, code == vip ? "3," : "3,2000,");
        assert_true(code == vip || code == b);
    }
    /* replacing row 3's list drops it from vip, which then disappears */
    column_set(&c, 3, &(segd_value){ .type = SEGD_T_LIST, .items = beta, .n_items = 1 }, &pool);
    check_all(&c, &pool);
    assert_int_equal(column_items_count(&c), 1);
    column_copy(&c, 2000, 9, &pool);
    column_clear(&c, 3, &pool);
    check_all(&c, &pool);
    item_rows(&c, 0, words, ROWS / 64, buf, sizeof buf);
    assert_string_equal(buf, "9,2000,");
    column_release(&c, &pool);

    /* a string column: each value's rows, through set, replace, copy and clear */
    column_init(&c, SEGD_T_STRING);
    column_index_items(&c);
    column_set(&c, 1, &(segd_value){ .type = SEGD_T_STRING, .str = "pro", .str_len = 3 }, &pool);
    column_set(&c, 1500, &(segd_value){ .type = SEGD_T_STRING, .str = "pro", .str_len = 3 }, &pool);
    column_set(&c, 2, &(segd_value){ .type = SEGD_T_STRING, .str = "free", .str_len = 4 }, &pool);
    column_set(&c, 2, &(segd_value){ .type = SEGD_T_STRING, .str = "pro", .str_len = 3 }, &pool);
    check_all(&c, &pool);
    assert_int_equal(column_items_count(&c), 1);
    item_rows(&c, 0, words, ROWS / 64, buf, sizeof buf);
    assert_string_equal(buf, "1,2,1500,");
    column_copy(&c, 1, 40, &pool);
    column_clear(&c, 1500, &pool);
    check_all(&c, &pool);
    item_rows(&c, 0, words, ROWS / 64, buf, sizeof buf);
    assert_string_equal(buf, "1,2,40,");
    column_release(&c, &pool);
    assert_int_equal(column_items_count(&c), 0);   /* released: empty, still indexed */
    column_release(&c, &pool);

    /* ids, one a row: past COLUMN_ITEMS_MAX_DISTINCT distinct items the index goes */
    column_init(&c, SEGD_T_LIST);
    column_index_items(&c);
    char id[32];
    for (uint32_t row = 0; row < COLUMN_ITEMS_MAX_DISTINCT + 10; row++) {
        snprintf(id, sizeof id, "id-%u", row);
        const char *one[] = { id };
        column_set(&c, row, &(segd_value){ .type = SEGD_T_LIST, .items = one, .n_items = 1 }, &pool);
    }
    assert_int_equal(column_items_count(&c), -1);
    assert_int_equal(column_check(&c, &pool, 2 * COLUMN_ITEMS_MAX_DISTINCT, "ids"), 0);
    column_release(&c, &pool);
    strpool_release(&pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_times_bools),
        cmocka_unit_test(test_strings_and_json),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_list_item_index),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_check_finds_rows_past_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
