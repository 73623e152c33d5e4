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

#define PMAX 16
#define BMAX 4

typedef struct {
    const xnor_conv_args *a;
    int64_t row_elems;  /* Wp * C */
    int64_t blk_elems;  /* kh * kw * C * 16 */
    int32_t T;          /* kw * C */
} ctx_t;

static inline __attribute__((always_inline)) XNOR_TARGET_AVX512 void
tile(const ctx_t *c, int64_t q0, int32_t bs, const int P, const int B)
{
    const xnor_conv_args *a = c->a;
    const float *ip[PMAX];
    #pragma GCC unroll 16
    for (int p = 0; p < P; p++) {
        const int64_t q = q0 + p;
        const int32_t y = (int32_t)(q / a->ow), x = (int32_t)(q % a->ow);
        ip[p] = a->in + ((int64_t)y * a->sh * a->Wp + (int64_t)x * a->sw) * a->C;
    }
    const float *wb = a->wf + (int64_t)bs * c->blk_elems;
    const int32_t T = c->T;

    __m512 acc[PMAX][BMAX];
    #pragma GCC unroll 16
    for (int p = 0; p < P; p++)
        #pragma GCC unroll 16
        for (int b = 0; b < B; b++)
            acc[p][b] = _mm512_setzero_ps();

    for (int32_t ky = 0; ky < a->kh; ky++) {
        const float *wk = wb + (int64_t)ky * T * XNOR_LANES;
        const float *ik[PMAX];
        #pragma GCC unroll 16
        for (int p = 0; p < P; p++)
            ik[p] = ip[p] + ky * c->row_elems;
        for (int32_t t = 0; t < T; t++) {
            __m512 w[BMAX];
            #pragma GCC unroll 16
            for (int b = 0; b < B; b++)
                w[b] = _mm512_loadu_ps(wk + b * c->blk_elems + (int64_t)t * XNOR_LANES);
            #pragma GCC unroll 16
            for (int p = 0; p < P; p++) {
                const __m512 x = _mm512_set1_ps(ik[p][t]);
                #pragma GCC unroll 16
                for (int b = 0; b < B; b++)
                    acc[p][b] = _mm512_fmadd_ps(x, w[b], acc[p][b]);
            }
        }
    }

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
            if (a->relu)
                v = _mm512_max_ps(v, _mm512_setzero_ps()); /* NaN and -0 -> +0, as scalar */
            _mm512_mask_storeu_ps(a->out + (q0 + p) * a->ldo + o0, m, v);
        }
    }
}

TILE16_ALL(k_tiles)

XNOR_TARGET_AVX512 void xnor_fconv_16c__avx512f(const xnor_conv_args *a)
{
    /* An empty reduction (kh, kw or C of 0) gives T = 0 or no ky rows: the tile stores
     * bias alone, which is what the formula says. */
    const ctx_t c = {a, (int64_t)a->Wp * a->C, (int64_t)a->kh * a->kw * a->C * XNOR_LANES,
                     a->kw * a->C};
    /* Streamed past 2 MB: fc8 (16 MB) at batch 16 takes 1.37 ms with one block per tile
     * against 1.56 ms with pixel tiles of 4 blocks; a batch of <= 4 keeps 4 blocks so
     * that enough independent FMA chains remain. */
    tile16_conv_sweep(&k_tiles, &c, a, (double)c.blk_elems * 4.0, 2.0 * 1024 * 1024);
}
