/* fold.c -- packed epilogues: XNOR layers that emit the next XNOR layer's input bits.
 *
 * Chain: bconv2d A (XNOR, no K) -> [relu] -> [maxpool] -> [batchnorm] -> bconv2d C (XNOR,
 * no K), each value read only by the next node, so the loader has already folded the relu
 * into A's epilogue and the batchnorm into C's binarization. The bit C packs for channel o is then
 * f(dot), dot = A's integer dot product at that pixel, through float32 steps that do not
 * depend on the pixel (xnor_packed_bit). For each count n of valid taps (border pixels see
 * fewer) dot takes the values -C*n, -C*n + 2, ..., C*n; f is evaluated at every one of them,
 * with the engine's own arithmetic, so the bits are the float path's bits by construction.
 * Where the 1s form one interval [lo, hi] (a monotone chain gives a half-line: scale > 0
 * increasing, scale < 0 decreasing, scale 0 constant) the epilogue compares integers;
 * otherwise, or where a parameter is not finite, that channel evaluates the chain at run
 * time. Layers whose evaluation would exceed EVAL_BUDGET steps keep the float path.
 *
 * A max-pool may sit after the relu: bit(bn(max v)) is the OR of the window's bits when the
 * bit grows with v (batchnorm scale > 0, or no batchnorm), the AND when it falls (scale < 0)
 * and either when it is constant (scale 0 with every interval full or empty); an empty
 * window (all -inf) agrees too. A layer with a channel that needs the float chain keeps the
 * float path there, since the pool needs the floats.
 *
 * The chain may also end in flatten -> blinear C (XNOR, no K) reading the whole map, as the
 * classifier head of AlexNet does (conv5 -> relu -> pool -> bn -> flatten -> fc6). The
 * batchnorm is then folded into A's thresholds here (the loader left it a node: its consumer
 * is the flatten) and the flatten into C's weights: C's weight bits are reordered at load to
 * the layout A's epilogue (or the bit pool) writes, pixel-major with ceil(channels / 32)
 * words per pixel, so C's popcounts pair the same input and weight bits as before. Sign
 * does not depend on order, and padding bits are zero in both input and weights, so the
 * dot products are unchanged. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define EVAL_BUDGET (1ll << 26)

static int xnor_conv(const xnode *nd) { return nd->op == XNOR_OP_BCONV2D && nd->mode == 0 && !nd->use_k; }

/* A blinear the chain may end in: XNOR, no K, reading all of the flattened map. */
static int xnor_flat_linear(const xnode *nd, const xnode *flat) {
    return nd->op == XNOR_OP_BLINEAR && nd->mode == XNOR_MODE_XNOR && !nd->use_k &&
           (uint64_t)nd->C == xshape_elems(&flat->in_shape);
}

/* The consumer C of A's chain, with the relu, max-pool, batchnorm and flatten between; -1 if
 * A does not qualify. */
static int32_t find_chain(const xnor_model_t *m, const xnode *a, int32_t *relu, int32_t *pool, int32_t *bn,
                          int32_t *flat) {
    *relu = -1;
    *pool = -1;
    *bn = -1;
    *flat = -1;
    if (!xnor_conv(a) || a->n_consumers != 1) return -1;
    const xnode *nx = &m->nodes[a->consumer];
    int32_t k = a->consumer;
    if (nx->op == XNOR_OP_RELU && nx->fuse_kind == XFUSE_RELU_EPILOGUE) {
        if (nx->n_consumers != 1) return -1;
        *relu = k;
        k = nx->consumer;
        nx = &m->nodes[k];
    }
    if (nx->op == XNOR_OP_MAXPOOL) {
        if (nx->n_consumers != 1) return -1;
        *pool = k;
        k = nx->consumer;
        nx = &m->nodes[k];
    }
    int32_t bn_kind = XFUSE_NONE;
    if (nx->op == XNOR_OP_BATCHNORM) {
        if (nx->n_consumers != 1) return -1;
        bn_kind = (int32_t)nx->fuse_kind;
        *bn = k;
        k = nx->consumer;
        nx = &m->nodes[k];
    }
    if (nx->op == XNOR_OP_FLATTEN) {
        /* The loader folds nothing around a flatten: a batchnorm before it is still a node. */
        if (nx->n_consumers != 1 || bn_kind != XFUSE_NONE) return -1;
        const xnode *fc = &m->nodes[nx->consumer];
        if (!xnor_flat_linear(fc, nx)) return -1;
        *flat = k;
        return nx->consumer;
    }
    if (*bn >= 0 && bn_kind != XFUSE_BN_BINARIZE) return -1;
    if (!xnor_conv(nx) || nx->inputs[0] == 0 || (uint32_t)nx->C != a->out_shape.c) return -1;
    return k;
}

static int finite_or_null(const float *p) { return !p || isfinite(*p); }

static xnor_status fold_one(xnor_model_t *m, xnode *a, int32_t relu, int32_t bn) {
    const int32_t taps = a->kh * a->kw, lanes = 16 * a->nb, oh = (int32_t)a->out_shape.h,
                  ow = (int32_t)a->out_shape.w;
    a->pk_kind = malloc(sizeof(int32_t) * ((size_t)taps + 1));
    a->pk_float = calloc((size_t)lanes, 1);
    if (!a->pk_kind || !a->pk_float) return XNOR_ERR_OUT_OF_MEMORY;
    for (int32_t t = 0; t <= taps; t++) a->pk_kind[t] = -1;
    int32_t nk = 0;
    for (int32_t y = 0; y < oh; y++)
        for (int32_t x = 0; x < ow; x++) {
            const int32_t t = (a->row_k[2 * y + 1] - a->row_k[2 * y]) * (a->col_k[2 * x + 1] - a->col_k[2 * x]);
            if (a->pk_kind[t] < 0) a->pk_kind[t] = nk++;
        }
    a->pk_kinds = nk;
    a->pk_lo = xnor_alloc_aligned(sizeof(int32_t) * (size_t)nk * (size_t)lanes);
    a->pk_hi = xnor_alloc_aligned(sizeof(int32_t) * (size_t)nk * (size_t)lanes);
    if (!a->pk_lo || !a->pk_hi) return XNOR_ERR_OUT_OF_MEMORY;
    m->memory_bytes += (uint64_t)taps * 4 + (uint64_t)lanes * (1 + 8 * (uint64_t)nk);
    const xnode *b = bn >= 0 ? &m->nodes[bn] : NULL;
    for (int32_t o = 0; o < lanes; o++) {
        for (int32_t kd = 0; kd < nk; kd++) {
            a->pk_lo[(size_t)kd * lanes + o] = 1; /* empty interval */
            a->pk_hi[(size_t)kd * lanes + o] = 0;
        }
        if (o >= a->O) continue; /* lanes past O stay 0 */
        const float *bias = a->bias ? &a->bias[o] : NULL;
        const float *sc = b ? &b->bn_scale[o] : NULL, *sf = b ? &b->bn_shift[o] : NULL;
        if (!isfinite(a->alpha[o]) || !finite_or_null(bias) || !finite_or_null(sc) || !finite_or_null(sf)) {
            a->pk_float[o] = 1;
            continue;
        }
        for (int32_t t = 0; t <= taps && !a->pk_float[o]; t++) {
            const int32_t kd = a->pk_kind[t];
            if (kd < 0) continue;
            const int32_t n = a->C * t;
            int32_t first = 1, last = 0, ones = 0;
            for (int32_t dot = -n; dot <= n; dot += 2)
                if (xnor_packed_bit(dot, a->alpha[o], bias, relu >= 0, sc, sf)) {
                    if (ones++ == 0) first = dot;
                    last = dot;
                }
            if (ones && (last - first) / 2 + 1 != ones) {
                a->pk_float[o] = 1; /* not one interval: evaluate at run time */
                break;
            }
            a->pk_lo[(size_t)kd * lanes + o] = first;
            a->pk_hi[(size_t)kd * lanes + o] = last;
        }
    }
    for (int32_t o = 0; o < lanes; o++) a->pk_nfloat += a->pk_float[o];
    a->pk_float_ch = malloc(sizeof(int32_t) * ((size_t)a->pk_nfloat + 1));
    if (!a->pk_float_ch) return XNOR_ERR_OUT_OF_MEMORY;
    for (int32_t o = 0, j = 0; o < lanes; o++)
        if (a->pk_float[o]) a->pk_float_ch[j++] = o;
    a->pk_relu = relu;
    a->pk_bn = bn;
    return XNOR_OK;
}

/* For a pooled chain: the AND mask, or 0 (no fold) if some channel cannot pool bits. */
static xnor_status pool_masks(xnode *a, const xnode *b, int *ok) {
    const int32_t lanes = 16 * a->nb, cw = (a->O + 31) / 32, taps = a->kh * a->kw;
    *ok = 0;
    if (a->pk_nfloat) return XNOR_OK;
    a->pk_and = calloc((size_t)cw, sizeof(uint32_t));
    if (!a->pk_and) return XNOR_ERR_OUT_OF_MEMORY;
    for (int32_t o = 0; o < a->O; o++) {
        const float sc = b ? b->bn_scale[o] : 1.0f;
        if (sc < 0.0f) {
            a->pk_and[o / 32] |= 1u << (o % 32);
        } else if (sc == 0.0f) { /* constant bit: every interval full, or every one empty */
            int full = 0, empty = 0;
            for (int32_t t = 0; t <= taps; t++) {
                const int32_t kd = a->pk_kind[t];
                if (kd < 0) continue;
                const int32_t n = a->C * t, lo = a->pk_lo[(size_t)kd * lanes + o], hi = a->pk_hi[(size_t)kd * lanes + o];
                full += lo <= -n && hi >= n;
                empty += lo > hi;
            }
            if (full != a->pk_kinds && empty != a->pk_kinds) return XNOR_OK;
        }
    }
    *ok = 1;
    return XNOR_OK;
}

void xnor_free_packed(xnode *nd) {
    XNOR_FREE_EACH(xnor_free_aligned, nd->pk_lo, nd->pk_hi);
    XNOR_FREE_EACH(free, nd->pk_kind, nd->pk_float, nd->pk_float_ch, nd->pk_and);
    nd->pk_kind = nd->pk_lo = nd->pk_hi = nd->pk_float_ch = NULL;
    nd->pk_float = NULL;
    nd->pk_and = NULL;
    nd->pk_nfloat = nd->pk_kinds = 0;
    nd->pack_into = nd->pk_relu = nd->pk_bn = nd->pk_pool = -1;
}

/* In place: a[r] bit c <- a[c] bit r (swapping ever smaller off-diagonal blocks). */
static void transpose64(uint64_t a[64]) {
    uint64_t m = 0x00000000FFFFFFFFull;
    for (int j = 32; j; j >>= 1, m ^= m << j)
        for (int k = 0; k < 64; k = ((k | j) + 1) & ~j) {
            const uint64_t t = ((a[k] >> j) ^ a[k | j]) & m;
            a[k] ^= t << j;
            a[k | j] ^= t;
        }
}

/* Bits [f, f + 64) of a row of 32-bit words readable two words past f's. */
static inline uint64_t bits64(const uint32_t *row, size_t f) {
    const size_t q = f / 32, sh = f % 32;
    const uint64_t lo = (uint64_t)row[q] | (uint64_t)row[q + 1] << 32;
    return sh ? (lo >> sh) | (uint64_t)row[q + 2] << (64 - sh) : lo;
}

/* Reorder blinear fc's weight bits from the flatten's [C][H][W] feature order to the
 * packed map layout: word (p * cwc + j), bit b <- feature (32 j + b) * H * W + p, for pixel p
 * and channel 32 j + b < C; bits past C stay 0. Each pixel's channels fill whole words, so
 * a C that is not a multiple of 32 pads the layer's weights (and popcount work): *ok = 0
 * (no fold) where that would more than double them. Per output lane, the row is a C x HW bit
 * matrix to transpose: 64 channels by 64 pixels at a time. */
static xnor_status permute_flat_weights(xnor_model_t *m, xnode *fc, const xshape *map, int *ok) {
    const size_t HW = (size_t)map->h * map->w, C = map->c, cwc = (C + 31) / 32, cwn = HW * cwc;
    const size_t cwo = (size_t)fc->cw, nb = (size_t)fc->nb;
    *ok = 0;
    if (cwn > 2 * cwo) return XNOR_OK; /* cwn <= H * W * C = fc's features, an int32 */
    uint32_t *w = xnor_calloc_aligned(nb * cwn * 16 * sizeof(uint32_t));
    uint32_t *row = malloc((cwo + 2) * sizeof(uint32_t));
    if (!w || !row) {
        xnor_free_aligned(w);
        free(row);
        return XNOR_ERR_OUT_OF_MEMORY;
    }
    row[cwo] = row[cwo + 1] = 0; /* bits64 at the last features reads two words past them */
    for (size_t ob = 0; ob < nb; ob++)
        for (size_t lane = 0; lane < 16; lane++) {
            for (size_t j = 0; j < cwo; j++) row[j] = fc->wbits[(ob * cwo + j) * 16 + lane];
            uint32_t *dst = w + ob * cwn * 16 + lane;
            for (size_t p0 = 0; p0 < HW; p0 += 64) {
                const size_t n = HW - p0 < 64 ? HW - p0 : 64;
                const uint64_t keep = n < 64 ? (1ull << n) - 1 : ~0ull;
                for (size_t c0 = 0; c0 < C; c0 += 64) {
                    uint64_t a[64]; /* a[i]: channel c0 + i's pixels p0.. */
                    for (size_t i = 0; i < 64; i++) a[i] = c0 + i < C ? bits64(row, (c0 + i) * HW + p0) & keep : 0;
                    transpose64(a); /* a[p]: pixel p0 + p's channels c0.. */
                    for (size_t p = 0; p < n; p++) {
                        const size_t q = (p0 + p) * cwc + c0 / 32;
                        dst[q * 16] = (uint32_t)a[p];
                        if (c0 / 32 + 1 < cwc) dst[(q + 1) * 16] = (uint32_t)(a[p] >> 32);
                    }
                }
            }
        }
    free(row);
    m->memory_bytes += (uint64_t)(cwn - cwo) * nb * 16 * sizeof(uint32_t);
    xnor_free_aligned(fc->wbits);
    fc->wbits = w;
    fc->cw = (int32_t)cwn;
    *ok = 1;
    return XNOR_OK;
}

xnor_status xnor_fold_packed_epilogues(xnor_model_t *m) {
    for (uint32_t k = 0; k < m->n_nodes; k++) {
        m->nodes[k].pack_into = -1;
        m->nodes[k].pk_flat = -1;
    }
    for (uint32_t k = 0; k < m->n_nodes; k++) {
        xnode *a = &m->nodes[k];
        int32_t relu, pool, bn, flat;
        const int32_t c = find_chain(m, a, &relu, &pool, &bn, &flat);
        if (c < 0) continue;
        /* distinct tap counts <= kh * kw; each needs C * taps + 1 evaluations per channel */
        const int64_t evals = (int64_t)a->O * (int64_t)a->kh * a->kw * ((int64_t)a->C * a->kh * a->kw + 1);
        if (evals > EVAL_BUDGET) continue;
        xnor_status st = fold_one(m, a, relu, bn);
        if (st) return st;
        a->pk_pool = pool;
        if (pool >= 0) {
            int ok;
            if ((st = pool_masks(a, bn >= 0 ? &m->nodes[bn] : NULL, &ok))) return st;
            if (!ok) {
                xnor_free_packed(a);
                continue;
            }
        }
        if (flat >= 0) {
            xnode *fc = &m->nodes[c];
            int ok;
            if ((st = permute_flat_weights(m, fc, &m->nodes[flat].in_shape, &ok))) return st;
            if (!ok) {
                xnor_free_packed(a);
                continue;
            }
            fc->pk_flat = flat;
            m->nodes[flat].fused = 1;
            m->nodes[flat].fuse_kind = XFUSE_PACKED;
            if (bn >= 0) {
                m->nodes[bn].fused = 1;
                m->nodes[bn].fuse_kind = XFUSE_PACKED;
            }
        }
        a->pack_into = c;
    }
    return XNOR_OK;
}
