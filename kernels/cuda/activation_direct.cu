/*
 * activation_direct.cu: "cuda/<activation>/direct" for the activations that
 * have no kernel file of their own (relu6, hardswish, hardsigmoid): y =
 * act(x) elementwise with the device math of cuda_context.h
 * (jp_cuda_act_map); the activation is the op's descriptor's (jp_ops.h).
 * Any rank; in place (y == x) allowed.
 *
 * Compiled in this build; it has not run on a GPU yet (no device was lent
 * when it was written).
 */
#include "cuda_context.h"

extern "C" {
#include "../../engine/jp_ops.h"
}

static bool activation_supports(const jp_step *step)
{
    const jp_op_desc *d = step->op ? jp_op_desc_of(step->op->type) : NULL;
    return d && d->activation != JP_ACT_NONE && jp_cuda_step_on_device(step) && jp_cuda_no_fusion(step) &&
           jp_cuda_same_numel(step, 1);
}

static jp_status activation_run(void *state, const jp_step *step, jp_error *err)
{
    (void)state;
    const jp_activation act = jp_op_desc_of(step->op->type)->activation;
    if (jp_cuda_act_map(step->out.data, step->in[0].data, jp_tensor_numel(&step->out), act, err) != JP_OK)
        return jp_error_prefix(err, "%s (cuda/%s/direct): ", step->op->name, jp_op_type_name(step->op->type));
    return JP_OK;
}

/* X(op, OP): jp_cuda_<op>_direct, "cuda/<op>/direct". */
#define ACTIVATION_KERNELS(X) X(relu6, RELU6) X(hardswish, HARDSWISH) X(hardsigmoid, HARDSIGMOID) X(gelu, GELU)

#define ACTIVATION_KERNEL_(op, OP)                                                                            \
    extern "C" const jp_kernel jp_cuda_##op##_direct = {                                                      \
        /* name         */ "cuda/" #op "/direct",                                                             \
        /* device       */ JP_DEVICE_CUDA,                                                                    \
        /* op_type      */ JP_OP_##OP,                                                                        \
        /* is_reference */ false,                                                                             \
        /* priority     */ 100,                                                                               \
        /* supports     */ activation_supports,                                                               \
        /* prepare      */ NULL,                                                                              \
        /* run          */ activation_run,                                                                    \
        /* release      */ NULL,                                                                              \
    };
ACTIVATION_KERNELS(ACTIVATION_KERNEL_)
#undef ACTIVATION_KERNEL_
