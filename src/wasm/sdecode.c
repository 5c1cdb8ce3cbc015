/*
 * sdecode.c: the WebAssembly 2.0 binary decoder. Turns bytes into an SModule (smodule.h), checking
 * everything the binary format requires (section order and sizes, LEB128 forms, UTF-8 names, counts) so
 * that the validator (svalid.c) and the translator see only well-formed structure.
 *
 * Invariants: every read goes through an SReader bounded by the current section; every allocation is
 * sized by a count already checked against the bytes left (each element takes at least one byte), so a
 * lying count cannot make us allocate more than a small multiple of the module's size. Errors carry
 * "section NAME, offset 0xN: reason" with the spec's wording as the reason.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smodule.h"
#include "sopcodes.h"

/* Locals per function. The format allows 2^32-1; engines cap it (V8 and wasmtime at 50000) because the
 * interpreter's frame is sized by it. */
#define SDEC_MAX_LOCALS 50000u
/* Locals are expanded to one byte each, so a 7-byte body can ask for 50000 bytes. The module as a whole
 * gets a budget linear in its size, which no compiler output comes near. */
#define SDEC_LOCALS_BUDGET(size) (((uint64_t)1 << 20) + (uint64_t)(size) * 16)
/* Parameters and results per function type, as V8 and wasmtime: validation costs each call, block and
 * branch its arity, so an unbounded arity would make validation time quadratic in the module size. */
#define SDEC_MAX_ARITY 1000u

/* ---------------------------------------------------------------------------------------------- */
/* Opcode tables (from sopcodes.h)                                                                  */
/* ---------------------------------------------------------------------------------------------- */

/* Every instruction once, in sopcodes.h order. */
enum {
#define SOP(prefix, code, ident, text, imm, sig, msize) SDEC_OPI_##ident,
#include "sopcodes.h"
#undef SOP
};
static const SOpInfo sdec_ops[] = {
#define SOP(prefix, code, ident, text, imm, sig, msize) {(text), (sig), (imm), (msize)},
#include "sopcodes.h"
#undef SOP
};

/* (prefix ? 0x100 : 0) + code -> 1 + index into sdec_ops; 0 where no instruction exists. The misc
 * prefix's sub-opcodes of 2.0 stop at 17. */
#define SDEC_NKEYS 0x112
static const uint8_t sdec_index[SDEC_NKEYS] = {
#define SOP(prefix, code, ident, text, imm, sig, msize) [((prefix) ? 0x100 : 0) + (code)] = SDEC_OPI_##ident + 1,
#include "sopcodes.h"
#undef SOP
};

static const SOpInfo *sdec_lookup(uint8_t prefix, uint32_t code) {
    uint32_t key = (prefix ? 0x100u : 0u) + code;
    if (code > 0xff || key >= SDEC_NKEYS || !sdec_index[key]) return NULL;
    return &sdec_ops[sdec_index[key] - 1];
}

bool smod_valtype_ok(uint8_t b) {
    return b == SHOAL_I32 || b == SHOAL_I64 || b == SHOAL_F32 || b == SHOAL_F64 || b == SHOAL_FUNCREF ||
           b == SHOAL_EXTERNREF;
}

shoal_status smod_error(shoal_error *err, shoal_status status, uint32_t func, size_t offset,
                        const char *fmt, ...) {
    if (!err) return status;
    memset(err, 0, sizeof *err);
    err->status = status;
    err->func_index = func;
    err->code_offset = offset > UINT32_MAX ? UINT32_MAX : (uint32_t)offset;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return status;
}

/* ---------------------------------------------------------------------------------------------- */
/* Instructions                                                                                      */
/* ---------------------------------------------------------------------------------------------- */

#define SDEC_FAIL(reason)                     \
    do {                                      \
        *why = (reason);                      \
        *where = sr_offset(r);                \
        return SHOAL_ERR_MALFORMED;           \
    } while (0)
#define SDEC_LEB(expr)                                  \
    do {                                                \
        size_t at_ = sr_offset(r);                      \
        SReadError e_ = (expr);                         \
        if (e_ != SR_OK) {                              \
            *why = sr_error_text(e_);                   \
            *where = at_;                               \
            return SHOAL_ERR_MALFORMED;                 \
        }                                               \
    } while (0)

static shoal_status sdec_zero_byte(SReader *r, const char **why, size_t *where) {
    uint8_t b;
    if (!sr_u8(r, &b)) SDEC_FAIL("unexpected end");
    if (b != 0) {
        r->p--;
        SDEC_FAIL("zero byte expected");
    }
    return SHOAL_OK;
}

uint32_t smod_br_table_next(const uint8_t **p) {
    uint32_t v = 0;
    unsigned shift = 0;
    for (;;) {
        uint8_t b = *(*p)++;
        if (shift < 32) v |= (uint32_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
    }
    return v;
}

shoal_status smod_read_instr(SReader *r, SInstr *in, const char **why, size_t *where) {
    memset(in, 0, sizeof *in);
    in->offset = sr_offset(r);
    uint8_t b;
    if (!sr_u8(r, &b)) SDEC_FAIL("unexpected end");
    if (b == SOP_PREFIX_MISC) {
        uint32_t sub;
        SDEC_LEB(sr_u32(r, &sub));
        in->prefix = SOP_PREFIX_MISC;
        in->code = sub;
        if (!(in->op = sdec_lookup(SOP_PREFIX_MISC, sub))) {
            *why = "illegal opcode";
            *where = in->offset;
            return SHOAL_ERR_MALFORMED;
        }
    } else if (b == SOP_PREFIX_SIMD) {
        *why = "unsupported: SIMD (v128)";
        *where = in->offset;
        return SHOAL_ERR_UNSUPPORTED;
    } else {
        in->code = b;
        if (!(in->op = sdec_lookup(0, b))) {
            *why = "illegal opcode";
            *where = in->offset;
            return SHOAL_ERR_MALFORMED;
        }
    }
    shoal_status st;
    switch ((enum simm_kind)in->op->imm) {
    case SIMM_NONE: break;
    case SIMM_BLOCK: {
        int64_t bt;
        size_t at = sr_offset(r);
        SDEC_LEB(sr_s33(r, &bt));
        in->blocktype = bt;
        if (bt < 0 && bt != -64) {
            /* A value type is one byte (0x7f i32 ... 0x6f externref, i.e. -1 ... -17 as s33); longer
             * or other negative encodings name nothing. */
            uint8_t t = bt >= -64 && sr_offset(r) - at == 1 ? (uint8_t)(bt + 0x80) : 0;
            if (t == SHOAL_V128) {
                *why = "unsupported: SIMD (v128)";
                *where = at;
                return SHOAL_ERR_UNSUPPORTED;
            }
            if (!smod_valtype_ok(t)) {
                *why = "malformed value type";
                *where = at;
                return SHOAL_ERR_MALFORMED;
            }
            in->vtype = t;
        }
        break;
    }
    case SIMM_LABEL:
    case SIMM_FUNC:
    case SIMM_LOCAL:
    case SIMM_GLOBAL:
    case SIMM_TABLE:
    case SIMM_DATA:
    case SIMM_ELEM:
        if (r->p < r->end && *r->p < 0x80) in->a = *r->p++; /* the common one-byte index, inline */
        else SDEC_LEB(sr_u32(r, &in->a));
        break;
    case SIMM_BR_TABLE: {
        SDEC_LEB(sr_u32(r, &in->count));
        if (in->count > sr_left(r)) SDEC_FAIL("unexpected end");
        in->targets = r->p;
        uint32_t t;
        for (uint32_t i = 0; i <= in->count; i++) SDEC_LEB(sr_u32(r, &t));
        break;
    }
    case SIMM_CALL_INDIRECT:
        SDEC_LEB(sr_u32(r, &in->a));
        SDEC_LEB(sr_u32(r, &in->b));
        break;
    case SIMM_MEMARG: {
        uint32_t align, off;
        size_t at = sr_offset(r);
        SDEC_LEB(sr_u32(r, &align));
        /* An exponent that cannot fit a 32-bit address is malformed (as is bit 6, multi-memory's memory
         * index flag); smaller ones that exceed the access size are a validation error. */
        if (align >= 32) {
            *why = "malformed memop flags";
            *where = at;
            return SHOAL_ERR_MALFORMED;
        }
        SDEC_LEB(sr_u32(r, &off));
        in->a = align;
        in->value = off;
        break;
    }
    case SIMM_MEMIDX:
        if ((st = sdec_zero_byte(r, why, where)) != SHOAL_OK) return st;
        break;
    case SIMM_I32: {
        int32_t v;
        if (r->p < r->end && *r->p < 0x80) v = (int32_t)((uint32_t)*r->p++ << 25) >> 25; /* one byte */
        else SDEC_LEB(sr_s32(r, &v));
        in->value = (uint32_t)v;
        break;
    }
    case SIMM_I64: {
        int64_t v;
        SDEC_LEB(sr_s64(r, &v));
        in->value = (uint64_t)v;
        break;
    }
    case SIMM_F32: {
        uint32_t v;
        if (!sr_f32(r, &v)) SDEC_FAIL("unexpected end");
        in->value = v;
        break;
    }
    case SIMM_F64:
        if (!sr_f64(r, &in->value)) SDEC_FAIL("unexpected end");
        break;
    case SIMM_REFTYPE: {
        uint8_t t;
        if (!sr_u8(r, &t)) SDEC_FAIL("unexpected end");
        if (t != SHOAL_FUNCREF && t != SHOAL_EXTERNREF) {
            r->p--;
            SDEC_FAIL("malformed reference type");
        }
        in->vtype = t;
        break;
    }
    case SIMM_SELECT_T: {
        SDEC_LEB(sr_u32(r, &in->count));
        if (in->count > sr_left(r)) SDEC_FAIL("unexpected end");
        for (uint32_t i = 0; i < in->count; i++) {
            uint8_t t;
            if (!sr_u8(r, &t)) SDEC_FAIL("unexpected end");
            if (t == SHOAL_V128) {
                *why = "unsupported: SIMD (v128)";
                *where = sr_offset(r) - 1;
                return SHOAL_ERR_UNSUPPORTED;
            }
            if (!smod_valtype_ok(t)) {
                r->p--;
                SDEC_FAIL("malformed value type");
            }
            if (i == 0) in->vtype = t;
        }
        break;
    }
    case SIMM_MEMORY_INIT:
        SDEC_LEB(sr_u32(r, &in->a));
        if ((st = sdec_zero_byte(r, why, where)) != SHOAL_OK) return st;
        break;
    case SIMM_MEMORY_COPY:
        if ((st = sdec_zero_byte(r, why, where)) != SHOAL_OK) return st;
        if ((st = sdec_zero_byte(r, why, where)) != SHOAL_OK) return st;
        break;
    case SIMM_MEMORY_FILL:
        if ((st = sdec_zero_byte(r, why, where)) != SHOAL_OK) return st;
        break;
    case SIMM_TABLE_INIT:
    case SIMM_TABLE_COPY:
        SDEC_LEB(sr_u32(r, &in->a));
        SDEC_LEB(sr_u32(r, &in->b));
        break;
    }
    return SHOAL_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* The decoder proper                                                                               */
/* ---------------------------------------------------------------------------------------------- */

typedef struct SDec {
    SModule *m;
    SReader r;           /* bounded by the current section */
    shoal_error *err;
    const char *section; /* for messages */
    uint32_t nfunc_decl; /* entries of the function section */
    bool have_funcs;     /* funcs[] built */
    bool seen_code;
    uint64_t locals_total; /* over all bodies so far, against SDEC_LOCALS_BUDGET */
    const uint8_t *names; /* the "name" custom section's payload, decoded at the end */
    size_t names_size;
} SDec;

static shoal_status sdec_fail_at(SDec *d, shoal_status st, size_t offset, const char *reason) {
    return smod_error(d->err, st, SHOAL_NO_FUNC, offset, "section %s, offset 0x%zx: %s", d->section, offset,
                      reason);
}

/* Running out of bytes inside a section (the spec's wording does not care whether the module ended too). */
static shoal_status sdec_eof(SDec *d) {
    return sdec_fail_at(d, SHOAL_ERR_MALFORMED, sr_offset(&d->r), "unexpected end of section or function");
}

static shoal_status sdec_leb_fail(SDec *d, SReadError e, size_t at) {
    if (e == SR_EOF) return sdec_eof(d);
    return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, sr_error_text(e));
}

static shoal_status sdec_u32(SDec *d, uint32_t *out) {
    size_t at = sr_offset(&d->r);
    *out = 0;
    SReadError e = sr_u32(&d->r, out);
    return e == SR_OK ? SHOAL_OK : sdec_leb_fail(d, e, at);
}

static shoal_status sdec_byte(SDec *d, uint8_t *out) {
    *out = 0; /* defined on failure too, which keeps gcc's flow analysis quiet */
    return sr_u8(&d->r, out) ? SHOAL_OK : sdec_eof(d);
}

/* A vector's count, checked against the bytes left (every element is at least one byte). */
static shoal_status sdec_count(SDec *d, uint32_t *n) {
    size_t at = sr_offset(&d->r);
    shoal_status st = sdec_u32(d, n);
    if (st != SHOAL_OK) return st;
    if (*n > sr_left(&d->r))
        return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "unexpected end of section or function");
    return SHOAL_OK;
}

static void *sdec_calloc(size_t n, size_t size) { return calloc(n ? n : 1, size); }

static shoal_status sdec_nomem(SDec *d) {
    return sdec_fail_at(d, SHOAL_ERR_NOMEM, sr_offset(&d->r), "out of memory");
}

/* Well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF). */
static bool sdec_utf8_ok(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
        else return false;
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

/* A name: length-prefixed UTF-8, returned as a NUL-terminated copy when out != NULL. */
static shoal_status sdec_name(SDec *d, char **out, const uint8_t **raw, uint32_t *rawlen) {
    uint32_t len;
    size_t at = sr_offset(&d->r);
    shoal_status st = sdec_u32(d, &len);
    if (st != SHOAL_OK) return st;
    const uint8_t *p;
    if (!sr_bytes(&d->r, len, &p)) return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "length out of bounds");
    if (!sdec_utf8_ok(p, len)) return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "malformed UTF-8 encoding");
    if (raw) *raw = p, *rawlen = len;
    if (out) {
        char *s = malloc((size_t)len + 1);
        if (!s) return sdec_nomem(d);
        memcpy(s, p, len);
        s[len] = 0;
        *out = s;
    }
    return SHOAL_OK;
}

static shoal_status sdec_valtype(SDec *d, SValType *out) {
    uint8_t b;
    size_t at = sr_offset(&d->r);
    shoal_status st = sdec_byte(d, &b);
    if (st != SHOAL_OK) return st;
    if (b == SHOAL_V128) return sdec_fail_at(d, SHOAL_ERR_UNSUPPORTED, at, "unsupported: SIMD (v128)");
    if (!smod_valtype_ok(b)) return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "malformed value type");
    *out = b;
    return SHOAL_OK;
}

static shoal_status sdec_reftype(SDec *d, SValType *out) {
    uint8_t b;
    size_t at = sr_offset(&d->r);
    shoal_status st = sdec_byte(d, &b);
    if (st != SHOAL_OK) return st;
    if (b != SHOAL_FUNCREF && b != SHOAL_EXTERNREF)
        return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "malformed reference type");
    *out = b;
    return SHOAL_OK;
}

static shoal_status sdec_limits(SDec *d, SLimits *l) {
    uint8_t flag;
    size_t at = sr_offset(&d->r);
    shoal_status st = sdec_byte(d, &flag);
    if (st != SHOAL_OK) return st;
    /* 0x02/0x03 (shared) belong to threads, 0x04+ to memory64: not 2.0. */
    if (flag > 1) return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "integer too large");
    if ((st = sdec_u32(d, &l->min)) != SHOAL_OK) return st;
    l->has_max = flag == 1;
    l->max = 0;
    if (l->has_max && (st = sdec_u32(d, &l->max)) != SHOAL_OK) return st;
    return SHOAL_OK;
}

static shoal_status sdec_tabletype(SDec *d, STableType *t) {
    shoal_status st = sdec_reftype(d, &t->elem);
    if (st != SHOAL_OK) return st;
    return sdec_limits(d, &t->limits);
}

static shoal_status sdec_globaltype(SDec *d, SGlobalType *g) {
    shoal_status st = sdec_valtype(d, &g->type);
    if (st != SHOAL_OK) return st;
    uint8_t mut;
    size_t at = sr_offset(&d->r);
    if ((st = sdec_byte(d, &mut)) != SHOAL_OK) return st;
    if (mut > 1) return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "malformed mutability");
    g->mutable_ = mut == 1;
    return SHOAL_OK;
}

/* A constant expression. Well-formedness is checked here (every instruction up to the matching `end`
 * decodes); whether it is constant and of the right shape is recorded in e->invalid for the validator,
 * because those are validation errors, not decoding ones. */
static shoal_status sdec_const_expr(SDec *d, SConstExpr *e) {
    memset(e, 0, sizeof *e);
    e->offset = (uint32_t)sr_offset(&d->r);
    uint32_t depth = 0, ninstr = 0;
    bool nonconst = false;
    for (;;) {
        SInstr in;
        const char *why;
        size_t where;
        shoal_status st = smod_read_instr(&d->r, &in, &why, &where);
        if (st != SHOAL_OK) {
            if (st == SHOAL_ERR_MALFORMED && !strcmp(why, "unexpected end")) return sdec_eof(d);
            return sdec_fail_at(d, st, where, why);
        }
        if (in.prefix == 0 && in.code == 0x0B) { /* end */
            if (depth == 0) break;
            depth--;
            continue;
        }
        ninstr++;
        if (in.prefix == 0 && (in.code == 0x02 || in.code == 0x03 || in.code == 0x04)) depth++;
        SConstExpr v = {0};
        v.offset = e->offset;
        switch (in.prefix == 0 ? in.code : 0x100) {
        case 0x41: v.kind = SCONST_VALUE, v.type = SHOAL_I32, v.bits = in.value; break;
        case 0x42: v.kind = SCONST_VALUE, v.type = SHOAL_I64, v.bits = in.value; break;
        case 0x43: v.kind = SCONST_VALUE, v.type = SHOAL_F32, v.bits = in.value; break;
        case 0x44: v.kind = SCONST_VALUE, v.type = SHOAL_F64, v.bits = in.value; break;
        case 0x23: v.kind = SCONST_GLOBAL_GET, v.index = in.a; break; /* type set by the validator */
        case 0xD0: v.kind = SCONST_REF_NULL, v.type = in.vtype; break;
        case 0xD2: v.kind = SCONST_REF_FUNC, v.type = SHOAL_FUNCREF, v.index = in.a; break;
        default: nonconst = true; break;
        }
        if (ninstr == 1) *e = v;
    }
    if (nonconst) e->invalid = "constant expression required";
    else if (ninstr != 1) e->invalid = "type mismatch";
    return SHOAL_OK;
}

/* Index spaces: imports first, then the module's own definitions. */
static shoal_status sdec_build_funcs(SDec *d, uint32_t ndecl) {
    SModule *m = d->m;
    uint64_t total = (uint64_t)m->nfunc_imports + ndecl;
    if (total > UINT32_MAX) return sdec_fail_at(d, SHOAL_ERR_MALFORMED, sr_offset(&d->r), "too many functions");
    m->funcs = sdec_calloc((size_t)total, sizeof *m->funcs);
    if (!m->funcs) return sdec_nomem(d);
    m->nfuncs = (uint32_t)total;
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->nimports; i++)
        if (m->imports[i].kind == SHOAL_EXTERN_FUNC) {
            m->funcs[k].type_index = m->imports[i].type_index;
            m->funcs[k].imported = true;
            m->funcs[k].decl_offset = m->imports[i].offset;
            k++;
        }
    d->have_funcs = true;
    d->nfunc_decl = ndecl;
    return SHOAL_OK;
}

static shoal_status sdec_type_section(SDec *d) {
    SModule *m = d->m;
    uint32_t n;
    shoal_status st = sdec_count(d, &n);
    if (st != SHOAL_OK) return st;
    m->types = sdec_calloc(n, sizeof *m->types);
    if (!m->types) return sdec_nomem(d);
    for (uint32_t i = 0; i < n; i++) {
        SFuncType *t = &m->types[i];
        uint8_t form;
        size_t at = sr_offset(&d->r);
        if ((st = sdec_byte(d, &form)) != SHOAL_OK) return st;
        if (form != 0x60) return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "malformed function type");
        m->ntypes = i + 1;
        for (int pass = 0; pass < 2; pass++) {
            uint32_t cnt;
            at = sr_offset(&d->r);
            if ((st = sdec_count(d, &cnt)) != SHOAL_OK) return st;
            if (cnt > SDEC_MAX_ARITY)
                return sdec_fail_at(d, SHOAL_ERR_UNSUPPORTED, at,
                                    pass ? "too many results (implementation limit 1000)"
                                         : "too many parameters (implementation limit 1000)");
            SValType *v = sdec_calloc(cnt, 1);
            if (!v) return sdec_nomem(d);
            if (pass == 0) t->params = v, t->nparams = cnt;
            else t->results = v, t->nresults = cnt;
            for (uint32_t k = 0; k < cnt; k++)
                if ((st = sdec_valtype(d, &v[k])) != SHOAL_OK) return st;
        }
    }
    return SHOAL_OK;
}

static shoal_status sdec_import_section(SDec *d) {
    SModule *m = d->m;
    uint32_t n;
    shoal_status st = sdec_count(d, &n);
    if (st != SHOAL_OK) return st;
    m->imports = sdec_calloc(n, sizeof *m->imports);
    if (!m->imports) return sdec_nomem(d);
    for (uint32_t i = 0; i < n; i++) {
        SImport *im = &m->imports[i];
        m->nimports = i + 1;
        im->offset = (uint32_t)sr_offset(&d->r);
        const uint8_t *raw;
        if ((st = sdec_name(d, &im->module, &raw, &im->module_len)) != SHOAL_OK) return st;
        if ((st = sdec_name(d, &im->name, &raw, &im->name_len)) != SHOAL_OK) return st;
        uint8_t kind;
        size_t at = sr_offset(&d->r);
        if ((st = sdec_byte(d, &kind)) != SHOAL_OK) return st;
        switch (kind) {
        case 0:
            im->kind = SHOAL_EXTERN_FUNC;
            st = sdec_u32(d, &im->type_index);
            m->nfunc_imports++;
            break;
        case 1:
            im->kind = SHOAL_EXTERN_TABLE;
            st = sdec_tabletype(d, &im->table);
            m->ntable_imports++;
            break;
        case 2:
            im->kind = SHOAL_EXTERN_MEMORY;
            st = sdec_limits(d, &im->memory);
            m->nmem_imports++;
            break;
        case 3:
            im->kind = SHOAL_EXTERN_GLOBAL;
            st = sdec_globaltype(d, &im->global);
            m->nglobal_imports++;
            break;
        default: return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "malformed import kind");
        }
        if (st != SHOAL_OK) return st;
    }
    return SHOAL_OK;
}

static shoal_status sdec_function_section(SDec *d) {
    uint32_t n;
    shoal_status st = sdec_count(d, &n);
    if (st != SHOAL_OK) return st;
    if ((st = sdec_build_funcs(d, n)) != SHOAL_OK) return st;
    for (uint32_t i = 0; i < n; i++) {
        SFunc *f = &d->m->funcs[d->m->nfunc_imports + i];
        f->decl_offset = (uint32_t)sr_offset(&d->r);
        if ((st = sdec_u32(d, &f->type_index)) != SHOAL_OK) return st;
    }
    return SHOAL_OK;
}

static shoal_status sdec_build_tables(SDec *d, uint32_t ndecl) {
    SModule *m = d->m;
    m->tables = sdec_calloc((size_t)m->ntable_imports + ndecl, sizeof *m->tables);
    if (!m->tables) return sdec_nomem(d);
    m->ntables = m->ntable_imports + ndecl; /* both were bounded by the module size */
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->nimports; i++)
        if (m->imports[i].kind == SHOAL_EXTERN_TABLE) m->tables[k++] = m->imports[i].table;
    return SHOAL_OK;
}

static shoal_status sdec_build_mems(SDec *d, uint32_t ndecl) {
    SModule *m = d->m;
    m->mems = sdec_calloc((size_t)m->nmem_imports + ndecl, sizeof *m->mems);
    if (!m->mems) return sdec_nomem(d);
    m->nmems = m->nmem_imports + ndecl;
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->nimports; i++)
        if (m->imports[i].kind == SHOAL_EXTERN_MEMORY) m->mems[k++] = m->imports[i].memory;
    return SHOAL_OK;
}

static shoal_status sdec_build_globals(SDec *d, uint32_t ndecl) {
    SModule *m = d->m;
    size_t total = (size_t)m->nglobal_imports + ndecl;
    m->global_types = sdec_calloc(total, sizeof *m->global_types);
    m->global_inits = sdec_calloc(total, sizeof *m->global_inits);
    if (!m->global_types || !m->global_inits) return sdec_nomem(d);
    m->nglobals = m->nglobal_imports; /* grows as definitions decode */
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->nimports; i++)
        if (m->imports[i].kind == SHOAL_EXTERN_GLOBAL) m->global_types[k++] = m->imports[i].global;
    return SHOAL_OK;
}

static shoal_status sdec_table_section(SDec *d) {
    uint32_t n;
    shoal_status st = sdec_count(d, &n);
    if (st != SHOAL_OK) return st;
    if ((st = sdec_build_tables(d, n)) != SHOAL_OK) return st;
    for (uint32_t i = 0; i < n; i++)
        if ((st = sdec_tabletype(d, &d->m->tables[d->m->ntable_imports + i])) != SHOAL_OK) return st;
    return SHOAL_OK;
}

static shoal_status sdec_memory_section(SDec *d) {
    uint32_t n;
    shoal_status st = sdec_count(d, &n);
    if (st != SHOAL_OK) return st;
    if ((st = sdec_build_mems(d, n)) != SHOAL_OK) return st;
    for (uint32_t i = 0; i < n; i++)
        if ((st = sdec_limits(d, &d->m->mems[d->m->nmem_imports + i])) != SHOAL_OK) return st;
    return SHOAL_OK;
}

static shoal_status sdec_global_section(SDec *d) {
    SModule *m = d->m;
    uint32_t n;
    shoal_status st = sdec_count(d, &n);
    if (st != SHOAL_OK) return st;
    if ((st = sdec_build_globals(d, n)) != SHOAL_OK) return st;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t g = m->nglobal_imports + i;
        if ((st = sdec_globaltype(d, &m->global_types[g])) != SHOAL_OK) return st;
        if ((st = sdec_const_expr(d, &m->global_inits[g])) != SHOAL_OK) return st;
        m->nglobals = g + 1;
    }
    return SHOAL_OK;
}

static shoal_status sdec_export_section(SDec *d) {
    SModule *m = d->m;
    uint32_t n;
    shoal_status st = sdec_count(d, &n);
    if (st != SHOAL_OK) return st;
    m->exports = sdec_calloc(n, sizeof *m->exports);
    if (!m->exports) return sdec_nomem(d);
    for (uint32_t i = 0; i < n; i++) {
        SExport *ex = &m->exports[i];
        m->nexports = i + 1;
        ex->offset = (uint32_t)sr_offset(&d->r);
        const uint8_t *raw;
        if ((st = sdec_name(d, &ex->name, &raw, &ex->name_len)) != SHOAL_OK) return st;
        uint8_t kind;
        size_t at = sr_offset(&d->r);
        if ((st = sdec_byte(d, &kind)) != SHOAL_OK) return st;
        if (kind > 3) return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "malformed export kind");
        ex->kind = (shoal_extern_kind)kind;
        if ((st = sdec_u32(d, &ex->index)) != SHOAL_OK) return st;
    }
    return SHOAL_OK;
}

static shoal_status sdec_start_section(SDec *d) {
    d->m->has_start = true;
    return sdec_u32(d, &d->m->start);
}

static shoal_status sdec_elem_section(SDec *d) {
    SModule *m = d->m;
    uint32_t n;
    shoal_status st = sdec_count(d, &n);
    if (st != SHOAL_OK) return st;
    m->elems = sdec_calloc(n, sizeof *m->elems);
    if (!m->elems) return sdec_nomem(d);
    for (uint32_t i = 0; i < n; i++) {
        SElem *el = &m->elems[i];
        m->nelems = i + 1;
        uint32_t flags;
        size_t at = sr_offset(&d->r);
        if ((st = sdec_u32(d, &flags)) != SHOAL_OK) return st;
        if (flags > 7) return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "malformed elements segment kind");
        /* bit 0: passive or declarative (bit 1 picks which); when active, bit 1: explicit table index;
         * bit 2: items are expressions rather than function indices. */
        bool exprs = flags & 4;
        el->type = SHOAL_FUNCREF;
        if (flags & 1) {
            el->mode = (flags & 2) ? SSEG_DECLARATIVE : SSEG_PASSIVE;
        } else {
            el->mode = SSEG_ACTIVE;
            if ((flags & 2) && (st = sdec_u32(d, &el->table)) != SHOAL_OK) return st;
            if ((st = sdec_const_expr(d, &el->offset)) != SHOAL_OK) return st;
        }
        if (flags & 3) { /* an explicit element kind or type */
            if (exprs) {
                if ((st = sdec_reftype(d, &el->type)) != SHOAL_OK) return st;
            } else {
                uint8_t kind;
                at = sr_offset(&d->r);
                if ((st = sdec_byte(d, &kind)) != SHOAL_OK) return st;
                if (kind != 0) return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "malformed element kind");
            }
        }
        uint32_t cnt;
        if ((st = sdec_count(d, &cnt)) != SHOAL_OK) return st;
        el->items = sdec_calloc(cnt, sizeof *el->items);
        if (!el->items) return sdec_nomem(d);
        for (uint32_t k = 0; k < cnt; k++) {
            SConstExpr *e = &el->items[k];
            el->count = k + 1;
            if (exprs) {
                if ((st = sdec_const_expr(d, e)) != SHOAL_OK) return st;
            } else {
                e->kind = SCONST_REF_FUNC;
                e->type = SHOAL_FUNCREF;
                e->offset = (uint32_t)sr_offset(&d->r);
                if ((st = sdec_u32(d, &e->index)) != SHOAL_OK) return st;
            }
        }
    }
    return SHOAL_OK;
}

static shoal_status sdec_code_section(SDec *d) {
    SModule *m = d->m;
    uint32_t n;
    size_t at = sr_offset(&d->r);
    shoal_status st = sdec_count(d, &n);
    if (st != SHOAL_OK) return st;
    d->seen_code = true;
    if (!d->have_funcs && (st = sdec_build_funcs(d, 0)) != SHOAL_OK) return st;
    if (n != d->nfunc_decl)
        return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "function and code section have inconsistent lengths");
    for (uint32_t i = 0; i < n; i++) {
        SFunc *f = &m->funcs[m->nfunc_imports + i];
        uint32_t size;
        at = sr_offset(&d->r);
        if ((st = sdec_u32(d, &size)) != SHOAL_OK) return st;
        if (size > sr_left(&d->r)) return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "length out of bounds");
        const uint8_t *body_end = d->r.p + size;
        SReader outer = d->r;
        d->r.end = body_end;
        /* Locals: run-length groups, first counted (and the total bounded), then expanded. */
        uint32_t ngroups;
        if ((st = sdec_count(d, &ngroups)) != SHOAL_OK) return st;
        const uint8_t *groups = d->r.p;
        uint64_t total = 0;
        for (uint32_t g = 0; g < ngroups; g++) {
            uint32_t cnt;
            SValType t;
            at = sr_offset(&d->r);
            if ((st = sdec_u32(d, &cnt)) != SHOAL_OK) return st;
            total += cnt;
            if (total > SDEC_MAX_LOCALS || d->locals_total + total > SDEC_LOCALS_BUDGET(m->size))
                return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "too many locals");
            if ((st = sdec_valtype(d, &t)) != SHOAL_OK) return st;
        }
        d->locals_total += total;
        f->local_types = sdec_calloc((size_t)total, 1);
        if (!f->local_types) return sdec_nomem(d);
        f->nlocals = (uint32_t)total;
        d->r.p = groups;
        uint32_t k = 0;
        for (uint32_t g = 0; g < ngroups; g++) {
            uint32_t cnt;
            SValType t;
            (void)sdec_u32(d, &cnt); /* re-reading what decoded above */
            (void)sdec_valtype(d, &t);
            memset(f->local_types + k, t, cnt);
            k += cnt;
        }
        f->code = d->r.p;
        f->code_end = body_end;
        f->body_offset = (uint32_t)sr_offset(&d->r);
        d->r = outer;
        d->r.p = body_end;
    }
    return SHOAL_OK;
}

static shoal_status sdec_data_section(SDec *d) {
    SModule *m = d->m;
    uint32_t n;
    size_t at = sr_offset(&d->r);
    shoal_status st = sdec_count(d, &n);
    if (st != SHOAL_OK) return st;
    if (m->has_data_count && n != m->data_count)
        return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "data count and data section have inconsistent lengths");
    m->datas = sdec_calloc(n, sizeof *m->datas);
    if (!m->datas) return sdec_nomem(d);
    for (uint32_t i = 0; i < n; i++) {
        SData *ds = &m->datas[i];
        m->ndatas = i + 1;
        uint32_t flags;
        at = sr_offset(&d->r);
        if ((st = sdec_u32(d, &flags)) != SHOAL_OK) return st;
        if (flags > 2) return sdec_fail_at(d, SHOAL_ERR_MALFORMED, at, "malformed data segment kind");
        if (flags == 1) {
            ds->mode = SSEG_PASSIVE;
        } else {
            ds->mode = SSEG_ACTIVE;
            if (flags == 2 && (st = sdec_u32(d, &ds->memory)) != SHOAL_OK) return st;
            if ((st = sdec_const_expr(d, &ds->offset)) != SHOAL_OK) return st;
        }
        uint32_t len;
        at = sr_offset(&d->r);
        if ((st = sdec_u32(d, &len)) != SHOAL_OK) return st;
        if (!sr_bytes(&d->r, len, &ds->bytes)) return sdec_eof(d);
        ds->size = len;
    }
    return SHOAL_OK;
}

static shoal_status sdec_datacount_section(SDec *d) {
    d->m->has_data_count = true;
    return sdec_u32(d, &d->m->data_count);
}

/* The name section is advisory: any error in it leaves the names unset and the module valid. */
static void sdec_names(SDec *d) {
    SModule *m = d->m;
    shoal_error scratch;
    shoal_error *saved_err = d->err;
    SReader saved = d->r;
    d->err = &scratch;
    d->r.p = d->names;
    d->r.end = d->names + d->names_size;
    while (!sr_eof(&d->r)) {
        uint8_t id;
        uint32_t size;
        if (sdec_byte(d, &id) != SHOAL_OK || sdec_u32(d, &size) != SHOAL_OK || size > sr_left(&d->r)) break;
        const uint8_t *sub_end = d->r.p + size;
        SReader outer = d->r;
        d->r.end = sub_end;
        if (id == 0 && !m->module_name) {
            char *s = NULL;
            if (sdec_name(d, &s, NULL, NULL) == SHOAL_OK) m->module_name = s;
        } else if (id == 1) {
            uint32_t cnt;
            if (sdec_count(d, &cnt) == SHOAL_OK) {
                for (uint32_t i = 0; i < cnt; i++) {
                    uint32_t idx;
                    char *s = NULL;
                    if (sdec_u32(d, &idx) != SHOAL_OK || sdec_name(d, &s, NULL, NULL) != SHOAL_OK) break;
                    if (idx < m->nfuncs && !m->funcs[idx].name) m->funcs[idx].name = s;
                    else free(s);
                }
            }
        }
        d->r = outer;
        d->r.p = sub_end;
    }
    d->r = saved;
    d->err = saved_err;
}

static const char *const sdec_section_names[] = {
    "custom", "type", "import", "function", "table", "memory", "global",
    "export", "start", "element", "code", "data", "datacount",
};

/* Position of each section id in the required order (datacount sits between element and code). */
static int sdec_rank(uint8_t id) { return id == 12 ? 10 : id >= 10 ? id + 1 : id; }

shoal_status smod_decode(SModule *m, const uint8_t *bytes, size_t size, shoal_error *err) {
    SDec d;
    memset(&d, 0, sizeof d);
    d.m = m;
    d.err = err;
    d.section = "header";
    shoal_status st = SHOAL_OK;
    m->bytes = malloc(size ? size : 1);
    if (!m->bytes) return smod_error(err, SHOAL_ERR_NOMEM, SHOAL_NO_FUNC, 0, "out of memory");
    if (size) memcpy(m->bytes, bytes, size);
    m->size = size;
    d.r.base = d.r.p = m->bytes;
    d.r.end = m->bytes + size;

    static const uint8_t magic[4] = {0x00, 0x61, 0x73, 0x6d};
    static const uint8_t version[4] = {0x01, 0x00, 0x00, 0x00};
    if (size < 4) return sdec_fail_at(&d, SHOAL_ERR_MALFORMED, size, "unexpected end");
    if (memcmp(m->bytes, magic, 4) != 0) return sdec_fail_at(&d, SHOAL_ERR_MALFORMED, 0, "magic header not detected");
    if (size < 8) return sdec_fail_at(&d, SHOAL_ERR_MALFORMED, size, "unexpected end");
    if (memcmp(m->bytes + 4, version, 4) != 0)
        return sdec_fail_at(&d, SHOAL_ERR_MALFORMED, 4, "unknown binary version");
    d.r.p += 8;

    int last_rank = 0;
    while (!sr_eof(&d.r)) {
        d.section = "header";
        size_t id_at = sr_offset(&d.r);
        uint8_t id = *d.r.p++;
        if (id > 12) return sdec_fail_at(&d, SHOAL_ERR_MALFORMED, id_at, "malformed section id");
        d.section = sdec_section_names[id];
        uint32_t len;
        size_t len_at = sr_offset(&d.r);
        if ((st = sdec_u32(&d, &len)) != SHOAL_OK) return st;
        if (len > sr_left(&d.r)) return sdec_fail_at(&d, SHOAL_ERR_MALFORMED, len_at, "length out of bounds");
        const uint8_t *sec_end = d.r.p + len;
        if (id != 0) {
            if (sdec_rank(id) <= last_rank)
                return sdec_fail_at(&d, SHOAL_ERR_MALFORMED, id_at, "unexpected content after last section");
            last_rank = sdec_rank(id);
        }
        d.r.end = sec_end;
        if (id != 0) m->section_offset[id] = (uint32_t)sr_offset(&d.r);
        switch (id) {
        case 0: {
            const uint8_t *name;
            uint32_t nlen;
            if ((st = sdec_name(&d, NULL, &name, &nlen)) != SHOAL_OK) return st;
            if (nlen == 4 && !memcmp(name, "name", 4)) {
                d.names = d.r.p;
                d.names_size = (size_t)(sec_end - d.r.p);
            }
            d.r.p = sec_end; /* custom payloads are not ours to check */
            break;
        }
        case 1: st = sdec_type_section(&d); break;
        case 2: st = sdec_import_section(&d); break;
        case 3: st = sdec_function_section(&d); break;
        case 4: st = sdec_table_section(&d); break;
        case 5: st = sdec_memory_section(&d); break;
        case 6: st = sdec_global_section(&d); break;
        case 7: st = sdec_export_section(&d); break;
        case 8: st = sdec_start_section(&d); break;
        case 9: st = sdec_elem_section(&d); break;
        case 10: st = sdec_code_section(&d); break;
        case 11: st = sdec_data_section(&d); break;
        case 12: st = sdec_datacount_section(&d); break;
        }
        if (st != SHOAL_OK) return st;
        if (d.r.p != sec_end) return sdec_fail_at(&d, SHOAL_ERR_MALFORMED, sr_offset(&d.r), "section size mismatch");
        d.r.end = m->bytes + size;

    }
    d.section = "code";
    if (!d.have_funcs && (st = sdec_build_funcs(&d, 0)) != SHOAL_OK) return st;
    if (!m->tables && (st = sdec_build_tables(&d, 0)) != SHOAL_OK) return st;
    if (!m->mems && (st = sdec_build_mems(&d, 0)) != SHOAL_OK) return st;
    if (!m->global_types && (st = sdec_build_globals(&d, 0)) != SHOAL_OK) return st;
    if (!d.seen_code && d.nfunc_decl != 0)
        return sdec_fail_at(&d, SHOAL_ERR_MALFORMED, size, "function and code section have inconsistent lengths");
    d.section = "data";
    if (m->has_data_count && m->data_count != m->ndatas)
        return sdec_fail_at(&d, SHOAL_ERR_MALFORMED, size, "data count and data section have inconsistent lengths");
    if (d.names) sdec_names(&d);
    return SHOAL_OK;
}

void smod_free(SModule *m) {
    if (!m) return;
    for (uint32_t i = 0; i < m->ntypes; i++) {
        free(m->types[i].params);
        free(m->types[i].results);
    }
    free(m->types);
    for (uint32_t i = 0; i < m->nimports; i++) {
        free(m->imports[i].module);
        free(m->imports[i].name);
    }
    free(m->imports);
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        free(m->funcs[i].local_types);
        free(m->funcs[i].name);
    }
    free(m->funcs);
    free(m->tables);
    free(m->mems);
    free(m->global_types);
    free(m->global_inits);
    for (uint32_t i = 0; i < m->nexports; i++) free(m->exports[i].name);
    free(m->exports);
    for (uint32_t i = 0; i < m->nelems; i++) free(m->elems[i].items);
    free(m->elems);
    free(m->datas);
    free(m->module_name);
    free(m->declared_refs);
    free(m->bytes);
    memset(m, 0, sizeof *m);
}

const SFuncType *smod_func_type(const SModule *m, uint32_t func_index) {
    if (func_index >= m->nfuncs) return NULL;
    uint32_t t = m->funcs[func_index].type_index;
    return t < m->ntypes ? &m->types[t] : NULL;
}
