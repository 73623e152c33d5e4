/* resize_u8__avx2.c -- the uint8 image resampler's two passes with AVX2 (kernels.h).
 * The same integer products and sums as the scalar twin in 32-bit lanes, so the results
 * are the scalar kernel's bit for bit. */
#include <string.h>

#include "kernels.h"

#if defined(XNOR_HAVE_X86)
#include <immintrin.h>

/* Eight int32 sums -> eight bytes clamp(s >> BITS, 0, 255) (signed saturation to int16, then
 * unsigned saturation to uint8: the scalar clamp). */
XNOR_TARGET_AVX2 static inline __m128i narrow8(__m256i s)
{
    const __m256i v = _mm256_srai_epi32(s, XNOR_RESIZE_BITS);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return _mm_packus_epi16(w, w);
}

XNOR_TARGET_AVX2 static inline uint32_t load4(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Three channels, two output pixels per 256-bit sum: lanes 0..2 hold pixel xx's R, G, B and
 * lanes 4..6 pixel xx + 1's; lanes 3 and 7 multiply the byte after a pixel and are dropped.
 * A row whose last pixel has no byte after it inside src_len goes to the scalar kernel. */
XNOR_TARGET_AVX2 static void resize_h_rgb(const xnor_resize_h_args *a)
{
    const int32_t taps = a->f.taps, half = 1 << (XNOR_RESIZE_BITS - 1);
    const int r0 = a->reverse ? 2 : 0, r2 = a->reverse ? 0 : 2;
    const size_t row_bytes = (size_t)a->src_w * 3;
    for (int32_t y = a->y0; y < a->y1; y++) {
        uint8_t *out = a->dst + (size_t)(y - a->y0) * a->dst_stride;
        if ((size_t)y * a->src_stride + row_bytes >= a->src_len) {
            xnor_resize_h_args one = *a;
            one.y0 = y;
            one.y1 = y + 1;
            one.dst = out;
            xnor_resize_h_u8__scalar(&one);
            continue;
        }
        const uint8_t *in = a->src + (size_t)y * a->src_stride;
        int32_t xx = 0;
        for (; xx + 2 <= a->out_w; xx += 2) {
            const int32_t *ka = a->f.k + (size_t)xx * taps, *kb = ka + taps;
            const uint8_t *pa = in + (size_t)a->f.first[xx] * 3, *pb = in + (size_t)a->f.first[xx + 1] * 3;
            __m256i acc = _mm256_set1_epi32(half);
            for (int32_t t = 0; t < taps; t++) {
                const __m128i two = _mm_insert_epi32(_mm_cvtsi32_si128((int)load4(pa + 3 * t)), (int)load4(pb + 3 * t), 1);
                const __m256i w = _mm256_set_m128i(_mm_set1_epi32(kb[t]), _mm_set1_epi32(ka[t]));
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(two), w));
            }
            const uint64_t b = (uint64_t)_mm_cvtsi128_si64(narrow8(acc));
            uint8_t *o = out + (size_t)xx * 3;
            o[r0] = (uint8_t)b;
            o[1] = (uint8_t)(b >> 8);
            o[r2] = (uint8_t)(b >> 16);
            o[3 + r0] = (uint8_t)(b >> 32);
            o[4] = (uint8_t)(b >> 40);
            o[3 + r2] = (uint8_t)(b >> 48);
        }
        if (xx < a->out_w) {  /* an odd last pixel: its sum in the low half only */
            const int32_t *ka = a->f.k + (size_t)xx * taps;
            const uint8_t *pa = in + (size_t)a->f.first[xx] * 3;
            __m256i acc = _mm256_set1_epi32(half);
            for (int32_t t = 0; t < taps; t++) {
                const __m256i px = _mm256_cvtepu8_epi32(_mm_cvtsi32_si128((int)load4(pa + 3 * t)));
                acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(px, _mm256_set1_epi32(ka[t])));
            }
            const uint32_t b = (uint32_t)_mm_cvtsi128_si32(narrow8(acc));
            uint8_t *o = out + (size_t)xx * 3;
            o[r0] = (uint8_t)b;
            o[1] = (uint8_t)(b >> 8);
            o[r2] = (uint8_t)(b >> 16);
        }
    }
}

/* One channel (the small gray models) stays with the scalar kernel: a gather per tap costs
 * more than it saves at these sizes. */
XNOR_TARGET_AVX2 void xnor_resize_h_u8__avx2(const xnor_resize_h_args *a)
{
    if (a->C == 3) resize_h_rgb(a);
    else xnor_resize_h_u8__scalar(a);
}

/* 32 bytes of a row per step (four 8-lane sums), then 8, then single bytes. */
XNOR_TARGET_AVX2 void xnor_resize_v_u8__avx2(const xnor_resize_v_args *a)
{
    const int32_t taps = a->f.taps, half = 1 << (XNOR_RESIZE_BITS - 1);
    const __m256i h = _mm256_set1_epi32(half);
    for (int32_t yy = 0; yy < a->out_h; yy++) {
        const int32_t *k = a->f.k + (size_t)yy * taps;
        const uint8_t *in = a->src + (size_t)a->f.first[yy] * a->src_stride;
        uint8_t *out = a->dst + (size_t)yy * a->dst_stride;
        int32_t i = 0;
        for (; i + 32 <= a->n; i += 32) {
            __m256i s0 = h, s1 = h, s2 = h, s3 = h;
            for (int32_t t = 0; t < taps; t++) {
                const uint8_t *row = in + (size_t)t * a->src_stride + i;
                const __m256i w = _mm256_set1_epi32(k[t]);
                const __m128i lo = _mm_loadu_si128((const __m128i *)row), hi = _mm_loadu_si128((const __m128i *)(row + 16));
                s0 = _mm256_add_epi32(s0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(lo), w));
                s1 = _mm256_add_epi32(s1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), w));
                s2 = _mm256_add_epi32(s2, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(hi), w));
                s3 = _mm256_add_epi32(s3, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), w));
            }
            _mm_storeu_si128((__m128i *)(out + i), _mm_unpacklo_epi64(narrow8(s0), narrow8(s1)));
            _mm_storeu_si128((__m128i *)(out + i + 16), _mm_unpacklo_epi64(narrow8(s2), narrow8(s3)));
        }
        for (; i + 8 <= a->n; i += 8) {
            __m256i s0 = h;
            for (int32_t t = 0; t < taps; t++) {
                uint64_t v;
                memcpy(&v, in + (size_t)t * a->src_stride + i, 8);
                s0 = _mm256_add_epi32(s0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)v)),
                                                             _mm256_set1_epi32(k[t])));
            }
            _mm_storel_epi64((__m128i *)(out + i), narrow8(s0));
        }
        for (; i < a->n; i++) {
            int32_t s = half;
            for (int32_t t = 0; t < taps; t++) s += in[(size_t)t * a->src_stride + i] * k[t];
            const int32_t v = s >> XNOR_RESIZE_BITS;
            out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}
#endif
