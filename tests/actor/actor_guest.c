/*
 * actor_guest.c: a guest whose whole state matters, for the actor snapshot tests (actor.sh).
 *
 *   actor_guest count N        N steps of a running hash over a heap table, with recursion and globals,
 *                              printing one line per step: stopped anywhere and resumed, the output must
 *                              equal an uninterrupted run's
 *   actor_guest ckpt N K...    like count, calling shoal_actor_checkpoint() after each step K given; it
 *                              exits after the first checkpoint it writes ("frozen") and goes on when
 *                              resumed from it
 *   actor_guest files DIR N    reads the file DIR/input in 16-byte pieces and appends each to DIR/log,
 *                              checkpointing (and exiting) after piece N: resumed, it continues reading and
 *                              appending through the same descriptors
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shoal_guest.h"

static uint64_t g_state = 0x9E3779B97F4A7C15ull; /* a global the resumed guest must still have */
static uint32_t *table;                           /* heap memory */
enum { TABLE_WORDS = 1 << 16 };

/* Recursion keeps several Wasm frames live at every stop. */
static uint64_t mix(uint64_t x, int depth) {
    if (depth == 0) return x ^ (x >> 31);
    x = x * 0xBF58476D1CE4E5B9ull + (uint64_t)depth;
    return mix(x ^ (x >> 27), depth - 1) + 1;
}

static uint64_t step(uint32_t i) {
    for (uint32_t k = 0; k < 2000; k++) {
        uint32_t at = (uint32_t)(g_state >> 40) % TABLE_WORDS;
        table[at] += (uint32_t)g_state;
        g_state = mix(g_state ^ table[(at * 7 + i) % TABLE_WORDS], 6);
    }
    return g_state;
}

static int run_steps(uint32_t n, const uint32_t *ckpts, int nckpts) {
    table = calloc(TABLE_WORDS, sizeof *table);
    if (!table) return 1;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t h = step(i);
        printf("step %u %016llx\n", i, (unsigned long long)h);
        for (int c = 0; c < nckpts; c++) {
            if (ckpts[c] != i) continue;
            fflush(stdout);
            int32_t r = shoal_actor_checkpoint();
            if (r == SHOAL_ACTOR_WRITTEN) {
                printf("frozen after step %u\n", i);
                return 0;
            }
            if (r == SHOAL_ACTOR_RESUMED) {
                printf("resumed after step %u\n", i);
                continue;
            }
            char msg[256];
            int32_t len = shoal_actor_last_error(msg, sizeof msg - 1);
            msg[len < 0 ? 0 : len > (int32_t)sizeof msg - 1 ? (int32_t)sizeof msg - 1 : len] = 0;
            printf("checkpoint failed: %d: %s\n", r, msg);
            return 3;
        }
    }
    uint64_t sum = 0;
    for (uint32_t k = 0; k < TABLE_WORDS; k++) sum = sum * 31 + table[k];
    printf("done %016llx %016llx\n", (unsigned long long)g_state, (unsigned long long)sum);
    return 0;
}

static int run_files(const char *dir, int stop_after) {
    char in_path[512], log_path[512];
    snprintf(in_path, sizeof in_path, "%s/input", dir);
    snprintf(log_path, sizeof log_path, "%s/log", dir);
    int in = open(in_path, O_RDONLY);
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || log < 0) {
        printf("cannot open the files\n");
        return 1;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char buf[16];
    int piece = 0;
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        if (write(log, buf, (size_t)n) != n) return 1;
        printf("piece %d: %.*s\n", piece, (int)n, buf);
        if (piece++ == stop_after) {
            fflush(stdout);
            int32_t r = shoal_actor_checkpoint();
            if (r == SHOAL_ACTOR_WRITTEN) {
                printf("frozen at piece %d\n", piece - 1);
                return 0;
            }
            if (r != SHOAL_ACTOR_RESUMED) {
                printf("checkpoint failed: %d\n", r);
                return 3;
            }
            struct timespec t1;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            int forward = t1.tv_sec > t0.tv_sec || (t1.tv_sec == t0.tv_sec && t1.tv_nsec >= t0.tv_nsec);
            printf("resumed at piece %d, monotonic clock %s\n", piece - 1, forward ? "forward" : "WENT BACK");
        }
    }
    close(in);
    close(log);
    printf("files done\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "count")) return run_steps((uint32_t)atoi(argv[2]), NULL, 0);
    if (argc >= 3 && !strcmp(argv[1], "ckpt")) {
        uint32_t ck[16];
        int n = 0;
        for (int i = 3; i < argc && n < 16; i++) ck[n++] = (uint32_t)atoi(argv[i]);
        return run_steps((uint32_t)atoi(argv[2]), ck, n);
    }
    if (argc >= 4 && !strcmp(argv[1], "files")) return run_files(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: actor_guest count N | ckpt N K... | files DIR N\n");
    return 2;
}
