/* ceil_chains.h -- the loop of the SIMD ceiling microbenchmarks (ceil__avx2.c, ceil__avx512.c)
 * that time one instruction: K independent chains of it, so throughput, not latency, bounds
 * the loop. */
#ifndef XNOR_CEIL_CHAINS_H
#define XNOR_CEIL_CHAINS_H

#define CEIL_K 12

/* Declares `T acc[CEIL_K]`, sets acc[k] = INIT, runs `iters` rounds of acc[k] = STEP on
 * every chain and declares `T sum`, the chains folded with ADD(x, y). INIT and STEP are
 * expressions in k and acc[k]. A macro, not a function: each ISA's file expands it inside
 * its own target attribute with its own intrinsics. */
#define CEIL_CHAINS(T, iters, INIT, STEP, ADD)                                                   \
    T acc[CEIL_K];                                                                               \
    for (int k = 0; k < CEIL_K; k++)                                                             \
        acc[k] = (INIT);                                                                         \
    for (int64_t i = 0; i < (iters); i++)                                                        \
        _Pragma("GCC unroll 16") for (int k = 0; k < CEIL_K; k++) acc[k] = (STEP);               \
    T sum = acc[0];                                                                              \
    for (int k = 1; k < CEIL_K; k++)                                                             \
        sum = ADD(sum, acc[k])

#endif /* XNOR_CEIL_CHAINS_H */
