/* engine.c - the people table, identity indexes, attribute catalog, merge, erasure,
 * accounting and the invariant checker (engine.h). Strings live in strpool.c, values in
 * column.c, events in events.c.
 *
 * People: a DATETIME-typed column holds each dense id's public id; its null marker says
 * whether the person is live. Identity indexes are idindex sets of person ids keyed by
 * the person's own value (public id; user_id's pool code; folded email), so each costs
 * 4 bytes per slot; anonymous ids map pool code -> person in a u32map. Workload: single
 * lookups and writes from ingest, scans from filters; merges and erasures rare.
 */
#include "engine.h"
#include "column.h"
#include "events.h"
#include "fit.h"
#include "hash.h"
#include "idindex.h"
#include "namemap.h"
#include "strpool.h"
#include "u32map.h"
#include "../base/alloc.h"
#include "../base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define DEFAULT_MAX_ATTRIBUTES 1000
#define DEFAULT_MAX_EVENT_TYPES 1000
#define DEFAULT_MAX_PROPERTIES 100

/* One attribute slot, parallel to the name catalog; type SEGD_T_NONE once dropped. */
typedef struct attr_slot {
    column col;
} attr_slot;

struct engine {
    engine_limits limits;
    strpool pool;
    column people;          /* public id per dense id (int64 bits); present = live */
    person_id limit;        /* one past the highest id ever assigned */
    uint32_t live;
    idindex by_public;      /* person ids keyed by public id */
    idindex by_user;        /* person ids keyed by the pool code of their user_id */
    idindex by_email;       /* person ids keyed by their case-folded email (a multimap) */
    u32map by_anon;         /* anonymous id's pool code -> person */
    namemap attr_names;
    attr_slot *attrs;       /* parallel to attr_names */
    size_t attrs_cap;
    events ev;
};

static const struct {
    const char *name;
    segd_type type;
} standard_attrs[ATTR_STANDARD_COUNT] = {
    [ATTR_USER_ID] = { "user_id", SEGD_T_STRING },
    [ATTR_ANONYMOUS_IDS] = { "anonymous_ids", SEGD_T_LIST },
    [ATTR_EMAIL] = { "email", SEGD_T_STRING },
    [ATTR_NAME] = { "name", SEGD_T_STRING },
    [ATTR_PHONE] = { "phone", SEGD_T_STRING },
    [ATTR_COUNTRY] = { "country", SEGD_T_STRING },
    [ATTR_CITY] = { "city", SEGD_T_STRING },
    [ATTR_CREATED_AT] = { "created_at", SEGD_T_DATETIME },
    [ATTR_LAST_SEEN] = { "last_seen", SEGD_T_DATETIME },
    [ATTR_TAGS] = { "tags", SEGD_T_LIST },
};

static const char *const type_names[] = {
    [SEGD_T_NONE] = "none", [SEGD_T_STRING] = "string", [SEGD_T_NUMBER] = "number",
    [SEGD_T_BOOL] = "boolean", [SEGD_T_DATETIME] = "datetime", [SEGD_T_LIST] = "list",
    [SEGD_T_JSON] = "json",
};

const char *segd_type_name(segd_type type)
{
    if (type < SEGD_T_NONE || type > SEGD_T_JSON) return "none";
    return type_names[type];
}

segd_type segd_type_parse(const char *name)
{
    if (!name) return SEGD_T_NONE;
    for (int t = SEGD_T_STRING; t <= SEGD_T_JSON; t++)
        if (strcmp(name, type_names[t]) == 0) return (segd_type)t;
    return SEGD_T_NONE;
}

/* ---- lifecycle ---- */

engine *engine_new(const engine_limits *limits)
{
    engine *e = xcalloc(1, sizeof *e);
    if (limits) e->limits = *limits;
    if (!e->limits.max_attributes) e->limits.max_attributes = DEFAULT_MAX_ATTRIBUTES;
    if (e->limits.max_attributes < ATTR_STANDARD_COUNT) e->limits.max_attributes = ATTR_STANDARD_COUNT;
    if (!e->limits.max_event_types) e->limits.max_event_types = DEFAULT_MAX_EVENT_TYPES;
    if (!e->limits.max_properties) e->limits.max_properties = DEFAULT_MAX_PROPERTIES;
    strpool_init(&e->pool);
    column_init(&e->people, SEGD_T_DATETIME);
    idindex_init(&e->by_public);
    idindex_init(&e->by_user);
    idindex_init(&e->by_email);
    u32map_init(&e->by_anon);
    namemap_init(&e->attr_names);
    events_init(&e->ev, e->limits.max_event_types, e->limits.max_properties);
    for (int a = 0; a < ATTR_STANDARD_COUNT; a++)
        engine_attr_declare(e, standard_attrs[a].name, standard_attrs[a].type);
    return e;
}

void engine_free(engine *e)
{
    if (!e) return;
    events_release(&e->ev, &e->pool);
    for (uint32_t a = 0; a < e->attr_names.n; a++) column_release(&e->attrs[a].col, &e->pool);
    free(e->attrs);
    namemap_release(&e->attr_names);
    u32map_release(&e->by_anon);
    idindex_release(&e->by_email);
    idindex_release(&e->by_user);
    idindex_release(&e->by_public);
    column_release(&e->people, &e->pool);
    strpool_release(&e->pool);
    free(e);
}

/* ---- strings ---- */

const char *engine_string(const engine *e, uint32_t code, size_t *len)
{
    return strpool_get(&e->pool, code, len);
}

uint32_t engine_string_find(const engine *e, const char *s, size_t len)
{
    if (!s && len) return STRPOOL_NONE;
    return strpool_find(&e->pool, s ? s : "", len);
}

/* ---- identity keys ---- */

static const column *attr_col(const engine *e, int attr)
{
    return &e->attrs[attr].col;
}

static uint64_t public_hash_of(const void *ctx, uint32_t p)
{
    const engine *e = ctx;
    return hash_u64((uint64_t)column_int64(&e->people, p));
}

static uint64_t user_hash_of(const void *ctx, uint32_t p)
{
    const engine *e = ctx;
    return hash_u64(column_code(attr_col(e, ATTR_USER_ID), p));
}

/* An email in its search form: Unicode case folding with NFC (UTF8PROC_CASEFOLD |
 * UTF8PROC_STABLE | UTF8PROC_COMPOSE). Short ASCII, the common case, folds on the
 * stack; bytes that are not valid UTF-8 are compared as they are. */
typedef struct folded {
    const char *s;
    size_t len;
    unsigned char *heap;
    char buf[128];
} folded;

static void fold_email(folded *f, const char *s, size_t len)
{
    f->heap = NULL;
    if (len <= sizeof f->buf) {
        size_t i = 0;
        for (; i < len && !(s[i] & 0x80); i++)
            f->buf[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A') : s[i]);
        if (i == len) {
            f->s = f->buf;
            f->len = len;
            return;
        }
    }
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
                                      UTF8PROC_CASEFOLD | UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) {
        free(dst);
        f->s = s;
        f->len = len;
        return;
    }
    f->heap = dst;
    f->s = (const char *)dst;
    f->len = (size_t)n;
}

/* Forgets the folded copy (zeroed, with any ASCII prefix left in buf: it is a
 * person's email). */
static void fold_release(folded *f)
{
    if (f->heap) {
        explicit_bzero(f->heap, f->len);
        free(f->heap);
    }
    explicit_bzero(f->buf, sizeof f->buf);
}

static uint64_t email_hash(const char *s, size_t len)
{
    folded f;
    fold_email(&f, s, len);
    uint64_t h = hash_bytes(f.s, f.len);
    fold_release(&f);
    return h;
}

static uint64_t email_hash_of(const void *ctx, uint32_t p)
{
    const engine *e = ctx;
    size_t len;
    const char *s = strpool_get(&e->pool, column_code(attr_col(e, ATTR_EMAIL), p), &len);
    return email_hash(s, len);
}

static person_id find_by_public(const engine *e, uint64_t public_id)
{
    idindex_probe pos;
    for (uint32_t p = idindex_first(&e->by_public, hash_u64(public_id), &pos); p != IDINDEX_EMPTY;
         p = idindex_next(&e->by_public, &pos))
        if ((uint64_t)column_int64(&e->people, p) == public_id) return p;
    return PERSON_NONE;
}

static person_id find_by_user_code(const engine *e, uint32_t code)
{
    idindex_probe pos;
    if (code == STRPOOL_NONE) return PERSON_NONE;
    for (uint32_t p = idindex_first(&e->by_user, hash_u64(code), &pos); p != IDINDEX_EMPTY;
         p = idindex_next(&e->by_user, &pos))
        if (column_code(attr_col(e, ATTR_USER_ID), p) == code) return p;
    return PERSON_NONE;
}

static person_id find_by_anon_code(const engine *e, uint32_t code)
{
    if (code == STRPOOL_NONE) return PERSON_NONE;
    return u32map_get(&e->by_anon, code);
}

/* The lowest live person whose folded email equals the folded s. */
static person_id find_by_email(const engine *e, const char *s, size_t len)
{
    folded q;
    person_id best = PERSON_NONE;
    idindex_probe pos;
    fold_email(&q, s, len);
    for (uint32_t p = idindex_first(&e->by_email, hash_bytes(q.s, q.len), &pos); p != IDINDEX_EMPTY;
         p = idindex_next(&e->by_email, &pos)) {
        if (p >= best) continue;
        size_t clen;
        const char *cand = strpool_get(&e->pool, column_code(attr_col(e, ATTR_EMAIL), p), &clen);
        folded c;
        fold_email(&c, cand, clen);
        if (c.len == q.len && memcmp(c.s, q.s, q.len) == 0) best = p;
        fold_release(&c);
    }
    fold_release(&q);
    return best;
}

/* Removes the index entries that p's current value of an identity attribute made. */
static void identity_unindex(engine *e, person_id p, int attr)
{
    const column *col = attr_col(e, attr);
    if (attr == ATTR_USER_ID) {
        uint32_t code = column_code(col, p);
        if (code != STRPOOL_NONE) idindex_remove(&e->by_user, p, hash_u64(code), user_hash_of, e);
    } else if (attr == ATTR_EMAIL) {
        if (column_has(col, p)) idindex_remove(&e->by_email, p, email_hash_of(e, p), email_hash_of, e);
    } else if (attr == ATTR_ANONYMOUS_IDS) {
        segd_cell cell;
        column_get(col, p, &cell);
        for (uint32_t k = 0; k < cell.n_codes; k++) u32map_remove(&e->by_anon, cell.codes[k]);
    }
}

/* Adds the index entries for p's current value of an identity attribute. */
static void identity_index(engine *e, person_id p, int attr)
{
    const column *col = attr_col(e, attr);
    if (attr == ATTR_USER_ID) {
        uint32_t code = column_code(col, p);
        if (code != STRPOOL_NONE) idindex_insert(&e->by_user, p, hash_u64(code), user_hash_of, e);
    } else if (attr == ATTR_EMAIL) {
        if (column_has(col, p)) idindex_insert(&e->by_email, p, email_hash_of(e, p), email_hash_of, e);
    } else if (attr == ATTR_ANONYMOUS_IDS) {
        segd_cell cell;
        column_get(col, p, &cell);
        for (uint32_t k = 0; k < cell.n_codes; k++) u32map_put(&e->by_anon, cell.codes[k], p);
    }
}

static int is_identity(int attr)
{
    return attr == ATTR_USER_ID || attr == ATTR_EMAIL || attr == ATTR_ANONYMOUS_IDS;
}

/* 1 if setting v on p would take a user_id or anonymous id another person holds. */
static int identity_conflict(const engine *e, person_id p, int attr, const segd_value *v)
{
    if (attr == ATTR_USER_ID) {
        person_id holder = find_by_user_code(e, strpool_find(&e->pool, v->str ? v->str : "", v->str_len));
        return holder != PERSON_NONE && holder != p;
    }
    if (attr == ATTR_ANONYMOUS_IDS) {
        for (size_t k = 0; k < v->n_items; k++) {
            const char *id = v->items[k];
            person_id holder = find_by_anon_code(e, strpool_find(&e->pool, id, strlen(id)));
            if (holder != PERSON_NONE && holder != p) return 1;
        }
    }
    return 0;
}

/* ---- people ---- */

void engine_reserve(engine *e, uint32_t people, uint32_t strings)
{
    strpool_reserve(&e->pool, strings);
    idindex_reserve(&e->by_public, people, public_hash_of, e);
    idindex_reserve(&e->by_user, people, user_hash_of, e);
    idindex_reserve(&e->by_email, people, email_hash_of, e);
}

int engine_person_exists(const engine *e, person_id id)
{
    return column_has(&e->people, id);
}

uint32_t engine_person_count(const engine *e)
{
    return e->live;
}

person_id engine_person_limit(const engine *e)
{
    return e->limit;
}

uint64_t engine_person_public_id(const engine *e, person_id id)
{
    return (uint64_t)column_int64(&e->people, id);
}

/* Makes id live with public_id (both validated). */
static void person_add(engine *e, person_id id, uint64_t public_id)
{
    segd_value v = { .type = SEGD_T_DATETIME, .time_ms = (int64_t)public_id };
    column_set(&e->people, id, &v, &e->pool);
    idindex_insert(&e->by_public, id, hash_u64(public_id), public_hash_of, e);
    e->live++;
    if (id >= e->limit) e->limit = id + 1;
}

person_id engine_person_create(engine *e, uint64_t public_id)
{
    if (public_id == 0 || e->limit == PERSON_NONE || find_by_public(e, public_id) != PERSON_NONE)
        return PERSON_NONE;
    person_id id = e->limit;
    person_add(e, id, public_id);
    return id;
}

int engine_person_restore(engine *e, person_id id, uint64_t public_id)
{
    if (id == PERSON_NONE || public_id == 0) return SEGD_EINVAL;
    if (engine_person_exists(e, id) || find_by_public(e, public_id) != PERSON_NONE)
        return SEGD_ECONFLICT;
    person_add(e, id, public_id);
    return SEGD_OK;
}

person_id engine_person_by_public_id(const engine *e, uint64_t public_id)
{
    return find_by_public(e, public_id);
}

person_id engine_person_by_user_id(const engine *e, const char *s, size_t len)
{
    if (!s && len) return PERSON_NONE;
    return find_by_user_code(e, strpool_find(&e->pool, s ? s : "", len));
}

person_id engine_person_by_anonymous_id(const engine *e, const char *s, size_t len)
{
    if (!s && len) return PERSON_NONE;
    return find_by_anon_code(e, strpool_find(&e->pool, s ? s : "", len));
}

person_id engine_person_by_email(const engine *e, const char *s, size_t len)
{
    if (!s && len) return PERSON_NONE;
    return find_by_email(e, s ? s : "", len);
}

int engine_person_erase(engine *e, person_id id)
{
    if (!engine_person_exists(e, id)) return SEGD_ENOTFOUND;
    identity_unindex(e, id, ATTR_USER_ID);
    identity_unindex(e, id, ATTR_ANONYMOUS_IDS);
    identity_unindex(e, id, ATTR_EMAIL);
    for (uint32_t a = 0; a < e->attr_names.n; a++)
        if (e->attrs[a].col.type != SEGD_T_NONE) column_clear(&e->attrs[a].col, id, &e->pool);
    events_person_erase(&e->ev, &e->pool, id);
    idindex_remove(&e->by_public, id, public_hash_of(e, id), public_hash_of, e);
    column_clear(&e->people, id, &e->pool);
    e->live--;
    return SEGD_OK;
}

int engine_person_merge(engine *e, person_id from, person_id into)
{
    if (!engine_person_exists(e, from) || !engine_person_exists(e, into)) return SEGD_ENOTFOUND;
    if (from == into) return SEGD_EINVAL;
    column *anon = &e->attrs[ATTR_ANONYMOUS_IDS].col;

    /* Anonymous ids: into keeps its own and gains from's (from is about to go, so no
     * id of its can conflict). */
    segd_cell a, b;
    if (column_get(anon, from, &b)) {
        column_get(anon, into, &a);
        uint32_t n = a.n_codes + b.n_codes;
        uint32_t *codes = xmalloc(((size_t)n + 1) * sizeof *codes);
        if (a.n_codes) memcpy(codes, a.codes, a.n_codes * sizeof *codes);
        if (b.n_codes) memcpy(codes + a.n_codes, b.codes, b.n_codes * sizeof *codes);
        identity_unindex(e, from, ATTR_ANONYMOUS_IDS);
        identity_unindex(e, into, ATTR_ANONYMOUS_IDS);
        column_set_codes(anon, into, codes, n, &e->pool);
        column_clear(anon, from, &e->pool);
        identity_index(e, into, ATTR_ANONYMOUS_IDS);
        free(codes);
    }

    /* Every other attribute set on from and missing on into is copied. */
    for (uint32_t attr = 0; attr < e->attr_names.n; attr++) {
        column *col = &e->attrs[attr].col;
        if (attr == ATTR_ANONYMOUS_IDS || col->type == SEGD_T_NONE) continue;
        if (!column_has(col, from) || column_has(col, into)) continue;
        if (attr == ATTR_USER_ID) identity_unindex(e, from, ATTR_USER_ID);   /* stays unique */
        column_copy(col, from, into, &e->pool);
        if (attr == ATTR_USER_ID) column_clear(col, from, &e->pool);
        if (is_identity((int)attr)) identity_index(e, into, (int)attr);
    }

    events_person_move(&e->ev, from, into);
    return engine_person_erase(e, from);
}

/* ---- attributes ---- */

int engine_attr_slots(const engine *e)
{
    return (int)e->attr_names.n;
}

int engine_attr_find(const engine *e, const char *name)
{
    if (!name) return -1;
    return namemap_find(&e->attr_names, name);
}

int engine_attr_declare(engine *e, const char *name, segd_type type)
{
    if (!name || !*name || type <= SEGD_T_NONE || type > SEGD_T_JSON) return SEGD_EINVAL;
    int a = namemap_find(&e->attr_names, name);
    if (a >= 0) return e->attrs[a].col.type == type ? a : SEGD_ECONFLICT;
    if (e->attr_names.live >= e->limits.max_attributes || e->attr_names.n >= INT32_MAX)
        return SEGD_ELIMIT;
    e->attrs = xgrow(e->attrs, sizeof *e->attrs, &e->attrs_cap, (size_t)e->attr_names.n + 1, 16);
    column_init(&e->attrs[e->attr_names.n].col, type);
    column_index_items(&e->attrs[e->attr_names.n].col);
    return namemap_add(&e->attr_names, name);
}

static int attr_live(const engine *e, int attr)
{
    return attr >= 0 && (uint32_t)attr < e->attr_names.n && e->attrs[attr].col.type != SEGD_T_NONE;
}

const char *engine_attr_name(const engine *e, int attr)
{
    return namemap_name(&e->attr_names, attr);
}

segd_type engine_attr_type(const engine *e, int attr)
{
    return attr_live(e, attr) ? e->attrs[attr].col.type : SEGD_T_NONE;
}

uint32_t engine_attr_count_set(const engine *e, int attr)
{
    return attr_live(e, attr) ? e->attrs[attr].col.n_set : 0;
}

int engine_attr_drop(engine *e, int attr)
{
    if (!attr_live(e, attr)) return SEGD_ENOTFOUND;
    if (attr < ATTR_STANDARD_COUNT) return SEGD_EINVAL;
    column_release(&e->attrs[attr].col, &e->pool);
    e->attrs[attr].col.type = SEGD_T_NONE;
    namemap_remove(&e->attr_names, attr);
    return SEGD_OK;
}

/* 1 if the pointers and sizes of a value are usable. */
static int value_well_formed(const segd_value *v)
{
    switch (v->type) {
    case SEGD_T_NONE: case SEGD_T_NUMBER: case SEGD_T_BOOL: case SEGD_T_DATETIME:
        return 1;
    case SEGD_T_STRING: case SEGD_T_JSON:
        return (v->str || !v->str_len) && v->str_len < UINT32_MAX;
    case SEGD_T_LIST:
        if (v->n_items && !v->items) return 0;
        if (v->n_items >= UINT32_MAX) return 0;
        for (size_t k = 0; k < v->n_items; k++)
            if (!v->items[k]) return 0;
        return 1;
    default:
        return 0;
    }
}

int engine_attr_set(engine *e, person_id id, int attr, const segd_value *v)
{
    if (!engine_person_exists(e, id) || !attr_live(e, attr)) return SEGD_ENOTFOUND;
    column *col = &e->attrs[attr].col;
    int clear = !v || v->type == SEGD_T_NONE;
    if (!clear) {
        if (!value_well_formed(v)) return SEGD_EINVAL;
        if (v->type != col->type) return SEGD_ECONFLICT;
        if (identity_conflict(e, id, attr, v)) return SEGD_ECONFLICT;
    }
    if (is_identity(attr)) identity_unindex(e, id, attr);
    if (clear) column_clear(col, id, &e->pool);
    else column_set(col, id, v, &e->pool);
    if (is_identity(attr)) identity_index(e, id, attr);
    return SEGD_OK;
}

int engine_attr_get(const engine *e, person_id id, int attr, segd_cell *out)
{
    if (!attr_live(e, attr) || !engine_person_exists(e, id)) {
        memset(out, 0, sizeof *out);
        return 0;
    }
    return column_get(&e->attrs[attr].col, id, out);
}

/* ---- events ---- */

int engine_event_type_find(const engine *e, const char *name)
{
    return events_type_find(&e->ev, name);
}

int engine_event_type_declare(engine *e, const char *name)
{
    return events_type_declare(&e->ev, name);
}

int engine_event_type_count(const engine *e)
{
    return events_type_count(&e->ev);
}

const char *engine_event_type_name(const engine *e, int type)
{
    return events_type_name(&e->ev, type);
}

uint64_t engine_event_type_events(const engine *e, int type)
{
    return events_type_live(&e->ev, type);
}

int engine_prop_find(const engine *e, int type, const char *name)
{
    return events_prop_find(&e->ev, type, name);
}

int engine_prop_declare(engine *e, int type, const char *name, segd_type ptype)
{
    return events_prop_declare(&e->ev, type, name, ptype);
}

int engine_prop_count(const engine *e, int type)
{
    return events_prop_count(&e->ev, type);
}

const char *engine_prop_name(const engine *e, int type, int prop)
{
    return events_prop_name(&e->ev, type, prop);
}

segd_type engine_prop_type(const engine *e, int type, int prop)
{
    return events_prop_type(&e->ev, type, prop);
}

int64_t engine_event_append(engine *e, person_id id, int type, int64_t time_ms,
                            size_t n, const int *props, const segd_value *vals)
{
    if (!engine_person_exists(e, id)) return SEGD_ENOTFOUND;
    if (n && (!props || !vals)) return SEGD_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!value_well_formed(&vals[i])) return SEGD_EINVAL;
    return events_append(&e->ev, &e->pool, id, type, time_ms, n, props, vals);
}

int engine_event_pad(engine *e, int type, uint32_t rows)
{
    if (type < 0 || type >= events_type_count(&e->ev)) return SEGD_ENOTFOUND;
    if (events_rows(&e->ev, type) > rows) return SEGD_EINVAL;
    while (events_rows(&e->ev, type) < rows) {
        int64_t r = events_append(&e->ev, &e->pool, PERSON_NONE, type, 0, 0, NULL, NULL);
        if (r < 0) return (int)r;
    }
    return 0;
}

uint32_t engine_person_event_count(const engine *e, person_id id, int type)
{
    if (!engine_person_exists(e, id)) return 0;
    return events_person_count(&e->ev, id, type);
}

size_t engine_person_events(const engine *e, person_id id, engine_event_ref *out, size_t cap)
{
    if (!engine_person_exists(e, id)) return 0;
    return events_person_list(&e->ev, id, out, cap);
}

uint32_t engine_event_rows(const engine *e, int type)
{
    return events_rows(&e->ev, type);
}

const person_id *engine_event_persons(const engine *e, int type)
{
    return events_persons(&e->ev, type);
}

const int64_t *engine_event_times(const engine *e, int type)
{
    return events_times(&e->ev, type);
}

int engine_event_prop_get(const engine *e, int type, uint32_t row, int prop, segd_cell *out)
{
    return events_prop_get(&e->ev, type, row, prop, out);
}

/* ---- compaction ---- */

void engine_compact(engine *e)
{
    strpool_compact(&e->pool);
    column_compact(&e->people);
    idindex_compact(&e->by_public, public_hash_of, e);
    idindex_compact(&e->by_user, user_hash_of, e);
    idindex_compact(&e->by_email, email_hash_of, e);
    u32map_compact(&e->by_anon);
    namemap_compact(&e->attr_names);
    e->attrs = fit_array(e->attrs, sizeof *e->attrs, &e->attrs_cap, e->attr_names.n);
    for (uint32_t a = 0; a < e->attr_names.n; a++) column_compact(&e->attrs[a].col);
    events_compact(&e->ev);
}

/* ---- accounting and invariants ---- */

void engine_memory_usage(const engine *e, engine_memory *out)
{
    memset(out, 0, sizeof *out);
    size_t people = sizeof *e + column_memory(&e->people) + idindex_memory(&e->by_public)
                    + idindex_memory(&e->by_user) + idindex_memory(&e->by_email)
                    + u32map_memory(&e->by_anon) + namemap_memory(&e->attr_names)
                    + e->attrs_cap * sizeof *e->attrs;
    for (uint32_t a = 0; a < e->attr_names.n; a++) people += column_memory(&e->attrs[a].col);
    out->people_bytes = people;
    out->string_bytes = strpool_memory(&e->pool);
    events_memory(&e->ev, &out->event_bytes, &out->property_bytes);
    out->events = e->ev.live;
    out->people = e->live;
    out->strings = e->pool.live;
}

static int person_live_cb(const void *ctx, person_id p)
{
    return engine_person_exists(ctx, p);
}

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (!(cond)) {                                     \
            fprintf(stderr, "engine_check: " __VA_ARGS__); \
            fputc('\n', stderr);                           \
            return SEGD_EINVAL;                            \
        }                                                  \
    } while (0)

static int check_people(const engine *e)
{
    CHECK(column_check(&e->people, &e->pool, e->limit, "people") == 0, "people column");
    CHECK(e->people.n_set == e->live, "%u people marked, %u live", e->people.n_set, e->live);
    CHECK(e->by_public.count == e->live, "public id index holds %u, live %u", e->by_public.count, e->live);
    CHECK(idindex_check(&e->by_public, public_hash_of, e, "public id index") == 0, "public id index");
    for (person_id p = column_next(&e->people, 0); p != COLUMN_NONE; p = column_next(&e->people, p + 1)) {
        uint64_t pub = engine_person_public_id(e, p);
        CHECK(pub != 0, "person %u has public id 0", p);
        CHECK(find_by_public(e, pub) == p, "person %u not found by its public id (or it is shared)", p);
    }
    return SEGD_OK;
}

static int check_attributes(const engine *e)
{
    CHECK(namemap_check(&e->attr_names, "attribute names") == 0, "attribute names");
    CHECK(e->attr_names.live <= e->limits.max_attributes, "%u attributes over the limit", e->attr_names.live);
    for (uint32_t a = 0; a < e->attr_names.n; a++) {
        const column *col = &e->attrs[a].col;
        const char *name = e->attr_names.names[a];
        CHECK(!name == (col->type == SEGD_T_NONE), "attribute %u: name and type disagree", a);
        if (a < ATTR_STANDARD_COUNT)
            CHECK(name && strcmp(name, standard_attrs[a].name) == 0 && col->type == standard_attrs[a].type,
                  "standard attribute %u changed", a);
        if (!name) {
            CHECK(col->n_set == 0 && col->n_pages == 0 && !col->pages, "dropped attribute %u keeps values", a);
            continue;
        }
        char what[64];
        snprintf(what, sizeof what, "attribute %u", a);
        if (column_check(col, &e->pool, e->limit, what)) return SEGD_EINVAL;
        for (uint32_t p = column_next(col, 0); p != COLUMN_NONE; p = column_next(col, p + 1))
            CHECK(engine_person_exists(e, p), "attribute %u has a value for erased person %u", a, p);
    }
    return SEGD_OK;
}

static int check_identity(const engine *e)
{
    const column *user = attr_col(e, ATTR_USER_ID), *email = attr_col(e, ATTR_EMAIL);
    const column *anon = attr_col(e, ATTR_ANONYMOUS_IDS);
    CHECK(e->by_user.count == user->n_set, "user_id index holds %u, %u people have one",
          e->by_user.count, user->n_set);
    CHECK(idindex_check(&e->by_user, user_hash_of, e, "user_id index") == 0, "user_id index");
    for (person_id p = column_next(user, 0); p != COLUMN_NONE; p = column_next(user, p + 1))
        CHECK(find_by_user_code(e, column_code(user, p)) == p,
              "person %u not found by its user_id (or it is shared)", p);

    CHECK(e->by_email.count == email->n_set, "email index holds %u, %u people have one",
          e->by_email.count, email->n_set);
    CHECK(idindex_check(&e->by_email, email_hash_of, e, "email index") == 0, "email index");
    for (person_id p = column_next(email, 0); p != COLUMN_NONE; p = column_next(email, p + 1)) {
        CHECK(idindex_contains(&e->by_email, p, email_hash_of(e, p)), "person %u missing from the email index", p);
        size_t len;
        const char *s = strpool_get(&e->pool, column_code(email, p), &len);
        person_id first = find_by_email(e, s, len);
        CHECK(first <= p && engine_person_exists(e, first), "email of person %u finds %u", p, first);
    }

    CHECK(u32map_check(&e->by_anon, "anonymous id index") == 0, "anonymous id index");
    uint32_t n_ids = 0;
    for (person_id p = column_next(anon, 0); p != COLUMN_NONE; p = column_next(anon, p + 1)) {
        segd_cell cell;
        column_get(anon, p, &cell);
        n_ids += cell.n_codes;
        for (uint32_t k = 0; k < cell.n_codes; k++)
            CHECK(u32map_get(&e->by_anon, cell.codes[k]) == p,
                  "anonymous id code %u of person %u maps to %u", cell.codes[k], p,
                  u32map_get(&e->by_anon, cell.codes[k]));
    }
    CHECK(n_ids == e->by_anon.count, "anonymous id index holds %u, people have %u ids",
          e->by_anon.count, n_ids);
    return SEGD_OK;
}

static int check_refcounts(const engine *e)
{
    uint32_t n = e->pool.n_codes;
    uint32_t *uses = xcalloc(n ? n : 1, sizeof *uses);
    for (uint32_t a = 0; a < e->attr_names.n; a++) column_count_uses(&e->attrs[a].col, uses, n);
    events_count_uses(&e->ev, uses, n);
    for (uint32_t c = 0; c < n; c++) {
        if (uses[c] != strpool_refs(&e->pool, c)) {
            fprintf(stderr, "engine_check: string code %u has %u refs but %u uses\n", c,
                    strpool_refs(&e->pool, c), uses[c]);
            free(uses);
            return SEGD_EINVAL;
        }
    }
    free(uses);
    return SEGD_OK;
}

int engine_check(const engine *e)
{
    CHECK(strpool_check(&e->pool) == 0, "string pool");
    if (check_people(e) || check_attributes(e) || check_identity(e)) return SEGD_EINVAL;
    CHECK(events_check(&e->ev, &e->pool, person_live_cb, e) == 0, "events");
    return check_refcounts(e);
}

/* ---- scans ---- */

static int page_out(const column *c, uint32_t page, engine_page *out)
{
    out->first_row = page * ENGINE_PAGE_ROWS;
    return column_page_view(c, page, &out->n_set, &out->present, &out->values);
}

uint32_t engine_attr_pages(const engine *e, int attr)
{
    return attr_live(e, attr) ? column_pages(&e->attrs[attr].col) : 0;
}

int engine_attr_page(const engine *e, int attr, uint32_t page, engine_page *out)
{
    if (!attr_live(e, attr)) {
        memset(out, 0, sizeof *out);
        out->first_row = page * ENGINE_PAGE_ROWS;
        return 0;
    }
    return page_out(&e->attrs[attr].col, page, out);
}

uint32_t engine_people_pages(const engine *e)
{
    return column_pages(&e->people);
}

int engine_people_page(const engine *e, uint32_t page, engine_page *out)
{
    return page_out(&e->people, page, out);
}

uint32_t engine_prop_pages(const engine *e, int type, int prop)
{
    const column *c = events_prop_column(&e->ev, type, prop);
    return c ? column_pages(c) : 0;
}

int engine_prop_page(const engine *e, int type, int prop, uint32_t page, engine_page *out)
{
    const column *c = events_prop_column(&e->ev, type, prop);
    if (!c) {
        memset(out, 0, sizeof *out);
        out->first_row = page * ENGINE_PAGE_ROWS;
        return 0;
    }
    return page_out(c, page, out);
}

uint32_t engine_string_limit(const engine *e)
{
    return e->pool.n_codes;
}

uint32_t engine_person_event_newest(const engine *e, person_id id, int type)
{
    return events_person_newest(&e->ev, id, type);
}

const uint32_t *engine_event_prevs(const engine *e, int type)
{
    return events_prevs(&e->ev, type);
}

int64_t engine_list_items(const engine *e, int attr)
{
    return attr_live(e, attr) ? column_items_count(&e->attrs[attr].col) : -1;
}

uint32_t engine_list_item_people(const engine *e, int attr, uint32_t i, uint64_t *words)
{
    return attr_live(e, attr) ? column_item_rows(&e->attrs[attr].col, i, words) : STRPOOL_NONE;
}

_Static_assert(ENGINE_ZONE_ROWS == EVENTS_ZONE_ROWS, "engine.h and events.h agree on zones");
_Static_assert(ENGINE_PAGE_ROWS == COLUMN_PAGE_ROWS, "engine.h and column.h agree on pages");

uint32_t engine_event_zones(const engine *e, int type, const int64_t **min, const int64_t **max)
{
    return events_zones(&e->ev, type, min, max);
}
