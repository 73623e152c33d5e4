/* qconv_16c__avx2.c -- int8 convolution / linear with AVX2, exact.
 *
 * vpmaddubsw would saturate (255 * 127 * 2 > 32767), so activations and weights are
 * widened to int16 and multiplied with vpmaddwd: for 4 output channels at once, the 4
 * bytes of a group give two int32 partial sums per channel, kept apart in the accumulators
 * and added pairwise once at the end. Integer sums: equal to the scalar kernel. */
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

/* NP positions x + [0, NP) of row y, one 16-channel block ob. acc[j][q] holds channels
 * 4q..4q+3 as (pair 0, pair 1) partial sums. */
XNOR_TARGET_AVX2 static inline __attribute__((always_inline)) void
tile(const xnor_qconv_args *a, int32_t y, int32_t x, int32_t ob, const int NP)
{
    __m256i acc[2][4];
    for (int j = 0; j < NP; j++)
        for (int q = 0; q < 4; q++) acc[j][q] = _mm256_setzero_si256();
    for (int32_t ky = 0; ky < a->kh; ky++) {
        const uint8_t *row = a->in + (a->off0 + (int64_t)(y * a->sh + ky) * a->row_stride + (int64_t)x * a->px_stride);
        const int8_t *wk = a->w + ((int64_t)ob * a->kh + ky) * a->qg * 64;
        for (int32_t g = 0; g < a->qg; g++) {
            __m256i wv[4];
            for (int q = 0; q < 4; q++)
                wv[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wk + (int64_t)g * 64 + 16 * q)));
            for (int j = 0; j < NP; j++) {
                const __m128i b4 = _mm_cvtsi32_si128(load_u32(row + (int64_t)j * a->px_stride + 4 * g));
                const __m256i px = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(b4)); /* p0 p1 p2 p3, x4 */
                for (int q = 0; q < 4; q++) acc[j][q] = _mm256_add_epi32(acc[j][q], _mm256_madd_epi16(px, wv[q]));
            }
        }
    }
    for (int j = 0; j < NP; j++) {
        int32_t *o = a->out + ((int64_t)(y - a->y0) * a->out_row + (x + j - a->x0)) * a->out_stride
            + (int64_t)(ob - a->b0) * XNOR_LANES;
        /* hadd within 128-bit halves gives channels (0 1 4 5 | 2 3 6 7); 0xD8 restores the order. */
        const __m256i lo = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[j][0], acc[j][1]), 0xD8);
        const __m256i hi = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[j][2], acc[j][3]), 0xD8);
        _mm256_storeu_si256((__m256i *)o, lo);
        _mm256_storeu_si256((__m256i *)(o + 8), hi);
    }
}

XNOR_TARGET_AVX2 void xnor_qconv_16c__avx2(const xnor_qconv_args *a)
{
    for (int32_t y = a->y0; y < a->y1; y++)
        for (int32_t ob = a->b0; ob < a->b1; ob++) {
            int32_t x = a->x0;
            for (; x + 2 <= a->x1; x += 2) tile(a, y, x, ob, 2);
            for (; x < a->x1; x++) tile(a, y, x, ob, 1);
        }
}

#endif
