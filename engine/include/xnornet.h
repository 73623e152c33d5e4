/* xnornet.h -- public C API of the xnornet engine.
 *
 * Runs XNOR-Net and Binary-Weight-Network models (Rastegari et al., 2016) on the
 * CPU from a packed model file (engine/FORMAT.md).
 *
 * Objects:
 *   xnor_model_t    immutable after load; may be shared by any number of threads.
 *   xnor_context_t  per-call workspace + thread pool; one thread uses a context at a
 *                   time. Create one context per concurrent caller.
 *
 * Every entry point returns an xnor_status; nothing in the engine aborts or exits
 * on data that came from a file or a caller. On failure, a human-readable message
 * is written to the caller's buffer where the call takes one.
 *
 * The cffi binding reads this header between the CDEF markers below, so keep the
 * declarations there free of preprocessor directives.
 */
#ifndef XNORNET_H
#define XNORNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* XNORNET_CDEF_BEGIN */

typedef enum {
    XNOR_OK = 0,
    XNOR_ERR_INVALID_ARGUMENT = 1,  /* a caller passed a bad pointer, size or option */
    XNOR_ERR_OUT_OF_MEMORY = 2,     /* an allocation failed */
    XNOR_ERR_IO = 3,                /* the file could not be opened or read */
    XNOR_ERR_BAD_MAGIC = 4,         /* not an xnornet model file */
    XNOR_ERR_BAD_VERSION = 5,       /* a format version this engine does not read */
    XNOR_ERR_TRUNCATED = 6,         /* the file is shorter than its header says */
    XNOR_ERR_TRAILING_DATA = 7,     /* bytes after the declared end of the file */
    XNOR_ERR_CHECKSUM = 8,          /* CRC32 mismatch */
    XNOR_ERR_BAD_HEADER = 9,        /* a header field is out of range or inconsistent */
    XNOR_ERR_BAD_TENSOR = 10,       /* tensor table: dtype, dims, size, alignment, overlap */
    XNOR_ERR_BAD_NODE = 11,         /* node table: unknown op, bad params, bad references */
    XNOR_ERR_SHAPE_MISMATCH = 12,   /* shapes do not chain through the graph */
    XNOR_ERR_BAD_LABELS = 13,       /* label section malformed or count mismatch */
    XNOR_ERR_UNSUPPORTED_ISA = 14,  /* the requested instruction set is not available */
    XNOR_ERR_THREAD = 15,           /* a worker thread could not be started */
    XNOR_ERR_INTERNAL = 16          /* a state the engine's own checks should have made impossible */
} xnor_status;

typedef enum {
    XNOR_ISA_AUTO = 0,     /* XNORNET_ISA environment variable if set, else the best available */
    XNOR_ISA_SCALAR = 1,   /* portable C */
    XNOR_ISA_AVX2 = 2,     /* AVX2 + FMA (+ POPCNT) */
    XNOR_ISA_AVX512 = 3    /* AVX-512 F/BW/VL + VPOPCNTDQ */
} xnor_isa;

typedef struct xnor_model xnor_model_t;
typedef struct xnor_context xnor_context_t;

/* How the service turns an image into the model's input (header field color). */
typedef enum {
    XNOR_COLOR_GRAY = 0,   /* one channel; in_c = 1 */
    XNOR_COLOR_RGB = 1,    /* in_c = 3 */
    XNOR_COLOR_BGR = 2,    /* in_c = 3 */
    XNOR_COLOR_OTHER = 3   /* a raw tensor input, not an image */
} xnor_color;

/* Geometry of preprocessing (header field resize_policy; engine/FORMAT.md). */
typedef enum {
    XNOR_RESIZE_EXACT = 0,                /* resize to in_h x in_w */
    XNOR_RESIZE_SHORTER_CROP = 1,         /* shorter side to resize_size, then center crop */
    XNOR_RESIZE_CENTRAL_CROP_BICUBIC = 2  /* larq-zoo's central crop + TF legacy bicubic */
} xnor_resize_policy;

/* Operator of a node (node field op; engine/FORMAT.md). */
typedef enum {
    XNOR_OP_CONV2D = 1,     /* float32 convolution, 4-D -> 4-D */
    XNOR_OP_BCONV2D = 2,    /* binary-weight convolution (xnor_mode), alpha per output channel */
    XNOR_OP_LINEAR = 3,     /* float32 fully connected, 2-D -> 2-D */
    XNOR_OP_BLINEAR = 4,    /* binary-weight fully connected (xnor_mode) */
    XNOR_OP_BATCHNORM = 5,  /* inference batch norm over channels (4-D) or features (2-D) */
    XNOR_OP_RELU = 6,       /* max(x, 0), any shape */
    XNOR_OP_MAXPOOL = 7,    /* max over each window */
    XNOR_OP_AVGPOOL = 8,    /* mean over each window, padding counted or not */
    XNOR_OP_FLATTEN = 9,    /* [C][H][W] -> [C*H*W] */
    XNOR_OP_DROPOUT = 10,   /* identity at inference */
    XNOR_OP_SOFTMAX = 11,   /* probabilities over the features of a 2-D value */
    XNOR_OP_ADD = 12,       /* elementwise sum of two values of one shape */
    XNOR_OP_QCONV2D = 13,   /* int8 first layer on the uint8 pixels (int8 edges) */
    XNOR_OP_QLINEAR = 14    /* int8 linear, activations quantized per sample (int8 edges) */
} xnor_op;

/* Arithmetic of a binary op (bconv2d, blinear: node parameter mode). */
typedef enum {
    XNOR_MODE_XNOR = 0,  /* binary weights and binary activations (XNOR + popcount) */
    XNOR_MODE_BWN = 1    /* binary weights, float activations */
} xnor_mode;

/* What xnor_infer writes per image. */
typedef enum {
    XNOR_OUTPUT_LOGITS = 0,
    XNOR_OUTPUT_PROBABILITIES = 1  /* the graph ends in softmax */
} xnor_output_kind;

/* Text of a status; never NULL; static storage. */
const char *xnor_status_str(xnor_status s);

/* Engine version string: the package version it was built as (pyproject.toml). */
const char *xnor_version(void);

/* Is this ISA usable on this CPU (and compiled in)? 1 yes, 0 no. XNOR_ISA_AUTO -> 1. */
int xnor_isa_supported(xnor_isa isa);

/* The ISA that XNOR_ISA_AUTO resolves to now (reads XNORNET_ISA). Writes the resolved
 * ISA to *out. XNOR_ERR_UNSUPPORTED_ISA if XNORNET_ISA names an unusable/unknown ISA. */
xnor_status xnor_isa_resolve(xnor_isa requested, xnor_isa *out);

/* Name of an ISA: "auto", "scalar", "avx2", "avx512". */
const char *xnor_isa_name(xnor_isa isa);

/* Number of CPUs this process may run on (affinity mask and cgroup cpu.max aware), >= 1. */
int32_t xnor_default_threads(void);

/* This CPU's throughput ceilings on one thread, measured by short microbenchmarks with the
 * given ISA's instructions (XNOR_ISA_AUTO: the best usable), for comparing layers against
 * (`xnornet bench --ceilings`). Ops count as the benchmark's GOPS do: 2 per multiply-add
 * (float FMA, int8 product, or one bit of XNOR-popcount). A ceiling the ISA has no
 * instruction for is 0. Takes about 0.5 s (the bandwidth test reads 128 MiB a few times). */
typedef struct {
    double fma_gops;        /* float32 fused multiply-adds: vfmadd (AVX2, AVX-512), mul + add (scalar) */
    double int8_gops;       /* uint8 x int8 multiply-adds: AVX-512 VNNI vpdpbusd; 0 without VNNI */
    double popcount_gops;   /* binary MACs: xor + popcount + add over 32-bit lanes */
    double mem_read_gbps;   /* reading a 128 MiB buffer (far larger than the caches), 1e9 bytes/s */
    double cache_read_gbps; /* reading an 8 MiB buffer (larger than L2, within most L3s), 1e9 bytes/s */
} xnor_ceilings;

xnor_status xnor_measure_ceilings(xnor_isa isa, xnor_ceilings *out);

/* Load a model from a file or from memory (the bytes are copied/repacked; the caller's
 * buffer may be freed after the call). On failure *out is NULL and errbuf (if not NULL,
 * errbuf_len > 0) holds a NUL-terminated message naming the offending field. */
xnor_status xnor_model_load_file(const char *path, xnor_model_t **out, char *errbuf, size_t errbuf_len);
xnor_status xnor_model_load_bytes(const void *data, size_t size, xnor_model_t **out, char *errbuf, size_t errbuf_len);
void xnor_model_free(xnor_model_t *model);

/* Model description. */
typedef struct {
    uint32_t format_version;
    uint32_t n_nodes;
    uint32_t n_labels;
    uint32_t in_c, in_h, in_w;       /* input tensor, NCHW without batch */
    uint32_t out_size;               /* elements per image of the output (classes) */
    xnor_color color;
    xnor_resize_policy resize_policy;
    uint32_t resize_size;            /* shorter side target for XNOR_RESIZE_SHORTER_CROP */
    float scale;                     /* pixel multiplier applied before mean/std (e.g. 1/255) */
    float mean[4];
    float std[4];
    xnor_output_kind output_kind;
    uint64_t file_bytes;
    uint64_t weight_bytes_packed;    /* bytes of all weight tensors in the file */
    uint64_t weight_bytes_float32;   /* the same weights if every one were float32 */
    uint64_t memory_bytes;           /* bytes the loaded model holds (repacked weights) */
    uint32_t crc32;
    char name[64];                   /* model name from the header, NUL-terminated */
} xnor_model_info;

xnor_status xnor_model_get_info(const xnor_model_t *model, xnor_model_info *info);

/* One label by index (UTF-8, not NUL-terminated): *text points into the model, valid
 * while the model lives. */
xnor_status xnor_model_get_label(const xnor_model_t *model, uint32_t index, const char **text, uint32_t *len);

/* Node description (for `xnornet info`, per-layer benchmarks and tests). Shapes are
 * NCHW without batch; a 2-D value has h = w = 1. */
typedef struct {
    xnor_op op;
    uint32_t n_inputs;
    uint32_t inputs[2];          /* value ids: 0 = model input, k = output of node k-1 */
    uint32_t out_c, out_h, out_w;
    xnor_mode mode;              /* binary ops only */
    uint32_t use_k;
    uint32_t fused;              /* 1 if the optimized plan folds this node into another */
    uint64_t macs;               /* multiply-accumulates (binary or float) per image */
    char name[32];
    int32_t packs_into;          /* XNOR layers: the optimized plan emits the input bits of node
                                  * packs_into (an XNOR layer) from this node's epilogue; else -1 */
} xnor_node_info;

xnor_status xnor_model_get_node(const xnor_model_t *model, uint32_t index, xnor_node_info *info);

/* Context: workspace and threads for inference. n_threads <= 0 -> xnor_default_threads();
 * the caller's thread is one of them, the others (Linux) are named "xnornet-engine".
 * isa = XNOR_ISA_AUTO -> xnor_isa_resolve().
 * spin: how many polling rounds (a CPU pause each, ~10-50 ns) a pool thread waits for the next
 * layer's work, or the caller for the others, before it sleeps on a condition variable.
 * Polling saves a wake-up per layer when the pool has its cores to itself; where other busy
 * threads share them (a server's decoders and event loop), polling takes their CPU instead.
 * < 0 -> XNOR_DEFAULT_SPIN; at most XNOR_MAX_SPIN. */
typedef enum { XNOR_DEFAULT_SPIN = 1000, XNOR_MAX_SPIN = 1000000 } xnor_spin_bounds;
typedef struct {
    int32_t n_threads;
    xnor_isa isa;
    int32_t trace;               /* 1: run the unfused plan and keep every node's output */
    int32_t spin;
} xnor_context_params;

xnor_context_params xnor_context_default_params(void);
xnor_status xnor_context_new(const xnor_model_t *model, const xnor_context_params *params,
                             xnor_context_t **out, char *errbuf, size_t errbuf_len);
void xnor_context_free(xnor_context_t *ctx);
xnor_isa xnor_context_isa(const xnor_context_t *ctx);
int32_t xnor_context_threads(const xnor_context_t *ctx);

/* Run the model on a batch. input: float32 NCHW [batch][in_c][in_h][in_w];
 * output: float32 [batch][out_size] (logits, or probabilities if the graph ends in
 * softmax). input_len and output_len are element counts and must match exactly.
 * The workspace grows to the largest batch seen. */
xnor_status xnor_infer(xnor_context_t *ctx, const float *input, uint32_t batch, size_t input_len,
                       float *output, size_t output_len);

/* Run the model on uint8 pixels: input [batch][in_h][in_w][in_c] (NHWC: the decoded,
 * resized and cropped image, channels in the model's color order). The model's own
 * preprocessing, x[c] = (p[c] * scale - mean[c]) / std[c] in float32 (FORMAT.md), is done by
 * the engine, so the result equals xnor_infer on the normalized float32 NCHW batch (bit for
 * bit for float first layers; int8 first layers read the pixels themselves). Validation,
 * output and workspace as xnor_infer. */
xnor_status xnor_infer_u8(xnor_context_t *ctx, const uint8_t *input, uint32_t batch, size_t input_len,
                          float *output, size_t output_len);

/* After xnor_infer on a context created with trace = 1: copy node `index`'s output
 * (float32, NCHW [batch][c][h][w], the last batch run) into dst (dst_len elements). */
xnor_status xnor_context_get_trace(const xnor_context_t *ctx, uint32_t index, float *dst, size_t dst_len);

/* Per-node wall time in nanoseconds of the last xnor_infer (summed over fused groups into
 * the node that runs them); out_len must be >= n_nodes. */
xnor_status xnor_context_get_timings(const xnor_context_t *ctx, uint64_t *out_ns, size_t out_len);

/* Last error message of this context (empty if none). */
const char *xnor_context_last_error(const xnor_context_t *ctx);

/* Image preprocessing: resample a region of a uint8 image (interleaved channels) into the
 * model's uint8 input, the pixels xnor_infer_u8 reads. The filter is Pillow's antialiased
 * BILINEAR (Image.resize(size, BILINEAR, box=box, reducing_gap=None)): the same weights in
 * double precision, the same 22-bit fixed point, horizontal pass then vertical pass, so the
 * result equals Pillow's on the same pixels; every ISA gives the scalar result bit for bit.
 * Only the source rows and columns the box reaches are read (crop-then-resize). */
typedef struct {
    uint32_t src_w, src_h;       /* source size in pixels, 1..XNOR_PREPROCESS_MAX_SIDE */
    uint32_t channels;           /* 1 (gray) or 3 (RGB), interleaved */
    size_t src_stride;           /* bytes from one source row to the next, >= src_w * channels */
    float box[4];                /* source region x0, y0, x1, y1 (pixel edges, Pillow's box):
                                  * finite, 0 <= x0 < x1 <= src_w, 0 <= y0 < y1 <= src_h */
    uint32_t dst_w, dst_h;       /* output size, 1..XNOR_PREPROCESS_MAX_SIDE */
    uint32_t reverse_channels;   /* 1: write the channels in reverse order (RGB -> BGR models) */
    int32_t isa;                 /* xnor_isa; XNOR_ISA_AUTO as for contexts (XNORNET_ISA) */
} xnor_resize_params;

typedef enum {
    XNOR_PREPROCESS_MAX_SIDE = 65535  /* also JPEG's limit; larger sides are refused */
} xnor_preprocess_limits;

/* Defaults: channels 3, isa auto, everything else 0 (to be filled in). */
xnor_resize_params xnor_resize_default_params(void);

/* Resample p->box of src (src_len bytes, rows p->src_stride apart) into dst, dst_h rows of
 * dst_w * channels bytes (dst_len must equal dst_w * dst_h * channels). Every size, the box
 * and the lengths are checked first: a bad value is XNOR_ERR_INVALID_ARGUMENT with a message
 * in errbuf, never a crash. Single-threaded; safe to call from any number of threads. */
xnor_status xnor_preprocess_resize(const xnor_resize_params *p, const uint8_t *src, size_t src_len,
                                   uint8_t *dst, size_t dst_len, char *errbuf, size_t errbuf_len);

/* XNORNET_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* XNORNET_H */
