/* main.c: `shoal <command> ...`, dispatching to one cmd_*.c file per subcommand. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_command commands[] = {
    {"run", cmd_run, "run a wasm32-wasi module"},
    {"resume", cmd_resume, "continue a guest frozen to an actor file"},
    {"generate", cmd_generate, "generate text with a Llama-family model"},
    {"spec-test", cmd_spec_test, "run the WebAssembly spec test suite (wast2json output)"},
    {"convert", cmd_convert, "convert a model (llama2.c .bin, GGUF, safetensors) to GGUF"},
    {"info", cmd_info, "describe a model file: shapes, dtypes, tokenizer, identity hash"},
    {"bench", cmd_bench, "built-in benchmarks (zerocopy)"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: shoal <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`shoal <command> --help` describes each.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "shoal: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
