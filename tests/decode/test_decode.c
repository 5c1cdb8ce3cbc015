/*
 * test_decode.c: the decoder and validator on hand-built binaries, one per category of malformed or
 * invalid module, checking the status and the message (section, offset, reason).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "smodule.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SHOAL_TEST_ASAN 1
#endif
#endif

#define HDR 0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00

/* Decodes and (when that succeeds) validates; returns the first failure's status. */
static shoal_status load(const uint8_t *bytes, size_t size, shoal_error *err) {
    SModule m;
    memset(&m, 0, sizeof m);
    memset(err, 0, sizeof *err);
    shoal_status st = smod_decode(&m, bytes, size, err);
    if (st == SHOAL_OK) st = smod_validate(&m, err);
    smod_free(&m);
    return st;
}

static void expect(int line, shoal_status want, const char *text, const uint8_t *bytes, size_t size) {
    shoal_error err;
    shoal_status got = load(bytes, size, &err);
    if (got != want || (text && !strstr(err.message, text)))
        fail_msg("line %d: want %d \"%s\", got %d \"%s\"", line, (int)want, text ? text : "", (int)got,
                 err.message);
}

#define EXPECT(status, text, ...)                                  \
    do {                                                           \
        static const uint8_t bytes_[] = {__VA_ARGS__};             \
        expect(__LINE__, (status), (text), bytes_, sizeof bytes_); \
    } while (0)

#define OK(...) EXPECT(SHOAL_OK, NULL, __VA_ARGS__)
#define MALFORMED(text, ...) EXPECT(SHOAL_ERR_MALFORMED, text, __VA_ARGS__)
#define INVALID(text, ...) EXPECT(SHOAL_ERR_INVALID, text, __VA_ARGS__)

/* type section with one type [] -> [], function section with one function of it */
#define T0 0x01, 0x04, 0x01, 0x60, 0x00, 0x00
#define F0 0x03, 0x02, 0x01, 0x00
/* type () -> i32 */
#define TI 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f


/* All 8 element encodings, all 3 data encodings, a data count and a name section, decoded into SModule. */
static const uint8_t segs_wasm[] = {
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x02, 0x0a, 0x01, 0x03,
    0x65, 0x6e, 0x76, 0x01, 0x67, 0x03, 0x7f, 0x00, 0x03, 0x03, 0x02, 0x00, 0x00, 0x04, 0x07, 0x02, 0x70, 0x00,
    0x04, 0x6f, 0x00, 0x04, 0x05, 0x03, 0x01, 0x00, 0x01, 0x09, 0x39, 0x08, 0x00, 0x41, 0x00, 0x0b, 0x02, 0x00,
    0x01, 0x01, 0x00, 0x01, 0x01, 0x02, 0x00, 0x41, 0x01, 0x0b, 0x00, 0x01, 0x00, 0x03, 0x00, 0x01, 0x00, 0x04,
    0x41, 0x02, 0x0b, 0x02, 0xd2, 0x01, 0x0b, 0xd0, 0x70, 0x0b, 0x05, 0x70, 0x01, 0xd0, 0x70, 0x0b, 0x06, 0x01,
    0x23, 0x00, 0x0b, 0x6f, 0x01, 0xd0, 0x6f, 0x0b, 0x07, 0x70, 0x01, 0xd2, 0x01, 0x0b, 0x0c, 0x01, 0x03, 0x0a,
    0x07, 0x02, 0x02, 0x00, 0x0b, 0x02, 0x00, 0x0b, 0x0b, 0x19, 0x03, 0x00, 0x41, 0x08, 0x0b, 0x03, 0x61, 0x62,
    0x63, 0x01, 0x07, 0x70, 0x61, 0x73, 0x73, 0x69, 0x76, 0x65, 0x02, 0x00, 0x41, 0x10, 0x0b, 0x01, 0x78, 0x00,
    0x17, 0x04, 0x6e, 0x61, 0x6d, 0x65, 0x00, 0x05, 0x04, 0x73, 0x65, 0x67, 0x73, 0x01, 0x09, 0x02, 0x00, 0x02,
    0x66, 0x30, 0x01, 0x02, 0x66, 0x31,
};

static void test_structure(void **state) {
    (void)state;
    SModule m;
    memset(&m, 0, sizeof m);
    shoal_error err;
    assert_int_equal(smod_decode(&m, segs_wasm, sizeof segs_wasm, &err), SHOAL_OK);
    if (smod_validate(&m, &err) != SHOAL_OK) fail_msg("%s", err.message);
    assert_int_equal(m.nimports, 1);
    assert_string_equal(m.imports[0].module, "env");
    assert_int_equal(m.imports[0].kind, SHOAL_EXTERN_GLOBAL);
    assert_int_equal(m.nglobals, 1);
    assert_int_equal(m.nglobal_imports, 1);
    assert_int_equal(m.nfuncs, 2);
    assert_int_equal(m.ntables, 2);
    assert_int_equal(m.tables[1].elem, SHOAL_EXTERNREF);
    assert_int_equal(m.nmems, 1);
    assert_non_null(smod_func_type(&m, 1));
    assert_null(smod_func_type(&m, 2));

    assert_int_equal(m.nelems, 8);
    static const SSegMode modes[8] = {SSEG_ACTIVE, SSEG_PASSIVE, SSEG_ACTIVE, SSEG_DECLARATIVE,
                                      SSEG_ACTIVE, SSEG_PASSIVE, SSEG_ACTIVE, SSEG_DECLARATIVE};
    static const uint32_t counts[8] = {2, 1, 1, 1, 2, 1, 1, 1};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(m.elems[i].mode, modes[i]);
        assert_int_equal(m.elems[i].count, counts[i]);
        assert_int_equal(m.elems[i].type, i == 6 ? SHOAL_EXTERNREF : SHOAL_FUNCREF);
    }
    assert_int_equal(m.elems[0].offset.kind, SCONST_VALUE);
    assert_int_equal(m.elems[0].offset.bits, 0);
    assert_int_equal(m.elems[0].items[1].kind, SCONST_REF_FUNC);
    assert_int_equal(m.elems[0].items[1].index, 1);
    assert_int_equal(m.elems[2].offset.bits, 1);
    assert_int_equal(m.elems[4].items[0].kind, SCONST_REF_FUNC);
    assert_int_equal(m.elems[4].items[1].kind, SCONST_REF_NULL);
    assert_int_equal(m.elems[6].table, 1);
    assert_int_equal(m.elems[6].offset.kind, SCONST_GLOBAL_GET);
    assert_int_equal(m.elems[6].offset.type, SHOAL_I32); /* completed by the validator */
    assert_int_equal(m.elems[6].items[0].type, SHOAL_EXTERNREF);
    assert_int_equal(m.elems[7].items[0].index, 1);
    /* both functions may be ref.func operands: they appear in segments */
    assert_int_equal(m.declared_refs[0] & 3, 3);

    assert_true(m.has_data_count);
    assert_int_equal(m.ndatas, 3);
    assert_int_equal(m.datas[0].mode, SSEG_ACTIVE);
    assert_int_equal(m.datas[0].size, 3);
    assert_memory_equal(m.datas[0].bytes, "abc", 3);
    assert_int_equal(m.datas[1].mode, SSEG_PASSIVE);
    assert_memory_equal(m.datas[1].bytes, "passive", 7);
    assert_int_equal(m.datas[2].offset.bits, 16);

    assert_string_equal(m.module_name, "segs");
    assert_string_equal(m.funcs[0].name, "f0");
    assert_string_equal(m.funcs[1].name, "f1");
    assert_int_equal(m.funcs[1].code[0], 0x0b);
    smod_free(&m);
    smod_free(&m); /* freeing twice is harmless: smod_free zeroes the module */
}

static void test_header(void **state) {
    (void)state;
    MALFORMED("unexpected end", 0x00, 0x61);
    MALFORMED("magic header not detected", 0x00, 0x61, 0x73, 0x6e, 0x01, 0x00, 0x00, 0x00);
    MALFORMED("unknown binary version", 0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00);
    MALFORMED("section header, offset 0x8: malformed section id", HDR, 0x0d, 0x00);
    OK(HDR);
    /* sizes and order */
    MALFORMED("length out of bounds", HDR, 0x01, 0x05, 0x00);
    MALFORMED("section size mismatch", HDR, 0x01, 0x02, 0x00, 0x00);
    MALFORMED("unexpected content after last section", HDR, 0x03, 0x01, 0x00, 0x01, 0x01, 0x00);
    MALFORMED("unexpected content after last section", HDR, 0x01, 0x01, 0x00, 0x01, 0x01, 0x00);
    /* datacount goes before code */
    OK(HDR, 0x0c, 0x01, 0x00, 0x0a, 0x01, 0x00);
    MALFORMED("unexpected content after last section", HDR, 0x0a, 0x01, 0x00, 0x0c, 0x01, 0x00);
    MALFORMED("integer representation too long", HDR, 0x01, 0x06, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00);
    MALFORMED("integer too large", HDR, 0x01, 0x05, 0x80, 0x80, 0x80, 0x80, 0x10);
}

static void test_sections(void **state) {
    (void)state;
    MALFORMED("malformed import kind", HDR, 0x02, 0x05, 0x01, 0x00, 0x00, 0x04, 0x00);
    MALFORMED("malformed mutability", HDR, 0x06, 0x06, 0x01, 0x7f, 0x02, 0x41, 0x00, 0x0b);
    MALFORMED("malformed reference type", HDR, 0x04, 0x04, 0x01, 0x7f, 0x00, 0x00);
    MALFORMED("malformed UTF-8 encoding", HDR, 0x00, 0x02, 0x01, 0xff);
    MALFORMED("malformed UTF-8 encoding", HDR, 0x00, 0x03, 0x02, 0xc0, 0x80); /* overlong */
    MALFORMED("function and code section have inconsistent lengths", HDR, T0, F0);
    MALFORMED("function and code section have inconsistent lengths", HDR, T0, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
    MALFORMED("data count and data section have inconsistent lengths", HDR, 0x0c, 0x01, 0x01);
    MALFORMED("too many locals", HDR, T0, F0, 0x0a, 0x0a, 0x01, 0x08, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x7f, 0x0b);
    MALFORMED("malformed elements segment kind", HDR, 0x09, 0x02, 0x01, 0x08);
    MALFORMED("malformed data segment kind", HDR, 0x0b, 0x02, 0x01, 0x03);
    MALFORMED("malformed function type", HDR, 0x01, 0x04, 0x01, 0x61, 0x00, 0x00);
    MALFORMED("malformed value type", HDR, 0x01, 0x05, 0x01, 0x60, 0x01, 0x7a, 0x00);
    MALFORMED("malformed export kind", HDR, 0x07, 0x04, 0x01, 0x00, 0x04, 0x00);
    MALFORMED("malformed element kind", HDR, 0x09, 0x04, 0x01, 0x01, 0x01, 0x00);
    MALFORMED("section table, offset 0xa: unexpected end of section or function", HDR, 0x04, 0x01, 0x01);
    MALFORMED("section custom, offset 0xa: length out of bounds", HDR, 0x00, 0x02, 0x05, 'a');
    MALFORMED("integer too large", HDR, 0x05, 0x03, 0x01, 0x02, 0x00); /* shared/memory64 limit flags */
    /* a broken name section leaves the module fine */
    OK(HDR, 0x00, 0x08, 0x04, 'n', 'a', 'm', 'e', 0x01, 0x7f, 0x00);
}

static void test_simd(void **state) {
    (void)state;
    EXPECT(SHOAL_ERR_UNSUPPORTED, "unsupported: SIMD (v128)", HDR, 0x01, 0x05, 0x01, 0x60, 0x01, 0x7b, 0x00);
    EXPECT(SHOAL_ERR_UNSUPPORTED, "unsupported: SIMD (v128)", HDR, T0, F0, 0x0a, 0x06, 0x01, 0x04, 0x00, 0xfd,
           0x0c, 0x0b);
    /* v128 as a global, a local, a block result and a select type */
    EXPECT(SHOAL_ERR_UNSUPPORTED, "section global, offset 0xb: unsupported: SIMD (v128)", HDR, 0x06, 0x04, 0x01,
           0x7b, 0x00, 0x0b);
    EXPECT(SHOAL_ERR_UNSUPPORTED, "unsupported: SIMD (v128)", HDR, T0, F0, 0x0a, 0x06, 0x01, 0x04, 0x01, 0x01,
           0x7b, 0x0b);
    EXPECT(SHOAL_ERR_UNSUPPORTED, "unsupported: SIMD (v128)", HDR, T0, F0, 0x0a, 0x07, 0x01, 0x05, 0x00, 0x02,
           0x7b, 0x0b, 0x0b);
    EXPECT(SHOAL_ERR_UNSUPPORTED, "unsupported: SIMD (v128)", HDR, T0, F0, 0x0a, 0x07, 0x01, 0x05, 0x00, 0x1c,
           0x01, 0x7b, 0x0b);
}

static void test_code_malformed(void **state) {
    (void)state;
    MALFORMED("illegal opcode", HDR, T0, F0, 0x0a, 0x05, 0x01, 0x03, 0x00, 0xff, 0x0b);
    MALFORMED("illegal opcode", HDR, T0, F0, 0x0a, 0x06, 0x01, 0x04, 0x00, 0xfc, 0x12, 0x0b);
    MALFORMED("unexpected end of section or function", HDR, T0, F0, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x01);
    MALFORMED("section code, function 0, offset 0x1a: END opcode expected", HDR, T0, 0x03, 0x03, 0x02, 0x00, 0x00,
              0x0a, 0x08, 0x02, 0x03, 0x00, 0x41, 0x01, 0x02, 0x00, 0x0b);
    MALFORMED("section size mismatch", HDR, T0, F0, 0x0a, 0x05, 0x01, 0x03, 0x00, 0x0b, 0x01);
    MALFORMED("zero byte expected", HDR, T0, F0, 0x05, 0x03, 0x01, 0x00, 0x01, 0x0a, 0x07, 0x01, 0x05, 0x00,
              0x3f, 0x01, 0x1a, 0x0b);
    MALFORMED("data count section required", HDR, T0, F0, 0x0a, 0x07, 0x01, 0x05, 0x00, 0xfc, 0x09, 0x00, 0x0b,
              0x0b, 0x03, 0x01, 0x01, 0x00);
    /* without a data section, data.drop 0 is merely an unknown segment */
    INVALID("unknown data segment 0", HDR, T0, F0, 0x0a, 0x07, 0x01, 0x05, 0x00, 0xfc, 0x09, 0x00, 0x0b);
    /* a malformed body wins over an invalid earlier body, and over invalid module fields */
    MALFORMED("illegal opcode", HDR, T0, 0x03, 0x03, 0x02, 0x00, 0x00, 0x0a, 0x0a, 0x02, 0x04, 0x00, 0x42, 0x00,
              0x0b, 0x03, 0x00, 0xff, 0x0b);
    MALFORMED("illegal opcode", HDR, T0, F0, 0x05, 0x05, 0x02, 0x00, 0x01, 0x00, 0x01, 0x0a, 0x05, 0x01, 0x03,
              0x00, 0xff, 0x0b);
    /* i32.load with alignment exponent 64 (multi-memory's flag bit) */
    MALFORMED("malformed memop flags", HDR, T0, F0, 0x05, 0x03, 0x01, 0x00, 0x01, 0x0a, 0x0a, 0x01, 0x08, 0x00,
              0x41, 0x00, 0x28, 0x40, 0x00, 0x1a, 0x0b);
    /* else outside if */
    MALFORMED("END opcode expected", HDR, T0, F0, 0x0a, 0x08, 0x01, 0x06, 0x00, 0x02, 0x40, 0x05, 0x0b, 0x0b);
}

static void test_code_invalid(void **state) {
    (void)state;
    /* (func (result i32)) with an empty body */
    INVALID("section code, function 0, offset 0x", HDR, TI, F0, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
    INVALID("type mismatch", HDR, TI, F0, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
    /* i64.const 0 where i32 is wanted */
    INVALID("type mismatch", HDR, TI, F0, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x42, 0x00, 0x0b);
    OK(HDR, TI, F0, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x00, 0x0b);
    /* unreachable makes the stack polymorphic */
    OK(HDR, TI, F0, 0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b);
    OK(HDR, TI, F0, 0x0a, 0x09, 0x01, 0x07, 0x00, 0x00, 0x6a, 0x1a, 0x41, 0x00, 0x0b);
    INVALID("unknown local", HDR, T0, F0, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x20, 0x00, 0x0b);
    INVALID("unknown label", HDR, T0, F0, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x0c, 0x01, 0x0b);
    INVALID("unknown global", HDR, T0, F0, 0x0a, 0x07, 0x01, 0x05, 0x00, 0x23, 0x00, 0x1a, 0x0b);
    INVALID("unknown function", HDR, T0, F0, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x10, 0x05, 0x0b);
    INVALID("unknown memory", HDR, T0, F0, 0x0a, 0x0a, 0x01, 0x08, 0x00, 0x41, 0x00, 0x28, 0x02, 0x00, 0x1a, 0x0b);
    /* i32.load align=8 */
    INVALID("alignment must not be larger than natural", HDR, T0, F0, 0x05, 0x03, 0x01, 0x00, 0x01, 0x0a, 0x0a,
            0x01, 0x08, 0x00, 0x41, 0x00, 0x28, 0x03, 0x00, 0x1a, 0x0b);
    /* select on funcref without a type */
    INVALID("type mismatch", HDR, T0, F0, 0x0a, 0x0c, 0x01, 0x0a, 0x00, 0xd0, 0x70, 0xd0, 0x70, 0x41, 0x00,
            0x1b, 0x1a, 0x0b);
    /* ref.func of a function not declared anywhere */
    INVALID("undeclared function reference", HDR, T0, F0, 0x0a, 0x07, 0x01, 0x05, 0x00, 0xd2, 0x00, 0x1a, 0x0b);
    /* ... and declared by an export */
    OK(HDR, T0, F0, 0x07, 0x05, 0x01, 0x01, 'f', 0x00, 0x00, 0x0a, 0x07, 0x01, 0x05, 0x00, 0xd2, 0x00, 0x1a,
       0x0b);
    /* global.set of an immutable global */
    INVALID("global is immutable", HDR, T0, F0, 0x06, 0x06, 0x01, 0x7f, 0x00, 0x41, 0x00, 0x0b, 0x0a, 0x08,
            0x01, 0x06, 0x00, 0x41, 0x00, 0x24, 0x00, 0x0b);
    /* multi-value block: (block (type 1) ...) with type 1 = [] -> [i32 i32] */
    OK(HDR, 0x01, 0x09, 0x02, 0x60, 0x00, 0x00, 0x60, 0x00, 0x02, 0x7f, 0x7f, F0, 0x0a, 0x0d, 0x01, 0x0b, 0x00,
       0x02, 0x01, 0x41, 0x01, 0x41, 0x02, 0x0b, 0x1a, 0x1a, 0x0b);
    /* br_table with labels of different arity */
    INVALID("type mismatch", HDR, T0, F0, 0x0a, 0x10, 0x01, 0x0e, 0x00, 0x02, 0x7f, 0x41, 0x00, 0x41, 0x00,
            0x0e, 0x01, 0x00, 0x01, 0x0b, 0x1a, 0x0b);
}

static void test_module_invalid(void **state) {
    (void)state;
    /* global.get of a mutable import in a constant expression */
    INVALID("section global, offset 0x15: constant expression required", HDR, 0x02, 0x06, 0x01, 0x00, 0x00, 0x03,
            0x7f, 0x01, 0x06, 0x06, 0x01, 0x7f, 0x00, 0x23, 0x00, 0x0b);
    INVALID("section data, offset 0xc: unknown memory 0", HDR, 0x0b, 0x06, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x00);
    INVALID("unknown elem segment 0", HDR, T0, F0, 0x0a, 0x07, 0x01, 0x05, 0x00, 0xfc, 0x0d, 0x00, 0x0b);
    /* select with two result types */
    INVALID("invalid result arity", HDR, T0, F0, 0x0a, 0x0f, 0x01, 0x0d, 0x00, 0x41, 0x00, 0x41, 0x00, 0x41, 0x00,
            0x1c, 0x02, 0x7f, 0x7f, 0x1a, 0x0b);
    INVALID("section memory, offset 0xa: multiple memories", HDR, 0x05, 0x05, 0x02, 0x00, 0x01, 0x00, 0x01);
    INVALID("size minimum must not be greater than maximum", HDR, 0x05, 0x04, 0x01, 0x01, 0x02, 0x01);
    INVALID("memory size must be at most 65536 pages (4GiB)", HDR, 0x05, 0x05, 0x01, 0x00, 0x81, 0x80, 0x04);
    INVALID("constant expression required", HDR, 0x06, 0x09, 0x01, 0x7f, 0x00, 0x41, 0x00, 0x41, 0x00, 0x6a, 0x0b);
    INVALID("type mismatch", HDR, 0x06, 0x06, 0x01, 0x7f, 0x00, 0x42, 0x00, 0x0b);
    INVALID("type mismatch", HDR, 0x06, 0x04, 0x01, 0x7f, 0x00, 0x0b);
    INVALID("unknown global", HDR, 0x06, 0x0b, 0x02, 0x7f, 0x00, 0x41, 0x00, 0x0b, 0x7f, 0x00, 0x23, 0x00, 0x0b);
    INVALID("section export, offset 0x19: duplicate export name", HDR, T0, F0, 0x07, 0x09, 0x02, 0x01, 'a', 0x00, 0x00, 0x01, 'a', 0x00, 0x00,
            0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
    INVALID("unknown function", HDR, 0x08, 0x01, 0x00);
    INVALID("section start, offset 0x", HDR, TI, F0, 0x08, 0x01, 0x00, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x00, 0x0b);
    INVALID("section function, offset 0xb: unknown type 0", HDR, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b);
    INVALID("unknown table", HDR, 0x09, 0x06, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x00);
}


/* ---------------------------------------------------------------------------------------------- */
/* Large and adversarial modules: decoding + validation must stay linear                           */
/* ---------------------------------------------------------------------------------------------- */

typedef struct Buf {
    uint8_t *p;
    size_t n, cap;
} Buf;

static void put(Buf *b, const void *data, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}
static void put8(Buf *b, uint8_t v) { put(b, &v, 1); }
static void putu(Buf *b, uint32_t v) {
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        put8(b, byte | (v ? 0x80 : 0));
    } while (v);
}
/* Appends section `id` with the contents of `body`, and empties body. */
static void section(Buf *mod, uint8_t id, Buf *body) {
    put8(mod, id);
    putu(mod, (uint32_t)body->n);
    put(mod, body->p, body->n);
    body->n = 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Decodes + validates, returns seconds, checks the status. */
static double timed_load(const Buf *mod, shoal_status want, const char *label, const char *text) {
    shoal_error err;
    double t0 = now();
    shoal_status st = load(mod->p, mod->n, &err);
    double dt = now() - t0;
    printf("  %-44s %8zu bytes: %.2f ms\n", label, mod->n, dt * 1e3);
    if (st != want || (text && !strstr(err.message, text)))
        fail_msg("%s: want %d \"%s\", got %d: %s", label, (int)want, text ? text : "", (int)st, err.message);
    return dt;
}

/* A bound that only quadratic behaviour can break, even on a busy machine (and an unoptimised or
 * sanitized build gets ten times more: it is that much slower). */
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__) && !defined(SHOAL_TEST_ASAN)
#define LINEAR_LIMIT_S 2.0
#else
#define LINEAR_LIMIT_S 20.0
#endif

static void test_large_module(void **state) {
    (void)state;
    static const uint8_t hdr[] = {HDR};
    Buf mod = {0}, sec = {0}, body = {0};
    put(&mod, hdr, sizeof hdr);
    /* types: 0 = [i32 i32] -> [i32] */
    putu(&sec, 1);
    put(&sec, (const uint8_t[]){0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f}, 6);
    section(&mod, 1, &sec);
    const uint32_t nfuncs = 2000;
    putu(&sec, nfuncs);
    for (uint32_t i = 0; i < nfuncs; i++) putu(&sec, 0);
    section(&mod, 3, &sec);
    put(&sec, (const uint8_t[]){0x01, 0x00, 0x01}, 3); /* memory 1 page */
    section(&mod, 5, &sec);
    putu(&sec, 1);
    put(&sec, (const uint8_t[]){0x7f, 0x01, 0x41, 0x00, 0x0b}, 5); /* global (mut i32) */
    section(&mod, 6, &sec);
    putu(&sec, nfuncs);
    for (uint32_t i = 0; i < nfuncs; i++) {
        body.n = 0;
        put(&body, (const uint8_t[]){0x01, 0x04, 0x7f}, 3); /* 4 i32 locals */
        /* ~500 bytes of typical code: arithmetic, locals, memory, blocks, branches, calls */
        for (int k = 0; k < 12; k++) {
            static const uint8_t chunk[] = {
                0x20, 0x00, 0x20, 0x01, 0x6a, 0x21, 0x02,             /* l2 = p0 + p1 */
                0x02, 0x7f, 0x20, 0x02, 0x41, 0x05, 0x6c,             /* block (result i32) l2 * 5 */
                0x20, 0x02, 0x0d, 0x00, 0x41, 0x01, 0x6b, 0x0b,       /* br_if 0; - 1; end */
                0x21, 0x03, 0x20, 0x03, 0x28, 0x02, 0x00, 0x20, 0x03, /* l3 = ...; load [l3] */
                0x36, 0x02, 0x04,                                     /* store */
                0x03, 0x40, 0x20, 0x03, 0x41, 0x01, 0x6b, 0x22, 0x03, /* loop: l3 = l3 - 1 */
                0x0d, 0x00, 0x0b,                                     /* br_if 0; end */
                0x20, 0x00, 0x20, 0x01, 0x10, 0x00, 0x1a,             /* call 0; drop */
                0x23, 0x00, 0x41, 0x01, 0x6a, 0x24, 0x00,             /* global += 1 */
            };
            put(&body, chunk, sizeof chunk);
        }
        put(&body, (const uint8_t[]){0x20, 0x02, 0x0b}, 3);
        putu(&sec, (uint32_t)body.n);
        put(&sec, body.p, body.n);
    }
    section(&mod, 10, &sec);
    assert_true(mod.n > 1000000);
    assert_true(timed_load(&mod, SHOAL_OK, "1 MB of ordinary code", NULL) < LINEAR_LIMIT_S);
    free(mod.p);
    free(sec.p);
    free(body.p);
}

/* One function of `code` (type 0 = [] -> []), with a memory. */
static void one_func(Buf *mod, const Buf *code) {
    static const uint8_t head[] = {HDR, T0, F0};
    Buf sec = {0};
    mod->n = 0;
    put(mod, head, sizeof head);
    putu(&sec, 1);
    putu(&sec, (uint32_t)code->n + 1);
    put8(&sec, 0x00);
    put(&sec, code->p, code->n);
    section(mod, 10, &sec);
    free(sec.p);
}

static void test_adversarial(void **state) {
    (void)state;
    Buf mod = {0}, code = {0};
    const uint32_t depth = 300000;
    /* deeply nested blocks */
    for (uint32_t i = 0; i < depth; i++) put(&code, (const uint8_t[]){0x02, 0x40}, 2);
    for (uint32_t i = 0; i <= depth; i++) put8(&code, 0x0b);
    one_func(&mod, &code);
    assert_true(timed_load(&mod, SHOAL_OK, "300000 nested blocks", NULL) < LINEAR_LIMIT_S);
    /* ... each branching out of all of them from the innermost */
    code.n = 0;
    for (uint32_t i = 0; i < depth; i++) put(&code, (const uint8_t[]){0x02, 0x40}, 2);
    put8(&code, 0x0c);
    putu(&code, depth);
    for (uint32_t i = 0; i <= depth; i++) put8(&code, 0x0b);
    one_func(&mod, &code);
    assert_true(timed_load(&mod, SHOAL_OK, "br out of 300000 blocks", NULL) < LINEAR_LIMIT_S);
    /* a br_table of 500000 targets */
    code.n = 0;
    put(&code, (const uint8_t[]){0x02, 0x40, 0x41, 0x00, 0x0e}, 5);
    putu(&code, 500000);
    for (uint32_t i = 0; i <= 500000; i++) put8(&code, i & 1);
    put(&code, (const uint8_t[]){0x0b, 0x0b}, 2);
    one_func(&mod, &code);
    assert_true(timed_load(&mod, SHOAL_OK, "br_table of 500000 targets", NULL) < LINEAR_LIMIT_S);
    /* an operand stack 300000 deep */
    code.n = 0;
    for (uint32_t i = 0; i < depth; i++) put(&code, (const uint8_t[]){0x41, 0x00}, 2);
    for (uint32_t i = 0; i < depth; i++) put8(&code, 0x1a);
    put8(&code, 0x0b);
    one_func(&mod, &code);
    assert_true(timed_load(&mod, SHOAL_OK, "300000 values on the stack", NULL) < LINEAR_LIMIT_S);
    /* past the operand stack limit (an implementation limit, so UNSUPPORTED) */
    code.n = 0;
    for (uint32_t i = 0; i <= (1u << 20); i++) put(&code, (const uint8_t[]){0x41, 0x00}, 2);
    put8(&code, 0x0b);
    one_func(&mod, &code);
    timed_load(&mod, SHOAL_ERR_UNSUPPORTED, "2^20+1 values on the stack", "operand stack too deep");
    /* a function type of 1001 parameters */
    {
        static const uint8_t hdr[] = {HDR};
        Buf types = {0};
        mod.n = 0;
        put(&mod, hdr, sizeof hdr);
        put(&types, (const uint8_t[]){0x01, 0x60}, 2);
        putu(&types, 1001);
        for (int i = 0; i < 1001; i++) put8(&types, 0x7f);
        put8(&types, 0x00);
        section(&mod, 1, &types);
        free(types.p);
        timed_load(&mod, SHOAL_ERR_UNSUPPORTED, "1001 parameters", "too many parameters");
    }
    /* the stack of the test before, unbalanced: must fail, not crash */
    code.n = 0;
    for (uint32_t i = 0; i < depth; i++) put(&code, (const uint8_t[]){0x41, 0x00}, 2);
    for (uint32_t i = 0; i < depth; i++) put8(&code, 0x1a);
    put8(&code, 0x0b);
    code.n -= 2;
    put8(&code, 0x0b);
    one_func(&mod, &code);
    timed_load(&mod, SHOAL_ERR_INVALID, "300000 values left on the stack", "type mismatch");
    /* 100000 exports, all distinct; then one duplicate at the end */
    static const uint8_t head[] = {HDR, T0, F0};
    Buf sec = {0};
    mod.n = 0;
    put(&mod, head, sizeof head);
    putu(&sec, 100001);
    char name[16];
    for (uint32_t i = 0; i <= 100000; i++) {
        int len = snprintf(name, sizeof name, "e%u", i == 100000 ? 77777u : i);
        putu(&sec, (uint32_t)len);
        put(&sec, name, (size_t)len);
        put(&sec, (const uint8_t[]){0x00, 0x00}, 2);
    }
    section(&mod, 7, &sec);
    put(&sec, (const uint8_t[]){0x01, 0x02, 0x00, 0x0b}, 4);
    section(&mod, 10, &sec);
    assert_true(timed_load(&mod, SHOAL_ERR_INVALID, "100001 exports, one duplicate", "duplicate export name") < LINEAR_LIMIT_S);
    /* lying counts: a vector of 2^32-1 types in a few bytes must not allocate */
    mod.n = 0;
    put(&mod, head, 8);
    put(&sec, (const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0x0f, 0x60}, 6);
    section(&mod, 1, &sec);
    timed_load(&mod, SHOAL_ERR_MALFORMED, "2^32-1 types claimed", "unexpected end");
    /* locals: 50000 is the limit, 50001 too many */
    mod.n = 0;
    put(&mod, head, sizeof head);
    put(&sec, (const uint8_t[]){0x01, 0x06, 0x01, 0xd0, 0x86, 0x03, 0x7f, 0x0b}, 8); /* 50000 i32 */
    section(&mod, 10, &sec);
    timed_load(&mod, SHOAL_OK, "50000 locals", NULL);
    mod.n = 0;
    put(&mod, head, sizeof head);
    put(&sec, (const uint8_t[]){0x01, 0x08, 0x02, 0xd0, 0x86, 0x03, 0x7f, 0x01, 0x7e, 0x0b}, 10);
    section(&mod, 10, &sec);
    timed_load(&mod, SHOAL_ERR_MALFORMED, "50001 locals", "too many locals");
    /* 150000 bodies of 7 bytes, each asking for 50000 locals: 7.5 GB if allowed; the module-wide budget
     * stops it */
    mod.n = 0;
    put(&mod, head, 8);
    put(&sec, (const uint8_t[]){0x01, 0x60, 0x00, 0x00}, 4);
    section(&mod, 1, &sec);
    putu(&sec, 150000);
    for (int i = 0; i < 150000; i++) put8(&sec, 0x00);
    section(&mod, 3, &sec);
    putu(&sec, 150000);
    for (int i = 0; i < 150000; i++) put(&sec, (const uint8_t[]){0x06, 0x01, 0xd0, 0x86, 0x03, 0x7f, 0x0b}, 7);
    section(&mod, 10, &sec);
    timed_load(&mod, SHOAL_ERR_MALFORMED, "150000 x 50000 locals", "too many locals");
    free(sec.p);
    free(mod.p);
    free(code.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),     cmocka_unit_test(test_header),        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_simd),          cmocka_unit_test(test_code_malformed),
        cmocka_unit_test(test_code_invalid),  cmocka_unit_test(test_module_invalid),
        cmocka_unit_test(test_large_module),  cmocka_unit_test(test_adversarial),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
