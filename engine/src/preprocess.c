/* preprocess.c -- xnor_preprocess_resize: crop-then-resize of a uint8 image into a model's
 * uint8 input (xnornet.h).
 *
 * The filter is Pillow's antialiased bilinear resampling, reproduced operation for
 * operation so the output equals Image.resize(size, BILINEAR, box, reducing_gap=None) on
 * the same pixels: per output sample a triangle filter widened by the downscale factor,
 * weights computed in double and normalized to sum 1, converted to 22-bit fixed point;
 * a horizontal pass over the source rows the vertical filter will read, rounded to uint8,
 * then the vertical pass. The box is float32 as in Pillow, so a caller's double box rounds
 * the same way. The kernels (kernels/resize_u8__*.c) do the sums; this file checks the
 * request, computes the filters and owns the memory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

xnor_resize_params xnor_resize_default_params(void)
{
    xnor_resize_params p;
    memset(&p, 0, sizeof p);
    p.channels = 3;
    p.isa = XNOR_ISA_AUTO;
    return p;
}

typedef struct {
    int32_t *first, *k;
    int32_t taps;
} resize_filter;

static void filter_free(resize_filter *f)
{
    free(f->first);
    free(f->k);
    memset(f, 0, sizeof *f);
}

static double triangle(double x)
{
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* The filter that maps source samples [in0, in1) of a line of in_size onto out_size samples.
 * Pillow's weights; then every output gets the same number of taps (the widest filter's,
 * at most in_size), its window moved back from the far edge where needed and the weights
 * moved with it (zeros fill the rest), so the kernels run one fixed loop and never leave
 * the line. Sizes: taps <= ceil(in / out) * 2 + 1, so out * taps <= 2 * in + 3 * out < 2^19
 * for sides <= 65535: the tables stay small. Each weight rounds up by at most 1/2, so a sum of
 * 255 * weights stays below 255 * (2^22 + 2^16) < 2^31. */
static xnor_status filter_new(resize_filter *f, int32_t in_size, float in0, float in1, int32_t out_size,
                              char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    const double scale = (double)(in1 - in0) / out_size;  /* float32 difference, as Pillow */
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 1.0 * filterscale;            /* the triangle's support is 1 */
    const int32_t ksize = (int32_t)ceil(support) * 2 + 1;
    const int32_t taps = ksize < in_size ? ksize : in_size;
    f->taps = taps;
    f->first = malloc((size_t)out_size * sizeof(int32_t));
    f->k = calloc((size_t)out_size * (size_t)taps, sizeof(int32_t));
    double *w = malloc((size_t)ksize * sizeof(double));
    if (!f->first || !f->k || !w) {
        free(w);
        filter_free(f);
        xnor_set_err(err, errlen, "out of memory");
        return XNOR_ERR_OUT_OF_MEMORY;
    }
    const double ss = 1.0 / filterscale;
    for (int32_t xx = 0; xx < out_size; xx++) {
        const double center = in0 + (xx + 0.5) * scale;
        int32_t lo = (int32_t)(center - support + 0.5);
        int32_t hi = (int32_t)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        const int32_t n = hi > lo ? hi - lo : 0;  /* <= ksize and <= in_size */
        double sum = 0.0;
        for (int32_t t = 0; t < n; t++) {
            w[t] = triangle((t + lo - center + 0.5) * ss);
            sum += w[t];
        }
        const int32_t first = lo + taps <= in_size ? lo : in_size - taps;
        int32_t *k = f->k + (size_t)xx * taps + (lo - first);
        for (int32_t t = 0; t < n; t++) {
            const double v = sum != 0.0 ? w[t] / sum : w[t];
            k[t] = (int32_t)(0.5 + v * (1 << XNOR_RESIZE_BITS));  /* v >= 0 */
        }
        f->first[xx] = first;
    }
    free(w);
    return XNOR_OK;
}

static int box_ok(float lo, float hi, uint32_t size)
{
    return isfinite(lo) && isfinite(hi) && lo >= 0.0f && hi > lo && hi <= (float)size;
}

xnor_status xnor_preprocess_resize(const xnor_resize_params *p, const uint8_t *src, size_t src_len,
                                   uint8_t *dst, size_t dst_len, char *errbuf, size_t errbuf_len)
{
    if (errbuf && errbuf_len) errbuf[0] = '\0';
    if (!p || !src || !dst) {
        xnor_set_err(errbuf, errbuf_len, "params, src or dst is NULL");
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    const uint32_t C = p->channels;
    if (C != 1 && C != 3) {
        xnor_set_err(errbuf, errbuf_len, "channels is %u; expected 1 or 3", C);
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    if (p->src_w < 1 || p->src_h < 1 || p->src_w > XNOR_PREPROCESS_MAX_SIDE || p->src_h > XNOR_PREPROCESS_MAX_SIDE) {
        xnor_set_err(errbuf, errbuf_len, "source size %ux%u is outside 1..%u", p->src_w, p->src_h,
                     (unsigned)XNOR_PREPROCESS_MAX_SIDE);
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    if (p->dst_w < 1 || p->dst_h < 1 || p->dst_w > XNOR_PREPROCESS_MAX_SIDE || p->dst_h > XNOR_PREPROCESS_MAX_SIDE) {
        xnor_set_err(errbuf, errbuf_len, "output size %ux%u is outside 1..%u", p->dst_w, p->dst_h,
                     (unsigned)XNOR_PREPROCESS_MAX_SIDE);
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    /* sides <= 65535 and C <= 3: these products fit in 64 bits with room to spare */
    const uint64_t row = (uint64_t)p->src_w * C;
    if (p->src_stride < row) {
        xnor_set_err(errbuf, errbuf_len, "source stride %zu is less than a row (%llu bytes)", p->src_stride,
                     (unsigned long long)row);
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    if (p->src_stride > ((uint64_t)1 << 40) ||
        src_len < (uint64_t)p->src_stride * (p->src_h - 1) + row) {
        xnor_set_err(errbuf, errbuf_len, "source of %zu bytes is shorter than %u rows of stride %zu", src_len,
                     p->src_h, p->src_stride);
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    const uint64_t out_row = (uint64_t)p->dst_w * C;
    if (dst_len != out_row * p->dst_h) {
        xnor_set_err(errbuf, errbuf_len, "dst_len is %zu; %ux%ux%u needs %llu", dst_len, p->dst_h, p->dst_w, C,
                     (unsigned long long)(out_row * p->dst_h));
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    if (!box_ok(p->box[0], p->box[2], p->src_w) || !box_ok(p->box[1], p->box[3], p->src_h)) {
        xnor_set_err(errbuf, errbuf_len, "box (%g, %g, %g, %g) is not a non-empty region of the %ux%u source",
                     (double)p->box[0], (double)p->box[1], (double)p->box[2], (double)p->box[3], p->src_w,
                     p->src_h);
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    if (p->reverse_channels > 1) {
        xnor_set_err(errbuf, errbuf_len, "reverse_channels is %u; expected 0 or 1", p->reverse_channels);
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    xnor_isa isa;
    const xnor_kernel_table *kt = NULL;
    if (xnor_isa_resolve((xnor_isa)p->isa, &isa) == XNOR_OK) kt = xnor_kernels_for(isa);
    if (!kt) {
        xnor_set_err(errbuf, errbuf_len, "instruction set %d is not available on this CPU", (int)p->isa);
        return XNOR_ERR_UNSUPPORTED_ISA;
    }

    resize_filter fx, fy;
    xnor_status st = filter_new(&fy, (int32_t)p->src_h, p->box[1], p->box[3], (int32_t)p->dst_h, errbuf, errbuf_len);
    if (st != XNOR_OK) return st;
    st = filter_new(&fx, (int32_t)p->src_w, p->box[0], p->box[2], (int32_t)p->dst_w, errbuf, errbuf_len);
    if (st != XNOR_OK) {
        filter_free(&fy);
        return st;
    }
    /* The rows the vertical filter reads: only these get the horizontal pass. */
    int32_t y_first = fy.first[0], y_last = fy.first[0] + fy.taps;
    for (uint32_t i = 1; i < p->dst_h; i++) {
        if (fy.first[i] < y_first) y_first = fy.first[i];
        if (fy.first[i] + fy.taps > y_last) y_last = fy.first[i] + fy.taps;
    }
    const int32_t rows = y_last - y_first;  /* >= 1: taps >= 1 */
    uint8_t *tmp = malloc((size_t)rows * out_row);
    if (!tmp) {
        filter_free(&fx);
        filter_free(&fy);
        xnor_set_err(errbuf, errbuf_len, "out of memory");
        return XNOR_ERR_OUT_OF_MEMORY;
    }
    for (uint32_t i = 0; i < p->dst_h; i++) fy.first[i] -= y_first;

    const xnor_resize_h_args h = {
        .src = src, .src_stride = p->src_stride, .src_len = src_len, .src_w = (int32_t)p->src_w, .C = (int32_t)C,
        .y0 = y_first, .y1 = y_last, .out_w = (int32_t)p->dst_w,
        .f = {fx.first, fx.k, fx.taps},
        .dst = tmp, .dst_stride = (size_t)out_row, .reverse = (int32_t)(C == 3 && p->reverse_channels),
    };
    kt->resize_h(&h);
    const xnor_resize_v_args v = {
        .src = tmp, .src_stride = (size_t)out_row, .n = (int32_t)out_row, .out_h = (int32_t)p->dst_h,
        .f = {fy.first, fy.k, fy.taps},
        .dst = dst, .dst_stride = (size_t)out_row,
    };
    kt->resize_v(&v);
    free(tmp);
    filter_free(&fx);
    filter_free(&fy);
    return XNOR_OK;
}
