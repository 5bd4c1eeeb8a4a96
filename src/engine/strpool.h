/* strpool.h - the reference-counted string intern pool: bytes <-> uint32 code.
 *
 * Owns every distinct string value the engine holds (attribute values, list items,
 * event properties), one copy each, with a use count: a string shorter than
 * STRPOOL_INLINE bytes lives inside its entry (most user ids, names, phone numbers,
 * countries, plans: no heap block, no pointer to follow), a longer one in its own heap
 * block. Does not know who uses a code: columns take and drop references. A string
 * whose last reference goes is zeroed at once, its heap block freed (erasure must not
 * leave a person's email in memory), and its code is reused for the next new string;
 * the entry array is never reallocated in place but copied and the old copy zeroed,
 * for the same reason. Workload: interning on every write that carries a string (at
 * start, millions in a row: see strpool_reserve), lookups by bytes when filtering,
 * code -> bytes when rendering.
 * A pool must not be copied after init (idindex callbacks receive its address).
 */
#ifndef SEGD_ENGINE_STRPOOL_H
#define SEGD_ENGINE_STRPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "idindex.h"

#define STRPOOL_NONE UINT32_MAX   /* never a code */

#define STRPOOL_INLINE 16          /* strings shorter than this live in their entry */

typedef struct strpool_entry {
    uint32_t len;     /* length; for a free code, the next free code */
    uint32_t refs;    /* uses; 0 when the code is free */
    union {
        char *heap;                     /* len >= STRPOOL_INLINE: NUL-terminated copy */
        char bytes[STRPOOL_INLINE];     /* len < STRPOOL_INLINE: the bytes, then NUL */
    } s;                                /* all zero while the code is free */
} strpool_entry;

typedef struct strpool {
    strpool_entry *entries;   /* indexed by code */
    size_t cap;
    uint32_t n_codes;         /* codes ever handed out: entries[0, n_codes) are valid */
    uint32_t free_head;       /* first free code, STRPOOL_NONE if none */
    uint32_t live;            /* codes in use */
    size_t string_bytes;      /* heap bytes of the long strings' copies */
    idindex index;            /* live codes by hash of their bytes (tagged: lookups
                                 skip most other codes without reading their entry) */
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
 * free or unknown code. Valid until the code's last reference goes or the entry array
 * moves (short strings live in it): the next strpool_intern of a new string,
 * strpool_reserve or strpool_compact. */
const char *strpool_get(const strpool *p, uint32_t code, size_t *len);

/* References held on a code (0 for a free or unknown code). */
uint32_t strpool_refs(const strpool *p, uint32_t code);

/* Sizes the entry array and the index for `strings` codes, so that interning up to
 * that many never regrows them. Never shrinks; a hint (more strings still fit). Moves
 * the entry array when it grows it (see strpool_get). */
void strpool_reserve(strpool *p, uint32_t strings);

/* Shrinks the entry array to end at the highest live code (free codes past it are
 * forgotten; the free list is rebuilt lowest code first) and the index to load <= 0.75.
 * Live codes do not change; the entry array, and short strings with it, may move.
 * O(codes). */
void strpool_compact(strpool *p);

/* Allocated bytes: heap copies of long strings (allocator block sizes), entries (short
 * strings included), index. */
size_t strpool_memory(const strpool *p);

/* Checks the pool's own invariants (index <-> live codes, no duplicate bytes, free
 * list, counters). Reference counts against uses are checked by the owner of the
 * uses (engine_check). Returns 0, or -1 after printing the first violation. */
int strpool_check(const strpool *p);

#endif
