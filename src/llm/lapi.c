/* lapi.c: the public inference API (shoal.h section 7) over lmodel, lbackend, lsession, ltok and lsample. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lapi.h"
#include "lbackend.h"
#include "lload.h"
#include "lsample.h"
#include "lsession.h"
#include "ltok.h"

shoal_status shoal_model_load(const char *path, const shoal_model_options *options, shoal_model **out,
                              shoal_error *err) {
    static const shoal_model_options defaults = {0};
    if (!options)
        options = &defaults;
    *out = NULL;
    if (!path)
        return shoal_error_set(err, SHOAL_ERR_ARG, "no model path");
    shoal_model *sm = calloc(1, sizeof *sm);
    if (!sm)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&sm->id_lock, NULL);
    lmodel_load_opts lo = {options->tokenizer_path, options->progress, options->progress_user};
    lbackend_opts bo = {options->n_threads, options->device};
    shoal_status st = lmodel_load(path, &lo, &sm->m, err);
    if (st)
        goto fail;
    st = lbackend_create(options->backend, &bo, &sm->be, err);
    if (st)
        goto fail;
    st = lbackend_attach(sm->be, sm->m, err);
    if (st)
        goto fail;
    if (sm->be->describe)
        sm->be->describe(sm->be, sm->backend_desc, sizeof sm->backend_desc);
    else
        snprintf(sm->backend_desc, sizeof sm->backend_desc, "%s", sm->be->name);
    *out = sm;
    return SHOAL_OK;
fail:
    shoal_model_free(sm);
    return st;
}

void shoal_model_free(shoal_model *model) {
    if (!model)
        return;
    lmodel_free(model->m); /* releases the backend's hold on the model first */
    lbackend_destroy(model->be);
    pthread_mutex_destroy(&model->id_lock);
    free(model);
}

void lapi_model_id(shoal_model *model, uint8_t id[32]) {
    pthread_mutex_lock(&model->id_lock);
    if (!model->have_id) {
        lload_model_id(model->m, model->id);
        model->have_id = true;
    }
    memcpy(id, model->id, 32);
    pthread_mutex_unlock(&model->id_lock);
}

void shoal_model_get_info(const shoal_model *model, shoal_model_info *out) {
    const lmodel *m = model->m;
    const lmodel_config *c = &m->cfg;
    memset(out, 0, sizeof *out);
    out->name = c->name;
    out->arch = c->arch;
    out->format = m->format;
    out->weight_type = lmodel_dtype_name(m->layers[0].wq.dtype);
    snprintf(out->backend, sizeof out->backend, "%s", model->backend_desc);
    out->dim = c->dim;
    out->n_layers = c->n_layers;
    out->n_heads = c->n_heads;
    out->n_kv_heads = c->n_kv_heads;
    out->head_dim = c->head_dim;
    out->hidden_dim = c->hidden_dim;
    out->vocab_size = c->vocab_size;
    out->seq_len = c->seq_len;
    out->rope_theta = c->rope_theta;
    out->rms_eps = c->rms_eps;
    out->tied_embeddings = c->tied_embeddings;
    out->rope_scaling = c->rope_scaling.enabled;
    out->n_params = lmodel_param_count(m);
    out->weight_bytes = lmodel_weight_bytes(m);
    out->resident_bytes = m->owned_bytes;
    out->has_tokenizer = m->tok != NULL;
    out->bos_id = m->tok ? ltok_bos(m->tok) : -1;
    out->eos_id = m->tok ? ltok_eos(m->tok) : -1;
}

shoal_status shoal_session_new(shoal_model *model, const shoal_session_options *options, shoal_session **out,
                               shoal_error *err) {
    static const shoal_session_options defaults = {0};
    if (!options)
        options = &defaults;
    *out = NULL;
    if (options->kv_type != SHOAL_KV_F32 && options->kv_type != SHOAL_KV_F16)
        return shoal_error_set(err, SHOAL_ERR_ARG, "unknown KV cache type %d", (int)options->kv_type);
    shoal_session *ss = calloc(1, sizeof *ss);
    if (!ss)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    lsession_opts so = {options->n_ctx, options->kv_type == SHOAL_KV_F16 ? LDT_F16 : LDT_F32, options->max_batch};
    shoal_status st = lsession_new(model->m, &so, &ss->s, err);
    if (st) {
        free(ss);
        return st;
    }
    ss->model = model;
    *out = ss;
    return SHOAL_OK;
}

void shoal_session_free(shoal_session *session) {
    if (!session)
        return;
    lsession_free(session->s);
    free(session);
}

void shoal_session_reset(shoal_session *session) {
    lsession_reset(session->s);
}

shoal_status shoal_session_truncate(shoal_session *session, uint32_t n, shoal_error *err) {
    if (n > session->s->pos)
        return shoal_error_set(err, SHOAL_ERR_ARG, "cannot truncate to %u: only %u positions are filled", n,
                               session->s->pos);
    session->s->pos = n; /* positions >= pos are never read (lsession_reset) */
    return SHOAL_OK;
}

void shoal_session_rewind(shoal_session *session, uint32_t n_pos) {
    lsession_rewind(session->s, n_pos);
}

uint32_t shoal_session_position(const shoal_session *session) {
    return session->s->pos;
}

uint32_t shoal_session_context(const shoal_session *session) {
    return session->s->n_ctx;
}

uint64_t shoal_session_memory(const shoal_session *session) {
    return lsession_memory_bytes(session->s);
}

uint64_t shoal_session_kv_memory(const shoal_session *session) {
    return lsession_kv_bytes(session->s);
}

shoal_status shoal_session_prefill(shoal_session *session, const int32_t *tokens, uint32_t n, float *logits,
                                   shoal_error *err) {
    if (!tokens && n)
        return shoal_error_set(err, SHOAL_ERR_ARG, "no tokens");
    return lsession_prefill(session->s, tokens, n, logits, err);
}

shoal_status shoal_session_decode(shoal_session *session, int32_t token, float *logits, shoal_error *err) {
    return lsession_decode(session->s, token, logits, err);
}

const float *shoal_session_logits(const shoal_session *session) {
    return session->s->logits;
}

static shoal_status no_tokenizer(const shoal_model *model, shoal_error *err) {
    return shoal_error_set(err, SHOAL_ERR_NOTFOUND, "%s: the model has no tokenizer (give one with --tokenizer)",
                           model->m->path);
}

shoal_status shoal_tokenize(const shoal_model *model, const char *text, size_t len, bool add_bos,
                            bool parse_special, int32_t *ids, size_t max_ids, size_t *n_ids, shoal_error *err) {
    if (!model->m->tok)
        return no_tokenizer(model, err);
    return ltok_encode(model->m->tok, text, len, add_bos, parse_special, ids, max_ids, n_ids, err);
}

size_t shoal_detokenize(const shoal_model *model, int32_t prev, int32_t id, char *buf, size_t cap) {
    if (!model->m->tok)
        return 0;
    return ltok_decode_token(model->m->tok, prev, id, buf, cap);
}

bool shoal_token_is_eog(const shoal_model *model, int32_t id) {
    return model->m->tok && ltok_is_eog(model->m->tok, id);
}

shoal_status shoal_chat_format(const shoal_model *model, const shoal_chat_message *messages, size_t n, char *out,
                               size_t cap, size_t *len, shoal_error *err) {
    if (!model->m->tok)
        return no_tokenizer(model, err);
    _Static_assert(sizeof(shoal_chat_message) == sizeof(ltok_chat_msg), "same layout");
    return ltok_chat_format(model->m->tok, (const ltok_chat_msg *)messages, n, true, out, cap, len, err);
}

void shoal_sampler_params_default(shoal_sampler_params *params) {
    lsample_params p;
    lsample_params_default(&p);
    *params = (shoal_sampler_params){p.temperature, p.top_k,          p.top_p, p.min_p,
                                     p.repeat_penalty, p.repeat_last_n, p.seed};
}

shoal_status shoal_sampler_new(const shoal_sampler_params *params, shoal_sampler **out, shoal_error *err) {
    lsample_params p = {params->temperature,    params->top_k,         params->top_p, params->min_p,
                        params->repeat_penalty, params->repeat_last_n, params->seed};
    lsampler *s = NULL;
    shoal_status st = lsample_new(&p, &s, err);
    *out = (shoal_sampler *)s;
    return st;
}

void shoal_sampler_free(shoal_sampler *sampler) {
    lsample_free((lsampler *)sampler);
}

int32_t shoal_sampler_next(shoal_sampler *sampler, float *logits, uint32_t n_vocab, const int32_t *history,
                           size_t n_history) {
    return lsample_next((lsampler *)sampler, logits, n_vocab, history, n_history);
}
