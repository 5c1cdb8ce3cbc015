/*
 * lload.h: what the GGUF and safetensors loaders share with `shoal convert` and `shoal info`: writing a
 * model as GGUF, tokenizer plumbing, and the model identity hash.
 *
 * Loaders themselves are declared in lmodel.h (lload_gguf, lload_safet); this header holds the rest.
 */
#ifndef LLOAD_H
#define LLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "lgguf.h"
#include "lmodel.h"

/* ---- tokenizers ------------------------------------------------------------------------------------ */

/* Loads a tokenizer file by its kind: a Hugging Face tokenizer.json (name ends in .json) or a llama2.c
 * tokenizer.bin (anything else; it holds exactly vocab_size tokens). */
shoal_status lload_tokenizer_file(const char *path, uint32_t vocab_size, ltok **out, shoal_error *err);
/* Builds a tokenizer from a GGUF's tokenizer.ggml.* metadata. *out is NULL (and SHOAL_OK returned) when the
 * file has no tokenizer.ggml.model key; an unknown model kind or bad arrays fail. */
shoal_status lload_gguf_tokenizer(const lgguf *g, ltok **out, shoal_error *err);
/* Writes tok's vocabulary as tokenizer.ggml.* metadata (llama.cpp's keys). */
shoal_status lload_gguf_put_tokenizer(lgguf_writer *w, const ltok *tok, shoal_error *err);

/* ---- writing a model as GGUF ------------------------------------------------------------------------ */

/* Which tensor of the model a writer is producing: layer -1 for the global ones. */
typedef enum lload_which {
    LW_TOK_EMBD, LW_OUT_NORM, LW_OUTPUT,
    LW_ATTN_NORM, LW_WQ, LW_WK, LW_WV, LW_WO, LW_FFN_NORM, LW_W1, LW_W2, LW_W3,
    LW_COUNT
} lload_which;

/* Produces rows [row0, row0 + n) of a tensor as f32 (cols values each) when the model's views carry no
 * data (random-weight models of real shapes are generated row by row this way, never held in memory). */
typedef shoal_status (*lload_rows_fn)(void *user, lload_which which, int layer, uint32_t row0, uint32_t n,
                                      uint32_t cols, float *out, shoal_error *err);

typedef struct lload_write_opts {
    /* Type of the 2-D weights: F32, F16, BF16, Q8_0 or Q4_0; or -1 to keep each tensor's own dtype.
     * Norm weights are always F32. A matrix whose row length is not a multiple of 32 cannot be Q8_0/Q4_0:
     * it is written as F16 instead (and counted in *n_fallback). */
    int type;
    lload_rows_fn rows; /* NULL: read the tensors' data */
    void *rows_user;
    lgguf_progress_fn progress;
    void *progress_user;
    uint32_t *n_fallback; /* out, may be NULL */
} lload_write_opts;

/* Writes m (config, weights, the tokenizer when m->tok is set) as a GGUF v3 file that llama.cpp loads:
 * llama.* architecture keys, tokenizer.ggml.* keys, llama.cpp's tensor names; Llama 3 rope scaling as
 * llama.cpp's rope_freqs.weight plus shoal.rope.* keys with the parameters. */
shoal_status lload_write_gguf(const lmodel *m, const char *path, const lload_write_opts *o, shoal_error *err);

/* ---- random-weight models of real shapes (benchmarks) -------------------------------------------------- */

/* Named shapes: "110m" (llama2.c 110M: dim 768, 12 layers, 12 heads, hidden 2048, vocab 32000, ctx 1024)
 * and "1b" (Llama-3.2-1B: dim 2048, 16 layers, 32 heads, 8 KV heads, hidden 8192, vocab 128256, tied,
 * rope theta 500000 with Llama 3 scaling, ctx 131072). false when the name is unknown. */
bool lload_shape(const char *name, lmodel_config *cfg);
/* Writes a model of that config with uniform random weights of standard deviation 0.02 (norms 1), seeded
 * (the same seed gives the same file). tok may be NULL. */
shoal_status lload_write_random(const lmodel_config *cfg, ltok *tok, uint64_t seed, const char *path,
                                const lload_write_opts *o, shoal_error *err);

/* ---- model identity ----------------------------------------------------------------------------------- */

/* SHA-256 over the config that shapes the computation (sizes, eps, rope) and every weight tensor (dtype,
 * shape, bytes) in a fixed order: the same weights give the same id whatever file they came from (a
 * llama2.c .bin and its f32 GGUF agree); any changed weight byte or setting changes it. */
void lload_model_id(const lmodel *m, uint8_t id[32]);
/* 64 hex digits and a NUL. */
void lload_id_hex(const uint8_t id[32], char hex[65]);

#endif
