/*
 * tegrastats_parse.h: one line of Jetson's `tegrastats` into named numbers.
 *
 * Every generation is understood by the same code: TX1/TX2/Nano (JetPack 4:
 * unitless rails `VDD_SYS_GPU 152/152`), AGX Xavier (rails named like
 * temperatures: `GPU 463/463` beside `GPU@31C`), JetPack 5/6 (a timestamp
 * prefix, `VDD_GPU_SOC 5191mW/5191mW`, `GR3D_FREQ 0%@[305,305]`) and
 * JetPack 7 (`cur/avg/max` rails, `cpu@34.3C/34.8C` temperatures).
 *
 * Invariants:
 *   - a rail's value is always its FIRST number, the current reading; the
 *     running average (and JetPack 7's maximum) that follow are ignored;
 *   - no allocation: the caller owns a jp_tgr_line with a fixed capacity;
 *   - names are stable (see profiler/README.md for the full list):
 *       RAM, RAM_total, SWAP, SWAP_total (MB);
 *       CPU<i> (%), CPU<i>_freq (MHz), i counted from 0 over every listed
 *       core; an `off` core emits nothing;
 *       <X>_FREQ (%) and <X>_freq (MHz) for `<X>_FREQ a%@f` (EMC_FREQ ->
 *       EMC_FREQ, EMC_freq); `@[f0,f1,..]` gives <X>_freq, <X>_freq1, ...;
 *       <E> (%) and <E>_freq for an engine printed `VIC 59%@423`;
 *       APE (MHz); MTS_fg, MTS_bg (%);
 *       <name>_temp (C) for `<name>@<t>C`; a disabled sensor (-256C) emits
 *       nothing;
 *       <rail> (mW) for `<rail> a/b`, `<rail> amW/bmW[/cmW]`;
 *   - a name seen twice in one line (two `NC` rails) becomes NC, NC_2, NC_3,
 *     in order of appearance, so that the same board always gives the same
 *     names;
 *   - tokens not understood are counted and skipped, never fatal.
 */
#ifndef JP_TEGRASTATS_PARSE_H
#define JP_TEGRASTATS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "../engine/jp_error.h"

/* Longest parameter name kept, with its NUL ("VDDQ_VDD2_1V8AO_2" fits). */
#define JP_TGR_NAME_BYTES 48
/* Most parameters one line can give: a 14-core AGX Thor line gives ~50. */
#define JP_TGR_MAX_PARAMS 192

/* What a parameter measures; each kind has one unit. */
typedef enum jp_tgr_kind {
    JP_TGR_RAIL, /* power rail, mW (current reading)     */
    JP_TGR_TEMP, /* temperature, degrees Celsius          */
    JP_TGR_LOAD, /* utilisation, percent                  */
    JP_TGR_FREQ, /* clock, MHz                            */
    JP_TGR_MEM,  /* memory, MB                            */
    JP_TGR_KIND_COUNT
} jp_tgr_kind;

/* "rail", "temp", "load", "freq", "mem"; never NULL. */
const char *jp_tgr_kind_name(jp_tgr_kind kind);
/* "mW", "C", "%", "MHz", "MB"; never NULL. */
const char *jp_tgr_kind_unit(jp_tgr_kind kind);

typedef struct jp_tgr_param {
    char name[JP_TGR_NAME_BYTES];
    jp_tgr_kind kind;
    double value; /* in the kind's unit */
} jp_tgr_param;

typedef struct jp_tgr_line {
    size_t count;                           /* parameters filled           */
    jp_tgr_param params[JP_TGR_MAX_PARAMS]; /* in order of appearance      */
    size_t n_rails;                         /* how many are JP_TGR_RAIL    */
    size_t n_skipped;                       /* tokens not understood       */
    bool truncated;     /* more than JP_TGR_MAX_PARAMS: the rest dropped   */
    char timestamp[24]; /* "06-25-2025 09:43:17" when the line has one     */
} jp_tgr_line;

/* Parses one line (with or without its trailing newline) into *out, which
 * is overwritten.  Returns JP_OK when at least one field was recognised;
 * JP_ERR_FORMAT (out->count == 0, err names the line's start) when none
 * was: an empty line, a comment or another program's output.  Never
 * allocates; safe to call from several threads on different outputs. */
jp_status jp_tegrastats_parse_line(const char *line, jp_tgr_line *out, jp_error *err);

/* The parameter called name in line, or NULL. */
const jp_tgr_param *jp_tgr_line_find(const jp_tgr_line *line, const char *name);

/* Whether a parameter name requested with the seed's --tgr_params selects
 * the parameter param_name of this parser.  Exact names always select
 * themselves; the seed's names also select what the seed extracted under
 * them on a TX2:
 *   CPU          -> CPU<i> and CPU<i>_freq (the seed's per-core lists);
 *   <X>_FREQ     -> <X>_FREQ and <X>_freq[<k>] (the seed's "%@MHz" pair);
 *   MCPU, BCPU, GPU, any <name> but CPU -> <name>_temp as well (the seed read
 *                   `MCPU@35.5C` under MCPU), so GPU on an AGX Xavier
 *                   selects both the rail GPU and the temperature GPU_temp.
 */
bool jp_tegrastats_name_selects(const char *requested, const char *param_name);

/* Converts a tegrastats log (any generation, generations mixed) read from
 * in into CSV on out: a header row, then one row per tegrastats line; a
 * column per parameter, the union of every line's names in first-seen
 * order, preceded by a `timestamp` column when any line has one; an empty
 * cell where a line lacks that parameter.  Blank lines and lines with no
 * tegrastats field are skipped.  The input is spooled to a temporary file
 * (it may be a pipe) and read a line at a time, each cut at
 * JP_LINE_MAX_BYTES (fileio.h), so memory stays bounded whatever the input;
 * a line that long is skipped, and notes (when not NULL) gets one line per
 * such line naming its number and byte offset (the first 10, then a count).
 * Errors: JP_ERR_IO (read, write or temporary file), JP_ERR_FORMAT (no
 * tegrastats line at all), JP_ERR_UNSUPPORTED (more than 4096 distinct
 * names). */
jp_status jp_tegrastats_to_csv(FILE *in, FILE *out, FILE *notes, jp_error *err);

/* The same with the caller's spool (opened for update, empty): what
 * jp_tegrastats_to_csv() does with a tmpfile().  The fuzz harness passes an
 * in-memory stream (fmemopen, as long as its input plus one byte): creating
 * a temporary file on disk cost most of an execution. */
jp_status jp_tegrastats_to_csv_spooled(FILE *in, FILE *out, FILE *notes, FILE *spool,
                                       jp_error *err);

#endif /* JP_TEGRASTATS_PARSE_H */
