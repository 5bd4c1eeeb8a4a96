/* http.h - segd's HTTP server: libmicrohttpd glue, the routing table, request limits,
 * access control with the master key, metrics, and the JSON encoding of responses.
 * Knows nothing of how filters are evaluated or how data is stored: handlers call
 * ingest/ to write and read the engine under ingest's read lock.
 *
 * JSON ownership (the rule for all of http/): a handler builds a response tree with
 * cJSON and hands it to http_reply_json, which prints it and frees the tree with
 * cJSON_Delete; request bodies are parsed into a tree that the dispatcher frees after
 * the handler returns. Items added to a tree belong to it.
 */
#ifndef SEGD_HTTP_H
#define SEGD_HTTP_H

#include "../base/error.h"
#include "../config.h"
#include "../ingest/ingest.h"

typedef struct http_server http_server;

/* Starts serving on cfg->listen with cfg->threads threads. Writes the bound address
 * (with the real port when port 0 was asked) into bound (>= 300 bytes). Returns NULL
 * and fills *err on failure (address in use, bad address). */
http_server *http_start(const segd_config *cfg, ingest *ing, char *bound, segd_error *err);

/* Stops accepting, lets in-flight requests finish and frees the server. NULL is a no-op. */
void http_stop(http_server *srv);

/* 1 if ADDR of "ADDR:PORT" is a loopback address (127.0.0.0/8, ::1, localhost). */
int http_listen_is_loopback(const char *listen);

#endif
