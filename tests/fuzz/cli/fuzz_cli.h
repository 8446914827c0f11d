/* fuzz_cli.h: each subcommand's own option parser, reached by
 * tests/fuzz/cli/parse_<cmd>.c (which compiles engine/cmd_<cmd>.c in). */
#ifndef JP_FUZZ_CLI_H
#define JP_FUZZ_CLI_H

#include "jp_error.h"

/* Parse argv as the subcommand would, with its defaults; free what the
 * parse allocated.  Return the parser's status. */
jp_status fuzz_parse_infer(int argc, char **argv, jp_error *err);
jp_status fuzz_parse_compare(int argc, char **argv, jp_error *err);
jp_status fuzz_parse_profile(int argc, char **argv, jp_error *err);
jp_status fuzz_parse_layers(int argc, char **argv, jp_error *err);

#endif
