/*
 * lmodel.h: a loaded Llama-family model: its configuration and dtype-tagged views of its weights.
 *
 * Every loader (llama2.c .bin: lbin.c; GGUF: lload_gguf.c; safetensors / HF folder: lload_safet.c) fills
 * the same struct, so the forward pass (lforward.c) and the backends never know where a model came from.
 *
 * Conventions every loader must produce (lmodel_finish() checks them):
 *   - A matrix is [rows][cols] row-major, cols contiguous ("ne[0]" in ggml terms): y = W x computes
 *     rows outputs from cols inputs. wq: [n_heads*head_dim][dim]; wk, wv: [n_kv_heads*head_dim][dim];
 *     wo: [dim][n_heads*head_dim]; w1 (gate), w3 (up): [hidden_dim][dim]; w2 (down): [dim][hidden_dim];
 *     tok_embd and output: [vocab_size][dim].
 *   - RoPE rotates INTERLEAVED pairs (x[2i], x[2i+1]) of each head, as llama2.c and llama.cpp's GGUF files
 *     do. Hugging Face checkpoints rotate halves (x[i], x[i+head_dim/2]); their loader permutes the
 *     rows of wq and wk at load time so there is ONE rope in the forward pass: within each head, our
 *     row 2i is HF row i and our row 2i+1 is HF row i + head_dim/2 (the inverse of HF's convert script).
 *   - Norm weights (attn_norm, ffn_norm, out_norm) are F32 vectors (rows == 1, cols == dim): a loader
 *     converts other dtypes into a buffer from lmodel_alloc().
 *   - Quantised dtypes use ggml's block layouts, so files we write load in llama.cpp:
 *       Q8_0: 32 values per block = { fp16 d; int8 q[32]; }          value = q * d        (34 bytes)
 *       Q4_0: 32 values per block = { fp16 d; uint8 qs[16]; }        value = (nib - 8) * d (18 bytes)
 *             byte j holds value j in its low nibble and value j+16 in its high nibble.
 *     cols must be a multiple of 32 for them.
 *   - Tied embeddings: output is a copy of the tok_embd view (same data pointer), cfg.tied_embeddings set.
 *
 * Storage: tensor data points into file mappings (lmodel_map_file) or buffers from lmodel_alloc(); both
 * live until lmodel_free(). Never copy a whole file to the heap. After lmodel_finish() the model is
 * read-only and may be shared by any number of sessions (and threads).
 */
#ifndef LMODEL_H
#define LMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal.h"

typedef struct ltok ltok; /* ltok.h (tokenizers) */
typedef struct lbackend lbackend; /* lbackend.h */

/* Element types. The values are ggml's type ids (GGUF's ggml_type), so a GGUF loader maps them 1:1. */
typedef enum lmodel_dtype {
    LDT_F32 = 0,
    LDT_F16 = 1,
    LDT_Q4_0 = 2,
    LDT_Q8_0 = 8,
    LDT_BF16 = 30,
} lmodel_dtype;

#define LMODEL_QBLOCK 32 /* values per Q8_0 / Q4_0 block */

typedef struct lmodel_block_q8_0 {
    uint16_t d; /* fp16 bits */
    int8_t qs[LMODEL_QBLOCK];
} lmodel_block_q8_0;

typedef struct lmodel_block_q4_0 {
    uint16_t d; /* fp16 bits */
    uint8_t qs[LMODEL_QBLOCK / 2];
} lmodel_block_q4_0;

/* Bytes of one row of `cols` values, or 0 when cols is not a whole number of blocks. */
size_t lmodel_dtype_row_bytes(lmodel_dtype dt, uint64_t cols);
const char *lmodel_dtype_name(lmodel_dtype dt); /* "f32", "q8_0", ...; "?" for an unknown value */
bool lmodel_dtype_valid(int dt);

/* A view of one weight tensor. */
typedef struct lmodel_tensor {
    lmodel_dtype dtype;
    uint32_t cols, rows; /* a vector has rows == 1 */
    const void *data;    /* host bytes (rows * row_bytes), in a mapping or lmodel_alloc() buffer */
    const void *dev;     /* the backend's copy (set by backend->model_init; == data for the CPU) */
} lmodel_tensor;

typedef struct lmodel_layer {
    lmodel_tensor attn_norm, wq, wk, wv, wo;
    lmodel_tensor ffn_norm, w1, w2, w3; /* w1 = gate, w2 = down, w3 = up */
} lmodel_layer;

/* Llama 3.1+ "rope_type llama3" frequency scaling. enabled == false: plain RoPE. */
typedef struct lmodel_rope_scaling {
    bool enabled;
    float factor, low_freq_factor, high_freq_factor;
    uint32_t original_context; /* original_max_position_embeddings, e.g. 8192 */
} lmodel_rope_scaling;

typedef struct lmodel_config {
    uint32_t dim;        /* embedding width */
    uint32_t n_layers;
    uint32_t n_heads;
    uint32_t n_kv_heads; /* grouped-query attention: n_heads % n_kv_heads == 0 */
    uint32_t head_dim;   /* usually dim / n_heads */
    uint32_t hidden_dim; /* FFN width */
    uint32_t vocab_size;
    uint32_t seq_len;    /* the longest context the model was trained for */
    float rms_eps;       /* 1e-5 for llama2.c files */
    float rope_theta;    /* 10000 for Llama 2, 500000 for Llama 3 */
    lmodel_rope_scaling rope_scaling;
    bool tied_embeddings;
    char arch[32];  /* "llama" */
    char name[128]; /* general.name or the file's base name */
} lmodel_config;

typedef struct lmodel_mapping {
    void *base;
    size_t size;
} lmodel_mapping;

typedef struct lmodel {
    lmodel_config cfg;
    lmodel_tensor tok_embd;
    lmodel_tensor out_norm;
    lmodel_tensor output; /* == tok_embd's view when tied */
    lmodel_layer *layers; /* cfg.n_layers entries, from lmodel_alloc() */
    float *rope_freqs;    /* head_dim/2 inverse frequencies incl. Llama 3 scaling; set by lmodel_finish */

    ltok *tok;            /* owned; NULL when the file carries no tokenizer and none was given */
    char path[1024];      /* the file (or folder) it was loaded from */
    char format[16];      /* "llama2c", "gguf", "safetensors" */

    /* Storage owned by the model; freed by lmodel_free. */
    lmodel_mapping *maps;
    size_t n_maps, cap_maps;
    void **bufs;
    size_t n_bufs, cap_bufs;
    size_t owned_bytes;   /* sum of lmodel_alloc() sizes */

    /* The backend this model runs on, and its per-model state (uploaded weights, ...). */
    const lbackend *backend;
    void *backend_state;
} lmodel;

/* Options of lmodel_load. NULL means all defaults. */
typedef struct lmodel_load_opts {
    const char *tokenizer_path; /* tokenizer.bin (llama2.c) / tokenizer.json; NULL: what the file carries
                                   or, for a .bin, "tokenizer.bin" next to it when present */
    /* Called now and then while reading a large file; done <= total bytes. NULL for none. */
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *progress_user;
} lmodel_load_opts;

/* Loads any supported file: dispatches on its magic (llama2.c .bin, "GGUF", safetensors or a folder with
 * config.json) to the loader below, then lmodel_finish(). The model has no backend yet: see
 * lbackend_attach (lbackend.h). */
shoal_status lmodel_load(const char *path, const lmodel_load_opts *opts, lmodel **out, shoal_error *err);

/* The loaders. Each fills an empty model from lmodel_new() and does not call lmodel_finish(). On failure
 * the caller frees the model (everything registered in it is released). Messages name the file and the
 * problem. lload_gguf and lload_safet live in lload_gguf.c / lload_safet.c (helper llmformats). */
shoal_status lbin_load(lmodel *m, const char *path, const lmodel_load_opts *opts, shoal_error *err);
shoal_status lload_gguf(lmodel *m, const char *path, const lmodel_load_opts *opts, shoal_error *err);
shoal_status lload_safet(lmodel *m, const char *path, const lmodel_load_opts *opts, shoal_error *err);

/* Building blocks for loaders. */
lmodel *lmodel_new(void);
void lmodel_free(lmodel *m); /* also detaches the backend; NULL is fine */
/* mmaps a whole file read-only and registers the mapping; base and size describe it. Empty files fail. */
shoal_status lmodel_map_file(lmodel *m, const char *path, const uint8_t **base, size_t *size, shoal_error *err);
/* A zeroed, 64-byte aligned buffer owned by the model. NULL (and err set) when out of memory. */
void *lmodel_alloc(lmodel *m, size_t size, shoal_error *err);
/* Takes ownership of a tokenizer (replacing any earlier one). */
void lmodel_set_tokenizer(lmodel *m, ltok *tok);
/* Checks the config (positive sizes, head arithmetic, overflow of element counts) and every tensor's
 * dtype and shape against it, fills defaults (head_dim, rms_eps, rope_theta), computes rope_freqs.
 * Messages name the tensor and what is wrong. */
shoal_status lmodel_finish(lmodel *m, shoal_error *err);

/* Bytes of weights (mapped + owned) and bytes the model allocated on the heap, for reporting. */
uint64_t lmodel_weight_bytes(const lmodel *m);
uint64_t lmodel_param_count(const lmodel *m);

/* fp16 / bf16 <-> f32 (portable; kernels have their own fast paths). */
float lmodel_fp16_to_f32(uint16_t h);
uint16_t lmodel_f32_to_fp16(float f);
float lmodel_bf16_to_f32(uint16_t h);
uint16_t lmodel_f32_to_bf16(float f);

/* Quantises n floats (n % 32 == 0) into ggml blocks, as llama.cpp's reference quantiser does
 * (Q8_0: d = max|x|/127, q = round(x/d); Q4_0: d = max/-8 of the signed extreme, q = min(15, x/d + 8.5)). */
void lmodel_quantize_q8_0(const float *x, lmodel_block_q8_0 *out, size_t n);
void lmodel_quantize_q4_0(const float *x, lmodel_block_q4_0 *out, size_t n);
/* One row of any dtype to f32 (cols values). */
void lmodel_row_to_f32(const lmodel_tensor *t, uint32_t row, float *out);

#endif
