/*
 * migrate.c: a session moved between devices through a KV snapshot continues as if it had never stopped.
 *
 *   migrate MODEL FROM TO [--kv f32|f16] [--prompt P] [--before N] [--after M] [--threads T] [--exact]
 *
 * FROM and TO are backends ("cpu", "cuda"). A session on FROM prefills P tokens and decodes N greedily, is
 * saved, and goes on for M more steps: the uninterrupted reference. A session on TO restores the snapshot
 * and is fed the reference's next M tokens; a third session, on TO from the start (native), is fed all of
 * them. At every step the migrated session's logits are compared with the reference's and with the native
 * session's: argmax agreement (greedy decoding is token-identical exactly when the argmax agrees at every
 * step, since then feeding the reference's tokens is what it would have fed itself), relative L2 error and
 * largest absolute difference.
 *
 * Exit status: 0 when the migration holds, 1 when it does not, 2 on a usage or load error, 77 when a
 * backend is not available here (no GPU). "Holds": FROM == TO: the migrated logits equal the reference's
 * bit for bit. FROM != TO with --exact (F32 weights and KV): every argmax agrees with the reference's and
 * the native session's. Otherwise (F16/BF16): the migrated session is no further from the reference than
 * the native session is (argmax disagreements and relative L2 within 2x of native's, plus 1e-6), i.e.
 * moving adds nothing to what running on the other device already changes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shoal.h"

typedef struct diff {
    uint32_t steps, agree, first_bad; /* first_bad: step of the first argmax disagreement, or steps */
    double max_rel, max_abs;
    bool identical;
} diff;

static int32_t argmax(const float *x, uint32_t n) {
    uint32_t b = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return (int32_t)b;
}

static void diff_add(diff *d, const float *a, const float *ref, uint32_t n) {
    double num = 0, den = 0, mx = 0;
    for (uint32_t i = 0; i < n; i++) {
        double e = (double)a[i] - ref[i];
        num += e * e;
        den += (double)ref[i] * ref[i];
        mx = fabs(e) > mx ? fabs(e) : mx;
    }
    double rel = sqrt(num / (den > 0 ? den : 1));
    if (argmax(a, n) == argmax(ref, n))
        d->agree++;
    else if (d->first_bad == UINT32_MAX)
        d->first_bad = d->steps;
    d->identical = d->identical && !memcmp(a, ref, (size_t)n * 4);
    d->max_rel = rel > d->max_rel ? rel : d->max_rel;
    d->max_abs = mx > d->max_abs ? mx : d->max_abs;
    d->steps++;
}

static void diff_print(const char *what, const diff *d) {
    printf("  %-34s argmax agrees %u/%u", what, d->agree, d->steps);
    if (d->first_bad != UINT32_MAX)
        printf(" (first differs at step %u)", d->first_bad);
    printf(", rel L2 <= %.3g, max |diff| %.3g%s\n", d->max_rel, d->max_abs, d->identical ? ", bit-identical" : "");
}

static shoal_model *load(const char *path, const char *dev, uint32_t threads, int *rc) {
    shoal_model_options mo = {0};
    mo.backend = dev;
    mo.n_threads = threads;
    shoal_model *m = NULL;
    shoal_error err = {0};
    if (shoal_model_load(path, &mo, &m, &err)) {
        fprintf(stderr, "migrate: %s on %s: %s\n", path, dev, err.message);
        *rc = err.status == SHOAL_ERR_DEVICE || err.status == SHOAL_ERR_NOTFOUND ? 77 : 2;
        if (*rc == 77)
            printf("SKIP: backend %s is not available here: %s\n", dev, err.message);
        return NULL;
    }
    return m;
}

static shoal_session *session(shoal_model *m, uint32_t n_ctx, shoal_kv_type kv) {
    shoal_session_options so = {n_ctx, kv, 0};
    shoal_session *s = NULL;
    shoal_error err = {0};
    if (shoal_session_new(m, &so, &s, &err))
        fprintf(stderr, "migrate: %s\n", err.message);
    return s;
}

#define CHECK(x)                                                                                                   \
    do {                                                                                                           \
        if (x) {                                                                                                   \
            fprintf(stderr, "migrate: %s:%d: %s\n", __FILE__, __LINE__, err.message);                              \
            rc = 2;                                                                                                \
            goto done;                                                                                             \
        }                                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    const char *path = NULL, *from = NULL, *to = NULL;
    uint32_t P = 16, N = 16, M = 32, threads = 2;
    shoal_kv_type kv = SHOAL_KV_F32;
    bool exact = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--kv") && more)
            kv = !strcmp(argv[++i], "f16") ? SHOAL_KV_F16 : SHOAL_KV_F32;
        else if (!strcmp(a, "--prompt") && more)
            P = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--before") && more)
            N = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--after") && more)
            M = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && more)
            threads = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--exact"))
            exact = true;
        else if (!path)
            path = a;
        else if (!from)
            from = a;
        else if (!to)
            to = a;
        else
            path = NULL, i = argc;
    }
    if (!path || !from || !to || !P || !M) {
        fprintf(stderr, "usage: migrate MODEL FROM TO [--kv f32|f16] [--prompt P] [--before N] [--after M] "
                        "[--threads T] [--exact]\n");
        return 2;
    }
    int rc = 0;
    shoal_error err = {0};
    shoal_model *mf = NULL, *mt = NULL;
    shoal_session *ref = NULL, *mig = NULL, *nat = NULL;
    int32_t *hist = NULL;
    float *ref_logits = NULL, *lm = NULL, *ln = NULL;
    char snap[256];
    snprintf(snap, sizeof snap, "/tmp/migrate.%d.st", (int)getpid());
    if (!(mf = load(path, from, threads, &rc)) || !(mt = load(path, to, threads, &rc)))
        goto done;
    shoal_model_info info;
    shoal_model_get_info(mf, &info);
    uint32_t V = info.vocab_size, T = P + N + M;
    if (T > info.seq_len) {
        fprintf(stderr, "migrate: %u positions, the model has %u\n", T, info.seq_len);
        rc = 2;
        goto done;
    }
    hist = malloc((size_t)T * sizeof *hist);
    ref_logits = malloc((size_t)(N + M + 1) * V * 4); /* after the prompt, then after each decoded token */
    lm = malloc((size_t)V * 4);
    ln = malloc((size_t)V * 4);
    if (!hist || !ref_logits || !lm || !ln || !(ref = session(mf, T, kv)) || !(mig = session(mt, T, kv)) ||
        !(nat = session(mt, T, kv))) {
        rc = 2;
        goto done;
    }
    for (uint32_t i = 0; i < P; i++)
        hist[i] = (int32_t)(1 + (i * 2654435761u + 12345u) % (V - 1));
    /* The reference: never stops. The snapshot is taken after N decoded tokens, with the logits. */
    CHECK(shoal_session_prefill(ref, hist, P, ref_logits, &err));
    for (uint32_t j = 0; j < N + M; j++) {
        if (j == N) {
            shoal_snapshot_save_opts so = {hist, P + N, NULL, ref_logits + (size_t)j * V};
            CHECK(shoal_session_save(ref, snap, &so, &err));
        }
        hist[P + j] = argmax(ref_logits + (size_t)j * V, V);
        CHECK(shoal_session_decode(ref, hist[P + j], ref_logits + (size_t)(j + 1) * V, &err));
    }
    /* Migrated: restored on TO, then fed the reference's tokens. */
    shoal_snapshot_restored r = {.logits = lm};
    CHECK(shoal_session_restore(mig, snap, &r, &err));
    /* Native: on TO from the start. */
    CHECK(shoal_session_prefill(nat, hist, P + N, ln, &err));
    diff dm = {0, 0, UINT32_MAX, 0, 0, true}, dn = dm, dmn = dm;
    for (uint32_t j = N; j <= N + M; j++) {
        if (j > N) {
            CHECK(shoal_session_decode(mig, hist[P + j - 1], lm, &err));
            CHECK(shoal_session_decode(nat, hist[P + j - 1], ln, &err));
        }
        diff_add(&dm, lm, ref_logits + (size_t)j * V, V);
        diff_add(&dn, ln, ref_logits + (size_t)j * V, V);
        diff_add(&dmn, lm, ln, V);
    }
    printf("migrate %s (%s weights, KV %s): %s -> %s, prompt %u, %u tokens before the snapshot, %u after\n",
           info.name, info.weight_type, kv == SHOAL_KV_F16 ? "f16" : "f32", from, to, P, N, M);
    diff_print("migrated vs uninterrupted:", &dm);
    diff_print("native on TO vs uninterrupted:", &dn);
    diff_print("migrated vs native on TO:", &dmn);
    bool ok;
    if (!strcmp(from, to))
        ok = dm.identical;
    else if (exact)
        ok = dm.agree == dm.steps && dmn.agree == dmn.steps;
    else
        ok = dm.steps - dm.agree <= 2 * (dn.steps - dn.agree) && dm.max_rel <= 2 * dn.max_rel + 1e-6;
    printf("%s: greedy tokens after the move %s those of never stopping (%u of %u steps)\n", ok ? "PASS" : "FAIL",
           dm.agree == dm.steps ? "equal" : "differ from", dm.agree, dm.steps);
    rc = ok ? 0 : 1;
done:
    unlink(snap);
    free(hist);
    free(ref_logits);
    free(lm);
    free(ln);
    shoal_session_free(ref);
    shoal_session_free(mig);
    shoal_session_free(nat);
    shoal_model_free(mf);
    shoal_model_free(mt);
    return rc;
}
