/*
 * fuzz_cli.c: the option parsers of the subcommands on any argv.
 *
 * The input is split at NUL bytes into words; the first word's first byte
 * picks the subcommand (infer, compare, profile, layers, process), the
 * words are its argv (argv[0] the subcommand's name), spelled as main()
 * hands them over: after jp_cli_normalize_options() turned --like_this
 * into --like-this.  Each parser is the subcommand's own (tests/fuzz/cli/
 * compiles each cmd_*.c into the harness to reach its static parse_args).
 * getopt_long keeps state between calls: it is reset with optind = 0 and
 * one empty parse before each.
 */
#include "fuzz_common.h"

#include <getopt.h>

#include "cli.h"
#include "cli/fuzz_cli.h"
#include "process.h"

#define MAX_WORDS 64

static void reset_getopt(void)
{
    char name[] = "reset";
    char *argv[] = {name, NULL};
    optind = 0;
    opterr = 0;
    while (getopt(1, argv, "") != -1)
        ;
    optind = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    static const char *const names[] = {"infer", "compare", "profile", "layers", "process"};
    int which = (unsigned char)text[0] % 5;
    char *argv[MAX_WORDS + 2];
    int argc = 0;
    argv[argc++] = (char *)names[which];
    for (size_t i = 1; i < size && argc < MAX_WORDS;) {
        argv[argc++] = text + i;
        i += strlen(text + i) + 1;
    }
    argv[argc] = NULL;
    /* main() normalises the whole command line, its argv[0] being "jplprof" */
    char prog[] = "jplprof";
    char *full[MAX_WORDS + 3];
    full[0] = prog;
    memcpy(full + 1, argv, sizeof(char *) * (size_t)(argc + 1));
    jp_cli_normalize_options(argc + 1, full);

    reset_getopt();
    jp_error err;
    switch (which) {
    case 0: fuzz_parse_infer(argc, argv, &err); break;
    case 1: fuzz_parse_compare(argc, argv, &err); break;
    case 2: fuzz_parse_profile(argc, argv, &err); break;
    case 3: fuzz_parse_layers(argc, argv, &err); break;
    default: {
        jp_process_options opt;
        jp_process_options_init(&opt);
        jp_process_parse_args(argc, argv, &opt, &err);
        jp_process_options_free(&opt);
        break;
    }
    }
    free(text);
    return 0;
}
