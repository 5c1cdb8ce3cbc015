/*
 * ltok_int.h: the inside of an ltok, shared by ltok.c (construction, queries, decoding), ltok_spm.c,
 * ltok_bpe.c (the two encoders), ltok_load.c (file loaders) and lchat.c. Not for use outside src/llm/ltok*.
 */
#ifndef LTOK_INT_H
#define LTOK_INT_H

#include <stdarg.h>

#include "ltok.h"

/* A growable array of token ids. Invariant: n <= cap; ids is NULL only while cap == 0. */
typedef struct ltok_ids {
    int32_t *ids;
    size_t n, cap;
} ltok_ids;

/* Open-addressing hash from token text to id. slots[] holds id + 1 (0 = empty); the size is a power of two
 * at least twice the number of entries, so probing always ends. On duplicate texts the first id wins. */
typedef struct ltok_textmap {
    uint32_t *slots;
    uint32_t mask;
} ltok_textmap;

/* Hash from a pair of token ids (left, right) to the merge that joins them: its rank and the id of the
 * joined token. Used by byte-level BPE, where every symbol is always a token. */
typedef struct ltok_pairent {
    uint64_t key; /* (uint64)left << 32 | right, plus 1 so 0 means empty */
    uint32_t rank;
    int32_t merged;
} ltok_pairent;

typedef struct ltok_pairmap {
    ltok_pairent *slots;
    uint64_t mask;
} ltok_pairmap;

struct ltok {
    ltok_kind kind;
    uint32_t n;        /* tokens */
    char *arena;       /* every token text, back to back, each NUL-terminated */
    const char **text; /* text[i] points into arena */
    uint32_t *len;
    float *scores;
    int32_t *types;
    uint32_t n_merges;
    char *merge_arena;
    const char **merges;
    uint32_t *merge_lens;
    int32_t bos, eos, eot, unk, pad;
    bool add_bos;
    char *pre;

    ltok_textmap map;
    ltok_pairmap pairs; /* BPE only */
    int32_t byte_tok[256]; /* SPM: the <0xNN> token of each byte; BPE: the token of each byte's symbol */

    /* Tokens matched as a whole in text (USER_DEFINED always, CONTROL and UNKNOWN with parse_special),
     * sorted by first byte, then longest first; special_start[b] .. special_start[b+1] is byte b's run. */
    int32_t *special;
    uint32_t special_start[257];

    int32_t *eog; /* ids that end generation */
    uint32_t n_eog;

    bool add_space_prefix; /* SPM: the dummy "▁" in front of text */
    bool ignore_merges;    /* BPE: a piece that is a token as a whole is not merged (Llama 3, tiktoken) */
    void *re;              /* BPE: the compiled pre-tokenizer regex (pcre2_code_8 *) */
};

shoal_status ltok_err(shoal_error *err, shoal_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

bool ltok_ids_push(ltok_ids *v, int32_t id);
int32_t ltok_map_find(const ltok *t, const char *s, size_t n);

/* Encoders for one run of plain text (no special tokens in it), appending to out. prefix: SPM adds the
 * dummy "▁" (start of text or after a special token). Return false only when out of memory. */
bool ltok_spm_encode(const ltok *t, const char *s, size_t n, bool prefix, ltok_ids *out);
bool ltok_bpe_encode(const ltok *t, const char *s, size_t n, ltok_ids *out);

/* The pre-tokenizer alone: calls piece(user, a, b) for each piece s[a..b) in order (the pieces tile s).
 * False when piece returns false or memory runs out. */
bool ltok_bpe_split(const ltok *t, const char *s, size_t n, bool (*piece)(void *user, size_t a, size_t b), void *user);

/* BPE set-up: the regex of the pre-tokenizer named by t->pre (or a regex given directly, for tokenizer.json)
 * and the merge table. */
shoal_status ltok_bpe_init(ltok *t, const char *regex, shoal_error *err);
void ltok_bpe_free(ltok *t);
/* The GPT-2 spelling of byte b (a code point U+0021..U+0143); and back: the byte for a code point, or -1. */
uint32_t ltok_bpe_byte_cp(uint8_t b);
int ltok_bpe_cp_byte(uint32_t cp);

/* Whether s[0..n) is an SPM byte piece "<0xNN>" (upper-case hex), and which byte. */
bool ltok_is_byte_piece(const char *s, uint32_t n, int *byte);

/* Decodes one UTF-8 sequence at s[0..n): its length (1..4), or 1 for an invalid or cut byte, with *cp set to
 * 0xFFFFFFFF then. n must be > 0. */
size_t ltok_utf8_next(const char *s, size_t n, uint32_t *cp);

/* The Llama 3 pre-tokenizer regex (Meta's tokenizer.py; also in tokenizer.json). */
extern const char ltok_llama3_regex[];

#endif /* LTOK_INT_H */
