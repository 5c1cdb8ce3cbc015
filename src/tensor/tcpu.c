/*
 * tcpu.c: the CPU device for `shoal_tensor`. It computes on guest memory where it lies: the guest's
 * linear memory is this device's memory, so keep/update/release have nothing to move. The COPY mode
 * exists to measure what staging copies cost: it copies every input into a host buffer and the output
 * back, as runtimes without zero-copy do.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmodel.h" /* the project's one set of fp16/bf16 conversions */
#include "tdevice.h"

/* --- element conversion --------------------------------------------------------------------------- */

size_t td_size(tdtype t) { return t == TD_F32 ? 4 : 2; }

float td_load(const uint8_t *p, tdtype t, uint64_t i) {
    if (t == TD_F32) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return t == TD_F16 ? lmodel_fp16_to_f32(h) : lmodel_bf16_to_f32(h);
}

void td_store(uint8_t *p, tdtype t, uint64_t i, float v) {
    if (t == TD_F32) {
        memcpy(p + 4 * i, &v, 4);
        return;
    }
    uint16_t h = t == TD_F16 ? lmodel_f32_to_fp16(v) : lmodel_f32_to_bf16(v);
    memcpy(p + 2 * i, &h, 2);
}

/* --- staging (COPY mode only) --------------------------------------------------------------------- */

typedef struct tcpu {
    tdevice base;
} tcpu;

/* In COPY mode an operation works on private copies of its inputs and writes its output to a private
 * buffer that is then copied back: the allocation and the copies are the cost being measured. */
typedef struct tstage {
    tview views[3];
    uint8_t *bufs[3];
    int n;
} tstage;

static shoal_status tcpu_stage(tdevice *d, tstage *s, tview *out, const tview *in1, const tview *in2,
                               shoal_error *err) {
    const tview *src[3] = {out, in1, in2};
    s->n = 0;
    for (int i = 0; i < 3; i++) {
        if (!src[i]) continue;
        s->views[i] = *src[i];
        s->bufs[i] = NULL;
        if (d->mode == SHOAL_MEMORY_COPY) {
            s->bufs[i] = malloc(src[i]->nbytes);
            if (!s->bufs[i]) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory for a staging buffer");
            if (i > 0) memcpy(s->bufs[i], src[i]->host, src[i]->nbytes);
            s->views[i].host = s->bufs[i];
        }
        s->n = i + 1;
    }
    return SHOAL_OK;
}

static void tcpu_unstage(tdevice *d, tstage *s, tview *out, bool ok) {
    if (d->mode != SHOAL_MEMORY_COPY) return;
    if (ok && s->bufs[0]) memcpy(out->host, s->bufs[0], out->nbytes);
    for (int i = 0; i < s->n; i++) free(s->bufs[i]);
}

/* --- operations ------------------------------------------------------------------------------------ */

static shoal_status tcpu_matmul(tdevice *d, tview *out, const tview *a, const tview *b, uint32_t batch, uint32_t m,
                                uint32_t n, uint32_t k, shoal_error *err) {
    tstage s;
    shoal_status st = tcpu_stage(d, &s, out, a, b, err);
    if (st != SHOAL_OK) goto done;
    float *row = malloc((size_t)n * sizeof *row);
    if (!row) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        goto done;
    }
    const tview *O = &s.views[0], *A = &s.views[1], *B = &s.views[2];
    /* i-k-j order: the inner loop streams a row of b and a row of the result, which vectorises for f32. */
    for (uint32_t bi = 0; bi < batch; bi++) {
        uint64_t ao = (uint64_t)bi * m * k, bo = (uint64_t)bi * k * n, oo = (uint64_t)bi * m * n;
        for (uint32_t i = 0; i < m; i++) {
            memset(row, 0, (size_t)n * sizeof *row);
            for (uint32_t p = 0; p < k; p++) {
                float av = td_load(A->host, A->dtype, ao + (uint64_t)i * k + p);
                uint64_t brow = bo + (uint64_t)p * n;
                if (B->dtype == TD_F32) {
                    const float *bp = (const float *)(const void *)(B->host + 4 * brow);
                    for (uint32_t j = 0; j < n; j++) {
                        float bv;
                        memcpy(&bv, bp + j, 4);
                        row[j] += av * bv;
                    }
                } else {
                    for (uint32_t j = 0; j < n; j++) row[j] += av * td_load(B->host, B->dtype, brow + j);
                }
            }
            for (uint32_t j = 0; j < n; j++) td_store(O->host, O->dtype, oo + (uint64_t)i * n + j, row[j]);
        }
    }
    free(row);
done:
    tcpu_unstage(d, &s, out, st == SHOAL_OK);
    return st;
}

static shoal_status tcpu_binary(tdevice *d, tbinop op, tview *out, const tview *a, const tview *b,
                                shoal_error *err) {
    tstage s;
    shoal_status st = tcpu_stage(d, &s, out, a, b, err);
    if (st == SHOAL_OK) {
        const tview *O = &s.views[0], *A = &s.views[1], *B = &s.views[2];
        uint64_t bn = B->nelem;
        for (uint64_t i = 0; i < A->nelem; i++) {
            float x = td_load(A->host, A->dtype, i), y = td_load(B->host, B->dtype, i % bn);
            td_store(O->host, O->dtype, i, op == TB_ADD ? x + y : x * y);
        }
    }
    tcpu_unstage(d, &s, out, st == SHOAL_OK);
    return st;
}

static shoal_status tcpu_scale(tdevice *d, tview *out, const tview *a, float sc, shoal_error *err) {
    tstage s;
    shoal_status st = tcpu_stage(d, &s, out, a, NULL, err);
    if (st == SHOAL_OK)
        for (uint64_t i = 0; i < a->nelem; i++)
            td_store(s.views[0].host, out->dtype, i, td_load(s.views[1].host, a->dtype, i) * sc);
    tcpu_unstage(d, &s, out, st == SHOAL_OK);
    return st;
}

static shoal_status tcpu_unary(tdevice *d, tunop op, tview *out, const tview *a, shoal_error *err) {
    tstage s;
    shoal_status st = tcpu_stage(d, &s, out, a, NULL, err);
    if (st != SHOAL_OK) goto done;
    const tview *O = &s.views[0], *A = &s.views[1];
    if (op == TU_SILU) {
        for (uint64_t i = 0; i < A->nelem; i++) {
            float x = td_load(A->host, A->dtype, i);
            td_store(O->host, O->dtype, i, x / (1.0f + expf(-x)));
        }
    } else {
        uint64_t cols = A->dims[A->ndim - 1], rows = A->nelem / cols;
        for (uint64_t r = 0; r < rows; r++) {
            uint64_t o = r * cols;
            float mx = -INFINITY, sum = 0.0f;
            for (uint64_t j = 0; j < cols; j++) mx = fmaxf(mx, td_load(A->host, A->dtype, o + j));
            /* Exponentials land in the output first, so an output that aliases the input is safe. */
            for (uint64_t j = 0; j < cols; j++) {
                float e = expf(td_load(A->host, A->dtype, o + j) - mx);
                sum += e;
                td_store(O->host, O->dtype, o + j, e);
            }
            for (uint64_t j = 0; j < cols; j++)
                td_store(O->host, O->dtype, o + j, td_load(O->host, O->dtype, o + j) / sum);
        }
    }
done:
    tcpu_unstage(d, &s, out, st == SHOAL_OK);
    return st;
}

static shoal_status tcpu_rmsnorm(tdevice *d, tview *out, const tview *a, const tview *w, float eps,
                                 shoal_error *err) {
    tstage s;
    shoal_status st = tcpu_stage(d, &s, out, a, w, err);
    if (st == SHOAL_OK) {
        const tview *O = &s.views[0], *A = &s.views[1], *W = &s.views[2];
        uint64_t cols = A->dims[A->ndim - 1], rows = A->nelem / cols;
        for (uint64_t r = 0; r < rows; r++) {
            uint64_t o = r * cols;
            float ss = 0.0f;
            for (uint64_t j = 0; j < cols; j++) {
                float x = td_load(A->host, A->dtype, o + j);
                ss += x * x;
            }
            float inv = 1.0f / sqrtf(ss / (float)cols + eps);
            for (uint64_t j = 0; j < cols; j++)
                td_store(O->host, O->dtype, o + j,
                         td_load(A->host, A->dtype, o + j) * inv * td_load(W->host, W->dtype, j));
        }
    }
    tcpu_unstage(d, &s, out, st == SHOAL_OK);
    return st;
}

/* The token index of a row: [T, D], [T, H, D] or [B, T, H, D]; a 1-D view is one token. */
static uint64_t tcpu_rope_heads(const tview *a) { return a->ndim >= 3 ? a->dims[a->ndim - 2] : 1; }
static uint64_t tcpu_rope_tokens(const tview *a) {
    return a->ndim == 1 ? 1 : a->ndim == 2 ? a->dims[0] : a->dims[a->ndim - 3];
}

static shoal_status tcpu_rope(tdevice *d, tview *out, const tview *a, int32_t pos0, float theta, shoal_error *err) {
    tstage s;
    shoal_status st = tcpu_stage(d, &s, out, a, NULL, err);
    if (st == SHOAL_OK) {
        const tview *O = &s.views[0], *A = &s.views[1];
        uint64_t dim = A->dims[A->ndim - 1], heads = tcpu_rope_heads(A), tokens = tcpu_rope_tokens(A);
        uint64_t rows = A->nelem / dim;
        for (uint64_t r = 0; r < rows; r++) {
            uint64_t t = (r / heads) % tokens, o = r * dim;
            for (uint64_t i = 0; i < dim; i += 2) {
                float freq = powf(theta, -(float)i / (float)dim);
                float ang = (float)((uint64_t)pos0 + t) * freq, c = cosf(ang), sn = sinf(ang);
                float x0 = td_load(A->host, A->dtype, o + i), x1 = td_load(A->host, A->dtype, o + i + 1);
                td_store(O->host, O->dtype, o + i, x0 * c - x1 * sn);
                td_store(O->host, O->dtype, o + i + 1, x0 * sn + x1 * c);
            }
        }
    }
    tcpu_unstage(d, &s, out, st == SHOAL_OK);
    return st;
}

static shoal_status tcpu_sync(tdevice *d, shoal_error *err) {
    (void)d, (void)err;
    return SHOAL_OK; /* every operation completes before it returns */
}

static shoal_status tcpu_keep(tdevice *d, tview *v, shoal_error *err) {
    (void)d, (void)v, (void)err;
    return SHOAL_OK; /* guest memory already is this device's memory */
}

static void tcpu_release(tdevice *d, tview *v) { (void)d, (void)v; }
static void tcpu_memory_stats(tdevice *d, uint64_t *now, uint64_t *peak, bool reset_peak) {
    (void)d, (void)reset_peak;
    *now = *peak = 0; /* the CPU device owns no memory of its own; COPY staging shows up in RSS */
}

static void *tcpu_device_address(tdevice *d, void *host) { return d->mode == SHOAL_MEMORY_COPY ? NULL : host; }
static void tcpu_destroy(tdevice *d) { free(d); }

shoal_status tcpu_open(shoal_memory_mode mode, tdevice **out, shoal_error *err) {
    *out = NULL;
    if (mode == SHOAL_MEMORY_DEFAULT) mode = SHOAL_MEMORY_HOST;
    if (mode != SHOAL_MEMORY_HOST && mode != SHOAL_MEMORY_COPY)
        return shoal_error_set(err, SHOAL_ERR_ARG, "the cpu device supports memory modes host and copy, not %s",
                               shoal_memory_mode_name(mode));
    tcpu *c = calloc(1, sizeof *c);
    if (!c) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    tdevice *d = &c->base;
    d->name = "cpu";
    d->mode = mode;
    snprintf(d->description, sizeof d->description, "cpu/%s", shoal_memory_mode_name(mode));
    d->provider = NULL;
    d->matmul = tcpu_matmul;
    d->binary = tcpu_binary;
    d->scale = tcpu_scale;
    d->unary = tcpu_unary;
    d->rmsnorm = tcpu_rmsnorm;
    d->rope = tcpu_rope;
    d->sync = tcpu_sync;
    d->keep = tcpu_keep;
    d->update = tcpu_keep;
    d->release = tcpu_release;
    d->memory_stats = tcpu_memory_stats;
    d->device_address = tcpu_device_address;
    d->destroy = tcpu_destroy;
    *out = d;
    return SHOAL_OK;
}
