/* lmodel.c: the model struct's storage, checks, dtype helpers and the loader dispatch. */
#include "lmodel.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lbackend.h"
#include "ltok.h"

/* ---- dtypes ---------------------------------------------------------------------------------------- */

bool lmodel_dtype_valid(int dt) {
    return dt == LDT_F32 || dt == LDT_F16 || dt == LDT_BF16 || dt == LDT_Q8_0 || dt == LDT_Q4_0;
}

size_t lmodel_dtype_row_bytes(lmodel_dtype dt, uint64_t cols) {
    /* cols < 2^32 always here, so no product below overflows size_t. */
    if (cols > UINT32_MAX)
        return 0;
    switch (dt) {
    case LDT_F32: return (size_t)cols * 4;
    case LDT_F16:
    case LDT_BF16: return (size_t)cols * 2;
    case LDT_Q8_0: return cols % LMODEL_QBLOCK ? 0 : (size_t)(cols / LMODEL_QBLOCK) * sizeof(lmodel_block_q8_0);
    case LDT_Q4_0: return cols % LMODEL_QBLOCK ? 0 : (size_t)(cols / LMODEL_QBLOCK) * sizeof(lmodel_block_q4_0);
    }
    return 0;
}

const char *lmodel_dtype_name(lmodel_dtype dt) {
    switch (dt) {
    case LDT_F32: return "f32";
    case LDT_F16: return "f16";
    case LDT_BF16: return "bf16";
    case LDT_Q8_0: return "q8_0";
    case LDT_Q4_0: return "q4_0";
    }
    return "?";
}

_Static_assert(sizeof(lmodel_block_q8_0) == 34, "ggml block_q8_0 is 34 bytes");
_Static_assert(sizeof(lmodel_block_q4_0) == 18, "ggml block_q4_0 is 18 bytes");

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float lmodel_fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f)
        return bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24 */
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t lmodel_f32_to_fp16(float f) {
    /* Round to nearest even, with overflow to inf and gradual underflow. */
    uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000;
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u)
        return (uint16_t)(sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0));
    if (abs >= 0x477ff000u) /* >= 65520 rounds to inf */
        return (uint16_t)(sign | 0x7c00);
    if (abs < 0x38800000u) { /* below 2^-14: subnormal half */
        float a = bits_f32(abs);
        /* a / 2^-24, rounded to nearest even by the FPU's default mode */
        float q = a * 16777216.0f;
        uint32_t m = (uint32_t)nearbyintf(q);
        return (uint16_t)(sign | m);
    }
    uint32_t e = ((abs >> 23) - 112) << 10, m = (abs >> 13) & 0x3ff;
    uint32_t h = e | m, rest = abs & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

float lmodel_bf16_to_f32(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

uint16_t lmodel_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 64); /* quiet NaN */
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

void lmodel_quantize_q8_0(const float *x, lmodel_block_q8_0 *out, size_t n) {
    for (size_t b = 0; b < n / LMODEL_QBLOCK; b++) {
        const float *v = x + b * LMODEL_QBLOCK;
        float amax = 0;
        for (int i = 0; i < LMODEL_QBLOCK; i++)
            amax = fmaxf(amax, fabsf(v[i]));
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0;
        out[b].d = lmodel_f32_to_fp16(d);
        for (int i = 0; i < LMODEL_QBLOCK; i++)
            out[b].qs[i] = (int8_t)roundf(v[i] * id);
    }
}

void lmodel_quantize_q4_0(const float *x, lmodel_block_q4_0 *out, size_t n) {
    for (size_t b = 0; b < n / LMODEL_QBLOCK; b++) {
        const float *v = x + b * LMODEL_QBLOCK;
        float amax = 0, max = 0;
        for (int i = 0; i < LMODEL_QBLOCK; i++)
            if (fabsf(v[i]) > amax) {
                amax = fabsf(v[i]);
                max = v[i];
            }
        float d = max / -8.0f, id = d != 0 ? 1.0f / d : 0;
        out[b].d = lmodel_f32_to_fp16(d);
        for (int i = 0; i < LMODEL_QBLOCK / 2; i++) {
            float a = v[i] * id + 8.5f, c = v[i + 16] * id + 8.5f;
            uint8_t lo = (uint8_t)(a < 15 ? (a > 0 ? a : 0) : 15), hi = (uint8_t)(c < 15 ? (c > 0 ? c : 0) : 15);
            out[b].qs[i] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void lmodel_row_to_f32(const lmodel_tensor *t, uint32_t row, float *out) {
    size_t rb = lmodel_dtype_row_bytes(t->dtype, t->cols);
    const uint8_t *p = (const uint8_t *)t->data + (size_t)row * rb;
    uint32_t n = t->cols;
    switch (t->dtype) {
    case LDT_F32: memcpy(out, p, (size_t)n * 4); break;
    case LDT_F16:
        for (uint32_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = lmodel_fp16_to_f32(h);
        }
        break;
    case LDT_BF16:
        for (uint32_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = lmodel_bf16_to_f32(h);
        }
        break;
    case LDT_Q8_0:
        for (uint32_t b = 0; b < n / LMODEL_QBLOCK; b++) {
            const lmodel_block_q8_0 *blk = (const lmodel_block_q8_0 *)p + b;
            float d = lmodel_fp16_to_f32(blk->d);
            for (int i = 0; i < LMODEL_QBLOCK; i++)
                out[b * LMODEL_QBLOCK + i] = blk->qs[i] * d;
        }
        break;
    case LDT_Q4_0:
        for (uint32_t b = 0; b < n / LMODEL_QBLOCK; b++) {
            const lmodel_block_q4_0 *blk = (const lmodel_block_q4_0 *)p + b;
            float d = lmodel_fp16_to_f32(blk->d);
            for (int i = 0; i < LMODEL_QBLOCK / 2; i++) {
                out[b * LMODEL_QBLOCK + i] = ((blk->qs[i] & 15) - 8) * d;
                out[b * LMODEL_QBLOCK + i + 16] = ((blk->qs[i] >> 4) - 8) * d;
            }
        }
        break;
    }
}

/* ---- storage --------------------------------------------------------------------------------------- */

lmodel *lmodel_new(void) {
    return calloc(1, sizeof(lmodel));
}

void lmodel_free(lmodel *m) {
    if (!m)
        return;
    if (m->backend && m->backend->model_release)
        m->backend->model_release((lbackend *)m->backend, m);
    if (m->tok)
        ltok_free(m->tok);
    for (size_t i = 0; i < m->n_maps; i++)
        munmap(m->maps[i].base, m->maps[i].size);
    for (size_t i = 0; i < m->n_bufs; i++)
        free(m->bufs[i]);
    free(m->maps);
    free(m->bufs);
    free(m);
}

shoal_status lmodel_map_file(lmodel *m, const char *path, const uint8_t **base, size_t *size, shoal_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return shoal_error_set(err, SHOAL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return shoal_error_set(err, SHOAL_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: the file is empty", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: too large to map", path);
    }
    if (m->n_maps == m->cap_maps) {
        size_t cap = m->cap_maps ? m->cap_maps * 2 : 4;
        lmodel_mapping *nm = realloc(m->maps, cap * sizeof *nm);
        if (!nm) {
            close(fd);
            return shoal_error_set(err, SHOAL_ERR_NOMEM, "%s: out of memory", path);
        }
        m->maps = nm;
        m->cap_maps = cap;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return shoal_error_set(err, SHOAL_ERR_IO, "%s: mmap failed: %s", path, strerror(e));
    m->maps[m->n_maps++] = (lmodel_mapping){p, (size_t)st.st_size};
    *base = p;
    *size = (size_t)st.st_size;
    return SHOAL_OK;
}

void *lmodel_alloc(lmodel *m, size_t size, shoal_error *err) {
    if (m->n_bufs == m->cap_bufs) {
        size_t cap = m->cap_bufs ? m->cap_bufs * 2 : 8;
        void **nb = realloc(m->bufs, cap * sizeof *nb);
        if (!nb) {
            shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
            return NULL;
        }
        m->bufs = nb;
        m->cap_bufs = cap;
    }
    size_t rounded = (size + 63) & ~(size_t)63;
    if (rounded < size) {
        shoal_error_set(err, SHOAL_ERR_NOMEM, "allocation of %zu bytes is too large", size);
        return NULL;
    }
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) {
        shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory (%zu bytes)", size);
        return NULL;
    }
    memset(p, 0, rounded ? rounded : 64);
    m->bufs[m->n_bufs++] = p;
    m->owned_bytes += rounded;
    return p;
}

void lmodel_set_tokenizer(lmodel *m, ltok *tok) {
    if (m->tok && m->tok != tok)
        ltok_free(m->tok);
    m->tok = tok;
}

/* ---- checks ---------------------------------------------------------------------------------------- */

static shoal_status check_tensor(const lmodel *m, const lmodel_tensor *t, const char *name, int layer,
                                 uint32_t rows, uint32_t cols, bool need_f32, shoal_error *err) {
    char what[64];
    if (layer >= 0)
        snprintf(what, sizeof what, "layer %d %s", layer, name);
    else
        snprintf(what, sizeof what, "%s", name);
    if (!t->data)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: tensor %s is missing", m->path, what);
    if (!lmodel_dtype_valid((int)t->dtype))
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: tensor %s has unsupported dtype %d", m->path, what,
                               (int)t->dtype);
    if (need_f32 && t->dtype != LDT_F32)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: tensor %s must be f32 (is %s)", m->path, what,
                               lmodel_dtype_name(t->dtype));
    if (t->rows != rows || t->cols != cols)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: tensor %s has shape [%u, %u], expected [%u, %u]",
                               m->path, what, t->rows, t->cols, rows, cols);
    if (lmodel_dtype_row_bytes(t->dtype, cols) == 0)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: tensor %s: %u columns is not a whole number of %s blocks",
                               m->path, what, cols, lmodel_dtype_name(t->dtype));
    return SHOAL_OK;
}

/* Llama 3 "rope_type llama3" scaling of inverse frequencies (from Meta's reference): long wavelengths are
 * divided by `factor`, short ones kept, and the band between smoothly interpolated. */
static void rope_freqs(lmodel *m) {
    const lmodel_config *c = &m->cfg;
    uint32_t half = c->head_dim / 2;
    for (uint32_t i = 0; i < half; i++) {
        double f = 1.0 / pow((double)c->rope_theta, (double)(2 * i) / (double)c->head_dim);
        if (c->rope_scaling.enabled) {
            const lmodel_rope_scaling *s = &c->rope_scaling;
            double low_wl = s->original_context / (double)s->low_freq_factor;
            double high_wl = s->original_context / (double)s->high_freq_factor;
            double wl = 2 * M_PI / f;
            if (wl > low_wl) {
                f /= s->factor;
            } else if (wl >= high_wl) {
                double smooth = (s->original_context / wl - s->low_freq_factor) /
                                (s->high_freq_factor - s->low_freq_factor);
                f = (1 - smooth) * f / s->factor + smooth * f;
            }
        }
        m->rope_freqs[i] = (float)f;
    }
}

shoal_status lmodel_finish(lmodel *m, shoal_error *err) {
    lmodel_config *c = &m->cfg;
    if (!c->arch[0])
        snprintf(c->arch, sizeof c->arch, "llama");
    if (c->dim == 0 || c->n_layers == 0 || c->n_heads == 0 || c->hidden_dim == 0 || c->vocab_size == 0)
        return shoal_error_set(err, SHOAL_ERR_FORMAT,
                               "%s: bad config: dim %u, layers %u, heads %u, hidden %u, vocab %u must all be > 0",
                               m->path, c->dim, c->n_layers, c->n_heads, c->hidden_dim, c->vocab_size);
    if (c->n_kv_heads == 0)
        c->n_kv_heads = c->n_heads;
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: bad config: %u heads is not a multiple of %u kv heads",
                               m->path, c->n_heads, c->n_kv_heads);
    if (c->head_dim == 0) {
        if (c->dim % c->n_heads)
            return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: bad config: dim %u is not a multiple of %u heads",
                                   m->path, c->dim, c->n_heads);
        c->head_dim = c->dim / c->n_heads;
    }
    if (c->head_dim % 2)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: bad config: head_dim %u is odd", m->path, c->head_dim);
    /* Keep every width (and products of a few of them) far inside 32 bits. */
    const uint32_t lim = 1u << 20;
    if (c->dim > lim || c->hidden_dim > lim || c->vocab_size > (1u << 24) || c->n_layers > 4096 ||
        c->n_heads > 4096 || (uint64_t)c->n_heads * c->head_dim > lim)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: bad config: sizes out of range (dim %u, hidden %u, "
                               "vocab %u, layers %u, heads %u x %u)", m->path, c->dim, c->hidden_dim, c->vocab_size,
                               c->n_layers, c->n_heads, c->head_dim);
    if (c->seq_len == 0)
        c->seq_len = 2048;
    if (!(c->rms_eps > 0))
        c->rms_eps = 1e-5f;
    if (!(c->rope_theta > 0))
        c->rope_theta = 10000.0f;
    if (c->rope_scaling.enabled &&
        !(c->rope_scaling.factor > 0 && c->rope_scaling.low_freq_factor > 0 &&
          c->rope_scaling.high_freq_factor > c->rope_scaling.low_freq_factor && c->rope_scaling.original_context > 0))
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: bad Llama 3 rope scaling parameters", m->path);

    uint32_t q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    shoal_status st;
    if ((st = check_tensor(m, &m->tok_embd, "token_embd", -1, c->vocab_size, c->dim, false, err)) ||
        (st = check_tensor(m, &m->out_norm, "output_norm", -1, 1, c->dim, true, err)))
        return st;
    if (c->tied_embeddings && !m->output.data)
        m->output = m->tok_embd;
    if ((st = check_tensor(m, &m->output, "output", -1, c->vocab_size, c->dim, false, err)))
        return st;
    if (!m->layers)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: no layers", m->path);
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const lmodel_layer *L = &m->layers[l];
        int li = (int)l;
        if ((st = check_tensor(m, &L->attn_norm, "attn_norm", li, 1, c->dim, true, err)) ||
            (st = check_tensor(m, &L->wq, "attn_q", li, q_dim, c->dim, false, err)) ||
            (st = check_tensor(m, &L->wk, "attn_k", li, kv_dim, c->dim, false, err)) ||
            (st = check_tensor(m, &L->wv, "attn_v", li, kv_dim, c->dim, false, err)) ||
            (st = check_tensor(m, &L->wo, "attn_output", li, c->dim, q_dim, false, err)) ||
            (st = check_tensor(m, &L->ffn_norm, "ffn_norm", li, 1, c->dim, true, err)) ||
            (st = check_tensor(m, &L->w1, "ffn_gate", li, c->hidden_dim, c->dim, false, err)) ||
            (st = check_tensor(m, &L->w2, "ffn_down", li, c->dim, c->hidden_dim, false, err)) ||
            (st = check_tensor(m, &L->w3, "ffn_up", li, c->hidden_dim, c->dim, false, err)))
            return st;
    }
    m->rope_freqs = lmodel_alloc(m, (size_t)(c->head_dim / 2) * sizeof(float), err);
    if (!m->rope_freqs)
        return SHOAL_ERR_NOMEM;
    rope_freqs(m);
    return SHOAL_OK;
}

static uint64_t tensor_bytes(const lmodel_tensor *t) {
    return (uint64_t)t->rows * lmodel_dtype_row_bytes(t->dtype, t->cols);
}

uint64_t lmodel_weight_bytes(const lmodel *m) {
    uint64_t n = tensor_bytes(&m->tok_embd) + tensor_bytes(&m->out_norm);
    if (m->output.data != m->tok_embd.data)
        n += tensor_bytes(&m->output);
    for (uint32_t l = 0; m->layers && l < m->cfg.n_layers; l++) {
        const lmodel_layer *L = &m->layers[l];
        n += tensor_bytes(&L->attn_norm) + tensor_bytes(&L->wq) + tensor_bytes(&L->wk) + tensor_bytes(&L->wv) +
             tensor_bytes(&L->wo) + tensor_bytes(&L->ffn_norm) + tensor_bytes(&L->w1) + tensor_bytes(&L->w2) +
             tensor_bytes(&L->w3);
    }
    return n;
}

uint64_t lmodel_param_count(const lmodel *m) {
    const lmodel_config *c = &m->cfg;
    uint64_t q_dim = (uint64_t)c->n_heads * c->head_dim, kv_dim = (uint64_t)c->n_kv_heads * c->head_dim;
    uint64_t per_layer = 2 * (uint64_t)c->dim + q_dim * c->dim * 2 + kv_dim * c->dim * 2 +
                         3 * (uint64_t)c->hidden_dim * c->dim;
    uint64_t n = (uint64_t)c->vocab_size * c->dim + c->dim + per_layer * c->n_layers;
    if (!c->tied_embeddings)
        n += (uint64_t)c->vocab_size * c->dim;
    return n;
}

/* ---- loading --------------------------------------------------------------------------------------- */

typedef enum { KIND_UNKNOWN, KIND_BIN, KIND_GGUF, KIND_SAFET } file_kind;

static file_kind sniff(const char *path, shoal_error *err, shoal_status *st) {
    struct stat sb;
    *st = SHOAL_OK;
    if (stat(path, &sb) != 0) {
        *st = shoal_error_set(err, SHOAL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return KIND_UNKNOWN;
    }
    if (S_ISDIR(sb.st_mode))
        return KIND_SAFET; /* a Hugging Face folder: config.json + *.safetensors */
    uint8_t head[8] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *st = shoal_error_set(err, SHOAL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return KIND_UNKNOWN;
    }
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    if (n >= 4 && !memcmp(head, "GGUF", 4))
        return KIND_GGUF;
    size_t len = strlen(path);
    if (len >= 12 && !strcmp(path + len - 12, ".safetensors"))
        return KIND_SAFET;
    if (len >= 5 && !strcmp(path + len - 5, ".json"))
        return KIND_SAFET;
    return KIND_BIN;
}

static shoal_status load_tokenizer(lmodel *m, const char *path, shoal_error *err) {
    ltok *t = NULL;
    size_t len = strlen(path);
    shoal_status st = len >= 5 && !strcmp(path + len - 5, ".json") ? ltok_load_hf_json(path, &t, err)
                                                                   : ltok_load_llama2c(path, m->cfg.vocab_size, &t, err);
    if (st)
        return st;
    if (ltok_n_tokens(t) > m->cfg.vocab_size) {
        uint32_t n = ltok_n_tokens(t);
        ltok_free(t);
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: the tokenizer has %u tokens, the model only %u", path, n,
                               m->cfg.vocab_size);
    }
    lmodel_set_tokenizer(m, t);
    return SHOAL_OK;
}

/* An explicit tokenizer path wins; a llama2.c .bin carries none, so look next to it for tokenizer.bin or
 * tok<vocab>.bin (the names llama2.c uses). */
static shoal_status attach_tokenizer(lmodel *m, const lmodel_load_opts *opts, bool look_nearby, shoal_error *err) {
    if (opts->tokenizer_path)
        return load_tokenizer(m, opts->tokenizer_path, err);
    if (m->tok || !look_nearby)
        return SHOAL_OK;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", m->path);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[1] = 0;
    else
        dir[0] = 0;
    char cand[2][1100];
    snprintf(cand[0], sizeof cand[0], "%stokenizer.bin", dir);
    snprintf(cand[1], sizeof cand[1], "%stok%u.bin", dir, m->cfg.vocab_size);
    for (int i = 0; i < 2; i++) {
        struct stat sb;
        if (stat(cand[i], &sb) == 0 && S_ISREG(sb.st_mode))
            return load_tokenizer(m, cand[i], err);
    }
    return SHOAL_OK;
}

/* Reads every page of the mappings in now, reporting progress, so a large model's first token is not
 * slowed by page faults and a terminal shows what the wait is for. */
static void prefault(const lmodel *m, const lmodel_load_opts *opts) {
    uint64_t total = 0, done = 0;
    for (size_t i = 0; i < m->n_maps; i++)
        total += m->maps[i].size;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < m->n_maps; i++) {
        const uint8_t *p = m->maps[i].base;
        size_t size = m->maps[i].size;
        madvise(m->maps[i].base, size, MADV_WILLNEED);
        for (size_t off = 0; off < size; off += 4096) {
            sink ^= p[off];
            if ((off & ((64u << 20) - 1)) == 0)
                opts->progress(opts->progress_user, done + off, total);
        }
        done += size;
    }
    (void)sink;
    opts->progress(opts->progress_user, total, total);
}

shoal_status lmodel_load(const char *path, const lmodel_load_opts *opts, lmodel **out, shoal_error *err) {
    static const lmodel_load_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    *out = NULL;
    shoal_status st;
    file_kind kind = sniff(path, err, &st);
    if (st)
        return st;
    lmodel *m = lmodel_new();
    if (!m)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    snprintf(m->path, sizeof m->path, "%s", path);
    switch (kind) {
    case KIND_BIN:
        snprintf(m->format, sizeof m->format, "llama2c");
        st = lbin_load(m, path, opts, err);
        break;
    case KIND_GGUF:
        snprintf(m->format, sizeof m->format, "gguf");
        st = lload_gguf(m, path, opts, err);
        break;
    case KIND_SAFET:
        snprintf(m->format, sizeof m->format, "safetensors");
        st = lload_safet(m, path, opts, err);
        break;
    default: st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: unknown model format", path);
    }
    if (st == SHOAL_OK)
        st = attach_tokenizer(m, opts, kind == KIND_BIN, err);
    if (st == SHOAL_OK)
        st = lmodel_finish(m, err);
    if (st == SHOAL_OK && opts->progress)
        prefault(m, opts);
    if (st) {
        lmodel_free(m);
        return st;
    }
    *out = m;
    return SHOAL_OK;
}
