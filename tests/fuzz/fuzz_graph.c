/*
 * fuzz_graph.c: engine/jp_graph.c's model-description reader on any bytes.
 * Loads the input as weights/<model>.json; when it loads, infers the shapes
 * at two sizes: the smallest input it declares and 224x224, and reads every
 * value's shape back.  The committed seeds are cut-down model descriptions
 * (a few ops each): a whole EfficientNet is 100+ KiB, which makes every
 * execution slow.
 */
#include "fuzz_common.h"

#include "jp_graph.h"

static void shapes_at(jp_graph *g, int h, int w)
{
    jp_error err;
    if (jp_graph_infer_shapes(g, 1, h, w, &err) != JP_OK)
        return;
    int rank;
    int64_t dims[JP_MAX_RANK];
    for (int v = -1; v < g->n_ops; v++)
        jp_graph_value_shape(g, v, &rank, dims);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file(data, size, "json");
    jp_graph g;
    jp_error err;
    memset(&g, 0, sizeof g);
    if (jp_graph_load(path, &g, &err) != JP_OK)
        return 0;
    int hw = g.min_input_hw > 0 && g.min_input_hw <= 512 ? g.min_input_hw : 32;
    shapes_at(&g, hw, hw);
    shapes_at(&g, 224, 224);
    jp_graph_free(&g);
    return 0;
}
