/* qlinear_g32__avx2.c -- fused int8 linear with per-group float scales, AVX2, exact.
 *
 * vpmaddubsw would saturate, so as in qconv_16c__avx2.c the bytes are widened to int16
 * and multiplied with vpmaddwd: per group of 32 inputs, each 4-byte step gives two int32
 * partial sums per row, added pairwise at the end of the group (integer, exact). The
 * group's float scales are then applied and added to the float sums in group order, as the
 * scalar twin does. A tile holds NP samples of one 16-row block. */
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

static inline float load_f32(const uint8_t *p)
{
    float v;
    memcpy(&v, p, 4);
    return v;
}

XNOR_TARGET_AVX2 static inline __attribute__((always_inline)) void
tile(const xnor_qlinear_args *a, int32_t s, int32_t ob, const int NP)
{
    const int32_t ng = a->ng;
    const uint8_t *u[2];
    __m256i zv[2];
    __m256 sum[2][2];
    for (int j = 0; j < NP; j++) {
        u[j] = a->in + (int64_t)(s + j) * a->in_stride;
        zv[j] = _mm256_set1_epi32(load_u32(u[j] + (int64_t)ng * 36));
        sum[j][0] = sum[j][1] = _mm256_setzero_ps();
    }
    for (int32_t g = 0; g < ng; g++) {
        __m256i acc[2][4];
        for (int j = 0; j < NP; j++)
            for (int q = 0; q < 4; q++) acc[j][q] = _mm256_setzero_si256();
        const int8_t *wg = a->w + ((int64_t)ob * ng + g) * 512;
        for (int k = 0; k < 8; k++) {
            __m256i wv[4];
            for (int q = 0; q < 4; q++)
                wv[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(wg + k * 64 + 16 * q)));
            for (int j = 0; j < NP; j++) {
                const __m128i b4 = _mm_cvtsi32_si128(load_u32(u[j] + 32 * g + 4 * k));
                const __m256i px = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(b4));
                for (int q = 0; q < 4; q++) acc[j][q] = _mm256_add_epi32(acc[j][q], _mm256_madd_epi16(px, wv[q]));
            }
        }
        const int64_t kk = ((int64_t)ob * ng + g) * XNOR_LANES;
        for (int h = 0; h < 2; h++) {
            const __m256i ws = _mm256_loadu_si256((const __m256i *)(a->wsum + kk + 8 * h));
            const __m256 sc = _mm256_loadu_ps(a->scale + kk + 8 * h);
            for (int j = 0; j < NP; j++) {
                /* hadd within 128-bit halves gives rows (0 1 4 5 | 2 3 6 7); 0xD8 restores the order. */
                const __m256i dot = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[j][2 * h], acc[j][2 * h + 1]), 0xD8);
                const __m256i iv = _mm256_sub_epi32(dot, _mm256_mullo_epi32(zv[j], ws));
                __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(iv), sc);
                t = _mm256_mul_ps(t, _mm256_set1_ps(load_f32(u[j] + (int64_t)ng * 32 + (int64_t)g * 4)));
                sum[j][h] = g ? _mm256_add_ps(sum[j][h], t) : t;
            }
        }
    }
    const int32_t o0 = ob * XNOR_LANES;
    const int32_t n = a->O - o0 < XNOR_LANES ? a->O - o0 : XNOR_LANES;
    for (int j = 0; j < NP; j++) {
        float *y = a->out + (int64_t)(s + j) * a->out_stride + o0;
        if (n == XNOR_LANES) {
            _mm256_storeu_ps(y, sum[j][0]);
            _mm256_storeu_ps(y + 8, sum[j][1]);
        } else {
            float tmp[XNOR_LANES];
            _mm256_storeu_ps(tmp, sum[j][0]);
            _mm256_storeu_ps(tmp + 8, sum[j][1]);
            memcpy(y, tmp, (size_t)n * sizeof(float));
        }
    }
}

XNOR_TARGET_AVX2 void xnor_qlinear_g32__avx2(const xnor_qlinear_args *a)
{
    for (int32_t ob = a->b0; ob < a->b1; ob++) {
        int32_t s = a->s0;
        for (; s + 2 <= a->s1; s += 2) tile(a, s, ob, 2);
        for (; s < a->s1; s++) tile(a, s, ob, 1);
    }
}

#endif
