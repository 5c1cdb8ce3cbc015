/* hashmap: a hash table of strings. Generated keys ("user:<number>:<suffix>") are interned in an arena
 * and inserted into an open-addressing table (FNV-1a, linear probing, growth by doubling); then a mix of
 * hits and misses is looked up and counters updated: byte loops, string compares, pointer chasing. */
#include <string.h>

#include "bench_util.h"

typedef struct entry {
    const char *key; /* NULL: empty slot */
    uint32_t len, hash;
    uint32_t value;
} entry;

typedef struct table {
    entry *slots;
    uint32_t cap, count; /* cap is a power of two; count <= cap / 2 */
} table;

static uint32_t fnv1a(const char *s, uint32_t n) {
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static entry *table_find(table *t, const char *key, uint32_t len, uint32_t hash) {
    for (uint32_t i = hash & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        entry *e = &t->slots[i];
        if (!e->key || (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0))
            return e;
    }
}

static void table_grow(table *t) {
    entry *old = t->slots;
    uint32_t old_cap = t->cap;
    t->cap = old_cap ? old_cap * 2 : 1024;
    t->slots = bench_alloc((size_t)t->cap * sizeof(entry));
    memset(t->slots, 0, (size_t)t->cap * sizeof(entry));
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i].key)
            *table_find(t, old[i].key, old[i].len, old[i].hash) = old[i];
    free(old);
}

/* Adds delta to key's counter, inserting it with value delta when absent. */
static void table_add(table *t, const char *key, uint32_t len, uint32_t delta) {
    if (t->count + 1 > t->cap / 2)
        table_grow(t);
    uint32_t hash = fnv1a(key, len);
    entry *e = table_find(t, key, len, hash);
    if (e->key) {
        e->value += delta;
        return;
    }
    *e = (entry){key, len, hash, delta};
    t->count++;
}

static const entry *table_get(table *t, const char *key, uint32_t len) {
    entry *e = table_find(t, key, len, fnv1a(key, len));
    return e->key ? e : NULL;
}

/* Writes "user:<id>:<suffix>" without printf (whose cost would swamp the table's). */
static uint32_t make_key(char *out, uint32_t id) {
    static const char *suffix[4] = {"alpha", "bravo", "charlie-delta", "x"};
    const char *s = suffix[(id >> 3) & 3];
    char digits[10];
    uint32_t nd = 0, n = 0;
    do {
        digits[nd++] = (char)('0' + id % 10);
        id /= 10;
    } while (id);
    memcpy(out, "user:", 5);
    n = 5;
    while (nd)
        out[n++] = digits[--nd];
    out[n++] = ':';
    uint32_t sl = (uint32_t)strlen(s);
    memcpy(out + n, s, sl);
    return n + sl;
}

int main(int argc, char **argv) {
    uint32_t nkeys = bench_size(argc, argv, 400000);
    size_t arena_size = (size_t)nkeys * 32, arena_used = 0;
    char *arena = bench_alloc(arena_size);
    table t = {NULL, 0, 0};
    uint32_t seed = 0x1234567;
    for (uint32_t i = 0; i < nkeys; i++) {
        uint32_t id = bench_rand(&seed) % (nkeys * 2);
        char *k = arena + arena_used;
        uint32_t len = make_key(k, id);
        table_add(&t, k, len, 1);
        arena_used += len;
    }
    uint64_t h = 0, hits = 0;
    char key[40];
    for (uint32_t round = 0; round < 6; round++) {
        for (uint32_t i = 0; i < nkeys; i++) {
            uint32_t len = make_key(key, bench_rand(&seed) % (nkeys * 2));
            const entry *e = table_get(&t, key, len);
            if (e) {
                hits++;
                h = bench_mix(h, e->value + i);
            }
        }
    }
    printf("hashmap: %u inserts, %u distinct keys, %llu lookup hits\n", nkeys, t.count,
           (unsigned long long)hits);
    h = bench_mix(h, t.count);
    printf("checksum %016llx\n", (unsigned long long)h);
    free(t.slots);
    free(arena);
    return 0;
}
