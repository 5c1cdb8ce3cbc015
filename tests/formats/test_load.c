/*
 * test_load: the GGUF model loader (lload_gguf through lmodel_load) on small synthetic models written with
 * lgguf's writer: a valid one (config, tied output, F16 norms widened to F32, Llama 3 rope scaling from
 * rope_freqs.weight), and models with a missing key, missing / extra / misshapen tensors, an unsupported
 * tensor type, another architecture, partial RoPE and other rope scaling. Each error message is printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lgguf.h"
#include "lload.h"
#include "lmodel.h"
#include "ltok.h"

enum { DIM = 32, HEADS = 2, KV = 1, HD = 16, HIDDEN = 64, VOCAB = 16 };

typedef struct knobs {
    const char *skip_key;    /* metadata key to leave out */
    const char *arch;        /* general.architecture */
    const char *skip_tensor; /* tensor to leave out */
    const char *bad_shape;   /* tensor written with one row too many */
    const char *bad_type;    /* tensor written as Q4_1 */
    bool extra;              /* adds blk.0.attn_q.bias */
    bool f16_norms;
    bool rope_dim_8;
    bool linear_scaling;
    bool rope_freqs;    /* Llama 3 factors as rope_freqs.weight (factor 8) */
    bool bad_rope_freqs;
    bool output;        /* untied */
} knobs;

static float data[(HIDDEN + 1) * HIDDEN * 2]; /* room for the largest tensor plus a row */

static void add(lgguf_writer *w, const knobs *k, const char *name, uint32_t rows, uint32_t cols) {
    shoal_error err = {0};
    if (k->skip_tensor && !strcmp(name, k->skip_tensor)) return;
    uint32_t type = LGGUF_T_F32;
    bool vec = rows == 0;
    if (k->bad_shape && !strcmp(name, k->bad_shape)) rows++;
    if (k->bad_type && !strcmp(name, k->bad_type)) type = LGGUF_T_Q4_1;
    if (vec && k->f16_norms) type = LGGUF_T_F16;
    uint64_t ne[2] = {cols, rows};
    assert_int_equal(lgguf_w_tensor(w, name, type, vec ? 1 : 2, ne, data, NULL, NULL, &err), SHOAL_OK);
}

static void write_model(const char *path, const knobs *k) {
    shoal_error err = {0};
    lgguf_writer *w = lgguf_writer_new();
    const struct { const char *key; uint32_t v; } u[] = {
        {"llama.embedding_length", DIM}, {"llama.block_count", 1},        {"llama.attention.head_count", HEADS},
        {"llama.attention.head_count_kv", KV}, {"llama.feed_forward_length", HIDDEN}, {"llama.context_length", 64},
        {"llama.rope.dimension_count", k->rope_dim_8 ? 8 : HD},
    };
    const char *arch = k->arch ? k->arch : "llama";
    assert_int_equal(lgguf_w_str(w, "general.architecture", arch, strlen(arch), &err), SHOAL_OK);
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        if (!k->skip_key || strcmp(k->skip_key, u[i].key)) assert_int_equal(lgguf_w_u32(w, u[i].key, u[i].v, &err), SHOAL_OK);
    assert_int_equal(lgguf_w_f32(w, "llama.rope.freq_base", 500000.0f, &err), SHOAL_OK);
    assert_int_equal(lgguf_w_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-6f, &err), SHOAL_OK);
    if (k->linear_scaling) assert_int_equal(lgguf_w_str(w, "llama.rope.scaling.type", "linear", 6, &err), SHOAL_OK);
    add(w, k, "token_embd.weight", VOCAB, DIM);
    add(w, k, "output_norm.weight", 0, DIM);
    if (k->output) add(w, k, "output.weight", VOCAB, DIM);
    add(w, k, "blk.0.attn_norm.weight", 0, DIM);
    add(w, k, "blk.0.attn_q.weight", HEADS * HD, DIM);
    add(w, k, "blk.0.attn_k.weight", KV * HD, DIM);
    add(w, k, "blk.0.attn_v.weight", KV * HD, DIM);
    add(w, k, "blk.0.attn_output.weight", DIM, HEADS * HD);
    add(w, k, "blk.0.ffn_norm.weight", 0, DIM);
    add(w, k, "blk.0.ffn_gate.weight", HIDDEN, DIM);
    add(w, k, "blk.0.ffn_down.weight", DIM, HIDDEN);
    add(w, k, "blk.0.ffn_up.weight", HIDDEN, DIM);
    if (k->extra) add(w, k, "blk.0.attn_q.bias", 0, HEADS * HD);
    static float rf[HD / 2];
    if (k->rope_freqs || k->bad_rope_freqs) {
        /* Llama 3 factors for theta 500000, head_dim 16, factor 8, low 1, high 4, context 8192. */
        for (int i = 0; i < HD / 2; i++) {
            double f = 1.0 / pow(500000.0, 2.0 * i / HD), wl = 2 * M_PI / f;
            double lo = 8192 / 1.0, hi = 8192 / 4.0;
            rf[i] = wl < hi ? 1.0f : wl > lo ? 8.0f : (float)(1 / ((1 - (8192 / wl - 1) / 3) / 8 + (8192 / wl - 1) / 3));
        }
        if (k->bad_rope_freqs) rf[1] = 3.0f;
        uint64_t ne = HD / 2;
        assert_int_equal(lgguf_w_tensor(w, "rope_freqs.weight", LGGUF_T_F32, 1, &ne, rf, NULL, NULL, &err), SHOAL_OK);
    }
    assert_int_equal(lgguf_writer_write(w, path, NULL, NULL, &err), SHOAL_OK);
    lgguf_writer_free(w);
}

static char path[64];

static int setup(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof data / sizeof data[0]; i++) data[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    snprintf(path, sizeof path, "/tmp/shoal-test-load-%d.gguf", (int)getpid());
    return 0;
}

static void test_valid(void **state) {
    (void)state;
    knobs k = {.f16_norms = true, .rope_freqs = true};
    write_model(path, &k);
    lmodel *m;
    shoal_error err = {0};
    if (lmodel_load(path, NULL, &m, &err)) fail_msg("%s", err.message);
    assert_string_equal(m->format, "gguf");
    assert_int_equal(m->cfg.dim, DIM);
    assert_int_equal(m->cfg.n_kv_heads, KV);
    assert_int_equal(m->cfg.head_dim, HD);
    assert_int_equal(m->cfg.vocab_size, VOCAB);
    assert_true(m->cfg.rms_eps == 1e-6f);
    assert_true(m->cfg.tied_embeddings);
    assert_ptr_equal(m->output.data, m->tok_embd.data);
    assert_int_equal(m->layers[0].attn_norm.dtype, LDT_F32); /* widened from F16 */
    uint16_t h;
    memcpy(&h, data, 2);
    assert_true(((const float *)m->layers[0].attn_norm.data)[0] == lmodel_fp16_to_f32(h));
    assert_true(m->cfg.rope_scaling.enabled);
    assert_true(m->cfg.rope_scaling.factor == 8.0f);
    assert_null(m->tok);
    /* The identity changes with a weight byte. */
    uint8_t id1[32], id2[32];
    lload_model_id(m, id1);
    lmodel_free(m);
    data[5] += 1.0f;
    write_model(path, &k);
    assert_int_equal(lmodel_load(path, NULL, &m, &err), SHOAL_OK);
    lload_model_id(m, id2);
    assert_memory_not_equal(id1, id2, 32);
    lmodel_free(m);
    data[5] -= 1.0f;
    k.output = true;
    write_model(path, &k);
    assert_int_equal(lmodel_load(path, NULL, &m, &err), SHOAL_OK);
    assert_false(m->cfg.tied_embeddings);
    lmodel_free(m);
}

static void expect_fail(const knobs *k, shoal_status want_st, const char *want, const char *what) {
    write_model(path, k);
    lmodel *m = (lmodel *)1;
    shoal_error err = {0};
    shoal_status st = lmodel_load(path, NULL, &m, &err);
    printf("  %-26s -> %s\n", what, err.message);
    assert_int_equal(st, want_st);
    assert_null(m);
    if (!strstr(err.message, want)) fail_msg("%s: expected '%s' in: %s", what, want, err.message);
}

static void test_bad(void **state) {
    (void)state;
    expect_fail(&(knobs){.skip_key = "llama.block_count"}, SHOAL_ERR_FORMAT, "'llama.block_count' is missing",
                "missing block_count");
    expect_fail(&(knobs){.skip_key = "llama.feed_forward_length"}, SHOAL_ERR_FORMAT, "feed_forward_length' is missing",
                "missing feed_forward_length");
    expect_fail(&(knobs){.arch = "gpt2"}, SHOAL_ERR_UNSUPPORTED, "architecture 'gpt2'", "other architecture");
    expect_fail(&(knobs){.skip_tensor = "blk.0.ffn_up.weight"}, SHOAL_ERR_FORMAT, "'blk.0.ffn_up.weight' is missing",
                "missing tensor");
    expect_fail(&(knobs){.skip_tensor = "token_embd.weight"}, SHOAL_ERR_FORMAT, "'token_embd.weight' is missing",
                "missing embeddings");
    expect_fail(&(knobs){.bad_shape = "blk.0.attn_q.weight"}, SHOAL_ERR_FORMAT, "attn_q has shape [33, 32]",
                "attn_q one row too many");
    expect_fail(&(knobs){.bad_shape = "blk.0.ffn_down.weight"}, SHOAL_ERR_FORMAT, "ffn_down has shape",
                "ffn_down misshapen");
    expect_fail(&(knobs){.bad_type = "blk.0.attn_v.weight"}, SHOAL_ERR_UNSUPPORTED, "has type Q4_1",
                "Q4_1 tensor");
    expect_fail(&(knobs){.extra = true}, SHOAL_ERR_UNSUPPORTED, "'blk.0.attn_q.bias' is not part", "bias tensor");
    expect_fail(&(knobs){.rope_dim_8 = true}, SHOAL_ERR_UNSUPPORTED, "partial RoPE", "partial RoPE");
    expect_fail(&(knobs){.linear_scaling = true}, SHOAL_ERR_UNSUPPORTED, "'linear' is not supported",
                "linear rope scaling");
    expect_fail(&(knobs){.bad_rope_freqs = true}, SHOAL_ERR_UNSUPPORTED, "rope_freqs.weight is not Llama 3",
                "odd rope_freqs");
    unlink(path);
}

/* tokenizer.ggml.* -> ltok -> tokenizer.ggml.* -> ltok keeps the vocabulary (llama.cpp's vocab files). */
static void test_vocab_round_trip(void **state) {
    (void)state;
    const char *models = getenv("SHOAL_MODELS");
    const char *files[2] = {"ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-bpe.gguf"};
    for (int f = 0; f < 2; f++) {
        char vp[1024];
        snprintf(vp, sizeof vp, "%s/vocab/%s", models ? models : "/nonexistent", files[f]);
        if (access(vp, R_OK) != 0) {
            printf("  (no %s: skipped)\n", vp);
            continue;
        }
        lgguf *g, *g2;
        ltok *t, *t2;
        shoal_error err = {0};
        assert_int_equal(lgguf_open(vp, &g, &err), SHOAL_OK);
        if (lload_gguf_tokenizer(g, &t, &err)) fail_msg("%s", err.message);
        assert_non_null(t);
        lgguf_writer *w = lgguf_writer_new();
        assert_int_equal(lload_gguf_put_tokenizer(w, t, &err), SHOAL_OK);
        assert_int_equal(lgguf_writer_write(w, path, NULL, NULL, &err), SHOAL_OK);
        lgguf_writer_free(w);
        assert_int_equal(lgguf_open(path, &g2, &err), SHOAL_OK);
        if (lload_gguf_tokenizer(g2, &t2, &err)) fail_msg("%s", err.message);
        ltok_vocab_desc a, b;
        ltok_vocab(t, &a);
        ltok_vocab(t2, &b);
        assert_int_equal(a.kind, b.kind);
        assert_int_equal(a.n_tokens, b.n_tokens);
        assert_int_equal(a.n_merges, b.n_merges);
        assert_int_equal(a.bos_id, b.bos_id);
        assert_int_equal(a.eos_id, b.eos_id);
        assert_int_equal(a.add_bos, b.add_bos);
        for (uint32_t i = 0; i < a.n_tokens; i++) {
            assert_int_equal(a.token_lens[i], b.token_lens[i]);
            assert_memory_equal(a.tokens[i], b.tokens[i], a.token_lens[i]);
            if (a.types && b.types) assert_int_equal(a.types[i], b.types[i]);
            if (a.scores && b.scores) assert_true(a.scores[i] == b.scores[i]);
        }
        for (uint32_t i = 0; i < a.n_merges; i++) assert_memory_equal(a.merges[i], b.merges[i], a.merge_lens[i]);
        /* The original file's token count and special ids survive. */
        const lgguf_value *toks = lgguf_get(g, "tokenizer.ggml.tokens");
        assert_int_equal(toks->arr.n, a.n_tokens);
        printf("  %s: %u tokens, %u merges, bos %d, eos %d: round trip ok\n", files[f], a.n_tokens, a.n_merges,
               a.bos_id, a.eos_id);
        ltok_free(t);
        ltok_free(t2);
        lgguf_close(g);
        lgguf_close(g2);
    }
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_vocab_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
