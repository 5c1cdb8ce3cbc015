/*
 * tok_compare: encodes every case of a test-tokenizer file pair (TEXT.inp / TEXT.out, llama.cpp's format)
 * with a tokenizer file and reports each difference. Used by tok_llama3_ref.sh with cases from an
 * independent reference.
 *
 * usage: tok_compare TOKENIZER (tokenizer.json or tokenizer.bin) VOCAB_SIZE INP OUT
 * Exit status 0 when all match, 1 otherwise, 2 on usage or load errors.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ltok.h"
#include "tok_util.h"

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: tok_compare TOKENIZER VOCAB_SIZE INP OUT\n");
        return 2;
    }
    ltok *t = NULL;
    shoal_error err;
    size_t n = strlen(argv[1]);
    shoal_status st = n >= 5 && !strcmp(argv[1] + n - 5, ".json")
                          ? ltok_load_hf_json(argv[1], &t, &err)
                          : ltok_load_llama2c(argv[1], (uint32_t)strtoul(argv[2], NULL, 10), &t, &err);
    if (st != SHOAL_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 2;
    }
    tu_case *c = NULL;
    char *keep = NULL;
    size_t nc = tu_load_cases(argv[3], argv[4], &c, &keep), bad = 0;
    if (nc == 0) {
        fprintf(stderr, "no cases in %s / %s\n", argv[3], argv[4]);
        return 2;
    }
    int32_t ids[1024];
    for (size_t i = 0; i < nc; i++) {
        size_t k = 0;
        st = ltok_encode(t, c[i].text, c[i].len, false, false, ids, 1024, &k, &err);
        if (st != SHOAL_OK || k != c[i].n_ids || memcmp(ids, c[i].ids, k * sizeof *ids)) {
            if (bad++ < 10) {
                fprintf(stderr, "case %zu \"%.*s\" differs\n  want:", i, (int)c[i].len, c[i].text);
                for (size_t j = 0; j < c[i].n_ids; j++)
                    fprintf(stderr, " %d", (int)c[i].ids[j]);
                fprintf(stderr, "\n  got: ");
                for (size_t j = 0; j < k && st == SHOAL_OK; j++)
                    fprintf(stderr, " %d", (int)ids[j]);
                fprintf(stderr, "\n");
            }
        }
    }
    printf("%zu of %zu cases match\n", nc - bad, nc);
    free(c);
    free(keep);
    ltok_free(t);
    return bad ? 1 : 0;
}
