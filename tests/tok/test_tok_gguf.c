/*
 * test_tok_gguf.c: the tokenizers built from llama.cpp's tokenizer-only GGUFs (tokenizer.ggml.* arrays through
 * the GGUF loader's lload_gguf_tokenizer and ltok_from_vocab) give llama.cpp's expected ids for all 46 reference strings, and
 * agree with the same vocabularies loaded from tokenizer.bin / tokenizer.json.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lgguf.h"
#include "lload.h"
#include "ltok.h"
#include "tok_util.h"

/* tokenizer.ggml.* -> ltok through the GGUF loader's own path (lload_gguf_tokenizer -> ltok_from_vocab). */
static ltok *from_gguf(const char *rel) {
    lgguf *g = NULL;
    ltok *t = NULL;
    shoal_error err;
    if (lgguf_open(tu_path(rel), &g, &err) != SHOAL_OK || lload_gguf_tokenizer(g, &t, &err) != SHOAL_OK)
        fprintf(stderr, "%s: %s\n", rel, err.message);
    lgguf_close(g);
    return t;
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
    size_t n = tu_load_cases(tu_path(inp), tu_path(out), &c, &keep), bad = 0;
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
