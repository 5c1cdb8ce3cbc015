/*
 * test_gguf: the GGUF reader against a hand-built file (built here byte by byte, not with lgguf's writer)
 * and every kind of damage: truncation at every byte, bad magic and versions, impossible counts and
 * lengths, unknown types, deep nesting, duplicates, bad alignment, bad shapes, offsets past the end,
 * misaligned and overlapping tensors. Each failure's message is printed, and checked for the words that
 * say what is wrong. Also: the writer round trip and the typed getters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lgguf.h"

/* ---- a byte builder ---- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void u8(buf *b, uint8_t v) { put(b, &v, 1); }
static void u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void str(buf *b, const char *s) {
    u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void pad_to(buf *b, size_t align) {
    while (b->n % align) u8(b, 0);
}

/* Where interesting fields of the built file are, for patching. */
typedef struct layout {
    size_t version, n_tensors, n_kv, first_key_len, arch_type, arr_count, arr_elem_type, align_val;
    size_t t_a_ndims, t_a_ne0, t_a_type, t_a_off, t_b_type, t_b_off, data;
} layout;

typedef struct opts {
    uint64_t b_offset;    /* data offset of tensor "b" (valid: 32) */
    const char *b_name;   /* "b" */
    uint32_t b_ne0;       /* 32 */
    int nest;             /* depth of the nested array (valid: 2) */
    bool dup_key;
} opts;

static const opts good = {32, "b", 32, 2, false};

/* A GGUF v3 file: 9 metadata entries covering every value type (nested arrays included) and two tensors,
 * "a" F32 [4, 2] at data offset 0 and "b" Q8_0 [32] at data offset 32. */
static buf build(const opts *o, layout *L) {
    buf b = {0};
    u32(&b, LGGUF_MAGIC);
    L->version = b.n;
    u32(&b, 3);
    L->n_tensors = b.n;
    u64(&b, 2);
    L->n_kv = b.n;
    u64(&b, 9 + (o->dup_key ? 1 : 0));
    L->first_key_len = b.n;
    str(&b, "general.architecture");
    L->arch_type = b.n;
    u32(&b, LGGUF_STR);
    str(&b, "llama");
    str(&b, "general.alignment");
    u32(&b, LGGUF_U32);
    L->align_val = b.n;
    u32(&b, 32);
    str(&b, "t.u8");
    u32(&b, LGGUF_U8);
    u8(&b, 200);
    str(&b, "t.i16");
    u32(&b, LGGUF_I16);
    put(&b, &(int16_t){-300}, 2);
    str(&b, "t.i64");
    u32(&b, LGGUF_I64);
    put(&b, &(int64_t){-5}, 8);
    str(&b, "t.f64");
    u32(&b, LGGUF_F64);
    put(&b, &(double){2.5}, 8);
    str(&b, "t.bool");
    u32(&b, LGGUF_BOOL);
    u8(&b, 1);
    str(&b, "t.arr_u32");
    u32(&b, LGGUF_ARR);
    L->arr_elem_type = b.n;
    u32(&b, LGGUF_U32);
    L->arr_count = b.n;
    u64(&b, 3);
    u32(&b, 7);
    u32(&b, 8);
    u32(&b, 9);
    /* t.nested: depth o->nest of single-element arrays around ["x", "yz"] */
    str(&b, "t.nested");
    u32(&b, LGGUF_ARR);
    for (int d = 1; d < o->nest; d++) {
        u32(&b, LGGUF_ARR);
        u64(&b, 1);
    }
    u32(&b, LGGUF_STR);
    u64(&b, 2);
    str(&b, "x");
    str(&b, "yz");
    if (o->dup_key) {
        str(&b, "t.u8");
        u32(&b, LGGUF_U8);
        u8(&b, 1);
    }
    /* tensor infos */
    str(&b, "a");
    L->t_a_ndims = b.n;
    u32(&b, 2);
    L->t_a_ne0 = b.n;
    u64(&b, 4);
    u64(&b, 2);
    L->t_a_type = b.n;
    u32(&b, LGGUF_T_F32);
    L->t_a_off = b.n;
    u64(&b, 0);
    str(&b, o->b_name);
    u32(&b, 1);
    u64(&b, o->b_ne0);
    L->t_b_type = b.n;
    u32(&b, LGGUF_T_Q8_0);
    L->t_b_off = b.n;
    u64(&b, o->b_offset);
    pad_to(&b, 32);
    L->data = b.n;
    for (int i = 0; i < 8; i++) put(&b, &(float){(float)i}, 4);
    for (int i = 0; i < 34; i++) u8(&b, (uint8_t)i);
    return b;
}

static void patch32(buf *b, size_t at, uint32_t v) { memcpy(b->p + at, &v, 4); }
static void patch64(buf *b, size_t at, uint64_t v) { memcpy(b->p + at, &v, 8); }

/* Parses b and expects SHOAL_ERR_FORMAT with `want` in the message; prints the message. */
static void expect_fail(const buf *b, size_t size, const char *want, const char *what) {
    lgguf *g = (lgguf *)1;
    shoal_error err = {0};
    shoal_status st = lgguf_open_mem(b->p, size, "test.gguf", &g, &err);
    printf("  %-28s -> %s\n", what, err.message);
    assert_int_equal(st, SHOAL_ERR_FORMAT);
    assert_null(g);
    assert_non_null(strstr(err.message, "test.gguf"));
    if (want && !strstr(err.message, want)) fail_msg("%s: expected '%s' in: %s", what, want, err.message);
}

static void test_valid(void **state) {
    (void)state;
    layout L;
    buf b = build(&good, &L);
    lgguf *g;
    shoal_error err = {0};
    assert_int_equal(lgguf_open_mem(b.p, b.n, "test.gguf", &g, &err), SHOAL_OK);
    assert_int_equal(g->version, 3);
    assert_int_equal(g->n_kv, 9);
    assert_int_equal(g->n_tensors, 2);
    assert_int_equal(g->data_offset, L.data);
    uint64_t u;
    int64_t i;
    double f;
    assert_true(lgguf_value_u64(lgguf_get(g, "t.u8"), &u) && u == 200);
    assert_true(lgguf_value_i64(lgguf_get(g, "t.i16"), &i) && i == -300);
    assert_false(lgguf_value_u64(lgguf_get(g, "t.i64"), &u)); /* negative */
    assert_true(lgguf_value_f64(lgguf_get(g, "t.f64"), &f) && f == 2.5);
    assert_true(lgguf_get(g, "t.bool")->b);
    const lgguf_value *a = lgguf_get(g, "t.arr_u32");
    assert_true(a && a->arr.n == 3 && lgguf_arr_u64(a, 2, &u) && u == 9);
    assert_false(lgguf_arr_u64(a, 3, &u));
    const lgguf_value *n = lgguf_get(g, "t.nested");
    assert_true(n && n->arr.type == LGGUF_ARR && n->arr.n == 1);
    const lgguf_value *inner = &n->arr.items[0];
    assert_true(inner->arr.type == LGGUF_STR && inner->arr.n == 2);
    assert_true(lgguf_str_eq(inner->arr.items[1].s, "yz"));
    assert_null(lgguf_get(g, "nope"));
    const lgguf_tensor *ta = lgguf_tensor_find(g, "a"), *tb = lgguf_tensor_find(g, "b");
    assert_true(ta && tb);
    assert_int_equal(ta->ne[0], 4);
    assert_int_equal(ta->ne[1], 2);
    assert_int_equal(ta->nbytes, 32);
    assert_int_equal(tb->nbytes, 34);
    assert_ptr_equal(ta->data, b.p + L.data);
    float x;
    memcpy(&x, (const uint8_t *)ta->data + 12, 4);
    assert_true(x == 3.0f);
    /* typed getters */
    uint32_t v32;
    lgguf_str s;
    assert_int_equal(lgguf_req_u32(g, "general.alignment", &v32, &err), SHOAL_OK);
    assert_int_equal(v32, 32);
    assert_int_equal(lgguf_req_u32(g, "missing.key", &v32, &err), SHOAL_ERR_FORMAT);
    printf("  %-28s -> %s\n", "required key missing", err.message);
    assert_non_null(strstr(err.message, "is missing"));
    assert_int_equal(lgguf_req_u32(g, "general.architecture", &v32, &err), SHOAL_ERR_FORMAT);
    printf("  %-28s -> %s\n", "key of the wrong type", err.message);
    assert_non_null(strstr(err.message, "has type string"));
    assert_int_equal(lgguf_opt_u32(g, "t.i64", 0, &v32, &err), SHOAL_ERR_FORMAT);
    printf("  %-28s -> %s\n", "key out of range", err.message);
    assert_int_equal(lgguf_req_str(g, "general.architecture", &s, &err), SHOAL_OK);
    assert_true(lgguf_str_eq(s, "llama"));
    lgguf_close(g);
    /* Version 2 has the same layout (v3 only added big-endian files): accepted. */
    patch32(&b, L.version, 2);
    assert_int_equal(lgguf_open_mem(b.p, b.n, "test.gguf", &g, &err), SHOAL_OK);
    assert_int_equal(g->version, 2);
    lgguf_close(g);
    free(b.p);
}

static void test_truncated_everywhere(void **state) {
    (void)state;
    layout L;
    buf b = build(&good, &L);
    /* Every proper prefix must fail cleanly (the last tensor ends at the end of the file). */
    for (size_t n = 0; n < b.n; n++) {
        lgguf *g = (lgguf *)1;
        shoal_error err = {0};
        shoal_status st = lgguf_open_mem(b.p, n, "test.gguf", &g, &err);
        if (st != SHOAL_ERR_FORMAT) fail_msg("prefix of %zu bytes: status %d", n, st);
        assert_null(g);
        if (n == 3 || n == 10 || n == 30 || n == L.arr_count + 4 || n == L.t_b_off + 2 || n == b.n - 1)
            printf("  truncated to %-14zu -> %s\n", n, err.message);
    }
    free(b.p);
}

static void test_header_damage(void **state) {
    (void)state;
    layout L;
    buf b = build(&good, &L), c = {0};
    c.p = malloc(b.n);
    c.n = b.n;
#define FRESH() memcpy(c.p, b.p, b.n)
    FRESH();
    memcpy(c.p, "GGUX", 4);
    expect_fail(&c, c.n, "bad magic", "bad magic");
    FRESH();
    patch32(&c, L.version, 1);
    expect_fail(&c, c.n, "version 1", "version 1");
    FRESH();
    patch32(&c, L.version, 4);
    expect_fail(&c, c.n, "unsupported GGUF version 4", "version 4");
    FRESH();
    patch32(&c, L.version, 0x03000000u);
    expect_fail(&c, c.n, "big-endian", "big-endian file");
    FRESH();
    patch64(&c, L.n_kv, 1ull << 60);
    expect_fail(&c, c.n, "metadata count", "huge metadata count");
    FRESH();
    patch64(&c, L.n_tensors, 1ull << 40);
    expect_fail(&c, c.n, "tensor count", "huge tensor count");
    FRESH();
    patch64(&c, L.n_kv, 12); /* more entries than there are: runs into the tensor infos */
    expect_fail(&c, c.n, NULL, "metadata count too large");
    FRESH();
    patch64(&c, L.first_key_len, UINT64_MAX - 3);
    expect_fail(&c, c.n, "past the end", "huge string length");
    FRESH();
    patch32(&c, L.arch_type, 13);
    expect_fail(&c, c.n, "unknown value type 13", "unknown value type");
    FRESH();
    patch32(&c, L.arr_elem_type, 77);
    expect_fail(&c, c.n, "unknown element type 77", "unknown array element type");
    FRESH();
    patch64(&c, L.arr_count, 1ull << 62);
    expect_fail(&c, c.n, "more than the", "huge array count");
    FRESH();
    patch32(&c, L.align_val, 24);
    expect_fail(&c, c.n, "power of two", "alignment 24");
    FRESH();
    patch32(&c, L.align_val, 0);
    expect_fail(&c, c.n, "power of two", "alignment 0");
    FRESH();
    patch32(&c, L.t_a_ndims, 5);
    expect_fail(&c, c.n, "dimensions", "5 dimensions");
    FRESH();
    patch32(&c, L.t_a_ndims, 0);
    expect_fail(&c, c.n, "dimensions", "0 dimensions");
    FRESH();
    patch64(&c, L.t_a_ne0, 1ull << 63);
    expect_fail(&c, c.n, "negative", "dimension >= 2^63");
    FRESH();
    patch64(&c, L.t_a_ne0, 1ull << 62);
    patch64(&c, L.t_a_ne0 + 8, 1ull << 10);
    expect_fail(&c, c.n, "overflows", "element count overflow");
    FRESH();
    patch32(&c, L.t_a_type, 99);
    expect_fail(&c, c.n, "unknown ggml type 99", "unknown tensor type");
    FRESH();
    patch32(&c, L.t_a_type, 4); /* Q4_2, retired by ggml */
    expect_fail(&c, c.n, "unknown ggml type 4", "retired tensor type");
    FRESH();
    patch64(&c, L.t_a_off, 33);
    expect_fail(&c, c.n, "alignment", "misaligned offset");
    FRESH();
    patch64(&c, L.t_b_off, 64);
    expect_fail(&c, c.n, "past the end", "offset past the end");
    FRESH();
    patch64(&c, L.t_b_off, UINT64_MAX - 31);
    expect_fail(&c, c.n, "past the end", "offset near 2^64");
    FRESH();
    patch32(&c, L.t_b_type, LGGUF_T_Q4_K); /* 32 values are not a whole Q4_K block of 256 */
    expect_fail(&c, c.n, "not a multiple", "row not whole blocks");
    FRESH();
    patch32(&c, L.t_b_type, LGGUF_T_F32); /* 128 bytes: more than the file has */
    expect_fail(&c, c.n, "past the end", "type makes it too big");
#undef FRESH
    free(c.p);
    free(b.p);
}

static void test_structural_damage(void **state) {
    (void)state;
    layout L;
    opts o = good;
    buf b;
    o.b_offset = 0; /* "b" on top of "a" */
    b = build(&o, &L);
    expect_fail(&b, b.n, "overlap", "overlapping tensors");
    free(b.p);
    o = good;
    o.b_name = "a";
    b = build(&o, &L);
    expect_fail(&b, b.n, "appears twice", "duplicate tensor name");
    free(b.p);
    o = good;
    o.dup_key = true;
    b = build(&o, &L);
    expect_fail(&b, b.n, "appears twice", "duplicate metadata key");
    free(b.p);
    o = good;
    o.nest = LGGUF_MAX_ARRAY_DEPTH + 2;
    b = build(&o, &L);
    expect_fail(&b, b.n, "nested", "arrays nested too deep");
    free(b.p);
    o = good;
    o.b_ne0 = 31;
    b = build(&o, &L);
    expect_fail(&b, b.n, "not a multiple of the Q8_0 block size", "Q8_0 row of 31");
    free(b.p);
    o = good;
    o.nest = LGGUF_MAX_ARRAY_DEPTH; /* the deepest allowed */
    b = build(&o, &L);
    lgguf *g;
    shoal_error err = {0};
    assert_int_equal(lgguf_open_mem(b.p, b.n, "test.gguf", &g, &err), SHOAL_OK);
    lgguf_close(g);
    free(b.p);
}

static void test_writer_round_trip(void **state) {
    (void)state;
    char path[] = "/tmp/shoal-test-gguf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    shoal_error err = {0};
    layout L;
    buf src = build(&good, &L);
    lgguf *in;
    assert_int_equal(lgguf_open_mem(src.p, src.n, "src", &in, &err), SHOAL_OK);

    lgguf_writer *w = lgguf_writer_new();
    assert_int_equal(lgguf_w_alignment(w, 64, &err), SHOAL_OK);
    assert_int_equal(lgguf_w_str(w, "s", "hello", 5, &err), SHOAL_OK);
    assert_int_equal(lgguf_w_f32(w, "f", 0.25f, &err), SHOAL_OK);
    assert_int_equal(lgguf_w_i32(w, "i", -7, &err), SHOAL_OK);
    assert_int_equal(lgguf_w_value(w, "nested", lgguf_get(in, "t.nested"), &err), SHOAL_OK);
    assert_int_equal(lgguf_w_value(w, "arr", lgguf_get(in, "t.arr_u32"), &err), SHOAL_OK);
    assert_int_equal(lgguf_w_i32(w, "i", 1, &err), SHOAL_ERR_ARG); /* duplicate */
    printf("  %-28s -> %s\n", "writer: duplicate key", err.message);
    const char *names[2] = {"one", "three"};
    assert_int_equal(lgguf_w_arr_str(w, "strs", 2, names, NULL, &err), SHOAL_OK);
    float data[6] = {1, 2, 3, 4, 5, 6};
    uint64_t ne[2] = {3, 2};
    assert_int_equal(lgguf_w_tensor(w, "m", LGGUF_T_F32, 2, ne, data, NULL, NULL, &err), SHOAL_OK);
    uint64_t ne31 = 31;
    assert_int_equal(lgguf_w_tensor(w, "q", LGGUF_T_Q8_0, 1, &ne31, data, NULL, NULL, &err), SHOAL_ERR_ARG);
    printf("  %-28s -> %s\n", "writer: bad shape", err.message);
    assert_int_equal(lgguf_w_tensor(w, "v", LGGUF_T_F32, 1, ne, data + 1, NULL, NULL, &err), SHOAL_OK);
    assert_int_equal(lgguf_writer_write(w, path, NULL, NULL, &err), SHOAL_OK);
    lgguf_writer_free(w);
    lgguf_close(in);
    free(src.p);

    lgguf *g;
    assert_int_equal(lgguf_open(path, &g, &err), SHOAL_OK);
    assert_int_equal(g->alignment, 64);
    assert_int_equal(g->data_offset % 64, 0);
    lgguf_str s;
    assert_int_equal(lgguf_req_str(g, "s", &s, &err), SHOAL_OK);
    assert_true(lgguf_str_eq(s, "hello"));
    float f;
    int32_t i;
    assert_int_equal(lgguf_req_f32(g, "f", &f, &err), SHOAL_OK);
    assert_true(f == 0.25f);
    assert_int_equal(lgguf_opt_i32(g, "i", 0, &i, &err), SHOAL_OK);
    assert_int_equal(i, -7);
    const lgguf_value *n = lgguf_get(g, "nested");
    assert_true(n && n->arr.n == 1 && lgguf_str_eq(n->arr.items[0].arr.items[0].s, "x"));
    uint64_t u;
    assert_true(lgguf_arr_u64(lgguf_get(g, "arr"), 1, &u) && u == 8);
    const lgguf_value *strs;
    assert_int_equal(lgguf_req_arr(g, "strs", LGGUF_STR, &strs, &err), SHOAL_OK);
    assert_true(lgguf_str_eq(strs->arr.items[1].s, "three"));
    assert_int_equal(lgguf_req_arr(g, "strs", LGGUF_U32, &strs, &err), SHOAL_ERR_FORMAT);
    printf("  %-28s -> %s\n", "array of the wrong type", err.message);
    const lgguf_tensor *m = lgguf_tensor_find(g, "m"), *v = lgguf_tensor_find(g, "v");
    assert_true(m && v);
    assert_memory_equal(m->data, data, sizeof data);
    assert_memory_equal(v->data, data + 1, 12);
    assert_int_equal(v->offset % 64, 0);
    lgguf_close(g);
    unlink(path);
}

static void test_files(void **state) {
    (void)state;
    shoal_error err = {0};
    lgguf *g = (lgguf *)1;
    assert_int_equal(lgguf_open("/nonexistent/x.gguf", &g, &err), SHOAL_ERR_IO);
    assert_null(g);
    printf("  %-28s -> %s\n", "missing file", err.message);
    assert_int_equal(lgguf_open("/dev/null", &g, &err), SHOAL_ERR_IO);
    printf("  %-28s -> %s\n", "not a regular file", err.message);
    char path[] = "/tmp/shoal-test-gguf-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(lgguf_open(path, &g, &err), SHOAL_ERR_FORMAT);
    printf("  %-28s -> %s\n", "empty file", err.message);
    unlink(path);
    /* The real vocabulary files, when present. */
    const char *models = getenv("SHOAL_MODELS");
    char vp[1024];
    snprintf(vp, sizeof vp, "%s/vocab/ggml-vocab-llama-bpe.gguf", models ? models : "/nonexistent");
    if (access(vp, R_OK) == 0) {
        assert_int_equal(lgguf_open(vp, &g, &err), SHOAL_OK);
        const lgguf_value *t;
        assert_int_equal(lgguf_req_arr(g, "tokenizer.ggml.tokens", LGGUF_STR, &t, &err), SHOAL_OK);
        assert_int_equal(t->arr.n, 128256);
        assert_int_equal(lgguf_req_arr(g, "tokenizer.ggml.merges", LGGUF_STR, &t, &err), SHOAL_OK);
        assert_int_equal(t->arr.n, 280147);
        lgguf_close(g);
    } else {
        printf("  (no %s: skipped the real-file check)\n", vp);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_header_damage),
        cmocka_unit_test(test_structural_damage),
        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
