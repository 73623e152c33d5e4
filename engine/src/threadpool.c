/* threadpool.c -- a persistent pool of n-1 workers plus the calling thread.
 *
 * One parallel-for at a time (a context is used by one thread at a time). Items are
 * handed out with an atomic counter, so uneven items balance themselves. Workers poll
 * `spin` rounds after each job before sleeping on a condition variable (and the caller as
 * long for the workers to finish): consecutive layers of one inference follow each other
 * within microseconds, and a futex wake-up per layer would cost more than small layers
 * take to run, unless other threads need the cores the polling holds (xnornet.h).
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

typedef struct {
    struct xnor_pool *pool;
    int tid;
} worker_arg;

struct xnor_pool {
    int n;                      /* threads including the caller */
    int spin;                   /* polling rounds before a wait sleeps */
    int started;                /* workers successfully created */
    pthread_t *th;
    worker_arg *args;
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    _Atomic uint64_t gen;       /* job generation; a change means "new job" */
    _Atomic int64_t next;       /* next item to take */
    _Atomic int remaining;      /* workers that have not finished the current job */
    _Atomic int stop;
    xnor_task_fn fn;
    void *arg;
    int64_t n_items;
};

static void run_items(struct xnor_pool *p, int tid) {
    const int64_t n = p->n_items;
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (i >= n) break;
        p->fn(p->arg, i, tid);
    }
}

static void *worker_main(void *vp) {
    worker_arg *wa = vp;
    struct xnor_pool *p = wa->pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
        for (int s = 0; g == seen && s < p->spin; s++) {
            cpu_relax();
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen)
                pthread_cond_wait(&p->cv_start, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        run_items(p, wa->tid);
        if (atomic_fetch_sub_explicit(&p->remaining, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

static void pool_shutdown(struct xnor_pool *p) {
    if (p->started > 0) {
        pthread_mutex_lock(&p->mu);
        atomic_store_explicit(&p->stop, 1, memory_order_release);
        atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
        pthread_cond_broadcast(&p->cv_start);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->started; i++) pthread_join(p->th[i], NULL);
    }
    p->started = 0;
}

xnor_status xnor_pool_new(int n_threads, int32_t spin, xnor_pool **out) {
    *out = NULL;
    if (n_threads < 1) n_threads = 1;
    struct xnor_pool *p = calloc(1, sizeof *p);
    if (!p) return XNOR_ERR_OUT_OF_MEMORY;
    p->n = n_threads;
    p->spin = spin < 0 ? XNOR_DEFAULT_SPIN : spin > XNOR_MAX_SPIN ? XNOR_MAX_SPIN : spin;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return XNOR_ERR_THREAD;
    }
    pthread_cond_init(&p->cv_start, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->next, 0);
    atomic_init(&p->remaining, 0);
    atomic_init(&p->stop, 0);
    if (n_threads > 1) {
        p->th = calloc((size_t)n_threads - 1, sizeof *p->th);
        p->args = calloc((size_t)n_threads - 1, sizeof *p->args);
        if (!p->th || !p->args) {
            xnor_pool_free(p);
            return XNOR_ERR_OUT_OF_MEMORY;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            p->args[i].pool = p;
            p->args[i].tid = i + 1;
            if (pthread_create(&p->th[i], NULL, worker_main, &p->args[i]) != 0) {
                xnor_pool_free(p);
                return XNOR_ERR_THREAD;
            }
#ifdef __linux__
            /* The name `top -H`, py-spy and /proc/<pid>/task/<tid>/comm show (15 bytes at most);
             * a failure only leaves the inherited name. */
            (void)pthread_setname_np(p->th[i], "xnornet-engine");
#endif
            p->started++;
        }
    }
    *out = p;
    return XNOR_OK;
}

void xnor_pool_free(xnor_pool *p) {
    if (!p) return;
    pool_shutdown(p);
    pthread_cond_destroy(&p->cv_start);
    pthread_cond_destroy(&p->cv_done);
    pthread_mutex_destroy(&p->mu);
    free(p->th);
    free(p->args);
    free(p);
}

int xnor_pool_threads(const xnor_pool *p) { return p ? p->n : 1; }

void xnor_pool_run(xnor_pool *p, xnor_task_fn fn, void *arg, int64_t n_items) {
    if (n_items <= 0) return;
    if (!p || p->n == 1 || n_items == 1) {
        for (int64_t i = 0; i < n_items; i++) fn(arg, i, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n_items = n_items;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->remaining, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    run_items(p, 0);
    for (int s = 0; s < p->spin && atomic_load_explicit(&p->remaining, memory_order_acquire) != 0; s++)
        cpu_relax();
    if (atomic_load_explicit(&p->remaining, memory_order_acquire) != 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load_explicit(&p->remaining, memory_order_acquire) != 0) pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
