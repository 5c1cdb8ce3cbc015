/*
 * lsafet.c: the safetensors reader (single files and sharded indexes) and the config.json reader.
 *
 * Invariant after a successful open: every tensor's [data, data + nbytes) lies inside its file's data
 * section, no two tensors of a file overlap, and names are unique across all shards.
 */
#include "lsafet.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *name;
    uint32_t size;
    int ldt;
} dtypes[] = {
    {"F32", 4, LDT_F32}, {"F16", 2, LDT_F16}, {"BF16", 2, LDT_BF16}, {"F64", 8, -1},     {"I64", 8, -1},
    {"U64", 8, -1},      {"I32", 4, -1},      {"U32", 4, -1},       {"I16", 2, -1},     {"U16", 2, -1},
    {"I8", 1, -1},       {"U8", 1, -1},       {"BOOL", 1, -1},      {"F8_E5M2", 1, -1}, {"F8_E4M3", 1, -1},
};

static shoal_status fmt_err(shoal_error *err, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static shoal_status fmt_err(shoal_error *err, const char *path, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: %s", path, msg);
}

/* A JSON number that is an exact non-negative integer no larger than 2^53. */
static bool json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d)) return false;
    *out = (uint64_t)d;
    return true;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp((*(lsafet_tensor *const *)a)->name, (*(lsafet_tensor *const *)b)->name);
}

typedef struct range {
    uint64_t begin, end;
    const char *name;
} range;

static int range_cmp(const void *a, const void *b) {
    const range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Parses one file's header and appends its tensors. */
static shoal_status parse_file(lsafet *s, size_t fi, shoal_error *err) {
    const lsafet_file *f = &s->files[fi];
    const char *path = f->path;
    shoal_status st = SHOAL_OK;
    cJSON *root = NULL;
    range *ranges = NULL;
    size_t n_ranges = 0;
    uint64_t hlen;

    if (f->size < 8) return fmt_err(err, path, "not a safetensors file: %zu bytes, too short for the header length", f->size);
    memcpy(&hlen, f->base, 8);
    if (hlen > f->size - 8)
        return fmt_err(err, path, "header length %llu is past the end of the file (%zu bytes)", (unsigned long long)hlen,
                       f->size);
    if (hlen > LSAFET_MAX_HEADER)
        return fmt_err(err, path, "header length %llu exceeds the format's limit of %u bytes", (unsigned long long)hlen,
                       LSAFET_MAX_HEADER);
    const char *json = (const char *)f->base + 8;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(json, (size_t)hlen, &end, false);
    if (!root) {
        size_t at = end ? (size_t)(end - json) : 0;
        return fmt_err(err, path, "the header is not valid JSON (error near header byte %zu)", at);
    }
    if (!cJSON_IsObject(root)) {
        st = fmt_err(err, path, "the header is not a JSON object");
        goto done;
    }
    uint64_t data_size = f->size - 8 - hlen;
    const uint8_t *data = f->base + 8 + hlen;
    size_t count = 0;
    for (cJSON *it = root->child; it; it = it->next) count++;
    if (!(ranges = calloc(count ? count : 1, sizeof *ranges))) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (cJSON *it = root->child; it; it = it->next) {
        const char *name = it->string ? it->string : "";
        if (!strcmp(name, "__metadata__")) continue;
        if (!cJSON_IsObject(it)) {
            st = fmt_err(err, path, "tensor '%.64s': entry is not an object", name);
            goto done;
        }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *offs = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs)) {
            st = fmt_err(err, path, "tensor '%.64s': needs \"dtype\" (string), \"shape\" and \"data_offsets\" (arrays)", name);
            goto done;
        }
        if (s->n_tensors == s->cap_tensors) {
            size_t cap = s->cap_tensors ? s->cap_tensors * 2 : 64;
            lsafet_tensor *nt = realloc(s->tensors, cap * sizeof *nt);
            if (!nt) {
                st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
                goto done;
            }
            s->tensors = nt;
            s->cap_tensors = cap;
        }
        lsafet_tensor *t = &s->tensors[s->n_tensors];
        memset(t, 0, sizeof *t);
        size_t di;
        for (di = 0; di < sizeof dtypes / sizeof dtypes[0]; di++)
            if (!strcmp(dt->valuestring, dtypes[di].name)) break;
        if (di == sizeof dtypes / sizeof dtypes[0]) {
            st = fmt_err(err, path, "tensor '%.64s': unknown dtype '%.16s'", name, dt->valuestring);
            goto done;
        }
        snprintf(t->dtype, sizeof t->dtype, "%s", dtypes[di].name);
        t->elem_size = dtypes[di].size;
        t->ldt = dtypes[di].ldt;
        int nd = cJSON_GetArraySize(shape);
        if (nd > LSAFET_MAX_DIMS) {
            st = fmt_err(err, path, "tensor '%.64s': %d dimensions (at most %d)", name, nd, LSAFET_MAX_DIMS);
            goto done;
        }
        t->n_dims = (uint32_t)nd;
        uint64_t n = 1;
        int d = 0;
        for (const cJSON *x = shape->child; x; x = x->next, d++) {
            if (!json_uint(x, &t->shape[d])) {
                st = fmt_err(err, path, "tensor '%.64s': shape[%d] is not a non-negative integer", name, d);
                goto done;
            }
            if (__builtin_mul_overflow(n, t->shape[d], &n)) {
                st = fmt_err(err, path, "tensor '%.64s': element count overflows", name);
                goto done;
            }
        }
        t->n_elems = n;
        if (__builtin_mul_overflow(n, (uint64_t)t->elem_size, &t->nbytes)) {
            st = fmt_err(err, path, "tensor '%.64s': byte size overflows", name);
            goto done;
        }
        uint64_t b, e;
        if (cJSON_GetArraySize(offs) != 2 || !json_uint(offs->child, &b) || !json_uint(offs->child->next, &e) || b > e) {
            st = fmt_err(err, path, "tensor '%.64s': data_offsets must be [begin, end] integers with begin <= end", name);
            goto done;
        }
        if (e > data_size) {
            st = fmt_err(err, path, "tensor '%.64s': data_offsets [%llu, %llu] extend past the end of the data (%llu bytes)",
                         name, (unsigned long long)b, (unsigned long long)e, (unsigned long long)data_size);
            goto done;
        }
        if (e - b != t->nbytes) {
            st = fmt_err(err, path, "tensor '%.64s': data_offsets span %llu bytes, but %llu %s elements need %llu", name,
                         (unsigned long long)(e - b), (unsigned long long)n, t->dtype, (unsigned long long)t->nbytes);
            goto done;
        }
        if (!(t->name = strdup(name))) {
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
            goto done;
        }
        t->data = data + b;
        t->file = fi;
        s->n_tensors++;
        ranges[n_ranges++] = (range){b, e, t->name};
    }
    qsort(ranges, n_ranges, sizeof *ranges, range_cmp);
    for (size_t i = 1; i < n_ranges; i++)
        if (ranges[i].begin < ranges[i - 1].end) {
            st = fmt_err(err, path, "tensors '%.64s' [%llu, %llu) and '%.64s' [%llu, ...) overlap", ranges[i - 1].name,
                         (unsigned long long)ranges[i - 1].begin, (unsigned long long)ranges[i - 1].end,
                         ranges[i].name, (unsigned long long)ranges[i].begin);
            goto done;
        }
done:
    free(ranges);
    cJSON_Delete(root);
    return st;
}

static shoal_status add_file(lsafet *s, const char *path, lmodel *m, shoal_error *err) {
    lsafet_file *nf = realloc(s->files, (s->n_files + 1) * sizeof *nf);
    if (!nf) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    s->files = nf;
    lsafet_file *f = &s->files[s->n_files];
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(path))) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    s->n_files++;
    if (m) return lmodel_map_file(m, path, &f->base, &f->size, err);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return shoal_error_set(err, SHOAL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return shoal_error_set(err, SHOAL_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: the file is empty", path);
    }
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return shoal_error_set(err, SHOAL_ERR_IO, "%s: cannot map: %s", path, strerror(e));
    f->base = p;
    f->size = (size_t)sb.st_size;
    f->own_map = true;
    return SHOAL_OK;
}

static shoal_status finish(lsafet *s, shoal_error *err) {
    s->by_name = malloc((s->n_tensors ? s->n_tensors : 1) * sizeof *s->by_name);
    if (!s->by_name) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->n_tensors; i++) s->by_name[i] = &s->tensors[i];
    qsort(s->by_name, s->n_tensors, sizeof *s->by_name, name_cmp);
    for (size_t i = 1; i < s->n_tensors; i++)
        if (!strcmp(s->by_name[i - 1]->name, s->by_name[i]->name))
            return fmt_err(err, s->path, "tensor '%.64s' appears twice", s->by_name[i]->name);
    return SHOAL_OK;
}

static char *read_small_file(const char *path, size_t max, size_t *len, shoal_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        shoal_error_set(err, SHOAL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= max) {
                shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: larger than %zu bytes", path, max);
                goto fail;
            }
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
                goto fail;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    if (ferror(f)) {
        shoal_error_set(err, SHOAL_ERR_IO, "%s: read error", path);
        goto fail;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

/* model.safetensors.index.json: {"weight_map": {"tensor": "shard file", ...}}; shards live beside it. */
static shoal_status open_index(lsafet *s, const char *path, lmodel *m, shoal_error *err) {
    size_t len;
    shoal_status st = SHOAL_OK;
    char *text = read_small_file(path, 64u << 20, &len, err);
    if (!text) return err ? err->status : SHOAL_ERR_IO;
    cJSON *root = cJSON_ParseWithLength(text, len);
    char *dir = strdup(path), *slash, *full = NULL;
    if (!dir) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        goto done;
    }
    slash = strrchr(dir, '/');
    if (slash) slash[1] = 0;
    else dir[0] = 0;
    const cJSON *map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(map)) {
        st = fmt_err(err, path, "%s", root ? "no \"weight_map\" object" : "not valid JSON");
        goto done;
    }
    size_t n_map = 0;
    for (const cJSON *it = map->child; it; it = it->next, n_map++) {
        if (!cJSON_IsString(it) || !it->valuestring[0] || strchr(it->valuestring, '/') || it->valuestring[0] == '.') {
            st = fmt_err(err, path, "weight_map entry '%.64s' does not name a shard file in the same folder",
                         it->string ? it->string : "");
            goto done;
        }
        bool seen = false;
        for (size_t f = 0; f < s->n_files && !seen; f++) {
            const char *base = strrchr(s->files[f].path, '/');
            seen = !strcmp(base ? base + 1 : s->files[f].path, it->valuestring);
        }
        if (seen) continue;
        free(full);
        if (!(full = malloc(strlen(dir) + strlen(it->valuestring) + 1))) {
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
            goto done;
        }
        strcpy(full, dir);
        strcat(full, it->valuestring);
        if ((st = add_file(s, full, m, err)) || (st = parse_file(s, s->n_files - 1, err))) goto done;
    }
    if ((st = finish(s, err))) goto done;
    /* The index and the shards must agree exactly. */
    for (const cJSON *it = map->child; it; it = it->next) {
        const lsafet_tensor *t = lsafet_find(s, it->string);
        const char *base = t ? strrchr(s->files[t->file].path, '/') : NULL;
        if (!t || strcmp(base ? base + 1 : s->files[t->file].path, it->valuestring)) {
            st = fmt_err(err, path, "weight_map says tensor '%.64s' is in %.64s, but it is not there", it->string,
                         it->valuestring);
            goto done;
        }
    }
    if (n_map != s->n_tensors)
        st = fmt_err(err, path, "the shards hold %zu tensors, the weight_map lists %zu", s->n_tensors, n_map);
done:
    free(full);
    free(dir);
    cJSON_Delete(root);
    free(text);
    return st;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

shoal_status lsafet_open(const char *path, lmodel *m, lsafet **out, shoal_error *err) {
    *out = NULL;
    lsafet *s = calloc(1, sizeof *s);
    shoal_status st;
    char *alt = NULL;
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        st = shoal_error_set(err, SHOAL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(sb.st_mode)) {
        if (!(alt = malloc(strlen(path) + 40))) {
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
            goto fail;
        }
        sprintf(alt, "%s/model.safetensors.index.json", path);
        if (stat(alt, &sb) == 0) st = open_index(s, alt, m, err);
        else {
            sprintf(alt, "%s/model.safetensors", path);
            if (stat(alt, &sb) != 0) {
                st = shoal_error_set(err, SHOAL_ERR_NOTFOUND, "%s: no model.safetensors.index.json or "
                                     "model.safetensors in this folder", path);
                goto fail;
            }
            if (!(st = add_file(s, alt, m, err)) && !(st = parse_file(s, 0, err))) st = finish(s, err);
        }
    } else if (ends_with(path, ".json")) {
        st = open_index(s, path, m, err);
    } else {
        if (!(st = add_file(s, path, m, err)) && !(st = parse_file(s, 0, err))) st = finish(s, err);
    }
    if (st) goto fail;
    free(alt);
    *out = s;
    return SHOAL_OK;
fail:
    free(alt);
    lsafet_close(s);
    return st;
}

shoal_status lsafet_open_mem(const void *bytes, size_t size, const char *name, lsafet **out, shoal_error *err) {
    *out = NULL;
    lsafet *s = calloc(1, sizeof *s);
    if (!s) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    s->files = calloc(1, sizeof *s->files);
    s->path = strdup(name ? name : "(memory)");
    if (!s->files || !s->path || !(s->files[0].path = strdup(s->path))) {
        lsafet_close(s);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    }
    s->n_files = 1;
    s->files[0].base = bytes;
    s->files[0].size = size;
    shoal_status st = parse_file(s, 0, err);
    if (!st) st = finish(s, err);
    if (st) {
        lsafet_close(s);
        return st;
    }
    *out = s;
    return SHOAL_OK;
}

void lsafet_close(lsafet *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n_tensors; i++) free(s->tensors[i].name);
    free(s->tensors);
    free(s->by_name);
    for (size_t i = 0; i < s->n_files; i++) {
        if (s->files[i].own_map && s->files[i].base) munmap((void *)s->files[i].base, s->files[i].size);
        free(s->files[i].path);
    }
    free(s->files);
    free(s->path);
    free(s);
}

const lsafet_tensor *lsafet_find(const lsafet *s, const char *name) {
    size_t lo = 0, hi = s->by_name ? s->n_tensors : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->by_name[mid]->name, name);
        if (!c) return s->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* ---- config.json ------------------------------------------------------------------------------------ */

static shoal_status cfg_u32(const cJSON *root, const char *name, const char *key, bool required, uint32_t def,
                            uint32_t *out, shoal_error *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    uint64_t v;
    if (!j || cJSON_IsNull(j)) {
        if (required) return fmt_err(err, name, "key \"%s\" is missing", key);
        *out = def;
        return SHOAL_OK;
    }
    if (!json_uint(j, &v) || v > UINT32_MAX)
        return fmt_err(err, name, "key \"%s\" must be a non-negative integer below 2^32", key);
    *out = (uint32_t)v;
    return SHOAL_OK;
}

static shoal_status cfg_f32(const cJSON *root, const char *name, const char *key, float def, float *out,
                            shoal_error *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return SHOAL_OK;
    }
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble)) return fmt_err(err, name, "key \"%s\" must be a number", key);
    *out = (float)j->valuedouble;
    return SHOAL_OK;
}

shoal_status lsafet_config_parse(const char *json, size_t len, const char *name, lmodel_config *c, shoal_error *err) {
    shoal_status st = SHOAL_OK;
    cJSON *root = cJSON_ParseWithLength(json, len);
    memset(c, 0, sizeof *c);
    if (!cJSON_IsObject(root)) {
        st = fmt_err(err, name, "not a JSON object");
        goto done;
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    bool llama = cJSON_IsString(mt) && !strcmp(mt->valuestring, "llama");
    if (!mt && cJSON_IsArray(archs) && cJSON_IsString(archs->child))
        llama = !strcmp(archs->child->valuestring, "LlamaForCausalLM");
    if (!llama) {
        st = shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: model_type %s%.32s%s is not supported (only llama)", name,
                             cJSON_IsString(mt) ? "'" : "", cJSON_IsString(mt) ? mt->valuestring : "(missing)",
                             cJSON_IsString(mt) ? "'" : "");
        goto done;
    }
    snprintf(c->arch, sizeof c->arch, "llama");
    if ((st = cfg_u32(root, name, "hidden_size", true, 0, &c->dim, err)) ||
        (st = cfg_u32(root, name, "num_hidden_layers", true, 0, &c->n_layers, err)) ||
        (st = cfg_u32(root, name, "num_attention_heads", true, 0, &c->n_heads, err)) ||
        (st = cfg_u32(root, name, "num_key_value_heads", false, c->n_heads, &c->n_kv_heads, err)) ||
        (st = cfg_u32(root, name, "head_dim", false, 0, &c->head_dim, err)) ||
        (st = cfg_u32(root, name, "intermediate_size", true, 0, &c->hidden_dim, err)) ||
        (st = cfg_u32(root, name, "vocab_size", true, 0, &c->vocab_size, err)) ||
        (st = cfg_u32(root, name, "max_position_embeddings", false, 0, &c->seq_len, err)) ||
        (st = cfg_f32(root, name, "rms_norm_eps", 1e-6f, &c->rms_eps, err)) ||
        (st = cfg_f32(root, name, "rope_theta", 10000.0f, &c->rope_theta, err)))
        goto done;
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (tie && !cJSON_IsBool(tie) && !cJSON_IsNull(tie)) {
        st = fmt_err(err, name, "key \"tie_word_embeddings\" must be true or false");
        goto done;
    }
    c->tied_embeddings = cJSON_IsTrue(tie);
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(root, "attention_bias");
    const cJSON *mbias = cJSON_GetObjectItemCaseSensitive(root, "mlp_bias");
    if (cJSON_IsTrue(bias) || cJSON_IsTrue(mbias)) {
        st = shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: attention_bias / mlp_bias are not supported", name);
        goto done;
    }
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (cJSON_IsString(act) && strcmp(act->valuestring, "silu")) {
        st = shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: hidden_act '%.32s' is not supported (only silu)", name,
                             act->valuestring);
        goto done;
    }
    /* transformers >= 5 writes the rope settings as one object, "rope_parameters" (rope_theta inside it,
     * rope_type "default" or "llama3" with the scaling keys beside it); older versions write rope_theta at
     * the top and the scaling as "rope_scaling". Both are read; rope_parameters wins. */
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    if (rp && !cJSON_IsNull(rp)) {
        if (!cJSON_IsObject(rp)) {
            st = fmt_err(err, name, "key \"rope_parameters\" must be an object");
            goto done;
        }
        if ((st = cfg_f32(rp, name, "rope_theta", c->rope_theta, &c->rope_theta, err)))
            goto done;
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(rp, "rope_type");
        rs = cJSON_IsString(type) && !strcmp(type->valuestring, "default") ? NULL : rp;
    }
    if (rs && !cJSON_IsNull(rs)) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
        if (!type) type = cJSON_GetObjectItemCaseSensitive(rs, "type");
        if (!cJSON_IsObject(rs) || !cJSON_IsString(type) || strcmp(type->valuestring, "llama3")) {
            st = shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "%s: rope_scaling of type %.32s is not supported (only "
                                 "llama3)", name, cJSON_IsString(type) ? type->valuestring : "(missing)");
            goto done;
        }
        lmodel_rope_scaling *r = &c->rope_scaling;
        r->enabled = true;
        if ((st = cfg_f32(rs, name, "factor", 8.0f, &r->factor, err)) ||
            (st = cfg_f32(rs, name, "low_freq_factor", 1.0f, &r->low_freq_factor, err)) ||
            (st = cfg_f32(rs, name, "high_freq_factor", 4.0f, &r->high_freq_factor, err)) ||
            (st = cfg_u32(rs, name, "original_max_position_embeddings", false, 8192, &r->original_context, err)))
            goto done;
    }
done:
    cJSON_Delete(root);
    return st;
}

shoal_status lsafet_config(const char *path, lmodel_config *cfg, shoal_error *err) {
    size_t len;
    char *text = read_small_file(path, 16u << 20, &len, err);
    if (!text) return err ? err->status : SHOAL_ERR_IO;
    shoal_status st = lsafet_config_parse(text, len, path, cfg, err);
    free(text);
    return st;
}
