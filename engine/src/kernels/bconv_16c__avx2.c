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
 * and weights (T words); a border pixel walks the sub-run of its taps inside the input.
 *
 * Calls with many pixels and short reductions (the conv layers) take a nibble-table path
 * instead, which needs no carry-save adders: popcount(x ^ w) is the sum over the 8
 * nibbles of popcount(x_nibble ^ w_nibble). For each byte b of the broadcast input word,
 * k_nib[b] holds the 16 counts popcount(lo(b) ^ n) in its low half and popcount(hi(b) ^ n)
 * in its high half; the block's weights are rearranged once per call (nib_ctrl) into, per
 * word and byte position k, the low nibbles of byte k of the 16 lanes (low half) and
 * their high nibbles (high half). One vpshufb of the table by that control then counts 32
 * nibble pairs, so a word costs 4 vpshufb and 4 byte adds per 16 output channels (the
 * carry-save path: about 13 vector instructions), and the table loads and their byte
 * offsets run on the load and integer units. */
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

/* ------------------------------------------------------------------ nibble-table path */

#define NT_WORDS 128    /* kh*kw*cw of a block the path keeps rearranged on the stack */
#define NT_BLOCKS 4     /* blocks per pass: each table load feeds all of them */
#define NT_MIN_PIXELS 8 /* fewer pixels than this do not repay the rearrangement */
#define NT_FLUSH 15     /* words of <= 16 per byte before the byte sums are widened: 240 */

#define PC4(v) (((v) & 1) + (((v) >> 1) & 1) + (((v) >> 2) & 1) + (((v) >> 3) & 1))
#define NT_LO(b, n) PC4(((b) & 15) ^ (n))
#define NT_HI(b, n) PC4(((b) >> 4) ^ (n))
#define NT_ROW(b)                                                                                      \
    {NT_LO(b, 0),  NT_LO(b, 1),  NT_LO(b, 2),  NT_LO(b, 3),  NT_LO(b, 4),  NT_LO(b, 5),  NT_LO(b, 6),  \
     NT_LO(b, 7),  NT_LO(b, 8),  NT_LO(b, 9),  NT_LO(b, 10), NT_LO(b, 11), NT_LO(b, 12), NT_LO(b, 13), \
     NT_LO(b, 14), NT_LO(b, 15), NT_HI(b, 0),  NT_HI(b, 1),  NT_HI(b, 2),  NT_HI(b, 3),  NT_HI(b, 4),  \
     NT_HI(b, 5),  NT_HI(b, 6),  NT_HI(b, 7),  NT_HI(b, 8),  NT_HI(b, 9),  NT_HI(b, 10), NT_HI(b, 11), \
     NT_HI(b, 12), NT_HI(b, 13), NT_HI(b, 14), NT_HI(b, 15)}
#define NT_ROW4(b) NT_ROW(b), NT_ROW((b) + 1), NT_ROW((b) + 2), NT_ROW((b) + 3)
#define NT_ROW16(b) NT_ROW4(b), NT_ROW4((b) + 4), NT_ROW4((b) + 8), NT_ROW4((b) + 12)

/* k_nib[b][n] = popcount((b & 15) ^ n), k_nib[b][16 + n] = popcount((b >> 4) ^ n). */
static const uint8_t k_nib[256][32] __attribute__((aligned(32))) = {
    NT_ROW16(0),   NT_ROW16(16),  NT_ROW16(32),  NT_ROW16(48),  NT_ROW16(64),  NT_ROW16(80),
    NT_ROW16(96),  NT_ROW16(112), NT_ROW16(128), NT_ROW16(144), NT_ROW16(160), NT_ROW16(176),
    NT_ROW16(192), NT_ROW16(208), NT_ROW16(224), NT_ROW16(240),
};

/* The n words of one block's weights (16 lanes each) as table controls: ctrl[4i + k] =
 * the low nibbles of byte k of word i's lanes 0..15, then their high nibbles. */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
nib_ctrl(const uint32_t *w, int32_t n, __m256i *ctrl)
{
    /* within each 128-bit half (4 lanes), dword k := byte k of the 4 lanes */
    const __m256i by_byte = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
                                             0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m256i m0f = _mm256_set1_epi8(0x0f);
    for (int32_t i = 0; i < n; i++) {
        const __m256i a = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(w + (int64_t)i * XNOR_LANES)), by_byte);
        const __m256i b = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(w + (int64_t)i * XNOR_LANES + 8)), by_byte);
        /* lanes 0-3 | 8-11 and lanes 4-7 | 12-15, dword k = byte k */
        const __m256i lo = _mm256_permute2x128_si256(a, b, 0x20), hi = _mm256_permute2x128_si256(a, b, 0x31);
        /* [byte 0 of lanes 0..15 | byte 1 of lanes 0..15], [byte 2 | byte 3] */
        const __m256i v[2] = {_mm256_permute4x64_epi64(_mm256_unpacklo_epi32(lo, hi), 0xD8),
                              _mm256_permute4x64_epi64(_mm256_unpackhi_epi32(lo, hi), 0xD8)};
#pragma GCC unroll 2
        for (int j = 0; j < 2; j++) {
            const __m256i l = _mm256_and_si256(v[j], m0f);
            const __m256i h = _mm256_and_si256(_mm256_srli_epi16(v[j], 4), m0f);
            ctrl[4 * i + 2 * j] = _mm256_permute2x128_si256(l, h, 0x20);
            ctrl[4 * i + 2 * j + 1] = _mm256_permute2x128_si256(l, h, 0x31);
        }
    }
}

/* The 16 lane counts of acc8 (bytes j and 16 + j: lane j) added into the 16-bit lane sums. */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 __m256i
nib_widen(__m256i acc16, __m256i acc8)
{
    acc16 = _mm256_add_epi16(acc16, _mm256_cvtepu8_epi16(_mm256_castsi256_si128(acc8)));
    return _mm256_add_epi16(acc16, _mm256_cvtepu8_epi16(_mm256_extracti128_si256(acc8, 1)));
}

/* Pixels [q_begin, q_end) x blocks [ob, ob + NB), the blocks' controls in ctrl[b]. Lane
 * sums stay below 2^16 (at most NT_WORDS * 32 = 4096). */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
nib_pixels(const ctx_t *c, int64_t q_begin, int64_t q_end, int32_t ob, const int NB,
           const __m256i (*ctrl)[NT_WORDS * 4])
{
    const xnor_bconv_args *a = c->a;
    const int32_t T = c->T;
    for (int64_t q = q_begin; q < q_end; q++) {
        const int32_t y = (int32_t)(q / a->ow), x = (int32_t)(q % a->ow);
        const uint32_t *ip = a->in + ((int64_t)y * a->sh * a->Wp + (int64_t)x * a->sw) * a->cw;
        const int32_t ky0 = a->row_k ? a->row_k[2 * y] : 0, ky1 = a->row_k ? a->row_k[2 * y + 1] : a->kh;
        const int32_t tb = a->col_k ? a->col_k[2 * x] * a->cw : 0;
        int32_t te = a->col_k ? a->col_k[2 * x + 1] * a->cw : T;
        te = te > tb ? te : tb;
        __m256i acc8[NT_BLOCKS], acc16[NT_BLOCKS];
#pragma GCC unroll 4
        for (int b = 0; b < NB; b++) acc8[b] = acc16[b] = _mm256_setzero_si256();
        for (int32_t ky = ky0; ky < ky1; ky++) {
            const uint32_t *ik = ip + ky * c->row_words;
            const __m256i *cr = ctrl[0] + 4 * (int64_t)ky * T;
            /* the row in near-equal runs of at most NT_FLUSH words, widened after each: the
             * same run lengths for every pixel with the same taps, so the loops predict */
            const int32_t runs = (te - tb + NT_FLUSH - 1) / NT_FLUSH;
            for (int32_t r = 0, t = tb, t1; r < runs; r++, t = t1) {
                t1 = tb + (int32_t)(((int64_t)(te - tb) * (r + 1)) / runs);
                for (int32_t u = t; u < t1; u++) {
                    const uint32_t xw = ik[u];
                    const __m256i t0 = _mm256_load_si256((const __m256i *)k_nib[xw & 0xff]);
                    const __m256i t1v = _mm256_load_si256((const __m256i *)k_nib[(xw >> 8) & 0xff]);
                    const __m256i t2 = _mm256_load_si256((const __m256i *)k_nib[(xw >> 16) & 0xff]);
                    const __m256i t3 = _mm256_load_si256((const __m256i *)k_nib[xw >> 24]);
                    const __m256i *cu = cr + 4 * (int64_t)u;
#pragma GCC unroll 4
                    for (int b = 0; b < NB; b++) {
                        const __m256i *cw = cu + (int64_t)b * NT_WORDS * 4;
                        const __m256i s01 = _mm256_add_epi8(_mm256_shuffle_epi8(t0, cw[0]), _mm256_shuffle_epi8(t1v, cw[1]));
                        const __m256i s23 = _mm256_add_epi8(_mm256_shuffle_epi8(t2, cw[2]), _mm256_shuffle_epi8(t3, cw[3]));
                        acc8[b] = _mm256_add_epi8(acc8[b], _mm256_add_epi8(s01, s23));
                    }
                }
#pragma GCC unroll 4
                for (int b = 0; b < NB; b++) {
                    acc16[b] = nib_widen(acc16[b], acc8[b]);
                    acc8[b] = _mm256_setzero_si256();
                }
            }
        }
#pragma GCC unroll 4
        for (int b = 0; b < NB; b++) {
            const __m256i s = acc16[b];
            int32_t *o = a->out + q * a->out_stride + (int64_t)(ob + b) * XNOR_LANES;
            _mm256_storeu_si256((__m256i *)o, _mm256_cvtepu16_epi32(_mm256_castsi256_si128(s)));
            _mm256_storeu_si256((__m256i *)(o + 8), _mm256_cvtepu16_epi32(_mm256_extracti128_si256(s, 1)));
        }
    }
}

/* Blocks [b0, b1) in passes of NT_BLOCKS: each pass rearranges its blocks' weights, then
 * runs every pixel. n = kh * kw * cw <= NT_WORDS. */
static XNOR_TARGET_AVX2 void nib_sweep(const ctx_t *c, int64_t q_begin, int64_t q_end, int32_t n)
{
    const xnor_bconv_args *a = c->a;
    /* 64 KiB of stack (NT_BLOCKS * NT_WORDS * 128 bytes); fewer blocks per pass, which
     * would fit L1 for conv4/conv5, measured slower: the table loads are then shared less */
    __m256i ctrl[NT_BLOCKS][NT_WORDS * 4];
    for (int32_t ob = a->b0; ob < a->b1; ob += NT_BLOCKS) {
        const int nb = a->b1 - ob < NT_BLOCKS ? a->b1 - ob : NT_BLOCKS;
        for (int b = 0; b < nb; b++) nib_ctrl(a->w + (int64_t)(ob + b) * c->blk_words, n, ctrl[b]);
        const __m256i(*cc)[NT_WORDS * 4] = (const __m256i(*)[NT_WORDS * 4])ctrl;
        switch (nb) {
        case 4: nib_pixels(c, q_begin, q_end, ob, 4, cc); break;
        case 3: nib_pixels(c, q_begin, q_end, ob, 3, cc); break;
        case 2: nib_pixels(c, q_begin, q_end, ob, 2, cc); break;
        default: nib_pixels(c, q_begin, q_end, ob, 1, cc); break;
        }
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
    const int64_t n = (int64_t)a->kh * a->kw * a->cw;
    if (n <= NT_WORDS && q_end - q_begin >= NT_MIN_PIXELS) {
        nib_sweep(&c, q_begin, q_end, (int32_t)n);
        return;
    }
    for (int32_t ob = a->b0; ob < a->b1; ob++)
        for (int64_t q = q_begin; q < q_end; q++)
            tile(&c, q, ob);
}
