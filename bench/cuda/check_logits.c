/*
 * check_logits: teacher-forced logits of Shoal against a reference (PyTorch's forward pass of the same
 * weights, saved by make_model.py as a [tokens, vocab] float32 .npy).
 *
 *   check_logits MODEL TOKENS.txt|random:N REF.npy|cpu TOLERANCE [--device cpu|cuda] [--kv f32|f16]
 *
 * With `cpu` as the reference, the CPU backend computes it in the same process (same weights, same loader):
 * that isolates the device backend from the loaders. `random:N` makes N random token ids.
 *
 * Decode path: the tokens fed one at a time, logits compared at every position. Prefill path: fresh
 * sessions prefilled with the first k tokens (several k), the last logits compared. The error of one row
 * is max|ours - ref| / max|ref| (the logit scale); the worst row must be <= TOLERANCE.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal.h"

static float *load_npy(const char *path, size_t *rows, size_t *cols) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char head[10];
    if (fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6)) goto fail;
    size_t hlen = head[8] | (size_t)head[9] << 8;
    if (head[6] >= 2) { /* version 2: 4-byte header length */
        unsigned char ext[2];
        if (fread(ext, 1, 2, f) != 2) goto fail;
        hlen |= (size_t)ext[0] << 16 | (size_t)ext[1] << 24;
    }
    char *h = calloc(1, hlen + 1);
    if (!h || fread(h, 1, hlen, f) != hlen) goto fail;
    if (!strstr(h, "'<f4'") || strstr(h, "'fortran_order': True")) {
        fprintf(stderr, "%s: expected a C-ordered float32 array\n", path);
        goto fail;
    }
    char *shape = strstr(h, "'shape': (");
    if (!shape || sscanf(shape, "'shape': (%zu, %zu)", rows, cols) != 2) goto fail;
    free(h);
    float *data = malloc(*rows * *cols * sizeof *data);
    if (!data || fread(data, sizeof *data, *rows * *cols, f) != *rows * *cols) goto fail;
    fclose(f);
    return data;
fail:
    fclose(f);
    return NULL;
}

static double row_error(const float *ours, const float *ref, size_t n) {
    double maxdiff = 0, maxref = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)ours[i] - ref[i]);
        if (d > maxdiff || isnan(d)) maxdiff = isnan(d) ? INFINITY : d;
        if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
    }
    return maxdiff / (maxref > 0 ? maxref : 1);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: check_logits MODEL TOKENS.txt REF.npy TOLERANCE [--device D] [--kv f32|f16]\n");
        return 2;
    }
    const char *device = "cuda";
    shoal_kv_type kv = SHOAL_KV_F32;
    bool prefill_only = false;
    for (int i = 5; i < argc; i++)
        if (!strcmp(argv[i], "--prefill-only")) prefill_only = true;
    for (int i = 5; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--device")) device = argv[i + 1];
        else if (!strcmp(argv[i], "--kv")) kv = !strcmp(argv[i + 1], "f16") ? SHOAL_KV_F16 : SHOAL_KV_F32;
    }
    double tol = atof(argv[4]);
    size_t rows = 0, cols = 0, nt = 0;
    float *ref = NULL;
    int32_t *tok = NULL;
    shoal_error err = {0};
    bool cpu_ref = !strcmp(argv[3], "cpu");
    if (!strncmp(argv[2], "random:", 7)) {
        rows = (size_t)atoi(argv[2] + 7);
    } else if (!cpu_ref) {
        ref = load_npy(argv[3], &rows, &cols);
        if (!ref) {
            fprintf(stderr, "cannot read %s\n", argv[3]);
            return 1;
        }
    } else {
        rows = 4096;
    }
    tok = malloc(rows * sizeof *tok);
    if (!strncmp(argv[2], "random:", 7)) {
        srand(11);
        nt = rows;
    } else {
        FILE *tf = fopen(argv[2], "r");
        while (tf && nt < rows && fscanf(tf, "%d", &tok[nt]) == 1) nt++;
        if (tf) fclose(tf);
        rows = nt;
    }
    shoal_model *m = NULL;
    shoal_model_options mo = {0};
    mo.backend = device;
    if (shoal_model_load(argv[1], &mo, &m, &err)) {
        fprintf(stderr, "load: %s\n", err.message);
        return 1;
    }
    shoal_model_info info;
    shoal_model_get_info(m, &info);
    if (!strncmp(argv[2], "random:", 7))
        for (size_t i = 0; i < nt; i++) tok[i] = rand() % (int)info.vocab_size;
    if (cpu_ref) {
        /* The reference: the CPU backend on the same file, teacher-forced through the decode path. */
        cols = info.vocab_size;
        ref = malloc(nt * cols * sizeof *ref);
        shoal_model *cm = NULL;
        shoal_model_options co = {0};
        shoal_session *cs = NULL;
        shoal_session_options cso = {.n_ctx = (uint32_t)nt + 8, .kv_type = SHOAL_KV_F32};
        if (!ref || shoal_model_load(argv[1], &co, &cm, &err) || shoal_session_new(cm, &cso, &cs, &err)) {
            fprintf(stderr, "cpu reference: %s\n", err.message);
            return 1;
        }
        for (size_t i = 0; i < nt; i++)
            if (shoal_session_decode(cs, tok[i], ref + i * cols, &err)) {
                fprintf(stderr, "cpu reference: %s\n", err.message);
                return 1;
            }
        shoal_session_free(cs);
        shoal_model_free(cm);
    }
    if (info.vocab_size != cols) {
        fprintf(stderr, "vocab %u vs reference %zu\n", info.vocab_size, cols);
        return 1;
    }
    float *logits = malloc(cols * sizeof *logits);
    shoal_session_options so = {.n_ctx = (uint32_t)rows + 8, .kv_type = kv, .max_batch = (uint32_t)rows};
    shoal_session *s = NULL;
    if (shoal_session_new(m, &so, &s, &err)) {
        fprintf(stderr, "session: %s\n", err.message);
        return 1;
    }
    int fail = 0;
    const size_t ks[] = {1, 2, 3, 17, 128, 255, 256};
    double pworst = 0;
    for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
        size_t k = ks[j];
        if (k > nt) continue;
        shoal_session_reset(s);
        if (shoal_session_prefill(s, tok, (uint32_t)k, logits, &err)) {
            fprintf(stderr, "prefill %zu: %s\n", k, err.message);
            return 1;
        }
        double e = row_error(logits, ref + (k - 1) * cols, cols);
        printf("  prefill %3zu tokens: relative error %.3g\n", k, e);
        if (e > pworst || isnan(e)) pworst = e;
    }
    shoal_session_reset(s);
    double worst = 0;
    if (prefill_only) nt = 0;
    size_t worst_at = 0;
    for (size_t i = 0; i < nt; i++) {
        if (shoal_session_decode(s, tok[i], logits, &err)) {
            fprintf(stderr, "decode %zu: %s\n", i, err.message);
            return 1;
        }
        double e = row_error(logits, ref + i * cols, cols);
        if (e > worst || isnan(e)) worst = e, worst_at = i;
    }
    printf("%s %s (%s, kv %s): decode path, %zu positions: worst relative error %.3g at %zu (tolerance %g)\n",
           info.backend, info.weight_type, argv[1], kv == SHOAL_KV_F16 ? "f16" : "f32", nt, worst, worst_at, tol);
    fail |= !(worst <= tol);
    fail |= !(pworst <= tol);
    printf("%s\n", fail ? "FAIL" : "PASS");
    shoal_session_free(s);
    shoal_model_free(m);
    free(logits), free(ref), free(tok);
    return fail;
}
