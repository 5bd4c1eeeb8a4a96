/* column.h - one typed column: a value per row (person or event row) plus a null marker.
 *
 * Owns the values of one attribute or event property, stored by type: strings and
 * JSON as uint32 pool codes, numbers as double, datetimes as int64 milliseconds,
 * booleans as a bitset, lists as a per-row heap array of codes. Rows live in pages of
 * COLUMN_PAGE_ROWS, each with a "present" bitset (the null marker) and a count; a page
 * with no value is not allocated, so a sparse custom attribute costs only the pages it
 * touches and a dense one at most one partly used page. Holds references on the pool
 * codes it stores; knows nothing of names, identity indexes or which rows are live.
 * Workload: whole-column scans and single-row reads far more common than writes.
 */
#ifndef SEGD_ENGINE_COLUMN_H
#define SEGD_ENGINE_COLUMN_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "strpool.h"

#define COLUMN_PAGE_SHIFT 10
#define COLUMN_PAGE_ROWS (1u << COLUMN_PAGE_SHIFT)
#define COLUMN_NONE UINT32_MAX   /* "no row" for column_next */

typedef struct column_page column_page;
typedef struct column_items column_items;

typedef struct column {
    segd_type type;         /* fixed at init; never SEGD_T_NONE */
    uint32_t n_set;         /* rows with a value */
    uint32_t n_pages;       /* directory entries in use (an entry may be NULL) */
    uint32_t pages_alloc;   /* non-NULL pages */
    size_t dir_cap;
    column_page **pages;    /* row >> COLUMN_PAGE_SHIFT -> page or NULL */
    size_t list_bytes;      /* heap bytes of list cells (allocator block sizes) */
    column_items *items;    /* each distinct value's rows, or NULL (see column_index_items) */
    int items_mode;         /* COLUMN_ITEMS_NONE, _ON or _DROPPED */
} column;

enum { COLUMN_ITEMS_NONE = 0, COLUMN_ITEMS_ON, COLUMN_ITEMS_DROPPED };

/* Initialises an empty column of `type` (no allocation). */
void column_init(column *c, segd_type type);

/* Drops every value (string references go back to pool) and frees the pages. */
void column_release(column *c, strpool *pool);

/* 1 if row has a value, else 0 (also for rows past the end). */
int column_has(const column *c, uint32_t row);

/* Reads row into *out (out->type SEGD_T_NONE when missing). Returns 1 if set, else 0.
 * For a list, out->codes points into the column: valid until the next write. */
int column_get(const column *c, uint32_t row, segd_cell *out);

/* The code stored at row of a STRING or JSON column, STRPOOL_NONE when missing. */
uint32_t column_code(const column *c, uint32_t row);

/* The value at row of a DATETIME column, 0 when missing. */
int64_t column_int64(const column *c, uint32_t row);

/* Stores v at row, replacing any value. v->type must equal the column's type (the
 * caller validated it; anything else aborts). Strings are interned; list items are
 * interned and de-duplicated, first occurrence kept. */
void column_set(column *c, uint32_t row, const segd_value *v, strpool *pool);

/* Stores a list of live codes at row of a LIST column (taking a new reference on each,
 * de-duplicating), replacing any value. */
void column_set_codes(column *c, uint32_t row, const uint32_t *codes, uint32_t n,
                      strpool *pool);

/* Copies the value at src_row to dst_row (new references), or clears dst_row when
 * src_row has none. */
void column_copy(column *c, uint32_t src_row, uint32_t dst_row, strpool *pool);

/* Clears row: drops its references, zeroes its slot, frees the page once empty. */
void column_clear(column *c, uint32_t row, strpool *pool);

/* The first row >= row that has a value, or COLUMN_NONE. For scans of set rows. */
uint32_t column_next(const column *c, uint32_t row);

/* Number of page directory entries: rows [0, column_pages * COLUMN_PAGE_ROWS) may hold
 * values. For scans that walk pages instead of rows. */
uint32_t column_pages(const column *c);

/* A read-only view of one page for scans: its count of values, present bits
 * (COLUMN_PAGE_ROWS bits) and values area (layout by type: uint32 codes for STRING and
 * JSON, double for NUMBER, int64 for DATETIME, uint64 bit words for BOOL, and for LIST
 * one `const uint32_t *` cell [n, codes...] per row, NULL when missing). Returns 1, or 0
 * with the view zeroed when the page holds no value. Valid until the next write. */
int column_page_view(const column *c, uint32_t page, uint32_t *n_set,
                     const uint64_t **present, const void **values);

/* The value index of a STRING or LIST column: for each distinct value (pool code; for
 * lists, each distinct item) the rows holding it, as a compressed bitmap, so
 * `plan = "pro"` or `tags contains "vip"` reads one bitmap instead of every row. Kept
 * while the values stay few: past COLUMN_ITEMS_MAX_DISTINCT distinct values that are
 * also more than one per COLUMN_ITEMS_PER_ROWS rows with a value (ids, e-mails, names
 * rather than labels), the index is dropped for good and filters scan the column. */
#define COLUMN_ITEMS_MAX_DISTINCT 4096
#define COLUMN_ITEMS_PER_ROWS 4

/* Turns the value index on for an empty STRING or LIST column (others: no effect).
 * The engine does it for attributes, not for event properties (whose scans are bounded
 * by windows and candidates, and which are written far more often). */
void column_index_items(column *c);

/* Number of distinct values of an indexed column, or -1 when it keeps no index. */
int64_t column_items_count(const column *c);

/* The i-th distinct item (0 <= i < column_items_count): returns its pool code and, when
 * words is not NULL, ORs the rows holding it into words (bit r of words[r / 64]; words
 * must cover every row). Order of items is arbitrary and changes with writes. */
uint32_t column_item_rows(const column *c, uint32_t i, uint64_t *words);

/* Shrinks the page directory to end at the last allocated page (none when the column
 * is empty). Pages and list cells are already exact. O(directory). */
void column_compact(column *c);

/* Allocated bytes (directory, pages, list cells). */
size_t column_memory(const column *c);

/* Adds 1 to uses[code] for every code the column stores (uses has n_uses entries). */
void column_count_uses(const column *c, uint32_t *uses, uint32_t n_uses);

/* Checks counts against the null markers, that missing slots are zero, that codes are
 * live and lists duplicate-free, and that no value sits at or past row_limit.
 * Returns 0, or -1 after printing the first violation (prefixed by `what`). */
int column_check(const column *c, const strpool *pool, uint32_t row_limit, const char *what);

#endif
