/*
 * test_decode_guest.c: the decoder and validator on real compiler output (guest_mix.c built by clang for
 * wasm32-wasi), then on thousands of truncated and bit-flipped copies of it, which must each be rejected
 * or accepted cleanly (run it under ASan/UBSan to make "cleanly" mean something). Skips (77) when the
 * guest was not built (no clang/wasi-libc).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smodule.h"

static uint8_t *guest;
static size_t guest_size;

static const SImport *find_import(const SModule *m, const char *module, const char *name) {
    for (uint32_t i = 0; i < m->nimports; i++)
        if (!strcmp(m->imports[i].module, module) && !strcmp(m->imports[i].name, name)) return &m->imports[i];
    return NULL;
}

static const SExport *find_export(const SModule *m, const char *name) {
    for (uint32_t i = 0; i < m->nexports; i++)
        if (!strcmp(m->exports[i].name, name)) return &m->exports[i];
    return NULL;
}

static void test_guest_structure(void **state) {
    (void)state;
    SModule m;
    memset(&m, 0, sizeof m);
    shoal_error err;
    shoal_status st = smod_decode(&m, guest, guest_size, &err);
    if (st != SHOAL_OK) fail_msg("decode: %s", err.message);
    st = smod_validate(&m, &err);
    if (st != SHOAL_OK) fail_msg("validate: %s", err.message);

    const SImport *fd_write = find_import(&m, "wasi_snapshot_preview1", "fd_write");
    assert_non_null(fd_write);
    assert_int_equal(fd_write->kind, SHOAL_EXTERN_FUNC);
    const SFuncType *t = &m.types[fd_write->type_index];
    assert_int_equal(t->nparams, 4);
    assert_int_equal(t->nresults, 1);
    assert_int_equal(t->results[0], SHOAL_I32);

    const SExport *start = find_export(&m, "_start");
    assert_non_null(start);
    assert_int_equal(start->kind, SHOAL_EXTERN_FUNC);
    assert_true(start->index >= m.nfunc_imports && start->index < m.nfuncs);
    const SExport *mem = find_export(&m, "memory");
    assert_non_null(mem);
    assert_int_equal(mem->kind, SHOAL_EXTERN_MEMORY);
    assert_int_equal(m.nmems, 1);

    /* the function-pointer table and its active segment of ref.func items */
    assert_true(m.ntables >= 1);
    assert_true(m.nelems >= 1);
    assert_int_equal(m.elems[0].mode, SSEG_ACTIVE);
    assert_true(m.elems[0].count >= 3);
    for (uint32_t k = 0; k < m.elems[0].count; k++) {
        assert_int_equal(m.elems[0].items[k].kind, SCONST_REF_FUNC);
        uint32_t f = m.elems[0].items[k].index;
        assert_true(m.declared_refs[f / 8] & (1u << (f % 8)));
    }

    bool named_main = false;
    for (uint32_t i = m.nfunc_imports; i < m.nfuncs; i++) {
        const SFunc *f = &m.funcs[i];
        assert_false(f->imported);
        assert_non_null(f->code);
        assert_true(f->code < f->code_end);
        assert_int_equal(f->code_end[-1], 0x0b);
        assert_int_equal(f->body_offset, (uint32_t)(f->code - m.bytes));
        if (f->name && strstr(f->name, "main")) named_main = true;
    }
    assert_true(named_main); /* the name section survived --strip-debug */
    for (uint32_t i = 0; i < m.ndatas; i++)
        assert_true(m.datas[i].bytes >= m.bytes && m.datas[i].bytes + m.datas[i].size <= m.bytes + m.size);
    smod_free(&m);
}

/* A deterministic PRNG, so a failure can be replayed. */
static uint32_t rng_state = 12345;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void check_mutant(const uint8_t *bytes, size_t size, unsigned *counts) {
    SModule m;
    memset(&m, 0, sizeof m);
    shoal_error err;
    memset(&err, 0, sizeof err);
    shoal_status st = smod_decode(&m, bytes, size, &err);
    if (st == SHOAL_OK) st = smod_validate(&m, &err);
    smod_free(&m);
    if (st != SHOAL_OK) {
        assert_true(err.message[0] != 0);
        assert_non_null(strstr(err.message, "offset 0x"));
    }
    assert_true(st == SHOAL_OK || st == SHOAL_ERR_MALFORMED || st == SHOAL_ERR_INVALID ||
                st == SHOAL_ERR_UNSUPPORTED);
    counts[st == SHOAL_OK ? 0 : st == SHOAL_ERR_MALFORMED ? 1 : st == SHOAL_ERR_INVALID ? 2 : 3]++;
}

static void test_guest_mutants(void **state) {
    (void)state;
    unsigned counts[4] = {0};
    uint8_t *copy = malloc(guest_size);
    assert_non_null(copy);
    /* every truncation point in the first 1 KiB (the module-level sections), then a sample */
    for (size_t n = 0; n < guest_size; n += n < 1024 ? 1 : 211) check_mutant(guest, n, counts);
    /* bit flips, one to three per copy (fuzz/fuzz_wasm.c goes much further; this is the quick check) */
    for (int i = 0; i < 1200; i++) {
        memcpy(copy, guest, guest_size);
        int flips = 1 + (int)(rng() % 3);
        for (int k = 0; k < flips; k++) copy[rng() % guest_size] ^= (uint8_t)(1u << (rng() % 8));
        check_mutant(copy, guest_size, counts);
    }
    /* random bytes spliced into the code section */
    for (int i = 0; i < 400; i++) {
        memcpy(copy, guest, guest_size);
        size_t at = guest_size / 4 + rng() % (guest_size / 2);
        for (int k = 0; k < 8 && at + k < guest_size; k++) copy[at + k] = (uint8_t)rng();
        check_mutant(copy, guest_size, counts);
    }
    printf("mutants: %u accepted, %u malformed, %u invalid, %u unsupported\n", counts[0], counts[1], counts[2],
           counts[3]);
    assert_true(counts[1] > 0 && counts[2] > 0);
    free(copy);
}

int main(void) {
    const char *dir = getenv("SHOAL_GUEST_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/decode_mix.wasm", dir ? dir : ".");
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("skip: guest %s not built (needs clang-14 and wasi-libc)\n", path);
        return 77;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    guest = malloc(n > 0 ? (size_t)n : 1);
    if (!guest || n <= 0 || fread(guest, 1, (size_t)n, f) != (size_t)n) {
        printf("cannot read %s\n", path);
        fclose(f);
        return 1;
    }
    fclose(f);
    guest_size = (size_t)n;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_guest_structure), cmocka_unit_test(test_guest_mutants)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(guest);
    return rc;
}
