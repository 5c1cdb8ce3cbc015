/*
 * cmd_resume.c: `shoal resume FILE`: continues an actor frozen by `shoal run --snapshot-on-exit` or by the
 * guest's shoal_actor.checkpoint(), in this process, exactly where it stopped.
 *
 * Everything the guest had comes from the file: its module, memory, globals, tables and call stack, its
 * args, environment, directories and open files, its inference sessions with their KV caches. What
 * belongs to the machine can be re-bound: --dir HOST::GUEST gives a saved guest directory another host
 * directory, --nn-preload NAME:...:PATH another copy of a model (checked by identity), --device another
 * device (a CPU actor resumes on CUDA and back). The resumed actor lives on in FILE: its checkpoints and a
 * stop (SIGINT, SIGTERM, --timeout, --fuel) write FILE again, or the --snapshot-on-exit file if given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "guest.h"
#include "shoal.h"

static void resume_usage(FILE *out) {
    fprintf(out,
            "usage: shoal resume [options] FILE\n"
            "       shoal resume --info FILE\n"
            "\n"
            "Continues a guest frozen to the actor file FILE (by `shoal run --snapshot-on-exit FILE` or the\n"
            "guest's shoal_actor.checkpoint()) where it stopped: memory, call stack, WASI state (args,\n"
            "environment, directories, open files at their positions, clocks) and inference sessions with\n"
            "their KV caches. The module comes from the file.\n"
            "\n"
            "options:\n"
            "  --info               print what the file holds and exit\n"
            "  --dir HOST::GUEST    give the saved guest directory GUEST the host directory HOST instead of\n"
            "                       the saved one (repeatable)\n"
            "  --nn-preload NAME:GGML:AUTO|CPU|GPU:PATH\n"
            "                       load the actor's model NAME from PATH (its identity must match the\n"
            "                       saved one); models not given are loaded from their saved specs\n"
            "  --nn-threads N       CPU threads for preloaded models (default: all)\n"
            "  --device D           run on D (cpu, cuda, cuda:N) instead of the saved device\n"
            "  --memory M           guest memory mode (host, mapped, unified, copy)\n"
            "  --fuel N, --timeout SECS, --max-memory SIZE, --trace[=summary]   as for `shoal run`\n"
            "  --snapshot-on-exit FILE2\n"
            "                       freeze to FILE2 instead of FILE on a later stop or checkpoint\n"
            "  -h, --help           this text\n"
            "\n"
            "exit status: as `shoal run` (the guest's exit code; 75 when it was frozen again).\n");
}

static void print_info(const char *path, const shoal_actor_file *f) {
    shoal_actor_info in;
    shoal_actor_file_info(f, &in);
    time_t secs = (time_t)(in.created_unix_ns / 1000000000ull);
    struct tm tm;
    char when[64] = "?";
    if (gmtime_r(&secs, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    size_t wasi_len, nn_len;
    shoal_actor_file_wasi(f, &wasi_len);
    shoal_actor_file_nn(f, &nn_len);
    printf("actor file:   %s (%.2f MiB)\n", path, in.file_bytes / 1048576.0);
    printf("frozen:       %s by %s (Shoal %s), checkpoints taken: %u\n", when, in.reason, in.shoal_version,
           in.checkpoints);
    printf("device:       %s, memory %s\n", in.device, in.memory_mode);
    printf("memory:       %u pages (%.2f MiB), %.2f MiB saved (non-zero pages only)\n", in.memory_pages,
           in.memory_pages / 16.0, in.memory_bytes_saved / 1048576.0);
    printf("wasi state:   %zu bytes\n", wasi_len);
    printf("inference:    %zu bytes\n", nn_len);
}

int cmd_resume(int argc, char **argv) {
    guest_opts o;
    guest_env env;
    memset(&env, 0, sizeof env);
    shoal_actor_file *file = NULL;
    char **preloads = NULL;
    size_t npreloads = 0;
    bool info_only = false;
    /* --info is resume's own flag; the rest are shared with `shoal run`. */
    for (int k = 1; k < argc; k++)
        if (!strcmp(argv[k], "--info")) {
            info_only = true;
            memmove(argv + k, argv + k + 1, (size_t)(argc - k - 1) * sizeof *argv);
            argc--;
            break;
        }
    int first = 0, status = guest_parse("resume", argc, argv, &o, &first, resume_usage);
    if (status >= 0) goto done;
    status = GUEST_EXIT_USAGE;
    if (first >= argc) {
        fprintf(stderr, "shoal resume: no actor file given\n`shoal resume --help` describes the options.\n");
        goto done;
    }
    if (first + 1 < argc) {
        fprintf(stderr, "shoal resume: unexpected '%s' after the actor file (the guest's arguments are saved)\n",
                argv[first + 1]);
        goto done;
    }
    if (o.nenvs) {
        fprintf(stderr, "shoal resume: --env: the actor's environment is saved and cannot change\n");
        goto done;
    }
    status = GUEST_EXIT_FAIL;
    const char *path = argv[first];
    env.shown = path;
    shoal_error err;
    memset(&err, 0, sizeof err);
    if (shoal_actor_file_open(path, &file, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s\n", err.message);
        goto done;
    }
    if (info_only) {
        print_info(path, file);
        status = 0;
        goto done;
    }
    shoal_actor_info in;
    shoal_actor_file_info(file, &in);
    if (shoal_actor_file_module(file, &env.module, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s\n", err.message);
        goto done;
    }
    size_t wasi_len, nn_len;
    const uint8_t *wasi_state = shoal_actor_file_wasi(file, &wasi_len);
    const uint8_t *nn_state = shoal_actor_file_nn(file, &nn_len);
    shoal_wasi_config wc = {
        .npreopens = o.ndirs, .preopens = o.dirs, .stdin_fd = 0, .stdout_fd = 1, .stderr_fd = 2};
    if (shoal_wasi_state_load(&wc, wasi_state, wasi_len, &env.wasi, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s: the guest's WASI state: %s\n", path, err.message);
        goto done;
    }
    if (nn_state && shoal_nn_state_preloads(nn_state, nn_len, &preloads, &npreloads, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s: %s\n", path, err.message);
        goto done;
    }
    env.device_name = in.device; /* unless --device says otherwise */
    if (!o.snapshot_path) o.snapshot_path = path;
    if ((status = guest_env_setup(&env, &o, preloads, npreloads, in.checkpoints)) >= 0) goto done;
    status = GUEST_EXIT_FAIL;
    if (nn_state && shoal_nn_ctx_state_load(env.nn, nn_state, nn_len, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s: %s\n", path, err.message);
        goto done;
    }
    if (shoal_actor_file_instantiate(file, env.module, env.imports, &env.ic, &env.instance, &err) != SHOAL_OK) {
        fprintf(stderr, "shoal: %s: %s\n", path, err.message);
        goto done;
    }
    shoal_actor_file_close(file);
    file = NULL;
    env.device_name = NULL; /* pointed into the file's metadata (the actor keeps its own copy) */
    status = guest_env_run(&env, &o, true);
done:
    shoal_actor_file_close(file);
    free(preloads);
    guest_env_free(&env);
    guest_opts_free(&o);
    return status;
}
