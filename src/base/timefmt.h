/* timefmt.h - ISO 8601 date-times <-> milliseconds since the Unix epoch (UTC).
 *
 * segd keeps every time as int64 milliseconds UTC. This parses what tracking SDKs
 * send ("2026-11-28T19:12:01.123Z", "+02:00" offsets, a plain date) and prints the
 * one canonical form segd answers with ("2026-11-28T19:12:01.123Z").
 */
#ifndef SEGD_BASE_TIMEFMT_H
#define SEGD_BASE_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Parses an ISO 8601 date-time: YYYY-MM-DD, optionally followed by 'T' or ' ' and
 * hh:mm[:ss[.fraction]] and an optional Z or +hh:mm / -hh:mm / +hhmm offset (none means
 * UTC). Fields are range-checked (Feb 30 is rejected). Returns 0 and sets *ms, or
 * SEGD_EINVAL if s[0..len) is not such a date-time. A plain date needs date_only_ok. */
int timefmt_parse(const char *s, size_t len, int date_only_ok, int64_t *ms);

/* 1 if s[0..len) is a full date-time (with a time part) that timefmt_parse accepts:
 * the rule by which a string attribute value is inferred to be a datetime. */
int timefmt_is_datetime(const char *s, size_t len);

/* Writes the canonical form "YYYY-MM-DDThh:mm:ss.mmmZ" (24 chars + NUL for years 0-9999) into buf,
 * which must hold TIMEFMT_LEN bytes. Returns buf. */
#define TIMEFMT_LEN 64
char *timefmt_format(int64_t ms, char *buf);

/* Milliseconds since the epoch now, from CLOCK_REALTIME. */
int64_t timefmt_now_ms(void);

#endif
