/*
 * lsample.h: choosing the next token from logits.
 *
 * The chain, in llama.cpp's order: repetition penalty -> top-k -> top-p -> min-p -> temperature -> draw.
 * top-p and min-p look at the softmax of the (penalised, top-k-cut) logits before temperature, so they
 * pick the same support at any temperature; temperature then shapes the draw among the survivors.
 * temperature <= 0 is greedy: the highest logit after the penalty (lowest id on ties), and no draw.
 *
 * Reproducible: the random numbers come from the sampler's own xoshiro256** generator, seeded from
 * params.seed, never from the C library. The generator state can be read and restored (snapshots): a
 * restored sampler draws exactly the tokens the original would have.
 */
#ifndef LSAMPLE_H
#define LSAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "shoal.h"

typedef struct lsample_params {
    float temperature;     /* <= 0: greedy */
    int32_t top_k;         /* <= 0: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off; keeps tokens with p >= min_p * p_max */
    float repeat_penalty;  /* 1: off; > 1 discourages tokens seen in the last repeat_last_n of history */
    int32_t repeat_last_n; /* how much history the penalty looks at; 0: off, -1: all of it */
    uint64_t seed;
} lsample_params;

/* temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1 (off), repeat_last_n 64, seed 0. */
void lsample_params_default(lsample_params *p);

typedef struct lsampler lsampler;

typedef struct lsample_state {
    uint64_t s[4]; /* xoshiro256** state; never all zero */
} lsample_state;

/* Checks the parameters (NaNs, top_p in (0,1], ...): SHOAL_ERR_ARG with a message when bad. */
shoal_status lsample_new(const lsample_params *p, lsampler **out, shoal_error *err);
void lsample_free(lsampler *s);
const lsample_params *lsample_get_params(const lsampler *s);

/* Picks the next token. logits (n_vocab floats) is used as scratch and left modified. history holds the
 * tokens so far (oldest first), used by the repetition penalty; ids outside the vocabulary are ignored.
 * Returns the id, or -1 when n_vocab is 0, the sampler cannot get scratch memory, or every logit is NaN. */
int32_t lsample_next(lsampler *s, float *logits, uint32_t n_vocab, const int32_t *history, size_t n_history);

/* Generator state, for snapshots. */
void lsample_get_state(const lsampler *s, lsample_state *out);
/* An all-zero state (which xoshiro cannot leave) is refused with SHOAL_ERR_ARG. */
shoal_status lsample_set_state(lsampler *s, const lsample_state *st, shoal_error *err);
/* Restarts the generator as if created with this seed. */
void lsample_reseed(lsampler *s, uint64_t seed);
/* A uniform double in [0, 1) from the sampler's generator (exposed for tests and for callers that need
 * more randomness from the same reproducible stream). */
double lsample_uniform(lsampler *s);

#endif /* LSAMPLE_H */
