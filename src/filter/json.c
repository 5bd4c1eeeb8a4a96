/* json.c - the JSON spelling of a filter (docs/FILTERS.md): parsing a cJSON tree or JSON
 * text into a filter tree with every shape and value checked, and printing the canonical
 * form. Also the value rules both spellings share (filter_condition_finish, durations,
 * offsets), so text.c reads "30d" or a datetime exactly as this file does.
 * Knows nothing of the catalog: names are checked by bind.c. Workload: one filter per
 * search request or segment save, tens of nodes; clarity of errors over speed.
 */
#include "filter.h"
#include "../base/alloc.h"
#include "../base/jsonscan.h"
#include "../base/timefmt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define DAY_MS 86400000LL
#define MIN_TIME_MS (-62167219200000LL)          /* 0000-01-01T00:00:00.000Z */
#define MAX_TIME_MS (253402300799999LL)          /* 9999-12-31T23:59:59.999Z */

#define DURATION_HINT "durations are a whole number and a unit s, m, h, d or w, such as \"30d\""
#define DATETIME_HINT "write an ISO 8601 date-time such as \"2026-11-28T19:12:01Z\" (years 0000 to 9999)"

/* ---- shared value rules ---- */

int filter_duration_parse(const char *s, size_t len, int64_t *ms)
{
    if (len < 2 || len > 16) return SEGD_EINVAL;
    int64_t unit;
    switch (s[len - 1]) {
    case 's': unit = 1000; break;
    case 'm': unit = 60000; break;
    case 'h': unit = 3600000; break;
    case 'd': unit = DAY_MS; break;
    case 'w': unit = 7 * DAY_MS; break;
    default: return SEGD_EINVAL;
    }
    int64_t count = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9') return SEGD_EINVAL;
        count = count * 10 + (s[i] - '0');
        if (count > FILTER_MAX_DURATION_MS / 1000) return SEGD_EINVAL;   /* stops overflow early */
    }
    if (count <= 0 || count > FILTER_MAX_DURATION_MS / unit) return SEGD_EINVAL;
    *ms = count * unit;
    return 0;
}

char *filter_duration_format(int64_t ms, char *buf)
{
    static const struct { int64_t ms; char unit; } units[] = {
        {DAY_MS, 'd'}, {3600000, 'h'}, {60000, 'm'}, {1000, 's'},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms % units[i].ms == 0 || i + 1 == sizeof units / sizeof units[0]) {
            snprintf(buf, FILTER_DURATION_LEN, "%lld%c", (long long)(ms / units[i].ms), units[i].unit);
            break;
        }
    return buf;
}

static int two_digits(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9') return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

int filter_offset_parse(const char *s, size_t len, int32_t *minutes)
{
    if (len != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':') return SEGD_EINVAL;
    int h = two_digits(s + 1), m = two_digits(s + 4);
    if (h < 0 || m < 0 || h > 23 || m > 59) return SEGD_EINVAL;
    *minutes = (s[0] == '-' ? -1 : 1) * (h * 60 + m);
    return 0;
}

char *filter_offset_format(int32_t minutes, char *buf)
{
    int32_t a = minutes < 0 ? -minutes : minutes;
    snprintf(buf, 8, "%c%02d:%02d", minutes < 0 ? '-' : '+', (int)(a / 60 % 100), (int)(a % 60));
    return buf;
}

/* Replaces a literal's text with `text`. */
char *filter_format_number(double x, char *buf)
{
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(buf, FILTER_NUMBER_LEN, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    if (fabs(x) >= 1 && fabs(x) < 1e17) {
        int digits = snprintf(buf, FILTER_NUMBER_LEN, "%.0f", fabs(x));
        if (digits > prec) prec = digits;       /* %g then keeps every integer digit */
    }
    snprintf(buf, FILTER_NUMBER_LEN, "%.*g", prec, x);
    return buf;
}

static void literal_set_text(filter_literal *v, const char *text)
{
    free(v->str);
    v->str = xstrdup(text);
    v->len = strlen(text);
}

/* A datetime literal: parsed (a plain date means its 00:00 UTC) and made canonical. */
static int literal_datetime(filter_literal *v)
{
    int64_t ms;
    if (v->kind != FLIT_STRING || timefmt_parse(v->str, v->len, 1, &ms) != 0) return SEGD_EINVAL;
    if (ms < MIN_TIME_MS || ms > MAX_TIME_MS) return SEGD_EINVAL;
    char buf[TIMEFMT_LEN];
    literal_set_text(v, timefmt_format(ms, buf));
    v->time_ms = ms;
    v->is_time = 1;
    return 0;
}

static int is_string_compare(filter_op op)
{
    switch (op) {
    case FOP_EQ: case FOP_NE: case FOP_CONTAINS: case FOP_NOT_CONTAINS: case FOP_STARTS_WITH:
    case FOP_ENDS_WITH: case FOP_IN: case FOP_NOT_IN:
        return 1;
    default:
        return 0;
    }
}

static int values_wanted(filter_op op)
{
    switch (op) {
    case FOP_IS_SET: case FOP_IS_NOT_SET: case FOP_IS_EMPTY: case FOP_IS_NOT_EMPTY: return 0;
    case FOP_BETWEEN: return 2;
    case FOP_IN: case FOP_NOT_IN: return -1;
    default: return 1;
    }
}

/* The operators a condition may name at all (in_cached is for segments). */
static char *condition_ops(char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = 0;
    for (int op = FOP_NONE + 1; op < FOP_COUNT_; op++) {
        if (op == FOP_IN_CACHED) continue;
        int k = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", filter_op_name((filter_op)op));
        if (k < 0 || (size_t)k >= cap - used) break;
        used += (size_t)k;
    }
    return buf;
}

static int bad_value(segd_error *err, int *bad, int index, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad_value(segd_error *err, int *bad, int index, const char *fmt, ...)
{
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    *bad = index;
    return segd_error_set(err, 422, "invalid_value", "%s", msg);
}

int filter_condition_finish(filter_node *n, int *bad, segd_error *err)
{
    const char *op = filter_op_name(n->op);
    int metric = n->kind == FILTER_EVENT;
    int metric_time = metric && (n->fn == FFN_FIRST_AT || n->fn == FFN_LAST_AT);
    char ops[512];
    *bad = -1;

    if (n->op <= FOP_NONE || n->op >= FOP_COUNT_ || n->op == FOP_IN_CACHED)
        return segd_error_set(err, 422, "unknown_operator", "unknown operator \"%s\"; use one of: %s", op,
                              condition_ops(ops, sizeof ops));
    if (metric && !filter_op_fits(n->op, metric_time ? SEGD_T_DATETIME : SEGD_T_NUMBER))
        return segd_error_set(err, 422, "operator_mismatch",
                              "%s \"%s\" does not fit the metric %s, which is a %s; use one of: %s", "operator", op,
                              filter_fn_name(n->fn), metric_time ? "date-time" : "number",
                              filter_ops_for_type(metric_time ? SEGD_T_DATETIME : SEGD_T_NUMBER, ops, sizeof ops));

    int want = values_wanted(n->op);
    if (want == 0 && n->n_values)
        return segd_error_set(err, 422, "invalid_filter", "%s takes no value; remove it", op);
    if (want > 0 && n->n_values != (uint32_t)want)
        return bad_value(err, bad, -1, want == 2 ? "%s takes two values, [low, high]" : "%s takes one value", op);
    if (want < 0 && n->n_values == 0)
        return bad_value(err, bad, -1, "%s takes one or more values, such as [\"DE\", \"FR\"]", op);

    for (uint32_t i = 0; i < n->n_values; i++) {
        filter_literal *v = &n->values[i];
        int k = (int)i;
        if (v->kind == FLIT_NUMBER && !isfinite(v->number))
            return bad_value(err, bad, k, "numbers must be finite");
        if (v->kind == FLIT_STRING && (!v->str || strlen(v->str) != v->len))
            return bad_value(err, bad, k, "strings may not contain a NUL character");
        switch (n->op) {
        case FOP_EQ: case FOP_NE:
            if (metric && v->kind != FLIT_NUMBER)
                return bad_value(err, bad, k, "%s of an event compares a number; give a number", filter_fn_name(n->fn));
            if (n->op == FOP_NE && v->kind == FLIT_BOOL)
                return bad_value(err, bad, k, "ne compares strings or numbers; for a boolean use eq with the other value");
            break;
        case FOP_CONTAINS: case FOP_NOT_CONTAINS: case FOP_STARTS_WITH: case FOP_ENDS_WITH:
            if (v->kind != FLIT_STRING) return bad_value(err, bad, k, "%s takes a string", op);
            break;
        case FOP_IN: case FOP_NOT_IN:
            if (metric && v->kind != FLIT_NUMBER)
                return bad_value(err, bad, k, "%s of an event compares numbers; give numbers", filter_fn_name(n->fn));
            if (v->kind == FLIT_BOOL) return bad_value(err, bad, k, "%s takes strings or numbers", op);
            if (v->kind != n->values[0].kind)
                return bad_value(err, bad, k, "%s takes values of one kind: all strings or all numbers", op);
            break;
        case FOP_GT: case FOP_GTE: case FOP_LT: case FOP_LTE:
            if (v->kind != FLIT_NUMBER) return bad_value(err, bad, k, "%s compares numbers; give a number", op);
            break;
        case FOP_BETWEEN:
            if (metric && !metric_time) {
                if (v->kind != FLIT_NUMBER)
                    return bad_value(err, bad, k, "%s of an event is a number: between takes two numbers, [low, high]",
                                     filter_fn_name(n->fn));
                break;
            }
            if (v->kind == FLIT_NUMBER && !metric_time) break;
            if (v->kind == FLIT_STRING && literal_datetime(v) == 0) break;
            if (metric_time || v->kind == FLIT_STRING) return bad_value(err, bad, k, "between on date-times: %s", DATETIME_HINT);
            return bad_value(err, bad, k, "between takes two numbers or two date-times, [low, high]");
        case FOP_BEFORE: case FOP_AFTER:
            if (literal_datetime(v) != 0) return bad_value(err, bad, k, "%s takes a date-time; %s", op, DATETIME_HINT);
            break;
        case FOP_MORE_THAN_AGO: case FOP_LESS_THAN_AGO: {
            int64_t ms;
            if (v->kind != FLIT_STRING || filter_duration_parse(v->str, v->len, &ms) != 0)
                return bad_value(err, bad, k, "%s takes a duration; %s, at most 100000d", op, DURATION_HINT);
            char buf[FILTER_DURATION_LEN];
            literal_set_text(v, filter_duration_format(ms, buf));
            n->duration_ms = ms;
            break;
        }
        case FOP_ON_DAY: {
            int64_t ms;
            if (v->kind != FLIT_STRING || v->len != 10 || timefmt_parse(v->str, v->len, 1, &ms) != 0 ||
                ms < MIN_TIME_MS || ms > MAX_TIME_MS)
                return bad_value(err, bad, k, "on_day takes a calendar date such as \"2026-11-28\" (YYYY-MM-DD)");
            v->time_ms = ms - (int64_t)n->offset_min * 60000;
            v->is_time = 1;
            break;
        }
        default:
            break;
        }
    }
    if (n->op == FOP_BETWEEN) {
        const filter_literal *lo = &n->values[0], *hi = &n->values[1];
        if (lo->kind != hi->kind)
            return bad_value(err, bad, 1, "between takes two values of one kind: two numbers or two date-times");
        if (lo->kind == FLIT_NUMBER ? lo->number > hi->number : lo->time_ms > hi->time_ms)
            return bad_value(err, bad, -1, "between takes [low, high] with low <= high; swap them");
    }
    if (n->case_sensitive) {
        int strings = is_string_compare(n->op) && !metric;
        for (uint32_t i = 0; i < n->n_values && strings; i++)
            if (n->values[i].kind != FLIT_STRING) strings = 0;
        if (!strings)
            return segd_error_set(err, 422, "invalid_filter",
                                  "\"case\" applies to string comparisons only (eq, ne, contains, not_contains, "
                                  "starts_with, ends_with, in, not_in with strings); remove it");
    }
    if (n->offset_min != 0 && n->op != FOP_ON_DAY)
        return segd_error_set(err, 422, "invalid_filter", "\"offset\" applies to on_day only; remove it");
    return 0;
}

/* ---- parsing ---- */

typedef struct jparse {
    uint32_t max_depth, max_nodes, max_values;
    uint32_t nodes;
    char path[512];
    size_t path_len;
    segd_error *err;
} jparse;

/* Appends to the path; returns the length to restore with path_pop. */
static size_t path_push(jparse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t path_push(jparse *p, const char *fmt, ...)
{
    size_t old = p->path_len;
    if (p->path_len < sizeof p->path - 1) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(p->path + p->path_len, sizeof p->path - p->path_len, fmt, ap);
        va_end(ap);
        if (k > 0) p->path_len += (size_t)k;
        if (p->path_len > sizeof p->path - 1) p->path_len = sizeof p->path - 1;
    }
    return old;
}

static void path_pop(jparse *p, size_t old)
{
    p->path_len = old;
    p->path[old] = 0;
}

/* Sets err (422, code, "PATH: message") with err->field the current path. */
static int jfail(jparse *p, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int jfail(jparse *p, const char *code, const char *fmt, ...)
{
    char msg[sizeof p->err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    segd_error_set(p->err, 422, code, "%s: %s", p->path, msg);
    size_t k = strlen(p->path) < sizeof p->err->field ? strlen(p->path) : sizeof p->err->field - 1;
    memcpy(p->err->field, p->path, k);     /* a very deep path keeps its head */
    p->err->field[k] = 0;
    return SEGD_EINVAL;
}

static int utf8_valid(const char *s, size_t len)
{
    const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(u + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* Up to 48 bytes of s for an error message: whole UTF-8 characters, '?' for bad bytes. */
static const char *echo(const char *s, char *out, size_t cap)
{
    const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
    size_t i = 0, n = 0, len = strlen(s);
    while (i < len && n + 8 < cap && n < 48) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(u + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0 || cp < 0x20) {
            out[n++] = '?';
            i++;
            continue;
        }
        memcpy(out + n, s + i, (size_t)k);
        n += (size_t)k;
        i += (size_t)k;
    }
    if (i < len) out[n++] = '.', out[n++] = '.', out[n++] = '.';
    out[n] = 0;
    return out;
}

/* Refuses repeated keys (cJSON keeps both) and keys outside `allowed` (NULL-ended). */
static int check_keys(jparse *p, const cJSON *obj, const char *const *allowed, const char *what)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        for (const cJSON *d = c->next; d; d = d->next)
            if (strcmp(c->string, d->string) == 0)
                return jfail(p, "invalid_filter", "key \"%s\" appears twice; give each key once",
                             echo(c->string, (char[64]){0}, 64));
        int known = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, c->string) == 0) known = 1;
        if (!known) {
            char list[256];
            size_t used = 0;
            list[0] = 0;
            for (const char *const *a = allowed; *a; a++) {
                int k = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *a);
                if (k < 0 || (size_t)k >= sizeof list - used) break;
                used += (size_t)k;
            }
            return jfail(p, "invalid_filter", "unknown key \"%s\" in %s; its keys are %s",
                         echo(c->string, (char[64]){0}, 64), what, list);
        }
    }
    return 0;
}

/* A non-empty UTF-8 string at key (path: .key), copied; NULL after jfail. */
static char *get_name(jparse *p, const cJSON *obj, const char *key, const char *what)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    size_t old = path_push(p, ".%s", key);
    char *out = NULL;
    if (!cJSON_IsString(v) || !v->valuestring[0])
        jfail(p, "invalid_filter", "%s must be a non-empty string", what);
    else if (!utf8_valid(v->valuestring, strlen(v->valuestring)))
        jfail(p, "invalid_value", "%s is not valid UTF-8; send text as UTF-8", what);
    else
        out = xstrdup(v->valuestring);
    path_pop(p, old);
    return out;
}

static int count_node(jparse *p)
{
    if (++p->nodes > p->max_nodes)
        return jfail(p, "filter_too_large", "the filter has more than %u nodes; split it or simplify it", p->max_nodes);
    return 0;
}

/* One literal from a JSON scalar. */
static int read_literal(jparse *p, const cJSON *v, filter_literal *out)
{
    memset(out, 0, sizeof *out);
    if (cJSON_IsString(v)) {
        size_t len = strlen(v->valuestring);
        if (!utf8_valid(v->valuestring, len)) return jfail(p, "invalid_value", "the string is not valid UTF-8");
        out->kind = FLIT_STRING;
        out->str = xstrdup(v->valuestring);
        out->len = len;
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        if (!isfinite(v->valuedouble)) return jfail(p, "invalid_value", "the number is out of range; numbers must be finite");
        out->kind = FLIT_NUMBER;
        out->number = v->valuedouble;
        return 0;
    }
    if (cJSON_IsBool(v)) {
        out->kind = FLIT_BOOL;
        out->boolean = cJSON_IsTrue(v) ? 1 : 0;
        return 0;
    }
    return jfail(p, "invalid_value", "a value is a string, a number or true / false");
}

/* Reads "op" (path .op) and "value" into n by the operator's shape, then the shared
 * value rules. n->kind, n->fn, case_sensitive and offset_min are set. */
static int read_op_value(jparse *p, const cJSON *obj, filter_node *n)
{
    const cJSON *jop = cJSON_GetObjectItemCaseSensitive(obj, "op");
    const cJSON *jval = cJSON_GetObjectItemCaseSensitive(obj, "value");
    char ops[512];
    size_t old = path_push(p, ".op");
    if (!cJSON_IsString(jop)) {
        int rc = jfail(p, "invalid_filter", "add \"op\", a string: one of %s", condition_ops(ops, sizeof ops));
        path_pop(p, old);
        return rc;
    }
    n->op = filter_op_parse(jop->valuestring, strlen(jop->valuestring));
    if (n->op == FOP_NONE || n->op == FOP_IN_CACHED) {
        int rc = jfail(p, "unknown_operator", "unknown operator \"%s\"; use one of: %s",
                       echo(jop->valuestring, (char[64]){0}, 64),
                       condition_ops(ops, sizeof ops));
        path_pop(p, old);
        return rc;
    }
    path_pop(p, old);

    old = path_push(p, ".value");
    int rc = 0;
    int want = values_wanted(n->op);
    if (want == 0) {
        if (jval) rc = jfail(p, "invalid_filter", "%s takes no value; remove \"value\"", filter_op_name(n->op));
    } else if (!jval) {
        rc = jfail(p, "invalid_filter", "%s needs a \"value\"", filter_op_name(n->op));
    } else if (want == 1) {
        if (cJSON_IsArray(jval) || cJSON_IsObject(jval)) {
            rc = jfail(p, "invalid_value", "%s takes one value%s", filter_op_name(n->op),
                       n->op == FOP_EQ || n->op == FOP_NE ? "; to compare with several use in / not_in" : "");
        } else {
            n->values = xcalloc(1, sizeof *n->values);
            n->n_values = 1;
            rc = read_literal(p, jval, &n->values[0]);
        }
    } else {
        int size = cJSON_IsArray(jval) ? cJSON_GetArraySize(jval) : -1;
        if (want == 2 && size != 2)
            rc = jfail(p, "invalid_value", "between takes an array of two values, [low, high]");
        else if (want < 0 && size < 1)
            rc = jfail(p, "invalid_value", "%s takes an array of one or more values, such as [\"DE\", \"FR\"]",
                       filter_op_name(n->op));
        else if (want < 0 && (uint32_t)size > p->max_values)
            rc = jfail(p, "filter_too_large", "%s has more than %u values; split it or use a segment",
                       filter_op_name(n->op), p->max_values);
        if (rc == 0) {
            n->values = xcalloc((size_t)size, sizeof *n->values);
            int i = 0;
            for (const cJSON *c = jval->child; c && rc == 0; c = c->next, i++) {
                size_t o2 = path_push(p, "[%d]", i);
                rc = read_literal(p, c, &n->values[i]);
                if (rc == 0) n->n_values++;
                path_pop(p, o2);
            }
        }
    }
    path_pop(p, old);
    if (rc == 0) {
        int bad;
        rc = filter_condition_finish(n, &bad, p->err);
        if (rc) {
            /* point at what is wrong and keep finish's sentence */
            char msg[sizeof p->err->message], code[sizeof p->err->code];
            snprintf(msg, sizeof msg, "%s", p->err->message);
            snprintf(code, sizeof code, "%s", p->err->code);
            if (strcmp(code, "unknown_operator") == 0 || strcmp(code, "operator_mismatch") == 0) path_push(p, ".op");
            else if (strcmp(code, "invalid_filter") == 0) path_push(p, n->case_sensitive ? ".case" : ".offset");
            else if (bad >= 0 && want != 1) path_push(p, ".value[%d]", bad);
            else path_push(p, ".value");
            rc = jfail(p, code, "%s", msg);
        }
    }
    path_pop(p, old);
    return rc;
}

static filter_node *parse_node(jparse *p, const cJSON *j, int in_where, uint32_t depth);

static const char *const group_keys[] = {"and", "or", "not", NULL};

static filter_node *parse_group(jparse *p, const cJSON *j, const char *key, int in_where, uint32_t depth)
{
    filter_node *n = NULL;
    if (check_keys(p, j, (const char *const[]){key, NULL}, "a group")) return NULL;
    if (depth + 1 > p->max_depth) {
        jfail(p, "filter_too_large", "groups are nested deeper than %u levels (an event's where counts as one); flatten them",
              p->max_depth);
        return NULL;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    size_t old = path_push(p, ".%s", key);
    if (strcmp(key, "not") == 0) {
        if (!cJSON_IsObject(v)) {
            jfail(p, "invalid_filter", "not takes one filter object, such as {\"not\": {\"attribute\": ...}}");
            goto fail;
        }
        n = filter_node_new(FILTER_NOT);
        filter_node *c = parse_node(p, v, in_where, depth + 1);
        if (!c) goto fail;
        filter_node_add(n, c);
    } else {
        if (!cJSON_IsArray(v)) {
            jfail(p, "invalid_filter", "%s takes an array of filters, such as {\"%s\": [{...}, {...}]}", key, key);
            goto fail;
        }
        n = filter_node_new(key[0] == 'a' ? FILTER_AND : FILTER_OR);
        int i = 0;
        for (const cJSON *c = v->child; c; c = c->next, i++) {
            size_t o2 = path_push(p, "[%d]", i);
            filter_node *child = parse_node(p, c, in_where, depth + 1);
            path_pop(p, o2);
            if (!child) goto fail;
            filter_node_add(n, child);
        }
    }
    path_pop(p, old);
    return n;
fail:
    path_pop(p, old);
    filter_free(n);
    return NULL;
}

/* "offset" (on_day only): a fixed UTC offset into n->offset_min. */
static int read_offset(jparse *p, const cJSON *j, filter_node *n)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "offset");
    if (!o) return 0;
    size_t old = path_push(p, ".offset");
    int rc = 0;
    const cJSON *jop = cJSON_GetObjectItemCaseSensitive(j, "op");
    if (!cJSON_IsString(jop) || strcmp(jop->valuestring, "on_day") != 0)
        rc = jfail(p, "invalid_filter", "\"offset\" applies to on_day only; remove it");
    else if (!cJSON_IsString(o) || filter_offset_parse(o->valuestring, strlen(o->valuestring), &n->offset_min) != 0)
        rc = jfail(p, "invalid_value", "offset is a fixed UTC offset \"+hh:mm\" or \"-hh:mm\", such as \"+02:00\"");
    path_pop(p, old);
    return rc;
}

static filter_node *parse_condition(jparse *p, const cJSON *j, int in_where)
{
    static const char *const keys_attr[] = {"attribute", "op", "value", "case", "offset", NULL};
    static const char *const keys_prop[] = {"property", "op", "value", "case", "offset", NULL};
    const char *key = in_where ? "property" : "attribute";
    if (check_keys(p, j, in_where ? keys_prop : keys_attr, in_where ? "a property condition" : "an attribute condition"))
        return NULL;
    filter_node *n = filter_node_new(in_where ? FILTER_PROPERTY : FILTER_ATTRIBUTE);
    n->name = get_name(p, j, key, in_where ? "property" : "attribute");
    if (!n->name) goto fail;

    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "case");
    if (c) {
        size_t old = path_push(p, ".case");
        if (cJSON_IsString(c) && strcmp(c->valuestring, "sensitive") == 0) n->case_sensitive = 1;
        else if (!cJSON_IsString(c) || strcmp(c->valuestring, "insensitive") != 0) {
            jfail(p, "invalid_value", "case is \"sensitive\" or \"insensitive\" (the default)");
            path_pop(p, old);
            goto fail;
        }
        path_pop(p, old);
    }
    if (read_offset(p, j, n)) goto fail;
    if (read_op_value(p, j, n)) goto fail;
    return n;
fail:
    filter_free(n);
    return NULL;
}

static int parse_time(jparse *p, const cJSON *v, const char *key, int64_t *ms)
{
    size_t old = path_push(p, ".%s", key);
    int rc = 0;
    if (!cJSON_IsString(v) || timefmt_parse(v->valuestring, strlen(v->valuestring), 1, ms) != 0 ||
        *ms < MIN_TIME_MS || *ms > MAX_TIME_MS)
        rc = jfail(p, v ? "invalid_value" : "invalid_filter", "%s %s", v ? "bad date-time:" : "add it:", DATETIME_HINT);
    path_pop(p, old);
    return rc;
}

static int parse_window(jparse *p, const cJSON *w, filter_node *n)
{
    static const char *const keys[] = {"from", "to", NULL};
    size_t old = path_push(p, ".within");
    int rc = 0;
    if (cJSON_IsString(w)) {
        if (filter_duration_parse(w->valuestring, strlen(w->valuestring), &n->within_ms) != 0)
            rc = jfail(p, "invalid_value", "within is a duration or {\"from\": A, \"to\": B}; %s, at most 100000d",
                       DURATION_HINT);
        else
            n->window = FWIN_WITHIN;
    } else if (cJSON_IsObject(w)) {
        rc = check_keys(p, w, keys, "within");
        if (rc == 0) rc = parse_time(p, cJSON_GetObjectItemCaseSensitive(w, "from"), "from", &n->from_ms);
        if (rc == 0) rc = parse_time(p, cJSON_GetObjectItemCaseSensitive(w, "to"), "to", &n->to_ms);
        if (rc == 0 && n->from_ms > n->to_ms) rc = jfail(p, "invalid_value", "from is after to; swap them");
        if (rc == 0) n->window = FWIN_RANGE;
    } else {
        rc = jfail(p, "invalid_value", "within is a duration such as \"14d\" or {\"from\": A, \"to\": B}");
    }
    path_pop(p, old);
    return rc;
}

static int parse_metric(jparse *p, const cJSON *m, filter_node *n)
{
    static const char *const keys[] = {"fn", "property", NULL};
    size_t old = path_push(p, ".metric");
    int rc = 0;
    if (!cJSON_IsObject(m)) {
        rc = jfail(p, "invalid_filter", "metric is an object such as {\"fn\": \"sum\", \"property\": \"amount\"}");
        goto done;
    }
    if ((rc = check_keys(p, m, keys, "metric"))) goto done;
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(m, "fn");
    size_t o2 = path_push(p, ".fn");
    n->fn = cJSON_IsString(fn) ? filter_fn_parse(fn->valuestring, strlen(fn->valuestring)) : FFN_COUNT_;
    if (n->fn == FFN_COUNT_) {
        n->fn = FFN_COUNT;
        rc = jfail(p, fn ? "invalid_value" : "invalid_filter",
                   "fn is one of count, sum, avg, min, max, count_distinct, first_at, last_at");
        goto done;
    }
    path_pop(p, o2);
    int reads = n->fn >= FFN_SUM && n->fn <= FFN_COUNT_DISTINCT;
    const cJSON *prop = cJSON_GetObjectItemCaseSensitive(m, "property");
    if (reads && !prop) {
        rc = jfail(p, "invalid_filter", "%s reads a property: add \"property\"", filter_fn_name(n->fn));
    } else if (!reads && prop) {
        o2 = path_push(p, ".property");
        rc = jfail(p, "invalid_filter", "%s takes no property; remove it", filter_fn_name(n->fn));
    } else if (reads) {
        n->metric_property = get_name(p, m, "property", "property");
        if (!n->metric_property) rc = SEGD_EINVAL;
    }
done:
    path_pop(p, old);
    return rc;
}

static filter_node *parse_event(jparse *p, const cJSON *j, uint32_t depth)
{
    static const char *const keys[] = {"event", "where", "within", "metric", "op", "value", "offset", NULL};
    if (check_keys(p, j, keys, "an event condition")) return NULL;
    filter_node *n = filter_node_new(FILTER_EVENT);
    n->name = get_name(p, j, "event", "event");
    if (!n->name) goto fail;

    const cJSON *where = cJSON_GetObjectItemCaseSensitive(j, "where");
    if (where) {
        size_t old = path_push(p, ".where");
        if (depth + 1 > p->max_depth) {
            jfail(p, "filter_too_large", "groups are nested deeper than %u levels (an event's where counts as one); flatten them",
                  p->max_depth);
            n->where = NULL;
        } else {
            n->where = parse_node(p, where, 1, depth + 1);
        }
        path_pop(p, old);
        if (!n->where) goto fail;
    }
    const cJSON *within = cJSON_GetObjectItemCaseSensitive(j, "within");
    if (within && parse_window(p, within, n)) goto fail;
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(j, "metric");
    if (metric && parse_metric(p, metric, n)) goto fail;

    if (!cJSON_GetObjectItemCaseSensitive(j, "op")) {
        if (cJSON_GetObjectItemCaseSensitive(j, "value")) {
            size_t old = path_push(p, ".value");
            jfail(p, "invalid_filter", "a value needs \"op\" to compare the metric with it");
            path_pop(p, old);
            goto fail;
        }
        if (n->fn != FFN_COUNT) {
            size_t old = path_push(p, ".op");
            jfail(p, "invalid_filter", "the metric %s needs \"op\" and \"value\" (without them the condition is "
                  "\"did it at least once\", count gte 1)", filter_fn_name(n->fn));
            path_pop(p, old);
            goto fail;
        }
        n->op = FOP_GTE;                /* "did it at least once" */
        n->values = xcalloc(1, sizeof *n->values);
        n->values[0].kind = FLIT_NUMBER;
        n->values[0].number = 1;
        n->n_values = 1;
        return n;
    }
    if (read_offset(p, j, n) || read_op_value(p, j, n)) goto fail;
    return n;
fail:
    filter_free(n);
    return NULL;
}

static int get_int(jparse *p, const cJSON *obj, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    size_t old = path_push(p, ".%s", key);
    int rc = 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 99)
        rc = jfail(p, v ? "invalid_value" : "invalid_filter", "%s is a whole number from 0 to 99", key);
    else
        *out = (int)v->valuedouble;
    path_pop(p, old);
    return rc;
}

static filter_node *parse_bucket(jparse *p, const cJSON *j)
{
    static const char *const keys[] = {"bucket", NULL};
    static const char *const inner[] = {"salt", "from", "to", NULL};
    if (check_keys(p, j, keys, "a bucket condition")) return NULL;
    filter_node *n = filter_node_new(FILTER_BUCKET);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "bucket");
    size_t old = path_push(p, ".bucket");
    if (!cJSON_IsObject(b)) {
        jfail(p, "invalid_filter", "bucket is an object such as {\"salt\": \"exp-1\", \"from\": 0, \"to\": 9}");
        goto fail;
    }
    if (check_keys(p, b, inner, "bucket")) goto fail;
    const cJSON *salt = cJSON_GetObjectItemCaseSensitive(b, "salt");
    size_t o2 = path_push(p, ".salt");
    if (!cJSON_IsString(salt) || !utf8_valid(salt->valuestring, strlen(salt->valuestring))) {
        jfail(p, salt ? "invalid_value" : "invalid_filter", "salt is a string (UTF-8), such as \"exp-1\"");
        goto fail;
    }
    path_pop(p, o2);
    n->name = xstrdup(salt->valuestring);
    if (get_int(p, b, "from", &n->bucket_from) || get_int(p, b, "to", &n->bucket_to)) goto fail;
    if (n->bucket_from > n->bucket_to) {
        jfail(p, "invalid_value", "from is greater than to; buckets are the range [from, to] within 0..99");
        goto fail;
    }
    path_pop(p, old);
    return n;
fail:
    path_pop(p, old);
    filter_free(n);
    return NULL;
}

static filter_node *parse_segment(jparse *p, const cJSON *j)
{
    static const char *const keys[] = {"segment", "op", NULL};
    if (check_keys(p, j, keys, "a segment condition")) return NULL;
    filter_node *n = filter_node_new(FILTER_SEGMENT);
    n->name = get_name(p, j, "segment", "segment");
    if (!n->name) goto fail;
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(j, "op");
    n->op = FOP_IN;
    if (op) {
        n->op = cJSON_IsString(op) ? filter_op_parse(op->valuestring, strlen(op->valuestring)) : FOP_NONE;
        if (n->op != FOP_IN && n->op != FOP_NOT_IN && n->op != FOP_IN_CACHED) {
            size_t old = path_push(p, ".op");
            jfail(p, "unknown_operator", "a segment condition's op is in, not_in or in_cached");
            path_pop(p, old);
            goto fail;
        }
    }
    return n;
fail:
    filter_free(n);
    return NULL;
}

static filter_node *parse_node(jparse *p, const cJSON *j, int in_where, uint32_t depth)
{
    static const char *const kinds[] = {"and", "or", "not", "attribute", "property", "event", "bucket", "segment", NULL};
    if (!cJSON_IsObject(j)) {
        jfail(p, "invalid_filter", "a filter is an object: a group {\"and\": [...]}, {\"or\": [...]}, {\"not\": {...}} "
              "or a condition such as {\"attribute\": \"plan\", \"op\": \"eq\", \"value\": \"pro\"}");
        return NULL;
    }
    const char *kind = NULL;
    for (const char *const *k = kinds; *k; k++) {
        if (!cJSON_GetObjectItemCaseSensitive(j, *k)) continue;
        if (kind) {
            jfail(p, "invalid_filter", "an object is one filter: it has both \"%s\" and \"%s\"; "
                  "put them in {\"and\": [...]}", kind, *k);
            return NULL;
        }
        kind = *k;
    }
    if (!kind) {
        jfail(p, "invalid_filter", in_where
              ? "a where filter holds groups (and, or, not) and conditions {\"property\": ..., \"op\": ..., \"value\": ...}"
              : "a filter object has one of the keys and, or, not, attribute, event, bucket, segment");
        return NULL;
    }
    if (count_node(p)) return NULL;
    for (const char *const *g = group_keys; *g; g++)
        if (strcmp(kind, *g) == 0) return parse_group(p, j, kind, in_where, depth);
    if (in_where && strcmp(kind, "property") != 0) {
        jfail(p, "invalid_filter", "an event's where holds property conditions and groups only, not \"%s\"", kind);
        return NULL;
    }
    if (!in_where && strcmp(kind, "property") == 0) {
        jfail(p, "invalid_filter", "\"property\" conditions belong in an event's where; at this level use \"attribute\"");
        return NULL;
    }
    switch (kind[0]) {
    case 'a': case 'p': return parse_condition(p, j, in_where);
    case 'e': return parse_event(p, j, depth);
    case 'b': return parse_bucket(p, j);
    default: return parse_segment(p, j);
    }
}

static void limits_init(jparse *p, const filter_limits *lim)
{
    p->max_depth = lim && lim->max_depth ? lim->max_depth : FILTER_DEFAULT_MAX_DEPTH;
    p->max_nodes = lim && lim->max_nodes ? lim->max_nodes : FILTER_DEFAULT_MAX_NODES;
    p->max_values = lim && lim->max_values ? lim->max_values : FILTER_DEFAULT_MAX_VALUES;
}

filter_node *filter_parse_value(const cJSON *v, const filter_limits *lim, segd_error *err)
{
    if (cJSON_IsString(v)) return filter_parse_text(v->valuestring, strlen(v->valuestring), lim, err);
    if (cJSON_IsObject(v)) return filter_parse_json(v, lim, err);
    segd_error_clear(err);
    snprintf(err->field, sizeof err->field, "filter");
    segd_error_set(err, 422, "invalid_filter",
                   "\"filter\" must be a filter object (such as {\"attribute\": \"plan\", \"op\": \"eq\", \"value\": \"pro\"}) or its text form (such as \"plan = \\\"pro\\\"\")");
    return NULL;
}

filter_node *filter_parse_json(const cJSON *json, const filter_limits *lim, segd_error *err)
{
    jparse p;
    memset(&p, 0, sizeof p);
    limits_init(&p, lim);
    p.err = err;
    segd_error_clear(err);
    path_push(&p, "$");
    return parse_node(&p, json, 0, 0);
}

filter_node *filter_parse_json_text(const char *text, size_t len, const filter_limits *lim, segd_error *err)
{
    segd_error_clear(err);
    /* cJSON wants the NUL after the value to refuse trailing bytes: parse a copy */
    char *copy = xmalloc(len + 1);
    if (len) memcpy(copy, text, len);
    copy[len] = 0;
    const char *end = NULL;
    filter_node *n = NULL;
    cJSON *json = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
    if (!json) {
        /* cJSON's end can be a byte late: jsonscan finds the first byte that cannot go on */
        size_t at = jsonscan_error_offset(text, len);
        segd_error_set(err, 400, "invalid_json",
                       "the filter is not valid JSON (at byte %zu); check quoting, commas and brackets there", at);
        err->at = (long)at;
        goto done;
    }
    size_t at;
    int strict = jsonscan_validate(text, len, &at);
    if (strict == JSONSCAN_NUL) {
        segd_error_set(err, 400, "invalid_utf8",
                       "a string holds a \\u0000 (NUL) escape at byte %zu, which filters cannot hold; remove it", at);
        err->at = (long)at;
        goto done;
    }
    if (strict != JSONSCAN_OK) {
        segd_error_set(err, 400, "invalid_json",
                       "the filter is not valid JSON (at byte %zu); check escapes, quoting, commas and brackets there", at);
        err->at = (long)at;
        goto done;
    }
    n = filter_parse_json(json, lim, err);
done:
    cJSON_Delete(json);
    free(copy);
    return n;
}

/* ---- printing ----
 * Key order: and / or / not; attribute or property, op, value, offset, case; event,
 * where, within, metric, op, value, offset; bucket {salt, from, to}; segment, op. Allocation
 * failure aborts, as everywhere in segd (alloc.h). */

static cJSON *must(cJSON *item)
{
    if (!item) {
        fprintf(stderr, "segd: out of memory\n");
        abort();
    }
    return item;
}

static void add(cJSON *obj, const char *key, cJSON *item)
{
    if (!cJSON_AddItemToObject(obj, key, must(item))) must(NULL);
}

/* 1 if cJSON prints x exactly ("%1.15g" reads back as x). */
static int prints_exactly(double x)
{
    char buf[FILTER_NUMBER_LEN];
    snprintf(buf, sizeof buf, "%1.15g", x);
    return strtod(buf, NULL) == x;
}

cJSON *filter_number_json(double x)
{
    char buf[FILTER_NUMBER_LEN];
    if (!isfinite(x) || prints_exactly(x)) return must(cJSON_CreateNumber(x));
    return must(cJSON_CreateRaw(filter_format_number(x, buf)));
}

int filter_exact_numbers(cJSON *tree)
{
    int n = 0;
    for (cJSON *it = tree ? tree->child : NULL; it; it = it->next) {
        if (cJSON_IsNumber(it) && isfinite(it->valuedouble) && !prints_exactly(it->valuedouble)) {
            char buf[FILTER_NUMBER_LEN];
            filter_format_number(it->valuedouble, buf);
            it->type = cJSON_Raw | (it->type & cJSON_StringIsConst);
            it->valuestring = xstrdup(buf);
            n++;
        } else if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
            n += filter_exact_numbers(it);
        }
    }
    return n;
}

static cJSON *number_json(double x)
{
    return filter_number_json(x);
}

static cJSON *time_json(int64_t ms)
{
    char buf[TIMEFMT_LEN];
    return must(cJSON_CreateString(timefmt_format(ms, buf)));
}

static cJSON *literal_json(const filter_node *n, const filter_literal *v)
{
    char buf[TIMEFMT_LEN];
    if (n->op == FOP_ON_DAY) {
        /* the date as written: the day's start moved back to the offset */
        timefmt_format(v->time_ms + (int64_t)n->offset_min * 60000, buf);
        buf[10] = 0;
        return must(cJSON_CreateString(buf));
    }
    if (n->op == FOP_MORE_THAN_AGO || n->op == FOP_LESS_THAN_AGO)
        return must(cJSON_CreateString(filter_duration_format(n->duration_ms, buf)));
    if (v->is_time) return time_json(v->time_ms);
    switch (v->kind) {
    case FLIT_STRING: return must(cJSON_CreateString(v->str));
    case FLIT_NUMBER: return number_json(v->number);
    default: return must(cJSON_CreateBool(v->boolean));
    }
}

static void add_op_value(cJSON *o, const filter_node *n)
{
    add(o, "op", cJSON_CreateString(filter_op_name(n->op)));
    int want = values_wanted(n->op);
    if (want == 1 && n->n_values == 1) {
        add(o, "value", literal_json(n, &n->values[0]));
    } else if (want != 0) {
        cJSON *arr = must(cJSON_CreateArray());
        for (uint32_t i = 0; i < n->n_values; i++) cJSON_AddItemToArray(arr, literal_json(n, &n->values[i]));
        add(o, "value", arr);
    }
}

static void add_offset(cJSON *o, const filter_node *n)
{
    char off[8];
    if (n->op == FOP_ON_DAY && n->offset_min) add(o, "offset", cJSON_CreateString(filter_offset_format(n->offset_min, off)));
}

static int is_default_count(const filter_node *n)
{
    return n->fn == FFN_COUNT && n->op == FOP_GTE && n->n_values == 1 && n->values[0].kind == FLIT_NUMBER &&
           n->values[0].number == 1;
}

cJSON *filter_to_json(const filter_node *n)
{
    cJSON *o = must(cJSON_CreateObject());
    char buf[FILTER_DURATION_LEN];
    switch (n->kind) {
    case FILTER_AND: case FILTER_OR: {
        cJSON *arr = must(cJSON_CreateArray());
        for (uint32_t i = 0; i < n->n_children; i++) cJSON_AddItemToArray(arr, filter_to_json(n->children[i]));
        add(o, n->kind == FILTER_AND ? "and" : "or", arr);
        break;
    }
    case FILTER_NOT:
        add(o, "not", filter_to_json(n->children[0]));
        break;
    case FILTER_ATTRIBUTE: case FILTER_PROPERTY:
        add(o, n->kind == FILTER_ATTRIBUTE ? "attribute" : "property", cJSON_CreateString(n->name));
        add_op_value(o, n);
        add_offset(o, n);
        if (n->case_sensitive) add(o, "case", cJSON_CreateString("sensitive"));
        break;
    case FILTER_EVENT:
        add(o, "event", cJSON_CreateString(n->name));
        if (n->where) add(o, "where", filter_to_json(n->where));
        if (n->window == FWIN_WITHIN) {
            add(o, "within", cJSON_CreateString(filter_duration_format(n->within_ms, buf)));
        } else if (n->window == FWIN_RANGE) {
            cJSON *w = must(cJSON_CreateObject());
            add(w, "from", time_json(n->from_ms));
            add(w, "to", time_json(n->to_ms));
            add(o, "within", w);
        }
        if (n->fn != FFN_COUNT) {
            cJSON *m = must(cJSON_CreateObject());
            add(m, "fn", cJSON_CreateString(filter_fn_name(n->fn)));
            if (n->metric_property) add(m, "property", cJSON_CreateString(n->metric_property));
            add(o, "metric", m);
        }
        if (!is_default_count(n)) add_op_value(o, n);
        add_offset(o, n);
        break;
    case FILTER_BUCKET: {
        cJSON *b = must(cJSON_CreateObject());
        add(b, "salt", cJSON_CreateString(n->name));
        add(b, "from", cJSON_CreateNumber(n->bucket_from));
        add(b, "to", cJSON_CreateNumber(n->bucket_to));
        add(o, "bucket", b);
        break;
    }
    case FILTER_SEGMENT:
        add(o, "segment", cJSON_CreateString(n->name));
        add(o, "op", cJSON_CreateString(filter_op_name(n->op)));
        break;
    }
    return o;
}

char *filter_print_json(const filter_node *n)
{
    cJSON *j = filter_to_json(n);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) {
        fprintf(stderr, "segd: out of memory\n");
        abort();
    }
    return s;
}
