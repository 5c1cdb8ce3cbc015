/*
 * lload_gguf.c: GGUF <-> lmodel. Reading: llama.cpp's "llama" architecture keys and tensor names into the
 * model struct (lload_gguf), and its tokenizer.ggml.* keys into an ltok. Writing: a model (or a random one
 * of a named shape) as a GGUF v3 file that llama.cpp loads.
 *
 * Conventions: GGUF stores a matrix [rows][cols] as ne = {cols, rows}; llama.cpp's GGUF files keep Q and
 * K in the interleaved-pair RoPE order, which is the model struct's, so no permutation happens here.
 * Weight dtypes accepted: F32, F16, BF16, Q8_0, Q4_0; every other ggml type is refused with its name.
 * Norm vectors in F16/BF16 are widened to F32 (lmodel.h wants F32 norms).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lgguf.h"
#include "lload.h"
#include "lmodel.h"
#include "lquant.h"
#include "ltok.h"

#define LLAMA3_DEFAULT_LOW 1.0f
#define LLAMA3_DEFAULT_HIGH 4.0f
#define LLAMA3_DEFAULT_CTX 8192u

/* ---- names ----------------------------------------------------------------------------------------- */

static const char *const which_names[LW_COUNT] = {
    [LW_TOK_EMBD] = "token_embd", [LW_OUT_NORM] = "output_norm", [LW_OUTPUT] = "output",
    [LW_ATTN_NORM] = "attn_norm", [LW_WQ] = "attn_q",           [LW_WK] = "attn_k",
    [LW_WV] = "attn_v",           [LW_WO] = "attn_output",       [LW_FFN_NORM] = "ffn_norm",
    [LW_W1] = "ffn_gate",         [LW_W2] = "ffn_down",          [LW_W3] = "ffn_up",
};

static void tensor_name(char *buf, size_t cap, lload_which w, int layer) {
    if (layer < 0) snprintf(buf, cap, "%s.weight", which_names[w]);
    else snprintf(buf, cap, "blk.%d.%s.weight", layer, which_names[w]);
}

static lmodel_tensor *model_tensor(lmodel *m, lload_which w, int layer) {
    switch (w) {
    case LW_TOK_EMBD: return &m->tok_embd;
    case LW_OUT_NORM: return &m->out_norm;
    case LW_OUTPUT: return &m->output;
    case LW_ATTN_NORM: return &m->layers[layer].attn_norm;
    case LW_WQ: return &m->layers[layer].wq;
    case LW_WK: return &m->layers[layer].wk;
    case LW_WV: return &m->layers[layer].wv;
    case LW_WO: return &m->layers[layer].wo;
    case LW_FFN_NORM: return &m->layers[layer].ffn_norm;
    case LW_W1: return &m->layers[layer].w1;
    case LW_W2: return &m->layers[layer].w2;
    case LW_W3: return &m->layers[layer].w3;
    case LW_COUNT: break;
    }
    return NULL;
}

static bool is_norm(lload_which w) { return w == LW_OUT_NORM || w == LW_ATTN_NORM || w == LW_FFN_NORM; }

/* Expected [rows, cols] of a tensor under cfg. */
static void expected_shape(const lmodel_config *c, lload_which w, uint32_t *rows, uint32_t *cols) {
    uint32_t q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    switch (w) {
    case LW_TOK_EMBD: case LW_OUTPUT: *rows = c->vocab_size; *cols = c->dim; break;
    case LW_OUT_NORM: case LW_ATTN_NORM: case LW_FFN_NORM: *rows = 1; *cols = c->dim; break;
    case LW_WQ: *rows = q; *cols = c->dim; break;
    case LW_WK: case LW_WV: *rows = kv; *cols = c->dim; break;
    case LW_WO: *rows = c->dim; *cols = q; break;
    case LW_W1: case LW_W3: *rows = c->hidden_dim; *cols = c->dim; break;
    case LW_W2: *rows = c->dim; *cols = c->hidden_dim; break;
    case LW_COUNT: *rows = *cols = 0; break;
    }
}

/* ---- rope scaling ------------------------------------------------------------------------------------- */

/* llama.cpp's rope_freqs.weight for Llama 3 scaling: per frequency, the factor it divides the frequency by
 * (1 for short wavelengths, `factor` for long ones, interpolated between), as Meta's reference defines. */
static void llama3_rope_factors(const lmodel_config *c, float *out) {
    const lmodel_rope_scaling *s = &c->rope_scaling;
    uint32_t half = c->head_dim / 2;
    double low_wl = s->original_context / (double)s->low_freq_factor;
    double high_wl = s->original_context / (double)s->high_freq_factor;
    for (uint32_t i = 0; i < half; i++) {
        double f = 1.0 / pow((double)c->rope_theta, (double)(2 * i) / (double)c->head_dim);
        double wl = 2 * M_PI / f, r;
        if (wl < high_wl) r = 1;
        else if (wl > low_wl) r = s->factor;
        else {
            double smooth = (s->original_context / wl - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
            r = 1 / ((1 - smooth) / s->factor + smooth);
        }
        out[i] = (float)r;
    }
}

/* A foreign GGUF carries Llama 3 scaling only as rope_freqs.weight. The model struct wants the parameters:
 * take factor from the longest wavelength, assume Meta's low/high/context (1, 4, 8192), and accept that only
 * when it reproduces every factor in the file. */
static shoal_status rope_from_factors(lmodel *m, const lgguf_tensor *t, shoal_error *err) {
    lmodel_config *c = &m->cfg;
    uint32_t half = c->head_dim / 2;
    if (t->type != LGGUF_T_F32 || t->n_elems != half)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: rope_freqs.weight must be %u F32 values", m->path, half);
    float *f = malloc((size_t)half * 2 * sizeof *f);
    if (!f) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    memcpy(f, t->data, (size_t)half * 4);
    c->rope_scaling = (lmodel_rope_scaling){true, f[half - 1], LLAMA3_DEFAULT_LOW, LLAMA3_DEFAULT_HIGH,
                                            LLAMA3_DEFAULT_CTX};
    bool ok = f[half - 1] >= 1;
    if (ok) {
        llama3_rope_factors(c, f + half);
        for (uint32_t i = 0; i < half && ok; i++) ok = fabsf(f[i] - f[half + i]) <= 1e-3f * fabsf(f[i]);
    }
    free(f);
    if (!ok)
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: rope_freqs.weight is not Llama 3 scaling with the "
                               "standard parameters (low 1, high 4, original context 8192): not supported", m->path);
    return SHOAL_OK;
}

/* ---- reading ------------------------------------------------------------------------------------------ */

static bool supported_type(uint32_t t) {
    return t == LGGUF_T_F32 || t == LGGUF_T_F16 || t == LGGUF_T_BF16 || t == LGGUF_T_Q8_0 || t == LGGUF_T_Q4_0;
}

/* Points the model tensor at the file's bytes; widens norms to F32; copies misaligned data. */
static shoal_status take_tensor(lmodel *m, const lgguf *g, lload_which w, int layer, bool optional, bool *used,
                                shoal_error *err) {
    char name[96];
    tensor_name(name, sizeof name, w, layer);
    const lgguf_tensor *t = lgguf_tensor_find(g, name);
    lmodel_tensor *mt = model_tensor(m, w, layer);
    if (!t) {
        if (optional) return SHOAL_OK;
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: tensor '%s' is missing", m->path, name);
    }
    used[t - g->tensors] = true;
    if (!supported_type(t->type))
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s; Shoal computes with F32, "
                               "F16, BF16, Q8_0 and Q4_0 only (other ggml types are refused)", m->path, name,
                               lgguf_ttype_name(t->type));
    bool vec = is_norm(w);
    if ((vec && t->n_dims != 1) || (!vec && (t->n_dims != 2 || t->ne[2] != 1 || t->ne[3] != 1)) ||
        t->ne[0] > UINT32_MAX || t->ne[1] > UINT32_MAX)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: tensor '%s' has shape [%llu, %llu, %llu, %llu] in %u "
                               "dimensions; expected a %s", m->path, name, (unsigned long long)t->ne[0],
                               (unsigned long long)t->ne[1], (unsigned long long)t->ne[2], (unsigned long long)t->ne[3],
                               t->n_dims, vec ? "vector" : "matrix");
    mt->dtype = (lmodel_dtype)t->type;
    mt->cols = (uint32_t)t->ne[0];
    mt->rows = (uint32_t)t->ne[1];
    mt->data = t->data;
    size_t align = mt->dtype == LDT_F32 ? 4 : 2;
    if ((vec && mt->dtype != LDT_F32) || (uintptr_t)t->data % align) {
        lmodel_dtype dst = vec ? LDT_F32 : mt->dtype;
        size_t rb = lmodel_dtype_row_bytes(dst, mt->cols);
        void *buf = lmodel_alloc(m, rb * mt->rows, err);
        float *scratch = malloc((size_t)mt->cols * sizeof(float) + 1);
        if (!buf || !scratch) {
            free(scratch);
            return buf ? shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory") : SHOAL_ERR_NOMEM;
        }
        if (mt->dtype == dst) memcpy(buf, t->data, rb * mt->rows); /* only alignment was wrong */
        else lquant_rows(mt, 0, mt->rows, dst, buf, scratch);
        free(scratch);
        mt->dtype = dst;
        mt->data = buf;
    }
    return SHOAL_OK;
}

static shoal_status read_config(lmodel *m, const lgguf *g, shoal_error *err) {
    lmodel_config *c = &m->cfg;
    lgguf_str arch, s;
    char k[128];
    shoal_status st;
    if ((st = lgguf_req_str(g, "general.architecture", &arch, err))) return st;
    if (!lgguf_str_eq(arch, "llama"))
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: architecture '%.*s' is not supported (only llama)",
                               m->path, (int)(arch.len < 64 ? arch.len : 64), arch.ptr);
    snprintf(c->arch, sizeof c->arch, "llama");
#define KEY(x) (snprintf(k, sizeof k, "llama.%s", x), k)
    if ((st = lgguf_req_u32(g, KEY("embedding_length"), &c->dim, err)) ||
        (st = lgguf_req_u32(g, KEY("block_count"), &c->n_layers, err)) ||
        (st = lgguf_req_u32(g, KEY("attention.head_count"), &c->n_heads, err)) ||
        (st = lgguf_opt_u32(g, KEY("attention.head_count_kv"), c->n_heads, &c->n_kv_heads, err)) ||
        (st = lgguf_req_u32(g, KEY("feed_forward_length"), &c->hidden_dim, err)) ||
        (st = lgguf_opt_u32(g, KEY("context_length"), 0, &c->seq_len, err)) ||
        (st = lgguf_opt_f32(g, KEY("attention.layer_norm_rms_epsilon"), 1e-5f, &c->rms_eps, err)) ||
        (st = lgguf_opt_f32(g, KEY("rope.freq_base"), 10000.0f, &c->rope_theta, err)) ||
        (st = lgguf_opt_u32(g, KEY("vocab_size"), 0, &c->vocab_size, err)))
        return st;
    if (c->n_heads == 0 || c->dim == 0)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: llama.embedding_length and llama.attention.head_count "
                               "must be > 0", m->path);
    uint32_t kl, vl, rd;
    if ((st = lgguf_opt_u32(g, KEY("attention.key_length"), c->dim / c->n_heads, &kl, err)) ||
        (st = lgguf_opt_u32(g, KEY("attention.value_length"), kl, &vl, err)) ||
        (st = lgguf_opt_u32(g, KEY("rope.dimension_count"), kl, &rd, err)))
        return st;
    if (vl != kl)
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: key length %u differs from value length %u", m->path,
                               kl, vl);
    if (rd != kl)
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: partial RoPE (rope.dimension_count %u, head size %u) "
                               "is not supported", m->path, rd, kl);
    c->head_dim = kl;
    const lgguf_value *v = lgguf_get(g, KEY("rope.scaling.type"));
    if (v && !(v->type == LGGUF_STR && lgguf_str_eq(v->s, "none")))
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: llama.rope.scaling.type %s%.*s%s is not supported "
                               "(only Llama 3 scaling)", m->path, v->type == LGGUF_STR ? "'" : "",
                               v->type == LGGUF_STR ? (int)(v->s.len < 32 ? v->s.len : 32) : 0,
                               v->type == LGGUF_STR ? v->s.ptr : "", v->type == LGGUF_STR ? "'" : "");
#undef KEY
    if (lgguf_get(g, "shoal.rope.llama3.factor")) {
        lmodel_rope_scaling *r = &c->rope_scaling;
        r->enabled = true;
        if ((st = lgguf_req_f32(g, "shoal.rope.llama3.factor", &r->factor, err)) ||
            (st = lgguf_req_f32(g, "shoal.rope.llama3.low_freq_factor", &r->low_freq_factor, err)) ||
            (st = lgguf_req_f32(g, "shoal.rope.llama3.high_freq_factor", &r->high_freq_factor, err)) ||
            (st = lgguf_req_u32(g, "shoal.rope.llama3.original_context_length", &r->original_context, err)))
            return st;
    }
    if (lgguf_req_str(g, "general.name", &s, NULL) == SHOAL_OK)
        snprintf(c->name, sizeof c->name, "%.*s", (int)(s.len < 127 ? s.len : 127), s.ptr);
    else {
        const char *slash = strrchr(m->path, '/');
        snprintf(c->name, sizeof c->name, "%.127s", slash ? slash + 1 : m->path);
    }
    return SHOAL_OK;
}

shoal_status lload_gguf(lmodel *m, const char *path, const lmodel_load_opts *opts, shoal_error *err) {
    const uint8_t *base;
    size_t size;
    lgguf *g = NULL;
    bool *used = NULL;
    ltok *tok = NULL;
    shoal_status st;
    lmodel_config *c = &m->cfg;

    if (!m->path[0]) snprintf(m->path, sizeof m->path, "%s", path);
    if ((st = lmodel_map_file(m, path, &base, &size, err))) return st;
    if ((st = lgguf_open_mem(base, size, path, &g, err))) return st;
    if ((st = read_config(m, g, err))) goto fail;
    if (c->n_layers == 0 || c->n_layers > 4096) {
        st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: llama.block_count %u is out of range", path, c->n_layers);
        goto fail;
    }
    used = calloc((size_t)g->n_tensors + 1, 1);
    m->layers = lmodel_alloc(m, c->n_layers * sizeof(lmodel_layer), err);
    if (!used || !m->layers) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = take_tensor(m, g, LW_TOK_EMBD, -1, false, used, err)) ||
        (st = take_tensor(m, g, LW_OUT_NORM, -1, false, used, err)) ||
        (st = take_tensor(m, g, LW_OUTPUT, -1, true, used, err)))
        goto fail;
    if (c->vocab_size == 0) c->vocab_size = m->tok_embd.rows;
    c->tied_embeddings = m->output.data == NULL;
    for (uint32_t l = 0; l < c->n_layers; l++)
        for (int w = LW_ATTN_NORM; w <= LW_W3; w++)
            if ((st = take_tensor(m, g, (lload_which)w, (int)l, false, used, err))) goto fail;
    const lgguf_tensor *rf = lgguf_tensor_find(g, "rope_freqs.weight");
    if (rf) {
        used[rf - g->tensors] = true;
        if (!c->rope_scaling.enabled && (st = rope_from_factors(m, rf, err))) goto fail;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (!used[i]) {
            lgguf_str n = g->tensors[i].name;
            st = shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: tensor '%.*s' is not part of the Llama architecture "
                                 "Shoal computes (biases and other extras are not supported)", path,
                                 (int)(n.len < 64 ? n.len : 64), n.ptr);
            goto fail;
        }

    if (opts && opts->tokenizer_path) st = lload_tokenizer_file(opts->tokenizer_path, c->vocab_size, &tok, err);
    else st = lload_gguf_tokenizer(g, &tok, err);
    if (st) goto fail;
    if (tok && ltok_n_tokens(tok) > c->vocab_size) {
        st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: the tokenizer has %u tokens, more than the model's vocabulary "
                             "of %u", path, ltok_n_tokens(tok), c->vocab_size);
        ltok_free(tok);
        goto fail;
    }
    if (tok) lmodel_set_tokenizer(m, tok);
    snprintf(m->format, sizeof m->format, "gguf");
    free(used);
    lgguf_close(g);
    return SHOAL_OK;

fail:
    free(used);
    lgguf_close(g);
    return st;
}

/* ---- tokenizer metadata ------------------------------------------------------------------------------- */

shoal_status lload_gguf_tokenizer(const lgguf *g, ltok **out, shoal_error *err) {
    *out = NULL;
    lgguf_str model, pre = {0};
    const lgguf_value *tokens, *scores, *types, *merges;
    shoal_status st;
    ltok_vocab_desc d;
    const char **tp = NULL, **mp = NULL;
    uint32_t *tl = NULL, *ml = NULL;
    float *sc = NULL;
    int32_t *ty = NULL;
    char *pre_z = NULL;

    if (!lgguf_get(g, "tokenizer.ggml.model")) return SHOAL_OK;
    memset(&d, 0, sizeof d);
    if ((st = lgguf_req_str(g, "tokenizer.ggml.model", &model, err))) return st;
    if (lgguf_str_eq(model, "llama")) d.kind = LTOK_SPM;
    else if (lgguf_str_eq(model, "gpt2")) d.kind = LTOK_BPE;
    else if (lgguf_str_eq(model, "no_vocab")) return SHOAL_OK;
    else
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model '%.*s' is not supported "
                               "(only 'llama' and 'gpt2')", g->path, (int)(model.len < 32 ? model.len : 32), model.ptr);
    if ((st = lgguf_req_arr(g, "tokenizer.ggml.tokens", LGGUF_STR, &tokens, err)) ||
        (st = lgguf_opt_arr(g, "tokenizer.ggml.scores", LGGUF_F32, &scores, err)) ||
        (st = lgguf_opt_arr(g, "tokenizer.ggml.token_type", LGGUF_I32, &types, err)) ||
        (st = lgguf_opt_arr(g, "tokenizer.ggml.merges", LGGUF_STR, &merges, err)))
        return st;
    uint64_t n = tokens->arr.n;
    if (n == 0 || n > (1u << 24))
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: tokenizer.ggml.tokens has %llu entries", g->path,
                               (unsigned long long)n);
    if ((scores && scores->arr.n != n) || (types && types->arr.n != n))
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: tokenizer.ggml.scores / token_type have %llu / %llu "
                               "entries, tokens %llu", g->path, (unsigned long long)(scores ? scores->arr.n : n),
                               (unsigned long long)(types ? types->arr.n : n), (unsigned long long)n);
    uint64_t nm = merges ? merges->arr.n : 0;
    if (nm > UINT32_MAX)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: too many merges", g->path);
    tp = malloc((size_t)n * sizeof *tp);
    tl = malloc((size_t)n * sizeof *tl);
    sc = scores ? malloc((size_t)n * sizeof *sc) : NULL;
    ty = types ? malloc((size_t)n * sizeof *ty) : NULL;
    mp = malloc((size_t)(nm + 1) * sizeof *mp);
    ml = malloc((size_t)(nm + 1) * sizeof *ml);
    if (!tp || !tl || (scores && !sc) || (types && !ty) || !mp || !ml) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (uint64_t i = 0; i < n; i++) {
        lgguf_str s = tokens->arr.items[i].s;
        if (s.len > UINT32_MAX) {
            st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: token %llu is too long", g->path, (unsigned long long)i);
            goto done;
        }
        tp[i] = s.ptr;
        tl[i] = (uint32_t)s.len;
        if (sc) memcpy(&sc[i], scores->arr.raw + 4 * i, 4);
        if (ty) memcpy(&ty[i], types->arr.raw + 4 * i, 4);
    }
    for (uint64_t i = 0; i < nm; i++) {
        lgguf_str s = merges->arr.items[i].s;
        if (s.len > UINT32_MAX) {
            st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: merge %llu is too long", g->path, (unsigned long long)i);
            goto done;
        }
        mp[i] = s.ptr;
        ml[i] = (uint32_t)s.len;
    }
    d.n_tokens = (uint32_t)n;
    d.tokens = tp;
    d.token_lens = tl;
    d.scores = sc;
    d.types = ty;
    d.n_merges = (uint32_t)nm;
    d.merges = mp;
    d.merge_lens = ml;
    if ((st = lgguf_opt_i32(g, "tokenizer.ggml.bos_token_id", -1, &d.bos_id, err)) ||
        (st = lgguf_opt_i32(g, "tokenizer.ggml.eos_token_id", -1, &d.eos_id, err)) ||
        (st = lgguf_opt_i32(g, "tokenizer.ggml.eot_token_id", -1, &d.eot_id, err)) ||
        (st = lgguf_opt_i32(g, "tokenizer.ggml.unknown_token_id", -1, &d.unk_id, err)) ||
        (st = lgguf_opt_i32(g, "tokenizer.ggml.padding_token_id", -1, &d.pad_id, err)) ||
        (st = lgguf_opt_bool(g, "tokenizer.ggml.add_bos_token", true, &d.add_bos, err)))
        goto done;
    if (lgguf_get(g, "tokenizer.ggml.pre")) {
        if ((st = lgguf_req_str(g, "tokenizer.ggml.pre", &pre, err))) goto done;
        if (!(pre_z = strndup(pre.ptr, (size_t)(pre.len < 256 ? pre.len : 256)))) {
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
            goto done;
        }
        d.pre = pre_z;
    }
    st = ltok_from_vocab(&d, out, err);
    if (st && err) {
        /* Say which file the vocabulary came from. */
        char msg[sizeof err->message];
        snprintf(msg, sizeof msg, "%s", err->message);
        shoal_error_set(err, st, "%s: tokenizer: %s", g->path, msg);
    }
done:
    free(tp);
    free(tl);
    free(sc);
    free(ty);
    free(mp);
    free(ml);
    free(pre_z);
    return st;
}

shoal_status lload_gguf_put_tokenizer(lgguf_writer *w, const ltok *tok, shoal_error *err) {
    ltok_vocab_desc d;
    shoal_status st;
    ltok_vocab(tok, &d);
    const char *model = d.kind == LTOK_SPM ? "llama" : "gpt2";
    const char *pre = d.pre ? d.pre : d.kind == LTOK_SPM ? "default" : "llama-bpe";
    if ((st = lgguf_w_str(w, "tokenizer.ggml.model", model, strlen(model), err)) ||
        (st = lgguf_w_str(w, "tokenizer.ggml.pre", pre, strlen(pre), err)) ||
        (st = lgguf_w_arr_str(w, "tokenizer.ggml.tokens", d.n_tokens, d.tokens, d.token_lens, err)))
        return st;
    if (d.scores && (st = lgguf_w_arr(w, "tokenizer.ggml.scores", LGGUF_F32, d.n_tokens, d.scores, err))) return st;
    if (d.types && (st = lgguf_w_arr(w, "tokenizer.ggml.token_type", LGGUF_I32, d.n_tokens, d.types, err))) return st;
    if (d.kind == LTOK_BPE &&
        (st = lgguf_w_arr_str(w, "tokenizer.ggml.merges", d.n_merges, d.merges, d.merge_lens, err)))
        return st;
    const struct { const char *key; int32_t id; } ids[] = {
        {"tokenizer.ggml.bos_token_id", d.bos_id},     {"tokenizer.ggml.eos_token_id", d.eos_id},
        {"tokenizer.ggml.eot_token_id", d.eot_id},     {"tokenizer.ggml.unknown_token_id", d.unk_id},
        {"tokenizer.ggml.padding_token_id", d.pad_id},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i].id >= 0 && (st = lgguf_w_u32(w, ids[i].key, (uint32_t)ids[i].id, err))) return st;
    return lgguf_w_bool(w, "tokenizer.ggml.add_bos_token", d.add_bos, err);
}

/* ---- writing --------------------------------------------------------------------------------------------- */

typedef struct wt {
    lload_which which;
    int layer;
    const lmodel_tensor *src; /* the model's view (data may be NULL with a rows callback) */
    lmodel_dtype dt;          /* output dtype */
    uint32_t rows, cols;
} wt;

typedef struct wctx {
    const lload_write_opts *o;
    wt *t;
    float *scratch; /* max cols floats */
} wctx;

static shoal_status fill(void *user, uint64_t index, uint64_t offset, void *buf, uint64_t nbytes, shoal_error *err) {
    wctx *x = user;
    const wt *t = &x->t[index];
    size_t rb = lmodel_dtype_row_bytes(t->dt, t->cols);
    uint32_t row0 = (uint32_t)(offset / rb), n = (uint32_t)(nbytes / rb);
    if (!x->o->rows) {
        lquant_rows(t->src, row0, n, t->dt, buf, x->scratch);
        return SHOAL_OK;
    }
    for (uint32_t r = 0; r < n; r++) {
        shoal_status st = x->o->rows(x->o->rows_user, t->which, t->layer, row0 + r, 1, t->cols, x->scratch, err);
        if (st) return st;
        lquant_from_f32(t->dt, x->scratch, t->cols, (uint8_t *)buf + (size_t)r * rb);
    }
    return SHOAL_OK;
}

static uint32_t file_type(int type) {
    switch (type) { /* llama.cpp's llama_ftype */
    case LDT_F32: return 0;
    case LDT_F16: return 1;
    case LDT_Q4_0: return 2;
    case LDT_Q8_0: return 7;
    case LDT_BF16: return 32;
    }
    return 0;
}

shoal_status lload_write_gguf(const lmodel *m, const char *path, const lload_write_opts *o, shoal_error *err) {
    const lmodel_config *c = &m->cfg;
    lgguf_writer *w = lgguf_writer_new();
    wctx x = {o, NULL, NULL};
    float *rope = NULL;
    shoal_status st = SHOAL_OK;
    uint32_t nf = 0, max_cols = 1;
    uint32_t head_dim = c->head_dim ? c->head_dim : (c->n_heads ? c->dim / c->n_heads : 0);
    size_t cap = 3 + (size_t)c->n_layers * 9, n = 0;

    if (o->type >= 0 && !lmodel_dtype_valid(o->type))
        return shoal_error_set(err, SHOAL_ERR_ARG, "unsupported output type %d", o->type);
    x.t = calloc(cap, sizeof *x.t);
    if (!w || !x.t) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* The tensor list, in llama.cpp's order. */
    for (int l = -1; l < (int)c->n_layers; l++) {
        int first = l < 0 ? LW_TOK_EMBD : LW_ATTN_NORM, last = l < 0 ? LW_OUTPUT : LW_W3;
        for (int i = first; i <= last; i++) {
            if (i == LW_OUTPUT && c->tied_embeddings) continue;
            wt *t = &x.t[n++];
            t->which = (lload_which)i;
            t->layer = l;
            t->src = model_tensor((lmodel *)m, t->which, l);
            expected_shape(c, t->which, &t->rows, &t->cols);
            if (!o->rows && (t->src->rows != t->rows || t->src->cols != t->cols || !t->src->data)) {
                st = shoal_error_set(err, SHOAL_ERR_ARG, "model tensor %s (layer %d) does not match its config",
                                     which_names[i], l);
                goto done;
            }
            t->dt = lquant_pick(o->type, o->rows ? LDT_F32 : t->src->dtype, t->rows, t->cols);
            if (t->rows > 1 && o->type >= 0 && t->dt != (lmodel_dtype)o->type) nf++;
            if (t->cols > max_cols) max_cols = t->cols;
        }
    }
    if (!(x.scratch = malloc((size_t)max_cols * sizeof(float)))) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        goto done;
    }

    int ft = o->type >= 0 ? o->type : (int)m->tok_embd.dtype;
    char name[128];
    snprintf(name, sizeof name, "%s", c->name[0] ? c->name : "model");
    if ((st = lgguf_w_str(w, "general.architecture", "llama", 5, err)) ||
        (st = lgguf_w_str(w, "general.name", name, strlen(name), err)) ||
        (st = lgguf_w_u32(w, "general.file_type", file_type(ft), err)) ||
        (st = lgguf_w_u32(w, "general.quantization_version", 2, err)) ||
        (st = lgguf_w_u32(w, "llama.context_length", c->seq_len, err)) ||
        (st = lgguf_w_u32(w, "llama.embedding_length", c->dim, err)) ||
        (st = lgguf_w_u32(w, "llama.block_count", c->n_layers, err)) ||
        (st = lgguf_w_u32(w, "llama.feed_forward_length", c->hidden_dim, err)) ||
        (st = lgguf_w_u32(w, "llama.attention.head_count", c->n_heads, err)) ||
        (st = lgguf_w_u32(w, "llama.attention.head_count_kv", c->n_kv_heads ? c->n_kv_heads : c->n_heads, err)) ||
        (st = lgguf_w_u32(w, "llama.attention.key_length", head_dim, err)) ||
        (st = lgguf_w_u32(w, "llama.attention.value_length", head_dim, err)) ||
        (st = lgguf_w_u32(w, "llama.rope.dimension_count", head_dim, err)) ||
        (st = lgguf_w_f32(w, "llama.rope.freq_base", c->rope_theta > 0 ? c->rope_theta : 10000.0f, err)) ||
        (st = lgguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", c->rms_eps > 0 ? c->rms_eps : 1e-5f, err)) ||
        (st = lgguf_w_u32(w, "llama.vocab_size", c->vocab_size, err)))
        goto done;
    if (c->rope_scaling.enabled) {
        const lmodel_rope_scaling *r = &c->rope_scaling;
        if ((st = lgguf_w_f32(w, "shoal.rope.llama3.factor", r->factor, err)) ||
            (st = lgguf_w_f32(w, "shoal.rope.llama3.low_freq_factor", r->low_freq_factor, err)) ||
            (st = lgguf_w_f32(w, "shoal.rope.llama3.high_freq_factor", r->high_freq_factor, err)) ||
            (st = lgguf_w_u32(w, "shoal.rope.llama3.original_context_length", r->original_context, err)))
            goto done;
    }
    if (m->tok && (st = lload_gguf_put_tokenizer(w, m->tok, err))) goto done;

    for (size_t i = 0; i < n; i++) {
        const wt *t = &x.t[i];
        uint64_t ne[2] = {t->cols, t->rows};
        tensor_name(name, sizeof name, t->which, t->layer);
        if ((st = lgguf_w_tensor(w, name, (uint32_t)t->dt, t->rows == 1 && is_norm(t->which) ? 1 : 2, ne, NULL, fill,
                                 &x, err)))
            goto done;
    }
    if (c->rope_scaling.enabled) {
        uint64_t ne = head_dim / 2;
        if (!(rope = malloc((size_t)ne * sizeof *rope))) {
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
            goto done;
        }
        lmodel_config cc = *c;
        cc.head_dim = head_dim;
        llama3_rope_factors(&cc, rope);
        if ((st = lgguf_w_tensor(w, "rope_freqs.weight", LGGUF_T_F32, 1, &ne, rope, NULL, NULL, err))) goto done;
    }
    st = lgguf_writer_write(w, path, o->progress, o->progress_user, err);
    if (o->n_fallback) *o->n_fallback = nf;
done:
    lgguf_writer_free(w);
    free(x.t);
    free(x.scratch);
    free(rope);
    return st;
}
