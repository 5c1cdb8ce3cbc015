/*
 * swasi_path.c: path resolution confined beneath a preopened directory.
 *
 * The sandbox rule: whatever the guest passes (absolute paths, "..", symlinks with absolute or climbing
 * targets, symlink loops), the object a path names is inside the directory tree of the fd it is resolved
 * against. Two implementations give the same guarantee:
 *
 *   - openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS (Linux >= 5.6): the kernel refuses any step
 *     that would leave the starting directory (EXDEV, reported as ENOTCAPABLE), symlinks included, and
 *     is immune to concurrent renames.
 *   - where openat2 is missing (ENOSYS, or a seccomp filter's EPERM): a walk one component at a time,
 *     every step an openat(O_PATH | O_NOFOLLOW) relative to the directory reached so far, so the kernel
 *     never follows a symlink for us; symlinks are read with readlinkat() and spliced into the remaining
 *     path, where their components are checked like the guest's own. A concurrent swap of a component for
 *     a symlink makes the O_NOFOLLOW step fail (ELOOP/ENOTDIR) instead of escaping.
 *
 * Operations on a last component (unlink, rmdir, rename, mkdir, symlink, readlink, link) resolve only the
 * parent this way and then act on a single name with the *at() calls, which never follow a final symlink.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "swasi.h"

#define SW_MAX_SYMLINKS 40

/* 1: openat2 works; 0: walk by hand; -1: not probed yet. Atomic because WASI objects on different
 * threads may probe at once (they all find the same answer). */
static atomic_int sw_openat2 = -1;

static long sw_sys_openat2(int dir, const char *path, struct open_how *how) {
    return syscall(SYS_openat2, dir, path, how, sizeof *how);
}

int swasi_path_set_openat2(int on) {
    swasi_path_init();
    int old = atomic_load(&sw_openat2);
    if (on && !old)
        return old; /* cannot force openat2 where the probe found none */
    atomic_store(&sw_openat2, on ? 1 : 0);
    return old;
}

void swasi_path_init(void) {
    if (atomic_load(&sw_openat2) >= 0)
        return;
    const char *force = getenv("SHOAL_WASI_NO_OPENAT2");
    if (force && *force && strcmp(force, "0") != 0) {
        atomic_store(&sw_openat2, 0);
        return;
    }
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
    long fd = sw_sys_openat2(AT_FDCWD, ".", &how);
    if (fd >= 0)
        close((int)fd);
    atomic_store(&sw_openat2, fd < 0 && (errno == ENOSYS || errno == EPERM) ? 0 : 1);
}

/* --- resolution ------------------------------------------------------------------------------------ */

/* openat2 beneath `dir`, retrying the transient EAGAIN the kernel returns when a rename races a ".." step. */
static uint16_t sw_open_beneath(int dir, const char *path, uint64_t flags, uint64_t mode, int *out) {
    struct open_how how = {.flags = flags | O_CLOEXEC,
                           .mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? mode : 0,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    for (int tries = 0; tries < 64; tries++) {
        long fd = sw_sys_openat2(dir, path, &how);
        if (fd >= 0) {
            *out = (int)fd;
            return SW_ESUCCESS;
        }
        if (errno != EAGAIN && errno != EINTR)
            break;
    }
    return errno == EXDEV ? SW_ENOTCAPABLE : swasi_errno(errno);
}

/* --- the fallback walk -------------------------------------------------------------------------- */

typedef struct SWalk {
    int *fds;      /* fds[0] is the root (borrowed); fds[1..n) are owned O_PATH directory fds */
    size_t n, cap;
} SWalk;

static void sw_walk_free(SWalk *wk) {
    for (size_t i = 1; i < wk->n; i++)
        close(wk->fds[i]);
    free(wk->fds);
}

static uint16_t sw_walk_push(SWalk *wk, int fd) {
    if (wk->n == wk->cap) {
        size_t cap = wk->cap * 2;
        int *fds = realloc(wk->fds, cap * sizeof *fds);
        if (!fds) {
            close(fd);
            return SW_ENOMEM;
        }
        wk->fds = fds;
        wk->cap = cap;
    }
    wk->fds[wk->n++] = fd;
    return SW_ESUCCESS;
}

/* Walks `path` beneath root. On success *dir is an owned fd of the directory holding the last component
 * and `last` that component ("." when the path names a directory reached by "."/".." or ends in one).
 * follow_last: a symlink as last component is resolved too. A trailing '/' implies follow_last and is
 * reported in *trailing. */
static uint16_t sw_walk(int root, const char *path, int follow_last, int *dir, char *last, size_t last_cap,
                        int *trailing) {
    uint16_t e = SW_ESUCCESS;
    SWalk wk = {.fds = malloc(16 * sizeof(int)), .n = 0, .cap = 16};
    char *rest = strdup(path);
    char *link = malloc(SW_PATH_MAX);
    int nlinks = 0;
    *trailing = 0;
    if (!wk.fds || !rest || !link) {
        e = SW_ENOMEM;
        goto fail;
    }
    wk.fds[wk.n++] = root;
    if (rest[0] == '\0') {
        e = SW_ENOENT;
        goto fail;
    }
    size_t pos = 0;
    for (;;) {
        if (rest[pos] == '/') {
            if (pos == 0) { /* absolute: the guest's path or a symlink's target */
                e = SW_ENOTCAPABLE;
                goto fail;
            }
            while (rest[pos] == '/')
                pos++;
        }
        int cur = wk.fds[wk.n - 1];
        if (rest[pos] == '\0') { /* ended on a directory step ("a/..", "a/.", or the root itself) */
            snprintf(last, last_cap, ".");
            break;
        }
        size_t clen = strcspn(rest + pos, "/");
        size_t after = pos + clen;
        size_t k = after;
        while (rest[k] == '/')
            k++;
        int is_last = rest[k] == '\0';
        int slash = is_last && k > after;
        char *comp = rest + pos;
        char saved = rest[after];
        rest[after] = '\0';
        if (clen >= last_cap || clen > 255) {
            e = SW_ENAMETOOLONG;
            goto fail;
        }
        if (!strcmp(comp, ".")) {
            rest[after] = saved;
            pos = k;
            continue;
        }
        if (!strcmp(comp, "..")) {
            if (wk.n == 1) {
                e = SW_ENOTCAPABLE;
                goto fail;
            }
            close(wk.fds[--wk.n]);
            rest[after] = saved;
            pos = k;
            continue;
        }
        if (is_last && !follow_last && !slash) {
            memcpy(last, comp, clen + 1);
            break;
        }
        ssize_t n = readlinkat(cur, comp, link, SW_PATH_MAX);
        if (n >= 0) { /* a symlink: splice its target in front of what remains */
            if (++nlinks > SW_MAX_SYMLINKS) {
                e = SW_ELOOP;
                goto fail;
            }
            if (n >= SW_PATH_MAX - 1) {
                e = SW_ENAMETOOLONG;
                goto fail;
            }
            rest[after] = saved;
            const char *tailp = rest + after; /* "" or "/more/components" */
            size_t tail = strlen(tailp);
            size_t need = (size_t)n + tail + 1;
            char *nrest = malloc(need);
            if (!nrest) {
                e = SW_ENOMEM;
                goto fail;
            }
            memcpy(nrest, link, (size_t)n);
            memcpy(nrest + n, tailp, tail);
            nrest[n + tail] = '\0';
            free(rest);
            rest = nrest;
            pos = 0;
            if (rest[0] == '\0') {
                e = SW_ENOENT;
                goto fail;
            }
            continue;
        }
        if (errno != EINVAL && errno != ENOENT) {
            e = swasi_errno(errno);
            goto fail;
        }
        if (is_last) { /* not a symlink (or absent: the caller may create it) */
            memcpy(last, comp, clen + 1);
            *trailing = slash;
            break;
        }
        if (errno == ENOENT) {
            e = SW_ENOENT;
            goto fail;
        }
        int fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            e = swasi_errno(errno);
            goto fail;
        }
        if ((e = sw_walk_push(&wk, fd)) != SW_ESUCCESS)
            goto fail;
        rest[after] = saved;
        pos = k;
    }
    *dir = fcntl(wk.fds[wk.n - 1], F_DUPFD_CLOEXEC, 0);
    if (*dir < 0)
        e = swasi_errno(errno);
fail:
    if (wk.fds)
        sw_walk_free(&wk);
    free(rest);
    free(link);
    return e;
}

/* --- normalized paths (for state saves) ----------------------------------------------------------- */

char *swasi_path_join(const char *base, const char *rel, int *dotdot) {
    size_t blen = strlen(base), rlen = strlen(rel);
    *dotdot = 0;
    if (rel[0] == '/') /* never reached: the sandbox refuses absolute paths before anything is opened */
        return NULL;
    char *out = malloc(blen + rlen + 3);
    if (!out)
        return NULL;
    /* out holds base's components, then rel's; `floor` marks where rel's begin: a ".." may not pop below
     * it, since the kernel resolved rel beneath the directory and only a symlink could have climbed. */
    size_t n = 0;
    if (strcmp(base, ".") != 0) {
        memcpy(out, base, blen);
        n = blen;
    }
    size_t floor = n;
    for (size_t i = 0; i < rlen;) {
        size_t c = strcspn(rel + i, "/");
        if (c == 0 || (c == 1 && rel[i] == '.')) {
            i += c + 1;
            continue;
        }
        if (c == 2 && rel[i] == '.' && rel[i + 1] == '.') {
            *dotdot = 1;
            if (n == floor) {
                free(out);
                return NULL;
            }
            while (n > floor && out[n - 1] != '/') /* the last component... */
                n--;
            if (n > 0) /* ...and the '/' before it (after a non-empty base, n > floor here) */
                n--;
            i += c + 1;
            continue;
        }
        if (n > 0)
            out[n++] = '/';
        memcpy(out + n, rel + i, c);
        n += c;
        i += c + 1;
    }
    if (n == 0)
        out[n++] = '.';
    out[n] = '\0';
    return out;
}

/* --- the two entry points ------------------------------------------------------------------------ */

uint16_t swasi_path_open(int root, const char *path, int flags, unsigned mode, int follow, int *out) {
    swasi_path_init();
    if (path[0] == '\0')
        return SW_ENOENT;
    if (atomic_load(&sw_openat2))
        return sw_open_beneath(root, path, (uint64_t)(unsigned)(flags | (follow ? 0 : O_NOFOLLOW)), mode, out);
    int dir = -1, trailing = 0;
    char last[256];
    uint16_t e = sw_walk(root, path, follow, &dir, last, sizeof last, &trailing);
    if (e)
        return e;
    int fd = openat(dir, last, flags | O_NOFOLLOW | O_CLOEXEC | (trailing ? O_DIRECTORY : 0), (mode_t)mode);
    if (fd < 0)
        e = swasi_errno(errno);
    close(dir);
    if (!e)
        *out = fd;
    return e;
}

uint16_t swasi_path_parent(int root, const char *path, int *dir, char *last, size_t last_cap, int *trailing_slash) {
    swasi_path_init();
    size_t len = strlen(path);
    *trailing_slash = 0;
    while (len > 1 && path[len - 1] == '/') {
        len--;
        *trailing_slash = 1;
    }
    if (len == 0)
        return SW_ENOENT;
    if (path[0] == '/')
        return SW_ENOTCAPABLE;
    size_t slash = len;
    while (slash > 0 && path[slash - 1] != '/')
        slash--;
    size_t llen = len - slash;
    if (llen >= last_cap || llen > 255)
        return SW_ENAMETOOLONG;
    memcpy(last, path + slash, llen);
    last[llen] = '\0';
    if (!strcmp(last, ".") || !strcmp(last, ".."))
        return SW_EINVAL;
    char *prefix = slash ? strndup(path, slash) : strdup(".");
    if (!prefix)
        return SW_ENOMEM;
    uint16_t e;
    if (atomic_load(&sw_openat2)) {
        e = sw_open_beneath(root, prefix, O_PATH | O_DIRECTORY, 0, dir);
    } else {
        int pdir = -1, tr = 0;
        char plast[256];
        e = sw_walk(root, prefix, 1, &pdir, plast, sizeof plast, &tr);
        if (!e) {
            *dir = openat(pdir, plast, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (*dir < 0)
                e = swasi_errno(errno);
            close(pdir);
        }
    }
    free(prefix);
    return e;
}
