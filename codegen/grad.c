/* grad.c — reverse-mode automatic differentiation over the IR.
 *
 * Walks the forward graph from the loss back to the parameters and `grad` inputs,
 * appending the backward graph to the same IR: each op's rule below turns the gradient
 * of its output into gradients of its inputs, built from ordinary IR ops (so fusion,
 * the memory plan and the emitter treat backward like forward).  A tensor that feeds
 * several consumers gets the sum of their contributions, as one explicit add.  The
 * loss is a per-example scalar and training minimizes its batch mean, so the seed
 * gradient is 1/n for every example. */
#include "codegen.h"
#include "shape.h"
#include <stdlib.h>
#include <string.h>

typedef struct gradctx {
    ir_graph *g;
    diag     *d;
    ir_node  *fwd;           /* the node being differentiated: location, line */
    ptrvec   *contrib;       /* per forward node id: gradient contributions */
    char     *needs;         /* per forward node id: on a path from a param / grad input */
    int       failed;
    /* while a scan's body is differentiated: its loop, and the contributions its steps make
     * to tensors outside the loop (parameters, ...), kept apart to be summed over the steps */
    ir_loop  *inside;
    ptrvec   *outer;         /* per forward node id, allocated with the first scan */
    ptrvec    touched;       /* the nodes that have some */
} gradctx;

static ir_node *finish(gradctx *c, ir_node *n) {
    n->pass = IR_BWD;
    n->stmt_line = c->fwd->stmt_line;
    n->in_fn = c->fwd->in_fn;
    n->call_line = c->fwd->call_line;
    n->call_id = c->fwd->call_id;
    if (shape_infer(c->g, n, c->d)) {
        diag_error(c->d, c->fwd->at, "internal error: no shape for the gradient op '%s'", ir_ops[n->op].name);
        c->failed = 1;
    }
    return n;
}

static ir_node *mk(gradctx *c, ir_op op, int nin, ir_node *a, ir_node *b, ir_node *x) {
    ir_node *in[3] = {a, b, x};
    return finish(c, ir_node_new(c->g, op, nin, in, c->fwd->at));
}

static ir_node *mk_like(gradctx *c, ir_op op, int nin, ir_node *a, ir_node *b, const ir_node *like) {
    ir_node *in[2] = {a, b};
    ir_node *n = ir_node_new(c->g, op, nin, in, c->fwd->at);
    n->shape = like->shape;
    n->batched = like->batched;
    return finish(c, n);
}

static ir_node *cnst(gradctx *c, double v) { return finish(c, ir_const(c->g, v, c->fwd->at)); }

/* The same elements in x's shape: a view, no copy. */
static ir_node *reshape_like(gradctx *c, ir_node *gr, const ir_node *x) {
    if (ir_same_layout(gr, x)) return gr;
    ir_node *v = mk_like(c, OP_RESHAPE, 1, gr, NULL, x);
    return v;
}

/* Copies of a block of axis `axis`: slice [start, end) of gr, or gr padded back into x. */
static ir_node *block(gradctx *c, ir_op op, ir_node *gr, const ir_node *like, int axis, int64_t start, int64_t end) {
    ir_node *n = ir_node_new(c->g, op, 1, &gr, c->fwd->at);
    n->axis = axis;
    n->attr[0] = (double)start;
    n->attr[1] = (double)end;
    if (op == OP_PAD) n->shape = like->shape, n->batched = like->batched;
    return finish(c, n);
}

/* The gradient of a transpose: gr transposed by the inverse permutation. */
static ir_node *transpose_back(gradctx *c, const ir_node *n, ir_node *gr) {
    ir_node *t = ir_node_new(c->g, OP_TRANSPOSE, 1, &gr, c->fwd->at);
    t->nperm = n->nperm;
    for (int i = 0; i < n->nperm; i++) t->perm[n->perm[i]] = i;
    return finish(c, t);
}

/* Undo a broadcast: sum g down to x's shape (a no-op when they already agree). */
static ir_node *sum_to(gradctx *c, ir_node *gr, const ir_node *x) {
    return ir_same_layout(gr, x) ? gr : mk_like(c, OP_SUM_TO, 1, gr, NULL, x);
}

static ir_node *expand(gradctx *c, ir_node *gr, const ir_node *x) {
    return ir_same_layout(gr, x) ? gr : mk_like(c, OP_EXPAND, 1, gr, NULL, x);
}

static ir_node *matmul(gradctx *c, ir_node *a, int64_t ar, int64_t ac, int ta, ir_node *b, int64_t br,
                       int64_t bc, int tb, const ir_node *like) {
    ir_node *n = mk_like(c, OP_MATMUL, 2, a, b, like);
    n->mm = (ir_mm){.ar = ar, .ac = ac, .br = br, .bc = bc, .ta = ta, .tb = tb};
    return n;
}

static void contribute(gradctx *c, ir_node *x, ir_node *gr) {
    if (!c->needs[x->id] || !gr) return;
    if (c->inside && x->loop != c->inside) {
        if (!c->outer[x->id].n) ptrvec_push(c->g->a, &c->touched, x);
        ptrvec_push(c->g->a, &c->outer[x->id], gr);
        return;
    }
    ptrvec_push(c->g->a, &c->contrib[x->id], gr);
}

/* A backward product over forward product f's stack: its operands hold matrices along
 * the stack axes as one_a and one_b say (one[] of A, B or C: G has C's), and its result
 * is summed along the axes where one_c says the operand it is the gradient of was
 * broadcast.  A product without a stack is returned as it is. */
static ir_node *over_stack(ir_node *n, const ir_mm *f, const char *one_a, const char *one_b, const char *one_c) {
    n->mm.srank = f->srank;
    for (int i = 0; i < f->srank; i++) {
        n->mm.stack[i] = f->stack[i];
        n->mm.one[0][i] = one_a[i], n->mm.one[1][i] = one_b[i], n->mm.one[2][i] = one_c[i];
    }
    return n;
}

/* d op(A) = G op(B)ᵀ and d op(B) = op(A)ᵀ G, written back in each operand's own view; over
 * a stack, a product per matrix summed along the axes the operand was broadcast over. */
static void grad_matmul(gradctx *c, ir_node *n, ir_node *gr) {
    ir_node *a = n->in[0], *b = n->in[1];
    ir_mm m = n->mm;
    int64_t p = m.ta ? m.ac : m.ar, q = m.tb ? m.br : m.bc;
    const char *oa = m.one[0], *ob = m.one[1], *og = m.one[2];   /* a forward product: C (so G) is whole */
    if (c->needs[a->id])
        contribute(c, a, m.ta ? over_stack(matmul(c, b, m.br, m.bc, m.tb, gr, p, q, 1, a), &m, ob, og, oa)
                              : over_stack(matmul(c, gr, p, q, 0, b, m.br, m.bc, !m.tb, a), &m, og, ob, oa));
    if (c->needs[b->id])
        contribute(c, b, m.tb ? over_stack(matmul(c, gr, p, q, 1, a, m.ar, m.ac, m.ta, b), &m, og, oa, ob)
                              : over_stack(matmul(c, a, m.ar, m.ac, !m.ta, gr, p, q, 0, b), &m, oa, og, ob));
}

/* y = x Wᵀ + b over rows R of x: dx = G W, dW = Gᵀ x (summed over the batch), db = Σ G. */
static void grad_dense(gradctx *c, ir_node *n, ir_node *gr) {
    ir_node *x = n->in[0], *w = n->in[1];
    int64_t units = w->shape.dim[0], in = w->shape.dim[1], rows = ir_numel(&x->shape) / in;
    if (c->needs[x->id]) contribute(c, x, matmul(c, gr, rows, units, 0, w, units, in, 0, x));
    if (c->needs[w->id]) contribute(c, w, matmul(c, gr, rows, units, 1, x, rows, in, 0, w));
    if (n->nin == 3) contribute(c, n->in[2], sum_to(c, gr, n->in[2]));
}

/* attention's gradients d q, d k, d v: one OP_ATTENTION_GRAD node each (arg: which), all
 * reading d out and the forward node (its q, k, v, its output and the probabilities its
 * kernel kept); fuse.c has the first of them compute every one in one kernel. */
static void grad_attention(gradctx *c, ir_node *n, ir_node *gr) {
    for (int k = 0; k < 3; k++) {
        if (!c->needs[n->in[k]->id]) continue;
        ir_node *d = ir_node_new(c->g, OP_ATTENTION_GRAD, 2, (ir_node *[]){gr, n}, c->fwd->at);
        d->arg = k;
        d->attr[0] = n->attr[0];
        d->attr[1] = n->attr[1];
        contribute(c, n->in[k], finish(c, d));
    }
}

/* g · ∂f/∂argument k of a table function: a node reading only what its template names
 * (relu's reads the output, sin's the argument), so nothing else is kept for backward. */
static ir_node *grad_map(gradctx *c, ir_node *n, int k, ir_node *gr) {
    const char *t = ir_maps[n->fn].grad[k];
    if (!t || !c->needs[n->in[k]->id]) return NULL;
    ir_node *in[IR_MAXIN];
    int nin = 0;
    in[nin++] = gr;
    if (strstr(t, "$a")) in[nin++] = n->in[0];
    if (strstr(t, "$b")) in[nin++] = n->in[1];
    if (strstr(t, "$c")) in[nin++] = n->in[2];
    if (strstr(t, "$y")) in[nin++] = n;
    ir_node *d = ir_node_new(c->g, OP_MAP_GRAD, nin, in, c->fwd->at);
    d->fn = n->fn;
    d->arg = k;
    d->attr[0] = n->attr[0];
    d->attr[1] = n->attr[1];
    return sum_to(c, finish(c, d), n->in[k]);
}

/* layernorm's and rmsnorm's gradients: dx is a row op reading the statistics the forward
 * pass kept (the norm's norm_stats, made with it); the weight's and bias's gradients are
 * by-products of dx, written by the same pass over the rows (emit_norm.c), which therefore
 * runs even when x itself needs no gradient. */
static void grad_rownorm(gradctx *c, ir_node *n, ir_node *gr) {
    ir_node *stats = NULL;
    for (int i = n->id + 1; i < c->g->fwd_count && !stats; i++)
        if (ir_at(c->g, i)->op == OP_NORM_STATS && ir_at(c->g, i)->in[0] == n) stats = ir_at(c->g, i);
    if (!stats) {
        diag_error(c->d, n->at, "internal error: %s without its statistics", ir_ops[n->op].name);
        c->failed = 1;
        return;
    }
    ir_node *in[4] = {gr, n->in[0], stats, n->in[1]};
    ir_node *dx = finish(c, ir_node_new(c->g, n->op == OP_LAYERNORM ? OP_LAYERNORM_GRAD : OP_RMSNORM_GRAD, 4, in,
                                        c->fwd->at));
    contribute(c, n->in[0], dx);
    for (int k = 1; k < n->nin; k++) {
        if (!c->needs[n->in[k]->id]) continue;
        ir_node *p = ir_unary(c->g, OP_NORM_PARAM_GRAD, dx, c->fwd->at);
        p->attr[0] = k - 1;   /* 0: the weight's, 1: the bias's */
        p->shape = n->in[k]->shape;
        contribute(c, n->in[k], finish(c, p));
    }
}

static void grad_node(gradctx *c, ir_node *n, ir_node *gr) {
    ir_node *a = n->nin > 0 ? n->in[0] : NULL, *b = n->nin > 1 ? n->in[1] : NULL;
    ir_node *t;
    switch (n->op) {
    case OP_ADD:
        contribute(c, a, sum_to(c, gr, a));
        contribute(c, b, sum_to(c, gr, b));
        break;
    case OP_SUB:
        contribute(c, a, sum_to(c, gr, a));
        if (c->needs[b->id]) contribute(c, b, sum_to(c, mk(c, OP_NEG, 1, gr, NULL, NULL), b));
        break;
    case OP_MUL:
        if (c->needs[a->id]) contribute(c, a, sum_to(c, mk(c, OP_MUL, 2, gr, b, NULL), a));
        if (c->needs[b->id]) contribute(c, b, sum_to(c, mk(c, OP_MUL, 2, gr, a, NULL), b));
        break;
    case OP_DIV:   /* d(a/b) = da/b - a db/b² */
        if (c->needs[a->id]) contribute(c, a, sum_to(c, mk(c, OP_DIV, 2, gr, b, NULL), a));
        if (c->needs[b->id]) {
            t = mk(c, OP_DIV, 2, mk(c, OP_MUL, 2, gr, a, NULL), mk(c, OP_MUL, 2, b, b, NULL), NULL);
            contribute(c, b, sum_to(c, mk(c, OP_NEG, 1, t, NULL, NULL), b));
        }
        break;
    case OP_NEG: contribute(c, a, mk(c, OP_NEG, 1, gr, NULL, NULL)); break;
    case OP_COPY: contribute(c, a, gr); break;
    case OP_POWC:
        t = mk(c, OP_POWC_GRAD, 2, gr, a, NULL);
        t->attr[0] = n->attr[0];
        contribute(c, a, t);
        break;
    case OP_MAP:
        for (int k = 0; k < n->nin; k++) contribute(c, n->in[k], grad_map(c, n, k, gr));
        break;
    case OP_EXPAND: contribute(c, a, sum_to(c, gr, a)); break;
    case OP_SUM_TO:   /* a mean over an axis scales by 1/N */
        if (n->ranks) {   /* summed over the processes too: so is every process's part of its gradient */
            gr = mk_like(c, OP_SUM_TO, 1, gr, NULL, gr);
            gr->ranks = gr->keep = 1;
        }
        t = expand(c, gr, a);
        contribute(c, a, n->attr[0] == 0 || n->attr[0] == 1 ? t : mk(c, OP_MUL, 2, t, cnst(c, n->attr[0]), NULL));
        break;
    case OP_REDUCE_MAX: {
        /* k elements tied at the extreme get g/k each, as in PyTorch's amax/amin: ties that
         * share a source (max(w, x) with w broadcast) then add back up to g, not k g */
        ir_node *count = sum_to(c, mk(c, OP_REDUCE_MAX_GRAD, 3, cnst(c, 1), a, n), n);
        contribute(c, a, mk(c, OP_REDUCE_MAX_GRAD, 3, mk(c, OP_DIV, 2, gr, count, NULL), a, n));
        break;
    }
    case OP_RESHAPE: contribute(c, a, reshape_like(c, gr, a)); break;
    case OP_TRANSPOSE: contribute(c, a, transpose_back(c, n, gr)); break;
    case OP_CONCAT:   /* each operand's gradient is its block of gr */
        for (int64_t k = 0, at = 0; k < n->nin; at += n->in[k++]->shape.dim[n->axis])
            contribute(c, n->in[k], block(c, OP_SLICE, gr, NULL, n->axis, at, at + n->in[k]->shape.dim[n->axis]));
        break;
    case OP_SLICE: contribute(c, a, block(c, OP_PAD, gr, a, n->axis, (int64_t)n->attr[0], (int64_t)n->attr[1])); break;
    case OP_IM2COL: case OP_COL2IM:   /* each is the other's transpose */
        t = mk_like(c, n->op == OP_IM2COL ? OP_COL2IM : OP_IM2COL, 1, gr, NULL, a);
        t->conv = n->conv;
        contribute(c, a, t);
        break;
    case OP_POOL:
        t = ir_node_new(c->g, OP_POOL_GRAD, 2, (ir_node *[]){gr, a}, c->fwd->at);
        t->conv = n->conv;
        t->attr[0] = n->attr[0];
        t->shape = a->shape;
        t->batched = a->batched;
        contribute(c, a, finish(c, t));
        break;
    case OP_SELECT: contribute(c, a, gr); break;   /* backward follows the training form */
    case OP_GATHER: contribute(c, a, mk_like(c, OP_SCATTER_ADD, 2, gr, b, a)); break;   /* the rows used */
    case OP_DROPOUT_MASK: break;                   /* the mask is a constant of the step */
    case OP_SUM:
        t = expand(c, gr, a);
        contribute(c, a, n->attr[0] == 1 ? t : mk(c, OP_MUL, 2, t, cnst(c, n->attr[0]), NULL));
        break;
    case OP_SOFTMAX: contribute(c, a, mk(c, OP_SOFTMAX_GRAD, 2, gr, n, NULL)); break;
    case OP_LAYERNORM: case OP_RMSNORM: grad_rownorm(c, n, gr); break;
    case OP_LOG_SOFTMAX: contribute(c, a, mk(c, OP_LOG_SOFTMAX_GRAD, 2, gr, n, NULL)); break;
    case OP_CROSS_ENTROPY: contribute(c, a, mk(c, OP_CROSS_ENTROPY_GRAD, 3, gr, a, b)); break;
    case OP_PICK: contribute(c, a, mk_like(c, OP_PICK_GRAD, 2, gr, b, a)); break;
    case OP_MATMUL: grad_matmul(c, n, gr); break;
    case OP_ATTENTION: grad_attention(c, n, gr); break;
    case OP_DENSE: grad_dense(c, n, gr); break;
    default:
        diag_error(c->d, n->at, "internal error: no gradient rule for '%s'", ir_ops[n->op].name);
        c->failed = 1;
    }
}

/* Whether contribution x is a slice's gradient that can be added into `pad`'s memory. */
static int pads_along(const ir_node *x, const ir_node *pad) {
    return x->op == OP_PAD && x != pad && x->axis == pad->axis && x->batched == pad->batched;
}

/* The whole gradient of n: its contributions added up, one add per extra consumer.  The
 * gradients of several slices of n (an unrolled sequence's steps) go into the first one's
 * memory, each into its own range, instead of a full-size add per slice: for T steps
 * that is T small adds, not T² work. */
static ir_node *total(gradctx *c, ir_node *n) {
    ptrvec *pv = &c->contrib[n->id];
    ir_node *first = NULL, *sum = NULL;
    for (int i = 0; i < pv->n && !first; i++)
        if (((ir_node *)pv->v[i])->op == OP_PAD) first = pv->v[i];
    if (first) {
        sum = first;
        for (int i = 0; i < pv->n; i++) {
            ir_node *x = pv->v[i];
            if (!pads_along(x, first)) continue;
            ir_node *in[2] = {sum, x->in[0]};
            ir_node *acc = ir_node_new(c->g, OP_PAD_ADD, 2, in, c->fwd->at);
            acc->axis = x->axis;
            acc->attr[0] = x->attr[0];
            acc->attr[1] = x->attr[1];
            acc->shape = first->shape;
            acc->batched = first->batched;
            sum = finish(c, acc);
        }
    }
    for (int i = 0; i < pv->n; i++) {
        ir_node *x = pv->v[i];
        if (x == first || (first && pads_along(x, first))) continue;
        sum = sum ? mk(c, OP_ADD, 2, sum, x, NULL) : x;
    }
    return sum;
}

/* ---- scans: backpropagation through time ---------------------------------------- */

static ir_node *scan_node(gradctx *c, ir_op op, ir_node *in, const ir_node *like) {
    ir_node *n = ir_node_new(c->g, op, in ? 1 : 0, &in, c->fwd->at);
    n->shape = like->shape;
    n->batched = like->batched;
    n->keep = 1;
    return finish(c, n);
}

/* The backward loop of scan l, once the gradients of its stacked outputs are known (some
 * may have none): step t's state gradient is the output's gradient at t plus what step
 * t+1 sent back through its state (the carry); the body's own rules turn it into the
 * gradients of the step's tensors, of its slice of xs (copied into d xs at t), of the
 * state it started from (the next carry) and of the tensors outside the loop, which are
 * added up over the steps (OP_SCAN_ACC).  After the loop the carry is d init. */
static void grad_scan(gradctx *c, ir_loop *l) {
    ir_graph *g = c->g;
    int start = g->nodes.n;
    ir_loop *bl = arena_alloc(g->a, sizeof *bl);
    *bl = (ir_loop){.steps = l->steps, .backward = 1, .fwd = l, .nstate = l->nstate, .batched = l->batched,
                    .what = l->what, .line = l->line, .call_line = l->call_line};
    if (!c->outer) c->outer = arena_alloc(g->a, sizeof(ptrvec) * (size_t)g->fwd_count);
    c->inside = l;
    c->touched.n = 0;
    for (int k = 0; k < l->nstate; k++) {
        c->fwd = l->out[k];
        ir_node *seed = ir_node_new(g, OP_SCAN_SEED, l->out[k]->grad ? 1 : 0, &l->out[k]->grad, c->fwd->at);
        seed->shape = l->result[k]->shape;
        seed->batched = l->result[k]->batched;
        seed->attr[0] = k;
        seed->keep = 1;
        seed->grad_of = l->result[k];
        contribute(c, l->result[k], finish(c, seed));
    }
    ir_node *dx = NULL;
    for (int i = l->last; i >= l->first && !c->failed; i--) {
        ir_node *n = ir_at(g, i);
        if (n->op == OP_SCAN_OUT || !c->needs[i] || !c->contrib[i].n) continue;
        c->fwd = n;
        ir_node *gr = total(c, n);
        if (!gr->grad_of && gr->pass == IR_BWD) gr->grad_of = n;
        n->grad = gr;
        if (n->op == OP_SCAN_STATE) {
            /* the state's gradient, stored, is what the step before reads: a copy only
             * when it is a view or a tensor of the forward pass */
            int own = gr->id >= start && gr->pass == IR_BWD && gr->op != OP_RESHAPE && gr->op != OP_SELECT &&
                      gr->op != OP_PAD_ADD && gr->op != OP_SLICE && gr->op != OP_SCAN_SEED;
            ir_node *carry = own ? gr : scan_node(c, OP_COPY, gr, n);
            carry->keep = 1;
            carry->grad_of = n;
            l->carry[(int)n->attr[0]] = bl->carry[(int)n->attr[0]] = carry;
        } else if (n->op == OP_SCAN_X) {
            dx = scan_node(c, OP_SCAN_DX, gr, n->in[0]);
            dx->grad_of = n->in[0];
        } else if (ir_ops[n->op].fam != FAM_LEAF) {
            grad_node(c, n, gr);
        }
    }
    /* the steps' contributions to each outer tensor, added up over the steps */
    ir_node **acc = arena_alloc(g->a, sizeof(ir_node *) * (size_t)(c->touched.n + 1));
    for (int i = 0; i < c->touched.n; i++) {
        ir_node *x = c->touched.v[i];
        ptrvec mine = c->contrib[x->id];
        c->contrib[x->id] = c->outer[x->id];
        c->fwd = x;
        acc[i] = scan_node(c, OP_SCAN_ACC, total(c, x), x);
        c->contrib[x->id] = mine;
        c->outer[x->id].n = 0;
    }
    ir_loop_mark(g, bl, start);
    c->inside = NULL;
    for (int i = 0; i < c->touched.n; i++) contribute(c, c->touched.v[i], acc[i]);
    for (int k = 0; k < l->nstate; k++) {
        ir_node *init = l->state[k]->in[0];
        c->fwd = l->state[k];
        if (l->carry[k]) contribute(c, init, sum_to(c, l->carry[k], init));
    }
    if (dx) contribute(c, l->x->in[0], dx);
}

/* Parameter and input gradients are stored where users and optimizers find them, so each
 * must be a tensor of its own: copy one that is shared, trivial or a forward value. */
static ir_node *own(gradctx *c, ir_node *x, ir_node *gr) {
    int shared = gr->pass == IR_FWD || gr->op == OP_CONST || gr->op == OP_INV_N || gr->op == OP_EXPAND ||
                 gr->op == OP_RESHAPE || gr->op == OP_PAD_ADD ||
                 (gr->grad_of && gr->grad_of != x);
    if (shared) gr = mk(c, OP_COPY, 1, gr, NULL, NULL);
    return gr;
}

int grad_build(ir_graph *g, diag *d) {
    int nf = g->nodes.n;
    g->fwd_count = nf;
    gradctx c = {.g = g, .d = d, .contrib = arena_alloc(g->a, sizeof(ptrvec) * (size_t)nf),
                 .needs = arena_alloc(g->a, (size_t)nf)};
    for (int i = 0; i < nf; i++) {
        ir_node *n = ir_at(g, i);
        c.needs[i] = (n->op == OP_PARAM && !n->param.buffer) || (n->op == OP_INPUT && n->wants_grad);
        for (int k = 0; k < n->nin; k++) c.needs[i] |= c.needs[n->in[k]->id];
        /* a step's state depends on the parameters through the steps before it */
        if (n->op == OP_SCAN_STATE) c.needs[i] = 1;
    }
    ir_node *loss = g->loss;
    c.fwd = loss;
    ir_node *seed = loss->batched ? finish(&c, ir_node_new(g, OP_INV_N, 0, NULL, loss->at)) : cnst(&c, 1);
    contribute(&c, loss, expand(&c, seed, loss));
    for (int i = nf - 1; i >= 0 && !c.failed; i--) {
        ir_node *n = ir_at(g, i);
        if (!c.needs[i]) continue;
        c.fwd = n;
        if (n->loop) {   /* a scan's body: differentiated as a whole, at its first output */
            if (n->op != OP_SCAN_OUT) continue;
            if (c.contrib[i].n) n->grad = total(&c, n);
            if (n == n->loop->out[0]) grad_scan(&c, n->loop);
            continue;
        }
        if (c.contrib[i].n == 0) {
            /* A `grad` input the loss never reads: its gradient is zero, and users and the
             * trainer still find it where every input gradient lives. */
            if (n->op == OP_INPUT && n->wants_grad) {
                n->grad = own(&c, n, expand(&c, cnst(&c, 0), n));
                n->grad->grad_of = n;
            }
            continue;
        }
        ir_node *gr = total(&c, n);
        if (n->op == OP_PARAM || n->op == OP_INPUT) gr = own(&c, n, gr);
        if (!gr->grad_of && gr->pass == IR_BWD) gr->grad_of = n;
        n->grad = gr;
        if (ir_ops[n->op].fam != FAM_LEAF) grad_node(&c, n, gr);
    }
    return c.failed ? -1 : 0;
}
