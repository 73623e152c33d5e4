/* exec.c -- runs one plan step: work splitting over the pool, kernel calls, epilogues,
 * and the small ops (pooling, batchnorm, relu, add, softmax, flatten, layout changes).
 *
 * Activations are NHWC float per image; 2-D values are [N][F] (a 1 x N "image").
 * Work items are tiles (image, rows, 16-channel blocks) for the convolutions and row or
 * element ranges for the rest. Their count aims at a multiple of the thread count
 * (at most 4 per thread, for balance with the pool's dynamic hand-out) and shrinks to
 * one (inline, no synchronisation) when a layer is too small to be worth splitting.
 *
 * Float32 bit-exactness with the reference (engine/reference.py) in XNOR layers: every
 * arithmetic step below is a separate float32 operation in the order FORMAT.md gives,
 * and the build disables FP contraction.
 */
#include <math.h>
#include <string.h>

#include "context.h"

/* Work (in MAC-like units) below which a split is not worth a pool dispatch. */
#define GRAIN_FLOAT 150000ull     /* float MACs */
#define GRAIN_BINARY 2000000ull   /* binary MACs (a 32-bit XOR-popcount is 32) */
#define GRAIN_ELEM 32768ull       /* elementwise ops */
#define GRAIN_PACK 8192ull        /* binarize + pack (a handful of vector ops per 16 values) */

typedef struct {
    xnor_context_t *c;
    const xstep *st;
    const xnode *nd;
    const xnode *bn; /* batchnorm folded into the binarization (XNOR) or NULL */
    const xnode *bn_epi; /* batchnorm folded into the fconv epilogue or NULL */
    uint32_t N;
    const float *in, *in2;
    float *out;
    int32_t relu;
    /* tiling */
    int32_t rows, rt, nrt, nb, bt, nbt; /* for 2-D ops rows are samples */
    int64_t chunk, total;               /* flat ranges */
} task;

static inline int32_t min32(int32_t a, int32_t b) { return a < b ? a : b; }

/* How many items a layer of `work` units (at `grain` per worthwhile item) should use. */
static int64_t want_items(const xnor_context_t *c, uint64_t work, uint64_t grain) {
    int64_t T = c->n_threads;
    if (T <= 1) return 1;
    uint64_t d = work / grain;
    if (d < (uint64_t)T) return 1;
    int64_t cap = 4 * T;
    if (d >= (uint64_t)cap) return cap;
    return (int64_t)((d + (uint64_t)T - 1) / (uint64_t)T) * T;
}

int64_t xnor_exec_want_items(const xnor_context_t *c, uint64_t work, uint64_t grain) {
    return want_items(c, work, grain);
}

/* 2-D ops put the batch in the rows: N counts only for maps. */
static void tile(task *t, int64_t want, int32_t rt_max, int32_t bt_max, int blocks_first) {
    xnor_split_tiles(t->rows, t->nb, blocks_first ? 1 : t->N, want, rt_max, bt_max, blocks_first, &t->rt,
                     &t->nrt, &t->bt, &t->nbt);
}

/* Split rows and blocks for a pool of T threads handing out items dynamically: the
 * (rows, blocks) split, within the scratch bounds rt_max x bt_max, whose slowest thread
 * does the least work (ceil(items / T) items of rt x bt each), and among those the one
 * with the fewest items. Equal items matter on small maps: 13 rows x 24 blocks over 2
 * threads as 3 x 3 tiles (rows 5, 5, 3) leaves one thread a fifth idle, 1 x 4 tiles of
 * 6 blocks none. The search is bounded (64 x 64 candidates) and runs once per step. */
static void tile_balanced(task *t, int64_t want, int32_t rt_max, int32_t bt_max) {
    const int64_t T = want > 1 ? t->c->n_threads : 1;
    const int64_t N = t->N;
    const int32_t r_lo = ceil_div32(t->rows, rt_max), b_lo = ceil_div32(t->nb, bt_max);
    const int32_t r_hi = r_lo > min32(t->rows, 64) ? r_lo : min32(t->rows, 64);
    const int32_t b_hi = b_lo > min32(t->nb, 64) ? b_lo : min32(t->nb, 64);
    uint64_t best_cost = UINT64_MAX;
    int64_t best_items = INT64_MAX;
    t->rt = ceil_div32(t->rows, r_lo);
    t->bt = ceil_div32(t->nb, b_lo);
    for (int32_t nr = r_lo; nr <= r_hi; nr++) {
        const int32_t rt = ceil_div32(t->rows, nr);
        if (nr > r_lo && rt == ceil_div32(t->rows, nr - 1)) continue; /* same split as nr - 1 */
        for (int32_t nbk = b_lo; nbk <= b_hi; nbk++) {
            const int32_t bt = ceil_div32(t->nb, nbk);
            if (nbk > b_lo && bt == ceil_div32(t->nb, nbk - 1)) continue;
            const int64_t items = N * ceil_div32(t->rows, rt) * ceil_div32(t->nb, bt);
            const uint64_t cost = (uint64_t)((items + T - 1) / T) * (uint64_t)rt * (uint64_t)bt;
            if (cost < best_cost || (cost == best_cost && items < best_items)) {
                best_cost = cost;
                best_items = items;
                t->rt = rt;
                t->bt = bt;
            }
        }
    }
    t->nrt = ceil_div32(t->rows, t->rt);
    t->nbt = ceil_div32(t->nb, t->bt);
}

/* Small layers run inline on the caller: a pool dispatch would cost more than the work. */
static inline xnor_pool *pool_if(const xnor_context_t *c, int64_t want) { return want > 1 ? c->pool : NULL; }

static inline float relu_f(float v) { return v > 0.0f ? v : 0.0f; }

/* ================================================================ layout */

typedef struct {
    const float *src;
    float *dst;
    uint32_t C, H, W;
    int64_t parts;     /* items per image: equal ranges of 64-pixel blocks */
} tr_task;

static void nchw_to_nhwc_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const tr_task *t = arg;
    const size_t HW = (size_t)t->H * t->W, C = t->C;
    const size_t n = (size_t)(item / t->parts), part = (size_t)(item % t->parts);
    const size_t nblk = (HW + 63) / 64, per = (nblk + (size_t)t->parts - 1) / (size_t)t->parts;
    const size_t q0 = part * per * 64 < HW ? part * per * 64 : HW;
    const size_t q1 = (part + 1) * per * 64 < HW ? (part + 1) * per * 64 : HW;
    const float *s = t->src + n * HW * C;
    float *d = t->dst + n * HW * C;
    if (C == 1) {
        memcpy(d + q0, s + q0, (q1 - q0) * sizeof(float));
        return;
    }
    /* Blocks of 64 pixels: the strided writes of one block stay in L1 across channels. */
    for (size_t p0 = q0; p0 < q1; p0 += 64) {
        const size_t p1 = p0 + 64 < q1 ? p0 + 64 : q1;
        for (size_t c = 0; c < C; c++) {
            const float *restrict sc = s + c * HW;
            float *restrict dc = d + c;
            for (size_t p = p0; p < p1; p++) dc[p * C] = sc[p];
        }
    }
}

void xnor_exec_nchw_to_nhwc(xnor_context_t *c, const float *src, float *dst, uint32_t N, uint32_t C, uint32_t H,
                            uint32_t W) {
    uint64_t work = (uint64_t)N * C * H * W;
    const int64_t want = want_items(c, work, GRAIN_ELEM * 4);
    /* Few images: split each one into pixel ranges so that batch 1 runs on every thread. */
    const int64_t nblk = ((int64_t)H * W + 63) / 64;
    int64_t parts = want > (int64_t)N ? (want + (int64_t)N - 1) / (int64_t)N : 1;
    if (parts > nblk) parts = nblk;
    tr_task t = {src, dst, C, H, W, parts};
    xnor_pool_run(pool_if(c, want), nchw_to_nhwc_item, &t, (int64_t)N * parts);
}

typedef struct {
    const uint8_t *src;
    float *dst;
    const float (*lut)[256];
    size_t per;
    uint32_t C;
} u8_task;

static void u8_to_f32_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const u8_task *t = arg;
    const uint8_t *restrict s = t->src + (size_t)item * t->per;
    float *restrict d = t->dst + (size_t)item * t->per;
    const size_t C = t->C;
    if (C == 1) {
        const float *lut = t->lut[0];
        for (size_t i = 0; i < t->per; i++) d[i] = lut[s[i]];
    } else if (C == 3) {
        const float *l0 = t->lut[0], *l1 = t->lut[1], *l2 = t->lut[2];
        for (size_t i = 0; i < t->per; i += 3) {
            d[i] = l0[s[i]];
            d[i + 1] = l1[s[i + 1]];
            d[i + 2] = l2[s[i + 2]];
        }
    } else {
        for (size_t i = 0; i < t->per; i += C)
            for (size_t ch = 0; ch < C; ch++) d[i + ch] = t->lut[ch < 4 ? ch : 4][s[i + ch]];
    }
}

/* uint8 NHWC pixels -> normalized float NHWC (the model's preprocessing, by lookup). */
void xnor_exec_u8_to_f32(xnor_context_t *c, const uint8_t *src, float *dst, uint32_t N, uint32_t C, uint32_t H,
                         uint32_t W) {
    u8_task t = {src, dst, c->m->norm_lut, (size_t)C * H * W, C};
    uint64_t work = (uint64_t)N * C * H * W;
    xnor_pool_run(pool_if(c, want_items(c, work, GRAIN_ELEM * 4)), u8_to_f32_item, &t, N);
}

void xnor_nhwc_to_nchw(const float *src, float *dst, uint32_t N, uint32_t C, uint32_t H, uint32_t W) {
    const size_t HW = (size_t)H * W;
    for (uint32_t n = 0; n < N; n++) {
        const float *s = src + (size_t)n * HW * C;
        float *d = dst + (size_t)n * HW * C;
        for (size_t p0 = 0; p0 < HW; p0 += 64) {
            const size_t p1 = p0 + 64 < HW ? p0 + 64 : HW;
            for (size_t ch = 0; ch < C; ch++) {
                const float *restrict sc = s + ch;
                float *restrict dc = d + ch * HW;
                for (size_t p = p0; p < p1; p++) dc[p] = sc[p * C];
            }
        }
    }
}

/* ================================================================ padding copy */

static void pad_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const task *t = arg;
    const xnode *nd = t->nd;
    const size_t C = nd->in_shape.c, H = nd->in_shape.h, W = nd->in_shape.w;
    const size_t Wp = W + (size_t)nd->pl + (size_t)nd->pr;
    const size_t n = (size_t)(item / t->nrt), y0 = (size_t)(item % t->nrt) * (size_t)t->rt;
    const size_t y1 = y0 + (size_t)t->rt < H ? y0 + (size_t)t->rt : H;
    const float *src = t->in + n * H * W * C;
    float *dst = (float *)t->st->ws + n * t->st->ws_per_image;
    for (size_t y = y0; y < y1; y++)
        memcpy(dst + ((y + (size_t)nd->pt) * Wp + (size_t)nd->pl) * C, src + y * W * C, W * C * sizeof(float));
}

/* Copy the input into the zero-halo buffer; returns the buffer. */
static const float *pad_input(task *t) {
    const xnode *nd = t->nd;
    if (t->st->ws_kind != WS_PAD_F32) return t->in;
    task pt = *t;
    pt.rows = (int32_t)nd->in_shape.h;
    int64_t want = want_items(t->c, (uint64_t)t->N * xshape_elems(&nd->in_shape), GRAIN_ELEM * 4);
    pt.nrt = (int32_t)(want / t->N) > 1 ? min32((int32_t)(want / t->N), pt.rows) : 1;
    pt.rt = ceil_div32(pt.rows, pt.nrt);
    pt.nrt = ceil_div32(pt.rows, pt.rt);
    xnor_pool_run(pool_if(t->c, want), pad_item, &pt, (int64_t)t->N * pt.nrt);
    return (const float *)t->st->ws;
}

/* ================================================================ float conv / linear, BWN */

/* One tile of a float conv / linear (fconv kernel: + bias, then a folded batchnorm and
 * relu in its epilogue) or of a BWN conv / linear (bwnconv kernel: +-x from the 1-bit
 * weights, then * alpha (+ bias) (relu) in its epilogue). */
static void fconv_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const task *t = arg;
    const xnode *nd = t->nd;
    const xtile tl = xnor_tile_at(item, t->rows, t->rt, t->nrt, t->nb, t->bt, t->nbt);
    const size_t n = (size_t)tl.n;
    const int32_t b0 = tl.b0, b1 = tl.b1, y0 = tl.y0, y1 = tl.y1;
    const float *in;
    float *out;
    int32_t Hp, Wp, C, oh, ow, ky0, ky1;
    if (nd->op == XNOR_OP_CONV2D || nd->op == XNOR_OP_BCONV2D) {
        Hp = (int32_t)(nd->in_shape.h + (size_t)nd->pt + (size_t)nd->pb);
        Wp = (int32_t)(nd->in_shape.w + (size_t)nd->pl + (size_t)nd->pr);
        C = (int32_t)nd->in_shape.c;
        oh = (int32_t)nd->out_shape.h;
        ow = (int32_t)nd->out_shape.w;
        in = t->in + n * (size_t)Hp * (size_t)Wp * (size_t)C;
        out = t->out + n * (size_t)oh * (size_t)ow * (size_t)nd->O;
        ky0 = y0;
        ky1 = y1;
    } else { /* linear: the samples [y0, y1) are a 1 x (y1-y0) image */
        C = (int32_t)nd->in_shape.c;
        in = t->in + (size_t)y0 * (size_t)C;
        out = t->out + (size_t)y0 * (size_t)nd->O;
        Hp = 1;
        Wp = ow = y1 - y0;
        oh = 1;
        ky0 = 0;
        ky1 = 1;
    }
    /* BWN nodes carry sign masks (wm) and alpha; float ones float weights (wf) and may have
     * a batchnorm folded into the epilogue. The unused fields stay NULL. */
    const int bwn = nd->wm != NULL;
    const xnor_conv_args a = {
        .in = in,
        .Hp = Hp,
        .Wp = Wp,
        .C = C,
        .wf = bwn ? NULL : nd->wf,
        .wm = nd->wm,
        .alpha = bwn ? nd->alpha : NULL,
        .bias = nd->bias,
        .kh = nd->kh,
        .kw = nd->kw,
        .sh = nd->sh,
        .sw = nd->sw,
        .oh = oh,
        .ow = ow,
        .O = nd->O,
        .out = out,
        .ldo = nd->O,
        .relu = t->relu,
        .y0 = ky0,
        .y1 = ky1,
        .b0 = b0,
        .b1 = b1,
        .scale = !bwn && t->bn_epi ? t->bn_epi->bn_scale : NULL, /* (acc + bias) * scale + shift */
        .shift = !bwn && t->bn_epi ? t->bn_epi->bn_shift : NULL,
        .layer_blocks = nd->nb,
    };
    if (bwn)
        t->c->kt->bwnconv(&a);
    else
        t->c->kt->fconv(&a);
}

static void run_fconv(task *t) {
    const xnode *nd = t->nd;
    t->nb = nd->nb;
    if (nd->op == XNOR_OP_CONV2D || nd->op == XNOR_OP_BCONV2D) {
        t->in = pad_input(t);
        t->rows = (int32_t)nd->out_shape.h;
        int64_t want = want_items(t->c, xnor_mul_sat(nd->macs, t->N), GRAIN_FLOAT);
        tile(t, want, t->rows, t->nb, 0);
        xnor_pool_run(pool_if(t->c, want), fconv_item, t, (int64_t)t->N * t->nrt * t->nbt);
    } else {
        t->rows = (int32_t)t->N;
        int64_t want = want_items(t->c, xnor_mul_sat(nd->macs, t->N), GRAIN_FLOAT);
        tile(t, want, 256, t->nb, 1);
        xnor_pool_run(pool_if(t->c, want), fconv_item, t, (int64_t)t->nrt * t->nbt);
    }
}

/* ================================================================ XNOR bconv2d / blinear */

/* One entry of the A map (XNOR-Net's K): the mean over C channels of |v|, v = x (or
 * x * sc + sf with the folded batchnorm), summed in channel order. */
static inline float mean_abs(const float *x, size_t C, const float *sc, const float *sf) {
    float s = 0.0f;
    if (sc) {
        for (size_t ch = 0; ch < C; ch++) {
            float v = x[ch] * sc[ch];
            v = v + sf[ch];
            s += fabsf(v);
        }
    } else {
        for (size_t ch = 0; ch < C; ch++) s += fabsf(x[ch]);
    }
    return s / (float)C;
}

/* Binarize (with the folded batchnorm) into the packed buffer, and the A map / K. */
static void xpack_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const task *t = arg;
    const xnode *nd = t->nd;
    const float *sc = t->bn ? t->bn->bn_scale : NULL, *sf = t->bn ? t->bn->bn_shift : NULL;
    const size_t C = nd->in_shape.c;
    xnor_pack_args a;
    a.scale = sc;
    a.shift = sf;
    a.C = (int32_t)C;
    a.cw = nd->cw;
    if (nd->op == XNOR_OP_BCONV2D) {
        const size_t H = nd->in_shape.h, W = nd->in_shape.w;
        const size_t n = (size_t)(item / t->nrt);
        const int32_t y0 = (int32_t)(item % t->nrt) * t->rt, y1 = min32((int32_t)H, y0 + t->rt);
        a.in = t->in + n * H * W * C;
        a.H = (int32_t)H;
        a.W = (int32_t)W;
        a.out = (uint32_t *)t->st->ws + n * t->st->ws_per_image;
        a.Wp = (int32_t)(W + (size_t)nd->pl + (size_t)nd->pr);
        a.pt = nd->pt;
        a.pl = nd->pl;
        a.y0 = y0;
        a.y1 = y1;
        t->c->kt->pack(&a);
        if (nd->use_k) {
            /* A[y][x] = (sequential sum over c of |v|) / C, v the (batch-normed) input. */
            float *A = t->c->aux + n * t->c->aux_per_image;
            for (size_t p = (size_t)y0 * W; p < (size_t)y1 * W; p++) A[p] = mean_abs(a.in + p * C, C, sc, sf);
        }
    } else if (nd->pk_flat >= 0) {
        /* blinear with weights in packed map order (fold.c): each sample's input is the
         * flatten's NHWC input map, packed as a map (no halo); samples [s0, s1). */
        const xshape *map = &t->c->m->nodes[nd->pk_flat].in_shape;
        const int32_t s0 = (int32_t)item * t->rt, s1 = min32((int32_t)t->N, s0 + t->rt);
        a.C = (int32_t)map->c;
        a.cw = (int32_t)((map->c + 31) / 32);
        a.H = (int32_t)map->h;
        a.W = a.Wp = (int32_t)map->w;
        a.pt = a.pl = 0;
        a.y0 = 0;
        a.y1 = a.H;
        for (int32_t sidx = s0; sidx < s1; sidx++) {
            a.in = t->in + (size_t)sidx * xshape_elems(map);
            a.out = (uint32_t *)t->st->ws + (size_t)sidx * (size_t)nd->cw;
            t->c->kt->pack(&a);
        }
    } else { /* blinear: samples [s0, s1) */
        const int32_t s0 = (int32_t)item * t->rt, s1 = min32((int32_t)t->N, s0 + t->rt);
        a.in = t->in + (size_t)s0 * C;
        a.H = 1;
        a.W = s1 - s0;
        a.out = (uint32_t *)t->st->ws + (size_t)s0 * (size_t)nd->cw;
        a.Wp = s1 - s0;
        a.pt = 0;
        a.pl = 0;
        a.y0 = 0;
        a.y1 = 1;
        t->c->kt->pack(&a);
        if (nd->use_k) {
            for (int32_t sidx = s0; sidx < s1; sidx++)
                t->c->aux[sidx] = mean_abs(t->in + (size_t)sidx * C, C, sc, sf);
        }
    }
}

/* out[o] for o in [o0, o1) from XOR popcounts over the in-bounds taps, FORMAT.md order:
 * dot = n_valid - 2 pop; v = float(dot) * alpha; v *= K; v += bias; relu.
 * One simple pass per step over the (L1-resident) row keeps every loop branch-free and
 * vectorizable; the float32 rounding sequence per element is unchanged. */
static inline void xnor_epilogue_px(const int32_t *restrict pop, float *restrict out, int32_t o0, int32_t o1,
                                    int32_t nvalid, const float *restrict alpha, const float *restrict bias,
                                    int use_k, float k, int relu) {
    const int32_t n = o1 - o0;
    float *restrict y = out + o0;
    const float *restrict al = alpha + o0;
    for (int32_t i = 0; i < n; i++) y[i] = (float)(nvalid - 2 * pop[i]) * al[i];
    if (use_k)
        for (int32_t i = 0; i < n; i++) y[i] = y[i] * k;
    if (bias) {
        const float *restrict b = bias + o0;
        for (int32_t i = 0; i < n; i++) y[i] = y[i] + b[i];
    }
    if (relu)
        for (int32_t i = 0; i < n; i++) y[i] = relu_f(y[i]);
}

/* Where packed input bits for XNOR layer cn go in its step's workspace (per image): pixel
 * (y, x) at word ((y + pt) * Wp + x + pl) * ceil(channels / 32). A bconv2d's is its zero-halo
 * map; a blinear reading a flattened map (pk_flat) takes the map's pixels in order. */
typedef struct {
    size_t pt, pl, Wp;
} packed_dest;

static inline packed_dest packed_dest_of(const xnor_model_t *m, const xnode *cn) {
    packed_dest d;
    if (cn->pk_flat >= 0) {
        d.pt = d.pl = 0;
        d.Wp = m->nodes[cn->pk_flat].in_shape.w;
    } else {
        d.pt = (size_t)cn->pt;
        d.pl = (size_t)cn->pl;
        d.Wp = cn->in_shape.w + (size_t)cn->pl + (size_t)cn->pr;
    }
    return d;
}

/* Packed epilogue (fold.c): the next XNOR layer's input bits for output rows [y0, y1) and
 * blocks [b0, b1) of image n, from the popcount tile. Each 16-channel block is one uint16
 * half of a packed word (little-endian: block 2w is bits 0-15 of word w), so items that
 * split blocks never write the same bytes. Per pixel, one branch-free pass over the tile's
 * channels forms each dot product and its 0/1 byte (vectorized by the compiler), the few
 * channels that need the float chain are redone, and 8 bytes at a time become 8 bits. */
static void packed_epilogue(const task *t, size_t n, int32_t y0, int32_t y1, int32_t b0, int32_t b1,
                            const int32_t *pop) {
    const xnode *nd = t->nd;
    const xnor_model_t *m = t->c->m;
    const xstep *cs = &t->c->steps[t->st->pack_to];
    const xnode *cn = &m->nodes[cs->node];
    const xnode *bn = nd->pk_bn >= 0 ? &m->nodes[nd->pk_bn] : NULL;
    /* Into the consumer's input, or the pool step's unpadded map. */
    const packed_dest d = cs->bitpool ? (packed_dest){0, 0, nd->out_shape.w} : packed_dest_of(m, cn);
    const size_t pt = d.pt, pl = d.pl, Wp = d.Wp;
    const size_t cw = ((size_t)nd->O + 31) / 32;
    const uint32_t *dst = (const uint32_t *)cs->ws + n * cs->ws_per_image;
    const int32_t ow = (int32_t)nd->out_shape.w;
    const int32_t ldp = nd->nb * 16, nbl = b1 - b0, o0 = b0 * 16, nch = 16 * nbl;
    const int relu = nd->pk_relu >= 0;
    uint8_t bit[16 * XNOR_BT_MAX + 8];
    for (int32_t y = y0; y < y1; y++) {
        const int32_t ky0 = nd->row_k[2 * y], ky1 = nd->row_k[2 * y + 1];
        for (int32_t x = 0; x < ow; x++) {
            const int32_t kx0 = nd->col_k[2 * x], kx1 = nd->col_k[2 * x + 1];
            const int32_t taps = (ky1 - ky0) * (kx1 - kx0), nvalid = nd->C * taps;
            const int32_t *restrict lo = nd->pk_lo + (size_t)nd->pk_kind[taps] * (size_t)ldp + o0;
            const int32_t *restrict hi = nd->pk_hi + (size_t)nd->pk_kind[taps] * (size_t)ldp + o0;
            const int32_t *restrict p = pop + ((size_t)(y - y0) * (size_t)ow + (size_t)x) * (size_t)nch;
            int32_t dot[16 * XNOR_BT_MAX];
            for (int32_t i = 0; i < nch; i++) dot[i] = nvalid - 2 * p[i];
            for (int32_t i = 0; i < nch; i++) bit[i] = (uint8_t)((dot[i] >= lo[i]) & (dot[i] <= hi[i]));
            for (int32_t j = 0; j < nd->pk_nfloat; j++) {
                const int32_t o = nd->pk_float_ch[j];
                if (o < o0 || o >= o0 + nch) continue;
                bit[o - o0] = (uint8_t)xnor_packed_bit(dot[o - o0], nd->alpha[o], nd->bias ? &nd->bias[o] : NULL, relu,
                                                       bn ? &bn->bn_scale[o] : NULL, bn ? &bn->bn_shift[o] : NULL);
            }
            uint16_t *wp = (uint16_t *)(uintptr_t)(dst + (((size_t)y + pt) * Wp + (size_t)x + pl) * cw);
            for (int32_t k = 0; k < nbl; k++) {
                /* bytes b_0..b_7 (each 0 or 1) -> bits 0..7: b_i * 2^(8i) * 2^(56 - 7i) lands on
                 * bit 56 + i, and no two products share a bit, so nothing carries. */
                uint64_t lo8, hi8;
                memcpy(&lo8, bit + 16 * k, 8);
                memcpy(&hi8, bit + 16 * k + 8, 8);
                const uint64_t mul = 0x0102040810204080ull;
                wp[b0 + k] = (uint16_t)(((lo8 * mul) >> 56) | (((hi8 * mul) >> 56) << 8));
            }
        }
    }
}

static void xconv_item(void *arg, int64_t item, int tid) {
    const task *t = arg;
    const xnode *nd = t->nd;
    const xstep *st = t->st;
    const xtile tl = xnor_tile_at(item, t->rows, t->rt, t->nrt, t->nb, t->bt, t->nbt);
    const size_t n = (size_t)tl.n;
    const int32_t b0 = tl.b0, b1 = tl.b1, nbl = b1 - b0, y0 = tl.y0, y1 = tl.y1;
    const int32_t kh = nd->kh, kw = nd->kw, cw = nd->cw;
    const size_t H = nd->in_shape.h, W = nd->in_shape.w, C = nd->in_shape.c;
    const size_t Hp = H + (size_t)nd->pt + (size_t)nd->pb, Wp = W + (size_t)nd->pl + (size_t)nd->pr;
    const int32_t oh = (int32_t)nd->out_shape.h, ow = (int32_t)nd->out_shape.w;
    const size_t O = (size_t)nd->O;
    int32_t *pop = (int32_t *)t->c->scratch[tid];
    float *ktile = (float *)(pop + (size_t)t->rt * (size_t)ow * 16 * (size_t)nbl);

    /* The kernel sees a sub-problem: rows from y0, blocks from b0, output at the tile. */
    xnor_bconv_args a;
    a.in = (const uint32_t *)st->ws + n * st->ws_per_image + (size_t)y0 * (size_t)nd->sh * Wp * (size_t)cw;
    a.Hp = (int32_t)(Hp - (size_t)y0 * (size_t)nd->sh);
    a.Wp = (int32_t)Wp;
    a.cw = cw;
    a.w = nd->wbits + (size_t)b0 * (size_t)kh * (size_t)kw * (size_t)cw * 16;
    a.kh = kh;
    a.kw = kw;
    a.sh = nd->sh;
    a.sw = nd->sw;
    a.oh = y1 - y0;
    a.ow = ow;
    a.out = pop;
    a.out_stride = 16 * nbl;
    a.y0 = 0;
    a.y1 = y1 - y0;
    a.b0 = 0;
    a.b1 = nbl;
    a.row_k = nd->row_k + 2 * (size_t)y0; /* the kernel skips the zero halo's taps */
    a.col_k = nd->col_k;
    t->c->kt->bconv(&a);

    if (st->pack_to >= 0) {
        packed_epilogue(t, n, y0, y1, b0, b1, pop);
        return;
    }

    if (nd->use_k) {
        /* K[y][x] = (sum over in-bounds taps, row-major, of A) / (kh*kw). */
        const float *A = t->c->aux + n * t->c->aux_per_image;
        const float div = (float)(kh * kw);
        for (int32_t y = y0; y < y1; y++) {
            const int32_t ky0 = nd->row_k[2 * y], ky1 = nd->row_k[2 * y + 1];
            const int32_t iy0 = y * nd->sh - nd->pt;
            for (int32_t x = 0; x < ow; x++) {
                const int32_t kx0 = nd->col_k[2 * x], kx1 = nd->col_k[2 * x + 1];
                const int32_t ix0 = x * nd->sw - nd->pl;
                float s = 0.0f;
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    /* ix0 may be negative (left padding): index with ix0 + kx >= 0 instead of
                     * forming a pointer before the row, which C does not allow. */
                    const float *ar = A + (size_t)(iy0 + ky) * W;
                    for (int32_t kx = kx0; kx < kx1; kx++) s += ar[ix0 + kx];
                }
                ktile[(size_t)(y - y0) * (size_t)ow + (size_t)x] = s / div;
            }
        }
    }

    const int32_t o0 = b0 * 16, o1 = min32(nd->O, b1 * 16);
    float *outn = t->out + n * (size_t)oh * (size_t)ow * O;
    for (int32_t y = y0; y < y1; y++) {
        const int32_t ky0 = nd->row_k[2 * y], ky1 = nd->row_k[2 * y + 1];
        for (int32_t x = 0; x < ow; x++) {
            const int32_t kx0 = nd->col_k[2 * x], kx1 = nd->col_k[2 * x + 1];
            const int32_t nvalid = (int32_t)C * (ky1 - ky0) * (kx1 - kx0);
            const int32_t *prow = pop + ((size_t)(y - y0) * (size_t)ow + (size_t)x) * (size_t)(16 * nbl);
            float *orow = outn + ((size_t)y * (size_t)ow + (size_t)x) * O;
            const float k = nd->use_k ? ktile[(size_t)(y - y0) * (size_t)ow + (size_t)x] : 0.0f;
            xnor_epilogue_px(prow, orow, o0, o1, nvalid, nd->alpha, nd->bias, nd->use_k, k, t->relu);
        }
    }
}

static void xlinear_item(void *arg, int64_t item, int tid) {
    const task *t = arg;
    const xnode *nd = t->nd;
    const xstep *st = t->st;
    const xtile tl = xnor_tile_at(item, t->rows, t->rt, t->nrt, t->nb, t->bt, t->nbt);
    const int32_t b0 = tl.b0, b1 = tl.b1, nbl = b1 - b0, s0 = tl.y0, s1 = tl.y1; /* rows are samples */
    const int32_t cw = nd->cw;
    int32_t *pop = (int32_t *)t->c->scratch[tid];
    xnor_bconv_args a;
    a.in = (const uint32_t *)st->ws + (size_t)s0 * (size_t)cw;
    a.Hp = 1;
    a.Wp = s1 - s0;
    a.cw = cw;
    a.w = nd->wbits + (size_t)b0 * (size_t)cw * 16;
    a.kh = a.kw = a.sh = a.sw = 1;
    a.oh = 1;
    a.ow = s1 - s0;
    a.out = pop;
    a.out_stride = 16 * nbl;
    a.y0 = 0;
    a.y1 = 1;
    a.b0 = 0;
    a.b1 = nbl;
    a.row_k = a.col_k = NULL;
    t->c->kt->bconv(&a);
    const int32_t o0 = b0 * 16, o1 = min32(nd->O, b1 * 16);
    const int32_t F = (int32_t)nd->in_shape.c;
    for (int32_t s = s0; s < s1; s++) {
        const float k = nd->use_k ? t->c->aux[s] : 0.0f;
        xnor_epilogue_px(pop + (size_t)(s - s0) * (size_t)(16 * nbl), t->out + (size_t)s * (size_t)nd->O, o0, o1, F,
                         nd->alpha, nd->bias, nd->use_k, k, t->relu);
    }
}

static void run_xnor(task *t) {
    const xnode *nd = t->nd;
    const xstep *st = t->st;
    t->nb = nd->nb;
    uint64_t bwork = xnor_mul_sat(nd->macs, t->N);
    if (nd->op == XNOR_OP_BCONV2D) {
        int64_t want;
        if (!st->prepacked) { /* else the producer's packed epilogue wrote the input bits */
            /* pack: items over (image, input rows) */
            task pk = *t;
            pk.rows = (int32_t)nd->in_shape.h;
            want = want_items(t->c, (uint64_t)t->N * xshape_elems(&nd->in_shape), GRAIN_PACK);
            pk.nrt = want / t->N > 1 ? min32((int32_t)(want / t->N), pk.rows) : 1;
            pk.rt = ceil_div32(pk.rows, pk.nrt);
            pk.nrt = ceil_div32(pk.rows, pk.rt);
            xnor_pool_run(pool_if(t->c, want), xpack_item, &pk, (int64_t)t->N * pk.nrt);
        }
        t->rows = (int32_t)nd->out_shape.h;
        want = want_items(t->c, bwork, GRAIN_BINARY);
        tile_balanced(t, want, st->rt_max, st->bt_max);
        xnor_pool_run(pool_if(t->c, want), xconv_item, t, (int64_t)t->N * t->nrt * t->nbt);
    } else {
        int64_t want;
        if (!st->prepacked) { /* else the producer's packed epilogue wrote the input bits */
            task pk = *t;
            want = want_items(t->c, (uint64_t)t->N * nd->in_shape.c, GRAIN_ELEM);
            int32_t nch = want > 1 ? min32((int32_t)want, (int32_t)t->N) : 1;
            pk.rt = ceil_div32((int32_t)t->N, nch);
            xnor_pool_run(pool_if(t->c, want), xpack_item, &pk, ceil_div32((int32_t)t->N, pk.rt));
        }
        t->rows = (int32_t)t->N;
        want = want_items(t->c, bwork, GRAIN_BINARY);
        tile(t, want, st->rt_max, st->bt_max, 1);
        xnor_pool_run(pool_if(t->c, want), xlinear_item, t, (int64_t)t->nrt * t->nbt);
    }
}

/* ================================================================ pooling */

/* A pooling window along one axis: output o starts at input s = o * stride - pad; its taps
 * [k0, k1) are the ones inside [0, size). */
static inline void window_taps(int32_t o, int32_t stride, int32_t pad, int32_t k, int32_t size, int32_t *s,
                               int32_t *k0, int32_t *k1) {
    *s = o * stride - pad;
    *k0 = *s < 0 ? -*s : 0;
    *k1 = min32(k, size - *s);
}

/* A pooling window at output (y, x): input rows sy + [ky0, ky1), columns sx + [kx0, kx1). */
typedef struct {
    int32_t sy, ky0, ky1, sx, kx0, kx1;
} pool_window;

static inline pool_window window_at(const xnode *nd, int32_t y, int32_t x) {
    pool_window w;
    window_taps(y, nd->sh, nd->pt, nd->kh, (int32_t)nd->in_shape.h, &w.sy, &w.ky0, &w.ky1);
    window_taps(x, nd->sw, nd->pl, nd->kw, (int32_t)nd->in_shape.w, &w.sx, &w.kx0, &w.kx1);
    return w;
}

static void pool_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const task *t = arg;
    const xnode *nd = t->nd;
    const size_t C = nd->in_shape.c;
    const int32_t H = (int32_t)nd->in_shape.h, W = (int32_t)nd->in_shape.w;
    const int32_t oh = (int32_t)nd->out_shape.h, ow = (int32_t)nd->out_shape.w;
    const size_t n = (size_t)(item / t->nrt);
    const int32_t y0 = (int32_t)(item % t->nrt) * t->rt, y1 = min32(oh, y0 + t->rt);
    const float *in = t->in + n * (size_t)H * (size_t)W * C;
    float *out = t->out + n * (size_t)oh * (size_t)ow * C;
    const int is_max = nd->op == XNOR_OP_MAXPOOL;
    const int cip = nd->p[XP_CIP];
    for (int32_t y = y0; y < y1; y++) {
        for (int32_t x = 0; x < ow; x++) {
            const pool_window win = window_at(nd, y, x);
            float *o = out + ((size_t)y * (size_t)ow + (size_t)x) * C;
            if (is_max) {
                for (size_t ch = 0; ch < C; ch++) o[ch] = -INFINITY;
                for (int32_t ky = win.ky0; ky < win.ky1; ky++)
                    for (int32_t kx = win.kx0; kx < win.kx1; kx++) {
                        const float *ip = in + ((size_t)(win.sy + ky) * (size_t)W + (size_t)(win.sx + kx)) * C;
                        for (size_t ch = 0; ch < C; ch++) o[ch] = ip[ch] > o[ch] ? ip[ch] : o[ch];
                    }
            } else {
                int32_t cnt;
                if (cip) {
                    /* window cells inside the padded input [-pt, H+pb) x [-pl, W+pr) */
                    int32_t ey = min32(win.sy + nd->kh, H + nd->pb), ex = min32(win.sx + nd->kw, W + nd->pr);
                    cnt = (ey - win.sy) * (ex - win.sx);
                } else {
                    cnt = (win.ky1 - win.ky0) * (win.kx1 - win.kx0);
                }
                for (size_t ch = 0; ch < C; ch++) o[ch] = 0.0f;
                for (int32_t ky = win.ky0; ky < win.ky1; ky++)
                    for (int32_t kx = win.kx0; kx < win.kx1; kx++) {
                        const float *ip = in + ((size_t)(win.sy + ky) * (size_t)W + (size_t)(win.sx + kx)) * C;
                        for (size_t ch = 0; ch < C; ch++) o[ch] = o[ch] + ip[ch];
                    }
                const float d = (float)cnt;
                for (size_t ch = 0; ch < C; ch++) o[ch] = o[ch] / d;
            }
        }
    }
}

/* Max-pool of packed bits (fold.c): per word, OR of the window for channels whose bit grows
 * with the pooled value, AND for those whose bit falls (the producer's pk_and mask), into
 * the consumer's zero-halo packed input. Rows [y0, y1) of image item / nrt. */
static void bitpool_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const task *t = arg;
    const xnode *nd = t->nd;
    const xnor_model_t *m = t->c->m;
    const xnode *pr = &m->nodes[t->st->pack_from];
    const xstep *cs = &t->c->steps[t->st->pack_to];
    const xnode *cn = &m->nodes[cs->node];
    const size_t cw = ((size_t)nd->in_shape.c + 31) / 32;
    const int32_t W = (int32_t)nd->in_shape.w, ow = (int32_t)nd->out_shape.w;
    const packed_dest d = packed_dest_of(m, cn);
    const size_t n = (size_t)(item / t->nrt);
    const int32_t y0 = (int32_t)(item % t->nrt) * t->rt, y1 = min32((int32_t)nd->out_shape.h, y0 + t->rt);
    const uint32_t *in = (const uint32_t *)t->st->ws + n * t->st->ws_per_image;
    uint32_t *out = (uint32_t *)cs->ws + n * cs->ws_per_image;
    const uint32_t *andm = pr->pk_and;
    for (int32_t y = y0; y < y1; y++) {
        for (int32_t x = 0; x < ow; x++) {
            const pool_window win = window_at(nd, y, x);
            uint32_t *o = out + (((size_t)y + d.pt) * d.Wp + (size_t)x + d.pl) * cw;
            for (size_t j = 0; j < cw; j++) {
                uint32_t any = 0, all = ~0u;
                for (int32_t ky = win.ky0; ky < win.ky1; ky++)
                    for (int32_t kx = win.kx0; kx < win.kx1; kx++) {
                        const uint32_t w = in[((size_t)(win.sy + ky) * (size_t)W + (size_t)(win.sx + kx)) * cw + j];
                        any |= w;
                        all &= w;
                    }
                o[j] = (any & ~andm[j]) | (all & andm[j]);
            }
        }
    }
}

/* ================================================================ elementwise */

static void bn_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const task *t = arg;
    const size_t C = t->nd->in_shape.c;
    const float *sc = t->nd->bn_scale, *sf = t->nd->bn_shift;
    const int64_t p0 = item * t->chunk, p1 = p0 + t->chunk < t->total ? p0 + t->chunk : t->total;
    for (int64_t p = p0; p < p1; p++) {
        const float *x = t->in + (size_t)p * C;
        float *y = t->out + (size_t)p * C;
        for (size_t ch = 0; ch < C; ch++) {
            float v = x[ch] * sc[ch];
            y[ch] = v + sf[ch];
        }
    }
}

static void relu_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const task *t = arg;
    const int64_t e0 = item * t->chunk, e1 = e0 + t->chunk < t->total ? e0 + t->chunk : t->total;
    /* Locals, not t->...: with -fno-strict-aliasing a float store could alias *t. */
    const float *restrict in = t->in;
    float *restrict out = t->out;
    for (int64_t i = e0; i < e1; i++) out[i] = relu_f(in[i]);
}

static void add_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const task *t = arg;
    const int64_t e0 = item * t->chunk, e1 = e0 + t->chunk < t->total ? e0 + t->chunk : t->total;
    const float *restrict a = t->in, *restrict b = t->in2;
    float *restrict out = t->out;
    for (int64_t i = e0; i < e1; i++) out[i] = a[i] + b[i];
}

static void softmax_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const task *t = arg;
    const size_t F = t->nd->in_shape.c;
    const int64_t r0 = item * t->chunk, r1 = r0 + t->chunk < t->total ? r0 + t->chunk : t->total;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = t->in + (size_t)r * F;
        float *y = t->out + (size_t)r * F;
        float mx = x[0];
        for (size_t i = 1; i < F; i++) mx = x[i] > mx ? x[i] : mx;
        float s = 0.0f;
        for (size_t i = 0; i < F; i++) {
            float e = expf(x[i] - mx);
            y[i] = e;
            s += e;
        }
        for (size_t i = 0; i < F; i++) y[i] = y[i] / s;
    }
}

/* [H][W][C] -> [C][H][W] for the channels [c0, c1) of image `item / nrt`. */
static void flatten_item(void *arg, int64_t item, int tid) {
    (void)tid;
    const task *t = arg;
    const xshape *s = &t->nd->in_shape;
    const size_t per = xshape_elems(s), HW = (size_t)s->h * s->w;
    const size_t n = (size_t)(item / t->nrt);
    const size_t c0 = (size_t)(item % t->nrt) * (size_t)t->rt;
    const size_t c1 = c0 + (size_t)t->rt < s->c ? c0 + (size_t)t->rt : s->c;
    const float *src = t->in + n * per;
    float *dst = t->out + n * per;
    for (size_t p0 = 0; p0 < HW; p0 += 64) {
        const size_t p1 = p0 + 64 < HW ? p0 + 64 : HW;
        for (size_t ch = c0; ch < c1; ch++) {
            const float *restrict sc = src + ch;
            float *restrict dc = dst + ch * HW;
            for (size_t p = p0; p < p1; p++) dc[p] = sc[p * s->c];
        }
    }
}

/* Flat ranges: total units of `unit_work` each, chunked for the pool. */
static void run_flat(task *t, xnor_task_fn fn, int64_t total, uint64_t unit_work) {
    int64_t want = want_items(t->c, (uint64_t)total * unit_work, GRAIN_ELEM);
    if (want > total) want = total;
    if (want < 1) want = 1;
    t->total = total;
    t->chunk = (total + want - 1) / want;
    xnor_pool_run(pool_if(t->c, want), fn, t, (total + t->chunk - 1) / t->chunk);
}

/* Items (image, range of rt of the `rows` rows): about `want` of them, at least one per image. */
static void run_rows(task *t, xnor_task_fn fn, int32_t rows, int64_t want) {
    const int64_t N = (int64_t)t->N;
    t->rows = rows;
    t->nrt = want / N > 1 ? min32((int32_t)(want / N), rows) : 1;
    t->rt = ceil_div32(rows, t->nrt);
    t->nrt = ceil_div32(rows, t->rt);
    xnor_pool_run(pool_if(t->c, want), fn, t, N * t->nrt);
}

/* ================================================================ step dispatch */

void xnor_exec_step(xnor_context_t *c, const xstep *st, uint32_t N) {
    const xnor_model_t *m = c->m;
    task t;
    memset(&t, 0, sizeof t);
    t.c = c;
    t.st = st;
    t.nd = &m->nodes[st->node];
    t.bn = st->bn >= 0 ? &m->nodes[st->bn] : NULL;
    t.bn_epi = st->bn_epi >= 0 ? &m->nodes[st->bn_epi] : NULL;
    t.N = N;
    t.in = xnor_vbuf(c, st->in[0]);
    t.in2 = t.nd->n_inputs > 1 ? xnor_vbuf(c, st->in[1]) : NULL;
    t.out = c->slot_buf[c->slot_of[st->out]];
    t.relu = st->relu >= 0;
    const xnode *nd = t.nd;
    const uint64_t per = xshape_elems(&nd->in_shape);
    switch (nd->op) {
    case XNOR_OP_CONV2D:
    case XNOR_OP_LINEAR:
        run_fconv(&t);
        break;
    case XNOR_OP_BCONV2D:
    case XNOR_OP_BLINEAR:
        if (nd->mode == XNOR_MODE_BWN) run_fconv(&t);
        else run_xnor(&t);
        break;
    case XNOR_OP_QCONV2D:
        xnor_exec_qconv(c, st, N);
        break;
    case XNOR_OP_QLINEAR:
        xnor_exec_qlinear(c, st, N);
        break;
    case XNOR_OP_BATCHNORM:
        run_flat(&t, bn_item, (int64_t)N * (int64_t)(nd->in_shape.h * nd->in_shape.w), nd->in_shape.c);
        break;
    case XNOR_OP_RELU:
        run_flat(&t, relu_item, (int64_t)(N * per), 1);
        break;
    case XNOR_OP_ADD:
        run_flat(&t, add_item, (int64_t)(N * per), 1);
        break;
    case XNOR_OP_SOFTMAX:
        run_flat(&t, softmax_item, (int64_t)N, per * 8);
        break;
    case XNOR_OP_FLATTEN: {
        /* Items over (image, channel range): batch 1 is split too. */
        run_rows(&t, flatten_item, (int32_t)nd->in_shape.c, want_items(c, N * per, GRAIN_PACK));
        break;
    }
    case XNOR_OP_MAXPOOL:
    case XNOR_OP_AVGPOOL: {
        const int32_t rows = (int32_t)nd->out_shape.h;
        if (st->bitpool) {
            uint64_t work = (uint64_t)N * nd->out_shape.h * nd->out_shape.w * (uint64_t)(nd->kh * nd->kw) *
                            ((nd->in_shape.c + 31) / 32);
            run_rows(&t, bitpool_item, rows, want_items(c, work, GRAIN_PACK));
            break;
        }
        uint64_t work = (uint64_t)N * xshape_elems(&nd->out_shape) * (uint64_t)(nd->kh * nd->kw);
        run_rows(&t, pool_item, rows, want_items(c, work, GRAIN_ELEM));
        break;
    }
    case XNOR_OP_DROPOUT: /* only in plans that copy; the plan aliases dropout */
        if (t.out != t.in) memcpy(t.out, t.in, sizeof(float) * (size_t)(N * per));
        break;
    default:
        break;
    }
}
