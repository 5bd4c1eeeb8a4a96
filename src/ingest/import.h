/* import.h - bulk import of NDJSON and CSV data through ingest's write path.
 *
 * Owns: cutting bytes into lines (NDJSON) or RFC 4180 records (CSV), turning CSV rows
 * into Segment identify / track messages, submitting them to ingest_messages in chunks
 * (each chunk one all-or-nothing batch), the per-line skip / stop policy, and the
 * summary. Knows nothing of files, terminals or HTTP: the CLI feeds it a file's bytes,
 * the POST /api/import handler a request body. Workload: millions of lines per import,
 * most of them valid, at hundreds of thousands of lines per second.
 *
 * Line numbers are the file's physical line numbers (1 = first line; a CSV record that
 * spans lines inside quotes has the number of its first line). Blank lines are skipped
 * and not counted as read.
 *
 * NDJSON: one Segment-spec message per line ({"type": "identify"|"track"|"page"|"screen"|
 * "group"|"alias", "userId", "traits" / "event", "properties", "messageId", ...}), typed
 * as JSON. A line without messageId is applied each time it is imported.
 *
 * CSV: the first record is a header of column names (ASCII spaces around names are
 * trimmed; a UTF-8 BOM at the start of the data is dropped). Its kind follows from it:
 *   events: the columns are event and timestamp, user_id and/or anonymous_id, and
 *     optionally properties (in any order, nothing else); each row becomes a track
 *     message; properties is a JSON object's text, typed as JSON; an empty timestamp
 *     means "now".
 *   people: any other header with user_id and/or anonymous_id; each row becomes an
 *     identify message whose traits are the other columns. Cells are text: an undeclared
 *     attribute is typed from the text as JSON would (42 number, true/false boolean,
 *     an ISO 8601 date-time datetime, else string), a declared one takes the text as
 *     its type (a declared string keeps "42"). The `tags` column holds either a JSON
 *     array of strings (["a","b"]; [] clears the tags) or a semicolon-separated list
 *     (a;b;c, spaces around items trimmed, empty items dropped); it replaces the tags.
 *   An empty cell is absent: it leaves the attribute unchanged (no way to clear one
 *   from CSV). Columns id, anonymous_ids and last_seen are refused (segd sets them).
 * Every CSV row gets messageId "csv:" + file name + ":" + line + ":" + 16 hex digits
 * of a hash of the header and the row's values: importing the same file again (within
 * the dedup window, 30 days by default) applies nothing twice, while rows edited
 * since, or a different file that happens to share the name, are applied.
 */
#ifndef SEGD_INGEST_IMPORT_H
#define SEGD_INGEST_IMPORT_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "../base/error.h"
#include "ingest.h"

typedef enum import_format {
    IMPORT_NDJSON = 0,
    IMPORT_CSV = 1,
} import_format;

typedef enum import_on_error {
    IMPORT_STOP = 0,       /* apply exactly the lines before the first bad one, then stop */
    IMPORT_SKIP = 1,       /* report each bad line, apply all the others */
} import_on_error;

/* What an import did. lines_read = applied + duplicates + skipped + stopped. */
typedef struct import_summary {
    long lines_read;       /* data lines examined (not the CSV header, not blank lines) */
    long applied;          /* lines whose message was applied */
    long duplicates;       /* lines whose messageId was already applied (an earlier import) */
    long skipped;          /* bad lines passed over (on_error skip) */
    int stopped;           /* 1 if the import stopped at a bad line (on_error stop, or a
                              CSV record that cannot be delimited) */
    long stop_line;        /* that line, else 0 */
    uint64_t bytes;        /* bytes of input consumed by committed chunks */
    double elapsed_s;      /* from import_begin to the end */
} import_summary;

/* Called once per bad line, in line order, from one thread at a time (the import's
 * submitting thread when pipelining). `e` is valid only during the call. */
typedef void (*import_line_error_cb)(void *ctx, long line, const segd_error *e);

/* Called after each committed chunk with the running totals (same thread rule). */
typedef void (*import_progress_cb)(void *ctx, const import_summary *so_far);

typedef struct import_options {
    import_format format;
    import_on_error on_error;
    const char *file_name;     /* base name used in CSV messageIds and nowhere else;
                                  NULL means "stdin". Borrowed until import_end. */
    long first_line;           /* 0: the data is a whole file (its first byte is on line 1,
                                  CSV header included). > 0: the number of the first line
                                  after the CSV header (NDJSON: of the first line): how a
                                  client sending a file in chunks keeps numbers and CSV
                                  messageIds stable. */
    const char *source;        /* messageId dedup scope; NULL means "default", the one the
                                  tracking API uses. Borrowed until import_end. */
    size_t chunk_lines;        /* lines per batch; default 5000 */
    size_t max_line_bytes;     /* longer lines / records are bad lines; default 1 MiB */
    int pipeline;              /* 1: a second thread submits chunk N while the caller's
                                  thread parses chunk N+1 (two cores busy); default 0 */
    size_t max_errors;         /* line errors kept for the JSON report; default 100 */
    uint64_t expected_bytes;   /* the data's size when known (a file), else 0: after the
                                  first chunk the import tells ingest how many messages to
                                  expect (ingest_expect_messages) */
    import_line_error_cb on_line_error;
    import_progress_cb on_progress;
    void *cb_ctx;
} import_options;

/* Fills *opt with the defaults (NDJSON, stop, whole file, no callbacks). */
void import_options_defaults(import_options *opt);

/* The format named by a file's extension (.ndjson, .jsonl -> NDJSON; .csv -> CSV,
 * case-insensitive), or -1 when it says nothing. */
int import_format_from_path(const char *path);

/* Parses "ndjson" / "jsonl" / "csv" into a format, -1 if unknown. */
int import_format_parse(const char *s);

/* Parses "stop" / "skip", -1 if unknown. */
int import_on_error_parse(const char *s);

/* Fills *opt (after import_options_defaults) from the query parameters of
 * POST /api/import; each argument is the parameter's value or NULL when absent.
 * format: ndjson|jsonl|csv, default from file's extension, else 400. file: the base
 * name (no '/', at most 200 bytes), default "upload". first_line: 0 or a positive
 * line number, default 0. on_error: stop|skip, default stop. The strings are borrowed
 * by *opt. Returns 0 or SEGD_EINVAL with err (400, code "invalid_parameter", field). */
int import_options_from_query(import_options *opt, const char *format, const char *file,
                              const char *first_line, const char *on_error, segd_error *err);

/* ---- streaming ---- */

typedef struct import_job import_job;

/* Starts an import into `ing` (which must outlive the job). Returns NULL with err
 * (400 "invalid_option") for options out of range. */
import_job *import_begin(ingest *ing, const import_options *opt, segd_error *err);

/* Feeds the next bytes of the data (any split: a partial line is kept for the next
 * call). Returns 0 to ask for more, 1 when the import has stopped at a bad line (feed
 * no more, call import_end), or a negative code with err when it cannot go on: the
 * CSV header is invalid (400 "invalid_csv_header"), or ingest failed (its 503 error).
 * Lines of chunks committed before a failure stay applied. */
int import_feed(import_job *job, const char *data, size_t len, segd_error *err);

/* 1 if the job stopped or failed (the caller can stop reading), else 0. */
int import_done(const import_job *job);

/* Gives up on what was fed but not yet committed (a partial last line, the chunk being
 * parsed): import_end then waits for the chunk in flight and commits nothing more. For
 * an interrupted import; what was committed stays. */
void import_cancel(import_job *job);

/* Treats what was fed as the end of the data (a last line without newline is a line),
 * commits what is left unless the job stopped or failed, fills *out (may be NULL) and
 * frees the job. *line_errors (may be NULL) receives the first max_errors bad lines as
 * [{"line", "code", "field", "message"}], or NULL when there were none; the caller frees
 * it with cJSON_Delete. Returns 0 when the import ran to its end or stopped at a bad
 * line (see out->stopped), or the negative code and err of the failure that ended it,
 * the same as import_feed returned. NULL job is a no-op returning 0. */
int import_end(import_job *job, import_summary *out, cJSON **line_errors, segd_error *err);

/* ---- one call, for a request body held in memory ---- */

/* import_begin + import_feed(data, len) + import_end. Same results. */
int import_buffer(ingest *ing, const char *data, size_t len, const import_options *opt,
                  import_summary *out, cJSON **line_errors, segd_error *err);

/* The body POST /api/import answers with (status 200 whenever import_buffer returned
 * 0, also when it stopped at a bad line):
 * {"lines_read","applied","duplicates","skipped","stopped","stop_line" (null unless
 *  stopped), "errors": [{"line","code","field","message"}], "errors_omitted" (bad lines
 *  not listed), "elapsed_ms"}.
 * Takes ownership of line_errors (may be NULL: "errors" is then []). The caller frees
 * the result with cJSON_Delete. Never NULL. */
cJSON *import_summary_json(const import_summary *s, cJSON *line_errors);

/* ---- cutting data for a client that sends it in chunks ---- */

/* The length of the longest prefix of data[0..len) that ends at a record boundary (a
 * newline; for CSV one outside quotes) and holds at most max_records records and at
 * most max_bytes bytes, but at least one whole record when there is one even if it is
 * longer. At end of data (at_eof) an unterminated last record counts as whole. Returns
 * 0 when data holds no whole record yet. *lines (may be NULL) receives the number of
 * physical lines in the prefix. */
size_t import_split(import_format fmt, const char *data, size_t len, int at_eof, size_t max_bytes,
                    long max_records, long *lines);

#endif
