/*
 * lchat.c: chat templates, rendered to text with the special tokens spelled out (encode the result with
 * parse_special). Two forms, chosen by the vocabulary:
 *
 * Llama 3 (Meta's and the Hugging Face chat_template of Llama-3-Instruct; content is trimmed):
 *   <|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>
 *   <|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n
 *
 * Llama 2 (Meta's chat_completion; the system prompt is folded into the first user turn):
 *   <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST]
 */
#include <string.h>

#include "ltok_int.h"

typedef struct chat_out {
    char *buf;
    size_t cap, len;
} chat_out;

static void chat_put(chat_out *o, const char *s, size_t n) {
    if (o->len < o->cap)
        memcpy(o->buf + o->len, s, n < o->cap - o->len ? n : o->cap - o->len);
    o->len += n;
}

static void chat_puts(chat_out *o, const char *s) { chat_put(o, s, strlen(s)); }

/* Content without leading and trailing whitespace, as Jinja's trim. */
static void chat_put_trimmed(chat_out *o, const char *s) {
    size_t a = 0, b = strlen(s);
    while (a < b && strchr(" \t\n\r\v\f", s[a]))
        a++;
    while (b > a && strchr(" \t\n\r\v\f", s[b - 1]))
        b--;
    chat_put(o, s + a, b - a);
}

static const char *chat_token(const ltok *t, int32_t id, const char *fallback) {
    uint32_t n;
    const char *s = ltok_token_text(t, id, &n);
    return s && strlen(s) == n ? s : fallback;
}

ltok_chat_style ltok_chat_style_of(const ltok *t) {
    if (ltok_map_find(t, "<|start_header_id|>", 19) >= 0 && ltok_map_find(t, "<|end_header_id|>", 17) >= 0 &&
        ltok_map_find(t, "<|eot_id|>", 10) >= 0)
        return LTOK_CHAT_LLAMA3;
    if (t->kind == LTOK_SPM && t->bos >= 0 && t->eos >= 0)
        return LTOK_CHAT_LLAMA2;
    return LTOK_CHAT_NONE;
}

static shoal_status chat_llama3(const ltok *t, const ltok_chat_msg *m, size_t n, bool add_assistant, chat_out *o) {
    if (t->bos >= 0)
        chat_puts(o, chat_token(t, t->bos, "<|begin_of_text|>"));
    for (size_t i = 0; i < n; i++) {
        chat_puts(o, "<|start_header_id|>");
        chat_puts(o, m[i].role);
        chat_puts(o, "<|end_header_id|>\n\n");
        chat_put_trimmed(o, m[i].content);
        chat_puts(o, "<|eot_id|>");
    }
    if (add_assistant)
        chat_puts(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    return SHOAL_OK;
}

static shoal_status chat_llama2(const ltok *t, const ltok_chat_msg *m, size_t n, bool add_assistant, chat_out *o,
                                shoal_error *err) {
    const char *bos = chat_token(t, t->bos, "<s>"), *eos = chat_token(t, t->eos, "</s>");
    const char *system = NULL;
    size_t i = 0;
    if (n > 0 && !strcmp(m[0].role, "system"))
        system = m[i++].content;
    /* Turns alternate user, assistant, user, ...; an assistant turn closes the exchange with EOS. */
    bool user_turn = true;
    for (; i < n; i++) {
        if (user_turn && !strcmp(m[i].role, "user")) {
            chat_puts(o, bos);
            chat_puts(o, "[INST] ");
            if (system) {
                chat_puts(o, "<<SYS>>\n");
                chat_put_trimmed(o, system);
                chat_puts(o, "\n<</SYS>>\n\n");
                system = NULL;
            }
            chat_put_trimmed(o, m[i].content);
            chat_puts(o, " [/INST]");
        } else if (!user_turn && !strcmp(m[i].role, "assistant")) {
            chat_puts(o, " ");
            chat_put_trimmed(o, m[i].content);
            chat_puts(o, " ");
            chat_puts(o, eos);
        } else {
            return ltok_err(err, SHOAL_ERR_ARG, "chat: the Llama 2 template needs an optional system message, then "
                            "user and assistant turns alternating, starting with user (message %zu is \"%s\")", i,
                            m[i].role);
        }
        user_turn = !user_turn;
    }
    (void)add_assistant; /* the [/INST] that ends a user turn already opens the reply */
    return SHOAL_OK;
}

shoal_status ltok_chat_format(const ltok *t, const ltok_chat_msg *msgs, size_t n, bool add_assistant, char *out,
                              size_t cap, size_t *len, shoal_error *err) {
    chat_out o = {out, cap, 0};
    shoal_status st;
    *len = 0;
    if ((!out && cap) || (!msgs && n))
        return ltok_err(err, SHOAL_ERR_ARG, "chat: NULL buffer or messages");
    for (size_t i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content)
            return ltok_err(err, SHOAL_ERR_ARG, "chat: message %zu has no role or content", i);
    switch (ltok_chat_style_of(t)) {
    case LTOK_CHAT_LLAMA3:
        st = chat_llama3(t, msgs, n, add_assistant, &o);
        break;
    case LTOK_CHAT_LLAMA2:
        st = chat_llama2(t, msgs, n, add_assistant, &o, err);
        break;
    default:
        return ltok_err(err, SHOAL_ERR_UNSUPPORTED, "chat: no chat template is known for this vocabulary");
    }
    if (st)
        return st;
    *len = o.len;
    if (o.len >= cap)
        return ltok_err(err, SHOAL_ERR_ARG, "chat: the prompt needs %zu bytes, the buffer has %zu", o.len + 1, cap);
    out[o.len] = 0;
    return SHOAL_OK;
}
