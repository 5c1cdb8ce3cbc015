/* mandel: float64 arithmetic in registers. The Mandelbrot set over a grid, escape-time iteration
 * (multiply, add, compare, branch) with no memory traffic in the inner loop. */
#include "bench_util.h"

int main(int argc, char **argv) {
    uint32_t size = bench_size(argc, argv, 1600);
    const uint32_t max_iter = 200;
    uint64_t h = 0, inside = 0, total_iter = 0;
    for (uint32_t py = 0; py < size; py++) {
        double ci = -1.25 + 2.5 * (double)py / (double)size;
        uint32_t row = 0;
        for (uint32_t px = 0; px < size; px++) {
            double cr = -2.0 + 2.5 * (double)px / (double)size;
            double zr = 0, zi = 0, zr2 = 0, zi2 = 0;
            uint32_t it = 0;
            while (it < max_iter && zr2 + zi2 <= 4.0) {
                zi = 2.0 * zr * zi + ci;
                zr = zr2 - zi2 + cr;
                zr2 = zr * zr;
                zi2 = zi * zi;
                it++;
            }
            total_iter += it;
            inside += it == max_iter;
            row = row * 31 + it;
        }
        h = bench_mix(h, row);
    }
    printf("mandelbrot %ux%u: %llu points inside, %llu iterations\n", size, size,
           (unsigned long long)inside, (unsigned long long)total_iter);
    printf("checksum %016llx\n", (unsigned long long)h);
    return 0;
}
