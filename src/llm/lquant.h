/*
 * lquant.h: converting weight rows between dtypes (f32 <-> f16 / bf16 / q8_0 / q4_0, ggml block layouts),
 * for `shoal convert` and the loaders. The scalar converters and quantisers themselves are lmodel's
 * (lmodel_f32_to_fp16, lmodel_quantize_q8_0, ...), so every path rounds the same way.
 */
#ifndef LQUANT_H
#define LQUANT_H

#include <stddef.h>
#include <stdint.h>

#include "lmodel.h"

/* Encodes cols f32 values as one row of dtype dt into out (lmodel_dtype_row_bytes(dt, cols) bytes).
 * For Q8_0/Q4_0 cols must be a multiple of 32. */
void lquant_from_f32(lmodel_dtype dt, const float *x, uint32_t cols, void *out);

/* Converts rows [row0, row0 + n) of src into dtype dst at out. A row already in dst is copied bit for
 * bit (no requantisation); otherwise it goes through f32 (scratch: cols floats). */
void lquant_rows(const lmodel_tensor *src, uint32_t row0, uint32_t n, lmodel_dtype dst, void *out, float *scratch);

/* The dtype a tensor gets when a file is written with weights of type `want` (-1: keep `have`):
 * vectors (rows == 1) are always F32; Q8_0 / Q4_0 need cols % 32 == 0, else F16. */
lmodel_dtype lquant_pick(int want, lmodel_dtype have, uint32_t rows, uint32_t cols);

#endif
