/* fconv_16c__scalar.c -- reference float convolution / linear, 16 output channels per block.
 *
 * Accumulates in (ky, kx, c) order in float32; the SIMD twins may sum in another order,
 * so they are compared with a tolerance rather than bit for bit. The epilogue (bias, folded
 * batchnorm, relu) is the same float32 operation sequence in every ISA. */
#include "conv16__scalar.h"

/* Weights [ob][ky][kx][c][16]: a kernel row of a block is T = kw*C runs of 16 lanes. */
static inline float weight(const xnor_conv_args *a, int32_t ob, int32_t ky, int64_t t, int l)
{
    return a->wf[(((int64_t)ob * a->kh + ky) * a->kw * a->C + t) * XNOR_LANES + l];
}

static inline float output(const xnor_conv_args *a, int32_t oc, float sum)
{
    float v = sum + (a->bias ? a->bias[oc] : 0.0f);
    if (a->scale) { /* folded batchnorm: two roundings, as the separate op */
        v = v * a->scale[oc];
        v = v + a->shift[oc];
    }
    return v;
}

void xnor_fconv_16c__scalar(const xnor_conv_args *a)
{
    conv16_scalar(a, weight, output);
}
