/*
 * lcpu.h: the CPU backend's kernels (lcpu_kern.c), as seen by its op layer (lcpu.c).
 *
 * Each kernel set is chosen once at run time (AVX2+FMA+F16C when the CPU has them, else portable C).
 * A GEMM kernel computes out[t * out_stride + r] = dot(row r of w, activation row t) for r < nrows and
 * t < ntok; rows of w are w_stride bytes apart, activation rows x_stride bytes apart. Activations are f32
 * for F32/F16/BF16 weights and Q8_0 blocks (quantised by quantize_q8) for Q8_0/Q4_0 weights, as
 * llama.cpp does, so the inner loops are integer dot products.
 */
#ifndef LCPU_H
#define LCPU_H

#include <stddef.h>
#include <stdint.h>

#include "lmodel.h"

typedef void (*lcpu_gemm_fn)(const uint8_t *w, size_t w_stride, uint32_t nrows, const uint8_t *x, size_t x_stride,
                             uint32_t ntok, uint32_t cols, float *out, size_t out_stride);

typedef struct lcpu_kernels {
    const char *name;                /* "avx2" or "generic" */
    lcpu_gemm_fn gemm[LDT_BF16 + 1]; /* indexed by lmodel_dtype; NULL for unsupported values */
    /* n % 32 == 0 */
    void (*quantize_q8)(const float *x, lmodel_block_q8_0 *out, uint32_t n);
    float (*dot_f32)(const float *a, const float *b, uint32_t n);
    float (*dot_f16)(const uint16_t *a, const float *b, uint32_t n);
    /* y += a * x (f32 x) and y += a * x (f16 x) */
    void (*axpy_f32)(float *y, float a, const float *x, uint32_t n);
    void (*axpy_f16)(float *y, float a, const uint16_t *x, uint32_t n);
} lcpu_kernels;

/* The best kernel set for this CPU; `force_generic` (or SHOAL_CPU_GENERIC=1 in the environment) picks the
 * portable one, for tests. */
const lcpu_kernels *lcpu_kernels_get(int force_generic);

#endif
