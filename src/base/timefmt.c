/* timefmt.c - ISO 8601 parsing and printing (see timefmt.h). Pure arithmetic on the
 * proleptic Gregorian calendar: no timezone database, no locale, no allocation. */
#include "timefmt.h"
#include "error.h"

#include <stdio.h>
#include <time.h>

/* Days from 1970-01-01 to y-m-d (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int days_in_month(int64_t y, unsigned m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return days[m - 1];
}

/* Reads exactly n digits at s[*i]; -1 if any is not a digit or the input ends. */
static int digits(const char *s, size_t len, size_t *i, int n)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9') return -1;
        v = v * 10 + (s[(*i)++] - '0');
    }
    return v;
}

int timefmt_parse(const char *s, size_t len, int date_only_ok, int64_t *ms)
{
    size_t i = 0;
    int year = digits(s, len, &i, 4);
    if (year < 0 || i >= len || s[i++] != '-') return SEGD_EINVAL;
    int month = digits(s, len, &i, 2);
    if (month < 1 || month > 12 || i >= len || s[i++] != '-') return SEGD_EINVAL;
    int day = digits(s, len, &i, 2);
    if (day < 1 || day > days_in_month(year, (unsigned)month)) return SEGD_EINVAL;
    int64_t t = days_from_civil(year, (unsigned)month, (unsigned)day) * 86400000LL;
    if (i == len) {
        if (!date_only_ok) return SEGD_EINVAL;
        *ms = t;
        return 0;
    }
    if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return SEGD_EINVAL;
    i++;
    int hour = digits(s, len, &i, 2);
    if (hour < 0 || hour > 23 || i >= len || s[i++] != ':') return SEGD_EINVAL;
    int minute = digits(s, len, &i, 2);
    if (minute < 0 || minute > 59) return SEGD_EINVAL;
    int second = 0, millis = 0;
    if (i < len && s[i] == ':') {
        i++;
        second = digits(s, len, &i, 2);
        if (second < 0 || second > 60) return SEGD_EINVAL;   /* 60: a leap second */
        if (second == 60) second = 59;
        if (i < len && (s[i] == '.' || s[i] == ',')) {
            i++;
            int n = 0;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                if (n < 3) millis = millis * 10 + (s[i] - '0');
                n++;
                i++;
            }
            if (n == 0 || n > 9) return SEGD_EINVAL;
            for (; n < 3; n++) millis *= 10;
        }
    }
    t += ((int64_t)hour * 3600 + minute * 60 + second) * 1000 + millis;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i++] == '-' ? -1 : 1;
        int oh = digits(s, len, &i, 2);
        if (oh < 0 || oh > 23) return SEGD_EINVAL;
        if (i < len && s[i] == ':') i++;
        int om = digits(s, len, &i, 2);
        if (om < 0 || om > 59) return SEGD_EINVAL;
        t -= sign * ((int64_t)oh * 3600 + om * 60) * 1000;
    }
    if (i != len) return SEGD_EINVAL;
    *ms = t;
    return 0;
}

int timefmt_is_datetime(const char *s, size_t len)
{
    int64_t ms;
    return len >= 16 && timefmt_parse(s, len, 0, &ms) == 0;
}

char *timefmt_format(int64_t ms, char *buf)
{
    int64_t days = ms / 86400000LL;
    if (ms % 86400000LL < 0) days--;            /* floor, without negating (INT64_MIN) */
    int64_t rem = ms - days * 86400000LL;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, TIMEFMT_LEN, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d,
             (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
    return buf;
}

int64_t timefmt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
