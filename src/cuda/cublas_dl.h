/*
 * cublas_dl.h: cuBLAS, loaded when a CUDA device is first used rather than linked. Linking it would make
 * every `shoal` process map and relocate cuBLAS at start (~0.7 s and 26k page faults measured), CPU-only
 * runs included; with dlopen only the processes that use the GPU pay for it.
 */
#ifndef CUBLAS_DL_H
#define CUBLAS_DL_H

#include <cublas_v2.h>
#include <dlfcn.h>
#include <pthread.h>

#include "shoal.h"

struct CublasApi {
    decltype(&cublasCreate_v2) create;
    decltype(&cublasDestroy_v2) destroy;
    decltype(&cublasSetStream_v2) set_stream;
    decltype(&cublasSgemm_v2) sgemm;
    /* written out: the C++ header overloads these two, the library exports the C ones */
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
    cublasStatus_t (*gemm_strided_batched_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                              const void *, const void *, cudaDataType, int, long long int,
                                              const void *, cudaDataType, int, long long int, const void *, void *,
                                              cudaDataType, int, long long int, int, cublasComputeType_t,
                                              cublasGemmAlgo_t);
    decltype(&cublasGetStatusString) status_string;
    const char *error; /* why loading failed, or NULL */
};

static inline void cublas_dl_load(CublasApi *a) {
    const char *names[] = {"libcublas.so.13", "libcublas.so", "/usr/local/cuda/lib64/libcublas.so.13",
                           "/usr/local/cuda/lib64/libcublas.so"};
    void *h = NULL;
    for (const char *n : names)
        if ((h = dlopen(n, RTLD_NOW | RTLD_LOCAL))) break;
    if (!h) {
        a->error = "cannot load libcublas.so.13 (is the CUDA toolkit's lib64 on the library path?)";
        return;
    }
    a->create = (decltype(a->create))dlsym(h, "cublasCreate_v2");
    a->destroy = (decltype(a->destroy))dlsym(h, "cublasDestroy_v2");
    a->set_stream = (decltype(a->set_stream))dlsym(h, "cublasSetStream_v2");
    a->sgemm = (decltype(a->sgemm))dlsym(h, "cublasSgemm_v2");
    a->gemm_ex = (decltype(a->gemm_ex))dlsym(h, "cublasGemmEx");
    a->gemm_strided_batched_ex = (decltype(a->gemm_strided_batched_ex))dlsym(h, "cublasGemmStridedBatchedEx");
    a->status_string = (decltype(a->status_string))dlsym(h, "cublasGetStatusString");
    if (!a->create || !a->destroy || !a->set_stream || !a->sgemm || !a->gemm_ex || !a->gemm_strided_batched_ex ||
        !a->status_string)
        a->error = "libcublas lacks a function Shoal needs (a CUDA 12 or newer cuBLAS is required)";
}

/* The loaded API, or NULL with err set. Loaded once per process (the handle is never closed). */
static inline const CublasApi *cublas_api(shoal_error *err) {
    static CublasApi api;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, [] { cublas_dl_load(&api); });
    if (api.error) {
        shoal_error_set(err, SHOAL_ERR_DEVICE, "cuda: %s", api.error);
        return NULL;
    }
    return &api;
}

#endif
