/* test_engine.c - unit tests of the in-memory engine's public face (src/engine/engine.h):
 * typed attributes, identity indexes, erasure, merge, events, accounting, compaction,
 * reserving ahead of a load, and a randomized run mirrored in a plain reference model. engine_check runs after
 * every mutation. The engine's parts have their own tests (test_engine_*.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "base/error.h"

#define CHECK_OK(e) assert_int_equal(engine_check(e), 0)

static segd_value str_val(const char *s)
{
    return (segd_value){ .type = SEGD_T_STRING, .str = s, .str_len = strlen(s) };
}

static segd_value json_val(const char *s)
{
    return (segd_value){ .type = SEGD_T_JSON, .str = s, .str_len = strlen(s) };
}

static segd_value num_val(double x)
{
    return (segd_value){ .type = SEGD_T_NUMBER, .number = x };
}

static segd_value bool_val(int b)
{
    return (segd_value){ .type = SEGD_T_BOOL, .boolean = b };
}

static segd_value time_val(int64_t t)
{
    return (segd_value){ .type = SEGD_T_DATETIME, .time_ms = t };
}

static segd_value list_val(const char *const *items, size_t n)
{
    return (segd_value){ .type = SEGD_T_LIST, .items = items, .n_items = n };
}

/* Sets an attribute, expects rc, then checks the engine. */
static void set_expect(engine *e, person_id p, int attr, segd_value v, int rc)
{
    assert_int_equal(engine_attr_set(e, p, attr, &v), rc);
    CHECK_OK(e);
}

static void set_ok(engine *e, person_id p, int attr, segd_value v)
{
    set_expect(e, p, attr, v, SEGD_OK);
}

static void clear_ok(engine *e, person_id p, int attr)
{
    assert_int_equal(engine_attr_set(e, p, attr, NULL), SEGD_OK);
    CHECK_OK(e);
}

/* Asserts a string (or JSON) attribute's value; expect NULL means missing. */
static void assert_str_attr(const engine *e, person_id p, int attr, const char *expect)
{
    segd_cell c;
    int set = engine_attr_get(e, p, attr, &c);
    if (!expect) {
        assert_int_equal(set, 0);
        assert_int_equal(c.type, SEGD_T_NONE);
        return;
    }
    assert_int_equal(set, 1);
    size_t len;
    const char *s = engine_string(e, c.code, &len);
    assert_non_null(s);
    assert_int_equal(len, strlen(expect));
    assert_string_equal(s, expect);
}

/* Asserts a list attribute's items, in order. */
static void assert_list_attr(const engine *e, person_id p, int attr, const char *const *items, size_t n)
{
    segd_cell c;
    assert_int_equal(engine_attr_get(e, p, attr, &c), 1);
    assert_int_equal(c.type, SEGD_T_LIST);
    assert_int_equal(c.n_codes, n);
    for (size_t k = 0; k < n; k++) assert_string_equal(engine_string(e, c.codes[k], NULL), items[k]);
}

static person_id create(engine *e, uint64_t pub)
{
    person_id p = engine_person_create(e, pub);
    assert_int_not_equal(p, PERSON_NONE);
    CHECK_OK(e);
    return p;
}

static uint32_t code_of(const engine *e, const char *s)
{
    return engine_string_find(e, s, strlen(s));
}

/* ---- catalog and types ---- */

static void test_type_names(void **state)
{
    (void)state;
    for (int t = SEGD_T_STRING; t <= SEGD_T_JSON; t++)
        assert_int_equal(segd_type_parse(segd_type_name((segd_type)t)), t);
    assert_string_equal(segd_type_name(SEGD_T_BOOL), "boolean");
    assert_string_equal(segd_type_name(SEGD_T_NONE), "none");
    assert_int_equal(segd_type_parse("nope"), SEGD_T_NONE);
    assert_int_equal(segd_type_parse(NULL), SEGD_T_NONE);
}

static void test_standard_attributes(void **state)
{
    (void)state;
    engine *e = engine_new(NULL);
    CHECK_OK(e);
    assert_int_equal(engine_attr_slots(e), ATTR_STANDARD_COUNT);
    assert_int_equal(engine_attr_find(e, "user_id"), ATTR_USER_ID);
    assert_int_equal(engine_attr_find(e, "anonymous_ids"), ATTR_ANONYMOUS_IDS);
    assert_int_equal(engine_attr_find(e, "email"), ATTR_EMAIL);
    assert_int_equal(engine_attr_find(e, "tags"), ATTR_TAGS);
    assert_int_equal(engine_attr_type(e, ATTR_EMAIL), SEGD_T_STRING);
    assert_int_equal(engine_attr_type(e, ATTR_ANONYMOUS_IDS), SEGD_T_LIST);
    assert_int_equal(engine_attr_type(e, ATTR_CREATED_AT), SEGD_T_DATETIME);
    assert_int_equal(engine_attr_type(e, ATTR_LAST_SEEN), SEGD_T_DATETIME);
    assert_string_equal(engine_attr_name(e, ATTR_COUNTRY), "country");
    assert_null(engine_attr_name(e, 99));
    assert_null(engine_attr_name(e, -1));
    assert_int_equal(engine_attr_type(e, 99), SEGD_T_NONE);
    for (int a = 0; a < ATTR_STANDARD_COUNT; a++) assert_int_equal(engine_attr_drop(e, a), SEGD_EINVAL);
    assert_int_equal(engine_attr_drop(e, 99), SEGD_ENOTFOUND);
    assert_int_equal(engine_attr_declare(e, "email", SEGD_T_STRING), ATTR_EMAIL);
    assert_int_equal(engine_attr_declare(e, "email", SEGD_T_NUMBER), SEGD_ECONFLICT);
    CHECK_OK(e);
    engine_free(e);
    engine_free(NULL);
}

/* Every column type: set, get, overwrite, clear, count. */
static void test_column_types(void **state)
{
    (void)state;
    engine *e = engine_new(NULL);
    int a_num = engine_attr_declare(e, "score", SEGD_T_NUMBER);
    int a_bool = engine_attr_declare(e, "vip", SEGD_T_BOOL);
    int a_json = engine_attr_declare(e, "address", SEGD_T_JSON);
    int a_list = engine_attr_declare(e, "groups", SEGD_T_LIST);
    int a_time = engine_attr_declare(e, "birthday", SEGD_T_DATETIME);
    assert_true(a_num >= ATTR_STANDARD_COUNT && a_time == a_num + 4);
    assert_int_equal(engine_attr_declare(e, "vip", SEGD_T_BOOL), a_bool);
    CHECK_OK(e);

    person_id p = create(e, 101), q = create(e, 102);
    segd_cell c;

    /* missing */
    for (int a = 0; a < engine_attr_slots(e); a++) {
        assert_int_equal(engine_attr_get(e, p, a, &c), 0);
        assert_int_equal(c.type, SEGD_T_NONE);
    }

    set_ok(e, p, ATTR_NAME, str_val("Ada"));
    assert_str_attr(e, p, ATTR_NAME, "Ada");
    set_ok(e, p, ATTR_NAME, str_val("Ada Lovelace"));
    assert_str_attr(e, p, ATTR_NAME, "Ada Lovelace");
    assert_int_equal(code_of(e, "Ada"), UINT32_MAX);   /* the old string went */

    /* strings need not be NUL-terminated; an empty string is a value */
    segd_value partial = { .type = SEGD_T_STRING, .str = "Paris, France", .str_len = 5 };
    set_ok(e, p, ATTR_CITY, partial);
    assert_str_attr(e, p, ATTR_CITY, "Paris");
    set_ok(e, q, ATTR_CITY, str_val(""));
    assert_str_attr(e, q, ATTR_CITY, "");

    set_ok(e, p, a_num, num_val(12.5));
    assert_int_equal(engine_attr_get(e, p, a_num, &c), 1);
    assert_int_equal(c.type, SEGD_T_NUMBER);
    assert_true(c.number == 12.5);
    set_ok(e, q, a_num, num_val(0));
    assert_int_equal(engine_attr_get(e, q, a_num, &c), 1);
    assert_true(c.number == 0);

    set_ok(e, p, a_bool, bool_val(1));
    set_ok(e, q, a_bool, bool_val(0));
    assert_int_equal(engine_attr_get(e, p, a_bool, &c), 1);
    assert_int_equal(c.boolean, 1);
    assert_int_equal(engine_attr_get(e, q, a_bool, &c), 1);
    assert_int_equal(c.boolean, 0);
    set_ok(e, p, a_bool, bool_val(0));
    assert_int_equal(engine_attr_get(e, p, a_bool, &c), 1);
    assert_int_equal(c.boolean, 0);

    set_ok(e, p, a_time, time_val(-86400000));
    assert_int_equal(engine_attr_get(e, p, a_time, &c), 1);
    assert_int_equal(c.time_ms, -86400000);
    set_ok(e, p, ATTR_CREATED_AT, time_val(1700000000000));
    assert_int_equal(engine_attr_get(e, p, ATTR_CREATED_AT, &c), 1);
    assert_int_equal(c.time_ms, 1700000000000);

    set_ok(e, p, a_json, json_val("{\"street\":\"Main\"}"));
    assert_int_equal(engine_attr_get(e, p, a_json, &c), 1);
    assert_int_equal(c.type, SEGD_T_JSON);
    assert_string_equal(engine_string(e, c.code, NULL), "{\"street\":\"Main\"}");

    const char *groups[] = { "b", "a", "b", "c", "a" };
    set_ok(e, p, a_list, list_val(groups, 5));
    const char *deduped[] = { "b", "a", "c" };
    assert_list_attr(e, p, a_list, deduped, 3);
    set_ok(e, q, a_list, list_val(NULL, 0));   /* an empty list is a value */
    assert_int_equal(engine_attr_get(e, q, a_list, &c), 1);
    assert_int_equal(c.n_codes, 0);
    const char *tags[] = { "x" };
    set_ok(e, p, ATTR_TAGS, list_val(tags, 1));
    assert_list_attr(e, p, ATTR_TAGS, tags, 1);
    /* long lists de-duplicate too */
    char names[100][8];
    const char *many[100];
    for (int k = 0; k < 100; k++) {
        snprintf(names[k], sizeof names[k], "t%d", k % 40);
        many[k] = names[k];
    }
    set_ok(e, q, ATTR_TAGS, list_val(many, 100));
    assert_list_attr(e, q, ATTR_TAGS, many, 40);

    assert_int_equal(engine_attr_count_set(e, a_num), 2);
    assert_int_equal(engine_attr_count_set(e, a_list), 2);
    assert_int_equal(engine_attr_count_set(e, ATTR_EMAIL), 0);

    /* clear, with NULL and with a NONE value */
    clear_ok(e, p, a_num);
    assert_int_equal(engine_attr_get(e, p, a_num, &c), 0);
    segd_value none = { .type = SEGD_T_NONE };
    set_ok(e, p, a_list, none);
    assert_int_equal(engine_attr_get(e, p, a_list, &c), 0);
    clear_ok(e, p, a_list);   /* clearing twice is fine */
    assert_int_equal(engine_attr_count_set(e, a_num), 1);
    assert_int_equal(engine_attr_count_set(e, a_list), 1);
    clear_ok(e, p, a_bool);
    clear_ok(e, p, a_time);
    clear_ok(e, p, a_json);
    assert_int_equal(code_of(e, "{\"street\":\"Main\"}"), UINT32_MAX);
    assert_int_equal(code_of(e, "c"), UINT32_MAX);

    /* missing person or attribute */
    assert_int_equal(engine_attr_set(e, 77, ATTR_NAME, &partial), SEGD_ENOTFOUND);
    assert_int_equal(engine_attr_set(e, p, 77, &partial), SEGD_ENOTFOUND);
    assert_int_equal(engine_attr_set(e, p, -1, &partial), SEGD_ENOTFOUND);
    assert_int_equal(engine_attr_get(e, 77, ATTR_NAME, &c), 0);
    CHECK_OK(e);
    engine_free(e);
}

static void test_type_conflicts(void **state)
{
    (void)state;
    engine *e = engine_new(NULL);
    int score = engine_attr_declare(e, "score", SEGD_T_NUMBER);
    assert_int_equal(engine_attr_declare(e, "score", SEGD_T_STRING), SEGD_ECONFLICT);
    assert_int_equal(engine_attr_declare(e, "", SEGD_T_STRING), SEGD_EINVAL);
    assert_int_equal(engine_attr_declare(e, NULL, SEGD_T_STRING), SEGD_EINVAL);
    assert_int_equal(engine_attr_declare(e, "x", SEGD_T_NONE), SEGD_EINVAL);
    assert_int_equal(engine_attr_declare(e, "x", (segd_type)42), SEGD_EINVAL);
    person_id p = create(e, 1);
    set_ok(e, p, score, num_val(3));
    set_expect(e, p, score, str_val("3"), SEGD_ECONFLICT);
    set_expect(e, p, ATTR_NAME, num_val(3), SEGD_ECONFLICT);
    set_expect(e, p, ATTR_TAGS, str_val("t"), SEGD_ECONFLICT);
    set_expect(e, p, ATTR_CREATED_AT, num_val(3), SEGD_ECONFLICT);
    set_expect(e, p, ATTR_NAME, json_val("{}"), SEGD_ECONFLICT);
    segd_cell c;
    assert_int_equal(engine_attr_get(e, p, score, &c), 1);
    assert_true(c.number == 3);
    assert_int_equal(engine_attr_get(e, p, ATTR_NAME, &c), 0);

    /* malformed values */
    segd_value bad = { .type = SEGD_T_STRING, .str = NULL, .str_len = 3 };
    set_expect(e, p, ATTR_NAME, bad, SEGD_EINVAL);
    const char *items[] = { "a", NULL };
    set_expect(e, p, ATTR_TAGS, list_val(items, 2), SEGD_EINVAL);
    set_expect(e, p, ATTR_TAGS, list_val(NULL, 2), SEGD_EINVAL);
    segd_value weird = { .type = (segd_type)42 };
    set_expect(e, p, ATTR_NAME, weird, SEGD_EINVAL);

    /* event properties */
    int buy = engine_event_type_declare(e, "purchase");
    int amount = engine_prop_declare(e, buy, "amount", SEGD_T_NUMBER);
    assert_int_equal(engine_prop_declare(e, buy, "amount", SEGD_T_NUMBER), amount);
    assert_int_equal(engine_prop_declare(e, buy, "amount", SEGD_T_STRING), SEGD_ECONFLICT);
    assert_int_equal(engine_prop_declare(e, buy, "", SEGD_T_STRING), SEGD_EINVAL);
    assert_int_equal(engine_prop_declare(e, buy, "x", SEGD_T_NONE), SEGD_EINVAL);
    assert_int_equal(engine_prop_declare(e, 9, "x", SEGD_T_STRING), SEGD_ENOTFOUND);
    segd_value v = str_val("12");
    assert_int_equal(engine_event_append(e, p, buy, 5, 1, &amount, &v), SEGD_ECONFLICT);
    int nope = 3;
    v = num_val(1);
    assert_int_equal(engine_event_append(e, p, buy, 5, 1, &nope, &v), SEGD_ENOTFOUND);
    assert_int_equal(engine_event_append(e, p, 7, 5, 0, NULL, NULL), SEGD_ENOTFOUND);
    assert_int_equal(engine_event_append(e, p, buy, 5, 1, NULL, NULL), SEGD_EINVAL);
    assert_int_equal(engine_event_rows(e, buy), 0);
    assert_int_equal(engine_event_type_events(e, buy), 0);
    assert_int_equal(engine_event_type_declare(e, ""), SEGD_EINVAL);
    CHECK_OK(e);
    engine_free(e);
}

static void test_declare_limits(void **state)
{
    (void)state;
    engine_limits lim = { .max_attributes = ATTR_STANDARD_COUNT + 2, .max_event_types = 2, .max_properties = 1 };
    engine *e = engine_new(&lim);
    int a = engine_attr_declare(e, "a", SEGD_T_STRING);
    int b = engine_attr_declare(e, "b", SEGD_T_STRING);
    assert_true(a >= 0 && b >= 0);
    assert_int_equal(engine_attr_declare(e, "c", SEGD_T_STRING), SEGD_ELIMIT);
    assert_int_equal(engine_attr_declare(e, "a", SEGD_T_STRING), a);   /* existing is fine */
    assert_int_equal(engine_attr_drop(e, a), SEGD_OK);
    CHECK_OK(e);
    int c = engine_attr_declare(e, "c", SEGD_T_STRING);
    assert_int_equal(c, b + 1);
    assert_int_equal(engine_attr_declare(e, "d", SEGD_T_STRING), SEGD_ELIMIT);

    assert_int_equal(engine_event_type_declare(e, "one"), 0);
    assert_int_equal(engine_event_type_declare(e, "two"), 1);
    assert_int_equal(engine_event_type_declare(e, "three"), SEGD_ELIMIT);
    assert_int_equal(engine_event_type_declare(e, "two"), 1);
    assert_int_equal(engine_event_type_count(e), 2);
    assert_string_equal(engine_event_type_name(e, 1), "two");
    assert_null(engine_event_type_name(e, 2));
    assert_int_equal(engine_event_type_find(e, "one"), 0);
    assert_int_equal(engine_event_type_find(e, "three"), -1);
    assert_int_equal(engine_prop_declare(e, 0, "p", SEGD_T_BOOL), 0);
    assert_int_equal(engine_prop_declare(e, 0, "q", SEGD_T_BOOL), SEGD_ELIMIT);
    assert_int_equal(engine_prop_declare(e, 1, "q", SEGD_T_BOOL), 0);
    assert_int_equal(engine_prop_count(e, 0), 1);
    assert_int_equal(engine_prop_count(e, 5), 0);
    assert_int_equal(engine_prop_find(e, 0, "p"), 0);
    assert_int_equal(engine_prop_find(e, 0, "q"), -1);
    assert_string_equal(engine_prop_name(e, 1, 0), "q");
    assert_null(engine_prop_name(e, 1, 1));
    assert_int_equal(engine_prop_type(e, 0, 0), SEGD_T_BOOL);
    assert_int_equal(engine_prop_type(e, 0, 1), SEGD_T_NONE);
    CHECK_OK(e);
    engine_free(e);

    /* defaults: 1000 attributes in all */
    e = engine_new(NULL);
    char name[32];
    for (int i = ATTR_STANDARD_COUNT; i < 1000; i++) {
        snprintf(name, sizeof name, "attr%d", i);
        assert_int_equal(engine_attr_declare(e, name, SEGD_T_NUMBER), i);
    }
    assert_int_equal(engine_attr_declare(e, "one too many", SEGD_T_NUMBER), SEGD_ELIMIT);
    assert_int_equal(engine_attr_find(e, "attr500"), 500);
    CHECK_OK(e);
    engine_free(e);
}

/* ---- identity ---- */

static void test_identity_indexes(void **state)
{
    (void)state;
    engine *e = engine_new(NULL);
    person_id p = create(e, 11), q = create(e, 12);
    assert_int_equal(engine_person_by_public_id(e, 11), p);
    assert_int_equal(engine_person_by_public_id(e, 12), q);
    assert_int_equal(engine_person_by_public_id(e, 13), PERSON_NONE);
    assert_int_equal(engine_person_public_id(e, q), 12);
    assert_int_equal(engine_person_create(e, 11), PERSON_NONE);   /* public id taken */
    assert_int_equal(engine_person_create(e, 0), PERSON_NONE);
    CHECK_OK(e);

    /* user_id: unique */
    set_ok(e, p, ATTR_USER_ID, str_val("u-1"));
    assert_int_equal(engine_person_by_user_id(e, "u-1", 3), p);
    assert_int_equal(engine_person_by_user_id(e, "u-1xyz", 3), p);   /* length, not NUL */
    assert_int_equal(engine_person_by_user_id(e, "U-1", 3), PERSON_NONE);
    set_expect(e, q, ATTR_USER_ID, str_val("u-1"), SEGD_ECONFLICT);
    assert_str_attr(e, q, ATTR_USER_ID, NULL);
    set_ok(e, p, ATTR_USER_ID, str_val("u-1"));   /* same value again */
    set_ok(e, p, ATTR_USER_ID, str_val("u-2"));
    assert_int_equal(engine_person_by_user_id(e, "u-1", 3), PERSON_NONE);
    assert_int_equal(engine_person_by_user_id(e, "u-2", 3), p);
    set_ok(e, q, ATTR_USER_ID, str_val("u-1"));
    assert_int_equal(engine_person_by_user_id(e, "u-1", 3), q);
    clear_ok(e, p, ATTR_USER_ID);
    assert_int_equal(engine_person_by_user_id(e, "u-2", 3), PERSON_NONE);
    assert_int_equal(engine_person_by_user_id(e, NULL, 0), PERSON_NONE);

    /* anonymous ids: each unique */
    const char *pa[] = { "anon-a", "anon-b" };
    set_ok(e, p, ATTR_ANONYMOUS_IDS, list_val(pa, 2));
    assert_int_equal(engine_person_by_anonymous_id(e, "anon-a", 6), p);
    assert_int_equal(engine_person_by_anonymous_id(e, "anon-b", 6), p);
    const char *qa[] = { "anon-c", "anon-b" };
    set_expect(e, q, ATTR_ANONYMOUS_IDS, list_val(qa, 2), SEGD_ECONFLICT);
    assert_int_equal(engine_person_by_anonymous_id(e, "anon-c", 6), PERSON_NONE);
    assert_int_equal(engine_attr_get(e, q, ATTR_ANONYMOUS_IDS, &(segd_cell){ 0 }), 0);
    const char *pa2[] = { "anon-b", "anon-d", "anon-b" };
    set_ok(e, p, ATTR_ANONYMOUS_IDS, list_val(pa2, 3));
    assert_int_equal(engine_person_by_anonymous_id(e, "anon-a", 6), PERSON_NONE);
    assert_int_equal(engine_person_by_anonymous_id(e, "anon-d", 6), p);
    const char *qa2[] = { "anon-c", "anon-a" };
    set_ok(e, q, ATTR_ANONYMOUS_IDS, list_val(qa2, 2));
    assert_int_equal(engine_person_by_anonymous_id(e, "anon-a", 6), q);
    clear_ok(e, p, ATTR_ANONYMOUS_IDS);
    assert_int_equal(engine_person_by_anonymous_id(e, "anon-b", 6), PERSON_NONE);
    assert_int_equal(code_of(e, "anon-b"), UINT32_MAX);
    engine_free(e);
}

static void test_email_lookup(void **state)
{
    (void)state;
    engine *e = engine_new(NULL);
    person_id p = create(e, 1), q = create(e, 2), r = create(e, 3);
    set_ok(e, q, ATTR_EMAIL, str_val("Ünïcode@Example.COM"));
    assert_str_attr(e, q, ATTR_EMAIL, "Ünïcode@Example.COM");   /* stored as given */
    const char *same[] = {
        "Ünïcode@Example.COM", "ünïcode@example.com", "ÜNÏCODE@EXAMPLE.COM",
        "U\314\210ni\314\210code@example.com",   /* decomposed: NFC composes it */
    };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        assert_int_equal(engine_person_by_email(e, same[i], strlen(same[i])), q);
    assert_int_equal(engine_person_by_email(e, "unicode@example.com", 19), PERSON_NONE);
    assert_int_equal(engine_person_by_email(e, "ünïcode@example.co", strlen("ünïcode@example.co")), PERSON_NONE);

    /* the Kelvin sign folds to k; ASCII folds without utf8proc */
    set_ok(e, r, ATTR_EMAIL, str_val("\342\204\252ate@x.io"));
    assert_int_equal(engine_person_by_email(e, "KATE@X.IO", 9), r);
    assert_int_equal(engine_person_by_email(e, "kate@x.io", 9), r);

    /* not unique: the lowest live id wins */
    set_ok(e, p, ATTR_EMAIL, str_val("unicode@example.com"));
    set_ok(e, r, ATTR_EMAIL, str_val("ÜNÏCODE@example.com"));
    assert_int_equal(engine_person_by_email(e, "ünïcode@example.com", strlen("ünïcode@example.com")), q);
    assert_int_equal(engine_person_by_email(e, "kate@x.io", 9), PERSON_NONE);
    assert_int_equal(engine_person_erase(e, q), SEGD_OK);
    CHECK_OK(e);
    assert_int_equal(engine_person_by_email(e, "ünïcode@EXAMPLE.com", strlen("ünïcode@EXAMPLE.com")), r);
    clear_ok(e, r, ATTR_EMAIL);
    assert_int_equal(engine_person_by_email(e, "ünïcode@example.com", strlen("ünïcode@example.com")), PERSON_NONE);
    assert_int_equal(engine_person_by_email(e, "UNICODE@example.com", 19), p);

    /* invalid UTF-8 is compared byte for byte; long ASCII goes through utf8proc */
    set_ok(e, r, ATTR_EMAIL, str_val("\xff\xfe@X"));
    assert_int_equal(engine_person_by_email(e, "\xff\xfe@X", 4), r);
    char long_mail[300], long_upper[300];
    memset(long_mail, 'a', 290);
    strcpy(long_mail + 290, "@x.io");
    for (size_t i = 0; i <= strlen(long_mail); i++)
        long_upper[i] = (char)(long_mail[i] >= 'a' && long_mail[i] <= 'z' ? long_mail[i] - 32 : long_mail[i]);
    set_ok(e, p, ATTR_EMAIL, str_val(long_upper));
    assert_int_equal(engine_person_by_email(e, long_mail, strlen(long_mail)), p);
    engine_free(e);
}

/* Many people on the identity indexes: growth and backward-shift deletion. */
static void test_identity_many(void **state)
{
    (void)state;
    engine *e = engine_new(NULL);
    char buf[64];
    enum { N = 3000 };
    for (int i = 0; i < N; i++) {
        person_id p = engine_person_create(e, 1000 + (uint64_t)i * 7919);
        snprintf(buf, sizeof buf, "user-%d", i);
        segd_value v = str_val(buf);
        assert_int_equal(engine_attr_set(e, p, ATTR_USER_ID, &v), 0);
        snprintf(buf, sizeof buf, "Mail%d@Example.com", i % 1000);
        v = str_val(buf);
        assert_int_equal(engine_attr_set(e, p, ATTR_EMAIL, &v), 0);
        snprintf(buf, sizeof buf, "anon-%d", i);
        const char *items[] = { buf };
        v = list_val(items, 1);
        assert_int_equal(engine_attr_set(e, p, ATTR_ANONYMOUS_IDS, &v), 0);
    }
    CHECK_OK(e);
    for (int i = 0; i < N; i += 3) assert_int_equal(engine_person_erase(e, (person_id)i), 0);
    CHECK_OK(e);
    for (int i = 0; i < N; i++) {
        person_id want = i % 3 ? (person_id)i : PERSON_NONE;
        snprintf(buf, sizeof buf, "user-%d", i);
        assert_int_equal(engine_person_by_user_id(e, buf, strlen(buf)), want);
        snprintf(buf, sizeof buf, "anon-%d", i);
        assert_int_equal(engine_person_by_anonymous_id(e, buf, strlen(buf)), want);
        assert_int_equal(engine_person_by_public_id(e, 1000 + (uint64_t)i * 7919), want);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(buf, sizeof buf, "MAIL%d@example.COM", i);
        /* people i, i+1000, i+2000 share it; the lowest not erased answers */
        person_id want = i % 3 ? (person_id)i : (person_id)i + 1000;
        if (want % 3 == 0) want += 1000;
        assert_int_equal(engine_person_by_email(e, buf, strlen(buf)), want);
    }
    engine_free(e);
}

/* ---- people: restore, erase, merge ---- */

static void test_restore_gaps(void **state)
{
    (void)state;
    engine *e = engine_new(NULL);
    assert_int_equal(engine_person_limit(e), 0);
    assert_int_equal(engine_person_restore(e, 5, 500), SEGD_OK);
    CHECK_OK(e);
    assert_int_equal(engine_person_restore(e, 2, 200), SEGD_OK);
    CHECK_OK(e);
    assert_int_equal(engine_person_restore(e, 2, 201), SEGD_ECONFLICT);
    assert_int_equal(engine_person_restore(e, 3, 500), SEGD_ECONFLICT);   /* public id taken */
    assert_int_equal(engine_person_restore(e, 3, 0), SEGD_EINVAL);
    assert_int_equal(engine_person_restore(e, PERSON_NONE, 9), SEGD_EINVAL);
    assert_int_equal(engine_person_limit(e), 6);
    assert_int_equal(engine_person_count(e), 2);
    assert_false(engine_person_exists(e, 0));
    assert_false(engine_person_exists(e, 3));
    assert_true(engine_person_exists(e, 2));
    assert_true(engine_person_exists(e, 5));
    assert_false(engine_person_exists(e, PERSON_NONE));
    assert_int_equal(engine_person_public_id(e, 3), 0);
    assert_int_equal(engine_person_by_public_id(e, 200), 2);
    person_id p = create(e, 600);
    assert_int_equal(p, 6);
    assert_int_equal(engine_person_restore(e, 4, 400), SEGD_OK);   /* a gap below the limit */
    assert_int_equal(engine_person_limit(e), 7);
    /* a far id: pages in between stay unallocated */
    assert_int_equal(engine_person_restore(e, 1000000, 7), SEGD_OK);
    assert_int_equal(engine_person_limit(e), 1000001);
    assert_int_equal(create(e, 8), 1000001);
    set_ok(e, 1000000, ATTR_NAME, str_val("far"));
    assert_int_equal(engine_attr_set(e, 999999, ATTR_NAME, &(segd_value){ .type = SEGD_T_NONE }), SEGD_ENOTFOUND);
    engine_memory m;
    engine_memory_usage(e, &m);
    assert_true(m.people_bytes < 200000);
    CHECK_OK(e);
    engine_free(e);
}

static void test_erase(void **state)
{
    (void)state;
    engine *e = engine_new(NULL);
    int score = engine_attr_declare(e, "score", SEGD_T_NUMBER);
    int visit = engine_event_type_declare(e, "visit");
    int url = engine_prop_declare(e, visit, "url", SEGD_T_STRING);
    int tags = engine_prop_declare(e, visit, "tags", SEGD_T_LIST);
    person_id p = create(e, 1), q = create(e, 2);
    set_ok(e, p, ATTR_USER_ID, str_val("secret-user"));
    /* long enough for a heap copy of its own (short strings live in the pool's entries) */
    set_ok(e, p, ATTR_EMAIL, str_val("Secret.Person@Mail.com"));
    const char *anon[] = { "secret-anon" };
    set_ok(e, p, ATTR_ANONYMOUS_IDS, list_val(anon, 1));
    set_ok(e, p, ATTR_NAME, str_val("Shared Name"));
    set_ok(e, q, ATTR_NAME, str_val("Shared Name"));
    set_ok(e, p, score, num_val(99));
    const char *ptags[] = { "secret-tag", "shared-tag" };
    for (int i = 0; i < 5; i++) {
        int props[] = { url, tags };
        segd_value vals[] = { str_val(i % 2 ? "/secret-page" : "/home"), list_val(ptags, 2) };
        assert_true(engine_event_append(e, p, visit, 100 + i, 2, props, vals) >= 0);
        CHECK_OK(e);
        segd_value qv[] = { str_val("/home"), list_val(ptags + 1, 1) };
        assert_true(engine_event_append(e, q, visit, 200 + i, 2, props, qv) >= 0);
        CHECK_OK(e);
    }
    assert_int_equal(engine_event_type_events(e, visit), 10);
    assert_int_equal(engine_person_event_count(e, p, visit), 5);
    engine_memory before;
    engine_memory_usage(e, &before);

    assert_int_equal(engine_person_erase(e, p), SEGD_OK);
    CHECK_OK(e);
    assert_int_equal(engine_person_erase(e, p), SEGD_ENOTFOUND);
    assert_int_equal(engine_person_erase(e, 42), SEGD_ENOTFOUND);
    assert_false(engine_person_exists(e, p));
    assert_int_equal(engine_person_count(e), 1);
    assert_int_equal(engine_person_limit(e), 2);
    assert_int_equal(engine_person_public_id(e, p), 0);
    assert_int_equal(engine_person_by_public_id(e, 1), PERSON_NONE);
    assert_int_equal(engine_person_by_user_id(e, "secret-user", 11), PERSON_NONE);
    assert_int_equal(engine_person_by_email(e, "secret.person@mail.com", 22), PERSON_NONE);
    assert_int_equal(engine_person_by_anonymous_id(e, "secret-anon", 11), PERSON_NONE);
    /* the person's own strings are gone from the pool; shared ones stay */
    const char *gone[] = { "secret-user", "Secret.Person@Mail.com", "secret-anon", "/secret-page", "secret-tag" };
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) assert_int_equal(code_of(e, gone[i]), UINT32_MAX);
    assert_int_not_equal(code_of(e, "Shared Name"), UINT32_MAX);
    assert_int_not_equal(code_of(e, "shared-tag"), UINT32_MAX);
    assert_int_not_equal(code_of(e, "/home"), UINT32_MAX);
    /* attributes and events */
    segd_cell c;
    for (int a = 0; a < engine_attr_slots(e); a++) assert_int_equal(engine_attr_get(e, p, a, &c), 0);
    assert_int_equal(engine_attr_count_set(e, score), 0);
    assert_int_equal(engine_attr_count_set(e, ATTR_NAME), 1);
    assert_int_equal(engine_event_type_events(e, visit), 5);
    assert_int_equal(engine_event_rows(e, visit), 10);
    assert_int_equal(engine_person_event_count(e, p, visit), 0);
    engine_event_ref refs[10];
    assert_int_equal(engine_person_events(e, p, refs, 10), 0);
    const person_id *persons = engine_event_persons(e, visit);
    for (uint32_t row = 0; row < 10; row++) {
        assert_int_equal(persons[row], row % 2 ? q : PERSON_NONE);
        assert_int_equal(engine_event_prop_get(e, visit, row, url, &c), row % 2 ? 1 : 0);
        assert_int_equal(engine_event_prop_get(e, visit, row, tags, &c), row % 2 ? 1 : 0);
    }
    assert_int_equal(engine_person_events(e, q, refs, 10), 5);
    engine_memory after;
    engine_memory_usage(e, &after);
    assert_int_equal(after.people, 1);
    assert_int_equal(after.events, 5);
    assert_true(after.strings < before.strings);
    assert_true(after.string_bytes < before.string_bytes);   /* the email's heap copy */

    /* the id is never reused */
    person_id r = create(e, 1);
    assert_int_equal(r, 2);
    set_ok(e, r, ATTR_USER_ID, str_val("secret-user"));   /* the user_id is free again */
    assert_int_equal(engine_attr_set(e, p, ATTR_NAME, &(segd_value){ .type = SEGD_T_NONE }), SEGD_ENOTFOUND);
    assert_int_equal(engine_event_append(e, p, visit, 1, 0, NULL, NULL), SEGD_ENOTFOUND);

    /* erase everyone: nothing of them is left */
    assert_int_equal(engine_person_erase(e, q), 0);
    assert_int_equal(engine_person_erase(e, r), 0);
    CHECK_OK(e);
    engine_memory_usage(e, &after);
    assert_int_equal(after.strings, 0);
    assert_int_equal(after.events, 0);
    assert_int_equal(after.people, 0);
    engine_free(e);
}

/* Asserts a person's events, newest first, as (type, row) pairs. */
static void assert_events(const engine *e, person_id p, const int *types, const uint32_t *rows, size_t n)
{
    engine_event_ref refs[64];
    assert_int_equal(engine_person_events(e, p, refs, 64), n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(refs[i].type, types[i]);
        assert_int_equal(refs[i].row, rows[i]);
        assert_int_equal(refs[i].time_ms, engine_event_times(e, types[i])[rows[i]]);
    }
}

static void test_merge(void **state)
{
    (void)state;
    engine *e = engine_new(NULL);
    int score = engine_attr_declare(e, "score", SEGD_T_NUMBER);
    int plan = engine_attr_declare(e, "plan", SEGD_T_STRING);
    int visit = engine_event_type_declare(e, "visit");
    int buy = engine_event_type_declare(e, "buy");
    int amount = engine_prop_declare(e, buy, "amount", SEGD_T_NUMBER);
    person_id from = create(e, 1), into = create(e, 2), other = create(e, 3);

    set_ok(e, from, ATTR_USER_ID, str_val("u-from"));
    set_ok(e, from, ATTR_EMAIL, str_val("From@x.io"));
    set_ok(e, from, ATTR_NAME, str_val("From Name"));
    set_ok(e, from, score, num_val(5));
    set_ok(e, from, plan, str_val("pro"));
    const char *fa[] = { "a1", "a2" };
    set_ok(e, from, ATTR_ANONYMOUS_IDS, list_val(fa, 2));
    const char *ftags[] = { "t-from" };
    set_ok(e, from, ATTR_TAGS, list_val(ftags, 1));
    set_ok(e, into, ATTR_NAME, str_val("Into Name"));
    set_ok(e, into, plan, str_val("free"));
    const char *ia[] = { "a0", "a1" };   /* impossible in real life, but union must dedupe */
    /* a1 belongs to from, so into cannot take it: */
    set_expect(e, into, ATTR_ANONYMOUS_IDS, list_val(ia, 2), SEGD_ECONFLICT);
    set_ok(e, into, ATTR_ANONYMOUS_IDS, list_val(ia, 1));

    /* interleaved events: rows 0..11 of visit alternate from/into/other */
    for (int i = 0; i < 12; i++) {
        person_id who = i % 3 == 0 ? from : i % 3 == 1 ? into : other;
        assert_int_equal(engine_event_append(e, who, visit, 1000 + i, 0, NULL, NULL), i);
        CHECK_OK(e);
    }
    segd_value v = num_val(10);
    assert_int_equal(engine_event_append(e, from, buy, 500, 1, &amount, &v), 0);
    v = num_val(20);
    assert_int_equal(engine_event_append(e, from, buy, 2000, 1, &amount, &v), 1);
    CHECK_OK(e);

    assert_int_equal(engine_person_merge(e, from, from), SEGD_EINVAL);
    assert_int_equal(engine_person_merge(e, from, 9), SEGD_ENOTFOUND);
    assert_int_equal(engine_person_merge(e, 9, into), SEGD_ENOTFOUND);
    assert_int_equal(engine_person_merge(e, from, into), SEGD_OK);
    CHECK_OK(e);

    assert_false(engine_person_exists(e, from));
    assert_int_equal(engine_person_count(e), 2);
    /* attributes: into's win, missing ones filled */
    assert_str_attr(e, into, ATTR_NAME, "Into Name");
    assert_str_attr(e, into, plan, "free");
    assert_str_attr(e, into, ATTR_USER_ID, "u-from");
    assert_str_attr(e, into, ATTR_EMAIL, "From@x.io");
    const char *union_ids[] = { "a0", "a1", "a2" };
    assert_list_attr(e, into, ATTR_ANONYMOUS_IDS, union_ids, 3);
    assert_list_attr(e, into, ATTR_TAGS, ftags, 1);
    segd_cell c;
    assert_int_equal(engine_attr_get(e, into, score, &c), 1);
    assert_true(c.number == 5);
    assert_int_equal(code_of(e, "From Name"), UINT32_MAX);
    assert_int_equal(code_of(e, "pro"), UINT32_MAX);
    /* identities now lead to into */
    assert_int_equal(engine_person_by_user_id(e, "u-from", 6), into);
    assert_int_equal(engine_person_by_email(e, "from@X.IO", 9), into);
    assert_int_equal(engine_person_by_anonymous_id(e, "a0", 2), into);
    assert_int_equal(engine_person_by_anonymous_id(e, "a1", 2), into);
    assert_int_equal(engine_person_by_anonymous_id(e, "a2", 2), into);
    assert_int_equal(engine_person_by_public_id(e, 1), PERSON_NONE);
    /* events moved, chains merged */
    assert_int_equal(engine_person_event_count(e, into, visit), 8);
    assert_int_equal(engine_person_event_count(e, into, buy), 2);
    assert_int_equal(engine_person_event_count(e, from, visit), 0);
    assert_int_equal(engine_event_type_events(e, visit), 12);
    int types[] = { buy, visit, visit, visit, visit, visit, visit, visit, visit, buy };
    uint32_t rows[] = { 1, 10, 9, 7, 6, 4, 3, 1, 0, 0 };
    assert_events(e, into, types, rows, 10);
    const person_id *persons = engine_event_persons(e, visit);
    for (uint32_t row = 0; row < 12; row++) assert_int_equal(persons[row], row % 3 == 2 ? other : into);
    assert_int_equal(engine_event_prop_get(e, buy, 1, amount, &c), 1);
    assert_true(c.number == 20);

    /* merge into a person with no events of a type, and with a user_id of its own */
    set_ok(e, other, ATTR_USER_ID, str_val("u-other"));
    assert_int_equal(engine_person_merge(e, into, other), SEGD_OK);
    CHECK_OK(e);
    assert_str_attr(e, other, ATTR_USER_ID, "u-other");
    assert_int_equal(engine_person_by_user_id(e, "u-from", 6), PERSON_NONE);
    assert_int_equal(code_of(e, "u-from"), UINT32_MAX);
    assert_int_equal(engine_person_event_count(e, other, visit), 12);
    assert_int_equal(engine_person_event_count(e, other, buy), 2);
    uint32_t all_rows[14];
    int all_types[14];
    all_types[0] = buy, all_rows[0] = 1;
    for (int i = 0; i < 12; i++) all_types[i + 1] = visit, all_rows[i + 1] = (uint32_t)(11 - i);
    all_types[13] = buy, all_rows[13] = 0;
    assert_events(e, other, all_types, all_rows, 14);
    engine_free(e);
}

static void test_person_events_order(void **state)
{
    (void)state;
    engine *e = engine_new(NULL);
    int a = engine_event_type_declare(e, "a");
    int b = engine_event_type_declare(e, "b");
    person_id p = create(e, 1), q = create(e, 2);
    /* appended out of time order, with ties within and across types */
    int64_t times_a[] = { 50, 10, 50, 30, 70 };
    int64_t times_b[] = { 50, 80, 10 };
    for (int i = 0; i < 5; i++) {
        assert_int_equal(engine_event_append(e, p, a, times_a[i], 0, NULL, NULL), 2 * i);
        assert_int_equal(engine_event_append(e, q, a, 1, 0, NULL, NULL), 2 * i + 1);
    }
    for (int i = 0; i < 3; i++) assert_int_equal(engine_event_append(e, p, b, times_b[i], 0, NULL, NULL), i);
    CHECK_OK(e);
    /* time desc, then row desc, then type desc */
    int types[] = { b, a, a, b, a, a, b, a };
    uint32_t rows[] = { 1, 8, 4, 0, 0, 6, 2, 2 };
    int64_t times[] = { 80, 70, 50, 50, 50, 30, 10, 10 };
    assert_events(e, p, types, rows, 8);
    engine_event_ref refs[3];
    assert_int_equal(engine_person_events(e, p, refs, 3), 8);   /* total, beyond cap */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(refs[i].type, types[i]);
        assert_int_equal(refs[i].row, rows[i]);
        assert_int_equal(refs[i].time_ms, times[i]);
    }
    assert_int_equal(engine_person_events(e, p, NULL, 0), 8);
    assert_int_equal(engine_person_events(e, 9, refs, 3), 0);
    assert_int_equal(engine_person_event_count(e, p, a), 5);
    assert_int_equal(engine_person_event_count(e, p, b), 3);
    assert_int_equal(engine_person_event_count(e, p, 5), 0);
    assert_int_equal(engine_person_event_count(e, 9, a), 0);
    assert_int_equal(engine_event_rows(e, a), 10);
    assert_int_equal(engine_event_rows(e, 5), 0);
    assert_null(engine_event_persons(e, 5));
    assert_null(engine_event_times(e, -1));
    assert_int_equal(engine_event_times(e, a)[8], 70);
    engine_free(e);
}

static void test_event_properties(void **state)
{
    (void)state;
    engine *e = engine_new(NULL);
    int buy = engine_event_type_declare(e, "purchase");
    assert_int_equal(engine_event_type_declare(e, "purchase"), buy);
    int sku = engine_prop_declare(e, buy, "sku", SEGD_T_STRING);
    int amount = engine_prop_declare(e, buy, "amount", SEGD_T_NUMBER);
    int gift = engine_prop_declare(e, buy, "gift", SEGD_T_BOOL);
    int at = engine_prop_declare(e, buy, "at", SEGD_T_DATETIME);
    int cats = engine_prop_declare(e, buy, "cats", SEGD_T_LIST);
    int raw = engine_prop_declare(e, buy, "raw", SEGD_T_JSON);
    person_id p = create(e, 1);
    const char *cv[] = { "c1", "c2", "c1" };
    int props[] = { sku, amount, gift, at, cats, raw };
    segd_value vals[] = { str_val("SKU-1"), num_val(9.5), bool_val(1), time_val(77), list_val(cv, 3), json_val("[1]") };
    assert_int_equal(engine_event_append(e, p, buy, 1000, 6, props, vals), 0);
    CHECK_OK(e);
    int some[] = { amount, sku };
    segd_value somev[] = { num_val(1), { .type = SEGD_T_NONE } };
    assert_int_equal(engine_event_append(e, p, buy, 1001, 2, some, somev), 1);
    CHECK_OK(e);
    segd_cell c;
    assert_int_equal(engine_event_prop_get(e, buy, 0, sku, &c), 1);
    assert_string_equal(engine_string(e, c.code, NULL), "SKU-1");
    assert_int_equal(engine_event_prop_get(e, buy, 0, amount, &c), 1);
    assert_true(c.number == 9.5);
    assert_int_equal(engine_event_prop_get(e, buy, 0, gift, &c), 1);
    assert_int_equal(c.boolean, 1);
    assert_int_equal(engine_event_prop_get(e, buy, 0, at, &c), 1);
    assert_int_equal(c.time_ms, 77);
    assert_int_equal(engine_event_prop_get(e, buy, 0, cats, &c), 1);
    assert_int_equal(c.n_codes, 2);
    assert_int_equal(engine_event_prop_get(e, buy, 0, raw, &c), 1);
    assert_int_equal(c.type, SEGD_T_JSON);
    assert_int_equal(engine_event_prop_get(e, buy, 1, sku, &c), 0);
    assert_int_equal(c.type, SEGD_T_NONE);
    assert_int_equal(engine_event_prop_get(e, buy, 1, amount, &c), 1);
    assert_int_equal(engine_event_prop_get(e, buy, 2, amount, &c), 0);
    assert_int_equal(engine_event_prop_get(e, buy, 0, 99, &c), 0);
    assert_int_equal(engine_event_prop_get(e, 7, 0, 0, &c), 0);
    engine_free(e);
}

static void test_attr_drop(void **state)
{
    (void)state;
    engine *e = engine_new(NULL);
    int color = engine_attr_declare(e, "color", SEGD_T_STRING);
    int size = engine_attr_declare(e, "size", SEGD_T_NUMBER);
    person_id p = create(e, 1), q = create(e, 2);
    set_ok(e, p, color, str_val("only-in-color"));
    set_ok(e, q, color, str_val("red"));
    set_ok(e, q, ATTR_CITY, str_val("red"));
    set_ok(e, q, size, num_val(4));
    assert_int_equal(engine_attr_drop(e, color), SEGD_OK);
    CHECK_OK(e);
    assert_int_equal(engine_attr_drop(e, color), SEGD_ENOTFOUND);
    assert_int_equal(engine_attr_find(e, "color"), -1);
    assert_null(engine_attr_name(e, color));
    assert_int_equal(engine_attr_type(e, color), SEGD_T_NONE);
    assert_int_equal(engine_attr_count_set(e, color), 0);
    assert_int_equal(engine_attr_slots(e), size + 1);
    assert_int_equal(code_of(e, "only-in-color"), UINT32_MAX);
    assert_int_not_equal(code_of(e, "red"), UINT32_MAX);   /* still the city */
    segd_cell c;
    assert_int_equal(engine_attr_get(e, q, color, &c), 0);
    set_expect(e, q, color, str_val("x"), SEGD_ENOTFOUND);
    /* a new type means a new slot */
    int color2 = engine_attr_declare(e, "color", SEGD_T_NUMBER);
    assert_int_equal(color2, size + 1);
    assert_int_equal(engine_attr_slots(e), size + 2);
    set_ok(e, p, color2, num_val(1));
    assert_int_equal(engine_attr_get(e, q, size, &c), 1);
    assert_true(c.number == 4);
    engine_free(e);
}

/* ---- accounting ---- */

static void test_memory_usage(void **state)
{
    (void)state;
    engine *e = engine_new(NULL);
    int plan = engine_attr_declare(e, "plan", SEGD_T_STRING);
    int ltv = engine_attr_declare(e, "ltv", SEGD_T_NUMBER);
    int visit = engine_event_type_declare(e, "visit");
    engine_memory m0, m;
    engine_memory_usage(e, &m0);
    assert_int_equal(m0.people, 0);
    assert_true(m0.people_bytes > 0);
    enum { N = 20000, EVENTS = 200000 };
    char buf[64];
    size_t distinct = 0, long_bytes = 0;   /* all distinct strings; those of 16 bytes or more */
    for (int i = 0; i < N; i++) {
        person_id p = engine_person_create(e, 1 + (uint64_t)i);
        snprintf(buf, sizeof buf, "user-%d", i);
        segd_value v = str_val(buf);
        engine_attr_set(e, p, ATTR_USER_ID, &v);
        distinct += strlen(buf);
        snprintf(buf, sizeof buf, "user%d@example.com", i);
        v = str_val(buf);
        engine_attr_set(e, p, ATTR_EMAIL, &v);
        distinct += strlen(buf);
        long_bytes += strlen(buf);
        v = str_val(i % 2 ? "Ada" : "Bob");
        engine_attr_set(e, p, ATTR_NAME, &v);
        snprintf(buf, sizeof buf, "+33 6 %08d", i);
        v = str_val(buf);
        engine_attr_set(e, p, ATTR_PHONE, &v);
        v = str_val("FR");
        engine_attr_set(e, p, ATTR_COUNTRY, &v);
        v = str_val(i % 3 ? "Paris" : "Lyon");
        engine_attr_set(e, p, ATTR_CITY, &v);
        v = time_val(1700000000000 + i);
        engine_attr_set(e, p, ATTR_CREATED_AT, &v);
        engine_attr_set(e, p, ATTR_LAST_SEEN, &v);
        v = str_val(i % 5 ? "free" : "pro");
        engine_attr_set(e, p, plan, &v);
        v = num_val(i);
        engine_attr_set(e, p, ltv, &v);
    }
    for (int i = 0; i < EVENTS; i++)
        assert_true(engine_event_append(e, (person_id)(i * 7919 % N), visit, i, 0, NULL, NULL) >= 0);
    CHECK_OK(e);
    engine_memory_usage(e, &m);
    assert_int_equal(m.people, N);
    assert_int_equal(m.events, EVENTS);
    assert_int_equal(m.strings, 3 * N + 7);
    assert_true(m.string_bytes > distinct);
    double per_person = (double)m.people_bytes / N, per_event = (double)m.event_bytes / EVENTS;
    print_message("memory: %.1f bytes/person, %.1f bytes/event, %.1f string bytes/string\n",
                  per_person, per_event, (double)m.string_bytes / m.strings);
    assert_true(per_person <= 100);
    assert_true(per_event <= 24);
    assert_true(m.property_bytes < 4096);
    /* erasing returns memory: pages, strings, chains */
    for (int i = 0; i < N; i++) assert_int_equal(engine_person_erase(e, (person_id)i), 0);
    CHECK_OK(e);
    engine_memory after;
    engine_memory_usage(e, &after);
    assert_int_equal(after.strings, 0);
    assert_int_equal(after.events, 0);
    assert_true(after.people_bytes < m.people_bytes / 2);
    /* the pool's tables stay (short strings lived in them, now zeroed); the heap copies
     * of the long ones go */
    assert_true(after.string_bytes + long_bytes < m.string_bytes);
    engine_free(e);
}

/* ---- compaction ---- */

enum { CP_BLOCK = 1000, CP_GAP = 1500 };

static segd_value list2(const char **items, char (*buf)[32], const char *a, const char *b)
{
    snprintf(buf[0], sizeof buf[0], "%s", a);
    snprintf(buf[1], sizeof buf[1], "%s", b);
    items[0] = buf[0];
    items[1] = buf[1];
    return list_val(items, 2);
}

/* Sets an attribute without checking the whole engine (the callers check once done). */
static void put(engine *e, person_id p, int attr, segd_value v)
{
    assert_int_equal(engine_attr_set(e, p, attr, &v), SEGD_OK);
}

/* Creates people [first, first + n) at ids with gaps of whole pages (restore) or at the
 * next ids (create), with every kind of attribute, identities included. */
static void cp_people(engine *e, int first, int n, int restore)
{
    int plan = engine_attr_find(e, "plan"), ltv = engine_attr_find(e, "ltv");
    int vip = engine_attr_find(e, "vip"), doc = engine_attr_find(e, "doc");
    int groups = engine_attr_find(e, "groups"), scratch = engine_attr_find(e, "scratch");
    char buf[64], lb[2][32];
    const char *items[2];
    static const char *const plans[] = { "free", "pro", "team" };
    for (int i = first; i < first + n; i++) {
        person_id p;
        if (restore) {
            p = (person_id)(i + i / CP_BLOCK * CP_GAP);
            assert_int_equal(engine_person_restore(e, p, 1000 + (uint64_t)i), SEGD_OK);
        } else {
            p = engine_person_create(e, 1000 + (uint64_t)i);
            assert_int_not_equal(p, PERSON_NONE);
        }
        snprintf(buf, sizeof buf, "u-%d", i);
        put(e, p, ATTR_USER_ID, str_val(buf));
        snprintf(buf, sizeof buf, "User%d@Example.COM", i);
        put(e, p, ATTR_EMAIL, str_val(buf));
        if (i % 3 == 0) {
            char a[32], b[32];
            snprintf(a, sizeof a, "anon-a-%d", i);
            snprintf(b, sizeof b, "anon-b-%d", i);
            put(e, p, ATTR_ANONYMOUS_IDS, list2(items, lb, a, b));
        }
        put(e, p, ATTR_NAME, str_val(i % 2 ? "Ada" : "Bob"));
        put(e, p, ATTR_CREATED_AT, time_val(1700000000000 + i));
        put(e, p, ATTR_TAGS, list2(items, lb, i % 5 ? "tag-x" : "tag-y", i % 7 ? "tag-z" : "tag-w"));
        put(e, p, plan, str_val(plans[i % 3]));
        put(e, p, ltv, num_val(i * 1.5));
        if (i % 4 == 0) put(e, p, vip, bool_val(i % 8 == 0));
        if (i % 10 == 0) {
            snprintf(buf, sizeof buf, "{\"i\":%d}", i);
            put(e, p, doc, json_val(buf));
        }
        if (i % 6 == 0) put(e, p, groups, list2(items, lb, "g1", i % 12 ? "g2" : "g3"));
        if (scratch >= 0) put(e, p, scratch, num_val(-i));
    }
}

/* Appends n events, numbered from k0, of live people below the limit, spread over the
 * types, with values for every kind of property. */
static void cp_events(engine *e, int k0, int n)
{
    person_id limit = engine_person_limit(e), *live = malloc(limit * sizeof *live);
    uint32_t n_live = 0;
    for (person_id p = 0; p < limit; p++)
        if (engine_person_exists(e, p)) live[n_live++] = p;
    assert_true(n_live > 0);
    char buf[64], lb[2][32];
    const char *items[2];
    for (int k = k0; k < k0 + n; k++) {
        person_id p = live[(uint64_t)k * 7919 % n_live];
        int type = k % 50 == 0 ? 2 : k % 2;
        int props[6];
        segd_value vals[6];
        size_t nv = 0;
        snprintf(buf, sizeof buf, "/page/%d", k % 40);
        props[nv] = engine_prop_find(e, type, "url");
        vals[nv++] = str_val(buf);
        props[nv] = engine_prop_find(e, type, "amount");
        vals[nv++] = num_val(k);
        props[nv] = engine_prop_find(e, type, "ok");
        vals[nv++] = bool_val(k % 2);
        props[nv] = engine_prop_find(e, type, "at");
        vals[nv++] = k % 3 ? time_val(k) : (segd_value){ .type = SEGD_T_NONE };
        props[nv] = engine_prop_find(e, type, "labels");
        vals[nv++] = list2(items, lb, k % 4 ? "l1" : "l2", "l3");
        char raw[32];
        snprintf(raw, sizeof raw, "[%d]", k);
        props[nv] = engine_prop_find(e, type, "raw");
        vals[nv++] = k % 97 == 0 ? json_val(raw) : (segd_value){ .type = SEGD_T_NONE };
        assert_true(engine_event_append(e, p, type, 1700000000000 + k % 1000, nv, props, vals) >= 0);
    }
    free(live);
    CHECK_OK(e);
}

/* The first phase of the history both engines go through before one is compacted:
 * people across gapped pages, events, erasures (holes, emptied trailing pages, freed
 * strings), merges, a dropped attribute, strings freed at the top of the pool. */
static void cp_build(engine *e)
{
    assert_true(engine_attr_declare(e, "plan", SEGD_T_STRING) >= 0);
    assert_true(engine_attr_declare(e, "ltv", SEGD_T_NUMBER) >= 0);
    assert_true(engine_attr_declare(e, "vip", SEGD_T_BOOL) >= 0);
    assert_true(engine_attr_declare(e, "doc", SEGD_T_JSON) >= 0);
    assert_true(engine_attr_declare(e, "groups", SEGD_T_LIST) >= 0);
    assert_true(engine_attr_declare(e, "scratch", SEGD_T_NUMBER) >= 0);
    static const char *const types[] = { "view", "buy", "rare" };
    for (int t = 0; t < 3; t++) {
        assert_int_equal(engine_event_type_declare(e, types[t]), t);
        assert_true(engine_prop_declare(e, t, "url", SEGD_T_STRING) >= 0);
        assert_true(engine_prop_declare(e, t, "amount", SEGD_T_NUMBER) >= 0);
        assert_true(engine_prop_declare(e, t, "ok", SEGD_T_BOOL) >= 0);
        assert_true(engine_prop_declare(e, t, "at", SEGD_T_DATETIME) >= 0);
        assert_true(engine_prop_declare(e, t, "labels", SEGD_T_LIST) >= 0);
        assert_true(engine_prop_declare(e, t, "raw", SEGD_T_JSON) >= 0);
    }
    cp_people(e, 0, 3 * CP_BLOCK, 1);
    CHECK_OK(e);
    cp_events(e, 0, 12000);
    /* erasures: scattered, and the whole last block (its pages become empty) */
    for (int i = 0; i < 3 * CP_BLOCK; i++)
        if (i % 11 == 4 || i >= 2 * CP_BLOCK) {
            assert_int_equal(engine_person_erase(e, (person_id)(i + i / CP_BLOCK * CP_GAP)), SEGD_OK);
        }
    CHECK_OK(e);
    for (int i = 0; i < 2 * CP_BLOCK; i += 13) {
        person_id from = (person_id)(i + i / CP_BLOCK * CP_GAP), into = from + 1;
        if (engine_person_exists(e, from) && engine_person_exists(e, into))
            assert_int_equal(engine_person_merge(e, from, into), SEGD_OK);
    }
    CHECK_OK(e);
    assert_int_equal(engine_attr_drop(e, engine_attr_find(e, "scratch")), SEGD_OK);
    /* the newest strings go again, leaving free codes at the top of the pool */
    for (int i = 0; i < 50; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "temporary-%d", i);
        set_ok(e, 1, ATTR_PHONE, str_val(buf));
    }
    clear_ok(e, 1, ATTR_PHONE);
}

/* The second phase, after the compaction: growth from fitted arrays and tables, reuse of
 * free codes, new catalog entries, more erasures and merges. */
static void cp_continue(engine *e)
{
    cp_people(e, 5000, 700, 0);
    CHECK_OK(e);
    cp_events(e, 12000, 5000);
    assert_true(engine_attr_declare(e, "late", SEGD_T_STRING) >= 0);
    set_ok(e, 2, engine_attr_find(e, "late"), str_val("late value"));
    int late = engine_event_type_declare(e, "late");
    int note = engine_prop_declare(e, late, "note", SEGD_T_STRING);
    segd_value v = str_val("a late note");
    assert_true(engine_event_append(e, 2, late, 5, 1, &note, &v) >= 0);
    for (person_id p = 0; p < engine_person_limit(e); p += 17)
        if (engine_person_exists(e, p)) assert_int_equal(engine_person_erase(e, p), SEGD_OK);
    assert_int_equal(engine_person_merge(e, 3, 5), SEGD_OK);
    CHECK_OK(e);
}

/* Asserts two cells of two engines hold the same value (strings compared by bytes:
 * codes may differ once one pool has reused its free codes in another order). */
static void assert_same_cell(const engine *a, const segd_cell *x, const engine *b, const segd_cell *y)
{
    assert_int_equal(x->type, y->type);
    switch (x->type) {
    case SEGD_T_NONE:
        break;
    case SEGD_T_STRING: case SEGD_T_JSON:
        assert_string_equal(engine_string(a, x->code, NULL), engine_string(b, y->code, NULL));
        break;
    case SEGD_T_NUMBER:
        assert_true(x->number == y->number);
        break;
    case SEGD_T_BOOL:
        assert_int_equal(x->boolean, y->boolean);
        break;
    case SEGD_T_DATETIME:
        assert_int_equal(x->time_ms, y->time_ms);
        break;
    case SEGD_T_LIST:
        assert_int_equal(x->n_codes, y->n_codes);
        for (uint32_t k = 0; k < x->n_codes; k++)
            assert_string_equal(engine_string(a, x->codes[k], NULL), engine_string(b, y->codes[k], NULL));
        break;
    default:
        fail_msg("bad cell type %d", (int)x->type);
    }
}

/* Asserts that b holds exactly what a holds: people, attributes, identity lookups,
 * events with their properties, per-person chains. */
static void assert_same_engine(const engine *a, const engine *b)
{
    person_id limit = engine_person_limit(a);
    assert_int_equal(engine_person_limit(b), limit);
    assert_int_equal(engine_person_count(b), engine_person_count(a));
    assert_int_equal(engine_attr_slots(b), engine_attr_slots(a));
    int types = engine_event_type_count(a);
    assert_int_equal(engine_event_type_count(b), types);
    static engine_event_ref ra[256], rb[256];
    for (person_id p = 0; p < limit; p++) {
        assert_int_equal(engine_person_exists(b, p), engine_person_exists(a, p));
        assert_int_equal(engine_person_public_id(b, p), engine_person_public_id(a, p));
        if (!engine_person_exists(a, p)) continue;
        assert_int_equal(engine_person_by_public_id(b, engine_person_public_id(a, p)), p);
        for (int attr = 0; attr < engine_attr_slots(a); attr++) {
            segd_cell x, y;
            assert_int_equal(engine_attr_get(b, p, attr, &y), engine_attr_get(a, p, attr, &x));
            assert_same_cell(a, &x, b, &y);
        }
        segd_cell c;
        size_t len;
        if (engine_attr_get(b, p, ATTR_USER_ID, &c)) {
            const char *s = engine_string(b, c.code, &len);
            assert_int_equal(engine_person_by_user_id(b, s, len), p);
        }
        if (engine_attr_get(b, p, ATTR_EMAIL, &c)) {
            const char *s = engine_string(b, c.code, &len);
            assert_int_equal(engine_person_by_email(b, s, len), engine_person_by_email(a, s, len));
        }
        if (engine_attr_get(b, p, ATTR_ANONYMOUS_IDS, &c))
            for (uint32_t k = 0; k < c.n_codes; k++) {
                const char *s = engine_string(b, c.codes[k], &len);
                assert_int_equal(engine_person_by_anonymous_id(b, s, len), p);
            }
        size_t n = engine_person_events(a, p, ra, 256);
        assert_true(n <= 256);
        assert_int_equal(engine_person_events(b, p, rb, 256), n);
        assert_memory_equal(ra, rb, n * sizeof *ra);
        for (int t = 0; t < types; t++)
            assert_int_equal(engine_person_event_count(b, p, t), engine_person_event_count(a, p, t));
    }
    for (int t = 0; t < types; t++) {
        uint32_t rows = engine_event_rows(a, t);
        assert_int_equal(engine_event_rows(b, t), rows);
        assert_int_equal(engine_event_type_events(b, t), engine_event_type_events(a, t));
        assert_string_equal(engine_event_type_name(b, t), engine_event_type_name(a, t));
        if (rows) {
            assert_memory_equal(engine_event_persons(b, t), engine_event_persons(a, t), rows * sizeof(person_id));
            assert_memory_equal(engine_event_times(b, t), engine_event_times(a, t), rows * sizeof(int64_t));
        }
        int props = engine_prop_count(a, t);
        assert_int_equal(engine_prop_count(b, t), props);
        for (uint32_t row = 0; row < rows; row++)
            for (int prop = 0; prop < props; prop++) {
                segd_cell x, y;
                assert_int_equal(engine_event_prop_get(b, t, row, prop, &y),
                                 engine_event_prop_get(a, t, row, prop, &x));
                assert_same_cell(a, &x, b, &y);
            }
    }
    engine_memory ma, mb;
    engine_memory_usage(a, &ma);
    engine_memory_usage(b, &mb);
    assert_int_equal(mb.people, ma.people);
    assert_int_equal(mb.events, ma.events);
    assert_int_equal(mb.strings, ma.strings);
}

/* Asserts that compacting does not grow any part of the engine, and that compacting
 * again changes nothing. Returns the memory after. */
static engine_memory compact_ok(engine *e)
{
    engine_memory before, after, again;
    engine_memory_usage(e, &before);
    engine_compact(e);
    CHECK_OK(e);
    engine_memory_usage(e, &after);
    assert_true(after.people_bytes <= before.people_bytes);
    assert_true(after.string_bytes <= before.string_bytes);
    assert_true(after.event_bytes <= before.event_bytes);
    assert_true(after.property_bytes <= before.property_bytes);
    engine_compact(e);
    CHECK_OK(e);
    engine_memory_usage(e, &again);
    assert_memory_equal(&again, &after, sizeof after);
    return after;
}

static void test_compact(void **state)
{
    (void)state;
    /* an empty engine compacts, and grows again from nothing */
    engine *e = engine_new(NULL);
    compact_ok(e);
    person_id p = create(e, 1);
    set_ok(e, p, ATTR_USER_ID, str_val("only"));
    int visit = engine_event_type_declare(e, "visit");
    assert_int_equal(engine_event_append(e, p, visit, 1, 0, NULL, NULL), 0);
    CHECK_OK(e);
    assert_int_equal(engine_person_by_user_id(e, "only", 4), p);
    engine_free(e);

    /* a twin that is never compacted is the reference */
    engine *ref = engine_new(NULL), *cmp = engine_new(NULL);
    cp_build(ref);
    cp_build(cmp);
    engine_memory before;
    engine_memory_usage(cmp, &before);
    engine_memory after = compact_ok(cmp);
    print_message("compact: people %zu -> %zu, strings %zu -> %zu, events %zu -> %zu, "
                  "properties %zu -> %zu bytes\n", before.people_bytes, after.people_bytes,
                  before.string_bytes, after.string_bytes, before.event_bytes, after.event_bytes,
                  before.property_bytes, after.property_bytes);
    /* growth leaves spare that compaction gives back: row arrays, head tables, pool */
    assert_true(after.event_bytes < before.event_bytes);
    assert_true(after.string_bytes < before.string_bytes);
    assert_true(after.people_bytes + after.string_bytes + after.event_bytes + after.property_bytes
                < before.people_bytes + before.string_bytes + before.event_bytes + before.property_bytes);
    assert_same_engine(ref, cmp);

    /* the same mutations afterwards give the same engine */
    cp_continue(ref);
    cp_continue(cmp);
    assert_same_engine(ref, cmp);
    compact_ok(cmp);
    assert_same_engine(ref, cmp);

    /* with everyone erased, the head tables go; the rows stay as holes */
    for (person_id q = 0; q < engine_person_limit(ref); q++)
        if (engine_person_exists(ref, q)) {
            assert_int_equal(engine_person_erase(ref, q), SEGD_OK);
            assert_int_equal(engine_person_erase(cmp, q), SEGD_OK);
        }
    CHECK_OK(cmp);
    after = compact_ok(cmp);
    assert_int_equal(after.strings, 0);
    assert_same_engine(ref, cmp);
    person_id r = create(ref, 99), s = create(cmp, 99);
    assert_int_equal(r, s);
    assert_true(engine_event_append(ref, r, 0, 1, 0, NULL, NULL) >= 0);
    assert_true(engine_event_append(cmp, s, 0, 1, 0, NULL, NULL) >= 0);
    CHECK_OK(cmp);
    assert_same_engine(ref, cmp);
    engine_free(cmp);
    engine_free(ref);
}

/* ---- reserving ---- */

/* Restores people [from, to) as a rebuild does, each with 3 strings of their own (a
 * short user_id and phone, a long email) and one of 2 shared names; checks the engine
 * every 500 people. */
static void reserve_load(engine *e, int from, int to)
{
    char buf[64];
    for (int i = from; i < to; i++) {
        person_id p = (person_id)i;
        assert_int_equal(engine_person_restore(e, p, 1000 + (uint64_t)i), SEGD_OK);
        snprintf(buf, sizeof buf, "u%d", i);
        put(e, p, ATTR_USER_ID, str_val(buf));
        snprintf(buf, sizeof buf, "person%d@example.com", i);
        put(e, p, ATTR_EMAIL, str_val(buf));
        put(e, p, ATTR_NAME, str_val(i % 2 ? "Ada" : "Bob"));
        snprintf(buf, sizeof buf, "+49 %09d", i);
        put(e, p, ATTR_PHONE, str_val(buf));
        put(e, p, ATTR_CREATED_AT, time_val(1700000000000 + i));
        if (i % 500 == 0) CHECK_OK(e);
    }
    CHECK_OK(e);
}

/* engine_reserve sizes the tables ahead: a load of the reserved size never regrows them
 * and leaves no spare in them, and gives the same engine as a load without the hint.
 * A hint is never required: loading past it, reserving less than the engine holds, or
 * reserving a loaded engine works as before. */
static void test_reserve(void **state)
{
    (void)state;
    enum { N = 3000, STRINGS = 3 * N + 2 };
    engine_memory fresh, m;
    engine *plain = engine_new(NULL), *hinted = engine_new(NULL);
    engine_memory_usage(hinted, &fresh);
    engine_reserve(hinted, 0, 0);                /* nothing to size for: nothing allocated */
    engine_memory_usage(hinted, &m);
    assert_memory_equal(&m, &fresh, sizeof m);
    engine_reserve(hinted, N, STRINGS);
    CHECK_OK(hinted);
    engine_memory_usage(hinted, &m);
    assert_int_equal(m.people, 0);
    assert_int_equal(m.strings, 0);
    assert_true(m.people_bytes >= fresh.people_bytes + 3 * 4 * N);          /* identity indexes */
    assert_true(m.string_bytes >= fresh.string_bytes + (size_t)STRINGS * 8); /* pool tables */

    reserve_load(plain, 0, 1);
    reserve_load(hinted, 0, 1);
    /* white box: short strings live in the pool's entry array, so while this pointer
     * stays put the array has not moved (it was not regrown) */
    const char *u0 = engine_string(hinted, code_of(hinted, "u0"), NULL);
    reserve_load(plain, 1, N);
    reserve_load(hinted, 1, N);
    assert_ptr_equal(engine_string(hinted, code_of(hinted, "u0"), NULL), u0);
    assert_same_engine(plain, hinted);
    for (int i = 0; i < N; i += 97) {
        char buf[64];
        snprintf(buf, sizeof buf, "u%d", i);
        assert_int_equal(engine_person_by_user_id(hinted, buf, strlen(buf)), i);
        snprintf(buf, sizeof buf, "PERSON%d@example.com", i);
        assert_int_equal(engine_person_by_email(hinted, buf, strlen(buf)), i);
        assert_int_equal(engine_person_by_public_id(hinted, 1000 + (uint64_t)i), i);
    }

    /* an exact hint leaves what compaction would: the pool is already fitted, and the
     * identity indexes hold less spare than growth left in the plain engine's */
    engine_memory hinted_mem, plain_mem;
    engine_memory_usage(hinted, &hinted_mem);
    engine_memory_usage(plain, &plain_mem);
    assert_int_equal(hinted_mem.strings, STRINGS);
    assert_true(hinted_mem.people_bytes < plain_mem.people_bytes);
    assert_true(hinted_mem.string_bytes < plain_mem.string_bytes);
    engine_memory hinted_fit = compact_ok(hinted), plain_fit = compact_ok(plain);
    assert_int_equal(hinted_fit.string_bytes, hinted_mem.string_bytes);
    assert_int_equal(hinted_fit.people_bytes, plain_fit.people_bytes);
    assert_int_equal(hinted_fit.string_bytes, plain_fit.string_bytes);

    /* a hint below what the engine holds changes nothing */
    engine_reserve(hinted, N / 2, STRINGS / 2);
    engine_memory_usage(hinted, &m);
    assert_memory_equal(&m, &hinted_fit, sizeof m);

    /* reserving a loaded engine rehashes what it holds; loading past a hint grows as usual */
    engine_reserve(hinted, 2 * N, 2 * STRINGS);
    CHECK_OK(hinted);
    assert_same_engine(plain, hinted);
    reserve_load(plain, N, 3 * N);
    reserve_load(hinted, N, 3 * N);
    assert_same_engine(plain, hinted);
    compact_ok(hinted);
    assert_same_engine(plain, hinted);
    engine_free(hinted);
    engine_free(plain);
}

/* ---- randomized run against a reference model ---- */

enum { MAX_IDS = 400, N_STR = 12, N_EMAIL = 10, MAX_ROWS = 4096, N_TYPES = 3, MAX_LIST = 4, N_IDS = 8 };

static const char *const rnd_strings[N_STR] = {
    "s0", "s1", "s2", "s3", "s4", "s5", "alpha", "beta", "gamma", "", "ünï", "Z",
};
/* emails and the fold class each belongs to */
static const struct { const char *s; int cls; } rnd_emails[N_EMAIL] = {
    { "ann@x.io", 0 }, { "ANN@X.IO", 0 }, { "Ann@x.io", 0 },
    { "ünï@x.io", 1 }, { "ÜNÏ@X.IO", 1 }, { "U\xcc\x88NI\xcc\x88@x.io", 1 },
    { "bob@x.io", 2 }, { "\xe2\x84\xaa@x.io", 3 }, { "k@x.io", 3 }, { "K@X.IO", 3 },
};

/* Logical attributes of the model: a fixed engine index or a droppable custom one. */
enum { M_USER, M_ANON, M_EMAIL, M_NAME, M_CREATED, M_TAGS, M_SCORE, M_FLAG, M_DOC, M_SHAPE, M_ATTRS };

typedef struct mcell {
    int set;
    segd_type type;
    double number;
    int64_t time;
    int boolean;
    int str;                 /* index into rnd_strings (or rnd_emails for M_EMAIL) */
    int list[N_IDS];         /* indexes into rnd_strings, de-duplicated (merges unite
                                anonymous ids: at most N_IDS distinct ones) */
    int n;
} mcell;

typedef struct mperson {
    int live;
    uint64_t pub;
    mcell attrs[M_ATTRS];
} mperson;

typedef struct mrow {
    person_id person;
    int64_t time;
    int has_sku;
    int sku;
} mrow;

typedef struct model {
    mperson people[MAX_IDS];
    person_id limit;
    int attr_index[M_ATTRS];
    segd_type attr_type[M_ATTRS];
    mrow rows[N_TYPES][MAX_ROWS];
    uint32_t n_rows[N_TYPES];
    int types[N_TYPES];
    int sku_prop[N_TYPES];
    uint64_t next_pub;
    uint64_t rng;
    unsigned n_conflicts, n_merges, n_erases, n_restores, n_redeclares;   /* coverage */
} model;

static uint64_t rnd(model *m)
{
    m->rng ^= m->rng << 13;
    m->rng ^= m->rng >> 7;
    m->rng ^= m->rng << 17;
    return m->rng;
}

static int rnd_below(model *m, int n)
{
    return (int)(rnd(m) % (uint64_t)n);
}

/* A random value of a type for a logical attribute, written into both forms. */
static void random_value(model *m, int ma, segd_type type, mcell *cell, segd_value *v, const char **items)
{
    memset(cell, 0, sizeof *cell);
    memset(v, 0, sizeof *v);
    cell->set = 1;
    cell->type = v->type = type;
    switch (type) {
    case SEGD_T_STRING: case SEGD_T_JSON:
        if (ma == M_EMAIL) {
            cell->str = rnd_below(m, N_EMAIL);
            v->str = rnd_emails[cell->str].s;
        } else {
            cell->str = rnd_below(m, ma == M_USER ? N_IDS : N_STR);
            v->str = rnd_strings[cell->str];
        }
        v->str_len = strlen(v->str);
        break;
    case SEGD_T_NUMBER: cell->number = v->number = rnd_below(m, 100) - 50; break;
    case SEGD_T_BOOL: cell->boolean = v->boolean = rnd_below(m, 2); break;
    case SEGD_T_DATETIME: cell->time = v->time_ms = (int64_t)rnd_below(m, 1000) * 1000 - 5000; break;
    case SEGD_T_LIST: {
        int n = rnd_below(m, MAX_LIST + 1);
        for (int k = 0; k < n; k++) {
            int s = rnd_below(m, ma == M_ANON ? N_IDS : N_STR);
            items[k] = rnd_strings[s];
            int dup = 0;
            for (int j = 0; j < cell->n; j++) dup |= cell->list[j] == s;
            if (!dup) cell->list[cell->n++] = s;
        }
        v->items = items;
        v->n_items = (size_t)n;
        break;
    }
    default: fail();
    }
}

static void model_init(model *m, engine *e, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->rng = seed ? seed : 88172645463325252ULL;
    m->next_pub = 1;
    int fixed[] = { ATTR_USER_ID, ATTR_ANONYMOUS_IDS, ATTR_EMAIL, ATTR_NAME, ATTR_CREATED_AT, ATTR_TAGS };
    for (int a = 0; a < 6; a++) {
        m->attr_index[a] = fixed[a];
        m->attr_type[a] = engine_attr_type(e, fixed[a]);
    }
    m->attr_index[M_SCORE] = engine_attr_declare(e, "score", m->attr_type[M_SCORE] = SEGD_T_NUMBER);
    m->attr_index[M_FLAG] = engine_attr_declare(e, "flag", m->attr_type[M_FLAG] = SEGD_T_BOOL);
    m->attr_index[M_DOC] = engine_attr_declare(e, "doc", m->attr_type[M_DOC] = SEGD_T_JSON);
    m->attr_index[M_SHAPE] = engine_attr_declare(e, "shape", m->attr_type[M_SHAPE] = SEGD_T_STRING);
    const char *names[N_TYPES] = { "visit", "buy", "click" };
    for (int t = 0; t < N_TYPES; t++) {
        m->types[t] = engine_event_type_declare(e, names[t]);
        m->sku_prop[t] = engine_prop_declare(e, m->types[t], "sku", SEGD_T_STRING);
    }
}

static int model_live(const model *m, person_id p)
{
    return p < MAX_IDS && m->people[p].live;
}

/* The live holder of a user_id / anonymous id string index, or PERSON_NONE. */
static person_id model_user_holder(const model *m, int s)
{
    for (person_id p = 0; p < m->limit; p++)
        if (m->people[p].live && m->people[p].attrs[M_USER].set && m->people[p].attrs[M_USER].str == s) return p;
    return PERSON_NONE;
}

static person_id model_anon_holder(const model *m, int s)
{
    for (person_id p = 0; p < m->limit; p++) {
        const mcell *c = &m->people[p].attrs[M_ANON];
        if (!m->people[p].live || !c->set) continue;
        for (int k = 0; k < c->n; k++)
            if (c->list[k] == s) return p;
    }
    return PERSON_NONE;
}

static person_id model_email_first(const model *m, int cls)
{
    for (person_id p = 0; p < m->limit; p++) {
        const mcell *c = &m->people[p].attrs[M_EMAIL];
        if (m->people[p].live && c->set && rnd_emails[c->str].cls == cls) return p;
    }
    return PERSON_NONE;
}

static void model_erase(model *m, person_id p)
{
    memset(&m->people[p].attrs, 0, sizeof m->people[p].attrs);
    m->people[p].live = 0;
    for (int t = 0; t < N_TYPES; t++)
        for (uint32_t r = 0; r < m->n_rows[t]; r++)
            if (m->rows[t][r].person == p) m->rows[t][r] = (mrow){ PERSON_NONE, 0, 0, 0 };
}

/* A model event with its owner, for sorting by person then newest first. */
typedef struct mref {
    person_id person;
    engine_event_ref ref;
} mref;

static int cmp_mref(const void *a, const void *b)
{
    const mref *x = a, *y = b;
    if (x->person != y->person) return x->person < y->person ? -1 : 1;
    if (x->ref.time_ms != y->ref.time_ms) return x->ref.time_ms > y->ref.time_ms ? -1 : 1;
    if (x->ref.row != y->ref.row) return x->ref.row > y->ref.row ? -1 : 1;
    return (x->ref.type < y->ref.type) - (x->ref.type > y->ref.type);
}

/* Compares each live person's event counts and newest-first list with the model. */
static void model_compare_events(const model *m, const engine *e)
{
    static mref want[N_TYPES * MAX_ROWS];
    static engine_event_ref got[N_TYPES * MAX_ROWS];
    static uint32_t counts[MAX_IDS][N_TYPES];
    size_t n = 0;
    memset(counts, 0, sizeof counts);
    for (int t = 0; t < N_TYPES; t++)
        for (uint32_t r = 0; r < m->n_rows[t]; r++) {
            const mrow *mr = &m->rows[t][r];
            if (mr->person == PERSON_NONE) continue;
            counts[mr->person][t]++;
            want[n++] = (mref){ mr->person, { m->types[t], r, mr->time } };
        }
    qsort(want, n, sizeof *want, cmp_mref);
    size_t i = 0;
    for (person_id p = 0; p < m->limit; p++) {
        if (!m->people[p].live) continue;
        for (int t = 0; t < N_TYPES; t++)
            assert_int_equal(engine_person_event_count(e, p, m->types[t]), counts[p][t]);
        while (i < n && want[i].person < p) i++;
        size_t k = engine_person_events(e, p, got, sizeof got / sizeof *got);
        for (size_t j = 0; j < k; j++, i++) {
            assert_true(i < n);
            assert_int_equal(want[i].person, p);
            assert_int_equal(got[j].type, want[i].ref.type);
            assert_int_equal(got[j].row, want[i].ref.row);
            assert_int_equal(got[j].time_ms, want[i].ref.time_ms);
        }
        assert_true(i == n || want[i].person != p);
    }
}

/* Compares every person, index and event of the engine with the model. */
static void model_compare(const model *m, const engine *e)
{
    uint32_t live = 0;
    assert_int_equal(engine_person_limit(e), m->limit);
    for (person_id p = 0; p < m->limit; p++) {
        const mperson *mp = &m->people[p];
        assert_int_equal(engine_person_exists(e, p), mp->live);
        if (!mp->live) continue;
        live++;
        assert_int_equal(engine_person_public_id(e, p), mp->pub);
        assert_int_equal(engine_person_by_public_id(e, mp->pub), p);
        for (int ma = 0; ma < M_ATTRS; ma++) {
            const mcell *mc = &mp->attrs[ma];
            segd_cell c;
            int set = engine_attr_get(e, p, m->attr_index[ma], &c);
            assert_int_equal(set, mc->set);
            if (!set) continue;
            assert_int_equal(c.type, m->attr_type[ma]);
            switch (c.type) {
            case SEGD_T_STRING: case SEGD_T_JSON:
                assert_string_equal(engine_string(e, c.code, NULL),
                                    ma == M_EMAIL ? rnd_emails[mc->str].s : rnd_strings[mc->str]);
                break;
            case SEGD_T_NUMBER: assert_true(c.number == mc->number); break;
            case SEGD_T_BOOL: assert_int_equal(c.boolean, mc->boolean); break;
            case SEGD_T_DATETIME: assert_int_equal(c.time_ms, mc->time); break;
            case SEGD_T_LIST:
                assert_int_equal(c.n_codes, mc->n);
                for (int k = 0; k < mc->n; k++)
                    assert_string_equal(engine_string(e, c.codes[k], NULL), rnd_strings[mc->list[k]]);
                break;
            default: fail();
            }
        }
    }
    assert_int_equal(engine_person_count(e), live);
    model_compare_events(m, e);
    for (int s = 0; s < N_STR; s++) {
        const char *str = rnd_strings[s];
        assert_int_equal(engine_person_by_user_id(e, str, strlen(str)), model_user_holder(m, s));
        assert_int_equal(engine_person_by_anonymous_id(e, str, strlen(str)), model_anon_holder(m, s));
    }
    for (int i = 0; i < N_EMAIL; i++)
        assert_int_equal(engine_person_by_email(e, rnd_emails[i].s, strlen(rnd_emails[i].s)),
                         model_email_first(m, rnd_emails[i].cls));
    for (int t = 0; t < N_TYPES; t++) {
        uint64_t live_rows = 0;
        assert_int_equal(engine_event_rows(e, m->types[t]), m->n_rows[t]);
        const person_id *persons = engine_event_persons(e, m->types[t]);
        const int64_t *times = engine_event_times(e, m->types[t]);
        for (uint32_t r = 0; r < m->n_rows[t]; r++) {
            const mrow *mr = &m->rows[t][r];
            assert_int_equal(persons[r], mr->person);
            live_rows += mr->person != PERSON_NONE;
            if (mr->person == PERSON_NONE) continue;
            assert_int_equal(times[r], mr->time);
            segd_cell c;
            assert_int_equal(engine_event_prop_get(e, m->types[t], r, m->sku_prop[t], &c), mr->has_sku);
            if (mr->has_sku) assert_string_equal(engine_string(e, c.code, NULL), rnd_strings[mr->sku]);
        }
        assert_int_equal(engine_event_type_events(e, m->types[t]), live_rows);
    }
}

/* A random id: mostly live, sometimes erased or never created. */
static person_id random_person(model *m)
{
    if (m->limit == 0 || rnd_below(m, 10) == 0) return (person_id)rnd_below(m, MAX_IDS);
    return (person_id)rnd_below(m, (int)m->limit);
}

static void op_set(model *m, engine *e)
{
    person_id p = random_person(m);
    int ma = rnd_below(m, M_ATTRS);
    int attr = m->attr_index[ma];
    mcell cell;
    segd_value v;
    const char *items[MAX_LIST];
    int rc = 0;
    if (rnd_below(m, 6) == 0) {
        memset(&cell, 0, sizeof cell);
        rc = engine_attr_set(e, p, attr, NULL);
    } else {
        segd_type type = m->attr_type[ma];
        if (rnd_below(m, 12) == 0) type = type == SEGD_T_NUMBER ? SEGD_T_STRING : SEGD_T_NUMBER;
        random_value(m, ma, type, &cell, &v, items);
        rc = engine_attr_set(e, p, attr, &v);
        if (model_live(m, p) && type != m->attr_type[ma]) {
            assert_int_equal(rc, SEGD_ECONFLICT);
            return;
        }
    }
    if (!model_live(m, p)) {
        assert_int_equal(rc, SEGD_ENOTFOUND);
        return;
    }
    int conflict = 0;
    if (cell.set && ma == M_USER) {
        person_id h = model_user_holder(m, cell.str);
        conflict = h != PERSON_NONE && h != p;
    }
    if (cell.set && ma == M_ANON)
        for (int k = 0; k < cell.n; k++) {
            person_id h = model_anon_holder(m, cell.list[k]);
            conflict |= h != PERSON_NONE && h != p;
        }
    assert_int_equal(rc, conflict ? SEGD_ECONFLICT : SEGD_OK);
    m->n_conflicts += (unsigned)conflict;
    if (!conflict) m->people[p].attrs[ma] = cell;
}

static void op_create(model *m, engine *e)
{
    if (m->limit >= MAX_IDS - 8) return;
    uint64_t pub = m->next_pub++ * 1000003;
    if (rnd_below(m, 4) == 0) {
        person_id id = (person_id)rnd_below(m, (int)m->limit + 3);
        int rc = engine_person_restore(e, id, pub);
        assert_int_equal(rc, model_live(m, id) ? SEGD_ECONFLICT : SEGD_OK);
        if (rc) return;
        m->n_restores++;
        m->people[id].live = 1;
        m->people[id].pub = pub;
        if (id >= m->limit) m->limit = id + 1;
        return;
    }
    person_id p = engine_person_create(e, pub);
    assert_int_equal(p, m->limit);
    m->people[p].live = 1;
    m->people[p].pub = pub;
    m->limit++;
}

static void op_erase(model *m, engine *e)
{
    person_id p = random_person(m);
    assert_int_equal(engine_person_erase(e, p), model_live(m, p) ? SEGD_OK : SEGD_ENOTFOUND);
    if (model_live(m, p)) {
        model_erase(m, p);
        m->n_erases++;
    }
}

static void op_merge(model *m, engine *e)
{
    person_id from = random_person(m), into = random_person(m);
    int rc = engine_person_merge(e, from, into);
    if (!model_live(m, from) || !model_live(m, into)) {
        assert_int_equal(rc, SEGD_ENOTFOUND);
        return;
    }
    if (from == into) {
        assert_int_equal(rc, SEGD_EINVAL);
        return;
    }
    assert_int_equal(rc, SEGD_OK);
    m->n_merges++;
    mperson *f = &m->people[from], *t = &m->people[into];
    mcell *fa = &f->attrs[M_ANON], *ta = &t->attrs[M_ANON];
    if (fa->set) {
        if (!ta->set) *ta = (mcell){ .set = 1, .type = SEGD_T_LIST };
        for (int k = 0; k < fa->n; k++) {
            int dup = 0;
            for (int j = 0; j < ta->n; j++) dup |= ta->list[j] == fa->list[k];
            if (!dup) {
                assert_true(ta->n < N_IDS);
                ta->list[ta->n++] = fa->list[k];
            }
        }
    }
    for (int ma = 0; ma < M_ATTRS; ma++)
        if (ma != M_ANON && f->attrs[ma].set && !t->attrs[ma].set) t->attrs[ma] = f->attrs[ma];
    for (int tt = 0; tt < N_TYPES; tt++)
        for (uint32_t r = 0; r < m->n_rows[tt]; r++)
            if (m->rows[tt][r].person == from) m->rows[tt][r].person = into;
    model_erase(m, from);
}

static void op_append(model *m, engine *e)
{
    person_id p = random_person(m);
    int t = rnd_below(m, N_TYPES);
    if (m->n_rows[t] >= MAX_ROWS) return;
    int64_t time = rnd_below(m, 50);
    int has = rnd_below(m, 2), s = rnd_below(m, N_STR);
    segd_value v = has ? str_val(rnd_strings[s]) : (segd_value){ .type = SEGD_T_NONE };
    int64_t row = engine_event_append(e, p, m->types[t], time, 1, &m->sku_prop[t], &v);
    if (!model_live(m, p)) {
        assert_int_equal(row, SEGD_ENOTFOUND);
        return;
    }
    assert_int_equal(row, m->n_rows[t]);
    m->rows[t][m->n_rows[t]++] = (mrow){ p, time, has, s };
}

static void op_redeclare(model *m, engine *e)
{
    int ma = rnd_below(m, 2) ? M_SCORE : M_SHAPE;
    assert_int_equal(engine_attr_drop(e, m->attr_index[ma]), SEGD_OK);
    segd_type type = m->attr_type[ma] == SEGD_T_NUMBER ? SEGD_T_STRING : SEGD_T_NUMBER;
    int idx = engine_attr_declare(e, ma == M_SCORE ? "score" : "shape", type);
    assert_true(idx > m->attr_index[ma]);
    m->attr_index[ma] = idx;
    m->attr_type[ma] = type;
    m->n_redeclares++;
    for (person_id p = 0; p < MAX_IDS; p++) memset(&m->people[p].attrs[ma], 0, sizeof(mcell));
}

static void test_random_model(void **state)
{
    (void)state;
    static model m;   /* large: keep it off the stack */
    const char *env = getenv("SEGD_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : 20240601;
    const char *ops_env = getenv("SEGD_TEST_OPS");
    long n_ops = ops_env ? strtol(ops_env, NULL, 10) : 6000;
    engine *e = engine_new(NULL);
    model_init(&m, e, seed);
    print_message("random model: seed %llu, %ld operations\n", (unsigned long long)seed, n_ops);
    for (long i = 0; i < n_ops; i++) {
        int op = rnd_below(&m, 1000);
        if (op < 120) op_create(&m, e);
        else if (op < 550) op_set(&m, e);
        else if (op < 850) op_append(&m, e);
        else if (op < 900) op_erase(&m, e);
        else if (op < 990) op_merge(&m, e);
        else op_redeclare(&m, e);
        if (engine_check(e) != 0) fail_msg("engine_check failed after operation %ld (seed %llu)", i,
                                           (unsigned long long)seed);
        model_compare(&m, e);
    }
    print_message("random model: %u id conflicts, %u merges, %u erasures, %u restores, %u type changes, "
                  "%u people live\n", m.n_conflicts, m.n_merges, m.n_erases, m.n_restores, m.n_redeclares,
                  engine_person_count(e));
    assert_true(m.n_conflicts > 0 && m.n_merges > 0 && m.n_restores > 0 && m.n_redeclares > 0);
    /* erasing everyone leaves no string, event or person behind */
    for (person_id p = 0; p < m.limit; p++)
        if (m.people[p].live) assert_int_equal(engine_person_erase(e, p), 0);
    CHECK_OK(e);
    engine_memory mem;
    engine_memory_usage(e, &mem);
    assert_int_equal(mem.strings, 0);
    assert_int_equal(mem.events, 0);
    assert_int_equal(mem.people, 0);
    engine_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_standard_attributes),
        cmocka_unit_test(test_column_types),
        cmocka_unit_test(test_type_conflicts),
        cmocka_unit_test(test_declare_limits),
        cmocka_unit_test(test_identity_indexes),
        cmocka_unit_test(test_email_lookup),
        cmocka_unit_test(test_identity_many),
        cmocka_unit_test(test_restore_gaps),
        cmocka_unit_test(test_erase),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_person_events_order),
        cmocka_unit_test(test_event_properties),
        cmocka_unit_test(test_attr_drop),
        cmocka_unit_test(test_memory_usage),
        cmocka_unit_test(test_compact),
        cmocka_unit_test(test_reserve),
        cmocka_unit_test(test_random_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
