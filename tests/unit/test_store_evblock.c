/* test_store_evblock.c - unit tests for src/store/evblock.c: runs (append, holes,
 * evrun_check after every change), the block format's round trip, and refusal of
 * bytes that are not a version-1 block of the expected rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/evblock.h"

/* A run of 5 rows: properties absent, empty, and set; one row made a hole. */
static void fill(evrun *r)
{
    evrun_reset(r, 3, 100);
    evrun_append(r, 7, 1000, "{\"a\":1}", 7);
    assert_int_equal(evrun_check(r), 0);
    evrun_append(r, 8, -5, NULL, 0);
    evrun_append(r, UINT32_MAX, INT64_MAX, "", 0);
    evrun_append(r, 9, INT64_MIN, "{\"b\":\"xy\"}", 10);
    evrun_append(r, 10, 4, "{}", 2);
    assert_int_equal(evrun_check(r), 0);
    assert_int_equal(r->n, 5);
    assert_int_equal(r->bytes_len, 7 + 10 + 2);
}

static void test_round_trip_with_holes(void **state)
{
    evrun r, back;
    char *buf = NULL;
    size_t cap = 0;
    evrun_init(&r);
    evrun_init(&back);
    fill(&r);
    evrun_hole(&r, 0);                      /* drops its 7 bytes of properties */
    assert_int_equal(evrun_check(&r), 0);
    assert_int_equal(r.bytes_len, 12);
    assert_false(evrun_all_holes(&r));

    size_t len = evblock_encode(&r, &buf, &cap);
    assert_int_equal(len, EVBLOCK_HEADER_BYTES + 5 * 16 + 12);
    assert_int_equal(evblock_decode(buf, len, 3, 100, 5, &back), 0);
    assert_int_equal(evrun_check(&back), 0);
    assert_int_equal(back.type, 3);
    assert_int_equal(back.first, 100);
    assert_int_equal(back.n, 5);
    assert_int_equal(back.lens[0], EVBLOCK_HOLE);
    assert_int_equal(back.lens[1], 0);        /* no properties */
    assert_int_equal(back.lens[2], 1);        /* empty text, not none */
    assert_int_equal(back.persons[2], UINT32_MAX);
    assert_true(back.times[3] == INT64_MIN);
    assert_memory_equal(back.bytes, "{\"b\":\"xy\"}{}", 12);

    /* the iterator gives the same rows, properties pointing into the block */
    evblock_iter it;
    uint32_t person;
    int64_t t;
    const char *props;
    size_t plen;
    int hole, rows = 0;
    assert_int_equal(evblock_open(buf, len, 5, &it), 0);
    while (evblock_next(&it, &person, &t, &props, &plen, &hole)) {
        if (rows == 0) assert_true(hole && !props);
        if (rows == 1) assert_true(!hole && !props && plen == 0);
        if (rows == 2) assert_true(!hole && props && plen == 0);
        if (rows == 3) assert_true(plen == 10 && memcmp(props, "{\"b\":\"xy\"}", 10) == 0 && person == 9);
        if (rows == 4) assert_true(plen == 2 && t == 4);
        rows++;
    }
    assert_int_equal(rows, 5);

    for (uint32_t i = 1; i < 5; i++) {
        evrun_hole(&back, i);
        assert_int_equal(evrun_check(&back), 0);
    }
    assert_true(evrun_all_holes(&back));
    assert_int_equal(back.bytes_len, 0);
    free(buf);
    evrun_release(&r);
    evrun_release(&back);
}

/* Only version-1 blocks of exactly the rows the row says, with lengths that add up. */
static void test_damaged_blocks_are_refused(void **state)
{
    evrun r, back;
    char *buf = NULL;
    size_t cap = 0;
    evblock_iter it;
    evrun_init(&r);
    evrun_init(&back);
    fill(&r);
    size_t len = evblock_encode(&r, &buf, &cap);
    assert_int_equal(evblock_open(buf, len, 5, &it), 0);
    assert_int_equal(evblock_open(buf, len, 4, &it), -1);          /* n differs from the row's */
    assert_int_equal(evblock_open(buf, len - 1, 5, &it), -1);      /* cut short */
    assert_int_equal(evblock_open(NULL, 0, 0, &it), -1);
    buf[0] = 2;                                                    /* a later version */
    assert_int_equal(evblock_decode(buf, len, 3, 100, 5, &back), -1);
    buf[0] = EVBLOCK_VERSION;
    uint32_t huge = 1000000;                                        /* a length past the end */
    memcpy(buf + EVBLOCK_HEADER_BYTES + 5 * 12, &huge, 4);
    assert_int_equal(evblock_open(buf, len, 5, &it), -1);
    free(buf);
    evrun_release(&r);
    evrun_release(&back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_with_holes),
        cmocka_unit_test(test_damaged_blocks_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
