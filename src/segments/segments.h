/* segments.h - saved filters whose membership is always exact.
 *
 * Owns every segment: its definition (name, description, filter, who it is hidden
 * from, whose default view it is, refresh interval), its current members (a CRoaring
 * bitmap of dense person ids), its cached snapshot, and the dependency index that says
 * which segments a change can affect (attribute -> segments, event type -> segments,
 * segment -> the segments that name it), kept in an order where every segment comes
 * after the segments it reads. Knows nothing of HTTP or SQLite: ingest calls it on the
 * writer thread, under the engine's write lock, with the people a write touched, and
 * stores the transitions it returns (the outbox) in the same transaction.
 * Workload: hundreds to thousands of segments over millions of people; a write touches
 * one person and re-checks only the segments that read what changed (filter_match for
 * that person); definitions change rarely and cost a full evaluation (filter_eval).
 *
 * Threading: like the engine, not thread-safe; readers hold ingest's read lock.
 * Errors: 0 or a negative SEGD_E* code with a segd_error saying how to fix the input.
 */
#ifndef SEGD_SEGMENTS_H
#define SEGD_SEGMENTS_H

#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"
#include "../engine/engine.h"
#include "../filter/filter.h"

typedef struct segments segments;

#define SEGMENT_ID_LEN 16          /* "seg_" + 12 base32 characters */
#define SEGMENT_NAME_MAX 100       /* characters */
#define SEGMENT_DEFAULT_REFRESH_MS (30 * 60 * 1000LL)

/* What a caller gives to create or edit a segment. Strings are copied; lists may be
 * NULL with n 0. The filter is parsed (not bound) and copied. */
typedef struct segment_input {
    const char *name;
    const char *description;
    const filter_node *filter;
    const char *const *hidden_from;
    size_t n_hidden_from;
    const char *const *default_for;
    size_t n_default_for;
    const char *created_by;
    int64_t refresh_ms;            /* cached-results interval; 0: the default */
} segment_input;

/* A segment as readers see it (pointers into the set: valid until the next change). */
typedef struct segment_view {
    const char *id;
    const char *name;
    const char *description;
    const filter_node *filter;     /* bound against the engine */
    const char *const *hidden_from;
    size_t n_hidden_from;
    const char *const *default_for;
    size_t n_default_for;
    const char *created_by;
    int64_t created_at, updated_at;
    int64_t refresh_ms;
    uint64_t size;                 /* current members */
    uint64_t cached_size;          /* members of the snapshot */
    int64_t cached_at;             /* when the snapshot was taken (0: never) */
} segment_view;

typedef enum seg_direction { SEG_ENTERED = 1, SEG_EXITED = 2 } seg_direction;

/* Why a membership changed: a write to the person (identify, track, REST, import), the
 * clock (a time-relative condition flipped), an erasure, or the segment's definition
 * (only with backfill: otherwise a new definition's members join silently). */
typedef enum seg_cause {
    SEG_CAUSE_WRITE = 1, SEG_CAUSE_CLOCK, SEG_CAUSE_ERASURE, SEG_CAUSE_DEFINITION,
    SEG_CAUSE_MERGE,               /* the person was merged into another (alias, identify) */
} seg_cause;

/* The cause's name as the API shows it ("write", "clock", ...). */
const char *seg_cause_name(int cause);

typedef struct seg_transition {
    int segment;                   /* slot (segments_view gives its id) */
    person_id person;
    seg_direction dir;
    seg_cause cause;
    int64_t at;
    int silent;                    /* a membership change without a log or outbox entry: a
                                      new definition's members joining without backfill */
} seg_transition;

/* A list of transitions the caller owns: zero-initialise, seg_transitions_release. */
typedef struct seg_transitions {
    seg_transition *v;
    size_t n, cap;
} seg_transitions;

void seg_transitions_release(seg_transitions *t);

/* What changed for a person: attribute indexes and event types. all = 1 means anything
 * may have changed (a merge): every segment is re-checked. slots names segments to
 * re-check whatever they read (the clock's due re-checks). */
typedef struct seg_change {
    const int *attrs;
    size_t n_attrs;
    const int *types;
    size_t n_types;
    int all;
    int created;                   /* the person is new: besides what reads the changes, every
                                      segment a person with nothing matches is re-checked */
    const int *slots;
    size_t n_slots;
} seg_change;

/* An empty set. Never NULL. */
segments *segments_new(void);

/* Frees the set. NULL is a no-op. */
void segments_free(segments *s);

/* Number of slots (some may be empty after deletions: segments_view says). */
int segments_slots(const segments *s);

/* The slot of a segment id, or -1. */
int segments_find(const segments *s, const char *id);

/* Fills *out for a live slot and returns 1, or returns 0 for an empty slot. */
int segments_view(const segments *s, int slot, segment_view *out);

/* Creates a segment: checks the name (1 to 100 characters, unique: 409 name_taken),
 * binds the filter (the filter errors: 422), rejects a reference cycle (422
 * segment_cycle), evaluates it over everyone and makes those people members. With
 * backfill, each member is an `entered` transition (cause definition) in out;
 * without, they are in out too but marked silent (the caller records the membership,
 * not a transition). id_out gets the new random id (SEGMENT_ID_LEN + 1
 * bytes). Returns the slot (>= 0) or a negative code with err set; nothing changes on
 * error. */
int segments_create(segments *s, const engine *e, const segment_input *in, int64_t now, int backfill,
                    char *id_out, seg_transitions *out, segd_error *err);

/* Replaces a segment's definition (the same checks as create; the name may stay its
 * own). Members are re-evaluated: people who now match and did not join, people who
 * no longer match leave; with backfill those are transitions (cause definition),
 * without they are in out marked silent. The segments that name it (in, not_in),
 * directly or through others, are re-evaluated too, their changes reported alike.
 * created_by and created_at stay. 404 for an unknown id. */
int segments_update(segments *s, const engine *e, const char *id, const segment_input *in, int64_t now,
                    int backfill, seg_transitions *out, segd_error *err);

/* Puts back a stored segment (at start, or after the engine was rebuilt): its id,
 * times and definition as stored, its members as stored (person ids, ascending or
 * not), and its snapshot (segments_snapshot_serialize's bytes; NULL for none). The
 * members are not evaluated: segments_recompute_all then finds the real differences.
 * Returns the slot, or a negative code with err (unknown_segment when the filter names
 * a segment not restored yet: restore that first). Nothing changes on error. */
int segments_restore(segments *s, const engine *e, const char *id, const segment_input *in, int64_t created_at,
                     int64_t updated_at, const uint32_t *members, size_t n_members, int64_t cached_at,
                     const void *snapshot, size_t snapshot_len, segd_error *err);

/* The slot's snapshot as bytes for the store (malloc'd, *len set), or NULL when it has
 * none. */
void *segments_snapshot_serialize(const segments *s, int slot, size_t *len);

/* The slot's current members as bytes (the same format; malloc'd, *len set): the
 * store's member checkpoint. NULL for an empty slot. */
void *segments_members_serialize(const segments *s, int slot, size_t *len);

/* Reads member bytes (segments_members_serialize's) into a list of person ids
 * (malloc'd, *n set). Returns NULL for damaged bytes. */
uint32_t *segments_members_parse(const void *data, size_t len, size_t *n);

/* Removes an erased person from every snapshot. Returns how many snapshots held them,
 * with their slots in slots_out (segments_slots() entries at most). */
int segments_forget_person(segments *s, person_id p, int *slots_out);

/* What a new filter for slot would change, without changing anything: how many people
 * would enter and leave, with up to `sample` of each (ascending ids). The filter is
 * parsed, not bound. Returns 0, or the binding's negative code with err. */
int segments_preview(segments *s, const engine *e, int slot, const filter_node *filter, int64_t now,
                     uint64_t *n_enter, uint64_t *n_exit, person_id *enter, size_t *n_enter_sample,
                     person_id *exit, size_t *n_exit_sample, size_t sample, segd_error *err);

/* Deletes a segment: 404 if unknown, 409 segment_in_use when other segments name it
 * (the message says how many). Its members leave without transitions. */
int segments_delete(segments *s, const char *id, segd_error *err);

/* 1 if the person is a current member (snapshot: cached 1) of the slot, else 0. */
int segments_is_member(const segments *s, int slot, person_id p, int cached);

/* ORs the slot's members (or snapshot) into words (filter_words-sized). */
void segments_members(const segments *s, int slot, int cached, uint64_t *words);

/* The resolver filters use for {"segment": ID} conditions: current memberships and
 * snapshots of this set. Valid while s lives. */
filter_resolver segments_resolver(segments *s);

/* The write path: person p changed as `what` says, and the engine already holds the
 * change. Re-checks, in dependency order, every segment that reads what changed (and
 * the segments that read those), and appends each membership that flipped to out with
 * cause and time `now`. A person who no longer exists (erased, or merged into another:
 * the caller says which by the cause) exits everything. */
void segments_person_changed(segments *s, const engine *e, person_id p, const seg_change *what, int64_t now,
                             seg_cause cause, seg_transitions *out);

/* Re-evaluates every segment over everyone (in dependency order) and appends the
 * differences from the current members as transitions (cause given): what a restart
 * or a clock sweep runs. */
void segments_recompute_all(segments *s, const engine *e, int64_t now, seg_cause cause, seg_transitions *out);

/* ---- the clock ----
 * A segment whose filter is time-relative (filter_time_relative) keeps, for each person,
 * the next moment their answer may change with no new data (filter_next_change), in a
 * min-heap over all segments. Creating or editing such a segment schedules everyone; a
 * write re-schedules the person for the segments it re-checked; the moments that come
 * due re-check that person at that exact moment, and schedule the next. */

/* The earliest scheduled re-check, or INT64_MAX when none. */
int64_t segments_next_due(const segments *s);

/* Runs, in moment order, every re-check due at or before now: each evaluates the
 * segment (and the segments that read it) for the person as of its moment, appends
 * the flips to out (cause clock, at the moment itself, not `now`), and schedules the
 * person's next moment. Returns how many re-checks ran. */
size_t segments_run_due(segments *s, const engine *e, int64_t now, seg_transitions *out);

/* The earliest moment a cached-results snapshot is due for its refresh (cached_at +
 * refresh), or INT64_MAX when there are no segments. */
int64_t segments_next_refresh(const segments *s);

/* Number of scheduled re-checks (current ones; stale heap entries not counted). */
uint64_t segments_scheduled(const segments *s);

/* Takes the slot's snapshot now (the "cached results"). */
void segments_snapshot(segments *s, int slot, int64_t now);

/* Rebinds every filter after the engine's catalog changed (an attribute dropped or
 * declared). Returns 0, or SEGD_ECONFLICT naming in err the first segment whose filter
 * no longer binds (the caller refuses the catalog change). */
int segments_rebind(segments *s, const engine *e, segd_error *err);

/* 1 if some segment's filter reads the attribute (by index), else 0; *slot gets the
 * first such segment. For refusing to drop an attribute in use. */
int segments_use_attribute(const segments *s, int attr, int *slot);

/* Checks every invariant: ids unique and well formed, names unique, filters bound, the
 * order puts dependencies first, the dependency index lists exactly what the filters
 * read, members are live people. Returns 0, or -1 after printing the first violation. */
int segments_check(const segments *s, const engine *e);

#endif
