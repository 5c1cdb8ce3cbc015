/*
 * bench_llm: decode and prefill speed of a model on a backend, with the achieved memory bandwidth as a
 * fraction of what a device-to-device copy reaches on the same GPU in the same run.
 *
 *   bench_llm MODEL [--device cuda] [--kv f16|f32] [--decode 64] [--contexts 128,1024,8192] [--prefill 512]
 *
 * Prints one line per measurement, machine-readable: `decode ctx=128 tok_s=... gbps=... frac=...`.
 */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shoal.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* GB/s of a device-to-device copy, counting bytes read and written (the figure HBM specs quote). */
static double d2d_bandwidth(void) {
    size_t n = (size_t)1 << 30;
    void *a = NULL, *b = NULL;
    if (cudaMalloc(&a, n) != cudaSuccess || cudaMalloc(&b, n) != cudaSuccess) return 0;
    cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice);
    cudaDeviceSynchronize();
    double best = 1e9;
    for (int i = 0; i < 5; i++) {
        double t0 = now();
        cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice);
        cudaDeviceSynchronize();
        double t = now() - t0;
        if (t < best) best = t;
    }
    cudaFree(a), cudaFree(b);
    return 2.0 * n / best / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_llm MODEL [--device D] [--kv f16|f32] [--decode N] [--contexts a,b,c] [--prefill N]\n");
        return 2;
    }
    const char *device = "cuda", *contexts = "128,1024,8192";
    shoal_kv_type kv = SHOAL_KV_F16;
    int ndecode = 64, nprefill = 512;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--device")) device = argv[i + 1];
        else if (!strcmp(argv[i], "--kv")) kv = !strcmp(argv[i + 1], "f32") ? SHOAL_KV_F32 : SHOAL_KV_F16;
        else if (!strcmp(argv[i], "--decode")) ndecode = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--contexts")) contexts = argv[i + 1];
        else if (!strcmp(argv[i], "--prefill")) nprefill = atoi(argv[i + 1]);
    }
    double bw = strcmp(device, "cuda") ? 0 : d2d_bandwidth();
    printf("d2d_copy gbps=%.0f\n", bw);
    shoal_error err = {0};
    shoal_model *m = NULL;
    shoal_model_options mo = {0};
    mo.backend = device;
    double t0 = now();
    if (shoal_model_load(argv[1], &mo, &m, &err)) {
        fprintf(stderr, "load: %s\n", err.message);
        return 1;
    }
    shoal_model_info info;
    shoal_model_get_info(m, &info);
    printf("model %s weights=%s bytes=%llu backend=\"%s\" load_s=%.2f\n", argv[1], info.weight_type,
           (unsigned long long)info.weight_bytes, info.backend, now() - t0);
    int maxctx = 0;
    for (const char *p = contexts; *p;) {
        int c = atoi(p);
        if (c > maxctx) maxctx = c;
        p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p);
    }
    uint32_t n_ctx = (uint32_t)(maxctx + ndecode + 8 > nprefill + 8 ? maxctx + ndecode + 8 : nprefill + 8);
    shoal_session_options so = {.n_ctx = n_ctx, .kv_type = kv, .max_batch = 512};
    shoal_session *s = NULL;
    if (shoal_session_new(m, &so, &s, &err)) {
        fprintf(stderr, "session: %s\n", err.message);
        return 1;
    }
    int32_t *ids = malloc(sizeof(int32_t) * n_ctx);
    srand(7);
    for (uint32_t i = 0; i < n_ctx; i++) ids[i] = rand() % (int)info.vocab_size;
    float *logits = malloc(sizeof(float) * info.vocab_size);
    uint64_t kv_row = (uint64_t)info.n_kv_heads * info.head_dim * (kv == SHOAL_KV_F16 ? 2 : 4) * 2 * info.n_layers;
    for (const char *p = contexts; *p;) {
        int ctx = atoi(p);
        p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p);
        shoal_session_reset(s);
        if (shoal_session_prefill(s, ids, (uint32_t)ctx, NULL, &err)) {
            fprintf(stderr, "prefill: %s\n", err.message);
            return 1;
        }
        for (int w = 0; w < 3; w++) /* warm-up: graph capture happens on the second step */
            if (shoal_session_decode(s, ids[w], logits, &err)) {
                fprintf(stderr, "decode: %s\n", err.message);
                return 1;
            }
        double t = now();
        for (int i = 0; i < ndecode; i++)
            if (shoal_session_decode(s, ids[i], logits, &err)) {
                fprintf(stderr, "decode: %s\n", err.message);
                return 1;
            }
        t = now() - t;
        double tps = ndecode / t;
        double bytes = (double)info.weight_bytes + (double)kv_row * (ctx + 3 + ndecode / 2.0);
        double gbps = bytes * tps / 1e9;
        printf("decode ctx=%d tok_s=%.1f gbps=%.0f frac=%.3f\n", ctx, tps, gbps, bw > 0 ? gbps / bw : 0);
        fflush(stdout);
    }
    if (nprefill > 0) {
        double best = 1e9;
        for (int r = 0; r < 4; r++) {
            shoal_session_reset(s);
            double t = now();
            if (shoal_session_prefill(s, ids, (uint32_t)nprefill, logits, &err)) {
                fprintf(stderr, "prefill: %s\n", err.message);
                return 1;
            }
            t = now() - t;
            if (r > 0 && t < best) best = t; /* the first run loads cuBLAS kernels */
        }
        printf("prefill n=%d tok_s=%.0f\n", nprefill, nprefill / best);
    }
    shoal_session_free(s);
    shoal_model_free(m);
    return 0;
}
