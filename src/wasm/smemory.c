/*
 * smemory.c: linear memories. Each memory is one reservation of the whole wasm32 range plus a guard
 * region, committed page by page as it grows, so its base never moves: compiled code, host pointers and
 * device mappings of the memory stay valid across memory.grow. All of it goes through a
 * shoal_memory_provider, the hook a device backend uses to map each committed range (zero-copy).
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sexec.h"

/* The interpreter checks every access explicitly, so the guard only has to keep neighbouring mappings
 * away from the end of the 4 GiB range. */
#define SMEM_GUARD_BYTES (64u * 1024u)

uint64_t shoal_memory_reserve_bytes(void) { return ((uint64_t)SMOD_MAX_PAGES * SMOD_PAGE_SIZE) + SMEM_GUARD_BYTES; }

static void *host_reserve(void *user, uint64_t reserve_bytes, uint64_t initial_bytes, shoal_error *err) {
    (void)user;
    void *base = mmap(NULL, reserve_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
        shoal_error_set(err, SHOAL_ERR_NOMEM, "cannot reserve %llu bytes of address space: %s",
                        (unsigned long long)reserve_bytes, strerror(errno));
        return NULL;
    }
    if (initial_bytes && mprotect(base, initial_bytes, PROT_READ | PROT_WRITE) != 0) {
        shoal_error_set(err, SHOAL_ERR_NOMEM, "cannot commit %llu bytes of memory: %s",
                        (unsigned long long)initial_bytes, strerror(errno));
        munmap(base, reserve_bytes);
        return NULL;
    }
    return base; /* fresh anonymous pages read as zero */
}

static shoal_status host_commit(void *user, void *base, uint64_t old_bytes, uint64_t new_bytes, shoal_error *err) {
    (void)user;
    if (new_bytes <= old_bytes) return SHOAL_OK;
    if (mprotect((uint8_t *)base + old_bytes, new_bytes - old_bytes, PROT_READ | PROT_WRITE) != 0)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "cannot commit memory: %s", strerror(errno));
    return SHOAL_OK;
}

static void host_release(void *user, void *base, uint64_t committed_bytes, uint64_t reserve_bytes) {
    (void)user;
    (void)committed_bytes;
    munmap(base, reserve_bytes);
}

static const shoal_memory_provider host_provider = {"host", NULL, host_reserve, host_commit, host_release};

const shoal_memory_provider *shoal_host_memory_provider(void) { return &host_provider; }

shoal_status smem_init(SMemory *mem, const shoal_memory_provider *prov, uint32_t pages, uint32_t max_pages,
                       bool has_max, uint32_t type_max, shoal_error *err) {
    memset(mem, 0, sizeof *mem);
    if (!prov) prov = &host_provider;
    if (max_pages > SMOD_MAX_PAGES) max_pages = SMOD_MAX_PAGES;
    if (pages > max_pages)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "memory of %u pages exceeds the limit of %u pages", pages,
                               max_pages);
    mem->provider = prov;
    mem->reserve = shoal_memory_reserve_bytes();
    mem->base = prov->reserve(prov->user, mem->reserve, (uint64_t)pages * SMOD_PAGE_SIZE, err);
    if (!mem->base) {
        if (err && err->status == SHOAL_OK) shoal_error_set(err, SHOAL_ERR_NOMEM, "memory provider '%s' failed", prov->name);
        return err ? err->status : SHOAL_ERR_NOMEM;
    }
    mem->pages = pages;
    mem->size = (uint64_t)pages * SMOD_PAGE_SIZE;
    mem->max_pages = max_pages;
    mem->has_max = has_max;
    mem->type_max = type_max;
    return SHOAL_OK;
}

void smem_free(SMemory *mem) {
    if (mem->base) mem->provider->release(mem->provider->user, mem->base, mem->size, mem->reserve);
    mem->base = NULL;
    mem->size = 0;
}

int64_t smem_grow(SMemory *mem, uint32_t delta) {
    uint32_t old = mem->pages;
    if (delta == 0) return old;
    if (!mem->base || (uint64_t)old + delta > mem->max_pages) return -1;
    uint64_t new_size = ((uint64_t)old + delta) * SMOD_PAGE_SIZE;
    shoal_error e;
    if (mem->provider->commit(mem->provider->user, mem->base, mem->size, new_size, &e) != SHOAL_OK) return -1;
    mem->pages = old + delta;
    mem->size = new_size;
    return old;
}
