/*
 * nsnap.c: shoal_llm `save` and `restore` (snapshots of a guest's session, src/snapshot) confined to the
 * guest's directories.
 *
 * The guest names a file as WASI's path_open does: a directory fd it holds (a preopen, or a directory it
 * opened beneath one) and a relative path. Resolution goes through the WASI implementation's own
 * confined walk (swasi_path_parent / swasi_path_open: no "..", absolute path or symlink leaves the
 * directory) and needs the rights path_open would: PATH_OPEN to read, plus PATH_CREATE_FILE to write. The
 * host never opens a guest-named path by itself. A session is fully described by what is saved: its
 * tokens (g->kv), KV rows, sampler parameters and state, and logits when they are fresh.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ksnap.h"
#include "nn.h"
#include "swasi.h"

enum { LL_EINVAL = -1, LL_EHANDLE = -3, LL_ENOMEM = -5, LL_EDEVICE = -8, LL_EIO = -11, LL_ESNAPSHOT = -12 };

void shoal_nn_ctx_set_wasi(shoal_nn_ctx *ctx, shoal_wasi *wasi) {
    ctx->wasi = wasi;
}

static int32_t snap_code(shoal_status st) {
    switch (st) {
    case SHOAL_ERR_IO: return LL_EIO;
    case SHOAL_ERR_ARG:
    case SHOAL_ERR_FORMAT: return LL_ESNAPSHOT;
    case SHOAL_ERR_NOMEM: return LL_ENOMEM;
    case SHOAL_ERR_DEVICE: return LL_EDEVICE;
    default: return LL_EINVAL;
    }
}

/* The guest's directory fd and path: on success the path is in path (NUL-terminated). */
static int32_t guest_dir(shoal_nn_ctx *c, shoal_call *call, const char *fn, int32_t fd, uint64_t need,
                         uint32_t ptr, uint32_t len, SWasiFd **dir, char *path, size_t cap) {
    if (!c->wasi)
        return nn_fail(c, LL_EIO, "%s: the guest has no WASI directories (the embedder did not give any)", fn);
    uint16_t e;
    *dir = swasi_fd(c->wasi, fd, need, &e);
    if (!*dir)
        return nn_fail(c, LL_EIO, "%s: fd %d is not a directory the guest may %s in (WASI errno %u)", fn, fd,
                       need & SW_R_PATH_CREATE_FILE ? "create files" : "open files", e);
    if ((*dir)->type != SW_FT_DIRECTORY)
        return nn_fail(c, LL_EIO, "%s: fd %d is not a directory", fn, fd);
    if ((e = swasi_guest_path(call, ptr, len, path, cap)))
        return nn_fail(c, e == SW_EFAULT ? -2 : LL_EINVAL, "%s: bad path (WASI errno %u)", fn, e);
    return 0;
}

/* save(h, dirfd, path, path_len) -> 0 */
static shoal_status ll_save(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    shoal_nn_ctx *c = user;
    ngen *g = nn_session(c, a[0].i32);
    if (!g) {
        r[0].i32 = nn_fail(c, LL_EHANDLE, "save: %d is not an open session", a[0].i32);
        return SHOAL_OK;
    }
    char path[4096], last[256];
    SWasiFd *dir;
    int32_t rc = guest_dir(c, call, "save", a[1].i32, SW_R_PATH_OPEN | SW_R_PATH_CREATE_FILE, (uint32_t)a[2].i32,
                           (uint32_t)a[3].i32, &dir, path, sizeof path);
    int pdir = -1, trailing = 0;
    uint16_t e;
    if (!rc && (e = swasi_path_parent(dir->host, path, &pdir, last, sizeof last, &trailing)))
        rc = nn_fail(c, LL_EIO, "save: %s: cannot resolve inside the directory (WASI errno %u)", path, e);
    if (!rc && trailing)
        rc = nn_fail(c, LL_EIO, "save: %s names a directory", path);
    if (!rc) {
        shoal_snapshot_save_opts o = {g->kv, ngen_position(g), g->sampler, g->have_logits ? g->logits : NULL};
        shoal_error err = {0};
        shoal_status st = ksnap_save_at(g->sess, pdir, last, path, &o, &err);
        rc = st ? nn_fail(c, snap_code(st), "save: %s", err.message) : 0;
    }
    if (pdir >= 0)
        close(pdir);
    r[0].i32 = rc;
    return SHOAL_OK;
}

/* restore(h, dirfd, path, path_len) -> the restored position */
static shoal_status ll_restore(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    shoal_nn_ctx *c = user;
    ngen *g = nn_session(c, a[0].i32);
    if (!g) {
        r[0].i32 = nn_fail(c, LL_EHANDLE, "restore: %d is not an open session", a[0].i32);
        return SHOAL_OK;
    }
    char path[4096];
    SWasiFd *dir;
    int32_t rc = guest_dir(c, call, "restore", a[1].i32, SW_R_PATH_OPEN, (uint32_t)a[2].i32, (uint32_t)a[3].i32,
                           &dir, path, sizeof path);
    int fd = -1;
    uint16_t e;
    if (!rc && (e = swasi_path_open(dir->host, path, O_RDONLY | O_CLOEXEC, 0, 1, &fd)))
        rc = nn_fail(c, LL_EIO, "restore: cannot open %s (WASI errno %u)", path, e);
    if (!rc) {
        shoal_sampler *fresh = NULL;
        /* g->kv holds n_ctx + 1 ids; a snapshot's tokens beyond its positions (none from save) are dropped. */
        shoal_snapshot_restored out = {.tokens = g->kv, .tokens_cap = g->n_ctx + 1, .new_sampler = &fresh,
                                       .logits = g->logits};
        shoal_error err = {0};
        shoal_status st = ksnap_restore_fd(g->sess, fd, path, &out, &err);
        if (st) {
            rc = nn_fail(c, snap_code(st), "restore: %s", err.message);
            if (st == SHOAL_ERR_DEVICE)
                g->have_logits = false; /* the session was reset */
        } else {
            if (fresh) {
                shoal_sampler_free(g->sampler);
                g->sampler = fresh;
                g->sp = out.sampler_params;
            }
            g->have_logits = out.has_logits;
            rc = (int32_t)out.n_positions;
        }
    }
    if (fd >= 0)
        close(fd);
    r[0].i32 = rc;
    return SHOAL_OK;
}

shoal_status nsnap_add_imports(shoal_nn_ctx *ctx, shoal_imports *imports, shoal_error *err) {
    shoal_status st = shoal_imports_add_func(imports, "shoal_llm", "save", "iiii:i", ll_save, ctx, err);
    return st ? st : shoal_imports_add_func(imports, "shoal_llm", "restore", "iiii:i", ll_restore, ctx, err);
}
