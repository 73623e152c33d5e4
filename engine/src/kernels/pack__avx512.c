/* pack__avx512.c -- binarize + bit-pack with AVX-512.
 *
 * 16 channels per compare: _mm512_cmp_ps_mask(GE, ordered) gives the 16 sign bits
 * directly (NaN -> 0, -0.0 -> 1, like the scalar v >= 0). The batch-norm step is an
 * explicit mul then add, never an FMA, so the rounding matches the scalar twin bit for
 * bit. The channel tail uses masked loads (which do not fault on masked-off lanes) and
 * the compare is masked too, so lanes past C give 0 bits rather than (0 >= 0) = 1. */
#include <immintrin.h>

#include "kernels.h"

static inline __attribute__((always_inline)) XNOR_TARGET_AVX512 __mmask16
sign16(const float *in, const float *scale, const float *shift, int32_t c, __mmask16 m)
{
    __m512 v = _mm512_maskz_loadu_ps(m, in + c);
    if (scale) {
        v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, scale + c));
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, shift + c));
    }
    return _mm512_mask_cmp_ps_mask(m, v, _mm512_setzero_ps(), _CMP_GE_OQ);
}

static inline __attribute__((always_inline)) XNOR_TARGET_AVX512 __mmask16
tail_mask(int32_t n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

XNOR_TARGET_AVX512 void xnor_pack__avx512(const xnor_pack_args *a)
{
    const int32_t C = a->C, cw = a->cw;
    const float *scale = a->scale, *shift = a->scale ? a->shift : NULL;
    for (int32_t y = a->y0; y < a->y1; y++) {
        for (int32_t x = 0; x < a->W; x++) {
            const float *ip = a->in + ((int64_t)y * a->W + x) * C;
            uint32_t *op = a->out + ((int64_t)(y + a->pt) * a->Wp + (x + a->pl)) * cw;
            int32_t j = 0;
            /* Full words: both halves unmasked. */
            for (; (j + 1) * 32 <= C; j++) {
                const uint32_t lo = sign16(ip, scale, shift, j * 32, 0xFFFF);
                const uint32_t hi = sign16(ip, scale, shift, j * 32 + 16, 0xFFFF);
                op[j] = lo | hi << 16;
            }
            for (; j < cw; j++) {
                const int32_t c = j * 32;
                /* Words past C (cw larger than needed) are all-zero, as in scalar; the
                 * pointer is only formed when some channel of it exists. */
                uint32_t word = 0;
                if (C - c > 0)
                    word = sign16(ip, scale, shift, c, tail_mask(C - c));
                if (C - c > 16)
                    word |= (uint32_t)sign16(ip, scale, shift, c + 16, tail_mask(C - c - 16)) << 16;
                op[j] = word;
            }
        }
    }
}
