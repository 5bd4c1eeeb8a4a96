#!/usr/bin/env bash
# make bench: deterministic data, segd's ingestion and memory figures, and SQLite on the
# same data in the same run, printed as a markdown table (recorded in docs/PERFORMANCE.md).
#
# Scale with BENCH_PEOPLE (default 1000000) and BENCH_EVENTS (default 20000000);
# BENCH_HTTP_EVENTS (default 1000000) for /v1/batch. Needs about 10 GB in bench/out.
# SEGD_BIN (default ./segd) runs another build on the same data, e.g. the one before a
# change, back to back with this one when the machine is shared and timings drift.
set -euo pipefail
cd "$(dirname "$0")/.."
PEOPLE=${BENCH_PEOPLE:-1000000}
EVENTS=${BENCH_EVENTS:-20000000}
HTTP_EVENTS=${BENCH_HTTP_EVENTS:-1000000}
SEGD=${SEGD_BIN:-./segd}
OUT=bench/out
mkdir -p "$OUT"
for tool in sqlite3 curl; do
    command -v "$tool" >/dev/null || { echo "make bench needs $tool: apt-get install $tool" >&2; exit 1; }
done
CC=${CC:-cc}
$CC -O2 -std=c11 -D_GNU_SOURCE -o "$OUT/gen" bench/gen.c
$CC -O2 -std=c11 -D_GNU_SOURCE -o "$OUT/http_load" bench/http_load.c -lpthread

now() { date +%s.%N; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "generating $PEOPLE people and $EVENTS events (deterministic)..." >&2
[ -s "$OUT/people-$PEOPLE.csv" ] || "$OUT/gen" people-csv "$PEOPLE" > "$OUT/people-$PEOPLE.csv"
[ -s "$OUT/events-$EVENTS.ndjson" ] || "$OUT/gen" events-ndjson "$EVENTS" "$PEOPLE" > "$OUT/events-$EVENTS.ndjson"
[ -s "$OUT/events-$EVENTS.csv" ] || "$OUT/gen" events-csv "$EVENTS" "$PEOPLE" > "$OUT/events-$EVENTS.csv"
"$OUT/gen" batch-bodies "$HTTP_EVENTS" "$PEOPLE" 100 > "$OUT/batches.ndjson"

rm -rf "$OUT/d-ndjson" "$OUT/d-csv" "$OUT/sqlite.db"

# 1. segd import --data: people CSV, then events as NDJSON (one store) and as CSV (another)
t0=$(now); "$SEGD" import --data "$OUT/d-ndjson" "$OUT/people-$PEOPLE.csv" >&2; t1=$(now)
people_rate=$(rate "$PEOPLE" "$(secs "$t0" "$t1")")
t0=$(now); "$SEGD" import --data "$OUT/d-ndjson" "$OUT/events-$EVENTS.ndjson" >&2; t1=$(now)
ndjson_rate=$(rate "$EVENTS" "$(secs "$t0" "$t1")")
"$SEGD" import --data "$OUT/d-csv" "$OUT/people-$PEOPLE.csv" >/dev/null
t0=$(now); "$SEGD" import --data "$OUT/d-csv" "$OUT/events-$EVENTS.csv" >&2; t1=$(now)
csv_rate=$(rate "$EVENTS" "$(secs "$t0" "$t1")")

# 2. rebuild on start, and memory, from the NDJSON store
port_of() { sed -n 's|^listening on http://[^:]*:\([0-9]*\).*|\1|p' "$1" | head -1; }
t0=$(now)
"$SEGD" serve --listen 127.0.0.1:0 --data "$OUT/d-ndjson" > "$OUT/serve.out" 2>&1 &
pid=$!
until grep -q '^listening on' "$OUT/serve.out"; do sleep 0.05; kill -0 $pid; done
t1=$(now)
rebuild_s=$(secs "$t0" "$t1")
port=$(port_of "$OUT/serve.out")
curl -s "http://127.0.0.1:$port/metrics" > "$OUT/metrics.txt"
rss_kb=$(awk '/VmRSS/ { print $2 }' /proc/$pid/status)

# 3. /v1/batch over HTTP into the same loaded server (its people are known, as in
#    production), the load client on the same machine
http_line=$("$OUT/http_load" 127.0.0.1 "$port" "$OUT/batches.ndjson" 8 100)
http_rate=${http_line##*messages_per_second=}
kill -TERM $pid; wait $pid || true
metric() { awk -v k="$1" '$1 == k { print $2 }' "$OUT/metrics.txt"; }
people_n=$(metric segd_people); events_n=$(metric segd_events)
people_b=$(metric 'segd_engine_bytes{part="people"}'); strings_b=$(metric 'segd_engine_bytes{part="strings"}')
events_b=$(metric 'segd_engine_bytes{part="events"}'); props_b=$(metric 'segd_engine_bytes{part="properties"}')

# 4. SQLite on the same data: its own CSV import of the events into a plain table
t0=$(now)
sqlite3 "$OUT/sqlite.db" <<SQL >&2
PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
CREATE TABLE events(user_id TEXT, event TEXT, timestamp TEXT, properties TEXT);
.mode csv
.import --skip 1 $OUT/events-$EVENTS.csv events
SQL
t1=$(now)
sqlite_rate=$(rate "$EVENTS" "$(secs "$t0" "$t1")")

per() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
cat <<TABLE
| measure ($PEOPLE people, $EVENTS events) | result | goal |
|---|---|---|
| segd import, people CSV | $people_rate people/s | |
| segd import, events NDJSON | $ndjson_rate events/s | >= 200000 |
| segd import, events CSV | $csv_rate events/s | >= 400000 |
| /v1/batch over HTTP (100 a batch, 8 connections, known people) | $http_rate events/s | >= 50000 |
| sqlite3 .import of the same events CSV (plain table, no index) | $sqlite_rate rows/s | (reference) |
| rebuild on start (to listening) | ${rebuild_s} s | |
| engine memory per person (columns, indexes; without strings) | $(per "$people_b" "$people_n") bytes | <= 100 |
| engine memory per event (without properties) | $(per "$events_b" "$events_n") bytes | <= 24 |
| event properties per event | $(per "$props_b" "$events_n") bytes | |
| distinct strings | $(awk -v b="$strings_b" 'BEGIN { printf "%.1f MiB", b / 1048576 }') | |
| message-id dedup set ($(metric segd_dedup_message_ids) ids) | $(awk -v b="$(metric segd_dedup_bytes)" 'BEGIN { printf "%.1f MiB", b / 1048576 }') | |
| process RSS after rebuild | $(awk -v k="$rss_kb" 'BEGIN { printf "%.0f MiB", k / 1024 }') | |
TABLE
