/*
 * fuzz_seed.c: the seed tool's raw formats, read the way `jplprof process`
 * reads them: the input (after its first byte) becomes the one raw file of
 * a dataset in a tmpfs folder, and jp_process_run() averages it into
 * Processed/Mode0.json.  The first byte chooses:
 *   bit 0: a latency file <img>_sc_3.json (0) or a power file
 *          <img>_sf_5_sb_1.json (1), one JSON object per line;
 *   bit 1: --params all (every numeric parameter) instead of the rail;
 *   bit 2: --stats (median, std, n).
 */
#include "fuzz_common.h"

#include <errno.h>
#include <ftw.h>

#include "fileio.h"
#include "process.h"

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* One dataset per kind, made once: an execution rewrites its one raw file
 * (Processed/ stays between executions, as in a dataset processed again).
 * Making and removing the folders each time was most of an execution. */
static char roots[2][300];

static void remove_roots(void)
{
    for (int k = 0; k < 2; k++)
        if (roots[k][0])
            nftw(roots[k], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool power = data[0] & 1;
    char *root = roots[power];
    char path[500];
    if (!root[0]) {
        if (!roots[!power][0])
            atexit(remove_roots);
        snprintf(root, sizeof roots[0], "%s/jp_fuzz_seed.%ld.%s", fuzz_dir(), (long)getpid(),
                 power ? "power" : "latency");
        nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        char dir[400];
        snprintf(dir, sizeof dir, "%s/Mode0/cpu/%s/net", root, power ? "power" : "latency");
        jp_error err;
        if (jp_mkdir_p(dir, &err) != JP_OK) {
            fprintf(stderr, "%s\n", err.msg);
            abort();
        }
    }
    snprintf(path, sizeof path, "%s/Mode0/cpu/%s/net/%s", root, power ? "power" : "latency",
             power ? "img_sf_5_sb_1.json" : "img_sc_3.json");
    FILE *f = fopen(path, "wb");
    if (!f || (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1) || fclose(f) != 0)
        abort();
    jp_error err;
    jp_process_options opt;
    jp_process_options_init(&opt);
    opt.dataset_dir = root;
    opt.params = data[0] & 2 ? "all" : NULL;
    opt.stats = data[0] & 4;
    jp_process_run(&opt, &err);
    jp_process_options_free(&opt);
    return 0;
}
