/*
 * lapi.h: what the public handles of shoal.h section 7 wrap, for other subsystems of the library that
 * work on sessions (snapshots: src/snapshot). Not part of the public API.
 */
#ifndef LAPI_H
#define LAPI_H

#include <pthread.h>

#include "lbackend.h"
#include "lsession.h"

struct shoal_model {
    lmodel *m;
    lbackend *be;
    char backend_desc[64];
    /* The model identity (lload_model_id), hashed over every weight on first use and kept: snapshots
     * check it on each save and restore. Sessions of one model may run on several threads. */
    pthread_mutex_t id_lock;
    bool have_id;
    uint8_t id[32];
};

struct shoal_session {
    shoal_model *model;
    lsession *s;
};

/* The model's identity (computed once, then cached; thread-safe). */
void lapi_model_id(shoal_model *model, uint8_t id[32]);

#endif
