/* conv16.h -- what the float-input 16-channel convolutions of every SIMD ISA (fconv,
 * bwnconv) know of a call: the constants their tiles read. */
#ifndef XNOR_CONV16_H
#define XNOR_CONV16_H

#include "kernels.h"

typedef struct {
    const xnor_conv_args *a;
    int64_t row_elems; /* Wp * C: one input row */
    int64_t blk_elems; /* kh * kw * C * per_term: the stored weights of one block */
    int32_t T;         /* kw * C: the contiguous (tap, channel) terms of one kernel row */
} conv16_ctx;

/* per_term: stored weights per (tap, channel) term of a block (16 floats, one mask). */
static inline conv16_ctx conv16_ctx_of(const xnor_conv_args *a, int64_t per_term)
{
    const conv16_ctx c = {a, (int64_t)a->Wp * a->C, (int64_t)a->kh * a->kw * a->C * per_term, a->kw * a->C};
    return c;
}

#endif /* XNOR_CONV16_H */
