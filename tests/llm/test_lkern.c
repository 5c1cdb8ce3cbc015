/* test_lkern.c: CPU kernels (both sets) against a double-precision reference, and the fp16/bf16/quant
 * helpers against their definitions. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lcpu.h"
#include "lmodel.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* Builds a [rows][cols] tensor of dtype dt from random floats; returns the dequantised values in deq. */
static void *make_weights(lmodel_dtype dt, uint32_t rows, uint32_t cols, float *deq) {
    size_t rb = lmodel_dtype_row_bytes(dt, cols);
    uint8_t *w = malloc(rows * rb);
    float *src = malloc((size_t)cols * sizeof(float));
    for (uint32_t r = 0; r < rows; r++) {
        for (uint32_t c = 0; c < cols; c++)
            src[c] = frand();
        uint8_t *row = w + r * rb;
        switch (dt) {
        case LDT_F32: memcpy(row, src, (size_t)cols * 4); break;
        case LDT_F16:
            for (uint32_t c = 0; c < cols; c++) {
                uint16_t h = lmodel_f32_to_fp16(src[c]);
                memcpy(row + 2 * c, &h, 2);
            }
            break;
        case LDT_BF16:
            for (uint32_t c = 0; c < cols; c++) {
                uint16_t h = lmodel_f32_to_bf16(src[c]);
                memcpy(row + 2 * c, &h, 2);
            }
            break;
        case LDT_Q8_0: lmodel_quantize_q8_0(src, (lmodel_block_q8_0 *)row, cols); break;
        case LDT_Q4_0: lmodel_quantize_q4_0(src, (lmodel_block_q4_0 *)row, cols); break;
        }
        lmodel_tensor t = {dt, cols, 1, row, row};
        lmodel_row_to_f32(&t, 0, deq + (size_t)r * cols);
    }
    free(src);
    return w;
}

static void check_gemm(const lcpu_kernels *k, lmodel_dtype dt, uint32_t rows, uint32_t cols, uint32_t ntok) {
    float *deq = malloc((size_t)rows * cols * sizeof(float));
    void *w = make_weights(dt, rows, cols, deq);
    float *x = malloc((size_t)ntok * cols * sizeof(float));
    for (size_t i = 0; i < (size_t)ntok * cols; i++)
        x[i] = frand();
    bool quant = dt == LDT_Q8_0 || dt == LDT_Q4_0;
    const uint8_t *act = (const uint8_t *)x;
    size_t astride = (size_t)cols * 4;
    lmodel_block_q8_0 *q = NULL;
    float *xq = x; /* the activations the kernel really sees */
    if (quant) {
        q = malloc((size_t)ntok * (cols / 32) * sizeof *q);
        xq = malloc((size_t)ntok * cols * sizeof(float));
        for (uint32_t t = 0; t < ntok; t++) {
            k->quantize_q8(x + (size_t)t * cols, q + (size_t)t * (cols / 32), cols);
            lmodel_tensor qt = {LDT_Q8_0, cols, 1, q + (size_t)t * (cols / 32), NULL};
            lmodel_row_to_f32(&qt, 0, xq + (size_t)t * cols);
        }
        act = (const uint8_t *)q;
        astride = (cols / 32) * sizeof *q;
    }
    float *out = malloc((size_t)ntok * rows * sizeof(float));
    k->gemm[dt](w, lmodel_dtype_row_bytes(dt, cols), rows, act, astride, ntok, cols, out, rows);
    for (uint32_t t = 0; t < ntok; t++)
        for (uint32_t r = 0; r < rows; r++) {
            double ref = 0, mag = 0;
            for (uint32_t c = 0; c < cols; c++) {
                ref += (double)deq[(size_t)r * cols + c] * xq[(size_t)t * cols + c];
                mag += fabs((double)deq[(size_t)r * cols + c] * xq[(size_t)t * cols + c]);
            }
            double got = out[(size_t)t * rows + r];
            if (fabs(got - ref) > 1e-5 * mag + 1e-6) {
                print_error("%s %s rows %u cols %u ntok %u: out[%u][%u] = %.9g, reference %.9g\n", k->name,
                            lmodel_dtype_name(dt), rows, cols, ntok, t, r, got, ref);
                fail();
            }
        }
    free(out);
    free(q);
    if (xq != x)
        free(xq);
    free(x);
    free(w);
    free(deq);
}

static void test_gemm(void **state) {
    (void)state;
    const lmodel_dtype dts[] = {LDT_F32, LDT_F16, LDT_BF16, LDT_Q8_0, LDT_Q4_0};
    const uint32_t shapes[][3] = {{1, 32, 1}, {5, 64, 1}, {17, 96, 3}, {33, 256, 2}, {40, 512, 7}, {7, 8, 5}};
    for (int set = 0; set < 2; set++) {
        const lcpu_kernels *k = lcpu_kernels_get(set);
        for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                if ((dts[d] == LDT_Q8_0 || dts[d] == LDT_Q4_0) && shapes[s][1] % 32)
                    continue;
                check_gemm(k, dts[d], shapes[s][0], shapes[s][1], shapes[s][2]);
            }
    }
}

static void test_fp16(void **state) {
    (void)state;
    /* Every half value converts to float and back unchanged (NaNs stay NaN). */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lmodel_fp16_to_f32((uint16_t)h);
        if (isnan(f)) {
            assert_true(isnan(lmodel_fp16_to_f32(lmodel_f32_to_fp16(f))));
            continue;
        }
        assert_int_equal(lmodel_f32_to_fp16(f), h);
    }
    assert_int_equal(lmodel_f32_to_fp16(65520.0f), 0x7c00);     /* rounds to inf */
    assert_int_equal(lmodel_f32_to_fp16(65519.0f), 0x7bff);     /* largest finite */
    assert_int_equal(lmodel_f32_to_fp16(1.0f + 1.0f / 2048), 0x3c00); /* tie to even */
    assert_int_equal(lmodel_f32_to_fp16(5.9604644775390625e-8f), 0x0001);
    assert_int_equal(lmodel_f32_to_bf16(1.0f), 0x3f80);
    assert_true(lmodel_bf16_to_f32(0x3f80) == 1.0f);
}

static void test_quant_layout(void **state) {
    (void)state;
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i - 16) / 4; /* -4 .. 3.75 */
    lmodel_block_q4_0 b4;
    lmodel_quantize_q4_0(x, &b4, 32);
    /* The extreme is -4 (first value): d = -4 / -8 = 0.5, so value 0 is q 0 and value 16 (0.0) is q 8. */
    assert_true(lmodel_fp16_to_f32(b4.d) == 0.5f);
    assert_int_equal(b4.qs[0] & 15, 0);
    assert_int_equal(b4.qs[0] >> 4, 8);
    lmodel_block_q8_0 b8;
    lmodel_quantize_q8_0(x, &b8, 32);
    assert_int_equal(b8.qs[0], -127);
    float back[32];
    lmodel_tensor t = {LDT_Q8_0, 32, 1, &b8, NULL};
    lmodel_row_to_f32(&t, 0, back);
    for (int i = 0; i < 32; i++)
        assert_true(fabsf(back[i] - x[i]) <= 4.0f / 127 / 2 + 1e-3f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_fp16),
        cmocka_unit_test(test_quant_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
