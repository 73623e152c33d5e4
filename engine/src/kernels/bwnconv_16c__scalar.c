/* bwnconv_16c__scalar.c -- reference binary-weight (BWN) convolution / linear.
 *
 * Float input, +-1 weights as one bit per weight ([ob][ky][kx][c] uint16 lane masks).
 * Every term is an exact +x or -x, added in (ky, kx, c) order (conv16__scalar.h): one
 * float32 rounding per step, so the SIMD twins, which keep one accumulator per output and
 * the same order, give identical bits. No 2*P - S rewriting (it would cancel). */
#include "conv16__scalar.h"

void xnor_bwnconv_16c__scalar(const xnor_conv_args *a) { conv16_scalar(a, CONV16_SIGN); }
