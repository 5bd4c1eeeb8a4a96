/* base.c - error helpers and aborting allocation for all of segd (error.h, alloc.h). */
#include "error.h"
#include "alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void segd_error_clear(segd_error *err)
{
    err->status = 0;
    err->code[0] = 0;
    err->message[0] = 0;
    err->field[0] = 0;
    err->at = -1;
    err->index = -1;
}

int segd_error_set(segd_error *err, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    err->status = status;
    snprintf(err->code, sizeof err->code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return segd_status_rc(status);
}

int segd_status_rc(int status)
{
    switch (status) {
    case 400: case 422: return SEGD_EINVAL;
    case 404: return SEGD_ENOTFOUND;
    case 409: return SEGD_ECONFLICT;
    case 413: return SEGD_ETOOBIG;
    case 503: return SEGD_EBUSY;
    default: return SEGD_EIO;
    }
}

const char *segd_strerror(int rc)
{
    switch (rc) {
    case SEGD_OK: return "OK";
    case SEGD_EINVAL: return "EINVAL";
    case SEGD_ENOMEM: return "ENOMEM";
    case SEGD_EIO: return "EIO";
    case SEGD_ENOTFOUND: return "ENOTFOUND";
    case SEGD_ECONFLICT: return "ECONFLICT";
    case SEGD_ELIMIT: return "ELIMIT";
    case SEGD_EBUSY: return "EBUSY";
    case SEGD_ETOOBIG: return "ETOOBIG";
    default: return "EUNKNOWN";
    }
}

static void out_of_memory(size_t size)
{
    fprintf(stderr, "segd: out of memory allocating %zu bytes\n", size);
    abort();
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) out_of_memory(size);
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) out_of_memory(count * size);
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p) out_of_memory(size);
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t len)
{
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

void *xgrow(void *ptr, size_t item_size, size_t *cap, size_t need, size_t min_cap)
{
    size_t c = *cap;
    if (need <= c) return ptr;
    if (c < min_cap) c = min_cap;
    while (c < need) c += c / 2 + 1;
    *cap = c;
    return xrealloc(ptr, c * item_size);
}
