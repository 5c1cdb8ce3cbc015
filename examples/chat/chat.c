/*
 * chat: an interactive chat over wasi_ephemeral_nn, as LlamaEdge's chat does it: the guest keeps the
 * history, renders it with a chat template (Llama 3 by default) and re-sends all of it each turn; the
 * reply streams token by token (compute_single / get_output_single). Shoal notices that each prompt extends
 * what the context's KV cache holds and prefills only the new part: --counters prints, per turn, the
 * output-1 counters (input, reused and prefilled tokens) to stderr. --fresh uses a new execution context
 * each turn (no reuse: the comparison the prefix-reuse test makes). --timings prints each turn's decode
 * tokens/s measured in the guest (tokens after the first over the time after it, as `shoal generate`).
 *
 *   shoal run --nn-preload default:GGML:AUTO:model.gguf chat.wasm [--system TEXT] [--template llama3|plain]
 *             [-n N] [--temp T] [--seed S] [--ctx N] [--counters] [--fresh]      (one user message per line)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shoal_guest.h"

static char history[1 << 18], line[8192], piece[4096], meta[1024];
static size_t hlen;

static int append(const char *s, size_t n) {
    if (hlen + n >= sizeof history)
        return 0;
    memcpy(history + hlen, s, n);
    hlen += n;
    history[hlen] = 0;
    return 1;
}
static int appends(const char *s) { return append(s, strlen(s)); }

/* Opens one message of the template; close_msg ends it. */
static int open_msg(int llama3, const char *role) {
    if (llama3)
        return appends("<|start_header_id|>") && appends(role) && appends("<|end_header_id|>\n\n");
    return appends(!strcmp(role, "user") ? "User: " : !strcmp(role, "system") ? "System: " : "Assistant:");
}
static int close_msg(int llama3) { return appends(llama3 ? "<|eot_id|>" : "\n"); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long counter(const char *json, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(json, pat);
    return p ? strtol(p + strlen(pat), NULL, 10) : -1;
}

int main(int argc, char **argv) {
    const char *system = NULL, *model = "default";
    int llama3 = 1, counters = 0, fresh = 0, timings = 0;
    char opts[512];
    const char *n_predict = "128";
    size_t ol = (size_t)snprintf(opts, sizeof opts, "{\"stream-stdout\": false");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--counters")) {
            counters = 1;
            continue;
        }
        if (!strcmp(a, "--timings")) {
            timings = 1;
            continue;
        }
        if (!strcmp(a, "--fresh")) {
            fresh = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "chat: %s needs a value\n", a);
            return 2;
        }
        i++;
        const char *key = NULL;
        if (!strcmp(a, "--system"))
            system = v;
        else if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--template"))
            llama3 = strcmp(v, "plain") != 0;
        else if (!strcmp(a, "-n"))
            n_predict = v;
        else if (!strcmp(a, "--temp"))
            key = "temp";
        else if (!strcmp(a, "--seed"))
            key = "seed";
        else if (!strcmp(a, "--ctx"))
            key = "ctx-size";
        else {
            fprintf(stderr, "chat: unknown option %s\n", a);
            return 2;
        }
        if (key) {
            char *end;
            strtod(v, &end);
            if (end == v || *end)
                return 2;
            ol += (size_t)snprintf(opts + ol, sizeof opts - ol, ", \"%s\": %s", key, v);
            if (ol >= sizeof opts - 2)
                return 2;
        }
    }
    char *end;
    if (strtol(n_predict, &end, 10) < -1 || *end || end == n_predict)
        return 2;
    ol += (size_t)snprintf(opts + ol, sizeof opts - ol, ", \"n-predict\": %s}", n_predict);
    if (ol >= sizeof opts)
        return 2;

    uint32_t graph, ctx = 0, dims[1] = {1}, n;
    int32_t rc = wasi_nn_load_by_name_with_config(model, (uint32_t)strlen(model), opts, (uint32_t)ol, &graph);
    if (rc) {
        fprintf(stderr, "chat: cannot load model '%s' (errno %d)\n", model, (int)rc);
        return 1;
    }
    if (llama3)
        appends("<|begin_of_text|>");
    if (system && !(open_msg(llama3, "system") && appends(system) && close_msg(llama3)))
        return 1;
    int have_ctx = 0;
    int tty = isatty(0);
    if (tty)
        fprintf(stderr, "chat: one message per line; end with ^D\n> ");
    for (int turn = 1; fgets(line, sizeof line, stdin); turn++) {
        line[strcspn(line, "\n")] = 0;
        if (!(open_msg(llama3, "user") && appends(line) && close_msg(llama3) && open_msg(llama3, "assistant"))) {
            fprintf(stderr, "chat: the history is full\n");
            return 1;
        }
        if (fresh && have_ctx) {
            wasi_nn_finalize_execution_context(ctx);
            have_ctx = 0;
        }
        if (!have_ctx) {
            if ((rc = wasi_nn_init_execution_context(graph, &ctx))) {
                fprintf(stderr, "chat: init_execution_context: errno %d\n", (int)rc);
                return 1;
            }
            have_ctx = 1;
        }
        wasi_nn_tensor t = {dims, 1, WASI_NN_TYPE_U8, {0}, history, (uint32_t)hlen};
        if ((rc = wasi_nn_set_input(ctx, 0, &t))) {
            fprintf(stderr, "chat: set_input: errno %d\n", (int)rc);
            return 1;
        }
        uint32_t tokens = 0;
        double t_first = 0;
        while ((rc = wasi_nn_compute_single(ctx)) == 0) {
            if (tokens++ == 0)
                t_first = now_s();
            if ((rc = wasi_nn_get_output_single(ctx, 0, piece, sizeof piece, &n)))
                break;
            fwrite(piece, 1, n, stdout);
            fflush(stdout);
            if (!append(piece, n))
                break;
        }
        if (rc != WASI_NN_END_OF_SEQUENCE && rc != 0) {
            fprintf(stderr, "\nchat: generation stopped: errno %d\n", (int)rc);
            if (rc != WASI_NN_CONTEXT_FULL)
                return 1;
        }
        double t_end = now_s();
        printf("\n");
        fflush(stdout);
        if (timings)
            fprintf(stderr, "timings: decode %.2f tok/s (%u tokens)\n",
                    tokens > 1 && t_end > t_first ? (tokens - 1) / (t_end - t_first) : 0.0, tokens);
        if (counters && wasi_nn_get_output(ctx, 1, meta, sizeof meta - 1, &n) == 0) {
            meta[n] = 0;
            fprintf(stderr, "turn %d: input_tokens %ld reused_tokens %ld prefilled_tokens %ld output_tokens %ld\n",
                    turn, counter(meta, "input_tokens"), counter(meta, "reused_tokens"),
                    counter(meta, "prefilled_tokens"), counter(meta, "output_tokens"));
        }
        wasi_nn_fini_single(ctx);
        if (!close_msg(llama3))
            return 1;
        if (rc == WASI_NN_CONTEXT_FULL)
            break;
        if (tty)
            fprintf(stderr, "> ");
    }
    if (have_ctx)
        wasi_nn_finalize_execution_context(ctx);
    wasi_nn_unload(graph);
    return 0;
}
