/*
 * sexec.h: the runtime side of the engine, shared by the translator (scompile.c), the interpreter
 * (sinterp.c), instantiation (sinstance.c), linear memory (smemory.c) and the public API (sapi.c).
 *
 * Execution model (why it looks like this):
 *   - Every function is translated once, at load, into SCode: a stream of 32-bit units where each
 *     instruction is a handler offset followed by its operands. Operands are frame slot indices: params,
 *     then declared locals, then one slot per value-stack position. local.get is folded into operand
 *     references and constants into immediates, so `a + b -> c` is one instruction.
 *   - A frame is a window of 8-byte SSlot cells. A call places the callee's frame at the caller's first
 *     argument slot, so arguments are passed without copying and results come back in the same place.
 *   - Wasm-to-Wasm calls never recurse on the C stack: the interpreter keeps its own frame records.
 */
#ifndef SEXEC_H
#define SEXEC_H

#include <stdatomic.h>

#include "shoal.h"
#include "smodule.h"

/* One value cell. Same size and member layout as shoal_val, so host functions get a pointer into the
 * frame as their argument array. */
typedef union SSlot {
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    float f32;
    double f64;
    void *ref;
} SSlot;
_Static_assert(sizeof(SSlot) == 8 && sizeof(shoal_val) == 8, "slots and shoal_val are both 8 bytes");

/* A translated function body. */
typedef struct SCode {
    uint32_t *code;       /* instructions; offsets of branch targets are relative to their own unit */
    uint32_t ncode;
    uint32_t nparams, nresults;
    uint32_t nlocals;     /* declared locals (zeroed on entry) */
    uint32_t frame_slots; /* params + locals + deepest value stack */
    uint32_t fuel_cost;   /* charged at each call: an upper bound of ops run without a back edge */
    uint32_t *pcmap;      /* pairs (code unit index, wasm offset) in increasing order, one per instruction */
    uint32_t npcmap;
} SCode;

struct shoal_instance;

/* A function as an instance sees it: a Wasm function of some instance, or a host function. Funcref
 * values are pointers to these. */
typedef struct SFuncInst {
    struct shoal_instance *inst; /* the instance whose code/memory/globals the function uses */
    const SFuncType *type;       /* canonical within its module: equal types have equal pointers */
    const SCode *code;           /* NULL for host functions */
    uint32_t index;              /* function index within its module (for trap reports) */
    shoal_host_fn host;
    void *host_user;
    SFuncType host_type;         /* storage for a host function's type */
} SFuncInst;

typedef struct SMemory {
    uint8_t *base;    /* never moves */
    uint64_t size;    /* current size in bytes (pages * 64 KiB) */
    uint32_t pages, max_pages; /* max_pages: the declared maximum clamped by the instance's limit */
    bool has_max;     /* the declared (type) maximum, for import matching */
    uint32_t type_max;
    uint64_t reserve;
    const shoal_memory_provider *provider;
} SMemory;

typedef struct STable {
    void **elems;     /* SFuncInst* for funcref tables, embedder pointers for externref; NULL = null */
    uint32_t size, cap;
    uint32_t max;     /* growth cap: type maximum clamped by the instance's limit */
    bool has_max;
    uint32_t type_max;
    SValType type;
} STable;

typedef struct SGlobal {
    SSlot val;
    SValType type;
    bool mutable_;
} SGlobal;

/* Segment state of an instance: element segments as evaluated references, data segments as views into
 * the module bytes. A dropped segment has count/size 0, as the spec says. */
typedef struct SElemInst {
    void **refs;
    uint32_t count;
} SElemInst;

struct shoal_instance {
    const shoal_module *module;
    SFuncInst **funcs;  /* index space, imports first */
    SFuncInst *own_funcs;
    STable **tables;
    STable *own_tables;
    SMemory **mems;
    SMemory *own_mems;
    SGlobal **globals;
    SGlobal *own_globals;
    SMemory *mem0;           /* memory 0, or an empty memory when there is none: never NULL */
    const SFuncType **types; /* canonical type of each type index (call_indirect compares pointers) */
    SElemInst *elems;
    uint32_t *data_sizes; /* 0 once dropped */
    uint32_t nown_funcs, nown_tables, nown_mems, nown_globals;

    shoal_limits limits;
    int64_t fuel;          /* left when fuel_limited */
    bool fuel_limited;
    atomic_int interrupt;
    void *user;
    void (*host_call_hook)(void *, struct shoal_instance *, uint32_t, bool, const shoal_val *, uint32_t,
                           shoal_status); /* shoal_instance_config.host_call_hook */
    void *hook_user;
    struct shoal_instance *zombies, *zombies_next; /* failed instantiations kept alive (sinstance.c) */
    struct SExec *exec;    /* the execution stack of this instance's top-level calls (lazily allocated) */
};

/* A frame record of the interpreter's own call stack. */
typedef struct SFrame {
    const uint32_t *ret_ip;
    SSlot *fp;
    SFuncInst *func;
} SFrame;

/* One execution stack: value slots and frame records. A host function that calls back into Wasm runs
 * its nested call on the same stack, above the caller's frame. */
typedef struct SExec {
    SSlot *slots, *slots_end;
    SFrame *frames;
    uint32_t max_depth, depth;
    SSlot *top;            /* first free slot while a host function runs */
    int64_t fuel;          /* while running: the root instance's budget */
    bool fuel_limited;
    struct shoal_instance *root;
    atomic_int *intr;      /* &root->interrupt */

    /* Where the guest stands while it is not running Wasm code, for actor snapshots (ssnap.c):
     *   - during a host call made by Wasm code (host_depth > 0): at_func/at_fp are the calling function's,
     *     at_ip is where it continues after the call, at_args the call's argument/result window, at_callee
     *     the host function, at_depth the frame records below (frames[0 .. at_depth));
     *   - after an interrupt or fuel exhaustion stopped a top-level call at a safe point (suspended):
     *     at_ip is the next instruction and at_args NULL. The frames and slots stay as they were until the
     *     next call on this stack, so the stop can be saved and later continued (sinterp_resume).
     * resumable says the stop happened with no host function of this stack below it (a host function's C
     * frame cannot be saved): only then can it be snapshotted. */
    SFuncInst *at_func, *at_callee;
    SSlot *at_fp, *at_args;
    const uint32_t *at_ip;
    uint32_t at_depth;
    uint32_t host_depth;   /* host functions now running on this stack */
    bool suspended, resumable;
} SExec;

struct shoal_call {
    struct shoal_instance *inst;
    SExec *exec;
    shoal_error *err;
};

/* The internal operations (sops.h). */
typedef enum SOp {
#define OP(name, layout) SO_##name,
#include "sops.h"
#undef OP
    SO_COUNT
} SOp;
extern const char *const sop_names[SO_COUNT];

/* scompile.c */
shoal_status scomp_module(SModule *m, shoal_error *err);
void scomp_free_module(SModule *m);
/* Canonical type pointer of type index t: the first structurally equal type in the module. */
const SFuncType *scomp_canon_type(const SModule *m, uint32_t t);
/* Type index t as the public API describes it (arrays live as long as the module). */
void scomp_public_type(const SModule *m, uint32_t t, shoal_functype *out);
bool sexec_functype_equal(const SFuncType *a, const SFuncType *b);
uint32_t scomp_wasm_offset(const SCode *c, const uint32_t *ip);

/* sinterp.c */
/* The handler address table (indexed by the op enum of sops.h). */
const void *const *sinterp_handlers(void);
/* Runs f with its arguments in fp[0..nparams); results land in fp[0..nresults). fp lies in ex's slots. */
shoal_status sinterp_call(SExec *ex, SFuncInst *f, SSlot *fp, shoal_error *err);
/* Continues a restored top-level call: the frame records frames[0 .. ex->depth) and the slots are in
 * place, and execution goes on in f (a Wasm function) at ip with frame fp. Returns as sinterp_call does
 * when the call's root function returns (its results in ex->slots[0 ..)). */
shoal_status sinterp_resume(SExec *ex, SFuncInst *f, SSlot *fp, const uint32_t *ip, shoal_error *err);

/* smemory.c */
shoal_status smem_init(SMemory *mem, const shoal_memory_provider *prov, uint32_t pages, uint32_t max_pages,
                       bool has_max, uint32_t type_max, shoal_error *err);
void smem_free(SMemory *mem);
/* Grows by delta pages; returns the old page count or -1 (limit reached or the provider failed). */
int64_t smem_grow(SMemory *mem, uint32_t delta);

/* sinstance.c */
/* shoal_instantiate; run_init false: neither segments nor the start function run (ssnap.c, resumes). */
shoal_status sinst_instantiate(const shoal_module *module, const shoal_imports *imports,
                               const shoal_instance_config *config, bool run_init, shoal_instance **out,
                               shoal_error *err);
shoal_status sinst_exec_for(struct shoal_instance *inst, SExec **out, shoal_error *err);
int64_t stable_grow(STable *t, uint32_t delta, void *init);
/* Runs f (of any instance) on the current thread's execution stack, or on inst's when none is active. */
shoal_status sexec_invoke(struct shoal_instance *inst, SFuncInst *f, const shoal_val *args, shoal_val *results,
                          shoal_error *err);
/* Continues the stop that ssnap_load put in inst's execution stack (ex->at_*), as a top-level call. */
shoal_status sexec_resume(struct shoal_instance *inst, shoal_error *err);
/* Trap helper: fills err with kind, message and location. */
shoal_status sexec_trap(shoal_error *err, shoal_trap trap, const SFuncInst *f, const uint32_t *ip);

#endif
