/*
 * spectest_wasm.c: a tiny WebAssembly binary writer (see spectest_wasm.h for why it exists).
 *
 * The module layout follows the binary format of the core spec, sections in the required order:
 * type (1), import (2), table (4), memory (5), global (6), export (7). Function items take one type each
 * (duplicate types are legal) and occupy the function index space in item order, as imports come first
 * and the module defines no functions of its own.
 */
#include "spectest_wasm.h"

#include <stdlib.h>
#include <string.h>

enum { SEC_TYPE = 1, SEC_IMPORT = 2, SEC_TABLE = 4, SEC_MEMORY = 5, SEC_GLOBAL = 6, SEC_EXPORT = 7 };

void spw_free(SpwBuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static bool spw_reserve(SpwBuf *b, size_t n) {
    if (b->failed)
        return false;
    if (n > SIZE_MAX / 2 - b->len) {
        b->failed = true;
        return false;
    }
    if (b->len + n <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void spw_bytes(SpwBuf *b, const void *p, size_t n) {
    if (n == 0 || !spw_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void spw_byte(SpwBuf *b, uint8_t v) {
    spw_bytes(b, &v, 1);
}

void spw_u32(SpwBuf *b, uint32_t v) {
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        spw_byte(b, (uint8_t)(byte | (v ? 0x80 : 0)));
    } while (v);
}

void spw_s64(SpwBuf *b, int64_t v) {
    for (;;) {
        uint8_t byte = (uint8_t)(v & 0x7f);
        /* Right-shifting a negative value is implementation-defined in C; shift its complement instead. */
        v = v >= 0 ? v >> 7 : ~(~v >> 7);
        bool done = (v == 0 && !(byte & 0x40)) || (v == -1 && (byte & 0x40));
        spw_byte(b, (uint8_t)(byte | (done ? 0 : 0x80)));
        if (done)
            return;
    }
}

void spw_name(SpwBuf *b, const char *s) {
    size_t n = strlen(s);
    if (n > UINT32_MAX) {
        b->failed = true;
        return;
    }
    spw_u32(b, (uint32_t)n);
    spw_bytes(b, s, n);
}

void spw_section(SpwBuf *out, uint8_t id, SpwBuf *body) {
    if (body->failed || body->len > UINT32_MAX)
        out->failed = true;
    spw_byte(out, id);
    spw_u32(out, (uint32_t)body->len);
    spw_bytes(out, body->data, body->len);
    spw_free(body);
}

static void spw_limits(SpwBuf *b, uint32_t min, uint32_t max, bool has_max) {
    spw_byte(b, has_max ? 1 : 0);
    spw_u32(b, min);
    if (has_max)
        spw_u32(b, max);
}

/* The type code of a signature letter; 0 if it is none. */
static uint8_t spw_code(char c) {
    switch (c) {
    case 'i': return SHOAL_I32;
    case 'I': return SHOAL_I64;
    case 'f': return SHOAL_F32;
    case 'F': return SHOAL_F64;
    case 'r': return SHOAL_FUNCREF;
    case 'e': return SHOAL_EXTERNREF;
    default: return 0;
    }
}

static bool spw_is_ref(shoal_valtype t) {
    return t == SHOAL_FUNCREF || t == SHOAL_EXTERNREF;
}

/* The constant expression that initializes a global of type t to v. */
static void spw_const(SpwBuf *b, shoal_valtype t, shoal_val v) {
    uint8_t le[8];
    switch (t) {
    case SHOAL_I32:
        spw_byte(b, 0x41);
        spw_s64(b, v.i32);
        break;
    case SHOAL_I64:
        spw_byte(b, 0x42);
        spw_s64(b, v.i64);
        break;
    case SHOAL_F32:
        spw_byte(b, 0x43);
        for (int i = 0; i < 4; i++)
            le[i] = (uint8_t)(v.f32_bits >> (8 * i));
        spw_bytes(b, le, 4);
        break;
    case SHOAL_F64:
        spw_byte(b, 0x44);
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)(v.f64_bits >> (8 * i));
        spw_bytes(b, le, 8);
        break;
    default: /* references: the only host-independent constant is null */
        spw_byte(b, 0xd0);
        spw_byte(b, (uint8_t)t);
        break;
    }
    spw_byte(b, 0x0b);
}

shoal_status spw_build_module(const char *host_module, const SpwItem *items, uint32_t nitems, uint8_t **out,
                              size_t *out_len, shoal_error *err) {
    SpwBuf mod = {0}, sec = {0};
    uint32_t count[4] = {0}; /* per shoal_extern_kind: items seen so far = next index in that space */
    *out = NULL;
    *out_len = 0;

    for (uint32_t i = 0; i < nitems; i++) {
        if (items[i].kind > SHOAL_EXTERN_GLOBAL)
            return shoal_error_set(err, SHOAL_ERR_ARG, "item '%s': bad kind %d", items[i].name, (int)items[i].kind);
        if (items[i].kind == SHOAL_EXTERN_FUNC && !items[i].sig)
            return shoal_error_set(err, SHOAL_ERR_ARG, "item '%s': function without a signature", items[i].name);
        if (items[i].kind == SHOAL_EXTERN_GLOBAL && items[i].valtype == SHOAL_V128)
            return shoal_error_set(err, SHOAL_ERR_UNSUPPORTED, "item '%s': v128 global", items[i].name);
        if (items[i].kind == SHOAL_EXTERN_TABLE && !spw_is_ref(items[i].valtype))
            return shoal_error_set(err, SHOAL_ERR_ARG, "item '%s': table of a non-reference type", items[i].name);
        count[items[i].kind]++;
    }

    static const uint8_t header[8] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
    spw_bytes(&mod, header, sizeof header);

    if (count[SHOAL_EXTERN_FUNC]) {
        spw_u32(&sec, count[SHOAL_EXTERN_FUNC]);
        for (uint32_t i = 0; i < nitems; i++) {
            if (items[i].kind != SHOAL_EXTERN_FUNC)
                continue;
            spw_byte(&sec, 0x60);
            const char *colon = strchr(items[i].sig, ':');
            if (!colon || strchr(colon + 1, ':')) {
                spw_free(&sec);
                spw_free(&mod);
                return shoal_error_set(err, SHOAL_ERR_ARG, "item '%s': bad signature '%s'", items[i].name,
                                       items[i].sig);
            }
            /* params, then results: each a count and one type byte per letter */
            const char *part[2] = {items[i].sig, colon + 1};
            size_t len[2] = {(size_t)(colon - items[i].sig), strlen(colon + 1)};
            for (int k = 0; k < 2; k++) {
                spw_u32(&sec, (uint32_t)len[k]);
                for (size_t c = 0; c < len[k]; c++) {
                    uint8_t t = spw_code(part[k][c]);
                    if (!t) {
                        spw_free(&sec);
                        spw_free(&mod);
                        return shoal_error_set(err, SHOAL_ERR_ARG, "item '%s': bad signature '%s'", items[i].name,
                                               items[i].sig);
                    }
                    spw_byte(&sec, t);
                }
            }
        }
        spw_section(&mod, SEC_TYPE, &sec);

        uint32_t type = 0;
        spw_u32(&sec, count[SHOAL_EXTERN_FUNC]);
        for (uint32_t i = 0; i < nitems; i++) {
            if (items[i].kind != SHOAL_EXTERN_FUNC)
                continue;
            spw_name(&sec, host_module);
            spw_name(&sec, items[i].name);
            spw_byte(&sec, 0x00);
            spw_u32(&sec, type++);
        }
        spw_section(&mod, SEC_IMPORT, &sec);
    }

    static const uint8_t sec_ids[4] = {0, SEC_TABLE, SEC_MEMORY, SEC_GLOBAL};
    for (int kind = SHOAL_EXTERN_TABLE; kind <= SHOAL_EXTERN_GLOBAL; kind++) {
        if (!count[kind])
            continue;
        spw_u32(&sec, count[kind]);
        for (uint32_t i = 0; i < nitems; i++) {
            const SpwItem *it = &items[i];
            if ((int)it->kind != kind)
                continue;
            if (kind == SHOAL_EXTERN_TABLE) {
                spw_byte(&sec, (uint8_t)it->valtype);
                spw_limits(&sec, it->min, it->max, it->has_max);
            } else if (kind == SHOAL_EXTERN_MEMORY) {
                spw_limits(&sec, it->min, it->max, it->has_max);
            } else {
                spw_byte(&sec, (uint8_t)it->valtype);
                spw_byte(&sec, it->mutable_global ? 1 : 0);
                spw_const(&sec, it->valtype, it->init);
            }
        }
        spw_section(&mod, sec_ids[kind], &sec);
    }

    uint32_t next[4] = {0};
    spw_u32(&sec, nitems);
    for (uint32_t i = 0; i < nitems; i++) {
        spw_name(&sec, items[i].name);
        spw_byte(&sec, (uint8_t)items[i].kind);
        spw_u32(&sec, next[items[i].kind]++);
    }
    spw_section(&mod, SEC_EXPORT, &sec);

    if (mod.failed) {
        spw_free(&mod);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory building a module");
    }
    *out = mod.data;
    *out_len = mod.len;
    return SHOAL_OK;
}

static char spw_letter(shoal_valtype t) {
    switch (t) {
    case SHOAL_I32: return 'i';
    case SHOAL_I64: return 'I';
    case SHOAL_F32: return 'f';
    case SHOAL_F64: return 'F';
    case SHOAL_FUNCREF: return 'r';
    case SHOAL_EXTERNREF: return 'e';
    default: return 0;
    }
}

bool spw_signature(const shoal_functype *type, char *buf, size_t size) {
    size_t need = (size_t)type->nparams + type->nresults + 2;
    if (type->nparams > size || type->nresults > size || need > size)
        return false;
    size_t n = 0;
    for (uint32_t i = 0; i < type->nparams; i++)
        if (!(buf[n++] = spw_letter((shoal_valtype)type->params[i])))
            return false;
    buf[n++] = ':';
    for (uint32_t i = 0; i < type->nresults; i++)
        if (!(buf[n++] = spw_letter((shoal_valtype)type->results[i])))
            return false;
    buf[n] = '\0';
    return true;
}
