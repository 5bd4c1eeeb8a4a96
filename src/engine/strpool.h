/* strpool.h - the reference-counted string intern pool: bytes <-> uint32 code.
 *
 * Owns every distinct string value the engine holds (attribute values, list items,
 * event properties), one heap copy each, with a use count. Does not know who uses a
 * code: columns take and drop references. A string whose last reference goes is
 * zeroed and freed at once (erasure must not leave a person's email in memory) and its
 * code is reused for the next new string. Workload: interning on every write that
 * carries a string, lookups by bytes when filtering, code -> bytes when rendering.
 * A pool must not be copied after init (idindex callbacks receive its address).
 */
#ifndef SEGD_ENGINE_STRPOOL_H
#define SEGD_ENGINE_STRPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "idindex.h"

#define STRPOOL_NONE UINT32_MAX   /* never a code */

typedef struct strpool_entry {
    char *bytes;      /* NUL-terminated copy; NULL when the code is free */
    uint32_t len;     /* length; for a free code, the next free code */
    uint32_t refs;    /* uses; 0 when free */
    uint64_t hash;    /* hash_bytes(bytes, len) */
} strpool_entry;

typedef struct strpool {
    strpool_entry *entries;   /* indexed by code */
    size_t cap;
    uint32_t n_codes;         /* codes ever handed out: entries[0, n_codes) are valid */
    uint32_t free_head;       /* first free code, STRPOOL_NONE if none */
    uint32_t live;            /* codes in use */
    size_t string_bytes;      /* heap bytes of the string copies */
    idindex index;            /* live codes by hash of their bytes */
} strpool;

/* Initialises an empty pool (no allocation). */
void strpool_init(strpool *p);

/* Zeroes and frees every string and the pool's tables, whatever their counts. */
void strpool_release(strpool *p);

/* Returns the code of the bytes (len bytes, need not be NUL-terminated), interning a
 * copy if new, and adds one reference. Aborts if 2^32 - 1 codes are live. */
uint32_t strpool_intern(strpool *p, const char *s, size_t len);

/* Adds one reference to a live code. */
void strpool_ref(strpool *p, uint32_t code);

/* Drops one reference; the last one zeroes and frees the string and frees the code. */
void strpool_unref(strpool *p, uint32_t code);

/* The code of the bytes, or STRPOOL_NONE if not interned. Adds no reference. */
uint32_t strpool_find(const strpool *p, const char *s, size_t len);

/* The bytes of a live code (NUL-terminated, *len set if len != NULL), or NULL for a
 * free or unknown code. Valid until the code's last reference goes. */
const char *strpool_get(const strpool *p, uint32_t code, size_t *len);

/* References held on a code (0 for a free or unknown code). */
uint32_t strpool_refs(const strpool *p, uint32_t code);

/* Shrinks the entry array to end at the highest live code (free codes past it are
 * forgotten; the free list is rebuilt lowest code first) and the index to load <= 0.75.
 * Live codes and strings do not move. O(codes). */
void strpool_compact(strpool *p);

/* Allocated bytes: string copies (allocator block sizes), entries, index. */
size_t strpool_memory(const strpool *p);

/* Checks the pool's own invariants (index <-> live codes, no duplicate bytes, free
 * list, counters). Reference counts against uses are checked by the owner of the
 * uses (engine_check). Returns 0, or -1 after printing the first violation. */
int strpool_check(const strpool *p);

#endif
