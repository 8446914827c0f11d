/* jp_tensor.c: shape helpers of jp_tensor.h. */
#include "jp_tensor.h"

#include <inttypes.h>
#include <stdio.h>

int64_t jp_tensor_numel(const jp_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->dims[i];
    return n;
}

char *jp_shape_str(int rank, const int64_t *dims, char *buf, size_t buf_bytes)
{
    size_t used = 0;
    if (buf_bytes == 0)
        return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, buf_bytes, "[");
    for (int i = 0; i < rank && used < buf_bytes; i++)
        used += (size_t)snprintf(buf + used, buf_bytes - used, "%s%" PRId64, i ? ", " : "", dims[i]);
    if (used < buf_bytes)
        snprintf(buf + used, buf_bytes - used, "]");
    return buf;
}

const char *jp_device_name(jp_device device)
{
    switch (device) {
    case JP_DEVICE_CPU: return "cpu";
    case JP_DEVICE_CUDA: return "cuda";
    default: return "unknown";
    }
}
