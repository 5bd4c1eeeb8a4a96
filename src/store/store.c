/* store.c - the SQLite store declared in store.h: the data-directory lock, the
 * numbered migrations, transactions and savepoints, and one cached prepared
 * statement per write and per load. Owns no JSON and no engine layout.
 * Workload: event inserts dominate (bulk import runs several hundred thousand per
 * second inside one large transaction), so a write is bind + step + reset on a
 * statement prepared at open, with SQLITE_STATIC bindings and no allocation. Loads
 * are full scans, run once when the engine is rebuilt at start. The store_read_*
 * calls are small indexed reads from HTTP threads on a second, read-only connection.
 */
#include "store.h"

#include "../base/alloc.h"
#include "evblock.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* "segd" in ASCII, in the database header: tells `file`, sqlite3 and a later segd
 * that this database is ours. */
#define STORE_APPLICATION_ID 0x73656764

/* Another process reading the database (the sqlite3 shell, a backup) may hold a lock
 * for a moment; the directory lock keeps out every other writer. */
#define STORE_BUSY_TIMEOUT_MS 5000

/* A migration: an SQL script, then (if not NULL) a C step on the same connection and
 * transaction, for conversions SQL cannot express. The step returns an SQLite code. */
typedef struct migration {
    const char *sql;
    int (*step)(sqlite3 *db);
} migration;

static int migrate_events_to_blocks(sqlite3 *db);
static int insert_block(sqlite3_stmt *st, const evrun *r, char **buf, size_t *cap);

/* Migration N (index N-1) takes the schema from version N-1 to N. Each runs in its
 * own transaction together with the user_version bump, so a crash leaves the
 * database at a whole version. Append only: never edit a script that has shipped.
 *
 * message_ids has no unique index: ids are random, a unique b-tree over them costs
 * 5-10x per insert, and segd dedups in memory. Its index on `at` costs little because
 * `at` grows with time (inserts append to the rightmost leaf), and it keeps pruning
 * and the since-window load proportional to what they touch. */
static const migration migrations[] = {
    /* 1: the first schema. */
    {"CREATE TABLE people(id INTEGER PRIMARY KEY, public_id INTEGER NOT NULL, attrs TEXT NOT NULL);"
    "CREATE TABLE attributes(name TEXT PRIMARY KEY, type TEXT NOT NULL, declared INTEGER NOT NULL);"
    "CREATE TABLE event_types(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE properties(type INTEGER NOT NULL, name TEXT NOT NULL, ptype TEXT NOT NULL,"
    " PRIMARY KEY(type, name));"
    "CREATE TABLE events(id INTEGER PRIMARY KEY, person INTEGER NOT NULL, type INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, props TEXT);"
    "CREATE INDEX events_person ON events(person);"
    "CREATE TABLE message_ids(source TEXT NOT NULL, message_id TEXT NOT NULL, at INTEGER NOT NULL);"
    "CREATE INDEX message_ids_at ON message_ids(at);"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);", NULL},

    /* 2: events keyed by (type, row in the engine's log), rowid = type << 32 | row, with
     * no index on person: appends stay at the end of each type's key range, and merges
     * and erasures update the person's own rows by key. Version 1's ids were arrival
     * order; its rebuild appended each type's events in that order, so row numbers are
     * the rank within the type. Message ids are kept a batch per request (one row, ids
     * NUL-separated) instead of a row each. */
    {"CREATE TABLE events_v2(id INTEGER PRIMARY KEY, person INTEGER NOT NULL, ts INTEGER NOT NULL, props TEXT);"
    "INSERT INTO events_v2(id, person, ts, props)"
    " SELECT (type << 32) | (ROW_NUMBER() OVER (PARTITION BY type ORDER BY id) - 1), person, ts, props"
    " FROM events;"
    "DROP TABLE events;"
    "ALTER TABLE events_v2 RENAME TO events;"
    "CREATE TABLE message_batches(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, source TEXT NOT NULL,"
    " ids BLOB NOT NULL);"
    "INSERT INTO message_batches(at, source, ids)"
    " SELECT at, source, CAST(message_id AS BLOB) FROM message_ids ORDER BY rowid;"
    "DROP TABLE message_ids;"
    "CREATE INDEX message_batches_at ON message_batches(at);", NULL},

    /* 3: events packed in blocks (evblock.h): one row per run of up to EVBLOCK_MAX_ROWS
     * consecutive rows of one type, keyed type << 32 | first row, instead of one row
     * per event. n (the rows covered) precedes the blob so that finding the block of
     * a row reads no overflow page. The C step packs version 2's events, in key order,
     * and drops the events table. */
    {"CREATE TABLE event_blocks(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, data BLOB NOT NULL);",
     migrate_events_to_blocks},

    /* 4: segments. A segment's key is `num`, never reused (AUTOINCREMENT): rows of a
     * deleted segment that something still names (an outbox consumer, a log line)
     * cannot be mistaken for a newer one's. Members are keyed (seg, person) WITHOUT
     * ROWID, so a segment's members are one range and the row is the key; the index
     * on (person, seg) serves a person's memberships. Transitions are the membership
     * log and the outbox: seq is AUTOINCREMENT so that deleting the newest rows (an
     * erasure, a deleted segment, pruning) never lets a later row take a seq an
     * outbox consumer has already passed. Their indexes serve the reads (a segment's
     * or a person's log newest first) and pruning by `at`, which grows with time, so
     * inserts append to the right of it. History has at most one point per segment
     * and ms (a second point replaces the first); its index on `at` keeps pruning
     * from scanning every segment's points. */
    {"CREATE TABLE segments(num INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
    " definition TEXT NOT NULL, cached_at INTEGER NOT NULL DEFAULT 0, cached BLOB);"
    "CREATE TABLE segment_members(seg INTEGER NOT NULL, person INTEGER NOT NULL, entered_at INTEGER NOT NULL,"
    " cause INTEGER NOT NULL, PRIMARY KEY(seg, person)) WITHOUT ROWID;"
    "CREATE INDEX segment_members_person ON segment_members(person, seg);"
    "CREATE TABLE segment_transitions(seq INTEGER PRIMARY KEY AUTOINCREMENT, seg INTEGER NOT NULL,"
    " person INTEGER NOT NULL, public_id INTEGER NOT NULL, dir INTEGER NOT NULL, at INTEGER NOT NULL,"
    " cause INTEGER NOT NULL, detail TEXT);"
    "CREATE INDEX segment_transitions_seg ON segment_transitions(seg, seq);"
    "CREATE INDEX segment_transitions_person ON segment_transitions(person, seq);"
    "CREATE INDEX segment_transitions_at ON segment_transitions(at);"
    "CREATE TABLE segment_history(seg INTEGER NOT NULL, at INTEGER NOT NULL, size INTEGER NOT NULL,"
    " kind INTEGER NOT NULL, PRIMARY KEY(seg, at)) WITHOUT ROWID;"
    "CREATE INDEX segment_history_at ON segment_history(at);", NULL},

    /* 5: member checkpoints. Writing a row per member made defining a segment cost a
     * row per person it matches (200M rows for 1,000 segments over 1M people). A
     * segment's members are now a checkpoint (`members`, a serialised bitmap, opaque
     * here) taken at `members_seq`, the last transition seq it includes; the members
     * at any later time are the checkpoint plus the segment's transitions after that
     * seq. segment_members keeps a row only for a member who entered after the segment
     * was created (entered_at and cause for them); the others entered at creation.
     * members_seq -1: no checkpoint yet (a schema-4 segment: its rows are its members). */
    {"ALTER TABLE segments ADD COLUMN members BLOB;"
    "ALTER TABLE segments ADD COLUMN members_seq INTEGER NOT NULL DEFAULT -1;", NULL},
};

_Static_assert(sizeof migrations / sizeof migrations[0] == STORE_SCHEMA_VERSION,
               "one migration script per schema version");

/* Every statement the store runs after open, prepared once. */
enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_PERSON_PUT,
    ST_PERSON_DELETE,
    ST_BLOCK_INSERT,
    ST_BLOCK_UPDATE,
    ST_BLOCK_DELETE,
    ST_BLOCK_AT,
    ST_BLOCK_PREV,
    ST_BLOCK_NEXT,
    ST_ATTRIBUTE_PUT,
    ST_ATTRIBUTE_DELETE,
    ST_EVENT_TYPE_PUT,
    ST_PROPERTY_PUT,
    ST_MESSAGE_PUT,
    ST_MESSAGES_PRUNE,
    ST_SEGMENT_UPDATE,
    ST_SEGMENT_INSERT,
    ST_SEGMENT_CACHED_PUT,
    ST_SEGMENT_DELETE,
    ST_SEGMENT_MEMBERS_DELETE,
    ST_SEGMENT_TRANSITIONS_DELETE,
    ST_SEGMENT_HISTORY_DELETE,
    ST_MEMBER_ENTER,
    ST_MEMBER_EXIT,
    ST_TRANSITION_ADD,
    ST_HISTORY_ADD,
    ST_PERSON_LOG_ERASE,
    ST_TRANSITIONS_PRUNE,
    ST_HISTORY_PRUNE,
    ST_LOAD_ATTRIBUTES,
    ST_LOAD_EVENT_TYPES,
    ST_LOAD_PROPERTIES,
    ST_LOAD_PEOPLE,
    ST_LOAD_BLOCKS,
    ST_LOAD_MESSAGES,
    ST_LOAD_SEGMENTS,
    ST_LOAD_MEMBERS,
    ST_LOAD_CHECKPOINTS,
    ST_LOAD_TRANSITIONS_AFTER,
    ST_LAST_SEQ,
    ST_SEGMENT_MEMBERS_PUT,
    ST_PERSON_GET,
    ST_COUNT_PEOPLE,
    ST_INTEGRITY_CHECK,
    ST_COUNT
};

/* Upserts keep the row (and so its rowid, which is the load order) where INSERT OR
 * REPLACE would delete it and append a new one. */
static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT req",
    [ST_RELEASE] = "RELEASE req",
    [ST_ROLLBACK_TO] = "ROLLBACK TO req",
    [ST_PERSON_PUT] = "INSERT INTO people(id, public_id, attrs) VALUES(?1, ?2, ?3)"
                      " ON CONFLICT(id) DO UPDATE SET public_id = excluded.public_id,"
                      " attrs = excluded.attrs",
    [ST_PERSON_DELETE] = "DELETE FROM people WHERE id = ?1",
    [ST_BLOCK_INSERT] = "INSERT INTO event_blocks(id, n, data) VALUES(?1, ?2, ?3)",
    [ST_BLOCK_UPDATE] = "UPDATE event_blocks SET data = ?2 WHERE id = ?1",
    [ST_BLOCK_DELETE] = "DELETE FROM event_blocks WHERE id = ?1",
    [ST_BLOCK_AT] = "SELECT id, n, data FROM event_blocks WHERE id <= ?1 ORDER BY id DESC LIMIT 1",
    [ST_BLOCK_PREV] = "SELECT id, n FROM event_blocks WHERE id <= ?1 ORDER BY id DESC LIMIT 1",
    [ST_BLOCK_NEXT] = "SELECT id FROM event_blocks WHERE id > ?1 ORDER BY id LIMIT 1",
    [ST_ATTRIBUTE_PUT] = "INSERT INTO attributes(name, type, declared) VALUES(?1, ?2, ?3)"
                         " ON CONFLICT(name) DO UPDATE SET type = excluded.type,"
                         " declared = excluded.declared",
    [ST_ATTRIBUTE_DELETE] = "DELETE FROM attributes WHERE name = ?1",
    [ST_EVENT_TYPE_PUT] = "INSERT INTO event_types(id, name) VALUES(?1, ?2)"
                          " ON CONFLICT(id) DO UPDATE SET name = excluded.name",
    [ST_PROPERTY_PUT] = "INSERT INTO properties(type, name, ptype) VALUES(?1, ?2, ?3)"
                        " ON CONFLICT(type, name) DO UPDATE SET ptype = excluded.ptype",
    [ST_MESSAGE_PUT] = "INSERT INTO message_batches(at, source, ids) VALUES(?1, ?2, ?3)",
    [ST_MESSAGES_PRUNE] = "DELETE FROM message_batches WHERE at < ?1",
    /* Update first, insert when nothing was updated: an upsert into an AUTOINCREMENT
     * table takes a new num from sqlite_sequence even when it ends as an update. */
    [ST_SEGMENT_UPDATE] = "UPDATE segments SET definition = ?2 WHERE id = ?1 RETURNING num",
    [ST_SEGMENT_INSERT] = "INSERT INTO segments(id, definition) VALUES(?1, ?2)",
    [ST_SEGMENT_CACHED_PUT] = "UPDATE segments SET cached_at = ?2, cached = ?3 WHERE num = ?1",
    [ST_SEGMENT_DELETE] = "DELETE FROM segments WHERE num = ?1",
    [ST_SEGMENT_MEMBERS_DELETE] = "DELETE FROM segment_members WHERE seg = ?1",
    [ST_SEGMENT_TRANSITIONS_DELETE] = "DELETE FROM segment_transitions WHERE seg = ?1",
    [ST_SEGMENT_HISTORY_DELETE] = "DELETE FROM segment_history WHERE seg = ?1",
    [ST_MEMBER_ENTER] = "INSERT INTO segment_members(seg, person, entered_at, cause) VALUES(?1, ?2, ?3, ?4)"
                        " ON CONFLICT(seg, person) DO UPDATE SET entered_at = excluded.entered_at,"
                        " cause = excluded.cause",
    [ST_MEMBER_EXIT] = "DELETE FROM segment_members WHERE seg = ?1 AND person = ?2",
    [ST_TRANSITION_ADD] = "INSERT INTO segment_transitions(seg, person, public_id, dir, at, cause, detail)"
                          " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_HISTORY_ADD] = "INSERT INTO segment_history(seg, at, size, kind) VALUES(?1, ?2, ?3, ?4)"
                       " ON CONFLICT(seg, at) DO UPDATE SET size = excluded.size, kind = excluded.kind",
    [ST_PERSON_LOG_ERASE] = "DELETE FROM segment_transitions WHERE person = ?1",
    [ST_TRANSITIONS_PRUNE] = "DELETE FROM segment_transitions WHERE at < ?1",
    [ST_HISTORY_PRUNE] = "DELETE FROM segment_history WHERE at < ?1",
    [ST_LOAD_ATTRIBUTES] = "SELECT name, type, declared FROM attributes ORDER BY rowid",
    [ST_LOAD_EVENT_TYPES] = "SELECT id, name FROM event_types ORDER BY id",
    [ST_LOAD_PROPERTIES] = "SELECT type, name, ptype FROM properties ORDER BY rowid",
    [ST_LOAD_PEOPLE] = "SELECT id, public_id, attrs FROM people ORDER BY id",
    [ST_LOAD_BLOCKS] = "SELECT id, n, data FROM event_blocks ORDER BY id",
    [ST_LOAD_MESSAGES] = "SELECT source, ids, at FROM message_batches WHERE at >= ?1"
                         " ORDER BY rowid",
    [ST_LOAD_SEGMENTS] = "SELECT num, id, definition, cached_at, cached FROM segments ORDER BY num",
    [ST_LOAD_MEMBERS] = "SELECT seg, person, entered_at, cause FROM segment_members ORDER BY seg, person",
    [ST_LOAD_CHECKPOINTS] = "SELECT num, members, members_seq FROM segments ORDER BY num",
    [ST_LOAD_TRANSITIONS_AFTER] = "SELECT seq, seg, person, public_id, dir, at, cause, detail FROM segment_transitions"
                                  " WHERE seg = ?1 AND seq > ?2 ORDER BY seq",
    [ST_LAST_SEQ] = "SELECT coalesce(max(seq), 0) FROM segment_transitions",
    [ST_SEGMENT_MEMBERS_PUT] = "UPDATE segments SET members = ?2, members_seq = ?3 WHERE num = ?1",
    [ST_PERSON_GET] = "SELECT public_id, attrs FROM people WHERE id = ?1",
    [ST_COUNT_PEOPLE] = "SELECT count(*) FROM people",
    [ST_INTEGRITY_CHECK] = "PRAGMA integrity_check",
};

/* The statements of the read-only connection (store_read_*). */
enum rstmt_id {
    RST_MEMBER,
    RST_MEMBERSHIPS,
    RST_TRANSITIONS,
    RST_TRANSITIONS_SEG,
    RST_TRANSITIONS_PERSON,
    RST_TRANSITIONS_SEG_PERSON,
    RST_OUTBOX,
    RST_HISTORY,
    RST_DAILY,
    RST_COUNT
};

#define TRANSITION_COLUMNS "SELECT seq, seg, person, public_id, dir, at, cause, detail FROM segment_transitions"

/* One statement per combination of filters, so that each uses its index: a
 * segment's log by (seg, seq), a person's by (person, seq). :before is INT64_MAX
 * for "from the newest". */
static const char *const rstmt_sql[RST_COUNT] = {
    [RST_MEMBER] = "SELECT entered_at, cause FROM segment_members WHERE seg = ?1 AND person = ?2",
    [RST_MEMBERSHIPS] = "SELECT seg, person, entered_at, cause FROM segment_members WHERE person = ?1"
                        " ORDER BY seg",
    [RST_TRANSITIONS] = TRANSITION_COLUMNS " WHERE seq < :before ORDER BY seq DESC LIMIT :limit",
    [RST_TRANSITIONS_SEG] = TRANSITION_COLUMNS " WHERE seg = :seg AND seq < :before"
                            " ORDER BY seq DESC LIMIT :limit",
    [RST_TRANSITIONS_PERSON] = TRANSITION_COLUMNS " WHERE person = :person AND seq < :before"
                               " ORDER BY seq DESC LIMIT :limit",
    /* `+seg` keeps the planner on the person's index: a person has far fewer
     * transitions than a segment. */
    [RST_TRANSITIONS_SEG_PERSON] = TRANSITION_COLUMNS " WHERE person = :person AND +seg = :seg"
                                   " AND seq < :before ORDER BY seq DESC LIMIT :limit",
    [RST_OUTBOX] = TRANSITION_COLUMNS " WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    [RST_HISTORY] = "SELECT at, size, kind FROM segment_history WHERE seg = ?1 AND at >= ?2 ORDER BY at",
    /* day: `at` rounded down to a whole day of 86400000 ms (floor, also before 1970: SQL's %
     * truncates toward zero). Times within a day of INT64_MIN have no such midnight. */
    [RST_DAILY] = "SELECT day, sum(dir = 1), sum(dir = 2) FROM"
                  " (SELECT at - ((at % 86400000) + 86400000) % 86400000 AS day, dir"
                  "  FROM segment_transitions WHERE seg = ?1 AND at >= ?2)"
                  " GROUP BY day ORDER BY day",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT];
    int lock_fd;          /* flock(LOCK_EX) on DIR/segd.lock, held until close */
    int fail_countdown;   /* store_fail_nth_write: fail when it reaches 0; 0 = off */
    /* Appended events wait here, as runs, until COMMIT writes each run as one block
     * (or a merge, erasure or load needs them in the table first: written stays set).
     * runs[0 .. n_runs) are in use; up to runs_alloc keep their buffers for reuse. */
    evrun *runs;
    size_t n_runs, runs_alloc;
    /* The runs as SAVEPOINT found them, for ROLLBACK TO: run contents only grow, so
     * the lengths (and written flags, limits) say exactly what to undo. */
    struct run_mark { uint32_t n; size_t bytes_len; int written; uint64_t limit; } *marks;
    size_t n_marks, marks_cap;
    evrun edit;           /* a block unpacked for a merge or erasure */
    char *block_buf;      /* encoded block bytes */
    size_t block_cap;
    char *scratch;        /* store_messages_put's blob, reused */
    size_t scratch_cap;
    /* The read-only connection of store_read_*, and its statements: any thread may
     * use them while holding read_lock (SQLITE_OPEN_NOMUTEX: the lock is ours). */
    pthread_mutex_t read_lock;
    int read_lock_ready;
    sqlite3 *rdb;
    sqlite3_stmt *rstmt[RST_COUNT];
};

/* ---- errors ---- */

/* Logs "segd: store: WHAT: <sqlite's message>" for connection db (may be NULL) and
 * maps rc to a SEGD_E* code. */
static int db_error(sqlite3 *db, const char *what, int rc)
{
    fprintf(stderr, "segd: store: %s: %s\n", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    return (rc & 0xff) == SQLITE_BUSY ? SEGD_EBUSY : SEGD_EIO;
}

/* db_error for the writer's connection. */
static int store_error(store *s, const char *what, int rc)
{
    return db_error(s->db, what, rc);
}

/* Counts one write call for store_fail_nth_write; 1 when this call must fail. */
static int injected_fault(store *s, const char *what)
{
    if (s->fail_countdown <= 0 || --s->fail_countdown > 0)
        return 0;
    fprintf(stderr, "segd: store: %s: injected fault (store_fail_nth_write)\n", what);
    return 1;
}

/* ---- statement helpers ---- */

/* Runs a bound statement that returns no rows, then resets it and clears its
 * bindings (they point into the caller's memory: SQLITE_STATIC). bind_rc is the
 * first failing bind's code, or SQLITE_OK. */
static int stmt_run(store *s, enum stmt_id id, int bind_rc, const char *what)
{
    sqlite3_stmt *st = s->stmt[id];
    int rc = bind_rc;
    int ret = 0;

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        ret = store_error(s, what, rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

/* Binds a string of known length without copying it. */
static int bind_text(sqlite3_stmt *st, int col, const char *text, size_t len)
{
    if (!text)
        return sqlite3_bind_null(st, col);
    return sqlite3_bind_text64(st, col, text, (sqlite3_uint64)len, SQLITE_STATIC, SQLITE_UTF8);
}

static int bind_str(sqlite3_stmt *st, int col, const char *text)
{
    return bind_text(st, col, text, text ? strlen(text) : 0);
}

/* Ends a load: resets the statement (so it holds no read snapshot, which would
 * starve WAL checkpoints) and turns SQLite's final step code into the result. */
static int load_finish(store *s, enum stmt_id id, int step_rc, int cb_rc, const char *what)
{
    int ret = cb_rc;

    if (cb_rc == 0 && step_rc != SQLITE_DONE)
        ret = store_error(s, what, step_rc);
    sqlite3_reset(s->stmt[id]);
    sqlite3_clear_bindings(s->stmt[id]);
    return ret;
}

/* Column text as (pointer, length), NULL for SQL NULL. */
static const char *column_text(sqlite3_stmt *st, int col, size_t *len)
{
    const char *text;

    if (sqlite3_column_type(st, col) == SQLITE_NULL) {
        *len = 0;
        return NULL;
    }
    text = (const char *)sqlite3_column_text(st, col);
    *len = (size_t)sqlite3_column_bytes(st, col);
    return text;
}

/* ---- open and close ---- */

/* mkdir -p with mode 0700 for the directories it creates. 0 or -1 with errno. */
static int mkdir_p(const char *dir)
{
    char path[PATH_MAX];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof path) {
        errno = len ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Runs a one-row query (a PRAGMA) and copies its first column as text to out. */
static int query_text(store *s, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *text = sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", text ? (const char *)text : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        out[0] = 0;
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK)
        store_error(s, sql, rc);
    sqlite3_finalize(st);
    return rc;
}

static int query_int(store *s, const char *sql, long long *out)
{
    char text[32];
    int rc = query_text(s, sql, text, sizeof text);

    if (rc == SQLITE_OK)
        *out = strtoll(text, NULL, 10);
    return rc;
}

/* Takes the data-directory lock; fills err when another process holds it. */
static int lock_dir(store *s, const char *dir, const char *lock_path, segd_error *err)
{
    s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0)
        return segd_error_set(err, 500, "data_dir_unusable",
                              "cannot open %s: %s; check that --data names a writable directory",
                              lock_path, strerror(errno));
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return segd_error_set(err, 503, "data_dir_locked",
                                  "another segd is using data directory %s; stop it or choose "
                                  "another --data", dir);
        return segd_error_set(err, 500, "data_dir_unusable", "cannot lock %s: %s",
                              lock_path, strerror(errno));
    }
    return 0;
}

/* Connection settings; see store.h for why synchronous=FULL. */
static int configure(store *s, const char *db_path, segd_error *err)
{
    static const char *const pragmas =
        "PRAGMA synchronous = FULL;"
        "PRAGMA foreign_keys = OFF;"
        "PRAGMA cache_size = -262144;"       /* KiB: 256 MiB, the engine rebuild reads everything */
        "PRAGMA temp_store = MEMORY;"
        /* Checkpoint every 64 MiB of WAL, not every 4 MiB: an import commits every few
         * thousand events, and random inserts into the people table dirty much of that
         * index each time; checkpointing less often copies each page once instead of
         * once per commit (measured: 1M events in 10k-event transactions went from
         * 160k to 240k events/s). */
        "PRAGMA wal_autocheckpoint = 16384;"
        "PRAGMA journal_size_limit = 67108864;"; /* then truncate the WAL back to 64 MiB */
    char mode[16];
    int rc;

    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    rc = query_text(s, "PRAGMA journal_mode = WAL", mode, sizeof mode);
    if (rc != SQLITE_OK)
        return segd_error_set(err, 500, "store_open_failed",
                              "cannot use %s as a database: %s; move the file away or choose "
                              "another --data", db_path, sqlite3_errmsg(s->db));
    if (strcmp(mode, "wal") != 0)
        return segd_error_set(err, 500, "store_open_failed",
                              "%s cannot use write-ahead logging (journal mode is \"%s\"); put "
                              "--data on a local filesystem", db_path, mode);
    rc = sqlite3_exec(s->db, pragmas, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        store_error(s, "configure", rc);
        return segd_error_set(err, 500, "store_open_failed", "cannot configure %s: %s",
                              db_path, sqlite3_errmsg(s->db));
    }
    return 0;
}

/* Applies migrations user_version+1 .. STORE_SCHEMA_VERSION, one transaction each.
 * Refuses a database written by a newer segd, or one that is not segd's. */
static int migrate(store *s, const char *db_path, segd_error *err)
{
    long long app_id, version, objects;
    char sql[96];

    if (query_int(s, "PRAGMA application_id", &app_id) != SQLITE_OK ||
        query_int(s, "PRAGMA user_version", &version) != SQLITE_OK ||
        query_int(s, "SELECT count(*) FROM sqlite_master", &objects) != SQLITE_OK)
        return segd_error_set(err, 500, "store_open_failed", "cannot read the schema of %s: %s",
                              db_path, sqlite3_errmsg(s->db));
    if (version < 0 ||
        (app_id != STORE_APPLICATION_ID && (app_id != 0 || version != 0 || objects != 0)))
        return segd_error_set(err, 500, "not_a_segd_database",
                              "%s is not a segd database; move it away or choose another --data",
                              db_path);
    if (version > STORE_SCHEMA_VERSION)
        return segd_error_set(err, 500, "schema_too_new",
                              "%s has schema version %lld but this segd supports up to %d; "
                              "run a newer segd or choose another --data",
                              db_path, version, STORE_SCHEMA_VERSION);

    for (long long v = version + 1; v <= STORE_SCHEMA_VERSION; v++) {
        int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, migrations[v - 1].sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK && migrations[v - 1].step)
            rc = migrations[v - 1].step(s->db);
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %lld",
                 STORE_APPLICATION_ID, v);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            char what[48];
            snprintf(what, sizeof what, "migration %lld", v);
            store_error(s, what, rc);
            segd_error_set(err, 500, "store_migration_failed",
                           "cannot migrate %s to schema version %lld: %s", db_path, v,
                           sqlite3_errmsg(s->db));
            if (!sqlite3_get_autocommit(s->db))
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return SEGD_EIO;
        }
    }
    return 0;
}

/* Migration 3's step: version 2's events (a row each, key type << 32 | row) packed
 * into blocks of consecutive rows of one type, in key order; then the table goes.
 * Returns an SQLite code. */
static int migrate_events_to_blocks(sqlite3 *db)
{
    sqlite3_stmt *sel = NULL, *ins = NULL;
    evrun r;
    char *buf = NULL;
    size_t cap = 0;
    int have = 0;
    int rc = sqlite3_prepare_v2(db, "SELECT id, person, ts, props FROM events ORDER BY id", -1, &sel, NULL);

    evrun_init(&r);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT INTO event_blocks(id, n, data) VALUES(?1, ?2, ?3)", -1, &ins, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
        sqlite3_int64 key = sqlite3_column_int64(sel, 0);
        int type = (int)(key >> 32);
        uint32_t row = (uint32_t)key;
        if (have && (r.type != type || (uint64_t)r.first + r.n != row || r.n >= EVBLOCK_MAX_ROWS)) {
            rc = insert_block(ins, &r, &buf, &cap);
            have = 0;
            if (rc != SQLITE_OK)
                break;
        }
        if (!have) {
            evrun_reset(&r, type, row);
            have = 1;
        }
        size_t len;
        const char *props = column_text(sel, 3, &len);
        evrun_append(&r, (uint32_t)sqlite3_column_int64(sel, 1), sqlite3_column_int64(sel, 2), props, len);
        rc = SQLITE_OK;
    }
    if (rc == SQLITE_DONE)
        rc = have ? insert_block(ins, &r, &buf, &cap) : SQLITE_OK;
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    evrun_release(&r);
    free(buf);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "DROP TABLE events", NULL, NULL, NULL);
    return rc;
}

static int prepare_all(store *s, segd_error *err)
{
    for (int i = 0; i < ST_COUNT; i++) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            store_error(s, stmt_sql[i], rc);
            return segd_error_set(err, 500, "store_open_failed", "cannot prepare statements: %s",
                                  sqlite3_errmsg(s->db));
        }
    }
    return 0;
}

/* Opens the read-only connection of store_read_* (after the migrations: it prepares
 * statements over the newest schema) and prepares its statements. */
static int open_reader(store *s, const char *db_path, segd_error *err)
{
    int rc = sqlite3_open_v2(db_path, &s->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(s->rdb, STORE_BUSY_TIMEOUT_MS);
    for (int i = 0; rc == SQLITE_OK && i < RST_COUNT; i++)
        rc = sqlite3_prepare_v3(s->rdb, rstmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->rstmt[i], NULL);
    if (rc != SQLITE_OK) {
        db_error(s->rdb, "open the read connection", rc);
        return segd_error_set(err, 500, "store_open_failed", "cannot open %s for reading: %s", db_path,
                              s->rdb ? sqlite3_errmsg(s->rdb) : sqlite3_errstr(rc));
    }
    return 0;
}

store *store_open(const char *dir, segd_error *err)
{
    char lock_path[PATH_MAX], db_path[PATH_MAX];
    store *s = NULL;
    int rc;

    assert(dir && err);
    segd_error_clear(err);
    if (!*dir) {
        segd_error_set(err, 500, "data_dir_unusable", "the data directory is empty; pass --data DIR");
        return NULL;
    }
    if ((size_t)snprintf(lock_path, sizeof lock_path, "%s/segd.lock", dir) >= sizeof lock_path ||
        (size_t)snprintf(db_path, sizeof db_path, "%s/segd.db", dir) >= sizeof db_path) {
        segd_error_set(err, 500, "data_dir_unusable", "the data directory path is too long: %s", dir);
        return NULL;
    }
    if (mkdir_p(dir) != 0) {
        segd_error_set(err, 500, "data_dir_unusable",
                       "cannot create data directory %s: %s; choose another --data",
                       dir, strerror(errno));
        return NULL;
    }

    s = xcalloc(1, sizeof *s);
    s->lock_fd = -1;
    if (pthread_mutex_init(&s->read_lock, NULL) != 0) {
        segd_error_set(err, 500, "store_open_failed", "cannot create a mutex: %s", strerror(errno));
        goto fail;
    }
    s->read_lock_ready = 1;
    if (lock_dir(s, dir, lock_path, err) != 0)
        goto fail;

    rc = sqlite3_open_v2(db_path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        store_error(s, "open", rc);
        segd_error_set(err, 500, "store_open_failed", "cannot open %s: %s", db_path,
                       s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    if (configure(s, db_path, err) != 0 || migrate(s, db_path, err) != 0 ||
        prepare_all(s, err) != 0 || open_reader(s, db_path, err) != 0)
        goto fail;
    return s;

fail:
    store_close(s);
    return NULL;
}

void store_close(store *s)
{
    if (!s)
        return;
    /* The reader first, so that the writer's close is the last one: it checkpoints
     * and removes the WAL. */
    for (int i = 0; i < RST_COUNT; i++)
        sqlite3_finalize(s->rstmt[i]);
    if (s->rdb && sqlite3_close(s->rdb) != SQLITE_OK)
        db_error(s->rdb, "close the read connection", SQLITE_BUSY);
    if (s->read_lock_ready)
        pthread_mutex_destroy(&s->read_lock);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    /* Rolls back an open transaction; every statement is finalized, so it closes. */
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        store_error(s, "close", SQLITE_BUSY);
    /* Only after the database is closed may another segd take the directory. */
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    for (size_t i = 0; i < s->runs_alloc; i++)
        evrun_release(&s->runs[i]);
    free(s->runs);
    free(s->marks);
    evrun_release(&s->edit);
    free(s->block_buf);
    free(s->scratch);
    free(s);
}

/* ---- transactions ---- */

int store_begin(store *s)
{
    return stmt_run(s, ST_BEGIN, SQLITE_OK, "begin");
}

/* ---- runs of appended events ---- */

/* An event's key, and a block's: its type in the high 32 bits, its (first) row below. */
static sqlite3_int64 event_key(int type, uint32_t row)
{
    return (sqlite3_int64)type << 32 | row;
}

/* Inserts the run as one block row with the given statement (store's or a
 * migration's); returns an SQLite code. */
static int insert_block(sqlite3_stmt *st, const evrun *r, char **buf, size_t *cap)
{
    size_t len = evblock_encode(r, buf, cap);
    int rc = sqlite3_bind_int64(st, 1, event_key(r->type, r->first));
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, r->n);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 3, *buf, len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Writes every run not yet in the table as a block. */
static int flush_runs(store *s)
{
    for (size_t i = 0; i < s->n_runs; i++) {
        evrun *r = &s->runs[i];
        if (r->written || r->n == 0)
            continue;
        int rc = insert_block(s->stmt[ST_BLOCK_INSERT], r, &s->block_buf, &s->block_cap);
        if (rc != SQLITE_OK)
            return store_error(s, "write event block", rc);
        r->written = 1;
    }
    return 0;
}

/* Forgets every run (the transaction ended), keeping the buffers. */
static void clear_runs(store *s)
{
    s->n_runs = 0;
    s->n_marks = 0;
}

int store_commit(store *s)
{
    if (injected_fault(s, "commit"))
        return SEGD_EIO;
    int rc = flush_runs(s);
    if (rc == 0)
        rc = stmt_run(s, ST_COMMIT, SQLITE_OK, "commit");
    if (rc == 0)
        clear_runs(s);
    return rc;
}

int store_rollback(store *s)
{
    clear_runs(s);
    /* SQLite may already have rolled back (a failed COMMIT after an I/O error). */
    if (sqlite3_get_autocommit(s->db))
        return 0;
    return stmt_run(s, ST_ROLLBACK, SQLITE_OK, "rollback");
}

int store_savepoint(store *s)
{
    int rc = stmt_run(s, ST_SAVEPOINT, SQLITE_OK, "savepoint");
    if (rc == 0) {
        s->marks = xgrow(s->marks, sizeof *s->marks, &s->marks_cap, s->n_runs + 1, 16);
        for (size_t i = 0; i < s->n_runs; i++) {
            const evrun *r = &s->runs[i];
            s->marks[i] = (struct run_mark){r->n, r->bytes_len, r->written, r->limit};
        }
        s->n_marks = s->n_runs;
    }
    return rc;
}

int store_release(store *s)
{
    return stmt_run(s, ST_RELEASE, SQLITE_OK, "release savepoint");
}

int store_rollback_to(store *s)
{
    /* Not RELEASE after a failed ROLLBACK TO: that would keep the request's rows. */
    int rc = stmt_run(s, ST_ROLLBACK_TO, SQLITE_OK, "rollback to savepoint");

    /* the runs as they were: blocks written since are gone with the savepoint */
    for (size_t i = 0; i < s->n_marks && i < s->n_runs; i++) {
        evrun *r = &s->runs[i];
        r->n = s->marks[i].n;
        r->bytes_len = s->marks[i].bytes_len;
        r->written = s->marks[i].written;
        r->limit = s->marks[i].limit;
    }
    if (s->n_runs > s->n_marks)
        s->n_runs = s->n_marks;
    if (rc == 0)
        rc = stmt_run(s, ST_RELEASE, SQLITE_OK, "release savepoint");
    return rc;
}

/* ---- writes ---- */

int store_person_put(store *s, uint32_t id, uint64_t public_id, const char *attrs_json, size_t len)
{
    sqlite3_stmt *st = s->stmt[ST_PERSON_PUT];
    int rc;

    if (injected_fault(s, "put person"))
        return SEGD_EIO;
    if (!attrs_json) {
        fprintf(stderr, "segd: store: put person: attributes are NULL\n");
        return SEGD_EINVAL;
    }
    rc = sqlite3_bind_int64(st, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, (sqlite3_int64)public_id); /* round-trips all 64 bits */
    if (rc == SQLITE_OK)
        rc = bind_text(st, 3, attrs_json, len);
    return stmt_run(s, ST_PERSON_PUT, rc, "put person");
}

int store_person_delete(store *s, uint32_t id)
{
    if (injected_fault(s, "delete person"))
        return SEGD_EIO;
    return stmt_run(s, ST_PERSON_DELETE, sqlite3_bind_int64(s->stmt[ST_PERSON_DELETE], 1, id), "delete person");
}

/* The block of `type` that holds or precedes row: 1 with its first row and n, 0 when
 * the type has no block at or before row, or a negative code. */
static int block_before(store *s, int type, uint32_t row, uint32_t *first, uint32_t *n)
{
    sqlite3_stmt *st = s->stmt[ST_BLOCK_PREV];
    int rc = sqlite3_bind_int64(st, 1, event_key(type, row)), ret = 0;

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        sqlite3_int64 id = sqlite3_column_int64(st, 0);
        if ((int)(id >> 32) == type) {
            *first = (uint32_t)id;
            *n = (uint32_t)sqlite3_column_int64(st, 1);
            ret = 1;
        }
    } else if (rc != SQLITE_DONE) {
        ret = store_error(s, "find event block", rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

/* The first row of the type's next block after row, or 2^32 when there is none (or a
 * negative code). */
static int64_t block_after(store *s, int type, uint32_t row)
{
    sqlite3_stmt *st = s->stmt[ST_BLOCK_NEXT];
    int rc = sqlite3_bind_int64(st, 1, event_key(type, row));
    int64_t ret = (int64_t)UINT32_MAX + 1;

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        sqlite3_int64 id = sqlite3_column_int64(st, 0);
        if ((int)(id >> 32) == type)
            ret = (uint32_t)id;
    } else if (rc != SQLITE_DONE) {
        ret = store_error(s, "find event block", rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

/* Starts a run at (type, row) after checking that no stored block or waiting run holds
 * the key (the engine never reuses a row: a taken key is an inconsistency, SEGD_EIO).
 * Its limit is the next block or run of the type, and runs below it stop at row. */
static int start_run(store *s, int type, uint32_t row, evrun **out)
{
    uint64_t limit = (uint64_t)UINT32_MAX + 1;
    uint32_t first, n;
    int rc;

    for (size_t i = 0; i < s->n_runs; i++) {
        const evrun *r = &s->runs[i];
        if (r->type != type)
            continue;
        if (r->first <= row && row < (uint64_t)r->first + r->n)
            goto taken;
        if (r->first > row && r->first < limit)
            limit = r->first;
    }
    if ((rc = block_before(s, type, row, &first, &n)) < 0)
        return rc;
    if (rc == 1 && row < (uint64_t)first + n)
        goto taken;
    int64_t next = block_after(s, type, row);
    if (next < 0)
        return (int)next;
    if ((uint64_t)next < limit)
        limit = (uint64_t)next;
    for (size_t i = 0; i < s->n_runs; i++) {
        evrun *r = &s->runs[i];
        if (r->type == type && r->first < row && r->limit > row)
            r->limit = row;
    }
    if (s->n_runs == s->runs_alloc) {
        size_t old = s->runs_alloc;
        s->runs = xgrow(s->runs, sizeof *s->runs, &s->runs_alloc, s->n_runs + 1, 16);
        for (size_t i = old; i < s->runs_alloc; i++)
            evrun_init(&s->runs[i]);
    }
    *out = &s->runs[s->n_runs++];
    evrun_reset(*out, type, row);
    (*out)->limit = limit;
    return 0;

taken:
    fprintf(stderr, "segd: store: insert event: type %d row %u is stored already\n", type, row);
    return SEGD_EIO;
}

int store_event_insert(store *s, int type, uint32_t row, uint32_t person, int64_t time_ms,
                       const char *props_json, size_t len)
{
    evrun *r = NULL;
    int rc;

    if (injected_fault(s, "insert event"))
        return SEGD_EIO;
    if (type < 0 || (props_json && len >= EVBLOCK_HOLE - 1))
        return SEGD_EINVAL;
    /* the type's open run, if this row continues it: the newest run is the likely one */
    for (size_t i = s->n_runs; i-- > 0;) {
        evrun *x = &s->runs[i];
        if (x->type == type && !x->written && x->n < EVBLOCK_MAX_ROWS &&
            (uint64_t)x->first + x->n == row && row < x->limit) {
            r = x;
            break;
        }
    }
    if (!r && (rc = start_run(s, type, row, &r)) != 0)
        return rc;
    evrun_append(r, person, time_ms, props_json, len);
    if (sqlite3_get_autocommit(s->db)) {      /* no transaction: stored at once, as SQLite would */
        rc = flush_runs(s);
        clear_runs(s);
        return rc;
    }
    return 0;
}

static int cmp_event_key(const void *a, const void *b)
{
    const store_event_key *x = a, *y = b;
    sqlite3_int64 kx = event_key(x->type, x->row), ky = event_key(y->type, y->row);
    return kx < ky ? -1 : kx > ky;
}

/* Rewrites the blocks holding the keys: gives their events to `person` (move) or
 * makes them holes (erase; a block of holes only is deleted). Missing keys are
 * skipped. One read and one write per block touched. */
static int edit_events(store *s, const store_event_key *keys, size_t n, int erase, uint32_t person,
                       const char *what)
{
    int rc = 0;

    if (injected_fault(s, what))
        return SEGD_EIO;
    for (size_t i = 0; i < n; i++)
        if (keys[i].type < 0)
            return SEGD_EINVAL;
    if (n == 0)
        return 0;
    if ((rc = flush_runs(s)) != 0)          /* the events may still wait in runs */
        return rc;
    store_event_key *sorted = xmalloc(n * sizeof *sorted);
    memcpy(sorted, keys, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_event_key);
    for (size_t i = 0; i < n && rc == 0;) {
        sqlite3_stmt *st = s->stmt[ST_BLOCK_AT];
        int type = sorted[i].type;
        int step = sqlite3_bind_int64(st, 1, event_key(type, sorted[i].row));
        uint32_t first = 0, rows = 0;
        int found = 0;
        if (step == SQLITE_OK)
            step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            sqlite3_int64 id = sqlite3_column_int64(st, 0);
            first = (uint32_t)id;
            rows = (uint32_t)sqlite3_column_int64(st, 1);
            found = (int)(id >> 32) == type && sorted[i].row < (uint64_t)first + rows;
            if (found && evblock_decode(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), type,
                                        first, rows, &s->edit) != 0) {
                fprintf(stderr, "segd: store: %s: event block (%d, %u) is damaged\n", what, type, first);
                rc = SEGD_EIO;
            }
        } else if (step != SQLITE_DONE) {
            rc = store_error(s, what, step);
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (rc != 0)
            break;
        if (!found) {
            i++;
            continue;
        }
        for (; i < n && sorted[i].type == type && sorted[i].row < (uint64_t)first + rows; i++) {
            uint32_t k = sorted[i].row - first;
            if (s->edit.lens[k] == EVBLOCK_HOLE)
                continue;
            if (erase)
                evrun_hole(&s->edit, k);
            else
                s->edit.persons[k] = person;
        }
        if (evrun_all_holes(&s->edit)) {
            rc = stmt_run(s, ST_BLOCK_DELETE, sqlite3_bind_int64(s->stmt[ST_BLOCK_DELETE], 1, event_key(type, first)),
                          what);
        } else {
            size_t len = evblock_encode(&s->edit, &s->block_buf, &s->block_cap);
            sqlite3_stmt *up = s->stmt[ST_BLOCK_UPDATE];
            int b = sqlite3_bind_int64(up, 1, event_key(type, first));
            if (b == SQLITE_OK)
                b = sqlite3_bind_blob64(up, 2, s->block_buf, len, SQLITE_STATIC);
            rc = stmt_run(s, ST_BLOCK_UPDATE, b, what);
        }
    }
    free(sorted);
    return rc;
}

int store_events_set_person(store *s, const store_event_key *keys, size_t n, uint32_t person)
{
    return edit_events(s, keys, n, 0, person, "move events");
}

int store_events_delete(store *s, const store_event_key *keys, size_t n)
{
    return edit_events(s, keys, n, 1, 0, "delete events");
}

int store_event_set_person(store *s, int type, uint32_t row, uint32_t person)
{
    store_event_key k = {type, row};
    return edit_events(s, &k, 1, 0, person, "move event");
}

int store_event_delete(store *s, int type, uint32_t row)
{
    store_event_key k = {type, row};
    return edit_events(s, &k, 1, 1, 0, "delete event");
}

int store_attribute_put(store *s, const char *name, const char *type_name, int declared)
{
    sqlite3_stmt *st = s->stmt[ST_ATTRIBUTE_PUT];
    int rc;

    if (injected_fault(s, "put attribute"))
        return SEGD_EIO;
    rc = bind_str(st, 1, name);
    if (rc == SQLITE_OK)
        rc = bind_str(st, 2, type_name);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 3, declared != 0);
    return stmt_run(s, ST_ATTRIBUTE_PUT, rc, "put attribute");
}

int store_attribute_delete(store *s, const char *name)
{
    if (injected_fault(s, "delete attribute"))
        return SEGD_EIO;
    return stmt_run(s, ST_ATTRIBUTE_DELETE, bind_str(s->stmt[ST_ATTRIBUTE_DELETE], 1, name),
                    "delete attribute");
}

int store_event_type_put(store *s, int type, const char *name)
{
    sqlite3_stmt *st = s->stmt[ST_EVENT_TYPE_PUT];
    int rc;

    if (injected_fault(s, "put event type"))
        return SEGD_EIO;
    rc = sqlite3_bind_int(st, 1, type);
    if (rc == SQLITE_OK)
        rc = bind_str(st, 2, name);
    return stmt_run(s, ST_EVENT_TYPE_PUT, rc, "put event type");
}

int store_property_put(store *s, int type, const char *name, const char *type_name)
{
    sqlite3_stmt *st = s->stmt[ST_PROPERTY_PUT];
    int rc;

    if (injected_fault(s, "put property"))
        return SEGD_EIO;
    rc = sqlite3_bind_int(st, 1, type);
    if (rc == SQLITE_OK)
        rc = bind_str(st, 2, name);
    if (rc == SQLITE_OK)
        rc = bind_str(st, 3, type_name);
    return stmt_run(s, ST_PROPERTY_PUT, rc, "put property");
}

int store_messages_put(store *s, const char *source, const char *const *ids, size_t n, int64_t at_ms)
{
    sqlite3_stmt *st = s->stmt[ST_MESSAGE_PUT];
    int rc;

    if (n == 0)
        return 0;
    if (injected_fault(s, "put message ids"))
        return SEGD_EIO;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += strlen(ids[i]) + 1;
    s->scratch = xgrow(s->scratch, 1, &s->scratch_cap, len, 4096);
    char *p = s->scratch;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ids[i]);
        memcpy(p, ids[i], l);
        p[l] = 0;
        p += l + 1;
    }
    rc = sqlite3_bind_int64(st, 1, at_ms);
    if (rc == SQLITE_OK)
        rc = bind_str(st, 2, source);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(st, 3, s->scratch, len - 1, SQLITE_STATIC);  /* no NUL after the last */
    return stmt_run(s, ST_MESSAGE_PUT, rc, "put message ids");
}

int store_prune_messages(store *s, int64_t before_ms)
{
    return stmt_run(s, ST_MESSAGES_PRUNE, sqlite3_bind_int64(s->stmt[ST_MESSAGES_PRUNE], 1, before_ms),
                    "prune message ids");
}

/* ---- segments ---- */

int store_segment_put(store *s, const char *id, const char *definition_json, size_t len, int64_t *num)
{
    sqlite3_stmt *up = s->stmt[ST_SEGMENT_UPDATE], *ins = s->stmt[ST_SEGMENT_INSERT];
    int rc, ret = 0, found = 0;
    sqlite3_int64 key = 0;

    if (injected_fault(s, "put segment"))
        return SEGD_EIO;
    if (!id || !definition_json) {
        fprintf(stderr, "segd: store: put segment: id or definition is NULL\n");
        return SEGD_EINVAL;
    }
    rc = bind_str(up, 1, id);
    if (rc == SQLITE_OK)
        rc = bind_text(up, 2, definition_json, len);
    while (rc == SQLITE_OK && (rc = sqlite3_step(up)) == SQLITE_ROW) {
        key = sqlite3_column_int64(up, 0);
        found = 1;
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE)
        ret = store_error(s, "put segment", rc);
    sqlite3_reset(up);
    sqlite3_clear_bindings(up);
    if (ret == 0 && !found) {
        rc = bind_str(ins, 1, id);
        if (rc == SQLITE_OK)
            rc = bind_text(ins, 2, definition_json, len);
        ret = stmt_run(s, ST_SEGMENT_INSERT, rc, "put segment");
        key = sqlite3_last_insert_rowid(s->db);
    }
    if (ret == 0 && num)
        *num = key;
    return ret;
}

int store_segment_delete(store *s, int64_t num)
{
    static const enum stmt_id steps[] = {ST_SEGMENT_MEMBERS_DELETE, ST_SEGMENT_TRANSITIONS_DELETE,
                                         ST_SEGMENT_HISTORY_DELETE, ST_SEGMENT_DELETE};
    int rc = 0;

    if (injected_fault(s, "delete segment"))
        return SEGD_EIO;
    for (size_t i = 0; rc == 0 && i < sizeof steps / sizeof steps[0]; i++)
        rc = stmt_run(s, steps[i], sqlite3_bind_int64(s->stmt[steps[i]], 1, num), "delete segment");
    return rc;
}

int store_segment_cached_put(store *s, int64_t num, int64_t cached_at, const void *data, size_t len)
{
    sqlite3_stmt *st = s->stmt[ST_SEGMENT_CACHED_PUT];
    int rc;

    if (injected_fault(s, "put segment snapshot"))
        return SEGD_EIO;
    rc = sqlite3_bind_int64(st, 1, num);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, cached_at);
    if (rc == SQLITE_OK)
        rc = data ? sqlite3_bind_blob64(st, 3, data, len, SQLITE_STATIC) : sqlite3_bind_null(st, 3);
    return stmt_run(s, ST_SEGMENT_CACHED_PUT, rc, "put segment snapshot");
}

int store_segment_members_put(store *s, int64_t num, const void *data, size_t len, int64_t seq)
{
    sqlite3_stmt *st = s->stmt[ST_SEGMENT_MEMBERS_PUT];
    int rc;

    if (injected_fault(s, "put segment members"))
        return SEGD_EIO;
    rc = sqlite3_bind_int64(st, 1, num);
    if (rc == SQLITE_OK)
        rc = data ? sqlite3_bind_blob64(st, 2, data, len, SQLITE_STATIC) : sqlite3_bind_null(st, 2);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, seq);
    return stmt_run(s, ST_SEGMENT_MEMBERS_PUT, rc, "put segment members");
}

int store_member_enter(store *s, int64_t num, uint32_t person, int64_t entered_at, int cause)
{
    sqlite3_stmt *st = s->stmt[ST_MEMBER_ENTER];
    int rc;

    if (injected_fault(s, "enter member"))
        return SEGD_EIO;
    rc = sqlite3_bind_int64(st, 1, num);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, person);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, entered_at);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 4, cause);
    return stmt_run(s, ST_MEMBER_ENTER, rc, "enter member");
}

int store_member_exit(store *s, int64_t num, uint32_t person)
{
    sqlite3_stmt *st = s->stmt[ST_MEMBER_EXIT];
    int rc;

    if (injected_fault(s, "exit member"))
        return SEGD_EIO;
    rc = sqlite3_bind_int64(st, 1, num);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, person);
    return stmt_run(s, ST_MEMBER_EXIT, rc, "exit member");
}

int store_transition_add(store *s, int64_t num, uint32_t person, uint64_t public_id, int dir, int64_t at, int cause,
                         const char *detail, int64_t *seq)
{
    sqlite3_stmt *st = s->stmt[ST_TRANSITION_ADD];
    int rc, ret;

    if (injected_fault(s, "add transition"))
        return SEGD_EIO;
    if (dir != 1 && dir != 2) {
        fprintf(stderr, "segd: store: add transition: direction %d is neither 1 nor 2\n", dir);
        return SEGD_EINVAL;
    }
    rc = sqlite3_bind_int64(st, 1, num);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, person);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)public_id);   /* round-trips all 64 bits */
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 4, dir);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 5, at);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 6, cause);
    if (rc == SQLITE_OK)
        rc = bind_str(st, 7, detail);
    ret = stmt_run(s, ST_TRANSITION_ADD, rc, "add transition");
    if (ret == 0 && seq)
        *seq = sqlite3_last_insert_rowid(s->db);
    return ret;
}

int store_history_add(store *s, int64_t num, int64_t at, uint64_t size, int kind)
{
    sqlite3_stmt *st = s->stmt[ST_HISTORY_ADD];
    int rc;

    if (injected_fault(s, "add history point"))
        return SEGD_EIO;
    rc = sqlite3_bind_int64(st, 1, num);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, at);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)size);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 4, kind);
    return stmt_run(s, ST_HISTORY_ADD, rc, "add history point");
}

int store_person_log_erase(store *s, uint32_t person)
{
    if (injected_fault(s, "erase transitions"))
        return SEGD_EIO;
    return stmt_run(s, ST_PERSON_LOG_ERASE, sqlite3_bind_int64(s->stmt[ST_PERSON_LOG_ERASE], 1, person),
                    "erase transitions");
}

int store_prune_segment_log(store *s, int64_t before_ms)
{
    int rc;

    if (injected_fault(s, "prune segment log"))
        return SEGD_EIO;
    rc = stmt_run(s, ST_TRANSITIONS_PRUNE, sqlite3_bind_int64(s->stmt[ST_TRANSITIONS_PRUNE], 1, before_ms),
                  "prune transitions");
    if (rc == 0)
        rc = stmt_run(s, ST_HISTORY_PRUNE, sqlite3_bind_int64(s->stmt[ST_HISTORY_PRUNE], 1, before_ms),
                      "prune history");
    return rc;
}

/* ---- loads ---- */

int store_load_attributes(store *s, store_attribute_cb cb, void *ctx)
{
    sqlite3_stmt *st = s->stmt[ST_LOAD_ATTRIBUTES];
    int rc = SQLITE_DONE, cb_rc = 0;

    while (cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        cb_rc = cb(ctx, (const char *)sqlite3_column_text(st, 0),
                   (const char *)sqlite3_column_text(st, 1), sqlite3_column_int(st, 2));
    return load_finish(s, ST_LOAD_ATTRIBUTES, rc, cb_rc, "load attributes");
}

int store_load_event_types(store *s, store_event_type_cb cb, void *ctx)
{
    sqlite3_stmt *st = s->stmt[ST_LOAD_EVENT_TYPES];
    int rc = SQLITE_DONE, cb_rc = 0;

    while (cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        cb_rc = cb(ctx, sqlite3_column_int(st, 0), (const char *)sqlite3_column_text(st, 1));
    return load_finish(s, ST_LOAD_EVENT_TYPES, rc, cb_rc, "load event types");
}

int store_load_properties(store *s, store_property_cb cb, void *ctx)
{
    sqlite3_stmt *st = s->stmt[ST_LOAD_PROPERTIES];
    int rc = SQLITE_DONE, cb_rc = 0;

    while (cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        cb_rc = cb(ctx, sqlite3_column_int(st, 0), (const char *)sqlite3_column_text(st, 1),
                   (const char *)sqlite3_column_text(st, 2));
    return load_finish(s, ST_LOAD_PROPERTIES, rc, cb_rc, "load properties");
}

int store_load_people(store *s, store_person_cb cb, void *ctx)
{
    sqlite3_stmt *st = s->stmt[ST_LOAD_PEOPLE];
    int rc = SQLITE_DONE, cb_rc = 0;

    while (cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t len;
        const char *attrs = column_text(st, 2, &len);
        cb_rc = cb(ctx, (uint32_t)sqlite3_column_int64(st, 0),
                   (uint64_t)sqlite3_column_int64(st, 1), attrs, len);
    }
    return load_finish(s, ST_LOAD_PEOPLE, rc, cb_rc, "load people");
}

int store_load_events(store *s, store_event_cb cb, void *ctx)
{
    sqlite3_stmt *st = s->stmt[ST_LOAD_BLOCKS];
    int rc = SQLITE_DONE, cb_rc = 0;

    if (!sqlite3_get_autocommit(s->db) && (cb_rc = flush_runs(s)) != 0)
        return cb_rc;
    while (cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        sqlite3_int64 id = sqlite3_column_int64(st, 0);
        int type = (int)(id >> 32);
        uint32_t first = (uint32_t)id, n = (uint32_t)sqlite3_column_int64(st, 1);
        evblock_iter it;
        if (evblock_open(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), n, &it) != 0) {
            fprintf(stderr, "segd: store: load events: event block (%d, %u) is damaged\n", type, first);
            cb_rc = SEGD_EIO;
            break;
        }
        uint32_t person, row = first;
        int64_t t;
        const char *props;
        size_t len;
        int hole;
        for (; cb_rc == 0 && evblock_next(&it, &person, &t, &props, &len, &hole); row++)
            if (!hole)
                cb_rc = cb(ctx, type, row, person, t, props, len);
    }
    return load_finish(s, ST_LOAD_BLOCKS, rc, cb_rc, "load events");
}

int store_load_messages(store *s, int64_t since_ms, store_message_cb cb, void *ctx)
{
    sqlite3_stmt *st = s->stmt[ST_LOAD_MESSAGES];
    int rc = sqlite3_bind_int64(st, 1, since_ms), cb_rc = 0;
    char *id = NULL;
    size_t id_cap = 0;

    if (rc == SQLITE_OK) {
        while (cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *source = (const char *)sqlite3_column_text(st, 0);
            const char *ids = sqlite3_column_blob(st, 1);
            size_t len = (size_t)sqlite3_column_bytes(st, 1);
            if (!ids) ids = "";          /* SQLite gives NULL for a zero-length blob: one empty id */
            int64_t at = sqlite3_column_int64(st, 2);
            for (size_t i = 0; cb_rc == 0 && ids && i <= len;) {        /* ids NUL-separated */
                const char *end = memchr(ids + i, 0, len - i);
                size_t l = end ? (size_t)(end - (ids + i)) : len - i;
                id = xgrow(id, 1, &id_cap, l + 1, 64);
                memcpy(id, ids + i, l);
                id[l] = 0;
                cb_rc = cb(ctx, source, id, at);
                i += l + 1;
            }
        }
    }
    free(id);
    return load_finish(s, ST_LOAD_MESSAGES, rc, cb_rc, "load message ids");
}

int store_load_segments(store *s, store_segment_cb cb, void *ctx)
{
    sqlite3_stmt *st = s->stmt[ST_LOAD_SEGMENTS];
    int rc = SQLITE_DONE, cb_rc = 0;

    while (cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t len;
        const char *id = (const char *)sqlite3_column_text(st, 1);
        const char *definition = column_text(st, 2, &len);
        const void *cached = sqlite3_column_blob(st, 4);   /* NULL for NULL and for zero bytes */
        size_t cached_len = cached ? (size_t)sqlite3_column_bytes(st, 4) : 0;
        cb_rc = cb(ctx, sqlite3_column_int64(st, 0), id, definition, len, sqlite3_column_int64(st, 3), cached,
                   cached_len);
    }
    return load_finish(s, ST_LOAD_SEGMENTS, rc, cb_rc, "load segments");
}

int store_load_checkpoints(store *s, store_checkpoint_cb cb, void *ctx)
{
    sqlite3_stmt *st = s->stmt[ST_LOAD_CHECKPOINTS];
    int rc = SQLITE_DONE, cb_rc = 0;

    while (cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *data = sqlite3_column_blob(st, 1);
        size_t len = data ? (size_t)sqlite3_column_bytes(st, 1) : 0;
        int64_t seq = sqlite3_column_int64(st, 2);
        cb_rc = cb(ctx, sqlite3_column_int64(st, 0), seq < 0 ? NULL : data, len, seq);
    }
    return load_finish(s, ST_LOAD_CHECKPOINTS, rc, cb_rc, "load member checkpoints");
}

int store_load_transitions_after(store *s, int64_t num, int64_t after_seq, store_transition_cb cb, void *ctx)
{
    sqlite3_stmt *st = s->stmt[ST_LOAD_TRANSITIONS_AFTER];
    int rc = sqlite3_bind_int64(st, 1, num), cb_rc = 0;

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, after_seq);
    if (rc != SQLITE_OK)
        return load_finish(s, ST_LOAD_TRANSITIONS_AFTER, rc, 0, "load transitions");
    while (cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_transition t = {
            .seq = sqlite3_column_int64(st, 0),
            .num = sqlite3_column_int64(st, 1),
            .person = (uint32_t)sqlite3_column_int64(st, 2),
            .public_id = (uint64_t)sqlite3_column_int64(st, 3),
            .dir = sqlite3_column_int(st, 4),
            .at = sqlite3_column_int64(st, 5),
            .cause = sqlite3_column_int(st, 6),
            .detail = (const char *)sqlite3_column_text(st, 7),
        };
        cb_rc = cb(ctx, &t);
    }
    return load_finish(s, ST_LOAD_TRANSITIONS_AFTER, rc, cb_rc, "load transitions");
}

int store_last_transition_seq(store *s, int64_t *seq)
{
    sqlite3_stmt *st = s->stmt[ST_LAST_SEQ];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        rc = SQLITE_DONE;
    }
    return load_finish(s, ST_LAST_SEQ, rc, 0, "read the last transition seq");
}

int store_load_members(store *s, store_member_cb cb, void *ctx)
{
    sqlite3_stmt *st = s->stmt[ST_LOAD_MEMBERS];
    int rc = SQLITE_DONE, cb_rc = 0;

    while (cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
        cb_rc = cb(ctx, sqlite3_column_int64(st, 0), (uint32_t)sqlite3_column_int64(st, 1),
                   sqlite3_column_int64(st, 2), sqlite3_column_int(st, 3));
    return load_finish(s, ST_LOAD_MEMBERS, rc, cb_rc, "load members");
}

int store_person_get(store *s, uint32_t id, uint64_t *public_id, char **attrs_json, size_t *len)
{
    sqlite3_stmt *st = s->stmt[ST_PERSON_GET];
    int rc = sqlite3_bind_int64(st, 1, id);
    int ret;

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        size_t n;
        const char *attrs = column_text(st, 1, &n);
        if (public_id)
            *public_id = (uint64_t)sqlite3_column_int64(st, 0);
        if (attrs_json)
            *attrs_json = xstrndup(attrs ? attrs : "", n);
        if (len)
            *len = n;
        ret = 1;
    } else if (rc == SQLITE_DONE) {
        ret = 0;
    } else {
        ret = store_error(s, "get person", rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int64_t store_count_people(store *s)
{
    sqlite3_stmt *st = s->stmt[ST_COUNT_PEOPLE];
    int rc = sqlite3_step(st);
    int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : store_error(s, "count people", rc);
    sqlite3_reset(st);
    return n;
}

int store_integrity_check(store *s)
{
    sqlite3_stmt *st = s->stmt[ST_INTEGRITY_CHECK];
    int rc, ret = 0, rows = 0;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        if (rows++ == 0 && line && strcmp(line, "ok") == 0)
            continue;
        fprintf(stderr, "segd: store: integrity check: %s\n", line ? line : "(null)");
        ret = SEGD_EIO;
    }
    if (rc != SQLITE_DONE)
        ret = store_error(s, "integrity check", rc);
    else if (rows == 0)
        ret = SEGD_EIO;
    sqlite3_reset(st);
    return ret;
}

/* ---- reads from any thread ---- */

/* Takes the read connection and returns its statement. */
static sqlite3_stmt *read_begin(store *s, enum rstmt_id id)
{
    pthread_mutex_lock(&s->read_lock);
    return s->rstmt[id];
}

/* Ends a read begun by read_begin: the result as load_finish gives it, the statement
 * reset (a statement left mid-scan would hold its snapshot and starve checkpoints)
 * and the connection released. */
static int read_finish(store *s, sqlite3_stmt *st, int step_rc, int cb_rc, const char *what)
{
    int ret = cb_rc;

    if (cb_rc == 0 && step_rc != SQLITE_DONE)
        ret = db_error(s->rdb, what, step_rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->read_lock);
    return ret;
}

/* Binds a named parameter when the statement has it. */
static int bind_named_int64(sqlite3_stmt *st, const char *name, sqlite3_int64 v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    return i > 0 ? sqlite3_bind_int64(st, i, v) : SQLITE_OK;
}

int store_read_member(store *s, int64_t num, uint32_t person, int64_t *entered_at, int *cause)
{
    sqlite3_stmt *st = read_begin(s, RST_MEMBER);
    int rc = sqlite3_bind_int64(st, 1, num);
    int found = 0;

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, person);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (entered_at)
            *entered_at = sqlite3_column_int64(st, 0);
        if (cause)
            *cause = sqlite3_column_int(st, 1);
        found = 1;
        rc = SQLITE_DONE;
    }
    rc = read_finish(s, st, rc, 0, "read member");
    return rc < 0 ? rc : found;
}

int store_read_memberships(store *s, uint32_t person, store_member_cb cb, void *ctx)
{
    sqlite3_stmt *st = read_begin(s, RST_MEMBERSHIPS);
    int rc = sqlite3_bind_int64(st, 1, person), cb_rc = 0;

    while (rc == SQLITE_OK && cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        cb_rc = cb(ctx, sqlite3_column_int64(st, 0), (uint32_t)sqlite3_column_int64(st, 1),
                   sqlite3_column_int64(st, 2), sqlite3_column_int(st, 3));
        rc = SQLITE_OK;
    }
    if (rc == SQLITE_OK)
        rc = SQLITE_DONE;     /* stopped by the callback */
    return read_finish(s, st, rc, cb_rc, "read memberships");
}

/* Steps a bound transitions statement (TRANSITION_COLUMNS), one callback per row,
 * and ends the read. */
static int read_transition_rows(store *s, sqlite3_stmt *st, int bind_rc, store_transition_cb cb, void *ctx,
                                const char *what)
{
    int rc = bind_rc, cb_rc = 0;

    while (rc == SQLITE_OK && cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t len;
        store_transition t = {
            .seq = sqlite3_column_int64(st, 0),
            .num = sqlite3_column_int64(st, 1),
            .person = (uint32_t)sqlite3_column_int64(st, 2),
            .public_id = (uint64_t)sqlite3_column_int64(st, 3),
            .dir = sqlite3_column_int(st, 4),
            .at = sqlite3_column_int64(st, 5),
            .cause = sqlite3_column_int(st, 6),
            .detail = column_text(st, 7, &len),
        };
        cb_rc = cb(ctx, &t);
        rc = SQLITE_OK;
    }
    if (rc == SQLITE_OK)
        rc = SQLITE_DONE;
    return read_finish(s, st, rc, cb_rc, what);
}

int store_read_transitions(store *s, int64_t num, int64_t person, int64_t before_seq, int limit,
                           store_transition_cb cb, void *ctx)
{
    enum rstmt_id id = num < 0 ? (person < 0 ? RST_TRANSITIONS : RST_TRANSITIONS_PERSON)
                               : (person < 0 ? RST_TRANSITIONS_SEG : RST_TRANSITIONS_SEG_PERSON);
    sqlite3_stmt *st;
    int rc;

    if (limit <= 0)
        return SEGD_EINVAL;
    st = read_begin(s, id);
    rc = bind_named_int64(st, ":seg", num);
    if (rc == SQLITE_OK)
        rc = bind_named_int64(st, ":person", person);
    if (rc == SQLITE_OK)
        rc = bind_named_int64(st, ":before", before_seq > 0 ? before_seq : INT64_MAX);
    if (rc == SQLITE_OK)
        rc = bind_named_int64(st, ":limit", limit);
    return read_transition_rows(s, st, rc, cb, ctx, "read transitions");
}

int store_read_outbox(store *s, int64_t after_seq, int limit, store_transition_cb cb, void *ctx)
{
    sqlite3_stmt *st;
    int rc;

    if (limit <= 0)
        return SEGD_EINVAL;
    st = read_begin(s, RST_OUTBOX);
    rc = sqlite3_bind_int64(st, 1, after_seq);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 2, limit);
    return read_transition_rows(s, st, rc, cb, ctx, "read outbox");
}

int store_read_history(store *s, int64_t num, int64_t since_ms, store_history_cb cb, void *ctx)
{
    sqlite3_stmt *st = read_begin(s, RST_HISTORY);
    int rc = sqlite3_bind_int64(st, 1, num), cb_rc = 0;

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, since_ms);
    while (rc == SQLITE_OK && cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        cb_rc = cb(ctx, sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
                   sqlite3_column_int(st, 2));
        rc = SQLITE_OK;
    }
    if (rc == SQLITE_OK)
        rc = SQLITE_DONE;
    return read_finish(s, st, rc, cb_rc, "read history");
}

int store_read_daily_counts(store *s, int64_t num, int64_t since_ms, store_daily_cb cb, void *ctx)
{
    sqlite3_stmt *st = read_begin(s, RST_DAILY);
    int rc = sqlite3_bind_int64(st, 1, num), cb_rc = 0;

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, since_ms);
    while (rc == SQLITE_OK && cb_rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        cb_rc = cb(ctx, sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1),
                   (uint64_t)sqlite3_column_int64(st, 2));
        rc = SQLITE_OK;
    }
    if (rc == SQLITE_OK)
        rc = SQLITE_DONE;
    return read_finish(s, st, rc, cb_rc, "read daily counts");
}

void store_fail_nth_write(store *s, int n)
{
    s->fail_countdown = n > 0 ? n : 0;
}
