/* internal.h -- shared declarations of the engine (not part of the public API).
 *
 * The model (xnor_model) is built by loader.c (parse + validate) and prepare.c
 * (weight repacking) and never changes afterwards, so any number of contexts and
 * threads may read it. The context (xnor_context) owns everything that changes
 * per inference: value buffers, per-node workspaces, the thread pool and timings.
 */
#ifndef XNOR_INTERNAL_H
#define XNOR_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/xnornet.h"
#include "kernels/kernels.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "xnornet reads its little-endian file format with plain loads: little-endian hosts only"
#endif

/* The package build (engine/_build.py) passes pyproject.toml's version. */
#ifndef XNOR_VERSION_STRING
#define XNOR_VERSION_STRING "unversioned"
#endif

/* File format constants (engine/FORMAT.md). */
#define XF_HEADER_BYTES 256u
#define XF_NODE_BYTES 160u
#define XF_TENSOR_BYTES 64u
#define XF_MAX_NODES 4096u
#define XF_MAX_TENSORS 65536u

enum { XP_OUT = 0, XP_KH, XP_KW, XP_SH, XP_SW, XP_PT, XP_PL, XP_PB, XP_PR, XP_BIAS, XP_MODE, XP_USEK,
       XP_CEIL, XP_CIP };

/* How the optimized plan folds a node (xnode.fuse_kind; loader.c decides, plan.c builds). */
enum {
    XFUSE_NONE = 0,
    XFUSE_ALIAS = 1,         /* dropout: its value is its input's */
    XFUSE_BN_BINARIZE = 2,   /* batchnorm whose only consumer is an XNOR bconv2d/blinear:
                              * applied in that op's binarization (and K) */
    XFUSE_BN_EPILOGUE = 3,   /* batchnorm whose input is a conv2d/linear output read by
                              * nothing else: applied in that op's fconv epilogue */
    XFUSE_RELU_EPILOGUE = 4, /* relu applied in the epilogue of the op producing its input
                              * (directly, or through an XFUSE_BN_EPILOGUE batchnorm) */
    XFUSE_PACKED = 5         /* batchnorm or flatten between a packed epilogue and the XNOR
                              * blinear it feeds (fold.c): the batchnorm is in the producer's
                              * thresholds, the flatten's order in the blinear's weights */
};

#define XDT_F32 1u
#define XDT_BITS 2u
#define XDT_I8 3u

/* int8 layers accumulate u8 x s8 products in int32: |sum| <= 255 * 128 * R < 2^31 needs a
 * reduction length R <= 65536. */
#define XQ_MAX_REDUCTION 65536u
/* qlinear: features per scale group (FORMAT.md qlinear): one weight scale per output and
 * group, one activation scale per sample and group. */
#define XQ_GROUP 32

/* Shape of a value, per image. A 2-D value [F] has c = F, h = w = 1, is4d = 0. */
typedef struct {
    uint32_t c, h, w;
    uint32_t is4d;
} xshape;

static inline uint64_t xshape_elems(const xshape *s) { return (uint64_t)s->c * s->h * s->w; }

typedef struct {
    uint32_t dtype, ndim;
    uint32_t dims[4];
    uint64_t offset, nbytes;
    uint64_t elems;
} xtensor_desc;

/* A node after validation, plus its prepared (repacked) parameters. */
typedef struct {
    /* From the file. */
    uint32_t op, n_inputs;
    uint32_t inputs[2];
    int32_t p[16];
    float f[4];
    int32_t t[8];
    char name[32];

    /* Derived at load. */
    xshape in_shape, out_shape;   /* in_shape: shape of inputs[0] */
    uint64_t macs;                /* per image */
    uint32_t fused;               /* folded into another node by the optimized plan */
    uint32_t fuse_kind;           /* how (XFUSE_*), when fused */
    uint32_t n_consumers;         /* input slots that read this node's value */
    int32_t consumer;             /* the node reading this value when n_consumers == 1 */

    /* Convolution geometry (conv2d, bconv2d, pools; linear/blinear use kh = kw = 1). */
    int32_t kh, kw, sh, sw, pt, pl, pb, pr;
    int32_t O, C;                 /* output / input channels (features for 2-D ops) */
    int32_t nb;                   /* 16-channel output blocks: ceil(O / 16) */
    int32_t cw;                   /* 32-bit words per input pixel: ceil(C / 32) */
    int32_t mode, use_k, has_bias;

    /* Prepared parameters (prepare.c); NULL where the op has none. */
    uint32_t *wbits;   /* XNOR: [nb][kh][kw][cw][16] */
    float *wf;         /* conv2d, linear: [nb][kh][kw][C][16] */
    uint16_t *wm;      /* BWN: [nb][kh][kw][C] sign masks, bit lane = +1 (1 bit per weight) */
    float *bias;       /* [16 nb] (zero past O) */
    float *alpha;      /* [16 nb] (zero past O) */
    float *bn_scale;   /* batchnorm: [16 ceil(C/16)] (zero past C: the fconv epilogue */
    float *bn_shift;   /* loads whole 16-channel blocks when the batchnorm is folded into it) */
    /* int8 layers: qconv2d weights [nb][kh][qg][16][4] int8, qg = ceil(kw * C / 4) groups
     * of 4 bytes over one window row's (kx, c), zero past the row's real bytes and past O;
     * per-output scale [16 nb]. qlinear: qng groups of XQ_GROUP features, weights
     * [nb][qng][XQ_GROUP / 4][16][4] (block-major, as the qlinear_g32 kernel reads them),
     * qg = qng * XQ_GROUP / 4, scales and weight sums [nb][qng][16]; zero past the
     * features and past O. */
    int8_t *wq;
    int32_t qg;
    int32_t qng;
    float *qscale;
    int32_t *qwsum;    /* qlinear: [qng][16 nb] sum over each group's int8 weights */
    /* qconv2d: bias + the in-bounds taps' offsets, per output-row class and column class:
     * qcorr[(cy * ncx + cx) * 16 nb + o]; qcls_y[y], qcls_x[x] give the classes. */
    float *qcorr;
    int32_t *qcls_y, *qcls_x;
    int32_t ncx;
    /* Per output row / column, the range of in-bounds taps [k0, k1): bconv XNOR, qconv2d. */
    int32_t *row_k;    /* [2 oh] */
    int32_t *col_k;    /* [2 ow] */

    /* Packed epilogue (fold.c): an XNOR bconv2d whose output reaches another XNOR bconv2d's
     * binarization through nothing but a relu, a max-pool and a batchnorm (each optional), or
     * an XNOR blinear's through those and a flatten, emits that layer's input bits from its
     * popcounts in the optimized plan. The bit of channel o is a function of
     * the integer dot product alone, found at load by evaluating the float chain
     * (xnor_packed_bit) for every possible dot: on each valid-tap count it is 1 on one
     * interval [lo, hi] of dots, or the channel evaluates the chain at run time (pk_float). */
    int32_t pack_into;  /* the consuming XNOR layer's node index, or -1 */
    int32_t pk_relu;    /* relu between (folded into this node's epilogue) */
    int32_t pk_bn;      /* batchnorm node between (folded into the consumer's binarization, or
                         * before a flatten into these thresholds), or -1 */
    int32_t pk_pool;    /* max-pool between, or -1: it then pools bits, OR for channels whose bit
                         * grows with the pooled value, AND for those whose bit falls */
    uint32_t *pk_and;   /* with pk_pool: [cw] words, bit set = AND channel */
    int32_t pk_kinds;   /* distinct valid-tap counts over the output pixels */
    int32_t *pk_kind;   /* [kh*kw + 1]: valid-tap count -> row of pk_lo / pk_hi, -1 if none */
    int32_t *pk_lo;     /* [pk_kinds][16 nb] */
    int32_t *pk_hi;     /* [pk_kinds][16 nb]; lo > hi: never 1 (and lanes past O) */
    uint8_t *pk_float;  /* [16 nb]: 1 = evaluate the float chain (parameters not finite, or
                         * the bits are not one interval of dots) */
    int32_t pk_nfloat;     /* how many channels have pk_float set */
    int32_t *pk_float_ch;  /* [pk_nfloat]: those channels, ascending */
    /* An XNOR blinear fed by a packed epilogue through a flatten: the flatten node, or -1.
     * Its weight bits then follow the map's packed layout, pixel-major with ceil(C/32)
     * channel words per pixel (cw = H * W * ceil(C/32)), instead of the flatten's [C][H][W]
     * order; a plan that does not run the packed epilogue (trace) packs the flatten's
     * input map, NHWC, in that layout. */
    int32_t pk_flat;
} xnode;

struct xnor_model {
    uint32_t version;
    uint32_t crc;
    uint64_t file_bytes;
    uint32_t n_nodes, n_tensors, n_labels;
    uint32_t in_c, in_h, in_w;
    uint32_t color, resize_policy, resize_size;
    float scale, mean[4], std[4];
    char name[64];
    /* norm_lut[min(c, 4)][p] = (p * scale - mean[c]) / std[c] in float32 (FORMAT.md's
     * preprocessing; channels >= 4 use mean 0, std 1): uint8 input is normalized by lookup. */
    float norm_lut[5][256];
    int32_t input_u8;      /* the input's only reader is a qconv2d: value 0 is uint8 NHWC pixels */

    xnode *nodes;
    xshape *values;        /* n_nodes + 1 shapes; value 0 is the input */
    uint32_t out_size;
    uint32_t output_kind;

    char *label_text;      /* copy of the label section */
    uint32_t *label_off;   /* [n_labels]: offset of each label's text in label_text */
    uint16_t *label_len;   /* [n_labels] */

    uint64_t weight_bytes_packed, weight_bytes_float32;
    uint64_t memory_bytes;
};

/* status.c */
void xnor_set_err(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void xnor_set_errv(char *buf, size_t len, const char *fmt, va_list ap);

/* crc32.c: CRC-32 (zlib polynomial, reflected 0xEDB88320) of data, continuing from crc
 * (start with 0), as zlib.crc32(data, crc). */
uint32_t xnor_crc32(uint32_t crc, const void *data, size_t len);

/* prepare.c: repack node k's weights; the file's tensor data is read from `data`
 * (data section start). Returns XNOR_OK or XNOR_ERR_OUT_OF_MEMORY. */
xnor_status xnor_prepare_node(xnor_model_t *m, xnode *nd, const xtensor_desc *tens, const uint8_t *data);
void xnor_free_node(xnode *nd);

/* Aligned allocation (64 bytes) that the model/context free with xnor_free_aligned. */
void *xnor_alloc_aligned(size_t bytes);
void *xnor_calloc_aligned(size_t bytes);
void xnor_free_aligned(void *p);

/* release(p) for each of n pointers (NULL allowed): the owned buffers of a struct in one call,
 * via XNOR_FREE_EACH(free or xnor_free_aligned, a->x, a->y, ...). */
void xnor_free_each(void (*release)(void *), void *const *ptrs, size_t n);
#define XNOR_FREE_EACH(release, ...) \
    xnor_free_each(release, (void *const[]){__VA_ARGS__}, sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))

/* Overflow-safe size arithmetic: return 0 and leave *out unspecified on overflow. */
static inline int xnor_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline int xnor_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline uint64_t xnor_mul_sat(uint64_t a, uint64_t b) {
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* The bit an XNOR layer's epilogue and the next layer's binarization give one channel for the
 * integer dot product `dot`, float32 step by step exactly as exec.c computes it:
 * v = float(dot) * alpha; v += bias; relu; then the batchnorm v * scale, + shift (two
 * roundings); bit = v >= 0. bias NULL: no add; scale NULL: no batchnorm. */
static inline int xnor_packed_bit(int32_t dot, float alpha, const float *bias, int relu, const float *scale,
                                  const float *shift) {
    float v = (float)dot * alpha;
    if (bias) v = v + *bias;
    if (relu) v = v > 0.0f ? v : 0.0f;
    if (scale) {
        v = v * *scale;
        v = v + *shift;
    }
    return v >= 0.0f;
}

/* fold.c: decide and prepare the packed epilogues (after xnor_prepare_node of every node).
 * Returns XNOR_OK or XNOR_ERR_OUT_OF_MEMORY. */
xnor_status xnor_fold_packed_epilogues(xnor_model_t *m);
void xnor_free_packed(xnode *nd); /* the packed-epilogue tables of a node (no fold) */

/* threadpool.c: a persistent pool; the caller takes part as thread 0. */
typedef struct xnor_pool xnor_pool;
typedef void (*xnor_task_fn)(void *arg, int64_t item, int tid);
xnor_status xnor_pool_new(int n_threads, int32_t spin, xnor_pool **out); /* spin: xnor_context_params */
void xnor_pool_free(xnor_pool *p);
int xnor_pool_threads(const xnor_pool *p);
/* Runs fn(arg, i, tid) for every i in [0, n_items), spread over the pool's threads,
 * and returns when all are done. n_items <= 1 runs inline on the caller. */
void xnor_pool_run(xnor_pool *p, xnor_task_fn fn, void *arg, int64_t n_items);

/* cpu.c */
int xnor_parse_isa_name(const char *s, xnor_isa *out);

/* exec.c, exec_int8.c: splitting a step's work into items of rt rows x bt blocks. */
static inline int32_t ceil_div32(int32_t a, int32_t b) { return (a + b - 1) / b; }

/* Rows and blocks into at least `want` items (n * nrt * nbt) where possible, within the
 * scratch bounds rt_max x bt_max: rows first for convolutions, blocks first for linear
 * layers (whose weights dominate). Writes the tile sizes rt, bt and their counts nrt, nbt. */
static inline void xnor_split_tiles(int32_t rows, int32_t nb, int64_t n, int64_t want, int32_t rt_max,
                                    int32_t bt_max, int blocks_first, int32_t *rt, int32_t *nrt,
                                    int32_t *bt, int32_t *nbt) {
    int32_t r = ceil_div32(rows, rt_max), b = ceil_div32(nb, bt_max);
    while (n * r * b < want) {
        if (blocks_first) {
            if (b < nb) b++;
            else if (r < rows) r++;
            else break;
        } else {
            if (r < rows) r++;
            else if (b < nb) b++;
            else break;
        }
    }
    *rt = ceil_div32(rows, r);
    *nrt = ceil_div32(rows, *rt);
    *bt = ceil_div32(nb, b);
    *nbt = ceil_div32(nb, *bt);
}

/* Work item `item` of such a split, the items running blocks fastest, then row tiles, then
 * images: image n, rows [y0, y1) of `rows`, blocks [b0, b1) of nb. */
typedef struct {
    int64_t n;
    int32_t y0, y1, b0, b1;
} xtile;

static inline xtile xnor_tile_at(int64_t item, int32_t rows, int32_t rt, int32_t nrt, int32_t nb, int32_t bt,
                                 int32_t nbt) {
    const int32_t bti = (int32_t)(item % nbt), yti = (int32_t)((item / nbt) % nrt);
    xtile t;
    t.n = item / ((int64_t)nbt * nrt);
    t.b0 = bti * bt;
    t.b1 = t.b0 + bt < nb ? t.b0 + bt : nb;
    t.y0 = yti * rt;
    t.y1 = t.y0 + rt < rows ? t.y0 + rt : rows;
    return t;
}

#endif /* XNOR_INTERNAL_H */
