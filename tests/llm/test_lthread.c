/* test_lthread.c: the fork-join pool: every thread runs every job exactly once, jobs issued right after
 * creation are not lost (a startup race once hung), splits cover their range exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>

#include <cmocka.h>

#include "lthread.h"

typedef struct job {
    atomic_uint count;
    atomic_uint mask;
} job;

static void work(void *arg, uint32_t ith, uint32_t nth) {
    job *j = arg;
    (void)nth;
    atomic_fetch_add(&j->count, 1);
    atomic_fetch_or(&j->mask, 1u << ith);
}

static void test_jobs(void **state) {
    (void)state;
    for (uint32_t n = 1; n <= 4; n++) {
        for (int round = 0; round < 50; round++) {
            lthread_pool *p = NULL;
            assert_int_equal(lthread_pool_new(n, &p, NULL), SHOAL_OK);
            assert_int_equal(lthread_count(p), n);
            for (int k = 0; k < 20; k++) { /* the first job races the workers' start */
                job j = {0, 0};
                lthread_run(p, work, &j);
                assert_int_equal(atomic_load(&j.count), n);
                assert_int_equal(atomic_load(&j.mask), (1u << n) - 1);
            }
            lthread_pool_free(p);
        }
    }
}

static void test_split(void **state) {
    (void)state;
    const uint64_t totals[] = {0, 1, 7, 16, 100, 1001};
    for (size_t t = 0; t < sizeof totals / sizeof totals[0]; t++)
        for (uint32_t nth = 1; nth <= 5; nth++)
            for (uint64_t align = 1; align <= 16; align *= 4) {
                uint64_t next = 0;
                for (uint32_t i = 0; i < nth; i++) {
                    uint64_t lo, hi;
                    lthread_split(totals[t], i, nth, align, &lo, &hi);
                    assert_int_equal(lo, next);
                    assert_true(hi >= lo);
                    assert_true(lo % align == 0 || lo == totals[t]);
                    next = hi;
                }
                assert_int_equal(next, totals[t]);
            }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_jobs), cmocka_unit_test(test_split)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
