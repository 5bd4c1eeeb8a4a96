/* fuzz_timefmt.c - libFuzzer target for src/base/timefmt.c: ISO 8601 parsing and the
 * canonical printing.
 *
 * Input: one mode byte, then either the text to parse (bit 1 clear; bit 0 is
 * date_only_ok) or eight bytes of milliseconds to print (bit 1 set). Checks that a
 * parse never crashes, stays within years 0..9999 (give or take a zone offset), and,
 * for years 0..9999, that timefmt_format prints what parses back to the same value;
 * canonical texts ("YYYY-MM-DDThh:mm:ss.mmmZ") and plain dates are also checked
 * against glibc's timegm. Inputs: tens of bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/timefmt.h"
#include "fuzz.h"

#define DAY_MS 86400000LL
#define MIN_MS (-62167219200000LL)               /* 0000-01-01T00:00:00.000Z */
#define MAX_MS (253402300799999LL)               /* 9999-12-31T23:59:59.999Z */

/* The digits s[0..n) as a number, or -1 if one is not a digit. */
static int number(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* The value of a canonical text or a plain date by timegm, in *ms; 0 when the text
 * has that shape but names no real time (month 13, Feb 30), -1 when it has another
 * shape (then there is nothing to compare). */
static int reference(const char *s, size_t len, int64_t *ms)
{
    int date_only = len == 10;
    if (!date_only && len != 24) return -1;
    if (s[4] != '-' || s[7] != '-') return -1;
    if (!date_only && (s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' || s[23] != 'Z')) return -1;
    int y = number(s, 4), mo = number(s + 5, 2), d = number(s + 8, 2);
    int h = 0, mi = 0, sec = 0, milli = 0;
    if (!date_only) {
        h = number(s + 11, 2);
        mi = number(s + 14, 2);
        sec = number(s + 17, 2);
        milli = number(s + 20, 3);
    }
    if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0 || milli < 0) return -1;
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60) return 0;
    if (sec == 60) sec = 59;                      /* a leap second, as timefmt.h says */
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (tm.tm_mday != d || tm.tm_mon != mo - 1) return 0;   /* timegm carried Feb 30 into March */
    *ms = (int64_t)t * 1000 + milli;
    return 1;
}

static void check_round_trip(int64_t ms)
{
    char buf[TIMEFMT_LEN];
    memset(buf, 'x', sizeof buf);
    timefmt_format(ms, buf);
    FUZZ_CHECK(memchr(buf, 0, sizeof buf) != NULL, "timefmt_format left no NUL in its buffer");
    if (ms < MIN_MS || ms > MAX_MS) return;
    FUZZ_CHECK(strlen(buf) == 24, "%lld printed as \"%s\"", (long long)ms, buf);
    int64_t back = 0;
    FUZZ_CHECK(timefmt_parse(buf, strlen(buf), 0, &back) == 0, "\"%s\" (from %lld) does not parse", buf,
               (long long)ms);
    FUZZ_CHECK(back == ms, "\"%s\" parses to %lld, printed from %lld", buf, (long long)back, (long long)ms);
    FUZZ_CHECK(timefmt_is_datetime(buf, strlen(buf)), "\"%s\" is not taken as a datetime", buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len < 1) return 0;
    int mode = data[0];
    const char *s = (const char *)data + 1;
    size_t n = len - 1;

    if (mode & 2) {                               /* print eight bytes of milliseconds */
        if (n < 8) return 0;
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u |= (uint64_t)data[1 + i] << (8 * i);
        int64_t ms = (int64_t)u;
        if (mode & 4) ms = MIN_MS + (int64_t)(u % (uint64_t)(MAX_MS - MIN_MS + 1));   /* years 0..9999 */
        check_round_trip(ms);
        return 0;
    }

    int date_only_ok = mode & 1;
    int64_t ms = 0;
    int rc = timefmt_parse(s, n, date_only_ok, &ms);
    FUZZ_CHECK(rc == 0 || rc == SEGD_EINVAL, "timefmt_parse returned %d", rc);

    int64_t ref_ms = 0;
    int ref = reference(s, n, &ref_ms);
    if (ref == 0) FUZZ_CHECK(rc != 0, "\"%.*s\" names no real time but parses", (int)n, s);
    if (ref == 1 && (n != 10 || date_only_ok)) {
        FUZZ_CHECK(rc == 0, "\"%.*s\" does not parse", (int)n, s);
        FUZZ_CHECK(ms == ref_ms, "\"%.*s\" parses to %lld, timegm says %lld", (int)n, s, (long long)ms,
                   (long long)ref_ms);
    }

    int64_t other = 0;
    int rc_other = timefmt_parse(s, n, !date_only_ok, &other);
    if (rc == 0 && rc_other == 0) FUZZ_CHECK(ms == other, "date_only_ok changes the value of \"%.*s\"", (int)n, s);
    if (rc != rc_other) FUZZ_CHECK(n == 10, "date_only_ok decides on \"%.*s\", which is not a plain date", (int)n, s);
    if (timefmt_is_datetime(s, n)) FUZZ_CHECK(rc == 0 && n >= 16, "\"%.*s\" is a datetime but does not parse", (int)n, s);
    if (rc != 0) return 0;

    /* years 0..9999 moved by at most a day's zone offset */
    FUZZ_CHECK(ms >= MIN_MS - DAY_MS && ms <= MAX_MS + DAY_MS, "\"%.*s\" parses to %lld", (int)n, s, (long long)ms);
    check_round_trip(ms);
    return 0;
}
