/* strpool.c - reference-counted string intern pool (strpool.h).
 *
 * A short string sits in its entry, a long one in its own heap block, so freeing one
 * returns its memory at once and we can zero it first. The index is tagged: it keeps
 * 32 bits of each code's hash, so the entries need no hash of their own (a removal
 * hashes the bytes again: they are read to be zeroed anyway) and a lookup reads the
 * entry of a code only when those bits match. Free codes form a list threaded through
 * entry.len.
 */
#include "strpool.h"
#include "fit.h"
#include "hash.h"
#include "heapsize.h"
#include "hugepage.h"
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
    idindex_init_tagged(&p->index);
}

static int is_inline(uint32_t len)
{
    return len < STRPOOL_INLINE;
}

static const char *entry_bytes(const strpool_entry *en)
{
    return is_inline(en->len) ? en->s.bytes : en->s.heap;
}

/* Zeroes the first n entries of an entry array (short strings live in them; the rest
 * were never written, or were zeroed when their strings went) and frees it. */
static void entries_wipe(strpool_entry *entries, size_t n)
{
    if (!entries) return;
    explicit_bzero(entries, n * sizeof *entries);
    free(entries);
}

/* Moves entries[0, n_codes) into a fresh array of cap entries (cap >= n_codes; 0 frees
 * it) and returns the old array, which the caller wipes once it no longer reads from
 * it: realloc would leave a copy of the short strings in freed memory. */
static strpool_entry *entries_move(strpool *p, size_t cap)
{
    strpool_entry *old = p->entries;
    p->entries = cap ? xmalloc(cap * sizeof *p->entries) : NULL;
    hugepage_advise(p->entries, cap * sizeof *p->entries);
    if (p->n_codes) memcpy(p->entries, old, (size_t)p->n_codes * sizeof *old);
    p->cap = cap;
    return old;
}

void strpool_release(strpool *p)
{
    for (uint32_t c = 0; c < p->n_codes; c++) {
        strpool_entry *en = &p->entries[c];
        if (!en->refs || is_inline(en->len)) continue;
        explicit_bzero(en->s.heap, en->len);
        free(en->s.heap);
    }
    entries_wipe(p->entries, p->n_codes);
    idindex_release(&p->index);
    strpool_init(p);
}

static uint64_t code_hash(const void *ctx, uint32_t code)
{
    const strpool *p = ctx;
    const strpool_entry *en = &p->entries[code];
    return hash_bytes(entry_bytes(en), en->len);
}

/* The code of the bytes (hash h), or STRPOOL_NONE with *pr at the end of the probe
 * run, where the bytes would go. */
static uint32_t find_hashed(const strpool *p, const char *s, size_t len, uint64_t h, idindex_probe *pr)
{
    for (uint32_t c = idindex_first(&p->index, h, pr); c != IDINDEX_EMPTY; c = idindex_next(&p->index, pr)) {
        const strpool_entry *en = &p->entries[c];
        if (en->len == len && memcmp(entry_bytes(en), s, len) == 0) return c;
    }
    return STRPOOL_NONE;
}

uint32_t strpool_find(const strpool *p, const char *s, size_t len)
{
    idindex_probe pr;
    if (len > UINT32_MAX) return STRPOOL_NONE;
    return find_hashed(p, s, len, hash_bytes(s, len), &pr);
}

uint32_t strpool_intern(strpool *p, const char *s, size_t len)
{
    if (len >= UINT32_MAX) {
        fprintf(stderr, "segd: string of %zu bytes is too long for the pool\n", len);
        abort();
    }
    uint64_t h = hash_bytes(s, len);
    idindex_probe pr;
    uint32_t code = find_hashed(p, s, len, h, &pr);
    if (code != STRPOOL_NONE) {
        p->entries[code].refs++;
        return code;
    }
    strpool_entry *old = NULL;   /* s may point into it: wiped after the copy */
    size_t old_n = p->n_codes;
    if (p->free_head != STRPOOL_NONE) {
        code = p->free_head;
        p->free_head = p->entries[code].len;
    } else {
        if (p->n_codes == STRPOOL_NONE) {
            fprintf(stderr, "segd: string pool full (2^32 - 1 codes)\n");
            abort();
        }
        if (p->n_codes == p->cap) {
            size_t cap = p->cap < 64 ? 64 : p->cap + p->cap / 2;
            old = entries_move(p, cap);
        }
        code = p->n_codes++;
    }
    strpool_entry *en = &p->entries[code];
    memset(&en->s, 0, sizeof en->s);
    if (is_inline((uint32_t)len)) {
        if (len) memcpy(en->s.bytes, s, len);
    } else {
        en->s.heap = xstrndup(s, len);
        p->string_bytes += heap_block_bytes(en->s.heap, len + 1);
    }
    en->len = (uint32_t)len;
    en->refs = 1;
    p->live++;
    entries_wipe(old, old_n);
    /* The probe ended on the free slot for these bytes: no second walk of the run. */
    idindex_insert_at(&p->index, &pr, code, code_hash, p);
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
    idindex_remove(&p->index, code, code_hash(p, code), code_hash, p);
    if (!is_inline(en->len)) {
        p->string_bytes -= heap_block_bytes(en->s.heap, en->len + 1);
        explicit_bzero(en->s.heap, en->len);
        free(en->s.heap);
    }
    explicit_bzero(&en->s, sizeof en->s);
    en->len = p->free_head;
    p->free_head = code;
    p->live--;
}

const char *strpool_get(const strpool *p, uint32_t code, size_t *len)
{
    if (code >= p->n_codes || !p->entries[code].refs) return NULL;
    if (len) *len = p->entries[code].len;
    return entry_bytes(&p->entries[code]);
}

uint32_t strpool_refs(const strpool *p, uint32_t code)
{
    if (code >= p->n_codes) return 0;
    return p->entries[code].refs;
}

void strpool_reserve(strpool *p, uint32_t strings)
{
    if (strings > p->cap) entries_wipe(entries_move(p, strings), p->n_codes);
    idindex_reserve(&p->index, strings, code_hash, p);
}

void strpool_compact(strpool *p)
{
    uint32_t n = p->n_codes;
    while (n && !p->entries[n - 1].refs) n--;
    if (n < p->n_codes) {
        p->n_codes = n;
        p->free_head = STRPOOL_NONE;
        for (uint32_t c = n; c-- > 0;)
            if (!p->entries[c].refs) {
                p->entries[c].len = p->free_head;
                p->free_head = c;
            }
    }
    if (p->n_codes < p->cap) entries_wipe(entries_move(p, p->n_codes), p->n_codes);
    idindex_compact(&p->index, code_hash, p);
}

size_t strpool_memory(const strpool *p)
{
    return p->string_bytes + p->cap * sizeof *p->entries + idindex_memory(&p->index);
}

/* 1 if the n bytes at p are all zero. */
static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

int strpool_check(const strpool *p)
{
    uint32_t live = 0;
    size_t bytes = 0;
    if (p->n_codes > p->cap) {
        fprintf(stderr, "engine_check: strpool: %u codes over capacity %zu\n", p->n_codes, p->cap);
        return -1;
    }
    for (uint32_t c = 0; c < p->n_codes; c++) {
        const strpool_entry *en = &p->entries[c];
        if (!en->refs) {
            if (!all_zero(&en->s, sizeof en->s)) {
                fprintf(stderr, "engine_check: strpool: free code %u keeps bytes\n", c);
                return -1;
            }
            continue;
        }
        live++;
        if (!is_inline(en->len)) {
            if (!en->s.heap) {
                fprintf(stderr, "engine_check: strpool: code %u of %u bytes has no copy\n", c, en->len);
                return -1;
            }
            bytes += heap_block_bytes(en->s.heap, en->len + 1);
        } else if (!all_zero(en->s.bytes + en->len, STRPOOL_INLINE - en->len)) {
            fprintf(stderr, "engine_check: strpool: code %u: bytes after its end\n", c);
            return -1;
        }
        idindex_probe pr;
        if (entry_bytes(en)[en->len] != 0) {
            fprintf(stderr, "engine_check: strpool: code %u: no terminator\n", c);
            return -1;
        }
        if (find_hashed(p, entry_bytes(en), en->len, code_hash(p, c), &pr) != c) {
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
        if (c >= p->n_codes || p->entries[c].refs || ++n_free > p->n_codes - live) {
            fprintf(stderr, "engine_check: strpool: free list broken at code %u\n", c);
            return -1;
        }
    }
    if (n_free != p->n_codes - live) {
        fprintf(stderr, "engine_check: strpool: %u free codes listed, %u expected\n",
                n_free, p->n_codes - live);
        return -1;
    }
    if (p->index.stride != 2) {
        fprintf(stderr, "engine_check: strpool: index not tagged\n");
        return -1;
    }
    return idindex_check(&p->index, code_hash, p, "strpool index");
}
