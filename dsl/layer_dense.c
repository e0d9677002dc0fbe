/* layer_dense.c — dense(x, units), and what every layer of the library uses: its input
 * with the shape inferred so far, its parameters numbered by layer (lower.c names them
 * after the binding: h.weight, or h.0.weight and h.1.weight for two layers in one
 * binding) and views of a tensor as another shape.
 *
 * A new layer is a row in builtins.c and a call_ function like call_dense in the
 * layer_ file of its family, declared with the others in lower_internal.h. */
#include "lower_internal.h"
#include "shape.h"

ir_node *layer_view_as(lower *L, ir_node *x, ir_shape shape, loc at) {
    ir_node *v = lower_view(L, x, VIEW_GIVEN, IR_NOAXIS, at);
    v->shape = shape;
    return v;
}

/* A parameter of the layer being built; attr[1] numbers the layer, for its name. */
ir_node *layer_param(lower *L, const char *name, ir_shape shape, ir_param_info init, loc at) {
    ir_node *p = lower_new_param(L, name, at, init);
    p->shape = shape;
    p->attr[1] = L->layers;
    ptrvec_push(L->g->a, &L->layer_params, p);
    return p;
}

/* The input of a layer, shape inferred, with the rank it must have per example. */
ir_node *layer_input(lower *L, const ast_expr *e, const ast_arg *a, int rank, const char *layout) {
    ir_node *x = lower_expr(L, a->value);
    shape_upto(L->g, L->d);
    if (x->bad) return NULL;
    if (x->dtype == DT_CLASS || (rank && x->shape.rank != rank)) {
        diag_error(L->d, e->at, "%s takes %s per example; %s is %s", e->name, layout,
                   x->name ? arena_printf(L->g->a, "'%s'", x->name) : "its input", ir_shape_str(L->g->a, &x->shape));
        return NULL;
    }
    return x;
}

/* Shape inference sizes dense's parameters (shape.c), so unlike the other layers it needs
 * no shape here and makes them without layer_param. */
ir_node *call_dense(lower *L, const ast_expr *e, const callargs *ca) {
    ir_node *x = lower_expr(L, ca->pos[0]->value);
    int64_t units;
    if (lower_int_arg(L, ca->pos[1], "the units of dense", 1, 1 << 24, &units)) return lower_bad_node(L, e->at);
    int bias = 1;
    if (ca->kw[2] && lower_bool_arg(L, ca->kw[2], "bias=", &bias)) return lower_bad_node(L, e->at);
    ir_param_info winit = {INIT_GLOROT_UNIFORM, 0, 0, 0}, binit = {INIT_ZEROS, 0, 0, 0};
    if (ca->kw[3] && lower_init(L, ca->kw[3]->value, &winit)) return lower_bad_node(L, e->at);
    ir_node *in[3];
    in[0] = x;
    in[1] = lower_new_param(L, "weight", e->at, winit);
    ptrvec_push(L->g->a, &L->layer_params, in[1]);
    if (bias) {
        in[2] = lower_new_param(L, "bias", e->at, binit);
        ptrvec_push(L->g->a, &L->layer_params, in[2]);
    }
    for (int i = 1; i < 2 + bias; i++) in[i]->attr[1] = L->layers;   /* layer number, for naming */
    L->layers++;
    ir_node *n = ir_node_new(L->g, OP_DENSE, 2 + bias, in, e->at);
    n->attr[0] = (double)units;
    return n;
}

