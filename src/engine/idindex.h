/* idindex.h - an open-addressing hash set of uint32 ids whose keys live elsewhere.
 *
 * Owns only its slot array. The keys (a person's public id or email, a pool string,
 * a catalog name) stay in the structure that owns them; callers pass the hash of the
 * key they look for and compare candidates themselves, and lend a hash function of an
 * id for the moves that growth and deletion make. 4 bytes per slot, load <= 0.75,
 * growth x1.5 (any size: slots are placed by multiply-shift), linear probing with
 * backward-shift deletion (no tombstones). Workload: lookups far more common than
 * inserts; deletions rare (erasure, renaming a value).
 */
#ifndef SEGD_ENGINE_IDINDEX_H
#define SEGD_ENGINE_IDINDEX_H

#include <stddef.h>
#include <stdint.h>

#define IDINDEX_EMPTY UINT32_MAX   /* never a stored id */

/* The hash of the key of `id`, as the owner computes it; ctx is the owner. */
typedef uint64_t (*idindex_hash_fn)(const void *ctx, uint32_t id);

typedef struct idindex {
    uint32_t *slots;    /* IDINDEX_EMPTY or an id */
    uint32_t cap;       /* number of slots; 0 before the first insert */
    uint32_t count;     /* occupied slots */
} idindex;

/* Initialises an empty set (no allocation). */
void idindex_init(idindex *ix);

/* Frees the slots; the set is empty and reusable afterwards. */
void idindex_release(idindex *ix);

/* Adds id, whose key hashes to `hash`. The caller makes sure it is not present when
 * the set must stay duplicate-free. May grow, calling hash_of(ctx, id) for each id. */
void idindex_insert(idindex *ix, uint32_t id, uint64_t hash, idindex_hash_fn hash_of,
                    const void *ctx);

/* Removes id (key hash `hash`). Returns 1 if it was there, else 0. Calls hash_of for
 * the ids it moves back into the hole. */
int idindex_remove(idindex *ix, uint32_t id, uint64_t hash, idindex_hash_fn hash_of,
                   const void *ctx);

/* Replaces old_id by new_id in place (both keys hash to `hash`, e.g. when an owner
 * moves an entry inside its own array). Returns 1 if old_id was found, else 0. */
int idindex_replace(idindex *ix, uint64_t hash, uint32_t old_id, uint32_t new_id);

/* Lookup: the first candidate for `hash` (IDINDEX_EMPTY when none); *pos is the
 * cursor for idindex_next. Candidates are every id stored in the probe run, so the
 * caller compares keys:
 *     for (id = idindex_first(ix, h, &pos); id != IDINDEX_EMPTY; id = idindex_next(ix, &pos))
 */
uint32_t idindex_first(const idindex *ix, uint64_t hash, uint32_t *pos);

/* The next candidate after *pos, or IDINDEX_EMPTY at the end of the probe run. */
uint32_t idindex_next(const idindex *ix, uint32_t *pos);

/* 1 if id is stored in the probe run of `hash`, else 0. */
int idindex_contains(const idindex *ix, uint32_t id, uint64_t hash);

/* Shrinks the slots to the fewest that keep the load <= 0.75 (none when empty),
 * calling hash_of for every id. O(slots). Positions from idindex_first are invalid
 * afterwards. */
void idindex_compact(idindex *ix, idindex_hash_fn hash_of, const void *ctx);

/* Allocated bytes. */
size_t idindex_memory(const idindex *ix);

/* Checks count, load factor, and that every id is reachable from its home slot
 * without crossing an empty slot, and that no id appears twice.
 * Returns 0, or -1 after printing the first violation (prefixed by `what`). */
int idindex_check(const idindex *ix, idindex_hash_fn hash_of, const void *ctx,
                  const char *what);

#endif
