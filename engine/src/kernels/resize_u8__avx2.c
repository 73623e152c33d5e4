/* resize_u8__avx2.c -- the uint8 image resampler's two passes with AVX2 (kernels.h).
 * The same integer products and sums as the scalar twin in 32-bit lanes, so the results
 * are the scalar kernel's bit for bit. */
#include <stdlib.h>
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

/* Three channels, two output pixels per 256-bit sum, two taps per step. Each 22-bit weight is
 * split as k = (kh << 11) + kl (both < 2^12), so a tap pair is two vpmaddwd of 16-bit pixels
 * against 16-bit weights; the pair's exact 32-bit sum is (H << 11) + L, the scalar sum's
 * integer. A step loads 8 bytes at a pixel's tap pair (its two RGB triples and 2 bytes more)
 * and vpshufb widens them to [R_t, R_t+1, G_t, G_t+1, B_t, B_t+1, 0, 0] per 128-bit half:
 * half 0 for output pixel xx, half 1 for xx + 1. After the madds lanes 0..2 (and 4..6) hold
 * R, G, B; lanes 3 and 7 are 0.
 *
 * The weights, already in the broadcast form of each step (two 32-byte vectors per tap pair
 * and output pair), are laid out once per call: they are reused by every row. A step reads
 * up to 5 bytes past a pixel's last tap, so a row whose last window ends that close to the end
 * of src goes to the scalar kernel, as does the whole call if the table cannot be allocated. */
typedef struct {
    __m256i *w;  /* [out pair][tap pair] x {hi, lo} */
    int32_t pairs, npairs;
} rgb_weights;

XNOR_TARGET_AVX2 static int rgb_weights_new(rgb_weights *rw, const xnor_resize_h_args *a)
{
    rw->npairs = (a->f.taps + 1) / 2;
    rw->pairs = (a->out_w + 1) / 2;
    rw->w = malloc(sizeof(__m256i) * 2 * (size_t)rw->pairs * (size_t)rw->npairs);
    if (!rw->w) return 0;
    for (int32_t q = 0; q < rw->pairs; q++) {
        const int32_t xa = 2 * q, xb = xa + 1 < a->out_w ? xa + 1 : xa;  /* an odd last pixel pairs with itself */
        const int32_t *ka = a->f.k + (size_t)xa * a->f.taps, *kb = a->f.k + (size_t)xb * a->f.taps;
        for (int32_t p = 0; p < rw->npairs; p++) {
            const int32_t t = 2 * p, two = t + 1 < a->f.taps;
            const uint32_t a0 = (uint32_t)ka[t], a1 = two ? (uint32_t)ka[t + 1] : 0;
            const uint32_t b0 = (uint32_t)kb[t], b1 = two ? (uint32_t)kb[t + 1] : 0;
            const __m128i ha = _mm_set1_epi32((int)((a0 >> 11) | (a1 >> 11) << 16));
            const __m128i la = _mm_set1_epi32((int)((a0 & 2047u) | (a1 & 2047u) << 16));
            const __m128i hb = _mm_set1_epi32((int)((b0 >> 11) | (b1 >> 11) << 16));
            const __m128i lb = _mm_set1_epi32((int)((b0 & 2047u) | (b1 & 2047u) << 16));
            __m256i *w = rw->w + 2 * ((size_t)q * rw->npairs + p);
            _mm256_storeu_si256(w, _mm256_set_m128i(hb, ha));
            _mm256_storeu_si256(w + 1, _mm256_set_m128i(lb, la));
        }
    }
    return 1;
}

/* Output pair q's sums: lanes 0..2 pixel 2q's R, G, B, lanes 4..6 pixel 2q + 1's (+ half). */
XNOR_TARGET_AVX2 static inline __m256i pair_sum(const xnor_resize_h_args *a, const rgb_weights *rw,
                                                const uint8_t *in, int32_t q, __m256i widen, __m256i half)
{
    const int32_t xa = 2 * q, xb = xa + 1 < a->out_w ? xa + 1 : xa;
    const uint8_t *pa = in + (size_t)a->f.first[xa] * 3, *pb = in + (size_t)a->f.first[xb] * 3;
    const __m256i *w = rw->w + 2 * (size_t)q * rw->npairs;
    __m256i hi = _mm256_setzero_si256(), lo = _mm256_setzero_si256();
    for (int32_t p = 0; p < rw->npairs; p++, pa += 6, pb += 6, w += 2) {
        const __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)pa)),
                                                  _mm_loadl_epi64((const __m128i *)pb), 1);
        const __m256i px = _mm256_shuffle_epi8(v, widen);
        hi = _mm256_add_epi32(hi, _mm256_madd_epi16(px, _mm256_loadu_si256(w)));
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(px, _mm256_loadu_si256(w + 1)));
    }
    return _mm256_add_epi32(_mm256_add_epi32(half, _mm256_slli_epi32(hi, 11)), lo);
}

XNOR_TARGET_AVX2 static void resize_h_rgb(const xnor_resize_h_args *a)
{
    rgb_weights rw;
    if (a->f.taps < 1 || !rgb_weights_new(&rw, a)) {
        xnor_resize_h_u8__scalar(a);
        return;
    }
    const int r0 = a->reverse ? 2 : 0, r2 = a->reverse ? 0 : 2;
    const __m256i half = _mm256_set1_epi32(1 << (XNOR_RESIZE_BITS - 1));
    const __m256i widen = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,
                                           0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1);
    /* Eight pixels' [R, G, B, 0] bytes (in pixel order after vpermd) -> 2 x 12 bytes, R and B
     * swapped for BGR. */
    const char c0 = (char)r0, c2 = (char)r2;
    const __m256i compact = _mm256_setr_epi8(c0, 1, c2, 4 + c0, 5, 4 + c2, 8 + c0, 9, 8 + c2, 12 + c0, 13, 12 + c2,
                                             -1, -1, -1, -1, c0, 1, c2, 4 + c0, 5, 4 + c2, 8 + c0, 9, 8 + c2,
                                             12 + c0, 13, 12 + c2, -1, -1, -1, -1);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int32_t last = 0;  /* the furthest window start */
    for (int32_t xx = 0; xx < a->out_w; xx++)
        if (a->f.first[xx] > last) last = a->f.first[xx];
    const size_t reach = ((size_t)last + (size_t)a->f.taps) * 3 + 5;  /* bytes a row's steps may read */
    const int32_t full = a->out_w / 2;                                 /* pairs with two pixels */
    for (int32_t y = a->y0; y < a->y1; y++) {
        uint8_t *out = a->dst + (size_t)(y - a->y0) * a->dst_stride;
        if ((size_t)y * a->src_stride + reach > a->src_len) {
            xnor_resize_h_args one = *a;
            one.y0 = y;
            one.y1 = y + 1;
            one.dst = out;
            xnor_resize_h_u8__scalar(&one);
            continue;
        }
        const uint8_t *in = a->src + (size_t)y * a->src_stride;
        int32_t q = 0;
        for (; q + 4 <= full; q += 4) {  /* eight pixels, 24 bytes */
            const __m256i s0 = _mm256_srai_epi32(pair_sum(a, &rw, in, q, widen, half), XNOR_RESIZE_BITS);
            const __m256i s1 = _mm256_srai_epi32(pair_sum(a, &rw, in, q + 1, widen, half), XNOR_RESIZE_BITS);
            const __m256i s2 = _mm256_srai_epi32(pair_sum(a, &rw, in, q + 2, widen, half), XNOR_RESIZE_BITS);
            const __m256i s3 = _mm256_srai_epi32(pair_sum(a, &rw, in, q + 3, widen, half), XNOR_RESIZE_BITS);
            /* per 128-bit half: dwords pixels 0,2,4,6 (low half) and 1,3,5,7 (high half) */
            const __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(s0, s1), _mm256_packs_epi32(s2, s3));
            const __m256i c = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(b, order), compact);
            uint8_t *o = out + (size_t)q * 6;
            const __m128i lo = _mm256_castsi256_si128(c), hi = _mm256_extracti128_si256(c, 1);
            _mm_storel_epi64((__m128i *)o, lo);
            const uint32_t l8 = (uint32_t)_mm_extract_epi32(lo, 2), h8 = (uint32_t)_mm_extract_epi32(hi, 2);
            memcpy(o + 8, &l8, 4);
            _mm_storel_epi64((__m128i *)(o + 12), hi);
            memcpy(o + 20, &h8, 4);
        }
        for (; q < rw.pairs; q++) {
            const uint64_t b = (uint64_t)_mm_cvtsi128_si64(narrow8(pair_sum(a, &rw, in, q, widen, half)));
            uint8_t *o = out + (size_t)q * 6;
            o[r0] = (uint8_t)b;
            o[1] = (uint8_t)(b >> 8);
            o[r2] = (uint8_t)(b >> 16);
            if (2 * q + 1 < a->out_w) {
                o[3 + r0] = (uint8_t)(b >> 32);
                o[4] = (uint8_t)(b >> 40);
                o[3 + r2] = (uint8_t)(b >> 48);
            }
        }
    }
    free(rw.w);
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
