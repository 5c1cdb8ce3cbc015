/*
 * tensor_ops.c: a guest that checks every shoal_tensor operation against a plain C reference computed in
 * the guest, for every dtype, and every bounds and argument violation the host must refuse. It prints one
 * line per failed check, a checksum of all outputs (so runs in different memory modes can be compared
 * bit for bit), and "N checks passed, N failed"; it exits non-zero if any check failed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_guest.h"

static int passed, failed;
static uint64_t checksum = 1469598103934665603ull;

static void check(int ok, const char *what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        char msg[256];
        shoal_tensor_last_error(msg, sizeof msg);
        printf("FAIL: %s (last error: %s)\n", what, msg);
    }
}

static void hash_bytes(const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) checksum = (checksum ^ b[i]) * 1099511628211ull;
}

/* --- dtypes in the guest --------------------------------------------------------------------------- */

static size_t dsize(int t) { return t == SHOAL_TENSOR_F32 ? 4 : 2; }

static float half_to_f(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 1024), e - 25);
    return (h & 0x8000) ? -v : v;
}

static uint16_t f_to_half(float f) { /* inputs here are small and exact: truncation is rounding */
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t s = (uint16_t)((x >> 16) & 0x8000);
    int e = (int)((x >> 23) & 255) - 127 + 15;
    if ((x & 0x7fffffff) == 0) return s;
    if (e <= 0) return s;
    return s | (uint16_t)(e << 10) | (uint16_t)((x >> 13) & 1023);
}

static float get(const void *p, int t, size_t i) {
    if (t == SHOAL_TENSOR_F32) return ((const float *)p)[i];
    uint16_t h = ((const uint16_t *)p)[i];
    if (t == SHOAL_TENSOR_F16) return half_to_f(h);
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static void put(void *p, int t, size_t i, float v) {
    if (t == SHOAL_TENSOR_F32) {
        ((float *)p)[i] = v;
    } else if (t == SHOAL_TENSOR_F16) {
        ((uint16_t *)p)[i] = f_to_half(v);
    } else {
        uint32_t x;
        memcpy(&x, &v, 4);
        ((uint16_t *)p)[i] = (uint16_t)(x >> 16);
    }
}

static uint32_t rng = 12345;
static float rnd(void) { /* multiples of 1/8 in [-2, 2): exact in every dtype */
    rng = rng * 1664525u + 1013904223u;
    return (float)((int)(rng >> 24) % 32 - 16) / 8.0f;
}

static void *alloc_t(int t, size_t n) { return aligned_alloc(16, (n * dsize(t) + 15) / 16 * 16); }

static int32_t view(void *p, int t, int ndim, uint32_t d0, uint32_t d1, uint32_t d2) {
    uint32_t dims[3] = {d0, d1, d2};
    return shoal_tensor_view((uint32_t)(uintptr_t)p, t, ndim, dims);
}

static float tol(int t) { return t == SHOAL_TENSOR_F32 ? 1e-5f : t == SHOAL_TENSOR_F16 ? 2e-3f : 1.6e-2f; }

static int close_to(float got, float want, int t) {
    return fabsf(got - want) <= tol(t) * (1.0f + fabsf(want));
}

/* --- operations -------------------------------------------------------------------------------------- */

static void test_matmul(int t, uint32_t batch, uint32_t m, uint32_t k, uint32_t n) {
    size_t na = (size_t)batch * m * k, nb = (size_t)batch * k * n, no = (size_t)batch * m * n;
    void *a = alloc_t(t, na), *b = alloc_t(t, nb);
    float *o = aligned_alloc(16, (no * 4 + 15) / 16 * 16);
    for (size_t i = 0; i < na; i++) put(a, t, i, rnd());
    for (size_t i = 0; i < nb; i++) put(b, t, i, rnd());
    int nd = batch > 1 ? 3 : 2;
    int32_t ha = batch > 1 ? view(a, t, 3, batch, m, k) : view(a, t, 2, m, k, 0);
    int32_t hb = batch > 1 ? view(b, t, 3, batch, k, n) : view(b, t, 2, k, n, 0);
    int32_t ho = batch > 1 ? view(o, SHOAL_TENSOR_F32, 3, batch, m, n) : view(o, SHOAL_TENSOR_F32, 2, m, n, 0);
    check(ha > 0 && hb > 0 && ho > 0, "matmul views");
    check(shoal_tensor_matmul(ho, ha, hb) == 0 && shoal_tensor_sync() == 0, "matmul runs");
    int bad = 0;
    for (uint32_t bi = 0; bi < batch; bi++)
        for (uint32_t i = 0; i < m; i++)
            for (uint32_t j = 0; j < n; j++) {
                float want = 0.0f;
                for (uint32_t p = 0; p < k; p++)
                    want += get(a, t, (size_t)bi * m * k + (size_t)i * k + p) * get(b, t, (size_t)bi * k * n + (size_t)p * n + j);
                if (!close_to(o[(size_t)bi * m * n + (size_t)i * n + j], want, SHOAL_TENSOR_F32)) bad++;
            }
    char what[96];
    snprintf(what, sizeof what, "matmul dtype %d %dD [%u,%u]x[%u,%u]: %d wrong", t, nd, m, k, k, n, bad);
    check(bad == 0, what);
    hash_bytes(o, no * 4);
    shoal_tensor_free(ha), shoal_tensor_free(hb), shoal_tensor_free(ho);
    free(a), free(b), free(o);
}

static void test_elementwise(int t) {
    enum { R = 6, C = 40 };
    size_t n = R * C;
    void *a = alloc_t(t, n), *b = alloc_t(t, n), *bc = alloc_t(t, C), *o = alloc_t(t, n), *w = alloc_t(t, C);
    for (size_t i = 0; i < n; i++) put(a, t, i, rnd()), put(b, t, i, rnd());
    for (size_t i = 0; i < C; i++) put(bc, t, i, rnd()), put(w, t, i, rnd());
    int32_t ha = view(a, t, 2, R, C, 0), hb = view(b, t, 2, R, C, 0), hbc = view(bc, t, 1, C, 0, 0);
    int32_t ho = view(o, t, 2, R, C, 0), hw = view(w, t, 1, C, 0, 0);
    check(ha > 0 && hb > 0 && hbc > 0 && ho > 0 && hw > 0, "elementwise views");
    char what[96];
    int bad;

#define RUN_CHECK(call, name, expr)                                                                               \
    do {                                                                                                          \
        check((call) == 0 && shoal_tensor_sync() == 0, name " runs");                                              \
        bad = 0;                                                                                                  \
        for (size_t i = 0; i < n; i++)                                                                            \
            if (!close_to(get(o, t, i), (expr), t)) bad++;                                                        \
        snprintf(what, sizeof what, name " dtype %d: %d wrong", t, bad);                                          \
        check(bad == 0, what);                                                                                    \
        hash_bytes(o, n * dsize(t));                                                                              \
    } while (0)

    RUN_CHECK(shoal_tensor_add(ho, ha, hb), "add", get(a, t, i) + get(b, t, i));
    RUN_CHECK(shoal_tensor_mul(ho, ha, hb), "mul", get(a, t, i) * get(b, t, i));
    RUN_CHECK(shoal_tensor_add(ho, ha, hbc), "add broadcast", get(a, t, i) + get(bc, t, i % C));
    RUN_CHECK(shoal_tensor_scale(ho, ha, 0.5f), "scale", get(a, t, i) * 0.5f);
    RUN_CHECK(shoal_tensor_silu(ho, ha), "silu", get(a, t, i) / (1.0f + expf(-get(a, t, i))));

    /* softmax and rmsnorm need per-row references */
    float ref[R * C];
    for (int r = 0; r < R; r++) {
        float mx = -INFINITY, sum = 0.0f, ss = 0.0f;
        for (int j = 0; j < C; j++) mx = fmaxf(mx, get(a, t, (size_t)r * C + j));
        for (int j = 0; j < C; j++) sum += expf(get(a, t, (size_t)r * C + j) - mx);
        for (int j = 0; j < C; j++) ref[r * C + j] = expf(get(a, t, (size_t)r * C + j) - mx) / sum;
        (void)ss;
    }
    RUN_CHECK(shoal_tensor_softmax(ho, ha), "softmax", ref[i]);
    for (int r = 0; r < R; r++) {
        float ss = 0.0f;
        for (int j = 0; j < C; j++) ss += get(a, t, (size_t)r * C + j) * get(a, t, (size_t)r * C + j);
        float inv = 1.0f / sqrtf(ss / C + 1e-5f);
        for (int j = 0; j < C; j++) ref[r * C + j] = get(a, t, (size_t)r * C + j) * inv * get(w, t, j);
    }
    RUN_CHECK(shoal_tensor_rmsnorm(ho, ha, hw, 1e-5f), "rmsnorm", ref[i]);
    /* rope over [T=6, D=40], positions from 3 */
    for (int r = 0; r < R; r++)
        for (int j = 0; j < C; j += 2) {
            float ang = (float)(3 + r) * powf(10000.0f, -(float)j / C), x0 = get(a, t, (size_t)r * C + j),
                  x1 = get(a, t, (size_t)r * C + j + 1);
            ref[r * C + j] = x0 * cosf(ang) - x1 * sinf(ang);
            ref[r * C + j + 1] = x0 * sinf(ang) + x1 * cosf(ang);
        }
    RUN_CHECK(shoal_tensor_rope(ho, ha, 3, 10000.0f), "rope", ref[i]);
    /* in place: out aliases a */
    memcpy(o, a, n * dsize(t));
    RUN_CHECK(shoal_tensor_scale(ho, ho, 2.0f), "scale in place", get(a, t, i) * 2.0f);
#undef RUN_CHECK
    shoal_tensor_free(ha), shoal_tensor_free(hb), shoal_tensor_free(hbc), shoal_tensor_free(ho), shoal_tensor_free(hw);
    free(a), free(b), free(bc), free(o), free(w);
}

/* keep/update/release: the documented contract */
static void test_residency(void) {
    float a[16], b[16], o[16];
    for (int i = 0; i < 16; i++) a[i] = (float)i, b[i] = 1.0f;
    int32_t ha = view(a, SHOAL_TENSOR_F32, 1, 16, 0, 0), hb = view(b, SHOAL_TENSOR_F32, 1, 16, 0, 0),
            ho = view(o, SHOAL_TENSOR_F32, 1, 16, 0, 0);
    check(shoal_tensor_keep(ha) == 0, "keep");
    check(shoal_tensor_add(ho, ha, hb) == 0 && shoal_tensor_sync() == 0 && o[5] == 6.0f, "add reads kept view");
    a[5] = 100.0f;
    check(shoal_tensor_update(ha) == 0, "update");
    check(shoal_tensor_add(ho, ha, hb) == 0 && shoal_tensor_sync() == 0 && o[5] == 101.0f, "update refreshes the copy");
    check(shoal_tensor_release(ha) == 0, "release");
    a[5] = 7.0f;
    check(shoal_tensor_add(ho, ha, hb) == 0 && shoal_tensor_sync() == 0 && o[5] == 8.0f, "released view reads memory");
    check(shoal_tensor_keep(ho) == 0, "keep output");
    check(shoal_tensor_scale(ho, ha, 3.0f) == 0 && shoal_tensor_sync() == 0 && o[5] == 21.0f,
          "an op writing a kept view writes guest memory");
    check(shoal_tensor_free(ha) == 0 && shoal_tensor_free(hb) == 0 && shoal_tensor_free(ho) == 0, "free");
    check(shoal_tensor_keep(ha) == SHOAL_TENSOR_EHANDLE, "keep of a freed handle");
}

/* --- violations ---------------------------------------------------------------------------------------- */

static void test_violations(void) {
    uint32_t mem = (uint32_t)__builtin_wasm_memory_size(0) * 65536u;
    float small[8];
    uint32_t d1[1] = {8};
    int32_t h = shoal_tensor_view((uint32_t)(uintptr_t)small, SHOAL_TENSOR_F32, 1, d1);
    check(h > 0, "a good view");

    uint32_t dims[4] = {16, 0, 0, 0};
    check(shoal_tensor_view(mem, SHOAL_TENSOR_F32, 1, dims) == SHOAL_TENSOR_EBOUNDS, "offset at end of memory");
    check(shoal_tensor_view(mem - 32, SHOAL_TENSOR_F32, 1, dims) == SHOAL_TENSOR_EBOUNDS, "view runs past the end");
    check(shoal_tensor_view(0xfffffff0u, SHOAL_TENSOR_F32, 1, dims) == SHOAL_TENSOR_EBOUNDS, "offset+length overflows 32 bits");
    uint32_t huge[4] = {65536, 65536, 65536, 65536};
    check(shoal_tensor_view(0, SHOAL_TENSOR_F32, 4, huge) == SHOAL_TENSOR_EBOUNDS, "shape product overflows");
    uint32_t big2[2] = {0x80000000u, 2};
    check(shoal_tensor_view(0, SHOAL_TENSOR_F32, 2, big2) == SHOAL_TENSOR_EINVAL, "negative dimension");
    uint32_t zero[2] = {4, 0};
    check(shoal_tensor_view(0, SHOAL_TENSOR_F32, 2, zero) == SHOAL_TENSOR_EINVAL, "zero dimension");
    check(shoal_tensor_view(0, SHOAL_TENSOR_F32, 0, dims) == SHOAL_TENSOR_EINVAL, "ndim 0");
    check(shoal_tensor_view(0, SHOAL_TENSOR_F32, 5, dims) == SHOAL_TENSOR_EINVAL, "ndim 5");
    check(shoal_tensor_view(0, 7, 1, dims) == SHOAL_TENSOR_EINVAL, "unknown dtype");
    check(shoal_tensor_view(0, SHOAL_TENSOR_F32, 1, (const uint32_t *)(uintptr_t)(mem - 2)) == SHOAL_TENSOR_EBOUNDS,
          "dims pointer past the end");
    check(shoal_tensor_matmul(h, 999999, h) == SHOAL_TENSOR_EHANDLE, "unknown handle");
    check(shoal_tensor_matmul(h, 0, h) == SHOAL_TENSOR_EHANDLE, "handle 0");
    check(shoal_tensor_matmul(-3, h, h) == SHOAL_TENSOR_EHANDLE, "negative handle");
    check(shoal_tensor_last_error((char *)(uintptr_t)(mem - 4), 64) == SHOAL_TENSOR_EBOUNDS, "last_error buffer past the end");

    /* memory grown between calls: a view beyond the old end is refused, then accepted after growth */
    uint32_t end = (uint32_t)__builtin_wasm_memory_size(0) * 65536u;
    check(shoal_tensor_view(end, SHOAL_TENSOR_F32, 1, dims) == SHOAL_TENSOR_EBOUNDS, "view past the current end");
    check(__builtin_wasm_memory_grow(0, 1) != (size_t)-1, "memory.grow");
    int32_t hg = shoal_tensor_view(end, SHOAL_TENSOR_F32, 1, dims);
    check(hg > 0, "view in the grown memory");
    float *grown = (float *)(uintptr_t)end;
    for (int i = 0; i < 16; i++) grown[i] = (float)i;
    check(shoal_tensor_scale(hg, hg, 2.0f) == 0 && shoal_tensor_sync() == 0 && grown[15] == 30.0f, "op on grown memory");

    /* shape and dtype mismatches */
    float m1[12], m2[12], m3[16];
    int32_t a = view(m1, SHOAL_TENSOR_F32, 2, 3, 4, 0), b = view(m2, SHOAL_TENSOR_F32, 2, 3, 4, 0),
            o = view(m3, SHOAL_TENSOR_F32, 2, 4, 4, 0);
    check(shoal_tensor_matmul(o, a, b) == SHOAL_TENSOR_ESHAPE, "matmul inner dimensions differ");
    int32_t b16 = view(m2, SHOAL_TENSOR_F16, 2, 4, 3, 0);
    check(shoal_tensor_matmul(o, a, b16) == SHOAL_TENSOR_ESHAPE, "matmul dtypes differ");
    int32_t sq = view(m1, SHOAL_TENSOR_F32, 2, 3, 3, 0), sq_out = view(m1, SHOAL_TENSOR_F32, 2, 3, 3, 0);
    check(shoal_tensor_matmul(sq_out, sq, sq) == SHOAL_TENSOR_EINVAL, "matmul output overlaps an input");
    check(shoal_tensor_add(o, a, b) == SHOAL_TENSOR_ESHAPE, "add shapes differ");
    int32_t odd = view(m1, SHOAL_TENSOR_F32, 2, 4, 3, 0);
    check(shoal_tensor_rope(odd, odd, 0, 10000.0f) == SHOAL_TENSOR_ESHAPE, "rope odd dimension");
    check(shoal_tensor_rope(a, a, -1, 10000.0f) == SHOAL_TENSOR_EINVAL, "rope negative position");
    check(shoal_tensor_rmsnorm(a, a, b, 1e-5f) == SHOAL_TENSOR_ESHAPE, "rmsnorm weight shape");
    char msg[128];
    check(shoal_tensor_last_error(msg, sizeof msg) > 0 && strstr(msg, "rmsnorm") != NULL, "last_error says what failed");
}

int main(void) {
    char device[160];
    shoal_tensor_device_name(device, sizeof device);
    printf("device: %s\n", device);
    for (int t = 0; t < 3; t++) {
        test_matmul(t, 1, 7, 13, 5);
        test_matmul(t, 1, 64, 64, 64);
        test_matmul(t, 3, 9, 17, 11);
        test_elementwise(t);
    }
    test_residency();
    test_violations();
    printf("checksum: %016llx\n", (unsigned long long)checksum);
    printf("%d checks passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
