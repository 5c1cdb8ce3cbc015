/*
 * ltok_bpe.c: byte-level BPE (GPT-2 style; Llama 3).
 *
 * Text is first cut into pieces by the pre-tokenizer regex (PCRE2 with Unicode properties: \p{L}, \p{N} and
 * \s are Unicode-aware). Each piece's bytes are spelled with GPT-2's byte->unicode map, so every byte is one
 * symbol and one token. Then the adjacent pair with the lowest merge rank is joined (leftmost on ties), as
 * long as some pair has a merge. With ignore_merges (Llama 3, as tiktoken), a piece that is a token as a
 * whole is taken directly. Bytes the regex cannot match (invalid UTF-8) form pieces of their own, so any byte
 * string round-trips.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "ltok_int.h"

const char ltok_llama3_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* What is compiled: the same patterns with \s spelled out as Unicode's White_Space property, which is what
 * tiktoken (Rust regex) and llama.cpp mean by \s. PCRE2's own \s also takes U+180E. */
#define WS "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char ltok_llama3_pcre[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|"
    "[" WS "]*[\\r\\n]+|[" WS "]+(?![^" WS "])|[" WS "]+";
/* GPT-2's pre-tokenizer, for BPE vocabularies with pre "default" / "gpt2". */
static const char ltok_gpt2_pcre[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS "]+";
#undef WS

/* ---- the byte <-> unicode map --------------------------------------------------------------------- */

/* Printable Latin-1 bytes stand for themselves; the others take U+0100 onward in byte order. */
static bool ltok_bpe_self(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }

uint32_t ltok_bpe_byte_cp(uint8_t b) {
    if (ltok_bpe_self(b))
        return b;
    uint32_t k = 0;
    for (unsigned c = 0; c < b; c++)
        k += !ltok_bpe_self(c);
    return 0x100 + k;
}

int ltok_bpe_cp_byte(uint32_t cp) {
    if (cp < 0x100)
        return ltok_bpe_self(cp) ? (int)cp : -1;
    uint32_t k = cp - 0x100;
    for (unsigned c = 0; c < 256; c++)
        if (!ltok_bpe_self(c) && k-- == 0)
            return (int)c;
    return -1;
}

static size_t ltok_put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6)); /* the map never goes past U+07FF */
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* ---- the merge table ------------------------------------------------------------------------------ */

static uint64_t ltok_pair_key(int32_t l, int32_t r) { return ((uint64_t)(uint32_t)l << 32 | (uint32_t)r) + 1; }

static uint64_t ltok_pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static const ltok_pairent *ltok_pair_find(const ltok *t, int32_t l, int32_t r) {
    uint64_t key = ltok_pair_key(l, r);
    for (uint64_t h = ltok_pair_hash(key) & t->pairs.mask;; h = (h + 1) & t->pairs.mask) {
        const ltok_pairent *e = &t->pairs.slots[h];
        if (e->key == key)
            return e;
        if (e->key == 0)
            return NULL;
    }
}

static shoal_status ltok_pairs_build(ltok *t, shoal_error *err) {
    uint64_t size = 16;
    while (size < 2 * (uint64_t)t->n_merges)
        size *= 2;
    t->pairs.slots = calloc(size, sizeof *t->pairs.slots);
    char *buf = NULL;
    size_t bufcap = 0;
    if (!t->pairs.slots)
        return ltok_err(err, SHOAL_ERR_NOMEM, "tokenizer: out of memory");
    t->pairs.mask = size - 1;
    for (uint32_t i = 0; i < t->n_merges; i++) {
        const char *m = t->merges[i];
        uint32_t n = t->merge_lens[i];
        /* Byte-level pieces never hold a space (it is spelled "Ġ"), so the first space splits the merge;
         * one at position 0 would be a broken merge. */
        const char *sp = n > 1 ? memchr(m + 1, ' ', n - 1) : NULL;
        if (!sp) {
            free(buf);
            return ltok_err(err, SHOAL_ERR_FORMAT, "tokenizer: merge %u (\"%.*s\") is not two tokens", (unsigned)i,
                            (int)(n > 64 ? 64 : n), m);
        }
        size_t ln = (size_t)(sp - m), rn = n - ln - 1;
        if (ln + rn > bufcap) {
            bufcap = 2 * (ln + rn);
            char *nb = realloc(buf, bufcap);
            if (!nb) {
                free(buf);
                return ltok_err(err, SHOAL_ERR_NOMEM, "tokenizer: out of memory");
            }
            buf = nb;
        }
        memcpy(buf, m, ln);
        memcpy(buf + ln, sp + 1, rn);
        int32_t l = ltok_map_find(t, m, ln), r = ltok_map_find(t, sp + 1, rn), j = ltok_map_find(t, buf, ln + rn);
        if (l < 0 || r < 0 || j < 0)
            continue; /* a merge producing or using a token the vocabulary lacks can never apply */
        uint64_t key = ltok_pair_key(l, r);
        for (uint64_t h = ltok_pair_hash(key) & t->pairs.mask;; h = (h + 1) & t->pairs.mask) {
            ltok_pairent *e = &t->pairs.slots[h];
            if (e->key == key)
                break; /* listed twice: the lower rank stays */
            if (e->key == 0) {
                *e = (ltok_pairent){key, i, j};
                break;
            }
        }
    }
    free(buf);
    return SHOAL_OK;
}

shoal_status ltok_bpe_init(ltok *t, const char *regex, shoal_error *err) {
    const char *pre = t->pre ? t->pre : "default";
    if (!regex) {
        if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "llama-v3")) {
            regex = ltok_llama3_pcre;
            t->ignore_merges = true;
        } else if (!strcmp(pre, "default") || !strcmp(pre, "gpt2") || !strcmp(pre, "gpt-2")) {
            regex = ltok_gpt2_pcre;
        } else {
            return ltok_err(err, SHOAL_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer \"%s\" is not supported (known: "
                            "llama-bpe, default)", pre);
        }
    }
    for (int b = 0; b < 256; b++) {
        char s[2];
        size_t k = ltok_put_utf8(s, ltok_bpe_byte_cp((uint8_t)b));
        t->byte_tok[b] = ltok_map_find(t, s, k);
        if (t->byte_tok[b] < 0)
            return ltok_err(err, SHOAL_ERR_FORMAT, "tokenizer: byte-level vocabulary lacks the token for byte 0x%02X",
                            (unsigned)b);
    }
    shoal_status st = ltok_pairs_build(t, err);
    if (st)
        return st;
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        return ltok_err(err, SHOAL_ERR_FORMAT, "tokenizer: pre-tokenizer regex does not compile at %zu: %s",
                        (size_t)at, (const char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: the interpreter gives the same matches */
    t->re = re;
    return SHOAL_OK;
}

void ltok_bpe_free(ltok *t) {
    pcre2_code_free((pcre2_code *)t->re);
    t->re = NULL;
    free(t->pairs.slots);
    t->pairs.slots = NULL;
}

/* ---- encoding one piece --------------------------------------------------------------------------- */

typedef struct bpe_sym {
    int32_t prev, next, id; /* id -1: joined into its left neighbour */
} bpe_sym;

typedef struct bpe_pair {
    uint32_t rank;
    int32_t left, right, lid, rid, merged; /* lid/rid: the ids when pushed, to spot stale pairs */
} bpe_pair;

typedef struct bpe_work {
    bpe_sym *sym;
    size_t symcap;
    bpe_pair *heap;
    size_t nheap, heapcap;
    char *spell;
    size_t spellcap;
} bpe_work;

static bool bpe_before(const bpe_pair *a, const bpe_pair *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static bool bpe_push(bpe_work *w, bpe_pair p) {
    if (w->nheap == w->heapcap) {
        size_t cap = w->heapcap ? w->heapcap * 2 : 64;
        bpe_pair *a = realloc(w->heap, cap * sizeof *a);
        if (!a)
            return false;
        w->heap = a;
        w->heapcap = cap;
    }
    size_t i = w->nheap++;
    while (i > 0 && bpe_before(&p, &w->heap[(i - 1) / 2])) {
        w->heap[i] = w->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->heap[i] = p;
    return true;
}

static bpe_pair bpe_pop(bpe_work *w) {
    bpe_pair top = w->heap[0], last = w->heap[--w->nheap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->nheap)
            break;
        if (c + 1 < w->nheap && bpe_before(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!bpe_before(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->nheap)
        w->heap[i] = last;
    return top;
}

static bool bpe_try(const ltok *t, bpe_work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0)
        return true;
    const ltok_pairent *e = ltok_pair_find(t, w->sym[l].id, w->sym[r].id);
    if (!e)
        return true;
    return bpe_push(w, (bpe_pair){e->rank, l, r, w->sym[l].id, w->sym[r].id, e->merged});
}

static bool bpe_piece(const ltok *t, bpe_work *w, const uint8_t *s, size_t n, ltok_ids *out) {
    if (n == 0)
        return true; /* the splitter never makes empty pieces; the buffers below assume n > 0 */
    if (t->ignore_merges) {
        if (2 * n > w->spellcap) {
            char *p = realloc(w->spell, 2 * n);
            if (!p)
                return false;
            w->spell = p;
            w->spellcap = 2 * n;
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            m += ltok_put_utf8(w->spell + m, ltok_bpe_byte_cp(s[i]));
        int32_t id = ltok_map_find(t, w->spell, m);
        if (id >= 0)
            return ltok_ids_push(out, id);
    }
    if (n > w->symcap) {
        bpe_sym *p = realloc(w->sym, n * sizeof *p);
        if (!p)
            return false;
        w->sym = p;
        w->symcap = n;
    }
    for (size_t i = 0; i < n; i++)
        w->sym[i] = (bpe_sym){(int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1, t->byte_tok[s[i]]};
    w->nheap = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (!bpe_try(t, w, (int32_t)i, (int32_t)i + 1))
            return false;
    while (w->nheap) {
        bpe_pair p = bpe_pop(w);
        bpe_sym *l = &w->sym[p.left], *r = &w->sym[p.right];
        if (l->id != p.lid || r->id != p.rid || l->next != p.right)
            continue;
        l->id = p.merged;
        r->id = -1;
        l->next = r->next;
        if (l->next >= 0)
            w->sym[l->next].prev = p.left;
        if (!bpe_try(t, w, l->prev, p.left) || !bpe_try(t, w, p.left, l->next))
            return false;
    }
    for (int32_t i = 0; i >= 0; i = w->sym[i].next)
        if (!ltok_ids_push(out, w->sym[i].id))
            return false;
    return true;
}

bool ltok_bpe_split(const ltok *t, const char *s, size_t n, bool (*piece)(void *user, size_t a, size_t b), void *user) {
    const pcre2_code *re = t->re;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    const uint8_t *u = (const uint8_t *)s;
    bool ok = false;
    if (!md)
        return false;
    for (size_t off = 0; off < n;) {
        int rc = pcre2_match(re, u, n, off, 0, md, NULL);
        size_t a = n, b = n;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            a = ov[0], b = ov[1];
        }
        /* Bytes the regex skipped (only invalid UTF-8 can be) are a piece of their own. */
        if (a > off && !piece(user, off, a))
            goto fail;
        if (b == a && a < n)
            b = a + 1; /* the regex has no empty match; guard the loop anyway */
        if (b > a && !piece(user, a, b))
            goto fail;
        off = b;
    }
    ok = true;
fail:
    pcre2_match_data_free(md);
    return ok;
}

typedef struct bpe_ctx {
    const ltok *t;
    const uint8_t *s;
    bpe_work w;
    ltok_ids *out;
} bpe_ctx;

static bool bpe_on_piece(void *user, size_t a, size_t b) {
    bpe_ctx *c = user;
    return bpe_piece(c->t, &c->w, c->s + a, b - a, c->out);
}

bool ltok_bpe_encode(const ltok *t, const char *s, size_t n, ltok_ids *out) {
    bpe_ctx c = {t, (const uint8_t *)s, {0}, out};
    bool ok = ltok_bpe_split(t, s, n, bpe_on_piece, &c);
    free(c.w.sym);
    free(c.w.heap);
    free(c.w.spell);
    return ok;
}
