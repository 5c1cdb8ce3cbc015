/*
 * test_tok_gguf.c: the tokenizers built from llama.cpp's tokenizer-only GGUFs (tokenizer.ggml.* arrays through
 * ltok_from_vocab, as a GGUF loader does) give llama.cpp's expected ids for all 46 reference strings, and
 * agree with the same vocabularies loaded from tokenizer.bin / tokenizer.json.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lgguf.h"
#include "ltok.h"
#include "tok_util.h"

/* tokenizer.ggml.* -> ltok, the way llama.cpp reads those keys. */
static ltok *from_gguf(const char *rel) {
    lgguf *g = NULL;
    shoal_error err;
    if (lgguf_open(tu_path(rel), &g, &err) != SHOAL_OK) {
        fprintf(stderr, "%s: %s\n", rel, err.message);
        return NULL;
    }
    lgguf_str model = {0}, pre = {0};
    const lgguf_value *toks = NULL, *scores = NULL, *types = NULL, *merges = NULL;
    assert_int_equal(lgguf_req_str(g, "tokenizer.ggml.model", &model, &err), SHOAL_OK);
    assert_int_equal(lgguf_req_arr(g, "tokenizer.ggml.tokens", LGGUF_STR, &toks, &err), SHOAL_OK);
    assert_int_equal(lgguf_opt_arr(g, "tokenizer.ggml.scores", LGGUF_F32, &scores, &err), SHOAL_OK);
    assert_int_equal(lgguf_opt_arr(g, "tokenizer.ggml.token_type", LGGUF_I32, &types, &err), SHOAL_OK);
    assert_int_equal(lgguf_opt_arr(g, "tokenizer.ggml.merges", LGGUF_STR, &merges, &err), SHOAL_OK);
    char prebuf[64] = "default";
    if (lgguf_req_str(g, "tokenizer.ggml.pre", &pre, NULL) == SHOAL_OK)
        snprintf(prebuf, sizeof prebuf, "%.*s", (int)pre.len, pre.ptr);

    uint32_t n = (uint32_t)toks->arr.n, nm = merges ? (uint32_t)merges->arr.n : 0;
    const char **t = calloc(n, sizeof *t), **m = calloc(nm + 1, sizeof *m);
    uint32_t *tl = calloc(n, sizeof *tl), *ml = calloc(nm + 1, sizeof *ml);
    float *sc = scores ? calloc(n, sizeof *sc) : NULL;
    int32_t *ty = types ? calloc(n, sizeof *ty) : NULL;
    for (uint32_t i = 0; i < n; i++) {
        t[i] = toks->arr.items[i].s.ptr;
        tl[i] = (uint32_t)toks->arr.items[i].s.len;
        double f;
        int64_t v;
        if (sc && lgguf_arr_f64(scores, i, &f))
            sc[i] = (float)f;
        if (ty && lgguf_arr_i64(types, i, &v))
            ty[i] = (int32_t)v;
    }
    for (uint32_t i = 0; i < nm; i++) {
        m[i] = merges->arr.items[i].s.ptr;
        ml[i] = (uint32_t)merges->arr.items[i].s.len;
    }
    int32_t bos, eos, unk, pad;
    bool add_bos;
    lgguf_opt_i32(g, "tokenizer.ggml.bos_token_id", -1, &bos, NULL);
    lgguf_opt_i32(g, "tokenizer.ggml.eos_token_id", -1, &eos, NULL);
    lgguf_opt_i32(g, "tokenizer.ggml.unknown_token_id", -1, &unk, NULL);
    lgguf_opt_i32(g, "tokenizer.ggml.padding_token_id", -1, &pad, NULL);
    lgguf_opt_bool(g, "tokenizer.ggml.add_bos_token", true, &add_bos, NULL);
    ltok_vocab_desc d = {
        .kind = lgguf_str_eq(model, "gpt2") ? LTOK_BPE : LTOK_SPM,
        .n_tokens = n, .tokens = t, .token_lens = tl, .scores = sc, .types = ty,
        .n_merges = nm, .merges = m, .merge_lens = ml,
        .bos_id = bos, .eos_id = eos, .eot_id = -1, .unk_id = unk, .pad_id = pad,
        .add_bos = add_bos, .pre = prebuf,
    };
    ltok *out = NULL;
    if (ltok_from_vocab(&d, &out, &err) != SHOAL_OK)
        fprintf(stderr, "%s: %s\n", rel, err.message);
    free(t);
    free(m);
    free(tl);
    free(ml);
    free(sc);
    free(ty);
    lgguf_close(g);
    return out;
}

static void check(const char *name, const char *other_rel, bool other_json) {
    char rel[128], inp[128], out[128], *keep = NULL;
    snprintf(rel, sizeof rel, "vocab/%s", name);
    snprintf(inp, sizeof inp, "vocab/%s.inp", name);
    snprintf(out, sizeof out, "vocab/%s.out", name);
    ltok *t = from_gguf(rel), *o = NULL;
    assert_non_null(t);
    shoal_error err;
    if (other_json)
        assert_int_equal(ltok_load_hf_json(tu_path(other_rel), &o, &err), SHOAL_OK);
    else
        assert_int_equal(ltok_load_llama2c(tu_path(other_rel), 32000, &o, &err), SHOAL_OK);
    tu_case *c = NULL;
    size_t n = tu_load_cases(inp, out, &c, &keep), bad = 0;
    assert_int_equal(n, 46);
    int32_t ids[1024], ids2[1024];
    for (size_t i = 0; i < n; i++) {
        size_t k = 0, k2 = 0;
        assert_int_equal(ltok_encode(t, c[i].text, c[i].len, false, false, ids, 1024, &k, &err), SHOAL_OK);
        assert_int_equal(ltok_encode(o, c[i].text, c[i].len, false, false, ids2, 1024, &k2, &err), SHOAL_OK);
        if (k != c[i].n_ids || memcmp(ids, c[i].ids, k * sizeof *ids) || k2 != k || memcmp(ids, ids2, k * sizeof *ids)) {
            fprintf(stderr, "%s case %zu \"%.*s\" differs\n", name, i, (int)c[i].len, c[i].text);
            bad++;
        }
    }
    fprintf(stderr, "%s (GGUF): %zu of %zu reference strings match\n", name, n - bad, n);
    assert_int_equal(bad, 0);
    /* The special tokens and the chat style come through the GGUF arrays too. */
    assert_int_equal(ltok_bos(t), ltok_bos(o));
    assert_int_equal(ltok_eos(t), ltok_eos(o));
    assert_int_equal(ltok_eot(t), ltok_eot(o)); /* the GGUF has no eot_token_id: found by name */
    assert_int_equal(ltok_chat_style_of(t), ltok_chat_style_of(o));
    const char *s = "<|begin_of_text|><s>Hi<|eot_id|></s>";
    size_t k = 0, k2 = 0;
    assert_int_equal(ltok_encode(t, s, strlen(s), true, true, ids, 1024, &k, &err), SHOAL_OK);
    assert_int_equal(ltok_encode(o, s, strlen(s), true, true, ids2, 1024, &k2, &err), SHOAL_OK);
    assert_int_equal(k, k2);
    assert_memory_equal(ids, ids2, k * sizeof *ids);
    free(c);
    free(keep);
    ltok_free(t);
    ltok_free(o);
}

static void test_spm_gguf(void **state) {
    (void)state;
    check("ggml-vocab-llama-spm.gguf", "llama2-tokenizer/tokenizer.bin", false);
}

static void test_bpe_gguf(void **state) {
    (void)state;
    check("ggml-vocab-llama-bpe.gguf", "llama3-tokenizer/tokenizer.json", true);
}

int main(void) {
    if (!tu_exists("vocab/ggml-vocab-llama-spm.gguf") || !tu_exists("vocab/ggml-vocab-llama-bpe.gguf") ||
        !tu_exists("llama2-tokenizer/tokenizer.bin") || !tu_exists("llama3-tokenizer/tokenizer.json")) {
        fprintf(stderr, "SKIP: vocabulary GGUFs not found under %s/vocab (set SHOAL_MODELS)\n", tu_models());
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spm_gguf),
        cmocka_unit_test(test_bpe_gguf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
