/*
 * ltok_load.c: tokenizer files. llama2.c's tokenizer.bin (SPM) and Hugging Face's tokenizer.json (byte-level
 * BPE). Both are turned into an ltok_vocab_desc and built by ltok_from_vocab, the one construction path.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ltok_int.h"

/* Refuses absurd vocabularies before allocating for them (Llama 3 has 128,256 tokens). */
#define LTOK_MAX_TOKENS (1u << 24)

static shoal_status ltok_read_file(const char *path, char **data, size_t *size, shoal_error *err) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return ltok_err(err, SHOAL_ERR_IO, "%s: cannot open", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            char *p = realloc(buf, cap + 1);
            if (!p) {
                free(buf);
                fclose(f);
                return ltok_err(err, SHOAL_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = p;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return ltok_err(err, SHOAL_ERR_IO, "%s: read error", path);
    }
    buf[n] = 0;
    *data = buf;
    *size = n;
    return SHOAL_OK;
}

/* ---- llama2.c tokenizer.bin ----------------------------------------------------------------------- */

static int32_t ltok_rd_i32(const char *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

shoal_status ltok_load_llama2c(const char *path, uint32_t vocab_size, ltok **out, shoal_error *err) {
    char *data = NULL;
    size_t size = 0;
    *out = NULL;
    shoal_status st = ltok_read_file(path, &data, &size, err);
    if (st)
        return st;
    st = ltok_load_llama2c_mem(data, size, vocab_size, path, out, err);
    free(data);
    return st;
}

shoal_status ltok_load_llama2c_mem(const void *bytes, size_t size, uint32_t vocab_size, const char *path, ltok **out,
                                   shoal_error *err) {
    const char *data = bytes;
    char *arena = NULL;
    const char **texts = NULL;
    uint32_t *lens = NULL;
    float *scores = NULL;
    shoal_status st;
    *out = NULL;
    if (!path)
        path = "tokenizer.bin";
    if (!data && size) {
        st = ltok_err(err, SHOAL_ERR_ARG, "%s: NULL data", path);
        goto fail;
    }
    if (vocab_size > LTOK_MAX_TOKENS) {
        st = ltok_err(err, SHOAL_ERR_ARG, "%s: vocabulary size %u is too large", path, (unsigned)vocab_size);
        goto fail;
    }
    if (size < 4) {
        st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: truncated: %zu bytes, no max_token_length header", path, size);
        goto fail;
    }
    int32_t max_len = ltok_rd_i32(data);
    if (max_len <= 0 || max_len > 1 << 20) {
        st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: bad max_token_length %d", path, (int)max_len);
        goto fail;
    }
    /* First pass: count and check every record against the file. */
    uint32_t n = 0;
    size_t off = 4;
    while (vocab_size ? n < vocab_size : off < size) {
        if (size - off < 8) {
            st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: truncated: token %u's score and length at offset %zu "
                          "run past the end of the file (%zu bytes)", path, (unsigned)n, off, size);
            goto fail;
        }
        float score;
        memcpy(&score, data + off, 4);
        int32_t len = ltok_rd_i32(data + off + 4);
        if (isnan(score)) {
            st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: token %u has a NaN score", path, (unsigned)n);
            goto fail;
        }
        if (len < 0 || len > max_len) {
            st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: token %u has length %d, outside 0..max_token_length %d", path,
                          (unsigned)n, (int)len, (int)max_len);
            goto fail;
        }
        if ((size_t)len > size - off - 8) {
            st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: token %u's %d bytes at offset %zu run past the end of the "
                          "file (%zu bytes)", path, (unsigned)n, (int)len, off + 8, size);
            goto fail;
        }
        off += 8 + (size_t)len;
        if (++n > LTOK_MAX_TOKENS) {
            st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: more than %u tokens", path, LTOK_MAX_TOKENS);
            goto fail;
        }
    }
    if (off != size) {
        st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: %zu bytes left after %u tokens: the file does not match the "
                      "model's vocabulary size", path, size - off, (unsigned)n);
        goto fail;
    }
    if (n < 3) {
        st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: %u tokens; a llama2.c vocabulary has <unk>, BOS, EOS first", path,
                      (unsigned)n);
        goto fail;
    }

    /* Second pass: normalise to GGUF spelling. A space becomes "▁" (3 bytes), so 3x is enough. */
    st = SHOAL_ERR_NOMEM;
    arena = malloc(3 * size + 1);
    texts = malloc(n * sizeof *texts);
    lens = malloc(n * sizeof *lens);
    scores = malloc(n * sizeof *scores);
    if (!arena || !texts || !lens || !scores)
        goto fail;
    char *p = arena;
    off = 4;
    for (uint32_t i = 0; i < n; i++) {
        memcpy(&scores[i], data + off, 4);
        uint32_t len = (uint32_t)ltok_rd_i32(data + off + 4);
        const char *s = data + off + 8;
        off += 8 + len;
        texts[i] = p;
        /* llama2.c wraps BOS and EOS in newlines so they print on their own lines. */
        if ((len == 5 && !memcmp(s, "\n<s>\n", 5)) || (len == 6 && !memcmp(s, "\n</s>\n", 6))) {
            s++;
            len -= 2;
        }
        for (uint32_t k = 0; k < len; k++) {
            if (s[k] == ' ') {
                memcpy(p, "\xE2\x96\x81", 3);
                p += 3;
            } else {
                *p++ = s[k];
            }
        }
        lens[i] = (uint32_t)(p - texts[i]);
    }
    ltok_vocab_desc d = {
        .kind = LTOK_SPM,
        .n_tokens = n,
        .tokens = texts,
        .token_lens = lens,
        .scores = scores,
        .unk_id = 0,
        .bos_id = 1,
        .eos_id = 2,
        .eot_id = -1,
        .pad_id = -1,
        .add_bos = true,
        .pre = "default",
    };
    st = ltok_from_vocab(&d, out, err);
fail:
    free(arena);
    free(texts);
    free(lens);
    free(scores);
    return st;
}

/* ---- Hugging Face tokenizer.json ------------------------------------------------------------------ */

/* The pre-tokenizer name (GGUF style) for a tokenizer.json pre_tokenizer, or NULL when unsupported. */
static const char *ltok_hf_pre(const cJSON *pre) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pre, "type");
    if (!cJSON_IsString(type))
        return NULL;
    if (!strcmp(type->valuestring, "ByteLevel")) {
        return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pre, "use_regex")) ? "default" : NULL;
    }
    if (strcmp(type->valuestring, "Sequence"))
        return NULL;
    /* Llama 3: Split on the Llama 3 regex (isolated), then ByteLevel without its own regex. */
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
    const cJSON *split = cJSON_GetArrayItem(list, 0), *bl = cJSON_GetArrayItem(list, 1);
    if (cJSON_GetArraySize(list) != 2)
        return NULL;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(split, "type");
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(split, "pattern"), "Regex");
    const cJSON *beh = cJSON_GetObjectItemCaseSensitive(split, "behavior");
    const cJSON *blt = cJSON_GetObjectItemCaseSensitive(bl, "type");
    if (!cJSON_IsString(st) || strcmp(st->valuestring, "Split") || !cJSON_IsString(pat) ||
        strcmp(pat->valuestring, ltok_llama3_regex) || !cJSON_IsString(beh) || strcmp(beh->valuestring, "Isolated") ||
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(split, "invert")) || !cJSON_IsString(blt) ||
        strcmp(blt->valuestring, "ByteLevel") || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(bl, "use_regex")))
        return NULL;
    return "llama-bpe";
}

/* bos_token / eos_token from tokenizer_config.json next to tokenizer.json: a string or {"content": ...}. */
static char *ltok_hf_config_token(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v))
        v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? strdup(v->valuestring) : NULL;
}

/* transformers lists a converted SentencePiece model's merges grouped by the piece they make, best piece
 * first. SPM joins the pair making the best-scoring piece, so a piece's score is minus the rank of the first
 * merge that makes it; a piece no merge makes is never made by joining (its parts are not both pieces). */
static void ltok_hf_spm_scores(ltok *t, const char *const *merges, const uint32_t *mlens, uint32_t nm) {
    for (uint32_t i = 0; i < t->n; i++)
        t->scores[i] = -1e30f;
    char buf[1024];
    for (uint32_t r = 0; r < nm; r++) {
        const char *sp = mlens[r] > 1 ? memchr(merges[r] + 1, ' ', mlens[r] - 1) : NULL;
        if (!sp || mlens[r] > sizeof buf)
            continue;
        size_t ln = (size_t)(sp - merges[r]), rn = mlens[r] - ln - 1;
        memcpy(buf, merges[r], ln);
        memcpy(buf + ln, sp + 1, rn);
        int32_t id = ltok_map_find(t, buf, ln + rn);
        if (id >= 0 && t->scores[id] == -1e30f)
            t->scores[id] = -(float)r;
    }
}

static int32_t ltok_hf_lookup(const char *const *texts, const uint32_t *lens, uint32_t n, const char *name) {
    if (!name)
        return -1;
    size_t k = strlen(name);
    for (uint32_t i = 0; i < n; i++)
        if (lens[i] == k && !memcmp(texts[i], name, k))
            return (int32_t)i;
    return -1;
}

shoal_status ltok_load_hf_json(const char *path, ltok **out, shoal_error *err) {
    char *data = NULL, *cfgdata = NULL, *cfgpath = NULL;
    size_t size = 0, cfgsize = 0;
    *out = NULL;
    shoal_status st = ltok_read_file(path, &data, &size, err);
    if (st)
        return st;
    /* BOS/EOS come from tokenizer_config.json when it sits alongside. */
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path + 1) : 0;
    cfgpath = malloc(dirlen + sizeof "tokenizer_config.json");
    if (!cfgpath) {
        free(data);
        return ltok_err(err, SHOAL_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(cfgpath, path, dirlen);
    strcpy(cfgpath + dirlen, "tokenizer_config.json");
    shoal_error ignored;
    if (ltok_read_file(cfgpath, &cfgdata, &cfgsize, &ignored) != SHOAL_OK)
        cfgdata = NULL;
    st = ltok_load_hf_json_mem(data, size, cfgdata, cfgsize, path, out, err);
    free(data);
    free(cfgdata);
    free(cfgpath);
    return st;
}

shoal_status ltok_load_hf_json_mem(const char *data, size_t size, const char *cfgdata, size_t cfgsize,
                                   const char *path, ltok **out, shoal_error *err) {
    char *bos_name = NULL, *eos_name = NULL, *marena = NULL;
    cJSON *root = NULL, *cfg = NULL;
    const char **texts = NULL, **merges = NULL;
    uint32_t *lens = NULL, *mlens = NULL;
    int32_t *types = NULL;
    shoal_status st;
    *out = NULL;
    if (!path)
        path = "tokenizer.json";
    if (!data && size)
        return ltok_err(err, SHOAL_ERR_ARG, "%s: NULL data", path);
    root = cJSON_ParseWithLength(data ? data : "", size);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t pos = at && at >= data && at <= data + size ? (size_t)(at - data) : 0;
        st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: invalid JSON near byte %zu", path, pos);
        goto fail;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *mtype = cJSON_GetObjectItemCaseSensitive(model, "type");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *jmerges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (!cJSON_IsObject(model) || !cJSON_IsString(mtype) || !cJSON_IsObject(vocab) || !cJSON_IsArray(jmerges)) {
        st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: no model with type, vocab and merges", path);
        goto fail;
    }
    /* byte_fallback marks a SentencePiece vocabulary converted by transformers (Llama 2): pieces spelled with
     * "▁" and <0xNN>, merges listed best first. It becomes an SPM tokenizer whose piece scores follow the
     * merge order (see ltok_hf_spm_scores). Otherwise the model must be byte-level BPE. */
    bool spm = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"));
    if (strcmp(mtype->valuestring, "BPE")) {
        st = ltok_err(err, SHOAL_ERR_UNSUPPORTED, "%s: model type %s: only BPE tokenizer.json (byte-level, or "
                      "SentencePiece-converted with byte_fallback) is supported", path, mtype->valuestring);
        goto fail;
    }
    const char *pre = spm ? "default" : ltok_hf_pre(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"));
    if (!pre) {
        st = ltok_err(err, SHOAL_ERR_UNSUPPORTED, "%s: unsupported pre_tokenizer (supported: the Llama 3 Split regex + "
                      "ByteLevel, or GPT-2 ByteLevel)", path);
        goto fail;
    }
    const cJSON *unk_tok = cJSON_GetObjectItemCaseSensitive(model, "unk_token");

    /* The id range: the vocab plus the added tokens. */
    int64_t max_id = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= LTOK_MAX_TOKENS ||
            it->valuedouble != (double)(int64_t)it->valuedouble) {
            st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: vocab entry \"%.64s\" has a bad id", path, it->string);
            goto fail;
        }
        if ((int64_t)it->valuedouble > max_id)
            max_id = (int64_t)it->valuedouble;
    }
    cJSON_ArrayForEach(it, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= LTOK_MAX_TOKENS ||
            id->valuedouble != (double)(int64_t)id->valuedouble || !cJSON_IsString(content)) {
            st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: an added_tokens entry lacks a valid id or content", path);
            goto fail;
        }
        if ((int64_t)id->valuedouble > max_id)
            max_id = (int64_t)id->valuedouble;
    }
    if (max_id < 0) {
        st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: empty vocabulary", path);
        goto fail;
    }
    uint32_t n = (uint32_t)max_id + 1;
    st = SHOAL_ERR_NOMEM;
    texts = calloc(n, sizeof *texts);
    lens = calloc(n, sizeof *lens);
    types = malloc(n * sizeof *types);
    if (!texts || !lens || !types)
        goto fail;
    for (uint32_t i = 0; i < n; i++)
        types[i] = LTOK_TYPE_UNUSED; /* ids nothing names stay empty and are never produced */
    cJSON_ArrayForEach(it, vocab) {
        uint32_t id = (uint32_t)it->valuedouble;
        if (texts[id]) {
            st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: id %u is given to both \"%.64s\" and \"%.64s\"", path,
                          (unsigned)id, texts[id], it->string);
            goto fail;
        }
        texts[id] = it->string;
        lens[id] = (uint32_t)strlen(it->string);
        int b;
        types[id] = spm && ltok_is_byte_piece(texts[id], lens[id], &b) ? LTOK_TYPE_BYTE : LTOK_TYPE_NORMAL;
    }
    cJSON_ArrayForEach(it, added) {
        uint32_t id = (uint32_t)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
        const char *content = cJSON_GetObjectItemCaseSensitive(it, "content")->valuestring;
        texts[id] = content; /* an added token overrides a vocab entry of the same id, as in transformers */
        lens[id] = (uint32_t)strlen(content);
        types[id] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "special")) ? LTOK_TYPE_CONTROL
                                                                                   : LTOK_TYPE_USER_DEFINED;
    }

    /* Merges: "a b" strings, or ["a", "b"] pairs in newer files; stored as "a b". */
    int nm = cJSON_GetArraySize(jmerges);
    size_t mtotal = 0;
    cJSON_ArrayForEach(it, jmerges) {
        if (cJSON_IsString(it)) {
            mtotal += strlen(it->valuestring) + 1;
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            mtotal += strlen(cJSON_GetArrayItem(it, 0)->valuestring) + strlen(cJSON_GetArrayItem(it, 1)->valuestring) + 2;
        } else {
            st = ltok_err(err, SHOAL_ERR_FORMAT, "%s: a merge is neither \"a b\" nor [\"a\", \"b\"]", path);
            goto fail;
        }
    }
    merges = malloc((nm ? (size_t)nm : 1) * sizeof *merges);
    mlens = malloc((nm ? (size_t)nm : 1) * sizeof *mlens);
    marena = malloc(mtotal + 1);
    if (!merges || !mlens || !marena)
        goto fail;
    char *p = marena;
    int k = 0;
    cJSON_ArrayForEach(it, jmerges) {
        merges[k] = p;
        if (cJSON_IsString(it)) {
            size_t l = strlen(it->valuestring);
            memcpy(p, it->valuestring, l + 1);
            p += l + 1;
        } else {
            p += sprintf(p, "%s %s", cJSON_GetArrayItem(it, 0)->valuestring, cJSON_GetArrayItem(it, 1)->valuestring) + 1;
        }
        mlens[k] = (uint32_t)(p - merges[k] - 1);
        k++;
    }

    /* BOS/EOS: tokenizer_config.json when given, else the usual Llama 3 names. */
    if (cfgdata && (cfg = cJSON_ParseWithLength(cfgdata, cfgsize)) != NULL) {
        bos_name = ltok_hf_config_token(cfg, "bos_token");
        eos_name = ltok_hf_config_token(cfg, "eos_token");
    }
    int32_t bos = ltok_hf_lookup(texts, lens, n, bos_name ? bos_name : spm ? "<s>" : "<|begin_of_text|>");
    int32_t eos = ltok_hf_lookup(texts, lens, n, eos_name ? eos_name : spm ? "</s>" : "<|end_of_text|>");
    int32_t unk = cJSON_IsString(unk_tok) ? ltok_hf_lookup(texts, lens, n, unk_tok->valuestring) : -1;
    if (unk >= 0)
        types[unk] = LTOK_TYPE_UNKNOWN;
    int32_t eot = ltok_hf_lookup(texts, lens, n, "<|eot_id|>");
    ltok_vocab_desc d = {
        .kind = spm ? LTOK_SPM : LTOK_BPE,
        .n_tokens = n,
        .tokens = texts,
        .token_lens = lens,
        .types = types,
        .n_merges = spm ? 0 : (uint32_t)nm,
        .merges = merges,
        .merge_lens = mlens,
        .bos_id = bos,
        .eos_id = eos,
        .eot_id = eot,
        .unk_id = unk,
        .pad_id = -1,
        .add_bos = bos >= 0,
        .pre = pre,
    };
    st = ltok_from_vocab(&d, out, err);
    if (st == SHOAL_OK && spm)
        ltok_hf_spm_scores(*out, merges, mlens, (uint32_t)nm);
    if (st == SHOAL_OK && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "ignore_merges")))
        (*out)->ignore_merges = false; /* the pre name turns it on for Llama 3; the file has the last word */
fail:
    if (st == SHOAL_ERR_NOMEM)
        ltok_err(err, st, "%s: out of memory", path);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    free(bos_name);
    free(eos_name);
    free(texts);
    free(lens);
    free(types);
    free(merges);
    free(mlens);
    free(marena);
    return st;
}
