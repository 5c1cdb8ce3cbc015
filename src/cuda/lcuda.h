/* lcuda.h: the CUDA backend of the inference engine (lcuda.cu); present when built with nvcc. */
#ifndef LCUDA_H
#define LCUDA_H

#include "lbackend.h"

shoal_status lcuda_create(const lbackend_opts *opts, lbackend **out, shoal_error *err);

#endif
