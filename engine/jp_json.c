/*
 * jp_json.c: the strict JSON accessors of the model-description reader (see
 * jp_json.h).
 */
#include "jp_json.h"
#include "jp_tensor.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Fails unless every key of obj is in allowed (NULL-terminated) and no key
 * appears twice. */
jp_status jp_json_check_keys(jp_json_reader *r, const cJSON *obj, const char *path, const char *const *allowed)
{
    for (const cJSON *a = obj->child; a; a = a->next) {
        bool known = false;
        for (const char *const *k = allowed; *k; k++)
            if (strcmp(*k, a->string) == 0)
                known = true;
        if (!known)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s: unknown field \"%s\"", r->file, path,
                                a->string);
        for (const cJSON *b = a->next; b; b = b->next)
            if (strcmp(a->string, b->string) == 0)
                return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s: duplicate field \"%s\"", r->file,
                                    path, a->string);
    }
    return JP_OK;
}

const cJSON *jp_json_field(jp_json_reader *r, const cJSON *obj, const char *path, const char *key, int type_mask,
                          const char *type_name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item) {
        jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s: missing field (expected %s)", r->file, path, key,
                     type_name);
        return NULL;
    }
    if (!(item->type & type_mask)) {
        jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s: expected %s", r->file, path, key, type_name);
        return NULL;
    }
    return item;
}

jp_status jp_json_get_string(jp_json_reader *r, const cJSON *obj, const char *path, const char *key, char **out)
{
    const cJSON *item = jp_json_field(r, obj, path, key, cJSON_String, "a string");
    if (!item)
        return r->err->status;
    *out = strdup(item->valuestring);
    if (!*out)
        return jp_error_set(r->err, JP_ERR_NOMEM, "%s: out of memory", r->file);
    return JP_OK;
}

/* An integer in [lo, hi]. */
jp_status jp_json_get_int(jp_json_reader *r, const cJSON *obj, const char *path, const char *key, int lo, int hi,
                         int *out)
{
    const cJSON *item = jp_json_field(r, obj, path, key, cJSON_Number, "an integer");
    if (!item)
        return r->err->status;
    double v = item->valuedouble;
    if (v != floor(v) || v < lo || v > hi)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s: %g is not an integer in [%d, %d]", r->file,
                            path, key, v, lo, hi);
    *out = (int)v;
    return JP_OK;
}

jp_status jp_json_get_float(jp_json_reader *r, const cJSON *obj, const char *path, const char *key, float *out)
{
    const cJSON *item = jp_json_field(r, obj, path, key, cJSON_Number, "a number");
    if (!item)
        return r->err->status;
    if (!isfinite(item->valuedouble))
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s: not a finite number", r->file, path, key);
    *out = (float)item->valuedouble;
    return JP_OK;
}

jp_status jp_json_get_bool(jp_json_reader *r, const cJSON *obj, const char *path, const char *key, bool *out)
{
    const cJSON *item = jp_json_field(r, obj, path, key, cJSON_True | cJSON_False, "true or false");
    if (!item)
        return r->err->status;
    *out = cJSON_IsTrue(item);
    return JP_OK;
}

/* A list of exactly n integers in [lo, hi]. */
jp_status jp_json_get_ints(jp_json_reader *r, const cJSON *obj, const char *path, const char *key, int n, int lo,
                          int hi, int *out)
{
    const cJSON *item = jp_json_field(r, obj, path, key, cJSON_Array, "a list of integers");
    if (!item)
        return r->err->status;
    if (cJSON_GetArraySize(item) != n)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s: expected %d integers, found %d", r->file,
                            path, key, n, cJSON_GetArraySize(item));
    int i = 0;
    for (const cJSON *e = item->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < lo ||
            e->valuedouble > hi)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s[%d]: expected an integer in [%d, %d]",
                                r->file, path, key, i, lo, hi);
        out[i] = (int)e->valuedouble;
    }
    return JP_OK;
}

/* A shape: 1..JP_MAX_RANK positive integers. */
jp_status jp_json_get_shape(jp_json_reader *r, const cJSON *obj, const char *path, const char *key, int *rank,
                           int64_t *dims)
{
    const cJSON *item = jp_json_field(r, obj, path, key, cJSON_Array, "a shape (list of integers)");
    if (!item)
        return r->err->status;
    int n = cJSON_GetArraySize(item);
    if (n < 1 || n > JP_MAX_RANK)
        return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s: rank %d, expected 1 to %d", r->file, path,
                            key, n, JP_MAX_RANK);
    int i = 0;
    for (const cJSON *e = item->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 1 ||
            e->valuedouble > (double)INT32_MAX)
            return jp_error_set(r->err, JP_ERR_FORMAT, "%s: %s.%s[%d]: expected a positive integer",
                                r->file, path, key, i);
        dims[i] = (int64_t)e->valuedouble;
    }
    *rank = n;
    return JP_OK;
}

