/*
 * swasi.h: WASI preview1 (wasi_snapshot_preview1) internals, shared by
 *   swasi.c       lifecycle, fd table, args/environ, clocks, random, poll, proc, stream I/O, imports
 *   swasi_fs.c    files, directories and paths (fd_filestat_*, fd_readdir, path_*)
 *   swasi_path.c  sandboxed path resolution beneath a directory fd
 *   swasi_state.c the guest's WASI state as bytes and back (shoal.h section 11: actor snapshots)
 *
 * WASI is a client of the public host-function API (shoal.h section 3): every guest pointer goes through
 * shoal_call_mem / shoal_call_mem_array, and guest structs are read and written byte by byte in little-endian
 * order at the offsets of the preview1 witx (see the SW_* layout constants below).
 */
#ifndef SWASI_H
#define SWASI_H

#include <dirent.h>
#include <stdint.h>
#include <string.h>

#include "shoal.h"

/* errno values of preview1 (a subset; the numbering is the witx's). */
enum {
    SW_ESUCCESS = 0,
    SW_E2BIG = 1,
    SW_EACCES = 2,
    SW_EAGAIN = 6,
    SW_EBADF = 8,
    SW_EBUSY = 10,
    SW_EEXIST = 20,
    SW_EFAULT = 21,
    SW_EFBIG = 22,
    SW_EINTR = 27,
    SW_EINVAL = 28,
    SW_EIO = 29,
    SW_EISDIR = 31,
    SW_ELOOP = 32,
    SW_EMFILE = 33,
    SW_EMLINK = 34,
    SW_ENAMETOOLONG = 37,
    SW_ENFILE = 41,
    SW_ENODEV = 43,
    SW_ENOENT = 44,
    SW_ENOMEM = 48,
    SW_ENOSPC = 51,
    SW_ENOSYS = 52,
    SW_ENOTDIR = 54,
    SW_ENOTEMPTY = 55,
    SW_ENOTSUP = 58,
    SW_ENOTTY = 59,
    SW_ENXIO = 60,
    SW_EOVERFLOW = 61,
    SW_EPERM = 63,
    SW_EPIPE = 64,
    SW_ERANGE = 68,
    SW_EROFS = 69,
    SW_ESPIPE = 70,
    SW_ETXTBSY = 74,
    SW_EXDEV = 75,
    SW_ENOTCAPABLE = 76,
};

/* filetype */
enum {
    SW_FT_UNKNOWN = 0,
    SW_FT_BLOCK_DEVICE = 1,
    SW_FT_CHARACTER_DEVICE = 2,
    SW_FT_DIRECTORY = 3,
    SW_FT_REGULAR_FILE = 4,
    SW_FT_SOCKET_DGRAM = 5,
    SW_FT_SOCKET_STREAM = 6,
    SW_FT_SYMBOLIC_LINK = 7,
};

/* rights */
#define SW_R_FD_DATASYNC (1ull << 0)
#define SW_R_FD_READ (1ull << 1)
#define SW_R_FD_SEEK (1ull << 2)
#define SW_R_FD_FDSTAT_SET_FLAGS (1ull << 3)
#define SW_R_FD_SYNC (1ull << 4)
#define SW_R_FD_TELL (1ull << 5)
#define SW_R_FD_WRITE (1ull << 6)
#define SW_R_FD_ADVISE (1ull << 7)
#define SW_R_FD_ALLOCATE (1ull << 8)
#define SW_R_PATH_CREATE_DIRECTORY (1ull << 9)
#define SW_R_PATH_CREATE_FILE (1ull << 10)
#define SW_R_PATH_LINK_SOURCE (1ull << 11)
#define SW_R_PATH_LINK_TARGET (1ull << 12)
#define SW_R_PATH_OPEN (1ull << 13)
#define SW_R_FD_READDIR (1ull << 14)
#define SW_R_PATH_READLINK (1ull << 15)
#define SW_R_PATH_RENAME_SOURCE (1ull << 16)
#define SW_R_PATH_RENAME_TARGET (1ull << 17)
#define SW_R_PATH_FILESTAT_GET (1ull << 18)
#define SW_R_PATH_FILESTAT_SET_SIZE (1ull << 19)
#define SW_R_PATH_FILESTAT_SET_TIMES (1ull << 20)
#define SW_R_FD_FILESTAT_GET (1ull << 21)
#define SW_R_FD_FILESTAT_SET_SIZE (1ull << 22)
#define SW_R_FD_FILESTAT_SET_TIMES (1ull << 23)
#define SW_R_PATH_SYMLINK (1ull << 24)
#define SW_R_PATH_REMOVE_DIRECTORY (1ull << 25)
#define SW_R_PATH_UNLINK_FILE (1ull << 26)
#define SW_R_POLL_FD_READWRITE (1ull << 27)
#define SW_R_SOCK_SHUTDOWN (1ull << 28)
#define SW_R_SOCK_ACCEPT (1ull << 29)
#define SW_R_ALL ((1ull << 30) - 1)

/* Rights that make sense on a regular file / a directory (path_open drops the others). */
#define SW_R_FILE                                                                                           \
    (SW_R_FD_DATASYNC | SW_R_FD_READ | SW_R_FD_SEEK | SW_R_FD_FDSTAT_SET_FLAGS | SW_R_FD_SYNC | SW_R_FD_TELL |  \
     SW_R_FD_WRITE | SW_R_FD_ADVISE | SW_R_FD_ALLOCATE | SW_R_FD_FILESTAT_GET | SW_R_FD_FILESTAT_SET_SIZE |     \
     SW_R_FD_FILESTAT_SET_TIMES | SW_R_POLL_FD_READWRITE)
#define SW_R_DIR                                                                                            \
    (SW_R_FD_FDSTAT_SET_FLAGS | SW_R_FD_SYNC | SW_R_FD_ADVISE | SW_R_PATH_CREATE_DIRECTORY |                   \
     SW_R_PATH_CREATE_FILE | SW_R_PATH_LINK_SOURCE | SW_R_PATH_LINK_TARGET | SW_R_PATH_OPEN | SW_R_FD_READDIR | \
     SW_R_PATH_READLINK | SW_R_PATH_RENAME_SOURCE | SW_R_PATH_RENAME_TARGET | SW_R_PATH_FILESTAT_GET |          \
     SW_R_PATH_FILESTAT_SET_SIZE | SW_R_PATH_FILESTAT_SET_TIMES | SW_R_FD_FILESTAT_GET |                        \
     SW_R_FD_FILESTAT_SET_TIMES | SW_R_PATH_SYMLINK | SW_R_PATH_REMOVE_DIRECTORY | SW_R_PATH_UNLINK_FILE)

/* fdflags, oflags, lookupflags, fstflags */
#define SW_FDFLAG_APPEND 0x1u
#define SW_FDFLAG_DSYNC 0x2u
#define SW_FDFLAG_NONBLOCK 0x4u
#define SW_FDFLAG_RSYNC 0x8u
#define SW_FDFLAG_SYNC 0x10u
#define SW_O_CREAT 0x1u
#define SW_O_DIRECTORY 0x2u
#define SW_O_EXCL 0x4u
#define SW_O_TRUNC 0x8u
#define SW_LOOKUP_SYMLINK_FOLLOW 0x1u
#define SW_FST_ATIM 0x1u
#define SW_FST_ATIM_NOW 0x2u
#define SW_FST_MTIM 0x4u
#define SW_FST_MTIM_NOW 0x8u

/* Struct sizes of the witx (wasm32). Field offsets are written out where each struct is encoded. */
#define SW_IOVEC_SIZE 8u
#define SW_DIRENT_SIZE 24u
#define SW_FDSTAT_SIZE 24u
#define SW_FILESTAT_SIZE 64u
#define SW_SUBSCRIPTION_SIZE 48u
#define SW_EVENT_SIZE 32u
#define SW_PRESTAT_SIZE 8u

/* One guest fd. A slot with host < 0 is free. Invariant: the preopens are fds 3 .. 3+npreopens-1 at
 * creation (wasi-libc scans upward from 3 until EBADF), and every open slot owns its host fd.
 * What a state save needs to reopen the fd elsewhere is kept beside it: the preopen it descends from
 * (origin) and its path beneath that preopen, or which of the embedder's stdio fds it was bound to. */
typedef struct SWasiFd {
    int host;
    uint8_t type;           /* SW_FT_* */
    uint16_t flags;         /* SW_FDFLAG_* as last set */
    uint64_t rights_base;   /* what this fd may do */
    uint64_t rights_inh;    /* what fds opened through it may get */
    char *preopen;          /* guest name of a preopened directory, else NULL */
    DIR *dir;               /* fd_readdir stream (its own host fd), opened on first use */
    uint64_t dir_pos;       /* entries read from `dir` so far (the next cookie) */
    int8_t stdio;           /* 0..2: bound from the embedder's stdin/stdout/stderr; else -1 */
    uint8_t follow;         /* path_open followed a final symlink (lookupflags) */
    int32_t origin;         /* index in shoal_wasi.origins of the preopen it descends from; -1 none */
    char *path;             /* normalized path beneath that preopen ("." for the preopen itself); NULL when
                             * unknown (then the fd cannot be carried by a state save) */
    uint64_t rights_full;   /* stdio: the rights it was bound with, so a save knows which the guest dropped */
} SWasiFd;

/* A preopened directory as configured: kept even after the guest closes its fd, because files opened
 * beneath it still name it. host is absolute where realpath(3) could make it so. */
typedef struct SWasiOrigin {
    char *guest, *host;
} SWasiOrigin;

/* Guest clocks are the host's plus an offset (mod 2^64), so that a resumed guest's monotonic and CPU-time
 * clocks run on from where they were. Realtime never gets one. The thread CPU-time clock is rebased on
 * its first read after a load, on whatever thread the guest then runs. */
struct shoal_wasi {
    uint32_t argc, envc;
    char **argv, **envp;     /* owned copies, NUL-terminated strings */
    uint32_t argv_bytes, envp_bytes; /* total size with NULs */
    SWasiFd *fds;
    uint32_t nfds;           /* slots in use or free, fds[0 .. nfds) */
    uint32_t capfds;
    SWasiOrigin *origins;
    uint32_t norigins;
    uint64_t clock_off[4];   /* indexed by WASI clock id; [0] (realtime) stays 0 */
    uint64_t thread_base;    /* the thread clock's saved value while thread_pending */
    int thread_pending;
};

/* swasi.c */
uint16_t swasi_errno(int host_errno); /* host errno -> preview1 errno */
uint8_t swasi_filetype(unsigned st_mode);
SWasiFd *swasi_fd(shoal_wasi *w, int32_t fd, uint64_t need_rights, uint16_t *errno_out);
uint16_t swasi_fd_alloc(shoal_wasi *w, int host, uint8_t type, uint64_t base, uint64_t inh, uint32_t *out);
void swasi_fd_release(SWasiFd *f);
uint16_t swasi_host_fdflags(int host); /* SW_FDFLAG_APPEND / _NONBLOCK as the host fd has them */
/* The guest's view of a WASI clock (host clock + offset). Returns a WASI errno (EINVAL: unknown id). */
uint16_t swasi_clock_now(shoal_wasi *w, uint32_t id, uint64_t *out);
/* Binds the embedder's stdio fd (-1 or a closed fd: a slot that can do nothing) as an owned duplicate:
 * *host, its *type and the *rights it gets. */
shoal_status swasi_stdio_open(int fd, int *host, uint8_t *type, uint64_t *rights, shoal_error *err);
/* Appends a preopen origin (copies of both names; host made absolute where possible). */
shoal_status swasi_origin_add(shoal_wasi *w, const char *guest, const char *host, shoal_error *err);

/* swasi_state.c: parses and validates saved state bytes without touching the host (what a load does
 * before it opens anything); SHOAL_ERR_FORMAT with a message when they are corrupt. For fuzzing. */
shoal_status swasi_state_check(const uint8_t *p, size_t len, shoal_error *err);

/* swasi_path.c: resolution confined to the directory `root`. Both return a WASI errno.
 * swasi_path_open opens `path` with open(2) flags (O_NOFOLLOW is added when !follow), *out owned.
 * swasi_path_parent opens the directory that holds the last component (*dir, owned, O_PATH) and copies
 * that component into last (NUL-terminated, never "", "." or ".."; a trailing '/' sets *trailing_slash). */
uint16_t swasi_path_open(int root, const char *path, int flags, unsigned mode, int follow, int *out);
uint16_t swasi_path_parent(int root, const char *path, int *dir, char *last, size_t last_cap, int *trailing_slash);
/* The normalized form of `rel` (a guest path relative to a directory whose normalized path beneath its
 * preopen is `base`): "." and empty components dropped, ".." folded lexically. NULL when it cannot be
 * known lexically (a ".." above `rel`'s start: only a symlink could have made that resolve) or out of
 * memory. *dotdot is set when `rel` used "..", which a symlink could make resolve elsewhere: the caller
 * verifies such paths. */
char *swasi_path_join(const char *base, const char *rel, int *dotdot);
/* Probes openat2 once; SHOAL_WASI_NO_OPENAT2=1 in the environment forces the walk (for tests). */
void swasi_path_init(void);
/* Test hook: 0 forces the component-by-component walk, 1 restores openat2 if the probe found it.
 * Returns the previous mode. Not thread-safe: for tests only. */
int swasi_path_set_openat2(int on);

/* Reads a guest path (ptr, len) into a NUL-terminated host buffer. */
uint16_t swasi_guest_path(shoal_call *call, uint32_t ptr, uint32_t len, char *buf, size_t cap);

/* Little-endian stores into guest memory (the pointer came from shoal_call_mem; no alignment assumed). */
static inline void sw_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void sw_put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void sw_put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t sw_get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t sw_get32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t sw_get64(const uint8_t *p) { return (uint64_t)sw_get32(p) | ((uint64_t)sw_get32(p + 4) << 32); }

/* Host functions of swasi_fs.c, named after the preview1 function (signature strings in swasi.c's table). */
#define SW_HOSTFN(name) shoal_status name(shoal_call *call, const shoal_val *a, shoal_val *r, void *user)
SW_HOSTFN(swasi_fs_fd_filestat_get);
SW_HOSTFN(swasi_fs_fd_filestat_set_size);
SW_HOSTFN(swasi_fs_fd_filestat_set_times);
SW_HOSTFN(swasi_fs_fd_readdir);
SW_HOSTFN(swasi_fs_path_create_directory);
SW_HOSTFN(swasi_fs_path_filestat_get);
SW_HOSTFN(swasi_fs_path_filestat_set_times);
SW_HOSTFN(swasi_fs_path_link);
SW_HOSTFN(swasi_fs_path_open);
SW_HOSTFN(swasi_fs_path_readlink);
SW_HOSTFN(swasi_fs_path_remove_directory);
SW_HOSTFN(swasi_fs_path_rename);
SW_HOSTFN(swasi_fs_path_symlink);
SW_HOSTFN(swasi_fs_path_unlink_file);

#define SW_RET(e) (r[0].i32 = (int32_t)(e), SHOAL_OK)
#define SW_PATH_MAX 4096

#endif
