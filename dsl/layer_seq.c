/* layer_seq.c — the layers over sequences and class indices, of the built-in table
 * (builtins.c): embedding, rnn, lstm and gru.
 *
 * embedding(ids, vocab, dim, init=) gathers rows of a [vocab, dim] table.  rnn, lstm and gru
 * are scans (ir.h, ir_loop), one per layer, with PyTorch's equations, parameters
 * (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, then _l1 ...), gate orders (lstm
 * i, f, g, o; gru r, z, n) and initialization U(±1/√hidden).  A layer's input
 * projection for every step is one dense layer outside the loop (one GEMM for the batch
 * and all steps); each step of the loop adds the recurrent product (a GEMM across the
 * batch) and applies the cell; autodiff turns the loop into backpropagation through
 * time, a loop over the steps in reverse. */
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
    ir_param_info init = {INIT_NORMAL, 0, 1, 0};
    if (ca->kw[3] && lower_init(L, ca->kw[3]->value, &init)) return lower_bad_node(L, e->at);
    ir_node *table = layer_param(L, "weight", (ir_shape){2, {vocab, dim}}, init, e->at);
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

static ir_node *dense_of(lower *L, ir_node *x, ir_node *w, ir_node *b, int64_t units, loc at) {
    ir_node *in[3] = {x, w, b};
    ir_node *n = ir_node_new(L->g, OP_DENSE, 3, in, at);
    n->attr[0] = (double)units;
    return n;
}

typedef struct cell {
    int      kind;            /* 0 rnn, 1 lstm, 2 gru */
    int64_t  hidden;
    ir_node *w_hh, *b_hh;
    loc      at;
} cell;

/* One step: x_t is the step's input projection x W_ihᵀ + b_ih [gates · hidden], s the
 * states it starts from (h, and c for lstm); writes the states it ends with. */
static void cell_step(lower *L, const cell *k, ir_node *xt, ir_node *const *s, ir_node **out) {
    ir_graph *g = L->g;
    loc at = k->at;
    int64_t H = k->hidden, gates = k->kind == 1 ? 4 : k->kind == 2 ? 3 : 1;
    ir_node *hw = dense_of(L, s[0], k->w_hh, k->b_hh, gates * H, at);
    if (k->kind == 0) {   /* h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh) */
        out[0] = lower_map_of(L, "tanh", ir_binary(g, OP_ADD, xt, hw, at), at);
        return;
    }
    if (k->kind == 1) {   /* i, f, g, o;  c' = f c + i g;  h' = o tanh(c') */
        ir_node *pre = ir_binary(g, OP_ADD, xt, hw, at);
        ir_node *i = lower_map_of(L, "sigmoid", step_slice(L, pre, 0, 0, H, at), at);
        ir_node *f = lower_map_of(L, "sigmoid", step_slice(L, pre, 0, H, H, at), at);
        ir_node *gg = lower_map_of(L, "tanh", step_slice(L, pre, 0, 2 * H, H, at), at);
        ir_node *o = lower_map_of(L, "sigmoid", step_slice(L, pre, 0, 3 * H, H, at), at);
        out[1] = ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, f, s[1], at), ir_binary(g, OP_MUL, i, gg, at), at);
        out[0] = ir_binary(g, OP_MUL, o, lower_map_of(L, "tanh", out[1], at), at);
        return;
    }
    /* gru: r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r h_n), h' = (1 - z) n + z h = n + z (h - n) */
    ir_node *r = lower_map_of(L, "sigmoid", ir_binary(g, OP_ADD, step_slice(L, xt, 0, 0, H, at),
                                                      step_slice(L, hw, 0, 0, H, at), at), at);
    ir_node *z = lower_map_of(L, "sigmoid", ir_binary(g, OP_ADD, step_slice(L, xt, 0, H, H, at),
                                                      step_slice(L, hw, 0, H, H, at), at), at);
    ir_node *n = lower_map_of(L, "tanh", ir_binary(g, OP_ADD, step_slice(L, xt, 0, 2 * H, H, at),
                                                   ir_binary(g, OP_MUL, r, step_slice(L, hw, 0, 2 * H, H, at), at), at), at);
    out[0] = ir_binary(g, OP_ADD, n, ir_binary(g, OP_MUL, z, ir_binary(g, OP_SUB, s[0], n, at), at), at);
}

/* Layer l's initial state from h0= (or c0=): [hidden] for one layer, or row l of
 * [layers, hidden]; zeros when not given. */
static ir_node *initial_state(lower *L, ir_node *given, int64_t layer, int64_t hidden, loc at) {
    if (!given) return ir_const(L->g, 0, at);
    if (given->shape.rank == 1) return given;
    return layer_view_as(L, step_slice(L, given, 0, layer, 1, at), (ir_shape){1, {hidden}}, at);
}

static ir_node *state_arg(lower *L, const ast_arg *a, int64_t layers, int64_t hidden) {
    if (!a) return NULL;
    ir_node *x = lower_expr(L, a->value);
    shape_upto(L->g, L->d);
    if (x->bad) return x;
    int ok = x->dtype != DT_CLASS && ((x->shape.rank == 1 && layers == 1 && x->shape.dim[0] == hidden) ||
                                      (x->shape.rank == 2 && x->shape.dim[0] == layers && x->shape.dim[1] == hidden));
    if (!ok) {
        diag_error(L->d, a->value->at, "the initial state %s= must be [%lld]%s or [%lld, %lld] ([layers, hidden]); it is %s",
                   a->key, (long long)hidden, layers == 1 ? "" : " (one layer)", (long long)layers, (long long)hidden,
                   ir_shape_str(L->g->a, &x->shape));
        return lower_bad_node(L, a->value->at);
    }
    return x;
}

ir_node *call_recurrent(lower *L, const ast_expr *e, const callargs *ca) {
    int kind = ca->how;
    static const char *const what[] = {"rnn", "lstm", "gru"};
    int64_t hidden, layers = 1;
    ir_node *xs = layer_input(L, e, ca->pos[0], 2, "a sequence [T, d]");
    if (!xs || lower_int_arg(L, ca->pos[1], "the hidden size", 1, 1 << 16, &hidden) ||
        (ca->kw[2] && lower_int_arg(L, ca->kw[2], "layers", 1, 64, &layers)))
        return lower_bad_node(L, e->at);
    ir_node *h0 = state_arg(L, ca->kw[3], layers, hidden), *c0 = kind == 1 ? state_arg(L, ca->kw[4], layers, hidden) : NULL;
    if ((h0 && h0->bad) || (c0 && c0->bad)) return lower_bad_node(L, e->at);
    ir_graph *g = L->g;
    loc at = e->at;
    int64_t gates = kind == 1 ? 4 : kind == 2 ? 3 : 1, gh = gates * hidden;
    double k = 1 / sqrt((double)hidden);   /* PyTorch: every parameter U(-1/sqrt(hidden), 1/sqrt(hidden)) */
    ir_param_info init = {INIT_UNIFORM, -k, k, 0};
    ir_node *seq = xs, *outs[IR_MAXSTATE] = {0};
    for (int64_t l = 0; l < layers; l++) {
        int64_t d = seq->shape.dim[1];
        const char *sfx = arena_printf(g->a, "_l%lld", (long long)l);
        ir_node *w_ih = layer_param(L, arena_printf(g->a, "weight_ih%s", sfx), (ir_shape){2, {gh, d}}, init, at);
        ir_node *w_hh = layer_param(L, arena_printf(g->a, "weight_hh%s", sfx), (ir_shape){2, {gh, hidden}}, init, at);
        ir_node *b_ih = layer_param(L, arena_printf(g->a, "bias_ih%s", sfx), (ir_shape){1, {gh}}, init, at);
        ir_node *b_hh = layer_param(L, arena_printf(g->a, "bias_hh%s", sfx), (ir_shape){1, {gh}}, init, at);
        ir_node *xw = dense_of(L, seq, w_ih, b_ih, gh, at);   /* every step's input projection */
        shape_upto(g, L->d);
        ir_node *init_h = initial_state(L, h0, l, hidden, at);
        ir_node *init_c = kind == 1 ? initial_state(L, c0, l, hidden, at) : NULL;
        shape_upto(g, L->d);
        ir_loop *loop = ir_loop_begin(g, xw, what[kind], at);
        ir_node *s[2], *res[2];
        s[0] = ir_loop_state(g, loop, init_h, (ir_shape){1, {hidden}}, at);
        if (kind == 1) s[1] = ir_loop_state(g, loop, init_c, (ir_shape){1, {hidden}}, at);
        loop->state_name[1] = "c";
        ir_node *xt = ir_loop_x(g, loop, xw, at);
        cell c = {kind, hidden, w_hh, b_hh, at};
        cell_step(L, &c, xt, s, res);
        shape_upto(g, L->d);
        ir_loop_end(g, loop, res, at);
        for (int i = 0; i < loop->nstate; i++) outs[i] = loop->out[i];
        seq = outs[0];
    }
    L->layers++;
    seq->what = e->name;
    return seq;
}
