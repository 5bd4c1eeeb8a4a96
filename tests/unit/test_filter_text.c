/* Tests for src/filter/text.c: the cases of tests/filter/text_cases.txt (text -> canonical
 * JSON, or the error with its line and column), lines and columns over several lines,
 * limits, and round trips over random trees: text -> tree -> text, and JSON <-> text. */
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

#define CASES_FILE "tests/filter/text_cases.txt"

static filter_node *parse_text_ok(const char *text)
{
    segd_error err;
    filter_node *n = filter_parse_text(text, strlen(text), NULL, &err);
    if (!n) fail_msg("%s\n  refused: %s %s", text, err.code, err.message);
    assert_int_equal(filter_check(n), 0);
    return n;
}

/* print_text(t) parses back to t, and so does print_json(t) through the JSON parser;
 * the text of the tree read from JSON is the same text. */
static void check_round_trips(const filter_node *t, const char *what)
{
    segd_error err;
    char *text = filter_print_text(t);
    filter_node *back = filter_parse_text(text, strlen(text), NULL, &err);
    if (!back) fail_msg("%s: printed as %s\n  which is refused: %s %s", what, text, err.code, err.message);
    assert_int_equal(filter_check(back), 0);
    if (!filter_equal(t, back)) fail_msg("%s: printed as %s, which reads back as another tree", what, text);
    char *again = filter_print_text(back);
    if (strcmp(text, again) != 0) fail_msg("%s: printed as\n  %s\n  then as\n  %s", what, text, again);

    char *json = filter_print_json(t);
    filter_node *from_json = filter_parse_json_text(json, strlen(json), NULL, &err);
    if (!from_json) fail_msg("%s: JSON %s refused: %s %s", what, json, err.code, err.message);
    assert_true(filter_equal(from_json, back));
    char *text2 = filter_print_text(from_json);
    assert_string_equal(text, text2);
    free(text2);
    filter_free(from_json);
    free(json);
    free(again);
    filter_free(back);
    free(text);
}

/* ---- the data file ---- */

typedef struct text_case {
    int line;
    char *text, *json, *print, *fail;
} text_case;

static void run_case(const text_case *c)
{
    segd_error err;
    filter_node *n = filter_parse_text(c->text, strlen(c->text), NULL, &err);
    if (c->fail) {
        char code[64];
        int line = 0, col = 0, used = 0;
        if (sscanf(c->fail, "%63s %d:%d %n", code, &line, &col, &used) != 3)
            fail_msg(CASES_FILE ":%d: fail: wants CODE L:C WORDS", c->line);
        if (n) fail_msg(CASES_FILE ":%d: %s\n  was accepted, expected %s", c->line, c->text, c->fail);
        char where[64];
        snprintf(where, sizeof where, "line %d, column %d: ", line, col);
        if (strcmp(err.code, code) != 0 || strncmp(err.message, where, strlen(where)) != 0 ||
            !strstr(err.message, c->fail + used))
            fail_msg(CASES_FILE ":%d: %s\n  got      %s %s\n  expected %s", c->line, c->text, err.code, err.message,
                     c->fail);
        assert_int_equal(err.status, 422);
        assert_true(err.at >= 0 && (size_t)err.at <= strlen(c->text));
        return;
    }
    if (!n) fail_msg(CASES_FILE ":%d: %s\n  refused: %s %s", c->line, c->text, err.code, err.message);
    assert_int_equal(filter_check(n), 0);
    char *json = filter_print_json(n);
    if (c->json && strcmp(json, c->json) != 0)
        fail_msg(CASES_FILE ":%d: %s\n  gives    %s\n  expected %s", c->line, c->text, json, c->json);
    char *text = filter_print_text(n);
    const char *want = c->print ? c->print : c->text;
    if (strcmp(text, want) != 0)
        fail_msg(CASES_FILE ":%d: %s\n  prints   %s\n  expected %s", c->line, c->text, text, want);
    check_round_trips(n, c->text);
    free(text);
    free(json);
    filter_free(n);
}

static void test_cases_file(void **state)
{
    (void)state;
    FILE *f = fopen(CASES_FILE, "r");
    if (!f) fail_msg("cannot open %s (run from the repository root)", CASES_FILE);
    char line[4096];
    text_case c = {0};
    int lineno = 0, cases = 0;
    for (;;) {
        char *got = fgets(line, sizeof line, f);
        if (got) {
            lineno++;
            line[strcspn(line, "\n")] = 0;
        }
        if (!got || line[0] == 0) {                /* a blank line ends a case */
            if (c.text) {
                run_case(&c);
                cases++;
            }
            free(c.text), free(c.json), free(c.print), free(c.fail);
            memset(&c, 0, sizeof c);
            if (!got) break;
            continue;
        }
        if (line[0] == '#') continue;
        char *colon = strchr(line, ':');
        if (!colon) fail_msg(CASES_FILE ":%d: expected text:, json:, print: or fail:", lineno);
        char *value = colon + 1;
        if (*value == ' ') value++;
        *colon = 0;
        char **slot = strcmp(line, "text") == 0 ? &c.text : strcmp(line, "json") == 0 ? &c.json
                    : strcmp(line, "print") == 0 ? &c.print : strcmp(line, "fail") == 0 ? &c.fail : NULL;
        if (!slot) fail_msg(CASES_FILE ":%d: unknown key %s", lineno, line);
        free(*slot);
        *slot = xstrdup(value);
        if (slot == &c.text) c.line = lineno;
    }
    fclose(f);
    assert_true(cases >= 50);
}

/* ---- errors over several lines ---- */

static void test_lines_and_columns(void **state)
{
    (void)state;
    segd_error err;
    const char *t = "plan = \"pro\"\n  and (count(purchase) >= 3\n  or sum(purchase) >= 500)";
    assert_null(filter_parse_text(t, strlen(t), NULL, &err));
    assert_string_equal(err.code, "invalid_filter");
    assert_int_equal(err.at, (long)(strstr(t, ") >= 500") - t));
    assert_non_null(strstr(err.message, "line 3, column 18:"));

    const char *u = "`größe` = \"ü\" and\n\t`größe` >";     /* columns count characters */
    assert_null(filter_parse_text(u, strlen(u), NULL, &err));
    assert_non_null(strstr(err.message, "line 2, column 11: expected a value"));
    assert_int_equal(err.at, (long)strlen(u));

    const char bad_utf8[] = "s = \"a\xff\"";
    assert_null(filter_parse_text(bad_utf8, sizeof bad_utf8 - 1, NULL, &err));
    assert_non_null(strstr(err.message, "line 1, column 7: expected UTF-8 text, found byte 0xff"));

    const char nul[] = "s = 1\0 and t = 2";
    assert_null(filter_parse_text(nul, sizeof nul - 1, NULL, &err));
    assert_string_equal(err.code, "filter_syntax");
    assert_int_equal(err.at, 5);

    /* the length decides, not a NUL */
    filter_node *n = filter_parse_text("a is set garbage", 8, NULL, &err);
    assert_non_null(n);
    filter_free(n);

    const char *long_string = "s \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"";
    assert_null(filter_parse_text(long_string, strlen(long_string), NULL, &err));
    assert_non_null(strstr(err.message, "aaaa...\""));
}

static void test_limits(void **state)
{
    (void)state;
    filter_limits lim = {.max_depth = 3, .max_nodes = 6, .max_values = 2};
    segd_error err;
    const char *ok = "a is set and not (c is set or d is set)";
    filter_node *n = filter_parse_text(ok, strlen(ok), &lim, &err);
    assert_non_null(n);
    filter_free(n);
    filter_limits lim2 = {.max_depth = 3, .max_nodes = 100};
    const char *deep = "a is set and not not (c is set or d is set)";
    assert_null(filter_parse_text(deep, strlen(deep), &lim2, &err));
    assert_string_equal(err.code, "filter_too_large");
    assert_non_null(strstr(err.message, "deeper than 3"));
    const char *where = "a is set and not did(e where p is set and q is set)";
    assert_null(filter_parse_text(where, strlen(where), &lim2, &err));
    assert_string_equal(err.code, "filter_too_large");
    assert_non_null(strstr(err.message, "deeper than 3"));
    const char *many = "a is set and b is set and c is set and d is set and e is set and f is set";
    assert_null(filter_parse_text(many, strlen(many), &lim, &err));
    assert_string_equal(err.code, "filter_too_large");
    assert_non_null(strstr(err.message, "more than 6 nodes"));
    const char *values = "n in (1, 2, 3)";
    assert_null(filter_parse_text(values, strlen(values), &lim, &err));
    assert_string_equal(err.code, "filter_too_large");
    assert_int_equal(err.at, 12);

    /* deep parentheses and long not-chains stop early instead of exhausting the stack */
    size_t big = 200000;
    char *text = malloc(big + 16);
    memset(text, '(', big);
    strcpy(text + big, "a is set");
    assert_null(filter_parse_text(text, strlen(text), NULL, &err));
    assert_string_equal(err.code, "filter_too_large");
    for (size_t i = 0; i + 4 <= big; i += 4) memcpy(text + i, "not ", 4);
    assert_null(filter_parse_text(text, strlen(text), NULL, &err));
    assert_string_equal(err.code, "filter_too_large");
    free(text);
}

static void test_issue_examples(void **state)
{
    (void)state;
    /* the same trees as the JSON a person would write for them */
    filter_node *a = parse_text_ok("plan = \"pro\" and country in (\"DE\",\"FR\") and "
                                   "(count(purchase) >= 3 or sum(purchase.amount) >= 500)");
    segd_error err;
    const char *json = "{\"and\": [{\"attribute\": \"plan\", \"op\": \"eq\", \"value\": \"pro\"},"
                       "{\"attribute\": \"country\", \"op\": \"in\", \"value\": [\"DE\", \"FR\"]},"
                       "{\"or\": [{\"event\": \"purchase\", \"op\": \"gte\", \"value\": 3},"
                       "{\"event\": \"purchase\", \"metric\": {\"fn\": \"sum\", \"property\": \"amount\"}, \"op\": \"gte\", \"value\": 500}]}]}";
    filter_node *b = filter_parse_json_text(json, strlen(json), NULL, &err);
    assert_non_null(b);
    assert_true(filter_equal(a, b));
    filter_free(a);
    filter_free(b);

    a = parse_text_ok("count(page_view where url contains \"/pricing\", within 14d) >= 2 and "
                      "not count(purchase, within 90d) >= 1");
    json = "{\"and\": [{\"event\": \"page_view\", \"where\": {\"property\": \"url\", \"op\": \"contains\", \"value\": \"/pricing\"},"
           "\"within\": \"14d\", \"op\": \"gte\", \"value\": 2},"
           "{\"not\": {\"event\": \"purchase\", \"within\": \"90d\", \"op\": \"gte\", \"value\": 1}}]}";
    b = filter_parse_json_text(json, strlen(json), NULL, &err);
    assert_non_null(b);
    assert_true(filter_equal(a, b));
    filter_free(a);
    filter_free(b);
}

static void test_random_round_trip(void **state)
{
    (void)state;
    char what[64];
    for (uint64_t seed = 1; seed <= 3000; seed++) {
        filter_node *t = filter_gen_tree(seed);
        assert_int_equal(filter_check(t), 0);
        snprintf(what, sizeof what, "seed %llu", (unsigned long long)seed);
        check_round_trips(t, what);
        filter_free(t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_file),
        cmocka_unit_test(test_lines_and_columns),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_issue_examples),
        cmocka_unit_test(test_random_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
