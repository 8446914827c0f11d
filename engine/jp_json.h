/*
 * jp_json.h: strict accessors for the JSON of a model description, shared by
 * the graph reader (jp_graph.c) and the op descriptors' attribute parsers
 * (jp_ops.c).  Internal to engine/.
 *
 * Each accessor reads one field of an object and, on any mismatch (missing,
 * wrong JSON type, out of range), fills r->err with "<file>: <path>.<key>:
 * what was found, what was expected" and returns the error (or NULL for
 * jp_json_field).  `path` is the JSON path of obj ("ops[12].attrs").
 */
#ifndef JP_JSON_H
#define JP_JSON_H

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "jp_error.h"

typedef struct jp_json_reader jp_json_reader;
struct jp_json_reader {
    const char *file;        /* the model description's path, for messages */
    jp_error *err;
};

/* Fails unless every key of obj is in allowed (NULL-terminated) and no key
 * appears twice (cJSON keeps duplicates; its lookup sees only the first). */
jp_status jp_json_check_keys(jp_json_reader *r, const cJSON *obj, const char *path, const char *const *allowed);

/* obj[key] when present and of a type in type_mask (cJSON_Number, ...);
 * type_name says what was expected ("an integer"). */
const cJSON *jp_json_field(jp_json_reader *r, const cJSON *obj, const char *path, const char *key,
                           int type_mask, const char *type_name);

/* A string, strdup'ed into *out (the caller frees it). */
jp_status jp_json_get_string(jp_json_reader *r, const cJSON *obj, const char *path, const char *key, char **out);
/* An integer in [lo, hi]. */
jp_status jp_json_get_int(jp_json_reader *r, const cJSON *obj, const char *path, const char *key, int lo, int hi,
                          int *out);
/* A finite number. */
jp_status jp_json_get_float(jp_json_reader *r, const cJSON *obj, const char *path, const char *key, float *out);
jp_status jp_json_get_bool(jp_json_reader *r, const cJSON *obj, const char *path, const char *key, bool *out);
/* A list of exactly n integers, each in [lo, hi]. */
jp_status jp_json_get_ints(jp_json_reader *r, const cJSON *obj, const char *path, const char *key, int n, int lo,
                           int hi, int *out);
/* A shape: 1..JP_MAX_RANK positive integers. */
jp_status jp_json_get_shape(jp_json_reader *r, const cJSON *obj, const char *path, const char *key, int *rank,
                            int64_t *dims);

#endif /* JP_JSON_H */
