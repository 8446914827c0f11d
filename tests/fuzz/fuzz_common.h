/*
 * fuzz_common.h: what the libFuzzer harnesses of tests/fuzz/ share.
 *
 * Most of jplprof's readers take a path (they mmap, stat or read whole
 * files), so a harness writes the input to a file of its own first: under
 * /dev/shm when it exists (tmpfs: no disk I/O, fsync is free), else $TMPDIR
 * or /tmp; one file per process and suffix, removed at exit.
 */
#ifndef JP_FUZZ_COMMON_H
#define JP_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_MAX_FILES 8

static char fuzz_paths[FUZZ_MAX_FILES][256];
static int fuzz_n_paths;

static void fuzz_cleanup(void)
{
    for (int i = 0; i < fuzz_n_paths; i++)
        unlink(fuzz_paths[i]);
}

/* The directory for the harness's files (a tmpfs when there is one). */
static const char *fuzz_dir(void)
{
    struct stat sb;
    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

/* Writes data to this process's file named by suffix ("x.png") and returns
 * its path; aborts when it cannot (a broken harness, not a finding). */
static const char *fuzz_write_file(const uint8_t *data, size_t size, const char *suffix)
{
    char path[256];
    snprintf(path, sizeof path, "%s/jp_fuzz.%ld.%s", fuzz_dir(), (long)getpid(), suffix);
    int slot = -1;
    for (int i = 0; i < fuzz_n_paths; i++)
        if (strcmp(fuzz_paths[i], path) == 0)
            slot = i;
    if (slot < 0) {
        if (fuzz_n_paths == FUZZ_MAX_FILES)
            abort();
        if (fuzz_n_paths == 0)
            atexit(fuzz_cleanup);
        slot = fuzz_n_paths++;
        snprintf(fuzz_paths[slot], sizeof fuzz_paths[slot], "%s", path);
    }
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return fuzz_paths[slot];
}

#endif /* JP_FUZZ_COMMON_H */
