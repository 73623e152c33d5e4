/* resize_u8__scalar.c -- the two passes of the uint8 image resampler (kernels.h), portable C.
 * The reference every other ISA's twin must equal bit for bit. */
#include "kernels.h"

static inline uint8_t resize_clamp(int32_t s)
{
    const int32_t v = s >> XNOR_RESIZE_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void xnor_resize_h_u8__scalar(const xnor_resize_h_args *a)
{
    const int32_t C = a->C, taps = a->f.taps, half = 1 << (XNOR_RESIZE_BITS - 1);
    const int r0 = a->reverse ? 2 : 0, r2 = a->reverse ? 0 : 2;
    for (int32_t y = a->y0; y < a->y1; y++) {
        const uint8_t *in = a->src + (size_t)y * a->src_stride;
        uint8_t *out = a->dst + (size_t)(y - a->y0) * a->dst_stride;
        for (int32_t xx = 0; xx < a->out_w; xx++) {
            const int32_t *k = a->f.k + (size_t)xx * taps;
            const uint8_t *p = in + (size_t)a->f.first[xx] * C;
            uint8_t *o = out + (size_t)xx * C;
            if (C == 1) {
                int32_t s = half;
                for (int32_t t = 0; t < taps; t++) s += p[t] * k[t];
                o[0] = resize_clamp(s);
            } else {
                int32_t s0 = half, s1 = half, s2 = half;
                for (int32_t t = 0; t < taps; t++) {
                    s0 += p[3 * t + 0] * k[t];
                    s1 += p[3 * t + 1] * k[t];
                    s2 += p[3 * t + 2] * k[t];
                }
                o[r0] = resize_clamp(s0);
                o[1] = resize_clamp(s1);
                o[r2] = resize_clamp(s2);
            }
        }
    }
}

void xnor_resize_v_u8__scalar(const xnor_resize_v_args *a)
{
    enum { BLOCK = 64 };  /* bytes of a row summed together, so rows are read in order */
    const int32_t half = 1 << (XNOR_RESIZE_BITS - 1);
    int32_t acc[BLOCK];
    for (int32_t yy = 0; yy < a->out_h; yy++) {
        const int32_t *k = a->f.k + (size_t)yy * a->f.taps;
        const uint8_t *in = a->src + (size_t)a->f.first[yy] * a->src_stride;
        uint8_t *out = a->dst + (size_t)yy * a->dst_stride;
        for (int32_t i0 = 0; i0 < a->n; i0 += BLOCK) {
            const int32_t m = a->n - i0 < BLOCK ? a->n - i0 : BLOCK;
            for (int32_t j = 0; j < m; j++) acc[j] = half;
            for (int32_t t = 0; t < a->f.taps; t++) {
                const uint8_t *row = in + (size_t)t * a->src_stride + i0;
                const int32_t w = k[t];
                for (int32_t j = 0; j < m; j++) acc[j] += row[j] * w;
            }
            for (int32_t j = 0; j < m; j++) out[i0 + j] = resize_clamp(acc[j]);
        }
    }
}
