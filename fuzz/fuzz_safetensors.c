/*
 * fuzz_safetensors.c: libFuzzer target for the safetensors reader and the config.json reader. Any input
 * either fails with a message or parses; when it parses, every tensor's first and last data byte is
 * touched (ASan checks they lie in the input) and every name is looked up. The same bytes are also read as
 * a config.json text.
 */
#include <stdint.h>

#include "lsafet.h"

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lsafet *s;
    shoal_error err;
    if (lsafet_open_mem(data, size, "fuzz.safetensors", &s, &err) == SHOAL_OK) {
        for (size_t i = 0; i < s->n_tensors; i++) {
            const lsafet_tensor *t = &s->tensors[i];
            if (t->nbytes) sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->nbytes - 1];
            sink += lsafet_find(s, t->name) == t;
        }
        lsafet_close(s);
    }
    lmodel_config cfg;
    if (lsafet_config_parse((const char *)data, size, "config.json", &cfg, &err) == SHOAL_OK) sink += cfg.dim;
    return 0;
}
