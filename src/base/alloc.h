/* alloc.h - allocation that never returns NULL.
 *
 * segd's in-memory engine is its database: running out of memory half-way through
 * a mutation would leave it inconsistent, so allocation failure aborts with a
 * message (the store, which is the truth, is untouched and rebuilds it on restart).
 */
#ifndef SEGD_BASE_ALLOC_H
#define SEGD_BASE_ALLOC_H

#include <stddef.h>

/* malloc/calloc/realloc/strdup that print "segd: out of memory" and abort on failure. */
void *xmalloc(size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);

/* Grows *cap geometrically (x1.5, at least min_cap) until it holds `need` items;
 * returns the reallocated array (the old pointer is invalid afterwards). */
void *xgrow(void *ptr, size_t item_size, size_t *cap, size_t need, size_t min_cap);

#endif
