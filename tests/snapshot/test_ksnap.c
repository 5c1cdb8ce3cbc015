/* test_ksnap.c: KV snapshots on a real model (stories260K): save/restore round trips continue token for
 * token as a session that never stopped (greedy and seeded sampling, f32 and f16 KV), and every refusal
 * (another model of the same shape, another shape, another dtype, a short context, truncation, corruption
 * of data and of metadata, a small token buffer) leaves the session exactly as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lapi.h"
#include "lload.h"
#include "shoal.h"

static char dir[256], stories[1024], aidreams[1024], twin[512];
static shoal_model *model, *other_shape, *other_same_shape;
static uint32_t V;
static const int32_t prompt[] = {1, 403, 407, 261, 378, 432, 383, 286, 300, 45, 67, 89, 123};
#define NP ((uint32_t)(sizeof prompt / sizeof prompt[0]))

static char *tmp(const char *name) {
    static char buf[4][512];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static shoal_session *new_session(shoal_model *m, shoal_kv_type kv, uint32_t n_ctx) {
    shoal_session_options o = {n_ctx, kv, 0};
    shoal_session *s = NULL;
    shoal_error err = {0};
    if (shoal_session_new(m, &o, &s, &err)) {
        print_error("shoal_session_new: %s\n", err.message);
        fail();
    }
    return s;
}

static shoal_sampler *new_sampler(float temp, uint64_t seed) {
    shoal_sampler_params p;
    shoal_sampler_params_default(&p);
    p.temperature = temp;
    p.seed = seed;
    p.repeat_penalty = 1.1f; /* uses the history, so the restored tokens matter */
    shoal_sampler *s = NULL;
    assert_int_equal(shoal_sampler_new(&p, &s, NULL), SHOAL_OK);
    return s;
}

/* The generation loop of `shoal generate`: sample from logits, then feed the sample. hist grows by n. */
static void run(shoal_session *s, shoal_sampler *sm, float *logits, int32_t *hist, uint32_t *n_hist, uint32_t n) {
    shoal_error err = {0};
    for (uint32_t i = 0; i < n; i++) {
        int32_t t = shoal_sampler_next(sm, logits, V, hist, *n_hist);
        assert_true(t >= 0);
        hist[(*n_hist)++] = t;
        assert_int_equal(shoal_session_decode(s, t, logits, &err), SHOAL_OK);
    }
}

/* Reference: prompt then 2n steps without stopping; versus prompt, n steps, save, restore into a new
 * session (and a new sampler from the file), n more steps. Same tokens, same final logits, bit for bit. */
static void round_trip(shoal_kv_type kv, float temp, uint64_t seed, uint32_t n) {
    shoal_error err = {0};
    float *la = malloc(V * 4), *lb = malloc(V * 4);
    int32_t ha[256], hb[256];
    uint32_t na = NP, nb = NP;
    memcpy(ha, prompt, sizeof prompt);
    memcpy(hb, prompt, sizeof prompt);

    shoal_session *a = new_session(model, kv, 128);
    shoal_sampler *sa = new_sampler(temp, seed);
    assert_int_equal(shoal_session_prefill(a, prompt, NP, la, &err), SHOAL_OK);
    run(a, sa, la, ha, &na, 2 * n);

    shoal_session *b = new_session(model, kv, 128);
    shoal_sampler *sb = new_sampler(temp, seed);
    assert_int_equal(shoal_session_prefill(b, prompt, NP, lb, &err), SHOAL_OK);
    run(b, sb, lb, hb, &nb, n);
    shoal_snapshot_save_opts so = {hb, nb, sb, lb};
    assert_int_equal(shoal_session_save(b, tmp("rt.st"), &so, &err), SHOAL_OK);
    shoal_session_free(b);
    shoal_sampler_free(sb);

    shoal_session *c = new_session(model, kv, 128);
    shoal_sampler *sc = NULL;
    int32_t hc[256];
    float *lc = malloc(V * 4);
    shoal_snapshot_restored r = {.tokens = hc, .tokens_cap = 256, .new_sampler = &sc, .logits = lc};
    if (shoal_session_restore(c, tmp("rt.st"), &r, &err))
        fail_msg("restore: %s", err.message);
    assert_non_null(sc);
    assert_int_equal(r.n_positions, NP + n);
    assert_int_equal(r.n_tokens, NP + n);
    assert_int_equal(shoal_session_position(c), NP + n);
    assert_true(r.has_logits && r.has_sampler);
    assert_true(r.sampler_params.temperature == temp && r.sampler_params.seed == seed);
    assert_memory_equal(hc, hb, nb * 4);
    /* The session's own logits buffer is restored too (host memory on the CPU backend). */
    assert_memory_equal(shoal_session_logits(c), lb, V * 4);
    uint32_t nc = r.n_tokens;
    run(c, sc, lc, hc, &nc, n);
    assert_int_equal(nc, na);
    assert_memory_equal(hc, ha, na * 4);
    assert_memory_equal(lc, la, V * 4);

    shoal_session_free(a);
    shoal_session_free(c);
    shoal_sampler_free(sa);
    shoal_sampler_free(sc);
    free(la);
    free(lb);
    free(lc);
}

static void test_greedy_f32(void **state) {
    (void)state;
    round_trip(SHOAL_KV_F32, 0, 0, 20);
}
static void test_seeded_f32(void **state) {
    (void)state;
    round_trip(SHOAL_KV_F32, 0.9f, 1234, 24);
}
static void test_seeded_f16(void **state) {
    (void)state;
    round_trip(SHOAL_KV_F16, 0.9f, 99, 24);
}

/* An empty session, and a file without sampler or logits, restore to what they were. */
static void test_empty_and_bare(void **state) {
    (void)state;
    shoal_error err = {0};
    shoal_session *s = new_session(model, SHOAL_KV_F32, 64);
    assert_int_equal(shoal_session_save(s, tmp("empty.st"), NULL, &err), SHOAL_OK);
    assert_int_equal(shoal_session_prefill(s, prompt, NP, NULL, &err), SHOAL_OK);
    shoal_snapshot_restored r = {0};
    assert_int_equal(shoal_session_restore(s, tmp("empty.st"), &r, &err), SHOAL_OK);
    assert_int_equal(shoal_session_position(s), 0);
    assert_false(r.has_sampler || r.has_logits);
    /* Saving needs the tokens of the filled positions. */
    assert_int_equal(shoal_session_prefill(s, prompt, NP, NULL, &err), SHOAL_OK);
    assert_int_equal(shoal_session_save(s, tmp("x.st"), NULL, &err), SHOAL_ERR_ARG);
    shoal_snapshot_save_opts so = {prompt, NP, NULL, NULL};
    assert_int_equal(shoal_session_save(s, tmp("bare.st"), &so, &err), SHOAL_OK);
    assert_int_equal(shoal_session_restore(s, tmp("bare.st"), NULL, &err), SHOAL_OK);
    assert_int_equal(shoal_session_position(s), NP);
    shoal_session_free(s);
}

/* ---- refusals -------------------------------------------------------------------------------------- */

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* A victim session with its own state (a different prompt, 20 positions) and the logits its next decode
 * gives; after a refused restore the same decode must give the same logits. */
typedef struct victim {
    shoal_session *s;
    float *before;
} victim;

static victim victim_new(shoal_kv_type kv, uint32_t n_ctx) {
    victim v = {new_session(model, kv, n_ctx), malloc(V * 4)};
    int32_t ids[20];
    for (int i = 0; i < 20; i++)
        ids[i] = 1 + (i * 37) % 500;
    assert_int_equal(shoal_session_prefill(v.s, ids, 20, NULL, NULL), SHOAL_OK);
    /* The reference: a twin session fed the same, then token 77. */
    shoal_session *t = new_session(model, kv, n_ctx);
    assert_int_equal(shoal_session_prefill(t, ids, 20, NULL, NULL), SHOAL_OK);
    assert_int_equal(shoal_session_decode(t, 77, v.before, NULL), SHOAL_OK);
    shoal_session_free(t);
    return v;
}

static void victim_check_and_free(victim *v) {
    float *now = malloc(V * 4);
    assert_int_equal(shoal_session_position(v->s), 20);
    assert_int_equal(shoal_session_decode(v->s, 77, now, NULL), SHOAL_OK);
    assert_memory_equal(now, v->before, V * 4);
    free(now);
    free(v->before);
    shoal_session_free(v->s);
}

static void expect_refusal(shoal_kv_type kv, uint32_t n_ctx, const char *path, shoal_status want, const char *needle) {
    victim v = victim_new(kv, n_ctx);
    shoal_error err = {0};
    int32_t toks[4] = {-5, -5, -5, -5};
    shoal_sampler *fresh = (shoal_sampler *)&toks; /* must stay untouched */
    shoal_snapshot_restored r = {.tokens = toks, .tokens_cap = 4096, .new_sampler = &fresh};
    shoal_status st = shoal_session_restore(v.s, path, &r, &err);
    if (st != want || !strstr(err.message, needle))
        fail_msg("%s: status %d (want %d), message \"%s\" (want \"%s\")", path, st, want, err.message, needle);
    assert_int_equal(toks[0], -5);
    assert_ptr_equal(fresh, (shoal_sampler *)&toks);
    victim_check_and_free(&v);
}

/* A good snapshot of model: 24 positions, f32 (or f16). */
static void make_good(const char *path, shoal_model *m, shoal_kv_type kv) {
    shoal_session *s = new_session(m, kv, 64);
    int32_t ids[24];
    for (int i = 0; i < 24; i++)
        ids[i] = 1 + (i * 11) % 400;
    assert_int_equal(shoal_session_prefill(s, ids, 24, NULL, NULL), SHOAL_OK);
    shoal_sampler *sm = new_sampler(0.5f, 3);
    shoal_snapshot_save_opts so = {ids, 24, sm, NULL};
    shoal_error err = {0};
    if (shoal_session_save(s, path, &so, &err))
        fail_msg("save: %s", err.message);
    shoal_sampler_free(sm);
    shoal_session_free(s);
}

static void test_refuse_model_shape_dtype_ctx(void **state) {
    (void)state;
    make_good(tmp("same.st"), other_same_shape, SHOAL_KV_F32);
    expect_refusal(SHOAL_KV_F32, 64, tmp("same.st"), SHOAL_ERR_ARG, "snapshot of another model");
    make_good(tmp("shape.st"), other_shape, SHOAL_KV_F32);
    expect_refusal(SHOAL_KV_F32, 64, tmp("shape.st"), SHOAL_ERR_ARG, "snapshot of another model");
    make_good(tmp("f16.st"), model, SHOAL_KV_F16);
    expect_refusal(SHOAL_KV_F32, 64, tmp("f16.st"), SHOAL_ERR_ARG, "KV dtype is F16, this session's is F32");
    make_good(tmp("good.st"), model, SHOAL_KV_F32);
    expect_refusal(SHOAL_KV_F16, 64, tmp("good.st"), SHOAL_ERR_ARG, "KV dtype is F32, this session's is F16");
    expect_refusal(SHOAL_KV_F32, 23, tmp("good.st"), SHOAL_ERR_ARG, "context is only 23");
    expect_refusal(SHOAL_KV_F32, 64, tmp("missing.st"), SHOAL_ERR_IO, "cannot open");
    /* The buffer for the tokens is too small: refused, and the count says what is needed. */
    victim v = victim_new(SHOAL_KV_F32, 64);
    int32_t toks[8];
    shoal_snapshot_restored r = {.tokens = toks, .tokens_cap = 8};
    shoal_error err = {0};
    assert_int_equal(shoal_session_restore(v.s, tmp("good.st"), &r, &err), SHOAL_ERR_ARG);
    assert_int_equal(r.n_tokens, 24);
    victim_check_and_free(&v);
    /* And the good file itself restores into a victim. */
    shoal_session *s = new_session(model, SHOAL_KV_F32, 24);
    assert_int_equal(shoal_session_restore(s, tmp("good.st"), NULL, &err), SHOAL_OK);
    assert_int_equal(shoal_session_position(s), 24);
    shoal_session_free(s);
}

static void test_refuse_truncated(void **state) {
    (void)state;
    make_good(tmp("good.st"), model, SHOAL_KV_F32);
    size_t n;
    uint8_t *b = slurp(tmp("good.st"), &n);
    size_t cuts[] = {0, 4, 8, 100, n / 2, n - 4, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        spit(tmp("cut.st"), b, cuts[i]);
        expect_refusal(SHOAL_KV_F32, 64, tmp("cut.st"), SHOAL_ERR_FORMAT, cuts[i] < 100 ? "" : "truncated");
    }
    /* Extra bytes at the end are not silently ignored either. */
    uint8_t *big = calloc(1, n + 4);
    memcpy(big, b, n);
    spit(tmp("long.st"), big, n + 4);
    expect_refusal(SHOAL_KV_F32, 64, tmp("long.st"), SHOAL_ERR_FORMAT, "checksum");
    free(big);
    free(b);
}

static void test_refuse_corrupt(void **state) {
    (void)state;
    make_good(tmp("good.st"), model, SHOAL_KV_F32);
    size_t n;
    uint8_t *b = slurp(tmp("good.st"), &n);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)b[i] << (8 * i);
    /* One flipped bit in the KV data, in a token id, and in a metadata value (the sampler's seed). */
    size_t at[] = {n - 7, 8 + hlen + 5, 0};
    char *seed = strstr((char *)b + 8, "\"sampler.seed\":\"");
    assert_non_null(seed);
    at[2] = (size_t)((uint8_t *)seed - b) + 16;
    for (int i = 0; i < 3; i++) {
        b[at[i]] ^= 0x01;
        spit(tmp("bad.st"), b, n);
        expect_refusal(SHOAL_KV_F32, 64, tmp("bad.st"), SHOAL_ERR_FORMAT, "checksum");
        b[at[i]] ^= 0x01;
    }
    /* A flipped bit in the model id is corruption too, not "another model": the restore refuses the header
     * at once but still hashes the data to say which. */
    char *id = strstr((char *)b + 8, "\"model_id\":\"sha256:");
    assert_non_null(id);
    size_t at_id = (size_t)((uint8_t *)id - b) + 20;
    b[at_id] ^= 0x01;
    spit(tmp("bad.st"), b, n);
    expect_refusal(SHOAL_KV_F32, 64, tmp("bad.st"), SHOAL_ERR_FORMAT, "checksum");
    b[at_id] ^= 0x01;
    /* Garbage in the JSON header, and a file that is not a snapshot at all. */
    b[9] = '#';
    spit(tmp("bad.st"), b, n);
    expect_refusal(SHOAL_KV_F32, 64, tmp("bad.st"), SHOAL_ERR_FORMAT, "not a Shoal KV snapshot");
    expect_refusal(SHOAL_KV_F32, 64, stories, SHOAL_ERR_FORMAT, "");
    free(b);
}

/* A file too large to be read whole (over 256 KiB: the restore streams it into the cache; from 4 MiB on
 * with the hash on a second thread) with a flipped bit at its very end is found out only after the rows
 * were overwritten: the restore puts back the rows of the session it refused. And intact, it restores a
 * session that continues like the saved one. */
static void stream_rollback(shoal_model *m, uint32_t n, uint32_t vocab) {
    int32_t *ids = malloc(n * sizeof *ids);
    for (uint32_t i = 0; i < n; i++)
        ids[i] = (int32_t)(1 + (i * 53) % (vocab - 1));
    shoal_session *s = new_session(m, SHOAL_KV_F32, n + 1), *v = new_session(m, SHOAL_KV_F32, n + 1);
    assert_int_equal(shoal_session_prefill(s, ids, n, NULL, NULL), SHOAL_OK);
    shoal_snapshot_save_opts so = {ids, n, NULL, NULL};
    assert_int_equal(shoal_session_save(s, tmp("big.st"), &so, NULL), SHOAL_OK);
    /* The victim holds the first 300 tokens of another sequence; its next logits are the reference. */
    int32_t other[300];
    for (int i = 0; i < 300; i++)
        other[i] = (int32_t)(1 + (i * 37) % (vocab - 1));
    float *before = malloc(vocab * 4), *now = malloc(vocab * 4);
    shoal_session *twin_s = new_session(m, SHOAL_KV_F32, n + 1);
    assert_int_equal(shoal_session_prefill(twin_s, other, 300, NULL, NULL), SHOAL_OK);
    assert_int_equal(shoal_session_decode(twin_s, 77, before, NULL), SHOAL_OK);
    shoal_session_free(twin_s);
    assert_int_equal(shoal_session_prefill(v, other, 300, NULL, NULL), SHOAL_OK);
    size_t len;
    uint8_t *b = slurp(tmp("big.st"), &len);
    assert_true(len > (256u << 10));
    b[len - 3] ^= 0x10;
    spit(tmp("bigbad.st"), b, len);
    free(b);
    shoal_error err = {0};
    assert_int_equal(shoal_session_restore(v, tmp("bigbad.st"), NULL, &err), SHOAL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "checksum"));
    assert_int_equal(shoal_session_position(v), 300);
    assert_int_equal(shoal_session_decode(v, 77, now, NULL), SHOAL_OK);
    assert_memory_equal(now, before, vocab * 4);
    /* The intact file, into the same session (now holding 301 positions). */
    if (shoal_session_restore(v, tmp("big.st"), NULL, &err))
        fail_msg("restore: %s", err.message);
    assert_int_equal(shoal_session_position(v), n);
    assert_int_equal(shoal_session_decode(s, 77, before, NULL), SHOAL_OK);
    assert_int_equal(shoal_session_decode(v, 77, now, NULL), SHOAL_OK);
    assert_memory_equal(now, before, vocab * 4);
    free(before);
    free(now);
    free(ids);
    shoal_session_free(v);
    shoal_session_free(s);
}

static void test_stream_rollback(void **state) {
    (void)state;
    stream_rollback(model, 400, V); /* 0.5 MiB */
    /* 8 MiB: a random model of stories260K's vocabulary, wider and with a longer context. */
    lmodel_config c = model->m->cfg;
    c.dim = 256;
    c.n_layers = 4;
    c.n_heads = c.n_kv_heads = 8;
    c.head_dim = 32;
    c.hidden_dim = 512;
    c.seq_len = 1024;
    lload_write_opts wo = {.type = LDT_F32};
    shoal_model_options mo = {0};
    mo.n_threads = 2;
    shoal_model *wide = NULL;
    shoal_error err = {0};
    if (lload_write_random(&c, NULL, 11, tmp("wide.gguf"), &wo, &err) ||
        shoal_model_load(tmp("wide.gguf"), &mo, &wide, &err))
        fail_msg("wide model: %s", err.message);
    stream_rollback(wide, 1000, V);
    shoal_model_free(wide);
}

/* Saving over an existing snapshot replaces it whole, and leaves no temporary behind. */
static void test_replace(void **state) {
    (void)state;
    make_good(tmp("r.st"), model, SHOAL_KV_F32);
    make_good(tmp("r.st"), model, SHOAL_KV_F16);
    shoal_session *s = new_session(model, SHOAL_KV_F16, 64);
    assert_int_equal(shoal_session_restore(s, tmp("r.st"), NULL, NULL), SHOAL_OK);
    shoal_session_free(s);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp-", dir);
    assert_int_not_equal(system(cmd), 0);
    /* A directory that does not exist: an I/O error naming the file. */
    shoal_session *e = new_session(model, SHOAL_KV_F32, 64);
    shoal_error err = {0};
    assert_int_equal(shoal_session_save(e, tmp("no/such/dir.st"), NULL, &err), SHOAL_ERR_IO);
    assert_non_null(strstr(err.message, "dir.st"));
    shoal_session_free(e);
}

static int setup(void **state) {
    (void)state;
    const char *models = getenv("SHOAL_MODELS");
    snprintf(stories, sizeof stories, "%s/stories260K/stories260K.bin", models ? models : "../shared/models");
    snprintf(aidreams, sizeof aidreams, "%s/aidreams260K/aidreams260K.bin", models ? models : "../shared/models");
    snprintf(dir, sizeof dir, "/tmp/shoal-ksnap-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    shoal_model_options mo = {0};
    mo.n_threads = 1;
    shoal_error err = {0};
    if (shoal_model_load(stories, &mo, &model, &err) || shoal_model_load(aidreams, &mo, &other_shape, &err)) {
        fprintf(stderr, "load: %s\n", err.message);
        return -1;
    }
    shoal_model_info info;
    shoal_model_get_info(model, &info);
    V = info.vocab_size;
    /* Another model of exactly stories260K's shape: random weights. */
    snprintf(twin, sizeof twin, "%s/twin.gguf", dir);
    lload_write_opts wo = {.type = LDT_F32};
    if (lload_write_random(&model->m->cfg, NULL, 7, twin, &wo, &err) ||
        shoal_model_load(twin, &mo, &other_same_shape, &err)) {
        fprintf(stderr, "twin: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    shoal_model_free(model);
    shoal_model_free(other_shape);
    shoal_model_free(other_same_shape);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
    const char *models = getenv("SHOAL_MODELS");
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/stories260K/stories260K.bin", models ? models : "../shared/models");
    if (access(probe, R_OK)) {
        printf("SKIP: %s not found (set SHOAL_MODELS)\n", probe);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_f32),
        cmocka_unit_test(test_seeded_f32),
        cmocka_unit_test(test_seeded_f16),
        cmocka_unit_test(test_empty_and_bare),
        cmocka_unit_test(test_refuse_model_shape_dtype_ctx),
        cmocka_unit_test(test_refuse_truncated),
        cmocka_unit_test(test_refuse_corrupt),
        cmocka_unit_test(test_stream_rollback),
        cmocka_unit_test(test_replace),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
