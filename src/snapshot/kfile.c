/* kfile.c: crash-safe file replacement (see kfile.h). */
#include "kfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* fsync of the directory holding path, so that a rename into it survives a power cut. */
static int sync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

shoal_status kfile_write_atomic(const char *path, const struct iovec *iov, int n, shoal_error *err) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 16);
    if (!tmp)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    snprintf(tmp, len + 16, "%s.tmp-XXXXXX", path);
    const char *what = "create a temporary file next to";
    bool created = false;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        goto fail;
    created = true;
    what = "write";
    /* mkstemp makes the file 0600; a snapshot is an ordinary file: 0644 less the umask. */
    mode_t um = umask(0);
    umask(um);
    if (fchmod(fd, 0644 & ~um) || write_all(fd, iov, n))
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
    if (rename(tmp, path))
        goto fail;
    free(tmp);
    /* The new content is in place; a failed directory sync only weakens durability across a power cut. */
    if (sync_dir(path))
        return shoal_error_set(err, SHOAL_ERR_IO, "%s: written, but fsync of its directory failed: %s", path,
                               strerror(errno));
    return SHOAL_OK;
fail:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    free(tmp);
    return shoal_error_set(err, SHOAL_ERR_IO, "cannot %s %s: %s", what, path, strerror(e));
}

shoal_status kfile_read_all(const char *path, uint8_t **out, size_t *size, shoal_error *err) {
    *out = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return shoal_error_set(err, SHOAL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    uint8_t *buf = NULL;
    if (fstat(fd, &sb))
        goto io;
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return shoal_error_set(err, SHOAL_ERR_IO, "%s is not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory reading %s (%zu bytes)", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got < (1u << 30) ? n - got : (1u << 30));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto io;
        if (r == 0)
            break; /* shrank while reading: what we got is checked like any short file */
        got += (size_t)r;
    }
    close(fd);
    *out = buf;
    *size = got;
    return SHOAL_OK;
io:;
    int e = errno;
    close(fd);
    free(buf);
    return shoal_error_set(err, SHOAL_ERR_IO, "cannot read %s: %s", path, strerror(e));
}
