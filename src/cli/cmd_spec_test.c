/*
 * cmd_spec_test.c: `shoal spec-test DIR [FILE...]`, the WebAssembly spec-suite runner.
 *
 * DIR holds wast2json output (NAME.json + NAME.N.wasm). Without FILEs every *.json in DIR runs, in name
 * order. Each file runs in a forked child (unless --no-fork) so that an engine crash or a runaway guest
 * loses one file, not the run: the child keeps its counts in a shared page the parent reads afterwards,
 * which also tells the parent which command it was on when it died.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "spectest_file.h"

/* Under AddressSanitizer each child ends with exit() so that LeakSanitizer checks the file; otherwise with
 * _exit(), skipping the exit handlers of linked libraries (the CUDA libraries' take tens of ms a file). */
#if defined(__SANITIZE_ADDRESS__)
#define ST_LEAK_CHECK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ST_LEAK_CHECK 1
#endif
#endif

static void st_usage(FILE *out) {
    fprintf(out,
            "usage: shoal spec-test [options] DIR [FILE...]\n"
            "\n"
            "Runs WebAssembly spec tests converted by wast2json: DIR/NAME.json and the modules it names.\n"
            "FILE is NAME, NAME.json or a path; without FILEs every DIR/*.json runs. DIR may also be one\n"
            ".json file. Exit status: 0 if nothing failed, 1 otherwise, 2 on usage errors.\n"
            "\n"
            "options:\n"
            "  -v, --verbose     list skip reasons and message mismatches; spectest.print* print\n"
            "  --strict-text     count a rejection whose message lacks the expected text as a failure\n"
            "  --timeout SECS    interrupt an invocation after SECS seconds (default 20; 0 = never)\n"
            "  --no-fork         run files in this process (for debuggers; a crash ends the run)\n");
}

static int st_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.json names in dir, sorted; NULL with *n == 0 when there are none or on error. */
static char **st_list_dir(const char *dir, size_t *n) {
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t cap = 0;
    *n = 0;
    if (!d)
        return NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json"))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            char **p = realloc(names, cap * sizeof *p);
            if (!p)
                break;
            names = p;
        }
        if (!(names[*n] = strdup(e->d_name)))
            break;
        (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(names, *n, sizeof *names, st_cmp);
    return names;
}

static bool st_is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool st_is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Path of a FILE argument: as given if it is a file, else DIR/FILE, else DIR/FILE.json. */
static char *st_resolve(const char *dir, const char *name) {
    if (st_is_file(name))
        return strdup(name);
    size_t n = strlen(dir) + strlen(name) + 7;
    char *p = malloc(n);
    if (!p)
        return NULL;
    snprintf(p, n, "%s/%s", dir, name);
    if (st_is_file(p))
        return p;
    snprintf(p, n, "%s/%s.json", dir, name);
    return p;
}

/* Runs one file, in a child unless no_fork; adds its counts to total. */
static void st_run_one(const char *path, const SpfOptions *opt, bool no_fork, SpfProgress *total) {
    const char *slash = strrchr(path, '/');
    const char *label = slash ? slash + 1 : path;
    SpfProgress local = {0, 0, 0, 0};
    SpfProgress *p = &local;

    if (no_fork) {
        spf_run_file(path, label, opt, p);
        goto done;
    }
    p = mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        p = &local;
        fprintf(opt->out, "%s: cannot map shared memory; running in-process\n", label);
        spf_run_file(path, label, opt, p);
        goto done;
    }
    memset(p, 0, sizeof *p);
    fflush(opt->out);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(opt->out, "%s: fork failed; running in-process\n", label);
        spf_run_file(path, label, opt, p);
    } else if (pid == 0) {
        spf_run_file(path, label, opt, p);
        fflush(opt->out); /* the parent flushed before forking, so nothing is written twice */
#ifdef ST_LEAK_CHECK
        exit(0);
#else
        _exit(0);
#endif
    } else {
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
            ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            p->failed++;
            if (WIFSIGNALED(status))
                fprintf(opt->out, "%s: CRASHED at line %d (signal %d, %s); counted as 1 failure after %llu passed, "
                                  "%llu failed, %llu skipped\n",
                        label, p->line, WTERMSIG(status), strsignal(WTERMSIG(status)),
                        (unsigned long long)p->passed, (unsigned long long)p->failed - 1,
                        (unsigned long long)p->skipped);
            else
                fprintf(opt->out, "%s: exited with status %d at line %d; counted as 1 failure\n", label,
                        WEXITSTATUS(status), p->line);
        }
    }
    local = *p;
    munmap(p, sizeof *p);
    p = &local;
done:
    total->passed += p->passed;
    total->failed += p->failed;
    total->skipped += p->skipped;
}

int cmd_spec_test(int argc, char **argv) {
    SpfOptions opt = {false, false, 20, stdout};
    bool no_fork = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            st_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            opt.verbose = true;
        } else if (!strcmp(a, "--strict-text")) {
            opt.strict_text = true;
        } else if (!strcmp(a, "--no-fork")) {
            no_fork = true;
        } else if (!strcmp(a, "--timeout") && i + 1 < argc) {
            char *end;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (*end || v > 86400) {
                fprintf(stderr, "shoal spec-test: bad --timeout '%s'\n", argv[i]);
                return 2;
            }
            opt.timeout_s = (unsigned)v;
        } else if (!strcmp(a, "--")) {
            i++;
            break;
        } else {
            fprintf(stderr, "shoal spec-test: unknown option '%s'\n", a);
            st_usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        st_usage(stderr);
        return 2;
    }
    const char *dir = argv[i++];
    char **paths = NULL;
    size_t npaths = 0;
    int rc = 2;

    if (i < argc) {
        npaths = (size_t)(argc - i);
        paths = calloc(npaths, sizeof *paths);
        for (size_t k = 0; paths && k < npaths; k++)
            if (!(paths[k] = st_resolve(dir, argv[i + (int)k])))
                goto fail;
    } else if (st_is_file(dir)) {
        npaths = 1;
        paths = calloc(1, sizeof *paths);
        if (paths && !(paths[0] = strdup(dir)))
            goto fail;
    } else {
        if (!st_is_dir(dir)) {
            fprintf(stderr, "shoal spec-test: '%s' is not a directory\n", dir);
            goto fail;
        }
        char **names = st_list_dir(dir, &npaths);
        if (!npaths) {
            fprintf(stderr, "shoal spec-test: no .json files in '%s'\n", dir);
            free(names);
            goto fail;
        }
        paths = names;
        for (size_t k = 0; k < npaths; k++) {
            size_t n = strlen(dir) + strlen(names[k]) + 2;
            char *p = malloc(n);
            if (!p)
                goto fail;
            snprintf(p, n, "%s/%s", dir, names[k]);
            free(names[k]);
            paths[k] = p;
        }
    }
    if (!paths) {
        fprintf(stderr, "shoal spec-test: out of memory\n");
        goto fail;
    }

    spf_install_timer();
    SpfProgress total = {0, 0, 0, 0};
    for (size_t k = 0; k < npaths; k++)
        st_run_one(paths[k], &opt, no_fork, &total);
    printf("%llu passed, %llu failed, %llu skipped\n", (unsigned long long)total.passed,
           (unsigned long long)total.failed, (unsigned long long)total.skipped);
    rc = total.failed ? 1 : 0;
fail:
    for (size_t k = 0; paths && k < npaths; k++)
        free(paths[k]);
    free(paths);
    return rc;
}
