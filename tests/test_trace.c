/*
 * test_trace.c: the Chrome / Perfetto trace writer (profiler/trace.h).
 *
 * Records slices on two tracks and samples of two rails, writes the trace,
 * parses it back and checks each event: "X" slices with ts/dur in
 * microseconds since the profile start (exact to the ns), args layer and
 * calls; "C" counters, one track per rail, NaN samples skipped; thread-name
 * metadata for each track; a rewrite after more events stays valid.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "../profiler/fileio.h"
#include "../profiler/trace.h"
#include "jp_test.h"

static char g_root[256];

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static cJSON *load(const char *path)
{
    char *text = NULL;
    jp_error err;
    if (jp_file_read_all(path, &text, NULL, &err) != JP_OK)
        return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static int count_ph(const cJSON *events, const char *ph)
{
    int n = 0;
    for (const cJSON *e = events ? events->child : NULL; e; e = e->next) {
        const cJSON *p = jget(e, "ph");
        if (cJSON_IsString(p) && strcmp(p->valuestring, ph) == 0)
            n++;
    }
    return n;
}

static const cJSON *find_event(const cJSON *events, const char *ph, const char *name, int nth)
{
    for (const cJSON *e = events ? events->child : NULL; e; e = e->next) {
        const cJSON *p = jget(e, "ph"), *nm = jget(e, "name");
        if (cJSON_IsString(p) && strcmp(p->valuestring, ph) == 0 && cJSON_IsString(nm) &&
            strcmp(nm->valuestring, name) == 0 && nth-- == 0)
            return e;
    }
    return NULL;
}

int main(void)
{
    struct timespec c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &c0);
    snprintf(g_root, sizeof g_root, "/tmp/jp_test_trace.XXXXXX");
    if (!mkdtemp(g_root)) {
        printf("FAIL setup: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    char path[400];
    snprintf(path, sizeof path, "%s/sub/dir/trace.json", g_root);
    const int64_t t0 = 123456789012345678LL; /* large, as after months of uptime */
    jp_trace *tr = NULL;
    jp_error err = {0};
    jp_status st = jp_trace_open(&tr, path, t0, &err);
    JP_CHECK("open", st == JP_OK, "%s", err.msg);
    if (st != JP_OK)
        return 1;

    jp_trace_slice s1 = {"alexnet cpu astronaut.png", "0 Conv2d", "0", t0 + 1500, t0 + 2001500, 40};
    jp_trace_slice s2 = {"alexnet cpu astronaut.png", NULL, "1", t0 + 3000000, t0 + 5000001, 7};
    jp_trace_slice s3 = {NULL, "layer1.0.conv1", "layer1.0.conv1", t0 + 6000000, t0 + 6000000, 0};
    st = jp_trace_add_slice(tr, &s1, &err);
    if (st == JP_OK)
        st = jp_trace_add_slice(tr, &s2, &err);
    if (st == JP_OK)
        st = jp_trace_add_slice(tr, &s3, &err);
    JP_CHECK("add slices", st == JP_OK, "%s", err.msg);
    jp_trace_slice bad = {NULL, NULL, "2", t0 + 10, t0 + 5, 1};
    JP_CHECK("a slice that ends before it starts is refused",
             jp_trace_add_slice(tr, &bad, &err) == JP_ERR_ARG && strstr(err.msg, "'2'"), "%s",
             err.msg);

    for (int i = 0; st == JP_OK && i < 5; i++) {
        st = jp_trace_add_counter(tr, "VDD_SYS_GPU", "mW", t0 + i * 20000000LL, 150.5 + i, &err);
        if (st == JP_OK)
            st = jp_trace_add_counter(tr, "VDD_SYS_CPU", "mW", t0 + i * 20000000LL,
                                      i == 2 ? NAN : 300 + i, &err);
    }
    JP_CHECK("add counters (one NaN skipped)", st == JP_OK && jp_trace_counter_count(tr) == 9 &&
                                                   jp_trace_slice_count(tr) == 3,
             "%s; %zu counters", err.msg, jp_trace_counter_count(tr));
    st = jp_trace_write(tr, &err);
    JP_CHECK("write creates the folder and the file", st == JP_OK, "%s", err.msg);

    cJSON *j = load(path);
    const cJSON *events = jget(j, "traceEvents");
    JP_CHECK("the file is JSON with traceEvents", cJSON_IsArray(events), "not parsed");
    JP_CHECK("one X slice per window", count_ph(events, "X") == 3, "%d", count_ph(events, "X"));
    JP_CHECK("one C event per sample", count_ph(events, "C") == 9, "%d", count_ph(events, "C"));

    const cJSON *e = find_event(events, "X", "0 Conv2d", 0);
    bool ok = e && jget(e, "ts")->valuedouble == 1.5 && jget(e, "dur")->valuedouble == 2000.0 &&
              strcmp(jget(jget(e, "args"), "layer")->valuestring, "0") == 0 &&
              jget(jget(e, "args"), "calls")->valuedouble == 40;
    JP_CHECK("slice: ts and dur in us since the start, args layer and calls", ok, "bad slice");
    const cJSON *e2 = find_event(events, "X", "1", 0);
    ok = e2 && jget(e2, "dur")->valuedouble == 2000.001 &&
         jget(e2, "tid")->valuedouble == jget(e, "tid")->valuedouble;
    JP_CHECK("slice without a name is labelled by its layer, ns kept, same track", ok,
             "bad slice 1");
    const cJSON *e3 = find_event(events, "X", "layer1.0.conv1", 0);
    ok = e3 && jget(e3, "tid")->valuedouble != jget(e, "tid")->valuedouble &&
         jget(e3, "dur")->valuedouble == 0;
    JP_CHECK("a slice on another track gets its own tid", ok, "bad slice 2");

    int names = 0;
    for (const cJSON *m = events ? events->child : NULL; m; m = m->next)
        if (strcmp(jget(m, "ph")->valuestring, "M") == 0 &&
            strcmp(jget(m, "name")->valuestring, "thread_name") == 0) {
            const char *nm = jget(jget(m, "args"), "name")->valuestring;
            names += strcmp(nm, "alexnet cpu astronaut.png") == 0 || strcmp(nm, "layers") == 0;
        }
    JP_CHECK("each track is named by thread_name metadata", names == 2, "%d names", names);

    const cJSON *c = find_event(events, "C", "VDD_SYS_GPU", 3);
    ok = c && jget(c, "ts")->valuedouble == 60000.0 && jget(jget(c, "args"), "mW") &&
         jget(jget(c, "args"), "mW")->valuedouble == 153.5;
    JP_CHECK("counter: one track per rail, series named by unit", ok, "bad counter");
    ok = find_event(events, "C", "VDD_SYS_CPU", 3) &&
         jget(find_event(events, "C", "VDD_SYS_CPU", 2), "ts")->valuedouble == 60000.0;
    JP_CHECK("a NaN sample is skipped, the others kept", ok, "bad CPU counter");
    cJSON_Delete(j);

    /* more events, rewritten whole */
    jp_trace_slice s4 = {"resnet18 cpu coffee.png", NULL, "0", t0 + 7000000, t0 + 8000000, 3};
    st = jp_trace_add_slice(tr, &s4, &err);
    if (st == JP_OK)
        st = jp_trace_write(tr, &err);
    j = load(path);
    events = jget(j, "traceEvents");
    JP_CHECK("a second write rewrites the whole trace", st == JP_OK &&
                                                            count_ph(events, "X") == 4 &&
                                                            count_ph(events, "C") == 9,
             "%s", err.msg);
    cJSON_Delete(j);
    jp_trace_close(tr);

    /* a path that cannot be written is named */
    char blocked[500];
    snprintf(blocked, sizeof blocked, "%s/sub/dir/trace.json/x.json", g_root);
    st = jp_trace_open(&tr, blocked, t0, &err);
    if (st == JP_OK)
        st = jp_trace_write(tr, &err);
    JP_CHECK("an unwritable trace path is named", st == JP_ERR_IO && strstr(err.msg, "--trace") &&
                                                      strstr(err.msg, "trace.json"),
             "st=%d %s", st, err.msg);
    jp_trace_close(tr);

    nftw(g_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    clock_gettime(CLOCK_MONOTONIC, &c1);
    fprintf(stderr, "test_trace: %.2f s\n",
            (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9);
    return jp_test_exit_code();
}
