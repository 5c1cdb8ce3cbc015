/*
 * sinterp.c: the interpreter loop over translated code (scompile.c, sops.h).
 *
 * Dispatch is computed goto: each instruction's first unit is the offset of its handler label from a
 * base label, so code stays 32-bit and a dispatch is load + add + indirect jump. Operands are frame slot
 * indices (fp[ip[k]]). Wasm-to-Wasm calls push a frame record on the execution's own frame stack and
 * continue in the same C loop, so guest recursion depth never touches the host stack.
 *
 * Memory accesses are checked explicitly: (u64)address + offset + size <= current size. There are no
 * signal handlers, so providers without guard pages (device-mapped memory) are safe.
 *
 * Fuel and the interrupt flag are checked on backward branches (loop iterations) and calls only: a
 * backward branch charges its distance in code units (roughly the loop body's op count), a call the
 * callee's straight-line size, so the budget bounds the work done while costing almost nothing per op.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "sexec.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ---- numeric helpers whose semantics differ from C's --------------------------------------------- */

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
/* Wasm min/max: NaN if either is NaN, and -0 < +0. */
static inline float wf32_min(float a, float b) {
    if (isnan(a) || isnan(b)) return a + b;
    if (a == b) return signbit(a) ? a : b;
    return a < b ? a : b;
}
static inline float wf32_max(float a, float b) {
    if (isnan(a) || isnan(b)) return a + b;
    if (a == b) return signbit(a) ? b : a;
    return a > b ? a : b;
}
static inline double wf64_min(double a, double b) {
    if (isnan(a) || isnan(b)) return a + b;
    if (a == b) return signbit(a) ? a : b;
    return a < b ? a : b;
}
static inline double wf64_max(double a, double b) {
    if (isnan(a) || isnan(b)) return a + b;
    if (a == b) return signbit(a) ? b : a;
    return a > b ? a : b;
}

/* libm's rounding functions may return a signalling NaN unchanged; Wasm wants it quieted. */
#define WROUND(name, type, fn) \
    static inline type name(type x) { return isnan(x) ? x + x : fn(x); }
WROUND(wceilf, float, ceilf)
WROUND(wfloorf, float, floorf)
WROUND(wtruncf, float, truncf)
WROUND(wnearestf, float, nearbyintf)
WROUND(wceil, double, ceil)
WROUND(wfloor, double, floor)
WROUND(wtrunc, double, trunc)
WROUND(wnearest, double, nearbyint)

static inline uint32_t rotl32(uint32_t x, uint32_t n) {
    n &= 31;
    return (x << n) | (x >> ((32 - n) & 31));
}
static inline uint32_t rotr32(uint32_t x, uint32_t n) {
    n &= 31;
    return (x >> n) | (x << ((32 - n) & 31));
}
static inline uint64_t rotl64(uint64_t x, uint64_t n) {
    n &= 63;
    return (x << n) | (x >> ((64 - n) & 63));
}
static inline uint64_t rotr64(uint64_t x, uint64_t n) {
    n &= 63;
    return (x >> n) | (x << ((64 - n) & 63));
}

/* Saturating truncations (NaN -> 0, out of range -> the nearest bound). */
static inline int32_t sat_i32_f64(double x) {
    if (isnan(x)) return 0;
    if (x <= -2147483649.0) return INT32_MIN;
    if (x >= 2147483648.0) return INT32_MAX;
    return (int32_t)x;
}
static inline uint32_t sat_u32_f64(double x) {
    if (isnan(x) || x <= -1.0) return 0;
    if (x >= 4294967296.0) return UINT32_MAX;
    return (uint32_t)x;
}
static inline int64_t sat_i64_f64(double x) {
    if (isnan(x)) return 0;
    if (x < -9223372036854775808.0) return INT64_MIN;
    if (x >= 9223372036854775808.0) return INT64_MAX;
    return (int64_t)x;
}
static inline uint64_t sat_u64_f64(double x) {
    if (isnan(x) || x <= -1.0) return 0;
    if (x >= 18446744073709551616.0) return UINT64_MAX;
    return (uint64_t)x;
}

/* ---- host calls -------------------------------------------------------------------------------- */

#define HOST_MAX_RESULTS 16

static shoal_status call_host(SExec *ex, SFuncInst *f, SSlot *args, shoal_instance *caller, shoal_error *err) {
    shoal_val res[HOST_MAX_RESULTS];
    const SFuncType *ft = f->type;
    if (ft->nresults > HOST_MAX_RESULTS)
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "host function with more than %d results",
                               HOST_MAX_RESULTS);
    memset(res, 0, sizeof res);
    uint32_t span = ft->nparams > ft->nresults ? ft->nparams : ft->nresults;
    SSlot *saved_top = ex->top;
    ex->top = args + span;
    shoal_call call = {caller, ex, err};
    if (err) {
        err->func_index = SHOAL_NO_FUNC;
        err->status = SHOAL_OK;
        err->trap = SHOAL_TRAP_NONE;
        err->message[0] = 0;
    }
    shoal_instance *hi = f->inst; /* the importer: f->index is a function index of its module */
    if (UNLIKELY(hi->host_call_hook != NULL))
        hi->host_call_hook(hi->hook_user, hi, f->index, false, (const shoal_val *)args, ft->nparams, SHOAL_OK);
    ex->host_depth++;
    shoal_status st = f->host(&call, (const shoal_val *)args, res, f->host_user);
    ex->host_depth--;
    if (UNLIKELY(hi->host_call_hook != NULL))
        hi->host_call_hook(hi->hook_user, hi, f->index, true, res, ft->nresults, st);
    ex->top = saved_top;
    if (st != SHOAL_OK) {
        if (err && err->status == SHOAL_OK) {
            /* The host returned an error without describing it. */
            err->status = st;
            if (st == SHOAL_ERR_TRAP) err->trap = SHOAL_TRAP_HOST;
            if (!err->message[0]) snprintf(err->message, sizeof err->message, "host function failed (%s)",
                                           shoal_status_name(st));
        }
        return st;
    }
    memcpy(args, res, ft->nresults * sizeof *res);
    return SHOAL_OK;
}

/* ---- the loop ---------------------------------------------------------------------------------- */

/* Where the guest stands when it leaves Wasm code (sexec.h, SExec.at_*): for a snapshot, or a resume. */
static inline void record_stop(SExec *ex, SFuncInst *f, SFuncInst *callee, SSlot *fp, SSlot *args,
                               const uint32_t *ip) {
    ex->at_func = f;
    ex->at_callee = callee;
    ex->at_fp = fp;
    ex->at_args = args;
    ex->at_ip = ip;
    ex->at_depth = ex->depth;
}

static shoal_status run(SExec *ex, SFuncInst *entry, SSlot *entry_fp, const uint32_t *resume_ip, shoal_error *err,
                        const void **export_table) {
    static const void *const labels[SO_COUNT] = {
#define OP(name, layout) &&L_##name,
#include "sops.h"
#undef OP
    };
    if (export_table) {
        memcpy(export_table, labels, sizeof labels);
        return SHOAL_OK;
    }

    /* Only ip, fp, mem, memsize and inst are hot: everything touched at calls and back edges only lives
     * in *ex, so the compiler can keep the hot five in registers. */
    /* A resumed call is a top-level one whose frame records are already in place. */
    const uint32_t entry_depth = resume_ip ? 0 : ex->depth;
    ex->intr = &ex->root->interrupt;
    ex->suspended = false;

    SFuncInst *cur = entry;
    shoal_instance *inst = cur->inst;
    SSlot *fp = entry_fp;
    const uint32_t *ip = NULL;
    uint8_t *mem = inst->mem0->base;
    uint64_t memsize = inst->mem0->size;
    shoal_trap tk = SHOAL_TRAP_NONE;
    shoal_status st = SHOAL_OK;

    SFuncInst *callee;
    SSlot *nfp;
    const uint32_t *ret_ip;

/* An instruction is its handler's address (two units, read unaligned), then operand units U(1).. */
#define DISPATCH()                  \
    do {                            \
        const void *h_;             \
        memcpy(&h_, ip, sizeof h_); \
        goto *h_;                   \
    } while (0)
#define U(k) ip[(k) + 1]
#define NEXT(n)          \
    do {                 \
        ip += (n) + 1;   \
        DISPATCH();      \
    } while (0)
#define S(k) fp[U(k)]
#define TRAP(kind)  \
    do {            \
        tk = (kind); \
        goto trap;  \
    } while (0)
#define SET_I32(k, v) (S(k).u64 = (uint32_t)(v))
/* Taken branch through the offset in unit k; a backward one pays fuel and polls the interrupt flag. k is
 * widened to a signed size first: br_table's k is unsigned, and a negative offset added in 32-bit unsigned
 * arithmetic would wrap into a jump four billion units forward. */
#define BRANCH(k)                                                                                   \
    do {                                                                                            \
        int32_t o_ = (int32_t)U(k);                                                                 \
        ip += (ptrdiff_t)(k) + 1 + o_;                                                                         \
        if (o_ < 0) {                                                                               \
            ex->fuel += o_;                                                                         \
            if (UNLIKELY(ex->fuel < 0 || atomic_load_explicit(ex->intr, memory_order_relaxed)))     \
                goto poll;                                                                          \
        }                                                                                           \
        DISPATCH();                                                                                 \
    } while (0)

    if (resume_ip) {
        ip = resume_ip;
        DISPATCH();
    }
    /* Enter the entry function as if called. */
    callee = entry;
    nfp = entry_fp;
    ret_ip = NULL;
    goto enter;

L_copy:
    S(1).u64 = S(2).u64;
    NEXT(3);
L_const32:
    S(1).u64 = U(2);
    NEXT(3);
L_const64:
    S(1).u64 = (uint64_t)U(2) | (uint64_t)U(3) << 32;
    NEXT(4);
L_unreachable:
    TRAP(SHOAL_TRAP_UNREACHABLE);
L_br:
    BRANCH(1);
L_br_if:
    if (S(2).i32) BRANCH(1);
    NEXT(3);
L_br_unless:
    if (!S(2).i32) BRANCH(1);
    NEXT(3);
L_br_table: {
    uint32_t i = S(1).u32, n = U(2);
    if (i > n) i = n;
    BRANCH(3 + i);
}
L_select:
    S(1) = S(4).i32 ? S(2) : S(3);
    NEXT(5);

L_call:
    callee = inst->funcs[U(1)];
    nfp = fp + U(2);
    ret_ip = ip + 4;
    goto call;
L_call_indirect: {
    STable *tb = inst->tables[U(2)];
    uint32_t i = S(3).u32;
    if (UNLIKELY(i >= tb->size)) TRAP(SHOAL_TRAP_UNDEFINED_ELEMENT);
    callee = tb->elems[i];
    if (UNLIKELY(!callee)) TRAP(SHOAL_TRAP_UNINITIALIZED_ELEMENT);
    const SFuncType *want = inst->types[U(1)];
    if (UNLIKELY(callee->type != want && !sexec_functype_equal(callee->type, want)))
        TRAP(SHOAL_TRAP_INDIRECT_TYPE);
    nfp = fp + U(4);
    ret_ip = ip + 6;
    goto call;
}
call:
    if (UNLIKELY(!callee->code)) {
        record_stop(ex, cur, callee, fp, nfp, ret_ip);
        st = call_host(ex, callee, nfp, inst, err);
        if (UNLIKELY(st != SHOAL_OK)) goto host_failed;
        mem = inst->mem0->base;
        memsize = inst->mem0->size;
        ip = ret_ip;
        DISPATCH();
    }
    if (UNLIKELY(ex->depth >= ex->max_depth)) TRAP(SHOAL_TRAP_STACK_EXHAUSTED);
    {
        SFrame *fr = &ex->frames[ex->depth++];
        fr->ret_ip = ret_ip;
        fr->fp = fp;
        fr->func = cur;
    }
enter: {
    const SCode *c = callee->code;
    if (UNLIKELY((size_t)(ex->slots_end - nfp) < c->frame_slots)) {
        if (ex->depth > entry_depth) ex->depth--;
        TRAP(SHOAL_TRAP_STACK_EXHAUSTED);
    }
    {
        /* Functions have few locals: a plain loop beats a memset call. The empty asm keeps compilers
         * from turning the loop back into one. */
        SSlot *l = nfp + c->nparams, *e = l + c->nlocals;
        for (; l < e; l++) {
            l->u64 = 0;
            __asm__("" : "+r"(l));
        }
    }
    fp = nfp;
    cur = callee;
    if (cur->inst != inst) {
        inst = cur->inst;
        mem = inst->mem0->base;
        memsize = inst->mem0->size;
    }
    ip = c->code;
    ex->fuel -= c->fuel_cost;
    if (UNLIKELY(ex->fuel < 0 || atomic_load_explicit(ex->intr, memory_order_relaxed))) goto poll;
    DISPATCH();
}
L_return_:
    if (ex->depth == entry_depth) goto done;
    {
        const SFrame *fr = &ex->frames[--ex->depth];
        ip = fr->ret_ip;
        fp = fr->fp;
        cur = fr->func;
    }
    inst = cur->inst;
    /* The callee may have grown the memory (or switched instances). */
    mem = inst->mem0->base;
    memsize = inst->mem0->size;
    DISPATCH();

L_global_get:
    S(1) = inst->globals[U(2)]->val;
    NEXT(3);
L_global_set:
    inst->globals[U(1)]->val = S(2);
    NEXT(3);

L_ref_is_null:
    SET_I32(1, S(2).ref == NULL);
    NEXT(3);
L_ref_func:
    S(1).ref = inst->funcs[U(2)];
    NEXT(3);
L_table_get: {
    STable *tb = inst->tables[U(2)];
    uint32_t i = S(3).u32;
    if (UNLIKELY(i >= tb->size)) TRAP(SHOAL_TRAP_TABLE_OOB);
    S(1).ref = tb->elems[i];
    NEXT(4);
}
L_table_set: {
    STable *tb = inst->tables[U(1)];
    uint32_t i = S(2).u32;
    if (UNLIKELY(i >= tb->size)) TRAP(SHOAL_TRAP_TABLE_OOB);
    tb->elems[i] = S(3).ref;
    NEXT(4);
}
L_table_size:
    SET_I32(1, inst->tables[U(2)]->size);
    NEXT(3);
L_table_grow: {
    int64_t r = stable_grow(inst->tables[U(2)], S(4).u32, S(3).ref);
    SET_I32(1, (uint32_t)r);
    NEXT(5);
}
L_table_fill: {
    STable *tb = inst->tables[U(1)];
    uint32_t i = S(2).u32, n = S(4).u32;
    void *v = S(3).ref;
    if (UNLIKELY((uint64_t)i + n > tb->size)) TRAP(SHOAL_TRAP_TABLE_OOB);
    for (uint32_t k = 0; k < n; k++) tb->elems[i + k] = v;
    NEXT(5);
}
L_table_copy: {
    STable *td = inst->tables[U(1)], *ts = inst->tables[U(2)];
    uint32_t d = S(3).u32, s = S(4).u32, n = S(5).u32;
    if (UNLIKELY((uint64_t)d + n > td->size || (uint64_t)s + n > ts->size)) TRAP(SHOAL_TRAP_TABLE_OOB);
    if (n) memmove(td->elems + d, ts->elems + s, (size_t)n * sizeof(void *));
    NEXT(6);
}
L_table_init: {
    STable *tb = inst->tables[U(1)];
    SElemInst *seg = &inst->elems[U(2)];
    uint32_t d = S(3).u32, s = S(4).u32, n = S(5).u32;
    if (UNLIKELY((uint64_t)s + n > seg->count || (uint64_t)d + n > tb->size)) TRAP(SHOAL_TRAP_TABLE_OOB);
    if (n) memcpy(tb->elems + d, seg->refs + s, (size_t)n * sizeof(void *));
    NEXT(6);
}
L_elem_drop:
    inst->elems[U(1)].count = 0;
    NEXT(2);

/* Loads: unit 2 is the address slot, unit 3 the static offset. */
#define LOAD(name, n, ctype, store_expr)                                \
    L_##name: {                                                         \
        uint64_t ea = (uint64_t)S(2).u32 + U(3);                       \
        if (UNLIKELY(ea + (n) > memsize)) TRAP(SHOAL_TRAP_MEMORY_OOB);  \
        ctype v;                                                        \
        memcpy(&v, mem + ea, (n));                                      \
        store_expr;                                                     \
        NEXT(4);                                                        \
    }
#define LOAD_AI(name, n, ctype, store_expr)                              \
    L_##name##_ai: {                                                    \
        uint64_t ea = (uint64_t)(uint32_t)(S(2).u32 + U(3)) + U(4);   \
        if (UNLIKELY(ea + (n) > memsize)) TRAP(SHOAL_TRAP_MEMORY_OOB);  \
        ctype v;                                                        \
        memcpy(&v, mem + ea, (n));                                      \
        store_expr;                                                     \
        NEXT(5);                                                        \
    }                                                                   \
    L_##name##_ab: {                                                    \
        uint64_t ea = (uint64_t)(uint32_t)(S(2).u32 + S(3).u32) + U(4); \
        if (UNLIKELY(ea + (n) > memsize)) TRAP(SHOAL_TRAP_MEMORY_OOB);  \
        ctype v;                                                        \
        memcpy(&v, mem + ea, (n));                                      \
        store_expr;                                                     \
        NEXT(5);                                                        \
    }
#define LOADS(name, n, ctype, store_expr) LOAD(name, n, ctype, store_expr) LOAD_AI(name, n, ctype, store_expr)
    LOADS(i32_load, 4, uint32_t, S(1).u64 = v)
    LOADS(i64_load, 8, uint64_t, S(1).u64 = v)
    LOADS(f32_load, 4, uint32_t, S(1).u64 = v)
    LOADS(f64_load, 8, uint64_t, S(1).u64 = v)
    LOADS(i32_load8_s, 1, int8_t, SET_I32(1, (int32_t)v))
    LOADS(i32_load8_u, 1, uint8_t, SET_I32(1, v))
    LOADS(i32_load16_s, 2, int16_t, SET_I32(1, (int32_t)v))
    LOADS(i32_load16_u, 2, uint16_t, SET_I32(1, v))
    LOADS(i64_load8_s, 1, int8_t, S(1).i64 = v)
    LOADS(i64_load8_u, 1, uint8_t, S(1).u64 = v)
    LOADS(i64_load16_s, 2, int16_t, S(1).i64 = v)
    LOADS(i64_load16_u, 2, uint16_t, S(1).u64 = v)
    LOADS(i64_load32_s, 4, int32_t, S(1).i64 = v)
    LOADS(i64_load32_u, 4, uint32_t, S(1).u64 = v)
/* Stores: unit 1 is the address slot, unit 2 the value; little-endian hosts store the low bytes. */
#define STORE(name, n)                                                  \
    L_##name: {                                                         \
        uint64_t ea = (uint64_t)S(1).u32 + U(3);                       \
        if (UNLIKELY(ea + (n) > memsize)) TRAP(SHOAL_TRAP_MEMORY_OOB);  \
        memcpy(mem + ea, &S(2), (n));                                   \
        NEXT(4);                                                        \
    }
    STORE(i32_store, 4)
    STORE(i64_store, 8)
    STORE(f32_store, 4)
    STORE(f64_store, 8)
    STORE(i32_store8, 1)
    STORE(i32_store16, 2)
    STORE(i64_store8, 1)
    STORE(i64_store16, 2)
    STORE(i64_store32, 4)

L_memory_size:
    SET_I32(1, inst->mem0->pages);
    NEXT(2);
L_memory_grow: {
    int64_t r = smem_grow(inst->mem0, S(2).u32);
    SET_I32(1, (uint32_t)r);
    mem = inst->mem0->base;
    memsize = inst->mem0->size;
    NEXT(3);
}
L_memory_init: {
    uint32_t d = S(2).u32, s = S(3).u32, n = S(4).u32;
    uint32_t seg_size = inst->data_sizes[U(1)];
    if (UNLIKELY((uint64_t)s + n > seg_size || (uint64_t)d + n > memsize)) TRAP(SHOAL_TRAP_MEMORY_OOB);
    if (n) memcpy(mem + d, inst->module->m.datas[U(1)].bytes + s, n);
    NEXT(5);
}
L_data_drop:
    inst->data_sizes[U(1)] = 0;
    NEXT(2);
L_memory_copy: {
    uint32_t d = S(1).u32, s = S(2).u32, n = S(3).u32;
    if (UNLIKELY((uint64_t)s + n > memsize || (uint64_t)d + n > memsize)) TRAP(SHOAL_TRAP_MEMORY_OOB);
    if (n) memmove(mem + d, mem + s, n);
    NEXT(4);
}
L_memory_fill: {
    uint32_t d = S(1).u32, n = S(3).u32;
    if (UNLIKELY((uint64_t)d + n > memsize)) TRAP(SHOAL_TRAP_MEMORY_OOB);
    if (n) memset(mem + d, (int)(uint8_t)S(2).u32, n);
    NEXT(4);
}

#define UN(name, expr)  \
    L_##name: {         \
        SSlot a = S(2); \
        expr;           \
        NEXT(3);        \
    }
#define BIN(name, expr)            \
    L_##name: {                    \
        SSlot a = S(2), b = S(3);  \
        expr;                      \
        NEXT(4);                   \
    }
#define IMM(name, expr)                       \
    L_##name: {                               \
        SSlot a = S(2);                       \
        uint32_t k = U(3);                   \
        expr;                                 \
        NEXT(4);                              \
    }
    UN(i32_eqz, SET_I32(1, a.i32 == 0))
    BIN(i32_eq, SET_I32(1, a.i32 == b.i32))
    BIN(i32_ne, SET_I32(1, a.i32 != b.i32))
    BIN(i32_lt_s, SET_I32(1, a.i32 < b.i32))
    BIN(i32_lt_u, SET_I32(1, a.u32 < b.u32))
    BIN(i32_gt_s, SET_I32(1, a.i32 > b.i32))
    BIN(i32_gt_u, SET_I32(1, a.u32 > b.u32))
    BIN(i32_le_s, SET_I32(1, a.i32 <= b.i32))
    BIN(i32_le_u, SET_I32(1, a.u32 <= b.u32))
    BIN(i32_ge_s, SET_I32(1, a.i32 >= b.i32))
    BIN(i32_ge_u, SET_I32(1, a.u32 >= b.u32))
    UN(i64_eqz, SET_I32(1, a.i64 == 0))
    BIN(i64_eq, SET_I32(1, a.i64 == b.i64))
    BIN(i64_ne, SET_I32(1, a.i64 != b.i64))
    BIN(i64_lt_s, SET_I32(1, a.i64 < b.i64))
    BIN(i64_lt_u, SET_I32(1, a.u64 < b.u64))
    BIN(i64_gt_s, SET_I32(1, a.i64 > b.i64))
    BIN(i64_gt_u, SET_I32(1, a.u64 > b.u64))
    BIN(i64_le_s, SET_I32(1, a.i64 <= b.i64))
    BIN(i64_le_u, SET_I32(1, a.u64 <= b.u64))
    BIN(i64_ge_s, SET_I32(1, a.i64 >= b.i64))
    BIN(i64_ge_u, SET_I32(1, a.u64 >= b.u64))
    BIN(f32_eq, SET_I32(1, a.f32 == b.f32))
    BIN(f32_ne, SET_I32(1, a.f32 != b.f32))
    BIN(f32_lt, SET_I32(1, a.f32 < b.f32))
    BIN(f32_gt, SET_I32(1, a.f32 > b.f32))
    BIN(f32_le, SET_I32(1, a.f32 <= b.f32))
    BIN(f32_ge, SET_I32(1, a.f32 >= b.f32))
    BIN(f64_eq, SET_I32(1, a.f64 == b.f64))
    BIN(f64_ne, SET_I32(1, a.f64 != b.f64))
    BIN(f64_lt, SET_I32(1, a.f64 < b.f64))
    BIN(f64_gt, SET_I32(1, a.f64 > b.f64))
    BIN(f64_le, SET_I32(1, a.f64 <= b.f64))
    BIN(f64_ge, SET_I32(1, a.f64 >= b.f64))
    UN(i32_clz, SET_I32(1, a.u32 ? __builtin_clz(a.u32) : 32))
    UN(i32_ctz, SET_I32(1, a.u32 ? __builtin_ctz(a.u32) : 32))
    UN(i32_popcnt, SET_I32(1, __builtin_popcount(a.u32)))
    BIN(i32_add, SET_I32(1, a.u32 + b.u32))
    BIN(i32_sub, SET_I32(1, a.u32 - b.u32))
    BIN(i32_mul, SET_I32(1, a.u32 * b.u32))
    BIN(i32_div_s, {
        if (UNLIKELY(b.i32 == 0)) TRAP(SHOAL_TRAP_INT_DIV_ZERO);
        if (UNLIKELY(a.i32 == INT32_MIN && b.i32 == -1)) TRAP(SHOAL_TRAP_INT_OVERFLOW);
        SET_I32(1, a.i32 / b.i32);
    })
    BIN(i32_div_u, {
        if (UNLIKELY(b.u32 == 0)) TRAP(SHOAL_TRAP_INT_DIV_ZERO);
        SET_I32(1, a.u32 / b.u32);
    })
    BIN(i32_rem_s, {
        if (UNLIKELY(b.i32 == 0)) TRAP(SHOAL_TRAP_INT_DIV_ZERO);
        SET_I32(1, b.i32 == -1 ? 0 : a.i32 % b.i32);
    })
    BIN(i32_rem_u, {
        if (UNLIKELY(b.u32 == 0)) TRAP(SHOAL_TRAP_INT_DIV_ZERO);
        SET_I32(1, a.u32 % b.u32);
    })
    BIN(i32_and, SET_I32(1, a.u32 & b.u32))
    BIN(i32_or, SET_I32(1, a.u32 | b.u32))
    BIN(i32_xor, SET_I32(1, a.u32 ^ b.u32))
    BIN(i32_shl, SET_I32(1, a.u32 << (b.u32 & 31)))
    BIN(i32_shr_s, SET_I32(1, a.i32 >> (b.u32 & 31)))
    BIN(i32_shr_u, SET_I32(1, a.u32 >> (b.u32 & 31)))
    BIN(i32_rotl, SET_I32(1, rotl32(a.u32, b.u32)))
    BIN(i32_rotr, SET_I32(1, rotr32(a.u32, b.u32)))
    UN(i64_clz, S(1).u64 = a.u64 ? (uint64_t)__builtin_clzll(a.u64) : 64)
    UN(i64_ctz, S(1).u64 = a.u64 ? (uint64_t)__builtin_ctzll(a.u64) : 64)
    UN(i64_popcnt, S(1).u64 = (uint64_t)__builtin_popcountll(a.u64))
    BIN(i64_add, S(1).u64 = a.u64 + b.u64)
    BIN(i64_sub, S(1).u64 = a.u64 - b.u64)
    BIN(i64_mul, S(1).u64 = a.u64 * b.u64)
    BIN(i64_div_s, {
        if (UNLIKELY(b.i64 == 0)) TRAP(SHOAL_TRAP_INT_DIV_ZERO);
        if (UNLIKELY(a.i64 == INT64_MIN && b.i64 == -1)) TRAP(SHOAL_TRAP_INT_OVERFLOW);
        S(1).i64 = a.i64 / b.i64;
    })
    BIN(i64_div_u, {
        if (UNLIKELY(b.u64 == 0)) TRAP(SHOAL_TRAP_INT_DIV_ZERO);
        S(1).u64 = a.u64 / b.u64;
    })
    BIN(i64_rem_s, {
        if (UNLIKELY(b.i64 == 0)) TRAP(SHOAL_TRAP_INT_DIV_ZERO);
        S(1).i64 = b.i64 == -1 ? 0 : a.i64 % b.i64;
    })
    BIN(i64_rem_u, {
        if (UNLIKELY(b.u64 == 0)) TRAP(SHOAL_TRAP_INT_DIV_ZERO);
        S(1).u64 = a.u64 % b.u64;
    })
    BIN(i64_and, S(1).u64 = a.u64 & b.u64)
    BIN(i64_or, S(1).u64 = a.u64 | b.u64)
    BIN(i64_xor, S(1).u64 = a.u64 ^ b.u64)
    BIN(i64_shl, S(1).u64 = a.u64 << (b.u64 & 63))
    BIN(i64_shr_s, S(1).i64 = a.i64 >> (b.u64 & 63))
    BIN(i64_shr_u, S(1).u64 = a.u64 >> (b.u64 & 63))
    BIN(i64_rotl, S(1).u64 = rotl64(a.u64, b.u64))
    BIN(i64_rotr, S(1).u64 = rotr64(a.u64, b.u64))
    /* Sign, abs and copysign are bit operations: they must not touch NaN payloads. */
    UN(f32_abs, S(1).u64 = a.u32 & 0x7fffffffu)
    UN(f32_neg, S(1).u64 = a.u32 ^ 0x80000000u)
    UN(f32_ceil, S(1).u64 = f32_bits(wceilf(a.f32)))
    UN(f32_floor, S(1).u64 = f32_bits(wfloorf(a.f32)))
    UN(f32_trunc, S(1).u64 = f32_bits(wtruncf(a.f32)))
    UN(f32_nearest, S(1).u64 = f32_bits(wnearestf(a.f32)))
    UN(f32_sqrt, S(1).u64 = f32_bits(sqrtf(a.f32)))
    BIN(f32_add, S(1).u64 = f32_bits(a.f32 + b.f32))
    BIN(f32_sub, S(1).u64 = f32_bits(a.f32 - b.f32))
    BIN(f32_mul, S(1).u64 = f32_bits(a.f32 * b.f32))
    BIN(f32_div, S(1).u64 = f32_bits(a.f32 / b.f32))
    BIN(f32_min, S(1).u64 = f32_bits(wf32_min(a.f32, b.f32)))
    BIN(f32_max, S(1).u64 = f32_bits(wf32_max(a.f32, b.f32)))
    BIN(f32_copysign, S(1).u64 = (a.u32 & 0x7fffffffu) | (b.u32 & 0x80000000u))
    UN(f64_abs, S(1).u64 = a.u64 & 0x7fffffffffffffffull)
    UN(f64_neg, S(1).u64 = a.u64 ^ 0x8000000000000000ull)
    UN(f64_ceil, S(1).f64 = wceil(a.f64))
    UN(f64_floor, S(1).f64 = wfloor(a.f64))
    UN(f64_trunc, S(1).f64 = wtrunc(a.f64))
    UN(f64_nearest, S(1).f64 = wnearest(a.f64))
    UN(f64_sqrt, S(1).f64 = sqrt(a.f64))
    BIN(f64_add, S(1).f64 = a.f64 + b.f64)
    BIN(f64_sub, S(1).f64 = a.f64 - b.f64)
    BIN(f64_mul, S(1).f64 = a.f64 * b.f64)
    BIN(f64_div, S(1).f64 = a.f64 / b.f64)
    BIN(f64_min, S(1).f64 = wf64_min(a.f64, b.f64))
    BIN(f64_max, S(1).f64 = wf64_max(a.f64, b.f64))
    BIN(f64_copysign, S(1).u64 = (a.u64 & 0x7fffffffffffffffull) | (b.u64 & 0x8000000000000000ull))
    UN(i32_wrap_i64, SET_I32(1, a.u64))
    UN(i32_trunc_f32_s, {
        if (UNLIKELY(isnan(a.f32))) TRAP(SHOAL_TRAP_INVALID_CONVERSION);
        if (UNLIKELY(!(a.f32 >= -2147483648.0f && a.f32 < 2147483648.0f))) TRAP(SHOAL_TRAP_INT_OVERFLOW);
        SET_I32(1, (int32_t)a.f32);
    })
    UN(i32_trunc_f32_u, {
        if (UNLIKELY(isnan(a.f32))) TRAP(SHOAL_TRAP_INVALID_CONVERSION);
        if (UNLIKELY(!(a.f32 > -1.0f && a.f32 < 4294967296.0f))) TRAP(SHOAL_TRAP_INT_OVERFLOW);
        SET_I32(1, (uint32_t)a.f32);
    })
    UN(i32_trunc_f64_s, {
        if (UNLIKELY(isnan(a.f64))) TRAP(SHOAL_TRAP_INVALID_CONVERSION);
        if (UNLIKELY(!(a.f64 > -2147483649.0 && a.f64 < 2147483648.0))) TRAP(SHOAL_TRAP_INT_OVERFLOW);
        SET_I32(1, (int32_t)a.f64);
    })
    UN(i32_trunc_f64_u, {
        if (UNLIKELY(isnan(a.f64))) TRAP(SHOAL_TRAP_INVALID_CONVERSION);
        if (UNLIKELY(!(a.f64 > -1.0 && a.f64 < 4294967296.0))) TRAP(SHOAL_TRAP_INT_OVERFLOW);
        SET_I32(1, (uint32_t)a.f64);
    })
    UN(i64_extend_i32_s, S(1).i64 = a.i32)
    UN(i64_extend_i32_u, S(1).u64 = a.u32)
    UN(i64_trunc_f32_s, {
        if (UNLIKELY(isnan(a.f32))) TRAP(SHOAL_TRAP_INVALID_CONVERSION);
        if (UNLIKELY(!(a.f32 >= -9223372036854775808.0f && a.f32 < 9223372036854775808.0f)))
            TRAP(SHOAL_TRAP_INT_OVERFLOW);
        S(1).i64 = (int64_t)a.f32;
    })
    UN(i64_trunc_f32_u, {
        if (UNLIKELY(isnan(a.f32))) TRAP(SHOAL_TRAP_INVALID_CONVERSION);
        if (UNLIKELY(!(a.f32 > -1.0f && a.f32 < 18446744073709551616.0f))) TRAP(SHOAL_TRAP_INT_OVERFLOW);
        S(1).u64 = (uint64_t)a.f32;
    })
    UN(i64_trunc_f64_s, {
        if (UNLIKELY(isnan(a.f64))) TRAP(SHOAL_TRAP_INVALID_CONVERSION);
        if (UNLIKELY(!(a.f64 >= -9223372036854775808.0 && a.f64 < 9223372036854775808.0)))
            TRAP(SHOAL_TRAP_INT_OVERFLOW);
        S(1).i64 = (int64_t)a.f64;
    })
    UN(i64_trunc_f64_u, {
        if (UNLIKELY(isnan(a.f64))) TRAP(SHOAL_TRAP_INVALID_CONVERSION);
        if (UNLIKELY(!(a.f64 > -1.0 && a.f64 < 18446744073709551616.0))) TRAP(SHOAL_TRAP_INT_OVERFLOW);
        S(1).u64 = (uint64_t)a.f64;
    })
    UN(f32_convert_i32_s, S(1).u64 = f32_bits((float)a.i32))
    UN(f32_convert_i32_u, S(1).u64 = f32_bits((float)a.u32))
    UN(f32_convert_i64_s, S(1).u64 = f32_bits((float)a.i64))
    UN(f32_convert_i64_u, S(1).u64 = f32_bits((float)a.u64))
    UN(f32_demote_f64, S(1).u64 = f32_bits((float)a.f64))
    UN(f64_convert_i32_s, S(1).f64 = (double)a.i32)
    UN(f64_convert_i32_u, S(1).f64 = (double)a.u32)
    UN(f64_convert_i64_s, S(1).f64 = (double)a.i64)
    UN(f64_convert_i64_u, S(1).f64 = (double)a.u64)
    UN(f64_promote_f32, S(1).f64 = (double)a.f32)
    UN(i32_reinterpret_f32, S(1).u64 = a.u32)
    UN(i64_reinterpret_f64, S(1).u64 = a.u64)
    UN(f32_reinterpret_i32, S(1).u64 = a.u32)
    UN(f64_reinterpret_i64, S(1).u64 = a.u64)
    UN(i32_extend8_s, SET_I32(1, (int32_t)(int8_t)a.u32))
    UN(i32_extend16_s, SET_I32(1, (int32_t)(int16_t)a.u32))
    UN(i64_extend8_s, S(1).i64 = (int8_t)a.u64)
    UN(i64_extend16_s, S(1).i64 = (int16_t)a.u64)
    UN(i64_extend32_s, S(1).i64 = (int32_t)a.u64)
    UN(i32_trunc_sat_f32_s, SET_I32(1, sat_i32_f64(a.f32)))
    UN(i32_trunc_sat_f32_u, SET_I32(1, sat_u32_f64(a.f32)))
    UN(i32_trunc_sat_f64_s, SET_I32(1, sat_i32_f64(a.f64)))
    UN(i32_trunc_sat_f64_u, SET_I32(1, sat_u32_f64(a.f64)))
    UN(i64_trunc_sat_f32_s, S(1).i64 = sat_i64_f64(a.f32))
    UN(i64_trunc_sat_f32_u, S(1).u64 = sat_u64_f64(a.f32))
    UN(i64_trunc_sat_f64_s, S(1).i64 = sat_i64_f64(a.f64))
    UN(i64_trunc_sat_f64_u, S(1).u64 = sat_u64_f64(a.f64))

    IMM(i32_add_imm, SET_I32(1, a.u32 + k))
    IMM(i32_mul_imm, SET_I32(1, a.u32 * k))
    IMM(i32_and_imm, SET_I32(1, a.u32 & k))
    IMM(i32_or_imm, SET_I32(1, a.u32 | k))
    IMM(i32_xor_imm, SET_I32(1, a.u32 ^ k))
    IMM(i32_shl_imm, SET_I32(1, a.u32 << (k & 31)))
    IMM(i32_shr_s_imm, SET_I32(1, a.i32 >> (k & 31)))
    IMM(i32_shr_u_imm, SET_I32(1, a.u32 >> (k & 31)))
    IMM(i32_eq_imm, SET_I32(1, a.u32 == k))
    IMM(i32_ne_imm, SET_I32(1, a.u32 != k))
    IMM(i32_lt_s_imm, SET_I32(1, a.i32 < (int32_t)k))
    IMM(i32_lt_u_imm, SET_I32(1, a.u32 < k))
    IMM(i32_gt_s_imm, SET_I32(1, a.i32 > (int32_t)k))
    IMM(i32_gt_u_imm, SET_I32(1, a.u32 > k))
    IMM(i32_le_s_imm, SET_I32(1, a.i32 <= (int32_t)k))
    IMM(i32_le_u_imm, SET_I32(1, a.u32 <= k))
    IMM(i32_ge_s_imm, SET_I32(1, a.i32 >= (int32_t)k))
    IMM(i32_ge_u_imm, SET_I32(1, a.u32 >= k))
    IMM(i32_rotl_imm, SET_I32(1, rotl32(a.u32, k)))
    IMM(i32_rotr_imm, SET_I32(1, rotr32(a.u32, k)))
    IMM(i32_rsub_imm, SET_I32(1, k - a.u32))
#define SX(k) ((uint64_t)(int64_t)(int32_t)(k))
    IMM(i64_add_imm, S(1).u64 = a.u64 + SX(k))
    IMM(i64_mul_imm, S(1).u64 = a.u64 * SX(k))
    IMM(i64_and_imm, S(1).u64 = a.u64 & SX(k))
    IMM(i64_or_imm, S(1).u64 = a.u64 | SX(k))
    IMM(i64_xor_imm, S(1).u64 = a.u64 ^ SX(k))
    IMM(i64_shl_imm, S(1).u64 = a.u64 << (k & 63))
    IMM(i64_shr_s_imm, S(1).i64 = a.i64 >> (k & 63))
    IMM(i64_shr_u_imm, S(1).u64 = a.u64 >> (k & 63))
    IMM(i64_eq_imm, SET_I32(1, a.u64 == SX(k)))
    IMM(i64_ne_imm, SET_I32(1, a.u64 != SX(k)))

/* Multiply then add/subtract: the product is rounded on its own (separate statements: no contraction). */
#define MULOP(name, ctype, member, expr)                         \
    L_##name: {                                                  \
        ctype a = S(2).member, b = S(3).member, c = S(4).member; \
        ctype m = a * b;                                         \
        ctype r = expr;                                          \
        S(1).u64 = 0;                                            \
        S(1).member = r;                                         \
        NEXT(5);                                                 \
    }
    MULOP(f32_mul_add, float, f32, m + c)
    MULOP(f32_mul_sub, float, f32, m - c)
    MULOP(f32_mul_rsub, float, f32, c - m)
    MULOP(f64_mul_add, double, f64, m + c)
    MULOP(f64_mul_sub, double, f64, m - c)
    MULOP(f64_mul_rsub, double, f64, c - m)

/* Op with a loaded right operand. */
#define LOADOP(name, ctype, member, expr)                              \
    L_##name: {                                                        \
        uint64_t ea = (uint64_t)S(3).u32 + U(4);                       \
        if (UNLIKELY(ea + sizeof(ctype) > memsize)) TRAP(SHOAL_TRAP_MEMORY_OOB); \
        ctype b;                                                       \
        memcpy(&b, mem + ea, sizeof b);                                \
        ctype a = S(2).member;                                         \
        ctype r = expr;                                                \
        S(1).u64 = 0;                                                  \
        S(1).member = r;                                               \
        NEXT(5);                                                       \
    }
    LOADOP(i32_add_m, uint32_t, u32, a + b)
    LOADOP(i32_sub_m, uint32_t, u32, a - b)
    LOADOP(i32_and_m, uint32_t, u32, a & b)
    LOADOP(i32_or_m, uint32_t, u32, a | b)
    LOADOP(i32_xor_m, uint32_t, u32, a ^ b)
    LOADOP(f32_add_m, float, f32, a + b)
    LOADOP(f32_sub_m, float, f32, a - b)
    LOADOP(f32_mul_m, float, f32, a * b)
    LOADOP(f64_add_m, double, f64, a + b)
    LOADOP(f64_sub_m, double, f64, a - b)
    LOADOP(f64_mul_m, double, f64, a * b)

/* Compare and branch: unit 1 is the offset, 2 and 3 the operands (3 an immediate for _imm). */
#define BRC(name, cond)                       \
    L_br_##name: {                            \
        SSlot a = S(2), b = S(3);             \
        (void)b;                              \
        if (cond) BRANCH(1);                  \
        NEXT(4);                              \
    }
#define BRCI(name, cond)                      \
    L_br_##name: {                            \
        SSlot a = S(2);                       \
        uint32_t k = U(3);                   \
        if (cond) BRANCH(1);                  \
        NEXT(4);                              \
    }
L_br_i32_eqz:
    if (S(2).i32 == 0) BRANCH(1);
    NEXT(3);
    BRC(i32_eq, a.u32 == b.u32)
    BRC(i32_ne, a.u32 != b.u32)
    BRC(i32_lt_s, a.i32 < b.i32)
    BRC(i32_lt_u, a.u32 < b.u32)
    BRC(i32_gt_s, a.i32 > b.i32)
    BRC(i32_gt_u, a.u32 > b.u32)
    BRC(i32_le_s, a.i32 <= b.i32)
    BRC(i32_le_u, a.u32 <= b.u32)
    BRC(i32_ge_s, a.i32 >= b.i32)
    BRC(i32_ge_u, a.u32 >= b.u32)
    BRCI(i32_eq_imm, a.u32 == k)
    BRCI(i32_ne_imm, a.u32 != k)
    BRCI(i32_lt_s_imm, a.i32 < (int32_t)k)
    BRCI(i32_lt_u_imm, a.u32 < k)
    BRCI(i32_gt_s_imm, a.i32 > (int32_t)k)
    BRCI(i32_gt_u_imm, a.u32 > k)
    BRCI(i32_le_s_imm, a.i32 <= (int32_t)k)
    BRCI(i32_le_u_imm, a.u32 <= k)
    BRCI(i32_ge_s_imm, a.i32 >= (int32_t)k)
    BRCI(i32_ge_u_imm, a.u32 >= k)

poll:
    /* A backward branch or call found the budget spent or the interrupt flag set. Either stop leaves the
     * guest at an instruction boundary with its frames intact: record where, so that it can be saved and
     * continued (sinterp_resume at ip runs exactly what would have run next). */
    if (atomic_load_explicit(ex->intr, memory_order_relaxed)) {
        tk = SHOAL_TRAP_INTERRUPTED;
        goto suspend;
    }
    if (ex->fuel < 0) {
        if (ex->fuel_limited) {
            tk = SHOAL_TRAP_FUEL_EXHAUSTED;
            goto suspend;
        }
        ex->fuel = INT64_MAX; /* unlimited: the counter merely wrapped its huge start value */
    }
    DISPATCH();

suspend:
    record_stop(ex, cur, NULL, fp, NULL, ip);
    ex->suspended = true;
    ex->resumable = entry_depth == 0 && ex->host_depth == 0;
    goto trap;

trap:
    ex->depth = entry_depth;
    if (ex->fuel < 0) ex->fuel = 0;
    return sexec_trap(err, tk, cur, ip);
host_failed:
    ex->depth = entry_depth;
    if (ex->fuel < 0) ex->fuel = 0;
    if (err && err->func_index == SHOAL_NO_FUNC && cur->code) {
        /* Locate a host trap at the calling instruction. */
        shoal_error keep = *err;
        sexec_trap(err, SHOAL_TRAP_HOST, cur, ret_ip - 1);
        err->status = keep.status;
        err->trap = keep.trap;
        err->exit_code = keep.exit_code;
        memcpy(err->message, keep.message, sizeof err->message);
    }
    return st;
done:
    ex->depth = entry_depth;
    return SHOAL_OK;
}

static const void *handler_table[SO_COUNT];
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static void handlers_init(void) { run(NULL, NULL, NULL, NULL, NULL, handler_table); }

const void *const *sinterp_handlers(void) {
    pthread_once(&handler_once, handlers_init);
    return handler_table;
}

shoal_status sinterp_call(SExec *ex, SFuncInst *f, SSlot *fp, shoal_error *err) {
    if (!f->code) {
        ex->at_func = NULL; /* no Wasm caller: nothing a snapshot could continue */
        return call_host(ex, f, fp, f->inst, err);
    }
    return run(ex, f, fp, NULL, err, NULL);
}

shoal_status sinterp_resume(SExec *ex, SFuncInst *f, SSlot *fp, const uint32_t *ip, shoal_error *err) {
    return run(ex, f, fp, ip, err, NULL);
}
