/*
 * test_tok_bad.c: broken tokenizer files and vocabularies give clear errors, never a crash. Each case prints
 * the message it got. Needs no test data: the files are written here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ltok.h"

static char dir[64];

static const char *write_file(const char *name, const void *data, size_t n) {
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    return path;
}

/* A valid llama2.c tokenizer of 5 tokens: <unk>, BOS, EOS, " a", "b". */
static size_t good_bin(uint8_t *buf) {
    static const char *const text[] = {"<unk>", "\n<s>\n", "\n</s>\n", " a", "b"};
    size_t n = 0;
    int32_t max_len = 6;
    memcpy(buf, &max_len, 4);
    n = 4;
    for (int i = 0; i < 5; i++) {
        float score = (float)-i;
        int32_t len = (int32_t)strlen(text[i]);
        memcpy(buf + n, &score, 4);
        memcpy(buf + n + 4, &len, 4);
        memcpy(buf + n + 8, text[i], (size_t)len);
        n += 8 + (size_t)len;
    }
    return n;
}

static void expect_bin_error(const void *data, size_t n, uint32_t vocab, const char *needle) {
    ltok *t = (ltok *)1;
    shoal_error err;
    shoal_status st = ltok_load_llama2c(write_file("tok.bin", data, n), vocab, &t, &err);
    fprintf(stderr, "  -> %s\n", err.message);
    assert_int_equal(st, SHOAL_ERR_FORMAT);
    assert_int_equal(err.status, SHOAL_ERR_FORMAT);
    assert_null(t);
    assert_non_null(strstr(err.message, needle));
}

static void test_bin_good(void **state) {
    (void)state;
    uint8_t buf[256];
    size_t n = good_bin(buf);
    ltok *t = NULL;
    shoal_error err;
    assert_int_equal(ltok_load_llama2c(write_file("tok.bin", buf, n), 5, &t, &err), SHOAL_OK);
    uint32_t len;
    assert_string_equal(ltok_token_text(t, 1, &len), "<s>");
    assert_string_equal(ltok_token_text(t, 3, &len), "\xE2\x96\x81" "a");
    ltok_free(t);
    /* vocab_size 0 reads to the end of the file. */
    assert_int_equal(ltok_load_llama2c(write_file("tok.bin", buf, n), 0, &t, &err), SHOAL_OK);
    assert_int_equal(ltok_n_tokens(t), 5);
    ltok_free(t);
}

static void test_bin_bad(void **state) {
    (void)state;
    uint8_t buf[256];
    size_t n = good_bin(buf);
    ltok *t = NULL;
    shoal_error err;

    expect_bin_error(buf, 2, 5, "no max_token_length");
    expect_bin_error(buf, 4, 5, "token 0's score and length");
    expect_bin_error(buf, n - 1, 5, "run past the end of the file");
    expect_bin_error(buf, n - 3, 5, "token 4's score and length");
    /* The model says 6 tokens, the file holds 5 (or 4 and a bit more). */
    expect_bin_error(buf, n, 6, "token 5's score and length");
    expect_bin_error(buf, n, 4, "bytes left after 4 tokens");

    uint8_t bad[256];
    memcpy(bad, buf, n);
    int32_t v = 0x7fffffff; /* token 0's length way past the end */
    memcpy(bad + 8, &v, 4);
    expect_bin_error(bad, n, 5, "outside 0..max_token_length");
    v = -5;
    memcpy(bad + 8, &v, 4);
    expect_bin_error(bad, n, 5, "has length -5");
    v = 5; /* token 0 is "<unk>": 5 bytes; a max_token_length of 3 is a lie */
    memcpy(bad + 8, &v, 4);
    int32_t max_len = 3;
    memcpy(bad, &max_len, 4);
    expect_bin_error(bad, n, 5, "outside 0..max_token_length 3");
    memcpy(bad, buf, n);
    max_len = -1;
    memcpy(bad, &max_len, 4);
    expect_bin_error(bad, n, 5, "bad max_token_length");
    memcpy(bad, buf, n);
    float nan = __builtin_nanf("");
    memcpy(bad + 4, &nan, 4);
    expect_bin_error(bad, n, 5, "NaN score");
    expect_bin_error(buf, 4 + 8 + 5, 0, "a llama2.c vocabulary has <unk>, BOS, EOS first");

    shoal_status st = ltok_load_llama2c("/nonexistent/tokenizer.bin", 5, &t, &err);
    fprintf(stderr, "  -> %s\n", err.message);
    assert_int_equal(st, SHOAL_ERR_IO);
}

static void expect_json_error(const char *json, shoal_status want, const char *needle) {
    ltok *t = (ltok *)1;
    shoal_error err;
    shoal_status st = ltok_load_hf_json(write_file("tokenizer.json", json, strlen(json)), &t, &err);
    fprintf(stderr, "  -> %s\n", err.message);
    assert_int_equal(st, want);
    assert_null(t);
    assert_non_null(strstr(err.message, needle));
}

/* A minimal byte-level BPE: the 256 byte symbols, one merge, GPT-2 pre-tokenizer. */
static char *small_json(const char *merges, const char *extra_vocab) {
    static char buf[16384];
    size_t n = (size_t)snprintf(buf, sizeof buf, "{\"model\":{\"type\":\"BPE\",\"vocab\":{");
    int id = 0;
    for (unsigned b = 0; b < 256; b++) {
        bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        unsigned cp = b;
        if (!self) {
            unsigned k = 0;
            for (unsigned c = 0; c < b; c++)
                k += !((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE);
            cp = 0x100 + k;
        }
        if (cp == '"' || cp == '\\')
            n += (size_t)snprintf(buf + n, sizeof buf - n, "\"\\%c\":%d,", (char)cp, id++);
        else
            n += (size_t)snprintf(buf + n, sizeof buf - n, "\"\\u%04x\":%d,", cp, id++);
    }
    snprintf(buf + n, sizeof buf - n,
             "%s\"ab\":256},\"merges\":%s},\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"use_regex\":true},"
             "\"added_tokens\":[{\"id\":257,\"content\":\"<|end|>\",\"special\":true}]}",
             extra_vocab, merges);
    return buf;
}

static void test_json(void **state) {
    (void)state;
    ltok *t = NULL;
    shoal_error err;
    /* The good one works, with both merge spellings. */
    const char *good = small_json("[\"a b\"]", "");
    assert_int_equal(ltok_load_hf_json(write_file("tokenizer.json", good, strlen(good)), &t, &err), SHOAL_OK);
    int32_t ids[8];
    size_t n;
    assert_int_equal(ltok_encode(t, "ab<|end|>", 9, false, true, ids, 8, &n, &err), SHOAL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 256);
    assert_int_equal(ids[1], 257);
    ltok_free(t);
    good = small_json("[[\"a\",\"b\"]]", "");
    assert_int_equal(ltok_load_hf_json(write_file("tokenizer.json", good, strlen(good)), &t, &err), SHOAL_OK);
    ltok_free(t);

    expect_json_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,", SHOAL_ERR_FORMAT, "invalid JSON near byte");
    expect_json_error("[1, 2, 3]", SHOAL_ERR_FORMAT, "no model with type, vocab and merges");
    expect_json_error("{\"model\":{\"type\":\"Unigram\",\"vocab\":{},\"merges\":[]}}", SHOAL_ERR_UNSUPPORTED,
                      "only BPE tokenizer.json");
    expect_json_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]},\"pre_tokenizer\":"
                      "{\"type\":\"Whitespace\"}}",
                      SHOAL_ERR_UNSUPPORTED, "unsupported pre_tokenizer");
    expect_json_error(small_json("[\"a b\"]", "\"zz\":-3,"), SHOAL_ERR_FORMAT, "\"zz\" has a bad id");
    expect_json_error(small_json("[\"a b\"]", "\"zz\":5,"), SHOAL_ERR_FORMAT, "id 5 is given to both");
    expect_json_error(small_json("[\"ab\"]", ""), SHOAL_ERR_FORMAT, "merge 0 (\"ab\") is not two tokens");
    expect_json_error(small_json("[42]", ""), SHOAL_ERR_FORMAT, "neither");
    expect_json_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a a\"]},\"pre_tokenizer\":"
                      "{\"type\":\"ByteLevel\",\"use_regex\":true}}",
                      SHOAL_ERR_FORMAT, "lacks the token for byte 0x00");
    expect_json_error("", SHOAL_ERR_FORMAT, "invalid JSON");
}

static void test_vocab_desc(void **state) {
    (void)state;
    const char *toks[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81\x61"};
    uint32_t lens[] = {5, 3, 4, 4};
    ltok *t = (ltok *)1;
    shoal_error err;
    ltok_vocab_desc d = {.kind = LTOK_SPM, .n_tokens = 4, .tokens = toks, .token_lens = lens, .bos_id = 7,
                         .eos_id = 2, .eot_id = -1, .unk_id = 0, .pad_id = -1};
    assert_int_equal(ltok_from_vocab(&d, &t, &err), SHOAL_ERR_FORMAT);
    fprintf(stderr, "  -> %s\n", err.message);
    assert_non_null(strstr(err.message, "BOS id 7 is outside"));
    assert_null(t);
    d.bos_id = 1;
    int32_t types[] = {2, 3, 3, 99};
    d.types = types;
    assert_int_equal(ltok_from_vocab(&d, &t, &err), SHOAL_ERR_FORMAT);
    fprintf(stderr, "  -> %s\n", err.message);
    assert_non_null(strstr(err.message, "token 3 has unknown type 99"));
    d.types = NULL;
    /* A good vocabulary, then bad calls. */
    assert_int_equal(ltok_from_vocab(&d, &t, &err), SHOAL_OK);
    size_t n = 0;
    assert_int_equal(ltok_encode(t, "a", 1, true, false, NULL, 5, &n, &err), SHOAL_ERR_ARG);
    fprintf(stderr, "  -> %s\n", err.message);
    assert_int_equal(ltok_encode(t, "a", (size_t)LTOK_MAX_TEXT + 1, true, false, NULL, 0, &n, &err), SHOAL_ERR_ARG);
    fprintf(stderr, "  -> %s\n", err.message);
    assert_non_null(strstr(err.message, "more than the limit"));
    assert_int_equal(ltok_encode(t, NULL, 3, true, false, NULL, 0, &n, &err), SHOAL_ERR_ARG);
    assert_int_equal(ltok_decode_token(t, -1, 99, NULL, 0), 0); /* out of range: nothing */
    ltok_chat_msg msg = {"user", NULL};
    assert_int_equal(ltok_chat_format(t, &msg, 1, true, NULL, 0, &n, &err), SHOAL_ERR_ARG);
    fprintf(stderr, "  -> %s\n", err.message);
    ltok_free(t);
    t = NULL;
    d.kind = LTOK_BPE;
    assert_int_equal(ltok_from_vocab(&d, &t, &err), SHOAL_ERR_FORMAT);
    fprintf(stderr, "  -> %s\n", err.message);
    assert_non_null(strstr(err.message, "needs merges"));
    d.n_tokens = 0;
    assert_int_equal(ltok_from_vocab(&d, &t, &err), SHOAL_ERR_ARG);
    fprintf(stderr, "  -> %s\n", err.message);

    /* A GGUF-style BPE vocabulary with an unknown pre-tokenizer is refused by name. */
    const char *m[] = {"a b"};
    uint32_t ml[] = {3};
    d = (ltok_vocab_desc){.kind = LTOK_BPE, .n_tokens = 4, .tokens = toks, .token_lens = lens, .n_merges = 1,
                          .merges = m, .merge_lens = ml, .bos_id = -1, .eos_id = -1, .eot_id = -1, .unk_id = -1,
                          .pad_id = -1, .pre = "qwen2"};
    assert_int_equal(ltok_from_vocab(&d, &t, &err), SHOAL_ERR_UNSUPPORTED);
    fprintf(stderr, "  -> %s\n", err.message);
    assert_non_null(strstr(err.message, "\"qwen2\" is not supported"));
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/shoal-tokbad-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bin_good),
        cmocka_unit_test(test_bin_bad),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_vocab_desc),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char path[128];
    snprintf(path, sizeof path, "%s/tok.bin", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    unlink(path);
    rmdir(dir);
    return rc;
}
