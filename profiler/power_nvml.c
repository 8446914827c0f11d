/*
 * power_nvml.c: the `nvml` power source: NVIDIA's management library,
 * loaded at run time with dlopen (no build-time dependency on the driver).
 *
 * One parameter, "gpu" (mW), for device opts.nvml_device.  Where the GPU
 * has it (Volta and later), the total-energy counter is read every interval
 * and a sample is the energy since the counter last moved divided by the
 * time since then: the true mean power between two samples.  Otherwise
 * nvmlDeviceGetPowerUsage (mW) is read every interval as it is; on many
 * GPUs it is itself a moving average over about a second, which the
 * description says.
 *
 * The NVML types and constants below are those of nvml.h (stable ABI);
 * only the entry points used are declared.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "power_impl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvml_return;                 /* nvmlReturn_t                */
typedef struct nvml_device_st *nvml_device; /* nvmlDevice_t (opaque)    */
#define NVML_SUCCESS 0
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_ERROR_NO_PERMISSION 4
#define NVML_DEVICE_NAME_BUFFER_SIZE 96

typedef struct nvml_state {
    void *lib;
    bool initialised;
    nvml_return (*init)(void);
    nvml_return (*shutdown)(void);
    const char *(*error_string)(nvml_return);
    nvml_return (*handle_by_index)(unsigned, nvml_device *);
    nvml_return (*power_usage)(nvml_device, unsigned *);              /* mW */
    nvml_return (*total_energy)(nvml_device, unsigned long long *);   /* mJ */
    nvml_return (*get_name)(nvml_device, char *, unsigned);
    nvml_device dev;
    bool use_energy;
    /* the last counter reading that moved */
    bool have_prev;
    unsigned long long prev_mj;
    int64_t prev_t_ns;
} nvml_state;

static const char *nvml_msg(const nvml_state *st, nvml_return rc)
{
    const char *m = st->error_string ? st->error_string(rc) : NULL;
    return m ? m : "unknown NVML error";
}

static jp_status nvml_open(jp_power_source *src, jp_error *err)
{
    nvml_state *st = calloc(1, sizeof *st);
    if (!st)
        return jp_error_set(err, JP_ERR_NOMEM, "nvml: out of memory");
    src->impl = st;
    const char *libname = src->opts.nvml_library;
    st->lib = dlopen(libname, RTLD_NOW | RTLD_LOCAL);
    if (!st->lib) {
        const char *why = dlerror();
        return jp_error_set(err, JP_ERR_MISSING,
                            "nvml: cannot load %s (%.300s): no NVIDIA driver on this machine; "
                            "install the NVIDIA driver, or choose another --power-source "
                            "(tegrastats, ina3221, rapl, none)",
                            libname, why ? why : "unknown dlopen error");
    }
    /* dlsym returns void *; POSIX guarantees it converts to a function pointer. */
#define SYM(field, name) (*(void **)(&st->field) = dlsym(st->lib, name))
    if (!SYM(init, "nvmlInit_v2"))
        SYM(init, "nvmlInit");
    SYM(shutdown, "nvmlShutdown");
    SYM(error_string, "nvmlErrorString");
    if (!SYM(handle_by_index, "nvmlDeviceGetHandleByIndex_v2"))
        SYM(handle_by_index, "nvmlDeviceGetHandleByIndex");
    SYM(power_usage, "nvmlDeviceGetPowerUsage");
    SYM(total_energy, "nvmlDeviceGetTotalEnergyConsumption");
    SYM(get_name, "nvmlDeviceGetName");
#undef SYM
    if (!st->init || !st->shutdown || !st->handle_by_index || !st->power_usage)
        return jp_error_set(err, JP_ERR_UNSUPPORTED,
                            "nvml: %s lacks nvmlInit, nvmlShutdown, nvmlDeviceGetHandleByIndex or "
                            "nvmlDeviceGetPowerUsage: not NVIDIA's management library; reinstall "
                            "the NVIDIA driver",
                            libname);
    nvml_return rc = st->init();
    if (rc != NVML_SUCCESS)
        return jp_error_set(err, JP_ERR_MISSING,
                            "nvml: nvmlInit failed: %s (code %d); check the driver with "
                            "`nvidia-smi`, or choose another --power-source",
                            nvml_msg(st, rc), rc);
    st->initialised = true;
    rc = st->handle_by_index(src->opts.nvml_device, &st->dev);
    if (rc != NVML_SUCCESS)
        return jp_error_set(err, JP_ERR_MISSING,
                            "nvml: no GPU with index %u: %s (code %d); `nvidia-smi -L` lists them",
                            src->opts.nvml_device, nvml_msg(st, rc), rc);
    char name[NVML_DEVICE_NAME_BUFFER_SIZE] = "";
    if (st->get_name && st->get_name(st->dev, name, sizeof name) != NVML_SUCCESS)
        name[0] = '\0';

    unsigned long long mj = 0;
    unsigned mw = 0;
    nvml_return rc_energy =
        st->total_energy ? st->total_energy(st->dev, &mj) : NVML_ERROR_NOT_SUPPORTED;
    nvml_return rc_power = st->power_usage(st->dev, &mw);
    if (rc_energy == NVML_SUCCESS) {
        st->use_energy = true;
    } else if (rc_power != NVML_SUCCESS) {
        return jp_error_set(err, rc_power == NVML_ERROR_NO_PERMISSION ? JP_ERR_IO : JP_ERR_UNSUPPORTED,
                            "nvml: GPU %u (%s) gives neither its energy counter (%s) nor its power "
                            "(%s); choose another --power-source",
                            src->opts.nvml_device, name[0] ? name : "unnamed", nvml_msg(st, rc_energy),
                            nvml_msg(st, rc_power));
    }
    jp_status s = jp_power_add_param(src, "gpu", JP_TGR_RAIL, err);
    if (s != JP_OK)
        return s;
    snprintf(src->description, sizeof src->description,
             "nvml: GPU %u (%s) from %s, %s", src->opts.nvml_device, name[0] ? name : "unnamed",
             src->opts.nvml_library,
             st->use_energy ? "total-energy counter differences (mean power between samples)"
                            : "nvmlDeviceGetPowerUsage readings (the driver's own averaging)");
    return JP_OK;
}

static jp_status nvml_start(jp_power_source *src, jp_error *err)
{
    nvml_state *st = src->impl;
    st->have_prev = false;
    return JP_OK;
}

static jp_status nvml_poll(jp_power_source *src, int64_t t_ns, double *values, bool *have_sample,
                           jp_error *err)
{
    nvml_state *st = src->impl;
    *have_sample = false;
    if (st->use_energy) {
        unsigned long long mj;
        nvml_return rc = st->total_energy(st->dev, &mj);
        if (rc != NVML_SUCCESS)
            return jp_error_set(err, JP_ERR_DEVICE,
                                "nvml: nvmlDeviceGetTotalEnergyConsumption stopped answering: %s "
                                "(code %d)",
                                nvml_msg(st, rc), rc);
        if (!st->have_prev || mj < st->prev_mj) { /* first reading, or a driver reset */
            st->have_prev = true;
            st->prev_mj = mj;
            st->prev_t_ns = t_ns;
            return JP_OK;
        }
        if (mj == st->prev_mj || t_ns <= st->prev_t_ns)
            return JP_OK; /* the counter has not moved: nothing new */
        /* mJ per ns * 1e9 = mJ per s = mW */
        values[0] = (double)(mj - st->prev_mj) * 1e9 / (double)(t_ns - st->prev_t_ns);
        st->prev_mj = mj;
        st->prev_t_ns = t_ns;
        *have_sample = true;
        return JP_OK;
    }
    unsigned mw;
    nvml_return rc = st->power_usage(st->dev, &mw);
    if (rc != NVML_SUCCESS)
        return jp_error_set(err, JP_ERR_DEVICE,
                            "nvml: nvmlDeviceGetPowerUsage stopped answering: %s (code %d)",
                            nvml_msg(st, rc), rc);
    values[0] = (double)mw;
    *have_sample = true;
    return JP_OK;
}

static void nvml_close(jp_power_source *src)
{
    nvml_state *st = src->impl;
    if (!st)
        return;
    if (st->initialised && st->shutdown)
        st->shutdown();
    if (st->lib)
        dlclose(st->lib);
    free(st);
    src->impl = NULL;
}

const jp_power_backend jp_power_backend_nvml = {
    .kind = JP_POWER_NVML,
    .open = nvml_open,
    .start = nvml_start,
    .poll = nvml_poll,
    .close = nvml_close,
};
