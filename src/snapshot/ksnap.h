/*
 * ksnap.h: KV snapshots (shoal.h section 10) on descriptors, for callers that resolve names themselves:
 * the guest API (src/nn) saves and restores only inside a guest's preopened directories, with paths
 * resolved the way WASI resolves them.
 */
#ifndef KSNAP_H
#define KSNAP_H

#include "shoal.h"

/* Saves to the entry `name` (one component) of directory dirfd; dirfd < 0: name is an ordinary path.
 * shown names the file in messages. */
shoal_status ksnap_save_at(shoal_session *session, int dirfd, const char *name, const char *shown,
                           const shoal_snapshot_save_opts *opts, shoal_error *err);
/* Restores from the open regular file fd (left open); shown names it in messages. */
shoal_status ksnap_restore_fd(shoal_session *session, int fd, const char *shown, shoal_snapshot_restored *out,
                              shoal_error *err);

#endif
