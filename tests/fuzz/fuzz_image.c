/*
 * fuzz_image.c: engine/jp_image.c on any bytes: JPEG through libjpeg, PNG
 * and every other format stb_image reads (BMP, GIF, PSD, TGA, HDR, PNM,
 * PIC), each decoded as PIL would (at most 256 Kpixels in this build: the
 * decoders' own limit, JP_IMAGE_MAX_PIXELS, set by the Makefile), then
 * resized, center-cropped and normalised as torchvision does: Resize 16 +
 * CenterCrop 14 and a Resize 8 + CenterCrop 5 on every input, the full-size
 * Resize 256 + CenterCrop 224 on one input in 16 (chosen by a hash of the
 * bytes, so the choice is the same each time an input runs).  The geometry
 * code is the same at any size; upscaling a small image to 256 x 256 under
 * the sanitizers was most of an execution's time.
 */
#include "fuzz_common.h"

#include "jp_image.h"

static uint32_t fnv1a(const uint8_t *data, size_t size)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file(data, size, "img");
    jp_image_rgb8 img = {0};
    jp_error err;
    if (jp_image_decode(path, &img, &err) != JP_OK)
        return 0;
    static uint8_t crop[5 * 5 * 3];
    static float input[3 * 224 * 224];
    jp_image_resize_crop(&img, 8, 5, crop, &err);
    jp_preprocess pp = {.resize = 16, .crop = 14, .mean = {0.485f, 0.456f, 0.406f},
                        .std = {0.229f, 0.224f, 0.225f}};
    jp_image_preprocess(&img, &pp, input, &err);
    if ((fnv1a(data, size) & 15) == 0) {
        pp.resize = 256;
        pp.crop = 224;
        jp_image_preprocess(&img, &pp, input, &err);
    }
    jp_image_rgb8_free(&img);
    return 0;
}
