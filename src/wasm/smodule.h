/*
 * smodule.h: a decoded WebAssembly module, as the decoder (sdecode.c) builds it, the validator
 * (svalid.c) checks it and the translator (scompile.c) turns its code into internal code.
 *
 * Ownership: everything hangs off the module and is freed by smod_free(). Names point into the module's
 * own copy of the bytes only where noted; strings handed to the public API are NUL-terminated copies.
 * Index spaces (funcs, tables, mems, globals) put imports first, as the spec does.
 */
#ifndef SMODULE_H
#define SMODULE_H

#include "shoal.h"
#include "sread.h"

#define SMOD_PAGE_SIZE 65536u
#define SMOD_MAX_PAGES 65536u

/* Value types use the binary encoding (0x7f i32 ... 0x6f externref), as shoal_valtype does. */
typedef uint8_t SValType;

typedef struct SFuncType {
    uint32_t nparams, nresults;
    SValType *params;  /* nparams entries */
    SValType *results; /* nresults entries */
} SFuncType;

typedef struct SLimits {
    uint32_t min, max;
    bool has_max;
} SLimits;

typedef struct STableType {
    SValType elem; /* SHOAL_FUNCREF or SHOAL_EXTERNREF */
    SLimits limits;
} STableType;

typedef struct SGlobalType {
    SValType type;
    bool mutable_;
} SGlobalType;

/* A constant expression of Wasm 2.0: one instruction then `end`. */
typedef enum SConstKind { SCONST_VALUE, SCONST_GLOBAL_GET, SCONST_REF_NULL, SCONST_REF_FUNC } SConstKind;
typedef struct SConstExpr {
    SConstKind kind;
    SValType type;   /* the expression's result type (global.get: filled in by the validator) */
    uint64_t bits;   /* SCONST_VALUE: i32 (zero-extended) / i64 / f32 / f64 bit pattern */
    uint32_t index;  /* SCONST_GLOBAL_GET: global index; SCONST_REF_FUNC: function index */
    /* Set by the decoder when the bytes are well-formed but not one constant instruction followed by
     * `end` (e.g. "constant expression required"): the validator reports it as SHOAL_ERR_INVALID. NULL
     * for every expression of a module that validated. */
    const char *invalid;
    uint32_t offset; /* offset of the expression's first byte in the module (for messages) */
} SConstExpr;

typedef struct SImport {
    char *module, *name; /* NUL-terminated copies (validated UTF-8) */
    uint32_t module_len, name_len; /* their lengths: names may contain NUL bytes */
    uint32_t offset;               /* of the entry in the module, for messages */
    shoal_extern_kind kind;
    uint32_t type_index;  /* FUNC */
    STableType table;     /* TABLE */
    SLimits memory;       /* MEMORY */
    SGlobalType global;   /* GLOBAL */
} SImport;

typedef struct SExport {
    char *name; /* NUL-terminated copy */
    shoal_extern_kind kind;
    uint32_t index;
    uint32_t name_len; /* names may contain NUL bytes */
    uint32_t offset;   /* of the entry in the module, for messages */
} SExport;

typedef struct SFunc {
    uint32_t type_index;
    bool imported;         /* then the fields below are empty */
    uint32_t nlocals;      /* declared locals, excluding parameters */
    SValType *local_types; /* nlocals entries (run-length groups expanded) */
    const uint8_t *code;   /* first instruction of the body, in module->bytes */
    const uint8_t *code_end; /* one past the body's final `end` */
    uint32_t body_offset;  /* offset of `code` in the module bytes (for trap locations) */
    char *name;            /* from the name section, or NULL */
    void *compiled;        /* owned by the translator (scompile.c) */
    uint32_t decl_offset;  /* of its type index in the function (or import) section, for messages */
} SFunc;

typedef enum SSegMode { SSEG_ACTIVE, SSEG_PASSIVE, SSEG_DECLARATIVE } SSegMode;

typedef struct SElem {
    SSegMode mode;
    SValType type;      /* SHOAL_FUNCREF or SHOAL_EXTERNREF */
    uint32_t table;     /* ACTIVE */
    SConstExpr offset;  /* ACTIVE */
    uint32_t count;
    SConstExpr *items;  /* count entries: REF_FUNC, REF_NULL or GLOBAL_GET */
} SElem;

typedef struct SData {
    SSegMode mode;      /* ACTIVE or PASSIVE */
    uint32_t memory;    /* ACTIVE */
    SConstExpr offset;  /* ACTIVE */
    const uint8_t *bytes; /* into module->bytes */
    uint32_t size;
} SData;

typedef struct SModule {
    uint8_t *bytes; /* our own copy of the binary */
    size_t size;

    SFuncType *types;  uint32_t ntypes;
    SImport *imports;  uint32_t nimports;
    SFunc *funcs;      uint32_t nfuncs;   /* imports first */
    STableType *tables; uint32_t ntables; /* imports first */
    SLimits *mems;     uint32_t nmems;    /* imports first */
    SGlobalType *global_types; uint32_t nglobals; /* imports first */
    SConstExpr *global_inits; /* nglobals entries; entries of imported globals are unused */
    uint32_t nfunc_imports, ntable_imports, nmem_imports, nglobal_imports;
    SExport *exports;  uint32_t nexports;
    bool has_start;    uint32_t start;
    SElem *elems;      uint32_t nelems;
    SData *datas;      uint32_t ndatas;
    bool has_data_count; uint32_t data_count;
    char *module_name; /* from the name section, or NULL */
    uint32_t section_offset[13]; /* by section id: where its contents start; 0 when absent */

    /* Filled by the validator: functions that may be the operand of ref.func in code (C.refs), one bit
     * per function index. */
    uint8_t *declared_refs;
    /* Set by the validator when some function body puts a reference on its operand stack or has a
     * reference-typed parameter or local: its frames may then hold pointers, which an actor snapshot
     * (ssnap.c) cannot tell from numbers, so such modules are refused there. */
    bool refs_in_frames;

    void *exec; /* owned by the translator (scompile.c): the engine's per-module data */
} SModule;

/* The public handle is the module itself. */
struct shoal_module {
    SModule m;
};

/* One decoded instruction (smod_read_instr). Immediates are decoded by the one set of rules in
 * sdecode.c; what they mean depends on `imm` (enum simm_kind of sopcodes.h). */
typedef struct SOpInfo {
    const char *name; /* text-format name */
    const char *sig;  /* fixed operand signature ("ii:i") or NULL */
    uint8_t imm;      /* enum simm_kind */
    uint8_t msize;    /* bytes accessed by a load/store */
} SOpInfo;

typedef struct SInstr {
    uint8_t prefix;        /* 0x00 or SOP_PREFIX_MISC */
    uint32_t code;         /* opcode byte or misc sub-opcode */
    const SOpInfo *op;
    size_t offset;         /* of the opcode's first byte, in the module */
    uint32_t a, b;         /* first and second index immediate (label, func, type, local, global, table,
                            * memory, data, elem; memarg: a = align exponent; table.copy/init: a = dst
                            * table or elem, b = src table / table; call_indirect: a = type, b = table) */
    uint64_t value;        /* i32/i64/f32/f64 constant bits; memarg offset */
    int64_t blocktype;     /* SIMM_BLOCK: s33 (-64 empty, other negatives a valtype, >= 0 a type index) */
    SValType vtype;        /* SIMM_REFTYPE, SIMM_SELECT_T: the type; SIMM_BLOCK: valtype when < 0 */
    uint32_t count;        /* SIMM_BR_TABLE: number of targets before the default; SIMM_SELECT_T: types */
    const uint8_t *targets; /* SIMM_BR_TABLE: the target vector (count LEB128s then the default) */
} SInstr;

/* Reads one instruction at r->p. On failure returns SHOAL_ERR_MALFORMED (or _UNSUPPORTED for SIMD) and
 * sets *why to the reason and *where to the module offset. */
shoal_status smod_read_instr(SReader *r, SInstr *in, const char **why, size_t *where);
/* Reads the next target of a br_table vector (in->targets, advanced). The vector was checked by
 * smod_read_instr, so this cannot fail. */
uint32_t smod_br_table_next(const uint8_t **p);
/* Fills err (when non-NULL) with status, function index and offset, and a printf-formatted message. */
shoal_status smod_error(shoal_error *err, shoal_status status, uint32_t func, size_t offset,
                        const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
bool smod_valtype_ok(uint8_t b); /* i32 i64 f32 f64 funcref externref (not v128) */

/* sdecode.c */
/* Decodes bytes (copied) into m, zero-initialised by the caller. On error: SHOAL_ERR_MALFORMED (or
 * _UNSUPPORTED for SIMD and other post-2.0 features) with "section NAME, offset 0xN: reason"; m must
 * still be freed with smod_free. Function bodies are located and their locals decoded, but their
 * instructions are left to the validator. */
shoal_status smod_decode(SModule *m, const uint8_t *bytes, size_t size, shoal_error *err);
void smod_free(SModule *m);
const SFuncType *smod_func_type(const SModule *m, uint32_t func_index);

/* svalid.c */
/* Validates everything the decoder left: types of constant expressions, limits, indices, and every
 * function body (operand and control stacks). SHOAL_ERR_INVALID with the spec's wording ("type mismatch",
 * "unknown local", ...) plus function index and offset; SHOAL_ERR_MALFORMED for malformed instructions. */
shoal_status smod_validate(SModule *m, shoal_error *err);

#endif
