/* jsonscan.h - finds where a text stops being JSON (RFC 8259), for error messages.
 *
 * cJSON's error position is sometimes one byte past the culprit; segd answers
 * invalid_json with "at" = the offset of the first byte that cannot continue a valid
 * JSON text. Runs only on the error path; iterative (no recursion), any depth.
 */
#ifndef SEGD_BASE_JSONSCAN_H
#define SEGD_BASE_JSONSCAN_H

#include <stddef.h>

/* The offset of the first byte of s[0..len) at which no valid JSON text can go on
 * (len when the text is valid but incomplete or when it is all valid). */
size_t jsonscan_error_offset(const char *s, size_t len);

enum { JSONSCAN_OK = 0, JSONSCAN_SYNTAX = -1, JSONSCAN_NUL = -2 };

/* Checks a text that cJSON accepted against RFC 8259 and segd's own rule, because
 * cJSON decodes a malformed escape (\uZZZZ) or \u0000 into a NUL byte that silently
 * ends the string ("u1\u0000x" would name user "u1"). Returns JSONSCAN_OK,
 * JSONSCAN_SYNTAX (*at = the first bad byte) or JSONSCAN_NUL (*at = the offset of the
 * first \u0000 escape). An incomplete text is not told apart from a valid one: call it
 * on text the parser accepted. */
int jsonscan_validate(const char *s, size_t len, size_t *at);

#endif
