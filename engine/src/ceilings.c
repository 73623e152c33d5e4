/* ceilings.c -- xnor_measure_ceilings: this CPU's compute and memory ceilings on one thread.
 *
 * Each compute ceiling runs its ISA's microbenchmark (kernels/ceil__*.c), doubling the
 * iteration count until one run takes >= 10 ms, then keeps the best of three runs (the
 * ceiling is what the core can do, so the fastest run is the one least disturbed). The
 * bandwidth tests read a buffer several times and keep the fastest pass: 128 MiB, far larger
 * than any L3 this targets (memory), and 8 MiB, larger than L2 and within most L3s (the
 * weights of a model that fits in L3 are read from there at batch 1). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define MEM_BYTES ((size_t)128 << 20)
#define CACHE_BYTES ((size_t)8 << 20)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best ops per second (1e9) of fn. */
static double measure(xnor_ceil_kernel *fn) {
    uint32_t sink = 0;
    int64_t iters = 1 << 12;
    double t, ops;
    for (;;) {
        const double t0 = now_s();
        ops = fn(iters, 1u, &sink);
        t = now_s() - t0;
        if (t >= 0.01 || iters >= ((int64_t)1 << 40)) break;
        iters *= 2;
    }
    double best = t;
    for (int r = 0; r < 3; r++) {
        const double t0 = now_s();
        fn(iters, (uint32_t)r + 2u, &sink);
        const double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    return best > 0 ? ops / best / 1e9 : 0.0;
}

/* Sum of 64-bit words: the loads dominate; the compiler vectorizes it for the baseline ISA. */
static uint64_t read_all(const uint64_t *p, size_t n) {
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= n; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    return s0 + s1 + s2 + s3;
}

static double measure_read_gbps(size_t bytes, int passes) {
    uint64_t *buf = xnor_alloc_aligned(bytes);
    if (!buf) return -1.0;
    memset(buf, 1, bytes); /* fault the pages in (and, for the small buffer, warm the cache) */
    volatile uint64_t sink = 0;
    double best = 0.0;
    for (int r = 0; r < passes; r++) {
        const double t0 = now_s();
        sink += read_all(buf, bytes / sizeof(uint64_t));
        const double dt = now_s() - t0;
        if (dt > 0 && (double)bytes / dt / 1e9 > best) best = (double)bytes / dt / 1e9;
    }
    (void)sink;
    xnor_free_aligned(buf);
    return best;
}

xnor_status xnor_measure_ceilings(xnor_isa isa, xnor_ceilings *out) {
    if (!out) return XNOR_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    xnor_isa resolved;
    xnor_status st = xnor_isa_resolve(isa, &resolved);
    if (st) return st;
    const xnor_kernel_table *kt = xnor_kernels_for(resolved);
    if (!kt) return XNOR_ERR_UNSUPPORTED_ISA;
    out->fma_gops = measure(kt->ceil_fma);
    out->popcount_gops = measure(kt->ceil_popcount);
#if defined(XNOR_HAVE_X86)
    if (resolved == XNOR_ISA_AVX512 && xnor_cpu_has_avx512vnni()) out->int8_gops = measure(xnor_ceil_int8__avx512vnni);
#endif
    const double mem = measure_read_gbps(MEM_BYTES, 3), cache = measure_read_gbps(CACHE_BYTES, 20);
    if (mem < 0 || cache < 0) return XNOR_ERR_OUT_OF_MEMORY;
    out->mem_read_gbps = mem;
    out->cache_read_gbps = cache;
    return XNOR_OK;
}
