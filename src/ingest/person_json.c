/* person_json.c - a person's attributes and events as JSON: the object stored in the
 * people table (rebuild reads it back with the catalog's types) and the one the API
 * answers with. One conversion of engine cells to JSON serves both. */
#include "internal.h"
#include "../base/alloc.h"
#include "../base/timefmt.h"
#include "../filter/filter.h"

#include <stdlib.h>
#include <string.h>

cJSON *ingest_cell_json(const engine *e, const segd_cell *c)
{
    return filter_cell_json(e, c);
}

void ingest_person_attributes_json(const engine *e, person_id id, cJSON *obj)
{
    int slots = engine_attr_slots(e);
    for (int a = 0; a < slots; a++) {
        const char *name = engine_attr_name(e, a);
        segd_cell c;
        if (!name || !engine_attr_get(e, id, a, &c)) continue;
        cJSON_AddItemToObject(obj, name, ingest_cell_json(e, &c));
    }
}

char *ingest_person_store_json(ingest *ing, person_id id, size_t *len)
{
    cJSON *obj = cJSON_CreateObject();
    ingest_person_attributes_json(ing->eng, id, obj);
    if (ingest_pinned(ing, id)) cJSON_AddTrueToObject(obj, "$created_pinned");
    char *s = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!s) abort();
    *len = strlen(s);
    return s;
}

void ingest_event_json(const engine *e, const engine_event_ref *ref, cJSON *obj)
{
    char buf[TIMEFMT_LEN];
    cJSON_AddStringToObject(obj, "event", engine_event_type_name(e, ref->type));
    cJSON_AddStringToObject(obj, "timestamp", timefmt_format(ref->time_ms, buf));
    cJSON *props = cJSON_AddObjectToObject(obj, "properties");
    int n = engine_prop_count(e, ref->type);
    for (int p = 0; p < n; p++) {
        segd_cell c;
        if (engine_event_prop_get(e, ref->type, ref->row, p, &c))
            cJSON_AddItemToObject(props, engine_prop_name(e, ref->type, p), ingest_cell_json(e, &c));
    }
}
