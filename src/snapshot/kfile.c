/* kfile.c: crash-safe file replacement (see kfile.h). */
#include "kfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Writes everything, resuming after short writes and signals. */
static int write_all(int fd, const struct iovec *iov, int n) {
    for (int i = 0; i < n; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left) {
            ssize_t w = write(fd, p, left < (1u << 30) ? left : (1u << 30));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -1;
            p += w;
            left -= (size_t)w;
        }
    }
    return 0;
}

/* Creates name.tmp-XXXXXX in dirfd (O_EXCL: never an existing file); *tmp gets its name. */
static int make_temp(int dirfd, const char *name, char *tmp, size_t cap) {
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)tmp;
    mode_t um = umask(0);
    umask(um);
    for (int tries = 0; tries < 100; tries++) {
        char suffix[7];
        for (int i = 0; i < 6; i++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            suffix[i] = digits[(x >> 33) % 36];
        }
        suffix[6] = 0;
        if ((size_t)snprintf(tmp, cap, "%s.tmp-%s", name, suffix) >= cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644 & ~um);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

shoal_status kfile_write_atomic_at(int dirfd, const char *name, const char *shown, const struct iovec *iov, int n,
                                   shoal_error *err) {
    char tmp[4096];
    const char *what = "create a temporary file next to";
    bool created = false;
    int fd = make_temp(dirfd, name, tmp, sizeof tmp);
    if (fd < 0)
        goto fail;
    created = true;
    what = "write";
    if (write_all(fd, iov, n))
        goto fail;
    what = "fsync";
    if (fsync(fd))
        goto fail;
    int fd2 = fd;
    fd = -1;
    what = "close";
    if (close(fd2))
        goto fail;
    what = "rename the temporary file onto";
    if (renameat(dirfd, tmp, dirfd, name))
        goto fail;
    /* The new content is in place. The directory sync makes the rename survive a power cut (an O_PATH
     * dirfd cannot be fsynced itself: open the directory for it). */
    int d = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0 || fsync(d)) {
        int e = errno;
        if (d >= 0)
            close(d);
        return shoal_error_set(err, SHOAL_ERR_IO, "%s: written, but fsync of its directory failed: %s", shown,
                               strerror(e));
    }
    close(d);
    return SHOAL_OK;
fail:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (created)
        unlinkat(dirfd, tmp, 0);
    return shoal_error_set(err, SHOAL_ERR_IO, "cannot %s %s: %s", what, shown, strerror(e));
}

shoal_status kfile_write_atomic(const char *path, const struct iovec *iov, int n, shoal_error *err) {
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    if (!*name) {
        free(dir);
        return shoal_error_set(err, SHOAL_ERR_ARG, "%s names a directory, not a file", path);
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        int e = errno;
        shoal_status st = shoal_error_set(err, SHOAL_ERR_IO, "cannot write %s: directory %s: %s", path, dir,
                                          strerror(e));
        free(dir);
        return st;
    }
    free(dir);
    shoal_status st = kfile_write_atomic_at(dfd, name, path, iov, n, err);
    close(dfd);
    return st;
}

shoal_status kfile_read_fd(int fd, const char *shown, uint8_t **out, size_t *size, shoal_error *err) {
    *out = NULL;
    *size = 0;
    struct stat sb;
    if (fstat(fd, &sb))
        return shoal_error_set(err, SHOAL_ERR_IO, "cannot read %s: %s", shown, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return shoal_error_set(err, SHOAL_ERR_IO, "%s is not a regular file", shown);
    size_t n = (size_t)sb.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory reading %s (%zu bytes)", shown, n);
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got < (1u << 30) ? n - got : (1u << 30), (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return shoal_error_set(err, SHOAL_ERR_IO, "cannot read %s: %s", shown, strerror(e));
        }
        if (r == 0)
            break; /* shrank while reading: what we got is checked like any short file */
        got += (size_t)r;
    }
    *out = buf;
    *size = got;
    return SHOAL_OK;
}

shoal_status kfile_read_all(const char *path, uint8_t **out, size_t *size, shoal_error *err) {
    *out = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return shoal_error_set(err, SHOAL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    shoal_status st = kfile_read_fd(fd, path, out, size, err);
    close(fd);
    return st;
}
