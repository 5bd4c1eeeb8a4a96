/* test_engine_idindex.c - unit tests of the engine's hash structures: the id set with
 * external keys (src/engine/idindex.c), the uint32 map (src/engine/u32map.c) and the
 * name catalog (src/engine/namemap.c). Random inserts and removals against plain
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

static void test_idindex_random(void **state)
{
    (void)state;
    static int present[N_IDS];
    memset(present, 0, sizeof present);
    idindex ix;
    idindex_init(&ix);
    uint32_t pos;
    assert_int_equal(idindex_first(&ix, 7, &pos), IDINDEX_EMPTY);
    assert_int_equal(idindex_remove(&ix, 1, 7, hash_of, NULL), 0);
    for (uint32_t id = 0; id < N_IDS; id++) key_of[id] = id % N_KEYS;
    uint64_t rng = 7;
    uint32_t count = 0;
    for (int op = 0; op < 20000; op++) {
        uint32_t id = (uint32_t)(rng_next(&rng) % N_IDS);
        if (present[id]) {
            assert_int_equal(idindex_remove(&ix, id, hash_of(NULL, id), hash_of, NULL), 1);
            present[id] = 0;
            count--;
        } else {
            idindex_insert(&ix, id, hash_of(NULL, id), hash_of, NULL);
            present[id] = 1;
            count++;
        }
        assert_int_equal(ix.count, count);
        if (op % 997 == 0) {
            /* compacting gives the fewest slots at load <= 0.75 and loses nothing */
            uint32_t old_cap = ix.cap;
            idindex_compact(&ix, hash_of, NULL);
            assert_true(ix.cap <= old_cap);
            assert_true((uint64_t)count * 4 <= (uint64_t)ix.cap * 3);
            assert_true(count == 0 ? ix.cap == 0 : (uint64_t)count * 4 > (uint64_t)(ix.cap - 1) * 3);
            assert_int_equal(idindex_memory(&ix), (size_t)ix.cap * 4);
            assert_int_equal(idindex_check(&ix, hash_of, NULL, "idindex"), 0);
            for (uint32_t other = 0; other < N_IDS; other++)
                assert_int_equal(idindex_contains(&ix, other, hash_of(NULL, other)), present[other]);
        }
        if (op % 97 == 0 || op > 19900) assert_int_equal(idindex_check(&ix, hash_of, NULL, "idindex"), 0);
        /* every id of the same key is a candidate, and only ids present */
        uint32_t key = key_of[id], seen = 0;
        for (uint32_t c = idindex_first(&ix, hash_u64(key), &pos); c != IDINDEX_EMPTY; c = idindex_next(&ix, &pos)) {
            assert_true(present[c]);
            seen += key_of[c] == key;
        }
        uint32_t want = 0;
        for (uint32_t other = key; other < N_IDS; other += N_KEYS) want += (uint32_t)present[other];
        assert_int_equal(seen, want);
        assert_int_equal(idindex_contains(&ix, id, hash_of(NULL, id)), present[id]);
    }
    assert_true(idindex_memory(&ix) >= ix.count * 4 * 4 / 3);
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
        if (idindex_contains(&ix, id, hash_of(NULL, id))) idindex_remove(&ix, id, hash_of(NULL, id), hash_of, NULL);
    idindex_compact(&ix, hash_of, NULL);
    assert_int_equal(ix.cap, 0);
    assert_int_equal(idindex_check(&ix, hash_of, NULL, "idindex"), 0);
    assert_int_equal(idindex_first(&ix, 7, &pos), IDINDEX_EMPTY);
    idindex_insert(&ix, 5, hash_of(NULL, 5), hash_of, NULL);
    assert_true(idindex_contains(&ix, 5, hash_of(NULL, 5)));
    assert_int_equal(idindex_check(&ix, hash_of, NULL, "idindex"), 0);
    idindex_release(&ix);
    assert_int_equal(ix.count, 0);
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
        cmocka_unit_test(test_u32map_random),
        cmocka_unit_test(test_namemap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
