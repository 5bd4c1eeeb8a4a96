/* test_engine_idindex.c - unit tests of the engine's hash structures: the id set with
 * external keys (src/engine/idindex.c: plain and tagged, reserve, insertion after a
 * lookup, rehashing in id order), the uint32 map (src/engine/u32map.c) and the name
 * catalog (src/engine/namemap.c). Random inserts and removals against plain
 * arrays, with the structure's check after every mutation, and compaction to the
 * fewest slots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "engine/hash.h"
#include "engine/idindex.h"
#include "engine/namemap.h"
#include "engine/u32map.h"

enum { N_IDS = 3000, N_KEYS = 500 };

/* ids map to keys with many collisions (several ids per key), as emails do. */
static uint32_t key_of[N_IDS];

static uint64_t hash_of(const void *ctx, uint32_t id)
{
    (void)ctx;
    return hash_u64(key_of[id]);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* hash_of for the calls a tagged set must answer without it: a call fails the test. */
static uint64_t never_called(const void *ctx, uint32_t id)
{
    (void)ctx;
    (void)id;
    fail_msg("a tagged set called hash_of");
    return 0;
}

/* Random inserts (plain and after a lookup) and removals against a plain array, for a
 * plain or a tagged set. */
static void run_idindex_random(int tagged)
{
    static int present[N_IDS];
    memset(present, 0, sizeof present);
    idindex ix;
    if (tagged) idindex_init_tagged(&ix);
    else idindex_init(&ix);
    idindex_hash_fn moves = tagged ? never_called : hash_of;   /* what growth and removal call */
    idindex_probe pr;
    assert_int_equal(idindex_first(&ix, 7, &pr), IDINDEX_EMPTY);
    assert_int_equal(idindex_remove(&ix, 1, 7, moves, NULL), 0);
    for (uint32_t id = 0; id < N_IDS; id++) key_of[id] = id % N_KEYS;
    uint64_t rng = 7;
    uint32_t count = 0;
    for (int op = 0; op < 20000; op++) {
        uint32_t id = (uint32_t)(rng_next(&rng) % N_IDS);
        if (present[id]) {
            assert_int_equal(idindex_remove(&ix, id, hash_of(NULL, id), moves, NULL), 1);
            present[id] = 0;
            count--;
        } else if (op % 2) {
            idindex_insert(&ix, id, hash_of(NULL, id), moves, NULL);
            present[id] = 1;
            count++;
        } else {
            /* the lookup that found no equal id leaves the probe on the free slot */
            for (uint32_t c = idindex_first(&ix, hash_of(NULL, id), &pr); c != IDINDEX_EMPTY;
                 c = idindex_next(&ix, &pr))
                assert_int_not_equal(c, id);
            idindex_insert_at(&ix, &pr, id, moves, NULL);
            present[id] = 1;
            count++;
        }
        assert_int_equal(ix.count, count);
        if (op % 997 == 0) {
            /* compacting gives the fewest slots at load <= 0.75 and loses nothing */
            uint32_t old_cap = ix.cap;
            idindex_compact(&ix, moves, NULL);
            assert_true(ix.cap <= old_cap);
            assert_true((uint64_t)count * 4 <= (uint64_t)ix.cap * 3);
            assert_true(count == 0 ? ix.cap == 0 : (uint64_t)count * 4 > (uint64_t)(ix.cap - 1) * 3);
            assert_int_equal(idindex_memory(&ix), (size_t)ix.cap * (tagged ? 8 : 4));
            assert_int_equal(idindex_check(&ix, hash_of, NULL, "idindex"), 0);
            for (uint32_t other = 0; other < N_IDS; other++)
                assert_int_equal(idindex_contains(&ix, other, hash_of(NULL, other)), present[other]);
        }
        if (op % 97 == 0 || op > 19900) assert_int_equal(idindex_check(&ix, hash_of, NULL, "idindex"), 0);
        /* every id of the same key is a candidate, and only ids present (in a tagged set,
         * only ids of that key: their tags differ from the others') */
        uint32_t key = key_of[id], seen = 0;
        for (uint32_t c = idindex_first(&ix, hash_u64(key), &pr); c != IDINDEX_EMPTY; c = idindex_next(&ix, &pr)) {
            assert_true(present[c]);
            if (tagged) assert_int_equal(key_of[c], key);
            seen += key_of[c] == key;
        }
        uint32_t want = 0;
        for (uint32_t other = key; other < N_IDS; other += N_KEYS) want += (uint32_t)present[other];
        assert_int_equal(seen, want);
        assert_int_equal(idindex_contains(&ix, id, hash_of(NULL, id)), present[id]);
    }
    assert_true(idindex_memory(&ix) >= ix.count * (tagged ? 8 : 4) * 4 / 3);
    /* replace keeps the slot */
    uint32_t some = 0;
    while (!present[some]) some++;
    uint32_t twin = some + N_KEYS * 2;   /* same key */
    if (twin < N_IDS && !present[twin]) {
        assert_int_equal(idindex_replace(&ix, hash_of(NULL, some), some, twin), 1);
        assert_int_equal(idindex_contains(&ix, twin, hash_of(NULL, twin)), 1);
        assert_int_equal(idindex_contains(&ix, some, hash_of(NULL, some)), 0);
        assert_int_equal(idindex_check(&ix, hash_of, NULL, "idindex"), 0);
    }
    assert_int_equal(idindex_replace(&ix, 1, N_IDS + 5, 0), 0);
    /* emptied and compacted, the set frees its slots and still works */
    for (uint32_t id = 0; id < N_IDS; id++)
        if (idindex_contains(&ix, id, hash_of(NULL, id))) idindex_remove(&ix, id, hash_of(NULL, id), moves, NULL);
    idindex_compact(&ix, moves, NULL);
    assert_int_equal(ix.cap, 0);
    assert_int_equal(idindex_check(&ix, hash_of, NULL, "idindex"), 0);
    assert_int_equal(idindex_first(&ix, 7, &pr), IDINDEX_EMPTY);
    idindex_insert_at(&ix, &pr, 7, moves, NULL);   /* a probe of an empty set works too */
    idindex_insert(&ix, 5, hash_of(NULL, 5), moves, NULL);
    assert_true(idindex_contains(&ix, 5, hash_of(NULL, 5)));
    assert_true(idindex_contains(&ix, 7, 7));
    idindex_remove(&ix, 7, 7, moves, NULL);
    assert_int_equal(idindex_check(&ix, hash_of, NULL, "idindex"), 0);
    idindex_release(&ix);
    assert_int_equal(ix.count, 0);
    assert_int_equal(ix.stride, tagged ? 2 : 1);   /* release keeps the kind */
}

static void test_idindex_random(void **state)
{
    (void)state;
    run_idindex_random(0);
}

static void test_idindex_tagged_random(void **state)
{
    (void)state;
    run_idindex_random(1);
}

/* A reserved set takes that many ids without growing, keeps what it held, and a
 * reserve below what it holds changes nothing. */
static void test_idindex_reserve(void **state)
{
    (void)state;
    for (int tagged = 0; tagged < 2; tagged++) {
        idindex ix;
        if (tagged) idindex_init_tagged(&ix);
        else idindex_init(&ix);
        for (uint32_t id = 0; id < N_IDS; id++) key_of[id] = id;
        for (uint32_t id = 0; id < 100; id++) idindex_insert(&ix, id, hash_of(NULL, id), hash_of, NULL);
        idindex_reserve(&ix, 50, hash_of, NULL);     /* below the count: nothing */
        uint32_t cap = ix.cap;
        assert_true(cap < 2000);
        idindex_reserve(&ix, 2000, hash_of, NULL);
        assert_true(ix.cap > cap);
        assert_true((uint64_t)2000 * 4 <= (uint64_t)ix.cap * 3);
        assert_int_equal(idindex_check(&ix, hash_of, NULL, "reserved"), 0);
        cap = ix.cap;
        uint32_t *slots = ix.slots;
        for (uint32_t id = 100; id < 2000; id++)
            idindex_insert(&ix, id, hash_of(NULL, id), tagged ? never_called : hash_of, NULL);
        assert_int_equal(ix.cap, cap);
        assert_ptr_equal(ix.slots, slots);             /* never regrown */
        idindex_reserve(&ix, 10, hash_of, NULL);     /* never shrinks */
        assert_int_equal(ix.cap, cap);
        assert_int_equal(idindex_check(&ix, hash_of, NULL, "reserved"), 0);
        for (uint32_t id = 0; id < N_IDS; id++) assert_int_equal(idindex_contains(&ix, id, hash_of(NULL, id)), id < 2000);
        idindex_insert(&ix, 2000, hash_of(NULL, 2000), hash_of, NULL);   /* past the hint: grows */
        assert_true(ix.cap > cap);
        assert_int_equal(idindex_check(&ix, hash_of, NULL, "reserved"), 0);
        idindex_release(&ix);
    }
}

static uint64_t id_hash(const void *ctx, uint32_t id)
{
    (void)ctx;
    return hash_u64(id);
}

/* Big plain sets rehash in id order when their ids are dense enough for a bitmap to
 * sort them (ids 0, 1, 2... and 0, 100, 200...), in slot order when they are sparse
 * (multiples of a big odd number, wrapping): every growth keeps every id findable. */
static void test_idindex_rehash_orders(void **state)
{
    (void)state;
    static const uint32_t steps[] = { 1, 100, 1000003 };
    enum { N = 20000 };
    for (size_t k = 0; k < sizeof steps / sizeof *steps; k++) {
        idindex ix;
        idindex_init(&ix);
        uint32_t grown = 0;
        for (uint32_t i = 0; i < N; i++) {
            uint32_t cap = ix.cap;
            idindex_insert(&ix, i * steps[k], id_hash(NULL, i * steps[k]), id_hash, NULL);
            if (ix.cap != cap) {
                grown++;
                assert_int_equal(idindex_check(&ix, id_hash, NULL, "rehashed"), 0);
            }
        }
        assert_true(grown > 10);
        for (uint32_t i = 0; i < N; i++) assert_true(idindex_contains(&ix, i * steps[k], id_hash(NULL, i * steps[k])));
        assert_false(idindex_contains(&ix, N * steps[k], id_hash(NULL, N * steps[k])));
        idindex_compact(&ix, id_hash, NULL);
        assert_int_equal(idindex_check(&ix, id_hash, NULL, "compacted"), 0);
        for (uint32_t i = 0; i < N; i += 7) assert_true(idindex_contains(&ix, i * steps[k], id_hash(NULL, i * steps[k])));
        idindex_release(&ix);
    }
}

static void test_u32map_random(void **state)
{
    (void)state;
    enum { KEYS = 2000 };
    static uint32_t value[KEYS];
    for (uint32_t k = 0; k < KEYS; k++) value[k] = U32MAP_NONE;
    u32map m;
    u32map_init(&m);
    assert_int_equal(u32map_get(&m, 3), U32MAP_NONE);
    assert_int_equal(u32map_remove(&m, 3), 0);
    uint64_t rng = 3;
    uint32_t count = 0;
    for (int op = 0; op < 20000; op++) {
        uint64_t r = rng_next(&rng);
        uint32_t k = (uint32_t)(r % KEYS) * 7919;   /* spread keys */
        uint32_t idx = (uint32_t)(r % KEYS);
        if ((r >> 40) % 3 == 0) {
            assert_int_equal(u32map_remove(&m, k), value[idx] != U32MAP_NONE);
            if (value[idx] != U32MAP_NONE) count--;
            value[idx] = U32MAP_NONE;
        } else {
            if (value[idx] == U32MAP_NONE) count++;
            value[idx] = (uint32_t)(r >> 20);
            u32map_put(&m, k, value[idx]);
        }
        assert_int_equal(m.count, count);
        assert_int_equal(u32map_get(&m, k), value[idx]);
        if (op % 101 == 0) assert_int_equal(u32map_check(&m, "u32map"), 0);
        if (op % 1009 == 0) {
            uint32_t old_cap = m.cap;
            u32map_compact(&m);
            assert_true(m.cap <= old_cap);
            assert_true(count == 0 ? m.cap == 0 : (uint64_t)count * 4 > (uint64_t)(m.cap - 1) * 3);
            assert_int_equal(u32map_check(&m, "u32map"), 0);
            for (uint32_t i = 0; i < KEYS; i++) assert_int_equal(u32map_get(&m, i * 7919), value[i]);
        }
    }
    for (uint32_t i = 0; i < KEYS; i++) assert_int_equal(u32map_get(&m, i * 7919), value[i]);
    assert_int_equal(u32map_check(&m, "u32map"), 0);
    assert_true(u32map_memory(&m) >= count * 8);
    u32map_release(&m);
}

static void test_namemap(void **state)
{
    (void)state;
    namemap m;
    namemap_init(&m);
    char name[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "name-%d", i);
        assert_int_equal(namemap_find(&m, name), -1);
        assert_int_equal(namemap_add(&m, name), i);
    }
    assert_int_equal(namemap_check(&m, "names"), 0);
    for (int i = 0; i < 300; i += 3) namemap_remove(&m, i);
    namemap_remove(&m, 0);      /* already removed: no-op */
    namemap_remove(&m, 1000);   /* out of range: no-op */
    assert_int_equal(namemap_check(&m, "names"), 0);
    assert_int_equal(m.live, 200);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "name-%d", i);
        assert_int_equal(namemap_find(&m, name), i % 3 ? i : -1);
        if (i % 3) assert_string_equal(namemap_name(&m, i), name);
        else assert_null(namemap_name(&m, i));
    }
    /* a removed name comes back at a new index */
    assert_int_equal(namemap_add(&m, "name-0"), 300);
    assert_int_equal(namemap_find(&m, "name-0"), 300);
    assert_null(namemap_name(&m, -1));
    assert_null(namemap_name(&m, 301));
    assert_int_equal(namemap_check(&m, "names"), 0);
    assert_true(namemap_memory(&m) > 200 * 8);
    /* compacted: the same names at the same indexes, in less memory */
    size_t before = namemap_memory(&m);
    namemap_compact(&m);
    assert_int_equal(namemap_check(&m, "names"), 0);
    assert_true(namemap_memory(&m) < before);
    for (int i = 1; i < 300; i++) {
        snprintf(name, sizeof name, "name-%d", i);
        assert_int_equal(namemap_find(&m, name), i % 3 ? i : -1);
    }
    assert_int_equal(namemap_find(&m, "name-0"), 300);
    assert_int_equal(namemap_add(&m, "after"), 301);
    assert_int_equal(namemap_check(&m, "names"), 0);
    namemap_release(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idindex_random),
        cmocka_unit_test(test_idindex_tagged_random),
        cmocka_unit_test(test_idindex_reserve),
        cmocka_unit_test(test_idindex_rehash_orders),
        cmocka_unit_test(test_u32map_random),
        cmocka_unit_test(test_namemap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
