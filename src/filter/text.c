/* text.c - the text spelling of a filter, for humans and the CLI (grammar: docs/FILTERS.md,
 * "Text form"): a hand-written lexer and recursive-descent parser into the same tree the
 * JSON parser builds (values read by the shared rules in json.c), and the canonical
 * printer (minimal parentheses, one spacing), so parse(print(t)) equals t.
 * Workload: one short filter per request (a search box, a CLI argument); errors point at
 * a line and column and say what was expected.
 */
#include "filter.h"
#include "../base/alloc.h"
#include "../base/timefmt.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

/* ---- lexer ---- */

typedef enum tk_kind {
    TK_EOF, TK_IDENT, TK_QNAME, TK_STRING, TK_NUMBER, TK_DURATION,
    TK_LPAREN, TK_RPAREN, TK_COMMA, TK_DOT,
    TK_EQ, TK_NE, TK_GT, TK_GE, TK_LT, TK_LE,
    TK_BAD,             /* a lexical error: bad_at and bad say where and what */
} tk_kind;

typedef struct token {
    tk_kind kind;
    size_t at, len;     /* the token's bytes in the input */
    size_t bad_at;
    char bad[160];      /* TK_BAD: "expected X, found Y" */
} token;

typedef struct tparse {
    const char *s;
    size_t len, pos;
    token la[3];        /* lookahead: the parser looks at most two tokens ahead */
    int n_la;
    uint32_t max_depth, max_nodes, max_values, nodes, nest;
    segd_error *err;
} tparse;

static int ident_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}

static int ident_char(unsigned char c)
{
    return ident_start(c) || (c >= '0' && c <= '9');
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int hex4(const char *s, size_t avail)
{
    if (avail < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value((unsigned char)s[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

static token bad_token(size_t at, size_t bad_at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static token bad_token(size_t at, size_t bad_at, const char *fmt, ...)
{
    token t;
    memset(&t, 0, sizeof t);
    t.kind = TK_BAD;
    t.at = at;
    t.bad_at = bad_at;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t.bad, sizeof t.bad, fmt, ap);
    va_end(ap);
    return t;
}

/* Scans a quoted string or name from s[at] (the quote q) to its closing quote, checking
 * escapes, control characters and UTF-8 as it goes. */
static token lex_quoted(tparse *p, size_t at, char q)
{
    const char *s = p->s;
    size_t i = at + 1;
    const char *what = q == '"' ? "string" : "name";
    for (;;) {
        if (i >= p->len)
            return bad_token(at, i, "expected the closing %c of the %s, found end of input", q, what);
        unsigned char c = (unsigned char)s[i];
        if (c == (unsigned char)q) break;
        if (c < 0x20 || c == 0x7f)
            return bad_token(at, i, "expected a character of the %s, found control character 0x%02x (write it as "
                             "\\n, \\t or \\u00XX)", what, c);
        if (c >= 0x80) {
            utf8proc_int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(p->len - i), &cp);
            if (k <= 0) return bad_token(at, i, "expected UTF-8 text, found byte 0x%02x", c);
            i += (size_t)k;
            continue;
        }
        if (c != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= p->len) return bad_token(at, i + 1, "expected an escape after \\, found end of input");
        char e = s[i + 1];
        if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' || e == 't' ||
            (e == '`' && q == '`')) {
            i += 2;
            continue;
        }
        if (e != 'u')
            return bad_token(at, i, "expected an escape \\\" \\\\ \\/ \\b \\f \\n \\r \\t%s or \\uXXXX, found \\%c",
                             q == '`' ? " \\`" : "", e >= 0x20 && e < 0x7f ? e : '?');
        int cp = hex4(s + i + 2, p->len - i - 2);
        if (cp < 0) return bad_token(at, i, "expected four hex digits after \\u");
        if (cp == 0) return bad_token(at, i, "expected a character, found \\u0000 (NUL), which filters cannot hold");
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return bad_token(at, i, "expected a character, found a lone low surrogate \\u%04x", cp);
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            int lo = i + 8 <= p->len && s[i + 6] == '\\' && s[i + 7] == 'u' ? hex4(s + i + 8, p->len - i - 8) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return bad_token(at, i, "expected a low surrogate \\uDC00-\\uDFFF after \\u%04x", cp);
            i += 6;
        }
        i += 6;
    }
    token t = {.kind = q == '"' ? TK_STRING : TK_QNAME, .at = at, .len = i + 1 - at};
    return t;
}

/* A JSON number, or a duration (digits and a unit s m h d w). */
static token lex_number(tparse *p, size_t at)
{
    const char *s = p->s;
    size_t i = at;
    while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    if (i > at && i < p->len && strchr("smhdw", s[i]) && s[i] && (i + 1 >= p->len || !ident_char((unsigned char)s[i + 1]))) {
        token t = {.kind = TK_DURATION, .at = at, .len = i + 1 - at};
        return t;
    }
    i = at;
    if (s[i] == '-') i++;
    if (i >= p->len || s[i] < '0' || s[i] > '9') return bad_token(at, i, "expected a digit after -");
    if (s[i] == '0') i++;
    else while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    if (i < p->len && s[i] == '.') {
        i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9') return bad_token(at, i, "expected a digit after the decimal point");
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9') return bad_token(at, i, "expected a digit in the exponent");
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < p->len && (ident_char((unsigned char)s[i]) || s[i] == '.')) {
        size_t end = i;
        while (end < p->len && ident_char((unsigned char)s[end])) end++;
        return bad_token(at, at, "expected a number (such as 12.5) or a duration (a whole number and a unit s, m, h, "
                         "d or w, such as 30d), found '%.*s'", (int)(end - at > 24 ? 24 : end - at), s + at);
    }
    token t = {.kind = TK_NUMBER, .at = at, .len = i - at};
    return t;
}

static token lex(tparse *p)
{
    const char *s = p->s;
    while (p->pos < p->len && (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r'))
        p->pos++;
    size_t at = p->pos;
    token t = {.kind = TK_EOF, .at = at, .len = 0};
    if (at >= p->len) return t;
    unsigned char c = (unsigned char)s[at];
    t.len = 1;
    switch (c) {
    case '(': t.kind = TK_LPAREN; break;
    case ')': t.kind = TK_RPAREN; break;
    case ',': t.kind = TK_COMMA; break;
    case '.': t.kind = TK_DOT; break;
    case '=': t.kind = TK_EQ; break;
    case '!':
        if (at + 1 < p->len && s[at + 1] == '=') t.kind = TK_NE, t.len = 2;
        else t = bad_token(at, at, "expected != or a condition, found '!'");
        break;
    case '>': case '<':
        t.kind = c == '>' ? TK_GT : TK_LT;
        if (at + 1 < p->len && s[at + 1] == '=') t.kind = c == '>' ? TK_GE : TK_LE, t.len = 2;
        break;
    case '"': case '`':
        t = lex_quoted(p, at, (char)c);
        break;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            t = lex_number(p, at);
        } else if (ident_start(c)) {
            size_t i = at;
            for (;;) {
                while (i < p->len && ident_char((unsigned char)s[i])) i++;
                if (i + 1 < p->len && s[i] == '.' && ident_start((unsigned char)s[i + 1])) i++;
                else break;
            }
            t.kind = TK_IDENT;
            t.len = i - at;
        } else {
            utf8proc_int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + at, (utf8proc_ssize_t)(p->len - at), &cp);
            if (k <= 0) t = bad_token(at, at, "expected UTF-8 text, found byte 0x%02x", c);
            else if (c < 0x20 || c == 0x7f) t = bad_token(at, at, "expected a condition or an operator, found control character 0x%02x", c);
            else t = bad_token(at, at, "expected a condition or an operator, found '%.*s' (quote names with `...`, "
                               "strings with \"...\")", (int)k, s + at);
        }
    }
    if (t.kind != TK_BAD) p->pos = at + t.len;
    else p->pos = p->len;          /* nothing after a lexical error is read */
    return t;
}

static const token *peek(tparse *p, int k)
{
    while (p->n_la <= k) p->la[p->n_la++] = lex(p);
    return &p->la[k];
}

static token next(tparse *p)
{
    token t = *peek(p, 0);
    memmove(&p->la[0], &p->la[1], (size_t)(p->n_la - 1) * sizeof p->la[0]);
    p->n_la--;
    return t;
}

/* 1 if t is the keyword kw (keywords ignore case: AND, And and and are one). */
static int is_kw(const tparse *p, const token *t, const char *kw)
{
    size_t n = strlen(kw);
    return t->kind == TK_IDENT && t->len == n && strncasecmp(p->s + t->at, kw, n) == 0;
}

/* ---- errors ---- */

/* Sets err once (the first error wins): status 422, code, "line L, column C: message". */
static void fail_at(tparse *p, size_t at, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void fail_at(tparse *p, size_t at, const char *code, const char *fmt, ...)
{
    if (p->err->status) return;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        unsigned char c = (unsigned char)p->s[i];
        if (c == '\n') line++, col = 1;
        else if ((c & 0xC0) != 0x80) col++;       /* columns count characters, not bytes */
    }
    char msg[sizeof p->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    segd_error_set(p->err, 422, code, "line %zu, column %zu: %s", line, col, msg);
    p->err->at = (long)at;
}

/* "expected X, found Y" at token t (or t's own lexical error). */
static void syntax(tparse *p, const token *t, const char *expected)
{
    if (t->kind == TK_BAD) {
        fail_at(p, t->bad_at, "filter_syntax", "%s", t->bad);
        return;
    }
    if (t->kind == TK_EOF) {
        fail_at(p, t->at, "filter_syntax", "expected %s, found end of input", expected);
        return;
    }
    size_t n = t->len;
    const char *s = p->s + t->at;
    int cut = 0;
    if (n > 32) {
        n = 32;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;   /* not inside a character */
        cut = 1;
    }
    int quoted = t->kind == TK_STRING || t->kind == TK_QNAME;
    char close[2] = {quoted ? (cut ? s[0] : 0) : '\'', 0};    /* a cut string still shows its closing quote */
    fail_at(p, t->at, "filter_syntax", "expected %s, found %s%.*s%s%s", expected, quoted ? "" : "'", (int)n, s,
            cut ? "..." : "", close);
}

static int expect(tparse *p, tk_kind kind, const char *expected)
{
    if (peek(p, 0)->kind != kind) {
        syntax(p, peek(p, 0), expected);
        return -1;
    }
    next(p);
    return 0;
}

static int expect_kw(tparse *p, const char *kw, const char *expected)
{
    if (!is_kw(p, peek(p, 0), kw)) {
        syntax(p, peek(p, 0), expected);
        return -1;
    }
    next(p);
    return 0;
}

static filter_node *new_node(tparse *p, filter_kind kind, size_t at)
{
    if (++p->nodes > p->max_nodes) {
        fail_at(p, at, "filter_too_large", "the filter has more than %u nodes; split it or simplify it", p->max_nodes);
        return NULL;
    }
    return filter_node_new(kind);
}

static int check_height(tparse *p, int h, size_t at)
{
    if ((uint32_t)h <= p->max_depth) return 0;
    fail_at(p, at, "filter_too_large", "groups are nested deeper than %u levels (an event's where counts as one); "
            "flatten them", p->max_depth);
    return -1;
}

/* Recursion guard: parentheses, not and where frames (a valid tree never needs more). */
static int enter(tparse *p, size_t at)
{
    if (++p->nest <= 2 * p->max_depth + 2) return 0;
    fail_at(p, at, "filter_too_large", "the filter is nested deeper than %u levels; flatten it", p->max_depth);
    return -1;
}

/* ---- decoding tokens ---- */

static void put_utf8(char *out, size_t *n, int32_t cp)
{
    *n += (size_t)utf8proc_encode_char(cp, (utf8proc_uint8_t *)out + *n);
}

/* The text of a STRING or QNAME token without quotes and escapes (checked by the lexer);
 * an IDENT's bytes as they are. A new string; *len_out its length. */
static char *token_text(const tparse *p, const token *t, size_t *len_out)
{
    const char *s = p->s + t->at;
    if (t->kind != TK_STRING && t->kind != TK_QNAME) {
        *len_out = t->len;
        return xstrndup(s, t->len);
    }
    char *out = xmalloc(t->len + 1);
    size_t n = 0;
    for (size_t i = 1; i + 1 < t->len;) {
        if (s[i] != '\\') {
            out[n++] = s[i++];
            continue;
        }
        char e = s[i + 1];
        i += 2;
        switch (e) {
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            int32_t cp = hex4(s + i, t->len - i);
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int32_t lo = hex4(s + i + 2, t->len - i - 2);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            put_utf8(out, &n, cp);       /* at most 4 bytes for the 6 or 12 read */
            break;
        }
        default: out[n++] = e; break;   /* " \ / ` */
        }
    }
    out[n] = 0;
    *len_out = n;
    return out;
}

/* ---- parser ---- */

static filter_node *parse_or(tparse *p, int in_where, int *h);

static const char *const fn_words[] = {"count", "sum", "avg", "min", "max", "count_distinct", "first_at", "last_at",
                                       "did", NULL};

/* Names that must be quoted where a name may stand: they start something else. */
static const char *const reserved[] = {"and", "or", "not", "in", "true", "false", NULL};

#define EXPECT_CONDITION "a condition (a name, count(...), sum(...), did(...), bucket(...), in segment \"...\"), " \
                         "not, or ("
#define EXPECT_OPERATOR "an operator: = != > >= < <= contains, not contains, starts with, ends with, in (...), " \
                        "not in (...), between, is set, is not set, is empty, is not empty, before, after, more than, " \
                        "less than, on day"

typedef struct value_spots {
    size_t *at;          /* the token offset of each value, for errors */
    size_t op_at;
} value_spots;

/* Appends a literal to n from the next token: a string, a number, true or false;
 * durations too when `duration` is set. */
static int parse_literal(tparse *p, filter_node *n, value_spots *vs, int duration)
{
    const token *t = peek(p, 0);
    filter_literal v;
    memset(&v, 0, sizeof v);
    if (t->kind == TK_STRING || (duration && t->kind == TK_DURATION)) {
        v.kind = FLIT_STRING;
        v.str = token_text(p, t, &v.len);
    } else if (t->kind == TK_NUMBER) {
        char *digits = xstrndup(p->s + t->at, t->len);
        v.kind = FLIT_NUMBER;
        v.number = strtod(digits, NULL);
        free(digits);
        if (!isfinite(v.number)) {
            fail_at(p, t->at, "invalid_value", "the number is out of range; numbers must be finite");
            return -1;
        }
    } else if (is_kw(p, t, "true") || is_kw(p, t, "false")) {
        v.kind = FLIT_BOOL;
        v.boolean = is_kw(p, t, "true");
    } else {
        syntax(p, t, duration ? "a duration such as 30d" : "a value: a \"string\", a number, true or false");
        return -1;
    }
    n->values = xrealloc(n->values, (n->n_values + 1) * sizeof *n->values);
    vs->at = xrealloc(vs->at, (n->n_values + 1) * sizeof *vs->at);
    vs->at[n->n_values] = t->at;
    n->values[n->n_values++] = v;
    next(p);
    return 0;
}

static int parse_list(tparse *p, filter_node *n, value_spots *vs)
{
    if (expect(p, TK_LPAREN, "( and a list of values, such as (\"DE\", \"FR\")")) return -1;
    for (;;) {
        if (n->n_values >= p->max_values) {
            fail_at(p, peek(p, 0)->at, "filter_too_large", "%s has more than %u values; split it or use a segment",
                    filter_op_name(n->op), p->max_values);
            return -1;
        }
        if (parse_literal(p, n, vs, 0)) return -1;
        if (peek(p, 0)->kind == TK_COMMA) {
            next(p);
            continue;
        }
        return expect(p, TK_RPAREN, ", or )");
    }
}

/* Values by the shape of n->op (set). */
static int parse_values(tparse *p, filter_node *n, value_spots *vs, int ago_word)
{
    switch (n->op) {
    case FOP_IS_SET: case FOP_IS_NOT_SET: case FOP_IS_EMPTY: case FOP_IS_NOT_EMPTY:
        return 0;
    case FOP_IN: case FOP_NOT_IN:
        return parse_list(p, n, vs);
    case FOP_BETWEEN:
        if (parse_literal(p, n, vs, 0)) return -1;
        if (expect_kw(p, "and", "and, as in between 1 and 5")) return -1;
        return parse_literal(p, n, vs, 0);
    case FOP_MORE_THAN_AGO: case FOP_LESS_THAN_AGO:
        if (parse_literal(p, n, vs, 1)) return -1;
        return ago_word ? expect_kw(p, "ago", "ago, as in more than 30d ago") : 0;
    case FOP_ON_DAY:
        if (parse_literal(p, n, vs, 0)) return -1;
        if (is_kw(p, peek(p, 0), "offset")) {
            next(p);
            const token *t = peek(p, 0);
            if (t->kind != TK_STRING) {
                syntax(p, t, "an offset such as \"+02:00\"");
                return -1;
            }
            size_t len;
            char *off = token_text(p, t, &len);
            int rc = filter_offset_parse(off, len, &n->offset_min);
            free(off);
            if (rc) {
                fail_at(p, t->at, "invalid_value", "offset is a fixed UTC offset \"+hh:mm\" or \"-hh:mm\", such as \"+02:00\"");
                return -1;
            }
            next(p);
        }
        return 0;
    default:
        return parse_literal(p, n, vs, 0);
    }
}

/* The operator and its values after a name or a metric. */
static int parse_op_clause(tparse *p, filter_node *n, value_spots *vs)
{
    const token *t = peek(p, 0);
    vs->op_at = t->at;
    int ago_word = 0;
    switch (t->kind) {
    case TK_EQ: n->op = FOP_EQ; break;
    case TK_NE: n->op = FOP_NE; break;
    case TK_GT: n->op = FOP_GT; break;
    case TK_GE: n->op = FOP_GTE; break;
    case TK_LT: n->op = FOP_LT; break;
    case TK_LE: n->op = FOP_LTE; break;
    case TK_IDENT:
        if (is_kw(p, t, "not")) {
            next(p);
            t = peek(p, 0);
            if (is_kw(p, t, "contains")) n->op = FOP_NOT_CONTAINS;
            else if (is_kw(p, t, "in")) n->op = FOP_NOT_IN;
            else {
                syntax(p, t, "contains or in after not");
                return -1;
            }
        } else if (is_kw(p, t, "starts") || is_kw(p, t, "ends")) {
            n->op = is_kw(p, t, "starts") ? FOP_STARTS_WITH : FOP_ENDS_WITH;
            next(p);
            t = peek(p, 0);
            if (!is_kw(p, t, "with")) {
                syntax(p, t, "with");
                return -1;
            }
        } else if (is_kw(p, t, "is")) {
            next(p);
            int negated = is_kw(p, peek(p, 0), "not");
            if (negated) next(p);
            t = peek(p, 0);
            if (is_kw(p, t, "set")) n->op = negated ? FOP_IS_NOT_SET : FOP_IS_SET;
            else if (is_kw(p, t, "empty")) n->op = negated ? FOP_IS_NOT_EMPTY : FOP_IS_EMPTY;
            else {
                syntax(p, t, negated ? "set or empty" : "set, empty or not");
                return -1;
            }
        } else if (is_kw(p, t, "more") || is_kw(p, t, "less")) {
            n->op = is_kw(p, t, "more") ? FOP_MORE_THAN_AGO : FOP_LESS_THAN_AGO;
            next(p);
            t = peek(p, 0);
            if (!is_kw(p, t, "than")) {
                syntax(p, t, "than, as in more than 30d ago");
                return -1;
            }
            ago_word = 1;
        } else if (is_kw(p, t, "on")) {
            next(p);
            t = peek(p, 0);
            if (!is_kw(p, t, "day")) {
                syntax(p, t, "day, as in on day \"2026-11-28\"");
                return -1;
            }
            n->op = FOP_ON_DAY;
        } else {
            /* the JSON names work too: eq, not_in, starts_with, more_than_ago ... */
            char word[32];
            size_t k = t->len < sizeof word ? t->len : sizeof word - 1;
            for (size_t i = 0; i < k; i++) word[i] = (char)((p->s[t->at + i] >= 'A' && p->s[t->at + i] <= 'Z')
                                                            ? p->s[t->at + i] + 32 : p->s[t->at + i]);
            word[k] = 0;
            n->op = t->len < sizeof word ? filter_op_parse(word, k) : FOP_NONE;
            if (n->op == FOP_NONE || n->op == FOP_IN_CACHED) {
                syntax(p, t, EXPECT_OPERATOR);
                return -1;
            }
        }
        break;
    default:
        syntax(p, t, EXPECT_OPERATOR);
        return -1;
    }
    next(p);
    return parse_values(p, n, vs, ago_word);
}

/* The shared value rules, with errors placed at the value or the operator. */
static int finish(tparse *p, filter_node *n, const value_spots *vs)
{
    int bad;
    segd_error e;
    segd_error_clear(&e);
    if (filter_condition_finish(n, &bad, &e) == 0) return 0;
    size_t at = bad >= 0 && (uint32_t)bad < n->n_values ? vs->at[bad] : vs->op_at;
    if (strcmp(e.code, "invalid_value") == 0 && bad < 0 && n->n_values) at = vs->at[0];
    fail_at(p, at, e.code, "%s", e.message);
    return -1;
}

static int parse_case(tparse *p, filter_node *n)
{
    if (!is_kw(p, peek(p, 0), "case")) return 0;
    next(p);
    const token *t = peek(p, 0);
    if (is_kw(p, t, "sensitive")) n->case_sensitive = 1;
    else if (!is_kw(p, t, "insensitive")) {
        syntax(p, t, "sensitive or insensitive");
        return -1;
    }
    next(p);
    return 0;
}

/* NAME op-clause [case ...]: an attribute, or a property inside where. */
static filter_node *parse_condition(tparse *p, int in_where)
{
    const token *t = peek(p, 0);
    value_spots vs = {NULL, 0};
    filter_node *n = new_node(p, in_where ? FILTER_PROPERTY : FILTER_ATTRIBUTE, t->at);
    if (!n) return NULL;
    size_t len;
    n->name = token_text(p, t, &len);
    if (len == 0 || strlen(n->name) != len) {
        fail_at(p, t->at, "invalid_value", "a name is not empty");
        goto fail;
    }
    next(p);
    if (parse_op_clause(p, n, &vs) || parse_case(p, n) || finish(p, n, &vs)) goto fail;
    free(vs.at);
    return n;
fail:
    free(vs.at);
    filter_free(n);
    return NULL;
}

static int parse_time_value(tparse *p, int64_t *ms)
{
    const token *t = peek(p, 0);
    if (t->kind != TK_STRING) {
        syntax(p, t, "a date-time such as \"2026-11-01T00:00:00Z\"");
        return -1;
    }
    size_t len;
    char *s = token_text(p, t, &len);
    int rc = timefmt_parse(s, len, 1, ms);
    free(s);
    if (rc || *ms < -62167219200000LL || *ms > 253402300799999LL) {
        fail_at(p, t->at, "invalid_value", "bad date-time: write an ISO 8601 date-time such as \"2026-11-28T19:12:01Z\" "
                "(years 0000 to 9999)");
        return -1;
    }
    next(p);
    return 0;
}

/* fn(EVENT[.PROPERTY] [where FILTER] [, within D | , from A to B]) op-clause, or did(...). */
static filter_node *parse_metric(tparse *p, int in_where, int *h)
{
    token fn_tok = next(p);
    value_spots vs = {NULL, 0};
    char *prop = NULL;
    size_t prop_at = 0;
    filter_node *n = NULL;
    if (in_where) {
        fail_at(p, fn_tok.at, "invalid_filter", "an event's where holds property conditions and groups only, not "
                "another event condition");
        return NULL;
    }
    n = new_node(p, FILTER_EVENT, fn_tok.at);
    if (!n) return NULL;
    int did = is_kw(p, &fn_tok, "did");
    if (!did) {
        char word[32];
        for (size_t i = 0; i < fn_tok.len && i < sizeof word; i++) {
            char c = p->s[fn_tok.at + i];
            word[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
        }
        n->fn = filter_fn_parse(word, fn_tok.len);
    }
    next(p);                                       /* ( */

    const token *t = peek(p, 0);
    size_t len;
    if (t->kind == TK_QNAME) {
        n->name = token_text(p, t, &len);
    } else if (t->kind == TK_IDENT) {
        const char *dot = memchr(p->s + t->at, '.', t->len);
        len = dot ? (size_t)(dot - (p->s + t->at)) : t->len;
        n->name = xstrndup(p->s + t->at, len);
        if (dot) {
            prop = xstrndup(dot + 1, t->len - len - 1);
            prop_at = t->at + len + 1;
        }
    } else {
        syntax(p, t, "an event name");
        goto fail;
    }
    if (len == 0 || strlen(n->name) != len) {
        fail_at(p, t->at, "invalid_value", "an event name is not empty");
        goto fail;
    }
    next(p);
    if (!prop && peek(p, 0)->kind == TK_DOT) {
        next(p);
        t = peek(p, 0);
        if (t->kind != TK_IDENT && t->kind != TK_QNAME) {
            syntax(p, t, "a property name");
            goto fail;
        }
        prop_at = t->at;
        prop = token_text(p, t, &len);
        if (len == 0 || strlen(prop) != len) {
            fail_at(p, t->at, "invalid_value", "a property name is not empty");
            goto fail;
        }
        next(p);
    }
    int reads = n->fn >= FFN_SUM && n->fn <= FFN_COUNT_DISTINCT;
    if (prop && !reads) {
        fail_at(p, prop_at, "invalid_filter", "%s takes an event only (quote an event name that has a dot: `page.view`); "
                "to look at properties use where", did ? "did" : filter_fn_name(n->fn));
        goto fail;
    }
    if (!prop && reads) {
        fail_at(p, peek(p, 0)->at, "invalid_filter", "%s reads a property: write %s(event.property)",
                filter_fn_name(n->fn), filter_fn_name(n->fn));
        goto fail;
    }
    n->metric_property = prop;
    prop = NULL;

    int hw = 0;
    if (is_kw(p, peek(p, 0), "where")) {
        size_t where_at = next(p).at;
        if (enter(p, where_at)) goto fail;
        n->where = parse_or(p, 1, &hw);
        p->nest--;
        if (!n->where) goto fail;
        if (check_height(p, hw + 1, where_at)) goto fail;
    }
    if (peek(p, 0)->kind == TK_COMMA) {
        next(p);
        t = peek(p, 0);
        if (is_kw(p, t, "within")) {
            next(p);
            t = peek(p, 0);
            if (t->kind != TK_DURATION && t->kind != TK_STRING) {
                syntax(p, t, "a duration such as 14d");
                goto fail;
            }
            char *d = token_text(p, t, &len);
            int rc = filter_duration_parse(d, len, &n->within_ms);
            free(d);
            if (rc) {
                fail_at(p, t->at, "invalid_value", "durations are a whole number and a unit s, m, h, d or w, such as "
                        "\"30d\", at most 100000d");
                goto fail;
            }
            next(p);
            n->window = FWIN_WITHIN;
        } else if (is_kw(p, t, "from")) {
            size_t from_at = next(p).at;
            if (parse_time_value(p, &n->from_ms)) goto fail;
            if (expect_kw(p, "to", "to, as in from \"2026-11-01\" to \"2026-12-01\"")) goto fail;
            if (parse_time_value(p, &n->to_ms)) goto fail;
            if (n->from_ms > n->to_ms) {
                fail_at(p, from_at, "invalid_value", "from is after to; swap them");
                goto fail;
            }
            n->window = FWIN_RANGE;
        } else {
            syntax(p, t, "within or from after the comma");
            goto fail;
        }
    }
    if (expect(p, TK_RPAREN, n->window ? ")" : n->where ? ", or )" : "where, \",\" or )")) goto fail;

    if (did) {
        n->op = FOP_GTE;                          /* did it at least once */
        n->values = xcalloc(1, sizeof *n->values);
        n->values[0].kind = FLIT_NUMBER;
        n->values[0].number = 1;
        n->n_values = 1;
    } else if (parse_op_clause(p, n, &vs) || finish(p, n, &vs)) {
        goto fail;
    }
    *h = n->where ? hw + 1 : 0;
    free(vs.at);
    return n;
fail:
    free(prop);
    free(vs.at);
    filter_free(n);
    return NULL;
}

static int parse_bucket_bound(tparse *p, int *out)
{
    const token *t = peek(p, 0);
    if (t->kind != TK_NUMBER) {
        syntax(p, t, "a whole number from 0 to 99");
        return -1;
    }
    char *digits = xstrndup(p->s + t->at, t->len);
    double v = strtod(digits, NULL);
    free(digits);
    if (v != floor(v) || v < 0 || v > 99) {
        fail_at(p, t->at, "invalid_value", "bucket bounds are whole numbers from 0 to 99");
        return -1;
    }
    *out = (int)v;
    next(p);
    return 0;
}

/* bucket("salt") between F and T */
static filter_node *parse_bucket(tparse *p, int in_where)
{
    token b = next(p);
    if (in_where) {
        fail_at(p, b.at, "invalid_filter", "an event's where holds property conditions and groups only, not bucket");
        return NULL;
    }
    filter_node *n = new_node(p, FILTER_BUCKET, b.at);
    if (!n) return NULL;
    next(p);                                      /* ( */
    const token *t = peek(p, 0);
    if (t->kind != TK_STRING) {
        syntax(p, t, "the salt, a \"string\" such as \"exp-1\"");
        goto fail;
    }
    size_t len;
    n->name = token_text(p, t, &len);
    next(p);
    if (expect(p, TK_RPAREN, ")") || expect_kw(p, "between", "between, as in bucket(\"exp-1\") between 0 and 9")) goto fail;
    size_t from_at = peek(p, 0)->at;
    if (parse_bucket_bound(p, &n->bucket_from) || expect_kw(p, "and", "and") || parse_bucket_bound(p, &n->bucket_to))
        goto fail;
    if (n->bucket_from > n->bucket_to) {
        fail_at(p, from_at, "invalid_value", "from is greater than to; buckets are the range [from, to] within 0..99");
        goto fail;
    }
    return n;
fail:
    filter_free(n);
    return NULL;
}

/* in segment "ID" | not in segment "ID" | in cached segment "ID" */
static filter_node *parse_segment(tparse *p, int in_where, int negated)
{
    size_t at = peek(p, 0)->at;
    if (negated) next(p);
    next(p);                                      /* in */
    if (in_where) {
        fail_at(p, at, "invalid_filter", "an event's where holds property conditions and groups only, not segments");
        return NULL;
    }
    filter_node *n = new_node(p, FILTER_SEGMENT, at);
    if (!n) return NULL;
    n->op = negated ? FOP_NOT_IN : FOP_IN;
    if (!negated && is_kw(p, peek(p, 0), "cached")) {
        next(p);
        n->op = FOP_IN_CACHED;
    }
    if (expect_kw(p, "segment", negated || n->op == FOP_IN_CACHED ? "segment" : "segment or cached")) goto fail;
    const token *t = peek(p, 0);
    if (t->kind != TK_STRING) {
        syntax(p, t, "the segment id, a \"string\"");
        goto fail;
    }
    size_t len;
    n->name = token_text(p, t, &len);
    if (len == 0) {
        fail_at(p, t->at, "invalid_value", "a segment id is not empty");
        goto fail;
    }
    next(p);
    return n;
fail:
    filter_free(n);
    return NULL;
}

static filter_node *parse_unary(tparse *p, int in_where, int *h);

/* and(F, ...) / or(F, ...): groups of any size, as the printer writes those of 0 or 1. */
static filter_node *parse_group_call(tparse *p, int in_where, int *h)
{
    token kw = next(p);
    filter_node *n = new_node(p, is_kw(p, &kw, "and") ? FILTER_AND : FILTER_OR, kw.at);
    if (!n) return NULL;
    next(p);                                      /* ( */
    if (enter(p, kw.at)) goto fail;
    int max = 0;
    if (peek(p, 0)->kind != TK_RPAREN) {
        for (;;) {
            int hc;
            filter_node *c = parse_or(p, in_where, &hc);
            if (!c) goto fail;
            filter_node_add(n, c);
            if (hc > max) max = hc;
            if (peek(p, 0)->kind != TK_COMMA) break;
            next(p);
        }
    }
    if (expect(p, TK_RPAREN, ", or )")) goto fail;
    p->nest--;
    *h = max + 1;
    if (check_height(p, *h, kw.at)) goto fail;
    return n;
fail:
    filter_free(n);
    return NULL;
}

static filter_node *parse_primary(tparse *p, int in_where, int *h)
{
    const token *t = peek(p, 0);
    *h = 0;
    if (t->kind == TK_LPAREN) {
        size_t at = next(p).at;
        if (enter(p, at)) return NULL;
        filter_node *n = parse_or(p, in_where, h);
        if (!n) return NULL;
        if (expect(p, TK_RPAREN, "and, or or )")) {
            filter_free(n);
            return NULL;
        }
        p->nest--;
        return n;
    }
    if (t->kind == TK_QNAME) return parse_condition(p, in_where);
    if (t->kind != TK_IDENT) {
        syntax(p, t, EXPECT_CONDITION);
        return NULL;
    }
    int call = peek(p, 1)->kind == TK_LPAREN;
    t = peek(p, 0);                              /* peek(1) may have moved the buffer */
    if (call && (is_kw(p, t, "and") || is_kw(p, t, "or"))) return parse_group_call(p, in_where, h);
    if (call && is_kw(p, t, "bucket")) return parse_bucket(p, in_where);
    for (const char *const *f = fn_words; call && *f; f++)
        if (is_kw(p, t, *f)) return parse_metric(p, in_where, h);
    if (is_kw(p, t, "in")) return parse_segment(p, in_where, 0);
    for (const char *const *r = reserved; *r; r++)
        if (is_kw(p, t, *r)) {
            syntax(p, t, EXPECT_CONDITION " (a name spelt like a keyword is quoted: `in`)");
            return NULL;
        }
    return parse_condition(p, in_where);
}

static filter_node *parse_unary(tparse *p, int in_where, int *h)
{
    *h = 0;
    if (!is_kw(p, peek(p, 0), "not")) return parse_primary(p, in_where, h);
    if (is_kw(p, peek(p, 1), "in")) return parse_segment(p, in_where, 1);
    size_t at = next(p).at;
    if (enter(p, at)) return NULL;
    filter_node *n = new_node(p, FILTER_NOT, at);
    if (!n) return NULL;
    filter_node *c = parse_unary(p, in_where, h);
    if (!c) goto fail;
    filter_node_add(n, c);
    p->nest--;
    *h += 1;
    if (check_height(p, *h, at)) goto fail;
    return n;
fail:
    filter_free(n);
    return NULL;
}

/* One level of infix: operands joined by `word` (and / or); a single operand is itself. */
static filter_node *parse_infix(tparse *p, int in_where, int *h, int is_or)
{
    const char *word = is_or ? "or" : "and";
    size_t at = peek(p, 0)->at;
    filter_node *first = is_or ? parse_infix(p, in_where, h, 0) : parse_unary(p, in_where, h);
    if (!first || !is_kw(p, peek(p, 0), word)) return first;
    filter_node *g = new_node(p, is_or ? FILTER_OR : FILTER_AND, at);
    if (!g) {
        filter_free(first);
        return NULL;
    }
    filter_node_add(g, first);
    int max = *h;
    while (is_kw(p, peek(p, 0), word)) {
        next(p);
        int hc;
        filter_node *c = is_or ? parse_infix(p, in_where, &hc, 0) : parse_unary(p, in_where, &hc);
        if (!c) goto fail;
        filter_node_add(g, c);
        if (hc > max) max = hc;
    }
    *h = max + 1;
    if (check_height(p, *h, at)) goto fail;
    return g;
fail:
    filter_free(g);
    return NULL;
}

static filter_node *parse_or(tparse *p, int in_where, int *h)
{
    return parse_infix(p, in_where, h, 1);
}

filter_node *filter_parse_text(const char *text, size_t len, const filter_limits *lim, segd_error *err)
{
    tparse p;
    memset(&p, 0, sizeof p);
    p.s = text;
    p.len = len;
    p.max_depth = lim && lim->max_depth ? lim->max_depth : FILTER_DEFAULT_MAX_DEPTH;
    p.max_nodes = lim && lim->max_nodes ? lim->max_nodes : FILTER_DEFAULT_MAX_NODES;
    p.max_values = lim && lim->max_values ? lim->max_values : FILTER_DEFAULT_MAX_VALUES;
    p.err = err;
    segd_error_clear(err);
    int h;
    filter_node *n = parse_or(&p, 0, &h);
    if (n && peek(&p, 0)->kind != TK_EOF) {
        syntax(&p, peek(&p, 0), "and, or or the end of the filter");
        filter_free(n);
        n = NULL;
    }
    return n;
}

/* ---- printer ---- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static void putn(sbuf *b, const char *s, size_t n)
{
    b->s = xgrow(b->s, 1, &b->cap, b->len + n + 1, 64);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void put(sbuf *b, const char *s)
{
    putn(b, s, strlen(s));
}

/* Quoted with JSON escapes; q is " for strings, ` for names. */
static void put_quoted(sbuf *b, const char *s, size_t len, char q)
{
    putn(b, &q, 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == (unsigned char)q || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            putn(b, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            const char *short_form = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : c == '\b' ? "\\b"
                                   : c == '\f' ? "\\f" : NULL;
            if (short_form) put(b, short_form);
            else {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                put(b, esc);
            }
        } else {
            putn(b, (const char *)&c, 1);
        }
    }
    putn(b, &q, 1);
}

/* 1 if name reads as one IDENT token ([A-Za-z_$][A-Za-z0-9_$]*, dotted when dots is set)
 * and is no reserved word. */
static int plain_name(const char *name, int dots)
{
    const unsigned char *s = (const unsigned char *)name;
    if (!ident_start(s[0])) return 0;
    for (size_t i = 1; s[i]; i++) {
        if (ident_char(s[i])) continue;
        if (!dots || s[i] != '.' || !ident_start(s[i + 1])) return 0;
    }
    for (const char *const *r = reserved; *r; r++)
        if (strcasecmp(name, *r) == 0) return 0;
    return 1;
}

static void put_name(sbuf *b, const char *name, int dots)
{
    if (plain_name(name, dots)) put(b, name);
    else put_quoted(b, name, strlen(name), '`');
}

/* The shortest text that reads back as the same double, without an exponent for
 * integers below 1e17 (500, not 5e+02). */
static void put_number(sbuf *b, double x)
{
    char buf[40];
    filter_format_number(x, buf);
    put(b, buf);
}

static void put_time(sbuf *b, int64_t ms)
{
    char buf[TIMEFMT_LEN];
    timefmt_format(ms, buf);
    put_quoted(b, buf, strlen(buf), '"');
}

static void put_literal(sbuf *b, const filter_node *n, const filter_literal *v)
{
    char buf[TIMEFMT_LEN];
    if (n->op == FOP_ON_DAY) {
        timefmt_format(v->time_ms + (int64_t)n->offset_min * 60000, buf);
        put_quoted(b, buf, 10, '"');
    } else if (n->op == FOP_MORE_THAN_AGO || n->op == FOP_LESS_THAN_AGO) {
        put(b, filter_duration_format(n->duration_ms, buf));
    } else if (v->is_time) {
        put_time(b, v->time_ms);
    } else if (v->kind == FLIT_STRING) {
        put_quoted(b, v->str, v->len, '"');
    } else if (v->kind == FLIT_NUMBER) {
        put_number(b, v->number);
    } else {
        put(b, v->boolean ? "true" : "false");
    }
}

static void put_op_clause(sbuf *b, const filter_node *n)
{
    static const char *const words[FOP_COUNT_] = {
        [FOP_EQ] = "=", [FOP_NE] = "!=", [FOP_GT] = ">", [FOP_GTE] = ">=", [FOP_LT] = "<", [FOP_LTE] = "<=",
        [FOP_CONTAINS] = "contains", [FOP_NOT_CONTAINS] = "not contains", [FOP_STARTS_WITH] = "starts with",
        [FOP_ENDS_WITH] = "ends with", [FOP_IN] = "in", [FOP_NOT_IN] = "not in", [FOP_IS_SET] = "is set",
        [FOP_IS_NOT_SET] = "is not set", [FOP_IS_EMPTY] = "is empty", [FOP_IS_NOT_EMPTY] = "is not empty",
        [FOP_BETWEEN] = "between", [FOP_BEFORE] = "before", [FOP_AFTER] = "after",
        [FOP_MORE_THAN_AGO] = "more than", [FOP_LESS_THAN_AGO] = "less than", [FOP_ON_DAY] = "on day",
    };
    put(b, " ");
    put(b, words[n->op] ? words[n->op] : filter_op_name(n->op));
    if (n->op == FOP_IN || n->op == FOP_NOT_IN) {
        put(b, " (");
        for (uint32_t i = 0; i < n->n_values; i++) {
            if (i) put(b, ", ");
            put_literal(b, n, &n->values[i]);
        }
        put(b, ")");
    } else if (n->op == FOP_BETWEEN && n->n_values == 2) {
        put(b, " ");
        put_literal(b, n, &n->values[0]);
        put(b, " and ");
        put_literal(b, n, &n->values[1]);
    } else if (n->n_values == 1) {
        put(b, " ");
        put_literal(b, n, &n->values[0]);
    }
    if (n->op == FOP_MORE_THAN_AGO || n->op == FOP_LESS_THAN_AGO) put(b, " ago");
    if (n->op == FOP_ON_DAY && n->offset_min) {
        char off[8];
        put(b, " offset \"");
        put(b, filter_offset_format(n->offset_min, off));
        put(b, "\"");
    }
}

typedef enum print_ctx { CTX_TOP, CTX_OR, CTX_AND, CTX_NOT } print_ctx;

static void put_node(sbuf *b, const filter_node *n, print_ctx ctx);

static void put_event(sbuf *b, const filter_node *n)
{
    int did = n->fn == FFN_COUNT && n->op == FOP_GTE && n->n_values == 1 && n->values[0].kind == FLIT_NUMBER &&
              n->values[0].number == 1;
    put(b, did ? "did" : filter_fn_name(n->fn));
    put(b, "(");
    put_name(b, n->name, 0);
    if (n->metric_property) {
        put(b, ".");
        put_name(b, n->metric_property, 1);
    }
    if (n->where) {
        put(b, " where ");
        put_node(b, n->where, CTX_TOP);
    }
    if (n->window == FWIN_WITHIN) {
        char buf[FILTER_DURATION_LEN];
        put(b, ", within ");
        put(b, filter_duration_format(n->within_ms, buf));
    } else if (n->window == FWIN_RANGE) {
        put(b, ", from ");
        put_time(b, n->from_ms);
        put(b, " to ");
        put_time(b, n->to_ms);
    }
    put(b, ")");
    if (!did) put_op_clause(b, n);
}

static void put_node(sbuf *b, const filter_node *n, print_ctx ctx)
{
    char buf[16];
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR: {
        const char *word = n->kind == FILTER_AND ? "and" : "or";
        if (n->n_children < 2) {                  /* no infix spelling keeps these */
            put(b, word);
            put(b, "(");
            if (n->n_children) put_node(b, n->children[0], CTX_TOP);
            put(b, ")");
            break;
        }
        int parens = ctx == CTX_NOT || ctx == CTX_AND || (n->kind == FILTER_OR && ctx == CTX_OR);
        if (parens) put(b, "(");
        for (uint32_t i = 0; i < n->n_children; i++) {
            if (i) {
                put(b, " ");
                put(b, word);
                put(b, " ");
            }
            put_node(b, n->children[i], n->kind == FILTER_AND ? CTX_AND : CTX_OR);
        }
        if (parens) put(b, ")");
        break;
    }
    case FILTER_NOT:
        put(b, "not ");
        put_node(b, n->children[0], CTX_NOT);
        break;
    case FILTER_ATTRIBUTE: case FILTER_PROPERTY:
        put_name(b, n->name, 1);
        put_op_clause(b, n);
        if (n->case_sensitive) put(b, " case sensitive");
        break;
    case FILTER_EVENT:
        put_event(b, n);
        break;
    case FILTER_BUCKET:
        put(b, "bucket(");
        put_quoted(b, n->name, strlen(n->name), '"');
        snprintf(buf, sizeof buf, "%d", n->bucket_from);
        put(b, ") between ");
        put(b, buf);
        snprintf(buf, sizeof buf, "%d", n->bucket_to);
        put(b, " and ");
        put(b, buf);
        break;
    case FILTER_SEGMENT: {
        /* not (in segment "x") is not `not in segment "x"` (op not_in): keep the parentheses */
        int parens = ctx == CTX_NOT && n->op != FOP_NOT_IN;
        if (parens) put(b, "(");
        put(b, n->op == FOP_NOT_IN ? "not in segment " : n->op == FOP_IN_CACHED ? "in cached segment " : "in segment ");
        put_quoted(b, n->name, strlen(n->name), '"');
        if (parens) put(b, ")");
        break;
    }
    }
}

char *filter_print_text(const filter_node *n)
{
    sbuf b = {NULL, 0, 0};
    put_node(&b, n, CTX_TOP);
    if (!b.s) b.s = xstrdup("");
    return b.s;
}
