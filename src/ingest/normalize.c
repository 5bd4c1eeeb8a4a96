/* normalize.c - turns Segment-spec messages and REST bodies into ingest_msg.
 *
 * Owns the syntax of what segd accepts: required fields per message type, id and
 * timestamp formats, UTF-8 validity, duplicate keys, size limits, and the flattening
 * of nested trait / property objects into dotted names ("address.city"). It never
 * looks at the engine: whether a value's type fits the catalog is decided in apply.c.
 * Runs in the requesting thread, so batches are normalised in parallel.
 */
#include "internal.h"
#include "../filter/filter.h"
#include "../base/alloc.h"
#include "../base/timefmt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define MAX_NAME_BYTES 128
#define MAX_ID_BYTES 512
#define MAX_FLATTEN_DEPTH 5

int ingest_utf8_valid(const char *s, size_t len)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            if (p[i] == 0) return 0;
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0) return 0;
        i += (size_t)n;
    }
    return 1;
}

/* Rough printed size of a JSON value: bounds a message to max_message_bytes without
 * printing it. Counts string bytes exactly and numbers as at most 24 characters. */
static size_t json_size(const cJSON *v)
{
    size_t n = 0;
    if (v->string) n += strlen(v->string) + 3;
    if (cJSON_IsString(v)) return n + strlen(v->valuestring) + 2;
    if (cJSON_IsNumber(v)) return n + 24;
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        n += 2;
        for (const cJSON *c = v->child; c; c = c->next) n += json_size(c) + 1;
        return n;
    }
    return n + 5;
}

/* Rejects objects with a repeated key (cJSON keeps both; which one wins would be a
 * guess) and strings or keys that are not valid UTF-8, anywhere in the value. */
static int check_value(const cJSON *v, const char *path, segd_error *err)
{
    if (cJSON_IsString(v) && !ingest_utf8_valid(v->valuestring, strlen(v->valuestring))) {
        snprintf(err->field, sizeof err->field, "%s", path);
        return segd_error_set(err, 400, "invalid_utf8",
                              "%s is not valid UTF-8 (or contains a NUL character); send text as UTF-8", path);
    }
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) return 0;
    for (const cJSON *c = v->child; c; c = c->next) {
        if (cJSON_IsObject(v)) {
            if (!ingest_utf8_valid(c->string, strlen(c->string))) {
                snprintf(err->field, sizeof err->field, "%s", path);
                return segd_error_set(err, 400, "invalid_utf8",
                                      "a key in %s is not valid UTF-8; send keys as UTF-8", path);
            }
            for (const cJSON *d = c->next; d; d = d->next)
                if (strcmp(c->string, d->string) == 0) {
                    snprintf(err->field, sizeof err->field, "%s.%s", path, c->string);
                    return segd_error_set(err, 400, "duplicate_key",
                                          "key \"%s\" appears twice in %s; send each key once", c->string, path);
                }
        }
        int rc = check_value(c, path, err);
        if (rc) return rc;
    }
    return 0;
}

static ingest_field *fields_push(ingest_fields *f)
{
    f->v = xgrow(f->v, sizeof *f->v, &f->cap, f->n + 1, 8);
    ingest_field *x = &f->v[f->n++];
    memset(x, 0, sizeof *x);
    return x;
}

int ingest_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > MAX_NAME_BYTES || name[0] == '$') return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return 0;
    return ingest_utf8_valid(name, len);
}

int ingest_string_array(cJSON *arr, const char *what, const char ***items, size_t *n, segd_error *err)
{
    if (!cJSON_IsArray(arr)) {
        snprintf(err->field, sizeof err->field, "%s", what);
        return segd_error_set(err, 400, "invalid_field", "%s must be an array of strings", what);
    }
    size_t count = (size_t)cJSON_GetArraySize(arr), i = 0;
    const char **v = xmalloc((count ? count : 1) * sizeof *v);
    for (cJSON *c = arr->child; c; c = c->next) {
        if (!cJSON_IsString(c)) {
            free(v);
            snprintf(err->field, sizeof err->field, "%s", what);
            return segd_error_set(err, 400, "invalid_field", "%s must be an array of strings; item %zu is not a string",
                                  what, i);
        }
        v[i++] = c->valuestring;
    }
    *items = v;
    *n = i;
    return 0;
}

/* 1 if s[0..len) is a number as JSON writes it (-?int frac? exp?): text such as
 * "01067", "0x1A", "+5", ".5" or " 7" that strtod would also take stays a string. */
static int is_json_number(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && s[i] == '-') i++;
    if (i >= len || s[i] < '0' || s[i] > '9') return 0;
    if (s[i] == '0') i++;
    else while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    if (i < len && s[i] == '.') {
        if (++i >= len || s[i] < '0' || s[i] > '9') return 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= len || s[i] < '0' || s[i] > '9') return 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    }
    return i == len;
}

/* Adds one value under `name`; when `owned`, the callee takes the allocation (else the
 * name is a key of the cJSON tree, which outlives the fields: top-level keys are not
 * copied, the common case). */
static int add_field(ingest_fields *out, char *name, int owned, cJSON *v, const char *what, int allow_null,
                     unsigned flags, int depth, segd_error *err);

static int add_object(ingest_fields *out, const char *prefix, cJSON *obj, const char *what,
                      int allow_null, unsigned flags, int depth, segd_error *err)
{
    for (cJSON *c = obj->child; c; c = c->next) {
        size_t klen = strlen(c->string);
        if (!ingest_name_valid(c->string, klen)) {
            snprintf(err->field, sizeof err->field, "%s", what);
            return segd_error_set(err, 400, "invalid_name",
                                  "name \"%.64s\" in %s is empty, longer than %d bytes, starts with '$' or has control characters; rename it",
                                  c->string, what, MAX_NAME_BYTES);
        }
        char *name = c->string;
        if (prefix) {
            size_t plen = strlen(prefix);
            name = xmalloc(plen + 1 + klen + 1);
            memcpy(name, prefix, plen);
            name[plen] = '.';
            memcpy(name + plen + 1, c->string, klen + 1);
        }
        int rc = add_field(out, name, prefix != NULL, c, what, allow_null, flags, depth, err);
        if (rc) return rc;
    }
    return 0;
}

static int add_field(ingest_fields *out, char *name, int owned, cJSON *v, const char *what, int allow_null,
                     unsigned flags, int depth, segd_error *err)
{
    if (strlen(name) > MAX_NAME_BYTES) {
        snprintf(err->field, sizeof err->field, "%.100s", name);
        if (owned) free(name);
        return segd_error_set(err, 400, "invalid_name", "a name in %s is longer than %d bytes once nested keys are joined with '.'; shorten it",
                              what, MAX_NAME_BYTES);
    }
    if (cJSON_IsObject(v) && depth < MAX_FLATTEN_DEPTH && v->child) {
        int rc = add_object(out, name, v, what, allow_null, flags, depth + 1, err);
        if (owned) free(name);
        return rc;
    }
    if (cJSON_IsNull(v) && !allow_null) {
        if (owned) free(name);
        return 0;            /* a null property is the same as an absent one */
    }
    ingest_field *f = fields_push(out);
    f->name = name;
    f->name_owned = owned;
    if (cJSON_IsNull(v)) {
        f->natural = SEGD_T_NONE;
    } else if (cJSON_IsString(v)) {
        f->text = v->valuestring;
        f->text_len = strlen(v->valuestring);
        f->value.str = f->text;
        f->value.str_len = f->text_len;
        f->from_text = (flags & INGEST_F_TEXT_VALUES) != 0;
        char *end;
        if (timefmt_is_datetime(f->text, f->text_len)) {
            f->natural = SEGD_T_DATETIME;
            timefmt_parse(f->text, f->text_len, 0, &f->value.time_ms);
        } else if (f->from_text && (strcmp(f->text, "true") == 0 || strcmp(f->text, "false") == 0)) {
            f->natural = SEGD_T_BOOL;
            f->value.boolean = f->text[0] == 't';
        } else if (f->from_text && is_json_number(f->text, f->text_len) &&
                   (f->value.number = strtod(f->text, &end), *end == 0) && isfinite(f->value.number)) {
            f->natural = SEGD_T_NUMBER;
        } else {
            f->natural = SEGD_T_STRING;
        }
    } else if (cJSON_IsNumber(v)) {
        f->natural = SEGD_T_NUMBER;
        f->value.number = v->valuedouble;
    } else if (cJSON_IsBool(v)) {
        f->natural = SEGD_T_BOOL;
        f->value.boolean = cJSON_IsTrue(v);
    } else {
        int all_strings = cJSON_IsArray(v);
        for (cJSON *c = v->child; all_strings && c; c = c->next) all_strings = cJSON_IsString(c);
        if (all_strings) {
            f->natural = SEGD_T_LIST;
            size_t n;
            int rc = ingest_string_array(v, name, &f->items, &n, err);
            if (rc) return rc;
            f->value.items = f->items;
            f->value.n_items = n;
        } else {
            f->natural = SEGD_T_JSON;
            f->owned = cJSON_PrintUnformatted(v);
            if (!f->owned) abort();
            f->value.str = f->owned;
            f->value.str_len = strlen(f->owned);
        }
    }
    f->value.type = f->natural;
    return 0;
}

int ingest_normalize_fields(cJSON *obj, const char *what, int allow_null, unsigned flags,
                            ingest_fields *out, segd_error *err)
{
    if (!obj || cJSON_IsNull(obj)) return 0;
    if (!cJSON_IsObject(obj)) {
        snprintf(err->field, sizeof err->field, "%s", what);
        return segd_error_set(err, 400, "invalid_field", "%s must be a JSON object", what);
    }
    return add_object(out, NULL, obj, what, allow_null, flags, 0, err);
}

void ingest_fields_release(ingest_fields *f)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->v[i].name_owned) free(f->v[i].name);
        free(f->v[i].owned);
        free(f->v[i].items);
    }
    free(f->v);
    memset(f, 0, sizeof *f);
}

void ingest_msg_release(ingest_msg *m)
{
    ingest_fields_release(&m->traits);
    ingest_fields_release(&m->props);
    free(m->tags_add);
    free(m->tags_remove);
    m->tags_add = m->tags_remove = NULL;
}

/* Reads an optional identifier field: a non-empty string of at most MAX_ID_BYTES. */
static int id_field(cJSON *obj, const char *key, const char **out, segd_error *err)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v) || v->valuestring[0] == 0 || strlen(v->valuestring) > MAX_ID_BYTES) {
        snprintf(err->field, sizeof err->field, "%s", key);
        return segd_error_set(err, 400, "invalid_field", "%s must be a non-empty string of at most %d bytes",
                              key, MAX_ID_BYTES);
    }
    *out = v->valuestring;
    return 0;
}

static int time_field(cJSON *obj, const char *key, int64_t *out, int *present, segd_error *err)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *present = 0;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v) || timefmt_parse(v->valuestring, strlen(v->valuestring), 1, out) != 0) {
        snprintf(err->field, sizeof err->field, "%s", key);
        return segd_error_set(err, 400, "invalid_timestamp",
                              "%s must be an ISO 8601 date-time such as \"2026-11-28T19:12:01.123Z\"", key);
    }
    *present = 1;
    return 0;
}

static int kind_from_type(const char *t)
{
    static const char *names[] = {"identify", "track", "page", "screen", "group", "alias"};
    for (int i = 0; i < 6; i++)
        if (strcmp(t, names[i]) == 0) return i;
    return -1;
}

/* Maps Segment's reserved trait names onto segd's standard attributes. */
static void map_standard_traits(ingest_msg *m)
{
    for (size_t i = 0; i < m->traits.n; i++) {
        ingest_field *f = &m->traits.v[i];
        const char *to = NULL;
        if (strcmp(f->name, "createdAt") == 0) to = "created_at";
        else if (strcmp(f->name, "address.city") == 0) to = "city";
        else if (strcmp(f->name, "address.country") == 0) to = "country";
        if (to) {
            if (f->name_owned) free(f->name);
            f->name = (char *)to;          /* a literal: not owned */
            f->name_owned = 0;
        }
        if (strcmp(f->name, "created_at") == 0) m->created_at_from_trait = 1;
        if (strcmp(f->name, "tags") == 0) m->replace_tags = 1;
    }
}

int ingest_normalize_message(cJSON *obj, int kind, int index, size_t max_bytes, unsigned flags,
                             ingest_msg *m, segd_error *err)
{
    int rc;
    memset(m, 0, sizeof *m);
    m->index = index;
    if (!cJSON_IsObject(obj))
        return segd_error_set(err, 400, "invalid_message", "each message must be a JSON object");
    if (max_bytes && json_size(obj) > max_bytes)
        return segd_error_set(err, 400, "message_too_large",
                              "the message is larger than %zu bytes; send smaller messages or raise --max-message-bytes",
                              max_bytes);
    if ((rc = check_value(obj, "message", err))) return rc;
    if (kind < 0) {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
        if (!cJSON_IsString(t) || (kind = kind_from_type(t->valuestring)) < 0) {
            snprintf(err->field, sizeof err->field, "type");
            return segd_error_set(err, 400, "invalid_type",
                                  "type must be one of identify, track, page, screen, group, alias");
        }
    }
    m->kind = kind;
    if ((rc = id_field(obj, "userId", &m->user_id, err))) return rc;
    if ((rc = id_field(obj, "anonymousId", &m->anonymous_id, err))) return rc;
    if ((rc = id_field(obj, "messageId", &m->message_id, err))) return rc;
    if (kind == INGEST_ALIAS) {
        if ((rc = id_field(obj, "previousId", &m->previous_id, err))) return rc;
        if (!m->previous_id || !m->user_id) {
            snprintf(err->field, sizeof err->field, "%s", m->user_id ? "previousId" : "userId");
            return segd_error_set(err, 400, "missing_field", "alias needs both previousId and userId");
        }
    } else if (!m->user_id && !m->anonymous_id) {
        snprintf(err->field, sizeof err->field, "userId");
        return segd_error_set(err, 400, "missing_field", "send userId or anonymousId (or both) to say who this is");
    }
    int present;
    if ((rc = time_field(obj, "timestamp", &m->timestamp, &present, err))) return rc;
    if (!present) {
        if ((rc = time_field(obj, "originalTimestamp", &m->timestamp, &present, err))) return rc;
        if (!present) m->timestamp = timefmt_now_ms();
    }
    int64_t ignored;
    if ((rc = time_field(obj, "sentAt", &ignored, &present, err))) return rc;
    if ((rc = time_field(obj, "receivedAt", &ignored, &present, err))) return rc;

    switch (kind) {
    case INGEST_IDENTIFY:
        rc = ingest_normalize_fields(cJSON_GetObjectItemCaseSensitive(obj, "traits"), "traits", 1, flags, &m->traits, err);
        if (rc) return rc;
        map_standard_traits(m);
        break;
    case INGEST_TRACK: {
        cJSON *ev = cJSON_GetObjectItemCaseSensitive(obj, "event");
        if (!cJSON_IsString(ev) || !ingest_name_valid(ev->valuestring, strlen(ev->valuestring))) {
            snprintf(err->field, sizeof err->field, "event");
            return segd_error_set(err, 400, ev ? "invalid_field" : "missing_field",
                                  "track needs \"event\": the event's name, 1-%d bytes, not starting with '$'",
                                  MAX_NAME_BYTES);
        }
        m->event = ev->valuestring;
        rc = ingest_normalize_fields(cJSON_GetObjectItemCaseSensitive(obj, "properties"), "properties", 0,
                                     flags, &m->props, err);
        if (rc) return rc;
        break;
    }
    case INGEST_PAGE:
    case INGEST_SCREEN: {
        m->event = kind == INGEST_PAGE ? "page_view" : "screen_view";
        rc = ingest_normalize_fields(cJSON_GetObjectItemCaseSensitive(obj, "properties"), "properties", 0,
                                     flags, &m->props, err);
        if (rc) return rc;
        cJSON *name = cJSON_GetObjectItemCaseSensitive(obj, "name");
        if (cJSON_IsString(name)) {
            int has = 0;
            for (size_t i = 0; i < m->props.n; i++) has |= strcmp(m->props.v[i].name, "name") == 0;
            if (!has) {
                cJSON named = *name;          /* reuse add_field's typing for one value */
                named.next = named.prev = NULL;
                rc = add_field(&m->props, "name", 0, &named, "name", 0, 0, 0, err);
                if (rc) return rc;
            }
        }
        break;
    }
    case INGEST_GROUP:
        if ((rc = id_field(obj, "groupId", &m->group_id, err))) return rc;
        if (!m->group_id) {
            snprintf(err->field, sizeof err->field, "groupId");
            return segd_error_set(err, 400, "missing_field", "group needs \"groupId\"");
        }
        break;
    default:
        break;
    }
    return 0;
}

/* See internal.h. */
int ingest_print_props(cJSON *item, int kind, char **buf, size_t *cap, size_t at, size_t *len)
{
    cJSON *props = item ? cJSON_GetObjectItemCaseSensitive(item, "properties") : NULL;
    cJSON *name = item && kind != INGEST_TRACK ? cJSON_GetObjectItemCaseSensitive(item, "name") : NULL;
    cJSON *copy = NULL;
    /* stored exactly: cJSON would print some numbers to 15 digits (the values were taken
     * from the tree already; only its printing changes) */
    if (cJSON_IsObject(props)) filter_exact_numbers(props);
    if (name && cJSON_IsString(name) && (!props || !cJSON_GetObjectItemCaseSensitive(props, "name"))) {
        /* page / screen: the name is a property too */
        copy = props && cJSON_IsObject(props) ? cJSON_Duplicate(props, 1) : cJSON_CreateObject();
        cJSON_AddStringToObject(copy, "name", name->valuestring);
        props = copy;
    }
    int printed = 0;
    if (cJSON_IsObject(props) && props->child) {
        if (*cap < at + 4096) *buf = xgrow(*buf, 1, cap, at + 4096, 1 << 16);
        /* cJSON says only "did not fit": grow and print again */
        while (!cJSON_PrintPreallocated(props, *buf + at, (int)(*cap - at > INT32_MAX ? INT32_MAX : *cap - at), 0))
            *buf = xgrow(*buf, 1, cap, *cap + 1, 1 << 16);
        *len = strlen(*buf + at);
        printed = 1;
    }
    cJSON_Delete(copy);
    return printed;
}
