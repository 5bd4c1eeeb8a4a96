/* u32map.c - open-addressing uint32 -> uint32 hash map (u32map.h). */
#include "u32map.h"
#include "fit.h"
#include "hash.h"
#include "../base/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SLOTS 16

void u32map_init(u32map *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void u32map_release(u32map *m)
{
    free(m->slots);
    u32map_init(m);
}

static uint32_t home_of(uint32_t key, uint32_t cap)
{
    return hash_slot(hash_u64(key), cap);
}

static uint32_t next_slot(const u32map *m, uint32_t pos)
{
    return pos + 1 == m->cap ? 0 : pos + 1;
}

/* Position of key, or U32MAP_NONE. */
static uint32_t find_pos(const u32map *m, uint32_t key)
{
    if (!m->cap) return U32MAP_NONE;
    uint32_t pos = home_of(key, m->cap);
    while (m->slots[pos].key != U32MAP_NONE) {
        if (m->slots[pos].key == key) return pos;
        pos = next_slot(m, pos);
    }
    return U32MAP_NONE;
}

/* Moves every entry into a fresh array of cap slots (cap > count; 0 frees them). */
static void rehash(u32map *m, uint32_t cap)
{
    u32map_entry *slots = NULL;
    if (cap) {
        slots = xmalloc((size_t)cap * sizeof *slots);
        memset(slots, 0xff, (size_t)cap * sizeof *slots);
    }
    for (uint32_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == U32MAP_NONE) continue;
        uint32_t pos = home_of(m->slots[i].key, cap);
        while (slots[pos].key != U32MAP_NONE) pos = pos + 1 == cap ? 0 : pos + 1;
        slots[pos] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
}

static void grow(u32map *m)
{
    uint64_t cap = m->cap < MIN_SLOTS ? MIN_SLOTS : (uint64_t)m->cap + m->cap / 2;
    if (cap > UINT32_MAX - 1) {
        fprintf(stderr, "segd: hash map over 2^32 slots\n");
        abort();
    }
    rehash(m, (uint32_t)cap);
}

void u32map_compact(u32map *m)
{
    uint32_t cap = fit_slots(m->count);
    if (cap < m->cap) rehash(m, cap);
}

uint32_t u32map_get(const u32map *m, uint32_t key)
{
    uint32_t pos = find_pos(m, key);
    return pos == U32MAP_NONE ? U32MAP_NONE : m->slots[pos].value;
}

void u32map_put(u32map *m, uint32_t key, uint32_t value)
{
    uint32_t pos = find_pos(m, key);
    if (pos != U32MAP_NONE) {
        m->slots[pos].value = value;
        return;
    }
    if ((uint64_t)(m->count + 1) * 4 > (uint64_t)m->cap * 3) grow(m);
    pos = home_of(key, m->cap);
    while (m->slots[pos].key != U32MAP_NONE) pos = next_slot(m, pos);
    m->slots[pos].key = key;
    m->slots[pos].value = value;
    m->count++;
}

int u32map_remove(u32map *m, uint32_t key)
{
    uint32_t hole = find_pos(m, key);
    if (hole == U32MAP_NONE) return 0;
    uint32_t pos = next_slot(m, hole);
    while (m->slots[pos].key != U32MAP_NONE) {
        uint32_t home = home_of(m->slots[pos].key, m->cap);
        int stays = hole <= pos ? (hole < home && home <= pos) : (hole < home || home <= pos);
        if (!stays) {
            m->slots[hole] = m->slots[pos];
            hole = pos;
        }
        pos = next_slot(m, pos);
    }
    m->slots[hole].key = U32MAP_NONE;
    m->slots[hole].value = U32MAP_NONE;
    m->count--;
    return 1;
}

size_t u32map_memory(const u32map *m)
{
    return (size_t)m->cap * sizeof *m->slots;
}

int u32map_check(const u32map *m, const char *what)
{
    uint32_t n = 0;
    if ((uint64_t)m->count * 4 > (uint64_t)m->cap * 3) {
        fprintf(stderr, "engine_check: %s: load %u/%u over 0.75\n", what, m->count, m->cap);
        return -1;
    }
    for (uint32_t i = 0; i < m->cap; i++) {
        uint32_t key = m->slots[i].key;
        if (key == U32MAP_NONE) continue;
        n++;
        /* Reachable from home, and the first occurrence on the way is this slot. */
        for (uint32_t pos = home_of(key, m->cap);; pos = next_slot(m, pos)) {
            if (m->slots[pos].key == U32MAP_NONE) {
                fprintf(stderr, "engine_check: %s: key %u unreachable\n", what, key);
                return -1;
            }
            if (m->slots[pos].key == key) {
                if (pos != i) {
                    fprintf(stderr, "engine_check: %s: key %u stored twice\n", what, key);
                    return -1;
                }
                break;
            }
        }
    }
    if (n != m->count) {
        fprintf(stderr, "engine_check: %s: %u keys but count %u\n", what, n, m->count);
        return -1;
    }
    return 0;
}
