/* parse_compare.c: engine/cmd_compare.c compiled into the CLI fuzz harness,
 * for its static parse_args. */
#define jp_cmd_compare fuzz_unused_jp_cmd_compare
#include "../../../engine/cmd_compare.c"
#include "fuzz_cli.h"

jp_status fuzz_parse_compare(int argc, char **argv, jp_error *err)
{
    compare_options o = {.device = JP_DEVICE_CPU, .layer = -1, .runs = 20, .warmup = 3,
                         .power = {.kind = JP_POWER_AUTO, .interval_ms = 20},
                         .tgr_smpl_duration_s = 5, .tgr_smpl_boundary_s = 1};
    return parse_args(argc, argv, &o, err);
}
