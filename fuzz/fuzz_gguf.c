/*
 * fuzz_gguf.c: libFuzzer target for the GGUF reader. Any input either fails with a message or parses; when
 * it parses, every metadata value is read through the typed accessors, every tensor's first and last data
 * byte is touched (ASan checks they lie in the input), the metadata is re-serialized with the writer, and
 * the tokenizer.ggml.* keys (if any) are built into a tokenizer.
 */
#include <stdint.h>
#include <string.h>

#include "lgguf.h"
#include "lload.h"
#include "ltok.h"

static volatile uint64_t sink;

static void walk(const lgguf_value *v, unsigned depth) {
    uint64_t u;
    int64_t i;
    double f;
    if (lgguf_value_u64(v, &u)) sink += u;
    if (lgguf_value_i64(v, &i)) sink += (uint64_t)i;
    if (lgguf_value_f64(v, &f)) sink += (uint64_t)(f != f);
    if (v->type == LGGUF_STR && v->s.len) sink += (uint8_t)v->s.ptr[v->s.len - 1];
    if (v->type != LGGUF_ARR) return;
    if (v->arr.raw && v->arr.n) {
        lgguf_arr_u64(v, v->arr.n - 1, &u);
        lgguf_arr_i64(v, 0, &i);
        lgguf_arr_f64(v, v->arr.n - 1, &f);
        sink += u;
    }
    if (v->arr.items)
        for (uint64_t k = 0; k < v->arr.n && k < 64; k++) walk(&v->arr.items[k], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lgguf *g;
    shoal_error err;
    if (lgguf_open_mem(data, size, "fuzz.gguf", &g, &err) != SHOAL_OK) return 0;
    lgguf_writer *w = lgguf_writer_new();
    for (uint64_t k = 0; k < g->n_kv; k++) {
        walk(&g->kv[k].val, 0);
        char key[64];
        size_t n = g->kv[k].key.len < 63 ? (size_t)g->kv[k].key.len : 63;
        memcpy(key, g->kv[k].key.ptr, n);
        key[n] = 0;
        if (w) lgguf_w_value(w, key, &g->kv[k].val, &err); /* duplicates after truncation fail: fine */
    }
    for (uint64_t t = 0; t < g->n_tensors; t++) {
        const lgguf_tensor *x = &g->tensors[t];
        if (x->nbytes) sink += ((const uint8_t *)x->data)[0] + ((const uint8_t *)x->data)[x->nbytes - 1];
        char name[80];
        size_t n = x->name.len < 79 ? (size_t)x->name.len : 79;
        memcpy(name, x->name.ptr, n);
        name[n] = 0;
        sink += lgguf_tensor_find(g, name) != NULL;
    }
    lgguf_writer_free(w);
    ltok *tok = NULL;
    if (lload_gguf_tokenizer(g, &tok, &err) == SHOAL_OK && tok) ltok_free(tok);
    lgguf_close(g);
    return 0;
}
