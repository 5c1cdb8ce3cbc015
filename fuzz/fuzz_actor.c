/* fuzz_actor.c: actor files (src/snapshot/kactor.c) and the engine state in them (src/wasm/ssnap.c) on
 * arbitrary bytes. Section checksums are recomputed before loading (a mutated file would otherwise stop
 * at the first checksum), so the parsers and the engine-state checks see the mutations. A file that loads
 * is then run for a bounded amount of fuel: a code position, frame or slot that passed the checks but is
 * not safe would crash the interpreter here. The module's WASI and inference sections are not used (a
 * fresh WASI with no directories is given), so that only the engine's side is fuzzed. Seed: fuzz/corpus/
 * fuzz_actor/ (its guest: fuzz/corpus/fuzz_actor_seed.wat). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "shoal.h"

static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Walks the sections (tag u32, reserved u32, len u64, sum u64, payload) and rewrites each checksum. */
static void fix_checksums(uint8_t *d, size_t n) {
    size_t off = 16;
    while (off + 24 <= n) {
        uint64_t len = rd64(d + off + 8);
        if (len > n - off - 24) break;
        wr64(d + off + 16, XXH3_64bits(d + off + 24, (size_t)len));
        off += 24 + (size_t)len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *d = malloc(size ? size : 1);
    if (!d) return 0;
    memcpy(d, data, size);
    fix_checksums(d, size);
    int fd = memfd_create("actor", MFD_CLOEXEC);
    if (fd < 0 || write(fd, d, size) != (ssize_t)size) {
        if (fd >= 0) close(fd);
        free(d);
        return 0;
    }
    free(d);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    shoal_error err;
    memset(&err, 0, sizeof err);
    shoal_actor_file *f = NULL;
    shoal_module *m = NULL;
    shoal_wasi *w = NULL;
    shoal_imports *im = NULL;
    shoal_actor *a = NULL;
    shoal_instance *inst = NULL;
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (shoal_actor_file_open(path, &f, &err) != SHOAL_OK || shoal_actor_file_module(f, &m, &err) != SHOAL_OK)
        goto out;
    static const char *const argv[] = {"fuzz"};
    shoal_wasi_config wc = {.argc = 1, .argv = argv, .stdin_fd = devnull, .stdout_fd = devnull, .stderr_fd = devnull};
    if (shoal_wasi_new(&wc, &w, &err) != SHOAL_OK || !(im = shoal_imports_new()) ||
        shoal_wasi_add_imports(w, im, &err) != SHOAL_OK)
        goto out;
    shoal_actor_config ac = {.wasi = w};
    if (shoal_actor_new(m, &ac, &a, &err) != SHOAL_OK || shoal_actor_add_imports(a, im, &err) != SHOAL_OK) goto out;
    /* Small limits: a mutated page count must not commit gigabytes. */
    shoal_instance_config ic = {.limits = {.fuel = 200000, .max_memory_pages = 64, .max_table_elems = 4096,
                                           .max_call_depth = 512}};
    if (shoal_actor_file_instantiate(f, m, im, &ic, &inst, &err) != SHOAL_OK) goto out;
    int32_t code;
    shoal_actor_resume(inst, &code, &err);
out:
    shoal_instance_free(inst);
    shoal_actor_free(a);
    shoal_imports_free(im);
    shoal_wasi_free(w);
    shoal_module_free(m);
    shoal_actor_file_close(f);
    if (devnull >= 0) close(devnull);
    close(fd);
    return 0;
}
