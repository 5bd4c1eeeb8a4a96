/* events.h - the event log: one columnar log per event type, chained per person.
 *
 * Owns the event-type and property catalogs, and per type the rows' person (4 bytes),
 * time (8) and previous-row-of-the-same-person (4) arrays, contiguous so filters scan
 * them directly, plus typed property columns (column.h). A hash table keyed by
 * (person, type) - one open-addressing table per type - holds each chain's newest row
 * and length in 8 bytes a slot (the key is read back as persons[newest row]), so
 * per-person reads walk only that person's rows. Does not know which people exist (the
 * engine checks before appending) nor anything of attributes. Rows are appended in
 * arrival order, not time order; an erased person's rows stay as holes (person
 * PERSON_NONE, no values). Workload: appends and whole-type scans dominate; per-person
 * walks for counts and profiles; merges and erasures rare.
 */
#ifndef SEGD_ENGINE_EVENTS_H
#define SEGD_ENGINE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "column.h"
#include "engine.h"
#include "namemap.h"
#include "strpool.h"

#define EVENTS_NO_ROW UINT32_MAX   /* end of a chain */
#define EVENTS_ZONE_SHIFT 10
#define EVENTS_ZONE_ROWS (1u << EVENTS_ZONE_SHIFT)   /* rows per zone of time bounds */

typedef struct event_log event_log;

typedef struct events {
    namemap types;            /* event type names; index = type */
    event_log **logs;         /* one per type (pointers: logs never move) */
    size_t logs_cap;
    uint32_t max_types;
    uint32_t max_props;
    uint64_t live;            /* live events over all types */
} events;

/* Initialises an empty log with limits on types and properties per type. */
void events_init(events *ev, uint32_t max_types, uint32_t max_props);

/* Frees everything, dropping property string references into pool. */
void events_release(events *ev, strpool *pool);

/* Event types: find by name (-1 if absent); declare (index, existing index,
 * SEGD_EINVAL for an empty name, SEGD_ELIMIT past max_types); count; name (NULL for a
 * bad index); live events of a type (0 for a bad index). */
int events_type_find(const events *ev, const char *name);
int events_type_declare(events *ev, const char *name);
int events_type_count(const events *ev);
const char *events_type_name(const events *ev, int type);
uint64_t events_type_live(const events *ev, int type);

/* Properties of a type: find (-1), declare (index, existing index, SEGD_ECONFLICT on
 * another type, SEGD_ELIMIT past max_props, SEGD_EINVAL for an empty name or type
 * NONE, SEGD_ENOTFOUND for a bad event type), count (0 for a bad type), name (NULL),
 * type (SEGD_T_NONE for a bad index). */
int events_prop_find(const events *ev, int type, const char *name);
int events_prop_declare(events *ev, int type, const char *name, segd_type ptype);
int events_prop_count(const events *ev, int type);
const char *events_prop_name(const events *ev, int type, int prop);
segd_type events_prop_type(const events *ev, int type, int prop);

/* Appends an event (person must exist: the caller checked). Values of type
 * SEGD_T_NONE are skipped; other values must be well formed (the caller checked the
 * pointers). Returns the row, SEGD_ENOTFOUND for a bad type or property index,
 * SEGD_ECONFLICT for a value of another type than its property, SEGD_ELIMIT when the
 * type's log holds 2^32 - 2 rows; on error nothing changes. */
int64_t events_append(events *ev, strpool *pool, person_id person, int type, int64_t time_ms,
                      size_t n, const int *props, const segd_value *vals);

/* Number of a person's events of a type (0 for a bad type). */
uint32_t events_person_count(const events *ev, person_id person, int type);

/* Up to cap of the person's events, newest first by time (ties: higher row, then higher
 * type first), into out; returns how many the person has in all. */
size_t events_person_list(const events *ev, person_id person, engine_event_ref *out, size_t cap);

/* Removes all of a person's events: their rows become holes (person PERSON_NONE, time
 * 0, property values cleared and their string references dropped). */
void events_person_erase(events *ev, strpool *pool, person_id person);

/* Gives all of `from`'s events to `into`, merging the chains in row order. */
void events_person_move(events *ev, person_id from, person_id into);

/* Columns of a type for scans (0 / NULL for a bad type). Valid until the next append. */
uint32_t events_rows(const events *ev, int type);
const person_id *events_persons(const events *ev, int type);
const int64_t *events_times(const events *ev, int type);

/* Reads one property of one row; 1 if set, 0 if missing or out of range. */
int events_prop_get(const events *ev, int type, uint32_t row, int prop, segd_cell *out);

/* Scan access for filters. The property column of a type (NULL for a bad index); the
 * previous-row-of-the-same-person column of a type (NULL for a bad type); the person's
 * newest row of a type (EVENTS_NO_ROW when none): a chain is walked as
 * row = newest; row != EVENTS_NO_ROW; row = prevs[row], newest row first. All valid
 * until the next mutation. */
const column *events_prop_column(const events *ev, int type, int prop);
const uint32_t *events_prevs(const events *ev, int type);
uint32_t events_person_newest(const events *ev, person_id person, int type);

/* Zone map of a type's log: for each block of EVENTS_ZONE_ROWS rows, bounds on the times
 * of its rows (every live row's time is within [min, max]; erasures leave them wide), so
 * a time-window scan skips blocks wholly outside the window. Returns the number of
 * blocks ((rows + EVENTS_ZONE_ROWS - 1) / EVENTS_ZONE_ROWS) and sets the arrays, valid
 * until the next mutation. */
uint32_t events_zones(const events *ev, int type, const int64_t **min, const int64_t **max);

/* Shrinks every type's row arrays to its rows, its head table to load <= 0.75 (none
 * without heads), its property columns and catalogs, and the type array. O(size);
 * pointers from events_persons / events_times are invalid afterwards. */
void events_compact(events *ev);

/* Allocated bytes: rows, chains and heads into *event_bytes, property columns and
 * catalogs into *prop_bytes. */
void events_memory(const events *ev, size_t *event_bytes, size_t *prop_bytes);

/* Adds 1 to uses[code] for every code held by a property column. */
void events_count_uses(const events *ev, uint32_t *uses, uint32_t n_uses);

/* Checks catalogs, property columns, that the chains cover exactly the rows of live
 * people, in descending row order, with the counts of their heads, that holes hold
 * nothing, and that every head's person is live per person_live(ctx, person).
 * Returns 0, or -1 after printing the first violation. */
int events_check(const events *ev, const strpool *pool,
                 int (*person_live)(const void *ctx, person_id person), const void *ctx);

#endif
