/* gen.c - deterministic data for `make bench`: people and events in the formats segd
 * imports. Same arguments, same bytes: a fixed xorshift seed, fixed base time.
 *
 * usage: gen people-csv N              people CSV: user_id,email,name,phone,country,city,
 *                                      created_at,plan,ltv,newsletter (10 attributes)
 *        gen events-ndjson N PEOPLE    N track messages spread over PEOPLE people
 *        gen events-csv N PEOPLE       the same events as CSV (user_id,event,timestamp,properties)
 *        gen batch-bodies N PEOPLE PER /v1/batch bodies, one a line, PER messages each
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t seed = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
}

static const char *COUNTRIES[] = {"DE", "FR", "US", "GB", "ES", "JP", "BR", "IN", "IT", "NL"};
static const char *CITIES[] = {"Berlin", "Paris", "New York", "London", "Madrid", "Tokyo", "Sao Paulo", "Bengaluru",
                               "Rome", "Amsterdam"};
static const char *PLANS[] = {"free", "starter", "pro", "enterprise"};
static const char *EVENTS[] = {"page_view", "page_view", "page_view", "click", "purchase", "signup_step", "search",
                               "add_to_cart"};
static const char *PATHS[] = {"/", "/pricing", "/docs", "/blog", "/features", "/signup", "/checkout", "/account"};

#define BASE_MS 1767225600000LL   /* 2026-01-01T00:00:00Z */

static void iso(int64_t ms, char buf[64])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(buf, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void event_props(const char *ev, char *buf, size_t size)
{
    if (strcmp(ev, "purchase") == 0 || strcmp(ev, "add_to_cart") == 0)
        snprintf(buf, size, "{\"amount\":%.2f,\"sku\":\"SKU-%04d\",\"currency\":\"EUR\"}",
                 (double)(rnd() % 50000) / 100.0, (int)(rnd() % 2000));
    else if (strcmp(ev, "search") == 0)
        snprintf(buf, size, "{\"query\":\"term %d\",\"results\":%d}", (int)(rnd() % 5000), (int)(rnd() % 100));
    else
        snprintf(buf, size, "{\"path\":\"%s\",\"referrer\":\"https://ref%d.example\"}", PATHS[rnd() % 8],
                 (int)(rnd() % 50));
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: gen people-csv N | events-ndjson N PEOPLE | events-csv N PEOPLE | batch-bodies N PEOPLE PER\n");
        return 2;
    }
    long n = atol(argv[2]), people = argc > 3 ? atol(argv[3]) : 1;
    char ts[64], props[256];
    static char out[1 << 20];
    setvbuf(stdout, out, _IOFBF, sizeof out);
    if (strcmp(argv[1], "people-csv") == 0) {
        printf("user_id,email,name,phone,country,city,created_at,plan,ltv,newsletter\n");
        for (long i = 0; i < n; i++) {
            int c = (int)(rnd() % 10);
            iso(BASE_MS - (int64_t)(rnd() % (365LL * 86400000)), ts);
            printf("u%ld,person%ld@example.com,Person %ld,+49%09" PRIu64 ",%s,%s,%s,%s,%.2f,%s\n", i, i, i,
                   rnd() % 1000000000, COUNTRIES[c], CITIES[c], ts, PLANS[rnd() % 4], (double)(rnd() % 100000) / 100.0,
                   rnd() % 2 ? "true" : "false");
        }
    } else if (strcmp(argv[1], "events-ndjson") == 0 || strcmp(argv[1], "events-csv") == 0) {
        int csv = strcmp(argv[1], "events-csv") == 0;
        if (csv) printf("user_id,event,timestamp,properties\n");
        for (long i = 0; i < n; i++) {
            long who = (long)(rnd() % (uint64_t)people);
            const char *ev = EVENTS[rnd() % 8];
            iso(BASE_MS + (int64_t)(rnd() % (300LL * 86400000)), ts);
            event_props(ev, props, sizeof props);
            if (csv) {
                putchar('u');
                printf("%ld,%s,%s,\"", who, ev, ts);
                for (const char *p = props; *p; p++) {
                    if (*p == '"') putchar('"');
                    putchar(*p);
                }
                printf("\"\n");
            } else {
                printf("{\"type\":\"track\",\"userId\":\"u%ld\",\"event\":\"%s\",\"timestamp\":\"%s\",\"messageId\":\"m%ld\","
                       "\"properties\":%s}\n", who, ev, ts, i, props);
            }
        }
    } else if (strcmp(argv[1], "batch-bodies") == 0) {
        long per = argc > 4 ? atol(argv[4]) : 100;
        for (long i = 0; i < n; i += per) {
            printf("{\"batch\":[");
            for (long k = 0; k < per && i + k < n; k++) {
                long who = (long)(rnd() % (uint64_t)people);
                const char *ev = EVENTS[rnd() % 8];
                iso(BASE_MS + (int64_t)(rnd() % (300LL * 86400000)), ts);
                event_props(ev, props, sizeof props);
                printf("%s{\"type\":\"track\",\"userId\":\"u%ld\",\"event\":\"%s\",\"timestamp\":\"%s\",\"messageId\":\"h%ld\","
                       "\"properties\":%s}", k ? "," : "", who, ev, ts, i + k, props);
            }
            printf("]}\n");
        }
    } else {
        fprintf(stderr, "gen: unknown kind %s\n", argv[1]);
        return 2;
    }
    return 0;
}
