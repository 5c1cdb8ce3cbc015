/*
 * tcuda.cu: the CUDA device for `shoal_tensor`, and the memory providers that make a guest's linear
 * memory the GPU's buffer.
 *
 * MAPPED: each committed range of the memory's reservation is page-locked and mapped with
 *   cudaHostRegister(cudaHostRegisterMapped); with unified addressing the device pointer equals the host
 *   pointer, so kernels take guest addresses as they are. A range grown by memory.grow is registered when
 *   it is committed. Data read once crosses the bus once, inside the kernel that needs it.
 * UNIFIED: the reservation is managed memory (cudaMallocManaged); pages migrate on use.
 * COPY: the baseline of runtimes without zero-copy: guest bytes -> pageable staging buffer -> device
 *   buffer, compute, and back, for every operation.
 *
 * Data a guest reuses (weights, a matrix multiplied many times) is better read from device memory than
 * over the bus each time: `keep` makes that copy, once, from pinned memory.
 *
 * All work goes to one stream; operations are asynchronous until `sync`.
 */
#include "cublas_dl.h"
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tdevice.h"

namespace {

struct Range {
    void *base;
    uint64_t size;
};

/* Registered ranges of one guest memory (MAPPED) or its managed allocation (UNIFIED). */
struct Region {
    void *base;
    uint64_t reserved;
    Range *ranges;
    int nranges, cap;
    bool managed;
};

struct TCuda {
    tdevice base;
    int ordinal;
    cudaStream_t stream;
    cublasHandle_t blas;
    const CublasApi *cb;
    shoal_memory_provider provider;
    Region *regions;
    int nregions, region_cap;
    uint64_t device_bytes; /* bytes of cudaMalloc this device holds (kept views, staging) */
    uint64_t device_peak;
};

shoal_status cuda_fail(shoal_error *err, cudaError_t e, const char *what) {
    cudaGetLastError(); /* a failure must not be reported again by the next operation */
    return shoal_error_set(err, e == cudaErrorMemoryAllocation ? SHOAL_ERR_NOMEM : SHOAL_ERR_DEVICE, "cuda: %s: %s",
                           what, cudaGetErrorString(e));
}

#define CU_TRY(call, what)                                                                                         \
    do {                                                                                                           \
        cudaError_t e_ = (call);                                                                                   \
        if (e_ != cudaSuccess) return cuda_fail(err, e_, what);                                                    \
    } while (0)

/* --- memory providers ------------------------------------------------------------------------------ */

Region *region_find(TCuda *c, void *base) {
    for (int i = 0; i < c->nregions; i++)
        if (c->regions[i].base == base) return &c->regions[i];
    return NULL;
}

Region *region_add(TCuda *c, void *base, uint64_t reserved, bool managed) {
    if (c->nregions == c->region_cap) {
        int cap = c->region_cap ? c->region_cap * 2 : 4;
        Region *r = (Region *)realloc(c->regions, (size_t)cap * sizeof *r);
        if (!r) return NULL;
        c->regions = r;
        c->region_cap = cap;
    }
    Region *r = &c->regions[c->nregions++];
    memset(r, 0, sizeof *r);
    r->base = base;
    r->reserved = reserved;
    r->managed = managed;
    return r;
}

void region_remove(TCuda *c, Region *r) {
    free(r->ranges);
    *r = c->regions[--c->nregions];
}

shoal_status register_range(Region *r, void *p, uint64_t size, shoal_error *err) {
    if (size == 0) return SHOAL_OK;
    if (r->nranges == r->cap) {
        int cap = r->cap ? r->cap * 2 : 8;
        Range *n = (Range *)realloc(r->ranges, (size_t)cap * sizeof *n);
        if (!n) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        r->ranges = n;
        r->cap = cap;
    }
    CU_TRY(cudaHostRegister(p, size, cudaHostRegisterMapped | cudaHostRegisterPortable), "cudaHostRegister");
    void *dev = NULL;
    cudaError_t e = cudaHostGetDevicePointer(&dev, p, 0);
    if (e != cudaSuccess || dev != p) {
        cudaHostUnregister(p);
        /* Kernels receive guest addresses as they are; without identity that would be wrong, not slow. */
        return shoal_error_set(err, SHOAL_ERR_DEVICE,
                               "cuda: mapped guest memory has a device address different from its host address "
                               "(%p vs %p); this GPU/driver lacks unified addressing",
                               dev, p);
    }
    r->ranges[r->nranges++] = Range{p, size};
    return SHOAL_OK;
}

void *mapped_reserve(void *user, uint64_t reserve_bytes, uint64_t initial_bytes, shoal_error *err) {
    TCuda *c = (TCuda *)user;
    const shoal_memory_provider *host = shoal_host_memory_provider();
    void *base = host->reserve(host->user, reserve_bytes, initial_bytes, err);
    if (!base) return NULL;
    Region *r = region_add(c, base, reserve_bytes, false);
    if (!r || register_range(r, base, initial_bytes, err) != SHOAL_OK) {
        if (!r) shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        else region_remove(c, r);
        host->release(host->user, base, initial_bytes, reserve_bytes);
        return NULL;
    }
    return base;
}

shoal_status mapped_commit(void *user, void *base, uint64_t old_bytes, uint64_t new_bytes, shoal_error *err) {
    TCuda *c = (TCuda *)user;
    const shoal_memory_provider *host = shoal_host_memory_provider();
    Region *r = region_find(c, base);
    if (!r) return shoal_error_set(err, SHOAL_ERR_ARG, "cuda: commit of an unknown memory");
    shoal_status st = host->commit(host->user, base, old_bytes, new_bytes, err);
    if (st != SHOAL_OK) return st;
    return register_range(r, (uint8_t *)base + old_bytes, new_bytes - old_bytes, err);
}

void mapped_release(void *user, void *base, uint64_t committed, uint64_t reserve_bytes) {
    TCuda *c = (TCuda *)user;
    cudaStreamSynchronize(c->stream); /* no kernel may still be using the pages */
    Region *r = region_find(c, base);
    if (r) {
        for (int i = 0; i < r->nranges; i++) cudaHostUnregister(r->ranges[i].base);
        region_remove(c, r);
    }
    const shoal_memory_provider *host = shoal_host_memory_provider();
    host->release(host->user, base, committed, reserve_bytes);
}

void *unified_reserve(void *user, uint64_t reserve_bytes, uint64_t initial_bytes, shoal_error *err) {
    TCuda *c = (TCuda *)user;
    size_t free_b = 0, total_b = 0;
    cudaError_t e = cudaMemGetInfo(&free_b, &total_b);
    if (e != cudaSuccess) {
        cuda_fail(err, e, "cudaMemGetInfo");
        return NULL;
    }
    /* Managed memory is backed on first touch, but we never ask for more than half of what the card has
     * free: the guest's memory then simply cannot grow past that. */
    uint64_t want = reserve_bytes;
    if (want > free_b / 2) want = (free_b / 2) & ~(uint64_t)0xffff;
    if (want < initial_bytes) {
        shoal_error_set(err, SHOAL_ERR_NOMEM, "cuda: %llu bytes of managed memory requested, %llu free on the device",
                        (unsigned long long)initial_bytes, (unsigned long long)free_b);
        return NULL;
    }
    void *p = NULL;
    e = cudaMallocManaged(&p, want, cudaMemAttachGlobal);
    if (e != cudaSuccess) {
        cuda_fail(err, e, "cudaMallocManaged");
        return NULL;
    }
    if (!region_add(c, p, want, true)) {
        cudaFree(p);
        shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    memset(p, 0, initial_bytes); /* managed memory is not promised to be zeroed */
    return p;
}

shoal_status unified_commit(void *user, void *base, uint64_t old_bytes, uint64_t new_bytes, shoal_error *err) {
    TCuda *c = (TCuda *)user;
    Region *r = region_find(c, base);
    if (!r) return shoal_error_set(err, SHOAL_ERR_ARG, "cuda: commit of an unknown memory");
    if (new_bytes > r->reserved)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "cuda: managed guest memory is limited to %llu bytes",
                               (unsigned long long)r->reserved);
    CU_TRY(cudaStreamSynchronize(c->stream), "cudaStreamSynchronize");
    memset((uint8_t *)base + old_bytes, 0, new_bytes - old_bytes);
    return SHOAL_OK;
}

void unified_release(void *user, void *base, uint64_t committed, uint64_t reserve_bytes) {
    (void)committed, (void)reserve_bytes;
    TCuda *c = (TCuda *)user;
    cudaStreamSynchronize(c->stream);
    Region *r = region_find(c, base);
    if (r) region_remove(c, r);
    cudaFree(base);
}

/* --- element access in kernels ---------------------------------------------------------------------- */

__device__ __forceinline__ float ld(const void *p, int t, uint64_t i) {
    if (t == TD_F32) return ((const float *)p)[i];
    if (t == TD_F16) return __half2float(((const __half *)p)[i]);
    return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
}

__device__ __forceinline__ void st(void *p, int t, uint64_t i, float v) {
    if (t == TD_F32) ((float *)p)[i] = v;
    else if (t == TD_F16) ((__half *)p)[i] = __float2half_rn(v);
    else ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
}

/* f32 fast path: 16-byte loads keep enough requests in flight to fill the bus (PCIe or HBM). */
__global__ void k_binary_f32x4(float4 *o, const float4 *a, const float4 *b, uint64_t n4, int mul) {
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n4; i += (uint64_t)gridDim.x * blockDim.x) {
        float4 x = a[i], y = b[i], r;
        if (mul) r = make_float4(x.x * y.x, x.y * y.y, x.z * y.z, x.w * y.w);
        else r = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
        o[i] = r;
    }
}

__global__ void k_binary(void *o, int to, const void *a, int ta, const void *b, int tb, uint64_t n, uint64_t bn,
                         int mul) {
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x) {
        float x = ld(a, ta, i), y = ld(b, tb, i % bn);
        st(o, to, i, mul ? x * y : x + y);
    }
}

__global__ void k_scale(void *o, int to, const void *a, int ta, uint64_t n, float s) {
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x)
        st(o, to, i, ld(a, ta, i) * s);
}

__global__ void k_silu(void *o, int to, const void *a, int ta, uint64_t n) {
    for (uint64_t i = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x) {
        float x = ld(a, ta, i);
        st(o, to, i, x / (1.0f + expf(-x)));
    }
}

__device__ float block_reduce(float v, bool is_max) {
    __shared__ float sh[32];
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, w) : v + w;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = lane < nw ? sh[lane] : (is_max ? -INFINITY : 0.0f);
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, w) : v + w;
    }
    return v;
}

__global__ void k_softmax(void *o, int to, const void *a, int ta, uint64_t cols) {
    uint64_t base = blockIdx.x * cols;
    float mx = -INFINITY;
    for (uint64_t j = threadIdx.x; j < cols; j += blockDim.x) mx = fmaxf(mx, ld(a, ta, base + j));
    mx = block_reduce(mx, true);
    float sum = 0.0f;
    for (uint64_t j = threadIdx.x; j < cols; j += blockDim.x) sum += expf(ld(a, ta, base + j) - mx);
    sum = block_reduce(sum, false);
    float inv = 1.0f / sum;
    for (uint64_t j = threadIdx.x; j < cols; j += blockDim.x) st(o, to, base + j, expf(ld(a, ta, base + j) - mx) * inv);
}

__global__ void k_rmsnorm(void *o, int to, const void *a, int ta, const void *w, int tw, uint64_t cols, float eps) {
    uint64_t base = blockIdx.x * cols;
    float ss = 0.0f;
    for (uint64_t j = threadIdx.x; j < cols; j += blockDim.x) {
        float x = ld(a, ta, base + j);
        ss += x * x;
    }
    ss = block_reduce(ss, false);
    float inv = rsqrtf(ss / (float)cols + eps);
    for (uint64_t j = threadIdx.x; j < cols; j += blockDim.x) st(o, to, base + j, ld(a, ta, base + j) * inv * ld(w, tw, j));
}

__global__ void k_rope(void *o, int to, const void *a, int ta, uint64_t npairs, uint64_t dim, uint64_t heads,
                       uint64_t tokens, int pos0, float theta) {
    for (uint64_t p = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x; p < npairs;
         p += (uint64_t)gridDim.x * blockDim.x) {
        uint64_t half = dim / 2, row = p / half, i = (p % half) * 2, t = (row / heads) % tokens, off = row * dim + i;
        float freq = powf(theta, -(float)i / (float)dim), ang = (float)(pos0 + t) * freq, s, c;
        sincosf(ang, &s, &c);
        float x0 = ld(a, ta, off), x1 = ld(a, ta, off + 1);
        st(o, to, off, x0 * c - x1 * s);
        st(o, to, off + 1, x0 * s + x1 * c);
    }
}

unsigned grid_for(uint64_t n) {
    uint64_t b = (n + 255) / 256;
    return (unsigned)(b > 65535 * 8 ? 65535 * 8 : (b ? b : 1));
}

/* Copies between device memory and mapped guest memory. A kernel, not cudaMemcpy: a guest buffer may span
 * several registrations (each memory.grow adds one), which the copy engine refuses, while kernels see
 * one flat address range. */
__global__ void k_copy(void *dst, const void *src, uint64_t n) {
    uint64_t i0 = blockIdx.x * (uint64_t)blockDim.x + threadIdx.x, step = (uint64_t)gridDim.x * blockDim.x;
    if ((((uintptr_t)dst | (uintptr_t)src) & 15) == 0) {
        uint64_t n16 = n / 16;
        for (uint64_t i = i0; i < n16; i += step) ((uint4 *)dst)[i] = ((const uint4 *)src)[i];
        for (uint64_t i = n16 * 16 + i0; i < n; i += step) ((uint8_t *)dst)[i] = ((const uint8_t *)src)[i];
    } else {
        for (uint64_t i = i0; i < n; i += step) ((uint8_t *)dst)[i] = ((const uint8_t *)src)[i];
    }
}

/* --- operand placement ------------------------------------------------------------------------------ */

/* Where an operation finds its operands and puts its result. In MAPPED/UNIFIED modes inputs are read in
 * place (or from the kept copy) and the output is written in place (or into the kept copy, then copied
 * out). In COPY mode every operand goes through a staging buffer and a device buffer. */
struct Operands {
    const void *in[3];
    void *out;
    void *tmp[4];      /* device buffers to free after the operation (COPY mode) */
    void *staging[4];  /* host staging buffers (COPY mode) */
    int ntmp, nstaging;
    uint64_t tmp_bytes;
};

shoal_status dev_alloc(TCuda *c, void **p, uint64_t n, shoal_error *err) {
    CU_TRY(cudaMallocAsync(p, n ? n : 1, c->stream), "cudaMallocAsync");
    c->device_bytes += n;
    if (c->device_bytes > c->device_peak) c->device_peak = c->device_bytes;
    return SHOAL_OK;
}

shoal_status place(TCuda *c, Operands *ops, tview *out, const tview *const *ins, int nin, shoal_error *err) {
    memset(ops, 0, sizeof *ops);
    bool copy = c->base.mode == SHOAL_MEMORY_COPY;
    for (int i = 0; i < nin; i++) {
        const tview *v = ins[i];
        if (v->resident) {
            ops->in[i] = v->resident;
        } else if (!copy) {
            ops->in[i] = v->host;
        } else {
            void *stage = malloc(v->nbytes ? v->nbytes : 1), *dev = NULL;
            if (!stage) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory for a staging buffer");
            ops->staging[ops->nstaging++] = stage;
            memcpy(stage, v->host, v->nbytes);
            shoal_status s = dev_alloc(c, &dev, v->nbytes, err);
            if (s != SHOAL_OK) return s;
            ops->tmp[ops->ntmp++] = dev;
            ops->tmp_bytes += v->nbytes;
            CU_TRY(cudaMemcpyAsync(dev, stage, v->nbytes, cudaMemcpyHostToDevice, c->stream), "cudaMemcpyAsync");
            ops->in[i] = dev;
        }
    }
    if (out->resident) {
        ops->out = out->resident;
    } else if (!copy) {
        ops->out = out->host;
    } else {
        shoal_status s = dev_alloc(c, &ops->out, out->nbytes, err);
        if (s != SHOAL_OK) return s;
        ops->tmp[ops->ntmp++] = ops->out;
        ops->tmp_bytes += out->nbytes;
    }
    return SHOAL_OK;
}

/* Brings the result to guest memory where it was computed elsewhere, and frees what place() made. COPY
 * mode completes the whole round trip here, as the copying runtimes do. */
shoal_status finish(TCuda *c, Operands *ops, tview *out, bool ok, shoal_error *err) {
    shoal_status st = SHOAL_OK;
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess && ok) {
        st = cuda_fail(err, e, "kernel launch");
        ok = false;
    }
    if (ok && c->base.mode == SHOAL_MEMORY_COPY) {
        void *stage = malloc(out->nbytes ? out->nbytes : 1);
        if (!stage) {
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory for a staging buffer");
        } else {
            e = cudaMemcpyAsync(stage, ops->out, out->nbytes, cudaMemcpyDeviceToHost, c->stream);
            if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
            if (e == cudaSuccess) memcpy(out->host, stage, out->nbytes);
            else st = cuda_fail(err, e, "copy back");
            free(stage);
        }
    } else if (ok && out->resident) {
        if (c->base.mode == SHOAL_MEMORY_MAPPED) {
            k_copy<<<grid_for(out->nbytes / 16 + 1), 256, 0, c->stream>>>(out->host, out->resident, out->nbytes);
            e = cudaGetLastError();
        } else {
            e = cudaMemcpyAsync(out->host, out->resident, out->nbytes, cudaMemcpyDeviceToHost, c->stream);
        }
        if (e != cudaSuccess) st = cuda_fail(err, e, "copy of a kept output");
    }
    for (int i = 0; i < ops->ntmp; i++) cudaFreeAsync(ops->tmp[i], c->stream);
    c->device_bytes -= ops->tmp_bytes;
    if (ops->nstaging) cudaStreamSynchronize(c->stream); /* staging buffers may still be read by copies */
    for (int i = 0; i < ops->nstaging; i++) free(ops->staging[i]);
    return st;
}


/* --- operations -------------------------------------------------------------------------------------- */

cudaDataType cu_type(tdtype t) { return t == TD_F32 ? CUDA_R_32F : t == TD_F16 ? CUDA_R_16F : CUDA_R_16BF; }

shoal_status op_matmul(tdevice *d, tview *out, const tview *a, const tview *b, uint32_t batch, uint32_t m, uint32_t n,
                       uint32_t k, shoal_error *err) {
    TCuda *c = (TCuda *)d;
    const tview *ins[2] = {a, b};
    Operands ops;
    shoal_status s = place(c, &ops, out, ins, 2, err);
    bool ok = s == SHOAL_OK;
    if (ok) {
        /* Row-major out = a @ b is column-major out^T = b^T @ a^T: pass b first, with n and m swapped. */
        float one = 1.0f, zero = 0.0f;
        cublasStatus_t bs = c->cb->gemm_strided_batched_ex(
            c->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)n, (int)m, (int)k, &one, ops.in[1], cu_type(b->dtype), (int)n,
            (long long)k * n, ops.in[0], cu_type(a->dtype), (int)k, (long long)m * k, &zero, ops.out,
            cu_type(out->dtype), (int)n, (long long)m * n, (int)batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (bs != CUBLAS_STATUS_SUCCESS) {
            s = shoal_error_set(err, SHOAL_ERR_DEVICE, "cublas: gemm failed: %s", c->cb->status_string(bs));
            ok = false;
        }
    }
    shoal_status f = finish(c, &ops, out, ok, err);
    return s != SHOAL_OK ? s : f;
}

shoal_status op_binary(tdevice *d, tbinop op, tview *out, const tview *a, const tview *b, shoal_error *err) {
    TCuda *c = (TCuda *)d;
    const tview *ins[2] = {a, b};
    Operands ops;
    shoal_status s = place(c, &ops, out, ins, 2, err);
    if (s == SHOAL_OK) {
        int mul = op == TB_MUL;
        bool vec = out->dtype == TD_F32 && a->dtype == TD_F32 && b->dtype == TD_F32 && b->nelem == a->nelem &&
                   a->nelem % 4 == 0 && ((uintptr_t)ops.in[0] | (uintptr_t)ops.in[1] | (uintptr_t)ops.out) % 16 == 0;
        if (vec)
            k_binary_f32x4<<<grid_for(a->nelem / 4), 256, 0, c->stream>>>((float4 *)ops.out, (const float4 *)ops.in[0],
                                                                         (const float4 *)ops.in[1], a->nelem / 4, mul);
        else
            k_binary<<<grid_for(a->nelem), 256, 0, c->stream>>>(ops.out, out->dtype, ops.in[0], a->dtype, ops.in[1],
                                                                b->dtype, a->nelem, b->nelem, mul);
    }
    shoal_status f = finish(c, &ops, out, s == SHOAL_OK, err);
    return s != SHOAL_OK ? s : f;
}

shoal_status op_scale(tdevice *d, tview *out, const tview *a, float sc, shoal_error *err) {
    TCuda *c = (TCuda *)d;
    const tview *ins[1] = {a};
    Operands ops;
    shoal_status s = place(c, &ops, out, ins, 1, err);
    if (s == SHOAL_OK)
        k_scale<<<grid_for(a->nelem), 256, 0, c->stream>>>(ops.out, out->dtype, ops.in[0], a->dtype, a->nelem, sc);
    shoal_status f = finish(c, &ops, out, s == SHOAL_OK, err);
    return s != SHOAL_OK ? s : f;
}

shoal_status op_unary(tdevice *d, tunop op, tview *out, const tview *a, shoal_error *err) {
    TCuda *c = (TCuda *)d;
    const tview *ins[1] = {a};
    Operands ops;
    shoal_status s = place(c, &ops, out, ins, 1, err);
    if (s == SHOAL_OK) {
        if (op == TU_SILU) {
            k_silu<<<grid_for(a->nelem), 256, 0, c->stream>>>(ops.out, out->dtype, ops.in[0], a->dtype, a->nelem);
        } else {
            uint64_t cols = a->dims[a->ndim - 1], rows = a->nelem / cols;
            k_softmax<<<(unsigned)rows, 256, 0, c->stream>>>(ops.out, out->dtype, ops.in[0], a->dtype, cols);
        }
    }
    shoal_status f = finish(c, &ops, out, s == SHOAL_OK, err);
    return s != SHOAL_OK ? s : f;
}

shoal_status op_rmsnorm(tdevice *d, tview *out, const tview *a, const tview *w, float eps, shoal_error *err) {
    TCuda *c = (TCuda *)d;
    const tview *ins[2] = {a, w};
    Operands ops;
    shoal_status s = place(c, &ops, out, ins, 2, err);
    if (s == SHOAL_OK) {
        uint64_t cols = a->dims[a->ndim - 1], rows = a->nelem / cols;
        k_rmsnorm<<<(unsigned)rows, 256, 0, c->stream>>>(ops.out, out->dtype, ops.in[0], a->dtype, ops.in[1], w->dtype,
                                                         cols, eps);
    }
    shoal_status f = finish(c, &ops, out, s == SHOAL_OK, err);
    return s != SHOAL_OK ? s : f;
}

shoal_status op_rope(tdevice *d, tview *out, const tview *a, int32_t pos0, float theta, shoal_error *err) {
    TCuda *c = (TCuda *)d;
    const tview *ins[1] = {a};
    Operands ops;
    shoal_status s = place(c, &ops, out, ins, 1, err);
    if (s == SHOAL_OK) {
        uint64_t dim = a->dims[a->ndim - 1];
        uint64_t heads = a->ndim >= 3 ? a->dims[a->ndim - 2] : 1;
        uint64_t tokens = a->ndim == 1 ? 1 : a->ndim == 2 ? a->dims[0] : a->dims[a->ndim - 3];
        uint64_t npairs = a->nelem / 2;
        k_rope<<<grid_for(npairs), 256, 0, c->stream>>>(ops.out, out->dtype, ops.in[0], a->dtype, npairs, dim, heads,
                                                        tokens, pos0, theta);
    }
    shoal_status f = finish(c, &ops, out, s == SHOAL_OK, err);
    return s != SHOAL_OK ? s : f;
}

shoal_status op_sync(tdevice *d, shoal_error *err) {
    TCuda *c = (TCuda *)d;
    CU_TRY(cudaStreamSynchronize(c->stream), "cudaStreamSynchronize");
    return SHOAL_OK;
}

shoal_status op_update(tdevice *d, tview *v, shoal_error *err) {
    TCuda *c = (TCuda *)d;
    /* In MAPPED mode the source is page-locked and mapped: the GPU pulls it over the bus, no staging. */
    if (d->mode == SHOAL_MEMORY_MAPPED) {
        k_copy<<<grid_for(v->nbytes / 16 + 1), 256, 0, c->stream>>>(v->resident, v->host, v->nbytes);
        CU_TRY(cudaGetLastError(), "keep: copy");
    } else {
        CU_TRY(cudaMemcpyAsync(v->resident, v->host, v->nbytes, cudaMemcpyHostToDevice, c->stream), "keep: copy");
    }
    return SHOAL_OK;
}

shoal_status op_keep(tdevice *d, tview *v, shoal_error *err) {
    TCuda *c = (TCuda *)d;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, v->nbytes ? v->nbytes : 1);
    if (e != cudaSuccess) return cuda_fail(err, e, "keep: cudaMalloc");
    c->device_bytes += v->nbytes;
    if (c->device_bytes > c->device_peak) c->device_peak = c->device_bytes;
    v->resident = p;
    shoal_status s = op_update(d, v, err);
    if (s != SHOAL_OK) {
        cudaFree(p);
        c->device_bytes -= v->nbytes;
        v->resident = NULL;
    }
    return s;
}

void op_release(tdevice *d, tview *v) {
    TCuda *c = (TCuda *)d;
    if (!v->resident) return;
    cudaStreamSynchronize(c->stream);
    cudaFree(v->resident);
    c->device_bytes -= v->nbytes;
    v->resident = NULL;
}

void op_memory_stats(tdevice *d, uint64_t *now, uint64_t *peak, bool reset_peak) {
    TCuda *c = (TCuda *)d;
    *now = c->device_bytes;
    *peak = c->device_peak;
    if (reset_peak) c->device_peak = c->device_bytes;
}

void *op_device_address(tdevice *d, void *host) {
    if (d->mode == SHOAL_MEMORY_COPY) return NULL;
    cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, host) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    return attr.devicePointer;
}

void op_destroy(tdevice *d) {
    TCuda *c = (TCuda *)d;
    cudaStreamSynchronize(c->stream);
    c->cb->destroy(c->blas);
    cudaStreamDestroy(c->stream);
    free(c->regions);
    free(c);
}

} // namespace

extern "C" shoal_status tcuda_open(int ordinal, shoal_memory_mode mode, tdevice **out, shoal_error *err) {
    *out = NULL;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
        return shoal_error_set(err, SHOAL_ERR_DEVICE, "no CUDA device is available (%s)",
                               e != cudaSuccess ? cudaGetErrorString(e) : "the driver reports 0 devices");
    if (ordinal >= count)
        return shoal_error_set(err, SHOAL_ERR_DEVICE, "cuda:%d does not exist (%d device%s)", ordinal, count,
                               count == 1 ? "" : "s");
    if (mode == SHOAL_MEMORY_DEFAULT) mode = SHOAL_MEMORY_MAPPED;
    if (mode == SHOAL_MEMORY_HOST)
        return shoal_error_set(err, SHOAL_ERR_ARG, "the cuda device needs memory mode mapped, unified or copy");
    CU_TRY(cudaSetDevice(ordinal), "cudaSetDevice");
    cudaDeviceProp prop;
    CU_TRY(cudaGetDeviceProperties(&prop, ordinal), "cudaGetDeviceProperties");
    if (mode == SHOAL_MEMORY_UNIFIED && !prop.managedMemory)
        return shoal_error_set(err, SHOAL_ERR_DEVICE, "cuda:%d has no managed memory", ordinal);
    TCuda *c = (TCuda *)calloc(1, sizeof *c);
    if (!c) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    c->ordinal = ordinal;
    e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        free(c);
        return cuda_fail(err, e, "cudaStreamCreate");
    }
    c->cb = cublas_api(err);
    if (!c->cb) {
        cudaStreamDestroy(c->stream);
        free(c);
        return err ? err->status : SHOAL_ERR_DEVICE;
    }
    if (c->cb->create(&c->blas) != CUBLAS_STATUS_SUCCESS ||
        c->cb->set_stream(c->blas, c->stream) != CUBLAS_STATUS_SUCCESS) {
        cudaStreamDestroy(c->stream);
        free(c);
        return shoal_error_set(err, SHOAL_ERR_DEVICE, "cublas: could not create a handle");
    }
    tdevice *d = &c->base;
    d->name = "cuda";
    d->mode = mode;
    snprintf(d->description, sizeof d->description, "cuda/%s: %.100s", shoal_memory_mode_name(mode), prop.name);
    c->provider.name = mode == SHOAL_MEMORY_UNIFIED ? "cuda-unified" : "cuda-mapped";
    c->provider.user = c;
    if (mode == SHOAL_MEMORY_MAPPED) {
        c->provider.reserve = mapped_reserve;
        c->provider.commit = mapped_commit;
        c->provider.release = mapped_release;
        d->provider = &c->provider;
    } else if (mode == SHOAL_MEMORY_UNIFIED) {
        c->provider.reserve = unified_reserve;
        c->provider.commit = unified_commit;
        c->provider.release = unified_release;
        d->provider = &c->provider;
    } else {
        d->provider = NULL; /* COPY: plain host memory, staged per operation */
    }
    d->matmul = op_matmul;
    d->binary = op_binary;
    d->scale = op_scale;
    d->unary = op_unary;
    d->rmsnorm = op_rmsnorm;
    d->rope = op_rope;
    d->sync = op_sync;
    d->keep = op_keep;
    d->update = op_update;
    d->release = op_release;
    d->memory_stats = op_memory_stats;
    d->device_address = op_device_address;
    d->destroy = op_destroy;
    *out = d;
    return SHOAL_OK;
}
