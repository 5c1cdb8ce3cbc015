/*
 * llm_api: a guest that drives every function of shoal_llm through its success path, every error code and
 * every bad pointer/length/alignment it can pass. Needs `--nn-preload default:GGML:CPU:<stories260K>` and
 * `--nn-preload missing:GGML:AUTO:/nonexistent`. Prints failures; exits with their count (0 = all passed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_guest.h"

static int fails, checks;
#define EQ(what, got, want)                                                                                    \
    do {                                                                                                       \
        long long g_ = (long long)(got), w_ = (long long)(want);                                               \
        checks++;                                                                                              \
        if (g_ != w_) {                                                                                        \
            fails++;                                                                                           \
            printf("FAIL %s: got %lld, want %lld (line %d)\n", what, g_, w_, __LINE__);                        \
        }                                                                                                      \
    } while (0)
#define CHECK(what, cond) EQ(what, !!(cond), 1)

static void *oob(void) { return (void *)(uintptr_t)(__builtin_wasm_memory_size(0) * 65536u + 16u); }
static void *edge(void) { return (void *)(uintptr_t)(__builtin_wasm_memory_size(0) * 65536u - 2u); }

static int32_t ids[4096];
static float logits[4096], logits2[4096];
static char text[4096];
static _Alignas(8) unsigned char raw[128];

int main(void) {
    EQ("open unknown", shoal_llm_open("nope", 4, 0), SHOAL_LLM_ENOTFOUND);
    EQ("open missing file", shoal_llm_open("missing", 7, 0), SHOAL_LLM_ENOTFOUND);
    EQ("open name oob", shoal_llm_open(oob(), 4, 0), SHOAL_LLM_EBOUNDS);
    EQ("open name straddles", shoal_llm_open(edge(), 4, 0), SHOAL_LLM_EBOUNDS);
    int32_t h = shoal_llm_open("default", 7, 64);
    CHECK("open ok", h > 0);
    char msg[256];
    EQ("last_error oob", shoal_llm_last_error(oob(), 16), SHOAL_LLM_EBOUNDS);
    shoal_llm_open("nope", 4, 0);
    int32_t ml = shoal_llm_last_error(msg, sizeof msg);
    CHECK("last_error names the model", ml > 0 && strstr(msg, "nope") != NULL);
    EQ("last_error truncates and returns the full length", shoal_llm_last_error(msg, 4), ml);
    EQ("last_error truncates: NUL", msg[3], 0);

    shoal_llm_info info;
    EQ("info", shoal_llm_info_get(h, &info), 0);
    EQ("info n_ctx", info.n_ctx, 64);
    CHECK("info vocab", info.vocab_size == 512);
    EQ("info oob", shoal_llm_info_get(h, oob()), SHOAL_LLM_EBOUNDS);
    EQ("info unaligned", shoal_llm_info_get(h, (shoal_llm_info *)(raw + 1)), SHOAL_LLM_EBOUNDS);
    EQ("info bad handle", shoal_llm_info_get(9, &info), SHOAL_LLM_EHANDLE);
    EQ("info handle 0", shoal_llm_info_get(0, &info), SHOAL_LLM_EHANDLE);
    EQ("info handle -1", shoal_llm_info_get(-1, &info), SHOAL_LLM_EHANDLE);

    static const char prompt[] = "Once upon a time";
    int32_t n = shoal_llm_tokenize(h, prompt, sizeof prompt - 1, SHOAL_LLM_ADD_BOS, NULL, 0);
    CHECK("tokenize measures", n > 1);
    EQ("tokenize too small writes nothing", shoal_llm_tokenize(h, prompt, sizeof prompt - 1, 1, ids, 1), n);
    EQ("tokenize", shoal_llm_tokenize(h, prompt, sizeof prompt - 1, SHOAL_LLM_ADD_BOS, ids, 4096), n);
    EQ("tokenize: BOS first", ids[0], info.bos_id);
    EQ("tokenize text oob", shoal_llm_tokenize(h, oob(), 4, 1, ids, 4096), SHOAL_LLM_EBOUNDS);
    EQ("tokenize ids oob", shoal_llm_tokenize(h, prompt, 4, 1, oob(), 4), SHOAL_LLM_EBOUNDS);
    EQ("tokenize ids unaligned", shoal_llm_tokenize(h, prompt, 4, 1, (int32_t *)(raw + 2), 4), SHOAL_LLM_EBOUNDS);
    EQ("tokenize ids count overflow", shoal_llm_tokenize(h, prompt, 4, 1, ids, 0x40000001u), SHOAL_LLM_EBOUNDS);
    EQ("tokenize bad flags", shoal_llm_tokenize(h, prompt, 4, 8, ids, 4096), SHOAL_LLM_EINVAL);
    EQ("tokenize bad handle", shoal_llm_tokenize(12, prompt, 4, 1, ids, 4096), SHOAL_LLM_EHANDLE);

    int32_t len = shoal_llm_detokenize(h, -1, ids[1], text, sizeof text);
    CHECK("detokenize", len > 0);
    EQ("detokenize short buffer: full length", shoal_llm_detokenize(h, -1, ids[1], text, 1), len);
    EQ("detokenize buffer oob", shoal_llm_detokenize(h, -1, ids[1], oob(), 8), SHOAL_LLM_EBOUNDS);
    EQ("detokenize id out of range", shoal_llm_detokenize(h, -1, 100000, text, 8), SHOAL_LLM_ETOKEN);
    EQ("detokenize negative id", shoal_llm_detokenize(h, -1, -3, text, 8), SHOAL_LLM_ETOKEN);
    EQ("detokenize bad prev", shoal_llm_detokenize(h, 99999, ids[1], text, 8), SHOAL_LLM_ETOKEN);
    EQ("is_eog eos", shoal_llm_is_eog(h, info.eos_id), 1);
    EQ("is_eog word", shoal_llm_is_eog(h, ids[1]), 0);
    EQ("is_eog out of range", shoal_llm_is_eog(h, 4096), SHOAL_LLM_ETOKEN);

    EQ("sample before any forward pass", shoal_llm_sample(h), SHOAL_LLM_ESTATE);
    EQ("prefill ids oob", shoal_llm_prefill(h, oob(), 2, NULL, 0), SHOAL_LLM_EBOUNDS);
    EQ("prefill ids unaligned", shoal_llm_prefill(h, (int32_t *)(raw + 1), 2, NULL, 0), SHOAL_LLM_EBOUNDS);
    EQ("prefill n 0", shoal_llm_prefill(h, ids, 0, NULL, 0), SHOAL_LLM_EINVAL);
    EQ("prefill logits too small", shoal_llm_prefill(h, ids, (uint32_t)n, logits, 10), SHOAL_LLM_EINVAL);
    EQ("prefill logits oob", shoal_llm_prefill(h, ids, (uint32_t)n, oob(), 512), SHOAL_LLM_EBOUNDS);
    EQ("prefill logits unaligned", shoal_llm_prefill(h, ids, (uint32_t)n, (float *)(raw + 2), 512), SHOAL_LLM_EBOUNDS);
    int32_t bad[2] = {1, 9999};
    EQ("prefill token out of range", shoal_llm_prefill(h, bad, 2, NULL, 0), SHOAL_LLM_ETOKEN);
    EQ("failed prefills leave the position", shoal_llm_position(h), 0);
    EQ("prefill with logits", shoal_llm_prefill(h, ids, (uint32_t)n, logits, 4096), 0);
    EQ("position after prefill", shoal_llm_position(h), n);
    EQ("sample after logits went to the guest", shoal_llm_sample(h), SHOAL_LLM_ESTATE);
    int32_t best = 0;
    for (int32_t i = 1; i < info.vocab_size; i++)
        if (logits[i] > logits[best])
            best = i;

    /* rewind and run again without a logits buffer: host sampling, greedy = the guest's argmax */
    EQ("rewind negative", shoal_llm_rewind(h, -1), SHOAL_LLM_EINVAL);
    EQ("rewind past position", shoal_llm_rewind(h, n + 1), SHOAL_LLM_EINVAL);
    EQ("rewind", shoal_llm_rewind(h, n - 1), 0);
    EQ("position after rewind", shoal_llm_position(h), n - 1);
    shoal_llm_sampler sp = {0, 0, 1, 0, 1, 0, 1};
    EQ("set_sampler", shoal_llm_set_sampler(h, &sp), 0);
    EQ("set_sampler oob", shoal_llm_set_sampler(h, oob()), SHOAL_LLM_EBOUNDS);
    EQ("set_sampler unaligned", shoal_llm_set_sampler(h, (shoal_llm_sampler *)(raw + 4)), SHOAL_LLM_EBOUNDS);
    EQ("prefill last token", shoal_llm_prefill(h, ids + n - 1, 1, NULL, 0), 0);
    EQ("greedy host sample = guest argmax", shoal_llm_sample(h), best);
    EQ("sample twice", shoal_llm_sample(h), SHOAL_LLM_ESTATE);

    /* decode with logits to the guest; step (decode + sample) */
    EQ("decode bad token", shoal_llm_decode(h, 5000, NULL, 0), SHOAL_LLM_ETOKEN);
    EQ("decode logits oob", shoal_llm_decode(h, best, oob(), 512), SHOAL_LLM_EBOUNDS);
    EQ("decode logits small", shoal_llm_decode(h, best, logits2, 511), SHOAL_LLM_EINVAL);
    EQ("decode", shoal_llm_decode(h, best, logits2, 4096), 0);
    int32_t best2 = 0;
    for (int32_t i = 1; i < info.vocab_size; i++)
        if (logits2[i] > logits2[best2])
            best2 = i;
    EQ("rewind one", shoal_llm_rewind(h, n), 0);
    int32_t next = -1;
    EQ("step out oob", shoal_llm_step(h, best, oob()), SHOAL_LLM_EBOUNDS);
    EQ("step out unaligned", shoal_llm_step(h, best, (int32_t *)(raw + 1)), SHOAL_LLM_EBOUNDS);
    EQ("step", shoal_llm_step(h, best, &next), 0);
    EQ("step = decode + greedy sample", next, best2);
    EQ("step bad token", shoal_llm_step(h, -2, &next), SHOAL_LLM_ETOKEN);

    shoal_llm_usage u;
    EQ("usage", shoal_llm_usage_get(h, &u), 0);
    EQ("usage prompt tokens", u.prompt_tokens, n + 1);
    EQ("usage decoded tokens", u.decoded_tokens, 2);
    EQ("usage position", u.position, n + 1);
    EQ("usage n_ctx", u.n_ctx, 64);
    CHECK("usage forward time", u.forward_ns > 0);
    EQ("usage oob", shoal_llm_usage_get(h, oob()), SHOAL_LLM_EBOUNDS);
    EQ("usage unaligned", shoal_llm_usage_get(h, (shoal_llm_usage *)(raw + 4)), SHOAL_LLM_EBOUNDS);

    /* fill the context */
    int32_t rc = 0;
    while ((rc = shoal_llm_decode(h, best, NULL, 0)) == 0)
        ;
    EQ("decode: context full", rc, SHOAL_LLM_EFULL);
    EQ("position = n_ctx", shoal_llm_position(h), 64);
    EQ("prefill: context full", shoal_llm_prefill(h, ids, 1, NULL, 0), SHOAL_LLM_EFULL);

    /* sessions are bounded; handles die on close */
    int32_t hs[64], k = 0;
    for (; k < 64; k++)
        if ((hs[k] = shoal_llm_open("default", 7, 16)) < 0)
            break;
    EQ("too many sessions", hs[k < 64 ? k : 63], SHOAL_LLM_ENOMEM);
    for (int32_t i = 0; i < k; i++)
        shoal_llm_close(hs[i]);
    EQ("close", shoal_llm_close(h), 0);
    EQ("close twice", shoal_llm_close(h), SHOAL_LLM_EHANDLE);
    EQ("use after close", shoal_llm_position(h), SHOAL_LLM_EHANDLE);
    EQ("rewind after close", shoal_llm_rewind(h, 0), SHOAL_LLM_EHANDLE);
    EQ("sample after close", shoal_llm_sample(h), SHOAL_LLM_EHANDLE);
    EQ("decode after close", shoal_llm_decode(h, 1, NULL, 0), SHOAL_LLM_EHANDLE);
    EQ("prefill after close", shoal_llm_prefill(h, ids, 1, NULL, 0), SHOAL_LLM_EHANDLE);
    EQ("step after close", shoal_llm_step(h, 1, &next), SHOAL_LLM_EHANDLE);
    EQ("set_sampler after close", shoal_llm_set_sampler(h, &sp), SHOAL_LLM_EHANDLE);
    EQ("usage after close", shoal_llm_usage_get(h, &u), SHOAL_LLM_EHANDLE);
    EQ("detokenize after close", shoal_llm_detokenize(h, -1, 1, text, 8), SHOAL_LLM_EHANDLE);
    EQ("is_eog after close", shoal_llm_is_eog(h, 1), SHOAL_LLM_EHANDLE);
    printf("%d checks, %d failed\n", checks, fails);
    return fails ? 1 : 0;
}
