/* Tests for src/base/timefmt.c: ISO 8601 parsing, range checks, canonical printing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "base/timefmt.h"

static int64_t parse(const char *s, int date_ok)
{
    int64_t ms = -1;
    assert_int_equal(timefmt_parse(s, strlen(s), date_ok, &ms), 0);
    return ms;
}

static void rejects(const char *s)
{
    int64_t ms;
    assert_int_not_equal(timefmt_parse(s, strlen(s), 1, &ms), 0);
}

static void test_parse_forms(void **state)
{
    (void)state;
    assert_int_equal(parse("1970-01-01T00:00:00Z", 0), 0);
    assert_int_equal(parse("1970-01-01T00:00:00.001Z", 0), 1);
    assert_int_equal(parse("2026-11-28T19:12:01.123Z", 0), 1795893121123LL);
    assert_int_equal(parse("2026-11-28T21:12:01.123+02:00", 0), 1795893121123LL);
    assert_int_equal(parse("2026-11-28T14:12:01.123-0500", 0), 1795893121123LL);
    assert_int_equal(parse("2026-11-28 19:12:01.123456Z", 0), 1795893121123LL);
    assert_int_equal(parse("2026-11-28T19:12Z", 0), 1795893120000LL);
    assert_int_equal(parse("2026-11-28", 1), 1795824000000LL);
    assert_int_equal(parse("1969-12-31T23:59:59Z", 0), -1000);
    assert_int_equal(parse("2024-02-29T00:00:00Z", 0), 1709164800000LL);
}

static void test_rejects(void **state)
{
    (void)state;
    rejects("");
    rejects("2026");
    rejects("2026-13-01");
    rejects("2026-02-30");
    rejects("2023-02-29T00:00:00Z");
    rejects("2026-11-28T24:00:00Z");
    rejects("2026-11-28T19:12:01.Z");
    rejects("2026-11-28T19:12:01Zjunk");
    rejects("2026-11-28T19:12:01+25:00");
    rejects("28/11/2026");
    int64_t ms;
    assert_int_not_equal(timefmt_parse("2026-11-28", 10, 0, &ms), 0);   /* date only not allowed */
}

static void test_is_datetime(void **state)
{
    (void)state;
    assert_true(timefmt_is_datetime("2026-11-28T19:12:01Z", 20));
    assert_false(timefmt_is_datetime("2026-11-28", 10));
    assert_false(timefmt_is_datetime("hello", 5));
}

static void test_format_round_trip(void **state)
{
    (void)state;
    char buf[TIMEFMT_LEN];
    assert_string_equal(timefmt_format(1795893121123LL, buf), "2026-11-28T19:12:01.123Z");
    assert_string_equal(timefmt_format(-1000, buf), "1969-12-31T23:59:59.000Z");
    assert_string_equal(timefmt_format(0, buf), "1970-01-01T00:00:00.000Z");
    for (int64_t t = -5000000000000LL; t < 5000000000000LL; t += 7777777777LL) {
        timefmt_format(t, buf);
        assert_int_equal(parse(buf, 0), t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_is_datetime),
        cmocka_unit_test(test_format_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
