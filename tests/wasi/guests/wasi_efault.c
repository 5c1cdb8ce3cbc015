/* wasi_efault.c: hands the host pointers outside linear memory (and lengths that wrap around) and checks
 * each call answers EFAULT instead of touching host memory or crashing. */
#include <stdint.h>
#include <stdio.h>
#include <wasi/api.h>

static int failures;
static void expect(const char *what, __wasi_errno_t got, __wasi_errno_t want) {
    if (got == want) {
        printf("PASS %s\n", what);
    } else {
        printf("FAIL %s: errno %u, want %u\n", what, got, want);
        failures++;
    }
}

#define FAR ((void *)(uintptr_t)0xfffffff0u) /* far past any memory this module grows to */

/* The raw imports: wasi-libc's wrappers take C strings (and would strlen a bad pointer themselves). */
#define RAW(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))
RAW(path_open) int32_t raw_path_open(int32_t fd, int32_t dirflags, uint32_t path, uint32_t path_len, int32_t oflags,
                                     int64_t base, int64_t inh, int32_t fdflags, uint32_t out);
RAW(path_create_directory) int32_t raw_path_create_directory(int32_t fd, uint32_t path, uint32_t path_len);
RAW(path_filestat_get) int32_t raw_path_filestat_get(int32_t fd, int32_t flags, uint32_t path, uint32_t len,
                                                     uint32_t out);
RAW(path_readlink) int32_t raw_path_readlink(int32_t fd, uint32_t path, uint32_t len, uint32_t buf, uint32_t buf_len,
                                             uint32_t out);
#define P(x) ((uint32_t)(uintptr_t)(x))
#define EF __WASI_ERRNO_FAULT

int main(void) {
    static char ok[64];
    __wasi_size_t n;
    __wasi_iovec_t bad_buf = {.buf = FAR, .buf_len = 16};
    __wasi_iovec_t wrap_buf = {.buf = (uint8_t *)ok, .buf_len = 0xffffffffu};
    __wasi_ciovec_t bad_cbuf = {.buf = FAR, .buf_len = 16};
    __wasi_ciovec_t good_cbuf = {.buf = (const uint8_t *)"x\n", .buf_len = 2};

    expect("fd_read into a buffer past memory", __wasi_fd_read(0, &bad_buf, 1, &n), EF);
    expect("fd_read with a wrapping length", __wasi_fd_read(0, &wrap_buf, 1, &n), EF);
    expect("fd_read with the iovec array past memory", __wasi_fd_read(0, FAR, 1, &n), EF);
    expect("fd_read with an iovec count that wraps", __wasi_fd_read(0, &bad_buf, 0x20000000u, &n), EF);
    expect("fd_read result pointer past memory", __wasi_fd_read(0, (__wasi_iovec_t *)&wrap_buf, 0, FAR), EF);
    expect("fd_write from a buffer past memory", __wasi_fd_write(1, &bad_cbuf, 1, &n), EF);
    expect("fd_write result pointer past memory", __wasi_fd_write(1, &good_cbuf, 1, FAR), EF);
    expect("args_sizes_get past memory", __wasi_args_sizes_get(FAR, &n), EF);
    expect("args_get past memory", __wasi_args_get(FAR, FAR), EF);
    expect("environ_get past memory", __wasi_environ_get(FAR, FAR), EF);
    expect("clock_time_get past memory", __wasi_clock_time_get(0, 1, FAR), EF);
    expect("random_get past memory", __wasi_random_get(FAR, 64), EF);
    expect("random_get wrapping length", __wasi_random_get((uint8_t *)ok, 0xffffffffu), EF);
    expect("fd_fdstat_get past memory", __wasi_fd_fdstat_get(1, FAR), EF);
    expect("fd_filestat_get past memory", __wasi_fd_filestat_get(1, FAR), EF);
    expect("fd_seek result past memory", __wasi_fd_seek(1, 0, __WASI_WHENCE_SET, FAR), EF); /* stdout: a file */
    expect("fd_prestat_get past memory", __wasi_fd_prestat_get(3, FAR), EF);
    expect("fd_prestat_dir_name past memory", __wasi_fd_prestat_dir_name(3, FAR, 8), EF);
    expect("poll_oneoff subscriptions past memory", __wasi_poll_oneoff(FAR, FAR, 1, &n), EF);
    __wasi_fd_t fd;
    expect("path_open with the path past memory", (__wasi_errno_t)raw_path_open(3, 0, P(FAR), 4, 0, 0, 0, 0, P(&fd)), EF);
    expect("path_open with a path length that wraps",
           (__wasi_errno_t)raw_path_open(3, 0, P("."), 0xffffffffu, 0, 0, 0, 0, P(&fd)), EF);
    expect("path_open result past memory", (__wasi_errno_t)raw_path_open(3, 0, P("."), 1, 0, 0, 0, 0, P(FAR)), EF);
    expect("fd_readdir buffer past memory", __wasi_fd_readdir(3, FAR, 128, 0, &n), EF);
    expect("path_filestat_get result past memory", (__wasi_errno_t)raw_path_filestat_get(3, 0, P("."), 1, P(FAR)), EF);
    expect("path_readlink buffer past memory", (__wasi_errno_t)raw_path_readlink(3, P("x"), 1, P(FAR), 16, P(&n)), EF);
    expect("path_create_directory path past memory", (__wasi_errno_t)raw_path_create_directory(3, P(FAR), 3), EF);
    /* The checks come before any effect: a write with one good and one bad iovec writes nothing. */
    __wasi_ciovec_t mixed[2] = {{.buf = (const uint8_t *)"LEAKED\n", .buf_len = 7}, bad_cbuf};
    expect("fd_write with one bad iovec of two", __wasi_fd_write(1, mixed, 2, &n), EF);
    printf("%s: %d failure(s)\n", failures ? "efault FAILED" : "efault: all refused", failures);
    return failures ? 1 : 0;
}
