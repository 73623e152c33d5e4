/* ceil__scalar.c -- ceiling microbenchmarks in portable C (see kernels.h: xnor_ceil_kernel).
 *
 * K independent chains per loop iteration, so throughput, not latency, bounds the loop. */
#include "kernels.h"

#define K 12

double xnor_ceil_fma__scalar(int64_t iters, uint32_t seed, uint32_t *sink)
{
    float acc[K];
    const float a = 0.999f, b = (float)(seed & 7) * 1e-3f;
    for (int k = 0; k < K; k++)
        acc[k] = (float)k;
    for (int64_t i = 0; i < iters; i++)
        for (int k = 0; k < K; k++)
            acc[k] = acc[k] * a + b; /* two roundings: the build has no contraction */
    float s = 0.0f;
    for (int k = 0; k < K; k++)
        s += acc[k];
    *sink = (uint32_t)s;
    return (double)iters * K * 2.0;
}

double xnor_ceil_popcount__scalar(int64_t iters, uint32_t seed, uint32_t *sink)
{
    uint64_t x[K], acc[K] = {0};
    uint64_t w = seed;
    for (int k = 0; k < K; k++)
        x[k] = 0x9E3779B97F4A7C15ull * (uint64_t)(k + 1);
    for (int64_t i = 0; i < iters; i++) {
        w += 0x632BE59BD9B4E019ull; /* new operands each iteration: nothing to hoist */
        for (int k = 0; k < K; k++)
            acc[k] += (uint64_t)__builtin_popcountll(x[k] ^ w);
    }
    uint64_t s = 0;
    for (int k = 0; k < K; k++)
        s += acc[k];
    *sink = (uint32_t)s;
    return (double)iters * K * 64 * 2.0;
}
