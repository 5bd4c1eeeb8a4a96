/* fold.h - case folding for case-insensitive string conditions.
 *
 * One definition shared by the filter evaluator and the SQL oracle (registered there
 * as the SQL function segd_fold), so both fold exactly alike: Unicode simple case
 * folding, code point by code point (utf8proc_tolower of utf8proc_toupper, which maps
 * 'ſ' to 's' and the Kelvin sign to 'k'), no normalisation. ASCII, the common case,
 * folds without utf8proc. Workload: once per distinct string a filter looks at.
 */
#ifndef SEGD_BASE_FOLD_H
#define SEGD_BASE_FOLD_H

#include <stddef.h>

/* A growable buffer for folded text; zero-initialise, fold_buf_release when done. */
typedef struct fold_buf {
    char *s;
    size_t len;
    size_t cap;
} fold_buf;

/* Folds s[0..len) (UTF-8; invalid bytes are copied unchanged) into out->s (NUL-
 * terminated, out->len bytes), reusing out's memory. Returns out->s. */
const char *fold_utf8(const char *s, size_t len, fold_buf *out);

/* 1 if s[0..len) is pure ASCII without upper-case letters (its folded form is itself). */
int fold_is_folded_ascii(const char *s, size_t len);

/* Frees out's memory. */
void fold_buf_release(fold_buf *out);

#endif
