/*
 * power_tegrastats.c: the `tegrastats` power source.
 *
 * Spawns `<program> --interval N` (fork + execv, the program resolved on
 * PATH beforehand so that a missing one is reported by name), reads its
 * stdout through a pipe in a reader thread, stamps every line with
 * CLOCK_MONOTONIC the moment read() returns it, and parses it with
 * tegrastats_parse.h.  The parameter list is fixed by the first line that
 * has a power rail; later lines fill the same columns (NAN where a line
 * lacks one; names a later line adds are ignored).
 *
 * The child runs in its own process group (a Ctrl-C at the terminal must
 * not kill it before the profiler has finished its current layer) and gets
 * SIGTERM when the thread that started it dies (PR_SET_PDEATHSIG), so a
 * `kill -9` of jplprof does not leave it running.  stop sends SIGTERM to
 * its group, SIGKILL after 2 s, and reaps it; a child that exits by itself
 * is reaped by the reader thread, which records its exit status and last
 * stderr line as the source's failure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "power_impl.h"

#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Lines without any rail before start gives up: "a few lines" of garbage. */
#define GARBAGE_LINES 5
/* How long start waits for the first line with rails: this plus 5 intervals
 * (the real tegrastats prints its first line after one interval). */
#define FIRST_LINE_GRACE_MS 2000
/* How long stop waits after SIGTERM before SIGKILL. */
#define TERM_GRACE_MS 2000
/* Longest line kept; a 14-core JetPack 7 line is ~900 bytes.  A longer one
 * is cut here and the rest of it dropped (memory stays bounded). */
#define LINE_BYTES (JP_LINE_MAX_BYTES + 1)

typedef struct tgr_state {
    char program[PATH_MAX]; /* resolved path, run as argv[0] */
    pid_t pid;              /* the child, -1 when none       */
    bool reaped;            /* guarded by reap_lock          */
    int wait_status;        /* valid when reaped             */
    pthread_mutex_t reap_lock;
    int out_fd, err_fd;     /* read ends of stdout, stderr   */
    int stop_pipe[2];       /* wakes the reader on stop      */
    pthread_t thread;
    bool thread_started;

    /* Written by the reader thread; names_fixed is read under src->lock. */
    bool names_fixed;
    size_t lines, lines_without_rails;
    char first_bad_line[160];
    char last_stderr[256];

    jp_tgr_line parsed;                /* the reader's scratch line */
    double values[JP_TGR_MAX_PARAMS];  /* (n_params) one sample    */
} tgr_state;

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* ---- open: find the program ---- */

static bool is_executable_file(const char *path, int *errno_out)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        *errno_out = errno;
        return false;
    }
    if (!S_ISREG(sb.st_mode)) {
        *errno_out = EISDIR;
        return false;
    }
    if (access(path, X_OK) != 0) {
        *errno_out = errno;
        return false;
    }
    return true;
}

static jp_status resolve_program(const char *prog, char *out, size_t bytes, jp_error *err)
{
    static const char fix[] =
        "pass --tegrastats PATH with the path of L4T's tegrastats (usually /usr/bin/tegrastats), "
        "or choose another --power-source (ina3221, nvml, rapl, none)";
    int e = 0;
    if (strchr(prog, '/')) {
        if (is_executable_file(prog, &e)) {
            snprintf(out, bytes, "%s", prog);
            return JP_OK;
        }
        if (e == ENOENT || e == ENOTDIR)
            return jp_error_set(err, JP_ERR_MISSING, "tegrastats: '%s' does not exist; %s", prog, fix);
        return jp_error_set(err, JP_ERR_IO, "tegrastats: cannot run '%s': %s; %s", prog,
                            e == EISDIR ? "not a regular file" : strerror(e), fix);
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    const char *p = path;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        char cand[PATH_MAX];
        int w = snprintf(cand, sizeof cand, "%.*s/%s", (int)n, n ? p : ".", prog);
        if (w > 0 && (size_t)w < sizeof cand && is_executable_file(cand, &e)) {
            snprintf(out, bytes, "%s", cand);
            return JP_OK;
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    return jp_error_set(err, JP_ERR_MISSING,
                        "tegrastats: '%s' is not on PATH: this is not a Jetson with L4T "
                        "installed, or tegrastats lives elsewhere; %s",
                        prog, fix);
}

static jp_status tgr_open(jp_power_source *src, jp_error *err)
{
    tgr_state *st = calloc(1, sizeof *st);
    if (!st)
        return jp_error_set(err, JP_ERR_NOMEM, "tegrastats: out of memory");
    st->pid = -1;
    st->out_fd = st->err_fd = -1;
    st->stop_pipe[0] = st->stop_pipe[1] = -1;
    pthread_mutex_init(&st->reap_lock, NULL);
    src->impl = st;
    jp_status s = resolve_program(src->opts.tegrastats_program, st->program, sizeof st->program, err);
    if (s != JP_OK)
        return s;
    snprintf(src->description, sizeof src->description, "tegrastats: %.400s --interval %d",
             st->program, src->opts.interval_ms);
    return JP_OK;
}

/* ---- the child ---- */

/* Reaps the child, waiting up to grace_ms after which it is SIGKILLed.
 * Safe from the reader thread and from stop concurrently. */
static void reap_child(tgr_state *st, int grace_ms)
{
    pthread_mutex_lock(&st->reap_lock);
    if (st->pid > 0 && !st->reaped) {
        int64_t deadline = jp_power_now_ns() + (int64_t)grace_ms * 1000000LL;
        for (;;) {
            int status = 0;
            pid_t r = waitpid(st->pid, &status, WNOHANG);
            if (r == st->pid) {
                st->wait_status = status;
                st->reaped = true;
                break;
            }
            if (r < 0 && errno != EINTR) { /* ECHILD: SIGCHLD ignored, already gone */
                st->wait_status = 0;
                st->reaped = true;
                break;
            }
            if (jp_power_now_ns() >= deadline) {
                kill(-st->pid, SIGKILL);
                kill(st->pid, SIGKILL);
                while ((r = waitpid(st->pid, &status, 0)) < 0 && errno == EINTR)
                    ;
                st->wait_status = r == st->pid ? status : 0;
                st->reaped = true;
                break;
            }
            struct timespec nap = {0, 5 * 1000000L};
            nanosleep(&nap, NULL);
        }
    }
    pthread_mutex_unlock(&st->reap_lock);
}

static void describe_exit(int status, char *buf, size_t bytes)
{
    if (WIFEXITED(status))
        snprintf(buf, bytes, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, bytes, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, bytes, "stopped (wait status 0x%x)", (unsigned)status);
}

/* ---- the reader thread ---- */

static void fail_garbage(jp_power_source *src, tgr_state *st)
{
    jp_error e;
    jp_error_set(&e, JP_ERR_FORMAT,
                 "tegrastats: '%s --interval %d' printed %zu lines without a power rail (first: "
                 "'%s'); is it Jetson's tegrastats? Pass --tegrastats PATH with L4T's tegrastats "
                 "(usually /usr/bin/tegrastats); if it is, run jplprof as root (sudo), as some "
                 "releases show the rails to root only",
                 st->program, src->opts.interval_ms, st->lines_without_rails, st->first_bad_line);
    jp_power_fail(src, &e);
}

static void handle_line(jp_power_source *src, tgr_state *st, char *text, int64_t t_ns)
{
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\r' || text[n - 1] == '\n'))
        text[--n] = '\0';
    if (n == 0)
        return;
    st->lines++;
    jp_tegrastats_parse_line(text, &st->parsed, NULL);
    if (st->parsed.n_rails == 0) {
        st->lines_without_rails++;
        if (!st->names_fixed) {
            /* escaped: a broken tegrastats may print binary garbage, which
             * must not reach the terminal raw */
            if (!st->first_bad_line[0])
                jp_escape_text(text, n, st->first_bad_line, sizeof st->first_bad_line);
            if (st->lines_without_rails == GARBAGE_LINES)
                fail_garbage(src, st);
        }
        return;
    }
    if (!st->names_fixed) {
        for (size_t i = 0; i < st->parsed.count; i++) {
            jp_error e;
            if (jp_power_add_param(src, st->parsed.params[i].name, st->parsed.params[i].kind, &e) !=
                JP_OK)
                break;
        }
        pthread_mutex_lock(&src->lock);
        st->names_fixed = true;
        pthread_cond_broadcast(&src->wake);
        pthread_mutex_unlock(&src->lock);
    }
    for (size_t i = 0; i < src->n_params; i++)
        st->values[i] = NAN;
    for (size_t k = 0; k < st->parsed.count; k++) {
        const jp_tgr_param *p = &st->parsed.params[k];
        long col = -1;
        /* lines of one board list their fields in the same order */
        if (k < src->n_params && strcmp(src->params[k].name, p->name) == 0)
            col = (long)k;
        else
            col = jp_power_param_index(src, p->name);
        if (col >= 0)
            st->values[col] = p->value;
    }
    jp_power_push(src, t_ns, st->values);
}

/* A line longer than LINE_BYTES - 1: its start was kept, the rest is being
 * dropped.  No tegrastats prints such a line: it counts as garbage. */
static void handle_cut_line(jp_power_source *src, tgr_state *st, const char *start)
{
    st->lines++;
    st->lines_without_rails++;
    if (!st->names_fixed) {
        if (!st->first_bad_line[0]) {
            char head[64];
            jp_escape_text(start, strnlen(start, 40), head, sizeof head);
            snprintf(st->first_bad_line, sizeof st->first_bad_line,
                     "line %zu, longer than %d bytes, cut there: %s...", st->lines,
                     JP_LINE_MAX_BYTES, head);
        }
        if (st->lines_without_rails == GARBAGE_LINES)
            fail_garbage(src, st);
    }
}

static void keep_stderr(tgr_state *st, const char *chunk, size_t n, char *partial, size_t *plen,
                        size_t pcap)
{
    for (size_t i = 0; i < n; i++) {
        char c = chunk[i];
        if (c == '\n' || c == '\r') {
            if (*plen > 0) {
                partial[*plen] = '\0';
                snprintf(st->last_stderr, sizeof st->last_stderr, "%s", partial);
                *plen = 0;
            }
        } else if (*plen + 1 < pcap) {
            partial[(*plen)++] = c;
        }
    }
    if (*plen > 0) { /* an unterminated last line counts too */
        partial[*plen] = '\0';
        snprintf(st->last_stderr, sizeof st->last_stderr, "%s", partial);
    }
}

static void *reader_main(void *arg)
{
    jp_power_source *src = arg;
    tgr_state *st = src->impl;
    char *buf = malloc(LINE_BYTES);
    char err_partial[256];
    size_t err_len = 0;
    size_t len = 0;
    bool out_eof = false, err_eof = false, stopped = false;
    bool dropping = false; /* inside a line that was cut */
    if (!buf) {
        jp_error e;
        jp_error_set(&e, JP_ERR_NOMEM, "tegrastats: out of memory");
        jp_power_fail(src, &e);
        return NULL;
    }
    while (!out_eof) {
        struct pollfd fds[3];
        int nfds = 0;
        fds[nfds++] = (struct pollfd){.fd = st->stop_pipe[0], .events = POLLIN};
        fds[nfds++] = (struct pollfd){.fd = st->out_fd, .events = POLLIN};
        if (!err_eof)
            fds[nfds++] = (struct pollfd){.fd = st->err_fd, .events = POLLIN};
        int rc = poll(fds, (nfds_t)nfds, -1);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            jp_error e;
            jp_error_set(&e, JP_ERR_IO, "tegrastats: poll on its pipes failed: %s", strerror(errno));
            jp_power_fail(src, &e);
            break;
        }
        if (fds[0].revents) {
            stopped = true;
            break;
        }
        if (nfds == 3 && fds[2].revents) {
            char chunk[512];
            ssize_t n = read(st->err_fd, chunk, sizeof chunk);
            if (n > 0)
                keep_stderr(st, chunk, (size_t)n, err_partial, &err_len, sizeof err_partial);
            else if (n == 0 || (errno != EINTR && errno != EAGAIN))
                err_eof = true;
        }
        if (fds[1].revents) {
            ssize_t n = read(st->out_fd, buf + len, LINE_BYTES - 1 - len);
            int64_t t_ns = jp_power_now_ns(); /* the stamp: arrival */
            if (n == 0) {
                out_eof = true;
            } else if (n < 0) {
                if (errno != EINTR && errno != EAGAIN)
                    out_eof = true;
            } else {
                size_t old_len = len;
                len += (size_t)n;
                buf[len] = '\0';
                char *line = buf;
                char *nl;
                if (dropping) { /* the rest of a cut line, up to its newline */
                    nl = memchr(buf + old_len, '\n', len - old_len);
                    line = nl ? nl + 1 : buf + len;
                    dropping = nl == NULL;
                }
                while ((nl = memchr(line, '\n', len - (size_t)(line - buf))) != NULL) {
                    *nl = '\0';
                    handle_line(src, st, line, t_ns);
                    line = nl + 1;
                }
                len -= (size_t)(line - buf);
                memmove(buf, line, len);
                if (len == LINE_BYTES - 1) { /* no newline in 64 KiB: cut, drop the rest */
                    buf[len] = '\0';
                    handle_cut_line(src, st, buf);
                    len = 0;
                    dropping = true;
                }
            }
        }
    }
    if (out_eof && !stopped && !jp_power_stopping(src)) {
        /* The child closed its stdout: collect its last words, reap it. */
        int64_t deadline = jp_power_now_ns() + 200 * 1000000LL;
        while (!err_eof && jp_power_now_ns() < deadline) {
            struct pollfd pfd = {.fd = st->err_fd, .events = POLLIN};
            if (poll(&pfd, 1, 50) <= 0)
                continue;
            char chunk[512];
            ssize_t n = read(st->err_fd, chunk, sizeof chunk);
            if (n > 0)
                keep_stderr(st, chunk, (size_t)n, err_partial, &err_len, sizeof err_partial);
            else
                err_eof = true;
        }
        reap_child(st, TERM_GRACE_MS);
        char how[128];
        describe_exit(st->wait_status, how, sizeof how);
        char last[320] = "", escaped[256];
        if (st->last_stderr[0])
            snprintf(last, sizeof last, " (last stderr line: '%s')",
                     jp_escape_text(st->last_stderr, strlen(st->last_stderr), escaped,
                                    sizeof escaped));
        jp_error e;
        jp_error_set(&e, JP_ERR_IO,
                     "tegrastats: '%s --interval %d' %s after %zu lines%s; run that command in a "
                     "shell to see why; run jplprof as root (sudo) if it needs root, or pass "
                     "--tegrastats PATH to another tegrastats",
                     st->program, src->opts.interval_ms, how, st->lines, last);
        jp_power_fail(src, &e);
    }
    free(buf);
    return NULL;
}

/* ---- start / stop ---- */

static void end_child(jp_power_source *src, tgr_state *st)
{
    if (st->pid > 0) {
        pthread_mutex_lock(&st->reap_lock);
        bool alive = !st->reaped;
        pthread_mutex_unlock(&st->reap_lock);
        if (alive) {
            kill(-st->pid, SIGTERM);
            kill(st->pid, SIGTERM);
        }
    }
    if (st->thread_started) {
        if (st->stop_pipe[1] >= 0) {
            char byte = 1;
            ssize_t w = write(st->stop_pipe[1], &byte, 1);
            (void)w;
        }
        pthread_join(st->thread, NULL);
        st->thread_started = false;
    }
    if (st->pid > 0)
        reap_child(st, TERM_GRACE_MS);
    st->pid = -1;
    close_fd(&st->out_fd);
    close_fd(&st->err_fd);
    close_fd(&st->stop_pipe[0]);
    close_fd(&st->stop_pipe[1]);
}

static jp_status tgr_start(jp_power_source *src, jp_error *err)
{
    tgr_state *st = src->impl;
    int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, exec_p[2] = {-1, -1};
    jp_status status = JP_OK;

    src->n_params = 0;
    st->names_fixed = false;
    st->lines = st->lines_without_rails = 0;
    st->first_bad_line[0] = st->last_stderr[0] = '\0';
    st->reaped = false;
    st->wait_status = 0;

    if (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0 ||
        pipe2(exec_p, O_CLOEXEC) != 0 || pipe2(st->stop_pipe, O_CLOEXEC) != 0) {
        status = jp_error_set(err, JP_ERR_IO, "tegrastats: cannot create pipes: %s", strerror(errno));
        goto fail;
    }
    char interval[16];
    snprintf(interval, sizeof interval, "%d", src->opts.interval_ms);
    char *argv[] = {st->program, "--interval", interval, NULL};
    pid_t parent = getpid();

    pid_t pid = fork();
    if (pid < 0) {
        status = jp_error_set(err, JP_ERR_IO, "tegrastats: fork failed: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0) {
        /* The child: async-signal-safe calls only until execv. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGTERM, &dfl, NULL);
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGPIPE, &dfl, NULL);
        sigaction(SIGCHLD, &dfl, NULL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(out_p[1], 1);
        dup2(err_p[1], 2);
        execv(st->program, argv);
        int e = errno;
        ssize_t w = write(exec_p[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    st->pid = pid;
    close_fd(&out_p[1]);
    close_fd(&err_p[1]);
    close_fd(&exec_p[1]);
    st->out_fd = out_p[0];
    st->err_fd = err_p[0];
    out_p[0] = err_p[0] = -1;

    /* execv's failure comes back through exec_p; success closes it. */
    int exec_errno = 0;
    ssize_t n;
    while ((n = read(exec_p[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR)
        ;
    close_fd(&exec_p[0]);
    if (n == (ssize_t)sizeof exec_errno) {
        reap_child(st, TERM_GRACE_MS);
        status = jp_error_set(err, exec_errno == ENOENT ? JP_ERR_MISSING : JP_ERR_IO,
                              "tegrastats: cannot run '%s': %s; pass --tegrastats PATH with L4T's "
                              "tegrastats, or choose another --power-source",
                              st->program, strerror(exec_errno));
        goto fail;
    }

    int rc = pthread_create(&st->thread, NULL, reader_main, src);
    if (rc != 0) {
        status = jp_error_set(err, JP_ERR_IO, "tegrastats: cannot start the reader thread: %s",
                              strerror(rc));
        goto fail;
    }
    st->thread_started = true;

    /* Wait for the first line with rails (it fixes the parameter list). */
    int wait_ms = FIRST_LINE_GRACE_MS + 5 * src->opts.interval_ms;
    int64_t deadline = jp_power_now_ns() + (int64_t)wait_ms * 1000000LL;
    struct timespec until = {(time_t)(deadline / 1000000000LL), (long)(deadline % 1000000000LL)};
    pthread_mutex_lock(&src->lock);
    while (!st->names_fixed && !src->failed) {
        if (pthread_cond_timedwait(&src->wake, &src->lock, &until) == ETIMEDOUT)
            break;
    }
    bool fixed = st->names_fixed;
    bool failed = src->failed;
    jp_error failure = src->failure;
    pthread_mutex_unlock(&src->lock);
    if (!fixed) {
        if (failed) {
            if (err)
                *err = failure;
            status = failure.status;
        } else if (st->lines > 0) {
            status = jp_error_set(err, JP_ERR_FORMAT,
                                  "tegrastats: '%s --interval %d' printed %zu lines in %d ms, none "
                                  "with a power rail (first: '%s'); pass --tegrastats PATH with L4T's "
                                  "tegrastats, or run jplprof as root (sudo)",
                                  st->program, src->opts.interval_ms, st->lines, wait_ms,
                                  st->first_bad_line);
        } else {
            status = jp_error_set(err, JP_ERR_IO,
                                  "tegrastats: '%s --interval %d' printed nothing in %d ms; run "
                                  "that command in a shell to see why, run jplprof as root (sudo) "
                                  "if it needs root, or pass --tegrastats PATH",
                                  st->program, src->opts.interval_ms, wait_ms);
        }
        goto fail;
    }
    snprintf(src->description, sizeof src->description, "tegrastats: %.400s --interval %d (pid %d)",
             st->program, src->opts.interval_ms, (int)st->pid);
    return JP_OK;

fail:
    pthread_mutex_lock(&src->lock);
    src->stop_requested = true; /* the reader must not report the kill */
    pthread_mutex_unlock(&src->lock);
    end_child(src, st);
    close_fd(&out_p[0]);
    close_fd(&out_p[1]);
    close_fd(&err_p[0]);
    close_fd(&err_p[1]);
    close_fd(&exec_p[0]);
    close_fd(&exec_p[1]);
    return status;
}

static jp_status tgr_stop(jp_power_source *src, jp_error *err)
{
    end_child(src, src->impl);
    return JP_OK;
}

static void tgr_close(jp_power_source *src)
{
    tgr_state *st = src->impl;
    if (!st)
        return;
    end_child(src, st);
    pthread_mutex_destroy(&st->reap_lock);
    free(st);
    src->impl = NULL;
}

pid_t jp_power_child_pid(const jp_power_source *src)
{
    if (!src || src->backend != &jp_power_backend_tegrastats || !src->impl)
        return -1;
    const tgr_state *st = src->impl;
    return st->pid;
}

const jp_power_backend jp_power_backend_tegrastats = {
    .kind = JP_POWER_TEGRASTATS,
    .open = tgr_open,
    .start = tgr_start,
    .stop = tgr_stop,
    .close = tgr_close,
};
