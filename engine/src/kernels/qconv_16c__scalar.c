/* qconv_16c__scalar.c -- reference int8 convolution / linear (u8 x s8 sums in int32).
 *
 * Written straight from the formula in kernels.h; the SIMD kernels must equal it exactly
 * (integer arithmetic), so it favours obviousness over speed. */
#include "kernels.h"

void xnor_qconv_16c__scalar(const xnor_qconv_args *a)
{
    for (int32_t y = a->y0; y < a->y1; y++) {
        for (int32_t x = a->x0; x < a->x1; x++) {
            int32_t *o = a->out + ((int64_t)(y - a->y0) * a->out_row + (x - a->x0)) * a->out_stride;
            for (int32_t ob = a->b0; ob < a->b1; ob++) {
                int32_t acc[XNOR_LANES] = {0};
                for (int32_t ky = 0; ky < a->kh; ky++) {
                    const uint8_t *ip = a->in + (a->off0 + (int64_t)(y * a->sh + ky) * a->row_stride
                                                   + (int64_t)x * a->px_stride);
                    const int8_t *wp = a->w + ((int64_t)ob * a->kh + ky) * a->qg * 64;
                    for (int32_t g = 0; g < a->qg; g++)
                        for (int32_t lane = 0; lane < XNOR_LANES; lane++)
                            for (int32_t b = 0; b < 4; b++)
                                acc[lane] += (int32_t)ip[4 * g + b] * (int32_t)wp[(g * XNOR_LANES + lane) * 4 + b];
                }
                for (int32_t lane = 0; lane < XNOR_LANES; lane++) o[(ob - a->b0) * XNOR_LANES + lane] = acc[lane];
            }
        }
    }
}
