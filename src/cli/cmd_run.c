/*
 * cmd_run.c: `shoal run`: runs a wasm32-wasi (preview1) command module.
 *
 * Exit status: the guest's own (0 when _start returns, proc_exit's code otherwise, as the host truncates
 * it to 0..255); 1 when the module cannot be run at all (missing file, malformed or invalid module,
 * unresolvable import, failed instantiation); 2 for a usage error; 124 when --timeout expired; 134
 * (128 + SIGABRT, as other runtimes do) when the guest trapped, fuel exhaustion included.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "guest.h"
#include "shoal.h"

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
            "  --snapshot-on-exit FILE\n"
            "                       when the guest is stopped (SIGINT, SIGTERM, --timeout, --fuel), freeze\n"
            "                       it to the actor file FILE instead of ending it (exit status 75), and\n"
            "                       let the guest's shoal_actor.checkpoint() write FILE; `shoal resume FILE`\n"
            "                       continues it, in this process's place or on another machine\n"
            "  --trace[=summary]    print each host call (arguments, result, duration, bytes moved) and at\n"
            "                       exit a summary of time in the guest, in host calls and on the device\n"
            "  -h, --help           this text\n"
            "\n"
            "exit status: the guest's exit code (proc_exit, or 0 when _start returns); 1 when the module\n"
            "cannot be loaded, linked or instantiated; 2 for a usage error; 124 when --timeout expired;\n"
            "134 when the guest trapped (the trap, function and code offset are printed to stderr); 75 when\n"
            "it was stopped and frozen to its --snapshot-on-exit file.\n");
}

/* Imports outside wasi_snapshot_preview1 can never resolve under `shoal run`: name the first one. */
static int run_check_imports(const char *path, const shoal_module *m) {
    uint32_t n = shoal_module_import_count(m);
    for (uint32_t i = 0; i < n; i++) {
        shoal_extern_desc d;
        if (shoal_module_import(m, i, &d) && strcmp(d.module, "wasi_snapshot_preview1") != 0 &&
            strcmp(d.module, "shoal_tensor") != 0 && strcmp(d.module, "wasi_ephemeral_nn") != 0 &&
            strcmp(d.module, "shoal_llm") != 0 && strcmp(d.module, "shoal_actor") != 0) {
            static const char *const kinds[] = {"function", "table", "memory", "global"};
            fprintf(stderr,
                    "shoal: %s: unresolvable import: %s \"%s\" \"%s\" (shoal run provides "
                    "wasi_snapshot_preview1, shoal_tensor, wasi_ephemeral_nn, shoal_llm and shoal_actor)\n",
                    path, d.kind <= SHOAL_EXTERN_GLOBAL ? kinds[d.kind] : "extern", d.module, d.name);
            return 0;
        }
    }
    return 1;
}

/* --- the command --------------------------------------------------------------------------------------- */

int cmd_run(int argc, char **argv) {
    guest_opts o;
    guest_env env;
    memset(&env, 0, sizeof env);
    int first = 0, status = guest_parse("run", argc, argv, &o, &first, run_usage);
    if (status >= 0) goto done;
    status = GUEST_EXIT_FAIL;
    if (first >= argc) {
        fprintf(stderr, "shoal run: no module given\n`shoal run --help` describes the options.\n");
        status = GUEST_EXIT_USAGE;
        goto done;
    }
    const char *path = argv[first];
    env.shown = path;
    shoal_error err;
    memset(&err, 0, sizeof err);
    struct stat sb;
    if (stat(path, &sb) < 0) {
        fprintf(stderr, "shoal: cannot open '%s': %s\n", path, strerror(errno));
        goto done;
    }
    if (shoal_module_load_file(path, &env.module, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s: %s: %s\n", path, shoal_status_name(err.status), err.message);
        goto done;
    }
    if (!run_check_imports(path, env.module)) goto done;

    shoal_wasi_config wc = {
        .argc = argc - first,
        .argv = (const char *const *)(argv + first),
        .envc = o.nenvs,
        .envp = o.envs,
        .npreopens = o.ndirs,
        .preopens = o.dirs,
        .stdin_fd = 0,
        .stdout_fd = 1,
        .stderr_fd = 2,
    };
    if (shoal_wasi_new(&wc, &env.wasi, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s\n", err.message);
        goto done;
    }
    if ((status = guest_env_setup(&env, &o, NULL, 0, 0)) >= 0) goto done;
    status = GUEST_EXIT_FAIL;
    shoal_status st = shoal_instantiate(env.module, env.imports, &env.ic, &env.instance, &err);
    if (st == SHOAL_ERR_TRAP) {
        guest_report_trap(path, &err, 0, 0);
        status = GUEST_EXIT_TRAP;
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
    status = guest_env_run(&env, &o, false);
done:
    guest_env_free(&env);
    guest_opts_free(&o);
    return status;
}
