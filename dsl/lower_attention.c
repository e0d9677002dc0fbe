/* lower_attention.c — attention(q, k, v, causal=false, scale=1/sqrt(d)): PyTorch's
 * scaled_dot_product_attention as one IR node (OP_ATTENTION), which the emitter computes
 * as one fused kernel per example and head (codegen/emit_attention.c) and autodiff
 * differentiates as a whole (grad.c), instead of the five nodes of the composition
 * softmax((q @ transpose(k)) * scale + mask) @ v.  This file reads the call's options;
 * shape.c checks the operands' shapes and fills in the default scale once d is known. */
#include "lower_internal.h"
#include <math.h>

ir_node *call_attention(lower *L, const ast_expr *e, const callargs *ca) {
    int causal = 0;
    double scale = NAN;   /* not given: 1/sqrt(d), set by shape inference */
    if (ca->kw[3] && lower_bool_arg(L, ca->kw[3], "causal", &causal)) return lower_bad_node(L, e->at);
    if (ca->kw[4] && lower_number_arg(L, ca->kw[4], "scale of attention", &scale)) return lower_bad_node(L, e->at);
    if (L->scan_depth) {
        /* a scan stores its body's tensors once per step, but not the kernel's saved
         * probabilities, which the backward loop would then read from the last step */
        diag_error(L->d, e->at, "attention cannot be used inside a scan's function; apply it to the "
                   "whole sequence outside the scan");
        return lower_bad_node(L, e->at);
    }
    ir_node *in[3];
    for (int i = 0; i < 3; i++) in[i] = lower_expr(L, ca->pos[i]->value);
    ir_node *n = ir_node_new(L->g, OP_ATTENTION, 3, in, e->at);
    n->attr[0] = causal;
    n->attr[1] = scale;
    return n;
}
