/* parse_layers.c: engine/cmd_layers.c compiled into the CLI fuzz harness,
 * for its static parse_args. */
#define jp_cmd_layers fuzz_unused_jp_cmd_layers
#define jp_cmd_models fuzz_unused_jp_cmd_models
#include "../../../engine/cmd_layers.c"
#include "fuzz_cli.h"

jp_status fuzz_parse_layers(int argc, char **argv, jp_error *err)
{
    layers_options o = {.device = JP_DEVICE_CPU};
    return parse_args(argc, argv, &o, err);
}
