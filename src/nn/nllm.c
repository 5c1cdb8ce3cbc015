/*
 * nllm.c: `shoal_llm`, Shoal's own import module for guests that want control over generation: sessions
 * on preloaded models, tokenization into guest buffers, prefill of token ids read from guest memory, one
 * decode step at a time with the logits (f32) written straight into a guest buffer or sampled on the host,
 * sampling parameters and usage counters. The guest side is declared in include/shoal_guest.h.
 *
 * Every function returns an i32: >= 0 on success, a negative SHOAL_LLM_E* code on failure (the message is
 * kept for shoal_llm.last_error). Every pointer and length is checked against the guest's memory.
 *
 * Snapshots: `save` and `restore` (nsnap.c) put one session in a file inside the guest's directories;
 * actor state (nstate.c) carries every session of the guest to another process. A session is fully
 * described by its model, g->n_ctx, the tokens g->kv[0 .. position) with their KV rows, the sampler (g->sp
 * and its generator state), g->logits while g->have_logits, and the counters. Nothing else of a session
 * lives outside struct ngen; a field added there must be carried by both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

enum { /* mirrored in include/shoal_guest.h */
    LL_EINVAL = -1,
    LL_EBOUNDS = -2,
    LL_EHANDLE = -3,
    LL_ENOTFOUND = -4,
    LL_ENOMEM = -5,
    LL_EFULL = -6,
    LL_ETOKEN = -7,
    LL_EDEVICE = -8,
    LL_ENOTOK = -9,
    LL_ESTATE = -10,
};

#define SESSION(name)                                                                                          \
    shoal_nn_ctx *c = user;                                                                                    \
    ngen *g = nn_session(c, a[0].i32);                                                                             \
    if (!g) {                                                                                                  \
        r[0].i32 = nn_fail(c, LL_EHANDLE, name ": %d is not an open session", a[0].i32);                       \
        return SHOAL_OK;                                                                                       \
    }

static int32_t status_code(shoal_status st) {
    switch (st) {
    case SHOAL_OK: return 0;
    case SHOAL_ERR_NOMEM: return LL_ENOMEM;
    case SHOAL_ERR_NOTFOUND: return LL_ENOTFOUND;
    case SHOAL_ERR_DEVICE: return LL_EDEVICE;
    default: return LL_EINVAL;
    }
}

/* open(name, name_len, n_ctx) -> handle */
static shoal_status ll_open(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    shoal_nn_ctx *c = user;
    uint32_t np = (uint32_t)a[0].i32, nl = (uint32_t)a[1].i32, n_ctx = (uint32_t)a[2].i32;
    const char *name = shoal_call_mem(call, np, nl);
    if (!name) {
        r[0].i32 = nn_fail(c, LL_EBOUNDS, "open: name (%u, %u) is out of bounds", np, nl);
        return SHOAL_OK;
    }
    nn_trace_bytes += nl;
    nmodel *nm = nmodels_lookup(c->reg, name, nl);
    if (!nm || !nm->model) {
        r[0].i32 = nn_fail(c, LL_ENOTFOUND, "open: no preloaded model named '%.*s'%s", (int)(nl > 200 ? 200 : nl),
                           name, nm ? " (its file is missing)" : "");
        return SHOAL_OK;
    }
    for (int32_t i = 0; i < NN_MAX_SESSIONS; i++) {
        if (c->sessions[i])
            continue;
        shoal_sampler_params sp;
        shoal_sampler_params_default(&sp);
        shoal_error e;
        shoal_status st = ngen_new(nm, n_ctx, &sp, &c->device_ns, &c->sessions[i], &e);
        r[0].i32 = st == SHOAL_OK ? i + 1 : nn_fail(c, status_code(st), "open: %s", e.message);
        return SHOAL_OK;
    }
    r[0].i32 = nn_fail(c, LL_ENOMEM, "open: too many sessions (%d)", NN_MAX_SESSIONS);
    return SHOAL_OK;
}

static shoal_status ll_close(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    (void)call;
    SESSION("close");
    ngen_free(g);
    c->sessions[a[0].i32 - 1] = NULL;
    r[0].i32 = 0;
    return SHOAL_OK;
}

/* info(h, out) writes 8 i32: vocab, n_ctx, bos, eos, dim, n_layers, n_heads, model seq_len. */
static shoal_status ll_info(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    SESSION("info");
    int32_t *out = shoal_call_mem_array(call, (uint32_t)a[1].i32, 8, 4, 4);
    if (!out) {
        r[0].i32 = nn_fail(c, LL_EBOUNDS, "info: 32 bytes at %u are out of bounds or unaligned", (uint32_t)a[1].i32);
        return SHOAL_OK;
    }
    const shoal_model_info *mi = &g->nm->info;
    int32_t v[8] = {(int32_t)mi->vocab_size, (int32_t)g->n_ctx, mi->bos_id, mi->eos_id, (int32_t)mi->dim,
                    (int32_t)mi->n_layers, (int32_t)mi->n_heads, (int32_t)mi->seq_len};
    memcpy(out, v, sizeof v);
    nn_trace_bytes += sizeof v;
    r[0].i32 = 0;
    return SHOAL_OK;
}

/* tokenize(h, text, len, flags, ids, max_ids) -> count; ids written only when they all fit. flags: 1 add
 * BOS, 2 parse special tokens. */
static shoal_status ll_tokenize(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    SESSION("tokenize");
    uint32_t tp = (uint32_t)a[1].i32, tl = (uint32_t)a[2].i32, flags = (uint32_t)a[3].i32;
    uint32_t ip = (uint32_t)a[4].i32, max = (uint32_t)a[5].i32;
    const char *text = shoal_call_mem(call, tp, tl);
    int32_t *ids = shoal_call_mem_array(call, ip, max, 4, 4);
    if (!text || (!ids && max)) {
        r[0].i32 = nn_fail(c, LL_EBOUNDS, "tokenize: text (%u, %u) or ids (%u, %u) out of bounds or unaligned", tp, tl,
                           ip, max);
        return SHOAL_OK;
    }
    if (flags > 3) {
        r[0].i32 = nn_fail(c, LL_EINVAL, "tokenize: unknown flags %u", flags);
        return SHOAL_OK;
    }
    if (!g->nm->info.has_tokenizer) {
        r[0].i32 = nn_fail(c, LL_ENOTOK, "tokenize: the model has no tokenizer");
        return SHOAL_OK;
    }
    size_t n = 0;
    shoal_error e;
    shoal_status st = shoal_tokenize(g->nm->model, text, tl, flags & 1, flags & 2, NULL, 0, &n, &e);
    if (st != SHOAL_OK && n == 0 && tl) {
        r[0].i32 = nn_fail(c, LL_EINVAL, "tokenize: %s", e.message);
        return SHOAL_OK;
    }
    if (n > INT32_MAX) {
        r[0].i32 = nn_fail(c, LL_EINVAL, "tokenize: too many tokens");
        return SHOAL_OK;
    }
    if (n <= max && n > 0) { /* straight into guest memory */
        st = shoal_tokenize(g->nm->model, text, tl, flags & 1, flags & 2, ids, max, &n, &e);
        if (st != SHOAL_OK) {
            r[0].i32 = nn_fail(c, LL_EINVAL, "tokenize: %s", e.message);
            return SHOAL_OK;
        }
        nn_trace_bytes += n * 4;
    }
    nn_trace_bytes += tl;
    r[0].i32 = (int32_t)n;
    return SHOAL_OK;
}

/* detokenize(h, prev, id, buf, cap) -> full length (at most cap bytes written) */
static shoal_status ll_detokenize(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    SESSION("detokenize");
    int32_t prev = a[1].i32, id = a[2].i32;
    uint32_t bp = (uint32_t)a[3].i32, cap = (uint32_t)a[4].i32;
    char *buf = shoal_call_mem(call, bp, cap);
    if (!buf) {
        r[0].i32 = nn_fail(c, LL_EBOUNDS, "detokenize: buffer (%u, %u) is out of bounds", bp, cap);
        return SHOAL_OK;
    }
    if (id < 0 || (uint32_t)id >= g->n_vocab || prev < -1 || (prev >= 0 && (uint32_t)prev >= g->n_vocab)) {
        r[0].i32 = nn_fail(c, LL_ETOKEN, "detokenize: token %d (after %d) is outside the vocabulary", id, prev);
        return SHOAL_OK;
    }
    if (!g->nm->info.has_tokenizer) {
        r[0].i32 = nn_fail(c, LL_ENOTOK, "detokenize: the model has no tokenizer");
        return SHOAL_OK;
    }
    size_t n = shoal_detokenize(g->nm->model, prev, id, buf, cap);
    nn_trace_bytes += n < cap ? n : cap;
    r[0].i32 = n > INT32_MAX ? INT32_MAX : (int32_t)n;
    return SHOAL_OK;
}

static shoal_status ll_is_eog(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    (void)call;
    SESSION("is_eog");
    if (a[1].i32 < 0 || (uint32_t)a[1].i32 >= g->n_vocab) {
        r[0].i32 = nn_fail(c, LL_ETOKEN, "is_eog: token %d is outside the vocabulary", a[1].i32);
        return SHOAL_OK;
    }
    r[0].i32 = g->nm->info.has_tokenizer && shoal_token_is_eog(g->nm->model, a[1].i32);
    return SHOAL_OK;
}

/* The guest's logits buffer (ptr, cap floats): NULL with *rc set when bad; ptr 0 means "none". */
static float *logits_dst(shoal_call *call, shoal_nn_ctx *c, ngen *g, uint32_t ptr, uint32_t cap, int32_t *rc) {
    *rc = 0;
    if (ptr == 0)
        return NULL;
    if (cap < g->n_vocab) {
        *rc = nn_fail(c, LL_EINVAL, "logits buffer holds %u floats; the vocabulary has %u", cap, g->n_vocab);
        return NULL;
    }
    float *p = shoal_call_mem_array(call, ptr, g->n_vocab, 4, 4);
    if (!p)
        *rc = nn_fail(c, LL_EBOUNDS, "logits buffer (%u, %u floats) is out of bounds or unaligned", ptr, g->n_vocab);
    return p;
}

static int32_t forward_code(shoal_nn_ctx *c, ngen *g, shoal_status st, const shoal_error *e, uint32_t n) {
    if (st == SHOAL_OK)
        return 0;
    if (st == SHOAL_ERR_ARG && (uint64_t)ngen_position(g) + n > g->n_ctx)
        return nn_fail(c, LL_EFULL, "%s", e->message);
    if (st == SHOAL_ERR_ARG)
        return nn_fail(c, LL_ETOKEN, "%s", e->message);
    return nn_fail(c, status_code(st), "%s", e->message);
}

/* prefill(h, ids, n, logits, cap) -> 0; logits (0 = none) receives the vocabulary's logits after the last. */
static shoal_status ll_prefill(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    SESSION("prefill");
    uint32_t ip = (uint32_t)a[1].i32, n = (uint32_t)a[2].i32;
    const int32_t *ids = shoal_call_mem_array(call, ip, n, 4, 4);
    if (!ids || n == 0) {
        r[0].i32 = nn_fail(c, ids ? LL_EINVAL : LL_EBOUNDS, "prefill: ids (%u, %u) are out of bounds, unaligned or "
                           "empty", ip, n);
        return SHOAL_OK;
    }
    int32_t rc;
    float *out = logits_dst(call, c, g, (uint32_t)a[3].i32, (uint32_t)a[4].i32, &rc);
    if (rc) {
        r[0].i32 = rc;
        return SHOAL_OK;
    }
    shoal_error e;
    shoal_status st = ngen_prefill(g, ids, n, out, &e);
    if (st == SHOAL_OK)
        nn_trace_bytes += (uint64_t)n * 4 + (out ? (uint64_t)g->n_vocab * 4 : 0);
    r[0].i32 = forward_code(c, g, st, &e, n);
    return SHOAL_OK;
}

/* decode(h, id, logits, cap) -> 0: runs one token. */
static shoal_status ll_decode(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    SESSION("decode");
    int32_t rc;
    float *out = logits_dst(call, c, g, (uint32_t)a[2].i32, (uint32_t)a[3].i32, &rc);
    if (rc) {
        r[0].i32 = rc;
        return SHOAL_OK;
    }
    shoal_error e;
    shoal_status st = ngen_decode(g, a[1].i32, out, &e);
    if (st == SHOAL_OK && out)
        nn_trace_bytes += (uint64_t)g->n_vocab * 4;
    r[0].i32 = forward_code(c, g, st, &e, 1);
    return SHOAL_OK;
}

/* sample(h) -> id, from the logits of the last prefill/decode that kept them on the host (logits 0), with the
 * session's history. */
static shoal_status ll_sample(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    (void)call;
    SESSION("sample");
    if (!g->have_logits) {
        r[0].i32 = nn_fail(c, LL_ESTATE, "sample: no logits: prefill or decode first (each logits sample once)");
        return SHOAL_OK;
    }
    int32_t id = ngen_sample(g);
    r[0].i32 = id >= 0 ? id : nn_fail(c, LL_EINVAL, "sample: no token can be chosen (NaN logits?)");
    return SHOAL_OK;
}

/* step(h, id, out_id) -> 0: decode id, sample the next, write it (i32) at out_id: one crossing per token. */
static shoal_status ll_step(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    SESSION("step");
    int32_t *out = shoal_call_mem_array(call, (uint32_t)a[2].i32, 1, 4, 4);
    if (!out) {
        r[0].i32 = nn_fail(c, LL_EBOUNDS, "step: output %u is out of bounds or unaligned", (uint32_t)a[2].i32);
        return SHOAL_OK;
    }
    shoal_error e;
    shoal_status st = ngen_decode(g, a[1].i32, NULL, &e);
    if (st != SHOAL_OK) {
        r[0].i32 = forward_code(c, g, st, &e, 1);
        return SHOAL_OK;
    }
    int32_t id = ngen_sample(g);
    if (id < 0) {
        r[0].i32 = nn_fail(c, LL_EINVAL, "step: no token can be chosen (NaN logits?)");
        return SHOAL_OK;
    }
    *out = id;
    nn_trace_bytes += 4;
    r[0].i32 = 0;
    return SHOAL_OK;
}

/* set_sampler(h, params): 32 bytes, 8-aligned: f32 temperature, i32 top_k, f32 top_p, f32 min_p,
 * f32 repeat_penalty, i32 repeat_last_n, u64 seed. Resets the sampler's state. */
static shoal_status ll_set_sampler(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    SESSION("set_sampler");
    const uint8_t *p = shoal_call_mem_array(call, (uint32_t)a[1].i32, 1, 32, 8);
    if (!p) {
        r[0].i32 = nn_fail(c, LL_EBOUNDS, "set_sampler: 32 bytes at %u are out of bounds or unaligned",
                           (uint32_t)a[1].i32);
        return SHOAL_OK;
    }
    shoal_sampler_params sp;
    memcpy(&sp.temperature, p, 4);
    memcpy(&sp.top_k, p + 4, 4);
    memcpy(&sp.top_p, p + 8, 4);
    memcpy(&sp.min_p, p + 12, 4);
    memcpy(&sp.repeat_penalty, p + 16, 4);
    memcpy(&sp.repeat_last_n, p + 20, 4);
    memcpy(&sp.seed, p + 24, 8);
    nn_trace_bytes += 32;
    shoal_error e;
    shoal_status st = ngen_set_sampler(g, &sp, &e);
    r[0].i32 = st == SHOAL_OK ? 0 : nn_fail(c, LL_EINVAL, "set_sampler: %s", e.message);
    return SHOAL_OK;
}

static shoal_status ll_position(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    (void)call;
    SESSION("position");
    r[0].i32 = (int32_t)ngen_position(g);
    return SHOAL_OK;
}

/* rewind(h, n): keep the first n positions (n <= position). */
static shoal_status ll_rewind(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    (void)call;
    SESSION("rewind");
    shoal_error e;
    if (a[1].i32 < 0 || ngen_truncate(g, (uint32_t)a[1].i32, &e) != SHOAL_OK) {
        r[0].i32 = nn_fail(c, LL_EINVAL, "rewind: %d is not in [0, %u]", a[1].i32, ngen_position(g));
        return SHOAL_OK;
    }
    r[0].i32 = 0;
    return SHOAL_OK;
}

/* usage(h, out): 6 u64 (8-aligned): prompt tokens prefilled, tokens decoded, prompt tokens reused, position,
 * context size, nanoseconds in forward passes. */
static shoal_status ll_usage(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    SESSION("usage");
    uint64_t *out = shoal_call_mem_array(call, (uint32_t)a[1].i32, 6, 8, 8);
    if (!out) {
        r[0].i32 = nn_fail(c, LL_EBOUNDS, "usage: 48 bytes at %u are out of bounds or unaligned", (uint32_t)a[1].i32);
        return SHOAL_OK;
    }
    uint64_t v[6] = {g->prompt_tokens, g->gen_tokens, g->reused_tokens, ngen_position(g), g->n_ctx, g->forward_ns};
    memcpy(out, v, sizeof v);
    nn_trace_bytes += sizeof v;
    r[0].i32 = 0;
    return SHOAL_OK;
}

/* last_error(buf, cap) -> full length; NUL-terminated when it fits. */
static shoal_status ll_last_error(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    shoal_nn_ctx *c = user;
    uint32_t bp = (uint32_t)a[0].i32, cap = (uint32_t)a[1].i32;
    char *buf = shoal_call_mem(call, bp, cap);
    if (!buf) {
        r[0].i32 = LL_EBOUNDS; /* keeps the message being asked for */
        return SHOAL_OK;
    }
    size_t n = strlen(c->last_error);
    if (cap) {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(buf, c->last_error, k);
        buf[k] = 0;
    }
    r[0].i32 = (int32_t)n;
    return SHOAL_OK;
}

shoal_status nllm_add_imports(shoal_nn_ctx *ctx, shoal_imports *imports, shoal_error *err) {
    static const struct {
        const char *name, *sig;
        shoal_host_fn fn;
    } fns[] = {
        {"open", "iii:i", ll_open},
        {"close", "i:i", ll_close},
        {"info", "ii:i", ll_info},
        {"tokenize", "iiiiii:i", ll_tokenize},
        {"detokenize", "iiiii:i", ll_detokenize},
        {"is_eog", "ii:i", ll_is_eog},
        {"prefill", "iiiii:i", ll_prefill},
        {"decode", "iiii:i", ll_decode},
        {"sample", "i:i", ll_sample},
        {"step", "iii:i", ll_step},
        {"set_sampler", "ii:i", ll_set_sampler},
        {"position", "i:i", ll_position},
        {"rewind", "ii:i", ll_rewind},
        {"usage", "ii:i", ll_usage},
        {"last_error", "ii:i", ll_last_error},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        shoal_status st = shoal_imports_add_func(imports, "shoal_llm", fns[i].name, fns[i].sig, fns[i].fn, ctx, err);
        if (st != SHOAL_OK)
            return st;
    }
    return SHOAL_OK;
}
