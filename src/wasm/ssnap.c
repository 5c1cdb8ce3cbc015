/*
 * ssnap.c: the engine's part of an actor snapshot (see ssnap.h).
 *
 * State bytes (kbuf encoding), version 1, in this order:
 *   u32 version, u64 translation fingerprint,
 *   u32 nfuncs, nglobals, ntables, nelems, ndatas       (of the module: a cheap cross-check)
 *   own globals (index nglobal_imports ..): u8 value type, u64 bits (a funcref as its function index,
 *                                            null as UINT64_MAX; a non-null externref is refused)
 *   own tables: u32 size, then size x u32 (function index + 1, 0 = null)
 *   u8 per element segment, u8 per data segment: 1 = dropped
 *   u8 stop kind (1 suspended, 2 inside a host call)
 *   u32 depth, then depth frame records: u32 function index, u32 return position, u64 frame slot offset
 *   u32 current function, u32 position, u64 frame slot offset
 *   kind 2: u32 host function index, u64 argument slot offset, u32 nresults, nresults x u64 (the results
 *           the host call returns on resume)
 *   u64 nslots, nslots x u64 (the value slots from the bottom of the stack to the top of the current frame)
 * Positions are offsets, in 32-bit code units, into the function's translated code; frame offsets are slot
 * indices from the bottom of the execution stack.
 *
 * Loading checks everything an interpreter would otherwise trust: every position is an instruction start
 * (the translator's position map and a known handler address), every frame lies inside the stack, every
 * function index names a function of the right kind. A state that passes cannot make the interpreter touch
 * memory outside the instance's stack, memory, tables and globals.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "sexec.h"
#include "ssnap.h"

#define SSNAP_VERSION 1u
#define SSNAP_PAGE 4096u
#define NULL_REF UINT64_MAX

enum { STOP_SUSPENDED = 1, STOP_HOST_CALL = 2 };

/* ---- translation fingerprint ------------------------------------------------------------------- */

uint64_t ssnap_fingerprint(const shoal_module *module) {
    const SModule *m = &module->m;
    XXH3_state_t *h = XXH3_createState();
    if (!h) return 0;
    XXH3_64bits_reset(h);
    uint32_t nops = SO_COUNT;
    XXH3_64bits_update(h, &nops, sizeof nops);
    for (uint32_t i = 0; i < SO_COUNT; i++) XXH3_64bits_update(h, sop_names[i], strlen(sop_names[i]) + 1);
    for (uint32_t i = m->nfunc_imports; i < m->nfuncs; i++) {
        const SCode *c = m->funcs[i].compiled;
        if (!c) continue;
        uint32_t shape[5] = {c->ncode, c->frame_slots, c->nparams, c->nlocals, c->npcmap};
        XXH3_64bits_update(h, shape, sizeof shape);
        XXH3_64bits_update(h, c->pcmap, (size_t)c->npcmap * 2 * sizeof *c->pcmap);
    }
    uint64_t v = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return v;
}

/* ---- saving ------------------------------------------------------------------------------------- */

/* The function index of f in inst, or UINT32_MAX when f belongs to another instance. */
static uint32_t func_index_of(const shoal_instance *inst, const SFuncInst *f) {
    if (!f || f->inst != inst || f->index >= inst->module->m.nfuncs || inst->funcs[f->index] != f) return UINT32_MAX;
    return f->index;
}

static shoal_status check_saveable(const shoal_instance *inst, shoal_error *err) {
    const SModule *m = &inst->module->m;
    if (m->nmem_imports || m->ntable_imports || m->nglobal_imports)
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED,
                               "the module imports a memory, table or global: actor snapshots carry only "
                               "modules whose state is their own");
    if (m->nmems > 1)
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "the module has %u memories: actor snapshots carry one",
                               m->nmems);
    if (m->refs_in_frames)
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED,
                               "the module keeps references (funcref/externref) in locals or on the operand "
                               "stack: actor snapshots cannot carry them");
    return SHOAL_OK;
}

static uint64_t code_pos(const SFuncInst *f, const uint32_t *ip) { return (uint64_t)(ip - f->code->code); }

shoal_status ssnap_save(shoal_instance *inst, shoal_call *call, const shoal_val *results, uint32_t nresults,
                        kbuf *out, shoal_error *err) {
    if (!inst || !out) return shoal_error_set(err, SHOAL_ERR_ARG, "ssnap_save: NULL argument");
    shoal_status st = check_saveable(inst, err);
    if (st != SHOAL_OK) return st;
    const SModule *m = &inst->module->m;
    SExec *ex = call ? call->exec : inst->exec;
    if (call) {
        if (!ex || call->inst != inst || ex->root != inst)
            return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "the host call does not belong to this instance");
        if (ex->host_depth != 1 || !ex->at_func || !ex->at_func->code)
            return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED,
                                   "the guest is inside a host function that called back into Wasm: only a "
                                   "call made directly by Wasm code can be snapshotted");
        if (!ex->at_callee || nresults != ex->at_callee->type->nresults)
            return shoal_error_set(err, SHOAL_ERR_ARG, "wrong number of results for the host call on resume");
    } else {
        if (!ex || !ex->suspended)
            return shoal_error_set(err, SHOAL_ERR_ARG, "the instance is neither stopped nor in a host call");
        if (!ex->resumable)
            return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED,
                                   "the guest was stopped inside a call made by a host function: it cannot be "
                                   "snapshotted there");
    }

    kbuf_u32(out, SSNAP_VERSION);
    kbuf_u64(out, ssnap_fingerprint(inst->module));
    kbuf_u32(out, m->nfuncs);
    kbuf_u32(out, m->nglobals);
    kbuf_u32(out, m->ntables);
    kbuf_u32(out, m->nelems);
    kbuf_u32(out, m->ndatas);

    for (uint32_t i = m->nglobal_imports; i < m->nglobals; i++) {
        const SGlobal *g = inst->globals[i];
        uint64_t bits = g->val.u64;
        if (g->type == SHOAL_FUNCREF) {
            bits = g->val.ref ? func_index_of(inst, g->val.ref) : NULL_REF;
            if (bits == UINT32_MAX)
                return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "global %u holds another instance's function", i);
        } else if (g->type == SHOAL_EXTERNREF) {
            if (g->val.ref)
                return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "global %u holds a host reference (externref)", i);
            bits = NULL_REF;
        }
        kbuf_u8(out, (uint8_t)g->type);
        kbuf_u64(out, bits);
    }
    for (uint32_t i = m->ntable_imports; i < m->ntables; i++) {
        const STable *t = inst->tables[i];
        kbuf_u32(out, t->size);
        for (uint32_t k = 0; k < t->size; k++) {
            uint32_t v = 0;
            if (t->elems[k]) {
                if (t->type != SHOAL_FUNCREF)
                    return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "table %u holds host references", i);
                uint32_t fi = func_index_of(inst, t->elems[k]);
                if (fi == UINT32_MAX)
                    return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED,
                                           "table %u element %u is another instance's function", i, k);
                v = fi + 1;
            }
            kbuf_u32(out, v);
        }
    }
    for (uint32_t i = 0; i < m->nelems; i++) kbuf_u8(out, inst->elems[i].count == 0 && m->elems[i].count != 0);
    for (uint32_t i = 0; i < m->ndatas; i++) kbuf_u8(out, inst->data_sizes[i] == 0 && m->datas[i].size != 0);

    kbuf_u8(out, call ? STOP_HOST_CALL : STOP_SUSPENDED);
    kbuf_u32(out, ex->at_depth);
    for (uint32_t d = 0; d < ex->at_depth; d++) {
        const SFrame *fr = &ex->frames[d];
        uint32_t fi = func_index_of(inst, fr->func);
        if (fi == UINT32_MAX || !fr->func->code)
            return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "a frame of the stopped stack is another instance's");
        kbuf_u32(out, fi);
        kbuf_u32(out, (uint32_t)code_pos(fr->func, fr->ret_ip));
        kbuf_u64(out, (uint64_t)(fr->fp - ex->slots));
    }
    uint32_t cur = func_index_of(inst, ex->at_func);
    if (cur == UINT32_MAX)
        return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "the stopped function is another instance's");
    kbuf_u32(out, cur);
    kbuf_u32(out, (uint32_t)code_pos(ex->at_func, ex->at_ip));
    kbuf_u64(out, (uint64_t)(ex->at_fp - ex->slots));
    if (call) {
        uint32_t hi = func_index_of(inst, ex->at_callee);
        if (hi == UINT32_MAX) return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "the host function is another instance's");
        kbuf_u32(out, hi);
        kbuf_u64(out, (uint64_t)(ex->at_args - ex->slots));
        kbuf_u32(out, nresults);
        for (uint32_t k = 0; k < nresults; k++) kbuf_u64(out, results[k].i64);
    }
    uint64_t nslots = (uint64_t)(ex->at_fp - ex->slots) + ex->at_func->code->frame_slots;
    kbuf_u64(out, nslots);
    uint8_t *dst = kbuf_extend(out, (size_t)nslots * 8);
    if (dst)
        for (uint64_t k = 0; k < nslots; k++)
            for (int b = 0; b < 8; b++) dst[k * 8 + b] = (uint8_t)(ex->slots[k].u64 >> (8 * b));
    if (out->failed) return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory saving the engine state");
    return SHOAL_OK;
}

bool ssnap_suspended(shoal_instance *inst) { return inst && inst->exec && inst->exec->suspended; }

uint8_t *ssnap_memory_base(shoal_instance *inst) { return inst->mem0->base; }

static bool page_is_zero(const uint8_t *p) {
    const uint64_t *w = (const uint64_t *)(const void *)p;
    uint64_t acc = 0;
    for (size_t i = 0; i < SSNAP_PAGE / 8; i++) acc |= w[i];
    return acc == 0;
}

shoal_status ssnap_memory_runs(shoal_instance *inst, uint32_t *pages, ssnap_run **runs, size_t *nruns,
                               shoal_error *err) {
    SMemory *mem = inst->mem0;
    *pages = mem->pages;
    *runs = NULL;
    *nruns = 0;
    size_t npg = (size_t)(mem->size / SSNAP_PAGE), cap = 0, n = 0;
    ssnap_run *r = NULL;
    /* Residency in chunks: a page never touched reads as zero without being faulted in. Memories that
     * mincore does not describe (device-managed ones) are scanned whole. */
    enum { CHUNK = 4096 };
    unsigned char resident[CHUNK];
    long os_page = sysconf(_SC_PAGESIZE);
    bool use_mincore = os_page == (long)SSNAP_PAGE && ((uintptr_t)mem->base % SSNAP_PAGE) == 0;
    for (size_t base = 0; base < npg; base += CHUNK) {
        size_t cnt = npg - base < CHUNK ? npg - base : CHUNK;
        bool known = use_mincore && mincore(mem->base + base * SSNAP_PAGE, cnt * SSNAP_PAGE, resident) == 0;
        for (size_t k = 0; k < cnt; k++) {
            if (known && !(resident[k] & 1)) continue;
            uint64_t off = (uint64_t)(base + k) * SSNAP_PAGE;
            if (page_is_zero(mem->base + off)) continue;
            if (n && r[n - 1].off + r[n - 1].len == off) {
                r[n - 1].len += SSNAP_PAGE;
                continue;
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                ssnap_run *nr = realloc(r, nc * sizeof *nr);
                if (!nr) {
                    free(r);
                    return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory listing memory pages");
                }
                r = nr;
                cap = nc;
            }
            r[n].off = off;
            r[n].len = SSNAP_PAGE;
            n++;
        }
    }
    *runs = r;
    *nruns = n;
    return SHOAL_OK;
}

/* ---- loading ------------------------------------------------------------------------------------ */

shoal_status ssnap_instantiate(const shoal_module *module, const shoal_imports *imports,
                               const shoal_instance_config *config, shoal_instance **out, shoal_error *err) {
    return sinst_instantiate(module, imports, config, false, out, err);
}

shoal_status ssnap_memory_prepare(shoal_instance *inst, uint32_t pages, shoal_error *err) {
    SMemory *mem = inst->mem0;
    if (pages < mem->pages)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "snapshot memory of %u pages is below the module's minimum %u",
                               pages, mem->pages);
    if (pages > mem->pages && (!inst->module->m.nmems || smem_grow(mem, pages - mem->pages) < 0))
        return shoal_error_set(err, SHOAL_ERR_ARG,
                               "the snapshot's memory has %u pages (%.1f MiB), more than this instance may have "
                               "(%u pages: see --max-memory)",
                               pages, pages / 16.0, mem->max_pages);
    return SHOAL_OK;
}

/* Whether pos is the start of an instruction of c: in the position map and holding a handler address. */
static bool instr_start(const SCode *c, uint64_t pos) {
    if (pos + 2 > c->ncode) return false;
    uint32_t lo = 0, hi = c->npcmap;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->pcmap[2 * mid] < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == c->npcmap || c->pcmap[2 * lo] != pos) return false;
    const void *h;
    memcpy(&h, c->code + pos, sizeof h);
    const void *const *table = sinterp_handlers();
    for (uint32_t i = 0; i < SO_COUNT; i++)
        if (table[i] == h) return true;
    return false;
}

/* A Wasm function of inst by index, or NULL. */
static SFuncInst *wasm_func(shoal_instance *inst, uint32_t index) {
    if (index >= inst->module->m.nfuncs) return NULL;
    SFuncInst *f = inst->funcs[index];
    return f && f->code ? f : NULL;
}

/* Reads a frame position (function, code position, slot offset) and checks it. */
static bool read_position(kread *r, shoal_instance *inst, SExec *ex, SFuncInst **f, const uint32_t **ip, SSlot **fp) {
    uint32_t fi = kread_u32(r), pos = kread_u32(r);
    uint64_t off = kread_u64(r);
    if (r->failed) return false;
    SFuncInst *fn = wasm_func(inst, fi);
    if (!fn || !instr_start(fn->code, pos)) return false;
    uint64_t cap = (uint64_t)(ex->slots_end - ex->slots);
    if (off > cap || fn->code->frame_slots > cap - off) return false;
    *f = fn;
    *ip = fn->code->code + pos;
    *fp = ex->slots + off;
    return true;
}

shoal_status ssnap_load(shoal_instance *inst, const uint8_t *p, size_t len, shoal_error *err) {
    const SModule *m = &inst->module->m;
    shoal_status st = check_saveable(inst, err);
    if (st != SHOAL_OK) return st;
    SExec *ex;
    if ((st = sinst_exec_for(inst, &ex, err)) != SHOAL_OK) return st;
    kread r;
    kread_init(&r, p, len);
    const char *bad = NULL;
    uint32_t version = kread_u32(&r);
    uint64_t fp_saved = kread_u64(&r);
    if (!r.failed && version != SSNAP_VERSION)
        return shoal_error_set(err, SHOAL_ERR_FORMAT, "engine state version %u (this Shoal reads %u)", version,
                               SSNAP_VERSION);
    if (!r.failed && fp_saved != ssnap_fingerprint(inst->module))
        return shoal_error_set(err, SHOAL_ERR_ARG,
                               "the snapshot was made by a Shoal that translates this module differently "
                               "(fingerprint %016llx, this one %016llx): resume it with the same Shoal version",
                               (unsigned long long)fp_saved, (unsigned long long)ssnap_fingerprint(inst->module));
    uint32_t counts[5] = {kread_u32(&r), kread_u32(&r), kread_u32(&r), kread_u32(&r), kread_u32(&r)};
    if (!r.failed && (counts[0] != m->nfuncs || counts[1] != m->nglobals || counts[2] != m->ntables ||
                      counts[3] != m->nelems || counts[4] != m->ndatas))
        return shoal_error_set(err, SHOAL_ERR_ARG, "the engine state is of another module");

    for (uint32_t i = m->nglobal_imports; i < m->nglobals && !r.failed; i++) {
        SGlobal *g = inst->globals[i];
        uint8_t type = kread_u8(&r);
        uint64_t bits = kread_u64(&r);
        if (r.failed) break;
        if (type != g->type) {
            bad = "a global's type differs from the module's";
            goto fail;
        }
        if (g->type == SHOAL_FUNCREF) {
            if (bits != NULL_REF && bits >= m->nfuncs) {
                bad = "a global refers to a function that does not exist";
                goto fail;
            }
            g->val.ref = bits == NULL_REF ? NULL : inst->funcs[bits];
        } else if (g->type == SHOAL_EXTERNREF) {
            g->val.ref = NULL;
        } else {
            g->val.u64 = bits;
        }
    }
    for (uint32_t i = m->ntable_imports; i < m->ntables && !r.failed; i++) {
        STable *t = inst->tables[i];
        uint32_t size = kread_u32(&r);
        if (r.failed) break;
        if (size < t->size || (uint64_t)size * 4 > kread_left(&r)) {
            bad = "a table's size is out of range";
            goto fail;
        }
        if (size > t->size && stable_grow(t, size - t->size, NULL) < 0)
            return shoal_error_set(err, SHOAL_ERR_ARG, "table %u cannot grow to the snapshot's %u elements", i, size);
        for (uint32_t k = 0; k < size; k++) {
            uint32_t v = kread_u32(&r);
            if (v > m->nfuncs || (v && t->type != SHOAL_FUNCREF)) {
                bad = "a table element refers to a function that does not exist";
                goto fail;
            }
            t->elems[k] = v ? inst->funcs[v - 1] : NULL;
        }
    }
    for (uint32_t i = 0; i < m->nelems; i++)
        if (kread_u8(&r)) inst->elems[i].count = 0;
    for (uint32_t i = 0; i < m->ndatas; i++)
        if (kread_u8(&r)) inst->data_sizes[i] = 0;

    uint8_t kind = kread_u8(&r);
    uint32_t depth = kread_u32(&r);
    if (r.failed) goto truncated;
    if ((kind != STOP_SUSPENDED && kind != STOP_HOST_CALL) || depth >= ex->max_depth) {
        bad = "the stop kind or call depth is out of range";
        goto fail;
    }
    for (uint32_t d = 0; d < depth; d++) {
        SFrame *fr = &ex->frames[d];
        if (!read_position(&r, inst, ex, &fr->func, &fr->ret_ip, &fr->fp)) goto bad_position;
    }
    if (!read_position(&r, inst, ex, &ex->at_func, &ex->at_ip, &ex->at_fp)) goto bad_position;
    ex->at_depth = depth;
    ex->at_args = NULL;
    ex->at_callee = NULL;
    uint64_t top = (uint64_t)(ex->at_fp - ex->slots) + ex->at_func->code->frame_slots;
    shoal_val results[16];
    uint32_t nresults = 0;
    if (kind == STOP_HOST_CALL) {
        uint32_t hi = kread_u32(&r);
        uint64_t args = kread_u64(&r);
        nresults = kread_u32(&r);
        if (r.failed) goto truncated;
        SFuncInst *h = hi < m->nfuncs ? inst->funcs[hi] : NULL;
        if (!h || h->code || nresults != h->type->nresults || nresults > 16) {
            bad = "the pending host call is not a host function of the module";
            goto fail;
        }
        uint32_t span = h->type->nparams > nresults ? h->type->nparams : nresults;
        if (args < (uint64_t)(ex->at_fp - ex->slots) || args + span > top) {
            bad = "the pending host call's arguments lie outside the caller's frame";
            goto fail;
        }
        for (uint32_t k = 0; k < nresults; k++) results[k].i64 = (int64_t)kread_u64(&r);
        ex->at_callee = h;
        ex->at_args = ex->slots + args;
    }
    uint64_t nslots = kread_u64(&r);
    if (r.failed) goto truncated;
    if (nslots != top) {
        bad = "the value slots do not match the stopped frames";
        goto fail;
    }
    const uint8_t *src = kread_bytes(&r, (size_t)nslots * 8);
    if (!src) goto truncated;
    for (uint64_t k = 0; k < nslots; k++) {
        uint64_t v = 0;
        for (int b = 0; b < 8; b++) v |= (uint64_t)src[k * 8 + b] << (8 * b);
        ex->slots[k].u64 = v;
    }
    /* The host call returns its results into its argument window, as call_host would have. */
    for (uint32_t k = 0; k < nresults; k++) ex->at_args[k].i64 = results[k].i64;
    if (kread_left(&r)) {
        bad = "trailing bytes after the engine state";
        goto fail;
    }
    ex->suspended = false;
    return SHOAL_OK;

bad_position:
    if (r.failed) goto truncated;
    bad = "a saved code position or frame is not valid for this module";
fail:
    ex->at_func = NULL;
    return shoal_error_set(err, SHOAL_ERR_FORMAT, "corrupt engine state: %s", bad);
truncated:
    ex->at_func = NULL;
    return shoal_error_set(err, SHOAL_ERR_FORMAT, "truncated engine state");
}

shoal_status ssnap_continue(shoal_instance *inst, shoal_error *err) { return sexec_resume(inst, err); }
