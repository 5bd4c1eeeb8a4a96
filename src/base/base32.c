/* base32.c - segd's id alphabet (base32.h). */
#include "base32.h"

#include <string.h>

static const char ALPHABET[] = "0123456789abcdefghjkmnpqrstvwxyz";

char *base32_format(uint64_t v, int chars, char *out)
{
    for (int i = 0; i < chars; i++) out[i] = ALPHABET[(v >> (5 * (chars - 1 - i))) & 31];
    out[chars] = 0;
    return out;
}

int base32_parse(const char *s, int chars, uint64_t *v)
{
    if (strlen(s) != (size_t)chars) return -1;
    uint64_t x = 0;
    for (int i = 0; i < chars; i++) {
        const char *p = s[i] ? strchr(ALPHABET, s[i]) : NULL;
        if (!p) return -1;
        x = x << 5 | (uint64_t)(p - ALPHABET);
    }
    *v = x;
    return 0;
}
