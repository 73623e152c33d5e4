/* bwnconv_16c__avx2.c -- binary-weight (BWN) convolution / linear with AVX2 + FMA.
 *
 * Tile structure as fconv_16c__avx2.c (tile16__avx2.h, shared): one 16-channel block =
 * two ymm accumulators per pixel, overlapped last tile, flat T = kw*C walk per kernel row;
 * but P <= 5 pixels per tile: the mask expansion needs two more live registers than fconv, and at P = 6 GCC
 * spills an accumulator in the inner loop (conv2 17.6 ms vs 13 ms at P = 5, P = 4 15.7 ms).
 *
 * Weights are one 16-bit mask per (block, t). The mask is expanded once per t (shared by
 * the P pixels) into two ymm of +-1.0f: a variable left shift moves bit i of the mask
 * into the sign bit of lane i, the sign bit is kept and xor'ed into -1.0f (so a set bit
 * gives +1.0f). Then one FMA per pixel and half adds x * (+-1) = +-x exactly: the FMA
 * rounds once, to exactly acc + x or acc - x, which is the same as xor'ing the sign of x
 * and adding (2 operations per pixel and half instead of 1). One accumulator per output
 * in the scalar kernel's term order: bit-identical to the scalar kernel. */
#include <immintrin.h>

#include "tile16__avx2.h"

#define PMAX 5

/* The mask of term t expanded to +-1.0f per lane: lane i of half h tests mask bit 8h + i,
 * shifted to bit 31, kept as the sign bit and xor'ed into -1.0f. */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
weights(const void *wk, int32_t t, __m256 *w0, __m256 *w1)
{
    const __m256i sh0 = _mm256_setr_epi32(31, 30, 29, 28, 27, 26, 25, 24);
    const __m256i sh1 = _mm256_setr_epi32(23, 22, 21, 20, 19, 18, 17, 16);
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
    const __m256 neg = _mm256_set1_ps(-1.0f);
    const __m256i m = _mm256_set1_epi32((int)((const uint16_t *)wk)[t]);
    *w0 = _mm256_xor_ps(_mm256_and_ps(_mm256_castsi256_ps(_mm256_sllv_epi32(m, sh0)), sign), neg);
    *w1 = _mm256_xor_ps(_mm256_and_ps(_mm256_castsi256_ps(_mm256_sllv_epi32(m, sh1)), sign), neg);
}

enum { ALPHA, BIAS }; /* the per-channel vectors of the epilogue */

/* acc * alpha, + bias if the call has one (kernels.h). */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 __m256
epilogue(const xnor_conv_args *a, __m256 ch[][2], int h, __m256 acc)
{
    const __m256 v = _mm256_mul_ps(acc, ch[ALPHA][h]);
    return a->bias ? _mm256_add_ps(v, ch[BIAS][h]) : v;
}

static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
tile(const conv16_ctx *c, int64_t q0, int32_t ob, const int P)
{
    const xnor_conv_args *a = c->a;
    __m256 acc[TILE16_AVX2_PMAX][2];
    const char *wb = (const char *)(a->wm + (int64_t)ob * c->blk_elems);
    tile16_avx2_accumulate(a, q0, P, c->row_elems, c->T, wb, (int64_t)c->T * sizeof(uint16_t), weights, acc);

    const int32_t o0 = ob * XNOR_LANES;
    __m256 ch[2][2];
    for (int h = 0; h < 2; h++) /* alpha is always set, with 16 entries per block */
        ch[ALPHA][h] = _mm256_loadu_ps(a->alpha + o0 + 8 * h);
    tile16_avx2_channels(a->bias, o0, ch[BIAS]);
    tile16_avx2_finish(a, q0, P, o0, acc, ch, epilogue);
}

TILE16_AVX2_DEF(1) TILE16_AVX2_DEF(2) TILE16_AVX2_DEF(3) TILE16_AVX2_DEF(4) TILE16_AVX2_DEF(5)

static const tile16_avx2_fn k_tiles[PMAX + 1] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5};

XNOR_TARGET_AVX2 void xnor_bwnconv_16c__avx2(const xnor_conv_args *a)
{
    const conv16_ctx c = conv16_ctx_of(a, 1);
    tile16_avx2_sweep(k_tiles, PMAX, &c, a);
}
