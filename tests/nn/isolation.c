/*
 * isolation: two guests share one preloaded model and nothing else. In one process (one registry):
 *   1. guests A and B generate alone, one after the other; then both at once on two threads: each must get
 *      exactly what it got alone (no shared KV, logits or scratch);
 *   2. with A's and B's sessions and contexts still open, a third guest probes: no handle of theirs is
 *      visible to it, a new session has no logits to sample, and its first logits and a new context's
 *      outputs are exactly those of the same probe in a fresh registry where no guest ran before.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shoal.h"

static char model_path[4096], guest_path[4096];

typedef struct guest {
    shoal_module *module;
    shoal_imports *imports;
    shoal_wasi *wasi;
    shoal_nn_ctx *nn;
    shoal_instance *inst;
    const char *argv[4];
    int argc;
    char out_path[64];
    int32_t code;
    shoal_status st;
    shoal_nn_registry *reg;
} guest;

static void guest_free(guest *g) {
    shoal_instance_free(g->inst);
    shoal_imports_free(g->imports);
    shoal_wasi_free(g->wasi);
    shoal_nn_ctx_free(g->nn);
    shoal_module_free(g->module);
    unlink(g->out_path);
}

static void *guest_run(void *arg) {
    guest *g = arg;
    shoal_error err;
    snprintf(g->out_path, sizeof g->out_path, "/tmp/shoal_iso_XXXXXX");
    int fd = mkstemp(g->out_path);
    g->st = SHOAL_ERR_IO;
    if (fd < 0)
        return NULL;
    shoal_wasi_config wc = {.argc = g->argc, .argv = g->argv, .stdin_fd = -1, .stdout_fd = fd, .stderr_fd = 2};
    if ((g->st = shoal_module_load_file(guest_path, &g->module, &err)) || (g->st = shoal_wasi_new(&wc, &g->wasi, &err)) ||
        !(g->imports = shoal_imports_new()) || (g->st = shoal_wasi_add_imports(g->wasi, g->imports, &err)) ||
        (g->st = shoal_nn_ctx_new(g->reg, &g->nn, &err)) || (g->st = shoal_nn_add_imports(g->nn, g->imports, &err)) ||
        (g->st = shoal_instantiate(g->module, g->imports, NULL, &g->inst, &err)) ||
        (g->st = shoal_wasi_run(g->wasi, g->inst, &g->code, &err)))
        fprintf(stderr, "guest: %s\n", err.message);
    close(fd);
    return NULL;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    char *s = calloc(1, 1 << 16);
    if (f && s)
        s[fread(s, 1, (1 << 16) - 1, f)] = 0;
    if (f)
        fclose(f);
    return s;
}

static shoal_nn_registry *new_registry(void) {
    shoal_nn_registry *reg = NULL;
    char spec[4200];
    snprintf(spec, sizeof spec, "default:GGML:CPU:%s", model_path);
    assert_int_equal(shoal_nn_registry_new(&reg, NULL), SHOAL_OK);
    assert_int_equal(shoal_nn_registry_preload(reg, spec, 1, NULL), SHOAL_OK);
    return reg;
}

static void setup_guest(guest *g, shoal_nn_registry *reg, const char *a1, const char *a2, const char *a3) {
    memset(g, 0, sizeof *g);
    g->reg = reg;
    g->argv[0] = "iso";
    g->argv[1] = a1;
    g->argv[2] = a2;
    g->argv[3] = a3;
    g->argc = a2 ? 4 : 2;
}

static void test_isolation(void **state) {
    (void)state;
    shoal_nn_registry *reg = new_registry();
    guest a, b, a2, b2, c;
    setup_guest(&a, reg, "run", "Once upon a time", "1");
    setup_guest(&b, reg, "run", "The secret password is", "2");
    guest_run(&a);
    guest_run(&b);
    assert_int_equal(a.st, SHOAL_OK);
    assert_int_equal(b.st, SHOAL_OK);
    assert_int_equal(a.code, 0);
    assert_int_equal(b.code, 0);
    char *alone_a = slurp(a.out_path), *alone_b = slurp(b.out_path);
    assert_non_null(strstr(alone_a, "llm tokens "));
    assert_string_not_equal(alone_a, alone_b);

    /* both at once, sharing the model */
    setup_guest(&a2, reg, "run", "Once upon a time", "1");
    setup_guest(&b2, reg, "run", "The secret password is", "2");
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, guest_run, &a2), 0);
    assert_int_equal(pthread_create(&tb, NULL, guest_run, &b2), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    char *both_a = slurp(a2.out_path), *both_b = slurp(b2.out_path);
    assert_string_equal(both_a, alone_a);
    assert_string_equal(both_b, alone_b);

    /* a probe while four guests keep their sessions and contexts open */
    setup_guest(&c, reg, "probe", NULL, NULL);
    guest_run(&c);
    assert_int_equal(c.code, 0);
    char *probe = slurp(c.out_path);
    assert_non_null(strstr(probe, "foreign handles visible: 0\n"));
    assert_non_null(strstr(probe, "fresh session: sample -> -10\n"));
    assert_non_null(strstr(probe, "fresh session: position 0 prompt 0 decoded 0\n"));
    assert_non_null(strstr(probe, "fresh context: output 0 rc 0, 0 bytes\n"));
    assert_null(strstr(probe, "secret"));

    /* the same probe where no guest ever ran */
    shoal_nn_registry *clean = new_registry();
    guest c2;
    setup_guest(&c2, clean, "probe", NULL, NULL);
    guest_run(&c2);
    char *probe_clean = slurp(c2.out_path);
    assert_string_equal(probe, probe_clean);
    print_message("%s", probe);

    guest *all[] = {&a, &b, &a2, &b2, &c, &c2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        guest_free(all[i]);
    free(alone_a);
    free(alone_b);
    free(both_a);
    free(both_b);
    free(probe);
    free(probe_clean);
    shoal_nn_registry_free(reg);
    shoal_nn_registry_free(clean);
}

int main(void) {
    const char *models = getenv("SHOAL_MODELS"), *guests = getenv("SHOAL_GUEST_DIR");
    snprintf(model_path, sizeof model_path, "%s/stories260K/stories260K.bin", models ? models : "");
    snprintf(guest_path, sizeof guest_path, "%s/iso.wasm", guests ? guests : "");
    if (access(model_path, R_OK) != 0 || access(guest_path, R_OK) != 0) {
        printf("skip: %s or %s is missing\n", model_path, guest_path);
        return 77;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_isolation)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
