/* search.c - People search over HTTP (docs/API.md, "People search"): POST
 * /api/people/search, GET /api/people, POST /api/people/export, POST
 * /api/people/{key}/explain, GET /api/filters/parse, and the test clock.
 *
 * A search parses the filter (JSON or the text form), then under ingest's read lock
 * binds it, evaluates it over everyone, counts, takes one sorted page and renders it;
 * the lock is held only while the engine is read. An export evaluates once, then
 * renders the matching people in chunks, each under its own short read lock, so a long
 * download never holds up writes. Workload: interactive searches over millions of
 * people, answered in milliseconds.
 */
#include "internal.h"
#include "../base/alloc.h"
#include "../base/timefmt.h"
#include "../filter/filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LIMIT 50
#define MAX_LIMIT 1000
#define MAX_FIELDS 200
#define EXPORT_CHUNK 2000

/* A parsed search request (names not yet resolved against the engine). */
typedef struct search_req {
    filter_node *filter;
    char *sort_names[FILTER_MAX_SORT_KEYS];
    int sort_desc[FILTER_MAX_SORT_KEYS];
    int n_sorts;
    long limit;
    char *cursor;
    char **fields;          /* NULL: the default fields; "*" alone: every attribute */
    int n_fields;
    int count_only;
    int csv;                /* export: CSV (else NDJSON) */
} search_req;

static void search_req_release(search_req *s)
{
    filter_free(s->filter);
    for (int i = 0; i < s->n_sorts; i++) free(s->sort_names[i]);
    free(s->cursor);
    for (int i = 0; i < s->n_fields; i++) free(s->fields[i]);
    free(s->fields);
}

static const char *const default_fields[] = { "user_id", "email", "name", "created_at", "last_seen" };

/* Parses a filter given as a JSON object (the contract) or a string (the text form);
 * NULL value: everyone. Returns 0 or replies 4xx and returns -1. */
static int parse_filter_value(http_request *req, const cJSON *v, filter_node **out)
{
    segd_error err;
    segd_error_clear(&err);
    if (!v || cJSON_IsNull(v)) {
        *out = filter_node_new(FILTER_AND);
        return 0;
    }
    if (!(*out = filter_parse_value(v, NULL, &err))) {
        http_reply_error(req, &err);
        return -1;
    }
    return 0;
}

/* "name" or "name:asc" / "name:desc" into the request's sort keys. */
static int add_sort(http_request *req, search_req *s, const char *name, size_t len, const char *dir)
{
    if (s->n_sorts == FILTER_MAX_SORT_KEYS) {
        http_reply_errorf(req, 422, "invalid_sort", "sort by at most %d attributes", FILTER_MAX_SORT_KEYS);
        return -1;
    }
    int desc;
    if (!dir || strcmp(dir, "asc") == 0) desc = 0;
    else if (strcmp(dir, "desc") == 0) desc = 1;
    else {
        http_reply_errorf(req, 422, "invalid_sort", "a sort direction is \"asc\" or \"desc\", not \"%.40s\"", dir);
        return -1;
    }
    s->sort_names[s->n_sorts] = xstrndup(name, len);
    s->sort_desc[s->n_sorts++] = desc;
    return 0;
}

static void add_field(search_req *s, const char *name, size_t len)
{
    s->fields = xrealloc(s->fields, (size_t)(s->n_fields + 1) * sizeof *s->fields);
    s->fields[s->n_fields++] = xstrndup(name, len);
}

/* Reads {"filter", "sort", "limit", "cursor", "fields", "count_only", "format"}. */
static int parse_body(http_request *req, search_req *s, int export)
{
    const cJSON *body = req->json;
    if (!cJSON_IsObject(body)) {
        http_reply_errorf(req, 400, "invalid_body", "send a JSON object such as {\"filter\": ..., \"limit\": 50}");
        return -1;
    }
    static const char *const known[] = { "filter", "sort", "limit", "cursor", "fields", "count_only", "format" };
    for (const cJSON *it = body->child; it; it = it->next) {
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp(known[k], it->string) != 0) k++;
        if (k == sizeof known / sizeof known[0]) {
            http_reply_errorf(req, 422, "unknown_field",
                              "\"%.60s\" is not a search field; use filter, sort, limit, cursor, fields, count_only%s",
                              it->string, export ? ", format" : "");
            return -1;
        }
    }
    if (parse_filter_value(req, cJSON_GetObjectItemCaseSensitive(body, "filter"), &s->filter)) return -1;
    const cJSON *sort = cJSON_GetObjectItemCaseSensitive(body, "sort");
    if (sort && !cJSON_IsNull(sort)) {
        if (!cJSON_IsArray(sort)) {
            http_reply_errorf(req, 422, "invalid_sort", "\"sort\" is a list such as [{\"attribute\": \"last_seen\", \"dir\": \"desc\"}]");
            return -1;
        }
        for (const cJSON *k = sort->child; k; k = k->next) {
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(k, "attribute");
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(k, "dir");
            if (!cJSON_IsString(a) || (d && !cJSON_IsString(d))) {
                http_reply_errorf(req, 422, "invalid_sort", "each sort key is {\"attribute\": NAME, \"dir\": \"asc\" or \"desc\"}");
                return -1;
            }
            if (add_sort(req, s, a->valuestring, strlen(a->valuestring), d ? d->valuestring : NULL)) return -1;
        }
    }
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(body, "limit");
    if (limit && !cJSON_IsNull(limit)) {
        if (!cJSON_IsNumber(limit) || limit->valuedouble != (double)(long)limit->valuedouble ||
            limit->valuedouble < 1 || limit->valuedouble > MAX_LIMIT) {
            http_reply_errorf(req, 422, "invalid_limit", "\"limit\" is a whole number from 1 to %d", MAX_LIMIT);
            return -1;
        }
        s->limit = (long)limit->valuedouble;
    }
    const cJSON *cursor = cJSON_GetObjectItemCaseSensitive(body, "cursor");
    if (cursor && !cJSON_IsNull(cursor)) {
        if (!cJSON_IsString(cursor)) {
            http_reply_errorf(req, 400, "invalid_cursor", "\"cursor\" is the next_cursor string of the previous page");
            return -1;
        }
        s->cursor = xstrdup(cursor->valuestring);
    }
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(body, "fields");
    if (fields && !cJSON_IsNull(fields)) {
        if (!cJSON_IsArray(fields) || cJSON_GetArraySize(fields) > MAX_FIELDS) {
            http_reply_errorf(req, 422, "invalid_fields", "\"fields\" is a list of at most %d attribute names, or [\"*\"] for all", MAX_FIELDS);
            return -1;
        }
        for (const cJSON *f = fields->child; f; f = f->next) {
            if (!cJSON_IsString(f)) {
                http_reply_errorf(req, 422, "invalid_fields", "\"fields\" lists attribute names as strings");
                return -1;
            }
            add_field(s, f->valuestring, strlen(f->valuestring));
        }
    }
    const cJSON *count_only = cJSON_GetObjectItemCaseSensitive(body, "count_only");
    if (count_only && !cJSON_IsNull(count_only)) {
        if (!cJSON_IsBool(count_only)) {
            http_reply_errorf(req, 422, "invalid_count_only", "\"count_only\" is true or false");
            return -1;
        }
        s->count_only = cJSON_IsTrue(count_only);
    }
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(body, "format");
    if (format && !cJSON_IsNull(format)) {
        if (!export || !cJSON_IsString(format) || (strcmp(format->valuestring, "csv") && strcmp(format->valuestring, "ndjson"))) {
            http_reply_errorf(req, 422, "invalid_format", "\"format\" is \"csv\" or \"ndjson\" (exports only)");
            return -1;
        }
        s->csv = strcmp(format->valuestring, "csv") == 0;
    }
    return 0;
}

/* Splits "a,b,c" (a query value) and calls add for each non-empty piece. */
static int parse_list(http_request *req, search_req *s, const char *text, int sorts)
{
    const char *p = text;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len) {
            if (sorts) {
                const char *colon = memchr(p, ':', len);
                char dir[16] = "";
                if (colon) snprintf(dir, sizeof dir, "%.*s", (int)(len - (size_t)(colon - p) - 1), colon + 1);
                if (add_sort(req, s, p, colon ? (size_t)(colon - p) : len, colon ? dir : NULL)) return -1;
            } else {
                add_field(s, p, len);
            }
        }
        p += len + (comma ? 1 : 0);
    }
    return 0;
}

/* GET /api/people?filter=TEXT&sort=last_seen:desc&limit=&cursor=&fields=a,b&count_only=true */
static int parse_query(http_request *req, search_req *s)
{
    const char *filter = http_query(req, "filter");
    segd_error err;
    segd_error_clear(&err);
    if (filter && filter[0]) {
        s->filter = filter_parse_text(filter, strlen(filter), NULL, &err);
        if (!s->filter) {
            http_reply_error(req, &err);
            return -1;
        }
    } else {
        s->filter = filter_node_new(FILTER_AND);
    }
    const char *sort = http_query(req, "sort");
    if (sort && parse_list(req, s, sort, 1)) return -1;
    const char *fields = http_query(req, "fields");
    if (fields && parse_list(req, s, fields, 0)) return -1;
    const char *limit = http_query(req, "limit");
    if (limit) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (*end || end == limit || v < 1 || v > MAX_LIMIT) {
            http_reply_errorf(req, 422, "invalid_limit", "?limit= is a whole number from 1 to %d", MAX_LIMIT);
            return -1;
        }
        s->limit = v;
    }
    const char *cursor = http_query(req, "cursor");
    if (cursor && cursor[0]) s->cursor = xstrdup(cursor);
    const char *count_only = http_query(req, "count_only");
    if (count_only) {
        if (strcmp(count_only, "true") == 0 || strcmp(count_only, "1") == 0) s->count_only = 1;
        else if (strcmp(count_only, "false") && strcmp(count_only, "0")) {
            http_reply_errorf(req, 422, "invalid_count_only", "?count_only= is true or false");
            return -1;
        }
    }
    return 0;
}

/* Resolved names of a request, under the read lock. */
typedef struct resolved {
    filter_sort sorts[FILTER_MAX_SORT_KEYS];
    int n_sorts;
    int *field_attrs;       /* attribute per output field */
    int n_fields;
} resolved;

static int resolve(http_server *srv, http_request *req, const engine *e, search_req *s, resolved *r)
{
    segd_error err;
    segd_error_clear(&err);
    memset(r, 0, sizeof *r);
    filter_resolver segs = http_resolver(srv);
    if (filter_bind(s->filter, e, &segs, &err) != 0) {
        http_reply_error(req, &err);
        return -1;
    }
    if (s->n_sorts == 0) {   /* default: most recently seen first */
        r->sorts[0] = (filter_sort){ ATTR_LAST_SEEN, 1 };
        r->n_sorts = 1;
    }
    for (int i = 0; i < s->n_sorts; i++) {
        int a = engine_attr_find(e, s->sort_names[i]);
        segd_type t = a >= 0 ? engine_attr_type(e, a) : SEGD_T_NONE;
        if (a < 0) {
            http_reply_errorf(req, 422, "unknown_attribute", "cannot sort by \"%.100s\": no attribute has that name; GET /api/schema lists them",
                              s->sort_names[i]);
            return -1;
        }
        if (t != SEGD_T_STRING && t != SEGD_T_NUMBER && t != SEGD_T_DATETIME && t != SEGD_T_BOOL) {
            http_reply_errorf(req, 422, "invalid_sort", "cannot sort by \"%.100s\", a %s: sort by a string, number, datetime or boolean attribute",
                              s->sort_names[i], segd_type_name(t));
            return -1;
        }
        r->sorts[r->n_sorts++] = (filter_sort){ a, s->sort_desc[i] };
    }
    if (s->n_fields == 1 && strcmp(s->fields[0], "*") == 0) {
        r->field_attrs = xmalloc((size_t)engine_attr_slots(e) * sizeof *r->field_attrs + 1);
        for (int a = 0; a < engine_attr_slots(e); a++)
            if (engine_attr_name(e, a) && a != ATTR_ANONYMOUS_IDS) r->field_attrs[r->n_fields++] = a;
        return 0;
    }
    int n = s->fields ? s->n_fields : (int)(sizeof default_fields / sizeof default_fields[0]);
    r->field_attrs = xmalloc((size_t)n * sizeof *r->field_attrs + 1);
    for (int i = 0; i < n; i++) {
        const char *name = s->fields ? s->fields[i] : default_fields[i];
        int a = engine_attr_find(e, name);
        if (a < 0) {
            http_reply_errorf(req, 422, "unknown_attribute", "field \"%.100s\" is not an attribute; GET /api/schema lists them, [\"*\"] asks for all",
                              name);
            free(r->field_attrs);
            r->field_attrs = NULL;
            return -1;
        }
        r->field_attrs[r->n_fields++] = a;
    }
    return 0;
}

static uint64_t popcount_all(const uint64_t *bits, size_t words)
{
    uint64_t n = 0;
    for (size_t w = 0; w < words; w++) n += (uint64_t)__builtin_popcountll(bits[w]);
    return n;
}

/* One person as a result row: "id" and the requested fields. */
static cJSON *row_json(const engine *e, person_id id, const resolved *r)
{
    char buf[32];
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "id", ingest_public_id_format(engine_person_public_id(e, id), buf));
    for (int i = 0; i < r->n_fields; i++) {
        segd_cell c;
        engine_attr_get(e, id, r->field_attrs[i], &c);
        cJSON_AddItemToObject(row, engine_attr_name(e, r->field_attrs[i]), filter_cell_json(e, &c));
    }
    return row;
}

/* Runs a search and replies. member_num: the store key of the segment whose members
 * are listed (each row gets entered_at: its member row, or the segment's creation,
 * member_since, for those who joined then), or 0. */
static void run_search(http_server *srv, http_request *req, search_req *s, int64_t member_num, int64_t member_since)
{
    if (!s->limit) s->limit = DEFAULT_LIMIT;
    const engine *e = http_read_begin(srv, req);
    if (!e) return;
    resolved r;
    filter_after after;
    int have_after = 0;
    uint64_t *bits = NULL;
    cJSON *out = NULL;
    if (resolve(srv, req, e, s, &r)) goto unlock;
    if (s->cursor) {
        segd_error err;
        segd_error_clear(&err);
        if (filter_cursor_decode(s->cursor, e, r.sorts, r.n_sorts, &after, &err) != 0) {
            http_reply_error(req, &err);
            goto unlock;
        }
        have_after = 1;
    }
    size_t words = filter_words(e);
    bits = xmalloc((words ? words : 1) * sizeof *bits);
    filter_resolver segs = http_resolver(srv);
    filter_env env = { .e = e, .now_ms = http_now_ms(srv), .resolver = &segs };
    if (filter_eval(s->filter, &env, bits) != 0) {
        http_reply_errorf(req, 500, "internal", "the filter could not be evaluated");
        goto unlock;
    }
    out = cJSON_CreateObject();
    cJSON_AddNumberToObject(out, "total", (double)popcount_all(bits, words));
    if (!s->count_only) {
        person_id *ids = xmalloc((size_t)s->limit * sizeof *ids);
        int more = 0;
        uint32_t n = filter_page(e, bits, r.sorts, r.n_sorts, have_after ? &after : NULL, (uint32_t)s->limit, ids, &more);
        cJSON *people = cJSON_AddArrayToObject(out, "people");
        for (uint32_t i = 0; i < n; i++) {
            cJSON *row = row_json(e, ids[i], &r);
            if (member_num) {
                int64_t at;
                int cause;
                char tbuf[TIMEFMT_LEN];
                if (store_read_member(ingest_store(srv->ing), member_num, ids[i], &at, &cause) != 1) {
                    at = member_since;
                    cause = SEG_CAUSE_DEFINITION;
                }
                cJSON_AddStringToObject(row, "entered_at", timefmt_format(at, tbuf));
                cJSON_AddStringToObject(row, "entered_by", seg_cause_name(cause));
            }
            cJSON_AddItemToArray(people, row);
        }
        if (more && n) {
            char *next = filter_cursor_encode(e, r.sorts, r.n_sorts, ids[n - 1]);
            cJSON_AddStringToObject(out, "next_cursor", next);
            free(next);
        } else {
            cJSON_AddNullToObject(out, "next_cursor");
        }
        free(ids);
    }
unlock:
    ingest_read_end(srv->ing);
    if (out) http_reply_json(req, 200, out);
    if (have_after) filter_after_release(&after);
    free(bits);
    free(r.field_attrs);
}

void http_people_search(http_server *srv, http_request *req)
{
    search_req s = { 0 };
    if (parse_body(req, &s, 0) == 0) run_search(srv, req, &s, 0, 0);
    search_req_release(&s);
}

void http_people_list(http_server *srv, http_request *req)
{
    search_req s = { 0 };
    if (parse_query(req, &s) == 0) run_search(srv, req, &s, 0, 0);
    search_req_release(&s);
}

void http_search_members(http_server *srv, http_request *req, const char *segment_id, int64_t num, int64_t since)
{
    search_req s = { 0 };
    if (parse_query(req, &s) == 0) {
        /* the members, narrowed by ?filter= when given */
        filter_node *in = filter_node_new(FILTER_SEGMENT);
        in->name = xstrdup(segment_id);
        in->op = FOP_IN;
        filter_node *both = filter_node_new(FILTER_AND);
        filter_node_add(both, in);
        filter_node_add(both, s.filter);
        s.filter = both;
        run_search(srv, req, &s, num, since);
    }
    search_req_release(&s);
}

/* ---- export ---- */

/* The state of a streamed export: the matching ids (in id order) and where we are. */
typedef struct export_state {
    http_server *srv;
    search_req s;
    person_id *ids;
    size_t n_ids, next;
    char **names;           /* output field names, copied at the start */
    int n_names;
    int *field_attrs;
    int n_fields;
    char *buf;              /* rendered, not yet sent */
    size_t len, sent, cap;
    int header_done;
} export_state;

static void buf_put(export_state *x, const char *s, size_t len)
{
    x->buf = xgrow(x->buf, 1, &x->cap, x->len + len + 1, 65536);
    memcpy(x->buf + x->len, s, len);
    x->len += len;
}

/* RFC 4180 cell; a cell starting with = + - @ is prefixed with ' (spreadsheet formulas). */
static void csv_cell(export_state *x, const char *s)
{
    int formula = s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@';
    int quote = formula || strpbrk(s, ",\"\r\n") != NULL;
    if (quote) buf_put(x, "\"", 1);
    if (formula) buf_put(x, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"') buf_put(x, "\"\"", 2);
        else buf_put(x, p, 1);
    }
    if (quote) buf_put(x, "\"", 1);
}

/* Renders the next chunk of people under a short read lock. */
static void export_render(export_state *x)
{
    x->len = x->sent = 0;
    if (x->s.csv && !x->header_done) {
        csv_cell(x, "id");
        for (int i = 0; i < x->n_names; i++) {
            buf_put(x, ",", 1);
            csv_cell(x, x->names[i]);
        }
        buf_put(x, "\r\n", 2);
        x->header_done = 1;
    }
    const engine *e = ingest_read_begin(x->srv->ing);
    if (!e) {   /* shutting down: end the stream */
        x->next = x->n_ids;
        return;
    }
    size_t end = x->next + EXPORT_CHUNK < x->n_ids ? x->next + EXPORT_CHUNK : x->n_ids;
    char idbuf[32];
    for (; x->next < end; x->next++) {
        person_id id = x->ids[x->next];
        if (!engine_person_exists(e, id)) continue;   /* erased since the evaluation */
        ingest_public_id_format(engine_person_public_id(e, id), idbuf);
        if (x->s.csv) {
            csv_cell(x, idbuf);
            for (int i = 0; i < x->n_fields; i++) {
                buf_put(x, ",", 1);
                segd_cell c;
                if (x->field_attrs[i] < 0 || !engine_attr_get(e, id, x->field_attrs[i], &c)) continue;
                if (c.type == SEGD_T_STRING || c.type == SEGD_T_JSON) {
                    csv_cell(x, engine_string(e, c.code, NULL));
                } else {
                    cJSON *v = filter_cell_json(e, &c);
                    char *text = cJSON_IsString(v) ? xstrdup(v->valuestring) : cJSON_PrintUnformatted(v);
                    csv_cell(x, text);
                    free(text);
                    cJSON_Delete(v);
                }
            }
            buf_put(x, "\r\n", 2);
        } else {
            resolved r = { .field_attrs = x->field_attrs, .n_fields = x->n_fields };
            cJSON *row = row_json(e, id, &r);
            char *text = cJSON_PrintUnformatted(row);
            buf_put(x, text, strlen(text));
            buf_put(x, "\n", 1);
            free(text);
            cJSON_Delete(row);
        }
    }
    ingest_read_end(x->srv->ing);
}

static ssize_t export_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    export_state *x = cls;
    while (x->sent == x->len) {
        if (x->next >= x->n_ids && x->header_done) return MHD_CONTENT_READER_END_OF_STREAM;
        export_render(x);
        x->header_done = 1;
        if (x->len == 0 && x->next >= x->n_ids) return MHD_CONTENT_READER_END_OF_STREAM;
    }
    size_t n = x->len - x->sent < max ? x->len - x->sent : max;
    memcpy(out, x->buf + x->sent, n);
    x->sent += n;
    return (ssize_t)n;
}

static void export_free(void *cls)
{
    export_state *x = cls;
    search_req_release(&x->s);
    free(x->ids);
    for (int i = 0; i < x->n_names; i++) free(x->names[i]);
    free(x->names);
    free(x->field_attrs);
    free(x->buf);
    free(x);
}

void http_people_export(http_server *srv, http_request *req)
{
    export_state *x = xcalloc(1, sizeof *x);
    x->srv = srv;
    if (parse_body(req, &x->s, 1) != 0) {
        export_free(x);
        return;
    }
    const engine *e = http_read_begin(srv, req);
    if (!e) {
        export_free(x);
        return;
    }
    resolved r;
    if (resolve(srv, req, e, &x->s, &r) != 0) {
        ingest_read_end(srv->ing);
        export_free(x);
        return;
    }
    size_t words = filter_words(e);
    uint64_t *bits = xmalloc((words ? words : 1) * sizeof *bits);
    filter_resolver segs = http_resolver(srv);
    filter_env env = { .e = e, .now_ms = http_now_ms(srv), .resolver = &segs };
    int rc = filter_eval(x->s.filter, &env, bits);
    if (rc == 0) {
        x->ids = xmalloc((popcount_all(bits, words) + 1) * sizeof *x->ids);
        for (size_t w = 0; w < words; w++)
            for (uint64_t b = bits[w]; b; b &= b - 1) x->ids[x->n_ids++] = (person_id)(w * 64 + (size_t)__builtin_ctzll(b));
        x->field_attrs = r.field_attrs;
        x->n_fields = r.n_fields;
        x->names = xmalloc((size_t)(r.n_fields + 1) * sizeof *x->names);
        for (int i = 0; i < r.n_fields; i++) x->names[x->n_names++] = xstrdup(engine_attr_name(e, r.field_attrs[i]));
    } else {
        free(r.field_attrs);
    }
    ingest_read_end(srv->ing);
    free(bits);
    if (rc != 0) {
        http_reply_errorf(req, 500, "internal", "the filter could not be evaluated");
        export_free(x);
        return;
    }
    if (!x->s.csv) x->header_done = 1;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, export_read, x, export_free);
    MHD_add_response_header(resp, "Content-Type", x->s.csv ? "text/csv; charset=utf-8" : "application/x-ndjson");
    MHD_add_response_header(resp, "Content-Disposition", x->s.csv ? "attachment; filename=\"people.csv\"" : "attachment; filename=\"people.ndjson\"");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_queue_response(req->conn, 200, resp);
    MHD_destroy_response(resp);
    req->replied = 1;
    req->status = 200;
}

/* ---- explain ---- */

void http_person_explain(http_server *srv, http_request *req)
{
    int by = http_key_kind(req);
    if (by < 0) return;
    if (!cJSON_IsObject(req->json)) {
        http_reply_errorf(req, 400, "invalid_body", "send {\"filter\": ...}");
        return;
    }
    filter_node *tree = NULL;
    if (parse_filter_value(req, cJSON_GetObjectItemCaseSensitive(req->json, "filter"), &tree)) return;
    const engine *e = http_read_begin(srv, req);
    if (!e) {
        filter_free(tree);
        return;
    }
    segd_error err;
    segd_error_clear(&err);
    cJSON *out = NULL;
    filter_resolver segs = http_resolver(srv);
    person_id id = ingest_find_person(e, (ingest_key_kind)by, req->params[0]);
    if (id == PERSON_NONE) {
        segd_error_set(&err, 404, "person_not_found", "no person has that key; check it and ?by=");
    } else if (filter_bind(tree, e, &segs, &err) == 0) {
        filter_env env = { .e = e, .now_ms = http_now_ms(srv), .resolver = &segs };
        int result = 0;
        cJSON *why = filter_explain(tree, &env, id, &result);
        out = cJSON_CreateObject();
        cJSON_AddBoolToObject(out, "match", result == 1);
        cJSON_AddItemToObject(out, "filter", why);
        char tbuf[TIMEFMT_LEN];
        cJSON_AddStringToObject(out, "now", timefmt_format(env.now_ms, tbuf));
    }
    ingest_read_end(srv->ing);
    filter_free(tree);
    if (out) http_reply_json(req, 200, out);
    else http_reply_error(req, &err);
}

/* ---- the text form ---- */

void http_filter_parse(http_server *srv, http_request *req)
{
    (void)srv;
    const char *q = http_query(req, "q");
    if (!q) {
        http_reply_errorf(req, 400, "missing_q", "pass the filter's text form as ?q=, such as ?q=plan%%20%%3D%%20%%22pro%%22");
        return;
    }
    segd_error err;
    segd_error_clear(&err);
    filter_node *tree = filter_parse_text(q, strlen(q), NULL, &err);
    if (!tree) {
        http_reply_error(req, &err);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "filter", filter_to_json(tree));
    char *text = filter_print_text(tree);
    cJSON_AddStringToObject(out, "text", text);
    free(text);
    filter_free(tree);
    http_reply_json(req, 200, out);
}

/* ---- the test clock ---- */

void http_test_clock(http_server *srv, http_request *req)
{
    if (!srv->cfg.test_clock) {
        http_reply_errorf(req, 404, "not_found", "no such endpoint");
        return;
    }
    const cJSON *now = cJSON_GetObjectItemCaseSensitive(req->json, "now");
    int64_t ms;
    if (!cJSON_IsString(now) || timefmt_parse(now->valuestring, strlen(now->valuestring), 0, &ms) != 0) {
        http_reply_errorf(req, 422, "invalid_value", "send {\"now\": an ISO 8601 date-time such as \"2026-11-28T09:00:00Z\"}");
        return;
    }
    segd_error err;
    segd_error_clear(&err);
    if (ingest_set_test_clock(srv->ing, ms, &err) != 0) {     /* runs everything due by then */
        http_reply_error(req, &err);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    char buf[TIMEFMT_LEN];
    cJSON_AddStringToObject(out, "now", timefmt_format(ms, buf));
    http_reply_json(req, 200, out);
}
