/*
 * lgguf.h: GGUF, llama.cpp's model file format (versions 2 and 3): an mmap-based reader and a writer.
 *
 * File layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count; then the
 * metadata (key string, u32 value type, value), then the tensor infos (name string, u32 n_dims, u64
 * ne[n_dims], u32 ggml type, u64 offset), then padding to `general.alignment` (default 32) and the data
 * section; each tensor offset is relative to the data section and a multiple of the alignment. A string is
 * a u64 byte length and the bytes (no NUL). An array is a u32 element type, a u64 count and the elements.
 *
 * The reader checks everything against the file size before it believes it (counts, lengths, offsets,
 * shapes; with overflow-safe arithmetic), so a truncated, corrupt or hostile file gives SHOAL_ERR_FORMAT
 * with a message naming the file, the byte offset and the problem. After lgguf_open succeeds, every
 * pointer it hands out lies inside the mapping and every tensor's bytes lie inside the data section and
 * overlap no other tensor. All strings point into the file and are NOT NUL-terminated: use the length.
 */
#ifndef LGGUF_H
#define LGGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal.h"

#define LGGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define LGGUF_VERSION 3u
#define LGGUF_DEFAULT_ALIGNMENT 32u
#define LGGUF_MAX_DIMS 4         /* ggml's GGML_MAX_DIMS */
#define LGGUF_MAX_NAME 63        /* longest tensor name llama.cpp accepts (GGML_MAX_NAME - 1) */
#define LGGUF_MAX_ARRAY_DEPTH 8  /* nested arrays deeper than this are refused (stack bound) */

typedef enum lgguf_vtype {
    LGGUF_U8 = 0,
    LGGUF_I8 = 1,
    LGGUF_U16 = 2,
    LGGUF_I16 = 3,
    LGGUF_U32 = 4,
    LGGUF_I32 = 5,
    LGGUF_F32 = 6,
    LGGUF_BOOL = 7,
    LGGUF_STR = 8,
    LGGUF_ARR = 9,
    LGGUF_U64 = 10,
    LGGUF_I64 = 11,
    LGGUF_F64 = 12,
    LGGUF_VTYPE_COUNT
} lgguf_vtype;

/* ggml tensor types. Values are the ids stored in the file. Gaps are ids ggml has retired. */
typedef enum lgguf_ttype {
    LGGUF_T_F32 = 0,
    LGGUF_T_F16 = 1,
    LGGUF_T_Q4_0 = 2,
    LGGUF_T_Q4_1 = 3,
    LGGUF_T_Q5_0 = 6,
    LGGUF_T_Q5_1 = 7,
    LGGUF_T_Q8_0 = 8,
    LGGUF_T_Q8_1 = 9,
    LGGUF_T_Q2_K = 10,
    LGGUF_T_Q3_K = 11,
    LGGUF_T_Q4_K = 12,
    LGGUF_T_Q5_K = 13,
    LGGUF_T_Q6_K = 14,
    LGGUF_T_Q8_K = 15,
    LGGUF_T_IQ2_XXS = 16,
    LGGUF_T_IQ2_XS = 17,
    LGGUF_T_IQ3_XXS = 18,
    LGGUF_T_IQ1_S = 19,
    LGGUF_T_IQ4_NL = 20,
    LGGUF_T_IQ3_S = 21,
    LGGUF_T_IQ2_S = 22,
    LGGUF_T_IQ4_XS = 23,
    LGGUF_T_I8 = 24,
    LGGUF_T_I16 = 25,
    LGGUF_T_I32 = 26,
    LGGUF_T_I64 = 27,
    LGGUF_T_F64 = 28,
    LGGUF_T_IQ1_M = 29,
    LGGUF_T_BF16 = 30,
    LGGUF_T_TQ1_0 = 34,
    LGGUF_T_TQ2_0 = 35,
    LGGUF_T_MXFP4 = 39,
    LGGUF_T_COUNT = 40
} lgguf_ttype;

/* Name ("F32", "Q8_0", ...) of a ggml type, or NULL when the id is not one ggml defines. */
const char *lgguf_ttype_name(uint32_t type);
/* Elements per block and bytes per block of a ggml type; false when the id is unknown. */
bool lgguf_ttype_block(uint32_t type, uint32_t *block_elems, uint32_t *block_bytes);
/* The ggml type named `name` (case-insensitive: "q8_0", "F16"); false when there is none. */
bool lgguf_ttype_from_name(const char *name, uint32_t *out);
const char *lgguf_vtype_name(uint32_t vtype);

typedef struct lgguf_str {
    const char *ptr; /* into the file; not NUL-terminated */
    uint64_t len;
} lgguf_str;

typedef struct lgguf_value lgguf_value;
struct lgguf_value {
    lgguf_vtype type;
    union {
        uint64_t u;   /* U8, U16, U32, U64 */
        int64_t i;    /* I8, I16, I32, I64 */
        double f;     /* F32, F64 */
        bool b;       /* BOOL */
        lgguf_str s;  /* STR */
        struct {
            lgguf_vtype type; /* element type */
            uint64_t n;
            /* Elements of a fixed-size type: n little-endian values, unaligned (read with lgguf_arr_*). */
            const uint8_t *raw;
            /* Elements of type STR or ARR: n parsed values (owned by the lgguf). NULL otherwise. */
            const lgguf_value *items;
        } arr; /* ARR */
    };
};

typedef struct lgguf_kv {
    lgguf_str key;
    lgguf_value val;
} lgguf_kv;

typedef struct lgguf_tensor {
    lgguf_str name;
    uint32_t n_dims;              /* 1..LGGUF_MAX_DIMS */
    uint64_t ne[LGGUF_MAX_DIMS];  /* ne[0] is the contiguous dimension (row length); unused dims are 1 */
    uint32_t type;                /* lgguf_ttype */
    uint64_t offset;              /* from the start of the data section */
    uint64_t nbytes;
    uint64_t n_elems;
    const void *data;             /* into the mapping */
} lgguf_tensor;

typedef struct lgguf {
    char *path;             /* for messages */
    const uint8_t *base;    /* the whole file */
    size_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;   /* file offset of the data section (== size when there are no tensors) */
    uint64_t n_kv;
    lgguf_kv *kv;           /* in file order */
    uint64_t n_tensors;
    lgguf_tensor *tensors;  /* in file order */
    /* private */
    bool mapped;
    lgguf_kv **kv_by_key;             /* kv sorted by key, for lookup */
    lgguf_tensor **tensor_by_name;    /* tensors sorted by name */
} lgguf;

/* Maps and parses a GGUF file. On failure *out is NULL and err says why (SHOAL_ERR_IO / _FORMAT / _NOMEM). */
shoal_status lgguf_open(const char *path, lgguf **out, shoal_error *err);
/* Parses a GGUF image in memory (not copied: it must outlive the lgguf). `name` is used in messages. */
shoal_status lgguf_open_mem(const void *bytes, size_t size, const char *name, lgguf **out, shoal_error *err);
void lgguf_close(lgguf *g);

/* Metadata lookup by key (NUL-terminated); NULL when absent. */
const lgguf_value *lgguf_get(const lgguf *g, const char *key);
const lgguf_tensor *lgguf_tensor_find(const lgguf *g, const char *name);

/* Scalar conversions: false when the value's type does not fit (integers: any integer type whose value
 * is in range; floats: F32 or F64; strings: STR). */
bool lgguf_value_u64(const lgguf_value *v, uint64_t *out);
bool lgguf_value_i64(const lgguf_value *v, int64_t *out);
bool lgguf_value_f64(const lgguf_value *v, double *out);
/* Array element i (i < arr.n) of an array of a fixed-size numeric type, converted as above. */
bool lgguf_arr_u64(const lgguf_value *arr, uint64_t i, uint64_t *out);
bool lgguf_arr_i64(const lgguf_value *arr, uint64_t i, int64_t *out);
bool lgguf_arr_f64(const lgguf_value *arr, uint64_t i, double *out);
bool lgguf_str_eq(lgguf_str s, const char *cstr);

/* Typed getters with messages for loaders. The req_ forms fail with SHOAL_ERR_FORMAT ("FILE: metadata
 * key 'K' is missing" / "... has type T, expected ...") when the key is absent or of the wrong type; the
 * opt_ forms set *out = def when it is absent and fail only on a wrong type or range. */
shoal_status lgguf_req_u32(const lgguf *g, const char *key, uint32_t *out, shoal_error *err);
shoal_status lgguf_opt_u32(const lgguf *g, const char *key, uint32_t def, uint32_t *out, shoal_error *err);
shoal_status lgguf_req_f32(const lgguf *g, const char *key, float *out, shoal_error *err);
shoal_status lgguf_opt_f32(const lgguf *g, const char *key, float def, float *out, shoal_error *err);
shoal_status lgguf_opt_i32(const lgguf *g, const char *key, int32_t def, int32_t *out, shoal_error *err);
shoal_status lgguf_opt_bool(const lgguf *g, const char *key, bool def, bool *out, shoal_error *err);
shoal_status lgguf_req_str(const lgguf *g, const char *key, lgguf_str *out, shoal_error *err);
/* An array whose elements have type `elem` (LGGUF_VTYPE_COUNT: any); *out NULL when optional and absent. */
shoal_status lgguf_req_arr(const lgguf *g, const char *key, lgguf_vtype elem, const lgguf_value **out,
                           shoal_error *err);
shoal_status lgguf_opt_arr(const lgguf *g, const char *key, lgguf_vtype elem, const lgguf_value **out,
                           shoal_error *err);

/* ------------------------------------------------------------------------------------------------ */
/* Writer: collects metadata and tensors, then writes a GGUF v3 file in one pass.                    */
/* ------------------------------------------------------------------------------------------------ */

typedef struct lgguf_writer lgguf_writer;

/* Produces the bytes of a tensor when the writer reaches it, so a large model need not be held in memory:
 * fill buf[0..nbytes) with the tensor's bytes starting at byte `offset` and return SHOAL_OK. The writer asks
 * in chunks of whole rows (offset and nbytes are multiples of the row size, ne[0] elements). */
typedef shoal_status (*lgguf_fill_fn)(void *user, uint64_t index, uint64_t offset, void *buf, uint64_t nbytes,
                                      shoal_error *err);
/* Called after each tensor is written (progress display); may be NULL. */
typedef void (*lgguf_progress_fn)(void *user, uint64_t done_bytes, uint64_t total_bytes);

lgguf_writer *lgguf_writer_new(void);
void lgguf_writer_free(lgguf_writer *w);

/* Metadata, in the order added. A key may be added once (SHOAL_ERR_ARG otherwise). */
shoal_status lgguf_w_u32(lgguf_writer *w, const char *key, uint32_t v, shoal_error *err);
shoal_status lgguf_w_i32(lgguf_writer *w, const char *key, int32_t v, shoal_error *err);
shoal_status lgguf_w_u64(lgguf_writer *w, const char *key, uint64_t v, shoal_error *err);
shoal_status lgguf_w_f32(lgguf_writer *w, const char *key, float v, shoal_error *err);
shoal_status lgguf_w_bool(lgguf_writer *w, const char *key, bool v, shoal_error *err);
shoal_status lgguf_w_str(lgguf_writer *w, const char *key, const char *s, size_t len, shoal_error *err);
/* Array of a fixed-size element type: n elements in host order (converted to little-endian). */
shoal_status lgguf_w_arr(lgguf_writer *w, const char *key, lgguf_vtype elem, uint64_t n, const void *elems,
                         shoal_error *err);
shoal_status lgguf_w_arr_str(lgguf_writer *w, const char *key, uint64_t n, const char *const *strs,
                             const uint32_t *lens, shoal_error *err);
/* Copies any metadata value read by lgguf (nested arrays included) under `key`. */
shoal_status lgguf_w_value(lgguf_writer *w, const char *key, const lgguf_value *v, shoal_error *err);
/* Sets general.alignment (a power of two; default 32) and writes it as metadata. */
shoal_status lgguf_w_alignment(lgguf_writer *w, uint32_t alignment, shoal_error *err);

/* Tensors, in the order added. `data` (nbytes of the given type and shape) is borrowed until
 * lgguf_writer_write returns; with fill != NULL, data is ignored and fill(user, index, ...) produces the
 * bytes, where index counts tensors from 0 in the order added. */
shoal_status lgguf_w_tensor(lgguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const uint64_t *ne, const void *data, lgguf_fill_fn fill, void *user,
                            shoal_error *err);
uint64_t lgguf_writer_tensor_count(const lgguf_writer *w);

/* Writes the file (to PATH.tmp, renamed to PATH on success; removed on failure). */
shoal_status lgguf_writer_write(lgguf_writer *w, const char *path, lgguf_progress_fn progress, void *puser,
                                shoal_error *err);

/* Bytes of a tensor of this type and shape; false when the type is unknown, ne[0] is not a multiple of
 * its block size, or the size overflows. */
bool lgguf_tensor_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t *nbytes);

#endif
