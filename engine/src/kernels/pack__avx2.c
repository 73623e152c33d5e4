/* pack__avx2.c -- binarize + bit-pack with AVX2.
 *
 * 8 channels per compare: _mm256_cmp_ps(GE, ordered) then movemask gives the 8 sign
 * bits (NaN -> 0, -0.0 -> 1, like the scalar v >= 0). The batch-norm step is an explicit
 * mul then add, never an FMA, so rounding matches the scalar twin bit for bit. The channel
 * tail uses vmaskmovps loads (no access to disabled lanes) and drops the bits of lanes
 * past C, which would otherwise read as (0 >= 0) = 1. */
#include <immintrin.h>

#include "kernels.h"

static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 uint32_t
sign8(const float *in, const float *scale, const float *shift, int32_t c)
{
    __m256 v = _mm256_loadu_ps(in + c);
    if (scale) {
        v = _mm256_mul_ps(v, _mm256_loadu_ps(scale + c));
        v = _mm256_add_ps(v, _mm256_loadu_ps(shift + c));
    }
    return (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ));
}

/* Fewer than 8 channels left (0 < n < 8). */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 uint32_t
sign8_tail(const float *in, const float *scale, const float *shift, int32_t c, int32_t n)
{
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 v = _mm256_maskload_ps(in + c, m);
    if (scale) {
        v = _mm256_mul_ps(v, _mm256_maskload_ps(scale + c, m));
        v = _mm256_add_ps(v, _mm256_maskload_ps(shift + c, m));
    }
    const uint32_t bits = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ));
    return bits & ((1u << n) - 1u);
}

XNOR_TARGET_AVX2 void xnor_pack__avx2(const xnor_pack_args *a)
{
    const int32_t C = a->C, cw = a->cw;
    const float *scale = a->scale, *shift = a->scale ? a->shift : NULL;
    for (int32_t y = a->y0; y < a->y1; y++) {
        for (int32_t x = 0; x < a->W; x++) {
            const float *ip = a->in + ((int64_t)y * a->W + x) * C;
            uint32_t *op = a->out + ((int64_t)(y + a->pt) * a->Wp + (x + a->pl)) * cw;
            int32_t j = 0;
            for (; (j + 1) * 32 <= C; j++) {
                const int32_t c = j * 32;
                op[j] = sign8(ip, scale, shift, c) | sign8(ip, scale, shift, c + 8) << 8 |
                        sign8(ip, scale, shift, c + 16) << 16 | sign8(ip, scale, shift, c + 24) << 24;
            }
            /* Partial last word, and all-zero words if cw exceeds ceil(C / 32). */
            for (; j < cw; j++) {
                uint32_t word = 0;
                for (int32_t c = j * 32, k = 0; k < 4 && c < C; k++, c += 8)
                    word |= (C - c >= 8 ? sign8(ip, scale, shift, c)
                                        : sign8_tail(ip, scale, shift, c, C - c)) << (8 * k);
                op[j] = word;
            }
        }
    }
}
