/*
 * activation_reference.c: cpu/<activation>/reference for every op whose
 * descriptor is an activation (relu, silu, sigmoid, relu6, hardswish,
 * hardsigmoid): y = act(x) elementwise, with the vector math the fused
 * epilogues use (cpu_simd.h), split over threads when large.  Their own
 * references: tests/test_cpu_kernels.c checks them against the libm formulas.
 *
 * One kernel per op type, since kernels are registered per op; a new
 * activation is one line of ACTIVATION_KERNELS.
 */
#include "cpu_internal.h"

#include "../../engine/jp_ops.h"

static bool activation_supports(const jp_step *step)
{
    const jp_op_desc *d = step->op ? jp_op_desc_of(step->op->type) : NULL;
    return d && d->activation != JP_ACT_NONE && jp_cpu_step_on_cpu(step) && jp_cpu_no_fusion(step) &&
           jp_cpu_same_numel(step, 1);
}

static jp_status activation_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    (void)err;
    const jp_activation act = jp_op_desc_of(step->op->type)->activation;
    jp_cpu_act_map(step->out.data, step->in[0].data, jp_tensor_numel(&step->out), act);
    return JP_OK;
}

/* X(op, OP): the kernel jp_cpu_<op>_reference, "cpu/<op>/reference". */
#define ACTIVATION_KERNELS(X)                                                                                 \
    X(relu, RELU) X(silu, SILU) X(sigmoid, SIGMOID) X(relu6, RELU6) X(hardswish, HARDSWISH)                   \
    X(hardsigmoid, HARDSIGMOID) X(gelu, GELU)

#define ACTIVATION_KERNEL_(op, OP)                                                                            \
    const jp_kernel jp_cpu_##op##_reference = {                                                               \
        .name = "cpu/" #op "/reference",                                                                      \
        .device = JP_DEVICE_CPU,                                                                              \
        .op_type = JP_OP_##OP,                                                                                \
        .is_reference = true,                                                                                 \
        .priority = 0,                                                                                        \
        .supports = activation_supports,                                                                      \
        .run = activation_run,                                                                                \
    };
ACTIVATION_KERNELS(ACTIVATION_KERNEL_)
#undef ACTIVATION_KERNEL_
