/* qlinear_g32__avx512vnni.c -- fused int8 linear with per-group float scales, vpdpbusd.
 *
 * A register tile holds NP samples x NB 16-row blocks. Per group of 32 inputs, eight
 * vpdpbusd (4 broadcast activation bytes x each row's 4 int8 weights) give the group's
 * exact int32 sums, split over two accumulators so the dependency chains are short and
 * added once (integer, exact); the group's float scales are then applied and added to the
 * float sums in group order, as the scalar twin does. The weights are streamed once per
 * tile and used NP times. */
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

XNOR_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void
tile(const xnor_qlinear_args *a, int32_t s, int32_t ob, const int NP, const int NB)
{
    const int32_t ng = a->ng;
    const uint8_t *u[4];
    __m512i zv[4];
    __m512 sum[4][4];
    for (int j = 0; j < NP; j++) {
        for (int b = 0; b < NB; b++) sum[j][b] = _mm512_setzero_ps();
        u[j] = a->in + (int64_t)(s + j) * a->in_stride;
        zv[j] = _mm512_set1_epi32(load_u32(u[j] + (int64_t)ng * 36));
    }
    for (int32_t g = 0; g < ng; g++) {
        __m512i acc[4][4][2];
        for (int j = 0; j < NP; j++)
            for (int b = 0; b < NB; b++) acc[j][b][0] = acc[j][b][1] = _mm512_setzero_si512();
        const int8_t *wg = a->w + ((int64_t)ob * ng + g) * 512;
        for (int q = 0; q < 8; q++) {
            __m512i wv[4];
            for (int b = 0; b < NB; b++) wv[b] = _mm512_loadu_si512((const void *)(wg + (int64_t)b * ng * 512 + q * 64));
            for (int j = 0; j < NP; j++) {
                const __m512i px = _mm512_set1_epi32(load_u32(u[j] + 32 * g + 4 * q));
                for (int b = 0; b < NB; b++) acc[j][b][q & 1] = _mm512_dpbusd_epi32(acc[j][b][q & 1], px, wv[b]);
            }
        }
        for (int b = 0; b < NB; b++) {
            const int64_t k = ((int64_t)(ob + b) * ng + g) * XNOR_LANES;
            const __m512i ws = _mm512_loadu_si512((const void *)(a->wsum + k));
            const __m512 sc = _mm512_loadu_ps(a->scale + k);
            for (int j = 0; j < NP; j++) {
                const __m512i iv = _mm512_sub_epi32(_mm512_add_epi32(acc[j][b][0], acc[j][b][1]),
                                                    _mm512_mullo_epi32(zv[j], ws));
                __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(iv), sc);
                t = _mm512_mul_ps(t, _mm512_set1_ps(load_f32(u[j] + (int64_t)ng * 32 + (int64_t)g * 4)));
                sum[j][b] = g ? _mm512_add_ps(sum[j][b], t) : t;
            }
        }
    }
    for (int b = 0; b < NB; b++) {
        const int32_t o0 = (ob + b) * XNOR_LANES;
        const int32_t n = a->O - o0 < XNOR_LANES ? a->O - o0 : XNOR_LANES;
        const __mmask16 m = (__mmask16)((1u << n) - 1u);
        for (int j = 0; j < NP; j++)
            _mm512_mask_storeu_ps(a->out + (int64_t)(s + j) * a->out_stride + o0, m, sum[j][b]);
    }
}

/* Four samples share each weight load over two blocks; a lone sample takes four blocks
 * so that enough independent vpdpbusd chains are in flight. */
XNOR_TARGET_AVX512VNNI void xnor_qlinear_g32__avx512vnni(const xnor_qlinear_args *a)
{
    int32_t s = a->s0;
    for (; s + 4 <= a->s1; s += 4) {
        int32_t ob = a->b0;
        for (; ob + 2 <= a->b1; ob += 2) tile(a, s, ob, 4, 2);
        if (ob < a->b1) tile(a, s, ob, 4, 1);
    }
    for (; s < a->s1; s++) {
        int32_t ob = a->b0;
        for (; ob + 4 <= a->b1; ob += 4) tile(a, s, ob, 1, 4);
        for (; ob < a->b1; ob++) tile(a, s, ob, 1, 1);
    }
}

#endif
