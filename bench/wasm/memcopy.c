/* memcopy: bulk memory traffic over tens of MB. memset, memcpy and overlapping memmove of whole 32 MiB
 * buffers (in Wasm these compile to memory.fill / memory.copy), plus 4 KiB block copies at scattered
 * offsets as a record-shuffling program would do. The checksum reads a sample of every cache line. */
#include <string.h>

#include "bench_util.h"

#define BUF_SIZE (32u << 20)
#define BLOCK 4096u

static uint64_t sample(const uint8_t *p, uint32_t size) {
    uint64_t h = 0;
    for (uint32_t i = 0; i < size; i += 64) {
        uint32_t w;
        memcpy(&w, p + i, sizeof w);
        h = bench_mix(h, w);
    }
    return h;
}

int main(int argc, char **argv) {
    uint32_t reps = bench_size(argc, argv, 24);
    uint8_t *src = bench_alloc(BUF_SIZE), *dst = bench_alloc(BUF_SIZE);
    uint32_t seed = 0x2545f491;
    /* Random first block, then doubling copies with one fresh word per copy: the setup is itself
     * bulk copying, so it does not dilute what this program measures. */
    for (uint32_t i = 0; i < BLOCK; i += 4) {
        uint32_t r = bench_rand(&seed);
        memcpy(src + i, &r, sizeof r);
    }
    for (uint32_t len = BLOCK; len < BUF_SIZE; len *= 2) {
        memcpy(src + len, src, len);
        uint32_t r = bench_rand(&seed);
        memcpy(src + len, &r, sizeof r);
    }
    uint64_t h = 0;
    for (uint32_t rep = 0; rep < reps; rep++) {
        memset(dst, (int)(rep & 0xff), BUF_SIZE);
        h = bench_mix(h, dst[rep * 4099u % BUF_SIZE]);
        memcpy(dst, src, BUF_SIZE);
        /* Overlapping moves, forwards and backwards, by an odd distance so nothing stays aligned. */
        memmove(dst + 3 + rep, dst, BUF_SIZE - 3 - rep);
        memmove(dst, dst + 5 + rep, BUF_SIZE - 5 - rep);
        memmove(src, dst, BUF_SIZE);
        for (uint32_t k = 0; k < 2048; k++) {
            uint32_t from = bench_rand(&seed) % (BUF_SIZE / BLOCK) * BLOCK;
            uint32_t to = bench_rand(&seed) % (BUF_SIZE / BLOCK - 1) * BLOCK + (k & 63);
            memcpy(dst + to, src + from, BLOCK);
        }
        h = bench_mix(h, dst[(rep * 7919u) % BUF_SIZE]);
    }
    h = bench_mix(h, sample(src, BUF_SIZE));
    h = bench_mix(h, sample(dst, BUF_SIZE));
    printf("memcopy: %u rounds over %u MiB\n", reps, BUF_SIZE >> 20);
    printf("checksum %016llx\n", (unsigned long long)h);
    free(src);
    free(dst);
    return 0;
}
