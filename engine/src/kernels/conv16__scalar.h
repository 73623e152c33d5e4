/* conv16__scalar.h -- the loop nest of the scalar float-input 16-channel convolutions
 * (fconv_16c__scalar.c, bwnconv_16c__scalar.c), written once for both.
 *
 * Per output pixel and block, acc[lane] sums over the kernel rows ky and the T = kw*C
 * contiguous (tap, channel) terms t of a row, in (ky, t) order -- the (ky, kx, c) order of
 * kernels.h -- one float32 rounding per term; then the block's epilogue. The weights'
 * kind is a compile-time constant of each caller: the function is always inlined, so GCC
 * compiles each kernel's loop on its own, as if written out. */
#ifndef XNOR_CONV16_SCALAR_H
#define XNOR_CONV16_SCALAR_H

#include "kernels.h"

typedef enum {
    CONV16_FLOAT, /* fconv: wf, 16 floats per term; acc += x * w; bias, folded batchnorm */
    CONV16_SIGN   /* bwnconv: wm, one 16-bit sign mask per term; acc +-= x; alpha, bias */
} conv16_weights;

static inline __attribute__((always_inline)) void conv16_scalar(const xnor_conv_args *a, const conv16_weights kind)
{
    const int32_t C = a->C;
    const int64_t T = (int64_t)a->kw * C;
    for (int32_t y = a->y0; y < a->y1; y++) {
        for (int32_t x = 0; x < a->ow; x++) {
            float *o = a->out + ((int64_t)y * a->ow + x) * a->ldo;
            for (int32_t ob = a->b0; ob < a->b1; ob++) {
                float acc[XNOR_LANES] = {0};
                for (int32_t ky = 0; ky < a->kh; ky++) {
                    const float *ip = a->in + ((int64_t)(y * a->sh + ky) * a->Wp + (int64_t)x * a->sw) * C;
                    const int64_t row = (int64_t)ob * a->kh + ky; /* the block's kernel row ky */
                    if (kind == CONV16_FLOAT) {
                        const float *wp = a->wf + row * T * XNOR_LANES;
                        for (int64_t t = 0; t < T; t++)
                            for (int l = 0; l < XNOR_LANES; l++)
                                acc[l] += ip[t] * wp[t * XNOR_LANES + l];
                    } else {
                        const uint16_t *wp = a->wm + row * T;
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
                }
                for (int l = 0; l < XNOR_LANES; l++) {
                    const int32_t oc = ob * XNOR_LANES + l;
                    if (oc >= a->O)
                        break;
                    float v;
                    if (kind == CONV16_FLOAT) {
                        v = acc[l] + (a->bias ? a->bias[oc] : 0.0f);
                        if (a->scale) { /* folded batchnorm: two roundings, as the separate op */
                            v = v * a->scale[oc];
                            v = v + a->shift[oc];
                        }
                    } else {
                        v = acc[l] * a->alpha[oc];
                        if (a->bias)
                            v = v + a->bias[oc];
                    }
                    if (a->relu && !(v > 0.0f))
                        v = 0.0f;
                    o[oc] = v;
                }
            }
        }
    }
}

#endif /* XNOR_CONV16_SCALAR_H */
