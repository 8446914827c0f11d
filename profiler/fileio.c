/* fileio.c: atomic file writes, mkdir -p, whole-file reads and jp_textbuf;
 * see fileio.h for the contracts. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Splits path into its directory ("." when it has none) in dir[cap]. */
static void path_dirname(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, cap, ".");
    } else if (slash == path) {
        snprintf(dir, cap, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= cap)
            n = cap - 1;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
}

jp_status jp_fsync_dir(const char *dir, jp_error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return jp_error_set(err, JP_ERR_IO, "cannot open directory '%s' to sync it: %s", dir,
                            strerror(errno));
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    if (rc != 0 && saved != EINVAL)
        return jp_error_set(err, JP_ERR_IO, "cannot sync directory '%s': %s", dir,
                            strerror(saved));
    return JP_OK;
}

jp_status jp_file_write_atomic(const char *path, const void *data, size_t n_bytes, jp_error *err)
{
    char tmp[PATH_MAX];
    char dir[PATH_MAX];
    if (!path || !*path)
        return jp_error_set(err, JP_ERR_INTERNAL, "jp_file_write_atomic: empty path");
    int len = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (len < 0 || (size_t)len >= sizeof tmp)
        return jp_error_set(err, JP_ERR_IO, "cannot write '%s': path too long", path);
    path_dirname(path, dir, sizeof dir);

    FILE *fp = fopen(tmp, "wb");
    if (!fp)
        return jp_error_set(err, JP_ERR_IO, "cannot write '%s': cannot create '%s': %s", path,
                            tmp, strerror(errno));
    int saved = 0;
    const char *step = NULL;
    if (n_bytes > 0 && fwrite(data, 1, n_bytes, fp) != n_bytes) {
        saved = errno;
        step = "write";
    } else if (fflush(fp) != 0) {
        saved = errno;
        step = "write";
    } else if (fsync(fileno(fp)) != 0) {
        saved = errno;
        step = "sync";
    }
    if (fclose(fp) != 0 && !step) {
        saved = errno;
        step = "close";
    }
    if (!step && rename(tmp, path) != 0) {
        saved = errno;
        step = "rename";
    }
    if (step) {
        unlink(tmp);
        return jp_error_set(err, JP_ERR_IO, "cannot write '%s' (%s of '%s' failed): %s", path,
                            step, tmp, saved ? strerror(saved) : "unknown error");
    }
    jp_status st = jp_fsync_dir(dir, err);
    if (st != JP_OK)
        return jp_error_prefix(err, "wrote '%s' but ", path);
    return JP_OK;
}

jp_status jp_json_write_atomic(const char *path, const cJSON *root, bool pretty, jp_error *err)
{
    jp_textbuf b;
    jp_textbuf_init(&b);
    jp_textbuf_json(&b, root, pretty);
    jp_textbuf_puts(&b, "\n");
    jp_status st = jp_textbuf_ok(&b)
                       ? jp_file_write_atomic(path, b.data, b.len, err)
                       : jp_error_set(err, JP_ERR_NOMEM, "cannot write '%s': out of memory",
                                      path);
    jp_textbuf_free(&b);
    return st;
}

bool jp_path_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

bool jp_is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

jp_status jp_mkdir_p(const char *path, jp_error *err)
{
    char buf[PATH_MAX];
    if (!path || !*path)
        return jp_error_set(err, JP_ERR_ARG, "empty directory name");
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return jp_error_set(err, JP_ERR_IO, "cannot create directory '%s': path too long", path);
    memcpy(buf, path, n + 1);
    while (n > 1 && buf[n - 1] == '/')
        buf[--n] = '\0';

    /* Walk the components left to right; each prefix must end up a directory. */
    for (size_t i = 1; i <= n; i++) {
        if (i < n && buf[i] != '/')
            continue;
        char saved_c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) == 0) {
            char parent[PATH_MAX];
            path_dirname(buf, parent, sizeof parent);
            jp_status st = jp_fsync_dir(parent, err);
            if (st != JP_OK) {
                buf[i] = saved_c;
                return st;
            }
        } else {
            int e = errno;
            struct stat sb;
            if (e == EEXIST || stat(buf, &sb) == 0) {
                if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
                    jp_error_set(err, JP_ERR_IO,
                                 "cannot create directory '%s': '%s' exists and is not a "
                                 "directory",
                                 path, buf);
                    return JP_ERR_IO;
                }
            } else {
                char parent[PATH_MAX];
                path_dirname(buf, parent, sizeof parent);
                if (e == EACCES || e == EROFS || e == EPERM)
                    jp_error_set(err, JP_ERR_IO,
                                 "cannot create directory '%s' (for '%s'): %s (is '%s' "
                                 "writable?)",
                                 buf, path, strerror(e), parent);
                else
                    jp_error_set(err, JP_ERR_IO, "cannot create directory '%s' (for '%s'): %s",
                                 buf, path, strerror(e));
                return JP_ERR_IO;
            }
        }
        buf[i] = saved_c;
    }
    return JP_OK;
}

jp_status jp_file_read_all(const char *path, char **data, size_t *n_bytes, jp_error *err)
{
    *data = NULL;
    if (n_bytes)
        *n_bytes = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return jp_error_set(err, errno == ENOENT ? JP_ERR_MISSING : JP_ERR_IO,
                            "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(fp);
        return jp_error_set(err, JP_ERR_NOMEM, "cannot read '%s': out of memory", path);
    }
    for (;;) {
        if (cap - len < 2) {
            if (cap > SIZE_MAX / 2) {
                free(buf);
                fclose(fp);
                return jp_error_set(err, JP_ERR_NOMEM, "cannot read '%s': too large", path);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                fclose(fp);
                return jp_error_set(err, JP_ERR_NOMEM, "cannot read '%s': out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, fp);
        len += got;
        if (got == 0) {
            if (ferror(fp)) {
                int e = errno;
                free(buf);
                fclose(fp);
                return jp_error_set(err, JP_ERR_IO, "cannot read '%s': %s", path, strerror(e));
            }
            break;
        }
    }
    fclose(fp);
    buf[len] = '\0';
    *data = buf;
    if (n_bytes)
        *n_bytes = len;
    return JP_OK;
}

int jp_file_remove_stale_temps(const char *path)
{
    char dir[PATH_MAX];
    path_dirname(path, dir, sizeof dir);
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char prefix[NAME_MAX + 16];
    int plen = snprintf(prefix, sizeof prefix, "%s.tmp.", base);
    if (plen < 0 || (size_t)plen >= sizeof prefix)
        return 0;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, (size_t)plen) != 0)
            continue;
        const char *digits = de->d_name + plen;
        char *end = NULL;
        errno = 0;
        long pid = strtol(digits, &end, 10);
        if (errno || end == digits || *end != '\0' || pid <= 0)
            continue;
        if (pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* that process still runs (or is not ours to judge) */
        char full[PATH_MAX];
        int fl = snprintf(full, sizeof full, "%s/%s", dir, de->d_name);
        if (fl > 0 && (size_t)fl < sizeof full && unlink(full) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

/* path is the JSON path of node so far (for the message). */
static bool find_dup(const cJSON *node, char *path, size_t path_len, size_t cap)
{
    if (cJSON_IsObject(node)) {
        for (const cJSON *a = node->child; a; a = a->next) {
            for (const cJSON *b = a->next; b; b = b->next) {
                if (a->string && b->string && strcmp(a->string, b->string) == 0) {
                    if (path)
                        snprintf(path + path_len, cap - path_len, "%s%s", path_len ? "." : "",
                                 a->string);
                    return true;
                }
            }
        }
        for (const cJSON *c = node->child; c; c = c->next) {
            size_t n = path_len;
            if (path) {
                int w = snprintf(path + path_len, cap - path_len, "%s%s", path_len ? "." : "",
                                 c->string ? c->string : "");
                n = w > 0 && (size_t)w < cap - path_len ? path_len + (size_t)w : cap - 1;
            }
            if (find_dup(c, path, n, cap))
                return true;
            if (path)
                path[path_len] = '\0';
        }
    } else if (cJSON_IsArray(node)) {
        size_t i = 0;
        for (const cJSON *c = node->child; c; c = c->next, i++) {
            if (!cJSON_IsObject(c) && !cJSON_IsArray(c))
                continue;
            size_t n = path_len;
            if (path) {
                int w = snprintf(path + path_len, cap - path_len, "[%zu]", i);
                n = w > 0 && (size_t)w < cap - path_len ? path_len + (size_t)w : cap - 1;
            }
            if (find_dup(c, path, n, cap))
                return true;
            if (path)
                path[path_len] = '\0';
        }
    }
    return false;
}

bool jp_json_find_duplicate_key(const cJSON *node, char *where, size_t cap)
{
    if (where && cap)
        where[0] = '\0';
    return find_dup(node, where && cap ? where : NULL, 0, cap);
}

/* ---- jp_textbuf ---- */

void jp_textbuf_init(jp_textbuf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = false;
}

void jp_textbuf_free(jp_textbuf *b)
{
    free(b->data);
    jp_textbuf_init(b);
}

bool jp_textbuf_ok(const jp_textbuf *b) { return !b->failed; }

static bool textbuf_reserve(jp_textbuf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > SIZE_MAX - b->len - 1) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *nd = realloc(b->data, cap);
    if (!nd) {
        b->failed = true;
        return false;
    }
    b->data = nd;
    b->cap = cap;
    return true;
}

void jp_textbuf_append(jp_textbuf *b, const char *s, size_t n)
{
    if (!textbuf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void jp_textbuf_puts(jp_textbuf *b, const char *s) { jp_textbuf_append(b, s, strlen(s)); }

void jp_textbuf_printf(jp_textbuf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        jp_textbuf_append(b, small, (size_t)n);
        return;
    }
    if (!textbuf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void jp_textbuf_json_string(jp_textbuf *b, const char *s)
{
    jp_textbuf_append(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *run = p;
    for (; *p; p++) {
        const char *esc = NULL;
        char u[8];
        switch (*p) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (*p < 0x20) {
                snprintf(u, sizeof u, "\\u%04x", *p);
                esc = u;
            }
        }
        if (esc) {
            jp_textbuf_append(b, (const char *)run, (size_t)(p - run));
            jp_textbuf_puts(b, esc);
            run = p + 1;
        }
    }
    jp_textbuf_append(b, (const char *)run, (size_t)(p - run));
    jp_textbuf_append(b, "\"", 1);
}

char *jp_format_double(double v, char *buf, size_t cap)
{
    if (v == floor(v) && fabs(v) < 1e15) { /* whole: "1000", not "1e+03" */
        snprintf(buf, cap, "%.0f", v);
        return buf;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return buf;
    }
    return buf; /* %.17g always reads back exactly */
}

static void json_indent(jp_textbuf *b, int depth)
{
    jp_textbuf_puts(b, "\n");
    for (int i = 0; i < depth; i++)
        jp_textbuf_puts(b, "    ");
}

static void json_node(jp_textbuf *b, const cJSON *node, bool pretty, int depth)
{
    if (cJSON_IsObject(node) || cJSON_IsArray(node)) {
        bool obj = cJSON_IsObject(node);
        jp_textbuf_puts(b, obj ? "{" : "[");
        for (const cJSON *c = node->child; c; c = c->next) {
            if (c != node->child)
                jp_textbuf_puts(b, pretty ? "," : ", ");
            if (pretty)
                json_indent(b, depth + 1);
            if (obj) {
                jp_textbuf_json_string(b, c->string ? c->string : "");
                jp_textbuf_puts(b, ": ");
            }
            json_node(b, c, pretty, depth + 1);
        }
        if (pretty && node->child)
            json_indent(b, depth);
        jp_textbuf_puts(b, obj ? "}" : "]");
    } else if (cJSON_IsNumber(node)) {
        jp_textbuf_json_double(b, node->valuedouble);
    } else if (cJSON_IsString(node)) {
        jp_textbuf_json_string(b, node->valuestring ? node->valuestring : "");
    } else if (cJSON_IsTrue(node)) {
        jp_textbuf_puts(b, "true");
    } else if (cJSON_IsFalse(node)) {
        jp_textbuf_puts(b, "false");
    } else if (cJSON_IsRaw(node) && node->valuestring) {
        jp_textbuf_puts(b, node->valuestring);
    } else {
        jp_textbuf_puts(b, "null");
    }
}

void jp_textbuf_json(jp_textbuf *b, const cJSON *node, bool pretty)
{
    json_node(b, node, pretty, 0);
}

void jp_textbuf_json_double(jp_textbuf *b, double v)
{
    if (v != v || v - v != 0) { /* NaN or infinite: not JSON */
        jp_textbuf_puts(b, "null");
        return;
    }
    char num[40];
    jp_format_double(v, num, sizeof num);
    jp_textbuf_puts(b, num);
}

char *jp_strprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

/* ---- bounded line reader ---- */

jp_status jp_line_reader_init(jp_line_reader *r, FILE *in, size_t max_bytes, jp_error *err)
{
    memset(r, 0, sizeof *r);
    r->in = in;
    r->max_bytes = max_bytes ? max_bytes : JP_LINE_MAX_BYTES;
    /* the buffer grows with the longest line up to max_bytes: a cap of
     * megabytes costs nothing on short lines */
    r->cap = r->max_bytes < 4096 ? r->max_bytes + 1 : 4096;
    r->buf = malloc(r->cap);
    if (!r->buf)
        return jp_error_set(err, JP_ERR_NOMEM, "out of memory (a %zu-byte line buffer)", r->cap);
    r->buf[0] = '\0';
    return JP_OK;
}

int jp_line_reader_next(jp_line_reader *r)
{
    size_t len = 0;
    uint64_t cut = 0;
    bool any = false, nomem = false;
    int c;
    r->offset = r->next_offset;
    flockfile(r->in);
    while ((c = getc_unlocked(r->in)) != EOF) {
        any = true;
        r->next_offset++;
        if (c == '\n')
            break;
        if (len + 1 == r->cap && len < r->max_bytes) {
            size_t cap = r->cap > (r->max_bytes + 1) / 2 ? r->max_bytes + 1 : r->cap * 2;
            char *buf = realloc(r->buf, cap);
            if (!buf) {
                nomem = true;
                break;
            }
            r->buf = buf;
            r->cap = cap;
        }
        if (len < r->max_bytes)
            r->buf[len++] = (char)c;
        else
            cut++;
    }
    bool failed = nomem || (c == EOF && ferror(r->in));
    funlockfile(r->in);
    r->buf[len] = '\0';
    r->len = len;
    r->cut_bytes = cut;
    r->ended_by_newline = c == '\n';
    if (failed) {
        if (nomem)
            errno = ENOMEM;
        return -1;
    }
    if (!any)
        return 0;
    r->line_no++;
    return 1;
}

void jp_line_reader_free(jp_line_reader *r)
{
    free(r->buf);
    r->buf = NULL;
}

char *jp_escape_text(const char *text, size_t n, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (cap < 4) {
        if (cap)
            out[0] = '\0';
        return out;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        char piece[5];
        size_t k = 0;
        if (c == '\\') {
            piece[k++] = '\\';
            piece[k++] = '\\';
        } else if (c >= 0x20 && c < 0x7f) {
            piece[k++] = (char)c;
        } else {
            piece[k++] = '\\';
            piece[k++] = 'x';
            piece[k++] = hex[c >> 4];
            piece[k++] = hex[c & 15];
        }
        /* room for the piece, "..." if more follows, and the NUL */
        size_t need = k + (i + 1 < n ? 3 : 0) + 1;
        if (o + need > cap) {
            memcpy(out + (o + 4 <= cap ? o : cap - 4), "...", 4);
            return out;
        }
        memcpy(out + o, piece, k);
        o += k;
    }
    out[o] = '\0';
    return out;
}
