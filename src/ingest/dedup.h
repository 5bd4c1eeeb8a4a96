/* dedup.h - the set of recently seen (source, messageId) pairs.
 *
 * A message id is unique per source for a window (30 days by default): a repeat is
 * answered 200 and applied once. The set keeps a 96-bit hash of each pair and the
 * minute it was seen, 16 bytes an entry, in an open-addressing table; it is rebuilt
 * from the store's message_ids table at start. Workload: one lookup and usually one
 * insert per incoming message. Not thread-safe: only the writer thread touches it.
 */
#ifndef SEGD_INGEST_DEDUP_H
#define SEGD_INGEST_DEDUP_H

#include <stddef.h>
#include <stdint.h>

typedef struct dedup_set dedup_set;

/* An empty set. Never NULL. */
dedup_set *dedup_new(void);
void dedup_free(dedup_set *d);

/* 1 if (source, id) was added at or after since_ms, else 0. */
int dedup_contains(const dedup_set *d, const char *source, const char *id, int64_t since_ms);

/* Adds (source, id) seen at at_ms unless it was seen at or after since_ms: returns 1
 * (and changes nothing) for such a repeat, 0 when added. One probe instead of
 * dedup_contains + dedup_add: the hot path of ingestion. */
int dedup_insert(dedup_set *d, const char *source, const char *id, int64_t at_ms, int64_t since_ms);

/* Adds (source, id) seen at at_ms (replacing an older entry of the same pair). */
void dedup_add(dedup_set *d, const char *source, const char *id, int64_t at_ms);

/* A pair already hashed: lets a loader hash ids as it reads them and insert them all
 * later, on another thread, with dedup_add_keys. */
typedef struct dedup_key {
    uint64_t h1;
    uint32_t h2;
    uint32_t minute;
} dedup_key;

/* Hashes (source, id) seen at at_ms into *out. */
void dedup_key_of(const char *source, const char *id, int64_t at_ms, dedup_key *out);

/* Adds n hashed pairs (sizing the table once); a pair already present keeps the newer
 * minute. */
void dedup_add_keys(dedup_set *d, const dedup_key *keys, size_t n);

/* dedup_insert for a pair hashed ahead (by dedup_key_of, on another thread: the
 * writer then only probes). k->minute is ignored: the pair counts as seen at at_ms. */
int dedup_insert_key(dedup_set *d, const dedup_key *k, int64_t at_ms, int64_t since_ms);

/* Makes room for n more pairs now, in one rehash, instead of the doublings their
 * inserts would cause (each one moves every entry, at random). No-op when they fit. */
void dedup_reserve(dedup_set *d, size_t n);

/* Removes (source, id); used when the transaction that added it failed. */
void dedup_remove(dedup_set *d, const char *source, const char *id);

/* Drops entries older than before_ms. */
void dedup_prune(dedup_set *d, int64_t before_ms);

/* Number of entries and allocated bytes. */
size_t dedup_count(const dedup_set *d);
size_t dedup_bytes(const dedup_set *d);

#endif
