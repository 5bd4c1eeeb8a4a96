/* store.h - the durable truth: SQLite (WAL, synchronous=FULL) in DIR/segd.db.
 *
 * Owns: the schema and its numbered migrations, the data-directory lock (a second
 * segd on the same directory is refused), transactions and savepoints, and the rows
 * for people (one JSON object of attributes per person), the attribute / event-type /
 * property catalogs, events (properties as a JSON object, packed in blocks of
 * consecutive rows of one type: evblock.h) and recent message ids.
 * Knows nothing of HTTP or of the engine's layout: it stores and returns what ingest/
 * gives it. Workload: appends in large group-committed transactions; full scans only
 * when the engine is rebuilt at start.
 *
 * Durability: synchronous=FULL in WAL mode, so a committed transaction survives power
 * loss, not only a process crash (segd acknowledges a write only after its commit).
 *
 * Threading: one store is used by one thread at a time (ingest's writer thread; the
 * rebuild runs before it starts). Errors: 0 or a negative SEGD_E* code; details go
 * to the log.
 */
#ifndef SEGD_STORE_H
#define SEGD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"

typedef struct store store;

/* The schema version this build writes; migrations run up to it on open. */
#define STORE_SCHEMA_VERSION 3

/* Opens (creating if needed) the data directory `dir` and DIR/segd.db, takes an
 * exclusive lock on DIR/segd.lock (a second process gets 503-style error with code
 * "data_dir_locked" and a message naming the directory), and migrates the schema.
 * Returns NULL and fills *err on failure. Close with store_close. */
store *store_open(const char *dir, segd_error *err);

/* Commits nothing, closes the database and releases the lock. NULL is a no-op. */
void store_close(store *s);

/* ---- transactions ----
 * begin/commit/rollback wrap a group; savepoint/release/rollback_to wrap one request
 * inside it so a failing request undoes only its own rows. Each returns 0, SEGD_EBUSY
 * when SQLite reports the database busy, or SEGD_EIO. */

/* BEGIN IMMEDIATE: takes the write lock now, so later writes cannot fail as busy.
 * Fails if a transaction is already open (no nesting: use savepoints). */
int store_begin(store *s);

/* COMMIT. On failure the transaction may still be open: call store_rollback (or retry
 * the commit after SEGD_EBUSY). Counts as a write for store_fail_nth_write. */
int store_commit(store *s);

/* ROLLBACK of the whole transaction; 0 without doing anything when none is open
 * (SQLite may already have rolled back after an I/O error). */
int store_rollback(store *s);

/* SAVEPOINT req: opens the savepoint for one request. Savepoints do not nest: end each
 * with store_release or store_rollback_to before opening the next. */
int store_savepoint(store *s);

/* RELEASE req: keeps the request's rows in the enclosing transaction. */
int store_release(store *s);

/* ROLLBACK TO req, then RELEASE req: undoes the request's rows and closes its
 * savepoint, leaving the rest of the transaction as it was. On failure the savepoint
 * may still be open: roll back the whole transaction. */
int store_rollback_to(store *s);

/* ---- writes (inside a transaction) ---- */

/* Inserts or replaces a person's row: dense id, public id, and all attribute values as
 * one JSON object (the engine's current state for that person). */
int store_person_put(store *s, uint32_t id, uint64_t public_id, const char *attrs_json, size_t len);

/* Deletes a person's row (erasure deletes their events with store_events_delete
 * first). Missing is not an error. */
int store_person_delete(store *s, uint32_t id);

/* Events are keyed by their event type and their row in that type's log in the engine.
 * The engine never reuses a row, also after erasure (it leaves a hole), so the key is
 * stable across restarts. The store keeps them in blocks (evblock.h): one row of the
 * event_blocks table per run of up to EVBLOCK_MAX_ROWS consecutive rows of one type,
 * keyed type << 32 | first row. Inside a transaction, appended events wait in memory,
 * one run per type, and COMMIT writes each run as one block: a bulk import writes a
 * few blocks per chunk instead of a row per event. A savepoint covers them like any
 * row (ROLLBACK TO drops the ones appended since). A merge or an erasure rewrites the
 * blocks holding the events it names. */
typedef struct store_event_key {
    int type;
    uint32_t row;
} store_event_key;

/* Appends an event: its type and row, person, time, and properties as a JSON object
 * (props_json may be NULL for none). Inside a transaction it waits for COMMIT (a
 * failure to write it then fails the commit); outside, it is written at once.
 * SEGD_EIO when the key is stored already (also among the waiting ones), SEGD_EINVAL
 * for a negative type. */
int store_event_insert(store *s, int type, uint32_t row, uint32_t person, int64_t time_ms,
                       const char *props_json, size_t len);

/* Gives events to another person (a merge): one read and write per block touched.
 * Missing keys are skipped; SEGD_EINVAL for a negative type. One write for
 * store_fail_nth_write, however many keys. */
int store_events_set_person(store *s, const store_event_key *keys, size_t n, uint32_t person);

/* Deletes events (erasure): their rows become holes, their person, time and
 * properties gone; a block left with holes only is deleted. Missing keys are skipped.
 * One write for store_fail_nth_write. */
int store_events_delete(store *s, const store_event_key *keys, size_t n);

/* One event: store_events_set_person / store_events_delete of one key. */
int store_event_set_person(store *s, int type, uint32_t row, uint32_t person);
int store_event_delete(store *s, int type, uint32_t row);

/* Catalog rows. type_name is segd_type_name()'s form. declared is 1 when the type came
 * from POST /api/attributes, 0 when it was inferred on first sight. */
int store_attribute_put(store *s, const char *name, const char *type_name, int declared);
int store_attribute_delete(store *s, const char *name);
int store_event_type_put(store *s, int type, const char *name);
int store_property_put(store *s, int type, const char *name, const char *type_name);

/* Records the message ids one request applied (for dedup across restarts), as one
 * row: a row per id would double the rows a bulk import writes. n == 0 writes nothing. */
int store_messages_put(store *s, const char *source, const char *const *ids, size_t n, int64_t at_ms);

/* Deletes message ids recorded before before_ms (older than the dedup window). */
int store_prune_messages(store *s, int64_t before_ms);

/* ---- reads for the rebuild at start (outside a transaction or inside one) ----
 * Each calls cb once per row in a stable order and stops early, returning the
 * callback's value, when the callback returns nonzero. String arguments are valid
 * only during the call. */
typedef int (*store_attribute_cb)(void *ctx, const char *name, const char *type_name, int declared);
typedef int (*store_event_type_cb)(void *ctx, int type, const char *name);
typedef int (*store_property_cb)(void *ctx, int type, const char *name, const char *type_name);
typedef int (*store_person_cb)(void *ctx, uint32_t id, uint64_t public_id, const char *attrs_json, size_t len);
typedef int (*store_event_cb)(void *ctx, int type, uint32_t row, uint32_t person, int64_t time_ms,
                              const char *props_json, size_t len);
typedef int (*store_message_cb)(void *ctx, const char *source, const char *message_id, int64_t at_ms);

int store_load_attributes(store *s, store_attribute_cb cb, void *ctx);     /* by rowid */
int store_load_event_types(store *s, store_event_type_cb cb, void *ctx);   /* by type */
int store_load_properties(store *s, store_property_cb cb, void *ctx);      /* by rowid */
int store_load_people(store *s, store_person_cb cb, void *ctx);            /* by id */
int store_load_events(store *s, store_event_cb cb, void *ctx);             /* by type, then row */
int store_load_messages(store *s, int64_t since_ms, store_message_cb cb, void *ctx);

/* Reads one person's row: 1 and the JSON (caller frees *attrs_json) if present,
 * 0 if absent, negative on error. */
int store_person_get(store *s, uint32_t id, uint64_t *public_id, char **attrs_json, size_t *len);

/* Number of people rows (to size the engine before a rebuild), or a negative code. */
int64_t store_count_people(store *s);

/* PRAGMA integrity_check: 0 when "ok", SEGD_EIO otherwise. */
int store_integrity_check(store *s);

/* Test hook: the next `n`th write call (1 = the next one) fails with SEGD_EIO, as a
 * full disk would; 0 disarms. Lets tests prove that a failing write loses nothing
 * else. Counted: person_put/delete, event_insert, events_set_person/delete (and their
 * one-event forms), attribute_put/delete,
 * event_type_put, property_put, messages_put and commit; not begin, savepoints,
 * rollbacks, prune_messages or reads. The fault fires once and touches nothing. */
void store_fail_nth_write(store *s, int n);

#endif
