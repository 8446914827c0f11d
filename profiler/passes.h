/*
 * passes.h: latency in context, the file beside the seed's latency files.
 *
 * The seed measured each layer alone, repeatedly, with warm caches: the
 * isolated medians of a network need not add up to its forward pass (on an
 * Intel Xeon they summed to 0.71-0.80 of it, issue 11).  `profile` also
 * times whole forward passes (--passes N): each layer inside the pass (the
 * executor's hooks), the pass with those hooks, and the pass without them
 * (the end-to-end time).  One file per (mode, device, network, image):
 *
 *   <out>/.jplprof/passes/Mode<M>/<cpu|gpu>/<network>/<stem>.json
 *   {"format": "jplprof-passes", "version": 1, "network": N, "image": I,
 *    "units": ["0", "1", ...],              layer keys, as in the raw files
 *    "in_pass_s": [[s, s, ...], ...],       per pass, per unit
 *    "hooked_pass_s": [s, ...], "end_to_end_s": [s, ...]}   per pass
 *
 * It lives under .jplprof/, not latency/, because the seed's processData.py
 * reads every file of latency/<network>/ as latency lines.
 */
#ifndef JP_PASSES_H
#define JP_PASSES_H

#include <stddef.h>

#include "../engine/jp_error.h"

typedef struct jp_passes {
    char *network, *image;
    size_t n_units, n_passes;
    char **units;         /* (n_units) layer keys                        */
    double *in_pass_s;    /* (n_passes, n_units) seconds                 */
    double *hooked_s;     /* (n_passes) the whole pass, with the hooks   */
    double *end_to_end_s; /* (n_passes) the whole pass, without hooks    */
} jp_passes;

/* The file's path (malloc'd; NULL when out of memory). */
char *jp_passes_path(const char *out_dir, int mode, const char *device_dir, const char *network,
                     const char *stem);

/* Writes p to path atomically (creating its folder). */
jp_status jp_passes_write(const char *path, const jp_passes *p, jp_error *err);

/* Reads and checks a passes file into *p (zeroed first; jp_passes_free()
 * it, also after a failure); errors name the file and the field. */
jp_status jp_passes_load(const char *path, jp_passes *p, jp_error *err);
void jp_passes_free(jp_passes *p);

#endif /* JP_PASSES_H */
