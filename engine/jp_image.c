/*
 * jp_image.c: image decoding and torchvision's preprocessing (Resize,
 * CenterCrop, ToTensor, Normalize) with PIL's arithmetic.
 *
 * Decoding: a file that starts FF D8 FF (PIL's test for a JPEG, whatever the
 * name) goes to libjpeg-turbo through the libjpeg API with PIL's settings,
 * the same library PIL links, so its pixels are PIL's to the bit; every other
 * file goes to stb_image (PNG, BMP, GIF, ...), whose lossless decoding cannot
 * differ from PIL's.  (stb_image's own JPEG decoder rounds its IDCT and
 * chroma upsampling differently: up to 3/255 off.)
 *
 * The resampler is a port of Pillow's src/libImaging/Resample.c (Pillow 9.4,
 * what torchvision 0.14 calls through Image.resize), BILINEAR only:
 *   - per output pixel, a centre and a support of 1 * max(1, in/out) input
 *     pixels (so downscaling averages over the whole footprint: antialiasing);
 *   - triangle weights computed in double, normalised to sum 1, then
 *     quantised to PRECISION_BITS (22) bit fixed point;
 *   - a horizontal pass into an 8-bit intermediate (rounded by adding half an
 *     LSB, clipped to 0..255), then a vertical pass over it, same arithmetic;
 *   - a pass is skipped when its axis keeps its size.
 * Matching every step keeps the result bit-exact with PIL for lossless input;
 * computing any of it in float instead moves pixels by one level.
 *
 * Unlike PIL, only the pixels that CenterCrop keeps are computed: each output
 * pixel depends only on its own coefficients, so this changes no value.
 */
#define _POSIX_C_SOURCE 200809L

#include "jp_image.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <sys/stat.h>

#include <jpeglib.h> /* needs stdio.h first */
#include <jerror.h>  /* the message codes: JWRN_JPEG_EOF, ... */
#include <stb_image.h>

/* Pillow: 8 bits for the result, 2 for overflow and sign, the rest for the
 * fraction of each coefficient. */
#define PRECISION_BITS (32 - 8 - 2)

/* stb_image takes the encoded size as an int; no real photo is near this. */
#define MAX_FILE_BYTES (1L << 30)

/* ---------------------------------------------------------------- decoding */

/* Reads the whole of path into *bytes (malloc, caller frees). */
static jp_status read_file(const char *path, uint8_t **bytes, size_t *n_bytes, jp_error *err)
{
    *bytes = NULL;
    *n_bytes = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return jp_error_set(err, JP_ERR_MISSING, "%s: no such file", path);
        return jp_error_set(err, JP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    jp_status st = JP_OK;
    struct stat info;
    if (fstat(fileno(f), &info) != 0) {
        st = jp_error_set(err, JP_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(info.st_mode)) {
        st = jp_error_set(err, JP_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    if (info.st_size > MAX_FILE_BYTES) {
        st = jp_error_set(err, JP_ERR_UNSUPPORTED, "%s: %lld bytes, over the %ld-byte limit for an image",
                          path, (long long)info.st_size, MAX_FILE_BYTES);
        goto done;
    }
    size_t size = (size_t)info.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        st = jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate %zu bytes to read it", path, size);
        goto done;
    }
    size_t got = fread(buf, 1, size, f);
    if (got != size) {
        st = jp_error_set(err, JP_ERR_IO, "%s: read %zu of %zu bytes%s%s", path, got, size,
                          ferror(f) ? ": " : " (file shrank while read)",
                          ferror(f) ? strerror(errno) : "");
        free(buf);
        goto done;
    }
    *bytes = buf;
    *n_bytes = size;
done:
    fclose(f);
    return st;
}

/* For a PNG stream (after its 8-byte signature, chunks of length, type, data
 * and CRC): whether every chunk is complete up to IEND.  On a cut, writes
 * which chunk into why.  Returns true when a length is absurd, leaving the
 * verdict to stb_image. */
static bool png_is_complete(const uint8_t *b, size_t n, char *why, size_t why_bytes)
{
    size_t pos = 8;
    while (pos + 8 <= n) {
        uint32_t length = (uint32_t)b[pos] << 24 | (uint32_t)b[pos + 1] << 16 | (uint32_t)b[pos + 2] << 8 |
                          b[pos + 3];
        if (length > 0x7FFFFFFFu) /* the PNG limit: corrupt, not cut */
            return true;
        char type[5];
        for (int i = 0; i < 4; i++) {
            uint8_t c = b[pos + 4 + i];
            type[i] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ? (char)c : '?';
        }
        type[4] = '\0';
        size_t end = pos + 12 + (size_t)length;
        if (end > n) {
            snprintf(why, why_bytes, "the %s chunk at byte %zu needs %zu bytes, the file ends %zu bytes into it",
                     type, pos, end - pos, n - pos);
            return false;
        }
        if (memcmp(b + pos + 4, "IEND", 4) == 0)
            return true;
        pos = end;
    }
    snprintf(why, why_bytes, "the file ends at byte %zu, before the IEND chunk", n);
    return false;
}

/* stb_image decodes a PNG cut inside its last chunk, where PIL raises "image
 * file is truncated" (PIL does accept a PNG cut after its pixel data; we
 * refuse every cut file alike).  Fills why and returns false when bytes look
 * cut short.  JPEGs do not come here: decode_jpeg refuses a cut one itself. */
static bool check_complete(const uint8_t *b, size_t n, char *why, size_t why_bytes)
{
    static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n >= 8 && memcmp(b, png_signature, 8) == 0) {
        char where[160];
        if (png_is_complete(b, n, where, sizeof where))
            return true;
        snprintf(why, why_bytes, "truncated PNG: %s", where);
        return false;
    }
    return true;
}

static const char *stb_reason(void)
{
    const char *reason = stbi_failure_reason();
    return reason ? reason : "no reason given";
}

/* A 16-bit greyscale image (a PNG) as PIL sees it: Image.open gives mode
 * "I", and convert('RGB') clips each value to 0..255 instead of scaling it
 * (stb_image's 8-bit load would keep the high byte).  Fills *img. */
static jp_status decode_grey16(const char *path, const uint8_t *bytes, size_t n_bytes, jp_image_rgb8 *img,
                               jp_error *err)
{
    int w = 0, h = 0, channels = 0;
    uint16_t *grey = stbi_load_16_from_memory(bytes, (int)n_bytes, &w, &h, &channels, 1); /* (h, w) */
    if (!grey)
        return jp_error_set(err, JP_ERR_FORMAT, "%s: corrupt or truncated image (stb_image: %s)", path,
                            stb_reason());
    size_t n_pixels = (size_t)w * (size_t)h;
    img->data = malloc(n_pixels * 3);
    if (!img->data) {
        stbi_image_free(grey);
        return jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate %zu bytes for %d x %d pixels", path,
                            n_pixels * 3, w, h);
    }
    for (size_t i = 0; i < n_pixels; i++) {
        uint8_t v = grey[i] > 255 ? 255 : (uint8_t)grey[i];
        img->data[3 * i + 0] = img->data[3 * i + 1] = img->data[3 * i + 2] = v;
    }
    stbi_image_free(grey);
    img->w = w;
    img->h = h;
    return JP_OK;
}

/* ------------------------------------------------------------------- JPEG */

/* PIL's JPEG path, which jplprof follows step for step (Pillow 9.4,
 * JpegImagePlugin.py and libImaging/JpegDecode.c, on the system's
 * libjpeg-turbo):
 *   - the output colour space follows the number of components: 1 -> L
 *     (JCS_GRAYSCALE), 3 -> RGB (JCS_RGB), 4 -> CMYK (JCS_CMYK); any other
 *     count is refused.  The file's own colour space is left to libjpeg's
 *     guess (JFIF, Adobe transform, component ids), so YCbCr, RGB, CMYK and
 *     YCCK files convert as they do in PIL;
 *   - libjpeg's defaults otherwise: JDCT_ISLOW, fancy upsampling, block
 *     smoothing for progressive files, full size (PIL's draft mode, which
 *     changes them, is not used by torchvision);
 *   - a CMYK image is read as Adobe writes it, inverted ("CMYK;I": each value
 *     255 - v), whether or not the file has an Adobe marker; convert('RGB')
 *     then computes r = nk - nk * c / 255 (nk = 255 - k, Pillow's cmyk2rgb,
 *     below);
 *   - grey is expanded to R = G = B by convert('RGB').
 * libjpeg's warnings are ignored as PIL ignores them, except the two that
 * mean data is missing: the file ends early (JWRN_JPEG_EOF), where PIL,
 * feeding libjpeg only the bytes there are, raises "image file is
 * truncated"; and a scan stops early at a marker (JWRN_HIT_MARKER, "premature
 * end of data segment": a cut file closed with an end-of-image marker), which
 * PIL accepts, filling the rest with grey, and jplprof refuses as cut. */

/* libjpeg's error manager, with a way out: libjpeg's own error_exit ends
 * the process and prints to stderr. */
typedef struct jpeg_error_escape {
    struct jpeg_error_mgr mgr; /* first: libjpeg hands back &mgr as cinfo->err */
    jmp_buf escape;
    char msg[JMSG_LENGTH_MAX]; /* libjpeg's message for the error */
} jpeg_error_escape;

static void jpeg_escape_error(j_common_ptr cinfo)
{
    jpeg_error_escape *e = (jpeg_error_escape *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->escape, 1);
}

/* msg_level -1 is a warning, 0 and up are traces. */
static void jpeg_escape_message(j_common_ptr cinfo, int msg_level)
{
    if (msg_level >= 0)
        return;
    int code = cinfo->err->msg_code;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER)
        jpeg_escape_error(cinfo);
    cinfo->err->num_warnings++;
}

static void jpeg_print_nothing(j_common_ptr cinfo)
{
    (void)cinfo;
}

/* Pillow's MULDIV255: a * b / 255, rounded, for a, b in 0..255. */
static inline int muldiv255(int a, int b)
{
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/* One row of libjpeg output (w pixels of `components` bytes) to RGB. */
static void jpeg_row_to_rgb(const uint8_t *row, int w, int components, uint8_t *rgb)
{
    if (components == 3) {
        memcpy(rgb, row, (size_t)w * 3);
    } else if (components == 1) {
        for (int x = 0; x < w; x++)
            rgb[3 * x + 0] = rgb[3 * x + 1] = rgb[3 * x + 2] = row[x];
    } else { /* CMYK */
        for (int x = 0; x < w; x++) {
            const uint8_t *p = row + 4 * x;
            int nk = p[3]; /* 255 - k, k inverted: the raw value */
            for (int c = 0; c < 3; c++) {
                int v = nk - muldiv255(255 - p[c], nk);
                rgb[3 * x + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
}

/* Decodes the JPEG in bytes into *img with libjpeg(-turbo), as PIL does (see
 * above).  On failure *img is empty and err names path and, for a libjpeg
 * error, carries libjpeg's message. */
static jp_status decode_jpeg(const char *path, const uint8_t *bytes, size_t n_bytes, jp_image_rgb8 *img,
                             jp_error *err)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_error_escape jerr;
    memset(&cinfo, 0, sizeof cinfo); /* so that destroying it is safe at any point */
    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = jpeg_escape_error;
    jerr.mgr.emit_message = jpeg_escape_message;
    jerr.mgr.output_message = jpeg_print_nothing;
    jerr.msg[0] = '\0';
    /* Every libjpeg error lands here; the objects it touches (cinfo, jerr,
     * *img) live in memory, not in this frame's registers. */
    if (setjmp(jerr.escape)) {
        jp_status st = jerr.mgr.msg_code == JERR_OUT_OF_MEMORY ? JP_ERR_NOMEM : JP_ERR_FORMAT;
        jpeg_destroy_decompress(&cinfo);
        jp_image_rgb8_free(img);
        return jp_error_set(err, st, "%s: corrupt or truncated JPEG (libjpeg: %s)", path, jerr.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes, (unsigned long)n_bytes);
    jp_status st = JP_OK;
    if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: JPEG holds tables but no image", path);
        goto done;
    }
    long long w = cinfo.image_width, h = cinfo.image_height;
    if (w <= 0 || h <= 0) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: JPEG header gives %lld x %lld pixels", path, w, h);
        goto done;
    }
    if (w * h > JP_IMAGE_MAX_PIXELS) {
        st = jp_error_set(err, JP_ERR_UNSUPPORTED,
                          "%s: %lld x %lld pixels, over the limit of %lld pixels (PIL's decompression-bomb limit)",
                          path, w, h, JP_IMAGE_MAX_PIXELS);
        goto done;
    }
    int components = cinfo.num_components;
    switch (components) {
    case 1: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case 3: cinfo.out_color_space = JCS_RGB; break;
    case 4: cinfo.out_color_space = JCS_CMYK; break;
    default:
        st = jp_error_set(err, JP_ERR_UNSUPPORTED,
                          "%s: JPEG with %d components; expected 1 (grey), 3 (colour) or 4 (CMYK), as PIL does",
                          path, components);
        goto done;
    }
    cinfo.dct_method = JDCT_ISLOW;      /* libjpeg's default, PIL's too */
    cinfo.do_fancy_upsampling = TRUE;   /* ditto */
    cinfo.scale_num = cinfo.scale_denom = 1;
    jpeg_start_decompress(&cinfo);
    if ((long long)cinfo.output_width != w || (long long)cinfo.output_height != h ||
        cinfo.output_components != components) {
        st = jp_error_set(err, JP_ERR_INTERNAL, "%s: libjpeg decodes the %lld x %lld x %d JPEG to %u x %u x %d",
                          path, w, h, components, (unsigned)cinfo.output_width, (unsigned)cinfo.output_height,
                          cinfo.output_components);
        goto done;
    }
    size_t n_pixel_bytes = (size_t)w * (size_t)h * 3;
    img->data = malloc(n_pixel_bytes);
    if (!img->data) {
        st = jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate %zu bytes for %lld x %lld pixels", path,
                          n_pixel_bytes, w, h);
        goto done;
    }
    /* (1, w * components), freed with cinfo */
    JSAMPARRAY row = (*cinfo.mem->alloc_sarray)((j_common_ptr)&cinfo, JPOOL_IMAGE,
                                                (JDIMENSION)w * (JDIMENSION)components, 1);
    while (cinfo.output_scanline < cinfo.output_height) {
        size_t y = cinfo.output_scanline;
        if (jpeg_read_scanlines(&cinfo, row, 1) != 1) { /* only a suspending source returns 0 */
            st = jp_error_set(err, JP_ERR_INTERNAL, "%s: libjpeg returned no row %zu", path, y);
            goto done;
        }
        jpeg_row_to_rgb(row[0], (int)w, components, img->data + y * (size_t)w * 3);
    }
    /* Reads on to the end-of-image marker: a file cut after its last scan
     * warns here (JWRN_JPEG_EOF), and so fails. */
    jpeg_finish_decompress(&cinfo);
    img->w = (int)w;
    img->h = (int)h;
done:
    jpeg_destroy_decompress(&cinfo);
    if (st != JP_OK)
        jp_image_rgb8_free(img);
    return st;
}

void jp_image_rgb8_free(jp_image_rgb8 *img)
{
    if (!img)
        return;
    free(img->data);
    img->data = NULL;
    img->w = img->h = 0;
}

jp_status jp_image_decode(const char *path, jp_image_rgb8 *img, jp_error *err)
{
    img->w = img->h = 0;
    img->data = NULL;
    uint8_t *bytes = NULL;
    size_t n_bytes = 0;
    uint8_t *pixels = NULL; /* (h, w, 3), stb_image's allocation */
    jp_status st = read_file(path, &bytes, &n_bytes, err);
    if (st != JP_OK)
        return st;
    if (n_bytes == 0) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: empty file, not an image", path);
        goto done;
    }

    if (n_bytes >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) {
        /* PIL's test for a JPEG (JpegImagePlugin._accept), whatever the name */
        st = decode_jpeg(path, bytes, n_bytes, img, err);
        goto done;
    }
    if (bytes[0] == 0xFF) {
        /* stb_image takes FF fill bytes before a JPEG's start-of-image marker
         * (FF FF D8 ...) and would decode the file with its own JPEG decoder;
         * PIL does not recognise such a file at all. */
        size_t i = 0;
        while (i < n_bytes && bytes[i] == 0xFF)
            i++;
        if (i >= 2 && i < n_bytes && bytes[i] == 0xD8) {
            st = jp_error_set(err, JP_ERR_FORMAT,
                              "%s: not an image as PIL reads it: %zu FF fill byte(s) before a JPEG's start-of-image "
                              "marker, where a JPEG starts FF D8 FF", path, i - 1);
            goto done;
        }
    }
    char why[256];
    if (!check_complete(bytes, n_bytes, why, sizeof why)) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: %s", path, why);
        goto done;
    }

    /* A PNG whose header asks for more than 2^30 bytes of pixels fails
     * stb_image's info with "too large", but stb then tries its other
     * formats and reports "unknown image type" (issue 14): read the size
     * from the IHDR chunk (bytes 16..23, big-endian) first. */
    if (n_bytes >= 24 && memcmp(bytes, "\x89PNG\r\n\x1a\n", 8) == 0 &&
        memcmp(bytes + 12, "IHDR", 4) == 0) {
        uint32_t pw = (uint32_t)bytes[16] << 24 | (uint32_t)bytes[17] << 16 |
                      (uint32_t)bytes[18] << 8 | bytes[19];
        uint32_t ph = (uint32_t)bytes[20] << 24 | (uint32_t)bytes[21] << 16 |
                      (uint32_t)bytes[22] << 8 | bytes[23];
        if ((uint64_t)pw * ph > (uint64_t)JP_IMAGE_MAX_PIXELS) {
            st = jp_error_set(err, JP_ERR_UNSUPPORTED,
                              "%s: PNG header gives %" PRIu32 " x %" PRIu32 " pixels: too large (over "
                              "the limit of %lld pixels, PIL's decompression-bomb limit)",
                              path, pw, ph, JP_IMAGE_MAX_PIXELS);
            goto done;
        }
    }
    int w = 0, h = 0, channels = 0;
    if (!stbi_info_from_memory(bytes, (int)n_bytes, &w, &h, &channels)) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: not an image or corrupt (stb_image: %s)", path,
                          stb_reason());
        goto done;
    }
    if (w <= 0 || h <= 0) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: image header gives %d x %d pixels", path, w, h);
        goto done;
    }
    if ((long long)w * h > JP_IMAGE_MAX_PIXELS) {
        st = jp_error_set(err, JP_ERR_UNSUPPORTED,
                          "%s: %d x %d pixels: too large (over the limit of %lld pixels, PIL's "
                          "decompression-bomb limit)",
                          path, w, h, JP_IMAGE_MAX_PIXELS);
        goto done;
    }
    if (channels == 1 && stbi_is_16_bit_from_memory(bytes, (int)n_bytes)) {
        st = decode_grey16(path, bytes, n_bytes, img, err);
        goto done;
    }
    int w2 = 0, h2 = 0;
    pixels = stbi_load_from_memory(bytes, (int)n_bytes, &w2, &h2, &channels, 3);
    if (!pixels) {
        st = jp_error_set(err, JP_ERR_FORMAT, "%s: corrupt or truncated image (stb_image: %s)", path,
                          stb_reason());
        goto done;
    }
    if (w2 != w || h2 != h) {
        st = jp_error_set(err, JP_ERR_INTERNAL, "%s: stb_image's header said %d x %d, decoding gave %d x %d",
                          path, w, h, w2, h2);
        goto done;
    }
    /* Copied so that img->data is plain malloc memory whatever allocator
     * libstb was built with. */
    size_t n_pixel_bytes = (size_t)w * (size_t)h * 3;
    img->data = malloc(n_pixel_bytes);
    if (!img->data) {
        st = jp_error_set(err, JP_ERR_NOMEM, "%s: cannot allocate %zu bytes for %d x %d pixels", path,
                          n_pixel_bytes, w, h);
        goto done;
    }
    memcpy(img->data, pixels, n_pixel_bytes);
    img->w = w;
    img->h = h;
done:
    if (pixels)
        stbi_image_free(pixels);
    free(bytes);
    return st;
}

/* ---------------------------------------------------------------- geometry */

jp_status jp_image_resized_size(int w, int h, int resize, int *out_w, int *out_h, jp_error *err)
{
    if (w <= 0 || h <= 0 || resize <= 0)
        return jp_error_set(err, JP_ERR_ARG, "cannot resize a %d x %d image to shorter side %d", w, h,
                            resize);
    int short_side = w <= h ? w : h;
    int long_side = w <= h ? h : w;
    /* Python's int(resize * long / short): an exact product, a correctly
     * rounded division (both exact in double below 2^53), truncation. */
    double ratio = (double)((long long)resize * long_side) / (double)short_side;
    if (ratio * resize > (double)JP_IMAGE_MAX_PIXELS)
        return jp_error_set(err, JP_ERR_UNSUPPORTED,
                            "resizing a %d x %d image to shorter side %d gives %.0f x %d pixels, over the limit of %lld",
                            w, h, resize, floor(ratio), resize, JP_IMAGE_MAX_PIXELS);
    int new_long = (int)ratio;
    *out_w = w <= h ? resize : new_long;
    *out_h = w <= h ? new_long : resize;
    return JP_OK;
}

/* torchvision's center_crop offset along one axis: int(round((size - crop) /
 * 2.0)), Python rounding half to even; when crop > size, torchvision first
 * pads (crop - size) // 2 zeros before, so the offset is minus that. */
static int center_crop_offset(int size, int crop)
{
    if (crop > size)
        return -((crop - size) / 2);
    int diff = size - crop;
    int offset = diff / 2;
    if (diff % 2 == 1 && offset % 2 == 1) /* k + 0.5 rounds to the even one */
        offset++;
    return offset;
}

/* --------------------------------------------------------------- resampling */

/* The product a * b, rounded to double before any further use, as Pillow's
 * build computes it.  The volatile keeps a compiler allowed to contract
 * (-ffp-contract=fast, GCC's default in gnu modes) from fusing it with the
 * filter's `1.0 - x` into one FMA, which could move a weight by an ulp and, at
 * a rounding boundary, a fixed-point coefficient by one.  GCC 12 fuses nothing
 * here even without it; the guard costs nothing (coefficients are computed
 * once per output row or column). */
static double mul_rounded(double a, double b)
{
    volatile double product = a * b;
    return product;
}

static double bilinear_filter(double x)
{
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return 1.0 - x;
    return 0.0;
}

/* Coefficients of one axis, for the output pixels [first, first + n) of an
 * in_size -> out_size resample. */
typedef struct resample_axis {
    int n;
    int ksize;       /* coefficients per output pixel (some trailing zeros)  */
    int *bounds;     /* (n, 2): first input pixel, number of input pixels     */
    int32_t *coeffs; /* (n, ksize): weights in PRECISION_BITS fixed point     */
} resample_axis;

static void resample_axis_free(resample_axis *axis)
{
    free(axis->bounds);
    free(axis->coeffs);
    axis->bounds = NULL;
    axis->coeffs = NULL;
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc (box = whole image). */
static jp_status resample_axis_build(resample_axis *axis, int in_size, int out_size, int first, int n,
                                     jp_error *err)
{
    memset(axis, 0, sizeof *axis);
    double scale = (double)in_size / out_size; /* (double)(in1 - in0) / outSize */
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale; /* BILINEAR's support is 1 */
    double ss = 1.0 / filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    /* in_size <= JP_IMAGE_MAX_PIXELS and out_size >= 1 bound ksize; n is at
     * most a crop side. */
    if (ksize <= 0 || (size_t)n > SIZE_MAX / sizeof(int32_t) / (size_t)ksize)
        return jp_error_set(err, JP_ERR_INTERNAL, "resample %d -> %d: %d coefficients per pixel", in_size,
                            out_size, ksize);
    axis->n = n;
    axis->ksize = ksize;
    axis->bounds = malloc((size_t)n * 2 * sizeof *axis->bounds);
    axis->coeffs = malloc((size_t)n * (size_t)ksize * sizeof *axis->coeffs);
    double *weights = malloc((size_t)ksize * sizeof *weights);
    if (!axis->bounds || !axis->coeffs || !weights) {
        free(weights);
        resample_axis_free(axis);
        return jp_error_set(err, JP_ERR_NOMEM, "resample %d -> %d: cannot allocate %d x %d coefficients",
                            in_size, out_size, n, ksize);
    }
    for (int i = 0; i < n; i++) {
        int xx = first + i;
        double center = (xx + 0.5) * scale;
        double ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = bilinear_filter(mul_rounded(x + xmin - center + 0.5, ss));
            weights[x] = w;
            ww += w;
        }
        int32_t *k = axis->coeffs + (size_t)i * ksize;
        for (int x = 0; x < ksize; x++) {
            double w = x < xmax ? weights[x] : 0.0;
            if (x < xmax && ww != 0.0)
                w /= ww;
            /* Scaling by a power of two is exact: no FMA concern here. */
            k[x] = w < 0 ? (int32_t)(-0.5 + w * (1 << PRECISION_BITS))
                         : (int32_t)(0.5 + w * (1 << PRECISION_BITS));
        }
        axis->bounds[2 * i + 0] = xmin;
        axis->bounds[2 * i + 1] = xmax;
    }
    free(weights);
    return JP_OK;
}

/* Pillow's clip8: the accumulator carries half an LSB already, so the shift
 * rounds; out-of-range values (not reachable with BILINEAR's non-negative
 * weights) clip. */
static inline uint8_t clip8(int32_t acc)
{
    if (acc < 0)
        return 0;
    int32_t v = acc >> PRECISION_BITS;
    return v > 255 ? 255 : (uint8_t)v;
}

/* Horizontal pass over input rows [row0, row0 + n_rows): tmp (n_rows, axis->n, 3). */
static void resample_horizontal(const jp_image_rgb8 *in, int row0, int n_rows, const resample_axis *axis,
                                uint8_t *tmp)
{
    for (int y = 0; y < n_rows; y++) {
        const uint8_t *src = in->data + (size_t)(row0 + y) * in->w * 3;
        uint8_t *dst = tmp + (size_t)y * axis->n * 3;
        for (int i = 0; i < axis->n; i++) {
            const uint8_t *p = src + (size_t)axis->bounds[2 * i] * 3;
            int count = axis->bounds[2 * i + 1];
            const int32_t *k = axis->coeffs + (size_t)i * axis->ksize;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < count; x++) {
                s0 += p[3 * x + 0] * k[x];
                s1 += p[3 * x + 1] * k[x];
                s2 += p[3 * x + 2] * k[x];
            }
            dst[3 * i + 0] = clip8(s0);
            dst[3 * i + 1] = clip8(s1);
            dst[3 * i + 2] = clip8(s2);
        }
    }
}

/* Vertical pass: output row i of axis from tmp rows (bounds - row0), each
 * row n_cols pixels; writes n_cols pixels per row at out + i * out_stride. */
static void resample_vertical(const uint8_t *tmp, int row0, int n_cols, const resample_axis *axis,
                              uint8_t *out, size_t out_stride)
{
    size_t tmp_stride = (size_t)n_cols * 3;
    for (int i = 0; i < axis->n; i++) {
        int ymin = axis->bounds[2 * i] - row0;
        int count = axis->bounds[2 * i + 1];
        const int32_t *k = axis->coeffs + (size_t)i * axis->ksize;
        uint8_t *dst = out + (size_t)i * out_stride;
        for (int c = 0; c < n_cols; c++) {
            const uint8_t *p = tmp + (size_t)ymin * tmp_stride + (size_t)c * 3;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int y = 0; y < count; y++, p += tmp_stride) {
                s0 += p[0] * k[y];
                s1 += p[1] * k[y];
                s2 += p[2] * k[y];
            }
            dst[3 * c + 0] = clip8(s0);
            dst[3 * c + 1] = clip8(s1);
            dst[3 * c + 2] = clip8(s2);
        }
    }
}

jp_status jp_image_resize_crop(const jp_image_rgb8 *img, int resize, int crop, uint8_t *out, jp_error *err)
{
    if (crop <= 0 || crop > JP_IMAGE_MAX_SIDE)
        return jp_error_set(err, JP_ERR_ARG, "center crop %d: expected 1..%d", crop, JP_IMAGE_MAX_SIDE);
    if (!img->data)
        return jp_error_set(err, JP_ERR_ARG, "resize of an empty image");
    int out_w = 0, out_h = 0;
    jp_status st = jp_image_resized_size(img->w, img->h, resize, &out_w, &out_h, err);
    if (st != JP_OK)
        return st;
    int left = center_crop_offset(out_w, crop);
    int top = center_crop_offset(out_h, crop);

    size_t out_stride = (size_t)crop * 3;
    memset(out, 0, out_stride * (size_t)crop); /* torchvision pads with 0 */
    /* Crop pixels [cx0, cx1) x [cy0, cy1) lie inside the resized image. */
    int cx0 = left < 0 ? -left : 0, cx1 = out_w - left < crop ? out_w - left : crop;
    int cy0 = top < 0 ? -top : 0, cy1 = out_h - top < crop ? out_h - top : crop;
    int n_cols = cx1 - cx0, n_rows = cy1 - cy0;
    if (n_cols <= 0 || n_rows <= 0)
        return JP_OK;

    resample_axis horiz = {0}, vert = {0};
    uint8_t *tmp = NULL; /* (row1 - row0, n_cols, 3): after the horizontal pass */
    bool need_horiz = out_w != img->w, need_vert = out_h != img->h;
    int row0 = cy0 + top, row1 = cy1 + top; /* input rows the vertical pass reads */
    if (need_vert) {
        st = resample_axis_build(&vert, img->h, out_h, cy0 + top, n_rows, err);
        if (st != JP_OK)
            goto done;
        row0 = vert.bounds[0];
        row1 = row0;
        for (int i = 0; i < n_rows; i++)
            if (vert.bounds[2 * i] + vert.bounds[2 * i + 1] > row1)
                row1 = vert.bounds[2 * i] + vert.bounds[2 * i + 1];
    }
    tmp = malloc((size_t)(row1 - row0) * (size_t)n_cols * 3);
    if (!tmp) {
        st = jp_error_set(err, JP_ERR_NOMEM, "resize: cannot allocate %d x %d pixels", row1 - row0, n_cols);
        goto done;
    }
    if (need_horiz) {
        st = resample_axis_build(&horiz, img->w, out_w, cx0 + left, n_cols, err);
        if (st != JP_OK)
            goto done;
        resample_horizontal(img, row0, row1 - row0, &horiz, tmp);
    } else {
        for (int y = row0; y < row1; y++)
            memcpy(tmp + (size_t)(y - row0) * n_cols * 3,
                   img->data + ((size_t)y * img->w + (size_t)(cx0 + left)) * 3, (size_t)n_cols * 3);
    }
    uint8_t *dst = out + (size_t)cy0 * out_stride + (size_t)cx0 * 3;
    if (need_vert) {
        resample_vertical(tmp, row0, n_cols, &vert, dst, out_stride);
    } else {
        for (int y = 0; y < n_rows; y++)
            memcpy(dst + (size_t)y * out_stride, tmp + (size_t)y * n_cols * 3, (size_t)n_cols * 3);
    }
done:
    free(tmp);
    resample_axis_free(&horiz);
    resample_axis_free(&vert);
    return st;
}

/* ------------------------------------------------------------ the pipeline */

jp_status jp_image_preprocess(const jp_image_rgb8 *img, const jp_preprocess *pp, float *out, jp_error *err)
{
    if (pp->resize <= 0 || pp->resize > JP_IMAGE_MAX_SIDE)
        return jp_error_set(err, JP_ERR_ARG, "preprocess.resize %d: expected 1..%d", pp->resize,
                            JP_IMAGE_MAX_SIDE);
    if (pp->crop <= 0 || pp->crop > JP_IMAGE_MAX_SIDE)
        return jp_error_set(err, JP_ERR_ARG, "preprocess.crop %d: expected 1..%d", pp->crop,
                            JP_IMAGE_MAX_SIDE);
    for (int c = 0; c < 3; c++)
        if (!(pp->std[c] > 0.0f) || !isfinite(pp->std[c]) || !isfinite(pp->mean[c]))
            return jp_error_set(err, JP_ERR_ARG, "preprocess: mean[%d] = %g, std[%d] = %g: expected finite, std > 0",
                                c, pp->mean[c], c, pp->std[c]);
    int crop = pp->crop;
    size_t plane = (size_t)crop * crop;
    uint8_t *rgb = malloc(plane * 3); /* (crop, crop, 3) */
    if (!rgb)
        return jp_error_set(err, JP_ERR_NOMEM, "preprocess: cannot allocate a %d x %d crop", crop, crop);
    jp_status st = jp_image_resize_crop(img, pp->resize, crop, rgb, err);
    if (st == JP_OK) {
        /* ToTensor: v / 255 in float32; Normalize: (x - mean) / std, as
         * torch's sub_ and div_ compute them (a true division each). */
        for (int c = 0; c < 3; c++) {
            float mean = pp->mean[c], std = pp->std[c];
            float *dst = out + (size_t)c * plane;
            for (size_t i = 0; i < plane; i++)
                dst[i] = ((float)rgb[3 * i + c] / 255.0f - mean) / std;
        }
    }
    free(rgb);
    return st;
}

jp_status jp_image_load(const char *path, const jp_preprocess *pp, float *out, jp_error *err)
{
    jp_image_rgb8 img = {0};
    jp_status st = jp_image_decode(path, &img, err);
    if (st != JP_OK)
        return st;
    st = jp_image_preprocess(&img, pp, out, err);
    if (st != JP_OK)
        jp_error_prefix(err, "%s: ", path);
    jp_image_rgb8_free(&img);
    return st;
}
