/* Tests for src/filter/json.c: every construct, its canonical form, every error code with
 * its JSON path, the limits, invalid JSON, and round trips over random trees. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "filter/filter.h"
#include "filter_gen.h"

static filter_node *parse_ok(const char *text)
{
    segd_error err;
    filter_node *n = filter_parse_json_text(text, strlen(text), NULL, &err);
    if (!n) fail_msg("%s\n  refused: %s %s (%s)", text, err.code, err.message, err.field);
    assert_int_equal(filter_check(n), 0);
    return n;
}

/* text parses, prints as `canonical` (NULL: as itself), and the print parses to the same tree */
static void canon(const char *text, const char *canonical)
{
    filter_node *n = parse_ok(text);
    char *out = filter_print_json(n);
    if (strcmp(out, canonical ? canonical : text) != 0)
        fail_msg("%s\n  printed  %s\n  expected %s", text, out, canonical ? canonical : text);
    filter_node *back = parse_ok(out);
    assert_true(filter_equal(n, back));
    filter_free(back);
    free(out);
    filter_free(n);
}

static void refused_lim(const char *text, const filter_limits *lim, const char *code, const char *field,
                        const char *words)
{
    segd_error err;
    filter_node *n = filter_parse_json_text(text, strlen(text), lim, &err);
    if (n) fail_msg("%s\n  was accepted, expected %s", text, code);
    if (strcmp(err.code, code) != 0 || (field && strcmp(err.field, field) != 0) ||
        (words && !strstr(err.message, words)))
        fail_msg("%s\n  got %s at %s: %s\n  expected %s at %s with \"%s\"", text, err.code, err.field, err.message, code,
                 field ? field : "?", words ? words : "");
    assert_int_equal(err.status, strcmp(code, "invalid_json") == 0 || strcmp(code, "invalid_utf8") == 0 ? 400 : 422);
}

static void refused(const char *text, const char *code, const char *field, const char *words)
{
    refused_lim(text, NULL, code, field, words);
}

static void test_groups(void **state)
{
    (void)state;
    canon("{\"and\":[]}", NULL);
    canon("{\"or\":[]}", NULL);
    canon("{\"not\":{\"and\":[]}}", NULL);
    canon("{ \"and\" : [ {\"or\":[{\"attribute\":\"a\",\"op\":\"is_set\"}]} ] }",
          "{\"and\":[{\"or\":[{\"attribute\":\"a\",\"op\":\"is_set\"}]}]}");
    /* the example of docs/FILTERS.md */
    canon("{\"and\":[{\"attribute\":\"plan\",\"op\":\"eq\",\"value\":\"pro\"},"
          "{\"attribute\":\"country\",\"op\":\"in\",\"value\":[\"DE\",\"FR\"]},"
          "{\"or\":[{\"event\":\"purchase\",\"op\":\"gte\",\"value\":3},"
          "{\"event\":\"purchase\",\"metric\":{\"fn\":\"sum\",\"property\":\"amount\"},\"op\":\"gte\",\"value\":500}]}]}",
          NULL);
}

static void test_attribute_values(void **state)
{
    (void)state;
    canon("{\"value\":\"Pro\",\"op\":\"eq\",\"attribute\":\"plan\"}", "{\"attribute\":\"plan\",\"op\":\"eq\",\"value\":\"Pro\"}");
    canon("{\"attribute\":\"plan\",\"op\":\"ne\",\"value\":\"pro\",\"case\":\"sensitive\"}", NULL);
    canon("{\"attribute\":\"plan\",\"op\":\"eq\",\"value\":\"pro\",\"case\":\"insensitive\"}",
          "{\"attribute\":\"plan\",\"op\":\"eq\",\"value\":\"pro\"}");
    canon("{\"attribute\":\"n\",\"op\":\"eq\",\"value\":1.5}", NULL);
    canon("{\"attribute\":\"b\",\"op\":\"eq\",\"value\":true}", NULL);
    canon("{\"attribute\":\"b\",\"op\":\"eq\",\"value\":false}", NULL);
    canon("{\"attribute\":\"s\",\"op\":\"contains\",\"value\":\"x\"}", NULL);
    canon("{\"attribute\":\"s\",\"op\":\"not_contains\",\"value\":\"x\"}", NULL);
    canon("{\"attribute\":\"s\",\"op\":\"starts_with\",\"value\":\"x\",\"case\":\"sensitive\"}", NULL);
    canon("{\"attribute\":\"s\",\"op\":\"ends_with\",\"value\":\"x\"}", NULL);
    canon("{\"attribute\":\"s\",\"op\":\"in\",\"value\":[\"a\"]}", NULL);
    canon("{\"attribute\":\"s\",\"op\":\"not_in\",\"value\":[1,2,3]}", NULL);
    canon("{\"attribute\":\"s\",\"op\":\"is_set\"}", NULL);
    canon("{\"attribute\":\"s\",\"op\":\"is_not_set\"}", NULL);
    canon("{\"attribute\":\"n\",\"op\":\"gt\",\"value\":-1}", NULL);
    canon("{\"attribute\":\"n\",\"op\":\"gte\",\"value\":0}", NULL);
    canon("{\"attribute\":\"n\",\"op\":\"lt\",\"value\":1e+20}", NULL);
    canon("{\"attribute\":\"n\",\"op\":\"lte\",\"value\":0.1}", NULL);
    canon("{\"attribute\":\"n\",\"op\":\"between\",\"value\":[1,1]}", NULL);
    canon("{\"attribute\":\"t\",\"op\":\"between\",\"value\":[\"2026-01-01\",\"2026-01-02T10:00:00+02:00\"]}",
          "{\"attribute\":\"t\",\"op\":\"between\",\"value\":[\"2026-01-01T00:00:00.000Z\",\"2026-01-02T08:00:00.000Z\"]}");
    canon("{\"attribute\":\"t\",\"op\":\"before\",\"value\":\"2026-11-28T21:12:01.123+02:00\"}",
          "{\"attribute\":\"t\",\"op\":\"before\",\"value\":\"2026-11-28T19:12:01.123Z\"}");
    canon("{\"attribute\":\"t\",\"op\":\"after\",\"value\":\"2026-11-28T19:12:01.123Z\"}", NULL);
    canon("{\"attribute\":\"t\",\"op\":\"more_than_ago\",\"value\":\"2w\"}",
          "{\"attribute\":\"t\",\"op\":\"more_than_ago\",\"value\":\"14d\"}");
    canon("{\"attribute\":\"t\",\"op\":\"less_than_ago\",\"value\":\"90m\"}", NULL);
    canon("{\"attribute\":\"t\",\"op\":\"less_than_ago\",\"value\":\"120m\"}",
          "{\"attribute\":\"t\",\"op\":\"less_than_ago\",\"value\":\"2h\"}");
    canon("{\"attribute\":\"t\",\"op\":\"less_than_ago\",\"value\":\"3600s\"}",
          "{\"attribute\":\"t\",\"op\":\"less_than_ago\",\"value\":\"1h\"}");
    canon("{\"attribute\":\"t\",\"op\":\"on_day\",\"value\":\"2026-11-28\"}", NULL);
    canon("{\"attribute\":\"t\",\"op\":\"on_day\",\"value\":\"2026-11-28\",\"offset\":\"+02:00\"}", NULL);
    canon("{\"attribute\":\"t\",\"offset\":\"+00:00\",\"op\":\"on_day\",\"value\":\"2026-11-28\"}",
          "{\"attribute\":\"t\",\"op\":\"on_day\",\"value\":\"2026-11-28\"}");
    canon("{\"attribute\":\"tags\",\"op\":\"is_empty\"}", NULL);
    canon("{\"attribute\":\"tags\",\"op\":\"is_not_empty\"}", NULL);
    canon("{\"attribute\":\"n\\u00e4me \\\"x\\\"\",\"op\":\"eq\",\"value\":\"\\u65e5\\n\"}",
          "{\"attribute\":\"n\xc3\xa4me \\\"x\\\"\",\"op\":\"eq\",\"value\":\"\xe6\x97\xa5\\n\"}");
}

static void test_parsed_fields(void **state)
{
    (void)state;
    filter_node *n = parse_ok("{\"attribute\":\"t\",\"op\":\"on_day\",\"value\":\"2026-11-28\",\"offset\":\"+02:00\"}");
    assert_int_equal(n->offset_min, 120);
    assert_true(n->values[0].is_time);
    assert_int_equal(n->values[0].time_ms, 1795824000000LL - 2 * 3600000LL);   /* 2026-11-27T22:00Z */
    assert_string_equal(n->values[0].str, "2026-11-28");
    filter_free(n);

    n = parse_ok("{\"attribute\":\"t\",\"op\":\"on_day\",\"value\":\"2026-11-28\",\"offset\":\"-05:30\"}");
    assert_int_equal(n->offset_min, -330);
    assert_int_equal(n->values[0].time_ms, 1795824000000LL + 330 * 60000LL);
    filter_free(n);

    n = parse_ok("{\"attribute\":\"t\",\"op\":\"more_than_ago\",\"value\":\"30d\"}");
    assert_int_equal(n->duration_ms, 30 * 86400000LL);
    assert_int_equal(n->n_values, 1);
    assert_string_equal(n->values[0].str, "30d");
    filter_free(n);

    n = parse_ok("{\"attribute\":\"t\",\"op\":\"before\",\"value\":\"2026-11-28T19:12:01.123Z\"}");
    assert_true(n->values[0].is_time);
    assert_int_equal(n->values[0].time_ms, 1795893121123LL);
    filter_free(n);

    n = parse_ok("{\"event\":\"purchase\"}");
    assert_int_equal(n->kind, FILTER_EVENT);
    assert_int_equal(n->fn, FFN_COUNT);
    assert_int_equal(n->op, FOP_GTE);
    assert_int_equal(n->n_values, 1);
    assert_int_equal(n->values[0].kind, FLIT_NUMBER);
    assert_true(n->values[0].number == 1);
    assert_int_equal(n->window, FWIN_ALL);
    filter_free(n);

    n = parse_ok("{\"event\":\"e\",\"within\":{\"from\":\"2026-01-01\",\"to\":\"2026-02-01T00:00:00Z\"}}");
    assert_int_equal(n->window, FWIN_RANGE);
    assert_int_equal(n->to_ms - n->from_ms, 31 * 86400000LL);
    filter_free(n);

    n = parse_ok("{\"bucket\":{\"salt\":\"exp-1\",\"from\":0,\"to\":9}}");
    assert_string_equal(n->name, "exp-1");
    assert_int_equal(n->bucket_from, 0);
    assert_int_equal(n->bucket_to, 9);
    filter_free(n);
}

static void test_events(void **state)
{
    (void)state;
    canon("{\"event\":\"purchase\"}", NULL);
    canon("{\"event\":\"purchase\",\"op\":\"gte\",\"value\":1}", "{\"event\":\"purchase\"}");
    canon("{\"event\":\"purchase\",\"op\":\"eq\",\"value\":0}", NULL);
    canon("{\"event\":\"page_view\",\"where\":{\"property\":\"url\",\"op\":\"contains\",\"value\":\"/pricing\"},"
          "\"within\":\"14d\",\"op\":\"gte\",\"value\":2}", NULL);
    canon("{\"op\":\"gte\",\"value\":2,\"within\":\"336h\",\"event\":\"e\"}",
          "{\"event\":\"e\",\"within\":\"14d\",\"op\":\"gte\",\"value\":2}");
    canon("{\"event\":\"e\",\"within\":{\"from\":\"2026-01-01\",\"to\":\"2026-02-01\"}}",
          "{\"event\":\"e\",\"within\":{\"from\":\"2026-01-01T00:00:00.000Z\",\"to\":\"2026-02-01T00:00:00.000Z\"}}");
    canon("{\"event\":\"e\",\"metric\":{\"fn\":\"count\"},\"op\":\"gt\",\"value\":5}",
          "{\"event\":\"e\",\"op\":\"gt\",\"value\":5}");
    canon("{\"event\":\"e\",\"metric\":{\"fn\":\"avg\",\"property\":\"p\"},\"op\":\"between\",\"value\":[1,2]}", NULL);
    canon("{\"event\":\"e\",\"metric\":{\"fn\":\"min\",\"property\":\"p\"},\"op\":\"in\",\"value\":[1,2]}", NULL);
    canon("{\"event\":\"e\",\"metric\":{\"fn\":\"max\",\"property\":\"p\"},\"op\":\"is_set\"}", NULL);
    canon("{\"event\":\"e\",\"metric\":{\"fn\":\"count_distinct\",\"property\":\"p\"},\"op\":\"lt\",\"value\":3}", NULL);
    canon("{\"event\":\"e\",\"metric\":{\"fn\":\"first_at\"},\"op\":\"before\",\"value\":\"2026-01-01T00:00:00.000Z\"}", NULL);
    canon("{\"event\":\"e\",\"metric\":{\"fn\":\"last_at\"},\"op\":\"more_than_ago\",\"value\":\"30d\"}", NULL);
    canon("{\"event\":\"e\",\"metric\":{\"fn\":\"last_at\"},\"op\":\"on_day\",\"value\":\"2026-01-01\",\"offset\":\"-01:00\"}",
          NULL);
    canon("{\"event\":\"e\",\"where\":{\"and\":[{\"property\":\"a\",\"op\":\"eq\",\"value\":1},"
          "{\"not\":{\"property\":\"b\",\"op\":\"is_set\"}}]}}", NULL);
    canon("{\"segment\":\"seg_x\",\"op\":\"in\"}", NULL);
    canon("{\"segment\":\"seg_x\"}", "{\"segment\":\"seg_x\",\"op\":\"in\"}");
    canon("{\"segment\":\"seg_x\",\"op\":\"not_in\"}", NULL);
    canon("{\"segment\":\"seg_x\",\"op\":\"in_cached\"}", NULL);
    canon("{\"bucket\":{\"to\":99,\"from\":50,\"salt\":\"\"}}", "{\"bucket\":{\"salt\":\"\",\"from\":50,\"to\":99}}");
}

static void test_errors(void **state)
{
    (void)state;
    refused("[]", "invalid_filter", "$", "a filter is an object");
    refused("{}", "invalid_filter", "$", "one of the keys");
    refused("{\"and\":{}}", "invalid_filter", "$.and", "array");
    refused("{\"not\":[]}", "invalid_filter", "$.not", "one filter object");
    refused("{\"and\":[],\"or\":[]}", "invalid_filter", "$", "both \"and\" and \"or\"");
    refused("{\"and\":[],\"x\":1}", "invalid_filter", "$", "unknown key \"x\"");
    refused("{\"and\":[{\"attribute\":\"a\",\"op\":\"eq\",\"value\":1,\"valeu\":2}]}", "invalid_filter", "$.and[0]",
            "unknown key \"valeu\" in an attribute condition; its keys are attribute, op, value, case, offset");
    refused("{\"attribute\":\"a\",\"op\":\"eq\",\"op\":\"ne\",\"value\":1}", "invalid_filter", "$", "appears twice");
    refused("{\"attribute\":\"\",\"op\":\"eq\",\"value\":1}", "invalid_filter", "$.attribute", "non-empty string");
    refused("{\"attribute\":5,\"op\":\"eq\",\"value\":1}", "invalid_filter", "$.attribute", "non-empty string");
    refused("{\"attribute\":\"a\",\"value\":1}", "invalid_filter", "$.op", "add \"op\"");
    refused("{\"and\":[{\"attribute\":\"a\",\"op\":\"eqq\",\"value\":1}]}", "unknown_operator", "$.and[0].op",
            "use one of: eq, ne, contains");
    refused("{\"attribute\":\"a\",\"op\":\"in_cached\"}", "unknown_operator", "$.op", NULL);
    refused("{\"attribute\":\"a\",\"op\":\"eq\"}", "invalid_filter", "$.value", "needs a \"value\"");
    refused("{\"attribute\":\"a\",\"op\":\"is_set\",\"value\":1}", "invalid_filter", "$.value", "takes no value");
    refused("{\"attribute\":\"a\",\"op\":\"eq\",\"value\":[1]}", "invalid_value", "$.value", "use in / not_in");
    refused("{\"attribute\":\"a\",\"op\":\"eq\",\"value\":null}", "invalid_value", "$.value", "string, a number");
    refused("{\"attribute\":\"a\",\"op\":\"ne\",\"value\":true}", "invalid_value", "$.value", "boolean");
    refused("{\"attribute\":\"a\",\"op\":\"gt\",\"value\":\"5\"}", "invalid_value", "$.value", "give a number");
    refused("{\"attribute\":\"a\",\"op\":\"contains\",\"value\":5}", "invalid_value", "$.value", "takes a string");
    refused("{\"attribute\":\"a\",\"op\":\"in\",\"value\":[]}", "invalid_value", "$.value", "one or more");
    refused("{\"attribute\":\"a\",\"op\":\"in\",\"value\":\"DE\"}", "invalid_value", "$.value", "array");
    refused("{\"attribute\":\"a\",\"op\":\"in\",\"value\":[\"DE\",1]}", "invalid_value", "$.value[1]", "one kind");
    refused("{\"attribute\":\"a\",\"op\":\"in\",\"value\":[\"DE\",{}]}", "invalid_value", "$.value[1]", NULL);
    refused("{\"attribute\":\"a\",\"op\":\"between\",\"value\":[1]}", "invalid_value", "$.value", "[low, high]");
    refused("{\"attribute\":\"a\",\"op\":\"between\",\"value\":[2,1]}", "invalid_value", "$.value", "low <= high");
    refused("{\"attribute\":\"a\",\"op\":\"between\",\"value\":[1,\"2026-01-01\"]}", "invalid_value", "$.value[1]", NULL);
    refused("{\"attribute\":\"a\",\"op\":\"between\",\"value\":[\"x\",\"2026-01-01\"]}", "invalid_value", "$.value[0]",
            "ISO 8601");
    refused("{\"attribute\":\"a\",\"op\":\"before\",\"value\":\"2026-02-30T00:00:00Z\"}", "invalid_value", "$.value",
            "ISO 8601");
    refused("{\"attribute\":\"a\",\"op\":\"after\",\"value\":17}", "invalid_value", "$.value", "date-time");
    refused("{\"and\":[{\"attribute\":\"a\",\"op\":\"more_than_ago\",\"value\":\"30 days\"}]}", "invalid_value",
            "$.and[0].value", "durations are a whole number and a unit s, m, h, d or w, such as \"30d\"");
    refused("{\"attribute\":\"a\",\"op\":\"less_than_ago\",\"value\":\"0d\"}", "invalid_value", "$.value", "durations");
    refused("{\"attribute\":\"a\",\"op\":\"less_than_ago\",\"value\":\"99999999999999d\"}", "invalid_value", "$.value", NULL);
    refused("{\"attribute\":\"a\",\"op\":\"on_day\",\"value\":\"2026-11-28T00:00:00Z\"}", "invalid_value", "$.value",
            "YYYY-MM-DD");
    refused("{\"attribute\":\"a\",\"op\":\"on_day\",\"value\":\"2026-11-28\",\"offset\":\"+2\"}", "invalid_value",
            "$.offset", "+hh:mm");
    refused("{\"attribute\":\"a\",\"op\":\"eq\",\"value\":\"x\",\"offset\":\"+02:00\"}", "invalid_filter", "$.offset",
            "on_day only");
    refused("{\"attribute\":\"a\",\"op\":\"gt\",\"value\":1,\"case\":\"sensitive\"}", "invalid_filter", "$.case",
            "string comparisons");
    refused("{\"attribute\":\"a\",\"op\":\"eq\",\"value\":\"x\",\"case\":\"upper\"}", "invalid_value", "$.case", NULL);
    refused("{\"property\":\"a\",\"op\":\"is_set\"}", "invalid_filter", "$", "belong in an event's where");
    refused("{\"event\":\"e\",\"where\":{\"attribute\":\"a\",\"op\":\"is_set\"}}", "invalid_filter", "$.where",
            "property conditions and groups only");
    refused("{\"event\":\"e\",\"where\":{\"or\":[{\"event\":\"f\"}]}}", "invalid_filter", "$.where.or[0]", NULL);
    refused("{\"event\":\"e\",\"where\":{\"and\":[{\"property\":\"p\",\"op\":\"eq\"}]}}", "invalid_filter",
            "$.where.and[0].value", NULL);
    refused("{\"event\":\"\"}", "invalid_filter", "$.event", NULL);
    refused("{\"event\":\"e\",\"case\":\"sensitive\"}", "invalid_filter", "$", "unknown key \"case\"");
    refused("{\"event\":\"e\",\"within\":\"2 weeks\"}", "invalid_value", "$.within", "such as \"30d\"");
    refused("{\"event\":\"e\",\"within\":{\"from\":\"2026-02-01\"}}", "invalid_filter", "$.within.to", NULL);
    refused("{\"event\":\"e\",\"within\":{\"from\":\"2026-02-01\",\"to\":\"2026-01-01\"}}", "invalid_value", "$.within",
            "swap");
    refused("{\"event\":\"e\",\"within\":{\"from\":\"2026-02-01\",\"to\":\"x\"}}", "invalid_value", "$.within.to", NULL);
    refused("{\"event\":\"e\",\"within\":{\"from\":\"2026-01-01\",\"to\":\"2026-02-01\",\"at\":1}}", "invalid_filter",
            "$.within", "unknown key \"at\"");
    refused("{\"event\":\"e\",\"metric\":{\"fn\":\"median\",\"property\":\"p\"},\"op\":\"gt\",\"value\":1}",
            "invalid_value", "$.metric.fn", "count, sum, avg");
    refused("{\"event\":\"e\",\"metric\":{\"fn\":\"sum\"},\"op\":\"gt\",\"value\":1}", "invalid_filter", "$.metric",
            "add \"property\"");
    refused("{\"event\":\"e\",\"metric\":{\"fn\":\"count\",\"property\":\"p\"}}", "invalid_filter", "$.metric.property",
            "takes no property");
    refused("{\"event\":\"e\",\"metric\":{\"fn\":\"sum\",\"property\":\"p\"}}", "invalid_filter", "$.op", "needs \"op\"");
    refused("{\"event\":\"e\",\"value\":3}", "invalid_filter", "$.value", "needs \"op\"");
    refused("{\"event\":\"e\",\"op\":\"contains\",\"value\":\"x\"}", "operator_mismatch", "$.op", "eq, ne, gt");
    refused("{\"event\":\"e\",\"metric\":{\"fn\":\"first_at\"},\"op\":\"gt\",\"value\":1}", "operator_mismatch", "$.op",
            "before, after");
    refused("{\"event\":\"e\",\"op\":\"eq\",\"value\":\"3\"}", "invalid_value", "$.value", "give a number");
    refused("{\"event\":\"e\",\"metric\":{\"fn\":\"first_at\"},\"op\":\"between\",\"value\":[1,2]}", "invalid_value",
            "$.value[0]", "date-time");
    refused("{\"bucket\":{\"salt\":\"x\",\"from\":0}}", "invalid_filter", "$.bucket.to", "0 to 99");
    refused("{\"bucket\":{\"salt\":\"x\",\"from\":0,\"to\":100}}", "invalid_value", "$.bucket.to", "0 to 99");
    refused("{\"bucket\":{\"salt\":\"x\",\"from\":1.5,\"to\":10}}", "invalid_value", "$.bucket.from", NULL);
    refused("{\"bucket\":{\"salt\":\"x\",\"from\":10,\"to\":9}}", "invalid_value", "$.bucket", "greater than to");
    refused("{\"bucket\":{\"from\":0,\"to\":9}}", "invalid_filter", "$.bucket.salt", NULL);
    refused("{\"bucket\":\"x\"}", "invalid_filter", "$.bucket", NULL);
    refused("{\"segment\":\"s\",\"op\":\"eq\"}", "unknown_operator", "$.op", "in, not_in or in_cached");
    refused("{\"segment\":\"\"}", "invalid_filter", "$.segment", NULL);
    refused("{\"attribute\":\"a\",\"op\":\"eq\",\"value\":1,\"x\xff\\u00e9\":1}", "invalid_filter", "$",
            "unknown key \"x?\xc3\xa9\"");
    refused("{\"and\":[{\"not\":{\"attribute\":\"a\",\"op\":\"eq\",\"value\":\"\\u00\"}}]}", "invalid_json", NULL, NULL);
}

static void test_invalid_json(void **state)
{
    (void)state;
    segd_error err;
    const char *t1 = "{\"and\":[}";
    assert_null(filter_parse_json_text(t1, strlen(t1), NULL, &err));
    assert_string_equal(err.code, "invalid_json");
    assert_int_equal(err.status, 400);
    assert_int_equal(err.at, 8);
    const char *t2 = "{\"and\":[]} x";
    assert_null(filter_parse_json_text(t2, strlen(t2), NULL, &err));
    assert_int_equal(err.at, 11);
    const char *t3 = "{\"attribute\":\"a\\u0000b\",\"op\":\"is_set\"}";
    assert_null(filter_parse_json_text(t3, strlen(t3), NULL, &err));
    assert_string_equal(err.code, "invalid_utf8");
    assert_int_equal(err.at, 15);
    const char t4[] = "{\"and\":[]}\0{";       /* a NUL byte inside the text, not at its end */
    assert_null(filter_parse_json_text(t4, sizeof t4 - 1, NULL, &err));
    assert_string_equal(err.code, "invalid_json");
    assert_int_equal(err.at, 10);
    const char *t5 = "{\"attribute\":\"a\",\"op\":\"eq\",\"value\":\"\xff\"}";
    assert_null(filter_parse_json_text(t5, strlen(t5), NULL, &err));
    assert_string_equal(err.code, "invalid_value");
    assert_string_equal(err.field, "$.value");
    const char *t6 = "{\"attribute\":\"a\",\"op\":\"eq\",\"value\":1e999}";
    assert_null(filter_parse_json_text(t6, strlen(t6), NULL, &err));
    assert_string_equal(err.code, "invalid_value");
    /* not NUL-terminated: the length decides */
    const char *t7 = "{\"and\":[]}garbage";
    filter_node *n = filter_parse_json_text(t7, 10, NULL, &err);
    assert_non_null(n);
    filter_free(n);
    assert_null(filter_parse_json_text("", 0, NULL, &err));
    assert_string_equal(err.code, "invalid_json");
}

static void test_limits(void **state)
{
    (void)state;
    filter_limits lim = {.max_depth = 3, .max_nodes = 5, .max_values = 2};
    segd_error err;
    const char *ok = "{\"and\":[{\"or\":[{\"not\":{\"attribute\":\"a\",\"op\":\"is_set\"}}]}]}";
    filter_node *n = filter_parse_json_text(ok, strlen(ok), &lim, &err);
    assert_non_null(n);
    filter_free(n);
    refused_lim("{\"and\":[{\"or\":[{\"not\":{\"not\":{\"attribute\":\"a\",\"op\":\"is_set\"}}}]}]}", &lim,
                "filter_too_large", "$.and[0].or[0].not", "deeper than 3");
    refused_lim("{\"and\":[{\"or\":[{\"event\":\"e\",\"where\":{\"not\":{\"property\":\"p\",\"op\":\"is_set\"}}}]}]}",
                &lim, "filter_too_large", NULL, "where counts as one");
    const char *where_ok = "{\"and\":[{\"event\":\"e\",\"where\":{\"not\":{\"property\":\"p\",\"op\":\"is_set\"}}}]}";
    n = filter_parse_json_text(where_ok, strlen(where_ok), &lim, &err);
    assert_non_null(n);
    filter_free(n);
    refused_lim("{\"and\":[{\"and\":[]},{\"and\":[]},{\"and\":[]},{\"and\":[]},{\"and\":[]}]}", &lim, "filter_too_large",
                "$.and[4]", "more than 5 nodes");
    refused_lim("{\"attribute\":\"a\",\"op\":\"in\",\"value\":[1,2,3]}", &lim, "filter_too_large", "$.value", "more than 2");

    /* the defaults: 32 levels */
    char deep[4096] = "";
    for (int i = 0; i < 33; i++) strcat(deep, "{\"not\":");
    strcat(deep, "{\"and\":[]}");
    for (int i = 0; i < 33; i++) strcat(deep, "}");
    refused(deep, "filter_too_large", NULL, "deeper than 32");
    n = filter_parse_json_text(deep + 7, strlen(deep) - 8, NULL, &err);    /* 33 levels with the and: one less */
    assert_null(n);
    n = filter_parse_json_text(deep + 14, strlen(deep) - 16, NULL, &err);
    assert_non_null(n);
    filter_free(n);
}

static void test_parse_tree(void **state)
{
    (void)state;
    cJSON *j = cJSON_Parse("{\"or\":[{\"segment\":\"a\",\"op\":\"not_in\"},{\"attribute\":\"x\",\"op\":\"is_set\"}]}");
    segd_error err;
    filter_node *n = filter_parse_json(j, NULL, &err);
    assert_non_null(n);
    cJSON *back = filter_to_json(n);
    assert_true(cJSON_Compare(j, back, 1));
    cJSON_Delete(back);
    cJSON_Delete(j);
    filter_free(n);
    assert_null(filter_parse_json(NULL, NULL, &err));
    assert_string_equal(err.code, "invalid_filter");
}

static void test_helpers(void **state)
{
    (void)state;
    int64_t ms;
    char buf[FILTER_DURATION_LEN];
    assert_int_equal(filter_duration_parse("1w", 2, &ms), 0);
    assert_string_equal(filter_duration_format(ms, buf), "7d");
    assert_int_equal(filter_duration_parse("90s", 3, &ms), 0);
    assert_string_equal(filter_duration_format(ms, buf), "90s");
    assert_int_equal(filter_duration_parse("100000d", 7, &ms), 0);
    assert_int_not_equal(filter_duration_parse("100001d", 7, &ms), 0);
    assert_int_not_equal(filter_duration_parse("d", 1, &ms), 0);
    assert_int_not_equal(filter_duration_parse("-1d", 3, &ms), 0);
    assert_int_not_equal(filter_duration_parse("1.5h", 4, &ms), 0);
    assert_int_not_equal(filter_duration_parse("5y", 2, &ms), 0);
    char nb[FILTER_NUMBER_LEN];
    assert_string_equal(filter_format_number(500, nb), "500");
    assert_string_equal(filter_format_number(-1500, nb), "-1500");
    assert_string_equal(filter_format_number(0.1, nb), "0.1");
    assert_string_equal(filter_format_number(1e20, nb), "1e+20");
    assert_string_equal(filter_format_number(123456789012345678.0, nb), "1.2345678901234568e+17");
    assert_string_equal(filter_format_number(2.5e-7, nb), "2.5e-07");
    double odd = 67270445.71428571;
    assert_true(strtod(filter_format_number(odd, nb), NULL) == odd);
    int32_t off;
    char ob[8];
    assert_int_equal(filter_offset_parse("-05:30", 6, &off), 0);
    assert_int_equal(off, -330);
    assert_string_equal(filter_offset_format(off, ob), "-05:30");
    assert_int_not_equal(filter_offset_parse("+24:00", 6, &off), 0);
    assert_int_not_equal(filter_offset_parse("+0200", 5, &off), 0);
}

static void test_random_round_trip(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 3000; seed++) {
        filter_node *t = filter_gen_tree(seed);
        if (filter_check(t) != 0) fail_msg("seed %llu: the generator made an invalid tree", (unsigned long long)seed);
        char *json = filter_print_json(t);
        segd_error err;
        filter_node *back = filter_parse_json_text(json, strlen(json), NULL, &err);
        if (!back) fail_msg("seed %llu: %s\n  refused: %s %s", (unsigned long long)seed, json, err.code, err.message);
        assert_int_equal(filter_check(back), 0);
        if (!filter_equal(t, back)) fail_msg("seed %llu: %s does not read back the same", (unsigned long long)seed, json);
        char *again = filter_print_json(back);
        assert_string_equal(json, again);
        filter_node *copy = filter_clone(back);
        assert_true(filter_equal(copy, t));
        filter_free(copy);
        free(again);
        filter_free(back);
        free(json);
        filter_free(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_attribute_values),
        cmocka_unit_test(test_parsed_fields),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_parse_tree),
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_random_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
