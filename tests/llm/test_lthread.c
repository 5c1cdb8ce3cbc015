/* test_lthread.c: the pool: every index of a range is processed exactly once, by valid thread ids, for
 * many shapes; jobs issued right after creation are not lost (a startup race once hung); pools of one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdlib.h>

#include <cmocka.h>

#include "lthread.h"

typedef struct job {
    atomic_uchar *seen; /* per index: times processed */
    uint64_t grain, total;
    uint32_t nth;
    atomic_uint bad;
} job;

static void work(void *arg, uint64_t lo, uint64_t hi, uint32_t ith) {
    job *j = arg;
    if (ith >= j->nth || lo >= hi || hi > j->total || (lo % j->grain && lo != 0))
        atomic_fetch_add(&j->bad, 1);
    for (uint64_t i = lo; i < hi; i++)
        atomic_fetch_add(&j->seen[i], 1);
}

static void test_cover(void **state) {
    (void)state;
    const uint64_t totals[] = {1, 2, 7, 16, 100, 1001, 4096};
    const uint64_t grains[] = {1, 4, 16};
    for (uint32_t n = 1; n <= 4; n++) {
        for (int round = 0; round < 30; round++) {
            lthread_pool *p = NULL;
            assert_int_equal(lthread_pool_new(n, &p, NULL), SHOAL_OK);
            assert_int_equal(lthread_count(p), n);
            for (size_t t = 0; t < sizeof totals / sizeof totals[0]; t++)
                for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
                    job j = {calloc(totals[t], 1), grains[g], totals[t], n, 0};
                    lthread_for(p, totals[t], grains[g], work, &j);
                    assert_int_equal(atomic_load(&j.bad), 0);
                    for (uint64_t i = 0; i < totals[t]; i++)
                        assert_int_equal(atomic_load(&j.seen[i]), 1);
                    free(j.seen);
                }
            lthread_pool_free(p);
        }
    }
}

/* Back-to-back jobs of changing sizes with the description at the same stack address: the hand-over
 * between jobs. A thread claiming work of a finished job with the next job's description (a race TSan
 * once found here) would process an index twice; the window is narrow, so run this under TSan too. */
static void test_back_to_back(void **state) {
    (void)state;
    lthread_pool *p = NULL;
    assert_int_equal(lthread_pool_new(3, &p, NULL), SHOAL_OK);
    for (int i = 0; i < 20000; i++) {
        uint64_t total = (uint64_t)(i % 5 == 0 ? 40 : 5 + i % 7);
        job j = {calloc(total, 1), 1, total, 3, 0};
        lthread_for(p, total, 1, work, &j);
        assert_int_equal(atomic_load(&j.bad), 0);
        for (uint64_t k = 0; k < total; k++)
            assert_int_equal(atomic_load(&j.seen[k]), 1);
        free(j.seen);
    }
    lthread_pool_free(p);
}

static void never(void *arg, uint64_t lo, uint64_t hi, uint32_t ith) {
    (void)arg, (void)lo, (void)hi, (void)ith;
    fail();
}

static void test_empty(void **state) {
    (void)state;
    lthread_pool *p = NULL;
    assert_int_equal(lthread_pool_new(3, &p, NULL), SHOAL_OK);
    lthread_for(p, 0, 16, never, NULL);
    lthread_pool_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cover), cmocka_unit_test(test_back_to_back),
                                       cmocka_unit_test(test_empty)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
