/*
 * sread.h: a bounds-checked reader over a byte range, with the LEB128 forms of the Wasm binary format.
 * Every read returns false (and reads nothing past `end`) when the bytes are missing or malformed; the
 * caller turns that into an error naming the offset (sr_offset). Shared by the decoder, the validator and
 * the translator, so that code is decoded by one set of rules.
 */
#ifndef SREAD_H
#define SREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct SReader {
    const uint8_t *p;    /* next byte */
    const uint8_t *end;  /* one past the last readable byte */
    const uint8_t *base; /* start of the module, for offsets in messages */
} SReader;

typedef enum SReadError {
    SR_OK = 0,
    SR_EOF,       /* "unexpected end" */
    SR_TOO_LONG,  /* "integer representation too long" */
    SR_TOO_LARGE, /* "integer too large" (unused bits set) */
} SReadError;

static inline size_t sr_offset(const SReader *r) { return (size_t)(r->p - r->base); }
static inline size_t sr_left(const SReader *r) { return (size_t)(r->end - r->p); }
static inline bool sr_eof(const SReader *r) { return r->p >= r->end; }

static inline bool sr_u8(SReader *r, uint8_t *out) {
    if (r->p >= r->end) return false;
    *out = *r->p++;
    return true;
}

static inline bool sr_bytes(SReader *r, size_t n, const uint8_t **out) {
    if (sr_left(r) < n) return false;
    *out = r->p;
    r->p += n;
    return true;
}

/* Unsigned LEB128 of at most `bits` bits (32 or 64). */
static inline SReadError sr_uleb(SReader *r, unsigned bits, uint64_t *out) {
    uint64_t result = 0;
    unsigned shift = 0;
    unsigned max_bytes = (bits + 6) / 7;
    for (unsigned i = 0;; i++) {
        if (r->p >= r->end) return SR_EOF;
        uint8_t b = *r->p++;
        if (i == max_bytes - 1) {
            /* The last permitted byte: no continuation, and no bits beyond `bits`. */
            if (b & 0x80) return SR_TOO_LONG;
            unsigned used = bits - shift;
            if (used < 7 && (b >> used) != 0) return SR_TOO_LARGE;
            result |= (uint64_t)b << shift;
            break;
        }
        result |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
    }
    *out = result;
    return SR_OK;
}

/* Signed LEB128 of at most `bits` bits (32 or 64); the unused bits of the last byte must be the sign. */
static inline SReadError sr_sleb(SReader *r, unsigned bits, int64_t *out) {
    uint64_t result = 0;
    unsigned shift = 0;
    unsigned max_bytes = (bits + 6) / 7;
    uint8_t b;
    for (unsigned i = 0;; i++) {
        if (r->p >= r->end) return SR_EOF;
        b = *r->p++;
        if (i == max_bytes - 1) {
            if (b & 0x80) return SR_TOO_LONG;
            unsigned used = bits - shift; /* payload bits still allowed, 1..7 */
            if (used < 7) {
                /* bits [used-1, 6] must all equal the sign bit */
                int8_t sext = (int8_t)(uint8_t)(b << 1) >> 1; /* 7-bit value sign-extended */
                int8_t top = (int8_t)(sext >> (used - 1));
                if (top != 0 && top != -1) return SR_TOO_LARGE;
            }
            result |= (uint64_t)(b & 0x7f) << shift;
            shift += 7;
            break;
        }
        result |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) break;
    }
    if (shift < 64 && (b & 0x40)) result |= ~(uint64_t)0 << shift;
    *out = (int64_t)result;
    return SR_OK;
}

static inline SReadError sr_u32(SReader *r, uint32_t *out) {
    uint64_t v;
    SReadError e = sr_uleb(r, 32, &v);
    if (e == SR_OK) *out = (uint32_t)v;
    return e;
}
static inline SReadError sr_s32(SReader *r, int32_t *out) {
    int64_t v;
    SReadError e = sr_sleb(r, 32, &v);
    if (e == SR_OK) *out = (int32_t)v;
    return e;
}
static inline SReadError sr_s33(SReader *r, int64_t *out) { return sr_sleb(r, 33, out); }
static inline SReadError sr_s64(SReader *r, int64_t *out) { return sr_sleb(r, 64, out); }

static inline bool sr_f32(SReader *r, uint32_t *bits) {
    if (sr_left(r) < 4) return false;
    memcpy(bits, r->p, 4); /* Wasm is little-endian, as are the hosts we build for */
    r->p += 4;
    return true;
}
static inline bool sr_f64(SReader *r, uint64_t *bits) {
    if (sr_left(r) < 8) return false;
    memcpy(bits, r->p, 8);
    r->p += 8;
    return true;
}

static inline const char *sr_error_text(SReadError e) {
    switch (e) {
    case SR_OK: return "ok";
    case SR_EOF: return "unexpected end";
    case SR_TOO_LONG: return "integer representation too long";
    case SR_TOO_LARGE: return "integer too large";
    }
    return "malformed";
}

#endif
