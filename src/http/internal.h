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

/* metrics.c: records one finished request; renders /metrics. */
void http_metrics_record(http_server *srv, int route_index, int status, int64_t micros);
char *http_metrics_render(http_server *srv, size_t *len);

#endif
