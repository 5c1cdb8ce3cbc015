/*
 * ttensor.c: the `shoal_tensor` host module. Guests name tensors by handle; a handle remembers a view
 * (offset, dtype, shape) of the guest's memory. Each operation re-derives the host pointer from the
 * caller's memory and checks it, so a view is never trusted past the moment it is used.
 *
 * Errors never reach the host: every failure becomes a negative code for the guest plus a message
 * readable with `last_error`.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_guest.h"
#include "tdevice.h"

#define TT_MAX_HANDLES (1u << 20)

typedef struct tentry {
    bool live;
    uint32_t offset;
    tview view; /* view.host is refreshed at every use */
} tentry;

struct shoal_tensor_ctx {
    shoal_device *device;
    tentry *entries; /* handle h lives at entries[h - 1] */
    uint32_t nentries, capacity;
    uint32_t free_hint;
    char last_error[512];
};


static int32_t tt_fail(shoal_tensor_ctx *ctx, int32_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int32_t tt_fail(shoal_tensor_ctx *ctx, int32_t code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->last_error, sizeof ctx->last_error, fmt, ap);
    va_end(ap);
    return code;
}

static int32_t tt_status_code(shoal_tensor_ctx *ctx, shoal_status st, const shoal_error *err) {
    snprintf(ctx->last_error, sizeof ctx->last_error, "%s", err->message);
    if (st == SHOAL_ERR_NOMEM) return SHOAL_TENSOR_ENOMEM;
    if (st == SHOAL_ERR_ARG) return SHOAL_TENSOR_EINVAL;
    return SHOAL_TENSOR_EDEVICE;
}

shoal_status shoal_tensor_ctx_new(shoal_device *device, shoal_tensor_ctx **out, shoal_error *err) {
    *out = NULL;
    if (!device) return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_tensor_ctx_new: no device");
    shoal_tensor_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    ctx->device = device;
    *out = ctx;
    return SHOAL_OK;
}

void shoal_tensor_ctx_free(shoal_tensor_ctx *ctx) {
    if (!ctx) return;
    tdevice *d = ctx->device->impl;
    shoal_error err;
    d->sync(d, &err); /* nothing may still be writing into memory we stop tracking */
    for (uint32_t i = 0; i < ctx->nentries; i++)
        if (ctx->entries[i].live && ctx->entries[i].view.resident) d->release(d, &ctx->entries[i].view);
    free(ctx->entries);
    free(ctx);
}

/* --- handles ------------------------------------------------------------------------------------ */

static int32_t tt_new_handle(shoal_tensor_ctx *ctx, tentry **out) {
    for (uint32_t i = ctx->free_hint; i < ctx->nentries; i++) {
        if (!ctx->entries[i].live) {
            ctx->free_hint = i + 1;
            *out = &ctx->entries[i];
            return (int32_t)(i + 1);
        }
    }
    if (ctx->nentries == ctx->capacity) {
        if (ctx->capacity >= TT_MAX_HANDLES)
            return tt_fail(ctx, SHOAL_TENSOR_ENOMEM, "too many live tensor handles (%u)", TT_MAX_HANDLES);
        uint32_t cap = ctx->capacity ? ctx->capacity * 2 : 64;
        tentry *e = realloc(ctx->entries, (size_t)cap * sizeof *e);
        if (!e) return tt_fail(ctx, SHOAL_TENSOR_ENOMEM, "out of host memory for tensor handles");
        ctx->entries = e;
        ctx->capacity = cap;
    }
    uint32_t i = ctx->nentries++;
    ctx->free_hint = ctx->nentries;
    *out = &ctx->entries[i];
    return (int32_t)(i + 1);
}

/* Resolves a handle and points its view at the caller's memory, checking the bytes are all there. */
static int32_t tt_resolve(shoal_tensor_ctx *ctx, shoal_call *call, int32_t h, tview **out) {
    if (h <= 0 || (uint32_t)h > ctx->nentries || !ctx->entries[h - 1].live)
        return tt_fail(ctx, SHOAL_TENSOR_EHANDLE, "%d is not a live tensor handle", h);
    tentry *e = &ctx->entries[h - 1];
    if (e->view.nbytes > UINT32_MAX)
        return tt_fail(ctx, SHOAL_TENSOR_EBOUNDS, "tensor %d is larger than guest memory", h);
    uint8_t *p = shoal_call_mem(call, e->offset, (uint32_t)e->view.nbytes);
    if (!p)
        return tt_fail(ctx, SHOAL_TENSOR_EBOUNDS, "tensor %d [%u, +%llu) lies outside guest memory", h, e->offset,
                       (unsigned long long)e->view.nbytes);
    e->view.host = p;
    *out = &e->view;
    return 0;
}

static bool tt_same_shape(const tview *a, const tview *b) {
    if (a->ndim != b->ndim) return false;
    for (uint32_t i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

static bool tt_overlap(const tview *a, const tview *b) {
    return a->host < b->host + b->nbytes && b->host < a->host + a->nbytes;
}

/* --- host functions ----------------------------------------------------------------------------- */

static shoal_status tt_view(shoal_call *call, const shoal_val *args, shoal_val *res, void *user) {
    shoal_tensor_ctx *ctx = user;
    uint32_t offset = (uint32_t)args[0].i32;
    int32_t dtype = args[1].i32, ndim = args[2].i32;
    uint32_t dims_ptr = (uint32_t)args[3].i32;
    if (dtype < 0 || dtype >= TD_COUNT) {
        res[0].i32 = tt_fail(ctx, SHOAL_TENSOR_EINVAL, "unknown dtype %d", dtype);
        return SHOAL_OK;
    }
    if (ndim < 1 || ndim > TD_MAX_DIMS) {
        res[0].i32 = tt_fail(ctx, SHOAL_TENSOR_EINVAL, "ndim %d is not in 1..%d", ndim, TD_MAX_DIMS);
        return SHOAL_OK;
    }
    const uint8_t *dims = shoal_call_mem_array(call, dims_ptr, (uint32_t)ndim, 4, 1);
    if (!dims) {
        res[0].i32 = tt_fail(ctx, SHOAL_TENSOR_EBOUNDS, "dims array at %u lies outside guest memory", dims_ptr);
        return SHOAL_OK;
    }
    tview v = {.dtype = (tdtype)dtype, .ndim = (uint32_t)ndim, .nelem = 1};
    for (int32_t i = 0; i < ndim; i++) {
        uint32_t d;
        memcpy(&d, dims + 4 * i, 4);
        if (d == 0 || (int32_t)d < 0) {
            res[0].i32 = tt_fail(ctx, SHOAL_TENSOR_EINVAL, "dimension %d is %d; dimensions must be in 1..2^31-1", i,
                                 (int32_t)d);
            return SHOAL_OK;
        }
        v.dims[i] = d;
        /* Every product stays below 2^32 * 2^31, so overflow is impossible while we stop at 4 GiB. */
        v.nelem *= d;
        if (v.nelem > UINT32_MAX) {
            res[0].i32 = tt_fail(ctx, SHOAL_TENSOR_EBOUNDS, "shape has more elements than guest memory can hold");
            return SHOAL_OK;
        }
    }
    v.nbytes = v.nelem * td_size(v.dtype);
    uint64_t mem_size = 0;
    shoal_call_memory(call, &mem_size);
    if (v.nbytes > mem_size || offset > mem_size - v.nbytes) {
        res[0].i32 = tt_fail(ctx, SHOAL_TENSOR_EBOUNDS, "view [%u, +%llu) lies outside guest memory (%llu bytes)",
                             offset, (unsigned long long)v.nbytes, (unsigned long long)mem_size);
        return SHOAL_OK;
    }
    tentry *e = NULL;
    int32_t h = tt_new_handle(ctx, &e);
    if (h > 0 && e) {
        e->live = true;
        e->offset = offset;
        e->view = v;
    }
    res[0].i32 = h;
    return SHOAL_OK;
}

static shoal_status tt_free(shoal_call *call, const shoal_val *args, shoal_val *res, void *user) {
    shoal_tensor_ctx *ctx = user;
    tview *v;
    int32_t rc = tt_resolve(ctx, call, args[0].i32, &v);
    if (rc == SHOAL_TENSOR_EBOUNDS) rc = 0; /* freeing a view the memory no longer covers is fine */
    if (rc < 0) {
        res[0].i32 = rc;
        return SHOAL_OK;
    }
    tdevice *d = ctx->device->impl;
    tentry *e = &ctx->entries[args[0].i32 - 1];
    if (e->view.resident) {
        shoal_error err;
        d->sync(d, &err); /* the device copy may still be read by queued work */
        d->release(d, &e->view);
    }
    e->live = false;
    if ((uint32_t)args[0].i32 - 1 < ctx->free_hint) ctx->free_hint = (uint32_t)args[0].i32 - 1;
    res[0].i32 = 0;
    return SHOAL_OK;
}

static shoal_status tt_residency(shoal_call *call, const shoal_val *args, shoal_val *res, void *user, int which) {
    shoal_tensor_ctx *ctx = user;
    tview *v;
    int32_t rc = tt_resolve(ctx, call, args[0].i32, &v);
    if (rc < 0) {
        res[0].i32 = rc;
        return SHOAL_OK;
    }
    tdevice *d = ctx->device->impl;
    shoal_error err = {0};
    shoal_status st = SHOAL_OK;
    if (which == 0) {
        st = v->resident ? d->update(d, v, &err) : d->keep(d, v, &err);
    } else if (which == 1) {
        st = v->resident ? d->update(d, v, &err) : SHOAL_OK; /* update of an unkept view: nothing to refresh */
    } else if (v->resident) {
        st = d->sync(d, &err);
        d->release(d, v);
    }
    res[0].i32 = st == SHOAL_OK ? 0 : tt_status_code(ctx, st, &err);
    return SHOAL_OK;
}

static shoal_status tt_keep(shoal_call *c, const shoal_val *a, shoal_val *r, void *u) { return tt_residency(c, a, r, u, 0); }
static shoal_status tt_update(shoal_call *c, const shoal_val *a, shoal_val *r, void *u) { return tt_residency(c, a, r, u, 1); }
static shoal_status tt_release(shoal_call *c, const shoal_val *a, shoal_val *r, void *u) { return tt_residency(c, a, r, u, 2); }

static shoal_status tt_sync(shoal_call *call, const shoal_val *args, shoal_val *res, void *user) {
    (void)call, (void)args;
    shoal_tensor_ctx *ctx = user;
    tdevice *d = ctx->device->impl;
    shoal_error err = {0};
    shoal_status st = d->sync(d, &err);
    res[0].i32 = st == SHOAL_OK ? 0 : tt_status_code(ctx, st, &err);
    return SHOAL_OK;
}

/* Resolves up to three handles (0 = unused slot). */
static int32_t tt_resolve3(shoal_tensor_ctx *ctx, shoal_call *call, const shoal_val *args, int n, tview **v) {
    for (int i = 0; i < n; i++) {
        int32_t rc = tt_resolve(ctx, call, args[i].i32, &v[i]);
        if (rc < 0) return rc;
    }
    return 0;
}

static int32_t tt_done(shoal_tensor_ctx *ctx, shoal_status st, const shoal_error *err) {
    return st == SHOAL_OK ? 0 : tt_status_code(ctx, st, err);
}

static shoal_status tt_matmul(shoal_call *call, const shoal_val *args, shoal_val *res, void *user) {
    shoal_tensor_ctx *ctx = user;
    tview *v[3];
    int32_t rc = tt_resolve3(ctx, call, args, 3, v);
    if (rc < 0) goto out;
    tview *o = v[0], *a = v[1], *b = v[2];
    if (a->dtype != b->dtype) {
        rc = tt_fail(ctx, SHOAL_TENSOR_ESHAPE, "matmul: a and b must have one dtype");
        goto out;
    }
    if (!(a->ndim == b->ndim && a->ndim == o->ndim && (a->ndim == 2 || a->ndim == 3))) {
        rc = tt_fail(ctx, SHOAL_TENSOR_ESHAPE, "matmul: out, a and b must all be 2-D, or all 3-D (batched)");
        goto out;
    }
    uint32_t base = a->ndim - 2, batch = a->ndim == 3 ? a->dims[0] : 1;
    uint32_t m = a->dims[base], k = a->dims[base + 1], n = b->dims[base + 1];
    if (b->dims[base] != k || o->dims[base] != m || o->dims[base + 1] != n ||
        (a->ndim == 3 && (b->dims[0] != batch || o->dims[0] != batch))) {
        rc = tt_fail(ctx, SHOAL_TENSOR_ESHAPE, "matmul: shapes do not fit: out[%u,%u] = a[%u,%u] @ b[%u,%u]",
                     o->dims[base], o->dims[base + 1], m, k, b->dims[base], n);
        goto out;
    }
    if (tt_overlap(o, a) || tt_overlap(o, b)) {
        rc = tt_fail(ctx, SHOAL_TENSOR_EINVAL, "matmul: out must not overlap a or b");
        goto out;
    }
    tdevice *d = ctx->device->impl;
    shoal_error err = {0};
    rc = tt_done(ctx, d->matmul(d, o, a, b, batch, m, n, k, &err), &err);
out:
    res[0].i32 = rc;
    return SHOAL_OK;
}

static shoal_status tt_binary(shoal_call *call, const shoal_val *args, shoal_val *res, void *user, tbinop op) {
    shoal_tensor_ctx *ctx = user;
    tview *v[3];
    int32_t rc = tt_resolve3(ctx, call, args, 3, v);
    if (rc < 0) goto out;
    tview *o = v[0], *a = v[1], *b = v[2];
    bool broadcast = b->ndim == 1 && b->dims[0] == a->dims[a->ndim - 1];
    if (!tt_same_shape(o, a) || !(tt_same_shape(a, b) || broadcast)) {
        rc = tt_fail(ctx, SHOAL_TENSOR_ESHAPE, "%s: out and a must have one shape, and b that shape or a's last dimension",
                     op == TB_ADD ? "add" : "mul");
        goto out;
    }
    tdevice *d = ctx->device->impl;
    shoal_error err = {0};
    rc = tt_done(ctx, d->binary(d, op, o, a, b, &err), &err);
out:
    res[0].i32 = rc;
    return SHOAL_OK;
}

static shoal_status tt_add(shoal_call *c, const shoal_val *a, shoal_val *r, void *u) { return tt_binary(c, a, r, u, TB_ADD); }
static shoal_status tt_mul(shoal_call *c, const shoal_val *a, shoal_val *r, void *u) { return tt_binary(c, a, r, u, TB_MUL); }

/* out and a of an elementwise operation: both live, in memory, of one shape. */
static int32_t tt_resolve_same(shoal_tensor_ctx *ctx, shoal_call *call, const shoal_val *args, const char *op,
                               tview **v) {
    int32_t rc = tt_resolve3(ctx, call, args, 2, v);
    if (rc < 0) return rc;
    if (!tt_same_shape(v[0], v[1])) return tt_fail(ctx, SHOAL_TENSOR_ESHAPE, "%s: out and a must have one shape", op);
    return 0;
}

static shoal_status tt_scale(shoal_call *call, const shoal_val *args, shoal_val *res, void *user) {
    shoal_tensor_ctx *ctx = user;
    tview *v[2];
    int32_t rc = tt_resolve_same(ctx, call, args, "scale", v);
    if (rc < 0) goto out;
    tdevice *d = ctx->device->impl;
    shoal_error err = {0};
    rc = tt_done(ctx, d->scale(d, v[0], v[1], args[2].f32, &err), &err);
out:
    res[0].i32 = rc;
    return SHOAL_OK;
}

static shoal_status tt_unary(shoal_call *call, const shoal_val *args, shoal_val *res, void *user, tunop op) {
    shoal_tensor_ctx *ctx = user;
    tview *v[2];
    int32_t rc = tt_resolve_same(ctx, call, args, op == TU_SILU ? "silu" : "softmax", v);
    if (rc < 0) goto out;
    tdevice *d = ctx->device->impl;
    shoal_error err = {0};
    rc = tt_done(ctx, d->unary(d, op, v[0], v[1], &err), &err);
out:
    res[0].i32 = rc;
    return SHOAL_OK;
}

static shoal_status tt_silu(shoal_call *c, const shoal_val *a, shoal_val *r, void *u) { return tt_unary(c, a, r, u, TU_SILU); }
static shoal_status tt_softmax(shoal_call *c, const shoal_val *a, shoal_val *r, void *u) { return tt_unary(c, a, r, u, TU_SOFTMAX); }

static shoal_status tt_rmsnorm(shoal_call *call, const shoal_val *args, shoal_val *res, void *user) {
    shoal_tensor_ctx *ctx = user;
    tview *v[3];
    int32_t rc = tt_resolve3(ctx, call, args, 3, v);
    if (rc < 0) goto out;
    float eps = args[3].f32;
    if (!tt_same_shape(v[0], v[1]) || v[2]->ndim != 1 || v[2]->dims[0] != v[1]->dims[v[1]->ndim - 1]) {
        rc = tt_fail(ctx, SHOAL_TENSOR_ESHAPE, "rmsnorm: out and a must have one shape, weight a's last dimension");
        goto out;
    }
    if (!(eps >= 0.0f) || !isfinite(eps)) {
        rc = tt_fail(ctx, SHOAL_TENSOR_EINVAL, "rmsnorm: eps must be a finite number >= 0");
        goto out;
    }
    tdevice *d = ctx->device->impl;
    shoal_error err = {0};
    rc = tt_done(ctx, d->rmsnorm(d, v[0], v[1], v[2], eps, &err), &err);
out:
    res[0].i32 = rc;
    return SHOAL_OK;
}

static shoal_status tt_rope(shoal_call *call, const shoal_val *args, shoal_val *res, void *user) {
    shoal_tensor_ctx *ctx = user;
    tview *v[2];
    int32_t rc = tt_resolve3(ctx, call, args, 2, v);
    if (rc < 0) goto out;
    int32_t pos0 = args[2].i32;
    float theta = args[3].f32;
    if (!tt_same_shape(v[0], v[1]) || v[1]->dims[v[1]->ndim - 1] % 2 != 0) {
        rc = tt_fail(ctx, SHOAL_TENSOR_ESHAPE, "rope: out and a must have one shape with an even last dimension");
        goto out;
    }
    if (pos0 < 0 || !(theta > 0.0f) || !isfinite(theta)) {
        rc = tt_fail(ctx, SHOAL_TENSOR_EINVAL, "rope: pos0 must be >= 0 and theta a finite number > 0");
        goto out;
    }
    tdevice *d = ctx->device->impl;
    shoal_error err = {0};
    rc = tt_done(ctx, d->rope(d, v[0], v[1], pos0, theta, &err), &err);
out:
    res[0].i32 = rc;
    return SHOAL_OK;
}

/* Copies a NUL-terminated string into guest memory, truncated to cap; returns its full length. */
static shoal_status tt_copy_out(shoal_call *call, const shoal_val *args, shoal_val *res, const char *text) {
    uint32_t ptr = (uint32_t)args[0].i32, cap = (uint32_t)args[1].i32;
    size_t len = strlen(text);
    if (cap > 0) {
        char *dst = shoal_call_mem(call, ptr, cap);
        if (!dst) {
            res[0].i32 = SHOAL_TENSOR_EBOUNDS;
            return SHOAL_OK;
        }
        size_t n = len < cap - 1 ? len : cap - 1;
        memcpy(dst, text, n);
        dst[n] = 0;
    }
    res[0].i32 = (int32_t)len;
    return SHOAL_OK;
}

static shoal_status tt_device_name(shoal_call *call, const shoal_val *args, shoal_val *res, void *user) {
    shoal_tensor_ctx *ctx = user;
    return tt_copy_out(call, args, res, ctx->device->impl->description);
}

static shoal_status tt_last_error(shoal_call *call, const shoal_val *args, shoal_val *res, void *user) {
    shoal_tensor_ctx *ctx = user;
    return tt_copy_out(call, args, res, ctx->last_error);
}

static const struct {
    const char *name, *sig;
    shoal_host_fn fn;
} tt_functions[] = {
    {"view", "iiii:i", tt_view},       {"free", "i:i", tt_free},
    {"keep", "i:i", tt_keep},          {"update", "i:i", tt_update},
    {"release", "i:i", tt_release},    {"sync", ":i", tt_sync},
    {"matmul", "iii:i", tt_matmul},    {"add", "iii:i", tt_add},
    {"mul", "iii:i", tt_mul},          {"scale", "iif:i", tt_scale},
    {"softmax", "ii:i", tt_softmax},   {"rmsnorm", "iiif:i", tt_rmsnorm},
    {"rope", "iiif:i", tt_rope},       {"silu", "ii:i", tt_silu},
    {"device_name", "ii:i", tt_device_name}, {"last_error", "ii:i", tt_last_error},
};

shoal_status shoal_tensor_add_imports(shoal_tensor_ctx *ctx, shoal_imports *imports, shoal_error *err) {
    for (size_t i = 0; i < sizeof tt_functions / sizeof tt_functions[0]; i++) {
        shoal_status st =
            shoal_imports_add_func(imports, "shoal_tensor", tt_functions[i].name, tt_functions[i].sig, tt_functions[i].fn,
                                   ctx, err);
        if (st != SHOAL_OK) return st;
    }
    return SHOAL_OK;
}

const char *shoal_tensor_ctx_last_error(const shoal_tensor_ctx *ctx) { return ctx->last_error; }

uint32_t shoal_tensor_ctx_live(const shoal_tensor_ctx *ctx) {
    uint32_t n = 0;
    for (uint32_t i = 0; ctx && i < ctx->nentries; i++) n += ctx->entries[i].live;
    return n;
}
