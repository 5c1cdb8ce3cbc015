/* tok_util.h: shared helpers of the tokenizer tests: data paths and llama.cpp's vocab test cases. */
#ifndef TOK_UTIL_H
#define TOK_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static inline const char *tu_models(void) {
    const char *m = getenv("SHOAL_MODELS");
    return m && *m ? m : "../shared/models";
}

/* SHOAL_MODELS/rel in a static buffer (one of 4, so a few can be live at once). */
static inline const char *tu_path(const char *rel) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tu_models(), rel);
    return buf[k];
}

static inline int tu_exists(const char *rel) {
    struct stat st;
    return stat(tu_path(rel), &st) == 0;
}

static inline char *tu_read(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        *size = (size_t)n;
    }
    return b;
}

/* llama.cpp's test-tokenizer-0 data: inputs, each followed by "\n__ggml_vocab_test__\n"; outputs, one line of
 * space-separated ids per input. */
typedef struct tu_case {
    const char *text;
    size_t len;
    int32_t ids[512];
    size_t n_ids;
} tu_case;

static inline size_t tu_load_cases(const char *inp_path, const char *out_path, tu_case **out, char **keep) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    size_t isz, osz, n = 0;
    char *in = tu_read(inp_path, &isz), *o = tu_read(out_path, &osz);
    if (!in || !o) {
        free(in);
        free(o);
        return 0;
    }
    size_t cap = 64;
    tu_case *c = calloc(cap, sizeof *c);
    for (char *p = in; p < in + isz;) {
        char *e = strstr(p, sep);
        if (!e)
            break;
        if (n == cap) {
            c = realloc(c, 2 * cap * sizeof *c);
            memset(c + cap, 0, cap * sizeof *c);
            cap *= 2;
        }
        c[n].text = p;
        c[n].len = (size_t)(e - p);
        n++;
        p = e + strlen(sep);
    }
    char *line = o;
    for (size_t i = 0; i < n; i++) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        for (char *q = line, *end; c[i].n_ids < 512; q = end) {
            long v = strtol(q, &end, 10);
            if (end == q)
                break;
            c[i].ids[c[i].n_ids++] = (int32_t)v;
        }
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(o);
    *keep = in;
    *out = c;
    return n;
}

#endif
