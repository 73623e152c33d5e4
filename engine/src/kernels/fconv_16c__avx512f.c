/* fconv_16c__avx512f.c -- float convolution / linear with AVX-512F FMA.
 *
 * Output channels live in lanes: one zmm = the 16 channels of a weight block for one
 * (tap, input channel). Each step broadcasts one input value of a pixel and FMAs it into
 * that pixel's accumulators. The register tile is P pixels x B blocks (P*B <= 24), so a
 * weight load feeds P FMAs and a broadcast feeds B; with FMA latency 4 on 2 ports, >= 8
 * independent accumulators keep both ports busy.
 *
 * Pixels are numbered row-major over [y0, y1) x [0, ow) and tiled across row ends; the
 * last tile is shifted back to overlap its predecessor (same values rewritten) instead of
 * needing narrower variants. For a fixed ky the kw taps x C channels of a pixel are one
 * contiguous run of T = kw*C floats in the input and in the weights, so the inner loop
 * is a flat walk over T whatever the shape. The tail block of O is stored masked. */
#include <immintrin.h>

#include "tile16__avx512.h"

static inline __attribute__((always_inline)) XNOR_TARGET_AVX512 __m512
weights(const void *wk, int64_t blk_elems, int32_t t, int b)
{
    return _mm512_loadu_ps((const float *)wk + b * blk_elems + (int64_t)t * XNOR_LANES);
}

static inline __attribute__((always_inline)) XNOR_TARGET_AVX512 void
tile(const conv16_ctx *c, int64_t q0, int32_t bs, const int P, const int B)
{
    const xnor_conv_args *a = c->a;
    __m512 acc[TILE16_PMAX][TILE16_BMAX];
    const char *wb = (const char *)(a->wf + (int64_t)bs * c->blk_elems);
    tile16_accumulate(a, q0, P, B, c->row_elems, c->T, wb, (int64_t)c->T * XNOR_LANES * sizeof(float),
                      c->blk_elems, weights, acc);
    #pragma GCC unroll 16
    for (int b = 0; b < B; b++) {
        const int32_t o0 = (bs + b) * XNOR_LANES;
        const int32_t left = a->O - o0;
        const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
        /* bias, scale and shift have 16 entries per block: full-width loads stay inside. */
        const __m512 bias = a->bias ? _mm512_loadu_ps(a->bias + o0) : _mm512_setzero_ps();
        const __m512 scale = a->scale ? _mm512_loadu_ps(a->scale + o0) : _mm512_setzero_ps();
        const __m512 shift = a->scale ? _mm512_loadu_ps(a->shift + o0) : _mm512_setzero_ps();
        #pragma GCC unroll 16
        for (int p = 0; p < P; p++) {
            __m512 v = _mm512_add_ps(acc[p][b], bias);
            if (a->scale) /* folded batchnorm: mul then add, two roundings, as the separate op */
                v = _mm512_add_ps(_mm512_mul_ps(v, scale), shift);
            tile16_store(a, a->out + (q0 + p) * a->ldo + o0, m, v);
        }
    }
}

TILE16_ALL(k_tiles)

XNOR_TARGET_AVX512 void xnor_fconv_16c__avx512f(const xnor_conv_args *a)
{
    /* An empty reduction (kh, kw or C of 0) gives T = 0 or no ky rows: the tile stores
     * bias alone, which is what the formula says. */
    const conv16_ctx c = conv16_ctx_of(a, XNOR_LANES);
    /* Streamed past 2 MB: fc8 (16 MB) at batch 16 takes 1.37 ms with one block per tile
     * against 1.56 ms with pixel tiles of 4 blocks; a batch of <= 4 keeps 4 blocks so
     * that enough independent FMA chains remain. */
    tile16_conv_sweep(&k_tiles, &c, a, (double)c.blk_elems * 4.0, 2.0 * 1024 * 1024);
}
