/* guest_mix.c: a guest using what clang emits for ordinary C (wasi-libc stdio, function pointers,
 * switch tables, floats, 64-bit math, bulk memory, sign extension, saturating conversions), so the
 * decoder and validator see real compiler output. It is only decoded and validated, never run here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef double (*op_fn)(double, double);
static double add(double a, double b) { return a + b; }
static double mul(double a, double b) { return a * b; }
static double sub_(double a, double b) { return a - b; }
static const op_fn ops[] = {add, mul, sub_};

static int classify(int c) {
    switch (c) {
    case 0: return 10;
    case 1: return 21;
    case 2: return 32;
    case 3: return 43;
    case 4: return 54;
    case 5: return 65;
    case 6: return 76;
    default: return -1;
    }
}

int main(int argc, char **argv) {
    char buf[256];
    memset(buf, (int)argc, sizeof buf);
    memcpy(buf + 1, argv[0], strlen(argv[0]) < 200 ? strlen(argv[0]) : 200);
    int8_t small = (int8_t)buf[3];
    int32_t widened = small;                 /* i32.extend8_s */
    float f = (float)widened * 1.5f;
    int32_t sat = (int32_t)(f * 1e10f);      /* i32.trunc_sat_f32_s under -mnontrapping-fptoint */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof buf; i++) h = (h ^ (uint8_t)buf[i]) * 1099511628211ull;
    double acc = 0;
    for (int i = 0; i < argc + 5; i++) acc = ops[i % 3](acc, (double)classify(i));
    char *heap = malloc(1000);
    if (!heap) return 1;
    snprintf(heap, 1000, "%d %lld %g %llx\n", sat, (long long)widened, acc, (unsigned long long)h);
    fputs(heap, stdout);
    free(heap);
    return 0;
}
