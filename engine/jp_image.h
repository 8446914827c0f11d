/*
 * jp_image.h: image input, preprocessed exactly as the seed tool's torchvision
 * transform does it.
 *
 * The seed ran, on every image,
 *     Image.open(path).convert('RGB')
 *     transforms.Resize(resize)           PIL BILINEAR, antialiased
 *     transforms.CenterCrop(crop)
 *     transforms.ToTensor()               uint8 / 255
 *     transforms.Normalize(mean, std)
 * and jp_image_load reproduces it: JPEGs (files that start FF D8 FF, as PIL
 * tells them, whatever their name) decoded with libjpeg-turbo, the library
 * PIL links, with PIL's settings (ISLOW IDCT, fancy upsampling, CMYK read
 * inverted as Adobe writes it); every other file with stb_image (PNG, BMP,
 * GIF, TGA, PSD, HDR, PIC, PNM); then resampled with a port of Pillow's
 * ImagingResample (same coefficients, same 22-bit fixed point, same 8-bit
 * intermediate between the horizontal and the vertical pass, same rounding
 * and clipping).  PNGs and JPEGs (grey, YCbCr at any subsampling,
 * progressive, CMYK, YCCK) give the very floats torchvision gives
 * (tests/test_image.py), given the same libjpeg-turbo as PIL's.
 *
 * PIL's quirks are kept: a 16-bit greyscale PNG is clipped to 0..255, not
 * scaled (other 16-bit PNGs keep their high byte, in both); EXIF orientation
 * is ignored; a JPEG of other than 1, 3 or 4 components is refused.  A file
 * cut short anywhere is refused, where PIL accepts a PNG cut after its pixel
 * data and a JPEG whose scan stops early at an end-of-image marker (what PIL
 * itself appends to cut files with LOAD_TRUNCATED_IMAGES).
 *
 * Limits: an image of more than JP_IMAGE_MAX_PIXELS pixels (the size at which
 * PIL itself raises DecompressionBombError) is refused, as is a resize whose
 * result would exceed it.
 */
#ifndef JP_IMAGE_H
#define JP_IMAGE_H

#include <stdint.h>

#include "jp_error.h"
#include "jp_graph.h" /* jp_preprocess */

/* 2 * PIL's Image.MAX_IMAGE_PIXELS (1024 * 1024 * 1024 / 4 / 3).  The fuzz
 * build (Makefile) sets a smaller one, so that an execution decodes at most
 * 256 Kpixels: the same checks, at a size that keeps executions fast. */
#ifndef JP_IMAGE_MAX_PIXELS
#define JP_IMAGE_MAX_PIXELS 178956970LL
#endif

/* An 8-bit RGB image in memory. */
typedef struct jp_image_rgb8 {
    int w, h;
    uint8_t *data; /* (h, w, 3) row-major, RGB interleaved; owned, malloc */
} jp_image_rgb8;

/* Decodes path into *img as PIL's Image.open(path).convert('RGB') would (grey
 * expanded, alpha dropped, palette looked up).  On success the caller owns
 * img->data and frees it with jp_image_rgb8_free; on failure *img is empty and
 * err holds one line naming the file: JP_ERR_MISSING (no such file), JP_ERR_IO
 * (unreadable, not a regular file), JP_ERR_FORMAT (empty, not an image,
 * corrupt, truncated; with libjpeg's or stb_image's reason), JP_ERR_NOMEM,
 * JP_ERR_UNSUPPORTED (too many pixels, a JPEG's number of components).
 * Prints nothing, never exits: libjpeg's errors come back through longjmp. */
jp_status jp_image_decode(const char *path, jp_image_rgb8 *img, jp_error *err);

/* Frees img->data and empties *img; safe on an empty or zeroed image. */
void jp_image_rgb8_free(jp_image_rgb8 *img);

/* torchvision's Resize(resize) size rule for a w x h image: the shorter side
 * becomes resize, the longer int(resize * long / short).  Fails with
 * JP_ERR_UNSUPPORTED when the result would exceed JP_IMAGE_MAX_PIXELS, with
 * JP_ERR_ARG when a size is not positive. */
jp_status jp_image_resized_size(int w, int h, int resize, int *out_w, int *out_h,
                                jp_error *err);

/* Resize(resize) then CenterCrop(crop), on 8-bit RGB, bit-exact with
 * torchvision on PIL images (Pillow's ImagingResample, BILINEAR).  Only the
 * pixels the crop keeps are computed, so memory stays O(crop * crop) whatever
 * the input.  A crop larger than the resized image is zero-padded as
 * torchvision pads it.  out: (crop, crop, 3) bytes, caller-owned. */
jp_status jp_image_resize_crop(const jp_image_rgb8 *img, int resize, int crop, uint8_t *out,
                               jp_error *err);

/* jp_image_resize_crop, then ToTensor and Normalize: out[c][y][x] =
 * (v / 255.0f - pp->mean[c]) / pp->std[c] in float32, as torch computes it.
 * out: [3, pp->crop, pp->crop] floats, caller-owned.  Fails with JP_ERR_ARG on
 * a bad pp (resize or crop not in 1..JP_IMAGE_MAX_SIDE, std not positive). */
jp_status jp_image_preprocess(const jp_image_rgb8 *img, const jp_preprocess *pp, float *out,
                              jp_error *err);

/* Largest resize and crop side jp_image_preprocess accepts. */
#define JP_IMAGE_MAX_SIDE 16384

/* jp_image_decode + jp_image_preprocess: the model input for the image at
 * path.  out: [3, pp->crop, pp->crop] float32, CHW, RGB, caller-owned.  Every
 * error names path. */
jp_status jp_image_load(const char *path, const jp_preprocess *pp, float *out, jp_error *err);

#endif /* JP_IMAGE_H */
