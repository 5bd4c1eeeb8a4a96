/* fit.h - sizes for compaction: an array trimmed to its items, the fewest slots of a
 * hash table at load <= 0.75.
 *
 * Owns no data. Growth (xgrow, the tables' x1.5 growth) leaves up to a third of an
 * array spare; engine_compact trims it with these after a rebuild or a bulk import.
 * Workload: one call per array or table, rarely.
 */
#ifndef SEGD_ENGINE_FIT_H
#define SEGD_ENGINE_FIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../base/alloc.h"

/* Shrinks an array of *cap items of item_size bytes to n items (n <= *cap; freed when
 * n is 0) and sets *cap to n. Returns the array, which may have moved. */
static inline void *fit_array(void *ptr, size_t item_size, size_t *cap, size_t n)
{
    if (n >= *cap) return ptr;
    *cap = n;
    if (n == 0) {
        free(ptr);
        return NULL;
    }
    return xrealloc(ptr, n * item_size);
}

/* The fewest slots that hold count entries at load <= 0.75 (so at least one slot stays
 * empty and probes end): ceil(4 * count / 3); 0 for an empty table. */
static inline uint32_t fit_slots(uint32_t count)
{
    return (uint32_t)(((uint64_t)count * 4 + 2) / 3);
}

#endif
