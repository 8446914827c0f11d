/* jp_error.c: the status name table and message helpers of jp_error.h. */
#include "jp_error.h"

#include <stdio.h>
#include <string.h>

static const char *const status_names[] = {
    [JP_OK] = "ok",
    [JP_ERR_IO] = "io",
    [JP_ERR_FORMAT] = "format",
    [JP_ERR_SHAPE] = "shape",
    [JP_ERR_MISSING] = "missing",
    [JP_ERR_UNSUPPORTED] = "unsupported",
    [JP_ERR_ARG] = "argument",
    [JP_ERR_NOMEM] = "out of memory",
    [JP_ERR_DEVICE] = "device",
    [JP_ERR_INTERRUPTED] = "interrupted",
    [JP_ERR_INTERNAL] = "internal",
};
_Static_assert(sizeof status_names / sizeof status_names[0] == JP_STATUS_COUNT,
               "status_names must name every jp_status");

const char *jp_status_name(jp_status status)
{
    if ((unsigned)status >= JP_STATUS_COUNT)
        return "unknown";
    return status_names[status];
}

jp_status jp_error_set(jp_error *err, jp_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

jp_status jp_error_prefix(jp_error *err, const char *fmt, ...)
{
    if (!err)
        return JP_ERR_INTERNAL;
    char prefix[JP_ERROR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* prefix + old message, cut to fit. */
    size_t used = strlen(prefix);
    size_t room = sizeof err->msg - 1 - (used < sizeof err->msg - 1 ? used : sizeof err->msg - 1);
    size_t keep = strnlen(err->msg, sizeof err->msg - 1);
    if (keep > room)
        keep = room;
    memmove(err->msg + (sizeof err->msg - 1 - room), err->msg, keep);
    memcpy(err->msg, prefix, sizeof err->msg - 1 - room);
    err->msg[sizeof err->msg - 1 - room + keep] = '\0';
    return err->status;
}
