/* cmd_report.c: `jplprof report` (profiler/report.h does the work). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "report.h"

static const char report_usage[] =
    "usage: jplprof report --out report.html [--dataset D] [--modes M[,M...]] [--note TEXT]\n\n"
    "One self-contained HTML page (inline SVG and CSS, nothing fetched): per network, per mode\n"
    "and device, each layer's latency with its spread, power with its 95 % interval, energy per\n"
    "call, share of the total, the closure ratio and the sensor's calibration when there is one.\n\n"
    "  --out F       the HTML file to write (required)\n"
    "  --dataset D   the raw data's root (default Dataset)\n"
    "  --modes M     only these modes (default: every Mode* folder)\n"
    "  --note TEXT   a line under the title (e.g. where the power came from)\n";

static void print_line(void *ctx, const char *line) { fprintf(stderr, "jplprof report: %s\n", line); }

int jp_cmd_report(int argc, char **argv)
{
    static const struct option longs[] = {
        {"dataset", required_argument, NULL, 'd'}, {"modes", required_argument, NULL, 'm'},
        {"out", required_argument, NULL, 'o'},     {"note", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    jp_report_options opt = {.dataset_dir = "Dataset", .notify = print_line};
    jp_error err = {0};
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longs, NULL)) != -1) {
        switch (c) {
        case 'd': opt.dataset_dir = optarg; break;
        case 'm': opt.modes = optarg; break;
        case 'o': opt.out = optarg; break;
        case 'n': opt.note = optarg; break;
        case 'h': printf("%s", report_usage); return 0;
        default:
            jp_cli_getopt_error("report", c, argv, &err);
            return jp_cli_fail("report", &err);
        }
    }
    if (jp_cli_no_operands("report", argc, argv, &err))
        return jp_cli_fail("report", &err);
    if (jp_report_run(&opt, &err))
        return jp_cli_fail("report", &err);
    return 0;
}
