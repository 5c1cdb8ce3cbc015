/*
 * ltok_spm.c: SentencePiece-style BPE with byte fallback (Llama 2).
 *
 * The text (with a leading "▁" and every space spelled "▁") starts as one symbol per UTF-8 character.
 * Repeatedly, the adjacent pair whose concatenation is a piece with the highest score is joined (the leftmost
 * pair on ties), until no adjacent pair forms a piece. Each symbol left is then a piece, or a character the
 * vocabulary lacks, which becomes its UTF-8 bytes as <0xNN> tokens (or <unk> without byte tokens).
 * Candidate pairs live in a max-heap; a pair whose symbols changed since it was pushed is skipped when popped.
 */
#include <stdlib.h>
#include <string.h>

#include "ltok_int.h"

typedef struct spm_sym {
    int32_t prev, next; /* neighbours in the list of live symbols; -1 at the ends */
    uint32_t off, len;  /* bytes of the normalised text; len 0 = joined into its left neighbour */
} spm_sym;

typedef struct spm_pair {
    float score;
    int32_t left, right;
    uint32_t size; /* left.len + right.len when pushed: a different sum means the pair is stale */
} spm_pair;

typedef struct spm_heap {
    spm_pair *a;
    size_t n, cap;
} spm_heap;

/* a pops before b: higher score, then further left. */
static bool spm_before(const spm_pair *a, const spm_pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static bool spm_push(spm_heap *h, spm_pair p) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        spm_pair *a = realloc(h->a, cap * sizeof *a);
        if (!a)
            return false;
        h->a = a;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && spm_before(&p, &h->a[(i - 1) / 2])) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = p;
    return true;
}

static spm_pair spm_pop(spm_heap *h) {
    spm_pair top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && spm_before(&h->a[c + 1], &h->a[c]))
            c++;
        if (!spm_before(&h->a[c], &last))
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n)
        h->a[i] = last;
    return top;
}

static bool spm_try_pair(const ltok *t, const char *s, const spm_sym *sym, int32_t l, int32_t r, spm_heap *h) {
    if (l < 0 || r < 0)
        return true;
    uint32_t size = sym[l].len + sym[r].len;
    int32_t id = ltok_map_find(t, s + sym[l].off, size);
    if (id < 0)
        return true;
    int32_t ty = t->types[id];
    /* Control, byte and unknown pieces are never produced by joining text. */
    if (ty == LTOK_TYPE_CONTROL || ty == LTOK_TYPE_BYTE || ty == LTOK_TYPE_UNKNOWN)
        return true;
    return spm_push(h, (spm_pair){t->scores[id], l, r, size});
}

bool ltok_spm_encode(const ltok *t, const char *s, size_t n, bool prefix, ltok_ids *out) {
    bool ok = false;
    char *norm = NULL;
    spm_sym *sym = NULL;
    spm_heap heap = {0};
    if (n > (SIZE_MAX - 3) / 3 || n > UINT32_MAX / 4)
        return false;

    norm = malloc(3 * n + 3);
    sym = malloc((n + 1) * sizeof *sym);
    if (!norm || !sym)
        goto fail;
    size_t m = 0;
    if (prefix) {
        memcpy(norm, "\xE2\x96\x81", 3);
        m = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(norm + m, "\xE2\x96\x81", 3);
            m += 3;
        } else {
            norm[m++] = s[i];
        }
    }

    int32_t ns = 0;
    for (size_t i = 0; i < m;) {
        uint32_t cp;
        size_t k = ltok_utf8_next(norm + i, m - i, &cp);
        sym[ns] = (spm_sym){ns - 1, ns + 1, (uint32_t)i, (uint32_t)k};
        ns++;
        i += k;
    }
    if (ns == 0) {
        ok = true;
        goto fail;
    }
    sym[ns - 1].next = -1;

    for (int32_t i = 0; i + 1 < ns; i++)
        if (!spm_try_pair(t, norm, sym, i, i + 1, &heap))
            goto fail;
    while (heap.n) {
        spm_pair p = spm_pop(&heap);
        spm_sym *l = &sym[p.left], *r = &sym[p.right];
        if (l->len == 0 || r->len == 0 || l->next != p.right || l->len + r->len != p.size)
            continue;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (l->next >= 0)
            sym[l->next].prev = p.left;
        if (!spm_try_pair(t, norm, sym, l->prev, p.left, &heap) || !spm_try_pair(t, norm, sym, p.left, l->next, &heap))
            goto fail;
    }

    for (int32_t i = 0; i >= 0; i = sym[i].next) {
        int32_t id = ltok_map_find(t, norm + sym[i].off, sym[i].len);
        if (id >= 0 && t->types[id] != LTOK_TYPE_CONTROL) {
            if (!ltok_ids_push(out, id))
                goto fail;
            continue;
        }
        for (uint32_t k = 0; k < sym[i].len; k++) {
            int32_t b = t->byte_tok[(uint8_t)norm[sym[i].off + k]];
            if (b < 0)
                b = t->unk;
            if (b >= 0 && !ltok_ids_push(out, b))
                goto fail;
            if (b == t->unk)
                break; /* one <unk> for the whole character, as SentencePiece does */
        }
    }
    ok = true;
fail:
    free(norm);
    free(sym);
    free(heap.a);
    return ok;
}
