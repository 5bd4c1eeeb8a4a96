/* server.c - libmicrohttpd glue: accepting, reading bodies within their limits,
 * routing through HTTP_ROUTES, access control, replies and request accounting.
 * Workload: many small tracking POSTs and reads from a few browser sessions; each
 * request is served start to finish on one of the daemon's pool threads.
 */
#include "internal.h"
#include "../base/alloc.h"
#include "../base/jsonscan.h"
#include "../base/timefmt.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

/* Bytes of an over-limit chunked body read and dropped before the connection is cut. */
#define DISCARD_MAX ((size_t)1 << 20)

int64_t http_now_ms(http_server *srv)
{
    return ingest_now_ms(srv->ing);
}

const engine *http_read_begin(http_server *srv, http_request *req)
{
    const engine *e = ingest_read_begin(srv->ing);
    if (!e) http_reply_errorf(req, 503, "not_ready", "segd is loading its store; retry in a moment (GET /readyz says when)");
    return e;
}

long http_query_long(http_request *req, const char *name, long def, long min, long max, int *bad)
{
    const char *s = http_query(req, name);
    if (!s) return def;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || end == s || v < min || v > max) {
        http_reply_errorf(req, 400, "invalid_parameter", "?%s= must be a whole number from %ld to %ld", name, min, max);
        *bad = 1;
    }
    return v;
}

filter_resolver http_resolver(http_server *srv)
{
    return segments_resolver(ingest_segments(srv->ing));
}

/* ---- replies ---- */

static void queue(http_request *req, int status, const char *content_type, char *body, size_t len, int must_free,
                  const char *auth_challenge)
{
    if (req->replied) {
        if (must_free) free(body);
        return;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body,
                                                             must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", content_type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (auth_challenge) MHD_add_response_header(r, "WWW-Authenticate", auth_challenge);
    MHD_queue_response(req->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    req->replied = 1;
    req->status = status;
}

void http_reply_json(http_request *req, int status, cJSON *body)
{
    char *s = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!s) abort();
    size_t len = strlen(s);
    s = xrealloc(s, len + 2);
    s[len++] = '\n';
    s[len] = 0;
    queue(req, status, "application/json", s, len, 1, NULL);
}

static cJSON *error_json(const segd_error *err)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(e, "code", err->code[0] ? err->code : "error");
    cJSON_AddStringToObject(e, "message", err->message);
    if (err->field[0]) cJSON_AddStringToObject(e, "field", err->field);
    if (err->at >= 0) cJSON_AddNumberToObject(e, "at", (double)err->at);
    if (err->index >= 0) cJSON_AddNumberToObject(e, "index", err->index);
    return root;
}

void http_reply_error(http_request *req, const segd_error *err)
{
    http_reply_error_list(req, err, NULL);
}

void http_reply_error_list(http_request *req, const segd_error *err, cJSON *errors)
{
    cJSON *root = error_json(err);
    if (errors) cJSON_AddItemToObject(cJSON_GetObjectItemCaseSensitive(root, "error"), "errors", errors);
    http_reply_json(req, err->status ? err->status : 500, root);
}

void http_reply_errorf(http_request *req, int status, const char *code, const char *fmt, ...)
{
    segd_error err;
    segd_error_clear(&err);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    err.status = status;
    snprintf(err.code, sizeof err.code, "%s", code);
    http_reply_error(req, &err);
}

void http_reply_text(http_request *req, int status, const char *content_type, const char *text, size_t len)
{
    queue(req, status, content_type, (char *)text, len, 0, NULL);
}

static void reply_unauthorized(http_request *req, const char *challenge, const char *message)
{
    segd_error err;
    segd_error_clear(&err);
    segd_error_set(&err, 401, "unauthorized", "%s", message);
    cJSON *j = error_json(&err);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    queue(req, 401, "application/json", s, strlen(s), 1, challenge);
}

/* Decodes %HH escapes (and, in query strings, '+' as a space) in place. Returns the
 * new length, or -1 for a bad escape or an escaped NUL byte. */
static long percent_decode(char *s, int plus_is_space)
{
    char *out = s;
    for (const char *in = s; *in; in++) {
        if (*in == '%') {
            int hi = in[1], lo = hi ? in[2] : 0;
            if (!isxdigit(hi) || !isxdigit(lo)) return -1;
            int v = (isdigit(hi) ? hi - '0' : (tolower(hi) - 'a' + 10)) * 16 + (isdigit(lo) ? lo - '0' : (tolower(lo) - 'a' + 10));
            if (v == 0) return -1;
            *out++ = (char)v;
            in += 2;
        } else {
            *out++ = plus_is_space && *in == '+' ? ' ' : *in;
        }
    }
    *out = 0;
    return out - s;
}

/* libmicrohttpd would decode the path before routing, turning "%2F" into a segment
 * separator: segd keeps the raw form and decodes path parameters and query values
 * itself, after routing. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

const char *http_query(http_request *req, const char *name)
{
    const char *raw = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    if (!raw) return NULL;
    char *copy = xstrdup(raw);
    if (percent_decode(copy, 1) < 0) {
        free(copy);
        return "";                 /* an undecodable value matches nothing */
    }
    req->decoded = xgrow(req->decoded, sizeof *req->decoded, &req->decoded_cap, req->n_decoded + 1, 4);
    req->decoded[req->n_decoded++] = copy;
    return copy;
}

/* 1 if s is valid UTF-8. */
static int utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 0;
        if (!n || (n == 2 && *p < 0xC2)) return 0;
        for (int k = 1; k < n; k++)
            if ((p[k] & 0xC0) != 0x80) return 0;
        p += n;
    }
    return 1;
}

/* ---- routing ---- */

/* Matches path against pattern, capturing {name} segments into params. */
static int match(const char *pattern, const char *path, char params[HTTP_MAX_PARAMS][512])
{
    int np = 0;
    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *pe = strchr(pattern, '}');
            const char *se = strchr(path, '/');
            size_t len = se ? (size_t)(se - path) : strlen(path);
            if (len == 0 || len >= 512 || np >= HTTP_MAX_PARAMS) return 0;
            memcpy(params[np], path, len);
            params[np++][len] = 0;
            pattern = pe + 1;
            path += len;
            continue;
        }
        if (*pattern++ != *path++) return 0;
    }
    return *pattern == 0 && *path == 0;
}

/* Finds the route; *method_mismatch is set when the path exists for another method. */
static int find_route(const char *method, const char *url, char params[HTTP_MAX_PARAMS][512], int *method_mismatch)
{
    *method_mismatch = 0;
    for (int i = 0; i < HTTP_N_ROUTES; i++) {
        if (!match(HTTP_ROUTES[i].pattern, url, params)) continue;
        if (strcmp(HTTP_ROUTES[i].method, method) == 0) return i;
        *method_mismatch = 1;
    }
    return -1;
}

/* ---- access ---- */

/* Constant-time comparison of a presented key with the master key, independent of
 * their lengths (both are hashed first). */
static int key_matches(const char *presented, const char *key)
{
    unsigned char a[32], b[32];
    crypto_generichash(a, sizeof a, (const unsigned char *)presented, strlen(presented), NULL, 0);
    crypto_generichash(b, sizeof b, (const unsigned char *)key, strlen(key), NULL, 0);
    return sodium_memcmp(a, b, sizeof a) == 0;
}

/* Returns 1 if the request may proceed; otherwise has replied 401. Tracking routes
 * may carry the key as "writeKey" in the JSON body instead (checked after parsing). */
static int check_access(http_server *srv, http_request *req, int body_parsed)
{
    const char *key = srv->cfg.master_key;
    if (!key[0] || req->route->access == ACCESS_PUBLIC) return 1;
    if (req->route->access == ACCESS_API) {
        const char *auth = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Authorization");
        if (auth && strncmp(auth, "Bearer ", 7) == 0 && key_matches(auth + 7, key)) return 1;
        reply_unauthorized(req, "Bearer realm=\"segd\"",
                           "send the API key as \"Authorization: Bearer KEY\"");
        return 0;
    }
    char *pass = NULL;
    char *user = MHD_basic_auth_get_username_password(req->conn, &pass);
    int ok = user && key_matches(user, key);
    if (user) MHD_free(user);
    if (pass) MHD_free(pass);
    if (ok) return 1;
    if (!body_parsed && !user) return 1;      /* may still come as writeKey in the body */
    if (body_parsed && !user && cJSON_IsObject(req->json)) {
        cJSON *wk = cJSON_GetObjectItemCaseSensitive(req->json, "writeKey");
        if (cJSON_IsString(wk) && key_matches(wk->valuestring, key)) return 1;
    }
    reply_unauthorized(req, "Basic realm=\"segd\"",
                       "send the write key as the HTTP Basic user name with an empty password, or as \"writeKey\" in the body");
    return 0;
}

/* ---- the libmicrohttpd callbacks ---- */

static int64_t micros_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (int64_t)(t1.tv_sec - t0->tv_sec) * 1000000 + (t1.tv_nsec - t0->tv_nsec) / 1000;
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    http_server *srv = cls;
    http_request *req = *con_cls;
    if (!req) return;
    http_metrics_record(srv, req->route_index, req->status ? req->status : 500, micros_since(&req->started));
    cJSON_Delete(req->json);
    for (size_t i = 0; i < req->n_decoded; i++) free(req->decoded[i]);
    free(req->decoded);
    free(req->body);
    free(req);
    *con_cls = NULL;
}

static void reply_too_big(http_request *req)
{
    http_reply_errorf(req, 413, "body_too_large",
                      "the body is larger than %zu bytes; send less per request (a /v1/batch of at most %zu bytes, or segd import for files)",
                      req->body_limit, req->body_limit);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    http_server *srv = cls;
    http_request *req = *con_cls;
    if (!req) {
        req = xcalloc(1, sizeof *req);
        req->conn = conn;
        clock_gettime(CLOCK_MONOTONIC, &req->started);
        *con_cls = req;
        int mismatch;
        req->route_index = find_route(method, url, req->params, &mismatch);
        if (req->route_index < 0) {
            req->route_index = HTTP_N_ROUTES;
            if (mismatch)
                http_reply_errorf(req, 405, "method_not_allowed", "%s is not supported on %s; see docs/API.md", method, url);
            else
                http_reply_errorf(req, 404, "not_found", "no such endpoint: %s %s; see docs/API.md", method, url);
            return MHD_YES;
        }
        req->route = &HTTP_ROUTES[req->route_index];
        for (int i = 0; i < HTTP_MAX_PARAMS; i++)
            if (percent_decode(req->params[i], 0) < 0 || !utf8_ok(req->params[i])) {
                http_reply_errorf(req, 400, "invalid_path",
                                  "the path has a bad %%-escape, an escaped NUL or invalid UTF-8; escape keys as UTF-8 with %%HH");
                return MHD_YES;
            }
        req->body_limit = req->route->body == 2 ? (size_t)srv->cfg.max_import_bytes : (size_t)srv->cfg.max_body_bytes;
        if (!check_access(srv, req, 0)) return MHD_YES;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > req->body_limit) {
            reply_too_big(req);
            return MHD_YES;
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!req->replied) {
            if (req->body_too_big || req->body_len + *upload_data_size > req->body_limit) {
                /* libmicrohttpd cannot queue a reply while a body is arriving: drop
                 * what comes and answer 413 at its end; cut off a body that runs on
                 * past the limit by more than DISCARD_MAX (a reset, not a status) */
                req->body_too_big = 1;
                req->body_discarded += *upload_data_size;
                if (req->body_discarded > DISCARD_MAX) return MHD_NO;
            } else {
                req->body = xgrow(req->body, 1, &req->body_cap, req->body_len + *upload_data_size + 1, 4096);
                memcpy(req->body + req->body_len, upload_data, *upload_data_size);
                req->body_len += *upload_data_size;
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->replied) return MHD_YES;
    if (req->body_too_big) {
        reply_too_big(req);
        return MHD_YES;
    }
    if (req->body) req->body[req->body_len] = 0;
    if (req->route->body == 1) {
        if (req->body_len == 0) {
            http_reply_errorf(req, 400, "empty_body", "this endpoint needs a JSON body");
            return MHD_YES;
        }
        const char *end = NULL;
        /* length + 1 takes in the NUL after the body, which require_null_terminated
         * wants to see: trailing bytes after the JSON value are an error */
        req->json = cJSON_ParseWithLengthOpts(req->body, req->body_len + 1, &end, 1);
        if (!req->json) {
            segd_error err;
            segd_error_clear(&err);
            (void)end;        /* cJSON's position can be a byte late: find the first bad byte */
            long at = (long)jsonscan_error_offset(req->body, req->body_len);
            segd_error_set(&err, 400, "invalid_json",
                           "the body is not valid JSON (at byte %ld); check quoting, commas and brackets there", at);
            err.at = at;
            http_reply_error(req, &err);
            return MHD_YES;
        }
        size_t at;
        int strict = jsonscan_validate(req->body, req->body_len, &at);
        if (strict != JSONSCAN_OK) {
            segd_error err;
            segd_error_clear(&err);
            if (strict == JSONSCAN_NUL)
                segd_error_set(&err, 400, "invalid_utf8",
                               "a string holds a \\u0000 (NUL) escape at byte %zu, which segd does not store; remove it", at);
            else
                segd_error_set(&err, 400, "invalid_json",
                               "the body is not valid JSON (at byte %zu); check escapes, quoting, commas and brackets there", at);
            err.at = (long)at;
            http_reply_error(req, &err);
            return MHD_YES;
        }
    }
    if (req->route->access == ACCESS_TRACKING && !check_access(srv, req, 1)) return MHD_YES;
    req->route->handler(srv, req);
    if (!req->replied) http_reply_errorf(req, 500, "internal", "the handler gave no answer");
    return MHD_YES;
}

/* ---- start and stop ---- */

static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len);

int http_listen_is_loopback(const char *listen)
{
    /* judge the address segd will bind, not the text: "127.example.com" is a name */
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_listen(listen, &ss, &len) != 0) return 0;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr);
    return 0;
}

/* Parses "ADDR:PORT" or "[V6]:PORT" into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *port;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':' || (size_t)(close - listen - 1) >= sizeof host) return -1;
        memcpy(host, listen + 1, (size_t)(close - listen - 1));
        host[close - listen - 1] = 0;
        port = close + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (!colon || (size_t)(colon - listen) >= sizeof host) return -1;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = 0;
        port = colon + 1;
    }
    /* a numeric address, or "localhost": no DNS look-up decides where segd listens */
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST};
    struct addrinfo *res = NULL;
    if (!*port || getaddrinfo(host[0] ? host : NULL, port, &hints, &res) != 0 || !res) return -1;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

http_server *http_start(const segd_config *cfg, ingest *ing, char *bound, segd_error *err)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_listen(cfg->listen, &ss, &sslen) != 0) {
        segd_error_set(err, 400, "bad_listen", "--listen \"%s\" is not ADDR:PORT with a numeric address (such as 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:0)",
                       cfg->listen);
        return NULL;
    }
    http_server *srv = xcalloc(1, sizeof *srv);
    srv->cfg = *cfg;
    srv->ing = ing;
    srv->metrics = xcalloc((size_t)HTTP_N_ROUTES + 1, sizeof *srv->metrics);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->per_ip_connections,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)128 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, request_completed, srv,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
        MHD_OPTION_END);
    if (!srv->daemon) {
        segd_error_set(err, 500, "listen_failed", "could not listen on %s (address in use or not available); choose another --listen",
                       cfg->listen);
        free(srv->metrics);
        free(srv);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info ? info->port : 0;
    char host[256];
    const char *colon = strrchr(cfg->listen, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - cfg->listen), cfg->listen);
    snprintf(bound, 300, "%s:%u", host, port);
    return srv;
}

void http_stop(http_server *srv)
{
    if (!srv) return;
    MHD_stop_daemon(srv->daemon);
    free(srv->metrics);
    free(srv);
}
