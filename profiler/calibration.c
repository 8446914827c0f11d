/*
 * calibration.c: the calibration file of calibration.h.
 */
#include "calibration.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

#define CAL_FORMAT "jplprof-calibration"

char *jp_calibration_path(const char *dataset_dir)
{
    return jp_strprintf("%s/%s", dataset_dir, JP_CALIBRATION_FILE);
}

static jp_status get_string(const char *path, const cJSON *o, const char *key, char **out, jp_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s: expected a non-empty string", path, key);
    if (!(*out = strdup(v->valuestring)))
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    return JP_OK;
}

jp_status jp_calibration_load(const char *path, jp_calibration *cal, jp_error *err)
{
    memset(cal, 0, sizeof *cal);
    if (!jp_path_exists(path))
        return jp_error_set(err, JP_ERR_MISSING, "%s: no calibration (run jplprof calibrate)", path);
    char *text = NULL;
    jp_status st = jp_file_read_all(path, &text, NULL, err);
    if (st)
        return st;
    cal->json = cJSON_Parse(text);
    free(text);
    if (!(cal->path = strdup(path)))
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    char dup[256];
    const cJSON *root = cal->json;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!cJSON_IsObject(root))
        return jp_error_set(err, JP_ERR_FORMAT, "%s: not a JSON object (truncated or edited? run jplprof calibrate "
                            "again)", path);
    if (jp_json_find_duplicate_key(root, dup, sizeof dup))
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s: duplicate key", path, dup);
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, CAL_FORMAT) != 0)
        return jp_error_set(err, JP_ERR_FORMAT, "%s: format: expected \"%s\"", path, CAL_FORMAT);
    if (!cJSON_IsNumber(ver) || ver->valuedouble != 1)
        return jp_error_set(err, JP_ERR_UNSUPPORTED, "%s: version: this jplprof reads version 1", path);
    if ((st = get_string(path, root, "board", &cal->board, err)) ||
        (st = get_string(path, root, "power_source", &cal->power_source, err)))
        return st;
    const cJSON *rails = cJSON_GetObjectItemCaseSensitive(root, "rails");
    if (!cJSON_IsObject(rails) || !rails->child)
        return jp_error_set(err, JP_ERR_FORMAT, "%s: rails: expected an object with at least one rail", path);
    size_t n = (size_t)cJSON_GetArraySize(rails);
    if (!(cal->rails = calloc(n, sizeof *cal->rails)))
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    for (const cJSON *r = rails->child; r; r = r->next) {
        const cJSON *tau = cJSON_GetObjectItemCaseSensitive(r, "tau_s");
        const cJSON *fits = cJSON_GetObjectItemCaseSensitive(r, "fits");
        if (!cJSON_IsObject(r) || !cJSON_IsNumber(tau) || !isfinite(tau->valuedouble) || tau->valuedouble < 0 ||
            !cJSON_IsBool(fits))
            return jp_error_set(err, JP_ERR_FORMAT,
                                "%s: rails.%s: expected {\"tau_s\": seconds >= 0, \"fits\": true|false, ...}", path,
                                r->string);
        jp_calibration_rail *cr = &cal->rails[cal->n_rails++];
        cr->tau_s = tau->valuedouble;
        cr->fits = cJSON_IsTrue(fits);
        if (!(cr->name = strdup(r->string)))
            return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    }
    return JP_OK;
}

void jp_calibration_free(jp_calibration *cal)
{
    for (size_t i = 0; i < cal->n_rails; i++)
        free(cal->rails[i].name);
    free(cal->rails);
    free(cal->path);
    free(cal->board);
    free(cal->power_source);
    cJSON_Delete(cal->json);
    memset(cal, 0, sizeof *cal);
}

const jp_calibration_rail *jp_calibration_rail_of(const jp_calibration *cal, const char *name)
{
    for (size_t i = 0; cal && i < cal->n_rails; i++)
        if (strcmp(cal->rails[i].name, name) == 0)
            return &cal->rails[i];
    return NULL;
}
