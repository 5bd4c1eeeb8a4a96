/* cli.h - segd's subcommands other than `serve`, called by main.c with argv starting
 * at the word after the subcommand's name. Each prints its own usage and errors and
 * returns the process exit code.
 */
#ifndef SEGD_CLI_H
#define SEGD_CLI_H

#include <stddef.h>

/* `segd import (--data DIR | --server URL) [options] FILE...`: bulk import of NDJSON or
 * CSV files, straight into a data directory no server is using, or through a running
 * segd's POST /api/import. Returns 0 when every line was applied (or was a duplicate),
 * 1 when lines were skipped, the import stopped at a bad line or failed, 2 for usage
 * errors. `segd import --help` prints the options. */
int cli_import(int argc, char **argv);

/* A growing buffer of bytes, NUL-terminated after len; zero-initialise, free(data). */
typedef struct growbuf {
    char *data;
    size_t len, cap;
} growbuf;

/* libcurl's write callback for the subcommands that talk to a server: appends to the
 * growbuf ctx; refuses (ends the transfer) past 16 MiB, since answers are small. */
size_t cli_curl_write(char *ptr, size_t size, size_t nmemb, void *ctx);

/* ---- talking to a running segd (client.c) ---- */

/* Fills *server (--server, else $SEGD_SERVER, else http://127.0.0.1:8080) and *key
 * (--key, else $SEGD_API_KEY, else NULL) when they are NULL. */
void cli_server_defaults(const char **server, const char **key);

/* s %-encoded for a URL (a new string the caller frees). */
char *cli_escape(const char *s);

/* One request: method, server + path (with its query), a JSON body or NULL. The
 * answer goes to *out and the status to *status. Returns 0, or -1 after printing
 * "cmd: cannot reach ..." when there was no answer. */
int cli_request(const char *cmd, const char *server, const char *key, const char *method, const char *path,
                const char *body, long *status, growbuf *out);

/* Prints the server's error ("cmd: code: message") from an error answer. */
void cli_print_error(const char *cmd, long status, const growbuf *body);

/* `segd segments list|show|create|delete|recalc ...` against a running segd. Returns 0,
 * 1 when the server refused or could not be reached, 2 for usage errors. */
int cli_segments(int argc, char **argv);

/* `segd query [--server URL] [--key KEY] [--limit N] [--fields a,b] [--sort s] [--json]
 * 'FILTER'`: runs a filter's text form on a running segd and prints the number of
 * matching people and the first rows. Returns 0, 1 when the server refused the filter
 * or could not be reached, 2 for usage errors. */
int cli_query(int argc, char **argv);

#endif
