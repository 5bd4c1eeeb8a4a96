/* fuzz_jsonscan.c - libFuzzer target for src/base/jsonscan.c on arbitrary bytes.
 *
 * Checks jsonscan_error_offset against two oracles: a small recursive RFC 8259
 * classifier written here (valid / a prefix of some valid text / invalid), which pins
 * the offset down exactly (the bytes before it can still become JSON, the byte at it
 * cannot), and cJSON on a NUL-terminated copy, with cJSON's known departures from
 * RFC 8259 set aside (see cjson_lax and cjson_stricter). Inputs: up to a few KiB.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "base/jsonscan.h"
#include "fuzz.h"

/* ---- the reference: recursive descent, structured unlike the scanner ---- */

typedef enum { REF_VALID, REF_PREFIX, REF_INVALID } ref_class;
typedef enum { TOK_OK, TOK_EOF, TOK_BAD } tok;   /* parsed / input ended inside / bad byte */

typedef struct ref {
    const unsigned char *s;
    size_t len, i;
} ref;

static void ref_ws(ref *r)
{
    while (r->i < r->len && (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' || r->s[r->i] == '\r'))
        r->i++;
}

static int ref_digit(ref *r)
{
    return r->i < r->len && r->s[r->i] >= '0' && r->s[r->i] <= '9';
}

static int hex_digit(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static tok ref_string(ref *r)
{
    r->i++;                                        /* the opening quote */
    for (;;) {
        if (r->i >= r->len) return TOK_EOF;
        unsigned char c = r->s[r->i];
        if (c == '"') {
            r->i++;
            return TOK_OK;
        }
        if (c < 0x20) return TOK_BAD;
        r->i++;
        if (c != '\\') continue;
        if (r->i >= r->len) return TOK_EOF;
        switch (r->s[r->i]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            r->i++;
            continue;
        case 'u':
            r->i++;
            for (int k = 0; k < 4; k++, r->i++) {
                if (r->i >= r->len) return TOK_EOF;
                if (!hex_digit(r->s[r->i])) return TOK_BAD;
            }
            continue;
        default:
            return TOK_BAD;
        }
    }
}

/* A number that reaches the end of the input is complete (TOK_OK) when what it has
 * so far is a number; "-", "1." and "1e+" are not (TOK_EOF). */
static tok ref_number(ref *r)
{
    if (r->s[r->i] == '-') r->i++;
    if (r->i >= r->len) return TOK_EOF;
    if (r->s[r->i] == '0') r->i++;
    else if (ref_digit(r)) while (ref_digit(r)) r->i++;
    else return TOK_BAD;
    if (r->i < r->len && r->s[r->i] == '.') {
        r->i++;
        if (r->i >= r->len) return TOK_EOF;
        if (!ref_digit(r)) return TOK_BAD;
        while (ref_digit(r)) r->i++;
    }
    if (r->i < r->len && (r->s[r->i] == 'e' || r->s[r->i] == 'E')) {
        r->i++;
        if (r->i < r->len && (r->s[r->i] == '+' || r->s[r->i] == '-')) r->i++;
        if (r->i >= r->len) return TOK_EOF;
        if (!ref_digit(r)) return TOK_BAD;
        while (ref_digit(r)) r->i++;
    }
    return TOK_OK;
}

static tok ref_literal(ref *r, const char *lit)
{
    for (; *lit; lit++, r->i++) {
        if (r->i >= r->len) return TOK_EOF;
        if (r->s[r->i] != (unsigned char)*lit) return TOK_BAD;
    }
    return TOK_OK;
}

static tok ref_value(ref *r);

/* After a member or element: ',' goes on, `close` ends the container. */
static tok ref_after_item(ref *r, char close, int *more)
{
    ref_ws(r);
    if (r->i >= r->len) return TOK_EOF;
    if (r->s[r->i] == ',') *more = 1;
    else if (r->s[r->i] == close) *more = 0;
    else return TOK_BAD;
    r->i++;
    return TOK_OK;
}

static tok ref_array(ref *r)
{
    r->i++;
    ref_ws(r);
    if (r->i >= r->len) return TOK_EOF;
    if (r->s[r->i] == ']') {
        r->i++;
        return TOK_OK;
    }
    for (int more = 1; more;) {
        tok t = ref_value(r);
        if (t == TOK_OK) t = ref_after_item(r, ']', &more);
        if (t != TOK_OK) return t;
    }
    return TOK_OK;
}

static tok ref_object(ref *r)
{
    r->i++;
    ref_ws(r);
    if (r->i >= r->len) return TOK_EOF;
    if (r->s[r->i] == '}') {
        r->i++;
        return TOK_OK;
    }
    for (int more = 1; more;) {
        ref_ws(r);
        if (r->i >= r->len) return TOK_EOF;
        if (r->s[r->i] != '"') return TOK_BAD;
        tok t = ref_string(r);
        if (t != TOK_OK) return t;
        ref_ws(r);
        if (r->i >= r->len) return TOK_EOF;
        if (r->s[r->i] != ':') return TOK_BAD;
        r->i++;
        t = ref_value(r);
        if (t == TOK_OK) t = ref_after_item(r, '}', &more);
        if (t != TOK_OK) return t;
    }
    return TOK_OK;
}

static tok ref_value(ref *r)
{
    ref_ws(r);
    if (r->i >= r->len) return TOK_EOF;
    switch (r->s[r->i]) {
    case '{': return ref_object(r);
    case '[': return ref_array(r);
    case '"': return ref_string(r);
    case 't': return ref_literal(r, "true");
    case 'f': return ref_literal(r, "false");
    case 'n': return ref_literal(r, "null");
    default:
        if (r->s[r->i] == '-' || ref_digit(r)) return ref_number(r);
        return TOK_BAD;
    }
}

static ref_class classify(const uint8_t *s, size_t len)
{
    ref r = {s, len, 0};
    tok t = ref_value(&r);
    if (t == TOK_EOF) return REF_PREFIX;
    if (t == TOK_BAD) return REF_INVALID;
    ref_ws(&r);
    return r.i < len ? REF_INVALID : REF_VALID;
}

/* ---- where cJSON 1.7.15 parts from RFC 8259 ---- */

static int strict_number(const uint8_t *s, size_t len)
{
    ref r = {s, len, 0};
    return ref_number(&r) == TOK_OK && r.i == len;
}

/* 1 if cJSON may accept the text although RFC 8259 does not: a UTF-8 BOM before it,
 * control characters (cJSON skips every byte <= 0x20 as whitespace and keeps them raw
 * in strings, tabs and newlines too), numbers that strtod reads but JSON does not ("01", "1.", "-.5"), and
 * \u escapes with non-hex digits (cJSON reads them as \u0000). Numbers are found by a
 * scan that knows strings: exact when cJSON accepted the text. */
static int cjson_lax(const uint8_t *s, size_t len)
{
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) return 1;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return 1;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        if (in_string) {
            if (s[i] < 0x20) return 1;
            if (s[i] == '"') in_string = 0;
            else if (s[i] == '\\' && i + 1 < len) {
                if (s[i + 1] == 'u')
                    for (size_t k = i + 2; k < i + 6; k++)
                        if (k >= len || !hex_digit(s[k])) return 1;
                i++;
            }
        } else if (s[i] == '"') {
            in_string = 1;
        } else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
            size_t j = i;
            while (j < len && strchr("0123456789+-.eE", s[j]) && s[j]) j++;
            if (!strict_number(s + i, j - i)) return 1;
            i = j - 1;
        }
    }
    return 0;
}

/* 1 if cJSON may reject a valid text: surrogate \u escapes (cJSON wants them paired,
 * RFC 8259's grammar takes any), nesting deeper than CJSON_NESTING_LIMIT. */
static int cjson_stricter(const uint8_t *s, size_t len)
{
    int in_string = 0;
    size_t depth = 0, max_depth = 0;
    for (size_t i = 0; i < len; i++) {
        if (in_string) {
            if (s[i] == '"') in_string = 0;
            else if (s[i] == '\\' && i + 1 < len) {
                if (s[i + 1] == 'u' && i + 3 < len && (s[i + 2] == 'd' || s[i + 2] == 'D') &&
                    strchr("89abcdefABCDEF", s[i + 3]) && s[i + 3])
                    return 1;
                i++;
            }
        } else if (s[i] == '"') {
            in_string = 1;
        } else if (s[i] == '[' || s[i] == '{') {
            if (++depth > max_depth) max_depth = depth;
        } else if (s[i] == ']' || s[i] == '}') {
            depth--;
        }
    }
    return max_depth >= CJSON_NESTING_LIMIT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len > 16384) return 0;                   /* the reference recurses once per level */
    const char *s = (const char *)data;
    size_t off = jsonscan_error_offset(s, len);
    FUZZ_CHECK(off <= len, "offset %zu past the end (%zu)", off, len);

    ref_class whole = classify(data, len);
    if (whole == REF_INVALID) FUZZ_CHECK(off < len, "invalid text, but jsonscan found no bad byte");
    else FUZZ_CHECK(off == len, "%s text, but jsonscan reports byte %zu",
                    whole == REF_VALID ? "valid" : "incomplete", off);
    if (off < len) {
        FUZZ_CHECK(classify(data, off) != REF_INVALID, "the %zu bytes before the reported one are already bad", off);
        /* jsonscan.c reports a misspelt literal at its first byte ("not json" at 0) */
        size_t upto = strchr("tfn", data[off]) && data[off] ? off + 5 : off + 1;
        FUZZ_CHECK(classify(data, upto < len ? upto : len) == REF_INVALID,
                   "byte %zu (0x%02x) can continue a JSON text", off, data[off]);
    }

    if (memchr(data, 0, len)) return 0;          /* cJSON would stop at the NUL */
    char *copy = malloc(len + 1);
    if (!copy) return 0;
    memcpy(copy, data, len);
    copy[len] = 0;
    const char *end = NULL;
    cJSON *tree = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
    int cjson_ok = tree != NULL;
    cJSON_Delete(tree);
    free(copy);
    if (cjson_ok && !cjson_lax(data, len))
        FUZZ_CHECK(whole == REF_VALID && off == len, "cJSON accepts a text that jsonscan stops at byte %zu", off);
    if (whole == REF_VALID && !cjson_stricter(data, len))
        FUZZ_CHECK(cjson_ok, "cJSON rejects a valid text (jsonscan agrees it is valid)");
    return 0;
}
