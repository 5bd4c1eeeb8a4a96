/* namemap.h - a catalog of names with dense, never reused indexes.
 *
 * Owns the name strings and a hash index from name to index. Knows nothing of what
 * the names denote: the engine keeps attribute types and columns, event types and
 * property columns in arrays parallel to these indexes. A removed name leaves its
 * index empty (NULL name) forever, so stale indexes never point at another name.
 * Workload: a lookup per attribute or property of every incoming message; declarations
 * and removals rare (at most a few thousand names).
 */
#ifndef SEGD_ENGINE_NAMEMAP_H
#define SEGD_ENGINE_NAMEMAP_H

#include <stddef.h>
#include <stdint.h>

#include "idindex.h"

typedef struct namemap {
    char **names;       /* index -> owned name, NULL once removed */
    size_t cap;
    uint32_t n;         /* indexes handed out */
    uint32_t live;      /* names not removed */
    idindex index;      /* live indexes by hash of their name */
} namemap;

/* Initialises an empty catalog (no allocation). */
void namemap_init(namemap *m);

/* Frees every name and the index. */
void namemap_release(namemap *m);

/* Index of a live name, or -1. */
int namemap_find(const namemap *m, const char *name);

/* Adds a name that namemap_find does not know and returns its new index (= n before). */
int namemap_add(namemap *m, const char *name);

/* Removes a live index (frees its name); the index stays empty. */
void namemap_remove(namemap *m, int idx);

/* The name at an index, or NULL for a removed or out-of-range index. */
const char *namemap_name(const namemap *m, int idx);

/* Shrinks the name array to the indexes handed out and the index to load <= 0.75.
 * O(names). */
void namemap_compact(namemap *m);

/* Allocated bytes (names, array, index). */
size_t namemap_memory(const namemap *m);

/* Checks index <-> names and the counters. Returns 0, or -1 after printing the first
 * violation (prefixed by `what`). */
int namemap_check(const namemap *m, const char *what);

#endif
