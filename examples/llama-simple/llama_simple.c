/*
 * llama-simple: the smallest WASI-NN program, written as LlamaEdge's "simple" examples are: load a
 * preloaded model by name with a JSON config, set the prompt, compute, print output 0 and the output-1
 * counters. It passes an output capacity of 0 to get_output, as LlamaEdge does (the host then bounds the
 * output by linear memory).
 *
 *   shoal run --nn-preload default:GGML:AUTO:model.bin llama-simple.wasm "Once upon a time"
 */
#include <stdio.h>
#include <string.h>

#include "shoal_guest.h"

static char text[1 << 16], meta[1024];

int main(int argc, char **argv) {
    const char *prompt = argc > 1 ? argv[1] : "Once upon a time";
    static const char config[] = "{\"n-predict\": 48, \"temp\": 0, \"ctx-size\": 256, \"enable-log\": true}";
    uint32_t graph, ctx, dims[1] = {1}, n = 0;
    int32_t rc = wasi_nn_load_by_name_with_config("default", 7, config, sizeof config - 1, &graph);
    if (rc == 0)
        rc = wasi_nn_init_execution_context(graph, &ctx);
    wasi_nn_tensor t = {dims, 1, WASI_NN_TYPE_U8, {0}, prompt, (uint32_t)strlen(prompt)};
    if (rc == 0)
        rc = wasi_nn_set_input(ctx, 0, &t);
    if (rc == 0)
        rc = wasi_nn_compute(ctx);
    if (rc == 0)
        rc = wasi_nn_get_output(ctx, 0, text, 0, &n); /* capacity 0: LlamaEdge's way */
    if (rc != 0) {
        fprintf(stderr, "llama-simple: errno %d\n", (int)rc);
        return 1;
    }
    printf("%s%.*s\n", prompt, (int)n, text);
    if (wasi_nn_get_output(ctx, 1, meta, sizeof meta, &n) == 0)
        printf("%.*s\n", (int)n, meta);
    wasi_nn_finalize_execution_context(ctx);
    wasi_nn_unload(graph);
    return 0;
}
