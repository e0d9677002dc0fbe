/* layer_conv.c — the convolutional layers of the built-in table (builtins.c): conv1d on
 * [C, L], conv2d on [C, H, W], and maxpool2d and avgpool2d.
 *
 * These need their input's shape to size their parameters and lowering buffers, so they
 * first run shape inference over what is built so far (layer_input).  conv2d is the
 * weight viewed [out, in*kh*kw] times im2col's patches [in*kh*kw, positions], plus the
 * bias; conv1d is the same with a height of 1. */
#include "lower_internal.h"
#include <string.h>

static int64_t kernel_dim(lower *L, const ast_arg *a, int which, int64_t *v) {
    const ast_expr *e = a->value;
    if (e->kind == AST_LIST) {
        int i = 0;
        for (const ast_arg *d = e->args; d; d = d->next, i++)
            if (i == which) return lower_int_arg(L, d, "a kernel or stride size", 1, 1 << 16, v);
        diag_error(L->d, e->at, "give one size, or one per spatial axis");
        return -1;
    }
    return lower_int_arg(L, a, "a kernel or stride size", 1, 1 << 16, v);
}

/* pad=valid | same | N along one axis of length len: padding before and output length.
 * same follows Keras (output ceil(len / stride), the odd element of padding after). */
static int pad_geometry(lower *L, const ast_arg *pad, int64_t len, int64_t k, int64_t s, int64_t *before,
                        int64_t *out) {
    int64_t p = 0;
    const ast_expr *e = pad ? pad->value : NULL;
    if (e && e->kind == AST_NAME && !strcmp(e->name, "same")) {
        *out = (len + s - 1) / s;
        int64_t total = (*out - 1) * s + k - len;
        *before = total > 0 ? total / 2 : 0;
        return 0;
    }
    if (e && !(e->kind == AST_NAME && !strcmp(e->name, "valid")) &&
        lower_int_arg(L, pad, "pad (valid, same or a number)", 0, 1 << 16, &p))
        return -1;
    *before = p;
    *out = len + 2 * p >= k ? (len + 2 * p - k) / s + 1 : 0;
    return 0;
}

ir_node *call_conv(lower *L, const ast_expr *e, const callargs *ca) {
    int dims = ca->how;
    if (!ca->kw[2]) {
        diag_error(L->d, e->at, "%s needs kernel=k", e->name);
        return lower_bad_node(L, e->at);
    }
    ir_node *x = layer_input(L, e, ca->pos[0], dims + 1, dims == 2 ? "[C, H, W]" : "[C, L]");
    int64_t filters, kh = 1, kw, sh = 1, sw = 1;
    if (!x || lower_int_arg(L, ca->pos[1], "the filters of a convolution", 1, 1 << 16, &filters) ||
        kernel_dim(L, ca->kw[2], dims - 1, &kw) || (dims == 2 && kernel_dim(L, ca->kw[2], 0, &kh)) ||
        (ca->kw[3] && (kernel_dim(L, ca->kw[3], dims - 1, &sw) || (dims == 2 && kernel_dim(L, ca->kw[3], 0, &sh)))))
        return lower_bad_node(L, e->at);
    int bias = 1;
    if (ca->kw[5] && lower_bool_arg(L, ca->kw[5], "bias=", &bias)) return lower_bad_node(L, e->at);
    ir_param_info winit = {INIT_GLOROT_UNIFORM, 0, 0, 0}, binit = {INIT_ZEROS, 0, 0, 0};
    if (ca->kw[6] && lower_init(L, ca->kw[6]->value, &winit)) return lower_bad_node(L, e->at);
    ir_conv g = {.c = x->shape.dim[0], .h = dims == 2 ? x->shape.dim[1] : 1, .w = x->shape.dim[dims],
                 .kh = kh, .kw = kw, .sh = sh, .sw = sw};
    if ((dims == 2 && pad_geometry(L, ca->kw[4], g.h, kh, sh, &g.ph, &g.oh)) ||
        pad_geometry(L, ca->kw[4], g.w, kw, sw, &g.pw, &g.ow))
        return lower_bad_node(L, e->at);
    if (dims == 1) g.oh = 1;
    if (g.oh < 1 || g.ow < 1) {
        diag_error(L->d, e->at, "%s: the kernel does not fit in %s", e->name, ir_shape_str(L->g->a, &x->shape));
        return lower_bad_node(L, e->at);
    }
    int64_t k = g.c * kh * kw, positions = g.oh * g.ow;
    ir_shape wshape = dims == 2 ? (ir_shape){4, {filters, g.c, kh, kw}} : (ir_shape){3, {filters, g.c, kw}};
    ir_node *w = layer_param(L, "weight", wshape, winit, e->at);
    ir_node *b = bias ? layer_param(L, "bias", (ir_shape){1, {filters}}, binit, e->at) : NULL;
    L->layers++;
    ir_node *col = ir_unary(L->g, OP_IM2COL, x, e->at);
    col->conv = g;
    col->shape = (ir_shape){2, {k, positions}};
    col->batched = x->batched;
    /* W viewed [F, K] times the patches [K, P]: the output comes out channel-first */
    ir_node *y = ir_binary(L->g, OP_MATMUL, layer_view_as(L, w, (ir_shape){2, {filters, k}}, e->at), col, e->at);
    y->mm = (ir_mm){.ar = filters, .ac = k, .br = k, .bc = positions};
    y->what = e->name;
    /* the bias is added to the output's own shape, so that bias and activation fuse into
     * one loop over it (through a view the add would need a buffer of its own) */
    ir_shape out = dims == 2 ? (ir_shape){3, {filters, g.oh, g.ow}} : (ir_shape){2, {filters, g.ow}};
    y = layer_view_as(L, y, out, e->at);
    if (b) {
        ir_shape bshape = dims == 2 ? (ir_shape){3, {filters, 1, 1}} : (ir_shape){2, {filters, 1}};
        y = ir_binary(L->g, OP_ADD, y, layer_view_as(L, b, bshape, e->at), e->at);
    }
    return y;
}

ir_node *call_pool(lower *L, const ast_expr *e, const callargs *ca) {
    int is_max = ca->how;
    ir_node *x = layer_input(L, e, ca->pos[0], 3, "[C, H, W]");
    int64_t kh, kw, sh, sw;
    if (!x || kernel_dim(L, ca->pos[1], 0, &kh) || kernel_dim(L, ca->pos[1], 1, &kw)) return lower_bad_node(L, e->at);
    sh = kh, sw = kw;
    if (ca->kw[2] && (kernel_dim(L, ca->kw[2], 0, &sh) || kernel_dim(L, ca->kw[2], 1, &sw)))
        return lower_bad_node(L, e->at);
    ir_conv g = {.c = x->shape.dim[0], .h = x->shape.dim[1], .w = x->shape.dim[2], .kh = kh, .kw = kw, .sh = sh, .sw = sw};
    g.oh = g.h >= kh ? (g.h - kh) / sh + 1 : 0;
    g.ow = g.w >= kw ? (g.w - kw) / sw + 1 : 0;
    if (g.oh < 1 || g.ow < 1) {
        diag_error(L->d, e->at, "%s: the window does not fit in %s", e->name, ir_shape_str(L->g->a, &x->shape));
        return lower_bad_node(L, e->at);
    }
    ir_node *p = ir_unary(L->g, OP_POOL, x, e->at);
    p->conv = g;
    p->attr[0] = is_max;
    p->shape = (ir_shape){3, {g.c, g.oh, g.ow}};
    p->batched = x->batched;
    return p;
}
