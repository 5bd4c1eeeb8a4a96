/* routes.c - the routing table and the handlers of segd's HTTP API (docs/API.md).
 * Every route is one row of HTTP_ROUTES: method, path pattern, handler, who may call
 * it, and its body kind; tests walk this table. Handlers read the engine only under
 * ingest's read lock and write only through ingest/. */
#include "internal.h"
#include "../base/alloc.h"
#include "../base/timefmt.h"
#include "../ingest/import.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tracking API (Segment spec) ---- */

static void handle_track_api(http_server *srv, http_request *req)
{
    segd_error err;
    segd_error_clear(&err);
    cJSON *msgs = req->json;
    int kind = req->route->kind;
    if (!cJSON_IsObject(req->json)) {
        if (kind < 0) http_reply_errorf(req, 400, "invalid_batch", "send {\"batch\": [message, ...]}");
        else http_reply_errorf(req, 400, "invalid_body", "send one JSON object: a Segment message");
        return;
    }
    if (kind < 0) {
        msgs = cJSON_IsObject(req->json) ? cJSON_GetObjectItemCaseSensitive(req->json, "batch") : NULL;
        if (!cJSON_IsArray(msgs)) {
            http_reply_errorf(req, 400, "invalid_batch", "send {\"batch\": [message, ...]}");
            return;
        }
    }
    int applied = 0;
    cJSON *bad = NULL;
    if (ingest_messages(srv->ing, "default", msgs, kind, 0, &applied, &bad, &err) != 0) {
        http_reply_error_list(req, &err, bad);
        return;
    }
    cJSON *ok = cJSON_CreateObject();
    cJSON_AddTrueToObject(ok, "success");
    http_reply_json(req, 200, ok);
}

/* ---- people ---- */

int http_key_kind(http_request *req)
{
    int by = ingest_key_kind_parse(http_query(req, "by"));
    if (by < 0)
        http_reply_errorf(req, 400, "invalid_by", "?by= must be one of user_id, anonymous_id, email, id");
    return by;
}

static int cmp_events_desc(const void *a, const void *b)
{
    const engine_event_ref *x = a, *y = b;
    if (x->time_ms != y->time_ms) return x->time_ms > y->time_ms ? -1 : 1;
    if (x->type != y->type) return x->type > y->type ? -1 : 1;
    return x->row > y->row ? -1 : x->row < y->row;
}

/* Event cursor: the last event returned, as "<time>.<type>.<row>" in hex; the next
 * page starts strictly after it in (time, type, row) descending order, so events that
 * arrive between pages never repeat or shift what follows. */
static void format_cursor(const engine_event_ref *r, char *buf, size_t size)
{
    snprintf(buf, size, "%" PRIx64 ".%x.%x", (uint64_t)r->time_ms, (unsigned)r->type, r->row);
}

static int parse_cursor(const char *s, engine_event_ref *r)
{
    uint64_t t;
    unsigned type, row;
    char tail;
    if (sscanf(s, "%" SCNx64 ".%x.%x%c", &t, &type, &row, &tail) != 3) return -1;
    r->time_ms = (int64_t)t;
    r->type = (int)type;
    r->row = row;
    return 0;
}

/* Adds a page of the person's events (newest first) to obj as "events" and
 * "next_cursor". Returns 0, or -1 after replying 400 for a bad cursor. */
static int add_events_page(http_request *req, const engine *e, person_id id, const char *cursor, long limit, cJSON *obj)
{
    size_t total = engine_person_events(e, id, NULL, 0);
    engine_event_ref *refs = xmalloc((total ? total : 1) * sizeof *refs);
    engine_person_events(e, id, refs, total);
    qsort(refs, total, sizeof *refs, cmp_events_desc);
    size_t start = 0;
    if (cursor) {
        engine_event_ref after;
        if (parse_cursor(cursor, &after) != 0) {
            free(refs);
            http_reply_errorf(req, 400, "invalid_cursor", "cursor is not one segd gave; start again without it");
            return -1;
        }
        while (start < total && cmp_events_desc(&refs[start], &after) <= 0) start++;
    }
    cJSON *arr = cJSON_AddArrayToObject(obj, "events");
    size_t end = start + (size_t)limit < total ? start + (size_t)limit : total;
    for (size_t i = start; i < end; i++) {
        cJSON *ev = cJSON_CreateObject();
        ingest_event_json(e, &refs[i], ev);
        cJSON_AddItemToArray(arr, ev);
    }
    if (end < total && end > start) {
        char buf[64];
        format_cursor(&refs[end - 1], buf, sizeof buf);
        cJSON_AddStringToObject(obj, "next_cursor", buf);
    } else {
        cJSON_AddNullToObject(obj, "next_cursor");
    }
    free(refs);
    return 0;
}

/* The profile: id, identity, attributes, tags, times, event counts, newest events. */
static cJSON *profile_json(http_server *srv, http_request *req, const engine *e, person_id id, long events_limit)
{
    char buf[TIMEFMT_LEN];
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "id", ingest_public_id_format(engine_person_public_id(e, id), buf));
    segd_cell c;
    if (engine_attr_get(e, id, ATTR_USER_ID, &c)) cJSON_AddStringToObject(p, "user_id", engine_string(e, c.code, NULL));
    else cJSON_AddNullToObject(p, "user_id");
    cJSON *anon = cJSON_AddArrayToObject(p, "anonymous_ids");
    if (engine_attr_get(e, id, ATTR_ANONYMOUS_IDS, &c))
        for (uint32_t i = 0; i < c.n_codes; i++)
            cJSON_AddItemToArray(anon, cJSON_CreateString(engine_string(e, c.codes[i], NULL)));
    cJSON *tags = cJSON_AddArrayToObject(p, "tags");
    if (engine_attr_get(e, id, ATTR_TAGS, &c))
        for (uint32_t i = 0; i < c.n_codes; i++)
            cJSON_AddItemToArray(tags, cJSON_CreateString(engine_string(e, c.codes[i], NULL)));
    if (engine_attr_get(e, id, ATTR_CREATED_AT, &c)) cJSON_AddStringToObject(p, "created_at", timefmt_format(c.time_ms, buf));
    else cJSON_AddNullToObject(p, "created_at");
    if (engine_attr_get(e, id, ATTR_LAST_SEEN, &c)) cJSON_AddStringToObject(p, "last_seen", timefmt_format(c.time_ms, buf));
    else cJSON_AddNullToObject(p, "last_seen");
    ingest_person_attributes_json(e, id, cJSON_AddObjectToObject(p, "attributes"));
    cJSON *counts = cJSON_AddObjectToObject(p, "event_counts");
    for (int t = 0; t < engine_event_type_count(e); t++) {
        uint32_t n = engine_person_event_count(e, id, t);
        if (n) cJSON_AddNumberToObject(counts, engine_event_type_name(e, t), n);
    }
    http_profile_segments(srv, e, id, p);
    if (events_limit > 0 && add_events_page(req, e, id, NULL, events_limit, p) != 0) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

/* Replies with the profile of the person named by (by, key), or 404. */
static void reply_profile(http_server *srv, http_request *req, int by, const char *key, int status)
{
    int bad = 0;
    long limit = http_query_long(req, "events_limit", 20, 0, 1000, &bad);
    if (bad) return;
    const engine *e = http_read_begin(srv, req);
    if (!e) return;
    person_id id = ingest_find_person(e, (ingest_key_kind)by, key);
    cJSON *p = id == PERSON_NONE ? NULL : profile_json(srv, req, e, id, limit);
    ingest_read_end(srv->ing);
    if (id == PERSON_NONE)
        http_reply_errorf(req, 404, "person_not_found", "no person has %s \"%.200s\"; check the key and ?by=",
                          by == INGEST_BY_ID ? "id" : by == INGEST_BY_EMAIL ? "email" : by == INGEST_BY_ANONYMOUS_ID ? "anonymous_id" : "user_id",
                          key);
    else if (p)
        http_reply_json(req, status, p);
}

static void handle_person_get(http_server *srv, http_request *req)
{
    int by = http_key_kind(req);
    if (by >= 0) reply_profile(srv, req, by, req->params[0], 200);
}

static void handle_person_upsert(http_server *srv, http_request *req)
{
    segd_error err;
    segd_error_clear(&err);
    int created = 0;
    uint64_t pid = 0;
    if (ingest_upsert(srv->ing, req->json, &created, &pid, &err) != 0) {
        http_reply_error(req, &err);
        return;
    }
    char buf[32];
    reply_profile(srv, req, INGEST_BY_ID, ingest_public_id_format(pid, buf), created ? 201 : 200);
}

static void handle_person_patch(http_server *srv, http_request *req)
{
    int by = http_key_kind(req);
    if (by < 0) return;
    segd_error err;
    segd_error_clear(&err);
    /* resolve to the public id first: a PATCH may change the key it was found by */
    char pid[32] = "";
    const engine *e = http_read_begin(srv, req);
    if (!e) return;
    person_id id = ingest_find_person(e, (ingest_key_kind)by, req->params[0]);
    if (id != PERSON_NONE) ingest_public_id_format(engine_person_public_id(e, id), pid);
    ingest_read_end(srv->ing);
    if (ingest_patch(srv->ing, (ingest_key_kind)by, req->params[0], req->json, &err) != 0) {
        http_reply_error(req, &err);
        return;
    }
    reply_profile(srv, req, INGEST_BY_ID, pid, 200);
}

static void handle_person_delete(http_server *srv, http_request *req)
{
    int by = http_key_kind(req);
    if (by < 0) return;
    segd_error err;
    segd_error_clear(&err);
    if (ingest_erase(srv->ing, (ingest_key_kind)by, req->params[0], &err) != 0) {
        http_reply_error(req, &err);
        return;
    }
    cJSON *ok = cJSON_CreateObject();
    cJSON_AddTrueToObject(ok, "erased");
    http_reply_json(req, 200, ok);
}

static void handle_events(http_server *srv, http_request *req)
{
    static const char *keys[] = {"user_id", "anonymous_id", "email", "id"};
    int by = -1;
    const char *key = NULL;
    for (int i = 0; i < 4 && !key; i++)
        if ((key = http_query(req, keys[i]))) by = i;
    if (!key) {
        http_reply_errorf(req, 400, "missing_parameter", "name the person with ?user_id=, ?anonymous_id=, ?email= or ?id=");
        return;
    }
    int bad = 0;
    long limit = http_query_long(req, "limit", 50, 1, 1000, &bad);
    if (bad) return;
    const engine *e = http_read_begin(srv, req);
    if (!e) return;
    person_id id = ingest_find_person(e, (ingest_key_kind)by, key);
    cJSON *root = NULL;
    if (id != PERSON_NONE) {
        root = cJSON_CreateObject();
        if (add_events_page(req, e, id, http_query(req, "cursor"), limit, root) != 0) {
            cJSON_Delete(root);
            root = NULL;
        }
    }
    ingest_read_end(srv->ing);
    if (id == PERSON_NONE) http_reply_errorf(req, 404, "person_not_found", "no person has %s \"%.200s\"", keys[by], key);
    else if (root) http_reply_json(req, 200, root);
}

/* ---- schema and attributes ---- */

static void handle_schema(http_server *srv, http_request *req)
{
    const engine *e = http_read_begin(srv, req);
    if (!e) return;
    cJSON *root = cJSON_CreateObject();
    cJSON *attrs = cJSON_AddArrayToObject(root, "attributes");
    cJSON *types = cJSON_AddArrayToObject(root, "event_types");
    for (int a = 0; a < engine_attr_slots(e); a++) {
        const char *name = engine_attr_name(e, a);
        if (!name) continue;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", name);
        cJSON_AddStringToObject(x, "type", segd_type_name(engine_attr_type(e, a)));
        cJSON_AddBoolToObject(x, "standard", a < ATTR_STANDARD_COUNT);
        cJSON_AddNumberToObject(x, "people", engine_attr_count_set(e, a));
        cJSON_AddItemToArray(attrs, x);
    }
    for (int t = 0; t < engine_event_type_count(e); t++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", engine_event_type_name(e, t));
        cJSON_AddNumberToObject(x, "events", (double)engine_event_type_events(e, t));
        cJSON *props = cJSON_AddArrayToObject(x, "properties");
        for (int p = 0; p < engine_prop_count(e, t); p++) {
            cJSON *y = cJSON_CreateObject();
            cJSON_AddStringToObject(y, "name", engine_prop_name(e, t, p));
            cJSON_AddStringToObject(y, "type", segd_type_name(engine_prop_type(e, t, p)));
            cJSON_AddItemToArray(props, y);
        }
        cJSON_AddItemToArray(types, x);
    }
    ingest_read_end(srv->ing);
    http_reply_json(req, 200, root);
}

static void handle_attribute_declare(http_server *srv, http_request *req)
{
    cJSON *name = cJSON_GetObjectItemCaseSensitive(req->json, "name");
    cJSON *type = cJSON_GetObjectItemCaseSensitive(req->json, "type");
    if (!cJSON_IsObject(req->json) || !cJSON_IsString(name) || !cJSON_IsString(type)) {
        http_reply_errorf(req, 400, "missing_field", "send {\"name\": \"plan\", \"type\": \"string|number|boolean|datetime|list\"}");
        return;
    }
    segd_error err;
    segd_error_clear(&err);
    const engine *e = http_read_begin(srv, req);
    if (!e) return;
    int existed = engine_attr_find(e, name->valuestring) >= 0;
    ingest_read_end(srv->ing);
    if (ingest_declare_attribute(srv->ing, name->valuestring, type->valuestring, &err) != 0) {
        http_reply_error(req, &err);
        return;
    }
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "name", name->valuestring);
    cJSON_AddStringToObject(x, "type", type->valuestring);
    http_reply_json(req, existed ? 200 : 201, x);
}

/* POST /api/event-types: answers with the event type as GET /api/schema lists it. */
static void handle_event_type_declare(http_server *srv, http_request *req)
{
    segd_error err;
    segd_error_clear(&err);
    int created = 0;
    if (ingest_declare_event_type(srv->ing, req->json, &created, &err) != 0) {
        http_reply_error(req, &err);
        return;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(req->json, "name");
    const engine *e = http_read_begin(srv, req);
    if (!e) return;
    int type = engine_event_type_find(e, name->valuestring);
    cJSON *x = cJSON_CreateObject();
    cJSON_AddStringToObject(x, "name", name->valuestring);
    cJSON_AddNumberToObject(x, "events", (double)engine_event_type_events(e, type));
    cJSON *props = cJSON_AddArrayToObject(x, "properties");
    for (int p = 0; p < engine_prop_count(e, type); p++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", engine_prop_name(e, type, p));
        cJSON_AddStringToObject(o, "type", segd_type_name(engine_prop_type(e, type, p)));
        cJSON_AddItemToArray(props, o);
    }
    ingest_read_end(srv->ing);
    http_reply_json(req, created ? 201 : 200, x);
}

static void handle_attribute_drop(http_server *srv, http_request *req)
{
    segd_error err;
    segd_error_clear(&err);
    if (ingest_drop_attribute(srv->ing, req->params[0], &err) != 0) {
        http_reply_error(req, &err);
        return;
    }
    cJSON *x = cJSON_CreateObject();
    cJSON_AddTrueToObject(x, "deleted");
    http_reply_json(req, 200, x);
}

/* ---- bulk import ---- */

/* POST /api/import?format=ndjson|csv&file=NAME&first_line=N&on_error=stop|skip: the
 * body is the data (or a chunk of whole lines of it); answers the import summary. */
static void handle_import(http_server *srv, http_request *req)
{
    segd_error err;
    segd_error_clear(&err);
    import_options opt;
    import_options_defaults(&opt);
    if (import_options_from_query(&opt, http_query(req, "format"), http_query(req, "file"),
                                  http_query(req, "first_line"), http_query(req, "on_error"), &err) != 0) {
        http_reply_error(req, &err);
        return;
    }
    import_summary sum;
    cJSON *line_errors = NULL;
    if (import_buffer(srv->ing, req->body ? req->body : "", req->body_len, &opt, &sum, &line_errors, &err) != 0) {
        cJSON_Delete(line_errors);
        http_reply_error(req, &err);
        return;
    }
    http_reply_json(req, 200, import_summary_json(&sum, line_errors));
}

/* ---- operations ---- */

static void handle_livez(http_server *srv, http_request *req)
{
    http_reply_text(req, 200, "application/json", "{\"status\":\"ok\"}\n", 16);
}

static void handle_readyz(http_server *srv, http_request *req)
{
    if (ingest_ready(srv->ing)) http_reply_text(req, 200, "application/json", "{\"status\":\"ready\"}\n", 19);
    else http_reply_errorf(req, 503, "not_ready", "segd is loading or its store failed; see the log");
}

static void handle_metrics(http_server *srv, http_request *req)
{
    size_t len;
    char *text = http_metrics_render(srv, &len);
    http_reply_text(req, 200, "text/plain; version=0.0.4", text, len);
    free(text);
}

const route HTTP_ROUTES[] = {
    {"POST", "/v1/identify", handle_track_api, ACCESS_TRACKING, 1, INGEST_IDENTIFY},
    {"POST", "/v1/track", handle_track_api, ACCESS_TRACKING, 1, INGEST_TRACK},
    {"POST", "/v1/page", handle_track_api, ACCESS_TRACKING, 1, INGEST_PAGE},
    {"POST", "/v1/screen", handle_track_api, ACCESS_TRACKING, 1, INGEST_SCREEN},
    {"POST", "/v1/group", handle_track_api, ACCESS_TRACKING, 1, INGEST_GROUP},
    {"POST", "/v1/alias", handle_track_api, ACCESS_TRACKING, 1, INGEST_ALIAS},
    {"POST", "/v1/batch", handle_track_api, ACCESS_TRACKING, 1, -1},
    {"POST", "/api/people/search", http_people_search, ACCESS_API, 1, 0},
    {"POST", "/api/people/export", http_people_export, ACCESS_API, 1, 0},
    {"POST", "/api/people/{key}/explain", http_person_explain, ACCESS_API, 1, 0},
    {"GET", "/api/people", http_people_list, ACCESS_API, 0, 0},
    {"GET", "/api/filters/parse", http_filter_parse, ACCESS_API, 0, 0},
    {"PUT", "/api/_test/clock", http_test_clock, ACCESS_API, 1, 0},
    {"POST", "/api/people", handle_person_upsert, ACCESS_API, 1, 0},
    {"GET", "/api/people/{key}", handle_person_get, ACCESS_API, 0, 0},
    {"PATCH", "/api/people/{key}", handle_person_patch, ACCESS_API, 1, 0},
    {"DELETE", "/api/people/{key}", handle_person_delete, ACCESS_API, 0, 0},
    {"GET", "/api/events", handle_events, ACCESS_API, 0, 0},
    {"POST", "/api/segments", http_segments_create, ACCESS_API, 1, 0},
    {"GET", "/api/segments", http_segments_list, ACCESS_API, 0, 0},
    {"GET", "/api/segments/{id}", http_segment_get, ACCESS_API, 0, 0},
    {"PATCH", "/api/segments/{id}", http_segment_patch, ACCESS_API, 1, 0},
    {"DELETE", "/api/segments/{id}", http_segment_delete, ACCESS_API, 0, 0},
    {"GET", "/api/segments/{id}/people", http_segment_people, ACCESS_API, 0, 0},
    {"POST", "/api/segments/{id}/preview", http_segment_preview, ACCESS_API, 1, 0},
    {"POST", "/api/segments/{id}/recalculate", http_segment_recalculate, ACCESS_API, 0, 0},
    {"GET", "/api/segments/{id}/history", http_segment_history, ACCESS_API, 0, 0},
    {"GET", "/api/segments/{id}/log", http_segment_log, ACCESS_API, 0, 0},
    {"GET", "/api/transitions", http_transitions, ACCESS_API, 0, 0},
    {"GET", "/api/schema", handle_schema, ACCESS_API, 0, 0},
    {"POST", "/api/attributes", handle_attribute_declare, ACCESS_API, 1, 0},
    {"DELETE", "/api/attributes/{name}", handle_attribute_drop, ACCESS_API, 0, 0},
    {"POST", "/api/event-types", handle_event_type_declare, ACCESS_API, 1, 0},
    {"POST", "/api/import", handle_import, ACCESS_API, 2, 0},
    {"GET", "/livez", handle_livez, ACCESS_PUBLIC, 0, 0},
    {"GET", "/readyz", handle_readyz, ACCESS_PUBLIC, 0, 0},
    {"GET", "/metrics", handle_metrics, ACCESS_API, 0, 0},
};
const int HTTP_N_ROUTES = (int)(sizeof HTTP_ROUTES / sizeof HTTP_ROUTES[0]);
