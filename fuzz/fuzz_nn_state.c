/* fuzz_nn_state.c: the inference-state loader (src/nn/nstate.c) on arbitrary bytes. The trailing checksum
 * is fixed up first so that inputs reach the field checks behind it. A load must succeed or refuse with
 * SHOAL_ERR_FORMAT / SHOAL_ERR_ARG, never crash or leak; a refused load leaves the ctx empty; a loaded
 * state saves again. The registry holds a tiny random model (no tokenizer) as "m".
 * FUZZ_NN_STATE_SEED=path writes a valid state (a session, a graph, a context mid-request) as a seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "nn.h"
#include "lload.h"

static shoal_model *model;
static shoal_nn_registry *reg;

static void write_seed(const char *path) {
    shoal_nn_ctx *ctx;
    shoal_error err = {0};
    shoal_sampler_params sp;
    shoal_sampler_params_default(&sp);
    sp.seed = 7;
    int32_t ids[4] = {1, 5, 9, 2};
    nwgraph *g = calloc(1, sizeof *g);
    nwctx *x = calloc(1, sizeof *x);
    if (shoal_nn_ctx_new(reg, &ctx, &err) || !g || !x ||
        ngen_new(&reg->models[0], 8, &sp, &ctx->device_ns, &ctx->sessions[1], &err) ||
        ngen_prefill(ctx->sessions[1], ids, 3, NULL, &err) ||
        ngen_new(&reg->models[0], 12, &sp, &ctx->device_ns, &x->gen, &err) || ngen_prefill(x->gen, ids, 3, NULL, &err)) {
        fprintf(stderr, "fuzz_nn_state: %s\n", err.message);
        abort();
    }
    g->nm = x->nm = &reg->models[0];
    g->opts.n_predict = -1;
    g->opts.sp = sp;
    x->opts = g->opts;
    x->prompt = malloc(sizeof ids);
    x->out = malloc(13 * sizeof *x->out);
    if (!x->prompt || !x->out)
        abort();
    memcpy(x->prompt, ids, sizeof ids);
    x->n_prompt = x->cap_prompt = 3;
    x->out[0] = ids[3];
    x->n_out = 1;
    x->cap_out = 13;
    x->pending = ids[3];
    x->single_started = true;
    ctx->graphs[2] = g;
    ctx->ctxs[0] = x;
    uint8_t *p;
    size_t n;
    FILE *f = fopen(path, "wb");
    if (shoal_nn_ctx_state_save(ctx, &p, &n, &err) || !f || fwrite(p, 1, n, f) != n || fclose(f))
        abort();
    free(p);
    shoal_nn_ctx_free(ctx);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    lmodel_config c = {0};
    c.dim = 16;
    c.n_layers = 2;
    c.n_heads = 2;
    c.n_kv_heads = 1;
    c.head_dim = 8;
    c.hidden_dim = 32;
    c.vocab_size = 32;
    c.seq_len = 16;
    c.rms_eps = 1e-5f;
    c.rope_theta = 10000;
    snprintf(c.arch, sizeof c.arch, "llama");
    snprintf(c.name, sizeof c.name, "fuzz");
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_nn_state.%d.gguf", (int)getpid());
    lload_write_opts wo = {.type = LDT_F32};
    shoal_error err = {0};
    shoal_model_options mo = {0};
    mo.n_threads = 1;
    if (lload_write_random(&c, NULL, 1, path, &wo, &err) || shoal_model_load(path, &mo, &model, &err) ||
        shoal_nn_registry_new(&reg, &err) || shoal_nn_registry_add(reg, "m", model, &err)) {
        fprintf(stderr, "fuzz_nn_state: %s\n", err.message);
        abort();
    }
    unlink(path);
    const char *seed = getenv("FUZZ_NN_STATE_SEED");
    if (seed)
        write_seed(seed);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20))
        return 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (size >= 12) {
        uint64_t h = XXH3_64bits(buf, size - 8);
        for (int i = 0; i < 8; i++)
            buf[size - 8 + i] = (uint8_t)(h >> (8 * i));
    }
    char **specs = NULL;
    size_t n_specs = 0;
    if (!shoal_nn_state_preloads(buf, size, &specs, &n_specs, NULL))
        free(specs);
    shoal_nn_ctx *ctx;
    if (shoal_nn_ctx_new(reg, &ctx, NULL))
        abort();
    shoal_error err = {0};
    shoal_status st = shoal_nn_ctx_state_load(ctx, buf, size, &err);
    if (st == SHOAL_OK) {
        uint8_t *p;
        size_t n;
        if (shoal_nn_ctx_state_save(ctx, &p, &n, &err))
            abort(); /* a loaded state must save */
        free(p);
    } else {
        if (st != SHOAL_ERR_FORMAT && st != SHOAL_ERR_ARG && st != SHOAL_ERR_NOMEM)
            abort();
        for (int i = 0; i < NN_MAX_SESSIONS; i++)
            if (ctx->sessions[i])
                abort(); /* half-built */
        for (int i = 0; i < NN_MAX_GRAPHS; i++)
            if (ctx->graphs[i])
                abort();
        for (int i = 0; i < NN_MAX_CTXS; i++)
            if (ctx->ctxs[i])
                abort();
    }
    shoal_nn_ctx_free(ctx);
    free(buf);
    return 0;
}
