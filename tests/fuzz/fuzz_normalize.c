/* fuzz_normalize.c - libFuzzer target for src/ingest/normalize.c: Segment messages
 * from arbitrary bytes.
 *
 * Parses the input with cJSON (as the HTTP handlers do) and runs
 * ingest_normalize_message on the tree for every kind (-1: read "type"; identify ..
 * alias), with and without INGEST_F_TEXT_VALUES and with the default and a tiny size
 * limit, then releases. Must not crash or leak (LeakSanitizer runs after inputs that
 * allocate more than they free); checks the contract of a normalised message: who it
 * is about, valid names, values typed as their natural type, errors with a status and
 * a code. Inputs: a few KiB of JSON.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "base/timefmt.h"
#include "ingest/internal.h"
#include "fuzz.h"

#define MAX_NAME_BYTES 128                       /* normalize.c's limits */
#define MAX_ID_BYTES 512

static void check_id(const char *id, const char *what)
{
    if (!id) return;
    size_t n = strlen(id);
    FUZZ_CHECK(n > 0 && n <= MAX_ID_BYTES, "%s of %zu bytes", what, n);
    FUZZ_CHECK(ingest_utf8_valid(id, n), "%s is not valid UTF-8", what);
}

static void check_fields(const ingest_fields *f, const char *what)
{
    FUZZ_CHECK(f->n <= f->cap || (f->n == 0 && f->cap == 0), "%s: %zu fields, room for %zu", what, f->n, f->cap);
    for (size_t i = 0; i < f->n; i++) {
        const ingest_field *x = &f->v[i];
        FUZZ_CHECK(x->name != NULL, "%s: field %zu has no name", what, i);
        size_t n = strlen(x->name);
        FUZZ_CHECK(n > 0 && n <= MAX_NAME_BYTES, "%s: name of %zu bytes", what, n);
        FUZZ_CHECK(x->name[0] != '$', "%s: name \"%s\" starts with '$'", what, x->name);
        FUZZ_CHECK(x->value.type == x->natural, "%s.%s: value typed %d, natural %d", what, x->name,
                   (int)x->value.type, (int)x->natural);
        switch (x->natural) {
        case SEGD_T_STRING:
        case SEGD_T_DATETIME:
            FUZZ_CHECK(x->text && strlen(x->text) == x->text_len, "%s.%s: text and text_len disagree", what, x->name);
            FUZZ_CHECK(ingest_utf8_valid(x->text, x->text_len), "%s.%s: text is not valid UTF-8", what, x->name);
            if (x->natural == SEGD_T_DATETIME)
                FUZZ_CHECK(timefmt_is_datetime(x->text, x->text_len), "%s.%s: \"%s\" typed datetime", what, x->name,
                           x->text);
            break;
        case SEGD_T_LIST:
            FUZZ_CHECK(x->items == x->value.items, "%s.%s: list items not owned by the field", what, x->name);
            for (size_t k = 0; k < x->value.n_items; k++)
                FUZZ_CHECK(x->value.items[k] != NULL, "%s.%s: item %zu is NULL", what, x->name, k);
            break;
        case SEGD_T_JSON:
            FUZZ_CHECK(x->owned && x->value.str == x->owned && strlen(x->owned) == x->value.str_len,
                       "%s.%s: JSON text not owned", what, x->name);
            break;
        default:
            break;
        }
    }
}

static void normalize_once(cJSON *tree, int kind, size_t max_bytes, unsigned flags)
{
    ingest_msg m;
    segd_error err;
    segd_error_clear(&err);
    int rc = ingest_normalize_message(tree, kind, 7, max_bytes, flags, &m, &err);
    FUZZ_CHECK(m.index == 7, "index %d", m.index);
    if (rc != 0) {
        FUZZ_CHECK(rc < 0, "ingest_normalize_message returned %d", rc);
        FUZZ_CHECK(err.status == 400 && err.code[0] && err.message[0], "error %d \"%s\" \"%s\"", err.status,
                   err.code, err.message);
    } else {
        FUZZ_CHECK(err.status == 0, "success with an error set: %s", err.code);
        FUZZ_CHECK(m.kind >= INGEST_IDENTIFY && m.kind <= INGEST_ALIAS, "kind %d", m.kind);
        if (kind >= 0) FUZZ_CHECK(m.kind == kind, "kind %d asked, %d given", kind, m.kind);
        check_id(m.user_id, "userId");
        check_id(m.anonymous_id, "anonymousId");
        check_id(m.message_id, "messageId");
        check_id(m.previous_id, "previousId");
        check_id(m.group_id, "groupId");
        if (m.kind == INGEST_ALIAS) FUZZ_CHECK(m.user_id && m.previous_id, "alias without both ids");
        else FUZZ_CHECK(m.user_id || m.anonymous_id, "a message about nobody");
        if (m.kind == INGEST_TRACK || m.kind == INGEST_PAGE || m.kind == INGEST_SCREEN)
            FUZZ_CHECK(m.event && m.event[0] && strlen(m.event) <= MAX_NAME_BYTES, "event name");
        if (m.kind == INGEST_GROUP) FUZZ_CHECK(m.group_id != NULL, "group without groupId");
        if (m.kind != INGEST_IDENTIFY) FUZZ_CHECK(m.traits.n == 0, "traits on kind %d", m.kind);
        check_fields(&m.traits, "traits");
        check_fields(&m.props, "properties");
    }
    ingest_msg_release(&m);                       /* also after a failure: it may hold fields */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    cJSON *tree = cJSON_ParseWithLength((const char *)data, len);
    if (!tree) return 0;
    for (int kind = -1; kind <= INGEST_ALIAS; kind++) {
        normalize_once(tree, kind, 32768, 0);
        normalize_once(tree, kind, 32768, INGEST_F_TEXT_VALUES);
    }
    normalize_once(tree, -1, 0, 0);               /* no size limit */
    normalize_once(tree, -1, 64, INGEST_F_TEXT_VALUES);
    cJSON_Delete(tree);
    return 0;
}
