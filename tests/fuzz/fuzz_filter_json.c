/* fuzz_filter_json.c - libFuzzer target for src/filter/json.c on arbitrary bytes.
 *
 * The parser must refuse what it refuses with a coded, placed error (never crash, leak
 * or loop); what it accepts must pass filter_check and read back as the same tree
 * through both spellings (filter_roundtrip.h). Inputs: up to a few KiB of JSON.
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
    filter_node *n = filter_parse_json_text((const char *)data, len, NULL, &err);
    if (!n) {
        filter_fuzz_check_error(&err, len, 0);
        return 0;
    }
    filter_fuzz_check_tree(n);
    filter_free(n);
    return 0;
}
