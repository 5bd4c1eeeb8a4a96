/* Tests for src/base/jsonscan.c: the offset of the first bad byte of a JSON text. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "base/jsonscan.h"

static size_t at(const char *s)
{
    return jsonscan_error_offset(s, strlen(s));
}

static void test_offsets(void **state)
{
    (void)state;
    assert_int_equal(at("{\"userId\":\"u1\",\"event\":}"), 23);
    assert_int_equal(at("{\"userId\":\"u1\" \"event\":\"e\"}"), 15);
    assert_int_equal(at("not json"), 0);
    assert_int_equal(at("{\"a\":[1,2,}}"), 10);
    assert_int_equal(at("{\"a\":1,}"), 7);
    assert_int_equal(at("{\"a\" 1}"), 5);
    assert_int_equal(at("{}x"), 2);
    assert_int_equal(at("[1,2"), 4);                 /* incomplete: the end */
    assert_int_equal(at("{\"a\":\"\\q\"}"), 7);      /* bad escape */
    assert_int_equal(at("{\"a\":01}"), 6);           /* leading zero */
    assert_int_equal(at("{\"a\":\"x\ny\"}"), 7);     /* raw control character */
    assert_int_equal(at(" {\"a\":[1,{\"b\":tru}]}"), 14);
}

static void test_valid_texts_run_to_the_end(void **state)
{
    (void)state;
    const char *ok[] = {"  [ ] ", "{}", "0", "-1.5e+3", "\"\\u00e9\"", "{\"a\":{\"b\":[true,false,null,{}]}}", NULL};
    for (int i = 0; ok[i]; i++) assert_int_equal(at(ok[i]), strlen(ok[i]));
    char deep[20001];
    memset(deep, '[', 10000);
    memset(deep + 10000, ']', 10000);
    deep[20000] = 0;
    assert_int_equal(at(deep), 20000);               /* any depth, no recursion */
}

static void test_validate(void **state)
{
    (void)state;
    size_t at;
    const char *ok = "{\"userId\":\"u1\\u00e9\"}";
    assert_int_equal(jsonscan_validate(ok, strlen(ok), &at), JSONSCAN_OK);
    assert_int_equal(at, strlen(ok));
    const char *nul = "{\"userId\":\"u1\\u0000x\"}";
    assert_int_equal(jsonscan_validate(nul, strlen(nul), &at), JSONSCAN_NUL);
    assert_int_equal(at, 13);
    const char *badhex = "{\"userId\":\"u1\\uZZZZx\"}";     /* cJSON makes this a NUL */
    assert_int_equal(jsonscan_validate(badhex, strlen(badhex), &at), JSONSCAN_SYNTAX);
    assert_int_equal(at, 15);
    const char *escaped_backslash = "{\"a\":\"\\\\u0000\"}";   /* a backslash, then text u0000 */
    assert_int_equal(jsonscan_validate(escaped_backslash, strlen(escaped_backslash), &at), JSONSCAN_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets),
        cmocka_unit_test(test_valid_texts_run_to_the_end),
        cmocka_unit_test(test_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
