/* demo.c - the small generated demo data set `make run` loads into an empty store:
 * 1,000 people with standard and custom attributes and tags, and about 12,000
 * events (purchases with amounts, page views, signups) over the last 90 days.
 * Deterministic (a fixed-seed generator) apart from being relative to today.
 * It goes through ingest like any other write. */
#include "demo.h"
#include "../base/timefmt.h"

#include <stdio.h>
#include <string.h>

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static const char *FIRST[] = {"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Frances", "Dennis",
                              "Radia", "Linus", "Sophie", "Tim", "Hedy", "John"};
static const char *LAST[] = {"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson",
                             "Allen", "Ritchie", "Perlman", "Torvalds", "Wilson", "Berners-Lee", "Lamarr", "Backus"};
static const char *PLACES[][2] = {{"DE", "Berlin"}, {"FR", "Paris"}, {"US", "New York"}, {"GB", "London"},
                                  {"ES", "Madrid"}, {"JP", "Tokyo"}, {"BR", "São Paulo"}, {"IN", "Bengaluru"}};
static const char *PLANS[] = {"free", "starter", "pro", "enterprise"};
static const char *PAGES[] = {"/", "/pricing", "/docs", "/blog", "/signup", "/features"};

static cJSON *base_message(const char *type, int person, int64_t t)
{
    char buf[64], ts[TIMEFMT_LEN];
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "type", type);
    snprintf(buf, sizeof buf, "user-%04d", person);
    cJSON_AddStringToObject(m, "userId", buf);
    cJSON_AddStringToObject(m, "timestamp", timefmt_format(t, ts));
    return m;
}

int demo_load(ingest *ing, segd_error *err)
{
    uint64_t seed = 0x5e6d5e6d12345678ULL;
    int64_t now = timefmt_now_ms(), day = 86400000LL;
    int rc = 0, events = 0;
    for (int chunk = 0; chunk < 10 && rc == 0; chunk++) {
        cJSON *batch = cJSON_CreateArray();
        for (int i = chunk * 100; i < chunk * 100 + 100; i++) {
            int64_t created = now - (int64_t)(next(&seed) % 90) * day - (int64_t)(next(&seed) % day);
            cJSON *m = base_message("identify", i, created);
            cJSON *tr = cJSON_AddObjectToObject(m, "traits");
            const char *first = FIRST[next(&seed) % 16], *last = LAST[next(&seed) % 16];
            char name[96], email[128];
            snprintf(name, sizeof name, "%s %s", first, last);
            snprintf(email, sizeof email, "%s.%s.%d@example.com", first, last, i);
            for (char *p = email; *p; p++)
                if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
            int place = (int)(next(&seed) % 8);
            cJSON_AddStringToObject(tr, "name", name);
            cJSON_AddStringToObject(tr, "email", email);
            cJSON_AddStringToObject(tr, "country", PLACES[place][0]);
            cJSON_AddStringToObject(tr, "city", PLACES[place][1]);
            cJSON_AddStringToObject(tr, "plan", PLANS[next(&seed) % 4]);
            cJSON_AddNumberToObject(tr, "age", 18 + (double)(next(&seed) % 60));
            cJSON_AddBoolToObject(tr, "newsletter", next(&seed) % 3 == 0);
            cJSON *tags = cJSON_AddArrayToObject(tr, "tags");
            if (next(&seed) % 4 == 0) cJSON_AddItemToArray(tags, cJSON_CreateString("vip"));
            if (next(&seed) % 3 == 0) cJSON_AddItemToArray(tags, cJSON_CreateString("beta"));
            cJSON_AddItemToArray(batch, m);

            cJSON *signup = base_message("track", i, created);
            cJSON_AddStringToObject(signup, "event", "signup");
            cJSON_AddItemToArray(batch, signup);
            int n = (int)(next(&seed) % 20);
            for (int k = 0; k < n; k++) {
                int64_t t = created + (int64_t)(next(&seed) % (uint64_t)(now - created + 1));
                int purchase = next(&seed) % 4 == 0;
                cJSON *ev = base_message(purchase ? "track" : "page", i, t);
                cJSON *props = cJSON_AddObjectToObject(ev, "properties");
                if (purchase) {
                    cJSON_AddStringToObject(ev, "event", "purchase");
                    cJSON_AddNumberToObject(props, "amount", (double)(5 + next(&seed) % 300));
                    cJSON_AddStringToObject(props, "currency", "EUR");
                } else {
                    const char *path = PAGES[next(&seed) % 6];
                    char url[128];
                    snprintf(url, sizeof url, "https://example.com%s", path);
                    cJSON_AddStringToObject(props, "url", url);
                    cJSON_AddStringToObject(props, "path", path);
                }
                cJSON_AddItemToArray(batch, ev);
                events++;
            }
        }
        rc = ingest_messages(ing, "demo", batch, -1, 0, NULL, NULL, err);
        cJSON_Delete(batch);
    }
    /* segments a team would start with: one of value, one of time, one of intent */
    static const char *const segments[][3] = {
        {"High-Value Customer", "made at least 3 purchases or spent at least 500 in total",
         "count(purchase) >= 3 or sum(purchase.amount) >= 500"},
        {"Dormant", "not seen for 30 days", "last_seen more_than_ago 30d"},
        {"Pricing-curious free users", "free plan, looked at pricing twice in two weeks, never bought",
         "plan = \"free\" and count(page_view where path = \"/pricing\", within 14d) >= 2 and count(purchase) = 0"},
    };
    for (size_t i = 0; i < sizeof segments / sizeof segments[0] && rc == 0; i++) {
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "name", segments[i][0]);
        cJSON_AddStringToObject(body, "description", segments[i][1]);
        cJSON_AddStringToObject(body, "filter", segments[i][2]);
        char id[SEGMENT_ID_LEN + 1];
        rc = ingest_segment_create(ing, body, "demo", id, err);
        cJSON_Delete(body);
    }
    if (rc == 0) printf("loaded demo data: 1000 people, %d events, 3 segments\n", events + 1000);
    return rc;
}
