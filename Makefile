# segd - the whole build interface: make, make run, make test, make bench, make fuzz, make soak.
# Release objects go to build/release, sanitizer (ASan+UBSan) objects to build/asan.

VERSION := 0.1.0
PKGS    := libmicrohttpd libcjson libutf8proc sqlite3 libsodium libcurl
CC      ?= cc
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wstrict-prototypes -Wno-unused-parameter \
                 -DSEGD_VERSION='"$(VERSION)"' $(shell pkg-config --cflags $(PKGS)) -MMD -MP
LIBS    := $(shell pkg-config --libs $(PKGS)) -lroaring -lpthread -lm
RELEASE_CFLAGS := $(CFLAGS_COMMON) -O2 -g
ASAN_CFLAGS    := $(CFLAGS_COMMON) -O1 -g -Werror -fsanitize=address,undefined -fno-omit-frame-pointer \
                  -fno-sanitize-recover=undefined

SRCS      := $(shell find src -name '*.c' | sort)
LIB_SRCS  := $(filter-out src/main.c,$(SRCS))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))

REL_OBJS  := $(SRCS:%.c=build/release/%.o)
ASAN_OBJS := $(SRCS:%.c=build/asan/%.o)
ASAN_LIB_OBJS := $(LIB_SRCS:%.c=build/asan/%.o)
REL_LIB_OBJS  := $(LIB_SRCS:%.c=build/release/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)

.PHONY: all run test unit e2e bench bench-ingest bench-filters bench-segments fuzz soak clean asan
all: segd

segd: $(REL_OBJS)
	$(CC) $(RELEASE_CFLAGS) -o $@ $^ $(LIBS)

build/release/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(RELEASE_CFLAGS) -c -o $@ $<

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c -o $@ $<

build/asan/segd: $(ASAN_OBJS)
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LIBS)

build/asan/tests/%: tests/unit/%.c $(ASAN_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -Isrc -o $@ $< $(ASAN_LIB_OBJS) $(LIBS) -lcmocka

asan: build/asan/segd $(UNIT_BINS)

# Starts segd on 127.0.0.1:8080 with ./data, loading demo data into an empty store.
run: segd
	./segd serve --demo-data $(RUN_ARGS)

# Sanitizer build, then every runner; tests/run-all.sh prints the aggregated line.
test: asan
	tests/run-all.sh $(UNIT_BINS)

unit: asan
	tests/run-all.sh --unit-only $(UNIT_BINS)

# make bench: ingestion (bench/run.sh), filters against SQLite (bench/filters.c), then the
# cost of keeping 1,000 segments exact (bench/segments.c).
# SCALE=5M runs 5M people and 100M events instead of 1M and 20M.
ifeq ($(SCALE),5M)
export BENCH_PEOPLE ?= 5000000
export BENCH_EVENTS ?= 100000000
endif
BENCH_PEOPLE ?= 1000000
BENCH_EVENTS ?= 20000000

bench: bench-ingest bench-filters bench-segments

bench-ingest: segd
	bench/run.sh

build/release/bench/%: bench/%.c bench/world.h $(REL_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(RELEASE_CFLAGS) -o $@ $< $(REL_LIB_OBJS) $(LIBS)

bench-filters: build/release/bench/filters
	build/release/bench/filters $(BENCH_PEOPLE) $(BENCH_EVENTS)

# The segments core in memory at full size, then live ingest through the write path
# without and with segments (an identify of each person and BENCH_HISTORY_EVENTS of
# history first, then BENCH_LIVE_MESSAGES timed each way).
BENCH_HISTORY_EVENTS ?= 2000000
BENCH_LIVE_MESSAGES ?= 200000
bench-segments: build/release/bench/segments build/release/bench/segments_ingest
	build/release/bench/segments $(BENCH_PEOPLE) $(BENCH_EVENTS)
	build/release/bench/segments_ingest $(BENCH_PEOPLE) $(BENCH_HISTORY_EVENTS) $(BENCH_LIVE_MESSAGES)

# libFuzzer targets tests/fuzz/fuzz_<name>.c, each run for FUZZ_SECONDS over a copy of its seed
# corpus (tests/fuzz/run.sh); FUZZ_TARGETS="jsonscan timefmt" picks some. Needs clang and its
# fuzzer runtime (scripts/install-deps.sh fuzz). Not part of `make test`: it takes minutes.
# Library objects carry coverage (fuzzer-no-link); only the targets link libFuzzer's main.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_CFLAGS  := $(CFLAGS_COMMON) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=build/fuzz/%.o)
FUZZ_BINS    := $(FUZZ_TARGETS:%=build/fuzz/bin/fuzz_%)

build/fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BINS): build/fuzz/bin/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Isrc -o $@ $< $(FUZZ_LIB_OBJS) $(LIBS)

fuzz: $(FUZZ_BINS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_TARGETS)

# Bounded soak test (tests/soak/soak.mjs, Node 18+): SOAK_SECONDS of mixed load from concurrent
# clients on the release build, compared with the clients' model of what was acknowledged before
# and after a kill -9; RSS sampled and bounded. Prints "N passed, N failed". Not part of
# `make test`: it takes minutes. SOAK_CLIENTS, SOAK_SEED ...: see the head of soak.mjs.
SOAK_SECONDS ?= 120

soak: all build/asan/tests/test_filter_diff
	SEGD_BIN=$(CURDIR)/segd SOAK_SECONDS=$(SOAK_SECONDS) node tests/soak/soak.mjs
	SEGD_DIFF_SECONDS=$(SOAK_SECONDS) build/asan/tests/test_filter_diff

# The filter differential test without end (tests/unit/test_filter_diff.c on the sanitizer
# build): random people, events and filters through filter_eval, filter_match and the SQL
# oracle until stopped (DIFF_SECONDS=0, the default) or for DIFF_SECONDS; prints each
# counterexample, shrunk, with its seed (SEGD_DIFF_SEED=N reruns from it). `make soak`
# runs it for SOAK_SECONDS after the HTTP soak.
.PHONY: soak-filters
DIFF_SECONDS ?= 0
soak-filters: build/asan/tests/test_filter_diff
	SEGD_DIFF_SECONDS=$(DIFF_SECONDS) build/asan/tests/test_filter_diff

clean:
	rm -rf build segd

-include $(REL_OBJS:.o=.d) $(ASAN_OBJS:.o=.d) $(FUZZ_LIB_OBJS:.o=.d) $(wildcard build/fuzz/bin/*.d) \
         $(UNIT_BINS:=.d)
