/*
 * test_spectest_units.c: the pieces of the spec runner that decide pass/fail on their own: value parsing
 * and matching (spectest_value.c) and the module writer (spectest_wasm.c), including that a synthesized
 * module loads in the engine, links and exports what was asked for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shoal.h"
#include "spectest_value.h"
#include "spectest_wasm.h"

static SpvParse parse_arg(SpvRefs *refs, const char *json, shoal_valtype *t, shoal_val *v) {
    char why[160];
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    SpvParse r = spv_parse_arg(refs, j, t, v, why, sizeof why);
    cJSON_Delete(j);
    return r;
}

static void test_parse_ints(void **state) {
    (void)state;
    SpvRefs refs = {0};
    shoal_valtype t;
    shoal_val v;
    assert_int_equal(parse_arg(&refs, "{\"type\":\"i32\",\"value\":\"4294967295\"}", &t, &v), SPV_OK);
    assert_int_equal(t, SHOAL_I32);
    assert_int_equal(v.i32, -1);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"i32\",\"value\":\"-2147483648\"}", &t, &v), SPV_OK);
    assert_int_equal(v.i32, INT32_MIN);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"i32\",\"value\":\"4294967296\"}", &t, &v), SPV_BAD);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"i32\",\"value\":\"-2147483649\"}", &t, &v), SPV_BAD);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"i32\",\"value\":\" 1\"}", &t, &v), SPV_BAD);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"i32\",\"value\":\"1x\"}", &t, &v), SPV_BAD);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"i64\",\"value\":\"18446744073709551615\"}", &t, &v), SPV_OK);
    assert_int_equal(v.i64, -1);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"i64\",\"value\":\"18446744073709551616\"}", &t, &v), SPV_BAD);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"f32\",\"value\":\"1065353216\"}", &t, &v), SPV_OK);
    assert_true(v.f32 == 1.0f);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"i32\"}", &t, &v), SPV_BAD);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"i32\",\"value\":5}", &t, &v), SPV_BAD);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"i128\",\"value\":\"5\"}", &t, &v), SPV_BAD);
    assert_int_equal(parse_arg(&refs, "{\"value\":\"5\"}", &t, &v), SPV_BAD);
    assert_int_equal(parse_arg(&refs, "[1]", &t, &v), SPV_BAD);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"v128\",\"lane_type\":\"i32\",\"value\":[\"1\",\"2\",\"3\",\"4\"]}",
                               &t, &v),
                     SPV_SKIP);
    spv_refs_free(&refs);
}

static void test_externrefs(void **state) {
    (void)state;
    SpvRefs refs = {0};
    shoal_valtype t;
    shoal_val a, b, c, n;
    assert_int_equal(parse_arg(&refs, "{\"type\":\"externref\",\"value\":\"7\"}", &t, &a), SPV_OK);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"externref\",\"value\":\"7\"}", &t, &b), SPV_OK);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"externref\",\"value\":\"8\"}", &t, &c), SPV_OK);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"externref\",\"value\":\"null\"}", &t, &n), SPV_OK);
    assert_int_equal(t, SHOAL_EXTERNREF);
    assert_non_null(a.ref);
    assert_ptr_equal(a.ref, b.ref);
    assert_ptr_not_equal(a.ref, c.ref);
    assert_null(n.ref);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"externref\",\"value\":\"-1\"}", &t, &n), SPV_BAD);
    assert_int_equal(parse_arg(&refs, "{\"type\":\"funcref\",\"value\":\"3\"}", &t, &n), SPV_BAD);

    char buf[96];
    spv_format(&refs, SHOAL_EXTERNREF, c, buf, sizeof buf);
    assert_string_equal(buf, "externref:8");
    shoal_val stranger = {.ref = buf};
    spv_format(&refs, SHOAL_EXTERNREF, stranger, buf, sizeof buf);
    assert_non_null(strstr(buf, "not a host reference"));

    char why[160];
    SpvExpect e;
    cJSON *j = cJSON_Parse("{\"type\":\"externref\",\"value\":\"7\"}");
    assert_int_equal(spv_parse_expect(&refs, j, &e, why, sizeof why), SPV_OK);
    cJSON_Delete(j);
    assert_true(spv_match(&refs, &e, a));
    assert_false(spv_match(&refs, &e, c));
    assert_false(spv_match(&refs, &e, n));
    j = cJSON_Parse("{\"type\":\"funcref\"}"); /* no value: any non-null reference */
    assert_int_equal(spv_parse_expect(&refs, j, &e, why, sizeof why), SPV_OK);
    cJSON_Delete(j);
    assert_true(spv_match(&refs, &e, a));
    assert_false(spv_match(&refs, &e, n));
    spv_refs_free(&refs);
}

static bool match(const char *json, uint64_t bits) {
    SpvRefs refs = {0};
    SpvExpect e;
    char why[160];
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    assert_int_equal(spv_parse_expect(&refs, j, &e, why, sizeof why), SPV_OK);
    cJSON_Delete(j);
    shoal_val v;
    memset(&v, 0, sizeof v);
    if (e.type == SHOAL_F32)
        v.f32_bits = (uint32_t)bits;
    else
        v.f64_bits = bits;
    return spv_match(&refs, &e, v);
}

static void test_nan_patterns(void **state) {
    (void)state;
    const char *c32 = "{\"type\":\"f32\",\"value\":\"nan:canonical\"}";
    const char *a32 = "{\"type\":\"f32\",\"value\":\"nan:arithmetic\"}";
    assert_true(match(c32, 0x7fc00000));
    assert_true(match(c32, 0xffc00000));
    assert_false(match(c32, 0x7fc00001)); /* arithmetic, not canonical */
    assert_false(match(c32, 0x7fa00000)); /* signalling */
    assert_false(match(c32, 0x7f800000)); /* infinity */
    assert_true(match(a32, 0x7fc00001));
    assert_true(match(a32, 0xffffffff));
    assert_false(match(a32, 0x7fa00000));
    assert_false(match(a32, 0x3f800000));
    const char *c64 = "{\"type\":\"f64\",\"value\":\"nan:canonical\"}";
    const char *a64 = "{\"type\":\"f64\",\"value\":\"nan:arithmetic\"}";
    assert_true(match(c64, 0x7ff8000000000000));
    assert_true(match(c64, 0xfff8000000000000));
    assert_false(match(c64, 0x7ff8000000000001));
    assert_true(match(a64, 0x7ff8000000000001));
    assert_false(match(a64, 0x7ff4000000000000));
    assert_false(match(a64, 0x7ff0000000000000));
    /* exact floats compare bits: -0 is not +0, and a NaN payload must be the same */
    assert_true(match("{\"type\":\"f32\",\"value\":\"2147483648\"}", 0x80000000));
    assert_false(match("{\"type\":\"f32\",\"value\":\"2147483648\"}", 0));
    assert_true(match("{\"type\":\"f64\",\"value\":\"9221120237041090561\"}", 0x7ff8000000000001));
    assert_false(match("{\"type\":\"f64\",\"value\":\"9221120237041090561\"}", 0x7ff8000000000000));
}

static void expect_bytes(SpwBuf *b, const uint8_t *want, size_t n) {
    assert_false(b->failed);
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
    spw_free(b);
}

static void test_leb128(void **state) {
    (void)state;
    SpwBuf b = {0};
    spw_u32(&b, 624485);
    expect_bytes(&b, (const uint8_t[]){0xe5, 0x8e, 0x26}, 3);
    spw_u32(&b, 0);
    expect_bytes(&b, (const uint8_t[]){0x00}, 1);
    spw_u32(&b, UINT32_MAX);
    expect_bytes(&b, (const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0x0f}, 5);
    spw_s64(&b, -1);
    expect_bytes(&b, (const uint8_t[]){0x7f}, 1);
    spw_s64(&b, 63);
    expect_bytes(&b, (const uint8_t[]){0x3f}, 1);
    spw_s64(&b, 64);
    expect_bytes(&b, (const uint8_t[]){0xc0, 0x00}, 2);
    spw_s64(&b, -64);
    expect_bytes(&b, (const uint8_t[]){0x40}, 1);
    spw_s64(&b, -65);
    expect_bytes(&b, (const uint8_t[]){0xbf, 0x7f}, 2);
    spw_s64(&b, -123456);
    expect_bytes(&b, (const uint8_t[]){0xc0, 0xbb, 0x78}, 3);
    spw_s64(&b, INT64_MIN);
    expect_bytes(&b, (const uint8_t[]){0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}, 10);
}

/* A synthesized module loads, links its host functions and exports what it was asked to. */
static shoal_status host_add(shoal_call *call, const shoal_val *args, shoal_val *results, void *user) {
    (void)call;
    (void)user;
    results[0].i64 = (int64_t)args[0].i32 + args[1].i64;
    return SHOAL_OK;
}

static void test_build_module(void **state) {
    (void)state;
    SpwItem items[5];
    memset(items, 0, sizeof items);
    items[0] = (SpwItem){.name = "add", .kind = SHOAL_EXTERN_FUNC, .sig = "iI:I"};
    items[1] = (SpwItem){.name = "g", .kind = SHOAL_EXTERN_GLOBAL, .valtype = SHOAL_F64};
    items[1].init.f64 = -2.5;
    items[2] = (SpwItem){.name = "m", .kind = SHOAL_EXTERN_GLOBAL, .valtype = SHOAL_I32, .mutable_global = true};
    items[2].init.i32 = -7;
    items[3] = (SpwItem){.name = "t", .kind = SHOAL_EXTERN_TABLE, .valtype = SHOAL_EXTERNREF, .min = 3};
    items[4] = (SpwItem){.name = "mem", .kind = SHOAL_EXTERN_MEMORY, .min = 1, .max = 2, .has_max = true};
    uint8_t *bytes = NULL;
    size_t len = 0;
    shoal_error err;
    assert_int_equal(spw_build_module("host", items, 5, &bytes, &len, &err), SHOAL_OK);

    shoal_module *m = NULL;
    shoal_status st = shoal_module_load(bytes, len, &m, &err);
    free(bytes);
    if (st != SHOAL_OK)
        fail_msg("synthesized module rejected: %s", err.message);
    assert_int_equal(shoal_module_export_count(m), 5);
    shoal_extern_desc d;
    assert_true(shoal_module_export(m, 3, &d));
    assert_string_equal(d.name, "t");
    assert_int_equal(d.kind, SHOAL_EXTERN_TABLE);
    assert_int_equal(d.min, 3);
    assert_false(d.has_max);
    /* the signature of an import, read back through the API, is the one it was built from */
    assert_int_equal(shoal_module_import_count(m), 1);
    assert_true(shoal_module_import(m, 0, &d));
    char sig[16];
    assert_true(spw_signature(&d.func, sig, sizeof sig));
    assert_string_equal(sig, "iI:I");
    assert_false(spw_signature(&d.func, sig, 4)); /* needs 5 bytes with the NUL */

    shoal_imports *imp = shoal_imports_new();
    assert_non_null(imp);
    assert_int_equal(shoal_imports_add_func(imp, "host", "add", "iI:I", host_add, NULL, &err), SHOAL_OK);
    shoal_instance *inst = NULL;
    st = shoal_instantiate(m, imp, NULL, &inst, &err);
    if (st != SHOAL_OK)
        fail_msg("synthesized module did not instantiate: %s", err.message);
    shoal_val args[2] = {{.i32 = -5}, {.i64 = 1000000000000}}, res[1];
    assert_int_equal(shoal_call_export(inst, "add", args, 2, res, 1, &err), SHOAL_OK);
    assert_int_equal(res[0].i64, 999999999995);
    shoal_val g;
    shoal_valtype gt;
    assert_int_equal(shoal_export_global(inst, "g", &g, &gt, &err), SHOAL_OK);
    assert_int_equal(gt, SHOAL_F64);
    assert_true(g.f64 == -2.5);
    assert_int_equal(shoal_export_global(inst, "m", &g, &gt, &err), SHOAL_OK);
    assert_int_equal(g.i32, -7);
    uint64_t size = 0;
    assert_non_null(shoal_instance_memory(inst, &size));
    assert_int_equal(size, 65536);
    shoal_instance_free(inst);
    shoal_imports_free(imp);
    shoal_module_free(m);

    items[0].sig = "i:x"; /* no such letter */
    assert_int_equal(spw_build_module("host", items, 1, &bytes, &len, &err), SHOAL_ERR_ARG);
    items[0].sig = "i";
    assert_int_equal(spw_build_module("host", items, 1, &bytes, &len, &err), SHOAL_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ints),  cmocka_unit_test(test_externrefs), cmocka_unit_test(test_nan_patterns),
        cmocka_unit_test(test_leb128),      cmocka_unit_test(test_build_module),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
