/*
 * fuzz_power_raw.c: profiler/rawdata.c's power_raw reader on any bytes.
 * Loads the input as <stem>_power_raw.json; when it loads, cuts every
 * layer's window out of its segment as process does (with the file's
 * boundary and with none) and reads every sample of it.
 */
#include "fuzz_common.h"

#include "rawdata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file(data, size, "power_raw.json");
    jp_raw_power_file pf;
    jp_error err;
    if (jp_raw_power_file_load(path, &pf, &err) == JP_OK) {
        volatile double sink = 0;
        int64_t boundaries[2] = {jp_raw_seconds_to_ns(pf.tgr_smpl_boundary_s), 0};
        for (size_t w = 0; w < pf.n_windows; w++) {
            const jp_raw_power_window *win = &pf.windows[w];
            if (win->segment >= pf.n_segments)
                abort();
            const jp_raw_power_segment *seg = &pf.segments[win->segment];
            for (int b = 0; b < 2; b++) {
                size_t first, last;
                jp_raw_window_range(seg, win->start_ns, win->end_ns, boundaries[b], &first, &last);
                if (first > last || last > seg->n_samples)
                    abort();
                for (size_t r = first; r < last; r++)
                    for (size_t p = 0; p < seg->n_params; p++)
                        sink += seg->values[r * seg->n_params + p];
            }
        }
        (void)sink;
    }
    jp_raw_power_file_free(&pf);
    return 0;
}
