/* The filter fuzz targets (tests/fuzz/fuzz_filter_json.c, fuzz_filter_text.c) run by
 * `make test` without libFuzzer: every file of their seed corpus in the tree, then a few
 * seconds of random mutations of it (byte flips, dictionary words, cuts, splices), under
 * the sanitizers. A failed check aborts with the input printed. `make fuzz` remains the
 * coverage-guided search; this keeps the corpus and the checks honest on every run.
 * FILTER_FUZZ_SECONDS (default 2) sets the time per target.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define LLVMFuzzerTestOneInput fuzz_filter_json_one
#include "../fuzz/fuzz_filter_json.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_filter_text_one
#include "../fuzz/fuzz_filter_text.c"
#undef LLVMFuzzerTestOneInput

typedef int (*fuzz_target)(const uint8_t *data, size_t len);

/* the input under test, printed by the abort handler */
static const uint8_t *current;
static size_t current_len;

static void on_abort(int sig)
{
    static const char head[] = "\nfilter fuzz: failing input (hex): ";
    if (write(2, head, sizeof head - 1) < 0) _exit(1);
    for (size_t i = 0; i < current_len && i < 4096; i++) {
        char hex[2] = {"0123456789abcdef"[current[i] >> 4], "0123456789abcdef"[current[i] & 15]};
        if (write(2, hex, 2) < 0) break;
    }
    if (write(2, "\n", 1) < 0) _exit(1);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void run(fuzz_target target, const uint8_t *data, size_t len)
{
    current = data;
    current_len = len;
    target(data, len);
    current = NULL;
    current_len = 0;
}

typedef struct corpus {
    uint8_t **items;
    size_t *lens;
    size_t n;
} corpus;

static void corpus_load(corpus *c, const char *dir)
{
    memset(c, 0, sizeof *c);
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open %s (run from the repository root)", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        uint8_t *buf = malloc(65536);
        size_t len = fread(buf, 1, 65536, f);
        fclose(f);
        c->items = realloc(c->items, (c->n + 1) * sizeof *c->items);
        c->lens = realloc(c->lens, (c->n + 1) * sizeof *c->lens);
        c->items[c->n] = buf;
        c->lens[c->n++] = len;
    }
    closedir(d);
    assert_true(c->n > 0);
}

static void corpus_free(corpus *c)
{
    for (size_t i = 0; i < c->n; i++) free(c->items[i]);
    free(c->items);
    free(c->lens);
}

static uint64_t rng_state = 88172645463325252ULL;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? (uint32_t)(rng_state >> 11) % n : 0;
}

static const char *const words[] = {
    "and", "or", "not ", "(", ")", ",", ".", "=", "!=", ">=", "<", " in ", "between 1 and 2", "is set", "is not empty",
    "contains", "starts with", "more than 30d ago", "on day \"2026-11-28\" offset \"+02:00\"", "count(", "sum(e.p",
    "did(", "bucket(\"x\")", " where ", ", within 14d", ", from \"2026-01-01\" to \"2026-02-01\"", "in segment \"s\"",
    "case sensitive", "`a b`", "\"\\u00e9\"", "\"\\ud83d\\ude00\"", "\\", "\"", "`", "1e400", "-0", "\xff", "\xc3\xa9",
    "{", "}", "[", "]", ":", "\"and\":[", "\"not\":", "\"attribute\":\"a\"", "\"op\":\"eq\"", "\"value\":", "\"event\":\"e\"",
    "\"where\":", "\"within\":\"3d\"", "\"metric\":{\"fn\":\"sum\",\"property\":\"p\"}", "\"offset\":\"+01:00\"",
    "\"case\":\"sensitive\"", "\"segment\":\"s\"", "\"bucket\":{\"salt\":\"s\",\"from\":1,\"to\":2}", "\"\\u0000\"",
};

/* One random mutation of a copy of an item into out (capacity cap); returns the length. */
static size_t mutate(const corpus *c, uint8_t *out, size_t cap)
{
    size_t i = rnd((uint32_t)c->n);
    size_t len = c->lens[i] < cap ? c->lens[i] : cap;
    memcpy(out, c->items[i], len);
    int rounds = 1 + (int)rnd(4);
    for (int r = 0; r < rounds; r++) {
        size_t at = len ? rnd((uint32_t)len + 1) : 0;
        switch (rnd(6)) {
        case 0:                                    /* flip a byte */
            if (len) out[rnd((uint32_t)len)] ^= (uint8_t)(1u << rnd(8));
            break;
        case 1: {                                  /* insert a word */
            const char *w = words[rnd(sizeof words / sizeof words[0])];
            size_t wl = strlen(w);
            if (len + wl > cap) break;
            memmove(out + at + wl, out + at, len - at);
            memcpy(out + at, w, wl);
            len += wl;
            break;
        }
        case 2: {                                  /* cut a range */
            size_t k = len - at ? rnd((uint32_t)(len - at) + 1) : 0;
            memmove(out + at, out + at + k, len - at - k);
            len -= k;
            break;
        }
        case 3:                                    /* truncate */
            len = at;
            break;
        case 4: {                                  /* splice in part of another item */
            size_t j = rnd((uint32_t)c->n);
            size_t from = c->lens[j] ? rnd((uint32_t)c->lens[j]) : 0;
            size_t k = c->lens[j] - from;
            if (k > 64) k = rnd(64);
            if (len + k > cap) break;
            memmove(out + at + k, out + at, len - at);
            memcpy(out + at, c->items[j] + from, k);
            len += k;
            break;
        }
        default: {                                 /* duplicate a range */
            size_t k = len - at ? rnd((uint32_t)(len - at) + 1) : 0;
            if (len + k > cap) break;
            memmove(out + at + k, out + at, len - at);
            len += k;
            break;
        }
        }
    }
    return len;
}

static void fuzz_corpus(const char *dir, fuzz_target target)
{
    corpus c;
    corpus_load(&c, dir);
    for (size_t i = 0; i < c.n; i++) run(target, c.items[i], c.lens[i]);

    const char *env = getenv("FILTER_FUZZ_SECONDS");
    double seconds = env ? atof(env) : 2.0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint8_t *buf = malloc(8192);
    long runs = 0;
    for (;;) {
        for (int k = 0; k < 64; k++, runs++) {
            size_t len = mutate(&c, buf, 8192);
            run(target, buf, len);
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 >= seconds) break;
    }
    printf("%s: %zu seeds, %ld mutations\n", dir, c.n, runs);
    free(buf);
    corpus_free(&c);
}

static void test_fuzz_filter_json(void **state)
{
    (void)state;
    fuzz_corpus("tests/fuzz/corpus/filter_json", fuzz_filter_json_one);
}

static void test_fuzz_filter_text(void **state)
{
    (void)state;
    fuzz_corpus("tests/fuzz/corpus/filter_text", fuzz_filter_text_one);
}

int main(void)
{
    signal(SIGABRT, on_abort);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_filter_json),
        cmocka_unit_test(test_fuzz_filter_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
