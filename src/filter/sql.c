/* sql.c - the second evaluator: a copy of the engine in SQLite, and filters compiled to
 * SQL over it (filter.h, "SQL"). Written from docs/FILTERS.md alone, never from eval.c,
 * so that the differential test (tests/unit/test_filter_diff.c) catches either side
 * misreading the contract; `make bench` runs the same SQL as segd's SQLite baseline, so
 * the schema is the one a careful SQLite user would build, indexes included.
 * Workload: load once (O(engine)), compile many filters, each run by SQLite.
 *
 * The oracle schema (created by filter_sql_load):
 *
 *   people(id INTEGER PRIMARY KEY, "<attribute>" ..., one column per live attribute)
 *       id is the dense person id; only live people have a row. Column types: string
 *       TEXT, number REAL, boolean INTEGER 0/1, datetime INTEGER milliseconds, json TEXT,
 *       list INTEGER = its item count (so is_empty needs no join). NULL = missing.
 *       Indexes: one per column, and for strings one on segd_fold(column) too (the
 *       case-insensitive form every default string comparison reads).
 *   people_list(person, attr, item TEXT)
 *       one row per item of a list attribute (attr = the attribute index); primary key
 *       (attr, item, person), index (attr, segd_fold(item), person).
 *   "event:<type>"(row, person, time, "<property>"..., PRIMARY KEY (person, time, row))
 *       WITHOUT ROWID: one table per event type, clustered by person so that the
 *       per-person aggregates of event conditions read each person's events together
 *       without lookups (measured on 100k people / 2M events: sum 2.5x faster than with a
 *       rowid table and a (person, time) index); row = the engine's row; only live
 *       people's events; property columns typed as people's (a list property holds its
 *       item count). Index (time, person) for windows.
 *   event_list(type, row, prop, item TEXT): items of list properties, index
 *       (type, row, prop).
 *
 * Identifiers are the names as declared, double-quoted. SQLite compares identifiers
 * ignoring ASCII case, so a name that equals another's (or a reserved column) that way,
 * or that holds a '#', becomes "<name>#<index>" (filter_sql_column and friends say
 * which name a given attribute got).
 *
 * SQL functions (filter_sql_register): segd_fold(text) is fold_utf8 (base/fold.h), the
 * one case folding both evaluators share; segd_bucket(salt, user_id) is FNV-1a 64 of
 * salt ":" user_id, modulo 100 (NULL for a NULL user_id).
 *
 * Compiled expressions are true (1) exactly when the filter matches; otherwise 0 or
 * NULL. Leaves compare plainly (so SQLite can use the indexes) and yield NULL on a
 * missing value unless the operator is true on missing (`ne`, `not_in`, ...); AND and
 * OR keep NULL-as-false, and NOT is `(x) IS NOT 1`. Event conditions become
 * `p.id IN (SELECT person ... GROUP BY person HAVING metric-condition)`, or NOT IN of the
 * negation when the condition holds over zero events (never did, count < 3, ...); "did
 * it at least once" and "never did" become [NOT] EXISTS over x.person = p.id, a seek in
 * the clustered table that lets a sorted, limited query stop at its first page (measured
 * with make bench-filters on 50k people / 1M events: never did 96 -> 48 ms, the nested
 * mix 71 -> 21 ms, the sorted first page 102 -> 0.2 ms).
 */
#include "filter.h"
#include "../base/alloc.h"
#include "../base/fold.h"

#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL

/* ---- a growing SQL text ---- */

typedef struct sqlbuf {
    char *s;
    size_t len, cap;
    int unsupported;    /* set when the tree has something the oracle cannot answer */
} sqlbuf;

static void sb_reserve(sqlbuf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) cap *= 2;
    b->s = xrealloc(b->s, cap);
    b->cap = cap;
}

static void sb_add(sqlbuf *b, const char *s, size_t len)
{
    sb_reserve(b, len);
    memcpy(b->s + b->len, s, len);
    b->len += len;
    b->s[b->len] = 0;
}

static void sb_puts(sqlbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_printf(sqlbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sqlbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Appends s quoted with q (' for string literals, " for identifiers), q doubled inside. */
static void sb_quoted(sqlbuf *b, const char *s, size_t len, char q)
{
    sb_add(b, &q, 1);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != q) continue;
        sb_add(b, s + start, i + 1 - start);
        sb_add(b, &q, 1);
        start = i + 1;
    }
    sb_add(b, s + start, len - start);
    sb_add(b, &q, 1);
}

/* A double as an SQL REAL literal that reads back as exactly the same double. */
static void sb_number(sqlbuf *b, double v)
{
    if (isnan(v)) { sb_puts(b, "NULL"); return; }
    if (isinf(v)) { sb_puts(b, v > 0 ? "9e999" : "-9e999"); return; }
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    sb_puts(b, buf);
    if (!strpbrk(buf, ".e")) sb_puts(b, ".0");
}

/* ---- identifiers ---- */

/* ASCII-only case-insensitive equality, as SQLite compares identifiers. */
static int ident_equal(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        if (x >= 'A' && x <= 'Z') x += 32;
        if (y >= 'A' && y <= 'Z') y += 32;
        if (x != y) return 0;
        if (!x) return 1;
    }
}

/* One namespace of identifiers: the attributes (owner -1), the event types (owner -2) or
 * the properties of event type `owner`. */
static const char *space_name(const engine *e, int owner, int i)
{
    if (owner == -1) return engine_attr_name(e, i);
    if (owner == -2) return engine_event_type_name(e, i);
    return engine_prop_name(e, owner, i);
}

static int space_count(const engine *e, int owner)
{
    if (owner == -1) return engine_attr_slots(e);
    if (owner == -2) return engine_event_type_count(e);
    return engine_prop_count(e, owner);
}

static const char *const reserved_people[] = { "id", NULL };
static const char *const reserved_events[] = { "row", "person", "time", NULL };
static const char *const reserved_none[] = { NULL };

/* Appends the quoted identifier of name i in a namespace (module comment: the name,
 * or "<name>#<i>" when SQLite could confuse it with another). */
static void sb_ident(sqlbuf *b, const engine *e, int owner, int i, const char *prefix)
{
    const char *name = space_name(e, owner, i);
    const char *const *reserved = owner == -1 ? reserved_people : owner == -2 ? reserved_none : reserved_events;
    int plain = name && !strchr(name, '#');
    for (const char *const *r = reserved; plain && *r; r++)
        if (ident_equal(name, *r)) plain = 0;
    int count = space_count(e, owner);
    for (int j = 0; plain && j < count; j++) {
        const char *other = space_name(e, owner, j);
        if (j != i && other && ident_equal(name, other)) plain = 0;
    }
    sqlbuf tmp = {0};
    sb_puts(&tmp, prefix);
    sb_puts(&tmp, name ? name : "");
    if (!plain) sb_printf(&tmp, "#%d", i);
    sb_quoted(b, tmp.s, tmp.len, '"');
    free(tmp.s);
}

static void sb_attr_col(sqlbuf *b, const engine *e, int attr)
{
    sb_ident(b, e, -1, attr, "");
}

static void sb_event_table(sqlbuf *b, const engine *e, int type)
{
    sb_ident(b, e, -2, type, "event:");
}

static void sb_prop_col(sqlbuf *b, const engine *e, int type, int prop)
{
    sb_ident(b, e, type, prop, "");
}

/* ---- SQL functions ---- */

static void fn_fold(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) { sqlite3_result_null(ctx); return; }
    const char *s = (const char *)sqlite3_value_text(argv[0]);
    int len = sqlite3_value_bytes(argv[0]);
    if (!s) { sqlite3_result_error_nomem(ctx); return; }
    fold_buf out = {0};
    fold_utf8(s, (size_t)len, &out);
    sqlite3_result_text(ctx, out.s, (int)out.len, free);
}

static uint64_t fnv1a64(uint64_t h, const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void fn_bucket(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
        sqlite3_result_null(ctx);
        return;
    }
    const unsigned char *salt = sqlite3_value_text(argv[0]);
    size_t salt_len = (size_t)sqlite3_value_bytes(argv[0]);
    const unsigned char *user = sqlite3_value_text(argv[1]);
    size_t user_len = (size_t)sqlite3_value_bytes(argv[1]);
    if (!salt || !user) { sqlite3_result_error_nomem(ctx); return; }
    uint64_t h = fnv1a64(0xcbf29ce484222325ULL, salt, salt_len);
    h = fnv1a64(h, (const unsigned char *)":", 1);
    h = fnv1a64(h, user, user_len);
    sqlite3_result_int(ctx, (int)(h % 100));
}

int filter_sql_register(sqlite3 *db)
{
    int flags = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
    if (sqlite3_create_function(db, "segd_fold", 1, flags, NULL, fn_fold, NULL, NULL) != SQLITE_OK ||
        sqlite3_create_function(db, "segd_bucket", 2, flags, NULL, fn_bucket, NULL, NULL) != SQLITE_OK)
        return SEGD_EIO;
    return 0;
}

/* ---- loading ---- */

static const char *sql_type(segd_type t)
{
    switch (t) {
    case SEGD_T_STRING: case SEGD_T_JSON: return "TEXT";
    case SEGD_T_NUMBER: return "REAL";
    default: return "INTEGER";
    }
}

static int exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
    fprintf(stderr, "filter_sql_load: %s\n  in: %.300s\n", msg ? msg : "?", sql);
    sqlite3_free(msg);
    return SEGD_EIO;
}

/* Binds one engine cell to parameter i; a list binds its item count. */
static int bind_cell(sqlite3_stmt *st, int i, const engine *e, const segd_cell *c)
{
    switch (c->type) {
    case SEGD_T_STRING: case SEGD_T_JSON: {
        size_t len = 0;
        const char *s = engine_string(e, c->code, &len);
        return sqlite3_bind_text(st, i, s ? s : "", (int)len, SQLITE_TRANSIENT);
    }
    case SEGD_T_NUMBER: return sqlite3_bind_double(st, i, c->number);
    case SEGD_T_BOOL: return sqlite3_bind_int(st, i, c->boolean ? 1 : 0);
    case SEGD_T_DATETIME: return sqlite3_bind_int64(st, i, c->time_ms);
    case SEGD_T_LIST: return sqlite3_bind_int64(st, i, c->n_codes);
    default: return sqlite3_bind_null(st, i);
    }
}

/* Runs a prepared insert with its bindings, then resets it. */
static int step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : SEGD_EIO;
}

static int insert_items(sqlite3_stmt *st, const engine *e, const segd_cell *c, int64_t k1, int64_t k2, int64_t k3)
{
    for (uint32_t j = 0; j < c->n_codes; j++) {
        size_t len = 0;
        const char *s = engine_string(e, c->codes[j], &len);
        sqlite3_bind_int64(st, 1, k1);
        sqlite3_bind_int64(st, 2, k2);
        int n = 3;
        if (k3 >= 0) sqlite3_bind_int64(st, n++, k3);
        sqlite3_bind_text(st, n, s ? s : "", (int)len, SQLITE_TRANSIENT);
        if (step_reset(st)) return SEGD_EIO;
    }
    return 0;
}

static int load_people(sqlite3 *db, const engine *e)
{
    int rc = SEGD_EIO;
    sqlite3_stmt *ins = NULL, *ins_item = NULL;
    sqlbuf ddl = {0}, q = {0}, idx = {0};
    int slots = engine_attr_slots(e);

    sb_puts(&ddl, "CREATE TABLE people(id INTEGER PRIMARY KEY");
    sb_puts(&q, "INSERT INTO people VALUES(?");
    for (int a = 0; a < slots; a++) {
        if (!engine_attr_name(e, a)) continue;
        sb_puts(&ddl, ", ");
        sb_attr_col(&ddl, e, a);
        sb_printf(&ddl, " %s", sql_type(engine_attr_type(e, a)));
        sb_puts(&q, ", ?");
    }
    sb_puts(&ddl, ");\nCREATE TABLE people_list(person INTEGER NOT NULL, attr INTEGER NOT NULL, item TEXT NOT NULL,"
                  " PRIMARY KEY (attr, item, person)) WITHOUT ROWID;");
    sb_puts(&q, ")");
    if (exec(db, ddl.s)) goto cleanup;
    if (sqlite3_prepare_v2(db, q.s, -1, &ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO people_list VALUES(?, ?, ?)", -1, &ins_item, NULL) != SQLITE_OK)
        goto cleanup;

    for (person_id id = 0; id < engine_person_limit(e); id++) {
        if (!engine_person_exists(e, id)) continue;
        sqlite3_bind_int64(ins, 1, id);
        int col = 2;
        for (int a = 0; a < slots; a++) {
            if (!engine_attr_name(e, a)) continue;
            segd_cell c;
            if (engine_attr_get(e, id, a, &c)) {
                bind_cell(ins, col, e, &c);
                if (c.type == SEGD_T_LIST && insert_items(ins_item, e, &c, id, a, -1)) goto cleanup;
            }
            col++;
        }
        if (step_reset(ins)) goto cleanup;
    }

    for (int a = 0; a < slots; a++) {
        if (!engine_attr_name(e, a)) continue;
        segd_type t = engine_attr_type(e, a);
        idx.len = 0;
        sb_printf(&idx, "CREATE INDEX \"people:%d\" ON people(", a);
        sb_attr_col(&idx, e, a);
        sb_puts(&idx, ");");
        if (t == SEGD_T_STRING) {
            sb_printf(&idx, "CREATE INDEX \"people:%d:fold\" ON people(segd_fold(", a);
            sb_attr_col(&idx, e, a);
            sb_puts(&idx, "));");
        }
        if (t != SEGD_T_JSON && exec(db, idx.s)) goto cleanup;
    }
    if (exec(db, "CREATE INDEX people_list_fold ON people_list(attr, segd_fold(item), person);")) goto cleanup;
    rc = 0;
cleanup:
    if (rc) fprintf(stderr, "filter_sql_load: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(ins_item);
    sqlite3_finalize(ins);
    free(idx.s);
    free(q.s);
    free(ddl.s);
    return rc;
}

static int load_events(sqlite3 *db, const engine *e, int type, sqlite3_stmt *ins_item)
{
    int rc = SEGD_EIO;
    sqlite3_stmt *ins = NULL;
    sqlbuf ddl = {0}, q = {0};
    int props = engine_prop_count(e, type);

    sb_puts(&ddl, "CREATE TABLE ");
    sb_event_table(&ddl, e, type);
    sb_puts(&ddl, "(row INTEGER NOT NULL, person INTEGER NOT NULL, time INTEGER NOT NULL");
    sb_puts(&q, "INSERT INTO ");
    sb_event_table(&q, e, type);
    sb_puts(&q, " VALUES(?, ?, ?");
    for (int pr = 0; pr < props; pr++) {
        sb_puts(&ddl, ", ");
        sb_prop_col(&ddl, e, type, pr);
        sb_printf(&ddl, " %s", sql_type(engine_prop_type(e, type, pr)));
        sb_puts(&q, ", ?");
    }
    sb_puts(&ddl, ", PRIMARY KEY (person, time, row)) WITHOUT ROWID;");
    sb_puts(&q, ")");
    if (exec(db, ddl.s)) goto cleanup;
    if (sqlite3_prepare_v2(db, q.s, -1, &ins, NULL) != SQLITE_OK) goto cleanup;

    uint32_t rows = engine_event_rows(e, type);
    for (uint32_t row = 0; row < rows; row++) {
        /* re-read each time: engine getters stay valid (no mutation here), but cheap */
        person_id who = engine_event_persons(e, type)[row];
        if (who == PERSON_NONE || !engine_person_exists(e, who)) continue;
        sqlite3_bind_int64(ins, 1, row);
        sqlite3_bind_int64(ins, 2, who);
        sqlite3_bind_int64(ins, 3, engine_event_times(e, type)[row]);
        for (int pr = 0; pr < props; pr++) {
            segd_cell c;
            if (!engine_event_prop_get(e, type, row, pr, &c)) continue;
            bind_cell(ins, 4 + pr, e, &c);
            if (c.type == SEGD_T_LIST && insert_items(ins_item, e, &c, type, row, pr)) goto cleanup;
        }
        if (step_reset(ins)) goto cleanup;
    }

    ddl.len = 0;
    sb_printf(&ddl, "CREATE INDEX \"event:%d:time\" ON ", type);
    sb_event_table(&ddl, e, type);
    sb_puts(&ddl, "(time, person);");
    if (exec(db, ddl.s)) goto cleanup;
    rc = 0;
cleanup:
    if (rc) fprintf(stderr, "filter_sql_load: %s\n", sqlite3_errmsg(db));
    sqlite3_finalize(ins);
    free(q.s);
    free(ddl.s);
    return rc;
}

int filter_sql_load(sqlite3 *db, const engine *e)
{
    int rc = filter_sql_register(db);
    sqlite3_stmt *ins_item = NULL;
    if (rc) return rc;
    if (exec(db, "BEGIN")) return SEGD_EIO;
    rc = SEGD_EIO;
    if (load_people(db, e)) goto cleanup;
    if (exec(db, "CREATE TABLE event_list(type INTEGER NOT NULL, row INTEGER NOT NULL, prop INTEGER NOT NULL,"
                 " item TEXT NOT NULL);"))
        goto cleanup;
    if (sqlite3_prepare_v2(db, "INSERT INTO event_list VALUES(?, ?, ?, ?)", -1, &ins_item, NULL) != SQLITE_OK)
        goto cleanup;
    for (int t = 0; t < engine_event_type_count(e); t++)
        if (load_events(db, e, t, ins_item)) goto cleanup;
    if (exec(db, "CREATE INDEX event_list_row ON event_list(type, row, prop); ANALYZE;")) goto cleanup;
    rc = exec(db, "COMMIT");
cleanup:
    sqlite3_finalize(ins_item);
    if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- compiling ---- */

/* What a condition compares: the SQL text of the value, its type, and (for list
 * values) how to reach its items. */
typedef struct operand {
    const char *expr;       /* e.g. p."plan", x."amount", avg(x."amount") */
    segd_type type;
    /* LIST only: the SQL of "some item satisfies <item cond>" is
     * items_pre <item cond over l.item> items_post */
    const char *items_pre;
    const char *items_post;
} operand;

/* Appends the string literal of a filter value, folded in SQL unless case-sensitive. */
static void sb_str_value(sqlbuf *b, const filter_literal *v, int fold)
{
    if (fold) sb_puts(b, "segd_fold(");
    sb_quoted(b, v->str ? v->str : "", v->str ? v->len : 0, '\'');
    if (fold) sb_puts(b, ")");
}

/* Appends a value of a number or datetime comparison. */
static void sb_scalar_value(sqlbuf *b, const filter_literal *v, segd_type type)
{
    if (type == SEGD_T_DATETIME) {
        if (!v->is_time) { b->unsupported = 1; return; }
        sb_printf(b, "%lld", (long long)v->time_ms);
    } else if (type == SEGD_T_BOOL) {
        sb_puts(b, v->boolean ? "1" : "0");
    } else {
        if (v->kind != FLIT_NUMBER) { b->unsupported = 1; return; }
        sb_number(b, v->number);
    }
}

/* The operand as the comparison reads it: folded for case-insensitive string ops. */
static void sb_subject(sqlbuf *b, const char *expr, int fold)
{
    if (fold) sb_printf(b, "segd_fold(%s)", expr);
    else sb_puts(b, expr);
}

/* Appends `subject IN (v1, v2, ...)` for the node's values. */
static void sb_in_list(sqlbuf *b, const filter_node *n, const char *expr, segd_type type, int fold)
{
    sb_subject(b, expr, fold);
    sb_puts(b, " IN (");
    for (uint32_t i = 0; i < n->n_values; i++) {
        if (i) sb_puts(b, ", ");
        if (type == SEGD_T_STRING) sb_str_value(b, &n->values[i], fold);
        else sb_scalar_value(b, &n->values[i], type);
    }
    sb_puts(b, ")");
}

/* The positive string test of contains / starts_with / ends_with / eq on a present value
 * (expr not NULL): 1 or 0. */
static void sb_string_test(sqlbuf *b, filter_op op, const char *expr, const filter_literal *v, int fold)
{
    switch (op) {
    case FOP_EQ: case FOP_NE:
        sb_subject(b, expr, fold);
        sb_puts(b, " = ");
        sb_str_value(b, v, fold);
        return;
    case FOP_CONTAINS: case FOP_NOT_CONTAINS:
        /* instr(x, '') is 1: every text holds the empty text */
        sb_puts(b, "instr(");
        sb_subject(b, expr, fold);
        sb_puts(b, ", ");
        sb_str_value(b, v, fold);
        sb_puts(b, ") > 0");
        return;
    case FOP_STARTS_WITH:
        /* characters and bytes agree on valid UTF-8; folding keeps the code point count */
        sb_puts(b, "substr(");
        sb_subject(b, expr, fold);
        sb_puts(b, ", 1, length(");
        sb_str_value(b, v, 0);
        sb_puts(b, ")) = ");
        sb_str_value(b, v, fold);
        return;
    case FOP_ENDS_WITH:
        sb_puts(b, "(length(");
        sb_subject(b, expr, 0);
        sb_puts(b, ") >= length(");
        sb_str_value(b, v, 0);
        sb_puts(b, ") AND substr(");
        sb_subject(b, expr, fold);
        sb_puts(b, ", length(");
        sb_subject(b, expr, 0);
        sb_puts(b, ") - length(");
        sb_str_value(b, v, 0);
        sb_puts(b, ") + 1) = ");
        sb_str_value(b, v, fold);
        sb_puts(b, ")");
        return;
    default:
        b->unsupported = 1;
    }
}

/* Appends the condition of op over an operand. Yields 1 when it holds, 0 or NULL when
 * not (module comment). */
static void sb_condition(sqlbuf *b, const filter_node *n, const operand *o, int64_t now_ms)
{
    int fold = !n->case_sensitive;
    const char *x = o->expr;
    const filter_literal *v = n->n_values ? &n->values[0] : NULL;

    if (o->type == SEGD_T_LIST) {
        switch (n->op) {
        case FOP_CONTAINS: case FOP_NOT_CONTAINS:
            if (n->op == FOP_NOT_CONTAINS) sb_puts(b, "NOT ");
            sb_puts(b, o->items_pre);
            sb_subject(b, "l.item", fold);
            sb_puts(b, " = ");
            sb_str_value(b, v, fold);
            sb_puts(b, o->items_post);
            return;
        case FOP_IS_EMPTY: sb_printf(b, "coalesce(%s, 0) = 0", x); return;
        case FOP_IS_NOT_EMPTY: sb_printf(b, "%s > 0", x); return;
        default: b->unsupported = 1; return;
        }
    }

    switch (n->op) {
    case FOP_IS_SET: sb_printf(b, "%s IS NOT NULL", x); return;
    case FOP_IS_NOT_SET: sb_printf(b, "%s IS NULL", x); return;
    default: break;
    }

    if (o->type == SEGD_T_STRING) {
        switch (n->op) {
        case FOP_EQ: case FOP_CONTAINS: case FOP_STARTS_WITH: case FOP_ENDS_WITH:
            sb_string_test(b, n->op, x, v, fold);
            return;
        case FOP_NE: case FOP_NOT_CONTAINS:
            sb_printf(b, "(%s IS NULL OR NOT (", x);
            sb_string_test(b, n->op, x, v, fold);
            sb_puts(b, "))");
            return;
        case FOP_IN:
            sb_in_list(b, n, x, o->type, fold);
            return;
        case FOP_NOT_IN:
            sb_printf(b, "(%s IS NULL OR NOT ", x);
            sb_in_list(b, n, x, o->type, fold);
            sb_puts(b, ")");
            return;
        default:
            b->unsupported = 1;
            return;
        }
    }

    static const char *const cmp[FOP_COUNT_] = {
        [FOP_EQ] = "=", [FOP_GT] = ">", [FOP_GTE] = ">=", [FOP_LT] = "<", [FOP_LTE] = "<=",
        [FOP_BEFORE] = "<", [FOP_AFTER] = ">",
    };
    switch (n->op) {
    case FOP_EQ: case FOP_GT: case FOP_GTE: case FOP_LT: case FOP_LTE: case FOP_BEFORE: case FOP_AFTER:
        sb_printf(b, "%s %s ", x, cmp[n->op]);
        sb_scalar_value(b, v, o->type);
        return;
    case FOP_NE:
        sb_printf(b, "(%s IS NULL OR %s <> ", x, x);
        sb_scalar_value(b, v, o->type);
        sb_puts(b, ")");
        return;
    case FOP_BETWEEN:
        sb_printf(b, "%s BETWEEN ", x);
        sb_scalar_value(b, &n->values[0], o->type);
        sb_puts(b, " AND ");
        sb_scalar_value(b, &n->values[1], o->type);
        return;
    case FOP_IN:
        sb_in_list(b, n, x, o->type, 0);
        return;
    case FOP_NOT_IN:
        sb_printf(b, "(%s IS NULL OR NOT ", x);
        sb_in_list(b, n, x, o->type, 0);
        sb_puts(b, ")");
        return;
    case FOP_MORE_THAN_AGO:
        sb_printf(b, "%s < %lld", x, (long long)(now_ms - n->duration_ms));
        return;
    case FOP_LESS_THAN_AGO:
        sb_printf(b, "%s >= %lld", x, (long long)(now_ms - n->duration_ms));
        return;
    case FOP_ON_DAY:
        if (!v || !v->is_time) { b->unsupported = 1; return; }
        sb_printf(b, "(%s >= %lld AND %s < %lld)", x, (long long)v->time_ms, x,
                  (long long)(v->time_ms + DAY_MS));
        return;
    default:
        b->unsupported = 1;
    }
}

/* Whether an event condition holds for a person with no matching event: the metric is
 * 0 (count, sum, count_distinct) or missing (the rest). Decides between IN and NOT IN. */
static int holds_over_nothing(const filter_node *n)
{
    int zero = n->fn == FFN_COUNT || n->fn == FFN_SUM || n->fn == FFN_COUNT_DISTINCT;
    if (!zero) return n->op == FOP_NE || n->op == FOP_NOT_IN || n->op == FOP_IS_NOT_SET;
    const filter_literal *v = n->values;
    switch (n->op) {
    case FOP_EQ: return v[0].kind == FLIT_NUMBER && v[0].number == 0;
    case FOP_NE: return !(v[0].kind == FLIT_NUMBER && v[0].number == 0);
    case FOP_GT: return 0 > v[0].number;
    case FOP_GTE: return 0 >= v[0].number;
    case FOP_LT: return 0 < v[0].number;
    case FOP_LTE: return 0 <= v[0].number;
    case FOP_BETWEEN: return v[0].number <= 0 && 0 <= v[1].number;
    case FOP_IN: case FOP_NOT_IN: {
        int found = 0;
        for (uint32_t i = 0; i < n->n_values; i++) found |= v[i].kind == FLIT_NUMBER && v[i].number == 0;
        return n->op == FOP_IN ? found : !found;
    }
    case FOP_IS_SET: return 1;
    default: return 0;
    }
}

static void sb_node(sqlbuf *b, const filter_node *n, const engine *e, int64_t now_ms, int event_type);

/* An event condition: see the module comment. */
static void sb_event(sqlbuf *b, const filter_node *n, const engine *e, int64_t now_ms)
{
    int type = n->index;
    if (type < 0 || type >= engine_event_type_count(e)) { b->unsupported = 1; return; }
    filter_op op = n->op == FOP_NONE ? FOP_GTE : n->op;
    filter_node implicit;
    filter_literal one = { .kind = FLIT_NUMBER, .number = 1 };
    if (n->op == FOP_NONE) {    /* "did it at least once" */
        implicit = *n;
        implicit.op = op;
        implicit.values = &one;
        implicit.n_values = 1;
        implicit.fn = FFN_COUNT;
        n = &implicit;
    }

    sqlbuf metric = {0};
    if (n->fn >= FFN_SUM && n->fn <= FFN_COUNT_DISTINCT) {
        if (n->metric_prop < 0 || n->metric_prop >= engine_prop_count(e, type)) { b->unsupported = 1; return; }
        if (n->fn == FFN_COUNT_DISTINCT && engine_prop_type(e, type, n->metric_prop) == SEGD_T_LIST) {
            b->unsupported = 1;   /* distinct lists: not something the oracle answers */
            return;
        }
    }
    static const char *const agg[FFN_COUNT_] = {
        [FFN_COUNT] = "count(*)", [FFN_SUM] = "total(", [FFN_AVG] = "avg(", [FFN_MIN] = "min(",
        [FFN_MAX] = "max(", [FFN_COUNT_DISTINCT] = "count(DISTINCT ", [FFN_FIRST_AT] = "min(x.time)",
        [FFN_LAST_AT] = "max(x.time)",
    };
    sb_puts(&metric, agg[n->fn]);
    if (n->fn >= FFN_SUM && n->fn <= FFN_COUNT_DISTINCT) {
        sb_puts(&metric, "x.");
        sb_prop_col(&metric, e, type, n->metric_prop);
        sb_puts(&metric, ")");
    }
    operand o = { .expr = metric.s,
                  .type = n->fn == FFN_FIRST_AT || n->fn == FFN_LAST_AT ? SEGD_T_DATETIME : SEGD_T_NUMBER };

    int negate = holds_over_nothing(n);
    int plain = n->fn == FFN_COUNT && n->op == FOP_GTE && n->values[0].kind == FLIT_NUMBER &&
                n->values[0].number > 0 && n->values[0].number <= 1;
    int plain_never = n->fn == FFN_COUNT && n->op == FOP_EQ && n->values[0].kind == FLIT_NUMBER &&
                      n->values[0].number == 0;
    if (plain || plain_never) {
        sb_puts(b, negate ? "NOT EXISTS (SELECT 1 FROM " : "EXISTS (SELECT 1 FROM ");
        sb_event_table(b, e, type);
        sb_puts(b, " x WHERE x.person = p.id");
    } else {
        sb_puts(b, negate ? "p.id NOT IN (SELECT x.person FROM " : "p.id IN (SELECT x.person FROM ");
        sb_event_table(b, e, type);
        sb_puts(b, " x WHERE 1");
    }
    if (n->window == FWIN_WITHIN)
        sb_printf(b, " AND x.time >= %lld AND x.time <= %lld", (long long)(now_ms - n->within_ms),
                  (long long)now_ms);
    else if (n->window == FWIN_RANGE)
        sb_printf(b, " AND x.time >= %lld AND x.time < %lld", (long long)n->from_ms, (long long)n->to_ms);
    if (n->where) {
        sb_puts(b, " AND (");
        sb_node(b, n->where, e, now_ms, type);
        sb_puts(b, ")");
    }
    if (!plain && !plain_never) {
        sb_puts(b, " GROUP BY x.person HAVING ");
        if (negate) sb_puts(b, "(");
        sb_condition(b, n, &o, now_ms);
        if (negate) sb_puts(b, ") IS NOT 1");
    }
    sb_puts(b, ")");
    free(metric.s);
}

/* Appends the SQL of a node; event_type >= 0 inside an event's where. */
static void sb_node(sqlbuf *b, const filter_node *n, const engine *e, int64_t now_ms, int event_type)
{
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR:
        if (!n->n_children) { sb_puts(b, n->kind == FILTER_AND ? "1" : "0"); return; }
        sb_puts(b, "(");
        for (uint32_t i = 0; i < n->n_children; i++) {
            if (i) sb_puts(b, n->kind == FILTER_AND ? " AND " : " OR ");
            sb_node(b, n->children[i], e, now_ms, event_type);
        }
        sb_puts(b, ")");
        return;
    case FILTER_NOT:
        sb_puts(b, "((");
        sb_node(b, n->children[0], e, now_ms, event_type);
        sb_puts(b, ") IS NOT 1)");
        return;
    case FILTER_ATTRIBUTE: {
        if (event_type >= 0 || n->index < 0 || !engine_attr_name(e, n->index)) { b->unsupported = 1; return; }
        sqlbuf col = {0};
        sb_puts(&col, "p.");
        sb_attr_col(&col, e, n->index);
        char pre[128];
        snprintf(pre, sizeof pre, "p.id IN (SELECT l.person FROM people_list l WHERE l.attr = %d AND ", n->index);
        operand o = { .expr = col.s, .type = n->type, .items_pre = pre, .items_post = ")" };
        sb_condition(b, n, &o, now_ms);
        free(col.s);
        return;
    }
    case FILTER_PROPERTY: {
        if (event_type < 0 || n->index < 0 || n->index >= engine_prop_count(e, event_type)) {
            b->unsupported = 1;
            return;
        }
        sqlbuf col = {0};
        sb_puts(&col, "x.");
        sb_prop_col(&col, e, event_type, n->index);
        char pre[160];
        snprintf(pre, sizeof pre, "EXISTS (SELECT 1 FROM event_list l WHERE l.type = %d AND l.row = x.row"
                 " AND l.prop = %d AND ", event_type, n->index);
        operand o = { .expr = col.s, .type = n->type, .items_pre = pre, .items_post = ")" };
        sb_condition(b, n, &o, now_ms);
        free(col.s);
        return;
    }
    case FILTER_EVENT:
        if (event_type >= 0) { b->unsupported = 1; return; }
        sb_event(b, n, e, now_ms);
        return;
    case FILTER_BUCKET: {
        sb_puts(b, "segd_bucket(");
        sb_quoted(b, n->name ? n->name : "", n->name ? strlen(n->name) : 0, '\'');
        sb_puts(b, ", p.");
        sb_attr_col(b, e, ATTR_USER_ID);
        sb_printf(b, ") BETWEEN %d AND %d", n->bucket_from, n->bucket_to);
        return;
    }
    case FILTER_SEGMENT:
    default:
        b->unsupported = 1;
    }
}

char *filter_to_sql(const filter_node *n, const engine *e, int64_t now_ms)
{
    if (!n) return NULL;
    sqlbuf b = {0};
    sb_node(&b, n, e, now_ms, -1);
    if (b.unsupported) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
