/* ceil__avx512.c -- ceiling microbenchmarks with AVX-512 (see kernels.h: xnor_ceil_kernel).
 *
 * FMA: K independent vfmadd231ps chains of 16 lanes. Popcount: xor + vpopcntd + add, the
 * binary kernel's inner step, K chains of 512 bits. int8: vpdpbusd (64 uint8 x int8
 * products per instruction), K chains; only called when the CPU has AVX512_VNNI. */
#include <immintrin.h>

#include "ceil_chains.h"
#include "kernels.h"

#define K CEIL_K

XNOR_TARGET_AVX512 double xnor_ceil_fma__avx512(int64_t iters, uint32_t seed, uint32_t *sink)
{
    const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps((float)(seed & 7) * 1e-3f);
    CEIL_CHAINS(__m512, iters, _mm512_set1_ps((float)k), _mm512_fmadd_ps(acc[k], a, b), _mm512_add_ps);
    *sink = (uint32_t)_mm512_reduce_add_ps(sum);
    return (double)iters * K * 16 * 2.0;
}

XNOR_TARGET_AVX512 double xnor_ceil_popcount__avx512(int64_t iters, uint32_t seed, uint32_t *sink)
{
    const __m512i inc = _mm512_set1_epi32(0x3B9ACA07);
    __m512i x[K], acc[K];
    __m512i w = _mm512_set1_epi32((int)seed);
    for (int k = 0; k < K; k++) {
        x[k] = _mm512_set1_epi32((int)(0x9E3779B9u * (uint32_t)(k + 1)));
        acc[k] = _mm512_setzero_si512();
    }
    for (int64_t i = 0; i < iters; i++) {
        w = _mm512_add_epi32(w, inc); /* new operands each iteration: nothing to hoist */
        #pragma GCC unroll 16
        for (int k = 0; k < K; k++)
            acc[k] = _mm512_add_epi32(acc[k], _mm512_popcnt_epi32(_mm512_xor_si512(x[k], w)));
    }
    __m512i s = acc[0];
    for (int k = 1; k < K; k++)
        s = _mm512_add_epi32(s, acc[k]);
    *sink = (uint32_t)_mm512_reduce_add_epi32(s);
    return (double)iters * K * 512 * 2.0;
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) double
xnor_ceil_int8__avx512vnni(int64_t iters, uint32_t seed, uint32_t *sink)
{
    const __m512i a = _mm512_set1_epi32((int)(seed | 0x01010101u)), b = _mm512_set1_epi32(0x02FF7F01);
    CEIL_CHAINS(__m512i, iters, _mm512_set1_epi32(k), _mm512_dpbusd_epi32(acc[k], a, b), _mm512_add_epi32);
    *sink = (uint32_t)_mm512_reduce_add_epi32(sum);
    return (double)iters * K * 64 * 2.0;
}
