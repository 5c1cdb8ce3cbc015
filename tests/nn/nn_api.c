/*
 * nn_api: a guest that drives every function of wasi_ephemeral_nn through its success path, every error
 * code and every bad pointer/length it can pass. Needs `--nn-preload default:GGML:CPU:<stories260K>` and
 * `--nn-preload missing:GGML:AUTO:/nonexistent`. Prints one line per check; exits with the failure count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_guest.h"

static int fails, checks;
#define CHECK(what, cond)                                                                                      \
    do {                                                                                                       \
        checks++;                                                                                              \
        if (!(cond)) {                                                                                         \
            fails++;                                                                                           \
            printf("FAIL %s (line %d)\n", what, __LINE__);                                                     \
        }                                                                                                      \
    } while (0)
#define EQ(what, got, want)                                                                                    \
    do {                                                                                                       \
        long long g_ = (long long)(got), w_ = (long long)(want);                                               \
        checks++;                                                                                              \
        if (g_ != w_) {                                                                                        \
            fails++;                                                                                           \
            printf("FAIL %s: got %lld, want %lld (line %d)\n", what, g_, w_, __LINE__);                        \
        }                                                                                                      \
    } while (0)

static char buf[1 << 16];
static uint32_t dims[1] = {1};

/* An address past the end of linear memory, and one whose range straddles the end. */
static void *oob(void) { return (void *)(uintptr_t)(__builtin_wasm_memory_size(0) * 65536u + 16u); }
static void *edge(void) { return (void *)(uintptr_t)(__builtin_wasm_memory_size(0) * 65536u - 2u); }

static int32_t set_text(uint32_t ctx, uint32_t index, const char *s) {
    wasi_nn_tensor t = {dims, 1, WASI_NN_TYPE_U8, {0}, s, (uint32_t)strlen(s)};
    return wasi_nn_set_input(ctx, index, &t);
}

/* The number after "key": in the JSON of output 1. */
static long counter(uint32_t ctx, const char *key) {
    uint32_t n = 0;
    if (wasi_nn_get_output(ctx, 1, buf, sizeof buf - 1, &n) != 0)
        return -1000;
    buf[n] = 0;
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    char *p = strstr(buf, pat);
    return p ? strtol(p + strlen(pat), NULL, 10) : -2000;
}

int main(void) {
    uint32_t g = 99, g2, ctx = 99, n = 0;

    /* ---- load_by_name / load_by_name_with_config ---- */
    EQ("load_by_name unknown", wasi_nn_load_by_name("nope", 4, &g), WASI_NN_ENOT_FOUND);
    EQ("load_by_name missing file", wasi_nn_load_by_name("missing", 7, &g), WASI_NN_MODEL_NOT_FOUND);
    EQ("load_by_name name oob", wasi_nn_load_by_name(oob(), 7, &g), WASI_NN_EINVAL);
    EQ("load_by_name name straddles", wasi_nn_load_by_name(edge(), 7, &g), WASI_NN_EINVAL);
    EQ("load_by_name empty name", wasi_nn_load_by_name("default", 0, &g), WASI_NN_EINVAL);
    EQ("load_by_name graph oob", wasi_nn_load_by_name("default", 7, oob()), WASI_NN_EINVAL);
    EQ("load_by_name graph straddles", wasi_nn_load_by_name("default", 7, edge()), WASI_NN_EINVAL);
    EQ("load_by_name ok", wasi_nn_load_by_name("default", 7, &g), 0);
    EQ("with_config bad json", wasi_nn_load_by_name_with_config("default", 7, "{nope", 5, &g2), WASI_NN_EENCODING);
    EQ("with_config json array", wasi_nn_load_by_name_with_config("default", 7, "[1]", 3, &g2), WASI_NN_EENCODING);
    EQ("with_config config oob", wasi_nn_load_by_name_with_config("default", 7, oob(), 5, &g2), WASI_NN_EINVAL);
    EQ("with_config name oob", wasi_nn_load_by_name_with_config(oob(), 7, "{}", 2, &g2), WASI_NN_EINVAL);
    EQ("with_config graph oob", wasi_nn_load_by_name_with_config("default", 7, "{}", 2, oob()), WASI_NN_EINVAL);
    EQ("with_config ctx-size 0", wasi_nn_load_by_name_with_config("default", 7, "{\"ctx-size\": 0}", 15, &g2),
       WASI_NN_EINVAL);
    EQ("with_config unknown", wasi_nn_load_by_name_with_config("nope", 4, "{}", 2, &g2), WASI_NN_ENOT_FOUND);
    EQ("with_config missing", wasi_nn_load_by_name_with_config("missing", 7, "{}", 2, &g2), WASI_NN_MODEL_NOT_FOUND);
    static const char cfg[] = "{\"n-predict\": 8, \"temp\": 0, \"ctx-size\": 64, \"unknown-key\": [1, 2]}";
    EQ("with_config ok", wasi_nn_load_by_name_with_config("default", 7, cfg, sizeof cfg - 1, &g2), 0);
    CHECK("graph ids differ", g != g2);

    /* ---- load ---- */
    static const char pre[] = "preload:default", plain[] = "default", junk[] = "GGUF\x03\0\0\0";
    uint32_t b[2] = {(uint32_t)(uintptr_t)pre, sizeof pre - 1}, g3;
    EQ("load ok (6)", wasi_nn_load(b, 1, WASI_NN_ENCODING_GGML, WASI_NN_TARGET_AUTO, &g3), 0);
    EQ("unload (load)", wasi_nn_unload(g3), 0);
    b[0] = (uint32_t)(uintptr_t)plain;
    b[1] = sizeof plain - 1;
    EQ("load ok (5, cpu)", wasi_nn_load(b, 1, WASI_NN_ENCODING_GGML_WAMR, WASI_NN_TARGET_CPU, &g3), 0);
    EQ("unload (load 5)", wasi_nn_unload(g3), 0);
    EQ("load encoding 1", wasi_nn_load(b, 1, 1, WASI_NN_TARGET_AUTO, &g3), WASI_NN_EENCODING);
    EQ("load target 4", wasi_nn_load(b, 1, WASI_NN_ENCODING_GGML, 4, &g3), WASI_NN_EINVAL);
    EQ("load no builders", wasi_nn_load(b, 0, WASI_NN_ENCODING_GGML, 3, &g3), WASI_NN_EINVAL);
    EQ("load builders oob", wasi_nn_load(oob(), 1, WASI_NN_ENCODING_GGML, 3, &g3), WASI_NN_EINVAL);
    EQ("load builders count overflow", wasi_nn_load(b, 0x40000000u, WASI_NN_ENCODING_GGML, 3, &g3), WASI_NN_EINVAL);
    EQ("load graph oob", wasi_nn_load(b, 1, WASI_NN_ENCODING_GGML, 3, oob()), WASI_NN_EINVAL);
    b[0] = (uint32_t)(uintptr_t)oob();
    EQ("load builder bytes oob", wasi_nn_load(b, 1, WASI_NN_ENCODING_GGML, 3, &g3), WASI_NN_EINVAL);
    b[0] = (uint32_t)(uintptr_t)junk;
    b[1] = sizeof junk - 1;
    EQ("load model bytes", wasi_nn_load(b, 1, WASI_NN_ENCODING_GGML, 3, &g3), WASI_NN_EUNSUPPORTED);

    /* ---- contexts ---- */
    EQ("init bad graph", wasi_nn_init_execution_context(77, &ctx), WASI_NN_EINVAL);
    EQ("init huge graph id", wasi_nn_init_execution_context(0xffffffffu, &ctx), WASI_NN_EINVAL);
    EQ("init ctx oob", wasi_nn_init_execution_context(g2, oob()), WASI_NN_EINVAL);
    EQ("init ok", wasi_nn_init_execution_context(g2, &ctx), 0);
    EQ("compute before input", wasi_nn_compute(ctx), WASI_NN_EINVAL);
    EQ("compute_single before input", wasi_nn_compute_single(ctx), WASI_NN_EINVAL);

    /* ---- set_input ---- */
    wasi_nn_tensor t = {dims, 1, WASI_NN_TYPE_U8, {0}, "Once", 4};
    EQ("set_input bad ctx", wasi_nn_set_input(55, 0, &t), WASI_NN_EINVAL);
    EQ("set_input tensor oob", wasi_nn_set_input(ctx, 0, oob()), WASI_NN_EINVAL);
    EQ("set_input tensor straddles", wasi_nn_set_input(ctx, 0, edge()), WASI_NN_EINVAL);
    t.data = oob();
    EQ("set_input data oob", wasi_nn_set_input(ctx, 0, &t), WASI_NN_EINVAL);
    t.data = "Once";
    t.len = 0xfffffff0u;
    EQ("set_input data len huge", wasi_nn_set_input(ctx, 0, &t), WASI_NN_EINVAL);
    t.len = 4;
    t.dims = oob();
    EQ("set_input dims oob", wasi_nn_set_input(ctx, 0, &t), WASI_NN_EINVAL);
    t.dims = dims;
    t.ndims = 0x40000001u;
    EQ("set_input dims count overflow", wasi_nn_set_input(ctx, 0, &t), WASI_NN_EINVAL);
    t.ndims = 1;
    t.type = 9;
    EQ("set_input type 9", wasi_nn_set_input(ctx, 0, &t), WASI_NN_EINVAL);
    t.type = WASI_NN_TYPE_U8;
    EQ("set_input index 2", wasi_nn_set_input(ctx, 2, &t), WASI_NN_EINVAL);
    EQ("set_input options not json", set_text(ctx, 1, "n-predict=3"), WASI_NN_EENCODING);
    EQ("set_input options bad ctx-size", set_text(ctx, 1, "{\"ctx-size\": -5}"), WASI_NN_EINVAL);
    {
        static char rp[400];
        memcpy(rp, "{\"reverse-prompt\": \"", 20);
        memset(rp + 20, 'x', 300);
        memcpy(rp + 320, "\"}", 3);
        EQ("set_input reverse-prompt too long", set_text(ctx, 1, rp), WASI_NN_EINVAL);
    }
    EQ("set_input prompt", set_text(ctx, 0, "Once upon a time"), 0);
    long in_tokens = counter(ctx, "input_tokens");
    CHECK("output 1 right after set_input: input_tokens > 1", in_tokens > 1);
    EQ("output 1 right after set_input: output_tokens", counter(ctx, "output_tokens"), 0);

    /* ---- compute / get_output ---- */
    EQ("compute", wasi_nn_compute(ctx), 0);
    EQ("compute bad ctx", wasi_nn_compute(40), WASI_NN_EINVAL);
    EQ("output_tokens = n-predict", counter(ctx, "output_tokens"), 8);
    EQ("reused_tokens (fresh)", counter(ctx, "reused_tokens"), 0);
    EQ("get_output text", wasi_nn_get_output(ctx, 0, buf, sizeof buf, &n), 0);
    CHECK("text not empty", n > 0);
    char text[512];
    uint32_t tn = n < sizeof text ? n : sizeof text;
    memcpy(text, buf, tn);
    uint32_t need = 0;
    EQ("get_output too small", wasi_nn_get_output(ctx, 0, buf, 3, &need), WASI_NN_ETOO_LARGE);
    EQ("too small: written = size needed", need, n);
    EQ("get_output counters too small", wasi_nn_get_output(ctx, 1, buf, 3, &need), WASI_NN_ETOO_LARGE);
    memset(buf, 0, sizeof buf);
    EQ("get_output capacity 0 (LlamaEdge)", wasi_nn_get_output(ctx, 0, buf, 0, &n), 0);
    CHECK("capacity 0: same text", n == tn && !memcmp(buf, text, tn));
    EQ("get_output buffer oob", wasi_nn_get_output(ctx, 0, oob(), 16, &n), WASI_NN_EINVAL);
    EQ("get_output capacity 0 at oob", wasi_nn_get_output(ctx, 0, oob(), 0, &n), WASI_NN_EINVAL);
    EQ("get_output buffer straddles", wasi_nn_get_output(ctx, 0, edge(), 16, &n), WASI_NN_EINVAL);
    EQ("get_output written oob", wasi_nn_get_output(ctx, 0, buf, sizeof buf, oob()), WASI_NN_EINVAL);
    EQ("get_output index 2", wasi_nn_get_output(ctx, 2, buf, sizeof buf, &n), WASI_NN_EINVAL);
    EQ("get_output bad ctx", wasi_nn_get_output(33, 0, buf, sizeof buf, &n), WASI_NN_EINVAL);

    /* ---- prefix reuse: the same prompt again reuses all but its last token ---- */
    EQ("same prompt again", set_text(ctx, 0, "Once upon a time"), 0);
    EQ("compute again", wasi_nn_compute(ctx), 0);
    EQ("reused = input - 1", counter(ctx, "reused_tokens"), in_tokens - 1);
    EQ("prefilled = 1", counter(ctx, "prefilled_tokens"), 1);
    EQ("get_output again", wasi_nn_get_output(ctx, 0, buf, sizeof buf, &n), 0);
    CHECK("same text with reuse (greedy)", n == tn && !memcmp(buf, text, tn));

    /* ---- streaming ---- */
    EQ("stream prompt", set_text(ctx, 0, "Once upon a time"), 0);
    uint32_t pieces = 0, total = 0;
    int32_t rc;
    while ((rc = wasi_nn_compute_single(ctx)) == 0) {
        EQ("get_output_single", wasi_nn_get_output_single(ctx, 0, buf + total, sizeof buf - total, &n), 0);
        total += n;
        pieces++;
    }
    EQ("compute_single ends with end of sequence (n-predict)", rc, WASI_NN_END_OF_SEQUENCE);
    EQ("pieces = n-predict", pieces, 8);
    CHECK("streamed text = computed text", total == tn && !memcmp(buf, text, tn));
    EQ("get_output_single counters", wasi_nn_get_output_single(ctx, 1, buf, sizeof buf, &n), 0);
    CHECK("counters are JSON", n > 2 && buf[0] == '{' && buf[n - 1] == '}');
    EQ("get_output_single oob", wasi_nn_get_output_single(ctx, 0, oob(), 8, &n), WASI_NN_EINVAL);
    EQ("compute_single bad ctx", wasi_nn_compute_single(21), WASI_NN_EINVAL);
    EQ("fini_single", wasi_nn_fini_single(ctx), 0);
    EQ("fini_single bad ctx", wasi_nn_fini_single(21), WASI_NN_EINVAL);
    EQ("output_tokens after fini_single", counter(ctx, "output_tokens"), 0);

    /* ---- end of sequence, prompt too long, context full ---- */
    EQ("no n-predict", set_text(ctx, 1, "{\"n-predict\": -1}"), 0);
    EQ("prompt", set_text(ctx, 0, "Once upon a time"), 0);
    while ((rc = wasi_nn_compute_single(ctx)) == 0)
        ;
    CHECK("streaming ends with 100 (EOS) or 101 (context full)",
          rc == WASI_NN_END_OF_SEQUENCE || rc == WASI_NN_CONTEXT_FULL);
    EQ("small context", set_text(ctx, 1, "{\"ctx-size\": 12, \"temp\": 0, \"n-predict\": -1}"), 0);
    EQ("long prompt", set_text(ctx, 0, "Once upon a time there was a little girl named Lily who liked to play"), 0);
    EQ("compute: prompt too long", wasi_nn_compute(ctx), WASI_NN_PROMPT_TOO_LONG);
    EQ("compute_single: prompt too long", wasi_nn_compute_single(ctx), WASI_NN_PROMPT_TOO_LONG);
    EQ("short prompt", set_text(ctx, 0, "Once upon"), 0);
    while ((rc = wasi_nn_compute_single(ctx)) == 0)
        ;
    EQ("compute_single: context full", rc, WASI_NN_CONTEXT_FULL);
    EQ("compute: context full", wasi_nn_compute(ctx), WASI_NN_CONTEXT_FULL);
    EQ("context full: output still readable", wasi_nn_get_output(ctx, 0, buf, sizeof buf, &n), 0);
    EQ("context full: position = ctx-size", counter(ctx, "position"), 12);

    /* ---- reverse-prompt, stream-stdout ---- */
    EQ("reverse-prompt options", set_text(ctx, 1, "{\"ctx-size\": 256, \"n-predict\": 100, \"temp\": 0, "
                                                   "\"reverse-prompt\": \" Lily\"}"), 0);
    EQ("reverse-prompt prompt", set_text(ctx, 0, "Once upon a time"), 0);
    EQ("reverse-prompt compute", wasi_nn_compute(ctx), 0);
    EQ("reverse-prompt output", wasi_nn_get_output(ctx, 0, buf, sizeof buf, &n), 0);
    CHECK("stops right after the reverse prompt", n >= 5 && !memcmp(buf + n - 5, " Lily", 5));
    CHECK("reverse-prompt: fewer than n-predict tokens", counter(ctx, "output_tokens") < 100);
    EQ("stream-stdout options", set_text(ctx, 1, "{\"n-predict\": 12, \"reverse-prompt\": \"\", "
                                                 "\"stream-stdout\": true}"), 0);
    printf("STREAM<");
    fflush(stdout); /* the host writes the pieces to the same stdout while compute runs */
    EQ("stream-stdout compute", wasi_nn_compute(ctx), 0);
    printf(">STREAM\n");
    EQ("stream-stdout output", wasi_nn_get_output(ctx, 0, buf, sizeof buf, &n), 0);
    printf("TEXT<%.*s>TEXT\n", (int)n, buf);

    EQ("enable-log", set_text(ctx, 1, "{\"enable-log\": true}"), 0);
    EQ("a logged failure", wasi_nn_get_output(ctx, 7, buf, sizeof buf, &n), WASI_NN_EINVAL);
    EQ("logging off", set_text(ctx, 1, "{\"enable-log\": false}"), 0);
    EQ("an unlogged failure", wasi_nn_get_output(ctx, 8, buf, sizeof buf, &n), WASI_NN_EINVAL);

    /* ---- limits ---- */
    uint32_t many[64], opened = 0;
    for (; opened < 64; opened++)
        if (wasi_nn_load_by_name("default", 7, &many[opened]) != 0)
            break;
    EQ("too many graphs: busy", wasi_nn_load_by_name("default", 7, &g3), WASI_NN_EBUSY);
    for (uint32_t i = 0; i < opened; i++)
        wasi_nn_unload(many[i]);

    /* ---- teardown ---- */
    EQ("finalize", wasi_nn_finalize_execution_context(ctx), 0);
    EQ("finalize twice", wasi_nn_finalize_execution_context(ctx), WASI_NN_EINVAL);
    EQ("set_input after finalize", set_text(ctx, 0, "x"), WASI_NN_EINVAL);
    EQ("unload", wasi_nn_unload(g2), 0);
    EQ("unload twice", wasi_nn_unload(g2), WASI_NN_EINVAL);
    EQ("init on unloaded graph", wasi_nn_init_execution_context(g2, &ctx), WASI_NN_EINVAL);
    EQ("unload huge id", wasi_nn_unload(0xffffffffu), WASI_NN_EINVAL);
    EQ("unload first", wasi_nn_unload(g), 0);
    printf("%d checks, %d failed\n", checks, fails);
    return fails ? 1 : 0;
}
