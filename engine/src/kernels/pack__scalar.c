/* pack__scalar.c -- reference binarize + bit-pack.
 *
 * The batch-norm step must round twice (mul, then add) so every ISA agrees on the sign
 * of values near zero; the library is built with -ffp-contract=off, which keeps the
 * compiler from fusing the two into an FMA here. */
#include "kernels.h"

void xnor_pack__scalar(const xnor_pack_args *a)
{
    const int32_t C = a->C, cw = a->cw;
    for (int32_t y = a->y0; y < a->y1; y++) {
        for (int32_t x = 0; x < a->W; x++) {
            const float *ip = a->in + ((int64_t)y * a->W + x) * C;
            uint32_t *op = a->out + ((int64_t)(y + a->pt) * a->Wp + (x + a->pl)) * cw;
            for (int32_t j = 0; j < cw; j++) {
                uint32_t word = 0;
                int32_t cend = (j + 1) * 32 < C ? (j + 1) * 32 : C;
                for (int32_t c = j * 32; c < cend; c++) {
                    float v = ip[c];
                    if (a->scale) {
                        v = v * a->scale[c];
                        v = v + a->shift[c];
                    }
                    if (v >= 0.0f)
                        word |= 1u << (c & 31);
                }
                op[j] = word;
            }
        }
    }
}
