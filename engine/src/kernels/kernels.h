/* kernels.h -- the microkernels the graph executor calls, and the dispatch table.
 *
 * Layout conventions shared by every kernel (the executor prepares these):
 *   - float activations are NHWC per image: x[(y * W + x) * C + c];
 *   - packed binary activations are [H][W][cw] uint32 words, cw = ceil(C / 32); bit
 *     (c % 32) of word (c / 32) is 1 when the value is >= 0 (sign +1); bits for c >= C
 *     are 0. Buffers given to bconv carry a zero halo of the conv's padding;
 *   - weights are repacked at load with 16 output channels per block ("lanes"):
 *     binary  w[ob][ky][kx][word][16]  (uint32; channels past O are all-zero words),
 *     float   w[ob][ky][kx][c][16]     (float;  channels past O are 0.0f),
 *     BWN     w[ob][ky][kx][c]         (uint16 sign masks, bit lane = +1; lanes past O are 0).
 *
 * Each kernel computes a sub-range [y0, y1) of output rows and [b0, b1) of 16-channel
 * output blocks so the executor can split work across threads. Kernels never allocate,
 * never fail and never read outside the ranges the arguments describe.
 *
 * Names follow op_shape__isa. Every ISA kernel must give results identical to the scalar
 * twin: bit-identical for bconv and pack; fconv within float rounding (sum order).
 */
#ifndef XNOR_KERNELS_H
#define XNOR_KERNELS_H

#include <stdint.h>
#include "../../include/xnornet.h"

#define XNOR_LANES 16  /* output channels per weight block */

/* Binary convolution, popcount part:
 *   out[(y * ow + x) * out_stride + ob*16 + lane] =
 *     sum_{ky<kh, kx<kw, j<cw} popcount(in[((y*sh+ky) * Wp + (x*sw+kx)) * cw + j]
 *                                        ^ w[(((ob*kh + ky)*kw + kx)*cw + j)*16 + lane])
 * for y in [y0,y1), x in [0,ow), ob in [b0,b1), lane in [0,16).
 * With row_k and col_k set (both or neither), the sum runs only over the taps inside the
 * unpadded input: ky in [row_k[2y], row_k[2y+1]), kx in [col_k[2x], col_k[2x+1]) (within
 * [0, kh] / [0, kw]; a range with end <= start is empty: no taps, a sum of 0); the zero
 * halo's taps are skipped, not counted and corrected. The executor turns these XOR
 * popcounts into dot products.
 * out_stride >= 16 * (number of blocks), a multiple of 16. */
typedef struct {
    const uint32_t *in;
    int32_t Hp, Wp, cw;
    const uint32_t *w;
    int32_t kh, kw, sh, sw;
    int32_t oh, ow;
    int32_t *out;
    int32_t out_stride;
    int32_t y0, y1, b0, b1;
    const int32_t *row_k;  /* NULL: every tap of every window */
    const int32_t *col_k;
} xnor_bconv_args;

/* Float convolution (also float linear: Hp = 1, Wp = batch, kh = kw = 1):
 *   acc = sum_{ky, kx, c} in[((y*sh+ky) * Wp + (x*sw+kx)) * C + c] * wf[(((ob*kh+ky)*kw+kx)*C + c)*16 + lane]
 *   o = ob*16 + lane; if o < O:
 *     v = acc + (bias ? bias[o] : 0)                         (always this add, even without bias)
 *     if scale: v = v * scale[o]; v = v + shift[o]           (a folded batchnorm: two float32
 *                                                             roundings, never a fused multiply-add,
 *                                                             exactly as the separate batchnorm op)
 *     if relu: v = max(v, 0)
 *     out[(y * ow + x) * ldo + o] = v
 * The input carries a zero halo of the padding. `bias`, `scale` and `shift`, if not NULL,
 * have 16*blocks entries (the SIMD epilogues load whole blocks); scale and shift are
 * both NULL or both set. */

/* Binary-weight (BWN) convolution / linear: float input, weights +-1 packed one bit each.
 * Weights: wm[((ob*kh + ky)*kw + kx)*C + c] is a uint16 mask, bit `lane` set when the
 * weight of output channel ob*16 + lane at (ky, kx, c) is +1 (clear: -1). Lanes past O
 * are 0 and never stored.
 *   acc = sum in order over ky, kx, c of (bit ? +x : -x), x = in[((y*sh+ky) * Wp + (x*sw+kx)) * C + c]
 *         (each step one float32 addition or subtraction: every ISA gives the scalar
 *          kernel's result bit for bit)
 *   o = ob*16 + lane; if o < O:
 *     v = acc * alpha[o]; if bias: v = v + bias[o]; if relu: v = max(v, 0)
 *     out[(y * ow + x) * ldo + o] = v
 * Geometry, halo and ranges as fconv. `alpha` (required) and `bias` (optional) have
 * 16*blocks entries.
 *
 * Both take xnor_conv_args: one geometry, the weights of one kind (wf or wm). */
typedef struct {
    const float *in;
    int32_t Hp, Wp, C;
    const float *wf;      /* fconv: float weights */
    const uint16_t *wm;   /* bwnconv: sign masks */
    const float *alpha;   /* bwnconv: per-output scale (required) */
    const float *bias;
    int32_t kh, kw, sh, sw;
    int32_t oh, ow;
    int32_t O;
    float *out;
    int32_t ldo;
    int32_t relu;
    int32_t y0, y1, b0, b1;
    const float *scale;   /* fconv: folded batchnorm; NULL: none */
    const float *shift;
    int32_t layer_blocks; /* blocks of the whole layer (0: b1 - b0): its weight size, not the
                           * range's, decides whether the SIMD kernels stream the weights */
} xnor_conv_args;

/* Binarize + pack: for y in [y0, y1), x < W, c < C:
 *   v = in[(y*W + x)*C + c]; if scale: v = v * scale[c] + shift[c] (two float32 roundings,
 *   never a fused multiply-add); bit = (v >= 0)
 *   into out[((y + pt) * Wp + (x + pl)) * cw + c/32], bit c%32; bits for c >= C are 0.
 * Only the interior words are written; the executor zeroes the halo once. */
typedef struct {
    const float *in;
    int32_t H, W, C;
    const float *scale;
    const float *shift;
    uint32_t *out;
    int32_t Wp, cw, pt, pl;
    int32_t y0, y1;
} xnor_pack_args;

/* int8 convolution / linear, integer part: uint8 activations (pixels, or activations
 * quantized per sample) times int8 weights, summed exactly in int32:
 *   out[((y - y0) * out_row + (x - x0)) * out_stride + (ob - b0) * 16 + lane] =
 *     sum_{ky < kh, g < qg, b < 4} in[off0 + (y*sh + ky) * row_stride + x * px_stride + 4g + b]
 *                                  * w[(((ob*kh + ky)*qg + g)*16 + lane)*4 + b]
 * for y in [y0, y1), x in [x0, x1), ob in [b0, b1). The 4 qg bytes of a window row are
 * (kx, c) in order, zero-weighted past the row's kw * C real bytes; the executor makes
 * every byte read lie inside its buffer. Every ISA gives the scalar result exactly. */
typedef struct {
    const uint8_t *in;
    int64_t off0, row_stride, px_stride;
    const int8_t *w;
    int32_t kh, qg, sh;
    int32_t y0, y1, x0, x1, b0, b1;
    int32_t *out;
    int32_t out_row, out_stride;
} xnor_qconv_args;
/* int8 linear with one float scale per output row and group of 32 inputs, fused:
 *   for s in [s0, s1), o = 16 ob + lane, ob in [b0, b1), o < O:
 *     acc_g = sum_{k < 32} in[s * in_stride + 32 g + k] * w[((ob * ng + g) * 8 + k / 4) * 64 + lane * 4 + k % 4]
 *     t_g   = float(acc_g - z_s * wsum[(ob * ng + g) * 16 + lane]) * scale[(ob * ng + g) * 16 + lane]
 *     t_g   = t_g * sx_s[g]
 *     out[s * out_stride + o] = t_0 + t_1 + ... + t_{ng-1}   (left to right, each step float32)
 * where sx_s = the ng floats and z_s the int32 stored after sample s's 32 ng bytes
 * (in + s * in_stride + 32 ng, unaligned). Integer sums are exact and the float steps are
 * done in this order on every ISA, so every ISA gives the scalar result bit for bit. */
typedef struct {
    const uint8_t *in;
    int64_t in_stride;
    const int8_t *w;
    const float *scale;
    const int32_t *wsum;
    int32_t ng, O;
    int32_t s0, s1, b0, b1;
    float *out;
    int64_t out_stride;
} xnor_qlinear_args;

/* Image resampling in two separable passes (preprocess.c computes the filters).
 * A filter gives each output sample `taps` consecutive input samples from first[i] (all
 * inside the input: first[i] + taps <= input size) and int32 weights k[i * taps + t], fixed
 * point with XNOR_RESIZE_BITS fraction bits (>= 0, summing to ~2^BITS; zero where the
 * sample is outside the sample's filter). A pass computes
 *   s = 2^(BITS-1) + sum_{t < taps} in[first + t] * k[t]       (int32; s < 2^31)
 * and writes clamp(s >> BITS, 0, 255). Integer sums: every ISA is bit-identical to scalar.
 *
 * Horizontal: for source rows y in [y0, y1), output columns xx < out_w, channels c < C:
 *   row = src + y * src_stride, samples row[(first[xx] + t) * C + c];
 *   written at dst[(y - y0) * dst_stride + xx * C + (reverse ? C - 1 - c : c)].
 *   Pixels [0, src_w) of a row are read; src_len bounds the whole source (a SIMD kernel may
 *   read a byte past a pixel only where src_len says the byte exists).
 * Vertical: for output rows yy < out_h, bytes i < n of a row:
 *   samples src[(first[yy] + t) * src_stride + i], written at dst[yy * dst_stride + i]. */
#define XNOR_RESIZE_BITS 22

/* The filter of one pass, for n output samples: first has n entries, k n * taps. */
typedef struct {
    const int32_t *first;
    const int32_t *k;
    int32_t taps;
} xnor_resize_filter;

typedef struct {
    const uint8_t *src;
    size_t src_stride, src_len;
    int32_t src_w, C;
    int32_t y0, y1;
    int32_t out_w;
    xnor_resize_filter f;         /* out_w output samples */
    uint8_t *dst;
    size_t dst_stride;
    int32_t reverse;
} xnor_resize_h_args;

typedef struct {
    const uint8_t *src;
    size_t src_stride;
    int32_t n;                    /* bytes per row */
    int32_t out_h;
    xnor_resize_filter f;         /* out_h output samples */
    uint8_t *dst;
    size_t dst_stride;
} xnor_resize_v_args;

/* Kernel signatures, as function types: `xnor_pack_kernel xnor_pack__avx2;` declares a
 * kernel, `xnor_pack_kernel *` points to one. */
typedef void xnor_bconv_kernel(const xnor_bconv_args *a);
typedef void xnor_conv_kernel(const xnor_conv_args *a);   /* fconv and bwnconv */
typedef void xnor_pack_kernel(const xnor_pack_args *a);
typedef void xnor_qconv_kernel(const xnor_qconv_args *a);
typedef void xnor_qlinear_kernel(const xnor_qlinear_args *a);
typedef void xnor_resize_h_kernel(const xnor_resize_h_args *a);
typedef void xnor_resize_v_kernel(const xnor_resize_v_args *a);

/* Ceiling microbenchmarks (ceil__*.c): each runs `iters` iterations of a loop of independent
 * chains of one instruction mix and returns the ops it did (2 per multiply-add, as in
 * xnor_ceilings); `seed` keeps the compiler from folding the loop, the result is
 * written to *sink. */
typedef double xnor_ceil_kernel(int64_t iters, uint32_t seed, uint32_t *sink);

/* The ops of a kernel table, one line each: X(slot, kernel type, scalar kernel, AVX2 kernel,
 * AVX-512 kernel). It declares the kernels below, the table's fields and each ISA's table
 * (dispatch.c). An ISA without its own kernel for an op names the one it uses (resampling
 * has no AVX-512 twin). The int8 slots hold the default choice; dispatch.c swaps in the
 * VNNI kernels the CPU has. */
#define XNOR_KERNEL_OPS(X) \
    X(bconv, xnor_bconv_kernel, xnor_bconv_16c__scalar, xnor_bconv_16c__avx2, xnor_bconv_16c__avx512vpopcnt) \
    X(fconv, xnor_conv_kernel, xnor_fconv_16c__scalar, xnor_fconv_16c__avx2, xnor_fconv_16c__avx512f) \
    X(pack, xnor_pack_kernel, xnor_pack__scalar, xnor_pack__avx2, xnor_pack__avx512) \
    X(bwnconv, xnor_conv_kernel, xnor_bwnconv_16c__scalar, xnor_bwnconv_16c__avx2, xnor_bwnconv_16c__avx512) \
    X(qconv, xnor_qconv_kernel, xnor_qconv_16c__scalar, xnor_qconv_16c__avx2, xnor_qconv_16c__avx512vnni) \
    X(qlinear_g32, xnor_qlinear_kernel, xnor_qlinear_g32__scalar, xnor_qlinear_g32__avx2, xnor_qlinear_g32__avx512vnni) \
    X(ceil_fma, xnor_ceil_kernel, xnor_ceil_fma__scalar, xnor_ceil_fma__avx2, xnor_ceil_fma__avx512) \
    X(ceil_popcount, xnor_ceil_kernel, xnor_ceil_popcount__scalar, xnor_ceil_popcount__avx2, xnor_ceil_popcount__avx512) \
    X(resize_h, xnor_resize_h_kernel, xnor_resize_h_u8__scalar, xnor_resize_h_u8__avx2, xnor_resize_h_u8__avx2) \
    X(resize_v, xnor_resize_v_kernel, xnor_resize_v_u8__scalar, xnor_resize_v_u8__avx2, xnor_resize_v_u8__avx2)

#define XNOR_KERNEL_FIELD(slot, type, scalar, avx2, avx512) type *slot;
typedef struct {
    xnor_isa isa;
    const char *name;
    XNOR_KERNEL_OPS(XNOR_KERNEL_FIELD)
} xnor_kernel_table;
#undef XNOR_KERNEL_FIELD

/* The table of an ISA, or NULL if it is not compiled in or the CPU lacks it.
 * XNOR_ISA_AUTO gives the best available. Thread-safe; CPU detection runs once. */
const xnor_kernel_table *xnor_kernels_for(xnor_isa isa);

/* CPU feature detection (dispatch.c). */
int xnor_cpu_has_avx2(void);    /* AVX2 + FMA + POPCNT, OS saves YMM */
int xnor_cpu_has_avx512(void);  /* AVX-512 F/BW/VL/VPOPCNTDQ, OS saves ZMM */
int xnor_cpu_has_avx512vnni(void); /* the above + AVX512_VNNI (vpdpbusd) */
int xnor_cpu_has_avxvnni(void);    /* AVX2 (as above) + AVX-VNNI (VEX vpdpbusd on ymm) */

/* Scalar kernels: portable C, always present. */
#define XNOR_DECLARE_SCALAR(slot, type, scalar, avx2, avx512) type scalar;
XNOR_KERNEL_OPS(XNOR_DECLARE_SCALAR)
#undef XNOR_DECLARE_SCALAR

#if defined(__x86_64__) || defined(_M_X64)
#define XNOR_HAVE_X86 1
#define XNOR_DECLARE_X86(slot, type, scalar, avx2, avx512) type avx2, avx512;
XNOR_KERNEL_OPS(XNOR_DECLARE_X86)
#undef XNOR_DECLARE_X86
/* Kernels outside the table's defaults: the VNNI int8 choices (dispatch.c) and the int8
 * ceiling (ceilings.c). */
xnor_qconv_kernel xnor_qconv_16c__avxvnni;
xnor_qlinear_kernel xnor_qlinear_g32__avxvnni;
xnor_ceil_kernel xnor_ceil_int8__avx512vnni;
#endif

/* Target attributes: each ISA's kernels are compiled for that ISA alone, in its own
 * file, and picked at run time; the rest of the library stays baseline x86-64. */
#define XNOR_TARGET_AVX2 __attribute__((target("avx2,fma,popcnt,bmi,bmi2")))
#define XNOR_TARGET_AVXVNNI __attribute__((target("avx2,fma,avxvnni")))
#define XNOR_TARGET_AVX512VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))
#define XNOR_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vpopcntdq,avx2,fma,popcnt,bmi,bmi2")))

#endif /* XNOR_KERNELS_H */
