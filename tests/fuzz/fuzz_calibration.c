/*
 * fuzz_calibration.c: profiler/calibration.c's reader of a dataset's
 * .jplprof/calibration.json (issue 6) on any bytes.  When the file loads,
 * every rail is looked up by its name and its tau must be what the reader
 * promises (finite, >= 0).
 */
#include "fuzz_common.h"

#include <math.h>

#include "calibration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file(data, size, "calibration.json");
    jp_calibration cal;
    jp_error err;
    if (jp_calibration_load(path, &cal, &err) == JP_OK) {
        if (cal.n_rails == 0 || !cal.board || !cal.power_source)
            abort();
        for (size_t i = 0; i < cal.n_rails; i++) {
            const jp_calibration_rail *r = jp_calibration_rail_of(&cal, cal.rails[i].name);
            if (!r || !isfinite(r->tau_s) || r->tau_s < 0 || strcmp(r->name, cal.rails[i].name) != 0)
                abort();
        }
    }
    jp_calibration_free(&cal);
    return 0;
}
