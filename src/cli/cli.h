/* cli.h: the subcommands of the `shoal` tool. Each lives in its own cmd_*.c file and returns the
 * process exit status. */
#ifndef CLI_H
#define CLI_H

typedef struct cli_command {
    const char *name;
    int (*main)(int argc, char **argv); /* argv[0] is the subcommand name */
    const char *summary;
} cli_command;

int cmd_run(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_spec_test(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
