/*
 * test_safet: the safetensors reader and the config.json reader against valid and damaged inputs (each
 * failure's message is printed and checked), and the sharded index against missing / inconsistent shards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lsafet.h"

/* A safetensors image: header JSON (padded to 8) + `data` bytes of 0, 1, 2, ... */
static uint8_t *make(const char *json, size_t data, size_t *size) {
    size_t h = strlen(json), hp = (h + 7) / 8 * 8;
    uint8_t *p = malloc(8 + hp + data + 1);
    assert_non_null(p);
    uint64_t n = hp;
    memcpy(p, &n, 8);
    memcpy(p + 8, json, h);
    memset(p + 8 + h, ' ', hp - h);
    for (size_t i = 0; i < data; i++) p[8 + hp + i] = (uint8_t)i;
    *size = 8 + hp + data;
    return p;
}

#define GOOD                                                                                                       \
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"                                        \
    "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},\"__metadata__\":{\"format\":\"pt\"}}"

static void expect_fail(const char *json, size_t data, const char *want, const char *what) {
    size_t size;
    uint8_t *p = make(json, data, &size);
    lsafet *s = (lsafet *)1;
    shoal_error err = {0};
    shoal_status st = lsafet_open_mem(p, size, "t.safetensors", &s, &err);
    printf("  %-30s -> %s\n", what, err.message);
    assert_int_equal(st, SHOAL_ERR_FORMAT);
    assert_null(s);
    assert_non_null(strstr(err.message, "t.safetensors"));
    if (!strstr(err.message, want)) fail_msg("%s: expected '%s' in: %s", what, want, err.message);
    free(p);
}

static void test_valid(void **state) {
    (void)state;
    size_t size;
    uint8_t *p = make(GOOD, 32, &size);
    lsafet *s;
    shoal_error err = {0};
    assert_int_equal(lsafet_open_mem(p, size, "t.safetensors", &s, &err), SHOAL_OK);
    assert_int_equal(s->n_tensors, 2);
    const lsafet_tensor *a = lsafet_find(s, "a"), *b = lsafet_find(s, "b");
    assert_true(a && b && !lsafet_find(s, "__metadata__") && !lsafet_find(s, "c"));
    assert_int_equal(a->ldt, LDT_F32);
    assert_int_equal(b->ldt, LDT_BF16);
    assert_int_equal(a->n_dims, 2);
    assert_int_equal(a->shape[0], 2);
    assert_int_equal(a->shape[1], 3);
    assert_int_equal(a->nbytes, 24);
    assert_int_equal(((const uint8_t *)b->data)[0], 24);
    lsafet_close(s);
    free(p);
}

static void test_truncated_everywhere(void **state) {
    (void)state;
    size_t size;
    uint8_t *p = make(GOOD, 32, &size);
    for (size_t n = 0; n < size; n++) {
        lsafet *s = (lsafet *)1;
        shoal_error err = {0};
        if (lsafet_open_mem(p, n, "t.safetensors", &s, &err) != SHOAL_ERR_FORMAT) fail_msg("prefix %zu accepted", n);
        assert_null(s);
        if (n == 5 || n == 60 || n == size - 1) printf("  truncated to %-16zu -> %s\n", n, err.message);
    }
    free(p);
}

static void test_damage(void **state) {
    (void)state;
    size_t size;
    uint8_t *p = make(GOOD, 32, &size);
    uint64_t huge = 1ull << 62;
    memcpy(p, &huge, 8);
    lsafet *s;
    shoal_error err = {0};
    assert_int_equal(lsafet_open_mem(p, size, "t.safetensors", &s, &err), SHOAL_ERR_FORMAT);
    printf("  %-30s -> %s\n", "huge header length", err.message);
    assert_non_null(strstr(err.message, "past the end"));
    free(p);

    expect_fail("{\"a\":{\"dtype\":\"F32\",", 8, "not valid JSON", "bad JSON");
    expect_fail("[1,2,3]", 0, "not a JSON object", "header is an array");
    expect_fail("{\"a\":5}", 0, "not an object", "entry is a number");
    expect_fail("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "needs \"dtype\"", "no dtype");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "needs \"dtype\"", "no shape");
    expect_fail("{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "unknown dtype 'F33'",
                "unknown dtype");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape[0]", "negative dim");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, "shape[0]", "fractional dim");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "dimensions",
                "9 dimensions");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
                "overflows", "element count overflow");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4, "data_offsets must", "one offset");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "begin <= end", "begin > end");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "past the end",
                "offsets past the end");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, "need 8", "size mismatch");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                8, "overlap", "overlapping tensors");
    expect_fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                8, "appears twice", "duplicate name");
}

static void expect_cfg_fail(const char *json, shoal_status want_st, const char *want, const char *what) {
    lmodel_config c;
    shoal_error err = {0};
    shoal_status st = lsafet_config_parse(json, strlen(json), "config.json", &c, &err);
    printf("  %-30s -> %s\n", what, err.message);
    assert_int_equal(st, want_st);
    if (!strstr(err.message, want)) fail_msg("%s: expected '%s' in: %s", what, want, err.message);
}

#define CFG_BASE "\"model_type\":\"llama\",\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":8,"
#define CFG_REST "\"intermediate_size\":172,\"vocab_size\":512"

static void test_config(void **state) {
    (void)state;
    lmodel_config c;
    shoal_error err = {0};
    const char *ok = "{" CFG_BASE CFG_REST ",\"num_key_value_heads\":4,\"rms_norm_eps\":1e-05,\"rope_theta\":500000.0,"
                     "\"tie_word_embeddings\":true,\"max_position_embeddings\":2048,\"rope_scaling\":{\"rope_type\":"
                     "\"llama3\",\"factor\":32.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
                     "\"original_max_position_embeddings\":8192}}";
    assert_int_equal(lsafet_config_parse(ok, strlen(ok), "config.json", &c, &err), SHOAL_OK);
    assert_int_equal(c.dim, 64);
    assert_int_equal(c.n_kv_heads, 4);
    assert_int_equal(c.hidden_dim, 172);
    assert_int_equal(c.seq_len, 2048);
    assert_true(c.tied_embeddings);
    assert_true(c.rope_theta == 500000.0f);
    assert_true(c.rope_scaling.enabled && c.rope_scaling.factor == 32.0f && c.rope_scaling.original_context == 8192);
    const char *minimal = "{" CFG_BASE CFG_REST "}";
    assert_int_equal(lsafet_config_parse(minimal, strlen(minimal), "config.json", &c, &err), SHOAL_OK);
    assert_int_equal(c.n_kv_heads, 8);
    assert_false(c.tied_embeddings);
    assert_false(c.rope_scaling.enabled);

    expect_cfg_fail("{" CFG_BASE "\"vocab_size\":512}", SHOAL_ERR_FORMAT, "\"intermediate_size\" is missing",
                    "missing intermediate_size");
    expect_cfg_fail("{" CFG_BASE CFG_REST ",\"num_key_value_heads\":\"4\"}", SHOAL_ERR_FORMAT,
                    "\"num_key_value_heads\" must be", "kv heads as a string");
    expect_cfg_fail("{" CFG_BASE CFG_REST ",\"num_key_value_heads\":-4}", SHOAL_ERR_FORMAT,
                    "\"num_key_value_heads\" must be", "negative kv heads");
    expect_cfg_fail("{\"model_type\":\"mistral\"}", SHOAL_ERR_UNSUPPORTED, "not supported", "other architecture");
    expect_cfg_fail("{" CFG_BASE CFG_REST ",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}}", SHOAL_ERR_UNSUPPORTED,
                    "yarn", "yarn rope scaling");
    expect_cfg_fail("{" CFG_BASE CFG_REST ",\"tie_word_embeddings\":\"yes\"}", SHOAL_ERR_FORMAT, "true or false",
                    "tie as a string");
    expect_cfg_fail("{" CFG_BASE CFG_REST ",\"attention_bias\":true}", SHOAL_ERR_UNSUPPORTED, "attention_bias",
                    "attention bias");
    expect_cfg_fail("{" CFG_BASE CFG_REST ",\"rms_norm_eps\":\"small\"}", SHOAL_ERR_FORMAT, "\"rms_norm_eps\" must",
                    "eps as a string");
    expect_cfg_fail("not json", SHOAL_ERR_FORMAT, "not a JSON object", "not JSON");
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void test_index(void **state) {
    (void)state;
    char dir[] = "/tmp/shoal-test-safet-XXXXXX", path[256], idx[256];
    assert_non_null(mkdtemp(dir));
    size_t size;
    uint8_t *p = make(GOOD, 32, &size);
    snprintf(path, sizeof path, "%s/part1.safetensors", dir);
    write_file(path, p, size);
    free(p);
    p = make("{\"c\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}", 8, &size);
    snprintf(path, sizeof path, "%s/part2.safetensors", dir);
    write_file(path, p, size);
    free(p);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    const char *good = "{\"weight_map\":{\"a\":\"part1.safetensors\",\"b\":\"part1.safetensors\",\"c\":\"part2.safetensors\"}}";
    write_file(idx, good, strlen(good));
    lsafet *s;
    shoal_error err = {0};
    assert_int_equal(lsafet_open(dir, NULL, &s, &err), SHOAL_OK); /* the folder finds the index */
    assert_int_equal(s->n_files, 2);
    assert_int_equal(s->n_tensors, 3);
    assert_int_equal(lsafet_find(s, "c")->ldt, LDT_F16);
    lsafet_close(s);

    const struct { const char *json, *want, *what; } bad[] = {
        {"{\"weight_map\":{\"a\":\"part1.safetensors\",\"b\":\"part1.safetensors\",\"c\":\"part1.safetensors\"}}",
         "is not there", "index names the wrong shard"},
        {"{\"weight_map\":{\"a\":\"part1.safetensors\",\"c\":\"part2.safetensors\"}}", "the weight_map lists 2",
         "index misses a tensor"},
        {"{\"weight_map\":{\"a\":\"../etc/passwd\"}}", "same folder", "shard path escapes the folder"},
        {"{\"weight_map\":{\"a\":\"part9.safetensors\"}}", "cannot open", "missing shard"},
        {"{\"metadata\":{}}", "no \"weight_map\"", "no weight_map"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(idx, bad[i].json, strlen(bad[i].json));
        s = (lsafet *)1;
        assert_int_not_equal(lsafet_open(idx, NULL, &s, &err), SHOAL_OK);
        assert_null(s);
        printf("  %-30s -> %s\n", bad[i].what, err.message);
        if (!strstr(err.message, bad[i].want)) fail_msg("%s: expected '%s' in: %s", bad[i].what, bad[i].want, err.message);
    }
    unlink(idx);
    snprintf(path, sizeof path, "%s/part1.safetensors", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/part2.safetensors", dir);
    unlink(path);
    assert_int_equal(lsafet_open(dir, NULL, &s, &err), SHOAL_ERR_NOTFOUND);
    printf("  %-30s -> %s\n", "empty folder", err.message);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),  cmocka_unit_test(test_truncated_everywhere), cmocka_unit_test(test_damage),
        cmocka_unit_test(test_config), cmocka_unit_test(test_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
