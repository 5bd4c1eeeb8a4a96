/* segments.c - `make bench`, segments: the cost of keeping 1,000 segments exact.
 *
 * On the world of bench/world.h, defines SEGMENTS segments from ten templates with
 * varied parameters (attributes, tags, event counts and sums, windows, "never did",
 * last_seen more than N days ago, distinct counts, segments naming other segments),
 * then measures: creating them all, recomputing all of them from scratch, the time to
 * update every membership after one event (p50 / p99 over EVENTS_AFTER new events, each
 * appended to the engine and reported as ingest would), and the clock: moving time on
 * by a day at a time for a month and running every due re-check, as re-checks and
 * flips per second. Prints a markdown table.
 *
 * usage: segments PEOPLE EVENTS [SEGMENTS]
 */
#include "world.h"
#include "../src/filter/filter.h"
#include "../src/segments/segments.h"

#define EVENTS_AFTER 100000

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: segments PEOPLE EVENTS [SEGMENTS]\n");
        return 2;
    }
    uint32_t people = (uint32_t)strtoul(argv[1], NULL, 10);
    uint64_t events = strtoull(argv[2], NULL, 10);
    int n_segments = argc > 3 ? atoi(argv[3]) : 1000;
    if (people < 100 || n_segments < 10) return 2;

    double t0 = now_s();
    engine *e = world_new(people, events);
    fprintf(stderr, "generated %u people and %" PRIu64 " events in %.1f s\n", people, events, now_s() - t0);

    segments *s = segments_new();
    char (*ids)[SEGMENT_ID_LEN + 1] = xcalloc((size_t)n_segments, sizeof *ids);
    seg_transitions out = { 0 };
    uint64_t members = 0;
    t0 = now_s();
    for (int i = 0; i < n_segments; i++) {
        char text[256], name[32];
        segment_text(i, ids, text, sizeof text);
        snprintf(name, sizeof name, "segment %d", i);
        segd_error err;
        segd_error_clear(&err);
        filter_node *f = filter_parse_text(text, strlen(text), NULL, &err);
        segment_input in = { .name = name, .filter = f };
        if (!f || segments_create(s, e, &in, NOW_MS, 0, ids[i], &out, &err) < 0) {
            fprintf(stderr, "bench/segments: %s: %s %s\n", text, err.code, err.message);
            return 1;
        }
        filter_free(f);
        out.n = 0;                 /* the silent joins of the new members */
        segment_view v;
        segments_view(s, i, &v);
        members += v.size;
    }
    double create_s = now_s() - t0;
    t0 = now_s();
    segments_recompute_all(s, e, NOW_MS, SEG_CAUSE_CLOCK, &out);
    double recompute_s = now_s() - t0;
    if (out.n) fprintf(stderr, "bench/segments: a recomputation at the same moment changed %zu memberships\n", out.n);
    fprintf(stderr, "defined %d segments (%" PRIu64 " memberships, %" PRIu64 " scheduled re-checks)\n", n_segments, members,
            segments_scheduled(s));

    /* one event at a time, as ingest reports them */
    int t_purchase = engine_event_type_find(e, "purchase"), t_page = engine_event_type_find(e, "page_view");
    int p_amount = engine_prop_find(e, t_purchase, "amount"), p_sku = engine_prop_find(e, t_purchase, "sku");
    int p_path = engine_prop_find(e, t_page, "path");
    int64_t *lat = xmalloc(EVENTS_AFTER * sizeof *lat);
    size_t flips = 0;
    int64_t now = NOW_MS;
    for (int i = 0; i < EVENTS_AFTER; i++) {
        person_id p = (person_id)(rnd() % people);
        int purchase = rnd() % 4 == 0;
        int type = purchase ? t_purchase : t_page;
        int props[2];
        segd_value vals[2];
        size_t n = 0;
        char sku[16];
        if (purchase) {
            props[n] = p_amount;
            vals[n++] = (segd_value){ .type = SEGD_T_NUMBER, .number = (double)(rnd() % 50000) / 100.0 };
            snprintf(sku, sizeof sku, "SKU-%04u", (unsigned)(rnd() % 2000));
            props[n] = p_sku;
            vals[n++] = str(sku);
        } else {
            props[n] = p_path;
            vals[n++] = str(PATHS[rnd() % 10]);
        }
        now += 10;   /* 100 events a second of simulated time */
        must((int)(engine_event_append(e, p, type, now, n, props, vals) < 0 ? -1 : 0), "append");
        set(e, p, ATTR_LAST_SEEN, (segd_value){ .type = SEGD_T_DATETIME, .time_ms = now });
        int attr = ATTR_LAST_SEEN;
        seg_change what = { .attrs = &attr, .n_attrs = 1, .types = &type, .n_types = 1 };
        out.n = 0;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        segments_person_changed(s, e, p, &what, now, SEG_CAUSE_WRITE, &out);
        clock_gettime(CLOCK_MONOTONIC, &b);
        lat[i] = (int64_t)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
        flips += out.n;
    }
    qsort(lat, EVENTS_AFTER, sizeof *lat, cmp_i64);
    double p50_us = (double)lat[EVENTS_AFTER / 2] / 1000, p99_us = (double)lat[EVENTS_AFTER * 99 / 100] / 1000;

    /* the clock: a month, a day at a time */
    size_t rechecks = 0, clock_flips = 0;
    double cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (int day = 1; day <= 30; day++) {
        out.n = 0;
        rechecks += segments_run_due(s, e, now + (int64_t)day * DAY_MS, &out);
        clock_flips += out.n;
    }
    double clock_cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;

    printf("| measure (%u people, %" PRIu64 " events, %d segments) | result | goal |\n", people, events, n_segments);
    printf("|---|---|---|\n");
    printf("| define all segments (evaluate each over everyone, schedule the clock) | %.2f s | |\n", create_s);
    printf("| recompute all segments from scratch | %.2f s | |\n", recompute_s);
    printf("| memberships | %" PRIu64 " | |\n", members);
    printf("| membership update per event, p50 | %.1f us | |\n", p50_us);
    printf("| membership update per event, p99 | %.1f us | < 100 us |\n", p99_us);
    printf("| transitions from %d events | %zu | |\n", EVENTS_AFTER, flips);
    printf("| clock: re-checks due over 30 days | %zu | |\n", rechecks);
    printf("| clock: flips over 30 days | %zu | |\n", clock_flips);
    printf("| clock: re-checks per second of CPU | %.0f | >= 100000 flips/s |\n", clock_cpu > 0 ? rechecks / clock_cpu : 0);
    printf("| clock: flips per second of CPU | %.0f | |\n", clock_cpu > 0 ? clock_flips / clock_cpu : 0);
    seg_transitions_release(&out);
    free(lat);
    free(ids);
    segments_free(s);
    engine_free(e);
    return 0;
}
