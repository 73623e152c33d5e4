/* bconv_16c__avx512vpopcnt.c -- binary convolution with AVX-512 VPOPCNTDQ.
 *
 * One zmm holds the weight words of a 16-channel block for one (tap, word); the input
 * word of a pixel is broadcast to all lanes, so each (pixel, block, word) step is
 * xor + vpopcntd + add: 3 uops per 512 binary MACs, which is the port-bound ceiling.
 *
 * The register tile is P output pixels x B blocks of accumulators (P*B <= 24). Each weight
 * zmm is reused by the P pixels and each broadcast by the B blocks, so loads stay well
 * under the two/three per cycle the load ports give. Output pixels are numbered
 * row-major over [y0, y1) x [0, ow) and tiled across row ends, which keeps the tile full
 * for small maps (13x13 -> 169 pixels). The last pixel tile is shifted back to overlap
 * the one before it instead of needing a narrower variant: it recomputes a few pixels and
 * writes the same values again, which is harmless.
 *
 * For a fixed ky the kw taps x cw words of a pixel are contiguous in the input (the
 * taps of a row are neighbouring pixels) and in the weights, so the inner loop walks one
 * flat run of words per kernel row, whatever kw, cw and the strides are: all T = kw*cw of
 * them, or the sub-run of the taps inside the input (kernels.h row_k / col_k). */
#include <immintrin.h>

#include "tile16__avx512.h"

#define PMAX 8 /* largest pixel tile instantiated */
#define BMAX 4 /* largest block tile instantiated */

typedef struct {
    const xnor_bconv_args *a;
    int64_t row_words;   /* Wp * cw: input step per kernel row */
    int64_t blk_words;   /* kh * kw * cw * 16: weight step per block */
    int32_t T;           /* kw * cw: contiguous words per kernel row */
    int32_t ry0, rx0, rw; /* pixel q of a tile is (ry0 + q / rw, rx0 + q % rw) */
    int32_t ky0, ky1, tb, te; /* the taps summed: kernel rows [ky0, ky1), words [tb, te) of each */
} ctx_t;

static inline __attribute__((always_inline)) XNOR_TARGET_AVX512 void
tile(const ctx_t *c, int64_t q0, int32_t bs, const int P, const int B)
{
    const xnor_bconv_args *a = c->a;
    const uint32_t *ip[PMAX];
    int32_t *op[PMAX];
    #pragma GCC unroll 16
    for (int p = 0; p < P; p++) {
        const int64_t q = q0 + p;
        const int32_t y = c->ry0 + (int32_t)(q / c->rw), x = c->rx0 + (int32_t)(q % c->rw);
        ip[p] = a->in + ((int64_t)y * a->sh * a->Wp + (int64_t)x * a->sw) * a->cw;
        op[p] = a->out + ((int64_t)y * a->ow + x) * a->out_stride + (int64_t)bs * XNOR_LANES;
    }
    const uint32_t *wb = a->w + (int64_t)bs * c->blk_words;
    const int32_t T = c->T;

    __m512i acc[PMAX][BMAX];
    #pragma GCC unroll 16
    for (int p = 0; p < P; p++)
        #pragma GCC unroll 16
        for (int b = 0; b < B; b++)
            acc[p][b] = _mm512_setzero_si512();

    for (int32_t ky = c->ky0; ky < c->ky1; ky++) {
        const uint32_t *wk = wb + (int64_t)ky * T * XNOR_LANES;
        const uint32_t *ik[PMAX];
        #pragma GCC unroll 16
        for (int p = 0; p < P; p++)
            ik[p] = ip[p] + ky * c->row_words;
        for (int32_t t = c->tb; t < c->te; t++) {
            __m512i w[BMAX];
            #pragma GCC unroll 16
            for (int b = 0; b < B; b++)
                w[b] = _mm512_loadu_si512(wk + b * c->blk_words + (int64_t)t * XNOR_LANES);
            #pragma GCC unroll 16
            for (int p = 0; p < P; p++) {
                const __m512i x = _mm512_set1_epi32((int)ik[p][t]);
                #pragma GCC unroll 16
                for (int b = 0; b < B; b++)
                    acc[p][b] = _mm512_add_epi32(
                        acc[p][b], _mm512_popcnt_epi32(_mm512_xor_si512(x, w[b])));
            }
        }
    }
    #pragma GCC unroll 16
    for (int p = 0; p < P; p++)
        #pragma GCC unroll 16
        for (int b = 0; b < B; b++)
            _mm512_storeu_si512(op[p] + b * XNOR_LANES, acc[p][b]);
}

TILE16_DEF_P(1) TILE16_DEF_P(2) TILE16_DEF_P(3) TILE16_DEF_P(4)
TILE16_DEF_P(6) TILE16_DEF(8, 1) TILE16_DEF(8, 2) TILE16_DEF(8, 3)

/* [P][B-1]; NULL where P*B would overflow the 32 zmm registers. */
static const tile16_table k_tiles = {{
    [1] = {tile_1_1, tile_1_2, tile_1_3, tile_1_4},
    [2] = {tile_2_1, tile_2_2, tile_2_3, tile_2_4},
    [3] = {tile_3_1, tile_3_2, tile_3_3, tile_3_4},
    [4] = {tile_4_1, tile_4_2, tile_4_3, tile_4_4},
    [6] = {tile_6_1, tile_6_2, tile_6_3, tile_6_4},
    [8] = {tile_8_1, tile_8_2, tile_8_3, NULL},
}};

/* With tap ranges (kernels.h row_k / col_k) the output splits into rectangles of equal
 * taps: runs of rows with one row range times runs of columns with one column range (the
 * whole-window interior, the border strips, the corners). Each is swept in pixel tiles
 * over its own taps only. */
XNOR_TARGET_AVX512 void xnor_bconv_16c__avx512vpopcnt(const xnor_bconv_args *a)
{
    const int64_t q_begin = (int64_t)a->y0 * a->ow, q_end = (int64_t)a->y1 * a->ow;
    const int32_t nb = a->b1 - a->b0;
    if (q_end <= q_begin || nb <= 0 || a->kh <= 0 || a->kw <= 0 || a->cw <= 0)
        goto degenerate;
    ctx_t c = {a, (int64_t)a->Wp * a->cw, (int64_t)a->kh * a->kw * a->cw * XNOR_LANES,
               a->kw * a->cw, 0, 0, a->ow, 0, a->kh, 0, a->kw * a->cw};
    if (!a->row_k) {
        tile16_sweep(&k_tiles, &c, q_begin, q_end, a->b0, nb, BMAX);
        return;
    }
    const int32_t *rk = a->row_k, *ck = a->col_k;
    for (int32_t ya = a->y0, yb; ya < a->y1; ya = yb) {
        for (yb = ya + 1; yb < a->y1 && rk[2 * yb] == rk[2 * ya] && rk[2 * yb + 1] == rk[2 * ya + 1];) yb++;
        for (int32_t xa = 0, xb; xa < a->ow; xa = xb) {
            for (xb = xa + 1; xb < a->ow && ck[2 * xb] == ck[2 * xa] && ck[2 * xb + 1] == ck[2 * xa + 1];) xb++;
            ctx_t r = c;
            r.ry0 = ya, r.rx0 = xa, r.rw = xb - xa;
            r.ky0 = rk[2 * ya], r.ky1 = rk[2 * ya + 1];
            r.tb = ck[2 * xa] * a->cw, r.te = ck[2 * xa + 1] * a->cw;
            tile16_sweep(&k_tiles, &r, 0, (int64_t)(yb - ya) * r.rw, a->b0, nb, BMAX);
        }
    }
    return;

degenerate:
    /* An empty reduction (kh, kw or cw of 0) still defines the outputs: all zero. */
    for (int64_t q = q_begin; q < q_end; q++)
        for (int32_t ob = a->b0; ob < a->b1; ob++)
            for (int l = 0; l < XNOR_LANES; l++)
                a->out[q * a->out_stride + ob * XNOR_LANES + l] = 0;
}
