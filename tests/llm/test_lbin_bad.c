/* test_lbin_bad.c: hostile and broken llama2.c files give clear errors (printed here) and never crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lmodel.h"

static char dir[256];

static const char *write_file(const char *name, const void *data, size_t n) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n)
        assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    return path;
}

/* A small valid checkpoint: dim 32, hidden 64, 2 layers, 4 heads, 2 kv heads, vocab 16, seq_len 8. */
static size_t valid_size(int32_t vocab) {
    size_t dim = 32, hid = 64, L = 2, V = (size_t)(vocab < 0 ? -vocab : vocab), head = 8, kv = 16, seq = 8;
    size_t floats = V * dim + L * (dim + dim * dim + 2 * kv * dim + dim * dim + dim + 3 * hid * dim) + dim + seq * head;
    if (vocab < 0)
        floats += V * dim;
    return 28 + floats * 4;
}

static uint8_t *valid_file(int32_t vocab, size_t *n) {
    *n = valid_size(vocab);
    uint8_t *b = calloc(1, *n);
    int32_t h[7] = {32, 64, 2, 4, 2, vocab, 8};
    memcpy(b, h, sizeof h);
    float one = 1.0f;
    for (size_t off = 28; off + 4 <= *n; off += 4)
        memcpy(b + off, &one, 4);
    return b;
}

static void expect_error(const char *path, shoal_status want, const char *needle) {
    lmodel *m = NULL;
    shoal_error err = {0};
    shoal_status st = lmodel_load(path, NULL, &m, &err);
    print_message("  %-28s -> status %d: %s\n", strrchr(path, '/') + 1, (int)st, err.message);
    assert_null(m);
    assert_int_equal(st, want);
    if (!strstr(err.message, needle)) {
        print_error("message lacks '%s'\n", needle);
        fail();
    }
    assert_non_null(strstr(err.message, path)); /* every message names the file */
}

static void test_valid_tied_and_untied(void **state) {
    (void)state;
    for (int untied = 0; untied < 2; untied++) {
        size_t n;
        uint8_t *b = valid_file(untied ? -16 : 16, &n);
        const char *p = write_file(untied ? "untied.bin" : "tied.bin", b, n);
        lmodel *m = NULL;
        shoal_error err = {0};
        assert_int_equal(lmodel_load(p, NULL, &m, &err), SHOAL_OK);
        assert_int_equal(m->cfg.vocab_size, 16);
        assert_int_equal(m->cfg.head_dim, 8);
        assert_int_equal(m->cfg.tied_embeddings, !untied);
        assert_true((m->output.data == m->tok_embd.data) == !untied);
        assert_int_equal(m->owned_bytes < 4096, true); /* weights stay in the mapping */
        lmodel_free(m);
        free(b);
    }
}

static void test_bad_files(void **state) {
    (void)state;
    size_t n;
    uint8_t *b = valid_file(16, &n);
    expect_error(write_file("empty.bin", b, 0), SHOAL_ERR_FORMAT, "empty");
    expect_error(write_file("short-header.bin", b, 10), SHOAL_ERR_FORMAT, "truncated llama2.c header");
    expect_error(write_file("truncated.bin", b, n - 100), SHOAL_ERR_FORMAT, "truncated llama2.c checkpoint");
    uint8_t *big = calloc(1, n + 8);
    memcpy(big, b, n);
    expect_error(write_file("trailing.bin", big, n + 8), SHOAL_ERR_FORMAT, "after the weights");
    free(big);

    int32_t h[7];
    memcpy(h, b, sizeof h);
    int32_t bad[7];
    memcpy(bad, h, sizeof h);
    bad[0] = 0;
    expect_error(write_file("zero-dim.bin", bad, sizeof bad), SHOAL_ERR_FORMAT, "header field dim is 0");
    memcpy(bad, h, sizeof h);
    bad[2] = -3;
    expect_error(write_file("negative-layers.bin", bad, sizeof bad), SHOAL_ERR_FORMAT, "n_layers is -3");
    memcpy(bad, h, sizeof h);
    bad[5] = INT32_MIN;
    expect_error(write_file("vocab-min.bin", bad, sizeof bad), SHOAL_ERR_FORMAT, "vocab_size");
    memcpy(bad, h, sizeof h);
    bad[3] = 3;
    expect_error(write_file("bad-heads.bin", bad, sizeof bad), SHOAL_ERR_FORMAT, "bad head counts");
    memcpy(bad, h, sizeof h);
    bad[4] = 3;
    expect_error(write_file("bad-kv-heads.bin", bad, sizeof bad), SHOAL_ERR_FORMAT, "bad head counts");
    /* Sizes whose byte count would overflow 32 (and, multiplied naively, 64) bits. */
    int32_t huge[7] = {INT32_MAX, INT32_MAX, INT32_MAX, 1, 1, INT32_MAX, INT32_MAX};
    expect_error(write_file("huge.bin", huge, sizeof huge), SHOAL_ERR_FORMAT, "implausible");
    int32_t large[7] = {1 << 20, 1 << 20, 4096, 4096, 4096, 1 << 24, 1 << 24};
    expect_error(write_file("large.bin", large, sizeof large), SHOAL_ERR_FORMAT, "truncated llama2.c checkpoint");
    int32_t v2[7] = {0x616b3432, 2, 32, 64, 2, 4, 2};
    expect_error(write_file("export-v2.bin", v2, sizeof v2), SHOAL_ERR_UNSUPPORTED, "version 2");
    free(b);
}

static void test_missing(void **state) {
    (void)state;
    char p[512];
    snprintf(p, sizeof p, "%s/does-not-exist.bin", dir);
    expect_error(p, SHOAL_ERR_IO, "cannot open");
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/shoal-lbin-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_tied_and_untied),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_missing),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
