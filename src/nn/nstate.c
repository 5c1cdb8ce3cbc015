/*
 * nstate.c: a guest's inference state (shoal.h section 11) as bytes and back, so that an actor resumed in
 * another process, on another machine or device, makes exactly the calls it would have made: every
 * shoal_llm session (by handle) and every wasi_ephemeral_nn graph and execution context (by id), with
 * their KV rows, token history, sampler parameters and generator state, logits and counters.
 *
 * Format (kbuf.h's encoding: little-endian fixed-width integers, str = u32 length + bytes, blob = u64
 * length + bytes), version 1, in this order:
 *
 *   u32 version                         1
 *   u32 n_models                        every registry entry, in registry order (missing preloads too)
 *     str name
 *     str spec                          NAME:GGML:TARGET:PATH as preloaded; "" for embedder-added models
 *     str identity                      "sha256:<64 hex>" (shoal info's), "" when the file was missing
 *   u64 device_ns                       shoal_nn_ctx_device_ns so far
 *   str last_error
 *   u32 n_sessions                      shoal_llm sessions, by ascending handle
 *     u32 handle                        1 .. NN_MAX_SESSIONS
 *     gen
 *   u32 n_graphs                        wasi_ephemeral_nn graphs, by ascending id
 *     u32 id                            0 .. NN_MAX_GRAPHS - 1
 *     u32 model                         index into the model list
 *     opts
 *   u32 n_ctxs                          wasi_ephemeral_nn execution contexts, by ascending id
 *     u32 id, u32 model, opts
 *     u32 n_prompt, i32 prompt[n_prompt]
 *     u32 n_out, i32 out[n_out]
 *     u32 reused, i32 pending, u8 single_started
 *     u8 has_gen, gen (when has_gen)
 *   u64 checksum                        XXH3-64 of every byte before it
 *
 *   gen  = u32 model, u32 n_ctx, u8 have_logits, u64 prompt_tokens, u64 gen_tokens, u64 reused_tokens,
 *          u64 forward_ns, blob kv
 *          kv is a KV snapshot's bytes (ksnap_encode: the same safetensors a shoal_session_save file holds):
 *          tokens = the history g->kv[0 .. position), the filled KV rows as host bytes in the session's
 *          dtype, the sampler's parameters and generator state, and the logits when have_logits (so a
 *          guest that decoded and did not sample yet samples the same token after a resume).
 *   opts = u32 ctx_size, i64 n_predict, i64 n_gpu_layers, u32 temperature (f32 bits), i32 top_k,
 *          u32 top_p, u32 min_p, u32 repeat_penalty (f32 bits), i32 repeat_last_n, u64 seed,
 *          str reverse_prompt, u8 stream_stdout, u8 enable_log
 *
 * Device independence: KV rows travel through the session API (lsession_kv_read / _write inside ksnap),
 * which moves them between the backend's memory and host bytes; nothing here knows which device a session
 * is on, so state saved from a CPU session loads into a CUDA one and back (same KV dtype: F32 for both).
 *
 * Loading is defensive: the checksum is verified first, then every count, id, index, length and token is
 * checked against what the bytes and the registry allow before anything is allocated for it; objects are
 * built aside and installed in ctx only when all of them are, so a failed load leaves ctx as it was
 * (empty). Corrupt bytes give SHOAL_ERR_FORMAT; a model absent or of another identity SHOAL_ERR_ARG.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "kbuf.h"
#include "ksnap.h"
#include "lapi.h"
#include "lload.h"
#include "nn.h"

#define NSTATE_VERSION 1
#define NSTATE_MAX_MODELS 4096
#define NSTATE_MAX_IDS (1u << 24) /* prompt / output lengths: far above any context */

/* ---- save ---------------------------------------------------------------------------------------- */

static void model_identity(nmodel *nm, char out[72]) {
    out[0] = 0;
    if (!nm->model)
        return;
    uint8_t id[32];
    char hex[65];
    lapi_model_id(nm->model, id);
    lload_id_hex(id, hex);
    snprintf(out, 72, "sha256:%s", hex);
}

static uint32_t model_index(const shoal_nn_ctx *ctx, const nmodel *nm) {
    return (uint32_t)(nm - ctx->reg->models);
}

static void put_f32(kbuf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    kbuf_u32(b, u);
}

static void put_opts(kbuf *b, const nwopts *o) {
    kbuf_u32(b, o->ctx_size);
    kbuf_u64(b, (uint64_t)o->n_predict);
    kbuf_u64(b, (uint64_t)o->n_gpu_layers);
    put_f32(b, o->sp.temperature);
    kbuf_u32(b, (uint32_t)o->sp.top_k);
    put_f32(b, o->sp.top_p);
    put_f32(b, o->sp.min_p);
    put_f32(b, o->sp.repeat_penalty);
    kbuf_u32(b, (uint32_t)o->sp.repeat_last_n);
    kbuf_u64(b, o->sp.seed);
    kbuf_str(b, o->reverse_prompt);
    kbuf_u8(b, o->stream_stdout);
    kbuf_u8(b, o->enable_log);
}

static void put_ids(kbuf *b, const int32_t *ids, uint32_t n) {
    kbuf_u32(b, n);
    for (uint32_t i = 0; i < n; i++)
        kbuf_u32(b, (uint32_t)ids[i]);
}

static shoal_status put_gen(kbuf *b, const shoal_nn_ctx *ctx, ngen *g, shoal_error *err) {
    shoal_snapshot_save_opts so = {g->kv, ngen_position(g), g->sampler, g->have_logits ? g->logits : NULL};
    struct iovec iov[2];
    shoal_status st = ksnap_encode(g->sess, &so, iov, err);
    if (st != SHOAL_OK)
        return st;
    kbuf_u32(b, model_index(ctx, g->nm));
    kbuf_u32(b, g->n_ctx);
    kbuf_u8(b, g->have_logits);
    kbuf_u64(b, g->prompt_tokens);
    kbuf_u64(b, g->gen_tokens);
    kbuf_u64(b, g->reused_tokens);
    kbuf_u64(b, g->forward_ns);
    kbuf_u64(b, (uint64_t)iov[0].iov_len + iov[1].iov_len);
    kbuf_put(b, iov[0].iov_base, iov[0].iov_len);
    kbuf_put(b, iov[1].iov_base, iov[1].iov_len);
    free(iov[0].iov_base);
    free(iov[1].iov_base);
    return SHOAL_OK;
}

shoal_status shoal_nn_ctx_state_save(shoal_nn_ctx *ctx, uint8_t **out, size_t *len, shoal_error *err) {
    if (!ctx || !out || !len)
        return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_nn_ctx_state_save: NULL argument");
    *out = NULL;
    *len = 0;
    const shoal_nn_registry *reg = ctx->reg;
    kbuf b;
    kbuf_init(&b);
    shoal_status st = SHOAL_OK;
    kbuf_u32(&b, NSTATE_VERSION);
    kbuf_u32(&b, reg->n);
    for (uint32_t i = 0; i < reg->n; i++) {
        char id[72];
        model_identity(&reg->models[i], id);
        kbuf_str(&b, reg->models[i].name);
        kbuf_str(&b, reg->models[i].spec);
        kbuf_str(&b, id);
    }
    kbuf_u64(&b, ctx->device_ns);
    kbuf_str(&b, ctx->last_error);

    uint32_t n = 0;
    for (uint32_t i = 0; i < NN_MAX_SESSIONS; i++)
        n += ctx->sessions[i] != NULL;
    kbuf_u32(&b, n);
    for (uint32_t i = 0; i < NN_MAX_SESSIONS && st == SHOAL_OK; i++) {
        if (!ctx->sessions[i])
            continue;
        kbuf_u32(&b, i + 1);
        st = put_gen(&b, ctx, ctx->sessions[i], err);
    }

    n = 0;
    for (uint32_t i = 0; i < NN_MAX_GRAPHS; i++)
        n += ctx->graphs[i] != NULL;
    kbuf_u32(&b, n);
    for (uint32_t i = 0; i < NN_MAX_GRAPHS; i++) {
        if (!ctx->graphs[i])
            continue;
        kbuf_u32(&b, i);
        kbuf_u32(&b, model_index(ctx, ctx->graphs[i]->nm));
        put_opts(&b, &ctx->graphs[i]->opts);
    }

    n = 0;
    for (uint32_t i = 0; i < NN_MAX_CTXS; i++)
        n += ctx->ctxs[i] != NULL;
    kbuf_u32(&b, n);
    for (uint32_t i = 0; i < NN_MAX_CTXS && st == SHOAL_OK; i++) {
        const nwctx *x = ctx->ctxs[i];
        if (!x)
            continue;
        kbuf_u32(&b, i);
        kbuf_u32(&b, model_index(ctx, x->nm));
        put_opts(&b, &x->opts);
        put_ids(&b, x->prompt, x->n_prompt);
        put_ids(&b, x->out, x->n_out);
        kbuf_u32(&b, x->reused);
        kbuf_u32(&b, (uint32_t)x->pending);
        kbuf_u8(&b, x->single_started);
        kbuf_u8(&b, x->gen != NULL);
        if (x->gen)
            st = put_gen(&b, ctx, x->gen, err);
    }
    if (st != SHOAL_OK)
        goto fail;
    if (!b.failed)
        kbuf_u64(&b, XXH3_64bits(b.data, b.len));
    *out = kbuf_take(&b, len);
    if (!*out)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "inference state: out of memory");
    return SHOAL_OK;
fail:
    kbuf_free(&b);
    return st;
}

/* ---- load ---------------------------------------------------------------------------------------- */

/* Objects built from the bytes, installed in the ctx only when every one of them is. */
typedef struct staged {
    nmodel **models; /* index in the saved list -> the new registry's entry (NULL: missing at save) */
    uint32_t n_models;
    ngen *sessions[NN_MAX_SESSIONS];
    nwgraph *graphs[NN_MAX_GRAPHS];
    nwctx *ctxs[NN_MAX_CTXS];
} staged;

static void staged_free(staged *S) {
    for (uint32_t i = 0; i < NN_MAX_SESSIONS; i++)
        ngen_free(S->sessions[i]);
    for (uint32_t i = 0; i < NN_MAX_GRAPHS; i++)
        free(S->graphs[i]);
    for (uint32_t i = 0; i < NN_MAX_CTXS; i++)
        nwctx_destroy(S->ctxs[i]);
    free(S->models);
}

static shoal_status corrupt(shoal_error *err, const char *what) {
    return shoal_error_set(err, SHOAL_ERR_FORMAT, "inference state: corrupt or truncated (%s)", what);
}

/* Checks the version and the checksum; r then reads the fields (the checksum excluded). */
static shoal_status open_bytes(const uint8_t *p, size_t len, kread *r, shoal_error *err) {
    if (!p || len < 12)
        return corrupt(err, "too short");
    uint64_t sum = 0;
    for (int i = 0; i < 8; i++)
        sum |= (uint64_t)p[len - 8 + i] << (8 * i);
    kread_init(r, p, len - 8);
    uint32_t ver = kread_u32(r);
    if (ver != NSTATE_VERSION)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "inference state: format version %" PRIu32
                               "; this Shoal reads version %d", ver, NSTATE_VERSION);
    if (XXH3_64bits(p, len - 8) != sum)
        return corrupt(err, "checksum mismatch");
    return SHOAL_OK;
}

/* The model a saved index names, loaded in the new registry (else FORMAT: the bytes only reference
 * models that were loaded when they were saved, and the identity check matched each of those). */
static nmodel *model_at(const staged *S, uint32_t i) {
    return i < S->n_models && S->models[i] && S->models[i]->model ? S->models[i] : NULL;
}

static shoal_status read_models(kread *r, shoal_nn_ctx *ctx, staged *S, shoal_error *err) {
    uint32_t n = kread_u32(r);
    /* each entry is at least three u32 lengths */
    if (r->failed || n > NSTATE_MAX_MODELS || (size_t)n * 12 > kread_left(r))
        return corrupt(err, "model count");
    S->models = calloc(n ? n : 1, sizeof *S->models);
    if (!S->models)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "inference state: out of memory");
    S->n_models = n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t nl, sl, il;
        const char *name = kread_strv(r, &nl), *spec = kread_strv(r, &sl), *id = kread_strv(r, &il);
        if (r->failed || nl == 0 || memchr(name, 0, nl) || (il != 0 && il != 71))
            return corrupt(err, "model list");
        if (il == 0) /* missing when saved: nothing of the guest can refer to it (model_at says NULL) */
            continue;
        nmodel *nm = nmodels_lookup(ctx->reg, name, nl);
        int pn = nl > 200 ? 200 : (int)nl, ps = sl > 3000 ? 3000 : (int)sl;
        char hint[3100];
        if (sl)
            snprintf(hint, sizeof hint, "--nn-preload %.*s", ps, spec);
        else
            snprintf(hint, sizeof hint, "--nn-preload %.*s:GGML:AUTO:PATH", pn, name);
        if (!nm || !nm->model)
            return shoal_error_set(err, SHOAL_ERR_ARG,
                                   "inference state: model '%.*s' (%.71s) is %s; preload it, e.g. %s", pn, name, id,
                                   nm ? "registered but its file is missing" : "not preloaded", hint);
        char mine[72];
        model_identity(nm, mine);
        if (strlen(mine) != il || memcmp(mine, id, il))
            return shoal_error_set(err, SHOAL_ERR_ARG,
                                   "inference state: model '%.*s' is %s here but was %.71s when saved; re-bind the "
                                   "name to the saved model with %s",
                                   pn, name, mine, id, hint);
        S->models[i] = nm;
    }
    return SHOAL_OK;
}

static float get_f32(kread *r) {
    uint32_t u = kread_u32(r);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static bool read_opts(kread *r, nwopts *o) {
    memset(o, 0, sizeof *o);
    o->ctx_size = kread_u32(r);
    o->n_predict = (int64_t)kread_u64(r);
    o->n_gpu_layers = (int64_t)kread_u64(r);
    o->sp.temperature = get_f32(r);
    o->sp.top_k = (int32_t)kread_u32(r);
    o->sp.top_p = get_f32(r);
    o->sp.min_p = get_f32(r);
    o->sp.repeat_penalty = get_f32(r);
    o->sp.repeat_last_n = (int32_t)kread_u32(r);
    o->sp.seed = kread_u64(r);
    uint32_t n;
    const char *rp = kread_strv(r, &n);
    uint8_t so = kread_u8(r), el = kread_u8(r);
    if (r->failed || n >= sizeof o->reverse_prompt || memchr(rp, 0, n) || so > 1 || el > 1 ||
        o->ctx_size > (1u << 24) || o->n_predict < -1 || o->n_predict > 1000000000)
        return false;
    memcpy(o->reverse_prompt, rp, n);
    o->stream_stdout = so;
    o->enable_log = el;
    return true;
}

/* n ids (each in [0, vocab)) into a new array of max(n, min_cap, 1) entries. */
static shoal_status read_ids(kread *r, uint32_t vocab, uint32_t min_cap, int32_t **out, uint32_t *n_out,
                             uint32_t *cap_out, shoal_error *err) {
    uint32_t n = kread_u32(r);
    if (r->failed || n > NSTATE_MAX_IDS || (size_t)n * 4 > kread_left(r))
        return corrupt(err, "token list length");
    uint32_t cap = n > min_cap ? n : min_cap;
    int32_t *ids = malloc((size_t)(cap ? cap : 1) * sizeof *ids);
    if (!ids)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "inference state: out of memory");
    for (uint32_t i = 0; i < n; i++) {
        ids[i] = (int32_t)kread_u32(r);
        if (ids[i] < 0 || (uint32_t)ids[i] >= vocab) {
            free(ids);
            return corrupt(err, "token outside the vocabulary");
        }
    }
    *out = ids;
    *n_out = n;
    *cap_out = cap ? cap : 1;
    return SHOAL_OK;
}

static shoal_status read_gen(kread *r, shoal_nn_ctx *ctx, const staged *S, const char *shown, ngen **out,
                             shoal_error *err) {
    *out = NULL;
    uint32_t mi = kread_u32(r), n_ctx = kread_u32(r);
    uint8_t have = kread_u8(r);
    uint64_t prompt = kread_u64(r), gen = kread_u64(r), reused = kread_u64(r), fwd = kread_u64(r), kv_len;
    const uint8_t *kv = kread_blob(r, &kv_len);
    nmodel *nm = model_at(S, mi);
    if (r->failed || !nm || have > 1 || n_ctx == 0 || n_ctx > nm->info.seq_len)
        return corrupt(err, "session record");
    shoal_sampler_params sp;
    shoal_sampler_params_default(&sp);
    ngen *g = NULL;
    shoal_status st = ngen_new(nm, n_ctx, &sp, &ctx->device_ns, &g, err);
    if (st != SHOAL_OK)
        return st;
    if (g->n_ctx != n_ctx) {
        st = corrupt(err, "session context size");
        goto fail;
    }
    shoal_sampler *fresh = NULL;
    shoal_snapshot_restored rs = {.tokens = g->kv, .tokens_cap = g->n_ctx + 1, .new_sampler = &fresh,
                                  .logits = g->logits};
    st = ksnap_restore_mem(g->sess, kv, (size_t)kv_len, shown, &rs, err);
    if (st == SHOAL_ERR_ARG || st == SHOAL_ERR_IO) { /* the blob disagrees with its own record: corrupt */
        st = SHOAL_ERR_FORMAT;
        if (err)
            err->status = st;
    }
    if (st != SHOAL_OK)
        goto fail;
    if (!fresh || rs.n_tokens != rs.n_positions || rs.has_logits != (bool)have) {
        shoal_sampler_free(fresh);
        st = corrupt(err, "session snapshot");
        goto fail;
    }
    shoal_sampler_free(g->sampler);
    g->sampler = fresh;
    g->sp = rs.sampler_params;
    g->have_logits = have;
    g->prompt_tokens = prompt;
    g->gen_tokens = gen;
    g->reused_tokens = reused;
    g->forward_ns = fwd;
    *out = g;
    return SHOAL_OK;
fail:
    ngen_free(g);
    return st;
}

static shoal_status read_ctx(kread *r, shoal_nn_ctx *ctx, const staged *S, uint32_t id, nwctx **out,
                             shoal_error *err) {
    *out = NULL;
    nwctx *x = calloc(1, sizeof *x);
    if (!x)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "inference state: out of memory");
    shoal_status st;
    x->nm = model_at(S, kread_u32(r));
    if (!x->nm || !read_opts(r, &x->opts)) {
        st = corrupt(err, "execution context");
        goto fail;
    }
    uint32_t vocab = x->nm->info.vocab_size;
    if ((st = read_ids(r, vocab, 0, &x->prompt, &x->n_prompt, &x->cap_prompt, err)) ||
        (st = read_ids(r, vocab, 0, &x->out, &x->n_out, &x->cap_out, err)))
        goto fail;
    x->reused = kread_u32(r);
    x->pending = (int32_t)kread_u32(r);
    uint8_t started = kread_u8(r), has_gen = kread_u8(r);
    if (r->failed || x->reused > x->n_prompt || started > 1 || has_gen > 1 || (started && !has_gen) ||
        (x->pending != -1 && (x->n_out == 0 || x->pending != x->out[x->n_out - 1]))) {
        st = corrupt(err, "execution context");
        goto fail;
    }
    x->single_started = started;
    if (has_gen) {
        char shown[64];
        snprintf(shown, sizeof shown, "inference state: context %u", id);
        if ((st = read_gen(r, ctx, S, shown, &x->gen, err)))
            goto fail;
        if (x->gen->nm != x->nm || x->n_out > x->gen->n_ctx + 1) {
            st = corrupt(err, "execution context session");
            goto fail;
        }
        /* compute_single appends to out without growing it: begin() sized it for the context */
        if (x->cap_out < x->gen->n_ctx + 1) {
            int32_t *o = realloc(x->out, ((size_t)x->gen->n_ctx + 1) * sizeof *o);
            if (!o) {
                st = shoal_error_set(err, SHOAL_ERR_NOMEM, "inference state: out of memory");
                goto fail;
            }
            x->out = o;
            x->cap_out = x->gen->n_ctx + 1;
        }
    }
    *out = x;
    return SHOAL_OK;
fail:
    nwctx_destroy(x);
    return st;
}

/* Reads a count and then that many ids, each below max and above the previous (so none repeats). */
static bool read_id(kread *r, uint32_t *prev, uint32_t lo, uint32_t hi, uint32_t *id) {
    *id = kread_u32(r);
    if (r->failed || *id < lo || *id > hi || (*prev != UINT32_MAX && *id <= *prev))
        return false;
    *prev = *id;
    return true;
}

shoal_status shoal_nn_ctx_state_load(shoal_nn_ctx *ctx, const uint8_t *p, size_t len, shoal_error *err) {
    if (!ctx || (!p && len))
        return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_nn_ctx_state_load: NULL argument");
    for (uint32_t i = 0; i < NN_MAX_SESSIONS; i++)
        if (ctx->sessions[i] || (i < NN_MAX_GRAPHS && ctx->graphs[i]) || (i < NN_MAX_CTXS && ctx->ctxs[i]))
            return shoal_error_set(err, SHOAL_ERR_ARG,
                                   "shoal_nn_ctx_state_load: the context already has sessions, graphs or contexts");
    kread r;
    staged S;
    memset(&S, 0, sizeof S);
    shoal_status st = open_bytes(p, len, &r, err);
    if (st != SHOAL_OK || (st = read_models(&r, ctx, &S, err)))
        goto fail;
    uint64_t device_ns = kread_u64(&r);
    uint32_t el;
    const char *last = kread_strv(&r, &el);
    if (r.failed || el >= sizeof ctx->last_error || memchr(last, 0, el)) {
        st = corrupt(err, "last error");
        goto fail;
    }

    uint32_t n = kread_u32(&r), prev = UINT32_MAX, id;
    if (r.failed || n > NN_MAX_SESSIONS) {
        st = corrupt(err, "session count");
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!read_id(&r, &prev, 1, NN_MAX_SESSIONS, &id)) {
            st = corrupt(err, "session handle");
            goto fail;
        }
        char shown[64];
        snprintf(shown, sizeof shown, "inference state: session %u", id);
        if ((st = read_gen(&r, ctx, &S, shown, &S.sessions[id - 1], err)))
            goto fail;
    }

    n = kread_u32(&r);
    prev = UINT32_MAX;
    if (r.failed || n > NN_MAX_GRAPHS) {
        st = corrupt(err, "graph count");
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        nwgraph g = {0};
        if (!read_id(&r, &prev, 0, NN_MAX_GRAPHS - 1, &id) || !(g.nm = model_at(&S, kread_u32(&r))) ||
            !read_opts(&r, &g.opts)) {
            st = corrupt(err, "graph");
            goto fail;
        }
        if (!(S.graphs[id] = malloc(sizeof g))) {
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "inference state: out of memory");
            goto fail;
        }
        *S.graphs[id] = g;
    }

    n = kread_u32(&r);
    prev = UINT32_MAX;
    if (r.failed || n > NN_MAX_CTXS) {
        st = corrupt(err, "context count");
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!read_id(&r, &prev, 0, NN_MAX_CTXS - 1, &id)) {
            st = corrupt(err, "context id");
            goto fail;
        }
        if ((st = read_ctx(&r, ctx, &S, id, &S.ctxs[id], err)))
            goto fail;
    }
    if (r.failed || kread_left(&r) != 0) {
        st = corrupt(err, "trailing bytes");
        goto fail;
    }

    /* Everything is built: install it. */
    memcpy(ctx->sessions, S.sessions, sizeof S.sessions);
    memcpy(ctx->graphs, S.graphs, sizeof S.graphs);
    memcpy(ctx->ctxs, S.ctxs, sizeof S.ctxs);
    memcpy(ctx->last_error, last, el);
    ctx->last_error[el] = 0;
    ctx->device_ns = device_ns;
    free(S.models);
    return SHOAL_OK;
fail:
    staged_free(&S);
    return st;
}

shoal_status shoal_nn_state_preloads(const uint8_t *p, size_t len, char ***specs, size_t *n_specs,
                                     shoal_error *err) {
    if (!specs || !n_specs)
        return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_nn_state_preloads: NULL argument");
    *specs = NULL;
    *n_specs = 0;
    kread r;
    shoal_status st = open_bytes(p, len, &r, err);
    if (st != SHOAL_OK)
        return st;
    /* Two passes over the model list: sizes, then one block of pointers followed by the strings. */
    size_t start = r.off, n = 0, bytes = 0;
    uint32_t count = kread_u32(&r);
    if (r.failed || count > NSTATE_MAX_MODELS)
        return corrupt(err, "model count");
    for (uint32_t i = 0; i < count; i++) {
        uint32_t sl;
        kread_strv(&r, NULL);
        const char *s = kread_strv(&r, &sl);
        kread_strv(&r, NULL);
        if (r.failed || (s && memchr(s, 0, sl)))
            return corrupt(err, "model list");
        if (sl) {
            n++;
            bytes += (size_t)sl + 1;
        }
    }
    char **out = malloc(n * sizeof *out + bytes + 1);
    if (!out)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "inference state: out of memory");
    char *text = (char *)(out + n);
    r.off = start;
    kread_u32(&r);
    for (uint32_t i = 0, k = 0; i < count; i++) {
        uint32_t sl;
        kread_strv(&r, NULL);
        const char *s = kread_strv(&r, &sl);
        kread_strv(&r, NULL);
        if (!sl)
            continue;
        memcpy(text, s, sl);
        text[sl] = 0;
        out[k++] = text;
        text += sl + 1;
    }
    *specs = out;
    *n_specs = n;
    return SHOAL_OK;
}
