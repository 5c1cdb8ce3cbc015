/*
 * cmd_bench.c: `shoal bench zerocopy`: the zero-copy chain measured end to end.
 *
 * A guest (bench/zerocopy/zc_bench.c) writes tensors in its own linear memory and hands them to the
 * device through `shoal_tensor`. For every device and memory mode, and for the copy path that runtimes
 * without zero-copy use (guest memory -> staging buffer -> device and back), we report: whether the device
 * computes on the guest's own addresses, the number of wrong values over all elements, the host memory
 * (RSS peak) and device memory the runtime added across hand-off and compute, and median latencies.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "shoal.h"
#include "tdevice.h"

typedef struct zc_case {
    const char *label;
    int kind, n, keep;
} zc_case;

static const zc_case zc_cases[] = {
    {"matmul 128x128", 0, 128, 0},
    {"matmul 1024x1024", 0, 1024, 0},
    {"matmul 1024 keep(a,b)", 0, 1024, 1},
    {"matmul 1024 resident", 0, 1024, 2},
    {"add 3x64MiB read-once", 1, 64, 0},
    {"scale 16MiB region", 2, 16, 0},
};
#define ZC_NCASES (sizeof zc_cases / sizeof zc_cases[0])

typedef struct zc_result {
    bool ran;
    char error[600];
    bool identity;
    int32_t errors, elements;
    double rss_mb, dev_mb;
    double compute_ms, roundtrip_ms;
} zc_result;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* kB from /proc/self/status for a key such as "VmRSS:" or "VmHWM:". */
static long proc_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl)) {
            v = strtol(line + kl, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Resets the kernel's peak-RSS mark so VmHWM afterwards is the peak of what follows. */
static void reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int32_t call_i32(shoal_instance *inst, const char *name, const shoal_val *args, uint32_t nargs, shoal_error *err,
                        bool *ok) {
    shoal_val r = {0};
    *ok = shoal_call_export(inst, name, args, nargs, &r, 1, err) == SHOAL_OK;
    return r.i32;
}

static void zc_run_case(const shoal_module *mod, shoal_device *dev, const zc_case *c, int reps, zc_result *res) {
    memset(res, 0, sizeof *res);
    tdevice *td = dev->impl;
    shoal_error err = {0};
    shoal_imports *imports = shoal_imports_new();
    shoal_tensor_ctx *ctx = NULL;
    shoal_instance *inst = NULL;
    bool ok;
    if (!imports || shoal_tensor_ctx_new(dev, &ctx, &err) != SHOAL_OK ||
        shoal_tensor_add_imports(ctx, imports, &err) != SHOAL_OK) {
        snprintf(res->error, sizeof res->error, "setup: %s", err.message);
        goto done;
    }
    shoal_instance_config cfg = {.memory_provider = shoal_device_memory_provider(dev)};
    if (shoal_instantiate(mod, imports, &cfg, &inst, &err) != SHOAL_OK) {
        snprintf(res->error, sizeof res->error, "instantiate: %s", err.message);
        goto done;
    }
    uint64_t dev_now, dev_peak0, dev_peak;
    td->memory_stats(td, &dev_now, &dev_peak0, true);
    uint64_t dev_base = dev_now;

    shoal_val args[3] = {{.i32 = c->kind}, {.i32 = c->n}, {.i32 = c->keep}};
    int32_t r = call_i32(inst, "prepare", args, 3, &err, &ok);
    if (!ok || r < 0) {
        snprintf(res->error, sizeof res->error, "prepare: %s", ok ? shoal_tensor_ctx_last_error(ctx) : err.message);
        goto done;
    }
    /* The guest has written its data: from here on, anything the runtime adds is overhead. */
    long rss0 = proc_status_kb("VmRSS:");
    reset_peak_rss();
    r = call_i32(inst, "compute", NULL, 0, &err, &ok);
    long hwm = proc_status_kb("VmHWM:");
    td->memory_stats(td, &dev_now, &dev_peak, false);
    if (!ok || r < 0) {
        snprintf(res->error, sizeof res->error, "compute: %s", ok ? shoal_tensor_ctx_last_error(ctx) : err.message);
        goto done;
    }
    res->rss_mb = rss0 >= 0 && hwm >= 0 ? (double)(hwm - rss0) / 1024.0 : -1;
    if (res->rss_mb < 0) res->rss_mb = 0;
    res->dev_mb = (double)(dev_peak - dev_base) / (1024.0 * 1024.0);
    res->errors = call_i32(inst, "verify", NULL, 0, &err, &ok);
    res->elements = call_i32(inst, "element_count", NULL, 0, &err, &ok);

    uint64_t mem_size = 0;
    uint8_t *base = shoal_instance_memory(inst, &mem_size);
    res->identity = base && td->device_address(td, base) == base;

    double *t = calloc((size_t)reps, sizeof *t), *rt = calloc((size_t)reps, sizeof *rt);
    if (!t || !rt) {
        free(t);
        free(rt);
        snprintf(res->error, sizeof res->error, "out of memory");
        goto done;
    }
    for (int i = 0; i < reps && ok; i++) {
        double t0 = now_ms();
        call_i32(inst, "compute", NULL, 0, &err, &ok);
        t[i] = now_ms() - t0;
    }
    for (int i = 0; i < reps && ok; i++) {
        double t0 = now_ms();
        call_i32(inst, "roundtrip", NULL, 0, &err, &ok);
        rt[i] = now_ms() - t0;
    }
    if (ok) {
        res->compute_ms = median(t, reps);
        res->roundtrip_ms = median(rt, reps);
        res->ran = true;
    } else {
        snprintf(res->error, sizeof res->error, "timing: %s", err.message);
    }
    free(t);
    free(rt);
done:
    shoal_instance_free(inst);
    shoal_tensor_ctx_free(ctx);
    shoal_imports_free(imports);
}

static void zc_default_guest(char *buf, size_t cap) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(buf, cap, "guests/zc_bench.wasm");
        return;
    }
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    snprintf(buf, cap, "%.*s/guests/zc_bench.wasm", (int)(cap > 40 ? cap - 40 : 1), exe);
}

static int bench_zerocopy(int argc, char **argv) {
    const char *device_arg = "all";
    int reps = 7;
    bool quick = false; /* the small cases only: for tests under sanitizers */
    char guest[PATH_MAX];
    zc_default_guest(guest, sizeof guest);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) device_arg = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--guest") && i + 1 < argc) snprintf(guest, sizeof guest, "%s", argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: shoal bench zerocopy [--device cpu|cuda|all] [--reps N] [--quick] [--guest zc_bench.wasm]\n"
                   "  --quick  skip the 1024x1024 matmuls (for tests)\n");
            return 0;
        } else {
            fprintf(stderr, "shoal bench zerocopy: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (reps < 1 || reps > 1000) {
        fprintf(stderr, "shoal bench zerocopy: --reps must be in 1..1000\n");
        return 2;
    }
    shoal_error err = {0};
    shoal_module *mod = NULL;
    if (shoal_module_load_file(guest, &mod, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal bench zerocopy: cannot load the benchmark guest %s: %s\n", guest, err.message);
        return 1;
    }
    static const struct {
        const char *device;
        shoal_memory_mode mode;
    } configs[] = {
        /* The copy path first on each device: the rows after it show their ratio to it. */
        {"cpu", SHOAL_MEMORY_COPY},    {"cpu", SHOAL_MEMORY_HOST},      {"cuda", SHOAL_MEMORY_COPY},
        {"cuda", SHOAL_MEMORY_MAPPED}, {"cuda", SHOAL_MEMORY_UNIFIED},
    };
    enum { NCONF = sizeof configs / sizeof configs[0] };
    static zc_result results[NCONF][ZC_NCASES];
    int copy_index[NCONF];
    printf("%-26s %-24s %-5s %-13s %9s %9s %11s %12s %9s\n", "device/memory", "case", "same", "errors/elems",
           "RSS+ MB", "dev+ MB", "compute ms", "roundtrip ms", "copy/this");
    for (int ci = 0; ci < NCONF; ci++) {
        copy_index[ci] = -1;
        for (int cj = 0; cj < NCONF; cj++)
            if (!strcmp(configs[cj].device, configs[ci].device) && configs[cj].mode == SHOAL_MEMORY_COPY)
                copy_index[ci] = cj;
    }
    for (int ci = 0; ci < NCONF; ci++) {
        if (strcmp(device_arg, "all") && strcmp(device_arg, configs[ci].device)) continue;
        shoal_device *dev = NULL;
        if (shoal_device_open(configs[ci].device, configs[ci].mode, &dev, &err) != SHOAL_OK) {
            printf("%s/%-20s skipped: %s\n", configs[ci].device, shoal_memory_mode_name(configs[ci].mode), err.message);
            continue;
        }
        /* Warm-up: the first operation loads kernels and libraries; that is start-up, not hand-off cost. */
        zc_result warm;
        zc_run_case(mod, dev, &zc_cases[0], 1, &warm);
        for (size_t k = 0; k < ZC_NCASES; k++) {
            zc_result *r = &results[ci][k];
            if (quick && zc_cases[k].kind == 0 && zc_cases[k].n > 128) continue;
            zc_run_case(mod, dev, &zc_cases[k], reps, r);
            const char *desc = shoal_device_description(dev);
            if (!r->ran) {
                printf("%-26.26s %-24s failed: %s\n", desc, zc_cases[k].label, r->error);
                continue;
            }
            char ratio[32] = "-";
            int cj = copy_index[ci];
            if (cj >= 0 && cj <= ci && results[cj][k].ran && r->compute_ms > 0)
                snprintf(ratio, sizeof ratio, "%.2fx", results[cj][k].compute_ms / r->compute_ms);
            char errs[32];
            snprintf(errs, sizeof errs, "%d/%d", r->errors, r->elements);
            printf("%-26.26s %-24s %-5s %-13s %9.2f %9.2f %11.3f %12.3f %9s\n", desc, zc_cases[k].label,
                   r->identity ? "yes" : "no", errs, r->rss_mb, r->dev_mb, r->compute_ms, r->roundtrip_ms, ratio);
            fflush(stdout);
        }
        shoal_device_close(dev);
    }
    printf("\nsame: the device computes on the guest's own addresses. errors: wrong values over all elements.\n"
           "RSS+/dev+: host peak RSS and device memory the runtime added across hand-off and compute (after the\n"
           "guest wrote its data; dev+ also counts copies made by keep). compute: one operation + sync, median of %d.\n"
           "roundtrip: guest writes inputs (not for kept ones), computes, reads all outputs. copy/this: the copy\n"
           "path's compute time over this row's, same device.\n",
           reps);
    shoal_module_free(mod);
    return 0;
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        printf("usage: shoal bench zerocopy [options]\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "zerocopy")) return bench_zerocopy(argc - 1, argv + 1);
    fprintf(stderr, "shoal bench: unknown benchmark '%s' (zerocopy)\n", argv[1]);
    return 2;
}
