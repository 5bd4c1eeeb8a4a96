/* apply.c - validates an op against the catalog and applies it to store and engine.
 *
 * Runs only in the writer thread, inside the group's transaction and the op's
 * savepoint, holding the engine's write lock. Two passes: the first checks every
 * message against the catalog (types fixed on first sight, limits, reserved names,
 * persons that must exist) without changing anything, so an invalid op leaves no
 * trace; the second writes the store rows and applies the change to the engine.
 * Workload: batches of tracking messages, most of them events for known people.
 */
#include "internal.h"
#include "../base/alloc.h"
#include "../base/timefmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

/* ---- value resolution ---- */

int ingest_resolve_value(const ingest_field *f, segd_type type, segd_value *out)
{
    *out = f->value;
    if (f->natural == SEGD_T_NONE) return 0;            /* null clears, whatever the type */
    if (type == SEGD_T_NONE || type == f->natural) return 0;
    if (type == SEGD_T_STRING && (f->natural == SEGD_T_DATETIME || f->from_text) && f->text) {
        out->type = SEGD_T_STRING;                       /* a declared string keeps the text */
        out->str = f->text;
        out->str_len = f->text_len;
        return 0;
    }
    if (f->from_text && f->text) {
        char *end;
        if (type == SEGD_T_NUMBER) {
            double d = strtod(f->text, &end);
            if (f->text_len && *end == 0 && isfinite(d)) {
                out->type = SEGD_T_NUMBER;
                out->number = d;
                return 0;
            }
        }
    }
    return SEGD_ECONFLICT;
}

/* ---- the catalog as this op will leave it ----
 * New attributes, event types and properties met while validating are remembered
 * here so a later message of the same op is checked against them. */
typedef struct pending_name {
    int scope;          /* -1: attribute; >= 0: property of that event type; -2: event type */
    const char *name;
    segd_type type;
} pending_name;

typedef struct pending {
    pending_name *v;
    size_t n, cap;
    int new_attrs;
    int new_types;
} pending;

static pending_name *pending_find(pending *p, int scope, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].scope == scope && strcmp(p->v[i].name, name) == 0) return &p->v[i];
    return NULL;
}

static void pending_add(pending *p, int scope, const char *name, segd_type type)
{
    p->v = xgrow(p->v, sizeof *p->v, &p->cap, p->n + 1, 16);
    p->v[p->n++] = (pending_name){scope, name, type};
}

/* Records a message's error: for a batch into op->bad (every bad message), and the
 * first one into op->err. */
static void note_error(ingest_op *op, const ingest_msg *m, segd_error *e)
{
    if (op->is_batch) {
        if (!op->bad) op->bad = cJSON_CreateArray();
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "index", m->index);
        cJSON_AddStringToObject(x, "field", e->field);
        cJSON_AddStringToObject(x, "code", e->code);
        cJSON_AddStringToObject(x, "message", e->message);
        cJSON_AddItemToArray(op->bad, x);
    }
    if (op->err.status == 0) {
        op->err = *e;
        op->err.index = op->is_batch ? m->index : -1;
    }
}

/* Attributes that exist now (dropped ones leave empty slots). */
static int live_attributes(const engine *e)
{
    int live = 0;
    for (int a = 0; a < engine_attr_slots(e); a++) live += engine_attr_name(e, a) != NULL;
    return live;
}

static int is_reserved_trait(const char *name)
{
    return strcmp(name, "user_id") == 0 || strcmp(name, "anonymous_ids") == 0 ||
           strcmp(name, "last_seen") == 0 || strcmp(name, "id") == 0;
}

/* Checks fields against attributes (scope -1) or an event type's properties. */
static int check_fields(ingest *ing, pending *p, const ingest_fields *fs, int scope, int event_type,
                        const char *what, segd_error *e)
{
    const engine *eng = ing->eng;
    int new_props = 0;
    for (size_t i = 0; i < fs->n; i++) {
        const ingest_field *f = &fs->v[i];
        segd_type have = SEGD_T_NONE;
        int exists = 0;
        if (scope == -1) {
            if (is_reserved_trait(f->name)) {
                snprintf(e->field, sizeof e->field, "%s", f->name);
                return segd_error_set(e, 422, "reserved_attribute",
                                      "\"%s\" is set by segd itself (from userId, anonymousId and message times); remove it from the traits",
                                      f->name);
            }
            int a = engine_attr_find(eng, f->name);
            if (a >= 0) { have = engine_attr_type(eng, a); exists = 1; }
        } else if (event_type >= 0) {
            int pr = engine_prop_find(eng, event_type, f->name);
            if (pr >= 0) { have = engine_prop_type(eng, event_type, pr); exists = 1; }
        }
        if (!exists) {
            pending_name *pn = pending_find(p, scope, f->name);
            if (pn) { have = pn->type; exists = 1; }
        }
        segd_value v;
        if (exists && ingest_resolve_value(f, have, &v) != 0) {
            snprintf(e->field, sizeof e->field, "%s", f->name);
            return segd_error_set(e, 422, "type_conflict",
                                  "%s \"%s\" is a %s, but this value is a %s; send a %s, or delete the %s to change its type",
                                  what, f->name, segd_type_name(have), segd_type_name(f->natural),
                                  segd_type_name(have), scope == -1 ? "attribute (DELETE /api/attributes/NAME)" : "property's event type's data");
        }
        if (!exists && f->natural != SEGD_T_NONE) {
            if (scope == -1) {
                if ((uint32_t)(live_attributes(eng) + p->new_attrs) >= ing->cfg.limits.max_attributes) {
                    snprintf(e->field, sizeof e->field, "%s", f->name);
                    return segd_error_set(e, 422, "limit_attributes",
                                          "adding \"%s\" would pass the limit of %u attributes; delete unused attributes or raise --max-attributes",
                                          f->name, ing->cfg.limits.max_attributes);
                }
                p->new_attrs++;
            } else {
                int have_props = event_type >= 0 ? engine_prop_count(eng, event_type) : 0;
                for (size_t k = 0; k < p->n; k++) have_props += p->v[k].scope == scope;
                if ((uint32_t)have_props >= ing->cfg.limits.max_properties) {
                    snprintf(e->field, sizeof e->field, "%s", f->name);
                    return segd_error_set(e, 422, "limit_properties",
                                          "event type has %d properties, the limit is %u; send fewer distinct properties or raise --max-properties",
                                          have_props, ing->cfg.limits.max_properties);
                }
                new_props++;
            }
            pending_add(p, scope, f->name, f->natural);
        }
    }
    if (scope != -1 && fs->n > ing->cfg.limits.max_properties) {
        return segd_error_set(e, 422, "limit_properties",
                              "the event has %zu properties, the limit is %u; send fewer or raise --max-properties",
                              fs->n, ing->cfg.limits.max_properties);
    }
    return 0;
}

/* Event types get scopes 0..; a type not yet in the engine gets a pending scope that
 * cannot collide with real indexes. */
static int event_scope(ingest *ing, pending *p, const char *name, int *event_type, segd_error *e)
{
    *event_type = engine_event_type_find(ing->eng, name);
    if (*event_type >= 0) return *event_type;
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].scope == -2 && strcmp(p->v[i].name, name) == 0) return 1000000 + (int)i;
    if ((uint32_t)(engine_event_type_count(ing->eng) + p->new_types) >= ing->cfg.limits.max_event_types) {
        snprintf(e->field, sizeof e->field, "event");
        return segd_error_set(e, 422, "limit_event_types",
                              "adding event type \"%s\" would pass the limit of %u event types; raise --max-event-types",
                              name, ing->cfg.limits.max_event_types);
    }
    p->new_types++;
    pending_add(p, -2, name, SEGD_T_NONE);
    return 1000000 + (int)(p->n - 1);
}

static int check_list_attr(ingest *ing, pending *p, const char *name, segd_error *e)
{
    int a = engine_attr_find(ing->eng, name);
    segd_type t = a >= 0 ? engine_attr_type(ing->eng, a) : SEGD_T_NONE;
    pending_name *pn = a < 0 ? pending_find(p, -1, name) : NULL;
    if (pn) t = pn->type;
    if (t != SEGD_T_NONE && t != SEGD_T_LIST) {
        snprintf(e->field, sizeof e->field, "%s", name);
        return segd_error_set(e, 422, "type_conflict", "attribute \"%s\" is a %s, not a list; delete it to reuse the name",
                              name, segd_type_name(t));
    }
    if (t == SEGD_T_NONE) {
        if ((uint32_t)(live_attributes(ing->eng) + p->new_attrs) >= ing->cfg.limits.max_attributes) {
            snprintf(e->field, sizeof e->field, "%s", name);
            return segd_error_set(e, 422, "limit_attributes",
                                  "adding \"%s\" would pass the limit of %u attributes; delete unused attributes or raise --max-attributes",
                                  name, ing->cfg.limits.max_attributes);
        }
        pending_add(p, -1, name, SEGD_T_LIST);
        p->new_attrs++;
    }
    return 0;
}

static int check_message(ingest *ing, pending *p, ingest_msg *m, segd_error *e)
{
    int rc, et;
    switch (m->kind) {
    case INGEST_IDENTIFY:
    case INGEST_UPSERT:
    case INGEST_PATCH:
        if ((rc = check_fields(ing, p, &m->traits, -1, -1, "attribute", e))) return rc;
        for (size_t i = 0; i < m->traits.n; i++)
            if (strcmp(m->traits.v[i].name, "tags") == 0 && m->traits.v[i].natural != SEGD_T_LIST &&
                m->traits.v[i].natural != SEGD_T_NONE) {
                snprintf(e->field, sizeof e->field, "tags");
                return segd_error_set(e, 422, "type_conflict", "tags must be an array of strings");
            }
        if (m->kind == INGEST_PATCH &&
            ingest_find_person(ing->eng, m->key_by, m->key) == PERSON_NONE)
            return segd_error_set(e, 404, "person_not_found", "no person has that key; check the key and ?by=");
        return 0;
    case INGEST_TRACK:
    case INGEST_PAGE:
    case INGEST_SCREEN: {
        int scope = event_scope(ing, p, m->event, &et, e);
        if (scope < 0) return scope;
        return check_fields(ing, p, &m->props, scope, et, "property", e);
    }
    case INGEST_GROUP:
        return check_list_attr(ing, p, "groups", e);
    case INGEST_ERASE:
        if (ingest_find_person(ing->eng, m->key_by, m->key) == PERSON_NONE)
            return segd_error_set(e, 404, "person_not_found", "no person has that key; check the key and ?by=");
        return 0;
    case INGEST_DECLARE: {
        int a = engine_attr_find(ing->eng, m->attr_name);
        if (a >= 0 && engine_attr_type(ing->eng, a) != m->attr_type) {
            snprintf(e->field, sizeof e->field, "%s", m->attr_name);
            return segd_error_set(e, 409, "type_conflict",
                                  "attribute \"%s\" already exists as a %s; delete it first to change its type",
                                  m->attr_name, segd_type_name(engine_attr_type(ing->eng, a)));
        }
        if (a < 0) {
            int live = live_attributes(ing->eng);
            if ((uint32_t)live >= ing->cfg.limits.max_attributes)
                return segd_error_set(e, 422, "limit_attributes",
                                      "there are already %d attributes, the limit; delete unused ones or raise --max-attributes", live);
        }
        return 0;
    }
    case INGEST_DECLARE_EVENT: {
        int scope = event_scope(ing, p, m->event, &et, e);
        if (scope < 0) return scope;
        int new_props = 0;
        for (size_t i = 0; i < m->props.n; i++) {
            const ingest_field *f = &m->props.v[i];
            int pr = et >= 0 ? engine_prop_find(ing->eng, et, f->name) : -1;
            if (pr < 0) {
                new_props++;
                continue;
            }
            segd_type have = engine_prop_type(ing->eng, et, pr);
            if (have != f->natural) {
                snprintf(e->field, sizeof e->field, "properties.%s", f->name);
                return segd_error_set(e, 409, "type_conflict",
                                      "property \"%s\" of event \"%s\" is already a %s; declare it as a %s or leave it out",
                                      f->name, m->event, segd_type_name(have), segd_type_name(have));
            }
        }
        if ((uint32_t)((et >= 0 ? engine_prop_count(ing->eng, et) : 0) + new_props) > ing->cfg.limits.max_properties)
            return segd_error_set(e, 422, "limit_properties",
                                  "event \"%s\" would have more than %u properties; declare fewer or raise --max-properties",
                                  m->event, ing->cfg.limits.max_properties);
        return 0;
    }
    case INGEST_DROP: {
        int a = engine_attr_find(ing->eng, m->attr_name);
        if (a < 0) return segd_error_set(e, 404, "attribute_not_found", "no attribute is named \"%s\"", m->attr_name);
        if (a < ATTR_STANDARD_COUNT)
            return segd_error_set(e, 422, "standard_attribute",
                                  "\"%s\" is a standard attribute and cannot be deleted", m->attr_name);
        int slot;
        if (segments_use_attribute(ing->segs, a, &slot)) {
            segment_view v;
            segments_view(ing->segs, slot, &v);
            return segd_error_set(e, 409, "attribute_in_use",
                                  "segment \"%.100s\" reads \"%s\"; change or delete the segment before deleting the attribute",
                                  v.name, m->attr_name);
        }
        return 0;
    }
    default:
        return 0;
    }
}

/* ---- applying ---- */

typedef struct touched {
    ingest *ing;
    person_id *v;
    size_t n, cap;
    person_id last_created;
} touched;

static void touch(touched *t, person_id id)
{
    ingest_chg_person(t->ing, id);
    if (t->n && t->v[t->n - 1] == id) return;
    t->v = xgrow(t->v, sizeof *t->v, &t->cap, t->n + 1, 16);
    t->v[t->n++] = id;
}

static int cmp_person(const void *a, const void *b)
{
    person_id x = *(const person_id *)a, y = *(const person_id *)b;
    return x < y ? -1 : x > y;
}

/* Declares an attribute the catalog does not have yet, in engine and store. */
static int ensure_attr(ingest *ing, const char *name, segd_type type, int declared, int *attr)
{
    int a = engine_attr_find(ing->eng, name);
    if (a >= 0) {
        *attr = a;
        return 0;
    }
    a = engine_attr_declare(ing->eng, name, type);
    if (a < 0) return a;
    *attr = a;
    return store_attribute_put(ing->st, name, segd_type_name(type), declared);
}

/* Sets a list attribute to its current items plus `add` minus `remove` (order kept,
 * no duplicates). */
static int list_edit(ingest *ing, person_id id, int attr, const char *const *add, size_t n_add,
                     const char *const *remove, size_t n_remove)
{
    segd_cell cell;
    engine_attr_get(ing->eng, id, attr, &cell);
    size_t cap = cell.n_codes + n_add, n = 0;
    const char **items = xmalloc((cap ? cap : 1) * sizeof *items);
    for (uint32_t i = 0; i < cell.n_codes; i++) {
        const char *s = engine_string(ing->eng, cell.codes[i], NULL);
        int drop = 0;
        for (size_t k = 0; k < n_remove && !drop; k++) drop = strcmp(s, remove[k]) == 0;
        if (!drop) items[n++] = s;
    }
    for (size_t k = 0; k < n_add; k++) {
        int dup = 0;
        for (size_t i = 0; i < n && !dup; i++) dup = strcmp(items[i], add[k]) == 0;
        for (size_t r = 0; r < n_remove && !dup; r++) dup = strcmp(remove[r], add[k]) == 0;
        if (!dup) items[n++] = add[k];
    }
    /* the strings may be the pool's own: copy before the set drops their references */
    char **copies = xmalloc((n ? n : 1) * sizeof *copies);
    for (size_t i = 0; i < n; i++) copies[i] = xstrdup(items[i]);
    segd_value v = {.type = SEGD_T_LIST, .items = (const char *const *)copies, .n_items = n};
    int rc = engine_attr_set(ing->eng, id, attr, n ? &v : NULL);
    ingest_chg_attr(ing, attr);
    for (size_t i = 0; i < n; i++) free(copies[i]);
    free(copies);
    free(items);
    return rc;
}

static int set_string_attr(ingest *ing, person_id id, int attr, const char *s)
{
    segd_value v = {.type = SEGD_T_STRING, .str = s, .str_len = strlen(s)};
    ingest_chg_attr(ing, attr);
    return engine_attr_set(ing->eng, id, attr, &v);
}

static int has_user_id(ingest *ing, person_id id)
{
    segd_cell c;
    return engine_attr_get(ing->eng, id, ATTR_USER_ID, &c);
}

static void grow_pins(ingest *ing, person_id id)
{
    size_t need = id / 8 + 1;
    if (need > ing->created_pinned_cap) {
        size_t old = ing->created_pinned_cap;
        ing->created_pinned = xgrow(ing->created_pinned, 1, &ing->created_pinned_cap, need, 4096);
        memset(ing->created_pinned + old, 0, ing->created_pinned_cap - old);
    }
}

int ingest_pinned(const ingest *ing, person_id id)
{
    return id / 8 < ing->created_pinned_cap && (ing->created_pinned[id / 8] >> (id % 8) & 1);
}

void ingest_set_pinned(ingest *ing, person_id id, int pinned)
{
    grow_pins(ing, id);
    if (pinned) ing->created_pinned[id / 8] |= (uint8_t)(1u << (id % 8));
    else ing->created_pinned[id / 8] &= (uint8_t)~(1u << (id % 8));
}

static uint64_t draw_public_id(ingest *ing)
{
    for (;;) {
        if (ing->random_left == 0) {   /* one getrandom per 64 people, not one each */
            randombytes_buf(ing->random_pool, sizeof ing->random_pool);
            ing->random_left = sizeof ing->random_pool / sizeof ing->random_pool[0];
        }
        uint64_t r = ing->random_pool[--ing->random_left];
        r &= (1ULL << 63) - 1;         /* fits SQLite's signed INTEGER */
        if (r && engine_person_by_public_id(ing->eng, r) == PERSON_NONE) return r;
    }
}

/* See internal.h. */
void ingest_see_time(ingest *ing, engine *e, person_id id, int64_t t)
{
    segd_cell c;
    segd_value v = {.type = SEGD_T_DATETIME, .time_ms = t};
    if (!engine_attr_get(e, id, ATTR_LAST_SEEN, &c) || c.time_ms < t)
        engine_attr_set(e, id, ATTR_LAST_SEEN, &v);
    if (!ingest_pinned(ing, id) && (!engine_attr_get(e, id, ATTR_CREATED_AT, &c) || c.time_ms > t))
        engine_attr_set(e, id, ATTR_CREATED_AT, &v);
}

/* The store's keys of every event of a person, in an array the caller frees; *n
 * receives how many. */
static store_event_key *person_events(ingest *ing, person_id id, size_t *n)
{
    *n = engine_person_events(ing->eng, id, NULL, 0);
    engine_event_ref *refs = xmalloc((*n ? *n : 1) * sizeof *refs);
    engine_person_events(ing->eng, id, refs, *n);
    store_event_key *keys = xmalloc((*n ? *n : 1) * sizeof *keys);
    for (size_t i = 0; i < *n; i++) keys[i] = (store_event_key){refs[i].type, refs[i].row};
    free(refs);
    return keys;
}

/* Merges `from` into `into` in engine and store; times combine (oldest created_at
 * unless into pinned it, newest last_seen). */
static int merge_people(ingest *ing, person_id from, person_id into)
{
    segd_cell c;
    int64_t from_created = INT64_MAX, from_seen = INT64_MIN;
    if (engine_attr_get(ing->eng, from, ATTR_CREATED_AT, &c)) from_created = c.time_ms;
    if (engine_attr_get(ing->eng, from, ATTR_LAST_SEEN, &c)) from_seen = c.time_ms;
    int rc = 0;
    size_t n;
    store_event_key *keys = person_events(ing, from, &n);
    rc = store_events_set_person(ing->st, keys, n, into);
    free(keys);
    if (rc) return rc;
    if ((rc = store_person_delete(ing->st, from))) return rc;
    ingest_chg_departed(ing, from, SEG_CAUSE_MERGE);
    if (engine_person_merge(ing->eng, from, into) != 0) return SEGD_EIO;
    ingest_set_pinned(ing, from, 0);
    if (from_created != INT64_MAX && !ingest_pinned(ing, into) &&
        (!engine_attr_get(ing->eng, into, ATTR_CREATED_AT, &c) || c.time_ms > from_created)) {
        segd_value v = {.type = SEGD_T_DATETIME, .time_ms = from_created};
        engine_attr_set(ing->eng, into, ATTR_CREATED_AT, &v);
    }
    if (from_seen != INT64_MIN && (!engine_attr_get(ing->eng, into, ATTR_LAST_SEEN, &c) || c.time_ms < from_seen)) {
        segd_value v = {.type = SEGD_T_DATETIME, .time_ms = from_seen};
        engine_attr_set(ing->eng, into, ATTR_LAST_SEEN, &v);
    }
    return 0;
}

static person_id create_person(ingest *ing, touched *t)
{
    person_id id = engine_person_create(ing->eng, draw_public_id(ing));
    ingest_chg_created(ing, id);
    touch(t, id);
    t->last_created = id;
    return id;
}

/* Finds or creates the person a message is about, merging an anonymous person into
 * the identified one when the message links them (see docs/API.md, "Identity"). */
static int resolve_person(ingest *ing, ingest_msg *m, touched *t, person_id *out)
{
    engine *e = ing->eng;
    int rc;
    person_id u = m->user_id ? engine_person_by_user_id(e, m->user_id, strlen(m->user_id)) : PERSON_NONE;
    person_id a = m->anonymous_id ? engine_person_by_anonymous_id(e, m->anonymous_id, strlen(m->anonymous_id))
                                  : PERSON_NONE;
    const char *anon[1] = {m->anonymous_id};
    if (!m->user_id) {
        if (a == PERSON_NONE) {
            a = create_person(ing, t);
            if ((rc = list_edit(ing, a, ATTR_ANONYMOUS_IDS, anon, 1, NULL, 0))) return rc;
        }
        *out = a;
    } else if (u == PERSON_NONE) {
        if (a != PERSON_NONE && !has_user_id(ing, a)) {
            u = a;                                   /* the anonymous person is identified */
        } else {
            u = create_person(ing, t);
            if (a == PERSON_NONE && m->anonymous_id &&
                (rc = list_edit(ing, u, ATTR_ANONYMOUS_IDS, anon, 1, NULL, 0)))
                return rc;
        }
        if ((rc = set_string_attr(ing, u, ATTR_USER_ID, m->user_id))) return rc;
        touch(t, u);
        *out = u;
    } else {
        if (a == PERSON_NONE && m->anonymous_id) {
            if ((rc = list_edit(ing, u, ATTR_ANONYMOUS_IDS, anon, 1, NULL, 0))) return rc;
            touch(t, u);
        } else if (a != PERSON_NONE && a != u && !has_user_id(ing, a)) {
            if ((rc = merge_people(ing, a, u))) return rc;
            touch(t, u);
        }
        *out = u;
    }
    return 0;
}

static int apply_fields_to_person(ingest *ing, person_id id, const ingest_fields *fs)
{
    int rc;
    for (size_t i = 0; i < fs->n; i++) {
        const ingest_field *f = &fs->v[i];
        int attr = engine_attr_find(ing->eng, f->name);
        if (attr < 0) {
            if (f->natural == SEGD_T_NONE) continue;       /* clearing what never existed */
            if ((rc = ensure_attr(ing, f->name, f->natural, 0, &attr))) return rc;
        }
        segd_value v;
        if (ingest_resolve_value(f, engine_attr_type(ing->eng, attr), &v) != 0) return SEGD_ECONFLICT;
        ingest_chg_attr(ing, attr);
        if (v.type == SEGD_T_LIST && attr == ATTR_TAGS) {
            /* a tags trait replaces the list; duplicates are dropped */
            if ((rc = engine_attr_set(ing->eng, id, attr, NULL))) return rc;
            if ((rc = list_edit(ing, id, attr, v.items, v.n_items, NULL, 0))) return rc;
            continue;
        }
        if ((rc = engine_attr_set(ing->eng, id, attr, &v))) return rc;
    }
    return 0;
}

/* The event type called name, declared in engine and store if new. Returns 0 or a
 * negative code; *type is set on success. */
static int ensure_event_type(ingest *ing, const char *name, int *type)
{
    *type = engine_event_type_find(ing->eng, name);
    if (*type >= 0) return 0;
    pthread_mutex_lock(&ing->catalog_lock);        /* ingest_prepare may be reading the catalog */
    *type = engine_event_type_declare(ing->eng, name);
    ing->catalog_version++;
    pthread_mutex_unlock(&ing->catalog_lock);
    if (*type < 0) return *type;
    return store_event_type_put(ing->st, *type, name);
}

/* The property `name` of an event type, declared as ptype in engine and store if new. */
static int ensure_prop(ingest *ing, int type, const char *name, segd_type ptype, int *prop)
{
    *prop = engine_prop_find(ing->eng, type, name);
    if (*prop >= 0) return 0;
    pthread_mutex_lock(&ing->catalog_lock);
    *prop = engine_prop_declare(ing->eng, type, name, ptype);
    ing->catalog_version++;
    pthread_mutex_unlock(&ing->catalog_lock);
    if (*prop < 0) return *prop;
    return store_property_put(ing->st, type, name, segd_type_name(ptype));
}

static int append_event(ingest *ing, person_id id, ingest_msg *m)
{
    int rc;
    if (m->checked) {                   /* type, properties and values resolved by ingest_prepare */
        ingest_chg_type(ing, m->event_type);
        uint32_t row = engine_event_rows(ing->eng, m->event_type);
        rc = store_event_insert(ing->st, m->event_type, row, id, m->timestamp, m->props_text, m->props_len);
        if (rc == 0 && engine_event_append(ing->eng, id, m->event_type, m->timestamp, m->props.n, m->prop_index,
                                           m->prop_values) != (int64_t)row)
            rc = SEGD_EIO;
        return rc;
    }
    int type;
    if ((rc = ensure_event_type(ing, m->event, &type))) return rc;
    ingest_chg_type(ing, type);
    size_t n = m->props.n;
    int props_small[16];
    segd_value vals_small[16];
    int *props = n <= 16 ? props_small : xmalloc(n * sizeof *props);
    segd_value *vals = n <= 16 ? vals_small : xmalloc(n * sizeof *vals);
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const ingest_field *f = &m->props.v[i];
        int p;
        if ((rc = ensure_prop(ing, type, f->name, f->natural, &p))) break;
        props[i] = p;
        if (rc == 0 && ingest_resolve_value(f, engine_prop_type(ing->eng, type, p), &vals[i]) != 0)
            rc = SEGD_ECONFLICT;
    }
    uint32_t row = engine_event_rows(ing->eng, type);     /* the row the engine appends next */
    if (rc == 0) {
        rc = store_event_insert(ing->st, type, row, id, m->timestamp, m->props_text, m->props_len);
    }
    if (rc == 0) {
        int64_t got = engine_event_append(ing->eng, id, type, m->timestamp, n, props, vals);
        if (got != (int64_t)row) rc = SEGD_EIO;
    }
    if (props != props_small) free(props);
    if (vals != vals_small) free(vals);
    return rc;
}

/* Rewrites the stored row of every person who has an attribute (used when it is
 * dropped: their JSON no longer carries it). */
static int drop_attribute(ingest *ing, int attr, const char *name)
{
    engine *e = ing->eng;
    person_id limit = engine_person_limit(e);
    segd_cell c;
    int rc = 0;
    person_id *had = NULL;
    size_t n = 0, cap = 0;
    for (person_id id = 0; id < limit; id++)
        if (engine_person_exists(e, id) && engine_attr_get(e, id, attr, &c)) {
            had = xgrow(had, sizeof *had, &cap, n + 1, 64);
            had[n++] = id;
        }
    engine_attr_drop(e, attr);
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t len;
        char *json = ingest_person_store_json(ing, had[i], &len);
        rc = store_person_put(ing->st, had[i], engine_person_public_id(e, had[i]), json, len);
        free(json);
    }
    free(had);
    if (rc == 0) rc = store_attribute_delete(ing->st, name);
    return rc;
}

/* After a trait set created_at: a value pins it; null unpins it, and created_at is
 * again the oldest time known of the person: their oldest event (what a rebuild from
 * the store computes too), then lowered by the message's own time as usual. */
static void unpin_or_pin_created(ingest *ing, person_id id)
{
    segd_cell c;
    if (engine_attr_get(ing->eng, id, ATTR_CREATED_AT, &c)) {
        ingest_set_pinned(ing, id, 1);
        return;
    }
    ingest_set_pinned(ing, id, 0);
    size_t n = engine_person_events(ing->eng, id, NULL, 0);
    if (!n) return;
    engine_event_ref *refs = xmalloc(n * sizeof *refs);
    engine_person_events(ing->eng, id, refs, n);
    int64_t oldest = INT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (refs[i].time_ms < oldest) oldest = refs[i].time_ms;
    free(refs);
    segd_value v = {.type = SEGD_T_DATETIME, .time_ms = oldest};
    engine_attr_set(ing->eng, id, ATTR_CREATED_AT, &v);
    ingest_chg_attr(ing, ATTR_CREATED_AT);
}

static int apply_message(ingest *ing, ingest_op *op, ingest_msg *m, cJSON *item, touched *t)
{
    int rc;
    person_id id = PERSON_NONE;
    switch (m->kind) {
    case INGEST_IDENTIFY:
    case INGEST_UPSERT: {
        if ((rc = resolve_person(ing, m, t, &id))) return rc;
        if (m->kind == INGEST_UPSERT) {
            op->created = t->last_created == id;
            op->public_id = engine_person_public_id(ing->eng, id);
        }
        touch(t, id);
        if ((rc = apply_fields_to_person(ing, id, &m->traits))) return rc;
        if (m->created_at_from_trait) unpin_or_pin_created(ing, id);
        if (m->kind == INGEST_UPSERT) {
            /* a REST edit is not the person being seen: last_seen stays; a person it
             * creates was created now, unless the attributes say when */
            segd_cell c;
            if (!engine_attr_get(ing->eng, id, ATTR_CREATED_AT, &c)) {
                segd_value v = {.type = SEGD_T_DATETIME, .time_ms = m->timestamp};
                engine_attr_set(ing->eng, id, ATTR_CREATED_AT, &v);
                ingest_chg_attr(ing, ATTR_CREATED_AT);
            }
            return 0;
        }
        break;
    }
    case INGEST_PATCH: {
        id = ingest_find_person(ing->eng, m->key_by, m->key);
        touch(t, id);
        if ((rc = apply_fields_to_person(ing, id, &m->traits))) return rc;
        if (m->created_at_from_trait) unpin_or_pin_created(ing, id);
        if (m->n_tags_add || m->n_tags_remove)
            if ((rc = list_edit(ing, id, ATTR_TAGS, m->tags_add, m->n_tags_add, m->tags_remove, m->n_tags_remove)))
                return rc;
        return 0;                       /* a REST edit is not the person being seen */
    }
    case INGEST_TRACK:
    case INGEST_PAGE:
    case INGEST_SCREEN: {
        if ((rc = resolve_person(ing, m, t, &id))) return rc;
        if ((rc = append_event(ing, id, m))) return rc;     /* props printed by ingest_prepare */
        op->applied_events++;
        break;
    }
    case INGEST_GROUP: {
        if ((rc = resolve_person(ing, m, t, &id))) return rc;
        int attr;
        if ((rc = ensure_attr(ing, "groups", SEGD_T_LIST, 0, &attr))) return rc;
        const char *g[1] = {m->group_id};
        if ((rc = list_edit(ing, id, attr, g, 1, NULL, 0))) return rc;
        touch(t, id);
        break;
    }
    case INGEST_ALIAS: {
        size_t plen = strlen(m->previous_id);
        person_id from = engine_person_by_user_id(ing->eng, m->previous_id, plen);
        if (from == PERSON_NONE) from = engine_person_by_anonymous_id(ing->eng, m->previous_id, plen);
        person_id into = engine_person_by_user_id(ing->eng, m->user_id, strlen(m->user_id));
        if (into == PERSON_NONE) {
            into = from != PERSON_NONE ? from : create_person(ing, t);
            if ((rc = set_string_attr(ing, into, ATTR_USER_ID, m->user_id))) return rc;
        } else if (from != PERSON_NONE && from != into) {
            if ((rc = merge_people(ing, from, into))) return rc;
        }
        id = into;
        touch(t, id);
        break;
    }
    case INGEST_ERASE: {
        id = ingest_find_person(ing->eng, m->key_by, m->key);
        size_t n;
        store_event_key *keys = person_events(ing, id, &n);
        rc = store_events_delete(ing->st, keys, n);
        free(keys);
        if (rc) return rc;
        if ((rc = store_person_delete(ing->st, id))) return rc;
        touch(t, id);
        ingest_chg_departed(ing, id, SEG_CAUSE_ERASURE);
        engine_person_erase(ing->eng, id);
        ingest_set_pinned(ing, id, 0);
        return 0;
    }
    case INGEST_DECLARE: {
        int attr;
        return ensure_attr(ing, m->attr_name, m->attr_type, 1, &attr);
    }
    case INGEST_DROP:
        return drop_attribute(ing, engine_attr_find(ing->eng, m->attr_name), m->attr_name);
    case INGEST_DECLARE_EVENT: {
        int type, prop;
        op->created = engine_event_type_find(ing->eng, m->event) < 0;
        if ((rc = ensure_event_type(ing, m->event, &type))) return rc;
        for (size_t i = 0; i < m->props.n && rc == 0; i++)
            rc = ensure_prop(ing, type, m->props.v[i].name, m->props.v[i].natural, &prop);
        return rc;
    }
    }
    if (id != PERSON_NONE) {
        ingest_chg_person(ing, id);
        ingest_see_time(ing, ing->eng, id, m->timestamp);
        ingest_chg_attr(ing, ATTR_LAST_SEEN);
        ingest_chg_attr(ing, ATTR_CREATED_AT);
    }
    return 0;
}

int ingest_apply_op(ingest *ing, ingest_op *op)
{
    if (op->n_msgs == 1 && op->msgs[0].kind >= INGEST_SEG_CREATE && op->msgs[0].kind <= INGEST_TICK)
        return ingest_segment_op(ing, op, &op->msgs[0]);
    pending p = {0};
    int failed = 0;
    int checked = op->checked_version && op->checked_version == ing->catalog_version && !op->validate_only;
    if (!checked)          /* the catalog changed since (or never checked): check here, look names up again */
        for (size_t i = 0; i < op->n_msgs; i++) op->msgs[i].checked = 0;
    for (size_t i = 0; i < op->n_msgs && !checked; i++) {
        segd_error e;
        segd_error_clear(&e);
        size_t n_pending = p.n;
        int new_attrs = p.new_attrs, new_types = p.new_types;
        if (check_message(ing, &p, &op->msgs[i], &e) != 0) {
            /* forget what the bad message declared: later ones are judged without it */
            p.n = n_pending;
            p.new_attrs = new_attrs;
            p.new_types = new_types;
            if (op->is_batch && e.status == 422) e.status = 400;
            note_error(op, &op->msgs[i], &e);
            failed = 1;
            if (!op->is_batch) break;
        }
    }
    free(p.v);
    if (op->validate_only) return failed ? segd_status_rc(op->err.status) : 0;
    if (failed) {
        if (op->is_batch) {
            op->err.status = 400;
            snprintf(op->err.code, sizeof op->err.code, "invalid_batch");
            snprintf(op->err.message, sizeof op->err.message,
                     "%d message(s) of the batch are invalid (see \"errors\"); fix them and send the batch again: nothing of it was applied",
                     cJSON_GetArraySize(op->bad));
        }
        return segd_status_rc(op->err.status);
    }

    touched t = {.ing = ing, .last_created = PERSON_NONE};
    int rc = 0;
    ingest_chg_reset(ing);
    int64_t now = timefmt_now_ms(), since = now - ing->cfg.dedup_window_ms;
    for (size_t i = 0; i < op->n_msgs && rc == 0; i++) {
        ingest_msg *m = &op->msgs[i];
        if (m->message_id) {
            if (m->has_dedup ? dedup_insert_key(ing->dedup, &m->dedup, now, since)
                             : dedup_insert(ing->dedup, op->source, m->message_id, now, since)) {
                op->deduplicated++;
                continue;
            }
            op->added_ids = xgrow(op->added_ids, sizeof *op->added_ids, &op->added_cap, op->n_added + 1, 16);
            op->added_ids[op->n_added++] = m->message_id;
        }
        rc = apply_message(ing, op, m, m->item, &t);
        if (rc == 0) op->applied++;
    }
    if (rc == 0) rc = store_messages_put(ing->st, op->source, op->added_ids, op->n_added, now);
    if (rc == 0 && t.n) {
        qsort(t.v, t.n, sizeof *t.v, cmp_person);
        for (size_t i = 0; i < t.n && rc == 0; i++) {
            if (i && t.v[i] == t.v[i - 1]) continue;
            if (!engine_person_exists(ing->eng, t.v[i])) continue;   /* merged away */
            size_t len;
            char *json = ingest_person_store_json(ing, t.v[i], &len);
            rc = store_person_put(ing->st, t.v[i], engine_person_public_id(ing->eng, t.v[i]), json, len);
            free(json);
        }
    }
    free(t.v);
    if (rc == 0) rc = ingest_segments_after_op(ing, ingest_now_ms(ing));
    if (rc == SEGD_ECONFLICT) rc = SEGD_EIO;     /* validated above: the engine disagrees with itself */
    return rc;
}
