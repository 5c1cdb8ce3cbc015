/* wasi_state.c: a reactor whose exports are thin wrappers over WASI calls, driven by test_wasi_state.c.
 * Everything crosses the boundary as numbers (fd numbers, counts, positions, hashes): the test saves the
 * WASI state between calls and continues in a new WASI object and a new instance, which shares none of
 * this guest's memory. Errors come back as -errno. */
#include <stdint.h>
#include <string.h>
#include <wasi/api.h>

#define EXPORT(name) __attribute__((export_name(#name)))

/* Paths the test opens by index (a path in guest memory would need the engine's snapshot). */
static const char *const paths[] = {
    "in.txt",               /* 0 */
    "log.txt",              /* 1 */
    "sub",                  /* 2 */
    "deep.txt",             /* 3: beneath "sub", through its fd */
    "out.bin",              /* 4 */
    "sub/../in.txt",        /* 5: ".." folded */
    "./sub//deep.txt",      /* 6 */
    "gone.txt",             /* 7 */
    "fifo",                 /* 8 */
    "lnk/../in.txt",        /* 9: lnk -> sub/inner: resolves to sub/in.txt, not in.txt */
    "renamed.txt",          /* 10 */
    "sub2",                 /* 11 */
};

static uint8_t buf[256];

EXPORT(g_open) int32_t g_open(int32_t dirfd, int32_t which, int32_t oflags, int32_t fdflags, int32_t write) {
    if (which < 0 || which >= (int32_t)(sizeof paths / sizeof paths[0]))
        return -28;
    __wasi_rights_t base = __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_TELL |
                           __WASI_RIGHTS_FD_FILESTAT_GET | __WASI_RIGHTS_FD_READDIR | __WASI_RIGHTS_PATH_OPEN |
                           __WASI_RIGHTS_FD_FDSTAT_SET_FLAGS;
    if (write)
        base |= __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_FILESTAT_SET_SIZE;
    __wasi_fd_t fd;
    __wasi_errno_t e = __wasi_path_open((__wasi_fd_t)dirfd, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, paths[which],
                                        (__wasi_oflags_t)oflags, base, base, (__wasi_fdflags_t)fdflags, &fd);
    return e ? -(int32_t)e : (int32_t)fd;
}

/* Reads up to n bytes into buf; returns the count. */
EXPORT(g_read) int32_t g_read(int32_t fd, int32_t n) {
    if (n < 0 || n > (int32_t)sizeof buf)
        return -28;
    __wasi_iovec_t iov = {buf, (size_t)n};
    __wasi_size_t got;
    __wasi_errno_t e = __wasi_fd_read((__wasi_fd_t)fd, &iov, 1, &got);
    return e ? -(int32_t)e : (int32_t)got;
}

EXPORT(g_byte) int32_t g_byte(int32_t i) { return (i >= 0 && i < (int32_t)sizeof buf) ? buf[i] : -1; }

/* Writes n copies of byte c. */
EXPORT(g_write) int32_t g_write(int32_t fd, int32_t c, int32_t n) {
    if (n < 0 || n > (int32_t)sizeof buf)
        return -28;
    memset(buf, c, (size_t)n);
    __wasi_ciovec_t iov = {buf, (size_t)n};
    __wasi_size_t put;
    __wasi_errno_t e = __wasi_fd_write((__wasi_fd_t)fd, &iov, 1, &put);
    return e ? -(int32_t)e : (int32_t)put;
}

EXPORT(g_seek) int64_t g_seek(int32_t fd, int64_t off, int32_t whence) {
    __wasi_filesize_t pos;
    __wasi_errno_t e = __wasi_fd_seek((__wasi_fd_t)fd, off, (__wasi_whence_t)whence, &pos);
    return e ? -(int64_t)e : (int64_t)pos;
}

EXPORT(g_renumber) int32_t g_renumber(int32_t from, int32_t to) {
    return -(int32_t)__wasi_fd_renumber((__wasi_fd_t)from, (__wasi_fd_t)to);
}

EXPORT(g_rename) int32_t g_rename(int32_t dirfd, int32_t from, int32_t to) {
    return -(int32_t)__wasi_path_rename((__wasi_fd_t)dirfd, paths[from], (__wasi_fd_t)dirfd, paths[to]);
}

EXPORT(g_close) int32_t g_close(int32_t fd) { return -(int32_t)__wasi_fd_close((__wasi_fd_t)fd); }

EXPORT(g_clock) int64_t g_clock(int32_t id) {
    __wasi_timestamp_t t;
    __wasi_errno_t e = __wasi_clock_time_get((__wasi_clockid_t)id, 1, &t);
    return e ? -(int64_t)e : (int64_t)t;
}

/* type | flags << 8, and the rights separately. */
EXPORT(g_fdstat) int64_t g_fdstat(int32_t fd) {
    __wasi_fdstat_t st;
    __wasi_errno_t e = __wasi_fd_fdstat_get((__wasi_fd_t)fd, &st);
    return e ? -(int64_t)e : (int64_t)(st.fs_filetype | ((uint32_t)st.fs_flags << 8));
}
EXPORT(g_rights) int64_t g_rights(int32_t fd, int32_t inheriting) {
    __wasi_fdstat_t st;
    __wasi_errno_t e = __wasi_fd_fdstat_get((__wasi_fd_t)fd, &st);
    return e ? -(int64_t)e : (int64_t)(inheriting ? st.fs_rights_inheriting : st.fs_rights_base);
}
EXPORT(g_set_rights) int32_t g_set_rights(int32_t fd, int64_t base, int64_t inh) {
    return -(int32_t)__wasi_fd_fdstat_set_rights((__wasi_fd_t)fd, (__wasi_rights_t)base, (__wasi_rights_t)inh);
}
EXPORT(g_set_flags) int32_t g_set_flags(int32_t fd, int32_t flags) {
    return -(int32_t)__wasi_fd_fdstat_set_flags((__wasi_fd_t)fd, (__wasi_fdflags_t)flags);
}

/* Length of a preopen's name, or -errno (EBADF for a non-preopen). */
EXPORT(g_prestat) int32_t g_prestat(int32_t fd) {
    __wasi_prestat_t p;
    __wasi_errno_t e = __wasi_fd_prestat_get((__wasi_fd_t)fd, &p);
    return e ? -(int32_t)e : (int32_t)p.u.dir.pr_name_len;
}

/* Number of directory entries from cookie on (reads them in one buffer). */
EXPORT(g_readdir) int32_t g_readdir(int32_t fd, int64_t cookie) {
    static uint8_t d[4096];
    __wasi_size_t used;
    __wasi_errno_t e = __wasi_fd_readdir((__wasi_fd_t)fd, d, sizeof d, (__wasi_dircookie_t)cookie, &used);
    if (e)
        return -(int32_t)e;
    int32_t n = 0;
    for (__wasi_size_t off = 0; off + sizeof(__wasi_dirent_t) <= used; n++) {
        __wasi_dirent_t de;
        memcpy(&de, d + off, sizeof de);
        off += sizeof de + de.d_namlen;
    }
    return n;
}

/* FNV-1a over every argument and environment string (with their NULs), the counts first. */
static uint32_t fnv(uint32_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)p)[i]) * 16777619u;
    return h;
}

EXPORT(g_args_hash) int64_t g_args_hash(void) {
    static char *ptrs[64];
    static char strs[4096];
    __wasi_size_t argc, argv_bytes, envc, env_bytes;
    if (__wasi_args_sizes_get(&argc, &argv_bytes) || __wasi_environ_sizes_get(&envc, &env_bytes) || argc > 64 ||
        envc > 64 || argv_bytes > sizeof strs || env_bytes > sizeof strs)
        return -1;
    uint32_t h = fnv(2166136261u, &argc, 4);
    h = fnv(h, &envc, 4);
    if (__wasi_args_get((uint8_t **)ptrs, (uint8_t *)strs))
        return -1;
    h = fnv(h, strs, argv_bytes);
    if (__wasi_environ_get((uint8_t **)ptrs, (uint8_t *)strs))
        return -1;
    return fnv(h, strs, env_bytes);
}
