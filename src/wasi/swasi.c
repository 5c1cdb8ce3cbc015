/*
 * swasi.c: WASI preview1 for Shoal: the shoal_wasi object and its fd table, args and environment,
 * clocks, randomness, poll_oneoff, proc_exit, stream I/O on fds, the import table and shoal_wasi_run.
 * Files and paths live in swasi_fs.c, sandboxed resolution in swasi_path.c.
 *
 * Every host function returns SHOAL_OK with the WASI errno as its i32 result; only proc_exit stops the
 * guest. Guest pointers are checked with shoal_call_mem*(); a bad one yields EFAULT and no host access.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "swasi.h"

#define SW_IOV_MAX 1024 /* Linux's IOV_MAX: longer iovec lists are served partially (a short read/write) */

/* --- host errors and file types ------------------------------------------------------------------- */

uint16_t swasi_errno(int e) {
    switch (e) {
    case 0: return SW_ESUCCESS;
    case E2BIG: return SW_E2BIG;
    case EACCES: return SW_EACCES;
    case EAGAIN: return SW_EAGAIN;
    case EBADF: return SW_EBADF;
    case EBUSY: return SW_EBUSY;
    case EEXIST: return SW_EEXIST;
    case EFAULT: return SW_EFAULT;
    case EFBIG: return SW_EFBIG;
    case EINTR: return SW_EINTR;
    case EINVAL: return SW_EINVAL;
    case EIO: return SW_EIO;
    case EISDIR: return SW_EISDIR;
    case ELOOP: return SW_ELOOP;
    case EMFILE: return SW_EMFILE;
    case EMLINK: return SW_EMLINK;
    case ENAMETOOLONG: return SW_ENAMETOOLONG;
    case ENFILE: return SW_ENFILE;
    case ENODEV: return SW_ENODEV;
    case ENOENT: return SW_ENOENT;
    case ENOMEM: return SW_ENOMEM;
    case ENOSPC: return SW_ENOSPC;
    case ENOSYS: return SW_ENOSYS;
    case ENOTDIR: return SW_ENOTDIR;
    case ENOTEMPTY: return SW_ENOTEMPTY;
    case EOPNOTSUPP: return SW_ENOTSUP;
    case ENOTTY: return SW_ENOTTY;
    case ENXIO: return SW_ENXIO;
    case EOVERFLOW: return SW_EOVERFLOW;
    case EPERM: return SW_EPERM;
    case EPIPE: return SW_EPIPE;
    case ERANGE: return SW_ERANGE;
    case EROFS: return SW_EROFS;
    case ESPIPE: return SW_ESPIPE;
    case ETXTBSY: return SW_ETXTBSY;
    case EXDEV: return SW_EXDEV;
    case EDQUOT: return 19; /* dquot */
    case EILSEQ: return 25; /* ilseq */
    default: return SW_EIO;
    }
}

uint8_t swasi_filetype(unsigned mode) {
    switch (mode & S_IFMT) {
    case S_IFREG: return SW_FT_REGULAR_FILE;
    case S_IFDIR: return SW_FT_DIRECTORY;
    case S_IFCHR: return SW_FT_CHARACTER_DEVICE;
    case S_IFBLK: return SW_FT_BLOCK_DEVICE;
    case S_IFLNK: return SW_FT_SYMBOLIC_LINK;
    case S_IFSOCK: return SW_FT_SOCKET_STREAM;
    default: return SW_FT_UNKNOWN; /* FIFOs have no preview1 type */
    }
}

/* --- the fd table --------------------------------------------------------------------------------- */

SWasiFd *swasi_fd(shoal_wasi *w, int32_t fd, uint64_t need, uint16_t *e) {
    if (fd < 0 || (uint32_t)fd >= w->nfds || w->fds[fd].host < 0) {
        *e = SW_EBADF;
        return NULL;
    }
    SWasiFd *f = &w->fds[fd];
    if ((f->rights_base & need) != need) {
        *e = SW_ENOTCAPABLE;
        return NULL;
    }
    *e = SW_ESUCCESS;
    return f;
}

uint16_t swasi_host_fdflags(int host) {
    int fl = fcntl(host, F_GETFL);
    if (fl < 0)
        return 0;
    return (uint16_t)(((fl & O_APPEND) ? SW_FDFLAG_APPEND : 0) | ((fl & O_NONBLOCK) ? SW_FDFLAG_NONBLOCK : 0));
}

/* Takes ownership of host (closed on failure). The lowest free slot is reused, as POSIX does. */
uint16_t swasi_fd_alloc(shoal_wasi *w, int host, uint8_t type, uint64_t base, uint64_t inh, uint32_t *out) {
    uint32_t i = 0;
    while (i < w->nfds && w->fds[i].host >= 0)
        i++;
    if (i == w->nfds) {
        if (w->nfds == w->capfds) {
            uint32_t cap = w->capfds ? w->capfds * 2 : 16;
            SWasiFd *fds = cap > 65536 ? NULL : realloc(w->fds, cap * sizeof *fds);
            if (!fds) {
                close(host);
                return cap > 65536 ? SW_EMFILE : SW_ENOMEM;
            }
            w->fds = fds;
            w->capfds = cap;
        }
        w->nfds++;
    }
    w->fds[i] = (SWasiFd){.host = host, .type = type, .flags = swasi_host_fdflags(host), .rights_base = base,
                          .rights_inh = inh, .stdio = -1, .origin = -1};
    *out = i;
    return SW_ESUCCESS;
}

void swasi_fd_release(SWasiFd *f) {
    if (f->dir)
        closedir(f->dir);
    if (f->host >= 0)
        close(f->host);
    free(f->preopen);
    free(f->path);
    *f = (SWasiFd){.host = -1};
}

/* Rights of a stdio fd, by what the host fd is: wasi-libc's isatty() wants a character device without
 * seek/tell rights, which also keeps stdout line-buffered on a terminal. */
static uint64_t sw_stdio_rights(uint8_t type) {
    uint64_t r = SW_R_FILE;
    if (type == SW_FT_CHARACTER_DEVICE)
        r &= ~(SW_R_FD_SEEK | SW_R_FD_TELL);
    return r;
}

/* Copies n strings into *out (NULL-terminated array) and their total size with NULs into *bytes. */
static shoal_status sw_copy_strings(int n, const char *const *src, char ***out, uint32_t *bytes, shoal_error *err) {
    shoal_status st = SHOAL_OK;
    uint64_t total = 0;
    char **v = calloc((size_t)n + 1, sizeof *v);
    if (!v)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "wasi: out of memory");
    for (int i = 0; i < n && st == SHOAL_OK; i++) {
        if (!src[i])
            st = shoal_error_set(err, SHOAL_ERR_ARG, "wasi: argument or environment string %d is NULL", i);
        else if (!(v[i] = strdup(src[i])))
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "wasi: out of memory");
        else
            total += strlen(src[i]) + 1;
    }
    if (st == SHOAL_OK && total > UINT32_MAX / 2) /* the guest must be able to hold them */
        st = shoal_error_set(err, SHOAL_ERR_ARG, "wasi: arguments or environment too large");
    if (st != SHOAL_OK) {
        for (int i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return st;
    }
    *out = v;
    *bytes = (uint32_t)total;
    return SHOAL_OK;
}

shoal_status shoal_wasi_new(const shoal_wasi_config *cfg, shoal_wasi **out, shoal_error *err) {
    *out = NULL;
    if (!cfg || cfg->argc < 0 || cfg->envc < 0 || cfg->npreopens < 0 || (cfg->argc && !cfg->argv) ||
        (cfg->envc && !cfg->envp) || (cfg->npreopens && !cfg->preopens))
        return shoal_error_set(err, SHOAL_ERR_ARG, "wasi: bad configuration");
    swasi_path_init();
    shoal_status st = SHOAL_ERR_NOMEM;
    shoal_wasi *w = calloc(1, sizeof *w);
    if (!w)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "wasi: out of memory");
    w->argc = (uint32_t)cfg->argc;
    w->envc = (uint32_t)cfg->envc;
    if ((st = sw_copy_strings(cfg->argc, cfg->argv, &w->argv, &w->argv_bytes, err)) != SHOAL_OK ||
        (st = sw_copy_strings(cfg->envc, cfg->envp, &w->envp, &w->envp_bytes, err)) != SHOAL_OK)
        goto fail;
    const int stdio[3] = {cfg->stdin_fd, cfg->stdout_fd, cfg->stderr_fd};
    for (int i = 0; i < 3; i++) {
        uint32_t slot;
        int host;
        uint8_t type;
        uint64_t rights;
        if ((st = swasi_stdio_open(stdio[i], &host, &type, &rights, err)) != SHOAL_OK)
            goto fail;
        if (swasi_fd_alloc(w, host, type, rights, 0, &slot) != SW_ESUCCESS) {
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "wasi: out of memory");
            goto fail;
        }
        w->fds[slot].stdio = (int8_t)i;
        w->fds[slot].rights_full = rights;
    }
    for (int i = 0; i < cfg->npreopens; i++) {
        const shoal_wasi_preopen *p = &cfg->preopens[i];
        const char *gname = p->guest_path ? p->guest_path : p->host_path;
        uint32_t slot;
        if (!p->host_path || !gname) {
            st = shoal_error_set(err, SHOAL_ERR_ARG, "wasi: preopen %d has no host path", i);
            goto fail;
        }
        int host = open(p->host_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (host < 0) {
            st = shoal_error_set(err, errno == ENOENT ? SHOAL_ERR_NOTFOUND : SHOAL_ERR_IO,
                                 "wasi: cannot open directory '%s': %s", p->host_path, strerror(errno));
            goto fail;
        }
        if (swasi_fd_alloc(w, host, SW_FT_DIRECTORY, SW_R_DIR, SW_R_ALL, &slot) != SW_ESUCCESS ||
            !(w->fds[slot].preopen = strdup(gname)) || !(w->fds[slot].path = strdup("."))) {
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "wasi: out of memory");
            goto fail;
        }
        if ((st = swasi_origin_add(w, gname, p->host_path, err)) != SHOAL_OK)
            goto fail;
        w->fds[slot].origin = (int32_t)(w->norigins - 1);
    }
    *out = w;
    return SHOAL_OK;
fail: /* every path here has set err */
    shoal_wasi_free(w);
    return st;
}

void shoal_wasi_free(shoal_wasi *w) {
    if (!w)
        return;
    for (uint32_t i = 0; i < w->nfds; i++)
        swasi_fd_release(&w->fds[i]);
    free(w->fds);
    for (uint32_t i = 0; w->argv && i < w->argc; i++)
        free(w->argv[i]);
    for (uint32_t i = 0; w->envp && i < w->envc; i++)
        free(w->envp[i]);
    free(w->argv);
    free(w->envp);
    for (uint32_t i = 0; i < w->norigins; i++) {
        free(w->origins[i].guest);
        free(w->origins[i].host);
    }
    free(w->origins);
    free(w);
}

shoal_status swasi_stdio_open(int fd, int *host_out, uint8_t *type_out, uint64_t *rights_out, shoal_error *err) {
    /* Our own duplicate, so a guest's fd_close never closes the embedder's descriptor. A host fd that is
     * not open (a CLI started with stdin closed) is treated like -1: a slot that can do nothing. */
    int closed = fd < 0;
    int host = closed ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (host < 0 && (closed || errno == EBADF)) {
        closed = 1;
        host = open("/dev/null", O_RDWR | O_CLOEXEC);
    }
    struct stat sb;
    if (host < 0 || fstat(host, &sb) < 0) {
        shoal_status st = shoal_error_set(err, SHOAL_ERR_IO, "wasi: stdio fd %d: %s", fd, strerror(errno));
        if (host >= 0)
            close(host);
        return st;
    }
    *host_out = host;
    *type_out = swasi_filetype(sb.st_mode);
    *rights_out = closed ? 0 : sw_stdio_rights(*type_out); /* closed: the slot exists so fds stay numbered */
    return SHOAL_OK;
}

shoal_status swasi_origin_add(shoal_wasi *w, const char *guest, const char *host, shoal_error *err) {
    SWasiOrigin *o = realloc(w->origins, ((size_t)w->norigins + 1) * sizeof *o);
    if (!o)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "wasi: out of memory");
    w->origins = o;
    /* Absolute, so that a state saved here names the directory whatever the loading process's cwd is. */
    char *abs = realpath(host, NULL);
    o[w->norigins].guest = strdup(guest);
    o[w->norigins].host = abs ? abs : strdup(host);
    w->norigins++;
    if (!o[w->norigins - 1].guest || !o[w->norigins - 1].host)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "wasi: out of memory");
    return SHOAL_OK;
}

uint16_t swasi_guest_path(shoal_call *call, uint32_t ptr, uint32_t len, char *buf, size_t cap) {
    const char *src = shoal_call_mem(call, ptr, len);
    if (!src)
        return SW_EFAULT;
    if (len >= cap)
        return SW_ENAMETOOLONG;
    if (memchr(src, '\0', len)) /* a NUL inside would silently truncate the path the guest meant */
        return SW_EINVAL;
    memcpy(buf, src, len);
    buf[len] = '\0';
    return SW_ESUCCESS;
}

/* --- args, environ --------------------------------------------------------------------------------- */

/* Writes n strings as an array of guest pointers at ptrs and their bytes at buf. */
static uint16_t sw_put_strings(shoal_call *call, char **strs, uint32_t n, uint32_t bytes, uint32_t ptrs,
                               uint32_t buf) {
    uint8_t *p = shoal_call_mem_array(call, ptrs, n, 4, 1);
    uint8_t *b = shoal_call_mem(call, buf, bytes);
    if (!p || !b)
        return SW_EFAULT;
    uint32_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = strlen(strs[i]) + 1;
        memcpy(b + off, strs[i], len);
        sw_put32(p + 4 * i, buf + off);
        off += (uint32_t)len;
    }
    return SW_ESUCCESS;
}

static uint16_t sw_put_sizes(shoal_call *call, uint32_t count, uint32_t bytes, uint32_t p_count, uint32_t p_bytes) {
    uint8_t *c = shoal_call_mem(call, p_count, 4);
    uint8_t *b = shoal_call_mem(call, p_bytes, 4);
    if (!c || !b)
        return SW_EFAULT;
    sw_put32(c, count);
    sw_put32(b, bytes);
    return SW_ESUCCESS;
}

static SW_HOSTFN(sw_args_get) {
    shoal_wasi *w = user;
    return SW_RET(sw_put_strings(call, w->argv, w->argc, w->argv_bytes, (uint32_t)a[0].i32, (uint32_t)a[1].i32));
}
static SW_HOSTFN(sw_args_sizes_get) {
    shoal_wasi *w = user;
    return SW_RET(sw_put_sizes(call, w->argc, w->argv_bytes, (uint32_t)a[0].i32, (uint32_t)a[1].i32));
}
static SW_HOSTFN(sw_environ_get) {
    shoal_wasi *w = user;
    return SW_RET(sw_put_strings(call, w->envp, w->envc, w->envp_bytes, (uint32_t)a[0].i32, (uint32_t)a[1].i32));
}
static SW_HOSTFN(sw_environ_sizes_get) {
    shoal_wasi *w = user;
    return SW_RET(sw_put_sizes(call, w->envc, w->envp_bytes, (uint32_t)a[0].i32, (uint32_t)a[1].i32));
}

/* --- clocks, random, sched, proc ------------------------------------------------------------------ */

static int sw_clock(uint32_t id, clockid_t *out) {
    static const clockid_t ids[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID,
                                    CLOCK_THREAD_CPUTIME_ID};
    if (id >= 4)
        return 0;
    *out = ids[id];
    return 1;
}

static uint64_t sw_ns(const struct timespec *ts) { return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec; }

static SW_HOSTFN(sw_clock_res_get) {
    (void)user;
    clockid_t c;
    struct timespec ts;
    if (!sw_clock((uint32_t)a[0].i32, &c))
        return SW_RET(SW_EINVAL);
    uint8_t *out = shoal_call_mem(call, (uint32_t)a[1].i32, 8);
    if (!out)
        return SW_RET(SW_EFAULT);
    if (clock_getres(c, &ts) < 0)
        return SW_RET(swasi_errno(errno));
    sw_put64(out, sw_ns(&ts));
    return SW_RET(SW_ESUCCESS);
}

uint16_t swasi_clock_now(shoal_wasi *w, uint32_t id, uint64_t *out) {
    clockid_t c;
    struct timespec ts;
    if (!sw_clock(id, &c))
        return SW_EINVAL;
    if (clock_gettime(c, &ts) < 0)
        return swasi_errno(errno);
    uint64_t host = sw_ns(&ts);
    if (id == 3 && w->thread_pending) {
        w->clock_off[3] = w->thread_base - host;
        w->thread_pending = 0;
    }
    *out = host + w->clock_off[id];
    return SW_ESUCCESS;
}

static SW_HOSTFN(sw_clock_time_get) {
    uint8_t *out = shoal_call_mem(call, (uint32_t)a[2].i32, 8);
    uint64_t t = 0;
    if ((uint32_t)a[0].i32 < 4 && !out)
        return SW_RET(SW_EFAULT);
    uint16_t e = swasi_clock_now(user, (uint32_t)a[0].i32, &t);
    if (!e)
        sw_put64(out, t);
    return SW_RET(e);
}

static SW_HOSTFN(sw_random_get) {
    (void)user;
    uint32_t len = (uint32_t)a[1].i32;
    uint8_t *buf = shoal_call_mem(call, (uint32_t)a[0].i32, len);
    if (!buf)
        return SW_RET(SW_EFAULT);
    for (uint32_t done = 0; done < len;) {
        ssize_t n = getrandom(buf + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return SW_RET(swasi_errno(errno));
        }
        done += (uint32_t)n;
    }
    return SW_RET(SW_ESUCCESS);
}

static SW_HOSTFN(sw_sched_yield) {
    (void)call, (void)a, (void)user;
    sched_yield();
    return SW_RET(SW_ESUCCESS);
}

static SW_HOSTFN(sw_proc_exit) {
    (void)r, (void)user;
    return shoal_call_exit(call, a[0].i32);
}

/* Functions of preview1 that Shoal does not provide (signals, sockets). */
static SW_HOSTFN(sw_nosys) {
    (void)call, (void)a, (void)user;
    return SW_RET(SW_ENOSYS);
}

/* --- stream I/O ------------------------------------------------------------------------------------ */

/* Checks a guest iovec list and builds the host one (at most SW_IOV_MAX entries: a short transfer). */
static uint16_t sw_iovecs(shoal_call *call, uint32_t iovs, uint32_t n, struct iovec *out, int *nout) {
    const uint8_t *g = shoal_call_mem_array(call, iovs, n, SW_IOVEC_SIZE, 1);
    if (!g)
        return SW_EFAULT;
    if (n > SW_IOV_MAX)
        n = SW_IOV_MAX;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t ptr = sw_get32(g + 8 * i), len = sw_get32(g + 8 * i + 4);
        void *p = shoal_call_mem(call, ptr, len);
        if (!p)
            return SW_EFAULT;
        out[i] = (struct iovec){.iov_base = p, .iov_len = len};
    }
    *nout = (int)n;
    return SW_ESUCCESS;
}

/* fd_read, fd_write, fd_pread, fd_pwrite share this: a[0] fd, a[1] iovs, a[2] iovs_len,
 * (positional: a[3] offset), then the result pointer. */
static shoal_status sw_rw(shoal_call *call, const shoal_val *a, shoal_val *r, shoal_wasi *w, int write, int positional) {
    uint16_t e;
    SWasiFd *f = swasi_fd(w, a[0].i32, (write ? SW_R_FD_WRITE : SW_R_FD_READ) | (positional ? SW_R_FD_SEEK : 0), &e);
    if (!f)
        return SW_RET(e);
    uint32_t pres = (uint32_t)(positional ? a[4].i32 : a[3].i32);
    uint32_t count = (uint32_t)a[2].i32;
    uint8_t *res = shoal_call_mem(call, pres, 4);
    if (!res)
        return SW_RET(SW_EFAULT);
    if (positional && a[3].i64 < 0)
        return SW_RET(SW_EINVAL);
    struct iovec small[8]; /* most calls pass one or two buffers */
    struct iovec *iov = count <= 8 ? small : malloc((count < SW_IOV_MAX ? count : SW_IOV_MAX) * sizeof *iov);
    if (!iov)
        return SW_RET(SW_ENOMEM);
    int n = 0;
    if ((e = sw_iovecs(call, (uint32_t)a[1].i32, count, iov, &n)) != SW_ESUCCESS)
        goto done;
    /* EINTR is handed to the guest, not retried: it is how `shoal run --timeout` gets a guest blocked on a
     * full pipe or an idle terminal back into Wasm, where the interrupt stops it. */
    ssize_t got;
    if (positional)
        got = write ? pwritev(f->host, iov, n, (off_t)a[3].i64) : preadv(f->host, iov, n, (off_t)a[3].i64);
    else
        got = write ? writev(f->host, iov, n) : readv(f->host, iov, n);
    if (got < 0) {
        e = swasi_errno(errno);
        goto done;
    }
    sw_put32(res, (uint32_t)got);
done:
    if (iov != small)
        free(iov);
    return SW_RET(e);
}

static SW_HOSTFN(sw_fd_read) { return sw_rw(call, a, r, user, 0, 0); }
static SW_HOSTFN(sw_fd_write) { return sw_rw(call, a, r, user, 1, 0); }
static SW_HOSTFN(sw_fd_pread) { return sw_rw(call, a, r, user, 0, 1); }
static SW_HOSTFN(sw_fd_pwrite) { return sw_rw(call, a, r, user, 1, 1); }

static SW_HOSTFN(sw_fd_seek) {
    uint16_t e;
    uint8_t whence = (uint8_t)a[2].i32;
    /* wasi-libc asks for offset 0 from CUR to implement tell; that needs only the tell right. */
    uint64_t need = (a[1].i64 == 0 && whence == 1) ? SW_R_FD_TELL : SW_R_FD_SEEK;
    SWasiFd *f = swasi_fd(user, a[0].i32, need, &e);
    if (!f)
        return SW_RET(e);
    if ((uint32_t)a[2].i32 > 2)
        return SW_RET(SW_EINVAL);
    uint8_t *out = shoal_call_mem(call, (uint32_t)a[3].i32, 8);
    if (!out)
        return SW_RET(SW_EFAULT);
    static const int hw[3] = {SEEK_SET, SEEK_CUR, SEEK_END};
    off_t pos = lseek(f->host, (off_t)a[1].i64, hw[whence]);
    if (pos < 0)
        return SW_RET(swasi_errno(errno));
    sw_put64(out, (uint64_t)pos);
    return SW_RET(SW_ESUCCESS);
}

static SW_HOSTFN(sw_fd_tell) {
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, SW_R_FD_TELL, &e);
    if (!f)
        return SW_RET(e);
    uint8_t *out = shoal_call_mem(call, (uint32_t)a[1].i32, 8);
    if (!out)
        return SW_RET(SW_EFAULT);
    off_t pos = lseek(f->host, 0, SEEK_CUR);
    if (pos < 0)
        return SW_RET(swasi_errno(errno));
    sw_put64(out, (uint64_t)pos);
    return SW_RET(SW_ESUCCESS);
}

static SW_HOSTFN(sw_fd_close) {
    (void)call;
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, 0, &e);
    if (!f)
        return SW_RET(e);
    swasi_fd_release(f);
    return SW_RET(SW_ESUCCESS);
}

static SW_HOSTFN(sw_fd_renumber) {
    (void)call;
    shoal_wasi *w = user;
    uint16_t e;
    SWasiFd *from = swasi_fd(w, a[0].i32, 0, &e);
    if (!from)
        return SW_RET(e);
    SWasiFd *to = swasi_fd(w, a[1].i32, 0, &e);
    if (!to)
        return SW_RET(e);
    if (from == to)
        return SW_RET(SW_ESUCCESS);
    swasi_fd_release(to);
    *to = *from;
    *from = (SWasiFd){.host = -1};
    return SW_RET(SW_ESUCCESS);
}

static SW_HOSTFN(sw_fd_fdstat_get) {
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, 0, &e);
    if (!f)
        return SW_RET(e);
    uint8_t *out = shoal_call_mem_array(call, (uint32_t)a[1].i32, 1, SW_FDSTAT_SIZE, 1);
    if (!out)
        return SW_RET(SW_EFAULT);
    memset(out, 0, SW_FDSTAT_SIZE);
    out[0] = f->type;
    sw_put16(out + 2, f->flags);
    sw_put64(out + 8, f->rights_base);
    sw_put64(out + 16, f->rights_inh);
    return SW_RET(SW_ESUCCESS);
}

static SW_HOSTFN(sw_fd_fdstat_set_flags) {
    (void)call;
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, SW_R_FD_FDSTAT_SET_FLAGS, &e);
    if (!f)
        return SW_RET(e);
    uint32_t want = (uint32_t)a[1].i32 & 0xffff;
    if (want & ~(SW_FDFLAG_APPEND | SW_FDFLAG_NONBLOCK | SW_FDFLAG_DSYNC | SW_FDFLAG_RSYNC | SW_FDFLAG_SYNC))
        return SW_RET(SW_EINVAL);
    if (want & (SW_FDFLAG_DSYNC | SW_FDFLAG_RSYNC | SW_FDFLAG_SYNC)) /* Linux cannot change these later */
        return SW_RET(SW_ENOTSUP);
    int fl = fcntl(f->host, F_GETFL);
    if (fl < 0)
        return SW_RET(swasi_errno(errno));
    fl &= ~(O_APPEND | O_NONBLOCK);
    fl |= ((want & SW_FDFLAG_APPEND) ? O_APPEND : 0) | ((want & SW_FDFLAG_NONBLOCK) ? O_NONBLOCK : 0);
    if (fcntl(f->host, F_SETFL, fl) < 0)
        return SW_RET(swasi_errno(errno));
    f->flags = (uint16_t)((f->flags & ~(SW_FDFLAG_APPEND | SW_FDFLAG_NONBLOCK)) | want);
    return SW_RET(SW_ESUCCESS);
}

static SW_HOSTFN(sw_fd_fdstat_set_rights) {
    (void)call;
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, 0, &e);
    if (!f)
        return SW_RET(e);
    uint64_t base = (uint64_t)a[1].i64, inh = (uint64_t)a[2].i64;
    if ((base & ~f->rights_base) || (inh & ~f->rights_inh)) /* rights only ever shrink */
        return SW_RET(SW_ENOTCAPABLE);
    f->rights_base = base;
    f->rights_inh = inh;
    return SW_RET(SW_ESUCCESS);
}

static SW_HOSTFN(sw_fd_advise) {
    (void)call;
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, SW_R_FD_ADVISE, &e);
    if (!f)
        return SW_RET(e);
    static const int adv[6] = {POSIX_FADV_NORMAL, POSIX_FADV_SEQUENTIAL, POSIX_FADV_RANDOM,
                               POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED, POSIX_FADV_NOREUSE};
    uint32_t advice = (uint32_t)a[3].i32 & 0xff;
    if (advice > 5 || a[1].i64 < 0 || a[2].i64 < 0)
        return SW_RET(SW_EINVAL);
    if (f->type == SW_FT_DIRECTORY)
        return SW_RET(SW_EBADF);
    int rc = posix_fadvise(f->host, (off_t)a[1].i64, (off_t)a[2].i64, adv[advice]);
    /* Advice is only a hint: a pipe or terminal that cannot take it is not an error for the guest. */
    return SW_RET(rc == ESPIPE ? SW_ESUCCESS : swasi_errno(rc));
}

static SW_HOSTFN(sw_fd_allocate) {
    (void)call;
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, SW_R_FD_ALLOCATE, &e);
    if (!f)
        return SW_RET(e);
    if (a[1].i64 < 0 || a[2].i64 <= 0)
        return SW_RET(SW_EINVAL);
    int rc = posix_fallocate(f->host, (off_t)a[1].i64, (off_t)a[2].i64);
    return SW_RET(swasi_errno(rc));
}

static SW_HOSTFN(sw_fd_sync) {
    (void)call;
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, SW_R_FD_SYNC, &e);
    if (!f)
        return SW_RET(e);
    return SW_RET(fsync(f->host) < 0 ? swasi_errno(errno) : SW_ESUCCESS);
}

static SW_HOSTFN(sw_fd_datasync) {
    (void)call;
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, SW_R_FD_DATASYNC, &e);
    if (!f)
        return SW_RET(e);
    return SW_RET(fdatasync(f->host) < 0 ? swasi_errno(errno) : SW_ESUCCESS);
}

static SW_HOSTFN(sw_fd_prestat_get) {
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, 0, &e);
    if (!f)
        return SW_RET(e);
    if (!f->preopen)
        return SW_RET(SW_EBADF);
    uint8_t *out = shoal_call_mem_array(call, (uint32_t)a[1].i32, 1, SW_PRESTAT_SIZE, 1);
    if (!out)
        return SW_RET(SW_EFAULT);
    memset(out, 0, SW_PRESTAT_SIZE);
    out[0] = 0; /* preopentype dir */
    sw_put32(out + 4, (uint32_t)strlen(f->preopen));
    return SW_RET(SW_ESUCCESS);
}

static SW_HOSTFN(sw_fd_prestat_dir_name) {
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, 0, &e);
    if (!f)
        return SW_RET(e);
    if (!f->preopen)
        return SW_RET(SW_EBADF);
    uint32_t len = (uint32_t)a[2].i32;
    size_t need = strlen(f->preopen);
    uint8_t *out = shoal_call_mem(call, (uint32_t)a[1].i32, len);
    if (!out)
        return SW_RET(SW_EFAULT);
    if (len < need)
        return SW_RET(SW_ENAMETOOLONG);
    memcpy(out, f->preopen, need); /* no NUL: the guest knows the length from fd_prestat_get */
    return SW_RET(SW_ESUCCESS);
}

/* --- poll_oneoff ----------------------------------------------------------------------------------- */

static uint64_t sw_now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return sw_ns(&ts);
}

static void sw_event(uint8_t *ev, uint64_t userdata, uint16_t error, uint8_t type, uint64_t nbytes, uint16_t flags) {
    memset(ev, 0, SW_EVENT_SIZE);
    sw_put64(ev, userdata);
    sw_put16(ev + 8, error);
    ev[10] = type;
    sw_put64(ev + 16, nbytes);
    sw_put16(ev + 24, flags);
}

/* Clock subscriptions become one poll(2) timeout (the earliest deadline, on CLOCK_MONOTONIC); fd
 * subscriptions become pollfds. Subscriptions that cannot be waited on (bad fd, unknown clock) are
 * reported at once as events with an error, as the witx allows. */
static SW_HOSTFN(sw_poll_oneoff) {
    shoal_wasi *w = user;
    uint32_t nsubs = (uint32_t)a[2].i32;
    if (nsubs == 0)
        return SW_RET(SW_EINVAL);
    const uint8_t *subs = shoal_call_mem_array(call, (uint32_t)a[0].i32, nsubs, SW_SUBSCRIPTION_SIZE, 1);
    uint8_t *evs = shoal_call_mem_array(call, (uint32_t)a[1].i32, nsubs, SW_EVENT_SIZE, 1);
    uint8_t *nout = shoal_call_mem(call, (uint32_t)a[3].i32, 4);
    if (!subs || !evs || !nout)
        return SW_RET(SW_EFAULT);
    /* The events may overlap the subscriptions in guest memory: work from a copy. */
    uint8_t *sub = malloc((size_t)nsubs * SW_SUBSCRIPTION_SIZE);
    struct pollfd *pfd = calloc(nsubs, sizeof *pfd);
    uint64_t *deadline = calloc(nsubs, sizeof *deadline); /* monotonic ns; 0 = not a clock */
    uint32_t nev = 0;
    uint16_t e = SW_ESUCCESS;
    if (!sub || !pfd || !deadline) {
        e = SW_ENOMEM;
        goto done;
    }
    memcpy(sub, subs, (size_t)nsubs * SW_SUBSCRIPTION_SIZE);
    uint64_t now = sw_now(CLOCK_MONOTONIC), first = UINT64_MAX;
    int immediate = 0, nfd = 0;
    for (uint32_t i = 0; i < nsubs; i++) {
        const uint8_t *s = sub + (size_t)i * SW_SUBSCRIPTION_SIZE;
        uint64_t ud = sw_get64(s);
        uint8_t tag = s[8];
        pfd[i].fd = -1;
        if (tag == 0) {
            uint32_t id = sw_get32(s + 16);
            uint64_t timeout = sw_get64(s + 24);
            int abstime = sw_get16(s + 40) & 1;
            uint64_t rel;
            if (id == 0 || id == 1) {
                /* an absolute monotonic deadline is on the guest's clock: the host's plus the offset */
                uint64_t base = id == 0 ? sw_now(CLOCK_REALTIME) : now + w->clock_off[1];
                rel = abstime ? (timeout > base ? timeout - base : 0) : timeout;
            } else {
                sw_event(evs + (size_t)nev++ * SW_EVENT_SIZE, ud, id < 4 ? SW_ENOTSUP : SW_EINVAL, 0, 0, 0);
                immediate = 1;
                continue;
            }
            deadline[i] = rel > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + rel; /* never 0: now > 0 */
            if (deadline[i] < first)
                first = deadline[i];
        } else if (tag == 1 || tag == 2) {
            uint16_t fe;
            SWasiFd *f = swasi_fd(w, (int32_t)sw_get32(s + 16), SW_R_POLL_FD_READWRITE, &fe);
            if (!f) {
                sw_event(evs + (size_t)nev++ * SW_EVENT_SIZE, ud, fe, tag, 0, 0);
                immediate = 1;
                continue;
            }
            pfd[i].fd = f->host;
            pfd[i].events = tag == 1 ? POLLIN : POLLOUT;
            nfd++;
        } else {
            sw_event(evs + (size_t)nev++ * SW_EVENT_SIZE, ud, SW_EINVAL, tag, 0, 0);
            immediate = 1;
        }
    }
    struct timespec ts, *tsp = NULL;
    if (immediate) {
        ts = (struct timespec){0, 0};
        tsp = &ts;
    } else if (first != UINT64_MAX) {
        uint64_t rel = first > now ? first - now : 0;
        ts = (struct timespec){.tv_sec = (time_t)(rel / 1000000000ull), .tv_nsec = (long)(rel % 1000000000ull)};
        tsp = &ts;
    }
    /* EINTR ends the wait early (the CLI's --timeout signals the thread so that the guest, back in Wasm,
     * sees its interrupt); the guest gets EINTR, never a spurious event. */
    if (ppoll(pfd, nsubs, tsp, NULL) < 0) {
        e = swasi_errno(errno);
        goto done;
    }
    now = sw_now(CLOCK_MONOTONIC);
    for (uint32_t i = 0; i < nsubs; i++) {
        const uint8_t *s = sub + (size_t)i * SW_SUBSCRIPTION_SIZE;
        uint64_t ud = sw_get64(s);
        if (deadline[i] && deadline[i] <= now) {
            sw_event(evs + (size_t)nev++ * SW_EVENT_SIZE, ud, 0, 0, 0, 0);
        } else if (pfd[i].fd >= 0 && pfd[i].revents) {
            uint8_t tag = s[8];
            uint16_t flags = (pfd[i].revents & POLLHUP) ? 1 : 0;
            uint16_t err = (pfd[i].revents & POLLNVAL) ? SW_EBADF : 0;
            int avail = 0;
            struct stat sb;
            uint64_t nbytes = 0;
            if (tag == 1 && fstat(pfd[i].fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
                off_t pos = lseek(pfd[i].fd, 0, SEEK_CUR);
                nbytes = (pos >= 0 && sb.st_size > pos) ? (uint64_t)(sb.st_size - pos) : 0;
            } else if (tag == 1 && ioctl(pfd[i].fd, FIONREAD, &avail) == 0 && avail > 0) {
                nbytes = (uint64_t)avail;
            }
            sw_event(evs + (size_t)nev++ * SW_EVENT_SIZE, ud, err, tag, nbytes, flags);
        }
    }
    sw_put32(nout, nev);
done:
    free(sub);
    free(pfd);
    free(deadline);
    return SW_RET(e);
}

/* --- the import table ------------------------------------------------------------------------------ */

typedef struct SWasiImport {
    const char *name, *sig;
    shoal_host_fn fn;
} SWasiImport;

static const SWasiImport sw_imports[] = {
    {"args_get", "ii:i", sw_args_get},
    {"args_sizes_get", "ii:i", sw_args_sizes_get},
    {"environ_get", "ii:i", sw_environ_get},
    {"environ_sizes_get", "ii:i", sw_environ_sizes_get},
    {"clock_res_get", "ii:i", sw_clock_res_get},
    {"clock_time_get", "iIi:i", sw_clock_time_get},
    {"fd_advise", "iIIi:i", sw_fd_advise},
    {"fd_allocate", "iII:i", sw_fd_allocate},
    {"fd_close", "i:i", sw_fd_close},
    {"fd_datasync", "i:i", sw_fd_datasync},
    {"fd_fdstat_get", "ii:i", sw_fd_fdstat_get},
    {"fd_fdstat_set_flags", "ii:i", sw_fd_fdstat_set_flags},
    {"fd_fdstat_set_rights", "iII:i", sw_fd_fdstat_set_rights},
    {"fd_filestat_get", "ii:i", swasi_fs_fd_filestat_get},
    {"fd_filestat_set_size", "iI:i", swasi_fs_fd_filestat_set_size},
    {"fd_filestat_set_times", "iIIi:i", swasi_fs_fd_filestat_set_times},
    {"fd_pread", "iiiIi:i", sw_fd_pread},
    {"fd_prestat_get", "ii:i", sw_fd_prestat_get},
    {"fd_prestat_dir_name", "iii:i", sw_fd_prestat_dir_name},
    {"fd_pwrite", "iiiIi:i", sw_fd_pwrite},
    {"fd_read", "iiii:i", sw_fd_read},
    {"fd_readdir", "iiiIi:i", swasi_fs_fd_readdir},
    {"fd_renumber", "ii:i", sw_fd_renumber},
    {"fd_seek", "iIii:i", sw_fd_seek},
    {"fd_sync", "i:i", sw_fd_sync},
    {"fd_tell", "ii:i", sw_fd_tell},
    {"fd_write", "iiii:i", sw_fd_write},
    {"path_create_directory", "iii:i", swasi_fs_path_create_directory},
    {"path_filestat_get", "iiiii:i", swasi_fs_path_filestat_get},
    {"path_filestat_set_times", "iiiiIIi:i", swasi_fs_path_filestat_set_times},
    {"path_link", "iiiiiii:i", swasi_fs_path_link},
    {"path_open", "iiiiiIIii:i", swasi_fs_path_open},
    {"path_readlink", "iiiiii:i", swasi_fs_path_readlink},
    {"path_remove_directory", "iii:i", swasi_fs_path_remove_directory},
    {"path_rename", "iiiiii:i", swasi_fs_path_rename},
    {"path_symlink", "iiiii:i", swasi_fs_path_symlink},
    {"path_unlink_file", "iii:i", swasi_fs_path_unlink_file},
    {"poll_oneoff", "iiii:i", sw_poll_oneoff},
    {"proc_exit", "i:", sw_proc_exit},
    {"proc_raise", "i:i", sw_nosys},
    {"sched_yield", ":i", sw_sched_yield},
    {"random_get", "ii:i", sw_random_get},
    {"sock_accept", "iii:i", sw_nosys},
    {"sock_recv", "iiiiii:i", sw_nosys},
    {"sock_send", "iiiii:i", sw_nosys},
    {"sock_shutdown", "ii:i", sw_nosys},
};

shoal_status shoal_wasi_add_imports(shoal_wasi *w, shoal_imports *imports, shoal_error *err) {
    if (!w || !imports)
        return shoal_error_set(err, SHOAL_ERR_ARG, "wasi: NULL argument");
    for (size_t i = 0; i < sizeof sw_imports / sizeof sw_imports[0]; i++) {
        shoal_status st = shoal_imports_add_func(imports, "wasi_snapshot_preview1", sw_imports[i].name,
                                                 sw_imports[i].sig, sw_imports[i].fn, w, err);
        if (st != SHOAL_OK)
            return st;
    }
    return SHOAL_OK;
}

shoal_status shoal_wasi_run(shoal_wasi *w, shoal_instance *inst, int32_t *exit_code, shoal_error *err) {
    (void)w;
    *exit_code = 0;
    shoal_functype ft;
    const char *entry = NULL;
    if (shoal_export_functype(inst, "_start", &ft))
        entry = "_start";
    else if (shoal_export_functype(inst, "_initialize", &ft))
        entry = "_initialize";
    else
        return shoal_error_set(err, SHOAL_ERR_NOTFOUND, "wasi: the module exports neither _start nor _initialize");
    if (ft.nparams || ft.nresults)
        return shoal_error_set(err, SHOAL_ERR_INVALID, "wasi: %s must have type [] -> []", entry);
    shoal_error local;
    shoal_error *e = err ? err : &local;
    shoal_status st = shoal_call_export(inst, entry, NULL, 0, NULL, 0, e);
    if (st == SHOAL_ERR_EXIT) {
        *exit_code = e->exit_code;
        return SHOAL_OK;
    }
    return st;
}
