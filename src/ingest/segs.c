/* segs.c - ingest's side of segments: the writer keeps every segment exact as it
 * applies writes, and stores what changed in the same transaction.
 *
 * The writer owns the segment set (segments.h) next to the engine. For each op it
 * notes what changed (attributes, event types, or everything after a merge) and who
 * (the touched people, and those who left: erased or merged away); after the op is
 * applied it asks the set to re-check those people, and writes each membership change
 * to the store: a member row (entered_at, cause) and, unless silent, a transition row
 * (the membership log, which is also the outbox). Segment definitions are written by
 * ops of their own (create, update, delete, recalculate), and a tick op runs the clock
 * (re-checks that came due), hourly history points and the cached-results refreshes.
 *
 * At start, and after the engine was rebuilt from the store, the set is restored from
 * the store with its stored members and recomputed: only real differences (a window
 * that expired while segd was down) become transitions, cause clock.
 */
#include "internal.h"
#include "../base/alloc.h"
#include "../base/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS (3600 * 1000LL)
#define DAY_MS (24 * HOUR_MS)
#define SEGMENT_LOG_KEEP_MS (90 * DAY_MS)
#define DESCRIPTION_MAX 4000       /* bytes */
#define AGENT_LIST_MAX 1000

int64_t ingest_now_ms(ingest *ing)
{
    int64_t t = __atomic_load_n(&ing->test_now_ms, __ATOMIC_ACQUIRE);
    return t ? t : timefmt_now_ms();
}

/* ---- what an op changed ---- */

void ingest_chg_reset(ingest *ing)
{
    ing->chg.n_attrs = ing->chg.n_types = 0;
    ing->chg.all = 0;
    ing->chg.n_departed = 0;
    ing->chg.n_people = 0;
    ing->chg.n_created = 0;
}

void ingest_chg_person(ingest *ing, person_id p)
{
    ingest_change *c = &ing->chg;
    if (c->n_people && c->people[c->n_people - 1] == p) return;
    c->people = xgrow(c->people, sizeof *c->people, &c->people_cap, c->n_people + 1, 16);
    c->people[c->n_people++] = p;
}

static int cmp_person_id(const void *a, const void *b)
{
    person_id x = *(const person_id *)a, y = *(const person_id *)b;
    return x < y ? -1 : x > y;
}

void ingest_chg_created(ingest *ing, person_id p)
{
    ingest_change *c = &ing->chg;
    c->created = xgrow(c->created, sizeof *c->created, &c->created_cap, c->n_created + 1, 16);
    c->created[c->n_created++] = p;
    ingest_chg_person(ing, p);
}

static void add_int(int **v, size_t *n, size_t *cap, int x)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i] == x) return;
    *v = xgrow(*v, sizeof **v, cap, *n + 1, 16);
    (*v)[(*n)++] = x;
}

void ingest_chg_attr(ingest *ing, int attr)
{
    add_int(&ing->chg.attrs, &ing->chg.n_attrs, &ing->chg.attrs_cap, attr);
}

void ingest_chg_type(ingest *ing, int type)
{
    add_int(&ing->chg.types, &ing->chg.n_types, &ing->chg.types_cap, type);
}

void ingest_chg_departed(ingest *ing, person_id p, int cause)
{
    ing->chg.departed = xgrow(ing->chg.departed, sizeof *ing->chg.departed, &ing->chg.departed_cap,
                              ing->chg.n_departed + 1, 8);
    ing->chg.departed[ing->chg.n_departed++] =
        (ingest_departed){ p, engine_person_public_id(ing->eng, p), cause };
    ingest_chg_person(ing, p);
    if (cause == SEG_CAUSE_MERGE) ing->chg.all = 1;   /* the person merged into changed in every way */
}

/* ---- writing transitions ---- */

static uint64_t public_id_of(ingest *ing, person_id p)
{
    for (size_t i = 0; i < ing->chg.n_departed; i++)
        if (ing->chg.departed[i].person == p) return ing->chg.departed[i].public_id;
    return engine_person_exists(ing->eng, p) ? engine_person_public_id(ing->eng, p) : 0;
}

/* Writes transition rows (unless silent) and member rows for t. A member row keeps
 * entered_at and cause for a member who entered after the segment was created; those
 * who joined at its creation (cause definition, created 1) have none: they entered at
 * created_at. */
static int write_transitions(ingest *ing, const seg_transitions *t, int created)
{
    int rc = 0;
    for (size_t i = 0; i < t->n && rc == 0; i++) {
        const seg_transition *x = &t->v[i];
        ingest_seg_slot *g = &ing->seg_slot[x->segment];
        g->changed = 1;
        g->silent |= x->silent;
        if (!x->silent) {
            int64_t seq = 0;
            rc = store_transition_add(ing->st, g->num, x->person, public_id_of(ing, x->person), (int)x->dir, x->at,
                                      (int)x->cause, NULL, &seq);
            if (seq > ing->last_seq) ing->last_seq = seq;
        }
        if (rc == 0 && x->dir == SEG_EXITED) rc = store_member_exit(ing->st, g->num, x->person);
        else if (rc == 0 && !(created && x->cause == SEG_CAUSE_DEFINITION))
            rc = store_member_enter(ing->st, g->num, x->person, x->at, (int)x->cause);
    }
    if (rc == 0) {
        pthread_mutex_lock(&ing->stats_lock);
        for (size_t i = 0; i < t->n; i++) ing->stats.segment_transitions += !t->v[i].silent;
        pthread_mutex_unlock(&ing->stats_lock);
    }
    return rc;
}

/* Writes the slot's member checkpoint: its members now, including every transition up
 * to the last seq written. */
static int store_checkpoint(ingest *ing, int slot)
{
    size_t len = 0;
    void *bytes = segments_members_serialize(ing->segs, slot, &len);
    int rc = store_segment_members_put(ing->st, ing->seg_slot[slot].num, bytes, len, ing->last_seq);
    free(bytes);
    if (rc == 0) ing->seg_slot[slot].changed = ing->seg_slot[slot].silent = 0;
    return rc;
}

/* Writes the checkpoint of every segment a definition changed silently (the edited one,
 * and the segments that name it): their log does not hold those changes. */
static int checkpoint_silent(ingest *ing)
{
    int rc = 0;
    for (int slot = 0; slot < segments_slots(ing->segs) && rc == 0; slot++) {
        segment_view v;
        if ((size_t)slot < ing->seg_slot_cap && ing->seg_slot[slot].silent && segments_view(ing->segs, slot, &v))
            rc = store_checkpoint(ing, slot);
    }
    return rc;
}

static int store_snapshot(ingest *ing, int slot)
{
    size_t len = 0;
    void *bytes = segments_snapshot_serialize(ing->segs, slot, &len);
    segment_view v;
    segments_view(ing->segs, slot, &v);
    int rc = store_segment_cached_put(ing->st, ing->seg_slot[slot].num, v.cached_at, bytes, bytes ? len : 0);
    free(bytes);
    return rc;
}

int ingest_segments_after_op(ingest *ing, int64_t now)
{
    if (segments_slots(ing->segs) == 0 || ing->chg.n_people == 0) return 0;
    person_id *touched = ing->chg.people;
    size_t n = ing->chg.n_people;
    qsort(touched, n, sizeof *touched, cmp_person_id);
    qsort(ing->chg.created, ing->chg.n_created, sizeof *ing->chg.created, cmp_person_id);
    seg_change what = { .attrs = ing->chg.attrs, .n_attrs = ing->chg.n_attrs, .types = ing->chg.types,
                        .n_types = ing->chg.n_types, .all = ing->chg.all };
    /* a new person may match a segment that reads nothing they were sent ("and()", "not
     * did(purchase)", "count(x) <= 3", "not in segment S"): they are checked against all */
    seg_change new_person = what;
    new_person.created = 1;
    seg_transitions out = { 0 };
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && touched[i] == touched[i - 1]) continue;
        person_id p = touched[i];
        int cause = SEG_CAUSE_WRITE;
        for (size_t k = 0; k < ing->chg.n_departed; k++)
            if (ing->chg.departed[k].person == p) cause = ing->chg.departed[k].cause;
        if (cause == SEG_CAUSE_ERASURE) {
            /* the person leaves the logs and the snapshots; their exits are the last word */
            if ((rc = store_person_log_erase(ing->st, p))) break;
            int *slots = xmalloc(((size_t)segments_slots(ing->segs) + 1) * sizeof *slots);
            int k = segments_forget_person(ing->segs, p, slots);
            for (int j = 0; j < k && rc == 0; j++) rc = store_snapshot(ing, slots[j]);
            free(slots);
            if (rc) break;
        }
        int created = bsearch(&p, ing->chg.created, ing->chg.n_created, sizeof *ing->chg.created, cmp_person_id) != NULL;
        segments_person_changed(ing->segs, ing->eng, p, created ? &new_person : &what, now, (seg_cause)cause, &out);
    }
    if (rc == 0) rc = write_transitions(ing, &out, 0);
    seg_transitions_release(&out);
    return rc;
}

/* ---- definitions as JSON (the API's body and the store's row) ---- */

/* The cached-results interval: a filter duration ("30m", "4h", "1d") from 1m to 366d. */
static int parse_refresh(const char *s, int64_t *ms)
{
    return filter_duration_parse(s, strlen(s), ms) == 0 && *ms >= 60 * 1000 && *ms <= 366 * DAY_MS ? 0 : -1;
}

void ingest_segment_input_release(ingest_segment_input *p)
{
    filter_free(p->filter);
    free(p->hidden_from);
    free(p->default_for);
    memset(p, 0, sizeof *p);
}

static int string_list(const cJSON *v, const char *field, const char ***out, size_t *n, segd_error *err)
{
    if (!cJSON_IsArray(v)) {
        snprintf(err->field, sizeof err->field, "%s", field);
        return segd_error_set(err, 422, "invalid_value", "\"%s\" must be an array of agent ids (strings)", field);
    }
    int count = cJSON_GetArraySize(v);
    if (count > AGENT_LIST_MAX) {
        snprintf(err->field, sizeof err->field, "%s", field);
        return segd_error_set(err, 422, "invalid_value", "\"%s\" may name at most %d agents", field, AGENT_LIST_MAX);
    }
    const char **items = xmalloc(((size_t)count + 1) * sizeof *items);
    size_t k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsString(it) || !it->valuestring[0] || strlen(it->valuestring) > 200) {
            free(items);
            snprintf(err->field, sizeof err->field, "%s[%zu]", field, k);
            return segd_error_set(err, 422, "invalid_value", "\"%s\" must hold agent ids: non-empty strings of at most 200 bytes",
                                  field);
        }
        items[k++] = it->valuestring;
    }
    *out = items;
    *n = k;
    return 0;
}

int ingest_segment_input_parse(const cJSON *body, ingest_segment_input *p, int partial, segd_error *err)
{
    memset(p, 0, sizeof *p);
    if (!cJSON_IsObject(body))
        return segd_error_set(err, 400, "invalid_json", "the body must be a JSON object describing the segment");
    static const char *const known[] = { "name", "description", "filter", "hidden_from", "default_for", "refresh",
                                         "backfill", "id", "created_by", "created_at", "updated_at", "size", "cached" };
    const cJSON *it;
    cJSON_ArrayForEach(it, body) {
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !ok; i++) ok = strcmp(it->string, known[i]) == 0;
        if (!ok) {
            snprintf(err->field, sizeof err->field, "%.60s", it->string);
            return segd_error_set(err, 422, "unknown_field",
                                  "\"%.60s\" is not a segment field; send name, description, filter, hidden_from, default_for, refresh or backfill",
                                  it->string);
        }
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "name");
    if (v) {
        if (!cJSON_IsString(v)) {
            snprintf(err->field, sizeof err->field, "name");
            return segd_error_set(err, 422, "invalid_name", "\"name\" must be a string of 1 to %d characters", SEGMENT_NAME_MAX);
        }
        p->name = v->valuestring;
        p->has_name = 1;
    } else if (!partial) {
        snprintf(err->field, sizeof err->field, "name");
        return segd_error_set(err, 422, "missing_field", "a segment needs a \"name\" (1 to %d characters)", SEGMENT_NAME_MAX);
    }
    v = cJSON_GetObjectItemCaseSensitive(body, "description");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v) || strlen(v->valuestring) > DESCRIPTION_MAX) {
            snprintf(err->field, sizeof err->field, "description");
            return segd_error_set(err, 422, "invalid_value", "\"description\" must be a string of at most %d bytes", DESCRIPTION_MAX);
        }
        p->description = v->valuestring;
        p->has_description = 1;
    } else if (v) {
        p->description = "";
        p->has_description = 1;
    }
    v = cJSON_GetObjectItemCaseSensitive(body, "filter");
    if (v) {
        p->filter = filter_parse_value(v, NULL, err);
        if (!p->filter) {
            if (!err->field[0]) snprintf(err->field, sizeof err->field, "filter");
            return segd_status_rc(err->status ? err->status : 422);
        }
    } else if (!partial) {
        snprintf(err->field, sizeof err->field, "filter");
        return segd_error_set(err, 422, "missing_field", "a segment needs a \"filter\": who its members are");
    }
    int rc;
    v = cJSON_GetObjectItemCaseSensitive(body, "hidden_from");
    if (v && !cJSON_IsNull(v)) {
        if ((rc = string_list(v, "hidden_from", &p->hidden_from, &p->n_hidden_from, err))) goto fail;
        p->has_hidden_from = 1;
    } else if (v) p->has_hidden_from = 1;
    v = cJSON_GetObjectItemCaseSensitive(body, "default_for");
    if (v && !cJSON_IsNull(v)) {
        if ((rc = string_list(v, "default_for", &p->default_for, &p->n_default_for, err))) goto fail;
        p->has_default_for = 1;
    } else if (v) p->has_default_for = 1;
    v = cJSON_GetObjectItemCaseSensitive(body, "refresh");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v) || parse_refresh(v->valuestring, &p->refresh_ms) != 0) {
            snprintf(err->field, sizeof err->field, "refresh");
            rc = segd_error_set(err, 422, "invalid_value",
                                "\"refresh\" is how often the cached results are refreshed: a duration from 1m to 366d such as \"30m\", \"4h\" or \"1d\"");
            goto fail;
        }
        p->has_refresh = 1;
    } else if (v) p->has_refresh = 1;     /* null: back to the default */
    v = cJSON_GetObjectItemCaseSensitive(body, "backfill");
    if (v) {
        if (!cJSON_IsBool(v)) {
            snprintf(err->field, sizeof err->field, "backfill");
            rc = segd_error_set(err, 422, "invalid_value", "\"backfill\" must be true or false");
            goto fail;
        }
        p->backfill = cJSON_IsTrue(v);
    }
    return 0;
fail:
    ingest_segment_input_release(p);
    return rc;
}

/* The definition as the store keeps it. */
static char *definition_json(const segment_view *v, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", v->name);
    cJSON_AddStringToObject(o, "description", v->description);
    cJSON_AddItemToObject(o, "filter", filter_to_json(v->filter));
    cJSON *h = cJSON_AddArrayToObject(o, "hidden_from");
    for (size_t i = 0; i < v->n_hidden_from; i++) cJSON_AddItemToArray(h, cJSON_CreateString(v->hidden_from[i]));
    cJSON *d = cJSON_AddArrayToObject(o, "default_for");
    for (size_t i = 0; i < v->n_default_for; i++) cJSON_AddItemToArray(d, cJSON_CreateString(v->default_for[i]));
    char interval[FILTER_DURATION_LEN];
    cJSON_AddStringToObject(o, "refresh", filter_duration_format(v->refresh_ms, interval));
    cJSON_AddStringToObject(o, "created_by", v->created_by);
    cJSON_AddNumberToObject(o, "created_at", (double)v->created_at);
    cJSON_AddNumberToObject(o, "updated_at", (double)v->updated_at);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    *len = strlen(s);
    return s;
}

static void set_num(ingest *ing, int slot, int64_t num)
{
    size_t old = ing->seg_slot_cap;
    ing->seg_slot = xgrow(ing->seg_slot, sizeof *ing->seg_slot, &ing->seg_slot_cap, (size_t)slot + 1, 16);
    memset(ing->seg_slot + old, 0, (ing->seg_slot_cap - old) * sizeof *ing->seg_slot);
    ing->seg_slot[slot] = (ingest_seg_slot){ num, 0, 0 };
}

static int put_definition(ingest *ing, int slot)
{
    segment_view v;
    segments_view(ing->segs, slot, &v);
    size_t len;
    char *json = definition_json(&v, &len);
    int64_t num = 0;
    int rc = store_segment_put(ing->st, v.id, json, len, &num);
    free(json);
    if (rc == 0) set_num(ing, slot, num);
    return rc;
}

/* ---- the segment ops (writer thread, under the write lock, inside a savepoint) ---- */

static int op_error(ingest_op *op, const segd_error *err, int rc)
{
    op->err = *err;
    if (!op->err.status) op->err.status = 422;
    return rc < 0 ? rc : SEGD_EINVAL;
}

/* A segment_input: the parsed body over the current definition (PATCH) or alone. */
static void merge_input(const ingest_segment_input *p, const segment_view *cur, segment_input *in)
{
    memset(in, 0, sizeof *in);
    in->name = p->has_name ? p->name : cur ? cur->name : NULL;
    in->description = p->has_description ? p->description : cur ? cur->description : "";
    in->filter = p->filter ? p->filter : cur ? cur->filter : NULL;
    if (p->has_hidden_from || !cur) {
        in->hidden_from = p->hidden_from;
        in->n_hidden_from = p->n_hidden_from;
    } else {
        in->hidden_from = cur->hidden_from;
        in->n_hidden_from = cur->n_hidden_from;
    }
    if (p->has_default_for || !cur) {
        in->default_for = p->default_for;
        in->n_default_for = p->n_default_for;
    } else {
        in->default_for = cur->default_for;
        in->n_default_for = cur->n_default_for;
    }
    in->refresh_ms = p->has_refresh ? p->refresh_ms : cur ? cur->refresh_ms : 0;
    in->created_by = cur ? cur->created_by : NULL;
}

/* Copies of an input's strings and lists (the filter excepted), pointed to by it. */
typedef struct owned_input {
    char *name, *description;
    char **hidden_from, **default_for;
    size_t n_hidden_from, n_default_for;
} owned_input;

static char **copy_strings(const char *const *v, size_t n)
{
    char **out = xmalloc((n ? n : 1) * sizeof *out);
    for (size_t i = 0; i < n; i++) out[i] = xstrdup(v[i]);
    return out;
}

static void own_input(segment_input *in, owned_input *o)
{
    o->name = in->name ? xstrdup(in->name) : NULL;
    o->description = xstrdup(in->description ? in->description : "");
    o->hidden_from = copy_strings(in->hidden_from, in->n_hidden_from);
    o->n_hidden_from = in->n_hidden_from;
    o->default_for = copy_strings(in->default_for, in->n_default_for);
    o->n_default_for = in->n_default_for;
    in->name = o->name;
    in->description = o->description;
    in->hidden_from = (const char *const *)o->hidden_from;
    in->default_for = (const char *const *)o->default_for;
}

static void owned_release(owned_input *o)
{
    free(o->name);
    free(o->description);
    for (size_t i = 0; i < o->n_hidden_from; i++) free(o->hidden_from[i]);
    for (size_t i = 0; i < o->n_default_for; i++) free(o->default_for[i]);
    free(o->hidden_from);
    free(o->default_for);
}

static int history_point(ingest *ing, int slot, int64_t now, int kind)
{
    segment_view v;
    segments_view(ing->segs, slot, &v);
    return store_history_add(ing->st, ing->seg_slot[slot].num, now, v.size, kind);
}

int ingest_segment_op(ingest *ing, ingest_op *op, ingest_msg *m)
{
    int64_t now = ingest_now_ms(ing);
    segd_error err;
    segd_error_clear(&err);
    seg_transitions out = { 0 };
    int rc = 0;
    switch (m->kind) {
    case INGEST_SEG_CREATE: {
        segment_input in;
        merge_input(m->seg_input, NULL, &in);
        in.created_by = m->seg_created_by;
        int slot = segments_create(ing->segs, ing->eng, &in, now, m->seg_input->backfill, op->seg_id, &out, &err);
        if (slot < 0) return op_error(op, &err, slot);
        segments_snapshot(ing->segs, slot, now);      /* the cached results start as the current ones */
        rc = put_definition(ing, slot);
        if (rc == 0) rc = write_transitions(ing, &out, 1);
        if (rc == 0) rc = store_checkpoint(ing, slot);
        if (rc == 0) rc = checkpoint_silent(ing);
        if (rc == 0) rc = store_snapshot(ing, slot);
        if (rc == 0) rc = history_point(ing, slot, now, 2);
        break;
    }
    case INGEST_SEG_UPDATE: {
        int slot = segments_find(ing->segs, m->seg_id);
        if (slot < 0) {
            segd_error_set(&err, 404, "segment_not_found", "no segment has the id \"%.60s\"", m->seg_id);
            return op_error(op, &err, SEGD_ENOTFOUND);
        }
        segment_view cur;
        segments_view(ing->segs, slot, &cur);
        segment_input in;
        merge_input(m->seg_input, &cur, &in);
        /* what comes from the current definition is freed by the update: copy it */
        owned_input own;
        own_input(&in, &own);
        filter_node *again = NULL;
        if (!m->seg_input->filter) {
            char *text = filter_print_json(cur.filter);
            again = filter_parse_json_text(text, strlen(text), NULL, &err);
            free(text);
            if (!again) return op_error(op, &err, SEGD_EIO);
            in.filter = again;
        }
        char *created_by = xstrdup(cur.created_by);
        in.created_by = created_by;
        rc = segments_update(ing->segs, ing->eng, m->seg_id, &in, now, m->seg_input->backfill, &out, &err);
        filter_free(again);
        free(created_by);
        owned_release(&own);
        if (rc < 0) return op_error(op, &err, rc);
        snprintf(op->seg_id, sizeof op->seg_id, "%s", m->seg_id);
        rc = put_definition(ing, slot);
        if (rc == 0) rc = write_transitions(ing, &out, 0);
        if (rc == 0) rc = store_checkpoint(ing, slot);
        if (rc == 0) rc = checkpoint_silent(ing);
        break;
    }
    case INGEST_SEG_DELETE: {
        int slot = segments_find(ing->segs, m->seg_id);
        int64_t num = slot >= 0 ? ing->seg_slot[slot].num : 0;
        rc = segments_delete(ing->segs, m->seg_id, &err);
        if (rc < 0) return op_error(op, &err, rc);
        rc = store_segment_delete(ing->st, num);
        break;
    }
    case INGEST_SEG_RECALC: {
        int slot = segments_find(ing->segs, m->seg_id);
        if (slot < 0) {
            segd_error_set(&err, 404, "segment_not_found", "no segment has the id \"%.60s\"", m->seg_id);
            return op_error(op, &err, SEGD_ENOTFOUND);
        }
        segments_snapshot(ing->segs, slot, now);
        rc = store_snapshot(ing, slot);
        if (rc == 0) rc = history_point(ing, slot, now, 2);
        break;
    }
    case INGEST_TICK: {
        /* the clock: every re-check due by now, each at its own moment */
        segments_run_due(ing->segs, ing->eng, now, &out);
        rc = write_transitions(ing, &out, 0);
        /* hourly size points, and the cached results whose interval has passed (a
         * clock set back, as tests do, starts the hours again from there) */
        if (ing->next_history_ms - now > HOUR_MS) ing->next_history_ms = now - now % HOUR_MS + HOUR_MS;
        int hourly = now >= ing->next_history_ms;
        if (hourly) ing->next_history_ms = now - now % HOUR_MS + HOUR_MS;
        for (int slot = 0; slot < segments_slots(ing->segs) && rc == 0; slot++) {
            segment_view v;
            if (!segments_view(ing->segs, slot, &v)) continue;
            if (hourly) rc = history_point(ing, slot, now, 1);
            if (rc == 0 && hourly && ing->seg_slot[slot].changed) rc = store_checkpoint(ing, slot);
            if (rc == 0 && v.cached_at + v.refresh_ms <= now) {
                segments_snapshot(ing->segs, slot, now);
                rc = store_snapshot(ing, slot);
                if (rc == 0 && !hourly) rc = history_point(ing, slot, now, 2);
            }
        }
        if (rc == 0 && hourly) rc = store_prune_segment_log(ing->st, now - SEGMENT_LOG_KEEP_MS);
        break;
    }
    }
    seg_transitions_release(&out);
    return rc;
}

int64_t ingest_segments_next_due(ingest *ing)
{
    int64_t next = segments_next_due(ing->segs), refresh = segments_next_refresh(ing->segs);
    if (ing->next_history_ms < next) next = ing->next_history_ms;
    return refresh < next ? refresh : next;
}

/* ---- loading ---- */

typedef struct stored_segment {
    int64_t num;
    char id[SEGMENT_ID_LEN + 1];
    cJSON *def;
    int64_t cached_at;
    void *cached;
    size_t cached_len;
    int64_t checkpoint_seq;        /* -1: none (the member rows are the members) */
    uint32_t *members;
    size_t n_members, members_cap;
    int done;
} stored_segment;

typedef struct load_ctx {
    stored_segment *v;
    size_t n, cap;
    size_t last;                   /* the segment the previous row belonged to */
    int damaged;
} load_ctx;

static stored_segment *find_stored(load_ctx *c, int64_t num)
{
    if (c->last >= c->n || c->v[c->last].num != num)
        for (c->last = 0; c->last < c->n && c->v[c->last].num != num; c->last++) {}
    return c->last < c->n ? &c->v[c->last] : NULL;
}

static int load_segment(void *ctx, int64_t num, const char *id, const char *json, size_t len, int64_t cached_at,
                        const void *cached, size_t cached_len)
{
    load_ctx *c = ctx;
    c->v = xgrow(c->v, sizeof *c->v, &c->cap, c->n + 1, 16);
    stored_segment *g = &c->v[c->n++];
    memset(g, 0, sizeof *g);
    g->num = num;
    snprintf(g->id, sizeof g->id, "%s", id);
    g->def = cJSON_ParseWithLength(json, len);
    g->cached_at = cached_at;
    g->checkpoint_seq = -1;
    if (cached && cached_len) {
        g->cached = xmalloc(cached_len);
        memcpy(g->cached, cached, cached_len);
        g->cached_len = cached_len;
    }
    return 0;
}

static int load_checkpoint(void *ctx, int64_t num, const void *data, size_t len, int64_t seq)
{
    load_ctx *c = ctx;
    stored_segment *g = find_stored(c, num);
    if (!g || seq < 0) return 0;
    g->checkpoint_seq = seq;
    g->members = data && len ? segments_members_parse(data, len, &g->n_members) : xmalloc(sizeof *g->members);
    if (!g->members) {
        fprintf(stderr, "segd: the member checkpoint of segment %s is damaged\n", g->id);
        c->damaged = 1;
        return 1;
    }
    g->members_cap = g->n_members;
    return 0;
}

/* A schema-4 segment (no checkpoint): its member rows are its members. */
static int load_member(void *ctx, int64_t num, uint32_t person, int64_t entered_at, int cause)
{
    (void)entered_at, (void)cause;
    load_ctx *c = ctx;
    stored_segment *g = find_stored(c, num);
    if (!g || g->checkpoint_seq >= 0) return 0;
    g->members = xgrow(g->members, sizeof *g->members, &g->members_cap, g->n_members + 1, 1024);
    g->members[g->n_members++] = person;
    return 0;
}

/* Replays a segment's transitions after its checkpoint onto a bitset of members. */
typedef struct replay_ctx {
    uint64_t *bits;
    uint32_t limit;
} replay_ctx;

static int replay_transition(void *ctx, const store_transition *t)
{
    replay_ctx *r = ctx;
    if (t->person >= r->limit) return 0;   /* someone the engine does not have: erased */
    if (t->dir == SEG_ENTERED) r->bits[t->person / 64] |= 1ULL << (t->person % 64);
    else r->bits[t->person / 64] &= ~(1ULL << (t->person % 64));
    return 0;
}

/* The members of g at the last commit: its checkpoint plus the transitions after it. */
static int replay(ingest *ing, stored_segment *g)
{
    if (g->checkpoint_seq < 0) return 0;
    uint32_t limit = engine_person_limit(ing->eng);
    size_t words = (size_t)limit / 64 + 1;
    replay_ctx r = { xcalloc(words, sizeof *r.bits), limit };
    for (size_t i = 0; i < g->n_members; i++)
        if (g->members[i] < limit) r.bits[g->members[i] / 64] |= 1ULL << (g->members[i] % 64);
    int rc = store_load_transitions_after(ing->st, g->num, g->checkpoint_seq, replay_transition, &r);
    if (rc == 0) {
        g->n_members = 0;
        for (size_t w = 0; w < words; w++)
            for (uint64_t b = r.bits[w]; b; b &= b - 1) {
                g->members = xgrow(g->members, sizeof *g->members, &g->members_cap, g->n_members + 1, 1024);
                g->members[g->n_members++] = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(b));
            }
    }
    free(r.bits);
    return rc;
}

static int64_t json_int(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

int ingest_segments_load(ingest *ing, segd_error *err)
{
    int64_t now = ingest_now_ms(ing);
    segments_free(ing->segs);
    ing->segs = segments_new();
    free(ing->seg_slot);
    ing->seg_slot = NULL;
    ing->seg_slot_cap = 0;
    ing->next_history_ms = now - now % HOUR_MS + HOUR_MS;
    load_ctx c = { 0 };
    int rc = store_last_transition_seq(ing->st, &ing->last_seq);
    if (rc == 0) rc = store_load_segments(ing->st, load_segment, &c);
    if (rc == 0) rc = store_load_checkpoints(ing->st, load_checkpoint, &c);
    if (rc == 0) rc = store_load_members(ing->st, load_member, &c);
    for (size_t i = 0; i < c.n && rc == 0; i++) rc = replay(ing, &c.v[i]);
    if (rc != 0 || c.damaged) {
        segd_error_set(err, 500, "store_unreadable", "the store's segments could not be read; see the log");
        rc = rc ? rc : SEGD_EIO;
        goto done;
    }
    /* restore in passes: a segment that names another comes after it */
    size_t left = c.n;
    for (int progress = 1; left && progress;) {
        progress = 0;
        for (size_t i = 0; i < c.n; i++) {
            stored_segment *g = &c.v[i];
            if (g->done) continue;
            segd_error e;
            segd_error_clear(&e);
            ingest_segment_input p;
            if (!g->def || ingest_segment_input_parse(g->def, &p, 0, &e) != 0) {
                fprintf(stderr, "segd: segment %s cannot be read back (%s); it is left out until fixed\n", g->id,
                        g->def ? e.message : "not JSON");
                g->done = 1;
                left--;
                continue;
            }
            segment_input in;
            merge_input(&p, NULL, &in);
            const cJSON *by = cJSON_GetObjectItemCaseSensitive(g->def, "created_by");
            in.created_by = cJSON_IsString(by) ? by->valuestring : "";
            int slot = segments_restore(ing->segs, ing->eng, g->id, &in, json_int(g->def, "created_at"),
                                        json_int(g->def, "updated_at"), g->members, g->n_members, g->cached_at,
                                        g->cached, g->cached_len, &e);
            ingest_segment_input_release(&p);
            if (slot < 0 && strcmp(e.code, "unknown_segment") == 0) continue;   /* its reference comes later */
            g->done = 1;
            left--;
            progress = 1;
            if (slot < 0) {
                fprintf(stderr, "segd: segment %s no longer binds (%s); it is left out until fixed\n", g->id, e.message);
                continue;
            }
            set_num(ing, slot, g->num);
            ing->seg_slot[slot].changed = g->checkpoint_seq < 0;   /* a schema-4 segment gets its checkpoint */
        }
    }
    if (left) fprintf(stderr, "segd: %zu segment(s) name segments that cannot be restored; they are left out\n", left);
    /* what changed while segd was down (time alone: every write stored its transitions) */
    seg_transitions out = { 0 };
    segments_recompute_all(ing->segs, ing->eng, now, SEG_CAUSE_CLOCK, &out);
    int dirty = out.n > 0;
    for (int slot = 0; slot < segments_slots(ing->segs) && !dirty; slot++)
        dirty = (size_t)slot < ing->seg_slot_cap && ing->seg_slot[slot].changed;
    if (dirty) {
        rc = store_begin(ing->st);
        if (rc == 0) rc = write_transitions(ing, &out, 0);
        for (int slot = 0; slot < segments_slots(ing->segs) && rc == 0; slot++) {
            segment_view v;
            if (segments_view(ing->segs, slot, &v) && ing->seg_slot[slot].changed) rc = store_checkpoint(ing, slot);
        }
        if (rc == 0) rc = store_commit(ing->st);
        if (rc != 0) {
            store_rollback(ing->st);
            segd_error_set(err, 503, "store_failed", "the segment changes found at start could not be stored; see the log");
        }
    }
    seg_transitions_release(&out);
done:
    for (size_t i = 0; i < c.n; i++) {
        cJSON_Delete(c.v[i].def);
        free(c.v[i].cached);
        free(c.v[i].members);
    }
    free(c.v);
    return rc == 0 ? 0 : (rc < 0 ? rc : SEGD_EIO);
}

/* ---- the public calls (any thread): an op of one message, waited for ---- */

static int run_segment_op(ingest *ing, int kind, const char *id, ingest_segment_input *input, const char *created_by,
                          char *id_out, segd_error *err)
{
    ingest_msg m;
    memset(&m, 0, sizeof m);
    m.kind = kind;
    m.seg_id = id;
    m.seg_input = input;
    m.seg_created_by = created_by;
    ingest_op op;
    ingest_op_init(&op, "default", &m, 1, 0);
    int rc = ingest_submit_op(ing, &op, err);
    if (rc == 0 && id_out) snprintf(id_out, SEGMENT_ID_LEN + 1, "%s", op.seg_id);
    return rc;
}

int ingest_segment_create(ingest *ing, const cJSON *body, const char *created_by, char *id_out, segd_error *err)
{
    ingest_segment_input p;
    int rc = ingest_segment_input_parse(body, &p, 0, err);
    if (rc) return rc;
    rc = run_segment_op(ing, INGEST_SEG_CREATE, NULL, &p, created_by, id_out, err);
    ingest_segment_input_release(&p);
    return rc;
}

int ingest_segment_update(ingest *ing, const char *id, const cJSON *body, segd_error *err)
{
    ingest_segment_input p;
    int rc = ingest_segment_input_parse(body, &p, 1, err);
    if (rc) return rc;
    rc = run_segment_op(ing, INGEST_SEG_UPDATE, id, &p, NULL, NULL, err);
    ingest_segment_input_release(&p);
    return rc;
}

int ingest_segment_delete(ingest *ing, const char *id, segd_error *err)
{
    return run_segment_op(ing, INGEST_SEG_DELETE, id, NULL, NULL, NULL, err);
}

int ingest_segment_recalculate(ingest *ing, const char *id, segd_error *err)
{
    return run_segment_op(ing, INGEST_SEG_RECALC, id, NULL, NULL, NULL, err);
}

int ingest_set_test_clock(ingest *ing, int64_t now_ms, segd_error *err)
{
    __atomic_store_n(&ing->test_now_ms, now_ms ? now_ms : 1, __ATOMIC_RELEASE);
    return run_segment_op(ing, INGEST_TICK, NULL, NULL, NULL, NULL, err);
}

segments *ingest_segments(ingest *ing)
{
    return ing->segs;
}

int64_t ingest_segment_num(ingest *ing, int slot)
{
    return slot >= 0 && (size_t)slot < ing->seg_slot_cap ? ing->seg_slot[slot].num : 0;
}

store *ingest_store(ingest *ing)
{
    return ing->st;
}
