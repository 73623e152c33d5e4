/* qconv_16c__avxvnni.c -- int8 convolution / linear with AVX-VNNI (VEX vpdpbusd, ymm).
 *
 * For CPUs with AVX2 and AVX-VNNI but no AVX-512 VNNI path in use (the AVX2 table picks
 * this kernel when cpuid reports AVX-VNNI). One vpdpbusd adds, for 8 output channels, the
 * dot product of 4 broadcast uint8 activation bytes with each channel's 4 int8 weights in
 * one int32 step, without the 16-bit widening the plain AVX2 kernel needs. A 16-channel
 * block is two ymm of weights, loaded once per group and used by the NP positions of the
 * tile (2 NP accumulators + 2 weights + 1 broadcast <= 16 ymm). Integer sums: equal to the
 * scalar kernel. */
#include <immintrin.h>
#include <string.h>

#include "kernels.h"

#if defined(XNOR_HAVE_X86)

static inline int32_t load_u32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

#define NPMAX 6

/* NP positions x + [0, NP) of row y, one 16-channel block ob. */
XNOR_TARGET_AVXVNNI static inline __attribute__((always_inline)) void
tile(const xnor_qconv_args *a, int32_t y, int32_t x, int32_t ob, const int NP)
{
    __m256i acc[NPMAX][2];
    for (int j = 0; j < NP; j++) acc[j][0] = acc[j][1] = _mm256_setzero_si256();
    for (int32_t ky = 0; ky < a->kh; ky++) {
        const uint8_t *row = a->in + (a->off0 + (int64_t)(y * a->sh + ky) * a->row_stride + (int64_t)x * a->px_stride);
        const int8_t *wk = a->w + ((int64_t)ob * a->kh + ky) * a->qg * 64;
        for (int32_t g = 0; g < a->qg; g++) {
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wk + (int64_t)g * 64));
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(wk + (int64_t)g * 64 + 32));
            for (int j = 0; j < NP; j++) {
                const __m256i px = _mm256_set1_epi32(load_u32(row + (int64_t)j * a->px_stride + 4 * g));
                acc[j][0] = _mm256_dpbusd_avx_epi32(acc[j][0], px, w0);
                acc[j][1] = _mm256_dpbusd_avx_epi32(acc[j][1], px, w1);
            }
        }
    }
    for (int j = 0; j < NP; j++) {
        int32_t *o = a->out + ((int64_t)(y - a->y0) * a->out_row + (x + j - a->x0)) * a->out_stride
            + (int64_t)(ob - a->b0) * XNOR_LANES;
        _mm256_storeu_si256((__m256i *)o, acc[j][0]);
        _mm256_storeu_si256((__m256i *)(o + 8), acc[j][1]);
    }
}

XNOR_TARGET_AVXVNNI void xnor_qconv_16c__avxvnni(const xnor_qconv_args *a)
{
    for (int32_t y = a->y0; y < a->y1; y++)
        for (int32_t ob = a->b0; ob < a->b1; ob++) {
            int32_t x = a->x0;
            for (; x + 6 <= a->x1; x += 6) tile(a, y, x, ob, 6);
            switch (a->x1 - x) {
            case 5: tile(a, y, x, ob, 5); break;
            case 4: tile(a, y, x, ob, 4); break;
            case 3: tile(a, y, x, ob, 3); break;
            case 2: tile(a, y, x, ob, 2); break;
            case 1: tile(a, y, x, ob, 1); break;
            default: break;
            }
        }
}

#endif
