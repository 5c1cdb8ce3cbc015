/*
 * kfile.h: crash-safe file replacement for snapshots.
 *
 * The bytes go to a temporary file in the target's directory (so rename stays within one filesystem),
 * which is fsynced, renamed over the target, and then the directory is fsynced so the rename itself is
 * durable. rename(2) is atomic: whenever the writer dies, a reader of path sees the whole old file or the
 * whole new one. A writer killed before its rename leaves its temporary (path.tmp-XXXXXX) behind; the
 * target is never touched by it.
 */
#ifndef KFILE_H
#define KFILE_H

#include <sys/uio.h>

#include "shoal.h"

/* Writes the n buffers of iov, in order, as the new content of path. SHOAL_ERR_IO with the path and
 * strerror on failure (the temporary is removed; path is unchanged). */
shoal_status kfile_write_atomic(const char *path, const struct iovec *iov, int n, shoal_error *err);
/* The same for the entry `name` (one component, no '/') of the directory dirfd (an O_PATH descriptor is
 * fine); shown is the name for messages. */
shoal_status kfile_write_atomic_at(int dirfd, const char *name, const char *shown, const struct iovec *iov, int n,
                                   shoal_error *err);

/* Reads the whole of path (or of the open file fd, which stays open) into a new buffer (*size bytes;
 * free() it). SHOAL_ERR_IO on failure. */
shoal_status kfile_read_all(const char *path, uint8_t **out, size_t *size, shoal_error *err);
shoal_status kfile_read_fd(int fd, const char *shown, uint8_t **out, size_t *size, shoal_error *err);

#endif
