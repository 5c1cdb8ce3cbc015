/*
 * complete: one prompt through wasi_ephemeral_nn, options from the command line (the same names as
 * `shoal generate`). The text goes to stdout; the output-1 counters to stderr with --counters.
 *
 *   shoal run --nn-preload default:GGML:AUTO:model.bin complete.wasm --prompt "Once upon" -n 64 --seed 1
 *   --stream: token by token with compute_single/get_output_single instead of one compute.
 *   --timings: decode tokens/s measured in the guest (stderr), counted as `shoal generate` counts them: the
 *   tokens after the first, over the time after the prompt's prefill. With one compute the prefill cannot be
 *   seen from the guest, so a first compute with n-predict 1 (fresh context) measures it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shoal_guest.h"

static char out[1 << 20];

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int fail(const char *what, int32_t rc) {
    fprintf(stderr, "complete: %s failed: errno %d\n", what, (int)rc);
    return 1;
}

int main(int argc, char **argv) {
    const char *model = "default", *prompt = "Once upon a time";
    char opts[1024];
    size_t ol = 0;
    int stream = 0, counters = 0, timings = 0;
    opts[ol++] = '{';
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char *key = NULL;
        if (!strcmp(a, "--stream")) {
            stream = 1;
            continue;
        }
        if (!strcmp(a, "--counters")) {
            counters = 1;
            continue;
        }
        if (!strcmp(a, "--timings")) {
            timings = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "complete: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--prompt") || !strcmp(a, "-p"))
            prompt = v;
        else if (!strcmp(a, "-n"))
            key = "n-predict";
        else if (!strcmp(a, "--temp"))
            key = "temp";
        else if (!strcmp(a, "--top-k"))
            key = "top-k";
        else if (!strcmp(a, "--top-p"))
            key = "top-p";
        else if (!strcmp(a, "--min-p"))
            key = "min-p";
        else if (!strcmp(a, "--repeat-penalty"))
            key = "repeat-penalty";
        else if (!strcmp(a, "--repeat-last-n"))
            key = "repeat-last-n";
        else if (!strcmp(a, "--seed"))
            key = "seed";
        else if (!strcmp(a, "--ctx"))
            key = "ctx-size";
        else {
            fprintf(stderr, "complete: unknown option %s\n", a);
            return 2;
        }
        if (key) {
            char *end;
            strtod(v, &end);
            if (*end || end == v) {
                fprintf(stderr, "complete: %s expects a number\n", a);
                return 2;
            }
            int w = snprintf(opts + ol, sizeof opts - ol, "%s\"%s\": %s", ol > 1 ? ", " : "", key, v);
            if (w < 0 || (size_t)w >= sizeof opts - ol)
                return 2;
            ol += (size_t)w;
        }
    }
    opts[ol++] = '}';

    uint32_t graph, ctx, dims[1] = {1}, n = 0;
    int32_t rc;
    if ((rc = wasi_nn_load_by_name(model, (uint32_t)strlen(model), &graph)))
        return fail("load_by_name", rc);
    wasi_nn_tensor t = {dims, 1, WASI_NN_TYPE_U8, {0}, opts, (uint32_t)ol};
    double prefill_s = 0;
    if (timings && !stream) { /* the time of prefill + first token, in a context of its own */
        static const char one[] = "{\"n-predict\": 1}";
        if ((rc = wasi_nn_init_execution_context(graph, &ctx)) || (rc = wasi_nn_set_input(ctx, 1, &t)))
            return fail("timing context", rc);
        wasi_nn_tensor t1 = {dims, 1, WASI_NN_TYPE_U8, {0}, one, sizeof one - 1};
        t.data = prompt;
        t.len = (uint32_t)strlen(prompt);
        if ((rc = wasi_nn_set_input(ctx, 1, &t1)) || (rc = wasi_nn_set_input(ctx, 0, &t)))
            return fail("timing input", rc);
        double t0 = now_s();
        if ((rc = wasi_nn_compute(ctx)))
            return fail("timing compute", rc);
        prefill_s = now_s() - t0;
        wasi_nn_finalize_execution_context(ctx);
        t.data = opts;
        t.len = (uint32_t)ol;
    }
    if ((rc = wasi_nn_init_execution_context(graph, &ctx)))
        return fail("init_execution_context", rc);
    if ((rc = wasi_nn_set_input(ctx, 1, &t)))
        return fail("set_input(options)", rc);
    t.data = prompt;
    t.len = (uint32_t)strlen(prompt);
    if ((rc = wasi_nn_set_input(ctx, 0, &t)))
        return fail("set_input(prompt)", rc);
    uint32_t tokens = 0;
    double t_start = now_s(), t_first = 0, t_end;
    if (stream) {
        while ((rc = wasi_nn_compute_single(ctx)) == 0) {
            if (tokens++ == 0)
                t_first = now_s();
            if ((rc = wasi_nn_get_output_single(ctx, 0, out, sizeof out, &n)))
                return fail("get_output_single", rc);
            fwrite(out, 1, n, stdout);
            fflush(stdout);
        }
        t_end = now_s();
        if (rc != WASI_NN_END_OF_SEQUENCE && rc != WASI_NN_CONTEXT_FULL)
            return fail("compute_single", rc);
    } else {
        if ((rc = wasi_nn_compute(ctx)) && rc != WASI_NN_CONTEXT_FULL)
            return fail("compute", rc);
        t_end = now_s();
        t_first = t_start + prefill_s;
        if ((rc = wasi_nn_get_output(ctx, 0, out, sizeof out, &n)))
            return fail("get_output", rc);
        fwrite(out, 1, n, stdout);
        if (timings && wasi_nn_get_output(ctx, 1, out, sizeof out - 1, &n) == 0) {
            out[n] = 0;
            const char *p = strstr(out, "\"output_tokens\": ");
            tokens = p ? (uint32_t)strtoul(p + 17, NULL, 10) : 0;
        }
    }
    if (timings)
        fprintf(stderr, "timings: decode %.2f tok/s (%u tokens)\n",
                tokens > 1 && t_end > t_first ? (tokens - 1) / (t_end - t_first) : 0.0, tokens);
    printf("\n");
    if (counters) {
        if ((rc = wasi_nn_get_output(ctx, 1, out, sizeof out - 1, &n)))
            return fail("get_output(1)", rc);
        out[n] = 0;
        fprintf(stderr, "%s\n", out);
    }
    if (stream)
        wasi_nn_fini_single(ctx);
    wasi_nn_finalize_execution_context(ctx);
    wasi_nn_unload(graph);
    return 0;
}
