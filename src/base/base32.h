/* base32.h - the lower-case base32 (Crockford's alphabet: no i, l, o, u) that segd's
 * public ids are written in: people "p_" + 13 characters, segments "seg_" + 12. Easy to
 * read aloud and to select with a double click; never sequential (the values are
 * random). */
#ifndef SEGD_BASE_BASE32_H
#define SEGD_BASE_BASE32_H

#include <stdint.h>

/* Writes the low 5 * chars bits of v as chars characters (most significant first) and a
 * NUL into out (chars + 1 bytes; chars at most 13). Returns out. */
char *base32_format(uint64_t v, int chars, char *out);

/* Reads exactly chars characters of s (followed by its NUL) into *v. Returns 0, or -1
 * when s has another length or a character outside the alphabet. */
int base32_parse(const char *s, int chars, uint64_t *v);

#endif
