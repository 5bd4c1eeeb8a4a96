/* store.h - the durable truth: SQLite (WAL, synchronous=FULL) in DIR/segd.db.
 *
 * Owns: the schema and its numbered migrations, the data-directory lock (a second
 * segd on the same directory is refused), transactions and savepoints, and the rows
 * for people (one JSON object of attributes per person), the attribute / event-type /
 * property catalogs, events (properties as a JSON object, packed in blocks of
 * consecutive rows of one type: evblock.h), recent message ids, and segments (their
 * definitions, members, transitions and size history).
 * Knows nothing of HTTP or of the engine's layout: it stores and returns what ingest/
 * gives it. Workload: appends in large group-committed transactions; full scans only
 * when the engine is rebuilt at start.
 *
 * Durability: synchronous=FULL in WAL mode, so a committed transaction survives power
 * loss, not only a process crash (segd acknowledges a write only after its commit).
 *
 * Threading: one store is used by one thread at a time (ingest's writer thread; the
 * rebuild runs before it starts), except the store_read_* calls, which any thread may
 * make at any time between store_open and store_close. Errors: 0 or a negative
 * SEGD_E* code; details go to the log.
 */
#ifndef SEGD_STORE_H
#define SEGD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"

typedef struct store store;

/* The schema version this build writes; migrations run up to it on open. */
#define STORE_SCHEMA_VERSION 5

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

/* ---- segments (schema 4) ----
 * A segment is keyed in the store by `num`, an integer the store assigns when the
 * segment is first put and never reuses (AUTOINCREMENT); its public id ("seg_...") and
 * its definition (a JSON object ingest builds) are columns of the segments row.
 * Members are one row per (segment, person) with when and why they entered, so that a
 * restart knows who was a member (no duplicate "entered") and readers can show
 * entered_at. Transitions are the membership log and the outbox at once: one row per
 * entered / exited, numbered by an increasing seq that outbox consumers follow.
 * History keeps a point of a segment's size per hour and per recalculation.
 * "Never reused" holds for committed nums and seqs: one handed out in a transaction
 * or savepoint that is rolled back may be handed out again (nobody could read it).
 * Nothing ties these rows to the segments row: members, transitions and history of a
 * num that is not (or no longer) a segment are stored as given.
 * Each write below counts as one write for store_fail_nth_write. One that fails may
 * have done part of its work (store_segment_delete, store_prune_segment_log run
 * several statements): roll back the request, as after any failed write. */

/* Inserts the segment `id` (assigning *num) or, when it exists, replaces its definition
 * (*num gets its key). Only the definition changes: members, snapshot, transitions and
 * history stay as they are. num may be NULL. SEGD_EINVAL when id or definition_json
 * is NULL. */
int store_segment_put(store *s, const char *id, const char *definition_json, size_t len, int64_t *num);

/* Deletes a segment with its members, snapshot, transitions and history. Missing is
 * not an error. Its num is not given again, also not to a new segment of the same
 * id. */
int store_segment_delete(store *s, int64_t num);

/* Stores the segment's cached-results snapshot (a serialised bitmap, opaque here) and
 * when it was taken, replacing the previous one. data NULL (or len 0) stores none. An
 * unknown num changes nothing and is not an error. */
int store_segment_cached_put(store *s, int64_t num, int64_t cached_at, const void *data, size_t len);

/* Stores the segment's member checkpoint (schema 5): a serialised member set, opaque
 * here, that includes every transition up to seq. The members at a later time are the
 * checkpoint plus the segment's transitions after seq (store_load_transitions_after). */
int store_segment_members_put(store *s, int64_t num, const void *data, size_t len, int64_t seq);

/* Makes person a member (insert or replace the row) / removes the row (missing is not
 * an error). cause is seg_cause's number. */
int store_member_enter(store *s, int64_t num, uint32_t person, int64_t entered_at, int cause);
int store_member_exit(store *s, int64_t num, uint32_t person);

/* Appends a transition (dir 1 entered, 2 exited; cause as seg_cause; detail may be
 * NULL). public_id names the person also after an erasure. *seq (may be NULL) gets the
 * row's sequence number: greater than every committed seq, also of rows deleted
 * since. SEGD_EINVAL for a dir other than 1 or 2. */
int store_transition_add(store *s, int64_t num, uint32_t person, uint64_t public_id, int dir, int64_t at, int cause,
                         const char *detail, int64_t *seq);

/* Appends a history point: the segment's size at `at` (kind 1 hourly, 2 recalculation).
 * A point at the same num and `at` as a stored one replaces it. */
int store_history_add(store *s, int64_t num, int64_t at, uint64_t size, int kind);

/* Erasure: deletes every transition row of the person (before their erasure exits are
 * appended). */
int store_person_log_erase(store *s, uint32_t person);

/* Deletes transitions and history points with `at` < before_ms (the 90-day window).
 * Members are kept, whatever their entered_at. */
int store_prune_segment_log(store *s, int64_t before_ms);

typedef int (*store_segment_cb)(void *ctx, int64_t num, const char *id, const char *definition_json, size_t len,
                                int64_t cached_at, const void *cached, size_t cached_len);
typedef int (*store_member_cb)(void *ctx, int64_t num, uint32_t person, int64_t entered_at, int cause);

/* Loads for the rebuild at start, on the writer's connection (they see its open
 * transaction), with the conventions of the loads below: stop early with the
 * callback's nonzero value, strings and the snapshot valid only during the call. A
 * segment without snapshot gives cached NULL and cached_len 0 (cached_at as stored,
 * 0 when never put). */
int store_load_segments(store *s, store_segment_cb cb, void *ctx);   /* by num */

/* Each segment's member checkpoint, by num: data NULL (len 0) and seq -1 when it has
 * none yet (a segment from schema 4, whose member rows are its members). */
typedef int (*store_checkpoint_cb)(void *ctx, int64_t num, const void *data, size_t len, int64_t seq);
int store_load_checkpoints(store *s, store_checkpoint_cb cb, void *ctx);


/* The highest transition seq stored (0 when none). */
int store_last_transition_seq(store *s, int64_t *seq);
int store_load_members(store *s, store_member_cb cb, void *ctx);     /* by num, then person */

/* ---- reads from any thread ----
 * The store_read_* calls use a second, read-only connection of their own (WAL lets it
 * read while the writer writes), serialised by a mutex: HTTP threads call them for
 * what memory does not keep (entered_at, logs, history). They see committed data
 * only: an open transaction's rows are invisible to them, also when the writer
 * thread calls them itself. Like the loads, each returns 0, the callback's nonzero
 * value when it stops early, or a negative SEGD_E* code; strings are valid only
 * during the callback. The callback runs with the mutex held: it must not call a
 * store_read_* (that would deadlock), and every other reader waits for it. */

/* One member row: 1 and its fields, 0 when absent, negative on error. */
int store_read_member(store *s, int64_t num, uint32_t person, int64_t *entered_at, int *cause);

/* The person's member rows, by num. */
int store_read_memberships(store *s, uint32_t person, store_member_cb cb, void *ctx);

typedef struct store_transition {
    int64_t seq;
    int64_t num;
    uint32_t person;
    uint64_t public_id;
    int dir;
    int64_t at;
    int cause;
    const char *detail;            /* NULL when none; valid during the callback */
} store_transition;
typedef int (*store_transition_cb)(void *ctx, const store_transition *t);

/* The transitions of segment num with seq > after_seq, oldest first (the writer's
 * connection: replaying them onto a checkpoint at start). */
int store_load_transitions_after(store *s, int64_t num, int64_t after_seq, store_transition_cb cb, void *ctx);

/* Transitions newest first (by seq): of segment num (or any, num < 0), of person (or
 * any, person < 0), with seq < before_seq (0 or less: from the newest), at most limit
 * rows. SEGD_EINVAL when limit <= 0. To page, pass the last seq seen as before_seq. */
int store_read_transitions(store *s, int64_t num, int64_t person, int64_t before_seq, int limit,
                           store_transition_cb cb, void *ctx);

/* The outbox: transitions with seq > after_seq, oldest first, at most limit rows.
 * SEGD_EINVAL when limit <= 0. */
int store_read_outbox(store *s, int64_t after_seq, int limit, store_transition_cb cb, void *ctx);

typedef int (*store_history_cb)(void *ctx, int64_t at, uint64_t size, int kind);
/* History points of num at or after since_ms, oldest first. */
int store_read_history(store *s, int64_t num, int64_t since_ms, store_history_cb cb, void *ctx);

typedef int (*store_daily_cb)(void *ctx, int64_t day_ms, uint64_t entered, uint64_t exited);
/* Entered and exited counts of num per UTC day (day_ms: its midnight, `at` rounded
 * down to a multiple of 86400000, also before 1970) for transitions at or after
 * since_ms, oldest day first, days without transitions left out. */
int store_read_daily_counts(store *s, int64_t num, int64_t since_ms, store_daily_cb cb, void *ctx);

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
 * event_type_put, property_put, messages_put, segment_put/delete, segment_cached_put,
 * segment_members_put,
 * member_enter/exit, transition_add, history_add, person_log_erase,
 * prune_segment_log and commit; not begin, savepoints, rollbacks, prune_messages,
 * loads or reads. The fault fires once and touches nothing. */
void store_fail_nth_write(store *s, int n);

#endif
