/* jsonscan.c - a JSON syntax scanner that reports the first bad byte (see jsonscan.h).
 * A small state machine over an explicit stack of open containers. */
#include "jsonscan.h"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static size_t skip_ws(const char *s, size_t i, size_t len)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Set by scan_string when it met a \u0000 escape (valid JSON, refused by segd). */
typedef struct scan_state {
    size_t first_nul;          /* offset of the first \u0000 escape, or (size_t)-1 */
} scan_state;

static __thread scan_state *current_state;

/* Scans a string starting at s[i] == '"'; returns the offset after it, or sets *bad. */
static size_t scan_string(const char *s, size_t i, size_t len, size_t *bad)
{
    i++;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') return i + 1;
        if (c < 0x20) { *bad = i; return i; }
        if (c == '\\') {
            if (i + 1 >= len) { *bad = len; return len; }
            char e = s[i + 1];
            if (e == 'u') {
                for (size_t k = 2; k < 6; k++)
                    if (i + k >= len || !is_hex(s[i + k])) { *bad = i + k < len ? i + k : len; return i; }
                if (current_state && current_state->first_nul == (size_t)-1 && memcmp(s + i + 2, "0000", 4) == 0)
                    current_state->first_nul = i;
                i += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0) { *bad = i + 1; return i; }
            i += 2;
            continue;
        }
        i++;
    }
    *bad = len;
    return len;
}

static size_t scan_number(const char *s, size_t i, size_t len, size_t *bad)
{
    if (s[i] == '-') i++;
    if (i >= len) { *bad = len; return len; }
    if (s[i] == '0') i++;
    else if (is_digit(s[i])) while (i < len && is_digit(s[i])) i++;
    else { *bad = i; return i; }
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || !is_digit(s[i])) { *bad = i; return i; }
        while (i < len && is_digit(s[i])) i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= len || !is_digit(s[i])) { *bad = i; return i; }
        while (i < len && is_digit(s[i])) i++;
    }
    return i;
}

int jsonscan_validate(const char *s, size_t len, size_t *at)
{
    scan_state st = {(size_t)-1};
    current_state = &st;
    size_t bad = jsonscan_error_offset(s, len);
    current_state = NULL;
    /* a complete text scans to its end; an incomplete one stops there too, so check
     * that the scanner saw the whole value: the last non-space byte closes it */
    if (bad < len) {
        *at = bad;
        return JSONSCAN_SYNTAX;
    }
    if (st.first_nul != (size_t)-1) {
        *at = st.first_nul;
        return JSONSCAN_NUL;
    }
    *at = len;
    return JSONSCAN_OK;
}

size_t jsonscan_error_offset(const char *s, size_t len)
{
    char *stack = NULL;           /* '{' or '[' per open container */
    size_t depth = 0, cap = 0, bad = (size_t)-1;
    size_t i = skip_ws(s, 0, len);
    enum { VALUE, AFTER_VALUE, KEY } want = VALUE;
    while (bad == (size_t)-1) {
        i = skip_ws(s, i, len);
        if (i >= len) { bad = len; break; }
        char c = s[i];
        if (want == KEY) {
            if (c != '"') { bad = i; break; }
            i = scan_string(s, i, len, &bad);
            if (bad != (size_t)-1) break;
            i = skip_ws(s, i, len);
            if (i >= len) { bad = len; break; }
            if (s[i] != ':') { bad = i; break; }
            i++;
            want = VALUE;
            continue;
        }
        if (want == AFTER_VALUE) {
            if (depth == 0) { bad = i; break; }           /* trailing bytes after the text */
            char open = stack[depth - 1];
            if (c == ',') { i++; want = open == '{' ? KEY : VALUE; continue; }
            if ((open == '{' && c == '}') || (open == '[' && c == ']')) {
                depth--;
                i++;
                if (depth == 0) {
                    i = skip_ws(s, i, len);
                    bad = i < len ? i : len;
                    if (i >= len) bad = len;
                    break;
                }
                continue;
            }
            bad = i;
            break;
        }
        /* VALUE */
        if (c == '{' || c == '[') {
            stack = xgrow(stack, 1, &cap, depth + 1, 64);
            stack[depth++] = c;
            i = skip_ws(s, i + 1, len);
            if (i < len && ((c == '{' && s[i] == '}') || (c == '[' && s[i] == ']'))) {
                want = VALUE;        /* an empty container is a complete value */
                depth--;
                i++;
                if (depth == 0) { i = skip_ws(s, i, len); bad = i < len ? i : len; break; }
                want = AFTER_VALUE;
                continue;
            }
            want = c == '{' ? KEY : VALUE;
            continue;
        }
        if (c == '"') i = scan_string(s, i, len, &bad);
        else if (c == '-' || is_digit(c)) i = scan_number(s, i, len, &bad);
        else {
            const char *lit = c == 't' ? "true" : c == 'f' ? "false" : c == 'n' ? "null" : NULL;
            /* a misspelt literal is reported at its first byte: "not json" is bad at 0 */
            if (!lit) { bad = i; break; }
            size_t n = strlen(lit);
            for (size_t k = 0; k < n; k++)
                if (i + k >= len || s[i + k] != lit[k]) { bad = i + k < len ? i : len; break; }   /* the token's start */
            if (bad != (size_t)-1) break;
            i += n;
        }
        if (bad != (size_t)-1) break;
        if (depth == 0) {
            i = skip_ws(s, i, len);
            bad = i < len ? i : len;
            break;
        }
        want = AFTER_VALUE;
    }
    free(stack);
    return bad;
}
