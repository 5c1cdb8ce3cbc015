/*
 * lsample.c: the sampler chain of lsample.h.
 *
 * Cost per token for a vocabulary of n: the penalty touches only the history; top-k keeps a k-heap in one
 * pass (one comparison per token) and sorts only the k survivors; top-p without top-k sorts a growing prefix
 * (64, 128, ... candidates, picked by quickselect) until the prefix holds top_p of the mass, which for a
 * peaked distribution is a few hundred tokens, not a full sort of 128k.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsample.h"

typedef struct lsample_cand {
    float logit;
    int32_t id;
} lsample_cand;

struct lsampler {
    lsample_params p;
    lsample_state rng;
    lsample_cand *cand; /* scratch, cap entries */
    uint8_t *seen;      /* scratch for the penalty: one flag per token id, all 0 between calls */
    uint32_t cap;
};

static shoal_status lsample_err(shoal_error *err, shoal_status st, const char *msg) {
    if (err) {
        memset(err, 0, sizeof *err);
        err->status = st;
        err->func_index = SHOAL_NO_FUNC;
        snprintf(err->message, sizeof err->message, "sampler: %s", msg);
    }
    return st;
}

void lsample_params_default(lsample_params *p) {
    *p = (lsample_params){.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                          .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0};
}

/* ---- xoshiro256** (Blackman and Vigna), seeded through splitmix64 -------------------------------- */

static uint64_t lsample_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t lsample_next64(lsample_state *s) {
    uint64_t r = lsample_rotl(s->s[1] * 5, 7) * 9, t = s->s[1] << 17;
    s->s[2] ^= s->s[0];
    s->s[3] ^= s->s[1];
    s->s[1] ^= s->s[2];
    s->s[0] ^= s->s[3];
    s->s[2] ^= t;
    s->s[3] = lsample_rotl(s->s[3], 45);
    return r;
}

void lsample_reseed(lsampler *s, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        s->rng.s[i] = z ^ (z >> 31);
    }
    if (!(s->rng.s[0] | s->rng.s[1] | s->rng.s[2] | s->rng.s[3]))
        s->rng.s[0] = 1; /* splitmix64 cannot give four zeros, but the invariant is cheap to keep */
}

double lsample_uniform(lsampler *s) { return (double)(lsample_next64(&s->rng) >> 11) * 0x1.0p-53; }

void lsample_get_state(const lsampler *s, lsample_state *out) { *out = s->rng; }

shoal_status lsample_set_state(lsampler *s, const lsample_state *st, shoal_error *err) {
    if (!(st->s[0] | st->s[1] | st->s[2] | st->s[3]))
        return lsample_err(err, SHOAL_ERR_ARG, "an all-zero generator state is invalid");
    s->rng = *st;
    return SHOAL_OK;
}

/* ---- life cycle ----------------------------------------------------------------------------------- */

shoal_status lsample_new(const lsample_params *p, lsampler **out, shoal_error *err) {
    *out = NULL;
    if (!p)
        return lsample_err(err, SHOAL_ERR_ARG, "no parameters");
    if (isnan(p->temperature) || isnan(p->top_p) || isnan(p->min_p) || isnan(p->repeat_penalty))
        return lsample_err(err, SHOAL_ERR_ARG, "a parameter is NaN");
    if (p->top_p <= 0.0f)
        return lsample_err(err, SHOAL_ERR_ARG, "top_p must be > 0 (1 turns it off)");
    if (p->min_p >= 1.0f)
        return lsample_err(err, SHOAL_ERR_ARG, "min_p must be < 1 (0 turns it off)");
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return lsample_err(err, SHOAL_ERR_ARG, "repeat_penalty must be a positive number (1 turns it off)");
    if (p->repeat_last_n < -1)
        return lsample_err(err, SHOAL_ERR_ARG, "repeat_last_n must be >= -1");
    lsampler *s = calloc(1, sizeof *s);
    if (!s)
        return lsample_err(err, SHOAL_ERR_NOMEM, "out of memory");
    s->p = *p;
    lsample_reseed(s, p->seed);
    *out = s;
    return SHOAL_OK;
}

void lsample_free(lsampler *s) {
    if (!s)
        return;
    free(s->cand);
    free(s->seen);
    free(s);
}

const lsample_params *lsample_get_params(const lsampler *s) { return &s->p; }

static bool lsample_reserve(lsampler *s, uint32_t n) {
    if (n <= s->cap)
        return true;
    lsample_cand *c = realloc(s->cand, (size_t)n * sizeof *c);
    if (!c)
        return false;
    s->cand = c;
    uint8_t *seen = realloc(s->seen, n);
    if (!seen)
        return false;
    memset(seen + s->cap, 0, n - s->cap);
    s->seen = seen;
    s->cap = n;
    return true;
}

/* ---- the chain ------------------------------------------------------------------------------------ */

/* llama.cpp's / CTRL's penalty: each distinct recent token's logit moves towards "less likely". */
static void lsample_penalize(lsampler *s, float *logits, uint32_t n, const int32_t *hist, size_t nh) {
    float pen = s->p.repeat_penalty;
    if (pen == 1.0f || s->p.repeat_last_n == 0 || !hist || nh == 0)
        return;
    size_t from = s->p.repeat_last_n < 0 || (size_t)s->p.repeat_last_n >= nh ? 0 : nh - (size_t)s->p.repeat_last_n;
    for (size_t i = from; i < nh; i++) {
        int32_t id = hist[i];
        if (id < 0 || (uint32_t)id >= n || s->seen[id])
            continue;
        s->seen[id] = 1;
        logits[id] = logits[id] > 0 ? logits[id] / pen : logits[id] * pen;
    }
    for (size_t i = from; i < nh; i++)
        if (hist[i] >= 0 && (uint32_t)hist[i] < n)
            s->seen[hist[i]] = 0;
}

/* Candidate order: higher logit first, lower id on ties, so results never depend on the sort. */
static bool lsample_before(const lsample_cand *a, const lsample_cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int lsample_cmp(const void *x, const void *y) {
    const lsample_cand *a = x, *b = y;
    return lsample_before(a, b) ? -1 : lsample_before(b, a) ? 1 : 0;
}

/* Rearranges c[0..n) so that its first k entries are the k best (in no order). Hoare-style quickselect
 * with a median-of-three pivot. */
static void lsample_select(lsample_cand *c, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* the k-th boundary lies in [lo, hi) */
    while (hi - lo > 1 && k > lo && k < hi) {
        size_t mid = lo + (hi - lo) / 2;
        lsample_cand a = c[lo], b = c[mid], d = c[hi - 1], piv;
        if (lsample_before(&a, &b))
            piv = lsample_before(&b, &d) ? b : (lsample_before(&a, &d) ? d : a);
        else
            piv = lsample_before(&a, &d) ? a : (lsample_before(&b, &d) ? d : b);
        /* Three-way partition: [lo, lt) before pivot, [lt, gt) equal, [gt, hi) after. */
        size_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            if (lsample_before(&c[i], &piv)) {
                lsample_cand t = c[lt];
                c[lt++] = c[i];
                c[i++] = t;
            } else if (lsample_before(&piv, &c[i])) {
                lsample_cand t = c[--gt];
                c[gt] = c[i];
                c[i] = t;
            } else {
                i++;
            }
        }
        if (k <= lt)
            hi = lt;
        else if (k >= gt)
            lo = gt;
        else
            return;
    }
}

/* Sift-down in a heap ordered worst-first (the root is the worst of the kept candidates). */
static void lsample_sift(lsample_cand *h, size_t n, size_t i) {
    lsample_cand x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && lsample_before(&h[c], &h[c + 1]))
            c++;
        if (!lsample_before(&x, &h[c]))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

/* The k best real logits into c[0..k), sorted: one pass with a k-heap, so a 128k vocabulary costs one
 * comparison per token plus a few heap updates. Returns how many there were (< k if fewer are real). */
static size_t lsample_top_k(const float *logits, uint32_t n, size_t k, lsample_cand *c) {
    size_t m = 0;
    uint32_t i = 0;
    for (; i < n && m < k; i++)
        if (!isnan(logits[i]) && logits[i] != -INFINITY)
            c[m++] = (lsample_cand){logits[i], (int32_t)i};
    if (m == k) {
        for (size_t j = k / 2; j-- > 0;)
            lsample_sift(c, k, j);
        for (; i < n; i++) {
            lsample_cand x = {logits[i], (int32_t)i};
            if (!isnan(x.logit) && lsample_before(&x, &c[0])) {
                c[0] = x;
                lsample_sift(c, k, 0);
            }
        }
    }
    qsort(c, m, sizeof *c, lsample_cmp);
    return m;
}

int32_t lsample_next(lsampler *s, float *logits, uint32_t n, const int32_t *hist, size_t nh) {
    if (n == 0 || !logits || !lsample_reserve(s, n))
        return -1;
    lsample_penalize(s, logits, n, hist, nh);

    /* Candidates are the tokens with a real logit: NaN never wins, -inf is impossible. */
    if (s->p.temperature <= 0.0f) {
        int32_t best = -1;
        for (uint32_t i = 0; i < n; i++)
            if (!isnan(logits[i]) && logits[i] != -INFINITY && (best < 0 || logits[i] > logits[best]))
                best = (int32_t)i;
        return best;
    }
    lsample_cand *c = s->cand;
    size_t nc = 0, sorted = 0;
    if (s->p.top_k > 0 && (uint32_t)s->p.top_k < n) {
        nc = sorted = lsample_top_k(logits, n, (size_t)s->p.top_k, c);
    } else {
        for (uint32_t i = 0; i < n; i++)
            if (!isnan(logits[i]) && logits[i] != -INFINITY)
                c[nc++] = (lsample_cand){logits[i], (int32_t)i};
    }
    if (nc == 0)
        return -1;

    float maxl = c[0].logit;
    for (size_t i = 1; i < nc; i++)
        maxl = c[i].logit > maxl ? c[i].logit : maxl;
    if (isinf(maxl)) { /* +inf: the infinite ones share all the mass */
        size_t m = 0;
        for (size_t i = 0; i < nc; i++)
            if (c[i].logit == maxl)
                c[m++] = c[i];
        return c[(size_t)(lsample_uniform(s) * (double)m) % m].id;
    }
    double total = 0;
    for (size_t i = 0; i < nc; i++)
        total += exp((double)c[i].logit - maxl);

    /* top-p: the shortest best-first prefix holding top_p of the mass (at least one token). */
    if (s->p.top_p < 1.0f) {
        double want = (double)s->p.top_p * total, cum = 0;
        size_t keep = 0, chunk = 64;
        for (;;) {
            if (sorted < nc) {
                size_t upto = sorted + chunk < nc ? sorted + chunk : nc;
                lsample_select(c + sorted, nc - sorted, upto - sorted);
                qsort(c + sorted, upto - sorted, sizeof *c, lsample_cmp);
                sorted = upto;
                chunk *= 2;
            }
            while (keep < sorted && cum < want)
                cum += exp((double)c[keep++].logit - maxl);
            if (cum >= want || keep == nc)
                break;
        }
        nc = keep;
    }

    /* min-p: p_i >= min_p * p_max, i.e. logit_i >= max + ln(min_p). */
    if (s->p.min_p > 0.0f) {
        double cut = maxl + log((double)s->p.min_p);
        size_t m = 0;
        for (size_t i = 0; i < nc; i++)
            if ((double)c[i].logit >= cut)
                c[m++] = c[i];
        nc = m; /* the best token always passes */
    }

    /* Temperature, then one draw. */
    double inv_t = 1.0 / (double)s->p.temperature, sum = 0;
    for (size_t i = 0; i < nc; i++)
        sum += exp(((double)c[i].logit - maxl) * inv_t);
    double u = lsample_uniform(s) * sum, acc = 0;
    for (size_t i = 0; i < nc; i++) {
        acc += exp(((double)c[i].logit - maxl) * inv_t);
        if (u < acc)
            return c[i].id;
    }
    return c[nc - 1].id; /* rounding left u at the very top */
}
