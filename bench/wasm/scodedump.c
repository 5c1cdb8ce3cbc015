/*
 * scodedump.c: prints the internal code Shoal's translator made of one function, one instruction a line:
 * code unit, Wasm byte offset, operation name (sops.h) and its operand units. RESULTS.md's account of
 * the hot loops was read from this output.
 *
 * usage: bench_wasm_scodedump module.wasm function-name   (the name from the module's name section)
 *
 * It reads engine internals (sexec.h) and the translator's encoding: each instruction begins with its
 * handler's address in SCODEDUMP_HANDLER_UNITS 32-bit units, low half first (scompile.c's OPW). Built
 * only on request (`ninja bench_wasm_scodedump`), so a change of that encoding cannot break the build;
 * if the names come out as "?", update the constant.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sexec.h"
#include "shoal.h"

#define SCODEDUMP_HANDLER_UNITS 2

static const char *scodedump_name(const void *const *handlers, const uint32_t *unit) {
    uint64_t addr = unit[0];
    if (SCODEDUMP_HANDLER_UNITS == 2)
        addr |= (uint64_t)unit[1] << 32;
    for (int op = 0; op < SO_COUNT; op++)
        if ((uint64_t)(uintptr_t)handlers[op] == addr)
            return sop_names[op];
    return "?";
}

static void scodedump_func(const SFunc *f, uint32_t index) {
    const SCode *c = f->compiled;
    const void *const *handlers = sinterp_handlers();
    printf("func %" PRIu32 " %s: %" PRIu32 " units, %" PRIu32 " params, %" PRIu32 " locals, %" PRIu32
           " frame slots, %" PRIu32 " instructions\n",
           index, f->name, c->ncode, c->nparams, c->nlocals, c->frame_slots, c->npcmap);
    for (uint32_t k = 0; k < c->npcmap; k++) {
        uint32_t at = c->pcmap[2 * k];
        uint32_t end = k + 1 < c->npcmap ? c->pcmap[2 * k + 2] : c->ncode;
        if (at + SCODEDUMP_HANDLER_UNITS > end || end > c->ncode) {
            printf("  (instruction map inconsistent at unit %" PRIu32 ")\n", at);
            return;
        }
        printf("%7" PRIu32 " w%06" PRIx32 " %-20s", at, c->pcmap[2 * k + 1],
               scodedump_name(handlers, c->code + at));
        for (uint32_t u = at + SCODEDUMP_HANDLER_UNITS; u < end; u++)
            printf(" %" PRId32, (int32_t)c->code[u]);
        printf("\n");
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s module.wasm function-name\n", argv[0]);
        return 2;
    }
    shoal_module *mod = NULL;
    shoal_error err;
    if (shoal_module_load_file(argv[1], &mod, &err) != SHOAL_OK) {
        fprintf(stderr, "%s: %s\n", argv[1], err.message);
        return 1;
    }
    const SModule *m = &mod->m;
    int found = 0;
    for (uint32_t i = 0; i < m->nfuncs; i++) {
        const SFunc *f = &m->funcs[i];
        if (f->imported || !f->compiled || !f->name || strcmp(f->name, argv[2]) != 0)
            continue;
        scodedump_func(f, i);
        found = 1;
    }
    shoal_module_free(mod);
    if (!found) {
        fprintf(stderr, "%s: no function named '%s' (is there a name section?)\n", argv[1], argv[2]);
        return 1;
    }
    return 0;
}
