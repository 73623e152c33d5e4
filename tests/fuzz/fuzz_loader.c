/* fuzz_loader.c -- libFuzzer target for the model loader (engine/src/loader.c) and a small
 * inference on whatever loads.
 *
 * Build and run: scripts/fuzz/run.sh [SECONDS]  (see tests/fuzz/README.md).
 *
 * What one input does:
 *   1. Harness transform (the same one tests/fuzz/test_corpus_replay.py applies, keep them in
 *      sync). The CRC would make nearly every mutation stop at XNOR_ERR_CHECKSUM, so the
 *      harness patches it on a copy: the 4-byte crc field at offset 12 is free for the
 *      fuzzer to use as a control word, because it is overwritten anyway:
 *        crc field == 0xFFFFFFFF  "raw": the bytes go to the loader untouched (checksum path);
 *        low byte  == 0xFE        "resize": file_bytes (16) := size and data_bytes (88) :=
 *                                 size - data_offset (80), then the CRC is fixed up;
 *                                 lets truncations/extensions reach the tensor checks;
 *        anything else            the CRC is fixed up.
 *      Byte 13 of the original crc field picks the ISA and byte 14 trace mode, batch size
 *      and thread count, so those come from the input too (and a seed with a correct CRC
 *      still loads). One input in 16 (by the patched CRC's top byte) also goes through
 *      xnor_model_load_file from a temporary file and must get the same status.
 *   2. xnor_model_load_bytes. A failure must carry a non-empty message and no model.
 *   3. On success: xnor_model_get_info / get_label / get_node for every index (plus the
 *      out-of-range ones), a memory-amplification check (see MEM_RATIO below), and, when
 *      the graph is small enough to run in milliseconds, a 1- or 3-thread context and one
 *      xnor_infer on a batch of 1 or 2 built from the input bytes (with NaN/Inf/-0
 *      sprinkled in), then get_trace / get_timings, then everything is freed.
 *
 * Anything unexpected (a status/contract violation) calls abort(), which libFuzzer
 * reports as a crash and saves the input.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xnornet.h"

/* --------------------------------------------------------------- limits */

/* Loaded-model memory bound: memory_bytes <= MEM_RATIO * file_bytes + MEM_SLACK.
 * By design the engine repacks weights into 16-lane blocks: float weights stay 4 bytes
 * (up to 16x for a layer with one output channel), and a binary layer keeps one 32-bit word
 * per tap and lane, so a 1-input-channel, 1-output-channel binary layer turns each weight
 * bit into 16 x 32 bits: 512x, the worst case the design permits. Anything above 640x
 * the whole file is memory the file does not justify. Override with the environment
 * variable XNOR_FUZZ_MEM_RATIO (0 disables the check). */
#define MEM_RATIO_DEFAULT 640ull
#define MEM_SLACK (64ull * 1024)

/* Inference budget per image (the context's buffers are per image times batch). */
#define MAX_INPUT_ELEMS (1ull << 16)      /* in_c * in_h * in_w */
#define MAX_FLOATS (4ull << 20)            /* all values + padded workspaces, in floats */
#define MAX_MACS (20ull << 20)             /* sum of xnor_node_info.macs */
#define MAX_POOL_WORK (32ull << 20)        /* pool output elements * 64 * 64 (kernel bound) */

static void die(const char *what, const char *detail) {
    fprintf(stderr, "fuzz_loader: contract violation: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

/* --------------------------------------------------------------- CRC-32 (zlib) */

static uint32_t crc_tab[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        crc_tab[i] = c;
    }
}

static uint32_t crc32_buf(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = crc_tab[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* The harness transform (documented above). Returns the control word (original crc field). */
static uint32_t transform(uint8_t *buf, size_t size) {
    if (size < 16) return 0;
    uint32_t ctl;
    memcpy(&ctl, buf + 12, 4);
    if (ctl == 0xFFFFFFFFu) return ctl; /* raw */
    if ((ctl & 0xFFu) == 0xFEu && size >= 96) {
        wr64(buf + 16, (uint64_t)size);
        uint64_t doff = rd64(buf + 80);
        wr64(buf + 88, (uint64_t)size - doff); /* wraps if doff > size: the loader must reject it */
    }
    wr32(buf + 12, 0);
    wr32(buf + 12, crc32_buf(buf, size));
    return ctl;
}

/* --------------------------------------------------------------- helpers */

static uint64_t mem_ratio(void) {
    static int init = 0;
    static uint64_t r = MEM_RATIO_DEFAULT;
    if (!init) {
        const char *e = getenv("XNOR_FUZZ_MEM_RATIO");
        if (e && *e) r = strtoull(e, NULL, 10);
        init = 1;
    }
    return r;
}

static uint64_t sat_mul(uint64_t a, uint64_t b) {
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t sat_add(uint64_t a, uint64_t b) {
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* Volatile sink so the label/trace reads are not optimised away (ASan checks them). */
static volatile uint32_t sink;

static float input_value(const uint8_t *data, size_t size, size_t i) {
    uint8_t b = size ? data[(i * 7 + 3) % size] : 0;
    switch (b) {
    case 0xFF: return NAN;
    case 0xFE: return INFINITY;
    case 0xFD: return -INFINITY;
    case 0xFC: return -0.0f;
    case 0xFB: return 3.0e38f;
    default: return ((float)b - 128.0f) / 16.0f;
    }
}

/* --------------------------------------------------------------- the target */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    crc_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    uint32_t ctl = transform(buf, size);

    char err[256];
    memset(err, 'x', sizeof err);
    xnor_model_t *m = (xnor_model_t *)(uintptr_t)1; /* must be reset to NULL on failure */
    xnor_status st = xnor_model_load_bytes(buf, size, &m, err, sizeof err);
    if (memchr(err, 0, sizeof err) == NULL) die("errbuf not NUL-terminated", NULL);
    /* One input in 16 also goes through xnor_model_load_file (same bytes, same verdict). */
    if (size >= 16 && (buf[15] & 0x0F) == 0x3) {
        static char path[64];
        if (!path[0]) snprintf(path, sizeof path, "/tmp/xnor_fuzz_%ld.bin", (long)getpid());
        FILE *f = fopen(path, "wb");
        if (f) {
            size_t wrote = fwrite(buf, 1, size, f);
            fclose(f);
            if (wrote == size) {
                xnor_model_t *m2 = NULL;
                char err2[256];
                xnor_status st2 = xnor_model_load_file(path, &m2, err2, sizeof err2);
                if (st2 != st) die("load_file and load_bytes disagree", err2);
                xnor_model_free(m2);
            }
            unlink(path);
        }
    }
    if (st != XNOR_OK) {
        if (m != NULL) die("failed load left *out non-NULL", xnor_status_str(st));
        if (err[0] == '\0') die("failed load with an empty message", xnor_status_str(st));
        if (st < XNOR_ERR_INVALID_ARGUMENT || st > XNOR_ERR_INTERNAL) die("status out of range", NULL);
        if (st == XNOR_ERR_INTERNAL || st == XNOR_ERR_INVALID_ARGUMENT || st == XNOR_ERR_IO)
            die("loader returned a status that is not about the file", err);
        if (st == XNOR_ERR_CHECKSUM && ctl != 0xFFFFFFFFu && size >= 16) die("checksum error after fix-up", err);
        free(buf);
        return 0;
    }
    if (m == NULL) die("XNOR_OK without a model", NULL);
    /* The model must not depend on the caller's buffer after the call. */
    memset(buf, 0xA5, size);
    free(buf);

    xnor_model_info info;
    if (xnor_model_get_info(m, &info) != XNOR_OK) die("get_info failed", NULL);
    if (info.file_bytes != size) die("info.file_bytes != input size", NULL);
    if (info.n_nodes < 1 || info.n_nodes > 4096) die("info.n_nodes out of range", NULL);
    if (info.out_size < 1) die("info.out_size is 0", NULL);
    if (info.n_labels != 0 && info.n_labels != info.out_size) die("n_labels != out_size", NULL);
    if (memchr(info.name, 0, sizeof info.name) == NULL) die("info.name not NUL-terminated", NULL);
    uint64_t ratio = mem_ratio();
    if (ratio && info.memory_bytes > sat_add(sat_mul(ratio, size), MEM_SLACK)) {
        char d[160];
        snprintf(d, sizeof d, "memory_bytes %llu for a %zu-byte file (%.1fx, bound %llux + %llu)",
                 (unsigned long long)info.memory_bytes, size, (double)info.memory_bytes / (double)size,
                 (unsigned long long)ratio, (unsigned long long)MEM_SLACK);
        die("loaded model holds more memory than the file justifies", d);
    }

    for (uint32_t i = 0; i < info.n_labels; i++) {
        const char *text = NULL;
        uint32_t len = 0;
        if (xnor_model_get_label(m, i, &text, &len) != XNOR_OK) die("get_label failed", NULL);
        if (!text || len < 1 || len > 1024) die("bad label", NULL);
        uint32_t s = 0;
        for (uint32_t j = 0; j < len; j++) s += (uint8_t)text[j];
        sink = s;
    }
    {
        const char *text;
        uint32_t len;
        if (xnor_model_get_label(m, info.n_labels, &text, &len) == XNOR_OK) die("get_label past the end", NULL);
    }

    /* Walk the nodes: shapes for the budget. Value v's elements: v = 0 input, v = k+1 node k. */
    uint64_t in_elems = (uint64_t)info.in_c * info.in_h * info.in_w;
    uint64_t floats = in_elems, macs = 0, pool_work = 0;
    xnor_node_info *ni = calloc(info.n_nodes, sizeof *ni);
    if (!ni) die("calloc", NULL);
    for (uint32_t k = 0; k < info.n_nodes; k++) {
        if (xnor_model_get_node(m, k, &ni[k]) != XNOR_OK) die("get_node failed", NULL);
        const xnor_node_info *n = &ni[k];
        if (memchr(n->name, 0, sizeof n->name) == NULL) die("node name not NUL-terminated", NULL);
        if (n->op < 1 || n->op > XNOR_OP_QLINEAR) die("node op out of range", NULL);
        if (n->n_inputs < 1 || n->n_inputs > 2) die("node n_inputs out of range", NULL);
        for (uint32_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] > k) die("node reads a later value", NULL);
        if (n->out_c < 1 || n->out_h < 1 || n->out_w < 1) die("node output dimension 0", NULL);
        uint64_t oe = (uint64_t)n->out_c * n->out_h * n->out_w;
        floats = sat_add(floats, oe);
        macs = sat_add(macs, n->macs);
        if (n->op == 7 || n->op == 8) pool_work = sat_add(pool_work, sat_mul(oe, 64 * 64));
        if (n->op == 1 || n->op == 2) {
            /* Padded copy of the input: pads are < kernel, kernel <= min(64, kh*kw). */
            uint32_t v = n->inputs[0];
            uint64_t ic, ih, iw;
            if (v == 0) { ic = info.in_c; ih = info.in_h; iw = info.in_w; }
            else { ic = ni[v - 1].out_c; ih = ni[v - 1].out_h; iw = ni[v - 1].out_w; }
            uint64_t denom = sat_mul(sat_mul((uint64_t)n->out_h * n->out_w, n->out_c), ic);
            uint64_t kk = denom ? n->macs / denom : 64;
            if (kk > 64) kk = 64;
            uint64_t ws = sat_mul(sat_mul(ih + 2 * kk, iw + 2 * kk), ic);
            floats = sat_add(floats, ws);
            floats = sat_add(floats, sat_mul(ih, iw)); /* K's A map */
        }
    }
    {
        xnor_node_info dummy;
        if (xnor_model_get_node(m, info.n_nodes, &dummy) == XNOR_OK) die("get_node past the end", NULL);
    }
    const xnor_node_info *last = &ni[info.n_nodes - 1];
    if ((uint64_t)last->out_c * last->out_h * last->out_w != info.out_size) die("out_size != last node's output", NULL);

    uint8_t c13 = (uint8_t)(ctl >> 8), c14 = (uint8_t)(ctl >> 16);
    uint32_t batch = (c14 & 2) ? 2 : 1;
    int trace = c14 & 1;
    static const xnor_isa isas[3] = {XNOR_ISA_SCALAR, XNOR_ISA_AVX2, XNOR_ISA_AVX512};
    xnor_isa isa = isas[c13 % 3];
    if (!xnor_isa_supported(isa)) isa = XNOR_ISA_SCALAR;

    if (in_elems <= MAX_INPUT_ELEMS && sat_mul(floats, batch) <= MAX_FLOATS && sat_mul(macs, batch) <= MAX_MACS &&
        sat_mul(pool_work, batch) <= MAX_POOL_WORK) {
        xnor_context_params p = xnor_context_default_params();
        p.n_threads = (c14 & 4) ? 3 : 1; /* 3 threads: the pool and the tiling paths */
        p.isa = isa;
        p.trace = trace;
        xnor_context_t *ctx = NULL;
        st = xnor_context_new(m, &p, &ctx, err, sizeof err);
        if (st != XNOR_OK) {
            /* Only memory can fail here for a model that loaded, and the budget rules that out. */
            die("xnor_context_new failed on a small loaded model", err);
        }
        size_t in_len = (size_t)in_elems * batch, out_len = (size_t)info.out_size * batch;
        float *x = malloc(in_len * sizeof(float));
        float *y = malloc(out_len * sizeof(float));
        if (!x || !y) die("malloc", NULL);
        for (size_t i = 0; i < in_len; i++) x[i] = input_value(data, size, i);
        /* Wrong lengths are rejected without touching memory. */
        if (xnor_infer(ctx, x, batch, in_len + 1, y, out_len) != XNOR_ERR_INVALID_ARGUMENT)
            die("infer accepted a wrong input_len", NULL);
        if (xnor_infer(ctx, x, batch, in_len, y, out_len - 1) != XNOR_ERR_INVALID_ARGUMENT)
            die("infer accepted a wrong output_len", NULL);
        st = xnor_infer(ctx, x, batch, in_len, y, out_len);
        if (st != XNOR_OK) die("xnor_infer failed on a small loaded model", xnor_context_last_error(ctx));
        /* The same batch as uint8 pixels (the normalization, or an int8 first layer's own reads). */
        uint8_t *px = malloc(in_len);
        if (!px) die("malloc", NULL);
        for (size_t i = 0; i < in_len; i++) px[i] = data[(i * 7 + 3) % size];
        if (xnor_infer_u8(ctx, px, batch, in_len - 1, y, out_len) != XNOR_ERR_INVALID_ARGUMENT)
            die("infer_u8 accepted a wrong input_len", NULL);
        st = xnor_infer_u8(ctx, px, batch, in_len, y, out_len);
        if (st != XNOR_OK) die("xnor_infer_u8 failed on a small loaded model", xnor_context_last_error(ctx));
        free(px);
        uint32_t s = 0;
        for (size_t i = 0; i < out_len; i++) {
            uint32_t b;
            memcpy(&b, &y[i], 4);
            s ^= b;
        }
        sink = s;
        if (trace) {
            for (uint32_t k = 0; k < info.n_nodes; k++) {
                size_t n = (size_t)ni[k].out_c * ni[k].out_h * ni[k].out_w * batch;
                float *t = malloc(n * sizeof(float));
                if (!t) die("malloc", NULL);
                if (xnor_context_get_trace(ctx, k, t, n) != XNOR_OK) die("get_trace failed", NULL);
                if (xnor_context_get_trace(ctx, k, t, n + 1) == XNOR_OK) die("get_trace accepted a wrong length", NULL);
                free(t);
            }
            float t1;
            if (xnor_context_get_trace(ctx, info.n_nodes, &t1, 1) == XNOR_OK) die("get_trace past the end", NULL);
        }
        uint64_t *ns = calloc(info.n_nodes, sizeof *ns);
        if (!ns) die("calloc", NULL);
        if (xnor_context_get_timings(ctx, ns, info.n_nodes) != XNOR_OK) die("get_timings failed", NULL);
        free(ns);
        free(x);
        free(y);
        xnor_context_free(ctx);
    }
    free(ni);
    xnor_model_free(m);
    return 0;
}
