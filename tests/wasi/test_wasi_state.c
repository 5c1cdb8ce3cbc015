/* test_wasi_state.c: carrying a guest's WASI state across WASI objects (shoal_wasi_state_save / _load).
 *
 * The guest (guests/wasi_state.c, a reactor) runs phase 1 (opens, reads, writes, seeks, renumbers, reads
 * its clocks); the state is saved, everything is freed, the preopened directory is moved elsewhere, and a
 * new WASI object loaded from the bytes (re-binding the directory) serves a new instance of the module
 * for phase 2. Phase 2's results and the files it leaves must equal those of a run that never stopped.
 * Then the refusals: files removed, replaced, not carriable at save; missing at load; every truncation
 * and many corruptions of a small blob. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kbuf.h"
#include "shoal.h"
#include "swasi.h"

static shoal_module *mod;
static char root[256]; /* a temporary directory holding every tree of this test */

#define O_CREAT_ 1
#define O_DIR_ 2
#define O_TRUNC_ 8
#define FD_APPEND_ 1
#define FD_NONBLOCK_ 4

/* --- host side helpers ------------------------------------------------------------------------------ */

static void sh(const char *fmt, ...) {
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

static void put_file(const char *dir, const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *get_file(const char *dir, const char *name) {
    static char buf[2][256];
    static int which;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *b = buf[which ^= 1];
    FILE *f = fopen(p, "rb");
    if (!f)
        return strcpy(b, "<missing>");
    size_t n = fread(b, 1, sizeof buf[0] - 1, f);
    b[n] = '\0';
    fclose(f);
    return b;
}

/* A fresh tree at root/name. */
static const char *make_tree(const char *name) {
    static char dirs[8][300];
    static int k;
    char *d = dirs[k++ % 8];
    snprintf(d, sizeof dirs[0], "%s/%s", root, name);
    sh("rm -rf '%s' && mkdir -p '%s/sub/inner'", d, d);
    put_file(d, "in.txt", "0123456789abcdefghij");
    put_file(d, "log.txt", "start\n");
    put_file(d, "sub/deep.txt", "deep-data");
    put_file(d, "sub/in.txt", "SUB-IN-TXT");
    sh("ln -s sub/inner '%s/lnk'", d);
    return d;
}

/* --- the guest ---------------------------------------------------------------------------------------- */

typedef struct G {
    shoal_wasi *w;
    shoal_imports *imp;
    shoal_instance *inst;
} G;

static void g_start(G *g, shoal_wasi *w) {
    shoal_error err;
    g->w = w;
    g->imp = shoal_imports_new();
    assert_non_null(g->imp);
    assert_int_equal(shoal_wasi_add_imports(w, g->imp, &err), SHOAL_OK);
    if (shoal_instantiate(mod, g->imp, NULL, &g->inst, &err) != SHOAL_OK)
        fail_msg("instantiate: %s", err.message);
    int32_t code = -1;
    if (shoal_wasi_run(w, g->inst, &code, &err) != SHOAL_OK) /* the reactor's _initialize */
        fail_msg("_initialize: %s", err.message);
}

static void g_stop(G *g) {
    shoal_instance_free(g->inst);
    shoal_imports_free(g->imp);
    g->inst = NULL;
    g->imp = NULL;
}

/* Calls an export with integer arguments (converted to its parameter types); returns its result. */
static int64_t call(G *g, const char *name, int n, const int64_t *v) {
    shoal_functype ft;
    if (!shoal_export_functype(g->inst, name, &ft))
        fail_msg("no export %s", name);
    assert_int_equal(ft.nparams, (uint32_t)n);
    shoal_val a[8], r = {0};
    for (int i = 0; i < n; i++) {
        if (ft.params[i] == SHOAL_I64)
            a[i].i64 = v[i];
        else
            a[i].i32 = (int32_t)v[i];
    }
    shoal_error err;
    if (shoal_call_export(g->inst, name, a, (uint32_t)n, &r, ft.nresults, &err) != SHOAL_OK)
        fail_msg("%s: %s", name, err.message);
    return ft.results[0] == SHOAL_I64 ? r.i64 : r.i32;
}
#define C(g, name, ...)                                                                                      \
    call(g, name, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define C0(g, name) call(g, name, 0, NULL)

/* The bytes of the guest's last read, as a string. */
static const char *g_bytes(G *g, int64_t n) {
    static char s[260];
    assert_true(n >= 0 && n < 256);
    for (int64_t i = 0; i < n; i++)
        s[i] = (char)C(g, "g_byte", i);
    s[n] = '\0';
    return s;
}

static int64_t g_read_str(G *g, int64_t fd, int64_t n, const char *want) {
    int64_t got = C(g, "g_read", fd, n);
    assert_true(got >= 0);
    assert_string_equal(g_bytes(g, got), want);
    return got;
}

static const char *const test_argv[] = {"prog", "x y", ""};
static const char *const test_envp[] = {"A=1", "B=two words"};

static shoal_wasi *new_wasi(const char *dir, int stdout_fd) {
    shoal_wasi_preopen p = {.host_path = dir, .guest_path = "/data"};
    shoal_wasi_config c = {.argc = 3, .argv = test_argv, .envc = 2, .envp = test_envp, .npreopens = 1,
                           .preopens = &p, .stdin_fd = -1, .stdout_fd = stdout_fd, .stderr_fd = 2};
    shoal_wasi *w = NULL;
    shoal_error err;
    if (shoal_wasi_new(&c, &w, &err) != SHOAL_OK)
        fail_msg("wasi_new: %s", err.message);
    return w;
}

/* A config for a load: other argv/env (they must be ignored), the directory re-bound to dir. */
static shoal_status load(const char *dir, int stdout_fd, const uint8_t *p, size_t len, shoal_wasi **w,
                         shoal_error *err) {
    const char *argv[] = {"ignored"};
    shoal_wasi_preopen pre = {.host_path = dir, .guest_path = "/data"};
    shoal_wasi_config c = {.argc = 1, .argv = argv, .npreopens = dir ? 1 : 0, .preopens = &pre, .stdin_fd = -1,
                           .stdout_fd = stdout_fd, .stderr_fd = 2};
    return shoal_wasi_state_load(&c, p, len, w, err);
}

static void save(shoal_wasi *w, uint8_t **p, size_t *len) {
    shoal_error err;
    if (shoal_wasi_state_save(w, p, len, &err) != SHOAL_OK)
        fail_msg("save: %s", err.message);
}

/* --- the scenario ------------------------------------------------------------------------------------ */

typedef struct Fds {
    int64_t a, l, d, e, o, x, r, tmp;
    int64_t mono, cpu, thread;
} Fds;

static void phase1(G *g, Fds *f) {
    assert_int_equal(C(g, "g_prestat", 3), 5); /* "/data" */
    f->a = C(g, "g_open", 3, 0, 0, 0, 0);
    assert_true(f->a > 3);
    g_read_str(g, f->a, 5, "01234");
    f->l = C(g, "g_open", 3, 1, 0, FD_APPEND_, 1);
    assert_int_equal(C(g, "g_write", f->l, 'p', 3), 3);
    f->d = C(g, "g_open", 3, 2, O_DIR_, 0, 0);
    f->e = C(g, "g_open", f->d, 3, 0, 0, 0); /* through a directory fd that is not a preopen */
    g_read_str(g, f->e, 2, "de");
    f->o = C(g, "g_open", 3, 4, O_CREAT_ | O_TRUNC_, 0, 1);
    assert_int_equal(C(g, "g_write", f->o, 'a', 6), 6);
    assert_int_equal(C(g, "g_seek", f->o, 2, 0), 2);
    f->x = C(g, "g_open", 3, 6, 0, 0, 0); /* "./sub//deep.txt" */
    g_read_str(g, f->x, 4, "deep");
    assert_int_equal(C(g, "g_set_flags", f->x, FD_NONBLOCK_), 0);
    f->r = C(g, "g_open", 3, 5, 0, 0, 0); /* "sub/../in.txt" */
    assert_int_equal(C(g, "g_seek", f->r, 7, 0), 7);
    f->tmp = C(g, "g_open", 3, 4, 0, 0, 0);
    assert_int_equal(C(g, "g_renumber", f->a, f->tmp), 0); /* in.txt at 5 moves; a's slot becomes a hole */
    int64_t r2 = C(g, "g_rights", 2, 0);
    assert_true(r2 > 0);
    assert_int_equal(C(g, "g_set_rights", 2, r2 & ~(int64_t)(1 << 4), 0), 0); /* stderr gives up fd_sync */
    f->mono = C(g, "g_clock", 1);
    f->cpu = C(g, "g_clock", 2);
    f->thread = C(g, "g_clock", 3);
    assert_true(f->mono > 0 && f->cpu > 0 && f->thread > 0);
}

/* Between the phases the host appends to the log: the guest's next append must land after it. */
static void between(const char *dir) { sh("printf 'ext\\n' >> '%s/log.txt'", dir); }

#define NRES 96
static int phase2(G *g, const Fds *f, int64_t *res) {
    int n = 0;
#define R(v) (res[n++] = (v))
    R(g_read_str(g, f->tmp, 5, "56789")); /* reading continues where it stopped */
    R(C(g, "g_write", f->l, 'q', 3));     /* appends land at the end */
    R(g_read_str(g, f->e, 3, "ep-"));
    R(C(g, "g_write", f->o, 'X', 2));
    R(g_read_str(g, f->x, 5, "-data"));
    R(g_read_str(g, f->r, 3, "789"));
    R(C(g, "g_seek", f->o, 0, 1));
    R(C(g, "g_seek", f->tmp, 0, 1));
    R(C(g, "g_seek", f->l, 0, 1));
    for (int64_t fd = 0; fd <= f->tmp + 1; fd++) {
        R(C(g, "g_fdstat", fd));
        R(C(g, "g_rights", fd, 0));
        R(C(g, "g_rights", fd, 1));
        R(C(g, "g_prestat", fd));
    }
    R(C(g, "g_readdir", f->d, 0));
    R(C(g, "g_readdir", f->d, 2));
    R(C(g, "g_readdir", 3, 0));
    R(C(g, "g_open", 3, 0, 0, 0, 0)); /* the lowest free number: the hole renumbering left */
    R(C0(g, "g_args_hash"));
    R(C(g, "g_write", 1, 'Z', 2));
    for (int64_t fd = 3; fd <= f->tmp + 1; fd++)
        R(C(g, "g_close", fd));
    assert_true(n <= NRES);
    int64_t mono = C(g, "g_clock", 1), cpu = C(g, "g_clock", 2), th = C(g, "g_clock", 3);
    assert_true(mono >= f->mono);
    assert_true(cpu >= f->cpu);
    assert_true(th >= f->thread);
    return n;
#undef R
}

/* Everything until EOF (every write end is closed by then). */
static void pipe_read(int fd, char *buf, size_t cap) {
    size_t got = 0;
    ssize_t n;
    while (got < cap - 1 && (n = read(fd, buf + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
}

/* The run that never stopped, on a fresh tree: its phase-2 results and what it wrote to stdout. */
static int run_reference(const char *name, Fds *f, int64_t *res, char *out, size_t cap, const char **dir) {
    const char *rd = make_tree(name);
    int pr[2];
    assert_int_equal(pipe(pr), 0);
    G g = {0};
    g_start(&g, new_wasi(rd, pr[1]));
    close(pr[1]);
    phase1(&g, f);
    between(rd);
    int n = phase2(&g, f, res);
    g_stop(&g);
    shoal_wasi_free(g.w);
    pipe_read(pr[0], out, cap);
    close(pr[0]);
    *dir = rd;
    return n;
}

/* Phase 1 on a fresh tree root/name, saved; the tree is then moved to root/moved/name (the old path is
 * gone) and the host appends to the log. Returns the bytes; *dir gets the new place. */
static uint8_t *run_phase1_and_move(const char *name, Fds *f, size_t *len, char *dir, size_t dcap, char *out1,
                                    size_t ocap) {
    const char *s1 = make_tree(name);
    int p1[2];
    assert_int_equal(pipe(p1), 0);
    G g = {0};
    g_start(&g, new_wasi(s1, p1[1]));
    close(p1[1]);
    phase1(&g, f);
    uint8_t *blob;
    save(g.w, &blob, len);
    g_stop(&g);
    shoal_wasi_free(g.w);
    pipe_read(p1[0], out1, ocap);
    close(p1[0]);
    snprintf(dir, dcap, "%s/moved/%s", root, name);
    sh("mkdir -p '%s/moved' && cp -a '%s' '%s' && rm -rf '%s'", root, s1, dir, s1);
    between(dir);
    return blob;
}

static void compare(const int64_t *ref, int nref, const int64_t *got, int ngot, const char *rd, const char *dir) {
    assert_int_equal(ngot, nref);
    for (int i = 0; i < nref; i++)
        if (ref[i] != got[i])
            fail_msg("phase-2 result %d: %lld after the resume, %lld without a stop", i, (long long)got[i],
                     (long long)ref[i]);
    assert_string_equal(get_file(dir, "log.txt"), "start\npppext\nqqq");
    assert_string_equal(get_file(dir, "log.txt"), get_file(rd, "log.txt"));
    assert_string_equal(get_file(dir, "out.bin"), "aaXXaa");
    assert_string_equal(get_file(dir, "out.bin"), get_file(rd, "out.bin"));
    assert_string_equal(get_file(dir, "in.txt"), "0123456789abcdefghij");
}

static void test_resume_equals_uninterrupted(void **state) {
    (void)state;
    int64_t ref[NRES], got[NRES];
    char ref_out[64], got_out[64], p1_out[16], dir[300];
    Fds fr, fs;
    const char *rd;
    int nref = run_reference("ref", &fr, ref, ref_out, sizeof ref_out, &rd);

    size_t len;
    uint8_t *blob = run_phase1_and_move("s1", &fs, &len, dir, sizeof dir, p1_out, sizeof p1_out);
    assert_memory_equal(&fr, &fs, offsetof(Fds, mono)); /* the same fd numbers */
    int p2[2];
    assert_int_equal(pipe(p2), 0);
    shoal_wasi *w2 = NULL;
    shoal_error err;
    if (load(dir, p2[1], blob, len, &w2, &err) != SHOAL_OK)
        fail_msg("load: %s", err.message);
    close(p2[1]);
    /* a loaded state saves and loads again */
    uint8_t *blob2;
    size_t len2;
    save(w2, &blob2, &len2);
    shoal_wasi *w3 = NULL;
    if (load(NULL, -1, blob2, len2, &w3, &err) != SHOAL_OK)
        fail_msg("reload: %s", err.message);
    shoal_wasi_free(w3);
    free(blob2);
    G g = {0};
    g_start(&g, w2);
    int ngot = phase2(&g, &fs, got);
    g_stop(&g);
    shoal_wasi_free(w2);
    free(blob);
    pipe_read(p2[0], got_out, sizeof got_out);
    close(p2[0]);

    compare(ref, nref, got, ngot, rd, dir);
    assert_string_equal(got_out, "ZZ");
    assert_string_equal(ref_out, "ZZ");
    assert_string_equal(p1_out, ""); /* the first WASI object's stdout got nothing of phase 2 */
}

/* The same with phase 2 in another process (this program re-executed with --phase2): nothing but the
 * bytes and the moved directory cross over. */
static const char *self_exe;

static int phase2_child(const char *job, const char *dir, const char *results) {
    FILE *f = fopen(job, "rb");
    Fds fs;
    static uint8_t blob[65536];
    size_t len = 0;
    if (!f || fread(&fs, sizeof fs, 1, f) != 1)
        return 2;
    len = fread(blob, 1, sizeof blob, f);
    fclose(f);
    shoal_wasi *w = NULL;
    shoal_error err;
    if (load(dir, 1, blob, len, &w, &err) != SHOAL_OK) {
        fprintf(stderr, "child load: %s\n", err.message);
        return 3;
    }
    G g = {0};
    g_start(&g, w);
    int64_t got[NRES];
    int32_t n = phase2(&g, &fs, got);
    g_stop(&g);
    shoal_wasi_free(w);
    f = fopen(results, "wb");
    if (!f || fwrite(&n, sizeof n, 1, f) != 1 || fwrite(got, sizeof got[0], (size_t)n, f) != (size_t)n)
        return 4;
    return fclose(f) == 0 ? 0 : 4;
}

static void test_resume_in_new_process(void **state) {
    (void)state;
    int64_t ref[NRES], got[NRES];
    char ref_out[64], got_out[64], p1_out[16], dir[300], job[300], results[300];
    Fds fr, fs;
    const char *rd;
    int nref = run_reference("ref2", &fr, ref, ref_out, sizeof ref_out, &rd);
    size_t len;
    uint8_t *blob = run_phase1_and_move("s4", &fs, &len, dir, sizeof dir, p1_out, sizeof p1_out);
    snprintf(job, sizeof job, "%s/job.bin", root);
    snprintf(results, sizeof results, "%s/results.bin", root);
    FILE *f = fopen(job, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(&fs, sizeof fs, 1, f), 1);
    assert_int_equal(fwrite(blob, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    free(blob);

    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(self_exe, self_exe, "--phase2", job, dir, results, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    pipe_read(out[0], got_out, sizeof got_out);
    close(out[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    f = fopen(results, "rb");
    assert_non_null(f);
    int32_t ngot = 0;
    assert_int_equal(fread(&ngot, sizeof ngot, 1, f), 1);
    assert_true(ngot > 0 && ngot <= NRES);
    assert_int_equal(fread(got, sizeof got[0], (size_t)ngot, f), (size_t)ngot);
    fclose(f);
    compare(ref, nref, got, ngot, rd, dir);
    assert_string_equal(got_out, "ZZ");
    assert_string_equal(ref_out, "ZZ");
}

/* --- clocks ---------------------------------------------------------------------------------------- */

/* Where the three saved clock values start (the format is documented in swasi_state.c). */
static size_t clock_offset(const uint8_t *p, size_t len) {
    kread r;
    kread_init(&r, p, len);
    uint32_t n;
    kread_u32(&r); /* version */
    for (int k = 0; k < 2; k++) { /* argv, environ */
        n = kread_u32(&r);
        for (uint32_t i = 0; i < n; i++)
            free(kread_strdup(&r));
    }
    n = kread_u32(&r);
    for (uint32_t i = 0; i < 2 * n; i++)
        free(kread_strdup(&r));
    assert_false(r.failed);
    return r.off;
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t host_ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void test_clocks_continue(void **state) {
    (void)state;
    const char *d = make_tree("clk");
    G g = {0};
    g_start(&g, new_wasi(d, -1));
    uint8_t *blob;
    size_t len;
    save(g.w, &blob, &len);
    g_stop(&g);
    shoal_wasi_free(g.w);
    /* As if saved on a machine whose clocks were far ahead of this one's (up for longer, busier). */
    const uint64_t ahead = 1000ull * 1000000000ull;
    uint64_t mono = host_ns(CLOCK_MONOTONIC) + ahead;
    size_t off = clock_offset(blob, len);
    put64(blob + off, mono);
    put64(blob + off + 8, 5000ull * 1000000000ull);
    put64(blob + off + 16, 7000ull * 1000000000ull);
    shoal_wasi *w = NULL;
    shoal_error err;
    if (load(d, -1, blob, len, &w, &err) != SHOAL_OK)
        fail_msg("load: %s", err.message);
    g_start(&g, w);
    int64_t m1 = C(&g, "g_clock", 1), m2 = C(&g, "g_clock", 1);
    assert_true((uint64_t)m1 >= mono && (uint64_t)m1 < mono + 100ull * 1000000000ull);
    assert_true(m2 >= m1);
    int64_t c1 = C(&g, "g_clock", 2), t1 = C(&g, "g_clock", 3), t2 = C(&g, "g_clock", 3);
    assert_true((uint64_t)c1 >= 5000ull * 1000000000ull && (uint64_t)c1 < 5100ull * 1000000000ull);
    assert_true((uint64_t)t1 >= 7000ull * 1000000000ull && (uint64_t)t1 < 7100ull * 1000000000ull);
    assert_true(t2 >= t1);
    /* realtime is the real wall clock */
    int64_t rt = C(&g, "g_clock", 0);
    uint64_t now = host_ns(CLOCK_REALTIME);
    assert_true((uint64_t)rt <= now && (uint64_t)rt + 10ull * 1000000000ull > now);
    /* saved again, the clocks carry on from where the guest saw them */
    uint8_t *b2;
    size_t l2;
    save(w, &b2, &l2);
    uint64_t saved_mono = 0;
    for (int i = 7; i >= 0; i--)
        saved_mono = saved_mono << 8 | b2[clock_offset(b2, l2) + (size_t)i];
    assert_true(saved_mono >= (uint64_t)m2);
    free(b2);
    g_stop(&g);
    shoal_wasi_free(w);
    free(blob);
}

/* --- refusals ---------------------------------------------------------------------------------------- */

static void expect_save_refused(shoal_wasi *w, const char *fdtext, const char *what) {
    uint8_t *p = (uint8_t *)1;
    size_t len = 1;
    shoal_error err;
    assert_int_equal(shoal_wasi_state_save(w, &p, &len, &err), SHOAL_ERR_UNSUPPORTED);
    assert_null(p);
    if (!strstr(err.message, fdtext) || !strstr(err.message, what))
        fail_msg("message '%s' lacks '%s' or '%s'", err.message, fdtext, what);
}

static void test_save_refusals(void **state) {
    (void)state;
    const char *d = make_tree("refuse");
    char fdtext[32];
    G g = {0};
    g_start(&g, new_wasi(d, -1));

    /* removed since opened */
    put_file(d, "gone.txt", "x");
    int64_t fd = C(&g, "g_open", 3, 7, 0, 0, 0);
    assert_true(fd > 3);
    sh("rm '%s/gone.txt'", d);
    snprintf(fdtext, sizeof fdtext, "fd %lld ", (long long)fd);
    expect_save_refused(g.w, fdtext, "gone.txt");
    assert_int_equal(C(&g, "g_close", fd), 0);

    /* replaced since opened (another file renamed over it) */
    put_file(d, "gone.txt", "x");
    fd = C(&g, "g_open", 3, 7, 0, 0, 0);
    put_file(d, "other.txt", "y");
    sh("mv '%s/other.txt' '%s/gone.txt'", d, d);
    expect_save_refused(g.w, fdtext, "removed or replaced");
    assert_int_equal(C(&g, "g_close", fd), 0);

    /* not a regular file or directory */
    sh("mkfifo '%s/fifo'", d);
    fd = C(&g, "g_open", 3, 8, 0, FD_NONBLOCK_, 0);
    assert_true(fd > 3);
    expect_save_refused(g.w, fdtext, "neither a regular file nor a directory");
    assert_int_equal(C(&g, "g_close", fd), 0);

    /* opened through a symlink followed by "..": lexically "in.txt", really sub/in.txt */
    fd = C(&g, "g_open", 3, 9, 0, 0, 0);
    assert_true(fd > 3);
    g_read_str(&g, fd, 3, "SUB");
    expect_save_refused(g.w, fdtext, "not known");
    assert_int_equal(C(&g, "g_close", fd), 0);

    /* and with those gone, the save works */
    uint8_t *p;
    size_t len;
    save(g.w, &p, &len);
    free(p);
    g_stop(&g);
    shoal_wasi_free(g.w);

    shoal_error err;
    assert_int_equal(shoal_wasi_state_save(NULL, &p, &len, &err), SHOAL_ERR_ARG);
}

/* Files and directories the guest renames while they are open are still carried, by their new paths. */
static void test_guest_renames(void **state) {
    (void)state;
    const char *d = make_tree("rename");
    G g = {0};
    g_start(&g, new_wasi(d, -1));
    put_file(d, "gone.txt", "renamed-content");
    int64_t f = C(&g, "g_open", 3, 7, 0, 0, 0);
    g_read_str(&g, f, 3, "ren");
    assert_int_equal(C(&g, "g_rename", 3, 7, 10), 0); /* gone.txt -> renamed.txt */
    int64_t dir = C(&g, "g_open", 3, 2, O_DIR_, 0, 0);
    int64_t deep = C(&g, "g_open", dir, 3, 0, 0, 0);
    g_read_str(&g, deep, 2, "de");
    assert_int_equal(C(&g, "g_rename", 3, 2, 11), 0); /* sub -> sub2, with dir and deep open beneath it */
    uint8_t *p;
    size_t len;
    save(g.w, &p, &len);
    g_stop(&g);
    shoal_wasi_free(g.w);
    shoal_wasi *w = NULL;
    shoal_error err;
    if (load(d, -1, p, len, &w, &err) != SHOAL_OK)
        fail_msg("load: %s", err.message);
    free(p);
    g_start(&g, w);
    g_read_str(&g, f, 4, "amed");
    g_read_str(&g, deep, 3, "ep-");
    assert_true(C(&g, "g_readdir", dir, 0) >= 5); /* ., .., deep.txt, in.txt, inner */
    g_stop(&g);
    shoal_wasi_free(w);
}

/* Stdio follows the guest's fd numbers to the new process's stdio fds: a closed stdin becomes a working
 * one, and a stdout the guest renumbered onto another fd writes to the new stdout from there. */
static void test_stdio_rebinding(void **state) {
    (void)state;
    const char *d = make_tree("stdio");
    G g = {0};
    g_start(&g, new_wasi(d, -1)); /* stdin and stdout closed */
    assert_int_equal(C(&g, "g_rights", 0, 0), 0);
    int64_t fd = C(&g, "g_open", 3, 0, 0, 0, 0);
    assert_int_equal(C(&g, "g_renumber", 1, fd), 0); /* stdout now at fd; slot 1 is free */
    uint8_t *p;
    size_t len;
    save(g.w, &p, &len);
    g_stop(&g);
    shoal_wasi_free(g.w);
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    assert_int_equal(write(in[1], "hi", 2), 2);
    shoal_wasi_preopen pre = {.host_path = d, .guest_path = "/data"};
    shoal_wasi_config c = {.npreopens = 1, .preopens = &pre, .stdin_fd = in[0], .stdout_fd = out[1], .stderr_fd = 2};
    shoal_wasi *w = NULL;
    shoal_error err;
    if (shoal_wasi_state_load(&c, p, len, &w, &err) != SHOAL_OK)
        fail_msg("load: %s", err.message);
    free(p);
    close(in[0]);
    close(out[1]);
    g_start(&g, w);
    assert_true(C(&g, "g_rights", 0, 0) > 0);
    g_read_str(&g, 0, 2, "hi");
    assert_int_equal(C(&g, "g_fdstat", 1), -8); /* EBADF: still free */
    assert_int_equal(C(&g, "g_write", fd, 'S', 3), 3);
    g_stop(&g);
    shoal_wasi_free(w);
    char buf[16];
    pipe_read(out[0], buf, sizeof buf);
    assert_string_equal(buf, "SSS");
    close(in[1]);
    close(out[0]);
}

/* A state with in.txt open at position 3 beneath the preopen of tree `name`. */
static void small_state(const char *d, uint8_t **p, size_t *len) {
    G g = {0};
    g_start(&g, new_wasi(d, -1));
    int64_t fd = C(&g, "g_open", 3, 0, 0, 0, 0);
    g_read_str(&g, fd, 3, "012");
    save(g.w, p, len);
    g_stop(&g);
    shoal_wasi_free(g.w);
}

static void test_load_refusals(void **state) {
    (void)state;
    const char *d = make_tree("loadref");
    uint8_t *p;
    size_t len;
    small_state(d, &p, &len);
    shoal_wasi *w = (shoal_wasi *)1;
    shoal_error err;

    /* the file is missing at load: SHOAL_ERR_IO naming it, nothing leaks (LeakSanitizer) */
    sh("mv '%s/in.txt' '%s/in.moved'", d, d);
    assert_int_equal(load(d, -1, p, len, &w, &err), SHOAL_ERR_IO);
    assert_null(w);
    assert_non_null(strstr(err.message, "in.txt"));
    /* replaced by a directory */
    sh("mkdir '%s/in.txt'", d);
    assert_int_equal(load(d, -1, p, len, &w, &err), SHOAL_ERR_IO);
    assert_non_null(strstr(err.message, "in.txt"));
    sh("rmdir '%s/in.txt' && mv '%s/in.moved' '%s/in.txt'", d, d, d);
    assert_int_equal(load(d, -1, p, len, &w, &err), SHOAL_OK);
    shoal_wasi_free(w);

    /* the saved directory is gone and not re-bound */
    const char *gone = make_tree("loadref-gone");
    uint8_t *q;
    size_t qlen;
    small_state(gone, &q, &qlen);
    sh("rm -rf '%s'", gone);
    assert_int_equal(load(NULL, -1, q, qlen, &w, &err), SHOAL_ERR_IO);
    assert_non_null(strstr(err.message, "/data"));
    /* re-binding a name the guest never had */
    shoal_wasi_preopen pre = {.host_path = d, .guest_path = "/nope"};
    shoal_wasi_config c = {.npreopens = 1, .preopens = &pre, .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = -1};
    assert_int_equal(shoal_wasi_state_load(&c, q, qlen, &w, &err), SHOAL_ERR_ARG);
    assert_non_null(strstr(err.message, "/nope"));
    free(q);
    assert_int_equal(shoal_wasi_state_load(NULL, p, len, &w, &err), SHOAL_ERR_ARG);

    /* every truncation is a format error; so is a byte too many and another version */
    for (size_t n = 0; n < len; n++) {
        assert_int_equal(load(d, -1, n ? p : NULL, n, &w, &err), SHOAL_ERR_FORMAT);
        assert_null(w);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, p, len);
    longer[len] = 0;
    assert_int_equal(load(d, -1, longer, len + 1, &w, &err), SHOAL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "trailing"));
    longer[0] ^= 2;
    assert_int_equal(load(d, -1, longer, len, &w, &err), SHOAL_ERR_FORMAT);
    assert_non_null(strstr(err.message, "version"));
    free(longer);

    /* every byte corrupted three ways: an error or a state, never a crash or a leak */
    uint8_t *bad = malloc(len);
    unsigned counts[16] = {0};
    const uint8_t vals[3] = {0x00, 0xff, 0x7f};
    for (size_t i = 0; i < len; i++) {
        for (int k = 0; k < 4; k++) {
            memcpy(bad, p, len);
            bad[i] = k < 3 ? vals[k] : (uint8_t)(bad[i] ^ 1);
            shoal_status st = load(d, -1, bad, len, &w, &err);
            /* ARG: a corrupted guest name no longer matches the re-binding preopen */
            if (st != SHOAL_OK && st != SHOAL_ERR_FORMAT && st != SHOAL_ERR_IO && st != SHOAL_ERR_ARG)
                fail_msg("byte %zu corrupted: status %d: %s", i, (int)st, err.message);
            counts[st]++;
            if (st == SHOAL_OK)
                shoal_wasi_free(w);
            else
                assert_null(w);
        }
    }
    print_message("corruptions of a %zu-byte state: %u loaded, %u format, %u io, %u re-binding errors\n", len,
                  counts[SHOAL_OK], counts[SHOAL_ERR_FORMAT], counts[SHOAL_ERR_IO], counts[SHOAL_ERR_ARG]);
    assert_true(counts[SHOAL_ERR_FORMAT] > 0);
    free(bad);
    free(p);
}

/* The fuzz seeds were written by an independent writer (Python, from the format comment in
 * swasi_state.c): they must parse, which checks the documented field order against the code. */
static void test_documented_format(void **state) {
    (void)state;
    const char *src = getenv("SHOAL_SOURCE_DIR");
    if (!src)
        skip();
    for (int i = 1; i <= 3; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/fuzz/corpus/fuzz_wasi_state/seed%d.bin", src, i);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        uint8_t buf[1024];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        shoal_error err;
        if (swasi_state_check(buf, n, &err) != SHOAL_OK)
            fail_msg("%s: %s", path, err.message);
        assert_int_equal(swasi_state_check(buf, n - 1, &err), SHOAL_ERR_FORMAT);
    }
}

int main(int argc, char **argv) {
    const char *dir = getenv("SHOAL_GUEST_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/wasi_state.wasm", dir ? dir : ".");
    if (access(path, R_OK) != 0) {
        printf("skip: guest %s not built (needs clang-14 and wasi-libc)\n", path);
        return 77;
    }
    shoal_error err;
    if (shoal_module_load_file(path, &mod, &err) != SHOAL_OK) {
        printf("load %s: %s\n", path, err.message);
        return 1;
    }
    if (argc == 5 && !strcmp(argv[1], "--phase2")) {
        int rc = phase2_child(argv[2], argv[3], argv[4]);
        shoal_module_free(mod);
        return rc;
    }
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    self_exe = exe;
    snprintf(root, sizeof root, "/tmp/shoal-wasi-state-XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_equals_uninterrupted),
        cmocka_unit_test(test_resume_in_new_process),
        cmocka_unit_test(test_clocks_continue),
        cmocka_unit_test(test_save_refusals),
        cmocka_unit_test(test_guest_renames),
        cmocka_unit_test(test_stdio_rebinding),
        cmocka_unit_test(test_load_refusals),
        cmocka_unit_test(test_documented_format),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    shoal_module_free(mod);
    return rc;
}
