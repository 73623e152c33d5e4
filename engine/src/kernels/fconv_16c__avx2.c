/* fconv_16c__avx2.c -- float convolution / linear with AVX2 + FMA.
 *
 * Output channels in lanes: a 16-channel block is two ymm of weights per (tap, channel);
 * one input value per pixel is broadcast and FMA'd into both halves. A tile is P pixels x
 * 1 block = 2P accumulators; P = 6 gives 12 independent FMA chains (latency 4 x 2 ports
 * needs >= 8) and, with 2 weight registers and a broadcast, fits the 16 ymm registers.
 * Pixel tiling across rows with an overlapped last tile and the flat T = kw*C walk per
 * kernel row are as in the AVX-512 kernel. Partial blocks of O are stored masked. */
#include <immintrin.h>

#include "tile16__avx2.h"

#define PMAX 6

static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
weights(const void *wk, int32_t t, __m256 *w0, __m256 *w1)
{
    *w0 = _mm256_loadu_ps((const float *)wk + t * XNOR_LANES);
    *w1 = _mm256_loadu_ps((const float *)wk + t * XNOR_LANES + 8);
}

enum { BIAS, SCALE, SHIFT }; /* the per-channel vectors of the epilogue */

/* acc + bias (always the add, zeros without a bias), then the folded batchnorm if any: mul
 * then add, two roundings, as the separate op (kernels.h). */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 __m256
epilogue(const xnor_conv_args *a, __m256 ch[][2], int h, __m256 acc)
{
    const __m256 v = _mm256_add_ps(acc, ch[BIAS][h]);
    return a->scale ? _mm256_add_ps(_mm256_mul_ps(v, ch[SCALE][h]), ch[SHIFT][h]) : v;
}

static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
tile(const conv16_ctx *c, int64_t q0, int32_t ob, const int P)
{
    const xnor_conv_args *a = c->a;
    __m256 acc[TILE16_AVX2_PMAX][2];
    const char *wb = (const char *)(a->wf + (int64_t)ob * c->blk_elems);
    tile16_avx2_accumulate(a, q0, P, c->row_elems, c->T, wb, (int64_t)c->T * XNOR_LANES * sizeof(float), weights,
                           acc);

    const int32_t o0 = ob * XNOR_LANES;
    __m256 ch[3][2];
    tile16_avx2_channels(a->bias, o0, ch[BIAS]);
    tile16_avx2_channels(a->scale, o0, ch[SCALE]);
    tile16_avx2_channels(a->shift, o0, ch[SHIFT]);
    tile16_avx2_finish(a, q0, P, o0, acc, ch, epilogue);
}

TILE16_AVX2_DEF(1) TILE16_AVX2_DEF(2) TILE16_AVX2_DEF(3) TILE16_AVX2_DEF(4) TILE16_AVX2_DEF(5) TILE16_AVX2_DEF(6)

static const tile16_avx2_fn k_tiles[PMAX + 1] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6};

XNOR_TARGET_AVX2 void xnor_fconv_16c__avx2(const xnor_conv_args *a)
{
    const conv16_ctx c = conv16_ctx_of(a, XNOR_LANES);
    tile16_avx2_sweep(k_tiles, PMAX, &c, a);
}
