/*
 * test_tok.c: the tokenizers against llama.cpp's reference token ids (46 strings per vocabulary), round trips,
 * special tokens, streaming decode, the tok512 vocabularies of the small models, and the chat templates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <unistd.h>

#include "ltok.h"
#include "ltok_int.h"
#include "tok_util.h"

static ltok *spm, *bpe, *tok_stories, *tok_dreams;

static ltok *load_bin(const char *rel, uint32_t n) {
    ltok *t = NULL;
    shoal_error err;
    if (ltok_load_llama2c(tu_path(rel), n, &t, &err) != SHOAL_OK) {
        fprintf(stderr, "%s: %s\n", rel, err.message);
        return NULL;
    }
    return t;
}

static int setup(void **state) {
    (void)state;
    shoal_error err;
    spm = load_bin("llama2-tokenizer/tokenizer.bin", 32000);
    tok_stories = load_bin("stories260K/tok512.bin", 512);
    tok_dreams = load_bin("aidreams260K/tok512.bin", 512);
    if (ltok_load_hf_json(tu_path("llama3-tokenizer/tokenizer.json"), &bpe, &err) != SHOAL_OK)
        fprintf(stderr, "tokenizer.json: %s\n", err.message);
    return spm && bpe && tok_stories && tok_dreams ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    ltok_free(spm);
    ltok_free(bpe);
    ltok_free(tok_stories);
    ltok_free(tok_dreams);
    return 0;
}

static size_t encode(const ltok *t, const char *s, size_t n, bool bos, bool special, int32_t *ids, size_t max) {
    size_t k = 0;
    shoal_error err;
    shoal_status st = ltok_encode(t, s, n, bos, special, ids, max, &k, &err);
    if (st != SHOAL_OK)
        fprintf(stderr, "encode: %s\n", err.message);
    assert_int_equal(st, SHOAL_OK);
    return k;
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, "\n");
}

/* Every reference string must give exactly llama.cpp's ids (no BOS, no special parsing, as its test). */
static void check_reference(const ltok *t, const char *name) {
    char inp[128], out[128], *keep = NULL;
    tu_case *c = NULL;
    snprintf(inp, sizeof inp, "vocab/%s.inp", name);
    snprintf(out, sizeof out, "vocab/%s.out", name);
    size_t n = tu_load_cases(tu_path(inp), tu_path(out), &c, &keep);
    assert_int_equal(n, 46);
    size_t bad = 0;
    int32_t ids[1024];
    for (size_t i = 0; i < n; i++) {
        size_t k = encode(t, c[i].text, c[i].len, false, false, ids, 1024);
        if (k != c[i].n_ids || memcmp(ids, c[i].ids, k * sizeof *ids)) {
            fprintf(stderr, "%s case %zu \"%.*s\" differs\n", name, i, (int)c[i].len, c[i].text);
            print_ids("want", c[i].ids, c[i].n_ids);
            print_ids("got ", ids, k);
            bad++;
        }
    }
    fprintf(stderr, "%s: %zu of %zu reference strings match\n", name, n - bad, n);
    free(c);
    free(keep);
    assert_int_equal(bad, 0);
}

static void test_spm_reference(void **state) {
    (void)state;
    check_reference(spm, "ggml-vocab-llama-spm.gguf");
}

static void test_bpe_reference(void **state) {
    (void)state;
    check_reference(bpe, "ggml-vocab-llama-bpe.gguf");
}

/* The same vocabulary rebuilt from its own description (the GGUF writer -> reader path) encodes the same. */
static void test_vocab_rebuild(void **state) {
    (void)state;
    const ltok *src[] = {spm, bpe};
    for (int i = 0; i < 2; i++) {
        ltok_vocab_desc d;
        ltok *t = NULL;
        shoal_error err;
        ltok_vocab(src[i], &d);
        assert_int_equal(ltok_from_vocab(&d, &t, &err), SHOAL_OK);
        assert_int_equal(ltok_n_tokens(t), ltok_n_tokens(src[i]));
        assert_int_equal(ltok_bos(t), ltok_bos(src[i]));
        const char *s = "Hello, world! 3.14159 <|eot_id|> \xF0\x9F\x98\x80 done";
        int32_t a[128], b[128];
        size_t na = encode(src[i], s, strlen(s), true, true, a, 128), nb = encode(t, s, strlen(s), true, true, b, 128);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, na * sizeof *a);
        ltok_free(t);
    }
}

static void check_roundtrip(const ltok *t, const char *s, size_t n, bool bos) {
    int32_t ids[4096];
    char back[8192];
    size_t k = encode(t, s, n, bos, false, ids, 4096);
    size_t m = ltok_decode(t, ids, k, back, sizeof back);
    if (m != n || memcmp(back, s, n)) {
        fprintf(stderr, "round trip of \"%.*s\" gave \"%.*s\"\n", (int)n, s, (int)m, back);
        fail();
    }
}

static const char *const roundtrip_cases[] = {
    "Hello world",
    " leading space",
    "  two leading spaces and trailing  ",
    "\t\ttabs\tand\nnewlines\n\n\n",
    "          ",
    "\n",
    "numbers 0 1 12 123 1234 12345 3.14159 -42 1e10 0x7fff",
    "emoji \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 flags \xF0\x9F\x87\xAB\xF0\x9F\x87\xB7",
    "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7 \xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87",
    "invalid \xFF\xFE bytes, cut \xE2\x82 sequence, overlong \xC0\xAF, surrogate \xED\xA0\x80, lone \x80",
    "<s> </s> <unk> <|begin_of_text|> [INST] written out as text",
    "ALL CAPS I'M YOU'RE we'll they'd it's",
    "code: for (int i = 0; i < n; i++) { x += a[i] * b[i]; }\r\n",
};

static void test_roundtrip(void **state) {
    (void)state;
    const ltok *all[] = {spm, bpe, tok_stories, tok_dreams};
    for (size_t t = 0; t < 4; t++) {
        for (size_t i = 0; i < sizeof roundtrip_cases / sizeof roundtrip_cases[0]; i++) {
            check_roundtrip(all[t], roundtrip_cases[i], strlen(roundtrip_cases[i]), false);
            check_roundtrip(all[t], roundtrip_cases[i], strlen(roundtrip_cases[i]), true);
        }
        check_roundtrip(all[t], "a\0b\0", 4, true); /* NUL bytes are text too */
        /* A literal U+2581 is SentencePiece's space mark: SPM decodes it as a space (as SentencePiece does);
         * byte-level BPE keeps it. */
        const char *mark = "\xE2\x96\x81 the space mark";
        if (ltok_get_kind(all[t]) == LTOK_BPE) {
            check_roundtrip(all[t], mark, strlen(mark), false);
        } else {
            int32_t ids[64];
            char back[64];
            size_t k = encode(all[t], mark, strlen(mark), false, false, ids, 64);
            size_t m = ltok_decode(all[t], ids, k, back, sizeof back);
            assert_int_equal(m, strlen("  the space mark"));
            assert_memory_equal(back, "  the space mark", m);
        }
        /* Every byte value, alone and in a run. */
        char bytes[256];
        for (int b = 0; b < 256; b++) {
            bytes[b] = (char)b;
            check_roundtrip(all[t], bytes + b, 1, false);
        }
        check_roundtrip(all[t], bytes, 256, false);
    }
}

/* An independent O(n^2) SentencePiece BPE, written the naive way: join the best-scoring adjacent pair
 * (leftmost on ties) until none joins. The heap-based encoder must agree on any input. */
static size_t naive_spm(const ltok *t, const char *s, size_t n, int32_t *ids) {
    char *norm = malloc(3 * n + 4);
    size_t m = 0;
    memcpy(norm, "\xE2\x96\x81", 3);
    m = 3;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(norm + m, "\xE2\x96\x81", 3);
            m += 3;
        } else {
            norm[m++] = s[i];
        }
    }
    size_t *off = malloc((m + 1) * sizeof *off), ns = 0;
    for (size_t i = 0; i < m;) { /* split at UTF-8 lead bytes (the inputs here are valid UTF-8) */
        off[ns++] = i++;
        while (i < m && ((uint8_t)norm[i] & 0xC0) == 0x80)
            i++;
    }
    off[ns] = m;
    ltok_vocab_desc d;
    ltok_vocab(t, &d);
    for (;;) {
        float best = -INFINITY;
        size_t at = SIZE_MAX;
        for (size_t i = 0; i + 1 < ns; i++) {
            int32_t id = ltok_find(t, norm + off[i], off[i + 2] - off[i]);
            if (id < 0 || d.types[id] == LTOK_TYPE_CONTROL || d.types[id] == LTOK_TYPE_BYTE ||
                d.types[id] == LTOK_TYPE_UNKNOWN)
                continue;
            if (at == SIZE_MAX || d.scores[id] > best) {
                best = d.scores[id];
                at = i;
            }
        }
        if (at == SIZE_MAX)
            break;
        memmove(off + at + 1, off + at + 2, (ns - at - 1) * sizeof *off);
        ns--;
    }
    size_t k = 0;
    for (size_t i = 0; i < ns; i++) {
        int32_t id = ltok_find(t, norm + off[i], off[i + 1] - off[i]);
        if (id >= 0) {
            ids[k++] = id;
            continue;
        }
        for (size_t b = off[i]; b < off[i + 1]; b++) {
            char piece[8];
            snprintf(piece, sizeof piece, "<0x%02X>", (unsigned)(uint8_t)norm[b]);
            ids[k++] = ltok_find(t, piece, 6);
        }
    }
    free(off);
    free(norm);
    return k;
}

static void test_spm_against_naive(void **state) {
    (void)state;
    static const char *const words[] = {"Once", " upon", " a", " time", ",", " there", " was", " little", " girl",
                                        " named", " Lily", ".", " She", " loved", " to", " play", " outside", "!",
                                        "  ", "\n", " \xC3\xA9t\xC3\xA9", " \xE4\xBD\xA0\xE5\xA5\xBD", "123", " zz"};
    const ltok *all[] = {spm, tok_stories, tok_dreams};
    uint64_t x = 12345;
    char text[512];
    int32_t a[1024], b[1024];
    for (int round = 0; round < 300; round++) {
        size_t n = 0;
        int nw = 1 + round % 25;
        for (int w = 0; w < nw; w++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            const char *piece = words[(x >> 33) % (sizeof words / sizeof words[0])];
            size_t l = strlen(piece);
            memcpy(text + n, piece, l);
            n += l;
        }
        const ltok *t = all[round % 3];
        size_t na = encode(t, text, n, false, false, a, 1024), nb = naive_spm(t, text, n, b);
        if (na != nb || memcmp(a, b, na * sizeof *a)) {
            fprintf(stderr, "\"%.*s\" differs from the naive encoder\n", (int)n, text);
            print_ids("naive", b, nb);
            print_ids("ltok ", a, na);
            fail();
        }
    }
}

static void test_tok512(void **state) {
    (void)state;
    /* The tok512 vocabularies: 0 <unk>, 1 BOS, 2 EOS, 3..258 bytes. */
    const ltok *all[] = {tok_stories, tok_dreams};
    for (int i = 0; i < 2; i++) {
        const ltok *t = all[i];
        assert_int_equal(ltok_n_tokens(t), 512);
        assert_int_equal(ltok_bos(t), 1);
        assert_int_equal(ltok_eos(t), 2);
        assert_true(ltok_is_eog(t, 2));
        assert_false(ltok_is_eog(t, 1));
        uint32_t len;
        assert_string_equal(ltok_token_text(t, 1, &len), "<s>");
        assert_int_equal(ltok_token_type(t, 3), LTOK_TYPE_BYTE);
        assert_int_equal(ltok_token_type(t, 259), LTOK_TYPE_NORMAL);
        const char *s = "Once upon a time, there was a little girl named Lily.";
        int32_t ids[128];
        size_t n = encode(t, s, strlen(s), true, false, ids, 128);
        assert_int_equal(ids[0], 1);
        assert_true(n > 2 && n < strlen(s)); /* merges happened */
        char back[256];
        size_t m = ltok_decode(t, ids, n, back, sizeof back);
        assert_int_equal(m, strlen(s));
        assert_memory_equal(back, s, m);
    }
    /* The two vocabularies differ, so the same text encodes differently. */
    const char *s = "The dream was about a big red balloon.";
    int32_t a[64], b[64];
    size_t na = encode(tok_stories, s, strlen(s), false, false, a, 64);
    size_t nb = encode(tok_dreams, s, strlen(s), false, false, b, 64);
    assert_true(na != nb || memcmp(a, b, na * sizeof *a));
}

static void test_special_tokens(void **state) {
    (void)state;
    int32_t ids[64], plain[64];
    /* Llama 3: written-out control tokens become themselves only with parse_special. */
    assert_int_equal(ltok_bos(bpe), 128000);
    assert_int_equal(ltok_eos(bpe), 128001);
    assert_int_equal(ltok_eot(bpe), 128009);
    assert_true(ltok_is_eog(bpe, 128009));
    assert_true(ltok_is_eog(bpe, 128001));
    assert_false(ltok_is_eog(bpe, 128000));
    assert_true(ltok_add_bos(bpe));
    const char *s = "<|begin_of_text|>Hello<|eot_id|>";
    size_t n = encode(bpe, s, strlen(s), false, true, ids, 64);
    size_t np = encode(bpe, "Hello", 5, false, false, plain, 64);
    assert_int_equal(n, np + 2);
    assert_int_equal(ids[0], 128000);
    assert_memory_equal(ids + 1, plain, np * sizeof *ids);
    assert_int_equal(ids[n - 1], 128009);
    n = encode(bpe, s, strlen(s), false, false, ids, 64);
    for (size_t i = 0; i < n; i++)
        assert_true(ids[i] < 128000);
    /* add_bos, and measuring with max_ids 0. */
    size_t k = 0;
    shoal_error err;
    assert_int_equal(ltok_encode(bpe, "Hello world", 11, true, false, NULL, 0, &k, &err), SHOAL_ERR_ARG);
    assert_int_equal(k, 3);
    n = encode(bpe, "Hello world", 11, true, false, ids, 64);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 128000);
    assert_int_equal(ids[1], 9906);
    assert_int_equal(ids[2], 1917);
    /* Decoding: control tokens print nothing. */
    char out[64];
    assert_int_equal(ltok_decode_token(bpe, -1, 128009, out, sizeof out), 0);

    /* Llama 2: "<s>" is BOS with parse_special, and the text after it gets its dummy prefix. */
    s = "<s>[INST] Hi [/INST]";
    n = encode(spm, s, strlen(s), false, true, ids, 64);
    np = encode(spm, "[INST] Hi [/INST]", 17, false, false, plain, 64);
    assert_int_equal(ids[0], 1);
    assert_int_equal(n, np + 1);
    assert_memory_equal(ids + 1, plain, np * sizeof *ids);
    n = encode(spm, s, strlen(s), false, false, ids, 64);
    for (size_t i = 0; i < n; i++)
        assert_true(ids[i] != 1);
}

static void test_decode_stream(void **state) {
    (void)state;
    char buf[64];
    int32_t ids[64];
    /* SPM: the dummy prefix disappears after BOS, not after ordinary tokens. */
    int32_t hello = ltok_find(spm, "\xE2\x96\x81Hello", 8);
    assert_true(hello > 0);
    assert_int_equal(ltok_decode_token(spm, 1, hello, buf, sizeof buf), 5);
    assert_memory_equal(buf, "Hello", 5);
    assert_int_equal(ltok_decode_token(spm, hello, hello, buf, sizeof buf), 6);
    assert_memory_equal(buf, " Hello", 6);
    /* Byte tokens give their single byte: an emoji streams out as 4 partial pieces. */
    size_t n = encode(spm, "\xF0\x9F\x98\x80", 4, false, false, ids, 64);
    assert_int_equal(n, 5); /* "▁" then 4 byte tokens */
    for (size_t i = 1; i < n; i++) {
        assert_int_equal(ltok_token_type(spm, ids[i]), LTOK_TYPE_BYTE);
        assert_int_equal(ltok_decode_token(spm, ids[i - 1], ids[i], buf, sizeof buf), 1);
        assert_int_equal((uint8_t)buf[0], (uint8_t)"\xF0\x9F\x98\x80"[i - 1]);
    }
    /* A small buffer gets the start; the return value says how long the whole piece is. */
    int32_t long_tok = ltok_find(bpe, "\xC4\xA0international", 15); /* "Ġinternational" */
    assert_true(long_tok > 0);
    assert_int_equal(ltok_decode_token(bpe, -1, long_tok, buf, 4), 14);
    assert_memory_equal(buf, " int", 4);
}

/* A Llama 2 tokenizer.json as transformers converts a SentencePiece model (byte_fallback BPE, merges grouped
 * by the piece they make, best piece first; within a piece by the ids of its parts), generated here from
 * tokenizer.bin, must tokenize the reference strings as llama.cpp does. */
typedef struct hf_merge {
    float score;
    int32_t piece, l, r;
} hf_merge;

static int hf_merge_cmp(const void *a, const void *b) {
    const hf_merge *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->piece != y->piece) /* keeps the sort stable: pieces in vocabulary order */
        return x->piece < y->piece ? -1 : 1;
    if (x->l != y->l)
        return x->l < y->l ? -1 : 1;
    return x->r < y->r ? -1 : x->r > y->r;
}

static void test_hf_spm_json(void **state) {
    (void)state;
    ltok_vocab_desc d;
    ltok_vocab(spm, &d);
    cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddTrueToObject(model, "byte_fallback");
    cJSON_AddStringToObject(model, "unk_token", "<unk>");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab"), *added = cJSON_AddArrayToObject(root, "added_tokens");
    size_t nm = 0, cap = 1 << 16;
    hf_merge *m = malloc(cap * sizeof *m);
    for (uint32_t i = 0; i < d.n_tokens; i++) {
        cJSON_AddNumberToObject(vocab, d.tokens[i], i);
        if (d.types[i] == LTOK_TYPE_CONTROL || d.types[i] == LTOK_TYPE_UNKNOWN) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddNumberToObject(a, "id", i);
            cJSON_AddStringToObject(a, "content", d.tokens[i]);
            cJSON_AddTrueToObject(a, "special");
            cJSON_AddItemToArray(added, a);
            continue;
        }
        if (d.types[i] != LTOK_TYPE_NORMAL)
            continue;
        for (uint32_t k = 1; k < d.token_lens[i]; k++) {
            if (((uint8_t)d.tokens[i][k] & 0xC0) == 0x80)
                continue; /* split between characters only */
            int32_t l = ltok_find(spm, d.tokens[i], k), r = ltok_find(spm, d.tokens[i] + k, d.token_lens[i] - k);
            if (l < 0 || r < 0)
                continue;
            if (nm == cap)
                m = realloc(m, (cap *= 2) * sizeof *m);
            m[nm++] = (hf_merge){d.scores[i], (int32_t)i, l, r};
        }
    }
    qsort(m, nm, sizeof *m, hf_merge_cmp);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    char buf[256];
    for (size_t i = 0; i < nm; i++) {
        snprintf(buf, sizeof buf, "%s %s", d.tokens[m[i].l], d.tokens[m[i].r]);
        cJSON_AddItemToArray(merges, cJSON_CreateString(buf));
    }
    free(m);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    char dir[] = "/tmp/shoal-hfspm-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "wb");
    fputs(json, f);
    fclose(f);
    free(json);
    ltok *t = NULL;
    shoal_error err;
    shoal_status st = ltok_load_hf_json(path, &t, &err);
    unlink(path);
    rmdir(dir);
    if (st)
        fprintf(stderr, "%s\n", err.message);
    assert_int_equal(st, SHOAL_OK);
    fprintf(stderr, "generated tokenizer.json: %zu merges\n", nm);
    assert_int_equal(ltok_get_kind(t), LTOK_SPM);
    assert_int_equal(ltok_bos(t), 1);
    assert_int_equal(ltok_eos(t), 2);
    assert_int_equal(ltok_token_type(t, 0), LTOK_TYPE_UNKNOWN);
    assert_int_equal(ltok_token_type(t, 3 + 0x41), LTOK_TYPE_BYTE);
    check_reference(t, "ggml-vocab-llama-spm.gguf");
    for (size_t i = 0; i < sizeof roundtrip_cases / sizeof roundtrip_cases[0]; i++)
        check_roundtrip(t, roundtrip_cases[i], strlen(roundtrip_cases[i]), true);
    ltok_free(t);
}

/* The Llama 3 pre-tokenizer split, worked out by hand from the regex, including the cases where PCRE2's own
 * \s would differ from Unicode's White_Space (U+180E is not a space; U+0085 is). */
typedef struct split_out {
    char pieces[16][32];
    int n;
    const char *s;
} split_out;

static bool on_piece(void *user, size_t a, size_t b) {
    split_out *o = user;
    if (o->n < 16)
        snprintf(o->pieces[o->n], sizeof o->pieces[0], "%.*s", (int)(b - a), o->s + a);
    o->n++;
    return true;
}

static void test_pretokenizer(void **state) {
    (void)state;
    static const struct {
        const char *text;
        const char *pieces[10];
    } cases[] = {
        {"Hello world", {"Hello", " world"}},
        {"I'm 12345 OK!!\n\n  x", {"I", "'m", " ", "123", "45", " OK", "!!\n\n", " ", " x"}},
        {"HE'S they'LL", {"HE", "'S", " they", "'LL"}},
        {"a\xE1\xA0\x8E!", {"a", "\xE1\xA0\x8E!"}},
        {"!\xC2\x85\n", {"!", "\xC2\x85\n"}},
        {"ab\xFF" "cd", {"ab", "\xFF", "cd"}},
        {"\t\tx\u3000y", {"\t", "\tx", "\u3000y"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        split_out o = {.s = cases[i].text};
        assert_true(ltok_bpe_split(bpe, o.s, strlen(o.s), on_piece, &o));
        int want = 0;
        while (want < 10 && cases[i].pieces[want])
            want++;
        bool same = o.n == want;
        for (int k = 0; same && k < want; k++)
            same = !strcmp(o.pieces[k], cases[i].pieces[k]);
        if (!same) {
            fprintf(stderr, "split of \"%s\":", cases[i].text);
            for (int k = 0; k < o.n && k < 16; k++)
                fprintf(stderr, " [%s]", o.pieces[k]);
            fprintf(stderr, "\n");
        }
        assert_true(same);
    }
}

static void test_chat(void **state) {
    (void)state;
    ltok_chat_msg msgs[] = {
        {"system", "You are terse."},
        {"user", "  Hi!\n"},
        {"assistant", "Hello."},
        {"user", "Bye"},
    };
    char out[1024];
    size_t len = 0;
    shoal_error err;
    assert_int_equal(ltok_chat_style_of(bpe), LTOK_CHAT_LLAMA3);
    assert_int_equal(ltok_chat_style_of(spm), LTOK_CHAT_LLAMA2);
    assert_int_equal(ltok_chat_format(bpe, msgs, 4, true, out, sizeof out, &len, &err), SHOAL_OK);
    const char *want3 = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                        "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
                        "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
                        "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
                        "<|start_header_id|>assistant<|end_header_id|>\n\n";
    assert_string_equal(out, want3);
    assert_int_equal(len, strlen(want3));
    /* Measuring, then a too-small buffer. */
    assert_int_equal(ltok_chat_format(bpe, msgs, 4, true, NULL, 0, &len, &err), SHOAL_ERR_ARG);
    assert_int_equal(len, strlen(want3));
    assert_int_equal(ltok_chat_format(bpe, msgs, 4, true, out, 10, &len, &err), SHOAL_ERR_ARG);
    fprintf(stderr, "too small: %s\n", err.message);
    /* The prompt encodes to the header tokens. */
    int32_t ids[256];
    assert_int_equal(ltok_chat_format(bpe, msgs, 2, true, out, sizeof out, &len, &err), SHOAL_OK);
    size_t n = encode(bpe, out, len, false, true, ids, 256);
    assert_int_equal(ids[0], 128000);
    assert_int_equal(ids[1], 128006);
    assert_int_equal(ids[3], 128007);
    assert_int_equal(ids[n - 1], 271); /* "\n\n" after the assistant header */
    assert_int_equal(ids[n - 2], 128007);

    assert_int_equal(ltok_chat_format(spm, msgs, 4, true, out, sizeof out, &len, &err), SHOAL_OK);
    const char *want2 = "<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi! [/INST] Hello. </s><s>[INST] Bye [/INST]";
    assert_string_equal(out, want2);
    n = encode(spm, out, len, false, true, ids, 256);
    assert_int_equal(ids[0], 1);
    size_t eos_at = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == 2)
            eos_at = i;
    assert_true(eos_at > 0 && ids[eos_at + 1] == 1);
    /* Llama 2 needs alternating turns. */
    ltok_chat_msg bad[] = {{"user", "a"}, {"user", "b"}};
    assert_int_equal(ltok_chat_format(spm, bad, 2, true, out, sizeof out, &len, &err), SHOAL_ERR_ARG);
    fprintf(stderr, "bad turns: %s\n", err.message);
    /* The tok512 vocabularies are SPM with <s>/</s>: the Llama 2 form. */
    assert_int_equal(ltok_chat_style_of(tok_stories), LTOK_CHAT_LLAMA2);
}

int main(void) {
    if (!tu_exists("llama2-tokenizer/tokenizer.bin") || !tu_exists("llama3-tokenizer/tokenizer.json") ||
        !tu_exists("vocab/ggml-vocab-llama-spm.gguf.inp") || !tu_exists("stories260K/tok512.bin") ||
        !tu_exists("aidreams260K/tok512.bin")) {
        fprintf(stderr, "SKIP: tokenizer test data not found under %s (set SHOAL_MODELS)\n", tu_models());
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spm_reference),     cmocka_unit_test(test_bpe_reference),
        cmocka_unit_test(test_vocab_rebuild),     cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_spm_against_naive), cmocka_unit_test(test_tok512),
        cmocka_unit_test(test_special_tokens),    cmocka_unit_test(test_decode_stream),
        cmocka_unit_test(test_chat),              cmocka_unit_test(test_hf_spm_json),
        cmocka_unit_test(test_pretokenizer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
