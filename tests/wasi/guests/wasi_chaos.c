/* wasi_chaos.c: calls the preview1 functions with pseudo-random arguments (pointers mostly inside linear
 * a scratch buffer, some past the end of memory, lengths small and huge, fds valid and not) to show that
 * the host never crashes, never touches memory outside the guest and always answers with an errno. Give
 * it a scratch preopen: it writes garbage there. argv[1]: iterations, argv[2]: seed.
 * proc_exit and poll_oneoff (which may legitimately wait) are left out. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMP(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))
typedef int32_t i32;
typedef int64_t i64;
IMP(args_get) i32 c_args_get(i32, i32);
IMP(args_sizes_get) i32 c_args_sizes_get(i32, i32);
IMP(environ_get) i32 c_environ_get(i32, i32);
IMP(environ_sizes_get) i32 c_environ_sizes_get(i32, i32);
IMP(clock_res_get) i32 c_clock_res_get(i32, i32);
IMP(clock_time_get) i32 c_clock_time_get(i32, i64, i32);
IMP(fd_advise) i32 c_fd_advise(i32, i64, i64, i32);
IMP(fd_allocate) i32 c_fd_allocate(i32, i64, i64);
IMP(fd_close) i32 c_fd_close(i32);
IMP(fd_datasync) i32 c_fd_datasync(i32);
IMP(fd_fdstat_get) i32 c_fd_fdstat_get(i32, i32);
IMP(fd_fdstat_set_flags) i32 c_fd_fdstat_set_flags(i32, i32);
IMP(fd_filestat_get) i32 c_fd_filestat_get(i32, i32);
IMP(fd_filestat_set_size) i32 c_fd_filestat_set_size(i32, i64);
IMP(fd_filestat_set_times) i32 c_fd_filestat_set_times(i32, i64, i64, i32);
IMP(fd_pread) i32 c_fd_pread(i32, i32, i32, i64, i32);
IMP(fd_prestat_get) i32 c_fd_prestat_get(i32, i32);
IMP(fd_prestat_dir_name) i32 c_fd_prestat_dir_name(i32, i32, i32);
IMP(fd_pwrite) i32 c_fd_pwrite(i32, i32, i32, i64, i32);
IMP(fd_read) i32 c_fd_read(i32, i32, i32, i32);
IMP(fd_readdir) i32 c_fd_readdir(i32, i32, i32, i64, i32);
IMP(fd_seek) i32 c_fd_seek(i32, i64, i32, i32);
IMP(fd_sync) i32 c_fd_sync(i32);
IMP(fd_tell) i32 c_fd_tell(i32, i32);
IMP(fd_write) i32 c_fd_write(i32, i32, i32, i32);
IMP(path_create_directory) i32 c_path_create_directory(i32, i32, i32);
IMP(path_filestat_get) i32 c_path_filestat_get(i32, i32, i32, i32, i32);
IMP(path_filestat_set_times) i32 c_path_filestat_set_times(i32, i32, i32, i32, i64, i64, i32);
IMP(path_link) i32 c_path_link(i32, i32, i32, i32, i32, i32, i32);
IMP(path_open) i32 c_path_open(i32, i32, i32, i32, i32, i64, i64, i32, i32);
IMP(path_readlink) i32 c_path_readlink(i32, i32, i32, i32, i32, i32);
IMP(path_remove_directory) i32 c_path_remove_directory(i32, i32, i32);
IMP(path_rename) i32 c_path_rename(i32, i32, i32, i32, i32, i32);
IMP(path_symlink) i32 c_path_symlink(i32, i32, i32, i32, i32);
IMP(path_unlink_file) i32 c_path_unlink_file(i32, i32, i32);
IMP(random_get) i32 c_random_get(i32, i32);

static uint64_t s;
static uint64_t next(void) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

/* Addresses: mostly inside a scratch buffer (so the guest's own stack and heap survive what the host
 * writes), sometimes just past the end of memory, sometimes anywhere above it. */
static uint8_t scratch[65536];
static uint32_t memsize;
static i32 ptr(void) {
    uint64_t r = next();
    uint32_t hi = (uint32_t)(r >> 32);
    switch (r % 8) {
    case 0: return (i32)(memsize + hi % (0u - memsize)); /* at or past the end (never wraps to 0) */
    case 1: return (i32)(memsize - hi % 64);             /* straddling the end */
    default: return (i32)((uint32_t)(uintptr_t)scratch + hi % (sizeof scratch - 512));
    }
}
static i32 len(void) {
    uint64_t r = next();
    return (r % 16) == 0 ? (i32)(uint32_t)(r >> 32) : (i32)((r >> 32) % 300);
}
/* Paths: short strings of path characters in a buffer we own, or random memory. */
static char pathbuf[64];
static i32 path(i32 *plen) {
    static const char alphabet[] = "ab./.";
    if (next() % 4 == 0) {
        *plen = len();
        return ptr();
    }
    int n = 1 + (int)(next() % 12);
    for (int i = 0; i < n; i++)
        pathbuf[i] = alphabet[next() % (sizeof alphabet - 1)];
    *plen = n;
    return (i32)(uintptr_t)pathbuf;
}
/* -1, stdin, the preopen (3) and files the chaos opened; never stdout/stderr, which it would flood. */
static i32 fd(void) {
    static const i32 fds[] = {-1, 0, 3, 3, 4, 5, 6, 7, 8, 9};
    return fds[next() % 10];
}
static i64 big(void) { return (i64)next() >> (next() % 64); }

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    s = argc > 2 ? strtoull(argv[2], NULL, 10) | 1 : 88172645463325252ull;
    memsize = (uint32_t)__builtin_wasm_memory_size(0) * 65536u; /* it never grows: nothing here allocates */
    long nonzero = 0;
    for (long i = 0; i < iters; i++) {
        i32 l1, l2, r = 0;
        i32 p1 = path(&l1), p2;
        switch (next() % 36) {
        case 0: r = c_args_get(ptr(), ptr()); break;
        case 1: r = c_args_sizes_get(ptr(), ptr()); break;
        case 2: r = c_environ_get(ptr(), ptr()); break;
        case 3: r = c_environ_sizes_get(ptr(), ptr()); break;
        case 4: r = c_clock_res_get((i32)(next() % 6), ptr()); break;
        case 5: r = c_clock_time_get((i32)(next() % 6), big(), ptr()); break;
        case 6: r = c_fd_advise(fd(), big(), big(), (i32)(next() % 8)); break;
        case 7: r = c_fd_allocate(fd(), big() % 65536, big() % 65536); break;
        case 8: r = c_fd_datasync(fd()); break;
        case 9: r = c_fd_fdstat_get(fd(), ptr()); break;
        case 10: r = c_fd_fdstat_set_flags(fd(), (i32)(next() % 32)); break;
        case 11: r = c_fd_filestat_get(fd(), ptr()); break;
        case 12: r = c_fd_filestat_set_size(fd(), big() % 100000); break;
        case 13: r = c_fd_filestat_set_times(fd(), big(), big(), (i32)(next() % 32)); break;
        case 14: r = c_fd_pread(fd(), ptr(), len(), big(), ptr()); break;
        case 15: r = c_fd_prestat_get(fd(), ptr()); break;
        case 16: r = c_fd_prestat_dir_name(fd(), ptr(), len()); break;
        case 17: r = c_fd_pwrite(fd(), ptr(), len() % 8, big() % 100000, ptr()); break;
        case 18: r = c_fd_read(fd(), ptr(), len(), ptr()); break;
        case 19: r = c_fd_readdir(fd(), ptr(), len(), big() % 8, ptr()); break;
        case 20: r = c_fd_seek(fd(), big(), (i32)(next() % 4), ptr()); break;
        case 21: r = c_fd_sync(fd()); break;
        case 22: r = c_fd_tell(fd(), ptr()); break;
        case 23: r = c_fd_write(fd(), ptr(), len() % 8, ptr()); break;
        case 24: r = c_path_create_directory(fd(), p1, l1); break;
        case 25: r = c_path_filestat_get(fd(), (i32)(next() % 2), p1, l1, ptr()); break;
        case 26: r = c_path_filestat_set_times(fd(), (i32)(next() % 2), p1, l1, big(), big(), (i32)(next() % 16)); break;
        case 27: p2 = path(&l2); r = c_path_link(fd(), (i32)(next() % 2), (i32)(uintptr_t)"a", 1, fd(), p2, l2); break;
        case 28: r = c_path_open(fd(), (i32)(next() % 2), p1, l1, (i32)(next() % 16), (i64)next(), (i64)next(),
                                 (i32)(next() % 32) & ~0x12, ptr()); break; /* no DSYNC/SYNC: keeps it fast */
        case 29: r = c_path_readlink(fd(), p1, l1, ptr(), len(), ptr()); break;
        case 30: r = c_path_remove_directory(fd(), p1, l1); break;
        case 31: p2 = path(&l2); r = c_path_rename(fd(), p1, l1, fd(), p2, l2); break;
        case 32: r = c_path_symlink((i32)(uintptr_t)"b/..", 4, fd(), p1, l1); break;
        case 33: r = c_path_unlink_file(fd(), p1, l1); break;
        case 34: r = c_random_get(ptr(), len()); break;
        case 35: { i32 f = fd(); r = f >= 4 ? c_fd_close(f) : 0; } break;
        }
        if (r < 0 || r > 76) {
            fprintf(stderr, "call %ld: errno %d is not a preview1 errno\n", i, r);
            return 1;
        }
        nonzero += r != 0;
    }
    fprintf(stderr, "chaos: %ld calls, %ld errors, no crash\n", iters, nonzero);
    return 0;
}
