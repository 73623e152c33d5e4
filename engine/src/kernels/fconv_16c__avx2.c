/* fconv_16c__avx2.c -- float convolution / linear with AVX2 + FMA.
 *
 * Output channels in lanes: a 16-channel block is two ymm of weights per (tap, channel);
 * one input value per pixel is broadcast and FMA'd into both halves. A tile is P pixels x
 * 1 block = 2P accumulators; P = 6 gives 12 independent FMA chains (latency 4 x 2 ports
 * needs >= 8) and, with 2 weight registers and a broadcast, fits the 16 ymm registers.
 * Pixel tiling across rows with an overlapped last tile and the flat T = kw*C walk per
 * kernel row are as in the AVX-512 kernel. Partial blocks of O are stored masked. */
#include <immintrin.h>

#include "kernels.h"

#define PMAX 6

typedef struct {
    const xnor_conv_args *a;
    int64_t row_elems;  /* Wp * C */
    int64_t blk_elems;  /* kh * kw * C * 16 */
    int32_t T;          /* kw * C */
} ctx_t;

static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 __m256i
lane_mask(int32_t n)
{
    /* lane i enabled iff i < n */
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

static inline __attribute__((always_inline)) XNOR_TARGET_AVX2 void
tile(const ctx_t *c, int64_t q0, int32_t ob, const int P)
{
    const xnor_conv_args *a = c->a;
    const float *ip[PMAX];
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
        const int64_t q = q0 + p;
        const int32_t y = (int32_t)(q / a->ow), x = (int32_t)(q % a->ow);
        ip[p] = a->in + ((int64_t)y * a->sh * a->Wp + (int64_t)x * a->sw) * a->C;
    }
    const float *wb = a->wf + (int64_t)ob * c->blk_elems;
    const int32_t T = c->T;

    __m256 acc[PMAX][2];
#pragma GCC unroll 8
    for (int p = 0; p < P; p++)
        acc[p][0] = acc[p][1] = _mm256_setzero_ps();

    for (int32_t ky = 0; ky < a->kh; ky++) {
        const float *wk = wb + (int64_t)ky * T * XNOR_LANES;
        const float *ik[PMAX];
#pragma GCC unroll 8
        for (int p = 0; p < P; p++)
            ik[p] = ip[p] + ky * c->row_elems;
        for (int32_t t = 0; t < T; t++) {
            const __m256 w0 = _mm256_loadu_ps(wk + t * XNOR_LANES);
            const __m256 w1 = _mm256_loadu_ps(wk + t * XNOR_LANES + 8);
#pragma GCC unroll 8
            for (int p = 0; p < P; p++) {
                const __m256 x = _mm256_broadcast_ss(ik[p] + t);
                acc[p][0] = _mm256_fmadd_ps(x, w0, acc[p][0]);
                acc[p][1] = _mm256_fmadd_ps(x, w1, acc[p][1]);
            }
        }
    }

    const int32_t o0 = ob * XNOR_LANES;
    const int32_t left = a->O - o0;
    const __m256 zero = _mm256_setzero_ps();
    /* bias, scale and shift have 16 entries per block: full-width loads stay inside. */
    const __m256 bias0 = a->bias ? _mm256_loadu_ps(a->bias + o0) : zero;
    const __m256 bias1 = a->bias ? _mm256_loadu_ps(a->bias + o0 + 8) : zero;
    const __m256 scale0 = a->scale ? _mm256_loadu_ps(a->scale + o0) : zero;
    const __m256 scale1 = a->scale ? _mm256_loadu_ps(a->scale + o0 + 8) : zero;
    const __m256 shift0 = a->scale ? _mm256_loadu_ps(a->shift + o0) : zero;
    const __m256 shift1 = a->scale ? _mm256_loadu_ps(a->shift + o0 + 8) : zero;
    const __m256i m0 = lane_mask(left), m1 = lane_mask(left - 8);
#pragma GCC unroll 8
    for (int p = 0; p < P; p++) {
        __m256 v0 = _mm256_add_ps(acc[p][0], bias0);
        __m256 v1 = _mm256_add_ps(acc[p][1], bias1);
        if (a->scale) {
            /* folded batchnorm: mul then add, two roundings, as the separate op */
            v0 = _mm256_add_ps(_mm256_mul_ps(v0, scale0), shift0);
            v1 = _mm256_add_ps(_mm256_mul_ps(v1, scale1), shift1);
        }
        if (a->relu) {
            /* max(v, 0) with 0 as the second operand returns +0 for NaN and -0, as scalar */
            v0 = _mm256_max_ps(v0, zero);
            v1 = _mm256_max_ps(v1, zero);
        }
        float *o = a->out + (q0 + p) * a->ldo + o0;
        if (left >= 16) {
            _mm256_storeu_ps(o, v0);
            _mm256_storeu_ps(o + 8, v1);
        } else {
            /* maskstore never touches (or faults on) disabled lanes */
            _mm256_maskstore_ps(o, m0, v0);
            if (left > 8)
                _mm256_maskstore_ps(o + 8, m1, v1);
        }
    }
}

typedef void (*tile_fn)(const ctx_t *, int64_t, int32_t);

#define DEF_TILE(P)                                                                    \
    static XNOR_TARGET_AVX2 void tile_##P(const ctx_t *c, int64_t q0, int32_t ob) \
    {                                                                                  \
        tile(c, q0, ob, P);                                                            \
    }
DEF_TILE(1) DEF_TILE(2) DEF_TILE(3) DEF_TILE(4) DEF_TILE(5) DEF_TILE(6)

static const tile_fn k_tiles[PMAX + 1] = {NULL, tile_1, tile_2, tile_3, tile_4, tile_5, tile_6};

XNOR_TARGET_AVX2 void xnor_fconv_16c__avx2(const xnor_conv_args *a)
{
    const int64_t q_begin = (int64_t)a->y0 * a->ow, q_end = (int64_t)a->y1 * a->ow;
    /* Blocks wholly past O have nothing to store. */
    const int32_t b1 = a->b1 < (a->O + 15) / 16 ? a->b1 : (a->O + 15) / 16;
    if (q_end <= q_begin || b1 <= a->b0)
        return;
    ctx_t c = {a, (int64_t)a->Wp * a->C, (int64_t)a->kh * a->kw * a->C * XNOR_LANES,
               a->kw * a->C};
    const int P = q_end - q_begin < PMAX ? (int)(q_end - q_begin) : PMAX;
    const tile_fn fn = k_tiles[P];
    for (int32_t ob = a->b0; ob < b1; ob++)
        for (int64_t q = q_begin; q < q_end; q += P)
            fn(&c, q + P <= q_end ? q : q_end - P, ob);
}
