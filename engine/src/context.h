/* context.h -- the inference context: plan (steps), buffers, pool. Internal. */
#ifndef XNOR_CONTEXT_H
#define XNOR_CONTEXT_H

#include "internal.h"

/* Workspace kinds of a step. */
enum { WS_NONE = 0, WS_PAD_F32 = 1, WS_PACKED = 2 };

/* One executed step of the plan: a node, possibly with a batchnorm folded into its
 * input binarization (XNOR) or into its epilogue (conv2d/linear), and a relu folded into
 * its epilogue (after that batchnorm). */
typedef struct {
    int32_t node;          /* node that runs */
    int32_t bn;            /* batchnorm folded into the binarization (XNOR), or -1 */
    int32_t bn_epi;        /* batchnorm folded into the epilogue (conv2d/linear), or -1 */
    int32_t relu;          /* folded relu node, or -1 */
    uint32_t in[2];        /* storage value ids read */
    uint32_t out;          /* storage value id written */
    int32_t ws_kind;
    uint64_t ws_per_image; /* floats or uint32 words per image (per sample for 2-D ops) */
    void *ws;              /* [cap][ws_per_image], zeroed at allocation (the halo stays 0) */
    int32_t bt_max;        /* XNOR: max 16-channel blocks per tile (scratch bound) */
    int32_t rt_max;        /* XNOR: max rows (samples for blinear) per tile */
    int32_t pack_to;       /* packed epilogue: the step whose packed input this step writes, or -1 */
    int32_t prepacked;     /* XNOR: an earlier step wrote this step's packed input (no pack) */
    int32_t bitpool;       /* max-pool over the packed bits in ws (node pack_from's packed
                            * epilogue wrote them) into step pack_to's packed input */
    int32_t pack_from;
} xstep;

struct xnor_context {
    const xnor_model_t *m;
    xnor_isa isa;
    const xnor_kernel_table *kt;
    int32_t n_threads;
    int32_t trace;
    xnor_pool *pool;

    xstep *steps;
    uint32_t n_steps;
    uint32_t *storage;     /* [n_values]: value id -> storage value id (aliases) */
    int32_t *slot_of;      /* [n_values]: storage value -> buffer slot, -1 if none */
    uint32_t n_slots;
    uint64_t *slot_elems;  /* floats per image */
    float **slot_buf;      /* [n_slots][cap * slot_elems] */

    uint32_t cap;          /* batch the buffers hold */
    float *aux;            /* [cap][aux_per_image]: A map (bconv2d use_k) or K (blinear use_k) */
    uint64_t aux_per_image;

    void **scratch;        /* per thread: bconv popcount tile + K tile */
    size_t scratch_bytes;

    uint8_t *u8buf;        /* m->input_u8: [cap][in_h][in_w][in_c] pixels + XNOR_U8_SLACK bytes */

    uint64_t *timings;     /* [n_nodes] */
    uint32_t last_batch;
    char last_error[256];
};

/* plan.c */
xnor_status xnor_ctx_reserve(xnor_context_t *c, uint32_t batch);
static inline float *xnor_vbuf(const xnor_context_t *c, uint32_t value) {
    uint32_t s = c->storage[value];
    return c->slot_buf[c->slot_of[s]];
}

/* exec.c */
void xnor_exec_step(xnor_context_t *c, const xstep *st, uint32_t N);
void xnor_exec_nchw_to_nhwc(xnor_context_t *c, const float *src, float *dst, uint32_t N, uint32_t C, uint32_t H,
                            uint32_t W);
void xnor_exec_u8_to_f32(xnor_context_t *c, const uint8_t *src, float *dst, uint32_t N, uint32_t C, uint32_t H,
                         uint32_t W);
void xnor_nhwc_to_nchw(const float *src, float *dst, uint32_t N, uint32_t C, uint32_t H, uint32_t W);

/* exec.c: how many work items a layer of `work` units should use (1: run inline). */
int64_t xnor_exec_want_items(const xnor_context_t *c, uint64_t work, uint64_t grain);

/* exec_int8.c */
void xnor_exec_qconv(xnor_context_t *c, const xstep *st, uint32_t N);
void xnor_exec_qlinear(xnor_context_t *c, const xstep *st, uint32_t N);
void xnor_exec_pixels_from_float(xnor_context_t *c, const float *src, uint32_t N);

/* Bytes after the last image of u8buf: an int8 kernel reads whole 4-byte groups. */
#define XNOR_U8_SLACK 64

/* Scratch per thread for XNOR tiles. */
#define XNOR_TILE_BYTES (96 * 1024)
#define XNOR_BT_MAX 8

#endif /* XNOR_CONTEXT_H */
