/* evblock.c - the event block format and runs of evblock.h. Plain arrays and memcpy:
 * an append copies one event's fields, an encode four arrays and the texts. Fields
 * are read and written with memcpy, as a block from SQLite has no alignment promise.
 */
#include "evblock.h"

#include "../base/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the event block format is little-endian: add byte swaps for this host"
#endif

void evrun_init(evrun *r)
{
    memset(r, 0, sizeof *r);
}

void evrun_release(evrun *r)
{
    free(r->times);
    free(r->persons);
    free(r->lens);
    free(r->bytes);
    memset(r, 0, sizeof *r);
}

void evrun_reset(evrun *r, int type, uint32_t first)
{
    r->type = type;
    r->first = first;
    r->n = 0;
    r->bytes_len = 0;
    r->limit = (uint64_t)UINT32_MAX + 1;
    r->written = 0;
}

static void reserve_rows(evrun *r, size_t need)
{
    if (need <= r->cap)
        return;
    size_t cap = r->cap;
    r->times = xgrow(r->times, sizeof *r->times, &cap, need, 64);
    r->persons = xrealloc(r->persons, cap * sizeof *r->persons);
    r->lens = xrealloc(r->lens, cap * sizeof *r->lens);
    r->cap = cap;
}

void evrun_append(evrun *r, uint32_t person, int64_t time_ms, const char *props, size_t len)
{
    reserve_rows(r, (size_t)r->n + 1);
    r->times[r->n] = time_ms;
    r->persons[r->n] = person;
    r->lens[r->n] = props ? (uint32_t)len + 1 : 0;
    if (props && len) {
        r->bytes = xgrow(r->bytes, 1, &r->bytes_cap, r->bytes_len + len, 4096);
        memcpy(r->bytes + r->bytes_len, props, len);
        r->bytes_len += len;
    }
    r->n++;
}

static size_t row_bytes(uint32_t len)
{
    return len == 0 || len == EVBLOCK_HOLE ? 0 : (size_t)len - 1;
}

void evrun_hole(evrun *r, uint32_t i)
{
    size_t off = 0;
    for (uint32_t k = 0; k < i; k++)
        off += row_bytes(r->lens[k]);
    size_t len = row_bytes(r->lens[i]);
    if (len) {
        memmove(r->bytes + off, r->bytes + off + len, r->bytes_len - off - len);
        r->bytes_len -= len;
    }
    r->lens[i] = EVBLOCK_HOLE;
    r->persons[i] = 0;
    r->times[i] = 0;
}

int evrun_all_holes(const evrun *r)
{
    for (uint32_t i = 0; i < r->n; i++)
        if (r->lens[i] != EVBLOCK_HOLE)
            return 0;
    return 1;
}

int evrun_check(const evrun *r)
{
    size_t sum = 0;
    if (r->n > r->cap && r->n) {
        fprintf(stderr, "evrun_check: %u rows in arrays of %zu\n", r->n, r->cap);
        return -1;
    }
    for (uint32_t i = 0; i < r->n; i++) {
        sum += row_bytes(r->lens[i]);
        if (r->lens[i] == EVBLOCK_HOLE && (r->persons[i] != 0 || r->times[i] != 0)) {
            fprintf(stderr, "evrun_check: hole at row %u holds a person or time\n", r->first + i);
            return -1;
        }
    }
    if (sum != r->bytes_len) {
        fprintf(stderr, "evrun_check: rows have %zu bytes of properties, the run %zu\n", sum, r->bytes_len);
        return -1;
    }
    return 0;
}

size_t evblock_encode(const evrun *r, char **buf, size_t *cap)
{
    size_t n = r->n;
    size_t len = EVBLOCK_HEADER_BYTES + n * (8 + 4 + 4) + r->bytes_len;
    *buf = xgrow(*buf, 1, cap, len, 4096);
    unsigned char *p = (unsigned char *)*buf;
    uint32_t n32 = r->n;
    p[0] = EVBLOCK_VERSION;
    p[1] = p[2] = p[3] = 0;
    memcpy(p + 4, &n32, 4);
    p += EVBLOCK_HEADER_BYTES;
    memcpy(p, r->times, n * 8);
    p += n * 8;
    memcpy(p, r->persons, n * 4);
    p += n * 4;
    memcpy(p, r->lens, n * 4);
    p += n * 4;
    if (r->bytes_len)
        memcpy(p, r->bytes, r->bytes_len);
    return len;
}

int evblock_open(const void *data, size_t len, uint32_t n, evblock_iter *it)
{
    const unsigned char *p = data;
    uint32_t n_in;
    size_t fixed = EVBLOCK_HEADER_BYTES + (size_t)n * 16;

    if (!p || len < fixed || p[0] != EVBLOCK_VERSION)
        return -1;
    memcpy(&n_in, p + 4, 4);
    if (n_in != n)
        return -1;
    size_t sum = 0;
    const unsigned char *lens = p + EVBLOCK_HEADER_BYTES + (size_t)n * 12;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t l;
        memcpy(&l, lens + (size_t)i * 4, 4);
        sum += row_bytes(l);
    }
    if (fixed + sum != len)
        return -1;
    it->base = p;
    it->n = n;
    it->i = 0;
    it->bytes_off = fixed;
    return 0;
}

int evblock_next(evblock_iter *it, uint32_t *person, int64_t *time_ms, const char **props, size_t *len,
                 int *hole)
{
    if (it->i >= it->n)
        return 0;
    const unsigned char *p = it->base + EVBLOCK_HEADER_BYTES;
    uint32_t i = it->i++, l;
    memcpy(time_ms, p + (size_t)i * 8, 8);
    memcpy(person, p + (size_t)it->n * 8 + (size_t)i * 4, 4);
    memcpy(&l, p + (size_t)it->n * 12 + (size_t)i * 4, 4);
    *hole = l == EVBLOCK_HOLE;
    if (l == 0 || l == EVBLOCK_HOLE) {
        *props = NULL;
        *len = 0;
    } else {
        *props = (const char *)it->base + it->bytes_off;
        *len = (size_t)l - 1;
        it->bytes_off += *len;
    }
    return 1;
}

int evblock_decode(const void *data, size_t len, int type, uint32_t first, uint32_t n, evrun *r)
{
    evblock_iter it;
    if (evblock_open(data, len, n, &it) != 0)
        return -1;
    evrun_reset(r, type, first);
    uint32_t person;
    int64_t t;
    const char *props;
    size_t plen;
    int hole;
    while (evblock_next(&it, &person, &t, &props, &plen, &hole)) {
        evrun_append(r, person, t, props, plen);
        if (hole)
            r->lens[r->n - 1] = EVBLOCK_HOLE;
    }
    return 0;
}
