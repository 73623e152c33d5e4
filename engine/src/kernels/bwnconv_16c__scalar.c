/* bwnconv_16c__scalar.c -- reference binary-weight (BWN) convolution / linear.
 *
 * Float input, +-1 weights as one bit per weight ([ob][ky][kx][c] uint16 lane masks).
 * Every term x * (+-1) is an exact +x or -x, added in (ky, kx, c) order: one float32
 * rounding per step, so the SIMD twins, which keep one accumulator per output and the
 * same order, give identical bits. No 2*P - S rewriting (it would cancel). */
#include "conv16__scalar.h"

static inline float weight(const xnor_conv_args *a, int32_t ob, int32_t ky, int64_t t, int l)
{
    const unsigned m = a->wm[((int64_t)ob * a->kh + ky) * a->kw * a->C + t];
    return (m >> l) & 1u ? 1.0f : -1.0f;
}

static inline float output(const xnor_conv_args *a, int32_t oc, float sum)
{
    float v = sum * a->alpha[oc];
    if (a->bias)
        v = v + a->bias[oc];
    return v;
}

void xnor_bwnconv_16c__scalar(const xnor_conv_args *a)
{
    conv16_scalar(a, weight, output);
}
