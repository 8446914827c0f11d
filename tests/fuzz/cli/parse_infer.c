/* parse_infer.c: engine/cmd_infer.c compiled into the CLI fuzz harness, for
 * its static parse_args (jp_cmd_infer is renamed out of the way). */
#define jp_cmd_infer fuzz_unused_jp_cmd_infer
#include "../../../engine/cmd_infer.c"
#include "fuzz_cli.h"

jp_status fuzz_parse_infer(int argc, char **argv, jp_error *err)
{
    infer_options o = {.device = JP_DEVICE_CPU, .fuse = true, .runs = 5, .warmup = 1, .top = 5};
    return parse_args(argc, argv, &o, err);
}
