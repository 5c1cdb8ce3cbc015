/*
 * spectest_value.h: the values of wast2json scripts: parsing arguments and expected results, matching
 * results against expectations (NaN patterns, bit-exact floats, references) and printing them.
 *
 * The suite names host references by small integers ("externref 3"); the engine carries them as
 * pointers. SpvRefs gives each id a distinct heap object so the mapping is one-to-one both ways, and a
 * pointer the engine returns that is not one of ours is reported, never dereferenced.
 */
#ifndef SPECTEST_VALUE_H
#define SPECTEST_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "shoal.h"

typedef struct SpvRefs {
    uint32_t **objs; /* objs[i] points at its own id */
    size_t n, cap;
} SpvRefs;

void spv_refs_free(SpvRefs *refs);

/* Outcome of parsing a value. */
typedef enum SpvParse {
    SPV_OK,
    SPV_SKIP, /* well-formed but unsupported here (v128); the reason is in `why` */
    SPV_BAD,  /* not a value this runner understands; `why` says what is wrong */
} SpvParse;

typedef enum SpvPattern {
    SPV_EXACT,          /* bit-exact (floats) or identical (references) */
    SPV_NAN_CANONICAL,  /* any NaN whose payload is the canonical one, either sign */
    SPV_NAN_ARITHMETIC, /* any NaN with the quiet bit set */
    SPV_NONNULL,        /* any non-null reference (a reference expectation without a value) */
} SpvPattern;

typedef struct SpvExpect {
    shoal_valtype type;
    SpvPattern pattern;
    shoal_val val; /* SPV_EXACT */
} SpvExpect;

/* "i32" -> SHOAL_I32, ...; 0 when unknown. */
shoal_valtype spv_type(const char *name);
const char *spv_type_name(shoal_valtype type);

/* An argument {"type": T, "value": S}. */
SpvParse spv_parse_arg(SpvRefs *refs, const cJSON *json, shoal_valtype *type, shoal_val *out, char *why,
                       size_t whylen);
/* An expected result: as an argument, plus "nan:canonical" / "nan:arithmetic" and value-less refs. */
SpvParse spv_parse_expect(SpvRefs *refs, const cJSON *json, SpvExpect *out, char *why, size_t whylen);

bool spv_match(const SpvRefs *refs, const SpvExpect *expect, shoal_val got);

/* Human-readable renderings for failure reports: "i32:4294967295 (0xffffffff)", "externref:3", ... */
void spv_format(const SpvRefs *refs, shoal_valtype type, shoal_val v, char *buf, size_t size);
void spv_format_expect(const SpvExpect *expect, const SpvRefs *refs, char *buf, size_t size);

#endif
