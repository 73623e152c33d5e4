/* fconv_16c__scalar.c -- reference float convolution / linear, 16 output channels per block.
 *
 * Accumulates in (ky, kx, c) order in float32; the SIMD twins may sum in another order,
 * so they are compared with a tolerance rather than bit for bit. The epilogue (bias, folded
 * batchnorm, relu) is the same float32 operation sequence in every ISA. */
#include "kernels.h"

void xnor_fconv_16c__scalar(const xnor_conv_args *a)
{
    const int32_t C = a->C;
    for (int32_t y = a->y0; y < a->y1; y++) {
        for (int32_t x = 0; x < a->ow; x++) {
            float *o = a->out + ((int64_t)y * a->ow + x) * a->ldo;
            for (int32_t ob = a->b0; ob < a->b1; ob++) {
                float acc[XNOR_LANES] = {0};
                for (int32_t ky = 0; ky < a->kh; ky++) {
                    for (int32_t kx = 0; kx < a->kw; kx++) {
                        const float *ip = a->in
                            + ((int64_t)(y * a->sh + ky) * a->Wp + (x * a->sw + kx)) * C;
                        const float *wp = a->wf
                            + (((int64_t)ob * a->kh + ky) * a->kw + kx) * C * XNOR_LANES;
                        for (int32_t c = 0; c < C; c++)
                            for (int l = 0; l < XNOR_LANES; l++)
                                acc[l] += ip[c] * wp[c * XNOR_LANES + l];
                    }
                }
                for (int l = 0; l < XNOR_LANES; l++) {
                    int32_t oc = ob * XNOR_LANES + l;
                    if (oc >= a->O)
                        break;
                    float v = acc[l] + (a->bias ? a->bias[oc] : 0.0f);
                    if (a->scale) { /* folded batchnorm: two roundings, as the separate op */
                        v = v * a->scale[oc];
                        v = v + a->shift[oc];
                    }
                    if (a->relu && !(v > 0.0f))
                        v = 0.0f;
                    o[oc] = v;
                }
            }
        }
    }
}
