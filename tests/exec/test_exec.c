/*
 * test_exec.c: the execution engine through the public API: arithmetic edge cases, every trap kind with
 * its location, host functions with memory access, linking, fuel, interrupt, deep recursion and memory
 * growth through a counting memory provider.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "shoal.h"

static uint8_t *read_file(const char *name, size_t *size) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.wasm", EXEC_WASM_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static shoal_module *load(const char *name) {
    size_t n;
    uint8_t *bytes = read_file(name, &n);
    assert_non_null(bytes);
    shoal_module *m = NULL;
    shoal_error err;
    shoal_status st = shoal_module_load(bytes, n, &m, &err);
    if (st != SHOAL_OK) fail_msg("load %s: %s", name, err.message);
    free(bytes);
    return m;
}

/* ---- host functions ---------------------------------------------------------------------------- */

typedef struct HostState {
    shoal_instance *inst;
    int calls;
} HostState;

static shoal_status h_add3(shoal_call *call, const shoal_val *args, shoal_val *results, void *user) {
    (void)call;
    ((HostState *)user)->calls++;
    results[0].i32 = args[0].i32 + args[1].i32 + args[2].i32;
    return SHOAL_OK;
}

static shoal_status h_strlen(shoal_call *call, const shoal_val *args, shoal_val *results, void *user) {
    (void)user;
    const char *s = shoal_call_mem(call, (uint32_t)args[0].i32, (uint32_t)args[1].i32);
    if (!s) return shoal_call_trap(call, "strlen: bad pointer %u", (uint32_t)args[0].i32);
    results[0].i32 = (int32_t)strnlen(s, (size_t)args[1].i32);
    return SHOAL_OK;
}

static shoal_status h_fail(shoal_call *call, const shoal_val *args, shoal_val *results, void *user) {
    (void)results;
    (void)user;
    return shoal_call_trap(call, "host says no (%d)", args[0].i32);
}

static shoal_status h_exit(shoal_call *call, const shoal_val *args, shoal_val *results, void *user) {
    (void)results;
    (void)user;
    return shoal_call_exit(call, args[0].i32);
}

/* Calls back into the guest: a nested execution on the same stack. */
static shoal_status h_reenter(shoal_call *call, const shoal_val *args, shoal_val *results, void *user) {
    (void)user;
    shoal_val a[2] = {{.i32 = args[0].i32}, {.i32 = 1000}};
    shoal_error err;
    shoal_status st = shoal_call_export(shoal_call_instance(call), "add", a, 2, results, 1, &err);
    if (st != SHOAL_OK) return shoal_call_trap(call, "reenter: %s", err.message);
    return SHOAL_OK;
}

typedef struct Fixture {
    shoal_module *mod;
    shoal_imports *imports;
    shoal_instance *inst;
    HostState host;
} Fixture;

static shoal_instance *instantiate_basic(Fixture *fx, const shoal_instance_config *cfg) {
    shoal_error err;
    shoal_instance *inst = NULL;
    if (shoal_instantiate(fx->mod, fx->imports, cfg, &inst, &err) != SHOAL_OK)
        fail_msg("instantiate: %s", err.message);
    return inst;
}

static int setup(void **state) {
    Fixture *fx = calloc(1, sizeof *fx);
    fx->mod = load("basic");
    fx->imports = shoal_imports_new();
    shoal_error err;
    assert_int_equal(shoal_imports_add_func(fx->imports, "host", "add3", "iii:i", h_add3, &fx->host, &err), SHOAL_OK);
    assert_int_equal(shoal_imports_add_func(fx->imports, "host", "strlen", "ii:i", h_strlen, NULL, &err), SHOAL_OK);
    assert_int_equal(shoal_imports_add_func(fx->imports, "host", "fail", "i:", h_fail, NULL, &err), SHOAL_OK);
    assert_int_equal(shoal_imports_add_func(fx->imports, "host", "exit", "i:", h_exit, NULL, &err), SHOAL_OK);
    assert_int_equal(shoal_imports_add_func(fx->imports, "host", "reenter", "i:i", h_reenter, NULL, &err), SHOAL_OK);
    fx->inst = instantiate_basic(fx, NULL);
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    Fixture *fx = *state;
    shoal_instance_free(fx->inst);
    shoal_imports_free(fx->imports);
    shoal_module_free(fx->mod);
    free(fx);
    return 0;
}

static shoal_val call1(shoal_instance *inst, const char *name, int n, ...) {
    shoal_val args[4];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) args[i] = va_arg(ap, shoal_val);
    va_end(ap);
    shoal_val r = {.i64 = 0};
    shoal_error err;
    shoal_status st = shoal_call_export(inst, name, args, (uint32_t)n, &r, 1, &err);
    if (st != SHOAL_OK) fail_msg("%s: %s", name, err.message);
    return r;
}
#define I32(v) ((shoal_val){.i32 = (v)})
#define I64(v) ((shoal_val){.i64 = (v)})
#define F32(v) ((shoal_val){.f32 = (v)})
#define F64(v) ((shoal_val){.f64 = (v)})

/* ---- tests ------------------------------------------------------------------------------------- */

static void test_arith(void **state) {
    Fixture *fx = *state;
    shoal_instance *in = fx->inst;
    assert_int_equal(call1(in, "add", 2, I32(2), I32(40)).i32, 42);
    assert_int_equal(call1(in, "add", 2, I32(INT32_MAX), I32(1)).i32, INT32_MIN);
    assert_int_equal(call1(in, "sub_imm", 1, I32(3)).i32, -2);
    assert_int_equal(call1(in, "div_s", 2, I32(-7), I32(2)).i32, -3);
    assert_int_equal(call1(in, "rem_s", 2, I32(INT32_MIN), I32(-1)).i32, 0);
    assert_int_equal(call1(in, "rem_s", 2, I32(-7), I32(2)).i32, -1);
    assert_true(call1(in, "div_u64", 2, I64(-1), I64(2)).i64 == INT64_MAX);
    assert_int_equal((uint32_t)call1(in, "rotl", 2, I32((int32_t)0x80000001u), I32(33)).i32, 3u);
    assert_true(call1(in, "shl64", 2, I64(1), I64(65)).i64 == 2);
    assert_int_equal(call1(in, "clz", 1, I32(0)).i32, 32);
    assert_int_equal(call1(in, "clz", 1, I32(1)).i32, 31);
    shoal_val r = call1(in, "fmin", 2, F32(0.0f), F32(-0.0f));
    assert_int_equal(r.f32_bits, 0x80000000u);
    r = call1(in, "fmax64", 2, F64(-0.0), F64(0.0));
    assert_true(r.f64_bits == 0);
    assert_int_equal(call1(in, "trunc_s", 1, F64(-2147483648.9)).i32, INT32_MIN);
    assert_int_equal((uint32_t)call1(in, "trunc_sat_u", 1, F32(1e20f)).i32, UINT32_MAX);
    assert_int_equal(call1(in, "trunc_sat_u", 1, F32(-5.0f)).i32, 0);
    assert_true(call1(in, "nearest", 1, F64(2.5)).f64 == 2.0);
    assert_true(call1(in, "nearest", 1, F64(-3.5)).f64 == -4.0);
    assert_int_equal(call1(in, "select", 3, I32(1), I32(2), I32(0)).i32, 2);
    assert_int_equal(call1(in, "select", 3, I32(1), I32(2), I32(5)).i32, 1);
    shoal_val two[2], args[2] = {I32(1), I32(2)};
    assert_int_equal(shoal_call_export(in, "swap", args, 2, two, 2, NULL), SHOAL_OK);
    assert_int_equal(two[0].i32, 2);
    assert_int_equal(two[1].i32, 1);
}

/* The superinstructions keep the exact semantics of the instruction pairs they replace. */
static void test_fused(void **state) {
    Fixture *fx = *state;
    shoal_instance *in = fx->inst;
    /* 0xfffffff0 + 0x20 wraps to 0x10 ("hello..." lives at 16): a 64-bit sum would trap instead */
    assert_int_equal(call1(in, "load_wrap", 1, I32((int32_t)0xfffffff0u)).i32, 'h');
    assert_int_equal(call1(in, "load_wrap2", 2, I32((int32_t)0xfffffff0u), I32(0x20)).i32, 'e');
    shoal_val a[1] = {I32(65536 - 0x20)};
    shoal_error err;
    shoal_val r;
    assert_int_equal(shoal_call_export(in, "load_wrap", a, 1, &r, 1, &err), SHOAL_ERR_TRAP);
    assert_int_equal(err.trap, SHOAL_TRAP_MEMORY_OOB);
    /* a*b is rounded before the add: (1+2^-27)^2 rounds to 1+2^-26, so these are exactly 0 (a fused
     * multiply-add would give 2^-54) */
    double x = 1.0 + 0x1p-27, c = 1.0 + 0x1p-26;
    assert_true(call1(in, "muladd", 3, F64(x), F64(x), F64(-c)).f64 == 0.0);
    assert_true(call1(in, "mulsub", 3, F64(x), F64(x), F64(c)).f64 == 0.0);
    float y = 1.0f + 0x1p-13f, d = 1.0f + 0x1p-12f;
    assert_true(call1(in, "rmulsub32", 3, F32(y), F32(y), F32(d)).f32 == 0.0f);
    assert_true(call1(in, "muladd", 3, F64(2.0), F64(3.0), F64(1.0)).f64 == 7.0);
    /* loads feeding an op: write known values, read them back through the fused forms */
    uint8_t *base = shoal_instance_memory(in, NULL);
    uint32_t u = 0x01020304u;
    double dv = 0.25;
    float fv = -3.0f;
    memcpy(base + 1004, &u, 4);
    memcpy(base + 2000, &dv, 8);
    memcpy(base + 3000, &fv, 4);
    assert_int_equal((uint32_t)call1(in, "sub_m", 2, I32(0x10000000), I32(1000)).i32, 0x10000000u - u);
    assert_int_equal((uint32_t)call1(in, "xor_m", 2, I32(-1), I32(1004)).i32, ~u);
    assert_true(call1(in, "fsub_m", 2, F64(1.0), I32(2000)).f64 == 0.75);
    assert_true(call1(in, "fmul_m32", 2, F32(2.0f), I32(3000)).f32 == -6.0f);
    /* the fused op traps as its load would, at the load's offset */
    shoal_val bad[2] = {F64(1.0), I32(65530)};
    assert_int_equal(shoal_call_export(in, "fsub_m", bad, 2, &r, 1, &err), SHOAL_ERR_TRAP);
    assert_int_equal(err.trap, SHOAL_TRAP_MEMORY_OOB);
    size_t n;
    uint8_t *bytes = read_file("basic", &n);
    assert_int_equal(bytes[err.code_offset], 0x2b); /* f64.load */
    free(bytes);
    assert_true(call1(in, "mulsub", 3, F64(2.0), F64(3.0), F64(1.0)).f64 == 5.0);
    assert_true(call1(in, "rmulsub32", 3, F32(2.0f), F32(3.0f), F32(1.0f)).f32 == -5.0f);
}

static uint32_t cmp_imm_ref(int32_t x) {
    return ((uint32_t)(x < (5)) << 0) |
           ((uint32_t)((5) < x) << 1) |
           ((uint32_t)((uint32_t)x < (uint32_t)(5)) << 2) |
           ((uint32_t)((uint32_t)(5) < (uint32_t)x) << 3) |
           ((uint32_t)(x > (5)) << 4) |
           ((uint32_t)((5) > x) << 5) |
           ((uint32_t)((uint32_t)x > (uint32_t)(5)) << 6) |
           ((uint32_t)((uint32_t)(5) > (uint32_t)x) << 7) |
           ((uint32_t)(x <= (5)) << 8) |
           ((uint32_t)((5) <= x) << 9) |
           ((uint32_t)((uint32_t)x <= (uint32_t)(5)) << 10) |
           ((uint32_t)((uint32_t)(5) <= (uint32_t)x) << 11) |
           ((uint32_t)(x >= (5)) << 12) |
           ((uint32_t)((5) >= x) << 13) |
           ((uint32_t)((uint32_t)x >= (uint32_t)(5)) << 14) |
           ((uint32_t)((uint32_t)(5) >= (uint32_t)x) << 15) |
           ((uint32_t)(x == (5)) << 16) |
           ((uint32_t)((5) == x) << 17) |
           ((uint32_t)(x != (5)) << 18) |
           ((uint32_t)((5) != x) << 19) |
           ((uint32_t)(x < (-5)) << 20) |
           ((uint32_t)((uint32_t)x < (uint32_t)(-5)) << 21) |
           ((uint32_t)(x > (-5)) << 22) |
           ((uint32_t)((uint32_t)x > (uint32_t)(-5)) << 23) |
           ((uint32_t)(x <= (-5)) << 24) |
           ((uint32_t)((uint32_t)x <= (uint32_t)(-5)) << 25) |
           ((uint32_t)(x >= (-5)) << 26) |
           ((uint32_t)((uint32_t)x >= (uint32_t)(-5)) << 27) |
           ((uint32_t)(x == (-5)) << 28) |
           ((uint32_t)(x != (-5)) << 29);
}

static uint32_t br_imm_ref(int32_t x) {
    int32_t m = 0;
    if (x < -5) m |= 1;
    if ((uint32_t)x >= 5u) m |= 2;
    if (x != 5) m |= 4;
    if (x > m) m |= 8;
    if (!((uint32_t)x <= 7u)) m |= 16;
    if (x != 0) m |= 32;
    return (uint32_t)m;
}

static uint64_t imm_mix_ref(uint64_t x, uint32_t y) {
    uint64_t r = (x << 7) ^ (uint64_t)((int64_t)x >> 3);
    r ^= (x >> 61) ^ (x * (uint64_t)-3);
    uint64_t s = (x & ~(uint64_t)255) ^ (x | 0x40);
    uint32_t w = (100u - y) ^ (((y << 9) | (y >> 23)) ^ (((y >> 3) | (y << 29)) ^ (y * (uint32_t)-7)));
    s ^= ((x ^ 0x7fffffffu) + (x + 9)) + ((uint64_t)(x == (uint64_t)-1) + (uint64_t)(x != 3) + w);
    return r ^ s;
}

/* The immediate and compare-and-branch forms agree with C on values around and at their constants. */
static void test_immediates(void **state) {
    Fixture *fx = *state;
    static const int32_t xs[] = {-6, -5, -4, 0, 4, 5, 6, 7, 8, INT32_MIN, INT32_MAX, -1};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        int32_t x = xs[i];
        assert_int_equal((uint32_t)call1(fx->inst, "cmp_imm", 1, I32(x)).i32, cmp_imm_ref(x));
        assert_int_equal((uint32_t)call1(fx->inst, "br_imm", 1, I32(x)).i32, br_imm_ref(x));
        uint64_t v = (uint64_t)(int64_t)x * 0x9E3779B97F4A7C15ull;
        assert_true((uint64_t)call1(fx->inst, "imm_mix", 2, I64((int64_t)v), I32(x)).i64 == imm_mix_ref(v, (uint32_t)x));
        assert_true((uint64_t)call1(fx->inst, "imm_mix", 2, I64(x), I32(x)).i64 ==
                    imm_mix_ref((uint64_t)(int64_t)x, (uint32_t)x));
    }
}

static void test_control(void **state) {
    Fixture *fx = *state;
    shoal_instance *in = fx->inst;
    assert_true(call1(in, "sum", 1, I32(100000)).i64 == 5000050000ll);
    assert_true(call1(in, "sum", 1, I32(-1)).i64 == 0);
    assert_int_equal(call1(in, "pick", 1, I32(0)).i32, 101);
    assert_int_equal(call1(in, "pick", 1, I32(1)).i32, 102);
    assert_int_equal(call1(in, "pick", 1, I32(2)).i32, 103);
    assert_int_equal(call1(in, "pick", 1, I32(77)).i32, 103);
    assert_true(call1(in, "fac", 1, I64(20)).i64 == 2432902008176640000ll);
    assert_int_equal(call1(in, "g_inc", 0).i32, 8);
    assert_int_equal(call1(in, "g_inc", 0).i32, 9);
    shoal_val g;
    shoal_valtype t;
    assert_int_equal(shoal_export_global(in, "nope", &g, &t, NULL), SHOAL_ERR_NOTFOUND);
    assert_int_equal(call1(in, "call_ind", 2, I32(0), I32(14)).i32, 42);
    assert_int_equal(call1(in, "table_loop", 1, I32(1000)).i32, 1000); /* br_table back to a loop */
}

/* Checks a trap: kind, function name, and that the reported offset is the trapping opcode's byte. */
static void expect_trap(Fixture *fx, const char *export, shoal_val *args, uint32_t nargs, uint32_t nres,
                        shoal_trap kind, const char *func, int opcode) {
    shoal_val res[2];
    shoal_error err;
    shoal_status st = shoal_call_export(fx->inst, export, args, nargs, res, nres, &err);
    if (st != SHOAL_ERR_TRAP) fail_msg("%s: status %d (%s), want a trap", export, st, err.message);
    if (err.trap != kind) fail_msg("%s: trap %d (%s), want %d", export, err.trap, err.message, kind);
    assert_non_null(strstr(err.message, shoal_trap_message(kind)));
    if (func) assert_string_equal(err.func_name, func);
    if (opcode >= 0) {
        size_t n;
        uint8_t *bytes = read_file("basic", &n);
        assert_true(err.code_offset > 0 && err.code_offset < n);
        if (bytes[err.code_offset] != opcode)
            fail_msg("%s: byte at 0x%x is 0x%02x, want opcode 0x%02x", export, err.code_offset,
                     bytes[err.code_offset], opcode);
        free(bytes);
    }
}

static void test_traps(void **state) {
    Fixture *fx = *state;
    shoal_val a[2];
    expect_trap(fx, "boom", NULL, 0, 0, SHOAL_TRAP_UNREACHABLE, "boom", 0x00);
    a[0] = I32(1), a[1] = I32(0);
    expect_trap(fx, "div_s", a, 2, 1, SHOAL_TRAP_INT_DIV_ZERO, NULL, 0x6d);
    a[0] = I32(INT32_MIN), a[1] = I32(-1);
    expect_trap(fx, "div_s", a, 2, 1, SHOAL_TRAP_INT_OVERFLOW, NULL, 0x6d);
    a[0] = I32(0), a[1] = I32(0);
    expect_trap(fx, "rem_s", a, 2, 1, SHOAL_TRAP_INT_DIV_ZERO, NULL, 0x6f);
    a[0] = F64(0.0 / 0.0);
    expect_trap(fx, "trunc_s", a, 1, 1, SHOAL_TRAP_INVALID_CONVERSION, NULL, 0xaa);
    a[0] = F64(3e9);
    expect_trap(fx, "trunc_s", a, 1, 1, SHOAL_TRAP_INT_OVERFLOW, NULL, 0xaa);
    /* i32.load offset=2 at 65531 reads [65533, 65537): one byte past the single page */
    a[0] = I32(65530);
    assert_int_equal(call1(fx->inst, "load", 1, a[0]).i32, 0);
    a[0] = I32(65531);
    expect_trap(fx, "load", a, 1, 1, SHOAL_TRAP_MEMORY_OOB, NULL, 0x28);
    a[0] = I32(-1); /* 0xffffffff + 2 must not wrap around */
    expect_trap(fx, "load", a, 1, 1, SHOAL_TRAP_MEMORY_OOB, NULL, 0x28);
    a[0] = I32(65536), a[1] = I32(1);
    expect_trap(fx, "store8", a, 2, 0, SHOAL_TRAP_MEMORY_OOB, NULL, 0x3a);
    a[0] = I32(4);
    expect_trap(fx, "table_get", a, 1, 1, SHOAL_TRAP_TABLE_OOB, NULL, 0x25);
    a[0] = I32(9), a[1] = I32(0);
    expect_trap(fx, "call_ind", a, 2, 1, SHOAL_TRAP_UNDEFINED_ELEMENT, NULL, 0x11);
    a[0] = I32(3);
    expect_trap(fx, "call_ind", a, 2, 1, SHOAL_TRAP_UNINITIALIZED_ELEMENT, NULL, 0x11);
    a[0] = I32(1);
    expect_trap(fx, "call_ind", a, 2, 1, SHOAL_TRAP_INDIRECT_TYPE, NULL, 0x11);
    a[0] = I32(0), a[1] = I32(1), a[2 - 1] = I32(1);
    shoal_val f3[3] = {I32(65000), I32(1), I32(1000)};
    expect_trap(fx, "fill", f3, 3, 0, SHOAL_TRAP_MEMORY_OOB, NULL, 0xfc);
    /* after traps the instance still works */
    assert_int_equal(call1(fx->inst, "add", 2, I32(1), I32(2)).i32, 3);
}

static void test_recursion(void **state) {
    Fixture *fx = *state;
    /* Deep but legal: far deeper than a C-recursive interpreter could go with a small host stack. */
    assert_int_equal(call1(fx->inst, "depth", 1, I32(9000)).i32, 9000);
    expect_trap(fx, "forever", NULL, 0, 0, SHOAL_TRAP_STACK_EXHAUSTED, "forever", -1);
    shoal_val a = I32(100000);
    expect_trap(fx, "depth", &a, 1, 1, SHOAL_TRAP_STACK_EXHAUSTED, "depth", -1);
    assert_int_equal(call1(fx->inst, "depth", 1, I32(10)).i32, 10);
}

static void test_host(void **state) {
    Fixture *fx = *state;
    int before = fx->host.calls;
    assert_int_equal(call1(fx->inst, "call_add3", 1, I32(5)).i32, 115);
    assert_int_equal(fx->host.calls, before + 1);
    assert_int_equal(call1(fx->inst, "call_strlen", 2, I32(16), I32(100)).i32, 12);
    /* [65530, 65630) crosses the end of memory: the host refuses and traps */
    shoal_val a[2] = {I32(65530), I32(100)};
    shoal_val r;
    shoal_error err;
    assert_int_equal(shoal_call_export(fx->inst, "call_strlen", a, 2, &r, 1, &err), SHOAL_ERR_TRAP);
    assert_int_equal(err.trap, SHOAL_TRAP_HOST);
    assert_non_null(strstr(err.message, "bad pointer 65530"));
    assert_int_equal(shoal_call_export(fx->inst, "call_fail", NULL, 0, NULL, 0, &err), SHOAL_ERR_TRAP);
    assert_int_equal(err.trap, SHOAL_TRAP_HOST);
    assert_non_null(strstr(err.message, "host says no (42)"));
    a[0] = I32(7);
    assert_int_equal(shoal_call_export(fx->inst, "call_exit", a, 1, NULL, 0, &err), SHOAL_ERR_EXIT);
    assert_int_equal(err.exit_code, 7);
    assert_int_equal(call1(fx->inst, "call_reenter", 1, I32(5)).i32, 1005);
    /* wrong arity is the embedder's error, not a trap */
    assert_int_equal(shoal_call_export(fx->inst, "add", a, 1, &r, 1, &err), SHOAL_ERR_ARG);
    assert_int_equal(shoal_call_export(fx->inst, "nope", NULL, 0, NULL, 0, &err), SHOAL_ERR_NOTFOUND);
}

static void test_fuel(void **state) {
    Fixture *fx = *state;
    shoal_instance_config cfg = {.limits = {.fuel = 100000}};
    shoal_instance *in = instantiate_basic(fx, &cfg);
    shoal_error err;
    assert_int_equal(shoal_call_export(in, "spin", NULL, 0, NULL, 0, &err), SHOAL_ERR_TRAP);
    assert_int_equal(err.trap, SHOAL_TRAP_FUEL_EXHAUSTED);
    assert_true(shoal_instance_fuel_left(in) == 0);
    shoal_instance_set_fuel(in, 1000000);
    shoal_val a = I32(100), r;
    assert_int_equal(shoal_call_export(in, "sum", &a, 1, &r, 1, &err), SHOAL_OK);
    uint64_t left = shoal_instance_fuel_left(in);
    assert_true(left > 0 && left < 1000000);
    /* a long loop costs more than a short one */
    a = I32(1000);
    assert_int_equal(shoal_call_export(in, "sum", &a, 1, &r, 1, &err), SHOAL_OK);
    assert_true(left - shoal_instance_fuel_left(in) > 5 * (1000000 - left));
    a = I32(100000000);
    assert_int_equal(shoal_call_export(in, "sum", &a, 1, &r, 1, &err), SHOAL_ERR_TRAP);
    assert_int_equal(err.trap, SHOAL_TRAP_FUEL_EXHAUSTED);
    shoal_instance_free(in);
}

static void *interrupter(void *arg) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    shoal_instance_interrupt(arg);
    return NULL;
}

static void test_interrupt(void **state) {
    Fixture *fx = *state;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, interrupter, fx->inst), 0);
    shoal_error err;
    assert_int_equal(shoal_call_export(fx->inst, "spin", NULL, 0, NULL, 0, &err), SHOAL_ERR_TRAP);
    assert_int_equal(err.trap, SHOAL_TRAP_INTERRUPTED);
    pthread_join(th, NULL);
    /* still interrupted until cleared */
    assert_int_equal(shoal_call_export(fx->inst, "forever", NULL, 0, NULL, 0, &err), SHOAL_ERR_TRAP);
    assert_int_equal(err.trap, SHOAL_TRAP_INTERRUPTED);
    shoal_instance_clear_interrupt(fx->inst);
    assert_int_equal(call1(fx->inst, "add", 2, I32(1), I32(2)).i32, 3);
}

/* A provider that wraps the host one and records what the engine asks for. */
typedef struct Counting {
    int reserves, commits, releases;
    uint64_t committed;
} Counting;

static void *c_reserve(void *user, uint64_t reserve_bytes, uint64_t initial_bytes, shoal_error *err) {
    Counting *c = user;
    c->reserves++;
    c->committed = initial_bytes;
    const shoal_memory_provider *h = shoal_host_memory_provider();
    return h->reserve(h->user, reserve_bytes, initial_bytes, err);
}
static shoal_status c_commit(void *user, void *base, uint64_t old_bytes, uint64_t new_bytes, shoal_error *err) {
    Counting *c = user;
    c->commits++;
    assert_true(old_bytes == c->committed);
    c->committed = new_bytes;
    const shoal_memory_provider *h = shoal_host_memory_provider();
    return h->commit(h->user, base, old_bytes, new_bytes, err);
}
static void c_release(void *user, void *base, uint64_t committed_bytes, uint64_t reserve_bytes) {
    Counting *c = user;
    c->releases++;
    assert_true(committed_bytes == c->committed);
    const shoal_memory_provider *h = shoal_host_memory_provider();
    h->release(h->user, base, committed_bytes, reserve_bytes);
}

static void test_memory_growth(void **state) {
    Fixture *fx = *state;
    Counting cnt = {0};
    shoal_memory_provider prov = {"counting", &cnt, c_reserve, c_commit, c_release};
    shoal_instance_config cfg = {.memory_provider = &prov, .limits = {.max_memory_pages = 3}};
    shoal_instance *in = instantiate_basic(fx, &cfg);
    assert_int_equal(cnt.reserves, 1);
    uint64_t size;
    uint8_t *base = shoal_instance_memory(in, &size);
    assert_non_null(base);
    assert_true(size == 65536);
    assert_memory_equal(base + 16, "hello, shoal", 12);
    assert_int_equal(call1(in, "grow", 1, I32(1)).i32, 1);
    assert_int_equal(cnt.commits, 1);
    assert_int_equal(call1(in, "size", 0).i32, 2);
    uint8_t *base2 = shoal_instance_memory(in, &size);
    assert_ptr_equal(base, base2);
    assert_true(size == 2 * 65536);
    assert_int_equal(base2[65536 + 100], 0); /* new pages read as zero */
    /* the store that trapped at 65536 before now succeeds */
    shoal_val a[2] = {I32(65536), I32(9)};
    assert_int_equal(shoal_call_export(in, "store8", a, 2, NULL, 0, NULL), SHOAL_OK);
    assert_int_equal(base[65536], 9);
    /* the instance limit (3 pages) is below the module's maximum (4) */
    assert_int_equal(call1(in, "grow", 1, I32(2)).i32, -1);
    assert_int_equal(call1(in, "grow", 1, I32(1)).i32, 2);
    assert_int_equal(call1(in, "grow", 1, I32(0)).i32, 3);
    assert_int_equal(cnt.commits, 2);
    uint8_t buf[4] = {1, 2, 3, 4}, back[4];
    shoal_error err;
    assert_int_equal(shoal_instance_memory_write(in, 3 * 65536 - 4, buf, 4, &err), SHOAL_OK);
    assert_int_equal(shoal_instance_memory_write(in, 3 * 65536 - 3, buf, 4, &err), SHOAL_ERR_ARG);
    assert_int_equal(shoal_instance_memory_read(in, 3 * 65536 - 4, back, 4, &err), SHOAL_OK);
    assert_memory_equal(buf, back, 4);
    shoal_instance_free(in);
    assert_int_equal(cnt.releases, 1);
}

static void test_linking(void **state) {
    (void)state;
    shoal_module *pm = load("provider"), *cm = load("consumer"), *big = load("needs_big_mem"),
                 *part = load("partial_data");
    shoal_error err;
    shoal_instance *prov = NULL, *cons = NULL, *x = NULL;
    assert_int_equal(shoal_instantiate(pm, NULL, NULL, &prov, &err), SHOAL_OK);

    /* no imports at all: unknown import */
    assert_int_equal(shoal_instantiate(cm, NULL, NULL, &x, &err), SHOAL_ERR_UNLINKABLE);
    assert_non_null(strstr(err.message, "unknown import"));
    assert_null(x);

    shoal_imports *im = shoal_imports_new();
    assert_int_equal(shoal_imports_add_instance(im, "prov", prov, &err), SHOAL_OK);
    assert_int_equal(shoal_instantiate(cm, im, NULL, &cons, &err), SHOAL_OK);
    /* shared memory: the consumer's data segment landed in the provider's memory */
    uint64_t size;
    uint8_t *pmem = shoal_instance_memory(prov, &size);
    assert_int_equal(pmem[100], 0x2a);
    pmem[5] = 77;
    assert_int_equal(call1(cons, "read", 1, I32(5)).i32, 77);
    /* mutable global shared by reference */
    assert_int_equal(call1(cons, "counter", 0).i32, 5);
    assert_int_equal(shoal_call_export(prov, "bump", NULL, 0, NULL, 0, &err), SHOAL_OK);
    assert_int_equal(call1(cons, "counter", 0).i32, 6);
    shoal_val a[2] = {I32(40)};
    assert_int_equal(shoal_call_export(cons, "set_counter", a, 1, NULL, 0, &err), SHOAL_OK);
    shoal_val g;
    shoal_valtype t;
    assert_int_equal(shoal_export_global(prov, "counter", &g, &t, &err), SHOAL_OK);
    assert_int_equal(g.i32, 40);
    assert_int_equal(t, SHOAL_I32);
    assert_true(call1(cons, "konst", 0).i64 == 77);
    /* imported function, and a shared table holding functions of both instances */
    assert_int_equal(call1(cons, "twice", 1, I32(21)).i32, 42);
    assert_int_equal(call1(cons, "via_table", 2, I32(0), I32(5)).i32, 15); /* consumer's $triple */
    assert_int_equal(call1(cons, "via_table", 2, I32(1), I32(5)).i32, 10); /* provider's twice */

    /* limits subtyping: the provider's memory is 1 page (max 8); the import wants min 2, max 4 */
    assert_int_equal(shoal_instantiate(big, im, NULL, &x, &err), SHOAL_ERR_UNLINKABLE);
    assert_non_null(strstr(err.message, "incompatible import type"));

    /* a failing data segment traps, and the earlier segment's write stays */
    assert_int_equal(shoal_instantiate(part, im, NULL, &x, &err), SHOAL_ERR_TRAP);
    assert_int_equal(err.trap, SHOAL_TRAP_MEMORY_OOB);
    assert_null(x);
    assert_int_equal(pmem[200], 7);

    /* describe imports and exports */
    shoal_extern_desc d;
    assert_int_equal(shoal_module_import_count(cm), 5);
    assert_true(shoal_module_import(cm, 4, &d));
    assert_string_equal(d.module, "prov");
    assert_string_equal(d.name, "twice");
    assert_int_equal(d.kind, SHOAL_EXTERN_FUNC);
    assert_int_equal(d.func.nparams, 1);
    assert_int_equal(d.func.params[0], SHOAL_I32);
    shoal_functype ft;
    assert_true(shoal_export_functype(cons, "konst", &ft));
    assert_int_equal(ft.nresults, 1);
    assert_int_equal(ft.results[0], SHOAL_I64);

    shoal_instance_free(cons);
    shoal_imports_free(im);
    shoal_instance_free(prov);
    shoal_module_free(pm);
    shoal_module_free(cm);
    shoal_module_free(big);
    shoal_module_free(part);
}

static void test_bad_modules(void **state) {
    (void)state;
    shoal_module *m = NULL;
    shoal_error err;
    static const uint8_t junk[] = {0, 'a', 's', 'x', 1, 0, 0, 0};
    assert_int_equal(shoal_module_load(junk, sizeof junk, &m, &err), SHOAL_ERR_MALFORMED);
    assert_null(m);
    assert_int_equal(shoal_module_load_file("/nonexistent/x.wasm", &m, &err), SHOAL_ERR_IO);
    shoal_imports *im = shoal_imports_new();
    assert_int_equal(shoal_imports_add_func(im, "a", "b", "ii", h_add3, NULL, &err), SHOAL_ERR_ARG);
    assert_int_equal(shoal_imports_add_func(im, "a", "b", "iq:", h_add3, NULL, &err), SHOAL_ERR_ARG);
    shoal_imports_free(im);
}

int main(void) {
    if (access(EXEC_WASM_DIR "/basic.wasm", R_OK) != 0) {
        fprintf(stderr, "skip: test modules not built (wat2wasm missing?)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_arith, setup, teardown),
        cmocka_unit_test_setup_teardown(test_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_immediates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_traps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recursion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fuel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_growth, setup, teardown),
        cmocka_unit_test(test_linking),
        cmocka_unit_test(test_bad_modules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
