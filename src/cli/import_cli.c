/* import_cli.c - `segd import`: reads NDJSON / CSV files and imports them, either
 * straight into a data directory (store_open + ingest_open + ingest/import.c, the
 * fastest path; the directory lock refuses one a server is using) or by sending whole
 * lines in chunks to a running segd's POST /api/import with libcurl.
 * Owns option parsing, file reading, the progress bar (stderr, on a terminal), line
 * error printing and the summary lines (stdout); not the parsing of the data, which
 * is import.c's. Workload: files of millions of lines, one import at a time.
 */
#include "cli.h"
#include "../base/alloc.h"
#include "../config.h"
#include "../ingest/import.h"
#include "../store/store.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef SEGD_VERSION
#define SEGD_VERSION "dev"
#endif

#define READ_BLOCK (4u << 20)
#define MAX_ERRORS_PRINTED 100
#define MAX_RECORD_BYTES (64u << 20)      /* --server: no record boundary within this: give up */

/* The one piece of process state outside struct segd: a signal handler can only
 * reach a global. Set by SIGINT, read between blocks of input. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
    signal(SIGINT, SIG_DFL);          /* a second Ctrl-C ends the process at once */
}

/* ---- options: one table drives parsing and --help ---- */

typedef struct cli_opts {
    const char *data_dir;
    const char *server;
    const char *key;
    const char *format;
    const char *on_error;
    long chunk_lines;
    long chunk_bytes;
    int no_progress;
    int no_pipeline;
    int help;
} cli_opts;

enum { OPT_STR, OPT_LONG, OPT_FLAG };

typedef struct opt_spec {
    const char *name;
    int kind;
    size_t offset;
    const char *arg;
    const char *help;
} opt_spec;

static const opt_spec OPTS[] = {
    {"--data", OPT_STR, offsetof(cli_opts, data_dir), "DIR",
     "import straight into the data directory DIR (no server may be using it)"},
    {"--server", OPT_STR, offsetof(cli_opts, server), "URL",
     "send to the segd running at URL (POST URL/api/import)"},
    {"--key", OPT_STR, offsetof(cli_opts, key), "KEY",
     "API key for --server, sent as Authorization: Bearer KEY (default: $SEGD_API_KEY)"},
    {"--format", OPT_STR, offsetof(cli_opts, format), "FMT",
     "ndjson or csv (default: from each file's extension: .ndjson .jsonl .csv)"},
    {"--on-error", OPT_STR, offsetof(cli_opts, on_error), "MODE",
     "stop (default): apply the lines before the first bad one and stop; skip: report bad lines and go on"},
    {"--chunk-lines", OPT_LONG, offsetof(cli_opts, chunk_lines), "N",
     "lines committed together with --data (default 20000)"},
    {"--chunk-bytes", OPT_LONG, offsetof(cli_opts, chunk_bytes), "N",
     "bytes per request with --server (default 1048576; halved when the server answers 413)"},
    {"--no-progress", OPT_FLAG, offsetof(cli_opts, no_progress), NULL, "no progress bar on stderr"},
    {"--no-pipeline", OPT_FLAG, offsetof(cli_opts, no_pipeline), NULL,
     "with --data, parse and commit in one thread (for measuring)"},
    {"--help", OPT_FLAG, offsetof(cli_opts, help), NULL, "print this help"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: segd import (--data DIR | --server URL) [options] FILE...\n"
               "Imports NDJSON (one Segment message per line) and CSV (people or events) files;\n"
               "FILE - reads standard input (give --format). Exit status: 0 all lines applied,\n"
               "1 lines skipped or the import stopped or failed, 2 usage error.\n\noptions:\n");
    for (size_t i = 0; i < sizeof OPTS / sizeof *OPTS; i++) {
        char left[40];
        snprintf(left, sizeof left, "%s%s%s", OPTS[i].name, OPTS[i].arg ? " " : "", OPTS[i].arg ? OPTS[i].arg : "");
        fprintf(f, "  %-22s %s\n", left, OPTS[i].help);
    }
}

static int usage_error(const char *fmt, const char *what)
{
    fprintf(stderr, "segd import: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n(segd import --help lists the options)\n");
    return 2;
}

/* Parses argv into *o and the list of files; returns 0 or the exit code 2. */
static int parse_args(int argc, char **argv, cli_opts *o, char ***files, int *n_files)
{
    *files = xcalloc((size_t)argc + 1, sizeof **files);
    *n_files = 0;
    int only_files = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_files || a[0] != '-' || strcmp(a, "-") == 0) {
            (*files)[(*n_files)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_files = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0) a = "--help";
        const opt_spec *spec = NULL;
        const char *value = NULL;
        for (size_t k = 0; k < sizeof OPTS / sizeof *OPTS && !spec; k++) {
            size_t len = strlen(OPTS[k].name);
            if (strncmp(a, OPTS[k].name, len) != 0) continue;
            if (a[len] == 0) spec = &OPTS[k];
            else if (a[len] == '=' && OPTS[k].kind != OPT_FLAG) spec = &OPTS[k], value = a + len + 1;
        }
        if (!spec) return usage_error("unknown option %s", a);
        char *field = (char *)o + spec->offset;
        if (spec->kind == OPT_FLAG) {
            *(int *)field = 1;
            continue;
        }
        if (!value) {
            if (i + 1 >= argc) return usage_error("%s needs a value", spec->name);
            value = argv[++i];
        }
        if (spec->kind == OPT_STR) {
            *(const char **)field = value;
        } else {
            char *end;
            errno = 0;
            long n = strtol(value, &end, 10);
            if (errno || end == value || *end || n <= 0) return usage_error("%s needs a positive number", spec->name);
            *(long *)field = n;
        }
    }
    return 0;
}

/* ---- progress and summaries ---- */

typedef struct progress {
    const char *path;         /* as given, for messages */
    int tty;                  /* draw the bar */
    uint64_t total_bytes;     /* 0 when unknown (a pipe) */
    struct timespec t0;
    double last_draw;
    int drawn;                /* the bar is on screen: clear before printing */
    long errors_printed;
} progress;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void progress_clear(progress *p)
{
    if (p->drawn) {
        fprintf(stderr, "\r\033[K");
        p->drawn = 0;
    }
}

static void fmt_count(char *buf, size_t size, double v)
{
    if (v >= 1e6) snprintf(buf, size, "%.2fM", v / 1e6);
    else if (v >= 1e4) snprintf(buf, size, "%.0fk", v / 1e3);
    else snprintf(buf, size, "%.0f", v);
}

static void progress_draw(progress *p, long lines, uint64_t bytes, int force)
{
    if (!p->tty) return;
    double t = now_s();
    if (!force && t - p->last_draw < 0.1) return;
    p->last_draw = t;
    double elapsed = t - ((double)p->t0.tv_sec + (double)p->t0.tv_nsec / 1e9);
    char n[32], rate[32], eta[32] = "";
    fmt_count(n, sizeof n, (double)lines);
    fmt_count(rate, sizeof rate, elapsed > 0 ? (double)lines / elapsed : 0);
    if (p->total_bytes && bytes > 0 && elapsed > 0) {
        double left = (double)(p->total_bytes - (bytes < p->total_bytes ? bytes : p->total_bytes)) / ((double)bytes / elapsed);
        snprintf(eta, sizeof eta, "  ETA %d:%02d", (int)left / 60, (int)left % 60);
    }
    if (p->total_bytes) {
        double frac = (double)bytes / (double)p->total_bytes;
        if (frac > 1) frac = 1;
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '-';
        bar[30] = 0;
        fprintf(stderr, "\r\033[K%3d%% [%s] %s lines  %s lines/s%s", (int)(frac * 100), bar, n, rate, eta);
    } else {
        fprintf(stderr, "\r\033[K%s lines  %s lines/s", n, rate);
    }
    p->drawn = 1;
}

static void print_line_error(progress *p, long line, const char *code, const char *field, const char *message)
{
    if (p->errors_printed++ == MAX_ERRORS_PRINTED) {
        progress_clear(p);
        fprintf(stderr, "%s: more bad lines are not shown; the summary counts them\n", p->path);
    }
    if (p->errors_printed > MAX_ERRORS_PRINTED) return;
    progress_clear(p);
    if (field && field[0]) fprintf(stderr, "%s:%ld: %s (%s): %s\n", p->path, line, code, field, message);
    else fprintf(stderr, "%s:%ld: %s: %s\n", p->path, line, code, message);
}

static void on_line_error(void *ctx, long line, const segd_error *e)
{
    print_line_error(ctx, line, e->code, e->field, e->message);
}

static void on_progress(void *ctx, const import_summary *s)
{
    progress_draw(ctx, s->lines_read, s->bytes, 0);
}

static void print_summary(const char *name, const import_summary *s)
{
    double rate = s->elapsed_s > 0 ? (double)s->lines_read / s->elapsed_s : 0;
    printf("%s: %ld lines read, %ld applied, %ld duplicates, %ld skipped in %.2f s (%.0f lines/s)",
           name, s->lines_read, s->applied, s->duplicates, s->skipped, s->elapsed_s, rate);
    if (s->stopped) printf("; stopped at line %ld", s->stop_line);
    printf("\n");
    fflush(stdout);
}

static void summary_add(import_summary *total, const import_summary *s)
{
    total->lines_read += s->lines_read;
    total->applied += s->applied;
    total->duplicates += s->duplicates;
    total->skipped += s->skipped;
    total->bytes += s->bytes;
    total->elapsed_s += s->elapsed_s;      /* the file's line says where it stopped */
}

/* ---- files ---- */

static const char *base_name(const char *path)
{
    if (strcmp(path, "-") == 0) return "stdin";
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int open_input(const char *path, uint64_t *size)
{
    *size = 0;
    if (strcmp(path, "-") == 0) return STDIN_FILENO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) *size = (uint64_t)st.st_size;
    return fd;
}

static void close_input(int fd)
{
    if (fd != STDIN_FILENO) close(fd);
}

/* read() that retries on EINTR; 0 at end, -1 on error. */
static ssize_t read_some(int fd, char *buf, size_t len)
{
    for (;;) {
        ssize_t n = read(fd, buf, len);
        if (n >= 0 || errno != EINTR || interrupted) return n;
    }
}

/* ---- --data: straight into a data directory ---- */

/* Imports one file; returns 0 when all its lines applied, 1 otherwise (with *stop set
 * when the remaining files must not be imported). */
static int import_file_local(ingest *ing, const cli_opts *o, const char *path, import_format fmt,
                             import_summary *total, int *stop)
{
    int status = 1;
    uint64_t size;
    int fd = open_input(path, &size);
    if (fd < 0) {
        fprintf(stderr, "segd import: cannot open %s: %s\n", path, strerror(errno));
        *stop = 1;
        return 1;
    }
    progress p = {.path = path, .tty = isatty(STDERR_FILENO) && !o->no_progress, .total_bytes = size};
    clock_gettime(CLOCK_MONOTONIC, &p.t0);
    import_options opt;
    import_options_defaults(&opt);
    opt.format = fmt;
    opt.on_error = o->on_error ? (import_on_error)import_on_error_parse(o->on_error) : IMPORT_STOP;
    opt.file_name = base_name(path);
    /* bigger than import.h's default: each commit rewrites the touched people's rows and
     * the index pages of their events, so 20000 lines cost the writer a third less per
     * line than 5000 (1M track events over 100k people, measured); nobody reads meanwhile */
    opt.chunk_lines = o->chunk_lines > 0 ? (size_t)o->chunk_lines : 20000;
    opt.pipeline = !o->no_pipeline;
    opt.expected_bytes = size;
    opt.on_line_error = on_line_error;
    opt.on_progress = on_progress;
    opt.cb_ctx = &p;
    segd_error err;
    segd_error_clear(&err);
    char *buf = xmalloc(READ_BLOCK);
    import_job *job = import_begin(ing, &opt, &err);
    if (!job) {
        fprintf(stderr, "segd import: %s: %s\n", path, err.message);
        *stop = 1;
        goto done;
    }
    int read_failed = 0;
    for (;;) {
        ssize_t n = read_some(fd, buf, READ_BLOCK);
        if (interrupted) break;
        if (n < 0) {
            read_failed = errno;
            break;
        }
        if (n == 0) break;
        if (import_feed(job, buf, (size_t)n, NULL) != 0) break;
    }
    if (interrupted || read_failed) import_cancel(job);
    import_summary s;
    cJSON *ignored = NULL;
    int rc = import_end(job, &s, &ignored, &err);
    cJSON_Delete(ignored);
    progress_draw(&p, s.lines_read, s.bytes, 1);
    progress_clear(&p);
    print_summary(path, &s);
    summary_add(total, &s);
    if (rc != 0) {
        fprintf(stderr, "segd import: %s: %s (%s)\n", path, err.message, err.code);
        *stop = 1;
    } else if (read_failed) {
        fprintf(stderr, "segd import: reading %s failed: %s; the lines before were imported\n", path, strerror(read_failed));
        *stop = 1;
    } else if (interrupted) {
        fprintf(stderr, "segd import: interrupted; %ld lines of %s were applied. Run the same command again to go on: "
                        "CSV rows and messages with a messageId that were already applied are recognised and not applied twice\n",
                s.applied, path);
        *stop = 1;
    } else if (s.stopped) {
        *stop = 1;
    } else {
        status = s.skipped ? 1 : 0;
    }
done:
    free(buf);
    close_input(fd);
    return status;
}

static int run_local(const cli_opts *o, char **files, int n_files, const int *formats)
{
    segd_error err;
    segd_error_clear(&err);
    double t0 = now_s();
    store *st = store_open(o->data_dir, &err);
    if (!st) {
        fprintf(stderr, "segd import: cannot open the data directory %s: %s%s\n", o->data_dir, err.message,
                strcmp(err.code, "data_dir_locked") == 0 ? " (a running server owns it: import through it with --server URL)" : "");
        return 1;
    }
    /* the limits a server on this directory would use: SEGD_MAX_ATTRIBUTES and the
     * others of `segd serve --help` from the environment */
    segd_config scfg;
    ingest_config icfg;
    if (config_parse(&scfg, 0, NULL) != 0) {
        store_close(st);
        return 2;
    }
    config_ingest(&scfg, &icfg);
    ingest *ing = ingest_open(st, &icfg, &err);
    if (!ing || ingest_wait_ready(ing, &err) != 0) {
        fprintf(stderr, "segd import: cannot load %s: %s\n", o->data_dir, err.message);
        ingest_close(ing);
        store_close(st);
        return 1;
    }
    if (isatty(STDERR_FILENO) && !o->no_progress)
        fprintf(stderr, "opened %s in %.2f s\n", o->data_dir, now_s() - t0);
    int status = 0, stop = 0;
    import_summary total = {0};
    int done = 0;
    for (int i = 0; i < n_files && !stop; i++, done++)
        status |= import_file_local(ing, o, files[i], (import_format)formats[i], &total, &stop);
    if (done < n_files) fprintf(stderr, "segd import: %d file(s) not imported\n", n_files - done);
    if (n_files > 1) print_summary("total", &total);
    ingest_close(ing);
    store_close(st);
    return status || stop ? 1 : 0;
}

/* ---- --server: chunks of whole lines to POST /api/import ---- */

size_t cli_curl_write(char *ptr, size_t size, size_t nmemb, void *ctx)
{
    growbuf *b = ctx;
    size_t n = size * nmemb;
    if (b->len + n > (16u << 20)) return 0;          /* a summary is small: refuse floods */
    b->data = xgrow(b->data, 1, &b->cap, b->len + n + 1, 4096);
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

/* The server's error sentence from an error body ({"error": {"code", "message"}} or
 * {"code", "message"}), else the body's start. */
static void server_message(const growbuf *body, char *out, size_t size)
{
    cJSON *j = body->len ? cJSON_ParseWithLength(body->data, body->len) : NULL;
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    cJSON *holder = cJSON_IsObject(e) ? e : j;
    cJSON *msg = cJSON_GetObjectItemCaseSensitive(holder, "message");
    cJSON *code = cJSON_GetObjectItemCaseSensitive(holder, "code");
    if (cJSON_IsString(msg)) snprintf(out, size, "%s%s%s%s", msg->valuestring, cJSON_IsString(code) ? " (" : "",
                                      cJSON_IsString(code) ? code->valuestring : "", cJSON_IsString(code) ? ")" : "");
    else if (cJSON_IsString(e)) snprintf(out, size, "%s", e->valuestring);
    else snprintf(out, size, "%.300s", body->len ? body->data : "(empty body)");
    cJSON_Delete(j);
}

static long json_long(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : 0;
}

typedef struct sender {
    CURL *curl;
    struct curl_slist *headers;
    const char *base_url;       /* without a trailing '/' */
    size_t base_len;
    const char *on_error;
    growbuf body;               /* request body: the CSV header, then the chunk */
    growbuf response;
} sender;

/* Sends one chunk. Returns 0 with the summary added (and *stopped set), 413 when the
 * server found it too large (nothing applied), or -1 after printing why it failed. */
static int send_chunk(sender *s, const char *path, import_format fmt, long first_line, progress *p,
                      import_summary *sum, int *stopped)
{
    char *name = curl_easy_escape(s->curl, base_name(path), 0);
    size_t url_len = s->base_len + strlen(name) + 128;
    char *url = xmalloc(url_len);
    snprintf(url, url_len, "%.*s/api/import?format=%s&file=%s&first_line=%ld&on_error=%s", (int)s->base_len,
             s->base_url, fmt == IMPORT_CSV ? "csv" : "ndjson", name, first_line, s->on_error);
    curl_free(name);
    s->response.len = 0;
    curl_easy_setopt(s->curl, CURLOPT_URL, url);
    curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, s->body.data);
    curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body.len);
    CURLcode cc = curl_easy_perform(s->curl);
    free(url);
    if (cc != CURLE_OK) {
        progress_clear(p);
        fprintf(stderr, "segd import: cannot send %s to %s: %s\n", path, s->base_url, curl_easy_strerror(cc));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status == 413) return 413;
    char msg[600];
    if (status != 200) {
        server_message(&s->response, msg, sizeof msg);
        progress_clear(p);
        fprintf(stderr, "segd import: the server answered %ld for %s (lines from %ld): %s%s\n", status, path, first_line, msg,
                status == 401 || status == 403 ? "; pass the API key with --key or SEGD_API_KEY" : "");
        return -1;
    }
    cJSON *j = cJSON_ParseWithLength(s->response.data ? s->response.data : "", s->response.len);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        progress_clear(p);
        fprintf(stderr, "segd import: the server's answer for %s is not an import summary: %.200s\n", path,
                s->response.len ? s->response.data : "(empty)");
        return -1;
    }
    const cJSON *errors = cJSON_GetObjectItemCaseSensitive(j, "errors");
    for (const cJSON *x = errors ? errors->child : NULL; x; x = x->next) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(x, "code");
        const cJSON *field = cJSON_GetObjectItemCaseSensitive(x, "field");
        const cJSON *message = cJSON_GetObjectItemCaseSensitive(x, "message");
        print_line_error(p, json_long(x, "line"), cJSON_IsString(code) ? code->valuestring : "error",
                         cJSON_IsString(field) ? field->valuestring : "",
                         cJSON_IsString(message) ? message->valuestring : "");
    }
    long omitted = json_long(j, "errors_omitted");
    if (omitted > 0 && p->errors_printed < MAX_ERRORS_PRINTED) {
        progress_clear(p);
        fprintf(stderr, "%s: %ld more bad lines from line %ld on are not listed by the server; the summary counts them\n",
                p->path, omitted, first_line);
    }
    sum->lines_read += json_long(j, "lines_read");
    sum->applied += json_long(j, "applied");
    sum->duplicates += json_long(j, "duplicates");
    sum->skipped += json_long(j, "skipped");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "stopped"))) {
        *stopped = 1;
        sum->stopped = 1;
        sum->stop_line = json_long(j, "stop_line");
    }
    cJSON_Delete(j);
    return 0;
}

/* Reads more of fd into b (growing it); returns bytes read, 0 at end, -1 on error. */
static ssize_t fill(int fd, growbuf *b)
{
    b->data = xgrow(b->data, 1, &b->cap, b->len + READ_BLOCK, READ_BLOCK);
    ssize_t n = read_some(fd, b->data + b->len, READ_BLOCK);
    if (n > 0) b->len += (size_t)n;
    return n;
}

static int import_file_remote(sender *s, const cli_opts *o, const char *path, import_format fmt,
                              import_summary *total, int *stop)
{
    uint64_t size;
    int fd = open_input(path, &size);
    if (fd < 0) {
        fprintf(stderr, "segd import: cannot open %s: %s\n", path, strerror(errno));
        *stop = 1;
        return 1;
    }
    progress p = {.path = path, .tty = isatty(STDERR_FILENO) && !o->no_progress, .total_bytes = size};
    clock_gettime(CLOCK_MONOTONIC, &p.t0);
    size_t chunk_bytes = o->chunk_bytes > 0 ? (size_t)o->chunk_bytes : (1u << 20);
    growbuf in = {0};           /* [0, header_len): the CSV header, kept; [pos, len): unsent */
    size_t pos = 0, header_len = 0;
    uint64_t sent_bytes = 0;
    long line = 1;
    int eof = 0, failed = 0, stopped = 0;
    import_summary sum = {0};
    while (!interrupted) {
        if (!eof && in.len - pos < chunk_bytes) {
            if (pos > header_len) {                     /* drop what was sent, keep the header */
                memmove(in.data + header_len, in.data + pos, in.len - pos);
                in.len -= pos - header_len;
                pos = header_len;
            }
            ssize_t n = fill(fd, &in);
            if (n < 0) {
                if (!interrupted) fprintf(stderr, "segd import: reading %s failed: %s\n", path, strerror(errno));
                failed = 1;
                break;
            }
            if (n == 0) eof = 1;
            continue;
        }
        if (fmt == IMPORT_CSV && !header_len) {
            long header_lines = 0;
            header_len = import_split(fmt, in.data, in.len, eof, SIZE_MAX, 1, &header_lines);
            if (!header_len) {
                if (eof) break;                         /* an empty file */
                if (in.len > MAX_RECORD_BYTES) {
                    fprintf(stderr, "segd import: %s: no end of the header row within %u bytes; check its quotes\n", path,
                            MAX_RECORD_BYTES);
                    failed = 1;
                    break;
                }
                ssize_t n = fill(fd, &in);
                if (n < 0) { failed = 1; break; }
                if (n == 0) eof = 1;
                continue;
            }
            line += header_lines;
            pos = header_len;
        }
        long lines = 0;
        size_t cut = import_split(fmt, in.data + pos, in.len - pos, eof, chunk_bytes, LONG_MAX, &lines);
        if (!cut) {
            if (eof) break;
            if (in.len - pos > MAX_RECORD_BYTES) {
                fprintf(stderr, "segd import: %s:%ld: no end of this record within %u bytes; check the quotes\n", path, line,
                        MAX_RECORD_BYTES);
                failed = 1;
                break;
            }
            ssize_t n = fill(fd, &in);
            if (n < 0) { failed = 1; break; }
            if (n == 0) eof = 1;
            continue;
        }
        s->body.data = xgrow(s->body.data, 1, &s->body.cap, header_len + cut + 1, 4096);
        memcpy(s->body.data, in.data, header_len);
        memcpy(s->body.data + header_len, in.data + pos, cut);
        s->body.len = header_len + cut;
        int rc = send_chunk(s, path, fmt, line, &p, &sum, &stopped);
        if (rc == 413) {                                /* nothing was applied: send less at once */
            if (import_split(fmt, in.data + pos, cut, 1, SIZE_MAX, 1, NULL) == cut) {
                progress_clear(&p);
                fprintf(stderr, "segd import: %s:%ld: this line alone (%zu bytes with the header) is over the server's "
                                "import body limit (413); raise the limit or shorten the line\n", path, line, s->body.len);
                failed = 1;
                break;
            }
            chunk_bytes = (cut < chunk_bytes ? cut : chunk_bytes) / 2;
            continue;
        }
        if (rc != 0) {
            failed = 1;
            break;
        }
        pos += cut;
        line += lines;
        sent_bytes += cut;
        sum.bytes = sent_bytes + header_len;
        progress_draw(&p, sum.lines_read, sum.bytes, 0);
        if (stopped) break;
    }
    sum.elapsed_s = now_s() - ((double)p.t0.tv_sec + (double)p.t0.tv_nsec / 1e9);
    progress_draw(&p, sum.lines_read, sum.bytes, 1);
    progress_clear(&p);
    print_summary(path, &sum);
    summary_add(total, &sum);
    free(in.data);
    close_input(fd);
    if (interrupted)
        fprintf(stderr, "segd import: interrupted; the chunks sent before were applied. Run the same command again to go on: "
                        "CSV rows and messages with a messageId that were already applied are not applied twice\n");
    if (failed || stopped || interrupted) {
        *stop = 1;
        return 1;
    }
    return sum.skipped ? 1 : 0;
}

static int run_remote(const cli_opts *o, char **files, int n_files, const int *formats)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "segd import: libcurl could not start\n");
        return 1;
    }
    sender s = {0};
    s.base_url = o->server;
    s.base_len = strlen(o->server);
    while (s.base_len && s.base_url[s.base_len - 1] == '/') s.base_len--;
    s.on_error = o->on_error ? o->on_error : "stop";
    int status = 0, stop = 0, done = 0;
    char *auth = NULL;
    s.curl = curl_easy_init();
    if (!s.curl) {
        fprintf(stderr, "segd import: libcurl could not start\n");
        status = 1;
        goto cleanup;
    }
    const char *key = o->key ? o->key : getenv("SEGD_API_KEY");
    if (key && key[0]) {
        size_t n = strlen(key) + 32;
        auth = xmalloc(n);
        snprintf(auth, n, "Authorization: Bearer %s", key);
        s.headers = curl_slist_append(s.headers, auth);
    }
    curl_easy_setopt(s.curl, CURLOPT_POST, 1L);
    curl_easy_setopt(s.curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s.curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(s.curl, CURLOPT_WRITEFUNCTION, cli_curl_write);
    curl_easy_setopt(s.curl, CURLOPT_WRITEDATA, &s.response);
    curl_easy_setopt(s.curl, CURLOPT_USERAGENT, "segd-import/" SEGD_VERSION);
    import_summary total = {0};
    for (int i = 0; i < n_files && !stop; i++, done++) {
        struct curl_slist *h = curl_slist_append(NULL, formats[i] == IMPORT_CSV ? "Content-Type: text/csv; charset=utf-8"
                                                                                 : "Content-Type: application/x-ndjson");
        for (struct curl_slist *x = s.headers; x; x = x->next) h = curl_slist_append(h, x->data);
        curl_easy_setopt(s.curl, CURLOPT_HTTPHEADER, h);
        status |= import_file_remote(&s, o, files[i], (import_format)formats[i], &total, &stop);
        curl_easy_setopt(s.curl, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(h);
    }
    if (done < n_files) fprintf(stderr, "segd import: %d file(s) not imported\n", n_files - done);
    if (n_files > 1) print_summary("total", &total);
    if (stop) status = 1;
cleanup:
    curl_slist_free_all(s.headers);
    free(auth);
    free(s.body.data);
    free(s.response.data);
    if (s.curl) curl_easy_cleanup(s.curl);
    curl_global_cleanup();
    return status;
}

int cli_import(int argc, char **argv)
{
    cli_opts o = {0};
    char **files = NULL;
    int n_files = 0, rc;
    int *formats = NULL;
    if ((rc = parse_args(argc, argv, &o, &files, &n_files))) goto done;
    if (o.help) {
        usage(stdout);
        goto done;
    }
    rc = 2;
    if (!o.data_dir == !o.server) {
        usage_error("%s", o.data_dir ? "give either --data DIR or --server URL, not both" : "say where to import: --data DIR or --server URL");
        goto done;
    }
    if (o.key && !o.server) {
        usage_error("%s", "--key is for --server");
        goto done;
    }
    if (o.server && strncmp(o.server, "http://", 7) != 0 && strncmp(o.server, "https://", 8) != 0) {
        usage_error("--server needs an http:// or https:// URL (got %s)", o.server);
        goto done;
    }
    if (o.on_error && import_on_error_parse(o.on_error) < 0) {
        usage_error("--on-error must be stop or skip (got %s)", o.on_error);
        goto done;
    }
    if (o.format && import_format_parse(o.format) < 0) {
        usage_error("--format must be ndjson or csv (got %s)", o.format);
        goto done;
    }
    if (n_files == 0) {
        usage_error("%s", "name the files to import");
        goto done;
    }
    formats = xcalloc((size_t)n_files, sizeof *formats);
    int stdin_files = 0;
    for (int i = 0; i < n_files; i++) {
        formats[i] = o.format ? import_format_parse(o.format) : import_format_from_path(files[i]);
        if (formats[i] < 0) {
            usage_error("cannot tell the format of %s from its name: give --format ndjson or --format csv", files[i]);
            goto done;
        }
        if (strcmp(files[i], "-") == 0) {
            stdin_files++;
            continue;
        }
        struct stat st;
        if (stat(files[i], &st) != 0 || access(files[i], R_OK) != 0) {
            fprintf(stderr, "segd import: cannot read %s: %s\n", files[i], strerror(errno));
            goto done;
        }
        if (S_ISDIR(st.st_mode)) {
            usage_error("%s is a directory; name the files in it", files[i]);
            goto done;
        }
    }
    if (stdin_files > 1) {
        usage_error("%s", "standard input (-) can be named once");
        goto done;
    }
    /* Every chunk allocates and frees the same tens of MiB in three threads; glibc would
     * hand the memory back to the kernel after each and fault it in again (a fifth of the
     * CPU of an import, measured). Keep it: this process only imports. */
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    mallopt(M_TOP_PAD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    rc = o.data_dir ? run_local(&o, files, n_files, formats) : run_remote(&o, files, n_files, formats);
    signal(SIGINT, SIG_DFL);
done:
    free(formats);
    free(files);
    return rc;
}
