/* exec_int8.c -- the int8 edge layers (FORMAT.md qconv2d, qlinear): input conversion,
 * work splitting, kernel calls and their float epilogues.
 *
 * qconv2d reads the model input as uint8 NHWC pixels (c->u8buf, with slack bytes after
 * the last image so a kernel's 4-byte groups never leave the buffer). Interior output
 * positions (every tap in bounds) run the kernel straight on the image; border positions
 * gather their window with the out-of-bounds taps set to 0 (they contribute nothing, as in
 * the float model, where the padding is 0 after normalization: the normalization's mean
 * term of exactly the in-bounds taps is in the prepared qcorr table). qlinear quantizes
 * each sample's activations (FORMAT.md) into the step's workspace first.
 *
 * The integer sums are exact on every ISA, the epilogues below are shared, and the fused
 * qlinear_g32 kernels do their per-group float steps in one order on every ISA, so every
 * ISA gives the scalar result bit for bit.
 */
#include <math.h>
#include <string.h>

#include "context.h"

#define GRAIN_Q 300000ull /* int8 MACs worth a pool dispatch */
#define GRAIN_Q_ELEM 32768ull

static inline int32_t min32(int32_t a, int32_t b) { return a < b ? a : b; }

/* Round to nearest, ties to even, for |v| <= 2^22 (every caller clamps first): v + 1.5 * 2^23
 * lies in [2^23, 2^24), where the floats are exactly the integers, so the addition rounds v
 * (in the default rounding mode, as nearbyintf does) and the subtraction is exact. Unlike a
 * call to nearbyintf it is two float adds, so the loops around it vectorize. */
static inline float round_even_small(float v) {
    const float k = 12582912.0f;
    return (v + k) - k;
}

/* ================================================================ input to pixels */

typedef struct {
    const xnor_model_t *m;
    const float *src;
    uint8_t *dst;
} q_in_task;

/* float32 NCHW -> uint8 NHWC pixels: p = rint((x * std[c] + mean[c]) / scale), NaN -> 0,
 * clamped to 0..255 (FORMAT.md: pixels normalized by the model's own spec come back
 * exactly). */
static void float_to_pixels_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const q_in_task *t = arg;
    const xnor_model_t *m = t->m;
    const size_t C = m->in_c, HW = (size_t)m->in_h * m->in_w;
    const float *s = t->src + (size_t)item * C * HW;
    uint8_t *d = t->dst + (size_t)item * C * HW;
    for (size_t ch = 0; ch < C; ch++) {
        const float sd = ch < 4 ? m->std[ch] : 1.0f, mu = ch < 4 ? m->mean[ch] : 0.0f, sc = m->scale;
        const float *sp = s + ch * HW;
        for (size_t p = 0; p < HW; p++) {
            float v = sp[p] * sd;
            v = v + mu;
            v = v / sc;
            v = v > 0.0f ? v : 0.0f; /* NaN -> 0 */
            v = v < 255.0f ? v : 255.0f;
            d[p * C + ch] = (uint8_t)round_even_small(v);
        }
    }
}

void xnor_exec_pixels_from_float(xnor_context_t *c, const float *src, uint32_t N) {
    q_in_task t = {c->m, src, c->u8buf};
    const uint64_t work = (uint64_t)N * c->m->in_c * c->m->in_h * c->m->in_w;
    int64_t want = xnor_exec_want_items(c, work, GRAIN_Q_ELEM);
    xnor_pool_run(want > 1 ? c->pool : NULL, float_to_pixels_item, &t, N);
}

/* ================================================================ qconv2d */

typedef struct {
    xnor_context_t *c;
    const xstep *st;
    const xnode *nd;
    const xnode *bn;
    float *out;
    int32_t relu;
    int32_t N, rows, rt, nrt, nb, bt, nbt;
} q_task;

/* v = float(acc) * s[o] + corr[o] (then the folded batchnorm and relu), o in [o0, o1). */
static inline void qconv_epilogue(const int32_t *restrict acc, float *restrict y, int32_t o0, int32_t o1,
                                  const float *restrict s, const float *restrict corr, const float *restrict bs,
                                  const float *restrict bf, int relu) {
    for (int32_t o = o0; o < o1; o++) {
        float v = (float)acc[o - o0] * s[o];
        v = v + corr[o];
        if (bs) {
            v = v * bs[o];
            v = v + bf[o];
        }
        y[o] = relu ? (v > 0.0f ? v : 0.0f) : v;
    }
}

static void qconv_item(void *arg, int64_t item, int tid) {
    const q_task *t = arg;
    const xnode *nd = t->nd;
    const xtile tl = xnor_tile_at(item, t->rows, t->rt, t->nrt, t->nb, t->bt, t->nbt);
    const size_t n = (size_t)tl.n;
    const int32_t b0 = tl.b0, b1 = tl.b1, nbl = b1 - b0, y0 = tl.y0, y1 = tl.y1;
    const int32_t C = (int32_t)nd->in_shape.c, H = (int32_t)nd->in_shape.h, W = (int32_t)nd->in_shape.w;
    const int32_t oh = (int32_t)nd->out_shape.h, ow = (int32_t)nd->out_shape.w;
    const int32_t kh = nd->kh, kw = nd->kw, qg = nd->qg, stride = 16 * nbl;
    const uint8_t *img = t->c->u8buf + n * (size_t)C * H * W;
    int32_t *pop = (int32_t *)t->c->scratch[tid];
    uint8_t *win = (uint8_t *)(pop + (size_t)t->rt * (size_t)ow * (size_t)stride);
    const size_t wrow = (size_t)qg * 4;

    xnor_qconv_args a;
    a.w = nd->wq;
    a.kh = kh;
    a.qg = qg;
    a.b0 = b0;
    a.b1 = b1;
    a.out_stride = stride;
    for (int32_t y = y0; y < y1; y++) {
        const int32_t ky0 = nd->row_k[2 * y], ky1 = nd->row_k[2 * y + 1];
        const int32_t iy = y * nd->sh - nd->pt;
        int32_t *prow = pop + (size_t)(y - y0) * (size_t)ow * (size_t)stride;
        /* Interior columns are a contiguous run (the tap ranges are monotone in x). */
        int32_t x0 = 0, x1 = 0;
        if (ky0 == 0 && ky1 == kh) {
            while (x0 < ow && !(nd->col_k[2 * x0] == 0 && nd->col_k[2 * x0 + 1] == kw)) x0++;
            x1 = x0;
            while (x1 < ow && nd->col_k[2 * x1] == 0 && nd->col_k[2 * x1 + 1] == kw) x1++;
        }
        if (x1 > x0) {
            a.in = img;
            a.off0 = ((int64_t)iy * W - nd->pl) * C;
            a.row_stride = (int64_t)W * C;
            a.px_stride = (int64_t)nd->sw * C;
            a.sh = 1;
            a.y0 = 0;
            a.y1 = 1;
            a.x0 = x0;
            a.x1 = x1;
            a.out = prow + (size_t)x0 * (size_t)stride;
            a.out_row = ow;
            t->c->kt->qconv(&a);
        }
        for (int32_t x = 0; x < ow; x++) {
            if (x >= x0 && x < x1) continue;
            /* Border: the window with out-of-bounds taps (and the group tail) zeroed. */
            const int32_t kx0 = nd->col_k[2 * x], kx1 = nd->col_k[2 * x + 1];
            const int32_t ix = x * nd->sw - nd->pl;
            memset(win, 0, wrow * (size_t)kh);
            for (int32_t ky = ky0; ky < ky1; ky++)
                memcpy(win + (size_t)ky * wrow + (size_t)kx0 * C,
                       img + ((size_t)(iy + ky) * W + (size_t)(ix + kx0)) * C, (size_t)(kx1 - kx0) * C);
            a.in = win;
            a.off0 = 0;
            a.row_stride = (int64_t)wrow;
            a.px_stride = 0;
            a.sh = 0;
            a.y0 = 0;
            a.y1 = 1;
            a.x0 = 0;
            a.x1 = 1;
            a.out = prow + (size_t)x * (size_t)stride;
            a.out_row = 1;
            t->c->kt->qconv(&a);
        }
    }
    const int32_t o0 = b0 * 16, o1 = min32(nd->O, b1 * 16), ldo = nd->nb * 16;
    const float *bs = t->bn ? t->bn->bn_scale : NULL, *bf = t->bn ? t->bn->bn_shift : NULL;
    float *outn = t->out + n * (size_t)oh * (size_t)ow * (size_t)nd->O;
    for (int32_t y = y0; y < y1; y++) {
        const float *crow = nd->qcorr + (size_t)nd->qcls_y[y] * (size_t)nd->ncx * (size_t)ldo;
        for (int32_t x = 0; x < ow; x++)
            qconv_epilogue(pop + ((size_t)(y - y0) * (size_t)ow + (size_t)x) * (size_t)stride,
                           outn + ((size_t)y * (size_t)ow + (size_t)x) * (size_t)nd->O, o0, o1,
                           nd->qscale, crow + (size_t)nd->qcls_x[x] * (size_t)ldo, bs, bf, t->relu);
    }
}

/* ================================================================ qlinear */

/* Per sample: F activations -> uint8 u (FORMAT.md qlinear, one scale per group of
 * XQ_GROUP features), then the groups' dequantization scales sx[ng] and the zero point z,
 * at u + [ng * XQ_GROUP] bytes. */
static void quantize_sample(const float *restrict x, int32_t F, uint8_t *restrict u, int32_t ng) {
    int neg = 0;
    for (int32_t f = 0; f < F; f++) neg |= x[f] < 0.0f;
    const int32_t z = neg ? 128 : 0;
    uint8_t *sxp = u + (size_t)ng * XQ_GROUP;
    for (int32_t g = 0; g < ng; g++) {
        const int32_t f0 = g * XQ_GROUP, f1 = min32(F, f0 + XQ_GROUP);
        float amax = 0.0f;
        for (int32_t f = f0; f < f1; f++) {
            const float a = fabsf(x[f]);
            amax = a > amax ? a : amax; /* NaN never wins */
        }
        float sx = 0.0f;
        if (!(amax > 0.0f)) {
            memset(u + f0, (int)z, (size_t)(f1 - f0));
        } else if (!neg) {
            const float r = 255.0f / amax;
            sx = amax / 255.0f;
            for (int32_t f = f0; f < f1; f++) {
                float v = x[f] * r;
                v = v > 0.0f ? v : 0.0f; /* NaN -> 0 */
                v = v < 255.0f ? v : 255.0f;
                u[f] = (uint8_t)round_even_small(v);
            }
        } else {
            const float r = 127.0f / amax;
            sx = amax / 127.0f;
            for (int32_t f = f0; f < f1; f++) {
                float v = x[f] * r;
                v = v == v ? v : 0.0f;
                v = v > -127.0f ? v : -127.0f;
                v = v < 127.0f ? v : 127.0f;
                u[f] = (uint8_t)((int32_t)round_even_small(v) + 128);
            }
        }
        memcpy(sxp + (size_t)g * 4, &sx, 4);
    }
    memset(u + F, 0, (size_t)ng * XQ_GROUP - (size_t)F);
    memcpy(sxp + (size_t)ng * 4, &z, 4);
}

typedef struct {
    q_task q;
    const float *in;
    int64_t chunk;
} ql_task;

static void qlinear_quant_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const ql_task *t = arg;
    const xnode *nd = t->q.nd;
    const int32_t F = (int32_t)nd->in_shape.c;
    const size_t per = ((size_t)nd->qg + (size_t)nd->qng + 1) * 4;
    const int64_t s1 = (item + 1) * t->chunk < t->q.N ? (item + 1) * t->chunk : t->q.N;
    for (int64_t s = item * t->chunk; s < s1; s++)
        quantize_sample(t->in + (size_t)s * (size_t)F, F, (uint8_t *)t->q.st->ws + (size_t)s * per, nd->qng);
}

/* The qlinear_g32 kernel's groups are XQ_GROUP features wide. */
_Static_assert(XQ_GROUP == 32, "qlinear_g32 sums groups of 32 features");

/* One tile (samples s0..s1, blocks b0..b1): the fused kernel sums each feature group in
 * int32 and adds its scaled value into the outputs in group order; then bias, a folded
 * batchnorm and ReLU. */
static void qlinear_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const ql_task *lt = arg;
    const q_task *t = &lt->q;
    const xnode *nd = t->nd;
    const xtile tl = xnor_tile_at(item, t->rows, t->rt, t->nrt, t->nb, t->bt, t->nbt);
    const int32_t b0 = tl.b0, b1 = tl.b1, s0 = tl.y0, s1 = tl.y1; /* rows are samples */
    const int32_t o0 = b0 * 16, o1 = min32(nd->O, b1 * 16);
    xnor_qlinear_args a;
    a.in = (const uint8_t *)t->st->ws;
    a.in_stride = (int64_t)(((size_t)nd->qg + (size_t)nd->qng + 1) * 4);
    a.w = nd->wq;
    a.scale = nd->qscale;
    a.wsum = nd->qwsum;
    a.ng = nd->qng;
    a.O = nd->O;
    a.s0 = s0;
    a.s1 = s1;
    a.b0 = b0;
    a.b1 = b1;
    a.out = t->out;
    a.out_stride = nd->O;
    t->c->kt->qlinear_g32(&a);
    const float *bs = t->bn ? t->bn->bn_scale : NULL, *bf = t->bn ? t->bn->bn_shift : NULL;
    for (int32_t s = s0; s < s1; s++) {
        float *y = t->out + (size_t)s * (size_t)nd->O;
        for (int32_t o = o0; o < o1; o++) {
            float v = y[o];
            if (nd->bias) v = v + nd->bias[o];
            if (bs) {
                v = v * bs[o];
                v = v + bf[o];
            }
            y[o] = t->relu ? (v > 0.0f ? v : 0.0f) : v;
        }
    }
}

/* ================================================================ steps */

static void split(q_task *t, int64_t want, int32_t rt_max, int32_t bt_max, int blocks_first) {
    xnor_split_tiles(t->rows, t->nb, blocks_first ? 1 : t->N, want, rt_max, bt_max, blocks_first, &t->rt,
                     &t->nrt, &t->bt, &t->nbt);
}

/* The task of step st over N images, before its tiling. */
static void q_task_init(q_task *t, xnor_context_t *c, const xstep *st, uint32_t N) {
    memset(t, 0, sizeof *t);
    t->c = c;
    t->st = st;
    t->nd = &c->m->nodes[st->node];
    t->bn = st->bn_epi >= 0 ? &c->m->nodes[st->bn_epi] : NULL;
    t->out = c->slot_buf[c->slot_of[st->out]];
    t->relu = st->relu >= 0;
    t->N = (int32_t)N;
    t->nb = t->nd->nb;
}

void xnor_exec_qconv(xnor_context_t *c, const xstep *st, uint32_t N) {
    q_task t;
    q_task_init(&t, c, st, N);
    t.rows = (int32_t)t.nd->out_shape.h;
    const int64_t want = xnor_exec_want_items(c, xnor_mul_sat(t.nd->macs, N), GRAIN_Q);
    split(&t, want, st->rt_max, st->bt_max, 0);
    xnor_pool_run(want > 1 ? c->pool : NULL, qconv_item, &t, (int64_t)N * t.nrt * t.nbt);
}

void xnor_exec_qlinear(xnor_context_t *c, const xstep *st, uint32_t N) {
    ql_task t;
    memset(&t, 0, sizeof t);
    q_task_init(&t.q, c, st, N);
    t.in = xnor_vbuf(c, st->in[0]);
    int64_t want = xnor_exec_want_items(c, (uint64_t)N * t.q.nd->in_shape.c, GRAIN_Q_ELEM);
    int64_t items = want > 1 ? (want < (int64_t)N ? want : (int64_t)N) : 1;
    t.chunk = ((int64_t)N + items - 1) / items;
    xnor_pool_run(items > 1 ? c->pool : NULL, qlinear_quant_item, &t, ((int64_t)N + t.chunk - 1) / t.chunk);
    t.q.rows = (int32_t)N;
    want = xnor_exec_want_items(c, xnor_mul_sat(t.q.nd->macs, N), GRAIN_Q);
    split(&t.q, want, st->rt_max, st->bt_max, 1);
    xnor_pool_run(want > 1 ? c->pool : NULL, qlinear_item, &t, (int64_t)t.q.nrt * t.q.nbt);
}
