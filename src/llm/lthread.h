/*
 * lthread.h: a small fork-join thread pool for the CPU kernels, with dynamic chunking.
 *
 * lthread_for(pool, total, grain, fn, arg) splits [0, total) into chunks (multiples of grain) that the
 * caller and the workers claim one at a time from an atomic ticket; it returns when every chunk is done.
 * Claiming rather than a fixed split matters on a shared machine: a worker that the OS has not scheduled
 * yet simply gets no chunks, and the caller does its share instead of waiting for it. Workers spin briefly
 * between jobs (a decode step issues a few jobs per layer, and a sleep/wake per job would cost more than
 * the job), then sleep. One job at a time: the caller serialises (the CPU backend holds a mutex).
 */
#ifndef LTHREAD_H
#define LTHREAD_H

#include <stdint.h>

#include "shoal.h"

typedef struct lthread_pool lthread_pool;
/* Processes [lo, hi); ith (< lthread_count) names the calling thread, for per-thread scratch. */
typedef void (*lthread_fn)(void *arg, uint64_t lo, uint64_t hi, uint32_t ith);

/* n_threads counts the caller; 0 = the number of online CPUs. */
shoal_status lthread_pool_new(uint32_t n_threads, lthread_pool **out, shoal_error *err);
void lthread_pool_free(lthread_pool *p);
uint32_t lthread_count(const lthread_pool *p);
/* grain >= 1; chunks are grain-aligned, the last may be short. total == 0 calls nothing. */
void lthread_for(lthread_pool *p, uint64_t total, uint64_t grain, lthread_fn fn, void *arg);

#endif
