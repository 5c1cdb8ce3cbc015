/*
 * guest.c: see guest.h. The options and run loop of `shoal run` and `shoal resume`.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest.h"

/* --- option parsing ---------------------------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    if (!*s || *s == '-') return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return 0;
    *out = v;
    return 1;
}

/* SIZE -> pages: "65536", "64K", "16M", "1G", "10P" (pages). */
static int parse_size(const char *s, uint32_t *pages) {
    char *end;
    if (!*s || *s == '-') return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return 0;
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
    if (n == 0) return 0;
    *pages = n > 65536 ? 65536 : (uint32_t)n;
    return 1;
}

static int parse_secs(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 1e9) return 0;
    *out = v;
    return 1;
}

int guest_parse(const char *cmd, int argc, char **argv, guest_opts *o, int *first, void (*usage)(FILE *)) {
    memset(o, 0, sizeof *o);
    o->dirs = calloc((size_t)argc, sizeof *o->dirs);
    o->dirbufs = calloc((size_t)argc, sizeof *o->dirbufs);
    o->envs = calloc((size_t)argc, sizeof *o->envs);
    o->preloads = calloc((size_t)argc, sizeof *o->preloads);
    if (!o->dirs || !o->dirbufs || !o->envs || !o->preloads) {
        fprintf(stderr, "shoal %s: out of memory\n", cmd);
        return GUEST_EXIT_FAIL;
    }
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *opt = argv[i], *val = NULL;
        if (!strcmp(opt, "--")) {
            i++;
            break;
        }
        if (!strcmp(opt, "-h") || !strcmp(opt, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(opt, "--trace") || !strcmp(opt, "--trace=summary")) {
            o->trace_mode = opt[7] ? 2 : 1;
            continue;
        }
        const char *eq = strchr(opt, '=');
        size_t nlen = eq && !strncmp(opt, "--", 2) ? (size_t)(eq - opt) : strlen(opt);
        static const char *const with_value[] = {"--dir",        "--env",        "--fuel",   "--timeout",
                                                 "--max-memory", "--device",     "--memory", "--nn-preload",
                                                 "--nn-threads", "--snapshot-on-exit"};
        const char *name = NULL;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            if (strlen(with_value[k]) == nlen && !strncmp(opt, with_value[k], nlen)) name = with_value[k];
        if (!name) {
            fprintf(stderr, "shoal %s: unknown option '%s'\n", cmd, opt);
            goto usage;
        }
        if (nlen < strlen(opt)) {
            val = opt + nlen + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            fprintf(stderr, "shoal %s: %s needs a value\n", cmd, opt);
            goto usage;
        }
        if (!strcmp(name, "--dir")) {
            char *copy = strdup(val);
            if (!copy) {
                fprintf(stderr, "shoal %s: out of memory\n", cmd);
                return GUEST_EXIT_FAIL;
            }
            shoal_wasi_preopen *d = &o->dirs[o->ndirs];
            o->dirbufs[o->ndirs++] = copy; /* counted at once so that guest_opts_free frees it */
            char *sep = strstr(copy, "::");
            if (sep) *sep = '\0';
            d->host_path = copy;
            d->guest_path = sep ? sep + 2 : copy;
            if (!d->host_path[0] || !d->guest_path[0]) {
                fprintf(stderr, "shoal %s: --dir '%s': empty directory name\n", cmd, val);
                goto usage;
            }
        } else if (!strcmp(name, "--env")) {
            if (!strchr(val, '=') || val[0] == '=') {
                fprintf(stderr, "shoal %s: --env '%s': expected KEY=VALUE\n", cmd, val);
                goto usage;
            }
            o->envs[o->nenvs++] = val;
        } else if (!strcmp(name, "--fuel")) {
            if (!parse_u64(val, &o->fuel) || o->fuel == 0) {
                fprintf(stderr, "shoal %s: --fuel '%s': expected a positive integer\n", cmd, val);
                goto usage;
            }
        } else if (!strcmp(name, "--nn-preload")) {
            o->preloads[o->npreloads++] = val;
        } else if (!strcmp(name, "--nn-threads")) {
            if (!parse_u64(val, &o->nn_threads) || o->nn_threads > 1024) {
                fprintf(stderr, "shoal %s: --nn-threads '%s': expected a number of threads\n", cmd, val);
                goto usage;
            }
        } else if (!strcmp(name, "--device")) {
            o->device_name = val;
        } else if (!strcmp(name, "--memory")) {
            shoal_error err;
            if (shoal_memory_mode_parse(val, &o->memory_mode, &err) != SHOAL_OK) {
                fprintf(stderr, "shoal %s: %s\n", cmd, err.message);
                goto usage;
            }
            o->memory_given = true;
        } else if (!strcmp(name, "--timeout")) {
            if (!parse_secs(val, &o->timeout)) {
                fprintf(stderr, "shoal %s: --timeout '%s': expected a positive number of seconds\n", cmd, val);
                goto usage;
            }
        } else if (!strcmp(name, "--snapshot-on-exit")) {
            if (!*val) {
                fprintf(stderr, "shoal %s: --snapshot-on-exit needs a file name\n", cmd);
                goto usage;
            }
            o->snapshot_path = val;
        } else if (!parse_size(val, &o->max_pages)) {
            fprintf(stderr, "shoal %s: --max-memory '%s': expected a size of at least 64K (suffixes K, M, G, P)\n",
                    cmd, val);
            goto usage;
        }
    }
    *first = i;
    return -1;
usage:
    fprintf(stderr, "`shoal %s --help` describes the options.\n", cmd);
    return GUEST_EXIT_USAGE;
}

void guest_opts_free(guest_opts *o) {
    for (int k = 0; o->dirbufs && k < o->ndirs; k++) free(o->dirbufs[k]);
    free(o->dirbufs);
    free(o->dirs);
    free(o->envs);
    free(o->preloads);
    memset(o, 0, sizeof *o);
}

/* --- the environment --------------------------------------------------------------------------------- */

/* The NAME of a preload spec NAME:ENCODING:TARGET:PATH. */
static size_t preload_name_len(const char *spec) {
    const char *c = strchr(spec, ':');
    return c ? (size_t)(c - spec) : strlen(spec);
}

int guest_env_setup(guest_env *env, const guest_opts *o, char **extra_preloads, size_t n_extra,
                    uint32_t checkpoints) {
    shoal_error err;
    memset(&err, 0, sizeof err);
    env->device_name = o->device_name ? o->device_name : env->device_name ? env->device_name : "cpu";
    shoal_memory_mode mode = o->memory_given ? o->memory_mode : SHOAL_MEMORY_DEFAULT;
    if (!(env->imports = shoal_imports_new())) {
        fprintf(stderr, "shoal: out of memory\n");
        return GUEST_EXIT_FAIL;
    }
    if (shoal_wasi_add_imports(env->wasi, env->imports, &err) != SHOAL_OK) goto fail;
    /* The device's memory provider creates the guest's linear memory: with cuda/mapped the guest's bytes
     * are the GPU's buffer from the first page on. */
    if (shoal_device_open(env->device_name, mode, &env->device, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: --device %s: %s\n", env->device_name, err.message);
        return GUEST_EXIT_FAIL;
    }
    if (shoal_tensor_ctx_new(env->device, &env->tensors, &err) != SHOAL_OK ||
        shoal_tensor_add_imports(env->tensors, env->imports, &err) != SHOAL_OK)
        goto fail;
    /* Models are preloaded once, on the host; the guest names them (wasi_ephemeral_nn, shoal_llm). */
    if (shoal_nn_registry_new(&env->models, &err) != SHOAL_OK) goto fail;
    for (int k = 0; k < o->npreloads; k++)
        if (shoal_nn_registry_preload(env->models, o->preloads[k], (uint32_t)o->nn_threads, &err) != SHOAL_OK) {
            fprintf(stderr, "shoal: --nn-preload %s: %s\n", o->preloads[k], err.message);
            return GUEST_EXIT_FAIL;
        }
    for (size_t k = 0; k < n_extra; k++) { /* a resumed actor's own models, unless re-bound above */
        size_t nl = preload_name_len(extra_preloads[k]);
        bool given = false;
        for (int j = 0; j < o->npreloads; j++)
            if (preload_name_len(o->preloads[j]) == nl && !strncmp(o->preloads[j], extra_preloads[k], nl)) given = true;
        if (given) continue;
        if (shoal_nn_registry_preload(env->models, extra_preloads[k], (uint32_t)o->nn_threads, &err) != SHOAL_OK) {
            fprintf(stderr, "shoal: the actor's model %s: %s (re-bind it with --nn-preload)\n", extra_preloads[k],
                    err.message);
            return GUEST_EXIT_FAIL;
        }
    }
    if (shoal_nn_ctx_new(env->models, &env->nn, &err) != SHOAL_OK ||
        shoal_nn_add_imports(env->nn, env->imports, &err) != SHOAL_OK)
        goto fail;
    shoal_nn_ctx_set_wasi(env->nn, env->wasi); /* shoal_llm save/restore: files in the --dir directories only */
    shoal_actor_config ac = {.wasi = env->wasi,
                             .nn = env->nn,
                             .tensors = env->tensors,
                             .checkpoint_path = o->snapshot_path,
                             .device = env->device_name,
                             .memory_mode = shoal_memory_mode_name(mode),
                             .checkpoints = checkpoints};
    if (shoal_actor_new(env->module, &ac, &env->actor, &err) != SHOAL_OK ||
        shoal_actor_add_imports(env->actor, env->imports, &err) != SHOAL_OK)
        goto fail;
    env->ic = (shoal_instance_config){.limits = {.fuel = o->fuel, .max_memory_pages = o->max_pages},
                                      .memory_provider = shoal_device_memory_provider(env->device)};
    if (o->trace_mode) {
        if (shoal_trace_new(env->module, 2, o->trace_mode == 1, &env->trace, &err) != SHOAL_OK) goto fail;
        shoal_trace_attach(env->trace, &env->ic);
        shoal_trace_start(env->trace);
    }
    return -1;
fail:
    fprintf(stderr, "shoal: %s\n", err.message);
    return GUEST_EXIT_FAIL;
}

void guest_env_free(guest_env *env) {
    shoal_tensor_ctx_free(env->tensors); /* waits for the device before the memory goes */
    shoal_trace_free(env->trace);
    shoal_nn_ctx_free(env->nn);
    shoal_instance_free(env->instance);
    shoal_actor_free(env->actor);
    shoal_imports_free(env->imports);
    shoal_wasi_free(env->wasi);
    shoal_module_free(env->module);
    shoal_device_close(env->device);
    shoal_nn_registry_free(env->models);
    memset(env, 0, sizeof *env);
}

/* --- stopping: the --timeout watchdog and SIGINT/SIGTERM --------------------------------------------- */

typedef struct guest_timer {
    pthread_t thread, main;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    shoal_instance *instance;
    double secs;
    int done;  /* set by the main thread when the guest has finished */
    int fired; /* set by the timer when it interrupted the guest */
} guest_timer;

static void on_wake(int sig) { (void)sig; }

/* Waits for the deadline, then interrupts the guest and keeps nudging the main thread with SIGUSR1 (no
 * SA_RESTART) so that a guest blocked in a host call (poll_oneoff, a read of stdin) returns to Wasm and
 * meets the interrupt. */
static void *timer_main(void *arg) {
    guest_timer *t = arg;
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
    while (!t->done)
        if (pthread_cond_timedwait(&t->cond, &t->lock, &deadline) == ETIMEDOUT) break;
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

/* SIGINT/SIGTERM under --snapshot-on-exit: stop the guest at its next safe point instead of dying. */
static shoal_instance *_Atomic stop_target;
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) {
    stop_signal = sig;
    shoal_instance *inst = atomic_load(&stop_target);
    if (inst) shoal_instance_interrupt(inst);
}

void guest_report_trap(const char *shown, const shoal_error *err, int timed_out, double secs) {
    fprintf(stderr, "shoal: %s: trap: %s", shown, shoal_trap_message(err->trap));
    if (timed_out) fprintf(stderr, " (--timeout %gs expired)", secs);
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

/* Writes the stopped guest to its actor file. Returns the exit status. */
static int freeze(guest_env *env, const guest_opts *o, const char *reason, int fallback) {
    shoal_error err;
    memset(&err, 0, sizeof err);
    if (shoal_actor_save(env->actor, env->instance, o->snapshot_path, reason, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s: stopped (%s), but the actor could not be frozen: %s\n", env->shown, reason,
                err.message);
        return fallback;
    }
    fprintf(stderr, "shoal: %s: stopped (%s); actor frozen to %s\n    continue it with: shoal resume %s\n",
            env->shown, reason, o->snapshot_path, o->snapshot_path);
    return GUEST_EXIT_FROZEN;
}

int guest_env_run(guest_env *env, const guest_opts *o, bool resume) {
    guest_timer timer = {.done = 0};
    int timer_started = 0, status = GUEST_EXIT_FAIL;
    struct sigaction old_int, old_term;
    bool signals = o->snapshot_path != NULL;
    if (o->timeout > 0 || signals) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_wake; /* no SA_RESTART: blocking host calls return EINTR */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);
    }
    if (signals) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        stop_signal = 0;
        atomic_store(&stop_target, env->instance);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
    }
    if (o->timeout > 0) {
        timer.instance = env->instance;
        timer.secs = o->timeout;
        timer.main = pthread_self();
        pthread_mutex_init(&timer.lock, NULL);
        pthread_cond_init(&timer.cond, NULL);
        if (pthread_create(&timer.thread, NULL, timer_main, &timer) != 0) {
            fprintf(stderr, "shoal: cannot start the --timeout thread\n");
            goto done;
        }
        timer_started = 1;
    }

    shoal_error err;
    memset(&err, 0, sizeof err);
    int32_t code = 0;
    shoal_trace_start(env->trace);
    shoal_status st = resume ? shoal_actor_resume(env->instance, &code, &err)
                             : shoal_wasi_run(env->wasi, env->instance, &code, &err);
    fflush(stdout);
    shoal_trace_summary(env->trace, shoal_nn_ctx_device_ns(env->nn));
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
    if (signals) atomic_store(&stop_target, NULL);
    fflush(stdout);
    if (st == SHOAL_OK) {
        status = code & 0xff;
    } else if (st == SHOAL_ERR_TRAP) {
        bool interrupted = err.trap == SHOAL_TRAP_INTERRUPTED, out_of_fuel = err.trap == SHOAL_TRAP_FUEL_EXHAUSTED;
        int timed_out = fired && interrupted;
        int sig = stop_signal;
        int fallback = timed_out ? GUEST_EXIT_TIMEOUT : sig && interrupted ? 128 + sig : GUEST_EXIT_TRAP;
        if (o->snapshot_path && (interrupted || out_of_fuel)) {
            char reason[64];
            if (sig && interrupted)
                snprintf(reason, sizeof reason, "%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
            else
                snprintf(reason, sizeof reason, "%s", out_of_fuel ? "fuel exhausted" : "timeout");
            status = freeze(env, o, reason, fallback);
        } else {
            guest_report_trap(env->shown, &err, timed_out, o->timeout);
            status = fallback;
        }
    } else {
        fprintf(stderr, "shoal: %s: %s: %s\n", env->shown, shoal_status_name(st), err.message);
    }
done:
    if (timer_started) {
        pthread_mutex_lock(&timer.lock);
        timer.done = 1;
        pthread_cond_signal(&timer.cond);
        pthread_mutex_unlock(&timer.lock);
        pthread_join(timer.thread, NULL);
    }
    if (signals) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    return status;
}
