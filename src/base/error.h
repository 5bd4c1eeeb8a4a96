/* error.h - segd's one error convention.
 *
 * Functions return 0 on success or a negative SEGD_E* code; constructors return NULL.
 * Errors that reach a user additionally carry a stable string code and a sentence
 * (struct segd_error) saying how to fix the input. Not for out-of-memory inside hot
 * loops: segd aborts on allocation failure through xmalloc (see alloc.h).
 */
#ifndef SEGD_BASE_ERROR_H
#define SEGD_BASE_ERROR_H

#include <stddef.h>

enum {
    SEGD_OK = 0,
    SEGD_EINVAL = -1,     /* bad input: fix the request */
    SEGD_ENOMEM = -2,     /* allocation failed */
    SEGD_EIO = -3,        /* storage or OS failure */
    SEGD_ENOTFOUND = -4,  /* no such object */
    SEGD_ECONFLICT = -5,  /* conflicts with what is stored (type, duplicate) */
    SEGD_ELIMIT = -6,     /* a configured limit was reached */
    SEGD_EBUSY = -7,      /* resource held by someone else (lock, shutdown) */
    SEGD_ETOOBIG = -8,    /* body or message over its size limit */
};

/* A user-facing error: HTTP status, stable code, a sentence saying how to fix it,
 * and optional detail (byte offset, batch index, field). Embedded, never freed. */
typedef struct segd_error {
    int status;          /* HTTP status to answer with; 0 means no error */
    char code[48];       /* stable machine code, such as "invalid_json" */
    char message[512];   /* a sentence that says how to fix the input */
    char field[128];     /* the offending field or attribute, "" if none */
    long at;             /* byte offset for parse errors, -1 if none */
    int index;           /* batch index of the bad message, -1 if none */
} segd_error;

/* Clears an error to "no error". */
void segd_error_clear(segd_error *err);

/* Sets status, code and a printf-formatted message; returns the matching negative
 * SEGD_E* code for the status (400/422 -> EINVAL, 404 -> ENOTFOUND, 409 -> ECONFLICT,
 * 413 -> ETOOBIG, 503 -> EBUSY, else EIO) so callers can `return segd_error_set(...)`. */
int segd_error_set(segd_error *err, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The negative SEGD_E* code matching an HTTP status, as segd_error_set returns it. */
int segd_status_rc(int status);

/* Short name of a SEGD_E* code for logs ("EINVAL"). Never NULL. */
const char *segd_strerror(int rc);

#endif
