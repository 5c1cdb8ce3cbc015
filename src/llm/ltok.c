/*
 * ltok.c: building a tokenizer from a vocabulary, the queries, splitting text around special tokens before
 * handing the plain runs to the SPM or BPE encoder, and decoding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ltok_int.h"

shoal_status ltok_err(shoal_error *err, shoal_status status, const char *fmt, ...) {
    if (err) {
        memset(err, 0, sizeof *err);
        err->status = status;
        err->func_index = SHOAL_NO_FUNC;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return status;
}

bool ltok_ids_push(ltok_ids *v, int32_t id) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->ids, cap * sizeof *p);
        if (!p)
            return false;
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return true;
}

size_t ltok_utf8_next(const char *s, size_t n, uint32_t *cp) {
    const uint8_t *u = (const uint8_t *)s;
    uint32_t c = u[0];
    size_t len;
    uint32_t min;
    *cp = 0xFFFFFFFFu;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, c &= 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, c &= 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, c &= 0x07, min = 0x10000;
    } else {
        return 1;
    }
    if (len > n)
        return 1;
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80)
            return 1;
        c = c << 6 | (u[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 1;
    *cp = c;
    return len;
}

/* ---- text -> id map ------------------------------------------------------------------------------- */

static uint64_t ltok_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static bool ltok_map_build(ltok *t) {
    uint32_t size = 16;
    while (size < 2 * (uint64_t)t->n)
        size *= 2;
    t->map.slots = calloc(size, sizeof *t->map.slots);
    if (!t->map.slots)
        return false;
    t->map.mask = size - 1;
    for (uint32_t i = 0; i < t->n; i++) {
        if (t->len[i] == 0)
            continue; /* holes in a vocabulary: never matched */
        uint32_t h = (uint32_t)ltok_hash(t->text[i], t->len[i]) & t->map.mask;
        for (;; h = (h + 1) & t->map.mask) {
            uint32_t s = t->map.slots[h];
            if (s == 0) {
                t->map.slots[h] = i + 1;
                break;
            }
            if (t->len[s - 1] == t->len[i] && !memcmp(t->text[s - 1], t->text[i], t->len[i]))
                break; /* duplicate text: keep the first id */
        }
    }
    return true;
}

int32_t ltok_map_find(const ltok *t, const char *s, size_t n) {
    if (n == 0 || n > UINT32_MAX)
        return -1;
    uint32_t h = (uint32_t)ltok_hash(s, n) & t->map.mask;
    for (;; h = (h + 1) & t->map.mask) {
        uint32_t v = t->map.slots[h];
        if (v == 0)
            return -1;
        if (t->len[v - 1] == n && !memcmp(t->text[v - 1], s, n))
            return (int32_t)(v - 1);
    }
}

/* ---- construction --------------------------------------------------------------------------------- */

bool ltok_is_byte_piece(const char *s, uint32_t n, int *byte) {
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
        return false;
    const char *hi = memchr(hex, s[3], 16), *lo = memchr(hex, s[4], 16);
    if (!hi || !lo || !s[3] || !s[4])
        return false;
    *byte = (int)((hi - hex) * 16 + (lo - hex));
    return true;
}

static int ltok_cmp_special(const void *a, const void *b, void *ctx) {
    const ltok *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint8_t fx = (uint8_t)t->text[x][0], fy = (uint8_t)t->text[y][0];
    if (fx != fy)
        return fx < fy ? -1 : 1;
    if (t->len[x] != t->len[y])
        return t->len[x] > t->len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static bool ltok_collect_specials(ltok *t) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        int32_t ty = t->types[i];
        if (t->len[i] && (ty == LTOK_TYPE_CONTROL || ty == LTOK_TYPE_USER_DEFINED || ty == LTOK_TYPE_UNKNOWN))
            n++;
    }
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!t->special)
        return false;
    n = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        int32_t ty = t->types[i];
        if (t->len[i] && (ty == LTOK_TYPE_CONTROL || ty == LTOK_TYPE_USER_DEFINED || ty == LTOK_TYPE_UNKNOWN))
            t->special[n++] = (int32_t)i;
    }
    qsort_r(t->special, n, sizeof *t->special, ltok_cmp_special, t);
    uint32_t k = 0;
    for (uint32_t b = 0; b <= 256; b++) {
        while (k < n && (uint8_t)t->text[t->special[k]][0] < b)
            k++;
        t->special_start[b] = b == 256 ? n : k;
    }
    return true;
}

static bool ltok_collect_eog(ltok *t) {
    static const char *const names[] = {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>",
                                        "<end_of_turn>", "<|endoftext|>"};
    t->eog = malloc((3 + sizeof names / sizeof names[0]) * sizeof *t->eog);
    if (!t->eog)
        return false;
    int32_t cand[3 + sizeof names / sizeof names[0]];
    size_t nc = 0;
    /* Vocabularies that do not say which token ends a turn (a GGUF without eot_token_id) get it by name. */
    for (size_t i = 0; t->eot < 0 && i < 2; i++) {
        int32_t id = ltok_map_find(t, names[i == 0 ? 0 : 3], strlen(names[i == 0 ? 0 : 3]));
        if (id >= 0 && t->types[id] == LTOK_TYPE_CONTROL)
            t->eot = id;
    }
    cand[nc++] = t->eos;
    cand[nc++] = t->eot;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int32_t id = ltok_map_find(t, names[i], strlen(names[i]));
        if (id >= 0 && t->types[id] == LTOK_TYPE_CONTROL)
            cand[nc++] = id;
    }
    for (size_t i = 0; i < nc; i++) {
        if (cand[i] < 0)
            continue;
        bool dup = false;
        for (uint32_t j = 0; j < t->n_eog; j++)
            dup |= t->eog[j] == cand[i];
        if (!dup)
            t->eog[t->n_eog++] = cand[i];
    }
    return true;
}

static shoal_status ltok_check_id(int32_t id, uint32_t n, const char *what, shoal_error *err) {
    if (id < -1 || (id >= 0 && (uint32_t)id >= n))
        return ltok_err(err, SHOAL_ERR_FORMAT, "tokenizer: %s id %d is outside the vocabulary of %u tokens",
                        what, (int)id, (unsigned)n);
    return SHOAL_OK;
}

shoal_status ltok_from_vocab(const ltok_vocab_desc *d, ltok **out, shoal_error *err) {
    shoal_status st = SHOAL_ERR_NOMEM;
    ltok *t = NULL;
    *out = NULL;
    if (!d || d->n_tokens == 0 || !d->tokens || !d->token_lens)
        return ltok_err(err, SHOAL_ERR_ARG, "tokenizer: empty vocabulary");
    if (d->kind != LTOK_SPM && d->kind != LTOK_BPE)
        return ltok_err(err, SHOAL_ERR_UNSUPPORTED, "tokenizer: unknown kind %d", (int)d->kind);
    if (d->n_tokens > (uint32_t)INT32_MAX - 1)
        return ltok_err(err, SHOAL_ERR_FORMAT, "tokenizer: %u tokens is too many", (unsigned)d->n_tokens);
    if (d->kind == LTOK_BPE && (d->n_merges == 0 || !d->merges || !d->merge_lens))
        return ltok_err(err, SHOAL_ERR_FORMAT, "tokenizer: a byte-level BPE vocabulary needs merges");
    if ((st = ltok_check_id(d->bos_id, d->n_tokens, "BOS", err)) || (st = ltok_check_id(d->eos_id, d->n_tokens, "EOS", err)) ||
        (st = ltok_check_id(d->eot_id, d->n_tokens, "EOT", err)) || (st = ltok_check_id(d->unk_id, d->n_tokens, "UNK", err)))
        return st;
    st = SHOAL_ERR_NOMEM;

    t = calloc(1, sizeof *t);
    if (!t)
        goto fail;
    t->kind = d->kind;
    t->n = d->n_tokens;
    t->bos = d->bos_id, t->eos = d->eos_id, t->eot = d->eot_id, t->unk = d->unk_id;
    /* Padding never reaches the tokenizer's work; converters sometimes write an id past the vocabulary. */
    t->pad = d->pad_id >= 0 && (uint32_t)d->pad_id < d->n_tokens ? d->pad_id : -1;
    t->add_bos = d->add_bos;
    t->add_space_prefix = d->kind == LTOK_SPM;

    size_t total = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        if (!d->tokens[i] && d->token_lens[i]) {
            st = ltok_err(err, SHOAL_ERR_FORMAT, "tokenizer: token %u has no text", (unsigned)i);
            goto fail;
        }
        total += (size_t)d->token_lens[i] + 1;
    }
    t->arena = malloc(total);
    t->text = malloc(t->n * sizeof *t->text);
    t->len = malloc(t->n * sizeof *t->len);
    t->scores = malloc(t->n * sizeof *t->scores);
    t->types = malloc(t->n * sizeof *t->types);
    if (!t->arena || !t->text || !t->len || !t->scores || !t->types)
        goto fail;
    char *p = t->arena;
    for (uint32_t i = 0; i < t->n; i++) {
        if (d->token_lens[i])
            memcpy(p, d->tokens[i], d->token_lens[i]);
        p[d->token_lens[i]] = 0;
        t->text[i] = p;
        t->len[i] = d->token_lens[i];
        p += d->token_lens[i] + 1;
        t->scores[i] = d->scores ? d->scores[i] : 0.0f;
        if (d->types) {
            if (d->types[i] < LTOK_TYPE_UNDEFINED || d->types[i] > LTOK_TYPE_BYTE) {
                st = ltok_err(err, SHOAL_ERR_FORMAT, "tokenizer: token %u has unknown type %d", (unsigned)i,
                              (int)d->types[i]);
                goto fail;
            }
            t->types[i] = d->types[i];
        } else {
            int b;
            int32_t id = (int32_t)i;
            if (id == t->unk)
                t->types[i] = LTOK_TYPE_UNKNOWN;
            else if (id == t->bos || id == t->eos || id == t->eot || id == t->pad)
                t->types[i] = LTOK_TYPE_CONTROL;
            else if (t->kind == LTOK_SPM && ltok_is_byte_piece(t->text[i], t->len[i], &b))
                t->types[i] = LTOK_TYPE_BYTE;
            else
                t->types[i] = LTOK_TYPE_NORMAL;
        }
    }
    if (!ltok_map_build(t))
        goto fail;

    for (int b = 0; b < 256; b++)
        t->byte_tok[b] = -1;
    if (t->kind == LTOK_SPM) {
        for (uint32_t i = 0; i < t->n; i++) {
            int b;
            if (t->types[i] == LTOK_TYPE_BYTE && ltok_is_byte_piece(t->text[i], t->len[i], &b) && t->byte_tok[b] < 0)
                t->byte_tok[b] = (int32_t)i;
        }
    }

    if (d->n_merges) {
        size_t mtotal = 0;
        for (uint32_t i = 0; i < d->n_merges; i++) {
            if (!d->merges[i] && d->merge_lens[i]) {
                st = ltok_err(err, SHOAL_ERR_FORMAT, "tokenizer: merge %u has no text", (unsigned)i);
                goto fail;
            }
            mtotal += (size_t)d->merge_lens[i] + 1;
        }
        t->n_merges = d->n_merges;
        t->merge_arena = malloc(mtotal);
        t->merges = malloc(t->n_merges * sizeof *t->merges);
        t->merge_lens = malloc(t->n_merges * sizeof *t->merge_lens);
        if (!t->merge_arena || !t->merges || !t->merge_lens)
            goto fail;
        p = t->merge_arena;
        for (uint32_t i = 0; i < t->n_merges; i++) {
            if (d->merge_lens[i])
                memcpy(p, d->merges[i], d->merge_lens[i]);
            p[d->merge_lens[i]] = 0;
            t->merges[i] = p;
            t->merge_lens[i] = d->merge_lens[i];
            p += d->merge_lens[i] + 1;
        }
    }
    if (d->pre && !(t->pre = strdup(d->pre)))
        goto fail;
    if (!ltok_collect_specials(t) || !ltok_collect_eog(t))
        goto fail;
    if (t->kind == LTOK_BPE && (st = ltok_bpe_init(t, NULL, err)) != SHOAL_OK)
        goto fail;
    *out = t;
    return SHOAL_OK;
fail:
    ltok_free(t);
    if (st == SHOAL_ERR_NOMEM)
        ltok_err(err, st, "tokenizer: out of memory");
    return st;
}

void ltok_free(ltok *t) {
    if (!t)
        return;
    ltok_bpe_free(t);
    free(t->arena);
    free(t->text);
    free(t->len);
    free(t->scores);
    free(t->types);
    free(t->merge_arena);
    free(t->merges);
    free(t->merge_lens);
    free(t->pre);
    free(t->map.slots);
    free(t->special);
    free(t->eog);
    free(t);
}

void ltok_vocab(const ltok *t, ltok_vocab_desc *d) {
    memset(d, 0, sizeof *d);
    d->kind = t->kind;
    d->n_tokens = t->n;
    d->tokens = t->text;
    d->token_lens = t->len;
    d->scores = t->scores;
    d->types = t->types;
    d->n_merges = t->n_merges;
    d->merges = t->merges;
    d->merge_lens = t->merge_lens;
    d->bos_id = t->bos, d->eos_id = t->eos, d->eot_id = t->eot, d->unk_id = t->unk, d->pad_id = t->pad;
    d->add_bos = t->add_bos;
    d->pre = t->pre;
}

/* ---- queries -------------------------------------------------------------------------------------- */

ltok_kind ltok_get_kind(const ltok *t) { return t->kind; }
uint32_t ltok_n_tokens(const ltok *t) { return t->n; }
int32_t ltok_bos(const ltok *t) { return t->bos; }
int32_t ltok_eos(const ltok *t) { return t->eos; }
int32_t ltok_eot(const ltok *t) { return t->eot; }
bool ltok_add_bos(const ltok *t) { return t->add_bos; }

bool ltok_is_eog(const ltok *t, int32_t id) {
    for (uint32_t i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return true;
    return false;
}

int32_t ltok_token_type(const ltok *t, int32_t id) {
    return id >= 0 && (uint32_t)id < t->n ? t->types[id] : -1;
}

const char *ltok_token_text(const ltok *t, int32_t id, uint32_t *len) {
    if (id < 0 || (uint32_t)id >= t->n)
        return NULL;
    if (len)
        *len = t->len[id];
    return t->text[id];
}

int32_t ltok_find(const ltok *t, const char *text, size_t len) { return ltok_map_find(t, text, len); }

/* ---- encoding ------------------------------------------------------------------------------------- */

/* The special token that starts at s[0..n), longest first, or -1. */
static int32_t ltok_special_at(const ltok *t, const char *s, size_t n, bool parse_special) {
    uint8_t b = (uint8_t)s[0];
    for (uint32_t k = t->special_start[b]; k < t->special_start[b + 1]; k++) {
        int32_t id = t->special[k];
        if (!parse_special && t->types[id] != LTOK_TYPE_USER_DEFINED)
            continue;
        if (t->len[id] <= n && !memcmp(s, t->text[id], t->len[id]))
            return id;
    }
    return -1;
}

static bool ltok_encode_run(const ltok *t, const char *s, size_t n, ltok_ids *out) {
    if (n == 0)
        return true;
    if (t->kind == LTOK_SPM)
        return ltok_spm_encode(t, s, n, t->add_space_prefix, out);
    return ltok_bpe_encode(t, s, n, out);
}

shoal_status ltok_encode(const ltok *t, const char *text, size_t len, bool add_bos, bool parse_special,
                         int32_t *ids, size_t max_ids, size_t *n_ids, shoal_error *err) {
    ltok_ids v = {0};
    *n_ids = 0;
    if (!text && len)
        return ltok_err(err, SHOAL_ERR_ARG, "tokenizer: NULL text");
    if (!ids && max_ids)
        return ltok_err(err, SHOAL_ERR_ARG, "tokenizer: NULL ids with max_ids %zu", max_ids);
    /* The encoders index symbols with 32-bit integers and need a few bytes of scratch per input byte. */
    if (len > LTOK_MAX_TEXT)
        return ltok_err(err, SHOAL_ERR_ARG, "tokenizer: %zu bytes of text is more than the limit of %u", len,
                        (unsigned)LTOK_MAX_TEXT);
    if (add_bos && t->bos >= 0 && !ltok_ids_push(&v, t->bos))
        goto nomem;
    /* Plain runs between special tokens go to the encoder. Each run follows the start of the text or a
     * special token, so SPM puts its dummy prefix in front of every run, as SentencePiece does for each
     * piece of text it is given. */
    size_t run = 0;
    bool any_special = t->special_start[256] > 0;
    for (size_t i = 0; any_special && i < len;) {
        int32_t id = ltok_special_at(t, text + i, len - i, parse_special);
        if (id < 0) {
            i++;
            continue;
        }
        if (!ltok_encode_run(t, text + run, i - run, &v) || !ltok_ids_push(&v, id))
            goto nomem;
        i += t->len[id];
        run = i;
    }
    if (!ltok_encode_run(t, text + run, len - run, &v))
        goto nomem;
    *n_ids = v.n;
    if (v.n > max_ids) {
        free(v.ids);
        return ltok_err(err, SHOAL_ERR_ARG, "tokenizer: %zu tokens do not fit in %zu", *n_ids, max_ids);
    }
    if (v.n)
        memcpy(ids, v.ids, v.n * sizeof *ids);
    free(v.ids);
    return SHOAL_OK;
nomem:
    free(v.ids);
    return ltok_err(err, SHOAL_ERR_NOMEM, "tokenizer: out of memory");
}

/* ---- decoding ------------------------------------------------------------------------------------- */

static size_t ltok_put(char *buf, size_t cap, size_t at, const char *s, size_t n) {
    if (at < cap)
        memcpy(buf + at, s, n < cap - at ? n : cap - at);
    return at + n;
}

size_t ltok_decode_token(const ltok *t, int32_t prev, int32_t id, char *buf, size_t cap) {
    if (id < 0 || (uint32_t)id >= t->n)
        return 0;
    const char *s = t->text[id];
    size_t n = t->len[id], w = 0;
    switch (t->types[id]) {
    case LTOK_TYPE_CONTROL:
    case LTOK_TYPE_UNUSED:
        return 0;
    case LTOK_TYPE_USER_DEFINED:
        return ltok_put(buf, cap, 0, s, n);
    case LTOK_TYPE_UNKNOWN:
        return ltok_put(buf, cap, 0, " \xE2\x81\x87 ", 5); /* SentencePiece's " ⁇ " */
    case LTOK_TYPE_BYTE: {
        int b;
        if (ltok_is_byte_piece(s, (uint32_t)n, &b)) {
            char c = (char)b;
            return ltok_put(buf, cap, 0, &c, 1);
        }
        break;
    }
    default:
        break;
    }
    if (t->kind == LTOK_SPM) {
        /* "▁" is a space; the first one after the start or a special token is the dummy prefix. */
        bool strip = t->add_space_prefix && (prev < 0 || ltok_token_type(t, prev) == LTOK_TYPE_CONTROL);
        for (size_t i = 0; i < n;) {
            if (n - i >= 3 && !memcmp(s + i, "\xE2\x96\x81", 3)) {
                if (!strip)
                    w = ltok_put(buf, cap, w, " ", 1);
                i += 3;
            } else {
                w = ltok_put(buf, cap, w, s + i, 1);
                i++;
            }
            strip = false;
        }
        return w;
    }
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = ltok_utf8_next(s + i, n - i, &cp);
        int b = cp == 0xFFFFFFFFu ? -1 : ltok_bpe_cp_byte(cp);
        if (b >= 0) {
            char c = (char)b;
            w = ltok_put(buf, cap, w, &c, 1);
        } else {
            w = ltok_put(buf, cap, w, s + i, k); /* not a byte spelling: pass through */
        }
        i += k;
    }
    return w;
}

size_t ltok_decode(const ltok *t, const int32_t *ids, size_t n, char *buf, size_t cap) {
    size_t w = 0;
    int32_t prev = -1;
    for (size_t i = 0; i < n; i++) {
        size_t room = w < cap ? cap - w : 0;
        w += ltok_decode_token(t, prev, ids[i], room ? buf + w : NULL, room);
        prev = ids[i];
    }
    return w;
}
