/* idindex.c - open-addressing hash set of uint32 ids with keys kept by the caller
 * (idindex.h). Linear probing, backward-shift deletion, growth x1.5 at load 0.75.
 */
#include "idindex.h"
#include "fit.h"
#include "hash.h"
#include "../base/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SLOTS 16

void idindex_init(idindex *ix)
{
    ix->slots = NULL;
    ix->cap = 0;
    ix->count = 0;
}

void idindex_release(idindex *ix)
{
    free(ix->slots);
    idindex_init(ix);
}

static uint32_t next_slot(const idindex *ix, uint32_t pos)
{
    return pos + 1 == ix->cap ? 0 : pos + 1;
}

/* Places id in the first empty slot of its probe run; no growth. */
static void place(uint32_t *slots, uint32_t cap, uint32_t id, uint64_t hash)
{
    uint32_t pos = hash_slot(hash, cap);
    while (slots[pos] != IDINDEX_EMPTY) pos = pos + 1 == cap ? 0 : pos + 1;
    slots[pos] = id;
}

/* Moves every id into a fresh array of cap slots (cap > count; 0 frees the slots). */
static void rehash(idindex *ix, uint32_t cap, idindex_hash_fn hash_of, const void *ctx)
{
    uint32_t *slots = NULL;
    if (cap) {
        slots = xmalloc((size_t)cap * sizeof *slots);
        memset(slots, 0xff, (size_t)cap * sizeof *slots);
    }
    for (uint32_t i = 0; i < ix->cap; i++)
        if (ix->slots[i] != IDINDEX_EMPTY) place(slots, cap, ix->slots[i], hash_of(ctx, ix->slots[i]));
    free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
}

/* Rehashes into cap x1.5 slots so that the load stays <= 0.75 after one more insert. */
static void grow(idindex *ix, idindex_hash_fn hash_of, const void *ctx)
{
    uint64_t cap = ix->cap < MIN_SLOTS ? MIN_SLOTS : (uint64_t)ix->cap + ix->cap / 2;
    while ((uint64_t)(ix->count + 1) * 4 > cap * 3) cap += cap / 2;
    if (cap > UINT32_MAX - 1) {
        fprintf(stderr, "segd: hash index over 2^32 slots\n");
        abort();
    }
    rehash(ix, (uint32_t)cap, hash_of, ctx);
}

void idindex_compact(idindex *ix, idindex_hash_fn hash_of, const void *ctx)
{
    uint32_t cap = fit_slots(ix->count);
    if (cap < ix->cap) rehash(ix, cap, hash_of, ctx);
}

void idindex_insert(idindex *ix, uint32_t id, uint64_t hash, idindex_hash_fn hash_of,
                    const void *ctx)
{
    if ((uint64_t)(ix->count + 1) * 4 > (uint64_t)ix->cap * 3) grow(ix, hash_of, ctx);
    place(ix->slots, ix->cap, id, hash);
    ix->count++;
}

/* Position of id in the probe run of hash, or IDINDEX_EMPTY. */
static uint32_t find_pos(const idindex *ix, uint32_t id, uint64_t hash)
{
    if (!ix->cap) return IDINDEX_EMPTY;
    uint32_t pos = hash_slot(hash, ix->cap);
    for (;;) {
        uint32_t at = ix->slots[pos];
        if (at == id) return pos;
        if (at == IDINDEX_EMPTY) return IDINDEX_EMPTY;
        pos = next_slot(ix, pos);
    }
}

int idindex_remove(idindex *ix, uint32_t id, uint64_t hash, idindex_hash_fn hash_of,
                   const void *ctx)
{
    uint32_t hole = find_pos(ix, id, hash);
    if (hole == IDINDEX_EMPTY) return 0;
    /* Backward shift: move later members of the run into the hole when the hole lies
     * cyclically between their home and their slot, so no lookup crosses an empty slot. */
    uint32_t pos = next_slot(ix, hole);
    while (ix->slots[pos] != IDINDEX_EMPTY) {
        uint32_t home = hash_slot(hash_of(ctx, ix->slots[pos]), ix->cap);
        int stays = hole <= pos ? (hole < home && home <= pos) : (hole < home || home <= pos);
        if (!stays) {
            ix->slots[hole] = ix->slots[pos];
            hole = pos;
        }
        pos = next_slot(ix, pos);
    }
    ix->slots[hole] = IDINDEX_EMPTY;
    ix->count--;
    return 1;
}

int idindex_replace(idindex *ix, uint64_t hash, uint32_t old_id, uint32_t new_id)
{
    uint32_t pos = find_pos(ix, old_id, hash);
    if (pos == IDINDEX_EMPTY) return 0;
    ix->slots[pos] = new_id;
    return 1;
}

uint32_t idindex_first(const idindex *ix, uint64_t hash, uint32_t *pos)
{
    if (!ix->cap) {
        *pos = 0;
        return IDINDEX_EMPTY;
    }
    *pos = hash_slot(hash, ix->cap);
    return ix->slots[*pos];
}

uint32_t idindex_next(const idindex *ix, uint32_t *pos)
{
    *pos = next_slot(ix, *pos);
    return ix->slots[*pos];
}

int idindex_contains(const idindex *ix, uint32_t id, uint64_t hash)
{
    return find_pos(ix, id, hash) != IDINDEX_EMPTY;
}

size_t idindex_memory(const idindex *ix)
{
    return (size_t)ix->cap * sizeof *ix->slots;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int idindex_check(const idindex *ix, idindex_hash_fn hash_of, const void *ctx,
                  const char *what)
{
    if ((uint64_t)ix->count * 4 > (uint64_t)ix->cap * 3) {
        fprintf(stderr, "engine_check: %s: load %u/%u over 0.75\n", what, ix->count, ix->cap);
        return -1;
    }
    if (ix->cap && ix->count == ix->cap) {
        fprintf(stderr, "engine_check: %s: no empty slot\n", what);
        return -1;
    }
    uint32_t *ids = xmalloc((ix->count + 1) * sizeof *ids);
    uint32_t n = 0;
    int rc = 0;
    for (uint32_t i = 0; i < ix->cap && rc == 0; i++) {
        uint32_t id = ix->slots[i];
        if (id == IDINDEX_EMPTY) continue;
        if (n == ix->count) {
            fprintf(stderr, "engine_check: %s: more ids than count %u\n", what, ix->count);
            rc = -1;
            break;
        }
        ids[n++] = id;
        for (uint32_t pos = hash_slot(hash_of(ctx, id), ix->cap); pos != i; pos = next_slot(ix, pos)) {
            if (ix->slots[pos] == IDINDEX_EMPTY) {
                fprintf(stderr, "engine_check: %s: id %u at slot %u unreachable from its home\n",
                        what, id, i);
                rc = -1;
                break;
            }
        }
    }
    if (rc == 0 && n != ix->count) {
        fprintf(stderr, "engine_check: %s: %u ids but count %u\n", what, n, ix->count);
        rc = -1;
    }
    if (rc == 0) {
        qsort(ids, n, sizeof *ids, cmp_u32);
        for (uint32_t i = 1; i < n; i++)
            if (ids[i] == ids[i - 1]) {
                fprintf(stderr, "engine_check: %s: id %u stored twice\n", what, ids[i]);
                rc = -1;
                break;
            }
    }
    free(ids);
    return rc;
}
