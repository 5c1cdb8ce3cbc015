/*
 * spectest_wasm.h: a tiny WebAssembly binary writer for the modules the test tools need to synthesize.
 *
 * The public API can register host functions and whole instances but not bare tables, memories or
 * globals. So when a tool must provide those (the spec suite's "spectest" module, the fuzzer's stub
 * imports), it assembles a small module that imports the host functions and re-exports them next to the
 * tables, memories and globals it defines, instantiates it and registers the instance.
 *
 * Used by src/cli/cmd_spec_test.c and fuzz/fuzz_wasm.c; it depends on shoal.h only.
 */
#ifndef SPECTEST_WASM_H
#define SPECTEST_WASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal.h"

/* A growable byte buffer. An allocation failure sets `failed` and makes later writes no-ops, so a
 * sequence of writes needs one check at its end. */
typedef struct SpwBuf {
    uint8_t *data;
    size_t len, cap;
    bool failed;
} SpwBuf;

void spw_free(SpwBuf *b);
void spw_byte(SpwBuf *b, uint8_t v);
void spw_bytes(SpwBuf *b, const void *p, size_t n);
void spw_u32(SpwBuf *b, uint32_t v); /* unsigned LEB128 */
void spw_s64(SpwBuf *b, int64_t v);  /* signed LEB128 (also right for i32.const operands) */
void spw_name(SpwBuf *b, const char *s);
/* Appends section `id` whose contents are `body`, then frees body. */
void spw_section(SpwBuf *out, uint8_t id, SpwBuf *body);

/* One export of a synthesized module. */
typedef struct SpwItem {
    const char *name; /* export name */
    shoal_extern_kind kind;
    const char *sig;       /* FUNC: its type as a signature ("ii:i", see shoal_imports_add_func); the function
                              is imported from the host module under `name`, then re-exported */
    shoal_valtype valtype; /* GLOBAL: value type; TABLE: element type */
    bool mutable_global;   /* GLOBAL */
    shoal_val init;        /* GLOBAL: initial value (i32/i64/f32/f64 bits; references start null) */
    uint32_t min, max;     /* TABLE / MEMORY */
    bool has_max;
} SpwItem;

/* Builds a module that imports every FUNC item from `host_module` and exports all items under their
 * names. *out is malloc'ed; the caller frees it. */
shoal_status spw_build_module(const char *host_module, const SpwItem *items, uint32_t nitems, uint8_t **out,
                              size_t *out_len, shoal_error *err);

/* The shoal_imports_add_func signature string of a function type ("ii:i"); false if it does not fit or
 * holds a type that has no letter (v128). */
bool spw_signature(const shoal_functype *type, char *buf, size_t size);

#endif
