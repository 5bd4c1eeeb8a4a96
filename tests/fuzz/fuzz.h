/* fuzz.h - what the libFuzzer targets of tests/fuzz/ share: one check macro.
 *
 * A failed check prints what was expected and aborts, so libFuzzer saves the input
 * as a crash artifact (build/fuzz/artifacts/) whatever the sanitizer options are.
 */
#ifndef SEGD_FUZZ_H
#define SEGD_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                        \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n  ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#endif
