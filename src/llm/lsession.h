/*
 * lsession.h: one conversation with a model: its KV cache, its activations and its position.
 *
 * A session is created with its context length and KV dtype fixed; the KV cache is allocated once, in the
 * backend's memory, laid out [layer][position][kv_dim] for K and for V (lkv_cache), so the filled positions
 * of a layer are one contiguous block. Many sessions may share one model (read-only). A session is used by
 * one thread at a time.
 */
#ifndef LSESSION_H
#define LSESSION_H

#include "lbackend.h"

/* Llama 3 models declare 128K positions; a KV cache that long would take gigabytes nobody asked for. */
#define LSESSION_DEFAULT_CTX 4096

typedef struct lsession_opts {
    uint32_t n_ctx;        /* 0 = min(the model's seq_len, LSESSION_DEFAULT_CTX) */
    lmodel_dtype kv_dtype; /* LDT_F32 or LDT_F16 */
    uint32_t max_batch;    /* tokens per forward pass in prefill; 0 = min(n_ctx, 256) */
} lsession_opts;

typedef struct lsession {
    lmodel *model;
    lbackend *be;
    lbackend_ctx *ctx;
    lkv_cache kv;
    uint32_t n_ctx, max_batch;
    uint32_t pos; /* positions filled in the KV cache */
    /* Activations in backend memory, max_batch rows each (logits: one row). */
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2, *logits;
    int32_t *ids;
    uint64_t act_bytes; /* bytes of the buffers above */
} lsession;

/* The model must be bound to a backend (lbackend_attach). */
shoal_status lsession_new(lmodel *m, const lsession_opts *opts, lsession **out, shoal_error *err);
void lsession_free(lsession *s);
void lsession_reset(lsession *s);
/* Forgets positions >= n_pos (n_pos <= pos), keeping the cache before them: rewinding a conversation. */
void lsession_rewind(lsession *s, uint32_t n_pos);

/* Runs tokens through the model at positions pos.. and advances pos; in batches of max_batch. When logits
 * is not NULL it receives the vocab_size logits after the last token (host memory). Token ids out of range
 * or a full context give SHOAL_ERR_ARG and change nothing. */
shoal_status lsession_prefill(lsession *s, const int32_t *tokens, uint32_t n, float *logits, shoal_error *err);
/* One token; the logits are in backend memory at s->logits afterwards, and copied to `logits` if non-NULL. */
shoal_status lsession_decode(lsession *s, int32_t token, float *logits, shoal_error *err);

/* Bytes the session holds: KV cache + activations. */
uint64_t lsession_memory_bytes(const lsession *s);
uint64_t lsession_kv_bytes(const lsession *s);

/* Snapshots (src/snapshot): copies positions [0, n) of one layer's K (v false) or V (v true) between the
 * backend's cache and host memory, in the cache's dtype (n * kv_dim elements). Through the backend's
 * upload/download, so the cache need not be host-visible. n <= n_ctx is the caller's to check; writing
 * does not move pos. */
void lsession_kv_read(lsession *s, uint32_t layer, bool v, uint32_t n, void *dst);
void lsession_kv_write(lsession *s, uint32_t layer, bool v, uint32_t n, const void *src);

/* The forward pass (lforward.c): n <= max_batch tokens (already in s->ids) at positions s->pos..; writes
 * the last token's logits to s->logits when want_logits. Does not advance s->pos. */
shoal_status lforward(lsession *s, uint32_t n, bool want_logits, shoal_error *err);

#endif
