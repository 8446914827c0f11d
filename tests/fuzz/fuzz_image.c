/*
 * fuzz_image.c: engine/jp_image.c on any bytes: JPEG through libjpeg, PNG
 * and every other format stb_image reads (BMP, GIF, PSD, TGA, HDR, PNM,
 * PIC), each decoded as PIL would, then resized and center-cropped as
 * torchvision does (Resize 256 + CenterCrop 224, and a small 8 -> 5 for a
 * second geometry) and normalised.  The resize-crop computes only the kept
 * pixels, so a decoded image of any size costs O(crop^2) after decoding.
 */
#include "fuzz_common.h"

#include "jp_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file(data, size, "img");
    jp_image_rgb8 img = {0};
    jp_error err;
    if (jp_image_decode(path, &img, &err) != JP_OK)
        return 0;
    static uint8_t crop[224 * 224 * 3];
    static float input[3 * 224 * 224];
    jp_image_resize_crop(&img, 256, 224, crop, &err);
    jp_image_resize_crop(&img, 8, 5, crop, &err);
    jp_preprocess pp = {.resize = 256, .crop = 224, .mean = {0.485f, 0.456f, 0.406f},
                        .std = {0.229f, 0.224f, 0.225f}};
    jp_image_preprocess(&img, &pp, input, &err);
    jp_image_rgb8_free(&img);
    return 0;
}
