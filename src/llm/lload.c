/* lload.c: tokenizer files, named model shapes with random weights, and the model identity hash. */
#include "lload.h"

#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>

#include "ltok.h"

shoal_status lload_tokenizer_file(const char *path, uint32_t vocab_size, ltok **out, shoal_error *err) {
    size_t n = strlen(path);
    if (n >= 5 && !strcmp(path + n - 5, ".json")) return ltok_load_hf_json(path, out, err);
    return ltok_load_llama2c(path, vocab_size, out, err);
}

/* ---- named shapes ----------------------------------------------------------------------------------- */

bool lload_shape(const char *name, lmodel_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->arch, sizeof c->arch, "llama");
    if (!strcmp(name, "110m")) {
        /* llama2.c's stories110M: Llama 2 architecture, MHA, untied. */
        *c = (lmodel_config){.dim = 768, .n_layers = 12, .n_heads = 12, .n_kv_heads = 12, .head_dim = 64,
                             .hidden_dim = 2048, .vocab_size = 32000, .seq_len = 1024, .rms_eps = 1e-5f,
                             .rope_theta = 10000.0f, .tied_embeddings = false};
    } else if (!strcmp(name, "1b")) {
        /* Llama-3.2-1B: GQA 32/8, tied embeddings, Llama 3 rope scaling. */
        *c = (lmodel_config){.dim = 2048, .n_layers = 16, .n_heads = 32, .n_kv_heads = 8, .head_dim = 64,
                             .hidden_dim = 8192, .vocab_size = 128256, .seq_len = 131072, .rms_eps = 1e-5f,
                             .rope_theta = 500000.0f, .tied_embeddings = true,
                             .rope_scaling = {true, 32.0f, 1.0f, 4.0f, 8192}};
    } else {
        return false;
    }
    snprintf(c->arch, sizeof c->arch, "llama");
    snprintf(c->name, sizeof c->name, "random-%s", name);
    return true;
}

typedef struct rnd {
    uint64_t seed;
} rnd;

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Each row is a function of (seed, tensor, layer, row) only, so the writer may ask in any chunking.
 * Weights are uniform with standard deviation 0.02 (the usual init scale); norm weights are 1. */
static shoal_status random_rows(void *user, lload_which which, int layer, uint32_t row0, uint32_t n, uint32_t cols,
                                float *out, shoal_error *err) {
    (void)err;
    const rnd *r = user;
    bool norm = which == LW_OUT_NORM || which == LW_ATTN_NORM || which == LW_FFN_NORM;
    const float a = 0.02f * 1.7320508f; /* uniform on [-a, a] has sd a / sqrt(3) */
    for (uint32_t i = 0; i < n; i++) {
        uint64_t s = r->seed ^ ((uint64_t)which << 56) ^ ((uint64_t)(layer + 1) << 40) ^ (row0 + i);
        splitmix(&s);
        float *o = out + (size_t)i * cols;
        for (uint32_t j = 0; j < cols; j++) {
            if (norm) {
                o[j] = 1.0f;
                continue;
            }
            uint64_t x = splitmix(&s);
            o[j] = ((float)(x >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * a;
        }
    }
    return SHOAL_OK;
}

shoal_status lload_write_random(const lmodel_config *cfg, ltok *tok, uint64_t seed, const char *path,
                                const lload_write_opts *o, shoal_error *err) {
    lmodel *m = lmodel_new();
    if (!m) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    shoal_status st;
    m->cfg = *cfg;
    m->layers = lmodel_alloc(m, cfg->n_layers * sizeof(lmodel_layer), err);
    if (!m->layers) {
        lmodel_free(m);
        return SHOAL_ERR_NOMEM;
    }
    m->tok = tok; /* borrowed: cleared before lmodel_free */
    rnd r = {seed};
    lload_write_opts oo = *o;
    oo.rows = random_rows;
    oo.rows_user = &r;
    st = lload_write_gguf(m, path, &oo, err);
    m->tok = NULL;
    lmodel_free(m);
    return st;
}

/* ---- identity ----------------------------------------------------------------------------------------- */

static void h_u32(struct sha256_ctx *h, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    sha256_update(h, 4, b);
}
static void h_f32(struct sha256_ctx *h, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    h_u32(h, u);
}

static void h_tensor(struct sha256_ctx *h, const lmodel_tensor *t) {
    size_t rb = lmodel_dtype_row_bytes(t->dtype, t->cols);
    h_u32(h, (uint32_t)t->dtype);
    h_u32(h, t->rows);
    h_u32(h, t->cols);
    const uint8_t *p = t->data;
    uint64_t n = (uint64_t)rb * t->rows;
    while (n) { /* nettle takes size_t lengths; keep chunks modest anyway */
        size_t k = n < (1u << 30) ? (size_t)n : (1u << 30);
        sha256_update(h, k, p);
        p += k;
        n -= k;
    }
}

void lload_model_id(const lmodel *m, uint8_t id[32]) {
    const lmodel_config *c = &m->cfg;
    struct sha256_ctx h;
    sha256_init(&h);
    sha256_update(&h, 17, (const uint8_t *)"shoal-model-id-v1");
    h_u32(&h, c->dim);
    h_u32(&h, c->n_layers);
    h_u32(&h, c->n_heads);
    h_u32(&h, c->n_kv_heads);
    h_u32(&h, c->head_dim);
    h_u32(&h, c->hidden_dim);
    h_u32(&h, c->vocab_size);
    h_f32(&h, c->rms_eps);
    h_f32(&h, c->rope_theta);
    h_u32(&h, c->rope_scaling.enabled);
    if (c->rope_scaling.enabled) {
        h_f32(&h, c->rope_scaling.factor);
        h_f32(&h, c->rope_scaling.low_freq_factor);
        h_f32(&h, c->rope_scaling.high_freq_factor);
        h_u32(&h, c->rope_scaling.original_context);
    }
    h_u32(&h, c->tied_embeddings);
    h_tensor(&h, &m->tok_embd);
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const lmodel_layer *L = &m->layers[l];
        const lmodel_tensor *ts[9] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo,
                                      &L->ffn_norm,  &L->w1, &L->w2, &L->w3};
        for (int i = 0; i < 9; i++) h_tensor(&h, ts[i]);
    }
    h_tensor(&h, &m->out_norm);
    if (!c->tied_embeddings) h_tensor(&h, &m->output);
    sha256_digest(&h, 32, id);
}

void lload_id_hex(const uint8_t id[32], char hex[65]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[id[i] >> 4];
        hex[2 * i + 1] = digits[id[i] & 15];
    }
    hex[64] = 0;
}
