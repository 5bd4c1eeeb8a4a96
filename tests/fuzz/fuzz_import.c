/* fuzz_import.c - libFuzzer target for bulk import (src/ingest/import.c) end to end:
 * the NDJSON line reader, the RFC 4180 CSV record parser, CSV rows turned into
 * messages, chunking, skip / stop, pipelining, and the summary.
 *
 * The CSV parser is static and feeds a real ingest, so this target opens one store and
 * ingest in a temporary data directory ($TMPDIR, which tests/fuzz/run.sh points at
 * /dev/shm: SQLite's fsyncs cost nothing there) and imports every input into it; the
 * engine's state carries over from input to input, as on a long-running server.
 * Input: three option bytes, then the data. Byte 0: bit 0 CSV, bit 1 on_error skip,
 * bit 2 pipeline, bit 3 first_line > 0, bit 4 feed in pieces; byte 1: chunk_lines
 * (1 + low 3 bits), max_errors (1 + next 3 bits); byte 2: max_line_bytes (16 + 4 x
 * the byte, 0 = the default) and, with bit 4, the piece size (1 + the byte). Checks the
 * summary's arithmetic, line numbers and the error list. Inputs: up to 2 KiB.
 */
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/import.h"
#include "ingest/ingest.h"
#include "store/store.h"
#include "fuzz.h"

static char root[512];
static store *st;
static ingest *ing;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void close_all(void)
{
    ingest_close(ing);
    store_close(st);
    ing = NULL;
    st = NULL;
    if (root[0]) nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/segd-fuzz-import-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(root)) {
        perror("fuzz_import: mkdtemp");
        exit(1);
    }
    char dir[600];
    snprintf(dir, sizeof dir, "%s/data", root);
    segd_error err;
    segd_error_clear(&err);
    st = store_open(dir, &err);
    if (st) ing = ingest_open(st, NULL, &err);
    if (!st || !ing || ingest_wait_ready(ing, &err) != 0) {
        fprintf(stderr, "fuzz_import: cannot open a store in %s: %s\n", dir, err.message);
        exit(1);
    }
    atexit(close_all);
    return 0;
}

typedef struct seen_errors {
    long n;
    long last_line;
    long max_line;
} seen_errors;

static void on_line_error(void *ctx, long line, const segd_error *e)
{
    seen_errors *seen = ctx;
    FUZZ_CHECK(line >= 1 && line <= seen->max_line, "bad line %ld reported (at most %ld)", line, seen->max_line);
    FUZZ_CHECK(line >= seen->last_line, "line %ld reported after line %ld", line, seen->last_line);
    FUZZ_CHECK(e->code[0] && e->message[0], "line %ld: error without code or message", line);
    seen->last_line = line;
    seen->n++;
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
    if (size < 3) return 0;
    import_options opt;
    import_options_defaults(&opt);
    opt.format = bytes[0] & 1 ? IMPORT_CSV : IMPORT_NDJSON;
    opt.on_error = bytes[0] & 2 ? IMPORT_SKIP : IMPORT_STOP;
    opt.pipeline = (bytes[0] >> 2) & 1;
    opt.first_line = bytes[0] & 8 ? 1 + bytes[1] : 0;
    int pieces = (bytes[0] >> 4) & 1;
    opt.chunk_lines = 1 + (bytes[1] & 7);
    opt.max_errors = 1 + ((bytes[1] >> 3) & 7);
    opt.max_line_bytes = bytes[2] ? 16 + 4 * (size_t)bytes[2] : 0;
    opt.file_name = "fuzz.csv";
    const char *data = (const char *)bytes + 3;
    size_t len = size - 3;

    long newlines = 0;
    for (size_t i = 0; i < len; i++) newlines += data[i] == '\n';
    seen_errors seen = {0, 0, (opt.first_line > 0 ? opt.first_line : 1) + newlines};
    opt.on_line_error = on_line_error;
    opt.cb_ctx = &seen;

    segd_error err;
    segd_error_clear(&err);
    import_job *job = import_begin(ing, &opt, &err);
    FUZZ_CHECK(job != NULL, "import_begin: %s", err.message);
    size_t step = pieces ? 1 + (size_t)bytes[2] : len;
    for (size_t at = 0; at < len || at == 0; at += step) {
        size_t n = len - at < step ? len - at : step;
        segd_error feed_err;
        segd_error_clear(&feed_err);
        int rc = import_feed(job, data + at, n, &feed_err);
        FUZZ_CHECK(rc <= 1, "import_feed returned %d", rc);
        if (rc < 0) FUZZ_CHECK(feed_err.status && feed_err.code[0], "import_feed failed without an error");
        if (rc != 0) {
            /* with pipeline, import_feed answers 1 as soon as the parser queued the stop,
             * while import_done says 1 only once the submitting thread has processed that
             * chunk: reported, import_done has no caller yet */
            if (rc < 0 || !opt.pipeline)
                FUZZ_CHECK(import_done(job), "import_feed returned %d but the job goes on", rc);
            break;
        }
        if (len == 0) break;
    }
    import_summary s;
    cJSON *errors = NULL;
    int rc = import_end(job, &s, &errors, &err);
    FUZZ_CHECK(rc <= 0, "import_end returned %d", rc);
    if (rc < 0) FUZZ_CHECK(err.status && err.code[0], "import_end failed without an error");

    FUZZ_CHECK(s.lines_read == s.applied + s.duplicates + s.skipped + s.stopped,
               "lines_read %ld != applied %ld + duplicates %ld + skipped %ld + stopped %d", s.lines_read, s.applied,
               s.duplicates, s.skipped, s.stopped);
    FUZZ_CHECK(s.applied >= 0 && s.duplicates >= 0 && s.skipped >= 0, "negative count");
    FUZZ_CHECK(s.lines_read <= newlines + 1, "%ld lines read from %ld newlines", s.lines_read, newlines);
    FUZZ_CHECK(s.bytes <= len, "%llu bytes consumed of %zu", (unsigned long long)s.bytes, len);
    FUZZ_CHECK(s.stopped == 0 || s.stopped == 1, "stopped = %d", s.stopped);
    if (s.stopped) FUZZ_CHECK(s.stop_line >= 1 && s.stop_line <= seen.max_line, "stop_line %ld", s.stop_line);
    else FUZZ_CHECK(s.stop_line == 0, "stop_line %ld without a stop", s.stop_line);
    if (opt.on_error == IMPORT_STOP) FUZZ_CHECK(s.skipped == 0, "%ld skipped in stop mode", s.skipped);
    FUZZ_CHECK(seen.n == s.skipped + s.stopped, "%ld line errors reported, %ld skipped + %d stopped", seen.n,
               s.skipped, s.stopped);
    if (s.stopped) FUZZ_CHECK(seen.last_line == s.stop_line, "the last error is on line %ld, the stop on %ld",
                              seen.last_line, s.stop_line);

    long listed = errors ? cJSON_GetArraySize(errors) : 0;
    long bad = s.skipped + s.stopped;
    FUZZ_CHECK(listed == (bad < (long)opt.max_errors ? bad : (long)opt.max_errors),
               "%ld errors listed for %ld bad lines (max_errors %zu)", listed, bad, opt.max_errors);
    long prev = 0;
    for (cJSON *x = errors ? errors->child : NULL; x; x = x->next) {
        cJSON *line = cJSON_GetObjectItemCaseSensitive(x, "line");
        cJSON *code = cJSON_GetObjectItemCaseSensitive(x, "code");
        FUZZ_CHECK(cJSON_IsNumber(line) && cJSON_IsString(code) && code->valuestring[0], "malformed error item");
        FUZZ_CHECK((long)line->valuedouble >= prev, "errors out of line order");
        prev = (long)line->valuedouble;
    }
    cJSON *json = import_summary_json(&s, errors);     /* takes errors */
    FUZZ_CHECK(json != NULL, "import_summary_json returned NULL");
    cJSON_Delete(json);
    return 0;
}
