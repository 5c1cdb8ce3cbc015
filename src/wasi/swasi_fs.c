/*
 * swasi_fs.c: the file-system half of WASI preview1: file status, directory listing and the path_*
 * functions. Every path is resolved beneath the directory fd the guest names (swasi_path.c), so a guest
 * reaches only what lies inside its preopened directories.
 *
 * Rights follow wasi-libc's model: a directory fd's inheriting rights bound what path_open may grant,
 * and each operation needs its right on the fd it uses (ENOTCAPABLE otherwise).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "swasi.h"

static uint64_t sw_ts(const struct timespec *ts) {
    if (ts->tv_sec < 0)
        return 0;
    return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

static void sw_put_filestat(uint8_t *out, const struct stat *sb) {
    memset(out, 0, SW_FILESTAT_SIZE);
    sw_put64(out + 0, (uint64_t)sb->st_dev);
    sw_put64(out + 8, (uint64_t)sb->st_ino);
    out[16] = swasi_filetype(sb->st_mode);
    sw_put64(out + 24, (uint64_t)sb->st_nlink);
    sw_put64(out + 32, (uint64_t)sb->st_size);
    sw_put64(out + 40, sw_ts(&sb->st_atim));
    sw_put64(out + 48, sw_ts(&sb->st_mtim));
    sw_put64(out + 56, sw_ts(&sb->st_ctim));
}

/* fstflags + two timestamps -> the timespec pair of utimensat(2). */
static uint16_t sw_times(uint64_t atim, uint64_t mtim, uint32_t fst, struct timespec ts[2]) {
    if ((fst & ~0xfu) || ((fst & SW_FST_ATIM) && (fst & SW_FST_ATIM_NOW)) ||
        ((fst & SW_FST_MTIM) && (fst & SW_FST_MTIM_NOW)))
        return SW_EINVAL;
    const uint64_t t[2] = {atim, mtim};
    const uint32_t set[2] = {SW_FST_ATIM, SW_FST_MTIM}, now[2] = {SW_FST_ATIM_NOW, SW_FST_MTIM_NOW};
    for (int i = 0; i < 2; i++) {
        if (fst & set[i])
            ts[i] = (struct timespec){.tv_sec = (time_t)(t[i] / 1000000000ull), .tv_nsec = (long)(t[i] % 1000000000ull)};
        else
            ts[i] = (struct timespec){.tv_sec = 0, .tv_nsec = (fst & now[i]) ? UTIME_NOW : UTIME_OMIT};
    }
    return SW_ESUCCESS;
}

/* --- fd_filestat_*, fd_readdir ---------------------------------------------------------------------- */

SW_HOSTFN(swasi_fs_fd_filestat_get) {
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, SW_R_FD_FILESTAT_GET, &e);
    if (!f)
        return SW_RET(e);
    uint8_t *out = shoal_call_mem_array(call, (uint32_t)a[1].i32, 1, SW_FILESTAT_SIZE, 1);
    if (!out)
        return SW_RET(SW_EFAULT);
    struct stat sb;
    if (fstat(f->host, &sb) < 0)
        return SW_RET(swasi_errno(errno));
    sw_put_filestat(out, &sb);
    return SW_RET(SW_ESUCCESS);
}

SW_HOSTFN(swasi_fs_fd_filestat_set_size) {
    (void)call;
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, SW_R_FD_FILESTAT_SET_SIZE, &e);
    if (!f)
        return SW_RET(e);
    if (a[1].i64 < 0)
        return SW_RET(SW_EINVAL);
    return SW_RET(ftruncate(f->host, (off_t)a[1].i64) < 0 ? swasi_errno(errno) : SW_ESUCCESS);
}

SW_HOSTFN(swasi_fs_fd_filestat_set_times) {
    (void)call;
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, SW_R_FD_FILESTAT_SET_TIMES, &e);
    if (!f)
        return SW_RET(e);
    struct timespec ts[2];
    if ((e = sw_times((uint64_t)a[1].i64, (uint64_t)a[2].i64, (uint32_t)a[3].i32 & 0xffff, ts)))
        return SW_RET(e);
    return SW_RET(futimens(f->host, ts) < 0 ? swasi_errno(errno) : SW_ESUCCESS);
}

static uint8_t sw_dirent_type(DIR *d, const struct dirent *de) {
    switch (de->d_type) {
    case DT_REG: return SW_FT_REGULAR_FILE;
    case DT_DIR: return SW_FT_DIRECTORY;
    case DT_LNK: return SW_FT_SYMBOLIC_LINK;
    case DT_CHR: return SW_FT_CHARACTER_DEVICE;
    case DT_BLK: return SW_FT_BLOCK_DEVICE;
    case DT_SOCK: return SW_FT_SOCKET_STREAM;
    case DT_UNKNOWN: {
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0)
            return swasi_filetype(sb.st_mode);
        return SW_FT_UNKNOWN;
    }
    default: return SW_FT_UNKNOWN;
    }
}

/* Cookies are entry indexes: cookie n means "from the n-th entry on". The stream stays open between
 * calls, so listing in order never rewinds; an entry that does not fit is written partially (filling the
 * buffer, which tells wasi-libc to retry with a larger one) and is read again by the next call. */
SW_HOSTFN(swasi_fs_fd_readdir) {
    uint16_t e;
    SWasiFd *f = swasi_fd(user, a[0].i32, SW_R_FD_READDIR, &e);
    if (!f)
        return SW_RET(e);
    uint32_t buf_len = (uint32_t)a[2].i32;
    uint64_t cookie = (uint64_t)a[3].i64;
    uint8_t *buf = shoal_call_mem(call, (uint32_t)a[1].i32, buf_len);
    uint8_t *used_out = shoal_call_mem(call, (uint32_t)a[4].i32, 4);
    if (!buf || !used_out)
        return SW_RET(SW_EFAULT);
    if (f->type != SW_FT_DIRECTORY)
        return SW_RET(SW_ENOTDIR);
    if (!f->dir) {
        int d = openat(f->host, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (d < 0)
            return SW_RET(swasi_errno(errno));
        if (!(f->dir = fdopendir(d))) {
            e = swasi_errno(errno);
            close(d);
            return SW_RET(e);
        }
        f->dir_pos = 0;
    }
    if (cookie != f->dir_pos) {
        rewinddir(f->dir);
        f->dir_pos = 0;
        while (f->dir_pos < cookie && readdir(f->dir))
            f->dir_pos++;
    }
    uint32_t used = 0;
    while (used < buf_len) {
        long loc = telldir(f->dir);
        errno = 0;
        struct dirent *de = readdir(f->dir);
        if (!de) {
            if (errno)
                return SW_RET(swasi_errno(errno));
            break;
        }
        size_t namelen = strlen(de->d_name);
        uint8_t hdr[SW_DIRENT_SIZE] = {0};
        sw_put64(hdr, f->dir_pos + 1);
        sw_put64(hdr + 8, (uint64_t)de->d_ino);
        sw_put32(hdr + 16, (uint32_t)namelen);
        hdr[20] = sw_dirent_type(f->dir, de);
        uint32_t left = buf_len - used;
        uint32_t n = left < SW_DIRENT_SIZE ? left : SW_DIRENT_SIZE;
        memcpy(buf + used, hdr, n);
        used += n;
        left -= n;
        n = left < namelen ? left : (uint32_t)namelen;
        memcpy(buf + used, de->d_name, n);
        used += n;
        if (n < namelen || (left == 0 && namelen > 0)) {
            seekdir(f->dir, loc); /* truncated: the next call starts with this entry again */
            break;
        }
        f->dir_pos++;
    }
    sw_put32(used_out, used);
    return SW_RET(SW_ESUCCESS);
}

/* --- path_* ------------------------------------------------------------------------------------------- */

/* The directory fd (with `need` rights) and the guest path of a path_* call. */
static SWasiFd *sw_dir_path(shoal_call *call, shoal_wasi *w, int32_t fd, uint64_t need, uint32_t ptr, uint32_t len,
                            char *path, uint16_t *e) {
    SWasiFd *f = swasi_fd(w, fd, need, e);
    if (!f)
        return NULL;
    if (f->type != SW_FT_DIRECTORY) {
        *e = SW_ENOTDIR;
        return NULL;
    }
    if ((*e = swasi_guest_path(call, ptr, len, path, SW_PATH_MAX)))
        return NULL;
    return f;
}

/* Where a file that path_open just opened (sb: its status) lies beneath the preopen `dir` descends from,
 * as a normalized path (*out, owned; NULL when it cannot be known: the fd then cannot be carried by a
 * state save, which says so). A path that used ".." is checked against the object actually opened: a
 * symlink before the ".." can make the lexical form name another file. Returns ENOMEM only. */
static uint16_t sw_open_path(const SWasiFd *dir, const char *path, int follow, const struct stat *sb, char **out) {
    *out = NULL;
    if (dir->origin < 0 || !dir->path)
        return SW_ESUCCESS;
    int dotdot = 0;
    char *rel = swasi_path_join(".", path, &dotdot);
    if (!rel)
        return SW_ESUCCESS; /* unknown, or out of memory: a save reports the fd as not carriable */
    if (dotdot) {
        int fd = -1;
        struct stat vb;
        int same = swasi_path_open(dir->host, rel, O_PATH, 0, follow, &fd) == SW_ESUCCESS && fstat(fd, &vb) == 0 &&
                   vb.st_dev == sb->st_dev && vb.st_ino == sb->st_ino;
        if (fd >= 0)
            close(fd);
        if (!same) {
            free(rel);
            return SW_ESUCCESS;
        }
    }
    *out = swasi_path_join(dir->path, rel, &dotdot);
    free(rel);
    return *out ? SW_ESUCCESS : SW_ENOMEM;
}

SW_HOSTFN(swasi_fs_path_open) {
    shoal_wasi *w = user;
    char path[SW_PATH_MAX];
    uint32_t oflags = (uint32_t)a[4].i32 & 0xffff, fdflags = (uint32_t)a[7].i32 & 0xffff;
    uint64_t need = SW_R_PATH_OPEN | ((oflags & SW_O_CREAT) ? SW_R_PATH_CREATE_FILE : 0) |
                    ((oflags & SW_O_TRUNC) ? SW_R_PATH_FILESTAT_SET_SIZE : 0);
    uint16_t e;
    SWasiFd *dir = sw_dir_path(call, w, a[0].i32, need, (uint32_t)a[2].i32, (uint32_t)a[3].i32, path, &e);
    if (!dir)
        return SW_RET(e);
    uint8_t *out = shoal_call_mem(call, (uint32_t)a[8].i32, 4);
    if (!out)
        return SW_RET(SW_EFAULT);
    if ((oflags & ~0xfu) || ((oflags & SW_O_DIRECTORY) && (oflags & (SW_O_CREAT | SW_O_TRUNC))))
        return SW_RET(SW_EINVAL);
    /* Rights never grow through a directory: what was asked, bounded by the directory's inheriting set. */
    uint64_t base = (uint64_t)a[5].i64 & dir->rights_inh, inh = (uint64_t)a[6].i64 & dir->rights_inh;
    int rd = (base & (SW_R_FD_READ | SW_R_FD_READDIR)) != 0;
    int wr = (base & (SW_R_FD_WRITE | SW_R_FD_ALLOCATE | SW_R_FD_FILESTAT_SET_SIZE)) != 0 ||
             (oflags & SW_O_TRUNC) || (fdflags & SW_FDFLAG_APPEND);
    /* O_NOCTTY: a terminal opened by the guest must never become the host process's controlling tty. */
    int flags = ((wr && !(oflags & SW_O_DIRECTORY)) ? (rd ? O_RDWR : O_WRONLY) : O_RDONLY) | O_NOCTTY;
    flags |= ((oflags & SW_O_CREAT) ? O_CREAT : 0) | ((oflags & SW_O_EXCL) ? O_EXCL : 0) |
             ((oflags & SW_O_TRUNC) ? O_TRUNC : 0) | ((oflags & SW_O_DIRECTORY) ? O_DIRECTORY : 0) |
             ((fdflags & SW_FDFLAG_APPEND) ? O_APPEND : 0) | ((fdflags & SW_FDFLAG_NONBLOCK) ? O_NONBLOCK : 0) |
             ((fdflags & SW_FDFLAG_DSYNC) ? O_DSYNC : 0) | ((fdflags & SW_FDFLAG_SYNC) ? O_SYNC : 0) |
             ((fdflags & SW_FDFLAG_RSYNC) ? O_RSYNC : 0);
    int host = -1;
    if ((e = swasi_path_open(dir->host, path, flags, 0666, (uint32_t)a[1].i32 & SW_LOOKUP_SYMLINK_FOLLOW, &host)))
        return SW_RET(e);
    struct stat sb;
    if (fstat(host, &sb) < 0) {
        e = swasi_errno(errno);
        close(host);
        return SW_RET(e);
    }
    uint8_t type = swasi_filetype(sb.st_mode);
    base &= type == SW_FT_DIRECTORY ? SW_R_DIR : SW_R_FILE;
    int follow = (uint32_t)a[1].i32 & SW_LOOKUP_SYMLINK_FOLLOW;
    char *where = NULL; /* the path beneath the preopen, for a state save; NULL: not known */
    if ((e = sw_open_path(dir, path, follow, &sb, &where))) {
        close(host);
        return SW_RET(e);
    }
    uint32_t slot;
    if ((e = swasi_fd_alloc(w, host, type, base, inh, &slot))) {
        free(where);
        return SW_RET(e);
    }
    SWasiFd *f = &w->fds[slot];
    /* the sync flags too: fd_fdstat_get reports them, and a state load reopens with them */
    f->flags = (uint16_t)(fdflags & (SW_FDFLAG_APPEND | SW_FDFLAG_NONBLOCK | SW_FDFLAG_DSYNC | SW_FDFLAG_RSYNC |
                                     SW_FDFLAG_SYNC));
    f->origin = where ? dir->origin : -1;
    f->path = where;
    f->follow = (uint8_t)(follow != 0);
    sw_put32(out, slot);
    return SW_RET(SW_ESUCCESS);
}

SW_HOSTFN(swasi_fs_path_filestat_get) {
    char path[SW_PATH_MAX];
    uint16_t e;
    SWasiFd *dir = sw_dir_path(call, user, a[0].i32, SW_R_PATH_FILESTAT_GET, (uint32_t)a[2].i32, (uint32_t)a[3].i32,
                               path, &e);
    if (!dir)
        return SW_RET(e);
    uint8_t *out = shoal_call_mem_array(call, (uint32_t)a[4].i32, 1, SW_FILESTAT_SIZE, 1);
    if (!out)
        return SW_RET(SW_EFAULT);
    int fd = -1;
    if ((e = swasi_path_open(dir->host, path, O_PATH, 0, (uint32_t)a[1].i32 & SW_LOOKUP_SYMLINK_FOLLOW, &fd)))
        return SW_RET(e);
    struct stat sb;
    e = fstat(fd, &sb) < 0 ? swasi_errno(errno) : SW_ESUCCESS;
    close(fd);
    if (!e)
        sw_put_filestat(out, &sb);
    return SW_RET(e);
}

SW_HOSTFN(swasi_fs_path_filestat_set_times) {
    char path[SW_PATH_MAX];
    uint16_t e;
    SWasiFd *dir = sw_dir_path(call, user, a[0].i32, SW_R_PATH_FILESTAT_SET_TIMES, (uint32_t)a[2].i32,
                               (uint32_t)a[3].i32, path, &e);
    if (!dir)
        return SW_RET(e);
    struct timespec ts[2];
    if ((e = sw_times((uint64_t)a[4].i64, (uint64_t)a[5].i64, (uint32_t)a[6].i32 & 0xffff, ts)))
        return SW_RET(e);
    int fd = -1;
    if ((e = swasi_path_open(dir->host, path, O_PATH, 0, (uint32_t)a[1].i32 & SW_LOOKUP_SYMLINK_FOLLOW, &fd)))
        return SW_RET(e);
    /* On the O_PATH fd itself: the object resolved beneath the directory, never a path looked up again. */
    e = utimensat(fd, "", ts, AT_EMPTY_PATH) < 0 ? swasi_errno(errno) : SW_ESUCCESS;
    close(fd);
    return SW_RET(e);
}

/* Resolves the parent of a path_* argument; the caller closes *pdir when the result is success. */
static uint16_t sw_parent(shoal_call *call, shoal_wasi *w, int32_t fd, uint64_t need, uint32_t ptr, uint32_t len,
                          int *pdir, char *last, int *trailing) {
    char path[SW_PATH_MAX];
    uint16_t e;
    SWasiFd *dir = sw_dir_path(call, w, fd, need, ptr, len, path, &e);
    if (!dir)
        return e;
    return swasi_path_parent(dir->host, path, pdir, last, 256, trailing);
}

SW_HOSTFN(swasi_fs_path_create_directory) {
    char last[256];
    int d, tr;
    uint16_t e = sw_parent(call, user, a[0].i32, SW_R_PATH_CREATE_DIRECTORY, (uint32_t)a[1].i32, (uint32_t)a[2].i32,
                           &d, last, &tr);
    if (e)
        return SW_RET(e == SW_EINVAL ? SW_EEXIST : e); /* "." and ".." exist */
    e = mkdirat(d, last, 0777) < 0 ? swasi_errno(errno) : SW_ESUCCESS;
    close(d);
    return SW_RET(e);
}

SW_HOSTFN(swasi_fs_path_remove_directory) {
    char last[256];
    int d, tr;
    uint16_t e = sw_parent(call, user, a[0].i32, SW_R_PATH_REMOVE_DIRECTORY, (uint32_t)a[1].i32, (uint32_t)a[2].i32,
                           &d, last, &tr);
    if (e)
        return SW_RET(e);
    e = unlinkat(d, last, AT_REMOVEDIR) < 0 ? swasi_errno(errno) : SW_ESUCCESS;
    close(d);
    return SW_RET(e);
}

SW_HOSTFN(swasi_fs_path_unlink_file) {
    char last[256];
    int d, tr;
    uint16_t e = sw_parent(call, user, a[0].i32, SW_R_PATH_UNLINK_FILE, (uint32_t)a[1].i32, (uint32_t)a[2].i32, &d,
                           last, &tr);
    if (e)
        return SW_RET(e);
    struct stat sb;
    if (tr) /* "name/" names a directory: never a file to unlink */
        e = fstatat(d, last, &sb, AT_SYMLINK_NOFOLLOW) < 0 ? swasi_errno(errno)
            : S_ISDIR(sb.st_mode)                          ? SW_EISDIR
                                                           : SW_ENOTDIR;
    else
        e = unlinkat(d, last, 0) < 0 ? swasi_errno(errno) : SW_ESUCCESS;
    close(d);
    return SW_RET(e);
}

/* After the guest renamed src (beneath dir fd a) to dst (beneath b): open fds recorded at src or beneath
 * it now live at dst, so that a state save can still name them. Only lexical paths without ".." are
 * followed; anything else keeps its old path, and a save (which checks every path against the object)
 * then refuses that fd rather than reopening the wrong file. */
static void sw_rename_track(shoal_wasi *w, const SWasiFd *a, const char *src, const SWasiFd *b, const char *dst) {
    if (a->origin < 0 || !a->path || a->origin != b->origin || !b->path)
        return;
    int32_t origin = a->origin;
    int dd1 = 0, dd2 = 0;
    char *from = swasi_path_join(a->path, src, &dd1), *to = swasi_path_join(b->path, dst, &dd2);
    if (from && to && !dd1 && !dd2 && strcmp(from, ".") != 0) {
        size_t n = strlen(from), tn = strlen(to);
        for (uint32_t i = 0; i < w->nfds; i++) {
            SWasiFd *f = &w->fds[i];
            if (f->host < 0 || f->origin != origin || !f->path || strncmp(f->path, from, n) != 0 ||
                (f->path[n] != '\0' && f->path[n] != '/'))
                continue;
            size_t rest = strlen(f->path + n);
            char *np = malloc(tn + rest + 1);
            if (!np)
                continue; /* the old path stays: a save refuses this fd instead */
            memcpy(np, to, tn);
            memcpy(np + tn, f->path + n, rest + 1);
            free(f->path);
            f->path = np;
        }
    }
    free(from);
    free(to);
}

SW_HOSTFN(swasi_fs_path_rename) {
    char last1[256], last2[256];
    int d1 = -1, d2 = -1, tr1, tr2;
    uint16_t e = sw_parent(call, user, a[0].i32, SW_R_PATH_RENAME_SOURCE, (uint32_t)a[1].i32, (uint32_t)a[2].i32,
                           &d1, last1, &tr1);
    if (e)
        return SW_RET(e);
    e = sw_parent(call, user, a[3].i32, SW_R_PATH_RENAME_TARGET, (uint32_t)a[4].i32, (uint32_t)a[5].i32, &d2, last2,
                  &tr2);
    if (e)
        goto done;
    struct stat sb;
    if ((tr1 || tr2) && (fstatat(d1, last1, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sb.st_mode))) {
        e = errno == ENOENT ? SW_ENOENT : SW_ENOTDIR;
        goto done;
    }
    e = renameat(d1, last1, d2, last2) < 0 ? swasi_errno(errno) : SW_ESUCCESS;
    if (!e) {
        shoal_wasi *w = user;
        char *src = malloc(SW_PATH_MAX), *dst = malloc(SW_PATH_MAX);
        if (src && dst && !swasi_guest_path(call, (uint32_t)a[1].i32, (uint32_t)a[2].i32, src, SW_PATH_MAX) &&
            !swasi_guest_path(call, (uint32_t)a[4].i32, (uint32_t)a[5].i32, dst, SW_PATH_MAX))
            sw_rename_track(w, &w->fds[a[0].i32], src, &w->fds[a[3].i32], dst);
        free(src);
        free(dst);
    }
done:
    close(d1);
    if (d2 >= 0)
        close(d2);
    return SW_RET(e);
}

SW_HOSTFN(swasi_fs_path_symlink) {
    char target[SW_PATH_MAX], last[256];
    uint16_t e = swasi_guest_path(call, (uint32_t)a[0].i32, (uint32_t)a[1].i32, target, sizeof target);
    if (e)
        return SW_RET(e);
    /* An absolute target could only ever be refused when followed; refuse making it in the first place. */
    if (target[0] == '/')
        return SW_RET(SW_ENOTCAPABLE);
    int d, tr;
    if ((e = sw_parent(call, user, a[2].i32, SW_R_PATH_SYMLINK, (uint32_t)a[3].i32, (uint32_t)a[4].i32, &d, last, &tr)))
        return SW_RET(e);
    e = symlinkat(target, d, last) < 0 ? swasi_errno(errno) : SW_ESUCCESS;
    close(d);
    return SW_RET(e);
}

SW_HOSTFN(swasi_fs_path_readlink) {
    char last[256];
    uint32_t buf_len = (uint32_t)a[4].i32;
    uint8_t *buf = shoal_call_mem(call, (uint32_t)a[3].i32, buf_len);
    uint8_t *used = shoal_call_mem(call, (uint32_t)a[5].i32, 4);
    if (!buf || !used)
        return SW_RET(SW_EFAULT);
    int d, tr;
    uint16_t e = sw_parent(call, user, a[0].i32, SW_R_PATH_READLINK, (uint32_t)a[1].i32, (uint32_t)a[2].i32, &d,
                           last, &tr);
    if (e)
        return SW_RET(e);
    char *tmp = malloc(SW_PATH_MAX);
    ssize_t n = tmp ? readlinkat(d, last, tmp, SW_PATH_MAX) : -1;
    e = !tmp ? SW_ENOMEM : n < 0 ? swasi_errno(errno) : SW_ESUCCESS;
    close(d);
    if (!e) {
        uint32_t k = (uint64_t)n < buf_len ? (uint32_t)n : buf_len; /* truncated like readlink(2) */
        memcpy(buf, tmp, k);
        sw_put32(used, k);
    }
    free(tmp);
    return SW_RET(e);
}

SW_HOSTFN(swasi_fs_path_link) {
    char last1[256], last2[256];
    int d1 = -1, d2 = -1, tr1, tr2, src = -1;
    uint16_t e = sw_parent(call, user, a[0].i32, SW_R_PATH_LINK_SOURCE, (uint32_t)a[2].i32, (uint32_t)a[3].i32, &d1,
                           last1, &tr1);
    if (e)
        return SW_RET(e);
    e = sw_parent(call, user, a[4].i32, SW_R_PATH_LINK_TARGET, (uint32_t)a[5].i32, (uint32_t)a[6].i32, &d2, last2, &tr2);
    if (e)
        goto done;
    if ((uint32_t)a[1].i32 & SW_LOOKUP_SYMLINK_FOLLOW) {
        /* Follow the source beneath its directory, then link the object itself (never a re-resolved path). */
        if ((e = swasi_path_open(d1, last1, O_PATH, 0, 1, &src)))
            goto done;
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", src);
        if (linkat(src, "", d2, last2, AT_EMPTY_PATH) < 0 &&
            ((errno != ENOENT && errno != EPERM) || linkat(AT_FDCWD, proc, d2, last2, AT_SYMLINK_FOLLOW) < 0))
            e = swasi_errno(errno);
    } else {
        e = linkat(d1, last1, d2, last2, 0) < 0 ? swasi_errno(errno) : SW_ESUCCESS;
    }
done:
    close(d1);
    if (d2 >= 0)
        close(d2);
    if (src >= 0)
        close(src);
    return SW_RET(e);
}
