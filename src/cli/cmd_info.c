/* cmd_info.c: `shoal info PATH`: what a model file holds: format, architecture, shapes, dtypes, parameter
 * count, tokenizer, sizes and the model identity hash. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "lgguf.h"
#include "lload.h"
#include "lmodel.h"
#include "lsafet.h"
#include "ltok.h"

static void usage(FILE *out) {
    fprintf(out, "usage: shoal info [--tokenizer PATH] MODEL\n"
                 "Prints the format, architecture, shapes, dtypes, parameter count, tokenizer, file size and the\n"
                 "model identity (SHA-256 of the config and weights) of a llama2.c .bin, GGUF or safetensors model.\n");
}

/* Commas every three digits, for big counts. */
static const char *num(uint64_t v, char buf[32]) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
    return buf;
}

static void gguf_summary(const char *path) {
    lgguf *g;
    shoal_error err = {0};
    if (lgguf_open(path, &g, &err)) {
        printf("gguf:       %s\n", err.message);
        return;
    }
    uint64_t counts[LGGUF_T_COUNT] = {0};
    for (uint64_t i = 0; i < g->n_tensors; i++) counts[g->tensors[i].type]++;
    printf("gguf:       version %u, %llu metadata keys, %llu tensors, alignment %u\n", g->version,
           (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors, g->alignment);
    printf("file types:");
    for (int t = 0; t < LGGUF_T_COUNT; t++)
        if (counts[t]) printf(" %s x%llu", lgguf_ttype_name((uint32_t)t), (unsigned long long)counts[t]);
    printf("\n");
    lgguf_close(g);
}

static void safet_summary(const char *path) {
    lsafet *s;
    shoal_error err = {0};
    if (lsafet_open(path, NULL, &s, &err)) {
        printf("safetensors: %s\n", err.message);
        return;
    }
    printf("safetensors: %zu file%s, %zu tensors;", s->n_files, s->n_files == 1 ? "" : "s", s->n_tensors);
    const char *seen[16];
    size_t nseen = 0;
    for (size_t i = 0; i < s->n_tensors && nseen < 16; i++) {
        bool dup = false;
        for (size_t j = 0; j < nseen; j++) dup |= !strcmp(seen[j], s->tensors[i].dtype);
        if (dup) continue;
        seen[nseen++] = s->tensors[i].dtype;
        size_t c = 0;
        for (size_t k = 0; k < s->n_tensors; k++) c += !strcmp(s->tensors[k].dtype, s->tensors[i].dtype);
        printf(" %s x%zu", s->tensors[i].dtype, c);
    }
    printf("\n");
    lsafet_close(s);
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL, *tok_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) {
            tok_path = argv[++i];
        } else if (!path && argv[i][0] != '-') {
            path = argv[i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "shoal info: %s: cannot open\n", path);
        return 1;
    }
    char b1[32], b2[32];
    printf("path:       %s\n", path);
    if (S_ISREG(sb.st_mode)) printf("file size:  %s bytes\n", num((uint64_t)sb.st_size, b1));
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    bool is_gguf = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "GGUF", 4);
    if (f) fclose(f);
    size_t plen = strlen(path);
    if (is_gguf) gguf_summary(path);
    else if (S_ISDIR(sb.st_mode) || (plen > 5 && !strcmp(path + plen - 5, ".json")) ||
             (plen > 12 && !strcmp(path + plen - 12, ".safetensors")))
        safet_summary(path);

    lmodel *m;
    shoal_error err = {0};
    lmodel_load_opts lo = {.tokenizer_path = tok_path};
    if (lmodel_load(path, &lo, &m, &err)) {
        fprintf(stderr, "shoal info: %s\n", err.message);
        return 1;
    }
    if (!m->tok && tok_path) {
        ltok *tok;
        if (lload_tokenizer_file(tok_path, m->cfg.vocab_size, &tok, &err)) {
            fprintf(stderr, "shoal info: %s\n", err.message);
            lmodel_free(m);
            return 1;
        }
        lmodel_set_tokenizer(m, tok);
    }
    const lmodel_config *c = &m->cfg;
    printf("format:     %s\n", m->format);
    printf("arch:       %s (\"%s\")\n", c->arch, c->name);
    printf("shape:      dim %u, layers %u, heads %u (kv %u, head_dim %u), ffn %u, vocab %u, context %u\n", c->dim,
           c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->hidden_dim, c->vocab_size, c->seq_len);
    printf("norm/rope:  rms_eps %g, rope_theta %g, ", c->rms_eps, c->rope_theta);
    if (c->rope_scaling.enabled)
        printf("llama3 scaling (factor %g, low %g, high %g, original context %u)\n", c->rope_scaling.factor,
               c->rope_scaling.low_freq_factor, c->rope_scaling.high_freq_factor, c->rope_scaling.original_context);
    else
        printf("no scaling\n");
    printf("embeddings: %s\n", c->tied_embeddings ? "tied (output = token_embd)" : "separate output matrix");

    /* dtype counts over the model's weight tensors */
    uint64_t counts[64] = {0};
    const lmodel_tensor *top[3] = {&m->tok_embd, &m->out_norm, c->tied_embeddings ? NULL : &m->output};
    for (int i = 0; i < 3; i++)
        if (top[i]) counts[top[i]->dtype & 63]++;
    for (uint32_t l = 0; l < c->n_layers; l++) {
        const lmodel_layer *L = &m->layers[l];
        const lmodel_tensor *ts[9] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->ffn_norm, &L->w1, &L->w2, &L->w3};
        for (int i = 0; i < 9; i++) counts[ts[i]->dtype & 63]++;
    }
    printf("dtypes:    ");
    for (int d = 0; d < 64; d++)
        if (counts[d]) printf(" %s x%llu", lmodel_dtype_name((lmodel_dtype)d), (unsigned long long)counts[d]);
    printf("\n");
    printf("parameters: %s\n", num(lmodel_param_count(m), b1));
    printf("weights:    %s bytes (%s bytes of the model on the heap)\n", num(lmodel_weight_bytes(m), b1),
           num(m->owned_bytes, b2));
    if (m->tok) {
        ltok_kind k = ltok_get_kind(m->tok);
        printf("tokenizer:  %s, %u tokens (bos %d, eos %d, eot %d)\n",
               k == LTOK_SPM ? "sentencepiece-style BPE (spm)" : "byte-level BPE", ltok_n_tokens(m->tok),
               ltok_bos(m->tok), ltok_eos(m->tok), ltok_eot(m->tok));
    } else {
        printf("tokenizer:  none (pass --tokenizer)\n");
    }
    uint8_t id[32];
    char hex[65];
    lload_model_id(m, id);
    lload_id_hex(id, hex);
    printf("identity:   sha256:%s\n", hex);
    lmodel_free(m);
    return 0;
}
