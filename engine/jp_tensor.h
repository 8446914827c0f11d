/*
 * jp_tensor.h: a view of float32 data with a shape and the device it lives on.
 *
 * A tensor never owns its memory: the weight mapping, the activation arena or
 * the device arena does.  Activations are NCHW, row-major, contiguous; a rank-2
 * tensor ([n, features]) is what flatten and linear produce.
 */
#ifndef JP_TENSOR_H
#define JP_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define JP_MAX_RANK 4

typedef enum jp_device {
    JP_DEVICE_CPU = 0,
    JP_DEVICE_CUDA,
    JP_DEVICE_COUNT
} jp_device;

typedef struct jp_tensor {
    int rank;               /* 1..4                                  */
    int64_t dims[JP_MAX_RANK]; /* dims[0..rank-1], outermost first    */
    jp_device device;       /* where data points                     */
    float *data;            /* not owned                             */
} jp_tensor;

/* Number of elements (product of dims); 1 for rank 0. */
int64_t jp_tensor_numel(const jp_tensor *t);

/* Writes "[1, 64, 56, 56]" into buf (always terminated); returns buf. */
char *jp_shape_str(int rank, const int64_t *dims, char *buf, size_t buf_bytes);

/* Device name: "cpu", "cuda". */
const char *jp_device_name(jp_device device);

#endif /* JP_TENSOR_H */
