/* fuzz_filter_text.c - libFuzzer target for src/filter/text.c on arbitrary bytes.
 *
 * The parser must refuse what it refuses with a coded error at a line and column inside
 * the input (never crash, leak, loop or recurse without bound); what it accepts must pass
 * filter_check and read back as the same tree through both spellings
 * (filter_roundtrip.h). Inputs: up to a few KiB of text.
 */
#include <stddef.h>
#include <stdint.h>

#include "filter/filter.h"
#include "filter_roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (len > 65536) return 0;
    segd_error err;
    filter_node *n = filter_parse_text((const char *)data, len, NULL, &err);
    if (!n) {
        filter_fuzz_check_error(&err, len, 1);
        return 0;
    }
    filter_fuzz_check_tree(n);
    filter_free(n);
    return 0;
}
