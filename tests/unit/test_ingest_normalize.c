/* Tests for src/ingest/normalize.c: required fields, flattening, typing, UTF-8,
 * duplicate keys, size limits, CSV text values. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "ingest/internal.h"

static int norm(const char *json, int kind, unsigned flags, ingest_msg *m, segd_error *err, cJSON **tree)
{
    *tree = cJSON_Parse(json);
    assert_non_null(*tree);
    segd_error_clear(err);
    return ingest_normalize_message(*tree, kind, 0, 32768, flags, m, err);
}

static const ingest_field *field(const ingest_fields *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i].name, name) == 0) return &f->v[i];
    return NULL;
}

static void test_identify_traits(void **state)
{
    (void)state;
    ingest_msg m;
    segd_error err;
    cJSON *t;
    assert_int_equal(norm("{\"userId\":\"u1\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"traits\":{\"plan\":\"pro\","
                          "\"age\":41,\"vip\":true,\"gone\":null,\"createdAt\":\"2020-05-01T10:00:00Z\","
                          "\"address\":{\"city\":\"Berlin\",\"country\":\"DE\",\"zip\":\"10115\"},"
                          "\"tags\":[\"a\",\"b\"],\"mixed\":[1,\"x\"]}}",
                          INGEST_IDENTIFY, 0, &m, &err, &t), 0);
    assert_string_equal(m.user_id, "u1");
    assert_int_equal(m.timestamp, 1767225600000LL);
    assert_int_equal(field(&m.traits, "plan")->natural, SEGD_T_STRING);
    assert_int_equal(field(&m.traits, "age")->natural, SEGD_T_NUMBER);
    assert_int_equal(field(&m.traits, "vip")->natural, SEGD_T_BOOL);
    assert_int_equal(field(&m.traits, "gone")->natural, SEGD_T_NONE);
    assert_int_equal(field(&m.traits, "created_at")->natural, SEGD_T_DATETIME);
    assert_int_equal(field(&m.traits, "city")->natural, SEGD_T_STRING);
    assert_int_equal(field(&m.traits, "country")->natural, SEGD_T_STRING);
    assert_int_equal(field(&m.traits, "address.zip")->natural, SEGD_T_STRING);
    assert_int_equal(field(&m.traits, "tags")->natural, SEGD_T_LIST);
    assert_int_equal(field(&m.traits, "tags")->value.n_items, 2);
    assert_int_equal(field(&m.traits, "mixed")->natural, SEGD_T_JSON);
    assert_string_equal(field(&m.traits, "mixed")->value.str, "[1,\"x\"]");
    assert_true(m.created_at_from_trait);
    assert_true(m.replace_tags);
    ingest_msg_release(&m);
    cJSON_Delete(t);
}

static void expect_error(const char *json, int kind, const char *code)
{
    ingest_msg m;
    segd_error err;
    cJSON *t;
    assert_int_not_equal(norm(json, kind, 0, &m, &err, &t), 0);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, code);
    assert_true(strlen(err.message) > 10);
    ingest_msg_release(&m);
    cJSON_Delete(t);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("{\"traits\":{}}", INGEST_IDENTIFY, "missing_field");
    expect_error("{\"userId\":\"\"}", INGEST_IDENTIFY, "invalid_field");
    expect_error("{\"userId\":5}", INGEST_IDENTIFY, "invalid_field");
    expect_error("{\"userId\":\"u\"}", INGEST_TRACK, "missing_field");
    expect_error("{\"userId\":\"u\",\"event\":\"$x\"}", INGEST_TRACK, "invalid_field");
    expect_error("{\"userId\":\"u\",\"timestamp\":\"yesterday\"}", INGEST_IDENTIFY, "invalid_timestamp");
    expect_error("{\"userId\":\"u\",\"traits\":{\"a\":1,\"a\":2}}", INGEST_IDENTIFY, "duplicate_key");
    expect_error("{\"userId\":\"u\",\"traits\":{\"\\u0001x\":1}}", INGEST_IDENTIFY, "invalid_name");
    expect_error("{\"userId\":\"u\",\"traits\":[1]}", INGEST_IDENTIFY, "invalid_field");
    expect_error("{\"userId\":\"u\"}", INGEST_ALIAS, "missing_field");
    expect_error("{\"userId\":\"u\"}", INGEST_GROUP, "missing_field");
    expect_error("{\"userId\":\"u\",\"type\":\"nope\"}", -1, "invalid_type");
    expect_error("[1]", INGEST_IDENTIFY, "invalid_message");
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    const char raw[] = "{\"userId\":\"u\",\"traits\":{\"name\":\"a\xff" "b\"}}";
    cJSON *t = cJSON_Parse(raw);
    assert_non_null(t);
    ingest_msg m;
    segd_error err;
    segd_error_clear(&err);
    assert_int_not_equal(ingest_normalize_message(t, INGEST_IDENTIFY, 0, 32768, 0, &m, &err), 0);
    assert_string_equal(err.code, "invalid_utf8");
    ingest_msg_release(&m);
    cJSON_Delete(t);
}

static void test_size_limit(void **state)
{
    (void)state;
    char big[2000];
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = 0;
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "userId", "u");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(t, "traits"), "note", big);
    ingest_msg m;
    segd_error err;
    segd_error_clear(&err);
    assert_int_not_equal(ingest_normalize_message(t, INGEST_IDENTIFY, 0, 1024, 0, &m, &err), 0);
    assert_string_equal(err.code, "message_too_large");
    ingest_msg_release(&m);
    segd_error_clear(&err);
    assert_int_equal(ingest_normalize_message(t, INGEST_IDENTIFY, 0, 4096, 0, &m, &err), 0);
    ingest_msg_release(&m);
    cJSON_Delete(t);
}

static void test_page_and_text_values(void **state)
{
    (void)state;
    ingest_msg m;
    segd_error err;
    cJSON *t;
    assert_int_equal(norm("{\"anonymousId\":\"a1\",\"name\":\"Home\",\"properties\":{\"url\":\"https://x/\"}}",
                          INGEST_PAGE, 0, &m, &err, &t), 0);
    assert_string_equal(m.event, "page_view");
    assert_non_null(field(&m.props, "name"));
    assert_non_null(field(&m.props, "url"));
    ingest_msg_release(&m);
    cJSON_Delete(t);

    assert_int_equal(norm("{\"userId\":\"u\",\"traits\":{\"n\":\"42\",\"b\":\"true\",\"s\":\"hello\"}}",
                          INGEST_IDENTIFY, INGEST_F_TEXT_VALUES, &m, &err, &t), 0);
    const ingest_field *n = field(&m.traits, "n");
    assert_int_equal(n->natural, SEGD_T_NUMBER);
    assert_true(n->value.number == 42.0);
    segd_value v;
    assert_int_equal(ingest_resolve_value(n, SEGD_T_STRING, &v), 0);      /* a declared string keeps "42" */
    assert_int_equal(v.type, SEGD_T_STRING);
    assert_string_equal(v.str, "42");
    assert_int_equal(field(&m.traits, "b")->natural, SEGD_T_BOOL);
    assert_int_equal(ingest_resolve_value(field(&m.traits, "s"), SEGD_T_NUMBER, &v), SEGD_ECONFLICT);
    ingest_msg_release(&m);
    cJSON_Delete(t);
}

static void test_resolve_never_coerces_json_values(void **state)
{
    (void)state;
    ingest_msg m;
    segd_error err;
    cJSON *t;
    assert_int_equal(norm("{\"userId\":\"u\",\"traits\":{\"n\":42,\"d\":\"2026-01-01T00:00:00Z\"}}",
                          INGEST_IDENTIFY, 0, &m, &err, &t), 0);
    segd_value v;
    assert_int_equal(ingest_resolve_value(field(&m.traits, "n"), SEGD_T_STRING, &v), SEGD_ECONFLICT);
    assert_int_equal(ingest_resolve_value(field(&m.traits, "d"), SEGD_T_STRING, &v), 0);
    assert_int_equal(v.type, SEGD_T_STRING);
    assert_int_equal(ingest_resolve_value(field(&m.traits, "d"), SEGD_T_NUMBER, &v), SEGD_ECONFLICT);
    ingest_msg_release(&m);
    cJSON_Delete(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identify_traits),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_page_and_text_values),
        cmocka_unit_test(test_resolve_never_coerces_json_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
