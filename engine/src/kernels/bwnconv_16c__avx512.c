/* bwnconv_16c__avx512.c -- binary-weight (BWN) convolution / linear with AVX-512F.
 *
 * The tile structure is fconv's (tile16__avx512.h, shared): output channels in lanes, a
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

static inline __attribute__((always_inline)) XNOR_TARGET_AVX512 __m512
weights(const void *wk, int64_t blk_elems, int32_t t, int b)
{
    const __mmask16 m = ((const uint16_t *)wk)[b * blk_elems + t];
    return _mm512_mask_blend_ps(m, _mm512_set1_ps(-1.0f), _mm512_set1_ps(1.0f));
}

static inline __attribute__((always_inline)) XNOR_TARGET_AVX512 void
tile(const conv16_ctx *c, int64_t q0, int32_t bs, const int P, const int B)
{
    const xnor_conv_args *a = c->a;
    __m512 acc[TILE16_PMAX][TILE16_BMAX];
    const char *wb = (const char *)(a->wm + (int64_t)bs * c->blk_elems);
    tile16_accumulate(a, q0, P, B, c->row_elems, c->T, wb, (int64_t)c->T * sizeof(uint16_t), c->blk_elems,
                      weights, acc);
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
            tile16_store(a, a->out + (q0 + p) * a->ldo + o0, m, v);
        }
    }
}

TILE16_ALL(k_tiles)

XNOR_TARGET_AVX512 void xnor_bwnconv_16c__avx512(const xnor_conv_args *a)
{
    const conv16_ctx c = conv16_ctx_of(a, 1);
    /* Streamed, as in fconv, when the masks do not fit in L2 (BWN fc6: 4.7 MB). */
    tile16_conv_sweep(&k_tiles, &c, a, (double)c.blk_elems * 2.0, 1.0 * 1024 * 1024);
}
