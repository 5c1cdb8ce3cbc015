/* wasi_basic.c: args, environment, stdin -> stdout, stderr and the exit code.
 * Prints its arguments and the variables named by SHOW (comma-separated), copies stdin to stdout in upper
 * case, writes one line to stderr and exits with the code given as "exit=N" (proc_exit) if present. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv) {
    int code = 0;
    printf("argc=%d\n", argc);
    for (int i = 0; i < argc; i++) {
        printf("argv[%d]=%s\n", i, argv[i]);
        if (!strncmp(argv[i], "exit=", 5))
            code = atoi(argv[i] + 5);
    }
    int nenv = 0;
    for (char **e = environ; *e; e++)
        nenv++;
    printf("envc=%d\n", nenv);
    const char *show = getenv("SHOW");
    if (show) {
        char names[256];
        snprintf(names, sizeof names, "%s", show);
        for (char *n = strtok(names, ","); n; n = strtok(NULL, ",")) {
            const char *v = getenv(n);
            printf("env %s=%s\n", n, v ? v : "(unset)");
        }
    }
    int c;
    long n = 0;
    while ((c = getchar()) != EOF) {
        putchar(toupper(c));
        n++;
    }
    printf("stdin bytes=%ld\n", n);
    fprintf(stderr, "this goes to stderr\n");
    fflush(stdout);
    if (code)
        exit(code);
    return 0;
}
