/* u32map.h - an open-addressing hash map from uint32 keys to uint32 values.
 *
 * Owns its entry array (8 bytes per slot, load <= 0.75, growth x1.5, linear probing,
 * backward-shift deletion). Knows nothing of what keys mean; the engine maps each
 * anonymous id's pool code to the person holding it. Workload: lookups on every
 * tracked message, inserts when a new anonymous id appears, rare deletions.
 */
#ifndef SEGD_ENGINE_U32MAP_H
#define SEGD_ENGINE_U32MAP_H

#include <stddef.h>
#include <stdint.h>

#define U32MAP_NONE UINT32_MAX   /* not a valid key; the "missing" value */

typedef struct u32map_entry {
    uint32_t key;     /* U32MAP_NONE when the slot is empty */
    uint32_t value;
} u32map_entry;

typedef struct u32map {
    u32map_entry *slots;
    uint32_t cap;
    uint32_t count;
} u32map;

/* Initialises an empty map (no allocation). */
void u32map_init(u32map *m);

/* Frees the entries; the map is empty and reusable afterwards. */
void u32map_release(u32map *m);

/* The value of key, or U32MAP_NONE when absent. */
uint32_t u32map_get(const u32map *m, uint32_t key);

/* Sets key to value (inserting or replacing). key must not be U32MAP_NONE. */
void u32map_put(u32map *m, uint32_t key, uint32_t value);

/* Removes key; returns 1 if it was there, else 0. */
int u32map_remove(u32map *m, uint32_t key);

/* Shrinks the entries to the fewest slots that keep the load <= 0.75 (none when
 * empty). O(slots). */
void u32map_compact(u32map *m);

/* Allocated bytes. */
size_t u32map_memory(const u32map *m);

/* Checks count, load and that every key is reachable from its home slot exactly once.
 * Returns 0, or -1 after printing the first violation (prefixed by `what`). */
int u32map_check(const u32map *m, const char *what);

#endif
