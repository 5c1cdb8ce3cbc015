/* fuzz_ksnap.c: the KV snapshot reader (src/snapshot/ksnap.c) on arbitrary bytes: a restore must refuse
 * with a message or succeed, never crash, and a refused restore must leave the session's position as it
 * was. The session is on a tiny random model made once at start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ksnap.h"
#include "lapi.h"
#include "lload.h"

static shoal_model *model;
static shoal_session *sess;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    lmodel_config c = {0};
    c.dim = 16;
    c.n_layers = 2;
    c.n_heads = 2;
    c.n_kv_heads = 1;
    c.head_dim = 8;
    c.hidden_dim = 32;
    c.vocab_size = 32;
    c.seq_len = 16;
    c.rms_eps = 1e-5f;
    c.rope_theta = 10000;
    snprintf(c.arch, sizeof c.arch, "llama");
    snprintf(c.name, sizeof c.name, "fuzz");
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_ksnap.%d.gguf", (int)getpid());
    lload_write_opts wo = {.type = LDT_F32};
    shoal_error err = {0};
    shoal_model_options mo = {0};
    mo.n_threads = 1;
    shoal_session_options so = {16, SHOAL_KV_F32, 0};
    if (lload_write_random(&c, NULL, 1, path, &wo, &err) || shoal_model_load(path, &mo, &model, &err) ||
        shoal_session_new(model, &so, &sess, &err)) {
        fprintf(stderr, "fuzz_ksnap: %s\n", err.message);
        abort();
    }
    unlink(path);
    /* A valid snapshot as a seed, when asked: FUZZ_KSNAP_SEED=path. */
    const char *seed = getenv("FUZZ_KSNAP_SEED");
    if (seed) {
        int32_t ids[5] = {1, 2, 3, 4, 5};
        shoal_session_prefill(sess, ids, 5, NULL, &err);
        shoal_snapshot_save_opts o = {ids, 5, NULL, NULL};
        shoal_session_save(sess, seed, &o, &err);
        shoal_session_reset(sess);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("snap", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    int32_t toks[32];
    shoal_snapshot_restored out = {.tokens = toks, .tokens_cap = 32};
    shoal_error err = {0};
    uint32_t before = shoal_session_position(sess);
    shoal_status st = ksnap_restore_fd(sess, fd, "input", &out, &err);
    if (st && shoal_session_position(sess) != before)
        abort(); /* a refused restore changed the session */
    if (!st && shoal_session_position(sess) > 16)
        abort();
    close(fd);
    return 0;
}
