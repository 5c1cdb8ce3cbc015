/*
 * lload_safet.c: a Hugging Face Llama checkpoint (config.json + safetensors, single or sharded, and
 * tokenizer.json) into the model struct.
 *
 * HF tensor names: model.embed_tokens.weight, model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj,
 * post_attention_layernorm, mlp.{gate,up,down}_proj}.weight, model.norm.weight, lm_head.weight (absent
 * when tied). Matrices are [out][in] row-major, as in the model struct. HF rotates halves in RoPE, the model
 * struct interleaved pairs (lmodel.h), so the rows of q_proj and k_proj are permuted here, once: within each
 * head, our row 2i is HF row i and our row 2i+1 is HF row i + head_dim/2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lload.h"
#include "lmodel.h"
#include "lquant.h"
#include "lsafet.h"
#include "ltok.h"

typedef struct take {
    lmodel *m;
    const lsafet *s;
    bool *used;
} take;

/* Views (or copies, when rows must move, a norm must widen to F32, or the data is misaligned) one tensor.
 * heads > 0: permute the rows of each of `heads` heads from HF's half-split order to interleaved pairs. */
static shoal_status take_tensor(take *tk, const char *name, lmodel_tensor *mt, uint32_t rows, uint32_t cols,
                                bool vec, uint32_t heads, shoal_error *err) {
    lmodel *m = tk->m;
    const lsafet_tensor *t = lsafet_find(tk->s, name);
    if (!t) return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: tensor '%s' is missing", m->path, name);
    tk->used[t - tk->s->tensors] = true;
    if (t->ldt < 0)
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; Shoal reads F32, F16 and "
                               "BF16 safetensors", m->path, name, t->dtype);
    bool ok = vec ? (t->n_dims == 1 && t->shape[0] == cols)
                  : (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols);
    if (!ok) {
        char shape[96] = "";
        for (uint32_t d = 0; d < t->n_dims && strlen(shape) < 70; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", d ? ", " : "",
                     (unsigned long long)t->shape[d]);
        if (vec)
            return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%u] (config.json)",
                                   m->path, name, shape, cols);
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: tensor '%s' has shape [%s], expected [%u, %u] (config.json)",
                               m->path, name, shape, rows, cols);
    }
    mt->dtype = (lmodel_dtype)t->ldt;
    mt->rows = vec ? 1 : rows;
    mt->cols = cols;
    mt->data = t->data;
    size_t align = mt->dtype == LDT_F32 ? 4 : 2;
    bool widen = vec && mt->dtype != LDT_F32;
    if (!widen && !heads && (uintptr_t)t->data % align == 0) return SHOAL_OK;

    lmodel_dtype dst = widen ? LDT_F32 : mt->dtype;
    size_t in_rb = lmodel_dtype_row_bytes(mt->dtype, cols), out_rb = lmodel_dtype_row_bytes(dst, cols);
    uint8_t *buf = lmodel_alloc(m, out_rb * mt->rows, err);
    if (!buf) return SHOAL_ERR_NOMEM;
    if (widen) {
        float *scratch = malloc((size_t)cols * sizeof(float));
        if (!scratch) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        /* The source may be misaligned: go through an aligned copy of the row first. */
        lmodel_tensor tmp = *mt;
        void *row = malloc(in_rb);
        if (!row) {
            free(scratch);
            return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        }
        memcpy(row, t->data, in_rb);
        tmp.data = row;
        lquant_rows(&tmp, 0, 1, dst, buf, scratch);
        free(row);
        free(scratch);
    } else if (heads) {
        uint32_t hd = rows / heads, half = hd / 2;
        for (uint32_t h = 0; h < heads; h++)
            for (uint32_t i = 0; i < half; i++)
                for (uint32_t j = 0; j < 2; j++) {
                    size_t ours = (size_t)h * hd + 2 * i + j, theirs = (size_t)h * hd + (size_t)j * half + i;
                    memcpy(buf + ours * out_rb, (const uint8_t *)t->data + theirs * in_rb, in_rb);
                }
    } else {
        memcpy(buf, t->data, out_rb * mt->rows);
    }
    mt->dtype = dst;
    mt->data = buf;
    return SHOAL_OK;
}

static bool is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}
static bool is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

shoal_status lload_safet(lmodel *m, const char *path, const lmodel_load_opts *opts, shoal_error *err) {
    shoal_status st;
    lsafet *s = NULL;
    bool *used = NULL;
    ltok *tok = NULL;
    lmodel_config *c = &m->cfg;
    char dir[1024], file[1100], name[128];

    if (!m->path[0]) snprintf(m->path, sizeof m->path, "%s", path);
    if (strlen(path) >= sizeof dir) return shoal_error_set(err, SHOAL_ERR_ARG, "path too long");
    memcpy(dir, path, strlen(path) + 1);
    if (!is_dir(path)) {
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
    }
    snprintf(file, sizeof file, "%s/config.json", dir);
    if (!is_file(file))
        return shoal_error_set(err, SHOAL_ERR_NOTFOUND, "%s: no config.json next to the weights (looked for %s)", path,
                               file);
    if ((st = lsafet_config(file, c, err))) return st;
    if (c->n_heads == 0 || c->n_kv_heads == 0 || c->n_layers == 0 || c->n_layers > 4096 || c->dim > (1u << 20) ||
        c->hidden_dim > (1u << 20) || c->n_heads > 4096 || c->n_kv_heads > c->n_heads)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: bad sizes (layers %u, heads %u, kv heads %u, dim %u, "
                               "intermediate %u)", file, c->n_layers, c->n_heads, c->n_kv_heads, c->dim, c->hidden_dim);
    if (!c->head_dim) {
        if (c->dim % c->n_heads)
            return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: hidden_size %u is not a multiple of %u heads", file,
                                   c->dim, c->n_heads);
        c->head_dim = c->dim / c->n_heads;
    }
    if (c->head_dim % 2 || c->head_dim > 4096)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: bad head_dim %u", file, c->head_dim);
    const char *base = strrchr(dir, '/');
    snprintf(c->name, sizeof c->name, "%.127s", base ? base + 1 : dir);

    /* A path to config.json itself means its folder. */
    size_t plen = strlen(path);
    bool is_cfg = plen >= 11 && !strcmp(path + plen - 11, "config.json") && (plen == 11 || path[plen - 12] == '/');
    if ((st = lsafet_open(is_cfg ? dir : path, m, &s, err))) return st;
    used = calloc(s->n_tensors + 1, 1);
    m->layers = lmodel_alloc(m, c->n_layers * sizeof(lmodel_layer), err);
    if (!used || !m->layers) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        goto done;
    }
    take tk = {m, s, used};
    uint32_t q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    if ((st = take_tensor(&tk, "model.embed_tokens.weight", &m->tok_embd, c->vocab_size, c->dim, false, 0, err)) ||
        (st = take_tensor(&tk, "model.norm.weight", &m->out_norm, 1, c->dim, true, 0, err)))
        goto done;
    if (!c->tied_embeddings || lsafet_find(s, "lm_head.weight")) {
        lmodel_tensor head;
        if ((st = take_tensor(&tk, "lm_head.weight", &head, c->vocab_size, c->dim, false, 0, err))) goto done;
        if (!c->tied_embeddings) m->output = head;
    }
    for (uint32_t l = 0; l < c->n_layers; l++) {
        lmodel_layer *L = &m->layers[l];
        const struct {
            const char *suffix;
            lmodel_tensor *t;
            uint32_t rows, cols;
            bool vec;
            uint32_t heads;
        } parts[] = {
            {"input_layernorm", &L->attn_norm, 1, c->dim, true, 0},
            {"self_attn.q_proj", &L->wq, q, c->dim, false, c->n_heads},
            {"self_attn.k_proj", &L->wk, kv, c->dim, false, c->n_kv_heads},
            {"self_attn.v_proj", &L->wv, kv, c->dim, false, 0},
            {"self_attn.o_proj", &L->wo, c->dim, q, false, 0},
            {"post_attention_layernorm", &L->ffn_norm, 1, c->dim, true, 0},
            {"mlp.gate_proj", &L->w1, c->hidden_dim, c->dim, false, 0},
            {"mlp.down_proj", &L->w2, c->dim, c->hidden_dim, false, 0},
            {"mlp.up_proj", &L->w3, c->hidden_dim, c->dim, false, 0},
        };
        for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
            snprintf(name, sizeof name, "model.layers.%u.%s.weight", l, parts[i].suffix);
            if ((st = take_tensor(&tk, name, parts[i].t, parts[i].rows, parts[i].cols, parts[i].vec, parts[i].heads,
                                  err)))
                goto done;
        }
    }
    for (size_t i = 0; i < s->n_tensors; i++) {
        size_t n = strlen(s->tensors[i].name);
        if (used[i] || (n >= 19 && !strcmp(s->tensors[i].name + n - 19, "rotary_emb.inv_freq"))) continue;
        st = shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: tensor '%.64s' is not part of the Llama architecture "
                             "Shoal computes (biases and other extras are not supported)", path, s->tensors[i].name);
        goto done;
    }

    snprintf(file, sizeof file, "%s/tokenizer.json", dir);
    if (opts && opts->tokenizer_path) st = lload_tokenizer_file(opts->tokenizer_path, c->vocab_size, &tok, err);
    else if (is_file(file)) st = ltok_load_hf_json(file, &tok, err);
    if (st) goto done;
    if (tok) lmodel_set_tokenizer(m, tok);
    snprintf(m->format, sizeof m->format, "safetensors");
done:
    free(used);
    lsafet_close(s);
    return st;
}
