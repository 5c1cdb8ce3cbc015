/*
 * iso: the guest of the isolation test (isolation.c).
 *   iso run PROMPT SEED   generate with shoal_llm (logits into guest memory, guest greedy/host sampling)
 *                         and with wasi_ephemeral_nn; print what came out; leave every handle open
 *   iso probe             look for anything of another guest: every shoal_llm handle, wasi-nn graph and
 *                         context id must be unknown here; a new session has no logits to sample; its first
 *                         logits and a new context's outputs are printed (compared with a fresh process)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_guest.h"

static int32_t ids[1024];
static float logits[1024];
static char buf[8192];

static uint32_t checksum(const void *p, size_t n) {
    const unsigned char *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static int run(const char *prompt, uint64_t seed) {
    int32_t h = shoal_llm_open("default", 7, 0);
    if (h < 0)
        return 1;
    int32_t n = shoal_llm_tokenize(h, prompt, (uint32_t)strlen(prompt), SHOAL_LLM_ADD_BOS, ids, 1024);
    shoal_llm_sampler sp = {0.9f, 40, 0.95f, 0.05f, 1.1f, 64, seed};
    if (n <= 0 || shoal_llm_set_sampler(h, &sp) || shoal_llm_prefill(h, ids, (uint32_t)n, logits, 1024))
        return 1;
    printf("llm prefill logits %08x\n", (unsigned)checksum(logits, 512 * 4));
    if (shoal_llm_rewind(h, n - 1) || shoal_llm_prefill(h, ids + n - 1, 1, NULL, 0))
        return 1;
    int32_t tok = shoal_llm_sample(h);
    printf("llm tokens");
    for (int i = 0; i < 48 && tok >= 0; i++) {
        printf(" %d", (int)tok);
        if (shoal_llm_step(h, tok, &tok))
            break;
    }
    printf("\n");
    char opts[128];
    int ol = snprintf(opts, sizeof opts, "{\"n-predict\": 48, \"seed\": %llu, \"temp\": 0.9}", (unsigned long long)seed);
    uint32_t g, c, dims[1] = {1}, len = 0;
    if (wasi_nn_load_by_name_with_config("default", 7, opts, (uint32_t)ol, &g) || wasi_nn_init_execution_context(g, &c))
        return 1;
    wasi_nn_tensor t = {dims, 1, WASI_NN_TYPE_U8, {0}, prompt, (uint32_t)strlen(prompt)};
    if (wasi_nn_set_input(c, 0, &t) || wasi_nn_compute(c) || wasi_nn_get_output(c, 0, buf, sizeof buf, &len))
        return 1;
    printf("nn text %.*s\n", (int)len, buf);
    return 0; /* handles stay open on purpose */
}

static int probe(void) {
    int visible = 0;
    shoal_llm_usage u;
    for (int32_t h = 1; h <= 64; h++)
        visible += shoal_llm_usage_get(h, &u) != SHOAL_LLM_EHANDLE;
    uint32_t len, c;
    for (uint32_t id = 0; id < 64; id++) {
        visible += wasi_nn_get_output(id, 0, buf, sizeof buf, &len) != WASI_NN_EINVAL;
        visible += wasi_nn_init_execution_context(id, &c) != WASI_NN_EINVAL;
    }
    printf("foreign handles visible: %d\n", visible);
    int32_t h = shoal_llm_open("default", 7, 0);
    printf("fresh session: sample -> %d\n", (int)shoal_llm_sample(h));
    shoal_llm_usage_get(h, &u);
    printf("fresh session: position %llu prompt %llu decoded %llu\n", (unsigned long long)u.position,
           (unsigned long long)u.prompt_tokens, (unsigned long long)u.decoded_tokens);
    memset(logits, 0xAB, sizeof logits);
    int32_t bos = 1;
    if (shoal_llm_prefill(h, &bos, 1, logits, 1024) == 0)
        printf("fresh session: logits after BOS %08x\n", (unsigned)checksum(logits, 512 * 4));
    uint32_t g;
    if (wasi_nn_load_by_name("default", 7, &g) == 0 && wasi_nn_init_execution_context(g, &c) == 0) {
        memset(buf, 0, sizeof buf);
        int32_t rc = wasi_nn_get_output(c, 0, buf, sizeof buf, &len);
        printf("fresh context: output 0 rc %d, %u bytes\n", (int)rc, (unsigned)len);
        rc = wasi_nn_get_output(c, 1, buf, sizeof buf, &len);
        printf("fresh context: output 1 %.*s\n", (int)len, buf);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "run"))
        return run(argv[2], strtoull(argv[3], NULL, 10));
    if (argc == 2 && !strcmp(argv[1], "probe"))
        return probe();
    fprintf(stderr, "usage: iso run PROMPT SEED | iso probe\n");
    return 2;
}
