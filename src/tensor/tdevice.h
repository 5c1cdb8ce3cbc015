/*
 * tdevice.h: compute devices for tensors that live in guest memory (the `shoal_tensor` host module).
 *
 * A device is a struct of function pointers (as ggml's backends are), so the CPU, CUDA and later Vulkan
 * or Metal devices plug in without the module knowing them. Every view a device receives has already
 * been checked against the guest's memory by ttensor.c: `host` points at nbytes of guest memory.
 *
 * Memory modes decide where the device finds the bytes:
 *   HOST     the CPU computes on guest memory directly.
 *   MAPPED   guest memory is registered with the GPU (device pointer == host pointer); kernels read and
 *            write it in place over the bus; kept views are read from device memory.
 *   UNIFIED  guest memory is managed memory; pages migrate on use.
 *   COPY     the baseline other runtimes use: guest bytes -> host staging buffer -> device buffer and back
 *            for every operation (kept only for comparison in benchmarks).
 */
#ifndef TDEVICE_H
#define TDEVICE_H

#include "shoal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tdtype { TD_F32 = 0, TD_F16 = 1, TD_BF16 = 2, TD_COUNT } tdtype;

#define TD_MAX_DIMS 4

typedef struct tview {
    uint8_t *host;    /* first byte in guest memory (device-addressable in MAPPED/UNIFIED modes) */
    void *resident;   /* device copy made by keep(), or NULL */
    tdtype dtype;
    uint32_t ndim;
    uint32_t dims[TD_MAX_DIMS];
    uint64_t nelem;
    uint64_t nbytes;
} tview;

typedef enum tbinop { TB_ADD, TB_MUL } tbinop;
typedef enum tunop { TU_SILU, TU_SOFTMAX } tunop;

typedef struct tdevice tdevice;
struct tdevice {
    const char *name;              /* "cpu", "cuda" */
    shoal_memory_mode mode;
    char description[160];         /* "cuda/mapped: NVIDIA H100 80GB HBM3" */
    /* The provider for guest memories of instances that use this device (NULL: the host default). */
    const shoal_memory_provider *provider;

    /* Operations. Shapes are already checked by the caller; they return SHOAL_OK or SHOAL_ERR_DEVICE /
     * SHOAL_ERR_NOMEM with a message. batch > 1 means a 3-D batched matmul. */
    shoal_status (*matmul)(tdevice *d, tview *out, const tview *a, const tview *b, uint32_t batch, uint32_t m,
                           uint32_t n, uint32_t k, shoal_error *err);
    shoal_status (*binary)(tdevice *d, tbinop op, tview *out, const tview *a, const tview *b, shoal_error *err);
    shoal_status (*scale)(tdevice *d, tview *out, const tview *a, float s, shoal_error *err);
    shoal_status (*unary)(tdevice *d, tunop op, tview *out, const tview *a, shoal_error *err);
    shoal_status (*rmsnorm)(tdevice *d, tview *out, const tview *a, const tview *w, float eps, shoal_error *err);
    shoal_status (*rope)(tdevice *d, tview *out, const tview *a, int32_t pos0, float theta, shoal_error *err);
    shoal_status (*sync)(tdevice *d, shoal_error *err);

    /* Residency: keep allocates and fills v->resident; update refills it; release frees it. */
    shoal_status (*keep)(tdevice *d, tview *v, shoal_error *err);
    shoal_status (*update)(tdevice *d, tview *v, shoal_error *err);
    void (*release)(tdevice *d, tview *v);

    /* Device memory this object has allocated (bytes): now, and the peak since the last reset. */
    void (*memory_stats)(tdevice *d, uint64_t *now, uint64_t *peak, bool reset_peak);
    /* The address the device computes on for a host address in guest memory, or NULL when it cannot
     * address guest memory in place (COPY mode): the benchmark's pointer-identity check. */
    void *(*device_address)(tdevice *d, void *host);
    void (*destroy)(tdevice *d);
};

/* The public handle of a device (tdevice.c). */
struct shoal_device {
    tdevice *impl;
};

/* tcpu.c */
shoal_status tcpu_open(shoal_memory_mode mode, tdevice **out, shoal_error *err);
/* Element conversion helpers shared by devices and tests. */
float td_load(const uint8_t *p, tdtype t, uint64_t i);
void td_store(uint8_t *p, tdtype t, uint64_t i, float v);
size_t td_size(tdtype t);

/* src/cuda (only when built with nvcc; tdevice.c answers a clear error otherwise) */
shoal_status tcuda_open(int ordinal, shoal_memory_mode mode, tdevice **out, shoal_error *err);

#ifdef __cplusplus
}
#endif
#endif
