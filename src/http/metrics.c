/* metrics.c - per-route request counts and latency histograms, and the Prometheus
 * text rendering of /metrics (requests and latencies by route, people, events,
 * ingestion counters). Recording is a few relaxed atomic adds per request. */
#include "internal.h"
#include "../base/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const int64_t BUCKET_US[HTTP_LATENCY_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 500000, 2000000, INT64_MAX};

void http_metrics_record(http_server *srv, int route_index, int status, int64_t micros)
{
    route_metrics *m = &srv->metrics[route_index];
    int cls = status / 100;
    if (cls < 1 || cls > 5) cls = 5;
    __atomic_add_fetch(&m->requests[cls], 1, __ATOMIC_RELAXED);
    for (int b = 0; b < HTTP_LATENCY_BUCKETS; b++)
        if (micros <= BUCKET_US[b]) __atomic_add_fetch(&m->latency_le[b], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m->latency_us_sum, (uint64_t)(micros > 0 ? micros : 0), __ATOMIC_RELAXED);
}

typedef struct out {
    char *s;
    size_t len, cap;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(o->s + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        o->cap = o->cap * 2 + (size_t)n;
        o->s = xrealloc(o->s, o->cap);
    }
}

static void route_label(int i, char *buf, size_t size)
{
    if (i >= HTTP_N_ROUTES) snprintf(buf, size, "none");
    else snprintf(buf, size, "%s %s", HTTP_ROUTES[i].method, HTTP_ROUTES[i].pattern);
}

char *http_metrics_render(http_server *srv, size_t *len)
{
    out o = {xmalloc(16384), 0, 16384};
    char label[300];
    put(&o, "# HELP segd_http_requests_total HTTP requests by route and status class.\n"
            "# TYPE segd_http_requests_total counter\n");
    for (int i = 0; i <= HTTP_N_ROUTES; i++) {
        route_label(i, label, sizeof label);
        for (int c = 1; c <= 5; c++) {
            uint64_t n = __atomic_load_n(&srv->metrics[i].requests[c], __ATOMIC_RELAXED);
            if (n) put(&o, "segd_http_requests_total{route=\"%s\",code=\"%dxx\"} %llu\n", label, c, (unsigned long long)n);
        }
    }
    put(&o, "# HELP segd_http_request_duration_seconds Time from the first byte read to the reply, by route.\n"
            "# TYPE segd_http_request_duration_seconds histogram\n");
    for (int i = 0; i <= HTTP_N_ROUTES; i++) {
        route_metrics *m = &srv->metrics[i];
        uint64_t count = __atomic_load_n(&m->latency_le[HTTP_LATENCY_BUCKETS - 1], __ATOMIC_RELAXED);
        if (!count) continue;
        route_label(i, label, sizeof label);
        for (int b = 0; b < HTTP_LATENCY_BUCKETS; b++) {
            uint64_t n = __atomic_load_n(&m->latency_le[b], __ATOMIC_RELAXED);
            if (BUCKET_US[b] == INT64_MAX)
                put(&o, "segd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", label,
                    (unsigned long long)n);
            else
                put(&o, "segd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", label,
                    (double)BUCKET_US[b] / 1e6, (unsigned long long)n);
        }
        put(&o, "segd_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", label,
            (double)__atomic_load_n(&m->latency_us_sum, __ATOMIC_RELAXED) / 1e6);
        put(&o, "segd_http_request_duration_seconds_count{route=\"%s\"} %llu\n", label, (unsigned long long)count);
    }
    engine_memory mem;
    memset(&mem, 0, sizeof mem);
    const engine *e = ingest_read_begin(srv->ing);
    if (e) {
        engine_memory_usage(e, &mem);
        ingest_read_end(srv->ing);
    }
    put(&o, "# HELP segd_ready 1 once the engine is rebuilt from the store.\n# TYPE segd_ready gauge\nsegd_ready %d\n",
        e != NULL);
    ingest_stats st;
    ingest_get_stats(srv->ing, &st);
    put(&o, "# HELP segd_people People in the engine.\n# TYPE segd_people gauge\nsegd_people %u\n", mem.people);
    put(&o, "# HELP segd_events Events in the engine.\n# TYPE segd_events gauge\nsegd_events %llu\n",
        (unsigned long long)mem.events);
    put(&o, "# HELP segd_engine_bytes Memory the engine holds, by part.\n# TYPE segd_engine_bytes gauge\n"
            "segd_engine_bytes{part=\"people\"} %zu\nsegd_engine_bytes{part=\"strings\"} %zu\n"
            "segd_engine_bytes{part=\"events\"} %zu\nsegd_engine_bytes{part=\"properties\"} %zu\n",
        mem.people_bytes, mem.string_bytes, mem.event_bytes, mem.property_bytes);
    put(&o, "# HELP segd_ingested_messages_total Messages applied (the ingestion rate is its rate()).\n"
            "# TYPE segd_ingested_messages_total counter\nsegd_ingested_messages_total %llu\n",
        (unsigned long long)st.messages_applied);
    put(&o, "# HELP segd_ingested_events_total Events appended.\n# TYPE segd_ingested_events_total counter\n"
            "segd_ingested_events_total %llu\n", (unsigned long long)st.events_appended);
    put(&o, "# HELP segd_deduplicated_messages_total Messages dropped as repeats of a messageId.\n"
            "# TYPE segd_deduplicated_messages_total counter\nsegd_deduplicated_messages_total %llu\n",
        (unsigned long long)st.messages_deduplicated);
    put(&o, "# HELP segd_store_commits_total Store transactions (each holds a group of requests).\n"
            "# TYPE segd_store_commits_total counter\nsegd_store_commits_total %llu\n",
        (unsigned long long)st.groups_committed);
    put(&o, "# HELP segd_write_requests_total Write requests by result.\n# TYPE segd_write_requests_total counter\n"
            "segd_write_requests_total{result=\"committed\"} %llu\nsegd_write_requests_total{result=\"failed\"} %llu\n",
        (unsigned long long)st.ops_committed, (unsigned long long)st.ops_failed);
    put(&o, "# HELP segd_dedup_message_ids Message ids remembered for deduplication (the last 30 days).\n"
            "# TYPE segd_dedup_message_ids gauge\nsegd_dedup_message_ids %llu\n", (unsigned long long)st.dedup_ids);
    put(&o, "# HELP segd_dedup_bytes Memory of the message-id set.\n# TYPE segd_dedup_bytes gauge\nsegd_dedup_bytes %llu\n",
        (unsigned long long)st.dedup_bytes);
    put(&o, "# HELP segd_engine_rebuilds_total Engine rebuilds after a store failure.\n"
            "# TYPE segd_engine_rebuilds_total counter\nsegd_engine_rebuilds_total %llu\n",
        (unsigned long long)st.rebuilds);
    *len = o.len;
    return o.s;
}
