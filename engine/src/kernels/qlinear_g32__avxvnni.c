/* qlinear_g32__avxvnni.c -- fused int8 linear with per-group float scales, AVX-VNNI.
 *
 * The VEX (ymm) vpdpbusd twin of qlinear_g32__avx512vnni.c for AVX2 CPUs with AVX-VNNI.
 * A 16-row block is two ymm of weights per 4-byte step. A tile holds NP samples x NB
 * blocks; each group's eight steps alternate between two accumulators (SPLIT = 2) so that
 * 8 dependency chains are in flight, and the two are added once (integer, exact). The
 * group's float scales are then applied and added to the float sums in group order, as
 * the scalar twin does, so the result is the scalar result bit for bit. */
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

/* NP samples s + [0, NP), NB blocks ob + [0, NB); NP * NB <= 2. */
XNOR_TARGET_AVXVNNI static inline __attribute__((always_inline)) void
tile(const xnor_qlinear_args *a, int32_t s, int32_t ob, const int NP, const int NB)
{
    const int32_t ng = a->ng;
    const uint8_t *u[2];
    __m256i zv[2];
    __m256 sum[2][2][2]; /* [sample][block][half] */
    for (int j = 0; j < NP; j++) {
        u[j] = a->in + (int64_t)(s + j) * a->in_stride;
        zv[j] = _mm256_set1_epi32(load_u32(u[j] + (int64_t)ng * 36));
        for (int b = 0; b < NB; b++) sum[j][b][0] = sum[j][b][1] = _mm256_setzero_ps();
    }
    for (int32_t g = 0; g < ng; g++) {
        __m256i acc[2][2][2][2]; /* [sample][block][half][parity] */
        for (int j = 0; j < NP; j++)
            for (int b = 0; b < NB; b++)
                for (int h = 0; h < 2; h++) acc[j][b][h][0] = acc[j][b][h][1] = _mm256_setzero_si256();
        for (int k = 0; k < 8; k++) {
            __m256i px[2];
            for (int j = 0; j < NP; j++) px[j] = _mm256_set1_epi32(load_u32(u[j] + 32 * g + 4 * k));
            for (int b = 0; b < NB; b++) {
                const int8_t *wg = a->w + ((int64_t)(ob + b) * ng + g) * 512 + k * 64;
                for (int h = 0; h < 2; h++) {
                    const __m256i wv = _mm256_loadu_si256((const __m256i *)(wg + 32 * h));
                    for (int j = 0; j < NP; j++)
                        acc[j][b][h][k & 1] = _mm256_dpbusd_avx_epi32(acc[j][b][h][k & 1], px[j], wv);
                }
            }
        }
        for (int b = 0; b < NB; b++) {
            const int64_t kk = ((int64_t)(ob + b) * ng + g) * XNOR_LANES;
            for (int h = 0; h < 2; h++) {
                const __m256i ws = _mm256_loadu_si256((const __m256i *)(a->wsum + kk + 8 * h));
                const __m256 sc = _mm256_loadu_ps(a->scale + kk + 8 * h);
                for (int j = 0; j < NP; j++) {
                    const __m256i dot = _mm256_add_epi32(acc[j][b][h][0], acc[j][b][h][1]);
                    const __m256i iv = _mm256_sub_epi32(dot, _mm256_mullo_epi32(zv[j], ws));
                    __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(iv), sc);
                    t = _mm256_mul_ps(t, _mm256_set1_ps(load_f32(u[j] + (int64_t)ng * 32 + (int64_t)g * 4)));
                    sum[j][b][h] = g ? _mm256_add_ps(sum[j][b][h], t) : t;
                }
            }
        }
    }
    for (int b = 0; b < NB; b++) {
        const int32_t o0 = (ob + b) * XNOR_LANES;
        const int32_t n = a->O - o0 < XNOR_LANES ? a->O - o0 : XNOR_LANES;
        for (int j = 0; j < NP; j++) {
            float *y = a->out + (int64_t)(s + j) * a->out_stride + o0;
            if (n == XNOR_LANES) {
                _mm256_storeu_ps(y, sum[j][b][0]);
                _mm256_storeu_ps(y + 8, sum[j][b][1]);
            } else {
                float tmp[XNOR_LANES];
                _mm256_storeu_ps(tmp, sum[j][b][0]);
                _mm256_storeu_ps(tmp + 8, sum[j][b][1]);
                memcpy(y, tmp, (size_t)n * sizeof(float));
            }
        }
    }
}

/* Two samples share each weight load; a lone sample takes two blocks so that eight
 * vpdpbusd chains are in flight either way. */
XNOR_TARGET_AVXVNNI void xnor_qlinear_g32__avxvnni(const xnor_qlinear_args *a)
{
    int32_t s = a->s0;
    for (; s + 2 <= a->s1; s += 2)
        for (int32_t ob = a->b0; ob < a->b1; ob++) tile(a, s, ob, 2, 1);
    for (; s < a->s1; s++) {
        int32_t ob = a->b0;
        for (; ob + 2 <= a->b1; ob += 2) tile(a, s, ob, 1, 2);
        if (ob < a->b1) tile(a, s, ob, 1, 1);
    }
}

#endif
