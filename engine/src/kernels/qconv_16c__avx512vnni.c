/* qconv_16c__avx512vnni.c -- int8 convolution / linear with vpdpbusd.
 *
 * One vpdpbusd adds, for 16 output channels at once, the dot product of 4 uint8
 * activation bytes (broadcast) with each channel's 4 int8 weights. A register tile holds
 * NP output positions x NB 16-channel blocks of int32 sums; each 64-byte weight vector is
 * loaded once per tile and used NP times. Integer sums: equal to the scalar kernel. */
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

/* NP positions x + [0, NP) of row y, blocks [ob, ob + NB). */
XNOR_TARGET_AVX512VNNI static inline __attribute__((always_inline)) void
tile(const xnor_qconv_args *a, int32_t y, int32_t x, int32_t ob, const int NP, const int NB)
{
    __m512i acc[6][4];
    for (int j = 0; j < NP; j++)
        for (int b = 0; b < NB; b++) acc[j][b] = _mm512_setzero_si512();
    const int64_t wblk = (int64_t)a->kh * a->qg * 64; /* bytes per 16-channel block */
    for (int32_t ky = 0; ky < a->kh; ky++) {
        const uint8_t *row = a->in + (a->off0 + (int64_t)(y * a->sh + ky) * a->row_stride + (int64_t)x * a->px_stride);
        const int8_t *wk = a->w + (int64_t)ob * wblk + (int64_t)ky * a->qg * 64;
        for (int32_t g = 0; g < a->qg; g++) {
            __m512i wv[4];
            for (int b = 0; b < NB; b++) wv[b] = _mm512_loadu_si512((const void *)(wk + b * wblk + (int64_t)g * 64));
            for (int j = 0; j < NP; j++) {
                const __m512i px = _mm512_set1_epi32(load_u32(row + (int64_t)j * a->px_stride + 4 * g));
                for (int b = 0; b < NB; b++) acc[j][b] = _mm512_dpbusd_epi32(acc[j][b], px, wv[b]);
            }
        }
    }
    for (int j = 0; j < NP; j++) {
        int32_t *o = a->out + ((int64_t)(y - a->y0) * a->out_row + (x + j - a->x0)) * a->out_stride
            + (int64_t)(ob - a->b0) * XNOR_LANES;
        for (int b = 0; b < NB; b++) _mm512_storeu_si512((void *)(o + b * XNOR_LANES), acc[j][b]);
    }
}

XNOR_TARGET_AVX512VNNI static void row_blocks(const xnor_qconv_args *a, int32_t y, int32_t ob, const int NB)
{
    int32_t x = a->x0;
    for (; x + 6 <= a->x1; x += 6) tile(a, y, x, ob, 6, NB);
    for (; x < a->x1; x++) tile(a, y, x, ob, 1, NB);
}

XNOR_TARGET_AVX512VNNI void xnor_qconv_16c__avx512vnni(const xnor_qconv_args *a)
{
    for (int32_t y = a->y0; y < a->y1; y++) {
        int32_t ob = a->b0;
        for (; ob + 4 <= a->b1; ob += 4) row_blocks(a, y, ob, 4);
        if (ob + 2 <= a->b1) {
            row_blocks(a, y, ob, 2);
            ob += 2;
        }
        if (ob < a->b1) row_blocks(a, y, ob, 1);
    }
}

#endif
