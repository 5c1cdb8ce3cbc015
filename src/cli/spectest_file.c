/*
 * spectest_file.c: one wast2json script against the engine (see spectest_file.h).
 *
 * State of a script: the modules it defined (the last one is "current", named ones can be addressed by
 * name), one shoal_imports holding the "spectest" host module plus everything `register`ed, and the
 * externref ids it used. Every module that was ever instantiated, successfully or not, stays alive until
 * the script ends: Wasm 2.0 lets a failed instantiation leave its functions in imported tables, so
 * freeing it early could leave the engine with dangling references. Cleanup frees instances newest
 * first, then modules, then the imports.
 *
 * Judgement rules (the JSON format is described in the suite's README, ../shared/wasm-spec/README.md):
 *   - rejections must carry the right status: assert_invalid -> SHOAL_ERR_INVALID, assert_malformed ->
 *     SHOAL_ERR_MALFORMED, assert_unlinkable -> SHOAL_ERR_UNLINKABLE, assert_uninstantiable and
 *     assert_trap -> SHOAL_ERR_TRAP with a trap whose spec wording matches "text" (either may be a prefix
 *     of the other: the suite writes "uninitialized element 2" and "indirect call"), assert_exhaustion ->
 *     SHOAL_TRAP_STACK_EXHAUSTED;
 *   - rejection messages are compared with "text" only under --strict-text (engines word them freely);
 *   - SHOAL_ERR_UNSUPPORTED is a skip in simd_* files and a failure anywhere else; v128 values are skips;
 *   - text-format modules (assert_malformed with module_type "text") are skipped: there is no text parser.
 */
#include "spectest_file.h"

#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <cjson/cJSON.h>

#include "shoal.h"
#include "spectest_value.h"
#include "spectest_wasm.h"

/* Fuel for instantiation (start functions of the suite are tiny; this only stops an endless one). */
#define SPF_START_FUEL UINT64_C(1000000000)
#define SPF_MAX_SKIP_REASONS 24
#define SPF_SPECTEST_HOST "spectest.host"

typedef struct SpfModule {
    char *name;           /* "$M" or NULL */
    shoal_instance *inst; /* NULL when the module failed or was skipped */
    int line;
    bool skipped;
} SpfModule;

typedef struct SpfOwned {
    shoal_module *module;
    shoal_instance *inst; /* may be NULL */
} SpfOwned;

typedef struct SpfFile {
    const SpfOptions *opt;
    SpfProgress *p;
    const char *label;
    const char *cmd; /* type of the command being executed */
    char *dir;       /* where the script's modules are */
    bool simd;
    shoal_imports *imports;
    SpfModule *mods;
    size_t nmods, capmods;
    SpfOwned *owned;
    size_t nowned, capowned;
    SpvRefs refs;
    int *nul_lines; /* lines of commands whose strings hold an escaped NUL (see spf_find_nul_lines) */
    size_t nnul_lines;
    struct {
        char reason[160];
        uint64_t count;
    } skips[SPF_MAX_SKIP_REASONS];
    size_t nskips;
} SpfFile;

/* ---- reporting -------------------------------------------------------------------------------- */

#if defined(__GNUC__)
#define SPF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SPF_PRINTF(a, b)
#endif

static void spf_pass(SpfFile *f) {
    f->p->passed++;
}

SPF_PRINTF(2, 3) static void spf_fail(SpfFile *f, const char *fmt, ...) {
    va_list ap;
    f->p->failed++;
    fprintf(f->opt->out, "  %s:%d: %s: ", f->label, f->p->line, f->cmd);
    va_start(ap, fmt);
    vfprintf(f->opt->out, fmt, ap);
    va_end(ap);
    fputc('\n', f->opt->out);
    fflush(f->opt->out); /* a later engine crash must not swallow it */
}

SPF_PRINTF(2, 3) static void spf_skip(SpfFile *f, const char *fmt, ...) {
    char reason[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    f->p->skipped++;
    size_t i;
    for (i = 0; i < f->nskips; i++)
        if (!strcmp(f->skips[i].reason, reason))
            break;
    if (i == f->nskips) {
        if (f->nskips == SPF_MAX_SKIP_REASONS)
            i--; /* the last slot collects the rest */
        else
            snprintf(f->skips[f->nskips++].reason, sizeof f->skips[0].reason, "%s", reason);
    }
    f->skips[i].count++;
}

SPF_PRINTF(2, 3) static void spf_note(SpfFile *f, const char *fmt, ...) {
    if (!f->opt->verbose)
        return;
    va_list ap;
    fprintf(f->opt->out, "  %s:%d: %s: note: ", f->label, f->p->line, f->cmd);
    va_start(ap, fmt);
    vfprintf(f->opt->out, fmt, ap);
    va_end(ap);
    fputc('\n', f->opt->out);
}

/* "STATUS: message", or the trap's wording for traps. */
static const char *spf_describe_error(shoal_status st, const shoal_error *err, char *buf, size_t size) {
    if (st == SHOAL_ERR_TRAP)
        snprintf(buf, size, "trap '%s'%s%s", shoal_trap_message(err->trap), err->message[0] ? ": " : "",
                 err->message);
    else
        snprintf(buf, size, "%s: %s", shoal_status_name(st), err->message);
    return buf;
}

/* Either may be a prefix of the other; both must be non-empty. */
static bool spf_text_matches(const char *actual, const char *expected) {
    size_t a = strlen(actual), e = strlen(expected);
    return a && e && !strncmp(actual, expected, a < e ? a : e);
}

/* ---- bookkeeping ------------------------------------------------------------------------------ */

static bool spf_own(SpfFile *f, shoal_module *module, shoal_instance *inst) {
    if (f->nowned == f->capowned) {
        size_t cap = f->capowned ? f->capowned * 2 : 16;
        SpfOwned *p = realloc(f->owned, cap * sizeof *p);
        if (!p)
            return false;
        f->owned = p;
        f->capowned = cap;
    }
    f->owned[f->nowned++] = (SpfOwned){module, inst};
    return true;
}

/* Records the outcome of a `module` command; it becomes the current module. */
static void spf_push_module(SpfFile *f, const cJSON *cmd, shoal_instance *inst, bool skipped) {
    const cJSON *jname = cJSON_GetObjectItemCaseSensitive(cmd, "name");
    if (f->nmods == f->capmods) {
        size_t cap = f->capmods ? f->capmods * 2 : 16;
        SpfModule *p = realloc(f->mods, cap * sizeof *p);
        if (!p) {
            spf_fail(f, "out of memory");
            return;
        }
        f->mods = p;
        f->capmods = cap;
    }
    SpfModule *m = &f->mods[f->nmods++];
    m->name = cJSON_IsString(jname) ? strdup(jname->valuestring) : NULL;
    m->inst = inst;
    m->line = f->p->line;
    m->skipped = skipped;
}

typedef enum SpfOutcome {
    SPF_RAN,     /* the engine was asked; see the status */
    SPF_SKIPPED, /* why says why */
    SPF_BROKEN,  /* the command could not be carried out; why says why (a failure) */
} SpfOutcome;

/* The module an action or register refers to: the named one, else the current one. */
static SpfOutcome spf_find_module(SpfFile *f, const cJSON *jname, shoal_instance **inst, char *why, size_t n) {
    const SpfModule *m = NULL;
    if (jname && !cJSON_IsString(jname)) {
        snprintf(why, n, "module name is not a string");
        return SPF_BROKEN;
    }
    if (jname) {
        for (size_t i = f->nmods; i-- > 0;)
            if (f->mods[i].name && !strcmp(f->mods[i].name, jname->valuestring)) {
                m = &f->mods[i];
                break;
            }
        if (!m) {
            snprintf(why, n, "no module named %.60s", jname->valuestring);
            return SPF_BROKEN;
        }
    } else {
        if (!f->nmods) {
            snprintf(why, n, "no module defined yet");
            return SPF_BROKEN;
        }
        m = &f->mods[f->nmods - 1];
    }
    if (m->skipped) {
        /* the same wording for every such command, so -v groups them under one reason */
        snprintf(why, n, "its module was skipped (SIMD, or text format)");
        return SPF_SKIPPED;
    }
    if (!m->inst) {
        snprintf(why, n, "its module (line %d) failed to instantiate", m->line);
        return SPF_BROKEN;
    }
    *inst = m->inst;
    return SPF_RAN;
}

/* ---- timeouts --------------------------------------------------------------------------------- */

/* The instance running under the timer. An atomic pointer is what a signal handler may read. */
static _Atomic(shoal_instance *) spf_running;

static void spf_on_alarm(int sig) {
    (void)sig;
    shoal_instance *inst = atomic_load(&spf_running);
    if (inst)
        shoal_instance_interrupt(inst);
}

void spf_install_timer(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = spf_on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
}

static void spf_arm(SpfFile *f, shoal_instance *inst) {
    if (!f->opt->timeout_s)
        return;
    struct itimerval t = {{0, 0}, {(time_t)f->opt->timeout_s, 0}};
    atomic_store(&spf_running, inst);
    setitimer(ITIMER_REAL, &t, NULL);
}

static void spf_disarm(SpfFile *f, shoal_instance *inst) {
    if (!f->opt->timeout_s)
        return;
    struct itimerval t = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &t, NULL);
    atomic_store(&spf_running, NULL);
    shoal_instance_clear_interrupt(inst); /* in case the alarm fired just as the call returned */
}

/* ---- actions ---------------------------------------------------------------------------------- */

typedef struct SpfAction {
    shoal_status status;
    shoal_error err;
    uint32_t nresults;
    shoal_val *results;   /* nresults entries */
    shoal_valtype *types; /* nresults entries */
    char desc[200];       /* "add(i32:1, i32:2)" for messages */
    char why[256];
} SpfAction;

static void spf_action_free(SpfAction *a) {
    free(a->results);
    free(a->types);
    a->results = NULL;
    a->types = NULL;
}

/* Appends the action's target and arguments, as the script writes them, to a->desc. */
static void spf_describe_action(SpfAction *a, const cJSON *field, const cJSON *args) {
    size_t n = 0, cap = sizeof a->desc;
    int w = snprintf(a->desc, cap, "%.60s(", cJSON_IsString(field) ? field->valuestring : "?");
    n = w > 0 ? (size_t)w : 0;
    const cJSON *arg;
    bool first = true;
    cJSON_ArrayForEach(arg, args) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(arg, "type");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(arg, "value");
        if (n >= cap)
            break;
        w = snprintf(a->desc + n, cap - n, "%s%s:%.24s", first ? "" : ", ", cJSON_IsString(t) ? t->valuestring : "?",
                     cJSON_IsString(v) ? v->valuestring : "?");
        n += w > 0 ? (size_t)w : 0;
        first = false;
    }
    if (n < cap)
        snprintf(a->desc + n, cap - n, ")");
}

static SpfOutcome spf_action(SpfFile *f, const cJSON *cmd, SpfAction *a) {
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(cmd, "action");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(action, "type");
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(action, "field");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(action, "args");
    shoal_instance *inst = NULL;
    shoal_val *argv = NULL;
    memset(a, 0, sizeof *a);
    spf_describe_action(a, field, args);
    if (!cJSON_IsObject(action) || !cJSON_IsString(type) || !cJSON_IsString(field)) {
        snprintf(a->why, sizeof a->why, "malformed action");
        return SPF_BROKEN;
    }
    SpfOutcome o = spf_find_module(f, cJSON_GetObjectItemCaseSensitive(action, "module"), &inst, a->why,
                                   sizeof a->why);
    if (o != SPF_RAN)
        return o;

    if (!strcmp(type->valuestring, "get")) {
        a->results = calloc(1, sizeof *a->results);
        a->types = calloc(1, sizeof *a->types);
        if (!a->results || !a->types) {
            snprintf(a->why, sizeof a->why, "out of memory");
            return SPF_BROKEN;
        }
        a->nresults = 1;
        a->status = shoal_export_global(inst, field->valuestring, &a->results[0], &a->types[0], &a->err);
        return SPF_RAN;
    }
    if (strcmp(type->valuestring, "invoke")) {
        snprintf(a->why, sizeof a->why, "unknown action type '%.40s'", type->valuestring);
        return SPF_BROKEN;
    }

    shoal_functype ft;
    if (!shoal_export_functype(inst, field->valuestring, &ft)) {
        snprintf(a->why, sizeof a->why, "no exported function '%.60s'", field->valuestring);
        return SPF_BROKEN;
    }
    if (args && !cJSON_IsArray(args)) {
        snprintf(a->why, sizeof a->why, "args is not a list");
        return SPF_BROKEN;
    }
    int nargs = cJSON_GetArraySize(args);
    if (nargs < 0 || (uint32_t)nargs != ft.nparams) {
        snprintf(a->why, sizeof a->why, "%d arguments for a function of %u parameters", nargs, ft.nparams);
        return SPF_BROKEN;
    }
    argv = calloc(ft.nparams + 1, sizeof *argv);
    a->results = calloc(ft.nresults + 1, sizeof *a->results);
    a->types = calloc(ft.nresults + 1, sizeof *a->types);
    if (!argv || !a->results || !a->types) {
        snprintf(a->why, sizeof a->why, "out of memory");
        o = SPF_BROKEN;
        goto done;
    }
    for (uint32_t i = 0; i < ft.nparams; i++) {
        shoal_valtype t;
        SpvParse r = spv_parse_arg(&f->refs, cJSON_GetArrayItem(args, (int)i), &t, &argv[i], a->why, sizeof a->why);
        if (r != SPV_OK) {
            o = r == SPV_SKIP ? SPF_SKIPPED : SPF_BROKEN;
            goto done;
        }
        if (t != (shoal_valtype)ft.params[i]) {
            snprintf(a->why, sizeof a->why, "argument %u is %s but the parameter is %s", i, spv_type_name(t),
                     spv_type_name((shoal_valtype)ft.params[i]));
            o = SPF_BROKEN;
            goto done;
        }
    }
    a->nresults = ft.nresults;
    for (uint32_t i = 0; i < ft.nresults; i++)
        a->types[i] = (shoal_valtype)ft.results[i];
    for (uint32_t i = 0; i < ft.nresults; i++)
        if (a->types[i] == SHOAL_V128) {
            snprintf(a->why, sizeof a->why, "v128 results (SIMD is not supported)");
            o = SPF_SKIPPED;
            goto done;
        }

    spf_arm(f, inst);
    a->status = shoal_call_export(inst, field->valuestring, argv, ft.nparams, a->results, ft.nresults, &a->err);
    spf_disarm(f, inst);
    if (a->status == SHOAL_ERR_TRAP && a->err.trap == SHOAL_TRAP_INTERRUPTED && f->opt->timeout_s)
        snprintf(a->err.message, sizeof a->err.message, "timed out after %u s", f->opt->timeout_s);
    o = SPF_RAN;
done:
    free(argv);
    return o;
}

/* Runs the action and turns the non-RAN outcomes into a skip or a failure; true if it ran. */
static bool spf_run_action(SpfFile *f, const cJSON *cmd, SpfAction *a) {
    SpfOutcome o = spf_action(f, cmd, a);
    if (o == SPF_SKIPPED)
        spf_skip(f, "%s", a->why);
    else if (o == SPF_BROKEN)
        spf_fail(f, "%s: %s", a->desc, a->why);
    return o == SPF_RAN;
}

static void spf_cmd_assert_return(SpfFile *f, const cJSON *cmd) {
    SpfAction a;
    char why[256], got[96], want[96];
    if (!spf_run_action(f, cmd, &a))
        goto done;
    if (a.status != SHOAL_OK) {
        spf_fail(f, "%s: %s", a.desc, spf_describe_error(a.status, &a.err, why, sizeof why));
        goto done;
    }
    const cJSON *expected = cJSON_GetObjectItemCaseSensitive(cmd, "expected");
    int n = cJSON_GetArraySize(expected);
    if (!cJSON_IsArray(expected) || (uint32_t)n != a.nresults) {
        spf_fail(f, "%s: %u results, the script expects %d", a.desc, a.nresults, n);
        goto done;
    }
    /* Every expectation is parsed before any is judged so that an unsupported one skips the command. */
    for (uint32_t i = 0; i < a.nresults; i++) {
        SpvExpect e;
        SpvParse r = spv_parse_expect(&f->refs, cJSON_GetArrayItem(expected, (int)i), &e, why, sizeof why);
        if (r == SPV_SKIP) {
            spf_skip(f, "%s", why);
            goto done;
        }
        if (r == SPV_BAD) {
            spf_fail(f, "%s: expected result %u: %s", a.desc, i, why);
            goto done;
        }
    }
    for (uint32_t i = 0; i < a.nresults; i++) {
        SpvExpect e;
        spv_parse_expect(&f->refs, cJSON_GetArrayItem(expected, (int)i), &e, why, sizeof why);
        spv_format(&f->refs, a.types[i], a.results[i], got, sizeof got);
        spv_format_expect(&e, &f->refs, want, sizeof want);
        if (e.type != a.types[i] || !spv_match(&f->refs, &e, a.results[i])) {
            spf_fail(f, "%s: result %u is %s, expected %s", a.desc, i, got, want);
            goto done;
        }
    }
    spf_pass(f);
done:
    spf_action_free(&a);
}

/* assert_trap and assert_exhaustion. */
static void spf_cmd_assert_trap(SpfFile *f, const cJSON *cmd, bool exhaustion) {
    SpfAction a;
    char why[640];
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(cmd, "text");
    const char *want = cJSON_IsString(text) ? text->valuestring : "";
    if (!spf_run_action(f, cmd, &a))
        goto done;
    if (a.status == SHOAL_OK) {
        spf_fail(f, "%s: returned normally, expected trap '%s'", a.desc, want);
        goto done;
    }
    if (a.status != SHOAL_ERR_TRAP) {
        spf_fail(f, "%s: %s, expected trap '%s'", a.desc, spf_describe_error(a.status, &a.err, why, sizeof why), want);
        goto done;
    }
    bool ok = exhaustion ? a.err.trap == SHOAL_TRAP_STACK_EXHAUSTED
                         : spf_text_matches(shoal_trap_message(a.err.trap), want);
    if (!ok) {
        spf_fail(f, "%s: %s, expected trap '%s'", a.desc, spf_describe_error(a.status, &a.err, why, sizeof why), want);
        goto done;
    }
    spf_pass(f);
done:
    spf_action_free(&a);
}

static void spf_cmd_action(SpfFile *f, const cJSON *cmd) {
    SpfAction a;
    char why[640];
    if (!spf_run_action(f, cmd, &a))
        goto done;
    if (a.status != SHOAL_OK) {
        spf_fail(f, "%s: %s", a.desc, spf_describe_error(a.status, &a.err, why, sizeof why));
        goto done;
    }
    spf_pass(f);
done:
    spf_action_free(&a);
}

/* ---- modules ---------------------------------------------------------------------------------- */

static bool spf_is_text_module(const cJSON *cmd) {
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(cmd, "module_type");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(cmd, "filename");
    if (cJSON_IsString(mt) && !strcmp(mt->valuestring, "text"))
        return true;
    if (cJSON_IsString(fn)) {
        size_t n = strlen(fn->valuestring);
        return n >= 4 && !strcmp(fn->valuestring + n - 4, ".wat");
    }
    return false;
}

/* Loads the command's module file. SHOAL_ERR_ARG (with err set) when the command names none. */
static shoal_status spf_load(SpfFile *f, const cJSON *cmd, shoal_module **out, shoal_error *err) {
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(cmd, "filename");
    *out = NULL;
    if (!cJSON_IsString(fn) || !fn->valuestring[0])
        return shoal_error_set(err, SHOAL_ERR_ARG, "command has no module filename");
    size_t n = strlen(f->dir) + strlen(fn->valuestring) + 2;
    char *path = malloc(n);
    if (!path)
        return shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
    snprintf(path, n, "%s/%s", f->dir, fn->valuestring);
    shoal_status st = shoal_module_load_file(path, out, err);
    free(path);
    return st;
}

static shoal_status spf_instantiate(SpfFile *f, shoal_module *module, shoal_instance **out, shoal_error *err) {
    shoal_instance_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.limits.fuel = SPF_START_FUEL;
    cfg.user = f;
    *out = NULL;
    shoal_status st = shoal_instantiate(module, f->imports, &cfg, out, err);
    if (st == SHOAL_OK)
        shoal_instance_set_fuel(*out, 0); /* calls then run unmetered, under the timer instead */
    return st;
}

static void spf_cmd_module(SpfFile *f, const cJSON *cmd) {
    shoal_error err;
    char why[640];
    shoal_module *module = NULL;
    shoal_instance *inst = NULL;
    memset(&err, 0, sizeof err);
    if (spf_is_text_module(cmd)) {
        spf_skip(f, "text-format module (Shoal reads binary modules only)");
        spf_push_module(f, cmd, NULL, true);
        return;
    }
    shoal_status st = spf_load(f, cmd, &module, &err);
    if (st == SHOAL_ERR_UNSUPPORTED && f->simd) {
        spf_skip(f, "module rejected as unsupported (SIMD)");
        spf_push_module(f, cmd, NULL, true);
        return;
    }
    if (st != SHOAL_OK) {
        spf_fail(f, "module did not load: %s", spf_describe_error(st, &err, why, sizeof why));
        spf_push_module(f, cmd, NULL, false);
        return;
    }
    st = spf_instantiate(f, module, &inst, &err);
    if (!spf_own(f, module, inst)) {
        /* Cannot keep it for cleanup: leaking it is the safe choice (see the file comment). */
        spf_fail(f, "out of memory");
        spf_push_module(f, cmd, NULL, false);
        return;
    }
    if (st != SHOAL_OK) {
        spf_fail(f, "module did not instantiate: %s", spf_describe_error(st, &err, why, sizeof why));
        spf_push_module(f, cmd, NULL, false);
        return;
    }
    spf_push_module(f, cmd, inst, false);
    spf_pass(f);
}

/* assert_invalid and assert_malformed: the module must be rejected at load time with `want`. */
static void spf_cmd_assert_rejected(SpfFile *f, const cJSON *cmd, shoal_status want) {
    shoal_error err;
    char why[640];
    shoal_module *module = NULL;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(cmd, "text");
    const char *wtext = cJSON_IsString(text) ? text->valuestring : "";
    if (spf_is_text_module(cmd)) {
        spf_skip(f, "text-format module (Shoal reads binary modules only)");
        return;
    }
    memset(&err, 0, sizeof err);
    shoal_status st = spf_load(f, cmd, &module, &err);
    if (st == SHOAL_OK) {
        shoal_module_free(module); /* never instantiated: nothing can refer to it */
        spf_fail(f, "module loaded, expected %s '%s'", shoal_status_name(want), wtext);
        return;
    }
    if (st == SHOAL_ERR_UNSUPPORTED && f->simd) {
        spf_skip(f, "module rejected as unsupported (SIMD)");
        return;
    }
    if (st != want) {
        spf_fail(f, "%s, expected %s '%s'", spf_describe_error(st, &err, why, sizeof why), shoal_status_name(want),
                 wtext);
        return;
    }
    if (!strstr(err.message, wtext)) {
        if (f->opt->strict_text) {
            spf_fail(f, "message '%s' lacks '%s'", err.message, wtext);
            return;
        }
        spf_note(f, "message '%s' lacks '%s'", err.message, wtext);
    }
    spf_pass(f);
}

/* assert_unlinkable (want SHOAL_ERR_UNLINKABLE) and assert_uninstantiable (want SHOAL_ERR_TRAP). */
static void spf_cmd_assert_instantiate_fails(SpfFile *f, const cJSON *cmd, shoal_status want) {
    shoal_error err;
    char why[640];
    shoal_module *module = NULL;
    shoal_instance *inst = NULL;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(cmd, "text");
    const char *wtext = cJSON_IsString(text) ? text->valuestring : "";
    if (spf_is_text_module(cmd)) {
        spf_skip(f, "text-format module (Shoal reads binary modules only)");
        return;
    }
    memset(&err, 0, sizeof err);
    shoal_status st = spf_load(f, cmd, &module, &err);
    if (st == SHOAL_ERR_UNSUPPORTED && f->simd) {
        spf_skip(f, "module rejected as unsupported (SIMD)");
        return;
    }
    if (st != SHOAL_OK) {
        spf_fail(f, "module did not load: %s", spf_describe_error(st, &err, why, sizeof why));
        return;
    }
    memset(&err, 0, sizeof err);
    st = spf_instantiate(f, module, &inst, &err);
    if (!spf_own(f, module, inst)) {
        spf_fail(f, "out of memory");
        return;
    }
    if (st == SHOAL_OK) {
        spf_fail(f, "module instantiated, expected %s '%s'", shoal_status_name(want), wtext);
        return;
    }
    if (st != want) {
        spf_fail(f, "%s, expected %s '%s'", spf_describe_error(st, &err, why, sizeof why), shoal_status_name(want),
                 wtext);
        return;
    }
    if (want == SHOAL_ERR_TRAP) {
        if (!spf_text_matches(shoal_trap_message(err.trap), wtext)) {
            spf_fail(f, "%s, expected trap '%s'", spf_describe_error(st, &err, why, sizeof why), wtext);
            return;
        }
    } else if (!strstr(err.message, wtext)) {
        if (f->opt->strict_text) {
            spf_fail(f, "message '%s' lacks '%s'", err.message, wtext);
            return;
        }
        spf_note(f, "message '%s' lacks '%s'", err.message, wtext);
    }
    spf_pass(f);
}

static void spf_cmd_register(SpfFile *f, const cJSON *cmd) {
    const cJSON *as = cJSON_GetObjectItemCaseSensitive(cmd, "as");
    shoal_instance *inst = NULL;
    shoal_error err;
    char why[256];
    memset(&err, 0, sizeof err);
    if (!cJSON_IsString(as)) {
        spf_fail(f, "register without a name");
        return;
    }
    SpfOutcome o = spf_find_module(f, cJSON_GetObjectItemCaseSensitive(cmd, "name"), &inst, why, sizeof why);
    if (o == SPF_SKIPPED) {
        spf_skip(f, "%s", why);
        return;
    }
    if (o == SPF_BROKEN) {
        spf_fail(f, "%s", why);
        return;
    }
    shoal_status st = shoal_imports_add_instance(f->imports, as->valuestring, inst, &err);
    if (st != SHOAL_OK) {
        spf_fail(f, "register as '%s': %s: %s", as->valuestring, shoal_status_name(st), err.message);
        return;
    }
    spf_pass(f);
}

/* ---- the spectest host module ----------------------------------------------------------------- */

typedef struct SpfPrint {
    const char *name;
    const char *sig; /* parameter letters as shoal_imports_add_func takes them; no results */
} SpfPrint;

static const SpfPrint spf_prints[] = {
    {"print", ":"},         {"print_i32", "i:"},         {"print_i64", "I:"},          {"print_f32", "f:"},
    {"print_f64", "F:"},    {"print_i32_f32", "if:"},    {"print_f64_f64", "FF:"},
};

/* The suite only needs these to exist and take the right types; with -v they print as the reference
 * interpreter does. */
static shoal_status spf_print(shoal_call *call, const shoal_val *args, shoal_val *results, void *user) {
    (void)results;
    const SpfPrint *p = user;
    const SpfFile *f = shoal_instance_user(shoal_call_instance(call));
    if (!f || !f->opt->verbose)
        return SHOAL_OK;
    for (uint32_t i = 0; p->sig[i] != ':'; i++) {
        static const char letters[] = "iIfF";
        static const shoal_valtype types[] = {SHOAL_I32, SHOAL_I64, SHOAL_F32, SHOAL_F64};
        char buf[96];
        spv_format(NULL, types[strchr(letters, p->sig[i]) - letters], args[i], buf, sizeof buf);
        fprintf(f->opt->out, "%s%s", i ? " " : "", buf);
    }
    fputc('\n', f->opt->out);
    return SHOAL_OK;
}

static shoal_status spf_spectest(SpfFile *f, shoal_error *err) {
    enum { NPRINT = sizeof spf_prints / sizeof spf_prints[0] };
    SpwItem items[NPRINT + 6];
    uint32_t n = 0;
    uint8_t *bytes = NULL;
    size_t len = 0;
    shoal_module *module = NULL;
    shoal_instance *inst = NULL;
    shoal_status st;

    memset(items, 0, sizeof items);
    for (uint32_t i = 0; i < NPRINT; i++) {
        st = shoal_imports_add_func(f->imports, SPF_SPECTEST_HOST, spf_prints[i].name, spf_prints[i].sig, spf_print,
                                    (void *)&spf_prints[i], err);
        if (st != SHOAL_OK)
            goto fail;
        items[n++] = (SpwItem){.name = spf_prints[i].name, .kind = SHOAL_EXTERN_FUNC, .sig = spf_prints[i].sig};
    }
    items[n] = (SpwItem){.name = "global_i32", .kind = SHOAL_EXTERN_GLOBAL, .valtype = SHOAL_I32};
    items[n++].init.i32 = 666;
    items[n] = (SpwItem){.name = "global_i64", .kind = SHOAL_EXTERN_GLOBAL, .valtype = SHOAL_I64};
    items[n++].init.i64 = 666;
    items[n] = (SpwItem){.name = "global_f32", .kind = SHOAL_EXTERN_GLOBAL, .valtype = SHOAL_F32};
    items[n++].init.f32 = 666.6f;
    items[n] = (SpwItem){.name = "global_f64", .kind = SHOAL_EXTERN_GLOBAL, .valtype = SHOAL_F64};
    items[n++].init.f64 = 666.6;
    items[n++] = (SpwItem){.name = "table", .kind = SHOAL_EXTERN_TABLE, .valtype = SHOAL_FUNCREF, .min = 10,
                           .max = 20, .has_max = true};
    items[n++] = (SpwItem){.name = "memory", .kind = SHOAL_EXTERN_MEMORY, .min = 1, .max = 2, .has_max = true};

    st = spw_build_module(SPF_SPECTEST_HOST, items, n, &bytes, &len, err);
    if (st != SHOAL_OK)
        goto fail;
    st = shoal_module_load(bytes, len, &module, err);
    if (st != SHOAL_OK)
        goto fail;
    st = spf_instantiate(f, module, &inst, err);
    if (!spf_own(f, module, inst)) {
        st = shoal_error_set(err, SHOAL_ERR_NOMEM, "out of memory");
        goto fail; /* leaks module and instance rather than risk freeing what the engine still uses */
    }
    module = NULL; /* owned now */
    if (st != SHOAL_OK)
        goto fail;
    st = shoal_imports_add_instance(f->imports, "spectest", inst, err);
fail:
    shoal_module_free(module);
    free(bytes);
    return st;
}

/* ---- the script ------------------------------------------------------------------------------- */

static char *spf_read_file(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!fp)
        return NULL;
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            char *p = realloc(buf, ncap);
            if (!p) {
                free(buf);
                buf = NULL;
                goto done;
            }
            buf = p;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(fp)) {
        free(buf);
        buf = NULL;
    }
    *len = n;
done:
    fclose(fp);
    return buf;
}

/* The public API takes names as NUL-terminated strings, so a script string with an embedded NUL (names.wast
 * invokes an export named "\0\1\2...") cannot be passed faithfully: cJSON would hand over its prefix,
 * which names a different export. cJSON does not report string lengths, so such commands are found in
 * the raw text: wast2json writes one command per line, each with its "line" number. */
static void spf_find_nul_lines(SpfFile *f, const char *text, size_t len) {
    static const char esc[] = "\\u0000";
    const char *end = text + len;
    for (const char *p = text; (p = memmem(p, (size_t)(end - p), esc, 6)); p += 6) {
        size_t backslashes = 0; /* an even count before ours means ours really starts an escape */
        for (const char *q = p; q > text && q[-1] == '\\'; q--)
            backslashes++;
        if (backslashes % 2)
            continue;
        const char *bol = p, *eol = memchr(p, '\n', (size_t)(end - p));
        while (bol > text && bol[-1] != '\n')
            bol--;
        if (!eol)
            eol = end;
        const char *key = memmem(bol, (size_t)(eol - bol), "\"line\": ", 8);
        if (!key)
            continue;
        int *lines = realloc(f->nul_lines, (f->nnul_lines + 1) * sizeof *lines);
        if (!lines)
            return;
        f->nul_lines = lines;
        f->nul_lines[f->nnul_lines++] = atoi(key + 8);
    }
}

static void spf_command(SpfFile *f, const cJSON *cmd) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(cmd, "type");
    const cJSON *line = cJSON_GetObjectItemCaseSensitive(cmd, "line");
    f->p->line = cJSON_IsNumber(line) ? line->valueint : 0;
    f->cmd = cJSON_IsString(type) ? type->valuestring : "?";
    if (!cJSON_IsObject(cmd) || !cJSON_IsString(type)) {
        spf_fail(f, "malformed command");
        return;
    }
    for (size_t i = 0; i < f->nnul_lines; i++)
        if (f->nul_lines[i] == f->p->line && f->p->line) {
            spf_skip(f, "a name with a NUL byte (the C API takes NUL-terminated names)");
            return;
        }
    const char *t = type->valuestring;
    if (!strcmp(t, "module"))
        spf_cmd_module(f, cmd);
    else if (!strcmp(t, "register"))
        spf_cmd_register(f, cmd);
    else if (!strcmp(t, "action"))
        spf_cmd_action(f, cmd);
    else if (!strcmp(t, "assert_return"))
        spf_cmd_assert_return(f, cmd);
    else if (!strcmp(t, "assert_trap"))
        spf_cmd_assert_trap(f, cmd, false);
    else if (!strcmp(t, "assert_exhaustion"))
        spf_cmd_assert_trap(f, cmd, true);
    else if (!strcmp(t, "assert_invalid"))
        spf_cmd_assert_rejected(f, cmd, SHOAL_ERR_INVALID);
    else if (!strcmp(t, "assert_malformed"))
        spf_cmd_assert_rejected(f, cmd, SHOAL_ERR_MALFORMED);
    else if (!strcmp(t, "assert_unlinkable"))
        spf_cmd_assert_instantiate_fails(f, cmd, SHOAL_ERR_UNLINKABLE);
    else if (!strcmp(t, "assert_uninstantiable"))
        spf_cmd_assert_instantiate_fails(f, cmd, SHOAL_ERR_TRAP);
    else
        spf_fail(f, "unknown command type");
}

void spf_run_file(const char *json_path, const char *label, const SpfOptions *opt, SpfProgress *progress) {
    SpfFile f;
    shoal_error err;
    size_t len = 0;
    char *text = NULL;
    cJSON *root = NULL;

    memset(&f, 0, sizeof f);
    f.opt = opt;
    f.p = progress;
    f.label = label;
    f.cmd = "script";
    f.simd = !strncmp(label, "simd_", 5);
    const char *slash = strrchr(json_path, '/');
    f.dir = slash ? strndup(json_path, (size_t)(slash - json_path) + (slash == json_path)) : strdup(".");
    f.imports = shoal_imports_new();
    if (!f.dir || !f.imports) {
        spf_fail(&f, "out of memory");
        goto fail;
    }
    text = spf_read_file(json_path, &len);
    if (!text) {
        spf_fail(&f, "cannot read %s", json_path);
        goto fail;
    }
    root = cJSON_ParseWithLength(text, len);
    spf_find_nul_lines(&f, text, len);
    const cJSON *commands = cJSON_GetObjectItemCaseSensitive(root, "commands");
    if (!cJSON_IsArray(commands)) {
        spf_fail(&f, "not a wast2json script (no \"commands\" list)");
        goto fail;
    }
    memset(&err, 0, sizeof err);
    shoal_status st = spf_spectest(&f, &err);
    if (st != SHOAL_OK)
        spf_fail(&f, "cannot build the spectest module: %s: %s", shoal_status_name(st), err.message);
    const cJSON *cmd;
    cJSON_ArrayForEach(cmd, commands) spf_command(&f, cmd);

fail:
    fprintf(opt->out, "%s: %llu passed, %llu failed, %llu skipped\n", label, (unsigned long long)progress->passed,
            (unsigned long long)progress->failed, (unsigned long long)progress->skipped);
    if (opt->verbose)
        for (size_t i = 0; i < f.nskips; i++)
            fprintf(opt->out, "  skipped %llu: %s\n", (unsigned long long)f.skips[i].count, f.skips[i].reason);
    fflush(opt->out);
    for (size_t i = f.nowned; i-- > 0;)
        if (f.owned[i].inst)
            shoal_instance_free(f.owned[i].inst);
    for (size_t i = f.nowned; i-- > 0;)
        shoal_module_free(f.owned[i].module);
    shoal_imports_free(f.imports);
    for (size_t i = 0; i < f.nmods; i++)
        free(f.mods[i].name);
    free(f.mods);
    free(f.owned);
    spv_refs_free(&f.refs);
    free(f.nul_lines);
    cJSON_Delete(root);
    free(text);
    free(f.dir);
}
