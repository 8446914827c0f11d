/* cmd_process.c: `jplprof process` (profiler/process.h does the work) and
 * `jplprof tegrastats FILE|-` (a tegrastats log to CSV). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "process.h"
#include "tegrastats_parse.h"

static void print_line(void *ctx, const char *line) { fprintf(stderr, "jplprof process: %s\n", line); }

int jp_cmd_process(int argc, char **argv)
{
    jp_process_options opt;
    jp_error err = {0};
    jp_process_options_init(&opt);
    int rc = 0;
    if (jp_process_parse_args(argc, argv, &opt, &err)) {
        rc = jp_cli_fail("process", &err);
    } else if (opt.help) {
        printf("usage: jplprof process [options]\n\n%s", jp_process_usage());
    } else {
        opt.notify = print_line;
        if (jp_process_run(&opt, &err))
            rc = jp_cli_fail("process", &err);
    }
    jp_process_options_free(&opt);
    return rc;
}

int jp_cmd_tegrastats(int argc, char **argv)
{
    jp_error err = {0};
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: jplprof tegrastats FILE|-\n\n"
               "Converts a tegrastats log (any Jetson generation; - reads standard input)\n"
               "to CSV on standard output: one row per line, one column per parameter.\n");
        return 0;
    }
    if (argc != 2) {
        jp_error_set(&err, JP_ERR_ARG, "expected one FILE or - (see jplprof tegrastats --help)");
        return jp_cli_fail("tegrastats", &err);
    }
    FILE *in = strcmp(argv[1], "-") == 0 ? stdin : fopen(argv[1], "r");
    if (!in) {
        jp_error_set(&err, errno == ENOENT ? JP_ERR_MISSING : JP_ERR_IO, "%s: cannot open: %s", argv[1],
                     strerror(errno));
        return jp_cli_fail("tegrastats", &err);
    }
    jp_status st = jp_tegrastats_to_csv(in, stdout, stderr, &err);
    if (in != stdin)
        fclose(in);
    if (st == JP_OK && fflush(stdout) != 0)
        st = jp_error_set(&err, JP_ERR_IO, "standard output: %s", strerror(errno));
    if (st) {
        jp_error_prefix(&err, "%s: ", argv[1]);
        return jp_cli_fail("tegrastats", &err);
    }
    return 0;
}
