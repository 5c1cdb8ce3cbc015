/* lquant.c: row conversion between weight dtypes (see lquant.h). */
#include "lquant.h"

#include <string.h>

void lquant_from_f32(lmodel_dtype dt, const float *x, uint32_t cols, void *out) {
    uint8_t *o = out;
    switch (dt) {
    case LDT_F32: memcpy(o, x, (size_t)cols * 4); break;
    case LDT_F16:
        for (uint32_t i = 0; i < cols; i++) {
            uint16_t h = lmodel_f32_to_fp16(x[i]);
            memcpy(o + 2 * (size_t)i, &h, 2);
        }
        break;
    case LDT_BF16:
        for (uint32_t i = 0; i < cols; i++) {
            uint16_t h = lmodel_f32_to_bf16(x[i]);
            memcpy(o + 2 * (size_t)i, &h, 2);
        }
        break;
    case LDT_Q8_0: lmodel_quantize_q8_0(x, (lmodel_block_q8_0 *)out, cols); break;
    case LDT_Q4_0: lmodel_quantize_q4_0(x, (lmodel_block_q4_0 *)out, cols); break;
    }
}

void lquant_rows(const lmodel_tensor *src, uint32_t row0, uint32_t n, lmodel_dtype dst, void *out, float *scratch) {
    size_t in_rb = lmodel_dtype_row_bytes(src->dtype, src->cols), out_rb = lmodel_dtype_row_bytes(dst, src->cols);
    if (src->dtype == dst) {
        memcpy(out, (const uint8_t *)src->data + (size_t)row0 * in_rb, (size_t)n * in_rb);
        return;
    }
    for (uint32_t r = 0; r < n; r++) {
        lmodel_row_to_f32(src, row0 + r, scratch);
        lquant_from_f32(dst, scratch, src->cols, (uint8_t *)out + (size_t)r * out_rb);
    }
}

lmodel_dtype lquant_pick(int want, lmodel_dtype have, uint32_t rows, uint32_t cols) {
    if (rows <= 1) return LDT_F32;
    lmodel_dtype dt = want < 0 ? have : (lmodel_dtype)want;
    if ((dt == LDT_Q8_0 || dt == LDT_Q4_0) && cols % LMODEL_QBLOCK) return LDT_F16;
    return dt;
}
