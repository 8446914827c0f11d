/*
 * jp_safetensors.c: the safetensors reader and writer of jp_safetensors.h.
 *
 * Reader invariants, established by jp_st_open before it returns JP_OK:
 *   - 8 + header_bytes + data_bytes == map_bytes, header_bytes <= 100 MiB;
 *   - for every tensor: dtype F32, 0 <= rank <= JP_ST_MAX_RANK, every dim >= 0,
 *     numel * 4 fits in int64 whatever the order of multiplication (the
 *     product of the non-zero dims times 4 does), offset + size_bytes <=
 *     data_bytes, data 4-byte aligned;
 *   - the tensors, sorted by offset, tile [0, data_bytes) exactly;
 *   - names are unique, metadata keys are unique, every string is UTF-8
 *     without NUL.
 * Everything a caller reads through this interface is therefore inside the
 * mapping and the right size.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "jp_safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; jp_safetensors.c assumes a little-endian host"
#endif
_Static_assert(sizeof(float) == 4, "safetensors F32 is 4 bytes");

#define LEN_FIELD_BYTES 8u          /* the u64 header length before the JSON */
#define DATA_ALIGN_BYTES 8u         /* the writer's padding of the data start */
#define MAX_EXACT_DOUBLE ((double)((uint64_t)1 << 53)) /* cJSON numbers are doubles */

/* ---- message helpers --------------------------------------------------- */

/* Copies s into buf for a message: control bytes become '?', so that the
 * message stays one line, and a string too long for buf is cut at a UTF-8
 * character boundary and ends with "...". Returns buf. */
static const char *printable(const char *s, char *buf, size_t buf_bytes)
{
    size_t n = 0, i = 0;
    size_t room = buf_bytes - 4; /* "..." and the terminator */
    for (; s[i] != '\0' && n < room; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s[i] != '\0') {
        if (((unsigned char)s[i] & 0xC0) == 0x80) { /* cut inside a character */
            while (n > 0 && ((unsigned char)buf[n - 1] & 0xC0) == 0x80)
                n--;
            if (n > 0 && (unsigned char)buf[n - 1] >= 0xC0)
                n--;
        }
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

#define PATH_SHOWN_BYTES 400 /* of the 1024 of a message */
#define NAME_SHOWN_BYTES 200

typedef struct parse_ctx {
    char path[PATH_SHOWN_BYTES]; /* printable path, for messages */
    jp_error *err;
} parse_ctx;

/* "<path>: <message>" */
__attribute__((format(printf, 3, 4)))
static jp_status fail(const parse_ctx *ctx, jp_status status, const char *fmt, ...)
{
    char msg[JP_ERROR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return jp_error_set(ctx->err, status, "%s: %s", ctx->path, msg);
}

/* "<path>: tensor "<name>": <message>" */
__attribute__((format(printf, 4, 5)))
static jp_status tfail(const parse_ctx *ctx, jp_status status, const char *name,
                       const char *fmt, ...)
{
    char msg[JP_ERROR_MSG_BYTES], shown[NAME_SHOWN_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return jp_error_set(ctx->err, status, "%s: tensor \"%s\": %s", ctx->path,
                        printable(name, shown, sizeof shown), msg);
}

/* ---- small validators -------------------------------------------------- */

/* Length of the valid UTF-8 prefix of s[0..n): n when all of it is valid
 * (no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_valid_prefix(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2; cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3; cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4; cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i < len)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += len;
    }
    return n;
}

static bool is_utf8(const char *s)
{
    size_t n = strlen(s);
    return utf8_valid_prefix((const unsigned char *)s, n) == n;
}

typedef enum uint_result { UINT_OK, UINT_NOT_NUMBER, UINT_NEGATIVE, UINT_FRACTION, UINT_TOO_LARGE } uint_result;

/* A JSON number that is a non-negative integer below 2^53 (above that a
 * double no longer holds every integer, and no valid offset or non-empty
 * dimension gets there: the file would be 8 PiB). */
static uint_result json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return UINT_NOT_NUMBER;
    double d = item->valuedouble;
    if (d < 0)
        return UINT_NEGATIVE;
    if (!(d <= MAX_EXACT_DOUBLE))
        return UINT_TOO_LARGE;
    uint64_t u = (uint64_t)d;
    if ((double)u != d)
        return UINT_FRACTION;
    *out = u;
    return UINT_OK;
}

static const char *uint_problem(uint_result r)
{
    switch (r) {
    case UINT_NOT_NUMBER: return "is not a number";
    case UINT_NEGATIVE: return "is negative";
    case UINT_FRACTION: return "is not an integer";
    case UINT_TOO_LARGE: return "is too large (above 2^53)";
    default: return "is invalid";
    }
}

static const char *json_type_name(const cJSON *item)
{
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsBool(item)) return "a boolean";
    if (cJSON_IsNull(item)) return "null";
    if (cJSON_IsArray(item)) return "a list";
    if (cJSON_IsObject(item)) return "an object";
    return "invalid";
}

/* ---- reader ------------------------------------------------------------ */

static int cmp_tensor_name(const void *a, const void *b)
{
    const jp_st_tensor *ta = *(const jp_st_tensor *const *)a;
    const jp_st_tensor *tb = *(const jp_st_tensor *const *)b;
    return strcmp(ta->name, tb->name);
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const jp_st_tensor *ta = *(const jp_st_tensor *const *)a;
    const jp_st_tensor *tb = *(const jp_st_tensor *const *)b;
    if (ta->offset_bytes != tb->offset_bytes)
        return ta->offset_bytes < tb->offset_bytes ? -1 : 1;
    if (ta->size_bytes != tb->size_bytes)
        return ta->size_bytes < tb->size_bytes ? -1 : 1;
    return strcmp(ta->name, tb->name);
}

static int cmp_kv_key(const void *a, const void *b)
{
    const jp_st_kv *ka = *(const jp_st_kv *const *)a;
    const jp_st_kv *kb = *(const jp_st_kv *const *)b;
    return strcmp(ka->key, kb->key);
}

/* Copies s into the string block at *cursor; returns the copy. */
static const char *pool_copy(char **cursor, const char *s)
{
    size_t n = strlen(s) + 1;
    char *dst = *cursor;
    memcpy(dst, s, n);
    *cursor += n;
    return dst;
}

/* Validates one header entry and fills t (whose name is already set). */
static jp_status parse_tensor(const parse_ctx *ctx, const jp_st_file *f, const cJSON *entry,
                              jp_st_tensor *t)
{
    const char *name = t->name;
    if (!cJSON_IsObject(entry))
        return tfail(ctx, JP_ERR_FORMAT, name, "entry is %s, expected an object "
                     "{\"dtype\", \"shape\", \"data_offsets\"}", json_type_name(entry));

    const cJSON *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (const cJSON *e = entry->child; e; e = e->next) {
        const cJSON **slot = NULL;
        if (strcmp(e->string, "dtype") == 0)
            slot = &dtype;
        else if (strcmp(e->string, "shape") == 0)
            slot = &shape;
        else if (strcmp(e->string, "data_offsets") == 0)
            slot = &offsets;
        else {
            char shown[NAME_SHOWN_BYTES];
            return tfail(ctx, JP_ERR_FORMAT, name, "unknown field \"%s\" (expected dtype, "
                         "shape, data_offsets)", printable(e->string, shown, sizeof shown));
        }
        if (*slot)
            return tfail(ctx, JP_ERR_FORMAT, name, "field \"%s\" appears twice", e->string);
        *slot = e;
    }
    if (!dtype)
        return tfail(ctx, JP_ERR_FORMAT, name, "missing field \"dtype\"");
    if (!shape)
        return tfail(ctx, JP_ERR_FORMAT, name, "missing field \"shape\"");
    if (!offsets)
        return tfail(ctx, JP_ERR_FORMAT, name, "missing field \"data_offsets\"");

    /* dtype */
    if (!cJSON_IsString(dtype))
        return tfail(ctx, JP_ERR_FORMAT, name, "dtype is %s, expected a string such as \"F32\"",
                     json_type_name(dtype));
    if (strcmp(dtype->valuestring, "F32") != 0) {
        char shown[NAME_SHOWN_BYTES];
        return tfail(ctx, JP_ERR_UNSUPPORTED, name, "dtype \"%s\" is not supported: jplprof "
                     "reads F32 only (convert the weights to float32)",
                     printable(dtype->valuestring, shown, sizeof shown));
    }

    /* shape */
    if (!cJSON_IsArray(shape))
        return tfail(ctx, JP_ERR_FORMAT, name, "shape is %s, expected a list of non-negative "
                     "integers", json_type_name(shape));
    int rank = cJSON_GetArraySize(shape);
    if (rank > JP_ST_MAX_RANK)
        return tfail(ctx, JP_ERR_UNSUPPORTED, name, "shape has rank %d, above the supported "
                     "maximum %d", rank, JP_ST_MAX_RANK);
    t->rank = rank;
    int i = 0;
    for (const cJSON *d = shape->child; d; d = d->next, i++) {
        uint64_t v = 0;
        uint_result r = json_uint(d, &v);
        if (r != UINT_OK) {
            if (cJSON_IsNumber(d))
                return tfail(ctx, JP_ERR_FORMAT, name, "shape[%d] = %.17g %s: dimensions must "
                             "be non-negative integers", i, d->valuedouble, uint_problem(r));
            return tfail(ctx, JP_ERR_FORMAT, name, "shape[%d] is %s: dimensions must be "
                         "non-negative integers", i, json_type_name(d));
        }
        t->dims[i] = (int64_t)v;
    }

    /* numel: the product of the non-zero dims times 4 must fit in int64, so
     * that any partial product computed downstream does too. */
    char shape_buf[128];
    uint64_t nonzero_product = 1;
    bool has_zero = false;
    for (i = 0; i < rank; i++) {
        uint64_t d = (uint64_t)t->dims[i];
        if (d == 0) {
            has_zero = true;
            continue;
        }
        if (nonzero_product > (uint64_t)INT64_MAX / 4 / d)
            return tfail(ctx, JP_ERR_FORMAT, name, "shape %s overflows: its element count "
                         "times 4 bytes exceeds 2^63",
                         jp_shape_str(rank, t->dims, shape_buf, sizeof shape_buf));
        nonzero_product *= d;
    }
    uint64_t numel = has_zero ? 0 : nonzero_product;
    t->numel = (int64_t)numel;
    t->size_bytes = numel * sizeof(float);

    /* data_offsets */
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
        return tfail(ctx, JP_ERR_FORMAT, name, "data_offsets is %s, expected a list [begin, end]",
                     cJSON_IsArray(offsets) ? "a list whose length is not 2"
                                            : json_type_name(offsets));
    uint64_t be[2] = {0, 0};
    i = 0;
    for (const cJSON *o = offsets->child; o; o = o->next, i++) {
        uint_result r = json_uint(o, &be[i]);
        if (r != UINT_OK) {
            if (cJSON_IsNumber(o))
                return tfail(ctx, JP_ERR_FORMAT, name, "data_offsets[%d] = %.17g %s: offsets must "
                             "be non-negative integers", i, o->valuedouble, uint_problem(r));
            return tfail(ctx, JP_ERR_FORMAT, name, "data_offsets[%d] is %s: offsets must be "
                         "non-negative integers", i, json_type_name(o));
        }
    }
    uint64_t begin = be[0], end = be[1];
    if (begin > end)
        return tfail(ctx, JP_ERR_FORMAT, name, "data_offsets [%" PRIu64 ", %" PRIu64 "]: begin "
                     "is after end", begin, end);
    if (end - begin != t->size_bytes)
        return tfail(ctx, JP_ERR_FORMAT, name, "data_offsets [%" PRIu64 ", %" PRIu64 "] span %"
                     PRIu64 " bytes, which does not match shape %s (%" PRIu64 " bytes of F32)",
                     begin, end, end - begin,
                     jp_shape_str(rank, t->dims, shape_buf, sizeof shape_buf), t->size_bytes);
    if (end > f->data_bytes)
        return tfail(ctx, JP_ERR_FORMAT, name, "data_offsets [%" PRIu64 ", %" PRIu64 "] reach "
                     "beyond the data buffer (%" PRIu64 " bytes: the file is truncated or the "
                     "offsets are wrong)", begin, end, f->data_bytes);
    t->offset_bytes = begin;
    const unsigned char *p = f->map + LEN_FIELD_BYTES + f->header_bytes + begin;
    if ((uintptr_t)p % sizeof(float) != 0)
        return tfail(ctx, JP_ERR_UNSUPPORTED, name, "data at file offset %" PRIu64 " is not "
                     "4-byte aligned (header length %" PRIu64 "); re-save the file with jplprof's "
                     "converter or a current safetensors, which align the data",
                     LEN_FIELD_BYTES + f->header_bytes + begin, f->header_bytes);
    t->data = (const float *)(const void *)p;
    return JP_OK;
}

/* Everything after the mapping: header checks, JSON, tensors, tiling. */
static jp_status parse_file(const parse_ctx *ctx, jp_st_file *f)
{
    jp_status st = JP_OK;
    char *header = NULL;
    cJSON *root = NULL;
    const jp_st_tensor **by_offset = NULL;
    const jp_st_kv **kv_sorted = NULL;

    uint64_t n = 0;
    for (unsigned i = 0; i < LEN_FIELD_BYTES; i++)
        n |= (uint64_t)f->map[i] << (8 * i);
    uint64_t after_len = (uint64_t)f->map_bytes - LEN_FIELD_BYTES;
    if (n > after_len)
        return fail(ctx, JP_ERR_FORMAT, "header length %" PRIu64 " exceeds file size %zu "
                    "(at most %" PRIu64 " bytes follow the length field): the file is truncated "
                    "or not safetensors", n, f->map_bytes, after_len);
    if (n > JP_ST_MAX_HEADER_BYTES)
        return fail(ctx, JP_ERR_FORMAT, "header length %" PRIu64 " exceeds the limit of %"
                    PRIu64 " bytes (100 MiB)", n, JP_ST_MAX_HEADER_BYTES);
    if (n == 0)
        return fail(ctx, JP_ERR_FORMAT, "header length is 0: there is no JSON header");
    f->header_bytes = n;
    f->data_bytes = after_len - n;

    /* A private, NUL-terminated copy: cJSON needs a terminator, and a byte
     * check before parsing catches what cJSON would let through. */
    header = malloc((size_t)n + 1);
    if (!header)
        return fail(ctx, JP_ERR_NOMEM, "cannot allocate %" PRIu64 " bytes for the header", n + 1);
    memcpy(header, f->map + LEN_FIELD_BYTES, (size_t)n);
    header[n] = '\0';

    const char *nul = memchr(header, '\0', (size_t)n);
    if (nul) {
        st = fail(ctx, JP_ERR_FORMAT, "header contains a NUL byte at header offset %td", nul - header);
        goto done;
    }
    size_t valid = utf8_valid_prefix((const unsigned char *)header, (size_t)n);
    if (valid != n) {
        st = fail(ctx, JP_ERR_FORMAT, "header is not valid UTF-8 (bad byte 0x%02x at header "
                  "offset %zu)", (unsigned char)header[valid], valid);
        goto done;
    }
    if (header[0] != '{') {
        st = fail(ctx, JP_ERR_FORMAT, "header does not start with '{' (byte 0x%02x): not a "
                  "safetensors JSON header", (unsigned char)header[0]);
        goto done;
    }
    /* cJSON turns "\u0000" into a NUL that silently cuts the string: refuse it.
     * Backslashes are legal only inside strings, and skipping the escaped
     * character keeps "\\u0000" (an escaped backslash) apart. */
    for (size_t i = 0; i + 1 < n; i++) {
        if (header[i] != '\\')
            continue;
        if (header[i + 1] == 'u' && i + 5 < n && strncmp(header + i + 2, "0000", 4) == 0) {
            st = fail(ctx, JP_ERR_FORMAT, "header contains an escaped NUL (\\u0000) at header "
                      "offset %zu: names and metadata cannot contain NUL", i);
            goto done;
        }
        i++;
    }

    const char *parse_end = NULL;
    root = cJSON_ParseWithOpts(header, &parse_end, 0);
    if (!root) {
        ptrdiff_t at = (parse_end && parse_end >= header && parse_end <= header + n)
                       ? parse_end - header : 0;
        st = fail(ctx, JP_ERR_FORMAT, "header is not valid JSON (error near header offset %td)", at);
        goto done;
    }
    for (const char *p = parse_end; p < header + n; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            st = fail(ctx, JP_ERR_FORMAT, "header is not valid JSON: data after the object at "
                      "header offset %td (only space padding may follow it)", p - header);
            goto done;
        }
    }
    if (!cJSON_IsObject(root)) {
        st = fail(ctx, JP_ERR_FORMAT, "header is %s, expected a JSON object", json_type_name(root));
        goto done;
    }

    /* Pass 1: count tensors and metadata, size the string block. */
    const cJSON *meta = NULL;
    size_t n_tensors = 0, n_meta = 0, string_bytes = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if (meta) {
                st = fail(ctx, JP_ERR_FORMAT, "\"__metadata__\" appears twice in the header");
                goto done;
            }
            meta = c;
            if (!cJSON_IsObject(meta)) {
                st = fail(ctx, JP_ERR_FORMAT, "\"__metadata__\" is %s, expected an object of "
                          "strings", json_type_name(meta));
                goto done;
            }
            for (const cJSON *m = meta->child; m; m = m->next) {
                if (!cJSON_IsString(m)) {
                    char shown[NAME_SHOWN_BYTES];
                    st = fail(ctx, JP_ERR_FORMAT, "__metadata__ \"%s\" is %s, expected a string "
                              "(metadata values must be strings)",
                              printable(m->string, shown, sizeof shown), json_type_name(m));
                    goto done;
                }
                n_meta++;
                string_bytes += strlen(m->string) + 1 + strlen(m->valuestring) + 1;
            }
        } else {
            if (c->string[0] == '\0') {
                st = fail(ctx, JP_ERR_FORMAT, "a tensor has an empty name");
                goto done;
            }
            n_tensors++;
            string_bytes += strlen(c->string) + 1;
        }
    }

    f->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *f->tensors);
    f->by_name = calloc(n_tensors ? n_tensors : 1, sizeof *f->by_name);
    by_offset = calloc(n_tensors ? n_tensors : 1, sizeof *by_offset);
    f->metadata = calloc(n_meta ? n_meta : 1, sizeof *f->metadata);
    kv_sorted = calloc(n_meta ? n_meta : 1, sizeof *kv_sorted);
    f->strings = malloc(string_bytes ? string_bytes : 1);
    if (!f->tensors || !f->by_name || !by_offset || !f->metadata || !kv_sorted || !f->strings) {
        st = fail(ctx, JP_ERR_NOMEM, "cannot allocate the index of %zu tensors", n_tensors);
        goto done;
    }
    char *cursor = f->strings;

    /* Metadata: copy, then reject duplicate keys. */
    if (meta) {
        for (const cJSON *m = meta->child; m; m = m->next) {
            jp_st_kv *kv = &f->metadata[f->n_metadata];
            kv->key = pool_copy(&cursor, m->string);
            kv->value = pool_copy(&cursor, m->valuestring);
            kv_sorted[f->n_metadata++] = kv;
        }
        qsort(kv_sorted, f->n_metadata, sizeof *kv_sorted, cmp_kv_key);
        for (size_t i = 1; i < f->n_metadata; i++) {
            if (strcmp(kv_sorted[i - 1]->key, kv_sorted[i]->key) == 0) {
                char shown[NAME_SHOWN_BYTES];
                st = fail(ctx, JP_ERR_FORMAT, "__metadata__ key \"%s\" appears twice (duplicate key)",
                          printable(kv_sorted[i]->key, shown, sizeof shown));
                goto done;
            }
        }
    }

    /* Pass 2: tensors, in header order. */
    for (const cJSON *c = root->child; c; c = c->next) {
        if (c == meta)
            continue;
        jp_st_tensor *t = &f->tensors[f->n_tensors];
        t->name = pool_copy(&cursor, c->string);
        st = parse_tensor(ctx, f, c, t);
        if (st != JP_OK)
            goto done;
        f->by_name[f->n_tensors] = t;
        by_offset[f->n_tensors] = t;
        f->n_tensors++;
    }

    /* Unique names (byte for byte). */
    qsort(f->by_name, f->n_tensors, sizeof *f->by_name, cmp_tensor_name);
    for (size_t i = 1; i < f->n_tensors; i++) {
        if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0) {
            st = tfail(ctx, JP_ERR_FORMAT, f->by_name[i]->name,
                       "appears twice in the header (duplicate tensor name)");
            goto done;
        }
    }

    /* The tensors tile the data buffer: no overlap, no hole, nothing after. */
    qsort(by_offset, f->n_tensors, sizeof *by_offset, cmp_tensor_offset);
    uint64_t pos = 0;
    const jp_st_tensor *prev = NULL;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const jp_st_tensor *t = by_offset[i];
        uint64_t t_end = t->offset_bytes + t->size_bytes;
        if (t->offset_bytes < pos) {
            char shown[NAME_SHOWN_BYTES];
            st = tfail(ctx, JP_ERR_FORMAT, t->name, "data_offsets [%" PRIu64 ", %" PRIu64 "] "
                       "overlap those of tensor \"%s\" [%" PRIu64 ", %" PRIu64 "]",
                       t->offset_bytes, t_end, printable(prev->name, shown, sizeof shown),
                       prev->offset_bytes, prev->offset_bytes + prev->size_bytes);
            goto done;
        }
        if (t->offset_bytes > pos) {
            st = fail(ctx, JP_ERR_FORMAT, "data buffer bytes [%" PRIu64 ", %" PRIu64 ") belong "
                      "to no tensor (the format forbids unreferenced bytes)", pos, t->offset_bytes);
            goto done;
        }
        if (t->size_bytes > 0) {
            pos = t_end;
            prev = t;
        }
    }
    if (pos != f->data_bytes) {
        st = fail(ctx, JP_ERR_FORMAT, "data buffer has %" PRIu64 " bytes after the last tensor "
                  "(ends at %" PRIu64 " of %" PRIu64 "): unreferenced trailing data",
                  f->data_bytes - pos, pos, f->data_bytes);
        goto done;
    }

done:
    cJSON_Delete(root);
    free(header);
    free(by_offset);
    free(kv_sorted);
    return st;
}

jp_status jp_st_open(const char *path, jp_st_file *f, jp_error *err)
{
    parse_ctx ctx;
    memset(f, 0, sizeof *f);
    ctx.err = err;
    printable(path ? path : "(null)", ctx.path, sizeof ctx.path);
    if (!path)
        return fail(&ctx, JP_ERR_ARG, "no path given");

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return fail(&ctx, e == ENOENT ? JP_ERR_MISSING : JP_ERR_IO, "cannot open: %s", strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return fail(&ctx, JP_ERR_IO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return fail(&ctx, JP_ERR_IO, "not a regular file");
    }
    if (sb.st_size < (off_t)LEN_FIELD_BYTES) {
        close(fd);
        return fail(&ctx, JP_ERR_FORMAT, "file is %jd bytes, shorter than the 8-byte header "
                    "length field", (intmax_t)sb.st_size);
    }
    if ((uintmax_t)sb.st_size > (uintmax_t)SIZE_MAX) {
        close(fd);
        return fail(&ctx, JP_ERR_UNSUPPORTED, "file of %jd bytes is too large to map",
                    (intmax_t)sb.st_size);
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd); /* the mapping keeps the file */
    if (map == MAP_FAILED)
        return fail(&ctx, JP_ERR_IO, "cannot mmap %zu bytes: %s", size, strerror(map_errno));
    f->map = map;
    f->map_bytes = size;

    jp_status st = parse_file(&ctx, f);
    if (st == JP_OK) {
        f->path = malloc(strlen(path) + 1);
        if (!f->path)
            st = fail(&ctx, JP_ERR_NOMEM, "cannot copy the path");
        else
            memcpy(f->path, path, strlen(path) + 1);
    }
    if (st != JP_OK)
        jp_st_close(f);
    return st;
}

void jp_st_close(jp_st_file *f)
{
    if (!f)
        return;
    if (f->map)
        munmap((void *)f->map, f->map_bytes);
    free(f->path);
    free(f->tensors);
    free(f->by_name);
    free(f->metadata);
    free(f->strings);
    memset(f, 0, sizeof *f);
}

static int cmp_name_key(const void *key, const void *elem)
{
    const jp_st_tensor *t = *(const jp_st_tensor *const *)elem;
    return strcmp((const char *)key, t->name);
}

const jp_st_tensor *jp_st_find(const jp_st_file *f, const char *name)
{
    if (!f || !name || f->n_tensors == 0)
        return NULL;
    const jp_st_tensor *const *hit =
        bsearch(name, f->by_name, f->n_tensors, sizeof *f->by_name, cmp_name_key);
    return hit ? *hit : NULL;
}

size_t jp_st_count(const jp_st_file *f) { return f ? f->n_tensors : 0; }

const jp_st_tensor *jp_st_at(const jp_st_file *f, size_t i)
{
    return (f && i < f->n_tensors) ? &f->tensors[i] : NULL;
}

const char *jp_st_metadata(const jp_st_file *f, const char *key)
{
    if (!f || !key)
        return NULL;
    for (size_t i = 0; i < f->n_metadata; i++)
        if (strcmp(f->metadata[i].key, key) == 0)
            return f->metadata[i].value;
    return NULL;
}

size_t jp_st_metadata_count(const jp_st_file *f) { return f ? f->n_metadata : 0; }

const jp_st_kv *jp_st_metadata_at(const jp_st_file *f, size_t i)
{
    return (f && i < f->n_metadata) ? &f->metadata[i] : NULL;
}

jp_status jp_st_require(const jp_st_file *f, const char *name, int rank,
                        const int64_t *dims, const jp_st_tensor **out, jp_error *err)
{
    parse_ctx ctx;
    ctx.err = err;
    printable(f && f->path ? f->path : "(no file)", ctx.path, sizeof ctx.path);
    if (out)
        *out = NULL;
    const jp_st_tensor *t = jp_st_find(f, name);
    if (!t)
        return tfail(&ctx, JP_ERR_MISSING, name ? name : "(null)", "missing from the weights file");
    bool same = t->rank == rank;
    for (int i = 0; same && i < rank; i++)
        same = t->dims[i] == dims[i];
    if (!same) {
        char found[128], expected[128];
        return tfail(&ctx, JP_ERR_SHAPE, name, "shape %s, expected %s",
                     jp_shape_str(t->rank, t->dims, found, sizeof found),
                     rank >= 0 && rank <= JP_MAX_RANK
                         ? jp_shape_str(rank, dims, expected, sizeof expected) : "(invalid rank)");
    }
    if (out)
        *out = t;
    return JP_OK;
}

/* ---- writer ------------------------------------------------------------ */

void jp_st_writer_init(jp_st_writer *w)
{
    memset(w, 0, sizeof *w);
}

void jp_st_writer_free(jp_st_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].owned);
    }
    for (size_t i = 0; i < w->n_metadata; i++) {
        free(w->metadata[i].key);
        free(w->metadata[i].value);
    }
    free(w->tensors);
    free(w->metadata);
    memset(w, 0, sizeof *w);
}

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static jp_status writer_add(jp_st_writer *w, const char *name, int rank, const int64_t *dims,
                            const float *data, bool copy, jp_error *err)
{
    char shown[NAME_SHOWN_BYTES];
    if (!name || name[0] == '\0')
        return jp_error_set(err, JP_ERR_ARG, "safetensors writer: empty tensor name");
    printable(name, shown, sizeof shown);
    if (!is_utf8(name))
        return jp_error_set(err, JP_ERR_ARG, "safetensors writer: tensor name \"%s\" is not "
                            "valid UTF-8", shown);
    if (strcmp(name, "__metadata__") == 0)
        return jp_error_set(err, JP_ERR_ARG, "safetensors writer: \"__metadata__\" is reserved, "
                            "not a tensor name");
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return jp_error_set(err, JP_ERR_ARG, "safetensors writer: tensor \"%s\" added twice",
                                shown);
    if (rank < 0 || rank > JP_ST_MAX_RANK)
        return jp_error_set(err, JP_ERR_ARG, "safetensors writer: tensor \"%s\": rank %d is "
                            "outside 0..%d", shown, rank, JP_ST_MAX_RANK);
    if (rank > 0 && !dims)
        return jp_error_set(err, JP_ERR_ARG, "safetensors writer: tensor \"%s\": no dims",
                            shown);
    uint64_t nonzero_product = 1;
    bool has_zero = false;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0)
            return jp_error_set(err, JP_ERR_ARG, "safetensors writer: tensor \"%s\": dims[%d] = "
                                "%" PRId64 " is negative", shown, i, dims[i]);
        uint64_t d = (uint64_t)dims[i];
        if (d == 0) {
            has_zero = true;
            continue;
        }
        if (d > (uint64_t)1 << 53 || nonzero_product > (uint64_t)INT64_MAX / 4 / d)
            return jp_error_set(err, JP_ERR_ARG, "safetensors writer: tensor \"%s\": shape "
                                "overflows", shown);
        nonzero_product *= d;
    }
    uint64_t size_bytes = has_zero ? 0 : nonzero_product * sizeof(float);
    if (size_bytes > 0 && !data)
        return jp_error_set(err, JP_ERR_ARG, "safetensors writer: tensor \"%s\": no data",
                            shown);
    if (w->data_bytes > (uint64_t)INT64_MAX - size_bytes)
        return jp_error_set(err, JP_ERR_ARG, "safetensors writer: tensor \"%s\": the file "
                            "would exceed 2^63 bytes", shown);

    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        jp_st_wtensor *grown = realloc(w->tensors, cap * sizeof *grown);
        if (!grown)
            return jp_error_set(err, JP_ERR_NOMEM, "safetensors writer: cannot grow the tensor "
                                "list to %zu", cap);
        w->tensors = grown;
        w->cap_tensors = cap;
    }
    jp_st_wtensor t;
    memset(&t, 0, sizeof t);
    t.name = dup_string(name);
    if (!t.name)
        return jp_error_set(err, JP_ERR_NOMEM, "safetensors writer: cannot copy name \"%s\"",
                            shown);
    t.rank = rank;
    for (int i = 0; i < rank; i++)
        t.dims[i] = dims[i];
    t.size_bytes = size_bytes;
    t.data = size_bytes ? data : NULL;
    if (copy && size_bytes > 0) {
        if (size_bytes > SIZE_MAX || !(t.owned = malloc((size_t)size_bytes))) {
            free(t.name);
            return jp_error_set(err, JP_ERR_NOMEM, "safetensors writer: cannot copy the %"
                                PRIu64 " bytes of tensor \"%s\"", size_bytes, shown);
        }
        memcpy(t.owned, data, (size_t)size_bytes);
        t.data = t.owned;
    }
    w->tensors[w->n_tensors++] = t;
    w->data_bytes += size_bytes;
    return JP_OK;
}

jp_status jp_st_writer_add(jp_st_writer *w, const char *name, int rank,
                           const int64_t *dims, const float *data, jp_error *err)
{
    return writer_add(w, name, rank, dims, data, false, err);
}

jp_status jp_st_writer_add_copy(jp_st_writer *w, const char *name, int rank,
                                const int64_t *dims, const float *data, jp_error *err)
{
    return writer_add(w, name, rank, dims, data, true, err);
}

jp_status jp_st_writer_set_metadata(jp_st_writer *w, const char *key, const char *value,
                                    jp_error *err)
{
    if (!key || !value)
        return jp_error_set(err, JP_ERR_ARG, "safetensors writer: metadata key or value is NULL");
    char shown[NAME_SHOWN_BYTES];
    printable(key, shown, sizeof shown);
    if (!is_utf8(key) || !is_utf8(value))
        return jp_error_set(err, JP_ERR_ARG, "safetensors writer: metadata \"%s\": key or value "
                            "is not valid UTF-8", shown);
    char *value_copy = dup_string(value);
    if (!value_copy)
        return jp_error_set(err, JP_ERR_NOMEM, "safetensors writer: cannot copy metadata \"%s\"",
                            shown);
    for (size_t i = 0; i < w->n_metadata; i++) {
        if (strcmp(w->metadata[i].key, key) == 0) {
            free(w->metadata[i].value);
            w->metadata[i].value = value_copy;
            return JP_OK;
        }
    }
    if (w->n_metadata == w->cap_metadata) {
        size_t cap = w->cap_metadata ? 2 * w->cap_metadata : 8;
        jp_st_wkv *grown = realloc(w->metadata, cap * sizeof *grown);
        if (!grown) {
            free(value_copy);
            return jp_error_set(err, JP_ERR_NOMEM, "safetensors writer: cannot grow metadata");
        }
        w->metadata = grown;
        w->cap_metadata = cap;
    }
    char *key_copy = dup_string(key);
    if (!key_copy) {
        free(value_copy);
        return jp_error_set(err, JP_ERR_NOMEM, "safetensors writer: cannot copy metadata \"%s\"",
                            shown);
    }
    w->metadata[w->n_metadata].key = key_copy;
    w->metadata[w->n_metadata].value = value_copy;
    w->n_metadata++;
    return JP_OK;
}

/* A growable string; ok turns false for good on the first failed allocation. */
typedef struct strbuf {
    char *p;
    size_t n, cap;
    bool ok;
} strbuf;

static void sb_append(strbuf *b, const char *s, size_t len)
{
    if (!b->ok)
        return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len + 1)
            cap *= 2;
        char *grown = realloc(b->p, cap);
        if (!grown) {
            b->ok = false;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

static void sb_puts(strbuf *b, const char *s) { sb_append(b, s, strlen(s)); }

static void sb_u64(strbuf *b, uint64_t v)
{
    char num[32];
    int len = snprintf(num, sizeof num, "%" PRIu64, v);
    sb_append(b, num, (size_t)len);
}

/* A JSON string literal: quotes, backslashes and control bytes escaped;
 * UTF-8 (already validated) passes through. */
static void sb_json_string(strbuf *b, const char *s)
{
    sb_append(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_append(b, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_append(b, esc, 6);
        } else {
            sb_append(b, p, 1);
        }
    }
    sb_append(b, "\"", 1);
}

/* The header JSON, padded with spaces so that 8 + length is a multiple of 8. */
static bool build_header(const jp_st_writer *w, strbuf *b)
{
    sb_puts(b, "{");
    bool first = true;
    if (w->n_metadata > 0) {
        sb_puts(b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->n_metadata; i++) {
            if (i)
                sb_puts(b, ",");
            sb_json_string(b, w->metadata[i].key);
            sb_puts(b, ":");
            sb_json_string(b, w->metadata[i].value);
        }
        sb_puts(b, "}");
        first = false;
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const jp_st_wtensor *t = &w->tensors[i];
        if (!first)
            sb_puts(b, ",");
        first = false;
        sb_json_string(b, t->name);
        sb_puts(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->rank; d++) {
            if (d)
                sb_puts(b, ",");
            sb_u64(b, (uint64_t)t->dims[d]);
        }
        sb_puts(b, "],\"data_offsets\":[");
        sb_u64(b, offset);
        sb_puts(b, ",");
        sb_u64(b, offset + t->size_bytes);
        sb_puts(b, "]}");
        offset += t->size_bytes;
    }
    sb_puts(b, "}");
    while (b->ok && (LEN_FIELD_BYTES + b->n) % DATA_ALIGN_BYTES != 0)
        sb_puts(b, " ");
    return b->ok;
}

/* fwrite that reports errno (or EIO for a short write without one). */
static int write_all(FILE *fp, const void *p, size_t n)
{
    errno = 0;
    if (n > 0 && fwrite(p, 1, n, fp) != n)
        return errno ? errno : EIO;
    return 0;
}

/* fsync of the directory holding path, so that the rename itself is durable.
 * dir (strlen(path) + 2 bytes) receives the directory's name.  Returns 0 or
 * an errno; EINVAL (a filesystem without directory fsync) counts as 0. */
static int fsync_parent_dir(const char *path, char *dir)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == path)
        strcpy(dir, "/");
    else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int e = 0;
    if (fsync(fd) != 0 && errno != EINVAL)
        e = errno;
    close(fd);
    return e;
}

jp_status jp_st_writer_write(const jp_st_writer *w, const char *path, jp_error *err)
{
    if (!path || path[0] == '\0')
        return jp_error_set(err, JP_ERR_ARG, "safetensors writer: no output path");
    char shown[PATH_SHOWN_BYTES];
    printable(path, shown, sizeof shown);

    strbuf header = {NULL, 0, 0, true};
    if (!build_header(w, &header)) {
        free(header.p);
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate the header of %zu tensors",
                            shown, w->n_tensors);
    }

    size_t tmp_bytes = strlen(path) + 32;
    char *tmp = malloc(tmp_bytes);
    if (!tmp) {
        free(header.p);
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate the temporary name", shown);
    }
    snprintf(tmp, tmp_bytes, "%s.tmp.%ld", path, (long)getpid());

    jp_status st = JP_OK;
    const char *step = NULL;
    int e = 0;
    FILE *fp = NULL;
    bool created = false;

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        e = errno;
        step = "cannot create the temporary file";
        goto fail;
    }
    created = true;
    fp = fdopen(fd, "wb");
    if (!fp) {
        e = errno;
        close(fd);
        step = "cannot open the temporary file as a stream";
        goto fail;
    }

    unsigned char len_field[LEN_FIELD_BYTES];
    for (unsigned i = 0; i < LEN_FIELD_BYTES; i++)
        len_field[i] = (unsigned char)((uint64_t)header.n >> (8 * i));
    step = "cannot write the temporary file";
    if ((e = write_all(fp, len_field, sizeof len_field)) != 0 ||
        (e = write_all(fp, header.p, header.n)) != 0)
        goto fail;
    for (size_t i = 0; i < w->n_tensors; i++)
        if ((e = write_all(fp, w->tensors[i].data, (size_t)w->tensors[i].size_bytes)) != 0)
            goto fail;
    errno = 0;
    if (fflush(fp) != 0) {
        e = errno ? errno : EIO;
        goto fail;
    }
    if (fsync(fileno(fp)) != 0) {
        e = errno;
        step = "cannot fsync the temporary file";
        goto fail;
    }
    errno = 0;
    int close_rc = fclose(fp);
    fp = NULL;
    if (close_rc != 0) {
        e = errno ? errno : EIO;
        step = "cannot close the temporary file";
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        step = "cannot rename the temporary file over it";
        goto fail;
    }
    created = false; /* it is path now */

    char *dir = tmp; /* reused: strlen(path) + 32 bytes is enough */
    e = fsync_parent_dir(path, dir);
    if (e != 0) {
        char dir_shown[PATH_SHOWN_BYTES];
        st = jp_error_set(err, JP_ERR_IO, "%s: written, but fsync of its directory %s failed: %s",
                          shown, printable(dir, dir_shown, sizeof dir_shown), strerror(e));
    }
    goto done;

fail:
    if (fp)
        fclose(fp);
    if (created)
        unlink(tmp);
    {
        char tmp_shown[PATH_SHOWN_BYTES];
        st = jp_error_set(err, JP_ERR_IO, "%s: %s (%s): %s", shown, step,
                          printable(tmp, tmp_shown, sizeof tmp_shown), strerror(e));
    }
done:
    free(tmp);
    free(header.p);
    return st;
}
