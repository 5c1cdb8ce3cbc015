/* test_lsession.c: sessions on a real model (stories260K): batching, interleaving, reset, errors, thread
 * counts, KV dtypes, and every weight dtype (the model re-encoded in memory) against the f32 logits. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lbackend.h"
#include "lsession.h"

static char model_path[1024];
static lmodel *model;
static lbackend *be1, *be2; /* 1 and 2 threads */
static const int32_t prompt[] = {1, 300, 400, 500, 301, 260, 270, 45, 67, 89, 123, 234, 345, 456, 78, 90, 111};
#define NP (sizeof prompt / sizeof prompt[0])

static double rel_err(const float *a, const float *b, uint32_t n) {
    double d = 0, m = 0;
    for (uint32_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / m;
}

static lsession *new_session(lmodel *m, lmodel_dtype kv, uint32_t batch) {
    lsession_opts o = {0, kv, batch};
    lsession *s = NULL;
    shoal_error err = {0};
    if (lsession_new(m, &o, &s, &err) != SHOAL_OK) {
        print_error("lsession_new: %s\n", err.message);
        fail();
    }
    return s;
}

/* Greedy run: prompt, then n decode steps; logits of every step into out[n+1][V]. */
static void run_greedy(lsession *s, uint32_t n, float *out) {
    uint32_t V = s->model->cfg.vocab_size;
    shoal_error err = {0};
    assert_int_equal(lsession_prefill(s, prompt, NP, out, &err), SHOAL_OK);
    for (uint32_t i = 0; i < n; i++) {
        const float *l = out + (size_t)i * V;
        int32_t best = 0;
        for (uint32_t v = 1; v < V; v++)
            if (l[v] > l[best])
                best = (int32_t)v;
        assert_int_equal(lsession_decode(s, best, out + (size_t)(i + 1) * V, &err), SHOAL_OK);
    }
}

static void test_batching(void **state) {
    (void)state;
    uint32_t V = model->cfg.vocab_size;
    float *a = malloc(V * 4), *b = malloc(V * 4), *c = malloc(V * 4);
    shoal_error err = {0};
    lsession *s1 = new_session(model, LDT_F32, 0), *s2 = new_session(model, LDT_F32, 4), *s3 = new_session(model, LDT_F32, 1);
    assert_int_equal(lsession_prefill(s1, prompt, NP, a, &err), SHOAL_OK); /* one batch */
    assert_int_equal(lsession_prefill(s2, prompt, NP, b, &err), SHOAL_OK); /* batches of 4 */
    for (uint32_t i = 0; i < NP; i++)                                       /* token by token */
        assert_int_equal(lsession_decode(s3, prompt[i], c, &err), SHOAL_OK);
    print_message("  batch vs batches-of-4 %.3g, batch vs decode loop %.3g\n", rel_err(b, a, V), rel_err(c, a, V));
    assert_true(rel_err(b, a, V) < 1e-5);
    assert_true(rel_err(c, a, V) < 1e-5);
    assert_int_equal(s1->pos, NP);
    /* reset: the same logits again, from the reused cache */
    lsession_reset(s1);
    assert_int_equal(s1->pos, 0);
    assert_int_equal(lsession_prefill(s1, prompt, NP, b, &err), SHOAL_OK);
    assert_memory_equal(a, b, V * 4);
    lsession_free(s1);
    lsession_free(s2);
    lsession_free(s3);
    free(a);
    free(b);
    free(c);
}

static void test_interleaved_sessions(void **state) {
    (void)state;
    uint32_t V = model->cfg.vocab_size, n = 40;
    float *alone = malloc((size_t)(n + 1) * V * 4), *x = malloc(V * 4), *y = malloc(V * 4);
    lsession *s = new_session(model, LDT_F32, 0);
    run_greedy(s, n, alone);
    lsession_free(s);
    /* Two sessions of one model, stepped alternately, each as if alone. */
    lsession *a = new_session(model, LDT_F32, 0), *b = new_session(model, LDT_F32, 0);
    shoal_error err = {0};
    assert_int_equal(lsession_prefill(a, prompt, NP, x, &err), SHOAL_OK);
    assert_int_equal(lsession_prefill(b, prompt, 3, y, &err), SHOAL_OK);
    for (uint32_t i = 0; i < n; i++) {
        assert_memory_equal(x, alone + (size_t)i * V, V * 4);
        int32_t best = 0;
        for (uint32_t v = 1; v < V; v++)
            if (x[v] > x[best])
                best = (int32_t)v;
        assert_int_equal(lsession_decode(a, best, x, &err), SHOAL_OK);
        assert_int_equal(lsession_decode(b, (int32_t)(i % 500), y, &err), SHOAL_OK);
    }
    lsession_free(a);
    lsession_free(b);
    free(alone);
    free(x);
    free(y);
}

static void test_threads_identical(void **state) {
    (void)state;
    /* Threads split rows, never a dot product, so results are bit-identical across thread counts. */
    lmodel *m2 = NULL;
    shoal_error err = {0};
    assert_int_equal(lmodel_load(model_path, NULL, &m2, &err), SHOAL_OK);
    assert_int_equal(lbackend_attach(be2, m2, &err), SHOAL_OK);
    uint32_t V = model->cfg.vocab_size, n = 20;
    float *a = malloc((size_t)(n + 1) * V * 4), *b = malloc((size_t)(n + 1) * V * 4);
    lsession *s1 = new_session(model, LDT_F32, 0), *s2 = new_session(m2, LDT_F32, 0);
    run_greedy(s1, n, a);
    run_greedy(s2, n, b);
    assert_memory_equal(a, b, (size_t)(n + 1) * V * 4);
    lsession_free(s1);
    lsession_free(s2);
    lmodel_free(m2);
    free(a);
    free(b);
}

static void test_errors(void **state) {
    (void)state;
    shoal_error err = {0};
    float *l = malloc(model->cfg.vocab_size * 4);
    lsession_opts small = {8, LDT_F32, 0};
    lsession *s = NULL;
    assert_int_equal(lsession_new(model, &small, &s, &err), SHOAL_OK);
    assert_int_equal(lsession_kv_bytes(s), 2ull * model->cfg.n_layers * 8 * model->cfg.n_kv_heads *
                                               model->cfg.head_dim * 4);
    assert_int_equal(lsession_prefill(s, prompt, 9, l, &err), SHOAL_ERR_ARG);
    print_message("  9 tokens into 8: %s\n", err.message);
    assert_int_equal(s->pos, 0);
    assert_int_equal(lsession_prefill(s, prompt, 8, l, &err), SHOAL_OK);
    assert_int_equal(lsession_decode(s, 1, l, &err), SHOAL_ERR_ARG);
    print_message("  decode on a full context: %s\n", err.message);
    lsession_reset(s);
    int32_t bad[2] = {1, (int32_t)model->cfg.vocab_size};
    assert_int_equal(lsession_prefill(s, bad, 2, l, &err), SHOAL_ERR_ARG);
    print_message("  token out of range: %s\n", err.message);
    assert_int_equal(lsession_decode(s, -1, l, &err), SHOAL_ERR_ARG);
    assert_int_equal(lsession_prefill(s, prompt, 0, l, &err), SHOAL_ERR_ARG);
    assert_int_equal(s->pos, 0);
    lsession_free(s);
    lsession_opts badkv = {8, LDT_Q8_0, 0};
    assert_int_equal(lsession_new(model, &badkv, &s, &err), SHOAL_ERR_ARG);
    print_message("  q8_0 KV cache: %s\n", err.message);
    lmodel *unbound = NULL;
    assert_int_equal(lmodel_load(model_path, NULL, &unbound, &err), SHOAL_OK);
    assert_int_equal(lsession_new(unbound, NULL, &s, &err), SHOAL_ERR_ARG);
    lmodel_free(unbound);
    free(l);
}

/* The model with every matrix re-encoded as dt (where its width allows; others stay f32). */
static lmodel *reencode(lmodel_dtype dt) {
    shoal_error err = {0};
    lmodel *m = lmodel_new();
    m->cfg = model->cfg;
    snprintf(m->path, sizeof m->path, "re-encoded %s", lmodel_dtype_name(dt));
    m->layers = lmodel_alloc(m, m->cfg.n_layers * sizeof(lmodel_layer), &err);
    float *row = malloc((size_t)(model->cfg.hidden_dim > model->cfg.dim ? model->cfg.hidden_dim : model->cfg.dim) * 4);
    m->tok_embd = model->tok_embd;
    m->out_norm = model->out_norm;
    for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
        m->layers[l] = model->layers[l];
        lmodel_tensor *ts[] = {&m->layers[l].wq, &m->layers[l].wk, &m->layers[l].wv, &m->layers[l].wo,
                               &m->layers[l].w1, &m->layers[l].w2, &m->layers[l].w3};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
            lmodel_tensor src = *ts[i];
            size_t rb = lmodel_dtype_row_bytes(dt, src.cols);
            if (!rb)
                continue;
            uint8_t *data = lmodel_alloc(m, rb * src.rows, &err);
            for (uint32_t r = 0; r < src.rows; r++) {
                lmodel_row_to_f32(&src, r, row);
                uint8_t *dst = data + r * rb;
                for (uint32_t c = 0; c < src.cols && (dt == LDT_F16 || dt == LDT_BF16); c++) {
                    uint16_t h = dt == LDT_F16 ? lmodel_f32_to_fp16(row[c]) : lmodel_f32_to_bf16(row[c]);
                    memcpy(dst + 2 * c, &h, 2);
                }
                if (dt == LDT_Q8_0)
                    lmodel_quantize_q8_0(row, (lmodel_block_q8_0 *)dst, src.cols);
                if (dt == LDT_Q4_0)
                    lmodel_quantize_q4_0(row, (lmodel_block_q4_0 *)dst, src.cols);
            }
            *ts[i] = (lmodel_tensor){dt, src.cols, src.rows, data, NULL};
        }
    }
    free(row);
    assert_int_equal(lmodel_finish(m, &err), SHOAL_OK);
    assert_int_equal(lbackend_attach(be2, m, &err), SHOAL_OK);
    return m;
}

static void test_dtypes(void **state) {
    (void)state;
    uint32_t V = model->cfg.vocab_size, n = 24;
    float *ref = malloc((size_t)(n + 1) * V * 4), *got = malloc((size_t)(n + 1) * V * 4);
    lsession *s = new_session(model, LDT_F32, 0);
    run_greedy(s, n, ref);
    lsession_free(s);
    const struct {
        lmodel_dtype dt, kv;
        double tol; /* max relative logits error of the first step */
    } cases[] = {{LDT_F32, LDT_F16, 2e-3}, {LDT_F16, LDT_F32, 3e-3}, {LDT_BF16, LDT_F32, 1e-2},
                 {LDT_Q8_0, LDT_F32, 3e-2}, {LDT_Q4_0, LDT_F16, 0.2}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lmodel *m = cases[i].dt == LDT_F32 ? model : reencode(cases[i].dt);
        s = new_session(m, cases[i].kv, 5);
        shoal_error err = {0};
        assert_int_equal(lsession_prefill(s, prompt, NP, got, &err), SHOAL_OK);
        double e = rel_err(got, ref, V);
        print_message("  weights %-5s kv %-4s: prompt logits relative error %.3g (limit %.3g)\n",
                      lmodel_dtype_name(cases[i].dt), lmodel_dtype_name(cases[i].kv), e, cases[i].tol);
        assert_true(e < cases[i].tol);
        lsession_free(s);
        if (m != model)
            lmodel_free(m);
    }
    free(ref);
    free(got);
}

static int setup(void **state) {
    (void)state;
    shoal_error err = {0};
    lbackend_opts o1 = {1, 0}, o2 = {2, 0};
    /* Make even this small model's ops run on both threads. */
    setenv("SHOAL_CPU_PAR_MIN", "1", 1);
    if (lmodel_load(model_path, NULL, &model, &err) || lcpu_create(&o1, &be1, &err) || lcpu_create(&o2, &be2, &err) ||
        lbackend_attach(be1, model, &err)) {
        fprintf(stderr, "setup: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    lmodel_free(model);
    lbackend_destroy(be1);
    lbackend_destroy(be2);
    return 0;
}

int main(void) {
    const char *dir = getenv("SHOAL_MODELS");
    snprintf(model_path, sizeof model_path, "%s/stories260K/stories260K.bin", dir ? dir : "../shared/models");
    if (access(model_path, R_OK) != 0) {
        printf("SKIP: %s not found (set SHOAL_MODELS)\n", model_path);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batching),         cmocka_unit_test(test_interleaved_sessions),
        cmocka_unit_test(test_threads_identical), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_dtypes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
