/* layer_dense.c — dense(x, units), and what every layer of the library uses: its input
 * with the shape inferred so far, its parameters numbered by layer (lower.c names them
 * after the binding: h.weight, or h.0.weight and h.1.weight for two layers in one
 * binding; share=NAME takes NAME's instead) and views of a tensor as another shape; and
 * the tensors one_hot(ids, K), zeros(SHAPE) and ones(SHAPE).
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

/* A parameter of the layer being built; attr[1] numbers the layer, for its name.  Under
 * share=NAME it is NAME's parameter of that name instead (a shape of rank 0: not known yet). */
ir_node *layer_param(lower *L, const char *name, ir_shape shape, ir_param_info init, loc at) {
    if (L->share && L->share_depth == L->call_depth) return lower_shared_param(L, name, shape, at);
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
 * no shape here (and checks a shared one's there). */
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
    in[1] = layer_param(L, "weight", (ir_shape){0}, winit, e->at);
    if (bias) in[2] = layer_param(L, "bias", (ir_shape){0}, binit, e->at);
    L->layers++;
    ir_node *n = ir_node_new(L->g, OP_DENSE, 2 + bias, in, e->at);
    n->attr[0] = (double)units;
    return n;
}


/* one_hot(ids, K): 1 at each class index, 0 elsewhere, as [..., K] floats.  It is the
 * scatter that cross_entropy's gradient uses (pick_grad) of the constant 1; no gradient
 * flows to class indices. */
ir_node *call_one_hot(lower *L, const ast_expr *e, const callargs *ca) {
    int64_t k;
    ir_node *ids = lower_expr(L, ca->pos[0]->value);
    shape_upto(L->g, L->d);
    if (ids->bad || lower_int_arg(L, ca->pos[1], "the class count of one_hot", 1, 1 << 24, &k))
        return lower_bad_node(L, e->at);
    if (ids->dtype != DT_CLASS || ids->classes > k || ids->shape.rank == IR_MAXRANK) {
        diag_error(L->d, ca->pos[0]->value->at, ids->dtype != DT_CLASS
                   ? "one_hot takes class indices, such as a label or `input ids: class(K) [T]`"
                   : ids->classes > k ? "one_hot: the ids are class(%d), more than %lld classes"
                                      : "one_hot: the ids have the most axes a tensor can have", ids->classes, (long long)k);
        return lower_bad_node(L, e->at);
    }
    ir_node *n = ir_binary(L->g, OP_PICK_GRAD, ir_const(L->g, 1, e->at), ids, e->at);
    n->shape = ids->shape;
    n->shape.dim[n->shape.rank++] = k;
    n->batched = ids->batched;
    n->what = "one_hot";
    return n;
}

/* zeros(SHAPE), ones(SHAPE): a constant broadcast to SHAPE, without a batch (it broadcasts
 * like a parameter). */
ir_node *call_filled(lower *L, const ast_expr *e, const callargs *ca) {
    const ast_expr *list = ca->pos[0]->value;
    if (list->kind != AST_LIST) {
        diag_error(L->d, list->at, "%s takes a shape, a list such as %s([4, 7])", e->name, e->name);
        return lower_bad_node(L, e->at);
    }
    ir_shape s = {0};
    for (const ast_arg *a = list->args; a; a = a->next) {
        int64_t v;
        if (s.rank == IR_MAXRANK) {
            diag_error(L->d, a->at, "a shape has at most %d dimensions", IR_MAXRANK);
            return lower_bad_node(L, e->at);
        }
        if (lower_int_arg(L, a, "a shape dimension", 1, (int64_t)1 << 31, &v)) return lower_bad_node(L, e->at);
        s.dim[s.rank++] = v;
    }
    ir_node *c = ir_const(L->g, ca->how, e->at);
    if (s.rank == 0) return c;
    ir_node *n = ir_unary(L->g, OP_EXPAND, c, e->at);
    n->shape = s;
    n->what = e->name;
    return n;
}
