/* qconv_16c__avxvnni.c -- int8 convolution / linear with AVX-VNNI (VEX vpdpbusd, ymm).
 *
 * For CPUs with AVX2 and AVX-VNNI but no AVX-512 VNNI path in use (the AVX2 table picks
 * this kernel when cpuid reports AVX-VNNI). One vpdpbusd adds, for 8 output channels, the
 * dot product of 4 broadcast uint8 activation bytes with each channel's 4 int8 weights in
 * one int32 step, without the 16-bit widening the plain AVX2 kernel needs. A 16-channel
 * block is two ymm of weights. A tile is 3 positions x 2 blocks: 12 accumulators, 3
 * broadcasts and one weight register fill the 16 ymm, and each group needs 3 broadcasts
 * and 4 weight loads for 12 vpdpbusd (with 6 x 1 tiles the broadcasts, which compete
 * with vpdpbusd for the vector pipes, cost ~10% of conv1). Integer sums: equal to the
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

#define NP 3 /* positions per tile */
#define NBMAX 2

/* np <= NP positions x + [0, np) of row y, NB blocks from ob. Per group each weight half
 * is loaded once and used by the np positions, each broadcast by the NB blocks. */
XNOR_TARGET_AVXVNNI static inline __attribute__((always_inline)) void
tile(const xnor_qconv_args *a, int32_t y, int32_t x, int32_t ob, const int np, const int NB)
{
    __m256i acc[NP][2 * NBMAX];
    for (int j = 0; j < np; j++)
        for (int h = 0; h < 2 * NB; h++) acc[j][h] = _mm256_setzero_si256();
    const int64_t wblk = (int64_t)a->kh * a->qg * 64; /* bytes per 16-channel block */
    for (int32_t ky = 0; ky < a->kh; ky++) {
        const uint8_t *row = a->in + (a->off0 + (int64_t)(y * a->sh + ky) * a->row_stride + (int64_t)x * a->px_stride);
        const int8_t *wk = a->w + (int64_t)ob * wblk + (int64_t)ky * a->qg * 64;
        for (int32_t g = 0; g < a->qg; g++) {
            __m256i px[NP];
            for (int j = 0; j < np; j++) px[j] = _mm256_set1_epi32(load_u32(row + (int64_t)j * a->px_stride + 4 * g));
            for (int h = 0; h < 2 * NB; h++) {
                const __m256i wv = _mm256_loadu_si256((const __m256i *)(wk + (h >> 1) * wblk + (int64_t)g * 64 + 32 * (h & 1)));
                for (int j = 0; j < np; j++) acc[j][h] = _mm256_dpbusd_avx_epi32(acc[j][h], px[j], wv);
            }
        }
    }
    for (int j = 0; j < np; j++) {
        int32_t *o = a->out + ((int64_t)(y - a->y0) * a->out_row + (x + j - a->x0)) * a->out_stride
            + (int64_t)(ob - a->b0) * XNOR_LANES;
        for (int h = 0; h < 2 * NB; h++) _mm256_storeu_si256((__m256i *)(o + 8 * h), acc[j][h]);
    }
}

/* Blocks [ob, ob + NB) of row y: NP-position tiles, then the positions left over. */
XNOR_TARGET_AVXVNNI static void row_blocks(const xnor_qconv_args *a, int32_t y, int32_t ob, const int NB)
{
    int32_t x = a->x0;
    for (; x + NP <= a->x1; x += NP) tile(a, y, x, ob, NP, NB);
    for (; x < a->x1; x++) tile(a, y, x, ob, 1, NB);
}

XNOR_TARGET_AVXVNNI void xnor_qconv_16c__avxvnni(const xnor_qconv_args *a)
{
    for (int32_t y = a->y0; y < a->y1; y++) {
        int32_t ob = a->b0;
        for (; ob + NBMAX <= a->b1; ob += NBMAX) row_blocks(a, y, ob, NBMAX);
        for (; ob < a->b1; ob++) row_blocks(a, y, ob, 1);
    }
}

#endif
