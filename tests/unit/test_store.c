/* test_store.c - unit tests for src/store/store.c: open, lock, migrations, every
 * write and load, transactions and savepoints, and injected write failures. Each
 * test gets a fresh mkdtemp directory under /tmp, removed afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "store/store.h"

/* ---- fixture: a temporary data directory ---- */

typedef struct fixture {
    char root[64];    /* the mkdtemp directory, removed by teardown */
    char dir[128];    /* the data directory the tests open: ROOT/data (not yet created) */
} fixture;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = xcalloc(1, sizeof *f);
    strcpy(f->root, "/tmp/segd-test-store-XXXXXX");
    if (!mkdtemp(f->root)) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/data", f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    int rc = nftw(f->root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

static store *open_ok(const char *dir)
{
    segd_error err;
    store *s = store_open(dir, &err);
    if (!s)
        fail_msg("store_open(%s): %s: %s", dir, err.code, err.message);
    assert_int_equal(err.status, 0);
    return s;
}

/* Runs one SQL statement on DIR/segd.db through a separate connection (the store
 * must be closed), for tests that tamper with the file. */
static void raw_exec(const char *dir, const char *sql)
{
    char path[256];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/segd.db", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static long long raw_int(const char *dir, const char *sql)
{
    char path[256];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v;
    snprintf(path, sizeof path, "%s/segd.db", dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* ---- a text dump of everything the loads return, to compare whole stores ---- */

static int dump_attribute(void *ctx, const char *name, const char *type_name, int declared)
{
    fprintf(ctx, "attribute %s %s %d\n", name, type_name, declared);
    return 0;
}

static int dump_event_type(void *ctx, int type, const char *name)
{
    fprintf(ctx, "event_type %d %s\n", type, name);
    return 0;
}

static int dump_property(void *ctx, int type, const char *name, const char *type_name)
{
    fprintf(ctx, "property %d %s %s\n", type, name, type_name);
    return 0;
}

static int dump_person(void *ctx, uint32_t id, uint64_t public_id, const char *attrs, size_t len)
{
    fprintf(ctx, "person %u %llu %.*s\n", id, (unsigned long long)public_id, (int)len, attrs);
    return 0;
}

static int dump_event(void *ctx, uint32_t person, int type, int64_t time_ms, const char *props,
                      size_t len)
{
    if (props)
        fprintf(ctx, "event %u %d %lld %.*s\n", person, type, (long long)time_ms, (int)len, props);
    else
        fprintf(ctx, "event %u %d %lld NULL/%zu\n", person, type, (long long)time_ms, len);
    return 0;
}

static int dump_message(void *ctx, const char *source, const char *message_id, int64_t at_ms)
{
    fprintf(ctx, "message %s %s %lld\n", source, message_id, (long long)at_ms);
    return 0;
}

/* Everything in the store as text, in load order; caller frees. */
static char *dump(store *s)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    assert_int_equal(store_load_attributes(s, dump_attribute, out), 0);
    assert_int_equal(store_load_event_types(s, dump_event_type, out), 0);
    assert_int_equal(store_load_properties(s, dump_property, out), 0);
    assert_int_equal(store_load_people(s, dump_person, out), 0);
    assert_int_equal(store_load_events(s, dump_event, out), 0);
    assert_int_equal(store_load_messages(s, INT64_MIN, dump_message, out), 0);
    fclose(out);
    return text;
}

static void assert_dump(store *s, const char *expected)
{
    char *text = dump(s);
    assert_string_equal(text, expected);
    free(text);
}

#define PUT_PERSON(s, id, pub, json) store_person_put((s), (id), (pub), (json), strlen(json))
#define INSERT_EVENT(s, person, type, ts, json) \
    store_event_insert((s), (person), (type), (ts), (json), strlen(json))

/* ---- open, lock, migrations ---- */

static void test_open_creates_directory_and_schema(void **state)
{
    fixture *f = *state;
    char nested[192];
    struct stat sb;
    store *s;

    snprintf(nested, sizeof nested, "%s/a/b", f->dir);
    s = open_ok(nested);
    assert_int_equal(stat(nested, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(f->dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_dump(s, "");
    store_close(s);

    assert_int_equal(raw_int(nested, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(raw_int(nested, "PRAGMA application_id"), 0x73656764);
    assert_int_equal(raw_int(nested, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    assert_int_equal(raw_int(nested, "SELECT count(*) FROM sqlite_master WHERE name IN "
                             "('people','attributes','event_types','properties','events',"
                             "'message_ids','events_person')"), 7);
    /* no unique index on message ids: only the one on `at` */
    assert_int_equal(raw_int(nested, "SELECT count(*) FROM pragma_index_list('message_ids')"), 1);
    assert_int_equal(raw_int(nested, "SELECT \"unique\" FROM pragma_index_list('message_ids')"), 0);
}

static void test_open_again_keeps_data_and_version(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 1, 42, "{\"plan\":\"pro\"}"), 0);
    assert_int_equal(INSERT_EVENT(s, 1, 0, 1000, "{\"amount\":12.5}"), 0);
    assert_int_equal(store_attribute_put(s, "plan", "string", 1), 0);
    assert_int_equal(store_event_type_put(s, 0, "purchase"), 0);
    assert_int_equal(store_property_put(s, 0, "amount", "number"), 0);
    assert_int_equal(store_message_put(s, "api", "m-1", 900), 0);
    assert_int_equal(store_commit(s), 0);
    store_close(s);

    s = open_ok(f->dir);
    assert_dump(s, "attribute plan string 1\n"
                   "event_type 0 purchase\n"
                   "property 0 amount number\n"
                   "person 1 42 {\"plan\":\"pro\"}\n"
                   "event 1 0 1000 {\"amount\":12.5}\n"
                   "message api m-1 900\n");
    store_close(s);
    assert_int_equal(raw_int(f->dir, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
}

static void test_second_open_of_locked_dir_is_refused(void **state)
{
    fixture *f = *state;
    segd_error err;
    store *s = open_ok(f->dir);
    store *again = store_open(f->dir, &err);

    assert_null(again);
    assert_int_equal(err.status, 503);
    assert_string_equal(err.code, "data_dir_locked");
    assert_non_null(strstr(err.message, f->dir));
    assert_non_null(strstr(err.message, "--data"));

    /* the refused open must not have disturbed the holder */
    assert_int_equal(PUT_PERSON(s, 1, 1, "{}"), 0);
    store_close(s);

    s = open_ok(f->dir);   /* released by close */
    assert_dump(s, "person 1 1 {}\n");
    store_close(s);
}

static void test_open_from_another_process_is_refused(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    int status = -1;
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child never touches the parent's connection; it only tries its own. */
        segd_error err;
        store *child = store_open(f->dir, &err);
        _exit(child == NULL && err.status == 503 && strcmp(err.code, "data_dir_locked") == 0 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    store_close(s);
}

static void test_newer_schema_is_refused(void **state)
{
    fixture *f = *state;
    segd_error err;
    store *s = open_ok(f->dir);

    store_close(s);
    raw_exec(f->dir, "PRAGMA user_version = 99");
    s = store_open(f->dir, &err);
    assert_null(s);
    assert_string_equal(err.code, "schema_too_new");
    assert_non_null(strstr(err.message, "99"));
    /* the lock went with the failed open */
    raw_exec(f->dir, "PRAGMA user_version = 1");
    s = open_ok(f->dir);
    store_close(s);
}

static void test_foreign_files_are_refused(void **state)
{
    fixture *f = *state;
    char path[256];
    segd_error err;
    FILE *file;

    /* a SQLite database that is not segd's */
    assert_int_equal(mkdir(f->dir, 0700), 0);
    raw_exec(f->dir, "CREATE TABLE notes(x)");
    assert_null(store_open(f->dir, &err));
    assert_string_equal(err.code, "not_a_segd_database");

    /* not a database at all */
    snprintf(path, sizeof path, "%s/segd.db", f->dir);
    file = fopen(path, "w");
    assert_non_null(file);
    fputs("this is not a database, but it is longer than one hundred bytes so that SQLite reads "
          "a header from it and complains about it.\n", file);
    fclose(file);
    assert_null(store_open(f->dir, &err));
    assert_string_equal(err.code, "store_open_failed");

    /* a data directory that is a regular file */
    assert_null(store_open(path, &err));
    assert_string_equal(err.code, "data_dir_unusable");
    assert_null(store_open("", &err));
    assert_string_equal(err.code, "data_dir_unusable");
}

static void test_close_null_is_noop(void **state)
{
    store_close(NULL);
}

/* ---- writes and loads ---- */

static void test_people_round_trip(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    const char *longer = "{\"a\":1}TRAILING";
    uint64_t public_id = 0;
    char *attrs = NULL;
    size_t len = 0;

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 7, UINT64_MAX, "{\"plan\":\"free\"}"), 0);
    assert_int_equal(PUT_PERSON(s, 3, 0, "{}"), 0);
    assert_int_equal(store_person_put(s, 5, 1ull << 63, longer, 7), 0);  /* only the first 7 bytes */
    assert_int_equal(PUT_PERSON(s, 7, UINT64_MAX - 1, "{\"plan\":\"pro\"}"), 0); /* replaces */
    assert_int_equal(PUT_PERSON(s, UINT32_MAX, 9, "{\"z\":true}"), 0);
    assert_int_equal(store_person_put(s, 8, 1, NULL, 0), SEGD_EINVAL);
    assert_int_equal(store_commit(s), 0);

    assert_dump(s, "person 3 0 {}\n"
                   "person 5 9223372036854775808 {\"a\":1}\n"
                   "person 7 18446744073709551614 {\"plan\":\"pro\"}\n"
                   "person 4294967295 9 {\"z\":true}\n");

    assert_int_equal(store_person_get(s, 7, &public_id, &attrs, &len), 1);
    assert_int_equal(public_id, UINT64_MAX - 1);
    assert_int_equal(len, strlen("{\"plan\":\"pro\"}"));
    assert_string_equal(attrs, "{\"plan\":\"pro\"}");
    free(attrs);
    attrs = NULL;
    assert_int_equal(store_person_get(s, 4, &public_id, &attrs, &len), 0);
    assert_null(attrs);
    assert_int_equal(store_person_get(s, 3, NULL, NULL, NULL), 1);
    store_close(s);
}

static void test_events_round_trip(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    const char *props = "{\"amount\":12.5,\"sku\":\"A-123\"}";

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(INSERT_EVENT(s, 2, 1, 3000, props), 0);
    assert_int_equal(store_event_insert(s, 1, 0, -5, NULL, 0), 0);
    assert_int_equal(INSERT_EVENT(s, 1, -1, INT64_MAX, ""), 0);
    assert_int_equal(store_event_insert(s, 9, 3, INT64_MIN, props, 12), 0);
    assert_int_equal(store_commit(s), 0);
    /* arrival order, not person order; NULL props come back as (NULL, 0) */
    assert_dump(s, "event 2 1 3000 {\"amount\":12.5,\"sku\":\"A-123\"}\n"
                   "event 1 0 -5 NULL/0\n"
                   "event 1 -1 9223372036854775807 \n"
                   "event 9 3 -9223372036854775808 {\"amount\":12\n");
    store_close(s);
}

static void test_catalogs_round_trip_in_stable_order(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_attribute_put(s, "plan", "string", 1), 0);
    assert_int_equal(store_attribute_put(s, "age", "number", 0), 0);
    assert_int_equal(store_attribute_put(s, "email", "string", 0), 0);
    assert_int_equal(store_attribute_put(s, "plan", "tags", 7), 0);   /* update keeps its place */
    assert_int_equal(store_attribute_delete(s, "age"), 0);
    assert_int_equal(store_attribute_delete(s, "missing"), 0);
    assert_int_equal(store_attribute_put(s, "age", "date", 1), 0);    /* re-added: last */

    assert_int_equal(store_event_type_put(s, 2, "signup"), 0);
    assert_int_equal(store_event_type_put(s, 0, "purchase"), 0);
    assert_int_equal(store_event_type_put(s, 1, "refund"), 0);
    assert_int_equal(store_event_type_put(s, 1, "refunded"), 0);

    assert_int_equal(store_property_put(s, 2, "source", "string"), 0);
    assert_int_equal(store_property_put(s, 0, "amount", "number"), 0);
    assert_int_equal(store_property_put(s, 0, "sku", "string"), 0);
    assert_int_equal(store_property_put(s, 2, "source", "tags"), 0);  /* update keeps its place */
    assert_int_equal(store_property_put(s, 1, "amount", "number"), 0); /* same name, other type */
    assert_int_equal(store_commit(s), 0);

    assert_dump(s, "attribute plan tags 1\n"
                   "attribute email string 0\n"
                   "attribute age date 1\n"
                   "event_type 0 purchase\n"
                   "event_type 1 refunded\n"
                   "event_type 2 signup\n"
                   "property 2 source tags\n"
                   "property 0 amount number\n"
                   "property 0 sku string\n"
                   "property 1 amount number\n");
    store_close(s);
}

static void test_messages_load_since_and_prune(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    char *text = NULL;
    size_t size = 0;
    FILE *out;

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_message_put(s, "api", "a", 100), 0);
    assert_int_equal(store_message_put(s, "api", "b", 300), 0);
    assert_int_equal(store_message_put(s, "import", "a", 200), 0);
    assert_int_equal(store_message_put(s, "api", "a", 400), 0);  /* duplicates are stored */
    assert_int_equal(store_commit(s), 0);

    out = open_memstream(&text, &size);
    assert_int_equal(store_load_messages(s, 200, dump_message, out), 0);
    fclose(out);
    assert_string_equal(text, "message api b 300\nmessage import a 200\nmessage api a 400\n");
    free(text);

    assert_int_equal(store_prune_messages(s, 300), 0);   /* outside a transaction: autocommit */
    store_close(s);
    s = open_ok(f->dir);
    assert_dump(s, "message api b 300\nmessage api a 400\n");
    store_close(s);
}

static int stop_after_two(void *ctx, uint32_t id, uint64_t public_id, const char *attrs, size_t len)
{
    int *seen = ctx;
    return ++*seen == 2 ? 77 : 0;
}

static void test_load_stops_when_callback_says_so(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    int seen = 0;

    assert_int_equal(store_begin(s), 0);
    for (uint32_t id = 1; id <= 5; id++)
        assert_int_equal(PUT_PERSON(s, id, id, "{}"), 0);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_load_people(s, stop_after_two, &seen), 77);
    assert_int_equal(seen, 2);
    /* the statement was reset: it loads from the start again and writes still commit */
    seen = 0;
    assert_int_equal(store_load_people(s, stop_after_two, &seen), 77);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 6, 6, "{}"), 0);
    assert_int_equal(store_commit(s), 0);
    store_close(s);
}

static void test_person_delete_removes_their_events(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 1, 10, "{}"), 0);
    assert_int_equal(PUT_PERSON(s, 2, 20, "{}"), 0);
    assert_int_equal(INSERT_EVENT(s, 1, 0, 1, "{}"), 0);
    assert_int_equal(INSERT_EVENT(s, 2, 0, 2, "{}"), 0);
    assert_int_equal(INSERT_EVENT(s, 1, 1, 3, "{}"), 0);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_person_delete(s, 1), 0);   /* autocommit: still all or nothing */
    assert_int_equal(store_person_delete(s, 99), 0);  /* missing is not an error */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_person_delete(s, 2), 0);
    assert_int_equal(store_rollback(s), 0);
    assert_dump(s, "person 2 20 {}\nevent 2 0 2 {}\n");
    store_close(s);
}

static void test_events_move_to_another_person(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(INSERT_EVENT(s, 1, 0, 1, "{\"n\":1}"), 0);
    assert_int_equal(INSERT_EVENT(s, 2, 0, 2, "{\"n\":2}"), 0);
    assert_int_equal(INSERT_EVENT(s, 1, 0, 3, "{\"n\":3}"), 0);
    assert_int_equal(INSERT_EVENT(s, 3, 0, 4, "{\"n\":4}"), 0);
    assert_int_equal(store_events_move(s, 1, 2), 0);
    assert_int_equal(store_events_move(s, 42, 2), 0);  /* nothing to move */
    assert_int_equal(store_commit(s), 0);
    assert_dump(s, "event 2 0 1 {\"n\":1}\n"
                   "event 2 0 2 {\"n\":2}\n"
                   "event 2 0 3 {\"n\":3}\n"
                   "event 3 0 4 {\"n\":4}\n");
    store_close(s);
}

/* ---- transactions ---- */

static void test_savepoint_rollback_undoes_only_its_request(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 1, 1, "{\"req\":1}"), 0);    /* outside any savepoint */

    assert_int_equal(store_savepoint(s), 0);                   /* request 2: kept */
    assert_int_equal(PUT_PERSON(s, 2, 2, "{\"req\":2}"), 0);
    assert_int_equal(INSERT_EVENT(s, 2, 0, 2, "{}"), 0);
    assert_int_equal(store_release(s), 0);

    assert_int_equal(store_savepoint(s), 0);                   /* request 3: fails */
    assert_int_equal(PUT_PERSON(s, 3, 3, "{\"req\":3}"), 0);
    assert_int_equal(PUT_PERSON(s, 1, 1, "{\"req\":\"3 overwrote 1\"}"), 0);
    assert_int_equal(INSERT_EVENT(s, 3, 0, 3, "{}"), 0);
    assert_int_equal(store_attribute_put(s, "x", "string", 0), 0);
    assert_int_equal(store_rollback_to(s), 0);

    assert_int_equal(store_savepoint(s), 0);                   /* request 4: kept */
    assert_int_equal(PUT_PERSON(s, 4, 4, "{\"req\":4}"), 0);
    assert_int_equal(store_release(s), 0);

    /* the savepoint stack is flat again: RELEASE without a savepoint is an error */
    assert_int_equal(store_release(s), SEGD_EIO);
    assert_int_equal(store_commit(s), 0);
    store_close(s);

    s = open_ok(f->dir);
    assert_dump(s, "person 1 1 {\"req\":1}\n"
                   "person 2 2 {\"req\":2}\n"
                   "person 4 4 {\"req\":4}\n"
                   "event 2 0 2 {}\n");
    store_close(s);
}

static void test_rollback_undoes_the_whole_transaction(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 1, 1, "{}"), 0);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 2, 2, "{}"), 0);
    assert_int_equal(store_savepoint(s), 0);
    assert_int_equal(INSERT_EVENT(s, 2, 0, 1, "{}"), 0);
    assert_int_equal(store_release(s), 0);
    assert_int_equal(store_message_put(s, "api", "m", 1), 0);
    assert_int_equal(store_rollback(s), 0);
    assert_int_equal(store_rollback(s), 0);   /* nothing open: a no-op */

    /* a transaction left open at close is not committed */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 3, 3, "{}"), 0);
    store_close(s);

    s = open_ok(f->dir);
    assert_dump(s, "person 1 1 {}\n");
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_begin(s), SEGD_EIO);  /* no nesting */
    assert_int_equal(store_rollback(s), 0);
    store_close(s);
}

/* ---- injected write failures ---- */

/* The writes counted by store_fail_nth_write, one of each function, in an order
 * where every one changes what the dump shows. */
static int write_op(store *s, int i)
{
    switch (i) {
    case 0: return PUT_PERSON(s, 1, 100, "{\"a\":1}");
    case 1: return PUT_PERSON(s, 2, 200, "{\"a\":2}");
    case 2: return INSERT_EVENT(s, 1, 0, 1000, "{\"x\":1}");
    case 3: return store_event_insert(s, 2, 0, 2000, NULL, 0);
    case 4: return INSERT_EVENT(s, 3, 0, 3000, "{\"x\":3}");
    case 5: return store_events_move(s, 3, 2);
    case 6: return store_person_delete(s, 1);
    case 7: return store_attribute_put(s, "plan", "string", 1);
    case 8: return store_attribute_put(s, "age", "number", 0);
    case 9: return store_attribute_delete(s, "plan");
    case 10: return store_event_type_put(s, 0, "purchase");
    case 11: return store_property_put(s, 0, "amount", "number");
    case 12: return store_message_put(s, "api", "m1", 5000);
    }
    return -100;
}
#define WRITE_OPS 13

static void test_fail_nth_write_fails_exactly_that_call(void **state)
{
    fixture *f = *state;

    for (int k = 0; k < WRITE_OPS; k++) {
        char dir[200], expected_dir[200];
        char *expected, *got;
        store *s, *ref;

        snprintf(dir, sizeof dir, "%s/fail%d", f->root, k);
        snprintf(expected_dir, sizeof expected_dir, "%s/ref%d", f->root, k);

        /* the reference: every write but k, no injection */
        ref = open_ok(expected_dir);
        assert_int_equal(store_begin(ref), 0);
        for (int i = 0; i < WRITE_OPS; i++)
            if (i != k)
                assert_int_equal(write_op(ref, i), 0);
        assert_int_equal(store_commit(ref), 0);
        expected = dump(ref);
        store_close(ref);

        /* armed before begin: begin, savepoints and loads do not count */
        s = open_ok(dir);
        store_fail_nth_write(s, k + 1);
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_savepoint(s), 0);
        got = dump(s);
        free(got);
        for (int i = 0; i < WRITE_OPS; i++)
            assert_int_equal(write_op(s, i), i == k ? SEGD_EIO : 0);
        assert_int_equal(store_release(s), 0);
        assert_int_equal(store_commit(s), 0);
        store_close(s);

        s = open_ok(dir);
        got = dump(s);
        assert_string_equal(got, expected);
        free(got);
        free(expected);
        assert_int_equal(store_integrity_check(s), 0);
        store_close(s);
    }
}

static void test_fail_nth_write_counts_commit(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    /* commit is the 2nd write: it fails and leaves the transaction open */
    store_fail_nth_write(s, 2);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 1, 1, "{}"), 0);
    assert_int_equal(store_commit(s), SEGD_EIO);
    assert_int_equal(store_rollback(s), 0);
    assert_dump(s, "");

    /* the fault fires once; a retried commit goes through */
    store_fail_nth_write(s, 1);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 2, 2, "{}"), SEGD_EIO);   /* consumes the fault... */
    assert_int_equal(store_person_get(s, 2, NULL, NULL, NULL), 0);
    assert_int_equal(PUT_PERSON(s, 2, 2, "{}"), 0);   /* ...so this one succeeds */
    assert_int_equal(store_commit(s), 0);

    /* 0 disarms */
    store_fail_nth_write(s, 1);
    store_fail_nth_write(s, 0);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 3, 3, "{}"), 0);
    assert_int_equal(store_commit(s), 0);
    store_close(s);

    s = open_ok(f->dir);
    assert_dump(s, "person 2 2 {}\nperson 3 3 {}\n");
    store_close(s);
}

static void test_integrity_check_after_a_workload(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    char props[64];

    assert_int_equal(store_begin(s), 0);
    for (uint32_t id = 0; id < 2000; id++) {
        int len = snprintf(props, sizeof props, "{\"amount\":%u.5,\"sku\":\"A-%u\"}", id, id);
        assert_int_equal(PUT_PERSON(s, id, id * 7ull, "{\"plan\":\"pro\"}"), 0);
        assert_int_equal(store_event_insert(s, id, (int)(id % 5), id * 1000ll, props, (size_t)len), 0);
        assert_int_equal(store_message_put(s, "api", props, id), 0);
    }
    for (uint32_t id = 0; id < 2000; id += 3)
        assert_int_equal(store_person_delete(s, id), 0);
    for (uint32_t id = 1; id < 2000; id += 3)
        assert_int_equal(store_events_move(s, id, id + 1), 0);
    assert_int_equal(store_prune_messages(s, 1000), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_integrity_check(s), 0);
    store_close(s);
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM events"), 2000 - 667);
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM message_ids"), 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_directory_and_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_again_keeps_data_and_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_open_of_locked_dir_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_from_another_process_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_files_are_refused, setup, teardown),
        cmocka_unit_test(test_close_null_is_noop),
        cmocka_unit_test_setup_teardown(test_people_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogs_round_trip_in_stable_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_load_since_and_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_stops_when_callback_says_so, setup, teardown),
        cmocka_unit_test_setup_teardown(test_person_delete_removes_their_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_move_to_another_person, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoint_rollback_undoes_only_its_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_undoes_the_whole_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_nth_write_fails_exactly_that_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_nth_write_counts_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_integrity_check_after_a_workload, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
