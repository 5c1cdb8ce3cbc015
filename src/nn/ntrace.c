/*
 * ntrace.c: `shoal run --trace`: every call from the guest into a host function, with its arguments,
 * results, duration and the guest bytes it moved, and a summary at exit: wall time split into time in the
 * guest and time in host calls, and the part of the host calls spent in forward passes ("device").
 *
 * It observes through shoal_instance_config.host_call_hook, which the interpreter calls around host calls
 * only: the guest's own instructions run as fast as without it. Bytes moved are counted by the host
 * functions of src/nn (nn_trace_bytes) and, for wasi fd_read/fd_write, read back from the guest's
 * nread/nwritten result; other WASI calls show "-".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn.h"

typedef struct tfunc {
    const char *module, *name;
    uint32_t nparams;
    const shoal_valtype *params; /* the module's (lives as long as it) */
    uint64_t calls, ns, bytes;
} tfunc;

struct shoal_trace {
    FILE *out;
    bool per_call;
    tfunc *funcs; /* by function index (imports only) */
    uint32_t nfuncs;
    uint64_t t_start, t_enter, host_ns, calls, bytes;
    shoal_val args[8];
    uint32_t nargs;
};

shoal_status shoal_trace_new(const shoal_module *module, int fd, bool per_call, shoal_trace **out,
                             shoal_error *err) {
    if (!module || !out)
        return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_trace_new: NULL argument");
    *out = NULL;
    shoal_trace *t = calloc(1, sizeof *t);
    uint32_t n = shoal_module_import_count(module);
    if (!t || !(t->funcs = calloc(n ? n : 1, sizeof *t->funcs))) {
        free(t);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        shoal_extern_desc d;
        if (shoal_module_import(module, i, &d) && d.kind == SHOAL_EXTERN_FUNC)
            t->funcs[t->nfuncs++] = (tfunc){d.module, d.name, d.func.nparams, d.func.params, 0, 0, 0};
    }
    int dupfd = dup(fd);
    t->out = dupfd >= 0 ? fdopen(dupfd, "w") : NULL;
    if (!t->out) {
        if (dupfd >= 0)
            close(dupfd);
        free(t->funcs);
        free(t);
        return shoal_error_set(err, SHOAL_ERR_IO, "trace: cannot write to fd %d", fd);
    }
    t->per_call = per_call;
    *out = t;
    return SHOAL_OK;
}

void shoal_trace_free(shoal_trace *t) {
    if (!t)
        return;
    fclose(t->out);
    free(t->funcs);
    free(t);
}

static void trace_hook(void *user, shoal_instance *inst, uint32_t fi, bool leave, const shoal_val *vals,
                       uint32_t nvals, shoal_status status) {
    shoal_trace *t = user;
    if (!leave) {
        t->nargs = nvals < 8 ? nvals : 8;
        memcpy(t->args, vals, t->nargs * sizeof *vals);
        nn_trace_bytes = 0;
        t->t_enter = nn_now_ns(); /* last: the hook's own work is not charged to the call */
        return;
    }
    uint64_t dt = nn_now_ns() - t->t_enter;
    tfunc *f = fi < t->nfuncs ? &t->funcs[fi] : NULL;
    uint64_t bytes = nn_trace_bytes;
    bool known = f && (!strcmp(f->module, "wasi_ephemeral_nn") || !strcmp(f->module, "shoal_llm"));
    if (f && status == SHOAL_OK && nvals == 1 && vals[0].i32 == 0 && t->nargs == 4 &&
        !strcmp(f->module, "wasi_snapshot_preview1") &&
        (!strcmp(f->name, "fd_write") || !strcmp(f->name, "fd_read"))) {
        uint32_t moved = 0;
        if (shoal_instance_memory_read(inst, (uint32_t)t->args[3].i32, &moved, 4, NULL) == SHOAL_OK) {
            bytes = moved;
            known = true;
        }
    }
    t->host_ns += dt;
    t->calls++;
    t->bytes += known ? bytes : 0;
    if (f) {
        f->calls++;
        f->ns += dt;
        f->bytes += known ? bytes : 0;
    }
    if (!t->per_call)
        return;
    fprintf(t->out, "[trace] %s.%s(", f ? f->module : "?", f ? f->name : "?");
    for (uint32_t i = 0; i < t->nargs; i++) {
        shoal_valtype vt = f && i < f->nparams ? f->params[i] : SHOAL_I32;
        const char *sep = i ? ", " : "";
        if (vt == SHOAL_I64)
            fprintf(t->out, "%s%lld", sep, (long long)t->args[i].i64);
        else if (vt == SHOAL_F32)
            fprintf(t->out, "%s%g", sep, (double)t->args[i].f32);
        else if (vt == SHOAL_F64)
            fprintf(t->out, "%s%g", sep, t->args[i].f64);
        else
            fprintf(t->out, "%s%d", sep, (int)t->args[i].i32);
    }
    if (status != SHOAL_OK)
        fprintf(t->out, ") -> %s", shoal_status_name(status));
    else if (nvals == 1)
        fprintf(t->out, ") -> %d", vals[0].i32);
    else
        fprintf(t->out, ")");
    if (known)
        fprintf(t->out, "  %.3f ms  %llu bytes\n", dt / 1e6, (unsigned long long)bytes);
    else
        fprintf(t->out, "  %.3f ms  - bytes\n", dt / 1e6);
}

void shoal_trace_attach(shoal_trace *t, shoal_instance_config *config) {
    if (!t || !config)
        return;
    config->host_call_hook = trace_hook;
    config->hook_user = t;
}

void shoal_trace_start(shoal_trace *t) {
    if (t)
        t->t_start = nn_now_ns();
}

void shoal_trace_summary(shoal_trace *t, uint64_t device_ns) {
    if (!t)
        return;
    uint64_t wall = nn_now_ns() - t->t_start;
    uint64_t guest = wall > t->host_ns ? wall - t->host_ns : 0;
    uint64_t infer = 0, wasi = 0, other = 0;
    for (uint32_t i = 0; i < t->nfuncs; i++) {
        const tfunc *f = &t->funcs[i];
        if (!strcmp(f->module, "wasi_ephemeral_nn") || !strcmp(f->module, "shoal_llm"))
            infer += f->ns;
        else if (!strcmp(f->module, "wasi_snapshot_preview1"))
            wasi += f->ns;
        else
            other += f->ns;
    }
    uint64_t infer_host = infer > device_ns ? infer - device_ns : 0;
    double w = wall ? (double)wall / 100.0 : 0.01;
    /* "boundary": what running in the sandbox adds: the guest's own code and the crossings (the hook times
     * only the inside of host functions, so a crossing's cost lands in the guest's share). */
    fprintf(t->out,
            "[trace] summary: wall %.3f ms in %llu host calls (%llu bytes moved)\n"
            "[trace]   device (forward passes)            %10.3f ms %7.3f%%\n"
            "[trace]   inference host work (sampling, tokenizer, copies) %.3f ms %.3f%%\n"
            "[trace]   wasi calls (I/O, clocks, args)     %10.3f ms %7.3f%%\n"
            "[trace]   other host calls                   %10.3f ms %7.3f%%\n"
            "[trace]   boundary (guest code + crossings)  %10.3f ms %7.3f%%\n",
            wall / 1e6, (unsigned long long)t->calls, (unsigned long long)t->bytes, device_ns / 1e6, device_ns / w,
            infer_host / 1e6, infer_host / w, wasi / 1e6, wasi / w, other / 1e6, other / w, guest / 1e6, guest / w);
    for (uint32_t i = 0; i < t->nfuncs; i++) {
        const tfunc *f = &t->funcs[i];
        if (f->calls)
            fprintf(t->out, "[trace]   %-24s %-28s %8llu calls %10.3f ms %12llu bytes\n", f->module, f->name,
                    (unsigned long long)f->calls, f->ns / 1e6, (unsigned long long)f->bytes);
    }
    fflush(t->out);
}
