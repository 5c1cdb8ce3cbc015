/*
 * shoal_guest.h: the guest SDK. C guests built with `clang --target=wasm32-wasi` include this header to
 * call Shoal's host modules. Every pointer a guest passes is an address in its own linear memory; the host
 * checks every offset, length and shape against the memory's current size and answers a bad call with an
 * error code, never by touching memory outside the guest.
 *
 * Modules:
 *   shoal_tensor   tensors as views into the guest's own memory, computed on in place by the device the
 *                  runtime was started with (`shoal run --device cpu|cuda --memory host|mapped|unified`)
 */
#ifndef SHOAL_GUEST_H
#define SHOAL_GUEST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__wasm__)
#define SHOAL_IMPORT(module, name) __attribute__((import_module(module), import_name(name)))
#else
#define SHOAL_IMPORT(module, name)
#endif

/* ------------------------------------------------------------------------------------------------ */
/* shoal_tensor                                                                                       */
/* ------------------------------------------------------------------------------------------------ */
/*
 * A tensor is a view: (offset of its first byte in guest memory, dtype, shape), row-major, contiguous.
 * shoal_tensor_view() checks the view against the memory and returns a handle (> 0); operations name
 * handles. Bytes are never copied out of guest memory unless the guest asks for it with `keep`.
 *
 * Timing contract: operations may run asynchronously on the device. After an operation returns, the
 * guest must not read its output or write its inputs until shoal_tensor_sync() returns. (On the CPU
 * device every operation completes before it returns; sync is cheap.)
 *
 * Residency contract (keep/update/release): a view marked with shoal_tensor_keep() has its bytes copied
 * once into device memory; from then on operations READ that device copy, not guest memory. If the guest
 * changes the bytes of a kept view it must call shoal_tensor_update() (copies them again) before the next
 * operation that reads it, or operations will see the old values. An operation that WRITES a kept view
 * writes both the guest bytes and the device copy. shoal_tensor_release() drops the device copy (the
 * handle stays valid); shoal_tensor_free() drops the handle (and any device copy). On the CPU device
 * keep/update/release succeed and change nothing: the guest's memory is the device's memory.
 *
 * Dtypes: F32, F16 (IEEE half), BF16. Shapes: 1 to 4 dimensions, each >= 1; the product must fit the
 * memory. Return values: >= 0 on success, a negative SHOAL_TENSOR_E* code on failure;
 * shoal_tensor_last_error() copies a message describing the last failure.
 */
enum {
    SHOAL_TENSOR_F32 = 0,
    SHOAL_TENSOR_F16 = 1,
    SHOAL_TENSOR_BF16 = 2,
};

enum {
    SHOAL_TENSOR_EINVAL = -1,   /* a bad argument: dtype, ndim, zero dimension, ... */
    SHOAL_TENSOR_EBOUNDS = -2,  /* the view (or a pointer argument) lies outside guest memory */
    SHOAL_TENSOR_ESHAPE = -3,   /* shapes or dtypes do not fit the operation */
    SHOAL_TENSOR_EHANDLE = -4,  /* not a live handle */
    SHOAL_TENSOR_ENOMEM = -5,   /* out of host or device memory, or too many handles */
    SHOAL_TENSOR_EDEVICE = -6,  /* the device failed; the message says how */
};

/* Views and residency */
SHOAL_IMPORT("shoal_tensor", "view")
int32_t shoal_tensor_view(uint32_t offset, int32_t dtype, int32_t ndim, const uint32_t *dims);
SHOAL_IMPORT("shoal_tensor", "free")
int32_t shoal_tensor_free(int32_t t);
SHOAL_IMPORT("shoal_tensor", "keep")
int32_t shoal_tensor_keep(int32_t t);
SHOAL_IMPORT("shoal_tensor", "update")
int32_t shoal_tensor_update(int32_t t);
SHOAL_IMPORT("shoal_tensor", "release")
int32_t shoal_tensor_release(int32_t t);
SHOAL_IMPORT("shoal_tensor", "sync")
int32_t shoal_tensor_sync(void);

/* Operations. out may alias an input only for the elementwise ones (add, mul, scale, silu, rope). */
/* out[M,N] = a[M,K] @ b[K,N]; a and b of one dtype; out of any dtype; accumulation in f32. Batched when
 * the views have a leading batch dimension of equal size (3-D). */
SHOAL_IMPORT("shoal_tensor", "matmul")
int32_t shoal_tensor_matmul(int32_t out, int32_t a, int32_t b);
/* out = a + b, out = a * b elementwise; b may also have the shape of a's last dimension (broadcast). */
SHOAL_IMPORT("shoal_tensor", "add")
int32_t shoal_tensor_add(int32_t out, int32_t a, int32_t b);
SHOAL_IMPORT("shoal_tensor", "mul")
int32_t shoal_tensor_mul(int32_t out, int32_t a, int32_t b);
/* out = a * s */
SHOAL_IMPORT("shoal_tensor", "scale")
int32_t shoal_tensor_scale(int32_t out, int32_t a, float s);
/* softmax over the last dimension */
SHOAL_IMPORT("shoal_tensor", "softmax")
int32_t shoal_tensor_softmax(int32_t out, int32_t a);
/* out = a / sqrt(mean(a^2) + eps) * weight, over the last dimension; weight has the last dimension's size */
SHOAL_IMPORT("shoal_tensor", "rmsnorm")
int32_t shoal_tensor_rmsnorm(int32_t out, int32_t a, int32_t weight, float eps);
/* Rotary position embedding on a[..., T, H, D] (or [T, D]), rotating interleaved pairs (2i, 2i+1) by
 * angle pos * theta^(-2i/D), pos = pos0 + t. */
SHOAL_IMPORT("shoal_tensor", "rope")
int32_t shoal_tensor_rope(int32_t out, int32_t a, int32_t pos0, float theta);
/* out = a * sigmoid(a) */
SHOAL_IMPORT("shoal_tensor", "silu")
int32_t shoal_tensor_silu(int32_t out, int32_t a);

/* Describes the device and memory mode ("cuda/mapped", "cpu/host", ...) into buf; returns the length. */
SHOAL_IMPORT("shoal_tensor", "device_name")
int32_t shoal_tensor_device_name(char *buf, uint32_t cap);
/* The message of the last failure (NUL-terminated, truncated to cap); returns its full length. */
SHOAL_IMPORT("shoal_tensor", "last_error")
int32_t shoal_tensor_last_error(char *buf, uint32_t cap);

#ifdef __cplusplus
}
#endif
#endif /* SHOAL_GUEST_H */
