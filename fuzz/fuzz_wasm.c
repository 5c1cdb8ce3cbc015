/*
 * fuzz_wasm.c: libFuzzer target over the whole Wasm path of the public API: decode + validate +
 * translate (shoal_module_load), instantiation against stub imports, and a fuel-bounded call of every
 * exported function with zero-valued arguments.
 *
 * Stub imports: for each import module name the input uses, a module is synthesized (spectest_wasm.c)
 * that exports, under each imported field, something of the requested kind and type: functions are host
 * functions returning zeros (imported by the stub and re-exported, so host calls get fuzzed too), tables,
 * memories and globals are defined with the requested limits and types. Imports that cannot be satisfied
 * (the same field asked for twice with different kinds, limits over our caps) simply make instantiation
 * fail, which is a legitimate outcome.
 *
 * Resource caps keep one input cheap: memories at most FZ_MAX_PAGES pages, tables FZ_MAX_ELEMS entries,
 * FZ_FUEL per call (and for the start function), FZ_MAX_DEPTH nested calls.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal.h"
#include "spectest_wasm.h"

#define FZ_MAX_PAGES 64 /* 4 MiB */
#define FZ_MAX_ELEMS 4096
#define FZ_FUEL 200000
#define FZ_MAX_DEPTH 500
#define FZ_MAX_IMPORTS 256
#define FZ_MAX_EXPORT_CALLS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct FzState {
    shoal_imports *imports;
    shoal_module *stub_modules[FZ_MAX_IMPORTS];
    shoal_instance *stub_instances[FZ_MAX_IMPORTS];
    uint32_t nstubs;
    uint32_t nresults[FZ_MAX_IMPORTS]; /* per import: result count of its host function (the user data) */
    char sigs[FZ_MAX_IMPORTS][64];     /* per import: its function signature */
} FzState;

static shoal_status fz_host_zero(shoal_call *call, const shoal_val *args, shoal_val *results, void *user) {
    (void)call;
    (void)args;
    uint32_t n = *(const uint32_t *)user;
    memset(results, 0, n * sizeof *results);
    return SHOAL_OK;
}

static void fz_config(shoal_instance_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->limits.fuel = FZ_FUEL;
    cfg->limits.max_memory_pages = FZ_MAX_PAGES;
    cfg->limits.max_table_elems = FZ_MAX_ELEMS;
    cfg->limits.max_call_depth = FZ_MAX_DEPTH;
}

/* Builds, instantiates and registers the stub for import module `name` (imports[first..] with that name). */
static void fz_stub(FzState *s, const shoal_module *m, uint32_t nimports, uint32_t first) {
    shoal_extern_desc d0;
    SpwItem items[FZ_MAX_IMPORTS];
    char host[32];
    uint32_t n = 0;
    uint8_t *bytes = NULL;
    size_t len = 0;
    shoal_module *stub = NULL;
    shoal_instance *inst = NULL;
    shoal_instance_config cfg;

    if (!shoal_module_import(m, first, &d0) || s->nstubs >= FZ_MAX_IMPORTS)
        return;
    snprintf(host, sizeof host, "fuzz.host.%u", s->nstubs);
    for (uint32_t i = first; i < nimports && n < FZ_MAX_IMPORTS; i++) {
        shoal_extern_desc d;
        if (!shoal_module_import(m, i, &d) || strcmp(d.module, d0.module))
            continue;
        bool dup = false;
        for (uint32_t k = 0; k < n; k++)
            dup |= !strcmp(items[k].name, d.name);
        if (dup)
            continue;
        SpwItem *it = &items[n];
        memset(it, 0, sizeof *it);
        it->name = d.name;
        it->kind = d.kind;
        it->valtype = d.valtype;
        it->mutable_global = d.mutable_global;
        it->min = d.min;
        it->max = d.max;
        it->has_max = d.has_max;
        if (d.kind == SHOAL_EXTERN_FUNC) {
            if (!spw_signature(&d.func, s->sigs[i], sizeof s->sigs[i]))
                continue;
            it->sig = s->sigs[i];
            s->nresults[i] = d.func.nresults;
            if (shoal_imports_add_func(s->imports, host, d.name, it->sig, fz_host_zero, &s->nresults[i], NULL))
                continue;
        }
        n++;
    }
    if (spw_build_module(host, items, n, &bytes, &len, NULL) != SHOAL_OK)
        goto done;
    if (shoal_module_load(bytes, len, &stub, NULL) != SHOAL_OK)
        goto done;
    fz_config(&cfg);
    if (shoal_instantiate(stub, s->imports, &cfg, &inst, NULL) != SHOAL_OK)
        goto done;
    if (shoal_imports_add_instance(s->imports, d0.module, inst, NULL) != SHOAL_OK)
        goto done;
    s->stub_modules[s->nstubs] = stub;
    s->stub_instances[s->nstubs++] = inst;
    stub = NULL;
    inst = NULL;
done:
    if (inst)
        shoal_instance_free(inst);
    shoal_module_free(stub);
    free(bytes);
}

static void fz_call_exports(shoal_instance *inst, const shoal_module *m) {
    uint32_t nexports = shoal_module_export_count(m), calls = 0;
    for (uint32_t i = 0; i < nexports && calls < FZ_MAX_EXPORT_CALLS; i++) {
        shoal_extern_desc d;
        if (!shoal_module_export(m, i, &d))
            continue;
        if (d.kind == SHOAL_EXTERN_GLOBAL) {
            shoal_val v;
            shoal_valtype t;
            shoal_export_global(inst, d.name, &v, &t, NULL);
            continue;
        }
        if (d.kind != SHOAL_EXTERN_FUNC)
            continue;
        shoal_functype ft;
        if (!shoal_export_functype(inst, d.name, &ft))
            continue;
        shoal_val *args = calloc(ft.nparams + 1, sizeof *args);
        shoal_val *results = calloc(ft.nresults + 1, sizeof *results);
        if (args && results) {
            shoal_instance_set_fuel(inst, FZ_FUEL);
            shoal_call_export(inst, d.name, args, ft.nparams, results, ft.nresults, NULL);
            calls++;
        }
        free(args);
        free(results);
    }
    uint64_t msize = 0;
    uint8_t *base = shoal_instance_memory(inst, &msize);
    if (base && msize) {
        uint8_t probe[16];
        shoal_instance_memory_read(inst, msize > 16 ? msize - 16 : 0, probe, msize > 16 ? 16 : msize, NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    shoal_module *m = NULL;
    shoal_instance *inst = NULL;
    shoal_instance_config cfg;
    FzState s;
    memset(&s, 0, sizeof s);

    if (shoal_module_load(data, size, &m, NULL) != SHOAL_OK)
        return 0;
    s.imports = shoal_imports_new();
    if (!s.imports)
        goto done;
    uint32_t nimports = shoal_module_import_count(m);
    if (nimports > FZ_MAX_IMPORTS)
        goto done;
    for (uint32_t i = 0; i < nimports; i++) {
        shoal_extern_desc d;
        if (!shoal_module_import(m, i, &d))
            continue;
        bool seen = false; /* one stub per distinct module name, built at its first import */
        for (uint32_t k = 0; k < i && !seen; k++) {
            shoal_extern_desc e;
            seen = shoal_module_import(m, k, &e) && !strcmp(e.module, d.module);
        }
        if (!seen)
            fz_stub(&s, m, nimports, i);
    }
    fz_config(&cfg);
    if (shoal_instantiate(m, s.imports, &cfg, &inst, NULL) == SHOAL_OK)
        fz_call_exports(inst, m);

done:
    if (inst)
        shoal_instance_free(inst);
    for (uint32_t i = s.nstubs; i-- > 0;)
        shoal_instance_free(s.stub_instances[i]);
    for (uint32_t i = s.nstubs; i-- > 0;)
        shoal_module_free(s.stub_modules[i]);
    if (s.imports)
        shoal_imports_free(s.imports);
    shoal_module_free(m);
    return 0;
}
