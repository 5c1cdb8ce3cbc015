/* sort: comparison sorting of 32-bit integers. A quicksort (median of three, insertion sort for short
 * ranges, recursion on the smaller side) and a bottom-up mergesort over the same random array:
 * data-dependent branches, indexed loads and stores. */
#include <string.h>

#include "bench_util.h"

static void insertion_sort(uint32_t *a, int32_t lo, int32_t hi) {
    for (int32_t i = lo + 1; i <= hi; i++) {
        uint32_t v = a[i];
        int32_t j = i - 1;
        while (j >= lo && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

static inline void swap(uint32_t *a, int32_t i, int32_t j) {
    uint32_t t = a[i];
    a[i] = a[j];
    a[j] = t;
}

static void quicksort(uint32_t *a, int32_t lo, int32_t hi) {
    while (hi - lo > 16) {
        int32_t mid = lo + (hi - lo) / 2;
        if (a[mid] < a[lo])
            swap(a, mid, lo);
        if (a[hi] < a[lo])
            swap(a, hi, lo);
        if (a[hi] < a[mid])
            swap(a, hi, mid);
        uint32_t pivot = a[mid];
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                swap(a, i, j);
                i++;
                j--;
            }
        }
        /* Recurse into the smaller part and loop on the larger: the depth stays logarithmic. */
        if (j - lo < hi - i) {
            quicksort(a, lo, j);
            lo = i;
        } else {
            quicksort(a, i, hi);
            hi = j;
        }
    }
    insertion_sort(a, lo, hi);
}

static void mergesort(uint32_t *a, uint32_t *tmp, uint32_t n) {
    uint32_t *from = a, *to = tmp;
    for (uint32_t width = 1; width < n; width *= 2) {
        for (uint32_t lo = 0; lo < n; lo += 2 * width) {
            uint32_t mid = lo + width < n ? lo + width : n;
            uint32_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            uint32_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                to[k++] = from[j] < from[i] ? from[j++] : from[i++];
            while (i < mid)
                to[k++] = from[i++];
            while (j < hi)
                to[k++] = from[j++];
        }
        uint32_t *t = from;
        from = to;
        to = t;
    }
    if (from != a)
        memcpy(a, from, (size_t)n * sizeof *a);
}

static uint64_t check(const uint32_t *a, uint32_t n) {
    uint64_t h = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i && a[i - 1] > a[i]) {
            printf("not sorted at %u\n", i);
            exit(1);
        }
        if (i % 97 == 0)
            h = bench_mix(h, a[i]);
    }
    return h;
}

int main(int argc, char **argv) {
    uint32_t n = bench_size(argc, argv, 3000000);
    uint32_t *orig = bench_alloc((size_t)n * 4), *a = bench_alloc((size_t)n * 4);
    uint32_t *tmp = bench_alloc((size_t)n * 4);
    uint32_t seed = 0xdeadbeef;
    /* A narrower range for half the keys makes duplicates, which partitioning must handle. */
    for (uint32_t i = 0; i < n; i++)
        orig[i] = (i & 1) ? bench_rand(&seed) : bench_rand(&seed) % (n / 8 + 1);
    uint64_t h = 0;
    memcpy(a, orig, (size_t)n * 4);
    quicksort(a, 0, (int32_t)n - 1);
    h = bench_mix(h, check(a, n));
    memcpy(a, orig, (size_t)n * 4);
    mergesort(a, tmp, n);
    h = bench_mix(h, check(a, n));
    printf("sorted %u integers twice; median %u\n", n, a[n / 2]);
    printf("checksum %016llx\n", (unsigned long long)h);
    free(orig);
    free(a);
    free(tmp);
    return 0;
}
