/* import.c - bulk import (see import.h): NDJSON lines and RFC 4180 CSV records cut from
 * a byte stream, CSV rows turned into identify / track messages, chunks of lines
 * submitted as all-or-nothing ingest batches, and the skip / stop policy per line.
 * Not the file reading, progress display or HTTP (cli/import_cli.c, http/).
 * Workload: millions of mostly valid lines; per line it allocates only the cJSON
 * message. With `pipeline`, the caller's thread parses chunk N+1 while a second
 * thread normalises chunk N and waits for ingest's writer to commit it.
 */
#include "import.h"
#include "../base/jsonscan.h"
#include "internal.h"
#include "../base/alloc.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DEFAULT_CHUNK_LINES 5000
#define DEFAULT_MAX_LINE_BYTES (1u << 20)
#define DEFAULT_MAX_ERRORS 100
#define CHUNK_MAX_BYTES (16u << 20)     /* also cut a chunk after this much input */
#define MAX_FILE_NAME_BYTES 200

/* ---- options ---- */

void import_options_defaults(import_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->format = IMPORT_NDJSON;
    opt->on_error = IMPORT_STOP;
    opt->chunk_lines = DEFAULT_CHUNK_LINES;
    opt->max_line_bytes = DEFAULT_MAX_LINE_BYTES;
    opt->max_errors = DEFAULT_MAX_ERRORS;
}

int import_format_parse(const char *s)
{
    if (!s) return -1;
    if (strcmp(s, "ndjson") == 0 || strcmp(s, "jsonl") == 0) return IMPORT_NDJSON;
    if (strcmp(s, "csv") == 0) return IMPORT_CSV;
    return -1;
}

int import_format_from_path(const char *path)
{
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (!dot || strchr(dot, '/')) return -1;
    if (strcasecmp(dot, ".ndjson") == 0 || strcasecmp(dot, ".jsonl") == 0) return IMPORT_NDJSON;
    if (strcasecmp(dot, ".csv") == 0) return IMPORT_CSV;
    return -1;
}

int import_on_error_parse(const char *s)
{
    if (!s) return -1;
    if (strcmp(s, "stop") == 0) return IMPORT_STOP;
    if (strcmp(s, "skip") == 0) return IMPORT_SKIP;
    return -1;
}

static int param_error(segd_error *err, const char *field, const char *fmt, const char *value)
{
    snprintf(err->field, sizeof err->field, "%s", field);
    return segd_error_set(err, 400, "invalid_parameter", fmt, value);
}

int import_options_from_query(import_options *opt, const char *format, const char *file,
                              const char *first_line, const char *on_error, segd_error *err)
{
    if (file) {
        if (!file[0] || strlen(file) > MAX_FILE_NAME_BYTES || strchr(file, '/') ||
            !ingest_utf8_valid(file, strlen(file)))
            return param_error(err, "file", "file must be the file's base name: 1-200 bytes of UTF-8 without '/' (got \"%.100s\")", file);
        opt->file_name = file;
    } else {
        opt->file_name = "upload";
    }
    int f = format ? import_format_parse(format) : import_format_from_path(file);
    if (f < 0)
        return param_error(err, "format", format ? "format must be ndjson, jsonl or csv (got \"%.100s\")"
                                                 : "say which format the body is in: ?format=ndjson or ?format=csv%s", format ? format : "");
    opt->format = (import_format)f;
    if (first_line) {
        char *end;
        errno = 0;
        long n = strtol(first_line, &end, 10);
        if (errno || end == first_line || *end || n < 0 || n > LONG_MAX / 2)
            return param_error(err, "first_line", "first_line must be 0 (the body is a whole file) or the line number of the body's first data line (got \"%.100s\")", first_line);
        opt->first_line = n;
    }
    if (on_error) {
        int m = import_on_error_parse(on_error);
        if (m < 0) return param_error(err, "on_error", "on_error must be stop or skip (got \"%.100s\")", on_error);
        opt->on_error = (import_on_error)m;
    }
    return 0;
}

/* ---- chunks ---- */

typedef struct line_error {
    long line;
    segd_error e;
} line_error;

typedef struct error_list {
    line_error *v;
    size_t n, cap;
} error_list;

static line_error *errors_push(error_list *l, long line)
{
    l->v = xgrow(l->v, sizeof *l->v, &l->cap, l->n + 1, 16);
    line_error *x = &l->v[l->n++];
    memset(x, 0, sizeof *x);
    x->line = line;
    return x;
}

/* Lines parsed into messages, waiting to be submitted together. */
typedef struct chunk {
    cJSON *msgs;              /* array of messages */
    long *lines;              /* line of each message, by position */
    size_t n, cap;
    error_list parse_errors;  /* lines that never became a message (skip mode) */
    int has_stop;             /* the data ends at stop_error (stop mode, or undelimitable CSV) */
    line_error stop_error;
    size_t input_bytes;       /* bytes of input the chunk covers */
    uint64_t bytes_end;       /* input offset after its last line */
    unsigned flags;           /* for ingest_messages */
    ingest_batch *prepared;   /* normalised ahead (pipeline), or NULL */
    ingest_ticket *ticket;    /* prepared and queued to the writer (pipeline), or NULL */
} chunk;

static chunk *chunk_new(unsigned flags)
{
    chunk *c = xcalloc(1, sizeof *c);
    c->msgs = cJSON_CreateArray();
    if (!c->msgs) abort();
    c->flags = flags;
    return c;
}

static void chunk_free(chunk *c)
{
    if (!c) return;
    /* a queued ticket is always ended by process_chunk before the chunk is freed */
    ingest_batch_free(c->prepared);       /* points into msgs: free it first */
    cJSON_Delete(c->msgs);
    free(c->lines);
    free(c->parse_errors.v);
    free(c);
}

static void chunk_add(chunk *c, cJSON *msg, long line)
{
    c->lines = xgrow(c->lines, sizeof *c->lines, &c->cap, c->n + 1, 256);
    c->lines[c->n++] = line;
    cJSON_AddItemToArray(c->msgs, msg);
}

/* ---- the job ---- */

typedef enum csv_kind { CSV_NONE, CSV_PEOPLE, CSV_EVENTS } csv_kind;

typedef struct csv_span {
    size_t off, len;          /* within the record, without surrounding quotes */
    int escaped;              /* holds doubled quotes to collapse */
} csv_span;

struct import_job {
    ingest *ing;
    import_options opt;
    struct timespec started;

    /* parsing: only the caller's thread */
    char *buf;                /* bytes kept from earlier feeds (a partial line) */
    size_t len, cap;
    uint64_t consumed;        /* input bytes parsed so far */
    long line;                /* number of the next line */
    int bom_checked;
    int skip_to_newline;      /* an over-long NDJSON line is being discarded */
    int parse_stopped;        /* a stop was queued: parse no more */
    int expect_sent;          /* ingest_expect_messages was called */
    chunk *filling;
    csv_kind kind;            /* CSV_NONE until the header was read */
    char **cols;
    size_t n_cols;
    int col_user, col_anon, col_event, col_time, col_props, col_tags;
    uint64_t header_hash;
    csv_span *spans;
    size_t spans_cap;
    char *cell;               /* unescaped cell scratch */
    size_t cell_cap;
    char msg_id[MAX_FILE_NAME_BYTES + 64];

    /* submitting: the submitter thread, or the caller's when not pipelining */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int thread_started;
    chunk *inflight;          /* handed to the submitter, not yet taken */
    int taken;                /* chunks the submitter took and has not finished (0-2) */
    int draining;             /* drain() waits: the submitter finishes what it holds */
    int quit;
    /* results, under mu */
    import_summary sum;
    int stopped;
    int fail_rc;              /* 0, or the failure that ended the import */
    segd_error fail_err;
    /* only the submitting side until the end */
    cJSON *errors_json;
    size_t n_errors_json;
    char *file_name;          /* opt.file_name cut to 200 bytes of valid UTF-8 */
};

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Records a failure that ends the import (first one wins). */
static void job_fail(import_job *job, int rc, const segd_error *e)
{
    pthread_mutex_lock(&job->mu);
    if (!job->fail_rc) {
        job->fail_rc = rc < 0 ? rc : SEGD_EIO;
        job->fail_err = *e;
    }
    pthread_mutex_unlock(&job->mu);
}

static int job_finished(import_job *job)
{
    pthread_mutex_lock(&job->mu);
    int r = job->stopped || job->fail_rc;
    pthread_mutex_unlock(&job->mu);
    return r;
}

int import_done(const import_job *job)
{
    return job_finished((import_job *)job);
}

/* ---- submitting a chunk ---- */

static int cmp_line_error(const void *a, const void *b)
{
    long x = ((const line_error *)a)->line, y = ((const line_error *)b)->line;
    return x < y ? -1 : x > y;
}

static void error_from_json(segd_error *e, const cJSON *x)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(x, "code");
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(x, "field");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(x, "message");
    e->status = 400;
    snprintf(e->code, sizeof e->code, "%s", cJSON_IsString(code) ? code->valuestring : "invalid_message");
    snprintf(e->field, sizeof e->field, "%s", cJSON_IsString(field) ? field->valuestring : "");
    snprintf(e->message, sizeof e->message, "%s", cJSON_IsString(msg) ? msg->valuestring : "invalid message");
    e->at = -1;
    e->index = -1;
}

/* Keeps the messages at positions [0, n) whose keep[] is set (keep NULL: all of the
 * first n), deleting the others, and compacts lines[] alike. */
static void chunk_retain(chunk *c, const unsigned char *keep, size_t n)
{
    size_t i = 0, out = 0;
    cJSON *item = c->msgs->child;
    while (item) {
        cJSON *next = item->next;
        if (i < n && (!keep || keep[i])) {
            c->lines[out++] = c->lines[i];
        } else {
            cJSON_Delete(cJSON_DetachItemViaPointer(c->msgs, item));
        }
        item = next;
        i++;
    }
    c->n = out;
}

/* Submits a chunk until what is left of it commits: in skip mode the bad messages are
 * dropped and the rest resubmitted; in stop mode the messages before the first bad one
 * are resubmitted and the import stops there. Then reports the chunk's bad lines in
 * line order and adds it to the summary. Runs on the submitting side only. */
static void process_chunk(import_job *job, chunk *c)
{
    error_list errs = c->parse_errors;        /* taken over from the chunk */
    memset(&c->parse_errors, 0, sizeof c->parse_errors);
    long skipped = (long)errs.n, applied = 0, duplicates = 0;
    int stop = c->has_stop;
    line_error stop_error = c->stop_error;
    unsigned char *keep = NULL;

    while (c->n > 0) {
        int ok = 0;
        cJSON *bad = NULL;
        segd_error e;
        segd_error_clear(&e);
        int rc;
        if (c->ticket) {                        /* the first try, queued ahead */
            rc = ingest_submit_end(job->ing, c->ticket, &ok, &bad, &e);
            c->ticket = NULL;
        } else if (c->prepared) {               /* the first try, normalised ahead */
            rc = ingest_submit(job->ing, c->prepared, &ok, &bad, &e);
            c->prepared = NULL;
        } else {
            rc = ingest_messages(job->ing, job->opt.source, c->msgs, -1, c->flags, &ok, &bad, &e);
        }
        if (rc == 0) {
            applied += ok;
            duplicates += (long)c->n - ok;
            break;
        }
        if (!bad || !bad->child) {             /* not about particular lines: ingest failed */
            cJSON_Delete(bad);
            job_fail(job, rc, &e);
            goto done;
        }
        keep = xrealloc(keep, c->n);
        memset(keep, 1, c->n);
        size_t first = c->n;
        const cJSON *first_item = NULL;
        for (const cJSON *x = bad->child; x; x = x->next) {
            const cJSON *idx = cJSON_GetObjectItemCaseSensitive(x, "index");
            if (!cJSON_IsNumber(idx) || idx->valuedouble < 0 || idx->valuedouble >= (double)c->n) continue;
            size_t i = (size_t)idx->valuedouble;
            if (!keep[i]) continue;
            keep[i] = 0;
            if (i < first) {
                first = i;
                first_item = x;
            }
            if (job->opt.on_error == IMPORT_SKIP) {
                error_from_json(&errors_push(&errs, c->lines[i])->e, x);
                skipped++;
            }
        }
        if (!first_item) {                      /* indexes we cannot map: treat as a failure */
            cJSON_Delete(bad);
            job_fail(job, rc, &e);
            goto done;
        }
        if (job->opt.on_error == IMPORT_SKIP) {
            chunk_retain(c, keep, c->n);
        } else {
            stop = 1;
            stop_error.line = c->lines[first];
            error_from_json(&stop_error.e, first_item);
            chunk_retain(c, NULL, first);
        }
        cJSON_Delete(bad);
    }

    if (errs.n > 1) qsort(errs.v, errs.n, sizeof *errs.v, cmp_line_error);
    if (stop) *errors_push(&errs, stop_error.line) = stop_error;    /* after every other line */
    for (size_t i = 0; i < errs.n; i++) {
        if (job->opt.on_line_error) job->opt.on_line_error(job->opt.cb_ctx, errs.v[i].line, &errs.v[i].e);
        if (job->n_errors_json < job->opt.max_errors) {
            job->n_errors_json++;
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "line", (double)errs.v[i].line);
            cJSON_AddStringToObject(x, "code", errs.v[i].e.code);
            cJSON_AddStringToObject(x, "field", errs.v[i].e.field);
            cJSON_AddStringToObject(x, "message", errs.v[i].e.message);
            cJSON_AddItemToArray(job->errors_json, x);
        }
    }
    import_summary so_far;
    pthread_mutex_lock(&job->mu);
    job->sum.applied += applied;
    job->sum.duplicates += duplicates;
    job->sum.skipped += skipped;
    job->sum.lines_read += applied + duplicates + skipped + stop;
    job->sum.bytes = c->bytes_end;
    if (stop) {
        job->stopped = 1;
        job->sum.stopped = 1;
        job->sum.stop_line = stop_error.line;
    }
    job->sum.elapsed_s = seconds_since(&job->started);
    so_far = job->sum;
    pthread_mutex_unlock(&job->mu);
    if (job->opt.on_progress) job->opt.on_progress(job->opt.cb_ctx, &so_far);
done:
    free(keep);
    free(errs.v);
}

/* The submitting thread. It takes chunk N+1 from the parser as soon as it is handed
 * over and normalises it (ingest_prepare) while the writer still applies chunk N; then
 * it finishes N (results, retries of bad lines, reports) and only then queues N+1, so
 * chunks apply in order and nothing after a stop is applied. The parser meanwhile cuts
 * chunk N+2: three stages on two cores. */
static void *submitter_main(void *arg)
{
    import_job *job = arg;
    chunk *prev = NULL;                 /* queued to the writer, not yet finished */
    pthread_mutex_lock(&job->mu);
    for (;;) {
        while (!job->inflight && !job->quit && !(prev && job->draining)) pthread_cond_wait(&job->cv, &job->mu);
        chunk *c = job->inflight;
        job->inflight = NULL;
        if (c) job->taken++;
        pthread_cond_broadcast(&job->cv);
        if (!c && !prev) break;             /* quit, nothing left */
        pthread_mutex_unlock(&job->mu);
        if (c && c->n > 0 && !job_finished(job)) {
            segd_error e;
            segd_error_clear(&e);
            /* on an invalid message, process_chunk redoes it to learn which lines are bad */
            c->prepared = ingest_prepare(job->ing, job->opt.source, c->msgs, -1, c->flags, NULL, &e);
        }
        if (prev) {
            process_chunk(job, prev);
            chunk_free(prev);
            prev = NULL;
            pthread_mutex_lock(&job->mu);
            job->taken--;
            pthread_cond_broadcast(&job->cv);
            pthread_mutex_unlock(&job->mu);
        }
        if (c) {
            if (job_finished(job)) {        /* an earlier chunk stopped or failed the import */
                chunk_free(c);
                pthread_mutex_lock(&job->mu);
                job->taken--;
                pthread_cond_broadcast(&job->cv);
                pthread_mutex_unlock(&job->mu);
            } else {
                if (c->prepared) {
                    c->ticket = ingest_submit_begin(job->ing, c->prepared);
                    c->prepared = NULL;
                }
                prev = c;
            }
        }
        pthread_mutex_lock(&job->mu);
    }
    pthread_mutex_unlock(&job->mu);
    return NULL;
}

/* Hands a full chunk to the submitting side (waiting while it has not taken the
 * previous one) or, without pipelining, processes it here. Takes ownership of c. */
static void dispatch(import_job *job, chunk *c)
{
    if (job->opt.pipeline) {
        pthread_mutex_lock(&job->mu);
        while (job->inflight) pthread_cond_wait(&job->cv, &job->mu);
        if (!job->stopped && !job->fail_rc) {
            if (!job->thread_started && pthread_create(&job->thread, NULL, submitter_main, job) == 0)
                job->thread_started = 1;
            if (job->thread_started) {
                job->inflight = c;
                pthread_cond_broadcast(&job->cv);
                pthread_mutex_unlock(&job->mu);
                return;
            }
        }
        pthread_mutex_unlock(&job->mu);
    }
    if (!job_finished(job)) process_chunk(job, c);     /* also when no thread could start */
    chunk_free(c);
}

/* Waits until every chunk handed over is finished. */
static void drain(import_job *job)
{
    pthread_mutex_lock(&job->mu);
    job->draining = 1;                  /* no chunk follows: finish the last one now */
    pthread_cond_broadcast(&job->cv);
    while (job->inflight || job->taken) pthread_cond_wait(&job->cv, &job->mu);
    job->draining = 0;
    pthread_mutex_unlock(&job->mu);
}

static unsigned chunk_flags(const import_job *job)
{
    return job->opt.format == IMPORT_CSV && job->kind == CSV_PEOPLE ? INGEST_F_TEXT_VALUES : 0;
}

static chunk *filling(import_job *job)
{
    if (!job->filling) job->filling = chunk_new(chunk_flags(job));
    return job->filling;
}

/* Notes that the current chunk covers input up to `consumed` and sends it on when
 * full (or when `force`). */
static void chunk_advance(import_job *job, size_t bytes, int force)
{
    chunk *c = job->filling;
    if (!c) return;
    c->input_bytes += bytes;
    c->bytes_end = job->consumed;
    if (force || c->has_stop || c->n + c->parse_errors.n >= job->opt.chunk_lines || c->input_bytes >= CHUNK_MAX_BYTES) {
        if (!job->expect_sent && job->opt.expected_bytes > job->consumed && c->n && c->input_bytes) {
            /* the messages with ids to come, at this chunk's bytes per line and share of
             * lines with a messageId (CSV rows always have one) */
            size_t with_id = 0;
            for (cJSON *m = c->msgs->child; m; m = m->next)
                with_id += cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "messageId"));
            job->expect_sent = 1;
            double lines_left = (double)(job->opt.expected_bytes - job->consumed) / ((double)c->input_bytes / (double)c->n);
            ingest_expect_messages(job->ing, (size_t)(lines_left * (double)with_id / (double)c->n));
        }
        job->filling = NULL;
        dispatch(job, c);
        if (job_finished(job)) job->parse_stopped = 1;   /* an earlier chunk stopped or failed */
    }
}

/* A line that could not become a message: skipped in skip mode, the end of the import
 * in stop mode (or always, with `must_stop`). Returns e for the caller to fill. */
static segd_error *bad_line(import_job *job, long line, int must_stop)
{
    chunk *c = filling(job);
    line_error *x;
    if (job->opt.on_error == IMPORT_STOP || must_stop) {
        c->has_stop = 1;
        x = &c->stop_error;
        memset(x, 0, sizeof *x);
        x->line = line;
        job->parse_stopped = 1;
    } else {
        x = errors_push(&c->parse_errors, line);
    }
    x->e.status = 400;
    x->e.at = -1;
    x->e.index = -1;
    return &x->e;
}

static void set_line_error(segd_error *e, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_line_error(segd_error *e, const char *code, const char *field, const char *fmt, ...)
{
    va_list ap;
    snprintf(e->code, sizeof e->code, "%s", code);
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* ---- NDJSON ---- */

static int all_space(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return 0;
    return 1;
}

static void ndjson_line(import_job *job, const char *p, size_t len)
{
    long line = job->line;
    if (len && p[len - 1] == '\r') len--;
    if (all_space(p, len)) return;
    if (len > job->opt.max_line_bytes) {
        set_line_error(bad_line(job, line, 0), "line_too_long", NULL,
                       "the line is %zu bytes, more than the %zu allowed; split it into smaller messages",
                       len, job->opt.max_line_bytes);
        return;
    }
    const char *end = NULL;
    cJSON *msg = cJSON_ParseWithLengthOpts(p, len, &end, 0);
    if (msg && !all_space(end, (size_t)(p + len - end))) {
        cJSON_Delete(msg);
        msg = NULL;
    }
    if (!msg) {
        long at = end && end >= p && end <= p + len ? (long)(end - p) : 0;
        segd_error *e = bad_line(job, line, 0);
        e->at = at;
        set_line_error(e, "invalid_json", NULL,
                       "the line is not valid JSON (at byte %ld): each line must be one JSON object, such as {\"type\":\"track\",\"userId\":\"u1\",\"event\":\"Signed Up\"}",
                       at + 1);
        return;
    }
    size_t at;
    int strict = jsonscan_validate(p, len, &at);      /* cJSON turns bad \u escapes into NULs */
    if (strict != JSONSCAN_OK) {
        cJSON_Delete(msg);
        segd_error *e = bad_line(job, line, 0);
        e->at = (long)at;
        if (strict == JSONSCAN_NUL)
            set_line_error(e, "invalid_utf8", NULL,
                           "the line holds a \\u0000 (NUL) escape at byte %zu, which segd does not store; remove it", at + 1);
        else
            set_line_error(e, "invalid_json", NULL, "the line is not valid JSON (at byte %zu): check its escapes", at + 1);
        return;
    }
    chunk_add(filling(job), msg, line);
}

/* Parses the whole lines of p[0..avail) (and a last unterminated one when final);
 * returns the bytes consumed. */
static size_t ndjson_parse(import_job *job, const char *p, size_t avail, int final)
{
    size_t pos = 0;
    while (pos < avail && !job->parse_stopped) {
        const char *nl = memchr(p + pos, '\n', avail - pos);
        size_t len = nl ? (size_t)(nl - (p + pos)) : avail - pos;
        size_t step = nl ? len + 1 : len;
        if (job->skip_to_newline) {
            job->consumed += step;
            pos += step;
            if (nl) {
                job->skip_to_newline = 0;
                job->line++;
            }
            continue;
        }
        if (!nl && !final) {
            if (len <= job->opt.max_line_bytes) break;     /* wait for the rest of the line */
            set_line_error(bad_line(job, job->line, 0), "line_too_long", NULL,
                           "the line is longer than the %zu bytes allowed; split it into smaller messages",
                           job->opt.max_line_bytes);
            job->skip_to_newline = 1;
            job->consumed += step;
            pos += step;
            chunk_advance(job, step, 0);
            continue;
        }
        ndjson_line(job, p + pos, len);
        job->line++;
        job->consumed += step;
        pos += step;
        chunk_advance(job, step, 0);
    }
    return pos;
}

/* ---- CSV ---- */

enum { CSV_OK, CSV_MORE, CSV_BAD };

/* Scans one record of p[0..avail). CSV_OK: *rec_len bytes (with the line terminator)
 * hold *n_spans fields. CSV_MORE: no whole record yet (never when final). CSV_BAD:
 * *why says what is wrong and *rec_len bytes (through the end of the physical line)
 * are to be skipped. *nl counts the newlines in *rec_len. */
static int csv_scan(const char *p, size_t avail, int final, csv_span **spans, size_t *spans_cap,
                    size_t *n_spans, size_t *rec_len, long *nl, const char **why)
{
    size_t i = 0, n = 0;
    long lines = 0;
    for (;;) {
        *spans = xgrow(*spans, sizeof **spans, spans_cap, n + 1, 32);
        csv_span *s = &(*spans)[n++];
        s->escaped = 0;
        if (i < avail && p[i] == '"') {
            s->off = ++i;
            for (;;) {
                if (i >= avail) {
                    if (!final) return CSV_MORE;
                    *why = "a quoted field is not closed before the end of the data; close it with '\"' (a quote inside a field is written \"\")";
                    *rec_len = avail;
                    *nl = lines;
                    return CSV_BAD;
                }
                if (p[i] == '"') {
                    if (i + 1 >= avail && !final) return CSV_MORE;
                    if (i + 1 < avail && p[i + 1] == '"') {
                        s->escaped = 1;
                        i += 2;
                        continue;
                    }
                    s->len = i - s->off;
                    i++;
                    break;
                }
                if (p[i] == '\n') lines++;
                i++;
            }
        } else {
            s->off = i;
            const char *stop = NULL;
            for (size_t k = i; k < avail; k++)
                if (p[k] == ',' || p[k] == '\n' || p[k] == '"') {
                    stop = p + k;
                    break;
                }
            if (stop && *stop == '"') {
                *why = "a quote inside an unquoted field; quote the whole field and write the quote as \"\"";
                i = (size_t)(stop - p);
                goto bad;
            }
            i = stop ? (size_t)(stop - p) : avail;
            s->len = i - s->off;
            if (i < avail && p[i] == '\n' && s->len && p[i - 1] == '\r') s->len--;
        }
        if (i >= avail) {
            if (!final) return CSV_MORE;
            *rec_len = i;
            *n_spans = n;
            *nl = lines + (i > 0);
            return CSV_OK;
        }
        if (p[i] == ',') {
            i++;
            continue;
        }
        if (p[i] == '\n' || (p[i] == '\r' && i + 1 < avail && p[i + 1] == '\n')) {
            i += p[i] == '\r' ? 2 : 1;
            *rec_len = i;
            *n_spans = n;
            *nl = lines + 1;
            return CSV_OK;
        }
        if (p[i] == '\r' && i + 1 >= avail && !final) return CSV_MORE;
        *why = "text follows a closing quote; a quoted field must end at ',' or the end of the line (a quote inside it is written \"\")";
        goto bad;
    }
bad: {
        const char *e = memchr(p + i, '\n', avail - i);
        if (!e && !final) return CSV_MORE;
        *rec_len = e ? (size_t)(e - p) + 1 : avail;
        lines = 0;
        for (size_t k = 0; k < *rec_len; k++) lines += p[k] == '\n';
        *nl = lines + (!e && *rec_len > 0);
        return CSV_BAD;
    }
}

/* The unescaped text of field s of the record at rec (NUL-terminated, in job->cell
 * or copied by the caller before the next call). */
static const char *csv_cell(import_job *job, const char *rec, const csv_span *s, size_t *len)
{
    job->cell = xgrow(job->cell, 1, &job->cell_cap, s->len + 1, 256);
    size_t out = 0;
    if (!s->escaped) {
        memcpy(job->cell, rec + s->off, s->len);
        out = s->len;
    } else {
        for (size_t k = 0; k < s->len; k++) {
            job->cell[out++] = rec[s->off + k];
            if (rec[s->off + k] == '"') k++;          /* "" -> " */
        }
    }
    job->cell[out] = 0;
    *len = out;
    return job->cell;
}

static uint64_t fnv1a(uint64_t h, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return (h ^ 0x1f) * 1099511628211ULL;         /* separator: ("ab","c") != ("a","bc") */
}

static void free_columns(import_job *job)
{
    for (size_t i = 0; i < job->n_cols; i++) free(job->cols[i]);
    free(job->cols);
    job->cols = NULL;
    job->n_cols = 0;
}

static int header_error(import_job *job, segd_error *err, const char *fmt, const char *name)
{
    segd_error e;
    segd_error_clear(&e);
    snprintf(e.field, sizeof e.field, "header");
    segd_error_set(&e, 400, "invalid_csv_header", fmt, name);
    job_fail(job, SEGD_EINVAL, &e);
    job->parse_stopped = 1;
    if (err) *err = e;
    return SEGD_EINVAL;
}

/* Reads the header record: column names, the CSV's kind, and its hash. */
static int csv_header(import_job *job, const char *rec, size_t n_spans)
{
    job->cols = xcalloc(n_spans, sizeof *job->cols);
    job->col_user = job->col_anon = job->col_event = job->col_time = job->col_props = job->col_tags = -1;
    job->header_hash = 1469598103934665603ULL;
    int other = 0;
    for (size_t i = 0; i < n_spans; i++) {
        size_t len;
        const char *name = csv_cell(job, rec, &job->spans[i], &len);
        while (len && (name[len - 1] == ' ' || name[len - 1] == '\t')) len--;
        while (len && (*name == ' ' || *name == '\t')) name++, len--;
        job->cols[i] = xstrndup(name, len);
        job->n_cols = i + 1;
        const char *c = job->cols[i];
        if (!c[0]) return header_error(job, NULL, "column %s of the header has no name; name every column (the first row is the header)", "");
        if (memchr(name, 0, len) || !ingest_utf8_valid(c, len))
            return header_error(job, NULL, "a column name is not valid UTF-8 (%s); save the file as UTF-8", "");
        for (size_t k = 0; k < i; k++)
            if (strcmp(job->cols[k], c) == 0)
                return header_error(job, NULL, "column \"%.100s\" appears twice in the header; name each column once", c);
        job->header_hash = fnv1a(job->header_hash, c, len);
        if (strcmp(c, "user_id") == 0) job->col_user = (int)i;
        else if (strcmp(c, "anonymous_id") == 0) job->col_anon = (int)i;
        else if (strcmp(c, "event") == 0) job->col_event = (int)i;
        else if (strcmp(c, "timestamp") == 0) job->col_time = (int)i;
        else if (strcmp(c, "properties") == 0) job->col_props = (int)i;
        else {
            if (strcmp(c, "tags") == 0) job->col_tags = (int)i;
            if (strcmp(c, "id") == 0 || strcmp(c, "anonymous_ids") == 0 || strcmp(c, "last_seen") == 0)
                return header_error(job, NULL, "column \"%s\" is set by segd itself and cannot be imported; remove the column", c);
            other = 1;
        }
    }
    if (job->col_user < 0 && job->col_anon < 0)
        return header_error(job, NULL, "the header needs a user_id or anonymous_id column to say who each row is about%s", "");
    if (job->col_event >= 0 && job->col_time >= 0 && !other) {
        job->kind = CSV_EVENTS;
    } else {
        job->kind = CSV_PEOPLE;
        /* event, timestamp and properties are ordinary attributes of people */
        job->col_event = job->col_time = job->col_props = -1;
    }
    if (job->filling) job->filling->flags = chunk_flags(job);
    return 0;
}

/* Builds the tags array from a cell: JSON array text or a;b;c. NULL on a bad cell. */
static cJSON *csv_tags(const char *cell, size_t len)
{
    if (cell[0] == '[') {
        cJSON *arr = cJSON_ParseWithLength(cell, len);
        size_t at;
        int ok = cJSON_IsArray(arr) && jsonscan_validate(cell, len, &at) == JSONSCAN_OK;
        for (cJSON *c = ok ? arr->child : NULL; c; c = c->next) ok &= cJSON_IsString(c);
        if (ok) return arr;
        cJSON_Delete(arr);
        return NULL;
    }
    cJSON *arr = cJSON_CreateArray();
    const char *p = cell, *end = cell + len;
    while (p <= end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *e = semi ? semi : end;
        const char *a = p, *b = e;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (b > a) {
            char *item = xstrndup(a, (size_t)(b - a));
            cJSON_AddItemToArray(arr, cJSON_CreateString(item));
            free(item);
        }
        p = e + 1;
    }
    return arr;
}

/* Turns one data record into a message in the filling chunk, or a bad line. */
static void csv_row(import_job *job, const char *rec, size_t n_spans, long line)
{
    if (n_spans != job->n_cols) {
        set_line_error(bad_line(job, line, 0), "csv_ragged_row", NULL,
                       "the row has %zu fields but the header has %zu; quote fields that contain commas or line breaks",
                       n_spans, job->n_cols);
        return;
    }
    int events = job->kind == CSV_EVENTS;
    cJSON *msg = cJSON_CreateObject();
    cJSON *traits = NULL;
    cJSON_AddItemToObjectCS(msg, "type", cJSON_CreateString(events ? "track" : "identify"));
    if (!events) {
        traits = cJSON_CreateObject();
        cJSON_AddItemToObjectCS(msg, "traits", traits);
    }
    uint64_t h = job->header_hash;
    for (size_t i = 0; i < n_spans; i++) {
        size_t len;
        const char *cell = csv_cell(job, rec, &job->spans[i], &len);
        h = fnv1a(h, cell, len);
        if (len == 0) continue;                    /* empty cell: absent */
        if (memchr(cell, 0, len)) {
            set_line_error(bad_line(job, line, 0), "invalid_utf8", job->cols[i],
                           "column \"%.100s\" holds a NUL byte; remove it", job->cols[i]);
            goto fail;
        }
        int col = (int)i;
        const char *key = NULL;
        if (col == job->col_user) key = "userId";
        else if (col == job->col_anon) key = "anonymousId";
        else if (col == job->col_event) key = "event";
        else if (col == job->col_time) key = "timestamp";
        if (key) {
            cJSON_AddItemToObjectCS(msg, key, cJSON_CreateString(cell));
        } else if (col == job->col_props) {
            cJSON *props = cJSON_ParseWithLength(cell, len);
            size_t at;
            if (!cJSON_IsObject(props) || jsonscan_validate(cell, len, &at) != JSONSCAN_OK) {
                cJSON_Delete(props);
                set_line_error(bad_line(job, line, 0), "invalid_properties", "properties",
                               "properties must be a JSON object's text, such as {\"\"plan\"\": \"\"pro\"\"} inside a quoted field (or empty)");
                goto fail;
            }
            cJSON_AddItemToObjectCS(msg, "properties", props);
        } else if (col == job->col_tags) {
            cJSON *tags = csv_tags(cell, len);
            if (!tags) {
                set_line_error(bad_line(job, line, 0), "invalid_tags", "tags",
                               "tags must be a JSON array of strings ([\"\"a\"\",\"\"b\"\"] in a quoted field) or a semicolon-separated list (a;b)");
                goto fail;
            }
            cJSON_AddItemToObjectCS(traits, job->cols[i], tags);
        } else {
            cJSON_AddItemToObjectCS(traits, job->cols[i], cJSON_CreateString(cell));
        }
    }
    snprintf(job->msg_id, sizeof job->msg_id, "csv:%s:%ld:%016llx", job->file_name, line, (unsigned long long)h);
    cJSON_AddItemToObjectCS(msg, "messageId", cJSON_CreateString(job->msg_id));
    chunk_add(filling(job), msg, line);
    return;
fail:
    cJSON_Delete(msg);
}

/* A record of one empty, unquoted field: a blank line, not a row. */
static int record_blank(const import_job *job, size_t n_spans)
{
    return n_spans == 1 && job->spans[0].len == 0 && job->spans[0].off == 0;
}

static size_t csv_parse(import_job *job, const char *p, size_t avail, int final)
{
    size_t pos = 0;
    while (pos < avail && !job->parse_stopped) {
        size_t rec_len = 0, n_spans = 0;
        long nl = 0;
        const char *why = NULL;
        int r = csv_scan(p + pos, avail - pos, final, &job->spans, &job->spans_cap, &n_spans, &rec_len, &nl, &why);
        if (r == CSV_MORE) {
            if (avail - pos > job->opt.max_line_bytes) {
                set_line_error(bad_line(job, job->line, 1), "csv_record_too_long", NULL,
                               "no end of this record within %zu bytes: a quoted field is probably not closed; check the quotes from this line on",
                               job->opt.max_line_bytes);
                chunk_advance(job, 0, 1);
            }
            break;
        }
        const char *rec = p + pos;
        long line = job->line;
        if (r == CSV_BAD) {
            if (job->kind == CSV_NONE) {
                header_error(job, NULL, "the header row is not valid CSV: %s", why);
                break;
            }
            set_line_error(bad_line(job, line, 0), "csv_bad_quote", NULL, "%s", why);
        } else if (record_blank(job, n_spans)) {
            /* a blank line: not a record */
        } else if (job->kind == CSV_NONE) {
            if (csv_header(job, rec, n_spans) != 0) break;
            if (job->opt.first_line > 0) {
                job->line = job->opt.first_line;
                nl = 0;
            }
        } else {
            csv_row(job, rec, n_spans, line);
        }
        job->line += nl;
        job->consumed += rec_len;
        pos += rec_len;
        chunk_advance(job, rec_len, 0);
    }
    return pos;
}

/* ---- feeding ---- */

static size_t parse(import_job *job, const char *p, size_t avail, int final)
{
    size_t skipped = 0;
    if (!job->bom_checked) {
        if (avail < 3 && !final && memcmp(p, "\xEF\xBB\xBF", avail) == 0) return 0;
        job->bom_checked = 1;
        if (avail >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
            skipped = 3;
            job->consumed += 3;
        }
    }
    size_t used = job->opt.format == IMPORT_CSV ? csv_parse(job, p + skipped, avail - skipped, final)
                                                : ndjson_parse(job, p + skipped, avail - skipped, final);
    return skipped + used;
}

/* 0 to go on, 1 when stopped, or the failure (copied to err). */
static int job_status(import_job *job, segd_error *err)
{
    pthread_mutex_lock(&job->mu);
    int rc = job->fail_rc ? job->fail_rc : job->stopped || job->parse_stopped;
    if (job->fail_rc && err) *err = job->fail_err;
    pthread_mutex_unlock(&job->mu);
    return rc;
}

/* The name that goes into CSV messageIds: at most MAX_FILE_NAME_BYTES, cut at a
 * character boundary, and valid UTF-8 (other bytes become '_') so ingest accepts it. */
static char *clean_file_name(const char *name)
{
    size_t len = strlen(name);
    if (len > MAX_FILE_NAME_BYTES) {
        len = MAX_FILE_NAME_BYTES;
        while (len && ((unsigned char)name[len] & 0xC0) == 0x80) len--;
    }
    char *out = xstrndup(name, len);
    if (!ingest_utf8_valid(out, len))
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)out[i] >= 0x80 || (unsigned char)out[i] < 0x20) out[i] = '_';
    return out;
}

import_job *import_begin(ingest *ing, const import_options *opt, segd_error *err)
{
    import_options o;
    if (opt) o = *opt;
    else import_options_defaults(&o);
    if (o.format != IMPORT_NDJSON && o.format != IMPORT_CSV) {
        segd_error_set(err, 400, "invalid_option", "format must be IMPORT_NDJSON or IMPORT_CSV");
        return NULL;
    }
    if (o.on_error != IMPORT_STOP && o.on_error != IMPORT_SKIP) {
        segd_error_set(err, 400, "invalid_option", "on_error must be IMPORT_STOP or IMPORT_SKIP");
        return NULL;
    }
    if (o.first_line < 0) {
        segd_error_set(err, 400, "invalid_option", "first_line must be 0 or a line number");
        return NULL;
    }
    if (!o.chunk_lines) o.chunk_lines = DEFAULT_CHUNK_LINES;
    if (!o.max_line_bytes) o.max_line_bytes = DEFAULT_MAX_LINE_BYTES;
    if (!o.max_errors) o.max_errors = DEFAULT_MAX_ERRORS;
    import_job *job = xcalloc(1, sizeof *job);
    job->ing = ing;
    job->opt = o;
    clock_gettime(CLOCK_MONOTONIC, &job->started);
    job->line = o.first_line > 0 ? o.first_line : 1;
    job->errors_json = cJSON_CreateArray();
    job->file_name = clean_file_name(o.file_name ? o.file_name : "stdin");
    pthread_mutex_init(&job->mu, NULL);
    pthread_cond_init(&job->cv, NULL);
    return job;
}

int import_feed(import_job *job, const char *data, size_t len, segd_error *err)
{
    int rc = job_status(job, err);
    if (rc) return rc;
    if (job->len == 0) {
        size_t used = parse(job, data, len, 0);     /* straight from the caller's bytes */
        if ((rc = job_status(job, err))) return rc;
        data += used;
        len -= used;
    }
    if (len) {
        job->buf = xgrow(job->buf, 1, &job->cap, job->len + len, 1 << 16);
        memcpy(job->buf + job->len, data, len);
        job->len += len;
        if (job->len > len) {                       /* there was a partial line before */
            size_t used = parse(job, job->buf, job->len, 0);
            memmove(job->buf, job->buf + used, job->len - used);
            job->len -= used;
        }
    }
    return job_status(job, err);
}

void import_cancel(import_job *job)
{
    job->parse_stopped = 1;
    job->len = 0;
    chunk_free(job->filling);
    job->filling = NULL;
}

int import_end(import_job *job, import_summary *out, cJSON **line_errors, segd_error *err)
{
    if (line_errors) *line_errors = NULL;
    if (!job) {
        if (out) memset(out, 0, sizeof *out);
        return 0;
    }
    if (!job->parse_stopped && !job_status(job, NULL)) {
        if (job->len || !job->bom_checked) parse(job, job->buf ? job->buf : "", job->len, 1);
        job->len = 0;
    }
    chunk *last = job->filling;
    job->filling = NULL;
    if (last && (last->n || last->parse_errors.n || last->has_stop)) dispatch(job, last);
    else chunk_free(last);
    drain(job);
    if (job->thread_started) {
        pthread_mutex_lock(&job->mu);
        job->quit = 1;
        pthread_cond_broadcast(&job->cv);
        pthread_mutex_unlock(&job->mu);
        pthread_join(job->thread, NULL);
    }
    job->sum.elapsed_s = seconds_since(&job->started);
    if (out) *out = job->sum;
    int rc = job->fail_rc;
    if (rc && err) *err = job->fail_err;
    if (line_errors && cJSON_GetArraySize(job->errors_json) > 0) {
        *line_errors = job->errors_json;
        job->errors_json = NULL;
    }
    cJSON_Delete(job->errors_json);
    free_columns(job);
    free(job->spans);
    free(job->cell);
    free(job->buf);
    free(job->file_name);
    pthread_mutex_destroy(&job->mu);
    pthread_cond_destroy(&job->cv);
    free(job);
    return rc;
}

int import_buffer(ingest *ing, const char *data, size_t len, const import_options *opt,
                  import_summary *out, cJSON **line_errors, segd_error *err)
{
    if (line_errors) *line_errors = NULL;
    import_job *job = import_begin(ing, opt, err);
    if (!job) {
        if (out) memset(out, 0, sizeof *out);
        return SEGD_EINVAL;
    }
    import_feed(job, data, len, NULL);
    return import_end(job, out, line_errors, err);
}

cJSON *import_summary_json(const import_summary *s, cJSON *line_errors)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) abort();
    cJSON_AddNumberToObject(o, "lines_read", (double)s->lines_read);
    cJSON_AddNumberToObject(o, "applied", (double)s->applied);
    cJSON_AddNumberToObject(o, "duplicates", (double)s->duplicates);
    cJSON_AddNumberToObject(o, "skipped", (double)s->skipped);
    cJSON_AddBoolToObject(o, "stopped", s->stopped);
    if (s->stopped) cJSON_AddNumberToObject(o, "stop_line", (double)s->stop_line);
    else cJSON_AddNullToObject(o, "stop_line");
    if (!line_errors) line_errors = cJSON_CreateArray();
    long listed = cJSON_GetArraySize(line_errors);
    cJSON_AddItemToObject(o, "errors", line_errors);
    long bad = s->skipped + s->stopped;
    cJSON_AddNumberToObject(o, "errors_omitted", (double)(bad > listed ? bad - listed : 0));
    cJSON_AddNumberToObject(o, "elapsed_ms", (double)(long long)(s->elapsed_s * 1000.0 + 0.5));
    return o;
}

/* ---- splitting for chunked clients ---- */

size_t import_split(import_format fmt, const char *data, size_t len, int at_eof, size_t max_bytes,
                    long max_records, long *lines)
{
    size_t best = 0;
    long best_lines = 0, records = 0, nl = 0;
    int in_quotes = 0, full = 0;
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (fmt == IMPORT_CSV && c == '"') {
            in_quotes = !in_quotes;
        } else if (c == '\n') {
            nl++;
            if (in_quotes) continue;
            if (best && i + 1 > max_bytes) {
                full = 1;
                break;
            }
            best = i + 1;
            best_lines = nl;
            if (++records >= max_records || best >= max_bytes) {
                full = 1;
                break;
            }
        }
    }
    if (!full && at_eof && best < len && (best == 0 || len <= max_bytes)) {
        best_lines = nl + 1;
        best = len;
    }
    if (lines) *lines = best_lines;
    return best;
}
