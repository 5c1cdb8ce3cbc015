/*
 * bench_util.h: the few helpers every benchmark kernel shares. Each kernel is one file that builds both
 * natively and to wasm32-wasi, so everything here is fixed-width and free of platform differences: a
 * checksum must come out bit-identical on x86-64 and in a 32-bit Wasm guest.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* The work size: argv[1] when given (the test suite passes small sizes), else the benchmark default. */
static inline uint32_t bench_size(int argc, char **argv, uint32_t dflt) {
    if (argc < 2)
        return dflt;
    char *end = NULL;
    unsigned long v = strtoul(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || v == 0 || v > 0xffffffffu) {
        fprintf(stderr, "%s: bad size '%s'\n", argv[0], argv[1]);
        exit(2);
    }
    return (uint32_t)v;
}

/* xorshift32: cheap, deterministic input data. State must not be zero. */
static inline uint32_t bench_rand(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/* Folds a value into a running 64-bit checksum (order-sensitive, so a wrong order shows). */
static inline uint64_t bench_mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static inline void *bench_alloc(size_t size) {
    void *p = malloc(size);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", size);
        exit(1);
    }
    return p;
}

#endif
