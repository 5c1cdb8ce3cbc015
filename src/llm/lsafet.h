/*
 * lsafet.h: safetensors files (single or sharded through model.safetensors.index.json) and Hugging Face
 * config.json for Llama models.
 *
 * A safetensors file is a u64 little-endian header length N, N bytes of JSON
 *   {"NAME": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ..., "__metadata__": {..}}
 * and the data; offsets are relative to the byte after the header. The reader checks the header length
 * against the file, every shape (non-negative integers, no overflow), that end - begin is exactly the
 * tensor's size, that every range lies in the file and that no two tensors overlap. Data may be
 * unaligned: callers that need aligned rows copy (lload_safet does).
 */
#ifndef LSAFET_H
#define LSAFET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lmodel.h"
#include "shoal.h"

#define LSAFET_MAX_DIMS 8
#define LSAFET_MAX_HEADER (100u << 20) /* the format's own limit on the JSON header */

typedef struct lsafet_tensor {
    char *name;
    char dtype[8];      /* "F32", "F16", "BF16", "I64", ... as in the file */
    int ldt;            /* the lmodel dtype for F32/F16/BF16, -1 for the others */
    uint32_t elem_size; /* bytes per element */
    uint32_t n_dims;
    uint64_t shape[LSAFET_MAX_DIMS]; /* shape[0] outermost, as in the file; a [rows, cols] matrix is row-major */
    uint64_t n_elems, nbytes;
    const void *data;
    size_t file; /* index into files */
} lsafet_tensor;

typedef struct lsafet_file {
    char *path;
    const uint8_t *base;
    size_t size;
    bool own_map; /* mapped by lsafet (unmapped by lsafet_close), not by a model */
} lsafet_file;

typedef struct lsafet {
    char *path;
    size_t n_files;
    lsafet_file *files;
    size_t n_tensors, cap_tensors;
    lsafet_tensor *tensors;
    lsafet_tensor **by_name; /* sorted, for lookup */
} lsafet;

/* Opens a .safetensors file, a *.safetensors.index.json (every shard it names, from the same folder), or a
 * folder (its model.safetensors.index.json, else model.safetensors). With m != NULL, the files are mapped
 * through lmodel_map_file and belong to the model (tensor data stays valid after lsafet_close). */
shoal_status lsafet_open(const char *path, lmodel *m, lsafet **out, shoal_error *err);
/* Parses one safetensors image in memory (not copied). `name` is used in messages. */
shoal_status lsafet_open_mem(const void *bytes, size_t size, const char *name, lsafet **out, shoal_error *err);
void lsafet_close(lsafet *s);
const lsafet_tensor *lsafet_find(const lsafet *s, const char *name);

/* Reads a Hugging Face config.json of a Llama model (model_type "llama" or architectures
 * LlamaForCausalLM) into cfg: hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads,
 * head_dim, intermediate_size, vocab_size, max_position_embeddings, rms_norm_eps, rope_theta,
 * rope_scaling (rope_type "llama3" only), tie_word_embeddings. Missing required keys, wrong types and
 * unsupported settings fail with a message naming the key. */
shoal_status lsafet_config(const char *path, lmodel_config *cfg, shoal_error *err);
shoal_status lsafet_config_parse(const char *json, size_t len, const char *name, lmodel_config *cfg,
                                 shoal_error *err);

#endif
