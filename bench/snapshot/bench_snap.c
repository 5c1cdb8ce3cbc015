/*
 * bench_snap.c: KV snapshot cost against re-prefilling the same tokens, per context length.
 *
 *   bench_snap MODEL [--device cpu|cuda] [--threads N] [--reps R] [--dir D] [--kv f32|f16] [CTX...]
 *
 * For each context length n (default 24 256 1024 4096, those the model allows): a session prefilled with n
 * tokens is saved (best of R; includes the fsyncs of a crash-safe write), then restored into another
 * session from the page cache and cold (posix_fadvise DONTNEED on the file before each), and the same n
 * tokens are re-prefilled from an empty session. The transfer bound is the file's bytes over the slower of
 * two bandwidths measured in this run on 64 MiB: reading a file (warm from the page cache, or cold; the
 * faster of one read() call and 1 MiB calls) and the backend's host-to-device copy (memcpy on the CPU,
 * pinned staging slots on CUDA). Beside it, the time to read the snapshot file alone, open to close: the
 * floor for small files, where fixed costs dominate. One markdown row per n on stdout.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lapi.h"
#include "shoal.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void drop_cache(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

/* Reads n bytes of path into buf, in one read() call (chunk 0) or in chunks of `chunk` bytes. */
static void read_into(const char *path, uint8_t *buf, size_t n, size_t chunk) {
    int fd = open(path, O_RDONLY);
    size_t got = 0;
    ssize_t k;
    while (fd >= 0 && got < n && (k = read(fd, buf + got, chunk && n - got > chunk ? chunk : n - got)) > 0)
        got += (size_t)k;
    if (fd >= 0)
        close(fd);
}

/* Seconds to read path (whole, into a buffer already faulted in), best of reps; cold drops the cache
 * first. Two ways, the faster counts: one read() call, and 1 MiB read() calls (what a restore does). */
static double read_time(const char *path, size_t n, bool cold, int reps) {
    uint8_t *buf = malloc(n ? n : 1);
    double best = 1e30;
    if (!buf)
        return best;
    memset(buf, 0, n);
    for (int way = 0; way < 2; way++)
        for (int r = 0; r < reps; r++) {
            if (cold)
                drop_cache(path);
            double t = now();
            read_into(path, buf, n, way ? (1u << 20) : 0);
            t = now() - t;
            if (t < best)
                best = t;
        }
    free(buf);
    return best;
}

/* Host-to-device bytes per second through the session's backend (into its own KV cache), by the fastest
 * path it offers: the pinned staging slots where there are (what a restore uses), else upload(). */
static double upload_bw(shoal_session *ss, int reps) {
    lsession *s = ss->s;
    lbackend *be = s->be;
    size_t kvb = (size_t)lsession_kv_bytes(s) / 2, chunk = kvb < (64u << 20) ? kvb : (64u << 20);
    size_t total = 64u << 20;
    uint8_t *host = malloc(chunk);
    if (!host)
        return 0;
    memset(host, 1, chunk);
    double best = 1e30;
    size_t moved = 0;
    for (int r = 0; r < reps; r++) {
        double t = now();
        moved = 0;
        if (be->stage) {
            /* Slots of cap bytes, round robin, cycling through the K cache. */
            int slot = 0;
            size_t cap = 0, off = 0;
            while (moved < total) {
                uint8_t *p = be->stage(s->ctx, slot, &cap, NULL);
                if (!p)
                    return 0;
                size_t c = cap < chunk ? cap : chunk;
                if (off + c > chunk)
                    off = 0;
                be->stage_upload(s->ctx, (uint8_t *)s->kv.k + off, c, slot, 0, c, c, 1);
                off += c;
                moved += c;
                slot = (slot + 1) % LBACKEND_STAGES;
            }
        } else {
            for (; moved < total; moved += chunk)
                be->upload(s->ctx, s->kv.k, host, chunk);
        }
        be->sync(s->ctx, NULL);
        t = now() - t;
        if (t < best)
            best = t;
    }
    free(host);
    return (double)moved / best;
}

/* s holds n positions whose last step gave `want` (decoding token 5 at n - 1). A copy of the snapshot at
 * path with a flipped bit near its end must be refused, and s must then give the same logits again. */
static bool refused_intact(shoal_session *s, const char *path, uint32_t vocab, uint32_t n, const float *want) {
    char bad[1100];
    snprintf(bad, sizeof bad, "%s.bad", path);
    FILE *f = fopen(path, "rb"), *g = fopen(bad, "wb");
    bool ok = f && g;
    int c;
    long at = 0, size = 0;
    if (ok) {
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        rewind(f);
    }
    long flip = size - (long)vocab * 4 - 5; /* the logits are last; just before them, the last V */
    while (ok && (c = fgetc(f)) != EOF)
        fputc(at++ == flip ? c ^ 0x20 : c, g);
    if (f)
        fclose(f);
    if (g)
        fclose(g);
    shoal_error err = {0};
    ok = ok && shoal_session_restore(s, bad, NULL, &err) == SHOAL_ERR_FORMAT && strstr(err.message, "checksum") &&
         shoal_session_position(s) == n;
    unlink(bad);
    float *got = malloc((size_t)vocab * 4);
    ok = ok && got && !shoal_session_truncate(s, n - 1, NULL) && !shoal_session_decode(s, 5, got, NULL) &&
         !memcmp(got, want, (size_t)vocab * 4);
    free(got);
    return ok;
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *device = "cpu", *dir = "/tmp";
    uint32_t threads = 2, ctxs[16], n_ctxs = 0;
    int reps = 3;
    shoal_kv_type kv = SHOAL_KV_F32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--device") && v)
            device = argv[++i];
        else if (!strcmp(a, "--threads") && v)
            threads = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(a, "--reps") && v)
            reps = atoi(argv[++i]);
        else if (!strcmp(a, "--dir") && v)
            dir = argv[++i];
        else if (!strcmp(a, "--kv") && v)
            kv = !strcmp(argv[++i], "f16") ? SHOAL_KV_F16 : SHOAL_KV_F32;
        else if (!model_path && a[0] != '-')
            model_path = a;
        else if (a[0] != '-' && n_ctxs < 16)
            ctxs[n_ctxs++] = (uint32_t)atoi(a);
        else {
            fprintf(stderr, "usage: bench_snap MODEL [--device D] [--threads N] [--reps R] [--dir D] [--kv T] [CTX...]\n");
            return 2;
        }
    }
    if (!model_path)
        return 2;
    if (!n_ctxs) {
        static const uint32_t def[] = {24, 256, 1024, 4096};
        memcpy(ctxs, def, sizeof def);
        n_ctxs = 4;
    }
    shoal_error err = {0};
    shoal_model_options mo = {0};
    mo.backend = device;
    mo.n_threads = threads;
    shoal_model *m = NULL;
    if (shoal_model_load(model_path, &mo, &m, &err)) {
        fprintf(stderr, "bench_snap: %s\n", err.message);
        if (err.status == SHOAL_ERR_DEVICE || err.status == SHOAL_ERR_NOTFOUND) {
            printf("SKIP: backend %s is not available here\n", device);
            return 77;
        }
        return 1;
    }
    shoal_model_info info;
    shoal_model_get_info(m, &info);
    uint8_t id[32];
    lapi_model_id(m, id); /* once, as a long-running host would: not part of any timing below */
    char path[1024], scratch[1024];
    snprintf(path, sizeof path, "%s/bench_snap.%d.st", dir, (int)getpid());
    snprintf(scratch, sizeof scratch, "%s/bench_snap.%d.bw", dir, (int)getpid());
    /* The bandwidth probes: a 64 MiB file. */
    size_t bwn = 64u << 20;
    {
        uint8_t *b = malloc(bwn);
        FILE *f = fopen(scratch, "wb");
        if (!b || !f || (memset(b, 7, bwn), fwrite(b, 1, bwn, f)) != bwn) {
            fprintf(stderr, "bench_snap: cannot write %s\n", scratch);
            return 1;
        }
        fclose(f);
        free(b);
    }
    double rd_warm = bwn / read_time(scratch, bwn, false, reps), rd_cold = bwn / read_time(scratch, bwn, true, reps);
    unlink(scratch);
    printf("model %s (%s), backend %s, KV %s, best of %d; file read %.2f GB/s warm, %.2f GB/s cold\n\n", info.name,
           info.weight_type, info.backend, kv == SHOAL_KV_F16 ? "f16" : "f32", reps, rd_warm / 1e9, rd_cold / 1e9);
    printf("| ctx | file | save | restore (cache) | restore (cold) | re-prefill | prefill / restore | "
           "h2d GB/s | bound (cache) | bound (cold) | restore / bound (cache, cold) | file read alone (cache, cold) |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (uint32_t c = 0; c < n_ctxs; c++) {
        uint32_t n = ctxs[c];
        if (n == 0 || n > info.seq_len || n > 4096) {
            printf("| %u | (the model's context is %u) | | | | | | | | | | |\n", n, info.seq_len);
            continue;
        }
        shoal_session_options so = {n, kv, 0};
        shoal_session *a = NULL, *b = NULL;
        if (shoal_session_new(m, &so, &a, &err) || shoal_session_new(m, &so, &b, &err)) {
            fprintf(stderr, "bench_snap: %s\n", err.message);
            return 1;
        }
        int32_t *ids = malloc(n * sizeof *ids);
        float *logits = malloc((size_t)info.vocab_size * 4);
        for (uint32_t i = 0; i < n; i++)
            ids[i] = (int32_t)(1 + (i * 2654435761u) % (info.vocab_size - 1));
        double t_prefill = 1e30, t_save = 1e30, t_warm = 1e30, t_cold = 1e30;
        for (int r = 0; r < reps; r++) {
            shoal_session_reset(a);
            double t = now();
            if (shoal_session_prefill(a, ids, n, logits, &err)) {
                fprintf(stderr, "bench_snap: %s\n", err.message);
                return 1;
            }
            t = now() - t;
            t_prefill = t < t_prefill ? t : t_prefill;
        }
        shoal_snapshot_save_opts o = {ids, n, NULL, logits};
        for (int r = 0; r < reps; r++) {
            double t = now();
            if (shoal_session_save(a, path, &o, &err)) {
                fprintf(stderr, "bench_snap: %s\n", err.message);
                return 1;
            }
            t = now() - t;
            t_save = t < t_save ? t : t_save;
        }
        for (int cold = 0; cold < 2; cold++)
            for (int r = 0; r < reps; r++) {
                shoal_session_reset(b);
                if (cold)
                    drop_cache(path);
                double t = now();
                if (shoal_session_restore(b, path, NULL, &err)) {
                    fprintf(stderr, "bench_snap: %s\n", err.message);
                    return 1;
                }
                t = now() - t;
                double *best = cold ? &t_cold : &t_warm;
                *best = t < *best ? t : *best;
            }
        /* The restored session must be the saved one: its next logits equal. */
        float *la = malloc((size_t)info.vocab_size * 4), *lb = malloc((size_t)info.vocab_size * 4);
        shoal_session_truncate(a, n - 1, NULL);
        shoal_session_truncate(b, n - 1, NULL);
        shoal_session_decode(a, 5, la, NULL);
        shoal_session_decode(b, 5, lb, NULL);
        if (memcmp(la, lb, (size_t)info.vocab_size * 4)) {
            fprintf(stderr, "bench_snap: the restored session differs from the saved one\n");
            return 1;
        }
        /* A refused restore (a flipped bit in the last KV tensor, found at the end) over a session holding
         * all n positions leaves it as it was: the same next logits as before. */
        if (!refused_intact(b, path, info.vocab_size, n, lb)) {
            fprintf(stderr, "bench_snap: a refused restore changed the session\n");
            return 1;
        }
        free(la);
        free(lb);
        FILE *f = fopen(path, "rb");
        fseek(f, 0, SEEK_END);
        double bytes = (double)ftell(f);
        fclose(f);
        /* The floor a restore of this very file can reach: reading it, nothing else (open to close). */
        double f_warm = read_time(path, (size_t)bytes, false, reps), f_cold = read_time(path, (size_t)bytes, true, reps);
        double h2d = upload_bw(b, reps);
        double bound_warm = bytes / (rd_warm < h2d ? rd_warm : h2d), bound_cold = bytes / (rd_cold < h2d ? rd_cold : h2d);
        printf("| %u | %.2f MiB | %.2f ms | %.3f ms | %.3f ms | %.2f ms | %.1fx | %.1f | %.3f ms | %.3f ms | %.2fx, "
               "%.2fx | %.3f ms, %.3f ms |\n",
               n, bytes / 1048576.0, t_save * 1e3, t_warm * 1e3, t_cold * 1e3, t_prefill * 1e3, t_prefill / t_warm,
               h2d / 1e9, bound_warm * 1e3, bound_cold * 1e3, t_warm / bound_warm, t_cold / bound_cold, f_warm * 1e3,
               f_cold * 1e3);
        fflush(stdout);
        unlink(path);
        free(ids);
        free(logits);
        shoal_session_free(a);
        shoal_session_free(b);
    }
    shoal_model_free(m);
    return 0;
}
