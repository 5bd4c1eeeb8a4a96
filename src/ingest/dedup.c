/* dedup.c - open-addressing set of 96-bit (source, messageId) hashes (see dedup.h).
 * 16 bytes an entry: 30 days of tens of millions of ids fit in a few hundred MB, and
 * a false "seen before" stays about 2^-50 likely at 20M ids; deletion uses tombstones,
 * pruning rebuilds the table. */
#include "dedup.h"
#include "../base/alloc.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    uint64_t h1;          /* h1 == 0 && h2 == 0: empty; h1 == 0 && h2 == 1: tombstone */
    uint32_t h2;          /* 96 bits of hash in all */
    uint32_t minute;      /* minutes since the epoch it was seen (good until year 10136) */
} entry;

struct dedup_set {
    entry *slots;
    size_t cap;           /* power of two */
    size_t used;          /* live + tombstones */
    size_t live;
};

static void hash_pair(const char *source, const char *id, uint64_t *h1, uint32_t *h2_out)
{
    uint64_t a = 1469598103934665603ULL, b = 0x9E3779B97F4A7C15ULL;
    for (int part = 0; part < 2; part++) {
        const unsigned char *p = (const unsigned char *)(part ? id : source);
        for (; *p; p++) {
            a = (a ^ *p) * 1099511628211ULL;
            b = (b ^ *p) * 0xff51afd7ed558ccdULL;
            b ^= b >> 29;
        }
        a = (a ^ 0xff) * 1099511628211ULL;   /* separator: ("ab","c") != ("a","bc") */
        b = (b ^ 0xff) * 0xc4ceb9fe1a85ec53ULL;
    }
    b ^= b >> 33;
    if (a == 0) a = 1;    /* 0 marks empty and tombstone slots */
    *h1 = a;
    *h2_out = (uint32_t)(b ^ (b >> 32));
}

static uint32_t minute_of(int64_t ms)
{
    return ms <= 0 ? 0 : (uint32_t)(ms / 60000);
}

dedup_set *dedup_new(void)
{
    dedup_set *d = xcalloc(1, sizeof *d);
    d->cap = 1024;
    d->slots = xcalloc(d->cap, sizeof(entry));
    return d;
}

void dedup_free(dedup_set *d)
{
    if (!d) return;
    free(d->slots);
    free(d);
}

/* The home slot mixes both hashes: h2 alone has only 32 bits for tables of any size. */
static size_t home(uint64_t h1, uint32_t h2, size_t mask)
{
    return (size_t)((h1 >> 17) ^ ((uint64_t)h2 << 7) ^ h2) & mask;
}

static entry *find(const dedup_set *d, uint64_t h1, uint32_t h2)
{
    size_t mask = d->cap - 1;
    for (size_t i = home(h1, h2, mask);; i = (i + 1) & mask) {
        entry *e = &d->slots[i];
        if (e->h1 == 0 && e->h2 == 0) return NULL;
        if (e->h1 == h1 && e->h2 == h2) return e;
    }
}

static void insert_raw(dedup_set *d, uint64_t h1, uint32_t h2, uint32_t minute)
{
    size_t mask = d->cap - 1;
    for (size_t i = home(h1, h2, mask);; i = (i + 1) & mask) {
        entry *e = &d->slots[i];
        if (e->h1 == 0) {
            if (e->h2 == 0) d->used++;
            e->h1 = h1;
            e->h2 = h2;
            e->minute = minute;
            d->live++;
            return;
        }
    }
}

/* Rebuilds into a table sized for the live entries, dropping tombstones and entries
 * older than min_minute. */
static void rehash(dedup_set *d, int64_t min_minute)
{
    entry *old = d->slots;
    size_t old_cap = d->cap;
    size_t cap = 1024;
    while (cap < d->live * 2) cap *= 2;
    d->slots = xcalloc(cap, sizeof(entry));
    d->cap = cap;
    d->used = d->live = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].h1 != 0 && (int64_t)old[i].minute >= min_minute)
            insert_raw(d, old[i].h1, old[i].h2, old[i].minute);
    free(old);
}

int dedup_contains(const dedup_set *d, const char *source, const char *id, int64_t since_ms)
{
    uint64_t h1;
    uint32_t h2;
    hash_pair(source, id, &h1, &h2);
    const entry *e = find(d, h1, h2);
    return e && (int64_t)e->minute * 60000 + 59999 >= since_ms;
}

static int insert_hashed(dedup_set *d, uint64_t h1, uint32_t h2, int64_t at_ms, int64_t since_ms)
{
    entry *e = find(d, h1, h2);
    if (e) {
        if ((int64_t)e->minute * 60000 + 59999 >= since_ms) return 1;
        e->minute = minute_of(at_ms);       /* seen before the window: a new message */
        return 0;
    }
    if ((d->used + 1) * 4 > d->cap * 3) rehash(d, INT64_MIN);
    insert_raw(d, h1, h2, minute_of(at_ms));
    return 0;
}

int dedup_insert(dedup_set *d, const char *source, const char *id, int64_t at_ms, int64_t since_ms)
{
    uint64_t h1;
    uint32_t h2;
    hash_pair(source, id, &h1, &h2);
    return insert_hashed(d, h1, h2, at_ms, since_ms);
}

int dedup_insert_key(dedup_set *d, const dedup_key *k, int64_t at_ms, int64_t since_ms)
{
    return insert_hashed(d, k->h1, k->h2, at_ms, since_ms);
}

void dedup_add(dedup_set *d, const char *source, const char *id, int64_t at_ms)
{
    uint64_t h1;
    uint32_t h2;
    hash_pair(source, id, &h1, &h2);
    entry *e = find(d, h1, h2);
    if (e) {
        e->minute = minute_of(at_ms);
        return;
    }
    if ((d->used + 1) * 4 > d->cap * 3) rehash(d, INT64_MIN);
    insert_raw(d, h1, h2, minute_of(at_ms));
}

void dedup_key_of(const char *source, const char *id, int64_t at_ms, dedup_key *out)
{
    hash_pair(source, id, &out->h1, &out->h2);
    out->minute = minute_of(at_ms);
}

void dedup_reserve(dedup_set *d, size_t n)
{
    size_t cap = d->cap;
    while ((d->used + n) * 4 > cap * 3) cap *= 2;
    if (cap != d->cap) {                  /* one rehash to the final size */
        entry *old = d->slots;
        size_t old_cap = d->cap;
        d->slots = xcalloc(cap, sizeof(entry));
        d->cap = cap;
        d->used = d->live = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].h1 != 0) insert_raw(d, old[i].h1, old[i].h2, old[i].minute);
        free(old);
    }
}

void dedup_add_keys(dedup_set *d, const dedup_key *keys, size_t n)
{
    dedup_reserve(d, n);
    for (size_t i = 0; i < n; i++) {
        entry *e = find(d, keys[i].h1, keys[i].h2);
        if (e) {
            if (keys[i].minute > e->minute) e->minute = keys[i].minute;
        } else {
            insert_raw(d, keys[i].h1, keys[i].h2, keys[i].minute);
        }
    }
}

void dedup_remove(dedup_set *d, const char *source, const char *id)
{
    uint64_t h1;
    uint32_t h2;
    hash_pair(source, id, &h1, &h2);
    entry *e = find(d, h1, h2);
    if (!e) return;
    e->h1 = 0;
    e->h2 = 1;
    d->live--;
}

void dedup_prune(dedup_set *d, int64_t before_ms)
{
    rehash(d, before_ms / 60000);
}

size_t dedup_count(const dedup_set *d)
{
    return d->live;
}

size_t dedup_bytes(const dedup_set *d)
{
    return d->cap * sizeof(entry) + sizeof *d;
}
