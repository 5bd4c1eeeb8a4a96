/* hash.h - hashing and slot placement shared by the engine's hash tables.
 *
 * Owns no data: pure inline functions. Not a keyed hash: a client that controls many
 * keys (user ids, emails) could craft collisions that slow the tables down; a per-engine
 * seed would fix that. Workload: every lookup and insert of strings, names and ids.
 */
#ifndef SEGD_ENGINE_HASH_H
#define SEGD_ENGINE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Mixes 64 bits into 64 well-distributed bits (the splitmix64 finalizer). */
static inline uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Hashes a byte string, 8 bytes per step. Equal bytes give equal hashes. */
static inline uint64_t hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h ^= hash_u64(w);
        h = (h << 27 | h >> 37) * 0x9e3779b97f4a7c15ULL;
        p += 8;
        len -= 8;
    }
    if (len) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h ^= hash_u64(w ^ 0xff51afd7ed558ccdULL);
    }
    return hash_u64(h);
}

/* Maps a hash to a slot in [0, n) without division (Lemire's multiply-shift), so
 * tables may have any size and grow by 1.5x. Uses the high 32 bits of the hash. */
static inline uint32_t hash_slot(uint64_t hash, uint32_t n)
{
    return (uint32_t)(((hash >> 32) * (uint64_t)n) >> 32);
}

#endif
