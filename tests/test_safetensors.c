/*
 * test_safetensors.c: engine/jp_safetensors.c against good and bad files.
 *
 * Every file is built in a fresh mkdtemp directory, removed at the end.
 * Cases: a writer/reader round trip (bytes, shapes, order, metadata); one
 * case per malformed input, each checking the status and that the message
 * names the file and the fault; writes that must fail cleanly (no directory,
 * a file as directory, a directory at the target, a file size limit hit
 * mid-write) leaving no temporary file and the old file intact; and 2000
 * random mutations of a valid file (fixed seed) that must each open
 * consistently or fail with a message.
 */
#define _XOPEN_SOURCE 700

#include "jp_safetensors.h"
#include "jp_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256];

/* g_dir/name, in one of a few rotating buffers. */
static const char *in_dir(const char *name)
{
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", g_dir, name);
    return b;
}

static bool write_bytes(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return false;
    bool ok = fwrite(p, 1, n, fp) == n;
    return fclose(fp) == 0 && ok;
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *p = malloc(size > 0 ? (size_t)size : 1);
    if (p && fread(p, 1, (size_t)size, fp) != (size_t)size) {
        free(p);
        p = NULL;
    }
    fclose(fp);
    *n = (size_t)size;
    return p;
}

static void put_u64_le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes a raw safetensors file: the length field (len_field, or the padded
 * header's length when len_field is UINT64_MAX), the header padded with
 * spaces so that the data starts 8-byte aligned (pad = false: unpadded),
 * then data_bytes bytes of a counting pattern. */
static bool make_raw(const char *path, const char *header, bool pad, uint64_t len_field,
                     size_t data_bytes)
{
    size_t h = strlen(header);
    size_t padded = h;
    while (pad && (8 + padded) % 8 != 0)
        padded++;
    size_t total = 8 + padded + data_bytes;
    unsigned char *buf = malloc(total);
    if (!buf)
        return false;
    put_u64_le(buf, len_field == UINT64_MAX ? padded : len_field);
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, ' ', padded - h);
    for (size_t i = 0; i < data_bytes; i++)
        buf[8 + padded + i] = (unsigned char)i;
    bool ok = write_bytes(path, buf, total);
    free(buf);
    return ok;
}

static bool is_zeroed(const jp_st_file *f)
{
    static const jp_st_file zero;
    return memcmp(f, &zero, sizeof zero) == 0;
}

/* Opens path, expects failure with status, a message containing the path and
 * each of the NULL-terminated words, one line, and *f left zeroed. */
static void expect_fail_v(const char *name, const char *path, jp_status status, const char **words)
{
    jp_st_file f;
    jp_error err = {JP_OK, ""};
    jp_status st = jp_st_open(path, &f, &err);
    if (st == JP_OK) {
        jp_st_close(&f);
        jp_test_fail(name, "opened, expected status %s", jp_status_name(status));
        return;
    }
    if (st != status || err.status != status) {
        jp_test_fail(name, "status %s, expected %s (message: %s)", jp_status_name(st),
                     jp_status_name(status), err.msg);
        return;
    }
    if (!strstr(err.msg, path)) {
        jp_test_fail(name, "message does not name the file: %s", err.msg);
        return;
    }
    for (const char **w = words; *w; w++) {
        if (!strstr(err.msg, *w)) {
            jp_test_fail(name, "message lacks \"%s\": %s", *w, err.msg);
            return;
        }
    }
    if (strchr(err.msg, '\n')) {
        jp_test_fail(name, "message is not one line: %s", err.msg);
        return;
    }
    if (!is_zeroed(&f)) {
        jp_test_fail(name, "jp_st_file not zeroed after a failed open");
        return;
    }
    jp_st_close(&f); /* harmless on a zeroed file */
    printf("# %s: %s\n", name, err.msg);
    jp_test_pass(name);
}

#define EXPECT_FAIL(name, path, status, ...) \
    expect_fail_v(name, path, status, (const char *[]){__VA_ARGS__, NULL})

/* Builds a raw file from a header and expects it to fail. */
#define RAW_FAIL(name, header, data_bytes, status, ...)                              \
    do {                                                                             \
        const char *p_ = in_dir(name ".safetensors");                                \
        if (!make_raw(p_, header, true, UINT64_MAX, data_bytes))                     \
            jp_test_fail(name, "cannot write %s", p_);                               \
        else                                                                         \
            EXPECT_FAIL(name, p_, status, __VA_ARGS__);                              \
        unlink(p_);                                                                  \
    } while (0)

/* Whether s is valid UTF-8 (a plain check for messages). */
static bool utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        if (!len)
            return false;
        for (int k = 1; k < len; k++)
            if ((p[k] & 0xC0) != 0x80)
                return false;
        p += len;
    }
    return true;
}

/* Whether g_dir (or its subfolder sub, when not NULL) holds a ".tmp." file. */
static bool temp_file_left(const char *sub)
{
    char path[512];
    snprintf(path, sizeof path, "%s%s%s", g_dir, sub ? "/" : "", sub ? sub : "");
    DIR *d = opendir(path);
    if (!d)
        return false;
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp."))
            found = true;
    closedir(d);
    return found;
}

/* Removes dir and everything below it. */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            struct stat sb;
            if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                chmod(path, 0700);
                remove_tree(path);
            } else {
                unlink(path);
            }
        }
        closedir(d);
    }
    rmdir(dir);
}

/* splitmix64: a fixed-seed generator, the same on every libc. */
static uint64_t g_rng = 0x5eed5afe7e750123ULL;
static uint64_t rng_next(void)
{
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static size_t rng_below(size_t n) { return n ? (size_t)(rng_next() % n) : 0; }

/* ---- round trip ---------------------------------------------------------- */

typedef struct sample {
    const char *name;
    int rank;
    int64_t dims[4];
} sample;

static const sample k_samples[] = {
    {"conv1.weight", 4, {4, 3, 3, 3}},
    {"conv1.bias", 1, {4}},
    {"odd", 1, {7}},                   /* 28 bytes: the next tensor is 4-, not 8-aligned */
    {"scalar", 0, {0}},
    {"empty", 2, {0, 5}},
    {"quote\"back\\slash \xc3\xbc\xe2\x82\xac", 2, {2, 3}},
    {"fc.weight", 2, {10, 12}},
    {"tab\tnew\nline\x01", 1, {1}}, /* control bytes: escaped in the header */
};
#define N_SAMPLES (sizeof k_samples / sizeof k_samples[0])

static int64_t numel_of(const sample *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dims[i];
    return n;
}

static void test_round_trip(void)
{
    const char *name = "round_trip";
    const char *path = in_dir("round.safetensors");
    float *bufs[N_SAMPLES];
    jp_st_writer w;
    jp_error err = {JP_OK, ""};
    jp_st_writer_init(&w);
    bool ok = true;

    for (size_t i = 0; i < N_SAMPLES; i++) {
        int64_t n = numel_of(&k_samples[i]);
        bufs[i] = malloc((size_t)(n ? n : 1) * sizeof(float));
        for (int64_t k = 0; k < n; k++)
            bufs[i][k] = (float)(i * 1000 + (size_t)k) * 0.25f - 3.0f;
        /* every other tensor copied, the rest borrowed */
        jp_status st = (i % 2)
            ? jp_st_writer_add_copy(&w, k_samples[i].name, k_samples[i].rank, k_samples[i].dims,
                                    n ? bufs[i] : NULL, &err)
            : jp_st_writer_add(&w, k_samples[i].name, k_samples[i].rank, k_samples[i].dims,
                               bufs[i], &err);
        if (st != JP_OK) {
            jp_test_fail(name, "add %s: %s", k_samples[i].name, err.msg);
            ok = false;
        }
    }
    jp_st_writer_set_metadata(&w, "model", "resnet18", &err);
    jp_st_writer_set_metadata(&w, "sha256", "placeholder", &err);
    jp_st_writer_set_metadata(&w, "torchvision_version", "0.14.1", &err);
    if (jp_st_writer_set_metadata(&w, "sha256", "0123abcd", &err) != JP_OK) { /* replaces */
        jp_test_fail(name, "set_metadata: %s", err.msg);
        ok = false;
    }
    /* a copied tensor must not see later changes of its source */
    float copied_first = bufs[1][0];
    if (ok && jp_st_writer_write(&w, path, &err) != JP_OK) {
        jp_test_fail(name, "write: %s", err.msg);
        ok = false;
    }
    bufs[1][0] = 1e9f;
    /* writing a second time over the first works and gives the same file */
    if (ok && jp_st_writer_write(&w, path, &err) != JP_OK) {
        jp_test_fail(name, "second write: %s", err.msg);
        ok = false;
    }
    bufs[1][0] = copied_first;

    jp_st_file f;
    if (ok && jp_st_open(path, &f, &err) != JP_OK) {
        jp_test_fail(name, "open: %s", err.msg);
        ok = false;
    }
    if (ok) {
        char why[512] = "";
        if (jp_st_count(&f) != N_SAMPLES)
            snprintf(why, sizeof why, "%zu tensors, expected %zu", jp_st_count(&f), N_SAMPLES);
        if ((8 + f.header_bytes) % 8 != 0)
            snprintf(why, sizeof why, "data starts at %" PRIu64 ", not 8-aligned", 8 + f.header_bytes);
        if (f.map[8] != '{')
            snprintf(why, sizeof why, "header does not start with '{'");
        uint64_t total = 0;
        for (size_t i = 0; i < N_SAMPLES && !why[0]; i++) {
            const sample *s = &k_samples[i];
            const jp_st_tensor *t = jp_st_at(&f, i);
            int64_t n = numel_of(s);
            if (!t || strcmp(t->name, s->name) != 0) {
                snprintf(why, sizeof why, "tensor %zu is \"%s\", expected \"%s\" (insertion order)",
                         i, t ? t->name : "(null)", s->name);
                break;
            }
            if (jp_st_find(&f, s->name) != t)
                snprintf(why, sizeof why, "find(\"%s\") does not return it", s->name);
            if (t->rank != s->rank || memcmp(t->dims, s->dims, (size_t)s->rank * sizeof(int64_t)))
                snprintf(why, sizeof why, "%s: shape differs", s->name);
            if (t->numel != n || t->size_bytes != (uint64_t)n * 4)
                snprintf(why, sizeof why, "%s: numel %" PRId64 ", expected %" PRId64, s->name,
                         t->numel, n);
            if (n && memcmp(t->data, bufs[i], (size_t)n * 4) != 0)
                snprintf(why, sizeof why, "%s: data differs", s->name);
            if ((uintptr_t)t->data % 4 != 0)
                snprintf(why, sizeof why, "%s: data not 4-aligned", s->name);
            if (t->offset_bytes != total)
                snprintf(why, sizeof why, "%s: offset %" PRIu64 ", expected %" PRIu64, s->name,
                         t->offset_bytes, total);
            total += t->size_bytes;
        }
        if (!why[0] && 8 + f.header_bytes + total != f.map_bytes)
            snprintf(why, sizeof why, "file is %zu bytes, expected %" PRIu64, f.map_bytes,
                     8 + f.header_bytes + total);
        const char *sha = jp_st_metadata(&f, "sha256");
        const char *model = jp_st_metadata(&f, "model");
        if (!why[0] && (!sha || strcmp(sha, "0123abcd") || !model || strcmp(model, "resnet18")))
            snprintf(why, sizeof why, "metadata sha256=%s model=%s", sha ? sha : "(null)",
                     model ? model : "(null)");
        if (!why[0] && (jp_st_metadata_count(&f) != 3 ||
                        strcmp(jp_st_metadata_at(&f, 2)->key, "torchvision_version") != 0))
            snprintf(why, sizeof why, "metadata count or order wrong");
        if (!why[0] && (jp_st_find(&f, "CONV1.WEIGHT") || jp_st_find(&f, "conv1") ||
                        jp_st_metadata(&f, "MODEL") || jp_st_find(&f, "__metadata__")))
            snprintf(why, sizeof why, "lookup is not exact and case-sensitive");
        if (!why[0] && (jp_st_at(&f, N_SAMPLES) || jp_st_metadata_at(&f, 3)))
            snprintf(why, sizeof why, "out-of-range index returns non-NULL");
        if (!why[0] && temp_file_left(NULL))
            snprintf(why, sizeof why, "a temporary file was left beside %s", path);
        JP_CHECK(name, !why[0], "%s", why);

        /* jp_st_require: found, missing, wrong shape */
        const jp_st_tensor *t = NULL;
        int64_t good[4] = {4, 3, 3, 3}, bad[4] = {4, 3, 5, 5};
        jp_status s1 = jp_st_require(&f, "conv1.weight", 4, good, &t, &err);
        JP_CHECK("require_found", s1 == JP_OK && t == jp_st_at(&f, 0), "%s", err.msg);
        jp_status s2 = jp_st_require(&f, "conv2.weight", 4, good, &t, &err);
        JP_CHECK("require_missing", s2 == JP_ERR_MISSING && t == NULL && strstr(err.msg, path) &&
                 strstr(err.msg, "conv2.weight") && strstr(err.msg, "missing"), "%s", err.msg);
        jp_status s3 = jp_st_require(&f, "conv1.weight", 4, bad, &t, &err);
        JP_CHECK("require_shape", s3 == JP_ERR_SHAPE && strstr(err.msg, "[4, 3, 3, 3]") &&
                 strstr(err.msg, "[4, 3, 5, 5]"), "%s", err.msg);
        jp_st_close(&f);
        JP_CHECK("close_zeroes", is_zeroed(&f), "jp_st_close left fields set");
        jp_st_close(&f);
    }
    jp_st_writer_free(&w);
    for (size_t i = 0; i < N_SAMPLES; i++)
        free(bufs[i]);
    unlink(path);
}

/* Many tensors, written in non-sorted order: the name index and tiling. */
static void test_many_tensors(void)
{
    const char *name = "many_tensors";
    const char *path = in_dir("many.safetensors");
    enum { N = 600 };
    jp_st_writer w;
    jp_error err = {JP_OK, ""};
    jp_st_writer_init(&w);
    float vals[N];
    bool ok = true;
    for (int i = 0; i < N && ok; i++) {
        char tname[32];
        snprintf(tname, sizeof tname, "layer%d.out", (i * 7919) % N);
        int64_t dims[1] = {1};
        vals[i] = (float)i;
        ok = jp_st_writer_add(&w, tname, 1, dims, &vals[i], &err) == JP_OK;
    }
    jp_st_file f;
    if (!ok || jp_st_writer_write(&w, path, &err) != JP_OK || jp_st_open(path, &f, &err) != JP_OK) {
        jp_test_fail(name, "%s", err.msg);
    } else {
        char why[256] = "";
        for (int i = 0; i < N && !why[0]; i++) {
            char tname[32];
            snprintf(tname, sizeof tname, "layer%d.out", (i * 7919) % N);
            const jp_st_tensor *t = jp_st_find(&f, tname);
            if (!t || t->data[0] != (float)i || t != jp_st_at(&f, (size_t)i))
                snprintf(why, sizeof why, "%s wrong", tname);
        }
        JP_CHECK(name, !why[0], "%s", why);
        jp_st_close(&f);
    }
    jp_st_writer_free(&w);
    unlink(path);
}

/* Files in the reference implementation's style that must open. */
static void test_accepts(void)
{
    const char *p = in_dir("ok.safetensors");
    jp_st_file f;
    jp_error err = {JP_OK, ""};

    /* no tensors at all */
    make_raw(p, "{}", true, UINT64_MAX, 0);
    jp_status st = jp_st_open(p, &f, &err);
    JP_CHECK("accept_empty_header", st == JP_OK && jp_st_count(&f) == 0 && f.data_bytes == 0,
             "%s", err.msg);
    jp_st_close(&f);

    /* metadata first, keys out of order, whitespace, empty tensors sharing an offset */
    make_raw(p, "{\"__metadata__\": {\"format\": \"pt\"}, \"b\": {\"shape\": [2], \"dtype\": "
                "\"F32\", \"data_offsets\": [16, 24]},\n \"a\": {\"dtype\": \"F32\", \"shape\": "
                "[2, 2], \"data_offsets\": [0, 16]}, \"e1\": {\"dtype\": \"F32\", \"shape\": [0], "
                "\"data_offsets\": [16, 16]}, \"e2\": {\"dtype\": \"F32\", \"shape\": [3, 0], "
                "\"data_offsets\": [16, 16]}}",
             true, UINT64_MAX, 24);
    st = jp_st_open(p, &f, &err);
    bool ok = st == JP_OK && jp_st_count(&f) == 4 && strcmp(jp_st_at(&f, 0)->name, "b") == 0 &&
              jp_st_find(&f, "a") && jp_st_find(&f, "a")->offset_bytes == 0 &&
              jp_st_find(&f, "e2")->numel == 0 && jp_st_metadata(&f, "format") &&
              strcmp(jp_st_metadata(&f, "format"), "pt") == 0;
    JP_CHECK("accept_reference_style", ok, "%s", st == JP_OK ? "wrong contents" : err.msg);
    jp_st_close(&f);

    /* an escaped backslash followed by u0000 is not an escaped NUL */
    make_raw(p, "{\"a\\\\u0000\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]}}",
             true, UINT64_MAX, 4);
    st = jp_st_open(p, &f, &err);
    JP_CHECK("accept_escaped_backslash", st == JP_OK && jp_st_find(&f, "a\\u0000"), "%s", err.msg);
    jp_st_close(&f);
    unlink(p);
}

/* ---- bad inputs ---------------------------------------------------------- */

static void test_truncations(void)
{
    const char *good = in_dir("good.safetensors");
    const char *cut = in_dir("cut.safetensors");
    jp_st_writer w;
    jp_error err = {JP_OK, ""};
    float a[64], b[16];
    for (int i = 0; i < 64; i++)
        a[i] = (float)i;
    for (int i = 0; i < 16; i++)
        b[i] = (float)-i;
    int64_t da[2] = {8, 8}, db[1] = {16};
    jp_st_writer_init(&w);
    jp_st_writer_add(&w, "a", 2, da, a, &err);
    jp_st_writer_add(&w, "b", 1, db, b, &err);
    jp_st_writer_set_metadata(&w, "model", "test", &err);
    if (jp_st_writer_write(&w, good, &err) != JP_OK) {
        jp_test_fail("truncations", "%s", err.msg);
        jp_st_writer_free(&w);
        return;
    }
    jp_st_writer_free(&w);
    size_t n = 0;
    unsigned char *bytes = read_bytes(good, &n);
    uint64_t header = 0;
    for (int i = 0; i < 8; i++)
        header |= (uint64_t)bytes[i] << (8 * i);

    write_bytes(cut, bytes, 0);
    EXPECT_FAIL("truncated_0_bytes", cut, JP_ERR_FORMAT, "0 bytes", "shorter");
    write_bytes(cut, bytes, 4);
    EXPECT_FAIL("truncated_4_bytes", cut, JP_ERR_FORMAT, "4 bytes", "shorter");
    write_bytes(cut, bytes, 8);
    EXPECT_FAIL("truncated_after_length", cut, JP_ERR_FORMAT, "header length", "exceeds file size");
    write_bytes(cut, bytes, 8 + (size_t)header / 2);
    EXPECT_FAIL("truncated_mid_header", cut, JP_ERR_FORMAT, "header length", "exceeds file size");
    write_bytes(cut, bytes, 8 + (size_t)header + 100);
    EXPECT_FAIL("truncated_mid_data", cut, JP_ERR_FORMAT, "tensor \"a\"", "beyond the data buffer");
    write_bytes(cut, bytes, n - 4);
    EXPECT_FAIL("truncated_last_float", cut, JP_ERR_FORMAT, "tensor \"b\"", "beyond the data buffer");

    /* an extra byte at the end */
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, bytes, n);
    longer[n] = 0;
    write_bytes(cut, longer, n + 1);
    EXPECT_FAIL("trailing_byte", cut, JP_ERR_FORMAT, "1 bytes after the last tensor");
    free(longer);

    /* the length field claims more than the file holds */
    put_u64_le(bytes, 9000000);
    write_bytes(cut, bytes, n);
    EXPECT_FAIL("header_length_beyond_file", cut, JP_ERR_FORMAT, "header length 9000000",
                "exceeds file size");
    put_u64_le(bytes, UINT64_MAX);
    write_bytes(cut, bytes, n);
    EXPECT_FAIL("header_length_u64_max", cut, JP_ERR_FORMAT, "18446744073709551615",
                "exceeds file size");
    free(bytes);
    unlink(good);
    unlink(cut);
}

static void test_absurd_header_length(void)
{
    /* A sparse file just over 100 MiB: the length field says 100 MiB + 8,
     * which fits in the file but passes the limit. */
    const char *name = "header_length_over_100MiB";
    const char *p = in_dir("absurd.safetensors");
    uint64_t claimed = ((uint64_t)100 << 20) + 8;
    unsigned char len[8];
    put_u64_le(len, claimed);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    bool ok = fd >= 0 && write(fd, len, 8) == 8 && ftruncate(fd, (off_t)(8 + claimed + 16)) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok)
        jp_test_skip(name, "cannot create a %" PRIu64 "-byte sparse file: %s", claimed, strerror(errno));
    else
        EXPECT_FAIL(name, p, JP_ERR_FORMAT, "header length 104857608", "100 MiB");
    unlink(p);
}

#define T32(name, shape, offsets) \
    "\"" name "\": {\"dtype\": \"F32\", \"shape\": " shape ", \"data_offsets\": " offsets "}"

static void test_bad_headers(void)
{
    RAW_FAIL("offset_out_of_range", "{" T32("a", "[100]", "[0, 400]") "}", 16, JP_ERR_FORMAT,
             "tensor \"a\"", "[0, 400]", "beyond the data buffer");
    RAW_FAIL("offsets_size_mismatch", "{" T32("w", "[2, 2]", "[0, 12]") "}", 16, JP_ERR_FORMAT,
             "tensor \"w\"", "span 12 bytes", "does not match shape [2, 2]");
    RAW_FAIL("offsets_begin_after_end", "{" T32("w", "[4]", "[16, 0]") "}", 16, JP_ERR_FORMAT,
             "tensor \"w\"", "begin is after end");
    RAW_FAIL("offsets_three_numbers", "{" T32("w", "[4]", "[0, 16, 32]") "}", 16, JP_ERR_FORMAT,
             "tensor \"w\"", "data_offsets", "[begin, end]");
    RAW_FAIL("offsets_not_list", "{" T32("w", "[4]", "16") "}", 16, JP_ERR_FORMAT,
             "tensor \"w\"", "data_offsets is a number");
    RAW_FAIL("offset_negative", "{" T32("w", "[4]", "[-16, 0]") "}", 16, JP_ERR_FORMAT,
             "tensor \"w\"", "data_offsets[0]", "negative");
    RAW_FAIL("offset_huge", "{" T32("w", "[4]", "[0, 1e300]") "}", 16, JP_ERR_FORMAT,
             "tensor \"w\"", "data_offsets[1]", "too large");
    RAW_FAIL("duplicate_tensor_name",
             "{" T32("w", "[2]", "[0, 8]") ", " T32("w", "[2]", "[8, 16]") "}", 16, JP_ERR_FORMAT,
             "tensor \"w\"", "duplicate tensor name");
    /* names that differ only in case are two tensors, and fine */
    {
        const char *p = in_dir("case.safetensors");
        make_raw(p, "{" T32("w", "[2]", "[0, 8]") ", " T32("W", "[2]", "[8, 16]") "}", true,
                 UINT64_MAX, 16);
        jp_st_file f;
        jp_error err = {JP_OK, ""};
        jp_status st = jp_st_open(p, &f, &err);
        JP_CHECK("names_case_sensitive", st == JP_OK && jp_st_find(&f, "w")->offset_bytes == 0 &&
                 jp_st_find(&f, "W")->offset_bytes == 8, "%s", err.msg);
        jp_st_close(&f);
        unlink(p);
    }
    RAW_FAIL("dtype_F16", "{\"h\": {\"dtype\": \"F16\", \"shape\": [4], \"data_offsets\": [0, 8]}}",
             8, JP_ERR_UNSUPPORTED, "tensor \"h\"", "dtype \"F16\"", "not supported");
    RAW_FAIL("dtype_I64", "{\"n\": {\"dtype\": \"I64\", \"shape\": [], \"data_offsets\": [0, 8]}}",
             8, JP_ERR_UNSUPPORTED, "tensor \"n\"", "dtype \"I64\"", "not supported");
    RAW_FAIL("dtype_BF16", "{\"h\": {\"dtype\": \"BF16\", \"shape\": [4], \"data_offsets\": [0, 8]}}",
             8, JP_ERR_UNSUPPORTED, "tensor \"h\"", "dtype \"BF16\"");
    RAW_FAIL("dtype_lowercase", "{\"h\": {\"dtype\": \"f32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
             4, JP_ERR_UNSUPPORTED, "tensor \"h\"", "dtype \"f32\"");
    RAW_FAIL("dtype_not_string", "{\"h\": {\"dtype\": 32, \"shape\": [1], \"data_offsets\": [0, 4]}}",
             4, JP_ERR_FORMAT, "tensor \"h\"", "dtype is a number");
    RAW_FAIL("negative_dimension", "{" T32("w", "[2, -3]", "[0, 24]") "}", 24, JP_ERR_FORMAT,
             "tensor \"w\"", "shape[1]", "negative");
    RAW_FAIL("fractional_dimension", "{" T32("w", "[2.5]", "[0, 8]") "}", 8, JP_ERR_FORMAT,
             "tensor \"w\"", "shape[0]", "not an integer");
    RAW_FAIL("dimension_not_number", "{" T32("w", "[\"2\"]", "[0, 8]") "}", 8, JP_ERR_FORMAT,
             "tensor \"w\"", "shape[0] is a string");
    RAW_FAIL("shape_not_list", "{" T32("w", "4", "[0, 16]") "}", 16, JP_ERR_FORMAT,
             "tensor \"w\"", "shape is a number");
    RAW_FAIL("rank_5", "{" T32("w", "[1, 1, 1, 1, 1]", "[0, 4]") "}", 4, JP_ERR_UNSUPPORTED,
             "tensor \"w\"", "rank 5");
    RAW_FAIL("numel_overflow", "{" T32("w", "[4294967296, 4294967296]", "[0, 0]") "}", 0,
             JP_ERR_FORMAT, "tensor \"w\"", "overflows");
    RAW_FAIL("missing_dtype", "{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
             JP_ERR_FORMAT, "tensor \"w\"", "missing field \"dtype\"");
    RAW_FAIL("missing_offsets", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4,
             JP_ERR_FORMAT, "tensor \"w\"", "missing field \"data_offsets\"");
    RAW_FAIL("field_twice", "{\"w\": {\"dtype\": \"F32\", \"dtype\": \"F32\", \"shape\": [1], "
             "\"data_offsets\": [0, 4]}}", 4, JP_ERR_FORMAT, "tensor \"w\"", "\"dtype\" appears twice");
    RAW_FAIL("unknown_field", "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offset\": "
             "[0, 4]}}", 4, JP_ERR_FORMAT, "tensor \"w\"", "unknown field \"data_offset\"");
    RAW_FAIL("entry_not_object", "{\"w\": [1, 2]}", 0, JP_ERR_FORMAT, "tensor \"w\"",
             "entry is a list");
    RAW_FAIL("empty_tensor_name", "{" T32("", "[1]", "[0, 4]") "}", 4, JP_ERR_FORMAT, "empty name");
    RAW_FAIL("header_not_json", "{not json at all}", 0, JP_ERR_FORMAT, "not valid JSON");
    RAW_FAIL("header_unterminated", "{\"w\": {\"dtype\": \"F32\"", 0, JP_ERR_FORMAT, "not valid JSON");
    RAW_FAIL("header_not_object", "[1, 2, 3]", 0, JP_ERR_FORMAT, "does not start with '{'");
    RAW_FAIL("header_trailing_garbage", "{} x", 0, JP_ERR_FORMAT, "not valid JSON",
             "after the object");
    RAW_FAIL("header_bad_utf8", "{\"w\xff\": {}}", 0, JP_ERR_FORMAT, "not valid UTF-8", "0xff");
    RAW_FAIL("header_overlong_utf8", "{\"w\xc0\xaf\": {}}", 0, JP_ERR_FORMAT, "not valid UTF-8");
    RAW_FAIL("header_escaped_nul", "{\"a\\u0000b\": {\"dtype\": \"F32\", \"shape\": [1], "
             "\"data_offsets\": [0, 4]}}", 4, JP_ERR_FORMAT, "escaped NUL");
    RAW_FAIL("overlapping_offsets",
             "{" T32("a", "[4]", "[0, 16]") ", " T32("b", "[4]", "[8, 24]") "}", 24, JP_ERR_FORMAT,
             "tensor \"b\"", "overlap", "\"a\" [0, 16]");
    RAW_FAIL("identical_offsets",
             "{" T32("a", "[4]", "[0, 16]") ", " T32("b", "[4]", "[0, 16]") "}", 16, JP_ERR_FORMAT,
             "overlap");
    RAW_FAIL("hole_between_tensors",
             "{" T32("a", "[4]", "[0, 16]") ", " T32("b", "[4]", "[24, 40]") "}", 40, JP_ERR_FORMAT,
             "[16, 24)", "belong to no tensor");
    RAW_FAIL("metadata_not_string", "{\"__metadata__\": {\"epochs\": 3}}", 0, JP_ERR_FORMAT,
             "__metadata__ \"epochs\"", "a number", "must be strings");
    RAW_FAIL("metadata_not_object", "{\"__metadata__\": \"x\"}", 0, JP_ERR_FORMAT,
             "\"__metadata__\" is a string");
    RAW_FAIL("metadata_duplicate_key", "{\"__metadata__\": {\"k\": \"1\", \"k\": \"2\"}}", 0,
             JP_ERR_FORMAT, "\"k\"", "duplicate key");
    RAW_FAIL("metadata_twice", "{\"__metadata__\": {}, \"__metadata__\": {}}", 0, JP_ERR_FORMAT,
             "\"__metadata__\" appears twice");

    RAW_FAIL("header_utf8_surrogate", "{\"w\xed\xa0\x80\": {}}", 0, JP_ERR_FORMAT,
             "not valid UTF-8");
    /* a long multi-byte name is cut, at a character boundary, in the message */
    {
        const char *name = "long_name_in_message";
        const char *p = in_dir("long.safetensors");
        char header[2048];
        int n = snprintf(header, sizeof header, "{\"");
        for (int i = 0; i < 300; i++)
            n += snprintf(header + n, sizeof header - (size_t)n, "\xc3\xa9");
        snprintf(header + n, sizeof header - (size_t)n,
                 "\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 4]}}");
        make_raw(p, header, true, UINT64_MAX, 4);
        jp_st_file f;
        jp_error err = {JP_OK, ""};
        jp_status st = jp_st_open(p, &f, &err);
        const char *dots = strstr(err.msg, "...");
        JP_CHECK(name, st == JP_ERR_UNSUPPORTED && dots && utf8_ok(err.msg) &&
                 strstr(err.msg, "dtype \"F16\"") && strlen(err.msg) < JP_ERROR_MSG_BYTES - 1,
                 "%s", err.msg);
        unlink(p);
    }
    /* header length 0 */
    {
        const char *p = in_dir("zero_len.safetensors");
        make_raw(p, "", false, 0, 8);
        EXPECT_FAIL("header_length_zero", p, JP_ERR_FORMAT, "header length is 0");
        unlink(p);
    }
    /* a NUL byte inside the header */
    {
        const char *p = in_dir("nul.safetensors");
        unsigned char buf[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', 0, ' ', ' ', ' ', ' '};
        write_bytes(p, buf, sizeof buf);
        EXPECT_FAIL("header_nul_byte", p, JP_ERR_FORMAT, "NUL byte at header offset 3");
        unlink(p);
    }
    /* unpadded header: F32 data at a file offset that is not a multiple of 4 */
    {
        const char *p = in_dir("misaligned.safetensors");
        const char *h = "{" T32("w", "[1]", "[0, 4]") "}";
        size_t len = strlen(h);
        char padded[256];
        snprintf(padded, sizeof padded, "%s%*s", h, (int)((8 - (len + 8) % 8) % 8 + 2), "");
        make_raw(p, padded, false, UINT64_MAX, 4); /* 8 + header length = 2 (mod 8) */
        EXPECT_FAIL("data_misaligned", p, JP_ERR_UNSUPPORTED, "tensor \"w\"", "not 4-byte aligned");
        unlink(p);
    }
    /* not a file, no file */
    EXPECT_FAIL("path_is_directory", g_dir, JP_ERR_IO, "not a regular file");
    EXPECT_FAIL("file_missing", in_dir("does-not-exist.safetensors"), JP_ERR_MISSING,
                "No such file");
}

/* ---- writes that must fail cleanly --------------------------------------- */

static void check_write_fails(const char *name, const char *path, const char *sub_for_temp,
                              const char *word)
{
    jp_st_writer w;
    jp_error err = {JP_OK, ""};
    float x[4] = {1, 2, 3, 4};
    int64_t dims[1] = {4};
    jp_st_writer_init(&w);
    jp_st_writer_add(&w, "x", 1, dims, x, &err);
    jp_status st = jp_st_writer_write(&w, path, &err);
    jp_st_writer_free(&w);
    if (st != JP_ERR_IO)
        jp_test_fail(name, "status %s, expected io (%s)", jp_status_name(st), err.msg);
    else if (!strstr(err.msg, path) || !strstr(err.msg, word))
        jp_test_fail(name, "message lacks the path or \"%s\": %s", word, err.msg);
    else if (temp_file_left(sub_for_temp))
        jp_test_fail(name, "a temporary file was left behind");
    else {
        printf("# %s: %s\n", name, err.msg);
        jp_test_pass(name);
    }
}

static void test_write_failures(void)
{
    check_write_fails("write_missing_directory", in_dir("no/such/dir/x.safetensors"), NULL,
                      "No such file or directory");

    const char *plain = in_dir("plain.txt");
    write_bytes(plain, "x", 1);
    check_write_fails("write_parent_is_file", in_dir("plain.txt/x.safetensors"), NULL,
                      "Not a directory");
    unlink(plain);

    /* the target is a directory: the temporary file is written, rename fails */
    const char *target_dir = in_dir("target_is_dir");
    mkdir(target_dir, 0700);
    check_write_fails("write_target_is_directory", target_dir, NULL, "rename");
    rmdir(target_dir);

    /* a path without a directory part: written relative to the current one */
    {
        const char *name = "write_relative_path";
        char cwd[1024];
        jp_st_writer w;
        jp_error err = {JP_OK, ""};
        float x[1] = {42};
        int64_t d[1] = {1};
        jp_st_writer_init(&w);
        jp_st_writer_add(&w, "x", 1, d, x, &err);
        jp_st_file f;
        bool ok = getcwd(cwd, sizeof cwd) && chdir(g_dir) == 0 &&
                  jp_st_writer_write(&w, "rel.safetensors", &err) == JP_OK &&
                  jp_st_open("rel.safetensors", &f, &err) == JP_OK;
        if (ok) {
            ok = jp_st_find(&f, "x") && jp_st_find(&f, "x")->data[0] == 42.0f;
            jp_st_close(&f);
        }
        unlink("rel.safetensors");
        if (chdir(cwd) != 0)
            ok = false;
        JP_CHECK(name, ok && !temp_file_left(NULL), "%s", err.msg);
        jp_st_writer_free(&w);
    }

    /* a read-only directory */
    const char *ro = in_dir("readonly");
    mkdir(ro, 0500);
    if (geteuid() == 0)
        jp_test_skip("write_readonly_directory", "running as root, which ignores directory "
                     "permissions");
    else
        check_write_fails("write_readonly_directory", in_dir("readonly/x.safetensors"), "readonly",
                          "Permission denied");
    rmdir(ro);

    /* the disk fills mid-write (simulated with RLIMIT_FSIZE, SIGXFSZ ignored):
     * the write fails, the temporary file goes, the old file stays */
    const char *name = "write_disk_full";
    const char *path = in_dir("full.safetensors");
    jp_st_writer w;
    jp_error err = {JP_OK, ""};
    float small[2] = {5, 6};
    int64_t d_small[1] = {2};
    jp_st_writer_init(&w);
    jp_st_writer_add(&w, "old", 1, d_small, small, &err);
    jp_status st = jp_st_writer_write(&w, path, &err);
    jp_st_writer_free(&w);
    struct rlimit saved;
    if (st != JP_OK || getrlimit(RLIMIT_FSIZE, &saved) != 0) {
        jp_test_fail(name, "setup: %s", err.msg);
        return;
    }
    enum { BIG = 1 << 18 };
    float *big = calloc(BIG, sizeof(float));
    int64_t d_big[1] = {BIG};
    jp_st_writer_init(&w);
    jp_st_writer_add(&w, "big", 1, d_big, big, &err);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit limited = saved;
    limited.rlim_cur = 64 * 1024;
    if (setrlimit(RLIMIT_FSIZE, &limited) != 0) {
        jp_test_skip(name, "setrlimit(RLIMIT_FSIZE): %s", strerror(errno));
        st = JP_OK;
    } else {
        st = jp_st_writer_write(&w, path, &err);
        setrlimit(RLIMIT_FSIZE, &saved);
        jp_st_file f;
        jp_error err2 = {JP_OK, ""};
        bool old_intact = jp_st_open(path, &f, &err2) == JP_OK && jp_st_count(&f) == 1 &&
                          jp_st_find(&f, "old") && jp_st_find(&f, "old")->data[1] == 6.0f;
        jp_st_close(&f);
        if (st != JP_ERR_IO || !strstr(err.msg, path) || !strstr(err.msg, "File too large"))
            jp_test_fail(name, "status %s: %s", jp_status_name(st), err.msg);
        else if (temp_file_left(NULL))
            jp_test_fail(name, "a temporary file was left behind");
        else if (!old_intact)
            jp_test_fail(name, "the old file was damaged: %s", err2.msg);
        else {
            printf("# %s: %s\n", name, err.msg);
            jp_test_pass(name);
        }
    }
    signal(SIGXFSZ, old_handler);
    jp_st_writer_free(&w);
    free(big);
    unlink(path);
}

static void test_writer_rejects(void)
{
    jp_st_writer w;
    jp_error err = {JP_OK, ""};
    float x[4] = {0};
    int64_t d4[1] = {4}, dneg[2] = {2, -1}, d5[5] = {1, 1, 1, 1, 1};
    jp_st_writer_init(&w);
    jp_st_writer_add(&w, "x", 1, d4, x, &err);
    jp_status s1 = jp_st_writer_add(&w, "x", 1, d4, x, &err);
    JP_CHECK("writer_duplicate_name", s1 == JP_ERR_ARG && strstr(err.msg, "added twice"), "%s", err.msg);
    jp_status s2 = jp_st_writer_add(&w, "__metadata__", 1, d4, x, &err);
    JP_CHECK("writer_reserved_name", s2 == JP_ERR_ARG && strstr(err.msg, "reserved"), "%s", err.msg);
    jp_status s3 = jp_st_writer_add(&w, "n", 2, dneg, x, &err);
    JP_CHECK("writer_negative_dim", s3 == JP_ERR_ARG && strstr(err.msg, "negative"), "%s", err.msg);
    jp_status s4 = jp_st_writer_add(&w, "r", 5, d5, x, &err);
    JP_CHECK("writer_rank_5", s4 == JP_ERR_ARG && strstr(err.msg, "rank 5"), "%s", err.msg);
    jp_status s5 = jp_st_writer_add(&w, "bad\xff", 1, d4, x, &err);
    JP_CHECK("writer_bad_utf8", s5 == JP_ERR_ARG && strstr(err.msg, "UTF-8"), "%s", err.msg);
    jp_status s6 = jp_st_writer_add(&w, "nodata", 1, d4, NULL, &err);
    JP_CHECK("writer_null_data", s6 == JP_ERR_ARG && strstr(err.msg, "no data"), "%s", err.msg);
    JP_CHECK("writer_unchanged_after_errors", w.n_tensors == 1, "%zu tensors", w.n_tensors);
    jp_st_writer_free(&w);
}

/* ---- fuzz ---------------------------------------------------------------- */

/* Checks every invariant jp_st_open promises; returns a reason or NULL. */
static const char *check_consistent(const jp_st_file *f, volatile double *sink)
{
    if (8 + f->header_bytes + f->data_bytes != f->map_bytes)
        return "sizes do not add up";
    const unsigned char *data_start = f->map + 8 + f->header_bytes;
    const unsigned char *map_end = f->map + f->map_bytes;
    uint64_t covered = 0;
    for (size_t i = 0; i < jp_st_count(f); i++) {
        const jp_st_tensor *t = jp_st_at(f, i);
        if (t->rank < 0 || t->rank > JP_ST_MAX_RANK)
            return "rank out of range";
        int64_t n = 1;
        for (int d = 0; d < t->rank; d++) {
            if (t->dims[d] < 0)
                return "negative dim";
            n *= t->dims[d];
        }
        if (n != t->numel || t->size_bytes != (uint64_t)n * 4)
            return "numel or size wrong";
        const unsigned char *p = (const unsigned char *)t->data;
        if (p < data_start || p > map_end || (size_t)(map_end - p) < t->size_bytes)
            return "data outside the mapping";
        if (p != data_start + t->offset_bytes)
            return "data pointer does not match offset";
        if ((uintptr_t)p % 4)
            return "data misaligned";
        if (jp_st_find(f, t->name) != t)
            return "find does not return the tensor";
        for (int64_t k = 0; k < n; k++) /* touch every byte (valgrind sees it) */
            *sink += t->data[k];
        covered += t->size_bytes;
    }
    if (covered != f->data_bytes)
        return "tensors do not tile the data buffer";
    for (size_t i = 0; i < jp_st_metadata_count(f); i++) {
        const jp_st_kv *kv = jp_st_metadata_at(f, i);
        if (!kv->key || !kv->value || jp_st_metadata(f, kv->key) != kv->value)
            return "metadata inconsistent";
    }
    return NULL;
}

static void test_fuzz(void)
{
    const char *name = "fuzz_2000_mutations";
    const char *base_path = in_dir("fuzz_base.safetensors");
    const char *path = in_dir("fuzz.safetensors");
    jp_st_writer w;
    jp_error err = {JP_OK, ""};
    float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {7, 8, 9}, c[1] = {10};
    int64_t da[2] = {2, 3}, db[1] = {3};
    jp_st_writer_init(&w);
    jp_st_writer_add(&w, "a.weight", 2, da, a, &err);
    jp_st_writer_add(&w, "b", 1, db, b, &err);
    jp_st_writer_add(&w, "c", 0, NULL, c, &err);
    jp_st_writer_set_metadata(&w, "model", "fuzz", &err);
    jp_status st = jp_st_writer_write(&w, base_path, &err);
    jp_st_writer_free(&w);
    size_t n = 0;
    unsigned char *base = st == JP_OK ? read_bytes(base_path, &n) : NULL;
    if (!base) {
        jp_test_fail(name, "cannot build the base file: %s", err.msg);
        return;
    }
    size_t header_end = 8 + (size_t)base[0] + ((size_t)base[1] << 8);
    static const char json_chars[] = "0123456789-+.eE[]{}\",: \\u";
    unsigned char *buf = malloc(n + 64);
    int opened = 0, refused = 0;
    volatile double sink = 0;
    char why[1200] = "";

    for (int iter = 0; iter < 2000 && !why[0]; iter++) {
        memcpy(buf, base, n);
        size_t len = n;
        int kind = (int)rng_below(5);
        switch (kind) {
        case 0: /* flip 1-3 random bits anywhere */
            for (size_t k = 0, m = 1 + rng_below(3); k < m; k++)
                buf[rng_below(len)] ^= (unsigned char)(1u << rng_below(8));
            break;
        case 1: /* replace 1-2 header bytes by JSON-significant characters */
            for (size_t k = 0, m = 1 + rng_below(2); k < m; k++)
                buf[8 + rng_below(header_end - 8)] =
                    (unsigned char)json_chars[rng_below(sizeof json_chars - 1)];
            break;
        case 2: /* truncate */
            len = rng_below(n);
            break;
        case 3: /* rewrite the length field near its value, or anywhere */
            put_u64_le(buf, rng_below(2) ? header_end - 8 + rng_below(33) - 16 : rng_next());
            break;
        default: /* append bytes */
            for (size_t k = 0, m = 1 + rng_below(16); k < m; k++)
                buf[len++] = (unsigned char)rng_next();
            break;
        }
        if (!write_bytes(path, buf, len)) {
            snprintf(why, sizeof why, "iteration %d: cannot write %s", iter, path);
            break;
        }
        jp_st_file f;
        jp_error e = {JP_OK, ""};
        st = jp_st_open(path, &f, &e);
        if (st == JP_OK) {
            opened++;
            const char *bad = check_consistent(&f, &sink);
            if (bad)
                snprintf(why, sizeof why, "iteration %d (mutation %d): opened but %s", iter, kind, bad);
            jp_st_close(&f);
        } else {
            refused++;
            if (st != JP_ERR_FORMAT && st != JP_ERR_UNSUPPORTED)
                snprintf(why, sizeof why, "iteration %d: status %s: %s", iter, jp_status_name(st), e.msg);
            else if (!strstr(e.msg, path) || strchr(e.msg, '\n') || strlen(e.msg) < strlen(path) + 8)
                snprintf(why, sizeof why, "iteration %d: bad message: %s", iter, e.msg);
            else if (!is_zeroed(&f))
                snprintf(why, sizeof why, "iteration %d: file not zeroed after failure", iter);
        }
    }
    printf("# %s: %d opened consistently, %d refused\n", name, opened, refused);
    JP_CHECK(name, !why[0], "%s", why);
    free(buf);
    free(base);
    unlink(path);
    unlink(base_path);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/jp_st_test.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        jp_test_fail("setup", "mkdtemp(%s): %s", g_dir, strerror(errno));
        return jp_test_exit_code();
    }
    test_round_trip();
    test_many_tensors();
    test_accepts();
    test_truncations();
    test_absurd_header_length();
    test_bad_headers();
    test_writer_rejects();
    test_write_failures();
    test_fuzz();
    remove_tree(g_dir);
    return jp_test_exit_code();
}
