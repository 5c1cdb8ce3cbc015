/*
 * sample: generation through shoal_llm. By default the guest samples by itself: every decode step writes
 * the next token's f32 logits straight into the guest's buffer, and the guest picks the token (greedy at
 * --temp 0, else softmax at temperature T with its own xorshift RNG seeded by --seed). With --host the
 * host samples (step(): one call per token), with the same sampler as `shoal generate`, so the output
 * equals `shoal generate` with the same options.
 *
 *   shoal run --nn-preload default:GGML:AUTO:model.bin sample.wasm --prompt "Once" -n 64 [--host] [--ids]
 *   --timings: decode tokens/s measured in the guest, as `shoal generate` counts them (stderr).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shoal_guest.h"

static int32_t ids[65536];
static float logits[1 << 18];

static int fail(const char *what, int32_t rc) {
    char msg[512];
    shoal_llm_last_error(msg, sizeof msg);
    fprintf(stderr, "sample: %s failed (%d): %s\n", what, (int)rc, msg);
    return 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng_state;
static double rng_next(void) { /* xorshift64*, uniform in [0, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static int32_t pick(const float *l, int32_t n, float temp) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (l[i] > l[best])
            best = i;
    if (temp <= 0)
        return best;
    double sum = 0, r;
    for (int32_t i = 0; i < n; i++)
        sum += exp((l[i] - l[best]) / temp);
    r = rng_next() * sum;
    for (int32_t i = 0; i < n; i++) {
        r -= exp((l[i] - l[best]) / temp);
        if (r <= 0)
            return i;
    }
    return best;
}

int main(int argc, char **argv) {
    const char *model = "default", *prompt = "Once upon a time";
    int n_new = 64, host = 0, print_ids = 0, timings = 0;
    uint32_t n_ctx = 0;
    shoal_llm_sampler sp = {0.8f, 40, 0.95f, 0.05f, 1.0f, 64, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--host")) {
            host = 1;
            continue;
        }
        if (!strcmp(a, "--timings")) {
            timings = 1;
            continue;
        }
        if (!strcmp(a, "--ids")) {
            print_ids = 1;
            continue;
        }
        i++;
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--prompt") || !strcmp(a, "-p"))
            prompt = v;
        else if (!strcmp(a, "-n"))
            n_new = atoi(v);
        else if (!strcmp(a, "--ctx"))
            n_ctx = (uint32_t)atoi(v);
        else if (!strcmp(a, "--temp"))
            sp.temperature = strtof(v, NULL);
        else if (!strcmp(a, "--top-k"))
            sp.top_k = atoi(v);
        else if (!strcmp(a, "--top-p"))
            sp.top_p = strtof(v, NULL);
        else if (!strcmp(a, "--min-p"))
            sp.min_p = strtof(v, NULL);
        else if (!strcmp(a, "--repeat-penalty"))
            sp.repeat_penalty = strtof(v, NULL);
        else if (!strcmp(a, "--repeat-last-n"))
            sp.repeat_last_n = atoi(v);
        else if (!strcmp(a, "--seed"))
            sp.seed = strtoull(v, NULL, 10);
        else {
            fprintf(stderr, "sample: unknown option %s\n", a);
            return 2;
        }
    }
    rng_state = sp.seed * 0x9E3779B97F4A7C15ull + 1;
    int32_t h = shoal_llm_open(model, (uint32_t)strlen(model), n_ctx), rc;
    if (h < 0)
        return fail("open", h);
    shoal_llm_info info;
    if ((rc = shoal_llm_info_get(h, &info)) || info.vocab_size > (int32_t)(sizeof logits / sizeof logits[0]))
        return fail("info", rc);
    int32_t n = shoal_llm_tokenize(h, prompt, (uint32_t)strlen(prompt), SHOAL_LLM_ADD_BOS, ids, 65536);
    if (n <= 0)
        return fail("tokenize", n);
    if (n >= info.n_ctx) {
        fprintf(stderr, "sample: the prompt (%d tokens) does not fit the context (%d)\n", (int)n, (int)info.n_ctx);
        return 1;
    }
    if ((rc = shoal_llm_set_sampler(h, &sp)))
        return fail("set_sampler", rc);
    int32_t tok;
    if (host) {
        if ((rc = shoal_llm_prefill(h, ids, (uint32_t)n, NULL, 0)))
            return fail("prefill", rc);
        if ((tok = shoal_llm_sample(h)) < 0)
            return fail("sample", tok);
    } else {
        if ((rc = shoal_llm_prefill(h, ids, (uint32_t)n, logits, (uint32_t)info.vocab_size)))
            return fail("prefill", rc);
        tok = pick(logits, info.vocab_size, sp.temperature);
    }
    int32_t prev = ids[n - 1];
    char piece[256];
    double t_first = now_s();
    int generated = 0;
    for (int i = 0; i < n_new; i++) {
        generated++;
        if (shoal_llm_is_eog(h, tok) == 1)
            break;
        if (print_ids) {
            printf("%s%d", i ? " " : "", (int)tok);
        } else {
            int32_t len = shoal_llm_detokenize(h, prev, tok, piece, sizeof piece);
            if (len < 0)
                return fail("detokenize", len);
            fwrite(piece, 1, (size_t)len < sizeof piece ? (size_t)len : sizeof piece, stdout);
        }
        fflush(stdout);
        prev = tok;
        if (i + 1 == n_new || shoal_llm_position(h) >= info.n_ctx)
            break;
        if (host) {
            if ((rc = shoal_llm_step(h, tok, &tok)))
                return fail("step", rc);
        } else {
            if ((rc = shoal_llm_decode(h, tok, logits, (uint32_t)info.vocab_size)))
                return fail("decode", rc);
            tok = pick(logits, info.vocab_size, sp.temperature);
        }
    }
    double t_end = now_s();
    printf("\n");
    if (timings)
        fprintf(stderr, "timings: decode %.2f tok/s (%d tokens)\n",
                generated > 1 && t_end > t_first ? (generated - 1) / (t_end - t_first) : 0.0, generated);
    shoal_llm_close(h);
    return 0;
}
