/*
 * tegrastats_parse.c: the tegrastats line parser and the log-to-CSV
 * converter of tegrastats_parse.h.
 *
 * A line is cut into whitespace-separated tokens (parenthesised asides such
 * as "(lfb 236x4MB)" or "0/252kB(lfb 252kB)" are dropped first), then read
 * left to right: a key token ("RAM", "CPU", "EMC_FREQ", a rail name) takes
 * the token after it as its value; a "name@valueC" token is a temperature.
 * Anything else is counted as skipped.  Numbers are parsed by hand so that
 * the result does not depend on the C locale.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "tegrastats_parse.h"

#include "fileio.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Most tokens one line can hold; a 14-core JetPack 7 line has ~60. */
#define MAX_TOKENS 512
/* A sensor reporting this or less is disabled (tegrastats prints -256C). */
#define TEMP_DISABLED_C (-255.0)

static const char *const kind_names[] = {
    [JP_TGR_RAIL] = "rail", [JP_TGR_TEMP] = "temp", [JP_TGR_LOAD] = "load",
    [JP_TGR_FREQ] = "freq", [JP_TGR_MEM] = "mem",
};
static const char *const kind_units[] = {
    [JP_TGR_RAIL] = "mW", [JP_TGR_TEMP] = "C", [JP_TGR_LOAD] = "%",
    [JP_TGR_FREQ] = "MHz", [JP_TGR_MEM] = "MB",
};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == JP_TGR_KIND_COUNT,
               "kind_names must name every jp_tgr_kind");
_Static_assert(sizeof kind_units / sizeof kind_units[0] == JP_TGR_KIND_COUNT,
               "kind_units must give a unit for every jp_tgr_kind");

const char *jp_tgr_kind_name(jp_tgr_kind kind)
{
    return (unsigned)kind < JP_TGR_KIND_COUNT ? kind_names[kind] : "unknown";
}

const char *jp_tgr_kind_unit(jp_tgr_kind kind)
{
    return (unsigned)kind < JP_TGR_KIND_COUNT ? kind_units[kind] : "";
}

/* ---- spans: a token is a pointer and a length into the caller's line ---- */

typedef struct span {
    const char *p;
    size_t n;
} span;

static bool span_eq(span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.n == n && memcmp(s.p, lit, n) == 0;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_alpha(char c) { return is_upper(c) || (c >= 'a' && c <= 'z'); }
static bool is_name_char(char c)
{
    return is_alpha(c) || is_digit(c) || c == '_' || c == '-' || c == '.';
}

/* A rail or engine name: a letter, then letters, digits, '_', '-', '.'. */
static bool is_name(span s)
{
    if (s.n == 0 || s.n >= JP_TGR_NAME_BYTES || !is_alpha(s.p[0]))
        return false;
    for (size_t i = 1; i < s.n; i++)
        if (!is_name_char(s.p[i]))
            return false;
    return true;
}

/* An all-capitals key ("EMC_FREQ", "NVDLA0_FREQ", "APE"). */
static bool is_upper_name(span s)
{
    if (!is_name(s) || !is_upper(s.p[0]))
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!(is_upper(s.p[i]) || is_digit(s.p[i]) || s.p[i] == '_'))
            return false;
    return true;
}

/* Parses an optionally signed decimal ("-256", "35.5", "7953") at *pos,
 * advancing *pos past it; false when no digit is there. */
static bool take_number(const char **pos, const char *end, double *out)
{
    const char *p = *pos;
    bool neg = false;
    if (p < end && (*p == '-' || *p == '+')) {
        neg = (*p == '-');
        p++;
    }
    double v = 0.0;
    int digits = 0;
    while (p < end && is_digit(*p)) {
        v = v * 10.0 + (*p - '0');
        p++;
        digits++;
    }
    if (p < end && *p == '.') {
        p++;
        double scale = 0.1;
        while (p < end && is_digit(*p)) {
            v += (*p - '0') * scale;
            scale *= 0.1;
            p++;
            digits++;
        }
    }
    if (digits == 0)
        return false;
    *out = neg ? -v : v;
    *pos = p;
    return true;
}

static bool take_lit(const char **pos, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - *pos) < n || memcmp(*pos, lit, n) != 0)
        return false;
    *pos += n;
    return true;
}

/* The whole span is one number. */
static bool span_number(span s, double *out)
{
    const char *p = s.p, *end = s.p + s.n;
    return take_number(&p, end, out) && p == end;
}

/* ---- output ---- */

typedef struct builder {
    jp_tgr_line *out;
} builder;

static bool has_name(const jp_tgr_line *l, const char *name)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->params[i].name, name) == 0)
            return true;
    return false;
}

/* Appends name (first name_n bytes of name, then suffix) with its value;
 * a name already in the line gets "_2", "_3", ... */
static void add_param(builder *b, const char *name, size_t name_n, const char *suffix,
                      jp_tgr_kind kind, double value)
{
    jp_tgr_line *l = b->out;
    if (l->count >= JP_TGR_MAX_PARAMS) {
        l->truncated = true;
        return;
    }
    char base[JP_TGR_NAME_BYTES];
    int n = snprintf(base, sizeof base, "%.*s%s", (int)name_n, name, suffix);
    if (n < 0 || (size_t)n >= sizeof base) {
        l->truncated = true;
        return;
    }
    jp_tgr_param *p = &l->params[l->count];
    if (!has_name(l, base)) {
        memcpy(p->name, base, (size_t)n + 1);
    } else {
        bool placed = false;
        for (int k = 2; k < 100 && !placed; k++) {
            char cand[JP_TGR_NAME_BYTES];
            int m = snprintf(cand, sizeof cand, "%s_%d", base, k);
            if (m < 0 || (size_t)m >= sizeof cand)
                break;
            if (!has_name(l, cand)) {
                memcpy(p->name, cand, (size_t)m + 1);
                placed = true;
            }
        }
        if (!placed) {
            l->truncated = true;
            return;
        }
    }
    p->kind = kind;
    p->value = value;
    l->count++;
    if (kind == JP_TGR_RAIL)
        l->n_rails++;
}

/* ---- token readers; each returns true when it recognised its token(s) ---- */

/* "06-25-2025" */
static bool is_date(span s)
{
    return s.n == 10 && is_digit(s.p[0]) && is_digit(s.p[1]) && s.p[2] == '-' &&
           is_digit(s.p[3]) && is_digit(s.p[4]) && s.p[5] == '-' && is_digit(s.p[6]) &&
           is_digit(s.p[7]) && is_digit(s.p[8]) && is_digit(s.p[9]);
}

/* "09:43:17" */
static bool is_time(span s)
{
    return s.n == 8 && is_digit(s.p[0]) && is_digit(s.p[1]) && s.p[2] == ':' &&
           is_digit(s.p[3]) && is_digit(s.p[4]) && s.p[5] == ':' && is_digit(s.p[6]) &&
           is_digit(s.p[7]);
}

/* "1404/7860MB" -> used, total */
static bool read_mem(span v, double *used, double *total)
{
    const char *p = v.p, *end = v.p + v.n;
    return take_number(&p, end, used) && take_lit(&p, end, "/") &&
           take_number(&p, end, total) && take_lit(&p, end, "MB") && p == end;
}

/* A rail value: "152/152", "5191mW/5191mW", "7953mW/8332mW/8710mW".
 * Units must agree (all unitless or all mW); the first number is returned. */
static bool read_rail(span v, double *current_mw)
{
    const char *p = v.p, *end = v.p + v.n;
    int numbers = 0;
    int with_unit = 0;
    double first = 0.0;
    for (;;) {
        double x;
        if (!take_number(&p, end, &x))
            return false;
        if (numbers == 0)
            first = x;
        numbers++;
        if (take_lit(&p, end, "mW"))
            with_unit++;
        if (p == end)
            break;
        if (!take_lit(&p, end, "/") || numbers == 3)
            return false;
    }
    if (numbers < 2 || (with_unit != 0 && with_unit != numbers))
        return false;
    *current_mw = first;
    return true;
}

/* "name@35.5C" or JetPack 7's "cpu@34.312C/34.843C" (current/max). */
static bool read_temp(span t, builder *b)
{
    const char *at = memchr(t.p, '@', t.n);
    if (!at || at == t.p)
        return false;
    span name = {t.p, (size_t)(at - t.p)};
    if (!is_name(name))
        return false;
    const char *p = at + 1, *end = t.p + t.n;
    double c;
    if (!take_number(&p, end, &c) || !take_lit(&p, end, "C"))
        return false;
    if (p != end) {
        double max_c;
        if (!take_lit(&p, end, "/") || !take_number(&p, end, &max_c) ||
            !take_lit(&p, end, "C") || p != end)
            return false;
    }
    if (c > TEMP_DISABLED_C)
        add_param(b, name.p, name.n, "_temp", JP_TGR_TEMP, c);
    return true;
}

/* Reads "@f" or "@[f0,f1,...]" at *pos into freqs; returns the count (0 on
 * a malformed list). */
static int take_freqs(const char **pos, const char *end, double *freqs, int max)
{
    const char *p = *pos;
    if (!take_lit(&p, end, "@"))
        return 0;
    int n = 0;
    if (take_lit(&p, end, "[")) {
        for (;;) {
            double f;
            if (n == max || !take_number(&p, end, &f))
                return 0;
            freqs[n++] = f;
            if (take_lit(&p, end, "]"))
                break;
            if (!take_lit(&p, end, ","))
                return 0;
        }
    } else {
        if (!take_number(&p, end, &freqs[0]))
            return 0;
        n = 1;
    }
    *pos = p;
    return n;
}

/* The names a load/clock key gives: "EMC_FREQ" -> load "EMC_FREQ", clock
 * stem "EMC"; "VIC" -> load "VIC", clock stem "VIC". */
static void emit_freqs(builder *b, span key, const double *freqs, int n)
{
    size_t stem_n = key.n;
    if (key.n > 5 && memcmp(key.p + key.n - 5, "_FREQ", 5) == 0)
        stem_n = key.n - 5;
    for (int i = 0; i < n; i++) {
        char suffix[24];
        if (i == 0)
            snprintf(suffix, sizeof suffix, "_freq");
        else
            snprintf(suffix, sizeof suffix, "_freq%d", i);
        add_param(b, key.p, stem_n, suffix, JP_TGR_FREQ, freqs[i]);
    }
}

/* Values of a load/clock key: "0%", "0%@905", "0%@[305,305]", "@1556",
 * "@[314,314,314]", or a bare clock "729" (VIC_FREQ 729, APE 150). */
static bool read_load(span key, span v, builder *b)
{
    const char *p = v.p, *end = v.p + v.n;
    double freqs[16];
    double load;
    if (take_number(&p, end, &load)) {
        if (p == end) {
            /* a bare number: a clock in MHz */
            if (span_eq(key, "APE")) {
                add_param(b, key.p, key.n, "", JP_TGR_FREQ, load);
            } else {
                freqs[0] = load;
                emit_freqs(b, key, freqs, 1);
            }
            return true;
        }
        if (!take_lit(&p, end, "%"))
            return false;
        int n = 0;
        if (p != end) {
            n = take_freqs(&p, end, freqs, 16);
            if (n == 0 || p != end)
                return false;
        }
        add_param(b, key.p, key.n, "", JP_TGR_LOAD, load);
        emit_freqs(b, key, freqs, n);
        return true;
    }
    int n = take_freqs(&p, end, freqs, 16);
    if (n == 0 || p != end)
        return false;
    emit_freqs(b, key, freqs, n);
    return true;
}

/* "[0%@345,off,33%@2265]" or the older "[3%,4%]@1224". */
static bool read_cpus(span v, builder *b)
{
    const char *p = v.p, *end = v.p + v.n;
    if (!take_lit(&p, end, "["))
        return false;
    const char *close = memchr(p, ']', (size_t)(end - p));
    if (!close)
        return false;
    /* A shared clock after the list applies to every core. */
    double shared_freq = NAN;
    if (close + 1 < end) {
        const char *q = close + 1;
        double f;
        if (!take_lit(&q, end, "@") || !take_number(&q, end, &f) || q != end)
            return false;
        shared_freq = f;
    }
    int core = 0;
    while (p < close) {
        const char *comma = memchr(p, ',', (size_t)(close - p));
        const char *item_end = comma ? comma : close;
        span item = {p, (size_t)(item_end - p)};
        char name[16];
        int name_n = snprintf(name, sizeof name, "CPU%d", core);
        if (!span_eq(item, "off") && item.n > 0) {
            const char *q = item.p, *qe = item.p + item.n;
            double load, freq;
            if (take_number(&q, qe, &load) && take_lit(&q, qe, "%")) {
                add_param(b, name, (size_t)name_n, "", JP_TGR_LOAD, load);
                if (take_lit(&q, qe, "@") && take_number(&q, qe, &freq) && q == qe)
                    add_param(b, name, (size_t)name_n, "_freq", JP_TGR_FREQ, freq);
                else if (q == qe && !isnan(shared_freq))
                    add_param(b, name, (size_t)name_n, "_freq", JP_TGR_FREQ, shared_freq);
            } else {
                b->out->n_skipped++;
            }
        }
        core++;
        p = comma ? comma + 1 : close;
    }
    return true;
}

/* Cuts the line into tokens, dropping parenthesised asides. */
static size_t tokenize(const char *line, span *tok, size_t max, size_t *dropped)
{
    size_t n = 0;
    int depth = 0;
    const char *p = line;
    while (*p && *p != '\n' && *p != '\r') {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '\n' || *p == '\r')
            break;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            p++;
        /* keep the parts of this token outside parentheses */
        const char *keep = NULL;
        size_t keep_n = 0;
        for (const char *q = start; q < p; q++) {
            if (*q == '(') {
                depth++;
            } else if (*q == ')') {
                if (depth > 0)
                    depth--;
            } else if (depth == 0) {
                if (!keep)
                    keep = q;
                if (keep + keep_n == q)
                    keep_n++;
            }
        }
        if (keep && keep_n > 0) {
            if (n < max)
                tok[n++] = (span){keep, keep_n};
            else
                (*dropped)++;
        }
    }
    return n;
}

jp_status jp_tegrastats_parse_line(const char *line, jp_tgr_line *out, jp_error *err)
{
    if (!out)
        return jp_error_set(err, JP_ERR_INTERNAL, "jp_tegrastats_parse_line: out is NULL");
    out->count = 0;
    out->n_rails = 0;
    out->n_skipped = 0;
    out->truncated = false;
    out->timestamp[0] = '\0';
    if (!line)
        return jp_error_set(err, JP_ERR_INTERNAL, "jp_tegrastats_parse_line: line is NULL");

    span tok[MAX_TOKENS];
    size_t dropped = 0;
    size_t n = tokenize(line, tok, MAX_TOKENS, &dropped);
    out->n_skipped += dropped;
    builder b = {out};

    size_t i = 0;
    /* "MM-DD-YYYY HH:MM:SS" prefix of JetPack 5 and later */
    if (n >= 2 && is_date(tok[0]) && is_time(tok[1])) {
        snprintf(out->timestamp, sizeof out->timestamp, "%.*s %.*s", (int)tok[0].n, tok[0].p,
                 (int)tok[1].n, tok[1].p);
        i = 2;
    }
    while (i < n) {
        span t = tok[i];
        bool has_next = i + 1 < n;
        span v = has_next ? tok[i + 1] : (span){"", 0};
        double a, c;

        if (has_next && (span_eq(t, "RAM") || span_eq(t, "SWAP")) && read_mem(v, &a, &c)) {
            add_param(&b, t.p, t.n, "", JP_TGR_MEM, a);
            add_param(&b, t.p, t.n, "_total", JP_TGR_MEM, c);
            i += 2;
            continue;
        }
        if (has_next && (span_eq(t, "CPU") || span_eq(t, "cpu")) && v.n > 0 && v.p[0] == '[') {
            if (read_cpus(v, &b)) {
                i += 2;
                continue;
            }
        }
        /* "MTS fg 0% bg 3%" (Denver/Carmel foreground and background load) */
        if (span_eq(t, "MTS") && i + 4 < n && span_eq(tok[i + 1], "fg") &&
            span_eq(tok[i + 3], "bg")) {
            span fg = tok[i + 2], bg = tok[i + 4];
            if (fg.n > 1 && bg.n > 1 && fg.p[fg.n - 1] == '%' && bg.p[bg.n - 1] == '%' &&
                span_number((span){fg.p, fg.n - 1}, &a) &&
                span_number((span){bg.p, bg.n - 1}, &c)) {
                add_param(&b, "MTS_fg", 6, "", JP_TGR_LOAD, a);
                add_param(&b, "MTS_bg", 6, "", JP_TGR_LOAD, c);
                i += 5;
                continue;
            }
        }
        if (memchr(t.p, '@', t.n) && read_temp(t, &b)) {
            i++;
            continue;
        }
        if (has_next && is_name(t) && read_rail(v, &a)) {
            add_param(&b, t.p, t.n, "", JP_TGR_RAIL, a);
            i += 2;
            continue;
        }
        if (has_next && is_upper_name(t)) {
            if (span_eq(v, "off")) { /* an engine switched off: no value */
                i += 2;
                continue;
            }
            if (read_load(t, v, &b)) {
                i += 2;
                continue;
            }
        }
        out->n_skipped++;
        i++;
    }

    if (out->count == 0) {
        size_t len = strcspn(line, "\r\n");
        char head[256]; /* escaped: the line may be binary garbage */
        jp_escape_text(line, len < 60 ? len : 60, head, sizeof head);
        return jp_error_set(err, JP_ERR_FORMAT,
                            "not a tegrastats line (no RAM, CPU, temperature or rail field): '%s%s'",
                            head, len > 60 ? "..." : "");
    }
    return JP_OK;
}

const jp_tgr_param *jp_tgr_line_find(const jp_tgr_line *line, const char *name)
{
    if (!line || !name)
        return NULL;
    for (size_t i = 0; i < line->count; i++)
        if (strcmp(line->params[i].name, name) == 0)
            return &line->params[i];
    return NULL;
}

/* s is prefix followed by optional digits only */
static bool is_prefix_digits(const char *s, const char *prefix, size_t prefix_n)
{
    if (strncmp(s, prefix, prefix_n) != 0)
        return false;
    for (s += prefix_n; *s; s++)
        if (!is_digit(*s))
            return false;
    return true;
}

bool jp_tegrastats_name_selects(const char *requested, const char *param_name)
{
    if (!requested || !param_name || !*requested)
        return false;
    if (strcmp(requested, param_name) == 0)
        return true;
    size_t rn = strlen(requested);
    if (strcmp(requested, "CPU") == 0) {
        /* CPU<i> or CPU<i>_freq */
        const char *p = param_name;
        if (strncmp(p, "CPU", 3) != 0 || !is_digit(p[3]))
            return false;
        p += 3;
        while (is_digit(*p))
            p++;
        return *p == '\0' || strcmp(p, "_freq") == 0;
    }
    if (rn > 5 && strcmp(requested + rn - 5, "_FREQ") == 0) {
        char prefix[JP_TGR_NAME_BYTES + 8];
        int m = snprintf(prefix, sizeof prefix, "%.*s_freq", (int)(rn - 5), requested);
        if (m < 0 || (size_t)m >= sizeof prefix)
            return false;
        return is_prefix_digits(param_name, prefix, (size_t)m);
    }
    /* the seed read MCPU@35.5C under "MCPU" (its CPU was the core list) */
    return strncmp(param_name, requested, rn) == 0 && strcmp(param_name + rn, "_temp") == 0;
}

/* ---- CSV conversion ---- */

/* Most distinct column names; a real log has well under 100. */
#define CSV_MAX_COLUMNS 4096
#define CSV_HASH_SLOTS 8192 /* a power of two, > 2 * CSV_MAX_COLUMNS */
/* Cut lines reported one by one; after these, one count at the end. */
#define CSV_MAX_CUT_NOTES 10

/* Names allocated for at first; doubled as needed up to CSV_MAX_COLUMNS (all
 * 4096 at once were 192 KiB a conversion: under the fuzzer's ASan, a fresh
 * mapping every execution and half its time). */
#define CSV_FIRST_COLUMNS 64

typedef struct csv_columns {
    size_t count, cap;
    char (*names)[JP_TGR_NAME_BYTES]; /* (count) in first-seen order, room for cap */
    int32_t *slots;                   /* (CSV_HASH_SLOTS) column index or -1 */
} csv_columns;

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

/* Index of name, added when absent; -1 when the table is full, -2 when
 * there is no memory for more names. */
static int32_t column_index(csv_columns *c, const char *name, bool add)
{
    uint32_t slot = name_hash(name) & (CSV_HASH_SLOTS - 1);
    for (;;) {
        int32_t idx = c->slots[slot];
        if (idx < 0)
            break;
        if (strcmp(c->names[idx], name) == 0)
            return idx;
        slot = (slot + 1) & (CSV_HASH_SLOTS - 1);
    }
    if (!add || c->count >= CSV_MAX_COLUMNS)
        return -1;
    if (c->count == c->cap) {
        const size_t cap = c->cap * 2 < CSV_MAX_COLUMNS ? c->cap * 2 : CSV_MAX_COLUMNS;
        void *grown = realloc(c->names, cap * sizeof *c->names);
        if (!grown)
            return -2;
        c->names = grown;
        c->cap = cap;
    }
    int32_t idx = (int32_t)c->count++;
    snprintf(c->names[idx], JP_TGR_NAME_BYTES, "%s", name);
    c->slots[slot] = idx;
    return idx;
}

static bool line_is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return false;
    return true;
}

jp_status jp_tegrastats_to_csv(FILE *in, FILE *out, FILE *notes, jp_error *err)
{
    if (!in || !out)
        return jp_error_set(err, JP_ERR_INTERNAL, "jp_tegrastats_to_csv: NULL stream");
    FILE *spool = tmpfile();
    if (!spool)
        return jp_error_set(err, JP_ERR_IO,
                            "tegrastats to CSV: cannot create a temporary file: %s",
                            strerror(errno));
    jp_status st = jp_tegrastats_to_csv_spooled(in, out, notes, spool, err);
    fclose(spool);
    return st;
}

jp_status jp_tegrastats_to_csv_spooled(FILE *in, FILE *out, FILE *notes, FILE *spool,
                                       jp_error *err)
{
    jp_status st = JP_OK;
    jp_line_reader rd = {0};
    jp_tgr_line *parsed = NULL;
    double *row = NULL;
    unsigned char *present = NULL;
    csv_columns cols = {0};

    if (!in || !out || !spool)
        return jp_error_set(err, JP_ERR_INTERNAL, "jp_tegrastats_to_csv: NULL stream");

    if ((st = jp_line_reader_init(&rd, in, JP_LINE_MAX_BYTES, err)) != JP_OK)
        return st;
    parsed = malloc(sizeof *parsed);
    cols.cap = CSV_FIRST_COLUMNS;
    cols.names = malloc(sizeof *cols.names * cols.cap);
    cols.slots = malloc(sizeof *cols.slots * CSV_HASH_SLOTS);
    if (!parsed || !cols.names || !cols.slots) {
        st = jp_error_set(err, JP_ERR_NOMEM, "tegrastats to CSV: out of memory");
        goto done;
    }
    for (size_t i = 0; i < CSV_HASH_SLOTS; i++)
        cols.slots[i] = -1;

    /* Pass 1: copy the tegrastats lines to the spool, collect the names. */
    size_t lines_read = 0, rows = 0, skipped = 0, cut = 0;
    bool any_timestamp = false;
    int got;
    errno = 0;
    while ((got = jp_line_reader_next(&rd)) > 0) {
        lines_read = rd.line_no;
        const char *line = rd.buf;
        size_t len = rd.len;
        if (rd.cut_bytes) {
            /* Memory stays bounded: the line was cut at JP_LINE_MAX_BYTES.
             * No tegrastats prints such a line; its start alone would give
             * a partial row, so it is skipped, and said where. */
            cut++;
            skipped++;
            if (notes && cut <= CSV_MAX_CUT_NOTES)
                fprintf(notes,
                        "jplprof tegrastats: line %zu (from byte %llu) is longer than %d bytes: "
                        "cut at byte %llu, its other %llu bytes dropped, line skipped\n",
                        rd.line_no, (unsigned long long)rd.offset, JP_LINE_MAX_BYTES,
                        (unsigned long long)(rd.offset + rd.max_bytes),
                        (unsigned long long)rd.cut_bytes);
            continue;
        }
        if (line_is_blank(line))
            continue;
        if (jp_tegrastats_parse_line(line, parsed, NULL) != JP_OK) {
            skipped++;
            continue;
        }
        if (parsed->timestamp[0])
            any_timestamp = true;
        for (size_t i = 0; i < parsed->count; i++) {
            const int32_t idx = column_index(&cols, parsed->params[i].name, true);
            if (idx == -2) {
                st = jp_error_set(err, JP_ERR_NOMEM, "tegrastats to CSV: out of memory (%zu parameter names)",
                                  cols.count);
                goto done;
            }
            if (idx < 0) {
                st = jp_error_set(err, JP_ERR_UNSUPPORTED,
                                  "tegrastats to CSV: line %zu: more than %d distinct parameter names",
                                  lines_read, CSV_MAX_COLUMNS);
                goto done;
            }
        }
        if (fwrite(line, 1, len, spool) != len || fputc('\n', spool) == EOF) {
            st = jp_error_set(err, JP_ERR_IO, "tegrastats to CSV: cannot write the temporary file: %s",
                              strerror(errno));
            goto done;
        }
        rows++;
    }
    if (notes && cut > CSV_MAX_CUT_NOTES)
        fprintf(notes, "jplprof tegrastats: %zu lines in all were longer than %d bytes and skipped\n",
                cut, JP_LINE_MAX_BYTES);
    if (got < 0 || ferror(in)) {
        st = jp_error_set(err, JP_ERR_IO, "tegrastats to CSV: read error after line %zu: %s",
                          lines_read, strerror(errno));
        goto done;
    }
    if (rows == 0) {
        st = jp_error_set(err, JP_ERR_FORMAT,
                          "tegrastats to CSV: no tegrastats line in the input (%zu lines read, %zu not "
                          "tegrastats)",
                          lines_read, skipped);
        goto done;
    }

    /* Header. */
    bool first = true;
    if (any_timestamp) {
        fputs("timestamp", out);
        first = false;
    }
    for (size_t c = 0; c < cols.count; c++) {
        fprintf(out, "%s%s", first ? "" : ",", cols.names[c]);
        first = false;
    }
    fputc('\n', out);

    /* Pass 2: one row per spooled line. */
    row = malloc(sizeof *row * cols.count);
    present = malloc(cols.count);
    if (!row || !present) {
        st = jp_error_set(err, JP_ERR_NOMEM, "tegrastats to CSV: out of memory");
        goto done;
    }
    if (fseek(spool, 0, SEEK_SET) != 0) {
        st = jp_error_set(err, JP_ERR_IO, "tegrastats to CSV: cannot rewind the temporary file: %s",
                          strerror(errno));
        goto done;
    }
    rd.in = spool;
    while (jp_line_reader_next(&rd) > 0) {
        if (jp_tegrastats_parse_line(rd.buf, parsed, NULL) != JP_OK)
            continue; /* cannot happen: pass 1 kept parsable lines only */
        memset(present, 0, cols.count);
        for (size_t i = 0; i < parsed->count; i++) {
            int32_t c = column_index(&cols, parsed->params[i].name, false);
            if (c >= 0) {
                row[c] = parsed->params[i].value;
                present[c] = 1;
            }
        }
        first = true;
        if (any_timestamp) {
            fputs(parsed->timestamp, out);
            first = false;
        }
        for (size_t c = 0; c < cols.count; c++) {
            if (!first)
                fputc(',', out);
            first = false;
            if (present[c])
                fprintf(out, "%.10g", row[c]);
        }
        fputc('\n', out);
    }
    if (ferror(spool)) {
        st = jp_error_set(err, JP_ERR_IO, "tegrastats to CSV: cannot read the temporary file back: %s",
                          strerror(errno));
        goto done;
    }
    if (fflush(out) != 0 || ferror(out)) {
        st = jp_error_set(err, JP_ERR_IO, "tegrastats to CSV: cannot write the CSV: %s", strerror(errno));
        goto done;
    }

done:
    jp_line_reader_free(&rd);
    free(parsed);
    free(row);
    free(present);
    free(cols.names);
    free(cols.slots);
    return st;
}
