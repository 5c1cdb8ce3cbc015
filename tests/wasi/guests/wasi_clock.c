/* wasi_clock.c: clocks, sleeping (poll_oneoff), randomness and stdin readiness.
 * argv[1]: the host's time in seconds when the test started (the realtime clock must agree). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

static int failures;
#define CHECK(cond)                                                                                          \
    do {                                                                                                     \
        if (cond) {                                                                                          \
            printf("PASS %s\n", #cond);                                                                      \
        } else {                                                                                             \
            printf("FAIL line %d: %s\n", __LINE__, #cond);                                                   \
            failures++;                                                                                      \
        }                                                                                                    \
    } while (0)

static long long ns(clockid_t c) {
    struct timespec ts;
    if (clock_gettime(c, &ts) != 0)
        return -1;
    return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    long long host_now = atoll(argv[1]);
    long long real = ns(CLOCK_REALTIME) / 1000000000ll;
    CHECK(real >= host_now - 5 && real <= host_now + 120);

    long long m1 = ns(CLOCK_MONOTONIC);
    struct timespec nap = {.tv_sec = 0, .tv_nsec = 50 * 1000000};
    CHECK(nanosleep(&nap, NULL) == 0);
    long long m2 = ns(CLOCK_MONOTONIC);
    CHECK(m1 > 0 && m2 - m1 >= 50 * 1000000ll && m2 - m1 < 5000 * 1000000ll);

    volatile double x = 0;
    (void)x;
    long long c1 = ns(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < 3000000; i++)
        x += i * 0.5;
    long long c2 = ns(CLOCK_PROCESS_CPUTIME_ID);
    CHECK(c1 >= 0 && c2 > c1);
    CHECK(ns(CLOCK_THREAD_CPUTIME_ID) > 0);

    struct timespec res;
    CHECK(clock_getres(CLOCK_MONOTONIC, &res) == 0 && res.tv_sec == 0 && res.tv_nsec > 0);
    __wasi_timestamp_t t;
    CHECK(__wasi_clock_time_get(99, 1, &t) == __WASI_ERRNO_INVAL);
    CHECK(__wasi_clock_res_get(99, &t) == __WASI_ERRNO_INVAL);

    /* an absolute deadline on the realtime clock, 30 ms ahead */
    __wasi_timestamp_t now;
    CHECK(__wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &now) == 0);
    __wasi_subscription_t sub = {.userdata = 42, .u = {.tag = __WASI_EVENTTYPE_CLOCK,
        .u.clock = {.id = __WASI_CLOCKID_REALTIME, .timeout = now + 30000000ull,
                    .flags = __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME}}};
    __wasi_event_t ev;
    __wasi_size_t nev = 0;
    m1 = ns(CLOCK_MONOTONIC);
    CHECK(__wasi_poll_oneoff(&sub, &ev, 1, &nev) == 0 && nev == 1 && ev.userdata == 42 && ev.error == 0 &&
          ev.type == __WASI_EVENTTYPE_CLOCK);
    CHECK(ns(CLOCK_MONOTONIC) - m1 >= 25000000ll);

    /* stdin (a file or pipe with data, from the script) is readable at once, before a 10 s timeout */
    __wasi_subscription_t subs[2] = {
        {.userdata = 1, .u = {.tag = __WASI_EVENTTYPE_CLOCK, .u.clock = {.id = __WASI_CLOCKID_MONOTONIC,
                                                                         .timeout = 10000000000ull}}},
        {.userdata = 2, .u = {.tag = __WASI_EVENTTYPE_FD_READ, .u.fd_read = {.file_descriptor = 0}}}};
    __wasi_event_t evs[2];
    m1 = ns(CLOCK_MONOTONIC);
    CHECK(__wasi_poll_oneoff(subs, evs, 2, &nev) == 0 && nev == 1 && evs[0].userdata == 2 &&
          evs[0].type == __WASI_EVENTTYPE_FD_READ && evs[0].error == 0 && evs[0].fd_readwrite.nbytes == 6);
    CHECK(ns(CLOCK_MONOTONIC) - m1 < 5000000000ll);
    subs[1].u.u.fd_read.file_descriptor = 77;
    CHECK(__wasi_poll_oneoff(subs, evs, 2, &nev) == 0 && nev == 1 && evs[0].userdata == 2 &&
          evs[0].error == __WASI_ERRNO_BADF);
    CHECK(__wasi_poll_oneoff(subs, evs, 0, &nev) == __WASI_ERRNO_INVAL);

    unsigned char a[32], b[32], zero[32] = {0};
    CHECK(getentropy(a, sizeof a) == 0 && getentropy(b, sizeof b) == 0);
    CHECK(memcmp(a, b, sizeof a) != 0 && memcmp(a, zero, sizeof a) != 0);
    static unsigned char big[1 << 16];
    CHECK(__wasi_random_get(big, sizeof big) == 0);
    int ones = 0;
    for (size_t i = 0; i < sizeof big; i++)
        ones += __builtin_popcount(big[i]);
    CHECK(ones > 8 * (1 << 16) * 45 / 100 && ones < 8 * (1 << 16) * 55 / 100);
    CHECK(sched_yield() == 0);

    printf("%s: %d failure(s)\n", failures ? "clock FAILED" : "clock: all ok", failures);
    return failures ? 1 : 0;
}
