/* status.c -- status strings, error-message formatting, aligned allocation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *xnor_status_str(xnor_status s) {
    switch (s) {
    case XNOR_OK: return "ok";
    case XNOR_ERR_INVALID_ARGUMENT: return "invalid argument";
    case XNOR_ERR_OUT_OF_MEMORY: return "out of memory";
    case XNOR_ERR_IO: return "I/O error";
    case XNOR_ERR_BAD_MAGIC: return "bad magic (not an xnornet model file)";
    case XNOR_ERR_BAD_VERSION: return "unsupported format version";
    case XNOR_ERR_TRUNCATED: return "file truncated";
    case XNOR_ERR_TRAILING_DATA: return "trailing data after the end of the file";
    case XNOR_ERR_CHECKSUM: return "checksum mismatch";
    case XNOR_ERR_BAD_HEADER: return "bad header";
    case XNOR_ERR_BAD_TENSOR: return "bad tensor";
    case XNOR_ERR_BAD_NODE: return "bad node";
    case XNOR_ERR_SHAPE_MISMATCH: return "shape mismatch";
    case XNOR_ERR_BAD_LABELS: return "bad labels";
    case XNOR_ERR_UNSUPPORTED_ISA: return "unsupported instruction set";
    case XNOR_ERR_THREAD: return "thread creation failed";
    case XNOR_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *xnor_version(void) { return XNOR_VERSION_STRING; }

void xnor_set_errv(char *buf, size_t len, const char *fmt, va_list ap) {
    if (!buf || len == 0) return;
    int n = vsnprintf(buf, len, fmt, ap);
    if (n < 0) buf[0] = '\0';
    buf[len - 1] = '\0'; /* vsnprintf terminates, but be explicit: the caller relies on it */
}

void xnor_set_err(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    xnor_set_errv(buf, len, fmt, ap);
    va_end(ap);
}

void *xnor_alloc_aligned(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    /* Round up so the SIMD kernels may read whole 64-byte lines at the end. */
    if (bytes > SIZE_MAX - 64) return NULL;
    bytes = (bytes + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    return p;
}

void *xnor_calloc_aligned(size_t bytes) {
    void *p = xnor_alloc_aligned(bytes);
    if (p) memset(p, 0, (bytes + 63) & ~(size_t)63);
    return p;
}

void xnor_free_aligned(void *p) { free(p); }

void xnor_free_each(void (*release)(void *), void *const *ptrs, size_t n) {
    for (size_t i = 0; i < n; i++) release(ptrs[i]);
}
