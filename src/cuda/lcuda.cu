/*
 * lcuda.cu: the CUDA backend of the inference engine (lbackend.h) for NVIDIA GPUs (sm_90 first).
 *
 * Weights are uploaded once per model through a pinned staging buffer and shared by every session.
 * Quantised weights are re-laid out on upload, never expanded: Q8_0 as [rows][cols] int8 quants followed by
 * [rows][cols/32] fp16 scales; Q4_0 as [rows][cols/2] packed nibbles (ggml's in-block order) followed by the
 * scales, so every weight load is a 16-byte aligned vector load.
 *
 * Decode (one token) is memory-bound: its matrix-vector kernels stream each weight byte once with 16-byte
 * loads, several in flight per thread. The whole decode step is captured once per session into a CUDA graph
 * and replayed: the step's position is read by the kernels from device memory, written there by the graph's
 * first node from a pinned host slot, so the same graph serves every position. Prefill uses cuBLAS GEMMs
 * (tensor cores, f32 accumulation).
 */
#include "cublas_dl.h"
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern "C" {
#include "lbackend.h"
#include "lcuda.h"
}

namespace {

#define ATT_SPLIT 128     /* positions per tile in the prefill attention kernel */
#define DEC_SPLIT 64      /* positions per block in decode attention (flash-decoding split) */
#define ATT_MAX_GROUP 8   /* query heads per KV head */
#define ATT_MAX_HEAD 256  /* head_dim */

struct CudaState {
    int device;
    cudaDeviceProp prop;
};

/* Per-model device state. */
struct CudaModel {
    void **allocs;
    size_t nallocs, cap;
    uint64_t bytes;
    float *rope_freqs;            /* device copy of m->rope_freqs */
    const float *rope_freqs_host; /* to recognise the host pointer the forward pass passes */
};

/* The ops of one decode step, as recorded, to recognise the next step as the same sequence. */
struct StepSig {
    uint64_t hash;
    uint32_t nops;
};

} // namespace

/* One op with its arguments: ops of a decode step are logged while the step may still turn out to be a
 * replay of the recorded graph, and run from the log when it is not. */
struct OpRec {
    int kind;
    float *out;
    const float *x, *y;
    const int32_t *ids;
    const lmodel_tensor *w;
    lkv_cache *kv;
    uint32_t n, a, b, c, pos0;
    float f;
    size_t count;
    const float *freqs;
    float *outs[3];              /* OP_MULTI (count matrices), OP_GLU (outs[0]) */
    const lmodel_tensor *ws[3];
};

struct lbackend_ctx {
    lbackend *be;
    const lmodel *m;
    CudaModel *cm;
    cudaStream_t stream;
    cublasHandle_t blas;
    const CublasApi *cb;
    uint32_t max_batch, n_ctx, max_splits;
    int *pos_dev;          /* the position of the decode step, read by kernels */
    int *pos_pinned;       /* host slot the graph copies from */
    float *att_part;       /* [n_heads][max_splits][head_dim + 2] partial attention results */
    void *conv;            /* prefill: activations converted to bf16/f16 */
    size_t conv_bytes;
    void *deq;             /* prefill: one quantised weight dequantised to bf16 */
    float *nrm;            /* prefill: normalised rows, max_batch x dim */
    float *up;             /* the up projection of SwiGLU / a matvec before its epilogue: max_batch rows */
    size_t deq_bytes;
    cudaError_t error;     /* first failure since the last sync */
    const char *error_what;
    /* decode-step graph */
    bool capturing, replaying;
    StepSig rec, cur;
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    uint32_t steps;
    uint64_t n_graph, n_eager, n_mismatch; /* decode steps by how they ran (SHOAL_CUDA_STATS=1 prints them) */
    OpRec *log; /* ops of a step that may replay the graph */
    size_t nlog, caplog;
    /* snapshot restore: pinned staging slots, each with the event of the last upload from it */
    void *stage[LBACKEND_STAGES];
    cudaEvent_t stage_done[LBACKEND_STAGES];
    bool stage_busy[LBACKEND_STAGES];
};

namespace {

void note(lbackend_ctx *c, cudaError_t e, const char *what) {
    if (e != cudaSuccess && c->error == cudaSuccess) {
        c->error = e;
        c->error_what = what;
    }
}

void note_launch(lbackend_ctx *c, const char *what) { note(c, cudaPeekAtLastError(), what); }

/* --- decode-step recording ----------------------------------------------------------------------------
 * Every op mixes its kind and arguments (except the position, which the graph reads from pos_dev) into a
 * hash. A decode step whose hash and length equal the recorded one replays the graph instead of launching. */
void sig_mix(StepSig *s, uint64_t v) {
    s->hash = (s->hash ^ v) * 0x100000001b3ull;
}

void sig_op(lbackend_ctx *c, uint64_t kind, const void *a, const void *b, const void *d, uint64_t n) {
    StepSig *s = &c->cur;
    s->nops++;
    sig_mix(s, kind);
    sig_mix(s, (uint64_t)(uintptr_t)a);
    sig_mix(s, (uint64_t)(uintptr_t)b);
    sig_mix(s, (uint64_t)(uintptr_t)d);
    sig_mix(s, n);
}


/* --- element helpers -------------------------------------------------------------------------------------- */

__device__ __forceinline__ float bf16f(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
__device__ __forceinline__ float f16f(uint16_t h) { return __half2float(__ushort_as_half(h)); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over a block of up to 1024 threads; every thread gets the result. */
__device__ float block_sum(float v) {
    __shared__ float sh[32];
    v = warp_sum(v);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : 0.0f;
    return warp_sum(v);
}

/* One value of row r, column j of a weight in our device layout. */
__device__ __forceinline__ float wval(const void *w, int dt, uint32_t rows, uint32_t cols, uint32_t r, uint32_t j) {
    size_t i = (size_t)r * cols + j;
    switch (dt) {
    case LDT_F32: return ((const float *)w)[i];
    case LDT_F16: return f16f(((const uint16_t *)w)[i]);
    case LDT_BF16: return bf16f(((const uint16_t *)w)[i]);
    case LDT_Q8_0: {
        const int8_t *q = (const int8_t *)w;
        const uint16_t *s = (const uint16_t *)(q + (size_t)rows * cols);
        return (float)q[i] * f16f(s[i / 32]);
    }
    default: { /* Q4_0 */
        const uint8_t *q = (const uint8_t *)w;
        const uint16_t *s = (const uint16_t *)(q + (size_t)rows * cols / 2);
        size_t blk = i / 32;
        uint32_t in = (uint32_t)(i % 32);
        uint8_t byte = q[blk * 16 + (in & 15)];
        int nib = in < 16 ? (byte & 15) : (byte >> 4);
        return (float)(nib - 8) * f16f(s[blk]);
    }
    }
}

/* --- kernels: rows, norms, elementwise ------------------------------------------------------------------- */

__global__ void k_get_rows(float *out, const void *w, int dt, uint32_t rows, uint32_t cols, const int32_t *ids) {
    uint32_t i = blockIdx.x, r = (uint32_t)ids[i];
    for (uint32_t j = threadIdx.x; j < cols; j += blockDim.x) out[(size_t)i * cols + j] = wval(w, dt, rows, cols, r, j);
}

__global__ void k_rmsnorm(float *out, const float *x, const float *g, uint32_t cols, float eps) {
    const float *xr = x + (size_t)blockIdx.x * cols;
    float *o = out + (size_t)blockIdx.x * cols;
    float ss = 0.0f;
    for (uint32_t j = threadIdx.x; j < cols; j += blockDim.x) ss += xr[j] * xr[j];
    ss = block_sum(ss);
    float inv = rsqrtf(ss / (float)cols + eps);
    for (uint32_t j = threadIdx.x; j < cols; j += blockDim.x) o[j] = xr[j] * inv * g[j];
}

__global__ void k_add(float *x, const float *y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] += y[i];
}

__global__ void k_swiglu(float *g, const float *u, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = g[i];
        g[i] = v / (1.0f + __expf(-v)) * u[i];
    }
}

/* pos: the step's first position, from device memory (pos_dev) when pos_ptr is set, else pos0. */
__global__ void k_rope(float *x, uint32_t n, uint32_t n_heads, uint32_t head_dim, const int *pos_ptr, uint32_t pos0,
                       const float *freqs) {
    uint32_t half = head_dim / 2;
    size_t total = (size_t)n * n_heads * half;
    uint32_t base = pos_ptr ? (uint32_t)*pos_ptr : pos0;
    for (size_t p = blockIdx.x * (size_t)blockDim.x + threadIdx.x; p < total; p += (size_t)gridDim.x * blockDim.x) {
        uint32_t i = (uint32_t)(p % half);
        size_t rowhead = p / half;
        uint32_t tok = (uint32_t)(rowhead / n_heads);
        float s, c;
        sincosf((float)(base + tok) * freqs[i], &s, &c);
        float *v = x + rowhead * head_dim + 2 * i;
        float x0 = v[0], x1 = v[1];
        v[0] = x0 * c - x1 * s;
        v[1] = x0 * s + x1 * c;
    }
}

__global__ void k_kv_store(void *kc, void *vc, int f16, size_t layer_off, const float *k, const float *v, uint32_t n,
                           uint32_t kv_dim, const int *pos_ptr, uint32_t pos0) {
    uint32_t base = pos_ptr ? (uint32_t)*pos_ptr : pos0;
    size_t total = (size_t)n * kv_dim;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        size_t dst = layer_off + (size_t)base * kv_dim + i;
        if (f16) {
            ((__half *)kc)[dst] = __float2half_rn(k[i]);
            ((__half *)vc)[dst] = __float2half_rn(v[i]);
        } else {
            ((float *)kc)[dst] = k[i];
            ((float *)vc)[dst] = v[i];
        }
    }
}

__global__ void k_to_half(void *dst, const float *src, size_t n, int bf16) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        if (bf16) ((__nv_bfloat16 *)dst)[i] = __float2bfloat16_rn(src[i]);
        else ((__half *)dst)[i] = __float2half_rn(src[i]);
    }
}

__global__ void k_dequant_bf16(__nv_bfloat16 *dst, const void *w, int dt, uint32_t rows, uint32_t cols) {
    size_t total = (size_t)rows * cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = __float2bfloat16_rn(wval(w, dt, rows, cols, (uint32_t)(i / cols), (uint32_t)(i % cols)));
}

/* --- kernels: matrix-vector (decode) ----------------------------------------------------------------------
 * One warp per output row. Each lane streams 16-byte weight loads (MV_UNROLL in flight, bypassing L1 so
 * the activations stay cached) and reads the matching activations as float4 from global memory (hot in
 * L1/L2). One launch covers up to three matrices that share the input (q, k, v), or the gate and up
 * matrices of a SwiGLU FFN row by row, or adds its result into the residual stream. */
#define MV_WARPS 8
#define MV_UNROLL 8

struct MvArgs {
    const void *w[3];
    float *out[3];
    uint32_t start[4]; /* first global row of each matrix; start[nseg] = total rows */
    int nseg;
    int mode; /* 0: out = Wx, 1: out += Wx, 2: out = silu(W0 x) * (W1 x) (w[0], w[1] of equal shape) */
    const float *norm; /* when set, x is RMS-normalised times norm on the way in (each warp sums x^2 itself) */
    float eps;
};

/* Values per 16-byte weight load, and bytes of quants per row, in our device layout. */
template <int DT> __device__ __forceinline__ constexpr uint32_t mv_vpl() {
    return DT == LDT_F32 ? 4 : (DT == LDT_BF16 || DT == LDT_F16) ? 8 : DT == LDT_Q8_0 ? 16 : 32;
}
template <int DT> __device__ __forceinline__ size_t mv_row_bytes(uint32_t cols) {
    return DT == LDT_F32 ? (size_t)cols * 4 : (DT == LDT_BF16 || DT == LDT_F16) ? (size_t)cols * 2
           : DT == LDT_Q8_0 ? (size_t)cols : (size_t)cols / 2;
}

__device__ __forceinline__ float dot4(float4 a, float b0, float b1, float b2, float b3) {
    return a.x * b0 + a.y * b1 + a.z * b2 + a.w * b3;
}

/* Activations j*4 .. j*4+3, times the norm weights when normalising (their squares summed into ss). */
template <bool NORM>
__device__ __forceinline__ float4 ldx(const float4 *x4, const float4 *g4, uint32_t j, float &ss) {
    float4 v = __ldg(x4 + j);
    if (NORM) {
        float4 g = __ldg(g4 + j);
        ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        v = make_float4(v.x * g.x, v.y * g.y, v.z * g.z, v.w * g.w);
    }
    return v;
}

/* Dot product of the 16 weight bytes v (values col0.. of a row) with x. */
template <int DT, bool NORM>
__device__ __forceinline__ float mv_dot(uint4 v, const float4 *x4, const float4 *g4, uint32_t col0,
                                        const uint16_t *scales, float &ss) {
    const uint32_t j0 = col0 / 4;
    if (DT == LDT_F32) {
        return dot4(ldx<NORM>(x4, g4, j0, ss), __uint_as_float(v.x), __uint_as_float(v.y), __uint_as_float(v.z),
                    __uint_as_float(v.w));
    } else if (DT == LDT_BF16 || DT == LDT_F16) {
        const uint32_t u[4] = {v.x, v.y, v.z, v.w};
        float acc = 0.0f;
#pragma unroll
        for (int t = 0; t < 2; t++) {
            float4 xv = ldx<NORM>(x4, g4, j0 + t, ss);
            uint32_t lo = u[2 * t], hi = u[2 * t + 1];
            float a0, a1, a2, a3;
            if (DT == LDT_BF16) {
                a0 = __uint_as_float(lo << 16), a1 = __uint_as_float(lo & 0xffff0000u);
                a2 = __uint_as_float(hi << 16), a3 = __uint_as_float(hi & 0xffff0000u);
            } else {
                a0 = f16f((uint16_t)lo), a1 = f16f((uint16_t)(lo >> 16)), a2 = f16f((uint16_t)hi), a3 = f16f((uint16_t)(hi >> 16));
            }
            acc += xv.x * a0 + xv.y * a1 + xv.z * a2 + xv.w * a3;
        }
        return acc;
    } else if (DT == LDT_Q8_0) {
        const uint32_t u[4] = {v.x, v.y, v.z, v.w};
        float acc = 0.0f;
#pragma unroll
        for (int t = 0; t < 4; t++) {
            float4 xv = ldx<NORM>(x4, g4, j0 + t, ss);
            uint32_t q = u[t];
            acc += xv.x * (float)(int8_t)q + xv.y * (float)(int8_t)(q >> 8) + xv.z * (float)(int8_t)(q >> 16) +
                   xv.w * (float)(int8_t)(q >> 24);
        }
        return acc * f16f(scales[col0 / 32]);
    } else { /* Q4_0: one whole block; byte j holds value j (low nibble) and value j + 16 (high) */
        const uint32_t u[4] = {v.x, v.y, v.z, v.w};
        float acc = 0.0f;
#pragma unroll
        for (int t = 0; t < 4; t++) {
            float4 lo = ldx<NORM>(x4, g4, j0 + t, ss), hi = ldx<NORM>(x4, g4, j0 + 4 + t, ss);
            uint32_t q = u[t];
            acc += lo.x * (float)((int)(q & 15) - 8) + lo.y * (float)((int)((q >> 8) & 15) - 8) +
                   lo.z * (float)((int)((q >> 16) & 15) - 8) + lo.w * (float)((int)((q >> 24) & 15) - 8);
            acc += hi.x * (float)((int)((q >> 4) & 15) - 8) + hi.y * (float)((int)((q >> 12) & 15) - 8) +
                   hi.z * (float)((int)((q >> 20) & 15) - 8) + hi.w * (float)((int)((q >> 28) & 15) - 8);
        }
        return acc * f16f(scales[col0 / 32]);
    }
}

/* Sum over one row of W (row-local index r of a rows x cols matrix) times x, on one warp. */
template <int DT, bool NORM>
__device__ __forceinline__ float mv_row(const void *w, uint32_t rows, uint32_t r, const float4 *x4, const float4 *g4,
                                        uint32_t cols, uint32_t lane, float &ss) {
    const size_t rb = mv_row_bytes<DT>(cols);
    const uint4 *wv = (const uint4 *)((const uint8_t *)w + rb * r);
    const uint16_t *scales = (const uint16_t *)((const uint8_t *)w + rb * rows) + (size_t)r * (cols / 32);
    const uint32_t vpl = mv_vpl<DT>(), nloads = cols / vpl;
    float acc = 0.0f;
    for (uint32_t i = lane; i < nloads; i += 32 * MV_UNROLL) {
        uint4 v[MV_UNROLL];
#pragma unroll
        for (int u = 0; u < MV_UNROLL; u++) {
            uint32_t idx = i + 32 * u;
            v[u] = idx < nloads ? __ldcs(wv + idx) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < MV_UNROLL; u++) {
            uint32_t idx = i + 32 * u;
            if (idx < nloads) acc += mv_dot<DT, NORM>(v[u], x4, g4, idx * vpl, scales, ss);
        }
    }
    return warp_sum(acc);
}

template <int DT, bool NORM>
__global__ void __launch_bounds__(MV_WARPS * 32) k_mv(MvArgs a, const float *x, uint32_t cols) {
    uint32_t lane = threadIdx.x & 31;
    uint32_t gw = blockIdx.x * MV_WARPS + (threadIdx.x >> 5);
    if (gw >= a.start[a.nseg]) return;
    const float4 *x4 = (const float4 *)x, *g4 = (const float4 *)a.norm;
    float ss = 0.0f, ss2 = 0.0f;
    if (a.mode == 2) {
        uint32_t rows = a.start[1];
        float g = mv_row<DT, NORM>(a.w[0], rows, gw, x4, g4, cols, lane, ss);
        float u = mv_row<DT, NORM>(a.w[1], rows, gw, x4, g4, cols, lane, ss2);
        if (NORM) {
            float inv = rsqrtf(warp_sum(ss) / (float)cols + a.eps);
            g *= inv, u *= inv;
        }
        if (lane == 0) a.out[0][gw] = g / (1.0f + __expf(-g)) * u;
        return;
    }
    int sgi = gw >= a.start[1] ? (gw >= a.start[2] ? 2 : 1) : 0;
    uint32_t rows = a.start[sgi + 1] - a.start[sgi], r = gw - a.start[sgi];
    float acc = mv_row<DT, NORM>(a.w[sgi], rows, r, x4, g4, cols, lane, ss);
    if (NORM) acc *= rsqrtf(warp_sum(ss) / (float)cols + a.eps);
    if (lane == 0) {
        if (a.mode == 1) a.out[sgi][r] += acc;
        else a.out[sgi][r] = acc;
    }
}

/* Any dtype, any alignment: one warp per row, element by element. For shapes the vector kernel cannot take. */
__global__ void k_matvec_any(float *out, const void *w, int dt, const float *x, uint32_t rows, uint32_t cols) {
    uint32_t warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (uint32_t r = blockIdx.x * MV_WARPS + warp; r < rows; r += gridDim.x * MV_WARPS) {
        float acc = 0.0f;
        for (uint32_t j = lane; j < cols; j += 32) acc += wval(w, dt, rows, cols, r, j) * x[j];
        acc = warp_sum(acc);
        if (lane == 0) out[r] = acc;
    }
}

/* --- kernels: attention -------------------------------------------------------------------------------------
 * Decode: grid (n_kv_heads, max_splits). A block handles ATT_SPLIT positions for the `group` query heads that
 * share one KV head, so K and V are read once per KV head. Blocks past the current position write an empty
 * partial. k_attn_reduce merges the partials of each query head. */
template <typename KT>
__device__ __forceinline__ float kvf(const KT *p, size_t i);
template <> __device__ __forceinline__ float kvf<float>(const float *p, size_t i) { return p[i]; }
template <> __device__ __forceinline__ float kvf<__half>(const __half *p, size_t i) { return __half2float(p[i]); }

/* The softmax pieces of one split: per query head, the maximum score and the sum of exponentials; the
 * scores are replaced by their exponentials. A warp per head, lanes across positions. */
__device__ void att_softmax(float (*sc)[DEC_SPLIT], uint32_t count, uint32_t group, float *mx, float *sm) {
    uint32_t warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    for (uint32_t g = warp; g < group; g += nwarps) {
        float m = -INFINITY;
        for (uint32_t p = lane; p < count; p += 32) m = fmaxf(m, sc[g][p]);
        m = warp_max(m);
        float ssum = 0.0f;
        for (uint32_t p = lane; p < count; p += 32) {
            float e = __expf(sc[g][p] - m);
            sc[g][p] = e;
            ssum += e;
        }
        ssum = warp_sum(ssum);
        if (lane == 0) mx[g] = m, sm[g] = ssum;
    }
}

template <typename KT>
__global__ void k_attn_decode(float *part, const float *q, const KT *kc, const KT *vc, size_t layer_off,
                              uint32_t kv_dim, uint32_t head_dim, uint32_t group, uint32_t max_splits, const int *pos_ptr,
                              uint32_t pos0, float scale) {
    __shared__ float qs[ATT_MAX_GROUP][ATT_MAX_HEAD];
    __shared__ float sc[ATT_MAX_GROUP][DEC_SPLIT];
    __shared__ float mx[ATT_MAX_GROUP], sm[ATT_MAX_GROUP];
    __shared__ float acc_sh[2048];
    uint32_t kvh = blockIdx.x, split = blockIdx.y;
    uint32_t pos = pos_ptr ? (uint32_t)*pos_ptr : pos0; /* the query's position; it sees [0, pos] */
    uint32_t start = split * DEC_SPLIT, stride = head_dim + 2;
    if (start > pos) {
        if (threadIdx.x < group) {
            float *pp = part + ((size_t)(kvh * group + threadIdx.x) * max_splits + split) * stride;
            pp[head_dim] = -INFINITY;
            pp[head_dim + 1] = 0.0f;
        }
        return;
    }
    uint32_t count = min((uint32_t)DEC_SPLIT, pos + 1 - start);
    for (uint32_t i = threadIdx.x; i < group * head_dim; i += blockDim.x)
        qs[i / head_dim][i % head_dim] = q[(size_t)(kvh * group + i / head_dim) * head_dim + i % head_dim] * scale;
    __syncthreads();
    uint32_t warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarps = blockDim.x >> 5;
    /* scores: a warp per position, lanes across the head's dimensions (coalesced row reads) */
    for (uint32_t p = warp; p < count; p += nwarps) {
        const KT *k = kc + layer_off + (size_t)(start + p) * kv_dim + (size_t)kvh * head_dim;
        float acc[ATT_MAX_GROUP];
#pragma unroll
        for (int g = 0; g < ATT_MAX_GROUP; g++) acc[g] = 0.0f;
        for (uint32_t d = lane; d < head_dim; d += 32) {
            float kv = kvf(k, d);
#pragma unroll
            for (int g = 0; g < ATT_MAX_GROUP; g++)
                if (g < (int)group) acc[g] += qs[g][d] * kv;
        }
#pragma unroll
        for (int g = 0; g < ATT_MAX_GROUP; g++) {
            if (g < (int)group) {
                float v = warp_sum(acc[g]);
                if (lane == 0) sc[g][p] = v;
            }
        }
    }
    __syncthreads();
    /* softmax pieces per head: a warp per head, a lane per position */
    att_softmax(sc, count, group, mx, sm);
    __syncthreads();
    /* out[g][d] = sum_p e[g][p] v[p][d]: thread t owns dimension t % head_dim of every head, over the
     * positions t / head_dim, + nh, ... (nh position lanes, merged through shared memory) */
    uint32_t nh = blockDim.x / head_dim;
    if (nh > 2048 / (group * head_dim)) nh = 2048 / (group * head_dim);
    uint32_t d = threadIdx.x % head_dim, h = threadIdx.x / head_dim;
    if (h < nh) {
        float acc[ATT_MAX_GROUP];
#pragma unroll
        for (int g = 0; g < ATT_MAX_GROUP; g++) acc[g] = 0.0f;
        const KT *v = vc + layer_off + (size_t)start * kv_dim + (size_t)kvh * head_dim + d;
        for (uint32_t p = h; p < count; p += nh) {
            float vv = kvf(v, (size_t)p * kv_dim);
#pragma unroll
            for (int g = 0; g < ATT_MAX_GROUP; g++)
                if (g < (int)group) acc[g] += sc[g][p] * vv;
        }
#pragma unroll
        for (int g = 0; g < ATT_MAX_GROUP; g++)
            if (g < (int)group) acc_sh[(h * group + g) * head_dim + d] = acc[g];
    }
    __syncthreads();
    for (uint32_t i = threadIdx.x; i < group * head_dim; i += blockDim.x) {
        uint32_t g = i / head_dim, dd = i % head_dim;
        float a = 0.0f;
        for (uint32_t hh = 0; hh < nh; hh++) a += acc_sh[(hh * group + g) * head_dim + dd];
        float *pp = part + ((size_t)(kvh * group + g) * max_splits + split) * stride;
        pp[dd] = a;
        if (dd == 0) pp[head_dim] = mx[g], pp[head_dim + 1] = sm[g];
    }
}

/* Decode attention for f16 caches and a head size known at compile time (the common case): a thread per
 * position reads its key row with 16-byte loads, all in flight at once; the value pass unrolls 8 positions
 * deep. Blocks cover DEC_SPLIT positions; partials as in k_attn_decode. */
template <int HD>
__global__ void __launch_bounds__(128) k_attn_decode_h(float *part, const float *q, const __half *kc, const __half *vc,
                                                       size_t layer_off, uint32_t kv_dim, uint32_t group,
                                                       uint32_t max_splits, const int *pos_ptr, uint32_t pos0, float scale) {
    __shared__ float qs[ATT_MAX_GROUP][HD];
    __shared__ float sc[ATT_MAX_GROUP][DEC_SPLIT];
    __shared__ float mx[ATT_MAX_GROUP], sm[ATT_MAX_GROUP];
    __shared__ float acc_sh[2][ATT_MAX_GROUP][HD];
    uint32_t kvh = blockIdx.x, split = blockIdx.y;
    uint32_t pos = pos_ptr ? (uint32_t)*pos_ptr : pos0;
    uint32_t start = split * DEC_SPLIT, stride = HD + 2;
    if (start > pos) {
        if (threadIdx.x < group) {
            float *pp = part + ((size_t)(kvh * group + threadIdx.x) * max_splits + split) * stride;
            pp[HD] = -INFINITY;
            pp[HD + 1] = 0.0f;
        }
        return;
    }
    uint32_t count = min((uint32_t)DEC_SPLIT, pos + 1 - start);
    for (uint32_t i = threadIdx.x; i < group * HD; i += blockDim.x)
        qs[i / HD][i % HD] = q[(size_t)(kvh * group) * HD + i] * scale;
    __syncthreads();
    for (uint32_t p = threadIdx.x; p < count; p += blockDim.x) {
        const uint4 *k = (const uint4 *)(kc + layer_off + (size_t)(start + p) * kv_dim + (size_t)kvh * HD);
        uint4 kv[HD / 8];
#pragma unroll
        for (int j = 0; j < HD / 8; j++) kv[j] = __ldg(k + j);
        float acc[ATT_MAX_GROUP];
#pragma unroll
        for (int g = 0; g < ATT_MAX_GROUP; g++) acc[g] = 0.0f;
#pragma unroll
        for (int j = 0; j < HD / 8; j++) {
            const __half2 *h2 = (const __half2 *)&kv[j];
#pragma unroll
            for (int t = 0; t < 4; t++) {
                float2 f = __half22float2(h2[t]);
#pragma unroll
                for (int g = 0; g < ATT_MAX_GROUP; g++)
                    if (g < (int)group) acc[g] += qs[g][8 * j + 2 * t] * f.x + qs[g][8 * j + 2 * t + 1] * f.y;
            }
        }
#pragma unroll
        for (int g = 0; g < ATT_MAX_GROUP; g++)
            if (g < (int)group) sc[g][p] = acc[g];
    }
    __syncthreads();
    att_softmax(sc, count, group, mx, sm);
    __syncthreads();
    uint32_t d = threadIdx.x % HD, h = threadIdx.x / HD, nh = blockDim.x / HD;
    if (h < 2 && h < nh) {
        float acc[ATT_MAX_GROUP];
#pragma unroll
        for (int g = 0; g < ATT_MAX_GROUP; g++) acc[g] = 0.0f;
        const __half *v = vc + layer_off + (size_t)start * kv_dim + (size_t)kvh * HD + d;
        uint32_t step = nh < 2 ? nh : 2;
        for (uint32_t p0 = h; p0 < count; p0 += 8 * step) {
            float vv[8];
#pragma unroll
            for (int u = 0; u < 8; u++) {
                uint32_t p = p0 + u * step;
                vv[u] = p < count ? __half2float(v[(size_t)p * kv_dim]) : 0.0f;
            }
#pragma unroll
            for (int u = 0; u < 8; u++) {
                uint32_t p = p0 + u * step;
                if (p < count) {
#pragma unroll
                    for (int g = 0; g < ATT_MAX_GROUP; g++)
                        if (g < (int)group) acc[g] += sc[g][p] * vv[u];
                }
            }
        }
#pragma unroll
        for (int g = 0; g < ATT_MAX_GROUP; g++)
            if (g < (int)group) acc_sh[h][g][d] = acc[g];
    }
    __syncthreads();
    uint32_t nparts = nh < 2 ? nh : 2;
    for (uint32_t i = threadIdx.x; i < group * HD; i += blockDim.x) {
        uint32_t g = i / HD, dd = i % HD;
        float a = acc_sh[0][g][dd] + (nparts > 1 ? acc_sh[1][g][dd] : 0.0f);
        float *pp = part + ((size_t)(kvh * group + g) * max_splits + split) * stride;
        pp[dd] = a;
        if (dd == 0) pp[HD] = mx[g], pp[HD + 1] = sm[g];
    }
}

__global__ void k_attn_reduce(float *out, const float *part, uint32_t head_dim, uint32_t max_splits, const int *pos_ptr,
                              uint32_t pos0) {
    uint32_t h = blockIdx.x, stride = head_dim + 2;
    uint32_t pos = pos_ptr ? (uint32_t)*pos_ptr : pos0;
    uint32_t nsplit = pos / DEC_SPLIT + 1;
    const float *pp = part + (size_t)h * max_splits * stride;
    float m = -INFINITY;
    for (uint32_t s = 0; s < nsplit; s++) m = fmaxf(m, pp[s * stride + head_dim]);
    float denom = 0.0f;
    for (uint32_t s = 0; s < nsplit; s++) denom += __expf(pp[s * stride + head_dim] - m) * pp[s * stride + head_dim + 1];
    for (uint32_t d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.0f;
        for (uint32_t s = 0; s < nsplit; s++) acc += __expf(pp[s * stride + head_dim] - m) * pp[s * stride + d];
        out[(size_t)h * head_dim + d] = acc / denom;
    }
}

/* rope(q), rope(k) and the store of k and v into the cache, in one launch. */
template <typename KT>
__global__ void k_rope_store(float *q, float *k, const float *v, KT *kc, KT *vc, size_t layer_off, uint32_t n,
                             uint32_t n_heads, uint32_t n_kv, uint32_t head_dim, const int *pos_ptr, uint32_t pos0,
                             const float *freqs) {
    uint32_t half = head_dim / 2, kv_dim = n_kv * head_dim;
    uint32_t base = pos_ptr ? (uint32_t)*pos_ptr : pos0;
    size_t nrot = (size_t)n * (n_heads + n_kv) * half, total = nrot + (size_t)n * kv_dim;
    for (size_t p = blockIdx.x * (size_t)blockDim.x + threadIdx.x; p < total; p += (size_t)gridDim.x * blockDim.x) {
        if (p >= nrot) { /* v: copied into the cache */
            size_t i = p - nrot, tok = i / kv_dim;
            vc[layer_off + (size_t)(base + tok) * kv_dim + i % kv_dim] = (KT)v[i];
            continue;
        }
        uint32_t i = (uint32_t)(p % half);
        size_t hrow = p / half; /* over n tokens x (n_heads + n_kv) heads */
        uint32_t tok = (uint32_t)(hrow / (n_heads + n_kv)), hh = (uint32_t)(hrow % (n_heads + n_kv));
        bool is_k = hh >= n_heads;
        float *vec = is_k ? k + ((size_t)tok * n_kv + (hh - n_heads)) * head_dim : q + ((size_t)tok * n_heads + hh) * head_dim;
        float sn, cs;
        sincosf((float)(base + tok) * freqs[i], &sn, &cs);
        float x0 = vec[2 * i], x1 = vec[2 * i + 1];
        float y0 = x0 * cs - x1 * sn, y1 = x0 * sn + x1 * cs;
        vec[2 * i] = y0, vec[2 * i + 1] = y1;
        if (is_k) {
            size_t dst = layer_off + (size_t)(base + tok) * kv_dim + (size_t)(hh - n_heads) * head_dim + 2 * i;
            kc[dst] = (KT)y0, kc[dst + 1] = (KT)y1;
        }
    }
}

/* Prefill: one block per (query row, head), online softmax over the visible positions in tiles. */
template <typename KT>
__global__ void k_attn_prefill(float *out, const float *q, const KT *kc, const KT *vc, size_t layer_off,
                               uint32_t kv_dim, uint32_t head_dim, uint32_t n_heads, uint32_t group, uint32_t pos0,
                               float scale) {
    __shared__ float qs[ATT_MAX_HEAD];
    __shared__ float sc[ATT_SPLIT];
    __shared__ float stat[2];
    uint32_t i = blockIdx.x, h = blockIdx.y, kvh = h / group;
    uint32_t pos = pos0 + i;
    const float *qr = q + ((size_t)i * n_heads + h) * head_dim;
    for (uint32_t d = threadIdx.x; d < head_dim; d += blockDim.x) qs[d] = qr[d] * scale;
    float acc = 0.0f, run_max = -INFINITY, run_sum = 0.0f; /* thread t accumulates dimension t */
    __syncthreads();
    for (uint32_t start = 0; start <= pos; start += ATT_SPLIT) {
        uint32_t count = min((uint32_t)ATT_SPLIT, pos + 1 - start);
        for (uint32_t p = threadIdx.x; p < count; p += blockDim.x) {
            const KT *k = kc + layer_off + (size_t)(start + p) * kv_dim + (size_t)kvh * head_dim;
            float s = 0.0f;
            for (uint32_t d = 0; d < head_dim; d++) s += qs[d] * kvf(k, d);
            sc[p] = s;
        }
        __syncthreads();
        if (threadIdx.x < 32) {
            float m = -INFINITY;
            for (uint32_t p = threadIdx.x; p < count; p += 32) m = fmaxf(m, sc[p]);
            m = warp_max(m);
            float nm = fmaxf(run_max, m), s = 0.0f;
            for (uint32_t p = threadIdx.x; p < count; p += 32) {
                float e = __expf(sc[p] - nm);
                sc[p] = e;
                s += e;
            }
            s = warp_sum(s);
            if (threadIdx.x == 0) stat[0] = nm, stat[1] = s;
        }
        __syncthreads();
        float nm = stat[0], corr = __expf(run_max - nm);
        run_sum = run_sum * corr + stat[1];
        run_max = nm;
        if (threadIdx.x < head_dim) {
            const KT *v = vc + layer_off + (size_t)start * kv_dim + (size_t)kvh * head_dim + threadIdx.x;
            float a = 0.0f;
            for (uint32_t p = 0; p < count; p++) a += sc[p] * kvf(v, (size_t)p * kv_dim);
            acc = acc * corr + a;
        }
        __syncthreads();
    }
    if (threadIdx.x < head_dim) out[((size_t)i * n_heads + h) * head_dim + threadIdx.x] = acc / run_sum;
}

unsigned grid_for(size_t n, unsigned block) {
    size_t b = (n + block - 1) / block;
    return (unsigned)(b > 4096 ? 4096 : (b ? b : 1));
}

/* --- memory ---------------------------------------------------------------------------------------------- */

void *cu_alloc(lbackend *be, size_t size, shoal_error *err) {
    (void)be;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, size ? size : 16);
    if (e == cudaSuccess) e = cudaMemset(p, 0, size ? size : 16);
    if (e != cudaSuccess) {
        if (p) cudaFree(p);
        shoal_error_set(err, SHOAL_ERR_NOMEM, "cuda: cannot allocate %zu bytes of device memory: %s", size,
                        cudaGetErrorString(e));
        return NULL;
    }
    return p;
}

void cu_free(lbackend *be, void *p) {
    (void)be;
    if (p) cudaFree(p);
}

void cu_upload(lbackend_ctx *c, void *dst, const void *src, size_t n) {
    note(c, cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, c->stream), "upload");
}

void cu_download(lbackend_ctx *c, void *dst, const void *src, size_t n) {
    note(c, cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, c->stream), "download");
    note(c, cudaStreamSynchronize(c->stream), "download");
}

/* 2 MiB slots: big enough that a copy runs at full PCIe speed, small enough that the bytes just read are
 * still in the CPU's cache when they are hashed. */
const size_t STAGE_BYTES = 2u << 20;

void *cu_stage(lbackend_ctx *c, int i, size_t *cap, shoal_error *err) {
    if (i < 0 || i >= LBACKEND_STAGES) {
        shoal_error_set(err, SHOAL_ERR_ARG, "cuda: no staging slot %d", i);
        return NULL;
    }
    if (!c->stage[i]) {
        cudaError_t e = cudaMallocHost(&c->stage[i], STAGE_BYTES);
        if (e == cudaSuccess) e = cudaEventCreateWithFlags(&c->stage_done[i], cudaEventDisableTiming);
        if (e != cudaSuccess) {
            shoal_error_set(err, SHOAL_ERR_NOMEM, "cuda: cannot allocate pinned staging memory: %s", cudaGetErrorString(e));
            return NULL;
        }
    } else if (c->stage_busy[i]) {
        cudaError_t e = cudaEventSynchronize(c->stage_done[i]);
        if (e != cudaSuccess) {
            shoal_error_set(err, SHOAL_ERR_DEVICE, "cuda: staged upload: %s", cudaGetErrorString(e));
            return NULL;
        }
    }
    c->stage_busy[i] = false;
    *cap = STAGE_BYTES;
    return c->stage[i];
}

void cu_stage_upload(lbackend_ctx *c, void *dst, size_t dpitch, int i, size_t off, size_t spitch, size_t width,
                     size_t rows) {
    const char *src = (const char *)c->stage[i] + off;
    if (rows == 1)
        note(c, cudaMemcpyAsync(dst, src, width, cudaMemcpyHostToDevice, c->stream), "staged upload");
    else
        note(c, cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, rows, cudaMemcpyHostToDevice, c->stream),
             "staged upload");
    note(c, cudaEventRecord(c->stage_done[i], c->stream), "staged upload");
    c->stage_busy[i] = true;
}

/* --- model upload ------------------------------------------------------------------------------------------ */

size_t dev_bytes(const lmodel_tensor *t) {
    size_t n = (size_t)t->rows * t->cols;
    switch (t->dtype) {
    case LDT_F32: return n * 4;
    case LDT_F16: case LDT_BF16: return n * 2;
    case LDT_Q8_0: return n + n / 32 * 2;
    case LDT_Q4_0: return n / 2 + n / 32 * 2;
    }
    return 0;
}

struct Uploader {
    uint8_t *stage[2];
    size_t cap;
    cudaEvent_t done[2];
    int cur;
    cudaStream_t stream;
    uint64_t total, sent;
    bool tty;
};

/* Copies n bytes from host src to device dst through the pinned staging buffers, double-buffered. */
cudaError_t up_copy(Uploader *u, uint8_t *dst, const uint8_t *src, size_t n) {
    while (n) {
        size_t k = n < u->cap ? n : u->cap;
        cudaError_t e = cudaEventSynchronize(u->done[u->cur]);
        if (e != cudaSuccess) return e;
        memcpy(u->stage[u->cur], src, k);
        e = cudaMemcpyAsync(dst, u->stage[u->cur], k, cudaMemcpyHostToDevice, u->stream);
        if (e == cudaSuccess) e = cudaEventRecord(u->done[u->cur], u->stream);
        if (e != cudaSuccess) return e;
        u->cur ^= 1;
        dst += k, src += k, n -= k;
        uint64_t before = u->sent * 20 / (u->total ? u->total : 1);
        u->sent += k;
        if (u->tty && u->sent * 20 / (u->total ? u->total : 1) != before)
            fprintf(stderr, "\rshoal: uploading weights to the GPU %3d%%", (int)(u->sent * 100 / (u->total ? u->total : 1)));
    }
    return cudaSuccess;
}

/* Uploads one tensor in our device layout (quantised blocks split into quants and scales). */
shoal_status upload_tensor(Uploader *u, CudaModel *cm, lmodel_tensor *t, shoal_error *err) {
    size_t bytes = dev_bytes(t);
    void *d = NULL;
    cudaError_t e = cudaMalloc(&d, bytes ? bytes : 16);
    if (e != cudaSuccess)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "cuda: cannot allocate %zu bytes for weights: %s", bytes,
                               cudaGetErrorString(e));
    if (cm->nallocs == cm->cap) {
        size_t cap = cm->cap ? cm->cap * 2 : 64;
        void **a = (void **)realloc(cm->allocs, cap * sizeof *a);
        if (!a) {
            cudaFree(d);
            return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        }
        cm->allocs = a, cm->cap = cap;
    }
    cm->allocs[cm->nallocs++] = d;
    cm->bytes += bytes;
    const uint8_t *src = (const uint8_t *)t->data;
    uint8_t *dst = (uint8_t *)d;
    if (t->dtype != LDT_Q8_0 && t->dtype != LDT_Q4_0) {
        e = up_copy(u, dst, src, bytes);
    } else {
        /* Split blocks into quants and scales, a bounded number of blocks at a time. */
        bool q8 = t->dtype == LDT_Q8_0;
        size_t bsz = q8 ? sizeof(lmodel_block_q8_0) : sizeof(lmodel_block_q4_0), qb = q8 ? 32 : 16;
        size_t nblocks = (size_t)t->rows * t->cols / 32;
        uint8_t *qdst = dst, *sdst = dst + nblocks * qb;
        size_t chunk = 1 << 16;
        uint8_t *tmp = (uint8_t *)malloc(chunk * qb + chunk * 2);
        if (!tmp) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        for (size_t b0 = 0; b0 < nblocks && e == cudaSuccess; b0 += chunk) {
            size_t nb = nblocks - b0 < chunk ? nblocks - b0 : chunk;
            uint8_t *tq = tmp, *ts = tmp + nb * qb;
            for (size_t b = 0; b < nb; b++) {
                const uint8_t *blk = src + (b0 + b) * bsz;
                memcpy(ts + 2 * b, blk, 2);
                memcpy(tq + qb * b, blk + 2, qb);
            }
            e = up_copy(u, qdst + b0 * qb, tq, nb * qb);
            if (e == cudaSuccess) e = up_copy(u, sdst + b0 * 2, ts, nb * 2);
        }
        if (e == cudaSuccess) e = cudaStreamSynchronize(u->stream); /* tmp is reused by the next tensor */
        free(tmp);
    }
    if (e != cudaSuccess) return shoal_error_set(err, SHOAL_ERR_DEVICE, "cuda: weight upload: %s", cudaGetErrorString(e));
    t->dev = d;
    return SHOAL_OK;
}

void cu_model_release(lbackend *be, lmodel *m) {
    (void)be;
    CudaModel *cm = (CudaModel *)m->backend_state;
    if (cm) {
        for (size_t i = 0; i < cm->nallocs; i++) cudaFree(cm->allocs[i]);
        free(cm->allocs);
        if (cm->rope_freqs) cudaFree(cm->rope_freqs);
        free(cm);
    }
    m->backend_state = NULL;
    m->backend = NULL;
}

shoal_status cu_model_init(lbackend *be, lmodel *m, shoal_error *err) {
    CudaModel *cm = (CudaModel *)calloc(1, sizeof *cm);
    if (!cm) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    m->backend_state = cm;
    Uploader u = {};
    u.cap = 32u << 20;
    u.tty = isatty(2);
    u.total = lmodel_weight_bytes(m);
    shoal_status st = SHOAL_OK;
    cudaError_t e = cudaStreamCreateWithFlags(&u.stream, cudaStreamNonBlocking);
    for (int i = 0; i < 2 && e == cudaSuccess; i++) {
        e = cudaMallocHost((void **)&u.stage[i], u.cap);
        if (e == cudaSuccess) e = cudaEventCreateWithFlags(&u.done[i], cudaEventDisableTiming);
        if (e == cudaSuccess) e = cudaEventRecord(u.done[i], u.stream);
    }
    if (e != cudaSuccess) {
        st = shoal_error_set(err, SHOAL_ERR_DEVICE, "cuda: upload setup: %s", cudaGetErrorString(e));
        goto done;
    }
    if ((st = upload_tensor(&u, cm, &m->tok_embd, err)) != SHOAL_OK) goto done;
    if ((st = upload_tensor(&u, cm, &m->out_norm, err)) != SHOAL_OK) goto done;
    if (m->output.data == m->tok_embd.data && m->output.dtype == m->tok_embd.dtype) m->output.dev = m->tok_embd.dev;
    else if ((st = upload_tensor(&u, cm, &m->output, err)) != SHOAL_OK) goto done;
    for (uint32_t l = 0; l < m->cfg.n_layers && st == SHOAL_OK; l++) {
        lmodel_layer *L = &m->layers[l];
        lmodel_tensor *ts[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_norm, &L->w1, &L->w2, &L->w3};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0] && st == SHOAL_OK; i++) st = upload_tensor(&u, cm, ts[i], err);
    }
    if (st != SHOAL_OK) goto done;
    {
        size_t fb = (size_t)(m->cfg.head_dim / 2) * sizeof(float);
        e = cudaMalloc((void **)&cm->rope_freqs, fb);
        if (e == cudaSuccess) e = cudaMemcpy(cm->rope_freqs, m->rope_freqs, fb, cudaMemcpyHostToDevice);
        cm->rope_freqs_host = m->rope_freqs;
        if (e == cudaSuccess) e = cudaStreamSynchronize(u.stream);
        if (e != cudaSuccess) st = shoal_error_set(err, SHOAL_ERR_DEVICE, "cuda: upload: %s", cudaGetErrorString(e));
    }
done:
    if (u.tty && u.total) fprintf(stderr, "\r%60s\r", "");
    for (int i = 0; i < 2; i++) {
        if (u.stage[i]) cudaFreeHost(u.stage[i]);
        if (u.done[i]) cudaEventDestroy(u.done[i]);
    }
    if (u.stream) cudaStreamDestroy(u.stream);
    (void)be;
    if (st != SHOAL_OK) cu_model_release(be, m);
    return st;
}

/* --- contexts -------------------------------------------------------------------------------------------- */

void cu_ctx_free(lbackend_ctx *c) {
    if (!c) return;
    if (getenv("SHOAL_CUDA_STATS"))
        fprintf(stderr, "shoal cuda: decode steps: %llu replayed graph, %llu eager, %llu did not match the graph\n",
                (unsigned long long)c->n_graph, (unsigned long long)c->n_eager, (unsigned long long)c->n_mismatch);
    if (c->stream) cudaStreamSynchronize(c->stream);
    if (c->exec) cudaGraphExecDestroy(c->exec);
    if (c->graph) cudaGraphDestroy(c->graph);
    if (c->blas) c->cb->destroy(c->blas);
    cudaFree(c->pos_dev);
    cudaFreeHost(c->pos_pinned);
    for (int i = 0; i < LBACKEND_STAGES; i++) {
        if (c->stage[i]) cudaFreeHost(c->stage[i]);
        if (c->stage_done[i]) cudaEventDestroy(c->stage_done[i]);
    }
    cudaFree(c->att_part);
    cudaFree(c->conv);
    cudaFree(c->deq);
    free(c->log);
    cudaFree(c->up);
    cudaFree(c->nrm);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

shoal_status cu_ctx_new(lbackend *be, const lmodel *m, uint32_t max_batch, uint32_t n_ctx, lbackend_ctx **out,
                        shoal_error *err) {
    *out = NULL;
    const lmodel_config *cfg = &m->cfg;
    if (cfg->head_dim > ATT_MAX_HEAD || cfg->n_heads / cfg->n_kv_heads > ATT_MAX_GROUP)
        return shoal_error_set(err, SHOAL_ERR_ARG, "cuda: head_dim %u (max %d) or %u query heads per KV head (max %d) "
                               "is not supported", cfg->head_dim, ATT_MAX_HEAD, cfg->n_heads / cfg->n_kv_heads,
                               ATT_MAX_GROUP);
    lbackend_ctx *c = (lbackend_ctx *)calloc(1, sizeof *c);
    if (!c) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    c->be = be;
    c->m = m;
    c->cm = (CudaModel *)m->backend_state;
    c->max_batch = max_batch ? max_batch : 1;
    c->n_ctx = n_ctx ? n_ctx : 1;
    c->max_splits = (c->n_ctx + DEC_SPLIT - 1) / DEC_SPLIT;
    uint32_t widest = cfg->dim > cfg->hidden_dim ? cfg->dim : cfg->hidden_dim;
    if (cfg->n_heads * cfg->head_dim > widest) widest = cfg->n_heads * cfg->head_dim;
    c->conv_bytes = (size_t)c->max_batch * widest * 2;
    c->deq_bytes = (size_t)widest * (cfg->dim > cfg->hidden_dim ? cfg->dim : cfg->hidden_dim) * 2;
    cudaError_t e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = cudaMalloc((void **)&c->pos_dev, sizeof(int));
    if (e == cudaSuccess) e = cudaMallocHost((void **)&c->pos_pinned, sizeof(int));
    if (e == cudaSuccess)
        e = cudaMalloc((void **)&c->att_part, (size_t)cfg->n_heads * c->max_splits * (cfg->head_dim + 2) * sizeof(float));
    if (e == cudaSuccess && c->max_batch > 1) e = cudaMalloc(&c->conv, c->conv_bytes);
    if (e == cudaSuccess && c->max_batch > 1) e = cudaMalloc(&c->deq, c->deq_bytes);
    if (e == cudaSuccess) e = cudaMalloc((void **)&c->up, (size_t)c->max_batch * widest * sizeof(float));
    if (e == cudaSuccess) e = cudaMalloc((void **)&c->nrm, (size_t)c->max_batch * cfg->dim * sizeof(float));
    if (e != cudaSuccess) {
        cu_ctx_free(c);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "cuda: session setup: %s", cudaGetErrorString(e));
    }
    c->cb = cublas_api(err);
    if (!c->cb) {
        cu_ctx_free(c);
        return err ? err->status : SHOAL_ERR_DEVICE;
    }
    if (c->cb->create(&c->blas) != CUBLAS_STATUS_SUCCESS ||
        c->cb->set_stream(c->blas, c->stream) != CUBLAS_STATUS_SUCCESS) {
        cu_ctx_free(c);
        return shoal_error_set(err, SHOAL_ERR_DEVICE, "cublas: cannot create a handle");
    }
    *out = c;
    return SHOAL_OK;
}

/* --- ops --------------------------------------------------------------------------------------------------- */

enum { OP_ROWS = 1, OP_NORM, OP_MATMUL, OP_ROPE, OP_KV, OP_ATT, OP_SWIGLU, OP_ADD, OP_MULTI, OP_GLU, OP_MATADD, OP_ROPESTORE };

void run_op(lbackend_ctx *c, const OpRec *r);

/* Starts a forward pass (get_rows is the first op of every one). One-token passes are decode steps: the
 * first runs eagerly, the second is captured into a graph, later ones are logged and, at sync, replay the
 * graph when they match it. */
void step_begin(lbackend_ctx *c, uint32_t n) {
    c->cur = StepSig{0xcbf29ce484222325ull, 0};
    c->replaying = c->capturing = false;
    c->nlog = 0;
    if (n != 1 || c->error != cudaSuccess) return;
    if (c->exec) {
        c->replaying = true;
        return;
    }
    if (c->steps++ < 1) { /* cuBLAS and the kernels load lazily on the first step */
        c->n_eager++;
        return;
    }
    cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        note(c, e, "graph capture");
        return;
    }
    c->capturing = true;
    note(c, cudaMemcpyAsync(c->pos_dev, c->pos_pinned, sizeof(int), cudaMemcpyHostToDevice, c->stream), "position");
}

/* Kernels of one-token passes read the position from pos_dev, which the step's first node (or, eagerly,
 * a copy per op) fills from the pinned slot. */
const int *step_pos(lbackend_ctx *c, uint32_t n, uint32_t pos0) {
    if (n != 1) return NULL;
    *c->pos_pinned = (int)pos0;
    if (!c->capturing && !c->replaying)
        note(c, cudaMemcpyAsync(c->pos_dev, c->pos_pinned, sizeof(int), cudaMemcpyHostToDevice, c->stream), "position");
    return c->pos_dev;
}

void issue(lbackend_ctx *c, const OpRec *r, const void *k1, const void *k2, const void *k3, uint64_t k4) {
    sig_op(c, (uint64_t)r->kind, k1, k2, k3, k4);
    /* A replayed graph reads this step's position from the pinned slot: it must be set even though
     * nothing is launched now. */
    if (c->replaying && r->n == 1 &&
        (r->kind == OP_ROPE || r->kind == OP_KV || r->kind == OP_ATT || r->kind == OP_ROPESTORE))
        *c->pos_pinned = (int)r->pos0;
    if (!c->replaying) {
        run_op(c, r);
        return;
    }
    if (c->nlog == c->caplog) {
        size_t cap = c->caplog ? c->caplog * 2 : 256;
        OpRec *l = (OpRec *)realloc(c->log, cap * sizeof *l);
        if (!l) {
            note(c, cudaErrorMemoryAllocation, "op log");
            return;
        }
        c->log = l, c->caplog = cap;
    }
    c->log[c->nlog++] = *r;
}

/* Launches the vector kernel over 1..3 matrices of one dtype and width, or the per-element fallback for
 * shapes it cannot take (rows not 16-byte aligned). mode: see MvArgs. */
template <int DT>
void mv_launch(lbackend_ctx *c, unsigned blocks, const MvArgs &a, const float *x, uint32_t cols) {
    if (a.norm) k_mv<DT, true><<<blocks, MV_WARPS * 32, 0, c->stream>>>(a, x, cols);
    else k_mv<DT, false><<<blocks, MV_WARPS * 32, 0, c->stream>>>(a, x, cols);
}

void matvec(lbackend_ctx *c, const lmodel_tensor *const *ws, float *const *outs, int nseg, int mode, const float *x,
            const lmodel_tensor *norm = NULL, float eps = 0.0f) {
    const lmodel_tensor *w0 = ws[0];
    MvArgs a = {};
    a.nseg = mode == 2 ? 1 : nseg;
    a.mode = mode;
    a.norm = norm ? (const float *)norm->dev : NULL;
    a.eps = eps;
    bool vec = (((uintptr_t)x | (uintptr_t)a.norm) & 15) == 0;
    uint32_t total = 0;
    for (int i = 0; i < nseg; i++) {
        a.w[i] = ws[i]->dev;
        a.out[i] = outs[i];
        a.start[i] = total;
        if (mode != 2 || i == 0) total += ws[i]->rows;
        size_t rb = lmodel_dtype_row_bytes(ws[i]->dtype, ws[i]->cols);
        vec = vec && ws[i]->dtype == w0->dtype && ws[i]->cols == w0->cols && rb % 16 == 0 && rb > 0;
    }
    a.start[a.nseg] = total;
    if (!vec && norm) {
        /* normalise into scratch first, then take the plain path */
        k_rmsnorm<<<1, 256, 0, c->stream>>>(c->nrm, x, (const float *)norm->dev, w0->cols, eps);
        x = c->nrm;
        a.norm = NULL;
    }
    if (!vec) {
        /* element by element, then the epilogue as separate steps */
        for (int i = 0; i < (mode == 2 ? 1 : nseg); i++) {
            float *dst = mode == 0 ? outs[i] : c->up;
            k_matvec_any<<<(ws[i]->rows + MV_WARPS - 1) / MV_WARPS, MV_WARPS * 32, 0, c->stream>>>(
                dst, ws[i]->dev, ws[i]->dtype, x, ws[i]->rows, ws[i]->cols);
            if (mode == 1) k_add<<<grid_for(ws[i]->rows, 256), 256, 0, c->stream>>>(outs[i], c->up, ws[i]->rows);
        }
        if (mode == 2) {
            k_matvec_any<<<(ws[0]->rows + MV_WARPS - 1) / MV_WARPS, MV_WARPS * 32, 0, c->stream>>>(
                outs[0], ws[0]->dev, ws[0]->dtype, x, ws[0]->rows, ws[0]->cols);
            k_matvec_any<<<(ws[1]->rows + MV_WARPS - 1) / MV_WARPS, MV_WARPS * 32, 0, c->stream>>>(
                c->up, ws[1]->dev, ws[1]->dtype, x, ws[1]->rows, ws[1]->cols);
            k_swiglu<<<grid_for(ws[0]->rows, 256), 256, 0, c->stream>>>(outs[0], c->up, ws[0]->rows);
        }
        note_launch(c, "matvec");
        return;
    }
    unsigned blocks = (total + MV_WARPS - 1) / MV_WARPS;
    switch (w0->dtype) {
    case LDT_F32: mv_launch<LDT_F32>(c, blocks, a, x, w0->cols); break;
    case LDT_F16: mv_launch<LDT_F16>(c, blocks, a, x, w0->cols); break;
    case LDT_BF16: mv_launch<LDT_BF16>(c, blocks, a, x, w0->cols); break;
    case LDT_Q8_0: mv_launch<LDT_Q8_0>(c, blocks, a, x, w0->cols); break;
    case LDT_Q4_0: mv_launch<LDT_Q4_0>(c, blocks, a, x, w0->cols); break;
    }
    note_launch(c, "matvec");
}

void gemm(lbackend_ctx *c, float *out, const lmodel_tensor *w, const float *x, uint32_t n, float beta) {
    /* Row-major out[n][rows] = x[n][cols] W^T is column-major out' (rows x n) = op_T(W') x', W' = W as
     * column-major (cols x rows), x' = x as column-major (cols x n). */
    float one = 1.0f, zero = beta; /* beta 1: out += W x (the residual add) */
    cublasStatus_t bs;
    if (w->dtype == LDT_F32) {
        bs = c->cb->sgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->rows, (int)n, (int)w->cols, &one,
                         (const float *)w->dev, (int)w->cols, x, (int)w->cols, &zero, out, (int)w->rows);
    } else {
        bool f16 = w->dtype == LDT_F16;
        const void *wd = w->dev;
        if (w->dtype == LDT_Q8_0 || w->dtype == LDT_Q4_0) {
            if ((size_t)w->rows * w->cols * 2 > c->deq_bytes) {
                note(c, cudaErrorInvalidValue, "gemm: weight larger than the dequantisation buffer");
                return;
            }
            k_dequant_bf16<<<grid_for((size_t)w->rows * w->cols, 256), 256, 0, c->stream>>>(
                (__nv_bfloat16 *)c->deq, w->dev, w->dtype, w->rows, w->cols);
            wd = c->deq;
        }
        k_to_half<<<grid_for((size_t)n * w->cols, 256), 256, 0, c->stream>>>(c->conv, x, (size_t)n * w->cols, !f16);
        cudaDataType t = f16 ? CUDA_R_16F : CUDA_R_16BF;
        bs = c->cb->gemm_ex(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->rows, (int)n, (int)w->cols, &one, wd, t,
                          (int)w->cols, c->conv, t, (int)w->cols, &zero, out, CUDA_R_32F, (int)w->rows,
                          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    }
    if (bs != CUBLAS_STATUS_SUCCESS) note(c, cudaErrorUnknown, "cublas gemm");
    note_launch(c, "gemm");
}

/* Prefill: the normalised rows, in scratch (the input when the op has no norm). */
const float *prefill_norm(lbackend_ctx *c, const OpRec *r) {
    if (!r->w) return r->x;
    k_rmsnorm<<<r->n, 256, 0, c->stream>>>(c->nrm, r->x, (const float *)r->w->dev, r->w->cols, r->f);
    note_launch(c, "rmsnorm");
    return c->nrm;
}

void run_op(lbackend_ctx *c, const OpRec *r) {
    switch (r->kind) {
    case OP_ROWS:
        k_get_rows<<<r->n, 256, 0, c->stream>>>(r->out, r->w->dev, r->w->dtype, r->w->rows, r->w->cols, r->ids);
        note_launch(c, "get_rows");
        break;
    case OP_NORM:
        k_rmsnorm<<<r->n, 256, 0, c->stream>>>(r->out, r->x, (const float *)r->w->dev, r->w->cols, r->f);
        note_launch(c, "rmsnorm");
        break;
    case OP_MATMUL:
        if (r->n == 1) matvec(c, &r->w, &r->out, 1, 0, r->x);
        else gemm(c, r->out, r->w, r->x, r->n, 0.0f);
        break;
    case OP_MULTI:
        if (r->n == 1) {
            matvec(c, r->ws, r->outs, (int)r->count, 0, r->x, r->w, r->f);
        } else {
            const float *x = prefill_norm(c, r);
            for (size_t i = 0; i < r->count; i++) gemm(c, r->outs[i], r->ws[i], x, r->n, 0.0f);
        }
        break;
    case OP_GLU:
        if (r->n == 1) {
            matvec(c, r->ws, r->outs, 2, 2, r->x, r->w, r->f);
        } else {
            const float *x = prefill_norm(c, r);
            gemm(c, r->outs[0], r->ws[0], x, r->n, 0.0f);
            gemm(c, c->up, r->ws[1], x, r->n, 0.0f);
            size_t cnt = (size_t)r->n * r->ws[0]->rows;
            k_swiglu<<<grid_for(cnt, 256), 256, 0, c->stream>>>(r->outs[0], c->up, cnt);
            note_launch(c, "swiglu");
        }
        break;
    case OP_MATADD:
        if (r->n == 1) matvec(c, &r->w, &r->out, 1, 1, r->x);
        else gemm(c, r->out, r->w, r->x, r->n, 1.0f);
        break;
    case OP_ROPE: {
        const int *pp = step_pos(c, r->n, r->pos0);
        size_t total = (size_t)r->n * r->a * (r->b / 2);
        k_rope<<<grid_for(total, 256), 256, 0, c->stream>>>(r->out, r->n, r->a, r->b, pp, r->pos0, r->freqs);
        note_launch(c, "rope");
        break;
    }
    case OP_KV: {
        const int *pp = step_pos(c, r->n, r->pos0);
        lkv_cache *kv = r->kv;
        size_t off = (size_t)r->a * kv->n_ctx * kv->kv_dim;
        k_kv_store<<<grid_for((size_t)r->n * kv->kv_dim, 256), 256, 0, c->stream>>>(
            kv->k, kv->v, kv->dtype == LDT_F16, off, r->x, r->y, r->n, kv->kv_dim, pp, r->pos0);
        note_launch(c, "kv_store");
        break;
    }
    case OP_ATT: {
        const int *pp = step_pos(c, r->n, r->pos0);
        const lkv_cache *kv = r->kv;
        uint32_t layer = r->a, n_heads = r->b, n_kv = r->c, hd = (uint32_t)r->count, n = r->n, pos0 = r->pos0;
        size_t off = (size_t)layer * kv->n_ctx * kv->kv_dim;
        uint32_t group = n_heads / n_kv;
        float scale = 1.0f / sqrtf((float)hd);
        bool f16 = kv->dtype == LDT_F16;
        if (n == 1) {
            dim3 grid(n_kv, c->max_splits);
            unsigned threads = hd > 128 ? 256 : 128;
            bool vec16 = f16 && (kv->kv_dim % 8) == 0 && ((uintptr_t)kv->k % 16) == 0;
            if (vec16 && hd == 64)
                k_attn_decode_h<64><<<grid, 128, 0, c->stream>>>(c->att_part, r->x, (const __half *)kv->k,
                                                                 (const __half *)kv->v, off, kv->kv_dim, group,
                                                                 c->max_splits, pp, pos0, scale);
            else if (vec16 && hd == 128)
                k_attn_decode_h<128><<<grid, 128, 0, c->stream>>>(c->att_part, r->x, (const __half *)kv->k,
                                                                  (const __half *)kv->v, off, kv->kv_dim, group,
                                                                  c->max_splits, pp, pos0, scale);
            else if (f16)
                k_attn_decode<__half><<<grid, threads, 0, c->stream>>>(c->att_part, r->x, (const __half *)kv->k,
                                                                 (const __half *)kv->v, off, kv->kv_dim, hd, group,
                                                                 c->max_splits, pp, pos0, scale);
            else
                k_attn_decode<float><<<grid, threads, 0, c->stream>>>(c->att_part, r->x, (const float *)kv->k,
                                                                (const float *)kv->v, off, kv->kv_dim, hd, group,
                                                                c->max_splits, pp, pos0, scale);
            k_attn_reduce<<<n_heads, 64, 0, c->stream>>>(r->out, c->att_part, hd, c->max_splits, pp, pos0);
        } else {
            dim3 grid(n, n_heads);
            unsigned threads = hd > 128 ? 256 : 128;
            if (f16)
                k_attn_prefill<__half><<<grid, threads, 0, c->stream>>>(r->out, r->x, (const __half *)kv->k,
                                                                      (const __half *)kv->v, off, kv->kv_dim, hd,
                                                                      n_heads, group, pos0, scale);
            else
                k_attn_prefill<float><<<grid, threads, 0, c->stream>>>(r->out, r->x, (const float *)kv->k,
                                                                     (const float *)kv->v, off, kv->kv_dim, hd, n_heads,
                                                                     group, pos0, scale);
        }
        note_launch(c, "attention");
        break;
    }
    case OP_ROPESTORE: {
        const int *pp = step_pos(c, r->n, r->pos0);
        lkv_cache *kv = r->kv;
        uint32_t n_heads = r->b, n_kv = r->c, hd = (uint32_t)r->count;
        size_t off = (size_t)r->a * kv->n_ctx * kv->kv_dim;
        size_t total = (size_t)r->n * (n_heads + n_kv) * (hd / 2) + (size_t)r->n * kv->kv_dim;
        if (kv->dtype == LDT_F16)
            k_rope_store<__half><<<grid_for(total, 256), 256, 0, c->stream>>>(r->out, r->outs[0], r->x, (__half *)kv->k,
                                                                            (__half *)kv->v, off, r->n, n_heads, n_kv, hd,
                                                                            pp, r->pos0, r->freqs);
        else
            k_rope_store<float><<<grid_for(total, 256), 256, 0, c->stream>>>(r->out, r->outs[0], r->x, (float *)kv->k,
                                                                           (float *)kv->v, off, r->n, n_heads, n_kv, hd,
                                                                           pp, r->pos0, r->freqs);
        note_launch(c, "rope_store");
        break;
    }
    case OP_SWIGLU:
        k_swiglu<<<grid_for(r->count, 256), 256, 0, c->stream>>>(r->out, r->x, r->count);
        note_launch(c, "swiglu");
        break;
    case OP_ADD:
        k_add<<<grid_for(r->count, 256), 256, 0, c->stream>>>(r->out, r->x, r->count);
        note_launch(c, "add");
        break;
    }
}

void cu_get_rows(lbackend_ctx *c, float *out, const lmodel_tensor *t, const int32_t *ids, uint32_t n) {
    step_begin(c, n);
    OpRec r = {};
    r.kind = OP_ROWS, r.out = out, r.w = t, r.ids = ids, r.n = n;
    issue(c, &r, out, t->dev, ids, n);
}

void cu_rmsnorm(lbackend_ctx *c, float *out, const float *x, const lmodel_tensor *w, uint32_t n, float eps) {
    OpRec r = {};
    r.kind = OP_NORM, r.out = out, r.x = x, r.w = w, r.n = n, r.f = eps;
    issue(c, &r, out, x, w->dev, n);
}

void cu_matmul(lbackend_ctx *c, float *out, const lmodel_tensor *w, const float *x, uint32_t n) {
    OpRec r = {};
    r.kind = OP_MATMUL, r.out = out, r.w = w, r.x = x, r.n = n;
    issue(c, &r, out, w->dev, x, n);
}

void cu_matmul_multi(lbackend_ctx *c, float *const *outs, const lmodel_tensor *const *ws, uint32_t count,
                     const float *x, const lmodel_tensor *norm, float eps, uint32_t n) {
    OpRec r = {};
    r.kind = OP_MULTI, r.x = x, r.n = n, r.count = count, r.w = norm, r.f = eps;
    uint64_t key = 0;
    for (uint32_t i = 0; i < count && i < 3; i++) {
        r.outs[i] = outs[i], r.ws[i] = ws[i];
        key = key * 31 + (uint64_t)(uintptr_t)outs[i];
    }
    issue(c, &r, ws[0]->dev, x, (const void *)(uintptr_t)key, ((uint64_t)n << 8) | count);
}

void cu_matmul_swiglu(lbackend_ctx *c, float *out, const lmodel_tensor *w1, const lmodel_tensor *w3, const float *x,
                      const lmodel_tensor *norm, float eps, uint32_t n) {
    OpRec r = {};
    r.kind = OP_GLU, r.x = x, r.n = n, r.outs[0] = out, r.ws[0] = w1, r.ws[1] = w3, r.w = norm, r.f = eps;
    issue(c, &r, out, w1->dev, x, ((uint64_t)n << 32) | (uint32_t)(uintptr_t)w3->dev);
}

void cu_matmul_add(lbackend_ctx *c, float *xres, const lmodel_tensor *w, const float *in, uint32_t n) {
    OpRec r = {};
    r.kind = OP_MATADD, r.out = xres, r.w = w, r.x = in, r.n = n;
    issue(c, &r, xres, w->dev, in, n);
}

void cu_rope(lbackend_ctx *c, float *x, uint32_t n, uint32_t n_heads, uint32_t head_dim, uint32_t pos0,
             const float *freqs) {
    if (freqs != c->cm->rope_freqs_host) {
        note(c, cudaErrorInvalidValue, "rope: unknown frequency table");
        return;
    }
    OpRec r = {};
    r.kind = OP_ROPE, r.out = x, r.n = n, r.a = n_heads, r.b = head_dim, r.pos0 = pos0, r.freqs = c->cm->rope_freqs;
    issue(c, &r, x, NULL, NULL, ((uint64_t)n << 40) | ((uint64_t)n_heads << 20) | head_dim);
}

void cu_kv_store(lbackend_ctx *c, lkv_cache *kv, uint32_t layer, uint32_t pos0, uint32_t n, const float *k,
                 const float *v) {
    OpRec r = {};
    r.kind = OP_KV, r.kv = kv, r.a = layer, r.pos0 = pos0, r.n = n, r.x = k, r.y = v;
    issue(c, &r, kv->k, k, v, ((uint64_t)n << 32) | layer);
}

void cu_attention(lbackend_ctx *c, float *out, const float *q, const lkv_cache *kv, uint32_t layer, uint32_t pos0,
                  uint32_t n, uint32_t n_heads, uint32_t n_kv_heads, uint32_t head_dim) {
    OpRec r = {};
    r.kind = OP_ATT, r.out = out, r.x = q, r.kv = (lkv_cache *)kv, r.a = layer, r.pos0 = pos0, r.n = n, r.b = n_heads,
    r.c = n_kv_heads, r.count = head_dim;
    issue(c, &r, out, q, kv->k, ((uint64_t)n << 32) | layer);
}

void cu_rope_store(lbackend_ctx *c, float *q, float *k, const float *v, lkv_cache *kv, uint32_t layer, uint32_t pos0,
                   uint32_t n, uint32_t n_heads, uint32_t n_kv_heads, uint32_t head_dim, const float *freqs) {
    if (freqs != c->cm->rope_freqs_host) {
        note(c, cudaErrorInvalidValue, "rope: unknown frequency table");
        return;
    }
    OpRec r = {};
    r.kind = OP_ROPESTORE, r.out = q, r.outs[0] = k, r.x = v, r.kv = kv, r.a = layer, r.pos0 = pos0, r.n = n,
    r.b = n_heads, r.c = n_kv_heads, r.count = head_dim, r.freqs = c->cm->rope_freqs;
    issue(c, &r, q, k, kv->k, ((uint64_t)n << 32) | layer);
}

void cu_swiglu(lbackend_ctx *c, float *g, const float *u, size_t count) {
    OpRec r = {};
    r.kind = OP_SWIGLU, r.out = g, r.x = u, r.count = count;
    issue(c, &r, g, u, NULL, count);
}

void cu_add(lbackend_ctx *c, float *x, const float *y, size_t count) {
    OpRec r = {};
    r.kind = OP_ADD, r.out = x, r.x = y, r.count = count;
    issue(c, &r, x, y, NULL, count);
}

shoal_status cu_sync(lbackend_ctx *c, shoal_error *err) {
    if (c->capturing) {
        c->capturing = false;
        cudaGraph_t g = NULL;
        cudaError_t e = cudaStreamEndCapture(c->stream, &g);
        if (e == cudaSuccess && c->error == cudaSuccess) {
            cudaGraphExec_t x = NULL;
            e = cudaGraphInstantiate(&x, g, 0);
            if (e == cudaSuccess) {
                c->graph = g, c->exec = x, c->rec = c->cur;
                e = cudaGraphLaunch(c->exec, c->stream);
            }
        }
        if (e != cudaSuccess) {
            if (g && !c->graph) cudaGraphDestroy(g);
            note(c, e, "graph capture");
        }
    } else if (c->replaying) {
        c->replaying = false;
        if (c->cur.hash == c->rec.hash && c->cur.nops == c->rec.nops) {
            note(c, cudaGraphLaunch(c->exec, c->stream), "graph launch");
            c->n_graph++;
        } else {
            c->n_mismatch++;
            /* Another kind of one-token pass (e.g. a prefill chunk without logits): run its ops as logged. */
            for (size_t i = 0; i < c->nlog; i++) run_op(c, &c->log[i]);
        }
        c->nlog = 0;
    }
    note(c, cudaStreamSynchronize(c->stream), "sync");
    if (c->error == cudaSuccess) return SHOAL_OK;
    cudaError_t e = c->error;
    const char *what = c->error_what;
    c->error = cudaSuccess;
    cudaGetLastError();
    return shoal_error_set(err, SHOAL_ERR_DEVICE, "cuda: %s: %s", what, cudaGetErrorString(e));
}

void cu_describe(const lbackend *be, char *buf, size_t cap) {
    const CudaState *s = (const CudaState *)be->state;
    snprintf(buf, cap, "cuda:%d %.100s (sm_%d%d, %d SMs)", s->device, s->prop.name, s->prop.major, s->prop.minor,
             s->prop.multiProcessorCount);
}

void cu_destroy(lbackend *be) {
    free(be->state);
    free(be);
}

} // namespace

extern "C" shoal_status lcuda_create(const lbackend_opts *opts, lbackend **out, shoal_error *err) {
    *out = NULL;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
        return shoal_error_set(err, SHOAL_ERR_DEVICE, "no CUDA device is available (%s)",
                               e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports 0 devices");
    int dev = opts ? opts->device : 0;
    if (dev < 0 || dev >= count)
        return shoal_error_set(err, SHOAL_ERR_DEVICE, "cuda:%d does not exist (%d devices)", dev, count);
    CudaState *s = (CudaState *)calloc(1, sizeof *s);
    lbackend *be = (lbackend *)calloc(1, sizeof *be);
    if (!s || !be) {
        free(s), free(be);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    }
    s->device = dev;
    if ((e = cudaSetDevice(dev)) != cudaSuccess || (e = cudaGetDeviceProperties(&s->prop, dev)) != cudaSuccess) {
        free(s), free(be);
        return shoal_error_set(err, SHOAL_ERR_DEVICE, "cuda:%d: %s", dev, cudaGetErrorString(e));
    }
    be->name = "cuda";
    be->host_visible = false;
    be->state = s;
    be->destroy = cu_destroy;
    be->describe = cu_describe;
    be->model_init = cu_model_init;
    be->model_release = cu_model_release;
    be->ctx_new = cu_ctx_new;
    be->ctx_free = cu_ctx_free;
    be->alloc = cu_alloc;
    be->free = cu_free;
    be->upload = cu_upload;
    be->download = cu_download;
    be->stage = cu_stage;
    be->stage_upload = cu_stage_upload;
    be->get_rows = cu_get_rows;
    be->rmsnorm = cu_rmsnorm;
    be->matmul = cu_matmul;
    be->rope = cu_rope;
    be->kv_store = cu_kv_store;
    be->attention = cu_attention;
    be->swiglu = cu_swiglu;
    be->add = cu_add;
    be->sync = cu_sync;
    be->matmul_multi = cu_matmul_multi;
    be->matmul_swiglu = cu_matmul_swiglu;
    be->matmul_add = cu_matmul_add;
    be->rope_store = cu_rope_store;
    *out = be;
    return SHOAL_OK;
}
