/* test_wasi_api.c: the WASI embedding API (shoal.h section 6): configuration errors, host functions
 * reached through shoal_call_export, stdio redirected to a pipe, EFAULT for a bad guest pointer, and
 * shoal_wasi_run turning proc_exit into an exit code. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "shoal.h"

static void test_config_errors(void **state) {
    (void)state;
    shoal_wasi *w = NULL;
    shoal_error err;
    assert_int_equal(shoal_wasi_new(NULL, &w, &err), SHOAL_ERR_ARG);
    assert_null(w);

    shoal_wasi_preopen dir = {.host_path = "/nonexistent/shoal-wasi-dir", .guest_path = "/d"};
    shoal_wasi_config c = {.npreopens = 1, .preopens = &dir, .stdin_fd = 0, .stdout_fd = 1, .stderr_fd = 2};
    assert_int_equal(shoal_wasi_new(&c, &w, &err), SHOAL_ERR_NOTFOUND);
    assert_null(w);
    assert_non_null(strstr(err.message, "/nonexistent/shoal-wasi-dir"));

    const char *argv[] = {"prog", NULL};
    shoal_wasi_config c2 = {.argc = 2, .argv = argv, .stdin_fd = 0, .stdout_fd = 1, .stderr_fd = 2};
    assert_int_equal(shoal_wasi_new(&c2, &w, &err), SHOAL_ERR_ARG);
    assert_null(w);

    shoal_wasi_config c3 = {.argc = 1, .argv = argv, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
    assert_int_equal(shoal_wasi_new(&c3, &w, &err), SHOAL_OK);
    assert_int_equal(shoal_wasi_add_imports(w, NULL, &err), SHOAL_ERR_ARG);
    shoal_wasi_free(w);
    shoal_wasi_free(NULL);
}

static void test_calls(void **state) {
    (void)state;
    shoal_module *m = NULL;
    shoal_error err;
    if (shoal_module_load_file(SHOAL_WASI_API_WASM, &m, &err) != SHOAL_OK) {
        if (access(SHOAL_WASI_API_WASM, R_OK) != 0)
            skip(); /* wat2wasm was missing at build time */
        fail_msg("load: %s", err.message);
    }
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    const char *argv[] = {"prog", "one", "two"};
    shoal_wasi_config c = {.argc = 3, .argv = argv, .stdin_fd = -1, .stdout_fd = pipefd[1], .stderr_fd = 2};
    shoal_wasi *w = NULL;
    assert_int_equal(shoal_wasi_new(&c, &w, &err), SHOAL_OK);
    close(pipefd[1]); /* the WASI object holds its own duplicate */
    shoal_imports *imp = shoal_imports_new();
    assert_non_null(imp);
    assert_int_equal(shoal_wasi_add_imports(w, imp, &err), SHOAL_OK);
    shoal_instance *inst = NULL;
    assert_int_equal(shoal_instantiate(m, imp, NULL, &inst, &err), SHOAL_OK);

    shoal_val r;
    assert_int_equal(shoal_call_export(inst, "argc", NULL, 0, &r, 1, &err), SHOAL_OK);
    assert_int_equal(r.i32, 3);
    assert_int_equal(shoal_call_export(inst, "good_write", NULL, 0, &r, 1, &err), SHOAL_OK);
    assert_int_equal(r.i32, 3);
    char buf[8] = {0};
    assert_int_equal(read(pipefd[0], buf, sizeof buf), 3);
    assert_string_equal(buf, "hi\n");
    assert_int_equal(shoal_call_export(inst, "bad_write", NULL, 0, &r, 1, &err), SHOAL_OK);
    assert_int_equal(r.i32, 21); /* EFAULT */

    int32_t code = -1;
    assert_int_equal(shoal_wasi_run(w, inst, &code, &err), SHOAL_OK);
    assert_int_equal(code, 9);

    shoal_wasi_free(w); /* closes the write end: the reader sees EOF */
    assert_int_equal(read(pipefd[0], buf, sizeof buf), 0);
    close(pipefd[0]);
    shoal_instance_free(inst);
    shoal_imports_free(imp);
    shoal_module_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_calls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
