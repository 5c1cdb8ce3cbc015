/*
 * lcpu.c: the CPU backend: lbackend's ops on host memory, spread over a thread pool.
 *
 * Weights are used where they lie (the file mapping), so model_init only points .dev at .data. A session
 * context owns its scratch: quantised activations for Q8_0/Q4_0 matmuls and attention scores. The pool is
 * shared by all contexts of a backend; `mu` serialises jobs from different sessions.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lbackend.h"
#include "lcpu.h"
#include "lthread.h"

typedef struct cpu_state {
    lthread_pool *pool;
    const lcpu_kernels *k;
    uint64_t par_min; /* jobs with less work (multiply-adds) run on the calling thread */
    pthread_mutex_t mu;
} cpu_state;

struct lbackend_ctx {
    lbackend *be;
    cpu_state *cs;
    uint32_t max_batch, n_ctx;
    void *qbuf;     /* quantised activations: max_batch rows of the widest matmul input */
    size_t qbuf_size;
    float *scores;  /* attention: one row of n_ctx scores per pool thread */
};

/* ---- helpers ---------------------------------------------------------------------------------------- */

/* Jobs smaller than this many multiply-adds run on the calling thread: waking the pool costs more.
 * SHOAL_CPU_PAR_MIN overrides it (tests set 1 to make small models use every thread). */
#define PAR_MIN_WORK (1u << 16)

/* Runs fn over [0, total) in grain-aligned chunks on the pool, or on this thread alone when the job is
 * small (work: its multiply-adds, roughly). */
static void run(lbackend_ctx *ctx, uint64_t total, uint64_t grain, lthread_fn fn, void *arg, uint64_t work) {
    if (work < ctx->cs->par_min || lthread_count(ctx->cs->pool) == 1) {
        fn(arg, 0, total, 0);
        return;
    }
    pthread_mutex_lock(&ctx->cs->mu);
    lthread_for(ctx->cs->pool, total, grain, fn, arg);
    pthread_mutex_unlock(&ctx->cs->mu);
}

/* ---- memory ------------------------------------------------------------------------------------------ */

static void *cpu_alloc(lbackend *be, size_t size, shoal_error *err) {
    (void)be;
    /* calloc, not aligned_alloc + memset: a large KV cache then comes as untouched zero pages, and costs
     * memory only as positions fill. Kernels use unaligned loads, so 16-byte alignment is enough. */
    void *p = calloc(1, size ? size : 1);
    if (!p)
        shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory (%zu bytes)", size);
    return p;
}

static void cpu_free(lbackend *be, void *p) {
    (void)be;
    free(p);
}

static void cpu_copy(lbackend_ctx *ctx, void *dst, const void *src, size_t n) {
    (void)ctx;
    if (n)
        memmove(dst, src, n);
}

/* ---- model / context --------------------------------------------------------------------------------- */

static void point_dev(lmodel_tensor *t) {
    t->dev = t->data;
}

static shoal_status cpu_model_init(lbackend *be, lmodel *m, shoal_error *err) {
    (void)be;
    (void)err;
    point_dev(&m->tok_embd);
    point_dev(&m->out_norm);
    point_dev(&m->output);
    for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
        lmodel_layer *L = &m->layers[l];
        lmodel_tensor *ts[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_norm, &L->w1, &L->w2, &L->w3};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
            point_dev(ts[i]);
    }
    m->backend_state = NULL;
    return SHOAL_OK;
}

static void cpu_model_release(lbackend *be, lmodel *m) {
    (void)be;
    m->backend = NULL;
}

static void cpu_ctx_free(lbackend_ctx *ctx) {
    if (!ctx)
        return;
    free(ctx->qbuf);
    free(ctx->scores);
    free(ctx);
}

static shoal_status cpu_ctx_new(lbackend *be, const lmodel *m, uint32_t max_batch, uint32_t n_ctx,
                                lbackend_ctx **out, shoal_error *err) {
    *out = NULL;
    lbackend_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    ctx->be = be;
    ctx->cs = be->state;
    ctx->max_batch = max_batch ? max_batch : 1;
    uint32_t widest = m->cfg.dim > m->cfg.hidden_dim ? m->cfg.dim : m->cfg.hidden_dim;
    uint32_t qdim = m->cfg.n_heads * m->cfg.head_dim;
    if (qdim > widest)
        widest = qdim;
    size_t qsize = (size_t)ctx->max_batch * ((widest + 31) / 32) * sizeof(lmodel_block_q8_0);
    size_t ssize = (size_t)lthread_count(ctx->cs->pool) * (n_ctx ? n_ctx : 1) * sizeof(float);
    ctx->qbuf = aligned_alloc(64, (qsize + 63) & ~(size_t)63);
    ctx->scores = aligned_alloc(64, (ssize + 63) & ~(size_t)63);
    if (!ctx->qbuf || !ctx->scores) {
        cpu_ctx_free(ctx);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory for session scratch (%zu + %zu bytes)", qsize,
                               ssize);
    }
    ctx->qbuf_size = qsize;
    ctx->n_ctx = n_ctx;
    *out = ctx;
    return SHOAL_OK;
}

/* ---- ops --------------------------------------------------------------------------------------------- */

static void cpu_get_rows(lbackend_ctx *ctx, float *out, const lmodel_tensor *t, const int32_t *ids, uint32_t n) {
    (void)ctx;
    for (uint32_t i = 0; i < n; i++)
        lmodel_row_to_f32(t, (uint32_t)ids[i], out + (size_t)i * t->cols);
}

static void cpu_rmsnorm(lbackend_ctx *ctx, float *out, const float *x, const lmodel_tensor *w, uint32_t n,
                        float eps) {
    (void)ctx;
    const float *g = w->dev;
    uint32_t d = w->cols;
    for (uint32_t i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * d;
        float *oi = out + (size_t)i * d;
        double ss = 0; /* double: the sum of squares of a few thousand values loses bits in float */
        for (uint32_t j = 0; j < d; j++)
            ss += (double)xi[j] * xi[j];
        float s = (float)(1.0 / sqrt(ss / d + eps));
        for (uint32_t j = 0; j < d; j++)
            oi[j] = xi[j] * s * g[j];
    }
}

/* One job computes up to 3 products of the same input (q/k/v, gate/up): one wake-up of the pool, and the
 * input quantised once. Threads split the rows of all of them, laid end to end. */
#define MATMUL_MAX 3

typedef struct matmul_job {
    const lcpu_kernels *k;
    uint32_t count;
    float *out[MATMUL_MAX];
    const lmodel_tensor *w[MATMUL_MAX];
    const float *x;
    uint32_t n, cols;
    lmodel_block_q8_0 *q; /* the input quantised (NULL when no weight is quantised) */
} matmul_job;

static bool is_quant(lmodel_dtype dt) {
    return dt == LDT_Q8_0 || dt == LDT_Q4_0;
}

static void matmul_quantize(void *arg, uint64_t lo, uint64_t hi, uint32_t ith) {
    matmul_job *j = arg;
    (void)ith;
    uint32_t nb = j->cols / 32;
    for (uint64_t t = lo; t < hi; t++)
        j->k->quantize_q8(j->x + t * j->cols, j->q + t * nb, j->cols);
}

/* Rows [lo, hi) of the job's weights laid end to end. */
static void matmul_rows(void *arg, uint64_t lo, uint64_t hi, uint32_t ith) {
    matmul_job *j = arg;
    (void)ith;
    uint64_t base = 0;
    for (uint32_t i = 0; i < j->count && base < hi; base += j->w[i]->rows, i++) {
        const lmodel_tensor *w = j->w[i];
        if (lo >= base + w->rows)
            continue;
        /* This thread's rows of w: [a, b), with base <= hi and lo < base + rows here. */
        uint64_t a = lo > base ? lo - base : 0, b = hi - base < w->rows ? hi - base : w->rows;
        if (a >= b)
            continue;
        size_t ws = lmodel_dtype_row_bytes(w->dtype, w->cols);
        const uint8_t *act = (const uint8_t *)j->x;
        size_t astride = (size_t)j->cols * 4;
        if (is_quant(w->dtype)) {
            act = (const uint8_t *)j->q;
            astride = (size_t)(j->cols / 32) * sizeof(lmodel_block_q8_0);
        }
        j->k->gemm[w->dtype]((const uint8_t *)w->dev + a * ws, ws, (uint32_t)(b - a), act, astride, j->n, j->cols,
                             j->out[i] + a, w->rows);
    }
}

static void matmul_many(lbackend_ctx *ctx, float *const *out, const lmodel_tensor *const *w, uint32_t count,
                        const float *x, uint32_t n) {
    matmul_job j = {.k = ctx->cs->k, .count = count, .x = x, .n = n, .cols = w[0]->cols};
    uint64_t work = 0, rows = 0;
    bool quant = false;
    for (uint32_t i = 0; i < count; i++) {
        j.out[i] = out[i];
        j.w[i] = w[i];
        work += (uint64_t)n * w[i]->rows * w[i]->cols;
        rows += w[i]->rows;
        quant |= is_quant(w[i]->dtype);
    }
    if (quant) {
        /* Invariant: ctx_new sized qbuf for max_batch rows of the widest input; the forward pass never
         * passes more rows than max_batch. */
        j.q = ctx->qbuf;
        run(ctx, n, 1, matmul_quantize, &j, (uint64_t)n * j.cols * 4);
    }
    /* Chunks of 16 rows: the kernels' row blocks. */
    run(ctx, rows, 16, matmul_rows, &j, work);
}

static void cpu_matmul(lbackend_ctx *ctx, float *out, const lmodel_tensor *w, const float *x, uint32_t n) {
    matmul_many(ctx, &out, &w, 1, x, n);
}

static void cpu_matmul_n(lbackend_ctx *ctx, float *const *out, const lmodel_tensor *const *w, uint32_t count,
                         const float *x, uint32_t n) {
    for (uint32_t done = 0; done < count; done += MATMUL_MAX)
        matmul_many(ctx, out + done, w + done, count - done < MATMUL_MAX ? count - done : MATMUL_MAX, x, n);
}

static void cpu_rope(lbackend_ctx *ctx, float *x, uint32_t n, uint32_t n_heads, uint32_t head_dim, uint32_t pos0,
                     const float *freqs) {
    (void)ctx;
    uint32_t half = head_dim / 2;
    for (uint32_t i = 0; i < n; i++) {
        double pos = (double)pos0 + i;
        float *row = x + (size_t)i * n_heads * head_dim;
        for (uint32_t k = 0; k < half; k++) {
            double a = pos * freqs[k];
            float c = (float)cos(a), s = (float)sin(a);
            for (uint32_t h = 0; h < n_heads; h++) {
                float *p = row + (size_t)h * head_dim + 2 * k;
                float v0 = p[0], v1 = p[1];
                p[0] = v0 * c - v1 * s;
                p[1] = v0 * s + v1 * c;
            }
        }
    }
}

static void cpu_kv_store(lbackend_ctx *ctx, lkv_cache *kv, uint32_t layer, uint32_t pos0, uint32_t n, const float *k,
                         const float *v) {
    (void)ctx;
    size_t row = kv->kv_dim, base = ((size_t)layer * kv->n_ctx + pos0) * row, cnt = (size_t)n * row;
    if (kv->dtype == LDT_F32) {
        memcpy((float *)kv->k + base, k, cnt * 4);
        memcpy((float *)kv->v + base, v, cnt * 4);
    } else {
        uint16_t *kd = (uint16_t *)kv->k + base, *vd = (uint16_t *)kv->v + base;
        for (size_t i = 0; i < cnt; i++) {
            kd[i] = lmodel_f32_to_fp16(k[i]);
            vd[i] = lmodel_f32_to_fp16(v[i]);
        }
    }
}

typedef struct attn_job {
    const lcpu_kernels *k;
    float *out;
    const float *q;
    const lkv_cache *kv;
    uint32_t layer, pos0, n, n_heads, n_kv_heads, head_dim;
    float *scores; /* per thread: n_ctx floats */
} attn_job;

/* (token, head) pairs [lo, hi). */
static void attn_rows(void *arg, uint64_t lo, uint64_t hi, uint32_t ith) {
    attn_job *j = arg;
    const lcpu_kernels *k = j->k;
    const lkv_cache *kv = j->kv;
    uint32_t hd = j->head_dim, group = j->n_heads / j->n_kv_heads, qdim = j->n_heads * hd;
    size_t layer_base = (size_t)j->layer * kv->n_ctx * kv->kv_dim;
    float *sc = j->scores + (size_t)ith * kv->n_ctx;
    float scale = 1.0f / sqrtf((float)hd);
    for (uint64_t w = lo; w < hi; w++) {
        uint32_t i = (uint32_t)(w / j->n_heads), h = (uint32_t)(w % j->n_heads), kvh = h / group;
        uint32_t last = j->pos0 + i; /* causal: positions 0..last */
        const float *qi = j->q + (size_t)i * qdim + (size_t)h * hd;
        float *oi = j->out + (size_t)i * qdim + (size_t)h * hd;
        float mx = -INFINITY;
        for (uint32_t p = 0; p <= last; p++) {
            size_t off = layer_base + (size_t)p * kv->kv_dim + (size_t)kvh * hd;
            float s = kv->dtype == LDT_F32 ? k->dot_f32((const float *)kv->k + off, qi, hd)
                                           : k->dot_f16((const uint16_t *)kv->k + off, qi, hd);
            s *= scale;
            sc[p] = s;
            if (s > mx)
                mx = s;
        }
        float sum = 0;
        for (uint32_t p = 0; p <= last; p++) {
            sc[p] = expf(sc[p] - mx);
            sum += sc[p];
        }
        float inv = 1.0f / sum;
        memset(oi, 0, (size_t)hd * 4);
        for (uint32_t p = 0; p <= last; p++) {
            size_t off = layer_base + (size_t)p * kv->kv_dim + (size_t)kvh * hd;
            if (kv->dtype == LDT_F32)
                k->axpy_f32(oi, sc[p] * inv, (const float *)kv->v + off, hd);
            else
                k->axpy_f16(oi, sc[p] * inv, (const uint16_t *)kv->v + off, hd);
        }
    }
}

static void cpu_attention(lbackend_ctx *ctx, float *out, const float *q, const lkv_cache *kv, uint32_t layer,
                          uint32_t pos0, uint32_t n, uint32_t n_heads, uint32_t n_kv_heads, uint32_t head_dim) {
    /* Invariant: kv->n_ctx <= ctx->n_ctx (the session made both), so each thread's score row fits. */
    attn_job j = {ctx->cs->k, out, q, kv, layer, pos0, n, n_heads, n_kv_heads, head_dim, ctx->scores};
    run(ctx, (uint64_t)n * n_heads, 1, attn_rows, &j, (uint64_t)n * n_heads * head_dim * 2 * (pos0 + n));
}

typedef struct ew_job {
    float *a;
    const float *b;
    size_t count;
} ew_job;

static void swiglu_part(void *arg, uint64_t lo, uint64_t hi, uint32_t ith) {
    ew_job *j = arg;
    (void)ith;
    for (uint64_t i = lo; i < hi; i++) {
        float g = j->a[i];
        j->a[i] = g / (1.0f + expf(-g)) * j->b[i];
    }
}

static void cpu_swiglu(lbackend_ctx *ctx, float *gate, const float *up, size_t count) {
    ew_job j = {gate, up, count};
    run(ctx, count, 64, swiglu_part, &j, count * 16);
}

static void cpu_add(lbackend_ctx *ctx, float *x, const float *y, size_t count) {
    (void)ctx;
    for (size_t i = 0; i < count; i++)
        x[i] += y[i];
}

static shoal_status cpu_sync(lbackend_ctx *ctx, shoal_error *err) {
    /* Every CPU op has finished when it returns, and none can fail. */
    (void)ctx;
    (void)err;
    return SHOAL_OK;
}

/* ---- creation ---------------------------------------------------------------------------------------- */

static void cpu_describe(const lbackend *be, char *buf, size_t cap) {
    const cpu_state *cs = be->state;
    snprintf(buf, cap, "cpu %s x%u threads", cs->k->name, lthread_count(cs->pool));
}

static void cpu_destroy(lbackend *be) {
    if (!be)
        return;
    cpu_state *cs = be->state;
    if (cs) {
        lthread_pool_free(cs->pool);
        pthread_mutex_destroy(&cs->mu);
        free(cs);
    }
    free(be);
}

shoal_status lcpu_create(const lbackend_opts *opts, lbackend **out, shoal_error *err) {
    *out = NULL;
    lbackend *be = calloc(1, sizeof *be);
    cpu_state *cs = calloc(1, sizeof *cs);
    if (!be || !cs) {
        free(be);
        free(cs);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&cs->mu, NULL);
    be->state = cs;
    be->destroy = cpu_destroy;
    shoal_status st = lthread_pool_new(opts ? opts->n_threads : 0, &cs->pool, err);
    if (st) {
        cpu_destroy(be);
        return st;
    }
    cs->k = lcpu_kernels_get(0);
    const char *pm = getenv("SHOAL_CPU_PAR_MIN");
    cs->par_min = pm && *pm ? strtoull(pm, NULL, 10) : PAR_MIN_WORK;
    be->name = "cpu";
    be->host_visible = true;
    be->describe = cpu_describe;
    be->model_init = cpu_model_init;
    be->model_release = cpu_model_release;
    be->ctx_new = cpu_ctx_new;
    be->ctx_free = cpu_ctx_free;
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->upload = cpu_copy;
    be->download = cpu_copy;
    be->get_rows = cpu_get_rows;
    be->rmsnorm = cpu_rmsnorm;
    be->matmul = cpu_matmul;
    be->matmul_n = cpu_matmul_n;
    be->rope = cpu_rope;
    be->kv_store = cpu_kv_store;
    be->attention = cpu_attention;
    be->swiglu = cpu_swiglu;
    be->add = cpu_add;
    be->sync = cpu_sync;
    *out = be;
    return SHOAL_OK;
}

