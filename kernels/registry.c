/*
 * registry.c: every kernel and backend of this process, in one table.
 *
 * The CPU kernels are always there.  The CUDA backend is a shared module,
 * jplprof-cuda.so (kernels/cuda/, cuDNN, cuBLAS), loaded with dlopen the
 * first time something asks for the cuda device (jp_backend_get/open with
 * JP_DEVICE_CUDA, jp_kernel_choose on it, jp_kernel_find of a "cuda/" name):
 * a CPU run maps no CUDA library (issue 16: linking them cost every run
 * 217 MB of RSS and 90 ms).  This is the only file outside kernels/cuda/
 * that knows the module exists.
 *
 * Where the module is looked for, in order: $JPLPROF_CUDA_MODULE (a path);
 * beside the executable (<dir>/jplprof-cuda.so, where `make` puts it);
 * <dir>/../lib/jplprof/jplprof-cuda.so (`make install`).  The module
 * exports jp_cuda_kernels(), jp_cuda_backend (kernels/cuda/cuda_kernels.h)
 * and jp_cuda_module_abi, which must equal JP_MODULE_ABI of this build.
 *
 * Invariant: kernels[0..count) never change once listed; the module's
 * kernels are appended (under load_lock) before count grows to include them.
 */
#include "jp_kernel.h"

#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/cpu_kernels.h"

#define JP_MAX_KERNELS 128
#define JP_CUDA_MODULE "jplprof-cuda.so"

typedef struct registry {
    _Atomic size_t count;
    const jp_kernel *kernels[JP_MAX_KERNELS];
} registry;

static registry reg;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

/* The CUDA module: tried once; cuda_backend is NULL and cuda_why says why
 * when it could not be loaded. */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static bool cuda_tried;
static const jp_backend *cuda_backend;
static char cuda_why[1536];

static void registry_append(const jp_kernel *const *list, size_t n)
{
    size_t count = atomic_load(&reg.count);
    if (count + n > JP_MAX_KERNELS) {
        /* A kernel left out would go unused and untested without a word. */
        fprintf(stderr, "jplprof: internal error: %zu kernels, more than JP_MAX_KERNELS (%d) in kernels/registry.c\n",
                count + n, JP_MAX_KERNELS);
        abort();
    }
    for (size_t i = 0; i < n; i++)
        reg.kernels[count++] = list[i];
    atomic_store(&reg.count, count);
}

static void registry_fill(void)
{
    size_t n = 0;
    const jp_kernel *const *cpu = jp_cpu_kernels(&n);
    registry_append(cpu, n);
}

static void registry_build(void) { pthread_once(&reg_once, registry_fill); }

/* dlopen's the first candidate that exists; *why gets every candidate tried
 * and, for one that exists but does not load, dlerror's text. */
static void *cuda_module_open(char *why, size_t why_bytes)
{
    char candidates[3][PATH_MAX + 64];
    int n = 0;
    const char *env = getenv("JPLPROF_CUDA_MODULE");
    if (env && *env)
        snprintf(candidates[n++], sizeof candidates[0], "%s", env);
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        const char *dir = dirname(exe);
        snprintf(candidates[n++], sizeof candidates[0], "%s/" JP_CUDA_MODULE, dir);
        snprintf(candidates[n++], sizeof candidates[0], "%s/../lib/jplprof/" JP_CUDA_MODULE, dir);
    }
    size_t used = 0;
    why[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (access(candidates[i], F_OK) != 0) {
            used += (size_t)snprintf(why + used, used < why_bytes ? why_bytes - used : 0, "%s%s",
                                     used ? ", " : "", candidates[i]);
            continue;
        }
        void *h = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        if (h)
            return h;
        /* It exists but does not load: that is the message, not the search. */
        snprintf(why, why_bytes,
                 "%.700s does not load: %.500s (it needs the cuDNN and cuBLAS it was built against: "
                 "add their lib folder to LD_LIBRARY_PATH)",
                 candidates[i], dlerror());
        return NULL;
    }
    if (used < why_bytes) {
        char searched[1024];
        snprintf(searched, sizeof searched, "%s", why);
        snprintf(why, why_bytes,
                 "the CUDA backend module " JP_CUDA_MODULE " was not found (looked for %s); build it "
                 "with `make CUDA=1` (needs nvcc and cudnn.h under CUDA_HOME, default /usr/local/cuda), "
                 "or point JPLPROF_CUDA_MODULE at it",
                 searched[0] ? searched : "nothing");
    }
    return NULL;
}

/* Loads the CUDA module once and lists its kernels; true when it is there. */
static bool cuda_load(void)
{
    registry_build();
    pthread_mutex_lock(&load_lock);
    if (!cuda_tried) {
        cuda_tried = true;
        void *h = cuda_module_open(cuda_why, sizeof cuda_why);
        if (h) {
            const size_t *abi = dlsym(h, "jp_cuda_module_abi");
            const jp_kernel *const *(*list)(size_t *) =
                (const jp_kernel *const *(*)(size_t *))dlsym(h, "jp_cuda_kernels");
            const jp_backend *backend = dlsym(h, "jp_cuda_backend");
            if (!abi || !list || !backend) {
                snprintf(cuda_why, sizeof cuda_why,
                         "the CUDA backend module lacks jp_cuda_module_abi, jp_cuda_kernels or "
                         "jp_cuda_backend: it is not a jplprof module; rebuild it with `make CUDA=1`");
                dlclose(h);
            } else if (*abi != JP_MODULE_ABI) {
                snprintf(cuda_why, sizeof cuda_why,
                         "the CUDA backend module was built from another version of jplprof "
                         "(interface %zx, this jplprof %zx); rebuild both with `make CUDA=1`",
                         *abi, (size_t)JP_MODULE_ABI);
                dlclose(h);
            } else {
                size_t n = 0;
                const jp_kernel *const *cuda = list(&n);
                registry_append(cuda, n);
                cuda_backend = backend; /* the handle stays open for the process */
            }
        }
    }
    bool ok = cuda_backend != NULL;
    pthread_mutex_unlock(&load_lock);
    return ok;
}

const jp_kernel *const *jp_kernels_all(size_t *count)
{
    registry_build();
    *count = atomic_load(&reg.count);
    return reg.kernels;
}

const jp_kernel *jp_kernel_find(const char *name)
{
    registry_build();
    if (strncmp(name, "cuda/", 5) == 0)
        cuda_load();
    size_t count = atomic_load(&reg.count);
    for (size_t i = 0; i < count; i++)
        if (strcmp(reg.kernels[i]->name, name) == 0)
            return reg.kernels[i];
    return NULL;
}

const jp_kernel *jp_kernel_choose(jp_device device, const jp_step *step)
{
    registry_build();
    if (device == JP_DEVICE_CUDA)
        cuda_load();
    const jp_kernel *best = NULL;
    int best_priority = 0;
    size_t count = atomic_load(&reg.count);
    for (size_t i = 0; i < count; i++) {
        const jp_kernel *k = reg.kernels[i];
        if (k->device != device || k->op_type != step->op->type || !k->supports(step))
            continue;
        int priority = k->priority_for ? k->priority_for(step) : k->priority;
        if (!best || priority > best_priority)
            best = k, best_priority = priority;
    }
    return best;
}

const jp_kernel *jp_kernel_reference(jp_op_type type)
{
    registry_build();
    size_t count = atomic_load(&reg.count);
    for (size_t i = 0; i < count; i++) {
        const jp_kernel *k = reg.kernels[i];
        if (k->device == JP_DEVICE_CPU && k->op_type == type && k->is_reference)
            return k;
    }
    return NULL;
}

jp_status jp_backend_open(jp_device device, const jp_backend **backend, jp_error *err)
{
    *backend = NULL;
    switch (device) {
    case JP_DEVICE_CPU:
        *backend = &jp_cpu_backend;
        return JP_OK;
    case JP_DEVICE_CUDA:
        if (!cuda_load())
            return jp_error_set(err, JP_ERR_UNSUPPORTED, "--device cuda: %s", cuda_why);
        *backend = cuda_backend;
        return JP_OK;
    default:
        return jp_error_set(err, JP_ERR_UNSUPPORTED, "no backend for device %d", (int)device);
    }
}

const jp_backend *jp_backend_get(jp_device device)
{
    const jp_backend *b;
    jp_error err = {0};
    return jp_backend_open(device, &b, &err) == JP_OK ? b : NULL;
}

void jp_kernel_describe(const jp_kernel *k, const void *state, char *buf, size_t buf_bytes)
{
    if (!buf || buf_bytes == 0)
        return;
    buf[0] = '\0';
    if (k && k->describe)
        k->describe(state, buf, buf_bytes);
}
