/* layer_seq.c — the layers over sequences and class indices, of the built-in table
 * (builtins.c): embedding, rnn and lstm.
 *
 * embedding(ids, vocab, dim) gathers rows of a [vocab, dim] table.  rnn and lstm are
 * unrolled over the T steps of the sequence: the input projection of all steps is one
 * dense layer (one GEMM for the batch and every step), then each step adds the recurrent
 * product (a GEMM across the batch) and applies the cell, with PyTorch's parameters and
 * gate order (i, f, g, o); autodiff then gives backpropagation through time. */
#include "lower_internal.h"
#include "shape.h"
#include <math.h>

ir_node *call_embedding(lower *L, const ast_expr *e, const callargs *ca) {
    int64_t vocab, dim;
    ir_node *ids = lower_expr(L, ca->pos[0]->value);
    shape_upto(L->g, L->d);
    if (ids->bad || lower_int_arg(L, ca->pos[1], "the vocabulary of embedding", 1, 1 << 24, &vocab) ||
        lower_int_arg(L, ca->pos[2], "the dimension of embedding", 1, 1 << 20, &dim))
        return lower_bad_node(L, e->at);
    if (ids->dtype != DT_CLASS || ids->classes > vocab) {
        diag_error(L->d, ca->pos[0]->value->at, ids->dtype != DT_CLASS
                   ? "embedding looks up class indices; declare the input `input ids: class(K) [T]`"
                   : "embedding: the ids are class(%d), more than the vocabulary of %lld", ids->classes, (long long)vocab);
        return lower_bad_node(L, e->at);
    }
    ir_node *table = layer_param(L, "weight", (ir_shape){2, {vocab, dim}}, (ir_param_info){INIT_NORMAL, 0, 1, 0}, e->at);
    L->layers++;
    ir_node *n = ir_binary(L->g, OP_GATHER, table, ids, e->at);
    n->shape = ids->shape;
    n->shape.dim[n->shape.rank++] = dim;
    n->batched = ids->batched;
    return n;
}

static ir_node *step_slice(lower *L, ir_node *x, int axis, int64_t start, int64_t len, loc at) {
    ir_node *s = ir_unary(L->g, OP_SLICE, x, at);
    s->axis = axis;
    s->attr[0] = (double)start;
    s->attr[1] = (double)(start + len);
    return s;
}

/* The steps' states as one [T, hidden] tensor: concatenations paired as a balanced tree,
 * so the forward pass copies each state log2(T) times, not up to T times as a chain of
 * concatenations would (and the gradient's slices likewise). */
static ir_node *concat_rows(ir_graph *g, ir_node **rows, int64_t count, loc at) {
    if (count == 1) return rows[0];
    int64_t half = count / 2;
    ir_node *n = ir_binary(g, OP_CONCAT, concat_rows(g, rows, half, at), concat_rows(g, rows + half, count - half, at), at);
    n->axis = 0;
    return n;
}

ir_node *call_recurrent(lower *L, const ast_expr *e, const callargs *ca) {
    int lstm = ca->how;
    int64_t hidden;
    ir_node *xs = layer_input(L, e, ca->pos[0], 2, "a sequence [T, d]");
    if (!xs || lower_int_arg(L, ca->pos[1], "the hidden size", 1, 1 << 16, &hidden)) return lower_bad_node(L, e->at);
    ir_graph *g = L->g;
    loc at = e->at;
    int64_t steps = xs->shape.dim[0], d = xs->shape.dim[1], gates = lstm ? 4 : 1, gh = gates * hidden;
    double k = 1 / sqrt((double)hidden);   /* PyTorch: every parameter U(-1/sqrt(hidden), 1/sqrt(hidden)) */
    ir_param_info init = {INIT_UNIFORM, -k, k, 0};
    ir_node *w_ih = layer_param(L, "weight_ih", (ir_shape){2, {gh, d}}, init, at);
    ir_node *w_hh = layer_param(L, "weight_hh", (ir_shape){2, {gh, hidden}}, init, at);
    ir_node *b_ih = layer_param(L, "bias_ih", (ir_shape){1, {gh}}, init, at);
    ir_node *b_hh = layer_param(L, "bias_hh", (ir_shape){1, {gh}}, init, at);
    L->layers++;
    ir_node *in[3] = {xs, w_ih, b_ih};
    ir_node *xw = ir_node_new(g, OP_DENSE, 3, in, at);   /* every step's input projection */
    xw->attr[0] = (double)gh;
    ir_node *h = NULL, *c = NULL, **rows = arena_alloc(g->a, sizeof(ir_node *) * (size_t)steps);
    for (int64_t t = 0; t < steps; t++) {   /* each step's tensors are [1, ·]: rows of the sequence */
        ir_node *pre = step_slice(L, xw, 0, t, 1, at);
        if (h) {
            ir_node *rin[3] = {h, w_hh, b_hh};
            ir_node *rec = ir_node_new(g, OP_DENSE, 3, rin, at);
            rec->attr[0] = (double)gh;
            pre = ir_binary(g, OP_ADD, pre, rec, at);
        } else {
            pre = ir_binary(g, OP_ADD, pre, b_hh, at);   /* h0 = 0: only the bias */
        }
        if (!lstm) {
            h = lower_map_of(L, "tanh", pre, at);
        } else {
            ir_node *i = lower_map_of(L, "sigmoid", step_slice(L, pre, 1, 0, hidden, at), at);
            ir_node *f = lower_map_of(L, "sigmoid", step_slice(L, pre, 1, hidden, hidden, at), at);
            ir_node *gg = lower_map_of(L, "tanh", step_slice(L, pre, 1, 2 * hidden, hidden, at), at);
            ir_node *o = lower_map_of(L, "sigmoid", step_slice(L, pre, 1, 3 * hidden, hidden, at), at);
            ir_node *ig = ir_binary(g, OP_MUL, i, gg, at);
            c = c ? ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, f, c, at), ig, at) : ig;   /* c0 = 0 */
            h = ir_binary(g, OP_MUL, o, lower_map_of(L, "tanh", c, at), at);
        }
        rows[t] = h;
    }
    ir_node *out = concat_rows(g, rows, steps, at);
    out->what = e->name;
    return out;
}
