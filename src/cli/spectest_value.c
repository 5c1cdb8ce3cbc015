/*
 * spectest_value.c: wast2json values (see spectest_value.h).
 *
 * Integers and floats arrive as decimal strings of their bit pattern, so parsing never goes through a
 * floating-point conversion and NaN payloads survive exactly.
 */
#include "spectest_value.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void spv_refs_free(SpvRefs *refs) {
    for (size_t i = 0; i < refs->n; i++)
        free(refs->objs[i]);
    free(refs->objs);
    refs->objs = NULL;
    refs->n = refs->cap = 0;
}

/* The host object standing for externref `id`, created on first use; NULL when out of memory. */
static void *spv_extern_obj(SpvRefs *refs, uint32_t id) {
    for (size_t i = 0; i < refs->n; i++)
        if (*refs->objs[i] == id)
            return refs->objs[i];
    if (refs->n == refs->cap) {
        size_t cap = refs->cap ? refs->cap * 2 : 16;
        uint32_t **objs = realloc(refs->objs, cap * sizeof *objs);
        if (!objs)
            return NULL;
        refs->objs = objs;
        refs->cap = cap;
    }
    uint32_t *obj = malloc(sizeof *obj);
    if (!obj)
        return NULL;
    *obj = id;
    refs->objs[refs->n++] = obj;
    return obj;
}

/* The id of a host object of ours; false for any other pointer. */
static bool spv_extern_id(const SpvRefs *refs, const void *p, uint32_t *id) {
    for (size_t i = 0; i < refs->n; i++)
        if (refs->objs[i] == p) {
            *id = *refs->objs[i];
            return true;
        }
    return false;
}

shoal_valtype spv_type(const char *name) {
    static const struct {
        const char *name;
        shoal_valtype type;
    } names[] = {
        {"i32", SHOAL_I32},         {"i64", SHOAL_I64},         {"f32", SHOAL_F32},  {"f64", SHOAL_F64},
        {"externref", SHOAL_EXTERNREF}, {"funcref", SHOAL_FUNCREF}, {"v128", SHOAL_V128},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i].name))
            return names[i].type;
    return (shoal_valtype)0;
}

const char *spv_type_name(shoal_valtype type) {
    switch (type) {
    case SHOAL_I32: return "i32";
    case SHOAL_I64: return "i64";
    case SHOAL_F32: return "f32";
    case SHOAL_F64: return "f64";
    case SHOAL_V128: return "v128";
    case SHOAL_FUNCREF: return "funcref";
    case SHOAL_EXTERNREF: return "externref";
    }
    return "?";
}

/* A decimal bit pattern of at most `bits` bits. wast2json writes them unsigned; a leading '-' (two's
 * complement) is accepted too so hand-written scripts work. */
static bool spv_parse_bits(const char *s, unsigned bits, uint64_t *out) {
    bool neg = *s == '-';
    const char *digits = neg ? s + 1 : s;
    if (*digits < '0' || *digits > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(digits, &end, 10);
    if (errno || *end)
        return false;
    uint64_t limit = bits == 64 ? UINT64_MAX : (UINT64_C(1) << bits) - 1;
    if (neg) {
        if (v > (limit >> 1) + 1)
            return false;
        v = (0 - (uint64_t)v) & limit;
    } else if (v > limit) {
        return false;
    }
    *out = v;
    return true;
}

/* The common part of arguments and expectations: the type, and the value string when there is one. */
static SpvParse spv_head(const cJSON *json, shoal_valtype *type, const char **value, char *why, size_t whylen) {
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(json, "type");
    const cJSON *jv = cJSON_GetObjectItemCaseSensitive(json, "value");
    *value = NULL;
    if (!cJSON_IsObject(json) || !cJSON_IsString(jt)) {
        snprintf(why, whylen, "value without a type");
        return SPV_BAD;
    }
    *type = spv_type(jt->valuestring);
    if (!*type) {
        snprintf(why, whylen, "unknown value type '%.40s'", jt->valuestring);
        return SPV_BAD;
    }
    if (*type == SHOAL_V128) {
        snprintf(why, whylen, "v128 values (SIMD is not supported)");
        return SPV_SKIP;
    }
    if (jv && !cJSON_IsString(jv)) {
        snprintf(why, whylen, "%s value is not a string", jt->valuestring);
        return SPV_BAD;
    }
    if (jv)
        *value = jv->valuestring;
    return SPV_OK;
}

/* A concrete value of a known type from its string. */
static SpvParse spv_concrete(SpvRefs *refs, shoal_valtype type, const char *s, shoal_val *out, char *why,
                             size_t whylen) {
    uint64_t bits;
    memset(out, 0, sizeof *out);
    switch (type) {
    case SHOAL_I32:
    case SHOAL_F32:
        if (!spv_parse_bits(s, 32, &bits))
            break;
        if (type == SHOAL_I32)
            out->i32 = (int32_t)(uint32_t)bits;
        else
            out->f32_bits = (uint32_t)bits;
        return SPV_OK;
    case SHOAL_I64:
    case SHOAL_F64:
        if (!spv_parse_bits(s, 64, &bits))
            break;
        if (type == SHOAL_I64)
            out->i64 = (int64_t)bits;
        else
            out->f64_bits = bits;
        return SPV_OK;
    case SHOAL_FUNCREF:
    case SHOAL_EXTERNREF:
        if (!strcmp(s, "null")) {
            out->ref = NULL;
            return SPV_OK;
        }
        if (type == SHOAL_FUNCREF) {
            snprintf(why, whylen, "funcref value '%.40s' (only null can be written in a script)", s);
            return SPV_BAD;
        }
        if (!spv_parse_bits(s, 32, &bits) || *s == '-')
            break;
        out->ref = spv_extern_obj(refs, (uint32_t)bits);
        if (!out->ref) {
            snprintf(why, whylen, "out of memory");
            return SPV_BAD;
        }
        return SPV_OK;
    default:
        break;
    }
    snprintf(why, whylen, "bad %s value '%.40s'", spv_type_name(type), s);
    return SPV_BAD;
}

SpvParse spv_parse_arg(SpvRefs *refs, const cJSON *json, shoal_valtype *type, shoal_val *out, char *why,
                       size_t whylen) {
    const char *s;
    SpvParse r = spv_head(json, type, &s, why, whylen);
    if (r != SPV_OK)
        return r;
    if (!s) {
        snprintf(why, whylen, "%s argument without a value", spv_type_name(*type));
        return SPV_BAD;
    }
    return spv_concrete(refs, *type, s, out, why, whylen);
}

SpvParse spv_parse_expect(SpvRefs *refs, const cJSON *json, SpvExpect *out, char *why, size_t whylen) {
    const char *s;
    memset(out, 0, sizeof *out);
    SpvParse r = spv_head(json, &out->type, &s, why, whylen);
    if (r != SPV_OK)
        return r;
    bool is_ref = out->type == SHOAL_FUNCREF || out->type == SHOAL_EXTERNREF;
    bool is_float = out->type == SHOAL_F32 || out->type == SHOAL_F64;
    if (!s) {
        if (!is_ref) {
            snprintf(why, whylen, "expected %s without a value", spv_type_name(out->type));
            return SPV_BAD;
        }
        out->pattern = SPV_NONNULL;
        return SPV_OK;
    }
    if (is_float && !strcmp(s, "nan:canonical")) {
        out->pattern = SPV_NAN_CANONICAL;
        return SPV_OK;
    }
    if (is_float && !strcmp(s, "nan:arithmetic")) {
        out->pattern = SPV_NAN_ARITHMETIC;
        return SPV_OK;
    }
    out->pattern = SPV_EXACT;
    return spv_concrete(refs, out->type, s, &out->val, why, whylen);
}

bool spv_match(const SpvRefs *refs, const SpvExpect *e, shoal_val got) {
    (void)refs;
    uint64_t bits, sign, canon;
    if (e->type == SHOAL_F32) {
        bits = got.f32_bits;
        sign = UINT64_C(0x80000000);
        canon = UINT64_C(0x7fc00000);
    } else {
        bits = got.f64_bits;
        sign = UINT64_C(0x8000000000000000);
        canon = UINT64_C(0x7ff8000000000000);
    }
    switch (e->pattern) {
    case SPV_NAN_CANONICAL:
        return (bits & ~sign) == canon;
    case SPV_NAN_ARITHMETIC:
        /* The quiet bit is the top mantissa bit, so canon doubles as the mask "all-ones exponent + quiet". */
        return (bits & canon) == canon;
    case SPV_NONNULL:
        return got.ref != NULL;
    case SPV_EXACT:
        break;
    }
    switch (e->type) {
    case SHOAL_I32: return got.i32 == e->val.i32;
    case SHOAL_I64: return got.i64 == e->val.i64;
    case SHOAL_F32: return got.f32_bits == e->val.f32_bits;
    case SHOAL_F64: return got.f64_bits == e->val.f64_bits;
    case SHOAL_FUNCREF:
    case SHOAL_EXTERNREF: return got.ref == e->val.ref;
    default: return false;
    }
}

void spv_format(const SpvRefs *refs, shoal_valtype type, shoal_val v, char *buf, size_t size) {
    uint32_t id;
    switch (type) {
    case SHOAL_I32:
        snprintf(buf, size, "i32:%" PRIu32 " (0x%" PRIx32 ")", (uint32_t)v.i32, (uint32_t)v.i32);
        break;
    case SHOAL_I64:
        snprintf(buf, size, "i64:%" PRIu64 " (0x%" PRIx64 ")", (uint64_t)v.i64, (uint64_t)v.i64);
        break;
    case SHOAL_F32:
        snprintf(buf, size, "f32:%.9g (0x%08" PRIx32 ")", (double)v.f32, v.f32_bits);
        break;
    case SHOAL_F64:
        snprintf(buf, size, "f64:%.17g (0x%016" PRIx64 ")", v.f64, v.f64_bits);
        break;
    case SHOAL_FUNCREF:
        if (v.ref)
            snprintf(buf, size, "funcref:%p", v.ref);
        else
            snprintf(buf, size, "funcref:null");
        break;
    case SHOAL_EXTERNREF:
        if (!v.ref)
            snprintf(buf, size, "externref:null");
        else if (refs && spv_extern_id(refs, v.ref, &id))
            snprintf(buf, size, "externref:%" PRIu32, id);
        else
            snprintf(buf, size, "externref:%p (not a host reference of this script)", v.ref);
        break;
    default:
        snprintf(buf, size, "%s:?", spv_type_name(type));
        break;
    }
}

void spv_format_expect(const SpvExpect *e, const SpvRefs *refs, char *buf, size_t size) {
    switch (e->pattern) {
    case SPV_NAN_CANONICAL:
        snprintf(buf, size, "%s:nan:canonical", spv_type_name(e->type));
        break;
    case SPV_NAN_ARITHMETIC:
        snprintf(buf, size, "%s:nan:arithmetic", spv_type_name(e->type));
        break;
    case SPV_NONNULL:
        snprintf(buf, size, "%s:non-null", spv_type_name(e->type));
        break;
    case SPV_EXACT:
        spv_format(refs, e->type, e->val, buf, size);
        break;
    }
}
