/* plan.c -- the execution plan of a context and its buffers; the public context API.
 *
 * Optimized plan (trace = 0): dropout is an alias of its input; flatten of a 1x1 map is
 * an alias; a batchnorm whose only consumer is an XNOR bconv2d/blinear is folded into
 * that op's binarization (and into K's |v|); otherwise a batchnorm reading a
 * conv2d/linear output that nothing else reads is folded into that op's epilogue
 * ((acc + bias) * scale + shift, the same float32 roundings as the separate op); a relu
 * that is the only consumer of a conv2d/bconv2d/linear/blinear, or of such a folded
 * batchnorm, is folded into the epilogue too (loader.c marks the nodes, see
 * XFUSE_* in internal.h). Value buffers are reused once a value's last reader has run
 * (greedy best-fit over slots).
 *
 * Packed epilogues (fold.c, internal.h pack_into): an XNOR conv writes the next XNOR
 * layer's input bits, through a max-pool of bits where one sits between; a batchnorm and a
 * flatten between it and an XNOR blinear (XFUSE_PACKED) do not run.
 *
 * Trace plan (trace = 1): every node runs on its own (dropout still aliases, which is
 * the identity) and every value keeps its own buffer, so each node's output can be read.
 * It runs no packed epilogue, since the values between need their floats.
 *
 * Buffers are sized per image and allocated for the largest batch seen (batch 1 at
 * creation): the steady path allocates nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "context.h"

static void ctx_err(xnor_context_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ctx_err(xnor_context_t *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    xnor_set_errv(c->last_error, sizeof c->last_error, fmt, ap);
    va_end(ap);
}

xnor_context_params xnor_context_default_params(void) {
    xnor_context_params p;
    p.n_threads = 0;
    p.isa = XNOR_ISA_AUTO;
    p.trace = 0;
    p.spin = -1;
    return p;
}

static int is_xnor_op(const xnode *nd) {
    return (nd->op == XNOR_OP_BCONV2D || nd->op == XNOR_OP_BLINEAR) && nd->mode == XNOR_MODE_XNOR;
}

/* Build steps and value storage (aliases). */
static xnor_status build_steps(xnor_context_t *c) {
    const xnor_model_t *m = c->m;
    const uint32_t n = m->n_nodes;
    for (uint32_t v = 0; v <= n; v++) c->storage[v] = v;
    c->n_steps = 0;
    for (uint32_t k = 0; k < n; k++) {
        const xnode *nd = &m->nodes[k];
        if (nd->op == XNOR_OP_DROPOUT) {
            c->storage[k + 1] = c->storage[nd->inputs[0]];
            continue;
        }
        if (!c->trace) {
            if (nd->fused) continue; /* folded into its consumer/producer below */
            if (nd->op == XNOR_OP_FLATTEN && nd->in_shape.h == 1 && nd->in_shape.w == 1) {
                c->storage[k + 1] = c->storage[nd->inputs[0]]; /* [C][1][1] -> [C]: same bytes */
                continue;
            }
        }
        xstep *st = &c->steps[c->n_steps++];
        memset(st, 0, sizeof *st);
        st->node = (int32_t)k;
        st->bn = -1;
        st->bn_epi = -1;
        st->relu = -1;
        st->pack_to = -1;
        uint32_t in0 = nd->inputs[0];
        if (!c->trace && in0 != 0 && m->nodes[in0 - 1].fuse_kind == XFUSE_BN_BINARIZE && is_xnor_op(nd)) {
            st->bn = (int32_t)(in0 - 1);
            in0 = m->nodes[in0 - 1].inputs[0];
        }
        if (nd->pk_flat >= 0) {
            /* Weights in the packed map's order (fold.c): the input is the flatten's NHWC input
             * map, packed as such when the trace runs every node. The optimized plan runs the
             * packed epilogue instead and reads no input; in0 is then the last value a step
             * writes before it (the pool's, or the producer's), which has a buffer. */
            in0 = m->nodes[nd->pk_flat].inputs[0];
            while (!c->trace && in0 != 0 && m->nodes[in0 - 1].fuse_kind == XFUSE_PACKED)
                in0 = m->nodes[in0 - 1].inputs[0];
        }
        st->in[0] = c->storage[in0];
        st->in[1] = nd->n_inputs > 1 ? c->storage[nd->inputs[1]] : 0;
        st->out = k + 1;
        if (!c->trace && nd->n_consumers == 1) {
            const xnode *cn = &m->nodes[nd->consumer];
            if (cn->fuse_kind == XFUSE_BN_EPILOGUE) {
                st->bn_epi = nd->consumer;
                st->out = (uint32_t)nd->consumer + 1;
                if (cn->n_consumers == 1 && m->nodes[cn->consumer].fuse_kind == XFUSE_RELU_EPILOGUE) {
                    st->relu = cn->consumer;
                    st->out = (uint32_t)cn->consumer + 1;
                }
            } else if (cn->fuse_kind == XFUSE_RELU_EPILOGUE) {
                st->relu = nd->consumer;
                st->out = (uint32_t)nd->consumer + 1;
            }
        }
    }
    /* Packed epilogues (fold.c): the producer writes its consumer's packed input, or, through
     * a max-pool, the pool step's packed workspace, which the pool then pools into it. */
    if (!c->trace)
        for (uint32_t s = 0; s < c->n_steps; s++) {
            const xnode *nd = &m->nodes[c->steps[s].node];
            if (nd->pack_into < 0) continue;
            int32_t sp = -1, sc = -1;
            for (uint32_t s2 = s + 1; s2 < c->n_steps; s2++) {
                if (c->steps[s2].node == nd->pk_pool) sp = (int32_t)s2;
                if (c->steps[s2].node == nd->pack_into) sc = (int32_t)s2;
            }
            if (sc < 0 || (nd->pk_pool >= 0 && sp < 0)) continue;
            c->steps[sc].prepacked = 1;
            if (sp >= 0) {
                c->steps[s].pack_to = sp;
                c->steps[sp].bitpool = 1;
                c->steps[sp].pack_from = c->steps[s].node;
                c->steps[sp].pack_to = sc;
            } else {
                c->steps[s].pack_to = sc;
            }
        }
    return XNOR_OK;
}

/* Greedy slot assignment by liveness (trace: one slot per materialized value). */
static xnor_status assign_slots(xnor_context_t *c) {
    const xnor_model_t *m = c->m;
    const uint32_t nv = m->n_nodes + 1;
    const uint32_t outv = c->storage[m->n_nodes];
    int64_t *last = malloc(sizeof(int64_t) * nv);
    uint8_t *slot_free = calloc(nv, 1);
    if (!last || !slot_free) {
        free(last);
        free(slot_free);
        return XNOR_ERR_OUT_OF_MEMORY;
    }
    for (uint32_t v = 0; v < nv; v++) {
        last[v] = -1;
        c->slot_of[v] = -1;
    }
    for (uint32_t s = 0; s < c->n_steps; s++) {
        const xnode *nd = &m->nodes[c->steps[s].node];
        last[c->steps[s].in[0]] = s;
        if (nd->n_inputs > 1) last[c->steps[s].in[1]] = s;
    }
    last[outv] = INT64_MAX;
    c->n_slots = 0;

#define NEED(v) xshape_elems(&m->values[v])
    /* Picks the best-fitting free slot for `need` floats per image, or a new one. */
#define ASSIGN(v)                                                                         \
    do {                                                                                  \
        uint64_t need_ = NEED(v);                                                         \
        int32_t best_ = -1;                                                               \
        if (!c->trace) {                                                                  \
            for (uint32_t i_ = 0; i_ < c->n_slots; i_++) {                                \
                if (!slot_free[i_]) continue;                                             \
                if (best_ < 0) { best_ = (int32_t)i_; continue; }                         \
                uint64_t a_ = c->slot_elems[i_], b_ = c->slot_elems[best_];               \
                int fit_a = a_ >= need_, fit_b = b_ >= need_;                             \
                if ((fit_a && !fit_b) || (fit_a && fit_b && a_ < b_) ||                   \
                    (!fit_a && !fit_b && a_ > b_))                                        \
                    best_ = (int32_t)i_;                                                  \
            }                                                                             \
        }                                                                                 \
        if (best_ < 0) {                                                                  \
            best_ = (int32_t)c->n_slots++;                                                \
            c->slot_elems[best_] = 0;                                                     \
        }                                                                                 \
        slot_free[best_] = 0;                                                             \
        if (c->slot_elems[best_] < need_) c->slot_elems[best_] = need_;                   \
        c->slot_of[v] = best_;                                                            \
    } while (0)

    ASSIGN(0u);
    if (last[0] < 0 && outv != 0) slot_free[c->slot_of[0]] = 1;
    for (uint32_t s = 0; s < c->n_steps; s++) {
        const xstep *st = &c->steps[s];
        const xnode *nd = &m->nodes[st->node];
        ASSIGN(st->out);
        if (c->trace) continue;
        for (uint32_t j = 0; j < nd->n_inputs; j++) {
            uint32_t v = st->in[j];
            if (last[v] == (int64_t)s && c->slot_of[v] >= 0) slot_free[c->slot_of[v]] = 1;
        }
        if (last[st->out] < (int64_t)s) slot_free[c->slot_of[st->out]] = 1; /* written, never read */
    }
#undef ASSIGN
#undef NEED
    free(last);
    free(slot_free);
    return XNOR_OK;
}

/* Workspace sizes and XNOR tile bounds per step. */
static void size_workspaces(xnor_context_t *c) {
    const xnor_model_t *m = c->m;
    c->aux_per_image = 0;
    c->scratch_bytes = 64;
    for (uint32_t s = 0; s < c->n_steps; s++) {
        xstep *st = &c->steps[s];
        const xnode *nd = &m->nodes[st->node];
        const xshape *in = &nd->in_shape, *out = &nd->out_shape;
        st->ws_kind = WS_NONE;
        st->ws_per_image = 0;
        int padded = nd->pt || nd->pl || nd->pb || nd->pr;
        uint64_t Hp = (uint64_t)in->h + nd->pt + nd->pb, Wp = (uint64_t)in->w + nd->pl + nd->pr;
        if (st->bitpool) {
            st->ws_kind = WS_PACKED; /* the producer's bits, [H][W][cw], no halo */
            st->ws_per_image = (uint64_t)in->h * in->w * (((uint64_t)in->c + 31) / 32);
        } else if (nd->op == XNOR_OP_CONV2D || (nd->op == XNOR_OP_BCONV2D && nd->mode == XNOR_MODE_BWN)) {
            if (padded) {
                st->ws_kind = WS_PAD_F32;
                st->ws_per_image = Hp * Wp * in->c;
            }
        } else if (nd->op == XNOR_OP_BCONV2D) {
            st->ws_kind = WS_PACKED;
            st->ws_per_image = Hp * Wp * (uint64_t)nd->cw;
            if (nd->use_k && (uint64_t)in->h * in->w > c->aux_per_image) c->aux_per_image = (uint64_t)in->h * in->w;
            /* Tile: bt blocks x rt rows of int32 popcounts (+ rt*ow floats of K) in scratch. */
            uint64_t ow = out->w;
            int32_t bt = nd->nb < XNOR_BT_MAX ? nd->nb : XNOR_BT_MAX;
            while (bt > 1 && ow * 16 * (uint64_t)bt * 4 > XNOR_TILE_BYTES) bt--;
            uint64_t row_bytes = ow * (16 * (uint64_t)bt * 4 + 4);
            uint64_t rt = XNOR_TILE_BYTES / row_bytes;
            if (rt < 1) rt = 1;
            if (rt > out->h) rt = out->h;
            st->bt_max = bt;
            st->rt_max = (int32_t)rt;
            if (rt * row_bytes > c->scratch_bytes) c->scratch_bytes = (size_t)(rt * row_bytes);
        } else if (nd->op == XNOR_OP_QCONV2D) {
            /* Tile: bt blocks x rt rows of int32 sums, then one border window (kh rows of
             * qg groups of 4 bytes). */
            uint64_t ow = out->w;
            int32_t bt = nd->nb < XNOR_BT_MAX ? nd->nb : XNOR_BT_MAX;
            while (bt > 1 && ow * 16 * (uint64_t)bt * 4 > XNOR_TILE_BYTES) bt--;
            uint64_t row_bytes = ow * 16 * (uint64_t)bt * 4;
            uint64_t rt = XNOR_TILE_BYTES / row_bytes;
            if (rt < 1) rt = 1;
            if (rt > out->h) rt = out->h;
            st->bt_max = bt;
            st->rt_max = (int32_t)rt;
            uint64_t need = rt * row_bytes + (uint64_t)nd->kh * (uint64_t)nd->qg * 4;
            if (need > c->scratch_bytes) c->scratch_bytes = (size_t)need;
        } else if (nd->op == XNOR_OP_QLINEAR) {
            st->ws_kind = WS_PACKED; /* per sample: qg words of uint8 activations, qng sx, z */
            st->ws_per_image = (uint64_t)nd->qg + (uint64_t)nd->qng + 1;
            /* Tiles sized as blinear's; the fused kernel keeps its sums in registers and
             * writes the outputs directly, so it needs no scratch. */
            int32_t bt = nd->nb < XNOR_BT_MAX ? nd->nb : XNOR_BT_MAX;
            uint64_t row_bytes = 16 * (uint64_t)bt * 4;
            uint64_t rt = XNOR_TILE_BYTES / row_bytes;
            if (rt > 256) rt = 256;
            st->bt_max = bt;
            st->rt_max = (int32_t)rt;
        } else if (nd->op == XNOR_OP_BLINEAR && nd->mode == XNOR_MODE_XNOR) {
            st->ws_kind = WS_PACKED;
            st->ws_per_image = (uint64_t)nd->cw;
            if (nd->use_k && c->aux_per_image < 1) c->aux_per_image = 1;
            int32_t bt = nd->nb < XNOR_BT_MAX ? nd->nb : XNOR_BT_MAX;
            uint64_t row_bytes = 16 * (uint64_t)bt * 4;
            uint64_t rt = XNOR_TILE_BYTES / row_bytes; /* samples per tile */
            if (rt > 256) rt = 256;
            st->bt_max = bt;
            st->rt_max = (int32_t)rt;
            if (rt * row_bytes > c->scratch_bytes) c->scratch_bytes = (size_t)(rt * row_bytes);
        }
    }
    c->scratch_bytes = (c->scratch_bytes + 63) & ~(size_t)63;
}

static void free_batch_buffers(xnor_context_t *c) {
    if (c->slot_buf)
        for (uint32_t i = 0; i < c->n_slots; i++) {
            xnor_free_aligned(c->slot_buf[i]);
            c->slot_buf[i] = NULL;
        }
    if (c->steps)
        for (uint32_t s = 0; s < c->n_steps; s++) {
            xnor_free_aligned(c->steps[s].ws);
            c->steps[s].ws = NULL;
        }
    xnor_free_aligned(c->aux);
    c->aux = NULL;
    xnor_free_aligned(c->u8buf);
    c->u8buf = NULL;
    c->cap = 0;
}

static int mul_size(uint64_t a, uint64_t b, size_t elem, size_t *out) {
    uint64_t r;
    if (!xnor_mul_u64(a, b, &r) || !xnor_mul_u64(r, elem, &r) || r > (uint64_t)SIZE_MAX / 2) return 0;
    *out = (size_t)r;
    return 1;
}

/* Make the buffers hold `batch` images. Halo buffers are zeroed on allocation. */
xnor_status xnor_ctx_reserve(xnor_context_t *c, uint32_t batch) {
    if (batch <= c->cap) return XNOR_OK;
    free_batch_buffers(c);
    size_t bytes;
    for (uint32_t i = 0; i < c->n_slots; i++) {
        if (!mul_size(c->slot_elems[i], batch, sizeof(float), &bytes)) goto too_big;
        if (!(c->slot_buf[i] = xnor_alloc_aligned(bytes))) goto oom;
    }
    for (uint32_t s = 0; s < c->n_steps; s++) {
        xstep *st = &c->steps[s];
        if (st->ws_kind == WS_NONE) continue;
        if (!mul_size(st->ws_per_image, batch, 4, &bytes)) goto too_big;
        if (!(st->ws = xnor_calloc_aligned(bytes))) goto oom;
    }
    if (c->aux_per_image) {
        if (!mul_size(c->aux_per_image, batch, sizeof(float), &bytes)) goto too_big;
        if (!(c->aux = xnor_alloc_aligned(bytes))) goto oom;
    }
    if (c->m->input_u8) {
        const uint64_t per = (uint64_t)c->m->in_c * c->m->in_h * c->m->in_w;
        if (!mul_size(per, batch, 1, &bytes) || bytes > SIZE_MAX / 2 - XNOR_U8_SLACK) goto too_big;
        if (!(c->u8buf = xnor_calloc_aligned(bytes + XNOR_U8_SLACK))) goto oom;
    }
    c->cap = batch;
    return XNOR_OK;
too_big:
    free_batch_buffers(c);
    ctx_err(c, "batch %u needs buffers larger than the address space", batch);
    return XNOR_ERR_OUT_OF_MEMORY;
oom:
    free_batch_buffers(c);
    ctx_err(c, "out of memory allocating buffers for batch %u", batch);
    return XNOR_ERR_OUT_OF_MEMORY;
}

void xnor_context_free(xnor_context_t *c) {
    if (!c) return;
    xnor_pool_free(c->pool);
    free_batch_buffers(c);
    if (c->scratch) {
        for (int32_t i = 0; i < c->n_threads; i++) xnor_free_aligned(c->scratch[i]);
        free(c->scratch);
    }
    XNOR_FREE_EACH(free, c->steps, c->storage, c->slot_of, c->slot_elems, c->slot_buf, c->timings, c);
}

xnor_status xnor_context_new(const xnor_model_t *m, const xnor_context_params *params, xnor_context_t **out,
                             char *errbuf, size_t errbuf_len) {
    if (errbuf && errbuf_len) errbuf[0] = '\0';
    if (!out) {
        xnor_set_err(errbuf, errbuf_len, "out is NULL");
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    if (!m) {
        xnor_set_err(errbuf, errbuf_len, "model is NULL");
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    xnor_context_params p = params ? *params : xnor_context_default_params();
    if (p.trace != 0 && p.trace != 1) {
        xnor_set_err(errbuf, errbuf_len, "trace must be 0 or 1, got %d", (int)p.trace);
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    xnor_isa isa;
    xnor_status st = xnor_isa_resolve((xnor_isa)p.isa, &isa);
    if (st) {
        if (p.isa == XNOR_ISA_AUTO)
            xnor_set_err(errbuf, errbuf_len, "XNORNET_ISA=%s is unknown or not supported by this CPU",
                         getenv("XNORNET_ISA") ? getenv("XNORNET_ISA") : "");
        else
            xnor_set_err(errbuf, errbuf_len, "instruction set %s (%d) is not supported by this CPU/build",
                         xnor_isa_name((xnor_isa)p.isa), (int)p.isa);
        return st;
    }
    const xnor_kernel_table *kt = xnor_kernels_for(isa);
    if (!kt) {
        xnor_set_err(errbuf, errbuf_len, "no kernels for instruction set %s", xnor_isa_name(isa));
        return XNOR_ERR_UNSUPPORTED_ISA;
    }
    int32_t nt = p.n_threads > 0 ? p.n_threads : xnor_default_threads();
    if (nt > 1024) nt = 1024; /* a sanity bound, not a tuning choice */

    xnor_context_t *c = calloc(1, sizeof *c);
    if (!c) {
        xnor_set_err(errbuf, errbuf_len, "out of memory");
        return XNOR_ERR_OUT_OF_MEMORY;
    }
    c->m = m;
    c->isa = isa;
    c->kt = kt;
    c->n_threads = nt;
    c->trace = p.trace;
    const uint32_t nv = m->n_nodes + 1;
    c->steps = calloc(m->n_nodes, sizeof *c->steps);
    c->storage = calloc(nv, sizeof *c->storage);
    c->slot_of = calloc(nv, sizeof *c->slot_of);
    c->slot_elems = calloc(nv, sizeof *c->slot_elems);
    c->slot_buf = calloc(nv, sizeof *c->slot_buf);
    c->timings = calloc(m->n_nodes, sizeof *c->timings);
    c->scratch = calloc((size_t)nt, sizeof *c->scratch);
    if (!c->steps || !c->storage || !c->slot_of || !c->slot_elems || !c->slot_buf || !c->timings || !c->scratch) {
        st = XNOR_ERR_OUT_OF_MEMORY;
        xnor_set_err(errbuf, errbuf_len, "out of memory");
        goto fail;
    }
    if ((st = build_steps(c)) || (st = assign_slots(c))) {
        xnor_set_err(errbuf, errbuf_len, "out of memory building the plan");
        goto fail;
    }
    size_workspaces(c);
    /* Kernel arguments are 32-bit: refuse per-image workspaces they cannot index. */
    for (uint32_t s = 0; s < c->n_steps; s++) {
        const xnode *nd = &m->nodes[c->steps[s].node];
        uint64_t per_tap = nd->wbits ? (uint64_t)nd->cw : (uint64_t)nd->C;
        uint64_t lanes = nd->wm ? 1 : 16; /* BWN: one uint16 mask holds the 16 lanes */
        uint64_t welems = (uint64_t)nd->nb * lanes * (uint64_t)nd->kh * (uint64_t)nd->kw * per_tap;
        if ((nd->wbits || nd->wf || nd->wm) && welems > 0x7FFFFFFFull) {
            st = XNOR_ERR_INVALID_ARGUMENT;
            xnor_set_err(errbuf, errbuf_len, "node %d (%s): repacked weights exceed 2^31-1 elements",
                         c->steps[s].node, nd->name);
            goto fail;
        }
    }
    for (uint32_t s = 0; s < c->n_steps; s++)
        if (c->steps[s].ws_per_image > 0x7FFFFFFFull) {
            st = XNOR_ERR_INVALID_ARGUMENT;
            xnor_set_err(errbuf, errbuf_len, "node %d (%s): padded input exceeds 2^31-1 elements per image",
                         c->steps[s].node, m->nodes[c->steps[s].node].name);
            goto fail;
        }
    for (int32_t i = 0; i < nt; i++)
        if (!(c->scratch[i] = xnor_alloc_aligned(c->scratch_bytes))) {
            st = XNOR_ERR_OUT_OF_MEMORY;
            xnor_set_err(errbuf, errbuf_len, "out of memory (thread scratch)");
            goto fail;
        }
    if ((st = xnor_ctx_reserve(c, 1))) {
        xnor_set_err(errbuf, errbuf_len, "%s", c->last_error);
        goto fail;
    }
    if ((st = xnor_pool_new(nt, p.spin, &c->pool))) {
        xnor_set_err(errbuf, errbuf_len, st == XNOR_ERR_THREAD ? "could not start %d worker threads"
                                                               : "out of memory starting %d threads", nt - 1);
        goto fail;
    }
    *out = c;
    return XNOR_OK;
fail:
    xnor_context_free(c);
    return st;
}

xnor_isa xnor_context_isa(const xnor_context_t *c) { return c ? c->isa : XNOR_ISA_AUTO; }
int32_t xnor_context_threads(const xnor_context_t *c) { return c ? c->n_threads : 0; }
const char *xnor_context_last_error(const xnor_context_t *c) { return c ? c->last_error : ""; }

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The checks both entry points share; on success the buffers hold `batch` images. */
static xnor_status infer_begin(xnor_context_t *c, const void *input, uint32_t batch, size_t input_len,
                               const float *output, size_t output_len, const char *layout) {
    if (!c) return XNOR_ERR_INVALID_ARGUMENT;
    c->last_error[0] = '\0';
    const xnor_model_t *m = c->m;
    if (!input || !output) {
        ctx_err(c, "input or output is NULL");
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    if (batch == 0 || batch > 0x7FFFFFFFu) {
        /* Work splitting counts images in 32-bit signed integers. */
        ctx_err(c, "batch %u, expected 1..2147483647", batch);
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    const uint64_t in_per = (uint64_t)m->in_c * m->in_h * m->in_w;
    uint64_t want_in, want_out;
    if (!xnor_mul_u64(in_per, batch, &want_in) || want_in != input_len) {
        ctx_err(c, "input_len %zu, expected %s batch %u * %u * %u * %u = %llu", input_len, layout, batch, m->in_c,
                m->in_h, m->in_w, (unsigned long long)(in_per * batch));
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    if (!xnor_mul_u64(m->out_size, batch, &want_out) || want_out != output_len) {
        ctx_err(c, "output_len %zu, expected batch %u * %u = %llu", output_len, batch, m->out_size,
                (unsigned long long)((uint64_t)m->out_size * batch));
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    xnor_status st = xnor_ctx_reserve(c, batch);
    if (st) {
        c->last_batch = 0;
        return st;
    }
    memset(c->timings, 0, sizeof(uint64_t) * m->n_nodes);
    return XNOR_OK;
}

/* Runs the plan on the input already in value 0's buffer and copies the output out. */
static xnor_status infer_run(xnor_context_t *c, uint32_t batch, float *output, size_t output_len) {
    const xnor_model_t *m = c->m;
    for (uint32_t s = 0; s < c->n_steps; s++) {
        const xstep *sp = &c->steps[s];
        uint64_t t0 = now_ns();
        xnor_exec_step(c, sp, batch);
        c->timings[sp->node] += now_ns() - t0;
    }
    const xshape *os = &m->values[m->n_nodes];
    const float *res = xnor_vbuf(c, m->n_nodes);
    if (os->is4d && !(os->h == 1 && os->w == 1))
        xnor_nhwc_to_nchw(res, output, batch, os->c, os->h, os->w);
    else
        memcpy(output, res, sizeof(float) * output_len);
    c->last_batch = batch;
    return XNOR_OK;
}

xnor_status xnor_infer(xnor_context_t *c, const float *input, uint32_t batch, size_t input_len, float *output,
                       size_t output_len) {
    xnor_status st = infer_begin(c, input, batch, input_len, output, output_len, "float32 NCHW");
    if (st) return st;
    const xnor_model_t *m = c->m;
    if (m->input_u8)
        xnor_exec_pixels_from_float(c, input, batch);
    else
        xnor_exec_nchw_to_nhwc(c, input, xnor_vbuf(c, 0), batch, m->in_c, m->in_h, m->in_w);
    return infer_run(c, batch, output, output_len);
}

xnor_status xnor_infer_u8(xnor_context_t *c, const uint8_t *input, uint32_t batch, size_t input_len,
                          float *output, size_t output_len) {
    xnor_status st = infer_begin(c, input, batch, input_len, output, output_len, "uint8 NHWC");
    if (st) return st;
    const xnor_model_t *m = c->m;
    if (m->input_u8) /* the int8 first layer reads the pixels themselves */
        memcpy(c->u8buf, input, input_len);
    else
        xnor_exec_u8_to_f32(c, input, xnor_vbuf(c, 0), batch, m->in_c, m->in_h, m->in_w);
    return infer_run(c, batch, output, output_len);
}

xnor_status xnor_context_get_trace(const xnor_context_t *c, uint32_t index, float *dst, size_t dst_len) {
    if (!c || !dst) return XNOR_ERR_INVALID_ARGUMENT;
    const xnor_model_t *m = c->m;
    if (!c->trace || c->last_batch == 0 || index >= m->n_nodes) return XNOR_ERR_INVALID_ARGUMENT;
    const xshape *s = &m->values[index + 1];
    uint64_t n = xshape_elems(s) * c->last_batch;
    if (dst_len != n) return XNOR_ERR_INVALID_ARGUMENT;
    const float *src = xnor_vbuf(c, index + 1);
    if (s->is4d && !(s->h == 1 && s->w == 1))
        xnor_nhwc_to_nchw(src, dst, c->last_batch, s->c, s->h, s->w);
    else
        memcpy(dst, src, sizeof(float) * (size_t)n);
    return XNOR_OK;
}

xnor_status xnor_context_get_timings(const xnor_context_t *c, uint64_t *out_ns, size_t out_len) {
    if (!c || !out_ns || out_len < c->m->n_nodes) return XNOR_ERR_INVALID_ARGUMENT;
    memcpy(out_ns, c->timings, sizeof(uint64_t) * c->m->n_nodes);
    return XNOR_OK;
}
