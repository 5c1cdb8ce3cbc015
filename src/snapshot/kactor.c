/*
 * kactor.c: actor files (shoal.h section 11): a whole guest frozen to one file, and resumed from it.
 *
 * Layout (little-endian), in the spirit of Redis's RDB: versioned, typed, checksummed.
 *   "SHOALACT", u32 format version, u32 section count,
 *   then per section: u32 tag, u32 reserved (0), u64 payload length, u64 XXH3-64 of the payload, payload.
 * Sections (each payload starts with its owner's own version):
 *   META    u32 version, str shoal version, str reason, u64 created (unix ns), str device, str memory mode,
 *           u32 checkpoints taken so far
 *   MODULE  the module's bytes (the actor carries its code: a resume needs nothing but the file)
 *   ENGINE  src/wasm/ssnap.c
 *   MEMORY  u32 version, u32 pages, u64 run count, runs (u64 offset, u64 length), then the runs' bytes:
 *           only 4 KiB pages holding a non-zero byte (a fresh memory is zero, so the rest is implied)
 *   WASI    shoal_wasi_state_save
 *   NN      shoal_nn_ctx_state_save (absent when the guest has no inference state)
 * Every section is checked against its checksum before anything is built from it; the memory section is
 * read straight into the new instance's memory and hashed there (no staging copy), and a mismatch fails
 * the resume before the guest runs. Files are written crash-safely (kfile.h): the old file or the new one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "kbuf.h"
#include "kfile.h"
#include "ssnap.h"

#define KACT_MAGIC "SHOALACT"
#define KACT_VERSION 1u
#define KACT_META_VERSION 1u
#define KACT_MEMORY_VERSION 1u
#define KACT_MAX_SECTIONS 16u
#define KACT_SECTION_HEADER 24u

enum { SEC_META = 1, SEC_MODULE = 2, SEC_ENGINE = 3, SEC_MEMORY = 4, SEC_WASI = 5, SEC_NN = 6, SEC_LAST = 6 };
static const char *const sec_names[] = {"", "meta", "module", "engine", "memory", "wasi", "nn"};

/* Guest-visible results of shoal_actor.checkpoint(). */
enum { CKPT_WRITTEN = 0, CKPT_RESUMED = 1, CKPT_ENOPATH = -1, CKPT_EUNSUPPORTED = -2, CKPT_EIO = -3 };

struct shoal_actor {
    const shoal_module *module;
    shoal_actor_config cfg;
    char *checkpoint_path, *device, *memory_mode;
    uint32_t checkpoints;
    char last_error[512];
};

/* ---- writing ------------------------------------------------------------------------------------ */

shoal_status shoal_actor_new(const shoal_module *module, const shoal_actor_config *config, shoal_actor **out,
                             shoal_error *err) {
    if (!module || !config || !out || !config->wasi)
        return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_actor_new: module, config and config->wasi are required");
    shoal_actor *a = calloc(1, sizeof *a);
    if (!a) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    a->module = module;
    a->cfg = *config;
    a->checkpoint_path = config->checkpoint_path ? strdup(config->checkpoint_path) : NULL;
    a->device = strdup(config->device ? config->device : "cpu");
    a->memory_mode = strdup(config->memory_mode ? config->memory_mode : "default");
    a->checkpoints = config->checkpoints;
    if ((config->checkpoint_path && !a->checkpoint_path) || !a->device || !a->memory_mode) {
        shoal_actor_free(a);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    }
    a->cfg.checkpoint_path = a->checkpoint_path;
    a->cfg.device = a->device;
    a->cfg.memory_mode = a->memory_mode;
    *out = a;
    return SHOAL_OK;
}

void shoal_actor_free(shoal_actor *a) {
    if (!a) return;
    free(a->checkpoint_path);
    free(a->device);
    free(a->memory_mode);
    free(a);
}

const char *shoal_actor_error(const shoal_actor *a) { return a ? a->last_error : ""; }
uint32_t shoal_actor_checkpoints(const shoal_actor *a) { return a ? a->checkpoints : 0; }

typedef struct kwsec {
    uint8_t header[KACT_SECTION_HEADER];
    uint32_t tag;
    kbuf body; /* every section but MEMORY's data */
} kwsec;

static void put_header(uint8_t *h, uint32_t tag, uint64_t len, uint64_t sum) {
    kbuf b;
    kbuf_init(&b);
    kbuf_u32(&b, tag);
    kbuf_u32(&b, 0);
    kbuf_u64(&b, len);
    kbuf_u64(&b, sum);
    if (!b.failed) memcpy(h, b.data, KACT_SECTION_HEADER);
    kbuf_free(&b);
}

/* Gathers every section of the actor and writes the file. call: the checkpoint host call (NULL: the
 * instance is stopped). */
static shoal_status actor_write(shoal_actor *a, shoal_instance *inst, shoal_call *call, const char *path,
                                const char *reason, shoal_error *err) {
    shoal_status st = SHOAL_OK;
    kwsec s[SEC_LAST + 1];
    memset(s, 0, sizeof s);
    for (int i = 1; i <= SEC_LAST; i++) kbuf_init(&s[i].body);
    ssnap_run *runs = NULL;
    size_t nruns = 0;
    uint32_t pages = 0;
    struct iovec *iov = NULL;
    uint8_t *wasi = NULL, *nn = NULL;
    size_t wasi_len = 0, nn_len = 0;
    XXH3_state_t *h = NULL;

    if (a->cfg.tensors && shoal_tensor_ctx_live(a->cfg.tensors) > 0) {
        st = shoal_error_set(err, SHOAL_ERR_UNSUPPORTED,
                             "the guest holds %u shoal_tensor handles: device tensors are not carried by actor "
                             "snapshots (free them before the checkpoint)",
                             shoal_tensor_ctx_live(a->cfg.tensors));
        goto done;
    }
    /* On resume, checkpoint() returns CKPT_RESUMED to the guest. */
    shoal_val resumed = {.i32 = CKPT_RESUMED};
    if ((st = ssnap_save(inst, call, &resumed, call ? 1 : 0, &s[SEC_ENGINE].body, err)) != SHOAL_OK) goto done;
    if ((st = shoal_wasi_state_save(a->cfg.wasi, &wasi, &wasi_len, err)) != SHOAL_OK) goto done;
    if (a->cfg.nn && (st = shoal_nn_ctx_state_save(a->cfg.nn, &nn, &nn_len, err)) != SHOAL_OK) goto done;
    if ((st = ssnap_memory_runs(inst, &pages, &runs, &nruns, err)) != SHOAL_OK) goto done;

    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    kbuf *meta = &s[SEC_META].body;
    kbuf_u32(meta, KACT_META_VERSION);
    kbuf_str(meta, SHOAL_VERSION);
    kbuf_str(meta, reason);
    kbuf_u64(meta, (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec);
    kbuf_str(meta, a->device);
    kbuf_str(meta, a->memory_mode);
    kbuf_u32(meta, a->checkpoints + (call ? 1 : 0));

    kbuf *mem = &s[SEC_MEMORY].body;
    kbuf_u32(mem, KACT_MEMORY_VERSION);
    kbuf_u32(mem, pages);
    kbuf_u64(mem, nruns);
    for (size_t i = 0; i < nruns; i++) {
        kbuf_u64(mem, runs[i].off);
        kbuf_u64(mem, runs[i].len);
    }
    for (int i = 1; i <= SEC_LAST; i++)
        if (s[i].body.failed) {
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory building the actor file");
            goto done;
        }

    /* iov: file header, then per section its header, its bytes (and MEMORY's runs straight from guest
     * memory: no copy of the guest's pages is made). */
    size_t niov = 1 + 2 * SEC_LAST + nruns;
    if (niov > INT32_MAX || !(iov = calloc(niov, sizeof *iov)) || !(h = XXH3_createState())) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory building the actor file");
        goto done;
    }
    uint8_t file_header[16];
    memcpy(file_header, KACT_MAGIC, 8);
    uint32_t nsec = nn ? 6 : 5;
    for (int b = 0; b < 4; b++) {
        file_header[8 + b] = (uint8_t)(KACT_VERSION >> (8 * b));
        file_header[12 + b] = (uint8_t)(nsec >> (8 * b));
    }
    int n = 0;
    iov[n++] = (struct iovec){file_header, sizeof file_header};
    const uint8_t *membase = ssnap_memory_base(inst);
    for (uint32_t tag = 1; tag <= SEC_LAST; tag++) {
        const uint8_t *bytes = s[tag].body.data;
        size_t len = s[tag].body.len;
        if (tag == SEC_MODULE) {
            bytes = shoal_module_bytes(a->module, &len);
        } else if (tag == SEC_WASI) {
            bytes = wasi;
            len = wasi_len;
        } else if (tag == SEC_NN) {
            if (!nn) continue;
            bytes = nn;
            len = nn_len;
        }
        uint64_t total = len;
        XXH3_64bits_reset(h);
        XXH3_64bits_update(h, bytes, len);
        if (tag == SEC_MEMORY)
            for (size_t i = 0; i < nruns; i++) {
                XXH3_64bits_update(h, membase + runs[i].off, (size_t)runs[i].len);
                total += runs[i].len;
            }
        put_header(s[tag].header, tag, total, XXH3_64bits_digest(h));
        iov[n++] = (struct iovec){s[tag].header, KACT_SECTION_HEADER};
        iov[n++] = (struct iovec){(void *)bytes, len};
        if (tag == SEC_MEMORY)
            for (size_t i = 0; i < nruns; i++) iov[n++] = (struct iovec){(void *)(membase + runs[i].off), runs[i].len};
    }
    st = kfile_write_atomic(path, iov, n, err);
    if (st == SHOAL_OK && call) a->checkpoints++;
done:
    XXH3_freeState(h);
    free(iov);
    free(runs);
    free(wasi);
    free(nn);
    for (int i = 1; i <= SEC_LAST; i++) kbuf_free(&s[i].body);
    return st;
}

shoal_status shoal_actor_save(shoal_actor *a, shoal_instance *instance, const char *path, const char *reason,
                              shoal_error *err) {
    if (!a || !instance || !path) return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_actor_save: NULL argument");
    if (!ssnap_suspended(instance))
        return shoal_error_set(err, SHOAL_ERR_ARG,
                               "the guest is not stopped at a safe point (its last call did not end by an interrupt "
                               "or fuel exhaustion)");
    return actor_write(a, instance, NULL, path, reason ? reason : "stopped", err);
}

/* checkpoint() -> i32: 0 written (the guest goes on), 1 when the guest is resuming from it, < 0 an error
 * (last_error says which). */
static shoal_status actor_checkpoint(shoal_call *call, const shoal_val *args, shoal_val *res, void *user) {
    (void)args;
    shoal_actor *a = user;
    shoal_error e;
    memset(&e, 0, sizeof e);
    if (!a->checkpoint_path) {
        snprintf(a->last_error, sizeof a->last_error,
                 "no snapshot file: run the guest with --snapshot-on-exit FILE (or resume one)");
        res[0].i32 = CKPT_ENOPATH;
        return SHOAL_OK;
    }
    shoal_status st = actor_write(a, shoal_call_instance(call), call, a->checkpoint_path, "checkpoint", &e);
    if (st != SHOAL_OK) {
        snprintf(a->last_error, sizeof a->last_error, "%s", e.message);
        res[0].i32 = st == SHOAL_ERR_IO ? CKPT_EIO : CKPT_EUNSUPPORTED;
        return SHOAL_OK;
    }
    a->last_error[0] = 0;
    res[0].i32 = CKPT_WRITTEN;
    return SHOAL_OK;
}

/* last_error(buf, cap) -> i32: the message's length; copies min(len, cap) bytes to buf. */
static shoal_status actor_last_error_fn(shoal_call *call, const shoal_val *args, shoal_val *res, void *user) {
    shoal_actor *a = user;
    uint32_t len = (uint32_t)strlen(a->last_error);
    uint32_t cap = (uint32_t)args[1].i32, n = len < cap ? len : cap;
    if (n) {
        uint8_t *dst = shoal_call_mem(call, (uint32_t)args[0].i32, n);
        if (!dst) {
            res[0].i32 = -1;
            return SHOAL_OK;
        }
        memcpy(dst, a->last_error, n);
    }
    res[0].i32 = (int32_t)len;
    return SHOAL_OK;
}

shoal_status shoal_actor_add_imports(shoal_actor *a, shoal_imports *imports, shoal_error *err) {
    shoal_status st = shoal_imports_add_func(imports, "shoal_actor", "checkpoint", ":i", actor_checkpoint, a, err);
    if (st == SHOAL_OK)
        st = shoal_imports_add_func(imports, "shoal_actor", "last_error", "ii:i", actor_last_error_fn, a, err);
    return st;
}

/* ---- reading ------------------------------------------------------------------------------------ */

struct shoal_actor_file {
    int fd;
    char *path;
    uint64_t file_size;
    uint8_t *sec[SEC_LAST + 1]; /* verified payloads (MEMORY: only its run table) */
    size_t sec_len[SEC_LAST + 1];
    uint64_t mem_data_off, mem_data_len, mem_sum; /* where MEMORY's bytes lie in the file, their checksum */
    uint32_t mem_pages;
    uint64_t nruns;
    shoal_actor_info info;
    char *reason, *shoal_version, *device, *memory_mode;
};

void shoal_actor_file_close(shoal_actor_file *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    for (int i = 0; i <= SEC_LAST; i++) free(f->sec[i]);
    free(f->path);
    free(f->reason);
    free(f->shoal_version);
    free(f->device);
    free(f->memory_mode);
    free(f);
}

static shoal_status read_at(shoal_actor_file *f, void *buf, size_t n, uint64_t off, shoal_error *err) {
    uint8_t *p = buf;
    while (n) {
        ssize_t r = pread(f->fd, p, n > (1u << 30) ? (1u << 30) : n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return shoal_error_set(err, SHOAL_ERR_IO, "%s: read failed: %s", f->path, strerror(errno));
        if (r == 0) return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: truncated actor file", f->path);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return SHOAL_OK;
}

static shoal_status parse_meta(shoal_actor_file *f, shoal_error *err) {
    kread r;
    kread_init(&r, f->sec[SEC_META], f->sec_len[SEC_META]);
    uint32_t v = kread_u32(&r);
    if (!r.failed && v != KACT_META_VERSION)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: metadata version %u (this Shoal reads %u)", f->path, v,
                               KACT_META_VERSION);
    f->shoal_version = kread_strdup(&r);
    f->reason = kread_strdup(&r);
    f->info.created_unix_ns = kread_u64(&r);
    f->device = kread_strdup(&r);
    f->memory_mode = kread_strdup(&r);
    f->info.checkpoints = kread_u32(&r);
    if (r.failed || !f->shoal_version || !f->reason || !f->device || !f->memory_mode)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: corrupt metadata section", f->path);
    f->info.shoal_version = f->shoal_version;
    f->info.reason = f->reason;
    f->info.device = f->device;
    f->info.memory_mode = f->memory_mode;
    return SHOAL_OK;
}

/* MEMORY: the run table was read into sec[SEC_MEMORY]; the data stays in the file. */
static shoal_status parse_memory(shoal_actor_file *f, shoal_error *err) {
    kread r;
    kread_init(&r, f->sec[SEC_MEMORY], f->sec_len[SEC_MEMORY]);
    uint32_t v = kread_u32(&r);
    f->mem_pages = kread_u32(&r);
    f->nruns = kread_u64(&r);
    if (r.failed || v != KACT_MEMORY_VERSION || f->mem_pages > 65536 || f->nruns > kread_left(&r) / 16)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: corrupt memory section header", f->path);
    uint64_t total = 0, end = 0, mem_size = (uint64_t)f->mem_pages * 65536;
    for (uint64_t i = 0; i < f->nruns; i++) {
        uint64_t off = kread_u64(&r), len = kread_u64(&r);
        if (off < end || off > mem_size || len > mem_size - off || len == 0)
            return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: corrupt memory run table", f->path);
        end = off + len;
        total += len;
    }
    if (kread_left(&r) || total != f->mem_data_len)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: the memory section's size does not match its runs", f->path);
    f->info.memory_pages = f->mem_pages;
    f->info.memory_bytes_saved = total;
    return SHOAL_OK;
}

shoal_status shoal_actor_file_open(const char *path, shoal_actor_file **out, shoal_error *err) {
    if (!path || !out) return shoal_error_set(err, SHOAL_ERR_ARG, "shoal_actor_file_open: NULL argument");
    *out = NULL;
    shoal_status st = SHOAL_OK;
    shoal_actor_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        if (f) f->fd = -1;
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (f->fd < 0 || fstat(f->fd, &sb) < 0) {
        st = shoal_error_set(err, SHOAL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = shoal_error_set(err, SHOAL_ERR_ARG, "%s is not a regular file", path);
        goto fail;
    }
    f->file_size = (uint64_t)sb.st_size;
    f->info.file_bytes = f->file_size;
    uint8_t hdr[16];
    if (f->file_size < sizeof hdr || (st = read_at(f, hdr, sizeof hdr, 0, err)) != SHOAL_OK || memcmp(hdr, KACT_MAGIC, 8)) {
        if (st == SHOAL_OK) st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s is not a Shoal actor file", path);
        goto fail;
    }
    kread r;
    kread_init(&r, hdr + 8, 8);
    uint32_t version = kread_u32(&r), nsec = kread_u32(&r);
    if (version != KACT_VERSION) {
        st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: actor file version %u (this Shoal reads %u)", path, version,
                             KACT_VERSION);
        goto fail;
    }
    if (nsec > KACT_MAX_SECTIONS) {
        st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: corrupt header (%u sections)", path, nsec);
        goto fail;
    }
    uint64_t off = sizeof hdr;
    for (uint32_t i = 0; i < nsec; i++) {
        uint8_t sh[KACT_SECTION_HEADER];
        if ((st = read_at(f, sh, sizeof sh, off, err)) != SHOAL_OK) goto fail;
        kread_init(&r, sh, sizeof sh);
        uint32_t tag = kread_u32(&r), reserved = kread_u32(&r);
        uint64_t len = kread_u64(&r), sum = kread_u64(&r);
        off += KACT_SECTION_HEADER;
        if (tag < 1 || tag > SEC_LAST || reserved || f->sec[tag] || len > f->file_size - off) {
            st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: corrupt or truncated section %u (tag %u)", path, i, tag);
            goto fail;
        }
        size_t keep = (size_t)len;
        if (tag == SEC_MEMORY) { /* keep the header and run table; the data is hashed when it is loaded */
            uint8_t head[16];
            if (len < 16 || (st = read_at(f, head, 16, off, err)) != SHOAL_OK) {
                if (st == SHOAL_OK) st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: corrupt memory section", path);
                goto fail;
            }
            kread hr;
            kread_init(&hr, head, 16);
            kread_u32(&hr);
            kread_u32(&hr);
            uint64_t nruns = kread_u64(&hr);
            if (nruns > (len - 16) / 16) {
                st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: corrupt memory section", path);
                goto fail;
            }
            keep = (size_t)(16 + nruns * 16);
            f->mem_data_off = off + keep;
            f->mem_data_len = len - keep;
            f->mem_sum = sum;
        }
        f->sec[tag] = malloc(keep ? keep : 1);
        if (!f->sec[tag]) {
            st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory reading %s", path);
            goto fail;
        }
        f->sec_len[tag] = keep;
        if ((st = read_at(f, f->sec[tag], keep, off, err)) != SHOAL_OK) goto fail;
        if (tag != SEC_MEMORY && XXH3_64bits(f->sec[tag], keep) != sum) {
            st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: the %s section is corrupt (checksum mismatch)", path,
                                 sec_names[tag]);
            goto fail;
        }
        off += len;
    }
    if (off != f->file_size) {
        st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: %llu bytes after the last section", path,
                             (unsigned long long)(f->file_size - off));
        goto fail;
    }
    for (uint32_t tag = SEC_META; tag <= SEC_WASI; tag++)
        if (!f->sec[tag]) {
            st = shoal_error_set(err, SHOAL_ERR_FORMAT, "%s: the %s section is missing", path, sec_names[tag]);
            goto fail;
        }
    if ((st = parse_meta(f, err)) != SHOAL_OK || (st = parse_memory(f, err)) != SHOAL_OK) goto fail;
    *out = f;
    return SHOAL_OK;
fail:
    shoal_actor_file_close(f);
    return st;
}

void shoal_actor_file_info(const shoal_actor_file *f, shoal_actor_info *out) { *out = f->info; }

shoal_status shoal_actor_file_module(const shoal_actor_file *f, shoal_module **out, shoal_error *err) {
    shoal_status st = shoal_module_load(f->sec[SEC_MODULE], f->sec_len[SEC_MODULE], out, err);
    if (st != SHOAL_OK && err) {
        char msg[sizeof err->message];
        snprintf(msg, sizeof msg, "%s", err->message);
        shoal_error_set(err, st, "%s: the saved module: %s", f->path, msg);
    }
    return st;
}

const uint8_t *shoal_actor_file_wasi(const shoal_actor_file *f, size_t *len) {
    *len = f->sec_len[SEC_WASI];
    return f->sec[SEC_WASI];
}

const uint8_t *shoal_actor_file_nn(const shoal_actor_file *f, size_t *len) {
    *len = f->sec[SEC_NN] ? f->sec_len[SEC_NN] : 0;
    return f->sec[SEC_NN];
}

/* Reads the memory runs straight into the instance's memory, hashing as it goes. */
static shoal_status load_memory(const shoal_actor_file *f, shoal_instance *inst, shoal_error *err) {
    shoal_status st = ssnap_memory_prepare(inst, f->mem_pages, err);
    if (st != SHOAL_OK) return st;
    XXH3_state_t *h = XXH3_createState();
    if (!h) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    XXH3_64bits_reset(h);
    XXH3_64bits_update(h, f->sec[SEC_MEMORY], f->sec_len[SEC_MEMORY]);
    uint8_t *base = ssnap_memory_base(inst);
    kread r;
    kread_init(&r, f->sec[SEC_MEMORY] + 16, f->sec_len[SEC_MEMORY] - 16);
    uint64_t pos = f->mem_data_off;
    for (uint64_t i = 0; i < f->nruns && st == SHOAL_OK; i++) {
        uint64_t off = kread_u64(&r), len = kread_u64(&r);
        st = read_at((shoal_actor_file *)f, base + off, (size_t)len, pos, err);
        if (st == SHOAL_OK) XXH3_64bits_update(h, base + off, (size_t)len);
        pos += len;
    }
    if (st == SHOAL_OK && XXH3_64bits_digest(h) != f->mem_sum)
        st = shoal_error_set(err, SHOAL_ERR_FORMAT, "the memory section is corrupt (checksum mismatch)");
    XXH3_freeState(h);
    return st;
}

shoal_status shoal_actor_file_instantiate(const shoal_actor_file *f, const shoal_module *module,
                                          const shoal_imports *imports, const shoal_instance_config *config,
                                          shoal_instance **out, shoal_error *err) {
    *out = NULL;
    shoal_instance *inst = NULL;
    shoal_status st = ssnap_instantiate(module, imports, config, &inst, err);
    if (st != SHOAL_OK) return st;
    if ((st = load_memory(f, inst, err)) != SHOAL_OK ||
        (st = ssnap_load(inst, f->sec[SEC_ENGINE], f->sec_len[SEC_ENGINE], err)) != SHOAL_OK) {
        shoal_instance_free(inst);
        return st;
    }
    *out = inst;
    return SHOAL_OK;
}

shoal_status shoal_actor_resume(shoal_instance *instance, int32_t *exit_code, shoal_error *err) {
    shoal_error local;
    shoal_error *e = err ? err : &local;
    memset(e, 0, sizeof *e);
    e->func_index = SHOAL_NO_FUNC;
    *exit_code = 0;
    shoal_status st = ssnap_continue(instance, e);
    if (st == SHOAL_ERR_EXIT) {
        *exit_code = e->exit_code;
        return SHOAL_OK;
    }
    return st;
}
