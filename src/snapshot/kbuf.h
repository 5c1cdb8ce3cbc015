/*
 * kbuf.h: the byte encoding of actor-snapshot sections (kactor.c): a growable writer and a bounds-checked
 * reader.
 *
 * Encoding: integers little-endian at fixed width; a string is u32 length + bytes (no NUL); a blob is u64
 * length + bytes. There is no alignment and no self-description: each section's owner writes and reads
 * its fields in one documented order and starts with its own u32 version.
 *
 * Both sides fail stickily, so that code reads as a straight list of fields with one check at the end:
 *   - the writer sets `failed` when an allocation fails (later puts do nothing);
 *   - the reader sets `failed` when a field runs past the end (later gets return 0 / NULL).
 * Invariant: a reader never touches a byte outside [p, p + len).
 */
#ifndef KBUF_H
#define KBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kbuf {
    uint8_t *data;
    size_t len, cap;
    bool failed;
} kbuf;

void kbuf_init(kbuf *b);
void kbuf_free(kbuf *b);
/* Takes the bytes (the caller free()s them); the buffer is empty again. NULL when it failed. */
uint8_t *kbuf_take(kbuf *b, size_t *len);
void kbuf_put(kbuf *b, const void *p, size_t n);
/* Appends n bytes and returns where they go (to be filled by the caller), or NULL when it failed. */
uint8_t *kbuf_extend(kbuf *b, size_t n);
void kbuf_u8(kbuf *b, uint8_t v);
void kbuf_u32(kbuf *b, uint32_t v);
void kbuf_u64(kbuf *b, uint64_t v);
void kbuf_f64(kbuf *b, double v);
void kbuf_str(kbuf *b, const char *s); /* NULL is written as the empty string */
void kbuf_strn(kbuf *b, const char *s, size_t n);
void kbuf_blob(kbuf *b, const void *p, uint64_t n);

typedef struct kread {
    const uint8_t *p;
    size_t len, off;
    bool failed;
} kread;

void kread_init(kread *r, const void *p, size_t len);
uint8_t kread_u8(kread *r);
uint32_t kread_u32(kread *r);
uint64_t kread_u64(kread *r);
double kread_f64(kread *r);
/* A view of the next n bytes, or NULL (failed) when fewer are left. */
const uint8_t *kread_bytes(kread *r, size_t n);
/* A string as a view (not NUL-terminated): *n gets its length. NULL when failed. */
const char *kread_strv(kread *r, uint32_t *n);
/* A string as a new NUL-terminated copy (free() it); NULL when failed, out of memory, or when the string
 * holds a NUL byte (then `failed` is set too: such a field is corrupt). */
char *kread_strdup(kread *r);
/* A blob as a view; *n gets its length. */
const uint8_t *kread_blob(kread *r, uint64_t *n);
/* Bytes not read yet. */
size_t kread_left(const kread *r);

#endif
