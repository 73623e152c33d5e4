/* fconv_16c__scalar.c -- reference float convolution / linear, 16 output channels per block.
 *
 * Accumulates in (ky, kx, c) order in float32 (conv16__scalar.h); the SIMD twins may sum in
 * another order, so they are compared with a tolerance rather than bit for bit. The
 * epilogue (bias, folded batchnorm, relu) is the same float32 operation sequence in every
 * ISA. */
#include "conv16__scalar.h"

void xnor_fconv_16c__scalar(const xnor_conv_args *a) { conv16_scalar(a, CONV16_FLOAT); }
