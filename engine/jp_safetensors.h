/*
 * jp_safetensors.h: reading and writing float32 tensors in the safetensors
 * format (https://github.com/huggingface/safetensors).
 *
 * A file is: an 8-byte little-endian unsigned header length N; N bytes of
 * UTF-8 JSON, an object mapping each tensor name to
 * {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} plus an
 * optional "__metadata__" object of string values; then the data buffer, the
 * rest of the file.  Offsets are bytes relative to the start of the data
 * buffer.
 *
 * Reader: the file is mapped read-only with mmap and its header parsed with
 * cJSON; every tensor's data pointer points into the mapping, so a jp_st_file
 * is the arena that owns the weights (jp_tensor.h) until jp_st_close.  The
 * reader accepts no file the reference implementation refuses, and is
 * stricter where jplprof needs it: dtype F32 only, rank 0..JP_ST_MAX_RANK,
 * data 4-byte aligned in memory, no field in a tensor entry other than dtype,
 * shape and data_offsets.  As in the reference, the tensors must tile the data
 * buffer exactly (no overlap, no unreferenced byte, nothing after the last
 * tensor), names are unique (compared byte for byte), the header starts with
 * '{', is valid UTF-8 and ends with at most whitespace padding; a NUL byte,
 * raw or escaped as \u0000, is refused.  Every violation fails jp_st_open
 * with its own one-line message naming the file and the tensor and field at
 * fault.
 *
 * Writer: collects tensors and metadata, then writes the whole file at once,
 * atomically (temporary file in the same directory, fsync, rename, fsync of
 * the directory), so that a crash leaves either the old file or the new one.
 * Tensors are written in insertion order, "__metadata__" first; the header is
 * padded with spaces so that the data buffer starts 8-byte aligned.
 *
 * Neither side is thread-safe on the same object; jp_st_open from several
 * threads at once is not supported either (cJSON records parse errors in a
 * global).  Requires a little-endian host, like the format itself.
 */
#ifndef JP_SAFETENSORS_H
#define JP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "jp_error.h"
#include "jp_tensor.h"

/* Largest rank accepted by the reader and the writer: jp_tensor's. A file
 * with a tensor of higher rank is refused with JP_ERR_UNSUPPORTED. */
#define JP_ST_MAX_RANK JP_MAX_RANK

/* Largest header accepted, as a guard against absurd lengths (a real header
 * is a few hundred bytes per tensor: EfficientNet-B7's ~900 tensors need
 * ~100 KiB). */
#define JP_ST_MAX_HEADER_BYTES ((uint64_t)100 << 20)

/* One tensor of an open file.  Every field is read-only. */
typedef struct jp_st_tensor {
    const char *name;          /* NUL-terminated UTF-8, owned by the file   */
    int rank;                  /* 0..JP_ST_MAX_RANK                         */
    int64_t dims[JP_ST_MAX_RANK]; /* dims[0..rank-1], outermost first; >= 0 */
    int64_t numel;             /* product of dims (1 for rank 0)            */
    const float *data;         /* into the mapping, 4-byte aligned; valid
                                  until jp_st_close                         */
    uint64_t offset_bytes;     /* begin, relative to the data buffer        */
    uint64_t size_bytes;       /* numel * sizeof(float)                     */
} jp_st_tensor;

/* One "__metadata__" entry. */
typedef struct jp_st_kv {
    const char *key;           /* owned by the file */
    const char *value;
} jp_st_kv;

/* An open file.  Allocated by the caller, filled by jp_st_open, released by
 * jp_st_close.  Fields are read-only; prefer the functions below. */
typedef struct jp_st_file {
    char *path;                /* copy of the path given to jp_st_open      */
    const unsigned char *map;  /* the whole file, PROT_READ                 */
    size_t map_bytes;          /* file size                                 */
    uint64_t header_bytes;     /* N                                         */
    uint64_t data_bytes;       /* map_bytes - 8 - N                         */
    jp_st_tensor *tensors;     /* in header order                           */
    size_t n_tensors;
    const jp_st_tensor **by_name; /* the same tensors sorted by name (strcmp) */
    jp_st_kv *metadata;        /* in header order                           */
    size_t n_metadata;
    char *strings;             /* one block holding every name, key, value  */
} jp_st_file;

/* Maps the file at path and validates its header (see the file comment).
 * On success fills *f (the caller releases it with jp_st_close) and returns
 * JP_OK.  On failure *f is left zeroed (jp_st_close on it is harmless) and err
 * holds a message starting with the path:
 *   JP_ERR_MISSING      the file does not exist;
 *   JP_ERR_IO           it cannot be opened, is not a regular file, or mmap fails;
 *   JP_ERR_FORMAT       its contents break the format;
 *   JP_ERR_UNSUPPORTED  a valid file jplprof cannot use: a dtype other than F32,
 *                       a rank above JP_ST_MAX_RANK, data not 4-byte aligned.
 * A file truncated by someone else while mapped raises SIGBUS on access; the
 * weights files are never written in place (the writer renames), so this
 * does not happen with our own files. */
jp_status jp_st_open(const char *path, jp_st_file *f, jp_error *err);

/* Unmaps and frees everything; every pointer obtained from f dies.  Leaves
 * *f zeroed; harmless on a zeroed or already closed file. */
void jp_st_close(jp_st_file *f);

/* The tensor named exactly name (byte for byte, case-sensitive), or NULL.
 * O(log n). */
const jp_st_tensor *jp_st_find(const jp_st_file *f, const char *name);

/* Iteration in header order: for (size_t i = 0; i < jp_st_count(f); i++)
 * use jp_st_at(f, i).  jp_st_at returns NULL when i is out of range. */
size_t jp_st_count(const jp_st_file *f);
const jp_st_tensor *jp_st_at(const jp_st_file *f, size_t i);

/* The "__metadata__" value for key (exact match), or NULL when absent. */
const char *jp_st_metadata(const jp_st_file *f, const char *key);

/* Metadata iteration in header order; NULL when i is out of range. */
size_t jp_st_metadata_count(const jp_st_file *f);
const jp_st_kv *jp_st_metadata_at(const jp_st_file *f, size_t i);

/* The tensor named name, checked against the expected shape (rank, dims).
 * JP_ERR_MISSING when absent, JP_ERR_SHAPE when the shape differs, each with
 * a message naming the file, the tensor, what was found and expected. */
jp_status jp_st_require(const jp_st_file *f, const char *name, int rank,
                        const int64_t *dims, const jp_st_tensor **out,
                        jp_error *err);

/* ---- writer ---------------------------------------------------------- */

typedef struct jp_st_wtensor {
    char *name;                /* owned copy                                */
    int rank;
    int64_t dims[JP_ST_MAX_RANK];
    const float *data;         /* borrowed, or == owned                     */
    float *owned;              /* set by jp_st_writer_add_copy, else NULL   */
    uint64_t size_bytes;
} jp_st_wtensor;

typedef struct jp_st_wkv {
    char *key;                 /* owned copies */
    char *value;
} jp_st_wkv;

/* Collects tensors and metadata for one file.  Fields are private. */
typedef struct jp_st_writer {
    jp_st_wtensor *tensors;    /* in insertion order */
    size_t n_tensors, cap_tensors;
    jp_st_wkv *metadata;       /* in insertion order */
    size_t n_metadata, cap_metadata;
    uint64_t data_bytes;       /* sum of size_bytes */
} jp_st_writer;

/* Starts an empty writer (allocates nothing, cannot fail). */
void jp_st_writer_init(jp_st_writer *w);

/* Frees the writer's copies (names, metadata, copied data); borrowed data is
 * untouched.  Leaves *w empty and reusable. */
void jp_st_writer_free(jp_st_writer *w);

/* Adds a float32 tensor of shape dims[0..rank-1] (rank 0..JP_ST_MAX_RANK,
 * dims >= 0).  The name is copied.  jp_st_writer_add BORROWS data: it must
 * stay valid and unchanged until jp_st_writer_write returns (this is what
 * --dump-layers uses, to avoid copying hundreds of MB);
 * jp_st_writer_add_copy copies it.  data may be NULL only when the tensor
 * is empty.  JP_ERR_ARG for an empty name, a name that is not UTF-8,
 * "__metadata__", a name already added, a bad rank or dimension;
 * JP_ERR_NOMEM when a copy fails.  On failure the writer is unchanged. */
jp_status jp_st_writer_add(jp_st_writer *w, const char *name, int rank,
                           const int64_t *dims, const float *data, jp_error *err);
jp_status jp_st_writer_add_copy(jp_st_writer *w, const char *name, int rank,
                                const int64_t *dims, const float *data, jp_error *err);

/* Sets the metadata entry key to value (both copied, both UTF-8), replacing
 * an earlier value for the same key.  JP_ERR_ARG / JP_ERR_NOMEM. */
jp_status jp_st_writer_set_metadata(jp_st_writer *w, const char *key,
                                    const char *value, jp_error *err);

/* Writes everything added so far to path, atomically: the file is written as
 * "<path>.tmp.<pid>" in the same directory, flushed and fsynced, renamed over
 * path, then the directory is fsynced.  On failure (directory missing or
 * unwritable, disk full, a directory at path) the temporary file is removed,
 * path is left as it was, and JP_ERR_IO names the path, the step and
 * strerror.  If only the final directory fsync fails the new file is already
 * in place (and JP_ERR_IO says so).  The writer is not consumed: it can be
 * written again or freed. */
jp_status jp_st_writer_write(const jp_st_writer *w, const char *path, jp_error *err);

#endif /* JP_SAFETENSORS_H */
