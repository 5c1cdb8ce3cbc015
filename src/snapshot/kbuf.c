/*
 * kbuf.c: see kbuf.h.
 */
#include "kbuf.h"

#include <stdlib.h>
#include <string.h>

void kbuf_init(kbuf *b) { memset(b, 0, sizeof *b); }

void kbuf_free(kbuf *b) {
    free(b->data);
    kbuf_init(b);
}

uint8_t *kbuf_take(kbuf *b, size_t *len) {
    uint8_t *d = b->failed ? NULL : b->data;
    if (b->failed) free(b->data);
    if (len) *len = d ? b->len : 0;
    kbuf_init(b);
    return d;
}

uint8_t *kbuf_extend(kbuf *b, size_t n) {
    if (b->failed) return NULL;
    if (n > SIZE_MAX - b->len) {
        b->failed = true;
        return NULL;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2) {
                cap = b->len + n;
                break;
            }
            cap *= 2;
        }
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return NULL;
        }
        b->data = d;
        b->cap = cap;
    }
    uint8_t *at = b->data + b->len;
    b->len += n;
    return at;
}

void kbuf_put(kbuf *b, const void *p, size_t n) {
    if (n == 0) return;
    uint8_t *at = kbuf_extend(b, n);
    if (at) memcpy(at, p, n);
}

void kbuf_u8(kbuf *b, uint8_t v) { kbuf_put(b, &v, 1); }

void kbuf_u32(kbuf *b, uint32_t v) {
    uint8_t x[4];
    for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    kbuf_put(b, x, 4);
}

void kbuf_u64(kbuf *b, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    kbuf_put(b, x, 8);
}

void kbuf_f64(kbuf *b, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    kbuf_u64(b, u);
}

void kbuf_strn(kbuf *b, const char *s, size_t n) {
    if (n > UINT32_MAX) {
        b->failed = true;
        return;
    }
    kbuf_u32(b, (uint32_t)n);
    kbuf_put(b, s, n);
}

void kbuf_str(kbuf *b, const char *s) { kbuf_strn(b, s ? s : "", s ? strlen(s) : 0); }

void kbuf_blob(kbuf *b, const void *p, uint64_t n) {
    if (n > SIZE_MAX) {
        b->failed = true;
        return;
    }
    kbuf_u64(b, n);
    kbuf_put(b, p, (size_t)n);
}

void kread_init(kread *r, const void *p, size_t len) {
    r->p = p;
    r->len = p ? len : 0;
    r->off = 0;
    r->failed = false;
}

size_t kread_left(const kread *r) { return r->len - r->off; }

const uint8_t *kread_bytes(kread *r, size_t n) {
    if (r->failed || n > r->len - r->off) {
        r->failed = true;
        return NULL;
    }
    const uint8_t *at = r->p + r->off;
    r->off += n;
    return at;
}

uint8_t kread_u8(kread *r) {
    const uint8_t *x = kread_bytes(r, 1);
    return x ? x[0] : 0;
}

uint32_t kread_u32(kread *r) {
    const uint8_t *x = kread_bytes(r, 4);
    if (!x) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)x[i] << (8 * i);
    return v;
}

uint64_t kread_u64(kread *r) {
    const uint8_t *x = kread_bytes(r, 8);
    if (!x) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)x[i] << (8 * i);
    return v;
}

double kread_f64(kread *r) {
    uint64_t u = kread_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

const char *kread_strv(kread *r, uint32_t *n) {
    uint32_t len = kread_u32(r);
    const uint8_t *s = kread_bytes(r, len);
    if (n) *n = s ? len : 0;
    return (const char *)s;
}

char *kread_strdup(kread *r) {
    uint32_t n;
    const char *s = kread_strv(r, &n);
    if (!s) return NULL;
    if (memchr(s, 0, n)) {
        r->failed = true;
        return NULL;
    }
    char *d = malloc((size_t)n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

const uint8_t *kread_blob(kread *r, uint64_t *n) {
    uint64_t len = kread_u64(r);
    if (len > SIZE_MAX) {
        r->failed = true;
        len = 0;
    }
    const uint8_t *s = kread_bytes(r, (size_t)len);
    if (n) *n = s ? len : 0;
    return s;
}
