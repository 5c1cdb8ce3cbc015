/*
 * test_decode_spec.c: the decoder and validator against the official WebAssembly 2.0 core suite
 * ($SHOAL_SPEC_DIR/json, wast2json output). Every binary "module" (and assert_unlinkable /
 * assert_uninstantiable module) must decode and validate; every binary assert_malformed must fail with
 * SHOAL_ERR_MALFORMED and every assert_invalid with SHOAL_ERR_INVALID. Modules of the simd_* files must
 * be rejected with SHOAL_ERR_UNSUPPORTED (Shoal has no SIMD yet). Skips (77) without the suite.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "smodule.h"

static const char *spec_dir;

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = n > 0 ? (size_t)n : 0;
    return buf;
}

/* Decodes and validates one file; returns the status and leaves the message in err. */
static shoal_status load(const char *file, shoal_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/json/%s", spec_dir, file);
    size_t size;
    uint8_t *bytes = read_file(path, &size);
    if (!bytes) {
        snprintf(err->message, sizeof err->message, "cannot read %.400s", path);
        return SHOAL_ERR_IO;
    }
    SModule m;
    memset(&m, 0, sizeof m);
    shoal_status st = smod_decode(&m, bytes, size, err);
    if (st == SHOAL_OK) st = smod_validate(&m, err);
    smod_free(&m);
    free(bytes);
    return st;
}

typedef struct Counts {
    unsigned modules, malformed, invalid, simd, failures;
    unsigned rejected, same_text; /* rejections, and those whose message contains the spec's text */
} Counts;

static void run_json(const char *name, Counts *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/json/%s", spec_dir, name);
    size_t size;
    char *text = (char *)read_file(path, &size);
    assert_non_null(text);
    cJSON *root = cJSON_ParseWithLength(text, size);
    free(text);
    assert_non_null(root);
    bool simd = !strncmp(name, "simd_", 5);
    cJSON *cmd;
    cJSON_ArrayForEach(cmd, cJSON_GetObjectItem(root, "commands")) {
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(cmd, "type"));
        const char *file = cJSON_GetStringValue(cJSON_GetObjectItem(cmd, "filename"));
        const char *mtype = cJSON_GetStringValue(cJSON_GetObjectItem(cmd, "module_type"));
        const char *expect_text = cJSON_GetStringValue(cJSON_GetObjectItem(cmd, "text"));
        int line = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(cmd, "line"));
        if (!type || !file || (mtype && strcmp(mtype, "binary") != 0)) continue;
        shoal_status want;
        unsigned *counter;
        if (!strcmp(type, "module") || !strcmp(type, "assert_unlinkable") ||
            !strcmp(type, "assert_uninstantiable")) {
            want = SHOAL_OK;
            counter = &c->modules;
        } else if (!strcmp(type, "assert_malformed")) {
            want = SHOAL_ERR_MALFORMED;
            counter = &c->malformed;
        } else if (!strcmp(type, "assert_invalid")) {
            want = SHOAL_ERR_INVALID;
            counter = &c->invalid;
        } else {
            continue;
        }
        shoal_error err;
        memset(&err, 0, sizeof err);
        shoal_status got = load(file, &err);
        if (simd) {
            /* A SIMD file's modules mostly use v128; those that do not (a few assert_malformed/invalid
             * about other things) must still get their expected status. */
            if (got == SHOAL_ERR_UNSUPPORTED && strstr(err.message, "SIMD")) {
                c->simd++;
                continue;
            }
            if (want == SHOAL_OK && got == SHOAL_OK) {
                /* a module of a simd_ file that does not use SIMD at all */
                (*counter)++;
                continue;
            }
        }
        if (got == want) {
            (*counter)++;
            if (want != SHOAL_OK) {
                c->rejected++;
                if (expect_text && strstr(err.message, expect_text)) c->same_text++;
                else if (getenv("SHOAL_SPEC_TEXT"))
                    printf("text %s:%d: spec \"%s\", ours: %s\n", name, line, expect_text ? expect_text : "",
                           err.message);
            }
            continue;
        }
        c->failures++;
        printf("MISMATCH %s:%d %s %s: want %d (\"%s\"), got %d: %s\n", name, line, type, file, (int)want,
               expect_text ? expect_text : "", (int)got, err.message);
    }
    cJSON_Delete(root);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_spec_suite(void **state) {
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/json", spec_dir);
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            names = realloc(names, cap * sizeof *names);
            assert_non_null(names);
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(dp);
    qsort(names, n, sizeof *names, cmp_str);
    Counts c = {0};
    const char *only = getenv("SHOAL_SPEC_ONLY");
    for (size_t i = 0; i < n; i++) {
        if (!only || strstr(names[i], only)) run_json(names[i], &c);
        free(names[i]);
    }
    free(names);
    printf("spec suite: %zu files; modules ok %u, malformed rejected %u, invalid rejected %u, "
           "SIMD rejected as unsupported %u; mismatches %u\n",
           n, c.modules, c.malformed, c.invalid, c.simd, c.failures);
    /* Informational: the spec compares statuses; its texts are the reference interpreter's wording. */
    printf("messages containing the spec's text: %u of %u rejections (SHOAL_SPEC_TEXT=1 lists the others)\n",
           c.same_text, c.rejected);
    assert_true(n > 0);
    assert_int_equal(c.failures, 0);
}

int main(void) {
    spec_dir = getenv("SHOAL_SPEC_DIR");
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/json/binary.json", spec_dir ? spec_dir : "");
    FILE *f = spec_dir ? fopen(probe, "rb") : NULL;
    if (!f) {
        printf("skip: the WebAssembly spec suite is absent (SHOAL_SPEC_DIR=%s)\n", spec_dir ? spec_dir : "unset");
        return 77;
    }
    fclose(f);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_spec_suite)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
