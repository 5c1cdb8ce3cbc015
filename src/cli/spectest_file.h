/*
 * spectest_file.h: executes one wast2json script (NAME.json plus its NAME.N.wasm modules) against the
 * engine through the public API, counting each command as passed, failed or skipped.
 *
 * The driver (cmd_spec_test.c) runs each file in a child process so an engine crash costs one file, not
 * the run; SpfProgress lives in memory shared with the parent so the parent can say how far a crashed
 * file got.
 */
#ifndef SPECTEST_FILE_H
#define SPECTEST_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct SpfOptions {
    bool verbose;        /* list skip reasons and message mismatches; let spectest.print* print */
    bool strict_text;    /* a rejection whose message lacks the expected text is a failure */
    unsigned timeout_s;  /* per invocation; 0 = none */
    FILE *out;           /* where results go */
} SpfOptions;

typedef struct SpfProgress {
    uint64_t passed, failed, skipped;
    int line; /* of the command being executed */
} SpfProgress;

/* Runs the script at json_path (modules are looked up next to it); label names the file in messages.
 * Prints failures as they happen and one summary line at the end. Never fails as a whole: problems with
 * the script itself count as failures. */
void spf_run_file(const char *json_path, const char *label, const SpfOptions *opt, SpfProgress *progress);

/* Installs the SIGALRM handler that interrupts a guest running past opt->timeout_s; call once. */
void spf_install_timer(void);

#endif
