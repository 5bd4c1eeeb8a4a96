/* hugepage.h - asks the kernel to back a big table with huge pages.
 *
 * Owns no data. The engine's big hash tables (identity indexes, the string pool's
 * index and entries) are probed at random: with 4 KiB pages nearly every probe of a
 * table of tens of MiB also misses the TLB, and in a virtual machine a page walk costs
 * as much as the cache miss itself. Measured loading 1M people (10 attributes, 4M
 * strings) in a VM: 6-11% faster with engine_reserve, 30% without (where growth
 * rehashes whole tables). Linux only (a no-op elsewhere, and wherever transparent huge
 * pages are off); workload: one call per allocation of a big table, before its first
 * write.
 */
#ifndef SEGD_ENGINE_HUGEPAGE_H
#define SEGD_ENGINE_HUGEPAGE_H

#include <stddef.h>
#include <stdint.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#define HUGEPAGE_BYTES ((size_t)2 << 20)

/* Advises huge pages for the whole 2 MiB pages inside [p, p + bytes) of a block of at
 * least 4 MiB (smaller tables fit the TLB well enough). Call it before the first write
 * so that the pages are faulted in huge. Failure is harmless and ignored. */
static inline void hugepage_advise(void *p, size_t bytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (!p || bytes < 2 * HUGEPAGE_BYTES) return;
    uintptr_t start = ((uintptr_t)p + HUGEPAGE_BYTES - 1) & ~(uintptr_t)(HUGEPAGE_BYTES - 1);
    uintptr_t end = ((uintptr_t)p + bytes) & ~(uintptr_t)(HUGEPAGE_BYTES - 1);
    if (end > start) (void)madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

#endif
