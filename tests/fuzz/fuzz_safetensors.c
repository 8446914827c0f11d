/*
 * fuzz_safetensors.c: engine/jp_safetensors.c's reader on any bytes.
 * Opens the input as a safetensors file; when it opens, requires every
 * tensor with its own shape and with a wrong one, reads every float of
 * every tensor and every metadata entry.
 */
#include "fuzz_common.h"

#include "jp_safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file(data, size, "safetensors");
    jp_st_file f;
    jp_error err;
    if (jp_st_open(path, &f, &err) != JP_OK) {
        jp_st_close(&f);
        return 0;
    }
    volatile float sink = 0;
    for (size_t i = 0; i < jp_st_count(&f); i++) {
        const jp_st_tensor *t = jp_st_at(&f, i);
        const jp_st_tensor *got = NULL;
        if (jp_st_require(&f, t->name, t->rank, t->dims, &got, &err) != JP_OK || got != t)
            abort(); /* a tensor the file lists must be found with its own shape */
        int64_t wrong[JP_ST_MAX_RANK + 1] = {0};
        memcpy(wrong, t->dims, sizeof(int64_t) * (size_t)t->rank);
        wrong[0] += 1;
        jp_st_require(&f, t->name, t->rank > 0 ? t->rank : 1, wrong, &got, &err);
        if (jp_st_find(&f, t->name) != t)
            abort();
        for (size_t k = 0; k < (size_t)t->numel; k++)
            sink += t->data[k];
    }
    for (size_t i = 0; i < jp_st_metadata_count(&f); i++) {
        const jp_st_kv *kv = jp_st_metadata_at(&f, i);
        if (jp_st_metadata(&f, kv->key) == NULL)
            abort();
    }
    (void)sink;
    jp_st_close(&f);
    return 0;
}
