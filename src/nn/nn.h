/*
 * nn.h: shared internals of the guest inference modules (src/nn): the preloaded-model registry (nmodels.c),
 * the per-guest state that wasi_ephemeral_nn (nwasinn.c) and shoal_llm (nllm.c) keep in one shoal_nn_ctx,
 * the generation core both use (ngen.c), and the byte counter that --trace reads (ntrace.c).
 *
 * Isolation invariant: every session, sampler, token list and logits buffer below belongs to exactly one
 * shoal_nn_ctx (one guest). Sessions allocate their KV cache and activations zeroed (lbackend alloc), and a
 * guest only ever receives logits written by a forward pass of its own session, so nothing of another
 * guest's prompts, KV or outputs can reach it. Models are shared read-only.
 */
#ifndef NN_H
#define NN_H

#include <stdbool.h>
#include <stdint.h>

#include "shoal.h"

/* ---- registry ------------------------------------------------------------------------------------ */

typedef struct nmodel {
    char *name, *path;
    char *spec;         /* the preload spec NAME:GGML:TARGET:PATH (PATH absolute when it existed); "" for
                           shoal_nn_registry_add models. Actor state records it (nstate.c). */
    shoal_model *model; /* NULL when the preload path was missing */
    bool owned;         /* loaded by the registry (freed with it) */
    shoal_model_info info;
} nmodel;

struct shoal_nn_registry {
    nmodel *models;
    uint32_t n, cap;
};

/* The entry named name (including missing preloads), or NULL. */
nmodel *nmodels_lookup(const shoal_nn_registry *reg, const char *name, size_t len);

/* ---- generation core: one session plus what sampling needs ---------------------------------------- */

typedef struct ngen {
    nmodel *nm;
    shoal_session *sess;
    shoal_sampler *sampler;
    shoal_sampler_params sp;
    int32_t *kv;      /* the tokens whose KV is in the session: kv[0 .. position) */
    float *logits;    /* host scratch: logits of the last forward pass (the sampler uses it as scratch) */
    bool have_logits; /* logits holds the result of a forward pass of this session */
    uint32_t n_ctx, n_vocab;
    uint64_t prompt_tokens, reused_tokens, gen_tokens, forward_ns;
    uint64_t *acc_ns; /* the guest's device-time total (shoal_nn_ctx.device_ns), also advanced */
} ngen;

/* n_ctx 0 = the model's; larger than the model's is clamped to it. */
shoal_status ngen_new(nmodel *nm, uint32_t n_ctx, const shoal_sampler_params *sp, uint64_t *acc_ns, ngen **out,
                      shoal_error *err);
void ngen_free(ngen *g);
/* Replaces the sampler (fresh state, same seed => same choices). */
shoal_status ngen_set_sampler(ngen *g, const shoal_sampler_params *sp, shoal_error *err);
/* Brings the session to hold exactly ids[0..n): keeps the longest common prefix with what it holds (at
 * most n-1 tokens, so that the last one is run and logits exist) and prefills the rest. *reused gets the
 * kept count. */
shoal_status ngen_feed_prompt(ngen *g, const int32_t *ids, uint32_t n, uint32_t *reused, shoal_error *err);
/* Prefill n more tokens at the current position. The logits go to out when it is non-NULL (e.g. straight
 * into guest memory; the guest then owns them and ngen_sample has none), else to g->logits. */
shoal_status ngen_prefill(ngen *g, const int32_t *ids, uint32_t n, float *out, shoal_error *err);
/* One token; logits as for ngen_prefill. */
shoal_status ngen_decode(ngen *g, int32_t id, float *out, shoal_error *err);
/* Samples from g->logits with the history g->kv; -1 when nothing can be chosen. */
int32_t ngen_sample(ngen *g);
uint32_t ngen_position(const ngen *g);
/* Keeps the first n positions. */
shoal_status ngen_truncate(ngen *g, uint32_t n, shoal_error *err);

/* ---- wasi_ephemeral_nn objects (nwasinn.c; here so that nstate.c can carry them) ------------------- */

typedef struct nwopts {
    uint32_t ctx_size;      /* 0 = the model's */
    int64_t n_predict;      /* < 0: until end of generation or a full context */
    int64_t n_gpu_layers;   /* accepted; the preload target decides where the model runs */
    shoal_sampler_params sp;
    char reverse_prompt[256];
    bool stream_stdout, enable_log;
} nwopts;

typedef struct nwgraph {
    nmodel *nm;
    nwopts opts; /* from load_by_name_with_config: the defaults of its contexts */
} nwgraph;

/* Invariants (nstate.c checks them on load): out has room for cap_out >= n_out ids, and for n_ctx + 1
 * once gen exists and a request began; single_started implies gen; pending is -1 or the last of out. */
typedef struct nwctx {
    nmodel *nm;
    nwopts opts;
    ngen *gen;                /* created at the first compute, with opts.ctx_size */
    int32_t *prompt;          /* the tokenized input 0 */
    uint32_t n_prompt, cap_prompt;
    int32_t *out;             /* generated tokens of the current request */
    uint32_t n_out, cap_out;
    uint32_t reused;          /* prompt tokens whose KV was kept from the previous request */
    int32_t pending;          /* compute_single: the last sampled token, not yet run (-1: none) */
    bool single_started;
} nwctx;

void nwctx_destroy(nwctx *x);

/* ---- per-guest state ----------------------------------------------------------------------------- */

#define NN_MAX_GRAPHS 64
#define NN_MAX_CTXS 64
#define NN_MAX_SESSIONS 64

struct shoal_nn_ctx {
    shoal_nn_registry *reg;
    nwgraph *graphs[NN_MAX_GRAPHS]; /* index = graph id */
    nwctx *ctxs[NN_MAX_CTXS];       /* index = context id */
    ngen *sessions[NN_MAX_SESSIONS]; /* shoal_llm handles are index + 1 */
    char last_error[512];
    uint64_t device_ns;
    shoal_wasi *wasi; /* the guest's WASI state (its directories, for snapshots: nsnap.c); may be NULL */
};

/* The shoal_llm session behind handle h (index + 1), or NULL. */
static inline ngen *nn_session(shoal_nn_ctx *ctx, int32_t h) {
    return h >= 1 && h <= NN_MAX_SESSIONS ? ctx->sessions[h - 1] : NULL;
}

/* Sets ctx->last_error (printf-style) and returns code. */
int32_t nn_fail(shoal_nn_ctx *ctx, int32_t code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

void nwasinn_free_all(shoal_nn_ctx *ctx);
shoal_status nwasinn_add_imports(shoal_nn_ctx *ctx, shoal_imports *imports, shoal_error *err);
shoal_status nllm_add_imports(shoal_nn_ctx *ctx, shoal_imports *imports, shoal_error *err);
shoal_status nsnap_add_imports(shoal_nn_ctx *ctx, shoal_imports *imports, shoal_error *err); /* save, restore */

/* ---- tracing ------------------------------------------------------------------------------------- */

/* Guest bytes read or written by the host call now running on this thread; host functions of src/nn add
 * to it, the trace hook resets it before each call and reports it after. */
extern _Thread_local uint64_t nn_trace_bytes;

uint64_t nn_now_ns(void);

#endif
