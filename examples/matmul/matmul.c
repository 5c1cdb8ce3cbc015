/*
 * matmul: the zero-copy chain from inside a guest. The guest fills two matrices in its own linear memory,
 * asks the runtime's device to multiply them (shoal_tensor.matmul), and checks the result through the same
 * pointer: no byte is copied by the runtime on the way (see `shoal bench zerocopy`).
 *
 *   shoal run [--device cpu|cuda] [--memory host|mapped|unified|copy] matmul.wasm [N]
 */
#include <stdio.h>
#include <stdlib.h>

#include "shoal_guest.h"

static int check(int32_t rc, const char *what) {
    if (rc >= 0) return 0;
    char msg[256];
    shoal_tensor_last_error(msg, sizeof msg);
    fprintf(stderr, "matmul: %s failed (%d): %s\n", what, rc, msg);
    return 1;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 128;
    if (n < 1 || n > 4096) {
        fprintf(stderr, "usage: matmul [N in 1..4096]\n");
        return 2;
    }
    size_t count = (size_t)n * (size_t)n;
    float *a = malloc(count * sizeof *a), *b = malloc(count * sizeof *b), *c = calloc(count, sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "matmul: out of memory\n");
        return 1;
    }
    /* Small integers: every product and sum is exact in f32, so any difference is an error. */
    for (size_t i = 0; i < count; i++) {
        a[i] = (float)((int)(i % 7) - 3);
        b[i] = (float)((int)((i * 5) % 11) - 5);
    }
    uint32_t dims[2] = {(uint32_t)n, (uint32_t)n};
    int32_t ha = shoal_tensor_view((uint32_t)(uintptr_t)a, SHOAL_TENSOR_F32, 2, dims);
    int32_t hb = shoal_tensor_view((uint32_t)(uintptr_t)b, SHOAL_TENSOR_F32, 2, dims);
    int32_t hc = shoal_tensor_view((uint32_t)(uintptr_t)c, SHOAL_TENSOR_F32, 2, dims);
    if (check(ha, "view a") || check(hb, "view b") || check(hc, "view c")) return 1;
    if (check(shoal_tensor_matmul(hc, ha, hb), "matmul") || check(shoal_tensor_sync(), "sync")) return 1;

    size_t errors = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            float want = 0.0f;
            for (int k = 0; k < n; k++) want += a[(size_t)i * n + k] * b[(size_t)k * n + j];
            if (c[(size_t)i * n + j] != want) errors++;
        }
    char device[160];
    shoal_tensor_device_name(device, sizeof device);
    printf("matmul %dx%d on %s: %zu errors across %zu elements (guest buffers at %p, %p, %p)\n", n, n, device, errors,
           count, (void *)a, (void *)b, (void *)c);
    return errors ? 1 : 0;
}
