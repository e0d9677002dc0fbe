/* layer_norm.c — the normalization layers of the built-in table (builtins.c), and dropout:
 * dropout(x, p) and batchnorm(x), which behave differently in training and in inference,
 * and layernorm(x) and rmsnorm(x), which normalize each row on its own statistics.
 *
 * dropout and batchnorm are built from elementwise ops and reductions, with a select between
 * the training and the inference form (the generated code has a path for each mode);
 * batchnorm's running statistics are parameters that a node run for its side effect in
 * training (OP_BN_UPDATE) updates.  layernorm and rmsnorm are one fused row op each
 * (emit_norm.c), whose per-row statistics are a by-product node the backward pass reads. */
#include "lower_internal.h"

ir_node *call_dropout(lower *L, const ast_expr *e, const callargs *ca) {
    double p;
    ir_node *x = lower_expr(L, ca->pos[0]->value);
    if (lower_number_arg(L, ca->pos[1], "the rate of dropout", &p)) return lower_bad_node(L, e->at);
    if (p < 0 || p >= 1) {
        diag_error(L->d, ca->pos[1]->value->at, "the rate of dropout must be in [0, 1)");
        return lower_bad_node(L, e->at);
    }
    if (p == 0) return x;
    ir_node *mask = ir_unary(L->g, OP_DROPOUT_MASK, x, e->at);   /* x only gives the shape */
    mask->attr[0] = p;
    ir_node *kept = ir_binary(L->g, OP_MUL, x, mask, e->at);
    ir_node *sel = ir_binary(L->g, OP_SELECT, kept, x, e->at);
    sel->what = "dropout";
    return sel;
}

static ir_node *scaled(lower *L, ir_node *x, double per_example, loc at) {   /* x / (n * per_example) */
    ir_node *inv = ir_node_new(L->g, OP_INV_N, 0, NULL, at);
    inv->ranks = 1;   /* the batch its statistics span: all processes' when they are summed */
    return ir_binary(L->g, OP_MUL, ir_binary(L->g, OP_MUL, x, inv, at),
                     ir_const(L->g, 1 / per_example, at), at);
}

/* batchnorm(x): per feature of [F], per channel of [C, ...]; batch statistics in
 * training (biased variance), running ones in inference; momentum 0.1, eps 1e-5. */
ir_node *call_batchnorm(lower *L, const ast_expr *e, const callargs *ca) {
    double momentum = 0.1, eps = 1e-5;
    if ((ca->kw[1] && lower_number_arg(L, ca->kw[1], "momentum", &momentum)) ||
        (ca->kw[2] && lower_number_arg(L, ca->kw[2], "eps", &eps)))
        return lower_bad_node(L, e->at);
    ir_node *x = layer_input(L, e, ca->pos[0], 0, "");
    if (!x) return lower_bad_node(L, e->at);
    if (x->shape.rank == 0 || !x->batched) {
        diag_error(L->d, e->at, "batchnorm normalizes features over the batch; its input needs a batch and an axis");
        return lower_bad_node(L, e->at);
    }
    loc at = e->at;
    ir_graph *g = L->g;
    int64_t c = x->shape.dim[0], per = ir_numel(&x->shape) / c;
    ir_shape vec = {1, {c}}, cs = x->shape;   /* [C, 1, ..., 1] */
    for (int i = 1; i < cs.rank; i++) cs.dim[i] = 1;
    ir_node *w = layer_param(L, "weight", vec, (ir_param_info){INIT_ONES, 0, 0, 0}, at);
    ir_node *b = layer_param(L, "bias", vec, (ir_param_info){INIT_ZEROS, 0, 0, 0}, at);
    ir_node *rm = layer_param(L, "running_mean", vec, (ir_param_info){INIT_ZEROS, 0, 0, 1}, at);
    ir_node *rv = layer_param(L, "running_var", vec, (ir_param_info){INIT_ONES, 0, 0, 1}, at);
    L->layers++;
    ir_node *wv = layer_view_as(L, w, cs, at), *bv = layer_view_as(L, b, cs, at);
    ir_node *s1 = ir_unary(g, OP_SUM_TO, x, at);
    s1->shape = cs;
    s1->ranks = s1->keep = 1;   /* synchronized batchnorm sums it over the processes too */
    ir_node *mean = scaled(L, s1, (double)per, at);
    ir_node *xc = ir_binary(g, OP_SUB, x, mean, at);
    ir_node *s2 = ir_unary(g, OP_SUM_TO, ir_binary(g, OP_MUL, xc, xc, at), at);
    s2->shape = cs;
    s2->ranks = s2->keep = 1;
    ir_node *var = scaled(L, s2, (double)per, at);
    ir_node *inv = ir_unary(g, OP_POWC, ir_binary(g, OP_ADD, var, ir_const(g, eps, at), at), at);
    inv->attr[0] = -0.5;
    ir_node *train = ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, ir_binary(g, OP_MUL, xc, inv, at), wv, at), bv, at);
    ir_node *rinv = ir_unary(g, OP_POWC, ir_binary(g, OP_ADD, layer_view_as(L, rv, cs, at), ir_const(g, eps, at), at),
                             at);
    rinv->attr[0] = -0.5;
    ir_node *infer = ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, ir_binary(g, OP_MUL, ir_binary(g, OP_SUB, x,
                               layer_view_as(L, rm, cs, at), at), rinv, at), wv, at), bv, at);
    ir_node *y = ir_binary(g, OP_SELECT, train, infer, at);
    y->what = "batchnorm";
    ir_node *upd_in[4] = {rm, rv, mean, var};
    ir_node *upd = ir_node_new(g, OP_BN_UPDATE, 4, upd_in, at);
    upd->attr[0] = momentum;
    upd->attr[1] = (double)per;
    ptrvec_push(g->a, &g->effects, upd);
    return y;
}

/* layernorm(x) and rmsnorm(x) (how = 1) over the last axis of x, of any rank, batched or
 * not, as PyTorch's LayerNorm(D) and RMSNorm(D): weight [D] (ones), and layernorm's bias [D]
 * (zeros).  The row op's pass also writes each row's statistics into norm_stats (mean and
 * 1/std; rmsnorm: 1/rms), so that backward reads them instead of computing them again. */
ir_node *call_rownorm(lower *L, const ast_expr *e, const callargs *ca) {
    int rms = ca->how;
    double eps = rms ? 1e-6 : 1e-5;
    if (ca->kw[1] && lower_number_arg(L, ca->kw[1], "eps", &eps)) return lower_bad_node(L, e->at);
    if (eps < 0) {
        diag_error(L->d, ca->kw[1]->value->at, "eps of %s must be >= 0", e->name);
        return lower_bad_node(L, e->at);
    }
    ir_node *x = layer_input(L, e, ca->pos[0], 0, "floats");
    if (!x) return lower_bad_node(L, e->at);
    int last = x->shape.rank - 1;
    if (last < 0) {
        diag_error(L->d, e->at, "%s normalizes the last axis of its input, but %s is a scalar per example", e->name,
                   x->name ? arena_printf(L->g->a, "'%s'", x->name) : "its input");
        return lower_bad_node(L, e->at);
    }
    ir_shape vec = {1, {x->shape.dim[last]}};
    ir_node *in[3] = {x, layer_param(L, "weight", vec, (ir_param_info){INIT_ONES, 0, 0, 0}, e->at), NULL};
    if (!rms) in[2] = layer_param(L, "bias", vec, (ir_param_info){INIT_ZEROS, 0, 0, 0}, e->at);
    L->layers++;
    ir_node *y = ir_node_new(L->g, rms ? OP_RMSNORM : OP_LAYERNORM, rms ? 2 : 3, in, e->at);
    y->attr[0] = eps;
    ir_node *stats = ir_unary(L->g, OP_NORM_STATS, y, e->at);
    stats->shape = x->shape;
    stats->shape.dim[last] = rms ? 1 : 2;
    stats->batched = x->batched;
    return y;
}
