/* lbackend.c: choosing a backend by name and binding models to it. */
#include "lbackend.h"

#include <string.h>

#ifdef SHOAL_HAVE_CUDA
#include "lcuda.h"
#endif

size_t lkv_layer_bytes(const lkv_cache *kv) {
    size_t elem = kv->dtype == LDT_F16 ? 2 : 4;
    return (size_t)kv->n_ctx * kv->kv_dim * elem;
}

shoal_status lbackend_create(const char *name, const lbackend_opts *opts, lbackend **out, shoal_error *err) {
    static const lbackend_opts defaults = {0};
    *out = NULL;
    if (!opts)
        opts = &defaults;
    if (!name || !strcmp(name, "cpu"))
        return lcpu_create(opts, out, err);
    if (!strcmp(name, "cuda")) {
#ifdef SHOAL_HAVE_CUDA
        return lcuda_create(opts, out, err);
#else
        return shoal_error_set(err, SHOAL_ERR_DEVICE,
                               "this shoal was built without the CUDA backend (nvcc was not found at build time)");
#endif
    }
    return shoal_error_set(err, SHOAL_ERR_NOTFOUND, "unknown backend '%s' (cpu, cuda)", name);
}

void lbackend_destroy(lbackend *be) {
    if (be && be->destroy)
        be->destroy(be);
}

shoal_status lbackend_attach(lbackend *be, lmodel *m, shoal_error *err) {
    if (m->backend)
        return shoal_error_set(err, SHOAL_ERR_ARG, "%s: the model is already bound to backend %s", m->path,
                               m->backend->name);
    shoal_status st = be->model_init(be, m, err);
    if (st)
        return st;
    m->backend = be;
    return SHOAL_OK;
}
