/* test_wasi_path.c: the sandboxed resolver of swasi_path.c, run against a real directory tree full of
 * escape attempts, once with openat2 and once with the component-by-component walk. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "swasi.h"

static char base[256];
static int root = -1;

static void mk(const char *rel, int dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    if (dir)
        assert_int_equal(mkdir(p, 0755), 0);
    else {
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs(rel, f);
        fclose(f);
    }
}

static void ln(const char *target, const char *rel) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", base, rel);
    assert_int_equal(symlink(target, p), 0);
}

static int exists(const char *rel) {
    char p[512];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", base, rel);
    return lstat(p, &sb) == 0;
}

static int setup(void **state) {
    (void)state;
    snprintf(base, sizeof base, "/tmp/shoal-wasi-path-XXXXXX");
    assert_non_null(mkdtemp(base));
    mk("root", 1);
    mk("outside", 1);
    mk("outside/secret.txt", 0);
    mk("root/file.txt", 0);
    mk("root/sub", 1);
    mk("root/sub/inner.txt", 0);
    ln("..", "root/sub/up");
    ln("../..", "root/sub/upup");
    ln("/etc", "root/abs");
    ln("../outside", "root/out");
    ln("loop2", "root/loop1");
    ln("loop1", "root/loop2");
    ln("sub", "root/dirlink");
    ln("sub/up/sub/inner.txt", "root/deep");
    ln("../outside/created.txt", "root/dangle");
    ln("sub/../../outside", "root/sneaky");
    char p[512];
    snprintf(p, sizeof p, "%s/root", base);
    root = open(p, O_RDONLY | O_DIRECTORY);
    assert_true(root >= 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    close(root);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

static uint16_t try_open(const char *path, int flags, int follow) {
    int fd = -1;
    uint16_t e = swasi_path_open(root, path, flags, 0644, follow, &fd);
    if (!e) {
        assert_true(fd >= 0);
        close(fd);
    }
    return e;
}

/* The object a successful open names is the one expected (by content). */
static void opens_to(const char *path, const char *content) {
    int fd = -1;
    char buf[64] = {0};
    assert_int_equal(swasi_path_open(root, path, O_RDONLY, 0, 1, &fd), SW_ESUCCESS);
    assert_true(read(fd, buf, sizeof buf - 1) > 0);
    close(fd);
    assert_string_equal(buf, content);
}

static void check_all(void) {
    opens_to("file.txt", "root/file.txt");
    opens_to("sub/inner.txt", "root/sub/inner.txt");
    opens_to("sub/../file.txt", "root/file.txt");
    opens_to("./sub/./inner.txt", "root/sub/inner.txt");
    opens_to("dirlink/inner.txt", "root/sub/inner.txt");
    opens_to("deep", "root/sub/inner.txt");
    opens_to("sub/up/file.txt", "root/file.txt");
    opens_to("sub//inner.txt", "root/sub/inner.txt");
    assert_int_equal(try_open(".", O_RDONLY | O_DIRECTORY, 1), SW_ESUCCESS);
    assert_int_equal(try_open("sub/..", O_RDONLY | O_DIRECTORY, 1), SW_ESUCCESS);

    /* escapes */
    assert_int_equal(try_open("..", O_RDONLY, 1), SW_ENOTCAPABLE);
    assert_int_equal(try_open("../outside/secret.txt", O_RDONLY, 1), SW_ENOTCAPABLE);
    assert_int_equal(try_open("sub/../../outside/secret.txt", O_RDONLY, 1), SW_ENOTCAPABLE);
    assert_int_equal(try_open("/etc/passwd", O_RDONLY, 1), SW_ENOTCAPABLE);
    assert_int_equal(try_open("abs/passwd", O_RDONLY, 1), SW_ENOTCAPABLE);
    assert_int_equal(try_open("out/secret.txt", O_RDONLY, 1), SW_ENOTCAPABLE);
    assert_int_equal(try_open("sub/upup/outside/secret.txt", O_RDONLY, 1), SW_ENOTCAPABLE);
    assert_int_equal(try_open("sneaky/secret.txt", O_RDONLY, 1), SW_ENOTCAPABLE);
    assert_int_equal(try_open("out", O_RDONLY, 1), SW_ENOTCAPABLE);
    assert_int_equal(try_open("dangle", O_WRONLY | O_CREAT, 1), SW_ENOTCAPABLE);
    assert_false(exists("outside/created.txt"));
    assert_int_equal(try_open("out/new.txt", O_WRONLY | O_CREAT, 1), SW_ENOTCAPABLE);
    assert_false(exists("outside/new.txt"));

    /* loops, and symlinks not followed */
    assert_int_equal(try_open("loop1", O_RDONLY, 1), SW_ELOOP);
    assert_int_equal(try_open("loop1/x", O_RDONLY, 1), SW_ELOOP);
    assert_int_equal(try_open("out", O_RDONLY, 0), SW_ELOOP);
    assert_int_equal(try_open("out", O_PATH, 0), SW_ESUCCESS); /* the link itself, not its target */
    assert_int_equal(try_open("missing.txt", O_RDONLY, 1), SW_ENOENT);
    assert_int_equal(try_open("file.txt/x", O_RDONLY, 1), SW_ENOTDIR);
    assert_int_equal(try_open("", O_RDONLY, 1), SW_ENOENT);

    /* parents */
    int d = -1, tr = 0;
    char last[256];
    assert_int_equal(swasi_path_parent(root, "sub/new", &d, last, sizeof last, &tr), SW_ESUCCESS);
    assert_string_equal(last, "new");
    assert_int_equal(tr, 0);
    close(d);
    assert_int_equal(swasi_path_parent(root, "dirlink/newdir/", &d, last, sizeof last, &tr), SW_ESUCCESS);
    assert_string_equal(last, "newdir");
    assert_int_equal(tr, 1);
    close(d);
    assert_int_equal(swasi_path_parent(root, "name", &d, last, sizeof last, &tr), SW_ESUCCESS);
    close(d);
    assert_int_equal(swasi_path_parent(root, "../x", &d, last, sizeof last, &tr), SW_ENOTCAPABLE);
    assert_int_equal(swasi_path_parent(root, "out/x", &d, last, sizeof last, &tr), SW_ENOTCAPABLE);
    assert_int_equal(swasi_path_parent(root, "/x", &d, last, sizeof last, &tr), SW_ENOTCAPABLE);
    assert_int_equal(swasi_path_parent(root, "sub/upup/x", &d, last, sizeof last, &tr), SW_ENOTCAPABLE);
    assert_int_equal(swasi_path_parent(root, ".", &d, last, sizeof last, &tr), SW_EINVAL);
    assert_int_equal(swasi_path_parent(root, "sub/..", &d, last, sizeof last, &tr), SW_EINVAL);
    assert_int_equal(swasi_path_parent(root, "loop1/x", &d, last, sizeof last, &tr), SW_ELOOP);
}

static void test_openat2(void **state) {
    (void)state;
    if (swasi_path_set_openat2(1) != 1)
        skip();
    check_all();
}

static void test_walk(void **state) {
    (void)state;
    int old = swasi_path_set_openat2(0);
    check_all();
    swasi_path_set_openat2(old);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openat2),
        cmocka_unit_test(test_walk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
