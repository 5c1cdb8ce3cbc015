/*
 * lforward.c: the Llama forward pass, written once over the backend's ops (lbackend.h).
 *
 * For a batch of n tokens at positions pos..pos+n-1 (prefill: n > 1, a GEMM per weight; decode: n == 1):
 *   x = embed(tokens)
 *   for each layer:
 *     xb = rmsnorm(x) * attn_norm
 *     q, k, v = wq xb, wk xb, wv xb (one matmul_n);  rope(q), rope(k)  (interleaved pairs)
 *     kv cache[pos..] = k, v
 *     att = causal GQA attention of q over the cache
 *     x += wo att
 *     xb = rmsnorm(x) * ffn_norm
 *     x += w2 (silu(w1 xb) * (w3 xb))
 *   logits = output (rmsnorm(x_last) * out_norm)
 */
#include "lsession.h"

static void matmul_n(const lbackend *be, lbackend_ctx *ctx, float *const *out, const lmodel_tensor *const *w,
                     uint32_t count, const float *x, uint32_t n) {
    if (be->matmul_n) {
        be->matmul_n(ctx, out, w, count, x, n);
        return;
    }
    for (uint32_t i = 0; i < count; i++)
        be->matmul(ctx, out[i], w[i], x, n);
}

shoal_status lforward(lsession *s, uint32_t n, bool want_logits, shoal_error *err) {
    const lmodel *m = s->model;
    const lmodel_config *c = &m->cfg;
    const lbackend *be = s->be;
    lbackend_ctx *ctx = s->ctx;
    uint32_t dim = c->dim, hd = c->head_dim;
    uint32_t pos = s->pos;

    be->get_rows(ctx, s->x, &m->tok_embd, s->ids, n);
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const lmodel_layer *L = &m->layers[l];
        if (be->matmul_multi) {
            float *const outs[3] = {s->q, s->k, s->v};
            const lmodel_tensor *const ws[3] = {&L->wq, &L->wk, &L->wv};
            be->matmul_multi(ctx, outs, ws, 3, s->x, &L->attn_norm, c->rms_eps, n);
        } else {
            be->rmsnorm(ctx, s->xb, s->x, &L->attn_norm, n, c->rms_eps);
            matmul_n(be, ctx, (float *const[]){s->q, s->k, s->v},
                     (const lmodel_tensor *const[]){&L->wq, &L->wk, &L->wv}, 3, s->xb, n);
        }
        if (be->rope_store) {
            be->rope_store(ctx, s->q, s->k, s->v, &s->kv, l, pos, n, c->n_heads, c->n_kv_heads, hd, m->rope_freqs);
        } else {
            be->rope(ctx, s->q, n, c->n_heads, hd, pos, m->rope_freqs);
            be->rope(ctx, s->k, n, c->n_kv_heads, hd, pos, m->rope_freqs);
            be->kv_store(ctx, &s->kv, l, pos, n, s->k, s->v);
        }
        be->attention(ctx, s->att, s->q, &s->kv, l, pos, n, c->n_heads, c->n_kv_heads, hd);
        if (be->matmul_add) {
            be->matmul_add(ctx, s->x, &L->wo, s->att, n);
        } else {
            be->matmul(ctx, s->xb, &L->wo, s->att, n);
            be->add(ctx, s->x, s->xb, (size_t)n * dim);
        }

        if (be->matmul_swiglu) {
            be->matmul_swiglu(ctx, s->hb, &L->w1, &L->w3, s->x, &L->ffn_norm, c->rms_eps, n);
        } else {
            be->rmsnorm(ctx, s->xb, s->x, &L->ffn_norm, n, c->rms_eps);
            matmul_n(be, ctx, (float *const[]){s->hb, s->hb2}, (const lmodel_tensor *const[]){&L->w1, &L->w3}, 2,
                     s->xb, n);
            be->swiglu(ctx, s->hb, s->hb2, (size_t)n * c->hidden_dim);
        }
        if (be->matmul_add) {
            be->matmul_add(ctx, s->x, &L->w2, s->hb, n);
        } else {
            be->matmul(ctx, s->xb, &L->w2, s->hb, n);
            be->add(ctx, s->x, s->xb, (size_t)n * dim);
        }
    }
    if (want_logits) {
        float *last = s->x + (size_t)(n - 1) * dim;
        if (be->matmul_multi) {
            float *const outs[1] = {s->logits};
            const lmodel_tensor *const ws[1] = {&m->output};
            be->matmul_multi(ctx, outs, ws, 1, last, &m->out_norm, c->rms_eps, 1);
        } else {
            be->rmsnorm(ctx, s->xb, last, &m->out_norm, 1, c->rms_eps);
            be->matmul(ctx, s->logits, &m->output, s->xb, 1);
        }
    }
    return be->sync(ctx, err);
}
