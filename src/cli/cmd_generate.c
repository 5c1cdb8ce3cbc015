/*
 * cmd_generate.c: `shoal generate`: text generation from a model file, on the public API (shoal.h §7).
 *
 * Only generated text goes to stdout (streamed token by token), so the output can be piped; everything
 * else (progress, timings) goes to stderr. The last stderr line is the timings summary.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "shoal.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: shoal generate --model PATH [--prompt TEXT | --prompt-ids 1,2,3 | --chat] [options]\n"
            "  -n N                  tokens to generate (default 256; stops early at end of generation)\n"
            "  --temp T              temperature, 0 = greedy (default 0.8)\n"
            "  --top-k K --top-p P --min-p M --repeat-penalty R --repeat-last-n N\n"
            "  --seed S              sampler seed (default: from the clock)\n"
            "  --ctx N               context length (default: the model's)\n"
            "  --kv f32|f16          KV cache type (default f32)\n"
            "  --batch N             prefill batch size (default min(ctx, 256))\n"
            "  --threads N           CPU threads (default: all)\n"
            "  --device D            cpu (default), cuda or cuda:N\n"
            "  --tokenizer PATH      tokenizer.bin / tokenizer.json (default: the model's own)\n"
            "  --system TEXT         system message for --chat\n"
            "  --no-bos              do not put BOS before the prompt\n"
            "  --ignore-eos          keep generating past end-of-generation tokens (benchmarks)\n"
            "  --chat                read user messages from stdin, one per line, and answer each\n"
            "  --load-session FILE   start from a snapshot (KV cache, tokens, sampler) instead of from nothing;\n"
            "                        a prompt is then appended to it; sampling options given here replace the\n"
            "                        snapshot's parameters (its generator state is kept either way)\n"
            "  --save-session FILE   write the session to FILE at the end (safetensors; crash-safe)\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress(void *user, uint64_t done, uint64_t total) {
    (void)user;
    fprintf(stderr, "\rloading %.0f / %.0f MiB", done / 1048576.0, total / 1048576.0);
    if (done >= total)
        fprintf(stderr, "\n");
}

typedef struct gen_stats {
    uint64_t prompt_tokens, gen_tokens;
    double prefill_s, decode_s;
} gen_stats;

typedef struct gen_ctx {
    shoal_model *model;
    shoal_session *sess;
    shoal_sampler *sampler;
    shoal_model_info info;
    int32_t *hist; /* every token in the session, in order */
    size_t n_hist;
    float *logits;
    bool ignore_eos;
    gen_stats st;
} gen_ctx;

static bool parse_ids(const char *s, int32_t **ids, size_t *n) {
    size_t cap = 16;
    *n = 0;
    *ids = malloc(cap * sizeof **ids);
    while (*ids && *s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX)
            return false;
        if (*n == cap) {
            int32_t *g = realloc(*ids, (cap *= 2) * sizeof **ids);
            if (!g)
                return false;
            *ids = g;
        }
        (*ids)[(*n)++] = (int32_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return false;
    }
    return *ids && *n > 0;
}

/* Feeds tokens [from, n_hist) of the history, then samples and streams up to max_new tokens. */
static int generate(gen_ctx *g, size_t from, int max_new, shoal_error *err) {
    uint32_t V = g->info.vocab_size;
    double t0 = now_s();
    /* from == n_hist only after --load-session of a snapshot that carries the logits (g->logits). */
    if (from < g->n_hist &&
        shoal_session_prefill(g->sess, g->hist + from, (uint32_t)(g->n_hist - from), g->logits, err))
        return 1;
    g->st.prefill_s += now_s() - t0;
    g->st.prompt_tokens += g->n_hist - from;
    t0 = now_s();
    int32_t prev = g->n_hist ? g->hist[g->n_hist - 1] : -1;
    for (int i = 0; i < max_new; i++) {
        int32_t tok = shoal_sampler_next(g->sampler, g->logits, V, g->hist, g->n_hist);
        if (tok < 0) {
            shoal_error_set(err, SHOAL_ERR_ARG, "the sampler could not choose a token (NaN logits?)");
            return 1;
        }
        g->hist[g->n_hist++] = tok;
        g->st.gen_tokens++;
        if (!g->ignore_eos && g->info.has_tokenizer && shoal_token_is_eog(g->model, tok))
            break;
        if (g->info.has_tokenizer) {
            char buf[256];
            size_t len = shoal_detokenize(g->model, prev, tok, buf, sizeof buf);
            fwrite(buf, 1, len < sizeof buf ? len : sizeof buf, stdout);
        } else {
            printf("%s%d", i ? " " : "", tok);
        }
        fflush(stdout);
        prev = tok;
        if (i + 1 == max_new || shoal_session_position(g->sess) >= shoal_session_context(g->sess))
            break;
        if (shoal_session_decode(g->sess, tok, g->logits, err))
            return 1;
    }
    g->st.decode_s += now_s() - t0;
    return 0;
}

static int chat_loop(gen_ctx *g, const char *system, int max_new, shoal_error *err) {
    shoal_chat_message *msgs = NULL;
    size_t n_msgs = 0;
    char line[8192];
    int rc = 0;
    char **owned = NULL;
    size_t n_owned = 0;
    msgs = calloc(1024, sizeof *msgs);
    owned = calloc(1024, sizeof *owned);
    if (!msgs || !owned) {
        fprintf(stderr, "shoal generate: out of memory\n");
        rc = 1;
        goto done;
    }
    if (system)
        msgs[n_msgs++] = (shoal_chat_message){"system", system};
    if (isatty(0))
        fprintf(stderr, "chat: one message per line; end with ^D\n");
    while (fgets(line, sizeof line, stdin) && n_msgs + 2 < 1024) {
        line[strcspn(line, "\n")] = 0;
        char *user = strdup(line);
        if (!user)
            break;
        owned[n_owned++] = user;
        msgs[n_msgs++] = (shoal_chat_message){"user", user};
        size_t len = 0;
        shoal_chat_format(g->model, msgs, n_msgs, NULL, 0, &len, NULL);
        char *text = malloc(len + 1);
        size_t n_ids = 0;
        if (!text || shoal_chat_format(g->model, msgs, n_msgs, text, len + 1, &len, err)) {
            free(text);
            rc = 1;
            break;
        }
        /* The conversation so far is already in the session: feed only what follows it. */
        shoal_tokenize(g->model, text, len, false, true, NULL, 0, &n_ids, NULL);
        size_t room = shoal_session_context(g->sess);
        if (n_ids + (size_t)max_new > room) {
            free(text);
            shoal_error_set(err, SHOAL_ERR_ARG, "the conversation no longer fits the context (%zu tokens)", room);
            rc = 1;
            break;
        }
        int32_t *ids = malloc((n_ids ? n_ids : 1) * sizeof *ids);
        if (!ids || shoal_tokenize(g->model, text, len, false, true, ids, n_ids, &n_ids, err)) {
            free(ids);
            free(text);
            rc = 1;
            break;
        }
        free(text);
        /* Keep the longest prefix the session already holds (the last reply's end-of-turn token was
         * sampled but never fed, so it is not in the cache); at least one token must be fed for logits. */
        size_t common = 0, held = shoal_session_position(g->sess);
        while (common < held && common < n_ids && g->hist[common] == ids[common])
            common++;
        if (n_ids == 0) {
            free(ids);
            continue;
        }
        if (common == n_ids)
            common--;
        shoal_session_rewind(g->sess, (uint32_t)common);
        memcpy(g->hist, ids, n_ids * sizeof *ids);
        g->n_hist = n_ids;
        free(ids);
        size_t before = g->n_hist;
        if (generate(g, common, max_new, err)) {
            rc = 1;
            break;
        }
        printf("\n");
        fflush(stdout);
        /* Keep the reply as the assistant's message (text from the generated ids). */
        size_t cap = 1 + 64 * (g->n_hist - before), used = 0;
        char *reply = malloc(cap);
        if (!reply)
            break;
        for (size_t i = before; i < g->n_hist; i++) {
            if (shoal_token_is_eog(g->model, g->hist[i]))
                break;
            char buf[256];
            size_t l = shoal_detokenize(g->model, i ? g->hist[i - 1] : -1, g->hist[i], buf, sizeof buf);
            if (l > sizeof buf)
                l = sizeof buf;
            if (used + l + 1 > cap)
                break;
            memcpy(reply + used, buf, l);
            used += l;
        }
        reply[used] = 0;
        owned[n_owned++] = reply;
        msgs[n_msgs++] = (shoal_chat_message){"assistant", reply};
    }
done:
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    free(owned);
    free(msgs);
    return rc;
}

int cmd_generate(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *prompt_ids = NULL, *tokenizer = NULL, *system = NULL;
    const char *save_path = NULL, *load_path = NULL;
    int n_new = 256;
    bool chat = false, add_bos = true, ignore_eos = false, seed_given = false, sampling_given = false;
    shoal_sampler_params sp;
    shoal_sampler_params_default(&sp);
    shoal_model_options mo = {0};
    shoal_session_options so = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && (i++, 1))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (ARG("--model") || ARG("-m")) {
            model_path = v;
        } else if (ARG("--prompt") || ARG("-p")) {
            prompt = v;
        } else if (ARG("--prompt-ids")) {
            prompt_ids = v;
        } else if (ARG("--tokenizer")) {
            tokenizer = v;
        } else if (ARG("--system")) {
            system = v;
        } else if (ARG("-n")) {
            n_new = atoi(v);
        } else if (ARG("--temp")) {
            sampling_given = true;
            sp.temperature = strtof(v, NULL);
        } else if (ARG("--top-k")) {
            sampling_given = true;
            sp.top_k = atoi(v);
        } else if (ARG("--top-p")) {
            sampling_given = true;
            sp.top_p = strtof(v, NULL);
        } else if (ARG("--min-p")) {
            sampling_given = true;
            sp.min_p = strtof(v, NULL);
        } else if (ARG("--repeat-penalty")) {
            sampling_given = true;
            sp.repeat_penalty = strtof(v, NULL);
        } else if (ARG("--repeat-last-n")) {
            sampling_given = true;
            sp.repeat_last_n = atoi(v);
        } else if (ARG("--seed")) {
            sp.seed = strtoull(v, NULL, 10);
            seed_given = true;
        } else if (ARG("--ctx")) {
            so.n_ctx = (uint32_t)atoi(v);
        } else if (ARG("--batch")) {
            so.max_batch = (uint32_t)atoi(v);
        } else if (ARG("--kv")) {
            if (strcmp(v, "f32") && strcmp(v, "f16")) {
                fprintf(stderr, "shoal generate: --kv must be f32 or f16\n");
                return 2;
            }
            so.kv_type = !strcmp(v, "f16") ? SHOAL_KV_F16 : SHOAL_KV_F32;
        } else if (ARG("--threads") || ARG("-t")) {
            mo.n_threads = (uint32_t)atoi(v);
        } else if (ARG("--device")) {
            /* "cpu", "cuda" or "cuda:N" */
            mo.backend = strncmp(v, "cuda:", 5) ? v : "cuda";
            mo.device = strncmp(v, "cuda:", 5) ? 0 : atoi(v + 5);
        } else if (ARG("--save-session")) {
            save_path = v;
        } else if (ARG("--load-session")) {
            load_path = v;
        } else if (!strcmp(a, "--chat")) {
            chat = true;
        } else if (!strcmp(a, "--no-bos")) {
            add_bos = false;
        } else if (!strcmp(a, "--ignore-eos")) {
            ignore_eos = true;
        } else {
            fprintf(stderr, "shoal generate: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
#undef ARG
    }
    if (!model_path || (!!prompt + !!prompt_ids + chat) > 1 || n_new < 0) {
        usage(stderr);
        return 2;
    }
    if (!seed_given)
        sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    mo.tokenizer_path = tokenizer;
    struct stat sb;
    if (isatty(2) && stat(model_path, &sb) == 0 && sb.st_size > (64 << 20)) {
        mo.progress = progress;
    }

    shoal_error err = {0};
    gen_ctx g = {0};
    g.ignore_eos = ignore_eos;
    int rc = 1;
    int32_t *pids = NULL;
    size_t n_pids = 0;
    if (shoal_model_load(model_path, &mo, &g.model, &err))
        goto fail;
    shoal_model_get_info(g.model, &g.info);
    if (shoal_session_new(g.model, &so, &g.sess, &err) || shoal_sampler_new(&sp, &g.sampler, &err))
        goto fail;
    g.logits = malloc((size_t)g.info.vocab_size * sizeof(float));
    g.hist = malloc((size_t)shoal_session_context(g.sess) * sizeof(int32_t) + sizeof(int32_t));
    if (!g.logits || !g.hist) {
        shoal_error_set(&err, SHOAL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    uint32_t n_ctx = shoal_session_context(g.sess);
    size_t from = 0; /* history before it is in the KV cache */
    bool have_logits = false;
    if (load_path) {
        /* The snapshot's sampler, unless sampling options were given: then ours with its generator state. */
        shoal_sampler *saved = NULL;
        shoal_snapshot_restored r = {.tokens = g.hist,
                                     .tokens_cap = n_ctx + 1,
                                     .sampler = sampling_given ? g.sampler : NULL,
                                     .new_sampler = sampling_given ? NULL : &saved,
                                     .logits = g.logits};
        if (shoal_session_restore(g.sess, load_path, &r, &err))
            goto fail;
        if (saved) {
            shoal_sampler_free(g.sampler);
            g.sampler = saved;
        }
        g.n_hist = r.n_tokens;
        from = r.n_positions;
        have_logits = r.has_logits;
        fprintf(stderr, "restored %u positions (%u tokens) from %s\n", r.n_positions, r.n_tokens, load_path);
    }
    if (chat) {
        if (!g.info.has_tokenizer) {
            shoal_error_set(&err, SHOAL_ERR_ARG, "--chat needs a tokenizer");
            goto fail;
        }
        if (chat_loop(&g, system, n_new, &err))
            goto fail;
    } else {
        if (load_path && !prompt && !prompt_ids) {
            n_pids = 0; /* continue the snapshot as it was */
        } else if (prompt_ids) {
            if (!parse_ids(prompt_ids, &pids, &n_pids)) {
                shoal_error_set(&err, SHOAL_ERR_ARG, "--prompt-ids: expected comma-separated token ids");
                goto fail;
            }
        } else if (g.info.has_tokenizer) {
            const char *text = prompt ? prompt : "";
            add_bos = add_bos && !load_path; /* a continuation has its BOS already */
            if (shoal_tokenize(g.model, text, strlen(text), add_bos, false, NULL, 0, &n_pids, NULL) &&
                n_pids == 0) {
                shoal_error_set(&err, SHOAL_ERR_ARG, "cannot tokenize the prompt");
                goto fail;
            }
            pids = malloc((n_pids ? n_pids : 1) * sizeof *pids);
            if (!pids || shoal_tokenize(g.model, text, strlen(text), add_bos, false, pids, n_pids, &n_pids, &err))
                goto fail;
        } else {
            shoal_error_set(&err, SHOAL_ERR_ARG,
                            "the model has no tokenizer: give --tokenizer PATH, or the prompt as --prompt-ids");
            goto fail;
        }
        if (n_pids == 0 && g.n_hist == 0) {
            shoal_error_set(&err, SHOAL_ERR_ARG, "empty prompt (and no BOS token to start from)");
            goto fail;
        }
        if (g.n_hist + n_pids >= n_ctx) {
            shoal_error_set(&err, SHOAL_ERR_ARG, "the prompt (%zu tokens after %zu) does not fit the context (%u)",
                            n_pids, g.n_hist, n_ctx);
            goto fail;
        }
        if (n_pids)
            memcpy(g.hist + g.n_hist, pids, n_pids * sizeof *pids);
        g.n_hist += n_pids;
        if (from == g.n_hist && !have_logits) {
            shoal_error_set(&err, SHOAL_ERR_ARG, "%s has no pending token or logits to continue from: give a prompt",
                            load_path);
            goto fail;
        }
        if (generate(&g, from, n_new, &err))
            goto fail;
        printf("\n");
    }
    if (save_path) {
        /* The last sampled token is normally not fed yet: it is saved as pending history, and the logits
         * (used as sampler scratch since) only when everything was fed and nothing sampled (-n 0). */
        uint32_t pos = shoal_session_position(g.sess);
        shoal_snapshot_save_opts o = {g.hist, (uint32_t)g.n_hist, g.sampler,
                                      g.n_hist == pos && g.st.gen_tokens == 0 ? g.logits : NULL};
        if (shoal_session_save(g.sess, save_path, &o, &err))
            goto fail;
        fprintf(stderr, "saved %u positions (%zu tokens) to %s\n", pos, g.n_hist, save_path);
    }
    rc = 0;
    goto done;
fail:
    fflush(stdout);
    fprintf(stderr, "shoal generate: %s\n", err.message);
done:
    if (g.model) {
        fflush(stdout);
        /* decode tok/s counts the tokens after the first: the first comes from the prefill's logits. */
        uint64_t dec = g.st.gen_tokens > 1 ? g.st.gen_tokens - 1 : 0;
        fprintf(stderr,
                "timings: backend %s, prompt %llu tokens, prefill %.2f tok/s, decode %.2f tok/s (%llu tokens), "
                "model %.1f MiB, session %.1f MiB\n",
                g.info.backend, (unsigned long long)g.st.prompt_tokens,
                g.st.prefill_s > 0 ? g.st.prompt_tokens / g.st.prefill_s : 0.0,
                g.st.decode_s > 0 ? dec / g.st.decode_s : 0.0, (unsigned long long)g.st.gen_tokens,
                (g.info.weight_bytes + g.info.resident_bytes) / 1048576.0,
                g.sess ? shoal_session_memory(g.sess) / 1048576.0 : 0.0);
    }
    free(pids);
    free(g.logits);
    free(g.hist);
    shoal_sampler_free(g.sampler);
    shoal_session_free(g.sess);
    shoal_model_free(g.model);
    return rc;
}
