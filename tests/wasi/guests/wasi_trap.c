/* wasi_trap.c: misbehaves as argv[1] asks: div0, unreachable, oob (a trap each, in a named function),
 * loop (never ends: --fuel / --timeout), sleep (blocks in poll_oneoff: --timeout), grow (allocates 1 MiB
 * blocks until malloc fails: --max-memory), exit N. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) int divide_by(int a, int b) { return a / b; }
__attribute__((noinline)) void reach_unreachable(void) { __builtin_trap(); }
__attribute__((noinline)) int load_far_away(volatile int *p) { return *p; }
__attribute__((noinline)) unsigned long spin_forever(volatile unsigned long *n) {
    for (;;)
        (*n)++;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: wasi_trap div0|unreachable|oob|loop|sleep|grow|exit N\n");
        return 2;
    }
    const char *what = argv[1];
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("before %s\n", what);
    if (!strcmp(what, "div0"))
        printf("%d\n", divide_by(7, argc - 2));
    else if (!strcmp(what, "unreachable"))
        reach_unreachable();
    else if (!strcmp(what, "oob"))
        printf("%d\n", load_far_away((volatile int *)(uintptr_t)0xfffffff0u));
    else if (!strcmp(what, "loop")) {
        volatile unsigned long n = 0;
        printf("%lu\n", spin_forever(&n));
    } else if (!strcmp(what, "sleep"))
        sleep(1000);
    else if (!strcmp(what, "grow")) {
        static char *volatile keep[64]; /* volatile: the compiler may not drop allocations it sees unused */
        int blocks = 0;
        while (blocks < 64 && (keep[blocks] = malloc(1 << 20)) != NULL) {
            memset(keep[blocks], 1, 1 << 20);
            blocks++;
        }
        printf("allocated %d MiB\n", blocks);
        return blocks == 64 ? 0 : 3;
    } else if (!strcmp(what, "exit") && argc > 2)
        exit(atoi(argv[2]));
    else
        return 2;
    printf("after %s\n", what);
    return 0;
}
