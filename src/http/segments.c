/* segments.c - the segment routes (docs/API.md, "Segments"): create, list, show,
 * edit, delete, preview, recalculate, members, history and the membership log; the
 * outbox of transitions; and the person's segments on the profile.
 *
 * Writes go through ingest (the writer keeps segments exact with every write); reads
 * take ingest's read lock for what memory holds (definitions, sizes, members) and use
 * the store's own read connection for what only the store keeps (entered_at, the log,
 * the history). Workload: a People page lists segments and pages through members; an
 * automation follows the outbox.
 */
#include "internal.h"
#include "../base/alloc.h"
#include "../base/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24 * 3600 * 1000LL)
#define PREVIEW_SAMPLE 20
#define HISTORY_DAYS 90

/* ---- rendering ---- */

static void add_time(cJSON *o, const char *name, int64_t ms)
{
    char buf[TIMEFMT_LEN];
    if (ms) cJSON_AddStringToObject(o, name, timefmt_format(ms, buf));
    else cJSON_AddNullToObject(o, name);
}

static cJSON *string_array(const char *const *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

/* A segment as the API shows it. */
static cJSON *segment_json(const segment_view *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", v->id);
    cJSON_AddStringToObject(o, "name", v->name);
    cJSON_AddStringToObject(o, "description", v->description);
    cJSON_AddItemToObject(o, "filter", filter_to_json(v->filter));
    char *text = filter_print_text(v->filter);
    cJSON_AddStringToObject(o, "filter_text", text);
    free(text);
    cJSON_AddItemToObject(o, "hidden_from", string_array(v->hidden_from, v->n_hidden_from));
    cJSON_AddItemToObject(o, "default_for", string_array(v->default_for, v->n_default_for));
    if (v->created_by[0]) cJSON_AddStringToObject(o, "created_by", v->created_by);
    else cJSON_AddNullToObject(o, "created_by");
    add_time(o, "created_at", v->created_at);
    add_time(o, "updated_at", v->updated_at);
    cJSON_AddNumberToObject(o, "size", (double)v->size);
    cJSON *cached = cJSON_AddObjectToObject(o, "cached");
    cJSON_AddNumberToObject(cached, "size", (double)v->cached_size);
    add_time(cached, "computed_at", v->cached_at);
    char interval[FILTER_DURATION_LEN];
    cJSON_AddStringToObject(o, "refresh", filter_duration_format(v->refresh_ms, interval));
    return o;
}

/* Finds the segment of the path's {id} under the read lock: its slot, or -1 after
 * replying 404 (the caller still ends the read). */
static int find_segment(http_request *req, segments *s, const char *id)
{
    int slot = segments_find(s, id);
    if (slot < 0)
        http_reply_errorf(req, 404, "segment_not_found", "no segment has the id \"%.60s\"; GET /api/segments lists them", id);
    return slot;
}

/* Replies with the segment `id` (status), or 404. */
static void reply_segment(http_server *srv, http_request *req, const char *id, int status)
{
    const engine *e = http_read_begin(srv, req);
    if (!e) return;
    segments *s = ingest_segments(srv->ing);
    int slot = find_segment(req, s, id);
    cJSON *o = NULL;
    segment_view v;
    if (slot >= 0 && segments_view(s, slot, &v)) o = segment_json(&v);
    ingest_read_end(srv->ing);
    if (o) http_reply_json(req, status, o);
}

/* ---- definitions ---- */

void http_segments_create(http_server *srv, http_request *req)
{
    segd_error err;
    segd_error_clear(&err);
    char id[SEGMENT_ID_LEN + 1];
    if (ingest_segment_create(srv->ing, req->json, NULL, id, &err) != 0) {
        http_reply_error(req, &err);
        return;
    }
    reply_segment(srv, req, id, 201);
}

static int cmp_names(const void *a, const void *b)
{
    const segment_view *x = a, *y = b;
    return strcmp(x->name, y->name);
}

void http_segments_list(http_server *srv, http_request *req)
{
    const engine *e = http_read_begin(srv, req);
    if (!e) return;
    segments *s = ingest_segments(srv->ing);
    int n = segments_slots(s), k = 0;
    segment_view *views = xmalloc(((size_t)n + 1) * sizeof *views);
    for (int i = 0; i < n; i++)
        if (segments_view(s, i, &views[k])) k++;
    qsort(views, (size_t)k, sizeof *views, cmp_names);
    cJSON *out = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(out, "segments");
    for (int i = 0; i < k; i++) cJSON_AddItemToArray(list, segment_json(&views[i]));
    ingest_read_end(srv->ing);
    free(views);
    http_reply_json(req, 200, out);
}

void http_segment_get(http_server *srv, http_request *req)
{
    reply_segment(srv, req, req->params[0], 200);
}

void http_segment_patch(http_server *srv, http_request *req)
{
    segd_error err;
    segd_error_clear(&err);
    if (ingest_segment_update(srv->ing, req->params[0], req->json, &err) != 0) {
        http_reply_error(req, &err);
        return;
    }
    reply_segment(srv, req, req->params[0], 200);
}

void http_segment_delete(http_server *srv, http_request *req)
{
    segd_error err;
    segd_error_clear(&err);
    if (ingest_segment_delete(srv->ing, req->params[0], &err) != 0) {
        http_reply_error(req, &err);
        return;
    }
    cJSON *ok = cJSON_CreateObject();
    cJSON_AddTrueToObject(ok, "deleted");
    http_reply_json(req, 200, ok);
}

void http_segment_recalculate(http_server *srv, http_request *req)
{
    segd_error err;
    segd_error_clear(&err);
    if (ingest_segment_recalculate(srv->ing, req->params[0], &err) != 0) {
        http_reply_error(req, &err);
        return;
    }
    reply_segment(srv, req, req->params[0], 200);
}

static cJSON *people_sample(const engine *e, const person_id *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    char buf[32];
    for (size_t i = 0; i < n; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "id", ingest_public_id_format(engine_person_public_id(e, v[i]), buf));
        segd_cell c;
        if (engine_attr_get(e, v[i], ATTR_USER_ID, &c)) cJSON_AddItemToObject(p, "user_id", filter_cell_json(e, &c));
        if (engine_attr_get(e, v[i], ATTR_EMAIL, &c)) cJSON_AddItemToObject(p, "email", filter_cell_json(e, &c));
        if (engine_attr_get(e, v[i], ATTR_NAME, &c)) cJSON_AddItemToObject(p, "name", filter_cell_json(e, &c));
        cJSON_AddItemToArray(a, p);
    }
    return a;
}

void http_segment_preview(http_server *srv, http_request *req)
{
    const cJSON *f = cJSON_IsObject(req->json) ? cJSON_GetObjectItemCaseSensitive(req->json, "filter") : NULL;
    segd_error err;
    segd_error_clear(&err);
    filter_node *tree = filter_parse_value(f, NULL, &err);
    if (!tree) {
        http_reply_error(req, &err);
        return;
    }
    const engine *e = http_read_begin(srv, req);
    if (!e) {
        filter_free(tree);
        return;
    }
    segments *s = ingest_segments(srv->ing);
    cJSON *out = NULL;
    int slot = find_segment(req, s, req->params[0]);
    if (slot >= 0) {
        uint64_t n_in = 0, n_out = 0;
        person_id in[PREVIEW_SAMPLE], gone[PREVIEW_SAMPLE];
        size_t k_in = 0, k_out = 0;
        if (segments_preview(s, e, slot, tree, http_now_ms(srv), &n_in, &n_out, in, &k_in, gone, &k_out, PREVIEW_SAMPLE,
                             &err) == 0) {
            segment_view v;
            segments_view(s, slot, &v);
            out = cJSON_CreateObject();
            cJSON_AddNumberToObject(out, "size", (double)v.size);
            cJSON_AddNumberToObject(out, "new_size", (double)(v.size + n_in - n_out));
            cJSON *enter = cJSON_AddObjectToObject(out, "entering");
            cJSON_AddNumberToObject(enter, "count", (double)n_in);
            cJSON_AddItemToObject(enter, "sample", people_sample(e, in, k_in));
            cJSON *leave = cJSON_AddObjectToObject(out, "leaving");
            cJSON_AddNumberToObject(leave, "count", (double)n_out);
            cJSON_AddItemToObject(leave, "sample", people_sample(e, gone, k_out));
        } else {
            http_reply_error(req, &err);
        }
    }
    ingest_read_end(srv->ing);
    filter_free(tree);
    if (out) http_reply_json(req, 200, out);
}

/* ---- members, history, log ---- */

void http_segment_people(http_server *srv, http_request *req)
{
    const engine *e = http_read_begin(srv, req);
    if (!e) return;
    segments *s = ingest_segments(srv->ing);
    int slot = find_segment(req, s, req->params[0]);
    int64_t num = slot >= 0 ? ingest_segment_num(srv->ing, slot) : 0;
    segment_view v = { 0 };
    if (slot >= 0) segments_view(s, slot, &v);
    int64_t since = v.created_at;
    ingest_read_end(srv->ing);
    if (slot >= 0) http_search_members(srv, req, req->params[0], num, since);
}

typedef struct history_ctx {
    cJSON *points, *days;
} history_ctx;

static int add_point(void *ctx, int64_t at, uint64_t size, int kind)
{
    history_ctx *h = ctx;
    cJSON *p = cJSON_CreateObject();
    add_time(p, "at", at);
    cJSON_AddNumberToObject(p, "size", (double)size);
    cJSON_AddStringToObject(p, "kind", kind == 2 ? "recalculation" : "hourly");
    cJSON_AddItemToArray(h->points, p);
    return 0;
}

static int add_day(void *ctx, int64_t day_ms, uint64_t entered, uint64_t exited)
{
    history_ctx *h = ctx;
    char buf[TIMEFMT_LEN];
    cJSON *d = cJSON_CreateObject();
    timefmt_format(day_ms, buf);
    buf[10] = 0;                   /* the date part */
    cJSON_AddStringToObject(d, "date", buf);
    cJSON_AddNumberToObject(d, "entered", (double)entered);
    cJSON_AddNumberToObject(d, "exited", (double)exited);
    cJSON_AddItemToArray(h->days, d);
    return 0;
}

/* The store key of the path's segment, or 0 after replying 404. */
static int64_t segment_num(http_server *srv, http_request *req)
{
    const engine *e = http_read_begin(srv, req);
    if (!e) return 0;
    segments *s = ingest_segments(srv->ing);
    int slot = find_segment(req, s, req->params[0]);
    int64_t num = slot >= 0 ? ingest_segment_num(srv->ing, slot) : 0;
    ingest_read_end(srv->ing);
    return num;
}

void http_segment_history(http_server *srv, http_request *req)
{
    int bad = 0;
    long days = http_query_long(req, "days", HISTORY_DAYS, 1, HISTORY_DAYS, &bad);
    if (bad) return;
    int64_t num = segment_num(srv, req);
    if (!num) return;
    int64_t since = http_now_ms(srv) - days * DAY_MS;
    cJSON *out = cJSON_CreateObject();
    history_ctx h = { cJSON_AddArrayToObject(out, "points"), cJSON_AddArrayToObject(out, "days") };
    store *st = ingest_store(srv->ing);
    if (store_read_history(st, num, since, add_point, &h) < 0 ||
        store_read_daily_counts(st, num, since - since % DAY_MS, add_day, &h) < 0) {
        cJSON_Delete(out);
        http_reply_errorf(req, 503, "store_unreadable", "the history could not be read; retry, and see the log");
        return;
    }
    http_reply_json(req, 200, out);
}

/* Renders transitions; names segments by id through a num -> id table taken under the
 * read lock. */
typedef struct log_ctx {
    cJSON *list;
    int64_t *nums;
    char (*ids)[SEGMENT_ID_LEN + 1];
    char **names;
    int n;
    int64_t last_seq;
} log_ctx;

static int add_transition(void *ctx, const store_transition *t)
{
    log_ctx *c = ctx;
    cJSON *o = cJSON_CreateObject();
    char buf[32];
    cJSON_AddNumberToObject(o, "seq", (double)t->seq);
    for (int i = 0; i < c->n; i++)
        if (c->nums[i] == t->num) {
            cJSON_AddStringToObject(o, "segment", c->ids[i]);
            cJSON_AddStringToObject(o, "segment_name", c->names[i]);
            break;
        }
    cJSON_AddStringToObject(o, "person", ingest_public_id_format(t->public_id, buf));
    cJSON_AddStringToObject(o, "change", t->dir == 1 ? "entered" : "exited");
    add_time(o, "at", t->at);
    cJSON_AddStringToObject(o, "cause", seg_cause_name(t->cause));
    if (t->detail) cJSON_AddStringToObject(o, "detail", t->detail);
    cJSON_AddItemToArray(c->list, o);
    c->last_seq = t->seq;
    return 0;
}

/* Fills the num -> id table of every live segment (read lock held). */
static void log_ctx_fill(log_ctx *c, http_server *srv)
{
    segments *s = ingest_segments(srv->ing);
    int n = segments_slots(s);
    c->nums = xmalloc(((size_t)n + 1) * sizeof *c->nums);
    c->ids = xmalloc(((size_t)n + 1) * sizeof *c->ids);
    c->names = xmalloc(((size_t)n + 1) * sizeof *c->names);
    for (int i = 0; i < n; i++) {
        segment_view v;
        if (!segments_view(s, i, &v)) continue;
        c->nums[c->n] = ingest_segment_num(srv->ing, i);
        snprintf(c->ids[c->n], sizeof c->ids[c->n], "%s", v.id);
        c->names[c->n] = xstrdup(v.name);
        c->n++;
    }
}

static void log_ctx_release(log_ctx *c)
{
    for (int i = 0; i < c->n; i++) free(c->names[i]);
    free(c->names);
    free(c->ids);
    free(c->nums);
}

/* Replies with a page of transitions newest first: of segment num (< 0: any) and/or a
 * person (< 0: any); ?before= and ?limit= page. */
static void reply_log(http_server *srv, http_request *req, int64_t num, int64_t person, log_ctx *c)
{
    int bad = 0;
    long limit = http_query_long(req, "limit", 50, 1, 1000, &bad);
    long before = bad ? 0 : http_query_long(req, "before", 0, 0, 0x7fffffffL, &bad);
    if (bad) return;
    cJSON *out = cJSON_CreateObject();
    c->list = cJSON_AddArrayToObject(out, "transitions");
    if (store_read_transitions(ingest_store(srv->ing), num, person, before, (int)limit + 1, add_transition, c) < 0) {
        cJSON_Delete(out);
        http_reply_errorf(req, 503, "store_unreadable", "the log could not be read; retry, and see the log");
        return;
    }
    int n = cJSON_GetArraySize(c->list);
    if (n > limit) {            /* one more than asked: there is a next page */
        cJSON_DeleteItemFromArray(c->list, n - 1);
        cJSON *last = cJSON_GetArrayItem(c->list, (int)limit - 1);
        cJSON_AddNumberToObject(out, "next_before", cJSON_GetObjectItemCaseSensitive(last, "seq")->valuedouble);
    } else {
        cJSON_AddNullToObject(out, "next_before");
    }
    http_reply_json(req, 200, out);
}

void http_segment_log(http_server *srv, http_request *req)
{
    const engine *e = http_read_begin(srv, req);
    if (!e) return;
    segments *s = ingest_segments(srv->ing);
    int slot = find_segment(req, s, req->params[0]);
    log_ctx c = { 0 };
    int64_t num = 0;
    if (slot >= 0) {
        num = ingest_segment_num(srv->ing, slot);
        log_ctx_fill(&c, srv);
    }
    ingest_read_end(srv->ing);
    if (slot >= 0) reply_log(srv, req, num, -1, &c);
    log_ctx_release(&c);
}

void http_transitions(http_server *srv, http_request *req)
{
    int bad = 0;
    long limit = http_query_long(req, "limit", 100, 1, 1000, &bad);
    long after = bad ? 0 : http_query_long(req, "after", 0, 0, 0x7fffffffL, &bad);
    if (bad) return;
    const engine *e = http_read_begin(srv, req);
    if (!e) return;
    log_ctx c = { 0 };
    log_ctx_fill(&c, srv);
    ingest_read_end(srv->ing);
    cJSON *out = cJSON_CreateObject();
    c.list = cJSON_AddArrayToObject(out, "transitions");
    c.last_seq = after;
    if (store_read_outbox(ingest_store(srv->ing), after, (int)limit, add_transition, &c) < 0) {
        cJSON_Delete(out);
        log_ctx_release(&c);
        http_reply_errorf(req, 503, "store_unreadable", "the outbox could not be read; retry, and see the log");
        return;
    }
    cJSON_AddNumberToObject(out, "next_after", (double)c.last_seq);
    log_ctx_release(&c);
    http_reply_json(req, 200, out);
}

/* ---- the profile ---- */

void http_profile_segments(http_server *srv, const engine *e, person_id id, cJSON *profile)
{
    (void)e;
    segments *s = ingest_segments(srv->ing);
    store *st = ingest_store(srv->ing);
    /* memory says who is a member now; the store says since when and why */
    cJSON *list = cJSON_AddArrayToObject(profile, "segments");
    for (int slot = 0; slot < segments_slots(s); slot++) {
        segment_view v;   /* the membership test first: a view counts the members */
        if (!segments_is_member(s, slot, id, 0) || !segments_view(s, slot, &v)) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", v.id);
        cJSON_AddStringToObject(o, "name", v.name);
        int64_t at = 0;
        int cause = 0;
        if (store_read_member(st, ingest_segment_num(srv->ing, slot), id, &at, &cause) != 1) {
            at = v.created_at;     /* no row: joined when the segment was created */
            cause = SEG_CAUSE_DEFINITION;
        }
        add_time(o, "entered_at", at);
        cJSON_AddStringToObject(o, "entered_by", seg_cause_name(cause));
        cJSON_AddItemToArray(list, o);
    }
    log_ctx c = { 0 };
    log_ctx_fill(&c, srv);
    c.list = cJSON_AddArrayToObject(profile, "segment_log");
    store_read_transitions(st, -1, id, 0, 20, add_transition, &c);
    log_ctx_release(&c);
}
