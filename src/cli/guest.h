/*
 * guest.h: what `shoal run` and `shoal resume` share: their options, the guest's environment (device,
 * tensors, models, inference and actor state, imports), and the run itself with its --timeout watchdog,
 * SIGINT/SIGTERM handling and freezing of a stopped guest to its actor file (--snapshot-on-exit).
 */
#ifndef GUEST_H
#define GUEST_H

#include <stdint.h>

#include "shoal.h"

enum {
    GUEST_EXIT_FAIL = 1,
    GUEST_EXIT_USAGE = 2,
    GUEST_EXIT_FROZEN = 75, /* EX_TEMPFAIL: stopped and frozen to the actor file; `shoal resume` continues */
    GUEST_EXIT_TIMEOUT = 124,
    GUEST_EXIT_TRAP = 134,
};

typedef struct guest_opts {
    shoal_wasi_preopen *dirs;
    char **dirbufs;
    const char **envs, **preloads;
    int ndirs, nenvs, npreloads;
    uint64_t fuel, nn_threads;
    uint32_t max_pages;
    double timeout;
    const char *device_name; /* NULL: not given */
    shoal_memory_mode memory_mode;
    bool memory_given;
    int trace_mode; /* 1: every call, 2: summary only */
    const char *snapshot_path; /* --snapshot-on-exit */
} guest_opts;

/* Parses the options of `shoal <cmd>` up to the first operand (*first). Returns -1 to go on, else the exit
 * status (0 after --help, GUEST_EXIT_USAGE). usage prints the command's help. */
int guest_parse(const char *cmd, int argc, char **argv, guest_opts *o, int *first, void (*usage)(FILE *));
void guest_opts_free(guest_opts *o);

typedef struct guest_env {
    const char *shown; /* the module's (or actor file's) name for messages */
    shoal_module *module;
    shoal_wasi *wasi;
    shoal_imports *imports;
    shoal_device *device;
    shoal_tensor_ctx *tensors;
    shoal_nn_registry *models;
    shoal_nn_ctx *nn;
    shoal_trace *trace;
    shoal_actor *actor;
    shoal_instance *instance;
    shoal_instance_config ic;
    const char *device_name;
} guest_env;

/* Opens the device and builds tensors, models (o's preloads, then extra_preloads for names o does not
 * give), the inference context and the import set around env->module and env->wasi (both set by the
 * caller). checkpoints: carried from a resumed actor. Returns -1 on success, else the exit status (after
 * printing why). */
int guest_env_setup(guest_env *env, const guest_opts *o, char **extra_preloads, size_t n_extra,
                    uint32_t checkpoints);
/* Runs (resume false: _start via WASI; true: the stopped call of a resumed instance) under o's watchdog
 * and signals; freezes the guest to o->snapshot_path when it is stopped and one is given. Returns the exit
 * status. */
int guest_env_run(guest_env *env, const guest_opts *o, bool resume);
void guest_env_free(guest_env *env);
/* Prints a trap: kind, the --timeout that caused it, the host's reason, function and code offset. */
void guest_report_trap(const char *shown, const shoal_error *err, int timed_out, double secs);

#endif
