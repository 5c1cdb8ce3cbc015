/*
 * ltok.h: tokenizers for Llama-family models, and their chat templates.
 *
 * Two algorithms, chosen by the vocabulary:
 *   LTOK_SPM  SentencePiece-style BPE with byte fallback (Llama 2, llama2.c tokenizer.bin, GGUF "llama").
 *             Pieces spell a space as U+2581 ("▁"); merges are driven by piece scores (higher first); text
 *             gets a leading "▁" (the "dummy prefix"); characters with no piece become <0xNN> byte tokens.
 *   LTOK_BPE  byte-level BPE (Llama 3 tokenizer.json, GGUF "gpt2" with pre "llama-bpe"): bytes are spelled
 *             with GPT-2's byte->unicode map, text is split by the Llama 3 pre-tokenizer regex, and each
 *             piece is merged by merge rank (lower first).
 *
 * Token texts are stored the way GGUF stores them (SPM: "▁" for space, "<0x0A>" for byte tokens; BPE: the
 * GPT-2 unicode spelling), whatever file they came from, so ltok_vocab() can feed a GGUF writer directly.
 * An ltok is immutable after loading: every function taking a const ltok * may be called from several
 * threads at once.
 */
#ifndef LTOK_H
#define LTOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal.h"

typedef struct ltok ltok;

typedef enum ltok_kind {
    LTOK_SPM = 0, /* SentencePiece-style BPE with byte fallback */
    LTOK_BPE = 1, /* byte-level BPE */
} ltok_kind;

/* Token types, with GGUF's tokenizer.ggml.token_type values. */
enum {
    LTOK_TYPE_UNDEFINED = 0,
    LTOK_TYPE_NORMAL = 1,
    LTOK_TYPE_UNKNOWN = 2,
    LTOK_TYPE_CONTROL = 3,      /* BOS, EOS, <|eot_id|>, ...: matched in text only when parse_special */
    LTOK_TYPE_USER_DEFINED = 4, /* added tokens: always matched in text as a whole */
    LTOK_TYPE_UNUSED = 5,
    LTOK_TYPE_BYTE = 6, /* SPM <0xNN> */
};

/* A vocabulary as GGUF describes it. Used both ways: ltok_from_vocab() copies one in, ltok_vocab() points
 * into a live ltok. Arrays have n_tokens (resp. n_merges) entries; strings need not be NUL-terminated. */
typedef struct ltok_vocab_desc {
    ltok_kind kind;
    uint32_t n_tokens;
    const char *const *tokens;
    const uint32_t *token_lens;
    const float *scores;  /* SPM merge priority (higher merges first); NULL = all 0 */
    const int32_t *types; /* LTOK_TYPE_* per token; NULL = inferred (see ltok_from_vocab) */
    uint32_t n_merges;    /* BPE: "left right" strings, index = rank (lower merges first) */
    const char *const *merges;
    const uint32_t *merge_lens;
    int32_t bos_id, eos_id, eot_id, unk_id, pad_id; /* -1 = none */
    bool add_bos;    /* whether the model expects a BOS in front of a prompt */
    const char *pre; /* GGUF tokenizer.ggml.pre, e.g. "llama-bpe", "default"; NULL = default */
} ltok_vocab_desc;

/* One chat message; role is "system", "user" or "assistant" (others are passed through as written). */
typedef struct ltok_chat_msg {
    const char *role;
    const char *content;
} ltok_chat_msg;

/* Builds a tokenizer from a vocabulary (everything is copied). Types, when absent, are inferred: unk_id is
 * UNKNOWN, bos/eos/eot/pad are CONTROL, SPM "<0xNN>" pieces are BYTE, the rest NORMAL. BPE needs merges.
 * Errors: SHOAL_ERR_FORMAT with a message naming the bad token or merge. */
shoal_status ltok_from_vocab(const ltok_vocab_desc *d, ltok **out, shoal_error *err);
/* llama2.c tokenizer.bin: int32 max_token_length, then per token float score, int32 length, bytes.
 * vocab_size is the model's (the file has no count); the file must hold exactly that many tokens.
 * Pieces are SPM; "<s>"/"</s>" are stored there as "\n<s>\n" and spaces as ' ' (both normalised). */
shoal_status ltok_load_llama2c(const char *path, uint32_t vocab_size, ltok **out, shoal_error *err);
/* The same from bytes in memory; name is used in messages (NULL: "tokenizer.bin"). */
shoal_status ltok_load_llama2c_mem(const void *data, size_t size, uint32_t vocab_size, const char *name, ltok **out,
                                   shoal_error *err);
/* Hugging Face tokenizer.json with a byte-level BPE model (Llama 3). BOS and EOS come from a
 * tokenizer_config.json in the same folder when there is one, else from the Llama 3 names. */
shoal_status ltok_load_hf_json(const char *path, ltok **out, shoal_error *err);
/* The same from memory; config (tokenizer_config.json's text) may be NULL. name is used in messages. */
shoal_status ltok_load_hf_json_mem(const char *json, size_t size, const char *config, size_t config_size,
                                   const char *name, ltok **out, shoal_error *err);
void ltok_free(ltok *t);

/* The vocabulary in GGUF terms, for writers. Pointers are valid while t lives. */
void ltok_vocab(const ltok *t, ltok_vocab_desc *out);

ltok_kind ltok_get_kind(const ltok *t);
uint32_t ltok_n_tokens(const ltok *t);
int32_t ltok_bos(const ltok *t); /* -1 when none */
int32_t ltok_eos(const ltok *t);
int32_t ltok_eot(const ltok *t);  /* end of turn (<|eot_id|>); -1 when none */
bool ltok_add_bos(const ltok *t); /* the model's default for add_bos */
/* End of generation: EOS, EOT, or another token the vocabulary marks as ending a turn (<|eom_id|>). */
bool ltok_is_eog(const ltok *t, int32_t id);
int32_t ltok_token_type(const ltok *t, int32_t id); /* LTOK_TYPE_*; -1 when out of range */
/* The stored text of a token (see the top of this file); NULL when out of range. */
const char *ltok_token_text(const ltok *t, int32_t id, uint32_t *len);
/* The id of the token whose stored text is exactly text[0..len), or -1. */
int32_t ltok_find(const ltok *t, const char *text, size_t len);

/* The longest text ltok_encode takes (1 GiB). */
#define LTOK_MAX_TEXT (1u << 30)

/* Text to token ids. add_bos puts BOS first (when the vocabulary has one). parse_special lets CONTROL
 * tokens written in the text ("<|eot_id|>") become those tokens; without it they are encoded as plain text.
 * When ids is too small, *n_ids is still set to the full count and SHOAL_ERR_ARG is returned, so a caller can
 * pass max_ids 0 to measure. Any byte string is accepted, including invalid UTF-8. */
shoal_status ltok_encode(const ltok *t, const char *text, size_t len, bool add_bos, bool parse_special,
                         int32_t *ids, size_t max_ids, size_t *n_ids, shoal_error *err);

/* The text of one token as it appears after token `prev` (-1 at the start): SPM drops the dummy-prefix
 * space of the first piece after BOS or at the start; byte tokens give their byte; CONTROL tokens give
 * nothing. Writes at most cap bytes (buf may be NULL when cap is 0) and returns the full length (may be > cap:
 * then the output is cut).
 * Output may be partial UTF-8: a streaming caller buffers bytes. */
size_t ltok_decode_token(const ltok *t, int32_t prev, int32_t id, char *buf, size_t cap);
/* A whole sequence (as repeated ltok_decode_token). Returns the full length, writing at most cap bytes. */
size_t ltok_decode(const ltok *t, const int32_t *ids, size_t n, char *buf, size_t cap);

typedef enum ltok_chat_style {
    LTOK_CHAT_NONE = 0,   /* no template known for this vocabulary */
    LTOK_CHAT_LLAMA3 = 1, /* <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> */
    LTOK_CHAT_LLAMA2 = 2, /* <s>[INST] <<SYS>>\n...\n<</SYS>>\n\nuser [/INST] assistant </s> */
} ltok_chat_style;

/* The template the vocabulary calls for: LLAMA3 when it has <|start_header_id|>, LLAMA2 for SPM. */
ltok_chat_style ltok_chat_style_of(const ltok *t);
/* Renders messages as a prompt, BOS text included at the front: encode the result with add_bos false and
 * parse_special true. add_assistant appends the header that opens the assistant's reply. The output is
 * NUL-terminated when it fits; *len gets the full length either way, and SHOAL_ERR_ARG is returned when cap
 * is too small (pass cap 0 to measure). */
shoal_status ltok_chat_format(const ltok *t, const ltok_chat_msg *msgs, size_t n, bool add_assistant, char *out,
                              size_t cap, size_t *len, shoal_error *err);

#endif /* LTOK_H */
