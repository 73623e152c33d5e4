/* bconv_16c__scalar.c -- reference binary convolution (XOR-popcount sums).
 *
 * Written straight from the formula in kernels.h; the SIMD kernels are tested against
 * this one bit for bit, so it favours obviousness over speed. */
#include "kernels.h"

void xnor_bconv_16c__scalar(const xnor_bconv_args *a)
{
    const int32_t cw = a->cw;
    for (int32_t y = a->y0; y < a->y1; y++) {
        for (int32_t x = 0; x < a->ow; x++) {
            int32_t *o = a->out + ((int64_t)y * a->ow + x) * a->out_stride;
            const int32_t ky0 = a->row_k ? a->row_k[2 * y] : 0, ky1 = a->row_k ? a->row_k[2 * y + 1] : a->kh;
            const int32_t kx0 = a->col_k ? a->col_k[2 * x] : 0, kx1 = a->col_k ? a->col_k[2 * x + 1] : a->kw;
            for (int32_t ob = a->b0; ob < a->b1; ob++) {
                int32_t acc[XNOR_LANES] = {0};
                for (int32_t ky = ky0; ky < ky1; ky++) {
                    for (int32_t kx = kx0; kx < kx1; kx++) {
                        const uint32_t *ip = a->in
                            + ((int64_t)(y * a->sh + ky) * a->Wp + (x * a->sw + kx)) * cw;
                        const uint32_t *wp = a->w
                            + (((int64_t)ob * a->kh + ky) * a->kw + kx) * cw * XNOR_LANES;
                        for (int32_t j = 0; j < cw; j++)
                            for (int l = 0; l < XNOR_LANES; l++)
                                acc[l] += __builtin_popcount(ip[j] ^ wp[j * XNOR_LANES + l]);
                    }
                }
                for (int l = 0; l < XNOR_LANES; l++)
                    o[ob * XNOR_LANES + l] = acc[l];
            }
        }
    }
}
