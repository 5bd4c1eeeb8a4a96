/* idindex.h - an open-addressing hash set of uint32 ids whose keys live elsewhere.
 *
 * Owns only its slot array. The keys (a person's public id or email, a pool string,
 * a catalog name) stay in the structure that owns them; callers pass the hash of the
 * key they look for and compare candidates themselves. Load <= 0.75, growth x1.5 (any
 * size: slots are placed by multiply-shift), linear probing with backward-shift
 * deletion (no tombstones). Two kinds of set:
 *   - plain: 4 bytes per slot, the id alone. Growth and deletion move ids by their home
 *     slot, so callers lend a hash function of an id (hash_of) to every call that may
 *     move ids. For sets that stay few or whose owners cannot spare memory.
 *   - tagged: 8 bytes per slot, the id and the high 32 bits of its key's hash (the bits
 *     that place it). Lookups skip the ids whose bits differ without touching their
 *     keys, and growth and deletion never call hash_of (pass NULL). For the string
 *     pool, where every write that carries a string looks a key up in a big table and
 *     each candidate's key is a cache miss.
 * Workload: lookups far more common than inserts; deletions rare (erasure, renaming a
 * value).
 */
#ifndef SEGD_ENGINE_IDINDEX_H
#define SEGD_ENGINE_IDINDEX_H

#include <stddef.h>
#include <stdint.h>

#define IDINDEX_EMPTY UINT32_MAX   /* never a stored id */

/* The hash of the key of `id`, as the owner computes it; ctx is the owner. */
typedef uint64_t (*idindex_hash_fn)(const void *ctx, uint32_t id);

typedef struct idindex {
    uint32_t *slots;    /* cap slots of `stride` words: the id (IDINDEX_EMPTY when the
                           slot is free), then in a tagged set the hash's high 32 bits */
    uint32_t cap;       /* number of slots; 0 before the first insert */
    uint32_t count;     /* occupied slots */
    uint32_t stride;    /* words per slot: 1 plain, 2 tagged */
} idindex;

/* A lookup in progress: where it stands in the probe run and what it looks for. */
typedef struct idindex_probe {
    uint32_t pos;       /* slot of the last candidate, then of the free slot ending the run */
    uint32_t tag;       /* high 32 bits of the hash looked up */
} idindex_probe;

/* Initialises an empty plain set (no allocation). */
void idindex_init(idindex *ix);

/* Initialises an empty tagged set (no allocation). */
void idindex_init_tagged(idindex *ix);

/* Frees the slots; the set is empty, of the same kind, and reusable afterwards. */
void idindex_release(idindex *ix);

/* Adds id, whose key hashes to `hash`. The caller makes sure it is not present when
 * the set must stay duplicate-free. May grow, calling hash_of(ctx, id) for each id of
 * a plain set. */
void idindex_insert(idindex *ix, uint32_t id, uint64_t hash, idindex_hash_fn hash_of,
                    const void *ctx);

/* Adds id after a lookup of its key's hash found no equal key: pr is that lookup's
 * probe, run to its end (idindex_first / idindex_next returned IDINDEX_EMPTY) with no
 * change to the set since. Saves probing the run again: the id goes into the free slot
 * that ended it, unless the set must grow first (then as idindex_insert). */
void idindex_insert_at(idindex *ix, const idindex_probe *pr, uint32_t id,
                       idindex_hash_fn hash_of, const void *ctx);

/* Removes id (key hash `hash`). Returns 1 if it was there, else 0. In a plain set,
 * calls hash_of for the ids it moves back into the hole. */
int idindex_remove(idindex *ix, uint32_t id, uint64_t hash, idindex_hash_fn hash_of,
                   const void *ctx);

/* Replaces old_id by new_id in place (both keys hash to `hash`, e.g. when an owner
 * moves an entry inside its own array). Returns 1 if old_id was found, else 0. */
int idindex_replace(idindex *ix, uint64_t hash, uint32_t old_id, uint32_t new_id);

/* Lookup: the first candidate for `hash` (IDINDEX_EMPTY when none); *pr is the
 * cursor for idindex_next. Candidates are the ids stored in the probe run (in a tagged
 * set, only those whose stored bits equal the hash's), so the caller compares keys:
 *     for (id = idindex_first(ix, h, &pr); id != IDINDEX_EMPTY; id = idindex_next(ix, &pr))
 */
uint32_t idindex_first(const idindex *ix, uint64_t hash, idindex_probe *pr);

/* The next candidate after pr, or IDINDEX_EMPTY at the end of the probe run. */
uint32_t idindex_next(const idindex *ix, idindex_probe *pr);

/* 1 if id is stored in the probe run of `hash`, else 0. */
int idindex_contains(const idindex *ix, uint32_t id, uint64_t hash);

/* Grows the slots so that `count` ids fit at load <= 0.75 without growing again (a
 * plain set calls hash_of for every id it holds). Never shrinks. Probes are invalid
 * afterwards. */
void idindex_reserve(idindex *ix, uint32_t count, idindex_hash_fn hash_of, const void *ctx);

/* Shrinks the slots to the fewest that keep the load <= 0.75 (none when empty),
 * calling hash_of for every id of a plain set. O(slots). Probes are invalid
 * afterwards. */
void idindex_compact(idindex *ix, idindex_hash_fn hash_of, const void *ctx);

/* Allocated bytes. */
size_t idindex_memory(const idindex *ix);

/* Checks count, load factor, that every id is reachable from its home slot without
 * crossing a free slot, that no id appears twice, and in a tagged set that each stored
 * tag is the high half of hash_of(ctx, id) (hash_of is required here for both kinds).
 * Returns 0, or -1 after printing the first violation (prefixed by `what`). */
int idindex_check(const idindex *ix, idindex_hash_fn hash_of, const void *ctx,
                  const char *what);

#endif
