/*
 * lcpu_kern.c: CPU kernels: GEMM/GEMV over every weight dtype, activation quantisation, and the small
 * vector helpers attention uses. Two sets: portable C and x86-64 AVX2+FMA+F16C (per-function target
 * attributes, so the file builds with the default -march and the choice is made at run time).
 *
 * The GEMM kernels tile 4 weight rows x 3 (float) or 2 (quantised) activation rows: each weight vector
 * loaded is used for every activation row of the tile and each activation vector for four rows, which
 * keeps prefill compute-bound rather than load-bound; a decode step (one activation row) uses 4x1 tiles.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lcpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LCPU_X86 1
#include <immintrin.h>
#endif


/* ---- portable C ------------------------------------------------------------------------------------ */

static float fp16(uint16_t h) {
    return lmodel_fp16_to_f32(h);
}

static float load_w_generic(lmodel_dtype dt, const uint8_t *row, uint32_t c) {
    uint16_t h;
    switch (dt) {
    case LDT_F16: memcpy(&h, row + 2 * (size_t)c, 2); return fp16(h);
    case LDT_BF16: memcpy(&h, row + 2 * (size_t)c, 2); return lmodel_bf16_to_f32(h);
    default: {
        float f;
        memcpy(&f, row + 4 * (size_t)c, 4);
        return f;
    }
    }
}

static void gemm_float_generic(lmodel_dtype dt, const uint8_t *w, size_t ws, uint32_t nrows, const uint8_t *x,
                               size_t xs, uint32_t ntok, uint32_t cols, float *out, size_t os) {
    for (uint32_t r = 0; r < nrows; r++) {
        const uint8_t *wr = w + r * ws;
        for (uint32_t t = 0; t < ntok; t++) {
            const float *xr = (const float *)(x + t * xs);
            float acc[8] = {0};
            for (uint32_t c = 0; c < cols; c++)
                acc[c & 7] += load_w_generic(dt, wr, c) * xr[c];
            out[t * os + r] = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        }
    }
}

static void gemm_f32_generic(const uint8_t *w, size_t ws, uint32_t nr, const uint8_t *x, size_t xs, uint32_t nt,
                             uint32_t cols, float *out, size_t os) {
    gemm_float_generic(LDT_F32, w, ws, nr, x, xs, nt, cols, out, os);
}
static void gemm_f16_generic(const uint8_t *w, size_t ws, uint32_t nr, const uint8_t *x, size_t xs, uint32_t nt,
                             uint32_t cols, float *out, size_t os) {
    gemm_float_generic(LDT_F16, w, ws, nr, x, xs, nt, cols, out, os);
}
static void gemm_bf16_generic(const uint8_t *w, size_t ws, uint32_t nr, const uint8_t *x, size_t xs, uint32_t nt,
                              uint32_t cols, float *out, size_t os) {
    gemm_float_generic(LDT_BF16, w, ws, nr, x, xs, nt, cols, out, os);
}

/* Weight block b of a quantised row, unpacked to 32 signed values and its scale. */
static float unpack_block_generic(lmodel_dtype dt, const uint8_t *row, uint32_t b, int8_t q[32]) {
    if (dt == LDT_Q8_0) {
        const lmodel_block_q8_0 *blk = (const lmodel_block_q8_0 *)row + b;
        memcpy(q, blk->qs, 32);
        return fp16(blk->d);
    }
    const lmodel_block_q4_0 *blk = (const lmodel_block_q4_0 *)row + b;
    for (int i = 0; i < 16; i++) {
        q[i] = (int8_t)((blk->qs[i] & 15) - 8);
        q[i + 16] = (int8_t)((blk->qs[i] >> 4) - 8);
    }
    return fp16(blk->d);
}

static void gemm_quant_generic(lmodel_dtype dt, const uint8_t *w, size_t ws, uint32_t nrows, const uint8_t *x,
                               size_t xs, uint32_t ntok, uint32_t cols, float *out, size_t os) {
    uint32_t nb = cols / 32;
    for (uint32_t r = 0; r < nrows; r++) {
        const uint8_t *wr = w + r * ws;
        for (uint32_t t = 0; t < ntok; t++) {
            const lmodel_block_q8_0 *xb = (const lmodel_block_q8_0 *)(x + t * xs);
            float sum = 0;
            for (uint32_t b = 0; b < nb; b++) {
                int8_t q[32];
                float d = unpack_block_generic(dt, wr, b, q);
                int32_t isum = 0;
                for (int i = 0; i < 32; i++)
                    isum += q[i] * xb[b].qs[i];
                sum += (float)isum * d * fp16(xb[b].d);
            }
            out[t * os + r] = sum;
        }
    }
}

static void gemm_q8_0_generic(const uint8_t *w, size_t ws, uint32_t nr, const uint8_t *x, size_t xs, uint32_t nt,
                              uint32_t cols, float *out, size_t os) {
    gemm_quant_generic(LDT_Q8_0, w, ws, nr, x, xs, nt, cols, out, os);
}
static void gemm_q4_0_generic(const uint8_t *w, size_t ws, uint32_t nr, const uint8_t *x, size_t xs, uint32_t nt,
                              uint32_t cols, float *out, size_t os) {
    gemm_quant_generic(LDT_Q4_0, w, ws, nr, x, xs, nt, cols, out, os);
}

static void quantize_q8_generic(const float *x, lmodel_block_q8_0 *out, uint32_t n) {
    lmodel_quantize_q8_0(x, out, n);
}

static float dot_f32_generic(const float *a, const float *b, uint32_t n) {
    float s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static float dot_f16_generic(const uint16_t *a, const float *b, uint32_t n) {
    float s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += fp16(a[i]) * b[i];
    return s;
}

static void axpy_f32_generic(float *y, float a, const float *x, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

static void axpy_f16_generic(float *y, float a, const uint16_t *x, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        y[i] += a * fp16(x[i]);
}

static const lcpu_kernels generic_kernels = {
    .name = "generic",
    .gemm = {[LDT_F32] = gemm_f32_generic, [LDT_F16] = gemm_f16_generic, [LDT_BF16] = gemm_bf16_generic,
             [LDT_Q8_0] = gemm_q8_0_generic, [LDT_Q4_0] = gemm_q4_0_generic},
    .quantize_q8 = quantize_q8_generic,
    .dot_f32 = dot_f32_generic,
    .dot_f16 = dot_f16_generic,
    .axpy_f32 = axpy_f32_generic,
    .axpy_f16 = axpy_f16_generic,
};

/* ---- AVX2 + FMA + F16C ----------------------------------------------------------------------------- */

#ifdef LCPU_X86
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2,fma,f16c")))

AVX2_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_INLINE __m256 load8(lmodel_dtype dt, const uint8_t *row, uint32_t c) {
    if (dt == LDT_F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * (size_t)c)));
    if (dt == LDT_BF16)
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(row + 2 * (size_t)c))), 16));
    return _mm256_loadu_ps((const float *)(row + 4 * (size_t)c));
}

AVX2_INLINE float load1(lmodel_dtype dt, const uint8_t *row, uint32_t c) {
    uint16_t h;
    if (dt == LDT_F16) {
        memcpy(&h, row + 2 * (size_t)c, 2);
        return _cvtsh_ss(h);
    }
    return load_w_generic(dt, row, c);
}

/* Float-weight tiles. The accumulators are written out by hand: compilers do not reliably unroll loops over
 * arrays of vectors into registers, and a spilled accumulator halves the speed. */
AVX2_INLINE float tail_dot(lmodel_dtype dt, const uint8_t *w, const float *x, uint32_t c, uint32_t cols) {
    float s = 0;
    for (; c < cols; c++)
        s += load1(dt, w, c) * x[c];
    return s;
}

/* 4 weight rows x 3 activation rows: 12 accumulators, 3 activation vectors and 1 weight vector = 16 ymm. */
AVX2_INLINE void tile_f_4x3(lmodel_dtype dt, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs,
                            uint32_t cols, float *out, size_t os) {
    const float *x0 = (const float *)x, *x1 = (const float *)(x + xs), *x2 = (const float *)(x + 2 * xs);
    const uint8_t *w0 = w, *w1 = w + ws, *w2 = w + 2 * ws, *w3 = w + 3 * ws;
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
    __m256 a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
    uint32_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        __m256 v0 = _mm256_loadu_ps(x0 + c), v1 = _mm256_loadu_ps(x1 + c), v2 = _mm256_loadu_ps(x2 + c), wv;
        wv = load8(dt, w0, c);
        a00 = _mm256_fmadd_ps(wv, v0, a00), a01 = _mm256_fmadd_ps(wv, v1, a01), a02 = _mm256_fmadd_ps(wv, v2, a02);
        wv = load8(dt, w1, c);
        a10 = _mm256_fmadd_ps(wv, v0, a10), a11 = _mm256_fmadd_ps(wv, v1, a11), a12 = _mm256_fmadd_ps(wv, v2, a12);
        wv = load8(dt, w2, c);
        a20 = _mm256_fmadd_ps(wv, v0, a20), a21 = _mm256_fmadd_ps(wv, v1, a21), a22 = _mm256_fmadd_ps(wv, v2, a22);
        wv = load8(dt, w3, c);
        a30 = _mm256_fmadd_ps(wv, v0, a30), a31 = _mm256_fmadd_ps(wv, v1, a31), a32 = _mm256_fmadd_ps(wv, v2, a32);
    }
    const float *xs3[3] = {x0, x1, x2};
    const uint8_t *ws4[4] = {w0, w1, w2, w3};
    __m256 acc[4][3] = {{a00, a01, a02}, {a10, a11, a12}, {a20, a21, a22}, {a30, a31, a32}};
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < 3; t++)
            out[t * os + r] = hsum(acc[r][t]) + tail_dot(dt, ws4[r], xs3[t], c, cols);
}

/* 4 weight rows x 1 activation row (decode), two accumulators per row to hide FMA latency. */
AVX2_INLINE void tile_f_4x1(lmodel_dtype dt, const uint8_t *w, size_t ws, const uint8_t *x, uint32_t cols,
                            float *out) {
    const float *x0 = (const float *)x;
    const uint8_t *w0 = w, *w1 = w + ws, *w2 = w + 2 * ws, *w3 = w + 3 * ws;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    uint32_t c = 0;
    for (; c + 16 <= cols; c += 16) {
        __m256 v = _mm256_loadu_ps(x0 + c), u = _mm256_loadu_ps(x0 + c + 8);
        a0 = _mm256_fmadd_ps(load8(dt, w0, c), v, a0);
        a1 = _mm256_fmadd_ps(load8(dt, w1, c), v, a1);
        a2 = _mm256_fmadd_ps(load8(dt, w2, c), v, a2);
        a3 = _mm256_fmadd_ps(load8(dt, w3, c), v, a3);
        b0 = _mm256_fmadd_ps(load8(dt, w0, c + 8), u, b0);
        b1 = _mm256_fmadd_ps(load8(dt, w1, c + 8), u, b1);
        b2 = _mm256_fmadd_ps(load8(dt, w2, c + 8), u, b2);
        b3 = _mm256_fmadd_ps(load8(dt, w3, c + 8), u, b3);
    }
    for (; c + 8 <= cols; c += 8) {
        __m256 v = _mm256_loadu_ps(x0 + c);
        a0 = _mm256_fmadd_ps(load8(dt, w0, c), v, a0);
        a1 = _mm256_fmadd_ps(load8(dt, w1, c), v, a1);
        a2 = _mm256_fmadd_ps(load8(dt, w2, c), v, a2);
        a3 = _mm256_fmadd_ps(load8(dt, w3, c), v, a3);
    }
    out[0] = hsum(_mm256_add_ps(a0, b0)) + tail_dot(dt, w0, x0, c, cols);
    out[1] = hsum(_mm256_add_ps(a1, b1)) + tail_dot(dt, w1, x0, c, cols);
    out[2] = hsum(_mm256_add_ps(a2, b2)) + tail_dot(dt, w2, x0, c, cols);
    out[3] = hsum(_mm256_add_ps(a3, b3)) + tail_dot(dt, w3, x0, c, cols);
}

AVX2_INLINE float tile_f_1x1(lmodel_dtype dt, const uint8_t *w, const float *x, uint32_t cols) {
    __m256 a = _mm256_setzero_ps(), b = a;
    uint32_t c = 0;
    for (; c + 16 <= cols; c += 16) {
        a = _mm256_fmadd_ps(load8(dt, w, c), _mm256_loadu_ps(x + c), a);
        b = _mm256_fmadd_ps(load8(dt, w, c + 8), _mm256_loadu_ps(x + c + 8), b);
    }
    for (; c + 8 <= cols; c += 8)
        a = _mm256_fmadd_ps(load8(dt, w, c), _mm256_loadu_ps(x + c), a);
    return hsum(_mm256_add_ps(a, b)) + tail_dot(dt, w, x, c, cols);
}

AVX2_INLINE void gemm_float_avx2(lmodel_dtype dt, const uint8_t *w, size_t ws, uint32_t nrows, const uint8_t *x,
                                 size_t xs, uint32_t ntok, uint32_t cols, float *out, size_t os) {
    /* Rows in blocks of 16 so a block's weights stay in L2 while every activation row passes over them. */
    for (uint32_t r0 = 0; r0 < nrows; r0 += 16) {
        uint32_t r1 = r0 + 16 < nrows ? r0 + 16 : nrows, r4 = r0 + (r1 - r0) / 4 * 4;
        uint32_t t = 0;
        for (; t + 3 <= ntok; t += 3)
            for (uint32_t r = r0; r < r4; r += 4)
                tile_f_4x3(dt, w + r * ws, ws, x + t * xs, xs, cols, out + t * os + r, os);
        for (; t < ntok; t++)
            for (uint32_t r = r0; r < r4; r += 4)
                tile_f_4x1(dt, w + r * ws, ws, x + t * xs, cols, out + t * os + r);
        for (uint32_t r = r4; r < r1; r++)
            for (t = 0; t < ntok; t++)
                out[t * os + r] = tile_f_1x1(dt, w + r * ws, (const float *)(x + t * xs), cols);
    }
}

AVX2 static void gemm_f32_avx2(const uint8_t *w, size_t ws, uint32_t nr, const uint8_t *x, size_t xs, uint32_t nt,
                               uint32_t cols, float *out, size_t os) {
    gemm_float_avx2(LDT_F32, w, ws, nr, x, xs, nt, cols, out, os);
}
AVX2 static void gemm_f16_avx2(const uint8_t *w, size_t ws, uint32_t nr, const uint8_t *x, size_t xs, uint32_t nt,
                               uint32_t cols, float *out, size_t os) {
    gemm_float_avx2(LDT_F16, w, ws, nr, x, xs, nt, cols, out, os);
}
AVX2 static void gemm_bf16_avx2(const uint8_t *w, size_t ws, uint32_t nr, const uint8_t *x, size_t xs, uint32_t nt,
                                uint32_t cols, float *out, size_t os) {
    gemm_float_avx2(LDT_BF16, w, ws, nr, x, xs, nt, cols, out, os);
}

/* 32 weight values of block b as signed bytes, and the block's scale. */
AVX2_INLINE __m256i wblock(lmodel_dtype dt, const uint8_t *row, uint32_t b, float *d) {
    if (dt == LDT_Q8_0) {
        const lmodel_block_q8_0 *blk = (const lmodel_block_q8_0 *)row + b;
        *d = _cvtsh_ss(blk->d);
        return _mm256_loadu_si256((const __m256i *)blk->qs);
    }
    const lmodel_block_q4_0 *blk = (const lmodel_block_q4_0 *)row + b;
    *d = _cvtsh_ss(blk->d);
    __m128i raw = _mm_loadu_si128((const __m128i *)blk->qs);
    __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw); /* low half: low nibbles = values 0..15 */
    both = _mm256_and_si256(both, _mm256_set1_epi8(15));
    return _mm256_sub_epi8(both, _mm256_set1_epi8(8));
}

/* Eight int32 partial sums of a[i]*b[i] over 32 signed bytes, as floats. maddubs wants an unsigned left
 * operand, so |a| meets b with a's sign moved onto it. */
AVX2_INLINE __m256 dot_i8(__m256i a, __m256i b) {
    __m256i ua = _mm256_sign_epi8(a, a);
    __m256i sb = _mm256_sign_epi8(b, a);
    __m256i p16 = _mm256_maddubs_epi16(ua, sb);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

#define QACC(acc, wq, wd, xq, xd) acc = _mm256_fmadd_ps(_mm256_set1_ps((wd) * (xd)), dot_i8(wq, xq), acc)

/* 4 weight rows x 2 activation rows of quantised blocks. */
AVX2_INLINE void tile_q_4x2(lmodel_dtype dt, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs, uint32_t nb,
                            float *out, size_t os) {
    const lmodel_block_q8_0 *x0 = (const lmodel_block_q8_0 *)x, *x1 = (const lmodel_block_q8_0 *)(x + xs);
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    for (uint32_t b = 0; b < nb; b++) {
        __m256i q0 = _mm256_loadu_si256((const __m256i *)x0[b].qs), q1 = _mm256_loadu_si256((const __m256i *)x1[b].qs);
        float d0 = _cvtsh_ss(x0[b].d), d1 = _cvtsh_ss(x1[b].d), wd;
        __m256i wq = wblock(dt, w, b, &wd);
        QACC(a00, wq, wd, q0, d0);
        QACC(a01, wq, wd, q1, d1);
        wq = wblock(dt, w + ws, b, &wd);
        QACC(a10, wq, wd, q0, d0);
        QACC(a11, wq, wd, q1, d1);
        wq = wblock(dt, w + 2 * ws, b, &wd);
        QACC(a20, wq, wd, q0, d0);
        QACC(a21, wq, wd, q1, d1);
        wq = wblock(dt, w + 3 * ws, b, &wd);
        QACC(a30, wq, wd, q0, d0);
        QACC(a31, wq, wd, q1, d1);
    }
    out[0] = hsum(a00), out[os] = hsum(a01);
    out[1] = hsum(a10), out[os + 1] = hsum(a11);
    out[2] = hsum(a20), out[os + 2] = hsum(a21);
    out[3] = hsum(a30), out[os + 3] = hsum(a31);
}

AVX2_INLINE void tile_q_4x1(lmodel_dtype dt, const uint8_t *w, size_t ws, const uint8_t *x, uint32_t nb, float *out) {
    const lmodel_block_q8_0 *x0 = (const lmodel_block_q8_0 *)x;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (uint32_t b = 0; b < nb; b++) {
        __m256i q0 = _mm256_loadu_si256((const __m256i *)x0[b].qs);
        float d0 = _cvtsh_ss(x0[b].d), wd;
        __m256i wq = wblock(dt, w, b, &wd);
        QACC(a0, wq, wd, q0, d0);
        wq = wblock(dt, w + ws, b, &wd);
        QACC(a1, wq, wd, q0, d0);
        wq = wblock(dt, w + 2 * ws, b, &wd);
        QACC(a2, wq, wd, q0, d0);
        wq = wblock(dt, w + 3 * ws, b, &wd);
        QACC(a3, wq, wd, q0, d0);
    }
    out[0] = hsum(a0), out[1] = hsum(a1), out[2] = hsum(a2), out[3] = hsum(a3);
}

AVX2_INLINE float tile_q_1x1(lmodel_dtype dt, const uint8_t *w, const uint8_t *x, uint32_t nb) {
    const lmodel_block_q8_0 *x0 = (const lmodel_block_q8_0 *)x;
    __m256 a = _mm256_setzero_ps();
    for (uint32_t b = 0; b < nb; b++) {
        float wd;
        __m256i wq = wblock(dt, w, b, &wd);
        QACC(a, wq, wd, _mm256_loadu_si256((const __m256i *)x0[b].qs), _cvtsh_ss(x0[b].d));
    }
    return hsum(a);
}

AVX2_INLINE void gemm_quant_avx2(lmodel_dtype dt, const uint8_t *w, size_t ws, uint32_t nrows, const uint8_t *x,
                                 size_t xs, uint32_t ntok, uint32_t cols, float *out, size_t os) {
    uint32_t nb = cols / 32;
    for (uint32_t r0 = 0; r0 < nrows; r0 += 16) {
        uint32_t r1 = r0 + 16 < nrows ? r0 + 16 : nrows, r4 = r0 + (r1 - r0) / 4 * 4;
        uint32_t t = 0;
        for (; t + 2 <= ntok; t += 2)
            for (uint32_t r = r0; r < r4; r += 4)
                tile_q_4x2(dt, w + r * ws, ws, x + t * xs, xs, nb, out + t * os + r, os);
        for (; t < ntok; t++)
            for (uint32_t r = r0; r < r4; r += 4)
                tile_q_4x1(dt, w + r * ws, ws, x + t * xs, nb, out + t * os + r);
        for (uint32_t r = r4; r < r1; r++)
            for (t = 0; t < ntok; t++)
                out[t * os + r] = tile_q_1x1(dt, w + r * ws, x + t * xs, nb);
    }
}

AVX2 static void gemm_q8_0_avx2(const uint8_t *w, size_t ws, uint32_t nr, const uint8_t *x, size_t xs, uint32_t nt,
                                uint32_t cols, float *out, size_t os) {
    gemm_quant_avx2(LDT_Q8_0, w, ws, nr, x, xs, nt, cols, out, os);
}
AVX2 static void gemm_q4_0_avx2(const uint8_t *w, size_t ws, uint32_t nr, const uint8_t *x, size_t xs, uint32_t nt,
                                uint32_t cols, float *out, size_t os) {
    gemm_quant_avx2(LDT_Q4_0, w, ws, nr, x, xs, nt, cols, out, os);
}

AVX2 static void quantize_q8_avx2(const float *x, lmodel_block_q8_0 *out, uint32_t n) {
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    for (uint32_t b = 0; b < n / 32; b++) {
        const float *v = x + b * 32;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8), v2 = _mm256_loadu_ps(v + 16),
               v3 = _mm256_loadu_ps(v + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(signbit, v0), _mm256_andnot_ps(signbit, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(signbit, v2), _mm256_andnot_ps(signbit, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0;
        out[b].d = (uint16_t)_cvtss_sh(d, 0);
        __m256 s = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        /* packs interleave 128-bit lanes; the permute puts the 32 bytes back in order */
        __m256i p01 = _mm256_packs_epi32(i0, i1), p23 = _mm256_packs_epi32(i2, i3);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)out[b].qs, p);
    }
}

AVX2 static float dot_f32_avx2(const float *a, const float *b, uint32_t n) {
    __m256 acc = _mm256_setzero_ps();
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    float s = hsum(acc);
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

AVX2 static float dot_f16_avx2(const uint16_t *a, const float *b, uint32_t n) {
    __m256 acc = _mm256_setzero_ps();
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + i))), _mm256_loadu_ps(b + i), acc);
    float s = hsum(acc);
    for (; i < n; i++)
        s += _cvtsh_ss(a[i]) * b[i];
    return s;
}

AVX2 static void axpy_f32_avx2(float *y, float a, const float *x, uint32_t n) {
    __m256 av = _mm256_set1_ps(a);
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

AVX2 static void axpy_f16_avx2(float *y, float a, const uint16_t *x, uint32_t n) {
    __m256 av = _mm256_set1_ps(a);
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * _cvtsh_ss(x[i]);
}

static const lcpu_kernels avx2_kernels = {
    .name = "avx2",
    .gemm = {[LDT_F32] = gemm_f32_avx2, [LDT_F16] = gemm_f16_avx2, [LDT_BF16] = gemm_bf16_avx2,
             [LDT_Q8_0] = gemm_q8_0_avx2, [LDT_Q4_0] = gemm_q4_0_avx2},
    .quantize_q8 = quantize_q8_avx2,
    .dot_f32 = dot_f32_avx2,
    .dot_f16 = dot_f16_avx2,
    .axpy_f32 = axpy_f32_avx2,
    .axpy_f16 = axpy_f16_avx2,
};
#endif

const lcpu_kernels *lcpu_kernels_get(int force_generic) {
    const char *env = getenv("SHOAL_CPU_GENERIC");
    if (force_generic || (env && env[0] == '1'))
        return &generic_kernels;
#ifdef LCPU_X86
    __builtin_cpu_init();
    /* clang 14 cannot test "f16c" here; every CPU with AVX2 and FMA (Haswell, Zen and later) has F16C. */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return &avx2_kernels;
#endif
    return &generic_kernels;
}
