/* evblock.h - events packed N consecutive rows of one type to a store row: the
 * binary format of an event_blocks row, and a run (the same rows unpacked into
 * arrays), which is how the store gathers appended events until its transaction
 * commits and how a merge or an erasure edits a block.
 *
 * Owns only bytes and arrays: no SQLite, no engine. Workload: appends dominate (one
 * evrun_append per event on the writer thread, an encode per block at commit);
 * decodes at the rebuild (every block once) and for the rare merge or erasure.
 *
 * Format, version 1 (EVBLOCK_VERSION; little-endian, as every host segd builds on):
 *   u8 version, u8 0, u16 0, u32 n            header, 8 bytes
 *   i64 time[n]                               milliseconds UTC
 *   u32 person[n]
 *   u32 len[n]    0: no properties (NULL); EVBLOCK_HOLE: an erased row (person and
 *                 time 0, no properties); else the properties' byte length + 1
 *   bytes         the properties' JSON texts, concatenated in row order
 * A block's key (type << 32 | first row) and n are columns of its row, not part of
 * the bytes.
 */
#ifndef SEGD_STORE_EVBLOCK_H
#define SEGD_STORE_EVBLOCK_H

#include <stddef.h>
#include <stdint.h>

#define EVBLOCK_VERSION 1
#define EVBLOCK_MAX_ROWS 1024u         /* rows a block holds at most: bounds what a merge rewrites */
#define EVBLOCK_HOLE UINT32_MAX        /* len[] of an erased row */
#define EVBLOCK_HEADER_BYTES 8

/* Rows of one type, first .. first + n - 1, unpacked. Embedded: evrun_init /
 * evrun_release; evrun_clear keeps the buffers for reuse. */
typedef struct evrun {
    int type;
    uint32_t first;
    uint32_t n;
    int64_t *times;
    uint32_t *persons;
    uint32_t *lens;               /* as in the format */
    size_t cap;                   /* rows the arrays hold */
    char *bytes;                  /* properties' texts, concatenated */
    size_t bytes_len, bytes_cap;
    /* used by the store for runs waiting to commit */
    uint64_t limit;               /* rows must stay below this (the next block of the type) */
    int written;                  /* already stored as a block in this transaction */
} evrun;

void evrun_init(evrun *r);
void evrun_release(evrun *r);

/* Empties the run and gives it a type and first row. */
void evrun_reset(evrun *r, int type, uint32_t first);

/* Appends row first + n: its person, time and properties (props NULL: none). */
void evrun_append(evrun *r, uint32_t person, int64_t time_ms, const char *props, size_t len);

/* Turns row i (< n) into a hole: person 0, time 0, its properties dropped. */
void evrun_hole(evrun *r, uint32_t i);

/* Invariant: n <= cap, bytes_len is the sum of the rows' property lengths, holes have
 * person 0 and time 0. Returns 0, or -1 after printing the first violation. */
int evrun_check(const evrun *r);

/* 1 if every row is a hole. */
int evrun_all_holes(const evrun *r);

/* The block bytes of the run, written to *buf (grown as needed, *cap its size);
 * returns their length. */
size_t evblock_encode(const evrun *r, char **buf, size_t *cap);

/* Unpacks block bytes of `n` rows into r (reset to type and first). Returns 0, or -1
 * when the bytes are not a version-1 block of n rows (r is then unspecified). */
int evblock_decode(const void *data, size_t len, int type, uint32_t first, uint32_t n, evrun *r);

/* Reading a block without unpacking it (the rebuild): evblock_open checks the bytes
 * (0 or -1 as evblock_decode) and fills *it; evblock_next gives the next row (1) or
 * says the block is done (0). *props is NULL for none, and points into the block. */
typedef struct evblock_iter {
    const unsigned char *base;
    uint32_t n, i;
    size_t bytes_off;             /* next row's properties, from base */
} evblock_iter;

int evblock_open(const void *data, size_t len, uint32_t n, evblock_iter *it);
int evblock_next(evblock_iter *it, uint32_t *person, int64_t *time_ms, const char **props, size_t *len,
                 int *hole);

#endif
