/*
 * state_guest: a reactor whose exports each make one or a few shoal_llm / wasi_ephemeral_nn calls, for
 * tests/nn/state.c (inference state carried across instances). Handles, ids, tokens and hashes travel
 * through export arguments and results only: the test plays the guest's memory, since the engine part
 * that carries linear memory is not there yet. Needs a model preloaded as "stories".
 */
#include <stdint.h>
#include <string.h>

#include "shoal_guest.h"

#define EXPORT(name) __attribute__((export_name(name)))

static const char model[] = "stories";
static const char *const prompts[] = {"Once upon a time", "The little dog", "Once upon a time, there was a girl",
                                      "Tom and Lily went to the park"};
static int32_t ids[512];
static char text[8192];

static int32_t fnv(const void *p, uint32_t n) {
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)p)[i]) * 16777619u;
    return (int32_t)(h & 0x7fffffff);
}

/* ---- shoal_llm ---- */

EXPORT("llm_open") int32_t llm_open(int32_t n_ctx) { return shoal_llm_open(model, sizeof model - 1, (uint32_t)n_ctx); }
EXPORT("llm_close") int32_t llm_close(int32_t h) { return shoal_llm_close(h); }

/* temperature in thousandths; top-k 40, top-p 0.9, min-p 0.05, repetition penalty 1.1 over 64 tokens */
EXPORT("llm_sampler") int32_t llm_sampler(int32_t h, int32_t seed, int32_t temp_milli) {
    static shoal_llm_sampler sp;
    sp = (shoal_llm_sampler){(float)temp_milli / 1000.0f, 40, 0.9f, 0.05f, 1.1f, 64, (uint64_t)seed};
    return shoal_llm_set_sampler(h, &sp);
}

/* Prefills prompt p (host-side logits); returns the token count or an error. */
EXPORT("llm_prompt") int32_t llm_prompt(int32_t h, int32_t p) {
    const char *s = prompts[p & 3];
    int32_t n = shoal_llm_tokenize(h, s, (uint32_t)strlen(s), SHOAL_LLM_ADD_BOS, ids, 512);
    if (n <= 0)
        return n < 0 ? n : -100;
    int32_t rc = shoal_llm_prefill(h, ids, (uint32_t)n, NULL, 0);
    return rc < 0 ? rc : n;
}

EXPORT("llm_sample") int32_t llm_sample(int32_t h) { return shoal_llm_sample(h); }
EXPORT("llm_decode") int32_t llm_decode(int32_t h, int32_t id) { return shoal_llm_decode(h, id, NULL, 0); }
EXPORT("llm_position") int32_t llm_position(int32_t h) { return shoal_llm_position(h); }

EXPORT("llm_step") int32_t llm_step(int32_t h, int32_t id) {
    static int32_t next;
    int32_t rc = shoal_llm_step(h, id, &next);
    return rc < 0 ? rc : next;
}

/* A hash of the logits of decoding id, written into guest memory (exact floats, not a sample). */
EXPORT("llm_decode_logits") int32_t llm_decode_logits(int32_t h, int32_t id) {
    static float logits[4096];
    int32_t rc = shoal_llm_decode(h, id, logits, 4096);
    return rc < 0 ? rc : fnv(logits, 512 * sizeof(float));
}

/* Counter k of usage(): 0 prompt, 1 decoded, 2 reused, 3 position, 4 n_ctx. */
EXPORT("llm_usage") int32_t llm_usage(int32_t h, int32_t k) {
    static shoal_llm_usage u;
    int32_t rc = shoal_llm_usage_get(h, &u);
    if (rc < 0)
        return rc;
    uint64_t v[5] = {u.prompt_tokens, u.decoded_tokens, u.reused_tokens, u.position, u.n_ctx};
    return (int32_t)v[k % 5];
}

EXPORT("last_error_hash") int32_t last_error_hash(void) {
    int32_t n = shoal_llm_last_error(text, sizeof text);
    return n < 0 ? n : fnv(text, (uint32_t)n);
}

/* ---- wasi_ephemeral_nn ---- */

EXPORT("wn_load") int32_t wn_load(int32_t seed, int32_t n_predict, int32_t ctx_size) {
    char *j = text;
    /* no snprintf: keep the reactor free of stdio */
    static const char a[] = "{\"temp\": 0.9, \"top-k\": 40, \"repeat-penalty\": 1.1, \"seed\": ";
    memcpy(j, a, sizeof a - 1);
    j += sizeof a - 1;
    int32_t nums[3] = {seed, n_predict, ctx_size};
    static const char *const keys[3] = {"", ", \"n-predict\": ", ", \"ctx-size\": "};
    for (int k = 0; k < 3; k++) {
        if (k == 2 && nums[k] <= 0) /* the model's context */
            break;
        memcpy(j, keys[k], strlen(keys[k]));
        j += strlen(keys[k]);
        char d[12];
        int n = 0;
        if (nums[k] < 0)
            *j++ = '-';
        uint32_t v = nums[k] < 0 ? (uint32_t)-nums[k] : (uint32_t)nums[k];
        do
            d[n++] = (char)('0' + v % 10);
        while ((v /= 10));
        while (n)
            *j++ = d[--n];
    }
    *j++ = '}';
    uint32_t g;
    int32_t rc = wasi_nn_load_by_name_with_config(model, sizeof model - 1, text, (uint32_t)(j - text), &g);
    return rc ? -rc : (int32_t)g;
}

EXPORT("wn_unload") int32_t wn_unload(int32_t g) { return wasi_nn_unload((uint32_t)g); }

EXPORT("wn_init") int32_t wn_init(int32_t g) {
    uint32_t c;
    int32_t rc = wasi_nn_init_execution_context((uint32_t)g, &c);
    return rc ? -rc : (int32_t)c;
}

EXPORT("wn_prompt") int32_t wn_prompt(int32_t c, int32_t p) {
    static uint32_t dims[1];
    static wasi_nn_tensor t;
    const char *s = prompts[p & 3];
    dims[0] = (uint32_t)strlen(s);
    t = (wasi_nn_tensor){dims, 1, WASI_NN_TYPE_U8, {0}, s, dims[0]};
    return wasi_nn_set_input((uint32_t)c, 0, &t);
}

EXPORT("wn_compute") int32_t wn_compute(int32_t c) { return wasi_nn_compute((uint32_t)c); }
EXPORT("wn_single") int32_t wn_single(int32_t c) { return wasi_nn_compute_single((uint32_t)c); }
EXPORT("wn_fini") int32_t wn_fini(int32_t c) { return wasi_nn_fini_single((uint32_t)c); }

/* A hash of output index (single: of get_output_single), or -errno. */
EXPORT("wn_output") int32_t wn_output(int32_t c, int32_t index, int32_t single) {
    uint32_t n = 0;
    int32_t rc = single ? wasi_nn_get_output_single((uint32_t)c, (uint32_t)index, text, sizeof text, &n)
                        : wasi_nn_get_output((uint32_t)c, (uint32_t)index, text, sizeof text, &n);
    return rc ? -rc : fnv(text, n);
}
