/* test_kernels.c -- correctness tests for the xnornet microkernels.
 *
 * 1. The scalar kernels against naive formulas written independently from the
 *    kernels.h comments (bit-by-bit XOR counts, double accumulation, per-channel bits).
 * 2. Every ISA this CPU has against scalar: bconv, bwnconv and pack bit-identical over the
 *    whole output buffer (so writes outside [y0,y1) x [b0,b1) show up as a changed
 *    canary), fconv within 1e-4 of the sum of |terms|, canaries exact; fconv's folded
 *    batchnorm epilogue bit-identical to the separate batchnorm op.
 * 3. Every int8 kernel variant the CPU can run (qconv, qlinear_g32) against scalar, exact,
 *    and the scalar qconv against its formula.
 * Inputs are malloc'ed to their exact size so AddressSanitizer catches over-reads.
 *
 * Build (from the repository root; KERNELS = every .c file in engine/src/kernels):
 *   cc -O2 -std=c11 -ffp-contract=off -pthread -Iengine/include $KERNELS \
 *      tests/c/test_kernels.c -o /tmp/t -lm
 * Usage: t [seed] [iterations-scale]; exit status 0 iff every check passed. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/src/kernels/kernels.h"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static int g_fail;
static long g_checks;

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static int rint_in(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)(hi - lo + 1)); }
static float rfloat(void) { return (float)((double)(rnd() >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

#define FAIL(...)                                                                 \
    do {                                                                          \
        if (g_fail++ < 30) {                                                      \
            fprintf(stderr, "FAIL: ");                                            \
            fprintf(stderr, __VA_ARGS__);                                         \
            fprintf(stderr, "\n");                                                \
        }                                                                         \
    } while (0)

static const xnor_kernel_table *g_isas[4];
static int g_nisa;

/* One op of an ISA's kernel table run on its args. */
typedef void (*op_run)(const xnor_kernel_table *isa, const void *args);

/* Every ISA but scalar runs the op on `args`, whose output is `got`: n 4-byte words, first set
 * to `canary`, that must equal the words of `ref` (the scalar result) bit for bit, canaries
 * included. `what` names the op and the case in a failure. */
static void check_isas_bit_exact(op_run run, const void *args, const void *ref, void *got, size_t n,
                                 uint32_t canary, const char *what)
{
    const uint32_t *want = ref;
    uint32_t *have = got;
    for (int k = 0; k < g_nisa; k++) {
        if (g_isas[k]->isa == XNOR_ISA_SCALAR)
            continue;
        for (size_t i = 0; i < n; i++)
            have[i] = canary;
        run(g_isas[k], args);
        g_checks++;
        size_t i = 0;
        while (i < n && have[i] == want[i])
            i++;
        if (i < n) {
            float hf, wf;
            memcpy(&hf, &have[i], 4), memcpy(&wf, &want[i], 4);
            FAIL("%s %s first diff at %zu: %08x vs %08x (as float %.9g vs %.9g)", g_isas[k]->name, what, i,
                 have[i], want[i], hf, wf);
        }
    }
}

/* The int8 kernels have more variants than tables have ISAs (AVX2 with or without
 * AVX-VNNI, AVX-512 with or without VNNI): each one this CPU can run is tested against
 * the scalar kernel directly, whichever table picks it. Entry 0 is scalar. */
typedef struct {
    const char *name;
    xnor_qconv_kernel *qconv;
    xnor_qlinear_kernel *qlinear_g32;
} int8_variant;
static int8_variant g_int8[4];
static int g_nint8;

/* ------------------------------------------------------------------ bconv */

typedef struct {
    int Hp, Wp, cw, kh, kw, sh, sw, oh, ow, nb, stride_extra;
    int y0, y1, b0, b1;
} bshape;

#define CANARY_I 0x5A5A1234

/* fill: 0 random bits; 1 input all ones and weights all zeros, so every XOR counts 32
 * (the largest per-byte counts: catches byte-counter overflow in the AVX2 popcount);
 * 2 a mix of all-zero, all-one and random words. */
static uint32_t bword(int fill, int is_w)
{
    if (fill == 1)
        return is_w ? 0u : 0xFFFFFFFFu;
    if (fill == 2) {
        switch (rnd() % 3) {
        case 0: return 0u;
        case 1: return 0xFFFFFFFFu;
        }
    }
    return (uint32_t)rnd();
}

/* The taps of each of n outputs (stride st, k taps) inside an input of `size` elements
 * padded by lo before it: ranges[2i], ranges[2i+1] as kernels.h's row_k / col_k (as the
 * executor computes them: a window wholly in the padding gets an empty range). */
static void make_taps(int n, int st, int k, int size, int lo, int32_t *ranges)
{
    for (int i = 0; i < n; i++) {
        const int s0 = i * st - lo;
        ranges[2 * i] = s0 < 0 ? (-s0 < k ? -s0 : k) : 0;
        ranges[2 * i + 1] = size - s0 < k ? (size - s0 > 0 ? size - s0 : 0) : k;
    }
}

/* halo: 1 to take a random padding out of Hp x Wp and skip its taps (row_k / col_k),
 * p + 2 for a padding of p on every side; the halo words are random, so a kernel that
 * reads them shows up. 0: every tap (row_k, col_k NULL). */
static void run_bconv(const xnor_kernel_table *isa, const void *args) { isa->bconv(args); }

static void run_bconv_case_fill(const bshape *s, const char *tag, int fill, int halo)
{
    const size_t nin = (size_t)s->Hp * s->Wp * s->cw;
    const size_t nw = (size_t)s->nb * s->kh * s->kw * s->cw * XNOR_LANES;
    const int out_stride = (s->nb + s->stride_extra) * XNOR_LANES;
    const size_t nout = (size_t)s->oh * s->ow * out_stride;
    uint32_t *in = xmalloc(nin * 4), *w = xmalloc(nw * 4);
    for (size_t i = 0; i < nin; i++)
        in[i] = bword(fill, 0);
    for (size_t i = 0; i < nw; i++)
        w[i] = bword(fill, 1);
    int32_t *ref = xmalloc(nout * 4), *got = xmalloc(nout * 4);
    int32_t *row_k = xmalloc(sizeof(int32_t) * 2 * (size_t)s->oh), *col_k = xmalloc(sizeof(int32_t) * 2 * (size_t)s->ow);
    if (halo) {
        const int fixed = halo >= 2 ? halo - 2 : -1;
        /* up to kh / kw: some windows may lie wholly in the padding */
        const int pt = fixed >= 0 ? fixed : rint_in(0, s->kh), pb = fixed >= 0 ? fixed : rint_in(0, s->kh);
        const int pl = fixed >= 0 ? fixed : rint_in(0, s->kw), pr = fixed >= 0 ? fixed : rint_in(0, s->kw);
        halo = s->Hp - pt - pb >= 1 && s->Wp - pl - pr >= 1;
        if (halo) {
            make_taps(s->oh, s->sh, s->kh, s->Hp - pt - pb, pt, row_k);
            make_taps(s->ow, s->sw, s->kw, s->Wp - pl - pr, pl, col_k);
        }
    }
    xnor_bconv_args a = {in, s->Hp, s->Wp, s->cw, w, s->kh, s->kw, s->sh, s->sw,
                         s->oh, s->ow, ref, out_stride, s->y0, s->y1, s->b0, s->b1,
                         halo ? row_k : NULL, halo ? col_k : NULL};
    for (size_t i = 0; i < nout; i++)
        ref[i] = CANARY_I;
    xnor_bconv_16c__scalar(&a);

    /* Naive check of scalar on a sample of outputs (all of them for small cases). */
    const size_t step = nout > 20000 ? nout / 20000 + 1 : 1;
    for (size_t i = 0; i < nout; i += step) {
        const int q = (int)(i / out_stride), ch = (int)(i % out_stride);
        const int y = q / s->ow, x = q % s->ow, ob = ch / 16, lane = ch % 16;
        int32_t want = CANARY_I;
        if (y >= s->y0 && y < s->y1 && ob >= s->b0 && ob < s->b1) {
            want = 0;
            for (int ky = halo ? row_k[2 * y] : 0; ky < (halo ? row_k[2 * y + 1] : s->kh); ky++)
                for (int kx = halo ? col_k[2 * x] : 0; kx < (halo ? col_k[2 * x + 1] : s->kw); kx++)
                    for (int j = 0; j < s->cw; j++) {
                        uint32_t iv = in[((size_t)(y * s->sh + ky) * s->Wp + x * s->sw + kx) * s->cw + j];
                        uint32_t wv = w[((((size_t)ob * s->kh + ky) * s->kw + kx) * s->cw + j) * 16 + lane];
                        for (int bit = 0; bit < 32; bit++)
                            want += ((iv >> bit) & 1) != ((wv >> bit) & 1);
                    }
        }
        g_checks++;
        if (ref[i] != want) {
            FAIL("bconv scalar vs naive %s: y=%d x=%d ch=%d got %d want %d", tag, y, x, ch,
                 ref[i], want);
            break;
        }
    }

    char what[256];
    snprintf(what, sizeof what, "bconv %s: Hp=%d Wp=%d cw=%d k=%dx%d s=%dx%d o=%dx%d nb=%d y=[%d,%d) b=[%d,%d) halo %d",
             tag, s->Hp, s->Wp, s->cw, s->kh, s->kw, s->sh, s->sw, s->oh, s->ow, s->nb, s->y0, s->y1,
             s->b0, s->b1, halo);
    a.out = got;
    check_isas_bit_exact(run_bconv, &a, ref, got, nout, CANARY_I, what);
    free(in), free(w), free(ref), free(got), free(row_k), free(col_k);
}

static void run_bconv_case(const bshape *s, const char *tag)
{
    run_bconv_case_fill(s, tag, rnd() % 8 == 0 ? 2 : 0, (int)(rnd() % 2));
}

static void random_range(int n, int *lo, int *hi)
{
    if (rnd() % 3 == 0) {
        *lo = 0, *hi = n;
        return;
    }
    *lo = rint_in(0, n);
    *hi = rint_in(*lo, n);
}

static void test_bconv_random(int iters)
{
    for (int it = 0; it < iters; it++) {
        bshape s;
        s.cw = rnd() % 4 == 0 ? rint_in(1, 40) : rint_in(1, 4);
        s.kh = rint_in(1, 6), s.kw = rint_in(1, 6);
        s.sh = rint_in(1, 4), s.sw = rint_in(1, 4);
        s.oh = rint_in(1, 9), s.ow = rint_in(1, 15);
        s.Hp = (s.oh - 1) * s.sh + s.kh + rint_in(0, 2);
        s.Wp = (s.ow - 1) * s.sw + s.kw + rint_in(0, 2);
        s.nb = rint_in(1, 11);
        s.stride_extra = rint_in(0, 1);
        random_range(s.oh, &s.y0, &s.y1);
        random_range(s.nb, &s.b0, &s.b1);
        run_bconv_case(&s, "random");
    }
}

static void test_bconv_alexnet(void)
{
    /* Full layers, except row sub-ranges where a full scalar pass would be slow. */
    const bshape shapes[] = {
        {31, 31, 3, 5, 5, 1, 1, 27, 27, 16, 0, 0, 27, 0, 16},   /* conv2 */
        {31, 31, 3, 5, 5, 1, 1, 27, 27, 16, 0, 5, 12, 3, 14},   /* conv2, thread slice */
        {15, 15, 8, 3, 3, 1, 1, 13, 13, 24, 0, 0, 13, 0, 24},   /* conv3 */
        {15, 15, 12, 3, 3, 1, 1, 13, 13, 24, 0, 0, 13, 0, 24},  /* conv4 */
        {15, 15, 12, 3, 3, 1, 1, 13, 13, 16, 0, 4, 9, 1, 15},   /* conv5 slice */
        {1, 1, 288, 1, 1, 1, 1, 1, 1, 256, 0, 0, 1, 0, 256},    /* fc6 batch 1 (4096 -> 256 blocks cut) */
        {1, 16, 288, 1, 1, 1, 1, 1, 16, 64, 0, 0, 1, 0, 64},    /* fc6 batch 16, 64 blocks */
        {1, 16, 128, 1, 1, 1, 1, 1, 16, 256, 0, 0, 1, 7, 250},  /* fc7 batch 16 */
        {1, 1, 128, 1, 1, 1, 1, 1, 1, 256, 0, 0, 1, 0, 256},    /* fc7 batch 1 */
    };
    for (unsigned i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        run_bconv_case(&shapes[i], "alexnet");
    /* conv2..conv5 with their real padding skipped */
    for (unsigned i = 0; i < 5; i++)
        run_bconv_case_fill(&shapes[i], "alexnet padded", 0, shapes[i].kh == 5 ? 2 + 2 : 2 + 1);
    /* Saturated counts over long reductions (T = kw*cw up to 288 words per kernel row),
     * and over the AVX2 nibble-table path's limits (many pixels, kh*kw*cw up to 128
     * words, rows longer than one byte-sum run). */
    const bshape sat[] = {
        {3, 3, 40, 3, 3, 1, 1, 1, 1, 2, 0, 0, 1, 0, 2},
        {1, 1, 288, 1, 1, 1, 1, 1, 1, 3, 0, 0, 1, 0, 3},
        {6, 8, 31, 2, 6, 1, 1, 5, 3, 2, 1, 0, 5, 0, 2},
        {6, 8, 33, 2, 6, 2, 1, 3, 3, 2, 0, 1, 3, 1, 2},
        {10, 10, 4, 4, 4, 1, 1, 7, 7, 5, 0, 0, 7, 0, 5},
        {1, 16, 128, 1, 1, 1, 1, 1, 16, 3, 1, 0, 1, 0, 3},
        {1, 16, 129, 1, 1, 1, 1, 1, 16, 2, 0, 0, 1, 0, 2},
        {4, 12, 16, 2, 4, 1, 2, 3, 5, 6, 0, 0, 3, 1, 6},
    };
    for (unsigned i = 0; i < sizeof sat / sizeof sat[0]; i++)
        run_bconv_case_fill(&sat[i], "saturated", 1, (int)i % 2);
}

/* ------------------------------------------------------------------ fconv */

/* A float-input convolution case of fconv or bwnconv. */
typedef struct {
    int Hp, Wp, C, kh, kw, sh, sw, oh, ow, O, ldo_extra, has_bias, relu;
    int y0, y1, b0, b1;
    int has_scale; /* folded batchnorm epilogue (scale/shift); fconv only */
} cshape;

/* A random case; with linear_too one in four is a linear layer (a 1 x batch image), with
 * scale_too one in three has the folded batchnorm epilogue. */
static void random_cshape(cshape *s, int linear_too, int scale_too)
{
    s->C = rnd() % 3 == 0 ? rint_in(1, 70) : rint_in(1, 8);
    s->kh = rint_in(1, 11), s->kw = rint_in(1, 11);
    if (rnd() % 2)
        s->kh = rint_in(1, 3), s->kw = rint_in(1, 3);
    s->sh = rint_in(1, 4), s->sw = rint_in(1, 4);
    s->oh = rint_in(1, 7), s->ow = rint_in(1, 15);
    if (linear_too && rnd() % 4 == 0)
        s->kh = s->kw = s->sh = s->sw = 1, s->oh = 1, s->ow = rint_in(1, 20), s->C = rint_in(1, 600);
    s->Hp = (s->oh - 1) * s->sh + s->kh + rint_in(0, 2);
    s->Wp = (s->ow - 1) * s->sw + s->kw + rint_in(0, 2);
    s->O = rint_in(1, 100);
    s->ldo_extra = rint_in(0, 3) == 0 ? rint_in(1, 20) : 0;
    s->has_bias = rint_in(0, 1), s->relu = rint_in(0, 1);
    s->has_scale = scale_too && rint_in(0, 2) == 0;
    random_range(s->oh, &s->y0, &s->y1);
    random_range((s->O + 15) / 16, &s->b0, &s->b1);
}

/* One kernel's check of one case. */
typedef void (*cshape_check)(const cshape *s, const char *tag);

/* `iters` random cases (random_cshape's linear_too, scale_too), then the n AlexNet shapes. */
static void test_cshapes(cshape_check check, int iters, int linear_too, int scale_too,
                         const cshape *alexnet, size_t n)
{
    for (int it = 0; it < iters; it++) {
        cshape s;
        random_cshape(&s, linear_too, scale_too);
        check(&s, "random");
    }
    for (size_t i = 0; i < n; i++)
        check(&alexnet[i], "alexnet");
}

static const float CANARY_F = -12345.678f;

/* Whether word i of a case's oh x ow x ldo output is one the kernel computes. */
static int cshape_inside(const cshape *s, int ldo, size_t i)
{
    const int q = (int)(i / ldo), o = (int)(i % ldo), y = q / s->ow, ob = o / 16;
    return y >= s->y0 && y < s->y1 && ob >= s->b0 && ob < s->b1 && o < s->O;
}

/* The scalar kernel left every word outside the case's range at CANARY_F. */
static void check_scalar_canaries(const cshape *s, int ldo, const float *ref, size_t nout, const char *op,
                                  const char *tag)
{
    for (size_t i = 0; i < nout; i++) {
        if (cshape_inside(s, ldo, i))
            continue;
        g_checks++;
        if (memcmp(&ref[i], &CANARY_F, 4) != 0) {
            FAIL("%s scalar %s wrote outside its range at %zu", op, tag, i);
            break;
        }
    }
}

static void run_fconv_case(const cshape *s, const char *tag)
{
    const int nb = (s->O + 15) / 16;
    const size_t nin = (size_t)s->Hp * s->Wp * s->C;
    const size_t nw = (size_t)nb * s->kh * s->kw * s->C * XNOR_LANES;
    const int ldo = s->O + s->ldo_extra;
    const size_t nout = (size_t)s->oh * s->ow * ldo;
    float *in = xmalloc(nin * 4), *w = xmalloc(nw * 4), *bias = xmalloc((size_t)nb * 16 * 4);
    float *scale = xmalloc((size_t)nb * 16 * 4), *shift = xmalloc((size_t)nb * 16 * 4);
    for (size_t i = 0; i < nin; i++)
        in[i] = rfloat();
    for (int i = 0; i < nb * 16; i++) {
        scale[i] = rfloat() * 2;
        shift[i] = rfloat();
    }
    /* Lanes past O hold 0.0f, as the executor's repacking leaves them. */
    const size_t per_block = (size_t)s->kh * s->kw * s->C * XNOR_LANES;
    for (size_t i = 0; i < nw; i++)
        w[i] = (int)(i / per_block * 16 + i % 16) >= s->O ? 0.0f : rfloat();
    for (int i = 0; i < nb * 16; i++)
        bias[i] = rfloat();
    float *ref = xmalloc(nout * 4), *got = xmalloc(nout * 4);
    xnor_conv_args a = {.in = in, .Hp = s->Hp, .Wp = s->Wp, .C = s->C, .wf = w,
                        .bias = s->has_bias ? bias : NULL, .kh = s->kh, .kw = s->kw, .sh = s->sh,
                        .sw = s->sw, .oh = s->oh, .ow = s->ow, .O = s->O, .out = ref, .ldo = ldo,
                        .relu = s->relu, .y0 = s->y0, .y1 = s->y1, .b0 = s->b0, .b1 = s->b1,
                        .scale = s->has_scale ? scale : NULL, .shift = s->has_scale ? shift : NULL,
                        /* Half the cases claim a huge layer: its range streams the weights. */
                        .layer_blocks = (rnd() & 1) ? 1 << 20 : 0};
    for (size_t i = 0; i < nout; i++)
        ref[i] = CANARY_F;
    xnor_fconv_16c__scalar(&a);

    /* Naive reference in double, with the magnitude sum that bounds rounding error. */
    const size_t step = nout > 20000 ? nout / 20000 + 1 : 1;
    double *want = xmalloc(nout * sizeof(double)), *mag = xmalloc(nout * sizeof(double));
    char *inside = xmalloc(nout);
    for (size_t i = 0; i < nout; i++) {
        const int q = (int)(i / ldo), o = (int)(i % ldo);
        const int y = q / s->ow, x = q % s->ow, ob = o / 16, lane = o % 16;
        inside[i] = (char)cshape_inside(s, ldo, i);
        want[i] = mag[i] = 0;
        if (!inside[i] || i % step)
            continue;
        double acc = 0, m = 0;
        for (int ky = 0; ky < s->kh; ky++)
            for (int kx = 0; kx < s->kw; kx++)
                for (int c = 0; c < s->C; c++) {
                    double t = (double)in[((size_t)(y * s->sh + ky) * s->Wp + x * s->sw + kx) * s->C + c] *
                               w[((((size_t)ob * s->kh + ky) * s->kw + kx) * s->C + c) * 16 + lane];
                    acc += t, m += fabs(t);
                }
        if (s->has_bias)
            acc += bias[o], m += fabs(bias[o]);
        if (s->has_scale) {
            acc = acc * scale[o] + shift[o];
            m = m * fabs(scale[o]) + fabs(shift[o]);
        }
        if (s->relu && acc < 0)
            acc = 0;
        want[i] = acc, mag[i] = m;
    }
    check_scalar_canaries(s, ldo, ref, nout, "fconv", tag);
    for (size_t i = 0; i < nout; i += step) {
        if (!inside[i])
            continue;
        g_checks++;
        if (!(fabs(ref[i] - want[i]) <= 1e-4 * mag[i] + 1e-6)) {
            FAIL("fconv scalar vs naive %s at %zu: %g vs %g", tag, i, ref[i], want[i]);
            break;
        }
    }

    for (int k = 0; k < g_nisa; k++) {
        if (g_isas[k]->isa == XNOR_ISA_SCALAR)
            continue;
        for (size_t i = 0; i < nout; i++)
            got[i] = CANARY_F;
        a.out = got;
        g_isas[k]->fconv(&a);
        for (size_t i = 0; i < nout; i++) {
            g_checks++;
            int ok;
            if (!inside[i]) {
                ok = memcmp(&got[i], &CANARY_F, 4) == 0;
            } else {
                /* The magnitude bound is only known on sampled outputs; elsewhere bound
                 * by a loose absolute tolerance scaled by the reduction length. */
                double tol = (i % step == 0) ? 1e-4 * mag[i] + 1e-6
                                              : 1e-5 * (s->kh * s->kw * s->C + 1);
                ok = fabs((double)got[i] - ref[i]) <= tol;
            }
            if (!ok) {
                FAIL("fconv %s %s: Hp=%d Wp=%d C=%d k=%dx%d s=%dx%d o=%dx%d O=%d ldo=%d bias=%d relu=%d "
                     "scale=%d y=[%d,%d) b=[%d,%d) at %zu (inside=%d): %.9g vs %.9g",
                     g_isas[k]->name, tag, s->Hp, s->Wp, s->C, s->kh, s->kw, s->sh, s->sw, s->oh,
                     s->ow, s->O, ldo, s->has_bias, s->relu, s->has_scale, s->y0, s->y1, s->b0, s->b1, i,
                     inside[i], got[i], ref[i]);
                break;
            }
        }
    }

    /* Every ISA: the folded-batchnorm epilogue gives exactly the bits of the plain kernel
     * followed by a separate batchnorm (x * scale, then + shift) and relu, as the
     * executor's unfused (trace) plan computes them. */
    if (s->has_scale) {
        float *plain = xmalloc(nout * 4);
        for (int k = 0; k < g_nisa; k++) {
            xnor_conv_args b = a;
            b.scale = b.shift = NULL;
            b.relu = 0;
            b.out = plain;
            for (size_t i = 0; i < nout; i++)
                plain[i] = CANARY_F;
            g_isas[k]->fconv(&b);
            b = a;
            b.out = got;
            for (size_t i = 0; i < nout; i++)
                got[i] = CANARY_F;
            g_isas[k]->fconv(&b);
            for (size_t i = 0; i < nout; i++) {
                const int o = (int)(i % ldo);
                float want_f = CANARY_F;
                if (inside[i]) {
                    volatile float v = plain[i] * scale[o]; /* volatile: two roundings */
                    v = v + shift[o];
                    want_f = v;
                    if (s->relu && !(want_f > 0.0f))
                        want_f = 0.0f;
                }
                g_checks++;
                if (memcmp(&got[i], &want_f, 4) != 0) {
                    FAIL("fconv %s %s: folded batchnorm differs from the separate op at %zu: %.9g vs %.9g",
                         g_isas[k]->name, tag, i, got[i], want_f);
                    break;
                }
            }
        }
        free(plain);
    }
    free(in), free(w), free(bias), free(scale), free(shift), free(ref), free(got), free(want), free(mag),
        free(inside);
}

/* AlexNet's fconv layers, whole and as thread slices. */
static const cshape FCONV_ALEXNET[] = {
    {227, 227, 3, 11, 11, 4, 4, 55, 55, 96, 0, 1, 1, 0, 55, 0, 6, 0},  /* conv1 */
    {227, 227, 3, 11, 11, 4, 4, 55, 55, 96, 0, 1, 0, 13, 29, 1, 5, 0}, /* conv1 slice */
    {1, 1, 4096, 1, 1, 1, 1, 1, 1, 1000, 0, 1, 0, 0, 1, 0, 63, 0},     /* fc8 batch 1 */
    {1, 16, 4096, 1, 1, 1, 1, 1, 16, 1000, 0, 1, 0, 0, 1, 0, 63, 0},   /* fc8 batch 16 */
    {1, 16, 4096, 1, 1, 1, 1, 1, 16, 1000, 0, 0, 1, 0, 1, 30, 63, 0},  /* fc8 tail slice */
    {227, 227, 3, 11, 11, 4, 4, 55, 55, 96, 0, 1, 1, 20, 31, 0, 6, 1}, /* conv1 + bn1 + relu1 */
    {1, 5, 4096, 1, 1, 1, 1, 1, 5, 1000, 0, 1, 0, 0, 1, 2, 63, 1},     /* linear + bn1d */
};

/* ------------------------------------------------------------------ bwnconv */

static void run_bwnconv(const xnor_kernel_table *isa, const void *args) { isa->bwnconv(args); }

/* Scalar against a naive double sum of +-x (within float rounding of the magnitudes);
 * every other ISA against scalar bit for bit over the whole output (the kernels add the
 * same exact terms in the same order), canaries included. */
static void run_bwnconv_case(const cshape *s, const char *tag)
{
    const int nb = (s->O + 15) / 16;
    const size_t nin = (size_t)s->Hp * s->Wp * s->C;
    const size_t per_block = (size_t)s->kh * s->kw * s->C;
    const size_t nw = (size_t)nb * per_block;
    const int ldo = s->O + s->ldo_extra;
    const size_t nout = (size_t)s->oh * s->ow * ldo;
    float *in = xmalloc(nin * 4), *alpha = xmalloc((size_t)nb * 16 * 4), *bias = xmalloc((size_t)nb * 16 * 4);
    uint16_t *w = xmalloc(nw * 2);
    for (size_t i = 0; i < nin; i++)
        in[i] = rfloat();
    for (size_t i = 0; i < nw; i++) {
        /* lanes past O are 0, as the repacking leaves them */
        const int o0 = (int)(i / per_block) * 16, live = s->O - o0 >= 16 ? 16 : s->O - o0;
        w[i] = (uint16_t)(rnd() & ((1u << live) - 1u));
        if (rnd() % 16 == 0)
            w[i] = (uint16_t)((rnd() & 1) ? (1u << live) - 1u : 0u); /* all +1 / all -1 */
    }
    for (int i = 0; i < nb * 16; i++) {
        alpha[i] = i < s->O ? rfloat() * 0.5f : 0.0f;
        bias[i] = rfloat();
    }
    float *ref = xmalloc(nout * 4), *got = xmalloc(nout * 4);
    xnor_conv_args a = {.in = in, .Hp = s->Hp, .Wp = s->Wp, .C = s->C, .wm = w, .alpha = alpha,
                        .bias = s->has_bias ? bias : NULL, .kh = s->kh, .kw = s->kw, .sh = s->sh,
                        .sw = s->sw, .oh = s->oh, .ow = s->ow, .O = s->O, .out = ref, .ldo = ldo,
                        .relu = s->relu, .y0 = s->y0, .y1 = s->y1, .b0 = s->b0, .b1 = s->b1,
                        .layer_blocks = (rnd() & 1) ? 1 << 20 : 0};
    for (size_t i = 0; i < nout; i++)
        ref[i] = CANARY_F;
    xnor_bwnconv_16c__scalar(&a);

    const size_t step = nout > 20000 ? nout / 20000 + 1 : 1;
    check_scalar_canaries(s, ldo, ref, nout, "bwnconv", tag);
    for (size_t i = 0; i < nout; i += step) {
        if (!cshape_inside(s, ldo, i))
            continue;
        const int q = (int)(i / ldo), o = (int)(i % ldo);
        const int y = q / s->ow, x = q % s->ow, ob = o / 16, lane = o % 16;
        double acc = 0, m = 0;
        for (int ky = 0; ky < s->kh; ky++)
            for (int kx = 0; kx < s->kw; kx++)
                for (int c = 0; c < s->C; c++) {
                    const double v = in[((size_t)(y * s->sh + ky) * s->Wp + x * s->sw + kx) * s->C + c];
                    const int bit = (w[(((size_t)ob * s->kh + ky) * s->kw + kx) * s->C + c] >> lane) & 1;
                    acc += bit ? v : -v;
                    m += fabs(v);
                }
        acc *= alpha[o];
        m *= fabs(alpha[o]);
        if (s->has_bias)
            acc += bias[o], m += fabs(bias[o]);
        if (s->relu && acc < 0)
            acc = 0;
        g_checks++;
        if (!(fabs(ref[i] - acc) <= 1e-4 * m + 1e-6)) {
            FAIL("bwnconv scalar vs naive %s at %zu: %.9g vs %.9g", tag, i, ref[i], acc);
            break;
        }
    }

    char what[256];
    snprintf(what, sizeof what,
             "bwnconv %s: Hp=%d Wp=%d C=%d k=%dx%d s=%dx%d o=%dx%d O=%d ldo=%d bias=%d relu=%d y=[%d,%d) "
             "b=[%d,%d)",
             tag, s->Hp, s->Wp, s->C, s->kh, s->kw, s->sh, s->sw, s->oh, s->ow, s->O, ldo, s->has_bias,
             s->relu, s->y0, s->y1, s->b0, s->b1);
    uint32_t canary;
    memcpy(&canary, &CANARY_F, 4);
    a.out = got;
    check_isas_bit_exact(run_bwnconv, &a, ref, got, nout, canary, what);
    free(in), free(alpha), free(bias), free(w), free(ref), free(got);
}

/* AlexNet's BWN layers, whole and as thread slices. */
static const cshape BWNCONV_ALEXNET[] = {
    {31, 31, 96, 5, 5, 1, 1, 27, 27, 256, 0, 1, 1, 0, 27, 0, 16, 0},   /* conv2 */
    {31, 31, 96, 5, 5, 1, 1, 27, 27, 256, 0, 1, 1, 5, 12, 3, 14, 0},   /* conv2, thread slice */
    {15, 15, 256, 3, 3, 1, 1, 13, 13, 384, 0, 1, 1, 0, 13, 0, 24, 0},  /* conv3 */
    {15, 15, 384, 3, 3, 1, 1, 13, 13, 256, 0, 0, 0, 4, 9, 1, 15, 0},   /* conv5 slice, no bias */
    {1, 1, 9216, 1, 1, 1, 1, 1, 1, 4096, 0, 1, 1, 0, 1, 0, 40, 0},     /* fc6 batch 1, 40 blocks */
    {1, 16, 9216, 1, 1, 1, 1, 1, 16, 1024, 0, 1, 1, 0, 1, 3, 64, 0},   /* fc6 batch 16 (streams) */
    {1, 5, 4096, 1, 1, 1, 1, 1, 5, 4096, 0, 1, 0, 0, 1, 250, 256, 0},  /* fc7 batch 5, tail */
    {1, 3, 4096, 1, 1, 1, 1, 1, 3, 1000, 3, 1, 0, 0, 1, 0, 63, 0},     /* odd O, ldo > O */
};

/* ------------------------------------------------------------------ pack */

typedef struct {
    int H, W, C, pt, pl, pb, pr, has_scale, y0, y1;
} pshape;

/* Values that probe the sign test: exact zeros of both signs, tiny values, NaN, and
 * x*s+t that round to zero differently with and without FMA. */
static float tricky(void)
{
    switch (rnd() % 10) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return 1e-30f * rfloat();
    case 3: return (rnd() & 1) ? NAN : -NAN;
    case 4: return (rnd() & 1) ? INFINITY : -INFINITY;
    default: return rfloat();
    }
}

static void run_pack(const xnor_kernel_table *isa, const void *args) { isa->pack(args); }

static void run_pack_case(const pshape *s, const char *tag)
{
    const int cw = (s->C + 31) / 32;
    const int Hp = s->H + s->pt + s->pb, Wp = s->W + s->pl + s->pr;
    const size_t nin = (size_t)s->H * s->W * s->C, nout = (size_t)Hp * Wp * cw;
    float *in = xmalloc(nin * 4), *scale = xmalloc((size_t)s->C * 4), *shift = xmalloc((size_t)s->C * 4);
    for (int c = 0; c < s->C; c++) {
        scale[c] = rfloat() * 3;
        shift[c] = (rnd() % 4 == 0) ? 0.0f : rfloat();
        if (rnd() % 5 == 0)
            scale[c] = 0.0f;
    }
    for (size_t i = 0; i < nin; i++) {
        int c = (int)(i % s->C);
        in[i] = tricky();
        /* Near -shift/scale: x*s + t is tiny, and its sign depends on rounding. */
        if (s->has_scale && scale[c] != 0.0f && rnd() % 3 == 0)
            in[i] = -shift[c] / scale[c] * (1.0f + (rfloat() * 1e-6f));
    }
    uint32_t *ref = xmalloc(nout * 4), *got = xmalloc(nout * 4);
    xnor_pack_args a = {in, s->H, s->W, s->C, s->has_scale ? scale : NULL, s->has_scale ? shift : NULL,
                        ref, Wp, cw, s->pt, s->pl, s->y0, s->y1};
    for (size_t i = 0; i < nout; i++)
        ref[i] = 0xDEADBEEFu;
    xnor_pack__scalar(&a);

    for (int y = 0; y < Hp; y++)
        for (int x = 0; x < Wp; x++)
            for (int j = 0; j < cw; j++) {
                const int iy = y - s->pt, ix = x - s->pl;
                uint32_t want = 0xDEADBEEFu;
                if (iy >= s->y0 && iy < s->y1 && ix >= 0 && ix < s->W) {
                    want = 0;
                    for (int b = 0; b < 32 && j * 32 + b < s->C; b++) {
                        const int c = j * 32 + b;
                        volatile float v = in[((size_t)iy * s->W + ix) * s->C + c];
                        if (s->has_scale) {
                            volatile float m = v * scale[c];  /* volatile: two roundings */
                            v = m + shift[c];
                        }
                        /* >= 0 means: not NaN and (positive sign or a zero of either sign). */
                        const int ge0 = !isnan(v) && (!signbit(v) || v == 0.0f);
                        if (ge0)
                            want |= 1u << b;
                    }
                }
                g_checks++;
                const uint32_t r = ref[((size_t)y * Wp + x) * cw + j];
                if (r != want) {
                    FAIL("pack scalar vs naive %s at y=%d x=%d j=%d: %08x vs %08x", tag, y, x, j, r, want);
                    goto done;
                }
            }
done:
    char what[256];
    snprintf(what, sizeof what, "pack %s: H=%d W=%d C=%d pad=%d,%d,%d,%d scale=%d y=[%d,%d)", tag, s->H,
             s->W, s->C, s->pt, s->pl, s->pb, s->pr, s->has_scale, s->y0, s->y1);
    a.out = got;
    check_isas_bit_exact(run_pack, &a, ref, got, nout, 0xDEADBEEFu, what);
    free(in), free(scale), free(shift), free(ref), free(got);
}

static void test_pack_random(int iters)
{
    for (int it = 0; it < iters; it++) {
        pshape s;
        s.H = rint_in(1, 9), s.W = rint_in(1, 9);
        s.C = rnd() % 3 == 0 ? rint_in(1, 300) : rint_in(1, 70);
        s.pt = rint_in(0, 3), s.pl = rint_in(0, 3), s.pb = rint_in(0, 3), s.pr = rint_in(0, 3);
        s.has_scale = rint_in(0, 1);
        random_range(s.H, &s.y0, &s.y1);
        run_pack_case(&s, "random");
    }
}

static void test_pack_alexnet(void)
{
    const pshape shapes[] = {
        {27, 27, 96, 2, 2, 2, 2, 1, 0, 27},   /* conv2 input */
        {13, 13, 256, 1, 1, 1, 1, 1, 0, 13},  /* conv3 input */
        {13, 13, 384, 1, 1, 1, 1, 1, 3, 11},  /* conv4 input, slice */
        {1, 16, 9216, 0, 0, 0, 0, 0, 0, 1},   /* fc6 input, batch 16 */
        {1, 1, 4096, 0, 0, 0, 0, 1, 0, 1},    /* fc7 input */
    };
    for (unsigned i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        run_pack_case(&shapes[i], "alexnet");
}

/* ------------------------------------------------------------------ qlinear_g32 */

/* One random fused int8 linear: ng groups of 32 bytes per sample, then sx[ng] and z;
 * rows O (the last block possibly partial); samples [s0, s1) of N and blocks [b0, b1).
 * Every ISA must write the scalar result bit for bit and nothing outside its range. */
static void run_qlinear_case(int N, int ng, int O, const char *tag)
{
    const int nb = (O + 15) / 16;
    int s0, s1, b0, b1;
    random_range(N, &s0, &s1);
    random_range(nb, &b0, &b1);
    const int64_t in_stride = (int64_t)ng * 36 + 4 + rint_in(0, 1) * 3; /* odd: unaligned sx, z */
    uint8_t *in = xmalloc((size_t)(N * in_stride));
    for (int s = 0; s < N; s++) {
        uint8_t *u = in + (int64_t)s * in_stride;
        for (int64_t i = 0; i < in_stride; i++) u[i] = (uint8_t)rnd();
        const int kind = rint_in(0, 3); /* extremes: all 255 or all 0 bytes */
        if (kind == 0) memset(u, 255, (size_t)ng * 32);
        if (kind == 1) memset(u, 0, (size_t)ng * 32);
        for (int g = 0; g < ng; g++) {
            const float sx = rfloat() * 3.0f;
            memcpy(u + (int64_t)ng * 32 + g * 4, &sx, 4);
        }
        const int32_t z = rint_in(0, 1) * 128;
        memcpy(u + (int64_t)ng * 36, &z, 4);
    }
    const size_t nk = (size_t)nb * ng * 16;
    int8_t *w = xmalloc(nk * 32);
    float *scale = xmalloc(nk * sizeof(float));
    int32_t *wsum = xmalloc(nk * sizeof(int32_t));
    for (size_t i = 0; i < nk * 32; i++) w[i] = rnd() % 5 == 0 ? (int8_t)(rnd() % 2 ? 127 : -128) : (int8_t)rnd();
    for (size_t k = 0; k < nk; k++) {
        scale[k] = rfloat();
        wsum[k] = (int32_t)(rnd() % 8193) - 4096;
    }
    const int64_t out_stride = O + rint_in(0, 5);
    float *want = xmalloc((size_t)(N * out_stride) * sizeof(float));
    float *got = xmalloc((size_t)(N * out_stride) * sizeof(float));
    for (int i = 0; i < g_nint8; i++) {
        float *o = i ? got : want;
        for (int64_t k = 0; k < N * out_stride; k++) o[k] = CANARY_F;
        xnor_qlinear_args a = {in, in_stride, w, scale, wsum, ng, O, s0, s1, b0, b1, o, out_stride};
        g_int8[i].qlinear_g32(&a);
        g_checks++;
        if (i == 0) {
            for (int s = 0; s < N; s++)
                for (int64_t k = 0; k < out_stride; k++) {
                    const int inside = s >= s0 && s < s1 && k >= b0 * 16 && k < b1 * 16 && k < O;
                    if (!inside && memcmp(&o[s * out_stride + k], &CANARY_F, 4) != 0)
                        FAIL("qlinear_g32 %s scalar wrote outside its range at s %d o %ld", tag, s, (long)k);
                }
        } else if (memcmp(got, want, (size_t)(N * out_stride) * sizeof(float)) != 0) {
            FAIL("qlinear_g32 %s %s differs from scalar (N %d ng %d O %d s %d..%d b %d..%d)", tag, g_int8[i].name,
                 N, ng, O, s0, s1, b0, b1);
        }
    }
    free(in);
    free(w);
    free(scale);
    free(wsum);
    free(want);
    free(got);
}

static void test_qlinear_random(int iters)
{
    for (int it = 0; it < iters; it++) run_qlinear_case(rint_in(1, 11), rint_in(1, 9), rint_in(1, 90), "random");
}

static void test_qlinear_alexnet(void)
{
    run_qlinear_case(1, 128, 1000, "alexnet fc8");
    run_qlinear_case(5, 128, 1000, "alexnet fc8 batch 5");
}

/* ------------------------------------------------------------------ qconv */

typedef struct {
    int kh, qg, sh, px_stride, off0, row_pad;
    int oh, ow, nb;  /* output rows, columns and 16-channel blocks of the whole layer */
} qshape;

/* One int8 convolution over rows [y0, y1), columns [x0, x1), blocks [b0, b1) of a layer
 * of `s` (geometry as kernels.h's xnor_qconv_args). The scalar kernel is checked against
 * the formula, then every variant must write the scalar buffer exactly (canaries included). */
static void run_qconv_case(const qshape *s, const char *tag)
{
    int y0, y1, x0, x1, b0, b1;
    random_range(s->oh, &y0, &y1);
    random_range(s->ow, &x0, &x1);
    random_range(s->nb, &b0, &b1);
    const int64_t row_stride = (int64_t)s->ow * s->px_stride + 4 * s->qg + s->row_pad;
    /* exactly the bytes the last window of the layer reads */
    const int64_t in_len = s->off0 + ((int64_t)(s->oh - 1) * s->sh + s->kh - 1) * row_stride
        + (int64_t)(s->ow - 1) * s->px_stride + 4 * s->qg;
    uint8_t *in = xmalloc((size_t)in_len);
    const int kind = rint_in(0, 3);
    for (int64_t i = 0; i < in_len; i++) in[i] = kind == 0 ? 255 : kind == 1 ? (uint8_t)(rnd() % 2 * 255) : (uint8_t)rnd();
    const size_t wlen = (size_t)s->nb * s->kh * s->qg * 64;
    int8_t *w = xmalloc(wlen);
    for (size_t i = 0; i < wlen; i++) w[i] = rnd() % 4 == 0 ? (int8_t)(rnd() % 2 ? 127 : -128) : (int8_t)rnd();
    const int out_row = (x1 - x0) + rint_in(0, 2);
    const int out_stride = 16 * ((b1 - b0) + rint_in(0, 1));
    const size_t olen = (size_t)(y1 - y0 + 1) * out_row * (out_stride ? out_stride : 16);
    int32_t *want = xmalloc(olen * sizeof(int32_t));
    int32_t *got = xmalloc(olen * sizeof(int32_t));
    for (int i = 0; i < g_nint8; i++) {
        int32_t *o = i ? got : want;
        for (size_t k = 0; k < olen; k++) o[k] = CANARY_I;
        xnor_qconv_args a = {in, s->off0, row_stride, s->px_stride, w, s->kh, s->qg, s->sh,
                             y0, y1, x0, x1, b0, b1, o, out_row, out_stride};
        g_int8[i].qconv(&a);
        g_checks++;
        if (i == 0) {
            for (size_t k = 0; k < olen; k++) {
                const int64_t lane = (int64_t)(k % (size_t)(out_stride ? out_stride : 16));
                const int64_t pos = (int64_t)(k / (size_t)(out_stride ? out_stride : 16));
                const int64_t y = y0 + pos / out_row, x = x0 + pos % out_row;
                const int inside = out_stride && y < y1 && x < x1 && lane < 16 * (b1 - b0);
                int32_t expect = CANARY_I;
                if (inside) {
                    const int64_t ob = b0 + lane / 16, l = lane % 16;
                    int64_t acc = 0;
                    for (int ky = 0; ky < s->kh; ky++)
                        for (int g = 0; g < s->qg; g++)
                            for (int b = 0; b < 4; b++)
                                acc += (int64_t)in[s->off0 + (y * s->sh + ky) * row_stride + x * s->px_stride + 4 * g + b]
                                    * w[(((ob * s->kh + ky) * s->qg + g) * 16 + l) * 4 + b];
                    expect = (int32_t)acc;
                }
                if (o[k] != expect) {
                    FAIL("qconv %s scalar: %d at y %ld x %ld lane %ld, want %d", tag, o[k], (long)y, (long)x,
                         (long)lane, expect);
                    break;
                }
            }
        } else if (memcmp(got, want, olen * sizeof(int32_t)) != 0) {
            FAIL("qconv %s %s differs from scalar (kh %d qg %d sh %d px %d y %d..%d x %d..%d b %d..%d)", tag,
                 g_int8[i].name, s->kh, s->qg, s->sh, s->px_stride, y0, y1, x0, x1, b0, b1);
        }
    }
    free(in);
    free(w);
    free(want);
    free(got);
}

static void test_qconv_random(int iters)
{
    for (int it = 0; it < iters; it++) {
        qshape s;
        s.kh = rint_in(1, 11), s.qg = rint_in(1, 10), s.sh = rint_in(0, 4), s.px_stride = rint_in(0, 13);
        s.off0 = rint_in(0, 5), s.row_pad = rint_in(0, 7);
        s.oh = rint_in(1, 4), s.ow = rint_in(1, 15), s.nb = rint_in(1, 7);
        run_qconv_case(&s, "random");
    }
}

static void test_qconv_alexnet(void)
{
    /* conv1: 11x11 stride 4 over 3 channels: a window row is 33 bytes in 9 groups */
    const qshape conv1 = {11, 9, 4, 12, 0, 0, 3, 55, 6};
    for (int i = 0; i < 4; i++) run_qconv_case(&conv1, "alexnet conv1");
}

static void add_int8_variant(const char *name, xnor_qconv_kernel *qconv, xnor_qlinear_kernel *qlinear)
{
    printf("testing int8 %s\n", name);
    g_int8[g_nint8++] = (int8_variant){name, qconv, qlinear};
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    if (argc > 1)
        g_rng = strtoull(argv[1], NULL, 0) | 1;
    const int scale = argc > 2 ? atoi(argv[2]) : 1;

    const xnor_isa all[] = {XNOR_ISA_SCALAR, XNOR_ISA_AVX2, XNOR_ISA_AVX512};
    const char *names[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        const xnor_kernel_table *t = xnor_kernels_for(all[i]);
        if (!t) {
            printf("SKIP %s: not available on this CPU\n", names[i]);
            continue;
        }
        if (t->isa != all[i] || !t->bconv || !t->fconv || !t->pack || !t->bwnconv || !t->qconv || !t->qlinear_g32) {
            FAIL("table for %s is inconsistent", names[i]);
            continue;
        }
        printf("testing %s\n", t->name);
        g_isas[g_nisa++] = t;
    }
    add_int8_variant("scalar", xnor_qconv_16c__scalar, xnor_qlinear_g32__scalar);
#if defined(XNOR_HAVE_X86)
    if (xnor_cpu_has_avx2())
        add_int8_variant("avx2", xnor_qconv_16c__avx2, xnor_qlinear_g32__avx2);
    if (xnor_cpu_has_avxvnni())
        add_int8_variant("avxvnni", xnor_qconv_16c__avxvnni, xnor_qlinear_g32__avxvnni);
    else
        printf("SKIP int8 avxvnni: not available on this CPU\n");
    if (xnor_cpu_has_avx512vnni())
        add_int8_variant("avx512vnni", xnor_qconv_16c__avx512vnni, xnor_qlinear_g32__avx512vnni);
#endif
    for (int i = 0; i < g_nisa; i++) {
        int found = 0;
        for (int k = 0; k < g_nint8; k++)
            found |= g_isas[i]->qconv == g_int8[k].qconv && g_isas[i]->qlinear_g32 == g_int8[k].qlinear_g32;
        if (!found)
            FAIL("the %s table's int8 kernels are not among the tested variants", g_isas[i]->name);
    }
    const xnor_kernel_table *best = xnor_kernels_for(XNOR_ISA_AUTO);
    if (!best || best != g_isas[g_nisa - 1])
        FAIL("AUTO does not resolve to the best available table");
    if (xnor_kernels_for((xnor_isa)99) != NULL)
        FAIL("an unknown ISA must give NULL");

    test_bconv_random(400 * scale);
    test_bconv_alexnet();
    test_cshapes(run_fconv_case, 300 * scale, 0, 1, FCONV_ALEXNET, sizeof FCONV_ALEXNET / sizeof *FCONV_ALEXNET);
    test_cshapes(run_bwnconv_case, 300 * scale, 1, 0, BWNCONV_ALEXNET,
                 sizeof BWNCONV_ALEXNET / sizeof *BWNCONV_ALEXNET);
    test_pack_random(400 * scale);
    test_pack_alexnet();
    test_qlinear_random(200 * scale);
    test_qlinear_alexnet();
    test_qconv_random(200 * scale);
    test_qconv_alexnet();

    printf("%ld checks, %d failures\n", g_checks, g_fail);
    if (g_fail) {
        printf("FAILED\n");
        return 1;
    }
    printf("OK\n");
    return 0;
}
