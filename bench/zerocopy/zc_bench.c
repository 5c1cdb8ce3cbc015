/*
 * zc_bench.c: the guest side of `shoal bench zerocopy`. A reactor module (no WASI): the host calls its
 * exports and times them.
 *
 *   prepare(kind, n, keep)  allocates and writes the inputs (the guest's own data, not runtime overhead)
 *   compute()               hands the tensors to the device and waits: one operation plus sync
 *   verify()                reads the outputs through the same pointers; returns the number of wrong values
 *   roundtrip()             the whole chain: write inputs, compute, read outputs
 *
 * Kinds: 0 matmul n x n (f32), 1 read-once vector add over three n-MiB buffers, 2 scale of an n-MiB region
 * in place. Inputs are small integers so every f32 result is exact: a wrong value is an error, not noise.
 * keep: 0 none, 1 keep the matmul inputs, 2 keep inputs and output (device-resident compute).
 */
#include <stdint.h>
#include <stdlib.h>

#include "shoal_guest.h"

#define EXPORT(name) __attribute__((export_name(name)))

static int kind, size_n, keep_mode;
static float *A, *B, *C;
static uint64_t count_a, count_b, count_c;
static int32_t ha, hb, hc;

static float a_val(uint64_t i, uint64_t k) { return (float)((int)((i * 7 + k * 3) % 5) - 2); }
static float b_val(uint64_t k, uint64_t j) { return (float)((int)((k * 5 + j * 11) % 7) - 3); }
static float v_val(uint64_t i, int which) { return (float)((int)((i * (which ? 13 : 5)) % 9) - 4); }

static void write_inputs(void) {
    uint64_t n = (uint64_t)size_n;
    if (kind == 0) {
        for (uint64_t i = 0; i < n; i++)
            for (uint64_t k = 0; k < n; k++) A[i * n + k] = a_val(i, k);
        for (uint64_t k = 0; k < n; k++)
            for (uint64_t j = 0; j < n; j++) B[k * n + j] = b_val(k, j);
    } else {
        for (uint64_t i = 0; i < count_a; i++) A[i] = v_val(i, 0);
        if (kind == 1)
            for (uint64_t i = 0; i < count_b; i++) B[i] = v_val(i, 1);
    }
}

static int32_t view1(float *p, uint64_t count) {
    uint32_t dims[1] = {(uint32_t)count};
    return shoal_tensor_view((uint32_t)(uintptr_t)p, SHOAL_TENSOR_F32, 1, dims);
}

static int32_t view2(float *p, uint32_t rows, uint32_t cols) {
    uint32_t dims[2] = {rows, cols};
    return shoal_tensor_view((uint32_t)(uintptr_t)p, SHOAL_TENSOR_F32, 2, dims);
}

EXPORT("prepare") int32_t prepare(int32_t k, int32_t n, int32_t keep) {
    kind = k;
    size_n = n;
    keep_mode = keep;
    if (kind == 0) {
        count_a = count_b = count_c = (uint64_t)n * (uint64_t)n;
    } else {
        count_a = (uint64_t)n * (1u << 20) / sizeof(float);
        count_b = kind == 1 ? count_a : 0;
        count_c = kind == 1 ? count_a : 0;
    }
    A = aligned_alloc(64, count_a * sizeof(float));
    B = count_b ? aligned_alloc(64, count_b * sizeof(float)) : NULL;
    C = count_c ? aligned_alloc(64, count_c * sizeof(float)) : NULL;
    if (!A || (count_b && !B) || (count_c && !C)) return -100;
    write_inputs();
    if (C)
        for (uint64_t i = 0; i < count_c; i++) C[i] = 0.0f;
    if (kind == 0) {
        ha = view2(A, (uint32_t)n, (uint32_t)n);
        hb = view2(B, (uint32_t)n, (uint32_t)n);
        hc = view2(C, (uint32_t)n, (uint32_t)n);
    } else {
        ha = view1(A, count_a);
        hb = B ? view1(B, count_b) : 0;
        hc = C ? view1(C, count_c) : ha;
    }
    if (ha < 0) return ha;
    if (hb < 0) return hb;
    if (hc < 0) return hc;
    if (keep >= 1) {
        int32_t r = shoal_tensor_keep(ha);
        if (r < 0) return r;
        if (hb > 0 && (r = shoal_tensor_keep(hb)) < 0) return r;
        if (keep >= 2 && (r = shoal_tensor_keep(hc)) < 0) return r;
        if ((r = shoal_tensor_sync()) < 0) return r;
    }
    return 0;
}

EXPORT("compute") int32_t compute(void) {
    int32_t r;
    if (kind == 0) r = shoal_tensor_matmul(hc, ha, hb);
    else if (kind == 1) r = shoal_tensor_add(hc, ha, hb);
    else r = shoal_tensor_scale(ha, ha, 1.0f); /* in place; exact, so repeated runs keep the data */
    if (r < 0) return r;
    return shoal_tensor_sync();
}

/* Checks every output value. For the matmul, a(i,k) depends on i only through i mod 5 and b(k,j) on j only
 * through j mod 7, so the 35 distinct expected values are computed once and all n*n results compared. */
EXPORT("verify") int32_t verify(void) {
    int32_t errors = 0;
    uint64_t n = (uint64_t)size_n;
    if (kind == 0) {
        float want[5][7];
        for (uint64_t i = 0; i < 5; i++)
            for (uint64_t j = 0; j < 7; j++) {
                float acc = 0.0f;
                for (uint64_t k = 0; k < n; k++) acc += a_val(i, k) * b_val(k, j);
                want[i][j] = acc;
            }
        for (uint64_t i = 0; i < n; i++)
            for (uint64_t j = 0; j < n; j++)
                if (C[i * n + j] != want[i % 5][j % 7]) errors++;
    } else if (kind == 1) {
        for (uint64_t i = 0; i < count_c; i++)
            if (C[i] != v_val(i, 0) + v_val(i, 1)) errors++;
    } else {
        for (uint64_t i = 0; i < count_a; i++)
            if (A[i] != v_val(i, 0)) errors++;
    }
    return errors;
}

EXPORT("element_count") int32_t element_count(void) { return (int32_t)(kind == 2 ? count_a : count_c); }

EXPORT("roundtrip") int32_t roundtrip(void) {
    if (keep_mode == 0) write_inputs();
    int32_t r = compute();
    if (r < 0) return r;
    float sum = 0.0f;
    float *out = kind == 2 ? A : C;
    uint64_t cnt = kind == 2 ? count_a : count_c;
    for (uint64_t i = 0; i < cnt; i++) sum += out[i];
    return (int32_t)sum;
}
