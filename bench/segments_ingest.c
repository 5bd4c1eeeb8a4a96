/* segments_ingest.c - `make bench`, segments: sustained ingest through the real write
 * path (ingest: validation, the writer thread, SQLite with group commit) with segment
 * maintenance off, then on.
 *
 * Each phase starts from an empty data directory. The "on" phase first declares the
 * schema and defines SEGMENTS segments (the templates of bench/world.h), so that every
 * message of the stream re-checks the segments that read what it changed and stores
 * the transitions with it. The stream is the same in both phases: an identify of each
 * person (plan, country, ltv, newsletter, tags), then EVENTS track messages (page_view,
 * purchase, add_to_cart) over the last 90 days in time order, sent as batches of 500
 * messages the way /v1/batch delivers them, from one thread (the writer is the bound).
 * Prints a markdown table: messages per second off and on, the ratio (goal: on is no
 * more than 2x slower), and the transitions written.
 *
 * usage: segments_ingest PEOPLE EVENTS [SEGMENTS] [DIR]
 */
#include "world.h"
#include "../src/base/timefmt.h"
#include "../src/ingest/ingest.h"
#include "../src/store/store.h"

#include <cjson/cJSON.h>
#include <ftw.h>
#include <unistd.h>

#define BATCH 500

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void check(int rc, const segd_error *err, const char *what)
{
    if (rc == 0) return;
    fprintf(stderr, "bench/segments_ingest: %s: %s %s\n", what, err->code, err->message);
    exit(1);
}

/* The schema the segments read, declared before they are defined. */
static void declare_schema(ingest *ing)
{
    segd_error err;
    segd_error_clear(&err);
    check(ingest_declare_attribute(ing, "plan", "string", &err), &err, "plan");
    check(ingest_declare_attribute(ing, "ltv", "number", &err), &err, "ltv");
    check(ingest_declare_attribute(ing, "newsletter", "boolean", &err), &err, "newsletter");
    const char *types[] = {
        "{\"name\":\"purchase\",\"properties\":{\"amount\":\"number\",\"sku\":\"string\"}}",
        "{\"name\":\"page_view\",\"properties\":{\"path\":\"string\"}}",
        "{\"name\":\"add_to_cart\",\"properties\":{\"amount\":\"number\"}}",
    };
    for (size_t i = 0; i < 3; i++) {
        cJSON *b = cJSON_Parse(types[i]);
        int created;
        check(ingest_declare_event_type(ing, b, &created, &err), &err, "event type");
        cJSON_Delete(b);
    }
}

static void define_segments(ingest *ing, int n)
{
    char (*ids)[17] = xcalloc((size_t)n, sizeof *ids);
    for (int i = 0; i < n; i++) {
        char text[256], name[32];
        segment_text(i, ids, text, sizeof text);
        snprintf(name, sizeof name, "segment %d", i);
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "name", name);
        cJSON_AddStringToObject(body, "filter", text);
        segd_error err;
        segd_error_clear(&err);
        check(ingest_segment_create(ing, body, "bench", ids[i], &err), &err, text);
        cJSON_Delete(body);
    }
    free(ids);
}

static void send(ingest *ing, cJSON **batch, int *n, uint64_t *sent)
{
    if (!*n) return;
    segd_error err;
    segd_error_clear(&err);
    check(ingest_messages(ing, "bench", *batch, -1, 0, NULL, NULL, &err), &err, "batch");
    cJSON_Delete(*batch);
    *batch = cJSON_CreateArray();
    *sent += (uint64_t)*n;
    *n = 0;
}

/* The stream; returns the messages sent. Deterministic: the seed is reset first. */
static uint64_t stream(ingest *ing, uint32_t people, uint64_t events, int64_t now)
{
    seed = 0x2545F4914F6CDD1DULL;
    cJSON *batch = cJSON_CreateArray();
    int n = 0;
    uint64_t sent = 0;
    char buf[64];
    char ts[TIMEFMT_LEN];
    for (uint32_t i = 0; i < people; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "type", "identify");
        snprintf(buf, sizeof buf, "user-%07u", i);
        cJSON_AddStringToObject(m, "userId", buf);
        cJSON_AddStringToObject(m, "timestamp", timefmt_format(now - 120 * DAY_MS + (int64_t)(rnd() % (30 * DAY_MS)), ts));
        cJSON *t = cJSON_AddObjectToObject(m, "traits");
        cJSON_AddStringToObject(t, "plan", PLANS[rnd() % 4]);
        cJSON_AddStringToObject(t, "country", COUNTRIES[rnd() % 10]);
        cJSON_AddNumberToObject(t, "ltv", (double)(rnd() % 500000) / 100.0);
        cJSON_AddBoolToObject(t, "newsletter", (int)(rnd() & 1));
        if (rnd() & 1) {
            cJSON *tags = cJSON_AddArrayToObject(t, "tags");
            cJSON_AddItemToArray(tags, cJSON_CreateString(TAGS[rnd() % 10]));
        }
        cJSON_AddItemToArray(batch, m);
        if (++n == BATCH) send(ing, &batch, &n, &sent);
    }
    for (uint64_t i = 0; i < events; i++) {
        uint32_t who = (uint32_t)(rnd() % people);
        if (rnd() % 4 == 0) who = (uint32_t)(rnd() % (people / 20 + 1));
        int64_t at = now - 90 * DAY_MS + (int64_t)((double)i / (double)events * 90.0 * DAY_MS);
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "type", "track");
        snprintf(buf, sizeof buf, "user-%07u", who);
        cJSON_AddStringToObject(m, "userId", buf);
        cJSON_AddStringToObject(m, "timestamp", timefmt_format(at, ts));
        cJSON *p = cJSON_AddObjectToObject(m, "properties");
        uint64_t k = rnd() % 8;
        if (k < 5) {
            cJSON_AddStringToObject(m, "event", "page_view");
            cJSON_AddStringToObject(p, "path", PATHS[rnd() % 10]);
        } else if (k < 7) {
            cJSON_AddStringToObject(m, "event", "purchase");
            cJSON_AddNumberToObject(p, "amount", (double)(rnd() % 50000) / 100.0);
            snprintf(buf, sizeof buf, "SKU-%04u", (unsigned)(rnd() % 2000));
            cJSON_AddStringToObject(p, "sku", buf);
        } else {
            cJSON_AddStringToObject(m, "event", "add_to_cart");
            cJSON_AddNumberToObject(p, "amount", (double)(rnd() % 50000) / 100.0);
        }
        cJSON_AddItemToArray(batch, m);
        if (++n == BATCH) send(ing, &batch, &n, &sent);
    }
    send(ing, &batch, &n, &sent);
    cJSON_Delete(batch);
    return sent;
}

typedef struct phase {
    double seconds;
    uint64_t messages;
    uint64_t transitions;
    double define_s;
} phase;

static phase run(const char *root, const char *name, uint32_t people, uint64_t events, int n_segments)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    segd_error err;
    segd_error_clear(&err);
    store *st = store_open(dir, &err);
    if (!st) check(-1, &err, "store_open");
    ingest *ing = ingest_open(st, NULL, &err);
    if (!ing) check(-1, &err, "ingest_open");
    check(ingest_wait_ready(ing, &err), &err, "ingest_wait_ready");
    phase ph = { 0 };
    int64_t now = timefmt_now_ms();
    declare_schema(ing);
    double t0 = now_s();
    if (n_segments) define_segments(ing, n_segments);
    ph.define_s = now_s() - t0;
    t0 = now_s();
    ph.messages = stream(ing, people, events, now);
    ph.seconds = now_s() - t0;
    ingest_stats stats;
    ingest_get_stats(ing, &stats);
    ph.transitions = stats.segment_transitions;
    ingest_close(ing);
    store_close(st);
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    fprintf(stderr, "%s: %" PRIu64 " messages in %.1f s (%.0f/s), %" PRIu64 " transitions\n", name, ph.messages,
            ph.seconds, ph.messages / ph.seconds, ph.transitions);
    return ph;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: segments_ingest PEOPLE EVENTS [SEGMENTS] [DIR]\n");
        return 2;
    }
    uint32_t people = (uint32_t)strtoul(argv[1], NULL, 10);
    uint64_t events = strtoull(argv[2], NULL, 10);
    int n_segments = argc > 3 ? atoi(argv[3]) : 1000;
    char root[256];
    snprintf(root, sizeof root, "%s/segd-bench-seg-XXXXXX", argc > 4 ? argv[4] : "/tmp");
    if (people < 100 || n_segments < 10 || !mkdtemp(root)) return 2;
    phase off = run(root, "off", people, events, 0);
    phase on = run(root, "on", people, events, n_segments);
    rmdir(root);
    double r_off = off.messages / off.seconds, r_on = on.messages / on.seconds;
    printf("| ingest through the write path (%u people, %" PRIu64 " events, batches of %d) | result | goal |\n", people,
           events, BATCH);
    printf("|---|---|---|\n");
    printf("| no segments | %.0f messages/s | |\n", r_off);
    printf("| %d segments maintained | %.0f messages/s | |\n", n_segments, r_on);
    printf("| slowdown | %.2fx | <= 2x |\n", r_off / r_on);
    printf("| transitions stored (the outbox) | %" PRIu64 " | |\n", on.transitions);
    printf("| defining the %d segments on the empty store | %.2f s | |\n", n_segments, on.define_s);
    return 0;
}
