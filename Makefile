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
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)

.PHONY: all run test unit e2e bench fuzz soak clean asan
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

bench: segd
	bench/run.sh

clean:
	rm -rf build segd

-include $(REL_OBJS:.o=.d) $(ASAN_OBJS:.o=.d)
