/*
 * swasi_state.c: a guest's WASI state as bytes and back (shoal_wasi_state_save / _load, shoal.h section 11),
 * so that a guest frozen in one process continues in another, maybe on another machine, and its next WASI
 * call behaves as if nothing happened.
 *
 * Format (kbuf encoding, src/snapshot/kbuf.h: little-endian integers, str = u32 length + bytes), in order:
 *
 *   u32 version                              SW_STATE_VERSION
 *   u32 argc, argc x str                     the guest's arguments
 *   u32 envc, envc x str                     its environment ("KEY=VALUE")
 *   u32 norigins, norigins x {               the preopened directories as configured, even those whose fd
 *       str guest_name, str host_path }      the guest closed since (files opened beneath them name them)
 *   u64 monotonic, u64 process_cputime,      the guest's view of its clocks at the save (ns); a load sets
 *   u64 thread_cputime                       offsets so they continue from there
 *   u32 nslots                               the fd table's size, free slots included (numbers are kept)
 *   nslots x { u8 kind, then by kind:
 *     0 free:     nothing
 *     1 stdio:    u8 which (0 stdin, 1 stdout, 2 stderr), u64 rights the guest dropped
 *     2 preopen,
 *     3 path:     u32 origin (index above), str path beneath it ("." for a preopen), u8 filetype (3 dir,
 *                 4 regular file), u16 fdflags, u8 access (0 read, 1 write, 2 both), u8 follow (a final
 *                 symlink was followed), u64 rights_base, u64 rights_inheriting, u64 position (files) }
 *
 * Nothing follows the slots. What is deliberately not carried: stdio's host side (the new process's own
 * stdio fds are bound, with their type; only rights the guest gave up stay given up), fd_readdir streams
 * (cookies are entry indexes: the next call with a cookie reads from that entry again), the realtime
 * clock (the real wall clock) and randomness (real randomness).
 *
 * Save refuses (SHOAL_ERR_UNSUPPORTED, naming the fd and path) what could not be reopened as the same
 * object: a file removed or replaced since it was opened (its path beneath the preopen no longer names
 * the same device and inode), one that is neither a regular file nor a directory, or one whose path is
 * not known (opened through a symlink followed by ".."). Load parses and validates the whole blob first
 * (SHOAL_ERR_FORMAT for anything truncated, corrupt or out of range), then opens: directories and files
 * through the same sandboxed resolution as path_open, never creating or truncating, each checked to be
 * the kind of object it was (a FIFO or device is never opened); SHOAL_ERR_IO naming the file that cannot
 * be reopened, with everything opened so far closed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kbuf.h"
#include "swasi.h"

#define SW_STATE_VERSION 1u
#define SW_STATE_MAX_SLOTS 65536u /* swasi_fd_alloc's limit */

enum { SW_SLOT_FREE = 0, SW_SLOT_STDIO = 1, SW_SLOT_PREOPEN = 2, SW_SLOT_PATH = 3 };

#define SW_FDFLAGS_ALL (SW_FDFLAG_APPEND | SW_FDFLAG_DSYNC | SW_FDFLAG_NONBLOCK | SW_FDFLAG_RSYNC | SW_FDFLAG_SYNC)

/* --- save ------------------------------------------------------------------------------------------ */

static void sw_put_strings(kbuf *b, char **v, uint32_t n) {
    kbuf_u32(b, n);
    for (uint32_t i = 0; i < n; i++)
        kbuf_str(b, v[i]);
}

/* Checks that slot i (neither free nor stdio) can be reopened as the same object from its origin's host
 * directory, and reads its access mode and position. roots[] caches each origin's directory (-1: not
 * opened yet), opened by the same path a load will use. */
static shoal_status sw_save_check(shoal_wasi *w, uint32_t i, int *roots, uint8_t *access, uint64_t *pos,
                                  shoal_error *err) {
    const SWasiFd *f = &w->fds[i];
    const char *gname = f->origin >= 0 ? w->origins[f->origin].guest : "?";
    if (f->origin < 0 || !f->path)
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED,
                               "wasi: fd %u cannot be carried: its path beneath a preopened directory is not known "
                               "(it was opened through a symlink followed by '..')",
                               i);
    struct stat hb, pb;
    if (fstat(f->host, &hb) < 0)
        return shoal_error_set(err, SHOAL_ERR_IO, "wasi: fd %u ('%s' beneath '%s'): %s", i, f->path, gname,
                               strerror(errno));
    if (!S_ISREG(hb.st_mode) && !S_ISDIR(hb.st_mode))
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED,
                               "wasi: fd %u ('%s' beneath '%s') cannot be carried: it is neither a regular file "
                               "nor a directory",
                               i, f->path, gname);
    int *root = &roots[f->origin];
    if (*root < 0)
        *root = open(w->origins[f->origin].host, O_PATH | O_DIRECTORY | O_CLOEXEC);
    int fd = -1;
    int flags = O_PATH | (S_ISDIR(hb.st_mode) ? O_DIRECTORY : 0);
    int same = *root >= 0 && swasi_path_open(*root, f->path, flags, 0, f->follow, &fd) == SW_ESUCCESS &&
               fstat(fd, &pb) == 0 && pb.st_dev == hb.st_dev && pb.st_ino == hb.st_ino;
    if (fd >= 0)
        close(fd);
    if (!same)
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED,
                               "wasi: fd %u ('%s' beneath '%s', host directory '%s') cannot be carried: it was "
                               "removed or replaced since it was opened",
                               i, f->path, gname, w->origins[f->origin].host);
    int fl = fcntl(f->host, F_GETFL);
    if (fl < 0)
        return shoal_error_set(err, SHOAL_ERR_IO, "wasi: fd %u: %s", i, strerror(errno));
    *access = (fl & O_ACCMODE) == O_WRONLY ? 1 : (fl & O_ACCMODE) == O_RDWR ? 2 : 0;
    *pos = 0;
    if (S_ISREG(hb.st_mode)) {
        off_t p = lseek(f->host, 0, SEEK_CUR);
        if (p < 0)
            return shoal_error_set(err, SHOAL_ERR_IO, "wasi: fd %u ('%s'): %s", i, f->path, strerror(errno));
        *pos = (uint64_t)p;
    }
    return SHOAL_OK;
}

/* The thread clock is read without rebasing it: a save must not move the guest's clocks. */
static uint64_t sw_save_clock(shoal_wasi *w, uint32_t id) {
    uint64_t t = 0;
    if (id == 3 && w->thread_pending)
        return w->thread_base;
    (void)swasi_clock_now(w, id, &t);
    return t;
}

shoal_status shoal_wasi_state_save(shoal_wasi *w, uint8_t **out, size_t *len, shoal_error *err) {
    if (!w || !out || !len)
        return shoal_error_set(err, SHOAL_ERR_ARG, "wasi state save: NULL argument");
    *out = NULL;
    *len = 0;
    shoal_status st = SHOAL_OK;
    kbuf b;
    kbuf_init(&b);
    int *roots = malloc(((size_t)w->norigins + 1) * sizeof *roots);
    if (!roots)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "wasi: out of memory");
    for (uint32_t i = 0; i < w->norigins; i++)
        roots[i] = -1;

    kbuf_u32(&b, SW_STATE_VERSION);
    sw_put_strings(&b, w->argv, w->argc);
    sw_put_strings(&b, w->envp, w->envc);
    kbuf_u32(&b, w->norigins);
    for (uint32_t i = 0; i < w->norigins; i++) {
        kbuf_str(&b, w->origins[i].guest);
        kbuf_str(&b, w->origins[i].host);
    }
    for (uint32_t id = 1; id <= 3; id++)
        kbuf_u64(&b, sw_save_clock(w, id));
    kbuf_u32(&b, w->nfds);
    for (uint32_t i = 0; i < w->nfds; i++) {
        const SWasiFd *f = &w->fds[i];
        if (f->host < 0) {
            kbuf_u8(&b, SW_SLOT_FREE);
        } else if (f->stdio >= 0) {
            kbuf_u8(&b, SW_SLOT_STDIO);
            kbuf_u8(&b, (uint8_t)f->stdio);
            kbuf_u64(&b, f->rights_full & ~f->rights_base);
        } else {
            uint8_t access = 0;
            uint64_t pos = 0;
            if ((st = sw_save_check(w, i, roots, &access, &pos, err)) != SHOAL_OK)
                goto fail;
            kbuf_u8(&b, f->preopen ? SW_SLOT_PREOPEN : SW_SLOT_PATH);
            kbuf_u32(&b, (uint32_t)f->origin);
            kbuf_str(&b, f->path);
            kbuf_u8(&b, f->type);
            kbuf_u8(&b, (uint8_t)(f->flags & 0xff)); /* u16, little-endian */
            kbuf_u8(&b, (uint8_t)(f->flags >> 8));
            kbuf_u8(&b, access);
            kbuf_u8(&b, f->follow);
            kbuf_u64(&b, f->rights_base);
            kbuf_u64(&b, f->rights_inh);
            kbuf_u64(&b, pos);
        }
    }
    if (!(*out = kbuf_take(&b, len))) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "wasi: out of memory");
        goto fail;
    }
fail:
    kbuf_free(&b);
    for (uint32_t i = 0; i < w->norigins; i++)
        if (roots[i] >= 0)
            close(roots[i]);
    free(roots);
    return st;
}

/* --- load: parse ------------------------------------------------------------------------------------ */

/* One slot as read from the bytes (path owned). */
typedef struct SWasiRec {
    uint8_t kind, which, type, access, follow;
    uint16_t flags;
    uint32_t origin;
    char *path;
    uint64_t dropped, base, inh, pos;
} SWasiRec;

typedef struct SWasiParsed {
    uint32_t argc, envc, norigins, nslots;
    char **argv, **envp; /* NULL-terminated */
    SWasiOrigin *origins;
    uint64_t clocks[3];
    SWasiRec *recs;
} SWasiParsed;

static void sw_parsed_free(SWasiParsed *ps) {
    for (uint32_t i = 0; ps->argv && i < ps->argc; i++)
        free(ps->argv[i]);
    for (uint32_t i = 0; ps->envp && i < ps->envc; i++)
        free(ps->envp[i]);
    for (uint32_t i = 0; ps->origins && i < ps->norigins; i++) {
        free(ps->origins[i].guest);
        free(ps->origins[i].host);
    }
    for (uint32_t i = 0; ps->recs && i < ps->nslots; i++)
        free(ps->recs[i].path);
    free(ps->argv);
    free(ps->envp);
    free(ps->origins);
    free(ps->recs);
    memset(ps, 0, sizeof *ps);
}

/* A count of items each at least `min` bytes long: never more than the bytes left could hold, so that a
 * corrupt count cannot make us allocate much. */
static int sw_count_ok(const kread *r, uint32_t n, size_t min) { return !r->failed && n <= kread_left(r) / min; }

/* Reads n strings into a NULL-terminated array; *bytes gets their size with NULs (as args_sizes_get
 * reports it). Returns a message on failure, NULL on success. */
static const char *sw_read_strings(kread *r, uint32_t n, char ***out, uint32_t *bytes) {
    if (!sw_count_ok(r, n, 4))
        return "string count past the end";
    char **v = calloc((size_t)n + 1, sizeof *v);
    if (!v)
        return "out of memory";
    *out = v;
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (!(v[i] = kread_strdup(r)))
            return r->failed ? "a string is truncated or holds a NUL byte" : "out of memory";
        total += strlen(v[i]) + 1;
    }
    if (total > UINT32_MAX / 2)
        return "arguments or environment too large";
    *bytes = (uint32_t)total;
    return NULL;
}

/* Everything except the opens: a corrupt or truncated blob is refused here, before any host access. */
static shoal_status sw_parse(const uint8_t *p, size_t len, SWasiParsed *ps, uint32_t *argv_bytes,
                             uint32_t *envp_bytes, shoal_error *err) {
    kread r;
    kread_init(&r, p, len);
    const char *why = NULL;
    uint32_t slot = UINT32_MAX; /* the descriptor being read, for the message */
    uint32_t version = kread_u32(&r);
    if (r.failed)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "wasi state: truncated (%zu bytes)", len);
    if (version != SW_STATE_VERSION)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "wasi state: format version %u, this build reads %u", version,
                               SW_STATE_VERSION);
    ps->argc = kread_u32(&r);
    if ((why = sw_read_strings(&r, ps->argc, &ps->argv, argv_bytes)))
        goto bad;
    ps->envc = kread_u32(&r);
    if ((why = sw_read_strings(&r, ps->envc, &ps->envp, envp_bytes)))
        goto bad;
    uint32_t no = kread_u32(&r);
    if (!sw_count_ok(&r, no, 8)) {
        why = "preopen count past the end";
        goto bad;
    }
    if (no && !(ps->origins = calloc(no, sizeof *ps->origins))) {
        why = "out of memory";
        goto bad;
    }
    ps->norigins = no;
    for (uint32_t i = 0; i < no; i++) {
        ps->origins[i].guest = kread_strdup(&r);
        ps->origins[i].host = kread_strdup(&r);
        if (!ps->origins[i].guest || !ps->origins[i].host) {
            why = r.failed ? "a preopen name is truncated or holds a NUL byte" : "out of memory";
            goto bad;
        }
        if (!ps->origins[i].host[0]) {
            why = "a preopen has an empty host path";
            goto bad;
        }
    }
    for (int i = 0; i < 3; i++)
        ps->clocks[i] = kread_u64(&r);
    uint32_t ns = kread_u32(&r);
    if (!sw_count_ok(&r, ns, 1) || ns > SW_STATE_MAX_SLOTS) {
        why = "descriptor count past the end or over the limit";
        goto bad;
    }
    if (ns && !(ps->recs = calloc(ns, sizeof *ps->recs))) {
        why = "out of memory";
        goto bad;
    }
    ps->nslots = ns;
    for (slot = 0; slot < ns && !r.failed; slot++) {
        SWasiRec *q = &ps->recs[slot];
        q->kind = kread_u8(&r);
        if (q->kind == SW_SLOT_FREE) {
            continue;
        } else if (q->kind == SW_SLOT_STDIO) {
            q->which = kread_u8(&r);
            q->dropped = kread_u64(&r);
            if (!r.failed && (q->which > 2 || (q->dropped & ~SW_R_ALL))) {
                why = "stdio index or rights out of range";
                goto bad;
            }
        } else if (q->kind == SW_SLOT_PREOPEN || q->kind == SW_SLOT_PATH) {
            q->origin = kread_u32(&r);
            uint32_t plen = 0;
            const char *pv = kread_strv(&r, &plen);
            q->type = kread_u8(&r);
            q->flags = kread_u8(&r);
            q->flags |= (uint16_t)(kread_u8(&r) << 8);
            q->access = kread_u8(&r);
            q->follow = kread_u8(&r);
            q->base = kread_u64(&r);
            q->inh = kread_u64(&r);
            q->pos = kread_u64(&r);
            if (r.failed)
                break;
            if (q->origin >= no) {
                why = "preopen index out of range";
                goto bad;
            }
            if (plen == 0 || plen >= SW_PATH_MAX || memchr(pv, '\0', plen) || pv[0] == '/') {
                why = "bad path";
                goto bad;
            }
            if ((q->type != SW_FT_DIRECTORY && q->type != SW_FT_REGULAR_FILE) ||
                (q->kind == SW_SLOT_PREOPEN && q->type != SW_FT_DIRECTORY) ||
                (q->type == SW_FT_DIRECTORY && (q->access || q->pos))) {
                why = "bad file type, or a directory with write access or a position";
                goto bad;
            }
            if ((q->flags & ~SW_FDFLAGS_ALL) || q->access > 2 || q->follow > 1 || (q->base & ~SW_R_ALL) ||
                (q->inh & ~SW_R_ALL) || q->pos > (uint64_t)INT64_MAX) {
                why = "flags, access mode, rights or position out of range";
                goto bad;
            }
            if (!(q->path = strndup(pv, plen))) {
                why = "out of memory";
                goto bad;
            }
        } else {
            why = "unknown descriptor kind";
            goto bad;
        }
    }
    slot = UINT32_MAX;
    if (r.failed) {
        why = "truncated";
        goto bad;
    }
    if (kread_left(&r)) {
        why = "trailing bytes after the last descriptor";
        goto bad;
    }
    return SHOAL_OK;
bad:
    if (!strcmp(why, "out of memory"))
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "wasi state: out of memory");
    if (slot != UINT32_MAX)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "wasi state: fd %u: %s (at byte %zu of %zu)", slot, why,
                               r.off, len);
    return shoal_error_set(err, SHOAL_ERR_FORMAT, "wasi state: %s (at byte %zu of %zu)", why, r.off, len);
}

shoal_status swasi_state_check(const uint8_t *p, size_t len, shoal_error *err) {
    if (!p && len)
        return shoal_error_set(err, SHOAL_ERR_ARG, "wasi state check: NULL bytes");
    SWasiParsed ps = {0};
    uint32_t argv_bytes, envp_bytes;
    shoal_status st = sw_parse(p, len, &ps, &argv_bytes, &envp_bytes, err);
    sw_parsed_free(&ps);
    return st;
}

/* --- load: open ------------------------------------------------------------------------------------- */

/* Reopens a saved directory or file beneath its origin's directory `root`: never creating or truncating,
 * and only after an O_PATH look shows it is still the kind of object it was (opening a FIFO or a device
 * could block or act). *out is owned on success. Returns a message (with errno's text) or NULL. */
static const char *sw_reopen(int root, const SWasiRec *q, int *out) {
    int probe = -1, fd = -1;
    struct stat pb, fb;
    int dir = q->type == SW_FT_DIRECTORY;
    uint16_t e = swasi_path_open(root, q->path, O_PATH | (dir ? O_DIRECTORY : 0), 0, q->follow, &probe);
    if (e)
        return e == SW_ENOENT ? "no such file" : e == SW_ENOTCAPABLE ? "it lies outside its directory" : "cannot open";
    if (fstat(probe, &pb) < 0 || (dir ? !S_ISDIR(pb.st_mode) : !S_ISREG(pb.st_mode))) {
        close(probe);
        return dir ? "not a directory any more" : "not a regular file any more";
    }
    int flags = (q->access == 2 ? O_RDWR : q->access == 1 ? O_WRONLY : O_RDONLY) | O_NOCTTY |
                (dir ? O_DIRECTORY : 0) | ((q->flags & SW_FDFLAG_APPEND) ? O_APPEND : 0) |
                ((q->flags & SW_FDFLAG_NONBLOCK) ? O_NONBLOCK : 0) | ((q->flags & SW_FDFLAG_DSYNC) ? O_DSYNC : 0) |
                ((q->flags & SW_FDFLAG_SYNC) ? O_SYNC : 0) | ((q->flags & SW_FDFLAG_RSYNC) ? O_RSYNC : 0);
    const char *why = NULL;
    e = swasi_path_open(root, q->path, flags, 0, q->follow, &fd);
    if (e)
        why = e == SW_EACCES ? "permission denied" : "cannot open";
    else if (fstat(fd, &fb) < 0 || fb.st_dev != pb.st_dev || fb.st_ino != pb.st_ino)
        why = "it changed while being opened";
    else if (!dir && lseek(fd, (off_t)q->pos, SEEK_SET) < 0)
        why = "cannot seek to its position";
    close(probe);
    if (why) {
        if (fd >= 0)
            close(fd);
        return why;
    }
    *out = fd;
    return NULL;
}

/* Re-binding: each config preopen names a saved guest directory whose host path it replaces. */
static shoal_status sw_rebind(const shoal_wasi_config *cfg, SWasiParsed *ps, shoal_error *err) {
    for (int i = 0; i < cfg->npreopens; i++) {
        const shoal_wasi_preopen *c = &cfg->preopens[i];
        const char *gname = c->guest_path ? c->guest_path : c->host_path;
        if (!c->host_path || !gname)
            return shoal_error_set(err, SHOAL_ERR_ARG, "wasi: preopen %d has no host path", i);
        int found = 0;
        for (uint32_t k = 0; k < ps->norigins; k++) {
            if (strcmp(ps->origins[k].guest, gname) != 0)
                continue;
            char *h = strdup(c->host_path);
            if (!h)
                return shoal_error_set(err, SHOAL_ERR_NOMEM, "wasi: out of memory");
            free(ps->origins[k].host);
            ps->origins[k].host = h;
            found = 1;
        }
        /* A name the guest never had is most likely a typo: silently ignoring it would let the actor
         * carry on in the old host directory where one of that name still exists. */
        if (!found)
            return shoal_error_set(err, SHOAL_ERR_ARG,
                                   "wasi: the saved state has no preopened directory named '%s' to re-bind", gname);
    }
    return SHOAL_OK;
}

shoal_status shoal_wasi_state_load(const shoal_wasi_config *cfg, const uint8_t *p, size_t len, shoal_wasi **out,
                                   shoal_error *err) {
    if (out)
        *out = NULL;
    if (!cfg || !out || (!p && len) || cfg->npreopens < 0 || (cfg->npreopens && !cfg->preopens))
        return shoal_error_set(err, SHOAL_ERR_ARG, "wasi state load: bad argument");
    swasi_path_init();
    SWasiParsed ps = {0};
    shoal_wasi *w = NULL;
    int *roots = NULL;
    uint32_t argv_bytes = 0, envp_bytes = 0;
    shoal_status st = sw_parse(p, len, &ps, &argv_bytes, &envp_bytes, err);
    if (st != SHOAL_OK || (st = sw_rebind(cfg, &ps, err)) != SHOAL_OK)
        goto fail;
    if (!(w = calloc(1, sizeof *w)) || !(roots = malloc(((size_t)ps.norigins + 1) * sizeof *roots)) ||
        (ps.nslots && !(w->fds = calloc(ps.nslots, sizeof *w->fds)))) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "wasi: out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < ps.norigins; i++)
        roots[i] = -1;
    /* The arrays move into w (shoal_wasi_free frees them from here on). */
    w->argc = ps.argc, w->argv = ps.argv, w->argv_bytes = argv_bytes, ps.argv = NULL;
    w->envc = ps.envc, w->envp = ps.envp, w->envp_bytes = envp_bytes, ps.envp = NULL;
    w->nfds = w->capfds = ps.nslots;
    for (uint32_t i = 0; i < ps.nslots; i++)
        w->fds[i] = (SWasiFd){.host = -1};
    for (uint32_t i = 0; i < ps.norigins; i++)
        if ((st = swasi_origin_add(w, ps.origins[i].guest, ps.origins[i].host, err)) != SHOAL_OK)
            goto fail;

    const int stdio[3] = {cfg->stdin_fd, cfg->stdout_fd, cfg->stderr_fd};
    for (uint32_t i = 0; i < ps.nslots; i++) {
        const SWasiRec *q = &ps.recs[i];
        SWasiFd *f = &w->fds[i];
        if (q->kind == SW_SLOT_FREE)
            continue;
        if (q->kind == SW_SLOT_STDIO) {
            int host;
            uint8_t type;
            uint64_t rights;
            if ((st = swasi_stdio_open(stdio[q->which], &host, &type, &rights, err)) != SHOAL_OK)
                goto fail;
            *f = (SWasiFd){.host = host, .type = type, .flags = swasi_host_fdflags(host),
                           .rights_base = rights & ~q->dropped, .stdio = (int8_t)q->which, .origin = -1,
                           .rights_full = rights};
            continue;
        }
        const SWasiOrigin *o = &w->origins[q->origin];
        int *root = &roots[q->origin];
        if (*root < 0 && (*root = open(o->host, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
            st = shoal_error_set(err, SHOAL_ERR_IO,
                                 "wasi: cannot open the directory '%s' that the guest knows as '%s': %s (re-bind it "
                                 "to another host directory with a preopen of that guest name)",
                                 o->host, o->guest, strerror(errno));
            goto fail;
        }
        int host = -1;
        const char *why = sw_reopen(*root, q, &host);
        if (why) {
            st = shoal_error_set(err, SHOAL_ERR_IO,
                                 "wasi: cannot reopen fd %u ('%s' beneath '%s', host directory '%s'): %s", i, q->path,
                                 o->guest, o->host, why);
            goto fail;
        }
        /* rights as saved, within what the kind of object allows (as path_open grants them) */
        uint64_t base = q->base & (q->type == SW_FT_DIRECTORY ? SW_R_DIR : SW_R_FILE);
        *f = (SWasiFd){.host = host, .type = q->type, .flags = q->flags, .rights_base = base, .rights_inh = q->inh,
                       .stdio = -1, .follow = q->follow, .origin = (int32_t)q->origin};
        if (!(f->path = strdup(q->path)) || (q->kind == SW_SLOT_PREOPEN && !(f->preopen = strdup(o->guest)))) {
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "wasi: out of memory");
            goto fail;
        }
    }
    /* The clocks continue from their saved values (computed last, so the opens above do not count). */
    uint64_t now;
    for (uint32_t id = 1; id <= 2; id++) {
        w->clock_off[id] = 0;
        if (swasi_clock_now(w, id, &now) == SW_ESUCCESS)
            w->clock_off[id] = ps.clocks[id - 1] - now;
    }
    w->thread_base = ps.clocks[2];
    w->thread_pending = 1;
    st = SHOAL_OK;
    *out = w;
    w = NULL;
fail:
    for (uint32_t i = 0; roots && i < ps.norigins; i++)
        if (roots[i] >= 0)
            close(roots[i]);
    free(roots);
    sw_parsed_free(&ps);
    shoal_wasi_free(w);
    return st;
}
