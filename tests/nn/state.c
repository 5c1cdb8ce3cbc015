/*
 * state: a guest's inference state (shoal_nn_ctx_state_save / _load / shoal_nn_state_preloads) carried from
 * one instance to a new one, as `shoal resume` will do across processes.
 *
 *   continuity: a reference actor runs phase 1 then phase 2 of a script of shoal_llm and wasi_ephemeral_nn
 *     calls (sampling at temperature > 0 with seeds, a session left with logits not sampled yet, one with a
 *     sampled token not decoded yet, a closed handle, compute_single mid-request, a finished compute, an
 *     untouched context). Another actor runs phase 1, its state is saved, actor, ctx and registry are freed,
 *     a new registry is built from the saved preload specs, a new ctx loads the state, a new instance runs
 *     phase 2; and again in a new process (this program re-executed) that knows only the saved file. Every
 *     result (tokens, logit hashes, output hashes, counters, handles, errors) must equal the reference's,
 *     and saving the loaded state again gives the same bytes.
 *   refusals: the model missing; another model (aidreams260K) under the saved name; a ctx that is not
 *     fresh; registries with a missing preload and an embedder-added model (specs, re-binding); every truncation and every flipped byte of a small state (with the checksum left stale, and
 *     recomputed so that the field checks themselves are exercised): an error, never a crash or a leak, and
 *     the ctx left empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xxhash.h>

#include "shoal.h"

static char stories[PATH_MAX], aidreams[PATH_MAX], guest_path[PATH_MAX];
static shoal_module *module;

typedef struct actor {
    shoal_nn_ctx *nn;
    shoal_wasi *wasi;
    shoal_imports *imports;
    shoal_instance *inst;
} actor;

static shoal_nn_registry *registry_with(const char *name, const char *path) {
    shoal_nn_registry *reg = NULL;
    char spec[PATH_MAX + 64];
    snprintf(spec, sizeof spec, "%s:GGML:CPU:%s", name, path);
    assert_int_equal(shoal_nn_registry_new(&reg, NULL), SHOAL_OK);
    shoal_error err;
    if (shoal_nn_registry_preload(reg, spec, 1, &err) != SHOAL_OK)
        fail_msg("preload %s: %s", spec, err.message);
    return reg;
}

/* A new instance of the guest on a new ctx; with state, the ctx loads it first. */
static void actor_start(actor *a, shoal_nn_registry *reg, const uint8_t *state, size_t len) {
    memset(a, 0, sizeof *a);
    shoal_error err;
    shoal_wasi_config wc = {.stdin_fd = -1, .stdout_fd = 1, .stderr_fd = 2};
    assert_int_equal(shoal_nn_ctx_new(reg, &a->nn, NULL), SHOAL_OK);
    if (state && shoal_nn_ctx_state_load(a->nn, state, len, &err) != SHOAL_OK)
        fail_msg("state load: %s", err.message);
    assert_int_equal(shoal_wasi_new(&wc, &a->wasi, NULL), SHOAL_OK);
    assert_non_null(a->imports = shoal_imports_new());
    assert_int_equal(shoal_wasi_add_imports(a->wasi, a->imports, NULL), SHOAL_OK);
    assert_int_equal(shoal_nn_add_imports(a->nn, a->imports, NULL), SHOAL_OK);
    if (shoal_instantiate(module, a->imports, NULL, &a->inst, &err) != SHOAL_OK)
        fail_msg("instantiate: %s", err.message);
    int32_t code = 0;
    if (shoal_wasi_run(a->wasi, a->inst, &code, &err) != SHOAL_OK || code != 0) /* the reactor's _initialize */
        fail_msg("_initialize: %s", err.message);
}

static void actor_free(actor *a) {
    shoal_instance_free(a->inst);
    shoal_imports_free(a->imports);
    shoal_wasi_free(a->wasi);
    shoal_nn_ctx_free(a->nn);
}

static int32_t call(actor *a, const char *fn, int n, ...) {
    shoal_val args[4], r;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        args[i].i32 = va_arg(ap, int32_t);
    va_end(ap);
    shoal_error err;
    if (shoal_call_export(a->inst, fn, args, (uint32_t)n, &r, 1, &err) != SHOAL_OK)
        fail_msg("%s: %s", fn, err.message);
    return r.i32;
}

/* ---- the script ------------------------------------------------------------------------------------ */

typedef struct script {
    int32_t log[512];
    int n;
    /* what the guest keeps in its memory between phases */
    int32_t h1, h3, h4, g, g2, c0, c1, c2, t1, t3;
} script;

static int32_t rec(script *s, int32_t v) {
    assert_true(s->n < 512);
    s->log[s->n++] = v;
    return v;
}

static void phase1(actor *a, script *s) {
    s->h1 = rec(s, call(a, "llm_open", 1, 64));
    int32_t h2 = rec(s, call(a, "llm_open", 1, 0));
    s->h3 = rec(s, call(a, "llm_open", 1, 32));
    s->h4 = rec(s, call(a, "llm_open", 1, 16));
    assert_true(s->h1 > 0 && h2 > 0 && s->h3 > 0 && s->h4 > 0);
    rec(s, call(a, "llm_close", 1, h2)); /* a gap: the next open must reuse it after the resume too */
    rec(s, call(a, "llm_sampler", 3, s->h1, 42, 900));
    rec(s, call(a, "llm_sampler", 3, s->h3, 7, 1200));
    assert_true(rec(s, call(a, "llm_prompt", 2, s->h1, 0)) > 1);
    assert_true(rec(s, call(a, "llm_prompt", 2, s->h3, 1)) > 1);
    for (int i = 0; i < 6; i++) { /* ends right after a decode: logits on the host, not sampled yet */
        s->t1 = rec(s, call(a, "llm_sample", 1, s->h1));
        assert_true(s->t1 >= 0);
        assert_int_equal(rec(s, call(a, "llm_decode", 2, s->h1, s->t1)), 0);
    }
    s->t3 = rec(s, call(a, "llm_sample", 1, s->h3));
    for (int i = 0; i < 3; i++) /* ends with a sampled token not run yet */
        s->t3 = rec(s, call(a, "llm_step", 2, s->h3, s->t3));
    assert_true(s->t3 >= 0);

    s->g = rec(s, call(a, "wn_load", 3, 5, -1, 48));
    s->g2 = rec(s, call(a, "wn_load", 3, 9, 12, 0));
    assert_true(s->g >= 0 && s->g2 >= 0);
    s->c0 = rec(s, call(a, "wn_init", 1, s->g));
    assert_int_equal(rec(s, call(a, "wn_prompt", 2, s->c0, 2)), 0);
    for (int i = 0; i < 5; i++) { /* mid-request: a pending token */
        assert_int_equal(rec(s, call(a, "wn_single", 1, s->c0)), 0);
        rec(s, call(a, "wn_output", 3, s->c0, 0, 1));
    }
    s->c1 = rec(s, call(a, "wn_init", 1, s->g2));
    assert_int_equal(rec(s, call(a, "wn_prompt", 2, s->c1, 3)), 0);
    assert_int_equal(rec(s, call(a, "wn_compute", 1, s->c1)), 0);
    rec(s, call(a, "wn_output", 3, s->c1, 0, 0));
    rec(s, call(a, "wn_output", 3, s->c1, 1, 0));
    s->c2 = rec(s, call(a, "wn_init", 1, s->g2));
    assert_int_equal(rec(s, call(a, "wn_prompt", 2, s->c2, 0)), 0); /* no session yet */
    assert_true(rec(s, call(a, "llm_sample", 1, s->h4)) < 0); /* leaves a last error */
}

static void phase2(actor *a, script *s) {
    rec(s, call(a, "last_error_hash", 0));
    for (int i = 0; i < 8; i++) {
        s->t1 = rec(s, call(a, "llm_sample", 1, s->h1));
        assert_true(s->t1 >= 0);
        assert_int_equal(rec(s, call(a, "llm_decode", 2, s->h1, s->t1)), 0);
    }
    rec(s, call(a, "llm_decode_logits", 2, s->h1, s->t1));
    for (int i = 0; i < 6; i++)
        s->t3 = rec(s, call(a, "llm_step", 2, s->h3, s->t3));
    assert_true(s->t3 >= 0);
    assert_true(rec(s, call(a, "llm_prompt", 2, s->h4, 3)) > 0);
    assert_true(rec(s, call(a, "llm_sample", 1, s->h4)) >= 0);
    assert_int_equal(rec(s, call(a, "llm_open", 1, 20)), 2);
    int32_t hs[3] = {s->h1, s->h3, s->h4};
    for (int h = 0; h < 3; h++)
        for (int k = 0; k < 5; k++)
            rec(s, call(a, "llm_usage", 2, hs[h], k));

    for (int i = 0; i < 5; i++) {
        rec(s, call(a, "wn_single", 1, s->c0));
        rec(s, call(a, "wn_output", 3, s->c0, 0, 1));
        rec(s, call(a, "wn_output", 3, s->c0, 1, 0));
    }
    rec(s, call(a, "wn_fini", 1, s->c0));
    rec(s, call(a, "wn_prompt", 2, s->c0, 2)); /* the same prompt again: its KV is reused */
    rec(s, call(a, "wn_single", 1, s->c0));
    rec(s, call(a, "wn_output", 3, s->c0, 1, 0));
    rec(s, call(a, "wn_output", 3, s->c1, 0, 0)); /* the finished request's outputs are still there */
    rec(s, call(a, "wn_output", 3, s->c1, 1, 0));
    rec(s, call(a, "wn_prompt", 2, s->c1, 2));
    assert_int_equal(rec(s, call(a, "wn_compute", 1, s->c1)), 0);
    rec(s, call(a, "wn_output", 3, s->c1, 0, 0));
    rec(s, call(a, "wn_output", 3, s->c1, 1, 0));
    assert_int_equal(rec(s, call(a, "wn_compute", 1, s->c2)), 0);
    rec(s, call(a, "wn_output", 3, s->c2, 0, 0));
    rec(s, call(a, "wn_output", 3, s->c2, 1, 0));
    assert_int_equal(rec(s, call(a, "wn_unload", 1, s->g)), 0);
    rec(s, call(a, "wn_load", 3, 3, 4, 0)); /* ids are handed out as they would have been */
    rec(s, call(a, "wn_init", 1, s->g2));
}

static uint8_t *state_save(actor *a, size_t *len) {
    uint8_t *p = NULL;
    shoal_error err;
    if (shoal_nn_ctx_state_save(a->nn, &p, len, &err) != SHOAL_OK)
        fail_msg("state save: %s", err.message);
    return p;
}

static uint8_t *saved_state;
static size_t saved_len;

static void test_continuity(void **unused) {
    (void)unused;
    script ref = {0}, split = {0};
    shoal_nn_registry *reg0 = registry_with("stories", stories);
    actor a;
    actor_start(&a, reg0, NULL, 0);
    phase1(&a, &ref);
    int n1 = ref.n;
    phase2(&a, &ref);
    actor_free(&a);

    actor_start(&a, reg0, NULL, 0);
    phase1(&a, &split);
    assert_int_equal(split.n, n1);
    assert_memory_equal(split.log, ref.log, sizeof(int32_t) * (size_t)n1);
    script after1 = split; /* what the guest's memory holds at the checkpoint (phase 2 changes t1, t3) */
    size_t len;
    uint8_t *state = state_save(&a, &len);
    uint64_t device_ns = shoal_nn_ctx_device_ns(a.nn);
    actor_free(&a);
    shoal_nn_registry_free(reg0);

    /* a new "process": the registry comes from the preload specs the state recorded */
    char **specs = NULL;
    size_t n_specs = 0;
    assert_int_equal(shoal_nn_state_preloads(state, len, &specs, &n_specs, NULL), SHOAL_OK);
    assert_int_equal(n_specs, 1);
    char want[PATH_MAX + 64], real[PATH_MAX];
    assert_non_null(realpath(stories, real));
    snprintf(want, sizeof want, "stories:GGML:CPU:%s", real);
    assert_string_equal(specs[0], want);
    shoal_nn_registry *reg1 = NULL;
    assert_int_equal(shoal_nn_registry_new(&reg1, NULL), SHOAL_OK);
    for (size_t i = 0; i < n_specs; i++)
        assert_int_equal(shoal_nn_registry_preload(reg1, specs[i], 1, NULL), SHOAL_OK);
    free(specs);

    {
        actor b;
        actor_start(&b, reg1, state, len);
        assert_int_equal(shoal_nn_ctx_device_ns(b.nn), device_ns);
        size_t len2;
        uint8_t *again = state_save(&b, &len2);
        assert_int_equal(len2, len);
        assert_memory_equal(again, state, len); /* load then save is the identity */
        free(again);
        phase2(&b, &split);
        actor_free(&b);
    }
    assert_int_equal(split.n, ref.n);
    for (int i = n1; i < ref.n; i++)
        if (split.log[i] != ref.log[i])
            fail_msg("result %d of phase 2 differs: %d after the resume, %d without stopping", i - n1, split.log[i],
                     ref.log[i]);
    shoal_nn_registry_free(reg1);

    /* and in a real new process: this program again, with the state (and the guest's handles) in a file */
    char in[] = "/tmp/shoal_nn_state_XXXXXX", out[] = "/tmp/shoal_nn_state_out_XXXXXX";
    int fi = mkstemp(in), fo = mkstemp(out);
    assert_true(fi >= 0 && fo >= 0);
    assert_int_equal(write(fi, &after1, sizeof after1), (ssize_t)sizeof after1);
    assert_int_equal(write(fi, state, len), (ssize_t)len);
    close(fi);
    close(fo);
    char *argv[] = {"nn_state", "resume", in, out, NULL};
    pid_t pid;
    int ws;
    assert_int_equal(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ), 0);
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    script child;
    FILE *f = fopen(out, "rb");
    assert_non_null(f);
    assert_int_equal(fread(&child, sizeof child, 1, f), 1);
    fclose(f);
    unlink(in);
    unlink(out);
    assert_int_equal(child.n, ref.n);
    assert_memory_equal(child.log + n1, ref.log + n1, sizeof(int32_t) * (size_t)(ref.n - n1));
    print_message("%d results of phase 1, %d of phase 2 identical (same process and a new one); state %zu bytes\n",
                  n1, ref.n - n1, len);
    saved_state = state;
    saved_len = len;
}

/* ---- refusals ------------------------------------------------------------------------------------ */

/* The state of an empty ctx on reg: what a ctx must still save after a refused load. */
static uint8_t *empty_state(shoal_nn_registry *reg, size_t *len) {
    shoal_nn_ctx *c;
    assert_int_equal(shoal_nn_ctx_new(reg, &c, NULL), SHOAL_OK);
    uint8_t *p = NULL;
    assert_int_equal(shoal_nn_ctx_state_save(c, &p, len, NULL), SHOAL_OK);
    shoal_nn_ctx_free(c);
    return p;
}

static void assert_untouched(shoal_nn_ctx *c, const uint8_t *empty, size_t empty_len) {
    uint8_t *p = NULL;
    size_t n = 0;
    assert_int_equal(shoal_nn_ctx_state_save(c, &p, &n, NULL), SHOAL_OK);
    assert_int_equal(n, empty_len);
    assert_memory_equal(p, empty, n);
    free(p);
}

static void test_model_refusals(void **unused) {
    (void)unused;
    assert_non_null(saved_state);
    shoal_error err;
    shoal_nn_ctx *c;

    /* the name is not preloaded at all */
    shoal_nn_registry *other = registry_with("other", stories);
    size_t elen;
    uint8_t *empty = empty_state(other, &elen);
    assert_int_equal(shoal_nn_ctx_new(other, &c, NULL), SHOAL_OK);
    assert_int_equal(shoal_nn_ctx_state_load(c, saved_state, saved_len, &err), SHOAL_ERR_ARG);
    print_message("missing: %s\n", err.message);
    assert_non_null(strstr(err.message, "'stories'"));
    assert_non_null(strstr(err.message, "--nn-preload stories:GGML:CPU:"));
    assert_untouched(c, empty, elen);
    shoal_nn_ctx_free(c);
    free(empty);
    shoal_nn_registry_free(other);

    /* another model under the saved name */
    shoal_nn_registry *wrong = registry_with("stories", aidreams);
    empty = empty_state(wrong, &elen);
    assert_int_equal(shoal_nn_ctx_new(wrong, &c, NULL), SHOAL_OK);
    assert_int_equal(shoal_nn_ctx_state_load(c, saved_state, saved_len, &err), SHOAL_ERR_ARG);
    print_message("other identity: %s\n", err.message);
    const char *id1 = strstr(err.message, "sha256:"), *id2 = id1 ? strstr(id1 + 7, "sha256:") : NULL;
    assert_non_null(id2);
    assert_true(strncmp(id1, id2, 71) != 0);
    assert_non_null(strstr(err.message, "--nn-preload stories:GGML:CPU:"));
    assert_untouched(c, empty, elen);
    shoal_nn_ctx_free(c);
    free(empty);
    shoal_nn_registry_free(wrong);

    /* a ctx that already has sessions */
    shoal_nn_registry *reg = registry_with("stories", stories);
    actor a;
    actor_start(&a, reg, saved_state, saved_len);
    assert_int_equal(shoal_nn_ctx_state_load(a.nn, saved_state, saved_len, &err), SHOAL_ERR_ARG);
    actor_free(&a);
    shoal_nn_registry_free(reg);
}

/* Models of every kind in the registry: preloaded, preloaded from a missing file, added by the embedder. */
static void test_registry_kinds(void **unused) {
    (void)unused;
    shoal_nn_registry *reg = registry_with("stories", stories);
    shoal_model *extra = NULL;
    shoal_model_options mo = {.n_threads = 1};
    assert_int_equal(shoal_model_load(aidreams, &mo, &extra, NULL), SHOAL_OK);
    assert_int_equal(shoal_nn_registry_preload(reg, "gone:GGML:AUTO:/nonexistent/model.bin", 1, NULL), SHOAL_OK);
    assert_int_equal(shoal_nn_registry_add(reg, "extra", extra, NULL), SHOAL_OK);
    actor a;
    actor_start(&a, reg, NULL, 0);
    int32_t h = call(&a, "llm_open", 1, 16);
    assert_true(call(&a, "llm_prompt", 2, h, 0) > 0);
    size_t len;
    uint8_t *state = state_save(&a, &len);
    actor_free(&a);

    char **specs = NULL;
    size_t n = 0;
    assert_int_equal(shoal_nn_state_preloads(state, len, &specs, &n, NULL), SHOAL_OK);
    assert_int_equal(n, 2); /* the embedder's model has no spec */
    assert_non_null(strstr(specs[0], "stories:GGML:CPU:/"));
    assert_string_equal(specs[1], "gone:GGML:AUTO:/nonexistent/model.bin");
    free(specs);

    /* the missing preload need not exist on load; the embedder's model must */
    shoal_error err;
    shoal_nn_registry *only = registry_with("stories", stories);
    shoal_nn_ctx *c;
    assert_int_equal(shoal_nn_ctx_new(only, &c, NULL), SHOAL_OK);
    assert_int_equal(shoal_nn_ctx_state_load(c, state, len, &err), SHOAL_ERR_ARG);
    assert_non_null(strstr(err.message, "'extra'"));
    assert_non_null(strstr(err.message, "--nn-preload extra:GGML:AUTO:PATH"));
    assert_int_equal(shoal_nn_registry_add(only, "extra", extra, NULL), SHOAL_OK);
    assert_int_equal(shoal_nn_ctx_state_load(c, state, len, &err), SHOAL_OK);
    shoal_nn_ctx_free(c);
    shoal_nn_registry_free(only);
    shoal_nn_registry_free(reg);
    shoal_model_free(extra);
    free(state);
}

static void put_checksum(uint8_t *p, size_t len) {
    uint64_t h = XXH3_64bits(p, len - 8);
    for (int i = 0; i < 8; i++)
        p[len - 8 + i] = (uint8_t)(h >> (8 * i));
}

static void test_corrupt(void **unused) {
    (void)unused;
    shoal_nn_registry *reg = registry_with("stories", stories);
    /* a small state: a session (8 positions of context) with logits, a graph, a context mid-request */
    actor a;
    actor_start(&a, reg, NULL, 0);
    int32_t h = call(&a, "llm_open", 1, 8);
    assert_true(call(&a, "llm_prompt", 2, h, 0) > 0);
    int32_t g = call(&a, "wn_load", 3, 1, -1, 8);
    int32_t c = call(&a, "wn_init", 1, g);
    assert_int_equal(call(&a, "wn_prompt", 2, c, 0), 0);
    assert_int_equal(call(&a, "wn_single", 1, c), 0);
    size_t len;
    uint8_t *state = state_save(&a, &len);
    actor_free(&a);
    size_t elen;
    uint8_t *empty = empty_state(reg, &elen);
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    shoal_error err;
    shoal_nn_ctx *x;
    assert_int_equal(shoal_nn_ctx_new(reg, &x, NULL), SHOAL_OK);

    size_t n_ok = 0, n_arg = 0, n_format = 0;
    for (size_t cut = 0; cut < len; cut++) {
        /* as cut off (the checksum is wrong), then with a valid checksum of the shorter bytes */
        memcpy(buf, state, cut);
        assert_int_equal(shoal_nn_ctx_state_load(x, buf, cut, &err), SHOAL_ERR_FORMAT);
        if (cut >= 12) {
            put_checksum(buf, cut);
            shoal_status st = shoal_nn_ctx_state_load(x, buf, cut, &err);
            if (st != SHOAL_ERR_FORMAT)
                fail_msg("cut at %zu of %zu: %s: %s", cut, len, shoal_status_name(st), err.message);
        }
    }
    assert_untouched(x, empty, elen);
    for (size_t i = 0; i < len; i++) {
        memcpy(buf, state, len);
        buf[i] ^= 0x5a;
        assert_int_equal(shoal_nn_ctx_state_load(x, buf, len, &err), SHOAL_ERR_FORMAT);
        if (i >= len - 8)
            continue;
        put_checksum(buf, len); /* now only the field checks (and each KV snapshot's own) stand guard */
        shoal_status st = shoal_nn_ctx_state_load(x, buf, len, &err);
        if (st == SHOAL_OK) {
            n_ok++;
            shoal_nn_ctx_free(x); /* loaded: frees what it built */
            assert_int_equal(shoal_nn_ctx_new(reg, &x, NULL), SHOAL_OK);
            continue;
        }
        if (st != SHOAL_ERR_FORMAT && st != SHOAL_ERR_ARG)
            fail_msg("byte %zu flipped: %s: %s", i, shoal_status_name(st), err.message);
        n_arg += st == SHOAL_ERR_ARG;
        n_format += st == SHOAL_ERR_FORMAT;
        if (i % 64 == 0)
            assert_untouched(x, empty, elen);
    }
    assert_untouched(x, empty, elen);
    print_message("small state %zu bytes: every cut refused; flips with a fixed checksum: %zu loaded (counters, "
                  "options), %zu FORMAT, %zu ARG (model name/identity)\n",
                  len, n_ok, n_format, n_arg);
    /* after all those refusals the ctx takes the real state */
    assert_int_equal(shoal_nn_ctx_state_load(x, state, len, &err), SHOAL_OK);
    shoal_nn_ctx_free(x);
    free(buf);
    free(empty);
    free(state);
    shoal_nn_registry_free(reg);
}

/* The child of test_continuity: `nn_state resume IN OUT`. IN holds the guest's handles and the state; the
 * registry comes from the state's preload specs; phase 2's results go to OUT. */
static int resume_child(const char *in, const char *out) {
    FILE *f = fopen(in, "rb");
    script s;
    if (!f || fread(&s, sizeof s, 1, f) != 1)
        return 2;
    uint8_t *state = malloc(1 << 22);
    size_t len = state ? fread(state, 1, 1 << 22, f) : 0;
    fclose(f);
    char **specs = NULL;
    size_t n_specs = 0;
    shoal_nn_registry *reg = NULL;
    shoal_error err;
    if (shoal_nn_state_preloads(state, len, &specs, &n_specs, &err) || shoal_nn_registry_new(&reg, &err)) {
        fprintf(stderr, "resume: %s\n", err.message);
        return 3;
    }
    for (size_t i = 0; i < n_specs; i++)
        if (shoal_nn_registry_preload(reg, specs[i], 1, &err)) {
            fprintf(stderr, "resume: %s\n", err.message);
            return 3;
        }
    free(specs);
    actor a;
    actor_start(&a, reg, state, len);
    phase2(&a, &s);
    actor_free(&a);
    shoal_nn_registry_free(reg);
    free(state);
    f = fopen(out, "wb");
    if (!f || fwrite(&s, sizeof s, 1, f) != 1)
        return 4;
    return fclose(f) ? 4 : 0;
}

int main(int argc, char **argv) {
    const char *models = getenv("SHOAL_MODELS"), *guests = getenv("SHOAL_GUEST_DIR");
    if (!models || !guests) {
        fprintf(stderr, "SKIP: SHOAL_MODELS / SHOAL_GUEST_DIR not set\n");
        return 77;
    }
    snprintf(stories, sizeof stories, "%s/stories260K/stories260K.bin", models);
    snprintf(aidreams, sizeof aidreams, "%s/aidreams260K/aidreams260K.bin", models);
    snprintf(guest_path, sizeof guest_path, "%s/state_guest.wasm", guests);
    if (access(stories, R_OK) || access(aidreams, R_OK)) {
        fprintf(stderr, "SKIP: %s or %s is missing\n", stories, aidreams);
        return 77;
    }
    if (access(guest_path, R_OK)) {
        fprintf(stderr, "SKIP: %s was not built (no wasm32-wasi toolchain)\n", guest_path);
        return 77;
    }
    shoal_error err;
    if (shoal_module_load_file(guest_path, &module, &err) != SHOAL_OK) {
        fprintf(stderr, "%s: %s\n", guest_path, err.message);
        return 1;
    }
    if (argc == 4 && !strcmp(argv[1], "resume")) {
        int rc = resume_child(argv[2], argv[3]);
        shoal_module_free(module);
        return rc;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_continuity),
        cmocka_unit_test(test_model_refusals),
        cmocka_unit_test(test_registry_kinds),
        cmocka_unit_test(test_corrupt),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(saved_state);
    shoal_module_free(module);
    return rc;
}
