/* ingest.h - the one write path of segd, and the lock readers take.
 *
 * Owns: validating and normalising every change (Segment-spec identify/track/page/
 * screen/group/alias/batch messages, REST upserts, patches, erasures, attribute
 * declarations, bulk import lines), messageId dedup, identity resolution (anonymous
 * merge, alias), the writer thread that group-commits concurrent requests to the store,
 * applying changes to the engine, and rebuilding the engine from the store at start.
 * Knows nothing of HTTP: callers hand it parsed JSON (cJSON) and get a segd_error.
 *
 * Write path: the caller normalises its messages (in its own thread), submits them as
 * one op and blocks; the writer thread takes every waiting op, and in one transaction
 * runs each op under its own savepoint: validate against the catalog (types, limits),
 * write the store rows, apply to the engine. The op is answered only after COMMIT.
 * An op that fails validation changes nothing; if the store fails, that op's savepoint
 * is rolled back (or, if COMMIT fails, the whole group) and the engine is rebuilt from
 * the store, which is the truth, before the next group.
 *
 * Readers call ingest_read_begin / ingest_read_end around any use of the engine.
 */
#ifndef SEGD_INGEST_H
#define SEGD_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "../base/error.h"
#include "../engine/engine.h"
#include "../store/store.h"
#include "../segments/segments.h"

typedef struct ingest ingest;

typedef struct ingest_config {
    engine_limits limits;          /* attributes, event types, properties per event */
    size_t max_message_bytes;      /* one Segment message, default 32 KiB */
    int64_t dedup_window_ms;       /* messageId uniqueness window, default 30 days */
    int max_group_ops;             /* ops committed together at most, default 256 */
    int test_clock;                /* tests: only ingest_set_test_clock moves segment time
                                      (no ticks by the real clock) */
} ingest_config;

/* Fills *cfg with the defaults. */
void ingest_config_defaults(ingest_config *cfg);

/* Starts the writer thread, which first rebuilds the engine from the store and loads
 * the recent message ids (the store stays owned by the caller and must outlive the
 * ingest). Returns at once, before the rebuild ends: until then reads get NULL from
 * ingest_read_begin and writes wait in the queue. Returns NULL and fills *err only
 * if the thread cannot start. */
ingest *ingest_open(store *st, const ingest_config *cfg, segd_error *err);

/* Waits until the rebuild has finished. Returns 0 when ready, or a negative code with
 * *err saying why the store could not be loaded. */
int ingest_wait_ready(ingest *ing, segd_error *err);

/* Finishes the ops already submitted, stops the writer thread and frees the engine.
 * Later submissions fail with 503. NULL is a no-op. */
void ingest_close(ingest *ing);

/* 1 once the engine has been rebuilt and the writer runs (readiness), else 0 (loading,
 * or the store failed to load). */
int ingest_ready(const ingest *ing);

/* ---- reading ----
 * Between begin and end the engine does not change; the returned engine pointer is
 * valid only until ingest_read_end. Several readers may hold it at once. While the
 * engine is not ready, begin returns NULL and the caller must not call end (answer
 * 503 not_ready). */
const engine *ingest_read_begin(ingest *ing);
void ingest_read_end(ingest *ing);

/* ---- writing ----
 * Every write call blocks until its change has committed (or failed) and returns 0 or
 * a negative code with *err filled (status, code, message, field, index).
 * `source` names the sender for messageId dedup ("default" until sources exist). */

/* Kinds of Segment-spec messages. */
typedef enum ingest_kind {
    INGEST_IDENTIFY, INGEST_TRACK, INGEST_PAGE, INGEST_SCREEN, INGEST_GROUP, INGEST_ALIAS,
} ingest_kind;

/* Applies Segment-spec messages. `msgs` is an array (a batch) or, with `kind_hint`
 * >= 0, a single message object whose type comes from the URL. In a batch each item's
 * "type" field names its kind. A batch is all-or-nothing: any invalid message fails it
 * with 400 naming every bad index (err->index is the first; *bad, when bad != NULL,
 * receives an array of {"index","field","code","message"} the caller frees with
 * cJSON_Delete). A single message with a type conflict or over a limit fails with 422.
 * Repeated messageIds are answered 0 and applied once. *applied (may be NULL) receives
 * how many messages were applied (dedup'd ones excluded). */
int ingest_messages(ingest *ing, const char *source, cJSON *msgs, int kind_hint, unsigned flags,
                    int *applied, cJSON **bad, segd_error *err);

/* ingest_messages in two halves, so that a bulk importer can normalise the next
 * batch on its own thread while the writer commits this one. A prepared batch keeps
 * pointers into `msgs`, which must outlive it. */
typedef struct ingest_batch ingest_batch;

/* Normalises messages as ingest_messages does. Returns the batch, or NULL with *err
 * (and *bad for a batch, as ingest_messages fills them) when a message is invalid. */
ingest_batch *ingest_prepare(ingest *ing, const char *source, cJSON *msgs, int kind_hint, unsigned flags,
                             cJSON **bad, segd_error *err);

/* Submits a prepared batch, waits for its commit and frees it. Results as for
 * ingest_messages (a batch can still fail against the catalog: type conflicts). */
int ingest_submit(ingest *ing, ingest_batch *b, int *applied, cJSON **bad, segd_error *err);

/* ingest_submit in two halves, so that a bulk importer can prepare the next batch on
 * the same thread while the writer applies this one: begin queues the batch (taking it
 * over) and returns at once, end waits for its commit and gives the results of
 * ingest_submit, then frees the ticket. Every begun ticket must be ended. Never NULL. */
typedef struct ingest_ticket ingest_ticket;
ingest_ticket *ingest_submit_begin(ingest *ing, ingest_batch *b);
int ingest_submit_end(ingest *ing, ingest_ticket *t, int *applied, cJSON **bad, segd_error *err);

/* A hint from a bulk importer: about n more messages with messageIds will follow.
 * The writer grows its dedup set for them once, before its next group, instead of
 * doubling it (and moving every id) several times on the way. Any thread; returns at
 * once. */
void ingest_expect_messages(ingest *ing, size_t n);

/* Frees a prepared batch that will not be submitted. NULL is a no-op. */
void ingest_batch_free(ingest_batch *b);

/* Flags of ingest_messages. */
#define INGEST_F_TEXT_VALUES 1u   /* string values came from text (CSV): "42" may fill a
                                     number attribute, true/false a boolean, and any value a
                                     declared string; undeclared ones are typed as JSON would */

/* Ways to name a person in REST calls. */
typedef enum ingest_key_kind {
    INGEST_BY_USER_ID, INGEST_BY_ANONYMOUS_ID, INGEST_BY_EMAIL, INGEST_BY_ID,
} ingest_key_kind;

/* Parses "user_id", "anonymous_id", "email", "id"; -1 if unknown. */
int ingest_key_kind_parse(const char *s);

/* Resolves a person by key under a read lock the caller holds; PERSON_NONE if none.
 * For INGEST_BY_ID the key is the public id as printed by ingest_public_id_format. */
person_id ingest_find_person(const engine *e, ingest_key_kind by, const char *key);

/* The opaque public id of a person: "p_" and 13 base32 characters (buf >= 20 bytes). */
char *ingest_public_id_format(uint64_t public_id, char *buf);

/* POST /api/people: creates or updates the person named by body's "user_id" (or
 * "anonymous_id"), setting "attributes" (an object) and replacing "tags" (an array).
 * *created is set to 1 when a person was created. *public_id receives their id. */
int ingest_upsert(ingest *ing, cJSON *body, int *created, uint64_t *public_id, segd_error *err);

/* PATCH /api/people/{key}: body {"attributes": {name: value or null}, "tags":
 * {"add": [..], "remove": [..]}}. 404 when the person is unknown. */
int ingest_patch(ingest *ing, ingest_key_kind by, const char *key, cJSON *body, segd_error *err);

/* DELETE /api/people/{key}: erases the person and all their events from store and
 * memory. 404 when unknown. */
int ingest_erase(ingest *ing, ingest_key_kind by, const char *key, segd_error *err);

/* POST /api/attributes: declares an attribute's type before first sight. 409 when it
 * exists with another type, 422 for a bad name or type or past the limit. */
int ingest_declare_attribute(ingest *ing, const char *name, const char *type_name, segd_error *err);

/* POST /api/event-types: declares an event type and the types of its properties before
 * any event of it arrives, so filters may name them. body: {"name": "purchase",
 * "properties": {"amount": "number", "sku": "string"}} (properties optional). *created
 * is 1 when the event type is new. 409 type_conflict when a property exists with
 * another type, 422 for a bad name or type or past a limit. Declaring what exists
 * changes nothing. */
int ingest_declare_event_type(ingest *ing, const cJSON *body, int *created, segd_error *err);

/* DELETE /api/attributes/{name}: removes the attribute from everyone. 404 if unknown,
 * 422 for a standard attribute. */
int ingest_drop_attribute(ingest *ing, const char *name, segd_error *err);

/* ---- reading helpers that build JSON (caller holds the read lock) ---- */

/* Adds the person's attributes to obj as name -> value (datetimes in ISO 8601,
 * tags and lists as arrays). */
void ingest_person_attributes_json(const engine *e, person_id id, cJSON *obj);

/* One value as JSON: strings, numbers, booleans, datetimes as ISO 8601 text, lists as
 * arrays of strings, JSON values as they were sent; null for a missing value. A new
 * tree the caller frees (or adds to another). */
cJSON *ingest_cell_json(const engine *e, const segd_cell *c);

/* Adds one event's fields to obj: "event", "timestamp", "properties". */
void ingest_event_json(const engine *e, const engine_event_ref *ref, cJSON *obj);

/* ---- segments ----
 * Segments are kept by the writer next to the engine: every write re-checks the
 * segments that read what it changed, for the people it changed, and stores the
 * membership transitions in the same transaction (docs/INTERNALS.md, "Segments").
 * The calls below block until their change has committed, like every write. */

/* The time segments and time-relative filters read: the test clock once set, else now. */
int64_t ingest_now_ms(ingest *ing);

/* POST /api/segments: body {name, description, filter (object or text), hidden_from,
 * default_for, refresh ("30m"), backfill}. id_out (SEGMENT_ID_LEN + 1 bytes) gets the
 * new id. 422 for a bad field or filter, 409 name_taken, 422 segment_cycle. */
int ingest_segment_create(ingest *ing, const cJSON *body, const char *created_by, char *id_out, segd_error *err);

/* PATCH /api/segments/{id}: the fields sent replace the current ones (backfill as for
 * create). 404 for an unknown id. */
int ingest_segment_update(ingest *ing, const char *id, const cJSON *body, segd_error *err);

/* DELETE /api/segments/{id}: 404 unknown, 409 segment_in_use. */
int ingest_segment_delete(ingest *ing, const char *id, segd_error *err);

/* POST /api/segments/{id}/recalculate: takes the cached-results snapshot now. */
int ingest_segment_recalculate(ingest *ing, const char *id, segd_error *err);

/* PUT /api/_test/clock: sets the test clock and runs everything due by then. */
int ingest_set_test_clock(ingest *ing, int64_t now_ms, segd_error *err);

/* The segment set, for readers holding the read lock (valid until ingest_read_end). */
segments *ingest_segments(ingest *ing);

/* A slot's key in the store (for store_read_* calls), under the read lock; 0 if none. */
int64_t ingest_segment_num(ingest *ing, int slot);

/* The store, for its thread-safe store_read_* calls. */
store *ingest_store(ingest *ing);

/* ---- statistics for /metrics ---- */
typedef struct ingest_stats {
    uint64_t messages_applied;     /* Segment messages and import lines applied */
    uint64_t messages_deduplicated;
    uint64_t events_appended;
    uint64_t groups_committed;     /* store transactions */
    uint64_t ops_committed;        /* requests inside them */
    uint64_t ops_failed;
    uint64_t rebuilds;             /* engine rebuilt after a store failure */
    uint64_t dedup_ids;            /* message ids remembered for dedup */
    uint64_t dedup_bytes;          /* memory they take */
    uint64_t segment_transitions;  /* entered / exited rows written (the outbox) */
} ingest_stats;

void ingest_get_stats(ingest *ing, ingest_stats *out);

/* Test hook: forwards to store_fail_nth_write on the writer's store, from the writer
 * thread's point of view (the next n-th store write fails). */
void ingest_fail_nth_write(ingest *ing, int n);

#endif
