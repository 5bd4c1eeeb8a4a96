/* engine.h - the in-memory people database that filters scan.
 *
 * Owns: the people table (dense 32-bit ids, never reused, also after erasure), hash
 * indexes from user_id, anonymous id, lower-cased email and public id to a person,
 * attributes as typed columns with a null marker, a reference-counted string pool,
 * the event-type catalog and a columnar event log per event type.
 * Knows nothing of HTTP, JSON or SQLite: ingest/ feeds it, store/ is the truth it is
 * rebuilt from. Workload: millions of people, tens of millions of events, reads
 * (scans of whole columns, single-person lookups) far more common than writes.
 *
 * Threading: not thread-safe. The caller (ingest/) holds a reader-writer lock: one
 * writer at a time, readers only while no writer runs. Pointers returned by getters
 * are valid until the next mutating call.
 *
 * Errors: functions return 0 or a negative SEGD_E* code (base/error.h). Allocation
 * failure aborts (base/alloc.h), so a mutation that validated never half-applies.
 */
#ifndef SEGD_ENGINE_H
#define SEGD_ENGINE_H

#include <stddef.h>
#include <stdint.h>

typedef struct engine engine;

typedef uint32_t person_id;
#define PERSON_NONE UINT32_MAX

/* Value types of attributes and event properties. A type is fixed on first sight. */
typedef enum segd_type {
    SEGD_T_NONE = 0,   /* missing / null */
    SEGD_T_STRING,     /* dictionary-encoded through the string pool */
    SEGD_T_NUMBER,     /* double */
    SEGD_T_BOOL,
    SEGD_T_DATETIME,   /* milliseconds since 1970-01-01T00:00:00Z */
    SEGD_T_LIST,       /* list of strings (tags, groups, anonymous_ids) */
    SEGD_T_JSON,       /* any other JSON (arrays of objects...): kept as text, not filterable */
} segd_type;

/* Stable lower-case name of a type ("string", "number", "boolean", "datetime", "list",
 * "json"; "none" for SEGD_T_NONE). */
const char *segd_type_name(segd_type type);

/* Parses a type name as segd_type_name prints it; SEGD_T_NONE if unknown. */
segd_type segd_type_parse(const char *name);

/* A value handed TO the engine (C strings, owned by the caller; the engine interns
 * what it keeps). type SEGD_T_NONE means "clear". */
typedef struct segd_value {
    segd_type type;
    double number;                /* NUMBER */
    int64_t time_ms;              /* DATETIME */
    int boolean;                  /* BOOL: 0 or 1 */
    const char *str;              /* STRING, JSON: UTF-8, need not be NUL-terminated */
    size_t str_len;
    const char *const *items;     /* LIST: n_items strings, NUL-terminated */
    size_t n_items;
} segd_value;

/* A value read FROM the engine. Strings are pool codes: resolve with engine_string().
 * `codes` points into the engine and is valid until the next mutation. */
typedef struct segd_cell {
    segd_type type;               /* SEGD_T_NONE when missing */
    double number;
    int64_t time_ms;
    int boolean;
    uint32_t code;                /* STRING, JSON */
    const uint32_t *codes;        /* LIST */
    uint32_t n_codes;
} segd_cell;

typedef struct engine_limits {
    uint32_t max_attributes;      /* default 1000 */
    uint32_t max_event_types;     /* default 1000 */
    uint32_t max_properties;      /* per event type, default 100 */
} engine_limits;

/* Standard attributes, declared by engine_new at these indexes in this order.
 * user_id, email and anonymous_ids feed the identity indexes. */
enum {
    ATTR_USER_ID = 0,        /* string, unique among people */
    ATTR_ANONYMOUS_IDS,      /* list, each id unique among people */
    ATTR_EMAIL,              /* string, indexed lower-cased (Unicode case folding) */
    ATTR_NAME,               /* string */
    ATTR_PHONE,              /* string */
    ATTR_COUNTRY,            /* string */
    ATTR_CITY,               /* string */
    ATTR_CREATED_AT,         /* datetime */
    ATTR_LAST_SEEN,          /* datetime */
    ATTR_TAGS,               /* list */
    ATTR_STANDARD_COUNT
};

/* Creates an empty engine with the standard attributes declared. limits NULL means
 * defaults, and so does a field of 0; max_attributes counts the standard ones (and is
 * raised to ATTR_STANDARD_COUNT if lower). Never returns NULL (allocation failure
 * aborts). Free with engine_free. */
engine *engine_new(const engine_limits *limits);

/* Sizes the engine ahead for `people` people and `strings` distinct strings, so that a
 * rebuild of a known size never regrows (and rehashes) the identity indexes (public
 * id, user_id, email) or the string pool's entry array and index. A hint, never
 * required: more still fit (the tables then grow as usual); a hint at or below what
 * the engine holds changes nothing; never shrinks. Spare left by an over-estimate
 * (about 16 bytes a person and 35 a string) stays allocated until engine_compact, so
 * count, do not guess high: typical people have 3 to 5 strings of their own (user_id,
 * email, name, phone), and values that people share (countries, plans) count once.
 * Call it before loading: reserving a non-empty engine rehashes what it holds.
 * Invalidates pointers from earlier getters; cannot fail (allocation failure aborts). */
void engine_reserve(engine *e, uint32_t people, uint32_t strings);

/* Frees the engine and everything it owns. engine_free(NULL) is a no-op. */
void engine_free(engine *e);

/* ---- strings ---- */

/* The bytes of a pool string (NUL-terminated; *len set if len != NULL), or NULL for an
 * unknown code. Like every getter's pointer, valid until the next mutating call (short
 * strings live in the pool's entry array, which interning a new string may move):
 * copy the bytes before handing them back to a setter along with new strings. */
const char *engine_string(const engine *e, uint32_t code, size_t *len);

/* The code of an already-interned string, or UINT32_MAX when the pool does not hold it
 * (then no stored value equals it). Does not add a reference. */
uint32_t engine_string_find(const engine *e, const char *s, size_t len);

/* ---- people ---- */

/* Appends a new person with the given public id (random, nonzero, unique: the caller
 * draws it) and returns its dense id; PERSON_NONE (nothing created) if the public id is
 * 0 or already used, or the ids are exhausted. */
person_id engine_person_create(engine *e, uint64_t public_id);

/* Re-creates a person at a known dense id while rebuilding from the store (ids may have
 * gaps left by erasures; later creations continue after the highest id seen).
 * Returns SEGD_ECONFLICT if the id or the public id is taken, SEGD_EINVAL for id
 * PERSON_NONE or public id 0. */
int engine_person_restore(engine *e, person_id id, uint64_t public_id);

/* 1 if the person exists (created and not erased), else 0. */
int engine_person_exists(const engine *e, person_id id);

/* Number of live people. */
uint32_t engine_person_count(const engine *e);

/* One past the highest dense id ever assigned: scans run over [0, limit). */
person_id engine_person_limit(const engine *e);

/* The person's public id (0 if the person does not exist). */
uint64_t engine_person_public_id(const engine *e, person_id id);

/* Lookups by identity; PERSON_NONE when nobody matches. Strings need not be
 * NUL-terminated. Email matching is case-insensitive (Unicode case folding plus NFC);
 * emails need not be unique, and the lookup answers the lowest live id having it. */
person_id engine_person_by_public_id(const engine *e, uint64_t public_id);
person_id engine_person_by_user_id(const engine *e, const char *s, size_t len);
person_id engine_person_by_anonymous_id(const engine *e, const char *s, size_t len);
person_id engine_person_by_email(const engine *e, const char *s, size_t len);

/* Erasure: clears every attribute and event of the person, removes them from every
 * index and drops their string references. The dense id is never reused.
 * Returns SEGD_ENOTFOUND if the person does not exist. */
int engine_person_erase(engine *e, person_id id);

/* Merges person `from` into person `into`: from's events become into's, from's
 * anonymous ids are added to into's, each attribute set on `from` but missing on
 * `into` is copied (into's values win), then `from` is erased.
 * Returns SEGD_ENOTFOUND if either does not exist, SEGD_EINVAL if they are the same. */
int engine_person_merge(engine *e, person_id from, person_id into);

/* ---- attributes ---- */

/* Number of attribute slots (dropped attributes leave a slot whose name is NULL). */
int engine_attr_slots(const engine *e);

/* Index of a live attribute by exact name, or -1. */
int engine_attr_find(const engine *e, const char *name);

/* Declares an attribute. Returns its index (>= 0), the existing index if it exists with
 * the same type, SEGD_ECONFLICT if it exists with another type, SEGD_ELIMIT past
 * max_attributes, SEGD_EINVAL for an empty name or a type of SEGD_T_NONE. */
int engine_attr_declare(engine *e, const char *name, segd_type type);

/* Name and type of an attribute slot; NULL / SEGD_T_NONE for a dropped or bad index. */
const char *engine_attr_name(const engine *e, int attr);
segd_type engine_attr_type(const engine *e, int attr);

/* Number of people with a value for the attribute. */
uint32_t engine_attr_count_set(const engine *e, int attr);

/* Removes an attribute from everyone and frees its name (the way to change a type).
 * SEGD_EINVAL for a standard attribute, SEGD_ENOTFOUND for a bad index. */
int engine_attr_drop(engine *e, int attr);

/* Sets (or with v == NULL or v->type == SEGD_T_NONE clears) a person's value.
 * Returns SEGD_ECONFLICT if v's type differs from the attribute's, or if the value
 * would give a user_id / anonymous id that another person has; SEGD_ENOTFOUND for a
 * missing person or attribute, SEGD_EINVAL for a malformed value (NULL string with a
 * length, NULL list item). Identity indexes follow automatically. Lists are stored
 * de-duplicated (first occurrence kept); an empty list is a value, not a clear. */
int engine_attr_set(engine *e, person_id id, int attr, const segd_value *v);

/* Reads a person's value into *out. Returns 1 if set, 0 if missing (out->type NONE). */
int engine_attr_get(const engine *e, person_id id, int attr, segd_cell *out);

/* ---- events ---- */

/* Index of an event type by exact name, or -1. */
int engine_event_type_find(const engine *e, const char *name);

/* Declares an event type; returns its index, the existing one, SEGD_ELIMIT, or
 * SEGD_EINVAL for an empty name. */
int engine_event_type_declare(engine *e, const char *name);

/* Number of event types; name of one (NULL for a bad index). */
int engine_event_type_count(const engine *e);
const char *engine_event_type_name(const engine *e, int type);

/* Live events of a type (erased people's events are not counted). */
uint64_t engine_event_type_events(const engine *e, int type);

/* Properties of an event type: find by name (-1 if absent), declare (index, existing
 * index, SEGD_ECONFLICT on another type, SEGD_ELIMIT past max_properties), count, name,
 * type. */
int engine_prop_find(const engine *e, int type, const char *name);
int engine_prop_declare(engine *e, int type, const char *name, segd_type ptype);
int engine_prop_count(const engine *e, int type);
const char *engine_prop_name(const engine *e, int type, int prop);
segd_type engine_prop_type(const engine *e, int type, int prop);

/* Appends an event of `type` at time_ms for a person with n property values
 * (props[i] is a declared property index of that type, vals[i] its value; types must
 * match: SEGD_ECONFLICT otherwise, and nothing is appended; a value of type
 * SEGD_T_NONE leaves that property missing). Returns the row within the type's log
 * (>= 0) or a negative code: SEGD_ENOTFOUND for a missing person, type or property
 * index, SEGD_EINVAL for a malformed value, SEGD_ELIMIT at 2^32 - 2 rows. */
int64_t engine_event_append(engine *e, person_id id, int type, int64_t time_ms,
                            size_t n, const int *props, const segd_value *vals);

/* Appends holes (rows of no one, as erasure leaves) to a type's log until it has
 * `rows` rows, so that a rebuild gives every event the row the store keys it by.
 * Returns 0, SEGD_ENOTFOUND for a bad type, SEGD_EINVAL if the log already has more. */
int engine_event_pad(engine *e, int type, uint32_t rows);

/* A reference to one event: its type and row in that type's log. */
typedef struct engine_event_ref {
    int type;
    uint32_t row;
    int64_t time_ms;
} engine_event_ref;

/* Number of the person's events of one type (0 for a bad type or person). */
uint32_t engine_person_event_count(const engine *e, person_id id, int type);

/* Writes up to cap of the person's events, newest first by time (ties: newest row
 * first, then the higher type index), into out and returns how many the person has in
 * all (may exceed cap). */
size_t engine_person_events(const engine *e, person_id id, engine_event_ref *out, size_t cap);

/* Columns of a type's log for scans: rows, person per row (PERSON_NONE for an erased
 * person's row) and time per row. Valid until the next mutation. */
uint32_t engine_event_rows(const engine *e, int type);
const person_id *engine_event_persons(const engine *e, int type);
const int64_t *engine_event_times(const engine *e, int type);

/* Reads one property of one event; returns 1 if set, 0 if missing. */
int engine_event_prop_get(const engine *e, int type, uint32_t row, int prop, segd_cell *out);

/* ---- scans (filters read columns page by page) ---- */

#define ENGINE_PAGE_ROWS 1024u    /* rows per column page; page p holds rows [p*1024, p*1024+1024) */
#define ENGINE_NO_ROW UINT32_MAX  /* end of a person's chain of events */

/* One page of a column, read-only, valid until the next mutation. Bit i of present
 * (ENGINE_PAGE_ROWS bits) says whether row first_row + i has a value; values is laid
 * out by type: uint32_t pool codes (STRING, JSON), double (NUMBER), int64_t
 * milliseconds (DATETIME), uint64_t bit words (BOOL), and for LIST one
 * `const uint32_t *` per row pointing at [n, code_1 .. code_n] (NULL when missing).
 * Missing slots hold zero. */
typedef struct engine_page {
    uint32_t first_row;
    uint32_t n_set;
    const uint64_t *present;
    const void *values;
} engine_page;

/* Pages of an attribute's column (0 for a bad index): rows past
 * pages * ENGINE_PAGE_ROWS have no value. */
uint32_t engine_attr_pages(const engine *e, int attr);

/* Fills *out with page `page` of an attribute's column; returns 1, or 0 (out zeroed
 * except first_row) when that page holds no value or the index is bad. */
int engine_attr_page(const engine *e, int attr, uint32_t page, engine_page *out);

/* The live-people mask, page by page: present bits are the live people, values their
 * public ids (uint64 bits stored as int64). */
uint32_t engine_people_pages(const engine *e);
int engine_people_page(const engine *e, uint32_t page, engine_page *out);

/* An event property's column, page by page over the type's rows (same contract). */
uint32_t engine_prop_pages(const engine *e, int type, int prop);
int engine_prop_page(const engine *e, int type, int prop, uint32_t page, engine_page *out);

/* The item index of a list attribute (tags, groups): the number of distinct items, or
 * -1 when the attribute keeps none (not a list, or too many distinct items: see
 * column.h). engine_list_item_people returns the i-th item's pool code and, when words
 * is not NULL, ORs the people whose list holds it into words (filter_words-sized). */
int64_t engine_list_items(const engine *e, int attr);
uint32_t engine_list_item_people(const engine *e, int attr, uint32_t i, uint64_t *words);

/* One past the highest string-pool code: per-code scratch arrays (a memo of which
 * distinct strings match a condition) are sized by it. */
uint32_t engine_string_limit(const engine *e);

/* A person's events of one type, newest row first (rows are in arrival order, so not
 * necessarily newest time first): for (row = engine_person_event_newest(e, id, t);
 * row != ENGINE_NO_ROW; row = prevs[row]) with prevs = engine_event_prevs(e, t).
 * ENGINE_NO_ROW / NULL for a bad type or a person without such events. */
uint32_t engine_person_event_newest(const engine *e, person_id id, int type);
const uint32_t *engine_event_prevs(const engine *e, int type);

/* Time bounds of a type's log per block of ENGINE_ZONE_ROWS rows (see events.h): every
 * live row r has min[r / ENGINE_ZONE_ROWS] <= time <= max[r / ENGINE_ZONE_ROWS]. Returns
 * the number of blocks; NULL arrays and 0 for a bad type. */
#define ENGINE_ZONE_ROWS 1024u
uint32_t engine_event_zones(const engine *e, int type, const int64_t **min, const int64_t **max);

/* ---- accounting and invariants ---- */

typedef struct engine_memory {
    size_t people_bytes;     /* person table, attribute columns, identity indexes */
    size_t string_bytes;     /* distinct strings and the pool's own tables */
    size_t event_bytes;      /* person, time and chain columns, per-person heads */
    size_t property_bytes;   /* event property columns */
    uint64_t events;         /* live events */
    uint32_t people;         /* live people */
    uint32_t strings;        /* distinct live strings */
} engine_memory;

/* Shrinks every growable array and hash table of the engine to fit what it holds:
 * event columns (person, time, chain), property columns, page directories, index
 * tables (per-type event heads, identity indexes, catalogs: to the fewest slots that
 * keep the load <= 0.75, i.e. near but not over it) and the string pool's tables.
 * Growth leaves up to 1.5x spare, so callers run it after the rebuild at start and
 * after a bulk import, and memory is then what the data needs (the next insert into a
 * full-to-0.75 table regrows it x1.5). Changes nothing but memory and where arrays
 * live: like a mutation, it invalidates pointers from earlier getters. O(size of the
 * engine); cannot fail (allocation failure aborts). */
void engine_compact(engine *e);

/* Fills *out with what the engine holds, in allocated bytes. */
void engine_memory_usage(const engine *e, engine_memory *out);

/* Checks every invariant (indexes agree with columns, chains cover exactly each
 * person's events, string reference counts equal their uses). Returns 0, or
 * SEGD_EINVAL after printing the first violation to stderr. Tests call it after
 * every mutation; it is O(size of the engine). */
int engine_check(const engine *e);

#endif
