/* losses.c — the losses and regularizers of the built-in table (builtins.c): mse, sse,
 * nll, l1_loss, bce, bce_logits, logistic, hinge, kl_div, triplet, and l1 and l2 of a
 * parameter (cross_entropy is an op of its own: call_binary in lower.c).
 *
 * Each is its definition in docs/language.md ("Losses") written with ops that autodiff and fusion already know,
 * in the numerically stable form where there is one (softplus for the logit losses).
 * Their nodes carry the loss's name for error messages. */
#include "lower_internal.h"
#include <string.h>

/* mse(p, t) = mean((p - t)^2), sse(p, t) = 1/2 sum((p - t)^2): built from simpler ops so
 * autodiff and fusion handle them like any user expression. */
ir_node *call_squared_error(lower *L, const ast_expr *e, const callargs *ca) {
    int mean = ca->how;
    ir_node *p = lower_expr(L, ca->pos[0]->value), *t = lower_expr(L, ca->pos[1]->value);
    ir_node *diff = ir_binary(L->g, OP_SUB, p, t, e->at);
    diff->what = e->name;
    ir_node *sq = ir_unary(L->g, OP_POWC, diff, e->at);
    sq->attr[0] = 2;
    ir_node *s = ir_unary(L->g, OP_SUM, sq, e->at);
    s->attr[0] = mean ? 1 : 0.5;
    s->attr[1] = mean;
    return s;
}

static ir_node *named_op(ir_node *n, const char *what) {
    n->what = what;
    return n;
}

static ir_node *mean_all(lower *L, ir_node *x, loc at) {
    ir_node *s = ir_unary(L->g, OP_SUM, x, at);
    s->attr[0] = 1;
    s->attr[1] = 1;
    return s;
}

static ir_node *sum_all(lower *L, ir_node *x, loc at) {
    ir_node *s = ir_unary(L->g, OP_SUM, x, at);
    s->attr[0] = 1;
    return s;
}

ir_node *call_loss(lower *L, const ast_expr *e, const callargs *ca) {
    const char *f = e->name;
    ir_node *a = lower_expr(L, ca->pos[0]->value), *b = lower_expr(L, ca->pos[1]->value);
    loc at = e->at;
    ir_graph *g = L->g;
    if (!strcmp(f, "nll"))     /* -logp[y] */
        return ir_unary(g, OP_NEG, named_op(ir_binary(g, OP_PICK, a, b, at), f), at);
    if (!strcmp(f, "hinge")) { /* sum_j max(0, 1 + z_j - z_y) over j != y: the j = y term is 1 */
        ir_node *zy_ = named_op(ir_binary(g, OP_PICK, a, b, at), f);
        ir_node *margins = lower_map_of(L, "relu", ir_binary(g, OP_ADD, ir_const(g, 1, at),
                                                       named_op(ir_binary(g, OP_SUB, a, zy_, at), f), at), at);
        return ir_binary(g, OP_SUB, sum_all(L, margins, at), ir_const(g, 1, at), at);
    }
    if (!strcmp(f, "l1_loss"))  /* mean |p - t| */
        return mean_all(L, lower_map_of(L, "abs", named_op(ir_binary(g, OP_SUB, a, b, at), f), at), at);
    if (!strcmp(f, "bce")) {    /* -mean(t log p + (1 - t) log(1 - p)), each log clamped at -100 as in PyTorch */
        ir_node *one = ir_const(g, 1, at);
        ir_node *pos = named_op(ir_binary(g, OP_MUL, b, lower_map_of(L, "_log_clamped", a, at), at), f);
        ir_node *neg = ir_binary(g, OP_MUL, ir_binary(g, OP_SUB, one, b, at),
                                 lower_map_of(L, "_log_clamped", ir_binary(g, OP_SUB, ir_const(g, 1, at), a, at), at),
                                 at);
        return ir_unary(g, OP_NEG, mean_all(L, ir_binary(g, OP_ADD, pos, neg, at), at), at);
    }
    if (!strcmp(f, "bce_logits")) /* mean(softplus(z) - z t): log(1 + e^z) - z t, stable */
        return mean_all(L, ir_binary(g, OP_SUB, lower_map_of(L, "softplus", a, at),
                                     named_op(ir_binary(g, OP_MUL, a, b, at), f), at), at);
    if (!strcmp(f, "logistic"))   /* mean log(1 + exp(-t z)) = mean softplus(-t z) */
        return mean_all(L, lower_map_of(L, "softplus",
                                        ir_unary(g, OP_NEG, named_op(ir_binary(g, OP_MUL, b, a, at), f), at), at), at);
    if (!strcmp(f, "kl_div"))     /* sum q (log q - logp), with 0 log 0 = 0 */
        return sum_all(L, ir_binary(g, OP_SUB, lower_map_of(L, "_xlogx", b, at),
                                    named_op(ir_binary(g, OP_MUL, b, a, at), f), at), at);
    /* triplet: max(0, margin + |a - p| - |a - n|), distances as PyTorch's pairwise_distance (eps 1e-6) */
    double margin = 1;
    if (lower_arg_at(ca, 3) && lower_number_arg(L, lower_arg_at(ca, 3), "the margin of triplet", &margin))
        return lower_bad_node(L, at);
    ir_node *n = lower_expr(L, ca->pos[2]->value);
    ir_node *dp = named_op(ir_binary(g, OP_ADD, ir_binary(g, OP_SUB, a, b, at), ir_const(g, 1e-6, at), at), f);
    ir_node *dn = named_op(ir_binary(g, OP_ADD, ir_binary(g, OP_SUB, a, n, at), ir_const(g, 1e-6, at), at), f);
    ir_node *np = lower_map_of(L, "sqrt", sum_all(L, ir_binary(g, OP_MUL, dp, dp, at), at), at);
    ir_node *nn = lower_map_of(L, "sqrt", sum_all(L, ir_binary(g, OP_MUL, dn, dn, at), at), at);
    return lower_map_of(L, "relu", ir_binary(g, OP_ADD, ir_const(g, margin, at), ir_binary(g, OP_SUB, np, nn, at), at),
                        at);
}

/* l2(W) = sum of squares, l1(W) = sum of absolute values, of a parameter. */
ir_node *call_regularizer(lower *L, const ast_expr *e, const callargs *ca) {
    ir_node *w = lower_expr(L, ca->pos[0]->value);
    if (!w->bad && w->op == OP_CONST_TENSOR) {
        diag_error(L->d, ca->pos[0]->value->at, "%s() regularizes a parameter; '%s' is a const tensor, which is "
                   "never trained", e->name, w->name);
        return lower_bad_node(L, e->at);
    }
    if (!w->bad && w->op != OP_PARAM) {
        diag_error(L->d, ca->pos[0]->value->at, "%s() regularizes a parameter, such as %s(h1.weight)", e->name, e->name);
        return lower_bad_node(L, e->at);
    }
    ir_node *t = e->name[1] == '2' ? ir_binary(L->g, OP_MUL, w, w, e->at) : lower_map_of(L, "abs", w, e->at);
    return sum_all(L, t, e->at);
}
