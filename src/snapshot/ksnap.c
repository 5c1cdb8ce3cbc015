/*
 * ksnap.c: KV-cache snapshots of a session (shoal.h section 10): the safetensors writer and reader, with
 * the identity, shape and checksum checks a restore makes before it touches the session.
 *
 * File layout (safetensors: an 8-byte little-endian header length, the JSON header padded with spaces to
 * a multiple of 8, then the data):
 *   data = tokens (I32 [n_tokens]) | layers.0.k | layers.0.v | layers.1.k | ... | logits (F32 [vocab])?
 * Each KV tensor is [n_positions][kv_dim] in the session's dtype: exactly the filled rows of one layer,
 * which the cache keeps contiguous (lkv_cache), so saving a layer is one download and restoring it one
 * upload. The layout is a function of the metadata alone (layout_init): a reader recomputes it and
 * refuses a header whose tensor entries say anything else.
 *
 * The checksum (XXH3-64) covers the data and then every metadata key and value but "checksum" itself, in
 * file order, each followed by a NUL; so a flipped bit anywhere that matters is caught. A restore hashes
 * the data as it streams it into the session and, on a mismatch, puts the session back as it was (see
 * "restore" below for how).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <xxhash.h>

#include "kfile.h"
#include "ksnap.h"
#include "lapi.h"
#include "lload.h"
#include "lsample.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "snapshots are written as little-endian host memory (safetensors is little-endian)"
#endif

#define KSNAP_FORMAT "shoal-kv-snapshot"
#define KSNAP_VERSION 1
#define KSNAP_MAX_HEADER (16u << 20) /* our headers are a few KB per 100 layers */

typedef struct layout {
    uint32_t n_layers, kv_dim, vocab, n_pos, n_tokens;
    lmodel_dtype dtype;
    bool has_logits;
    uint64_t row_bytes;  /* one layer's K (or V): n_pos * kv_dim * element size */
    uint64_t kv_off;     /* layer l's K at kv_off + 2 l row_bytes, its V right after */
    uint64_t logits_off; /* when has_logits */
    uint64_t total;      /* data bytes */
} layout;

static void layout_init(layout *L, const lsession *s, uint32_t n_pos, uint32_t n_tokens, bool has_logits) {
    L->n_layers = s->kv.n_layers;
    L->kv_dim = s->kv.kv_dim;
    L->vocab = s->model->cfg.vocab_size;
    L->n_pos = n_pos;
    L->n_tokens = n_tokens;
    L->dtype = s->kv.dtype;
    L->has_logits = has_logits;
    L->row_bytes = (uint64_t)n_pos * L->kv_dim * (L->dtype == LDT_F16 ? 2 : 4);
    L->kv_off = (uint64_t)n_tokens * 4;
    L->logits_off = L->kv_off + 2 * (uint64_t)L->n_layers * L->row_bytes;
    L->total = L->logits_off + (has_logits ? (uint64_t)L->vocab * 4 : 0);
}

static const char *st_dtype(lmodel_dtype dt) {
    return dt == LDT_F16 ? "F16" : "F32";
}

/* ---- metadata helpers ------------------------------------------------------------------------------- */

static bool meta_add(cJSON *meta, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static bool meta_add(cJSON *meta, const char *key, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return cJSON_AddStringToObject(meta, key, buf) != NULL;
}

static const char *meta_str(const cJSON *meta, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(meta, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* A decimal integer in [0, max]; nothing else (no sign, no spaces, no trailing bytes). */
static bool meta_u64(const cJSON *meta, const char *key, uint64_t max, uint64_t *out) {
    const char *v = meta_str(meta, key);
    if (!v || *v < '0' || *v > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || x > max)
        return false;
    *out = x;
    return true;
}

static bool meta_u32(const cJSON *meta, const char *key, uint32_t *out) {
    uint64_t x;
    if (!meta_u64(meta, key, UINT32_MAX, &x))
        return false;
    *out = (uint32_t)x;
    return true;
}

static bool meta_f32(const cJSON *meta, const char *key, float *out) {
    const char *v = meta_str(meta, key);
    if (!v || !*v)
        return false;
    char *end;
    *out = strtof(v, &end);
    return !*end;
}

static bool meta_i32(const cJSON *meta, const char *key, int32_t *out) {
    const char *v = meta_str(meta, key);
    if (!v || !*v)
        return false;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < INT32_MIN || x > INT32_MAX)
        return false;
    *out = (int32_t)x;
    return true;
}

/* The metadata's part of the checksum: every key and value but "checksum" itself, in file order. */
static void hash_meta(XXH3_state_t *h, const cJSON *meta) {
    for (const cJSON *it = meta->child; it; it = it->next) {
        if (!strcmp(it->string, "checksum") || !cJSON_IsString(it))
            continue;
        XXH3_64bits_update(h, it->string, strlen(it->string) + 1);
        XXH3_64bits_update(h, it->valuestring, strlen(it->valuestring) + 1);
    }
}

static uint64_t checksum(const uint8_t *data, uint64_t n, const cJSON *meta) {
    XXH3_state_t *h = XXH3_createState();
    if (!h) /* cannot happen short of malloc failing; a one-shot hash of the data alone still differs */
        return XXH3_64bits(data, n) ^ 1;
    XXH3_64bits_reset(h);
    XXH3_64bits_update(h, data, n);
    hash_meta(h, meta);
    uint64_t d = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return d;
}

static bool add_tensor(cJSON *root, const char *name, const char *dtype, int rank, const uint64_t *shape,
                       uint64_t begin, uint64_t end) {
    cJSON *t = cJSON_AddObjectToObject(root, name);
    cJSON *sh = t ? cJSON_AddArrayToObject(t, "shape") : NULL;
    cJSON *off = t ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
    if (!off || !cJSON_AddStringToObject(t, "dtype", dtype))
        return false;
    for (int i = 0; i < rank; i++)
        if (!cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)shape[i])))
            return false;
    return cJSON_AddItemToArray(off, cJSON_CreateNumber((double)begin)) &&
           cJSON_AddItemToArray(off, cJSON_CreateNumber((double)end));
}

/* The tensor entries the layout implies, added to root (save) or compared with root (restore). */
typedef bool (*tensor_fn)(void *user, const char *name, const char *dtype, int rank, const uint64_t *shape,
                          uint64_t begin, uint64_t end);

static bool for_each_tensor(const layout *L, tensor_fn fn, void *user) {
    uint64_t shape[2] = {L->n_tokens, 0};
    if (!fn(user, "tokens", "I32", 1, shape, 0, L->kv_off))
        return false;
    shape[0] = L->n_pos;
    shape[1] = L->kv_dim;
    for (uint32_t l = 0; l < L->n_layers; l++) {
        char name[32];
        uint64_t k = L->kv_off + 2 * (uint64_t)l * L->row_bytes;
        snprintf(name, sizeof name, "layers.%u.k", l);
        if (!fn(user, name, st_dtype(L->dtype), 2, shape, k, k + L->row_bytes))
            return false;
        snprintf(name, sizeof name, "layers.%u.v", l);
        if (!fn(user, name, st_dtype(L->dtype), 2, shape, k + L->row_bytes, k + 2 * L->row_bytes))
            return false;
    }
    shape[0] = L->vocab;
    return !L->has_logits || fn(user, "logits", "F32", 1, shape, L->logits_off, L->total);
}

static bool emit_tensor(void *user, const char *name, const char *dtype, int rank, const uint64_t *shape,
                        uint64_t begin, uint64_t end) {
    return add_tensor(user, name, dtype, rank, shape, begin, end);
}

static bool num_is(const cJSON *it, uint64_t v) {
    return cJSON_IsNumber(it) && it->valuedouble == (double)v;
}

typedef struct check_ctx {
    const cJSON *root;
    char bad[96]; /* the first entry that differs */
} check_ctx;

static bool check_tensor(void *user, const char *name, const char *dtype, int rank, const uint64_t *shape,
                         uint64_t begin, uint64_t end) {
    check_ctx *c = user;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(c->root, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    bool ok = cJSON_IsString(dt) && !strcmp(dt->valuestring, dtype) && cJSON_IsArray(sh) &&
              cJSON_GetArraySize(sh) == rank && cJSON_IsArray(off) && cJSON_GetArraySize(off) == 2 &&
              num_is(cJSON_GetArrayItem(off, 0), begin) && num_is(cJSON_GetArrayItem(off, 1), end);
    for (int i = 0; ok && i < rank; i++)
        ok = num_is(cJSON_GetArrayItem(sh, i), shape[i]);
    if (!ok)
        snprintf(c->bad, sizeof c->bad, "%s", name);
    return ok;
}

/* ---- save ------------------------------------------------------------------------------------------- */

static bool add_metadata(cJSON *meta, shoal_session *ss, const layout *L, const lsampler *sampler) {
    const lsession *s = ss->s;
    const lmodel_config *c = &s->model->cfg;
    uint8_t id[32];
    char hex[65];
    lapi_model_id(ss->model, id);
    lload_id_hex(id, hex);
    bool ok = meta_add(meta, "format", KSNAP_FORMAT) && meta_add(meta, "format_version", "%d", KSNAP_VERSION) &&
              meta_add(meta, "model_id", "sha256:%s", hex) && meta_add(meta, "model_name", "%s", c->name) &&
              meta_add(meta, "arch", "%s", c->arch) && meta_add(meta, "n_layers", "%u", L->n_layers) &&
              meta_add(meta, "n_kv_heads", "%u", c->n_kv_heads) && meta_add(meta, "head_dim", "%u", c->head_dim) &&
              meta_add(meta, "kv_dim", "%u", L->kv_dim) && meta_add(meta, "vocab_size", "%u", L->vocab) &&
              meta_add(meta, "dtype", "%s", st_dtype(L->dtype)) && meta_add(meta, "n_positions", "%u", L->n_pos) &&
              meta_add(meta, "n_tokens", "%u", L->n_tokens) && meta_add(meta, "n_ctx", "%u", s->n_ctx) &&
              meta_add(meta, "has_logits", "%s", L->has_logits ? "true" : "false") &&
              meta_add(meta, "backend", "%s", s->be->name);
    if (!ok || !sampler)
        return ok && meta_add(meta, "has_sampler", "false");
    const lsample_params *p = lsample_get_params(sampler);
    lsample_state st;
    lsample_get_state(sampler, &st);
    /* %.9g: every float survives the trip through decimal exactly. */
    return meta_add(meta, "has_sampler", "true") && meta_add(meta, "sampler.temperature", "%.9g", p->temperature) &&
           meta_add(meta, "sampler.top_k", "%" PRId32, p->top_k) && meta_add(meta, "sampler.top_p", "%.9g", p->top_p) &&
           meta_add(meta, "sampler.min_p", "%.9g", p->min_p) &&
           meta_add(meta, "sampler.repeat_penalty", "%.9g", p->repeat_penalty) &&
           meta_add(meta, "sampler.repeat_last_n", "%" PRId32, p->repeat_last_n) &&
           meta_add(meta, "sampler.seed", "%" PRIu64, p->seed) &&
           meta_add(meta, "sampler.rng", "%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64 ",%016" PRIx64, st.s[0], st.s[1],
                    st.s[2], st.s[3]);
}

shoal_status ksnap_encode(shoal_session *ss, const shoal_snapshot_save_opts *opts, struct iovec iov[2],
                          shoal_error *err) {
    static const shoal_snapshot_save_opts none = {0};
    if (!opts)
        opts = &none;
    lsession *s = ss->s;
    iov[0] = iov[1] = (struct iovec){NULL, 0};
    if (opts->n_tokens < s->pos || (opts->n_tokens && !opts->tokens))
        return shoal_error_set(err, SHOAL_ERR_ARG,
                               "snapshot: the %u tokens whose KV the session holds are needed (got %u)", s->pos,
                               opts->n_tokens);
    for (uint32_t i = 0; i < opts->n_tokens; i++)
        if (opts->tokens[i] < 0 || (uint32_t)opts->tokens[i] >= s->model->cfg.vocab_size)
            return shoal_error_set(err, SHOAL_ERR_ARG, "snapshot: token %d at index %u is out of range",
                                   opts->tokens[i], i);
    layout L;
    layout_init(&L, s, s->pos, opts->n_tokens, opts->logits != NULL);
    shoal_status st = SHOAL_ERR_NOMEM;
    char *json = NULL;
    uint8_t *hdr = NULL;
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = root ? cJSON_AddObjectToObject(root, "__metadata__") : NULL;
    uint8_t *data = malloc(L.total ? L.total : 1);
    if (!meta || !data)
        goto nomem;
    if (L.n_tokens)
        memcpy(data, opts->tokens, (size_t)L.n_tokens * 4);
    for (uint32_t l = 0; l < L.n_layers && L.n_pos; l++) {
        uint8_t *k = data + L.kv_off + 2 * (uint64_t)l * L.row_bytes;
        lsession_kv_read(s, l, false, L.n_pos, k);
        lsession_kv_read(s, l, true, L.n_pos, k + L.row_bytes);
    }
    if ((st = s->be->sync(s->ctx, err)))
        goto fail;
    st = SHOAL_ERR_NOMEM;
    if (L.has_logits)
        memcpy(data + L.logits_off, opts->logits, (size_t)L.vocab * 4);
    if (!add_metadata(meta, ss, &L, (const lsampler *)opts->sampler) ||
        !meta_add(meta, "checksum", "xxh3-64:%016" PRIx64, checksum(data, L.total, meta)) ||
        !for_each_tensor(&L, emit_tensor, root) || !(json = cJSON_PrintUnformatted(root)))
        goto nomem;
    size_t jlen = strlen(json), padded = (jlen + 7) & ~(size_t)7;
    if (!(hdr = malloc(8 + padded)))
        goto nomem;
    for (int i = 0; i < 8; i++)
        hdr[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(hdr + 8, json, jlen);
    memset(hdr + 8 + jlen, ' ', padded - jlen);
    iov[0] = (struct iovec){hdr, 8 + padded};
    iov[1] = (struct iovec){data, (size_t)L.total};
    hdr = NULL;
    data = NULL;
    st = SHOAL_OK;
    goto done;
nomem:
    st = shoal_error_set(err, SHOAL_ERR_NOMEM, "snapshot: out of memory");
fail:
done:
    free(hdr);
    cJSON_free(json);
    cJSON_Delete(root);
    free(data);
    return st;
}

shoal_status ksnap_save_at(shoal_session *ss, int dirfd, const char *path, const char *shown,
                           const shoal_snapshot_save_opts *opts, shoal_error *err) {
    if (!path || !*path)
        return shoal_error_set(err, SHOAL_ERR_ARG, "snapshot: no file name");
    struct iovec iov[2];
    shoal_status st = ksnap_encode(ss, opts, iov, err);
    if (st)
        return st;
    st = dirfd < 0 ? kfile_write_atomic(path, iov, 2, err) : kfile_write_atomic_at(dirfd, path, shown, iov, 2, err);
    free(iov[0].iov_base);
    free(iov[1].iov_base);
    return st;
}

/* ---- restore ---------------------------------------------------------------------------------------- */
/*
 * A restore is one pass over the file's bytes. The header is read and checked first; then the tensor data
 * is read in chunks straight to where it goes -- into the KV cache itself on a host-visible backend (CPU),
 * otherwise into the backend's pinned staging slots, each slot's upload overlapping the reads of the next
 * ones (CUDA) -- and each chunk is hashed as it arrives, while it is still in the CPU's cache.
 *
 * The checksum is known only at the end, after KV rows have been overwritten. So a restore into a session
 * that holds positions first copies the rows it will overwrite (positions [0, min(pos, n)) of every layer)
 * aside into host memory, and copies them back when the restore is refused; rows at or past pos are no
 * part of the session and are overwritten freely. A restore into an empty session (a new process, a new
 * session: the usual case) sets nothing aside. The logits, the position and the sampler change only after
 * everything has been verified.
 *
 * Refusals come in the order of a whole-file reader: a short file, then a checksum mismatch, then the rest.
 * When the header alone refuses the session (another model, say), the data is still hashed, through a
 * bounce buffer on that error path only, so that a flipped bit is reported as corruption.
 */

#define KSNAP_CHUNK (1u << 20) /* bytes read and then hashed at a time: they stay in L2 between the two */
#define KSNAP_SMALL (1u << 18) /* files up to this size are read whole with one call */

/* Where a snapshot is read from: a file (pread) or bytes in memory. */
typedef struct ksrc {
    int fd;             /* >= 0: the file; < 0: mem */
    const uint8_t *mem;
    uint64_t size;      /* the file's size when the restore began */
    const char *path;   /* for messages */
} ksrc;

static shoal_status src_read(const ksrc *s, uint64_t off, void *dst, size_t n, shoal_error *err) {
    if (off > s->size || n > s->size - off)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: truncated: %" PRIu64 " bytes", s->path, s->size);
    if (s->fd < 0) {
        memcpy(dst, s->mem + off, n);
        return SHOAL_OK;
    }
    uint8_t *p = dst;
    while (n) {
        ssize_t r = pread(s->fd, p, n < (1u << 30) ? n : (1u << 30), (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return shoal_error_set(err, SHOAL_ERR_IO, "cannot read %s: %s", s->path, strerror(errno));
        if (r == 0) /* someone truncated it while we read */
            return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: truncated while being read", s->path);
        p += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return SHOAL_OK;
}

typedef struct parsed {
    cJSON *root;
    const cJSON *meta;
    uint64_t data_off, n_data; /* the tensor data: file bytes [data_off, data_off + n_data) */
    uint64_t expect;           /* the data bytes the metadata implies */
    uint32_t n_pos, n_tokens, n_layers, kv_dim, vocab;
    bool logits;
    layout L; /* set by check_session */
    bool has_sampler;
    lsample_params sp;
    lsample_state rng;
} parsed;

/* The header on its own: a snapshot of ours, complete, with all the metadata a restore reads. */
static shoal_status read_header(const ksrc *src, parsed *P, shoal_error *err) {
    const char *path = src->path;
    uint8_t len[8];
    if (src->size < 8)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: truncated: %" PRIu64 " bytes is not even a safetensors "
                               "header", path, src->size);
    shoal_status st = src_read(src, 0, len, 8, err);
    if (st)
        return st;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)len[i] << (8 * i);
    if (hlen > KSNAP_MAX_HEADER || hlen > src->size - 8)
        return shoal_error_set(err, SHOAL_ERR_FORMAT,
                               "%s: truncated or not a safetensors file: header of %" PRIu64 " bytes, file of %" PRIu64,
                               path, hlen, src->size);
    char *json = malloc(hlen ? hlen : 1);
    if (!json)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "%s: out of memory", path);
    if ((st = src_read(src, 8, json, (size_t)hlen, err))) {
        free(json);
        return st;
    }
    P->root = cJSON_ParseWithLength(json, (size_t)hlen);
    free(json);
    P->meta = cJSON_GetObjectItemCaseSensitive(P->root, "__metadata__");
    P->data_off = 8 + hlen;
    P->n_data = src->size - 8 - hlen;
    const char *fmt = meta_str(P->meta, "format");
    if (!cJSON_IsObject(P->meta) || !fmt || strcmp(fmt, KSNAP_FORMAT))
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: not a Shoal KV snapshot (%s)", path,
                               P->root ? "no shoal-kv-snapshot metadata" : "corrupt safetensors header");
    uint64_t ver;
    if (!meta_u64(P->meta, "format_version", 1000000, &ver) || ver != KSNAP_VERSION)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: snapshot format version %s; this Shoal reads version %d",
                               path, meta_str(P->meta, "format_version") ? meta_str(P->meta, "format_version") : "?",
                               KSNAP_VERSION);
    const char *dtype = meta_str(P->meta, "dtype");
    if (!meta_u32(P->meta, "n_positions", &P->n_pos) || !meta_u32(P->meta, "n_tokens", &P->n_tokens) ||
        !meta_u32(P->meta, "n_layers", &P->n_layers) || !meta_u32(P->meta, "kv_dim", &P->kv_dim) ||
        !meta_u32(P->meta, "vocab_size", &P->vocab) || !dtype || !meta_str(P->meta, "model_id") ||
        !meta_str(P->meta, "has_logits") || !meta_str(P->meta, "has_sampler") || !meta_str(P->meta, "checksum") ||
        P->n_layers > (1u << 16) || P->kv_dim > (1u << 20) || P->n_pos > (1u << 24))
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: snapshot metadata is incomplete or malformed", path);
    P->logits = !strcmp(meta_str(P->meta, "has_logits"), "true");
    P->expect = (uint64_t)P->n_tokens * 4 +
                2 * (uint64_t)P->n_layers * P->n_pos * P->kv_dim * (!strcmp(dtype, "F16") ? 2 : 4) +
                (P->logits ? (uint64_t)P->vocab * 4 : 0);
    /* A short file is the common corruption (a copy cut off): say so rather than "checksum". */
    if (P->n_data < P->expect)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: truncated: %" PRIu64 " bytes of tensor data, %" PRIu64
                               " expected", path, P->n_data, P->expect);
    return SHOAL_OK;
}

/* Is the (intact) file one this session can take? Everything that needs no tensor data. */
static shoal_status check_session(shoal_session *ss, const char *path, parsed *P, shoal_error *err) {
    const lsession *s = ss->s;
    const lmodel_config *c = &s->model->cfg;
    uint8_t id[32];
    char hex[65], mine[72];
    lapi_model_id(ss->model, id);
    lload_id_hex(id, hex);
    snprintf(mine, sizeof mine, "sha256:%s", hex);
    if (strcmp(meta_str(P->meta, "model_id"), mine))
        return shoal_error_set(err, SHOAL_ERR_ARG, "%s: snapshot of another model (%s \"%s\"); this session's model is %s",
                               path, meta_str(P->meta, "model_id"),
                               meta_str(P->meta, "model_name") ? meta_str(P->meta, "model_name") : "?", mine);
    if (P->n_layers != c->n_layers || P->kv_dim != s->kv.kv_dim || P->vocab != c->vocab_size)
        return shoal_error_set(err, SHOAL_ERR_ARG,
                               "%s: snapshot shape (%u layers, kv_dim %u, vocab %u) differs from the model's (%u, %u, %u)",
                               path, P->n_layers, P->kv_dim, P->vocab, c->n_layers, s->kv.kv_dim, c->vocab_size);
    if (strcmp(meta_str(P->meta, "dtype"), st_dtype(s->kv.dtype)))
        return shoal_error_set(err, SHOAL_ERR_ARG, "%s: snapshot KV dtype is %s, this session's is %s", path,
                               meta_str(P->meta, "dtype"), st_dtype(s->kv.dtype));
    if (P->n_pos > s->n_ctx)
        return shoal_error_set(err, SHOAL_ERR_ARG, "%s: snapshot holds %u positions, the session's context is only %u",
                               path, P->n_pos, s->n_ctx);
    if (P->n_tokens < P->n_pos)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: %u tokens for %u positions", path, P->n_tokens, P->n_pos);
    layout_init(&P->L, s, P->n_pos, P->n_tokens, P->logits);
    check_ctx cc = {P->root, ""};
    int n_entries = cJSON_GetArraySize(P->root);
    if (!for_each_tensor(&P->L, check_tensor, &cc) || n_entries != 2 + 2 * (int)P->n_layers + (P->logits ? 1 : 0))
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: tensor %s is not where the metadata puts it", path,
                               cc.bad[0] ? cc.bad : "(an extra one)");
    P->has_sampler = !strcmp(meta_str(P->meta, "has_sampler"), "true");
    if (P->has_sampler) {
        const char *rng = meta_str(P->meta, "sampler.rng");
        lsample_params *p = &P->sp;
        if (!rng || sscanf(rng, "%16" SCNx64 ",%16" SCNx64 ",%16" SCNx64 ",%16" SCNx64, &P->rng.s[0], &P->rng.s[1],
                           &P->rng.s[2], &P->rng.s[3]) != 4 ||
            !(P->rng.s[0] | P->rng.s[1] | P->rng.s[2] | P->rng.s[3]) ||
            !meta_f32(P->meta, "sampler.temperature", &p->temperature) ||
            !meta_i32(P->meta, "sampler.top_k", &p->top_k) || !meta_f32(P->meta, "sampler.top_p", &p->top_p) ||
            !meta_f32(P->meta, "sampler.min_p", &p->min_p) ||
            !meta_f32(P->meta, "sampler.repeat_penalty", &p->repeat_penalty) ||
            !meta_i32(P->meta, "sampler.repeat_last_n", &p->repeat_last_n) ||
            !meta_u64(P->meta, "sampler.seed", UINT64_MAX, &p->seed))
            return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: malformed sampler state", path);
    }
    return SHOAL_OK;
}

static shoal_status checksum_error(const char *path, uint64_t digest, const cJSON *meta, shoal_error *err) {
    return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: corrupt snapshot: checksum xxh3-64:%016" PRIx64
                           ", the metadata says %s", path, digest, meta_str(meta, "checksum"));
}

static bool checksum_matches(uint64_t digest, const cJSON *meta) {
    char want[40];
    snprintf(want, sizeof want, "xxh3-64:%016" PRIx64, digest);
    return !strcmp(want, meta_str(meta, "checksum"));
}

/* The error path of a file the session refuses: its checksum, read through a bounce buffer. */
static shoal_status hash_all(const ksrc *src, const parsed *P, uint64_t *digest, shoal_error *err) {
    XXH3_state_t *h = XXH3_createState();
    uint8_t *buf = malloc(KSNAP_CHUNK);
    shoal_status st = SHOAL_OK;
    if (!h || !buf) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "%s: out of memory", src->path);
        goto done;
    }
    XXH3_64bits_reset(h);
    for (uint64_t off = 0; off < P->n_data && !st; off += KSNAP_CHUNK) {
        size_t n = P->n_data - off < KSNAP_CHUNK ? (size_t)(P->n_data - off) : KSNAP_CHUNK;
        if (!(st = src_read(src, P->data_off + off, buf, n, err)))
            XXH3_64bits_update(h, buf, n);
    }
    hash_meta(h, P->meta);
    *digest = XXH3_64bits_digest(h);
done:
    free(buf);
    XXH3_freeState(h);
    return st;
}

/* The hash of a large restore runs on a second thread, chunks behind the reads, so that a restore takes
 * about as long as reading the file (hashing on the reading thread added a quarter on an H100 host).
 * Chunks are hashed in the order pushed; a pushed chunk's bytes must stay put until khash_wait says it
 * is done. Without the thread (small data, or no thread could be made) push hashes at once. */
#define KHASH_Q 8

typedef struct khash {
    XXH3_state_t *h;
    bool threaded, stop;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* any change of pushed, done or stop */
    const uint8_t *ptr[KHASH_Q];
    size_t len[KHASH_Q];
    uint64_t pushed, done; /* chunks */
} khash;

static void *khash_main(void *arg) {
    khash *k = arg;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        while (k->done == k->pushed && !k->stop)
            pthread_cond_wait(&k->cv, &k->mu);
        if (k->done == k->pushed)
            break; /* stopped, and nothing left */
        const uint8_t *p = k->ptr[k->done % KHASH_Q];
        size_t n = k->len[k->done % KHASH_Q];
        pthread_mutex_unlock(&k->mu);
        XXH3_64bits_update(k->h, p, n);
        pthread_mutex_lock(&k->mu);
        k->done++;
        pthread_cond_broadcast(&k->cv);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

static void khash_start(khash *k, bool threaded) {
    XXH3_64bits_reset(k->h);
    k->pushed = k->done = 0;
    k->stop = false;
    k->threaded = false;
    if (!threaded || pthread_mutex_init(&k->mu, NULL))
        return;
    if (pthread_cond_init(&k->cv, NULL)) {
        pthread_mutex_destroy(&k->mu);
        return;
    }
    if (pthread_create(&k->thread, NULL, khash_main, k)) {
        pthread_cond_destroy(&k->cv);
        pthread_mutex_destroy(&k->mu);
        return;
    }
    k->threaded = true;
}

static void khash_push(khash *k, const uint8_t *p, size_t n) {
    if (!k->threaded) {
        XXH3_64bits_update(k->h, p, n);
        k->pushed++;
        k->done++;
        return;
    }
    pthread_mutex_lock(&k->mu);
    while (k->pushed - k->done >= KHASH_Q)
        pthread_cond_wait(&k->cv, &k->mu);
    k->ptr[k->pushed % KHASH_Q] = p;
    k->len[k->pushed % KHASH_Q] = n;
    k->pushed++;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

/* Waits until the first `upto` chunks pushed are hashed. */
static void khash_wait(khash *k, uint64_t upto) {
    if (!k->threaded)
        return;
    pthread_mutex_lock(&k->mu);
    while (k->done < upto)
        pthread_cond_wait(&k->cv, &k->mu);
    pthread_mutex_unlock(&k->mu);
}

/* Hashes what is pushed and ends the thread; the state then holds the hash of every chunk pushed. */
static void khash_stop(khash *k) {
    if (!k->threaded)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = true;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    k->threaded = false;
}

/* Moves file bytes to their places, hashing them on the way. */
typedef struct kstream {
    const ksrc *src;
    uint64_t off; /* the next file byte */
    khash *hash;
    lsession *s;
    uint8_t *bounce; /* for a backend that neither is host-visible nor offers staging: KSNAP_CHUNK bytes */
    int slot;        /* the next staging slot */
    uint64_t slot_chunk[LBACKEND_STAGES]; /* chunks pushed up to and including the slot's last one */
} kstream;

/* Reads the n bytes at k->off into buf, handing them to the hash in pieces as they arrive, so that the
 * hash of a chunk overlaps the reading of the rest of it: pushed whole, a 2 MiB chunk's hash (~0.12 ms)
 * started only once it was read, and was most of what a short restore waited for at its end. */
#define KHASH_PIECE (256u << 10)

static shoal_status read_hashed(kstream *k, uint8_t *buf, size_t n, shoal_error *err) {
    for (size_t o = 0; o < n; o += KHASH_PIECE) {
        size_t m = n - o < KHASH_PIECE ? n - o : KHASH_PIECE;
        shoal_status st = src_read(k->src, k->off + o, buf + o, m, err);
        if (st)
            return st;
        khash_push(k->hash, buf + o, m);
    }
    return SHOAL_OK;
}

/* The next n bytes of the file to dst: backend memory when dev, host memory otherwise. */
static shoal_status stream_to(kstream *k, void *dst, bool dev, uint64_t n, shoal_error *err) {
    lbackend *be = k->s->be;
    bool staged = dev && !be->host_visible;
    uint8_t *d = dst;
    while (n) {
        size_t c = n < KSNAP_CHUNK ? (size_t)n : KSNAP_CHUNK;
        uint8_t *buf = d;
        if (staged && be->stage) {
            size_t cap = 0;
            khash_wait(k->hash, k->slot_chunk[k->slot]);
            if (!(buf = be->stage(k->s->ctx, k->slot, &cap, err)))
                return err ? err->status : SHOAL_ERR_DEVICE;
            c = n < cap ? (size_t)n : cap;
        } else if (staged) {
            khash_wait(k->hash, k->hash->pushed);
            buf = k->bounce;
        }
        shoal_status st = read_hashed(k, buf, c, err);
        if (st)
            return st;
        if (staged && be->stage) {
            be->stage_upload(k->s->ctx, d, c, k->slot, 0, c, c, 1);
            k->slot_chunk[k->slot] = k->hash->pushed;
            k->slot = (k->slot + 1) % LBACKEND_STAGES;
        } else if (staged) {
            be->upload(k->s->ctx, d, buf, c);
            if ((st = be->sync(k->s->ctx, err))) /* before the bounce buffer is refilled */
                return st;
        }
        d += c;
        n -= c;
        k->off += c;
    }
    return SHOAL_OK;
}

static uint8_t *kv_rows(lsession *s, uint32_t layer, bool v) {
    return (uint8_t *)(v ? s->kv.v : s->kv.k) + (size_t)layer * lkv_layer_bytes(&s->kv);
}

/* The KV tensors to the cache. Through staging, as many whole layers (K and V: 2 row_bytes in the file)
 * as a slot holds go together, in two strided copies (every K, every V): a short context's small tensors
 * would otherwise cost a copy and a wait each. Larger tensors go one by one, in slot-sized chunks. */
static shoal_status stream_kv(kstream *k, const layout *L, shoal_error *err) {
    lsession *s = k->s;
    lbackend *be = s->be;
    size_t cap = 0;
    uint32_t l = 0;
    if (!be->host_visible && be->stage && L->n_pos)
        while (l < L->n_layers) {
            khash_wait(k->hash, k->slot_chunk[k->slot]);
            uint8_t *buf = be->stage(s->ctx, k->slot, &cap, err);
            if (!buf)
                return err ? err->status : SHOAL_ERR_DEVICE;
            uint64_t per = cap / (2 * L->row_bytes);
            if (!per)
                break; /* one layer is more than a slot */
            uint32_t g = per < L->n_layers - l ? (uint32_t)per : L->n_layers - l;
            size_t n = (size_t)(2 * L->row_bytes * g), rb = (size_t)L->row_bytes, lb = lkv_layer_bytes(&s->kv);
            shoal_status st = read_hashed(k, buf, n, err);
            if (st)
                return st;
            be->stage_upload(s->ctx, kv_rows(s, l, false), lb, k->slot, 0, 2 * rb, rb, g);
            be->stage_upload(s->ctx, kv_rows(s, l, true), lb, k->slot, rb, 2 * rb, rb, g);
            k->slot_chunk[k->slot] = k->hash->pushed;
            k->slot = (k->slot + 1) % LBACKEND_STAGES;
            k->off += n;
            l += g;
        }
    shoal_status st = SHOAL_OK;
    for (; l < L->n_layers && !st && L->n_pos; l++)
        for (int v = 0; v < 2 && !st; v++)
            st = stream_to(k, kv_rows(s, l, v), true, L->row_bytes, err);
    return st;
}

/* Copies positions [0, keep) of every layer's K and V between the cache and `rows` (2 n_layers blocks). */
static void swap_rows(lsession *s, uint8_t *rows, uint32_t keep, bool back) {
    size_t b = (size_t)keep * s->kv.kv_dim * (s->kv.dtype == LDT_F16 ? 2 : 4);
    for (uint32_t l = 0; l < s->kv.n_layers; l++)
        for (int v = 0; v < 2; v++) {
            uint8_t *p = rows + (2 * (size_t)l + (size_t)v) * b;
            if (back)
                lsession_kv_write(s, l, v, keep, p);
            else
                lsession_kv_read(s, l, v, keep, p);
        }
}

static shoal_status restore_src(shoal_session *ss, const ksrc *src, shoal_snapshot_restored *out,
                                shoal_error *err) {
    lsession *s = ss->s;
    const char *path = src->path;
    parsed P = {0};
    shoal_error why = {0};
    uint8_t *saved = NULL, *host = NULL, *bounce = NULL;
    khash hash = {0};
    lsampler *fresh = NULL; /* made before the session changes, so that failing to leaves it as it was */
    uint32_t keep = 0;      /* rows of each layer set aside in `saved` */
    bool touched = false;   /* KV rows below s->pos may have been overwritten */
    shoal_status st = read_header(src, &P, err);
    if (st)
        goto done;
    shoal_status fits = check_session(ss, path, &P, &why);
    if (fits || P.n_data != P.expect) {
        uint64_t digest = 0;
        if ((st = hash_all(src, &P, &digest, err)))
            goto done;
        if (!checksum_matches(digest, P.meta))
            st = checksum_error(path, digest, P.meta, err);
        else if (P.n_data != P.expect)
            st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: %" PRIu64 " bytes of tensor data, %" PRIu64 " expected",
                                 path, P.n_data, P.expect);
        else
            st = shoal_error_set(err, fits, "%s", why.message);
        goto done;
    }
    const layout *L = &P.L;
    if (out && out->tokens && L->n_tokens > out->tokens_cap) {
        out->n_tokens = L->n_tokens;
        st = shoal_error_set(err, SHOAL_ERR_ARG, "%s: the snapshot has %u tokens, the buffer holds %u", path,
                             L->n_tokens, out->tokens_cap);
        goto done;
    }
    if (out && out->new_sampler && P.has_sampler) {
        if ((st = lsample_new(&P.sp, &fresh, err)))
            goto done;
        lsample_set_state(fresh, &P.rng, NULL);
    }
    /* Host memory for the tokens and the logits, then for the rows set aside. */
    keep = s->pos < L->n_pos ? s->pos : L->n_pos;
    size_t row_b = (size_t)L->kv_dim * (L->dtype == LDT_F16 ? 2 : 4);
    size_t host_b = (size_t)L->n_tokens * 4 + (L->has_logits ? (size_t)L->vocab * 4 : 0);
    host = malloc(host_b ? host_b : 1);
    saved = keep ? malloc(2 * (size_t)L->n_layers * keep * row_b) : NULL;
    bounce = !s->be->host_visible && !s->be->stage ? malloc(KSNAP_CHUNK) : NULL;
    hash.h = XXH3_createState();
    if (!host || (keep && !saved) || (!s->be->host_visible && !s->be->stage && !bounce) || !hash.h) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (keep) {
        swap_rows(s, saved, keep, false);
        if ((st = s->be->sync(s->ctx, err)))
            goto done;
    }
    khash_start(&hash, L->total >= KSNAP_CHUNK);
    kstream k = {src, P.data_off, &hash, s, bounce, 0, {0}};
    float *logits = (float *)(host + (size_t)L->n_tokens * 4);
    touched = true;
    st = stream_to(&k, host, false, L->kv_off, err);
    if (!st)
        st = stream_kv(&k, L, err);
    int lslot = -1; /* the staging slot that holds the logits, uploaded from there once all is verified */
    if (!st && L->has_logits && !s->be->host_visible && s->be->stage) {
        size_t cap = 0;
        khash_wait(&hash, k.slot_chunk[k.slot]);
        uint8_t *p = s->be->stage(s->ctx, k.slot, &cap, err);
        if (!p)
            st = err ? err->status : SHOAL_ERR_DEVICE;
        else if (cap >= (size_t)L->vocab * 4)
            logits = (float *)p, lslot = k.slot;
    }
    if (!st && L->has_logits)
        st = stream_to(&k, logits, false, (uint64_t)L->vocab * 4, err);
    shoal_status synced = s->be->sync(s->ctx, st ? NULL : err);
    khash_stop(&hash);
    if (st || (st = synced))
        goto done;
    hash_meta(hash.h, P.meta);
    uint64_t digest = XXH3_64bits_digest(hash.h);
    if (!checksum_matches(digest, P.meta)) {
        st = checksum_error(path, digest, P.meta, err);
        goto done;
    }
    for (uint32_t i = 0; i < L->n_tokens; i++) {
        int32_t t;
        memcpy(&t, host + 4 * (size_t)i, 4);
        if (t < 0 || (uint32_t)t >= L->vocab) {
            st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: token %d at %u is out of range", path, t, i);
            goto done;
        }
    }
    size_t lb = (size_t)L->vocab * 4;
    if (L->has_logits && lslot >= 0) /* so that shoal_session_logits() reads what it read when saved */
        s->be->stage_upload(s->ctx, s->logits, lb, lslot, 0, lb, lb, 1);
    else if (L->has_logits)
        s->be->upload(s->ctx, s->logits, logits, lb);
    if ((st = s->be->sync(s->ctx, err)))
        goto done;
    touched = false; /* committed */
    s->pos = L->n_pos;
    if (out) {
        if (out->new_sampler)
            *out->new_sampler = (shoal_sampler *)fresh;
        fresh = NULL;
        if (out->sampler && P.has_sampler)
            lsample_set_state((lsampler *)out->sampler, &P.rng, NULL); /* nonzero: checked above */
        if (out->tokens && L->n_tokens)
            memcpy(out->tokens, host, (size_t)L->n_tokens * 4);
        if (out->logits && L->has_logits)
            memcpy(out->logits, logits, (size_t)L->vocab * 4);
        out->n_tokens = L->n_tokens;
        out->n_positions = L->n_pos;
        out->has_sampler = P.has_sampler;
        out->has_logits = L->has_logits;
        if (P.has_sampler)
            out->sampler_params = (shoal_sampler_params){P.sp.temperature,    P.sp.top_k,         P.sp.top_p,
                                                         P.sp.min_p,          P.sp.repeat_penalty, P.sp.repeat_last_n,
                                                         P.sp.seed};
    }
done:
    khash_stop(&hash); /* before the memory it may still be reading changes */
    if (touched && keep) { /* refused after rows were overwritten: put the old ones back */
        swap_rows(s, saved, keep, true);
        if (s->be->sync(s->ctx, NULL))
            s->pos = 0; /* the device failed: what is left is not the old session */
    }
    lsample_free(fresh);
    XXH3_freeState(hash.h);
    free(bounce);
    free(saved);
    free(host);
    cJSON_Delete(P.root);
    return st;
}

shoal_status ksnap_restore_mem(shoal_session *ss, const uint8_t *p, size_t len, const char *shown,
                               shoal_snapshot_restored *out, shoal_error *err) {
    ksrc src = {-1, p, len, shown};
    return restore_src(ss, &src, out, err);
}

shoal_status ksnap_restore_fd(shoal_session *ss, int fd, const char *path, shoal_snapshot_restored *out,
                              shoal_error *err) {
    struct stat sb;
    if (fstat(fd, &sb))
        return shoal_error_set(err, SHOAL_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return shoal_error_set(err, SHOAL_ERR_IO, "%s is not a regular file", path);
    ksrc src = {fd, NULL, (uint64_t)sb.st_size, path};
    if (src.size <= KSNAP_SMALL) {
        /* A small file: one read, then the pieces from memory (a pread per tensor costs more than copying). */
        uint8_t *buf = malloc(src.size ? (size_t)src.size : 1);
        if (!buf)
            return shoal_error_set(err, SHOAL_ERR_NOMEM, "%s: out of memory", path);
        shoal_status st = src_read(&src, 0, buf, (size_t)src.size, err);
        ksrc mem = {-1, buf, src.size, path};
        if (!st)
            st = restore_src(ss, &mem, out, err);
        free(buf);
        return st;
    }
    /* A larger readahead window for a cold file. (POSIX_FADV_WILLNEED on the whole file was tried: it
     * walks the page cache once more and made warm restores ~10% slower, cold ones no faster.) */
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return restore_src(ss, &src, out, err);
}

shoal_status shoal_session_save(shoal_session *session, const char *path, const shoal_snapshot_save_opts *opts,
                                shoal_error *err) {
    return ksnap_save_at(session, -1, path, path, opts, err);
}

shoal_status shoal_session_restore(shoal_session *session, const char *path, shoal_snapshot_restored *out,
                                   shoal_error *err) {
    if (!path || !*path)
        return shoal_error_set(err, SHOAL_ERR_ARG, "snapshot: no file name");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return shoal_error_set(err, SHOAL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    shoal_status st = ksnap_restore_fd(session, fd, path, out, err);
    close(fd);
    return st;
}
