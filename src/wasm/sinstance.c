/*
 * sinstance.c: imports and instantiation. Resolves a module's imports against host functions and the
 * exports of registered instances (type-checked as the spec's import matching says, limits subtyping
 * included), creates functions, tables, memories and globals, applies element and data segments in order
 * and runs the start function.
 *
 * Sharing: imported memories, tables and globals are the exporting instance's objects, used by pointer
 * (so a mutable global is shared by reference). The exporter must outlive its importers (shoal.h says so).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sexec.h"

#define DEFAULT_MAX_TABLE_ELEMS 10000000u
#define DEFAULT_MAX_CALL_DEPTH 10000u
#define EXEC_STACK_SLOTS (1u << 20) /* 8 MiB of value slots per execution stack */

/* ---- imports ----------------------------------------------------------------------------------- */

typedef struct SImportDef {
    char *module, *name; /* name is NULL for a registered instance (all its exports) */
    shoal_host_fn fn;
    void *user;
    SFuncType type;
    shoal_instance *inst;
} SImportDef;

struct shoal_imports {
    SImportDef *defs;
    uint32_t n, cap;
};

shoal_imports *shoal_imports_new(void) { return calloc(1, sizeof(shoal_imports)); }

void shoal_imports_free(shoal_imports *imports) {
    if (!imports) return;
    for (uint32_t i = 0; i < imports->n; i++) {
        free(imports->defs[i].module);
        free(imports->defs[i].name);
        free(imports->defs[i].type.params);
    }
    free(imports->defs);
    free(imports);
}

static SImportDef *imports_add(shoal_imports *im, const char *module, const char *name, shoal_error *err) {
    if (im->n == im->cap) {
        uint32_t nc = im->cap ? im->cap * 2 : 16;
        SImportDef *d = realloc(im->defs, nc * sizeof *d);
        if (!d) {
            shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
            return NULL;
        }
        im->defs = d;
        im->cap = nc;
    }
    SImportDef *d = &im->defs[im->n];
    memset(d, 0, sizeof *d);
    d->module = strdup(module);
    d->name = name ? strdup(name) : NULL;
    if (!d->module || (name && !d->name)) {
        free(d->module);
        free(d->name);
        shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    im->n++;
    return d;
}

static bool sig_letter(char c, SValType *out) {
    switch (c) {
    case 'i': *out = SHOAL_I32; return true;
    case 'I': *out = SHOAL_I64; return true;
    case 'f': *out = SHOAL_F32; return true;
    case 'F': *out = SHOAL_F64; return true;
    case 'r': *out = SHOAL_FUNCREF; return true;
    case 'e': *out = SHOAL_EXTERNREF; return true;
    default: return false;
    }
}

shoal_status shoal_imports_add_func(shoal_imports *imports, const char *module, const char *name,
                                    const char *signature, shoal_host_fn fn, void *user, shoal_error *err) {
    if (!imports || !module || !name || !signature || !fn)
        return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_imports_add_func: NULL argument");
    const char *colon = strchr(signature, ':');
    if (!colon || strchr(colon + 1, ':'))
        return shoal_error_set(err, SHOAL_ERR_ARG, "signature '%s' needs exactly one ':'", signature);
    size_t np = (size_t)(colon - signature), nr = strlen(colon + 1);
    if (nr > 16) return shoal_error_set(err, SHOAL_ERR_ARG, "signature '%s': at most 16 results", signature);
    SValType *types = malloc(np + nr + 1);
    if (!types) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < np + nr; i++) {
        char c = i < np ? signature[i] : colon[1 + i - np];
        if (!sig_letter(c, &types[i])) {
            free(types);
            return shoal_error_set(err, SHOAL_ERR_ARG, "signature '%s': unknown type letter '%c'", signature, c);
        }
    }
    SImportDef *d = imports_add(imports, module, name, err);
    if (!d) {
        free(types);
        return SHOAL_ERR_NOMEM;
    }
    d->fn = fn;
    d->user = user;
    d->type.nparams = (uint32_t)np;
    d->type.nresults = (uint32_t)nr;
    d->type.params = types;
    d->type.results = types + np;
    return SHOAL_OK;
}

shoal_status shoal_imports_add_instance(shoal_imports *imports, const char *module, shoal_instance *instance,
                                        shoal_error *err) {
    if (!imports || !module || !instance)
        return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_imports_add_instance: NULL argument");
    SImportDef *d = imports_add(imports, module, NULL, err);
    if (!d) return SHOAL_ERR_NOMEM;
    d->inst = instance;
    return SHOAL_OK;
}

static const SExport *find_export(const SModule *m, const char *name) {
    for (uint32_t i = 0; i < m->nexports; i++)
        if (!strcmp(m->exports[i].name, name)) return &m->exports[i];
    return NULL;
}

/* What an import resolved to. */
typedef struct SResolved {
    shoal_extern_kind kind;
    const SImportDef *host; /* a host function */
    shoal_instance *from;   /* an instance export */
    uint32_t index;
} SResolved;

/* The latest definition wins, as when the spec's `register` rebinds a name. */
static bool resolve(const shoal_imports *im, const SImport *imp, SResolved *out) {
    if (!im) return false;
    for (uint32_t i = im->n; i-- > 0;) {
        const SImportDef *d = &im->defs[i];
        if (strcmp(d->module, imp->module)) continue;
        if (d->name) {
            if (strcmp(d->name, imp->name)) continue;
            out->kind = SHOAL_EXTERN_FUNC;
            out->host = d;
            out->from = NULL;
            return true;
        }
        const SExport *e = find_export(&d->inst->module->m, imp->name);
        if (!e) continue;
        out->kind = e->kind;
        out->host = NULL;
        out->from = d->inst;
        out->index = e->index;
        return true;
    }
    return false;
}

/* Limits subtyping: the actual [min, max] lies within the import's [min, max]. */
static bool limits_match(uint64_t amin, bool ahas_max, uint64_t amax, const SLimits *want) {
    if (amin < want->min) return false;
    if (want->has_max && (!ahas_max || amax > want->max)) return false;
    return true;
}

/* ---- execution stacks and traps ---------------------------------------------------------------- */

shoal_status sinst_exec_for(shoal_instance *inst, SExec **out, shoal_error *err) {
    if (!inst->exec) {
        SExec *ex = calloc(1, sizeof *ex);
        uint32_t depth = inst->limits.max_call_depth ? inst->limits.max_call_depth : DEFAULT_MAX_CALL_DEPTH;
        if (ex) {
            ex->slots = malloc((size_t)EXEC_STACK_SLOTS * sizeof(SSlot));
            ex->frames = malloc((size_t)depth * sizeof(SFrame));
        }
        if (!ex || !ex->slots || !ex->frames) {
            if (ex) {
                free(ex->slots);
                free(ex->frames);
            }
            free(ex);
            return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory for the execution stack");
        }
        ex->slots_end = ex->slots + EXEC_STACK_SLOTS;
        ex->max_depth = depth;
        inst->exec = ex;
    }
    *out = inst->exec;
    return SHOAL_OK;
}

static const char *func_name(const SFuncInst *f, char *buf, size_t n) {
    const SModule *m = &f->inst->module->m;
    if (f->index < m->nfuncs && m->funcs[f->index].name) return m->funcs[f->index].name;
    /* Without a name section, an export name still tells the reader which function it was. */
    for (uint32_t i = 0; i < m->nexports; i++)
        if (m->exports[i].kind == SHOAL_EXTERN_FUNC && m->exports[i].index == f->index) {
            snprintf(buf, n, "func[%u] (export \"%s\")", f->index, m->exports[i].name);
            return buf;
        }
    snprintf(buf, n, "func[%u]", f->index);
    return buf;
}

shoal_status sexec_trap(shoal_error *err, shoal_trap trap, const SFuncInst *f, const uint32_t *ip) {
    if (!err) return SHOAL_ERR_TRAP;
    memset(err, 0, sizeof *err);
    err->status = SHOAL_ERR_TRAP;
    err->trap = trap;
    err->func_index = SHOAL_NO_FUNC;
    if (f && f->code) {
        char buf[sizeof err->func_name];
        err->func_index = f->index;
        err->code_offset = scomp_wasm_offset(f->code, ip);
        snprintf(err->func_name, sizeof err->func_name, "%s", func_name(f, buf, sizeof buf));
        /* The spec's wording first: spec runners match trap messages by prefix. */
        snprintf(err->message, sizeof err->message, "%s (in %s at offset 0x%x)", shoal_trap_message(trap),
                 err->func_name, err->code_offset);
    } else {
        snprintf(err->message, sizeof err->message, "%s", shoal_trap_message(trap));
    }
    return SHOAL_ERR_TRAP;
}

/* ---- tables ------------------------------------------------------------------------------------ */

static shoal_status table_init(STable *t, const STableType *tt, uint32_t limit, shoal_error *err) {
    memset(t, 0, sizeof *t);
    t->type = tt->elem;
    t->has_max = tt->limits.has_max;
    t->type_max = tt->limits.max;
    t->max = tt->limits.has_max && tt->limits.max < limit ? tt->limits.max : limit;
    if (tt->limits.min > t->max)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "table of %u elements exceeds the limit of %u",
                               tt->limits.min, t->max);
    t->size = t->cap = tt->limits.min;
    t->elems = calloc(t->cap ? t->cap : 1, sizeof(void *));
    if (!t->elems) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory for a table");
    return SHOAL_OK;
}

int64_t stable_grow(STable *t, uint32_t delta, void *init) {
    uint32_t old = t->size;
    if ((uint64_t)old + delta > t->max) return -1;
    uint32_t need = old + delta;
    if (need > t->cap) {
        uint64_t nc = (uint64_t)t->cap * 2;
        if (nc < need) nc = need;
        if (nc > t->max) nc = t->max;
        void **e = realloc(t->elems, (size_t)nc * sizeof(void *));
        if (!e) return -1;
        t->elems = e;
        t->cap = (uint32_t)nc;
    }
    for (uint32_t i = old; i < need; i++) t->elems[i] = init;
    t->size = need;
    return old;
}

/* ---- instantiation ----------------------------------------------------------------------------- */

static SSlot const_value(const shoal_instance *inst, const SConstExpr *e) {
    SSlot v;
    v.u64 = 0;
    switch (e->kind) {
    case SCONST_VALUE: v.u64 = e->bits; break;
    case SCONST_GLOBAL_GET: v = inst->globals[e->index]->val; break;
    case SCONST_REF_NULL: v.ref = NULL; break;
    case SCONST_REF_FUNC: v.ref = inst->funcs[e->index]; break;
    }
    return v;
}

void shoal_instance_free(shoal_instance *inst) {
    if (!inst) return;
    const SModule *m = &inst->module->m;
    for (uint32_t i = 0; i < inst->nown_mems; i++) smem_free(&inst->own_mems[i]);
    for (uint32_t i = 0; i < inst->nown_tables; i++) free(inst->own_tables[i].elems);
    if (inst->elems)
        for (uint32_t i = 0; i < m->nelems; i++) free(inst->elems[i].refs);
    if (inst->exec) {
        free(inst->exec->slots);
        free(inst->exec->frames);
        free(inst->exec);
    }
    shoal_instance *z = inst->zombies;
    while (z) {
        shoal_instance *next = z->zombies_next;
        shoal_instance_free(z);
        z = next;
    }
    free(inst->funcs);
    free(inst->own_funcs);
    free(inst->tables);
    free(inst->own_tables);
    free(inst->mems);
    free(inst->own_mems);
    free(inst->globals);
    free(inst->own_globals);
    free(inst->types);
    free(inst->elems);
    free(inst->data_sizes);
    free(inst);
}

static SMemory empty_memory; /* memory 0 of instances without one: size 0, so every access traps */

static shoal_status link_imports(shoal_instance *inst, const shoal_imports *imports, shoal_instance **keeper,
                                 shoal_error *err) {
    const SModule *m = &inst->module->m;
    uint32_t fi = 0, ti = 0, mi = 0, gi = 0, hosts = 0;
    for (uint32_t i = 0; i < m->nimports; i++) {
        const SImport *imp = &m->imports[i];
        SResolved r;
        if (!resolve(imports, imp, &r))
            return shoal_error_set(err, SHOAL_ERR_UNLINKABLE, "unknown import \"%s\" \"%s\"", imp->module, imp->name);
        if (r.kind != imp->kind)
            return shoal_error_set(err, SHOAL_ERR_UNLINKABLE, "incompatible import type for \"%s\" \"%s\" (kind)",
                                   imp->module, imp->name);
        if (r.from && (imp->kind == SHOAL_EXTERN_TABLE || imp->kind == SHOAL_EXTERN_GLOBAL) && !*keeper)
            *keeper = r.from;
        bool ok = true;
        switch (imp->kind) {
        case SHOAL_EXTERN_FUNC: {
            const SFuncType *want = &m->types[imp->type_index];
            SFuncInst *f;
            if (r.host) {
                f = &inst->own_funcs[hosts++];
                f->inst = inst;
                f->host = r.host->fn;
                f->host_user = r.host->user;
                f->host_type = r.host->type;
                f->type = &f->host_type;
                f->index = fi;
                ok = sexec_functype_equal(&f->host_type, want);
                /* Host functions compare by structure; give them the module's canonical pointer. */
                if (ok) f->type = inst->types[imp->type_index];
            } else {
                f = r.from->funcs[r.index];
                ok = sexec_functype_equal(f->type, want);
            }
            inst->funcs[fi++] = f;
            break;
        }
        case SHOAL_EXTERN_TABLE: {
            STable *t = r.from->tables[r.index];
            ok = t->type == imp->table.elem && limits_match(t->size, t->has_max, t->type_max, &imp->table.limits);
            inst->tables[ti++] = t;
            break;
        }
        case SHOAL_EXTERN_MEMORY: {
            SMemory *mem = r.from->mems[r.index];
            ok = limits_match(mem->pages, mem->has_max, mem->type_max, &imp->memory);
            inst->mems[mi++] = mem;
            break;
        }
        case SHOAL_EXTERN_GLOBAL: {
            SGlobal *g = r.from->globals[r.index];
            ok = g->type == imp->global.type && g->mutable_ == imp->global.mutable_;
            inst->globals[gi++] = g;
            break;
        }
        }
        if (!ok)
            return shoal_error_set(err, SHOAL_ERR_UNLINKABLE, "incompatible import type for \"%s\" \"%s\"",
                                   imp->module, imp->name);
    }
    inst->nown_funcs = hosts;
    return SHOAL_OK;
}

/* Applies active segments and drops declarative ones (spec 2.0: in order, a failing one traps and keeps
 * the effects of the earlier ones). */
static shoal_status apply_segments(shoal_instance *inst, shoal_error *err) {
    const SModule *m = &inst->module->m;
    for (uint32_t i = 0; i < m->nelems; i++) {
        const SElem *e = &m->elems[i];
        SElemInst *s = &inst->elems[i];
        if (e->mode == SSEG_ACTIVE) {
            STable *t = inst->tables[e->table];
            uint32_t off = const_value(inst, &e->offset).u32;
            if ((uint64_t)off + s->count > t->size) return sexec_trap(err, SHOAL_TRAP_TABLE_OOB, NULL, NULL);
            if (s->count) memcpy(t->elems + off, s->refs, (size_t)s->count * sizeof(void *));
        }
        if (e->mode != SSEG_PASSIVE) s->count = 0;
    }
    for (uint32_t i = 0; i < m->ndatas; i++) {
        const SData *d = &m->datas[i];
        if (d->mode != SSEG_ACTIVE) continue;
        SMemory *mem = inst->mems[d->memory];
        uint32_t off = const_value(inst, &d->offset).u32;
        if ((uint64_t)off + d->size > mem->size) return sexec_trap(err, SHOAL_TRAP_MEMORY_OOB, NULL, NULL);
        if (d->size) memcpy(mem->base + off, d->bytes, d->size);
        inst->data_sizes[i] = 0;
    }
    return SHOAL_OK;
}

shoal_status sinst_instantiate(const shoal_module *module, const shoal_imports *imports,
                               const shoal_instance_config *config, bool run_init, shoal_instance **out,
                               shoal_error *err) {
    shoal_error local;
    if (!err) err = &local;
    if (!out || !module) return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_instantiate: NULL argument");
    *out = NULL;
    const SModule *m = &module->m;
    shoal_status st;
    shoal_instance *keeper = NULL;
    shoal_instance *inst = calloc(1, sizeof *inst);
    if (!inst) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    inst->module = module;
    if (config) {
        inst->limits = config->limits;
        inst->user = config->user;
        inst->host_call_hook = config->host_call_hook;
        inst->hook_user = config->hook_user;
    }
    if (inst->limits.fuel) {
        inst->fuel = inst->limits.fuel > INT64_MAX ? INT64_MAX : (int64_t)inst->limits.fuel;
        inst->fuel_limited = true;
    }
    atomic_init(&inst->interrupt, 0);
    const shoal_memory_provider *prov = config && config->memory_provider ? config->memory_provider : NULL;
    uint32_t max_pages = inst->limits.max_memory_pages ? inst->limits.max_memory_pages : SMOD_MAX_PAGES;
    uint32_t max_elems = inst->limits.max_table_elems ? inst->limits.max_table_elems : DEFAULT_MAX_TABLE_ELEMS;

    uint32_t nown_funcs = m->nfuncs; /* defined functions and host imports */
    inst->funcs = calloc(m->nfuncs + 1, sizeof *inst->funcs);
    inst->own_funcs = calloc(nown_funcs + 1, sizeof *inst->own_funcs);
    inst->tables = calloc(m->ntables + 1, sizeof *inst->tables);
    inst->own_tables = calloc(m->ntables - m->ntable_imports + 1, sizeof *inst->own_tables);
    inst->mems = calloc(m->nmems + 1, sizeof *inst->mems);
    inst->own_mems = calloc(m->nmems - m->nmem_imports + 1, sizeof *inst->own_mems);
    inst->globals = calloc(m->nglobals + 1, sizeof *inst->globals);
    inst->own_globals = calloc(m->nglobals - m->nglobal_imports + 1, sizeof *inst->own_globals);
    inst->types = calloc(m->ntypes + 1, sizeof *inst->types);
    inst->elems = calloc(m->nelems + 1, sizeof *inst->elems);
    inst->data_sizes = calloc(m->ndatas + 1, sizeof *inst->data_sizes);
    if (!inst->funcs || !inst->own_funcs || !inst->tables || !inst->own_tables || !inst->mems || !inst->own_mems ||
        !inst->globals || !inst->own_globals || !inst->types || !inst->elems || !inst->data_sizes) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (uint32_t i = 0; i < m->ntypes; i++) inst->types[i] = scomp_canon_type(m, i);

    st = link_imports(inst, imports, &keeper, err);
    if (st != SHOAL_OK) goto fail;
    /* Host imports took the first own_funcs entries; defined functions follow. */
    uint32_t next_own = inst->nown_funcs;
    for (uint32_t i = m->nfunc_imports; i < m->nfuncs; i++) {
        SFuncInst *f = &inst->own_funcs[next_own++];
        f->inst = inst;
        f->type = inst->types[m->funcs[i].type_index];
        f->code = m->funcs[i].compiled;
        f->index = i;
        if (!f->code) {
            st = shoal_error_set(err, SHOAL_ERR_INVALID, "function %u was not translated", i);
            goto fail;
        }
        inst->funcs[i] = f;
    }
    inst->nown_funcs = next_own;

    for (uint32_t i = m->ntable_imports; i < m->ntables; i++) {
        STable *t = &inst->own_tables[inst->nown_tables];
        st = table_init(t, &m->tables[i], max_elems, err);
        inst->nown_tables++;
        if (st != SHOAL_OK) goto fail;
        inst->tables[i] = t;
    }
    for (uint32_t i = m->nmem_imports; i < m->nmems; i++) {
        SMemory *mem = &inst->own_mems[inst->nown_mems];
        const SLimits *l = &m->mems[i];
        uint32_t cap = l->has_max && l->max < max_pages ? l->max : max_pages;
        st = smem_init(mem, prov, l->min, cap, l->has_max, l->max, err);
        if (st != SHOAL_OK) goto fail;
        inst->nown_mems++;
        inst->mems[i] = mem;
    }
    inst->mem0 = m->nmems ? inst->mems[0] : &empty_memory;
    for (uint32_t i = m->nglobal_imports; i < m->nglobals; i++) {
        SGlobal *g = &inst->own_globals[inst->nown_globals++];
        g->type = m->global_types[i].type;
        g->mutable_ = m->global_types[i].mutable_;
        inst->globals[i] = g;
        g->val = const_value(inst, &m->global_inits[i]);
    }
    for (uint32_t i = 0; i < m->nelems; i++) {
        const SElem *e = &m->elems[i];
        SElemInst *s = &inst->elems[i];
        s->refs = calloc(e->count + 1, sizeof(void *));
        if (!s->refs) {
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
            goto fail;
        }
        s->count = e->count;
        for (uint32_t k = 0; k < e->count; k++) s->refs[k] = const_value(inst, &e->items[k]).ref;
    }
    for (uint32_t i = 0; i < m->ndatas; i++) inst->data_sizes[i] = m->datas[i].size;

    if (!run_init) { /* a resume: the snapshot holds the segments' and the start function's effects */
        *out = inst;
        return SHOAL_OK;
    }
    st = apply_segments(inst, err);
    if (st != SHOAL_OK) goto trapped;
    if (m->has_start) {
        st = sexec_invoke(inst, inst->funcs[m->start], NULL, NULL, err);
        if (st != SHOAL_OK) goto trapped;
    }
    *out = inst;
    return SHOAL_OK;

trapped:
    /* Segments or the start function may have stored this instance's functions into an imported table
     * or global, where they stay reachable: the spec keeps those effects. Such an instance is kept alive
     * by the instance that provided the import, and freed with it. */
    if (keeper) {
        inst->zombies_next = keeper->zombies;
        keeper->zombies = inst;
        return st;
    }
fail:
    shoal_instance_free(inst);
    return st;
}

shoal_status shoal_instantiate(const shoal_module *module, const shoal_imports *imports,
                               const shoal_instance_config *config, shoal_instance **out, shoal_error *err) {
    return sinst_instantiate(module, imports, config, true, out, err);
}
