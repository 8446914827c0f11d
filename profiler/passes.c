/*
 * passes.c: the passes file of passes.h.
 */
#include "passes.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "fileio.h"

#define PASSES_FORMAT "jplprof-passes"
#define MAX_ITEMS 100000000 /* far above any real count; keeps products in size_t */

char *jp_passes_path(const char *out_dir, int mode, const char *device_dir, const char *network,
                     const char *stem)
{
    return jp_strprintf("%s/.jplprof/passes/Mode%d/%s/%s/%s.json", out_dir, mode, device_dir, network, stem);
}

static cJSON *numbers(const double *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

jp_status jp_passes_write(const char *path, const jp_passes *p, jp_error *err)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory");
    cJSON_AddStringToObject(root, "format", PASSES_FORMAT);
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "network", p->network);
    cJSON_AddStringToObject(root, "image", p->image);
    cJSON *units = cJSON_AddArrayToObject(root, "units");
    for (size_t u = 0; units && u < p->n_units; u++)
        cJSON_AddItemToArray(units, cJSON_CreateString(p->units[u]));
    cJSON *in_pass = cJSON_AddArrayToObject(root, "in_pass_s");
    for (size_t r = 0; in_pass && r < p->n_passes; r++)
        cJSON_AddItemToArray(in_pass, numbers(p->in_pass_s + r * p->n_units, p->n_units));
    cJSON_AddItemToObject(root, "hooked_pass_s", numbers(p->hooked_s, p->n_passes));
    cJSON_AddItemToObject(root, "end_to_end_s", numbers(p->end_to_end_s, p->n_passes));
    char *dir = jp_strprintf("%s", path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    jp_status st = !dir ? jp_error_set(err, JP_ERR_NOMEM, "out of memory")
                        : slash ? jp_mkdir_p(dir, err) : JP_OK;
    if (st == JP_OK)
        st = jp_json_write_atomic(path, root, false, err);
    free(dir);
    cJSON_Delete(root);
    return st;
}

/* n seconds (finite, >= 0) from a JSON array of exactly n numbers. */
static jp_status read_seconds(const char *path, const char *what, const cJSON *a, size_t n, double *out,
                              jp_error *err)
{
    if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != n)
        return jp_error_set(err, JP_ERR_FORMAT, "%s: %s: expected an array of %zu numbers", path, what, n);
    size_t i = 0;
    for (const cJSON *c = a->child; c; c = c->next, i++) {
        if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble) || c->valuedouble < 0)
            return jp_error_set(err, JP_ERR_FORMAT, "%s: %s[%zu]: expected seconds >= 0", path, what, i);
        out[i] = c->valuedouble;
    }
    return JP_OK;
}

jp_status jp_passes_load(const char *path, jp_passes *p, jp_error *err)
{
    memset(p, 0, sizeof *p);
    char *text = NULL;
    jp_status st = jp_file_read_all(path, &text, NULL, err);
    if (st)
        return st;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *net = cJSON_GetObjectItemCaseSensitive(root, "network");
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(root, "image");
    const cJSON *units = cJSON_GetObjectItemCaseSensitive(root, "units");
    const cJSON *in_pass = cJSON_GetObjectItemCaseSensitive(root, "in_pass_s");
    char dup[256];
    if (!cJSON_IsObject(root)) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: not a JSON object (truncated or edited?)", path);
    } else if (jp_json_find_duplicate_key(root, dup, sizeof dup)) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: %s: duplicate key", path, dup);
    } else if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, PASSES_FORMAT) != 0) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: format: expected \"%s\"", path, PASSES_FORMAT);
    } else if (!cJSON_IsNumber(ver) || ver->valuedouble != 1) {
        st = jp_error_set(err, JP_ERR_UNSUPPORTED, "%s: version: this jplprof reads version 1", path);
    } else if (!cJSON_IsString(net) || !cJSON_IsString(img)) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: network, image: expected strings", path);
    } else if (!cJSON_IsArray(units) || cJSON_GetArraySize(units) < 1 ||
               cJSON_GetArraySize(units) > MAX_ITEMS / 1000) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: units: expected a non-empty array of layer keys", path);
    } else if (!cJSON_IsArray(in_pass) || cJSON_GetArraySize(in_pass) < 1 ||
               cJSON_GetArraySize(in_pass) > MAX_ITEMS / 1000) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: in_pass_s: expected a non-empty array of passes", path);
    }
    if (st)
        goto done;
    p->n_units = (size_t)cJSON_GetArraySize(units);
    p->n_passes = (size_t)cJSON_GetArraySize(in_pass);
    p->network = strdup(net->valuestring);
    p->image = strdup(img->valuestring);
    p->units = calloc(p->n_units, sizeof *p->units);
    p->in_pass_s = calloc(p->n_units * p->n_passes, sizeof *p->in_pass_s);
    p->hooked_s = calloc(p->n_passes, sizeof *p->hooked_s);
    p->end_to_end_s = calloc(p->n_passes, sizeof *p->end_to_end_s);
    if (!p->network || !p->image || !p->units || !p->in_pass_s || !p->hooked_s || !p->end_to_end_s) {
        st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t u = 0;
    for (const cJSON *c = units->child; c; c = c->next, u++) {
        if (!cJSON_IsString(c) || !c->valuestring[0]) {
            st = jp_error_set(err, JP_ERR_FORMAT, "%s: units[%zu]: expected a layer key", path, u);
            goto done;
        }
        if (!(p->units[u] = strdup(c->valuestring))) {
            st = jp_error_set(err, JP_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    size_t r = 0;
    char what[64];
    for (const cJSON *c = in_pass->child; c && st == JP_OK; c = c->next, r++) {
        snprintf(what, sizeof what, "in_pass_s[%zu]", r);
        st = read_seconds(path, what, c, p->n_units, p->in_pass_s + r * p->n_units, err);
    }
    if (st == JP_OK)
        st = read_seconds(path, "hooked_pass_s", cJSON_GetObjectItemCaseSensitive(root, "hooked_pass_s"),
                          p->n_passes, p->hooked_s, err);
    if (st == JP_OK)
        st = read_seconds(path, "end_to_end_s", cJSON_GetObjectItemCaseSensitive(root, "end_to_end_s"),
                          p->n_passes, p->end_to_end_s, err);
done:
    cJSON_Delete(root);
    return st;
}

void jp_passes_free(jp_passes *p)
{
    for (size_t u = 0; p->units && u < p->n_units; u++)
        free(p->units[u]);
    free(p->units);
    free(p->network);
    free(p->image);
    free(p->in_pass_s);
    free(p->hooked_s);
    free(p->end_to_end_s);
    memset(p, 0, sizeof *p);
}
