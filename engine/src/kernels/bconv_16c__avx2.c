/* bconv_16c__avx2.c -- binary convolution with AVX2.
 *
 * AVX2 has no vector popcount. Each XOR result is counted with the nibble table (vpshufb
 * looks up the bit count of the low and the high nibble of every byte), and most of those
 * counts are avoided with a Harley-Seal carry-save adder over the reduction: per 8-channel
 * lane group, `ones` and `twos` hold the low two bits of the running count of every bit
 * position; four XOR words go in through three CSAs (5 bitwise ops each) and only the
 * carry out of `twos`, of weight 4, is counted. That is ~6.5 ALU ops per word instead of
 * 8 with the nibble count alone. At the end
 *   count = popcount(ones) + 2 popcount(twos) + 4 (sum of the weight-4 counts)
 *           + (the words that did not fill a group of four, counted directly).
 * Byte counts are summed in byte accumulators (<= 8 per byte per step) and widened into
 * the 32-bit lane sums (vpmaddubsw, then vpmaddwd with 1s: the four bytes of a u32 lane
 * stay in that lane) before 31 steps could overflow a byte.
 *
 * Output channels are in lanes, 8 per ymm: a tile is one pixel x one 16-channel block (two
 * ymm of weight words per input word, a memory operand of the XOR; the input word is
 * broadcast once for both). For a fixed ky, the kw taps x cw words are contiguous in input
 * and weights (T words); a border pixel walks the sub-run of its taps inside the input. */
#include <immintrin.h>

#include "kernels.h"

#define FLUSH 31 /* byte-accumulator steps of <= 8 before widening: 31 * 8 = 248 */

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

/* The byte counts of acc8, summed per 32-bit lane. */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 __m256i
widen(__m256i acc8)
{
    const __m256i w16 = _mm256_maddubs_epi16(acc8, _mm256_set1_epi8(1));
    return _mm256_madd_epi16(w16, _mm256_set1_epi16(1));
}

/* Carry-save adder: a + b + c = sum + 2 carry, bitwise. */
#define CSA(carry, sum, a, b, c)                        \
    do {                                                \
        const __m256i u_ = _mm256_xor_si256((a), (b));  \
        (carry) = _mm256_or_si256(_mm256_and_si256((a), (b)), _mm256_and_si256(u_, (c))); \
        (sum) = _mm256_xor_si256(u_, (c));              \
    } while (0)

static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 __m256i
xw(const uint32_t *ip, const uint32_t *wp)
{
    return _mm256_xor_si256(_mm256_set1_epi32((int)*ip), _mm256_loadu_si256((const __m256i *)wp));
}

/* Pixel q, block ob; the two halves of the block share each broadcast input word. Per
 * kernel row, groups of four words go through the adders and the last (words % 4) are
 * counted directly into a1. */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
tile(const ctx_t *c, int64_t q, int32_t ob)
{
    const xnor_bconv_args *a = c->a;
    const int32_t y = (int32_t)(q / a->ow), x = (int32_t)(q % a->ow);
    const uint32_t *ip = a->in + ((int64_t)y * a->sh * a->Wp + (int64_t)x * a->sw) * a->cw;
    const uint32_t *wb = a->w + (int64_t)ob * c->blk_words;
    const int32_t T = c->T;
    /* the taps inside the unpadded input (kernels.h): words [tb, te) of rows [ky0, ky1) */
    const int32_t ky0 = a->row_k ? a->row_k[2 * y] : 0, ky1 = a->row_k ? a->row_k[2 * y + 1] : a->kh;
    const int32_t tb = a->col_k ? a->col_k[2 * x] * a->cw : 0;
    int32_t te = a->col_k ? a->col_k[2 * x + 1] * a->cw : T;
    te = te > tb ? te : tb;
    const int32_t t4 = tb + ((te - tb) & ~3);
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i m0f = _mm256_set1_epi8(0x0f);

    /* [h]: output channels ob*16 + 8h + [0, 8) */
    __m256i ones[2], twos[2], a4[2], a1[2], acc[2];
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) ones[h] = twos[h] = a4[h] = a1[h] = acc[h] = _mm256_setzero_si256();
    int n4 = 0, n1 = 0; /* steps in a4, a1 since they were widened */

    for (int32_t ky = ky0; ky < ky1; ky++) {
        const uint32_t *wk = wb + (int64_t)ky * T * XNOR_LANES;
        const uint32_t *ik = ip + ky * c->row_words;
        for (int32_t t = tb; t < t4; t += 4) {
            const uint32_t *w = wk + (int64_t)t * XNOR_LANES;
            __m256i xv[4];
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) xv[k] = _mm256_set1_epi32((int)ik[t + k]);
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m256i v[4], ta, tb, f;
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++)
                    v[k] = _mm256_xor_si256(xv[k], _mm256_loadu_si256((const __m256i *)(w + k * XNOR_LANES + 8 * h)));
                CSA(ta, ones[h], ones[h], v[0], v[1]);
                CSA(tb, ones[h], ones[h], v[2], v[3]);
                CSA(f, twos[h], twos[h], ta, tb);
                a4[h] = _mm256_add_epi8(a4[h], popcnt_bytes(f, lut, m0f));
            }
            if (++n4 == FLUSH) {
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    acc[h] = _mm256_add_epi32(acc[h], _mm256_slli_epi32(widen(a4[h]), 2));
                    a4[h] = _mm256_setzero_si256();
                }
                n4 = 0;
            }
        }
        if (t4 < te) {
            if (n1 + (te - t4) > FLUSH) {
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    acc[h] = _mm256_add_epi32(acc[h], widen(a1[h]));
                    a1[h] = _mm256_setzero_si256();
                }
                n1 = 0;
            }
            n1 += te - t4;
            for (int32_t t = t4; t < te; t++) {
                const __m256i xv = _mm256_set1_epi32((int)ik[t]);
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    const __m256i wv = _mm256_loadu_si256((const __m256i *)(wk + (int64_t)t * XNOR_LANES + 8 * h));
                    a1[h] = _mm256_add_epi8(a1[h], popcnt_bytes(_mm256_xor_si256(xv, wv), lut, m0f));
                }
            }
        }
    }
    int32_t *o = a->out + q * a->out_stride + (int64_t)ob * XNOR_LANES;
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        /* ones + 2 twos <= 24 per byte; a1 <= 248 is widened on its own */
        __m256i b = popcnt_bytes(twos[h], lut, m0f);
        b = _mm256_add_epi8(_mm256_add_epi8(b, b), popcnt_bytes(ones[h], lut, m0f));
        __m256i s = _mm256_add_epi32(acc[h], _mm256_slli_epi32(widen(a4[h]), 2));
        s = _mm256_add_epi32(s, widen(a1[h]));
        s = _mm256_add_epi32(s, widen(b));
        _mm256_storeu_si256((__m256i *)(o + 8 * h), s);
    }
}

XNOR_TARGET_AVX2 void xnor_bconv_16c__avx2(const xnor_bconv_args *a)
{
    const int64_t q_begin = (int64_t)a->y0 * a->ow, q_end = (int64_t)a->y1 * a->ow;
    if (q_end <= q_begin || a->b1 <= a->b0)
        return;
    /* kh, kw or cw of 0: the loops below run no reduction and store zeros. */
    ctx_t c = {a, (int64_t)a->Wp * a->cw, (int64_t)a->kh * a->kw * a->cw * XNOR_LANES,
               a->kw * a->cw};
    for (int32_t ob = a->b0; ob < a->b1; ob++)
        for (int64_t q = q_begin; q < q_end; q++)
            tile(&c, q, ob);
}
