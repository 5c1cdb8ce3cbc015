/* cmd_convert.c: `shoal convert`: any model Shoal loads (llama2.c .bin, GGUF, safetensors) -> GGUF v3, or a
 * random-weight model of a real shape -> GGUF (for benchmarks). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "lload.h"
#include "lmodel.h"
#include "ltok.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: shoal convert IN OUT.gguf [--type T] [--tokenizer PATH]\n"
            "       shoal convert --random-shape 110m|1b OUT.gguf [--type T] [--tokenizer PATH] [--seed N]\n"
            "\n"
            "Writes a GGUF v3 file (llama architecture, llama.cpp's names) that Shoal and llama.cpp load.\n"
            "IN is a llama2.c .bin, a .gguf, a .safetensors file, a model.safetensors.index.json or a\n"
            "Hugging Face folder (config.json + safetensors + tokenizer.json).\n"
            "  --type T          weights as f32, f16, bf16, q8_0 or q4_0 (default: keep each tensor's type).\n"
            "                    Norm weights stay f32; a matrix whose rows are not a multiple of 32 long\n"
            "                    cannot be q8_0/q4_0 and is written as f16 (the summary says how many).\n"
            "  --tokenizer PATH  tokenizer.bin (llama2.c) or tokenizer.json (Hugging Face) to embed; without\n"
            "                    it the input's own tokenizer is used (llama.cpp needs one to load the file).\n"
            "  --random-shape S  random weights (uniform, sd 0.02; seeded) of a real shape: 110m (dim 768,\n"
            "                    12 layers, 12 heads, vocab 32000) or 1b (Llama-3.2-1B: dim 2048, 16 layers,\n"
            "                    32 heads / 8 KV, FFN 8192, vocab 128256, tied). The tokenizer must match\n"
            "                    the vocabulary (llama2-tokenizer/tokenizer.bin, llama3-tokenizer/tokenizer.json);\n"
            "                    without --tokenizer they are looked for in $SHOAL_MODELS and shared/models.\n"
            "  --seed N          seed for --random-shape (default 1)\n");
}

typedef struct progress {
    bool tty;
    const char *path;
    int last;
} progress;

static void show_progress(void *user, uint64_t done, uint64_t total) {
    progress *p = user;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (!p->tty || pct == p->last) return;
    p->last = pct;
    fprintf(stderr, "\rwriting %s: %3d%% (%llu / %llu MiB)", p->path, pct, (unsigned long long)(done >> 20),
            (unsigned long long)(total >> 20));
    if (done == total) fputc('\n', stderr);
    fflush(stderr);
}

static void load_progress(void *user, uint64_t done, uint64_t total) {
    progress *p = user;
    if (p->tty && total) {
        fprintf(stderr, "\rloading: %3d%%", (int)(done * 100 / total));
        if (done == total) fputc('\n', stderr);
    }
}

/* The standard tokenizer of a named shape, found under $SHOAL_MODELS or a shared/models folder beside one
 * of the executable's ancestor folders (the checkout layout: shared/models next to the repository). */
static const char *default_tokenizer(const char *shape, char *buf, size_t cap) {
    const char *rel = !strcmp(shape, "1b") ? "llama3-tokenizer/tokenizer.json" : "llama2-tokenizer/tokenizer.bin";
    const char *env = getenv("SHOAL_MODELS");
    if (env && *env) {
        snprintf(buf, cap, "%s/%s", env, rel);
        if (access(buf, R_OK) == 0) return buf;
    }
    char dir[4096];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0) return NULL;
    dir[n] = 0;
    for (int up = 0; up < 6; up++) {
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir) break;
        *slash = 0;
        snprintf(buf, cap, "%s/shared/models/%s", dir, rel);
        if (access(buf, R_OK) == 0) return buf;
    }
    return NULL;
}

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *tok_path = NULL, *shape = NULL;
    int type = -1;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--type") && i + 1 < argc) {
            const char *t = argv[++i];
            if (!strcmp(t, "f32")) type = LDT_F32;
            else if (!strcmp(t, "f16")) type = LDT_F16;
            else if (!strcmp(t, "bf16")) type = LDT_BF16;
            else if (!strcmp(t, "q8_0")) type = LDT_Q8_0;
            else if (!strcmp(t, "q4_0")) type = LDT_Q4_0;
            else {
                fprintf(stderr, "shoal convert: unknown --type '%s' (f32, f16, bf16, q8_0, q4_0)\n", t);
                return 2;
            }
        } else if (!strcmp(a, "--tokenizer") && i + 1 < argc) {
            tok_path = argv[++i];
        } else if (!strcmp(a, "--random-shape") && i + 1 < argc) {
            shape = argv[++i];
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            char *end;
            errno = 0;
            seed = strtoull(argv[++i], &end, 10);
            if (errno || *end) {
                fprintf(stderr, "shoal convert: bad --seed '%s'\n", argv[i]);
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "shoal convert: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!shape && !in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!out || (!shape && !in)) {
        usage(stderr);
        return 2;
    }

    shoal_error err = {0};
    shoal_status st;
    progress pr = {isatty(2) != 0, out, -1};
    uint32_t fallback = 0;
    lload_write_opts o = {.type = type, .progress = show_progress, .progress_user = &pr, .n_fallback = &fallback};
    lmodel *m = NULL;
    ltok *tok = NULL;

    if (shape) {
        lmodel_config cfg;
        if (!lload_shape(shape, &cfg)) {
            fprintf(stderr, "shoal convert: unknown --random-shape '%s' (110m, 1b)\n", shape);
            return 2;
        }
        char found[4200];
        if (!tok_path && (tok_path = default_tokenizer(shape, found, sizeof found)))
            fprintf(stderr, "shoal convert: using the %s tokenizer %s\n", shape, tok_path);
        if (tok_path && (st = lload_tokenizer_file(tok_path, cfg.vocab_size, &tok, &err))) goto fail;
        if (tok && ltok_n_tokens(tok) > cfg.vocab_size) {
            fprintf(stderr, "shoal convert: %s has %u tokens; the %s shape has a vocabulary of %u\n", tok_path,
                    ltok_n_tokens(tok), shape, cfg.vocab_size);
            ltok_free(tok);
            return 1;
        }
        if (!tok)
            fprintf(stderr, "shoal convert: warning: no --tokenizer: the file will have no vocabulary (llama.cpp "
                            "will not load it)\n");
        st = lload_write_random(&cfg, tok, seed, out, &o, &err);
        ltok_free(tok);
        if (st) goto fail;
        fprintf(stderr, "wrote %s: random %s model (seed %llu)\n", out, shape, (unsigned long long)seed);
    } else {
        lmodel_load_opts lo = {.tokenizer_path = tok_path, .progress = load_progress, .progress_user = &pr};
        if ((st = lmodel_load(in, &lo, &m, &err))) goto fail;
        if (!m->tok && tok_path) {
            if ((st = lload_tokenizer_file(tok_path, m->cfg.vocab_size, &tok, &err))) goto fail;
            lmodel_set_tokenizer(m, tok);
        }
        if (!m->tok)
            fprintf(stderr, "shoal convert: warning: %s carries no tokenizer and none was given (--tokenizer): "
                            "llama.cpp will not load the output\n", in);
        if ((st = lload_write_gguf(m, out, &o, &err))) goto fail;
        uint8_t id[32];
        char hex[65];
        lload_model_id(m, id);
        lload_id_hex(id, hex);
        fprintf(stderr, "wrote %s from %s (%s; source model id %s)\n", out, in, m->format, hex);
        lmodel_free(m);
        m = NULL;
    }
    if (fallback)
        fprintf(stderr, "note: %u matri%s with rows not a multiple of 32 written as f16 instead\n", fallback,
                fallback == 1 ? "x" : "ces");
    return 0;

fail:
    if (pr.tty && pr.last >= 0) fputc('\n', stderr);
    fprintf(stderr, "shoal convert: %s\n", err.message);
    lmodel_free(m);
    return 1;
}
