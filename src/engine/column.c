/* column.c - paged typed column with a null-marker bitset (column.h).
 *
 * A page is one heap block: a header (count, present bits) followed by the values of
 * COLUMN_PAGE_ROWS rows in the column's storage width. Missing slots are kept zero, so
 * a cleared value (an erased person's number, say) does not linger in memory.
 */
#include "column.h"
#include "fit.h"
#include "heapsize.h"
#include "u32map.h"
#include "../base/alloc.h"

#include <roaring/roaring.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_MASK (COLUMN_PAGE_ROWS - 1)
#define PAGE_WORDS (COLUMN_PAGE_ROWS / 64)

struct column_page {
    uint32_t n_set;
    uint32_t reserved;
    uint64_t present[PAGE_WORDS];
    /* values follow: see page_values() */
};

/* Bytes of the values area of a page for a type. */
static size_t values_bytes(segd_type type)
{
    switch (type) {
    case SEGD_T_STRING: case SEGD_T_JSON: return COLUMN_PAGE_ROWS * sizeof(uint32_t);
    case SEGD_T_NUMBER: return COLUMN_PAGE_ROWS * sizeof(double);
    case SEGD_T_DATETIME: return COLUMN_PAGE_ROWS * sizeof(int64_t);
    case SEGD_T_BOOL: return COLUMN_PAGE_ROWS / 8;
    case SEGD_T_LIST: return COLUMN_PAGE_ROWS * sizeof(uint32_t *);
    default: abort();
    }
}

static size_t page_bytes(segd_type type)
{
    return sizeof(column_page) + values_bytes(type);
}

/* The values area (8-byte aligned: the header is a multiple of 8 bytes). */
static void *page_values(const column_page *pg)
{
    return (char *)pg + sizeof(column_page);
}

static uint32_t *page_codes(const column_page *pg) { return page_values(pg); }
static double *page_numbers(const column_page *pg) { return page_values(pg); }
static int64_t *page_times(const column_page *pg) { return page_values(pg); }
static uint64_t *page_bools(const column_page *pg) { return page_values(pg); }
static uint32_t **page_lists(const column_page *pg) { return page_values(pg); }

/* ---- the item index of LIST columns ---- */

struct column_items {
    u32map slot_of;               /* item code -> slot */
    uint32_t *codes;              /* per slot */
    roaring_bitmap_t **rows;      /* per slot: rows holding the item (never empty) */
    uint32_t n, cap;
};

static void items_free(column_items *ix)
{
    if (!ix) return;
    for (uint32_t i = 0; i < ix->n; i++) roaring_bitmap_free(ix->rows[i]);
    free(ix->codes);
    free(ix->rows);
    u32map_release(&ix->slot_of);
    free(ix);
}

/* Drops the index for good: the column has too many distinct items for it to pay. */
static void items_disable(column *c)
{
    items_free(c->items);
    c->items = NULL;
    c->items_mode = COLUMN_ITEMS_DROPPED;
}

void column_index_items(column *c)
{
    if ((c->type == SEGD_T_STRING || c->type == SEGD_T_LIST) && c->n_set == 0) c->items_mode = COLUMN_ITEMS_ON;
}

static void items_add(column *c, uint32_t code, uint32_t row)
{
    if (c->items_mode != COLUMN_ITEMS_ON) return;
    if (!c->items) {
        c->items = xcalloc(1, sizeof *c->items);
        u32map_init(&c->items->slot_of);
    }
    column_items *ix = c->items;
    uint32_t slot = u32map_get(&ix->slot_of, code);
    if (slot == U32MAP_NONE) {
        if (ix->n >= COLUMN_ITEMS_MAX_DISTINCT && ix->n >= c->n_set / COLUMN_ITEMS_PER_ROWS) {
            items_disable(c);
            return;
        }
        if (ix->n == ix->cap) {
            ix->cap = ix->cap ? ix->cap * 2 : 8;
            ix->codes = xrealloc(ix->codes, ix->cap * sizeof *ix->codes);
            ix->rows = xrealloc(ix->rows, ix->cap * sizeof *ix->rows);
        }
        slot = ix->n++;
        ix->codes[slot] = code;
        ix->rows[slot] = roaring_bitmap_create();
        if (!ix->rows[slot]) abort();
        u32map_put(&ix->slot_of, code, slot);
    }
    roaring_bitmap_add(ix->rows[slot], row);
}

static void items_remove(column *c, uint32_t code, uint32_t row)
{
    column_items *ix = c->items;
    if (!ix) return;
    uint32_t slot = u32map_get(&ix->slot_of, code);
    if (slot == U32MAP_NONE) abort();   /* the index lost an item: a bug */
    roaring_bitmap_remove(ix->rows[slot], row);
    if (!roaring_bitmap_is_empty(ix->rows[slot])) return;
    /* the item's last row: move the last slot into this one */
    roaring_bitmap_free(ix->rows[slot]);
    u32map_remove(&ix->slot_of, code);
    uint32_t last = --ix->n;
    if (slot != last) {
        ix->codes[slot] = ix->codes[last];
        ix->rows[slot] = ix->rows[last];
        u32map_put(&ix->slot_of, ix->codes[slot], slot);
    }
}

int64_t column_items_count(const column *c)
{
    if (c->items_mode != COLUMN_ITEMS_ON) return -1;
    return c->items ? c->items->n : 0;
}

static bool or_row(uint32_t row, void *words)
{
    ((uint64_t *)words)[row >> 6] |= (uint64_t)1 << (row & 63);
    return true;
}

uint32_t column_item_rows(const column *c, uint32_t i, uint64_t *words)
{
    const column_items *ix = c->items;
    if (!ix || i >= ix->n) return STRPOOL_NONE;
    if (words) roaring_iterate(ix->rows[i], or_row, words);
    return ix->codes[i];
}

static size_t items_memory(const column_items *ix)
{
    if (!ix) return 0;
    size_t bytes = sizeof *ix + u32map_memory(&ix->slot_of) + ix->cap * (sizeof *ix->codes + sizeof *ix->rows);
    for (uint32_t i = 0; i < ix->n; i++) bytes += roaring_bitmap_size_in_bytes(ix->rows[i]) + sizeof(roaring_bitmap_t);
    return bytes;
}

static int bit_get(const uint64_t *bits, uint32_t i) { return (int)(bits[i >> 6] >> (i & 63) & 1); }
static void bit_set(uint64_t *bits, uint32_t i) { bits[i >> 6] |= (uint64_t)1 << (i & 63); }
static void bit_clear(uint64_t *bits, uint32_t i) { bits[i >> 6] &= ~((uint64_t)1 << (i & 63)); }

void column_init(column *c, segd_type type)
{
    c->type = type;
    c->n_set = 0;
    c->n_pages = 0;
    c->pages_alloc = 0;
    c->dir_cap = 0;
    c->pages = NULL;
    c->list_bytes = 0;
    c->items = NULL;
    c->items_mode = COLUMN_ITEMS_NONE;
}

static const column_page *page_of(const column *c, uint32_t row)
{
    uint32_t pi = row >> COLUMN_PAGE_SHIFT;
    return pi < c->n_pages ? c->pages[pi] : NULL;
}

int column_has(const column *c, uint32_t row)
{
    const column_page *pg = page_of(c, row);
    return pg && bit_get(pg->present, row & PAGE_MASK);
}

/* Drops the references of the value in slot i (present; the column's row `row`) and
 * zeroes the slot. */
static void release_slot(column *c, column_page *pg, uint32_t i, uint32_t row, strpool *pool)
{
    switch (c->type) {
    case SEGD_T_STRING: case SEGD_T_JSON:
        items_remove(c, page_codes(pg)[i], row);
        strpool_unref(pool, page_codes(pg)[i]);
        page_codes(pg)[i] = 0;
        break;
    case SEGD_T_NUMBER: page_numbers(pg)[i] = 0; break;
    case SEGD_T_DATETIME: page_times(pg)[i] = 0; break;
    case SEGD_T_BOOL: bit_clear(page_bools(pg), i); break;
    case SEGD_T_LIST: {
        uint32_t *cell = page_lists(pg)[i];
        if (cell) {
            for (uint32_t k = 1; k <= cell[0]; k++) {
                items_remove(c, cell[k], row);
                strpool_unref(pool, cell[k]);
            }
            c->list_bytes -= heap_block_bytes(cell, (cell[0] + 1) * sizeof *cell);
            free(cell);
            page_lists(pg)[i] = NULL;
        }
        break;
    }
    default: abort();
    }
}

void column_release(column *c, strpool *pool)
{
    items_free(c->items);   /* everything goes: no need to remove row by row */
    c->items = NULL;
    int indexed = c->items_mode != COLUMN_ITEMS_NONE;
    for (uint32_t pi = 0; pi < c->n_pages; pi++) {
        column_page *pg = c->pages[pi];
        if (!pg) continue;
        for (uint32_t i = 0; i < COLUMN_PAGE_ROWS; i++)
            if (bit_get(pg->present, i)) release_slot(c, pg, i, (pi << COLUMN_PAGE_SHIFT) | i, pool);
        free(pg);
    }
    free(c->pages);
    column_init(c, c->type);
    if (indexed) column_index_items(c);   /* empty again: worth indexing again */
}

int column_get(const column *c, uint32_t row, segd_cell *out)
{
    memset(out, 0, sizeof *out);
    const column_page *pg = page_of(c, row);
    uint32_t i = row & PAGE_MASK;
    if (!pg || !bit_get(pg->present, i)) return 0;
    out->type = c->type;
    switch (c->type) {
    case SEGD_T_STRING: case SEGD_T_JSON: out->code = page_codes(pg)[i]; break;
    case SEGD_T_NUMBER: out->number = page_numbers(pg)[i]; break;
    case SEGD_T_DATETIME: out->time_ms = page_times(pg)[i]; break;
    case SEGD_T_BOOL: out->boolean = bit_get(page_bools(pg), i); break;
    case SEGD_T_LIST: {
        const uint32_t *cell = page_lists(pg)[i];
        if (cell) {
            out->n_codes = cell[0];
            out->codes = cell + 1;
        }
        break;
    }
    default: abort();
    }
    return 1;
}

uint32_t column_code(const column *c, uint32_t row)
{
    const column_page *pg = page_of(c, row);
    uint32_t i = row & PAGE_MASK;
    if (!pg || !bit_get(pg->present, i)) return STRPOOL_NONE;
    return page_codes(pg)[i];
}

int64_t column_int64(const column *c, uint32_t row)
{
    const column_page *pg = page_of(c, row);
    uint32_t i = row & PAGE_MASK;
    if (!pg || !bit_get(pg->present, i)) return 0;
    return page_times(pg)[i];
}

/* The page of row, allocated (zeroed) if needed. */
static column_page *page_for_write(column *c, uint32_t row)
{
    uint32_t pi = row >> COLUMN_PAGE_SHIFT;
    if (pi >= c->n_pages) {
        c->pages = xgrow(c->pages, sizeof *c->pages, &c->dir_cap, (size_t)pi + 1, 16);
        memset(c->pages + c->n_pages, 0, (pi + 1 - c->n_pages) * sizeof *c->pages);
        c->n_pages = pi + 1;
    }
    if (!c->pages[pi]) {
        c->pages[pi] = xcalloc(1, page_bytes(c->type));
        c->pages_alloc++;
    }
    return c->pages[pi];
}

/* Makes slot i of pg (row `row`) ready for a new value: releases the old one or marks
 * it present. */
static void claim_slot(column *c, column_page *pg, uint32_t i, uint32_t row, strpool *pool)
{
    if (bit_get(pg->present, i)) {
        release_slot(c, pg, i, row, pool);
    } else {
        bit_set(pg->present, i);
        pg->n_set++;
        c->n_set++;
    }
}

/* Removes repeated codes from codes[0, n) in place (first occurrence kept), dropping
 * the reference each repeat held. Returns the new count. */
static uint32_t dedupe_codes(uint32_t *codes, uint32_t n, strpool *pool)
{
    uint32_t kept = 0;
    if (n <= 32) {
        for (uint32_t k = 0; k < n; k++) {
            uint32_t j = 0;
            while (j < kept && codes[j] != codes[k]) j++;
            if (j < kept) strpool_unref(pool, codes[k]);
            else codes[kept++] = codes[k];
        }
        return kept;
    }
    u32map seen;
    u32map_init(&seen);
    for (uint32_t k = 0; k < n; k++) {
        if (u32map_get(&seen, codes[k]) != U32MAP_NONE) {
            strpool_unref(pool, codes[k]);
        } else {
            u32map_put(&seen, codes[k], 1);
            codes[kept++] = codes[k];
        }
    }
    u32map_release(&seen);
    return kept;
}

/* Installs a list cell (codes already referenced and de-duplicated; n may be 0). */
static void store_list(column *c, uint32_t row, uint32_t *cell, strpool *pool)
{
    column_page *pg = page_for_write(c, row);
    uint32_t i = row & PAGE_MASK;
    claim_slot(c, pg, i, row, pool);
    page_lists(pg)[i] = cell;
    if (cell) {
        c->list_bytes += heap_block_bytes(cell, (cell[0] + 1) * sizeof *cell);
        for (uint32_t k = 1; k <= cell[0]; k++) items_add(c, cell[k], row);
    }
}

/* A list cell [n, codes...] holding n referenced codes, shrunk after de-duplication;
 * NULL when empty. Takes ownership of `cell` (allocated for n + 1 entries). */
static uint32_t *finish_list(uint32_t *cell, uint32_t n, strpool *pool)
{
    uint32_t kept = dedupe_codes(cell + 1, n, pool);
    if (kept == 0) {
        free(cell);
        return NULL;
    }
    cell[0] = kept;
    if (kept != n) cell = xrealloc(cell, (kept + 1) * sizeof *cell);
    return cell;
}

void column_set(column *c, uint32_t row, const segd_value *v, strpool *pool)
{
    if (v->type != c->type) abort();
    if (c->type == SEGD_T_LIST) {
        if (v->n_items >= UINT32_MAX) abort();
        uint32_t n = (uint32_t)v->n_items;
        uint32_t *cell = xmalloc(((size_t)n + 1) * sizeof *cell);
        for (uint32_t k = 0; k < n; k++)
            cell[k + 1] = strpool_intern(pool, v->items[k], strlen(v->items[k]));
        store_list(c, row, finish_list(cell, n, pool), pool);
        return;
    }
    /* Intern before releasing the old value, so an unchanged string keeps its code. */
    uint32_t code = 0;
    if (c->type == SEGD_T_STRING || c->type == SEGD_T_JSON)
        code = strpool_intern(pool, v->str ? v->str : "", v->str ? v->str_len : 0);
    column_page *pg = page_for_write(c, row);
    uint32_t i = row & PAGE_MASK;
    claim_slot(c, pg, i, row, pool);
    switch (c->type) {
    case SEGD_T_STRING: case SEGD_T_JSON:
        page_codes(pg)[i] = code;
        items_add(c, code, row);
        break;
    case SEGD_T_NUMBER: page_numbers(pg)[i] = v->number; break;
    case SEGD_T_DATETIME: page_times(pg)[i] = v->time_ms; break;
    case SEGD_T_BOOL:
        if (v->boolean) bit_set(page_bools(pg), i);
        break;
    default: abort();
    }
}

void column_set_codes(column *c, uint32_t row, const uint32_t *codes, uint32_t n,
                      strpool *pool)
{
    if (c->type != SEGD_T_LIST) abort();
    uint32_t *cell = xmalloc(((size_t)n + 1) * sizeof *cell);
    for (uint32_t k = 0; k < n; k++) {
        strpool_ref(pool, codes[k]);
        cell[k + 1] = codes[k];
    }
    store_list(c, row, finish_list(cell, n, pool), pool);
}

void column_copy(column *c, uint32_t src_row, uint32_t dst_row, strpool *pool)
{
    segd_cell cell;
    if (src_row == dst_row) return;
    if (!column_get(c, src_row, &cell)) {
        column_clear(c, dst_row, pool);
        return;
    }
    if (c->type == SEGD_T_LIST) {
        column_set_codes(c, dst_row, cell.codes, cell.n_codes, pool);
        return;
    }
    if (c->type == SEGD_T_STRING || c->type == SEGD_T_JSON) strpool_ref(pool, cell.code);
    column_page *pg = page_for_write(c, dst_row);
    uint32_t i = dst_row & PAGE_MASK;
    claim_slot(c, pg, i, dst_row, pool);
    switch (c->type) {
    case SEGD_T_STRING: case SEGD_T_JSON:
        page_codes(pg)[i] = cell.code;
        items_add(c, cell.code, dst_row);
        break;
    case SEGD_T_NUMBER: page_numbers(pg)[i] = cell.number; break;
    case SEGD_T_DATETIME: page_times(pg)[i] = cell.time_ms; break;
    case SEGD_T_BOOL:
        if (cell.boolean) bit_set(page_bools(pg), i);
        break;
    default: abort();
    }
}

void column_clear(column *c, uint32_t row, strpool *pool)
{
    uint32_t pi = row >> COLUMN_PAGE_SHIFT, i = row & PAGE_MASK;
    column_page *pg = pi < c->n_pages ? c->pages[pi] : NULL;
    if (!pg || !bit_get(pg->present, i)) return;
    release_slot(c, pg, i, row, pool);
    bit_clear(pg->present, i);
    pg->n_set--;
    c->n_set--;
    if (pg->n_set == 0) {
        free(pg);
        c->pages[pi] = NULL;
        c->pages_alloc--;
    }
}

uint32_t column_pages(const column *c)
{
    return c->n_pages;
}

int column_page_view(const column *c, uint32_t page, uint32_t *n_set,
                     const uint64_t **present, const void **values)
{
    const column_page *pg = page < c->n_pages ? c->pages[page] : NULL;
    if (!pg) {
        *n_set = 0;
        *present = NULL;
        *values = NULL;
        return 0;
    }
    *n_set = pg->n_set;
    *present = pg->present;
    *values = page_values(pg);
    return 1;
}

uint32_t column_next(const column *c, uint32_t row)
{
    for (uint32_t pi = row >> COLUMN_PAGE_SHIFT; pi < c->n_pages; pi++) {
        const column_page *pg = c->pages[pi];
        uint32_t first = pi == row >> COLUMN_PAGE_SHIFT ? row & PAGE_MASK : 0;
        if (!pg) continue;
        for (uint32_t w = first >> 6; w < PAGE_WORDS; w++) {
            uint64_t bits = pg->present[w];
            if (w == first >> 6) bits &= ~(uint64_t)0 << (first & 63);
            if (bits) return (pi << COLUMN_PAGE_SHIFT) | (w << 6) | (uint32_t)__builtin_ctzll(bits);
        }
    }
    return COLUMN_NONE;
}

void column_compact(column *c)
{
    /* Trailing NULL entries (pages freed by clears) are dropped too: page_for_write
     * re-extends the directory when a row there is written again. */
    while (c->n_pages && !c->pages[c->n_pages - 1]) c->n_pages--;
    c->pages = fit_array(c->pages, sizeof *c->pages, &c->dir_cap, c->n_pages);
}

size_t column_memory(const column *c)
{
    size_t pages = c->pages_alloc ? (size_t)c->pages_alloc * page_bytes(c->type) : 0;
    return c->dir_cap * sizeof *c->pages + pages + c->list_bytes + items_memory(c->items);
}

void column_count_uses(const column *c, uint32_t *uses, uint32_t n_uses)
{
    if (c->type != SEGD_T_STRING && c->type != SEGD_T_JSON && c->type != SEGD_T_LIST) return;
    for (uint32_t pi = 0; pi < c->n_pages; pi++) {
        const column_page *pg = c->pages[pi];
        if (!pg) continue;
        for (uint32_t i = 0; i < COLUMN_PAGE_ROWS; i++) {
            if (!bit_get(pg->present, i)) continue;
            if (c->type == SEGD_T_LIST) {
                const uint32_t *cell = page_lists(pg)[i];
                for (uint32_t k = 1; cell && k <= cell[0]; k++)
                    if (cell[k] < n_uses) uses[cell[k]]++;
            } else if (page_codes(pg)[i] < n_uses) {
                uses[page_codes(pg)[i]]++;
            }
        }
    }
}

/* Checks one slot of a page; present says whether the null marker is set. */
static int check_slot(const column *c, const column_page *pg, uint32_t i, int present,
                      const strpool *pool, uint32_t row, const char *what, size_t *list_bytes)
{
    switch (c->type) {
    case SEGD_T_STRING: case SEGD_T_JSON: {
        uint32_t code = page_codes(pg)[i];
        if (!present ? code != 0 : !strpool_get(pool, code, NULL)) {
            fprintf(stderr, "engine_check: %s: row %u: code %u %s\n", what, row, code,
                    present ? "is not a live string" : "left in a missing slot");
            return -1;
        }
        return 0;
    }
    case SEGD_T_NUMBER: {
        double x = page_numbers(pg)[i];
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits);
        if (!present && bits) {
            fprintf(stderr, "engine_check: %s: row %u: number left in a missing slot\n", what, row);
            return -1;
        }
        return 0;
    }
    case SEGD_T_DATETIME:
        if (!present && page_times(pg)[i]) {
            fprintf(stderr, "engine_check: %s: row %u: time left in a missing slot\n", what, row);
            return -1;
        }
        return 0;
    case SEGD_T_BOOL:
        if (!present && bit_get(page_bools(pg), i)) {
            fprintf(stderr, "engine_check: %s: row %u: true left in a missing slot\n", what, row);
            return -1;
        }
        return 0;
    case SEGD_T_LIST: {
        const uint32_t *cell = page_lists(pg)[i];
        if (!cell) return 0;
        if (!present || cell[0] == 0) {
            fprintf(stderr, "engine_check: %s: row %u: list cell %s\n", what, row,
                    present ? "empty but allocated" : "left in a missing slot");
            return -1;
        }
        *list_bytes += heap_block_bytes((void *)cell, (cell[0] + 1) * sizeof *cell);
        for (uint32_t k = 1; k <= cell[0]; k++) {
            if (!strpool_get(pool, cell[k], NULL)) {
                fprintf(stderr, "engine_check: %s: row %u: list code %u is not live\n", what, row, cell[k]);
                return -1;
            }
            for (uint32_t j = 1; j < k; j++)
                if (cell[j] == cell[k]) {
                    fprintf(stderr, "engine_check: %s: row %u: list repeats code %u\n", what, row, cell[k]);
                    return -1;
                }
        }
        return 0;
    }
    default:
        fprintf(stderr, "engine_check: %s: bad column type %d\n", what, (int)c->type);
        return -1;
    }
}

/* The item index holds exactly the (item, row) pairs of the cells. */
static int check_items(const column *c, const char *what)
{
    if (c->items_mode == COLUMN_ITEMS_NONE || c->items_mode == COLUMN_ITEMS_DROPPED) {
        if (c->items) {
            fprintf(stderr, "engine_check: %s: an item index on a column that keeps none\n", what);
            return -1;
        }
        if (c->items_mode != COLUMN_ITEMS_NONE && c->type != SEGD_T_STRING && c->type != SEGD_T_LIST) {
            fprintf(stderr, "engine_check: %s: item index mode on a %s column\n", what, segd_type_name(c->type));
            return -1;
        }
        return 0;
    }
    if (c->type != SEGD_T_STRING && c->type != SEGD_T_LIST) {
        fprintf(stderr, "engine_check: %s: item index on a %s column\n", what, segd_type_name(c->type));
        return -1;
    }
    if (!c->items) {
        if (c->n_set && c->type == SEGD_T_STRING) {
            fprintf(stderr, "engine_check: %s: values but no item index\n", what);
            return -1;
        }
        return 0;
    }
    const column_items *ix = c->items;
    uint64_t pairs = 0, indexed = 0;
    if (ix->n != ix->slot_of.count) {
        fprintf(stderr, "engine_check: %s: item index has %u slots, %u keys\n", what, ix->n, ix->slot_of.count);
        return -1;
    }
    for (uint32_t s = 0; s < ix->n; s++) {
        if (u32map_get(&ix->slot_of, ix->codes[s]) != s || roaring_bitmap_is_empty(ix->rows[s])) {
            fprintf(stderr, "engine_check: %s: item slot %u (code %u) lost or empty\n", what, s, ix->codes[s]);
            return -1;
        }
        indexed += roaring_bitmap_get_cardinality(ix->rows[s]);
    }
    for (uint32_t pi = 0; pi < c->n_pages; pi++) {
        const column_page *pg = c->pages[pi];
        if (!pg) continue;
        for (uint32_t i = 0; i < COLUMN_PAGE_ROWS; i++) {
            if (!bit_get(pg->present, i)) continue;
            uint32_t row = (pi << COLUMN_PAGE_SHIFT) | i;
            const uint32_t *cell = c->type == SEGD_T_LIST ? page_lists(pg)[i] : NULL;
            uint32_t n = c->type == SEGD_T_LIST ? (cell ? cell[0] : 0) : 1;
            for (uint32_t k = 0; k < n; k++, pairs++) {
                uint32_t code = c->type == SEGD_T_LIST ? cell[k + 1] : page_codes(pg)[i];
                uint32_t slot = u32map_get(&ix->slot_of, code);
                if (slot == U32MAP_NONE || !roaring_bitmap_contains(ix->rows[slot], row)) {
                    fprintf(stderr, "engine_check: %s: row %u: value %u missing from the index\n", what, row, code);
                    return -1;
                }
            }
        }
    }
    if (pairs != indexed) {
        fprintf(stderr, "engine_check: %s: rows hold %llu values, the index %llu\n", what,
                (unsigned long long)pairs, (unsigned long long)indexed);
        return -1;
    }
    return 0;
}

int column_check(const column *c, const strpool *pool, uint32_t row_limit, const char *what)
{
    uint32_t n_set = 0, pages = 0;
    size_t list_bytes = 0;
    if (c->n_pages > c->dir_cap) {
        fprintf(stderr, "engine_check: %s: %u pages over capacity %zu\n", what, c->n_pages, c->dir_cap);
        return -1;
    }
    for (uint32_t pi = 0; pi < c->n_pages; pi++) {
        const column_page *pg = c->pages[pi];
        if (!pg) continue;
        pages++;
        uint32_t in_page = 0;
        for (uint32_t w = 0; w < PAGE_WORDS; w++) in_page += (uint32_t)__builtin_popcountll(pg->present[w]);
        if (in_page != pg->n_set || in_page == 0) {
            fprintf(stderr, "engine_check: %s: page %u counts %u, marks %u\n", what, pi, pg->n_set, in_page);
            return -1;
        }
        n_set += in_page;
        for (uint32_t i = 0; i < COLUMN_PAGE_ROWS; i++) {
            uint32_t row = (pi << COLUMN_PAGE_SHIFT) | i;
            int present = bit_get(pg->present, i);
            if (present && row >= row_limit) {
                fprintf(stderr, "engine_check: %s: value at row %u past the limit %u\n", what, row, row_limit);
                return -1;
            }
            if (check_slot(c, pg, i, present, pool, row, what, &list_bytes)) return -1;
        }
    }
    if (n_set != c->n_set || pages != c->pages_alloc || list_bytes != c->list_bytes) {
        fprintf(stderr, "engine_check: %s: counted %u values %u pages %zu list bytes, "
                "recorded %u %u %zu\n", what, n_set, pages, list_bytes, c->n_set, c->pages_alloc,
                c->list_bytes);
        return -1;
    }
    if (check_items(c, what)) return -1;
    return 0;
}
