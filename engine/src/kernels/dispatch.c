/* dispatch.c -- CPU feature detection and the per-ISA kernel tables.
 *
 * The library is compiled for baseline x86-64; the AVX2 / AVX-512 kernels carry target
 * attributes and may only be called once the CPU *and* the OS (XSAVE state enabled in
 * XCR0) are known to support them. Detection runs once under pthread_once, so any thread
 * may ask for a table at any time. XNORNET_ISA is handled by the engine core, not here. */
#include <pthread.h>
#include <stddef.h>

#include "kernels.h"

#if defined(XNOR_HAVE_X86)
#include <cpuid.h>
#endif

static int g_has_avx2;
static int g_has_avx512;
static int g_has_avx512vnni;
static int g_has_avxvnni;
static pthread_once_t g_detect_once = PTHREAD_ONCE_INIT;

#if defined(XNOR_HAVE_X86)
/* The x86 tables; their int8 kernels are chosen once, by detect(), all exact alike: AVX2
 * with AVX-VNNI (e.g. Alder Lake, Zen 4 run with --isa avx2) gets VEX vpdpbusd instead of
 * widening to 16 bits, AVX-512 without AVX512_VNNI (e.g. Skylake-X) the plain AVX2 ones. */
#define XNOR_AVX2_SLOT(slot, type, scalar, avx2, avx512) .slot = avx2,
#define XNOR_AVX512_SLOT(slot, type, scalar, avx2, avx512) .slot = avx512,
static xnor_kernel_table k_avx2 = {.isa = XNOR_ISA_AVX2, .name = "avx2", XNOR_KERNEL_OPS(XNOR_AVX2_SLOT)};
static xnor_kernel_table k_avx512 = {.isa = XNOR_ISA_AVX512, .name = "avx512", XNOR_KERNEL_OPS(XNOR_AVX512_SLOT)};
#undef XNOR_AVX2_SLOT
#undef XNOR_AVX512_SLOT

/* XGETBV via inline asm: the _xgetbv intrinsic needs -mxsave, which the baseline build
 * does not have. Only valid when CPUID reports OSXSAVE. */
static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    const int fma = (c >> 12) & 1, popcnt = (c >> 23) & 1;
    if (!osxsave || !avx)
        return;
    const uint64_t xcr0 = read_xcr0();
    /* bits 1,2: SSE + YMM upper halves; bits 5,6,7: opmask, ZMM0-15 upper, ZMM16-31. */
    const int os_ymm = (xcr0 & 0x6) == 0x6;
    const int os_zmm = os_ymm && (xcr0 & 0xE0) == 0xE0;

    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return;
    const int avx2 = (b >> 5) & 1, bmi1 = (b >> 3) & 1, bmi2 = (b >> 8) & 1;
    const int f512 = (b >> 16) & 1, dq512 = (b >> 17) & 1;
    const int bw512 = (b >> 30) & 1, vl512 = (b >> 31) & 1;
    const int vpopcntdq = (c >> 14) & 1;

    g_has_avx2 = os_ymm && avx2 && fma && popcnt && bmi1 && bmi2;
    g_has_avx512 = g_has_avx2 && os_zmm && f512 && dq512 && bw512 && vl512 && vpopcntdq;
    g_has_avx512vnni = g_has_avx512 && ((c >> 11) & 1);
    /* AVX-VNNI: leaf 7 subleaf 1, EAX bit 4 (VEX-encoded vpdpbusd; needs YMM state only). */
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d))
        g_has_avxvnni = g_has_avx2 && ((a >> 4) & 1);
    if (g_has_avxvnni) {
        k_avx2.qconv = xnor_qconv_16c__avxvnni;
        k_avx2.qlinear_g32 = xnor_qlinear_g32__avxvnni;
    }
    if (!g_has_avx512vnni) {
        k_avx512.qconv = xnor_qconv_16c__avx2;
        k_avx512.qlinear_g32 = xnor_qlinear_g32__avx2;
    }
}
#else
static void detect(void) {}
#endif

/* A feature flag, once detection has run. */
static int detected(const int *flag)
{
    pthread_once(&g_detect_once, detect);
    return *flag;
}

int xnor_cpu_has_avx2(void) { return detected(&g_has_avx2); }
int xnor_cpu_has_avx512(void) { return detected(&g_has_avx512); }
int xnor_cpu_has_avx512vnni(void) { return detected(&g_has_avx512vnni); }
int xnor_cpu_has_avxvnni(void) { return detected(&g_has_avxvnni); }

#define XNOR_SCALAR_SLOT(slot, type, scalar, avx2, avx512) .slot = scalar,
static const xnor_kernel_table k_scalar = {.isa = XNOR_ISA_SCALAR, .name = "scalar", XNOR_KERNEL_OPS(XNOR_SCALAR_SLOT)};
#undef XNOR_SCALAR_SLOT

const xnor_kernel_table *xnor_kernels_for(xnor_isa isa)
{
    switch (isa) {
    case XNOR_ISA_SCALAR:
        return &k_scalar;
#if defined(XNOR_HAVE_X86)
    case XNOR_ISA_AVX2:
        return xnor_cpu_has_avx2() ? &k_avx2 : NULL;
    case XNOR_ISA_AVX512:
        return xnor_cpu_has_avx512() ? &k_avx512 : NULL;
    case XNOR_ISA_AUTO:
        if (xnor_cpu_has_avx512())
            return &k_avx512;
        if (xnor_cpu_has_avx2())
            return &k_avx2;
        return &k_scalar;
#else
    case XNOR_ISA_AUTO:
        return &k_scalar;
#endif
    default:
        return NULL;
    }
}
