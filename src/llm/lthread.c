/* lthread.c: the fork-join pool with claimed chunks (see lthread.h). */
#include "lthread.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SPIN_ROUNDS 4000  /* pause instructions (~10-100 ns each) of polling before sleeping */
#define CHUNKS_PER_THREAD 4

typedef struct worker {
    struct lthread_pool *pool;
    uint32_t index;
    pthread_t tid;
} worker;

struct lthread_pool {
    uint32_t n;
    worker *workers; /* n - 1 of them; the caller is thread 0 */
    /* ticket = generation << 32 | next chunk to claim; a claim is a CAS on it. Job g's description lives
     * in slot[g & 1], written before g is published. The caller rewrites that slot only for job g + 2,
     * after job g + 1 was published, so a thread still holding job g's ticket value can read the slot
     * while it is being rewritten but can never claim with it: its CAS expects generation g. (The slot
     * fields are atomics so that such a read is not a data race; its values are discarded.) */
    _Atomic uint64_t ticket;
    atomic_uint done; /* chunks finished in the current job */
    struct job_slot {
        _Atomic(lthread_fn) fn;
        _Atomic(void *) arg;
        _Atomic uint64_t total, chunk;
        atomic_uint nchunks;
    } slot[2];
    uint32_t gen; /* caller's copy of the generation */
    atomic_bool quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* workers sleep here between jobs */
    pthread_cond_t done_cv; /* the caller sleeps here while the last chunks finish */
    uint32_t sleepers;      /* under mu */
    bool caller_sleeping;   /* under mu */
};

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Claims and runs chunks of job `gen` until none is left (or a newer job is up). */
static void work_on(lthread_pool *p, uint32_t gen, uint32_t ith) {
    for (;;) {
        uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
        if ((uint32_t)(t >> 32) != gen)
            return;
        uint32_t k = (uint32_t)t;
        struct job_slot *js = &p->slot[gen & 1];
        lthread_fn fn = atomic_load_explicit(&js->fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&js->arg, memory_order_relaxed);
        uint64_t total = atomic_load_explicit(&js->total, memory_order_relaxed);
        uint64_t chunk = atomic_load_explicit(&js->chunk, memory_order_relaxed);
        uint32_t nchunks = atomic_load_explicit(&js->nchunks, memory_order_relaxed);
        if (k >= nchunks)
            return;
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1, memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        uint64_t lo = k * chunk, hi = lo + chunk < total ? lo + chunk : total;
        fn(arg, lo, hi, ith);
        if (atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel) + 1 == nchunks) {
            pthread_mutex_lock(&p->mu);
            if (p->caller_sleeping)
                pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static uint32_t ticket_gen(lthread_pool *p) {
    return (uint32_t)(atomic_load_explicit(&p->ticket, memory_order_acquire) >> 32);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    lthread_pool *p = w->pool;
    uint32_t seen = 0; /* generation 0 is "no job"; jobs start at 1 */
    for (;;) {
        int spins = 0;
        while (ticket_gen(p) == seen && !atomic_load(&p->quit)) {
            if (++spins < SPIN_ROUNDS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while (ticket_gen(p) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->cv, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit))
            return NULL;
        seen = ticket_gen(p);
        work_on(p, seen, w->index);
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
    p->n = 1; /* threads that exist; lthread_pool_free joins exactly those */
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
            lthread_pool_free(p);
            return shoal_error_set(err, SHOAL_ERR_NOMEM, "cannot start thread %u: %s", i, strerror(rc));
        }
        p->n = i + 1;
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

void lthread_for(lthread_pool *p, uint64_t total, uint64_t grain, lthread_fn fn, void *arg) {
    if (total == 0)
        return;
    if (grain == 0)
        grain = 1;
    uint64_t units = (total + grain - 1) / grain;
    uint64_t want = (uint64_t)p->n * CHUNKS_PER_THREAD;
    uint64_t per = units < want ? 1 : (units + want - 1) / want; /* grains per chunk */
    uint64_t chunk = per * grain, nchunks = (total + chunk - 1) / chunk;
    if (p->n == 1 || nchunks == 1) {
        fn(arg, 0, total, 0);
        return;
    }
    uint32_t gen = ++p->gen;
    if (gen == 0)
        gen = p->gen = 2; /* 0 means "no job" to a fresh worker; 2 keeps slots alternating */
    struct job_slot *js = &p->slot[gen & 1];
    atomic_store_explicit(&js->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&js->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&js->total, total, memory_order_relaxed);
    atomic_store_explicit(&js->chunk, chunk, memory_order_relaxed);
    atomic_store_explicit(&js->nchunks, (uint32_t)nchunks, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->ticket, (uint64_t)gen << 32, memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers)
        pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    work_on(p, gen, 0);
    /* Chunks other threads claimed may still run: spin briefly, then sleep until the last one ends. */
    for (int spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) != nchunks; spins++) {
        if (spins < SPIN_ROUNDS) {
            cpu_relax();
            continue;
        }
        pthread_mutex_lock(&p->mu);
        p->caller_sleeping = true;
        while (atomic_load_explicit(&p->done, memory_order_acquire) != nchunks)
            pthread_cond_wait(&p->done_cv, &p->mu);
        p->caller_sleeping = false;
        pthread_mutex_unlock(&p->mu);
    }
}
