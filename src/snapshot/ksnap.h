/*
 * ksnap.h: KV snapshots (shoal.h section 10) on descriptors, for callers that resolve names themselves:
 * the guest API (src/nn) saves and restores only inside a guest's preopened directories, with paths
 * resolved the way WASI resolves them.
 */
#ifndef KSNAP_H
#define KSNAP_H

#include <sys/uio.h>

#include "shoal.h"

/* Saves to the entry `name` (one component) of directory dirfd; dirfd < 0: name is an ordinary path.
 * shown names the file in messages. */
shoal_status ksnap_save_at(shoal_session *session, int dirfd, const char *name, const char *shown,
                           const shoal_snapshot_save_opts *opts, shoal_error *err);
/* Restores from the open regular file fd (left open); shown names it in messages. */
shoal_status ksnap_restore_fd(shoal_session *session, int fd, const char *shown, shoal_snapshot_restored *out,
                              shoal_error *err);

/* The in-memory form, for actor state (src/nn/nstate.c): exactly the bytes a file holds, shared with the
 * file path above. encode: iov[0] the header, iov[1] the data, each malloc'd (free both iov_base; both
 * NULL on failure). restore_mem: from the bytes p[0..len), with every check a file restore makes (a
 * refused restore leaves the session as it was); shown names the bytes in messages. */
shoal_status ksnap_encode(shoal_session *session, const shoal_snapshot_save_opts *opts, struct iovec iov[2],
                          shoal_error *err);
shoal_status ksnap_restore_mem(shoal_session *session, const uint8_t *p, size_t len, const char *shown,
                               shoal_snapshot_restored *out, shoal_error *err);

#endif
