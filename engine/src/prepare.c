/* prepare.c -- repack validated weights into the kernels' layouts (kernels/kernels.h).
 *
 * Runs once at load; the model is immutable afterwards. Layouts:
 *   XNOR binary:  wbits[ob][ky][kx][cw][16] uint32, bit c%32 of word c/32, +1 -> 1;
 *                 lanes past O and bits past C are 0 (so they never count in XOR
 *                 popcounts against zero-padded activations).
 *   float:        wf[ob][ky][kx][c][16] float; lanes past O are 0.0f.
 *   BWN:          wm[ob][ky][kx][c] uint16, bit lane set when the weight of output
 *                 channel ob*16 + lane is +1: 1 bit per weight in memory, as in the file
 *                 (lanes past O are 0). The bwnconv kernels add +-x from these masks.
 *   popp:         2-D prefix sums of per-tap weight popcounts, used to remove the
 *                 contribution of halo taps from XOR popcounts in O(1) per output.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static inline int get_bit(const uint8_t *row, uint64_t i) { return (row[i >> 3] >> (i & 7)) & 1; }

static float *alloc_f(xnor_model_t *m, size_t n, int zero) {
    float *p = zero ? xnor_calloc_aligned(n * sizeof(float)) : xnor_alloc_aligned(n * sizeof(float));
    if (p) m->memory_bytes += ((n * sizeof(float)) + 63) & ~(size_t)63;
    return p;
}

/* Copy a float [O] tensor into a zero-padded [16 nb] array. */
static float *pad_vec(xnor_model_t *m, const xtensor_desc *t, const uint8_t *data, int32_t O, int32_t nb) {
    float *v = alloc_f(m, (size_t)nb * 16, 1);
    if (v) memcpy(v, data + t->offset, (size_t)O * sizeof(float));
    return v;
}

xnor_status xnor_prepare_node(xnor_model_t *m, xnode *nd, const xtensor_desc *tens, const uint8_t *data) {
    switch (nd->op) {
    case XNOR_OP_CONV2D:
    case XNOR_OP_LINEAR:
    case XNOR_OP_BCONV2D:
    case XNOR_OP_BLINEAR: {
        const int32_t O = nd->O, C = nd->C, kh = nd->kh, kw = nd->kw, nb = nd->nb, cw = nd->cw;
        const int32_t taps = kh * kw;
        const xtensor_desc *tw = &tens[nd->t[0]];
        const uint8_t *wsrc = data + tw->offset;
        int binary = nd->op == XNOR_OP_BCONV2D || nd->op == XNOR_OP_BLINEAR;
        if (nd->has_bias && !(nd->bias = pad_vec(m, &tens[nd->t[1]], data, O, nb))) return XNOR_ERR_OUT_OF_MEMORY;
        if (binary && !(nd->alpha = pad_vec(m, &tens[nd->t[2]], data, O, nb))) return XNOR_ERR_OUT_OF_MEMORY;
        if (binary && nd->mode == XNOR_MODE_BWN) {
            size_t nw = (size_t)nb * taps * C;
            nd->wm = xnor_calloc_aligned(nw * sizeof(uint16_t));
            if (!nd->wm) return XNOR_ERR_OUT_OF_MEMORY;
            m->memory_bytes += (nw * sizeof(uint16_t) + 63) & ~(size_t)63;
            const uint64_t rowbits = (uint64_t)C * taps, rowbytes = (rowbits + 7) / 8;
            if (taps == 1) {
                /* Fully connected / 1x1 (the largest layers): bit c of row o is channel c.
                 * Per block, transpose 16 rows x 8 bits one byte column at a time, writing
                 * the destination sequentially. */
                for (int32_t ob = 0; ob < nb; ob++) {
                    const int32_t lanes = O - ob * 16 < 16 ? O - ob * 16 : 16;
                    uint16_t *dst = nd->wm + (size_t)ob * C;
                    const uint8_t *rows = wsrc + (uint64_t)ob * 16 * rowbytes;
                    for (uint64_t j = 0; j < rowbytes; j++) {
                        uint16_t mk[8] = {0};
                        for (int32_t l = 0; l < lanes; l++) {
                            const unsigned byte = rows[(uint64_t)l * rowbytes + j];
                            for (int b = 0; b < 8; b++) mk[b] |= (uint16_t)(((byte >> b) & 1u) << l);
                        }
                        const uint64_t c0 = j * 8;
                        for (int b = 0; b < 8 && c0 + (uint64_t)b < (uint64_t)C; b++) dst[c0 + (uint64_t)b] = mk[b];
                    }
                }
            } else {
                for (int32_t o = 0; o < O; o++) {
                    const uint8_t *row = wsrc + (uint64_t)o * rowbytes;
                    uint16_t *blk = nd->wm + (size_t)(o / 16) * taps * C;
                    const uint16_t bit = (uint16_t)(1u << (o % 16));
                    uint64_t bi = 0; /* bit index (c, ky, kx) in PyTorch order */
                    for (int32_t c = 0; c < C; c++)
                        for (int32_t t = 0; t < taps; t++, bi++)
                            if (get_bit(row, bi)) blk[(size_t)t * C + c] |= bit;
                }
            }
        } else if (binary && nd->mode == XNOR_MODE_XNOR) {
            size_t nw = (size_t)nb * taps * cw * 16;
            nd->wbits = xnor_calloc_aligned(nw * sizeof(uint32_t));
            size_t npp = (size_t)(kh + 1) * (kw + 1) * nb * 16;
            nd->popp = xnor_calloc_aligned(npp * sizeof(int32_t));
            int32_t *pc = calloc((size_t)taps, sizeof(int32_t));
            if (!nd->wbits || !nd->popp || !pc) {
                free(pc);
                return XNOR_ERR_OUT_OF_MEMORY;
            }
            m->memory_bytes += nw * 4 + npp * 4;
            const uint64_t rowbits = (uint64_t)C * taps, rowbytes = (rowbits + 7) / 8;
            const int32_t ldo = nb * 16;
            for (int32_t o = 0; o < O; o++) {
                const uint8_t *row = wsrc + (uint64_t)o * rowbytes;
                const int32_t ob = o / 16, lane = o % 16;
                memset(pc, 0, (size_t)taps * sizeof(int32_t));
                if (taps == 1) {
                    /* Fully connected / 1x1: channel c is bit c of the row, so each word is
                     * four row bytes (the row's padding bits are validated zero). These are
                     * the largest layers; bit-by-bit repacking dominated load time. */
                    for (int32_t j = 0; j < cw; j++) {
                        uint32_t wv = 0;
                        uint64_t b0 = (uint64_t)j * 4;
                        for (uint64_t b = 0; b < 4 && b0 + b < rowbytes; b++) wv |= (uint32_t)row[b0 + b] << (8 * b);
                        nd->wbits[((size_t)ob * cw + j) * 16 + lane] = wv;
                        pc[0] += __builtin_popcount(wv);
                    }
                } else {
                    uint64_t bi = 0; /* bit index (c, ky, kx) in PyTorch order */
                    for (int32_t c = 0; c < C; c++)
                        for (int32_t t = 0; t < taps; t++, bi++)
                            if (get_bit(row, bi)) {
                                nd->wbits[(((size_t)ob * taps + t) * cw + c / 32) * 16 + lane] |= 1u << (c % 32);
                                pc[t]++;
                            }
                }
                /* popp[a][b] = sum_{ky<a, kx<b} pc */
                for (int32_t a = 1; a <= kh; a++)
                    for (int32_t b = 1; b <= kw; b++) {
                        int32_t v = pc[(a - 1) * kw + (b - 1)] + nd->popp[((size_t)(a - 1) * (kw + 1) + b) * ldo + o] +
                                    nd->popp[((size_t)a * (kw + 1) + b - 1) * ldo + o] -
                                    nd->popp[((size_t)(a - 1) * (kw + 1) + b - 1) * ldo + o];
                        nd->popp[((size_t)a * (kw + 1) + b) * ldo + o] = v;
                    }
            }
            free(pc);
        } else {
            size_t nw = (size_t)nb * taps * C * 16;
            nd->wf = alloc_f(m, nw, 0); /* every element is written below */
            if (!nd->wf) return XNOR_ERR_OUT_OF_MEMORY;
            /* Loops run in destination order so the (possibly 10+ MB, for fully
             * connected layers) array is written sequentially. */
            const uint64_t rowbits = (uint64_t)C * taps;
            float *dst = nd->wf;
            for (int32_t ob = 0; ob < nb; ob++) {
                const int32_t lanes = O - ob * 16 < 16 ? O - ob * 16 : 16;
                for (int32_t t = 0; t < taps; t++)
                    for (int32_t c = 0; c < C; c++, dst += 16) {
                        const uint64_t bi = (uint64_t)c * taps + t; /* PyTorch order (c, ky, kx) */
                        for (int32_t l = 0; l < lanes; l++) {
                            const uint64_t o = (uint64_t)ob * 16 + l;
                            float v;
                            memcpy(&v, wsrc + (o * rowbits + bi) * sizeof(float), sizeof v);
                            dst[l] = v;
                        }
                        for (int32_t l = lanes; l < 16; l++) dst[l] = 0.0f; /* channels past O */
                    }
            }
        }
        if (nd->op == XNOR_OP_BCONV2D && nd->mode == XNOR_MODE_XNOR) {
            /* In-bounds tap ranges per output row/column, for the halo correction. */
            const int32_t oh = (int32_t)nd->out_shape.h, ow = (int32_t)nd->out_shape.w;
            const int32_t H = (int32_t)nd->in_shape.h, W = (int32_t)nd->in_shape.w;
            nd->row_k = malloc(sizeof(int32_t) * 2 * (size_t)oh);
            nd->col_k = malloc(sizeof(int32_t) * 2 * (size_t)ow);
            if (!nd->row_k || !nd->col_k) return XNOR_ERR_OUT_OF_MEMORY;
            m->memory_bytes += sizeof(int32_t) * 2 * ((uint64_t)oh + ow);
            for (int32_t y = 0; y < oh; y++) {
                int32_t s = y * nd->sh - nd->pt;
                int32_t k0 = s < 0 ? -s : 0, k1 = H - s < kh ? H - s : kh;
                nd->row_k[2 * y] = k0;
                nd->row_k[2 * y + 1] = k1;
            }
            for (int32_t x = 0; x < ow; x++) {
                int32_t s = x * nd->sw - nd->pl;
                int32_t k0 = s < 0 ? -s : 0, k1 = W - s < kw ? W - s : kw;
                nd->col_k[2 * x] = k0;
                nd->col_k[2 * x + 1] = k1;
            }
        }
        return XNOR_OK;
    }
    case XNOR_OP_BATCHNORM: {
        const int32_t C = (int32_t)nd->in_shape.c;
        /* Zero-padded to whole 16-channel blocks for the fconv epilogue (kernels.h). */
        const size_t Cp = ((size_t)C + 15) & ~(size_t)15;
        nd->bn_scale = alloc_f(m, Cp, 1);
        nd->bn_shift = alloc_f(m, Cp, 1);
        if (!nd->bn_scale || !nd->bn_shift) return XNOR_ERR_OUT_OF_MEMORY;
        const uint8_t *pg = data + tens[nd->t[0]].offset, *pb = data + tens[nd->t[1]].offset;
        const uint8_t *pm = data + tens[nd->t[2]].offset, *pv = data + tens[nd->t[3]].offset;
        const float eps = nd->f[0];
        for (int32_t c = 0; c < C; c++) {
            float gamma, beta, mean, var;
            memcpy(&gamma, pg + 4 * (size_t)c, 4);
            memcpy(&beta, pb + 4 * (size_t)c, 4);
            memcpy(&mean, pm + 4 * (size_t)c, 4);
            memcpy(&var, pv + 4 * (size_t)c, 4);
            /* float32 throughout, one rounding per operation (FORMAT.md): the build uses
             * -ffp-contract=off, and each step is its own statement. */
            float denom = sqrtf(var + eps);
            float scale = gamma / denom;
            float ms = mean * scale;
            nd->bn_scale[c] = scale;
            nd->bn_shift[c] = beta - ms;
        }
        return XNOR_OK;
    }
    default:
        return XNOR_OK;
    }
}

void xnor_free_node(xnode *nd) {
    xnor_free_aligned(nd->wbits);
    xnor_free_aligned(nd->wf);
    xnor_free_aligned(nd->wm);
    xnor_free_aligned(nd->bias);
    xnor_free_aligned(nd->alpha);
    xnor_free_aligned(nd->popp);
    xnor_free_aligned(nd->bn_scale);
    xnor_free_aligned(nd->bn_shift);
    free(nd->row_k);
    free(nd->col_k);
    nd->wbits = NULL;
    nd->wf = NULL;
    nd->wm = NULL;
    nd->bias = nd->alpha = nd->bn_scale = nd->bn_shift = NULL;
    nd->popp = nd->row_k = nd->col_k = NULL;
}
