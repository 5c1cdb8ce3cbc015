/*
 * lbackend.h: the interface between the forward pass and a compute backend (CPU now, CUDA later).
 *
 * The forward pass (lforward.c) is written once, as a sequence of the ops below; a backend implements
 * them on its own memory. The interface is device-neutral:
 *   - Weights are prepared once per model (model_init: the CPU uses the mapped bytes as they are, a GPU
 *     uploads them) and reached through lmodel_tensor.dev.
 *   - Activations, token ids, logits and the KV cache live in backend memory (alloc/free); the host moves
 *     bytes in and out with upload/download. When host_visible is true, backend memory is host memory.
 *   - Ops are issued in order and may run asynchronously; sync() waits and reports the first failure
 *     since the last sync. Ops never fail on their own: arguments are checked by the caller.
 *   - Per-session state (scratch, a stream) is a lbackend_ctx from ctx_new, passed to every op, so
 *     sessions of one model never share scratch. Calls on one ctx come from one thread at a time; a
 *     backend serialises what it shares between contexts (the CPU's thread pool) itself.
 * All activation tensors are f32, row-major [n][width], n = number of tokens in the batch.
 */
#ifndef LBACKEND_H
#define LBACKEND_H

#include "lmodel.h"

typedef struct lbackend_ctx lbackend_ctx; /* defined by each backend */

#define LBACKEND_STAGES 4 /* staging slots of a ctx (stage / stage_upload) */

/* A session's KV cache, in backend memory: K and V each laid out [layer][position][kv_dim], so the filled
 * positions [0, n) of one layer are one contiguous block (what a snapshot writes). */
typedef struct lkv_cache {
    lmodel_dtype dtype;   /* LDT_F32 or LDT_F16 */
    uint32_t n_layers, n_ctx, kv_dim;
    void *k, *v;
} lkv_cache;

/* Bytes of one layer of K (or V): n_ctx * kv_dim * element size. */
size_t lkv_layer_bytes(const lkv_cache *kv);

struct lbackend {
    const char *name;     /* "cpu", "cuda" */
    bool host_visible;    /* backend pointers are ordinary host pointers */
    void *state;          /* the backend's own (thread pool, device handle) */
    void (*destroy)(lbackend *be);
    /* One line for reports, e.g. "cpu avx2 x2 threads". */
    void (*describe)(const lbackend *be, char *buf, size_t cap);

    /* Per model: sets every tensor's .dev and m->backend_state; model_release undoes it. */
    shoal_status (*model_init)(lbackend *be, lmodel *m, shoal_error *err);
    void (*model_release)(lbackend *be, lmodel *m);

    /* Per session. */
    /* max_batch: most tokens per forward call; n_ctx: most positions attention will see. */
    shoal_status (*ctx_new)(lbackend *be, const lmodel *m, uint32_t max_batch, uint32_t n_ctx, lbackend_ctx **out,
                            shoal_error *err);
    void (*ctx_free)(lbackend_ctx *ctx);

    /* Backend memory (zeroed), and copies between it and host memory. */
    void *(*alloc)(lbackend *be, size_t size, shoal_error *err);
    void (*free)(lbackend *be, void *p);
    void (*upload)(lbackend_ctx *ctx, void *dst, const void *src, size_t n);
    void (*download)(lbackend_ctx *ctx, void *dst, const void *src, size_t n);
    /* Optional (NULL on host-visible backends): streaming uploads through pinned host memory, for
     * snapshot restore. stage(ctx, i, &cap) returns staging slot i (i < LBACKEND_STAGES), cap bytes of host
     * memory, once the last upload from it has finished (allocating it on first use; NULL and err set when
     * that fails). stage_upload copies `rows` rows of `width` bytes, the first at byte `off` of slot i and
     * the next ones every `spitch` bytes, to dst, dst + dpitch, ... asynchronously, in order with the other
     * ops on ctx, so filling the next slot overlaps the copy. Slots live until ctx_free. */
    void *(*stage)(lbackend_ctx *ctx, int slot, size_t *cap, shoal_error *err);
    void (*stage_upload)(lbackend_ctx *ctx, void *dst, size_t dpitch, int slot, size_t off, size_t spitch,
                         size_t width, size_t rows);

    /* Ops. `ids`, `x`, `out`... are backend pointers. */
    /* out[i] = row ids[i] of t, as f32 (t: [vocab][dim], any dtype). ids are checked by the caller. */
    void (*get_rows)(lbackend_ctx *ctx, float *out, const lmodel_tensor *t, const int32_t *ids, uint32_t n);
    /* out[i] = x[i] / rms(x[i]) * w, for n rows of w->cols values. out may equal x. */
    void (*rmsnorm)(lbackend_ctx *ctx, float *out, const float *x, const lmodel_tensor *w, uint32_t n, float eps);
    /* out[i][r] = sum_c w[r][c] * x[i][c]: out is [n][w->rows], x is [n][w->cols]. A GEMM when n > 1. */
    void (*matmul)(lbackend_ctx *ctx, float *out, const lmodel_tensor *w, const float *x, uint32_t n);
    /* count matmuls of the same x (all w[i]->cols equal): out[i] = w[i] x. Lets a backend read x once and
     * issue one job (q/k/v, gate/up). NULL: the forward pass calls matmul count times. */
    void (*matmul_n)(lbackend_ctx *ctx, float *const *out, const lmodel_tensor *const *w, uint32_t count,
                     const float *x, uint32_t n);
    /* Rotates interleaved pairs of each of n_heads heads of row i by angle (pos0 + i) * freqs[j]. */
    void (*rope)(lbackend_ctx *ctx, float *x, uint32_t n, uint32_t n_heads, uint32_t head_dim, uint32_t pos0,
                 const float *freqs);
    /* Writes k[i], v[i] ([n][kv_dim]) to positions pos0 + i of `layer` (converting to kv->dtype). */
    void (*kv_store)(lbackend_ctx *ctx, lkv_cache *kv, uint32_t layer, uint32_t pos0, uint32_t n, const float *k,
                     const float *v);
    /* Causal grouped-query attention of n query rows at positions pos0 .. pos0+n-1 over cache positions
     * [0, pos0 + i]; q, out: [n][n_heads * head_dim]. Query head h reads KV head h / (n_heads/n_kv_heads). */
    void (*attention)(lbackend_ctx *ctx, float *out, const float *q, const lkv_cache *kv, uint32_t layer,
                      uint32_t pos0, uint32_t n, uint32_t n_heads, uint32_t n_kv_heads, uint32_t head_dim);
    /* gate[i] = silu(gate[i]) * up[i] for count values. */
    void (*swiglu)(lbackend_ctx *ctx, float *gate, const float *up, size_t count);
    /* x[i] += y[i] for count values. */
    void (*add)(lbackend_ctx *ctx, float *x, const float *y, size_t count);
    /* Waits for the ops issued on ctx; SHOAL_ERR_DEVICE with a message if any failed. */
    shoal_status (*sync)(lbackend_ctx *ctx, shoal_error *err);

    /* Optional fusions; NULL means the forward pass composes the ops above. A GPU backend uses them to
     * launch fewer kernels per token (each launch costs microseconds at batch 1). When `norm` is given, the
     * input rows are RMS-normalised (times norm, with eps) on the way in, and x itself is not changed. */
    /* outs[i] = ws[i] norm(x) for i < count (<= 3): q, k and v share their input. */
    void (*matmul_multi)(lbackend_ctx *ctx, float *const *outs, const lmodel_tensor *const *ws, uint32_t count,
                         const float *x, const lmodel_tensor *norm, float eps, uint32_t n);
    /* out = silu(w1 norm(x)) * (w3 norm(x)), out: [n][w1->rows]. */
    void (*matmul_swiglu)(lbackend_ctx *ctx, float *out, const lmodel_tensor *w1, const lmodel_tensor *w3,
                          const float *x, const lmodel_tensor *norm, float eps, uint32_t n);
    /* x += w in: a projection with the residual add. */
    void (*matmul_add)(lbackend_ctx *ctx, float *x, const lmodel_tensor *w, const float *in, uint32_t n);
    /* rope(q), rope(k), then kv_store(k, v): the three steps between the projections and attention. */
    void (*rope_store)(lbackend_ctx *ctx, float *q, float *k, const float *v, lkv_cache *kv, uint32_t layer,
                       uint32_t pos0, uint32_t n, uint32_t n_heads, uint32_t n_kv_heads, uint32_t head_dim,
                       const float *freqs);
};

typedef struct lbackend_opts {
    uint32_t n_threads; /* CPU worker threads incl. the caller; 0 = number of online CPUs */
    int device;         /* GPU ordinal */
} lbackend_opts;

/* Creates a backend by name ("cpu"; NULL = "cpu"). SHOAL_ERR_NOTFOUND for an unknown name,
 * SHOAL_ERR_DEVICE when the device is absent. */
shoal_status lbackend_create(const char *name, const lbackend_opts *opts, lbackend **out, shoal_error *err);
void lbackend_destroy(lbackend *be);

/* The CPU backend (lcpu.c). */
shoal_status lcpu_create(const lbackend_opts *opts, lbackend **out, shoal_error *err);

/* Binds a finished model to a backend (calls model_init). The backend must outlive the model. */
shoal_status lbackend_attach(lbackend *be, lmodel *m, shoal_error *err);

#endif
