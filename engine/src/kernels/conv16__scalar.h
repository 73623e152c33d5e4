/* conv16__scalar.h -- the loop nest shared by the scalar 16-channel float-input
 * convolutions (fconv_16c__scalar.c, bwnconv_16c__scalar.c), the reference their SIMD
 * twins are tested against.
 *
 * For each output pixel of rows [y0, y1) and each 16-channel block of [b0, b1), the 16
 * sums run over the kernel rows ky and, within a row, the T = kw*C contiguous
 * (tap, channel) terms t of input and weights, in (ky, t) order: one float32 product and
 * one rounded add per term. The kernels differ in how a weight is stored and in what
 * turns a sum into the output. */
#ifndef XNOR_CONV16_SCALAR_H
#define XNOR_CONV16_SCALAR_H

#include "kernels.h"

/* The weight of output lane l of block ob for term t of kernel row ky. */
typedef float (*conv16_weight_fn)(const xnor_conv_args *a, int32_t ob, int32_t ky, int64_t t, int l);

/* Output channel oc's value from its sum, before relu. */
typedef float (*conv16_output_fn)(const xnor_conv_args *a, int32_t oc, float sum);

static inline void conv16_scalar(const xnor_conv_args *a, conv16_weight_fn weight, conv16_output_fn output)
{
    const int64_t T = (int64_t)a->kw * a->C; /* one kernel row of taps x channels is contiguous */
    for (int32_t y = a->y0; y < a->y1; y++) {
        for (int32_t x = 0; x < a->ow; x++) {
            float *o = a->out + ((int64_t)y * a->ow + x) * a->ldo;
            for (int32_t ob = a->b0; ob < a->b1; ob++) {
                float acc[XNOR_LANES] = {0};
                for (int32_t ky = 0; ky < a->kh; ky++) {
                    const float *ip = a->in + ((int64_t)(y * a->sh + ky) * a->Wp + (int64_t)x * a->sw) * a->C;
                    for (int64_t t = 0; t < T; t++)
                        for (int l = 0; l < XNOR_LANES; l++)
                            acc[l] = acc[l] + ip[t] * weight(a, ob, ky, t, l);
                }
                for (int l = 0; l < XNOR_LANES; l++) {
                    const int32_t oc = ob * XNOR_LANES + l;
                    if (oc >= a->O)
                        break;
                    float v = output(a, oc, acc[l]);
                    if (a->relu && !(v > 0.0f))
                        v = 0.0f;
                    o[oc] = v;
                }
            }
        }
    }
}

#endif /* XNOR_CONV16_SCALAR_H */
