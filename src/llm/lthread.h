/*
 * lthread.h: a small fork-join thread pool for the CPU kernels.
 *
 * lthread_run(pool, fn, arg) calls fn(arg, i, n) on every thread i of n (the caller is thread 0) and returns
 * when all have finished. Workers spin briefly between jobs (a decode step issues ~10 jobs per layer, and a
 * condition-variable wake-up per job would cost more than the job), then sleep. One job at a time: the
 * caller serialises (the CPU backend holds a mutex around each op).
 */
#ifndef LTHREAD_H
#define LTHREAD_H

#include <stdint.h>

#include "shoal.h"

typedef struct lthread_pool lthread_pool;
typedef void (*lthread_fn)(void *arg, uint32_t ith, uint32_t nth);

/* n_threads counts the caller; 0 = the number of online CPUs. */
shoal_status lthread_pool_new(uint32_t n_threads, lthread_pool **out, shoal_error *err);
void lthread_pool_free(lthread_pool *p);
uint32_t lthread_count(const lthread_pool *p);
void lthread_run(lthread_pool *p, lthread_fn fn, void *arg);

/* Splits [0, total) into nth nearly equal parts, rounded to multiples of `align`; part ith is [*lo, *hi). */
void lthread_split(uint64_t total, uint32_t ith, uint32_t nth, uint64_t align, uint64_t *lo, uint64_t *hi);

#endif
