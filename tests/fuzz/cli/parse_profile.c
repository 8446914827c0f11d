/* parse_profile.c: engine/cmd_profile.c compiled into the CLI fuzz harness,
 * for its static parse_args; frees the --tgr_params and --imgs lists it
 * builds. */
#define jp_cmd_profile fuzz_unused_jp_cmd_profile
#include "../../../engine/cmd_profile.c"
#include "fuzz_cli.h"

jp_status fuzz_parse_profile(int argc, char **argv, jp_error *err)
{
    profile_options o = {
        .device = JP_DEVICE_CPU,
        .tgr_interval_ms = 20,
        .tgr_smpl_duration_s = 5,
        .tgr_smpl_boundary_s = 1,
        .lt_smpl_count = 100,
        .power_source = JP_POWER_AUTO,
        .out_dir = "Dataset",
        .warmup = 10,
    };
    jp_status st = parse_args(argc, argv, &o, err);
    free(o.tgr_params);
    free(o.imgs);
    return st;
}
