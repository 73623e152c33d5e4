/* bconv_16c__avx2.c -- binary convolution with AVX2.
 *
 * AVX2 has no vector popcount, so each XOR result is counted with the nibble table:
 * vpshufb looks up the bit count of the low and the high nibble of every byte. The byte
 * counts are summed in byte accumulators, which hold at most 8 per word, so they are
 * widened into the 32-bit lane sums (vpmaddubsw with 1s, then vpmaddwd with 1s: the four
 * bytes of a u32 lane stay in that lane) every FLUSH <= 31 words, before 31 * 8 = 248
 * could overflow a byte.
 *
 * Output channels are in lanes: a 16-channel block is two ymm of weight words; the input
 * word of a pixel is broadcast. A tile is P pixels x 1 block: each weight pair is reused
 * by P pixels. The counting is ALU-bound (8 ops per ymm-word), so wider tiles would only
 * add register spills. Pixels are numbered row-major over [y0, y1) x [0, ow) and tiled
 * across row ends; the last tile is shifted back to overlap (same values rewritten).
 * For a fixed ky, the kw taps x cw words are contiguous in input and weights (T words). */
#include <immintrin.h>

#include "kernels.h"

#define PMAX 4
#define FLUSH 31

typedef struct {
    const xnor_bconv_args *a;
    int64_t row_words;  /* Wp * cw */
    int64_t blk_words;  /* kh * kw * cw * 16 */
    int32_t T;          /* kw * cw */
} ctx_t;

static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 __m256i
popcnt_bytes(__m256i x, __m256i lut, __m256i m0f)
{
    const __m256i lo = _mm256_and_si256(x, m0f);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), m0f);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 __m256i
widen(__m256i acc32, __m256i acc8)
{
    const __m256i w16 = _mm256_maddubs_epi16(acc8, _mm256_set1_epi8(1));
    return _mm256_add_epi32(acc32, _mm256_madd_epi16(w16, _mm256_set1_epi16(1)));
}

static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
tile(const ctx_t *c, int64_t q0, int32_t ob, const int P)
{
    const xnor_bconv_args *a = c->a;
    const uint32_t *ip[PMAX];
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
        const int64_t q = q0 + p;
        const int32_t y = (int32_t)(q / a->ow), x = (int32_t)(q % a->ow);
        ip[p] = a->in + ((int64_t)y * a->sh * a->Wp + (int64_t)x * a->sw) * a->cw;
    }
    const uint32_t *wb = a->w + (int64_t)ob * c->blk_words;
    const int32_t T = c->T;
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i m0f = _mm256_set1_epi8(0x0f);

    __m256i acc[PMAX][2];
#pragma GCC unroll 8
    for (int p = 0; p < P; p++)
        acc[p][0] = acc[p][1] = _mm256_setzero_si256();

    for (int32_t ky = 0; ky < a->kh; ky++) {
        const uint32_t *wk = wb + (int64_t)ky * T * XNOR_LANES;
        const uint32_t *ik[PMAX];
#pragma GCC unroll 8
        for (int p = 0; p < P; p++)
            ik[p] = ip[p] + ky * c->row_words;
        for (int32_t t0 = 0; t0 < T; t0 += FLUSH) {
            const int32_t t1 = T - t0 > FLUSH ? t0 + FLUSH : T;
            __m256i a8[PMAX][2];
#pragma GCC unroll 8
            for (int p = 0; p < P; p++)
                a8[p][0] = a8[p][1] = _mm256_setzero_si256();
            for (int32_t t = t0; t < t1; t++) {
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wk + t * XNOR_LANES));
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(wk + t * XNOR_LANES + 8));
#pragma GCC unroll 8
                for (int p = 0; p < P; p++) {
                    const __m256i x = _mm256_set1_epi32((int)ik[p][t]);
                    a8[p][0] = _mm256_add_epi8(a8[p][0], popcnt_bytes(_mm256_xor_si256(x, w0), lut, m0f));
                    a8[p][1] = _mm256_add_epi8(a8[p][1], popcnt_bytes(_mm256_xor_si256(x, w1), lut, m0f));
                }
            }
#pragma GCC unroll 8
            for (int p = 0; p < P; p++) {
                acc[p][0] = widen(acc[p][0], a8[p][0]);
                acc[p][1] = widen(acc[p][1], a8[p][1]);
            }
        }
    }
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
        int32_t *o = a->out + (q0 + p) * a->out_stride + (int64_t)ob * XNOR_LANES;
        _mm256_storeu_si256((__m256i *)o, acc[p][0]);
        _mm256_storeu_si256((__m256i *)(o + 8), acc[p][1]);
    }
}

typedef void (*tile_fn)(const ctx_t *, int64_t, int32_t);

#define DEF_TILE(P)                                                                    \
    static XNOR_TARGET_AVX2 void tile_##P(const ctx_t *c, int64_t q0, int32_t ob) \
    {                                                                                  \
        tile(c, q0, ob, P);                                                            \
    }
DEF_TILE(1) DEF_TILE(2) DEF_TILE(3) DEF_TILE(4)

static const tile_fn k_tiles[PMAX + 1] = {NULL, tile_1, tile_2, tile_3, tile_4};

XNOR_TARGET_AVX2 void xnor_bconv_16c__avx2(const xnor_bconv_args *a)
{
    const int64_t q_begin = (int64_t)a->y0 * a->ow, q_end = (int64_t)a->y1 * a->ow;
    if (q_end <= q_begin || a->b1 <= a->b0)
        return;
    /* kh, kw or cw of 0: the loops below run no reduction and store zeros. */
    ctx_t c = {a, (int64_t)a->Wp * a->cw, (int64_t)a->kh * a->kw * a->cw * XNOR_LANES,
               a->kw * a->cw};
    const int P = q_end - q_begin < PMAX ? (int)(q_end - q_begin) : PMAX;
    const tile_fn fn = k_tiles[P];
    for (int32_t ob = a->b0; ob < a->b1; ob++)
        for (int64_t q = q_begin; q < q_end; q += P)
            fn(&c, q + P <= q_end ? q : q_end - P, ob);
}
