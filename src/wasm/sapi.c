/*
 * sapi.c: the public embedding API of shoal.h sections 1-5 that is not instantiation itself: errors,
 * module loading and inspection, calling exports, memory and global access, limits, and the checked
 * memory access of host functions.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sexec.h"

/* ---- errors ------------------------------------------------------------------------------------ */

const char *shoal_trap_message(shoal_trap trap) {
    switch (trap) {
    case SHOAL_TRAP_NONE: return "no trap";
    case SHOAL_TRAP_UNREACHABLE: return "unreachable";
    case SHOAL_TRAP_INT_DIV_ZERO: return "integer divide by zero";
    case SHOAL_TRAP_INT_OVERFLOW: return "integer overflow";
    case SHOAL_TRAP_INVALID_CONVERSION: return "invalid conversion to integer";
    case SHOAL_TRAP_MEMORY_OOB: return "out of bounds memory access";
    case SHOAL_TRAP_TABLE_OOB: return "out of bounds table access";
    case SHOAL_TRAP_UNDEFINED_ELEMENT: return "undefined element";
    case SHOAL_TRAP_UNINITIALIZED_ELEMENT: return "uninitialized element";
    case SHOAL_TRAP_INDIRECT_TYPE: return "indirect call type mismatch";
    case SHOAL_TRAP_NULL_REFERENCE: return "null reference";
    case SHOAL_TRAP_STACK_EXHAUSTED: return "call stack exhausted";
    case SHOAL_TRAP_FUEL_EXHAUSTED: return "fuel exhausted";
    case SHOAL_TRAP_INTERRUPTED: return "interrupted";
    case SHOAL_TRAP_HOST: return "host trap";
    case SHOAL_TRAP_COUNT: break;
    }
    return "unknown trap";
}

const char *shoal_status_name(shoal_status status) {
    switch (status) {
    case SHOAL_OK: return "ok";
    case SHOAL_ERR_MALFORMED: return "malformed";
    case SHOAL_ERR_INVALID: return "invalid";
    case SHOAL_ERR_UNSUPPORTED: return "unsupported";
    case SHOAL_ERR_UNLINKABLE: return "unlinkable";
    case SHOAL_ERR_TRAP: return "trap";
    case SHOAL_ERR_EXIT: return "exit";
    case SHOAL_ERR_NOMEM: return "out of memory";
    case SHOAL_ERR_IO: return "i/o error";
    case SHOAL_ERR_ARG: return "bad argument";
    case SHOAL_ERR_NOTFOUND: return "not found";
    case SHOAL_ERR_FORMAT: return "bad format";
    case SHOAL_ERR_DEVICE: return "device error";
    }
    return "unknown status";
}

shoal_status shoal_error_set(shoal_error *err, shoal_status status, const char *fmt, ...) {
    if (!err) return status;
    memset(err, 0, sizeof *err);
    err->status = status;
    err->func_index = SHOAL_NO_FUNC;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return status;
}

/* ---- modules ----------------------------------------------------------------------------------- */

shoal_status shoal_module_load(const uint8_t *bytes, size_t size, shoal_module **out, shoal_error *err) {
    if (!out || (!bytes && size)) return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_module_load: NULL argument");
    *out = NULL;
    shoal_module *mod = calloc(1, sizeof *mod);
    if (!mod) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    shoal_status st = smod_decode(&mod->m, bytes, size, err);
    if (st == SHOAL_OK) st = smod_validate(&mod->m, err);
    if (st == SHOAL_OK) st = scomp_module(&mod->m, err);
    if (st != SHOAL_OK) {
        shoal_module_free(mod);
        return st;
    }
    *out = mod;
    return SHOAL_OK;
}

shoal_status shoal_module_load_file(const char *path, shoal_module **out, shoal_error *err) {
    if (!out || !path) return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_module_load_file: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return shoal_error_set(err, SHOAL_ERR_IO, "cannot open %s", path);
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 1 << 16;
            uint8_t *b = realloc(buf, nc);
            if (!b) {
                free(buf);
                fclose(f);
                return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory reading %s", path);
            }
            buf = b;
            cap = nc;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return shoal_error_set(err, SHOAL_ERR_IO, "cannot read %s", path);
    }
    shoal_status st = shoal_module_load(buf, n, out, err);
    free(buf);
    return st;
}

const uint8_t *shoal_module_bytes(const shoal_module *module, size_t *size) {
    if (size) *size = module ? module->m.size : 0;
    return module ? module->m.bytes : NULL;
}

void shoal_module_free(shoal_module *module) {
    if (!module) return;
    scomp_free_module(&module->m);
    smod_free(&module->m);
    free(module);
}

/* The public type of function index fi of m (imports included). */
static void func_desc(const SModule *m, uint32_t fi, shoal_functype *out) {
    memset(out, 0, sizeof *out);
    if (fi < m->nfuncs && m->funcs[fi].type_index < m->ntypes) scomp_public_type(m, m->funcs[fi].type_index, out);
}

uint32_t shoal_module_import_count(const shoal_module *module) { return module ? module->m.nimports : 0; }

bool shoal_module_import(const shoal_module *module, uint32_t index, shoal_extern_desc *out) {
    if (!module || !out || index >= module->m.nimports) return false;
    const SModule *m = &module->m;
    const SImport *imp = &m->imports[index];
    memset(out, 0, sizeof *out);
    out->module = imp->module;
    out->name = imp->name;
    out->kind = imp->kind;
    switch (imp->kind) {
    case SHOAL_EXTERN_FUNC: scomp_public_type(m, imp->type_index, &out->func); break;
    case SHOAL_EXTERN_TABLE:
        out->valtype = imp->table.elem;
        out->min = imp->table.limits.min;
        out->max = imp->table.limits.max;
        out->has_max = imp->table.limits.has_max;
        break;
    case SHOAL_EXTERN_MEMORY:
        out->min = imp->memory.min;
        out->max = imp->memory.max;
        out->has_max = imp->memory.has_max;
        break;
    case SHOAL_EXTERN_GLOBAL:
        out->valtype = imp->global.type;
        out->mutable_global = imp->global.mutable_;
        break;
    }
    return true;
}

uint32_t shoal_module_export_count(const shoal_module *module) { return module ? module->m.nexports : 0; }

bool shoal_module_export(const shoal_module *module, uint32_t index, shoal_extern_desc *out) {
    if (!module || !out || index >= module->m.nexports) return false;
    const SModule *m = &module->m;
    const SExport *e = &m->exports[index];
    memset(out, 0, sizeof *out);
    out->name = e->name;
    out->kind = e->kind;
    switch (e->kind) {
    case SHOAL_EXTERN_FUNC: func_desc(m, e->index, &out->func); break;
    case SHOAL_EXTERN_TABLE:
        out->valtype = m->tables[e->index].elem;
        out->min = m->tables[e->index].limits.min;
        out->max = m->tables[e->index].limits.max;
        out->has_max = m->tables[e->index].limits.has_max;
        break;
    case SHOAL_EXTERN_MEMORY:
        out->min = m->mems[e->index].min;
        out->max = m->mems[e->index].max;
        out->has_max = m->mems[e->index].has_max;
        break;
    case SHOAL_EXTERN_GLOBAL:
        out->valtype = m->global_types[e->index].type;
        out->mutable_global = m->global_types[e->index].mutable_;
        break;
    }
    return true;
}

/* ---- calling ----------------------------------------------------------------------------------- */

/* The execution stack of the Wasm code running on this thread, if any: a host function that calls back
 * into Wasm (of any instance) continues on that stack, above its caller's frame. */
static _Thread_local SExec *tl_exec;

shoal_status sexec_invoke(shoal_instance *inst, SFuncInst *f, const shoal_val *args, shoal_val *results,
                          shoal_error *err) {
    SExec *ex = tl_exec;
    bool nested = ex != NULL;
    SSlot *fp;
    if (nested) {
        fp = ex->top;
    } else {
        shoal_status st = sinst_exec_for(inst, &ex, err);
        if (st != SHOAL_OK) return st;
        fp = ex->slots;
        ex->depth = 0;
        ex->top = ex->slots;
        ex->root = inst;
        ex->fuel_limited = inst->fuel_limited;
        ex->fuel = inst->fuel_limited ? inst->fuel : INT64_MAX;
    }
    const SFuncType *t = f->type;
    uint32_t span = t->nparams > t->nresults ? t->nparams : t->nresults;
    if (!fp || (size_t)(ex->slots_end - fp) < span + 1u) return sexec_trap(err, SHOAL_TRAP_STACK_EXHAUSTED, NULL, NULL);
    if (t->nparams) memcpy(fp, args, t->nparams * sizeof *fp);
    tl_exec = ex;
    shoal_status st = sinterp_call(ex, f, fp, err);
    tl_exec = nested ? ex : NULL;
    if (!nested && inst->fuel_limited) inst->fuel = ex->fuel;
    if (st == SHOAL_OK && t->nresults) memcpy(results, fp, t->nresults * sizeof *fp);
    return st;
}

shoal_status sexec_resume(shoal_instance *inst, shoal_error *err) {
    SExec *ex = inst->exec;
    if (tl_exec) return shoal_error_set(err, SHOAL_ERR_ARG, "a stopped guest cannot be resumed from a host function");
    if (!ex || !ex->at_func || !ex->at_func->code)
        return shoal_error_set(err, SHOAL_ERR_ARG, "the instance has no stopped call to continue");
    ex->root = inst;
    ex->top = ex->slots;
    ex->fuel_limited = inst->fuel_limited;
    ex->fuel = inst->fuel_limited ? inst->fuel : INT64_MAX;
    ex->depth = ex->at_depth;
    ex->host_depth = 0;
    tl_exec = ex;
    shoal_status st = sinterp_resume(ex, ex->at_func, ex->at_fp, ex->at_ip, err);
    tl_exec = NULL;
    if (inst->fuel_limited) inst->fuel = ex->fuel;
    return st;
}

static const SExport *export_named(const shoal_instance *inst, const char *name, shoal_extern_kind kind) {
    const SModule *m = &inst->module->m;
    for (uint32_t i = 0; i < m->nexports; i++)
        if (m->exports[i].kind == kind && !strcmp(m->exports[i].name, name)) return &m->exports[i];
    return NULL;
}

shoal_status shoal_call_export(shoal_instance *instance, const char *name, const shoal_val *args, uint32_t nargs,
                               shoal_val *results, uint32_t nresults, shoal_error *err) {
    if (!instance || !name) return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_call_export: NULL argument");
    const SExport *e = export_named(instance, name, SHOAL_EXTERN_FUNC);
    if (!e) return shoal_error_set(err, SHOAL_ERR_NOTFOUND, "no exported function \"%s\"", name);
    SFuncInst *f = instance->funcs[e->index];
    if (nargs != f->type->nparams || nresults != f->type->nresults)
        return shoal_error_set(err, SHOAL_ERR_ARG, "\"%s\" takes %u arguments and returns %u results, not %u and %u",
                               name, f->type->nparams, f->type->nresults, nargs, nresults);
    if ((nargs && !args) || (nresults && !results))
        return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_call_export: NULL arguments or results");
    shoal_error local;
    shoal_error *e2 = err ? err : &local;
    e2->status = SHOAL_OK;
    e2->func_index = SHOAL_NO_FUNC;
    shoal_status st = sexec_invoke(instance, f, args, results, e2);
    if (st == SHOAL_OK && err) shoal_error_set(err, SHOAL_OK, "ok");
    return st;
}

bool shoal_export_functype(const shoal_instance *instance, const char *name, shoal_functype *out) {
    if (!instance || !name) return false;
    const SExport *e = export_named(instance, name, SHOAL_EXTERN_FUNC);
    if (!e) return false;
    if (out) func_desc(&instance->module->m, e->index, out);
    return true;
}

shoal_status shoal_export_global(const shoal_instance *instance, const char *name, shoal_val *value,
                                 shoal_valtype *type, shoal_error *err) {
    if (!instance || !name) return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_export_global: NULL argument");
    const SExport *e = export_named(instance, name, SHOAL_EXTERN_GLOBAL);
    if (!e) return shoal_error_set(err, SHOAL_ERR_NOTFOUND, "no exported global \"%s\"", name);
    const SGlobal *g = instance->globals[e->index];
    if (value) memcpy(value, &g->val, sizeof *value);
    if (type) *type = (shoal_valtype)g->type;
    return SHOAL_OK;
}

const shoal_module *shoal_instance_module(const shoal_instance *instance) {
    return instance ? instance->module : NULL;
}
void *shoal_instance_user(const shoal_instance *instance) { return instance ? instance->user : NULL; }

/* ---- memory ------------------------------------------------------------------------------------ */

uint8_t *shoal_instance_memory(const shoal_instance *instance, uint64_t *size) {
    if (!instance || instance->module->m.nmems == 0) {
        if (size) *size = 0;
        return NULL;
    }
    if (size) *size = instance->mem0->size;
    return instance->mem0->base;
}

shoal_status shoal_instance_memory_read(const shoal_instance *instance, uint64_t offset, void *dst, uint64_t len,
                                        shoal_error *err) {
    uint64_t size;
    uint8_t *base = shoal_instance_memory(instance, &size);
    if (!base || offset > size || len > size - offset)
        return shoal_error_set(err, SHOAL_ERR_ARG, "memory read of %llu bytes at %llu is out of bounds",
                               (unsigned long long)len, (unsigned long long)offset);
    if (len) memcpy(dst, base + offset, len);
    return SHOAL_OK;
}

shoal_status shoal_instance_memory_write(shoal_instance *instance, uint64_t offset, const void *src, uint64_t len,
                                         shoal_error *err) {
    uint64_t size;
    uint8_t *base = shoal_instance_memory(instance, &size);
    if (!base || offset > size || len > size - offset)
        return shoal_error_set(err, SHOAL_ERR_ARG, "memory write of %llu bytes at %llu is out of bounds",
                               (unsigned long long)len, (unsigned long long)offset);
    if (len) memcpy(base + offset, src, len);
    return SHOAL_OK;
}

/* ---- limits ------------------------------------------------------------------------------------ */

void shoal_instance_set_fuel(shoal_instance *instance, uint64_t fuel) {
    if (!instance) return;
    instance->fuel_limited = fuel != 0;
    instance->fuel = fuel > INT64_MAX ? INT64_MAX : (int64_t)fuel;
}

uint64_t shoal_instance_fuel_left(const shoal_instance *instance) {
    if (!instance || !instance->fuel_limited) return 0;
    return instance->fuel < 0 ? 0 : (uint64_t)instance->fuel;
}

void shoal_instance_interrupt(shoal_instance *instance) {
    if (instance) atomic_store(&instance->interrupt, 1);
}

void shoal_instance_clear_interrupt(shoal_instance *instance) {
    if (instance) atomic_store(&instance->interrupt, 0);
}

/* ---- host calls -------------------------------------------------------------------------------- */

void *shoal_call_mem(shoal_call *call, uint32_t offset, uint32_t len) {
    if (!call) return NULL;
    const SMemory *mem = call->inst->mem0;
    if (!mem->base || (uint64_t)offset + len > mem->size) return NULL;
    return mem->base + offset;
}

void *shoal_call_mem_array(shoal_call *call, uint32_t offset, uint32_t count, uint32_t elem_size,
                           uint32_t align) {
    if (!call || align == 0 || (align & (align - 1)) || (offset & (align - 1))) return NULL;
    uint64_t bytes = (uint64_t)count * elem_size; /* cannot overflow: both factors are 32-bit */
    const SMemory *mem = call->inst->mem0;
    if (!mem->base || bytes > mem->size || offset > mem->size - bytes) return NULL;
    return mem->base + offset;
}

uint8_t *shoal_call_memory(shoal_call *call, uint64_t *size) {
    if (!call || !call->inst->mem0->base) {
        if (size) *size = 0;
        return NULL;
    }
    if (size) *size = call->inst->mem0->size;
    return call->inst->mem0->base;
}

shoal_instance *shoal_call_instance(shoal_call *call) { return call ? call->inst : NULL; }

shoal_status shoal_call_trap(shoal_call *call, const char *fmt, ...) {
    if (!call || !call->err) return SHOAL_ERR_TRAP;
    shoal_error *err = call->err;
    memset(err, 0, sizeof *err);
    err->status = SHOAL_ERR_TRAP;
    err->trap = SHOAL_TRAP_HOST;
    err->func_index = SHOAL_NO_FUNC;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return SHOAL_ERR_TRAP;
}

shoal_status shoal_call_exit(shoal_call *call, int32_t code) {
    if (!call || !call->err) return SHOAL_ERR_EXIT;
    shoal_error *err = call->err;
    memset(err, 0, sizeof *err);
    err->status = SHOAL_ERR_EXIT;
    err->exit_code = code;
    err->func_index = SHOAL_NO_FUNC;
    snprintf(err->message, sizeof err->message, "exit with code %d", (int)code);
    return SHOAL_ERR_EXIT;
}
