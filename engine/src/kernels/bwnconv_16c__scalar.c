/* bwnconv_16c__scalar.c -- reference binary-weight (BWN) convolution / linear.
 *
 * Float input, +-1 weights as one bit per weight ([ob][ky][kx][c] uint16 lane masks).
 * Every term is an exact +x or -x, added in (ky, kx, c) order: one float32 rounding per
 * step, so the SIMD twins, which keep one accumulator per output and the same order,
 * give identical bits. No 2*P - S rewriting (it would cancel). */
#include "kernels.h"

void xnor_bwnconv_16c__scalar(const xnor_conv_args *a)
{
    const int32_t C = a->C;
    const int64_t T = (int64_t)a->kw * C; /* one kernel row of taps x channels is contiguous */
    for (int32_t y = a->y0; y < a->y1; y++) {
        for (int32_t x = 0; x < a->ow; x++) {
            float *o = a->out + ((int64_t)y * a->ow + x) * a->ldo;
            for (int32_t ob = a->b0; ob < a->b1; ob++) {
                float acc[XNOR_LANES] = {0};
                for (int32_t ky = 0; ky < a->kh; ky++) {
                    const float *ip = a->in + ((int64_t)(y * a->sh + ky) * a->Wp + (int64_t)x * a->sw) * C;
                    const uint16_t *wp = a->wm + ((int64_t)ob * a->kh + ky) * T;
                    for (int64_t t = 0; t < T; t++) {
                        const float v = ip[t];
                        const unsigned m = wp[t];
                        for (int l = 0; l < XNOR_LANES; l++) {
                            if ((m >> l) & 1u)
                                acc[l] = acc[l] + v;
                            else
                                acc[l] = acc[l] - v;
                        }
                    }
                }
                for (int l = 0; l < XNOR_LANES; l++) {
                    const int32_t oc = ob * XNOR_LANES + l;
                    if (oc >= a->O)
                        break;
                    float v = acc[l] * a->alpha[oc];
                    if (a->bias)
                        v = v + a->bias[oc];
                    if (a->relu && !(v > 0.0f))
                        v = 0.0f;
                    o[oc] = v;
                }
            }
        }
    }
}
