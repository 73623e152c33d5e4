/* tile16__avx512.h -- the register tiling shared by the AVX-512 16-channel float-input
 * convolutions (fconv_16c__avx512f.c, bwnconv_16c__avx512.c).
 *
 * A tile is P output pixels x B 16-channel blocks of accumulators. Pixels are numbered
 * row-major over [y0, y1) x [0, ow) (bconv with tap ranges: over each rectangle of outputs
 * with equal taps; the kernel's ctx maps q to a pixel) and tiled across row ends, which
 * keeps tiles full on small maps (13x13 -> 169 pixels); the last pixel tile is shifted
 * back to overlap the one before it (a few pixels recomputed, the same values written
 * again) instead of needing a narrower variant. Each kernel writes its tile as `tile(ctx, q0, bs, P, B)`, instantiates
 * the (P, B) pairs that fit the 32 zmm registers with TILE16_DEF and lists them in a
 * tile16_table; tile16_sweep runs them over a call's range. Inside a tile,
 * tile16_accumulate holds the input broadcasts and FMAs, given the kernel's weight
 * step, and tile16_store the relu and the masked store. */
#ifndef XNOR_TILE16_AVX512_H
#define XNOR_TILE16_AVX512_H

#include <immintrin.h>

#include "conv16.h"

#define TILE16_PMAX 16 /* widest pixel tile any kernel instantiates */
#define TILE16_BMAX 4  /* widest block tile */

typedef void (*tile16_fn)(const void *ctx, int64_t q0, int32_t bs);

/* fn[P][B - 1]: the tile of P pixels x B blocks, NULL where not instantiated. */
typedef struct {
    tile16_fn fn[TILE16_PMAX + 1][TILE16_BMAX];
} tile16_table;

/* tile_P_B: the kernel's tile() with P and B constant, compiled for AVX-512. */
#define TILE16_DEF(P, B)                                                                    \
    static XNOR_TARGET_AVX512 void tile_##P##_##B(const void *c, int64_t q0, int32_t bs) \
    {                                                                                       \
        tile(c, q0, bs, P, B);                                                              \
    }
#define TILE16_DEF_P(P) TILE16_DEF(P, 1) TILE16_DEF(P, 2) TILE16_DEF(P, 3) TILE16_DEF(P, 4)

/* Every tile up to 16 pixels whose P*B accumulators and B weight vectors fit the 32 zmm
 * registers, and their table `name`. */
#define TILE16_ALL(name)                                                                   \
    TILE16_DEF_P(1) TILE16_DEF_P(2) TILE16_DEF_P(3) TILE16_DEF_P(4) TILE16_DEF_P(6)     \
    TILE16_DEF(8, 1) TILE16_DEF(8, 2) TILE16_DEF(8, 3)                                  \
    TILE16_DEF(12, 1) TILE16_DEF(12, 2) TILE16_DEF(16, 1)                               \
    static const tile16_table name = {{                                                 \
        [1] = {tile_1_1, tile_1_2, tile_1_3, tile_1_4},                                 \
        [2] = {tile_2_1, tile_2_2, tile_2_3, tile_2_4},                                 \
        [3] = {tile_3_1, tile_3_2, tile_3_3, tile_3_4},                                 \
        [4] = {tile_4_1, tile_4_2, tile_4_3, tile_4_4},                                 \
        [6] = {tile_6_1, tile_6_2, tile_6_3, tile_6_4},                                 \
        [8] = {tile_8_1, tile_8_2, tile_8_3, NULL},                                     \
        [12] = {tile_12_1, tile_12_2, NULL, NULL},                                      \
        [16] = {tile_16_1, NULL, NULL, NULL},                                           \
    }};

/* Block b's 16 weights (one per output channel) for term t of the kernel row at wk, whose
 * blocks lie blk_elems weights apart: how a kernel turns its stored weights into a vector. */
typedef __m512 (*tile16_weights_fn)(const void *wk, int64_t blk_elems, int32_t t, int b);

/* The float-input kernels' inner loops: acc[p][b] = the sum over the kernel rows ky and the
 * T = kw*C contiguous (tap, channel) terms t of input x weight, for pixels q0 + p and blocks
 * bs + b, in (ky, t) order with one FMA per term (one rounding each). wb: block bs's first
 * kernel row; wrow_bytes: the bytes from one kernel row of a block to the next. Each input
 * broadcast feeds B FMAs and each weight vector P. */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX512 void
tile16_accumulate(const xnor_conv_args *a, int64_t q0, const int P, const int B, int64_t row_elems,
                  int32_t T, const char *wb, int64_t wrow_bytes, int64_t blk_elems,
                  tile16_weights_fn weights, __m512 acc[TILE16_PMAX][TILE16_BMAX])
{
    const float *ip[TILE16_PMAX];
    #pragma GCC unroll 16
    for (int p = 0; p < P; p++) {
        const int64_t q = q0 + p;
        const int32_t y = (int32_t)(q / a->ow), x = (int32_t)(q % a->ow);
        ip[p] = a->in + ((int64_t)y * a->sh * a->Wp + (int64_t)x * a->sw) * a->C;
    }
    #pragma GCC unroll 16
    for (int p = 0; p < P; p++)
        #pragma GCC unroll 16
        for (int b = 0; b < B; b++)
            acc[p][b] = _mm512_setzero_ps();

    for (int32_t ky = 0; ky < a->kh; ky++) {
        const void *wk = wb + ky * wrow_bytes;
        const float *ik[TILE16_PMAX];
        #pragma GCC unroll 16
        for (int p = 0; p < P; p++)
            ik[p] = ip[p] + ky * row_elems;
        for (int32_t t = 0; t < T; t++) {
            __m512 w[TILE16_BMAX];
            #pragma GCC unroll 16
            for (int b = 0; b < B; b++)
                w[b] = weights(wk, blk_elems, t, b);
            #pragma GCC unroll 16
            for (int p = 0; p < P; p++) {
                const __m512 x = _mm512_set1_ps(ik[p][t]);
                #pragma GCC unroll 16
                for (int b = 0; b < B; b++)
                    acc[p][b] = _mm512_fmadd_ps(x, w[b], acc[p][b]);
            }
        }
    }
}

/* Stores v, after the call's relu, at o in the lanes of m. */
static inline __attribute__((always_inline)) XNOR_TARGET_AVX512 void
tile16_store(const xnor_conv_args *a, float *o, __mmask16 m, __m512 v)
{
    if (a->relu)
        v = _mm512_max_ps(v, _mm512_setzero_ps()); /* NaN and -0 -> +0, as scalar */
    _mm512_mask_storeu_ps(o, m, v);
}

/* Runs the tiles over pixels [q_begin, q_end) x blocks [b0, b0 + nb): the blocks in
 * near-equal chunks of at most bmax (so no chunk is a thin tail), each chunk with the
 * widest instantiated pixel tile that the range fills. */
static inline void tile16_sweep(const tile16_table *t, const void *ctx, int64_t q_begin, int64_t q_end,
                                int32_t b0, int32_t nb, int bmax)
{
    static const int cand[] = {16, 12, 8, 6, 4, 3, 2, 1};
    const int32_t nchunks = (nb + bmax - 1) / bmax;
    int32_t bs = b0;
    for (int32_t k = 0; k < nchunks; k++) {
        const int B = nb / nchunks + (k < nb % nchunks);
        int P = 1;
        for (unsigned i = 0; i < sizeof cand / sizeof cand[0] && P == 1; i++)
            if (cand[i] <= q_end - q_begin && t->fn[cand[i]][B - 1])
                P = cand[i];
        const tile16_fn fn = t->fn[P][B - 1];
        for (int64_t q = q_begin; q < q_end; q += P)
            fn(ctx, q + P <= q_end ? q : q_end - P, bs);
        bs += B;
    }
}

/* The call of a float-input kernel (fconv, bwnconv): output rows [y0, y1) x the blocks of
 * [b0, b1) that hold channels below O (blocks wholly past O have nothing to store). When
 * the whole layer's weights, block_bytes per block, exceed stream_bytes they are streamed
 * from memory: then, for more than 4 pixels, one block per tile with the widest pixel
 * tile reads each weight once per up to 16 pixels; otherwise up to TILE16_BMAX blocks per
 * tile share each input broadcast. The layer's size decides, not this call's share: a
 * thread's share of a streamed layer does not become cache-resident. */
static inline void tile16_conv_sweep(const tile16_table *t, const void *ctx, const xnor_conv_args *a,
                                     double block_bytes, double stream_bytes)
{
    const int64_t q_begin = (int64_t)a->y0 * a->ow, q_end = (int64_t)a->y1 * a->ow;
    const int32_t b1 = a->b1 < (a->O + 15) / 16 ? a->b1 : (a->O + 15) / 16;
    const int32_t nb = b1 - a->b0;
    if (q_end <= q_begin || nb <= 0)
        return;
    const int32_t lb = a->layer_blocks > nb ? a->layer_blocks : nb;
    const int stream = block_bytes * lb > stream_bytes;
    tile16_sweep(t, ctx, q_begin, q_end, a->b0, nb, stream && q_end - q_begin > 4 ? 1 : TILE16_BMAX);
}

#endif /* XNOR_TILE16_AVX512_H */
