/* filter.h - the filter tree: the People search language, and what a segment saves.
 *
 * Owns the tree (groups, attribute / event / bucket / segment conditions), its two
 * spellings (JSON: json.c; the text form for humans and the CLI: text.c), binding to an
 * engine's catalog (bind.c), evaluation over the engine (eval.c) and compilation to SQL
 * for the differential oracle (sql.c). Knows nothing of HTTP or of segments: a segment
 * condition is answered through a filter_resolver that the caller passes in.
 * Workload: a filter is parsed once and evaluated many times (every search page, every
 * write that may change a segment's members), so parsing may allocate freely and
 * evaluation must not.
 *
 * Ownership: a tree is one filter_node and everything below it; every string and array
 * in it belongs to the tree; filter_free frees it all. Parsers return a new tree the
 * caller frees; printers return a new string the caller frees with free().
 *
 * Life of a filter: parse (JSON or text; syntax and values checked, no catalog needed)
 * -> filter_bind (names resolved against an engine, operators checked against types;
 * fills the bound fields) -> evaluate. A bound tree is valid for evaluation until the
 * engine's catalog changes (an attribute dropped or declared): bind again then.
 */
#ifndef SEGD_FILTER_H
#define SEGD_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"
#include "../engine/engine.h"

typedef struct cJSON cJSON;

/* ---- the tree ---- */

typedef enum filter_kind {
    FILTER_AND = 1,     /* every child matches; no children matches everyone */
    FILTER_OR,          /* some child matches; no children matches no one */
    FILTER_NOT,         /* exactly one child, plain (two-valued) negation */
    FILTER_ATTRIBUTE,   /* {"attribute": NAME, "op": OP, "value": V} */
    FILTER_PROPERTY,    /* {"property": NAME, ...}: only inside an event's where */
    FILTER_EVENT,       /* {"event": NAME, "where", "within", "metric", "op", "value"} */
    FILTER_BUCKET,      /* {"bucket": {"salt", "from", "to"}} */
    FILTER_SEGMENT,     /* {"segment": ID, "op": "in" | "not_in" | "in_cached"} */
} filter_kind;

/* Operators. Which ones fit which type: filter_op_fits(). Names as in JSON
 * (filter_op_name). */
typedef enum filter_op {
    FOP_NONE = 0,
    FOP_EQ, FOP_NE,
    FOP_CONTAINS, FOP_NOT_CONTAINS, FOP_STARTS_WITH, FOP_ENDS_WITH,
    FOP_IN, FOP_NOT_IN,                 /* also the segment ops "in" / "not_in" */
    FOP_IS_SET, FOP_IS_NOT_SET,
    FOP_GT, FOP_GTE, FOP_LT, FOP_LTE, FOP_BETWEEN,
    FOP_BEFORE, FOP_AFTER, FOP_MORE_THAN_AGO, FOP_LESS_THAN_AGO, FOP_ON_DAY,
    FOP_IS_EMPTY, FOP_IS_NOT_EMPTY,
    FOP_IN_CACHED,                      /* segments only */
    FOP_COUNT_
} filter_op;

/* Event metrics. Over zero matching events COUNT, SUM and COUNT_DISTINCT are 0;
 * AVG, MIN, MAX, FIRST_AT and LAST_AT are missing. */
typedef enum filter_fn {
    FFN_COUNT = 0,      /* the default */
    FFN_SUM, FFN_AVG, FFN_MIN, FFN_MAX,   /* of a numeric property */
    FFN_COUNT_DISTINCT,                   /* of any property */
    FFN_FIRST_AT, FFN_LAST_AT,            /* event time; datetime operators */
    FFN_COUNT_
} filter_fn;

/* A literal as written. Strings in the JSON or text form that an operator reads as a
 * datetime, a date or a duration are parsed when the tree is parsed, into time_ms. */
typedef enum filter_lit_kind {
    FLIT_STRING = 1,
    FLIT_NUMBER,
    FLIT_BOOL,
} filter_lit_kind;

typedef struct filter_literal {
    filter_lit_kind kind;
    char *str;          /* STRING: owned, NUL-terminated (no NUL inside: the parsers refuse it) */
    size_t len;
    double number;      /* NUMBER */
    int boolean;        /* BOOL: 0 or 1 */
    int64_t time_ms;    /* STRING read as a datetime (before, after, between on datetimes) or
                           as a date (on_day: the day's start at the node's offset) */
    int is_time;        /* 1 when time_ms holds such a parsed value */
    char *folded;       /* bound: the case-folded string that case-insensitive string and
                           list conditions compare (owned), NULL otherwise */
    size_t folded_len;
} filter_literal;

/* The time window of an event condition. */
typedef enum filter_window_kind {
    FWIN_ALL = 0,       /* every event */
    FWIN_WITHIN,        /* "within": "14d": now - within_ms <= t <= now */
    FWIN_RANGE,         /* {"from": A, "to": B}: A <= t < B */
} filter_window_kind;

typedef struct filter_node filter_node;

struct filter_node {
    filter_kind kind;

    /* AND, OR: n_children >= 0; NOT: exactly 1 */
    filter_node **children;
    uint32_t n_children;

    /* ATTRIBUTE, PROPERTY: the name; EVENT: the event type; SEGMENT: the segment id;
     * BUCKET: the salt. Owned, NUL-terminated. */
    char *name;

    /* ATTRIBUTE, PROPERTY, EVENT (compares the metric), SEGMENT */
    filter_op op;
    int case_sensitive;         /* string ops: 1 with "case": "sensitive" */
    filter_literal *values;     /* eq..lte, before, after: 1; between: 2 (low, high);
                                   in, not_in: >= 1; on_day: 1 (the date);
                                   more_than_ago, less_than_ago: 1 (the duration text);
                                   is_set, is_not_set, is_empty, is_not_empty: 0 */
    uint32_t n_values;
    int64_t duration_ms;        /* more_than_ago, less_than_ago */
    int32_t offset_min;         /* on_day: fixed UTC offset in minutes (0 = UTC) */

    /* EVENT */
    filter_node *where;         /* NULL: every event of the type; else a tree of AND, OR,
                                   NOT and PROPERTY nodes */
    filter_window_kind window;
    int64_t within_ms;          /* FWIN_WITHIN */
    int64_t from_ms, to_ms;     /* FWIN_RANGE */
    filter_fn fn;
    char *metric_property;      /* SUM..COUNT_DISTINCT: the property; NULL otherwise */

    /* BUCKET: [bucket_from, bucket_to] within 0..99 */
    int bucket_from, bucket_to;

    /* Bound by filter_bind (-1 / SEGD_T_NONE before): */
    int index;                  /* ATTRIBUTE: attribute index; PROPERTY: property index
                                   within the enclosing event's type; EVENT: event type */
    int metric_prop;            /* EVENT: property index of metric_property, or -1 */
    segd_type type;             /* ATTRIBUTE, PROPERTY: its type; EVENT: the metric's
                                   value type (NUMBER, or DATETIME for first_at/last_at) */
    uint64_t metric_key;        /* EVENT: a hash of what its metric reads (type, metric,
                                   property, window, where) without op and value, so that
                                   "count(purchase) >= 1" and ">= 3" share one computation
                                   through a filter_cache; 0 before binding */
    uint64_t rows_key;          /* EVENT: a hash of the type and where only: conditions
                                   that differ in window or metric share the person's
                                   matching events through a filter_cache; 0 before binding */
};

/* Limits on a tree; a field of 0 takes the default. */
typedef struct filter_limits {
    uint32_t max_depth;         /* nesting of groups, where included; default 32 */
    uint32_t max_nodes;         /* nodes in the tree; default 1000 */
    uint32_t max_values;        /* values of one in / not_in; default 1000 */
} filter_limits;

#define FILTER_DEFAULT_MAX_DEPTH 32
#define FILTER_DEFAULT_MAX_NODES 1000
#define FILTER_DEFAULT_MAX_VALUES 1000

/* Stable names. filter_op_name: the JSON spelling ("eq", "not_in", "in_cached", ...),
 * "" for FOP_NONE; filter_op_parse: the op for a name, FOP_NONE if unknown.
 * filter_fn_name / filter_fn_parse likewise ("count", "sum", ..., FFN_COUNT_ if unknown). */
const char *filter_op_name(filter_op op);
filter_op filter_op_parse(const char *name, size_t len);
const char *filter_fn_name(filter_fn fn);
filter_fn filter_fn_parse(const char *name, size_t len);

/* 1 if op applies to a value of `type` (attribute or property type, or the metric's
 * type for an event condition: NUMBER or DATETIME), else 0. */
int filter_op_fits(filter_op op, segd_type type);

/* Writes the JSON names of the operators that fit `type`, comma-separated, into buf
 * (for error messages that list what would fit). Returns buf. */
char *filter_ops_for_type(segd_type type, char *buf, size_t cap);

/* ---- building and freeing ---- */

/* A new zeroed node of a kind (index and metric_prop -1, type SEGD_T_NONE). Never
 * NULL (allocation failure aborts). */
filter_node *filter_node_new(filter_kind kind);

/* Appends child to an AND / OR / NOT node; the parent owns it afterwards. */
void filter_node_add(filter_node *parent, filter_node *child);

/* Frees a tree. filter_free(NULL) is a no-op. */
void filter_free(filter_node *n);

/* A deep copy of a tree, bound fields included. Never NULL for a non-NULL tree. */
filter_node *filter_clone(const filter_node *n);

/* 1 if two trees are the same filter as written (bound fields ignored), else 0. */
int filter_equal(const filter_node *a, const filter_node *b);

/* Checks a tree's shape (kinds, child counts, values per operator, ranges) as the
 * parsers guarantee it. Returns 0, or -1 after printing the first violation to stderr.
 * Tests call it on every parsed and cloned tree. */
int filter_check(const filter_node *n);

/* ---- JSON (json.c) ---- */

/* Parses the JSON filter contract (docs/FILTERS.md) from a cJSON tree. Checks the
 * shape, operator names, values (numbers, datetimes, dates, durations), the limits
 * (lim NULL: defaults), but not names against a catalog. Returns a new tree, or NULL
 * with err set: 422 `invalid_filter` (shape), `invalid_value` (a malformed value,
 * duration or date), `unknown_operator`, `filter_too_large`; err->field is the JSON
 * path of the bad node, such as "$.and[1].where.value". */
filter_node *filter_parse_json(const cJSON *json, const filter_limits *lim, segd_error *err);

/* A filter as an API body carries it: a JSON object (filter_parse_json) or a string in
 * the text form (filter_parse_text). Anything else (or NULL) is 422 `invalid_filter`
 * with field "filter". */
filter_node *filter_parse_value(const cJSON *v, const filter_limits *lim, segd_error *err);

/* The same from JSON text (invalid JSON: 400 `invalid_json` with err->at the byte
 * offset). */
filter_node *filter_parse_json_text(const char *text, size_t len, const filter_limits *lim,
                                    segd_error *err);

/* The canonical JSON form of a tree: keys in a fixed order, defaults left out (metric
 * count, case insensitive, no window), datetimes as "YYYY-MM-DDThh:mm:ss.mmmZ",
 * durations in the largest whole unit of d, h, m, s (key order: json.c). A number that
 * cJSON would print inexactly is a raw item (cJSON_IsRaw) holding its exact text.
 * parse(print(t)) equals t. Returns a new cJSON tree the caller frees with cJSON_Delete;
 * allocation failure aborts. */
cJSON *filter_to_json(const filter_node *n);

/* filter_to_json printed without spaces; a new string the caller frees. */
char *filter_print_json(const filter_node *n);

/* Shared by json.c and text.c, so both spellings read values alike. */

/* Durations: a whole number and a unit s, m, h, d or w ("30d"), positive, at most
 * FILTER_MAX_DURATION_MS. Returns 0 and sets *ms, or SEGD_EINVAL. */
#define FILTER_MAX_DURATION_MS (100000LL * 86400000LL)
int filter_duration_parse(const char *s, size_t len, int64_t *ms);

/* Writes ms (a positive multiple of 1000) in the largest whole unit of d, h, m, s
 * ("14d", "36h", "90s") into buf of FILTER_DURATION_LEN bytes. Returns buf. */
#define FILTER_DURATION_LEN 32
char *filter_duration_format(int64_t ms, char *buf);

/* The shortest text that reads back as exactly x (a JSON number; integers below 1e17
 * without an exponent: "500", "0.1", "1e+20") into buf of FILTER_NUMBER_LEN bytes.
 * x must be finite. Returns buf. */
#define FILTER_NUMBER_LEN 40
char *filter_format_number(double x, char *buf);

/* x as a cJSON item that prints exactly (cJSON 1.7.15 prints "%1.15g" when it reads back
 * within an epsilon, which can lose the last bits: such numbers become raw items holding
 * filter_format_number's text). Every number segd prints to a client or the store goes
 * through here. Never NULL. */
cJSON *filter_number_json(double x);

/* Replaces, in a parsed JSON tree, every number cJSON would not print exactly by such a
 * raw item. Returns how many it replaced. */
int filter_exact_numbers(cJSON *tree);

/* on_day offsets: "+hh:mm" or "-hh:mm" (hh 00..23, mm 00..59). Returns 0 and sets
 * *minutes, or SEGD_EINVAL. filter_offset_format writes "+02:00" into buf of 8 bytes. */
int filter_offset_parse(const char *s, size_t len, int32_t *minutes);
char *filter_offset_format(int32_t minutes, char *buf);

/* Checks a condition node's values against its operator as both parsers read them, and
 * completes them: datetimes parsed into time_ms (is_time 1, text made canonical), an
 * on_day date into its day start at offset_min, a duration into duration_ms (text made
 * canonical); "case" and "offset" only where they apply. The node holds kind, op, fn,
 * case_sensitive, offset_min and the literals as written. Returns 0, or a negative code
 * with err set (422 `invalid_value`, `invalid_filter`, `unknown_operator` or
 * `operator_mismatch`; err->field and err->at left to the caller) and *bad the index of
 * the value at fault, or -1 when the operator or the node is. */
int filter_condition_finish(filter_node *n, int *bad, segd_error *err);

/* ---- text form (text.c; grammar in docs/FILTERS.md) ---- */

/* Parses the text form. Returns a new tree, or NULL with err set: 422 `filter_syntax`
 * with err->at the byte offset and a message "line L, column C: expected ..." (plus the
 * same value errors as the JSON parser). */
filter_node *filter_parse_text(const char *text, size_t len, const filter_limits *lim,
                               segd_error *err);

/* The text form of a tree; parse_text(print_text(t)) equals t. A new string the
 * caller frees. */
char *filter_print_text(const filter_node *n);

/* ---- segments, through the caller (DESIGN.md: filter knows nothing of segments) ---- */

typedef struct filter_resolver {
    void *ctx;
    /* 0 if the segment exists and the caller may see it, else SEGD_ENOTFOUND. */
    int (*check)(void *ctx, const char *segment_id);
    /* Sets in out (words of 64 people, covering [0, engine_person_limit)) the bits of
     * the segment's current members (cached 0) or of its last snapshot (cached 1).
     * out is zeroed by the caller. Returns 0 or a negative SEGD_E* code. */
    int (*members)(void *ctx, const char *segment_id, int cached, uint64_t *out, uint32_t limit);
    /* 1 if the person is a member (current or snapshot), 0 if not, negative on error. */
    int (*is_member)(void *ctx, const char *segment_id, int cached, person_id id);
} filter_resolver;

/* ---- binding (bind.c) ---- */

/* Resolves a tree's names against the engine's catalog and checks each operator and
 * value against the type it applies to; fills the bound fields. resolver may be NULL
 * (then a segment condition is 422 `unknown_segment`). Errors (err->field the JSON
 * path): 422 `unknown_attribute` / `unknown_event` / `unknown_property` naming it and
 * the closest known names, `unknown_segment`, `operator_mismatch` listing the
 * operators that fit, `value_mismatch` (a value of another type than the attribute's).
 * Returns 0 or the negative code of err. Reads the engine: hold its read lock. */
int filter_bind(filter_node *n, const engine *e, const filter_resolver *resolver,
                segd_error *err);

/* ---- evaluation (eval.c) ---- */

/* What an evaluation reads: the engine (read lock held by the caller), the clock that
 * time-relative conditions use ("within", more_than_ago, ...: tests set it), and the
 * segment resolver (NULL when the tree has no segment condition). */
typedef struct filter_cache filter_cache;

typedef struct filter_env {
    const engine *e;
    int64_t now_ms;
    const filter_resolver *resolver;
    filter_cache *cache;        /* optional: shares event metrics between the trees
                                   evaluated for one person at one moment */
} filter_env;

/* A memo of event metrics for filter_match, filter_explain and filter_next_change:
 * many segments read the same metric of the same events with other thresholds, and a
 * write re-checks them all for one person at one moment. Entries are keyed by
 * metric_key and belong to one (person, moment, engine state): the cache forgets them
 * by itself when asked about another person or moment, and the caller resets it after
 * the engine changes. Not for filter_eval (which scans everyone). */
filter_cache *filter_cache_new(void);
void filter_cache_free(filter_cache *c);
void filter_cache_reset(filter_cache *c);

/* Words of a people set over [0, engine_person_limit): bit (id & 63) of word id >> 6. */
size_t filter_words(const engine *e);

/* Evaluates a bound tree over everyone: sets in out (filter_words(env->e) words; the
 * function overwrites them) exactly the live people who match. Returns 0, or a negative
 * code from the resolver. Allocates scratch of O(people) for event conditions. */
int filter_eval(const filter_node *n, const filter_env *env, uint64_t *out);

/* Evaluates a bound tree for one person, reading only that person's values and event
 * chains (what real-time segments run per write). Returns 1 (match), 0 (no match, also
 * for a person who does not exist) or a negative resolver code. */
int filter_match(const filter_node *n, const filter_env *env, person_id id);

/* Whether a person with no attributes and no events would match a bound tree: every
 * attribute missing, every metric over no events, in no bucket; a segment condition asks
 * blank_member(ctx, id, cached) for that segment's own answer. Such a person matches at
 * any time or none. What segments use to know which segments a new person can join
 * without sending anything they read ("not did(purchase)", "plan is not set"). */
int filter_match_blank(const filter_node *n, const filter_env *env, int (*blank_member)(void *ctx, const char *id, int cached),
                       void *ctx);

/* ---- time (eval.c): when answers change with no new data ---- */

/* 1 if the answer of tree n can change with time alone: it holds more_than_ago or
 * less_than_ago (on an attribute, a property inside where, or a first_at / last_at
 * metric) or an event condition with a "within" window. Absolute dates never move. */
int filter_time_relative(const filter_node *n);

/* The earliest moment after env->now_ms at which the answer of the bound tree n for
 * person id may change with no new data, or INT64_MAX when it cannot. At every moment
 * before it the answer is what it is now: a relative condition on a value t flips at
 * t + duration + 1 ms; an event enters a "within" window at its time and leaves it at
 * time + window + 1 ms. For groups, the earliest of their conditions' moments (the
 * group may not flip then: evaluate again and ask again). Reads only that person. */
int64_t filter_next_change(const filter_node *n, const filter_env *env, person_id id);

/* filter_next_change for everyone at once: out[p] (engine_person_limit entries) gets
 * each person's moment, INT64_MAX for none and for people who do not exist. Scans
 * columns and event logs once instead of walking each person's chains. Returns 0, or
 * SEGD_ENOMEM never (allocation failure aborts). */
int filter_next_changes(const filter_node *n, const filter_env *env, int64_t *out);

/* Why a person does or does not match: the tree in its canonical JSON form, where every
 * node also has "result" (true / false) and each condition "actual", the value it looked
 * at (the attribute's value, the metric over the matching events, the person's bucket;
 * null when missing), and event conditions "events", how many events passed the window
 * and where. *result is the whole filter's answer (1, 0, or a negative resolver code).
 * A new tree the caller frees with cJSON_Delete. */
cJSON *filter_explain(const filter_node *n, const filter_env *env, person_id id, int *result);

/* A value read from the engine as JSON (datetimes ISO 8601, lists arrays, missing
 * null). A new tree. */
cJSON *filter_cell_json(const engine *e, const segd_cell *c);

/* ---- pages of results (search.c) ---- */

#define FILTER_MAX_SORT_KEYS 3

/* One sort key: an attribute (string, number, datetime or boolean) and a direction.
 * People are ordered by the keys in turn, missing values last in either direction,
 * strings by their UTF-8 bytes, then by dense id ascending (a total order). */
typedef struct filter_sort {
    int attr;
    int desc;
} filter_sort;

/* A position in that order, decoded from a cursor: the keys of the last person of the
 * previous page and their id. Owns its strings: release with filter_after_release. */
typedef struct filter_after {
    int n_keys;
    struct {
        int missing;
        segd_type type;
        double number;
        int64_t time_ms;
        int boolean;
        char *str;
        size_t len;
    } keys[FILTER_MAX_SORT_KEYS];
    person_id id;
} filter_after;

/* Writes to out (room for limit) the first `limit` matching people (bits of matches,
 * filter_words(e) words) after `after` (NULL: from the start) in the order of sorts;
 * *more is set to 1 when more follow. Returns how many were written. O(matches x
 * log(limit)); allocates only the page. Caller holds the read lock. */
uint32_t filter_page(const engine *e, const uint64_t *matches, const filter_sort *sorts, int n_sorts,
                     const filter_after *after, uint32_t limit, person_id *out, int *more);

/* An opaque cursor (URL-safe base64, no padding) naming the position just after
 * person `last` in the order of sorts. A new string the caller frees. */
char *filter_cursor_encode(const engine *e, const filter_sort *sorts, int n_sorts, person_id last);

/* Decodes a cursor made by filter_cursor_encode for the same sort keys. Returns 0, or
 * SEGD_EINVAL with err 400 `invalid_cursor` (not a cursor of segd's, or one made for
 * another sort order). */
int filter_cursor_decode(const char *cursor, const engine *e, const filter_sort *sorts, int n_sorts,
                         filter_after *out, segd_error *err);

/* Frees the strings of a decoded position. */
void filter_after_release(filter_after *a);

/* ---- SQL, the second evaluator (sql.c) ---- */

typedef struct sqlite3 sqlite3;

/* Registers on a connection the SQL functions compiled filters call: segd_fold(text)
 * (base/fold.h, NULL for NULL) and segd_bucket(salt, user_id) (FNV-1a 64 of
 * salt ":" user_id, modulo 100; NULL for a NULL user_id). Every connection that reads
 * the oracle schema needs them (its expression indexes call segd_fold). Returns 0 or
 * SEGD_EIO. */
int filter_sql_register(sqlite3 *db);

/* Creates the oracle schema (sql.c's header comment) in an empty database and copies
 * into it everything the engine holds: live people and their attributes, list items,
 * live people's events with their properties; then builds the indexes and runs
 * ANALYZE. Registers the SQL functions on db. One transaction: on failure (SEGD_EIO,
 * the reason printed to stderr) nothing is left behind. Reads the engine: hold its
 * read lock. */
int filter_sql_load(sqlite3 *db, const engine *e);

/* Compiles a bound tree to an SQL boolean expression over the oracle schema (the people
 * row aliased `p`), with time-relative conditions at now_ms, implementing
 * docs/FILTERS.md independently of eval.c. The expression is 1 for a matching person
 * and 0 or NULL otherwise: use it as a WHERE clause (or wrap it in coalesce(.., 0)), as
 * in `SELECT id FROM people p WHERE <sql> ORDER BY id`. Returns a new string the
 * caller frees, or NULL for what the oracle does not answer: a segment condition, an
 * unbound node, count_distinct of a list property. */
char *filter_to_sql(const filter_node *n, const engine *e, int64_t now_ms);

#endif
