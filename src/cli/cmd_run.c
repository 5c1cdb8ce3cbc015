/*
 * cmd_run.c: `shoal run`: runs a wasm32-wasi (preview1) command module.
 *
 * Exit status: the guest's own (0 when _start returns, proc_exit's code otherwise, as the host truncates
 * it to 0..255); 1 when the module cannot be run at all (missing file, malformed or invalid module,
 * unresolvable import, failed instantiation); 2 for a usage error; 124 when --timeout expired; 134
 * (128 + SIGABRT, as other runtimes do) when the guest trapped, fuel exhaustion included.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "shoal.h"

enum { RUN_EXIT_FAIL = 1, RUN_EXIT_USAGE = 2, RUN_EXIT_TIMEOUT = 124, RUN_EXIT_TRAP = 134 };

static void run_usage(FILE *out) {
    fprintf(out,
            "usage: shoal run [options] module.wasm [args...]\n"
            "\n"
            "Runs a wasm32-wasi (preview1) command module: its _start, with args, environment, preopened\n"
            "directories, clocks, randomness and stdin/stdout/stderr.\n"
            "\n"
            "options:\n"
            "  --dir HOST[::GUEST]  give the guest the host directory HOST under the name GUEST (default:\n"
            "                       HOST as written); the guest can reach nothing outside it (repeatable)\n"
            "  --env K=V            set an environment variable of the guest (repeatable; the host's\n"
            "                       environment is not passed on)\n"
            "  --fuel N             stop the guest with a trap after about N executed operations\n"
            "  --timeout SECS       stop the guest after SECS seconds (decimals allowed)\n"
            "  --max-memory SIZE    cap on the guest's linear memory: bytes, or with a suffix K, M, G\n"
            "                       (binary units) or P (64 KiB Wasm pages); rounded down to pages\n"
            "  --device D           compute device for shoal_tensor: cpu (default), cuda or cuda:N\n"
            "  --memory M           guest memory: host (cpu default), mapped (cuda default: registered\n"
            "                       with the GPU, zero-copy), unified (CUDA managed) or copy (baseline)\n"
            "  --nn-preload NAME:GGML:AUTO|CPU|GPU:PATH\n"
            "                       preload a model for wasi_ephemeral_nn and shoal_llm, once, shared by\n"
            "                       every session; AUTO = the GPU when there is one (repeatable)\n"
            "  --nn-threads N       CPU threads for preloaded models (default: all)\n"
            "  --trace[=summary]    print each host call (arguments, result, duration, bytes moved) and at\n"
            "                       exit a summary of time in the guest, in host calls and on the device\n"
            "  -h, --help           this text\n"
            "\n"
            "exit status: the guest's exit code (proc_exit, or 0 when _start returns); 1 when the module\n"
            "cannot be loaded, linked or instantiated; 2 for a usage error; 124 when --timeout expired;\n"
            "134 when the guest trapped (the trap, function and code offset are printed to stderr).\n");
}

/* --- option parsing ---------------------------------------------------------------------------------- */

static int run_parse_u64(const char *s, uint64_t *out) {
    char *end;
    if (!*s || *s == '-')
        return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return 0;
    *out = v;
    return 1;
}

/* SIZE -> pages: "65536", "64K", "16M", "1G", "10P" (pages). */
static int run_parse_size(const char *s, uint32_t *pages) {
    char *end;
    if (!*s || *s == '-')
        return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return 0;
    unsigned long long mul;
    if (!strcmp(end, "") || !strcasecmp(end, "b"))
        mul = 1;
    else if (!strcasecmp(end, "k") || !strcasecmp(end, "kib") || !strcasecmp(end, "kb"))
        mul = 1ull << 10;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "mib") || !strcasecmp(end, "mb"))
        mul = 1ull << 20;
    else if (!strcasecmp(end, "g") || !strcasecmp(end, "gib") || !strcasecmp(end, "gb"))
        mul = 1ull << 30;
    else if (!strcasecmp(end, "p") || !strcasecmp(end, "pages"))
        mul = 65536;
    else
        return 0;
    if (v > (1ull << 40) / mul) /* far above 4 GiB: clamp below, never overflow */
        v = (1ull << 40) / mul;
    unsigned long long n = v * mul / 65536;
    if (n == 0)
        return 0;
    *pages = n > 65536 ? 65536 : (uint32_t)n;
    return 1;
}

static int run_parse_secs(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 1e9)
        return 0;
    *out = v;
    return 1;
}

/* --- the --timeout watchdog ------------------------------------------------------------------------- */

typedef struct RunTimer {
    pthread_t thread, main;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    shoal_instance *instance;
    double secs;
    int done;  /* set by the main thread when the guest has finished */
    int fired; /* set by the timer when it interrupted the guest */
} RunTimer;

static void run_on_wake(int sig) { (void)sig; }

/* Waits for the deadline, then interrupts the guest and keeps nudging the main thread with SIGUSR1 (no
 * SA_RESTART) so that a guest blocked in a host call (poll_oneoff, a read of stdin) returns to Wasm and
 * meets the interrupt. */
static void *run_timer_main(void *arg) {
    RunTimer *t = arg;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    double whole = (double)(long long)t->secs;
    deadline.tv_sec += (time_t)whole;
    deadline.tv_nsec += (long)((t->secs - whole) * 1e9);
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->lock);
    while (!t->done) {
        if (pthread_cond_timedwait(&t->cond, &t->lock, &deadline) == ETIMEDOUT)
            break;
    }
    while (!t->done) {
        t->fired = 1;
        shoal_instance_interrupt(t->instance);
        pthread_kill(t->main, SIGUSR1);
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_nsec += 100000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->cond, &t->lock, &deadline);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

/* --- reporting ---------------------------------------------------------------------------------------- */

static void run_report_trap(const char *module_path, const shoal_error *err, int timed_out, double secs) {
    fprintf(stderr, "shoal: %s: trap: %s", module_path, shoal_trap_message(err->trap));
    if (timed_out)
        fprintf(stderr, " (--timeout %gs expired)", secs);
    if (err->trap == SHOAL_TRAP_HOST && err->message[0]) /* the host function's own reason */
        fprintf(stderr, ": %s", err->message);
    fputc('\n', stderr);
    if (err->func_index != SHOAL_NO_FUNC) {
        char index[32];
        snprintf(index, sizeof index, "func[%u]", err->func_index);
        if (err->func_name[0] && strcmp(err->func_name, index) != 0)
            fprintf(stderr, "    in function %s (%s) at code offset 0x%x\n", err->func_name, index, err->code_offset);
        else
            fprintf(stderr, "    in function %s at code offset 0x%x\n", index, err->code_offset);
    }
}

/* Imports outside wasi_snapshot_preview1 can never resolve under `shoal run`: name the first one. */
static int run_check_imports(const char *path, const shoal_module *m) {
    uint32_t n = shoal_module_import_count(m);
    for (uint32_t i = 0; i < n; i++) {
        shoal_extern_desc d;
        if (shoal_module_import(m, i, &d) && strcmp(d.module, "wasi_snapshot_preview1") != 0 &&
            strcmp(d.module, "shoal_tensor") != 0 && strcmp(d.module, "wasi_ephemeral_nn") != 0 &&
            strcmp(d.module, "shoal_llm") != 0) {
            static const char *const kinds[] = {"function", "table", "memory", "global"};
            fprintf(stderr,
                    "shoal: %s: unresolvable import: %s \"%s\" \"%s\" (shoal run provides "
                    "wasi_snapshot_preview1, shoal_tensor, wasi_ephemeral_nn and shoal_llm)\n",
                    path, d.kind <= SHOAL_EXTERN_GLOBAL ? kinds[d.kind] : "extern", d.module, d.name);
            return 0;
        }
    }
    return 1;
}

/* --- the command --------------------------------------------------------------------------------------- */

int cmd_run(int argc, char **argv) {
    int status = RUN_EXIT_FAIL;
    shoal_wasi_preopen *dirs = calloc((size_t)argc, sizeof *dirs);
    char **dirbufs = calloc((size_t)argc, sizeof *dirbufs);
    const char **envs = calloc((size_t)argc, sizeof *envs);
    int ndirs = 0, nenvs = 0;
    uint64_t fuel = 0;
    uint32_t max_pages = 0;
    double timeout = 0;
    shoal_module *module = NULL;
    shoal_imports *imports = NULL;
    shoal_wasi *wasi = NULL;
    shoal_instance *instance = NULL;
    const char *device_name = "cpu";
    shoal_memory_mode memory_mode = SHOAL_MEMORY_DEFAULT;
    shoal_device *device = NULL;
    shoal_tensor_ctx *tensors = NULL;
    const char **preloads = calloc((size_t)argc, sizeof *preloads);
    int npreloads = 0, trace_mode = 0; /* 1: every call, 2: summary only */
    uint64_t nn_threads = 0;
    shoal_nn_registry *nn_models = NULL;
    shoal_nn_ctx *nn = NULL;
    shoal_trace *trace = NULL;
    RunTimer timer = {.done = 0};
    int timer_started = 0;
    shoal_error err;
    memset(&err, 0, sizeof err);
    if (!dirs || !dirbufs || !envs || !preloads) {
        fprintf(stderr, "shoal run: out of memory\n");
        goto done;
    }

    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *opt = argv[i], *val = NULL;
        if (!strcmp(opt, "--")) {
            i++;
            break;
        }
        if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
            run_usage(stdout);
            status = 0;
            goto done;
        }
        if (!strcmp(opt, "--trace") || !strcmp(opt, "--trace=summary")) {
            trace_mode = opt[7] ? 2 : 1;
            continue;
        }
        const char *eq = strchr(opt, '=');
        size_t nlen = eq && !strncmp(opt, "--", 2) ? (size_t)(eq - opt) : strlen(opt);
        static const char *const with_value[] = {"--dir",     "--env",        "--fuel",  "--timeout",
                                                    "--max-memory", "--device", "--memory",
                                                    "--nn-preload", "--nn-threads"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            if (strlen(with_value[k]) == nlen && !strncmp(opt, with_value[k], nlen))
                known = 1;
        if (!known) {
            fprintf(stderr, "shoal run: unknown option '%s'\n", opt);
            goto usage;
        }
        if (nlen < strlen(opt)) {
            val = opt + nlen + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "shoal run: %s needs a value\n", opt);
            goto usage;
        }
        if (!strncmp(opt, "--dir", nlen)) {
            char *copy = strdup(val);
            if (!copy) {
                fprintf(stderr, "shoal run: out of memory\n");
                goto done;
            }
            shoal_wasi_preopen *d = &dirs[ndirs];
            dirbufs[ndirs++] = copy; /* counted at once so that `done` frees it on every path */
            char *sep = strstr(copy, "::");
            if (sep)
                *sep = '\0';
            d->host_path = copy;
            d->guest_path = sep ? sep + 2 : copy;
            if (!d->host_path[0] || !d->guest_path[0]) {
                fprintf(stderr, "shoal run: --dir '%s': empty directory name\n", val);
                goto usage;
            }
        } else if (!strncmp(opt, "--env", nlen)) {
            if (!strchr(val, '=') || val[0] == '=') {
                fprintf(stderr, "shoal run: --env '%s': expected KEY=VALUE\n", val);
                goto usage;
            }
            envs[nenvs++] = val;
        } else if (!strncmp(opt, "--fuel", nlen)) {
            if (!run_parse_u64(val, &fuel) || fuel == 0) {
                fprintf(stderr, "shoal run: --fuel '%s': expected a positive integer\n", val);
                goto usage;
            }
        } else if (!strncmp(opt, "--nn-preload", nlen)) {
            preloads[npreloads++] = val;
        } else if (!strncmp(opt, "--nn-threads", nlen)) {
            if (!run_parse_u64(val, &nn_threads) || nn_threads > 1024) {
                fprintf(stderr, "shoal run: --nn-threads '%s': expected a number of threads\n", val);
                goto usage;
            }
        } else if (!strncmp(opt, "--device", nlen)) {
            device_name = val;
        } else if (!strncmp(opt, "--memory", nlen)) {
            if (shoal_memory_mode_parse(val, &memory_mode, &err) != SHOAL_OK) {
                fprintf(stderr, "shoal run: %s\n", err.message);
                goto usage;
            }
        } else if (!strncmp(opt, "--timeout", nlen)) {
            if (!run_parse_secs(val, &timeout)) {
                fprintf(stderr, "shoal run: --timeout '%s': expected a positive number of seconds\n", val);
                goto usage;
            }
        } else {
            if (!run_parse_size(val, &max_pages)) {
                fprintf(stderr, "shoal run: --max-memory '%s': expected a size of at least 64K "
                                "(suffixes K, M, G, P)\n", val);
                goto usage;
            }
        }
    }
    if (i >= argc) {
        fprintf(stderr, "shoal run: no module given\n");
        goto usage;
    }
    const char *path = argv[i];

    struct stat sb;
    if (stat(path, &sb) < 0) {
        fprintf(stderr, "shoal: cannot open '%s': %s\n", path, strerror(errno));
        goto done;
    }
    if (shoal_module_load_file(path, &module, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s: %s: %s\n", path, shoal_status_name(err.status), err.message);
        goto done;
    }
    if (!run_check_imports(path, module))
        goto done;

    shoal_wasi_config wc = {
        .argc = argc - i,
        .argv = (const char *const *)(argv + i),
        .envc = nenvs,
        .envp = envs,
        .npreopens = ndirs,
        .preopens = dirs,
        .stdin_fd = 0,
        .stdout_fd = 1,
        .stderr_fd = 2,
    };
    if (shoal_wasi_new(&wc, &wasi, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s\n", err.message);
        goto done;
    }
    if (!(imports = shoal_imports_new())) {
        fprintf(stderr, "shoal: out of memory\n");
        goto done;
    }
    if (shoal_wasi_add_imports(wasi, imports, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s\n", err.message);
        goto done;
    }
    /* The device's memory provider creates the guest's linear memory: with cuda/mapped the guest's bytes
     * are the GPU's buffer from the first page on. */
    if (shoal_device_open(device_name, memory_mode, &device, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: --device %s: %s\n", device_name, err.message);
        goto done;
    }
    if (shoal_tensor_ctx_new(device, &tensors, &err) != SHOAL_OK ||
        shoal_tensor_add_imports(tensors, imports, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s\n", err.message);
        goto done;
    }
    /* Models are preloaded once, on the host; the guest names them (wasi_ephemeral_nn, shoal_llm). */
    if (shoal_nn_registry_new(&nn_models, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s\n", err.message);
        goto done;
    }
    for (int k = 0; k < npreloads; k++) {
        if (shoal_nn_registry_preload(nn_models, preloads[k], (uint32_t)nn_threads, &err) != SHOAL_OK) {
            fprintf(stderr, "shoal: --nn-preload %s: %s\n", preloads[k], err.message);
            goto done;
        }
    }
    if (shoal_nn_ctx_new(nn_models, &nn, &err) != SHOAL_OK || shoal_nn_add_imports(nn, imports, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s\n", err.message);
        goto done;
    }
    shoal_nn_ctx_set_wasi(nn, wasi); /* shoal_llm save/restore: files in the --dir directories only */
    shoal_instance_config ic = {.limits = {.fuel = fuel, .max_memory_pages = max_pages},
                                .memory_provider = shoal_device_memory_provider(device)};
    if (trace_mode) {
        if (shoal_trace_new(module, 2, trace_mode == 1, &trace, &err) != SHOAL_OK) {
            fprintf(stderr, "shoal: %s\n", err.message);
            goto done;
        }
        shoal_trace_attach(trace, &ic);
        shoal_trace_start(trace);
    }
    shoal_status st = shoal_instantiate(module, imports, &ic, &instance, &err);
    if (st == SHOAL_ERR_TRAP) {
        run_report_trap(path, &err, 0, 0);
        status = RUN_EXIT_TRAP;
        goto done;
    }
    if (st == SHOAL_ERR_EXIT) { /* proc_exit from a start function */
        status = err.exit_code & 0xff;
        goto done;
    }
    if (st != SHOAL_OK) {
        fprintf(stderr, "shoal: %s: %s: %s\n", path, shoal_status_name(st), err.message);
        goto done;
    }

    if (timeout > 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = run_on_wake; /* no SA_RESTART: blocking host calls return EINTR */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
        timer.instance = instance;
        timer.secs = timeout;
        timer.main = pthread_self();
        pthread_mutex_init(&timer.lock, NULL);
        pthread_cond_init(&timer.cond, NULL);
        if (pthread_create(&timer.thread, NULL, run_timer_main, &timer) != 0) {
            fprintf(stderr, "shoal: cannot start the --timeout thread\n");
            goto done;
        }
        timer_started = 1;
    }

    int32_t code = 0;
    shoal_trace_start(trace);
    st = shoal_wasi_run(wasi, instance, &code, &err);
    fflush(stdout);
    shoal_trace_summary(trace, shoal_nn_ctx_device_ns(nn));
    int fired = 0;
    if (timer_started) {
        pthread_mutex_lock(&timer.lock);
        timer.done = 1;
        fired = timer.fired;
        pthread_cond_signal(&timer.cond);
        pthread_mutex_unlock(&timer.lock);
        pthread_join(timer.thread, NULL);
        timer_started = 0;
        pthread_mutex_destroy(&timer.lock);
        pthread_cond_destroy(&timer.cond);
    }
    fflush(stdout);
    if (st == SHOAL_OK) {
        status = code & 0xff;
    } else if (st == SHOAL_ERR_TRAP) {
        int timed_out = fired && err.trap == SHOAL_TRAP_INTERRUPTED;
        run_report_trap(path, &err, timed_out, timeout);
        status = timed_out ? RUN_EXIT_TIMEOUT : RUN_EXIT_TRAP;
    } else {
        fprintf(stderr, "shoal: %s: %s: %s\n", path, shoal_status_name(st), err.message);
    }
    goto done;

usage:
    fprintf(stderr, "`shoal run --help` describes the options.\n");
    status = RUN_EXIT_USAGE;
done:
    shoal_tensor_ctx_free(tensors); /* waits for the device before the memory goes */
    shoal_trace_free(trace);
    shoal_nn_ctx_free(nn);
    shoal_instance_free(instance);
    shoal_imports_free(imports);
    shoal_wasi_free(wasi);
    shoal_module_free(module);
    shoal_device_close(device);
    shoal_nn_registry_free(nn_models);
    free(preloads);
    for (int k = 0; dirbufs && k < ndirs; k++)
        free(dirbufs[k]);
    free(dirbufs);
    free(dirs);
    free(envs);
    return status;
}
