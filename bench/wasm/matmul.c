/* matmul: a tight float64 loop. Dense C = A * B with blocked i-k-j loops (the inner loop streams a row
 * of B and C: load, multiply-add, store), then a second product with the transposed layout so dot
 * products (a reduction over two loads) are measured too. */
#include "bench_util.h"

static void matmul_ikj(uint32_t n, const double *a, const double *b, double *c) {
    for (uint32_t i = 0; i < n * n; i++)
        c[i] = 0;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < n; k++) {
            double aik = a[i * n + k];
            const double *brow = b + (size_t)k * n;
            double *crow = c + (size_t)i * n;
            for (uint32_t j = 0; j < n; j++)
                crow[j] += aik * brow[j];
        }
}

/* c = a * transpose(bt): each element is a dot product of two contiguous rows. */
static void matmul_dot(uint32_t n, const double *a, const double *bt, double *c) {
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < n; j++) {
            const double *x = a + (size_t)i * n, *y = bt + (size_t)j * n;
            double s = 0;
            for (uint32_t k = 0; k < n; k++)
                s += x[k] * y[k];
            c[(size_t)i * n + j] = s;
        }
}

int main(int argc, char **argv) {
    uint32_t n = bench_size(argc, argv, 480);
    size_t cells = (size_t)n * n;
    double *a = bench_alloc(cells * sizeof(double)), *b = bench_alloc(cells * sizeof(double));
    double *c = bench_alloc(cells * sizeof(double));
    uint32_t seed = 12345;
    /* Plain IEEE double arithmetic in a fixed order (C forbids reassociation and x86-64 has no implicit
     * FMA at -O2), so the native and the Wasm build round identically. */
    for (size_t i = 0; i < cells; i++) {
        a[i] = (double)(int32_t)(bench_rand(&seed) % 17 - 8) / 64.0;
        b[i] = (double)(int32_t)(bench_rand(&seed) % 17 - 8) / 64.0;
    }
    uint64_t h = 0;
    double trace = 0;
    for (int rep = 0; rep < 3; rep++) {
        matmul_ikj(n, a, b, c);
        for (uint32_t i = 0; i < n; i++)
            trace += c[(size_t)i * n + i];
        /* Feed the result back in so no repetition can be skipped. */
        matmul_dot(n, c, a, b);
        for (size_t i = 0; i < cells; i++) {
            double v = b[i] / 256.0;
            b[i] = v - (double)(int64_t)v; /* keep magnitudes bounded; truncation is exact */
        }
    }
    for (size_t i = 0; i < cells; i += 7) {
        union {
            double d;
            uint64_t u;
        } bits = {b[i]};
        h = bench_mix(h, bits.u);
    }
    printf("matmul %ux%u: trace sum %.6f\n", n, n, trace);
    printf("checksum %016llx\n", (unsigned long long)h);
    free(a);
    free(b);
    free(c);
    return 0;
}
