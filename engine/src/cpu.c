/* cpu.c -- default thread count (affinity + cgroup quota) and ISA selection. */
#include <ctype.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* ------------------------------------------------------------ threads */

/* Parse "quota period" (cgroup v2 cpu.max); 0 if unlimited/unreadable, else the
 * number of CPUs the quota allows, rounded up. */
static int read_cpu_max(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char q[32] = {0};
    unsigned long long period = 0;
    int n = fscanf(f, "%31s %llu", q, &period);
    fclose(f);
    if (n != 2 || strcmp(q, "max") == 0 || period == 0) return 0;
    char *end = NULL;
    unsigned long long quota = strtoull(q, &end, 10);
    if (!end || *end || quota == 0) return 0;
    unsigned long long cpus = (quota + period - 1) / period;
    return cpus > 1u << 20 ? 1 << 20 : (int)cpus;
}

static long long read_ll(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long long v = 0;
    if (fscanf(f, "%lld", &v) != 1) v = 0;
    fclose(f);
    return v;
}

/* This process's cgroup path for a v1 controller (`ctrl`, e.g. "cpu") or for the v2
 * hierarchy (ctrl NULL), from /proc/self/cgroup. 1 if found. */
static int self_cgroup(const char *ctrl, char *out, size_t n) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return 0;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c1 = '\0';
        *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        if (ctrl == NULL) {
            found = strcmp(line, "0") == 0 && ctrls[0] == '\0';
        } else {
            /* comma-separated controller list, e.g. "cpu,cpuacct" */
            char list[256];
            snprintf(list, sizeof list, "%s", ctrls);
            for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                if (strcmp(tok, ctrl) == 0) found = 1;
        }
        if (found) {
            size_t len = strcspn(path, "\n");
            if (len >= n) return fclose(f), 0;
            memcpy(out, path, len);
            out[len] = '\0';
        }
    }
    fclose(f);
    return found;
}

/* cgroup v2: the tightest cpu.max from this process's cgroup up to the root (inside a
 * cgroup namespace the path is "/" and the limit is in the mount's own cpu.max). */
static int cgroup_v2_limit(void) {
    static const char *mounts[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
    char rel[512] = "/";
    if (!self_cgroup(NULL, rel, sizeof rel)) strcpy(rel, "/");
    int best = 0;
    for (size_t m = 0; m < sizeof mounts / sizeof mounts[0]; m++) {
        char cur[512];
        snprintf(cur, sizeof cur, "%s", rel);
        for (;;) {
            char path[700];
            snprintf(path, sizeof path, "%s%s/cpu.max", mounts[m], strcmp(cur, "/") == 0 ? "" : cur);
            int v = read_cpu_max(path);
            if (v > 0 && (best == 0 || v < best)) best = v;
            char *slash = strrchr(cur, '/');
            if (!slash || strcmp(cur, "/") == 0 || cur[0] == '\0') break;
            if (slash == cur) strcpy(cur, "/");
            else *slash = '\0';
        }
    }
    return best;
}

/* cgroup v1: cpu.cfs_quota_us / cpu.cfs_period_us of this process's cpu cgroup, or of
 * the mount root when that path is not visible (containers). */
static int cgroup_v1_limit(void) {
    static const char *dirs[] = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct,cpu"};
    char rel[512] = "";
    if (!self_cgroup("cpu", rel, sizeof rel) || strcmp(rel, "/") == 0) rel[0] = '\0';
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        for (int pass = 0; pass < 2; pass++) {
            const char *sub = pass == 0 ? rel : "";
            if (pass == 1 && rel[0] == '\0') break;
            char qp[700], pp[700];
            snprintf(qp, sizeof qp, "%s%s/cpu.cfs_quota_us", dirs[i], sub);
            snprintf(pp, sizeof pp, "%s%s/cpu.cfs_period_us", dirs[i], sub);
            long long q = read_ll(qp), p = read_ll(pp);
            if (q > 0 && p > 0) {
                long long c = (q + p - 1) / p;
                return c > (1 << 20) ? (1 << 20) : (int)c;
            }
        }
    }
    return 0;
}

int32_t xnor_default_threads(void) {
    int n = 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    int l2 = cgroup_v2_limit(), l1 = cgroup_v1_limit();
    if (l2 > 0 && l2 < n) n = l2;
    if (l1 > 0 && l1 < n) n = l1;
    return n < 1 ? 1 : n;
}

/* ------------------------------------------------------------ ISA */

const char *xnor_isa_name(xnor_isa isa) {
    switch (isa) {
    case XNOR_ISA_AUTO: return "auto";
    case XNOR_ISA_SCALAR: return "scalar";
    case XNOR_ISA_AVX2: return "avx2";
    case XNOR_ISA_AVX512: return "avx512";
    }
    return "unknown";
}

int xnor_isa_supported(xnor_isa isa) {
    switch (isa) {
    case XNOR_ISA_AUTO: return 1;
    case XNOR_ISA_SCALAR:
    case XNOR_ISA_AVX2:
    case XNOR_ISA_AVX512: return xnor_kernels_for(isa) != NULL;
    }
    return 0;
}

/* Case-insensitive name -> ISA. 1 if known. */
int xnor_parse_isa_name(const char *s, xnor_isa *out) {
    static const struct { const char *name; xnor_isa isa; } names[] = {
        {"auto", XNOR_ISA_AUTO}, {"scalar", XNOR_ISA_SCALAR}, {"avx2", XNOR_ISA_AVX2}, {"avx512", XNOR_ISA_AVX512}};
    char buf[16];
    size_t n = strlen(s);
    /* Surrounding whitespace is a common accident in env files; ignore it. */
    while (n && isspace((unsigned char)s[n - 1])) n--;
    while (n && isspace((unsigned char)*s)) { s++; n--; }
    if (n == 0 || n >= sizeof buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = (char)tolower((unsigned char)s[i]);
    buf[n] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(buf, names[i].name) == 0) {
            *out = names[i].isa;
            return 1;
        }
    return 0;
}

static xnor_isa best_isa(void) {
    const xnor_kernel_table *t = xnor_kernels_for(XNOR_ISA_AUTO);
    return t ? t->isa : XNOR_ISA_SCALAR;
}

xnor_status xnor_isa_resolve(xnor_isa requested, xnor_isa *out) {
    if (!out) return XNOR_ERR_INVALID_ARGUMENT;
    *out = XNOR_ISA_SCALAR;
    if (requested == XNOR_ISA_AUTO) {
        const char *env = getenv("XNORNET_ISA");
        if (env && *env) {
            xnor_isa want;
            if (!xnor_parse_isa_name(env, &want)) return XNOR_ERR_UNSUPPORTED_ISA;
            if (want != XNOR_ISA_AUTO) {
                if (!xnor_isa_supported(want)) return XNOR_ERR_UNSUPPORTED_ISA;
                *out = want;
                return XNOR_OK;
            }
        }
        *out = best_isa();
        return XNOR_OK;
    }
    if (requested != XNOR_ISA_SCALAR && requested != XNOR_ISA_AVX2 && requested != XNOR_ISA_AVX512)
        return XNOR_ERR_UNSUPPORTED_ISA;
    if (!xnor_isa_supported(requested)) return XNOR_ERR_UNSUPPORTED_ISA;
    *out = requested;
    return XNOR_OK;
}
