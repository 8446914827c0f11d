/*
 * jp_error.h: errors as values.
 *
 * Every fallible function returns a jp_status and, on failure, fills a
 * caller-owned jp_error with one line that names the file, the field (a JSON
 * path for model files) or the option at fault, what was found and what was
 * expected.  Nothing below the CLI prints an error or exits; the CLI prints
 * err.msg and exits non-zero.
 */
#ifndef JP_ERROR_H
#define JP_ERROR_H

#include <stdarg.h>

typedef enum jp_status {
    JP_OK = 0,
    JP_ERR_IO,          /* open/read/write/mmap/rename failed            */
    JP_ERR_FORMAT,      /* a file's contents are malformed               */
    JP_ERR_SHAPE,       /* a tensor's shape is not the one expected      */
    JP_ERR_MISSING,     /* a required tensor, field or file is absent    */
    JP_ERR_UNSUPPORTED, /* a valid request this build cannot serve       */
    JP_ERR_ARG,         /* a bad option or argument value                */
    JP_ERR_NOMEM,       /* an allocation failed                          */
    JP_ERR_DEVICE,      /* a CUDA / cuDNN / cuBLAS call failed           */
    JP_ERR_INTERRUPTED, /* stopped by a signal                           */
    JP_ERR_INTERNAL,    /* a broken invariant: a bug in jplprof          */
    JP_STATUS_COUNT
} jp_status;

#define JP_ERROR_MSG_BYTES 1024

typedef struct jp_error {
    jp_status status;
    char msg[JP_ERROR_MSG_BYTES]; /* one line, no trailing newline */
} jp_error;

/* Name of a status ("io", "format", ...); never NULL. */
const char *jp_status_name(jp_status status);

/* Fills err (when not NULL) with status and a printf-formatted message and
 * returns status, so that callers can write `return jp_error_set(...)`. */
jp_status jp_error_set(jp_error *err, jp_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes err->msg with a printf-formatted context ("weights/x.json: ");
 * returns err->status. */
jp_status jp_error_prefix(jp_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* JP_ERROR_H */
