/* test_engine_strpool.c - unit tests of the string intern pool (src/engine/strpool.c):
 * interning, reference counts, freeing on the last reference, code reuse, compaction,
 * short strings in their entry and long ones on the heap, reserving, and a random run
 * against a plain model, with strpool_check after every mutation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "engine/strpool.h"

#define CHECK_OK(p) assert_int_equal(strpool_check(p), 0)

static void test_intern_and_find(void **state)
{
    (void)state;
    strpool p;
    strpool_init(&p);
    CHECK_OK(&p);
    assert_int_equal(strpool_find(&p, "a", 1), STRPOOL_NONE);
    assert_null(strpool_get(&p, 0, NULL));
    uint32_t a = strpool_intern(&p, "alpha", 5);
    CHECK_OK(&p);
    uint32_t a2 = strpool_intern(&p, "alphabet", 5);   /* only 5 bytes count */
    assert_int_equal(a, a2);
    assert_int_equal(strpool_refs(&p, a), 2);
    size_t len = 0;
    assert_string_equal(strpool_get(&p, a, &len), "alpha");
    assert_int_equal(len, 5);
    assert_int_equal(strpool_find(&p, "alpha", 5), a);
    assert_int_equal(strpool_find(&p, "alph", 4), STRPOOL_NONE);

    /* embedded NUL bytes and the empty string are values of their own */
    uint32_t nul = strpool_intern(&p, "a\0b", 3);
    uint32_t just_a = strpool_intern(&p, "a", 1);
    uint32_t empty = strpool_intern(&p, "", 0);
    assert_int_not_equal(nul, just_a);
    assert_int_not_equal(empty, just_a);
    assert_int_equal(strpool_find(&p, "a\0b", 3), nul);
    assert_int_equal(strpool_find(&p, "", 0), empty);
    assert_string_equal(strpool_get(&p, empty, &len), "");
    assert_int_equal(len, 0);
    assert_int_equal(p.live, 4);
    CHECK_OK(&p);

    strpool_ref(&p, nul);
    strpool_unref(&p, nul);
    assert_int_equal(strpool_refs(&p, nul), 1);
    strpool_unref(&p, a);
    assert_string_equal(strpool_get(&p, a, NULL), "alpha");
    strpool_unref(&p, a);
    CHECK_OK(&p);
    assert_null(strpool_get(&p, a, NULL));
    assert_int_equal(strpool_refs(&p, a), 0);
    assert_int_equal(strpool_find(&p, "alpha", 5), STRPOOL_NONE);
    assert_int_equal(p.live, 3);

    /* the freed code is reused */
    uint32_t b = strpool_intern(&p, "beta", 4);
    assert_int_equal(b, a);
    CHECK_OK(&p);
    assert_null(strpool_get(&p, 12345, NULL));
    assert_int_equal(strpool_refs(&p, 12345), 0);
    strpool_release(&p);   /* frees live strings too */
    strpool_release(&p);
}

static void test_memory_accounting(void **state)
{
    (void)state;
    strpool p;
    strpool_init(&p);
    size_t m0 = strpool_memory(&p);
    char buf[64];
    uint32_t codes[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(buf, sizeof buf, "a fairly long string number %d", i);
        codes[i] = strpool_intern(&p, buf, strlen(buf));
    }
    CHECK_OK(&p);
    size_t m1 = strpool_memory(&p);
    assert_true(m1 > m0 + 1000 * 30);
    for (int i = 0; i < 1000; i++) strpool_unref(&p, codes[i]);
    CHECK_OK(&p);
    assert_int_equal(p.live, 0);
    assert_int_equal(p.string_bytes, 0);
    assert_true(strpool_memory(&p) < m1 - 1000 * 30);
    strpool_release(&p);
}

/* Compaction forgets free codes at the top, keeps the others on the free list and
 * every live code where it was. */
static void test_compact(void **state)
{
    (void)state;
    strpool p;
    strpool_init(&p);
    strpool_compact(&p);   /* empty: nothing to do */
    CHECK_OK(&p);
    char buf[32];
    uint32_t codes[200];
    for (int i = 0; i < 200; i++) {
        snprintf(buf, sizeof buf, "s%d", i);
        codes[i] = strpool_intern(&p, buf, strlen(buf));
        assert_int_equal(codes[i], i);
    }
    for (int i = 150; i < 200; i++) strpool_unref(&p, codes[i]);   /* the top goes */
    for (int i = 10; i < 20; i++) strpool_unref(&p, codes[i]);     /* a hole stays */
    size_t before = strpool_memory(&p);
    strpool_compact(&p);
    CHECK_OK(&p);
    assert_int_equal(p.n_codes, 150);
    assert_int_equal(p.cap, 150);
    assert_true(strpool_memory(&p) < before);
    for (int i = 0; i < 200; i++) {
        snprintf(buf, sizeof buf, "s%d", i);
        int live = i < 10 || (i >= 20 && i < 150);
        assert_int_equal(strpool_find(&p, buf, strlen(buf)), live ? (uint32_t)i : STRPOOL_NONE);
        if (live) assert_string_equal(strpool_get(&p, (uint32_t)i, NULL), buf);
    }
    assert_null(strpool_get(&p, 170, NULL));
    assert_int_equal(strpool_refs(&p, 170), 0);
    /* the hole's codes come back lowest first, then the pool grows again */
    for (int i = 0; i < 12; i++) {
        snprintf(buf, sizeof buf, "new%d", i);
        assert_int_equal(strpool_intern(&p, buf, strlen(buf)), i < 10 ? 10 + i : 150 + (i - 10));
        CHECK_OK(&p);
    }
    strpool_compact(&p);
    CHECK_OK(&p);
    /* everything freed: the entry array goes */
    for (uint32_t c = 0; c < p.n_codes; c++)
        if (strpool_refs(&p, c)) strpool_unref(&p, c);
    strpool_compact(&p);
    CHECK_OK(&p);
    assert_int_equal(p.n_codes, 0);
    assert_int_equal(strpool_memory(&p), 0);
    assert_int_equal(strpool_intern(&p, "again", 5), 0);
    CHECK_OK(&p);
    strpool_release(&p);
}

/* Strings shorter than STRPOOL_INLINE bytes live in their entry, longer ones on the
 * heap; both read back the same, and a freed one leaves no byte behind in its entry
 * (strpool_check checks free entries are zero). */
static void test_inline_and_heap(void **state)
{
    (void)state;
    strpool p;
    strpool_init(&p);
    char buf[64];
    uint32_t codes[40];
    for (int n = 0; n < 40; n++) {
        for (int i = 0; i < n; i++) buf[i] = (char)('a' + (n + i) % 26);
        if (n > 3) buf[2] = 0;   /* embedded NUL bytes count too */
        codes[n] = strpool_intern(&p, buf, (size_t)n);
        CHECK_OK(&p);
    }
    /* only strings of 16 bytes or more own a heap block */
    size_t heap = p.string_bytes;
    assert_true(heap > 0);
    for (int n = 0; n < 40; n++) {
        for (int i = 0; i < n; i++) buf[i] = (char)('a' + (n + i) % 26);
        if (n > 3) buf[2] = 0;
        size_t len = 99;
        const char *got = strpool_get(&p, codes[n], &len);
        assert_int_equal(len, n);
        assert_memory_equal(got, buf, (size_t)n);
        assert_int_equal(got[n], 0);
        assert_int_equal(strpool_find(&p, buf, (size_t)n), codes[n]);
        size_t before = p.string_bytes;
        strpool_unref(&p, codes[n]);
        CHECK_OK(&p);
        if (n < STRPOOL_INLINE) assert_int_equal(p.string_bytes, before);
        else assert_true(p.string_bytes < before);
        assert_int_equal(strpool_find(&p, buf, (size_t)n), STRPOOL_NONE);
    }
    assert_int_equal(p.string_bytes, 0);
    assert_int_equal(p.live, 0);
    /* a prefix of a pool string is interned from the pool's own bytes, also while the
     * entry array moves */
    uint32_t whole = strpool_intern(&p, "short-string", 12);
    for (int i = 0; p.free_head != STRPOOL_NONE || p.n_codes < p.cap; i++) {
        snprintf(buf, sizeof buf, "filler-%d", i);
        strpool_intern(&p, buf, strlen(buf));
    }
    const strpool_entry *entries = p.entries;
    const char *own = strpool_get(&p, whole, NULL);
    uint32_t prefix = strpool_intern(&p, own, 5);           /* the array is full: it moves */
    assert_ptr_not_equal(p.entries, entries);
    assert_string_equal(strpool_get(&p, prefix, NULL), "short");
    strpool_intern(&p, "a long string that release frees", 33);
    CHECK_OK(&p);
    strpool_release(&p);   /* frees heap copies of live strings too (the sanitizers check) */
}

/* A reserved pool takes that many strings without moving its entries (short strings'
 * pointers stay put) or regrowing its index; reserving less changes nothing. */
static void test_reserve(void **state)
{
    (void)state;
    strpool p;
    strpool_init(&p);
    uint32_t first = strpool_intern(&p, "first", 5);
    strpool_reserve(&p, 1);   /* below what it holds */
    CHECK_OK(&p);
    strpool_reserve(&p, 5000);
    CHECK_OK(&p);
    assert_int_equal(p.cap, 5000);
    uint32_t index_cap = p.index.cap;
    assert_true((uint64_t)5000 * 4 <= (uint64_t)index_cap * 3);
    const char *at = strpool_get(&p, first, NULL);
    assert_string_equal(at, "first");
    char buf[32];
    for (int i = 1; i < 5000; i++) {
        snprintf(buf, sizeof buf, "s%d", i);
        strpool_intern(&p, buf, strlen(buf));
    }
    CHECK_OK(&p);
    assert_int_equal(p.live, 5000);
    assert_ptr_equal(strpool_get(&p, first, NULL), at);   /* never moved */
    assert_int_equal(p.cap, 5000);
    assert_int_equal(p.index.cap, index_cap);
    size_t full = strpool_memory(&p);
    strpool_compact(&p);                                   /* nothing spare to give back */
    assert_int_equal(strpool_memory(&p), full);
    strpool_intern(&p, "one more", 8);                     /* past the hint: grows as usual */
    CHECK_OK(&p);
    assert_true(p.cap > 5000);
    strpool_release(&p);
}

/* Random interns and unrefs mirrored in per-string counts. */
static void test_random(void **state)
{
    (void)state;
    enum { N = 600, OPS = 20000 };
    static uint32_t refs[N], code[N];
    uint64_t rng = 12345;
    strpool p;
    strpool_init(&p);
    char buf[32];
    for (int op = 0; op < OPS; op++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        int s = (int)(rng % N);
        snprintf(buf, sizeof buf, "str-%d", s);
        if (refs[s] && (rng >> 32) % 2) {
            strpool_unref(&p, code[s]);
            refs[s]--;
        } else {
            uint32_t c = strpool_intern(&p, buf, strlen(buf));
            if (refs[s]) assert_int_equal(c, code[s]);
            code[s] = c;
            refs[s]++;
        }
        if (op % 50 == 0 || op > OPS - 100) CHECK_OK(&p);
        assert_int_equal(strpool_refs(&p, code[s]), refs[s]);
        assert_int_equal(strpool_find(&p, buf, strlen(buf)), refs[s] ? code[s] : STRPOOL_NONE);
    }
    uint32_t live = 0;
    for (int s = 0; s < N; s++) live += refs[s] != 0;
    assert_int_equal(p.live, live);
    assert_true(p.n_codes <= N);   /* codes are reused */
    strpool_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intern_and_find),
        cmocka_unit_test(test_memory_accounting),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_inline_and_heap),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
