/* strpool.c - reference-counted string intern pool (strpool.h).
 *
 * Each string is its own heap block, so freeing one returns its memory at once and
 * we can zero it first; the per-code entry keeps the hash so growth never rehashes
 * bytes. Free codes form a list threaded through entry.len.
 */
#include "strpool.h"
#include "fit.h"
#include "hash.h"
#include "heapsize.h"
#include "../base/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strpool_init(strpool *p)
{
    p->entries = NULL;
    p->cap = 0;
    p->n_codes = 0;
    p->free_head = STRPOOL_NONE;
    p->live = 0;
    p->string_bytes = 0;
    idindex_init(&p->index);
}

void strpool_release(strpool *p)
{
    for (uint32_t c = 0; c < p->n_codes; c++) {
        strpool_entry *en = &p->entries[c];
        if (!en->bytes) continue;
        explicit_bzero(en->bytes, en->len);
        free(en->bytes);
    }
    free(p->entries);
    idindex_release(&p->index);
    strpool_init(p);
}

static uint64_t code_hash(const void *ctx, uint32_t code)
{
    const strpool *p = ctx;
    return p->entries[code].hash;
}

static uint32_t find_hashed(const strpool *p, const char *s, size_t len, uint64_t h)
{
    uint32_t pos;
    for (uint32_t c = idindex_first(&p->index, h, &pos); c != IDINDEX_EMPTY;
         c = idindex_next(&p->index, &pos)) {
        const strpool_entry *en = &p->entries[c];
        if (en->hash == h && en->len == len && memcmp(en->bytes, s, len) == 0) return c;
    }
    return STRPOOL_NONE;
}

uint32_t strpool_find(const strpool *p, const char *s, size_t len)
{
    if (len > UINT32_MAX) return STRPOOL_NONE;
    return find_hashed(p, s, len, hash_bytes(s, len));
}

uint32_t strpool_intern(strpool *p, const char *s, size_t len)
{
    if (len >= UINT32_MAX) {
        fprintf(stderr, "segd: string of %zu bytes is too long for the pool\n", len);
        abort();
    }
    uint64_t h = hash_bytes(s, len);
    uint32_t code = find_hashed(p, s, len, h);
    if (code != STRPOOL_NONE) {
        p->entries[code].refs++;
        return code;
    }
    if (p->free_head != STRPOOL_NONE) {
        code = p->free_head;
        p->free_head = p->entries[code].len;
    } else {
        if (p->n_codes == STRPOOL_NONE) {
            fprintf(stderr, "segd: string pool full (2^32 - 1 codes)\n");
            abort();
        }
        code = p->n_codes++;
        p->entries = xgrow(p->entries, sizeof *p->entries, &p->cap, p->n_codes, 64);
    }
    strpool_entry *en = &p->entries[code];
    en->bytes = xstrndup(s, len);
    en->len = (uint32_t)len;
    en->refs = 1;
    en->hash = h;
    p->string_bytes += heap_block_bytes(en->bytes, len + 1);
    p->live++;
    idindex_insert(&p->index, code, h, code_hash, p);
    return code;
}

void strpool_ref(strpool *p, uint32_t code)
{
    p->entries[code].refs++;
}

void strpool_unref(strpool *p, uint32_t code)
{
    strpool_entry *en = &p->entries[code];
    if (--en->refs) return;
    idindex_remove(&p->index, code, en->hash, code_hash, p);
    p->string_bytes -= heap_block_bytes(en->bytes, en->len + 1);
    explicit_bzero(en->bytes, en->len);
    free(en->bytes);
    en->bytes = NULL;
    en->hash = 0;
    en->len = p->free_head;
    p->free_head = code;
    p->live--;
}

const char *strpool_get(const strpool *p, uint32_t code, size_t *len)
{
    if (code >= p->n_codes || !p->entries[code].bytes) return NULL;
    if (len) *len = p->entries[code].len;
    return p->entries[code].bytes;
}

uint32_t strpool_refs(const strpool *p, uint32_t code)
{
    if (code >= p->n_codes) return 0;
    return p->entries[code].refs;
}

void strpool_compact(strpool *p)
{
    uint32_t n = p->n_codes;
    while (n && !p->entries[n - 1].bytes) n--;
    if (n < p->n_codes) {
        p->n_codes = n;
        p->free_head = STRPOOL_NONE;
        for (uint32_t c = n; c-- > 0;)
            if (!p->entries[c].bytes) {
                p->entries[c].len = p->free_head;
                p->free_head = c;
            }
    }
    p->entries = fit_array(p->entries, sizeof *p->entries, &p->cap, p->n_codes);
    idindex_compact(&p->index, code_hash, p);
}

size_t strpool_memory(const strpool *p)
{
    return p->string_bytes + p->cap * sizeof *p->entries + idindex_memory(&p->index);
}

int strpool_check(const strpool *p)
{
    uint32_t live = 0;
    size_t bytes = 0;
    for (uint32_t c = 0; c < p->n_codes; c++) {
        const strpool_entry *en = &p->entries[c];
        if (!en->bytes) {
            if (en->refs) {
                fprintf(stderr, "engine_check: strpool: free code %u has %u refs\n", c, en->refs);
                return -1;
            }
            continue;
        }
        live++;
        bytes += heap_block_bytes(en->bytes, en->len + 1);
        if (!en->refs) {
            fprintf(stderr, "engine_check: strpool: live code %u has no refs\n", c);
            return -1;
        }
        if (en->bytes[en->len] != 0 || en->hash != hash_bytes(en->bytes, en->len)) {
            fprintf(stderr, "engine_check: strpool: code %u: bad terminator or hash\n", c);
            return -1;
        }
        if (find_hashed(p, en->bytes, en->len, en->hash) != c) {
            fprintf(stderr, "engine_check: strpool: code %u not found by its bytes (or duplicated)\n", c);
            return -1;
        }
    }
    if (live != p->live || live != p->index.count) {
        fprintf(stderr, "engine_check: strpool: %u live codes, counter %u, index %u\n",
                live, p->live, p->index.count);
        return -1;
    }
    if (bytes != p->string_bytes) {
        fprintf(stderr, "engine_check: strpool: string bytes %zu, counter %zu\n", bytes, p->string_bytes);
        return -1;
    }
    uint32_t n_free = 0;
    for (uint32_t c = p->free_head; c != STRPOOL_NONE; c = p->entries[c].len) {
        if (c >= p->n_codes || p->entries[c].bytes || ++n_free > p->n_codes - live) {
            fprintf(stderr, "engine_check: strpool: free list broken at code %u\n", c);
            return -1;
        }
    }
    if (n_free != p->n_codes - live) {
        fprintf(stderr, "engine_check: strpool: %u free codes listed, %u expected\n",
                n_free, p->n_codes - live);
        return -1;
    }
    return idindex_check(&p->index, code_hash, p, "strpool index");
}
