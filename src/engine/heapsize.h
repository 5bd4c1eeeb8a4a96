/* heapsize.h - what one heap block really costs, for honest memory accounting.
 *
 * Owns no data. Used for small per-value allocations (pool strings, list cells), where
 * the allocator's rounding and header matter; big arrays are counted by capacity.
 */
#ifndef SEGD_ENGINE_HEAPSIZE_H
#define SEGD_ENGINE_HEAPSIZE_H

#include <stddef.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Bytes the allocator holds for block p of `requested` bytes: its usable size plus its
 * size header. 0 for NULL. The same block always gives the same answer, so running
 * totals can add it at allocation and subtract it before free. */
static inline size_t heap_block_bytes(void *p, size_t requested)
{
    if (!p) return 0;
#ifdef __GLIBC__
    (void)requested;
    return malloc_usable_size(p) + sizeof(size_t);
#else
    return requested + sizeof(size_t);
#endif
}

#endif
