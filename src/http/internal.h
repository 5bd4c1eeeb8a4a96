/* internal.h - what the files of http/ share: the request, the route table entry,
 * reply helpers and per-route metrics. */
#ifndef SEGD_HTTP_INTERNAL_H
#define SEGD_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <stdint.h>
#include <time.h>

#include "http.h"

typedef struct http_request http_request;
typedef void (*http_handler)(http_server *srv, http_request *req);

/* Who may call a route (agents and roles come later; today: public or the master key). */
typedef enum { ACCESS_PUBLIC, ACCESS_API, ACCESS_TRACKING } route_access;

typedef struct route {
    const char *method;
    const char *pattern;        /* "/api/people/{key}": {name} matches one path segment */
    http_handler handler;
    route_access access;
    int body;                   /* 0: no body, 1: JSON body (max_body_bytes), 2: import body */
    int kind;                   /* handler-specific constant (the Segment message kind) */
} route;

#define HTTP_MAX_PARAMS 2
#define HTTP_LATENCY_BUCKETS 12

/* Per-route counters, updated with atomics. */
typedef struct route_metrics {
    uint64_t requests[6];       /* by status class: 1xx..5xx, index 0 unused */
    uint64_t latency_le[HTTP_LATENCY_BUCKETS];   /* cumulative histogram */
    uint64_t latency_us_sum;
} route_metrics;

struct http_request {
    struct MHD_Connection *conn;
    const route *route;
    int route_index;
    char params[HTTP_MAX_PARAMS][512];   /* path parameters, %-decoded */
    char **decoded;             /* query values decoded by http_query, freed with the request */
    size_t n_decoded, decoded_cap;
    char *body;
    size_t body_len, body_cap, body_limit;
    int body_too_big;
    size_t body_discarded;      /* bytes dropped after the body passed its limit */
    cJSON *json;                /* parsed JSON body for body == 1 routes */
    struct timespec started;
    int replied;
    int status;
    int auth_checked;
};

struct http_server {
    struct MHD_Daemon *daemon;
    segd_config cfg;
    ingest *ing;
    route_metrics *metrics;     /* one per route, plus one for "no route" */
    int64_t started_ms;
};

/* The time that time-relative filters and segments read: the test clock once PUT
 * /api/_test/clock set it (only with --test-clock), else the real time. */
int64_t http_now_ms(http_server *srv);

/* Takes ingest's read lock and returns the engine; while the engine is loading, replies
 * 503 and returns NULL (no lock held). Release with ingest_read_end. */
const engine *http_read_begin(http_server *srv, http_request *req);

/* The ?name= argument as a whole number in [min, max], def when absent; on a bad value
 * replies 400 invalid_parameter and sets *bad. */
long http_query_long(http_request *req, const char *name, long def, long min, long max, int *bad);

/* The resolver for segment conditions in filters: current memberships and snapshots.
 * Valid while the caller holds the read lock. */
filter_resolver http_resolver(http_server *srv);

extern const route HTTP_ROUTES[];
extern const int HTTP_N_ROUTES;

/* Query-string argument or NULL. */
const char *http_query(http_request *req, const char *name);

/* Replies with a JSON tree (freed here) and status. */
void http_reply_json(http_request *req, int status, cJSON *body);

/* Replies {"error":{"code","message",["field"],["at"],["index"]}} with err->status. */
void http_reply_error(http_request *req, const segd_error *err);

/* The same with "errors": the list of bad messages of a batch (taken over and freed;
 * NULL for none). */
void http_reply_error_list(http_request *req, const segd_error *err, cJSON *errors);

/* Builds a segd_error and replies with it. */
void http_reply_errorf(http_request *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Replies with text of a content type (copied). */
void http_reply_text(http_request *req, int status, const char *content_type, const char *text, size_t len);

/* The ingest_key_kind that ?by= names (default user_id); replies 400 invalid_by and
 * returns -1 for anything else. */
int http_key_kind(http_request *req);

/* search.c: the handlers of People search (POST /api/people/search, GET /api/people,
 * POST /api/people/export, POST /api/people/{key}/explain), GET /api/filters/parse and
 * PUT /api/_test/clock. */
void http_people_search(http_server *srv, http_request *req);
void http_people_list(http_server *srv, http_request *req);
void http_people_export(http_server *srv, http_request *req);
void http_person_explain(http_server *srv, http_request *req);
void http_filter_parse(http_server *srv, http_request *req);
void http_test_clock(http_server *srv, http_request *req);

/* segments.c: the segment routes (docs/API.md, "Segments"), the outbox, and the
 * person's segments and membership log on the profile. */
void http_segments_create(http_server *srv, http_request *req);
void http_segments_list(http_server *srv, http_request *req);
void http_segment_get(http_server *srv, http_request *req);
void http_segment_patch(http_server *srv, http_request *req);
void http_segment_delete(http_server *srv, http_request *req);
void http_segment_preview(http_server *srv, http_request *req);
void http_segment_recalculate(http_server *srv, http_request *req);
void http_segment_history(http_server *srv, http_request *req);
void http_segment_log(http_server *srv, http_request *req);
void http_transitions(http_server *srv, http_request *req);
void http_segment_people(http_server *srv, http_request *req);
/* Adds "segments" (memberships with entered_at) and "segment_log" to a profile. Under
 * the read lock. */
void http_profile_segments(http_server *srv, const engine *e, person_id id, cJSON *profile);

/* search.c: a People search over the members of a segment (GET /api/segments/{id}/people):
 * num is its store key, since its creation time (entered_at of those who joined then). */
void http_search_members(http_server *srv, http_request *req, const char *segment_id, int64_t num, int64_t since);

/* metrics.c: records one finished request; renders /metrics. */
void http_metrics_record(http_server *srv, int route_index, int status, int64_t micros);
char *http_metrics_render(http_server *srv, size_t *len);

#endif
