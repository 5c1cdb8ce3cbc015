/*
 * actor_chat.c: a guest in the middle of a conversation with a model, for the actor tests (actor_llm.sh).
 *
 *   actor_chat MODEL WHERE K    four turns on two shoal_llm sessions, sampled at temperature 0.8 with a
 *                               seed; checkpoints at turn K: WHERE = "turn" (after the turn's reply),
 *                               "prefill" (after the prompt ran, before anything was sampled from its
 *                               logits) or "mid" (after 5 tokens of the reply, a sampled token not fed yet);
 *                               K = -1: never. Exits after writing the checkpoint; resumed, it goes on.
 * A resumed run must print exactly what a run that never stopped prints after the checkpoint.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal_guest.h"

static const char *const prompts[] = {"Once upon a time", " The little dog", " Then the sun", " At the end"};
enum { TURNS = 4, REPLY = 12 };

static void fail(const char *what) {
    char msg[256];
    int32_t n = shoal_llm_last_error(msg, sizeof msg);
    printf("FAIL %s: %s\n", what, n > 0 ? msg : "?");
    exit(1);
}

/* 0: continue; exits after a written checkpoint. */
static void checkpoint(const char *where, int turn) {
    fflush(stdout);
    int32_t r = shoal_actor_checkpoint();
    if (r == SHOAL_ACTOR_WRITTEN) {
        printf("frozen at %s %d\n", where, turn);
        exit(0);
    }
    if (r != SHOAL_ACTOR_RESUMED) {
        char msg[256];
        int32_t n = shoal_actor_last_error(msg, sizeof msg - 1);
        msg[n < 0 ? 0 : n > 255 ? 255 : n] = 0;
        printf("FAIL checkpoint: %d %s\n", r, msg);
        exit(1);
    }
    printf("resumed at %s %d\n", where, turn);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: actor_chat MODEL turn|prefill|mid K\n");
        return 2;
    }
    const char *model = argv[1], *where = argv[2];
    int at = atoi(argv[3]);
    int32_t h[2];
    for (int s = 0; s < 2; s++) {
        h[s] = shoal_llm_open(model, (uint32_t)strlen(model), 0);
        if (h[s] <= 0) fail("open");
        shoal_llm_sampler sp = {0.8f, 40, 0.95f, 0.05f, 1.0f, 64, 1234 + (uint64_t)s};
        if (shoal_llm_set_sampler(h[s], &sp) < 0) fail("set_sampler");
    }
    int32_t ids[256];
    for (int turn = 0; turn < TURNS; turn++) {
        int32_t s = h[turn % 2];
        int32_t n = shoal_llm_tokenize(s, prompts[turn], (uint32_t)strlen(prompts[turn]),
                                       shoal_llm_position(s) == 0 ? SHOAL_LLM_ADD_BOS : 0, ids, 256);
        if (n <= 0 || n > 256) fail("tokenize");
        if (shoal_llm_prefill(s, ids, (uint32_t)n, NULL, 0) < 0) fail("prefill");
        if (turn == at && !strcmp(where, "prefill")) checkpoint("prefill", turn);
        int32_t tok = shoal_llm_sample(s), prev = -1;
        printf("turn %d (session %d):", turn, s);
        for (int k = 0; k < REPLY && tok >= 0; k++) {
            char piece[64];
            int32_t len = shoal_llm_detokenize(s, prev, tok, piece, sizeof piece - 1);
            if (len < 0) fail("detokenize");
            piece[len > 63 ? 63 : len] = 0;
            printf(" %d[%s]", tok, piece);
            prev = tok;
            if (turn == at && k == 4 && !strcmp(where, "mid")) {
                printf("\n");
                checkpoint("mid", turn);
            }
            int32_t next;
            if (shoal_llm_step(s, tok, &next) < 0) fail("step");
            tok = next;
        }
        printf("\n  position %d\n", shoal_llm_position(s));
        if (turn == at && !strcmp(where, "turn")) checkpoint("turn", turn);
    }
    shoal_llm_usage u;
    for (int s = 0; s < 2; s++)
        if (shoal_llm_usage_get(h[s], &u) == 0)
            printf("session %d: position %llu\n", s, (unsigned long long)u.position);
    return 0;
}
