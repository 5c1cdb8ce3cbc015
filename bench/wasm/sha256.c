/* sha256: hashing. A from-scratch SHA-256 (FIPS 180-4) over a buffer of up to 16 MiB, several passes,
 * each digest folded back into the buffer so the passes chain; the size argument is the MiB hashed.
 * 32-bit rotates, xors, adds and big-endian loads: the integer-ALU profile of checksums, ciphers and
 * compressors. */
#include <string.h>

#include "bench_util.h"

typedef struct sha256_ctx {
    uint32_t h[8];
    uint8_t block[64];
    uint32_t used;   /* bytes in block */
    uint64_t length; /* message bytes so far */
} sha256_ctx;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror(uint32_t x, unsigned n) {
    return (x >> n) | (x << (32 - n));
}

static void sha256_compress(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
               p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

static void sha256_init(sha256_ctx *c) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof iv);
    c->used = 0;
    c->length = 0;
}

static void sha256_update(sha256_ctx *c, const uint8_t *p, size_t n) {
    c->length += n;
    if (c->used) {
        size_t take = 64 - c->used < n ? 64 - c->used : n;
        memcpy(c->block + c->used, p, take);
        c->used += (uint32_t)take, p += take, n -= take;
        if (c->used < 64)
            return;
        sha256_compress(c->h, c->block);
        c->used = 0;
    }
    for (; n >= 64; p += 64, n -= 64)
        sha256_compress(c->h, p);
    memcpy(c->block, p, n);
    c->used = (uint32_t)n;
}

static void sha256_final(sha256_ctx *c, uint8_t out[32]) {
    uint64_t bits = c->length * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (c->used < 56 ? 56 : 120) - c->used;
    for (int i = 0; i < 8; i++)
        pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(c, pad, padlen + 8);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (uint8_t)(c->h[i] >> (24 - 8 * j));
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[32]) {
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, p, n);
    sha256_final(&c, out);
}

static void hex(const uint8_t d[32], char out[65]) {
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int main(int argc, char **argv) {
    uint32_t mib = bench_size(argc, argv, 160);
    /* Known-answer check first: a broken SHA-256 would still give matching checksums everywhere. */
    uint8_t d[32];
    char text[65];
    sha256((const uint8_t *)"abc", 3, d);
    hex(d, text);
    if (strcmp(text, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0) {
        printf("sha256(\"abc\") wrong: %s\n", text);
        return 1;
    }
    uint32_t size_mib = mib < 16 ? mib : 16, passes = mib / size_mib;
    const uint32_t size = size_mib << 20;
    uint8_t *buf = bench_alloc(size);
    uint32_t seed = 0x9e3779b9;
    for (uint32_t i = 0; i < size; i += 4) {
        uint32_t r = bench_rand(&seed);
        memcpy(buf + i, &r, 4);
    }
    for (uint32_t pass = 0; pass < passes; pass++) {
        /* Odd lengths so the padding path differs from pass to pass. */
        sha256(buf, size - (pass % 1024) * 13, d);
        memcpy(buf + (pass * 4096) % (size - 32), d, 32);
    }
    hex(d, text);
    printf("sha256 after %u passes over %u MiB: %s\n", passes, size >> 20, text);
    printf("checksum %.16s\n", text);
    free(buf);
    return 0;
}
