/* Tests for src/ingest/dedup.c: membership, windows, removal, pruning, growth. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <cmocka.h>

#include "ingest/dedup.h"

static void test_add_contains_remove(void **state)
{
    (void)state;
    dedup_set *d = dedup_new();
    assert_false(dedup_contains(d, "default", "m1", 0));
    dedup_add(d, "default", "m1", 1000000);
    assert_true(dedup_contains(d, "default", "m1", 0));
    assert_false(dedup_contains(d, "other", "m1", 0));          /* per source */
    assert_false(dedup_contains(d, "defaultm", "1", 0));        /* pair boundary */
    assert_false(dedup_contains(d, "default", "m1", 1000000 + 120000));   /* outside the window */
    dedup_remove(d, "default", "m1");
    assert_false(dedup_contains(d, "default", "m1", 0));
    assert_int_equal(dedup_count(d), 0);
    dedup_free(d);
}

static void test_growth_and_prune(void **state)
{
    (void)state;
    dedup_set *d = dedup_new();
    char id[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(id, sizeof id, "msg-%d", i);
        dedup_add(d, "s", id, (int64_t)i * 60000);
    }
    assert_int_equal(dedup_count(d), 100000);
    for (int i = 0; i < 100000; i += 997) {
        snprintf(id, sizeof id, "msg-%d", i);
        assert_true(dedup_contains(d, "s", id, 0));
        snprintf(id, sizeof id, "other-%d", i);
        assert_false(dedup_contains(d, "s", id, 0));
    }
    dedup_prune(d, 50000LL * 60000);
    assert_int_equal(dedup_count(d), 50000);
    assert_false(dedup_contains(d, "s", "msg-49999", 0));
    assert_true(dedup_contains(d, "s", "msg-50000", 0));
    dedup_free(d);
    dedup_free(NULL);
}

static void test_insert_is_contains_then_add(void **state)
{
    (void)state;
    dedup_set *d = dedup_new();
    assert_int_equal(dedup_insert(d, "s", "a", 600000, 0), 0);          /* new: added */
    assert_int_equal(dedup_insert(d, "s", "a", 700000, 0), 1);          /* a repeat in the window */
    assert_true(dedup_contains(d, "s", "a", 600000));
    assert_int_equal(dedup_insert(d, "s", "a", 9000000, 8000000), 0);   /* seen before the window: new again */
    assert_false(dedup_contains(d, "s", "a", 9000000 + 60000));
    assert_true(dedup_contains(d, "s", "a", 9000000));
    assert_int_equal(dedup_count(d), 1);
    dedup_free(d);
}

/* A pair hashed ahead (on the normalising thread) inserts as the pair itself would: the
 * key's own minute is ignored for at_ms, and repeats are found either way. */
static void test_insert_key_is_insert_of_the_pair(void **state)
{
    dedup_set *d = dedup_new();
    dedup_key k;
    dedup_key_of("api", "m-1", 0, &k);
    assert_int_equal(dedup_insert_key(d, &k, 600000, 0), 0);
    assert_int_equal(dedup_insert_key(d, &k, 600000, 0), 1);
    assert_int_equal(dedup_insert(d, "api", "m-1", 600000, 0), 1);
    assert_int_equal(dedup_contains(d, "api", "m-1", 600000), 1);     /* seen at minute 10 */
    assert_int_equal(dedup_contains(d, "api", "m-1", 660000), 0);     /* not since minute 11 */
    assert_int_equal(dedup_insert_key(d, &k, 900000, 660000), 0);     /* before the window: new */
    dedup_key_of("other", "m-1", 0, &k);
    assert_int_equal(dedup_insert_key(d, &k, 600000, 0), 0);         /* the source is part of it */
    assert_int_equal(dedup_count(d), 2);
    dedup_free(d);
}

/* After dedup_reserve(n), n inserts fit without growing (no rehash on the way), and
 * what was there before is still found. */
static void test_reserve_grows_once(void **state)
{
    dedup_set *d = dedup_new();
    char id[32];
    assert_int_equal(dedup_insert(d, "api", "before", 60000, 0), 0);
    dedup_reserve(d, 100000);
    size_t bytes = dedup_bytes(d);
    for (int i = 0; i < 100000; i++) {
        snprintf(id, sizeof id, "m-%d", i);
        assert_int_equal(dedup_insert(d, "api", id, 60000, 0), 0);
    }
    assert_int_equal(dedup_bytes(d), bytes);
    assert_int_equal(dedup_count(d), 100001);
    assert_int_equal(dedup_contains(d, "api", "before", 0), 1);
    dedup_reserve(d, 0);                      /* fits: nothing changes */
    assert_int_equal(dedup_bytes(d), bytes);
    dedup_free(d);
}

static void test_add_keys(void **state)
{
    (void)state;
    dedup_set *d = dedup_new();
    dedup_add(d, "s", "old", 60000);
    dedup_key keys[3000];
    char id[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof id, "k%d", i);
        dedup_key_of("s", id, (int64_t)i * 60000, &keys[i]);
    }
    dedup_key_of("s", "old", 120000, &keys[0]);      /* an id already present: the newer minute */
    dedup_add_keys(d, keys, 3000);
    assert_int_equal(dedup_count(d), 3000);          /* "old" replaces k0's slot in the list, once */
    assert_true(dedup_contains(d, "s", "old", 120000));
    assert_true(dedup_contains(d, "s", "k2999", 2999LL * 60000));
    assert_false(dedup_contains(d, "s", "k0", 0));   /* k0's key was overwritten above */
    dedup_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_contains_remove),
        cmocka_unit_test(test_growth_and_prune),
        cmocka_unit_test(test_insert_is_contains_then_add),
        cmocka_unit_test(test_add_keys),
        cmocka_unit_test(test_insert_key_is_insert_of_the_pair),
        cmocka_unit_test(test_reserve_grows_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
