/* filter_roundtrip.h - what the two filter fuzz targets check on every tree that parses:
 * the tree's invariants (filter_check), and that both spellings read back the same tree
 * (JSON -> tree -> JSON, text -> tree -> text, and across). Header-only: each target is
 * built alone, and tests/unit/test_filter_fuzz.c includes both targets.
 */
#ifndef SEGD_FUZZ_FILTER_ROUNDTRIP_H
#define SEGD_FUZZ_FILTER_ROUNDTRIP_H

#include <stdlib.h>
#include <string.h>

#include "filter/filter.h"
#include "fuzz.h"

static void filter_fuzz_check_tree(const filter_node *n)
{
    FUZZ_CHECK(filter_check(n) == 0, "a parsed tree breaks filter_check (see above)");
    segd_error err;
    char *json = filter_print_json(n);
    filter_node *from_json = filter_parse_json_text(json, strlen(json), NULL, &err);
    FUZZ_CHECK(from_json != NULL, "the printed JSON %s is refused: %s %s", json, err.code, err.message);
    FUZZ_CHECK(filter_equal(n, from_json), "the printed JSON %s reads back as another tree", json);
    char *json2 = filter_print_json(from_json);
    FUZZ_CHECK(strcmp(json, json2) == 0, "JSON printed twice differs:\n  %s\n  %s", json, json2);

    char *text = filter_print_text(n);
    filter_node *from_text = filter_parse_text(text, strlen(text), NULL, &err);
    FUZZ_CHECK(from_text != NULL, "the printed text %s is refused: %s %s", text, err.code, err.message);
    FUZZ_CHECK(filter_equal(n, from_text), "the printed text %s reads back as another tree", text);
    FUZZ_CHECK(filter_check(from_text) == 0, "the tree of %s breaks filter_check", text);
    char *text2 = filter_print_text(from_text);
    FUZZ_CHECK(strcmp(text, text2) == 0, "text printed twice differs:\n  %s\n  %s", text, text2);

    filter_node *copy = filter_clone(n);
    FUZZ_CHECK(filter_equal(copy, n) && filter_check(copy) == 0, "a clone differs from its tree");
    filter_free(copy);
    free(text2);
    filter_free(from_text);
    free(text);
    free(json2);
    filter_free(from_json);
    free(json);
}

/* A refusal is a user error with a code, a sentence, and a place. */
static void filter_fuzz_check_error(const segd_error *err, size_t len, int text)
{
    FUZZ_CHECK(err->status == 400 || err->status == 422, "refused with status %d (%s)", err->status, err->code);
    FUZZ_CHECK(err->code[0] && err->message[0], "refused without a code or a message");
    if (text)
        FUZZ_CHECK(err->at >= 0 && (size_t)err->at <= len && strncmp(err->message, "line ", 5) == 0,
                   "a text error without its place: at %ld, \"%s\"", err->at, err->message);
    else if (err->status == 422)
        FUZZ_CHECK(err->field[0] == '$', "a JSON error without its path: \"%s\"", err->message);
}

#endif
