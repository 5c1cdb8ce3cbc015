/* tdevice.c: opening compute devices by name, and the memory-mode vocabulary. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tdevice.h"


static const char *const mode_names[] = {"default", "host", "mapped", "unified", "copy"};

const char *shoal_memory_mode_name(shoal_memory_mode mode) {
    return (unsigned)mode < sizeof mode_names / sizeof mode_names[0] ? mode_names[mode] : "?";
}

shoal_status shoal_memory_mode_parse(const char *text, shoal_memory_mode *out, shoal_error *err) {
    for (unsigned i = 0; i < sizeof mode_names / sizeof mode_names[0]; i++) {
        if (!strcmp(text, mode_names[i])) {
            *out = (shoal_memory_mode)i;
            return SHOAL_OK;
        }
    }
    return shoal_error_set(err, SHOAL_ERR_ARG, "unknown memory mode '%s' (host, mapped, unified, copy)", text);
}

#ifndef SHOAL_HAVE_CUDA
shoal_status tcuda_open(int ordinal, shoal_memory_mode mode, tdevice **out, shoal_error *err) {
    (void)ordinal, (void)mode;
    *out = NULL;
    return shoal_error_set(err, SHOAL_ERR_DEVICE,
                           "this shoal was built without the CUDA backend (nvcc was not found at build time)");
}
#endif

shoal_status shoal_device_open(const char *name, shoal_memory_mode mode, shoal_device **out, shoal_error *err) {
    *out = NULL;
    tdevice *impl = NULL;
    shoal_status st;
    if (!strcmp(name, "cpu")) {
        st = tcpu_open(mode, &impl, err);
    } else if (!strncmp(name, "cuda", 4) && (name[4] == 0 || name[4] == ':')) {
        int ordinal = 0;
        if (name[4] == ':') {
            char *end;
            long v = strtol(name + 5, &end, 10);
            if (*end || end == name + 5 || v < 0 || v > 64)
                return shoal_error_set(err, SHOAL_ERR_ARG, "bad device '%s' (cuda:N)", name);
            ordinal = (int)v;
        }
        st = tcuda_open(ordinal, mode, &impl, err);
    } else {
        return shoal_error_set(err, SHOAL_ERR_ARG, "unknown device '%s' (cpu, cuda, cuda:N)", name);
    }
    if (st != SHOAL_OK) return st;
    shoal_device *d = malloc(sizeof *d);
    if (!d) {
        impl->destroy(impl);
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    }
    d->impl = impl;
    *out = d;
    return SHOAL_OK;
}

void shoal_device_close(shoal_device *device) {
    if (!device) return;
    device->impl->destroy(device->impl);
    free(device);
}

const char *shoal_device_description(const shoal_device *device) { return device->impl->description; }

const shoal_memory_provider *shoal_device_memory_provider(const shoal_device *device) {
    return device->impl->provider ? device->impl->provider : shoal_host_memory_provider();
}


