/*
 * test_image.c: engine/jp_image.c on the C side.
 *
 *   test_image                          runs the cases below (PASS/FAIL/SKIP lines)
 *   test_image dump IMAGE OUT.f32 [RESIZE CROP]
 *                                       writes jp_image_load's [3, CROP, CROP]
 *                                       float32 (native byte order) for
 *                                       tests/test_image.py; ImageNet's mean and
 *                                       std, RESIZE 256 and CROP 224 by default
 *   test_image decode IMAGE OUT.ppm     writes jp_image_decode's pixels as a
 *                                       binary PPM, for tests/test_image.py
 *   test_image write-jpegs DIR          writes into DIR the JPEGs PIL cannot
 *                                       write (YCCK, Adobe RGB, CMYK without
 *                                       an Adobe marker), for tests/test_image.py
 *
 * The cases: every bad input (missing file, a text file named .jpg, an empty
 * file, truncated PNG and JPEG files, a JPEG cut inside its scan and closed
 * with an end-of-image marker, garbage after JPEG's magic bytes, a JPEG
 * after an extra FF byte, absurd
 * dimensions in a PNG and in a JPEG, a 2-component JPEG, a directory, a bad
 * preprocess) gives an error naming the file; grey and RGBA files decode to
 * RGB as PIL's convert('RGB') does, grey and CMYK JPEGs too; a JPEG is found
 * by its content, whatever its name; the resize-free path and CenterCrop's
 * half-to-even offset; ToTensor and Normalize.  Agreement with torchvision
 * and PIL themselves is tests/test_image.py's job.  Fixtures are written with
 * stb_image_write and libjpeg into a fresh directory under $TMPDIR, removed
 * at the end.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>
#include <stb_image_write.h>

#include "jp_image.h"
#include "jp_test.h"

static const jp_preprocess imagenet_pp = {
    .resize = 256,
    .crop = 224,
    .mean = {0.485f, 0.456f, 0.406f},
    .std = {0.229f, 0.224f, 0.225f},
};

/* ----------------------------------------------------------------- dumping */

static int run_dump(int argc, char **argv)
{
    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: %s dump IMAGE OUT.f32 [RESIZE CROP]\n", argv[0]);
        return 2;
    }
    jp_preprocess pp = imagenet_pp;
    if (argc == 6) {
        pp.resize = atoi(argv[4]);
        pp.crop = atoi(argv[5]);
        if (pp.resize <= 0 || pp.crop <= 0 || pp.crop > JP_IMAGE_MAX_SIDE) {
            fprintf(stderr, "%s: bad RESIZE %s or CROP %s\n", argv[0], argv[4], argv[5]);
            return 2;
        }
    }
    size_t n = 3 * (size_t)pp.crop * pp.crop;
    float *out = malloc(n * sizeof *out);
    if (!out) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 1;
    }
    jp_error err = {0};
    if (jp_image_load(argv[2], &pp, out, &err) != JP_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], err.msg);
        free(out);
        return 1;
    }
    FILE *f = fopen(argv[3], "wb");
    bool ok = f && fwrite(out, sizeof *out, n, f) == n;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "%s: cannot write %s: %s\n", argv[0], argv[3], strerror(errno));
    free(out);
    return ok ? 0 : 1;
}

/* libjpeg's error manager for the writer below: an error returns false
 * instead of exiting. */
typedef struct test_jpeg_error {
    struct jpeg_error_mgr mgr; /* first: libjpeg hands back &mgr */
    jmp_buf escape;
} test_jpeg_error;

static void test_jpeg_error_exit(j_common_ptr cinfo)
{
    longjmp(((test_jpeg_error *)cinfo->err)->escape, 1);
}

/* Writes pixels (h, w, components) as a baseline JPEG at quality.  in_space
 * says what the pixels are, file_space how the file stores them
 * (jpeg_set_colorspace: JCS_YCCK, JCS_RGB, ... and JCS_UNKNOWN for any other
 * count of components); adobe_marker overrides libjpeg's choice of writing
 * the Adobe marker, which carries the colour transform. */
static bool write_jpeg(const char *path, const uint8_t *pixels, int w, int h, int components,
                       J_COLOR_SPACE in_space, J_COLOR_SPACE file_space, bool adobe_marker, int quality)
{
    if (!path)
        return false;
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    struct jpeg_compress_struct cinfo;
    test_jpeg_error jerr;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = test_jpeg_error_exit;
    if (setjmp(jerr.escape)) {
        jpeg_destroy_compress(&cinfo);
        fclose(f);
        return false;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = components;
    cinfo.in_color_space = in_space;
    jpeg_set_defaults(&cinfo);
    jpeg_set_colorspace(&cinfo, file_space);
    jpeg_set_quality(&cinfo, quality, TRUE);
    cinfo.write_Adobe_marker = adobe_marker;
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)cinfo.next_scanline * w * components);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    return fclose(f) == 0;
}

/* A w x h image with `channels` channels varying slowly (no edge, so JPEG
 * at quality 100 keeps every value within a level or two): x and y ramps,
 * channel c offset by 15 c.  w + h <= 110 keeps values below 256. */
static uint8_t *smooth_pattern(int w, int h, int channels)
{
    uint8_t *p = malloc((size_t)w * h * channels);
    if (!p)
        return NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++)
                p[((size_t)y * w + x) * channels + c] = (uint8_t)(x * 2 + y * 2 / 3 + c * 15);
    return p;
}

/* Pillow's CMYK -> RGB for the raw CMYK values a JPEG stores: PIL reads them
 * inverted (Adobe's convention), then r = nk - nk * c / 255 with nk = 255 - k,
 * rounded as Pillow's MULDIV255. */
static uint8_t pil_cmyk_channel(uint8_t raw_c, uint8_t raw_k) /* c, m or y -> r, g or b */
{
    int nk = raw_k, t = (255 - raw_c) * nk + 128;
    int v = nk - (((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static int run_decode(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s decode IMAGE OUT.ppm\n", argv[0]);
        return 2;
    }
    jp_image_rgb8 img = {0};
    jp_error err = {0};
    if (jp_image_decode(argv[2], &img, &err) != JP_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], err.msg);
        return 1;
    }
    size_t n = (size_t)img.w * img.h * 3;
    FILE *f = fopen(argv[3], "wb");
    bool ok = f && fprintf(f, "P6\n%d %d\n255\n", img.w, img.h) > 0 && fwrite(img.data, 1, n, f) == n;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "%s: cannot write %s: %s\n", argv[0], argv[3], strerror(errno));
    jp_image_rgb8_free(&img);
    return ok ? 0 : 1;
}

/* The JPEG colour spaces PIL cannot write, made from a smooth 4-channel
 * pattern (its first 3 channels for RGB), quality 92.  Prints each path. */
static int run_write_jpegs(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s write-jpegs DIR\n", argv[0]);
        return 2;
    }
    static const struct {
        const char *name;
        int components;
        J_COLOR_SPACE in_space, file_space;
        bool adobe_marker;
    } files[] = {
        {"ycck_53x47.jpg", 4, JCS_CMYK, JCS_YCCK, true},         /* Adobe transform 2 */
        {"cmyk_no_adobe_53x47.jpg", 4, JCS_CMYK, JCS_CMYK, false}, /* CMYK by default */
        {"rgb_adobe_53x47.jpg", 3, JCS_RGB, JCS_RGB, true},        /* Adobe transform 0 */
    };
    const int w = 53, h = 47;
    uint8_t *cmyk = smooth_pattern(w, h, 4);
    uint8_t *rgb = smooth_pattern(w, h, 3);
    int rc = cmyk && rgb ? 0 : 1;
    for (size_t i = 0; rc == 0 && i < sizeof files / sizeof files[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[2], files[i].name);
        if (!write_jpeg(path, files[i].components == 4 ? cmyk : rgb, w, h, files[i].components, files[i].in_space,
                        files[i].file_space, files[i].adobe_marker, 92)) {
            fprintf(stderr, "%s: cannot write %s\n", argv[0], path);
            rc = 1;
        } else {
            printf("%s\n", path);
        }
    }
    free(cmyk);
    free(rgb);
    return rc;
}

/* ---------------------------------------------------------------- fixtures */

static char tmp_dir[256];
#define MAX_FIXTURES 32
static char fixtures[MAX_FIXTURES][320];
static int n_fixtures;

/* Path of a new file name in tmp_dir, remembered for clean-up. */
static const char *fixture_path(const char *name)
{
    if (n_fixtures == MAX_FIXTURES)
        return NULL;
    char *path = fixtures[n_fixtures++];
    snprintf(path, sizeof fixtures[0], "%s/%s", tmp_dir, name);
    return path;
}

static bool write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Reads a whole small file; NULL on failure. */
static uint8_t *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size > 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)size))) {
            if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
                free(buf);
                buf = NULL;
            } else {
                *n = (size_t)size;
            }
        }
    }
    fclose(f);
    return buf;
}

/* A w x h image with `channels` channels, every value a function of its
 * position, so that shifts and channel swaps show. */
static uint8_t *pattern(int w, int h, int channels)
{
    uint8_t *p = malloc((size_t)w * h * channels);
    if (!p)
        return NULL;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++)
                p[((size_t)y * w + x) * channels + c] = (uint8_t)(x * 7 + y * 13 + c * 50 + (x * y) % 17);
    return p;
}

/* --------------------------------------------------------------- checking */

/* Checks that loading path fails with `expected` and a message naming path. */
static void check_load_error(const char *name, const char *path, jp_status expected)
{
    if (!path) {
        jp_test_fail(name, "too many fixtures");
        return;
    }
    static float out[3 * 224 * 224];
    jp_error err = {0};
    jp_status st = jp_image_load(path, &imagenet_pp, out, &err);
    if (st == JP_OK)
        jp_test_fail(name, "%s loaded without error", path);
    else if (st != expected)
        jp_test_fail(name, "status %s, expected %s (%s)", jp_status_name(st), jp_status_name(expected), err.msg);
    else if (!strstr(err.msg, path))
        jp_test_fail(name, "message does not name %s: %s", path, err.msg);
    else if (strchr(err.msg, '\n'))
        jp_test_fail(name, "message is more than one line: %s", err.msg);
    else {
        printf("  %s -> %s\n", name, err.msg);
        jp_test_pass(name);
    }
}

static void test_missing_file(void)
{
    check_load_error("missing_file", fixture_path("no-such-image.jpg"), JP_ERR_MISSING);
}

static void test_text_as_jpg(void)
{
    const char *path = fixture_path("notes.jpg");
    const char text[] = "This is a text file, not a JPEG.\n";
    if (!path || !write_bytes(path, text, sizeof text - 1)) {
        jp_test_fail("text_file_named_jpg", "cannot write fixture");
        return;
    }
    check_load_error("text_file_named_jpg", path, JP_ERR_FORMAT);
}

static void test_empty_file(void)
{
    const char *path = fixture_path("empty.png");
    if (!path || !write_bytes(path, "", 0)) {
        jp_test_fail("empty_file", "cannot write fixture");
        return;
    }
    check_load_error("empty_file", path, JP_ERR_FORMAT);
}

static void test_directory(void)
{
    check_load_error("directory", tmp_dir, JP_ERR_IO);
}

/* Writes the complete file `whole` (an image), then checks that copies cut
 * at several points, down to one byte short, all fail to load. */
static void check_truncations(const char *name, const char *whole)
{
    size_t n = 0;
    uint8_t *bytes = read_bytes(whole, &n);
    if (!bytes) {
        jp_test_fail(name, "cannot read back %s", whole);
        return;
    }
    char cut_name[64];
    snprintf(cut_name, sizeof cut_name, "cut-%s", strrchr(whole, '/') + 1);
    const char *cut = fixture_path(cut_name);
    /* Half first, then cuts from the header to the last byte: inside the
     * pixel data, inside the final chunk (PNG's IEND, JPEG's EOI marker). */
    const double fractions[] = {0.5, 0.01, 0.1, 0.25, 0.75, 0.9, 0.99};
    const size_t from_end[] = {17, 13, 12, 5, 4, 1};
    const size_t n_fractions = sizeof fractions / sizeof fractions[0];
    const size_t n_cuts = n_fractions + sizeof from_end / sizeof from_end[0];
    int failures = 0;
    char first_failure[1200] = "";
    for (size_t i = 0; i < n_cuts; i++) {
        size_t keep = i < n_fractions ? (size_t)((double)n * fractions[i]) : n - from_end[i - n_fractions];
        if (!cut || !write_bytes(cut, bytes, keep)) {
            jp_test_fail(name, "cannot write fixture");
            free(bytes);
            return;
        }
        static float out[3 * 224 * 224];
        jp_error err = {0};
        jp_status st = jp_image_load(cut, &imagenet_pp, out, &err);
        bool ok = st == JP_ERR_FORMAT && strstr(err.msg, cut);
        if (i == 0 && ok)
            printf("  %s (%zu of %zu bytes) -> %s\n", name, keep, n, err.msg);
        if (!ok && failures++ == 0)
            snprintf(first_failure, sizeof first_failure, "%zu of %zu bytes: status %s: %s", keep, n,
                     jp_status_name(st), st == JP_OK ? "loaded" : err.msg);
    }
    free(bytes);
    JP_CHECK(name, failures == 0, "%d cut(s) not refused; first: %s", failures, first_failure);
}

static void test_truncated_png(void)
{
    const char *path = fixture_path("whole.png");
    uint8_t *rgb = pattern(300, 200, 3);
    /* Noise-like content so the file is not all header. */
    for (size_t i = 0; rgb && i < 300 * 200 * 3; i++)
        rgb[i] ^= (uint8_t)(i * 2654435761u >> 13);
    if (!rgb || !path || !stbi_write_png(path, 300, 200, 3, rgb, 300 * 3)) {
        free(rgb);
        jp_test_fail("truncated_png", "cannot write fixture");
        return;
    }
    free(rgb);
    check_truncations("truncated_png", path);
}

static void test_truncated_jpeg(void)
{
    const char *path = fixture_path("whole.jpg");
    uint8_t *rgb = pattern(300, 200, 3);
    if (!rgb || !path || !stbi_write_jpg(path, 300, 200, 3, rgb, 90)) {
        free(rgb);
        jp_test_fail("truncated_jpeg", "cannot write fixture");
        return;
    }
    free(rgb);
    /* The whole file loads: the cuts below fail for being cut. */
    static float out[3 * 224 * 224];
    jp_error err = {0};
    if (jp_image_load(path, &imagenet_pp, out, &err) != JP_OK) {
        jp_test_fail("truncated_jpeg", "the complete JPEG does not load: %s", err.msg);
        return;
    }
    check_truncations("truncated_jpeg", path);
}

/* A JPEG cut inside its scan and closed with an end-of-image marker (what
 * PIL's LOAD_TRUNCATED_IMAGES does to a cut file): libjpeg warns "premature
 * end of data segment" and fills the rest with grey, PIL accepts it; jplprof
 * refuses it as cut. */
static void test_jpeg_cut_scan(void)
{
    const char *whole = fixture_path("scan.jpg");
    const char *cut = fixture_path("scan-cut-eoi.jpg");
    uint8_t *rgb = pattern(300, 200, 3);
    size_t n = 0;
    uint8_t *bytes = NULL;
    if (!rgb || !whole || !cut || !stbi_write_jpg(whole, 300, 200, 3, rgb, 90) || !(bytes = read_bytes(whole, &n))) {
        free(rgb);
        jp_test_fail("jpeg_cut_scan_with_eoi", "cannot write fixture");
        return;
    }
    free(rgb);
    size_t keep = n / 2;
    if (bytes[keep - 1] == 0xFF) /* not inside an FF 00 pair */
        keep--;
    bytes[keep] = 0xFF;
    bytes[keep + 1] = 0xD9;
    bool written = write_bytes(cut, bytes, keep + 2);
    free(bytes);
    if (!written) {
        jp_test_fail("jpeg_cut_scan_with_eoi", "cannot write fixture");
        return;
    }
    check_load_error("jpeg_cut_scan_with_eoi", cut, JP_ERR_FORMAT);
}

/* JPEG's magic bytes (FF D8 FF: the file goes to libjpeg) then text, whose
 * 'J' reads as marker FF 4A: libjpeg's error ("Unsupported marker type"),
 * not its exit(). */
static void test_jpeg_garbage(void)
{
    const char *path = fixture_path("garbage.jpg");
    const char bytes[] = "\xFF\xD8\xFFJPEG's magic bytes, then text.";
    if (!path || !write_bytes(path, bytes, sizeof bytes - 1)) {
        jp_test_fail("jpeg_garbage_after_magic", "cannot write fixture");
        return;
    }
    check_load_error("jpeg_garbage_after_magic", path, JP_ERR_FORMAT);
}

/* A small JPEG whose SOF header is patched to 65000 x 65000 pixels (4.2e9):
 * refused before libjpeg allocates anything for it. */
static void test_jpeg_absurd_dimensions(void)
{
    const char *path = fixture_path("huge.jpg");
    uint8_t *rgb = pattern(16, 16, 3);
    size_t n = 0;
    uint8_t *bytes = NULL;
    if (!rgb || !path || !stbi_write_jpg(path, 16, 16, 3, rgb, 90) || !(bytes = read_bytes(path, &n))) {
        free(rgb);
        jp_test_fail("jpeg_absurd_dimensions", "cannot write fixture");
        return;
    }
    free(rgb);
    /* SOF0: FF C0, length (2), precision (1), height (2), width (2). */
    size_t sof = 0;
    for (size_t i = 2; i + 9 < n && !sof; i++)
        if (bytes[i] == 0xFF && bytes[i + 1] == 0xC0)
            sof = i;
    bool written = false;
    if (sof) {
        bytes[sof + 5] = bytes[sof + 7] = 0xFD; /* 0xFDE8 = 65000 */
        bytes[sof + 6] = bytes[sof + 8] = 0xE8;
        written = write_bytes(path, bytes, n);
    }
    free(bytes);
    if (!written) {
        jp_test_fail("jpeg_absurd_dimensions", sof ? "cannot write fixture" : "no SOF0 marker in stb's JPEG");
        return;
    }
    check_load_error("jpeg_absurd_dimensions", path, JP_ERR_UNSUPPORTED);
}

/* Grey (1 component) decodes to R = G = B; CMYK (4, Adobe marker) to PIL's
 * conversion of the inverted values; 2 components are refused, as PIL
 * refuses them.  Quality 100 on smooth ramps: decoded values within 2 levels
 * of the source (measured: 0), so that a missed inversion or a swapped
 * channel shows. */
static void test_jpeg_components(void)
{
    const int w = 53, h = 47, max_error = 2;
    static const struct {
        const char *name, *file;
        int components;
        J_COLOR_SPACE space;
    } cases[] = {
        {"decode_jpeg_grey", "grey.jpg", 1, JCS_GRAYSCALE},
        {"decode_jpeg_cmyk", "cmyk.jpg", 4, JCS_CMYK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = fixture_path(cases[i].file);
        int k = cases[i].components;
        uint8_t *src = smooth_pattern(w, h, k);
        if (!src || !write_jpeg(path, src, w, h, k, cases[i].space, cases[i].space, k == 4, 100)) {
            free(src);
            jp_test_fail(cases[i].name, "cannot write fixture");
            continue;
        }
        jp_image_rgb8 img = {0};
        jp_error err = {0};
        if (jp_image_decode(path, &img, &err) != JP_OK) {
            jp_test_fail(cases[i].name, "%s", err.msg);
            free(src);
            continue;
        }
        int worst = 0, unequal = 0;
        for (int p = 0; img.w == w && img.h == h && p < w * h; p++) {
            const uint8_t *px = img.data + 3 * p, *s = src + (size_t)p * k;
            for (int c = 0; c < 3; c++) {
                int want = k == 1 ? s[0] : pil_cmyk_channel(s[c], s[3]);
                int d = abs(px[c] - want);
                worst = d > worst ? d : worst;
            }
            unequal += k == 1 && (px[0] != px[1] || px[0] != px[2]);
        }
        JP_CHECK(cases[i].name, img.w == w && img.h == h && worst <= max_error && unequal == 0,
                 "%d x %d, largest error %d levels (max %d), %d grey pixels with R, G, B unequal", img.w, img.h,
                 worst, max_error, unequal);
        if (img.w == w && img.h == h)
            printf("  %s: largest error %d levels from the source\n", cases[i].name, worst);
        jp_image_rgb8_free(&img);
        free(src);
    }

    const char *path = fixture_path("two_components.jpg");
    uint8_t *src = smooth_pattern(w, h, 2);
    if (!src || !write_jpeg(path, src, w, h, 2, JCS_UNKNOWN, JCS_UNKNOWN, false, 90))
        jp_test_fail("jpeg_2_components", "cannot write fixture");
    else
        check_load_error("jpeg_2_components", path, JP_ERR_UNSUPPORTED);
    free(src);
}

/* A file is a JPEG by its first bytes (FF D8 FF), as in PIL: JPEG bytes named
 * .png decode as the same file named .jpg does. */
static void test_jpeg_by_content(void)
{
    const char *jpg = fixture_path("content.jpg");
    const char *png = fixture_path("content-is-jpeg.png");
    uint8_t *rgb = pattern(40, 30, 3);
    size_t n = 0;
    uint8_t *bytes = NULL;
    bool ok = rgb && jpg && png && stbi_write_jpg(jpg, 40, 30, 3, rgb, 90) && (bytes = read_bytes(jpg, &n)) &&
              write_bytes(png, bytes, n);
    free(rgb);
    free(bytes);
    if (!ok) {
        jp_test_fail("jpeg_named_png", "cannot write fixture");
        return;
    }
    jp_image_rgb8 a = {0}, b = {0};
    jp_error err = {0};
    jp_status st_a = jp_image_decode(jpg, &a, &err);
    jp_status st_b = st_a == JP_OK ? jp_image_decode(png, &b, &err) : st_a;
    JP_CHECK("jpeg_named_png", st_b == JP_OK && b.w == a.w && b.h == a.h && !memcmp(a.data, b.data, (size_t)a.w * a.h * 3),
             "%s", st_b == JP_OK ? "the pixels differ" : err.msg);
    jp_image_rgb8_free(&a);
    jp_image_rgb8_free(&b);

    /* The same bytes after one more FF: stb_image would decode them (its own
     * JPEG decoder, not PIL's), PIL cannot identify the file. */
    const char *fill = fixture_path("fill-byte.jpg");
    bytes = read_bytes(jpg, &n);
    uint8_t *shifted = bytes ? malloc(n + 1) : NULL;
    if (shifted) {
        shifted[0] = 0xFF;
        memcpy(shifted + 1, bytes, n);
    }
    ok = shifted && fill && write_bytes(fill, shifted, n + 1);
    free(bytes);
    free(shifted);
    if (!ok)
        jp_test_fail("jpeg_leading_fill_byte", "cannot write fixture");
    else
        check_load_error("jpeg_leading_fill_byte", fill, JP_ERR_FORMAT);
}

/* A PNG whose header claims 15000 x 15000 pixels (2.25e8, over the limit but
 * under stb_image's own 2^30-byte one, which would hide ours), with no pixel
 * data: refused before any allocation. */
static void test_absurd_dimensions(void)
{
    static const uint8_t png[] = {
        0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n',
        0, 0, 0, 13, 'I', 'H', 'D', 'R',
        0x00, 0x00, 0x3A, 0x98, /* width 15000 */
        0x00, 0x00, 0x3A, 0x98, /* height 15000 */
        8, 2, 0, 0, 0,          /* 8-bit RGB */
        0, 0, 0, 0,             /* CRC (stb_image does not check it) */
        0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82,
    };
    const char *path = fixture_path("huge.png");
    if (!path || !write_bytes(path, png, sizeof png)) {
        jp_test_fail("absurd_dimensions", "cannot write fixture");
        return;
    }
    check_load_error("absurd_dimensions", path, JP_ERR_UNSUPPORTED);

    /* 100000 x 100000: past stb_image's own 2^30-byte limit, whose "too
     * large" it then overwrote with "unknown image type" (issue 14). */
    uint8_t bigger[sizeof png];
    memcpy(bigger, png, sizeof png);
    static const uint8_t side[4] = {0x00, 0x01, 0x86, 0xA0}; /* 100000 */
    memcpy(bigger + 16, side, 4);
    memcpy(bigger + 20, side, 4);
    const char *path2 = fixture_path("huger.png");
    if (!path2 || !write_bytes(path2, bigger, sizeof bigger)) {
        jp_test_fail("png_100000x100000_too_large", "cannot write fixture");
        return;
    }
    static float out[3 * 224 * 224];
    jp_error e2 = {0};
    jp_status s2 = jp_image_load(path2, &imagenet_pp, out, &e2);
    JP_CHECK("png_100000x100000_too_large",
             s2 == JP_ERR_UNSUPPORTED && strstr(e2.msg, "too large") && strstr(e2.msg, "100000 x 100000") &&
                 strstr(e2.msg, path2),
             "status %s: %s", jp_status_name(s2), e2.msg);

    /* 1 x 1000000 is allowed to decode, but resized to shorter side 256 it
     * would be 256 x 256000000. */
    int w = 0, h = 0;
    jp_error err = {0};
    jp_status st = jp_image_resized_size(1, 1000000, 256, &w, &h, &err);
    JP_CHECK("absurd_resize", st == JP_ERR_UNSUPPORTED, "status %s (%d x %d)", jp_status_name(st), w, h);
}

static void test_bad_preprocess(void)
{
    const char *path = fixture_path("small.png");
    uint8_t *rgb = pattern(40, 30, 3);
    if (!rgb || !path || !stbi_write_png(path, 40, 30, 3, rgb, 40 * 3)) {
        free(rgb);
        jp_test_fail("bad_preprocess", "cannot write fixture");
        return;
    }
    free(rgb);
    static float out[3 * 224 * 224];
    jp_preprocess pp = imagenet_pp;
    pp.std[1] = 0.0f;
    jp_error err = {0};
    jp_status st = jp_image_load(path, &pp, out, &err);
    bool ok = st == JP_ERR_ARG && strstr(err.msg, path) && strstr(err.msg, "std");
    pp = imagenet_pp;
    pp.resize = 0;
    jp_status st2 = jp_image_load(path, &pp, out, &err);
    JP_CHECK("bad_preprocess", ok && st2 == JP_ERR_ARG, "std 0 gave %s, resize 0 gave %s (%s)",
             jp_status_name(st), jp_status_name(st2), err.msg);
}

/* Grey and grey+alpha expand to R = G = B; RGBA drops alpha. */
static void test_channels(void)
{
    static const struct {
        const char *name;
        int channels;
    } cases[] = {{"grey.png", 1}, {"grey_alpha.png", 2}, {"rgba.png", 4}};
    const int w = 37, h = 23;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char test_name[64];
        snprintf(test_name, sizeof test_name, "decode_%d_channels", cases[i].channels);
        const char *path = fixture_path(cases[i].name);
        uint8_t *src = pattern(w, h, cases[i].channels);
        if (!src || !path || !stbi_write_png(path, w, h, cases[i].channels, src, w * cases[i].channels)) {
            free(src);
            jp_test_fail(test_name, "cannot write fixture");
            continue;
        }
        jp_image_rgb8 img = {0};
        jp_error err = {0};
        if (jp_image_decode(path, &img, &err) != JP_OK) {
            jp_test_fail(test_name, "%s", err.msg);
            free(src);
            continue;
        }
        int wrong = 0;
        for (int p = 0; p < w * h; p++)
            for (int c = 0; c < 3; c++) {
                int from = cases[i].channels <= 2 ? 0 : c;
                wrong += img.data[3 * p + c] != src[p * cases[i].channels + from];
            }
        JP_CHECK(test_name, img.w == w && img.h == h && wrong == 0, "%d x %d, %d wrong values", img.w,
                 img.h, wrong);
        jp_image_rgb8_free(&img);
        free(src);
    }
}

/* An image whose shorter side already is `resize` is not resampled (as in
 * torchvision), so the crop is a plain copy; 256 x 257 and 256 x 259 put the
 * vertical offset at 16.5 and 17.5, which Python's round takes to 16 and 18. */
static void test_crop_offsets(void)
{
    static const struct {
        int h, top;
    } cases[] = {{256, 16}, {257, 16}, {258, 17}, {259, 18}, {261, 18}};
    const int w = 256;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char test_name[64];
        snprintf(test_name, sizeof test_name, "center_crop_256x%d", cases[i].h);
        jp_image_rgb8 img = {w, cases[i].h, pattern(w, cases[i].h, 3)};
        static uint8_t out[224 * 224 * 3];
        jp_error err = {0};
        if (!img.data || jp_image_resize_crop(&img, 256, 224, out, &err) != JP_OK) {
            jp_test_fail(test_name, "%s", img.data ? err.msg : "out of memory");
            jp_image_rgb8_free(&img);
            continue;
        }
        int wrong = 0;
        for (int y = 0; y < 224; y++)
            for (int x = 0; x < 224; x++)
                for (int c = 0; c < 3; c++)
                    wrong += out[(y * 224 + x) * 3 + c] !=
                             img.data[((size_t)(y + cases[i].top) * w + x + 16) * 3 + c];
        JP_CHECK(test_name, wrong == 0, "%d values differ from the input at offset (16, %d)", wrong,
                 cases[i].top);
        jp_image_rgb8_free(&img);
    }
}

/* A flat image stays flat through any resize, and ToTensor/Normalize give
 * (v / 255 - mean) / std; a crop larger than the resized image pads with 0. */
static void test_flat_and_padding(void)
{
    const int w = 100, h = 37;
    jp_image_rgb8 img = {w, h, malloc((size_t)w * h * 3)};
    if (!img.data) {
        jp_test_fail("flat_image", "out of memory");
        return;
    }
    static const uint8_t rgb[3] = {200, 17, 255};
    for (int p = 0; p < w * h; p++)
        memcpy(img.data + 3 * p, rgb, 3);
    static float out[3 * 224 * 224];
    jp_error err = {0};
    int wrong = 0;
    if (jp_image_preprocess(&img, &imagenet_pp, out, &err) == JP_OK) {
        for (int c = 0; c < 3; c++) {
            float want = ((float)rgb[c] / 255.0f - imagenet_pp.mean[c]) / imagenet_pp.std[c];
            for (int i = 0; i < 224 * 224; i++)
                wrong += out[c * 224 * 224 + i] != want;
        }
        JP_CHECK("flat_image", wrong == 0, "%d values differ", wrong);
    } else {
        jp_test_fail("flat_image", "%s", err.msg);
    }

    /* Resize to 100 (100 x 270) then crop 224: 62 zero columns each side. */
    jp_image_rgb8 tall = {h, w, img.data};
    static uint8_t crop[224 * 224 * 3];
    wrong = 0;
    if (jp_image_resize_crop(&tall, 100, 224, crop, &err) == JP_OK) {
        for (int y = 0; y < 224; y++)
            for (int x = 0; x < 224; x++)
                for (int c = 0; c < 3; c++) {
                    uint8_t want = x >= 62 && x < 162 ? rgb[c] : 0;
                    wrong += crop[(y * 224 + x) * 3 + c] != want;
                }
        JP_CHECK("crop_padding", wrong == 0, "%d values differ", wrong);
    } else {
        jp_test_fail("crop_padding", "%s", err.msg);
    }
    jp_image_rgb8_free(&img);
}

/* ----------------------------------------------------------------- driver */

static void remove_fixtures(void)
{
    for (int i = 0; i < n_fixtures; i++)
        if (strcmp(fixtures[i], tmp_dir) != 0)
            remove(fixtures[i]);
    rmdir(tmp_dir);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "dump") == 0)
        return run_dump(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "decode") == 0)
        return run_decode(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "write-jpegs") == 0)
        return run_write_jpegs(argc, argv);
    if (argc != 1) {
        fprintf(stderr, "usage: %s | %s dump IMAGE OUT.f32 [RESIZE CROP] | %s decode IMAGE OUT.ppm"
                " | %s write-jpegs DIR\n", argv[0], argv[0], argv[0], argv[0]);
        return 2;
    }
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/jp_test_image.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        jp_test_fail("tmp_dir", "mkdtemp %s: %s", tmp_dir, strerror(errno));
        return jp_test_exit_code();
    }

    test_missing_file();
    test_text_as_jpg();
    test_empty_file();
    test_directory();
    test_truncated_png();
    test_truncated_jpeg();
    test_jpeg_cut_scan();
    test_jpeg_garbage();
    test_jpeg_absurd_dimensions();
    test_jpeg_components();
    test_jpeg_by_content();
    test_absurd_dimensions();
    test_bad_preprocess();
    test_channels();
    test_crop_offsets();
    test_flat_and_padding();

    remove_fixtures();
    return jp_test_exit_code();
}
