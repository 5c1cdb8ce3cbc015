/*
 * lgguf.c: the GGUF reader and writer (see lgguf.h for the format).
 *
 * Reader invariant: rd.pos <= rd.size at all times; every read first checks that the bytes it needs lie in
 * [pos, size), and every count read from the file is bounded by the bytes left before anything is
 * allocated for it (each element takes at least one byte, so no allocation exceeds a small multiple of the
 * file size). Nested arrays recurse at most LGGUF_MAX_ARRAY_DEPTH deep.
 */
#include "lgguf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lgguf reads and writes little-endian files with memcpy: a big-endian host needs byte swaps"
#endif

/* ------------------------------------------------------------------------------------------------ */
/* Types                                                                                             */
/* ------------------------------------------------------------------------------------------------ */

static const struct {
    const char *name;
    uint16_t blck; /* elements per block; 0 = no such type */
    uint16_t size; /* bytes per block */
} ttypes[LGGUF_T_COUNT] = {
    [LGGUF_T_F32] = {"F32", 1, 4},          [LGGUF_T_F16] = {"F16", 1, 2},
    [LGGUF_T_Q4_0] = {"Q4_0", 32, 18},      [LGGUF_T_Q4_1] = {"Q4_1", 32, 20},
    [LGGUF_T_Q5_0] = {"Q5_0", 32, 22},      [LGGUF_T_Q5_1] = {"Q5_1", 32, 24},
    [LGGUF_T_Q8_0] = {"Q8_0", 32, 34},      [LGGUF_T_Q8_1] = {"Q8_1", 32, 36},
    [LGGUF_T_Q2_K] = {"Q2_K", 256, 84},     [LGGUF_T_Q3_K] = {"Q3_K", 256, 110},
    [LGGUF_T_Q4_K] = {"Q4_K", 256, 144},    [LGGUF_T_Q5_K] = {"Q5_K", 256, 176},
    [LGGUF_T_Q6_K] = {"Q6_K", 256, 210},    [LGGUF_T_Q8_K] = {"Q8_K", 256, 292},
    [LGGUF_T_IQ2_XXS] = {"IQ2_XXS", 256, 66}, [LGGUF_T_IQ2_XS] = {"IQ2_XS", 256, 74},
    [LGGUF_T_IQ3_XXS] = {"IQ3_XXS", 256, 98}, [LGGUF_T_IQ1_S] = {"IQ1_S", 256, 50},
    [LGGUF_T_IQ4_NL] = {"IQ4_NL", 32, 18},  [LGGUF_T_IQ3_S] = {"IQ3_S", 256, 110},
    [LGGUF_T_IQ2_S] = {"IQ2_S", 256, 82},   [LGGUF_T_IQ4_XS] = {"IQ4_XS", 256, 136},
    [LGGUF_T_I8] = {"I8", 1, 1},            [LGGUF_T_I16] = {"I16", 1, 2},
    [LGGUF_T_I32] = {"I32", 1, 4},          [LGGUF_T_I64] = {"I64", 1, 8},
    [LGGUF_T_F64] = {"F64", 1, 8},          [LGGUF_T_IQ1_M] = {"IQ1_M", 256, 56},
    [LGGUF_T_BF16] = {"BF16", 1, 2},        [LGGUF_T_TQ1_0] = {"TQ1_0", 256, 54},
    [LGGUF_T_TQ2_0] = {"TQ2_0", 256, 66},   [LGGUF_T_MXFP4] = {"MXFP4", 32, 17},
};

const char *lgguf_ttype_name(uint32_t type) {
    return type < LGGUF_T_COUNT && ttypes[type].blck ? ttypes[type].name : NULL;
}

bool lgguf_ttype_block(uint32_t type, uint32_t *block_elems, uint32_t *block_bytes) {
    if (type >= LGGUF_T_COUNT || !ttypes[type].blck) return false;
    *block_elems = ttypes[type].blck;
    *block_bytes = ttypes[type].size;
    return true;
}

bool lgguf_ttype_from_name(const char *name, uint32_t *out) {
    for (uint32_t t = 0; t < LGGUF_T_COUNT; t++)
        if (ttypes[t].blck && !strcasecmp(name, ttypes[t].name)) {
            *out = t;
            return true;
        }
    return false;
}

static const char *const vtype_names[LGGUF_VTYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
static const uint8_t vtype_sizes[LGGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *lgguf_vtype_name(uint32_t vtype) {
    return vtype < LGGUF_VTYPE_COUNT ? vtype_names[vtype] : "unknown";
}

bool lgguf_tensor_nbytes(uint32_t type, uint32_t n_dims, const uint64_t *ne, uint64_t *nbytes) {
    uint32_t blck, bsize;
    if (!lgguf_ttype_block(type, &blck, &bsize) || n_dims < 1 || n_dims > LGGUF_MAX_DIMS) return false;
    if (ne[0] % blck) return false;
    uint64_t n = ne[0] / blck * bsize; /* bytes of one row: ne[0] / blck blocks of bsize bytes */
    if (ne[0] / blck > UINT64_MAX / bsize) return false;
    for (uint32_t d = 1; d < n_dims; d++)
        if (__builtin_mul_overflow(n, ne[d], &n)) return false;
    *nbytes = n;
    return true;
}

/* ------------------------------------------------------------------------------------------------ */
/* Reader                                                                                            */
/* ------------------------------------------------------------------------------------------------ */

typedef struct rd {
    const uint8_t *base;
    size_t size;
    size_t pos;
    const char *path;
    shoal_error *err;
} rd;

static shoal_status rd_fail(rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static shoal_status rd_fail(rd *r, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return shoal_error_set(r->err, SHOAL_ERR_FORMAT, "%s: %s", r->path, msg);
}

static bool rd_need(rd *r, uint64_t n, const char *what) {
    if (n <= r->size - r->pos) return true;
    rd_fail(r, "truncated at offset %zu: %s needs %llu bytes, %zu left in the file", r->pos, what,
            (unsigned long long)n, r->size - r->pos);
    return false;
}

static bool rd_u32(rd *r, uint32_t *v, const char *what) {
    if (!rd_need(r, 4, what)) return false;
    memcpy(v, r->base + r->pos, 4);
    r->pos += 4;
    return true;
}

static bool rd_u64(rd *r, uint64_t *v, const char *what) {
    if (!rd_need(r, 8, what)) return false;
    memcpy(v, r->base + r->pos, 8);
    r->pos += 8;
    return true;
}

static bool rd_str(rd *r, lgguf_str *s, const char *what) {
    uint64_t len;
    if (!rd_u64(r, &len, what)) return false;
    if (len > r->size - r->pos) {
        rd_fail(r, "%s at offset %zu has length %llu, past the end of the file (%zu bytes left)", what,
                r->pos - 8, (unsigned long long)len, r->size - r->pos);
        return false;
    }
    s->ptr = (const char *)r->base + r->pos;
    s->len = len;
    r->pos += len;
    return true;
}

static void value_free(lgguf_value *v) {
    if (v->type != LGGUF_ARR || !v->arr.items) return;
    lgguf_value *items = (lgguf_value *)v->arr.items;
    for (uint64_t i = 0; i < v->arr.n; i++) value_free(&items[i]);
    free(items);
    v->arr.items = NULL;
}

/* Reads a value of type `type` (already read) at r->pos. `what` names it for messages. On failure any
 * partial allocation is freed and *v is left with no items. */
static bool rd_value(rd *r, uint32_t type, lgguf_value *v, unsigned depth, const char *what) {
    memset(v, 0, sizeof *v);
    if (type >= LGGUF_VTYPE_COUNT) {
        rd_fail(r, "%s has unknown value type %u at offset %zu", what, type, r->pos - 4);
        return false;
    }
    v->type = (lgguf_vtype)type;
    const uint8_t *p = r->base + r->pos;
    switch (v->type) {
    case LGGUF_U8: case LGGUF_I8: case LGGUF_BOOL:
        if (!rd_need(r, 1, what)) return false;
        if (v->type == LGGUF_U8) v->u = p[0];
        else if (v->type == LGGUF_I8) v->i = (int8_t)p[0];
        else v->b = p[0] != 0;
        r->pos += 1;
        return true;
    case LGGUF_U16: case LGGUF_I16: {
        uint16_t x;
        if (!rd_need(r, 2, what)) return false;
        memcpy(&x, p, 2);
        if (v->type == LGGUF_U16) v->u = x;
        else v->i = (int16_t)x;
        r->pos += 2;
        return true;
    }
    case LGGUF_U32: case LGGUF_I32: case LGGUF_F32: {
        uint32_t x;
        if (!rd_u32(r, &x, what)) return false;
        if (v->type == LGGUF_U32) v->u = x;
        else if (v->type == LGGUF_I32) v->i = (int32_t)x;
        else {
            float f;
            memcpy(&f, &x, 4);
            v->f = f;
        }
        return true;
    }
    case LGGUF_U64: case LGGUF_I64: case LGGUF_F64: {
        uint64_t x;
        if (!rd_u64(r, &x, what)) return false;
        if (v->type == LGGUF_U64) v->u = x;
        else if (v->type == LGGUF_I64) v->i = (int64_t)x;
        else memcpy(&v->f, &x, 8);
        return true;
    }
    case LGGUF_STR:
        return rd_str(r, &v->s, what);
    case LGGUF_ARR:
        break;
    case LGGUF_VTYPE_COUNT:
        return false;
    }

    /* An array. */
    uint32_t et;
    uint64_t n;
    size_t at = r->pos;
    if (!rd_u32(r, &et, what) || !rd_u64(r, &n, what)) return false;
    if (et >= LGGUF_VTYPE_COUNT) {
        rd_fail(r, "%s: array at offset %zu has unknown element type %u", what, at, et);
        return false;
    }
    v->arr.type = (lgguf_vtype)et;
    size_t left = r->size - r->pos;
    if (vtype_sizes[et]) {
        if (n > left / vtype_sizes[et]) {
            rd_fail(r, "%s: array at offset %zu has %llu %s elements, more than the %zu bytes left can hold", what,
                    at, (unsigned long long)n, vtype_names[et], left);
            return false;
        }
        v->arr.n = n;
        v->arr.raw = r->base + r->pos;
        r->pos += n * vtype_sizes[et];
        return true;
    }
    /* Strings take at least 8 bytes each, arrays at least 12: bound n before allocating. */
    size_t min_size = et == LGGUF_STR ? 8 : 12;
    if (n > left / min_size) {
        rd_fail(r, "%s: array at offset %zu has %llu %s elements, more than the %zu bytes left can hold", what, at,
                (unsigned long long)n, vtype_names[et], left);
        return false;
    }
    if (et == LGGUF_ARR && depth >= LGGUF_MAX_ARRAY_DEPTH) {
        rd_fail(r, "%s: arrays nested more than %d deep at offset %zu", what, LGGUF_MAX_ARRAY_DEPTH, at);
        return false;
    }
    lgguf_value *items = NULL;
    if (n) {
        items = calloc((size_t)n, sizeof *items);
        if (!items) {
            shoal_error_set(r->err, SHOAL_ERR_NOMEM, "%s: out of memory for an array of %llu elements", r->path,
                            (unsigned long long)n);
            return false;
        }
    }
    v->arr.items = items;
    for (uint64_t i = 0; i < n; i++) {
        bool ok = et == LGGUF_STR ? rd_str(r, &items[i].s, what) : rd_value(r, LGGUF_ARR, &items[i], depth + 1, what);
        items[i].type = (lgguf_vtype)et;
        if (!ok) {
            v->arr.n = i + 1; /* items[0..i] hold what was read; free them */
            value_free(v);
            v->arr.n = 0;
            return false;
        }
    }
    v->arr.n = n;
    return true;
}

static int str_cmp(lgguf_str a, lgguf_str b) {
    uint64_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, (size_t)n) : 0;
    if (c) return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

static int kv_cmp(const void *a, const void *b) {
    return str_cmp((*(lgguf_kv *const *)a)->key, (*(lgguf_kv *const *)b)->key);
}
static int tensor_name_cmp(const void *a, const void *b) {
    return str_cmp((*(lgguf_tensor *const *)a)->name, (*(lgguf_tensor *const *)b)->name);
}
static int tensor_off_cmp(const void *a, const void *b) {
    const lgguf_tensor *x = *(lgguf_tensor *const *)a, *y = *(lgguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Quotes a file string for a message: at most 60 bytes, non-printable bytes as '?'. */
static const char *quote(lgguf_str s, char buf[64]) {
    size_t n = s.len < 60 ? (size_t)s.len : 60;
    for (size_t i = 0; i < n; i++) buf[i] = isprint((unsigned char)s.ptr[i]) ? s.ptr[i] : '?';
    buf[n] = 0;
    return buf;
}

static shoal_status parse(lgguf *g, shoal_error *err) {
    rd r = {g->base, g->size, 0, g->path, err};
    char q[64];
    uint32_t magic;
    uint64_t nt, nkv;
    if (g->size < 4) return rd_fail(&r, "not a GGUF file: %zu bytes, too short for the magic", g->size);
    memcpy(&magic, g->base, 4);
    if (magic != LGGUF_MAGIC)
        return rd_fail(&r, "not a GGUF file: bad magic %02x %02x %02x %02x (expected \"GGUF\")", g->base[0],
                       g->base[1], g->base[2], g->base[3]);
    r.pos = 4;
    if (!rd_u32(&r, &g->version, "the version")) return SHOAL_ERR_FORMAT;
    if (g->version == 1) return rd_fail(&r, "GGUF version 1 is not supported (only versions 2 and 3)");
    if ((g->version & 0xffff) == 0 && g->version)
        return rd_fail(&r, "big-endian GGUF (version field 0x%08x) is not supported", g->version);
    if (g->version != 2 && g->version != 3)
        return rd_fail(&r, "unsupported GGUF version %u (only versions 2 and 3)", g->version);
    if (!rd_u64(&r, &nt, "the tensor count") || !rd_u64(&r, &nkv, "the metadata count")) return SHOAL_ERR_FORMAT;
    /* A metadata entry takes at least 13 bytes (key length, type, one byte of value), a tensor info 32. */
    if (nkv > (g->size - r.pos) / 13)
        return rd_fail(&r, "metadata count %llu is impossible in a file of %zu bytes", (unsigned long long)nkv,
                       g->size);
    if (nt > (g->size - r.pos) / 32)
        return rd_fail(&r, "tensor count %llu is impossible in a file of %zu bytes", (unsigned long long)nt, g->size);

    g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    g->tensors = calloc(nt ? (size_t)nt : 1, sizeof *g->tensors);
    g->kv_by_key = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv_by_key);
    g->tensor_by_name = calloc(nt ? (size_t)nt : 1, sizeof *g->tensor_by_name);
    if (!g->kv || !g->tensors || !g->kv_by_key || !g->tensor_by_name)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "%s: out of memory", g->path);

    g->alignment = LGGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < nkv; i++) {
        lgguf_kv *kv = &g->kv[i];
        char what[64];
        uint32_t type;
        snprintf(what, sizeof what, "metadata entry %llu", (unsigned long long)i);
        if (!rd_str(&r, &kv->key, what) || !rd_u32(&r, &type, what)) return SHOAL_ERR_FORMAT;
        snprintf(what, sizeof what, "metadata '%s'", quote(kv->key, q));
        if (!rd_value(&r, type, &kv->val, 0, what)) return err ? err->status : SHOAL_ERR_FORMAT;
        g->n_kv = i + 1; /* kv[0..n_kv) own their items (freed by lgguf_close) */
        if (lgguf_str_eq(kv->key, "general.alignment")) {
            if (kv->val.type != LGGUF_U32)
                return rd_fail(&r, "general.alignment has type %s, expected u32", vtype_names[kv->val.type]);
            if (kv->val.u == 0 || (kv->val.u & (kv->val.u - 1)))
                return rd_fail(&r, "general.alignment %llu is not a power of two", (unsigned long long)kv->val.u);
            g->alignment = (uint32_t)kv->val.u;
        }
    }
    for (uint64_t i = 0; i < nkv; i++) g->kv_by_key[i] = &g->kv[i];
    qsort(g->kv_by_key, (size_t)nkv, sizeof *g->kv_by_key, kv_cmp);
    for (uint64_t i = 1; i < nkv; i++)
        if (!str_cmp(g->kv_by_key[i - 1]->key, g->kv_by_key[i]->key))
            return rd_fail(&r, "metadata key '%s' appears twice", quote(g->kv_by_key[i]->key, q));

    for (uint64_t i = 0; i < nt; i++) {
        lgguf_tensor *t = &g->tensors[i];
        char what[96];
        size_t at = r.pos;
        snprintf(what, sizeof what, "tensor info %llu", (unsigned long long)i);
        if (!rd_str(&r, &t->name, what)) return SHOAL_ERR_FORMAT;
        snprintf(what, sizeof what, "tensor '%s'", quote(t->name, q));
        if (!rd_u32(&r, &t->n_dims, what)) return SHOAL_ERR_FORMAT;
        if (t->n_dims < 1 || t->n_dims > LGGUF_MAX_DIMS)
            return rd_fail(&r, "%s (info at offset %zu) has %u dimensions (1 to %d allowed)", what, at, t->n_dims,
                           LGGUF_MAX_DIMS);
        for (uint32_t d = 0; d < LGGUF_MAX_DIMS; d++) {
            t->ne[d] = 1;
            if (d < t->n_dims && !rd_u64(&r, &t->ne[d], what)) return SHOAL_ERR_FORMAT;
            if (t->ne[d] > (uint64_t)INT64_MAX)
                return rd_fail(&r, "%s: dimension %u is %llu (negative as ggml's int64)", what, d,
                               (unsigned long long)t->ne[d]);
        }
        if (!rd_u32(&r, &t->type, what) || !rd_u64(&r, &t->offset, what)) return SHOAL_ERR_FORMAT;
        uint32_t blck, bsize;
        if (!lgguf_ttype_block(t->type, &blck, &bsize))
            return rd_fail(&r, "%s has unknown ggml type %u", what, t->type);
        if (t->ne[0] % blck)
            return rd_fail(&r, "%s: row length %llu is not a multiple of the %s block size %u", what,
                           (unsigned long long)t->ne[0], ttypes[t->type].name, blck);
        uint64_t n = 1;
        for (uint32_t d = 0; d < LGGUF_MAX_DIMS; d++)
            if (__builtin_mul_overflow(n, t->ne[d], &n) || n > (uint64_t)INT64_MAX)
                return rd_fail(&r, "%s: element count overflows (shape %llu x %llu x %llu x %llu)", what,
                               (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                               (unsigned long long)t->ne[2], (unsigned long long)t->ne[3]);
        t->n_elems = n;
        if (!lgguf_tensor_nbytes(t->type, t->n_dims, t->ne, &t->nbytes))
            return rd_fail(&r, "%s: byte size overflows", what);
        if (t->offset % g->alignment)
            return rd_fail(&r, "%s: data offset %llu is not a multiple of the alignment %u", what,
                           (unsigned long long)t->offset, g->alignment);
        g->n_tensors = i + 1;
    }

    /* The data section starts at the next multiple of the alignment. */
    uint64_t data = ((uint64_t)r.pos + g->alignment - 1) / g->alignment * g->alignment;
    if (nt == 0) {
        g->data_offset = data <= g->size ? data : g->size;
    } else {
        if (data > g->size)
            return rd_fail(&r, "truncated: the tensor data section should start at offset %llu, the file has %zu bytes",
                           (unsigned long long)data, g->size);
        g->data_offset = data;
    }
    uint64_t data_size = g->size - g->data_offset;
    for (uint64_t i = 0; i < nt; i++) {
        lgguf_tensor *t = &g->tensors[i];
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return rd_fail(&r, "tensor '%s' (%llu bytes at data offset %llu) extends past the end of the file "
                           "(data section %llu bytes)", quote(t->name, q), (unsigned long long)t->nbytes,
                           (unsigned long long)t->offset, (unsigned long long)data_size);
        t->data = g->base + g->data_offset + t->offset;
        g->tensor_by_name[i] = t;
    }
    qsort(g->tensor_by_name, (size_t)nt, sizeof *g->tensor_by_name, tensor_name_cmp);
    for (uint64_t i = 1; i < nt; i++)
        if (!str_cmp(g->tensor_by_name[i - 1]->name, g->tensor_by_name[i]->name))
            return rd_fail(&r, "tensor name '%s' appears twice", quote(g->tensor_by_name[i]->name, q));
    /* Overlap check on a copy sorted by offset (the name index must stay sorted by name). */
    if (nt > 1) {
        lgguf_tensor **by_off = malloc((size_t)nt * sizeof *by_off);
        if (!by_off) return shoal_error_set(err, SHOAL_ERR_NOMEM, "%s: out of memory", g->path);
        for (uint64_t i = 0; i < nt; i++) by_off[i] = &g->tensors[i];
        qsort(by_off, (size_t)nt, sizeof *by_off, tensor_off_cmp);
        for (uint64_t i = 1; i < nt; i++) {
            const lgguf_tensor *a = by_off[i - 1], *b = by_off[i];
            if (a->offset + a->nbytes > b->offset) {
                char q2[64];
                rd_fail(&r, "tensors '%s' (data offset %llu, %llu bytes) and '%s' (data offset %llu) overlap",
                        quote(a->name, q), (unsigned long long)a->offset, (unsigned long long)a->nbytes,
                        quote(b->name, q2), (unsigned long long)b->offset);
                free(by_off);
                return SHOAL_ERR_FORMAT;
            }
        }
        free(by_off);
    }
    return SHOAL_OK;
}

static shoal_status open_common(lgguf *g, const char *name, lgguf **out, shoal_error *err) {
    g->path = strdup(name ? name : "(memory)");
    if (!g->path) {
        lgguf_close(g);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    }
    shoal_status st = parse(g, err);
    if (st != SHOAL_OK) {
        lgguf_close(g);
        return st;
    }
    *out = g;
    return SHOAL_OK;
}

shoal_status lgguf_open_mem(const void *bytes, size_t size, const char *name, lgguf **out, shoal_error *err) {
    *out = NULL;
    lgguf *g = calloc(1, sizeof *g);
    if (!g) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    g->base = bytes;
    g->size = size;
    return open_common(g, name, out, err);
}

shoal_status lgguf_open(const char *path, lgguf **out, shoal_error *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return shoal_error_set(err, SHOAL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return shoal_error_set(err, SHOAL_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: not a GGUF file: the file is empty", path);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return shoal_error_set(err, SHOAL_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    lgguf *g = calloc(1, sizeof *g);
    if (!g) {
        munmap(map, (size_t)st.st_size);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    }
    g->base = map;
    g->size = (size_t)st.st_size;
    g->mapped = true;
    return open_common(g, path, out, err);
}

void lgguf_close(lgguf *g) {
    if (!g) return;
    for (uint64_t i = 0; i < g->n_kv; i++) value_free(&g->kv[i].val);
    free(g->kv);
    free(g->tensors);
    free(g->kv_by_key);
    free(g->tensor_by_name);
    if (g->mapped) munmap((void *)g->base, g->size);
    free(g->path);
    free(g);
}

/* ------------------------------------------------------------------------------------------------ */
/* Lookup and typed access                                                                           */
/* ------------------------------------------------------------------------------------------------ */

bool lgguf_str_eq(lgguf_str s, const char *cstr) {
    size_t n = strlen(cstr);
    return s.len == n && !memcmp(s.ptr, cstr, n);
}

const lgguf_value *lgguf_get(const lgguf *g, const char *key) {
    lgguf_str k = {key, strlen(key)};
    size_t lo = 0, hi = (size_t)g->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(g->kv_by_key[mid]->key, k);
        if (!c) return &g->kv_by_key[mid]->val;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const lgguf_tensor *lgguf_tensor_find(const lgguf *g, const char *name) {
    lgguf_str k = {name, strlen(name)};
    size_t lo = 0, hi = (size_t)g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(g->tensor_by_name[mid]->name, k);
        if (!c) return g->tensor_by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static bool is_unsigned(lgguf_vtype t) { return t == LGGUF_U8 || t == LGGUF_U16 || t == LGGUF_U32 || t == LGGUF_U64; }
static bool is_signed(lgguf_vtype t) { return t == LGGUF_I8 || t == LGGUF_I16 || t == LGGUF_I32 || t == LGGUF_I64; }

bool lgguf_value_u64(const lgguf_value *v, uint64_t *out) {
    if (is_unsigned(v->type)) *out = v->u;
    else if (is_signed(v->type) && v->i >= 0) *out = (uint64_t)v->i;
    else return false;
    return true;
}

bool lgguf_value_i64(const lgguf_value *v, int64_t *out) {
    if (is_signed(v->type)) *out = v->i;
    else if (is_unsigned(v->type) && v->u <= (uint64_t)INT64_MAX) *out = (int64_t)v->u;
    else return false;
    return true;
}

bool lgguf_value_f64(const lgguf_value *v, double *out) {
    if (v->type != LGGUF_F32 && v->type != LGGUF_F64) return false;
    *out = v->f;
    return true;
}

/* Decodes element i of a fixed-size array into a scalar value. */
static bool arr_elem(const lgguf_value *arr, uint64_t i, lgguf_value *out) {
    if (arr->type != LGGUF_ARR || i >= arr->arr.n || !arr->arr.raw) return false;
    lgguf_vtype t = arr->arr.type;
    const uint8_t *p = arr->arr.raw + i * vtype_sizes[t];
    rd r = {p, vtype_sizes[t], 0, "", NULL};
    return rd_value(&r, t, out, 0, "");
}

bool lgguf_arr_u64(const lgguf_value *arr, uint64_t i, uint64_t *out) {
    lgguf_value v;
    return arr_elem(arr, i, &v) && lgguf_value_u64(&v, out);
}
bool lgguf_arr_i64(const lgguf_value *arr, uint64_t i, int64_t *out) {
    lgguf_value v;
    return arr_elem(arr, i, &v) && lgguf_value_i64(&v, out);
}
bool lgguf_arr_f64(const lgguf_value *arr, uint64_t i, double *out) {
    lgguf_value v;
    return arr_elem(arr, i, &v) && lgguf_value_f64(&v, out);
}

static shoal_status missing(const lgguf *g, const char *key, shoal_error *err) {
    return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: metadata key '%s' is missing", g->path, key);
}
static shoal_status wrong(const lgguf *g, const char *key, const lgguf_value *v, const char *expected,
                          shoal_error *err) {
    return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: metadata key '%s' has type %s, expected %s", g->path, key,
                           vtype_names[v->type], expected);
}

shoal_status lgguf_opt_u32(const lgguf *g, const char *key, uint32_t def, uint32_t *out, shoal_error *err) {
    const lgguf_value *v = lgguf_get(g, key);
    uint64_t x;
    if (!v) {
        *out = def;
        return SHOAL_OK;
    }
    if (!is_unsigned(v->type) && !is_signed(v->type)) return wrong(g, key, v, "an integer", err);
    if (!lgguf_value_u64(v, &x) || x > UINT32_MAX)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: metadata key '%s' is out of range (%lld)", g->path, key,
                               is_signed(v->type) ? (long long)v->i : (long long)v->u);
    *out = (uint32_t)x;
    return SHOAL_OK;
}

shoal_status lgguf_req_u32(const lgguf *g, const char *key, uint32_t *out, shoal_error *err) {
    if (!lgguf_get(g, key)) return missing(g, key, err);
    return lgguf_opt_u32(g, key, 0, out, err);
}

shoal_status lgguf_opt_i32(const lgguf *g, const char *key, int32_t def, int32_t *out, shoal_error *err) {
    const lgguf_value *v = lgguf_get(g, key);
    int64_t x;
    if (!v) {
        *out = def;
        return SHOAL_OK;
    }
    if (!is_unsigned(v->type) && !is_signed(v->type)) return wrong(g, key, v, "an integer", err);
    if (!lgguf_value_i64(v, &x) || x < INT32_MIN || x > INT32_MAX)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: metadata key '%s' is out of range", g->path, key);
    *out = (int32_t)x;
    return SHOAL_OK;
}

shoal_status lgguf_opt_f32(const lgguf *g, const char *key, float def, float *out, shoal_error *err) {
    const lgguf_value *v = lgguf_get(g, key);
    double x;
    if (!v) {
        *out = def;
        return SHOAL_OK;
    }
    if (!lgguf_value_f64(v, &x)) return wrong(g, key, v, "f32", err);
    *out = (float)x;
    return SHOAL_OK;
}

shoal_status lgguf_req_f32(const lgguf *g, const char *key, float *out, shoal_error *err) {
    if (!lgguf_get(g, key)) return missing(g, key, err);
    return lgguf_opt_f32(g, key, 0, out, err);
}

shoal_status lgguf_opt_bool(const lgguf *g, const char *key, bool def, bool *out, shoal_error *err) {
    const lgguf_value *v = lgguf_get(g, key);
    if (!v) {
        *out = def;
        return SHOAL_OK;
    }
    if (v->type != LGGUF_BOOL) return wrong(g, key, v, "bool", err);
    *out = v->b;
    return SHOAL_OK;
}

shoal_status lgguf_req_str(const lgguf *g, const char *key, lgguf_str *out, shoal_error *err) {
    const lgguf_value *v = lgguf_get(g, key);
    if (!v) return missing(g, key, err);
    if (v->type != LGGUF_STR) return wrong(g, key, v, "string", err);
    *out = v->s;
    return SHOAL_OK;
}

shoal_status lgguf_opt_arr(const lgguf *g, const char *key, lgguf_vtype elem, const lgguf_value **out,
                           shoal_error *err) {
    const lgguf_value *v = lgguf_get(g, key);
    *out = NULL;
    if (!v) return SHOAL_OK;
    if (v->type != LGGUF_ARR) return wrong(g, key, v, "array", err);
    if (elem != LGGUF_VTYPE_COUNT && v->arr.type != elem)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: metadata key '%s' is an array of %s, expected %s",
                               g->path, key, vtype_names[v->arr.type], vtype_names[elem]);
    *out = v;
    return SHOAL_OK;
}

shoal_status lgguf_req_arr(const lgguf *g, const char *key, lgguf_vtype elem, const lgguf_value **out,
                           shoal_error *err) {
    *out = NULL;
    if (!lgguf_get(g, key)) return missing(g, key, err);
    return lgguf_opt_arr(g, key, elem, out, err);
}

/* ------------------------------------------------------------------------------------------------ */
/* Writer                                                                                            */
/* ------------------------------------------------------------------------------------------------ */

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} wbuf;

static void wb_put(wbuf *b, const void *src, size_t n) {
    if (b->oom || n == 0) return; /* n == 0 may come with src == NULL (an empty buffer) */
    if (n > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void wb_u32(wbuf *b, uint32_t v) { wb_put(b, &v, 4); }
static void wb_u64(wbuf *b, uint64_t v) { wb_put(b, &v, 8); }
static void wb_str(wbuf *b, const char *s, uint64_t len) {
    wb_u64(b, len);
    wb_put(b, s, (size_t)len);
}

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[LGGUF_MAX_DIMS];
    uint64_t nbytes, offset;
    const void *data;
    lgguf_fill_fn fill;
    void *user;
} wtensor;

struct lgguf_writer {
    wbuf kv;         /* serialized metadata entries */
    uint64_t n_kv;
    char **keys;     /* for the duplicate check */
    uint32_t alignment;
    wtensor *t;
    uint64_t n_t, cap_t;
};

lgguf_writer *lgguf_writer_new(void) {
    lgguf_writer *w = calloc(1, sizeof *w);
    if (w) w->alignment = LGGUF_DEFAULT_ALIGNMENT;
    return w;
}

void lgguf_writer_free(lgguf_writer *w) {
    if (!w) return;
    free(w->kv.p);
    for (uint64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    free(w->keys);
    for (uint64_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w);
}

uint64_t lgguf_writer_tensor_count(const lgguf_writer *w) { return w->n_t; }

/* Starts a metadata entry: checks the key is new and writes it and the type. */
static shoal_status w_key(lgguf_writer *w, const char *key, lgguf_vtype type, shoal_error *err) {
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key))
            return shoal_error_set(err, SHOAL_ERR_ARG, "gguf writer: metadata key '%s' added twice", key);
    char **keys = realloc(w->keys, (size_t)(w->n_kv + 1) * sizeof *keys);
    if (!keys) return shoal_error_set(err, SHOAL_ERR_NOMEM, "gguf writer: out of memory");
    w->keys = keys;
    if (!(keys[w->n_kv] = strdup(key))) return shoal_error_set(err, SHOAL_ERR_NOMEM, "gguf writer: out of memory");
    w->n_kv++;
    wb_str(&w->kv, key, strlen(key));
    wb_u32(&w->kv, type);
    return SHOAL_OK;
}

static shoal_status w_done(lgguf_writer *w, shoal_error *err) {
    return w->kv.oom ? shoal_error_set(err, SHOAL_ERR_NOMEM, "gguf writer: out of memory") : SHOAL_OK;
}

shoal_status lgguf_w_u32(lgguf_writer *w, const char *key, uint32_t v, shoal_error *err) {
    shoal_status st = w_key(w, key, LGGUF_U32, err);
    if (st) return st;
    wb_u32(&w->kv, v);
    return w_done(w, err);
}
shoal_status lgguf_w_i32(lgguf_writer *w, const char *key, int32_t v, shoal_error *err) {
    shoal_status st = w_key(w, key, LGGUF_I32, err);
    if (st) return st;
    wb_put(&w->kv, &v, 4);
    return w_done(w, err);
}
shoal_status lgguf_w_u64(lgguf_writer *w, const char *key, uint64_t v, shoal_error *err) {
    shoal_status st = w_key(w, key, LGGUF_U64, err);
    if (st) return st;
    wb_u64(&w->kv, v);
    return w_done(w, err);
}
shoal_status lgguf_w_f32(lgguf_writer *w, const char *key, float v, shoal_error *err) {
    shoal_status st = w_key(w, key, LGGUF_F32, err);
    if (st) return st;
    wb_put(&w->kv, &v, 4);
    return w_done(w, err);
}
shoal_status lgguf_w_bool(lgguf_writer *w, const char *key, bool v, shoal_error *err) {
    shoal_status st = w_key(w, key, LGGUF_BOOL, err);
    uint8_t b = v;
    if (st) return st;
    wb_put(&w->kv, &b, 1);
    return w_done(w, err);
}
shoal_status lgguf_w_str(lgguf_writer *w, const char *key, const char *s, size_t len, shoal_error *err) {
    shoal_status st = w_key(w, key, LGGUF_STR, err);
    if (st) return st;
    wb_str(&w->kv, s, len);
    return w_done(w, err);
}

shoal_status lgguf_w_arr(lgguf_writer *w, const char *key, lgguf_vtype elem, uint64_t n, const void *elems,
                         shoal_error *err) {
    if (elem >= LGGUF_VTYPE_COUNT || !vtype_sizes[elem])
        return shoal_error_set(err, SHOAL_ERR_ARG, "gguf writer: '%s': lgguf_w_arr takes fixed-size elements", key);
    if (n > SIZE_MAX / vtype_sizes[elem]) return shoal_error_set(err, SHOAL_ERR_ARG, "gguf writer: '%s': too long", key);
    shoal_status st = w_key(w, key, LGGUF_ARR, err);
    if (st) return st;
    wb_u32(&w->kv, elem);
    wb_u64(&w->kv, n);
    wb_put(&w->kv, elems, (size_t)n * vtype_sizes[elem]);
    return w_done(w, err);
}

shoal_status lgguf_w_arr_str(lgguf_writer *w, const char *key, uint64_t n, const char *const *strs,
                             const uint32_t *lens, shoal_error *err) {
    shoal_status st = w_key(w, key, LGGUF_ARR, err);
    if (st) return st;
    wb_u32(&w->kv, LGGUF_STR);
    wb_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++) wb_str(&w->kv, strs[i], lens ? lens[i] : strlen(strs[i]));
    return w_done(w, err);
}

/* Serializes a value read by lgguf (without its type tag). */
static void w_value_body(wbuf *b, const lgguf_value *v) {
    switch (v->type) {
    case LGGUF_STR:
        wb_str(b, v->s.ptr, v->s.len);
        return;
    case LGGUF_ARR:
        wb_u32(b, v->arr.type);
        wb_u64(b, v->arr.n);
        if (v->arr.raw) wb_put(b, v->arr.raw, (size_t)v->arr.n * vtype_sizes[v->arr.type]);
        else
            for (uint64_t i = 0; i < v->arr.n; i++) w_value_body(b, &v->arr.items[i]);
        return;
    case LGGUF_BOOL: {
        uint8_t x = v->b;
        wb_put(b, &x, 1);
        return;
    }
    case LGGUF_F32: {
        float f = (float)v->f;
        wb_put(b, &f, 4);
        return;
    }
    case LGGUF_F64:
        wb_put(b, &v->f, 8);
        return;
    default: {
        uint64_t x = is_signed(v->type) ? (uint64_t)v->i : v->u; /* little-endian: low bytes first */
        wb_put(b, &x, vtype_sizes[v->type]);
        return;
    }
    }
}

shoal_status lgguf_w_value(lgguf_writer *w, const char *key, const lgguf_value *v, shoal_error *err) {
    if (v->type >= LGGUF_VTYPE_COUNT) return shoal_error_set(err, SHOAL_ERR_ARG, "gguf writer: bad value type");
    shoal_status st = w_key(w, key, v->type, err);
    if (st) return st;
    w_value_body(&w->kv, v);
    return w_done(w, err);
}

shoal_status lgguf_w_alignment(lgguf_writer *w, uint32_t alignment, shoal_error *err) {
    if (!alignment || (alignment & (alignment - 1)))
        return shoal_error_set(err, SHOAL_ERR_ARG, "gguf writer: alignment %u is not a power of two", alignment);
    shoal_status st = lgguf_w_u32(w, "general.alignment", alignment, err);
    if (st == SHOAL_OK) w->alignment = alignment;
    return st;
}

shoal_status lgguf_w_tensor(lgguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const uint64_t *ne, const void *data, lgguf_fill_fn fill, void *user,
                            shoal_error *err) {
    uint64_t nbytes;
    if (strlen(name) > LGGUF_MAX_NAME)
        return shoal_error_set(err, SHOAL_ERR_ARG, "gguf writer: tensor name '%s' is longer than %d bytes", name,
                               LGGUF_MAX_NAME);
    if (!lgguf_tensor_nbytes(type, n_dims, ne, &nbytes))
        return shoal_error_set(err, SHOAL_ERR_ARG, "gguf writer: tensor '%s': bad type %u or shape", name, type);
    for (uint64_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return shoal_error_set(err, SHOAL_ERR_ARG, "gguf writer: tensor '%s' added twice", name);
    if (!data && !fill) return shoal_error_set(err, SHOAL_ERR_ARG, "gguf writer: tensor '%s' has no data", name);
    if (w->n_t == w->cap_t) {
        uint64_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t) return shoal_error_set(err, SHOAL_ERR_NOMEM, "gguf writer: out of memory");
        w->t = t;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return shoal_error_set(err, SHOAL_ERR_NOMEM, "gguf writer: out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < LGGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->nbytes = nbytes;
    t->data = fill ? NULL : data;
    t->fill = fill;
    t->user = user;
    w->n_t++;
    return SHOAL_OK;
}

static bool write_zeros(FILE *f, uint64_t n) {
    static const uint8_t zeros[64];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (fwrite(zeros, 1, k, f) != k) return false;
        n -= k;
    }
    return true;
}

shoal_status lgguf_writer_write(lgguf_writer *w, const char *path, lgguf_progress_fn progress, void *puser,
                                shoal_error *err) {
    shoal_status st = SHOAL_OK;
    wbuf head = {0};
    FILE *f = NULL;
    uint8_t *chunk = NULL;
    char *tmp = NULL;
    uint64_t total = 0, done = 0, off = 0;
    const uint64_t chunk_target = 16u << 20;

    if (w->kv.oom) return shoal_error_set(err, SHOAL_ERR_NOMEM, "gguf writer: out of memory");
    wb_u32(&head, LGGUF_MAGIC);
    wb_u32(&head, LGGUF_VERSION);
    wb_u64(&head, w->n_t);
    wb_u64(&head, w->n_kv);
    wb_put(&head, w->kv.p, w->kv.n);
    for (uint64_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        t->offset = off;
        wb_str(&head, t->name, strlen(t->name));
        wb_u32(&head, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) wb_u64(&head, t->ne[d]);
        wb_u32(&head, t->type);
        wb_u64(&head, t->offset);
        off += (t->nbytes + w->alignment - 1) / w->alignment * w->alignment;
        total += t->nbytes;
    }
    if (head.oom) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "gguf writer: out of memory");
        goto fail;
    }
    size_t plen = strlen(path);
    if (!(tmp = malloc(plen + 5))) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "gguf writer: out of memory");
        goto fail;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    if (!(f = fopen(tmp, "wb"))) {
        st = shoal_error_set(err, SHOAL_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        goto fail;
    }
    uint64_t pad = (w->alignment - head.n % w->alignment) % w->alignment;
    if (fwrite(head.p, 1, head.n, f) != head.n || !write_zeros(f, pad)) goto io_fail;

    for (uint64_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        if (t->data) {
            if (t->nbytes && fwrite(t->data, 1, (size_t)t->nbytes, f) != t->nbytes) goto io_fail;
        } else {
            /* Whole rows per call, about chunk_target bytes. */
            uint64_t nrows = t->ne[1] * t->ne[2] * t->ne[3];
            uint64_t row = nrows ? t->nbytes / nrows : 0;
            uint64_t rows_per = row ? (chunk_target / row ? chunk_target / row : 1) : 1;
            uint64_t csize = rows_per * row < t->nbytes ? rows_per * row : t->nbytes;
            uint8_t *c = csize ? realloc(chunk, (size_t)csize) : chunk;
            if (csize && !c) {
                st = shoal_error_set(err, SHOAL_ERR_NOMEM, "gguf writer: out of memory for '%s'", t->name);
                goto fail;
            }
            chunk = c;
            for (uint64_t o = 0; o < t->nbytes; o += csize) {
                uint64_t n = t->nbytes - o < csize ? t->nbytes - o : csize;
                if ((st = t->fill(t->user, i, o, chunk, n, err)) != SHOAL_OK) goto fail;
                if (fwrite(chunk, 1, (size_t)n, f) != n) goto io_fail;
                if (progress && o + n < t->nbytes) progress(puser, done + o + n, total);
            }
        }
        done += t->nbytes;
        if (progress) progress(puser, done, total);
        if (i + 1 < w->n_t && !write_zeros(f, (w->alignment - t->nbytes % w->alignment) % w->alignment))
            goto io_fail;
    }
    if (fflush(f) != 0 || ferror(f)) goto io_fail;
    if (fclose(f) != 0) {
        f = NULL;
        goto io_fail;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        st = shoal_error_set(err, SHOAL_ERR_IO, "%s: cannot rename from %s: %s", path, tmp, strerror(errno));
        goto fail;
    }
    free(tmp);
    free(head.p);
    free(chunk);
    return SHOAL_OK;

io_fail:
    st = shoal_error_set(err, SHOAL_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
fail:
    if (f) fclose(f);
    if (tmp) remove(tmp);
    free(tmp);
    free(head.p);
    free(chunk);
    return st;
}
