/*
 * svalcode.c: validation of function bodies.
 *
 * sval_code types every body with the algorithm of the spec's validation appendix: an operand stack
 * whose entries may be "unknown" (SV_UNKNOWN) below unreachable code, and a control stack of frames.
 * Simple instructions are typed from their sopcodes.h signature; the rest by hand below. The same pass
 * decodes the instructions and checks block structure, reporting those failures as SHOAL_ERR_MALFORMED.
 *
 * The spec decodes the whole module before validating any of it, so a malformed body must win over an
 * invalid one earlier in the module. Rather than decode every body twice, validation stops at the first
 * invalid thing and only then does smod_validate call sval_code_wellformed, to report a malformed body
 * instead if there is one. Both are linear in the body size (br_table: in targets times label
 * arity); their stacks are bounded by the body size, the operand stack also by SVAL_MAX_VALS.
 */
#include <stdlib.h>
#include <string.h>

#include "sopcodes.h"
#include "svalid.h"

/* Operand-stack entries beyond this are an implementation limit (no real program comes near). */
#define SVAL_MAX_VALS (1u << 20)
#define SV_UNKNOWN 0

/* Opcode keys: (prefix ? 0x100 : 0) + code, as a switch over instructions wants them. */
enum {
#define SOP(prefix, code, ident, text, imm, sig, msize) SVK_##ident = ((prefix) ? 0x100 : 0) + (code),
#include "sopcodes.h"
#undef SOP
    SVK_FUNCTION = 0x1000, /* the frame of the function body itself */
};

static unsigned sval_key(const SInstr *in) { return (in->prefix ? 0x100u : 0u) + in->code; }

/* ---------------------------------------------------------------------------------------------- */
/* Decoding                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

/* Reads the next instruction of a body that has not reached its final `end` yet. `last`: the body is the
 * module's last, so its end is also the code section's (the spec words that case differently). */
static shoal_status sval_read(SVal *v, SReader *r, SInstr *in, bool last) {
    const char *why;
    size_t where;
    if (sr_eof(r))
        return sval_fail(v, SHOAL_ERR_MALFORMED, sr_offset(r),
                         last ? "unexpected end of section or function" : "END opcode expected");
    shoal_status st = smod_read_instr(r, in, &why, &where);
    if (st == SHOAL_OK) return SHOAL_OK;
    if (!strcmp(why, "unexpected end")) why = "unexpected end of section or function";
    return sval_fail(v, st, where, why);
}

static bool sval_needs_data_count(const SModule *m) { return !m->has_data_count && m->ndatas > 0; }

/* Decoding only: every instruction decodes, `else` sits directly in an `if`, the final `end` is the body's
 * last byte, memory.init and data.drop have their data count. */
static shoal_status sval_wf_body(SVal *v, const SFunc *f, bool last, uint8_t **kinds, size_t *cap) {
    SModule *m = v->m;
    SReader r = {f->code, f->code_end, m->bytes};
    /* Per open block: 0 block/loop/else, 1 an `if` still waiting for its `else`. */
    size_t depth = 0;
    (*kinds)[depth++] = 0;
    while (depth > 0) {
        SInstr in;
        shoal_status st = sval_read(v, &r, &in, last);
        if (st != SHOAL_OK) return st;
        switch (sval_key(&in)) {
        case SVK_block:
        case SVK_loop:
        case SVK_if_:
            if (depth == *cap) {
                uint8_t *k = realloc(*kinds, *cap * 2);
                if (!k) return sval_fail(v, SHOAL_ERR_NOMEM, in.offset, "out of memory");
                *kinds = k;
                *cap *= 2;
            }
            (*kinds)[depth++] = sval_key(&in) == SVK_if_;
            break;
        case SVK_else_:
            if ((*kinds)[depth - 1] != 1) return sval_fail(v, SHOAL_ERR_MALFORMED, in.offset, "END opcode expected");
            (*kinds)[depth - 1] = 0;
            break;
        case SVK_end: depth--; break;
        case SVK_memory_init:
        case SVK_data_drop:
            if (sval_needs_data_count(m))
                return sval_fail(v, SHOAL_ERR_MALFORMED, in.offset, "data count section required");
            break;
        default: break;
        }
    }
    if (!sr_eof(&r)) return sval_fail(v, SHOAL_ERR_MALFORMED, sr_offset(&r), "section size mismatch");
    return SHOAL_OK;
}

shoal_status sval_code_wellformed(SVal *v) {
    SModule *m = v->m;
    size_t cap = 64;
    uint8_t *kinds = malloc(cap);
    if (!kinds) return sval_fail(v, SHOAL_ERR_NOMEM, 0, "out of memory");
    shoal_status st = SHOAL_OK;
    uint32_t saved = v->func;
    for (uint32_t i = m->nfunc_imports; i < m->nfuncs && st == SHOAL_OK; i++) {
        v->func = i;
        st = sval_wf_body(v, &m->funcs[i], i + 1 == m->nfuncs, &kinds, &cap);
    }
    v->func = saved;
    free(kinds);
    return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* Types                                                                                           */
/* ---------------------------------------------------------------------------------------------- */

typedef struct SCtrl {
    unsigned key;     /* SVK_block, _loop, _if_, _else_ or SVK_FUNCTION */
    bool unreachable; /* the rest of this block is unreachable code */
    size_t height;    /* operand stack height at entry (below the parameters) */
    uint32_t nparams, nresults;
    const SValType *params, *results;
} SCtrl;

typedef struct SCode {
    SVal *v;
    SModule *m;
    SValType *vals;
    size_t nvals, capvals;
    SCtrl *ctrls;
    size_t nctrls, capctrls;
    SValType *tmp; /* br_table: the values of one label, popped and pushed back */
    size_t captmp;
    const SFuncType *ft;
    const SFunc *f;
    size_t at; /* offset of the instruction being checked */
} SCode;

/* One-element arrays of each value type, for the results of `block (result t)`. */
static const SValType sval_single[256] = {
    [SHOAL_I32] = SHOAL_I32, [SHOAL_I64] = SHOAL_I64, [SHOAL_F32] = SHOAL_F32,
    [SHOAL_F64] = SHOAL_F64, [SHOAL_FUNCREF] = SHOAL_FUNCREF, [SHOAL_EXTERNREF] = SHOAL_EXTERNREF,
};

static shoal_status sc_fail(SCode *c, const char *reason) { return sval_fail(c->v, SHOAL_ERR_INVALID, c->at, reason); }

static shoal_status sc_failf(SCode *c, const char *what, uint32_t index) {
    char msg[64];
    snprintf(msg, sizeof msg, "%s %u", what, index);
    return sc_fail(c, msg);
}

static shoal_status sc_push(SCode *c, SValType t) {
    if (c->nvals == c->capvals) {
        if (c->capvals >= SVAL_MAX_VALS)
            return sval_fail(c->v, SHOAL_ERR_UNSUPPORTED, c->at, "operand stack too deep (implementation limit)");
        size_t ncap = c->capvals ? c->capvals * 2 : 256;
        SValType *p = realloc(c->vals, ncap);
        if (!p) return sval_fail(c->v, SHOAL_ERR_NOMEM, c->at, "out of memory");
        c->vals = p;
        c->capvals = ncap;
    }
    c->vals[c->nvals++] = t;
    if (t == SHOAL_FUNCREF || t == SHOAL_EXTERNREF) c->m->refs_in_frames = true;
    return SHOAL_OK;
}

static shoal_status sc_pop(SCode *c, SValType want, SValType *got) {
    const SCtrl *fr = &c->ctrls[c->nctrls - 1];
    SValType t;
    if (c->nvals == fr->height) {
        if (!fr->unreachable) return sc_fail(c, "type mismatch");
        t = SV_UNKNOWN;
    } else {
        t = c->vals[--c->nvals];
    }
    if (t != want && t != SV_UNKNOWN && want != SV_UNKNOWN) return sc_fail(c, "type mismatch");
    if (got) *got = t;
    return SHOAL_OK;
}

static shoal_status sc_pop_n(SCode *c, const SValType *types, uint32_t n) {
    for (uint32_t i = n; i-- > 0;) {
        shoal_status st = sc_pop(c, types[i], NULL);
        if (st != SHOAL_OK) return st;
    }
    return SHOAL_OK;
}

static shoal_status sc_push_n(SCode *c, const SValType *types, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        shoal_status st = sc_push(c, types[i]);
        if (st != SHOAL_OK) return st;
    }
    return SHOAL_OK;
}

static shoal_status sc_push_ctrl(SCode *c, unsigned key, const SValType *params, uint32_t np,
                                 const SValType *results, uint32_t nr) {
    if (c->nctrls == c->capctrls) {
        size_t ncap = c->capctrls ? c->capctrls * 2 : 32;
        SCtrl *p = realloc(c->ctrls, ncap * sizeof *p);
        if (!p) return sval_fail(c->v, SHOAL_ERR_NOMEM, c->at, "out of memory");
        c->ctrls = p;
        c->capctrls = ncap;
    }
    c->ctrls[c->nctrls++] = (SCtrl){key, false, c->nvals, np, nr, params, results};
    return sc_push_n(c, params, np);
}

static shoal_status sc_pop_ctrl(SCode *c, SCtrl *out) {
    SCtrl fr = c->ctrls[c->nctrls - 1];
    shoal_status st = sc_pop_n(c, fr.results, fr.nresults);
    if (st != SHOAL_OK) return st;
    if (c->nvals != fr.height) return sc_fail(c, "type mismatch");
    c->nctrls--;
    *out = fr;
    return SHOAL_OK;
}

static void sc_unreachable(SCode *c) {
    SCtrl *fr = &c->ctrls[c->nctrls - 1];
    c->nvals = fr->height;
    fr->unreachable = true;
}

static void sc_label(const SCtrl *fr, const SValType **types, uint32_t *n) {
    if (fr->key == SVK_loop) *types = fr->params, *n = fr->nparams;
    else *types = fr->results, *n = fr->nresults;
}

static shoal_status sc_blocktype(SCode *c, const SInstr *in, const SValType **params, uint32_t *np,
                                 const SValType **results, uint32_t *nr) {
    *params = *results = NULL;
    *np = *nr = 0;
    if (in->blocktype == -64) return SHOAL_OK;
    if (in->blocktype < 0) {
        *results = &sval_single[in->vtype];
        *nr = 1;
        return SHOAL_OK;
    }
    if (in->blocktype >= c->m->ntypes) return sc_failf(c, "unknown type", (uint32_t)in->blocktype);
    const SFuncType *t = &c->m->types[in->blocktype];
    *params = t->params, *np = t->nparams;
    *results = t->results, *nr = t->nresults;
    return SHOAL_OK;
}

static SValType sc_sig_type(char ch) {
    switch (ch) {
    case 'i': return SHOAL_I32;
    case 'I': return SHOAL_I64;
    case 'f': return SHOAL_F32;
    case 'F': return SHOAL_F64;
    }
    return SV_UNKNOWN;
}

/* An instruction whose operands are fixed by its sopcodes.h signature. */
static shoal_status sc_sig(SCode *c, const char *sig) {
    const char *colon = sig;
    while (*colon != ':') colon++;
    shoal_status st;
    for (const char *p = colon; p > sig;)
        if ((st = sc_pop(c, sc_sig_type(*--p), NULL)) != SHOAL_OK) return st;
    for (const char *p = colon + 1; *p; p++)
        if ((st = sc_push(c, sc_sig_type(*p))) != SHOAL_OK) return st;
    return SHOAL_OK;
}

static bool sc_is_num(SValType t) {
    return t == SV_UNKNOWN || t == SHOAL_I32 || t == SHOAL_I64 || t == SHOAL_F32 || t == SHOAL_F64;
}
static bool sc_is_ref(SValType t) { return t == SV_UNKNOWN || t == SHOAL_FUNCREF || t == SHOAL_EXTERNREF; }

/* Index immediates of instructions typed by signature. */
static shoal_status sc_check_imm(SCode *c, const SInstr *in) {
    SModule *m = c->m;
    uint32_t ndata = m->has_data_count ? m->data_count : m->ndatas;
    switch ((enum simm_kind)in->op->imm) {
    case SIMM_MEMARG:
        if (m->nmems == 0) return sc_failf(c, "unknown memory", 0);
        if (in->a >= 32 || (1u << in->a) > in->op->msize)
            return sc_fail(c, "alignment must not be larger than natural");
        break;
    case SIMM_MEMIDX:
    case SIMM_MEMORY_COPY:
    case SIMM_MEMORY_FILL:
        if (m->nmems == 0) return sc_failf(c, "unknown memory", 0);
        break;
    case SIMM_MEMORY_INIT:
        if (m->nmems == 0) return sc_failf(c, "unknown memory", 0);
        if (in->a >= ndata) return sc_failf(c, "unknown data segment", in->a);
        break;
    case SIMM_DATA:
        if (in->a >= ndata) return sc_failf(c, "unknown data segment", in->a);
        break;
    case SIMM_TABLE:
        if (in->a >= m->ntables) return sc_failf(c, "unknown table", in->a);
        break;
    case SIMM_TABLE_INIT:
        if (in->b >= m->ntables) return sc_failf(c, "unknown table", in->b);
        if (in->a >= m->nelems) return sc_failf(c, "unknown elem segment", in->a);
        if (m->elems[in->a].type != m->tables[in->b].elem) return sc_fail(c, "type mismatch");
        break;
    case SIMM_ELEM:
        if (in->a >= m->nelems) return sc_failf(c, "unknown elem segment", in->a);
        break;
    case SIMM_TABLE_COPY:
        if (in->a >= m->ntables) return sc_failf(c, "unknown table", in->a);
        if (in->b >= m->ntables) return sc_failf(c, "unknown table", in->b);
        if (m->tables[in->a].elem != m->tables[in->b].elem) return sc_fail(c, "type mismatch");
        break;
    default: break;
    }
    return SHOAL_OK;
}

static shoal_status sc_local(SCode *c, uint32_t index, SValType *t) {
    if (index < c->ft->nparams) {
        *t = c->ft->params[index];
        return SHOAL_OK;
    }
    uint64_t k = (uint64_t)index - c->ft->nparams;
    if (k >= c->f->nlocals) return sc_failf(c, "unknown local", index);
    *t = c->f->local_types[k];
    return SHOAL_OK;
}

static shoal_status sc_br_table(SCode *c, const SInstr *in) {
    shoal_status st = sc_pop(c, SHOAL_I32, NULL);
    if (st != SHOAL_OK) return st;
    const uint8_t *p = in->targets;
    for (uint32_t i = 0; i < in->count; i++) (void)smod_br_table_next(&p);
    uint32_t dflt = smod_br_table_next(&p);
    if (dflt >= c->nctrls) return sc_failf(c, "unknown label", dflt);
    const SValType *types;
    uint32_t arity, n;
    sc_label(&c->ctrls[c->nctrls - 1 - dflt], &types, &arity);
    if (arity > c->captmp) {
        SValType *t = realloc(c->tmp, arity);
        if (!t) return sval_fail(c->v, SHOAL_ERR_NOMEM, c->at, "out of memory");
        c->tmp = t;
        c->captmp = arity;
    }
    p = in->targets;
    for (uint32_t i = 0; i < in->count; i++) {
        uint32_t l = smod_br_table_next(&p);
        if (l >= c->nctrls) return sc_failf(c, "unknown label", l);
        sc_label(&c->ctrls[c->nctrls - 1 - l], &types, &n);
        if (n != arity) return sc_fail(c, "type mismatch");
        for (uint32_t k = n; k-- > 0;)
            if ((st = sc_pop(c, types[k], &c->tmp[k])) != SHOAL_OK) return st;
        if ((st = sc_push_n(c, c->tmp, n)) != SHOAL_OK) return st;
    }
    sc_label(&c->ctrls[c->nctrls - 1 - dflt], &types, &n);
    if ((st = sc_pop_n(c, types, n)) != SHOAL_OK) return st;
    sc_unreachable(c);
    return SHOAL_OK;
}

static shoal_status sc_call(SCode *c, const SFuncType *t) {
    shoal_status st = sc_pop_n(c, t->params, t->nparams);
    if (st != SHOAL_OK) return st;
    return sc_push_n(c, t->results, t->nresults);
}

static shoal_status sc_instr(SCode *c, const SInstr *in) {
    SModule *m = c->m;
    shoal_status st;
    SValType t, t1, t2;
    const SValType *types, *params, *results;
    uint32_t n, np, nr;
    SCtrl fr;
    unsigned key = sval_key(in);
    if ((key == SVK_memory_init || key == SVK_data_drop) && sval_needs_data_count(m))
        return sval_fail(c->v, SHOAL_ERR_MALFORMED, c->at, "data count section required");
    if (in->op->sig) {
        if ((st = sc_check_imm(c, in)) != SHOAL_OK) return st;
        return sc_sig(c, in->op->sig);
    }
    switch (key) {
    case SVK_unreachable: sc_unreachable(c); return SHOAL_OK;
    case SVK_block:
    case SVK_loop:
        if ((st = sc_blocktype(c, in, &params, &np, &results, &nr)) != SHOAL_OK) return st;
        if ((st = sc_pop_n(c, params, np)) != SHOAL_OK) return st;
        return sc_push_ctrl(c, key, params, np, results, nr);
    case SVK_if_:
        if ((st = sc_blocktype(c, in, &params, &np, &results, &nr)) != SHOAL_OK) return st;
        if ((st = sc_pop(c, SHOAL_I32, NULL)) != SHOAL_OK) return st;
        if ((st = sc_pop_n(c, params, np)) != SHOAL_OK) return st;
        return sc_push_ctrl(c, key, params, np, results, nr);
    case SVK_else_:
        if (c->ctrls[c->nctrls - 1].key != SVK_if_)
            return sval_fail(c->v, SHOAL_ERR_MALFORMED, c->at, "END opcode expected");
        if ((st = sc_pop_ctrl(c, &fr)) != SHOAL_OK) return st;
        return sc_push_ctrl(c, SVK_else_, fr.params, fr.nparams, fr.results, fr.nresults);
    case SVK_end:
        if ((st = sc_pop_ctrl(c, &fr)) != SHOAL_OK) return st;
        /* An `if` without `else` has an implicit empty one, which passes the parameters through. */
        if (fr.key == SVK_if_ &&
            (fr.nparams != fr.nresults || (fr.nparams && memcmp(fr.params, fr.results, fr.nparams) != 0)))
            return sc_fail(c, "type mismatch");
        if (c->nctrls == 0) return SHOAL_OK;
        return sc_push_n(c, fr.results, fr.nresults);
    case SVK_br:
        if (in->a >= c->nctrls) return sc_failf(c, "unknown label", in->a);
        sc_label(&c->ctrls[c->nctrls - 1 - in->a], &types, &n);
        if ((st = sc_pop_n(c, types, n)) != SHOAL_OK) return st;
        sc_unreachable(c);
        return SHOAL_OK;
    case SVK_br_if:
        if (in->a >= c->nctrls) return sc_failf(c, "unknown label", in->a);
        if ((st = sc_pop(c, SHOAL_I32, NULL)) != SHOAL_OK) return st;
        sc_label(&c->ctrls[c->nctrls - 1 - in->a], &types, &n);
        if ((st = sc_pop_n(c, types, n)) != SHOAL_OK) return st;
        return sc_push_n(c, types, n);
    case SVK_br_table: return sc_br_table(c, in);
    case SVK_return_:
        if ((st = sc_pop_n(c, c->ft->results, c->ft->nresults)) != SHOAL_OK) return st;
        sc_unreachable(c);
        return SHOAL_OK;
    case SVK_call:
        if (in->a >= m->nfuncs) return sc_failf(c, "unknown function", in->a);
        return sc_call(c, smod_func_type(m, in->a));
    case SVK_call_indirect:
        if (in->b >= m->ntables) return sc_failf(c, "unknown table", in->b);
        if (m->tables[in->b].elem != SHOAL_FUNCREF) return sc_fail(c, "type mismatch");
        if (in->a >= m->ntypes) return sc_failf(c, "unknown type", in->a);
        if ((st = sc_pop(c, SHOAL_I32, NULL)) != SHOAL_OK) return st;
        return sc_call(c, &m->types[in->a]);
    case SVK_drop: return sc_pop(c, SV_UNKNOWN, NULL);
    case SVK_select:
        if ((st = sc_pop(c, SHOAL_I32, NULL)) != SHOAL_OK) return st;
        if ((st = sc_pop(c, SV_UNKNOWN, &t1)) != SHOAL_OK) return st;
        if ((st = sc_pop(c, SV_UNKNOWN, &t2)) != SHOAL_OK) return st;
        if (!sc_is_num(t1) || !sc_is_num(t2)) return sc_fail(c, "type mismatch");
        if (t1 != t2 && t1 != SV_UNKNOWN && t2 != SV_UNKNOWN) return sc_fail(c, "type mismatch");
        return sc_push(c, t1 == SV_UNKNOWN ? t2 : t1);
    case SVK_select_t:
        if (in->count != 1) return sc_fail(c, "invalid result arity");
        if ((st = sc_pop(c, SHOAL_I32, NULL)) != SHOAL_OK) return st;
        if ((st = sc_pop(c, in->vtype, NULL)) != SHOAL_OK) return st;
        if ((st = sc_pop(c, in->vtype, NULL)) != SHOAL_OK) return st;
        return sc_push(c, in->vtype);
    case SVK_local_get:
        if ((st = sc_local(c, in->a, &t)) != SHOAL_OK) return st;
        return sc_push(c, t);
    case SVK_local_set:
        if ((st = sc_local(c, in->a, &t)) != SHOAL_OK) return st;
        return sc_pop(c, t, NULL);
    case SVK_local_tee:
        if ((st = sc_local(c, in->a, &t)) != SHOAL_OK) return st;
        if ((st = sc_pop(c, t, NULL)) != SHOAL_OK) return st;
        return sc_push(c, t);
    case SVK_global_get:
        if (in->a >= m->nglobals) return sc_failf(c, "unknown global", in->a);
        return sc_push(c, m->global_types[in->a].type);
    case SVK_global_set:
        if (in->a >= m->nglobals) return sc_failf(c, "unknown global", in->a);
        if (!m->global_types[in->a].mutable_) return sc_fail(c, "global is immutable");
        return sc_pop(c, m->global_types[in->a].type, NULL);
    case SVK_table_get:
        if (in->a >= m->ntables) return sc_failf(c, "unknown table", in->a);
        if ((st = sc_pop(c, SHOAL_I32, NULL)) != SHOAL_OK) return st;
        return sc_push(c, m->tables[in->a].elem);
    case SVK_table_set:
        if (in->a >= m->ntables) return sc_failf(c, "unknown table", in->a);
        if ((st = sc_pop(c, m->tables[in->a].elem, NULL)) != SHOAL_OK) return st;
        return sc_pop(c, SHOAL_I32, NULL);
    case SVK_table_grow:
        if (in->a >= m->ntables) return sc_failf(c, "unknown table", in->a);
        if ((st = sc_pop(c, SHOAL_I32, NULL)) != SHOAL_OK) return st;
        if ((st = sc_pop(c, m->tables[in->a].elem, NULL)) != SHOAL_OK) return st;
        return sc_push(c, SHOAL_I32);
    case SVK_table_fill:
        if (in->a >= m->ntables) return sc_failf(c, "unknown table", in->a);
        if ((st = sc_pop(c, SHOAL_I32, NULL)) != SHOAL_OK) return st;
        if ((st = sc_pop(c, m->tables[in->a].elem, NULL)) != SHOAL_OK) return st;
        return sc_pop(c, SHOAL_I32, NULL);
    case SVK_ref_null: return sc_push(c, in->vtype);
    case SVK_ref_is_null:
        if ((st = sc_pop(c, SV_UNKNOWN, &t)) != SHOAL_OK) return st;
        if (!sc_is_ref(t)) return sc_fail(c, "type mismatch");
        return sc_push(c, SHOAL_I32);
    case SVK_ref_func:
        if (in->a >= m->nfuncs) return sc_failf(c, "unknown function", in->a);
        if (!(m->declared_refs[in->a / 8] & (1u << (in->a % 8)))) return sc_fail(c, "undeclared function reference");
        return sc_push(c, SHOAL_FUNCREF);
    default: break;
    }
    /* Every opcode of sopcodes.h without a signature is handled above. */
    return sval_fail(c->v, SHOAL_ERR_MALFORMED, c->at, "illegal opcode");
}

static shoal_status sval_body(SCode *c, uint32_t fidx) {
    SModule *m = c->m;
    c->f = &m->funcs[fidx];
    c->ft = smod_func_type(m, fidx); /* type indices were checked before bodies */
    c->nvals = c->nctrls = 0;
    c->at = c->f->body_offset;
    shoal_status st = sc_push_ctrl(c, SVK_FUNCTION, NULL, 0, c->ft->results, c->ft->nresults);
    if (st != SHOAL_OK) return st;
    SReader r = {c->f->code, c->f->code_end, m->bytes};
    bool last = fidx + 1 == m->nfuncs;
    while (c->nctrls > 0) {
        SInstr in;
        if ((st = sval_read(c->v, &r, &in, last)) != SHOAL_OK) return st;
        c->at = in.offset;
        if ((st = sc_instr(c, &in)) != SHOAL_OK) return st;
    }
    if (!sr_eof(&r)) return sval_fail(c->v, SHOAL_ERR_MALFORMED, sr_offset(&r), "section size mismatch");
    return SHOAL_OK;
}

shoal_status sval_code(SVal *v) {
    SModule *m = v->m;
    SCode c;
    memset(&c, 0, sizeof c);
    c.v = v;
    c.m = m;
    shoal_status st = SHOAL_OK;
    for (uint32_t i = m->nfunc_imports; i < m->nfuncs && st == SHOAL_OK; i++) {
        v->func = i;
        const SFunc *f = &m->funcs[i];
        const SFuncType *ft = &m->types[f->type_index];
        for (uint32_t k = 0; k < ft->nparams; k++)
            if (ft->params[k] == SHOAL_FUNCREF || ft->params[k] == SHOAL_EXTERNREF) m->refs_in_frames = true;
        for (uint32_t k = 0; k < f->nlocals; k++)
            if (f->local_types[k] == SHOAL_FUNCREF || f->local_types[k] == SHOAL_EXTERNREF) m->refs_in_frames = true;
        st = sval_body(&c, i);
    }
    v->func = SHOAL_NO_FUNC;
    free(c.vals);
    free(c.ctrls);
    free(c.tmp);
    return st;
}
