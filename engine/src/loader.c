/* loader.c -- parse and validate a model file (engine/FORMAT.md), then prepare it.
 *
 * Every field is checked before it is used, in the order FORMAT.md implies: size,
 * magic, version, file_bytes, CRC, header fields, tensor table, labels, nodes (params,
 * references, tensors, shapes), usage. Sizes are computed in 64 bits with explicit
 * overflow checks. Nothing is allocated beyond what the (already size-checked) file
 * justifies until validation is complete; every error path frees what it allocated.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

static const uint8_t XF_MAGIC[8] = {0x58, 0x4E, 0x4F, 0x52, 0x4E, 0x45, 0x54, 0x00};

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline int32_t rdi32(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline float rdf32(const uint8_t *p) { float v; memcpy(&v, p, 4); return v; }

static inline uint64_t align64(uint64_t v) { return (v + 63u) & ~(uint64_t)63u; }

typedef struct {
    const uint8_t *buf;
    uint64_t size;
    char *err;
    size_t errlen;
    xnor_model_t *m;
    xtensor_desc *tens;
    uint8_t *tens_used;
    uint64_t nodes_off, tensors_off, labels_off, labels_bytes, data_off, data_bytes;
} lctx;

#define FAIL(st, ...)                                   \
    do {                                                \
        xnor_set_err(L->err, L->errlen, __VA_ARGS__);   \
        return (st);                                    \
    } while (0)

/* Printable ASCII, NUL-padded, at least one NUL. Returns 0 if ok, else the bad index + 1. */
static size_t check_name(const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n && p[i] != 0) {
        if (p[i] < 0x20 || p[i] > 0x7E) return i + 1;
        i++;
    }
    if (i == n) return n; /* no NUL at all: report the last byte */
    for (; i < n; i++)
        if (p[i] != 0) return i + 1;
    return 0;
}

static int all_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF) without NUL. */
static int valid_utf8_nonul(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c == 0) return 0;
        if (c < 0x80) { i++; continue; }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (n - i < len) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += len;
    }
    return 1;
}

/* ---------------------------------------------------------------- header */

static xnor_status check_header(lctx *L) {
    const uint8_t *h = L->buf;
    xnor_model_t *m = L->m;
    if (L->size < XF_HEADER_BYTES)
        FAIL(XNOR_ERR_TRUNCATED, "file is %llu bytes, shorter than the 256-byte header",
             (unsigned long long)L->size);
    if (memcmp(h, XF_MAGIC, 8) != 0) FAIL(XNOR_ERR_BAD_MAGIC, "header magic is not \"XNORNET\\0\"");
    m->version = rd32(h + 8);
    if (m->version != 1) FAIL(XNOR_ERR_BAD_VERSION, "header version %u, this engine reads version 1", m->version);
    m->file_bytes = rd64(h + 16);
    if (m->file_bytes > L->size)
        FAIL(XNOR_ERR_TRUNCATED, "header file_bytes %llu but the file has %llu bytes",
             (unsigned long long)m->file_bytes, (unsigned long long)L->size);
    if (m->file_bytes < L->size)
        FAIL(XNOR_ERR_TRAILING_DATA, "header file_bytes %llu but the file has %llu bytes (trailing data)",
             (unsigned long long)m->file_bytes, (unsigned long long)L->size);
    m->crc = rd32(h + 12);
    {
        static const uint8_t zero4[4] = {0, 0, 0, 0};
        uint32_t c = xnor_crc32(0, h, 12);
        c = xnor_crc32(c, zero4, 4);
        c = xnor_crc32(c, h + 16, (size_t)(L->size - 16));
        if (c != m->crc)
            FAIL(XNOR_ERR_CHECKSUM, "header crc32 0x%08x but the file's CRC-32 is 0x%08x", m->crc, c);
    }
    uint32_t header_bytes = rd32(h + 24);
    if (header_bytes != XF_HEADER_BYTES) FAIL(XNOR_ERR_BAD_HEADER, "header header_bytes %u, expected 256", header_bytes);
    uint32_t flags = rd32(h + 28);
    if (flags != 0) FAIL(XNOR_ERR_BAD_HEADER, "header flags 0x%x, expected 0", flags);
    m->n_nodes = rd32(h + 32);
    if (m->n_nodes < 1 || m->n_nodes > XF_MAX_NODES)
        FAIL(XNOR_ERR_BAD_HEADER, "header n_nodes %u, expected 1..4096", m->n_nodes);
    m->n_tensors = rd32(h + 36);
    if (m->n_tensors > XF_MAX_TENSORS)
        FAIL(XNOR_ERR_BAD_HEADER, "header n_tensors %u, expected 0..65536", m->n_tensors);
    m->n_labels = rd32(h + 40);
    if (rd32(h + 44) != 0) FAIL(XNOR_ERR_BAD_HEADER, "header reserved field at offset 44 is not 0");

    L->nodes_off = rd64(h + 48);
    L->tensors_off = rd64(h + 56);
    L->labels_off = rd64(h + 64);
    L->labels_bytes = rd64(h + 72);
    L->data_off = rd64(h + 80);
    L->data_bytes = rd64(h + 88);
    if (L->nodes_off != XF_HEADER_BYTES)
        FAIL(XNOR_ERR_BAD_HEADER, "header nodes_offset %llu, expected 256", (unsigned long long)L->nodes_off);
    uint64_t exp = XF_HEADER_BYTES + (uint64_t)XF_NODE_BYTES * m->n_nodes;
    if (L->tensors_off != exp)
        FAIL(XNOR_ERR_BAD_HEADER, "header tensors_offset %llu, expected %llu (256 + 160 * n_nodes)",
             (unsigned long long)L->tensors_off, (unsigned long long)exp);
    exp = L->tensors_off + (uint64_t)XF_TENSOR_BYTES * m->n_tensors;
    if (L->labels_off != exp)
        FAIL(XNOR_ERR_BAD_HEADER, "header labels_offset %llu, expected %llu (tensors_offset + 64 * n_tensors)",
             (unsigned long long)L->labels_off, (unsigned long long)exp);
    if (L->labels_off > m->file_bytes || L->labels_bytes > m->file_bytes - L->labels_off)
        FAIL(XNOR_ERR_BAD_HEADER, "header labels_bytes %llu runs past the end of the file (%llu bytes)",
             (unsigned long long)L->labels_bytes, (unsigned long long)m->file_bytes);
    exp = align64(L->labels_off + L->labels_bytes);
    if (L->data_off != exp)
        FAIL(XNOR_ERR_BAD_HEADER, "header data_offset %llu, expected %llu (align64(labels_offset + labels_bytes))",
             (unsigned long long)L->data_off, (unsigned long long)exp);
    if (L->data_off > m->file_bytes)
        FAIL(XNOR_ERR_BAD_HEADER, "header data_offset %llu is past the end of the file (%llu bytes)",
             (unsigned long long)L->data_off, (unsigned long long)m->file_bytes);
    if (L->data_bytes != m->file_bytes - L->data_off)
        FAIL(XNOR_ERR_BAD_HEADER, "header data_bytes %llu, expected %llu (file_bytes - data_offset)",
             (unsigned long long)L->data_bytes, (unsigned long long)(m->file_bytes - L->data_off));

    m->in_c = rd32(h + 96);
    m->in_h = rd32(h + 100);
    m->in_w = rd32(h + 104);
    if (m->in_c < 1 || m->in_c > 4096) FAIL(XNOR_ERR_BAD_HEADER, "header in_c %u, expected 1..4096", m->in_c);
    if (m->in_h < 1 || m->in_h > 16384) FAIL(XNOR_ERR_BAD_HEADER, "header in_h %u, expected 1..16384", m->in_h);
    if (m->in_w < 1 || m->in_w > 16384) FAIL(XNOR_ERR_BAD_HEADER, "header in_w %u, expected 1..16384", m->in_w);
    if ((uint64_t)m->in_c * m->in_h * m->in_w > (1ull << 28))
        FAIL(XNOR_ERR_BAD_HEADER, "header in_c * in_h * in_w = %llu exceeds 2^28",
             (unsigned long long)((uint64_t)m->in_c * m->in_h * m->in_w));
    m->color = rd32(h + 108);
    if (m->color > XNOR_COLOR_OTHER) FAIL(XNOR_ERR_BAD_HEADER, "header color %u, expected 0..3", m->color);
    if (m->color == XNOR_COLOR_GRAY && m->in_c != 1) FAIL(XNOR_ERR_BAD_HEADER, "header color 0 (gray) needs in_c 1, got %u", m->in_c);
    if ((m->color == XNOR_COLOR_RGB || m->color == XNOR_COLOR_BGR) && m->in_c != 3)
        FAIL(XNOR_ERR_BAD_HEADER, "header color %u (RGB/BGR) needs in_c 3, got %u", m->color, m->in_c);
    m->resize_policy = rd32(h + 112);
    m->resize_size = rd32(h + 116);
    if (m->resize_policy == XNOR_RESIZE_EXACT) {
        if (m->resize_size != 0)
            FAIL(XNOR_ERR_BAD_HEADER, "header resize_size %u, expected 0 with resize_policy 0", m->resize_size);
    } else if (m->resize_policy == XNOR_RESIZE_SHORTER_CROP) {
        uint32_t mx = m->in_h > m->in_w ? m->in_h : m->in_w;
        if (m->resize_size < mx || m->resize_size > 65536)
            FAIL(XNOR_ERR_BAD_HEADER, "header resize_size %u, expected %u..65536 with resize_policy 1",
                 m->resize_size, mx);
    } else if (m->resize_policy == XNOR_RESIZE_CENTRAL_CROP_BICUBIC) {
        /* larq-zoo preprocessing: fixed 0.875 central crop, then TF legacy bicubic. */
        if (m->resize_size != 0)
            FAIL(XNOR_ERR_BAD_HEADER, "header resize_size %u, expected 0 with resize_policy 2", m->resize_size);
    } else {
        FAIL(XNOR_ERR_BAD_HEADER, "header resize_policy %u, expected 0, 1 or 2", m->resize_policy);
    }
    m->scale = rdf32(h + 120);
    if (!isfinite(m->scale) || !(m->scale > 0.0f))
        FAIL(XNOR_ERR_BAD_HEADER, "header scale %g, expected finite and > 0", (double)m->scale);
    if (rd32(h + 124) != 0) FAIL(XNOR_ERR_BAD_HEADER, "header reserved field at offset 124 is not 0");
    uint32_t used = m->in_c < 4 ? m->in_c : 4;
    for (uint32_t i = 0; i < 4; i++) {
        m->mean[i] = rdf32(h + 128 + 4 * i);
        m->std[i] = rdf32(h + 144 + 4 * i);
        if (!isfinite(m->mean[i])) FAIL(XNOR_ERR_BAD_HEADER, "header mean[%u] is not finite", i);
        if (i >= m->in_c && m->mean[i] != 0.0f)
            FAIL(XNOR_ERR_BAD_HEADER, "header mean[%u] = %g, expected 0 (index >= in_c)", i, (double)m->mean[i]);
        if (!isfinite(m->std[i])) FAIL(XNOR_ERR_BAD_HEADER, "header std[%u] is not finite", i);
        if (i < used && !(m->std[i] > 0.0f))
            FAIL(XNOR_ERR_BAD_HEADER, "header std[%u] = %g, expected > 0", i, (double)m->std[i]);
        if (i >= used && m->std[i] != 0.0f)
            FAIL(XNOR_ERR_BAD_HEADER, "header std[%u] = %g, expected 0 (index >= in_c)", i, (double)m->std[i]);
    }
    size_t bad = check_name(h + 160, 64);
    if (bad) FAIL(XNOR_ERR_BAD_HEADER, "header name: byte %zu is not printable ASCII / NUL padding", bad - 1);
    memcpy(m->name, h + 160, 64);
    m->name[63] = '\0';
    if (!all_zero(h + 224, 32)) FAIL(XNOR_ERR_BAD_HEADER, "header reserved bytes 224..255 are not 0");
    for (uint32_t c = 0; c < 5; c++) {
        const float mu = c < used ? m->mean[c] : 0.0f, sd = c < used ? m->std[c] : 1.0f;
        for (uint32_t v = 0; v < 256; v++) {
            float x = (float)v * m->scale; /* one float32 rounding per operation */
            x = x - mu;
            m->norm_lut[c][v] = x / sd;
        }
    }
    return XNOR_OK;
}

/* ---------------------------------------------------------------- tensors */

static xnor_status check_tensors(lctx *L) {
    xnor_model_t *m = L->m;
    const uint8_t *data = L->buf + L->data_off;
    uint64_t expect_off = 0;
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const uint8_t *p = L->buf + L->tensors_off + (uint64_t)XF_TENSOR_BYTES * i;
        xtensor_desc *t = &L->tens[i];
        t->dtype = rd32(p);
        t->ndim = rd32(p + 4);
        if (t->dtype != XDT_F32 && t->dtype != XDT_BITS && t->dtype != XDT_I8)
            FAIL(XNOR_ERR_BAD_TENSOR, "tensor %u: dtype %u, expected 1 (float32), 2 (bits) or 3 (int8)", i,
                 t->dtype);
        if (t->ndim < 1 || t->ndim > 4) FAIL(XNOR_ERR_BAD_TENSOR, "tensor %u: ndim %u, expected 1..4", i, t->ndim);
        uint64_t prod = 1, tail = 1;
        for (uint32_t d = 0; d < 4; d++) {
            t->dims[d] = rd32(p + 8 + 4 * d);
            if (d < t->ndim) {
                if (t->dims[d] < 1) FAIL(XNOR_ERR_BAD_TENSOR, "tensor %u: dims[%u] is 0", i, d);
                /* prod <= 2^31 and dims < 2^32, so this product cannot overflow 64 bits. */
                prod *= t->dims[d];
                if (d > 0) tail *= t->dims[d];
                if (prod > (1ull << 31))
                    FAIL(XNOR_ERR_BAD_TENSOR, "tensor %u: element count exceeds 2^31 at dims[%u]", i, d);
            } else if (t->dims[d] != 0) {
                FAIL(XNOR_ERR_BAD_TENSOR, "tensor %u: dims[%u] = %u, expected 0 past ndim %u", i, d, t->dims[d], t->ndim);
            }
        }
        t->elems = prod;
        t->offset = rd64(p + 24);
        t->nbytes = rd64(p + 32);
        uint64_t want = t->dtype == XDT_F32  ? 4 * prod
                        : t->dtype == XDT_I8 ? prod
                                             : (uint64_t)t->dims[0] * ((tail + 7) / 8);
        if (t->nbytes != want)
            FAIL(XNOR_ERR_BAD_TENSOR, "tensor %u: nbytes %llu, expected %llu for its dtype and dims", i,
                 (unsigned long long)t->nbytes, (unsigned long long)want);
        if (!all_zero(p + 40, 24)) FAIL(XNOR_ERR_BAD_TENSOR, "tensor %u: reserved bytes are not 0", i);
        if (t->offset % 64 != 0)
            FAIL(XNOR_ERR_BAD_TENSOR, "tensor %u: offset %llu is not a multiple of 64", i, (unsigned long long)t->offset);
        if (t->offset != expect_off)
            FAIL(XNOR_ERR_BAD_TENSOR, "tensor %u: offset %llu, expected %llu (tensors lie in table order)", i,
                 (unsigned long long)t->offset, (unsigned long long)expect_off);
        if (t->offset > L->data_bytes || t->nbytes > L->data_bytes - t->offset)
            FAIL(XNOR_ERR_BAD_TENSOR, "tensor %u: bytes %llu..%llu run past data_bytes %llu", i,
                 (unsigned long long)t->offset, (unsigned long long)(t->offset + t->nbytes),
                 (unsigned long long)L->data_bytes);
        /* Zero padding between the previous tensor and this one. */
        if (i > 0) {
            const xtensor_desc *pv = &L->tens[i - 1];
            uint64_t pend = pv->offset + pv->nbytes;
            if (!all_zero(data + pend, (size_t)(t->offset - pend)))
                FAIL(XNOR_ERR_BAD_TENSOR, "tensor %u: padding before it is not zero", i);
        }
        if (t->dtype == XDT_BITS && (tail % 8) != 0) {
            uint64_t rowbytes = (tail + 7) / 8;
            uint8_t mask = (uint8_t)(0xFFu << (tail % 8));
            for (uint64_t r = 0; r < t->dims[0]; r++)
                if (data[t->offset + r * rowbytes + rowbytes - 1] & mask)
                    FAIL(XNOR_ERR_BAD_TENSOR, "tensor %u: row %llu has non-zero padding bits", i, (unsigned long long)r);
        }
        expect_off = align64(t->offset + t->nbytes);
    }
    uint64_t end = m->n_tensors ? L->tens[m->n_tensors - 1].offset + L->tens[m->n_tensors - 1].nbytes : 0;
    if (end != L->data_bytes)
        FAIL(XNOR_ERR_BAD_TENSOR, "tensor data ends at %llu but data_bytes is %llu", (unsigned long long)end,
             (unsigned long long)L->data_bytes);
    return XNOR_OK;
}

/* ---------------------------------------------------------------- labels */

static xnor_status check_labels(lctx *L) {
    xnor_model_t *m = L->m;
    const uint8_t *s = L->buf + L->labels_off;
    uint64_t n = L->labels_bytes;
    if (m->n_labels == 0 && n != 0)
        FAIL(XNOR_ERR_BAD_LABELS, "labels: n_labels is 0 but labels_bytes is %llu", (unsigned long long)n);
    /* Each entry takes at least 3 bytes; this bounds the allocations below by the file size. */
    if (m->n_labels > n / 3)
        FAIL(XNOR_ERR_BAD_LABELS, "labels: n_labels %u cannot fit in labels_bytes %llu", m->n_labels,
             (unsigned long long)n);
    if (!all_zero(s + n, (size_t)(L->data_off - (L->labels_off + n))))
        FAIL(XNOR_ERR_BAD_LABELS, "labels: padding before data_offset is not zero");
    uint64_t pos = 0;
    for (uint32_t i = 0; i < m->n_labels; i++) {
        if (n - pos < 2) FAIL(XNOR_ERR_BAD_LABELS, "label %u: length field runs past labels_bytes", i);
        uint32_t len = rd16(s + pos);
        if (len < 1 || len > 1024) FAIL(XNOR_ERR_BAD_LABELS, "label %u: length %u, expected 1..1024", i, len);
        if (n - pos - 2 < len) FAIL(XNOR_ERR_BAD_LABELS, "label %u: text runs past labels_bytes", i);
        if (!valid_utf8_nonul(s + pos + 2, len))
            FAIL(XNOR_ERR_BAD_LABELS, "label %u: not valid UTF-8 without NUL", i);
        pos += 2 + len;
    }
    if (pos != n)
        FAIL(XNOR_ERR_BAD_LABELS, "labels: %u entries take %llu bytes but labels_bytes is %llu", m->n_labels,
             (unsigned long long)pos, (unsigned long long)n);
    return XNOR_OK;
}

static xnor_status copy_labels(lctx *L) {
    xnor_model_t *m = L->m;
    if (m->n_labels == 0) return XNOR_OK;
    const uint8_t *s = L->buf + L->labels_off;
    m->label_text = malloc((size_t)L->labels_bytes);
    m->label_off = malloc(sizeof(uint32_t) * m->n_labels);
    m->label_len = malloc(sizeof(uint16_t) * m->n_labels);
    if (!m->label_text || !m->label_off || !m->label_len) FAIL(XNOR_ERR_OUT_OF_MEMORY, "out of memory (labels)");
    memcpy(m->label_text, s, (size_t)L->labels_bytes);
    uint64_t pos = 0;
    for (uint32_t i = 0; i < m->n_labels; i++) {
        uint16_t len = rd16(s + pos);
        m->label_off[i] = (uint32_t)(pos + 2);
        m->label_len[i] = len;
        pos += 2u + len;
    }
    m->memory_bytes += L->labels_bytes + (sizeof(uint32_t) + sizeof(uint16_t)) * (uint64_t)m->n_labels;
    return XNOR_OK;
}

/* ---------------------------------------------------------------- nodes */

static const char *op_name(uint32_t op) {
    static const char *names[] = {"?", "conv2d", "bconv2d", "linear", "blinear", "batchnorm", "relu",
                                  "maxpool", "avgpool", "flatten", "dropout", "softmax", "add", "qconv2d",
                                  "qlinear"};
    return op <= 14 ? names[op] : "?";
}

/* Which integer params each op reads (bit i = p_i); all others must be 0. */
static uint32_t param_mask(uint32_t op) {
    switch (op) {
    case XNOR_OP_CONV2D: case XNOR_OP_QCONV2D: return 0x3FFu; /* p0..p9 */
    case XNOR_OP_QLINEAR: return (1u << 0) | (1u << 9);
    case XNOR_OP_BCONV2D: return 0xFFFu;            /* p0..p11 */
    case XNOR_OP_LINEAR: return (1u << 0) | (1u << 9);
    case XNOR_OP_BLINEAR: return (1u << 0) | (1u << 9) | (1u << 10) | (1u << 11);
    case XNOR_OP_MAXPOOL: return 0x1FEu | (1u << 12);             /* p1..p8, p12 */
    case XNOR_OP_AVGPOOL: return 0x1FEu | (1u << 12) | (1u << 13); /* + p13 */
    default: return 0;
    }
}

static void fmt_dims(char *out, size_t n, const uint32_t *d, uint32_t nd) {
    size_t pos = 0;
    out[0] = '\0';
    pos += (size_t)snprintf(out + pos, n - pos, "[");
    for (uint32_t i = 0; i < nd && pos < n; i++)
        pos += (size_t)snprintf(out + pos, n - pos, i ? ",%u" : "%u", d[i]);
    if (pos < n) snprintf(out + pos, n - pos, "]");
}

/* Check tensor slot `slot` of node k: dtype and dims. */
static xnor_status use_tensor(lctx *L, uint32_t k, const xnode *nd, int slot, uint32_t dtype, uint32_t ndim,
                              const uint32_t *dims) {
    int32_t ti = nd->t[slot];
    const xtensor_desc *t = &L->tens[ti];
    /* One use per tensor: a shared tensor would be repacked once per user, so a small file
     * could claim memory out of proportion to its size. */
    if (L->tens_used[ti])
        FAIL(XNOR_ERR_BAD_TENSOR, "node %u (%s): tensor t%d (table index %d) is already used by another node slot",
             k, nd->name, slot, ti);
    L->tens_used[ti] = 1;
    if (t->dtype != dtype)
        FAIL(XNOR_ERR_BAD_TENSOR, "node %u (%s): tensor t%d (table index %d) has dtype %u, expected %u (%s)", k,
             nd->name, slot, ti, t->dtype, dtype, dtype == XDT_F32 ? "float32" : dtype == XDT_I8 ? "int8" : "bits");
    int ok = t->ndim == ndim;
    for (uint32_t i = 0; ok && i < ndim; i++) ok = t->dims[i] == dims[i];
    if (!ok) {
        char got[64], want[64];
        fmt_dims(got, sizeof got, t->dims, t->ndim);
        fmt_dims(want, sizeof want, dims, ndim);
        FAIL(XNOR_ERR_SHAPE_MISMATCH, "node %u (%s): tensor t%d dims %s expected %s", k, nd->name, slot, got, want);
    }
    return XNOR_OK;
}

static void shape_str(char *out, size_t n, const xshape *s) {
    if (s->is4d) snprintf(out, n, "[%u,%u,%u]", s->c, s->h, s->w);
    else snprintf(out, n, "[%u]", s->c);
}

/* Output size of a window op along one axis (FORMAT.md; PyTorch's ceil_mode rule).
 * Returns -1 if the padded input is smaller than the kernel. */
static int64_t window_out(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int ceil_mode) {
    int64_t num = in + p0 + p1 - k;
    if (num < 0) return -1;
    if (!ceil_mode) return num / s + 1;
    int64_t o = (num + s - 1) / s + 1;
    if ((o - 1) * s >= in + p0) o--;
    return o;
}

/* int8 layers: the float tensors (bias, scale, tap offsets) must be finite, so a folded
 * preprocessing can never turn a valid pixel into NaN. */
static xnor_status check_finite(lctx *L, uint32_t k, const xnode *nd) {
    const uint8_t *data = L->buf + L->data_off;
    for (int slot = 1; slot < 4; slot++) {
        if (nd->t[slot] < 0) continue;
        const xtensor_desc *t = &L->tens[nd->t[slot]];
        for (uint64_t i = 0; i < t->elems; i++)
            if (!isfinite(rdf32(data + t->offset + 4 * i)))
                FAIL(XNOR_ERR_BAD_TENSOR, "node %u (%s): tensor t%d element %llu is not finite", k, nd->name, slot,
                     (unsigned long long)i);
    }
    return XNOR_OK;
}

static xnor_status check_node(lctx *L, uint32_t k) {
    xnor_model_t *m = L->m;
    xnode *nd = &m->nodes[k];
    const uint8_t *p = L->buf + L->nodes_off + (uint64_t)XF_NODE_BYTES * k;

    size_t bad = check_name(p + 128, 32);
    if (bad) FAIL(XNOR_ERR_BAD_NODE, "node %u: name byte %zu is not printable ASCII / NUL padding", k, bad - 1);
    memcpy(nd->name, p + 128, 32);
    nd->name[31] = '\0';

    nd->op = rd32(p);
    if (nd->op < 1 || nd->op > 14) FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): unknown op %u", k, nd->name, nd->op);
    const char *opn = op_name(nd->op);
    nd->n_inputs = rd32(p + 4);
    uint32_t want_inputs = nd->op == XNOR_OP_ADD ? 2 : 1;
    if (nd->n_inputs != want_inputs)
        FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): n_inputs %u, %s takes %u", k, nd->name, nd->n_inputs, opn, want_inputs);
    for (uint32_t j = 0; j < 2; j++) {
        nd->inputs[j] = rd32(p + 8 + 4 * j);
        if (j < nd->n_inputs) {
            if (nd->inputs[j] > k)
                FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): inputs[%u] = value %u is not produced before this node", k,
                     nd->name, j, nd->inputs[j]);
        } else if (nd->inputs[j] != 0) {
            FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): unused inputs[%u] is %u, expected 0", k, nd->name, j, nd->inputs[j]);
        }
    }
    for (int i = 0; i < 16; i++) nd->p[i] = rdi32(p + 16 + 4 * i);
    for (int i = 0; i < 4; i++) nd->f[i] = rdf32(p + 80 + 4 * i);
    for (int i = 0; i < 8; i++) nd->t[i] = rdi32(p + 96 + 4 * i);

    uint32_t pm = param_mask(nd->op);
    for (int i = 0; i < 16; i++)
        if (!(pm & (1u << i)) && nd->p[i] != 0)
            FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): p%d = %d, unused by %s, expected 0", k, nd->name, i, nd->p[i], opn);
    for (int i = 0; i < 4; i++) {
        int used = nd->op == XNOR_OP_BATCHNORM && i == 0;
        uint32_t bits;
        memcpy(&bits, &nd->f[i], 4);
        if (!used && bits != 0) FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): f%d is unused by %s, expected 0", k, nd->name, i, opn);
    }

    /* Integer parameter ranges. */
    const int32_t *P = nd->p;
    int is_conv = nd->op == XNOR_OP_CONV2D || nd->op == XNOR_OP_BCONV2D || nd->op == XNOR_OP_QCONV2D;
    int is_lin = nd->op == XNOR_OP_LINEAR || nd->op == XNOR_OP_BLINEAR || nd->op == XNOR_OP_QLINEAR;
    int is_q = nd->op == XNOR_OP_QCONV2D || nd->op == XNOR_OP_QLINEAR;
    int is_pool = nd->op == XNOR_OP_MAXPOOL || nd->op == XNOR_OP_AVGPOOL;
    int is_bin = nd->op == XNOR_OP_BCONV2D || nd->op == XNOR_OP_BLINEAR;
    if (is_conv || is_lin) {
        if (P[XP_OUT] < 1 || P[XP_OUT] > 65536)
            FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): p0 (out_channels) %d, expected 1..65536", k, nd->name, P[XP_OUT]);
        if (P[XP_BIAS] != 0 && P[XP_BIAS] != 1)
            FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): p9 (has_bias) %d, expected 0 or 1", k, nd->name, P[XP_BIAS]);
    }
    if (is_bin) {
        if (P[XP_MODE] != XNOR_MODE_XNOR && P[XP_MODE] != XNOR_MODE_BWN)
            FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): p10 (mode) %d, expected 0 (XNOR) or 1 (BWN)", k, nd->name, P[XP_MODE]);
        if (P[XP_USEK] != 0 && P[XP_USEK] != 1)
            FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): p11 (use_k) %d, expected 0 or 1", k, nd->name, P[XP_USEK]);
        if (P[XP_USEK] == 1 && P[XP_MODE] != XNOR_MODE_XNOR)
            FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): p11 (use_k) is 1 in BWN mode, expected 0", k, nd->name);
    }
    if (is_conv || is_pool) {
        static const char *pn[] = {"", "kh", "kw", "stride_h", "stride_w", "pad_top", "pad_left", "pad_bottom",
                                   "pad_right"};
        for (int i = XP_KH; i <= XP_SW; i++)
            if (P[i] < 1 || P[i] > 64)
                FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): p%d (%s) %d, expected 1..64", k, nd->name, i, pn[i], P[i]);
        for (int i = XP_PT; i <= XP_PR; i++) {
            int32_t kk = (i == XP_PT || i == XP_PB) ? P[XP_KH] : P[XP_KW];
            if (P[i] < 0 || P[i] > kk - 1)
                FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): p%d (%s) %d, expected 0..%d", k, nd->name, i, pn[i], P[i], kk - 1);
        }
    }
    if (is_pool && P[XP_CEIL] != 0 && P[XP_CEIL] != 1)
        FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): p12 (ceil_mode) %d, expected 0 or 1", k, nd->name, P[XP_CEIL]);
    if (nd->op == XNOR_OP_AVGPOOL && P[XP_CIP] != 0 && P[XP_CIP] != 1)
        FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): p13 (count_include_pad) %d, expected 0 or 1", k, nd->name, P[XP_CIP]);
    if (nd->op == XNOR_OP_BATCHNORM && (!isfinite(nd->f[0]) || !(nd->f[0] > 0.0f)))
        FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): f0 (eps) %g, expected finite and > 0", k, nd->name, (double)nd->f[0]);

    /* Tensor slots: which are used, and each index in range. */
    uint32_t tmask = 0;
    switch (nd->op) {
    case XNOR_OP_CONV2D: case XNOR_OP_LINEAR: tmask = 1u | (P[XP_BIAS] ? 2u : 0u); break;
    case XNOR_OP_BCONV2D: case XNOR_OP_BLINEAR: case XNOR_OP_QLINEAR: tmask = 1u | (P[XP_BIAS] ? 2u : 0u) | 4u; break;
    case XNOR_OP_QCONV2D: tmask = 1u | (P[XP_BIAS] ? 2u : 0u) | 4u | 8u; break;
    case XNOR_OP_BATCHNORM: tmask = 0xFu; break;
    default: break;
    }
    for (int i = 0; i < 8; i++) {
        if (tmask & (1u << i)) {
            if (nd->t[i] < 0 || (uint32_t)nd->t[i] >= m->n_tensors)
                FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): t%d = %d, expected a tensor index 0..%d", k, nd->name, i,
                     nd->t[i], (int)m->n_tensors - 1);
        } else if (nd->t[i] != -1) {
            FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): t%d = %d, unused by %s, expected -1", k, nd->name, i, nd->t[i], opn);
        }
    }

    /* Shapes. */
    const xshape *in = &m->values[nd->inputs[0]];
    nd->in_shape = *in;
    char sbuf[64], sbuf2[64];
    int need4 = is_conv || is_pool || nd->op == XNOR_OP_FLATTEN;
    int need2 = is_lin || nd->op == XNOR_OP_SOFTMAX;
    if (need4 && !in->is4d) {
        shape_str(sbuf, sizeof sbuf, in);
        FAIL(XNOR_ERR_SHAPE_MISMATCH, "node %u (%s): %s needs a 4-D input, value %u is %s", k, nd->name, opn,
             nd->inputs[0], sbuf);
    }
    if (need2 && in->is4d) {
        shape_str(sbuf, sizeof sbuf, in);
        FAIL(XNOR_ERR_SHAPE_MISMATCH, "node %u (%s): %s needs a 2-D input, value %u is %s", k, nd->name, opn,
             nd->inputs[0], sbuf);
    }
    xshape out = *in;
    nd->C = (int32_t)in->c;
    xnor_status st;
    if (is_conv || is_pool) {
        nd->kh = P[XP_KH]; nd->kw = P[XP_KW]; nd->sh = P[XP_SH]; nd->sw = P[XP_SW];
        nd->pt = P[XP_PT]; nd->pl = P[XP_PL]; nd->pb = P[XP_PB]; nd->pr = P[XP_PR];
        int ceil_mode = is_pool ? P[XP_CEIL] : 0;
        int64_t oh = window_out(in->h, nd->kh, nd->sh, nd->pt, nd->pb, ceil_mode);
        int64_t ow = window_out(in->w, nd->kw, nd->sw, nd->pl, nd->pr, ceil_mode);
        if (oh < 1 || ow < 1) {
            shape_str(sbuf, sizeof sbuf, in);
            FAIL(XNOR_ERR_SHAPE_MISMATCH, "node %u (%s): kernel %dx%d with padding (%d,%d,%d,%d) does not fit input %s",
                 k, nd->name, nd->kh, nd->kw, nd->pt, nd->pl, nd->pb, nd->pr, sbuf);
        }
        out.h = (uint32_t)oh;
        out.w = (uint32_t)ow;
    } else if (is_lin) {
        nd->kh = nd->kw = nd->sh = nd->sw = 1;
    }
    if (is_conv || is_lin) {
        /* The executor counts one output's taps n (C * kh * kw) in int32, and the XNOR
         * epilogue forms n - 2 * popcount with popcount <= n: n < 2^30 keeps 2n < 2^31. */
        if ((uint64_t)in->c * (uint64_t)nd->kh * (uint64_t)nd->kw >= (1ull << 30))
            FAIL(XNOR_ERR_SHAPE_MISMATCH, "node %u (%s): reduction length %u x %d x %d is not below 2^30", k,
                 nd->name, in->c, nd->kh, nd->kw);
        if (is_q && (uint64_t)in->c * (uint64_t)nd->kh * (uint64_t)nd->kw > XQ_MAX_REDUCTION)
            FAIL(XNOR_ERR_SHAPE_MISMATCH, "node %u (%s): int8 reduction length %u x %d x %d exceeds %u", k, nd->name,
                 in->c, nd->kh, nd->kw, XQ_MAX_REDUCTION);
        if (nd->op == XNOR_OP_QCONV2D && nd->inputs[0] != 0)
            FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): qconv2d reads value %u, but it reads only the model input (value 0)",
                 k, nd->name, nd->inputs[0]);
        nd->O = P[XP_OUT];
        nd->has_bias = P[XP_BIAS];
        nd->mode = is_bin ? P[XP_MODE] : XNOR_MODE_XNOR;
        nd->use_k = is_bin ? P[XP_USEK] : 0;
        nd->nb = (nd->O + 15) / 16;
        nd->cw = (nd->C + 31) / 32;
        out.c = (uint32_t)nd->O;
        uint32_t wd[4] = {(uint32_t)nd->O, in->c, (uint32_t)nd->kh, (uint32_t)nd->kw};
        uint32_t od[1] = {(uint32_t)nd->O};
        st = use_tensor(L, k, nd, 0, is_bin ? XDT_BITS : is_q ? XDT_I8 : XDT_F32, is_conv ? 4 : 2, wd);
        if (st) return st;
        if (nd->has_bias && (st = use_tensor(L, k, nd, 1, XDT_F32, 1, od))) return st;
        if (nd->op == XNOR_OP_QLINEAR) {
            uint32_t sd[2] = {(uint32_t)nd->O, (in->c + XQ_GROUP - 1) / XQ_GROUP};
            if ((st = use_tensor(L, k, nd, 2, XDT_F32, 2, sd))) return st;
        } else if ((is_bin || is_q) && (st = use_tensor(L, k, nd, 2, XDT_F32, 1, od))) {
            return st;
        }
        if (nd->op == XNOR_OP_QCONV2D) {
            uint32_t td[3] = {(uint32_t)nd->O, (uint32_t)nd->kh, (uint32_t)nd->kw};
            if ((st = use_tensor(L, k, nd, 3, XDT_F32, 3, td))) return st;
        }
        if (is_q && (st = check_finite(L, k, nd)) != XNOR_OK) return st;
    } else if (nd->op == XNOR_OP_BATCHNORM) {
        uint32_t cd[1] = {in->c};
        for (int i = 0; i < 4; i++)
            if ((st = use_tensor(L, k, nd, i, XDT_F32, 1, cd))) return st;
    } else if (nd->op == XNOR_OP_FLATTEN) {
        out.c = in->c * in->h * in->w; /* <= 2^31 by the value limit below */
        out.h = out.w = 1;
        out.is4d = 0;
    } else if (nd->op == XNOR_OP_ADD) {
        const xshape *b = &m->values[nd->inputs[1]];
        if (b->is4d != in->is4d || b->c != in->c || b->h != in->h || b->w != in->w) {
            shape_str(sbuf, sizeof sbuf, in);
            shape_str(sbuf2, sizeof sbuf2, b);
            FAIL(XNOR_ERR_SHAPE_MISMATCH, "node %u (%s): add of value %u %s and value %u %s: shapes differ", k, nd->name,
                 nd->inputs[0], sbuf, nd->inputs[1], sbuf2);
        }
    }
    /* Engine limit: per-image values must be indexable with 32-bit element counts. */
    if (xshape_elems(&out) > 0x7FFFFFFFull) {
        shape_str(sbuf, sizeof sbuf, &out);
        FAIL(XNOR_ERR_SHAPE_MISMATCH, "node %u (%s): output %s has more than 2^31-1 elements per image", k, nd->name,
             sbuf);
    }
    nd->out_shape = out;
    m->values[k + 1] = out;

    /* MACs per image (saturating: corrupt-but-valid extremes must not wrap). */
    if (is_conv || is_lin) {
        uint64_t v = xnor_mul_sat((uint64_t)out.h * out.w, (uint64_t)nd->O);
        v = xnor_mul_sat(v, (uint64_t)in->c * (uint64_t)nd->kh * (uint64_t)nd->kw);
        nd->macs = v;
    }
    return XNOR_OK;
}

/* Usage rules, fusion flags, output description. */
static xnor_status check_graph(lctx *L) {
    xnor_model_t *m = L->m;
    uint32_t n = m->n_nodes;
    /* consumers of value v are counted in nodes[v-1]; value 0 (input) separately */
    uint32_t in_uses = 0;
    for (uint32_t k = 0; k < n; k++) {
        m->nodes[k].n_consumers = 0;
        m->nodes[k].consumer = -1;
    }
    for (uint32_t k = 0; k < n; k++) {
        const xnode *nd = &m->nodes[k];
        for (uint32_t j = 0; j < nd->n_inputs; j++) {
            uint32_t v = nd->inputs[j];
            if (v == 0) {
                in_uses++;
            } else {
                m->nodes[v - 1].n_consumers++;
                m->nodes[v - 1].consumer = (int32_t)k;
            }
        }
    }
    if (in_uses == 0) FAIL(XNOR_ERR_BAD_NODE, "value 0 (the model input) is not used by any node");
    m->input_u8 = 0;
    for (uint32_t k = 0; k < n; k++)
        if (m->nodes[k].op == XNOR_OP_QCONV2D) {
            /* The input is held as pixels for it: no other node may read value 0. */
            if (in_uses != 1)
                FAIL(XNOR_ERR_BAD_NODE, "node %u (%s): qconv2d reads the model input, which %u other node(s) read too",
                     k, m->nodes[k].name, in_uses - 1);
            m->input_u8 = 1;
        }
    for (uint32_t k = 0; k + 1 < n; k++)
        if (m->nodes[k].n_consumers == 0)
            FAIL(XNOR_ERR_BAD_NODE, "value %u (output of node %u (%s)) is not used by any node", k + 1, k,
                 m->nodes[k].name);
    for (uint32_t i = 0; i < m->n_tensors; i++)
        if (!L->tens_used[i]) FAIL(XNOR_ERR_BAD_TENSOR, "tensor %u is not used by any node", i);

    const xshape *o = &m->values[n];
    m->out_size = (uint32_t)xshape_elems(o);
    if (m->n_labels != 0 && m->n_labels != m->out_size)
        FAIL(XNOR_ERR_BAD_LABELS, "labels: n_labels %u but the graph's output has %u elements per image", m->n_labels,
             m->out_size);
    m->output_kind = m->nodes[n - 1].op == XNOR_OP_SOFTMAX ? XNOR_OUTPUT_PROBABILITIES : XNOR_OUTPUT_LOGITS;

    /* Fusion (graph property, the same for every context): see plan.c. */
    /* Nodes are visited in order, so a relu sees its producer's decision. */
    for (uint32_t k = 0; k < n; k++) {
        xnode *nd = &m->nodes[k];
        nd->fuse_kind = XFUSE_NONE;
        const xnode *pr = nd->inputs[0] != 0 ? &m->nodes[nd->inputs[0] - 1] : NULL;
        if (nd->op == XNOR_OP_DROPOUT) {
            nd->fuse_kind = XFUSE_ALIAS;
        } else if (nd->op == XNOR_OP_BATCHNORM) {
            const xnode *c = nd->n_consumers == 1 ? &m->nodes[nd->consumer] : NULL;
            if (c && (c->op == XNOR_OP_BCONV2D || c->op == XNOR_OP_BLINEAR) && c->mode == XNOR_MODE_XNOR)
                nd->fuse_kind = XFUSE_BN_BINARIZE; /* takes precedence over the epilogue fold */
            else if (pr && (pr->op == XNOR_OP_CONV2D || pr->op == XNOR_OP_LINEAR || pr->op == XNOR_OP_QCONV2D ||
                            pr->op == XNOR_OP_QLINEAR) && pr->n_consumers == 1)
                nd->fuse_kind = XFUSE_BN_EPILOGUE;
        } else if (nd->op == XNOR_OP_RELU && pr) {
            if ((pr->op == XNOR_OP_CONV2D || pr->op == XNOR_OP_BCONV2D || pr->op == XNOR_OP_LINEAR || pr->op == XNOR_OP_BLINEAR ||
                 pr->op == XNOR_OP_QCONV2D || pr->op == XNOR_OP_QLINEAR) &&
                pr->n_consumers == 1)
                nd->fuse_kind = XFUSE_RELU_EPILOGUE;
            else if (pr->op == XNOR_OP_BATCHNORM && pr->fuse_kind == XFUSE_BN_EPILOGUE && pr->n_consumers == 1)
                nd->fuse_kind = XFUSE_RELU_EPILOGUE;
        }
        nd->fused = nd->fuse_kind != XFUSE_NONE;
    }
    return XNOR_OK;
}

void xnor_model_free(xnor_model_t *m) {
    if (!m) return;
    if (m->nodes)
        for (uint32_t k = 0; k < m->n_nodes; k++) xnor_free_node(&m->nodes[k]);
    XNOR_FREE_EACH(free, m->nodes, m->values, m->label_text, m->label_off, m->label_len, m);
}

static xnor_status load_impl(const uint8_t *buf, uint64_t size, xnor_model_t **out, char *err, size_t errlen) {
    lctx Ls = {0}, *L = &Ls;
    L->buf = buf;
    L->size = size;
    L->err = err;
    L->errlen = errlen;
    xnor_model_t *m = calloc(1, sizeof *m);
    if (!m) FAIL(XNOR_ERR_OUT_OF_MEMORY, "out of memory");
    L->m = m;
    xnor_status st = check_header(L);
    if (st) goto fail;
    /* n_tensors and n_nodes are bounded by the header checks and the file holds their
     * tables, so these allocations are justified by the file size. */
    L->tens = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *L->tens);
    L->tens_used = calloc(m->n_tensors ? m->n_tensors : 1, 1);
    m->nodes = calloc(m->n_nodes, sizeof *m->nodes);
    m->values = calloc((size_t)m->n_nodes + 1, sizeof *m->values);
    if (!L->tens || !L->tens_used || !m->nodes || !m->values) {
        xnor_set_err(err, errlen, "out of memory");
        st = XNOR_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    if ((st = check_tensors(L))) goto fail;
    if ((st = check_labels(L))) goto fail;
    m->values[0] = (xshape){m->in_c, m->in_h, m->in_w, 1};
    for (uint32_t k = 0; k < m->n_nodes; k++)
        if ((st = check_node(L, k))) goto fail;
    if ((st = check_graph(L))) goto fail;

    /* Valid: now spend memory. */
    if ((st = copy_labels(L))) goto fail;
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        m->weight_bytes_packed += L->tens[i].nbytes;
        m->weight_bytes_float32 += 4 * L->tens[i].elems;
    }
    m->memory_bytes += sizeof *m + sizeof(xnode) * (uint64_t)m->n_nodes + sizeof(xshape) * ((uint64_t)m->n_nodes + 1);
    for (uint32_t k = 0; k < m->n_nodes; k++) {
        st = xnor_prepare_node(m, &m->nodes[k], L->tens, buf + L->data_off);
        if (st) {
            xnor_set_err(err, errlen, "out of memory preparing node %u (%s)", k, m->nodes[k].name);
            goto fail;
        }
    }
    if ((st = xnor_fold_packed_epilogues(m))) {
        xnor_set_err(err, errlen, "out of memory preparing the packed epilogues");
        goto fail;
    }
    free(L->tens);
    free(L->tens_used);
    if (err && errlen) err[0] = '\0';
    *out = m;
    return XNOR_OK;
fail:
    free(L->tens);
    free(L->tens_used);
    xnor_model_free(m);
    return st;
}

xnor_status xnor_model_load_bytes(const void *data, size_t size, xnor_model_t **out, char *errbuf,
                                  size_t errbuf_len) {
    if (errbuf && errbuf_len) errbuf[0] = '\0';
    if (!out) {
        xnor_set_err(errbuf, errbuf_len, "out is NULL");
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    if (!data && size) {
        xnor_set_err(errbuf, errbuf_len, "data is NULL");
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    if (!data) {
        xnor_set_err(errbuf, errbuf_len, "file is 0 bytes, shorter than the 256-byte header");
        return XNOR_ERR_TRUNCATED;
    }
    return load_impl((const uint8_t *)data, (uint64_t)size, out, errbuf, errbuf_len);
}

xnor_status xnor_model_load_file(const char *path, xnor_model_t **out, char *errbuf, size_t errbuf_len) {
    if (errbuf && errbuf_len) errbuf[0] = '\0';
    if (!out || !path) {
        xnor_set_err(errbuf, errbuf_len, "path or out is NULL");
        return XNOR_ERR_INVALID_ARGUMENT;
    }
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        xnor_set_err(errbuf, errbuf_len, "cannot open %s", path);
        return XNOR_ERR_IO;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size < 0) {
        fclose(f);
        xnor_set_err(errbuf, errbuf_len, "%s is not a regular file", path);
        return XNOR_ERR_IO;
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size > SIZE_MAX - 64) {
        fclose(f);
        xnor_set_err(errbuf, errbuf_len, "%s is too large", path);
        return XNOR_ERR_IO;
    }
    uint8_t *buf = malloc(size ? (size_t)size : 1);
    if (!buf) {
        fclose(f);
        xnor_set_err(errbuf, errbuf_len, "out of memory reading %s (%llu bytes)", path, (unsigned long long)size);
        return XNOR_ERR_OUT_OF_MEMORY;
    }
    size_t got = size ? fread(buf, 1, (size_t)size, f) : 0;
    /* One more byte would mean the file grew since fstat: read what is there. */
    int extra = size ? fgetc(f) : EOF;
    int ioerr = ferror(f);
    fclose(f);
    if (ioerr || got != size || extra != EOF) {
        free(buf);
        xnor_set_err(errbuf, errbuf_len, "error reading %s (the file changed or could not be read)", path);
        return XNOR_ERR_IO;
    }
    xnor_status st = load_impl(buf, size, out, errbuf, errbuf_len);
    free(buf);
    return st;
}

xnor_status xnor_model_get_info(const xnor_model_t *m, xnor_model_info *info) {
    if (!m || !info) return XNOR_ERR_INVALID_ARGUMENT;
    memset(info, 0, sizeof *info);
    info->format_version = m->version;
    info->n_nodes = m->n_nodes;
    info->n_labels = m->n_labels;
    info->in_c = m->in_c;
    info->in_h = m->in_h;
    info->in_w = m->in_w;
    info->out_size = m->out_size;
    info->color = (xnor_color)m->color;
    info->resize_policy = (xnor_resize_policy)m->resize_policy;
    info->resize_size = m->resize_size;
    info->scale = m->scale;
    memcpy(info->mean, m->mean, sizeof info->mean);
    memcpy(info->std, m->std, sizeof info->std);
    info->output_kind = (xnor_output_kind)m->output_kind;
    info->file_bytes = m->file_bytes;
    info->weight_bytes_packed = m->weight_bytes_packed;
    info->weight_bytes_float32 = m->weight_bytes_float32;
    info->memory_bytes = m->memory_bytes;
    info->crc32 = m->crc;
    memcpy(info->name, m->name, sizeof info->name);
    info->name[63] = '\0';
    return XNOR_OK;
}

xnor_status xnor_model_get_label(const xnor_model_t *m, uint32_t index, const char **text, uint32_t *len) {
    if (!m || !text || !len) return XNOR_ERR_INVALID_ARGUMENT;
    if (index >= m->n_labels) return XNOR_ERR_INVALID_ARGUMENT;
    *text = m->label_text + m->label_off[index];
    *len = m->label_len[index];
    return XNOR_OK;
}

xnor_status xnor_model_get_node(const xnor_model_t *m, uint32_t index, xnor_node_info *info) {
    if (!m || !info || index >= m->n_nodes) return XNOR_ERR_INVALID_ARGUMENT;
    const xnode *nd = &m->nodes[index];
    memset(info, 0, sizeof *info);
    info->op = (xnor_op)nd->op;
    info->n_inputs = nd->n_inputs;
    info->inputs[0] = nd->inputs[0];
    info->inputs[1] = nd->inputs[1];
    info->out_c = nd->out_shape.c;
    info->out_h = nd->out_shape.h;
    info->out_w = nd->out_shape.w;
    info->mode = (xnor_mode)nd->mode;
    info->use_k = (uint32_t)nd->use_k;
    info->fused = nd->fused;
    info->macs = nd->macs;
    memcpy(info->name, nd->name, sizeof info->name);
    info->name[31] = '\0';
    info->packs_into = nd->pack_into;
    return XNOR_OK;
}
