/* sieve: integer loops over a large byte array and in registers. A sieve of Eratosthenes (strided
 * stores, counting loads) and the longest Collatz chain below a bound (64-bit shifts, adds, branches). */
#include <string.h>

#include "bench_util.h"

static uint32_t sieve(uint8_t *composite, uint32_t limit) {
    memset(composite, 0, limit + 1);
    for (uint32_t i = 2; (uint64_t)i * i <= limit; i++)
        if (!composite[i])
            for (uint32_t j = i * i; j <= limit; j += i)
                composite[j] = 1;
    uint32_t count = 0;
    for (uint32_t i = 2; i <= limit; i++)
        count += !composite[i];
    return count;
}

static uint32_t collatz_len(uint64_t x) {
    uint32_t len = 1;
    while (x != 1) {
        x = (x & 1) ? 3 * x + 1 : x >> 1;
        len++;
    }
    return len;
}

int main(int argc, char **argv) {
    uint32_t n = bench_size(argc, argv, 16000000);
    uint8_t *composite = bench_alloc((size_t)n + 1);
    uint64_t h = 0;
    uint32_t primes = 0;
    for (int rep = 0; rep < 6; rep++) {
        primes = sieve(composite, n - (uint32_t)rep);
        h = bench_mix(h, primes);
    }
    printf("primes below %u: %u\n", n, primes);
    uint32_t best = 0, best_start = 0, bound = n / 12;
    for (uint32_t i = 1; i < bound; i++) {
        uint32_t len = collatz_len(i);
        if (len > best) {
            best = len;
            best_start = i;
        }
    }
    printf("longest collatz chain below %u: %u (length %u)\n", bound, best_start, best);
    h = bench_mix(h, best_start);
    h = bench_mix(h, best);
    printf("checksum %016llx\n", (unsigned long long)h);
    free(composite);
    return 0;
}
