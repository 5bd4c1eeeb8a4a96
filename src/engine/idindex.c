/* idindex.c - open-addressing hash set of uint32 ids with keys kept by the caller
 * (idindex.h). Linear probing, backward-shift deletion, growth x1.5 at load 0.75. A
 * slot is `stride` words: the id, then in a tagged set its tag (the high 32 bits of
 * the key's hash, which are all that hash_slot reads: a tag alone places an id).
 */
#include "idindex.h"
#include "fit.h"
#include "hash.h"
#include "hugepage.h"
#include "../base/alloc.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SLOTS 16
#define ID_ORDER_MIN 4096   /* plain sets at least this big rehash in id order */

void idindex_init(idindex *ix)
{
    ix->slots = NULL;
    ix->cap = 0;
    ix->count = 0;
    ix->stride = 1;
}

void idindex_init_tagged(idindex *ix)
{
    idindex_init(ix);
    ix->stride = 2;
}

void idindex_release(idindex *ix)
{
    uint32_t stride = ix->stride;
    free(ix->slots);
    idindex_init(ix);
    ix->stride = stride;
}

static uint32_t tag_of(uint64_t hash)
{
    return (uint32_t)(hash >> 32);
}

static uint32_t home_of(uint32_t tag, uint32_t cap)
{
    return hash_slot((uint64_t)tag << 32, cap);
}

static uint32_t *slot_at(const idindex *ix, uint32_t pos)
{
    return ix->slots + (size_t)pos * ix->stride;
}

static uint32_t next_slot(const idindex *ix, uint32_t pos)
{
    return pos + 1 == ix->cap ? 0 : pos + 1;
}

/* The tag of the id in slot pos: stored (tagged set) or from its key (plain set). */
static uint32_t tag_at(const idindex *ix, uint32_t pos, idindex_hash_fn hash_of, const void *ctx)
{
    const uint32_t *s = slot_at(ix, pos);
    return ix->stride == 2 ? s[1] : tag_of(hash_of(ctx, s[0]));
}

static void put(idindex *ix, uint32_t pos, uint32_t id, uint32_t tag)
{
    uint32_t *s = slot_at(ix, pos);
    s[0] = id;
    if (ix->stride == 2) s[1] = tag;
}

/* Places id in the first free slot of its probe run; no growth. */
static void place(idindex *ix, uint32_t id, uint32_t tag)
{
    uint32_t pos = home_of(tag, ix->cap);
    while (*slot_at(ix, pos) != IDINDEX_EMPTY) pos = next_slot(ix, pos);
    put(ix, pos, id, tag);
}

/* Places the ids of a plain set's old slots in ascending order: their keys live in the
 * owner's arrays indexed by id (columns, pool entries), so hash_of then reads those
 * front to back instead of at random, which matters once a table outgrows the caches.
 * A bitmap of the ids sorts them when they are dense enough (people's ids are);
 * returns 0 without placing anything when they are not. */
static int place_in_id_order(idindex *ix, const idindex *old, idindex_hash_fn hash_of, const void *ctx)
{
    uint32_t max = 0;
    for (uint32_t i = 0; i < old->cap; i++)
        if (old->slots[i] != IDINDEX_EMPTY && old->slots[i] > max) max = old->slots[i];
    size_t words = (size_t)max / 64 + 1;
    if (words > (size_t)old->count * 2) return 0;   /* sparser than one id in 128 */
    uint64_t *bits = xcalloc(words, sizeof *bits);
    for (uint32_t i = 0; i < old->cap; i++)
        if (old->slots[i] != IDINDEX_EMPTY) bits[old->slots[i] / 64] |= (uint64_t)1 << (old->slots[i] % 64);
    for (size_t w = 0; w < words; w++)
        for (uint64_t b = bits[w]; b; b &= b - 1) {
            uint32_t id = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(b));
            place(ix, id, tag_of(hash_of(ctx, id)));
        }
    free(bits);
    return 1;
}

/* Moves every id into a fresh array of cap slots (cap > count; 0 frees the slots). */
static void rehash(idindex *ix, uint32_t cap, idindex_hash_fn hash_of, const void *ctx)
{
    idindex old = *ix;
    ix->slots = NULL;
    ix->cap = cap;
    if (cap) {
        size_t bytes = (size_t)cap * ix->stride * sizeof *ix->slots;
        ix->slots = xmalloc(bytes);
        hugepage_advise(ix->slots, bytes);
        memset(ix->slots, 0xff, bytes);
    }
    int ordered = old.stride == 1 && old.count >= ID_ORDER_MIN && place_in_id_order(ix, &old, hash_of, ctx);
    for (uint32_t i = 0; i < old.cap && !ordered; i++) {
        uint32_t id = *slot_at(&old, i);
        if (id != IDINDEX_EMPTY) place(ix, id, tag_at(&old, i, hash_of, ctx));
    }
    free(old.slots);
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

static int full(const idindex *ix)
{
    return (uint64_t)(ix->count + 1) * 4 > (uint64_t)ix->cap * 3;
}

void idindex_reserve(idindex *ix, uint32_t count, idindex_hash_fn hash_of, const void *ctx)
{
    if (!count) return;
    uint64_t cap = ((uint64_t)count * 4 + 2) / 3;   /* fit_slots, without its 32-bit limit */
    if (cap < MIN_SLOTS) cap = MIN_SLOTS;
    if (cap > UINT32_MAX - 1) cap = UINT32_MAX - 1;
    if (cap > ix->cap) rehash(ix, (uint32_t)cap, hash_of, ctx);
}

void idindex_compact(idindex *ix, idindex_hash_fn hash_of, const void *ctx)
{
    uint32_t cap = fit_slots(ix->count);
    if (cap < ix->cap) rehash(ix, cap, hash_of, ctx);
}

void idindex_insert(idindex *ix, uint32_t id, uint64_t hash, idindex_hash_fn hash_of,
                    const void *ctx)
{
    if (full(ix)) grow(ix, hash_of, ctx);
    place(ix, id, tag_of(hash));
    ix->count++;
}

void idindex_insert_at(idindex *ix, const idindex_probe *pr, uint32_t id,
                       idindex_hash_fn hash_of, const void *ctx)
{
    if (full(ix)) {
        grow(ix, hash_of, ctx);
        place(ix, id, pr->tag);
    } else {
        assert(pr->pos < ix->cap && *slot_at(ix, pr->pos) == IDINDEX_EMPTY);
        put(ix, pr->pos, id, pr->tag);
    }
    ix->count++;
}

/* Position of id in the probe run of hash, or IDINDEX_EMPTY. */
static uint32_t find_pos(const idindex *ix, uint32_t id, uint64_t hash)
{
    if (!ix->cap) return IDINDEX_EMPTY;
    uint32_t pos = home_of(tag_of(hash), ix->cap);
    for (;;) {
        uint32_t at = *slot_at(ix, pos);
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
     * cyclically between their home and their slot, so no lookup crosses a free slot. */
    uint32_t pos = next_slot(ix, hole);
    while (*slot_at(ix, pos) != IDINDEX_EMPTY) {
        uint32_t home = home_of(tag_at(ix, pos, hash_of, ctx), ix->cap);
        int stays = hole <= pos ? (hole < home && home <= pos) : (hole < home || home <= pos);
        if (!stays) {
            memcpy(slot_at(ix, hole), slot_at(ix, pos), ix->stride * sizeof *ix->slots);
            hole = pos;
        }
        pos = next_slot(ix, pos);
    }
    *slot_at(ix, hole) = IDINDEX_EMPTY;
    ix->count--;
    return 1;
}

int idindex_replace(idindex *ix, uint64_t hash, uint32_t old_id, uint32_t new_id)
{
    uint32_t pos = find_pos(ix, old_id, hash);
    if (pos == IDINDEX_EMPTY) return 0;
    *slot_at(ix, pos) = new_id;
    return 1;
}

/* The candidate at or after pr->pos (pr->pos left on it), or IDINDEX_EMPTY with pr->pos
 * on the free slot that ends the run. */
static uint32_t scan(const idindex *ix, idindex_probe *pr)
{
    for (uint32_t pos = pr->pos;; pos = next_slot(ix, pos)) {
        const uint32_t *s = slot_at(ix, pos);
        if (s[0] == IDINDEX_EMPTY || ix->stride == 1 || s[1] == pr->tag) {
            pr->pos = pos;
            return s[0];
        }
    }
}

uint32_t idindex_first(const idindex *ix, uint64_t hash, idindex_probe *pr)
{
    pr->tag = tag_of(hash);
    if (!ix->cap) {
        pr->pos = 0;
        return IDINDEX_EMPTY;
    }
    pr->pos = home_of(pr->tag, ix->cap);
    return scan(ix, pr);
}

uint32_t idindex_next(const idindex *ix, idindex_probe *pr)
{
    pr->pos = next_slot(ix, pr->pos);
    return scan(ix, pr);
}

int idindex_contains(const idindex *ix, uint32_t id, uint64_t hash)
{
    return find_pos(ix, id, hash) != IDINDEX_EMPTY;
}

size_t idindex_memory(const idindex *ix)
{
    return (size_t)ix->cap * ix->stride * sizeof *ix->slots;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int idindex_check(const idindex *ix, idindex_hash_fn hash_of, const void *ctx,
                  const char *what)
{
    if (ix->stride != 1 && ix->stride != 2) {
        fprintf(stderr, "engine_check: %s: stride %u\n", what, ix->stride);
        return -1;
    }
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
        uint32_t id = *slot_at(ix, i);
        if (id == IDINDEX_EMPTY) continue;
        if (n == ix->count) {
            fprintf(stderr, "engine_check: %s: more ids than count %u\n", what, ix->count);
            rc = -1;
            break;
        }
        ids[n++] = id;
        uint32_t tag = tag_of(hash_of(ctx, id));
        if (ix->stride == 2 && slot_at(ix, i)[1] != tag) {
            fprintf(stderr, "engine_check: %s: id %u at slot %u has tag %08x, its key %08x\n", what, id, i,
                    slot_at(ix, i)[1], tag);
            rc = -1;
            break;
        }
        for (uint32_t pos = home_of(tag, ix->cap); pos != i; pos = next_slot(ix, pos)) {
            if (*slot_at(ix, pos) == IDINDEX_EMPTY) {
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
