/*
 * shoal_guest.h: the guest SDK. C guests built with `clang --target=wasm32-wasi` include this header to
 * call Shoal's host modules. Every pointer a guest passes is an address in its own linear memory; the host
 * checks every offset, length and shape against the memory's current size and answers a bad call with an
 * error code, never by touching memory outside the guest.
 *
 * Modules:
 *   shoal_tensor   tensors as views into the guest's own memory, computed on in place by the device the
 *                  runtime was started with (`shoal run --device cpu|cuda --memory host|mapped|unified`)
 *   wasi_ephemeral_nn  WASI-NN as WasmEdge's GGML backend (LlamaEdge) uses it, on models preloaded with
 *                  `shoal run --nn-preload NAME:GGML:AUTO:PATH`
 *   shoal_llm      Shoal's own session API: tokenize, prefill, decode with logits in guest memory, sample
 */
#ifndef SHOAL_GUEST_H
#define SHOAL_GUEST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__wasm__)
#define SHOAL_IMPORT(module, name) __attribute__((import_module(module), import_name(name)))
#else
#define SHOAL_IMPORT(module, name)
#endif

/* ------------------------------------------------------------------------------------------------ */
/* shoal_tensor                                                                                       */
/* ------------------------------------------------------------------------------------------------ */
/*
 * A tensor is a view: (offset of its first byte in guest memory, dtype, shape), row-major, contiguous.
 * shoal_tensor_view() checks the view against the memory and returns a handle (> 0); operations name
 * handles. Bytes are never copied out of guest memory unless the guest asks for it with `keep`.
 *
 * Timing contract: operations may run asynchronously on the device. After an operation returns, the
 * guest must not read its output or write its inputs until shoal_tensor_sync() returns. (On the CPU
 * device every operation completes before it returns; sync is cheap.)
 *
 * Residency contract (keep/update/release): a view marked with shoal_tensor_keep() has its bytes copied
 * once into device memory; from then on operations READ that device copy, not guest memory. If the guest
 * changes the bytes of a kept view it must call shoal_tensor_update() (copies them again) before the next
 * operation that reads it, or operations will see the old values. An operation that WRITES a kept view
 * writes both the guest bytes and the device copy. shoal_tensor_release() drops the device copy (the
 * handle stays valid); shoal_tensor_free() drops the handle (and any device copy). On the CPU device
 * keep/update/release succeed and change nothing: the guest's memory is the device's memory.
 *
 * Dtypes: F32, F16 (IEEE half), BF16. Shapes: 1 to 4 dimensions, each >= 1; the product must fit the
 * memory. Return values: >= 0 on success, a negative SHOAL_TENSOR_E* code on failure;
 * shoal_tensor_last_error() copies a message describing the last failure.
 */
enum {
    SHOAL_TENSOR_F32 = 0,
    SHOAL_TENSOR_F16 = 1,
    SHOAL_TENSOR_BF16 = 2,
};

enum {
    SHOAL_TENSOR_EINVAL = -1,   /* a bad argument: dtype, ndim, zero dimension, ... */
    SHOAL_TENSOR_EBOUNDS = -2,  /* the view (or a pointer argument) lies outside guest memory */
    SHOAL_TENSOR_ESHAPE = -3,   /* shapes or dtypes do not fit the operation */
    SHOAL_TENSOR_EHANDLE = -4,  /* not a live handle */
    SHOAL_TENSOR_ENOMEM = -5,   /* out of host or device memory, or too many handles */
    SHOAL_TENSOR_EDEVICE = -6,  /* the device failed; the message says how */
};

/* Views and residency */
SHOAL_IMPORT("shoal_tensor", "view")
int32_t shoal_tensor_view(uint32_t offset, int32_t dtype, int32_t ndim, const uint32_t *dims);
SHOAL_IMPORT("shoal_tensor", "free")
int32_t shoal_tensor_free(int32_t t);
SHOAL_IMPORT("shoal_tensor", "keep")
int32_t shoal_tensor_keep(int32_t t);
SHOAL_IMPORT("shoal_tensor", "update")
int32_t shoal_tensor_update(int32_t t);
SHOAL_IMPORT("shoal_tensor", "release")
int32_t shoal_tensor_release(int32_t t);
SHOAL_IMPORT("shoal_tensor", "sync")
int32_t shoal_tensor_sync(void);

/* Operations. out may alias an input only for the elementwise ones (add, mul, scale, silu, rope). */
/* out[M,N] = a[M,K] @ b[K,N]; a and b of one dtype; out of any dtype; accumulation in f32. Batched when
 * the views have a leading batch dimension of equal size (3-D). */
SHOAL_IMPORT("shoal_tensor", "matmul")
int32_t shoal_tensor_matmul(int32_t out, int32_t a, int32_t b);
/* out = a + b, out = a * b elementwise; b may also have the shape of a's last dimension (broadcast). */
SHOAL_IMPORT("shoal_tensor", "add")
int32_t shoal_tensor_add(int32_t out, int32_t a, int32_t b);
SHOAL_IMPORT("shoal_tensor", "mul")
int32_t shoal_tensor_mul(int32_t out, int32_t a, int32_t b);
/* out = a * s */
SHOAL_IMPORT("shoal_tensor", "scale")
int32_t shoal_tensor_scale(int32_t out, int32_t a, float s);
/* softmax over the last dimension */
SHOAL_IMPORT("shoal_tensor", "softmax")
int32_t shoal_tensor_softmax(int32_t out, int32_t a);
/* out = a / sqrt(mean(a^2) + eps) * weight, over the last dimension; weight has the last dimension's size */
SHOAL_IMPORT("shoal_tensor", "rmsnorm")
int32_t shoal_tensor_rmsnorm(int32_t out, int32_t a, int32_t weight, float eps);
/* Rotary position embedding on a[..., T, H, D] (or [T, D]), rotating interleaved pairs (2i, 2i+1) by
 * angle pos * theta^(-2i/D), pos = pos0 + t. */
SHOAL_IMPORT("shoal_tensor", "rope")
int32_t shoal_tensor_rope(int32_t out, int32_t a, int32_t pos0, float theta);
/* out = a * sigmoid(a) */
SHOAL_IMPORT("shoal_tensor", "silu")
int32_t shoal_tensor_silu(int32_t out, int32_t a);

/* Describes the device and memory mode ("cuda/mapped", "cpu/host", ...) into buf; returns the length. */
SHOAL_IMPORT("shoal_tensor", "device_name")
int32_t shoal_tensor_device_name(char *buf, uint32_t cap);
/* The message of the last failure (NUL-terminated, truncated to cap); returns its full length. */
SHOAL_IMPORT("shoal_tensor", "last_error")
int32_t shoal_tensor_last_error(char *buf, uint32_t cap);

/* ------------------------------------------------------------------------------------------------ */
/* wasi_ephemeral_nn                                                                                  */
/* ------------------------------------------------------------------------------------------------ */
/*
 * The ABI of WasmEdge's wasi_ephemeral_nn with its GGML backend. Every function returns an errno
 * (WASI_NN_*) and writes its result through the last pointer. Typical use (see examples/llama-simple):
 *
 *   load_by_name("default", 7, &graph);  init_execution_context(graph, &ctx);
 *   set_input(ctx, 1, &json_options);    set_input(ctx, 0, &prompt);      (u8 tensors: the bytes)
 *   compute(ctx);                        get_output(ctx, 0, buf, cap, &n) (the text)
 *   or, streaming: while (compute_single(ctx) == 0) get_output_single(ctx, 0, buf, cap, &n); fini_single(ctx);
 *
 * Input 0: the UTF-8 prompt (tokenized at set_input; control tokens written in it count; BOS first unless
 * it starts with it). Input 1: JSON options: ctx-size, n-predict, n-gpu-layers, temp, top-p, top-k, min-p,
 * repeat-penalty, repeat-last-n, seed, reverse-prompt, stream-stdout, enable-log (unknown keys ignored);
 * load_by_name_with_config takes the same JSON as the defaults of the graph's contexts. Output 0: the text
 * generated (for get_output_single: the last token's piece). Output 1: JSON counters, valid right after
 * set_input: input_tokens, output_tokens, reused_tokens (prompt tokens whose KV was kept from the previous
 * request in this context: only the rest is prefilled), prefilled_tokens, context_size, position, model.
 * A capacity of 0 in get_output means "up to the end of linear memory" (LlamaEdge passes 0).
 */
typedef struct wasi_nn_tensor { /* 20 bytes */
    const uint32_t *dims;
    uint32_t ndims;
    uint8_t type; /* WASI_NN_TYPE_*; the GGML backend reads the data as bytes whatever the type */
    uint8_t pad_[3];
    const void *data;
    uint32_t len;
} wasi_nn_tensor;

#if defined(__wasm32__)
_Static_assert(sizeof(wasi_nn_tensor) == 20, "the tensor record is 20 bytes");
#endif

enum {
    WASI_NN_SUCCESS = 0,
    WASI_NN_EINVAL = 1,           /* bad argument, handle, pointer or length */
    WASI_NN_EENCODING = 2,        /* encoding is not GGML; options are not JSON */
    WASI_NN_EMISSING_MEMORY = 3,  /* the guest exports no memory */
    WASI_NN_EBUSY = 4,            /* too many graphs or contexts */
    WASI_NN_ERUNTIME = 5,         /* the engine failed (message with enable-log) */
    WASI_NN_EUNSUPPORTED = 6,     /* load() with model bytes: Shoal only serves preloaded models */
    WASI_NN_ETOO_LARGE = 7,       /* the output does not fit the buffer (*written: the size needed) */
    WASI_NN_ENOT_FOUND = 8,       /* no model of that name was preloaded */
    WASI_NN_END_OF_SEQUENCE = 100,
    WASI_NN_CONTEXT_FULL = 101,
    WASI_NN_PROMPT_TOO_LONG = 102,
    WASI_NN_MODEL_NOT_FOUND = 103, /* preloaded, but its path does not exist */
};
enum { WASI_NN_ENCODING_GGML = 6, WASI_NN_ENCODING_GGML_WAMR = 5 };
enum { WASI_NN_TARGET_CPU = 0, WASI_NN_TARGET_GPU = 1, WASI_NN_TARGET_TPU = 2, WASI_NN_TARGET_AUTO = 3 };
enum { WASI_NN_TYPE_F16 = 0, WASI_NN_TYPE_F32 = 1, WASI_NN_TYPE_F64 = 2, WASI_NN_TYPE_U8 = 3, WASI_NN_TYPE_I32 = 4,
       WASI_NN_TYPE_I64 = 5 };

/* builders: n pairs (ptr, len); builder 0 names a preloaded model ("NAME" or "preload:NAME"). */
SHOAL_IMPORT("wasi_ephemeral_nn", "load")
int32_t wasi_nn_load(const void *builders, uint32_t n, uint32_t encoding, uint32_t target, uint32_t *graph);
SHOAL_IMPORT("wasi_ephemeral_nn", "load_by_name")
int32_t wasi_nn_load_by_name(const char *name, uint32_t len, uint32_t *graph);
SHOAL_IMPORT("wasi_ephemeral_nn", "load_by_name_with_config")
int32_t wasi_nn_load_by_name_with_config(const char *name, uint32_t len, const char *json, uint32_t json_len,
                                         uint32_t *graph);
SHOAL_IMPORT("wasi_ephemeral_nn", "init_execution_context")
int32_t wasi_nn_init_execution_context(uint32_t graph, uint32_t *ctx);
SHOAL_IMPORT("wasi_ephemeral_nn", "set_input")
int32_t wasi_nn_set_input(uint32_t ctx, uint32_t index, const wasi_nn_tensor *tensor);
SHOAL_IMPORT("wasi_ephemeral_nn", "compute")
int32_t wasi_nn_compute(uint32_t ctx);
SHOAL_IMPORT("wasi_ephemeral_nn", "get_output")
int32_t wasi_nn_get_output(uint32_t ctx, uint32_t index, void *buf, uint32_t cap, uint32_t *written);
SHOAL_IMPORT("wasi_ephemeral_nn", "compute_single")
int32_t wasi_nn_compute_single(uint32_t ctx);
SHOAL_IMPORT("wasi_ephemeral_nn", "get_output_single")
int32_t wasi_nn_get_output_single(uint32_t ctx, uint32_t index, void *buf, uint32_t cap, uint32_t *written);
SHOAL_IMPORT("wasi_ephemeral_nn", "fini_single")
int32_t wasi_nn_fini_single(uint32_t ctx);
SHOAL_IMPORT("wasi_ephemeral_nn", "unload")
int32_t wasi_nn_unload(uint32_t graph);
SHOAL_IMPORT("wasi_ephemeral_nn", "finalize_execution_context")
int32_t wasi_nn_finalize_execution_context(uint32_t ctx);

/* ------------------------------------------------------------------------------------------------ */
/* shoal_llm                                                                                          */
/* ------------------------------------------------------------------------------------------------ */
/*
 * A session: a private KV cache on a preloaded model. Returns: >= 0 on success, a negative SHOAL_LLM_E*
 * code on failure (shoal_llm_last_error() copies the message). The host keeps the session's token history
 * (what its KV holds), which the sampler's repetition penalty uses.
 *
 * Two ways to generate:
 *   host sampling:  prefill(ids, n, 0, 0); id = sample(); then step(id, &id) per token (one call each)
 *   guest sampling: prefill(ids, n, logits, vocab); decode(id, logits, vocab) writes the f32 logits of the
 *                   next token straight into the guest's buffer; the guest picks the token itself.
 */
enum {
    SHOAL_LLM_EINVAL = -1,   /* bad argument */
    SHOAL_LLM_EBOUNDS = -2,  /* a pointer/length lies outside guest memory, or is misaligned */
    SHOAL_LLM_EHANDLE = -3,  /* not an open session */
    SHOAL_LLM_ENOTFOUND = -4,/* no preloaded model of that name (or its file is missing) */
    SHOAL_LLM_ENOMEM = -5,   /* out of memory, or too many sessions */
    SHOAL_LLM_EFULL = -6,    /* the context is full */
    SHOAL_LLM_ETOKEN = -7,   /* a token id outside the vocabulary */
    SHOAL_LLM_EDEVICE = -8,  /* the device failed */
    SHOAL_LLM_ENOTOK = -9,   /* the model has no tokenizer */
    SHOAL_LLM_ESTATE = -10,  /* sample() without fresh host-side logits */
    SHOAL_LLM_EIO = -11,     /* save/restore: the file cannot be opened, read or written (or is outside the
                                guest's directories) */
    SHOAL_LLM_ESNAPSHOT = -12, /* restore: a snapshot of another model, KV type or shape, too long for the
                                  session's context, truncated or corrupt; the session is unchanged */
};
enum { SHOAL_LLM_ADD_BOS = 1, SHOAL_LLM_PARSE_SPECIAL = 2 };

typedef struct shoal_llm_info { /* info() */
    int32_t vocab_size, n_ctx, bos_id, eos_id, dim, n_layers, n_heads, model_seq_len;
} shoal_llm_info;

typedef struct shoal_llm_sampler { /* set_sampler(); 8-byte aligned */
    float temperature;     /* <= 0: greedy */
    int32_t top_k;         /* <= 0: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off */
    float repeat_penalty;  /* 1: off */
    int32_t repeat_last_n; /* 0: off, -1: all history */
    uint64_t seed;
} shoal_llm_sampler;

typedef struct shoal_llm_usage { /* usage() */
    uint64_t prompt_tokens;  /* tokens prefilled */
    uint64_t decoded_tokens; /* tokens run by decode/step */
    uint64_t reused_tokens;  /* (wasi_ephemeral_nn contexts only) prompt tokens kept in the KV cache */
    uint64_t position, n_ctx;
    uint64_t forward_ns;     /* time in forward passes */
} shoal_llm_usage;

/* Opens a session on a preloaded model; n_ctx 0 = the model's (larger is clamped). Returns a handle > 0. */
SHOAL_IMPORT("shoal_llm", "open")
int32_t shoal_llm_open(const char *name, uint32_t len, uint32_t n_ctx);
SHOAL_IMPORT("shoal_llm", "close")
int32_t shoal_llm_close(int32_t h);
SHOAL_IMPORT("shoal_llm", "info")
int32_t shoal_llm_info_get(int32_t h, shoal_llm_info *out);
/* Returns the token count; ids are written only when they all fit in max_ids (pass 0 to measure). */
SHOAL_IMPORT("shoal_llm", "tokenize")
int32_t shoal_llm_tokenize(int32_t h, const char *text, uint32_t len, uint32_t flags, int32_t *ids, uint32_t max_ids);
/* The text of id following prev (-1 at the start); returns its full length, writing at most cap bytes. */
SHOAL_IMPORT("shoal_llm", "detokenize")
int32_t shoal_llm_detokenize(int32_t h, int32_t prev, int32_t id, char *buf, uint32_t cap);
SHOAL_IMPORT("shoal_llm", "is_eog")
int32_t shoal_llm_is_eog(int32_t h, int32_t id);
/* Runs n ids at the current position. logits (or NULL): vocab_size floats written after the last. */
SHOAL_IMPORT("shoal_llm", "prefill")
int32_t shoal_llm_prefill(int32_t h, const int32_t *ids, uint32_t n, float *logits, uint32_t cap);
SHOAL_IMPORT("shoal_llm", "decode")
int32_t shoal_llm_decode(int32_t h, int32_t id, float *logits, uint32_t cap);
/* Samples from the last prefill/decode run without a logits buffer; returns the id. */
SHOAL_IMPORT("shoal_llm", "sample")
int32_t shoal_llm_sample(int32_t h);
/* decode(id) + sample(): the next id is written to *next. */
SHOAL_IMPORT("shoal_llm", "step")
int32_t shoal_llm_step(int32_t h, int32_t id, int32_t *next);
SHOAL_IMPORT("shoal_llm", "set_sampler")
int32_t shoal_llm_set_sampler(int32_t h, const shoal_llm_sampler *params);
SHOAL_IMPORT("shoal_llm", "position")
int32_t shoal_llm_position(int32_t h);
/* Keeps the first n positions (n <= position): reuse a shared prefix, drop the rest. */
SHOAL_IMPORT("shoal_llm", "rewind")
int32_t shoal_llm_rewind(int32_t h, int32_t n);
SHOAL_IMPORT("shoal_llm", "usage")
int32_t shoal_llm_usage_get(int32_t h, shoal_llm_usage *out);
/* Snapshots: the session's KV cache, tokens, sampler (parameters and generator state) and fresh logits, to
 * a safetensors file at path inside the directory dirfd (a preopen, e.g. 3, or a directory opened beneath
 * one), resolved as path_open does; written crash-safe (temporary file, fsync, rename). save returns 0;
 * restore returns the restored position, and the session continues exactly as the saved one would. */
SHOAL_IMPORT("shoal_llm", "save")
int32_t shoal_llm_save(int32_t h, int32_t dirfd, const char *path, uint32_t len);
SHOAL_IMPORT("shoal_llm", "restore")
int32_t shoal_llm_restore(int32_t h, int32_t dirfd, const char *path, uint32_t len);
/* The message of the last failure of either module (NUL-terminated, truncated to cap); its full length. */
SHOAL_IMPORT("shoal_llm", "last_error")
int32_t shoal_llm_last_error(char *buf, uint32_t cap);

/* ------------------------------------------------------------------------------------------------ */
/* shoal_actor: freezing the whole guest                                                              */
/* ------------------------------------------------------------------------------------------------ */
/*
 * shoal_actor_checkpoint() writes the whole guest (memory, call stack, WASI state, open files, inference
 * sessions with their KV caches) to the actor file given by `shoal run --snapshot-on-exit FILE` (or the
 * file it was resumed from) and returns 0: the guest goes on. When the actor is later continued with
 * `shoal resume FILE`, possibly on another machine or device, the same call returns 1 there, as if it had
 * just returned. A guest that wants to stop after saving returns or exits when it gets 0. Errors (< 0):
 * SHOAL_ACTOR_ENOFILE (no file configured), SHOAL_ACTOR_EUNSUPPORTED (state that cannot be carried, e.g.
 * live shoal_tensor handles), SHOAL_ACTOR_EIO; shoal_actor_last_error() says more.
 */
enum { SHOAL_ACTOR_WRITTEN = 0, SHOAL_ACTOR_RESUMED = 1, SHOAL_ACTOR_ENOFILE = -1, SHOAL_ACTOR_EUNSUPPORTED = -2,
       SHOAL_ACTOR_EIO = -3 };

SHOAL_IMPORT("shoal_actor", "checkpoint")
int32_t shoal_actor_checkpoint(void);
/* The message of the last failed checkpoint; returns its length, copies at most cap bytes (no NUL). */
SHOAL_IMPORT("shoal_actor", "last_error")
int32_t shoal_actor_last_error(char *buf, uint32_t cap);

#ifdef __cplusplus
}
#endif
#endif /* SHOAL_GUEST_H */
