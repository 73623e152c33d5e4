/* bwnconv_16c__avx512.c -- binary-weight (BWN) convolution / linear with AVX-512F.
 *
 * The tile structure is fconv's (fconv_16c__avx512f.c): output channels in lanes, a
 * register tile of P pixels x B 16-channel blocks, pixels row-major over [y0, y1) x
 * [0, ow) with an overlapped last tile, and a flat walk over the T = kw*C contiguous
 * (tap, channel) terms of each kernel row. The weights are one bit each: per (block, t)
 * one 16-bit mask (2 bytes instead of fconv's 64).
 *
 * Adding +x or -x per lane: the mask selects +1.0f / -1.0f lanes (one blend, shared by
 * the P pixels), then one FMA per pixel and block adds x * (+-1) to the accumulator.
 * x * (+-1) is exact, so the FMA rounds once, to exactly acc + x or acc - x: the same
 * bits as a masked add followed by a masked subtract (_mm512_mask_add_ps /
 * _mm512_mask_sub_ps), at P + 1 instead of 2P vector operations per (block, t). With one
 * accumulator per output and the scalar kernel's term order, every result equals the
 * scalar kernel's bit for bit. */
#include <immintrin.h>

#include "tile16__avx512.h"

#define PMAX 16
#define BMAX 4

typedef struct {
    const xnor_conv_args *a;
    int64_t row_elems;  /* Wp * C */
    int64_t blk_elems;  /* kh * kw * C masks per block */
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
    const uint16_t *wb = a->wm + (int64_t)bs * c->blk_elems;
    const int32_t T = c->T;
    const __m512 pos = _mm512_set1_ps(1.0f), neg = _mm512_set1_ps(-1.0f);

    __m512 acc[PMAX][BMAX];
    #pragma GCC unroll 16
    for (int p = 0; p < P; p++)
        #pragma GCC unroll 16
        for (int b = 0; b < B; b++)
            acc[p][b] = _mm512_setzero_ps();

    for (int32_t ky = 0; ky < a->kh; ky++) {
        const uint16_t *wk = wb + (int64_t)ky * T;
        const float *ik[PMAX];
        #pragma GCC unroll 16
        for (int p = 0; p < P; p++)
            ik[p] = ip[p] + ky * c->row_elems;
        for (int32_t t = 0; t < T; t++) {
            __m512 w[BMAX];
            #pragma GCC unroll 16
            for (int b = 0; b < B; b++)
                w[b] = _mm512_mask_blend_ps((__mmask16)wk[b * c->blk_elems + t], neg, pos);
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
        /* alpha and bias have 16 entries per block: full-width loads stay inside them. */
        const __m512 alpha = _mm512_loadu_ps(a->alpha + o0);
        const __m512 bias = a->bias ? _mm512_loadu_ps(a->bias + o0) : _mm512_setzero_ps();
        #pragma GCC unroll 16
        for (int p = 0; p < P; p++) {
            __m512 v = _mm512_mul_ps(acc[p][b], alpha);
            if (a->bias)
                v = _mm512_add_ps(v, bias);
            if (a->relu)
                v = _mm512_max_ps(v, _mm512_setzero_ps()); /* NaN and -0 -> +0, as scalar */
            _mm512_mask_storeu_ps(a->out + (q0 + p) * a->ldo + o0, m, v);
        }
    }
}

TILE16_ALL(k_tiles)

XNOR_TARGET_AVX512 void xnor_bwnconv_16c__avx512(const xnor_conv_args *a)
{
    const ctx_t c = {a, (int64_t)a->Wp * a->C, (int64_t)a->kh * a->kw * a->C, a->kw * a->C};
    /* Streamed, as in fconv, when the masks do not fit in L2 (BWN fc6: 4.7 MB). */
    tile16_conv_sweep(&k_tiles, &c, a, (double)c.blk_elems * 2.0, 1.0 * 1024 * 1024);
}
