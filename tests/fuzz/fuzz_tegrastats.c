/*
 * fuzz_tegrastats.c: profiler/tegrastats_parse.c on any bytes: the input's
 * first line through the line parser (with the lookups the profiler does on
 * its result), then the whole input through the log-to-CSV converter (read
 * from memory, CSV, notes and the converter's spool in memory).
 */
#include "fuzz_common.h"

#include "tegrastats_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = malloc(size + 1);
    if (!line)
        return 0;
    memcpy(line, data, size);
    line[size] = '\0';
    static jp_tgr_line parsed;
    jp_error err;
    if (jp_tegrastats_parse_line(line, &parsed, &err) == JP_OK) {
        if (parsed.count == 0 || parsed.count > JP_TGR_MAX_PARAMS || parsed.n_rails > parsed.count)
            abort();
        for (size_t i = 0; i < parsed.count; i++) {
            if (jp_tgr_line_find(&parsed, parsed.params[i].name) == NULL)
                abort();
            (void)jp_tegrastats_name_selects("CPU", parsed.params[i].name);
            (void)jp_tegrastats_name_selects("EMC_FREQ", parsed.params[i].name);
            (void)jp_tegrastats_name_selects(parsed.params[i].name, parsed.params[i].name);
        }
    }
    free(line);

    FILE *in = fmemopen((void *)data, size ? size : 1, "r");
    char *csv = NULL, *notes_text = NULL;
    size_t csv_n = 0, notes_n = 0;
    FILE *out = open_memstream(&csv, &csv_n);
    FILE *notes = open_memstream(&notes_text, &notes_n);
    /* the spool holds the input's lines, each with its '\n': size + 1 bytes
     * at most (jp_tegrastats_to_csv() itself spools to a tmpfile()) */
    FILE *spool = fmemopen(NULL, size + 1, "w+");
    if (in && out && notes && spool && size > 0)
        jp_tegrastats_to_csv_spooled(in, out, notes, spool, &err);
    if (spool)
        fclose(spool);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    if (notes)
        fclose(notes);
    free(csv);
    free(notes_text);
    return 0;
}
