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

#endif
