/*
 * ngen.c: the generation core shared by wasi_ephemeral_nn and shoal_llm: a session on a preloaded model,
 * the tokens its KV cache holds (for prefix reuse), its sampler and its logits. The steps are those of
 * `shoal generate` (src/cli/cmd_generate.c), so a guest gets exactly its tokens for the same options.
 */
#include <stdlib.h>
#include <string.h>

#include "nn.h"

shoal_status ngen_new(nmodel *nm, uint32_t n_ctx, const shoal_sampler_params *sp, uint64_t *acc_ns, ngen **out,
                      shoal_error *err) {
    *out = NULL;
    if (!nm->model)
        return shoal_error_set(err, SHOAL_ERR_NOTFOUND, "model '%s' was not found at %s", nm->name, nm->path);
    if (n_ctx == 0 || n_ctx > nm->info.seq_len)
        n_ctx = nm->info.seq_len;
    ngen *g = calloc(1, sizeof *g);
    if (!g)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    g->nm = nm;
    g->acc_ns = acc_ns;
    g->n_vocab = nm->info.vocab_size;
    shoal_session_options so = {.n_ctx = n_ctx};
    shoal_status st = shoal_session_new(nm->model, &so, &g->sess, err);
    if (st != SHOAL_OK)
        goto fail;
    g->n_ctx = shoal_session_context(g->sess);
    g->kv = calloc((size_t)g->n_ctx + 1, sizeof *g->kv);
    g->logits = calloc(g->n_vocab ? g->n_vocab : 1, sizeof *g->logits);
    if (!g->kv || !g->logits) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    st = ngen_set_sampler(g, sp, err);
    if (st != SHOAL_OK)
        goto fail;
    *out = g;
    return SHOAL_OK;
fail:
    ngen_free(g);
    return st;
}

void ngen_free(ngen *g) {
    if (!g)
        return;
    shoal_sampler_free(g->sampler);
    shoal_session_free(g->sess);
    free(g->kv);
    free(g->logits);
    free(g);
}

shoal_status ngen_set_sampler(ngen *g, const shoal_sampler_params *sp, shoal_error *err) {
    shoal_sampler *s = NULL;
    shoal_status st = shoal_sampler_new(sp, &s, err);
    if (st != SHOAL_OK)
        return st;
    shoal_sampler_free(g->sampler);
    g->sampler = s;
    g->sp = *sp;
    return SHOAL_OK;
}

uint32_t ngen_position(const ngen *g) { return shoal_session_position(g->sess); }

shoal_status ngen_truncate(ngen *g, uint32_t n, shoal_error *err) {
    uint32_t was = ngen_position(g);
    shoal_status st = shoal_session_truncate(g->sess, n, err);
    if (st == SHOAL_OK && n < was)
        g->have_logits = false; /* they belonged to a position that is gone */
    return st;
}

static void ngen_account(ngen *g, uint64_t t0) {
    uint64_t dt = nn_now_ns() - t0;
    g->forward_ns += dt;
    if (g->acc_ns)
        *g->acc_ns += dt;
}

shoal_status ngen_prefill(ngen *g, const int32_t *ids, uint32_t n, float *out, shoal_error *err) {
    uint32_t pos = ngen_position(g);
    if ((uint64_t)pos + n > g->n_ctx)
        return shoal_error_set(err, SHOAL_ERR_ARG, "context full: %u positions used, %u more, context is %u", pos, n,
                               g->n_ctx);
    uint64_t t0 = nn_now_ns();
    shoal_status st = shoal_session_prefill(g->sess, ids, n, out ? out : g->logits, err);
    ngen_account(g, t0);
    if (st != SHOAL_OK)
        return st;
    memcpy(g->kv + pos, ids, (size_t)n * sizeof *ids);
    g->have_logits = !out;
    g->prompt_tokens += n;
    return SHOAL_OK;
}

shoal_status ngen_decode(ngen *g, int32_t id, float *out, shoal_error *err) {
    uint32_t pos = ngen_position(g);
    uint64_t t0 = nn_now_ns();
    shoal_status st = shoal_session_decode(g->sess, id, out ? out : g->logits, err);
    ngen_account(g, t0);
    if (st != SHOAL_OK)
        return st;
    g->kv[pos] = id;
    g->have_logits = !out;
    g->gen_tokens++;
    return SHOAL_OK;
}

int32_t ngen_sample(ngen *g) {
    if (!g->have_logits)
        return -1;
    g->have_logits = false; /* the sampler scribbles on them */
    return shoal_sampler_next(g->sampler, g->logits, g->n_vocab, g->kv, ngen_position(g));
}

shoal_status ngen_feed_prompt(ngen *g, const int32_t *ids, uint32_t n, uint32_t *reused, shoal_error *err) {
    if (n == 0)
        return shoal_error_set(err, SHOAL_ERR_ARG, "empty prompt");
    uint32_t pos = ngen_position(g), common = 0;
    while (common < pos && common < n && g->kv[common] == ids[common])
        common++;
    if (common == n) /* the whole prompt is cached: run its last token again for fresh logits */
        common = n - 1;
    shoal_status st = ngen_truncate(g, common, err);
    if (st != SHOAL_OK)
        return st;
    st = ngen_prefill(g, ids + common, n - common, NULL, err);
    if (st != SHOAL_OK)
        return st;
    g->reused_tokens += common;
    if (reused)
        *reused = common;
    return SHOAL_OK;
}
