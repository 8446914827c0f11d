/*
 * fake_nvml.c: a tiny stand-in for NVIDIA's libnvidia-ml.so.1, so that the
 * nvml power source can be tested on machines without an NVIDIA driver.
 *
 * Not a program: tests/test_power_sources.c builds it at run time with
 *   cc -shared -fPIC -o <tmp>/libnvidia-ml.so.1 tests/fake_nvml.c
 * and points the source's library path at the result (the Makefile must
 * not build it as a program).
 *
 * It exports the entry points power_nvml.c uses, with NVML's types and
 * return codes, for one device (index 0).  Environment, read at nvmlInit:
 *   FAKE_NVML_MODE      energy (default: energy counter and power usage),
 *                       power (no energy counter: NOT_SUPPORTED),
 *                       none (neither), init_fail (nvmlInit fails as with
 *                       no driver loaded)
 *   FAKE_NVML_POWER_MW  the true draw; the energy counter (mJ) grows at
 *                       this rate from nvmlInit on (default 75000)
 *   FAKE_NVML_USAGE_MW  what nvmlDeviceGetPowerUsage returns (default the
 *                       true draw), so a test can tell which was read
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
};

static int g_initialised;
static char g_mode[32] = "energy";
static double g_power_mw = 75000.0, g_usage_mw = 75000.0;
static struct timespec g_t0;
static int g_device_token; /* the handle points here */

static double env_double(const char *name, double fallback)
{
    const char *v = getenv(name);
    return v && *v ? strtod(v, NULL) : fallback;
}

nvmlReturn_t nvmlInit_v2(void)
{
    const char *m = getenv("FAKE_NVML_MODE");
    snprintf(g_mode, sizeof g_mode, "%s", m && *m ? m : "energy");
    if (strcmp(g_mode, "init_fail") == 0)
        return NVML_ERROR_DRIVER_NOT_LOADED;
    g_power_mw = env_double("FAKE_NVML_POWER_MW", 75000.0);
    g_usage_mw = env_double("FAKE_NVML_USAGE_MW", g_power_mw);
    clock_gettime(CLOCK_MONOTONIC, &g_t0);
    g_initialised = 1;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
    if (!g_initialised)
        return NVML_ERROR_UNINITIALIZED;
    g_initialised = 0;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t rc)
{
    switch (rc) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned index, nvmlDevice_t *device)
{
    if (!g_initialised)
        return NVML_ERROR_UNINITIALIZED;
    if (index != 0 || !device)
        return NVML_ERROR_INVALID_ARGUMENT;
    *device = (nvmlDevice_t)(void *)&g_device_token;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned length)
{
    if (!g_initialised)
        return NVML_ERROR_UNINITIALIZED;
    snprintf(name, length, "Fake NVML GPU");
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned *mw)
{
    if (!g_initialised)
        return NVML_ERROR_UNINITIALIZED;
    if (strcmp(g_mode, "none") == 0)
        return NVML_ERROR_NOT_SUPPORTED;
    *mw = (unsigned)g_usage_mw;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *mj)
{
    if (!g_initialised)
        return NVML_ERROR_UNINITIALIZED;
    if (strcmp(g_mode, "energy") != 0)
        return NVML_ERROR_NOT_SUPPORTED;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    double s = (double)(t.tv_sec - g_t0.tv_sec) + (double)(t.tv_nsec - g_t0.tv_nsec) / 1e9;
    /* mW * s = mJ, on top of what the GPU drew before the test began */
    *mj = 123456789ULL + (unsigned long long)(g_power_mw * s);
    return NVML_SUCCESS;
}
