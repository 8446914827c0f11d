/*
 * fileio.h: file writes that survive crashes, directory creation, and a text
 * buffer to assemble a file's contents before writing it.
 *
 * Invariant kept by every writer here: a path either holds its previous
 * complete contents or its new complete contents, never a part of either.
 * The new contents go to "<path>.tmp.<pid>" in the same directory (so that
 * rename(2) stays within one file system), are written with checked fwrite,
 * fflush and fsync, renamed over <path>, and the directory is fsync'd so that
 * the rename itself survives a power cut.  On any failure the temporary file
 * is removed and <path> is left untouched.
 *
 * A run killed with SIGKILL between open and rename leaves a stale
 * "<path>.tmp.<pid>" behind; jp_file_remove_stale_temps() removes those of
 * processes that no longer exist.  Readers never look at such names.
 */
#ifndef JP_FILEIO_H
#define JP_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <cJSON.h>

#include "../engine/jp_error.h"

/*
 * Writes n_bytes of data to path atomically (see the file comment).
 * Errors (JP_ERR_IO) name path and strerror, e.g. "cannot write
 * 'Dataset/x.json': No space left on device".  Creates no directory: call
 * jp_mkdir_p() on the parent first.  The file gets mode 0644 (less umask).
 */
jp_status jp_file_write_atomic(const char *path, const void *data, size_t n_bytes, jp_error *err);

/*
 * Prints root with jp_textbuf_json() (pretty when `pretty`, else on one
 * line), adds a final newline and writes it to path with
 * jp_file_write_atomic().  root is not modified nor freed.
 */
jp_status jp_json_write_atomic(const char *path, const cJSON *root, bool pretty, jp_error *err);

/*
 * Creates directory path and every missing parent ("mkdir -p"), mode 0755
 * less umask, and fsyncs each parent whose entry it added.  Succeeds when path
 * already is a directory.  Errors (JP_ERR_IO) name the directory that could
 * not be created and why: "cannot create directory 'a/b' (for 'a/b/c'):
 * Permission denied (is 'a' writable?)" or "'a/b' exists and is not a
 * directory".
 */
jp_status jp_mkdir_p(const char *path, jp_error *err);

/*
 * fsyncs directory dir so that entries created, renamed or removed in it are
 * durable.  File systems that cannot fsync a directory (EINVAL) are accepted.
 */
jp_status jp_fsync_dir(const char *dir, jp_error *err);

/*
 * Reads the whole file at path into a new NUL-terminated buffer (*data, to be
 * free()d by the caller) of *n_bytes bytes (the NUL not counted).  Errors:
 * JP_ERR_MISSING when path does not exist, JP_ERR_IO otherwise, both naming
 * path.  n_bytes may be NULL.
 */
jp_status jp_file_read_all(const char *path, char **data, size_t *n_bytes, jp_error *err);

/* True when path exists (any type). */
/* A newly allocated printf-formatted string (free it); NULL when out of memory. */
char *jp_strprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

bool jp_path_exists(const char *path);

/* True when path exists and is a directory. */
bool jp_is_dir(const char *path);

/*
 * Removes "<path>.tmp.<pid>" files left by processes that no longer run (a
 * run killed with SIGKILL mid-write).  Best effort: returns how many it
 * removed; never fails.
 */
int jp_file_remove_stale_temps(const char *path);

/*
 * Looks for an object with two members of the same name anywhere in the tree
 * under node (cJSON keeps both; lookups would see only the first).  Returns
 * true when one is found and writes where it is to where[cap] as a JSON path
 * with the key: "layers[3].calls".  where may be NULL.
 */
bool jp_json_find_duplicate_key(const cJSON *node, char *where, size_t cap);

/*
 * jp_textbuf: a growable byte buffer.  Appends never fail visibly: an
 * allocation failure sets `failed` and later appends do nothing, so that a
 * writer appends freely and checks jp_textbuf_ok() once before writing.
 * data is always NUL-terminated when len > 0 and !failed.
 */
typedef struct jp_textbuf {
    char *data;
    size_t len; /* bytes used, NUL not counted */
    size_t cap; /* bytes allocated */
    bool failed;
} jp_textbuf;

void jp_textbuf_init(jp_textbuf *b);
void jp_textbuf_free(jp_textbuf *b);
bool jp_textbuf_ok(const jp_textbuf *b);
void jp_textbuf_append(jp_textbuf *b, const char *s, size_t n);
void jp_textbuf_puts(jp_textbuf *b, const char *s);
void jp_textbuf_printf(jp_textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string: quoted, with ", \ and control bytes escaped. */
void jp_textbuf_json_string(jp_textbuf *b, const char *s);
/* Appends v as a JSON number in the shortest form that reads back as the
 * same double (jp_format_double()); NaN and infinities become null. */
void jp_textbuf_json_double(jp_textbuf *b, double v);

/*
 * Appends the JSON text of node.  Numbers are printed exactly
 * (jp_format_double(): cJSON's own printer may drop the last digit), NaN and
 * infinities as null.  pretty: Python's json.dumps(indent=4) layout, one
 * member per line; else one line with ", " and ": " separators.
 */
void jp_textbuf_json(jp_textbuf *b, const cJSON *node, bool pretty);

/*
 * Formats v in the shortest "%.<p>g" form (p = 1..17) that strtod() reads
 * back as exactly v: 0.1 -> "0.1", 1e-05 -> "1e-05"; whole numbers below
 * 1e15 without exponent: 1000 -> "1000".  buf needs at least 32 bytes.
 * Returns buf.
 */
char *jp_format_double(double v, char *buf, size_t cap);

/*
 * jp_line_reader: lines of a stream (a file or a pipe) with bounded memory.
 * A line longer than max_bytes is cut there: the caller gets its first
 * max_bytes bytes with `cut_bytes` set to how many were dropped after them
 * (the rest of the line is read and discarded, never held).  Lines may hold
 * any byte, NUL included (len counts them all); the returned line is also
 * NUL-terminated.  A last line without '\n' counts as a line.  The buffer
 * grows with the longest line read, up to max_bytes + 1.  Every reader of a
 * stream that others write (tegrastats, the seed-format files, the journal)
 * reads its lines through this.
 */
#define JP_LINE_MAX_BYTES 65536 /* 64 KiB: a real tegrastats line is < 1 KiB */

typedef struct jp_line_reader {
    FILE *in;
    char *buf;          /* [cap] the line, NUL-terminated                  */
    size_t cap;         /* bytes allocated: 4096 up to max_bytes + 1       */
    size_t max_bytes;
    size_t len;         /* bytes of the line in buf, without its '\n'      */
    size_t line_no;     /* 1-based number of the line in buf               */
    uint64_t offset;    /* byte offset of its first byte in the stream     */
    uint64_t cut_bytes; /* bytes dropped from it past max_bytes (0: whole) */
    uint64_t next_offset;
    bool ended_by_newline; /* false: the last line of the stream, no '\n' */
} jp_line_reader;

/* Allocates the buffer (max_bytes, 0: JP_LINE_MAX_BYTES); JP_ERR_NOMEM. */
jp_status jp_line_reader_init(jp_line_reader *r, FILE *in, size_t max_bytes, jp_error *err);
/* Reads the next line: 1 when there is one, 0 at the end, -1 on a read error
 * (errno kept; ferror(in) is set) or when the buffer cannot grow (ENOMEM). */
int jp_line_reader_next(jp_line_reader *r);
void jp_line_reader_free(jp_line_reader *r);

/*
 * Copies n bytes of text into out[cap] for a message on a terminal: printable
 * ASCII as it is, '\\' as "\\\\", every other byte (control characters, escape
 * sequences, bytes >= 0x80, NUL) as "\xNN"; when it does not fit, ends with
 * "...".  Always NUL-terminates (cap >= 4).  Returns out.
 */
char *jp_escape_text(const char *text, size_t n, char *out, size_t cap);

#endif /* JP_FILEIO_H */
