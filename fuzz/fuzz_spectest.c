/*
 * fuzz_spectest.c: libFuzzer target over the spec runner's script handling (src/cli/spectest_*.c): the
 * input is a wast2json script; the runner must survive any JSON (a broken script is a count of failures,
 * never a crash). Scripts may name the module file "m.wasm", which the target provides: it is synthesized
 * with spectest_wasm.c and re-exports some spectest host functions plus globals, a memory and a table, so
 * invocations, argument checks, `get` and result matching all get exercised.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shoal.h"
#include "spectest_file.h"
#include "spectest_wasm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_dir[64];
static char fz_script[128];
static char fz_module[128];
static FILE *fz_null;

static void fz_cleanup(void) {
    unlink(fz_script);
    unlink(fz_module);
    rmdir(fz_dir);
    if (fz_null)
        fclose(fz_null);
}

/* The work directory and m.wasm, once per process; false if they cannot be made. */
static bool fz_setup(void) {
    static int state; /* 0 not tried, 1 ready, -1 failed */
    if (state)
        return state > 0;
    state = -1;
    SpwItem items[6];
    memset(items, 0, sizeof items);
    items[0] = (SpwItem){.name = "print_i32", .kind = SHOAL_EXTERN_FUNC, .sig = "i:"};
    items[1] = (SpwItem){.name = "print_f64_f64", .kind = SHOAL_EXTERN_FUNC, .sig = "FF:"};
    items[2] = (SpwItem){.name = "g", .kind = SHOAL_EXTERN_GLOBAL, .valtype = SHOAL_I32};
    items[2].init.i32 = 7;
    items[3] = (SpwItem){.name = "h", .kind = SHOAL_EXTERN_GLOBAL, .valtype = SHOAL_F64, .mutable_global = true};
    items[3].init.f64 = -0.5;
    items[4] = (SpwItem){.name = "mem", .kind = SHOAL_EXTERN_MEMORY, .min = 1, .max = 1, .has_max = true};
    items[5] = (SpwItem){.name = "tab", .kind = SHOAL_EXTERN_TABLE, .valtype = SHOAL_EXTERNREF, .min = 2};
    uint8_t *bytes = NULL;
    size_t len = 0;
    /* "spectest.host" is where the runner's spectest module finds its print functions */
    if (spw_build_module("spectest.host", items, 6, &bytes, &len, NULL) != SHOAL_OK)
        return false;
    snprintf(fz_dir, sizeof fz_dir, "/tmp/shoal-fuzz-spectest-XXXXXX");
    if (!mkdtemp(fz_dir)) {
        free(bytes);
        return false;
    }
    snprintf(fz_script, sizeof fz_script, "%s/s.json", fz_dir);
    snprintf(fz_module, sizeof fz_module, "%s/m.wasm", fz_dir);
    atexit(fz_cleanup);
    FILE *fp = fopen(fz_module, "wb");
    bool ok = fp && fwrite(bytes, 1, len, fp) == len;
    if (fp && fclose(fp))
        ok = false;
    free(bytes);
    fz_null = fopen("/dev/null", "w");
    if (!ok || !fz_null)
        return false;
    spf_install_timer(); /* a script that finds a looping module gets it interrupted, not a fuzzer timeout */
    state = 1;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!fz_setup())
        abort(); /* the harness itself is broken: say so loudly rather than fuzz nothing */
    FILE *fp = fopen(fz_script, "wb");
    if (!fp)
        abort();
    size_t wrote = fwrite(data, 1, size, fp);
    if (fclose(fp) || wrote != size)
        abort();
    SpfOptions opt = {.verbose = true, .strict_text = false, .timeout_s = 2, .out = fz_null};
    SpfProgress progress = {0, 0, 0, 0};
    spf_run_file(fz_script, "s.json", &opt, &progress);
    return 0;
}
