/* tile16__avx2.h -- the register tiling shared by the AVX2 16-channel float-input
 * convolutions (fconv_16c__avx2.c, bwnconv_16c__avx2.c).
 *
 * A 16-channel block is two ymm accumulators per pixel; a tile is P pixels x one block.
 * Pixels are numbered row-major over [y0, y1) x [0, ow) and tiled across row ends; the
 * last tile is shifted back to overlap the one before it (a few pixels recomputed, the
 * same values written again) instead of needing a narrower variant. Each kernel writes
 * its tile as `tile(c, q0, ob, P)` (tile16_avx2_accumulate with its weights(), then
 * tile16_avx2_finish with its epilogue()), instantiates P = 1..its widest with
 * TILE16_AVX2_DEF, lists them in a table (entry P) and runs them with tile16_avx2_sweep. */
#ifndef XNOR_TILE16_AVX2_H
#define XNOR_TILE16_AVX2_H

#include <immintrin.h>

#include "conv16.h"

#define TILE16_AVX2_PMAX 6 /* widest pixel tile any kernel instantiates */

typedef void (*tile16_avx2_fn)(const void *ctx, int64_t q0, int32_t ob);

/* tile_P: the kernel's tile() with P constant, compiled for AVX2. */
#define TILE16_AVX2_DEF(P)                                                          \
    static XNOR_TARGET_AVX2 void tile_##P(const void *c, int64_t q0, int32_t ob) \
    {                                                                               \
        tile(c, q0, ob, P);                                                         \
    }

/* The halves w0 (channels 0-7) and w1 (8-15) of a block's weights for term t of the
 * kernel row at wk: how a kernel turns its stored weights into vectors. */
typedef void (*tile16_avx2_weights_fn)(const void *wk, int32_t t, __m256 *w0, __m256 *w1);

/* The float-input kernels' inner loops: acc[p] = the sum over the kernel rows ky and the
 * T = kw*C contiguous (tap, channel) terms t of input x weight, for pixel q0 + p, in
 * (ky, t) order with one FMA per term (one rounding each). wb: the block's first kernel
 * row; wrow_bytes: the bytes from one kernel row to the next. The weights of a term are
 * made once and feed the P pixels. */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
tile16_avx2_accumulate(const xnor_conv_args *a, int64_t q0, const int P, int64_t row_elems, int32_t T,
                       const char *wb, int64_t wrow_bytes, tile16_avx2_weights_fn weights,
                       __m256 acc[TILE16_AVX2_PMAX][2])
{
    const float *ip[TILE16_AVX2_PMAX];
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
        const int64_t q = q0 + p;
        const int32_t y = (int32_t)(q / a->ow), x = (int32_t)(q % a->ow);
        ip[p] = a->in + ((int64_t)y * a->sh * a->Wp + (int64_t)x * a->sw) * a->C;
    }
#pragma GCC unroll 8
    for (int p = 0; p < P; p++)
        acc[p][0] = acc[p][1] = _mm256_setzero_ps();

    for (int32_t ky = 0; ky < a->kh; ky++) {
        const void *wk = wb + ky * wrow_bytes;
        const float *ik[TILE16_AVX2_PMAX];
#pragma GCC unroll 8
        for (int p = 0; p < P; p++)
            ik[p] = ip[p] + ky * row_elems;
        for (int32_t t = 0; t < T; t++) {
            __m256 w0, w1;
            weights(wk, t, &w0, &w1);
#pragma GCC unroll 8
            for (int p = 0; p < P; p++) {
                const __m256 x = _mm256_broadcast_ss(ik[p] + t);
                acc[p][0] = _mm256_fmadd_ps(x, w0, acc[p][0]);
                acc[p][1] = _mm256_fmadd_ps(x, w1, acc[p][1]);
            }
        }
    }
}

/* The 16 entries of a per-channel array (bias, scale, ...) for the block at channel o0, as
 * halves h[0] (channels 0-7) and h[1] (8-15); zeros where the call has no such array (NULL).
 * The arrays hold 16 entries per block, so full-width loads stay inside them. */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
tile16_avx2_channels(const float *v, int32_t o0, __m256 h[2])
{
    for (int i = 0; i < 2; i++)
        h[i] = v ? _mm256_loadu_ps(v + o0 + 8 * i) : _mm256_setzero_ps();
}

/* Stores the 16 channels v[0], v[1], after the call's relu, at o, of which `left` exist. */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
tile16_avx2_store(const xnor_conv_args *a, float *o, int32_t left, const __m256 v[2])
{
    __m256 v0 = v[0], v1 = v[1];
    if (a->relu) {
        /* max(v, 0) with 0 as the second operand returns +0 for NaN and -0, as scalar */
        v0 = _mm256_max_ps(v0, _mm256_setzero_ps());
        v1 = _mm256_max_ps(v1, _mm256_setzero_ps());
    }
    if (left >= 16) {
        _mm256_storeu_ps(o, v0);
        _mm256_storeu_ps(o + 8, v1);
    } else {
        /* maskstore never touches (or faults on) disabled lanes: lane i is enabled iff i < left */
        const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_maskstore_ps(o, _mm256_cmpgt_epi32(_mm256_set1_epi32(left), idx), v0);
        if (left > 8)
            _mm256_maskstore_ps(o + 8, _mm256_cmpgt_epi32(_mm256_set1_epi32(left - 8), idx), v1);
    }
}

/* What a kernel makes of half h (0: channels 0-7, 1: 8-15) of a pixel's sums before the
 * relu and the store; ch: the per-channel vectors it loaded for the block. */
typedef __m256 (*tile16_avx2_epilogue_fn)(const xnor_conv_args *a, __m256 ch[][2], int h, __m256 acc);

/* Ends a tile of the block at channel o0: each of its P pixels' sums through the kernel's
 * epilogue, then the relu and the store. */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
tile16_avx2_finish(const xnor_conv_args *a, int64_t q0, const int P, int32_t o0, __m256 acc[TILE16_AVX2_PMAX][2],
                   __m256 ch[][2], tile16_avx2_epilogue_fn epilogue)
{
    const int32_t left = a->O - o0;
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
        __m256 v[2];
        for (int h = 0; h < 2; h++)
            v[h] = epilogue(a, ch, h, acc[p][h]);
        tile16_avx2_store(a, a->out + (q0 + p) * a->ldo + o0, left, v);
    }
}

/* Runs the tiles of `tiles` (entry P: P pixels, 1..pmax) over a call's output rows
 * [y0, y1) x the blocks of [b0, b1) that hold channels below O (blocks wholly past O have
 * nothing to store), with the widest tile the rows fill. */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
tile16_avx2_sweep(const tile16_avx2_fn *tiles, int pmax, const void *ctx, const xnor_conv_args *a)
{
    const int64_t q_begin = (int64_t)a->y0 * a->ow, q_end = (int64_t)a->y1 * a->ow;
    const int32_t b1 = a->b1 < (a->O + 15) / 16 ? a->b1 : (a->O + 15) / 16;
    if (q_end <= q_begin || b1 <= a->b0)
        return;
    const int P = q_end - q_begin < pmax ? (int)(q_end - q_begin) : pmax;
    const tile16_avx2_fn fn = tiles[P];
    for (int32_t ob = a->b0; ob < b1; ob++)
        for (int64_t q = q_begin; q < q_end; q += P)
            fn(ctx, q + P <= q_end ? q : q_end - P, ob);
}

#endif /* XNOR_TILE16_AVX2_H */
