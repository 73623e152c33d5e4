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
 *   row_k, col_k: the in-bounds taps of each output row and column; the XNOR kernels
 *                 sum only those (the zero halo's taps are skipped).
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

/* In-bounds tap ranges [k0, k1) per output row and column (the halo / border handling of
 * bconv2d XNOR and qconv2d). */
static xnor_status tap_ranges(xnor_model_t *m, xnode *nd) {
    const int32_t oh = (int32_t)nd->out_shape.h, ow = (int32_t)nd->out_shape.w;
    const int32_t H = (int32_t)nd->in_shape.h, W = (int32_t)nd->in_shape.w, kh = nd->kh, kw = nd->kw;
    nd->row_k = malloc(sizeof(int32_t) * 2 * (size_t)oh);
    nd->col_k = malloc(sizeof(int32_t) * 2 * (size_t)ow);
    if (!nd->row_k || !nd->col_k) return XNOR_ERR_OUT_OF_MEMORY;
    m->memory_bytes += sizeof(int32_t) * 2 * ((uint64_t)oh + ow);
    /* 0 <= k0 <= k1 <= k: a window wholly in the padding gets an empty range. */
    for (int32_t y = 0; y < oh; y++) {
        int32_t s = y * nd->sh - nd->pt;
        nd->row_k[2 * y] = s < 0 ? (-s < kh ? -s : kh) : 0;
        nd->row_k[2 * y + 1] = H - s < kh ? (H - s > nd->row_k[2 * y] ? H - s : nd->row_k[2 * y]) : kh;
    }
    for (int32_t x = 0; x < ow; x++) {
        int32_t s = x * nd->sw - nd->pl;
        nd->col_k[2 * x] = s < 0 ? (-s < kw ? -s : kw) : 0;
        nd->col_k[2 * x + 1] = W - s < kw ? (W - s > nd->col_k[2 * x] ? W - s : nd->col_k[2 * x]) : kw;
    }
    return XNOR_OK;
}

/* Classes of equal tap ranges (runs: the ranges change monotonically along an axis). */
static int32_t range_classes(const int32_t *k, int32_t n, int32_t *cls) {
    int32_t count = 0;
    for (int32_t i = 0; i < n; i++) {
        if (i == 0 || k[2 * i] != k[2 * i - 2] || k[2 * i + 1] != k[2 * i - 1]) count++;
        cls[i] = count - 1;
    }
    return count;
}

/* int8 layers (qconv2d, qlinear): regroup the [O][C][kh][kw] int8 weights into
 * [nb][kh][qg][16][4] (byte j = kx * C + c of a window row), per-output scales, and
 * qconv2d's bias + tap-offset table per pair of row / column tap-range classes, each entry
 * summed in float32 in FORMAT.md's order: bias, then the in-bounds taps row by row. */
/* qlinear: weights block-major [nb][qng][XQ_GROUP / 4][16][4] (the fused kernel streams
 * one block's groups in order), the file's scales [O][qng] as [nb][qng][16], and each
 * group's weight sum likewise. */
static xnor_status prepare_ql(xnor_model_t *m, xnode *nd, const xtensor_desc *tens, const uint8_t *data) {
    const int32_t O = nd->O, F = nd->C, nb = nd->nb, ldo = nb * 16;
    const int32_t ng = (F + XQ_GROUP - 1) / XQ_GROUP, gq = XQ_GROUP / 4;
    const int8_t *src = (const int8_t *)(data + tens[nd->t[0]].offset);
    const uint8_t *sc = data + tens[nd->t[2]].offset;
    nd->qng = ng;
    nd->qg = ng * gq;
    const size_t nw = (size_t)ng * nb * XQ_GROUP * 16;
    nd->wq = xnor_calloc_aligned(nw);
    nd->qscale = alloc_f(m, (size_t)ng * ldo, 1);
    nd->qwsum = xnor_calloc_aligned((size_t)ng * ldo * sizeof(int32_t));
    if (!nd->wq || !nd->qscale || !nd->qwsum) return XNOR_ERR_OUT_OF_MEMORY;
    m->memory_bytes += ((nw + 63) & ~(size_t)63) + (size_t)ng * ldo * sizeof(int32_t);
    for (int32_t o = 0; o < O; o++) {
        const int32_t ob = o / 16, lane = o % 16;
        for (int32_t f = 0; f < F; f++) {
            const int32_t g = f / XQ_GROUP, j = f % XQ_GROUP;
            const int8_t v = src[(size_t)o * F + f];
            nd->wq[((((size_t)ob * ng + g) * gq + j / 4) * 16 + lane) * 4 + j % 4] = v;
            nd->qwsum[((size_t)ob * ng + g) * 16 + lane] += v; /* |sum| <= 128 * XQ_GROUP */
        }
        for (int32_t g = 0; g < ng; g++)
            memcpy(&nd->qscale[((size_t)ob * ng + g) * 16 + lane], sc + ((size_t)o * ng + g) * 4, 4);
    }
    if (nd->has_bias && !(nd->bias = pad_vec(m, &tens[nd->t[1]], data, O, nb))) return XNOR_ERR_OUT_OF_MEMORY;
    return XNOR_OK;
}

static xnor_status prepare_q(xnor_model_t *m, xnode *nd, const xtensor_desc *tens, const uint8_t *data) {
    if (nd->op == XNOR_OP_QLINEAR) return prepare_ql(m, nd, tens, data);
    const int32_t O = nd->O, C = nd->C, kh = nd->kh, kw = nd->kw, nb = nd->nb;
    const int32_t rowb = kw * C, qg = (rowb + 3) / 4, ldo = nb * 16;
    const int8_t *src = (const int8_t *)(data + tens[nd->t[0]].offset);
    nd->qg = qg;
    const size_t nw = (size_t)nb * kh * qg * 64;
    nd->wq = xnor_calloc_aligned(nw);
    nd->qscale = alloc_f(m, (size_t)ldo, 1);
    if (!nd->wq || !nd->qscale) return XNOR_ERR_OUT_OF_MEMORY;
    m->memory_bytes += (nw + 63) & ~(size_t)63;
    memcpy(nd->qscale, data + tens[nd->t[2]].offset, (size_t)O * sizeof(float));
    for (int32_t o = 0; o < O; o++) {
        const int32_t ob = o / 16, lane = o % 16;
        for (int32_t c = 0; c < C; c++)
            for (int32_t ky = 0; ky < kh; ky++)
                for (int32_t kx = 0; kx < kw; kx++) {
                    const int32_t j = kx * C + c;
                    nd->wq[((((size_t)ob * kh + ky) * qg + j / 4) * 16 + lane) * 4 + j % 4] =
                        src[(((size_t)o * C + c) * kh + ky) * kw + kx];
                }
    }
    xnor_status st = tap_ranges(m, nd);
    if (st) return st;
    const int32_t oh = (int32_t)nd->out_shape.h, ow = (int32_t)nd->out_shape.w;
    nd->qcls_y = malloc(sizeof(int32_t) * (size_t)oh);
    nd->qcls_x = malloc(sizeof(int32_t) * (size_t)ow);
    if (!nd->qcls_y || !nd->qcls_x) return XNOR_ERR_OUT_OF_MEMORY;
    m->memory_bytes += sizeof(int32_t) * ((uint64_t)oh + ow);
    const int32_t ncy = range_classes(nd->row_k, oh, nd->qcls_y);
    const int32_t ncx = range_classes(nd->col_k, ow, nd->qcls_x);
    nd->ncx = ncx;
    /* ncy <= 2 kh + 2 and ncx <= 2 kw + 2 (monotone runs), so this table is within a small
     * multiple of the file's own [O][kh][kw] offset tensor. */
    nd->qcorr = alloc_f(m, (size_t)ncy * ncx * ldo, 1);
    if (!nd->qcorr) return XNOR_ERR_OUT_OF_MEMORY;
    const uint8_t *boff = nd->has_bias ? data + tens[nd->t[1]].offset : NULL;
    const uint8_t *toff = data + tens[nd->t[3]].offset;
    for (int32_t y = 0; y < oh; y++) {
        if (y > 0 && nd->qcls_y[y] == nd->qcls_y[y - 1]) continue;
        for (int32_t x = 0; x < ow; x++) {
            if (x > 0 && nd->qcls_x[x] == nd->qcls_x[x - 1]) continue;
            float *dst = nd->qcorr + ((size_t)nd->qcls_y[y] * ncx + nd->qcls_x[x]) * ldo;
            for (int32_t o = 0; o < O; o++) {
                float v = 0.0f;
                if (boff) memcpy(&v, boff + 4 * (size_t)o, 4);
                for (int32_t ky = nd->row_k[2 * y]; ky < nd->row_k[2 * y + 1]; ky++)
                    for (int32_t kx = nd->col_k[2 * x]; kx < nd->col_k[2 * x + 1]; kx++) {
                        float t;
                        memcpy(&t, toff + 4 * (((size_t)o * kh + ky) * kw + kx), 4);
                        v = v + t;
                    }
                dst[o] = v;
            }
        }
    }
    return XNOR_OK;
}

xnor_status xnor_prepare_node(xnor_model_t *m, xnode *nd, const xtensor_desc *tens, const uint8_t *data) {
    switch (nd->op) {
    case XNOR_OP_QCONV2D:
    case XNOR_OP_QLINEAR:
        return prepare_q(m, nd, tens, data);
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
            if (!nd->wbits) return XNOR_ERR_OUT_OF_MEMORY;
            m->memory_bytes += nw * 4;
            const uint64_t rowbits = (uint64_t)C * taps, rowbytes = (rowbits + 7) / 8;
            for (int32_t o = 0; o < O; o++) {
                const uint8_t *row = wsrc + (uint64_t)o * rowbytes;
                const int32_t ob = o / 16, lane = o % 16;
                if (taps == 1) {
                    /* Fully connected / 1x1: channel c is bit c of the row, so each word is
                     * four row bytes (the row's padding bits are validated zero). These are
                     * the largest layers; bit-by-bit repacking dominated load time. */
                    for (int32_t j = 0; j < cw; j++) {
                        uint32_t wv = 0;
                        uint64_t b0 = (uint64_t)j * 4;
                        for (uint64_t b = 0; b < 4 && b0 + b < rowbytes; b++) wv |= (uint32_t)row[b0 + b] << (8 * b);
                        nd->wbits[((size_t)ob * cw + j) * 16 + lane] = wv;
                    }
                } else {
                    uint64_t bi = 0; /* bit index (c, ky, kx) in PyTorch order */
                    for (int32_t c = 0; c < C; c++)
                        for (int32_t t = 0; t < taps; t++, bi++)
                            if (get_bit(row, bi))
                                nd->wbits[(((size_t)ob * taps + t) * cw + c / 32) * 16 + lane] |= 1u << (c % 32);
                }
            }
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
        if (nd->op == XNOR_OP_BCONV2D && nd->mode == XNOR_MODE_XNOR) return tap_ranges(m, nd);
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
    XNOR_FREE_EACH(xnor_free_aligned, nd->wbits, nd->wf, nd->wm, nd->bias, nd->alpha, nd->bn_scale, nd->bn_shift,
                   nd->wq, nd->qscale, nd->qwsum, nd->qcorr);
    XNOR_FREE_EACH(free, nd->row_k, nd->col_k, nd->qcls_y, nd->qcls_x);
    xnor_free_packed(nd);
    nd->wq = NULL;
    nd->qscale = nd->qcorr = NULL;
    nd->qwsum = nd->qcls_y = nd->qcls_x = NULL;
    nd->wbits = NULL;
    nd->wf = NULL;
    nd->wm = NULL;
    nd->bias = nd->alpha = nd->bn_scale = nd->bn_shift = NULL;
    nd->row_k = nd->col_k = NULL;
}
