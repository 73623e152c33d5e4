/* qlinear_g32__scalar.c -- reference fused int8 linear with per-group float scales.
 *
 * Written straight from the formula in kernels.h: per output, each group's exact int32
 * sum, scaled and added in group order in float32. The SIMD kernels must equal it bit for
 * bit, so it favours obviousness over speed. */
#include <string.h>

#include "kernels.h"

void xnor_qlinear_g32__scalar(const xnor_qlinear_args *a)
{
    for (int32_t s = a->s0; s < a->s1; s++) {
        const uint8_t *u = a->in + (int64_t)s * a->in_stride;
        int32_t z;
        memcpy(&z, u + (int64_t)a->ng * 32 + (int64_t)a->ng * 4, 4);
        float *y = a->out + (int64_t)s * a->out_stride;
        for (int32_t ob = a->b0; ob < a->b1; ob++) {
            for (int32_t lane = 0; lane < XNOR_LANES && ob * XNOR_LANES + lane < a->O; lane++) {
                float sum = 0.0f;
                for (int32_t g = 0; g < a->ng; g++) {
                    const int64_t k = ((int64_t)ob * a->ng + g) * XNOR_LANES + lane;
                    const int8_t *wp = a->w + ((int64_t)ob * a->ng + g) * 512;
                    int32_t acc = 0;
                    for (int32_t j = 0; j < 32; j++)
                        acc += (int32_t)u[32 * g + j] * (int32_t)wp[(j / 4) * 64 + lane * 4 + j % 4];
                    float sx;
                    memcpy(&sx, u + (int64_t)a->ng * 32 + (int64_t)g * 4, 4);
                    float t = (float)(acc - z * a->wsum[k]) * a->scale[k];
                    t = t * sx;
                    sum = g ? sum + t : t;
                }
                y[ob * XNOR_LANES + lane] = sum;
            }
        }
    }
}
