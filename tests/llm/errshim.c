/* errshim.c: a weak shoal_error_set for test programs, from before the library had one (src/wasm). The
 * library's definition always wins; tests/formats still lists this file. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "shoal.h"

__attribute__((weak)) shoal_status shoal_error_set(shoal_error *err, shoal_status status, const char *fmt, ...) {
    if (err) {
        memset(err, 0, sizeof *err);
        err->status = status;
        err->func_index = SHOAL_NO_FUNC;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}
