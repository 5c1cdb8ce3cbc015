/* lsession.c: sessions: KV cache and activation buffers, prefill and decode (see lsession.h). */
#include "lsession.h"

#include <stdlib.h>
#include <string.h>

static void free_buffers(lsession *s) {
    lbackend *be = s->be;
    void *bufs[] = {s->x, s->xb, s->q, s->k, s->v, s->att, s->hb, s->hb2, s->logits, s->ids, s->kv.k, s->kv.v};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i])
            be->free(be, bufs[i]);
}

void lsession_free(lsession *s) {
    if (!s)
        return;
    free_buffers(s);
    if (s->ctx)
        s->be->ctx_free(s->ctx);
    free(s);
}

static void *take(lsession *s, uint64_t bytes, shoal_error *err) {
    s->act_bytes += bytes;
    return s->be->alloc(s->be, (size_t)bytes, err);
}

shoal_status lsession_new(lmodel *m, const lsession_opts *opts, lsession **out, shoal_error *err) {
    static const lsession_opts defaults = {0, LDT_F32, 0};
    if (!opts)
        opts = &defaults;
    *out = NULL;
    if (!m->backend)
        return shoal_error_set(err, SHOAL_ERR_ARG, "%s: the model is not bound to a backend", m->path);
    if (opts->kv_dtype != LDT_F32 && opts->kv_dtype != LDT_F16)
        return shoal_error_set(err, SHOAL_ERR_ARG, "KV cache dtype must be f32 or f16 (got %s)",
                               lmodel_dtype_name(opts->kv_dtype));
    const lmodel_config *c = &m->cfg;
    uint32_t n_ctx = opts->n_ctx ? opts->n_ctx : (c->seq_len < LSESSION_DEFAULT_CTX ? c->seq_len : LSESSION_DEFAULT_CTX);
    if (n_ctx > (1u << 24))
        return shoal_error_set(err, SHOAL_ERR_ARG, "context length %u is too large", n_ctx);
    uint32_t batch = opts->max_batch ? opts->max_batch : (n_ctx < 256 ? n_ctx : 256);
    if (batch > n_ctx)
        batch = n_ctx;
    lsession *s = calloc(1, sizeof *s);
    if (!s)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    s->model = m;
    s->be = (lbackend *)m->backend;
    s->n_ctx = n_ctx;
    s->max_batch = batch;
    uint32_t qdim = c->n_heads * c->head_dim, kvdim = c->n_kv_heads * c->head_dim;
    s->kv = (lkv_cache){opts->kv_dtype, c->n_layers, n_ctx, kvdim, NULL, NULL};
    uint64_t kvb = (uint64_t)c->n_layers * lkv_layer_bytes(&s->kv);
    shoal_status st = s->be->ctx_new(s->be, m, batch, n_ctx, &s->ctx, err);
    if (st)
        goto fail;
    uint64_t B = batch;
    st = SHOAL_ERR_NOMEM;
    if (!(s->kv.k = s->be->alloc(s->be, (size_t)kvb, err)) || !(s->kv.v = s->be->alloc(s->be, (size_t)kvb, err)) ||
        !(s->x = take(s, B * c->dim * 4, err)) || !(s->xb = take(s, B * c->dim * 4, err)) ||
        !(s->q = take(s, B * qdim * 4, err)) || !(s->k = take(s, B * kvdim * 4, err)) ||
        !(s->v = take(s, B * kvdim * 4, err)) || !(s->att = take(s, B * qdim * 4, err)) ||
        !(s->hb = take(s, B * c->hidden_dim * 4, err)) || !(s->hb2 = take(s, B * c->hidden_dim * 4, err)) ||
        !(s->logits = take(s, (uint64_t)c->vocab_size * 4, err)) || !(s->ids = take(s, B * 4, err)))
        goto fail;
    *out = s;
    return SHOAL_OK;
fail:
    lsession_free(s);
    return st;
}

void lsession_reset(lsession *s) {
    /* Positions >= pos are never read, so the cache needs no clearing. */
    s->pos = 0;
}

void lsession_rewind(lsession *s, uint32_t n_pos) {
    if (n_pos < s->pos)
        s->pos = n_pos;
}

static shoal_status check_tokens(const lsession *s, const int32_t *tokens, uint32_t n, shoal_error *err) {
    if ((uint64_t)s->pos + n > s->n_ctx)
        return shoal_error_set(err, SHOAL_ERR_ARG, "context full: %u positions used, %u more tokens, context is %u",
                               s->pos, n, s->n_ctx);
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= s->model->cfg.vocab_size)
            return shoal_error_set(err, SHOAL_ERR_ARG, "token %d at index %u is out of range (vocabulary has %u)",
                                   tokens[i], i, s->model->cfg.vocab_size);
    return SHOAL_OK;
}

shoal_status lsession_prefill(lsession *s, const int32_t *tokens, uint32_t n, float *logits, shoal_error *err) {
    shoal_status st = check_tokens(s, tokens, n, err);
    if (st)
        return st;
    if (n == 0)
        return shoal_error_set(err, SHOAL_ERR_ARG, "prefill needs at least one token");
    for (uint32_t done = 0; done < n;) {
        uint32_t chunk = n - done < s->max_batch ? n - done : s->max_batch;
        bool last = done + chunk == n;
        s->be->upload(s->ctx, s->ids, tokens + done, (size_t)chunk * 4);
        st = lforward(s, chunk, last && logits, err);
        if (st)
            return st;
        s->pos += chunk;
        done += chunk;
    }
    if (logits)
        s->be->download(s->ctx, logits, s->logits, (size_t)s->model->cfg.vocab_size * 4);
    return SHOAL_OK;
}

shoal_status lsession_decode(lsession *s, int32_t token, float *logits, shoal_error *err) {
    shoal_status st = check_tokens(s, &token, 1, err);
    if (st)
        return st;
    s->be->upload(s->ctx, s->ids, &token, 4);
    st = lforward(s, 1, true, err);
    if (st)
        return st;
    s->pos++;
    if (logits)
        s->be->download(s->ctx, logits, s->logits, (size_t)s->model->cfg.vocab_size * 4);
    return SHOAL_OK;
}

uint64_t lsession_kv_bytes(const lsession *s) {
    return 2 * (uint64_t)s->kv.n_layers * lkv_layer_bytes(&s->kv);
}

uint64_t lsession_memory_bytes(const lsession *s) {
    return lsession_kv_bytes(s) + s->act_bytes;
}

static void *kv_layer(lsession *s, uint32_t layer, bool v) {
    return (char *)(v ? s->kv.v : s->kv.k) + (size_t)layer * lkv_layer_bytes(&s->kv);
}

static size_t kv_rows_bytes(const lsession *s, uint32_t n) {
    return (size_t)n * s->kv.kv_dim * (s->kv.dtype == LDT_F16 ? 2 : 4);
}

void lsession_kv_read(lsession *s, uint32_t layer, bool v, uint32_t n, void *dst) {
    s->be->download(s->ctx, dst, kv_layer(s, layer, v), kv_rows_bytes(s, n));
}

void lsession_kv_write(lsession *s, uint32_t layer, bool v, uint32_t n, const void *src) {
    s->be->upload(s->ctx, kv_layer(s, layer, v), src, kv_rows_bytes(s, n));
}
