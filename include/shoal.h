/*
 * shoal.h: the public embedding API of Shoal, a WebAssembly runtime for sandboxed AI inference.
 *
 * One header for everything an embedder touches:
 *   1. values, errors and traps
 *   2. modules: load, validate, inspect
 *   3. imports and host functions (with checked access to the caller's memory)
 *   4. instances: instantiate, call exports, memory, globals, limits
 *   5. memory providers: who owns the bytes of a linear memory (the zero-copy hook)
 *   6. WASI preview1
 *   7. the inference engine (models, sessions, tokenizers, samplers, backends)
 *
 * Conventions: functions that can fail return shoal_status (SHOAL_OK == 0) and, when the caller passes a
 * non-NULL shoal_error, fill it with a human-readable message. The library never calls exit() or abort()
 * on bad input. Objects are single-threaded unless said otherwise.
 */
#ifndef SHOAL_H
#define SHOAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------ */
/* 1. Values, errors, traps                                                                          */
/* ------------------------------------------------------------------------------------------------ */

typedef enum shoal_valtype {
    SHOAL_I32 = 0x7f,
    SHOAL_I64 = 0x7e,
    SHOAL_F32 = 0x7d,
    SHOAL_F64 = 0x7c,
    SHOAL_V128 = 0x7b, /* not supported yet: modules using it are rejected */
    SHOAL_FUNCREF = 0x70,
    SHOAL_EXTERNREF = 0x6f,
} shoal_valtype;

/* One Wasm value. Floats travel as bit patterns so NaN payloads survive. References are pointers;
 * NULL is the null reference. A funcref points at an engine-internal function object. */
typedef union shoal_val {
    int32_t i32;
    int64_t i64;
    uint32_t f32_bits;
    uint64_t f64_bits;
    float f32;
    double f64;
    void *ref;
} shoal_val;

typedef enum shoal_status {
    SHOAL_OK = 0,
    SHOAL_ERR_MALFORMED,   /* the bytes are not a well-formed Wasm binary */
    SHOAL_ERR_INVALID,     /* well-formed but fails validation */
    SHOAL_ERR_UNSUPPORTED, /* a feature Shoal does not implement (e.g. SIMD) */
    SHOAL_ERR_UNLINKABLE,  /* an import is missing or has the wrong type */
    SHOAL_ERR_TRAP,        /* execution trapped; shoal_error.trap says why */
    SHOAL_ERR_EXIT,        /* the guest called proc_exit; shoal_error.exit_code holds the code */
    SHOAL_ERR_NOMEM,
    SHOAL_ERR_IO,
    SHOAL_ERR_ARG,      /* the embedder passed a bad argument (unknown export, wrong arity, ...) */
    SHOAL_ERR_NOTFOUND, /* a named thing does not exist */
    SHOAL_ERR_FORMAT,   /* a data file (model, snapshot, ...) is corrupt or of the wrong kind */
    SHOAL_ERR_DEVICE,   /* a compute device failed or is absent */
} shoal_status;

typedef enum shoal_trap {
    SHOAL_TRAP_NONE = 0,
    SHOAL_TRAP_UNREACHABLE,           /* "unreachable" */
    SHOAL_TRAP_INT_DIV_ZERO,          /* "integer divide by zero" */
    SHOAL_TRAP_INT_OVERFLOW,          /* "integer overflow" */
    SHOAL_TRAP_INVALID_CONVERSION,    /* "invalid conversion to integer" */
    SHOAL_TRAP_MEMORY_OOB,            /* "out of bounds memory access" */
    SHOAL_TRAP_TABLE_OOB,             /* "out of bounds table access" */
    SHOAL_TRAP_UNDEFINED_ELEMENT,     /* "undefined element" (call_indirect index past the table) */
    SHOAL_TRAP_UNINITIALIZED_ELEMENT, /* "uninitialized element" (call_indirect through null) */
    SHOAL_TRAP_INDIRECT_TYPE,         /* "indirect call type mismatch" */
    SHOAL_TRAP_NULL_REFERENCE,        /* "null reference" */
    SHOAL_TRAP_STACK_EXHAUSTED,       /* "call stack exhausted" */
    SHOAL_TRAP_FUEL_EXHAUSTED,        /* "fuel exhausted" */
    SHOAL_TRAP_INTERRUPTED,           /* "interrupted" (timeout or shoal_instance_interrupt) */
    SHOAL_TRAP_HOST,                  /* a host function trapped; the message says why */
    SHOAL_TRAP_COUNT
} shoal_trap;

#define SHOAL_NO_FUNC 0xffffffffu

typedef struct shoal_error {
    shoal_status status;
    shoal_trap trap;      /* when status == SHOAL_ERR_TRAP */
    int32_t exit_code;    /* when status == SHOAL_ERR_EXIT */
    uint32_t func_index;  /* function that trapped, or SHOAL_NO_FUNC */
    uint32_t code_offset; /* byte offset in the module of the trapping instruction */
    char func_name[128];  /* from the name section (or "func[N]"); empty when unknown */
    char message[512];
} shoal_error;

/* The spec's wording for a trap ("integer divide by zero", ...). Never NULL. */
const char *shoal_trap_message(shoal_trap trap);
const char *shoal_status_name(shoal_status status);
/* Sets err (if non-NULL) and returns status; printf-style. For use by host code and subsystems. */
shoal_status shoal_error_set(shoal_error *err, shoal_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ------------------------------------------------------------------------------------------------ */
/* 2. Modules                                                                                        */
/* ------------------------------------------------------------------------------------------------ */

typedef struct shoal_module shoal_module;

/* Decodes, validates and translates a module. The bytes are copied; the caller may free them. A failure
 * returns SHOAL_ERR_MALFORMED / _INVALID / _UNSUPPORTED with a message naming section, offset and reason. */
shoal_status shoal_module_load(const uint8_t *bytes, size_t size, shoal_module **out, shoal_error *err);
shoal_status shoal_module_load_file(const char *path, shoal_module **out, shoal_error *err);
void shoal_module_free(shoal_module *module);
/* The module's binary as loaded (valid while the module lives). */
const uint8_t *shoal_module_bytes(const shoal_module *module, size_t *size);

typedef enum shoal_extern_kind {
    SHOAL_EXTERN_FUNC = 0,
    SHOAL_EXTERN_TABLE = 1,
    SHOAL_EXTERN_MEMORY = 2,
    SHOAL_EXTERN_GLOBAL = 3,
} shoal_extern_kind;

typedef struct shoal_functype {
    uint32_t nparams, nresults;
    const shoal_valtype *params;  /* valid as long as the module (or function) lives */
    const shoal_valtype *results;
} shoal_functype;

typedef struct shoal_extern_desc {
    const char *module; /* import's module name; NULL for exports. NUL-terminated copies. */
    const char *name;
    shoal_extern_kind kind;
    shoal_functype func;     /* kind == FUNC */
    shoal_valtype valtype;   /* kind == GLOBAL: value type; kind == TABLE: element type */
    bool mutable_global;     /* kind == GLOBAL */
    uint32_t min, max;       /* TABLE / MEMORY limits (memory in 64 KiB pages) */
    bool has_max;
} shoal_extern_desc;

uint32_t shoal_module_import_count(const shoal_module *module);
bool shoal_module_import(const shoal_module *module, uint32_t index, shoal_extern_desc *out);
uint32_t shoal_module_export_count(const shoal_module *module);
bool shoal_module_export(const shoal_module *module, uint32_t index, shoal_extern_desc *out);

/* ------------------------------------------------------------------------------------------------ */
/* 3. Imports and host functions                                                                     */
/* ------------------------------------------------------------------------------------------------ */

typedef struct shoal_instance shoal_instance;
typedef struct shoal_call shoal_call; /* the context of one host-function call */

/* A host function. args has nparams values, results room for nresults. Return SHOAL_OK, or the result
 * of shoal_call_trap() / shoal_call_exit() to stop the guest. */
typedef shoal_status (*shoal_host_fn)(shoal_call *call, const shoal_val *args, shoal_val *results,
                                      void *user);

/* The caller's memory 0, checked: returns a pointer to [offset, offset+len) or NULL when any byte of it
 * lies outside the memory's current size (overflow-safe; len 0 at offset == size is allowed). The pointer
 * stays valid until the guest runs again (memory never moves, but may be shrunk by nothing: Wasm memory
 * only grows). */
void *shoal_call_mem(shoal_call *call, uint32_t offset, uint32_t len);
/* The same for an array: count * elem_size bytes, with overflow checked, and `align` (power of two) on
 * the guest address (pass 1 for none). */
void *shoal_call_mem_array(shoal_call *call, uint32_t offset, uint32_t count, uint32_t elem_size,
                           uint32_t align);
/* Base and current size of the caller's memory 0 (NULL/0 when it has none). */
uint8_t *shoal_call_memory(shoal_call *call, uint64_t *size);
shoal_instance *shoal_call_instance(shoal_call *call);
/* Stop the guest with a trap (SHOAL_TRAP_HOST) and a message; returns SHOAL_ERR_TRAP. */
shoal_status shoal_call_trap(shoal_call *call, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Stop the guest as proc_exit does; the embedder sees SHOAL_ERR_EXIT with this code. */
shoal_status shoal_call_exit(shoal_call *call, int32_t code);

typedef struct shoal_imports shoal_imports;

shoal_imports *shoal_imports_new(void);
void shoal_imports_free(shoal_imports *imports);
/* Signature string: parameter letters, ':' , result letters. i=i32 I=i64 f=f32 F=f64 r=funcref e=externref.
 * Example: "ii:i" is (i32, i32) -> i32; ":" is () -> (); "I:" is (i64) -> (). */
shoal_status shoal_imports_add_func(shoal_imports *imports, const char *module, const char *name,
                                    const char *signature, shoal_host_fn fn, void *user, shoal_error *err);
/* Makes every export of `instance` importable under `module` (the spec's `register`). The instance must
 * outlive every instance linked against it. */
shoal_status shoal_imports_add_instance(shoal_imports *imports, const char *module, shoal_instance *instance,
                                        shoal_error *err);

/* ------------------------------------------------------------------------------------------------ */
/* 5. Memory providers (declared before instances, which take one)                                   */
/* ------------------------------------------------------------------------------------------------ */

/* A memory provider owns the bytes behind a linear memory. The engine asks for one reservation per memory
 * covering the whole wasm32 range plus a guard region, so the base never moves; it commits pages as the
 * memory grows. A compute backend wraps a provider to map the region into a device's address space at
 * creation and each time it grows (e.g. cudaHostRegister of each committed range): zero copies.
 * Invariants: reserve returns a page-aligned base, the first initial_bytes readable, writable and zeroed;
 * commit makes [old_bytes, new_bytes) readable, writable and zeroed without moving the base; release gets
 * the same base and the sizes last committed. */
typedef struct shoal_memory_provider {
    const char *name;
    void *user;
    void *(*reserve)(void *user, uint64_t reserve_bytes, uint64_t initial_bytes, shoal_error *err);
    shoal_status (*commit)(void *user, void *base, uint64_t old_bytes, uint64_t new_bytes, shoal_error *err);
    void (*release)(void *user, void *base, uint64_t committed_bytes, uint64_t reserve_bytes);
} shoal_memory_provider;

/* The default provider: mmap(PROT_NONE) reservation, mprotect to commit. */
const shoal_memory_provider *shoal_host_memory_provider(void);
/* Bytes the engine reserves for one 32-bit memory: 4 GiB plus the guard region. */
uint64_t shoal_memory_reserve_bytes(void);

/* ------------------------------------------------------------------------------------------------ */
/* 4. Instances                                                                                      */
/* ------------------------------------------------------------------------------------------------ */

typedef struct shoal_limits {
    uint64_t fuel;             /* instructions (roughly: translated operations); 0 = unlimited */
    uint32_t max_memory_pages; /* cap on every memory of the instance; 0 = 65536 (4 GiB) */
    uint32_t max_table_elems;  /* cap on table growth; 0 = 10,000,000 */
    uint32_t max_call_depth;   /* Wasm call depth; 0 = default (10,000) */
} shoal_limits;

typedef struct shoal_instance_config {
    shoal_limits limits;
    const shoal_memory_provider *memory_provider; /* NULL = shoal_host_memory_provider() */
    void *user;                                   /* returned by shoal_instance_user() */
    /* Optional observer of host calls (tracing, e.g. `shoal run --trace`): called before (leave false: vals
     * are the nvals arguments) and after (leave true: vals are the results, status the call's) every call
     * from Wasm into a host function of this instance. func_index is the import's function index in the
     * module. NULL = none; the interpreter's own loop is untouched either way. */
    void (*host_call_hook)(void *hook_user, shoal_instance *instance, uint32_t func_index, bool leave,
                           const shoal_val *vals, uint32_t nvals, shoal_status status);
    void *hook_user;
} shoal_instance_config;

/* Resolves imports, allocates memories/tables/globals, applies segments and runs the start function.
 * config may be NULL. On SHOAL_ERR_TRAP during start, *out is still NULL. */
shoal_status shoal_instantiate(const shoal_module *module, const shoal_imports *imports,
                               const shoal_instance_config *config, shoal_instance **out, shoal_error *err);
void shoal_instance_free(shoal_instance *instance);
const shoal_module *shoal_instance_module(const shoal_instance *instance);
void *shoal_instance_user(const shoal_instance *instance);

/* Calls an exported function. nargs/nresults must match its type (else SHOAL_ERR_ARG). */
shoal_status shoal_call_export(shoal_instance *instance, const char *name, const shoal_val *args, uint32_t nargs,
                               shoal_val *results, uint32_t nresults, shoal_error *err);
/* The type of an exported function; false if there is none of that name. */
bool shoal_export_functype(const shoal_instance *instance, const char *name, shoal_functype *out);
/* Reads an exported global. */
shoal_status shoal_export_global(const shoal_instance *instance, const char *name, shoal_val *value,
                                 shoal_valtype *type, shoal_error *err);

/* Memory 0 of the instance (imported or defined): base and current size in bytes. NULL if none. */
uint8_t *shoal_instance_memory(const shoal_instance *instance, uint64_t *size);
/* Checked copies in and out of memory 0. */
shoal_status shoal_instance_memory_read(const shoal_instance *instance, uint64_t offset, void *dst, uint64_t len,
                                        shoal_error *err);
shoal_status shoal_instance_memory_write(shoal_instance *instance, uint64_t offset, const void *src, uint64_t len,
                                         shoal_error *err);

/* Limits. Fuel left is readable after a call; interrupt may be called from another thread or a signal
 * handler: the guest traps with SHOAL_TRAP_INTERRUPTED at the next loop back-edge or call. */
void shoal_instance_set_fuel(shoal_instance *instance, uint64_t fuel); /* 0 = unlimited */
uint64_t shoal_instance_fuel_left(const shoal_instance *instance);
void shoal_instance_interrupt(shoal_instance *instance);
void shoal_instance_clear_interrupt(shoal_instance *instance);

/* ------------------------------------------------------------------------------------------------ */
/* 6. WASI preview1 (wasi_snapshot_preview1)                                                         */
/* ------------------------------------------------------------------------------------------------ */

typedef struct shoal_wasi shoal_wasi;

typedef struct shoal_wasi_preopen {
    const char *host_path;  /* directory on the host */
    const char *guest_path; /* name the guest sees (e.g. "/data" or "."); NULL = host_path */
} shoal_wasi_preopen;

typedef struct shoal_wasi_config {
    int argc;
    const char *const *argv; /* argv[0] is the program name the guest sees */
    int envc;
    const char *const *envp; /* "KEY=VALUE" strings */
    int npreopens;
    const shoal_wasi_preopen *preopens;
    int stdin_fd, stdout_fd, stderr_fd; /* host fds for guest fds 0,1,2; -1 = closed. Use 0,1,2 normally. */
} shoal_wasi_config;

shoal_status shoal_wasi_new(const shoal_wasi_config *config, shoal_wasi **out, shoal_error *err);
void shoal_wasi_free(shoal_wasi *wasi);
/* Adds every wasi_snapshot_preview1 function to imports (unimplemented ones return ENOSYS). */
shoal_status shoal_wasi_add_imports(shoal_wasi *wasi, shoal_imports *imports, shoal_error *err);
/* Runs the module's `_start` (command) or `_initialize` (reactor). Returns SHOAL_OK with *exit_code 0 when
 * _start returns normally, SHOAL_OK with the code when the guest calls proc_exit, or the trap/error. */
shoal_status shoal_wasi_run(shoal_wasi *wasi, shoal_instance *instance, int32_t *exit_code, shoal_error *err);

/* ------------------------------------------------------------------------------------------------ */
/* 8. Compute devices and the shoal_tensor host module (zero-copy tensors in guest memory)           */
/* ------------------------------------------------------------------------------------------------ */

typedef enum shoal_memory_mode {
    SHOAL_MEMORY_DEFAULT = 0, /* the device's default: host for cpu, mapped for cuda */
    SHOAL_MEMORY_HOST,        /* plain host memory (cpu) */
    SHOAL_MEMORY_MAPPED,      /* guest memory registered with the GPU, device pointer == host pointer */
    SHOAL_MEMORY_UNIFIED,     /* guest memory is managed memory; pages migrate on use */
    SHOAL_MEMORY_COPY,        /* baseline: staging copies per operation, as other runtimes do */
} shoal_memory_mode;

typedef struct shoal_device shoal_device;

/* name: "cpu", "cuda" or "cuda:N". A device that is absent, or not built in, gives SHOAL_ERR_DEVICE with
 * a message saying which. */
shoal_status shoal_device_open(const char *name, shoal_memory_mode mode, shoal_device **out, shoal_error *err);
void shoal_device_close(shoal_device *device);
/* "cpu/host", "cuda/mapped: NVIDIA H100 80GB HBM3", ... */
const char *shoal_device_description(const shoal_device *device);
/* The memory provider that guest memories must use for this device's mode (pass it in
 * shoal_instance_config.memory_provider). */
const shoal_memory_provider *shoal_device_memory_provider(const shoal_device *device);
shoal_status shoal_memory_mode_parse(const char *text, shoal_memory_mode *out, shoal_error *err);
const char *shoal_memory_mode_name(shoal_memory_mode mode);

/* One tensor context per guest instance: it holds the guest's tensor handles. */
typedef struct shoal_tensor_ctx shoal_tensor_ctx;
shoal_status shoal_tensor_ctx_new(shoal_device *device, shoal_tensor_ctx **out, shoal_error *err);
void shoal_tensor_ctx_free(shoal_tensor_ctx *ctx);
/* Tensor handles the guest holds now (actor snapshots refuse to freeze a guest holding any). */
uint32_t shoal_tensor_ctx_live(const shoal_tensor_ctx *ctx);
/* Adds the `shoal_tensor` import module (see include/shoal_guest.h) bound to ctx. */
shoal_status shoal_tensor_add_imports(shoal_tensor_ctx *ctx, shoal_imports *imports, shoal_error *err);
/* The message of the guest's last failed shoal_tensor call ("" if none). */
const char *shoal_tensor_ctx_last_error(const shoal_tensor_ctx *ctx);

/* ------------------------------------------------------------------------------------------------ */
/* 7. The inference engine                                                                           */
/* ------------------------------------------------------------------------------------------------ */
/* SHOAL-LLM-API-BEGIN (owned by the inference engine; see src/llm) */

/* Llama-family models (Llama 2/3 architecture: RMSNorm, RoPE incl. Llama 3 scaling, grouped-query
 * attention, SwiGLU) from llama2.c .bin, GGUF or safetensors files, run by a compute backend ("cpu").
 * A model is read-only once loaded and may serve many sessions, from different threads (each session
 * on one thread at a time). Weights of F32/F16/BF16/Q8_0/Q4_0 are used as stored (mapped, not copied).
 *
 * Pointers to token ids and logits are "device-agnostic": for the CPU backend they are host memory; a
 * device backend that maps the memory they live in (see section 5) reads and writes them in place. */

typedef struct shoal_model shoal_model;
typedef struct shoal_session shoal_session;
typedef struct shoal_sampler shoal_sampler;

typedef struct shoal_model_options {
    const char *tokenizer_path; /* NULL: the file's own (GGUF), or for a llama2.c .bin "tokenizer.bin" or
                                   "tok<vocab>.bin" next to it when present */
    const char *backend;        /* "cpu" (NULL = "cpu") */
    uint32_t n_threads;         /* CPU threads incl. the caller; 0 = all online CPUs */
    int device;                 /* device ordinal for GPU backends */
    /* Called now and then while a large file is read; NULL for none. */
    void (*progress)(void *user, uint64_t done, uint64_t total);
    void *progress_user;
} shoal_model_options;

typedef struct shoal_model_info {
    const char *name, *arch;
    const char *format;       /* "llama2c", "gguf", "safetensors" */
    const char *weight_type;  /* dtype of the layer matrices: "f32", "f16", "bf16", "q8_0", "q4_0" */
    char backend[64];         /* e.g. "cpu avx2 x2 threads" */
    uint32_t dim, n_layers, n_heads, n_kv_heads, head_dim, hidden_dim, vocab_size, seq_len;
    float rope_theta, rms_eps;
    bool tied_embeddings, rope_scaling;
    uint64_t n_params;
    uint64_t weight_bytes;    /* bytes of weights (mapped from the file or owned) */
    uint64_t resident_bytes;  /* bytes the model allocated itself (converted tensors, tables) */
    bool has_tokenizer;
    int32_t bos_id, eos_id;   /* -1 when none or no tokenizer */
} shoal_model_info;

shoal_status shoal_model_load(const char *path, const shoal_model_options *options, shoal_model **out,
                              shoal_error *err);
void shoal_model_free(shoal_model *model); /* after every session of it is freed */
void shoal_model_get_info(const shoal_model *model, shoal_model_info *out);

typedef enum shoal_kv_type {
    SHOAL_KV_F32 = 0,
    SHOAL_KV_F16 = 1,
} shoal_kv_type;

typedef struct shoal_session_options {
    uint32_t n_ctx;        /* context length; 0 = the model's seq_len, at most 4096 */
    shoal_kv_type kv_type; /* KV cache element type */
    uint32_t max_batch;    /* most tokens per forward pass during prefill; 0 = min(n_ctx, 256) */
} shoal_session_options;

/* The KV cache is allocated once here. options may be NULL (defaults). */
shoal_status shoal_session_new(shoal_model *model, const shoal_session_options *options, shoal_session **out,
                               shoal_error *err);
void shoal_session_free(shoal_session *session);
/* Forgets every position (the cache is reused). */
void shoal_session_reset(shoal_session *session);
/* Forgets the positions from n_pos on (no-op when n_pos >= the position): e.g. to re-feed a conversation
 * from where it first differs. */
void shoal_session_rewind(shoal_session *session, uint32_t n_pos);
/* Keeps the first n positions and forgets the rest (a caller re-sending a conversation reuses the KV of
 * the common prefix). SHOAL_ERR_ARG when n exceeds the position. */
shoal_status shoal_session_truncate(shoal_session *session, uint32_t n, shoal_error *err);
uint32_t shoal_session_position(const shoal_session *session); /* positions filled */
uint32_t shoal_session_context(const shoal_session *session);  /* n_ctx */
/* Bytes the session holds (KV cache + activations) and the KV cache alone. */
uint64_t shoal_session_memory(const shoal_session *session);
uint64_t shoal_session_kv_memory(const shoal_session *session);

/* Feeds n tokens (a batched forward pass) and, when logits is non-NULL, writes the vocab_size logits after
 * the last one. SHOAL_ERR_ARG for an id outside the vocabulary or when the context would overflow (then
 * nothing is changed). */
shoal_status shoal_session_prefill(shoal_session *session, const int32_t *tokens, uint32_t n, float *logits,
                                   shoal_error *err);
/* Feeds one token and writes the logits for the next (logits may be NULL: see shoal_session_logits). */
shoal_status shoal_session_decode(shoal_session *session, int32_t token, float *logits, shoal_error *err);
/* The logits of the last prefill/decode, in the backend's memory (host memory for "cpu"). */
const float *shoal_session_logits(const shoal_session *session);

/* Tokenizer (the model's). Each fails with SHOAL_ERR_NOTFOUND when the model has none.
 * tokenize: when ids is too small, *n_ids still gets the full count and SHOAL_ERR_ARG is returned (pass
 * max_ids 0 to measure). parse_special lets control tokens written in the text ("<|eot_id|>") count. */
shoal_status shoal_tokenize(const shoal_model *model, const char *text, size_t len, bool add_bos,
                            bool parse_special, int32_t *ids, size_t max_ids, size_t *n_ids, shoal_error *err);
/* Text of token id as it follows token prev (-1 at the start); returns the full length, writing at most
 * cap bytes. The bytes may end inside a UTF-8 sequence: a streaming caller buffers. */
size_t shoal_detokenize(const shoal_model *model, int32_t prev, int32_t id, char *buf, size_t cap);
/* True for end-of-generation tokens (EOS, end of turn). */
bool shoal_token_is_eog(const shoal_model *model, int32_t id);
/* Renders chat messages (roles "system", "user", "assistant") with the model's template, ending with the
 * assistant header; tokenize the result with add_bos false and parse_special true. *len gets the full
 * length; SHOAL_ERR_ARG when cap is too small (cap 0 measures). */
typedef struct shoal_chat_message {
    const char *role;
    const char *content;
} shoal_chat_message;
shoal_status shoal_chat_format(const shoal_model *model, const shoal_chat_message *messages, size_t n, char *out,
                               size_t cap, size_t *len, shoal_error *err);

/* Sampling: repetition penalty -> top-k -> top-p -> min-p -> temperature, seeded and reproducible. */
typedef struct shoal_sampler_params {
    float temperature;     /* <= 0: greedy */
    int32_t top_k;         /* <= 0: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off */
    float repeat_penalty;  /* 1: off */
    int32_t repeat_last_n; /* 0: off, -1: all history */
    uint64_t seed;
} shoal_sampler_params;

/* temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1, repeat_last_n 64, seed 0. */
void shoal_sampler_params_default(shoal_sampler_params *params);
shoal_status shoal_sampler_new(const shoal_sampler_params *params, shoal_sampler **out, shoal_error *err);
void shoal_sampler_free(shoal_sampler *sampler);
/* Picks the next token; logits (host memory, n_vocab floats) is used as scratch. history: the tokens so far.
 * Returns -1 when no token can be chosen (all NaN). */
int32_t shoal_sampler_next(shoal_sampler *sampler, float *logits, uint32_t n_vocab, const int32_t *history,
                           size_t n_history);

/* SHOAL-LLM-API-END */

/* ------------------------------------------------------------------------------------------------ */
/* 9. Guest inference API: wasi_ephemeral_nn and shoal_llm for guests (see include/shoal_guest.h)    */
/* ------------------------------------------------------------------------------------------------ */

/* A registry of preloaded models, shared by every guest and session that names them. Models are loaded
 * once, on the host; their weights never enter guest memory. Lookups are read-only, so one registry may
 * serve guests on several threads once it is filled. */
typedef struct shoal_nn_registry shoal_nn_registry;

shoal_status shoal_nn_registry_new(shoal_nn_registry **out, shoal_error *err);
/* Frees the registry and the models it loaded (after every guest context using it is freed). */
void shoal_nn_registry_free(shoal_nn_registry *registry);
/* Preloads a model from WasmEdge's --nn-preload spec NAME:ENCODING:TARGET:PATH. ENCODING is GGML (any
 * case; the file may be any format shoal_model_load reads), TARGET AUTO (cuda when available, else cpu),
 * CPU or GPU. A PATH that does not exist is registered as missing: guests that load it get error 103
 * (ModelNotFound), as WasmEdge does. n_threads: CPU threads for the model (0 = all). */
shoal_status shoal_nn_registry_preload(shoal_nn_registry *registry, const char *spec, uint32_t n_threads,
                                       shoal_error *err);
/* Registers a model the embedder loaded itself under name (borrowed: it must outlive the registry). */
shoal_status shoal_nn_registry_add(shoal_nn_registry *registry, const char *name, shoal_model *model,
                                   shoal_error *err);
/* The model registered under name, or NULL (also for a missing preload). */
shoal_model *shoal_nn_registry_find(const shoal_nn_registry *registry, const char *name, size_t name_len);

/* The per-guest state of both import modules: the guest's graphs, execution contexts and sessions, each
 * with its own KV cache, logits and scratch. One per guest instance. */
typedef struct shoal_nn_ctx shoal_nn_ctx;

shoal_status shoal_nn_ctx_new(shoal_nn_registry *registry, shoal_nn_ctx **out, shoal_error *err);
void shoal_nn_ctx_free(shoal_nn_ctx *ctx);
/* Adds `wasi_ephemeral_nn` (WasmEdge GGML backend ABI) and `shoal_llm` to imports, bound to ctx. */
shoal_status shoal_nn_add_imports(shoal_nn_ctx *ctx, shoal_imports *imports, shoal_error *err);
/* The guest's WASI state: shoal_llm save/restore resolve the guest's file names in its directories, as
 * path_open does. Without it (the default) they fail. */
void shoal_nn_ctx_set_wasi(shoal_nn_ctx *ctx, shoal_wasi *wasi);
/* The message of the guest's last failed call of either module ("" if none). */
const char *shoal_nn_ctx_last_error(const shoal_nn_ctx *ctx);
/* Nanoseconds spent in forward passes (prefill and decode) for this guest so far. */
uint64_t shoal_nn_ctx_device_ns(const shoal_nn_ctx *ctx);

/* Host-call tracing (`shoal run --trace`): each call from the guest into a host function with its
 * arguments, results, duration and the guest bytes it moved; a summary of time in the guest, in host
 * calls and on the device at the end. Output goes to the host file descriptor fd. */
typedef struct shoal_trace shoal_trace;

/* per_call false: only the summary. */
shoal_status shoal_trace_new(const shoal_module *module, int fd, bool per_call, shoal_trace **out,
                             shoal_error *err);
void shoal_trace_free(shoal_trace *trace);
/* Sets config->host_call_hook / hook_user so that the instance reports to trace. */
void shoal_trace_attach(shoal_trace *trace, shoal_instance_config *config);
/* Starts the wall clock (call just before running the guest). */
void shoal_trace_start(shoal_trace *trace);
/* Prints the summary; device_ns from shoal_nn_ctx_device_ns (0 when unknown). */
void shoal_trace_summary(shoal_trace *trace, uint64_t device_ns);

/* ------------------------------------------------------------------------------------------------ */
/* 10. Snapshots: a session's KV cache to a safetensors file and back                                */
/* ------------------------------------------------------------------------------------------------ */

/* The file is plain safetensors (any reader opens it): "tokens" (I32 [n_tokens]), "layers.L.k" and
 * "layers.L.v" (F32 or F16 [n_positions][n_kv_heads * head_dim], exactly the filled positions) for each
 * layer, and "logits" (F32 [vocab]) when saved. __metadata__ holds the format version, the model identity
 * (sha256 of its config and weights, as `shoal info` prints), the shapes, the KV dtype, the position
 * count, the sampler's parameters and generator state, and an XXH3-64 checksum of the data and metadata.
 * Writing is crash-safe: a temporary file in the same directory, fsync, rename, fsync of the directory;
 * a crash leaves the old file or the new one, never a mix. */

typedef struct shoal_snapshot_save_opts {
    /* The history: tokens[0 .. position) are those whose KV the session holds; more may follow (a sampled
     * token not fed yet). n_tokens >= shoal_session_position(). NULL/0 only for an empty session. */
    const int32_t *tokens;
    uint32_t n_tokens;
    const shoal_sampler *sampler; /* its parameters and generator state are saved; NULL: none */
    const float *logits;          /* vocab_size floats (host) to save with it; NULL: none */
} shoal_snapshot_save_opts;

typedef struct shoal_snapshot_restored {
    /* In: where to put what the file holds (each may be NULL/0). */
    int32_t *tokens;        /* receives the history when tokens_cap is large enough */
    uint32_t tokens_cap;
    shoal_sampler *sampler; /* gets the saved generator state (its parameters stay the caller's) */
    shoal_sampler **new_sampler; /* gets a new sampler with the saved parameters and state (the caller
                                    frees it), or NULL when the file has none */
    float *logits;          /* receives the saved logits (vocab_size floats) */
    /* Out. */
    uint32_t n_tokens, n_positions;
    bool has_sampler, has_logits;
    shoal_sampler_params sampler_params; /* the saved sampler's parameters (when has_sampler) */
} shoal_snapshot_restored;

/* Saves the session's filled positions and opts (may be NULL) to path, replacing it atomically. */
shoal_status shoal_session_save(shoal_session *session, const char *path, const shoal_snapshot_save_opts *opts,
                                shoal_error *err);
/* Replaces the session's positions with the file's. Refused with SHOAL_ERR_ARG/SHOAL_ERR_FORMAT and a
 * message, the session and out untouched, when the file is of another model (identity), another KV dtype or
 * shape, truncated or corrupt (checksum), longer than the session's context, or the token buffer is too
 * small (n_tokens still says how many are needed). SHOAL_ERR_IO when it cannot be read. Only a device
 * failure while uploading (SHOAL_ERR_DEVICE) leaves the session reset to position 0. out may be NULL. */
shoal_status shoal_session_restore(shoal_session *session, const char *path, shoal_snapshot_restored *out,
                                   shoal_error *err);

/* ------------------------------------------------------------------------------------------------ */
/* 11. Actors: a running guest frozen to one file and resumed in another process or on another machine */
/* ------------------------------------------------------------------------------------------------ */

/* An actor file (`shoal run --snapshot-on-exit`, the guest's shoal_actor.checkpoint(), `shoal resume`) is
 * a versioned, typed, checksummed container of sections: the module's bytes, the engine state (linear
 * memory as the non-zero pages only, globals, tables, dropped segments, the suspended call stack), the WASI
 * state and the inference state. Each subsystem below turns its state into bytes (malloc'd; free() them)
 * and back; the bytes are opaque to everyone else and start with their own format version. */

/* WASI: args, environment, preopened directories (guest name and host path), the offsets that keep the
 * guest's monotonic and CPU-time clocks running on from where they were, and every open descriptor by
 * number: preopens, stdio, and files/directories by their path beneath a preopen with position, flags and
 * rights. SHOAL_ERR_UNSUPPORTED naming the descriptor when one cannot be carried (its file was removed or
 * replaced since it was opened, or it is not a regular file or directory). See docs/actors.md. */
shoal_status shoal_wasi_state_save(shoal_wasi *wasi, uint8_t **out, size_t *len, shoal_error *err);
/* A new WASI state from saved bytes. config supplies what belongs to the new process: stdio fds, and
 * preopens that re-bind saved guest directory names to other host directories (matched by guest_path;
 * the others keep their saved host path; a name the state does not have is SHOAL_ERR_ARG); config's
 * argv/envp are ignored (the saved ones are the guest's). Files are reopened by path (never created or
 * truncated) and positioned; SHOAL_ERR_IO naming the file when one cannot be; SHOAL_ERR_FORMAT for
 * corrupt or truncated bytes. Nothing is left open on failure. */
shoal_status shoal_wasi_state_load(const shoal_wasi_config *config, const uint8_t *p, size_t len, shoal_wasi **out,
                                   shoal_error *err);

/* Inference: every shoal_llm session (by handle) and wasi_ephemeral_nn graph and execution context (by id)
 * of the guest, with the KV rows of the filled positions (host bytes in the session's KV dtype), token
 * history, sampler parameters and generator state, logits not sampled yet, counters, the device time so far
 * and the last error message; and every model of the registry by name, with its identity (shoal info's
 * sha256; the first save of a model hashes its weights once) and the preload spec it came from. The bytes
 * end with an XXH3-64 checksum of the rest; their format is documented in src/nn/nstate.c. */
shoal_status shoal_nn_ctx_state_save(shoal_nn_ctx *ctx, uint8_t **out, size_t *len, shoal_error *err);
/* Fills ctx (fresh: no graphs, contexts or sessions yet, else SHOAL_ERR_ARG) from saved bytes. Every model the
 * bytes name (each registry entry whose file existed at save) must be in ctx's registry under that name with
 * the same identity: else SHOAL_ERR_ARG saying which name, both identities, and how to re-bind
 * (--nn-preload with the saved spec). Corrupt or truncated bytes: SHOAL_ERR_FORMAT. Whatever fails, ctx is
 * left as it was (nothing half-built). Sessions may land on another device than they were saved from
 * (CPU <-> CUDA): KV rows go through the session API as host bytes (same KV dtype: F32 by default on both). */
shoal_status shoal_nn_ctx_state_load(shoal_nn_ctx *ctx, const uint8_t *p, size_t len, shoal_error *err);
/* The preload specs NAME:ENCODING:TARGET:PATH (PATH made absolute when the file existed at preload) recorded
 * in saved inference bytes, so that a resume can preload the same models by default; models the embedder
 * added with shoal_nn_registry_add have no spec and are not listed. *specs is one malloc'd array of n
 * strings (free(*specs) frees all). SHOAL_ERR_FORMAT for corrupt bytes. */
shoal_status shoal_nn_state_preloads(const uint8_t *p, size_t len, char ***specs, size_t *n, shoal_error *err);

/* The whole actor. Guests import `shoal_actor`:
 *   checkpoint() -> i32   writes the actor file now and returns 0 (the guest goes on); when the actor is
 *                         later resumed from that file, the same call returns 1 there. < 0: not written
 *                         (-1 no file configured, -2 the state cannot be carried, -3 an I/O error).
 *   last_error(buf, cap) -> i32   the message of the last failed checkpoint (length; copies <= cap bytes).
 * Only a call made directly by Wasm code can be frozen (not one nested under another host function); the
 * module must own its memory, tables and globals, and hold no references in locals (C guests never do). */
#define SHOAL_VERSION "0.2.0"

typedef struct shoal_actor shoal_actor;

typedef struct shoal_actor_config {
    shoal_wasi *wasi;              /* required: its state is saved */
    shoal_nn_ctx *nn;              /* the guest's inference state, or NULL */
    shoal_tensor_ctx *tensors;     /* checked: no tensor handle may be live at a snapshot; or NULL */
    const char *checkpoint_path;   /* where checkpoint() writes (NULL: it fails with -1) */
    const char *device;            /* recorded for the resume's default: "cpu", "cuda", ... */
    const char *memory_mode;       /* recorded: shoal_memory_mode_name() */
    uint32_t checkpoints;          /* checkpoints taken before (a resumed actor continues the count) */
} shoal_actor_config;

shoal_status shoal_actor_new(const shoal_module *module, const shoal_actor_config *config, shoal_actor **out,
                             shoal_error *err);
void shoal_actor_free(shoal_actor *actor);
/* Adds the `shoal_actor` import module (checkpoint, last_error) bound to actor. */
shoal_status shoal_actor_add_imports(shoal_actor *actor, shoal_imports *imports, shoal_error *err);
/* Writes the actor file of an instance whose last call was stopped at a safe point by
 * shoal_instance_interrupt or fuel exhaustion (SHOAL_TRAP_INTERRUPTED / SHOAL_TRAP_FUEL_EXHAUSTED), before
 * anything else runs on it. reason is recorded ("SIGTERM", "timeout", ...). Crash-safe. */
shoal_status shoal_actor_save(shoal_actor *actor, shoal_instance *instance, const char *path, const char *reason,
                              shoal_error *err);
const char *shoal_actor_error(const shoal_actor *actor); /* the last failed checkpoint's message */
uint32_t shoal_actor_checkpoints(const shoal_actor *actor);

/* Resuming: open (every section but the memory is read and checksum-verified here), load the module, build
 * WASI and inference state from their sections, instantiate with the file (memory is read straight into
 * the new instance and verified; engine state restored), then resume. */
typedef struct shoal_actor_file shoal_actor_file;

typedef struct shoal_actor_info {
    const char *shoal_version, *reason, *device, *memory_mode;
    uint64_t created_unix_ns;
    uint32_t checkpoints, memory_pages;
    uint64_t memory_bytes_saved, file_bytes;
} shoal_actor_info;

shoal_status shoal_actor_file_open(const char *path, shoal_actor_file **out, shoal_error *err);
void shoal_actor_file_close(shoal_actor_file *file);
void shoal_actor_file_info(const shoal_actor_file *file, shoal_actor_info *out);
shoal_status shoal_actor_file_module(const shoal_actor_file *file, shoal_module **out, shoal_error *err);
/* The saved WASI / inference state bytes (for shoal_wasi_state_load / shoal_nn_ctx_state_load); NULL with
 * *len 0 when the file has none. Valid while the file is open. */
const uint8_t *shoal_actor_file_wasi(const shoal_actor_file *file, size_t *len);
const uint8_t *shoal_actor_file_nn(const shoal_actor_file *file, size_t *len);
/* Instantiates module (from shoal_actor_file_module) with imports whose WASI and inference state came from
 * the file: no segments or start function run; memory and engine state come from the file. */
shoal_status shoal_actor_file_instantiate(const shoal_actor_file *file, const shoal_module *module,
                                          const shoal_imports *imports, const shoal_instance_config *config,
                                          shoal_instance **out, shoal_error *err);
/* Continues the guest where it stopped; returns as shoal_wasi_run does (exit code, trap or error). It may
 * stop again (interrupt, fuel) and be saved again with shoal_actor_save. */
shoal_status shoal_actor_resume(shoal_instance *instance, int32_t *exit_code, shoal_error *err);

#ifdef __cplusplus
}
#endif
#endif /* SHOAL_H */
