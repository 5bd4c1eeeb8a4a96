/* test_import.c - unit tests for src/ingest/import.c: the CSV reader's edge cases
 * (quotes, CRLF, line breaks in quotes, BOM, ragged rows, bad quotes), NDJSON bad
 * lines, skip vs stop (checked in the engine), idempotent CSV re-import, people CSV
 * typing, events CSV, chunked feeding, pipelining, and the HTTP helpers. Each test
 * gets a fresh mkdtemp data directory with a store and an ingest, removed afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/timefmt.h"
#include "ingest/import.h"
#include "ingest/ingest.h"
#include "store/store.h"

/* ---- fixture: a temporary data directory with an open ingest ---- */

typedef struct fixture {
    char root[64];
    char dir[128];
    store *st;
    ingest *ing;
} fixture;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    strcpy(f->root, "/tmp/segd-test-import-XXXXXX");
    if (!mkdtemp(f->root)) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/data", f->root);
    segd_error err;
    segd_error_clear(&err);
    f->st = store_open(f->dir, &err);
    if (!f->st) {
        fprintf(stderr, "store_open: %s\n", err.message);
        return -1;
    }
    f->ing = ingest_open(f->st, NULL, &err);
    if (!f->ing || ingest_wait_ready(f->ing, &err) != 0) {
        fprintf(stderr, "ingest_open: %s\n", err.message);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ingest_close(f->ing);
    store_close(f->st);
    int rc = nftw(f->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

/* ---- helpers ---- */

/* Imports `data` whole; returns import_buffer's code. errs may be NULL. */
static int run_import(fixture *f, const char *data, import_format fmt, import_on_error mode, size_t chunk_lines,
                      import_summary *s, cJSON **errs)
{
    import_options opt;
    import_options_defaults(&opt);
    opt.format = fmt;
    opt.on_error = mode;
    opt.file_name = fmt == IMPORT_CSV ? "test.csv" : "test.ndjson";
    if (chunk_lines) opt.chunk_lines = chunk_lines;
    segd_error err;
    segd_error_clear(&err);
    int rc = import_buffer(f->ing, data, strlen(data), &opt, s, errs, &err);
    if (rc != 0) fprintf(stderr, "import_buffer: %s: %s\n", err.code, err.message);
    return rc;
}

/* The line and code of the i-th reported error. */
static long err_line(const cJSON *errs, int i)
{
    const cJSON *x = cJSON_GetArrayItem(errs, i);
    assert_non_null(x);
    return (long)cJSON_GetObjectItemCaseSensitive(x, "line")->valuedouble;
}

static const char *err_code(const cJSON *errs, int i)
{
    const cJSON *x = cJSON_GetArrayItem(errs, i);
    assert_non_null(x);
    return cJSON_GetObjectItemCaseSensitive(x, "code")->valuestring;
}

static int person_exists(fixture *f, const char *user_id)
{
    const engine *e = ingest_read_begin(f->ing);
    int found = ingest_find_person(e, INGEST_BY_USER_ID, user_id) != PERSON_NONE;
    ingest_read_end(f->ing);
    return found;
}

/* Reads a person's attribute into *cell; returns the attribute's type (SEGD_T_NONE if
 * the attribute or the person is missing). A string value is copied to str (size 256). */
static segd_type person_attr(fixture *f, const char *user_id, const char *name, segd_cell *cell, char *str)
{
    const engine *e = ingest_read_begin(f->ing);
    segd_type t = SEGD_T_NONE;
    memset(cell, 0, sizeof *cell);
    if (str) str[0] = 0;
    person_id id = ingest_find_person(e, INGEST_BY_USER_ID, user_id);
    int a = engine_attr_find(e, name);
    if (id != PERSON_NONE && a >= 0 && engine_attr_get(e, id, a, cell)) {
        t = cell->type;
        if (str && t == SEGD_T_STRING) snprintf(str, 256, "%s", engine_string(e, cell->code, NULL));
        if (str && t == SEGD_T_LIST) {
            size_t used = 0;
            for (uint32_t i = 0; i < cell->n_codes; i++)
                used += (size_t)snprintf(str + used, 256 - used, "%s%s", i ? "|" : "", engine_string(e, cell->codes[i], NULL));
        }
    }
    ingest_read_end(f->ing);
    return t;
}

static char *attr_text(fixture *f, const char *user_id, const char *name, char *buf)
{
    segd_cell c;
    person_attr(f, user_id, name, &c, buf);
    return buf;
}

static uint64_t event_count(fixture *f, const char *event)
{
    const engine *e = ingest_read_begin(f->ing);
    int t = engine_event_type_find(e, event);
    uint64_t n = t >= 0 ? engine_event_type_events(e, t) : 0;
    ingest_read_end(f->ing);
    return n;
}

/* ---- import_split ---- */

static void test_split_respects_quotes_and_limits(void **state)
{
    const char *csv = "a,b\r\n\"x\ny\",2\n3,\"\"\"q\"\"\"\n4,5";
    long lines = 0;
    /* one record: the header, with its CRLF */
    assert_int_equal(import_split(IMPORT_CSV, csv, strlen(csv), 0, SIZE_MAX, 1, &lines), 5);
    assert_int_equal(lines, 1);
    /* the quoted newline is not a boundary: the second record ends after "2\n" */
    size_t two = import_split(IMPORT_CSV, csv, strlen(csv), 0, SIZE_MAX, 2, &lines);
    assert_int_equal(two, strlen("a,b\r\n\"x\ny\",2\n"));
    assert_int_equal(lines, 3);
    /* without at_eof the unterminated last record is left */
    size_t all = import_split(IMPORT_CSV, csv, strlen(csv), 0, SIZE_MAX, LONG_MAX, &lines);
    assert_int_equal(all, strlen(csv) - 3);
    assert_int_equal(import_split(IMPORT_CSV, csv, strlen(csv), 1, SIZE_MAX, LONG_MAX, &lines), strlen(csv));
    assert_int_equal(lines, 5);
    /* max_bytes cuts at the last boundary before it, but always gives one record */
    assert_int_equal(import_split(IMPORT_CSV, csv, strlen(csv), 1, 12, LONG_MAX, NULL), 5);
    assert_int_equal(import_split(IMPORT_CSV, csv, strlen(csv), 1, 2, LONG_MAX, NULL), 5);
    /* NDJSON: quotes mean nothing */
    const char *nd = "{\"a\":\"\\\"\"}\n{}\n";
    assert_int_equal(import_split(IMPORT_NDJSON, nd, strlen(nd), 0, SIZE_MAX, LONG_MAX, &lines), strlen(nd));
    assert_int_equal(lines, 2);
    assert_int_equal(import_split(IMPORT_NDJSON, "{}", 2, 0, SIZE_MAX, LONG_MAX, NULL), 0);
}

/* ---- CSV reader ---- */

static const char *QUOTED_CSV =
    "\xEF\xBB\xBFuser_id,name,note\r\n"          /* line 1, with a BOM */
    "u1,\"Smith, Ann\",\"say \"\"hi\"\"\"\r\n"   /* 2 */
    "u2,Bob,\"line1\r\nline2\"\r\n"              /* 3-4 */
    "\r\n"                                        /* 5: blank */
    "u3,Carl,plain\r\n"                           /* 6 */
    "u4,only-two\r\n"                             /* 7: ragged */
    "u5,Eve,\"\"\n"                               /* 8: LF only, empty quoted cell */
    "u6,Finn,last";                               /* 9: no line break at the end */

static void check_quoted_result(fixture *f, const import_summary *s, const cJSON *errs)
{
    char buf[256];
    assert_int_equal(s->lines_read, 6);
    assert_int_equal(s->applied, 5);
    assert_int_equal(s->skipped, 1);
    assert_int_equal(cJSON_GetArraySize(errs), 1);
    assert_int_equal(err_line(errs, 0), 7);
    assert_string_equal(err_code(errs, 0), "csv_ragged_row");
    assert_string_equal(attr_text(f, "u1", "name", buf), "Smith, Ann");
    assert_string_equal(attr_text(f, "u1", "note", buf), "say \"hi\"");
    assert_string_equal(attr_text(f, "u2", "note", buf), "line1\r\nline2");
    assert_string_equal(attr_text(f, "u3", "note", buf), "plain");
    assert_false(person_exists(f, "u4"));
    segd_cell c;
    assert_int_equal(person_attr(f, "u5", "note", &c, NULL), SEGD_T_NONE);    /* empty = absent */
    assert_string_equal(attr_text(f, "u6", "note", buf), "last");
}

static void test_csv_quotes_crlf_newlines_bom_ragged(void **state)
{
    fixture *f = *state;
    import_summary s;
    cJSON *errs = NULL;
    assert_int_equal(run_import(f, QUOTED_CSV, IMPORT_CSV, IMPORT_SKIP, 0, &s, &errs), 0);
    check_quoted_result(f, &s, errs);
    cJSON_Delete(errs);
}

/* The same data fed one byte at a time: every "need more" path of the reader. */
static void test_csv_fed_byte_by_byte(void **state)
{
    fixture *f = *state;
    import_options opt;
    import_options_defaults(&opt);
    opt.format = IMPORT_CSV;
    opt.on_error = IMPORT_SKIP;
    opt.file_name = "test.csv";
    segd_error err;
    segd_error_clear(&err);
    import_job *job = import_begin(f->ing, &opt, &err);
    assert_non_null(job);
    for (size_t i = 0; QUOTED_CSV[i]; i++) assert_int_equal(import_feed(job, QUOTED_CSV + i, 1, &err), 0);
    import_summary s;
    cJSON *errs = NULL;
    assert_int_equal(import_end(job, &s, &errs, &err), 0);
    check_quoted_result(f, &s, errs);
    cJSON_Delete(errs);
}

static void test_csv_bad_quotes(void **state)
{
    fixture *f = *state;
    const char *csv = "user_id,a\n"
                      "u1,\"abc\"x\n"          /* 2: text after a closing quote */
                      "u2,ab\"c\n"             /* 3: quote inside an unquoted field */
                      "u3,ok\n"                /* 4 */
                      "u4,\"never closed\n";   /* 5: unterminated at the end */
    import_summary s;
    cJSON *errs = NULL;
    assert_int_equal(run_import(f, csv, IMPORT_CSV, IMPORT_SKIP, 0, &s, &errs), 0);
    assert_int_equal(s.applied, 1);
    assert_int_equal(s.skipped, 3);
    assert_int_equal(cJSON_GetArraySize(errs), 3);
    assert_int_equal(err_line(errs, 0), 2);
    assert_int_equal(err_line(errs, 1), 3);
    assert_int_equal(err_line(errs, 2), 5);
    assert_string_equal(err_code(errs, 0), "csv_bad_quote");
    assert_true(person_exists(f, "u3"));
    assert_false(person_exists(f, "u1"));
    cJSON_Delete(errs);
}

static void test_csv_header_errors(void **state)
{
    fixture *f = *state;
    static const char *bad[] = {
        "name,email\nAnn,a@x.io\n",           /* no user_id / anonymous_id */
        "user_id,a,a\nu1,1,2\n",               /* a column twice */
        "user_id,,b\nu1,1,2\n",                /* an unnamed column */
        "user_id,last_seen\nu1,2024-01-01\n",  /* set by segd */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        import_options opt;
        import_options_defaults(&opt);
        opt.format = IMPORT_CSV;
        import_summary s;
        segd_error err;
        segd_error_clear(&err);
        assert_int_equal(import_buffer(f->ing, bad[i], strlen(bad[i]), &opt, &s, NULL, &err), SEGD_EINVAL);
        assert_int_equal(err.status, 400);
        assert_string_equal(err.code, "invalid_csv_header");
        assert_int_equal(s.applied, 0);
    }
    assert_false(person_exists(f, "u1"));
}

/* ---- NDJSON ---- */

static const char *NDJSON_BAD_JSON =
    "{\"type\":\"identify\",\"userId\":\"n1\"}\n"
    "{\"type\":\"identify\",\"userId\":\"n2\"}\n"
    "\n"
    "{\"type\":\"identify\",\"userId\":\"n4\"\n"          /* line 4: not JSON */
    "{\"type\":\"identify\",\"userId\":\"n5\"} trailing\n"  /* line 5: not one value */
    "{\"type\":\"identify\",\"userId\":\"n6\"}\n";

static void test_ndjson_bad_json_line_stop(void **state)
{
    fixture *f = *state;
    import_summary s;
    cJSON *errs = NULL;
    assert_int_equal(run_import(f, NDJSON_BAD_JSON, IMPORT_NDJSON, IMPORT_STOP, 0, &s, &errs), 0);
    assert_int_equal(s.applied, 2);
    assert_true(s.stopped);
    assert_int_equal(s.stop_line, 4);
    assert_int_equal(s.lines_read, 3);
    assert_int_equal(cJSON_GetArraySize(errs), 1);
    assert_int_equal(err_line(errs, 0), 4);
    assert_string_equal(err_code(errs, 0), "invalid_json");
    assert_true(person_exists(f, "n2"));
    assert_false(person_exists(f, "n6"));
    cJSON_Delete(errs);
}

static void test_ndjson_bad_json_line_skip(void **state)
{
    fixture *f = *state;
    import_summary s;
    cJSON *errs = NULL;
    assert_int_equal(run_import(f, NDJSON_BAD_JSON, IMPORT_NDJSON, IMPORT_SKIP, 0, &s, &errs), 0);
    assert_int_equal(s.applied, 3);
    assert_int_equal(s.skipped, 2);
    assert_false(s.stopped);
    assert_int_equal(err_line(errs, 0), 4);
    assert_int_equal(err_line(errs, 1), 5);
    assert_true(person_exists(f, "n6"));
    assert_false(person_exists(f, "n5"));
    cJSON_Delete(errs);
}

/* Lines 1-2 fix "age" as a number; line 3 conflicts; line 5 lacks an id. Chunks of 2
 * lines put the bad lines in the second and third batches. */
static const char *NDJSON_BAD_VALUES =
    "{\"type\":\"identify\",\"userId\":\"v1\",\"traits\":{\"age\":30}}\n"
    "{\"type\":\"identify\",\"userId\":\"v2\",\"traits\":{\"age\":31}}\n"
    "{\"type\":\"identify\",\"userId\":\"v3\",\"traits\":{\"age\":\"old\"}}\n"
    "{\"type\":\"identify\",\"userId\":\"v4\",\"traits\":{\"age\":33}}\n"
    "{\"type\":\"track\",\"event\":\"Clicked\"}\n"
    "{\"type\":\"track\",\"userId\":\"v6\",\"event\":\"Clicked\"}\n";

static void test_stop_applies_exactly_the_lines_before(void **state)
{
    fixture *f = *state;
    for (size_t chunk = 1; chunk <= 8; chunk *= 2) {
        import_summary s;
        cJSON *errs = NULL;
        assert_int_equal(run_import(f, NDJSON_BAD_VALUES, IMPORT_NDJSON, IMPORT_STOP, chunk, &s, &errs), 0);
        assert_int_equal(s.stop_line, 3);
        assert_int_equal(cJSON_GetArraySize(errs), 1);
        assert_string_equal(err_code(errs, 0), "type_conflict");
        assert_true(person_exists(f, "v1"));
        assert_true(person_exists(f, "v2"));
        assert_false(person_exists(f, "v3"));
        assert_false(person_exists(f, "v4"));
        assert_int_equal(event_count(f, "Clicked"), 0);
        cJSON_Delete(errs);
    }
}

static void test_skip_applies_every_good_line(void **state)
{
    fixture *f = *state;
    for (size_t chunk = 1; chunk <= 8; chunk *= 2) {
        import_summary s;
        cJSON *errs = NULL;
        assert_int_equal(run_import(f, NDJSON_BAD_VALUES, IMPORT_NDJSON, IMPORT_SKIP, chunk, &s, &errs), 0);
        assert_int_equal(s.lines_read, 6);
        assert_int_equal(s.skipped, 2);
        assert_int_equal(s.applied + s.duplicates, 4);
        assert_int_equal(cJSON_GetArraySize(errs), 2);
        assert_int_equal(err_line(errs, 0), 3);
        assert_int_equal(err_line(errs, 1), 5);
        assert_string_equal(err_code(errs, 1), "missing_field");
        assert_true(person_exists(f, "v4"));
        assert_false(person_exists(f, "v3"));
        cJSON_Delete(errs);
    }
    assert_int_equal(event_count(f, "Clicked"), 4);      /* no messageId: applied each time */
}

/* A bad message must not leave its new attributes behind for the rest of its batch:
 * line 1 declares "plan" as a number and fails on "age"; line 2's string plan is fine. */
static void test_skip_judges_later_lines_without_the_bad_one(void **state)
{
    fixture *f = *state;
    const char *nd = "{\"type\":\"identify\",\"userId\":\"w0\",\"traits\":{\"age\":1}}\n"
                     "{\"type\":\"identify\",\"userId\":\"w1\",\"traits\":{\"plan\":5,\"age\":\"x\"}}\n"
                     "{\"type\":\"identify\",\"userId\":\"w2\",\"traits\":{\"plan\":\"pro\"}}\n";
    import_summary s;
    cJSON *errs = NULL;
    assert_int_equal(run_import(f, "{\"type\":\"identify\",\"userId\":\"w0\",\"traits\":{\"age\":1}}\n", IMPORT_NDJSON,
                                IMPORT_STOP, 0, &s, NULL), 0);
    assert_int_equal(run_import(f, nd + strlen("{\"type\":\"identify\",\"userId\":\"w0\",\"traits\":{\"age\":1}}\n"),
                                IMPORT_NDJSON, IMPORT_SKIP, 0, &s, &errs), 0);
    assert_int_equal(s.skipped, 1);
    assert_int_equal(err_line(errs, 0), 1);
    char buf[256];
    assert_string_equal(attr_text(f, "w2", "plan", buf), "pro");
    cJSON_Delete(errs);
}

static void test_line_too_long(void **state)
{
    fixture *f = *state;
    char *nd = xmalloc(4096);
    size_t n = (size_t)sprintf(nd, "{\"type\":\"identify\",\"userId\":\"l1\"}\n{\"type\":\"identify\",\"userId\":\"l2\",\"traits\":{\"x\":\"");
    memset(nd + n, 'a', 300);
    n += 300;
    n += (size_t)sprintf(nd + n, "\"}}\n{\"type\":\"identify\",\"userId\":\"l3\"}\n");
    for (int piecewise = 0; piecewise < 2; piecewise++) {
        import_options opt;
        import_options_defaults(&opt);
        opt.on_error = IMPORT_SKIP;
        opt.max_line_bytes = 100;
        segd_error err;
        segd_error_clear(&err);
        import_job *job = import_begin(f->ing, &opt, &err);
        if (piecewise)
            for (size_t i = 0; i < n; i += 7) import_feed(job, nd + i, n - i < 7 ? n - i : 7, &err);
        else
            import_feed(job, nd, n, &err);
        import_summary s;
        cJSON *errs = NULL;
        assert_int_equal(import_end(job, &s, &errs, &err), 0);
        assert_int_equal(s.skipped, 1);
        assert_int_equal(s.applied + s.duplicates, 2);
        assert_int_equal(err_line(errs, 0), 2);
        assert_string_equal(err_code(errs, 0), "line_too_long");
        assert_true(person_exists(f, "l3"));
        cJSON_Delete(errs);
    }
    free(nd);
}

/* ---- CSV semantics ---- */

static const char *EVENTS_CSV =
    "user_id,event,timestamp,properties\n"
    "e1,Signed Up,2024-03-01T10:00:00Z,\"{\"\"plan\"\":\"\"pro\"\",\"\"seats\"\":3}\"\n"
    "e1,Paid,2024-03-02T10:00:00Z,\"{\"\"amount\"\":9.5}\"\n"
    "e2,Signed Up,2024-03-03T10:00:00Z,\n";

static void test_events_csv(void **state)
{
    fixture *f = *state;
    import_summary s;
    cJSON *errs = NULL;
    assert_int_equal(run_import(f, EVENTS_CSV, IMPORT_CSV, IMPORT_STOP, 0, &s, &errs), 0);
    assert_null(errs);
    assert_int_equal(s.applied, 3);
    assert_int_equal(event_count(f, "Signed Up"), 2);
    assert_int_equal(event_count(f, "Paid"), 1);
    const engine *e = ingest_read_begin(f->ing);
    int t = engine_event_type_find(e, "Signed Up");
    int plan = engine_prop_find(e, t, "plan"), seats = engine_prop_find(e, t, "seats");
    assert_true(plan >= 0 && seats >= 0);
    assert_int_equal(engine_prop_type(e, t, plan), SEGD_T_STRING);
    assert_int_equal(engine_prop_type(e, t, seats), SEGD_T_NUMBER);
    person_id p = ingest_find_person(e, INGEST_BY_USER_ID, "e1");
    engine_event_ref refs[4];
    assert_int_equal(engine_person_events(e, p, refs, 4), 2);
    int64_t want;
    timefmt_parse("2024-03-02T10:00:00Z", 20, 0, &want);
    assert_int_equal(refs[0].time_ms, want);                 /* newest first */
    ingest_read_end(f->ing);

    const char *bad = "user_id,event,timestamp,properties\n"
                      "e3,Paid,2024-03-04T10:00:00Z,[1]\n"
                      "e3,Paid,not a time,\n";
    assert_int_equal(run_import(f, bad, IMPORT_CSV, IMPORT_SKIP, 0, &s, &errs), 0);
    assert_int_equal(s.skipped, 2);
    assert_string_equal(err_code(errs, 0), "invalid_properties");
    assert_string_equal(err_code(errs, 1), "invalid_timestamp");
    cJSON_Delete(errs);
}

static void test_same_csv_twice_applies_once(void **state)
{
    fixture *f = *state;
    import_summary s;
    assert_int_equal(run_import(f, EVENTS_CSV, IMPORT_CSV, IMPORT_STOP, 0, &s, NULL), 0);
    assert_int_equal(s.applied, 3);
    assert_int_equal(run_import(f, EVENTS_CSV, IMPORT_CSV, IMPORT_STOP, 2, &s, NULL), 0);
    assert_int_equal(s.applied, 0);
    assert_int_equal(s.duplicates, 3);
    assert_int_equal(event_count(f, "Signed Up"), 2);

    /* a client sending rows 3-4 again as a chunk (header repeated, first_line=3) */
    const char *chunk = "user_id,event,timestamp,properties\n"
                        "e1,Paid,2024-03-02T10:00:00Z,\"{\"\"amount\"\":9.5}\"\n"
                        "e2,Signed Up,2024-03-03T10:00:00Z,\n";
    import_options opt;
    import_options_defaults(&opt);
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(import_options_from_query(&opt, "csv", "test.csv", "3", "stop", &err), 0);
    assert_int_equal(import_buffer(f->ing, chunk, strlen(chunk), &opt, &s, NULL, &err), 0);
    assert_int_equal(s.duplicates, 2);
    assert_int_equal(s.applied, 0);

    /* an edited row is a new row */
    const char *edited = "user_id,event,timestamp,properties\n"
                         "e1,Signed Up,2024-03-01T10:00:00Z,\"{\"\"plan\"\":\"\"pro\"\",\"\"seats\"\":3}\"\n"
                         "e1,Paid,2024-03-02T10:00:00Z,\"{\"\"amount\"\":19.5}\"\n";
    assert_int_equal(run_import(f, edited, IMPORT_CSV, IMPORT_STOP, 0, &s, NULL), 0);
    assert_int_equal(s.duplicates, 1);
    assert_int_equal(s.applied, 1);
    assert_int_equal(event_count(f, "Paid"), 2);
}

static void test_people_csv_typing(void **state)
{
    fixture *f = *state;
    segd_error err;
    segd_error_clear(&err);
    assert_int_equal(ingest_declare_attribute(f->ing, "zip", "string", &err), 0);
    const char *csv = "user_id,age,vip,signup,zip,tags,city\n"
                      "p1,42,true,2024-01-02T03:04:05Z,42,a; b ;;c,Paris\n"
                      "p2,7.5,false,,02134,\"[\"\"x\"\",\"\"y\"\"]\",\n";
    import_summary s;
    cJSON *errs = NULL;
    assert_int_equal(run_import(f, csv, IMPORT_CSV, IMPORT_STOP, 0, &s, &errs), 0);
    assert_null(errs);
    assert_int_equal(s.applied, 2);
    segd_cell c;
    char buf[256];
    assert_int_equal(person_attr(f, "p1", "age", &c, NULL), SEGD_T_NUMBER);
    assert_true(c.number == 42.0);
    assert_int_equal(person_attr(f, "p2", "age", &c, NULL), SEGD_T_NUMBER);
    assert_true(c.number == 7.5);
    assert_int_equal(person_attr(f, "p1", "vip", &c, NULL), SEGD_T_BOOL);
    assert_int_equal(c.boolean, 1);
    assert_int_equal(person_attr(f, "p2", "vip", &c, NULL), SEGD_T_BOOL);
    assert_int_equal(c.boolean, 0);
    assert_int_equal(person_attr(f, "p1", "signup", &c, NULL), SEGD_T_DATETIME);
    int64_t want;
    timefmt_parse("2024-01-02T03:04:05Z", 20, 0, &want);
    assert_int_equal(c.time_ms, want);
    assert_int_equal(person_attr(f, "p2", "signup", &c, NULL), SEGD_T_NONE);
    assert_int_equal(person_attr(f, "p1", "zip", &c, buf), SEGD_T_STRING);
    assert_string_equal(buf, "42");
    assert_string_equal(attr_text(f, "p2", "zip", buf), "02134");
    assert_int_equal(person_attr(f, "p1", "tags", &c, buf), SEGD_T_LIST);
    assert_string_equal(buf, "a|b|c");
    assert_string_equal(attr_text(f, "p2", "tags", buf), "x|y");
    assert_string_equal(attr_text(f, "p1", "city", buf), "Paris");

    /* a cell that does not fit the attribute's type is a bad line */
    const char *bad = "user_id,age\np3,old\np4,50\n";
    assert_int_equal(run_import(f, bad, IMPORT_CSV, IMPORT_SKIP, 0, &s, &errs), 0);
    assert_int_equal(s.skipped, 1);
    assert_int_equal(err_line(errs, 0), 2);
    assert_string_equal(err_code(errs, 0), "type_conflict");
    assert_true(person_exists(f, "p4"));
    cJSON_Delete(errs);
}

/* Text is a number only when JSON would write it so: a zip code keeps its zero. */
static void test_csv_numbers_are_json_numbers(void **state)
{
    fixture *f = *state;
    const char *csv = "user_id,zip,code,huge,spaced,plus,dot,real,neg\n"
                      "num-1,01067,0x1A,1e400, 7,+5,.5,-2.5e3,-0\n";
    import_summary s;
    assert_int_equal(run_import(f, csv, IMPORT_CSV, IMPORT_STOP, 0, &s, NULL), 0);
    assert_int_equal(s.applied, 1);
    static const char *strings[][2] = {{"zip", "01067"}, {"code", "0x1A"}, {"huge", "1e400"}, {"spaced", " 7"},
                                       {"plus", "+5"}, {"dot", ".5"}};
    char buf[256];
    segd_cell c;
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++) {
        assert_int_equal(person_attr(f, "num-1", strings[i][0], &c, buf), SEGD_T_STRING);
        assert_string_equal(buf, strings[i][1]);
    }
    assert_int_equal(person_attr(f, "num-1", "real", &c, NULL), SEGD_T_NUMBER);
    assert_true(c.number == -2500.0);
    assert_int_equal(person_attr(f, "num-1", "neg", &c, NULL), SEGD_T_NUMBER);
}

/* ---- pipelining and chunk boundaries ---- */

static void test_pipeline_stop_in_a_late_chunk(void **state)
{
    fixture *f = *state;
    size_t cap = 20000 * 80, n = 0;
    char *nd = xmalloc(cap);
    for (int i = 1; i <= 20000; i++) {
        if (i == 15000) n += (size_t)snprintf(nd + n, cap - n, "{\"type\":\"track\",\"userId\":\"u\",\"event\":5}\n");
        else n += (size_t)snprintf(nd + n, cap - n, "{\"type\":\"track\",\"userId\":\"u%d\",\"event\":\"Viewed\"}\n", i % 100);
    }
    for (int pipeline = 0; pipeline < 2; pipeline++) {
        import_options opt;
        import_options_defaults(&opt);
        opt.chunk_lines = 1000;
        opt.pipeline = pipeline;
        import_summary s;
        cJSON *errs = NULL;
        segd_error err;
        segd_error_clear(&err);
        uint64_t before = event_count(f, "Viewed");
        assert_int_equal(import_buffer(f->ing, nd, n, &opt, &s, &errs, &err), 0);
        assert_int_equal(s.stop_line, 15000);
        assert_int_equal(s.applied, 14999);
        assert_int_equal(event_count(f, "Viewed") - before, 14999);
        assert_int_equal(err_line(errs, 0), 15000);
        cJSON_Delete(errs);
    }
    free(nd);
}

/* With the pipeline, chunk N+1 is normalised while the writer applies chunk N but
 * queued only after N's result is in: a type conflict (found by the writer, not the
 * normaliser) is skipped alone in skip mode, and stops everything after it in stop
 * mode, also with chunks already normalised behind it. */
static void test_pipeline_conflict_found_by_the_writer(void **state)
{
    fixture *f = *state;
    size_t cap = 2000 * 100, n = 0;
    char *nd = xmalloc(cap);
    for (int i = 1; i <= 2000; i++) {
        if (i == 1550 || i == 550)
            n += (size_t)snprintf(nd + n, cap - n, "{\"type\":\"identify\",\"userId\":\"c%d\",\"traits\":{\"plan\":5}}\n", i);
        else if (i % 2)
            n += (size_t)snprintf(nd + n, cap - n, "{\"type\":\"identify\",\"userId\":\"c%d\",\"traits\":{\"plan\":\"p\"}}\n", i);
        else
            n += (size_t)snprintf(nd + n, cap - n, "{\"type\":\"track\",\"userId\":\"c%d\",\"event\":\"Late\"}\n", i - 1);
    }
    for (int mode = 0; mode < 2; mode++) {
        import_options opt;
        import_options_defaults(&opt);
        opt.chunk_lines = 100;
        opt.pipeline = 1;
        opt.on_error = mode ? IMPORT_SKIP : IMPORT_STOP;
        import_summary s;
        cJSON *errs = NULL;
        segd_error err;
        segd_error_clear(&err);
        uint64_t before = event_count(f, "Late");
        assert_int_equal(import_buffer(f->ing, nd, n, &opt, &s, &errs, &err), 0);
        if (mode == 0) {                      /* stop: lines 1..549 */
            assert_int_equal(s.stopped, 1);
            assert_int_equal(s.stop_line, 550);
            assert_int_equal(s.applied, 549);
            assert_int_equal(event_count(f, "Late") - before, 274);
        } else {                              /* skip: all but 550 and 1550 (again: no duplicates without ids) */
            assert_int_equal(s.stopped, 0);
            assert_int_equal(s.skipped, 2);
            assert_int_equal(s.applied, 1998);
            assert_int_equal(err_line(errs, 0), 550);
            assert_int_equal(err_line(errs, 1), 1550);
            assert_int_equal(event_count(f, "Late") - before, 998);   /* 550 and 1550 replaced tracks */
        }
        cJSON_Delete(errs);
    }
    free(nd);
}

/* ---- HTTP helpers ---- */

static void test_options_from_query(void **state)
{
    import_options opt;
    segd_error err;
    import_options_defaults(&opt);
    segd_error_clear(&err);
    assert_int_equal(import_options_from_query(&opt, NULL, "people.CSV", "12", "skip", &err), 0);
    assert_int_equal(opt.format, IMPORT_CSV);
    assert_int_equal(opt.first_line, 12);
    assert_int_equal(opt.on_error, IMPORT_SKIP);
    assert_string_equal(opt.file_name, "people.CSV");
    import_options_defaults(&opt);
    assert_int_equal(import_options_from_query(&opt, "jsonl", NULL, NULL, NULL, &err), 0);
    assert_int_equal(opt.format, IMPORT_NDJSON);
    assert_string_equal(opt.file_name, "upload");
    static const char *bad[][4] = {
        {NULL, NULL, NULL, NULL},           /* no format at all */
        {"xml", NULL, NULL, NULL},
        {"csv", "a/b.csv", NULL, NULL},
        {"csv", NULL, "-1", NULL},
        {"csv", NULL, "12x", NULL},
        {"csv", NULL, NULL, "ignore"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        import_options_defaults(&opt);
        segd_error_clear(&err);
        assert_int_equal(import_options_from_query(&opt, bad[i][0], bad[i][1], bad[i][2], bad[i][3], &err), SEGD_EINVAL);
        assert_int_equal(err.status, 400);
        assert_string_equal(err.code, "invalid_parameter");
    }
}

static void test_summary_json(void **state)
{
    fixture *f = *state;
    import_options opt;
    import_options_defaults(&opt);
    opt.max_errors = 1;
    opt.on_error = IMPORT_SKIP;
    const char *nd = "x\ny\n{\"type\":\"identify\",\"userId\":\"j1\"}\n";
    import_summary s;
    cJSON *errs = NULL;
    segd_error err;
    assert_int_equal(import_buffer(f->ing, nd, strlen(nd), &opt, &s, &errs, &err), 0);
    cJSON *j = import_summary_json(&s, errs);
    char *text = cJSON_PrintUnformatted(j);
    assert_non_null(strstr(text, "\"lines_read\":3,\"applied\":1,\"duplicates\":0,\"skipped\":2,\"stopped\":false,\"stop_line\":null,"
                                 "\"errors\":[{\"line\":1,\"code\":\"invalid_json\""));
    assert_non_null(strstr(text, "\"errors_omitted\":1,\"elapsed_ms\":"));
    free(text);
    cJSON_Delete(j);
}

static void test_empty_inputs(void **state)
{
    fixture *f = *state;
    import_summary s;
    assert_int_equal(run_import(f, "", IMPORT_CSV, IMPORT_STOP, 0, &s, NULL), 0);
    assert_int_equal(s.lines_read, 0);
    assert_int_equal(run_import(f, "user_id,a\n", IMPORT_CSV, IMPORT_STOP, 0, &s, NULL), 0);
    assert_int_equal(s.lines_read, 0);
    assert_int_equal(run_import(f, "\n\n  \n", IMPORT_NDJSON, IMPORT_STOP, 0, &s, NULL), 0);
    assert_int_equal(s.lines_read, 0);
    assert_int_equal(run_import(f, "\xEF\xBB\xBF", IMPORT_NDJSON, IMPORT_STOP, 0, &s, NULL), 0);
    assert_int_equal(s.lines_read, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_respects_quotes_and_limits),
        cmocka_unit_test(test_options_from_query),
        cmocka_unit_test_setup_teardown(test_csv_quotes_crlf_newlines_bom_ragged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_fed_byte_by_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_bad_quotes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_header_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ndjson_bad_json_line_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ndjson_bad_json_line_skip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_applies_exactly_the_lines_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip_applies_every_good_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skip_judges_later_lines_without_the_bad_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_csv_twice_applies_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_people_csv_typing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csv_numbers_are_json_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_stop_in_a_late_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline_conflict_found_by_the_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_summary_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_inputs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
