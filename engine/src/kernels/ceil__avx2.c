/* ceil__avx2.c -- ceiling microbenchmarks with AVX2 (see kernels.h: xnor_ceil_kernel).
 *
 * FMA: K independent vfmadd231ps chains of 8 lanes. Popcount: the nibble-table popcount
 * the AVX2 binary kernels use (xor, 2 x vpshufb, byte adds), K chains of 256 bits; the
 * byte counters may wrap, which does not matter for timing. */
#include <immintrin.h>

#include "ceil_chains.h"
#include "kernels.h"

#define K CEIL_K

XNOR_TARGET_AVX2 double xnor_ceil_fma__avx2(int64_t iters, uint32_t seed, uint32_t *sink)
{
    const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps((float)(seed & 7) * 1e-3f);
    CEIL_CHAINS(__m256, iters, _mm256_set1_ps((float)k), _mm256_fmadd_ps(acc[k], a, b), _mm256_add_ps);
    *sink = (uint32_t)_mm256_cvtss_f32(sum);
    return (double)iters * K * 8 * 2.0;
}

XNOR_TARGET_AVX2 double xnor_ceil_popcount__avx2(int64_t iters, uint32_t seed, uint32_t *sink)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0f), inc = _mm256_set1_epi32(0x3B9ACA07);
    __m256i x[K], acc[K];
    __m256i w = _mm256_set1_epi32((int)seed);
    for (int k = 0; k < K; k++) {
        x[k] = _mm256_set1_epi32((int)(0x9E3779B9u * (uint32_t)(k + 1)));
        acc[k] = _mm256_setzero_si256();
    }
    for (int64_t i = 0; i < iters; i++) {
        w = _mm256_add_epi32(w, inc);
        #pragma GCC unroll 16
        for (int k = 0; k < K; k++) {
            const __m256i v = _mm256_xor_si256(x[k], w);
            const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, m4));
            const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
            acc[k] = _mm256_add_epi8(acc[k], _mm256_add_epi8(lo, hi));
        }
    }
    __m256i s = acc[0];
    for (int k = 1; k < K; k++)
        s = _mm256_add_epi8(s, acc[k]);
    *sink = (uint32_t)_mm256_extract_epi32(s, 0);
    return (double)iters * K * 256 * 2.0;
}
