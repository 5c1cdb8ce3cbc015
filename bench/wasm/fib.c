/* fib: call-heavy recursion. Doubly recursive Fibonacci, Takeuchi's tak and Ackermann's function:
 * almost all time goes into call/return, argument passing and small integer compares. */
#include "bench_util.h"

static uint32_t fib(uint32_t n) {
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static int32_t tak(int32_t x, int32_t y, int32_t z) {
    if (y >= x)
        return z;
    return tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y));
}

/* Recursion depth grows as 2^(n+3) for m == 3, so n stays small; the work is in the call count. */
static uint32_t ack(uint32_t m, uint32_t n) {
    if (m == 0)
        return n + 1;
    if (n == 0)
        return ack(m - 1, 1);
    return ack(m - 1, ack(m, n - 1));
}

int main(int argc, char **argv) {
    uint32_t n = bench_size(argc, argv, 40);
    if (n < 8 || n > 45) {
        fprintf(stderr, "fib: size must be 8..45\n");
        return 2;
    }
    uint64_t h = 0;
    uint32_t f = fib(n);
    printf("fib(%u) = %u\n", n, f);
    h = bench_mix(h, f);
    int32_t x = (int32_t)n - 6, y = x / 2, z = x / 4;
    int32_t t = tak(x, y, z);
    printf("tak(%d,%d,%d) = %d\n", (int)x, (int)y, (int)z, (int)t);
    h = bench_mix(h, (uint32_t)t);
    uint32_t an = n / 4 > 10 ? 10 : n / 4;
    for (uint32_t i = 0; i < 3; i++) {
        uint32_t a = ack(3, an + i - 2);
        printf("ack(3,%u) = %u\n", an + i - 2, a);
        h = bench_mix(h, a);
    }
    printf("checksum %016llx\n", (unsigned long long)h);
    return 0;
}
