/*
 * test_sample.c: the sampler. Greedy is argmax; seeded runs repeat; a saved generator state resumes the same
 * stream; top-k / top-p / min-p keep exactly the right support (checked against a brute-force full sort) and
 * sample it in the right proportions (fixed seeds, tolerances far above the statistical noise); temperature
 * shapes the draw; the repetition penalty moves the right logits; bad parameters are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "lsample.h"

static lsampler *make(float temp, int top_k, float top_p, float min_p, uint64_t seed) {
    lsample_params p;
    lsample_params_default(&p);
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = seed;
    lsampler *s = NULL;
    shoal_error err;
    assert_int_equal(lsample_new(&p, &s, &err), SHOAL_OK);
    return s;
}

static uint64_t rng_state = 88172645463325252ull;
static float frand(void) { /* test-only xorshift, independent of the sampler's generator */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * 0x1.0p-53);
}

static void test_greedy(void **state) {
    (void)state;
    lsampler *s = make(0.0f, 40, 0.9f, 0.1f, 1);
    enum { N = 32000 };
    float *l = malloc(N * sizeof *l), *copy = malloc(N * sizeof *copy);
    for (int round = 0; round < 50; round++) {
        int32_t arg = 0;
        for (int i = 0; i < N; i++) {
            l[i] = frand() * 20.0f - 10.0f;
            if (l[i] > l[arg])
                arg = i;
        }
        memcpy(copy, l, N * sizeof *l);
        assert_int_equal(lsample_next(s, copy, N, NULL, 0), arg);
    }
    /* Ties go to the lowest id; NaNs never win. */
    float tie[5] = {1, 3, NAN, 3, 2};
    assert_int_equal(lsample_next(s, tie, 5, NULL, 0), 1);
    float nans[3] = {NAN, NAN, NAN};
    assert_int_equal(lsample_next(s, nans, 3, NULL, 0), -1);
    assert_int_equal(lsample_next(s, l, 0, NULL, 0), -1);
    free(l);
    free(copy);
    lsample_free(s);
}

/* n draws from a fresh copy of logits each time; counts per id. */
static void draw(lsampler *s, const float *logits, uint32_t n, int draws, int *count) {
    float *tmp = malloc(n * sizeof *tmp);
    memset(count, 0, n * sizeof *count);
    for (int i = 0; i < draws; i++) {
        memcpy(tmp, logits, n * sizeof *tmp);
        int32_t id = lsample_next(s, tmp, n, NULL, 0);
        assert_true(id >= 0 && (uint32_t)id < n);
        count[id]++;
    }
    free(tmp);
}

static void test_reproducible(void **state) {
    (void)state;
    enum { N = 1000, D = 200 };
    float logits[N];
    for (int i = 0; i < N; i++)
        logits[i] = frand() * 4.0f;
    int32_t a[D], b[D], c[D];
    lsampler *s1 = make(1.0f, 0, 1.0f, 0.0f, 42), *s2 = make(1.0f, 0, 1.0f, 0.0f, 42), *s3 = make(1.0f, 0, 1.0f, 0.0f, 43);
    float tmp[N];
    for (int i = 0; i < D; i++) {
        memcpy(tmp, logits, sizeof tmp);
        a[i] = lsample_next(s1, tmp, N, NULL, 0);
        memcpy(tmp, logits, sizeof tmp);
        b[i] = lsample_next(s2, tmp, N, NULL, 0);
        memcpy(tmp, logits, sizeof tmp);
        c[i] = lsample_next(s3, tmp, N, NULL, 0);
    }
    assert_memory_equal(a, b, sizeof a);
    assert_true(memcmp(a, c, sizeof a) != 0);

    /* Save mid-stream, restore into a sampler with another seed: the rest is identical. */
    lsample_reseed(s1, 42);
    lsample_state st;
    for (int i = 0; i < D / 2; i++) {
        memcpy(tmp, logits, sizeof tmp);
        lsample_next(s1, tmp, N, NULL, 0);
    }
    lsample_get_state(s1, &st);
    shoal_error err;
    assert_int_equal(lsample_set_state(s3, &st, &err), SHOAL_OK);
    for (int i = D / 2; i < D; i++) {
        memcpy(tmp, logits, sizeof tmp);
        assert_int_equal(lsample_next(s3, tmp, N, NULL, 0), a[i]);
    }
    lsample_state zero = {{0, 0, 0, 0}};
    assert_int_equal(lsample_set_state(s3, &zero, &err), SHOAL_ERR_ARG);
    fprintf(stderr, "  -> %s\n", err.message);
    /* The uniform stream is in [0, 1) and roughly uniform. */
    double sum = 0;
    for (int i = 0; i < 100000; i++) {
        double u = lsample_uniform(s2);
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
    }
    assert_true(fabs(sum / 100000 - 0.5) < 0.01);
    lsample_free(s1);
    lsample_free(s2);
    lsample_free(s3);
}

/* Probabilities 0.40 0.25 0.15 0.10 0.06 0.04 on ids 0..5 (shuffled to ids 3,0,5,1,4,2 to keep the sampler
 * honest about order), and 0 elsewhere. */
static const int ids6[6] = {3, 0, 5, 1, 4, 2};
static const double p6[6] = {0.40, 0.25, 0.15, 0.10, 0.06, 0.04};

static void logits6(float *l) {
    for (int i = 0; i < 6; i++)
        l[ids6[i]] = (float)log(p6[i]);
}

/* Every id in the support is drawn with its renormalised probability (within 0.015 over 40000 draws: the
 * standard deviation is at most 0.0025); no id outside it is ever drawn. */
static void check_support(lsampler *s, int keep) {
    float l[6];
    int count[6];
    logits6(l);
    draw(s, l, 6, 40000, count);
    double z = 0;
    for (int i = 0; i < keep; i++)
        z += p6[i];
    for (int i = 0; i < 6; i++) {
        double want = i < keep ? p6[i] / z : 0.0, got = count[ids6[i]] / 40000.0;
        if (fabs(got - want) > 0.015)
            fprintf(stderr, "rank %d: want %.4f got %.4f\n", i, want, got);
        assert_true(fabs(got - want) <= 0.015);
        if (i >= keep)
            assert_int_equal(count[ids6[i]], 0);
    }
}

static void test_top_k(void **state) {
    (void)state;
    for (int k = 1; k <= 6; k++) {
        lsampler *s = make(1.0f, k, 1.0f, 0.0f, (uint64_t)k);
        check_support(s, k);
        lsample_free(s);
    }
}

static void test_top_p(void **state) {
    (void)state;
    /* Cumulative: 0.40 0.65 0.80 0.90 0.96 1.00. The kept prefix is the shortest reaching top_p. */
    const float tp[] = {0.3f, 0.5f, 0.7f, 0.85f, 0.93f, 0.99f};
    const int keep[] = {1, 2, 3, 4, 5, 6};
    for (int i = 0; i < 6; i++) {
        lsampler *s = make(1.0f, 0, tp[i], 0.0f, 100 + (uint64_t)i);
        check_support(s, keep[i]);
        lsample_free(s);
    }
    /* top-k then top-p: top_p sees the renormalised top 3 (0.50, 0.3125, 0.1875): 0.75 keeps 2. */
    lsampler *s = make(1.0f, 3, 0.75f, 0.0f, 7);
    check_support(s, 2);
    lsample_free(s);
}

static void test_min_p(void **state) {
    (void)state;
    /* p >= min_p * 0.40: 0.5 -> 0.20 keeps 2; 0.3 -> 0.12 keeps 3; 0.12 -> 0.048 keeps 5. */
    const float mp[] = {0.5f, 0.3f, 0.12f, 0.01f};
    const int keep[] = {2, 3, 5, 6};
    for (int i = 0; i < 4; i++) {
        lsampler *s = make(1.0f, 0, 1.0f, mp[i], 200 + (uint64_t)i);
        check_support(s, keep[i]);
        lsample_free(s);
    }
}

/* On a 128k vocabulary, the support of top-p (alone and after min-p/top-k) equals a brute-force full sort. */
static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x > y ? -1 : x < y;
}

static void test_large_vocab_support(void **state) {
    (void)state;
    enum { N = 128256 };
    float *l = malloc(N * sizeof *l), *sorted = malloc(N * sizeof *l), *tmp = malloc(N * sizeof *l);
    for (int i = 0; i < N; i++)
        l[i] = frand() * 12.0f; /* a broad distribution: top_p 0.9 keeps thousands of tokens */
    memcpy(sorted, l, N * sizeof *l);
    qsort(sorted, N, sizeof *sorted, cmp_desc);
    double z = 0, cum = 0;
    for (int i = 0; i < N; i++)
        z += exp((double)sorted[i] - sorted[0]);
    int keep = 0;
    while (cum < 0.9 * z)
        cum += exp((double)sorted[keep++] - sorted[0]);
    float cut = sorted[keep - 1];
    fprintf(stderr, "top_p 0.9 of %d tokens keeps %d\n", N, keep);
    lsampler *s = make(1.0f, 0, 0.9f, 0.0f, 5);
    float lo = INFINITY;
    for (int i = 0; i < 400; i++) {
        memcpy(tmp, l, N * sizeof *l);
        int32_t id = lsample_next(s, tmp, N, NULL, 0);
        assert_true(l[id] >= cut);
        lo = l[id] < lo ? l[id] : lo;
    }
    /* 400 draws over the kept set reach well into its bottom half. */
    assert_true(lo < sorted[keep / 2]);
    lsample_free(s);

    /* Timing with the default chain (top_k 40, top_p 0.95, min_p 0.05): printed, not asserted. */
    lsample_params p;
    lsample_params_default(&p);
    shoal_error err;
    assert_int_equal(lsample_new(&p, &s, &err), SHOAL_OK);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 200; i++) {
        memcpy(tmp, l, N * sizeof *l);
        assert_true(lsample_next(s, tmp, N, NULL, 0) >= 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "default chain on %d logits: %.1f us per token\n", N,
            ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 200 / 1e3);
    lsample_free(s);
    free(l);
    free(sorted);
    free(tmp);
}

static void test_temperature(void **state) {
    (void)state;
    /* Two tokens with p 0.8 / 0.2 (ratio 4). At T=2 the ratio is 2, at T=0.5 it is 16. */
    const float temps[] = {2.0f, 1.0f, 0.5f};
    const double ratio[] = {2.0, 4.0, 16.0};
    for (int i = 0; i < 3; i++) {
        lsampler *s = make(temps[i], 0, 1.0f, 0.0f, 9);
        float l[2] = {logf(0.8f), logf(0.2f)};
        int count[2];
        draw(s, l, 2, 60000, count);
        double want = ratio[i] / (1 + ratio[i]), got = count[0] / 60000.0;
        fprintf(stderr, "T=%.1f: p0 want %.4f got %.4f\n", temps[i], want, got);
        assert_true(fabs(got - want) < 0.01);
        lsample_free(s);
    }
    /* top-p is decided before temperature: the same support at any temperature. */
    lsampler *s = make(3.0f, 0, 0.7f, 0.0f, 11);
    float l[6];
    int count[6];
    logits6(l);
    draw(s, l, 6, 20000, count);
    for (int i = 3; i < 6; i++)
        assert_int_equal(count[ids6[i]], 0);
    for (int i = 0; i < 3; i++)
        assert_true(count[ids6[i]] > 0);
    lsample_free(s);
}

static void test_repeat_penalty(void **state) {
    (void)state;
    lsample_params p;
    lsample_params_default(&p);
    p.temperature = 0;
    p.repeat_penalty = 1.5f;
    p.repeat_last_n = 3;
    lsampler *s;
    shoal_error err;
    assert_int_equal(lsample_new(&p, &s, &err), SHOAL_OK);
    float l[6] = {3.0f, 2.5f, -1.0f, 0.5f, 0.0f, 2.9f};
    int32_t hist[] = {0, 0, 2, 2, 0, 99, -4}; /* last 3: 0, 99 (outside), -4 (outside) */
    assert_int_equal(lsample_next(s, l, 6, hist, 7), 5);
    assert_true(l[0] == 2.0f);  /* 3.0 / 1.5, once despite the repeats */
    assert_true(l[2] == -1.0f); /* outside the window */
    int32_t hist2[] = {0, 2, 0};
    float l2[6] = {3.0f, 2.5f, -1.0f, 0.5f, 0.0f, 2.9f};
    assert_int_equal(lsample_next(s, l2, 6, hist2, 3), 5);
    assert_true(l2[2] == -1.5f); /* negative logits are multiplied */
    assert_true(l2[0] == 2.0f);
    lsample_free(s);
    /* repeat_last_n -1: the whole history. */
    p.repeat_last_n = -1;
    assert_int_equal(lsample_new(&p, &s, &err), SHOAL_OK);
    float l3[6] = {3.0f, 2.5f, -1.0f, 0.5f, 0.0f, 2.9f};
    assert_int_equal(lsample_next(s, l3, 6, hist, 7), 5);
    assert_true(l3[2] == -1.5f);
    lsample_free(s);
}

static void test_bad_params(void **state) {
    (void)state;
    lsample_params p;
    lsampler *s = (lsampler *)1;
    shoal_error err;
    lsample_params_default(&p);
    p.top_p = 0.0f;
    assert_int_equal(lsample_new(&p, &s, &err), SHOAL_ERR_ARG);
    fprintf(stderr, "  -> %s\n", err.message);
    assert_null(s);
    lsample_params_default(&p);
    p.temperature = NAN;
    assert_int_equal(lsample_new(&p, &s, &err), SHOAL_ERR_ARG);
    fprintf(stderr, "  -> %s\n", err.message);
    lsample_params_default(&p);
    p.min_p = 1.0f;
    assert_int_equal(lsample_new(&p, &s, &err), SHOAL_ERR_ARG);
    fprintf(stderr, "  -> %s\n", err.message);
    lsample_params_default(&p);
    p.repeat_penalty = 0.0f;
    assert_int_equal(lsample_new(&p, &s, &err), SHOAL_ERR_ARG);
    fprintf(stderr, "  -> %s\n", err.message);
    lsample_params_default(&p);
    p.repeat_last_n = -2;
    assert_int_equal(lsample_new(&p, &s, &err), SHOAL_ERR_ARG);
    fprintf(stderr, "  -> %s\n", err.message);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),      cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_top_k),       cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),       cmocka_unit_test(test_large_vocab_support),
        cmocka_unit_test(test_temperature), cmocka_unit_test(test_repeat_penalty),
        cmocka_unit_test(test_bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
