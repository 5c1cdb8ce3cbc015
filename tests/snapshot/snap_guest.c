/* snap_guest.c: a guest that saves and restores shoal_llm sessions in its preopened directory (fd 3).
 *   snap_guest all     prompt, 10 tokens, save, 10 more; a second session restored from the file must
 *                      give the same 10; then every refusal (paths outside the directory, bad fd, bad
 *                      pointer, another model's snapshot, a missing file). Prints all 20 tokens.
 *   snap_guest first   prompt, 10 tokens, save; prints them.
 *   snap_guest second  restore in a new process, 10 tokens; prints them. */
#include <stdio.h>
#include <string.h>

#include "shoal_guest.h"

static int fails;

static void expect(const char *what, int32_t got, int32_t want) {
    char msg[300];
    shoal_llm_last_error(msg, sizeof msg);
    if (got != want) {
        printf("FAIL %s: %d, expected %d (%s)\n", what, got, want, msg);
        fails++;
    } else {
        printf("ok   %s%s%s\n", what, want < 0 ? ": " : "", want < 0 ? msg : "");
    }
}

static int32_t open_session(void) {
    int32_t h = shoal_llm_open("default", 7, 128);
    shoal_llm_sampler sp = {0.9f, 40, 0.95f, 0.05f, 1.1f, 64, 5};
    if (h <= 0 || shoal_llm_set_sampler(h, &sp))
        printf("FAIL open\n");
    return h;
}

/* Host sampling, feeding each token back, so the logits are always fresh when the session is saved. */
static void run(int32_t h, int n, int32_t *out) {
    for (int i = 0; i < n; i++) {
        int32_t id = shoal_llm_sample(h);
        out[i] = id;
        if (id < 0 || shoal_llm_prefill(h, &id, 1, 0, 0)) {
            printf("FAIL step %d\n", i);
            fails++;
        }
    }
}

static void print(const int32_t *t, int n) {
    printf("tokens:");
    for (int i = 0; i < n; i++)
        printf(" %d", t[i]);
    printf("\n");
}

int main(int argc, char **argv) {
    static const int32_t prompt[] = {1, 403, 407, 261, 378};
    int32_t a[20], b[10];
    const char *mode = argc > 1 ? argv[1] : "all";
    if (!strcmp(mode, "second")) {
        int32_t h = shoal_llm_open("default", 7, 128);
        expect("restore in a new process", shoal_llm_restore(h, 3, "s.st", 4), 15);
        run(h, 10, a);
        print(a, 10);
        return fails != 0;
    }
    int32_t h = open_session();
    if (shoal_llm_prefill(h, prompt, 5, 0, 0))
        printf("FAIL prefill\n");
    run(h, 10, a);
    expect("save", shoal_llm_save(h, 3, "s.st", 4), 0);
    if (!strcmp(mode, "first")) {
        print(a, 10);
        return fails != 0;
    }
    run(h, 10, a + 10);
    print(a, 20);
    int32_t h2 = shoal_llm_open("default", 7, 128); /* default sampler: the snapshot's replaces it */
    expect("restore", shoal_llm_restore(h2, 3, "s.st", 4), 15);
    run(h2, 10, b);
    expect("continues as the original did", memcmp(b, a + 10, sizeof b), 0);
    /* The original session, rewound by a restore of its own earlier state. */
    expect("restore through a missing directory", shoal_llm_restore(h, 3, "./sub/../s.st", 13), SHOAL_LLM_EIO);
    expect("restore into the original", shoal_llm_restore(h, 3, "s.st", 4), 15);
    run(h, 10, b);
    expect("original continues the same", memcmp(b, a + 10, sizeof b), 0);
    expect("save outside the directory", shoal_llm_save(h, 3, "../x.st", 7), SHOAL_LLM_EIO);
    expect("save to an absolute path", shoal_llm_save(h, 3, "/tmp/x.st", 9), SHOAL_LLM_EIO);
    expect("save through a bad fd", shoal_llm_save(h, 42, "x.st", 4), SHOAL_LLM_EIO);
    expect("save with a bad pointer", shoal_llm_save(h, 3, (const char *)0x7ffffff0, 100), SHOAL_LLM_EBOUNDS);
    expect("restore a missing file", shoal_llm_restore(h, 3, "nope.st", 7), SHOAL_LLM_EIO);
    expect("save on a bad handle", shoal_llm_save(99, 3, "x.st", 4), SHOAL_LLM_EHANDLE);
    int32_t o = shoal_llm_open("other", 5, 64);
    int32_t one = 1;
    shoal_llm_prefill(o, &one, 1, 0, 0);
    expect("save another model's session", shoal_llm_save(o, 3, "o.st", 4), 0);
    expect("restore another model's snapshot", shoal_llm_restore(h, 3, "o.st", 4), SHOAL_LLM_ESNAPSHOT);
    expect("position unchanged after refusal", shoal_llm_position(h), 25);
    return fails != 0;
}
