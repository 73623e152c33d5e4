/* bench_kernels.c -- single-thread timings of the kernels on the XNOR AlexNet layers.
 *
 * Prints, per ISA and layer, the median time of several repeats (the test machine is
 * shared and noisy, so means would mislead), GMAC/s and, for binary layers, binary MACs
 * per cycle against an estimated clock. The clock is estimated from a chain of
 * dependent register adds (1 cycle each; not add-immediate, which some cores fold at
 * rename); under turbo and on a shared machine it is only approximate, so GMAC/s is the
 * figure to compare.
 *
 * Build (from the repository root; KERNELS = every .c file in engine/src/kernels):
 *   cc -O2 -std=c11 -ffp-contract=off -pthread -Iengine/include $KERNELS \
 *      tests/c/bench_kernels.c -o /tmp/b -lm
 * Usage: b [repeats] [isa-name]   */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../engine/src/kernels/kernels.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double estimate_ghz(void)
{
#if defined(__x86_64__)
    double best = 0;
    /* Best of many short runs: on a shared machine a slow run is interference. */
    for (int rep = 0; rep < 25; rep++) {
        uint64_t v = 0, one = 1;
        const long iters = 5000000;
        double t0 = now_s();
        for (long i = 0; i < iters; i++)
            __asm__ volatile("add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                             "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                             : "+r"(v) : "r"(one));
        double ghz = iters * 8.0 / (now_s() - t0) / 1e9;
        if (ghz > best)
            best = ghz;
    }
    return best;
#else
    return 0;
#endif
}

static uint64_t g_rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (uint32_t)g_rng;
}

typedef struct {
    const char *name;
    int Hp, Wp, cw, kh, kw, oh, ow, nb;
} bl;

typedef struct {
    const char *name;
    int Hp, Wp, C, kh, kw, s, oh, ow, O;
} fl;

static double median_time(void (*fn)(const void *), const void *arg, int reps)
{
    double t[64];
    if (reps > 64)
        reps = 64;
    fn(arg); /* warm caches and page in the buffers */
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        fn(arg);
        t[r] = now_s() - t0;
    }
    qsort(t, reps, sizeof t[0], cmp_d);
    return t[reps / 2];
}

static xnor_bconv_kernel *g_bfn;
static xnor_conv_kernel *g_ffn;
static void call_b(const void *a) { g_bfn(a); }
static void call_f(const void *a) { g_ffn(a); }

int main(int argc, char **argv)
{
    const int reps = argc > 1 ? atoi(argv[1]) : 11;
    const char *only = argc > 2 ? argv[2] : NULL;
    const double ghz = estimate_ghz();
    printf("estimated clock %.2f GHz, %d repeats, median\n", ghz, reps);

    const bl bls[] = {
        {"conv2", 31, 31, 3, 5, 5, 27, 27, 16},
        {"conv3", 15, 15, 8, 3, 3, 13, 13, 24},
        {"conv4", 15, 15, 12, 3, 3, 13, 13, 24},
        {"conv5", 15, 15, 12, 3, 3, 13, 13, 16},
        {"fc6 b1", 1, 1, 288, 1, 1, 1, 1, 256},
        {"fc6 b16", 1, 16, 288, 1, 1, 1, 16, 256},
        {"fc7 b1", 1, 1, 128, 1, 1, 1, 1, 256},
        {"fc7 b16", 1, 16, 128, 1, 1, 1, 16, 256},
    };
    const fl fls[] = {
        {"conv1", 227, 227, 3, 11, 11, 4, 55, 55, 96},
        {"fc8 b1", 1, 1, 4096, 1, 1, 1, 1, 1, 1000},
        {"fc8 b16", 1, 16, 4096, 1, 1, 1, 1, 16, 1000},
    };
    const xnor_isa isas[] = {XNOR_ISA_AVX512, XNOR_ISA_AVX2, XNOR_ISA_SCALAR};

    for (int k = 0; k < 3; k++) {
        const xnor_kernel_table *t = xnor_kernels_for(isas[k]);
        if (!t) {
            printf("SKIP isa %d: not available\n", (int)isas[k]);
            continue;
        }
        if (only && strcmp(only, t->name) != 0)
            continue;
        double conv25 = 0;
        for (unsigned i = 0; i < sizeof bls / sizeof bls[0]; i++) {
            const bl *s = &bls[i];
            size_t nin = (size_t)s->Hp * s->Wp * s->cw, nw = (size_t)s->nb * s->kh * s->kw * s->cw * 16;
            size_t nout = (size_t)s->oh * s->ow * s->nb * 16;
            uint32_t *in = malloc(nin * 4), *w = malloc(nw * 4);
            int32_t *out = malloc(nout * 4);
            if (!in || !w || !out)
                return 2;
            for (size_t j = 0; j < nin; j++)
                in[j] = rnd();
            for (size_t j = 0; j < nw; j++)
                w[j] = rnd();
            xnor_bconv_args a = {in, s->Hp, s->Wp, s->cw, w, s->kh, s->kw, 1, 1, s->oh, s->ow,
                                 out, s->nb * 16, 0, s->oh, 0, s->nb};
            g_bfn = t->bconv;
            double sec = median_time(call_b, &a, t->isa == XNOR_ISA_SCALAR ? 3 : reps);
            double macs = (double)s->oh * s->ow * s->nb * 16 * s->kh * s->kw * s->cw * 32;
            if (i < 4)
                conv25 += sec;
            printf("%-7s bconv %-8s %9.3f ms %8.1f GMAC/s (binary) %7.1f MAC/cycle\n", t->name,
                   s->name, sec * 1e3, macs / sec / 1e9, ghz > 0 ? macs / sec / (ghz * 1e9) : 0);
            free(in), free(w), free(out);
        }
        printf("%-7s bconv conv2..conv5 total %.3f ms\n", t->name, conv25 * 1e3);
        for (unsigned i = 0; i < sizeof fls / sizeof fls[0]; i++) {
            const fl *s = &fls[i];
            int nb = (s->O + 15) / 16;
            size_t nin = (size_t)s->Hp * s->Wp * s->C, nw = (size_t)nb * s->kh * s->kw * s->C * 16;
            size_t nout = (size_t)s->oh * s->ow * s->O;
            float *in = malloc(nin * 4), *w = malloc(nw * 4), *out = malloc(nout * 4),
                  *bias = malloc(nb * 16 * 4);
            if (!in || !w || !out || !bias)
                return 2;
            for (size_t j = 0; j < nin; j++)
                in[j] = (float)(rnd() % 1000) / 1000.0f;
            for (size_t j = 0; j < nw; j++)
                w[j] = (float)(rnd() % 1000) / 1000.0f - 0.5f;
            for (int j = 0; j < nb * 16; j++)
                bias[j] = 0.1f;
            xnor_conv_args a = {.in = in, .Hp = s->Hp, .Wp = s->Wp, .C = s->C, .wf = w, .bias = bias,
                                .kh = s->kh, .kw = s->kw, .sh = s->s, .sw = s->s, .oh = s->oh,
                                .ow = s->ow, .O = s->O, .out = out, .ldo = s->O, .relu = 1, .y0 = 0,
                                .y1 = s->oh, .b0 = 0, .b1 = nb};
            g_ffn = t->fconv;
            double sec = median_time(call_f, &a, t->isa == XNOR_ISA_SCALAR ? 3 : reps);
            double macs = (double)s->oh * s->ow * s->O * s->kh * s->kw * s->C;
            printf("%-7s fconv %-8s %9.3f ms %8.2f GMAC/s (float) %7.2f FLOP/cycle\n", t->name,
                   s->name, sec * 1e3, macs / sec / 1e9, ghz > 0 ? 2 * macs / sec / (ghz * 1e9) : 0);
            free(in), free(w), free(out), free(bias);
        }
    }
    return 0;
}
