/*
 * ssnap.h: the engine's part of an actor snapshot (src/snapshot/kactor.c writes the file): an instance's
 * own globals, tables, dropped segments, its stopped call stack (frame records and value slots), and its
 * linear memory as runs of non-zero bytes.
 *
 * A guest can be saved in two places, both at an instruction boundary of Wasm code:
 *   - inside a host function that Wasm code called (the actor checkpoint): on resume that call returns
 *     the results given to ssnap_save, as if the host function had just returned them;
 *   - after shoal_instance_interrupt or fuel exhaustion stopped a top-level call (the call returned
 *     SHOAL_ERR_TRAP with SHOAL_TRAP_INTERRUPTED / SHOAL_TRAP_FUEL_EXHAUSTED): on resume the next
 *     instruction runs as if the stop never happened.
 * Refused (SHOAL_ERR_UNSUPPORTED, saying why) when the stop is below another host function's C frame (a
 * host function that called back into Wasm), when the module imports a memory, table or global, has more
 * than one memory, or keeps references in frames (their values are host pointers).
 *
 * Code positions are saved as offsets into the translated code, which is only meaningful to a build of
 * Shoal that translates the module identically: the state carries a fingerprint of the translation
 * (ssnap_fingerprint), and a resume with another one is refused.
 */
#ifndef SSNAP_H
#define SSNAP_H

#include "kbuf.h"
#include "shoal.h"

/* A run of memory bytes worth saving: [off, off + len) of the linear memory. */
typedef struct ssnap_run {
    uint64_t off, len;
} ssnap_run;

/* Saves inst's engine state (not its memory). call: the host call now running (the checkpoint), whose
 * results on resume are results[0 .. nresults); NULL: the instance is suspended. */
shoal_status ssnap_save(shoal_instance *inst, shoal_call *call, const shoal_val *results, uint32_t nresults,
                        kbuf *out, shoal_error *err);
/* The memory to save: page count and the runs of 4 KiB pages holding a non-zero byte (merged; malloc'd
 * array, free() it). Pages the OS never gave the process (mincore) are skipped without being read. */
shoal_status ssnap_memory_runs(shoal_instance *inst, uint32_t *pages, ssnap_run **runs, size_t *nruns,
                               shoal_error *err);
uint8_t *ssnap_memory_base(shoal_instance *inst);

/* Instantiates module for a resume: imports linked, memories/tables/globals created, but neither segments
 * nor the start function run (the snapshot supplies their effects). */
shoal_status ssnap_instantiate(const shoal_module *module, const shoal_imports *imports,
                               const shoal_instance_config *config, shoal_instance **out, shoal_error *err);
/* Grows memory 0 of a fresh instance to pages (from the snapshot). */
shoal_status ssnap_memory_prepare(shoal_instance *inst, uint32_t pages, shoal_error *err);
/* Loads saved engine state into a fresh instance (ssnap_instantiate). SHOAL_ERR_FORMAT for a corrupt or
 * truncated state, SHOAL_ERR_ARG for one of another module or translation. */
shoal_status ssnap_load(shoal_instance *inst, const uint8_t *p, size_t len, shoal_error *err);
/* Continues the loaded stop until the root call returns, traps, or stops again. Like shoal_call_export. */
shoal_status ssnap_continue(shoal_instance *inst, shoal_error *err);
/* Whether inst was stopped resumably by its last call (interrupt / fuel at a safe point). */
bool ssnap_suspended(shoal_instance *inst);

/* The translation fingerprint of a module (see above). */
uint64_t ssnap_fingerprint(const shoal_module *module);

#endif
