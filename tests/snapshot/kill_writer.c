/* kill_writer.c: the victim of kill.sh. `kill_writer MODEL ref A B` writes two different snapshots (a
 * 480-position session and a 300-position one of other tokens) to A and B; `kill_writer MODEL loop PATH`
 * then creates PATH.ready and saves them over PATH alternately, forever, until it is killed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal.h"

static shoal_session *make(shoal_model *m, uint32_t n, int32_t mul, int32_t *ids, shoal_error *err) {
    shoal_session_options so = {512, SHOAL_KV_F32, 0};
    shoal_session *s = NULL;
    if (shoal_session_new(m, &so, &s, err))
        return NULL;
    for (uint32_t i = 0; i < n; i++)
        ids[i] = 1 + (int32_t)((i * (uint32_t)mul) % 500);
    if (shoal_session_prefill(s, ids, n, NULL, err)) {
        shoal_session_free(s);
        return NULL;
    }
    return s;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: kill_writer MODEL ref A B | kill_writer MODEL loop PATH\n");
        return 2;
    }
    shoal_error err = {0};
    shoal_model_options mo = {0};
    mo.n_threads = 1;
    shoal_model *m = NULL;
    static int32_t ia[512], ib[512];
    shoal_session *a = NULL, *b = NULL;
    if (shoal_model_load(argv[1], &mo, &m, &err) || !(a = make(m, 480, 7, ia, &err)) ||
        !(b = make(m, 300, 13, ib, &err))) {
        fprintf(stderr, "kill_writer: %s\n", err.message);
        return 1;
    }
    shoal_snapshot_save_opts oa = {ia, 480, NULL, NULL}, ob = {ib, 300, NULL, NULL};
    if (!strcmp(argv[2], "ref") && argc == 5) {
        int rc = 0;
        if (shoal_session_save(a, argv[3], &oa, &err) || shoal_session_save(b, argv[4], &ob, &err)) {
            fprintf(stderr, "kill_writer: %s\n", err.message);
            rc = 1;
        }
        shoal_session_free(a);
        shoal_session_free(b);
        shoal_model_free(m);
        return rc;
    }
    /* Tell kill.sh the saving starts now (so its random delays fall among the saves, not the setup). */
    char ready[4096];
    snprintf(ready, sizeof ready, "%s.ready", argv[3]);
    FILE *f = fopen(ready, "w");
    if (f)
        fclose(f);
    for (unsigned long i = 0;; i++) {
        if (shoal_session_save(i & 1 ? b : a, argv[3], i & 1 ? &ob : &oa, &err)) {
            fprintf(stderr, "kill_writer: %s\n", err.message);
            return 1;
        }
    }
}
