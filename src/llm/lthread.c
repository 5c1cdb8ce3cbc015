/* lthread.c: the fork-join pool (see lthread.h). */
#include "lthread.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPIN_ROUNDS 4000 /* pause instructions (~10-100 ns each) of polling before sleeping */

typedef struct worker {
    struct lthread_pool *pool;
    uint32_t index;
    pthread_t tid;
} worker;

struct lthread_pool {
    uint32_t n;
    worker *workers; /* n - 1 of them; the caller is thread 0 */
    /* Invariant: `gen` changes only while no worker is inside a job; fn/arg are written before gen. */
    atomic_uint gen;
    atomic_uint pending; /* workers still running the current job */
    atomic_bool quit;
    lthread_fn fn;
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* workers sleep here between jobs */
    pthread_cond_t done_cv; /* the caller sleeps here while a job finishes */
    uint32_t sleepers;
    bool caller_sleeping;
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *p) {
    worker *w = p;
    lthread_pool *pool = w->pool;
    /* Jobs are counted from 0, the generation at creation; reading pool->gen here instead would miss a
     * job issued before this thread first ran. */
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&pool->gen, memory_order_acquire)) == seen && !atomic_load(&pool->quit)) {
            if (++spins < SPIN_ROUNDS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&pool->mu);
            pool->sleepers++;
            while (atomic_load(&pool->gen) == seen && !atomic_load(&pool->quit))
                pthread_cond_wait(&pool->cv, &pool->mu);
            pool->sleepers--;
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->quit))
            return NULL;
        seen = g;
        pool->fn(pool->arg, w->index, pool->n);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool->mu);
            if (pool->caller_sleeping)
                pthread_cond_signal(&pool->done_cv);
            pthread_mutex_unlock(&pool->mu);
        }
    }
}

shoal_status lthread_pool_new(uint32_t n_threads, lthread_pool **out, shoal_error *err) {
    *out = NULL;
    if (n_threads == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (uint32_t)c : 1;
    }
    if (n_threads > 256)
        n_threads = 256;
    lthread_pool *p = calloc(1, sizeof *p);
    if (!p)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    if (n_threads > 1) {
        p->workers = calloc(n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            lthread_pool_free(p);
            return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        }
    }
    for (uint32_t i = 1; i < n_threads; i++) {
        worker *w = &p->workers[i - 1];
        w->pool = p;
        w->index = i;
        int rc = pthread_create(&w->tid, NULL, worker_main, w);
        if (rc != 0) {
            p->n = i; /* only threads 1..i-1 exist; free joins exactly those */
            lthread_pool_free(p);
            return shoal_error_set(err, SHOAL_ERR_NOMEM, "cannot start thread %u: %s", i, strerror(rc));
        }
    }
    *out = p;
    return SHOAL_OK;
}

void lthread_pool_free(lthread_pool *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (uint32_t i = 1; i < p->n; i++)
        pthread_join(p->workers[i - 1].tid, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->workers);
    free(p);
}

uint32_t lthread_count(const lthread_pool *p) {
    return p->n;
}

void lthread_run(lthread_pool *p, lthread_fn fn, void *arg) {
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    if (p->sleepers)
        pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    /* Spin briefly (the common case: the workers finish at about the same time), then sleep, so a
     * descheduled worker on a busy machine gets the CPU instead of this thread's polling. */
    for (int spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) != 0; spins++) {
        if (spins < SPIN_ROUNDS) {
            cpu_relax();
            continue;
        }
        pthread_mutex_lock(&p->mu);
        p->caller_sleeping = true;
        while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
            pthread_cond_wait(&p->done_cv, &p->mu);
        p->caller_sleeping = false;
        pthread_mutex_unlock(&p->mu);
    }
}

void lthread_split(uint64_t total, uint32_t ith, uint32_t nth, uint64_t align, uint64_t *lo, uint64_t *hi) {
    uint64_t units = (total + align - 1) / align;
    uint64_t a = units * ith / nth, b = units * (ith + 1) / nth;
    *lo = a * align < total ? a * align : total;
    *hi = b * align < total ? b * align : total;
}
