/* test_store.c - unit tests for src/store/store.c: open, lock, migrations, every
 * write, load and read (also from other threads while the writer holds a transaction),
 * transactions and savepoints, and injected write failures. Each test gets a fresh
 * mkdtemp directory under /tmp, removed afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <pthread.h>
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

/* The first column of a one-row query as text ("" for NULL); caller frees. */
static char *raw_text(const char *dir, const char *sql)
{
    char path[256];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    const unsigned char *text;
    char *v;
    snprintf(path, sizeof path, "%s/segd.db", dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    text = sqlite3_column_text(st, 0);
    v = xstrdup(text ? (const char *)text : "");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void assert_raw_text(const char *dir, const char *sql, const char *expected)
{
    char *text = raw_text(dir, sql);
    assert_string_equal(text, expected);
    free(text);
}

/* Every table and index segd created (not SQLite's own autoindexes), as
 * "type name on table" lines in name order: the shape of the schema, whatever SQL
 * text (CREATE, or ALTER TABLE RENAME) produced it. */
#define SCHEMA_OBJECTS_SQL                                                              \
    "SELECT group_concat(line, ';') FROM (SELECT type || ' ' || name || ' on ' || tbl_name"  \
    " AS line FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name)"

#define INDEX_COLUMNS(index) "SELECT group_concat(name, ',') FROM pragma_index_info('" index "')"

/* The objects and columns of the current schema (version 5), which a fresh open and a
 * migration must both produce. */
static void assert_schema_current(const char *dir)
{
    assert_int_equal(raw_int(dir, "PRAGMA user_version"), 5);
    assert_int_equal(raw_int(dir, "PRAGMA application_id"), 0x73656764);
    assert_raw_text(dir, SCHEMA_OBJECTS_SQL,
                    "table attributes on attributes;"
                    "table event_blocks on event_blocks;"
                    "table event_types on event_types;"
                    "table message_batches on message_batches;"
                    "index message_batches_at on message_batches;"
                    "table meta on meta;"
                    "table people on people;"
                    "table properties on properties;"
                    "table segment_history on segment_history;"
                    "index segment_history_at on segment_history;"
                    "table segment_members on segment_members;"
                    "index segment_members_person on segment_members;"
                    "table segment_transitions on segment_transitions;"
                    "index segment_transitions_at on segment_transitions;"
                    "index segment_transitions_person on segment_transitions;"
                    "index segment_transitions_seg on segment_transitions;"
                    "table segments on segments");
    /* segments (4): nums and seqs never reused; members and history keyed WITHOUT ROWID */
    assert_raw_text(dir, "SELECT group_concat(name, ',') FROM pragma_table_info('segments')",
                    "num,id,definition,cached_at,cached,members,members_seq");
    assert_raw_text(dir, "SELECT group_concat(name, ',') FROM pragma_table_info('segment_members')",
                    "seg,person,entered_at,cause");
    assert_raw_text(dir, "SELECT group_concat(name, ',') FROM pragma_table_info('segment_transitions')",
                    "seq,seg,person,public_id,dir,at,cause,detail");
    assert_raw_text(dir, "SELECT group_concat(name, ',') FROM pragma_table_info('segment_history')",
                    "seg,at,size,kind");
    assert_raw_text(dir, "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master"
                    " WHERE sql LIKE '%AUTOINCREMENT%' ORDER BY name)", "segment_transitions,segments");
    assert_raw_text(dir, "SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_table_list"
                    " WHERE wr ORDER BY name)", "segment_history,segment_members");
    assert_raw_text(dir, "SELECT group_concat(name, ',') FROM pragma_table_info('segment_members') WHERE pk",
                    "seg,person");
    assert_raw_text(dir, "SELECT group_concat(name, ',') FROM pragma_table_info('segment_history') WHERE pk",
                    "seg,at");
    assert_raw_text(dir, INDEX_COLUMNS("segment_members_person"), "person,seg");
    assert_raw_text(dir, INDEX_COLUMNS("segment_transitions_seg"), "seg,seq");
    assert_raw_text(dir, INDEX_COLUMNS("segment_transitions_person"), "person,seq");
    assert_raw_text(dir, INDEX_COLUMNS("segment_transitions_at"), "at");
    assert_raw_text(dir, INDEX_COLUMNS("segment_history_at"), "at");
    assert_int_equal(raw_int(dir, "SELECT \"unique\" FROM pragma_index_list('segments')"), 1);   /* id */
    /* event blocks: the rowid is the key (type << 32 | first row), n before the blob,
     * no index at all; the events table of versions 1 and 2 is gone */
    assert_raw_text(dir, "SELECT group_concat(name, ',') FROM pragma_table_info('event_blocks')",
                    "id,n,data");
    assert_int_equal(raw_int(dir, "SELECT count(*) FROM pragma_index_list('event_blocks')"), 0);
    assert_int_equal(raw_int(dir, "SELECT count(*) FROM sqlite_master WHERE name IN "
                             "('events','events_person','events_v2','message_ids','message_ids_at')"), 0);
    assert_raw_text(dir, "SELECT group_concat(name, ',') FROM pragma_table_info('message_batches')",
                    "id,at,source,ids");
    /* no unique index on message ids: only the one on `at` */
    assert_int_equal(raw_int(dir, "SELECT count(*) FROM pragma_index_list('message_batches')"), 1);
    assert_int_equal(raw_int(dir, "SELECT \"unique\" FROM pragma_index_list('message_batches')"), 0);
    assert_raw_text(dir, "SELECT group_concat(name, ',') FROM pragma_index_info('message_batches_at')",
                    "at");
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

/* "event TYPE ROW PERSON TIME PROPS": the key first, as the load orders by it. */
static int dump_event(void *ctx, int type, uint32_t row, uint32_t person, int64_t time_ms,
                      const char *props, size_t len)
{
    if (props)
        fprintf(ctx, "event %d %u %u %lld %.*s\n", type, row, person, (long long)time_ms,
                (int)len, props);
    else
        fprintf(ctx, "event %d %u %u %lld NULL/%zu\n", type, row, person, (long long)time_ms, len);
    return 0;
}

static int dump_message(void *ctx, const char *source, const char *message_id, int64_t at_ms)
{
    fprintf(ctx, "message %s %s %lld\n", source, message_id, (long long)at_ms);
    return 0;
}

/* "  history AT SIZE KIND", under its segment's line. */
static int dump_history(void *ctx, int64_t at, uint64_t size, int kind)
{
    fprintf(ctx, "  history %lld %llu %d\n", (long long)at, (unsigned long long)size, kind);
    return 0;
}

struct segment_dump {
    store *s;
    FILE *out;
};

/* "segment NUM ID DEFINITION CACHED_AT SNAPSHOT", the snapshot in hex ("-": none),
 * then the segment's history points. */
static int dump_segment(void *ctx, int64_t num, const char *id, const char *definition, size_t len,
                        int64_t cached_at, const void *cached, size_t cached_len)
{
    struct segment_dump *d = ctx;
    fprintf(d->out, "segment %lld %s %.*s %lld ", (long long)num, id, (int)len, definition, (long long)cached_at);
    if (!cached)
        fputc('-', d->out);
    for (size_t i = 0; i < cached_len; i++)
        fprintf(d->out, "%02x", ((const unsigned char *)cached)[i]);
    fputc('\n', d->out);
    assert_int_equal(store_read_history(d->s, num, INT64_MIN, dump_history, d->out), 0);
    return 0;
}

/* "member NUM PERSON ENTERED_AT CAUSE" */
static int dump_member(void *ctx, int64_t num, uint32_t person, int64_t entered_at, int cause)
{
    fprintf(ctx, "member %lld %u %lld %d\n", (long long)num, person, (long long)entered_at, cause);
    return 0;
}

/* "transition SEQ NUM PERSON PUBLIC_ID DIR AT CAUSE DETAIL" (DETAIL "NULL" for none) */
static int dump_transition(void *ctx, const store_transition *t)
{
    fprintf(ctx, "transition %lld %lld %u %llu %d %lld %d %s\n", (long long)t->seq, (long long)t->num, t->person,
            (unsigned long long)t->public_id, t->dir, (long long)t->at, t->cause, t->detail ? t->detail : "NULL");
    return 0;
}

/* Everything in the store as text, in load order; caller frees. History and
 * transitions come from the read connection: committed rows only. */
static char *dump(store *s)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    struct segment_dump segs = {s, out};
    assert_int_equal(store_load_attributes(s, dump_attribute, out), 0);
    assert_int_equal(store_load_event_types(s, dump_event_type, out), 0);
    assert_int_equal(store_load_properties(s, dump_property, out), 0);
    assert_int_equal(store_load_people(s, dump_person, out), 0);
    assert_int_equal(store_load_events(s, dump_event, out), 0);
    assert_int_equal(store_load_messages(s, INT64_MIN, dump_message, out), 0);
    assert_int_equal(store_load_segments(s, dump_segment, &segs), 0);
    assert_int_equal(store_load_members(s, dump_member, out), 0);
    assert_int_equal(store_read_outbox(s, 0, INT_MAX, dump_transition, out), 0);
    fclose(out);
    return text;
}

static void assert_dump(store *s, const char *expected)
{
    char *text = dump(s);
    assert_string_equal(text, expected);
    free(text);
}

/* What store_load_messages(since) gives, one "message SOURCE ID AT" line per
 * callback; caller frees. */
static char *load_messages(store *s, int64_t since_ms)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    assert_int_equal(store_load_messages(s, since_ms, dump_message, out), 0);
    fclose(out);
    return text;
}

static void assert_messages(store *s, int64_t since_ms, const char *expected)
{
    char *text = load_messages(s, since_ms);
    assert_string_equal(text, expected);
    free(text);
}

#define PUT_PERSON(s, id, pub, json) store_person_put((s), (id), (pub), (json), strlen(json))
#define INSERT_EVENT(s, type, row, person, ts, json) \
    store_event_insert((s), (type), (row), (person), (ts), (json), strlen(json))
#define PUT_SEGMENT(s, id, json, num) store_segment_put((s), (id), (json), strlen(json), (num))

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

    assert_int_equal(STORE_SCHEMA_VERSION, 5);
    assert_int_equal(raw_int(nested, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    assert_schema_current(nested);
}

static void test_open_again_keeps_data_and_version(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    const char *ids[] = {"m-1", "m-2"};

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 1, 42, "{\"plan\":\"pro\"}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 0, 1, 1000, "{\"amount\":12.5}"), 0);
    assert_int_equal(store_attribute_put(s, "plan", "string", 1), 0);
    assert_int_equal(store_event_type_put(s, 0, "purchase"), 0);
    assert_int_equal(store_property_put(s, 0, "amount", "number"), 0);
    assert_int_equal(store_messages_put(s, "api", ids, 2, 900), 0);
    assert_int_equal(store_commit(s), 0);
    store_close(s);

    s = open_ok(f->dir);   /* at version 4 already: no migration runs */
    assert_dump(s, "attribute plan string 1\n"
                   "event_type 0 purchase\n"
                   "property 0 amount number\n"
                   "person 1 42 {\"plan\":\"pro\"}\n"
                   "event 0 0 1 1000 {\"amount\":12.5}\n"
                   "message api m-1 900\n"
                   "message api m-2 900\n");
    store_close(s);
    assert_schema_current(f->dir);
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
    raw_exec(f->dir, "PRAGMA user_version = 5");
    s = open_ok(f->dir);
    store_close(s);
}

/* A migration that fails (here: migration 3 run over a schema that is already version
 * 4, so the table it creates exists) is rolled back whole: the
 * database stays at its version, with none of the migration's tables, and the open
 * releases the lock. */
static void test_failed_migration_changes_nothing(void **state)
{
    fixture *f = *state;
    segd_error err;
    store *s = open_ok(f->dir);
    char *before;

    assert_int_equal(INSERT_EVENT(s, 1, 3, 7, 70, "{}"), 0);
    store_close(s);
    before = raw_text(f->dir, SCHEMA_OBJECTS_SQL);
    raw_exec(f->dir, "PRAGMA user_version = 2");

    s = store_open(f->dir, &err);
    assert_null(s);
    assert_int_equal(err.status, 500);
    assert_string_equal(err.code, "store_migration_failed");
    assert_non_null(strstr(err.message, "schema version 3"));
    assert_int_equal(raw_int(f->dir, "PRAGMA user_version"), 2);
    assert_raw_text(f->dir, SCHEMA_OBJECTS_SQL, before);
    free(before);

    raw_exec(f->dir, "PRAGMA user_version = 5");
    s = open_ok(f->dir);
    assert_dump(s, "event 1 3 7 70 {}\n");
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

/* ---- migration from schema version 1 ---- */

/* Schema version 1 exactly as migration 1 in store.c creates it (a shipped script:
 * never edited), copied here so the test builds the old database by hand. */
static const char v1_schema[] =
    "CREATE TABLE people(id INTEGER PRIMARY KEY, public_id INTEGER NOT NULL, attrs TEXT NOT NULL);"
    "CREATE TABLE attributes(name TEXT PRIMARY KEY, type TEXT NOT NULL, declared INTEGER NOT NULL);"
    "CREATE TABLE event_types(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE properties(type INTEGER NOT NULL, name TEXT NOT NULL, ptype TEXT NOT NULL,"
    " PRIMARY KEY(type, name));"
    "CREATE TABLE events(id INTEGER PRIMARY KEY, person INTEGER NOT NULL, type INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, props TEXT);"
    "CREATE INDEX events_person ON events(person);"
    "CREATE TABLE message_ids(source TEXT NOT NULL, message_id TEXT NOT NULL, at INTEGER NOT NULL);"
    "CREATE INDEX message_ids_at ON message_ids(at);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);";

/* Creates DIR (which must not exist) and DIR/segd.db as a segd of schema `version`
 * left it: WAL, segd's application_id, that user_version, `schema`, then `rows` (SQL). */
static void make_old_db(const char *dir, int version, const char *schema, const char *rows)
{
    char path[256], pragmas[96];
    sqlite3 *db = NULL;

    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/segd.db", dir);
    snprintf(pragmas, sizeof pragmas, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
             0x73656764, version);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, schema, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, pragmas, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, rows, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* A version-1 database (see make_old_db). */
static void make_v1_db(const char *dir, const char *rows)
{
    make_old_db(dir, 1, v1_schema, rows);
}

/* Version 1 gave events an id per arrival (all types interleaved, with the holes
 * erasures left) and kept a row per message id. Migration 2 keys each event by its
 * type and its rank within that type by old id, which is the row the engine's
 * rebuild gave it, and turns each message id row into a batch of one. */
static void test_migration_from_v1(void **state)
{
    fixture *f = *state;
    store *s;

    make_v1_db(f->dir,
        "INSERT INTO people VALUES(1, 101, '{\"plan\":\"pro\"}'), (2, 102, '{}'),"
        " (4294967295, -1, '{\"big\":true}');"
        "INSERT INTO attributes VALUES('plan', 'string', 1), ('age', 'number', 0);"
        "INSERT INTO event_types VALUES(0, 'purchase'), (1, 'signup'), (2, 'refund'), (7, 'late');"
        "INSERT INTO properties VALUES(0, 'amount', 'number'), (1, 'source', 'string');"
        "INSERT INTO meta VALUES('note', 'kept');"
        /* ids 4, 7, 8 and 12..99 were erased; inserted out of id order on purpose */
        "INSERT INTO events(id, person, type, ts, props) VALUES"
        " (100, 2, 0, 1100, '{\"n\":100}'),"
        " (1, 1, 0, 1000, '{\"n\":1}'),"
        " (2, 2, 1, 1001, '{\"n\":2}'),"
        " (3, 1, 0, 999, '{\"n\":3}'),"
        " (5, 2, 2, 1005, NULL),"
        " (6, 1, 1, -5, '{\"n\":6}'),"
        " (9, 4294967295, 0, 9223372036854775807, '{\"n\":9}'),"
        " (10, 2, 2, 1010, ''),"
        " (11, 1, 7, -9223372036854775807 - 1, '{\"n\":11}'),"
        " (101, 1, 1, 1101, '{\"n\":101}');"
        "INSERT INTO message_ids(source, message_id, at) VALUES"
        " ('api', 'm-1', 100), ('import', 'file.csv:1', 50), ('api', 'm-2', 300),"
        " ('api', 'm-1', 200), ('api', 'an id with spaces', 150);");
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM sqlite_master WHERE name = 'events_person'"), 1);

    s = open_ok(f->dir);
    assert_dump(s, "attribute plan string 1\n"
                   "attribute age number 0\n"
                   "event_type 0 purchase\n"
                   "event_type 1 signup\n"
                   "event_type 2 refund\n"
                   "event_type 7 late\n"
                   "property 0 amount number\n"
                   "property 1 source string\n"
                   "person 1 101 {\"plan\":\"pro\"}\n"
                   "person 2 102 {}\n"
                   "person 4294967295 18446744073709551615 {\"big\":true}\n"
                   /* type 0: old ids 1, 3, 9, 100; type 1: 2, 6, 101; type 2: 5, 10; type 7: 11 */
                   "event 0 0 1 1000 {\"n\":1}\n"
                   "event 0 1 1 999 {\"n\":3}\n"
                   "event 0 2 4294967295 9223372036854775807 {\"n\":9}\n"
                   "event 0 3 2 1100 {\"n\":100}\n"
                   "event 1 0 2 1001 {\"n\":2}\n"
                   "event 1 1 1 -5 {\"n\":6}\n"
                   "event 1 2 1 1101 {\"n\":101}\n"
                   "event 2 0 2 1005 NULL/0\n"
                   "event 2 1 2 1010 \n"
                   "event 7 0 1 -9223372036854775808 {\"n\":11}\n"
                   /* every id, one callback each, in the order of the old rows */
                   "message api m-1 100\n"
                   "message import file.csv:1 50\n"
                   "message api m-2 300\n"
                   "message api m-1 200\n"
                   "message api an id with spaces 150\n");
    /* the since-window works on the migrated rows */
    assert_messages(s, 150, "message api m-2 300\n"
                            "message api m-1 200\n"
                            "message api an id with spaces 150\n");
    assert_int_equal(store_integrity_check(s), 0);
    store_close(s);

    assert_schema_current(f->dir);   /* events_person, message_ids and events_v2 are gone */
    /* one block per type: its rows are consecutive after migration 2 */
    assert_raw_text(f->dir, "SELECT group_concat((id >> 32) || '/' || (id & 4294967295) || '/' || n, ',')"
                    " FROM event_blocks", "0/0/4,1/0/3,2/0/2,7/0/1");
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM message_batches"), 5);
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM message_batches"
                             " WHERE typeof(ids) = 'blob'"), 5);
    assert_raw_text(f->dir, "SELECT value FROM meta WHERE key = 'note'", "kept");

    /* the store carries on: the next row of each type is free, a migrated key is
     * taken, and new batches load after the migrated ids */
    s = open_ok(f->dir);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 4, 2, 2000, "{\"n\":\"new\"}"), 0);
    assert_int_equal(INSERT_EVENT(s, 2, 2, 1, 2001, "{}"), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(INSERT_EVENT(s, 1, 2, 9, 9, "{\"dup\":1}"), SEGD_EIO);
    assert_int_equal(store_event_set_person(s, 0, 1, 2), 0);
    assert_int_equal(store_event_delete(s, 1, 0), 0);
    assert_int_equal(store_messages_put(s, "api", (const char *const[]){"n-1", "n-2"}, 2, 400), 0);
    store_close(s);

    s = open_ok(f->dir);   /* at version 4 now: migrations 2 to 4 do not run again */
    assert_dump(s, "attribute plan string 1\n"
                   "attribute age number 0\n"
                   "event_type 0 purchase\n"
                   "event_type 1 signup\n"
                   "event_type 2 refund\n"
                   "event_type 7 late\n"
                   "property 0 amount number\n"
                   "property 1 source string\n"
                   "person 1 101 {\"plan\":\"pro\"}\n"
                   "person 2 102 {}\n"
                   "person 4294967295 18446744073709551615 {\"big\":true}\n"
                   "event 0 0 1 1000 {\"n\":1}\n"
                   "event 0 1 2 999 {\"n\":3}\n"
                   "event 0 2 4294967295 9223372036854775807 {\"n\":9}\n"
                   "event 0 3 2 1100 {\"n\":100}\n"
                   "event 0 4 2 2000 {\"n\":\"new\"}\n"
                   "event 1 1 1 -5 {\"n\":6}\n"
                   "event 1 2 1 1101 {\"n\":101}\n"
                   "event 2 0 2 1005 NULL/0\n"
                   "event 2 1 2 1010 \n"
                   "event 2 2 1 2001 {}\n"
                   "event 7 0 1 -9223372036854775808 {\"n\":11}\n"
                   "message api m-1 100\n"
                   "message import file.csv:1 50\n"
                   "message api m-2 300\n"
                   "message api m-1 200\n"
                   "message api an id with spaces 150\n"
                   "message api n-1 400\n"
                   "message api n-2 400\n");
    store_close(s);
    assert_schema_current(f->dir);
}

/* An empty version-1 database (a segd 1 that never got data) migrates to the same
 * schema as a fresh open. */
static void test_migration_from_empty_v1(void **state)
{
    fixture *f = *state;
    char fresh[200];
    char *expected;
    store *s;

    make_v1_db(f->dir, "");
    s = open_ok(f->dir);
    assert_dump(s, "");
    store_close(s);
    assert_schema_current(f->dir);

    snprintf(fresh, sizeof fresh, "%s/fresh", f->root);
    s = open_ok(fresh);
    store_close(s);
    expected = raw_text(fresh, SCHEMA_OBJECTS_SQL);
    assert_raw_text(f->dir, SCHEMA_OBJECTS_SQL, expected);
    free(expected);
}

/* ---- migration from schema version 2 ---- */

/* Schema version 2's objects as migrations 1 and 2 left them, built by hand. */
static const char v2_schema[] =
    "CREATE TABLE people(id INTEGER PRIMARY KEY, public_id INTEGER NOT NULL, attrs TEXT NOT NULL);"
    "CREATE TABLE attributes(name TEXT PRIMARY KEY, type TEXT NOT NULL, declared INTEGER NOT NULL);"
    "CREATE TABLE event_types(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE properties(type INTEGER NOT NULL, name TEXT NOT NULL, ptype TEXT NOT NULL,"
    " PRIMARY KEY(type, name));"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE events(id INTEGER PRIMARY KEY, person INTEGER NOT NULL, ts INTEGER NOT NULL, props TEXT);"
    "CREATE TABLE message_batches(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, source TEXT NOT NULL,"
    " ids BLOB NOT NULL);"
    "CREATE INDEX message_batches_at ON message_batches(at);";

static void make_v2_db(const char *dir, const char *rows)
{
    make_old_db(dir, 2, v2_schema, rows);
}

static int count_events(void *ctx, int type, uint32_t row, uint32_t person, int64_t time_ms,
                        const char *props, size_t len)
{
    ++*(int *)ctx;
    return 0;
}

/* "event ..." lines of one type only, for stores too big to dump whole. */
struct type_dump {
    int type;
    uint32_t from, to;
    FILE *out;
};

static int dump_type_event(void *ctx, int type, uint32_t row, uint32_t person, int64_t time_ms,
                           const char *props, size_t len)
{
    struct type_dump *d = ctx;
    if (type == d->type && row >= d->from && row < d->to)
        dump_event(d->out, type, row, person, time_ms, props, len);
    return 0;
}

static void assert_type_dump(store *s, int type, uint32_t from, uint32_t to, const char *expected)
{
    char *text = NULL;
    size_t size = 0;
    struct type_dump d = {type, from, to, open_memstream(&text, &size)};
    assert_non_null(d.out);
    assert_int_equal(store_load_events(s, dump_type_event, &d), 0);
    fclose(d.out);
    assert_string_equal(text, expected);
    free(text);
}

/* Migration 3 packs version 2's events into blocks of consecutive rows of a type, at
 * most EVBLOCK_MAX_ROWS (1024) each; a gap (rows erased before) starts a new block.
 * Every event loads as before, and the store carries on over the blocks. */
static void test_migration_from_v2_packs_blocks(void **state)
{
    fixture *f = *state;
    store *s;
    int n = 0;

    make_v2_db(f->dir,
        "INSERT INTO people VALUES(1, 101, '{}');"
        "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 2499)"
        " INSERT INTO events SELECT x, x % 7, 1000 + x, '{\"i\":' || x || '}' FROM c;"
        "DELETE FROM events WHERE id BETWEEN 1500 AND 1509;"
        "INSERT INTO events VALUES((1 << 32) | 0, 4294967295, -1, '{}'),"
        " ((3 << 32) | 5, 2, 5, NULL), ((3 << 32) | 6, 3, 6, '');"
        "INSERT INTO message_batches(at, source, ids) VALUES(5, 'api', CAST('m-1' AS BLOB));");
    s = open_ok(f->dir);
    assert_int_equal(store_load_events(s, count_events, &n), 0);
    assert_int_equal(n, 2500 - 10 + 3);
    assert_type_dump(s, 0, 1022, 1026, "event 0 1022 0 2022 {\"i\":1022}\n"
                                       "event 0 1023 1 2023 {\"i\":1023}\n"
                                       "event 0 1024 2 2024 {\"i\":1024}\n"
                                       "event 0 1025 3 2025 {\"i\":1025}\n");
    assert_type_dump(s, 0, 1499, 1511, "event 0 1499 1 2499 {\"i\":1499}\n"
                                       "event 0 1510 5 2510 {\"i\":1510}\n");
    assert_type_dump(s, 1, 0, 10, "event 1 0 4294967295 -1 {}\n");
    assert_type_dump(s, 3, 0, 10, "event 3 5 2 5 NULL/0\n"
                                  "event 3 6 3 6 \n");
    assert_messages(s, 0, "message api m-1 5\n");
    store_close(s);
    assert_schema_current(f->dir);
    assert_raw_text(f->dir, "SELECT group_concat((id >> 32) || '/' || (id & 4294967295) || '/' || n, ',')"
                    " FROM event_blocks", "0/0/1024,0/1024/476,0/1510/990,1/0/1,3/5/2");

    /* appends go on after the last block, and may fill the gap up to the next block */
    s = open_ok(f->dir);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 2500, 9, 9, "{\"new\":1}"), 0);
    for (uint32_t row = 1500; row < 1510; row++)
        assert_int_equal(INSERT_EVENT(s, 0, row, 8, 8, "{}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 1510, 8, 8, "{}"), SEGD_EIO);   /* the next block's */
    assert_int_equal(INSERT_EVENT(s, 0, 1023, 8, 8, "{}"), SEGD_EIO);   /* inside a block */
    assert_int_equal(store_commit(s), 0);
    /* a merge and an erasure rewrite the migrated blocks they touch */
    assert_int_equal(store_events_set_person(s, (const store_event_key[]){{0, 1023}, {0, 1024}, {3, 6}}, 3, 42), 0);
    assert_int_equal(store_events_delete(s, (const store_event_key[]){{1, 0}, {0, 0}, {0, 2499}}, 3), 0);
    store_close(s);

    s = open_ok(f->dir);
    n = 0;
    assert_int_equal(store_load_events(s, count_events, &n), 0);
    assert_int_equal(n, 2500 - 10 + 3 + 11 - 3);
    assert_type_dump(s, 0, 0, 2, "event 0 1 1 1001 {\"i\":1}\n");
    assert_type_dump(s, 0, 1023, 1025, "event 0 1023 42 2023 {\"i\":1023}\n"
                                       "event 0 1024 42 2024 {\"i\":1024}\n");
    assert_type_dump(s, 0, 2498, 2501, "event 0 2498 6 3498 {\"i\":2498}\n"
                                       "event 0 2500 9 9 {\"new\":1}\n");
    assert_type_dump(s, 1, 0, 10, "");
    assert_type_dump(s, 3, 0, 10, "event 3 5 2 5 NULL/0\n"
                                  "event 3 6 42 6 \n");
    assert_int_equal(store_integrity_check(s), 0);
    store_close(s);
    /* type 1's only block held only the erased event: it is gone */
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM event_blocks WHERE id >> 32 = 1"), 0);
}

/* ---- migration from schema version 3 ---- */

/* Schema version 3's objects as migrations 1 to 3 left them, built by hand. */
static const char v3_schema[] =
    "CREATE TABLE people(id INTEGER PRIMARY KEY, public_id INTEGER NOT NULL, attrs TEXT NOT NULL);"
    "CREATE TABLE attributes(name TEXT PRIMARY KEY, type TEXT NOT NULL, declared INTEGER NOT NULL);"
    "CREATE TABLE event_types(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE properties(type INTEGER NOT NULL, name TEXT NOT NULL, ptype TEXT NOT NULL,"
    " PRIMARY KEY(type, name));"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE message_batches(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, source TEXT NOT NULL,"
    " ids BLOB NOT NULL);"
    "CREATE INDEX message_batches_at ON message_batches(at);"
    "CREATE TABLE event_blocks(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, data BLOB NOT NULL);";

/* Copies the event_blocks rows of FROM/segd.db into TO/segd.db: blocks in evblock's
 * format, written by the store itself, for a database built by hand. */
static void copy_event_blocks(const char *from_dir, const char *to_dir)
{
    char from_path[256], to_path[256];
    sqlite3 *from = NULL, *to = NULL;
    sqlite3_stmt *sel = NULL, *ins = NULL;
    int rc;

    snprintf(from_path, sizeof from_path, "%s/segd.db", from_dir);
    snprintf(to_path, sizeof to_path, "%s/segd.db", to_dir);
    assert_int_equal(sqlite3_open_v2(from_path, &from, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_open(to_path, &to), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(from, "SELECT id, n, data FROM event_blocks ORDER BY id", -1, &sel, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(to, "INSERT INTO event_blocks(id, n, data) VALUES(?1, ?2, ?3)", -1, &ins,
                                        NULL), SQLITE_OK);
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        assert_int_equal(sqlite3_bind_int64(ins, 1, sqlite3_column_int64(sel, 0)), SQLITE_OK);
        assert_int_equal(sqlite3_bind_int64(ins, 2, sqlite3_column_int64(sel, 1)), SQLITE_OK);
        assert_int_equal(sqlite3_bind_blob(ins, 3, sqlite3_column_blob(sel, 2), sqlite3_column_bytes(sel, 2),
                                           SQLITE_TRANSIENT), SQLITE_OK);
        assert_int_equal(sqlite3_step(ins), SQLITE_DONE);
        sqlite3_reset(ins);
    }
    assert_int_equal(rc, SQLITE_DONE);
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    assert_int_equal(sqlite3_close(from), SQLITE_OK);
    assert_int_equal(sqlite3_close(to), SQLITE_OK);
}

/* Migration 4 only adds the segments tables: a version-3 database keeps every row,
 * and its segments start empty with num and seq from 1. A migration 4 that fails
 * half-way (a table it creates exists already) leaves none of its tables. */
static void test_migration_from_v3(void **state)
{
    fixture *f = *state;
    char blocks_dir[200];
    char *before;
    segd_error err;
    store *s;
    int64_t num = 0, seq = 0;

    /* event blocks as the store writes them, from a store of their own */
    snprintf(blocks_dir, sizeof blocks_dir, "%s/blocks", f->root);
    s = open_ok(blocks_dir);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 0, 1, 1000, "{\"n\":0}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 1, 2, 1001, "{\"n\":1}"), 0);
    assert_int_equal(INSERT_EVENT(s, 3, 7, 1, 1002, "{}"), 0);
    assert_int_equal(store_commit(s), 0);
    store_close(s);

    make_old_db(f->dir, 3, v3_schema,
        "INSERT INTO people VALUES(1, 101, '{\"plan\":\"pro\"}'), (2, 102, '{}');"
        "INSERT INTO attributes VALUES('plan', 'string', 1);"
        "INSERT INTO event_types VALUES(0, 'purchase'), (3, 'signup');"
        "INSERT INTO properties VALUES(0, 'n', 'number');"
        "INSERT INTO meta VALUES('note', 'kept');"
        "INSERT INTO message_batches(at, source, ids) VALUES(5, 'api', CAST('m-1' AS BLOB));"
        /* a table of migration 4's, there already: the migration must fail */
        "CREATE TABLE segment_history(x);");
    copy_event_blocks(blocks_dir, f->dir);
    before = raw_text(f->dir, SCHEMA_OBJECTS_SQL);

    assert_null(store_open(f->dir, &err));
    assert_string_equal(err.code, "store_migration_failed");
    assert_non_null(strstr(err.message, "schema version 4"));
    assert_int_equal(raw_int(f->dir, "PRAGMA user_version"), 3);
    assert_raw_text(f->dir, SCHEMA_OBJECTS_SQL, before);   /* no segments, no segment_members ... */
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_sequence'"), 0);
    free(before);

    raw_exec(f->dir, "DROP TABLE segment_history");
    s = open_ok(f->dir);
    assert_dump(s, "attribute plan string 1\n"
                   "event_type 0 purchase\n"
                   "event_type 3 signup\n"
                   "property 0 n number\n"
                   "person 1 101 {\"plan\":\"pro\"}\n"
                   "person 2 102 {}\n"
                   "event 0 0 1 1000 {\"n\":0}\n"
                   "event 0 1 2 1001 {\"n\":1}\n"
                   "event 3 7 1 1002 {}\n"
                   "message api m-1 5\n");
    /* the new tables work, from num 1 and seq 1 */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_a", "{}", &num), 0);
    assert_int_equal(num, 1);
    assert_int_equal(store_member_enter(s, num, 1, 2000, 1), 0);
    assert_int_equal(store_transition_add(s, num, 1, 101, 1, 2000, 1, NULL, &seq), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(INSERT_EVENT(s, 0, 2, 1, 2001, "{}"), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_integrity_check(s), 0);
    store_close(s);
    assert_schema_current(f->dir);
    assert_raw_text(f->dir, "SELECT value FROM meta WHERE key = 'note'", "kept");

    s = open_ok(f->dir);   /* at version 5: migrations 4 and 5 do not run again */
    assert_dump(s, "attribute plan string 1\n"
                   "event_type 0 purchase\n"
                   "event_type 3 signup\n"
                   "property 0 n number\n"
                   "person 1 101 {\"plan\":\"pro\"}\n"
                   "person 2 102 {}\n"
                   "event 0 0 1 1000 {\"n\":0}\n"
                   "event 0 1 2 1001 {\"n\":1}\n"
                   "event 0 2 1 2001 {}\n"
                   "event 3 7 1 1002 {}\n"
                   "message api m-1 5\n"
                   "segment 1 seg_a {} 0 -\n"
                   "member 1 1 2000 1\n"
                   "transition 1 1 1 101 1 2000 1 NULL\n");
    store_close(s);
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
    assert_int_equal(INSERT_EVENT(s, 2, 7, 2, 3000, props), 0);
    assert_int_equal(store_event_insert(s, 1, 0, 1, -5, NULL, 0), 0);
    assert_int_equal(INSERT_EVENT(s, 1, 4, UINT32_MAX, INT64_MAX, ""), 0);
    assert_int_equal(store_event_insert(s, 9, 3, 9, INT64_MIN, props, 12), 0);
    /* the extremes of the key: (0, 0) is rowid 0, (INT_MAX, UINT32_MAX) is INT64_MAX */
    assert_int_equal(INSERT_EVENT(s, INT32_MAX, UINT32_MAX, 5, 6, "{}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, UINT32_MAX, 4, 5, "{}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 0, 3, 4, "{}"), 0);
    /* a type has no negative index; a key is stored once (the engine never reuses a row) */
    assert_int_equal(INSERT_EVENT(s, -1, 0, 1, 1, "{}"), SEGD_EINVAL);
    assert_int_equal(INSERT_EVENT(s, 2, 7, 8, 8, "{\"dup\":1}"), SEGD_EIO);
    assert_int_equal(store_commit(s), 0);
    store_close(s);

    /* key order (type, then row), not arrival order; NULL props come back as (NULL, 0) */
    s = open_ok(f->dir);
    assert_dump(s, "event 0 0 3 4 {}\n"
                   "event 0 4294967295 4 5 {}\n"
                   "event 1 0 1 -5 NULL/0\n"
                   "event 1 4 4294967295 9223372036854775807 \n"
                   "event 2 7 2 3000 {\"amount\":12.5,\"sku\":\"A-123\"}\n"
                   "event 9 3 9 -9223372036854775808 {\"amount\":12\n"
                   "event 2147483647 4294967295 5 6 {}\n");
    store_close(s);
    /* a block's rowid is type << 32 | its first row, as store.h documents: here each
     * event started a block of its own, as none continues the row before it */
    assert_int_equal(raw_int(f->dir, "SELECT n FROM event_blocks WHERE id = (9 << 32) | 3"), 1);
    assert_int_equal(raw_int(f->dir, "SELECT n FROM event_blocks WHERE id = 0"), 1);
    assert_int_equal(raw_int(f->dir, "SELECT max(id) = 9223372036854775807 FROM event_blocks"), 1);
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM event_blocks"), 7);
}

/* Interleaved appends to several types' logs (as ingest writes them, one message at a
 * time) load grouped by type and ordered by row within each type, whatever the order
 * of the inserts and of the transactions, with holes left by the engine kept. */
static void test_events_load_grouped_by_type_then_row(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(INSERT_EVENT(s, 2, 0, 1, 10, "{\"i\":1}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 0, 2, 11, "{\"i\":2}"), 0);
    assert_int_equal(INSERT_EVENT(s, 1, 0, 1, 12, "{\"i\":3}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 1, 1, 13, "{\"i\":4}"), 0);
    assert_int_equal(INSERT_EVENT(s, 2, 1, 3, 14, "{\"i\":5}"), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(INSERT_EVENT(s, 1, 2, 2, 15, "{\"i\":6}"), 0);   /* row 1 of type 1 is a hole */
    assert_int_equal(INSERT_EVENT(s, 0, 3, 1, 16, "{\"i\":7}"), 0);   /* so is row 2 of type 0 */
    assert_int_equal(INSERT_EVENT(s, 10, 0, 3, 17, "{\"i\":8}"), 0);  /* a new type, after a gap */
    assert_int_equal(INSERT_EVENT(s, 2, 2, 1, 18, "{\"i\":9}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 4, 3, 19, "{\"i\":10}"), 0);
    assert_int_equal(store_commit(s), 0);
    store_close(s);

    s = open_ok(f->dir);
    assert_dump(s, "event 0 0 2 11 {\"i\":2}\n"
                   "event 0 1 1 13 {\"i\":4}\n"
                   "event 0 3 1 16 {\"i\":7}\n"
                   "event 0 4 3 19 {\"i\":10}\n"
                   "event 1 0 1 12 {\"i\":3}\n"
                   "event 1 2 2 15 {\"i\":6}\n"
                   "event 2 0 1 10 {\"i\":1}\n"
                   "event 2 1 3 14 {\"i\":5}\n"
                   "event 2 2 1 18 {\"i\":9}\n"
                   "event 10 0 3 17 {\"i\":8}\n");
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

/* One request's ids are one row (ids NUL-separated, no NUL after the last), loaded
 * back one callback per id in the order given, each with its batch's source and
 * time; n == 0 writes no row. */
static void test_messages_put_one_row_per_request(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    const char *req1[] = {"a", "bb", "c"};
    const char *req2[] = {"only"};
    const char *req3[] = {"b", "a", "b"};   /* order kept; duplicates are stored */

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_messages_put(s, "api", req1, 3, 100), 0);
    assert_int_equal(store_messages_put(s, "import", req2, 1, 300), 0);
    assert_int_equal(store_messages_put(s, "api", req1, 0, 250), 0);   /* nothing */
    assert_int_equal(store_messages_put(s, "api", req3, 3, 200), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_messages_put(s, "api", req2, 0, 250), 0);   /* autocommit: nothing */

    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM message_batches"), 3);
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM message_batches"
                             " WHERE typeof(ids) = 'blob'"), 3);
    assert_raw_text(f->dir, "SELECT group_concat(source || ' ' || at || ' ' || hex(ids), ',')"
                    " FROM (SELECT * FROM message_batches ORDER BY id)",
                    "api 100 6100626200" "63,"   /* a NUL bb NUL c */
                    "import 300 6F6E6C79,"
                    "api 200 6200610062");
    /* in row order (the order of the requests), not by time */
    assert_messages(s, INT64_MIN, "message api a 100\n"
                                  "message api bb 100\n"
                                  "message api c 100\n"
                                  "message import only 300\n"
                                  "message api b 200\n"
                                  "message api a 200\n"
                                  "message api b 200\n");
    store_close(s);
}

/* Ids longer than the first scratch buffer, then a short batch after them (the
 * buffer is reused: nothing of the long ids may leak into it). */
static void test_messages_put_long_ids(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    char *big1 = xmalloc(5001), *big2 = xmalloc(3001);
    const char *long_ids[] = {big1, "mid", big2};
    const char *short_ids[] = {"p", "q"};
    char *expected = NULL;
    size_t size = 0;
    FILE *out;

    memset(big1, 'x', 5000);
    big1[5000] = 0;
    memset(big2, 'y', 3000);
    big2[3000] = 0;
    assert_int_equal(store_messages_put(s, "api", long_ids, 3, 1), 0);
    assert_int_equal(store_messages_put(s, "api", short_ids, 2, 2), 0);
    assert_raw_text(f->dir, "SELECT group_concat(length(ids)) FROM (SELECT ids FROM message_batches"
                    " ORDER BY id)", "8005,3");

    out = open_memstream(&expected, &size);
    assert_non_null(out);
    fprintf(out, "message api %s 1\nmessage api mid 1\nmessage api %s 1\n", big1, big2);
    fprintf(out, "message api p 2\nmessage api q 2\n");
    fclose(out);
    store_close(s);
    s = open_ok(f->dir);
    assert_messages(s, INT64_MIN, expected);
    store_close(s);
    free(expected);
    free(big1);
    free(big2);
}

/* The since-window and pruning go by the batch's `at`: a batch's ids are all in or
 * all out. */
static void test_messages_load_since_and_prune(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_messages_put(s, "api", (const char *const[]){"a1", "a2"}, 2, 100), 0);
    assert_int_equal(store_messages_put(s, "api", (const char *const[]){"b1", "b2", "b3"}, 3, 300), 0);
    assert_int_equal(store_messages_put(s, "import", (const char *const[]){"c1"}, 1, 200), 0);
    assert_int_equal(store_messages_put(s, "api", (const char *const[]){"d1", "d2"}, 2, 400), 0);
    assert_int_equal(store_commit(s), 0);

    assert_messages(s, 200, "message api b1 300\n"     /* at >= since, in row order */
                            "message api b2 300\n"
                            "message api b3 300\n"
                            "message import c1 200\n"
                            "message api d1 400\n"
                            "message api d2 400\n");
    assert_messages(s, 201, "message api b1 300\n"
                            "message api b2 300\n"
                            "message api b3 300\n"
                            "message api d1 400\n"
                            "message api d2 400\n");
    assert_messages(s, 401, "");

    /* at < before goes; at == before stays. Pruning is not a counted write. */
    store_fail_nth_write(s, 1);
    assert_int_equal(store_prune_messages(s, 300), 0);   /* outside a transaction: autocommit */
    assert_int_equal(PUT_PERSON(s, 1, 1, "{}"), SEGD_EIO);  /* the fault was still armed */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_prune_messages(s, 1000), 0);
    assert_int_equal(store_rollback(s), 0);              /* undone */
    store_close(s);

    s = open_ok(f->dir);
    assert_dump(s, "message api b1 300\n"
                   "message api b2 300\n"
                   "message api b3 300\n"
                   "message api d1 400\n"
                   "message api d2 400\n");
    store_close(s);
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM message_batches"), 2);
}

/* n == 0 returns before the fault check: it is not a counted write. */
static void test_messages_put_of_nothing_is_not_a_write(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    const char *ids[] = {"m"};

    store_fail_nth_write(s, 1);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_messages_put(s, "api", ids, 0, 1), 0);
    assert_int_equal(store_messages_put(s, "api", ids, 1, 2), SEGD_EIO);   /* the fault fires here */
    assert_int_equal(store_messages_put(s, "api", ids, 1, 3), 0);
    assert_int_equal(store_commit(s), 0);

    store_fail_nth_write(s, 2);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_messages_put(s, "api", ids, 0, 4), 0);
    assert_int_equal(store_messages_put(s, "api", ids, 1, 5), 0);          /* 1st */
    assert_int_equal(store_messages_put(s, "api", ids, 0, 6), 0);
    assert_int_equal(store_messages_put(s, "api", ids, 1, 7), SEGD_EIO);   /* 2nd */
    assert_int_equal(store_commit(s), 0);
    store_close(s);

    s = open_ok(f->dir);
    assert_dump(s, "message api m 3\nmessage api m 5\n");
    store_close(s);
}

static int stop_after_two(void *ctx, uint32_t id, uint64_t public_id, const char *attrs, size_t len)
{
    int *seen = ctx;
    return ++*seen == 2 ? 77 : 0;
}

static int stop_events_after_two(void *ctx, int type, uint32_t row, uint32_t person,
                                 int64_t time_ms, const char *props, size_t len)
{
    int *seen = ctx;
    return ++*seen == 2 ? 77 : 0;
}

static int stop_messages_after_two(void *ctx, const char *source, const char *message_id,
                                   int64_t at_ms)
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
    for (uint32_t id = 1; id <= 5; id++) {
        assert_int_equal(PUT_PERSON(s, id, id, "{}"), 0);
        assert_int_equal(INSERT_EVENT(s, (int)id % 2, id, id, id, "{}"), 0);
    }
    assert_int_equal(store_messages_put(s, "api", (const char *const[]){"x", "y", "z"}, 3, 1), 0);
    assert_int_equal(store_messages_put(s, "api", (const char *const[]){"w"}, 1, 2), 0);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_load_people(s, stop_after_two, &seen), 77);
    assert_int_equal(seen, 2);
    seen = 0;
    assert_int_equal(store_load_events(s, stop_events_after_two, &seen), 77);
    assert_int_equal(seen, 2);
    seen = 0;   /* stops inside a batch: its third id is not given */
    assert_int_equal(store_load_messages(s, INT64_MIN, stop_messages_after_two, &seen), 77);
    assert_int_equal(seen, 2);
    assert_messages(s, 2, "message api w 2\n");   /* reset, and rebound */
    /* the statement was reset: it loads from the start again and writes still commit */
    seen = 0;
    assert_int_equal(store_load_people(s, stop_after_two, &seen), 77);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 6, 6, "{}"), 0);
    assert_int_equal(store_commit(s), 0);
    store_close(s);
}

static void test_count_people(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    assert_int_equal(store_count_people(s), 0);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 1, 10, "{}"), 0);
    assert_int_equal(PUT_PERSON(s, 7, 70, "{}"), 0);
    assert_int_equal(PUT_PERSON(s, 7, 71, "{}"), 0);     /* an update is not a second person */
    assert_int_equal(store_count_people(s), 2);          /* inside the transaction too */
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_person_delete(s, 1), 0);
    assert_int_equal(store_count_people(s), 1);
    store_close(s);
}

static void test_person_delete_leaves_their_events(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 1, 10, "{}"), 0);
    assert_int_equal(PUT_PERSON(s, 2, 20, "{}"), 0);
    assert_int_equal(PUT_PERSON(s, 3, 30, "{}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 0, 1, 1, "{}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 1, 2, 2, "{}"), 0);
    assert_int_equal(INSERT_EVENT(s, 1, 0, 1, 3, "{}"), 0);
    assert_int_equal(store_commit(s), 0);

    /* only the person's row goes: erasure deletes their events one by one first */
    assert_int_equal(store_person_delete(s, 1), 0);   /* autocommit */
    assert_int_equal(store_person_delete(s, 99), 0);  /* missing is not an error */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_person_delete(s, 2), 0);
    assert_int_equal(store_rollback(s), 0);           /* undone */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_person_delete(s, 3), 0);
    assert_int_equal(store_commit(s), 0);
    store_close(s);

    s = open_ok(f->dir);
    assert_dump(s, "person 2 20 {}\n"
                   "event 0 0 1 1 {}\n"
                   "event 0 1 2 2 {}\n"
                   "event 1 0 1 3 {}\n");
    store_close(s);
}

static void test_event_set_person_and_delete_touch_one_event(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 0, 1, 1, "{\"n\":1}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 1, 1, 2, "{\"n\":2}"), 0);
    assert_int_equal(INSERT_EVENT(s, 1, 0, 1, 3, "{\"n\":3}"), 0);   /* same row, other type */
    assert_int_equal(INSERT_EVENT(s, 1, 1, 3, 4, "{\"n\":4}"), 0);
    assert_int_equal(INSERT_EVENT(s, 2, 0, 1, 5, "{\"n\":5}"), 0);
    assert_int_equal(store_commit(s), 0);

    /* a merge moves exactly the events it names, not all of the person's */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_event_set_person(s, 0, 1, 2), 0);
    assert_int_equal(store_event_set_person(s, 2, 0, 2), 0);
    assert_int_equal(store_event_set_person(s, 0, 9, 2), 0);    /* missing row: no-op */
    assert_int_equal(store_event_set_person(s, 5, 0, 2), 0);    /* missing type: no-op */
    assert_int_equal(store_event_set_person(s, 1, 1, 3), 0);    /* to its own person */
    assert_int_equal(store_commit(s), 0);
    assert_dump(s, "event 0 0 1 1 {\"n\":1}\n"
                   "event 0 1 2 2 {\"n\":2}\n"
                   "event 1 0 1 3 {\"n\":3}\n"
                   "event 1 1 3 4 {\"n\":4}\n"
                   "event 2 0 2 5 {\"n\":5}\n");

    /* an erasure deletes exactly the events it names; the key includes the type */
    assert_int_equal(store_event_delete(s, 0, 0), 0);           /* autocommit */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_event_delete(s, 2, 0), 0);
    assert_int_equal(store_event_delete(s, 2, 0), 0);           /* again: missing, no error */
    assert_int_equal(store_event_delete(s, 7, 3), 0);           /* never existed */
    assert_int_equal(store_event_set_person(s, 2, 0, 9), 0);    /* deleted: no-op */
    assert_int_equal(store_event_set_person(s, -1, 0, 9), SEGD_EINVAL);  /* no such key */
    assert_int_equal(store_event_delete(s, -1, 0), SEGD_EINVAL);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_event_delete(s, 1, 1), 0);
    assert_int_equal(store_event_set_person(s, 1, 0, 4), 0);
    assert_int_equal(store_rollback(s), 0);                     /* both undone */
    store_close(s);

    s = open_ok(f->dir);
    assert_dump(s, "event 0 1 2 2 {\"n\":2}\n"
                   "event 1 0 1 3 {\"n\":3}\n"
                   "event 1 1 3 4 {\"n\":4}\n");
    store_close(s);
}

/* Inside a transaction the events of a type gather into blocks of up to 1024 rows,
 * written at COMMIT; a taken key is refused also while it waits; ROLLBACK TO drops
 * what its request appended, also after a merge wrote the waiting blocks; erasing
 * every event of a block deletes the block. */
static void test_events_gather_into_blocks(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    store_event_key keys[52];
    int n = 0;

    assert_int_equal(store_begin(s), 0);
    for (uint32_t row = 0; row < 2100; row++) {
        assert_int_equal(INSERT_EVENT(s, 2, row, row % 10, row, "{\"a\":1}"), 0);
        if (row % 100 == 0)
            assert_int_equal(store_event_insert(s, 5, row / 100, 1, row, NULL, 0), 0);
    }
    assert_int_equal(INSERT_EVENT(s, 2, 5, 1, 1, "{}"), SEGD_EIO);       /* waiting, taken */
    assert_int_equal(INSERT_EVENT(s, 2, 2099, 1, 1, "{}"), SEGD_EIO);
    assert_int_equal(store_commit(s), 0);
    assert_raw_text(f->dir, "SELECT group_concat((id >> 32) || '/' || (id & 4294967295) || '/' || n, ',')"
                    " FROM event_blocks", "2/0/1024,2/1024/1024,2/2048/52,5/0/21");

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_savepoint(s), 0);                             /* request 1: kept */
    assert_int_equal(INSERT_EVENT(s, 2, 2100, 7, 7, "{\"r\":1}"), 0);
    assert_int_equal(store_release(s), 0);
    assert_int_equal(store_savepoint(s), 0);                             /* request 2: undone */
    assert_int_equal(INSERT_EVENT(s, 2, 2101, 8, 8, "{\"r\":2}"), 0);
    assert_int_equal(store_event_set_person(s, 2, 2100, 9), 0);          /* writes the waiting runs */
    assert_int_equal(INSERT_EVENT(s, 2, 2102, 8, 8, "{\"r\":2}"), 0);
    assert_int_equal(store_rollback_to(s), 0);
    assert_int_equal(store_savepoint(s), 0);                             /* request 3: kept */
    assert_int_equal(INSERT_EVENT(s, 2, 2101, 3, 3, "{\"r\":3}"), 0);   /* the row is free again */
    assert_int_equal(store_release(s), 0);
    assert_int_equal(store_commit(s), 0);
    assert_type_dump(s, 2, 2099, 2200, "event 2 2099 9 2099 {\"a\":1}\n"
                                       "event 2 2100 7 7 {\"r\":1}\n"
                                       "event 2 2101 3 3 {\"r\":3}\n");

    /* erase the 52 events of block 2/2048: the block goes, the others stay */
    for (uint32_t i = 0; i < 52; i++)
        keys[i] = (store_event_key){2, 2048 + i};
    assert_int_equal(store_events_delete(s, keys, 52), 0);
    assert_int_equal(store_load_events(s, count_events, &n), 0);
    assert_int_equal(n, 2048 + 21 + 2);
    store_close(s);
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM event_blocks WHERE id = (2 << 32) | 2048"), 0);

    /* a damaged block is an error of the load, not a silent loss */
    raw_exec(f->dir, "UPDATE event_blocks SET data = x'0100000002000000' WHERE id = (5 << 32)");
    s = open_ok(f->dir);
    assert_int_equal(store_load_events(s, count_events, &n), SEGD_EIO);
    store_close(s);
}

/* ---- segments ---- */

/* What a read gives, as text (the dump_* lines); caller frees. */
struct read_text {
    char *text;
    size_t size;
    FILE *out;
};

static void read_text_open(struct read_text *r)
{
    r->text = NULL;
    r->out = open_memstream(&r->text, &r->size);
    assert_non_null(r->out);
}

/* Closes the stream and compares; frees the text. */
static void read_text_check(struct read_text *r, const char *expected)
{
    fclose(r->out);
    assert_string_equal(r->text, expected);
    free(r->text);
}

static void assert_transitions(store *s, int64_t num, int64_t person, int64_t before_seq, int limit,
                               const char *expected)
{
    struct read_text r;
    read_text_open(&r);
    assert_int_equal(store_read_transitions(s, num, person, before_seq, limit, dump_transition, r.out), 0);
    read_text_check(&r, expected);
}

static void assert_outbox(store *s, int64_t after_seq, int limit, const char *expected)
{
    struct read_text r;
    read_text_open(&r);
    assert_int_equal(store_read_outbox(s, after_seq, limit, dump_transition, r.out), 0);
    read_text_check(&r, expected);
}

static void assert_memberships(store *s, uint32_t person, const char *expected)
{
    struct read_text r;
    read_text_open(&r);
    assert_int_equal(store_read_memberships(s, person, dump_member, r.out), 0);
    read_text_check(&r, expected);
}

static void assert_history(store *s, int64_t num, int64_t since_ms, const char *expected)
{
    struct read_text r;
    read_text_open(&r);
    assert_int_equal(store_read_history(s, num, since_ms, dump_history, r.out), 0);
    read_text_check(&r, expected);
}

/* "day DAY_MS ENTERED EXITED" */
static int dump_day(void *ctx, int64_t day_ms, uint64_t entered, uint64_t exited)
{
    fprintf(ctx, "day %lld %llu %llu\n", (long long)day_ms, (unsigned long long)entered,
            (unsigned long long)exited);
    return 0;
}

static void assert_daily(store *s, int64_t num, int64_t since_ms, const char *expected)
{
    struct read_text r;
    read_text_open(&r);
    assert_int_equal(store_read_daily_counts(s, num, since_ms, dump_day, r.out), 0);
    read_text_check(&r, expected);
}

static int stop_segments_after_two(void *ctx, int64_t num, const char *id, const char *definition, size_t len,
                                   int64_t cached_at, const void *cached, size_t cached_len)
{
    return ++*(int *)ctx == 2 ? 77 : 0;
}

static int stop_members_after_two(void *ctx, int64_t num, uint32_t person, int64_t entered_at, int cause)
{
    return ++*(int *)ctx == 2 ? 77 : 0;
}

static int stop_transitions_after_two(void *ctx, const store_transition *t)
{
    return ++*(int *)ctx == 2 ? 77 : 0;
}

static int stop_history_after_one(void *ctx, int64_t at, uint64_t size, int kind)
{
    return ++*(int *)ctx == 1 ? 77 : 0;
}

static int stop_days_after_one(void *ctx, int64_t day_ms, uint64_t entered, uint64_t exited)
{
    return ++*(int *)ctx == 1 ? 77 : 0;
}

/* A segment keeps its num when its definition is replaced; a num is never given
 * again, after a delete (of the newest or of an older one), also to the same id,
 * also after a restart. Updates take no num (no gaps from re-puts). */
/* Member checkpoints (schema 5): none until put (seq -1), then the bytes and the seq;
 * a segment's transitions after a seq come back oldest first, of that segment only;
 * the last seq counts every transition. */
typedef struct checkpoint_seen {
    char text[512];
} checkpoint_seen;

static int dump_checkpoint(void *ctx, int64_t num, const void *data, size_t len, int64_t seq)
{
    checkpoint_seen *c = ctx;
    size_t used = strlen(c->text);
    snprintf(c->text + used, sizeof c->text - used, "%lld:%.*s:%lld;", (long long)num, (int)len,
             data ? (const char *)data : "", (long long)seq);
    return 0;
}

static int dump_after(void *ctx, const store_transition *t)
{
    checkpoint_seen *c = ctx;
    size_t used = strlen(c->text);
    snprintf(c->text + used, sizeof c->text - used, "%lld/%u/%d;", (long long)t->seq, t->person, t->dir);
    return 0;
}

static void test_member_checkpoints(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    int64_t a, b, seq = -7;
    assert_int_equal(store_last_transition_seq(s, &seq), 0);
    assert_int_equal(seq, 0);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_a", "{}", &a), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_b", "{}", &b), 0);
    checkpoint_seen c = { "" };
    assert_int_equal(store_load_checkpoints(s, dump_checkpoint, &c), 0);
    assert_string_equal(c.text, "1::-1;2::-1;");
    assert_int_equal(store_transition_add(s, a, 5, 105, 1, 10, 1, NULL, NULL), 0);
    assert_int_equal(store_transition_add(s, b, 6, 106, 1, 11, 1, NULL, NULL), 0);
    assert_int_equal(store_segment_members_put(s, a, "AAA", 3, 1), 0);
    assert_int_equal(store_transition_add(s, a, 7, 107, 1, 12, 2, NULL, NULL), 0);
    assert_int_equal(store_transition_add(s, a, 5, 105, 2, 13, 2, NULL, NULL), 0);
    assert_int_equal(store_commit(s), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_load_checkpoints(s, dump_checkpoint, &c), 0);
    assert_string_equal(c.text, "1:AAA:1;2::-1;");
    memset(&c, 0, sizeof c);
    assert_int_equal(store_load_transitions_after(s, a, 1, dump_after, &c), 0);
    assert_string_equal(c.text, "3/7/1;4/5/2;");
    memset(&c, 0, sizeof c);
    assert_int_equal(store_load_transitions_after(s, b, 0, dump_after, &c), 0);
    assert_string_equal(c.text, "2/6/1;");
    assert_int_equal(store_last_transition_seq(s, &seq), 0);
    assert_int_equal(seq, 4);
    /* a rolled-back checkpoint leaves the committed one */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_segment_members_put(s, a, "BB", 2, 4), 0);
    assert_int_equal(store_rollback(s), 0);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_load_checkpoints(s, dump_checkpoint, &c), 0);
    assert_string_equal(c.text, "1:AAA:1;2::-1;");
    /* and the write counts for the fault hook */
    assert_int_equal(store_begin(s), 0);
    store_fail_nth_write(s, 1);
    assert_int_equal(store_segment_members_put(s, a, "BB", 2, 4), SEGD_EIO);
    assert_int_equal(store_rollback(s), 0);
    store_close(s);
}

static void test_segment_put_keeps_and_never_reuses_num(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    int64_t num = -1;

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_a", "{\"v\":1}", &num), 0);
    assert_int_equal(num, 1);
    assert_int_equal(PUT_SEGMENT(s, "seg_b", "{\"v\":1}", &num), 0);
    assert_int_equal(num, 2);
    for (int i = 0; i < 3; i++) {
        num = -1;
        assert_int_equal(PUT_SEGMENT(s, "seg_a", "{\"v\":2}", &num), 0);
        assert_int_equal(num, 1);
    }
    assert_int_equal(PUT_SEGMENT(s, "seg_c", "{\"v\":1}", &num), 0);
    assert_int_equal(num, 3);
    assert_int_equal(PUT_SEGMENT(s, "seg_b", "{\"v\":2}", NULL), 0);   /* num may be NULL */
    assert_int_equal(store_segment_put(s, NULL, "{}", 2, &num), SEGD_EINVAL);
    assert_int_equal(store_segment_put(s, "seg_x", NULL, 0, &num), SEGD_EINVAL);
    /* the definition is (pointer, length): what follows is not stored */
    assert_int_equal(store_segment_put(s, "seg_d", "{\"v\":1}TRAILING", 7, &num), 0);
    assert_int_equal(num, 4);
    assert_int_equal(store_commit(s), 0);
    assert_dump(s, "segment 1 seg_a {\"v\":2} 0 -\n"
                   "segment 2 seg_b {\"v\":2} 0 -\n"
                   "segment 3 seg_c {\"v\":1} 0 -\n"
                   "segment 4 seg_d {\"v\":1} 0 -\n");

    /* deleting the newest does not give its num back; nor does deleting an older one */
    assert_int_equal(store_segment_delete(s, 4), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_e", "{}", &num), 0);
    assert_int_equal(num, 5);
    assert_int_equal(store_segment_delete(s, 1), 0);
    assert_int_equal(store_segment_delete(s, 1), 0);     /* missing is not an error */
    assert_int_equal(store_segment_delete(s, 999), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_a", "{\"v\":3}", &num), 0);
    assert_int_equal(num, 6);
    store_close(s);

    s = open_ok(f->dir);
    assert_int_equal(store_segment_delete(s, 6), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_f", "{}", &num), 0);
    assert_int_equal(num, 7);
    assert_dump(s, "segment 2 seg_b {\"v\":2} 0 -\n"
                   "segment 3 seg_c {\"v\":1} 0 -\n"
                   "segment 5 seg_e {} 0 -\n"
                   "segment 7 seg_f {} 0 -\n");
    int seen = 0;
    assert_int_equal(store_load_segments(s, stop_segments_after_two, &seen), 77);
    assert_int_equal(seen, 2);
    store_close(s);
}

/* Two segments with members, transitions, history and a snapshot each. */
static void two_full_segments(store *s)
{
    int64_t a, b;
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_a", "{\"a\":1}", &a), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_b", "{\"b\":1}", &b), 0);
    assert_int_equal(store_segment_cached_put(s, a, 50, "AA", 2), 0);
    assert_int_equal(store_segment_cached_put(s, b, 60, "BB", 2), 0);
    for (uint32_t p = 1; p <= 3; p++) {
        assert_int_equal(store_member_enter(s, a, p, 100 + p, 1), 0);
        assert_int_equal(store_member_enter(s, b, p, 200 + p, 2), 0);
        assert_int_equal(store_transition_add(s, a, p, 1000 + p, 1, 100 + p, 1, NULL, NULL), 0);
        assert_int_equal(store_transition_add(s, b, p, 1000 + p, 1, 200 + p, 2, "x", NULL), 0);
    }
    assert_int_equal(store_history_add(s, a, 3600000, 3, 1), 0);
    assert_int_equal(store_history_add(s, b, 3600000, 3, 1), 0);
    assert_int_equal(store_commit(s), 0);
}

static void test_segment_delete_removes_its_rows_only(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    two_full_segments(s);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_segment_delete(s, 1), 0);
    assert_int_equal(store_commit(s), 0);
    assert_dump(s, "segment 2 seg_b {\"b\":1} 60 4242\n"
                   "  history 3600000 3 1\n"
                   "member 2 1 201 2\n"
                   "member 2 2 202 2\n"
                   "member 2 3 203 2\n"
                   "transition 2 2 1 1001 1 201 2 x\n"
                   "transition 4 2 2 1002 1 202 2 x\n"
                   "transition 6 2 3 1003 1 203 2 x\n");
    assert_int_equal(store_read_member(s, 1, 1, NULL, NULL), 0);
    assert_memberships(s, 1, "member 2 1 201 2\n");
    assert_history(s, 1, INT64_MIN, "");
    assert_daily(s, 1, INT64_MIN, "");
    store_close(s);
    for (int i = 0; i < 4; i++) {
        static const char *const sql[] = {
            "SELECT count(*) FROM segments WHERE num = 1",
            "SELECT count(*) FROM segment_members WHERE seg = 1",
            "SELECT count(*) FROM segment_transitions WHERE seg = 1",
            "SELECT count(*) FROM segment_history WHERE seg = 1",
        };
        assert_int_equal(raw_int(f->dir, sql[i]), 0);
    }
}

/* Members load by num then person; entering again replaces entered_at and cause;
 * exit removes one row; reads give one row or a person's rows by num. */
static void test_members_enter_exit_and_load_order(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    int64_t entered_at = -1;
    int cause = -1, seen = 0;

    assert_int_equal(store_begin(s), 0);
    /* out of order on purpose; nums need no segments row */
    assert_int_equal(store_member_enter(s, 3, 7, 300, 1), 0);
    assert_int_equal(store_member_enter(s, 1, UINT32_MAX, -5, 2), 0);
    assert_int_equal(store_member_enter(s, 1, 7, 100, 1), 0);
    assert_int_equal(store_member_enter(s, 2, 0, 200, 3), 0);
    assert_int_equal(store_member_enter(s, 1, 2, 101, 4), 0);
    assert_int_equal(store_member_enter(s, 3, 7, 301, 2), 0);   /* again: replaced */
    assert_int_equal(store_member_enter(s, 2, 7, 250, 1), 0);
    assert_int_equal(store_member_exit(s, 2, 7), 0);
    assert_int_equal(store_member_exit(s, 2, 7), 0);            /* missing is not an error */
    assert_int_equal(store_member_exit(s, 9, 9), 0);
    assert_int_equal(store_commit(s), 0);

    assert_dump(s, "member 1 2 101 4\n"
                   "member 1 7 100 1\n"
                   "member 1 4294967295 -5 2\n"
                   "member 2 0 200 3\n"
                   "member 3 7 301 2\n");
    assert_int_equal(store_read_member(s, 3, 7, &entered_at, &cause), 1);
    assert_int_equal(entered_at, 301);
    assert_int_equal(cause, 2);
    assert_int_equal(store_read_member(s, 1, UINT32_MAX, &entered_at, &cause), 1);
    assert_int_equal(entered_at, -5);
    assert_int_equal(store_read_member(s, 2, 7, &entered_at, &cause), 0);
    assert_int_equal(entered_at, -5);                            /* untouched when absent */
    assert_int_equal(store_read_member(s, 1, 2, NULL, NULL), 1);
    assert_memberships(s, 7, "member 1 7 100 1\n"
                             "member 3 7 301 2\n");
    assert_memberships(s, 5, "");
    assert_int_equal(store_load_members(s, stop_members_after_two, &seen), 77);
    assert_int_equal(seen, 2);
    seen = 0;
    assert_int_equal(store_read_memberships(s, 7, stop_members_after_two, &seen), 77);
    assert_int_equal(seen, 2);
    /* a stopped read releases the connection: reads go on */
    assert_int_equal(store_read_member(s, 2, 0, NULL, NULL), 1);
    store_close(s);
}

/* Transitions of three people in two segments, seq 1..7:
 *   seq  num person dir at
 *    1    1   1     1   1000
 *    2    1   2     1   1001
 *    3    2   1     1   1002
 *    4    1   1     2   2000
 *    5    2   2     1   2001
 *    6    1   3     1   2002
 *    7    2   1     2   3000 */
static void seven_transitions(store *s)
{
    static const struct { int64_t num; uint32_t person; int dir; int64_t at; } rows[] = {
        {1, 1, 1, 1000}, {1, 2, 1, 1001}, {2, 1, 1, 1002}, {1, 1, 2, 2000},
        {2, 2, 1, 2001}, {1, 3, 1, 2002}, {2, 1, 2, 3000},
    };
    int64_t seq = 0;

    assert_int_equal(store_begin(s), 0);
    for (int i = 0; i < 7; i++) {
        const char *detail = rows[i].person == 3 ? "{\"why\":\"clock\"}" : NULL;
        assert_int_equal(store_transition_add(s, rows[i].num, rows[i].person, 100 + rows[i].person, rows[i].dir,
                                              rows[i].at, i % 4 + 1, detail, &seq), 0);
        assert_int_equal(seq, i + 1);
    }
    assert_int_equal(store_commit(s), 0);
}

#define T1 "transition 1 1 1 101 1 1000 1 NULL\n"
#define T2 "transition 2 1 2 102 1 1001 2 NULL\n"
#define T3 "transition 3 2 1 101 1 1002 3 NULL\n"
#define T4 "transition 4 1 1 101 2 2000 4 NULL\n"
#define T5 "transition 5 2 2 102 1 2001 1 NULL\n"
#define T6 "transition 6 1 3 103 1 2002 2 {\"why\":\"clock\"}\n"
#define T7 "transition 7 2 1 101 2 3000 3 NULL\n"

static void test_transitions_read_newest_first_with_filters(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    int64_t seq = 0;
    int seen = 0;

    seven_transitions(s);
    assert_transitions(s, -1, -1, 0, 100, T7 T6 T5 T4 T3 T2 T1);
    assert_transitions(s, 1, -1, 0, 100, T6 T4 T2 T1);
    assert_transitions(s, 2, -1, 0, 100, T7 T5 T3);
    assert_transitions(s, -1, 1, 0, 100, T7 T4 T3 T1);
    assert_transitions(s, 1, 1, 0, 100, T4 T1);
    assert_transitions(s, 2, 3, 0, 100, "");
    assert_transitions(s, 9, -1, 0, 100, "");
    /* pages: limit, then before_seq = the last seq seen */
    assert_transitions(s, -1, -1, 0, 3, T7 T6 T5);
    assert_transitions(s, -1, -1, 5, 3, T4 T3 T2);
    assert_transitions(s, -1, -1, 2, 3, T1);
    assert_transitions(s, -1, -1, 1, 3, "");
    assert_transitions(s, -1, -1, -4, 2, T7 T6);                 /* negative: from the newest */
    assert_transitions(s, 1, -1, 4, 1, T2);
    assert_transitions(s, -1, 1, 7, 2, T4 T3);
    assert_transitions(s, 1, 1, 4, 5, T1);
    assert_int_equal(store_read_transitions(s, -1, -1, 0, 0, dump_transition, stdout), SEGD_EINVAL);
    assert_int_equal(store_read_transitions(s, -1, -1, 0, -1, dump_transition, stdout), SEGD_EINVAL);
    assert_int_equal(store_read_transitions(s, -1, -1, 0, 100, stop_transitions_after_two, &seen), 77);
    assert_int_equal(seen, 2);

    /* a dir other than 1 or 2 is refused; the next seq is still the next one */
    assert_int_equal(store_transition_add(s, 1, 1, 101, 0, 4000, 1, NULL, &seq), SEGD_EINVAL);
    assert_int_equal(store_transition_add(s, 1, 1, 101, 3, 4000, 1, NULL, &seq), SEGD_EINVAL);
    /* 64-bit public ids round-trip; seq may be NULL */
    assert_int_equal(store_transition_add(s, 1, UINT32_MAX, UINT64_MAX, 2, -1, 1, "", &seq), 0);
    assert_int_equal(seq, 8);
    assert_int_equal(store_transition_add(s, 1, 4, 104, 1, 5000, 1, NULL, NULL), 0);
    assert_transitions(s, -1, UINT32_MAX, 0, 10, "transition 8 1 4294967295 18446744073709551615 2 -1 1 \n");
    store_close(s);
}

/* The outbox gives transitions after a seq, oldest first, and a seq is never given
 * again: not after the newest rows are erased, not after a restart. */
static void test_outbox_oldest_first_and_seq_never_reused(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    int64_t seq = 0;
    int seen = 0;

    seven_transitions(s);
    assert_outbox(s, 0, 100, T1 T2 T3 T4 T5 T6 T7);
    assert_outbox(s, 0, 2, T1 T2);
    assert_outbox(s, 2, 2, T3 T4);
    assert_outbox(s, 6, 100, T7);
    assert_outbox(s, 7, 100, "");
    assert_outbox(s, -5, 1, T1);
    assert_int_equal(store_read_outbox(s, 0, 0, dump_transition, stdout), SEGD_EINVAL);
    assert_int_equal(store_read_outbox(s, 0, 100, stop_transitions_after_two, &seen), 77);
    assert_int_equal(seen, 2);

    /* person 1 holds the newest row (7): erased, its seq stays taken */
    assert_int_equal(store_person_log_erase(s, 1), 0);
    assert_int_equal(store_transition_add(s, 1, 5, 105, 1, 4000, 1, NULL, &seq), 0);
    assert_int_equal(seq, 8);
    assert_int_equal(store_segment_delete(s, 1), 0);    /* now the newest row (8) goes with its segment */
    store_close(s);
    s = open_ok(f->dir);
    assert_int_equal(store_transition_add(s, 2, 5, 105, 1, 4001, 1, NULL, &seq), 0);
    assert_int_equal(seq, 9);
    assert_outbox(s, 0, 100, T5 "transition 9 2 5 105 1 4001 1 NULL\n");
    assert_outbox(s, 7, 100, "transition 9 2 5 105 1 4001 1 NULL\n");
    store_close(s);
}

/* Erasure deletes every transition of the person, in every segment, and nothing
 * else (members go by store_member_exit, history stays). */
static void test_person_log_erase(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    seven_transitions(s);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_member_enter(s, 1, 1, 1000, 1), 0);
    assert_int_equal(store_history_add(s, 1, 1000, 2, 1), 0);
    assert_int_equal(store_person_log_erase(s, 1), 0);
    assert_int_equal(store_person_log_erase(s, 42), 0);     /* none: not an error */
    assert_int_equal(store_commit(s), 0);
    assert_outbox(s, 0, 100, T2 T5 T6);
    assert_transitions(s, -1, 1, 0, 100, "");
    assert_int_equal(store_read_member(s, 1, 1, NULL, NULL), 1);
    assert_history(s, 1, INT64_MIN, "  history 1000 2 1\n");
    store_close(s);
}

/* Pruning deletes transitions and history points with at < before (not at ==),
 * of every segment, and keeps members. */
static void test_prune_segment_log(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);

    seven_transitions(s);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_member_enter(s, 1, 1, 1, 1), 0);
    for (int64_t at = 1000; at <= 3000; at += 1000) {
        assert_int_equal(store_history_add(s, 1, at, (uint64_t)at / 100, 1), 0);
        assert_int_equal(store_history_add(s, 2, at + 1, (uint64_t)at / 100, 2), 0);
    }
    assert_int_equal(store_prune_segment_log(s, 2001), 0);
    assert_int_equal(store_commit(s), 0);
    assert_outbox(s, 0, 100, T5 T6 T7);
    assert_history(s, 1, INT64_MIN, "  history 3000 30 1\n");
    assert_history(s, 2, INT64_MIN, "  history 2001 20 2\n"
                                    "  history 3001 30 2\n");
    assert_int_equal(store_read_member(s, 1, 1, NULL, NULL), 1);
    /* the transition at exactly `before` stayed; pruning everything works too */
    assert_int_equal(store_prune_segment_log(s, INT64_MAX), 0);
    assert_outbox(s, 0, 100, "");
    assert_history(s, 2, INT64_MIN, "");
    store_close(s);
}

/* History points oldest first from since_ms (inclusive); a second point at the same
 * ms replaces the first. Daily counts group transitions of one segment by UTC day
 * (floor, also before 1970), entered and exited apart. */
static void test_history_and_daily_counts(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    const int64_t day = 86400000, d0 = 19000 * day;   /* a midnight in 2022 */
    int seen = 0;

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_history_add(s, 1, d0 + 7200000, 12, 1), 0);
    assert_int_equal(store_history_add(s, 1, d0 + 3600000, 10, 1), 0);
    assert_int_equal(store_history_add(s, 1, d0 + 5000, 11, 2), 0);
    assert_int_equal(store_history_add(s, 1, d0 + 3600000, 15, 2), 0);   /* replaces 10 */
    assert_int_equal(store_history_add(s, 2, d0 + 3600000, UINT64_MAX, 1), 0);
    /* segment 1: day d0 two entered, one exited; day d0+1 one entered, two exited
     * (its last ms included); 1969-12-31 one entered; segment 2 another day */
    static const struct { int64_t num; int dir; int64_t at; } rows[] = {
        {1, 1, d0}, {1, 1, d0 + 1000}, {1, 2, d0 + day - 1}, {1, 2, d0 + day},
        {1, 1, d0 + day + 5}, {1, 2, d0 + 2 * day - 1}, {1, 1, -1}, {2, 1, d0 + 5 * day},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_int_equal(store_transition_add(s, rows[i].num, (uint32_t)i, i, rows[i].dir, rows[i].at, 1, NULL, NULL),
                         0);
    assert_int_equal(store_commit(s), 0);

    assert_history(s, 1, INT64_MIN, "  history 1641600005000 11 2\n"
                                    "  history 1641603600000 15 2\n"
                                    "  history 1641607200000 12 1\n");
    assert_history(s, 1, d0 + 3600000, "  history 1641603600000 15 2\n"
                                        "  history 1641607200000 12 1\n");
    assert_history(s, 2, 0, "  history 1641603600000 18446744073709551615 1\n");
    assert_history(s, 3, INT64_MIN, "");
    assert_int_equal(store_read_history(s, 1, INT64_MIN, stop_history_after_one, &seen), 77);

    assert_daily(s, 1, INT64_MIN, "day -86400000 1 0\n"
                                  "day 1641600000000 2 1\n"
                                  "day 1641686400000 1 2\n");
    /* since counts from that ms, not from its day's midnight */
    assert_daily(s, 1, d0 + 1000, "day 1641600000000 1 1\n"
                                  "day 1641686400000 1 2\n");
    assert_daily(s, 1, d0 + day, "day 1641686400000 1 2\n");
    assert_daily(s, 2, INT64_MIN, "day 1642032000000 1 0\n");
    assert_daily(s, 3, INT64_MIN, "");
    seen = 0;
    assert_int_equal(store_read_daily_counts(s, 1, INT64_MIN, stop_days_after_one, &seen), 77);
    assert_int_equal(seen, 1);
    store_close(s);
}

/* The snapshot round-trips (any bytes) through store_load_segments with its time;
 * a new segment has none; NULL removes it; re-putting the definition keeps it. */
static void test_cached_snapshot_round_trip(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    static const unsigned char bytes[] = {0x3a, 0x30, 0x00, 0x00, 0xff, 0x01};
    int64_t num = 0;

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_a", "{}", &num), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_b", "{}", NULL), 0);
    assert_int_equal(store_segment_cached_put(s, num, 1700000000000, bytes, sizeof bytes), 0);
    assert_int_equal(store_segment_cached_put(s, 99, 1, bytes, sizeof bytes), 0);   /* unknown: nothing */
    assert_int_equal(store_commit(s), 0);
    store_close(s);

    s = open_ok(f->dir);
    assert_dump(s, "segment 1 seg_a {} 1700000000000 3a300000ff01\n"
                   "segment 2 seg_b {} 0 -\n");
    assert_int_equal(PUT_SEGMENT(s, "seg_a", "{\"v\":2}", NULL), 0);
    assert_int_equal(store_segment_cached_put(s, 2, 5, "x", 1), 0);
    assert_dump(s, "segment 1 seg_a {\"v\":2} 1700000000000 3a300000ff01\n"
                   "segment 2 seg_b {} 5 78\n");
    assert_int_equal(store_segment_cached_put(s, 1, 6, bytes, 2), 0);   /* replaced */
    assert_int_equal(store_segment_cached_put(s, 2, 7, NULL, 0), 0);    /* removed */
    assert_dump(s, "segment 1 seg_a {\"v\":2} 6 3a30\n"
                   "segment 2 seg_b {} 7 -\n");
    assert_int_equal(store_segment_cached_put(s, 1, 8, bytes, 0), 0);   /* zero bytes: none */
    assert_dump(s, "segment 1 seg_a {\"v\":2} 8 -\n"
                   "segment 2 seg_b {} 7 -\n");
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
    assert_int_equal(INSERT_EVENT(s, 0, 0, 2, 2, "{}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 1, 2, 2, "{\"keep\":1}"), 0);
    assert_int_equal(store_release(s), 0);

    assert_int_equal(store_savepoint(s), 0);                   /* request 3: fails */
    assert_int_equal(PUT_PERSON(s, 3, 3, "{\"req\":3}"), 0);
    assert_int_equal(PUT_PERSON(s, 1, 1, "{\"req\":\"3 overwrote 1\"}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 2, 3, 3, "{}"), 0);
    assert_int_equal(store_event_set_person(s, 0, 0, 3), 0);   /* request 2's events */
    assert_int_equal(store_event_delete(s, 0, 1), 0);
    assert_int_equal(store_person_delete(s, 2), 0);
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
                   "event 0 0 2 2 {}\n"
                   "event 0 1 2 2 {\"keep\":1}\n");
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
    assert_int_equal(INSERT_EVENT(s, 0, 0, 2, 1, "{}"), 0);
    assert_int_equal(store_release(s), 0);
    assert_int_equal(store_messages_put(s, "api", (const char *const[]){"m", "n"}, 2, 1), 0);
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

/* A request's segment rows go with its savepoint like any other row: segments put or
 * deleted, members entered, replaced or removed, transitions, history, snapshots,
 * erasure and pruning. */
static void test_savepoint_rollback_undoes_segment_rows(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    int64_t a = 0, b = 0, num = 0, seq = 0;

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_a", "{}", &a), 0);
    assert_int_equal(store_member_enter(s, a, 1, 10, 1), 0);

    assert_int_equal(store_savepoint(s), 0);                   /* request 2: kept */
    assert_int_equal(PUT_SEGMENT(s, "seg_b", "{}", &b), 0);
    assert_int_equal(store_member_enter(s, a, 2, 20, 1), 0);
    assert_int_equal(store_transition_add(s, a, 2, 102, 1, 20, 1, NULL, &seq), 0);
    assert_int_equal(seq, 1);
    assert_int_equal(store_history_add(s, a, 20, 2, 1), 0);
    assert_int_equal(store_release(s), 0);

    assert_int_equal(store_savepoint(s), 0);                   /* request 3: fails */
    assert_int_equal(store_member_enter(s, a, 3, 30, 1), 0);
    assert_int_equal(store_member_exit(s, a, 1), 0);
    assert_int_equal(store_member_enter(s, a, 2, 99, 4), 0);
    assert_int_equal(store_transition_add(s, a, 3, 103, 1, 30, 1, NULL, &seq), 0);
    assert_int_equal(seq, 2);
    assert_int_equal(store_history_add(s, a, 20, 99, 2), 0);
    assert_int_equal(store_segment_cached_put(s, a, 30, "zz", 2), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_a", "{\"v\":3}", NULL), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_c", "{}", &num), 0);
    assert_int_equal(num, 3);
    assert_int_equal(store_segment_delete(s, b), 0);
    assert_int_equal(store_person_log_erase(s, 2), 0);
    assert_int_equal(store_prune_segment_log(s, INT64_MAX), 0);
    assert_int_equal(store_rollback_to(s), 0);

    /* seq 2 and num 3 were never committed, so no reader saw them: they may be given
     * again */
    assert_int_equal(store_transition_add(s, a, 4, 104, 1, 40, 1, "after", &seq), 0);
    assert_int_equal(seq, 2);
    assert_int_equal(PUT_SEGMENT(s, "seg_d", "{}", &num), 0);
    assert_int_equal(num, 3);
    assert_int_equal(store_commit(s), 0);
    store_close(s);

    s = open_ok(f->dir);
    assert_dump(s, "segment 1 seg_a {} 0 -\n"
                   "  history 20 2 1\n"
                   "segment 2 seg_b {} 0 -\n"
                   "segment 3 seg_d {} 0 -\n"
                   "member 1 1 10 1\n"
                   "member 1 2 20 1\n"
                   "transition 1 1 2 102 1 20 1 NULL\n"
                   "transition 2 1 4 104 1 40 1 after\n");
    store_close(s);
}

/* ---- injected write failures ---- */

/* Rows committed before the fault is armed, for the writes below that change or
 * remove something: were they to act on rows written in the same run, skipping the
 * insert would hide whether the later write happened. */
static void write_prelude(store *s)
{
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_PERSON(s, 9, 900, "{\"old\":true}"), 0);
    assert_int_equal(INSERT_EVENT(s, 0, 0, 9, 10, "{\"old\":0}"), 0);
    assert_int_equal(INSERT_EVENT(s, 1, 0, 9, 20, "{\"old\":1}"), 0);
    assert_int_equal(store_attribute_put(s, "old", "number", 0), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_old", "{\"old\":1}", NULL), 0);     /* num 1 */
    assert_int_equal(PUT_SEGMENT(s, "seg_gone", "{}", NULL), 0);              /* num 2 */
    assert_int_equal(store_member_enter(s, 1, 9, 10, 1), 0);
    assert_int_equal(store_member_enter(s, 2, 9, 10, 1), 0);
    assert_int_equal(store_transition_add(s, 1, 9, 900, 1, 100000, 1, NULL, NULL), 0);
    assert_int_equal(store_transition_add(s, 1, 8, 800, 1, 5, 1, NULL, NULL), 0);   /* old: pruned */
    assert_int_equal(store_history_add(s, 1, 5, 1, 1), 0);                         /* old: pruned */
    assert_int_equal(store_history_add(s, 1, 100000, 2, 1), 0);
    assert_int_equal(store_commit(s), 0);
}

/* The writes counted by store_fail_nth_write, every function at least once, in an
 * order where every one changes what the dump shows (the test checks that). */
static int write_op(store *s, int i)
{
    switch (i) {
    case 0: return PUT_PERSON(s, 1, 100, "{\"a\":1}");
    case 1: return PUT_PERSON(s, 2, 200, "{\"a\":2}");
    case 2: return INSERT_EVENT(s, 0, 1, 1, 1000, "{\"x\":1}");
    case 3: return store_event_insert(s, 1, 1, 2, 2000, NULL, 0);
    case 4: return INSERT_EVENT(s, 2, 0, 2, 3000, "{\"x\":3}");
    case 5: return store_event_set_person(s, 0, 0, 2);
    case 6: return store_event_delete(s, 1, 0);
    case 7: return store_person_delete(s, 9);
    case 8: return store_attribute_put(s, "plan", "string", 1);
    case 9: return store_attribute_put(s, "age", "number", 0);
    case 10: return store_attribute_delete(s, "old");
    case 11: return store_event_type_put(s, 0, "purchase");
    case 12: return store_property_put(s, 0, "amount", "number");
    case 13: return store_messages_put(s, "api", (const char *const[]){"m1", "m2", "m3"}, 3, 5000);
    case 14: return PUT_SEGMENT(s, "seg_new", "{\"new\":1}", NULL);
    case 15: return PUT_SEGMENT(s, "seg_old", "{\"old\":2}", NULL);
    case 16: return store_segment_cached_put(s, 1, 7000, "snap", 4);
    case 17: return store_segment_delete(s, 2);
    case 18: return store_member_enter(s, 1, 5, 6000, 1);
    case 19: return store_member_exit(s, 1, 9);
    case 20: return store_transition_add(s, 1, 5, 500, 1, 6000, 1, "{\"d\":1}", NULL);
    case 21: return store_history_add(s, 1, 200000, 3, 2);
    case 22: return store_person_log_erase(s, 9);
    case 23: return store_prune_segment_log(s, 10);
    }
    return -100;
}
#define WRITE_OPS 24

static void test_fail_nth_write_fails_exactly_that_call(void **state)
{
    fixture *f = *state;
    char all_dir[200];
    char *all;
    store *s;

    /* every write, no injection: what each skipped write must differ from */
    snprintf(all_dir, sizeof all_dir, "%s/all", f->root);
    s = open_ok(all_dir);
    write_prelude(s);
    assert_int_equal(store_begin(s), 0);
    for (int i = 0; i < WRITE_OPS; i++)
        assert_int_equal(write_op(s, i), 0);
    assert_int_equal(store_commit(s), 0);
    all = dump(s);
    store_close(s);

    for (int k = 0; k < WRITE_OPS; k++) {
        char dir[200], expected_dir[200];
        char *expected, *got;
        store *ref;

        snprintf(dir, sizeof dir, "%s/fail%d", f->root, k);
        snprintf(expected_dir, sizeof expected_dir, "%s/ref%d", f->root, k);

        /* the reference: every write but k, no injection */
        ref = open_ok(expected_dir);
        write_prelude(ref);
        assert_int_equal(store_begin(ref), 0);
        for (int i = 0; i < WRITE_OPS; i++)
            if (i != k)
                assert_int_equal(write_op(ref, i), 0);
        assert_int_equal(store_commit(ref), 0);
        expected = dump(ref);
        store_close(ref);
        if (strcmp(expected, all) == 0)
            fail_msg("write %d does not show in the dump; the test could not see it happen", k);

        /* armed before begin: begin, savepoints and loads do not count */
        s = open_ok(dir);
        write_prelude(s);
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
    free(all);
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

static int count_messages(void *ctx, const char *source, const char *message_id, int64_t at_ms)
{
    ++*(int *)ctx;
    return 0;
}

/* What the workload below leaves, counted over the loaded events. The event (type, row)
 * was person type + 5 * row's; people id % 3 == 2 and 1999 are left. */
struct workload_events {
    int total, live_person, own, next;
};

static int count_workload_event(void *ctx, int type, uint32_t row, uint32_t person, int64_t time_ms,
                                const char *props, size_t len)
{
    struct workload_events *c = ctx;
    uint32_t was = (uint32_t)type + 5 * row;
    c->total++;
    c->live_person += person % 3 == 2 || person == 1999;
    c->own += person == was;
    c->next += person == was + 1;
    return 0;
}

static void test_integrity_check_after_a_workload(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    char props[64], message_id[16];
    int loaded = 0;

    /* 2000 people, each with one event appended to one of 5 types' logs in turn, and a
     * request's message ids (1 to 3 of them) */
    assert_int_equal(store_begin(s), 0);
    for (uint32_t id = 0; id < 2000; id++) {
        int len = snprintf(props, sizeof props, "{\"amount\":%u.5,\"sku\":\"A-%u\"}", id, id);
        assert_int_equal(PUT_PERSON(s, id, id * 7ull, "{\"plan\":\"pro\"}"), 0);
        assert_int_equal(store_event_insert(s, (int)(id % 5), id / 5, id, id * 1000ll, props,
                                            (size_t)len), 0);
        snprintf(message_id, sizeof message_id, "m-%u", id);
        assert_int_equal(store_messages_put(s, "api", (const char *const[]){message_id, props, "z"},
                                            id % 3 + 1, id), 0);
    }
    /* erase every third person with their event (667); merge the next into the one
     * after it, event by event (666: person 1999 has no one after it) */
    for (uint32_t id = 0; id < 2000; id += 3) {
        assert_int_equal(store_event_delete(s, (int)(id % 5), id / 5), 0);
        assert_int_equal(store_person_delete(s, id), 0);
    }
    for (uint32_t id = 1; id + 1 < 2000; id += 3) {
        assert_int_equal(store_event_set_person(s, (int)(id % 5), id / 5, id + 1), 0);
        assert_int_equal(store_person_delete(s, id), 0);
    }
    assert_int_equal(store_prune_messages(s, 1000), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_integrity_check(s), 0);
    store_close(s);
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM people"), 2000 - 667 - 666);
    s = open_ok(f->dir);
    struct workload_events counts = {0};
    assert_int_equal(store_load_events(s, count_workload_event, &counts), 0);
    store_close(s);
    assert_int_equal(counts.total, 2000 - 667);
    assert_int_equal(counts.live_person, 2000 - 667);
    /* each event kept its key: 667 still with their own person, 666 with the next */
    assert_int_equal(counts.own, 667);
    assert_int_equal(counts.next, 666);
    assert_int_equal(raw_int(f->dir, "SELECT count(*) FROM message_batches"), 1000);
    s = open_ok(f->dir);
    assert_int_equal(store_load_messages(s, INT64_MIN, count_messages, &loaded), 0);
    assert_int_equal(loaded, 2000);   /* at 1000..1999: 333 batches of 1 id, 334 of 2, 333 of 3 */
    store_close(s);
}

/* ---- reads from other threads ---- */

static int count_transition(void *ctx, const store_transition *t)
{
    ++*(int *)ctx;
    return 0;
}

static int count_history(void *ctx, int64_t at, uint64_t size, int kind)
{
    ++*(int *)ctx;
    return 0;
}

/* What a reader thread saw; the main thread asserts (cmocka's asserts belong to it). */
struct committed_reader {
    store *s;
    int member_1, member_2, transitions, history, rc;
};

static void *read_committed(void *arg)
{
    struct committed_reader *r = arg;
    r->member_1 = store_read_member(r->s, 1, 1, NULL, NULL);
    r->member_2 = store_read_member(r->s, 1, 2, NULL, NULL);
    r->transitions = r->history = 0;
    r->rc = store_read_outbox(r->s, 0, 1000, count_transition, &r->transitions);
    if (r->rc == 0)
        r->rc = store_read_history(r->s, 1, INT64_MIN, count_history, &r->history);
    return NULL;
}

static void read_in_thread(struct committed_reader *r)
{
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, read_committed, r), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
}

struct busy_reader {
    store *s;
    int reads, errors, went_back, last;
};

/* Reads over and over while the main thread commits: no read may fail, and the
 * outbox a reader sees never shrinks. */
static void *read_while_writing(void *arg)
{
    struct busy_reader *r = arg;
    int prev = 0;
    for (int i = 0; i < r->reads; i++) {
        int n = 0;
        int rc = store_read_outbox(r->s, 0, 1000, count_transition, &n);
        int found = store_read_member(r->s, 1, (uint32_t)(i % 64), NULL, NULL);
        if (rc != 0 || found < 0)
            r->errors++;
        if (n < prev)
            r->went_back++;
        prev = n;
    }
    r->last = prev;
    return NULL;
}

/* Another thread reads while the writer holds an open transaction: it sees the
 * committed rows only, without waiting for the transaction; so does the writer
 * thread's own store_read_*. Then readers run while the writer commits. */
static void test_reads_from_another_thread_see_committed_rows(void **state)
{
    fixture *f = *state;
    store *s = open_ok(f->dir);
    struct committed_reader r = {.s = s};
    struct busy_reader busy[4];
    pthread_t threads[4];
    int n = 0;

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(PUT_SEGMENT(s, "seg_a", "{}", NULL), 0);
    assert_int_equal(store_member_enter(s, 1, 1, 10, 1), 0);
    assert_int_equal(store_transition_add(s, 1, 1, 101, 1, 10, 1, NULL, NULL), 0);
    assert_int_equal(store_commit(s), 0);

    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_member_enter(s, 1, 2, 20, 1), 0);
    assert_int_equal(store_member_exit(s, 1, 1), 0);
    assert_int_equal(store_transition_add(s, 1, 2, 102, 1, 20, 1, NULL, NULL), 0);
    assert_int_equal(store_history_add(s, 1, 20, 1, 1), 0);
    read_in_thread(&r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.member_1, 1);
    assert_int_equal(r.member_2, 0);
    assert_int_equal(r.transitions, 1);
    assert_int_equal(r.history, 0);
    assert_int_equal(store_read_member(s, 1, 2, NULL, NULL), 0);     /* the writer's own read too */
    assert_int_equal(store_read_member(s, 1, 1, NULL, NULL), 1);
    assert_int_equal(store_commit(s), 0);

    read_in_thread(&r);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.member_1, 0);
    assert_int_equal(r.member_2, 1);
    assert_int_equal(r.transitions, 2);
    assert_int_equal(r.history, 1);

    for (int i = 0; i < 4; i++) {
        busy[i] = (struct busy_reader){.s = s, .reads = 300};
        assert_int_equal(pthread_create(&threads[i], NULL, read_while_writing, &busy[i]), 0);
    }
    for (uint32_t i = 0; i < 60; i++) {
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(store_member_enter(s, 1, 3 + i, 30 + i, 1), 0);
        assert_int_equal(store_transition_add(s, 1, 3 + i, 103 + i, 1, 30 + i, 1, NULL, NULL), 0);
        assert_int_equal(store_commit(s), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(busy[i].errors, 0);
        assert_int_equal(busy[i].went_back, 0);
        assert_in_range(busy[i].last, 2, 62);
    }
    assert_int_equal(store_read_outbox(s, 0, 1000, count_transition, &n), 0);
    assert_int_equal(n, 62);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_directory_and_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_again_keeps_data_and_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_open_of_locked_dir_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_from_another_process_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_migration_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_files_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_from_empty_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_from_v2_packs_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_from_v3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_gather_into_blocks, setup, teardown),
        cmocka_unit_test(test_close_null_is_noop),
        cmocka_unit_test_setup_teardown(test_people_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_load_grouped_by_type_then_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalogs_round_trip_in_stable_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_put_one_row_per_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_put_long_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_load_since_and_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_put_of_nothing_is_not_a_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_stops_when_callback_says_so, setup, teardown),
        cmocka_unit_test_setup_teardown(test_person_delete_leaves_their_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_people, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_set_person_and_delete_touch_one_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoint_rollback_undoes_only_its_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_undoes_the_whole_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_put_keeps_and_never_reuses_num, setup, teardown),
        cmocka_unit_test_setup_teardown(test_segment_delete_removes_its_rows_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members_enter_exit_and_load_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transitions_read_newest_first_with_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_oldest_first_and_seq_never_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_person_log_erase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_segment_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_and_daily_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cached_snapshot_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_savepoint_rollback_undoes_segment_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_nth_write_fails_exactly_that_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_nth_write_counts_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_integrity_check_after_a_workload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_from_another_thread_see_committed_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_checkpoints, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
