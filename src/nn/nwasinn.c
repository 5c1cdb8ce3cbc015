/*
 * nwasinn.c: the `wasi_ephemeral_nn` import module as WasmEdge's GGML backend defines it, so that guests
 * built for WasmEdge/LlamaEdge run unchanged:
 *
 *   load(builders, n, encoding, target, *graph)        load_by_name(name, len, *graph)
 *   load_by_name_with_config(name, len, json, len, *graph)
 *   init_execution_context(graph, *ctx)               set_input(ctx, index, *tensor)
 *   compute(ctx)   compute_single(ctx)   fini_single(ctx)
 *   get_output(ctx, index, buf, cap, *written)        get_output_single(ctx, index, buf, cap, *written)
 *   unload(graph)  finalize_execution_context(ctx)
 *
 * Every function returns an errno (i32) and writes its result through the last (pointer) argument. A tensor
 * is a 20-byte record in guest memory: dims ptr, dims count, type byte at +8, data ptr, data length. Input
 * 0 is the UTF-8 prompt (tokenized at set_input), input 1 JSON options; output 0 is the generated text,
 * output 1 JSON counters. Encodings GGML = 6 (WasmEdge) and 5 (WAMR's numbering); targets CPU 0, GPU 1,
 * TPU 2, AUTO 3 (the model runs where it was preloaded). Our additions: a new prompt that extends what the
 * context's KV cache holds prefills only the new suffix (output 1 reports "reused_tokens"); outputs are
 * detokenized straight into the guest's buffer.
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

enum { /* WasmEdge's WASINN::ErrNo */
    NW_OK = 0,
    NW_EINVAL = 1,
    NW_EENCODING = 2,
    NW_EMEMORY = 3,
    NW_EBUSY = 4,
    NW_ERUNTIME = 5,
    NW_EUNSUPPORTED = 6,
    NW_ETOOLARGE = 7,
    NW_ENOTFOUND = 8,
    NW_END_OF_SEQUENCE = 100,
    NW_CONTEXT_FULL = 101,
    NW_PROMPT_TOO_LONG = 102,
    NW_MODEL_NOT_FOUND = 103,
};

static void opts_default(nwopts *o) {
    memset(o, 0, sizeof *o);
    o->n_predict = -1;
    shoal_sampler_params_default(&o->sp);
}

/* ---- helpers ------------------------------------------------------------------------------------- */

static int32_t nw_err(shoal_nn_ctx *c, bool log, int32_t code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static int32_t nw_err(shoal_nn_ctx *c, bool log, int32_t code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof c->last_error, fmt, ap);
    va_end(ap);
    if (log)
        fprintf(stderr, "[wasi-nn] %s (errno %d)\n", c->last_error, (int)code);
    return code;
}

static bool put_u32(shoal_call *call, uint32_t ptr, uint32_t v) {
    uint8_t *p = shoal_call_mem(call, ptr, 4);
    if (!p)
        return false;
    memcpy(p, &v, 4); /* little-endian host, as Wasm */
    nn_trace_bytes += 4;
    return true;
}

static uint32_t get_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static nwctx *ctx_at(shoal_nn_ctx *c, uint32_t id) { return id < NN_MAX_CTXS ? c->ctxs[id] : NULL; }

static int32_t read_options(shoal_nn_ctx *c, const uint8_t *json, uint32_t len, nwopts *o, bool log) {
    cJSON *root = cJSON_ParseWithLength((const char *)json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return nw_err(c, log, NW_EENCODING, "options are not a JSON object");
    }
    nwopts n = *o;
    int32_t rc = NW_OK;
    const cJSON *v;
#define NUM(key) ((v = cJSON_GetObjectItemCaseSensitive(root, key)) != NULL && cJSON_IsNumber(v))
    if (NUM("ctx-size")) {
        if (v->valuedouble < 1 || v->valuedouble > (1 << 24)) {
            rc = nw_err(c, log, NW_EINVAL, "ctx-size %g is out of range", v->valuedouble);
            goto done;
        }
        n.ctx_size = (uint32_t)v->valuedouble;
    }
    if (NUM("n-predict"))
        n.n_predict = v->valuedouble < 0 ? -1 : v->valuedouble > 1e9 ? 1000000000 : (int64_t)v->valuedouble;
    if (NUM("n-gpu-layers"))
        n.n_gpu_layers = (int64_t)v->valuedouble;
    if (NUM("temp"))
        n.sp.temperature = (float)v->valuedouble;
    if (NUM("top-p"))
        n.sp.top_p = (float)v->valuedouble;
    if (NUM("top-k"))
        n.sp.top_k = v->valuedouble > 1e9 ? 1000000000 : (int32_t)v->valuedouble;
    if (NUM("min-p"))
        n.sp.min_p = (float)v->valuedouble;
    if (NUM("repeat-penalty"))
        n.sp.repeat_penalty = (float)v->valuedouble;
    if (NUM("repeat-last-n"))
        n.sp.repeat_last_n = v->valuedouble < -1 ? -1 : v->valuedouble > 1e9 ? 1000000000 : (int32_t)v->valuedouble;
    if (NUM("seed"))
        n.sp.seed = v->valuedouble < 0 ? 0 : (uint64_t)v->valuedouble;
#undef NUM
    v = cJSON_GetObjectItemCaseSensitive(root, "reverse-prompt");
    if (v && cJSON_IsString(v)) {
        if (strlen(v->valuestring) >= sizeof n.reverse_prompt) {
            rc = nw_err(c, log, NW_EINVAL, "reverse-prompt is longer than %zu bytes", sizeof n.reverse_prompt - 1);
            goto done;
        }
        snprintf(n.reverse_prompt, sizeof n.reverse_prompt, "%s", v->valuestring);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "stream-stdout")) && cJSON_IsBool(v))
        n.stream_stdout = cJSON_IsTrue(v);
    if ((v = cJSON_GetObjectItemCaseSensitive(root, "enable-log")) && cJSON_IsBool(v))
        n.enable_log = cJSON_IsTrue(v);
    *o = n; /* unknown keys are ignored, as WasmEdge does */
done:
    cJSON_Delete(root);
    return rc;
}

/* Registers a graph for the preloaded model name[0..len); *id gets its handle. */
static int32_t graph_open(shoal_nn_ctx *c, const char *name, uint32_t len, const nwopts *o, uint32_t *id) {
    nmodel *nm = nmodels_lookup(c->reg, name, len);
    if (!nm)
        return nw_err(c, o->enable_log, NW_ENOTFOUND, "no model named '%.*s' was preloaded (--nn-preload)",
                      (int)(len > 200 ? 200 : len), name);
    if (!nm->model)
        return nw_err(c, o->enable_log, NW_MODEL_NOT_FOUND, "model '%s': %s does not exist", nm->name, nm->path);
    for (uint32_t i = 0; i < NN_MAX_GRAPHS; i++) {
        if (!c->graphs[i]) {
            nwgraph *g = calloc(1, sizeof *g);
            if (!g)
                return nw_err(c, o->enable_log, NW_ERUNTIME, "out of memory");
            g->nm = nm;
            g->opts = *o;
            c->graphs[i] = g;
            *id = i;
            return NW_OK;
        }
    }
    return nw_err(c, o->enable_log, NW_EBUSY, "too many graphs (%d)", NN_MAX_GRAPHS);
}

void nwctx_destroy(nwctx *x) {
    if (!x)
        return;
    ngen_free(x->gen);
    free(x->prompt);
    free(x->out);
    free(x);
}

void nwasinn_free_all(shoal_nn_ctx *c) {
    for (uint32_t i = 0; i < NN_MAX_CTXS; i++) {
        nwctx_destroy(c->ctxs[i]);
        c->ctxs[i] = NULL;
    }
    for (uint32_t i = 0; i < NN_MAX_GRAPHS; i++) {
        free(c->graphs[i]);
        c->graphs[i] = NULL;
    }
}

/* ---- graphs -------------------------------------------------------------------------------------- */

static shoal_status nw_load(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    shoal_nn_ctx *c = user;
    uint32_t builders = (uint32_t)a[0].i32, n = (uint32_t)a[1].i32, enc = (uint32_t)a[2].i32;
    uint32_t target = (uint32_t)a[3].i32, out = (uint32_t)a[4].i32;
    nwopts o;
    opts_default(&o);
    if (!shoal_call_memory(call, NULL)) {
        r[0].i32 = nw_err(c, false, NW_EMEMORY, "the guest has no memory");
        return SHOAL_OK;
    }
    if (!shoal_call_mem(call, out, 4)) {
        r[0].i32 = nw_err(c, false, NW_EINVAL, "load: graph pointer %u is out of bounds", out);
        return SHOAL_OK;
    }
    if (enc != 6 && enc != 5) {
        r[0].i32 = nw_err(c, false, NW_EENCODING, "load: encoding %u is not GGML (6, or 5 as WAMR numbers it)", enc);
        return SHOAL_OK;
    }
    if (target > 3) {
        r[0].i32 = nw_err(c, false, NW_EINVAL, "load: unknown execution target %u", target);
        return SHOAL_OK;
    }
    const uint8_t *pairs = shoal_call_mem_array(call, builders, n, 8, 1);
    if (!pairs || n == 0) {
        r[0].i32 = nw_err(c, false, NW_EINVAL, "load: builder array (%u, %u) is out of bounds or empty", builders, n);
        return SHOAL_OK;
    }
    uint32_t bptr = get_u32(pairs), blen = get_u32(pairs + 4);
    const char *bytes = shoal_call_mem(call, bptr, blen);
    if (!bytes) {
        r[0].i32 = nw_err(c, false, NW_EINVAL, "load: builder 0 (%u, %u) is out of bounds", bptr, blen);
        return SHOAL_OK;
    }
    nn_trace_bytes += (uint64_t)n * 8 + blen;
    /* Weights never enter guest memory here: a builder names a preloaded model ("preload:NAME" or NAME). */
    if (blen >= 8 && !memcmp(bytes, "preload:", 8)) {
        bytes += 8;
        blen -= 8;
    }
    if (!nmodels_lookup(c->reg, bytes, blen)) {
        r[0].i32 = nw_err(c, false, NW_EUNSUPPORTED,
                          "load: the builder does not name a preloaded model; Shoal does not load model bytes "
                          "from guest memory (use --nn-preload and load_by_name)");
        return SHOAL_OK;
    }
    uint32_t id = 0;
    int32_t rc = graph_open(c, bytes, blen, &o, &id);
    if (rc == NW_OK)
        put_u32(call, out, id);
    r[0].i32 = rc;
    return SHOAL_OK;
}

static int32_t load_named(shoal_call *call, shoal_nn_ctx *c, uint32_t name, uint32_t len, uint32_t cfg,
                          uint32_t cfg_len, bool with_cfg, uint32_t out) {
    nwopts o;
    opts_default(&o);
    if (!shoal_call_memory(call, NULL))
        return nw_err(c, false, NW_EMEMORY, "the guest has no memory");
    const char *n = shoal_call_mem(call, name, len);
    if (!n || len == 0)
        return nw_err(c, false, NW_EINVAL, "load_by_name: name (%u, %u) is out of bounds or empty", name, len);
    if (!shoal_call_mem(call, out, 4))
        return nw_err(c, false, NW_EINVAL, "load_by_name: graph pointer %u is out of bounds", out);
    nn_trace_bytes += len;
    if (with_cfg) {
        const uint8_t *j = shoal_call_mem(call, cfg, cfg_len);
        if (!j)
            return nw_err(c, false, NW_EINVAL, "load_by_name_with_config: config (%u, %u) is out of bounds", cfg,
                          cfg_len);
        nn_trace_bytes += cfg_len;
        if (cfg_len) {
            int32_t rc = read_options(c, j, cfg_len, &o, false);
            if (rc != NW_OK)
                return rc;
        }
    }
    uint32_t id = 0;
    int32_t rc = graph_open(c, n, len, &o, &id);
    if (rc == NW_OK)
        put_u32(call, out, id);
    return rc;
}

static shoal_status nw_load_by_name(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    r[0].i32 = load_named(call, user, (uint32_t)a[0].i32, (uint32_t)a[1].i32, 0, 0, false, (uint32_t)a[2].i32);
    return SHOAL_OK;
}

static shoal_status nw_load_by_name_with_config(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    r[0].i32 = load_named(call, user, (uint32_t)a[0].i32, (uint32_t)a[1].i32, (uint32_t)a[2].i32,
                          (uint32_t)a[3].i32, true, (uint32_t)a[4].i32);
    return SHOAL_OK;
}

static shoal_status nw_unload(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    (void)call;
    shoal_nn_ctx *c = user;
    uint32_t id = (uint32_t)a[0].i32;
    if (id >= NN_MAX_GRAPHS || !c->graphs[id]) {
        r[0].i32 = nw_err(c, false, NW_EINVAL, "unload: %u is not a graph", id);
        return SHOAL_OK;
    }
    /* Contexts made from it keep working: they hold the registry's model, which outlives the guest. */
    free(c->graphs[id]);
    c->graphs[id] = NULL;
    r[0].i32 = NW_OK;
    return SHOAL_OK;
}

/* ---- contexts ------------------------------------------------------------------------------------ */

static shoal_status nw_init_ctx(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    shoal_nn_ctx *c = user;
    uint32_t gid = (uint32_t)a[0].i32, out = (uint32_t)a[1].i32;
    nwgraph *g = gid < NN_MAX_GRAPHS ? c->graphs[gid] : NULL;
    if (!g) {
        r[0].i32 = nw_err(c, false, NW_EINVAL, "init_execution_context: %u is not a graph", gid);
        return SHOAL_OK;
    }
    if (!shoal_call_mem(call, out, 4)) {
        r[0].i32 = nw_err(c, g->opts.enable_log, NW_EINVAL, "init_execution_context: pointer %u is out of bounds",
                          out);
        return SHOAL_OK;
    }
    for (uint32_t i = 0; i < NN_MAX_CTXS; i++) {
        if (c->ctxs[i])
            continue;
        nwctx *x = calloc(1, sizeof *x);
        if (!x) {
            r[0].i32 = nw_err(c, g->opts.enable_log, NW_ERUNTIME, "out of memory");
            return SHOAL_OK;
        }
        x->nm = g->nm;
        x->opts = g->opts;
        x->pending = -1;
        c->ctxs[i] = x;
        put_u32(call, out, i);
        r[0].i32 = NW_OK;
        return SHOAL_OK;
    }
    r[0].i32 = nw_err(c, g->opts.enable_log, NW_EBUSY, "too many execution contexts (%d)", NN_MAX_CTXS);
    return SHOAL_OK;
}

static shoal_status nw_finalize_ctx(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    (void)call;
    shoal_nn_ctx *c = user;
    uint32_t id = (uint32_t)a[0].i32;
    nwctx *x = ctx_at(c, id);
    if (!x) {
        r[0].i32 = nw_err(c, false, NW_EINVAL, "finalize_execution_context: %u is not a context", id);
        return SHOAL_OK;
    }
    nwctx_destroy(x);
    c->ctxs[id] = NULL;
    r[0].i32 = NW_OK;
    return SHOAL_OK;
}

/* Tokenizes the prompt the way llama.cpp-based hosts do: control tokens written in the text count, and
 * BOS is put first unless the text starts with it already. */
static int32_t set_prompt(shoal_nn_ctx *c, nwctx *x, const char *text, uint32_t len) {
    const shoal_model_info *mi = &x->nm->info;
    if (!mi->has_tokenizer)
        return nw_err(c, x->opts.enable_log, NW_EUNSUPPORTED, "model '%s' has no tokenizer", x->nm->name);
    size_t n = 0;
    shoal_tokenize(x->nm->model, text, len, false, true, NULL, 0, &n, NULL);
    if (n + 2 > UINT32_MAX / 2)
        return nw_err(c, x->opts.enable_log, NW_ETOOLARGE, "prompt too large");
    if (n + 1 > x->cap_prompt) {
        int32_t *p = realloc(x->prompt, (n + 1) * sizeof *p);
        if (!p)
            return nw_err(c, x->opts.enable_log, NW_ERUNTIME, "out of memory");
        x->prompt = p;
        x->cap_prompt = (uint32_t)n + 1;
    }
    shoal_error e;
    if (shoal_tokenize(x->nm->model, text, len, false, true, x->prompt + 1, n, &n, &e) != SHOAL_OK)
        return nw_err(c, x->opts.enable_log, NW_EINVAL, "cannot tokenize the prompt: %s", e.message);
    bool bos = mi->bos_id >= 0 && (n == 0 || x->prompt[1] != mi->bos_id);
    if (bos)
        x->prompt[0] = mi->bos_id;
    else
        memmove(x->prompt, x->prompt + 1, n * sizeof *x->prompt);
    x->n_prompt = (uint32_t)n + bos;
    x->n_out = 0;
    x->reused = 0;
    x->pending = -1;
    x->single_started = false;
    return NW_OK;
}

static shoal_status nw_set_input(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    shoal_nn_ctx *c = user;
    uint32_t id = (uint32_t)a[0].i32, index = (uint32_t)a[1].i32, tp = (uint32_t)a[2].i32;
    nwctx *x = ctx_at(c, id);
    if (!x) {
        r[0].i32 = nw_err(c, false, NW_EINVAL, "set_input: %u is not a context", id);
        return SHOAL_OK;
    }
    bool log = x->opts.enable_log;
    const uint8_t *t = shoal_call_mem(call, tp, 20);
    if (!t) {
        r[0].i32 = nw_err(c, log, NW_EINVAL, "set_input: tensor record at %u is out of bounds", tp);
        return SHOAL_OK;
    }
    uint32_t dims = get_u32(t), ndims = get_u32(t + 4), type = t[8], data = get_u32(t + 12), len = get_u32(t + 16);
    const uint8_t *bytes = shoal_call_mem(call, data, len);
    if (!shoal_call_mem_array(call, dims, ndims, 4, 1) || !bytes) {
        r[0].i32 = nw_err(c, log, NW_EINVAL, "set_input: tensor dims (%u, %u) or data (%u, %u) out of bounds", dims,
                          ndims, data, len);
        return SHOAL_OK;
    }
    if (type > 5) { /* F16 F32 F64 U8 I32 I64 (older numbering: F16 F32 U8 I32) */
        r[0].i32 = nw_err(c, log, NW_EINVAL, "set_input: unknown tensor type %u", type);
        return SHOAL_OK;
    }
    nn_trace_bytes += 20 + (uint64_t)ndims * 4 + len;
    if (index == 0) {
        r[0].i32 = set_prompt(c, x, (const char *)bytes, len);
    } else if (index == 1) {
        nwopts o = x->opts;
        int32_t rc = read_options(c, bytes, len, &o, log);
        if (rc == NW_OK) {
            if (x->gen && o.ctx_size != x->opts.ctx_size) { /* a new context size needs a new session */
                ngen_free(x->gen);
                x->gen = NULL;
                x->single_started = false;
                x->pending = -1;
            }
            x->opts = o;
        }
        r[0].i32 = rc;
    } else {
        r[0].i32 = nw_err(c, log, NW_EINVAL, "set_input: index %u (0 is the prompt, 1 the options)", index);
    }
    return SHOAL_OK;
}

/* ---- compute ------------------------------------------------------------------------------------- */

/* Common start of compute and compute_single: a session, the sampler fresh, the prompt fed (reusing the
 * cached prefix). */
static int32_t begin(shoal_nn_ctx *c, nwctx *x) {
    bool log = x->opts.enable_log;
    shoal_error e;
    if (x->n_prompt == 0)
        return nw_err(c, log, NW_EINVAL, "no prompt: set_input(ctx, 0, ...) first");
    if (!x->gen && ngen_new(x->nm, x->opts.ctx_size, &x->opts.sp, &c->device_ns, &x->gen, &e) != SHOAL_OK)
        return nw_err(c, log, NW_ERUNTIME, "cannot open a session: %s", e.message);
    ngen *g = x->gen;
    if (x->n_prompt >= g->n_ctx)
        return nw_err(c, log, NW_PROMPT_TOO_LONG, "the prompt has %u tokens; the context holds %u", x->n_prompt,
                      g->n_ctx);
    if (x->cap_out < g->n_ctx + 1) {
        int32_t *o = realloc(x->out, ((size_t)g->n_ctx + 1) * sizeof *o);
        if (!o)
            return nw_err(c, log, NW_ERUNTIME, "out of memory");
        x->out = o;
        x->cap_out = g->n_ctx + 1;
    }
    if (ngen_set_sampler(g, &x->opts.sp, &e) != SHOAL_OK)
        return nw_err(c, log, NW_EINVAL, "sampler: %s", e.message);
    if (ngen_feed_prompt(g, x->prompt, x->n_prompt, &x->reused, &e) != SHOAL_OK)
        return nw_err(c, log, NW_ERUNTIME, "prefill: %s", e.message);
    x->n_out = 0;
    x->pending = -1;
    return NW_OK;
}

/* Samples the next token into x->out; NW_END_OF_SEQUENCE at an end-of-generation token. */
static int32_t next_token(shoal_nn_ctx *c, nwctx *x) {
    int32_t tok = ngen_sample(x->gen);
    if (tok < 0)
        return nw_err(c, x->opts.enable_log, NW_ERUNTIME, "the sampler could not choose a token (NaN logits?)");
    if (shoal_token_is_eog(x->nm->model, tok))
        return NW_END_OF_SEQUENCE;
    x->out[x->n_out++] = tok;
    return NW_OK;
}

static int32_t prev_of(const nwctx *x, uint32_t i) {
    return i ? x->out[i - 1] : x->n_prompt ? x->prompt[x->n_prompt - 1] : -1;
}

static shoal_status nw_compute(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    (void)call;
    shoal_nn_ctx *c = user;
    uint32_t id = (uint32_t)a[0].i32;
    nwctx *x = ctx_at(c, id);
    if (!x) {
        r[0].i32 = nw_err(c, false, NW_EINVAL, "compute: %u is not a context", id);
        return SHOAL_OK;
    }
    x->single_started = false;
    int32_t rc = begin(c, x);
    if (rc != NW_OK) {
        r[0].i32 = rc;
        return SHOAL_OK;
    }
    char tail[2 * sizeof x->opts.reverse_prompt]; /* the end of the text so far, for reverse-prompt */
    size_t tail_len = 0, rp_len = strlen(x->opts.reverse_prompt);
    for (int64_t i = 0; x->opts.n_predict < 0 || i < x->opts.n_predict; i++) {
        rc = next_token(c, x);
        if (rc != NW_OK)
            break;
        int32_t tok = x->out[x->n_out - 1];
        if (x->opts.stream_stdout || rp_len) {
            char piece[256];
            size_t n = shoal_detokenize(x->nm->model, prev_of(x, x->n_out - 1), tok, piece, sizeof piece);
            if (n > sizeof piece)
                n = sizeof piece;
            if (x->opts.stream_stdout) {
                fwrite(piece, 1, n, stdout);
                fflush(stdout);
            }
            if (rp_len) {
                if (tail_len + n > sizeof tail) { /* keep the last rp_len - 1 bytes: a match may straddle */
                    size_t keep = tail_len < rp_len ? tail_len : rp_len - 1;
                    memmove(tail, tail + tail_len - keep, keep);
                    tail_len = keep;
                }
                size_t take = n < sizeof tail - tail_len ? n : sizeof tail - tail_len;
                memcpy(tail + tail_len, piece, take);
                tail_len += take;
                if (memmem(tail, tail_len, x->opts.reverse_prompt, rp_len))
                    break;
            }
        }
        if (x->opts.n_predict >= 0 && i + 1 == x->opts.n_predict)
            break;
        if (ngen_position(x->gen) >= x->gen->n_ctx) {
            rc = nw_err(c, x->opts.enable_log, NW_CONTEXT_FULL, "the context (%u) is full", x->gen->n_ctx);
            break;
        }
        shoal_error e;
        if (ngen_decode(x->gen, tok, NULL, &e) != SHOAL_OK) {
            rc = nw_err(c, x->opts.enable_log, NW_ERUNTIME, "decode: %s", e.message);
            break;
        }
    }
    r[0].i32 = rc == NW_END_OF_SEQUENCE ? NW_OK : rc;
    return SHOAL_OK;
}

static shoal_status nw_compute_single(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    (void)call;
    shoal_nn_ctx *c = user;
    uint32_t id = (uint32_t)a[0].i32;
    nwctx *x = ctx_at(c, id);
    if (!x) {
        r[0].i32 = nw_err(c, false, NW_EINVAL, "compute_single: %u is not a context", id);
        return SHOAL_OK;
    }
    int32_t rc;
    if (!x->single_started) {
        rc = begin(c, x);
        if (rc != NW_OK) {
            r[0].i32 = rc;
            return SHOAL_OK;
        }
        x->single_started = true;
    } else if (x->pending >= 0) {
        if (ngen_position(x->gen) >= x->gen->n_ctx) {
            x->single_started = false;
            r[0].i32 = nw_err(c, x->opts.enable_log, NW_CONTEXT_FULL, "the context (%u) is full", x->gen->n_ctx);
            return SHOAL_OK;
        }
        shoal_error e;
        int32_t tok = x->pending;
        x->pending = -1;
        if (ngen_decode(x->gen, tok, NULL, &e) != SHOAL_OK) {
            x->single_started = false;
            r[0].i32 = nw_err(c, x->opts.enable_log, NW_ERUNTIME, "decode: %s", e.message);
            return SHOAL_OK;
        }
    }
    if (x->opts.n_predict >= 0 && x->n_out >= x->opts.n_predict) {
        x->single_started = false;
        r[0].i32 = NW_END_OF_SEQUENCE;
        return SHOAL_OK;
    }
    rc = next_token(c, x);
    if (rc != NW_OK)
        x->single_started = false;
    else
        x->pending = x->out[x->n_out - 1];
    r[0].i32 = rc;
    return SHOAL_OK;
}

static shoal_status nw_fini_single(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    (void)call;
    shoal_nn_ctx *c = user;
    uint32_t id = (uint32_t)a[0].i32;
    nwctx *x = ctx_at(c, id);
    if (!x) {
        r[0].i32 = nw_err(c, false, NW_EINVAL, "fini_single: %u is not a context", id);
        return SHOAL_OK;
    }
    /* The KV cache stays: the next request reuses whatever prefix it shares. */
    x->n_out = 0;
    x->pending = -1;
    x->single_started = false;
    r[0].i32 = NW_OK;
    return SHOAL_OK;
}

/* ---- outputs ------------------------------------------------------------------------------------- */

static int32_t write_metadata(shoal_nn_ctx *c, nwctx *x, uint8_t *dst, uint32_t cap, uint32_t *written) {
    char buf[512];
    ngen *g = x->gen;
    int n = snprintf(buf, sizeof buf,
                     "{\"input_tokens\": %u, \"output_tokens\": %u, \"reused_tokens\": %u, \"prefilled_tokens\": %u, "
                     "\"context_size\": %u, \"position\": %u, \"model\": \"%s\"}",
                     x->n_prompt, x->n_out, x->reused, x->n_prompt > x->reused ? x->n_prompt - x->reused : 0,
                     g ? g->n_ctx : (x->opts.ctx_size && x->opts.ctx_size < x->nm->info.seq_len ? x->opts.ctx_size
                                                                                                : x->nm->info.seq_len),
                     g ? ngen_position(g) : 0, x->nm->name);
    if (n < 0 || (size_t)n >= sizeof buf)
        return nw_err(c, x->opts.enable_log, NW_ERUNTIME, "metadata too long");
    *written = (uint32_t)n;
    if ((uint32_t)n > cap)
        return nw_err(c, x->opts.enable_log, NW_ETOOLARGE, "output 1 needs %d bytes, the buffer has %u", n, cap);
    memcpy(dst, buf, (size_t)n);
    nn_trace_bytes += (uint64_t)n;
    return NW_OK;
}

/* Detokenizes out[from, n_out) straight into dst. */
static int32_t write_text(shoal_nn_ctx *c, nwctx *x, uint32_t from, uint8_t *dst, uint32_t cap, uint32_t *written) {
    uint64_t used = 0;
    for (uint32_t i = from; i < x->n_out; i++) {
        size_t room = used < cap ? cap - used : 0;
        used += shoal_detokenize(x->nm->model, prev_of(x, i), x->out[i], (char *)dst + (used < cap ? used : 0),
                                 room);
    }
    *written = used > UINT32_MAX ? UINT32_MAX : (uint32_t)used;
    if (used > cap)
        return nw_err(c, x->opts.enable_log, NW_ETOOLARGE, "output 0 needs %llu bytes, the buffer has %u",
                      (unsigned long long)used, cap);
    nn_trace_bytes += used;
    return NW_OK;
}

static int32_t get_output(shoal_call *call, shoal_nn_ctx *c, const shoal_val *a, bool single) {
    uint32_t id = (uint32_t)a[0].i32, index = (uint32_t)a[1].i32, buf = (uint32_t)a[2].i32;
    uint32_t cap = (uint32_t)a[3].i32, wp = (uint32_t)a[4].i32;
    nwctx *x = ctx_at(c, id);
    if (!x)
        return nw_err(c, false, NW_EINVAL, "get_output: %u is not a context", id);
    bool log = x->opts.enable_log;
    uint64_t mem_size = 0;
    if (!shoal_call_memory(call, &mem_size))
        return nw_err(c, log, NW_EMEMORY, "the guest has no memory");
    /* LlamaEdge passes capacity 0 and expects the whole output: the rest of linear memory bounds it. */
    if (cap == 0 && buf <= mem_size)
        cap = (uint32_t)(mem_size - buf < UINT32_MAX ? mem_size - buf : UINT32_MAX);
    uint8_t *dst = shoal_call_mem(call, buf, cap);
    if (!dst || !shoal_call_mem(call, wp, 4))
        return nw_err(c, log, NW_EINVAL, "get_output: buffer (%u, %u) or written pointer %u out of bounds", buf, cap,
                      wp);
    uint32_t written = 0;
    int32_t rc;
    if (index == 1)
        rc = write_metadata(c, x, dst, cap, &written);
    else if (index == 0)
        rc = write_text(c, x, single ? (x->n_out ? x->n_out - 1 : 0) : 0, dst, cap, &written);
    else
        return nw_err(c, log, NW_EINVAL, "get_output: index %u (0 is the text, 1 the counters)", index);
    put_u32(call, wp, written);
    return rc;
}

static shoal_status nw_get_output(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    r[0].i32 = get_output(call, user, a, false);
    return SHOAL_OK;
}

static shoal_status nw_get_output_single(shoal_call *call, const shoal_val *a, shoal_val *r, void *user) {
    r[0].i32 = get_output(call, user, a, true);
    return SHOAL_OK;
}

shoal_status nwasinn_add_imports(shoal_nn_ctx *ctx, shoal_imports *imports, shoal_error *err) {
    static const struct {
        const char *name, *sig;
        shoal_host_fn fn;
    } fns[] = {
        {"load", "iiiii:i", nw_load},
        {"load_by_name", "iii:i", nw_load_by_name},
        {"load_by_name_with_config", "iiiii:i", nw_load_by_name_with_config},
        {"init_execution_context", "ii:i", nw_init_ctx},
        {"set_input", "iii:i", nw_set_input},
        {"compute", "i:i", nw_compute},
        {"compute_single", "i:i", nw_compute_single},
        {"get_output", "iiiii:i", nw_get_output},
        {"get_output_single", "iiiii:i", nw_get_output_single},
        {"fini_single", "i:i", nw_fini_single},
        {"unload", "i:i", nw_unload},
        {"finalize_execution_context", "i:i", nw_finalize_ctx},
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        shoal_status st = shoal_imports_add_func(imports, "wasi_ephemeral_nn", fns[i].name, fns[i].sig, fns[i].fn,
                                                 ctx, err);
        if (st != SHOAL_OK)
            return st;
    }
    return SHOAL_OK;
}
