/*
 * nmodels.c: the preloaded-model registry (--nn-preload NAME:GGML:AUTO|CPU|GPU:PATH) and the lifetime of
 * the per-guest state (shoal_nn_ctx) of both guest inference modules. See shoal.h section 9.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "nn.h"

_Thread_local uint64_t nn_trace_bytes;

uint64_t nn_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int32_t nn_fail(shoal_nn_ctx *ctx, int32_t code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->last_error, sizeof ctx->last_error, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- registry ------------------------------------------------------------------------------------ */

shoal_status shoal_nn_registry_new(shoal_nn_registry **out, shoal_error *err) {
    if (!out)
        return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_nn_registry_new: NULL argument");
    *out = calloc(1, sizeof **out);
    return *out ? SHOAL_OK : shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
}

void shoal_nn_registry_free(shoal_nn_registry *reg) {
    if (!reg)
        return;
    for (uint32_t i = 0; i < reg->n; i++) {
        if (reg->models[i].owned)
            shoal_model_free(reg->models[i].model);
        free(reg->models[i].name);
        free(reg->models[i].path);
        free(reg->models[i].spec);
    }
    free(reg->models);
    free(reg);
}

nmodel *nmodels_lookup(const shoal_nn_registry *reg, const char *name, size_t len) {
    for (uint32_t i = 0; reg && i < reg->n; i++)
        if (strlen(reg->models[i].name) == len && !memcmp(reg->models[i].name, name, len))
            return &reg->models[i];
    return NULL;
}

shoal_model *shoal_nn_registry_find(const shoal_nn_registry *reg, const char *name, size_t len) {
    nmodel *m = name ? nmodels_lookup(reg, name, len) : NULL;
    return m ? m->model : NULL;
}

/* Appends an entry; takes name, path and spec (malloc'd) in every case. */
static shoal_status registry_push(shoal_nn_registry *reg, char *name, char *path, char *spec, shoal_model *model,
                                  bool owned, shoal_error *err) {
    if (nmodels_lookup(reg, name, strlen(name))) {
        shoal_error_set(err, SHOAL_ERR_ARG, "a model named '%s' is already registered", name);
        goto fail;
    }
    if (reg->n == reg->cap) {
        uint32_t cap = reg->cap ? reg->cap * 2 : 4;
        nmodel *grown = realloc(reg->models, cap * sizeof *grown);
        if (!grown) {
            shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
            goto fail;
        }
        reg->models = grown;
        reg->cap = cap;
    }
    nmodel *m = &reg->models[reg->n++];
    memset(m, 0, sizeof *m);
    m->name = name;
    m->path = path;
    m->spec = spec;
    m->model = model;
    m->owned = owned;
    if (model)
        shoal_model_get_info(model, &m->info);
    return SHOAL_OK;
fail:
    if (owned)
        shoal_model_free(model);
    free(name);
    free(path);
    free(spec);
    return err ? err->status : SHOAL_ERR_ARG;
}

shoal_status shoal_nn_registry_add(shoal_nn_registry *reg, const char *name, shoal_model *model, shoal_error *err) {
    if (!reg || !name || !*name || !model)
        return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_nn_registry_add: NULL or empty argument");
    char *n = strdup(name), *p = strdup(""), *sp = strdup("");
    if (!n || !p || !sp) {
        free(n);
        free(p);
        free(sp);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    }
    return registry_push(reg, n, p, sp, model, false, err);
}

shoal_status shoal_nn_registry_preload(shoal_nn_registry *reg, const char *spec, uint32_t n_threads,
                                       shoal_error *err) {
    if (!reg || !spec)
        return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_nn_registry_preload: NULL argument");
    /* NAME:ENCODING:TARGET:PATH; the path is everything after the third colon (it may contain colons). */
    const char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *c3 = c2 ? strchr(c2 + 1, ':') : NULL;
    if (!c3 || c1 == spec || !c3[1])
        return shoal_error_set(err, SHOAL_ERR_ARG, "--nn-preload '%s': expected NAME:GGML:AUTO|CPU|GPU:PATH", spec);
    size_t enc_len = (size_t)(c2 - c1 - 1), tgt_len = (size_t)(c3 - c2 - 1);
    if (enc_len != 4 || strncasecmp(c1 + 1, "ggml", 4))
        return shoal_error_set(err, SHOAL_ERR_ARG, "--nn-preload '%s': encoding must be GGML", spec);
    int target; /* 0 cpu, 1 gpu, 3 auto */
    if (tgt_len == 3 && !strncasecmp(c2 + 1, "cpu", 3))
        target = 0;
    else if (tgt_len == 3 && !strncasecmp(c2 + 1, "gpu", 3))
        target = 1;
    else if (tgt_len == 4 && !strncasecmp(c2 + 1, "auto", 4))
        target = 3;
    else
        return shoal_error_set(err, SHOAL_ERR_ARG, "--nn-preload '%s': target must be AUTO, CPU or GPU", spec);
    char *name = strndup(spec, (size_t)(c1 - spec)), *path = strdup(c3 + 1);
    /* The spec as actor state records it: a resume may run in another directory, so the path is made
     * absolute when it exists; the target stays what was asked (AUTO resolves again where it resumes). */
    char *abs = realpath(c3 + 1, NULL), *rec = NULL;
    static const char *const targets[] = {"CPU", "GPU", "", "AUTO"};
    if (name && asprintf(&rec, "%s:GGML:%s:%s", name, targets[target], abs ? abs : c3 + 1) < 0)
        rec = NULL;
    free(abs);
    if (!name || !path || !rec) {
        free(name);
        free(path);
        free(rec);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    }
    struct stat sb;
    if (stat(path, &sb) != 0) /* registered as missing: guests get ModelNotFound (103) */
        return registry_push(reg, name, path, rec, NULL, true, err);
    shoal_model_options mo = {.n_threads = n_threads, .backend = target == 0 ? "cpu" : "cuda"};
    shoal_model *model = NULL;
    shoal_status st = shoal_model_load(path, &mo, &model, err);
    if (st != SHOAL_OK && target == 3) { /* AUTO: the GPU when there is one, else the CPU */
        mo.backend = "cpu";
        st = shoal_model_load(path, &mo, &model, err);
    }
    if (st != SHOAL_OK) {
        free(name);
        free(path);
        free(rec);
        return st;
    }
    return registry_push(reg, name, path, rec, model, true, err);
}

/* ---- per-guest state ----------------------------------------------------------------------------- */

shoal_status shoal_nn_ctx_new(shoal_nn_registry *reg, shoal_nn_ctx **out, shoal_error *err) {
    if (!reg || !out)
        return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_nn_ctx_new: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    (*out)->reg = reg;
    return SHOAL_OK;
}

void shoal_nn_ctx_free(shoal_nn_ctx *ctx) {
    if (!ctx)
        return;
    nwasinn_free_all(ctx);
    for (uint32_t i = 0; i < NN_MAX_SESSIONS; i++)
        ngen_free(ctx->sessions[i]);
    free(ctx);
}

shoal_status shoal_nn_add_imports(shoal_nn_ctx *ctx, shoal_imports *imports, shoal_error *err) {
    if (!ctx || !imports)
        return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_nn_add_imports: NULL argument");
    shoal_status st = nwasinn_add_imports(ctx, imports, err);
    if (st == SHOAL_OK)
        st = nllm_add_imports(ctx, imports, err);
    return st != SHOAL_OK ? st : nsnap_add_imports(ctx, imports, err);
}

const char *shoal_nn_ctx_last_error(const shoal_nn_ctx *ctx) { return ctx ? ctx->last_error : ""; }

uint64_t shoal_nn_ctx_device_ns(const shoal_nn_ctx *ctx) {
    if (!ctx)
        return 0;
    uint64_t ns = ctx->device_ns;
    return ns;
}
