/*
 * iofault.c: an LD_PRELOAD shim for tests (never linked into jplprof) that
 * makes one file operation fail, to check what jplprof does on a full disk
 * or a failing one (issue 14, "I/O faults").
 *
 *   JP_IOFAULT=OP:N:ERRNO   the Nth call (from 1) of OP fails with ERRNO
 *                           (ENOSPC or EIO); OP is one of
 *       open    open, open64, openat, fopen, fopen64, creat
 *       write   write, pwrite, fwrite, fflush (with data pending)
 *       fsync   fsync, fdatasync
 *       rename  rename, renameat
 *   JP_IOFAULT_DIR=PATH     only files under PATH count (opened there, or
 *                           renamed there): loading libraries, models and
 *                           images is never failed
 *   JP_IOFAULT_LOG=FILE     when the fault fires, "OP N PATH" is appended
 *                           there, so a test knows the Nth call was reached;
 *                           at exit, when it did not, "count OP CALLS" (how
 *                           many calls of OP there were: where a walk ends)
 *
 * Build: cc -shared -fPIC -o libiofault.so tests/iofault.c -ldl
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FD 4096

static char fault_op[16];
static long fault_n = -1, calls;
static int fault_errno;
static char dir[4096];
static size_t dir_len;
static bool fired, ready;
static char fd_path[MAX_FD][256]; /* "" when not under dir */

static void setup(void)
{
    if (ready)
        return;
    ready = true;
    const char *spec = getenv("JP_IOFAULT"), *d = getenv("JP_IOFAULT_DIR");
    if (!spec || !d)
        return;
    char err_name[16] = "";
    if (sscanf(spec, "%15[a-z]:%ld:%15[A-Z]", fault_op, &fault_n, err_name) != 3) {
        fault_n = -1;
        return;
    }
    fault_errno = strcmp(err_name, "EIO") == 0 ? EIO : ENOSPC;
    snprintf(dir, sizeof dir, "%s", d);
    dir_len = strlen(dir);
}

static bool under_dir(const char *path)
{
    return path && dir_len && strncmp(path, dir, dir_len) == 0;
}

/* Counts one call of op on path; true when this one must fail. */
static bool must_fail(const char *op, const char *path)
{
    setup();
    if (fault_n < 0 || fired || strcmp(op, fault_op) != 0 || !under_dir(path))
        return false;
    if (++calls != fault_n)
        return false;
    fired = true;
    const char *log = getenv("JP_IOFAULT_LOG");
    if (log) {
        int (*real_open)(const char *, int, ...) = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
        int fd = real_open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            char line[4400];
            int n = snprintf(line, sizeof line, "%s %ld %s\n", op, fault_n, path);
            ssize_t (*real_write)(int, const void *, size_t) =
                (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
            if (n > 0 && real_write(fd, line, (size_t)n) < 0) {
                /* nothing to do: the log is for the test only */
            }
            close(fd);
        }
    }
    errno = fault_errno;
    return true;
}

static void remember(int fd, const char *path)
{
    if (fd >= 0 && fd < MAX_FD)
        snprintf(fd_path[fd], sizeof fd_path[fd], "%s", under_dir(path) ? path : "");
}

static const char *path_of(int fd) { return fd >= 0 && fd < MAX_FD && fd_path[fd][0] ? fd_path[fd] : NULL; }

/* the next definition of name (libc's), looked up once */
#define REAL(name)                                                                                  \
    static __typeof__(&name) real_##name;                                                           \
    if (!real_##name)                                                                               \
    real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

__attribute__((destructor)) static void report_count(void)
{
    const char *log = getenv("JP_IOFAULT_LOG");
    if (fired || fault_n < 0 || !log)
        return;
    REAL(fopen);
    FILE *f = real_fopen(log, "a");
    if (f) {
        fprintf(f, "count %s %ld\n", fault_op, calls);
        fclose(f);
    }
}

static int open_common(const char *sym, int dirfd, const char *path, int flags, mode_t mode)
{
    if (must_fail("open", path))
        return -1;
    int fd;
    if (strcmp(sym, "openat") == 0) {
        REAL(openat);
        fd = real_openat(dirfd, path, flags, mode);
    } else if (strcmp(sym, "open64") == 0) {
        REAL(open64);
        fd = real_open64(path, flags, mode);
    } else {
        REAL(open);
        fd = real_open(path, flags, mode);
    }
    setup();
    remember(fd, path);
    return fd;
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
    va_end(ap);
    return open_common("open", AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
    va_end(ap);
    return open_common("open64", AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
    va_end(ap);
    return open_common("openat", dirfd, path, flags, mode);
}

int creat(const char *path, mode_t mode) { return open_common("open", AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode); }

static FILE *fopen_common(const char *sym, const char *path, const char *how)
{
    if (must_fail("open", path))
        return NULL;
    FILE *f;
    if (strcmp(sym, "fopen64") == 0) {
        REAL(fopen64);
        f = real_fopen64(path, how);
    } else {
        REAL(fopen);
        f = real_fopen(path, how);
    }
    if (f)
        remember(fileno(f), path);
    return f;
}

FILE *fopen(const char *path, const char *how) { return fopen_common("fopen", path, how); }
FILE *fopen64(const char *path, const char *how) { return fopen_common("fopen64", path, how); }

int close(int fd)
{
    REAL(close);
    if (fd >= 0 && fd < MAX_FD)
        fd_path[fd][0] = '\0';
    return real_close(fd);
}

int fclose(FILE *f)
{
    REAL(fclose);
    int fd = f ? fileno(f) : -1;
    if (fd >= 0 && fd < MAX_FD)
        fd_path[fd][0] = '\0';
    return real_fclose(f);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    REAL(write);
    if (must_fail("write", path_of(fd)))
        return -1;
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t at)
{
    REAL(pwrite);
    if (must_fail("write", path_of(fd)))
        return -1;
    return real_pwrite(fd, buf, n, at);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t at)
{
    REAL(pwrite64);
    if (must_fail("write", path_of(fd)))
        return -1;
    return real_pwrite64(fd, buf, n, at);
}

size_t fwrite(const void *buf, size_t size, size_t n, FILE *f)
{
    REAL(fwrite);
    if (size && n && must_fail("write", path_of(fileno(f))))
        return 0;
    return real_fwrite(buf, size, n, f);
}

int fflush(FILE *f)
{
    REAL(fflush);
    if (f && must_fail("write", path_of(fileno(f))))
        return EOF;
    return real_fflush(f);
}

int fsync(int fd)
{
    REAL(fsync);
    if (must_fail("fsync", path_of(fd)))
        return -1;
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    REAL(fdatasync);
    if (must_fail("fsync", path_of(fd)))
        return -1;
    return real_fdatasync(fd);
}

int rename(const char *from, const char *to)
{
    REAL(rename);
    if (must_fail("rename", to))
        return -1;
    return real_rename(from, to);
}

int renameat(int fromfd, const char *from, int tofd, const char *to)
{
    REAL(renameat);
    if (must_fail("rename", to))
        return -1;
    return real_renameat(fromfd, from, tofd, to);
}
