/* fold.c - simple case folding of UTF-8 text (fold.h). */
#include "fold.h"
#include "alloc.h"

#include <string.h>
#include <utf8proc.h>

static void reserve(fold_buf *out, size_t need)
{
    if (need <= out->cap) return;
    size_t cap = out->cap ? out->cap : 64;
    while (cap < need) cap *= 2;
    out->s = xrealloc(out->s, cap);
    out->cap = cap;
}

const char *fold_utf8(const char *s, size_t len, fold_buf *out)
{
    /* A simple fold never needs more than 4 bytes a code point, and a code point takes
     * at least one byte, so 4 * len bounds the output. */
    reserve(out, 4 * len + 1);
    size_t o = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            out->s[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0) {   /* invalid byte: copied as is */
            out->s[o++] = s[i++];
            continue;
        }
        utf8proc_int32_t folded = utf8proc_tolower(utf8proc_toupper(cp));
        o += (size_t)utf8proc_encode_char(folded, (utf8proc_uint8_t *)out->s + o);
        i += (size_t)n;
    }
    out->s[o] = 0;
    out->len = o;
    return out->s;
}

int fold_is_folded_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || (c >= 'A' && c <= 'Z')) return 0;
    }
    return 1;
}

void fold_buf_release(fold_buf *out)
{
    free(out->s);
    out->s = NULL;
    out->len = out->cap = 0;
}
