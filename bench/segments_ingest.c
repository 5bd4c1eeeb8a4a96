/* segments_ingest.c - `make bench`, segments: sustained ingest through the real write
 * path (ingest: validation, the writer thread, SQLite with group commit) with segment
 * maintenance off, then on, on the same store.
 *
 * First (not timed) PEOPLE people are identified (plan, country, ltv, newsletter, tags)
 * and HISTORY events of the past 90 days are imported. Then a live stream of LIVE
 * messages is sent, timestamped now: nine in ten are tracks of existing people (skewed:
 * a twentieth of the people send a quarter of the events; page_view, purchase,
 * add_to_cart), one in ten an identify changing a person's plan or ltv. The stream is
 * sent as batches of 500 messages the way /v1/batch delivers them, from one thread (the
 * writer is the bound): once with no segments, then after defining SEGMENTS segments
 * (the templates of bench/world.h, timed too), so that every message re-checks the
 * segments that read what it changed and stores the transitions with it.
 * After each stream, LIVE / 10 new people sign up (an identify each): a new person is
 * checked against the segments that read what they sent and those a person with nothing
 * matches (they may join what reads nothing they sent).
 * Prints a markdown table: messages per second off and on, the ratio (goal: no more than
 * 2x slower), new people per second off and on, transitions written, and the time to
 * define the segments.
 *
 * usage: segments_ingest PEOPLE HISTORY LIVE [SEGMENTS] [DIR]
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

/* Messages gathered into batches of BATCH, each sent as one ingest_messages call. */
typedef struct batcher {
    ingest *ing;
    cJSON *batch;
    int n;
    uint64_t sent;
} batcher;

static batcher batch_start(ingest *ing)
{
    return (batcher){ ing, cJSON_CreateArray(), 0, 0 };
}

static void batch_send(batcher *b)
{
    if (!b->n) return;
    segd_error err;
    segd_error_clear(&err);
    check(ingest_messages(b->ing, "bench", b->batch, -1, 0, NULL, NULL, &err), &err, "batch");
    cJSON_Delete(b->batch);
    b->batch = cJSON_CreateArray();
    b->sent += (uint64_t)b->n;
    b->n = 0;
}

static void batch_add(batcher *b, cJSON *m)
{
    cJSON_AddItemToArray(b->batch, m);
    if (++b->n == BATCH) batch_send(b);
}

/* Sends what is left; returns how many messages were sent. */
static uint64_t batch_end(batcher *b)
{
    batch_send(b);
    cJSON_Delete(b->batch);
    return b->sent;
}

/* An identify of user-NNNNNNN at `at`; returns the message, its "traits" in *traits. */
static cJSON *identify_message(uint32_t user, int64_t at, cJSON **traits)
{
    char buf[64];
    char ts[TIMEFMT_LEN];
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "type", "identify");
    snprintf(buf, sizeof buf, "user-%07u", user);
    cJSON_AddStringToObject(m, "userId", buf);
    cJSON_AddStringToObject(m, "timestamp", timefmt_format(at, ts));
    *traits = cJSON_AddObjectToObject(m, "traits");
    return m;
}

/* A track of a person (skewed: a twentieth of the people send a quarter of the events). */
static cJSON *track_message(uint32_t people, int64_t at)
{
    char buf[64];
    char ts[TIMEFMT_LEN];
    uint32_t who = (uint32_t)(rnd() % people);
    if (rnd() % 4 == 0) who = (uint32_t)(rnd() % (people / 20 + 1));
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
    return m;
}

/* Identifies everyone and imports the history (not timed). */
static uint64_t load_world(ingest *ing, uint32_t people, uint64_t events, int64_t now)
{
    batcher b = batch_start(ing);
    for (uint32_t i = 0; i < people; i++) {
        cJSON *t;
        cJSON *m = identify_message(i, now - 120 * DAY_MS + (int64_t)(rnd() % (30 * DAY_MS)), &t);
        cJSON_AddStringToObject(t, "plan", PLANS[rnd() % 4]);
        cJSON_AddStringToObject(t, "country", COUNTRIES[rnd() % 10]);
        cJSON_AddNumberToObject(t, "ltv", (double)(rnd() % 500000) / 100.0);
        cJSON_AddBoolToObject(t, "newsletter", (int)(rnd() & 1));
        if (rnd() & 1) {
            cJSON *tags = cJSON_AddArrayToObject(t, "tags");
            cJSON_AddItemToArray(tags, cJSON_CreateString(TAGS[rnd() % 10]));
        }
        batch_add(&b, m);
    }
    for (uint64_t i = 0; i < events; i++)
        batch_add(&b, track_message(people, now - 90 * DAY_MS + (int64_t)((double)i / (double)events * 90.0 * DAY_MS)));
    return batch_end(&b);
}

/* New people signing up (timed by the caller): an identify each, user ids from `first` on. */
static uint64_t new_people(ingest *ing, uint32_t first, uint32_t n)
{
    batcher b = batch_start(ing);
    for (uint32_t i = first; i < first + n; i++) {
        cJSON *t;
        cJSON *m = identify_message(i, timefmt_now_ms(), &t);
        cJSON_AddStringToObject(t, "plan", PLANS[rnd() % 4]);
        cJSON_AddStringToObject(t, "country", COUNTRIES[rnd() % 10]);
        batch_add(&b, m);
    }
    return batch_end(&b);
}

/* The live stream (timed by the caller): tracks and some identifies, timestamped now. */
static uint64_t live(ingest *ing, uint32_t people, uint64_t messages)
{
    batcher b = batch_start(ing);
    for (uint64_t i = 0; i < messages; i++) {
        int64_t at = timefmt_now_ms();
        if (rnd() % 10 == 0) {
            cJSON *t;
            cJSON *m = identify_message((uint32_t)(rnd() % people), at, &t);
            if (rnd() & 1) cJSON_AddStringToObject(t, "plan", PLANS[rnd() % 4]);
            else cJSON_AddNumberToObject(t, "ltv", (double)(rnd() % 500000) / 100.0);
            batch_add(&b, m);
        } else {
            batch_add(&b, track_message(people, at));
        }
    }
    return batch_end(&b);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: segments_ingest PEOPLE HISTORY LIVE [SEGMENTS] [DIR]\n");
        return 2;
    }
    uint32_t people = (uint32_t)strtoul(argv[1], NULL, 10);
    uint64_t history = strtoull(argv[2], NULL, 10), n_live = strtoull(argv[3], NULL, 10);
    int n_segments = argc > 4 ? atoi(argv[4]) : 1000;
    char root[256];
    snprintf(root, sizeof root, "%s/segd-bench-seg-XXXXXX", argc > 5 ? argv[5] : "/tmp");
    if (people < 100 || n_segments < 10 || n_live < 1000 || !mkdtemp(root)) return 2;

    segd_error err;
    segd_error_clear(&err);
    store *st = store_open(root, &err);
    if (!st) check(-1, &err, "store_open");
    ingest *ing = ingest_open(st, NULL, &err);
    if (!ing) check(-1, &err, "ingest_open");
    check(ingest_wait_ready(ing, &err), &err, "ingest_wait_ready");
    declare_schema(ing);
    double t0 = now_s();
    uint64_t loaded = load_world(ing, people, history, timefmt_now_ms());
    fprintf(stderr, "loaded %" PRIu64 " messages in %.1f s\n", loaded, now_s() - t0);

    uint32_t n_new = (uint32_t)(n_live / 10);
    t0 = now_s();
    uint64_t off_n = live(ing, people, n_live);
    double off_s = now_s() - t0;
    t0 = now_s();
    new_people(ing, people, n_new);
    double off_new_s = now_s() - t0;
    fprintf(stderr, "no segments: %" PRIu64 " messages in %.1f s, %u new people in %.1f s\n", off_n, off_s, n_new,
            off_new_s);

    t0 = now_s();
    define_segments(ing, n_segments);
    double define_s = now_s() - t0;
    fprintf(stderr, "defined %d segments in %.1f s\n", n_segments, define_s);

    ingest_stats before, after;
    ingest_get_stats(ing, &before);
    t0 = now_s();
    uint64_t on_n = live(ing, people, n_live);
    double on_s = now_s() - t0;
    ingest_get_stats(ing, &after);
    t0 = now_s();
    new_people(ing, people + n_new, n_new);
    double on_new_s = now_s() - t0;
    fprintf(stderr, "%d segments: %" PRIu64 " messages in %.1f s, %u new people in %.1f s\n", n_segments, on_n, on_s,
            n_new, on_new_s);
    ingest_close(ing);
    store_close(st);
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);

    double r_off = off_n / off_s, r_on = on_n / on_s;
    printf("| live ingest through the write path (%u people, %" PRIu64 " history events, %" PRIu64
           " live messages, batches of %d) | result | goal |\n", people, history, n_live, BATCH);
    printf("|---|---|---|\n");
    printf("| no segments | %.0f messages/s | |\n", r_off);
    printf("| %d segments maintained | %.0f messages/s | |\n", n_segments, r_on);
    printf("| slowdown | %.2fx | <= 2x |\n", r_off / r_on);
    printf("| new people (an identify each), no segments | %.0f people/s | |\n", n_new / off_new_s);
    printf("| new people, %d segments | %.0f people/s | |\n", n_segments,
           n_new / on_new_s);
    printf("| transitions stored per live message | %.2f | |\n",
           (double)(after.segment_transitions - before.segment_transitions) / (double)on_n);
    printf("| defining the %d segments (evaluate, store checkpoints) | %.2f s | |\n", n_segments, define_s);
    return 0;
}
