/* rebuild.c - builds the engine from the store: at start, and after a store failure
 * left the engine ahead of what committed. Reads the catalogs first (so every value
 * gets the type it was stored under), then people, then events in arrival order.
 * Workload: one pass over every row; the time is reported by `make bench`. */
#include "internal.h"
#include "../base/alloc.h"
#include "../base/timefmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rebuild_ctx {
    ingest *ing;
    engine *eng;
    segd_error *err;
} rebuild_ctx;

static int fail(rebuild_ctx *r, const char *what, const char *name)
{
    segd_error_set(r->err, 500, "store_inconsistent",
                   "the store holds %s \"%s\" that cannot be loaded; restore the data directory from a backup", what,
                   name ? name : "");
    return SEGD_EIO;
}

static int on_attribute(void *ctx, const char *name, const char *type_name, int declared)
{
    rebuild_ctx *r = ctx;
    segd_type t = segd_type_parse(type_name);
    int a = engine_attr_declare(r->eng, name, t);
    return a < 0 ? fail(r, "attribute", name) : 0;
}

static int on_event_type(void *ctx, int type, const char *name)
{
    rebuild_ctx *r = ctx;
    return engine_event_type_declare(r->eng, name) != type ? fail(r, "event type", name) : 0;
}

static int on_property(void *ctx, int type, const char *name, const char *type_name)
{
    rebuild_ctx *r = ctx;
    return engine_prop_declare(r->eng, type, name, segd_type_parse(type_name)) < 0 ? fail(r, "property", name) : 0;
}

/* Converts one stored JSON value to the attribute's type. */
static int stored_value(cJSON *v, segd_type t, segd_value *out, const char ***items, char **text)
{
    memset(out, 0, sizeof *out);
    out->type = t;
    switch (t) {
    case SEGD_T_STRING:
        if (!cJSON_IsString(v)) return -1;
        out->str = v->valuestring;
        out->str_len = strlen(v->valuestring);
        return 0;
    case SEGD_T_NUMBER:
        if (!cJSON_IsNumber(v)) return -1;
        out->number = v->valuedouble;
        return 0;
    case SEGD_T_BOOL:
        if (!cJSON_IsBool(v)) return -1;
        out->boolean = cJSON_IsTrue(v);
        return 0;
    case SEGD_T_DATETIME:
        if (!cJSON_IsString(v)) return -1;
        return timefmt_parse(v->valuestring, strlen(v->valuestring), 1, &out->time_ms) ? -1 : 0;
    case SEGD_T_LIST: {
        size_t n;
        segd_error e;
        if (ingest_string_array(v, "list", items, &n, &e)) return -1;
        out->items = *items;
        out->n_items = n;
        return 0;
    }
    case SEGD_T_JSON:
        *text = cJSON_PrintUnformatted(v);
        if (!*text) abort();
        out->str = *text;
        out->str_len = strlen(*text);
        return 0;
    default:
        return -1;
    }
}

static int on_person(void *ctx, uint32_t id, uint64_t public_id, const char *json, size_t len)
{
    rebuild_ctx *r = ctx;
    char name[32];
    snprintf(name, sizeof name, "%u", id);
    if (engine_person_restore(r->eng, id, public_id) != 0) return fail(r, "person", name);
    cJSON *obj = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return fail(r, "person", name);
    }
    int rc = 0;
    for (cJSON *c = obj->child; c && rc == 0; c = c->next) {
        if (strcmp(c->string, "$created_pinned") == 0) {
            ingest_set_pinned(r->ing, id, cJSON_IsTrue(c));
            continue;
        }
        int a = engine_attr_find(r->eng, c->string);
        segd_value v;
        const char **items = NULL;
        char *text = NULL;
        if (a < 0 || stored_value(c, engine_attr_type(r->eng, a), &v, &items, &text) != 0 ||
            engine_attr_set(r->eng, id, a, &v) != 0)
            rc = fail(r, "person attribute", c->string);
        free(items);
        free(text);
    }
    cJSON_Delete(obj);
    return rc;
}

static int on_event(void *ctx, int type, uint32_t row, uint32_t person, int64_t time_ms, const char *json,
                    size_t len)
{
    rebuild_ctx *r = ctx;
    ingest_fields fs = {0};
    cJSON *obj = NULL;
    int rc = 0;
    segd_error e;
    segd_error_clear(&e);
    if (json && len) {
        obj = cJSON_ParseWithLength(json, len);
        if (!obj || ingest_normalize_fields(obj, "properties", 0, 0, &fs, &e) != 0) rc = -1;
    }
    int props_small[16];
    segd_value vals_small[16];
    int *props = fs.n <= 16 ? props_small : xmalloc(fs.n * sizeof *props);
    segd_value *vals = fs.n <= 16 ? vals_small : xmalloc(fs.n * sizeof *vals);
    for (size_t i = 0; i < fs.n && rc == 0; i++) {
        props[i] = engine_prop_find(r->eng, type, fs.v[i].name);
        if (props[i] < 0 || ingest_resolve_value(&fs.v[i], engine_prop_type(r->eng, type, props[i]), &vals[i]) != 0)
            rc = -1;
    }
    if (rc == 0 && engine_event_pad(r->eng, type, row) != 0) rc = -1;     /* erased rows stay holes */
    if (rc == 0 && engine_event_append(r->eng, person, type, time_ms, fs.n, props, vals) != (int64_t)row) rc = -1;
    /* a track of a known person does not rewrite the person's row: its times come from here */
    if (rc == 0) ingest_see_time(r->ing, r->eng, person, time_ms);
    if (props != props_small) free(props);
    if (vals != vals_small) free(vals);
    ingest_fields_release(&fs);
    cJSON_Delete(obj);
    return rc ? fail(r, "event of type", engine_event_type_name(r->eng, type)) : 0;
}

engine *ingest_rebuild_engine(ingest *ing, segd_error *err)
{
    rebuild_ctx r = {ing, engine_new(&ing->cfg.limits), err};
    int64_t people = store_count_people(ing->st);
    if (people > 0 && people < UINT32_MAX / 4)   /* user_id, email, name, phone: ~4 distinct strings each */
        engine_reserve(r.eng, (uint32_t)people, (uint32_t)people * 4);
    free(ing->created_pinned);
    ing->created_pinned = NULL;
    ing->created_pinned_cap = 0;
    int rc = store_load_attributes(ing->st, on_attribute, &r);
    if (rc == 0) rc = store_load_event_types(ing->st, on_event_type, &r);
    if (rc == 0) rc = store_load_properties(ing->st, on_property, &r);
    if (rc == 0) rc = store_load_people(ing->st, on_person, &r);
    if (rc == 0) rc = store_load_events(ing->st, on_event, &r);
    if (rc != 0) {
        if (err->status == 0)
            segd_error_set(err, 500, "store_unreadable", "the store could not be read; see the log");
        engine_free(r.eng);
        return NULL;
    }
    return r.eng;
}
