/*
 * llm_dump: runs a model from prompt token ids and greedy decoding, writing every step's logits, for the
 * numpy reference (ref.py --compare) to check.
 *   llm_dump MODEL OUT [-n STEPS] [--threads N] [--kv f16] [--batch B] [--split K] IDS...
 * --split K prefills the first K prompt tokens, then the rest, to exercise a second batch at pos > 0.
 * Output: int32 n_prompt, n_steps, vocab; int32 prompt[]; per step int32 token, float32 logits[vocab].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lbackend.h"
#include "lsession.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: llm_dump MODEL OUT [-n STEPS] [--threads N] [--kv f16] [--batch B] [--split K] IDS...\n");
        return 2;
    }
    const char *model_path = argv[1], *out_path = argv[2];
    int steps = 128;
    uint32_t threads = 1, batch = 0, split = 0;
    lmodel_dtype kv = LDT_F32;
    int32_t prompt[4096];
    uint32_t np = 0;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--split") && i + 1 < argc)
            split = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kv") && i + 1 < argc)
            kv = strcmp(argv[++i], "f16") ? LDT_F32 : LDT_F16;
        else if (np < 4096)
            prompt[np++] = atoi(argv[i]);
    }
    shoal_error err = {0};
    lmodel *m = NULL;
    lbackend *be = NULL;
    lsession *s = NULL;
    FILE *f = NULL;
    float *logits = NULL;
    int rc = 1;
    lbackend_opts bo = {.n_threads = threads};
    if (lmodel_load(model_path, NULL, &m, &err) || lbackend_create("cpu", &bo, &be, &err) ||
        lbackend_attach(be, m, &err))
        goto fail;
    lsession_opts so = {.n_ctx = 0, .kv_dtype = kv, .max_batch = batch};
    if (lsession_new(m, &so, &s, &err))
        goto fail;
    uint32_t V = m->cfg.vocab_size;
    if (np + (uint32_t)steps > s->n_ctx)
        steps = (int)(s->n_ctx - np);
    logits = malloc((size_t)V * 4);
    f = fopen(out_path, "wb");
    if (!logits || !f) {
        fprintf(stderr, "llm_dump: cannot write %s\n", out_path);
        goto done;
    }
    int32_t hdr[3] = {(int32_t)np, steps, (int32_t)V};
    fwrite(hdr, 4, 3, f);
    fwrite(prompt, 4, np, f);
    if (split && split < np) {
        if (lsession_prefill(s, prompt, split, NULL, &err) ||
            lsession_prefill(s, prompt + split, np - split, logits, &err))
            goto fail;
    } else if (lsession_prefill(s, prompt, np, logits, &err)) {
        goto fail;
    }
    for (int i = 0; i < steps; i++) {
        int32_t best = 0;
        for (uint32_t v = 1; v < V; v++)
            if (logits[v] > logits[best])
                best = (int32_t)v;
        fwrite(&best, 4, 1, f);
        fwrite(logits, 4, V, f);
        if (i + 1 < steps && lsession_decode(s, best, logits, &err))
            goto fail;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "llm_dump: %s\n", err.message);
done:
    if (f)
        fclose(f);
    free(logits);
    lsession_free(s);
    lmodel_free(m);
    lbackend_destroy(be);
    return rc;
}
