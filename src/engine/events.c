/* events.c - per-type columnar event logs with per-(person, type) chains (events.h).
 *
 * Chains run newest row first through prev[]; a head per (person, type) pair holds the
 * newest row and the length. Each type keeps its heads in an open-addressing table
 * (linear probing, backward-shift deletion, load <= 0.75, growth x1.5, shrunk to fit
 * by events_compact) whose slots store no key: a head's person is persons[head.last].
 * So a head must leave its table before the person of its newest row changes (erasure,
 * merge), and a new row's person is written before its head is inserted.
 */
#include "events.h"
#include "fit.h"
#include "hash.h"
#include "idindex.h"
#include "../base/alloc.h"
#include "../base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_HEAD_SLOTS 16

/* Row arrays grow by an eighth, not x1.5: they are most of the engine's memory, and
 * after engine_compact has fitted them, x1.5 would bring a third of spare back with the
 * first append (measured: 20.6 -> 30.9 bytes/event at 20M events). Big blocks are
 * mmapped, so glibc's realloc remaps them instead of copying; small ones are cheap to
 * copy. */
#define ROW_GROWTH_DIVISOR 8
#define MIN_ROWS 64

/* The chain of one person in one type; last == EVENTS_NO_ROW marks an empty slot. */
typedef struct event_head {
    uint32_t last;        /* newest row; persons[last] is the key */
    uint32_t count;
} event_head;

struct event_log {
    uint32_t rows;
    size_t cap;
    person_id *persons;   /* PERSON_NONE for a hole */
    int64_t *times;
    uint32_t *prev;       /* previous row of the same person, or EVENTS_NO_ROW */
    uint64_t live;
    event_head *heads;    /* hash table by person */
    uint32_t heads_cap;
    uint32_t n_heads;
    namemap props;
    column *prop_cols;    /* parallel to props */
    size_t prop_cap;
    int64_t *zone_min;    /* per block of EVENTS_ZONE_ROWS rows: bounds of its times */
    int64_t *zone_max;    /* (an empty block: INT64_MAX, INT64_MIN) */
    uint32_t zones;
    size_t zone_cap;
};

void events_init(events *ev, uint32_t max_types, uint32_t max_props)
{
    memset(ev, 0, sizeof *ev);
    namemap_init(&ev->types);
    ev->max_types = max_types;
    ev->max_props = max_props;
}

void events_release(events *ev, strpool *pool)
{
    for (uint32_t t = 0; t < ev->types.n; t++) {
        event_log *log = ev->logs[t];
        for (uint32_t p = 0; p < log->props.n; p++) column_release(&log->prop_cols[p], pool);
        free(log->prop_cols);
        namemap_release(&log->props);
        free(log->persons);
        free(log->times);
        free(log->prev);
        free(log->heads);
        free(log->zone_min);
        free(log->zone_max);
        free(log);
    }
    free(ev->logs);
    namemap_release(&ev->types);
    events_init(ev, ev->max_types, ev->max_props);
}

static const event_log *log_of(const events *ev, int type)
{
    if (type < 0 || (uint32_t)type >= ev->types.n) return NULL;
    return ev->logs[type];
}

/* ---- heads ---- */

static uint32_t head_home(const event_log *log, person_id person)
{
    return hash_slot(hash_u64(person), log->heads_cap);
}

static uint32_t next_head(const event_log *log, uint32_t pos)
{
    return pos + 1 == log->heads_cap ? 0 : pos + 1;
}

/* The slot of person's head in log, or IDINDEX_EMPTY. */
static uint32_t head_find(const event_log *log, person_id person)
{
    if (!log->heads_cap) return IDINDEX_EMPTY;
    for (uint32_t pos = head_home(log, person); log->heads[pos].last != EVENTS_NO_ROW;
         pos = next_head(log, pos))
        if (log->persons[log->heads[pos].last] == person) return pos;
    return IDINDEX_EMPTY;
}

static void head_place(event_log *log, event_head head)
{
    uint32_t pos = head_home(log, log->persons[head.last]);
    while (log->heads[pos].last != EVENTS_NO_ROW) pos = next_head(log, pos);
    log->heads[pos] = head;
}

/* Moves every head into a fresh table of cap slots (cap > n_heads; 0 frees it). */
static void heads_rehash(event_log *log, uint32_t cap)
{
    event_head *old = log->heads;
    uint32_t old_cap = log->heads_cap;
    log->heads = NULL;
    if (cap) {
        log->heads = xmalloc((size_t)cap * sizeof *log->heads);
        memset(log->heads, 0xff, (size_t)cap * sizeof *log->heads);
    }
    log->heads_cap = cap;
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i].last != EVENTS_NO_ROW) head_place(log, old[i]);
    free(old);
}

/* Adds the head of a person who has none; persons[last] must already be that person. */
static void head_insert(event_log *log, uint32_t last, uint32_t count)
{
    if ((uint64_t)(log->n_heads + 1) * 4 > (uint64_t)log->heads_cap * 3) {
        uint32_t old_cap = log->heads_cap;
        uint64_t cap = old_cap < MIN_HEAD_SLOTS ? MIN_HEAD_SLOTS : (uint64_t)old_cap + old_cap / 2;
        if (cap > UINT32_MAX - 1) {
            fprintf(stderr, "segd: event head table over 2^32 slots\n");
            abort();
        }
        heads_rehash(log, (uint32_t)cap);
    }
    head_place(log, (event_head){ last, count });
    log->n_heads++;
}

/* Removes the head in slot hole (backward shift, so no lookup crosses a gap). */
static void head_remove(event_log *log, uint32_t hole)
{
    uint32_t pos = next_head(log, hole);
    while (log->heads[pos].last != EVENTS_NO_ROW) {
        uint32_t home = head_home(log, log->persons[log->heads[pos].last]);
        int stays = hole <= pos ? (hole < home && home <= pos) : (hole < home || home <= pos);
        if (!stays) {
            log->heads[hole] = log->heads[pos];
            hole = pos;
        }
        pos = next_head(log, pos);
    }
    log->heads[hole] = (event_head){ EVENTS_NO_ROW, EVENTS_NO_ROW };
    log->n_heads--;
}

/* ---- catalogs ---- */

int events_type_find(const events *ev, const char *name)
{
    if (!name) return -1;
    return namemap_find(&ev->types, name);
}

int events_type_declare(events *ev, const char *name)
{
    if (!name || !*name) return SEGD_EINVAL;
    int t = namemap_find(&ev->types, name);
    if (t >= 0) return t;
    if (ev->types.n >= ev->max_types) return SEGD_ELIMIT;
    event_log *log = xcalloc(1, sizeof *log);
    namemap_init(&log->props);
    ev->logs = xgrow(ev->logs, sizeof *ev->logs, &ev->logs_cap, (size_t)ev->types.n + 1, 16);
    ev->logs[ev->types.n] = log;
    return namemap_add(&ev->types, name);
}

int events_type_count(const events *ev)
{
    return (int)ev->types.n;
}

const char *events_type_name(const events *ev, int type)
{
    return namemap_name(&ev->types, type);
}

uint64_t events_type_live(const events *ev, int type)
{
    const event_log *log = log_of(ev, type);
    return log ? log->live : 0;
}

int events_prop_find(const events *ev, int type, const char *name)
{
    const event_log *log = log_of(ev, type);
    if (!log || !name) return -1;
    return namemap_find(&log->props, name);
}

int events_prop_declare(events *ev, int type, const char *name, segd_type ptype)
{
    event_log *log = (event_log *)log_of(ev, type);
    if (!log) return SEGD_ENOTFOUND;
    if (!name || !*name || ptype <= SEGD_T_NONE || ptype > SEGD_T_JSON) return SEGD_EINVAL;
    int p = namemap_find(&log->props, name);
    if (p >= 0) return log->prop_cols[p].type == ptype ? p : SEGD_ECONFLICT;
    if (log->props.n >= ev->max_props) return SEGD_ELIMIT;
    log->prop_cols = xgrow(log->prop_cols, sizeof *log->prop_cols, &log->prop_cap,
                           (size_t)log->props.n + 1, 4);
    column_init(&log->prop_cols[log->props.n], ptype);
    return namemap_add(&log->props, name);
}

int events_prop_count(const events *ev, int type)
{
    const event_log *log = log_of(ev, type);
    return log ? (int)log->props.n : 0;
}

const char *events_prop_name(const events *ev, int type, int prop)
{
    const event_log *log = log_of(ev, type);
    return log ? namemap_name(&log->props, prop) : NULL;
}

segd_type events_prop_type(const events *ev, int type, int prop)
{
    const event_log *log = log_of(ev, type);
    if (!log || prop < 0 || (uint32_t)prop >= log->props.n) return SEGD_T_NONE;
    return log->prop_cols[prop].type;
}

/* ---- appends and reads ---- */

/* Widens the time bounds of row's block to take in t (hole: only makes the block). */
static void zone_note(event_log *log, uint32_t row, int64_t t, int hole)
{
    uint32_t b = row >> EVENTS_ZONE_SHIFT;
    if (b >= log->zones) {
        size_t cap = log->zone_cap;
        log->zone_min = xgrow(log->zone_min, sizeof *log->zone_min, &cap, (size_t)b + 1, 16);
        cap = log->zone_cap;
        log->zone_max = xgrow(log->zone_max, sizeof *log->zone_max, &cap, (size_t)b + 1, 16);
        log->zone_cap = cap;
        for (uint32_t k = log->zones; k <= b; k++) {
            log->zone_min[k] = INT64_MAX;
            log->zone_max[k] = INT64_MIN;
        }
        log->zones = b + 1;
    }
    if (hole) return;
    if (t < log->zone_min[b]) log->zone_min[b] = t;
    if (t > log->zone_max[b]) log->zone_max[b] = t;
}

uint32_t events_zones(const events *ev, int type, const int64_t **min, const int64_t **max)
{
    const event_log *log = log_of(ev, type);
    *min = log ? log->zone_min : NULL;
    *max = log ? log->zone_max : NULL;
    return log ? log->zones : 0;
}

int64_t events_append(events *ev, strpool *pool, person_id person, int type, int64_t time_ms,
                      size_t n, const int *props, const segd_value *vals)
{
    event_log *log = (event_log *)log_of(ev, type);
    if (!log) return SEGD_ENOTFOUND;
    for (size_t i = 0; i < n; i++) {
        if (props[i] < 0 || (uint32_t)props[i] >= log->props.n) return SEGD_ENOTFOUND;
        if (vals[i].type != SEGD_T_NONE && vals[i].type != log->prop_cols[props[i]].type)
            return SEGD_ECONFLICT;
    }
    if (log->rows >= EVENTS_NO_ROW - 1) return SEGD_ELIMIT;

    uint32_t row = log->rows;
    if ((size_t)row + 1 > log->cap) {
        size_t cap = log->cap + log->cap / ROW_GROWTH_DIVISOR;
        if (cap < MIN_ROWS) cap = MIN_ROWS;
        log->persons = xrealloc(log->persons, cap * sizeof *log->persons);
        log->times = xrealloc(log->times, cap * sizeof *log->times);
        log->prev = xrealloc(log->prev, cap * sizeof *log->prev);
        log->cap = cap;
    }
    if (person == PERSON_NONE) {     /* a hole, as erasure leaves: keeps later rows' numbers */
        log->persons[row] = PERSON_NONE;
        log->times[row] = 0;
        log->prev[row] = EVENTS_NO_ROW;
        zone_note(log, row, 0, 1);
        log->rows++;
        return row;
    }
    zone_note(log, row, time_ms, 0);
    uint32_t h = head_find(log, person);
    log->persons[row] = person;
    log->times[row] = time_ms;
    if (h == IDINDEX_EMPTY) {
        log->prev[row] = EVENTS_NO_ROW;
        head_insert(log, row, 1);
    } else {
        log->prev[row] = log->heads[h].last;
        log->heads[h].last = row;   /* same person: the slot's key is unchanged */
        log->heads[h].count++;
    }
    log->rows++;
    log->live++;
    ev->live++;
    for (size_t i = 0; i < n; i++)
        if (vals[i].type != SEGD_T_NONE) column_set(&log->prop_cols[props[i]], row, &vals[i], pool);
    return row;
}

uint32_t events_person_count(const events *ev, person_id person, int type)
{
    const event_log *log = log_of(ev, type);
    if (!log || person == PERSON_NONE) return 0;
    uint32_t h = head_find(log, person);
    return h == IDINDEX_EMPTY ? 0 : log->heads[h].count;
}

/* Newest first: later time, then higher row, then higher type. */
static int cmp_newest_first(const void *a, const void *b)
{
    const engine_event_ref *x = a, *y = b;
    if (x->time_ms != y->time_ms) return x->time_ms < y->time_ms ? 1 : -1;
    if (x->row != y->row) return x->row < y->row ? 1 : -1;
    return (x->type < y->type) - (x->type > y->type);
}

size_t events_person_list(const events *ev, person_id person, engine_event_ref *out, size_t cap)
{
    size_t total = 0;
    for (uint32_t t = 0; t < ev->types.n; t++) total += events_person_count(ev, person, (int)t);
    if (total == 0 || cap == 0) return total;
    engine_event_ref *all = total <= cap ? out : xmalloc(total * sizeof *all);
    size_t k = 0;
    for (uint32_t t = 0; t < ev->types.n; t++) {
        const event_log *log = ev->logs[t];
        uint32_t h = head_find(log, person);
        if (h == IDINDEX_EMPTY) continue;
        for (uint32_t row = log->heads[h].last; row != EVENTS_NO_ROW; row = log->prev[row])
            all[k++] = (engine_event_ref){ (int)t, row, log->times[row] };
    }
    qsort(all, total, sizeof *all, cmp_newest_first);
    if (all != out) {
        if (cap) memcpy(out, all, cap * sizeof *out);
        free(all);
    }
    return total;
}

void events_person_erase(events *ev, strpool *pool, person_id person)
{
    for (uint32_t t = 0; t < ev->types.n; t++) {
        event_log *log = ev->logs[t];
        uint32_t h = head_find(log, person);
        if (h == IDINDEX_EMPTY) continue;
        event_head head = log->heads[h];
        head_remove(log, h);   /* before persons[head.last], its key, changes */
        uint32_t row = head.last;
        while (row != EVENTS_NO_ROW) {
            uint32_t prev = log->prev[row];
            log->persons[row] = PERSON_NONE;
            log->times[row] = 0;
            log->prev[row] = EVENTS_NO_ROW;
            for (uint32_t p = 0; p < log->props.n; p++) column_clear(&log->prop_cols[p], row, pool);
            row = prev;
        }
        log->live -= head.count;
        ev->live -= head.count;
    }
}

void events_person_move(events *ev, person_id from, person_id into)
{
    for (uint32_t t = 0; t < ev->types.n; t++) {
        event_log *log = ev->logs[t];
        uint32_t h = head_find(log, from);
        if (h == IDINDEX_EMPTY) continue;
        event_head moved = log->heads[h];
        head_remove(log, h);   /* before persons[moved.last], its key, changes */
        for (uint32_t row = moved.last; row != EVENTS_NO_ROW; row = log->prev[row])
            log->persons[row] = into;

        uint32_t hi = head_find(log, into);
        if (hi == IDINDEX_EMPTY) {
            head_insert(log, moved.last, moved.count);
            continue;
        }
        /* Merge two chains that both run in descending row order. */
        uint32_t a = moved.last, b = log->heads[hi].last, first = EVENTS_NO_ROW;
        uint32_t *link = &first;
        while (a != EVENTS_NO_ROW && b != EVENTS_NO_ROW) {
            if (a > b) {
                *link = a;
                link = &log->prev[a];
                a = log->prev[a];
            } else {
                *link = b;
                link = &log->prev[b];
                b = log->prev[b];
            }
        }
        *link = a != EVENTS_NO_ROW ? a : b;
        log->heads[hi].last = first;   /* persons[first] is into: the key is unchanged */
        log->heads[hi].count += moved.count;
    }
}

uint32_t events_rows(const events *ev, int type)
{
    const event_log *log = log_of(ev, type);
    return log ? log->rows : 0;
}

const person_id *events_persons(const events *ev, int type)
{
    const event_log *log = log_of(ev, type);
    return log ? log->persons : NULL;
}

const int64_t *events_times(const events *ev, int type)
{
    const event_log *log = log_of(ev, type);
    return log ? log->times : NULL;
}

int events_prop_get(const events *ev, int type, uint32_t row, int prop, segd_cell *out)
{
    const event_log *log = log_of(ev, type);
    if (!log || prop < 0 || (uint32_t)prop >= log->props.n || row >= log->rows) {
        memset(out, 0, sizeof *out);
        return 0;
    }
    return column_get(&log->prop_cols[prop], row, out);
}

const column *events_prop_column(const events *ev, int type, int prop)
{
    const event_log *log = log_of(ev, type);
    if (!log || prop < 0 || (uint32_t)prop >= log->props.n) return NULL;
    return &log->prop_cols[prop];
}

const uint32_t *events_prevs(const events *ev, int type)
{
    const event_log *log = log_of(ev, type);
    return log ? log->prev : NULL;
}

uint32_t events_person_newest(const events *ev, person_id person, int type)
{
    const event_log *log = log_of(ev, type);
    if (!log || person == PERSON_NONE) return EVENTS_NO_ROW;
    uint32_t h = head_find(log, person);
    return h == IDINDEX_EMPTY ? EVENTS_NO_ROW : log->heads[h].last;
}

/* ---- compaction ---- */

void events_compact(events *ev)
{
    ev->logs = fit_array(ev->logs, sizeof *ev->logs, &ev->logs_cap, ev->types.n);
    namemap_compact(&ev->types);
    for (uint32_t t = 0; t < ev->types.n; t++) {
        event_log *log = ev->logs[t];
        size_t cap = log->cap;
        log->persons = fit_array(log->persons, sizeof *log->persons, &cap, log->rows);
        cap = log->cap;
        log->times = fit_array(log->times, sizeof *log->times, &cap, log->rows);
        cap = log->cap;
        log->prev = fit_array(log->prev, sizeof *log->prev, &cap, log->rows);
        log->cap = cap;
        uint32_t slots = fit_slots(log->n_heads);
        if (slots < log->heads_cap) heads_rehash(log, slots);
        log->prop_cols = fit_array(log->prop_cols, sizeof *log->prop_cols, &log->prop_cap, log->props.n);
        cap = log->zone_cap;
        log->zone_min = fit_array(log->zone_min, sizeof *log->zone_min, &cap, log->zones);
        cap = log->zone_cap;
        log->zone_max = fit_array(log->zone_max, sizeof *log->zone_max, &cap, log->zones);
        log->zone_cap = cap;
        namemap_compact(&log->props);
        for (uint32_t p = 0; p < log->props.n; p++) column_compact(&log->prop_cols[p]);
    }
}

/* ---- accounting and invariants ---- */

void events_memory(const events *ev, size_t *event_bytes, size_t *prop_bytes)
{
    size_t eb = ev->logs_cap * sizeof *ev->logs + namemap_memory(&ev->types);
    size_t pb = 0;
    for (uint32_t t = 0; t < ev->types.n; t++) {
        const event_log *log = ev->logs[t];
        eb += sizeof *log + log->cap * (sizeof *log->persons + sizeof *log->times + sizeof *log->prev)
              + (size_t)log->heads_cap * sizeof *log->heads
              + log->zone_cap * (sizeof *log->zone_min + sizeof *log->zone_max);
        pb += namemap_memory(&log->props) + log->prop_cap * sizeof *log->prop_cols;
        for (uint32_t p = 0; p < log->props.n; p++) pb += column_memory(&log->prop_cols[p]);
    }
    *event_bytes = eb;
    *prop_bytes = pb;
}

void events_count_uses(const events *ev, uint32_t *uses, uint32_t n_uses)
{
    for (uint32_t t = 0; t < ev->types.n; t++) {
        const event_log *log = ev->logs[t];
        for (uint32_t p = 0; p < log->props.n; p++) column_count_uses(&log->prop_cols[p], uses, n_uses);
    }
}

/* Checks one type's catalog, columns and holes. */
static int check_log(const events *ev, uint32_t t, const strpool *pool)
{
    const event_log *log = ev->logs[t];
    char what[96];
    snprintf(what, sizeof what, "event type %u properties", t);
    if (namemap_check(&log->props, what)) return -1;
    if (log->rows > log->cap) {
        fprintf(stderr, "engine_check: event type %u: %u rows, capacity %zu\n", t, log->rows, log->cap);
        return -1;
    }
    if (log->props.live != log->props.n || log->props.n > ev->max_props) {
        fprintf(stderr, "engine_check: event type %u: bad property count %u\n", t, log->props.n);
        return -1;
    }
    for (uint32_t p = 0; p < log->props.n; p++) {
        snprintf(what, sizeof what, "event type %u property %u", t, p);
        if (column_check(&log->prop_cols[p], pool, log->rows, what)) return -1;
    }
    if (log->zones != (log->rows + EVENTS_ZONE_ROWS - 1) / EVENTS_ZONE_ROWS) {
        fprintf(stderr, "engine_check: event type %u: %u zones for %u rows\n", t, log->zones, log->rows);
        return -1;
    }
    for (uint32_t row = 0; row < log->rows; row++) {
        uint32_t b = row >> EVENTS_ZONE_SHIFT;
        if (log->persons[row] != PERSON_NONE &&
            (log->times[row] < log->zone_min[b] || log->times[row] > log->zone_max[b])) {
            fprintf(stderr, "engine_check: event type %u row %u: time outside its zone's bounds\n", t, row);
            return -1;
        }
        if (log->persons[row] != PERSON_NONE) continue;
        if (log->prev[row] != EVENTS_NO_ROW || log->times[row] != 0) {
            fprintf(stderr, "engine_check: event type %u row %u: hole keeps a chain or time\n", t, row);
            return -1;
        }
        for (uint32_t p = 0; p < log->props.n; p++)
            if (column_has(&log->prop_cols[p], row)) {
                fprintf(stderr, "engine_check: event type %u row %u: hole keeps property %u\n", t, row, p);
                return -1;
            }
    }
    return 0;
}

/* Checks one type's head table and chains: every head's newest row names a live person
 * whose lookup finds this slot, chains descend, stay with their person and match their
 * counts, and together they cover exactly the rows that are not holes. */
static int check_chains(const event_log *log, uint32_t t,
                        int (*person_live)(const void *ctx, person_id person), const void *ctx)
{
    uint32_t n_heads = 0;
    uint64_t covered = 0;
    int rc = 0;
    if ((uint64_t)log->n_heads * 4 > (uint64_t)log->heads_cap * 3) {
        fprintf(stderr, "engine_check: event type %u: head load %u/%u over 0.75\n", t,
                log->n_heads, log->heads_cap);
        return -1;
    }
    uint64_t *seen = xcalloc(log->rows / 64 + 1, sizeof *seen);
    for (uint32_t i = 0; i < log->heads_cap && rc == 0; i++) {
        const event_head *hd = &log->heads[i];
        if (hd->last == EVENTS_NO_ROW) continue;
        n_heads++;
        person_id person = hd->last < log->rows ? log->persons[hd->last] : PERSON_NONE;
        if (person == PERSON_NONE || !person_live(ctx, person) || hd->count == 0
            || head_find(log, person) != i) {
            fprintf(stderr, "engine_check: event type %u: head in slot %u (row %u, person %u): "
                    "bad row, person not live, empty, unreachable or duplicated\n", t, i, hd->last, person);
            rc = -1;
            break;
        }
        uint32_t steps = 0, above = EVENTS_NO_ROW;
        for (uint32_t row = hd->last; row != EVENTS_NO_ROW; row = log->prev[row]) {
            if (row >= log->rows || (above != EVENTS_NO_ROW && row >= above)
                || log->persons[row] != person || (seen[row / 64] >> (row % 64) & 1)) {
                fprintf(stderr, "engine_check: chain of person %u type %u: bad row %u\n", person, t, row);
                rc = -1;
                break;
            }
            seen[row / 64] |= (uint64_t)1 << (row % 64);
            above = row;
            steps++;
        }
        if (rc == 0 && steps != hd->count) {
            fprintf(stderr, "engine_check: chain of person %u type %u: %u rows, head says %u\n",
                    person, t, steps, hd->count);
            rc = -1;
        }
        covered += steps;
    }
    if (rc == 0 && n_heads != log->n_heads) {
        fprintf(stderr, "engine_check: event type %u: %u heads, counter %u\n", t, n_heads, log->n_heads);
        rc = -1;
    }
    for (uint32_t row = 0; row < log->rows && rc == 0; row++) {
        int marked = (int)(seen[row / 64] >> (row % 64) & 1);
        if (marked != (log->persons[row] != PERSON_NONE)) {
            fprintf(stderr, "engine_check: event type %u row %u: person %u %s\n", t, row,
                    log->persons[row], marked ? "is a hole in a chain" : "is in no chain");
            rc = -1;
        }
    }
    if (rc == 0 && covered != log->live) {
        fprintf(stderr, "engine_check: event type %u: %llu rows in chains, live %llu\n", t,
                (unsigned long long)covered, (unsigned long long)log->live);
        rc = -1;
    }
    free(seen);
    return rc;
}

int events_check(const events *ev, const strpool *pool,
                 int (*person_live)(const void *ctx, person_id person), const void *ctx)
{
    if (namemap_check(&ev->types, "event types")) return -1;
    if (ev->types.live != ev->types.n || ev->types.n > ev->max_types) {
        fprintf(stderr, "engine_check: event types: bad count %u\n", ev->types.n);
        return -1;
    }
    uint64_t live = 0;
    for (uint32_t t = 0; t < ev->types.n; t++) {
        if (check_log(ev, t, pool) || check_chains(ev->logs[t], t, person_live, ctx)) return -1;
        live += ev->logs[t]->live;
    }
    if (live != ev->live) {
        fprintf(stderr, "engine_check: events: %llu live by type, total %llu\n",
                (unsigned long long)live, (unsigned long long)ev->live);
        return -1;
    }
    return 0;
}
