/*
 * scompile.c: translates validated Wasm function bodies into the interpreter's internal code (see
 * sexec.h for the model). Runs once per function at load time, so the interpreter never decodes LEB128
 * or looks up branch targets while it runs.
 *
 * The translator keeps an abstract value stack. An entry is either already in its canonical slot
 * (params+locals+position), an alias of a local (local.get is free), or a constant (i32.const is free).
 * Aliases and constants are turned into real slot contents ("materialized") only when something needs
 * a slot: an operation without an immediate form, a block boundary, a call, or a write to the aliased
 * local. Invariant at every block boundary (block/loop/if entry, else, end, branch target): every entry
 * is in its canonical slot, so all paths into a label agree on where values live.
 *
 * The input has passed smod_validate, but the translator still checks every index and stack height it
 * uses, so that a validator gap turns into SHOAL_ERR_INVALID rather than a wild write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sexec.h"
#include "sopcodes.h" /* the immediate kinds (SOP is not defined here) */
#include "sread.h"

const char *const sop_names[SO_COUNT] = {
#define OP(name, layout) #name,
#include "sops.h"
#undef OP
};

/* Facts about Wasm opcodes, from sopcodes.h: index = opcode for single-byte ones, 256 + sub-opcode for
 * the 0xFC prefix. */
typedef struct WInfo {
    const char *sig;
    uint8_t imm;
    bool present;
} WInfo;
static const WInfo winfo[256 + 32] = {
#define SOP(prefix, code, ident, text, imm, sig, msize) \
    [(prefix) == 0 ? (code) : 256 + (code)] = {sig, imm, true},
#include "sopcodes.h"
#undef SOP
};

/* The numeric instructions 0x45..0xC4 are listed in sops.h in opcode order, so one addition maps them. */
_Static_assert(SO_i64_extend32_s - SO_i32_eqz == 0xC4 - 0x45, "sops.h numeric ops follow opcode order");
_Static_assert(SO_i64_load32_u - SO_i32_load == 0x35 - 0x28, "sops.h loads follow opcode order");
_Static_assert(SO_i64_load32_u_ai - SO_i32_load_ai == 0x35 - 0x28, "sops.h fused loads follow opcode order");
_Static_assert(SO_i64_load32_u_ab - SO_i32_load_ab == 0x35 - 0x28, "sops.h fused loads follow opcode order");
_Static_assert(SO_i64_store32 - SO_i32_store == 0x3E - 0x36, "sops.h stores follow opcode order");
_Static_assert(SO_i64_trunc_sat_f64_u - SO_i32_trunc_sat_f32_s == 7, "sops.h trunc_sat ops in order");

enum { E_STACK, E_LOCAL, E_CONST };
typedef struct TEnt {
    uint8_t kind;
    uint32_t local;  /* E_LOCAL */
    uint64_t cval;   /* E_CONST: bits, zero-extended for 32-bit values */
} TEnt;

enum { C_FUNC, C_BLOCK, C_LOOP, C_IF, C_ELSE };
#define NONE 0xffffffffu
typedef struct TCtl {
    uint8_t kind;
    bool unreachable;
    uint32_t height;   /* stack height below the block's params */
    uint32_t nparams, nresults;
    uint32_t loop_pos; /* C_LOOP: code index of the loop start */
    uint32_t fixups;   /* chain of forward-branch operands to patch at `end`, linked through the code */
    uint32_t else_fix; /* C_IF: the operand of the br_unless that skips the then-branch */
} TCtl;

/* An instruction starts with its handler's address in OPW 32-bit units; operand k (from 1) is unit
 * k + OPW - 1. */
#define OPW 2

typedef struct T {
    SModule *m;
    shoal_error *err;
    shoal_status status;
    const void *const *H;
    uint32_t nl; /* params + locals: the first stack slot */
    uint32_t nlocals_total;
    const SFuncType *ft;
    uint32_t *code;
    uint32_t ncode, capcode;
    uint32_t *map;
    uint32_t nmap, capmap;
    TEnt *st;
    uint32_t h, caph, maxh;
    TCtl *ctl;
    uint32_t nctl, capctl;
    uint32_t skip; /* nesting depth of blocks inside unreachable code */
    uint32_t wasm_off;
    /* The last instruction, for peepholes: valid while nothing has been emitted after it and no label
     * has been placed since. dst_h is the stack position its destination (unit 1) writes. */
    bool last_valid;
    SOp last_op;
    uint32_t last_pos, last_dst_h;
} T;

static bool t_fail(T *t, shoal_status s, const char *why) {
    if (t->status == SHOAL_OK) {
        t->status = s;
        shoal_error_set(t->err, s, "translate: offset 0x%x: %s", t->wasm_off, why);
    }
    return false;
}

static bool grow(void **p, uint32_t *cap, uint32_t need, size_t elem) {
    if (need <= *cap) return true;
    uint32_t nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > 0x3fffffff) return false;
        nc *= 2;
    }
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

static void emit_u(T *t, uint32_t u) {
    if (!grow((void **)&t->code, &t->capcode, t->ncode + 1, sizeof *t->code)) {
        t_fail(t, SHOAL_ERR_NOMEM, "out of memory");
        return;
    }
    t->code[t->ncode++] = u;
}

static uint32_t emit_op(T *t, SOp op) {
    uint32_t pos = t->ncode;
    if (grow((void **)&t->map, &t->capmap, t->nmap + 2, sizeof *t->map)) {
        t->map[t->nmap++] = pos;
        t->map[t->nmap++] = t->wasm_off;
    } else {
        t_fail(t, SHOAL_ERR_NOMEM, "out of memory");
    }
    uintptr_t h = (uintptr_t)t->H[op];
    emit_u(t, (uint32_t)h);
    emit_u(t, (uint32_t)((uint64_t)h >> 32));
    t->last_valid = false;
    return pos;
}

/* Turns the instruction at pos into op (a superinstruction of the same shape). */
static void set_handler(T *t, uint32_t pos, SOp op) {
    uintptr_t h = (uintptr_t)t->H[op];
    t->code[pos] = (uint32_t)h;
    t->code[pos + 1] = (uint32_t)((uint64_t)h >> 32);
}

/* Marks the instruction just emitted at pos as the producer of stack position h (dst in unit 1). */
static void produced(T *t, SOp op, uint32_t pos, uint32_t h) {
    t->last_valid = true;
    t->last_op = op;
    t->last_pos = pos;
    t->last_dst_h = h;
}

static bool push(T *t, uint8_t kind, uint32_t local, uint64_t cval) {
    if (!grow((void **)&t->st, &t->caph, t->h + 1, sizeof *t->st)) return t_fail(t, SHOAL_ERR_NOMEM, "out of memory");
    t->st[t->h].kind = kind;
    t->st[t->h].local = local;
    t->st[t->h].cval = cval;
    t->h++;
    if (t->h > t->maxh) t->maxh = t->h;
    return true;
}

static void emit_const(T *t, uint32_t dst, uint64_t v) {
    if ((v >> 32) == 0) {
        emit_op(t, SO_const32);
        emit_u(t, dst);
        emit_u(t, (uint32_t)v);
    } else {
        emit_op(t, SO_const64);
        emit_u(t, dst);
        emit_u(t, (uint32_t)v);
        emit_u(t, (uint32_t)(v >> 32));
    }
}

static void materialize(T *t, uint32_t i) {
    TEnt *e = &t->st[i];
    if (e->kind == E_LOCAL) {
        emit_op(t, SO_copy);
        emit_u(t, t->nl + i);
        emit_u(t, e->local);
    } else if (e->kind == E_CONST) {
        emit_const(t, t->nl + i, e->cval);
    }
    e->kind = E_STACK;
}

static void materialize_all(T *t, uint32_t from) {
    for (uint32_t i = from; i < t->h; i++) materialize(t, i);
}

/* The slot holding entry i's value (constants get materialized). */
static uint32_t slot_of(T *t, uint32_t i) {
    TEnt *e = &t->st[i];
    if (e->kind == E_CONST) materialize(t, i);
    return e->kind == E_LOCAL ? e->local : t->nl + i;
}

static bool need(T *t, uint32_t n) {
    TCtl *c = &t->ctl[t->nctl - 1];
    if (t->h < c->height + n) return t_fail(t, SHOAL_ERR_INVALID, "type mismatch (operand stack underflow)");
    return true;
}

/* ---- branches ---------------------------------------------------------------------------------- */

static uint32_t arity(const TCtl *c) { return c->kind == C_LOOP ? c->nparams : c->nresults; }

static bool moves_needed(T *t, const TCtl *c) {
    uint32_t n = arity(c);
    for (uint32_t i = 0; i < n; i++) {
        const TEnt *e = &t->st[t->h - n + i];
        if (e->kind != E_STACK || t->h - n + i != c->height + i) return true;
    }
    return false;
}

/* Copies the top arity(c) values to the label's slots. Ascending order is safe: a destination is never
 * above its source, and local sources are never destinations. */
static void emit_moves(T *t, const TCtl *c) {
    uint32_t n = arity(c);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t src = t->h - n + i, dst = t->nl + c->height + i;
        const TEnt *e = &t->st[src];
        if (e->kind == E_CONST) {
            emit_const(t, dst, e->cval);
        } else {
            uint32_t s = e->kind == E_LOCAL ? e->local : t->nl + src;
            if (s != dst) {
                emit_op(t, SO_copy);
                emit_u(t, dst);
                emit_u(t, s);
            }
        }
    }
}

/* Points the offset operand at code[pos] to label c (backward: now; forward: at its `end`). */
static void link_branch(T *t, TCtl *c, uint32_t pos) {
    if (t->status != SHOAL_OK || pos >= t->ncode) return;
    if (c->kind == C_LOOP) {
        t->code[pos] = (uint32_t)((int64_t)c->loop_pos - (int64_t)pos);
    } else {
        t->code[pos] = c->fixups;
        c->fixups = pos;
    }
}

static void resolve(T *t, TCtl *c, uint32_t target) {
    if (t->status != SHOAL_OK) return;
    for (uint32_t p = c->fixups; p != NONE;) {
        uint32_t next = t->code[p];
        t->code[p] = target - p;
        p = next;
    }
    c->fixups = NONE;
    t->last_valid = false;
}

static void set_unreachable(T *t) {
    TCtl *c = &t->ctl[t->nctl - 1];
    c->unreachable = true;
    t->h = c->height; /* values below the block's params may not be touched until its end anyway */
}

/* Moves the top nresults values to slots 0.. and returns. */
static void emit_return(T *t) {
    uint32_t n = t->ft->nresults;
    if (t->h < n) {
        t_fail(t, SHOAL_ERR_INVALID, "type mismatch (return)");
        return;
    }
    /* A local that is also a destination would be overwritten before it is read: copy it out first. */
    for (uint32_t i = 0; i < n; i++) {
        TEnt *e = &t->st[t->h - n + i];
        if (e->kind == E_LOCAL && e->local < n) materialize(t, t->h - n + i);
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t src = t->h - n + i;
        TEnt *e = &t->st[src];
        if (e->kind == E_CONST) {
            emit_const(t, i, e->cval);
        } else {
            uint32_t s = e->kind == E_LOCAL ? e->local : t->nl + src;
            if (s != i) {
                emit_op(t, SO_copy);
                emit_u(t, i);
                emit_u(t, s);
            }
        }
    }
    emit_op(t, SO_return_);
}

static TCtl *label(T *t, uint32_t depth) {
    if (depth >= t->nctl) {
        t_fail(t, SHOAL_ERR_INVALID, "unknown label");
        return NULL;
    }
    return &t->ctl[t->nctl - 1 - depth];
}

static void tr_br(T *t, uint32_t depth) {
    TCtl *c = label(t, depth);
    if (!c || !need(t, arity(c))) return;
    if (c->kind == C_FUNC) {
        emit_return(t);
    } else {
        emit_moves(t, c);
        uint32_t pos = emit_op(t, SO_br);
        emit_u(t, 0);
        link_branch(t, c, pos + OPW);
    }
    set_unreachable(t);
}

/* The fused compare-and-branch for a compare op, or SO_COUNT if none. */
static SOp fused_branch(SOp cmp) {
    if (cmp == SO_i32_eqz) return SO_br_i32_eqz;
    if (cmp >= SO_i32_eq && cmp <= SO_i32_ge_u) return (SOp)(SO_br_i32_eq + (cmp - SO_i32_eq));
    if (cmp >= SO_i32_eq_imm && cmp <= SO_i32_ge_u_imm) return (SOp)(SO_br_i32_eq_imm + (cmp - SO_i32_eq_imm));
    return SO_COUNT;
}

/* The fused branch taken when compare `cmp` is false (for `if`), or SO_COUNT. Integer compares only:
 * their negation is exact. */
static SOp fused_branch_negated(SOp cmp) {
    static const uint8_t neg[10] = {1, 0, 8, 9, 6, 7, 4, 5, 2, 3}; /* eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u */
    if (cmp >= SO_i32_eq && cmp <= SO_i32_ge_u) return (SOp)(SO_br_i32_eq + neg[cmp - SO_i32_eq]);
    if (cmp >= SO_i32_eq_imm && cmp <= SO_i32_ge_u_imm) return (SOp)(SO_br_i32_eq_imm + neg[cmp - SO_i32_eq_imm]);
    return SO_COUNT;
}

/* If the condition on top of the stack was computed by the instruction just emitted, rewrite that
 * instruction into a compare-and-branch and return the position of its offset operand; else NONE. */
static uint32_t try_fuse(T *t, bool negate) {
    uint32_t top = t->h - 1;
    if (!t->last_valid || t->last_dst_h != top || t->st[top].kind != E_STACK) return NONE;
    SOp f = negate ? fused_branch_negated(t->last_op) : fused_branch(t->last_op);
    if (f == SO_COUNT) return NONE;
    set_handler(t, t->last_pos, f);
    t->last_valid = false;
    t->h--;
    return t->last_pos + OPW;
}

static void tr_br_if(T *t, uint32_t depth) {
    if (!need(t, 1)) return;
    TCtl *c = label(t, depth);
    if (!c) return;
    if (t->h - 1 < c->height + arity(c)) {
        t_fail(t, SHOAL_ERR_INVALID, "type mismatch (br_if)");
        return;
    }
    t->h--;
    bool simple = c->kind != C_FUNC && !moves_needed(t, c);
    t->h++;
    if (simple) {
        uint32_t pos = try_fuse(t, false);
        if (pos == NONE) {
            uint32_t a = slot_of(t, t->h - 1);
            t->h--;
            pos = emit_op(t, SO_br_if) + OPW;
            emit_u(t, 0);
            emit_u(t, a);
        }
        link_branch(t, c, pos);
        return;
    }
    /* The values must move only when the branch is taken: skip over the moves when it is not. */
    uint32_t a = slot_of(t, t->h - 1);
    t->h--;
    uint32_t skip = emit_op(t, SO_br_unless) + OPW;
    emit_u(t, 0);
    emit_u(t, a);
    if (c->kind == C_FUNC) {
        emit_return(t);
    } else {
        emit_moves(t, c);
        uint32_t pos = emit_op(t, SO_br) + OPW;
        emit_u(t, 0);
        link_branch(t, c, pos);
    }
    if (t->status == SHOAL_OK) t->code[skip] = t->ncode - skip;
    t->last_valid = false;
}

static void tr_br_table(T *t, SReader *r) {
    uint32_t n;
    if (sr_u32(r, &n) != SR_OK || n > sr_left(r)) {
        t_fail(t, SHOAL_ERR_MALFORMED, "bad br_table");
        return;
    }
    if (!need(t, 1)) return;
    uint32_t a = slot_of(t, t->h - 1);
    t->h--;
    uint32_t pos = emit_op(t, SO_br_table);
    emit_u(t, a);
    emit_u(t, n);
    uint32_t first = t->ncode;
    uint32_t *depths = malloc(((size_t)n + 1) * sizeof *depths);
    if (!depths) {
        t_fail(t, SHOAL_ERR_NOMEM, "out of memory");
        return;
    }
    for (uint32_t i = 0; i <= n; i++) {
        if (sr_u32(r, &depths[i]) != SR_OK) {
            t_fail(t, SHOAL_ERR_MALFORMED, "bad br_table");
            goto done;
        }
        emit_u(t, 0);
    }
    (void)pos;
    /* Targets that need value moves (or are the function's return) branch to a stub placed after the
     * table; the code after br_table is unreachable, so stubs cannot be fallen into. */
    for (uint32_t i = 0; i <= n && t->status == SHOAL_OK; i++) {
        TCtl *c = label(t, depths[i]);
        if (!c || !need(t, arity(c))) goto done;
        if (c->kind != C_FUNC && !moves_needed(t, c)) {
            link_branch(t, c, first + i);
            continue;
        }
        if (t->status == SHOAL_OK) t->code[first + i] = t->ncode - (first + i);
        if (c->kind == C_FUNC) {
            emit_return(t);
        } else {
            emit_moves(t, c);
            uint32_t p = emit_op(t, SO_br) + OPW;
            emit_u(t, 0);
            link_branch(t, c, p);
        }
    }
    set_unreachable(t);
done:
    free(depths);
}

/* ---- blocks ------------------------------------------------------------------------------------ */

static bool block_type(T *t, SReader *r, uint32_t *np, uint32_t *nr) {
    int64_t bt;
    if (sr_s33(r, &bt) != SR_OK) return t_fail(t, SHOAL_ERR_MALFORMED, "bad block type");
    if (bt < 0) {
        *np = 0;
        *nr = bt == -64 ? 0 : 1; /* 0x40 is the empty type; other negatives are single value types */
        return true;
    }
    if ((uint64_t)bt >= t->m->ntypes) return t_fail(t, SHOAL_ERR_INVALID, "unknown type");
    *np = t->m->types[bt].nparams;
    *nr = t->m->types[bt].nresults;
    return true;
}

static TCtl *push_ctl(T *t, uint8_t kind, uint32_t np, uint32_t nr) {
    if (!need(t, np)) return NULL;
    if (!grow((void **)&t->ctl, &t->capctl, t->nctl + 1, sizeof *t->ctl)) {
        t_fail(t, SHOAL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    materialize_all(t, 0);
    TCtl *c = &t->ctl[t->nctl++];
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->height = t->h - np;
    c->nparams = np;
    c->nresults = nr;
    c->fixups = NONE;
    c->else_fix = NONE;
    c->loop_pos = t->ncode;
    t->last_valid = false;
    return c;
}

/* Resets the abstract stack to n canonical entries above c's base (after else/end). */
static void reset_stack(T *t, const TCtl *c, uint32_t n) {
    t->h = c->height;
    for (uint32_t i = 0; i < n; i++) push(t, E_STACK, 0, 0);
}

static void tr_else(T *t) {
    TCtl *c = &t->ctl[t->nctl - 1];
    if (c->kind != C_IF) {
        t_fail(t, SHOAL_ERR_INVALID, "else without if");
        return;
    }
    if (!c->unreachable) {
        if (t->h != c->height + c->nresults) {
            t_fail(t, SHOAL_ERR_INVALID, "type mismatch (else)");
            return;
        }
        materialize_all(t, c->height);
        uint32_t pos = emit_op(t, SO_br) + OPW;
        emit_u(t, 0);
        link_branch(t, c, pos);
    }
    if (t->status == SHOAL_OK) t->code[c->else_fix] = t->ncode - c->else_fix;
    c->else_fix = NONE;
    c->kind = C_ELSE;
    c->unreachable = false;
    reset_stack(t, c, c->nparams);
    t->last_valid = false;
}

/* Returns true when the function's final `end` was translated. */
static bool tr_end(T *t) {
    TCtl *c = &t->ctl[t->nctl - 1];
    if (!c->unreachable) {
        if (t->h != c->height + c->nresults) return t_fail(t, SHOAL_ERR_INVALID, "type mismatch (end)");
        if (c->kind == C_FUNC) {
            emit_return(t);
        } else {
            materialize_all(t, c->height);
        }
    }
    if (c->kind == C_FUNC) {
        t->nctl--;
        return true;
    }
    /* An if without else: its false path reaches the end with the params, which equal the results. */
    if (c->else_fix != NONE && t->status == SHOAL_OK) t->code[c->else_fix] = t->ncode - c->else_fix;
    if (c->kind != C_LOOP) resolve(t, c, t->ncode);
    reset_stack(t, c, c->nresults);
    t->nctl--;
    t->last_valid = false;
    return false;
}

/* ---- operations -------------------------------------------------------------------------------- */

static void tr_unop(T *t, SOp op) {
    if (!need(t, 1)) return;
    uint32_t a = slot_of(t, t->h - 1);
    uint32_t p = t->h - 1;
    uint32_t pos = emit_op(t, op);
    emit_u(t, t->nl + p);
    emit_u(t, a);
    t->st[p].kind = E_STACK;
    produced(t, op, pos, p);
}

/* The immediate form of an i32 binary op, and of the op with its operands swapped (for a constant on
 * the left); SO_COUNT if none. */
static SOp imm_form(SOp op, bool swapped) {
    switch (op) {
    case SO_i32_add: return SO_i32_add_imm;
    case SO_i32_mul: return SO_i32_mul_imm;
    case SO_i32_and: return SO_i32_and_imm;
    case SO_i32_or: return SO_i32_or_imm;
    case SO_i32_xor: return SO_i32_xor_imm;
    case SO_i32_eq: return SO_i32_eq_imm;
    case SO_i32_ne: return SO_i32_ne_imm;
    case SO_i32_shl: return swapped ? SO_COUNT : SO_i32_shl_imm;
    case SO_i32_shr_s: return swapped ? SO_COUNT : SO_i32_shr_s_imm;
    case SO_i32_shr_u: return swapped ? SO_COUNT : SO_i32_shr_u_imm;
    case SO_i32_rotl: return swapped ? SO_COUNT : SO_i32_rotl_imm;
    case SO_i32_rotr: return swapped ? SO_COUNT : SO_i32_rotr_imm;
    case SO_i32_lt_s: return swapped ? SO_i32_gt_s_imm : SO_i32_lt_s_imm;
    case SO_i32_lt_u: return swapped ? SO_i32_gt_u_imm : SO_i32_lt_u_imm;
    case SO_i32_gt_s: return swapped ? SO_i32_lt_s_imm : SO_i32_gt_s_imm;
    case SO_i32_gt_u: return swapped ? SO_i32_lt_u_imm : SO_i32_gt_u_imm;
    case SO_i32_le_s: return swapped ? SO_i32_ge_s_imm : SO_i32_le_s_imm;
    case SO_i32_le_u: return swapped ? SO_i32_ge_u_imm : SO_i32_le_u_imm;
    case SO_i32_ge_s: return swapped ? SO_i32_le_s_imm : SO_i32_ge_s_imm;
    case SO_i32_ge_u: return swapped ? SO_i32_le_u_imm : SO_i32_ge_u_imm;
    case SO_i32_sub: return swapped ? SO_i32_rsub_imm : SO_COUNT; /* k - x; x - k becomes add_imm */
    default: return SO_COUNT;
    }
}

/* x + a*b, a*b + x, x - a*b, a*b - x where the multiply is the instruction just emitted: extend it with
 * the other operand's slot. Returns false when the pattern does not apply. */
static bool try_fuse_mul(T *t, SOp op) {
    bool f64 = op == SO_f64_add || op == SO_f64_sub;
    bool add = op == SO_f64_add || op == SO_f32_add;
    if (!f64 && op != SO_f32_add && op != SO_f32_sub) return false;
    if (!t->last_valid || t->last_op != (f64 ? SO_f64_mul : SO_f32_mul) || t->status != SHOAL_OK) return false;
    uint32_t p = t->h - 2, q = t->h - 1, other;
    SOp f;
    if (t->last_dst_h == q && t->st[q].kind == E_STACK) {
        other = p; /* x op a*b */
        f = add ? (f64 ? SO_f64_mul_add : SO_f32_mul_add) : (f64 ? SO_f64_mul_rsub : SO_f32_mul_rsub);
    } else if (t->last_dst_h == p && t->st[p].kind == E_STACK) {
        other = q; /* a*b op y, y a local (pushing it emitted nothing) */
        f = add ? (f64 ? SO_f64_mul_add : SO_f32_mul_add) : (f64 ? SO_f64_mul_sub : SO_f32_mul_sub);
    } else {
        return false;
    }
    const TEnt *e = &t->st[other];
    if (e->kind == E_CONST) return false; /* materializing it would emit an instruction in between */
    uint32_t c = e->kind == E_LOCAL ? e->local : t->nl + other;
    uint32_t pos = t->last_pos;
    set_handler(t, pos, f);
    t->code[pos + OPW] = t->nl + p;
    emit_u(t, c);
    t->h = p + 1;
    t->st[p].kind = E_STACK;
    produced(t, f, pos, p);
    return true;
}

/* The immediate form of an i64 op taking a sign-extended 32-bit constant, or SO_COUNT. */
static SOp imm_form64(SOp op, bool swapped) {
    switch (op) {
    case SO_i64_add: return SO_i64_add_imm;
    case SO_i64_mul: return SO_i64_mul_imm;
    case SO_i64_and: return SO_i64_and_imm;
    case SO_i64_or: return SO_i64_or_imm;
    case SO_i64_xor: return SO_i64_xor_imm;
    case SO_i64_eq: return SO_i64_eq_imm;
    case SO_i64_ne: return SO_i64_ne_imm;
    case SO_i64_shl: return swapped ? SO_COUNT : SO_i64_shl_imm;
    case SO_i64_shr_s: return swapped ? SO_COUNT : SO_i64_shr_s_imm;
    case SO_i64_shr_u: return swapped ? SO_COUNT : SO_i64_shr_u_imm;
    default: return SO_COUNT;
    }
}

static bool fits_s32(uint64_t v) { return (int64_t)v >= INT32_MIN && (int64_t)v <= INT32_MAX; }

/* `a op load(...)` where the load is the instruction just emitted: the load becomes the op, reading its
 * right operand from memory. Returns false when the pattern does not apply. */
static bool try_fuse_load(T *t, SOp op) {
    SOp want, f;
    switch (op) {
    case SO_i32_add: want = SO_i32_load, f = SO_i32_add_m; break;
    case SO_i32_sub: want = SO_i32_load, f = SO_i32_sub_m; break;
    case SO_i32_and: want = SO_i32_load, f = SO_i32_and_m; break;
    case SO_i32_or: want = SO_i32_load, f = SO_i32_or_m; break;
    case SO_i32_xor: want = SO_i32_load, f = SO_i32_xor_m; break;
    case SO_f32_add: want = SO_f32_load, f = SO_f32_add_m; break;
    case SO_f32_sub: want = SO_f32_load, f = SO_f32_sub_m; break;
    case SO_f32_mul: want = SO_f32_load, f = SO_f32_mul_m; break;
    case SO_f64_add: want = SO_f64_load, f = SO_f64_add_m; break;
    case SO_f64_sub: want = SO_f64_load, f = SO_f64_sub_m; break;
    case SO_f64_mul: want = SO_f64_load, f = SO_f64_mul_m; break;
    default: return false;
    }
    uint32_t p = t->h - 2, q = t->h - 1;
    if (!t->last_valid || t->last_op != want || t->last_dst_h != q || t->st[q].kind != E_STACK ||
        t->st[p].kind == E_CONST || t->status != SHOAL_OK)
        return false;
    /* [load][d][addr][off] becomes [op][d][a][addr][off]: the load is the last instruction, so its tail
     * can move up one unit. */
    uint32_t pos = t->last_pos, addr = t->code[pos + OPW + 1], off = t->code[pos + OPW + 2];
    emit_u(t, 0);
    if (t->status != SHOAL_OK) return true;
    set_handler(t, pos, f);
    t->code[pos + OPW] = t->nl + p;
    t->code[pos + OPW + 1] = t->st[p].kind == E_LOCAL ? t->st[p].local : t->nl + p;
    t->code[pos + OPW + 2] = addr;
    t->code[pos + OPW + 3] = off;
    t->h = p + 1;
    t->st[p].kind = E_STACK;
    produced(t, f, pos, p);
    return true;
}

static void tr_binop(T *t, SOp op) {
    if (!need(t, 2)) return;
    if (try_fuse_mul(t, op) || try_fuse_load(t, op)) return;
    uint32_t p = t->h - 2;
    TEnt *ea = &t->st[p], *eb = &t->st[p + 1];
    SOp fop = op;
    uint32_t a, b;
    if (op == SO_i32_sub && eb->kind == E_CONST) {
        fop = SO_i32_add_imm;
        a = slot_of(t, p);
        b = (uint32_t)(0u - (uint32_t)eb->cval);
    } else if ((op == SO_i64_add || op == SO_i64_sub) && eb->kind == E_CONST &&
               (int64_t)eb->cval >= INT32_MIN + 1 && (int64_t)eb->cval <= INT32_MAX) {
        fop = SO_i64_add_imm;
        a = slot_of(t, p);
        int64_t k = op == SO_i64_sub ? -(int64_t)eb->cval : (int64_t)eb->cval;
        b = (uint32_t)(int32_t)k;
    } else if (eb->kind == E_CONST && fits_s32(eb->cval) && imm_form64(op, false) != SO_COUNT) {
        fop = imm_form64(op, false);
        a = slot_of(t, p);
        b = (uint32_t)eb->cval;
    } else if (ea->kind == E_CONST && eb->kind != E_CONST && fits_s32(ea->cval) && imm_form64(op, true) != SO_COUNT) {
        fop = imm_form64(op, true);
        a = slot_of(t, p + 1);
        b = (uint32_t)ea->cval;
    } else if (eb->kind == E_CONST && imm_form(op, false) != SO_COUNT) {
        fop = imm_form(op, false);
        a = slot_of(t, p);
        b = (uint32_t)eb->cval;
    } else if (ea->kind == E_CONST && eb->kind != E_CONST && imm_form(op, true) != SO_COUNT) {
        fop = imm_form(op, true);
        a = slot_of(t, p + 1);
        b = (uint32_t)ea->cval;
    } else {
        a = slot_of(t, p);
        b = slot_of(t, p + 1);
    }
    uint32_t pos = emit_op(t, fop);
    emit_u(t, t->nl + p);
    emit_u(t, a);
    emit_u(t, b);
    t->h = p + 1;
    t->st[p].kind = E_STACK;
    produced(t, fop, pos, p);
}

static void tr_local_set(T *t, uint32_t l, bool tee) {
    if (!need(t, 1)) return;
    if (l >= t->nlocals_total) {
        t_fail(t, SHOAL_ERR_INVALID, "unknown local");
        return;
    }
    uint32_t top = t->h - 1;
    /* Entries that alias the local must keep the old value. */
    for (uint32_t i = 0; i < top; i++)
        if (t->st[i].kind == E_LOCAL && t->st[i].local == l) materialize(t, i);
    TEnt *e = &t->st[top];
    if (e->kind == E_STACK && t->last_valid && t->last_dst_h == top) {
        /* The value was just computed: make its producer write the local directly. */
        t->code[t->last_pos + OPW] = l;
        t->last_valid = false;
    } else if (e->kind == E_CONST) {
        emit_const(t, l, e->cval);
    } else {
        uint32_t s = e->kind == E_LOCAL ? e->local : t->nl + top;
        if (s != l) {
            emit_op(t, SO_copy);
            emit_u(t, l);
            emit_u(t, s);
        }
    }
    if (tee) {
        e->kind = E_LOCAL;
        e->local = l;
    } else {
        t->h--;
    }
}

static void tr_call(T *t, uint32_t fidx) {
    if (fidx >= t->m->nfuncs) {
        t_fail(t, SHOAL_ERR_INVALID, "unknown function");
        return;
    }
    const SFuncType *ft = smod_func_type(t->m, fidx);
    if (!ft || !need(t, ft->nparams)) {
        t_fail(t, SHOAL_ERR_INVALID, "unknown type");
        return;
    }
    materialize_all(t, t->h - ft->nparams);
    uint32_t base = t->h - ft->nparams;
    emit_op(t, SO_call);
    emit_u(t, fidx);
    emit_u(t, t->nl + base);
    t->h = base;
    for (uint32_t i = 0; i < ft->nresults; i++) push(t, E_STACK, 0, 0);
}

static void tr_call_indirect(T *t, uint32_t tidx, uint32_t table) {
    if (tidx >= t->m->ntypes || table >= t->m->ntables) {
        t_fail(t, SHOAL_ERR_INVALID, "unknown type or table");
        return;
    }
    const SFuncType *ft = &t->m->types[tidx];
    if (!need(t, ft->nparams + 1)) return;
    uint32_t a = slot_of(t, t->h - 1);
    t->h--;
    materialize_all(t, t->h - ft->nparams);
    uint32_t base = t->h - ft->nparams;
    emit_op(t, SO_call_indirect);
    emit_u(t, tidx);
    emit_u(t, table);
    emit_u(t, a);
    emit_u(t, t->nl + base);
    t->h = base;
    for (uint32_t i = 0; i < ft->nresults; i++) push(t, E_STACK, 0, 0);
}

/* An op with `nin` slot operands and an optional result at unit 1, then `nimm` immediates. */
static void tr_generic(T *t, SOp op, uint32_t nin, bool result, const uint32_t *imm, uint32_t nimm,
                       bool imm_first) {
    if (!need(t, nin)) return;
    uint32_t base = t->h - nin;
    uint32_t s[4];
    for (uint32_t i = 0; i < nin; i++) s[i] = slot_of(t, base + i);
    uint32_t pos = emit_op(t, op);
    if (result) emit_u(t, t->nl + base);
    if (imm_first)
        for (uint32_t i = 0; i < nimm; i++) emit_u(t, imm[i]);
    for (uint32_t i = 0; i < nin; i++) emit_u(t, s[i]);
    if (!imm_first)
        for (uint32_t i = 0; i < nimm; i++) emit_u(t, imm[i]);
    t->h = base;
    if (result) {
        push(t, E_STACK, 0, 0);
        produced(t, op, pos, base);
    }
}

/* A load. When its address was just computed by an i32.add (the usual clang output for `p[k]`, since
 * a memarg offset must not wrap), the add and the load become one instruction: the add's units stay,
 * its handler becomes the fused load's, and the static offset is appended. */
static void tr_load(T *t, SOp op, uint32_t offset) {
    if (!need(t, 1)) return;
    uint32_t top = t->h - 1;
    if (t->last_valid && t->last_dst_h == top && t->st[top].kind == E_STACK &&
        (t->last_op == SO_i32_add_imm || t->last_op == SO_i32_add) && t->status == SHOAL_OK) {
        SOp f = (SOp)((t->last_op == SO_i32_add_imm ? SO_i32_load_ai : SO_i32_load_ab) + (op - SO_i32_load));
        set_handler(t, t->last_pos, f);
        emit_u(t, offset);
        if (t->nmap >= 2) t->map[t->nmap - 1] = t->wasm_off; /* a trap is the load's */
        produced(t, f, t->last_pos, top); /* its result is still unit 1: local.set can retarget it */
        return;
    }
    tr_generic(t, op, 1, true, &offset, 1, false);
}

/* Skips the immediates of an instruction in unreachable code. */
static bool skip_imm(T *t, SReader *r, uint8_t kind) {
    uint32_t u;
    int64_t s;
    uint8_t b;
    const uint8_t *bytes;
    bool ok = true;
    switch (kind) {
    case SIMM_NONE: break;
    case SIMM_BLOCK: ok = sr_s33(r, &s) == SR_OK; break;
    case SIMM_LABEL: case SIMM_FUNC: case SIMM_LOCAL: case SIMM_GLOBAL: case SIMM_TABLE: case SIMM_DATA:
    case SIMM_ELEM: ok = sr_u32(r, &u) == SR_OK; break;
    case SIMM_BR_TABLE:
        ok = sr_u32(r, &u) == SR_OK;
        for (uint64_t i = 0; ok && i <= u; i++) {
            uint32_t d;
            ok = sr_u32(r, &d) == SR_OK;
        }
        break;
    case SIMM_CALL_INDIRECT: case SIMM_MEMARG: case SIMM_MEMORY_INIT: case SIMM_TABLE_INIT: case SIMM_TABLE_COPY:
        ok = sr_u32(r, &u) == SR_OK && sr_u32(r, &u) == SR_OK;
        break;
    case SIMM_MEMIDX: case SIMM_MEMORY_FILL: case SIMM_REFTYPE: ok = sr_u8(r, &b); break;
    case SIMM_MEMORY_COPY: ok = sr_u8(r, &b) && sr_u8(r, &b); break;
    case SIMM_I32: ok = sr_sleb(r, 32, &s) == SR_OK; break;
    case SIMM_I64: ok = sr_s64(r, &s) == SR_OK; break;
    case SIMM_F32: ok = sr_bytes(r, 4, &bytes); break;
    case SIMM_F64: ok = sr_bytes(r, 8, &bytes); break;
    case SIMM_SELECT_T:
        ok = sr_u32(r, &u) == SR_OK && sr_left(r) >= u;
        if (ok) r->p += u;
        break;
    default: ok = false;
    }
    return ok ? true : t_fail(t, SHOAL_ERR_MALFORMED, "malformed immediate");
}

static bool rd32(T *t, SReader *r, uint32_t *v) {
    if (sr_u32(r, v) != SR_OK) return t_fail(t, SHOAL_ERR_MALFORMED, "malformed immediate");
    return true;
}

static bool tr_body(T *t, SReader *r) {
    for (;;) {
        if (t->status != SHOAL_OK) return false;
        if (sr_eof(r)) return t_fail(t, SHOAL_ERR_MALFORMED, "unexpected end of function body");
        t->wasm_off = (uint32_t)sr_offset(r);
        uint8_t op = *r->p++;
        uint32_t key = op;
        if (op == SOP_PREFIX_MISC) {
            uint32_t sub;
            if (!rd32(t, r, &sub)) return false;
            if (sub >= 32) return t_fail(t, SHOAL_ERR_MALFORMED, "illegal opcode");
            key = 256 + sub;
        }
        if (!winfo[key].present) return t_fail(t, op == SOP_PREFIX_SIMD ? SHOAL_ERR_UNSUPPORTED : SHOAL_ERR_MALFORMED,
                                                "illegal opcode");
        TCtl *c = &t->ctl[t->nctl - 1];
        if (c->unreachable) {
            if (key == 0x02 || key == 0x03 || key == 0x04) {
                t->skip++;
            } else if (key == 0x0B) {
                if (t->skip) {
                    t->skip--;
                    continue;
                }
                if (tr_end(t)) return t->status == SHOAL_OK;
                continue;
            } else if (key == 0x05 && !t->skip) {
                tr_else(t);
                continue;
            }
            if (!skip_imm(t, r, winfo[key].imm)) return false;
            continue;
        }
        uint32_t u, v, np, nr;
        switch (key) {
        case 0x00:
            emit_op(t, SO_unreachable);
            set_unreachable(t);
            break;
        case 0x01: break;
        case 0x02:
            if (block_type(t, r, &np, &nr)) push_ctl(t, C_BLOCK, np, nr);
            break;
        case 0x03:
            if (block_type(t, r, &np, &nr)) push_ctl(t, C_LOOP, np, nr);
            break;
        case 0x04: {
            if (!block_type(t, r, &np, &nr) || !need(t, 1)) break;
            /* Everything below the condition must be canonical before the branch. */
            uint32_t cond = t->h - 1;
            bool below_canonical = true;
            for (uint32_t i = 0; i < cond; i++)
                if (t->st[i].kind != E_STACK) below_canonical = false;
            uint32_t pos = below_canonical ? try_fuse(t, true) : NONE;
            if (pos == NONE) {
                uint32_t a = slot_of(t, cond);
                t->h--;
                materialize_all(t, 0);
                pos = emit_op(t, SO_br_unless) + OPW;
                emit_u(t, 0);
                emit_u(t, a);
            }
            TCtl *nc = push_ctl(t, C_IF, np, nr);
            if (nc) nc->else_fix = pos;
            break;
        }
        case 0x05: tr_else(t); break;
        case 0x0B:
            if (tr_end(t)) return t->status == SHOAL_OK;
            break;
        case 0x0C:
            if (rd32(t, r, &u)) tr_br(t, u);
            break;
        case 0x0D:
            if (rd32(t, r, &u)) tr_br_if(t, u);
            break;
        case 0x0E: tr_br_table(t, r); break;
        case 0x0F:
            emit_return(t);
            set_unreachable(t);
            break;
        case 0x10:
            if (rd32(t, r, &u)) tr_call(t, u);
            break;
        case 0x11:
            if (rd32(t, r, &u) && rd32(t, r, &v)) tr_call_indirect(t, u, v);
            break;
        case 0x1A:
            if (need(t, 1)) t->h--;
            break;
        case 0x1C:
            if (!skip_imm(t, r, SIMM_SELECT_T)) break;
            /* fall through */
        case 0x1B: tr_generic(t, SO_select, 3, true, NULL, 0, false); break;
        case 0x20:
            if (!rd32(t, r, &u)) break;
            if (u >= t->nlocals_total) {
                t_fail(t, SHOAL_ERR_INVALID, "unknown local");
                break;
            }
            push(t, E_LOCAL, u, 0);
            break;
        case 0x21:
        case 0x22:
            if (rd32(t, r, &u)) tr_local_set(t, u, key == 0x22);
            break;
        case 0x23:
            if (!rd32(t, r, &u)) break;
            if (u >= t->m->nglobals) {
                t_fail(t, SHOAL_ERR_INVALID, "unknown global");
                break;
            }
            tr_generic(t, SO_global_get, 0, true, &u, 1, false);
            break;
        case 0x24:
            if (!rd32(t, r, &u)) break;
            if (u >= t->m->nglobals) {
                t_fail(t, SHOAL_ERR_INVALID, "unknown global");
                break;
            }
            tr_generic(t, SO_global_set, 1, false, &u, 1, true);
            break;
        case 0x25:
        case 0x26:
            if (!rd32(t, r, &u)) break;
            if (u >= t->m->ntables) {
                t_fail(t, SHOAL_ERR_INVALID, "unknown table");
                break;
            }
            if (key == 0x25)
                tr_generic(t, SO_table_get, 1, true, &u, 1, true);
            else
                tr_generic(t, SO_table_set, 2, false, &u, 1, true);
            break;
        case 0x28: case 0x29: case 0x2A: case 0x2B: case 0x2C: case 0x2D: case 0x2E: case 0x2F:
        case 0x30: case 0x31: case 0x32: case 0x33: case 0x34: case 0x35:
            if (!rd32(t, r, &u) || !rd32(t, r, &v)) break;
            if (t->m->nmems == 0) {
                t_fail(t, SHOAL_ERR_INVALID, "unknown memory 0");
                break;
            }
            tr_load(t, (SOp)(SO_i32_load + (key - 0x28)), v);
            break;
        case 0x36: case 0x37: case 0x38: case 0x39: case 0x3A: case 0x3B: case 0x3C: case 0x3D: case 0x3E:
            if (!rd32(t, r, &u) || !rd32(t, r, &v)) break;
            if (t->m->nmems == 0) {
                t_fail(t, SHOAL_ERR_INVALID, "unknown memory 0");
                break;
            }
            tr_generic(t, (SOp)(SO_i32_store + (key - 0x36)), 2, false, &v, 1, false);
            break;
        case 0x3F:
        case 0x40: {
            uint8_t b;
            if (!sr_u8(r, &b)) {
                t_fail(t, SHOAL_ERR_MALFORMED, "unexpected end");
                break;
            }
            if (t->m->nmems == 0) {
                t_fail(t, SHOAL_ERR_INVALID, "unknown memory 0");
                break;
            }
            if (key == 0x3F)
                tr_generic(t, SO_memory_size, 0, true, NULL, 0, false);
            else
                tr_generic(t, SO_memory_grow, 1, true, NULL, 0, false);
            break;
        }
        case 0x41: {
            int32_t k;
            if (sr_s32(r, &k) != SR_OK) {
                t_fail(t, SHOAL_ERR_MALFORMED, "malformed i32.const");
                break;
            }
            push(t, E_CONST, 0, (uint32_t)k);
            break;
        }
        case 0x42: {
            int64_t k;
            if (sr_s64(r, &k) != SR_OK) {
                t_fail(t, SHOAL_ERR_MALFORMED, "malformed i64.const");
                break;
            }
            push(t, E_CONST, 0, (uint64_t)k);
            break;
        }
        case 0x43: {
            uint32_t bits;
            if (!sr_f32(r, &bits)) {
                t_fail(t, SHOAL_ERR_MALFORMED, "malformed f32.const");
                break;
            }
            push(t, E_CONST, 0, bits);
            break;
        }
        case 0x44: {
            uint64_t bits;
            if (!sr_f64(r, &bits)) {
                t_fail(t, SHOAL_ERR_MALFORMED, "malformed f64.const");
                break;
            }
            push(t, E_CONST, 0, bits);
            break;
        }
        case 0xD0: {
            uint8_t b;
            if (!sr_u8(r, &b)) {
                t_fail(t, SHOAL_ERR_MALFORMED, "unexpected end");
                break;
            }
            push(t, E_CONST, 0, 0);
            break;
        }
        case 0xD1: tr_unop(t, SO_ref_is_null); break;
        case 0xD2:
            if (!rd32(t, r, &u)) break;
            if (u >= t->m->nfuncs) {
                t_fail(t, SHOAL_ERR_INVALID, "unknown function");
                break;
            }
            tr_generic(t, SO_ref_func, 0, true, &u, 1, false);
            break;
        default:
            if (key >= 0x45 && key <= 0xC4) {
                SOp o = (SOp)(SO_i32_eqz + (key - 0x45));
                if (winfo[key].sig[1] == ':')
                    tr_unop(t, o);
                else
                    tr_binop(t, o);
            } else if (key >= 256 && key <= 256 + 7) {
                tr_unop(t, (SOp)(SO_i32_trunc_sat_f32_s + (key - 256)));
            } else {
                uint32_t imm[2];
                switch (key - 256) {
                case 8: /* memory.init data mem */
                    if (!rd32(t, r, &imm[0]) || !skip_imm(t, r, SIMM_MEMIDX)) break;
                    if (t->m->nmems == 0 || imm[0] >= t->m->ndatas) {
                        t_fail(t, SHOAL_ERR_INVALID, "unknown data segment");
                        break;
                    }
                    tr_generic(t, SO_memory_init, 3, false, imm, 1, true);
                    break;
                case 9:
                    if (!rd32(t, r, &imm[0])) break;
                    if (imm[0] >= t->m->ndatas) {
                        t_fail(t, SHOAL_ERR_INVALID, "unknown data segment");
                        break;
                    }
                    tr_generic(t, SO_data_drop, 0, false, imm, 1, true);
                    break;
                case 10:
                    if (!skip_imm(t, r, SIMM_MEMORY_COPY)) break;
                    tr_generic(t, SO_memory_copy, 3, false, NULL, 0, false);
                    break;
                case 11:
                    if (!skip_imm(t, r, SIMM_MEMORY_FILL)) break;
                    tr_generic(t, SO_memory_fill, 3, false, NULL, 0, false);
                    break;
                case 12: /* table.init elem table */
                    if (!rd32(t, r, &imm[1]) || !rd32(t, r, &imm[0])) break;
                    if (imm[0] >= t->m->ntables || imm[1] >= t->m->nelems) {
                        t_fail(t, SHOAL_ERR_INVALID, "unknown table or element segment");
                        break;
                    }
                    tr_generic(t, SO_table_init, 3, false, imm, 2, true);
                    break;
                case 13:
                    if (!rd32(t, r, &imm[0])) break;
                    if (imm[0] >= t->m->nelems) {
                        t_fail(t, SHOAL_ERR_INVALID, "unknown element segment");
                        break;
                    }
                    tr_generic(t, SO_elem_drop, 0, false, imm, 1, true);
                    break;
                case 14: /* table.copy dst src */
                    if (!rd32(t, r, &imm[0]) || !rd32(t, r, &imm[1])) break;
                    if (imm[0] >= t->m->ntables || imm[1] >= t->m->ntables) {
                        t_fail(t, SHOAL_ERR_INVALID, "unknown table");
                        break;
                    }
                    tr_generic(t, SO_table_copy, 3, false, imm, 2, true);
                    break;
                case 15: case 16: case 17:
                    if (!rd32(t, r, &imm[0])) break;
                    if (imm[0] >= t->m->ntables) {
                        t_fail(t, SHOAL_ERR_INVALID, "unknown table");
                        break;
                    }
                    if (key - 256 == 15)
                        tr_generic(t, SO_table_grow, 2, true, imm, 1, true);
                    else if (key - 256 == 16)
                        tr_generic(t, SO_table_size, 0, true, imm, 1, false);
                    else
                        tr_generic(t, SO_table_fill, 3, false, imm, 1, true);
                    break;
                default: t_fail(t, SHOAL_ERR_MALFORMED, "illegal opcode");
                }
            }
        }
    }
}

static void code_free(SCode *c) {
    if (!c) return;
    free(c->code);
    free(c->pcmap);
    free(c);
}

static shoal_status comp_func(SModule *m, uint32_t fi, const void *const *H, shoal_error *err) {
    SFunc *f = &m->funcs[fi];
    T t;
    memset(&t, 0, sizeof t);
    t.m = m;
    t.err = err;
    t.H = H;
    t.ft = smod_func_type(m, fi);
    if (!t.ft) return shoal_error_set(err, SHOAL_ERR_INVALID, "function %u: unknown type", fi);
    t.nlocals_total = t.ft->nparams + f->nlocals;
    if (t.nlocals_total < t.ft->nparams) return shoal_error_set(err, SHOAL_ERR_INVALID, "too many locals");
    t.nl = t.nlocals_total;
    SCode *c = calloc(1, sizeof *c);
    if (!c || !grow((void **)&t.ctl, &t.capctl, 4, sizeof *t.ctl)) {
        free(c);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    }
    TCtl *fc = &t.ctl[t.nctl++];
    memset(fc, 0, sizeof *fc);
    fc->kind = C_FUNC;
    fc->nresults = t.ft->nresults;
    fc->fixups = NONE;
    fc->else_fix = NONE;
    SReader r = {f->code, f->code_end, m->bytes};
    bool ok = tr_body(&t, &r);
    if (ok && r.p != f->code_end) ok = t_fail(&t, SHOAL_ERR_MALFORMED, "section size mismatch (code after end)");
    if (t.status == SHOAL_OK && !ok) t_fail(&t, SHOAL_ERR_MALFORMED, "translation failed");
    uint64_t frame = (uint64_t)t.nl + t.maxh + 1;
    if (t.status == SHOAL_OK && frame > 0x0fffffff) t_fail(&t, SHOAL_ERR_UNSUPPORTED, "function frame too large");
    free(t.st);
    free(t.ctl);
    if (t.status != SHOAL_OK) {
        free(t.code);
        free(t.map);
        free(c);
        return t.status;
    }
    c->code = t.code;
    c->ncode = t.ncode;
    c->nparams = t.ft->nparams;
    c->nresults = t.ft->nresults;
    c->nlocals = f->nlocals;
    /* results land in slots 0.., so a frame needs at least nresults slots */
    c->frame_slots = (uint32_t)frame > c->nresults ? (uint32_t)frame : c->nresults;
    c->fuel_cost = t.ncode / 3 + 1;
    c->pcmap = t.map;
    c->npcmap = t.nmap / 2;
    f->compiled = c;
    return SHOAL_OK;
}

/* Per-module engine data: canonical types (so call_indirect compares pointers) and the value types of
 * every function type as the public shoal_valtype arrays that shoal_functype hands out. */
typedef struct SModExec {
    const SFuncType **canon;
    shoal_valtype *vt;
    size_t *vt_off; /* type t's params start at vt[vt_off[t]], its results follow */
} SModExec;

static shoal_status modexec_new(SModule *m, shoal_error *err) {
    SModExec *x = calloc(1, sizeof *x);
    size_t total = 0;
    for (uint32_t t = 0; t < m->ntypes; t++) total += (size_t)m->types[t].nparams + m->types[t].nresults;
    if (x) {
        x->canon = calloc(m->ntypes + 1, sizeof *x->canon);
        x->vt = calloc(total + 1, sizeof *x->vt);
        x->vt_off = calloc(m->ntypes + 1, sizeof *x->vt_off);
    }
    if (!x || !x->canon || !x->vt || !x->vt_off) {
        if (x) {
            free(x->canon);
            free(x->vt);
            free(x->vt_off);
        }
        free(x);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    }
    size_t k = 0;
    for (uint32_t t = 0; t < m->ntypes; t++) {
        const SFuncType *ft = &m->types[t];
        x->vt_off[t] = k;
        for (uint32_t i = 0; i < ft->nparams; i++) x->vt[k++] = (shoal_valtype)ft->params[i];
        for (uint32_t i = 0; i < ft->nresults; i++) x->vt[k++] = (shoal_valtype)ft->results[i];
        x->canon[t] = ft;
        for (uint32_t j = 0; j < t; j++)
            if (sexec_functype_equal(&m->types[j], ft)) {
                x->canon[t] = &m->types[j];
                break;
            }
    }
    m->exec = x;
    return SHOAL_OK;
}

shoal_status scomp_module(SModule *m, shoal_error *err) {
    shoal_status st = modexec_new(m, err);
    if (st != SHOAL_OK) return st;
    const void *const *H = sinterp_handlers();
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        if (m->funcs[i].imported) continue;
        shoal_status s = comp_func(m, i, H, err);
        if (s != SHOAL_OK) {
            if (err) {
                /* Prefix the function index; the message is cut to fit, as every message is. */
                char buf[sizeof err->message + 32];
                snprintf(buf, sizeof buf, "function %u: %s", i, err->message);
                memcpy(err->message, buf, sizeof err->message - 1);
                err->message[sizeof err->message - 1] = 0;
            }
            return s;
        }
    }
    return SHOAL_OK;
}

void scomp_free_module(SModule *m) {
    SModExec *x = m->exec;
    if (x) {
        free(x->canon);
        free(x->vt);
        free(x->vt_off);
        free(x);
        m->exec = NULL;
    }
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        code_free(m->funcs[i].compiled);
        m->funcs[i].compiled = NULL;
    }
}

bool sexec_functype_equal(const SFuncType *a, const SFuncType *b) {
    if (a == b) return true;
    return a->nparams == b->nparams && a->nresults == b->nresults &&
           (a->nparams == 0 || !memcmp(a->params, b->params, a->nparams)) &&
           (a->nresults == 0 || !memcmp(a->results, b->results, a->nresults));
}

const SFuncType *scomp_canon_type(const SModule *m, uint32_t t) {
    const SModExec *x = m->exec;
    return x ? x->canon[t] : &m->types[t];
}

void scomp_public_type(const SModule *m, uint32_t t, shoal_functype *out) {
    const SModExec *x = m->exec;
    out->nparams = m->types[t].nparams;
    out->nresults = m->types[t].nresults;
    out->params = x ? x->vt + x->vt_off[t] : NULL;
    out->results = x ? x->vt + x->vt_off[t] + out->nparams : NULL;
}

uint32_t scomp_wasm_offset(const SCode *c, const uint32_t *ip) {
    if (!c || !c->npcmap || ip < c->code) return 0;
    uint32_t pos = (uint32_t)(ip - c->code);
    uint32_t lo = 0, hi = c->npcmap; /* find the last entry with code index <= pos */
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (c->pcmap[2 * mid] <= pos)
            lo = mid;
        else
            hi = mid;
    }
    return c->pcmap[2 * lo + 1];
}
