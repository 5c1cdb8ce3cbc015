/* fuzz_wasi_state.c: the WASI state reader (src/wasi/swasi_state.c) on arbitrary bytes: parsing and
 * validation must refuse with a message or accept, never crash or leak. Only the parse runs: a full load
 * would open whatever host paths the bytes name, which a fuzzer has no business doing. */
#include <stdint.h>
#include <stdio.h>

#include "swasi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    shoal_error err;
    shoal_status st = swasi_state_check(data, size, &err);
    if (st != SHOAL_OK && st != SHOAL_ERR_FORMAT && st != SHOAL_ERR_NOMEM) {
        fprintf(stderr, "unexpected status %d: %s\n", (int)st, err.message);
        __builtin_trap();
    }
    if (st == SHOAL_ERR_FORMAT && !err.message[0])
        __builtin_trap(); /* every refusal says why */
    return 0;
}
