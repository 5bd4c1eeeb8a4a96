/* eval.c - evaluating a bound filter tree over the engine (filter_eval, filter_match).
 *
 * Two ways over the same semantics (docs/FILTERS.md): filter_eval answers for everyone
 * at once as a bitset of people, scanning columns page by page (groups are word-wise
 * AND / OR / AND NOT over those sets); filter_match answers for one person, reading
 * only that person's values and event chains. Both decide each single value through
 * the same `cond` functions, so they cannot drift apart.
 *
 * An event condition is a scan of its type's log: the `where` tree is evaluated the
 * same way over the "row space" of that type (property columns instead of attribute
 * columns, rows instead of people), then each row inside the window feeds its person's
 * accumulator (count, sum, min, max, times, distinct values), and the metric is
 * compared per person at the end. Workload: 1M people and 20M events answered in
 * milliseconds; scans are plain loops over arrays with no allocation inside.
 */
#include "filter.h"
#include "../base/alloc.h"
#include "../base/fold.h"
#include "../base/timefmt.h"

#include <cjson/cJSON.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL
#define PAGE_WORDS (ENGINE_PAGE_ROWS / 64)

/* ---- one condition on single values ---- */

/* A condition compiled for deciding values: the operator split into a positive
 * predicate (pred), whether the answer is its negation (negate: ne, not_in,
 * not_contains, is_not_set) and the answer for a missing value (true_on_missing). */
typedef struct cond {
    const engine *e;
    filter_op op;
    segd_type type;
    int negate;
    int true_on_missing;
    /* NUMBER */
    double a, b;
    const filter_literal *lits;
    uint32_t n_lits;
    /* BOOL */
    int boolean;
    /* DATETIME: pred is lo <= t <= hi */
    int64_t lo, hi;
    /* STRING, LIST: literals as compared (folded unless case-sensitive), pointing into
     * the tree; owned copies only for a tree bound before folds were kept */
    int fold;
    const char **text;
    size_t *text_len;
    const char *text_small[4];
    size_t len_small[4];
    char **owned;
    fold_buf fb;
    uint8_t *memo;          /* per pool code: 0 not yet known, 1 pred true, 2 false */
    uint32_t memo_n;
} cond;

static void cond_init(cond *c, const filter_node *n, segd_type type, const filter_env *env)
{
    memset(c, 0, sizeof *c);
    c->e = env->e;
    c->op = n->op;
    c->type = type;
    c->lits = n->values;
    c->n_lits = n->n_values;
    switch (n->op) {
    case FOP_NE: case FOP_NOT_IN: case FOP_NOT_CONTAINS:
        c->negate = 1;
        c->true_on_missing = 1;
        break;
    case FOP_IS_NOT_SET:
        c->negate = 1;   /* pred is "has a value": always true */
        c->true_on_missing = 1;
        break;
    case FOP_IS_EMPTY:
        c->true_on_missing = 1;
        break;
    default:
        break;
    }
    if (type == SEGD_T_NUMBER && n->n_values) {
        c->a = n->values[0].number;
        c->b = n->n_values > 1 ? n->values[1].number : c->a;
    }
    if (type == SEGD_T_BOOL && n->n_values) c->boolean = n->values[0].boolean;
    if (type == SEGD_T_DATETIME) {
        c->lo = INT64_MIN;
        c->hi = INT64_MAX;
        switch (n->op) {
        case FOP_BEFORE: c->hi = n->values[0].time_ms - 1; break;
        case FOP_AFTER: c->lo = n->values[0].time_ms + 1; break;
        case FOP_BETWEEN: c->lo = n->values[0].time_ms; c->hi = n->values[1].time_ms; break;
        case FOP_MORE_THAN_AGO: c->hi = env->now_ms - n->duration_ms - 1; break;
        case FOP_LESS_THAN_AGO: c->lo = env->now_ms - n->duration_ms; break;
        case FOP_ON_DAY: c->lo = n->values[0].time_ms; c->hi = n->values[0].time_ms + DAY_MS - 1; break;
        default: break;
        }
    }
    if ((type == SEGD_T_STRING || type == SEGD_T_LIST) && n->n_values) {
        c->fold = !n->case_sensitive;
        int small = n->n_values <= 4;
        c->text = small ? c->text_small : xmalloc(n->n_values * sizeof *c->text);
        c->text_len = small ? c->len_small : xmalloc(n->n_values * sizeof *c->text_len);
        for (uint32_t i = 0; i < n->n_values; i++) {
            const filter_literal *v = &n->values[i];
            if (!c->fold) {
                c->text[i] = v->str;
                c->text_len[i] = v->len;
            } else if (v->folded) {
                c->text[i] = v->folded;
                c->text_len[i] = v->folded_len;
            } else {
                if (!c->owned) c->owned = xcalloc(n->n_values, sizeof *c->owned);
                fold_utf8(v->str, v->len, &c->fb);
                c->owned[i] = xstrndup(c->fb.s, c->fb.len);
                c->text[i] = c->owned[i];
                c->text_len[i] = c->fb.len;
            }
        }
    }
}

static void cond_release(cond *c)
{
    if (c->owned)
        for (uint32_t i = 0; i < c->n_lits; i++) free(c->owned[i]);
    free(c->owned);
    if (c->text != c->text_small) free(c->text);
    if (c->text_len != c->len_small) free(c->text_len);
    fold_buf_release(&c->fb);
    free(c->memo);
}

static int has_at(const char *s, size_t len, const char *t, size_t tlen, size_t at)
{
    return at + tlen <= len && memcmp(s + at, t, tlen) == 0;
}

/* The positive string predicate of c on bytes s[0..len). */
static int pred_string(cond *c, const char *s, size_t len)
{
    if (c->fold) {
        fold_utf8(s, len, &c->fb);
        s = c->fb.s;
        len = c->fb.len;
    }
    switch (c->op) {
    case FOP_EQ: case FOP_NE:
        return len == c->text_len[0] && memcmp(s, c->text[0], len) == 0;
    case FOP_IN: case FOP_NOT_IN:
        for (uint32_t i = 0; i < c->n_lits; i++)
            if (len == c->text_len[i] && memcmp(s, c->text[i], len) == 0) return 1;
        return 0;
    case FOP_CONTAINS: case FOP_NOT_CONTAINS:
        if (c->type == SEGD_T_LIST)   /* an item equals the text */
            return len == c->text_len[0] && memcmp(s, c->text[0], len) == 0;
        return memmem(s, len, c->text[0], c->text_len[0]) != NULL;
    case FOP_STARTS_WITH:
        return has_at(s, len, c->text[0], c->text_len[0], 0);
    case FOP_ENDS_WITH:
        return len >= c->text_len[0] && has_at(s, len, c->text[0], c->text_len[0], len - c->text_len[0]);
    case FOP_IS_SET: case FOP_IS_NOT_SET:
        return 1;
    default:
        return 0;
    }
}

/* The predicate on a pool code (remembered per code once the memo exists). */
static int pred_code(cond *c, uint32_t code)
{
    if (c->memo && code < c->memo_n && c->memo[code]) return c->memo[code] == 1;
    size_t len;
    const char *s = engine_string(c->e, code, &len);
    int p = s ? pred_string(c, s, len) : 0;
    if (c->memo && code < c->memo_n) c->memo[code] = p ? 1 : 2;
    return p;
}

static void cond_memo(cond *c)
{
    if (c->memo) return;
    c->memo_n = engine_string_limit(c->e);
    c->memo = xcalloc(c->memo_n ? c->memo_n : 1, 1);
}

static int pred_number(const cond *c, double v)
{
    switch (c->op) {
    case FOP_EQ: case FOP_NE: return v == c->a;
    case FOP_GT: return v > c->a;
    case FOP_GTE: return v >= c->a;
    case FOP_LT: return v < c->a;
    case FOP_LTE: return v <= c->a;
    case FOP_BETWEEN: return v >= c->a && v <= c->b;
    case FOP_IN: case FOP_NOT_IN:
        for (uint32_t i = 0; i < c->n_lits; i++)
            if (v == c->lits[i].number) return 1;
        return 0;
    case FOP_IS_SET: case FOP_IS_NOT_SET: return 1;
    default: return 0;
    }
}

static int pred_time(const cond *c, int64_t t)
{
    return t >= c->lo && t <= c->hi;
}

/* The predicate on a list cell [n, codes...]. */
static int pred_list(cond *c, const uint32_t *cell)
{
    uint32_t n = cell ? cell[0] : 0;
    switch (c->op) {
    case FOP_IS_EMPTY: return n == 0;
    case FOP_IS_NOT_EMPTY: return n > 0;
    case FOP_CONTAINS: case FOP_NOT_CONTAINS:
        for (uint32_t i = 1; i <= n; i++)
            if (pred_code(c, cell[i])) return 1;
        return 0;
    default: return 0;
    }
}

/* The whole answer for one value read from the engine (missing included). */
static int cond_match_cell(cond *c, const segd_cell *v)
{
    if (v->type == SEGD_T_NONE) return c->true_on_missing;
    int p;
    switch (c->type) {
    case SEGD_T_STRING: case SEGD_T_JSON: p = c->op == FOP_IS_SET || c->op == FOP_IS_NOT_SET ? 1 : pred_code(c, v->code); break;
    case SEGD_T_NUMBER: p = pred_number(c, v->number); break;
    case SEGD_T_BOOL: p = c->op == FOP_EQ ? v->boolean == c->boolean : 1; break;
    case SEGD_T_DATETIME: p = pred_time(c, v->time_ms); break;
    case SEGD_T_LIST: {
        /* segd_cell gives the codes without the count: rebuild the cell's view */
        if (c->op == FOP_IS_EMPTY) { p = v->n_codes == 0; break; }
        if (c->op == FOP_IS_NOT_EMPTY) { p = v->n_codes > 0; break; }
        p = 0;
        for (uint32_t i = 0; i < v->n_codes && !p; i++) p = pred_code(c, v->codes[i]);
        break;
    }
    default: p = 0; break;
    }
    return c->negate ? !p : p;
}

/* ---- sets of people or rows ---- */

/* What a tree is evaluated over: people (attribute columns) or the rows of one event
 * type (its property columns). `live` is the mask of existing people / rows of a live
 * person, made on first use. */
typedef struct space {
    const filter_env *env;
    int event_type;          /* -1: people */
    uint32_t n;              /* people limit or rows */
    size_t words;
    uint64_t *live;
} space;

static void space_init(space *sp, const filter_env *env, int event_type)
{
    memset(sp, 0, sizeof *sp);
    sp->env = env;
    sp->event_type = event_type;
    sp->n = event_type < 0 ? engine_person_limit(env->e) : engine_event_rows(env->e, event_type);
    sp->words = ((size_t)sp->n + 63) / 64;
}

static void space_release(space *sp)
{
    free(sp->live);
}

static const uint64_t *space_live(space *sp)
{
    if (sp->live) return sp->live;
    sp->live = xcalloc(sp->words ? sp->words : 1, sizeof *sp->live);
    const engine *e = sp->env->e;
    if (sp->event_type < 0) {
        uint32_t pages = engine_people_pages(e);
        for (uint32_t p = 0; p < pages; p++) {
            engine_page pg;
            if (!engine_people_page(e, p, &pg)) continue;
            size_t w0 = (size_t)p * PAGE_WORDS;
            for (size_t w = 0; w < PAGE_WORDS && w0 + w < sp->words; w++) sp->live[w0 + w] = pg.present[w];
        }
    } else {
        const person_id *persons = engine_event_persons(e, sp->event_type);
        for (uint32_t r = 0; r < sp->n; r++)
            if (persons[r] != PERSON_NONE) sp->live[r >> 6] |= (uint64_t)1 << (r & 63);
    }
    return sp->live;
}

static uint32_t space_pages(const space *sp, int column)
{
    const engine *e = sp->env->e;
    return sp->event_type < 0 ? engine_attr_pages(e, column) : engine_prop_pages(e, sp->event_type, column);
}

static int space_page(const space *sp, int column, uint32_t page, engine_page *out)
{
    const engine *e = sp->env->e;
    return sp->event_type < 0 ? engine_attr_page(e, column, page, out)
                              : engine_prop_page(e, sp->event_type, column, page, out);
}

/* Positive-predicate bits of one page's 64-row word w, decided for the present rows
 * among `only` (strings and lists, which cost a look-up per row, skip the others). */
static uint64_t page_word_pred(cond *c, const engine_page *pg, size_t w, uint64_t only)
{
    uint64_t present = pg->present[w];
    if (!present) return 0;
    if (c->op == FOP_IS_SET || c->op == FOP_IS_NOT_SET) return present;
    uint64_t m = 0;
    size_t base = w * 64;
    switch (c->type) {
    case SEGD_T_NUMBER: {
        const double *v = (const double *)pg->values + base;
        switch (c->op) {
        case FOP_GT: for (int i = 0; i < 64; i++) m |= (uint64_t)(v[i] > c->a) << i; break;
        case FOP_GTE: for (int i = 0; i < 64; i++) m |= (uint64_t)(v[i] >= c->a) << i; break;
        case FOP_LT: for (int i = 0; i < 64; i++) m |= (uint64_t)(v[i] < c->a) << i; break;
        case FOP_LTE: for (int i = 0; i < 64; i++) m |= (uint64_t)(v[i] <= c->a) << i; break;
        case FOP_EQ: case FOP_NE: for (int i = 0; i < 64; i++) m |= (uint64_t)(v[i] == c->a) << i; break;
        case FOP_BETWEEN:
            for (int i = 0; i < 64; i++) m |= (uint64_t)(v[i] >= c->a && v[i] <= c->b) << i;
            break;
        default:
            for (int i = 0; i < 64; i++) m |= (uint64_t)pred_number(c, v[i]) << i;
            break;
        }
        break;
    }
    case SEGD_T_DATETIME: {
        const int64_t *v = (const int64_t *)pg->values + base;
        for (int i = 0; i < 64; i++) m |= (uint64_t)(v[i] >= c->lo && v[i] <= c->hi) << i;
        break;
    }
    case SEGD_T_BOOL: {
        uint64_t bits = ((const uint64_t *)pg->values)[w];
        m = c->boolean ? bits : ~bits;
        break;
    }
    case SEGD_T_STRING: case SEGD_T_JSON: {
        const uint32_t *v = (const uint32_t *)pg->values + base;
        if (!c->memo) {
            for (uint64_t left = present & only; left; left &= left - 1) {
                int i = __builtin_ctzll(left);
                m |= (uint64_t)pred_code(c, v[i]) << i;
            }
            break;
        }
        /* Branch-free over the 64 rows once the codes are known (a column of few
         * distinct values knows them all after its first rows); the unknown ones are
         * decided one by one. Missing slots hold code 0, which is masked off below. */
        uint64_t unknown = 0;
        const uint8_t *memo = c->memo;
        if (base + 64 <= ENGINE_PAGE_ROWS) {
            for (int i = 0; i < 64; i++) {
                uint32_t code = v[i];
                uint8_t k = code < c->memo_n ? memo[code] : 0;
                m |= (uint64_t)(k == 1) << i;
                unknown |= (uint64_t)(k == 0) << i;
            }
        }
        for (uint64_t left = unknown & present & only; left; left &= left - 1) {
            int i = __builtin_ctzll(left);
            m |= (uint64_t)pred_code(c, v[i]) << i;
        }
        break;
    }
    case SEGD_T_LIST: {
        const uint32_t *const *v = (const uint32_t *const *)pg->values + base;
        for (uint64_t left = present & only; left; left &= left - 1) {
            int i = __builtin_ctzll(left);
            m |= (uint64_t)pred_list(c, v[i]) << i;
        }
        break;
    }
    default:
        break;
    }
    return m & present;
}

/* A condition over a column of the space (attribute or property): out gets exactly the
 * live people / rows for which it is true, among cand (NULL: all; elsewhere out is 0). */
static void eval_column(space *sp, const filter_node *n, uint64_t *out, const uint64_t *cand)
{
    cond c;
    cond_init(&c, n, n->type, sp->env);
    if (c.type == SEGD_T_STRING || c.type == SEGD_T_LIST || c.type == SEGD_T_JSON) cond_memo(&c);
    const uint64_t *live = c.true_on_missing ? space_live(sp) : NULL;
    uint32_t pages = space_pages(sp, n->index);
    size_t w_end = sp->words;
    for (size_t w = 0; w < w_end; w++) out[w] = 0;
    for (uint32_t p = 0; (size_t)p * PAGE_WORDS < w_end; p++) {
        size_t w0 = (size_t)p * PAGE_WORDS;
        size_t wn = w_end - w0 < PAGE_WORDS ? w_end - w0 : PAGE_WORDS;
        engine_page pg;
        if (p >= pages || !space_page(sp, n->index, p, &pg)) {
            if (c.true_on_missing)
                for (size_t w = 0; w < wn; w++) out[w0 + w] = live[w0 + w];
            continue;
        }
        for (size_t w = 0; w < wn; w++) {
            uint64_t only = cand ? cand[w0 + w] : ~(uint64_t)0;
            if (!only) continue;
            uint64_t present = pg.present[w];
            uint64_t m = page_word_pred(&c, &pg, w, only);
            if (c.negate) m = present & ~m;
            if (c.true_on_missing) m |= live[w0 + w] & ~present;
            out[w0 + w] = m;
        }
    }
    cond_release(&c);
}

/* A string or list condition on an attribute that keeps a value index (column.h):
 * decide each distinct value once and OR the bitmaps of those that match (negated
 * operators: everyone live but them). Returns 0, or -1 when the attribute keeps no
 * index or the operator does not read values (is_set, is_empty...): the caller scans. */
static int eval_value_index(space *sp, const filter_node *n, uint64_t *out)
{
    const engine *e = sp->env->e;
    if (sp->event_type >= 0) return -1;
    switch (n->op) {
    case FOP_CONTAINS: case FOP_NOT_CONTAINS:
        break;
    case FOP_EQ: case FOP_NE: case FOP_IN: case FOP_NOT_IN: case FOP_STARTS_WITH: case FOP_ENDS_WITH:
        if (n->type != SEGD_T_STRING) return -1;
        break;
    default:
        return -1;
    }
    int64_t items = engine_list_items(e, n->index);
    if (items < 0) return -1;
    cond c;
    cond_init(&c, n, n->type, sp->env);
    memset(out, 0, sp->words * sizeof *out);
    for (uint32_t i = 0; i < (uint32_t)items; i++) {
        uint32_t code = engine_list_item_people(e, n->index, i, NULL);
        if (pred_code(&c, code)) engine_list_item_people(e, n->index, i, out);
    }
    if (c.negate) {
        const uint64_t *live = space_live(sp);
        for (size_t w = 0; w < sp->words; w++) out[w] = live[w] & ~out[w];
    }
    cond_release(&c);
    return 0;
}

static int eval_node(space *sp, const filter_node *n, uint64_t *out, const uint64_t *cand);

/* ---- event conditions ---- */

/* The window as an inclusive time range. */
static void window_range(const filter_node *n, int64_t now_ms, int64_t *lo, int64_t *hi)
{
    switch (n->window) {
    case FWIN_WITHIN: *lo = now_ms - n->within_ms; *hi = now_ms; break;
    case FWIN_RANGE: *lo = n->from_ms; *hi = n->to_ms - 1; break;
    default: *lo = INT64_MIN; *hi = INT64_MAX; break;
    }
}

/* A value of a property as a 64-bit key for count_distinct. */
static uint64_t distinct_key(const segd_cell *v)
{
    uint64_t k = 0;
    switch (v->type) {
    case SEGD_T_STRING: case SEGD_T_JSON: k = v->code; break;
    case SEGD_T_NUMBER: {
        double d = v->number == 0 ? 0 : v->number;   /* -0 and 0 are one value */
        memcpy(&k, &d, sizeof k);
        break;
    }
    case SEGD_T_DATETIME: k = (uint64_t)v->time_ms; break;
    case SEGD_T_BOOL: k = (uint64_t)v->boolean; break;
    case SEGD_T_LIST: {
        k = 1469598103934665603ULL;
        for (uint32_t i = 0; i < v->n_codes; i++) k = (k ^ v->codes[i]) * 1099511628211ULL;
        k ^= v->n_codes;
        break;
    }
    default: break;
    }
    /* the type in the top bits keeps a number and a string code apart */
    return k ^ ((uint64_t)v->type << 60);
}

/* Per-person accumulator of an event metric. */
typedef struct acc {
    double sum;
    double min, max;
    int64_t first, last;
    uint32_t count;   /* events counted (count), or events with the property (sum..max) */
} acc;

static void acc_add_number(acc *a, double v)
{
    if (a->count == 0 || v < a->min) a->min = v;
    if (a->count == 0 || v > a->max) a->max = v;
    a->sum += v;
    a->count++;
}

static void acc_add_time(acc *a, int64_t t)
{
    if (a->count == 0 || t < a->first) a->first = t;
    if (a->count == 0 || t > a->last) a->last = t;
    a->count++;
}

/* The metric's value for a person from the accumulator: 1 and *v / *t, or 0 missing. */
static int metric_value(filter_fn fn, const acc *a, uint32_t distinct, double *v, int64_t *t)
{
    switch (fn) {
    case FFN_COUNT: *v = a->count; return 1;
    case FFN_SUM: *v = a->count ? a->sum : 0; return 1;
    case FFN_COUNT_DISTINCT: *v = distinct; return 1;
    case FFN_AVG: if (!a->count) return 0; *v = a->sum / a->count; return 1;
    case FFN_MIN: if (!a->count) return 0; *v = a->min; return 1;
    case FFN_MAX: if (!a->count) return 0; *v = a->max; return 1;
    case FFN_FIRST_AT: if (!a->count) return 0; *t = a->first; return 1;
    case FFN_LAST_AT: if (!a->count) return 0; *t = a->last; return 1;
    default: return 0;
    }
}

static int metric_matches(cond *c, filter_fn fn, const acc *a, uint32_t distinct)
{
    segd_cell cell = { 0 };
    double v = 0;
    int64_t t = 0;
    if (metric_value(fn, a, distinct, &v, &t)) {
        cell.type = fn == FFN_FIRST_AT || fn == FFN_LAST_AT ? SEGD_T_DATETIME : SEGD_T_NUMBER;
        cell.number = v;
        cell.time_ms = t;
    }
    return cond_match_cell(c, &cell);
}

typedef struct pair {
    person_id person;
    uint64_t key;
} pair;

static int cmp_pair(const void *x, const void *y)
{
    const pair *a = x, *b = y;
    if (a->person != b->person) return a->person < b->person ? -1 : 1;
    return (a->key > b->key) - (a->key < b->key);
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* The per-person metric arrays of one event condition's scan: only those its metric
 * needs (a count is 4 bytes a person, a sum 8), so a scan over millions of people
 * touches as little memory as it can. */
typedef struct metric_arrays {
    uint32_t *count;      /* COUNT; events with the property for AVG, MIN, MAX */
    double *value;        /* SUM, AVG (sums), MIN, MAX */
    int64_t *time;        /* FIRST_AT, LAST_AT */
    uint32_t *distinct;   /* COUNT_DISTINCT */
} metric_arrays;

static void metric_arrays_release(metric_arrays *m)
{
    free(m->count);
    free(m->value);
    free(m->time);
    free(m->distinct);
}

/* The metric of person p from the arrays: 1 and *v / *t, or 0 when missing. */
static int metric_of(filter_fn fn, const metric_arrays *m, person_id p, double *v, int64_t *t)
{
    switch (fn) {
    case FFN_COUNT: *v = m->count[p]; return 1;
    case FFN_SUM: *v = m->value[p]; return 1;
    case FFN_COUNT_DISTINCT: *v = m->distinct[p]; return 1;
    case FFN_AVG: if (!m->count[p]) return 0; *v = m->value[p] / m->count[p]; return 1;
    case FFN_MIN: case FFN_MAX: if (!m->count[p]) return 0; *v = m->value[p]; return 1;
    case FFN_FIRST_AT: if (m->time[p] == INT64_MAX) return 0; *t = m->time[p]; return 1;
    case FFN_LAST_AT: if (m->time[p] == INT64_MIN) return 0; *t = m->time[p]; return 1;
    default: return 0;
    }
}

/* The comparison of counts (or sums: count NULL, sums given) with a number,
 * branch-free over 64 people at a time (the common "did it at least N times", "never
 * did", "spent at least X"): fills out and returns 1, or returns 0 for operators it
 * does not handle (in, not_in). Counts and sums are never missing. */
static int count_compare(const cond *c, const uint32_t *count, const double *sums, const uint64_t *live,
                         const uint64_t *cand, uint32_t n_people, uint64_t *out)
{
    double a = c->a, b = c->b;
    int op;
    switch (c->op) {
    case FOP_EQ: case FOP_NE: op = 0; break;
    case FOP_GT: op = 1; break;
    case FOP_GTE: op = 2; break;
    case FOP_LT: op = 3; break;
    case FOP_LTE: op = 4; break;
    case FOP_BETWEEN: op = 5; break;
    case FOP_IS_SET: case FOP_IS_NOT_SET: op = 6; break;
    default: return 0;
    }
    size_t words = ((size_t)n_people + 63) / 64;
    for (size_t w = 0; w < words; w++) {
        uint64_t mask = cand ? live[w] & cand[w] : live[w];
        if (!mask) {
            out[w] = 0;
            continue;
        }
        uint64_t m = 0;
        size_t base = w * 64, k = n_people - base < 64 ? n_people - base : 64;
        double v[64];
        if (count)
            for (size_t i = 0; i < k; i++) v[i] = count[base + i];
        else
            for (size_t i = 0; i < k; i++) v[i] = sums[base + i];
        switch (op) {
        case 0: for (size_t i = 0; i < k; i++) m |= (uint64_t)(v[i] == a) << i; break;
        case 1: for (size_t i = 0; i < k; i++) m |= (uint64_t)(v[i] > a) << i; break;
        case 2: for (size_t i = 0; i < k; i++) m |= (uint64_t)(v[i] >= a) << i; break;
        case 3: for (size_t i = 0; i < k; i++) m |= (uint64_t)(v[i] < a) << i; break;
        case 4: for (size_t i = 0; i < k; i++) m |= (uint64_t)(v[i] <= a) << i; break;
        case 5: for (size_t i = 0; i < k; i++) m |= (uint64_t)(v[i] >= a && v[i] <= b) << i; break;
        default: m = ~(uint64_t)0; break;
        }
        if (c->negate) m = ~m;
        out[w] = m & mask;
    }
    return 1;
}

/* An event condition for everyone, or only for the people in cand (non-NULL: the
 * answer outside cand is left 0, since the caller ANDs it away). */
static int eval_event(space *people, const filter_node *n, uint64_t *out, const uint64_t *cand)
{
    const filter_env *env = people->env;
    const engine *e = env->e;
    int type = n->index;
    uint32_t rows = engine_event_rows(e, type);
    const person_id *persons = engine_event_persons(e, type);
    const int64_t *times = engine_event_times(e, type);
    size_t slots = people->n ? people->n : 1;
    metric_arrays m = { 0 };
    int rc = 0;

    int64_t lo, hi;
    window_range(n, env->now_ms, &lo, &hi);

    /* The rows that count: in the window, of a live person (and a candidate); the where
     * tree is then decided only for those. Without window, candidates or where, every
     * row of a live person counts and no mask is made. */
    uint64_t *rowmask = NULL;
    if (n->window != FWIN_ALL || cand || n->where) {
        size_t rwords = ((size_t)rows + 63) / 64;
        rowmask = xmalloc((rwords ? rwords : 1) * sizeof *rowmask);
        /* the zone map skips blocks of rows wholly outside the window (events arrive
         * roughly in time order, so a recent window reads only the last blocks) */
        const int64_t *zmin, *zmax;
        uint32_t zones = engine_event_zones(e, type, &zmin, &zmax);
        for (size_t w = 0; w < rwords; w++) {
            uint64_t bits = 0;
            uint32_t r0 = (uint32_t)(w * 64), rn = rows - r0 < 64 ? rows - r0 : 64;
            uint32_t z = r0 / ENGINE_ZONE_ROWS;
            if (z < zones && (zmax[z] < lo || zmin[z] > hi)) {
                rowmask[w] = 0;
                continue;
            }
            for (uint32_t i = 0; i < rn; i++) {
                int64_t t = times[r0 + i];
                person_id p = persons[r0 + i];
                int keep = t >= lo && t <= hi && p != PERSON_NONE;
                if (cand && keep) keep = (int)(cand[p >> 6] >> (p & 63) & 1);
                bits |= (uint64_t)keep << i;
            }
            rowmask[w] = bits;
        }
        if (n->where) {
            space rs;
            space_init(&rs, env, type);
            uint64_t *wm = xmalloc((rs.words ? rs.words : 1) * sizeof *wm);
            rc = eval_node(&rs, n->where, wm, rowmask);
            for (size_t w = 0; w < rwords; w++) rowmask[w] &= wm[w];
            free(wm);
            space_release(&rs);
            if (rc) goto done;
        }
    }

    if (n->fn == FFN_COUNT) {
        uint32_t *count = m.count = xcalloc(slots, sizeof *m.count);
        if (rowmask) {
            for (size_t w = 0; w < ((size_t)rows + 63) / 64; w++)
                for (uint64_t bits = rowmask[w]; bits; bits &= bits - 1)
                    count[persons[w * 64 + (size_t)__builtin_ctzll(bits)]]++;
        } else {
            for (uint32_t r = 0; r < rows; r++)
                if (persons[r] != PERSON_NONE) count[persons[r]]++;
        }
    } else if (n->fn == FFN_FIRST_AT || n->fn == FFN_LAST_AT) {
        int first = n->fn == FFN_FIRST_AT;
        int64_t *time = m.time = xmalloc(slots * sizeof *m.time);
        for (size_t i = 0; i < slots; i++) time[i] = first ? INT64_MAX : INT64_MIN;
        for (uint32_t r = 0; r < rows; r++) {
            if (rowmask && !(rowmask[r >> 6] >> (r & 63) & 1)) continue;
            int64_t t = times[r];
            person_id p = persons[r];
            if (p == PERSON_NONE) continue;
            if (first ? t < time[p] : t > time[p]) time[p] = t;
        }
    } else {
        /* metrics of a property: walk the property column's pages */
        pair *pairs = NULL;
        size_t n_pairs = 0, pairs_cap = 0;
        uint32_t pages = engine_prop_pages(e, type, n->metric_prop);
        if (n->fn == FFN_COUNT_DISTINCT) {
            m.distinct = xcalloc(slots, sizeof *m.distinct);
        } else {
            m.value = xcalloc(slots, sizeof *m.value);
            if (n->fn != FFN_SUM) m.count = xcalloc(slots, sizeof *m.count);
        }
        for (uint32_t pgi = 0; pgi < pages; pgi++) {
            engine_page pg;
            if (!engine_prop_page(e, type, n->metric_prop, pgi, &pg)) continue;
            const double *nums = pg.values;
            for (uint32_t w = 0; w < PAGE_WORDS; w++) {
                uint64_t bits = pg.present[w];
                uint32_t r0 = pg.first_row + w * 64;
                if (rowmask && r0 < rows) bits &= rowmask[r0 >> 6];
                if (bits == ~(uint64_t)0 && n->fn == FFN_SUM && r0 + 64 <= rows) {
                    /* the common case, a word of rows that all have the property: a
                     * value present on an event means its person is live (erasure
                     * clears an event's values), so no check but the sum itself */
                    const double *v = nums + w * 64;
                    const person_id *who = persons + r0;
                    for (int i = 0; i < 64; i++) m.value[who[i]] += v[i];
                    continue;
                }
                for (; bits; bits &= bits - 1) {
                    uint32_t i = (uint32_t)__builtin_ctzll(bits);
                    uint32_t r = r0 + i;
                    if (r >= rows) break;
                    person_id p = persons[r];
                    if (p == PERSON_NONE) continue;
                    if (n->fn == FFN_COUNT_DISTINCT) {
                        segd_cell cell;
                        engine_event_prop_get(e, type, r, n->metric_prop, &cell);
                        pairs = xgrow(pairs, sizeof *pairs, &pairs_cap, n_pairs + 1, 1024);
                        pairs[n_pairs++] = (pair){ p, distinct_key(&cell) };
                        continue;
                    }
                    double v = nums[w * 64 + i];
                    switch (n->fn) {
                    case FFN_SUM: m.value[p] += v; break;
                    case FFN_AVG: m.value[p] += v; m.count[p]++; break;
                    case FFN_MIN: if (!m.count[p]++ || v < m.value[p]) m.value[p] = v; break;
                    case FFN_MAX: if (!m.count[p]++ || v > m.value[p]) m.value[p] = v; break;
                    default: break;
                    }
                }
            }
        }
        if (n->fn == FFN_COUNT_DISTINCT) {
            if (n_pairs) qsort(pairs, n_pairs, sizeof *pairs, cmp_pair);
            for (size_t i = 0; i < n_pairs; i++)
                if (i == 0 || pairs[i].person != pairs[i - 1].person || pairs[i].key != pairs[i - 1].key)
                    m.distinct[pairs[i].person]++;
        }
        free(pairs);
    }

    /* compare each live person's metric */
    cond c;
    cond_init(&c, n, n->type, env);
    const uint64_t *live = space_live(people);
    int datetime = n->type == SEGD_T_DATETIME;
    if (n->fn == FFN_COUNT && count_compare(&c, m.count, NULL, live, cand, people->n, out)) goto compared;
    if (n->fn == FFN_SUM && count_compare(&c, NULL, m.value, live, cand, people->n, out)) goto compared;
    for (size_t w = 0; w < people->words; w++) {
        uint64_t bits_out = 0;
        for (uint64_t bits = cand ? live[w] & cand[w] : live[w]; bits; bits &= bits - 1) {
            int i = __builtin_ctzll(bits);
            person_id p = (person_id)(w * 64 + (size_t)i);
            double v = 0;
            int64_t t = 0;
            int match;
            if (!metric_of(n->fn, &m, p, &v, &t)) match = c.true_on_missing;
            else match = (datetime ? pred_time(&c, t) : pred_number(&c, v)) ^ c.negate;
            bits_out |= (uint64_t)match << i;
        }
        out[w] = bits_out;
    }
compared:
    cond_release(&c);
done:
    metric_arrays_release(&m);
    free(rowmask);
    return rc;
}

/* ---- the other conditions ---- */

/* FNV-1a 64 of salt ":" user_id, modulo 100. */
static int bucket_of(const char *salt, const char *user_id, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (const char *s = salt; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h = (h ^ (unsigned char)':') * 1099511628211ULL;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)user_id[i]) * 1099511628211ULL;
    return (int)(h % 100);
}

static int bucket_matches(const filter_node *n, const engine *e, uint32_t code)
{
    size_t len;
    const char *uid = engine_string(e, code, &len);
    if (!uid) return 0;
    int b = bucket_of(n->name, uid, len);
    return b >= n->bucket_from && b <= n->bucket_to;
}

static void eval_bucket(space *sp, const filter_node *n, uint64_t *out)
{
    const engine *e = sp->env->e;
    for (size_t w = 0; w < sp->words; w++) out[w] = 0;
    uint32_t pages = engine_attr_pages(e, ATTR_USER_ID);
    for (uint32_t p = 0; p < pages; p++) {
        engine_page pg;
        if (!engine_attr_page(e, ATTR_USER_ID, p, &pg)) continue;
        const uint32_t *codes = pg.values;
        for (uint32_t w = 0; w < PAGE_WORDS && (size_t)p * PAGE_WORDS + w < sp->words; w++) {
            uint64_t m = 0;
            for (uint64_t bits = pg.present[w]; bits; bits &= bits - 1) {
                int i = __builtin_ctzll(bits);
                m |= (uint64_t)bucket_matches(n, e, codes[w * 64 + (uint32_t)i]) << i;
            }
            out[(size_t)p * PAGE_WORDS + w] = m;
        }
    }
}

static int eval_segment(space *sp, const filter_node *n, uint64_t *out)
{
    const filter_resolver *r = sp->env->resolver;
    for (size_t w = 0; w < sp->words; w++) out[w] = 0;
    if (!r || !r->members) return SEGD_ENOTFOUND;
    int rc = r->members(r->ctx, n->name, n->op == FOP_IN_CACHED, out, sp->n);
    if (rc) return rc;
    const uint64_t *live = space_live(sp);
    for (size_t w = 0; w < sp->words; w++)
        out[w] = n->op == FOP_NOT_IN ? live[w] & ~out[w] : live[w] & out[w];
    return 0;
}

/* ---- groups ---- */

/* A rough cost of evaluating a node over everyone, to run cheap children first:
 * column conditions read one array, event conditions a whole log. */
static uint64_t node_cost(const space *sp, const filter_node *n)
{
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR: case FILTER_NOT: {
        uint64_t c = 1;
        for (uint32_t i = 0; i < n->n_children; i++) c += node_cost(sp, n->children[i]);
        return c;
    }
    case FILTER_EVENT:
        return sp->n + (uint64_t)engine_event_rows(sp->env->e, n->index) * (n->where ? 4 : 1);
    case FILTER_BUCKET:
        return (uint64_t)sp->n * 8;   /* a hash per person */
    default:
        return sp->n;
    }
}

static int all_zero(const uint64_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (w[i]) return 0;
    return 1;
}

/* Evaluates n over the space into out. cand (people space only; NULL: everyone) says
 * whose answer matters: out is exact for them and may be anything for others, so an
 * AND can pass what its earlier children left as the candidates of the next. */
static int eval_node(space *sp, const filter_node *n, uint64_t *out, const uint64_t *cand)
{
    size_t words = sp->words;
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR: {
        if (n->n_children == 0) {
            if (n->kind == FILTER_AND) memcpy(out, space_live(sp), words * sizeof *out);
            else memset(out, 0, words * sizeof *out);
            return 0;
        }
        /* cheapest first: an AND narrows the candidates of the costly children */
        uint32_t k = n->n_children;
        uint32_t *idx = xmalloc(k * sizeof *idx);
        uint64_t *cost = xmalloc(k * sizeof *cost);
        for (uint32_t i = 0; i < k; i++) {
            idx[i] = i;
            cost[i] = node_cost(sp, n->children[i]);
        }
        for (uint32_t i = 1; i < k; i++)   /* insertion sort: a handful of children */
            for (uint32_t j = i; j > 0 && cost[idx[j]] < cost[idx[j - 1]]; j--) {
                uint32_t t = idx[j];
                idx[j] = idx[j - 1];
                idx[j - 1] = t;
            }
        int rc = eval_node(sp, n->children[idx[0]], out, cand);
        uint64_t *tmp = k > 1 ? xmalloc((words ? words : 1) * sizeof *tmp) : NULL;
        for (uint32_t i = 1; i < k && !rc; i++) {
            if (n->kind == FILTER_AND) {
                if (all_zero(out, words)) break;
                rc = eval_node(sp, n->children[idx[i]], tmp, out);
                for (size_t w = 0; w < words; w++) out[w] &= tmp[w];
            } else {
                rc = eval_node(sp, n->children[idx[i]], tmp, cand);
                for (size_t w = 0; w < words; w++) out[w] |= tmp[w];
            }
        }
        free(tmp);
        free(cost);
        free(idx);
        return rc;
    }
    case FILTER_NOT: {
        int rc = eval_node(sp, n->children[0], out, cand);
        if (rc) return rc;
        const uint64_t *live = space_live(sp);
        for (size_t w = 0; w < words; w++) out[w] = live[w] & ~out[w];
        return 0;
    }
    case FILTER_ATTRIBUTE: case FILTER_PROPERTY:
        if ((n->type == SEGD_T_LIST || n->type == SEGD_T_STRING) && eval_value_index(sp, n, out) == 0) return 0;
        eval_column(sp, n, out, cand);
        return 0;
    case FILTER_EVENT:
        return eval_event(sp, n, out, cand);
    case FILTER_BUCKET:
        eval_bucket(sp, n, out);
        return 0;
    case FILTER_SEGMENT:
        return eval_segment(sp, n, out);
    }
    return SEGD_EINVAL;
}

int filter_eval(const filter_node *n, const filter_env *env, uint64_t *out)
{
    space sp;
    space_init(&sp, env, -1);
    int rc = eval_node(&sp, n, out, NULL);
    if (rc) memset(out, 0, sp.words * sizeof *out);
    space_release(&sp);
    return rc;
}

/* ---- one person ---- */

/* The where tree for one event row. */
static int match_row(const filter_env *env, const filter_node *n, int type, uint32_t row)
{
    switch (n->kind) {
    case FILTER_AND:
        for (uint32_t i = 0; i < n->n_children; i++)
            if (!match_row(env, n->children[i], type, row)) return 0;
        return 1;
    case FILTER_OR:
        for (uint32_t i = 0; i < n->n_children; i++)
            if (match_row(env, n->children[i], type, row)) return 1;
        return 0;
    case FILTER_NOT:
        return !match_row(env, n->children[0], type, row);
    case FILTER_PROPERTY: {
        segd_cell v;
        engine_event_prop_get(env->e, type, row, n->index, &v);
        cond c;
        cond_init(&c, n, n->type, env);
        int m = cond_match_cell(&c, &v);
        cond_release(&c);
        return m;
    }
    default:
        return 0;
    }
}

/* The metric inputs of an event condition for one person: the accumulator, the number
 * of distinct values (count_distinct) and of events that passed the window and where. */
/* ---- the per-person metric cache ---- */

typedef struct cache_entry {
    uint64_t key;                  /* 0: empty slot */
    acc a;
    uint32_t distinct, events;
    int64_t window_next;           /* INT64_MIN: not computed yet */
} cache_entry;

/* A person's events of one type that pass one where, ascending by time: what every
 * window and metric over them reads (rows_key). */
typedef struct rows_entry {
    uint64_t key;                  /* 0: empty */
    int64_t *times;
    uint32_t *rows;
    uint32_t n, cap;
} rows_entry;

struct filter_cache {
    cache_entry *slots;
    uint32_t cap, n;
    rows_entry rows[16];           /* a few (type, where) sets per person and moment */
    uint32_t n_rows;
    person_id person;
    int64_t now_ms;
    const engine *e;
};

filter_cache *filter_cache_new(void)
{
    filter_cache *c = xcalloc(1, sizeof *c);
    c->cap = 64;
    c->slots = xcalloc(c->cap, sizeof *c->slots);
    c->person = PERSON_NONE;
    return c;
}

void filter_cache_free(filter_cache *c)
{
    if (!c) return;
    for (uint32_t i = 0; i < 16; i++) {
        free(c->rows[i].times);
        free(c->rows[i].rows);
    }
    free(c->slots);
    free(c);
}

void filter_cache_reset(filter_cache *c)
{
    if (c->n) memset(c->slots, 0, c->cap * sizeof *c->slots);
    c->n = 0;
    for (uint32_t i = 0; i < c->n_rows; i++) c->rows[i].key = 0;   /* arrays kept for reuse */
    c->n_rows = 0;
    c->person = PERSON_NONE;
}

/* The entry of key for (person, now), made empty-valued if new (*fresh = 1). */
/* Points the cache at (person, moment, engine), forgetting what it held for others. */
static void cache_bind(filter_cache *c, const filter_env *env, person_id id)
{
    if (c->person != id || c->now_ms != env->now_ms || c->e != env->e) {
        filter_cache_reset(c);
        c->person = id;
        c->now_ms = env->now_ms;
        c->e = env->e;
    }
}

static cache_entry *cache_slot(filter_cache *c, const filter_env *env, person_id id, uint64_t key, int *fresh)
{
    cache_bind(c, env, id);
    if ((c->n + 1) * 4 > c->cap * 3) {   /* grow x2 and re-insert */
        cache_entry *old = c->slots;
        uint32_t old_cap = c->cap;
        c->cap *= 2;
        c->slots = xcalloc(c->cap, sizeof *c->slots);
        for (uint32_t i = 0; i < old_cap; i++) {
            if (!old[i].key) continue;
            uint32_t j = (uint32_t)(old[i].key & (c->cap - 1));
            while (c->slots[j].key) j = (j + 1) & (c->cap - 1);
            c->slots[j] = old[i];
        }
        free(old);
    }
    uint32_t j = (uint32_t)(key & (c->cap - 1));
    while (c->slots[j].key && c->slots[j].key != key) j = (j + 1) & (c->cap - 1);
    *fresh = c->slots[j].key == 0;
    if (*fresh) {
        memset(&c->slots[j], 0, sizeof c->slots[j]);
        c->slots[j].key = key;
        c->slots[j].window_next = INT64_MIN;
        c->n++;
    }
    return &c->slots[j];
}

static void event_metric_compute(const filter_env *env, const filter_node *n, person_id id, acc *out,
                                 uint32_t *distinct_out, uint32_t *events_out);

/* The metric inputs of an event condition for one person, through the cache when the
 * environment has one. */
static void event_metric(const filter_env *env, const filter_node *n, person_id id, acc *out,
                         uint32_t *distinct_out, uint32_t *events_out)
{
    if (!env->cache || !n->metric_key) {
        event_metric_compute(env, n, id, out, distinct_out, events_out);
        return;
    }
    int fresh;
    cache_entry *c = cache_slot(env->cache, env, id, n->metric_key, &fresh);
    if (fresh) event_metric_compute(env, n, id, &c->a, &c->distinct, &c->events);
    *out = c->a;
    *distinct_out = c->distinct;
    *events_out = c->events;
}

typedef struct time_row {
    int64_t t;
    uint32_t row;
} time_row;

static int cmp_time_row(const void *a, const void *b)
{
    const time_row *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t ? 1 : (x->row > y->row) - (x->row < y->row);
}

/* The cached events of n's (type, where) for the person, computed on first use; NULL
 * when the cache has no room (the caller walks the chain). */
static const rows_entry *cached_rows(const filter_env *env, const filter_node *n, person_id id)
{
    filter_cache *c = env->cache;
    cache_bind(c, env, id);
    for (uint32_t i = 0; i < c->n_rows; i++)
        if (c->rows[i].key == n->rows_key) return &c->rows[i];
    if (c->n_rows == 16) return NULL;
    rows_entry *r = &c->rows[c->n_rows++];
    r->key = n->rows_key;
    r->n = 0;
    const engine *e = env->e;
    int type = n->index;
    const uint32_t *prevs = engine_event_prevs(e, type);
    const int64_t *times = engine_event_times(e, type);
    time_row small[64], *v = small;
    size_t cap = 64, k = 0;
    for (uint32_t row = engine_person_event_newest(e, id, type); row != ENGINE_NO_ROW; row = prevs[row]) {
        if (n->where && !match_row(env, n->where, type, row)) continue;
        if (k == cap) {
            time_row *bigger = xmalloc(cap * 2 * sizeof *bigger);
            memcpy(bigger, v, k * sizeof *v);
            if (v != small) free(v);
            v = bigger;
            cap *= 2;
        }
        v[k++] = (time_row){ times[row], row };
    }
    /* the chain runs newest row first, so times mostly fall (a stream delivers them nearly
     * in order): reverse, then an insertion sort puts the few late arrivals in place; a
     * list far from order is sorted outright */
    for (size_t i = 0, j = k ? k - 1 : 0; i < j; i++, j--) {
        time_row x = v[i];
        v[i] = v[j];
        v[j] = x;
    }
    size_t moves = 0;
    for (size_t i = 1; i < k && moves <= 4 * k; i++) {
        time_row x = v[i];
        size_t j = i;
        while (j > 0 && cmp_time_row(&v[j - 1], &x) > 0) {
            v[j] = v[j - 1];
            j--;
            moves++;
        }
        v[j] = x;
    }
    if (moves > 4 * k) qsort(v, k, sizeof *v, cmp_time_row);
    if (k > r->cap) {
        r->cap = (uint32_t)k;
        r->times = xrealloc(r->times, k * sizeof *r->times);
        r->rows = xrealloc(r->rows, k * sizeof *r->rows);
    }
    for (size_t i = 0; i < k; i++) {
        r->times[i] = v[i].t;
        r->rows[i] = v[i].row;
    }
    r->n = (uint32_t)k;
    if (v != small) free(v);
    return r;
}

/* The first index of sorted times at or after t. */
static uint32_t lower_bound(const int64_t *times, uint32_t n, int64_t t)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (times[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* A metric being added up over the events that count. */
typedef struct metric_run {
    acc a;
    uint32_t events;
    uint64_t *keys;                /* count_distinct: the values' keys */
    size_t n_keys, keys_cap;
} metric_run;

/* Adds the event at row (time t) of n's type to the metric. */
static void metric_take(metric_run *m, const engine *e, const filter_node *n, uint32_t row, int64_t t)
{
    m->events++;
    if (n->fn == FFN_COUNT) {
        m->a.count++;
    } else if (n->fn == FFN_FIRST_AT || n->fn == FFN_LAST_AT) {
        acc_add_time(&m->a, t);
    } else {
        segd_cell v;
        if (!engine_event_prop_get(e, n->index, row, n->metric_prop, &v)) return;
        if (n->fn == FFN_COUNT_DISTINCT) {
            m->keys = xgrow(m->keys, sizeof *m->keys, &m->keys_cap, m->n_keys + 1, 16);
            m->keys[m->n_keys++] = distinct_key(&v);
        } else if (v.type == SEGD_T_NUMBER) {
            acc_add_number(&m->a, v.number);
        }
    }
}

static void metric_finish(metric_run *m, acc *out, uint32_t *distinct_out, uint32_t *events_out)
{
    uint32_t distinct = 0;
    if (m->n_keys) qsort(m->keys, m->n_keys, sizeof *m->keys, cmp_u64);
    for (size_t i = 0; i < m->n_keys; i++)
        if (i == 0 || m->keys[i] != m->keys[i - 1]) distinct++;
    free(m->keys);
    *out = m->a;
    *distinct_out = distinct;
    *events_out = m->events;
}

static void event_metric_compute(const filter_env *env, const filter_node *n, person_id id, acc *out,
                                 uint32_t *distinct_out, uint32_t *events_out)
{
    const engine *e = env->e;
    int64_t lo, hi;
    window_range(n, env->now_ms, &lo, &hi);
    metric_run m = { 0 };
    const rows_entry *cached = env->cache && n->rows_key ? cached_rows(env, n, id) : NULL;
    if (cached) {
        /* the window is a range of the person's matching events by time */
        uint32_t from = lo == INT64_MIN ? 0 : lower_bound(cached->times, cached->n, lo);
        uint32_t to = hi == INT64_MAX ? cached->n : lower_bound(cached->times, cached->n, hi + 1);
        if (n->fn == FFN_COUNT) {
            m.events = m.a.count = to > from ? to - from : 0;
        } else {
            for (uint32_t i = from; i < to; i++) metric_take(&m, e, n, cached->rows[i], cached->times[i]);
        }
    } else {
        int type = n->index;
        const uint32_t *prevs = engine_event_prevs(e, type);
        const int64_t *times = engine_event_times(e, type);
        for (uint32_t row = engine_person_event_newest(e, id, type); row != ENGINE_NO_ROW; row = prevs[row]) {
            int64_t t = times[row];
            if (t < lo || t > hi) continue;
            if (n->where && !match_row(env, n->where, type, row)) continue;
            metric_take(&m, e, n, row, t);
        }
    }
    metric_finish(&m, out, distinct_out, events_out);
}

static int match_event(const filter_env *env, const filter_node *n, person_id id)
{
    acc a;
    uint32_t distinct, events;
    event_metric(env, n, id, &a, &distinct, &events);
    cond c;
    cond_init(&c, n, n->type, env);
    int m = metric_matches(&c, n->fn, &a, distinct);
    cond_release(&c);
    return m;
}

static int match_node(const filter_env *env, const filter_node *n, person_id id)
{
    switch (n->kind) {
    case FILTER_AND:
        for (uint32_t i = 0; i < n->n_children; i++) {
            int m = match_node(env, n->children[i], id);
            if (m <= 0) return m;
        }
        return 1;
    case FILTER_OR:
        for (uint32_t i = 0; i < n->n_children; i++) {
            int m = match_node(env, n->children[i], id);
            if (m != 0) return m;
        }
        return 0;
    case FILTER_NOT: {
        int m = match_node(env, n->children[0], id);
        return m < 0 ? m : !m;
    }
    case FILTER_ATTRIBUTE: {
        segd_cell v;
        engine_attr_get(env->e, id, n->index, &v);
        cond c;
        cond_init(&c, n, n->type, env);
        int m = cond_match_cell(&c, &v);
        cond_release(&c);
        return m;
    }
    case FILTER_EVENT:
        return match_event(env, n, id);
    case FILTER_BUCKET: {
        segd_cell v;
        if (!engine_attr_get(env->e, id, ATTR_USER_ID, &v)) return 0;
        return bucket_matches(n, env->e, v.code);
    }
    case FILTER_SEGMENT: {
        const filter_resolver *r = env->resolver;
        if (!r || !r->is_member) return SEGD_ENOTFOUND;
        int m = r->is_member(r->ctx, n->name, n->op == FOP_IN_CACHED, id);
        if (m < 0) return m;
        return n->op == FOP_NOT_IN ? !m : m;
    }
    default:
        return 0;
    }
}

int filter_match(const filter_node *n, const filter_env *env, person_id id)
{
    if (!engine_person_exists(env->e, id)) return 0;
    return match_node(env, n, id);
}

int filter_match_blank(const filter_node *n, const filter_env *env, int (*blank_member)(void *ctx, const char *id, int cached),
                       void *ctx)
{
    switch (n->kind) {
    case FILTER_AND:
        for (uint32_t i = 0; i < n->n_children; i++)
            if (!filter_match_blank(n->children[i], env, blank_member, ctx)) return 0;
        return 1;
    case FILTER_OR:
        for (uint32_t i = 0; i < n->n_children; i++)
            if (filter_match_blank(n->children[i], env, blank_member, ctx)) return 1;
        return 0;
    case FILTER_NOT:
        return !filter_match_blank(n->children[0], env, blank_member, ctx);
    case FILTER_ATTRIBUTE: {
        segd_cell v;
        memset(&v, 0, sizeof v);      /* what engine_attr_get gives for a missing value */
        cond c;
        cond_init(&c, n, n->type, env);
        int m = cond_match_cell(&c, &v);
        cond_release(&c);
        return m == 1;
    }
    case FILTER_EVENT: {
        acc a = { 0 };                /* a metric over no events */
        cond c;
        cond_init(&c, n, n->type, env);
        int m = metric_matches(&c, n->fn, &a, 0);
        cond_release(&c);
        return m == 1;
    }
    case FILTER_BUCKET:
        return 0;                     /* no user_id: in no bucket */
    case FILTER_SEGMENT: {
        int m = blank_member(ctx, n->name, n->op == FOP_IN_CACHED);
        return n->op == FOP_NOT_IN ? !m : m;
    }
    default:
        return 0;
    }
}

/* ---- explain ---- */

cJSON *filter_cell_json(const engine *e, const segd_cell *c)
{
    char buf[TIMEFMT_LEN];
    switch (c->type) {
    case SEGD_T_STRING: return cJSON_CreateString(engine_string(e, c->code, NULL));
    case SEGD_T_NUMBER: return filter_number_json(c->number);
    case SEGD_T_BOOL: return cJSON_CreateBool(c->boolean);
    case SEGD_T_DATETIME: return cJSON_CreateString(timefmt_format(c->time_ms, buf));
    case SEGD_T_JSON: return cJSON_CreateRaw(engine_string(e, c->code, NULL));
    case SEGD_T_LIST: {
        cJSON *arr = cJSON_CreateArray();
        for (uint32_t i = 0; i < c->n_codes; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(engine_string(e, c->codes[i], NULL)));
        return arr;
    }
    default: return cJSON_CreateNull();
    }
}

/* The explanation of one node: its canonical JSON (groups: with explained children)
 * plus "result" and what was looked at. Sets *result (1, 0, or a negative code). */
static cJSON *explain_node(const filter_env *env, const filter_node *n, person_id id, int *result)
{
    cJSON *obj;
    int r = 0;
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR: {
        obj = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(obj, n->kind == FILTER_AND ? "and" : "or");
        r = n->kind == FILTER_AND;
        for (uint32_t i = 0; i < n->n_children; i++) {
            int cr;
            cJSON_AddItemToArray(arr, explain_node(env, n->children[i], id, &cr));
            if (cr < 0 && r >= 0) r = cr;
            else if (r >= 0) r = n->kind == FILTER_AND ? r && cr : r || cr;
        }
        break;
    }
    case FILTER_NOT: {
        obj = cJSON_CreateObject();
        int cr;
        cJSON_AddItemToObject(obj, "not", explain_node(env, n->children[0], id, &cr));
        r = cr < 0 ? cr : !cr;
        break;
    }
    case FILTER_ATTRIBUTE: {
        obj = filter_to_json(n);
        segd_cell v;
        engine_attr_get(env->e, id, n->index, &v);
        cJSON_AddItemToObject(obj, "actual", filter_cell_json(env->e, &v));
        r = match_node(env, n, id);
        break;
    }
    case FILTER_EVENT: {
        obj = filter_to_json(n);
        acc a;
        uint32_t distinct, events;
        event_metric(env, n, id, &a, &distinct, &events);
        double v = 0;
        int64_t t = 0;
        segd_cell cell = { 0 };
        if (metric_value(n->fn, &a, distinct, &v, &t)) {
            cell.type = n->fn == FFN_FIRST_AT || n->fn == FFN_LAST_AT ? SEGD_T_DATETIME : SEGD_T_NUMBER;
            cell.number = v;
            cell.time_ms = t;
        }
        cJSON_AddItemToObject(obj, "actual", filter_cell_json(env->e, &cell));
        cJSON_AddNumberToObject(obj, "events", events);
        cond c;
        cond_init(&c, n, n->type, env);
        r = metric_matches(&c, n->fn, &a, distinct);
        cond_release(&c);
        break;
    }
    case FILTER_BUCKET: {
        obj = filter_to_json(n);
        segd_cell v;
        if (engine_attr_get(env->e, id, ATTR_USER_ID, &v)) {
            size_t len;
            const char *uid = engine_string(env->e, v.code, &len);
            cJSON_AddNumberToObject(obj, "actual", uid ? bucket_of(n->name, uid, len) : 0);
        } else {
            cJSON_AddNullToObject(obj, "actual");
        }
        r = match_node(env, n, id);
        break;
    }
    default:
        obj = filter_to_json(n);
        r = match_node(env, n, id);
        break;
    }
    if (r >= 0) cJSON_AddBoolToObject(obj, "result", r);
    *result = r;
    return obj;
}

cJSON *filter_explain(const filter_node *n, const filter_env *env, person_id id, int *result)
{
    return explain_node(env, n, id, result);
}

/* ---- time ---- */

static int op_relative(filter_op op)
{
    return op == FOP_MORE_THAN_AGO || op == FOP_LESS_THAN_AGO;
}

int filter_time_relative(const filter_node *n)
{
    if (!n) return 0;
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR: case FILTER_NOT:
        for (uint32_t i = 0; i < n->n_children; i++)
            if (filter_time_relative(n->children[i])) return 1;
        return 0;
    case FILTER_ATTRIBUTE: case FILTER_PROPERTY:
        return op_relative(n->op);
    case FILTER_EVENT:
        return n->window == FWIN_WITHIN || op_relative(n->op) || filter_time_relative(n->where);
    default:
        return 0;
    }
}

/* The moment a value t passes the relative condition's boundary: t + d + 1 ms, or
 * INT64_MAX when that is not after now. */
static int64_t relative_moment(int64_t t, int64_t d, int64_t now)
{
    if (t > INT64_MAX - d - 1) return INT64_MAX;
    int64_t m = t + d + 1;
    return m > now ? m : INT64_MAX;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* The earliest moment a relative property condition inside where flips for one row. */
static int64_t row_next_change(const filter_env *env, const filter_node *n, int type, uint32_t row)
{
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR: case FILTER_NOT: {
        int64_t m = INT64_MAX;
        for (uint32_t i = 0; i < n->n_children; i++) m = min64(m, row_next_change(env, n->children[i], type, row));
        return m;
    }
    case FILTER_PROPERTY: {
        if (!op_relative(n->op)) return INT64_MAX;
        segd_cell v;
        if (!engine_event_prop_get(env->e, type, row, n->index, &v) || v.type != SEGD_T_DATETIME) return INT64_MAX;
        return relative_moment(v.time_ms, n->duration_ms, env->now_ms);
    }
    default:
        return INT64_MAX;
    }
}

static int64_t event_window_next(const filter_env *env, const filter_node *n, person_id id);

static int64_t event_next_change(const filter_env *env, const filter_node *n, person_id id)
{
    if (!filter_time_relative(n)) return INT64_MAX;
    int64_t m;
    if (env->cache && n->metric_key) {
        int fresh;
        cache_entry *c = cache_slot(env->cache, env, id, n->metric_key, &fresh);
        if (fresh) event_metric_compute(env, n, id, &c->a, &c->distinct, &c->events);
        if (c->window_next == INT64_MIN) c->window_next = event_window_next(env, n, id);
        m = c->window_next;
    } else {
        m = event_window_next(env, n, id);
    }
    if (op_relative(n->op)) {
        /* first_at / last_at: until the window's contents change, the metric stays */
        acc a;
        uint32_t distinct, events;
        event_metric(env, n, id, &a, &distinct, &events);
        double v;
        int64_t t;
        if (metric_value(n->fn, &a, distinct, &v, &t)) m = min64(m, relative_moment(t, n->duration_ms, env->now_ms));
    }
    return m;
}

/* The earliest moment the set of the person's events that count for n may change: an
 * event entering or leaving the window, or a relative condition of where flipping. */
static int64_t event_window_next(const filter_env *env, const filter_node *n, person_id id)
{
    const engine *e = env->e;
    int type = n->index;
    const uint32_t *prevs = engine_event_prevs(e, type);
    const int64_t *times = engine_event_times(e, type);
    int64_t now = env->now_ms, m = INT64_MAX;
    int where_relative = filter_time_relative(n->where);
    for (uint32_t row = engine_person_event_newest(e, id, type); row != ENGINE_NO_ROW; row = prevs[row]) {
        int64_t t = times[row];
        if (where_relative) m = min64(m, row_next_change(env, n->where, type, row));
        if (n->window != FWIN_WITHIN) continue;
        if (n->where && !match_row(env, n->where, type, row)) continue;
        if (t > now) m = min64(m, t);   /* a future-dated event enters the window then */
        m = min64(m, relative_moment(t, n->within_ms, now));
    }
    return m;
}

int64_t filter_next_change(const filter_node *n, const filter_env *env, person_id id)
{
    if (!engine_person_exists(env->e, id)) return INT64_MAX;
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR: case FILTER_NOT: {
        int64_t m = INT64_MAX;
        for (uint32_t i = 0; i < n->n_children; i++) m = min64(m, filter_next_change(n->children[i], env, id));
        return m;
    }
    case FILTER_ATTRIBUTE: {
        if (!op_relative(n->op)) return INT64_MAX;
        segd_cell v;
        if (!engine_attr_get(env->e, id, n->index, &v) || v.type != SEGD_T_DATETIME) return INT64_MAX;
        return relative_moment(v.time_ms, n->duration_ms, env->now_ms);
    }
    case FILTER_EVENT:
        return event_next_change(env, n, id);
    default:
        return INT64_MAX;
    }
}

/* ---- next changes for everyone ---- */

static void lower(int64_t *out, person_id p, int64_t m)
{
    if (m < out[p]) out[p] = m;
}

/* Lowers out[p] to the moments of n (a subtree) for everyone. */
static void next_changes(const filter_env *env, const filter_node *n, int64_t *out)
{
    const engine *e = env->e;
    int64_t now = env->now_ms;
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR: case FILTER_NOT:
        for (uint32_t i = 0; i < n->n_children; i++) next_changes(env, n->children[i], out);
        return;
    case FILTER_ATTRIBUTE: {
        if (!op_relative(n->op) || n->type != SEGD_T_DATETIME) return;
        uint32_t pages = engine_attr_pages(e, n->index);
        for (uint32_t pg_i = 0; pg_i < pages; pg_i++) {
            engine_page pg;
            if (!engine_attr_page(e, n->index, pg_i, &pg)) continue;
            const int64_t *t = pg.values;
            for (uint32_t w = 0; w < PAGE_WORDS; w++)
                for (uint64_t b = pg.present[w]; b; b &= b - 1) {
                    uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(b);
                    lower(out, pg.first_row + i, relative_moment(t[i], n->duration_ms, now));
                }
        }
        return;
    }
    case FILTER_EVENT: {
        if (!filter_time_relative(n)) return;
        int type = n->index;
        uint32_t rows = engine_event_rows(e, type);
        const person_id *persons = engine_event_persons(e, type);
        const int64_t *times = engine_event_times(e, type);
        int where_relative = filter_time_relative(n->where);
        /* the rows where decides for: evaluated once over the log, as eval does */
        uint64_t *rowmask = NULL;
        if (n->where && n->window == FWIN_WITHIN) {
            space rs;
            space_init(&rs, env, type);
            rowmask = xmalloc((rs.words ? rs.words : 1) * sizeof *rowmask);
            eval_node(&rs, n->where, rowmask, NULL);
            space_release(&rs);
        }
        for (uint32_t r = 0; r < rows; r++) {
            person_id p = persons[r];
            if (p == PERSON_NONE) continue;
            if (where_relative) lower(out, p, row_next_change(env, n->where, type, r));
            if (n->window != FWIN_WITHIN) continue;
            if (rowmask && !(rowmask[r >> 6] >> (r & 63) & 1)) continue;
            int64_t t = times[r];
            if (t > now) lower(out, p, t);
            lower(out, p, relative_moment(t, n->within_ms, now));
        }
        free(rowmask);
        if (op_relative(n->op)) {
            /* first_at / last_at relative: per person, from the metric as it is now */
            person_id limit = engine_person_limit(e);
            for (person_id p = 0; p < limit; p++) {
                if (!engine_person_exists(e, p) || engine_person_event_newest(e, p, type) == ENGINE_NO_ROW) continue;
                acc a;
                uint32_t distinct, events;
                event_metric(env, n, p, &a, &distinct, &events);
                double v;
                int64_t t;
                if (metric_value(n->fn, &a, distinct, &v, &t)) lower(out, p, relative_moment(t, n->duration_ms, now));
            }
        }
        return;
    }
    default:
        return;
    }
}

int filter_next_changes(const filter_node *n, const filter_env *env, int64_t *out)
{
    person_id limit = engine_person_limit(env->e);
    for (person_id p = 0; p < limit; p++) out[p] = INT64_MAX;
    next_changes(env, n, out);
    for (person_id p = 0; p < limit; p++)
        if (!engine_person_exists(env->e, p)) out[p] = INT64_MAX;
    return 0;
}
