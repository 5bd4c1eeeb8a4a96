/* namemap.c - name catalog with dense indexes (namemap.h). */
#include "namemap.h"
#include "fit.h"
#include "hash.h"
#include "heapsize.h"
#include "../base/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void namemap_init(namemap *m)
{
    m->names = NULL;
    m->cap = 0;
    m->n = 0;
    m->live = 0;
    idindex_init(&m->index);
}

void namemap_release(namemap *m)
{
    for (uint32_t i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
    idindex_release(&m->index);
    namemap_init(m);
}

static uint64_t name_hash(const void *ctx, uint32_t idx)
{
    const namemap *m = ctx;
    return hash_bytes(m->names[idx], strlen(m->names[idx]));
}

int namemap_find(const namemap *m, const char *name)
{
    idindex_probe pos;
    uint64_t h = hash_bytes(name, strlen(name));
    for (uint32_t i = idindex_first(&m->index, h, &pos); i != IDINDEX_EMPTY;
         i = idindex_next(&m->index, &pos))
        if (strcmp(m->names[i], name) == 0) return (int)i;
    return -1;
}

int namemap_add(namemap *m, const char *name)
{
    uint32_t idx = m->n;
    m->names = xgrow(m->names, sizeof *m->names, &m->cap, (size_t)idx + 1, 16);
    m->names[idx] = xstrdup(name);
    m->n++;
    m->live++;
    idindex_insert(&m->index, idx, name_hash(m, idx), name_hash, m);
    return (int)idx;
}

void namemap_remove(namemap *m, int idx)
{
    if (idx < 0 || (uint32_t)idx >= m->n || !m->names[idx]) return;
    idindex_remove(&m->index, (uint32_t)idx, name_hash(m, (uint32_t)idx), name_hash, m);
    free(m->names[idx]);
    m->names[idx] = NULL;
    m->live--;
}

const char *namemap_name(const namemap *m, int idx)
{
    if (idx < 0 || (uint32_t)idx >= m->n) return NULL;
    return m->names[idx];
}

void namemap_compact(namemap *m)
{
    m->names = fit_array(m->names, sizeof *m->names, &m->cap, m->n);
    idindex_compact(&m->index, name_hash, m);
}

size_t namemap_memory(const namemap *m)
{
    size_t bytes = m->cap * sizeof *m->names + idindex_memory(&m->index);
    for (uint32_t i = 0; i < m->n; i++)
        if (m->names[i]) bytes += heap_block_bytes(m->names[i], strlen(m->names[i]) + 1);
    return bytes;
}

int namemap_check(const namemap *m, const char *what)
{
    uint32_t live = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        if (!m->names[i]) continue;
        live++;
        if (namemap_find(m, m->names[i]) != (int)i) {
            fprintf(stderr, "engine_check: %s: name \"%s\" at %u not found (or duplicated)\n",
                    what, m->names[i], i);
            return -1;
        }
    }
    if (live != m->live || live != m->index.count) {
        fprintf(stderr, "engine_check: %s: %u names, counter %u, index %u\n",
                what, live, m->live, m->index.count);
        return -1;
    }
    return idindex_check(&m->index, name_hash, m, what);
}
