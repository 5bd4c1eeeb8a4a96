/* search.c - pages of a filter's result in a stable order (filter_page) and the opaque
 * cursors that continue them.
 *
 * The order is the sort keys in turn (missing values last in either direction), then
 * the dense person id, so it is total: keyset paging ("everyone after this key and id")
 * shows a person whose key and match do not change between pages exactly once, however
 * many people arrive or leave meanwhile. A page is a bounded heap of limit + 1 over the
 * matching people, reading the sort columns page by page: no sort of all matches.
 * Workload: first pages of results of up to millions of people, in milliseconds.
 */
#include "filter.h"
#include "../base/alloc.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_WORDS (ENGINE_PAGE_ROWS / 64)
#define CURSOR_VERSION 1

/* One candidate: its id and sort keys as stored (strings as pool codes). */
typedef struct cand {
    person_id id;
    uint8_t missing[FILTER_MAX_SORT_KEYS];
    union {
        double number;
        int64_t time_ms;
        uint32_t code;
        int boolean;
    } key[FILTER_MAX_SORT_KEYS];
} cand;

typedef struct order {
    const engine *e;
    const filter_sort *sorts;
    int n_sorts;
    segd_type types[FILTER_MAX_SORT_KEYS];
} order;

static int cmp_bytes(const char *a, size_t la, const char *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    if (c) return c < 0 ? -1 : 1;
    return (la > lb) - (la < lb);
}

/* Compares one key of two values of the same type (neither missing), ascending. */
static int cmp_key(const order *o, int k, const cand *a, const cand *b)
{
    switch (o->types[k]) {
    case SEGD_T_NUMBER:
        return (a->key[k].number > b->key[k].number) - (a->key[k].number < b->key[k].number);
    case SEGD_T_DATETIME:
        return (a->key[k].time_ms > b->key[k].time_ms) - (a->key[k].time_ms < b->key[k].time_ms);
    case SEGD_T_BOOL:
        return a->key[k].boolean - b->key[k].boolean;
    case SEGD_T_STRING: {
        if (a->key[k].code == b->key[k].code) return 0;
        size_t la, lb;
        const char *sa = engine_string(o->e, a->key[k].code, &la);
        const char *sb = engine_string(o->e, b->key[k].code, &lb);
        return cmp_bytes(sa ? sa : "", sa ? la : 0, sb ? sb : "", sb ? lb : 0);
    }
    default:
        return 0;
    }
}

/* The order of two candidates: < 0 when a comes first. */
static int cmp_cand(const order *o, const cand *a, const cand *b)
{
    for (int k = 0; k < o->n_sorts; k++) {
        if (a->missing[k] != b->missing[k]) return a->missing[k] ? 1 : -1;   /* missing last */
        if (a->missing[k]) continue;
        int c = cmp_key(o, k, a, b);
        if (c) return o->sorts[k].desc ? -c : c;
    }
    return (a->id > b->id) - (a->id < b->id);
}

/* The order of a candidate against a decoded cursor position. */
static int cmp_after(const order *o, const cand *a, const filter_after *p)
{
    for (int k = 0; k < o->n_sorts; k++) {
        int am = a->missing[k], pm = p->keys[k].missing;
        if (am != pm) return am ? 1 : -1;
        if (am) continue;
        int c = 0;
        switch (o->types[k]) {
        case SEGD_T_NUMBER:
            c = (a->key[k].number > p->keys[k].number) - (a->key[k].number < p->keys[k].number);
            break;
        case SEGD_T_DATETIME:
            c = (a->key[k].time_ms > p->keys[k].time_ms) - (a->key[k].time_ms < p->keys[k].time_ms);
            break;
        case SEGD_T_BOOL:
            c = a->key[k].boolean - p->keys[k].boolean;
            break;
        case SEGD_T_STRING: {
            size_t la;
            const char *sa = engine_string(o->e, a->key[k].code, &la);
            c = cmp_bytes(sa ? sa : "", sa ? la : 0, p->keys[k].str, p->keys[k].len);
            break;
        }
        default:
            break;
        }
        if (c) return o->sorts[k].desc ? -c : c;
    }
    return (a->id > p->id) - (a->id < p->id);
}

/* Max-heap by order: the root is the candidate that comes last. */
static void sift_down(const order *o, cand *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, top = i;
        if (l < n && cmp_cand(o, &h[l], &h[top]) > 0) top = l;
        if (r < n && cmp_cand(o, &h[r], &h[top]) > 0) top = r;
        if (top == i) return;
        cand t = h[i];
        h[i] = h[top];
        h[top] = t;
        i = top;
    }
}

static void sift_up(const order *o, cand *h, uint32_t i)
{
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (cmp_cand(o, &h[i], &h[parent]) <= 0) return;
        cand t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

static int cmp_for_qsort(const void *a, const void *b, void *ctx)
{
    return cmp_cand(ctx, a, b);
}

/* Fills the keys of candidate c (person row) from the sort columns' current pages. */
static void read_keys(const order *o, const engine_page *pages, const int *has_page, uint32_t row, cand *c)
{
    uint32_t i = row & (ENGINE_PAGE_ROWS - 1);
    for (int k = 0; k < o->n_sorts; k++) {
        const engine_page *pg = &pages[k];
        if (!has_page[k] || !(pg->present[i >> 6] >> (i & 63) & 1)) {
            c->missing[k] = 1;
            memset(&c->key[k], 0, sizeof c->key[k]);
            continue;
        }
        c->missing[k] = 0;
        switch (o->types[k]) {
        case SEGD_T_NUMBER: c->key[k].number = ((const double *)pg->values)[i]; break;
        case SEGD_T_DATETIME: c->key[k].time_ms = ((const int64_t *)pg->values)[i]; break;
        case SEGD_T_BOOL: c->key[k].boolean = (int)(((const uint64_t *)pg->values)[i >> 6] >> (i & 63) & 1); break;
        case SEGD_T_STRING: c->key[k].code = ((const uint32_t *)pg->values)[i]; break;
        default: c->missing[k] = 1; break;
        }
    }
}

uint32_t filter_page(const engine *e, const uint64_t *matches, const filter_sort *sorts, int n_sorts,
                     const filter_after *after, uint32_t limit, person_id *out, int *more)
{
    order o = { .e = e, .sorts = sorts, .n_sorts = n_sorts };
    for (int k = 0; k < n_sorts; k++) o.types[k] = engine_attr_type(e, sorts[k].attr);
    *more = 0;
    uint32_t cap = limit + 1;
    cand *heap = xmalloc(cap * sizeof *heap);
    uint32_t n = 0;
    size_t words = filter_words(e);
    for (size_t w0 = 0; w0 < words; w0 += PAGE_WORDS) {
        uint32_t page = (uint32_t)(w0 / PAGE_WORDS);
        size_t wn = words - w0 < PAGE_WORDS ? words - w0 : PAGE_WORDS;
        int any = 0;
        for (size_t w = 0; w < wn && !any; w++) any = matches[w0 + w] != 0;
        if (!any) continue;
        engine_page pages[FILTER_MAX_SORT_KEYS];
        int has_page[FILTER_MAX_SORT_KEYS];
        for (int k = 0; k < n_sorts; k++) has_page[k] = engine_attr_page(e, sorts[k].attr, page, &pages[k]);
        for (size_t w = 0; w < wn; w++) {
            for (uint64_t bits = matches[w0 + w]; bits; bits &= bits - 1) {
                uint32_t row = (uint32_t)((w0 + w) * 64 + (size_t)__builtin_ctzll(bits));
                cand c;
                c.id = row;
                read_keys(&o, pages, has_page, row, &c);
                if (after && cmp_after(&o, &c, after) <= 0) continue;
                if (n < cap) {
                    heap[n] = c;
                    sift_up(&o, heap, n++);
                } else if (cmp_cand(&o, &c, &heap[0]) < 0) {
                    heap[0] = c;
                    sift_down(&o, heap, n, 0);
                }
            }
        }
    }
    qsort_r(heap, n, sizeof *heap, cmp_for_qsort, &o);
    uint32_t got = n < limit ? n : limit;
    for (uint32_t i = 0; i < got; i++) out[i] = heap[i].id;
    *more = n > limit;
    free(heap);
    return got;
}

/* ---- cursors ---- */

/* "name:asc|name:desc..." : a cursor is only valid for the order it was made in. */
static void sort_signature(const engine *e, const filter_sort *sorts, int n_sorts, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = 0;
    for (int k = 0; k < n_sorts && used < cap; k++) {
        const char *name = engine_attr_name(e, sorts[k].attr);
        int w = snprintf(buf + used, cap - used, "%s%s:%s", k ? "|" : "", name ? name : "?",
                         sorts[k].desc ? "desc" : "asc");
        if (w < 0) break;
        used += (size_t)w;
    }
}

char *filter_cursor_encode(const engine *e, const filter_sort *sorts, int n_sorts, person_id last)
{
    char sig[512];
    sort_signature(e, sorts, n_sorts, sig, sizeof sig);
    cJSON *arr = cJSON_CreateArray();
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(CURSOR_VERSION));
    cJSON_AddItemToArray(arr, cJSON_CreateString(sig));
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(last));
    for (int k = 0; k < n_sorts; k++) {
        segd_cell c;
        if (!engine_attr_get(e, last, sorts[k].attr, &c)) {
            cJSON_AddItemToArray(arr, cJSON_CreateNull());
            continue;
        }
        switch (c.type) {
        case SEGD_T_NUMBER: cJSON_AddItemToArray(arr, filter_number_json(c.number)); break;
        case SEGD_T_DATETIME: cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)c.time_ms)); break;
        case SEGD_T_BOOL: cJSON_AddItemToArray(arr, cJSON_CreateBool(c.boolean)); break;
        case SEGD_T_STRING: cJSON_AddItemToArray(arr, cJSON_CreateString(engine_string(e, c.code, NULL))); break;
        default: cJSON_AddItemToArray(arr, cJSON_CreateNull()); break;
        }
    }
    char *json = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    size_t len = strlen(json);
    size_t b64_cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *b64 = xmalloc(b64_cap);
    sodium_bin2base64(b64, b64_cap, (const unsigned char *)json, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    free(json);
    return b64;
}

static int bad_cursor(segd_error *err)
{
    return segd_error_set(err, 400, "invalid_cursor",
                          "The cursor is not one segd gave for this sort order: start again without it.");
}

int filter_cursor_decode(const char *cursor, const engine *e, const filter_sort *sorts, int n_sorts,
                         filter_after *out, segd_error *err)
{
    memset(out, 0, sizeof *out);
    size_t len = strlen(cursor);
    if (len == 0 || len > 4096) return bad_cursor(err);
    unsigned char *bin = xmalloc(len + 1);
    size_t bin_len = 0;
    if (sodium_base642bin(bin, len, cursor, len, NULL, &bin_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        free(bin);
        return bad_cursor(err);
    }
    cJSON *arr = cJSON_ParseWithLength((const char *)bin, bin_len);
    free(bin);
    int rc = bad_cursor(err);
    char sig[512];
    sort_signature(e, sorts, n_sorts, sig, sizeof sig);
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) != 3 + n_sorts) goto done;
    const cJSON *ver = cJSON_GetArrayItem(arr, 0), *s = cJSON_GetArrayItem(arr, 1), *id = cJSON_GetArrayItem(arr, 2);
    if (!cJSON_IsNumber(ver) || ver->valuedouble != CURSOR_VERSION || !cJSON_IsString(s) ||
        strcmp(s->valuestring, sig) != 0 || !cJSON_IsNumber(id) || id->valuedouble < 0 ||
        id->valuedouble >= (double)PERSON_NONE || id->valuedouble != (double)(person_id)id->valuedouble)
        goto done;
    out->id = (person_id)id->valuedouble;
    out->n_keys = n_sorts;
    for (int k = 0; k < n_sorts; k++) {
        const cJSON *v = cJSON_GetArrayItem(arr, 3 + k);
        segd_type type = engine_attr_type(e, sorts[k].attr);
        out->keys[k].type = type;
        if (cJSON_IsNull(v)) {
            out->keys[k].missing = 1;
            continue;
        }
        if (type == SEGD_T_NUMBER && cJSON_IsNumber(v)) out->keys[k].number = v->valuedouble;
        else if (type == SEGD_T_DATETIME && cJSON_IsNumber(v)) out->keys[k].time_ms = (int64_t)v->valuedouble;
        else if (type == SEGD_T_BOOL && cJSON_IsBool(v)) out->keys[k].boolean = cJSON_IsTrue(v);
        else if (type == SEGD_T_STRING && cJSON_IsString(v)) {
            out->keys[k].str = xstrdup(v->valuestring);
            out->keys[k].len = strlen(v->valuestring);
        } else {
            filter_after_release(out);
            goto done;
        }
    }
    segd_error_clear(err);
    rc = 0;
done:
    cJSON_Delete(arr);
    return rc;
}

void filter_after_release(filter_after *a)
{
    for (int k = 0; k < FILTER_MAX_SORT_KEYS; k++) {
        free(a->keys[k].str);
        a->keys[k].str = NULL;
    }
}
