/*
 * svalid.h: internals shared by the module validator (svalid.c) and the function-body validator
 * (svalcode.c). The public entry point is smod_validate() in smodule.h.
 */
#ifndef SVALID_H
#define SVALID_H

#include <stdio.h>

#include "smodule.h"

typedef struct SVal {
    SModule *m;
    shoal_error *err;
    const char *section; /* for messages outside function bodies */
    uint32_t func;       /* function being checked, or SHOAL_NO_FUNC */
} SVal;

/* Fills v->err with "section S, offset 0xN: reason" (or "section code, function F, ...") and returns st. */
shoal_status sval_fail(SVal *v, shoal_status st, size_t offset, const char *reason);

/* svalcode.c: every body decodes (instructions, block structure, data count); SHOAL_ERR_MALFORMED
 * otherwise. Used to give malformed bodies precedence over invalid ones. */
shoal_status sval_code_wellformed(SVal *v);
/* svalcode.c: every body decodes and type-checks (operand and control stacks). Needs m->declared_refs. */
shoal_status sval_code(SVal *v);

#endif
