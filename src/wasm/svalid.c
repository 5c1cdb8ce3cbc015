/*
 * svalid.c: validation of a decoded module (WebAssembly 2.0, the algorithm of the spec's appendix).
 *
 * Module-level rules live here; function bodies are checked by svalcode.c. Constant expressions were
 * reduced by the decoder to one instruction (or marked `invalid`); here their types and indices are
 * checked. In 2.0 a constant expression may read only imported, immutable globals.
 */
#include <stdlib.h>
#include <string.h>

#include "svalid.h"

shoal_status sval_fail(SVal *v, shoal_status st, size_t offset, const char *reason) {
    if (v->func != SHOAL_NO_FUNC)
        return smod_error(v->err, st, v->func, offset, "section code, function %u, offset 0x%zx: %s", v->func,
                          offset, reason);
    return smod_error(v->err, st, SHOAL_NO_FUNC, offset, "section %s, offset 0x%zx: %s", v->section, offset,
                      reason);
}

static shoal_status sval_limits(SVal *v, const SLimits *l, uint64_t bound, const char *too_big, size_t at) {
    if (l->min > bound || (l->has_max && l->max > bound)) return sval_fail(v, SHOAL_ERR_INVALID, at, too_big);
    if (l->has_max && l->min > l->max)
        return sval_fail(v, SHOAL_ERR_INVALID, at, "size minimum must not be greater than maximum");
    return SHOAL_OK;
}

/* Where the k-th table or memory (imports first) was declared, for messages. */
static size_t sval_decl_offset(const SModule *m, shoal_extern_kind kind, uint32_t k, uint32_t nimported,
                               int section) {
    if (k >= nimported) return m->section_offset[section];
    for (uint32_t i = 0; i < m->nimports; i++)
        if (m->imports[i].kind == kind && k-- == 0) return m->imports[i].offset;
    return 0;
}

#define SVAL_MEM_TOO_BIG "memory size must be at most 65536 pages (4GiB)"

/* Checks a constant expression of type `want`, and completes e->type for global.get (which the decoder
 * cannot know before the imports are final). */
static shoal_status sval_const(SVal *v, SConstExpr *e, SValType want) {
    SModule *m = v->m;
    char msg[64];
    if (e->invalid) return sval_fail(v, SHOAL_ERR_INVALID, e->offset, e->invalid);
    SValType t = e->type;
    switch (e->kind) {
    case SCONST_VALUE:
    case SCONST_REF_NULL: break;
    case SCONST_GLOBAL_GET:
        if (e->index >= m->nglobal_imports) {
            snprintf(msg, sizeof msg, "unknown global %u", e->index);
            return sval_fail(v, SHOAL_ERR_INVALID, e->offset, msg);
        }
        if (m->global_types[e->index].mutable_)
            return sval_fail(v, SHOAL_ERR_INVALID, e->offset, "constant expression required");
        t = e->type = m->global_types[e->index].type;
        break;
    case SCONST_REF_FUNC:
        if (e->index >= m->nfuncs) {
            snprintf(msg, sizeof msg, "unknown function %u", e->index);
            return sval_fail(v, SHOAL_ERR_INVALID, e->offset, msg);
        }
        break;
    }
    if (t != want) return sval_fail(v, SHOAL_ERR_INVALID, e->offset, "type mismatch");
    return SHOAL_OK;
}

/* Export names must be unique: an open-addressing hash set of export indices, linear time overall. */
static uint64_t sval_hash(const char *s, uint32_t n) {
    uint64_t h = 1469598103934665603ull;
    for (uint32_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static shoal_status sval_exports(SVal *v) {
    SModule *m = v->m;
    v->section = "export";
    char msg[64];
    for (uint32_t i = 0; i < m->nexports; i++) {
        const SExport *ex = &m->exports[i];
        uint32_t limit = 0;
        const char *what = "";
        switch (ex->kind) {
        case SHOAL_EXTERN_FUNC: limit = m->nfuncs, what = "function"; break;
        case SHOAL_EXTERN_TABLE: limit = m->ntables, what = "table"; break;
        case SHOAL_EXTERN_MEMORY: limit = m->nmems, what = "memory"; break;
        case SHOAL_EXTERN_GLOBAL: limit = m->nglobals, what = "global"; break;
        }
        if (ex->index >= limit) {
            snprintf(msg, sizeof msg, "unknown %s %u", what, ex->index);
            return sval_fail(v, SHOAL_ERR_INVALID, ex->offset, msg);
        }
    }
    if (m->nexports < 2) return SHOAL_OK;
    size_t cap = 4;
    while (cap < (size_t)m->nexports * 2) cap *= 2;
    uint32_t *slots = malloc(cap * sizeof *slots);
    if (!slots) return sval_fail(v, SHOAL_ERR_NOMEM, 0, "out of memory");
    memset(slots, 0xff, cap * sizeof *slots);
    shoal_status st = SHOAL_OK;
    for (uint32_t i = 0; i < m->nexports && st == SHOAL_OK; i++) {
        const SExport *ex = &m->exports[i];
        size_t h = (size_t)sval_hash(ex->name, ex->name_len) & (cap - 1);
        while (slots[h] != UINT32_MAX) {
            const SExport *other = &m->exports[slots[h]];
            if (other->name_len == ex->name_len && !memcmp(other->name, ex->name, ex->name_len)) {
                st = sval_fail(v, SHOAL_ERR_INVALID, ex->offset, "duplicate export name");
                break;
            }
            h = (h + 1) & (cap - 1);
        }
        slots[h] = i;
    }
    free(slots);
    return st;
}

/* C.refs: functions named by ref.func outside function bodies (element segments, global initialisers)
 * or exported. Only those may be the operand of ref.func in code. */
static shoal_status sval_declared_refs(SVal *v) {
    SModule *m = v->m;
    free(m->declared_refs);
    m->declared_refs = calloc((size_t)m->nfuncs / 8 + 1, 1);
    if (!m->declared_refs) return sval_fail(v, SHOAL_ERR_NOMEM, 0, "out of memory");
#define SVAL_MARK(i) \
    do { if ((i) < m->nfuncs) m->declared_refs[(i) / 8] |= (uint8_t)(1u << ((i) % 8)); } while (0)
    for (uint32_t i = m->nglobal_imports; i < m->nglobals; i++)
        if (m->global_inits[i].kind == SCONST_REF_FUNC) SVAL_MARK(m->global_inits[i].index);
    for (uint32_t i = 0; i < m->nelems; i++)
        for (uint32_t k = 0; k < m->elems[i].count; k++)
            if (m->elems[i].items[k].kind == SCONST_REF_FUNC) SVAL_MARK(m->elems[i].items[k].index);
    for (uint32_t i = 0; i < m->nexports; i++)
        if (m->exports[i].kind == SHOAL_EXTERN_FUNC) SVAL_MARK(m->exports[i].index);
#undef SVAL_MARK
    return SHOAL_OK;
}

/* Everything outside function bodies, then the bodies (which need C.refs). */
static shoal_status sval_module(SVal *v_) {
    SVal v = *v_;
    SModule *m = v.m;
    shoal_status st;
    char msg[64];

    v.section = "import";
    for (uint32_t i = 0; i < m->nimports; i++) {
        const SImport *im = &m->imports[i];
        if (im->kind == SHOAL_EXTERN_FUNC && im->type_index >= m->ntypes) {
            snprintf(msg, sizeof msg, "unknown type %u", im->type_index);
            return sval_fail(&v, SHOAL_ERR_INVALID, im->offset, msg);
        }
    }
    v.section = "function";
    for (uint32_t i = m->nfunc_imports; i < m->nfuncs; i++)
        if (m->funcs[i].type_index >= m->ntypes) {
            snprintf(msg, sizeof msg, "unknown type %u", m->funcs[i].type_index);
            return sval_fail(&v, SHOAL_ERR_INVALID, m->funcs[i].decl_offset, msg);
        }
    v.section = "table";
    for (uint32_t i = 0; i < m->ntables; i++) {
        v.section = i < m->ntable_imports ? "import" : "table";
        size_t at = sval_decl_offset(m, SHOAL_EXTERN_TABLE, i, m->ntable_imports, 4);
        if ((st = sval_limits(&v, &m->tables[i].limits, UINT32_MAX, "table size", at)) != SHOAL_OK) return st;
    }
    for (uint32_t i = 0; i < m->nmems; i++) {
        v.section = i < m->nmem_imports ? "import" : "memory";
        size_t at = sval_decl_offset(m, SHOAL_EXTERN_MEMORY, i, m->nmem_imports, 5);
        if (i == 1) return sval_fail(&v, SHOAL_ERR_INVALID, at, "multiple memories");
        if ((st = sval_limits(&v, &m->mems[i], SMOD_MAX_PAGES, SVAL_MEM_TOO_BIG, at)) != SHOAL_OK) return st;
    }
    v.section = "global";
    for (uint32_t i = m->nglobal_imports; i < m->nglobals; i++)
        if ((st = sval_const(&v, &m->global_inits[i], m->global_types[i].type)) != SHOAL_OK) return st;
    if ((st = sval_exports(&v)) != SHOAL_OK) return st;
    v.section = "start";
    if (m->has_start) {
        if (m->start >= m->nfuncs) {
            snprintf(msg, sizeof msg, "unknown function %u", m->start);
            return sval_fail(&v, SHOAL_ERR_INVALID, m->section_offset[8], msg);
        }
        const SFuncType *t = smod_func_type(m, m->start);
        if (!t || t->nparams || t->nresults)
            return sval_fail(&v, SHOAL_ERR_INVALID, m->section_offset[8], "start function");
    }
    v.section = "element";
    for (uint32_t i = 0; i < m->nelems; i++) {
        SElem *el = &m->elems[i];
        if (el->mode == SSEG_ACTIVE) {
            if (el->table >= m->ntables) {
                snprintf(msg, sizeof msg, "unknown table %u", el->table);
                return sval_fail(&v, SHOAL_ERR_INVALID, el->offset.offset, msg);
            }
            if ((st = sval_const(&v, &el->offset, SHOAL_I32)) != SHOAL_OK) return st;
            if (m->tables[el->table].elem != el->type)
                return sval_fail(&v, SHOAL_ERR_INVALID, el->offset.offset, "type mismatch");
        }
        for (uint32_t k = 0; k < el->count; k++)
            if ((st = sval_const(&v, &el->items[k], el->type)) != SHOAL_OK) return st;
    }
    v.section = "data";
    for (uint32_t i = 0; i < m->ndatas; i++) {
        SData *ds = &m->datas[i];
        if (ds->mode != SSEG_ACTIVE) continue;
        if (ds->memory >= m->nmems) {
            snprintf(msg, sizeof msg, "unknown memory %u", ds->memory);
            return sval_fail(&v, SHOAL_ERR_INVALID, ds->offset.offset, msg);
        }
        if ((st = sval_const(&v, &ds->offset, SHOAL_I32)) != SHOAL_OK) return st;
    }
    if ((st = sval_declared_refs(&v)) != SHOAL_OK) return st;
    v.section = "code";
    return sval_code(&v);
}

shoal_status smod_validate(SModule *m, shoal_error *err) {
    SVal v;
    memset(&v, 0, sizeof v);
    v.m = m;
    v.err = err;
    v.func = SHOAL_NO_FUNC;
    shoal_status st = sval_module(&v);
    /* The spec decodes every body before validating anything: a malformed body beats anything invalid,
     * even in an earlier body or outside the code. */
    if (st == SHOAL_ERR_INVALID) {
        shoal_status wf = sval_code_wellformed(&v);
        if (wf != SHOAL_OK) st = wf;
    }
    return st;
}
