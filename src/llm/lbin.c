/*
 * lbin.c: the llama2.c checkpoint loader (Karpathy's run.c "legacy" format, version 0).
 *
 * Layout (little-endian): 7 x int32 header = dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
 * seq_len; then f32 arrays: token_embedding [V][dim], rms_att [L][dim], wq [L][dim][dim],
 * wk [L][kv_dim][dim], wv [L][kv_dim][dim], wo [L][dim][dim], rms_ffn [L][dim], w1 [L][hidden][dim],
 * w2 [L][dim][hidden], w3 [L][hidden][dim], rms_final [dim], two legacy RoPE tables of
 * seq_len * head_size/2 floats each (unused: we compute RoPE), and, only when vocab_size < 0 (the sign
 * says "not shared"), wcls [V][dim]. Everything is mapped, nothing copied: the views point into the file.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lmodel.h"

typedef struct bin_cursor {
    const uint8_t *base;
    uint64_t off; /* next byte; every step is checked against the file size before use */
} bin_cursor;

static void take_matrix(lmodel_tensor *t, bin_cursor *c, uint32_t rows, uint32_t cols) {
    t->dtype = LDT_F32;
    t->rows = rows;
    t->cols = cols;
    t->data = c->base + c->off;
    c->off += (uint64_t)rows * cols * 4;
}

/* Per-layer tensors are stored as one array over all layers; hands out layer l's slice. */
static void take_layers(lmodel *m, size_t field, bin_cursor *c, uint32_t rows, uint32_t cols) {
    for (uint32_t l = 0; l < m->cfg.n_layers; l++)
        take_matrix((lmodel_tensor *)((uint8_t *)&m->layers[l] + field), c, rows, cols);
}

shoal_status lbin_load(lmodel *m, const char *path, const lmodel_load_opts *opts, shoal_error *err) {
    (void)opts;
    const uint8_t *base;
    size_t size;
    shoal_status st = lmodel_map_file(m, path, &base, &size, err);
    if (st)
        return st;
    if (size < 28)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: truncated llama2.c header (%zu bytes, need 28)", path,
                               size);
    int32_t h[7];
    memcpy(h, base, sizeof h);
    if ((uint32_t)h[0] == 0x616b3432u)
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED,
                               "%s: llama2.c export version %d is not supported (only the legacy version 0 format)",
                               path, h[1]);
    const char *names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; i++)
        if (h[i] == 0 || (h[i] < 0 && i != 5) || h[i] == INT32_MIN)
            return shoal_error_set(err, SHOAL_ERR_FORMAT,
                                   "%s: not a llama2.c checkpoint: header field %s is %" PRId32, path, names[i], h[i]);
    lmodel_config *cfg = &m->cfg;
    cfg->dim = (uint32_t)h[0];
    cfg->hidden_dim = (uint32_t)h[1];
    cfg->n_layers = (uint32_t)h[2];
    cfg->n_heads = (uint32_t)h[3];
    cfg->n_kv_heads = (uint32_t)h[4];
    cfg->tied_embeddings = h[5] > 0;
    cfg->vocab_size = (uint32_t)(h[5] > 0 ? h[5] : -h[5]);
    cfg->seq_len = (uint32_t)h[6];
    cfg->rms_eps = 1e-5f;
    cfg->rope_theta = 10000.0f;
    snprintf(cfg->arch, sizeof cfg->arch, "llama");
    const char *slash = strrchr(path, '/');
    snprintf(cfg->name, sizeof cfg->name, "%s", slash ? slash + 1 : path);

    /* Sanity before any arithmetic: the same limits lmodel_finish applies, so products stay in 64 bits. */
    if (cfg->dim > (1u << 20) || cfg->hidden_dim > (1u << 20) || cfg->n_layers > 4096 || cfg->n_heads > 4096 ||
        cfg->vocab_size > (1u << 24) || cfg->seq_len > (1u << 24))
        return shoal_error_set(err, SHOAL_ERR_FORMAT,
                               "%s: implausible llama2.c header (dim %u, hidden %u, layers %u, heads %u, vocab %u, "
                               "seq_len %u)", path, cfg->dim, cfg->hidden_dim, cfg->n_layers, cfg->n_heads,
                               cfg->vocab_size, cfg->seq_len);
    if (cfg->dim % cfg->n_heads || cfg->n_kv_heads > cfg->n_heads || cfg->n_heads % cfg->n_kv_heads)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: bad head counts: dim %u, %u heads, %u kv heads", path,
                               cfg->dim, cfg->n_heads, cfg->n_kv_heads);
    uint64_t dim = cfg->dim, hid = cfg->hidden_dim, L = cfg->n_layers, V = cfg->vocab_size;
    uint64_t head = dim / cfg->n_heads, kv_dim = head * cfg->n_kv_heads;
    uint64_t floats = V * dim + L * (dim + dim * dim + 2 * kv_dim * dim + dim * dim + dim + 3 * hid * dim) + dim +
                      (uint64_t)cfg->seq_len * head; /* the two legacy RoPE tables */
    if (!cfg->tied_embeddings)
        floats += V * dim;
    uint64_t need = 28 + floats * 4; /* < 2^62 given the limits above */
    if (size < need)
        return shoal_error_set(err, SHOAL_ERR_FORMAT,
                               "%s: truncated llama2.c checkpoint: the header (dim %u, layers %u, vocab %u) needs "
                               "%" PRIu64 " bytes, the file has %zu", path, cfg->dim, cfg->n_layers, cfg->vocab_size,
                               need, size);
    if (size > need)
        return shoal_error_set(err, SHOAL_ERR_FORMAT,
                               "%s: %zu bytes after the weights: not a llama2.c legacy checkpoint of this header "
                               "(needs exactly %" PRIu64 " bytes)", path, size - (size_t)need, need);

    m->layers = lmodel_alloc(m, cfg->n_layers * sizeof(lmodel_layer), err);
    if (!m->layers)
        return SHOAL_ERR_NOMEM;
    bin_cursor c = {base, 28};
    take_matrix(&m->tok_embd, &c, (uint32_t)V, (uint32_t)dim);
    take_layers(m, offsetof(lmodel_layer, attn_norm), &c, 1, (uint32_t)dim);
    take_layers(m, offsetof(lmodel_layer, wq), &c, (uint32_t)dim, (uint32_t)dim);
    take_layers(m, offsetof(lmodel_layer, wk), &c, (uint32_t)kv_dim, (uint32_t)dim);
    take_layers(m, offsetof(lmodel_layer, wv), &c, (uint32_t)kv_dim, (uint32_t)dim);
    take_layers(m, offsetof(lmodel_layer, wo), &c, (uint32_t)dim, (uint32_t)dim);
    take_layers(m, offsetof(lmodel_layer, ffn_norm), &c, 1, (uint32_t)dim);
    take_layers(m, offsetof(lmodel_layer, w1), &c, (uint32_t)hid, (uint32_t)dim);
    take_layers(m, offsetof(lmodel_layer, w2), &c, (uint32_t)dim, (uint32_t)hid);
    take_layers(m, offsetof(lmodel_layer, w3), &c, (uint32_t)hid, (uint32_t)dim);
    take_matrix(&m->out_norm, &c, 1, (uint32_t)dim);
    c.off += (uint64_t)cfg->seq_len * head * 4;
    if (cfg->tied_embeddings)
        m->output = m->tok_embd;
    else
        take_matrix(&m->output, &c, (uint32_t)V, (uint32_t)dim);
    return SHOAL_OK;
}
