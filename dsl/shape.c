/* shape.c — shape inference for every op (see shape.h).  Layers learn their parameter
 * shapes here: dense(x, units) makes its weight [units, in] once x's shape is known. */
#include "shape.h"
#include <math.h>
#include <string.h>

static const char *op_spelling(const ir_node *n) {
    if (n->what) return n->what;
    switch (n->op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_MATMUL: return "@";
    case OP_POWC: return "^";
    default: return ir_ops[n->op].name;
    }
}

int shape_broadcast(const ir_shape *a, const ir_shape *b, ir_shape *out) {
    int rank = a->rank > b->rank ? a->rank : b->rank;
    ir_shape r = {rank, {0}};
    for (int i = 0; i < rank; i++) {
        int ia = a->rank - rank + i, ib = b->rank - rank + i;
        int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
        if (da != db && da != 1 && db != 1) return -1;
        r.dim[i] = da == 1 ? db : da;
    }
    *out = r;
    return 0;
}

static const char *describe(ir_graph *g, const ir_node *n) {
    return n->name ? arena_printf(g->a, "'%s'", n->name) : arena_strdup(g->a, "the operand");
}

/* The generated C walks an example's elements with int counters and hands BLAS int sizes,
 * so every dimension and every per-example element count must fit in an int; the batch
 * is checked against what the code does with it by the memory plan (plan_check_sizes). */
#define SHAPE_INT_MAX 2147483647LL

static const char *tensor_called(ir_graph *g, const ir_node *n) {
    if (n->name) return arena_printf(g->a, "'%s'", n->name);
    return arena_printf(g->a, "the result of '%s'", op_spelling(n));
}

static int check_size(ir_graph *g, const ir_node *n, loc at, diag *d) {
    int64_t total = 1;
    for (int i = 0; i < n->shape.rank; i++) {
        int64_t v = n->shape.dim[i];
        if (v > SHAPE_INT_MAX) {
            diag_error(d, at, "%s has a dimension of %lld, more than 2^31-1 (%lld): the generated C's int "
                       "loop counters and BLAS's int sizes cannot hold it", tensor_called(g, n), (long long)v,
                       SHAPE_INT_MAX);
            return -1;
        }
        if (v > 0 && total > INT64_MAX / v) {
            diag_error(d, at, "%s %s has more than 2^63 elements: the product of its dimensions overflows "
                       "64 bits", tensor_called(g, n), ir_shape_str(g->a, &n->shape));
            return -1;
        }
        total *= v;
    }
    if (total > SHAPE_INT_MAX) {
        diag_error(d, at, "%s %s has %lld elements%s, more than 2^31-1 (%lld): the generated C's int "
                   "loop counters over %s cannot hold it", tensor_called(g, n), ir_shape_str(g->a, &n->shape),
                   (long long)total, n->batched ? " per example" : "", SHAPE_INT_MAX,
                   n->batched ? "an example" : "a tensor");
        return -1;
    }
    return 0;
}

/* Class tensors are int32 indices; arithmetic on them is a mistake the user must hear of. */
static int require_float(ir_graph *g, ir_node *n, diag *d) {
    for (int i = 0; i < n->nin; i++) {
        ir_node *x = n->in[i];
        if (x->dtype != DT_CLASS) continue;
        if ((n->op == OP_CROSS_ENTROPY || n->op == OP_PICK || n->op == OP_PICK_GRAD || n->op == OP_GATHER ||
             n->op == OP_SCATTER_ADD) && i == 1) continue;
        if (n->op == OP_CROSS_ENTROPY_GRAD && i == 2) continue;
        diag_error(d, n->at, "%s %s holds class indices (int32) and cannot be used as a float in '%s'",
                   x->role == ROLE_LABEL ? "label" : "class input", describe(g, x), op_spelling(n));
        return -1;
    }
    return 0;
}

static int infer_elementwise(ir_graph *g, ir_node *n, diag *d) {
    n->shape = n->in[0]->shape;
    n->batched = n->in[0]->batched;
    for (int i = 1; i < n->nin; i++) {
        ir_node *x = n->in[i];
        if (shape_broadcast(&n->shape, &x->shape, &n->shape)) {
            diag_error(d, n->at, "shape mismatch in '%s': %s and %s", op_spelling(n),
                       ir_shape_str(g->a, &n->in[0]->shape), ir_shape_str(g->a, &x->shape));
            return -1;
        }
        n->batched |= x->batched;
    }
    return 0;
}

static int infer_last_axis(ir_graph *g, ir_node *n, diag *d) {
    ir_node *x = n->in[n->op == OP_CROSS_ENTROPY_GRAD ? 1 : 0];
    if (x->shape.rank == 0) {
        diag_error(d, n->at, "'%s' works along the last axis, but %s is a scalar",
                   op_spelling(n), describe(g, x));
        return -1;
    }
    n->shape = x->shape;
    n->batched = x->batched;
    return 0;
}

/* cross_entropy(z, y), nll and hinge (through pick): scores z [..., K], labels y [...]. */
static int infer_cross_entropy(ir_graph *g, ir_node *n, diag *d) {
    ir_node *z = n->in[0], *y = n->in[1];
    if (infer_last_axis(g, n, d)) return -1;
    if (y->dtype != DT_CLASS) {
        diag_error(d, n->at, "%s needs a class label as its second argument; %s is a float tensor "
                   "(declare it `label %s: class(K)`)", op_spelling(n), describe(g, y), y->name ? y->name : "y");
        return -1;
    }
    int64_t k = z->shape.dim[z->shape.rank - 1];
    ir_shape rows = z->shape;
    rows.rank--;
    if (!ir_shape_eq(&rows, &y->shape)) {
        diag_error(d, n->at, "shape mismatch in '%s': %s %s need labels %s, but %s is %s", op_spelling(n),
                   n->op == OP_CROSS_ENTROPY ? "logits" : "scores",
                   ir_shape_str(g->a, &z->shape), ir_shape_str(g->a, &rows), describe(g, y),
                   ir_shape_str(g->a, &y->shape));
        return -1;
    }
    if (y->classes != k) {
        diag_error(d, n->at, "%s: the %s have %lld classes but %s is class(%d)", op_spelling(n),
                   n->op == OP_CROSS_ENTROPY ? "logits" : "scores",
                   (long long)k, describe(g, y), y->classes);
        return -1;
    }
    n->shape = rows;
    n->batched = z->batched || y->batched;
    return 0;
}

/* `@`, NumPy's matmul: [m,n] @ [n] -> [m], [m,n] @ [n,k] -> [m,k], [n] @ [n,k] -> [k],
 * [n] @ [n] -> []; operands of rank > 2 are stacks of matrices over their leading axes,
 * which broadcast ([2,1,5,3] @ [4,3,6] -> [2,4,5,6]); a vector is a matrix of one row (on
 * the left) or one column (on the right) whose axis the result drops. */
static int stack_broadcast(ir_graph *g, ir_node *n, const ir_shape *as, const ir_shape *bs, diag *d) {
    ir_mm *m = &n->mm;
    ir_shape sa = {as->rank > 2 ? as->rank - 2 : 0, {0}}, sb = {bs->rank > 2 ? bs->rank - 2 : 0, {0}}, st;
    memcpy(sa.dim, as->dim, sizeof(int64_t) * (size_t)sa.rank);
    memcpy(sb.dim, bs->dim, sizeof(int64_t) * (size_t)sb.rank);
    if (shape_broadcast(&sa, &sb, &st)) {
        diag_error(d, n->at, "shape mismatch in '@': the stacks %s and %s of %s and %s do not broadcast",
                   ir_shape_str(g->a, &sa), ir_shape_str(g->a, &sb), ir_shape_str(g->a, as), ir_shape_str(g->a, bs));
        return -1;
    }
    m->srank = st.rank;
    for (int i = 0; i < st.rank; i++) {
        int ia = i - (st.rank - sa.rank), ib = i - (st.rank - sb.rank);
        m->stack[i] = st.dim[i];
        m->one[0][i] = (char)(ia < 0 || sa.dim[ia] == 1);
        m->one[1][i] = (char)(ib < 0 || sb.dim[ib] == 1);
    }
    return 0;
}

static int infer_user_matmul(ir_graph *g, ir_node *n, diag *d) {
    ir_node *a = n->in[0], *b = n->in[1];
    const ir_shape *as = &a->shape, *bs = &b->shape;
    if (as->rank < 1 || bs->rank < 1) {
        diag_error(d, n->at, "'@' multiplies matrices and vectors; got %s and %s",
                   ir_shape_str(g->a, as), ir_shape_str(g->a, bs));
        return -1;
    }
    ir_mm mm = {0};
    mm.ar = as->rank >= 2 ? as->dim[as->rank - 2] : 1;
    mm.ac = as->dim[as->rank - 1];
    mm.br = bs->dim[bs->rank >= 2 ? bs->rank - 2 : 0];
    mm.bc = bs->rank >= 2 ? bs->dim[bs->rank - 1] : 1;
    if (mm.ac != mm.br) {
        diag_error(d, n->at, "shape mismatch in '@': %s and %s (inner dimensions %lld and %lld differ)",
                   ir_shape_str(g->a, as), ir_shape_str(g->a, bs), (long long)mm.ac, (long long)mm.br);
        return -1;
    }
    n->mm = mm;
    if (stack_broadcast(g, n, as, bs, d)) return -1;
    n->shape.rank = n->mm.srank;
    memcpy(n->shape.dim, n->mm.stack, sizeof(int64_t) * (size_t)n->mm.srank);
    if (as->rank >= 2) n->shape.dim[n->shape.rank++] = mm.ar;
    if (bs->rank >= 2) n->shape.dim[n->shape.rank++] = mm.bc;
    n->batched = a->batched || b->batched;
    return 0;
}

/* dense(x, units): x [..., in] -> [..., units]; the layer's weight is [units, in]. */
static int infer_dense(ir_graph *g, ir_node *n, diag *d) {
    ir_node *x = n->in[0], *w = n->in[1];
    if (x->shape.rank == 0) {
        diag_error(d, n->at, "dense needs at least one feature axis, but %s is a scalar", describe(g, x));
        return -1;
    }
    int64_t units = (int64_t)n->attr[0], in = x->shape.dim[x->shape.rank - 1];
    ir_shape ws = {2, {units, in}}, bs = {1, {units}};
    /* a parameter sized by an earlier dense is shared (share=): it must fit this one */
    for (int i = 1; i < n->nin; i++) {
        ir_node *p = n->in[i];
        const ir_shape *want = i == 1 ? &ws : &bs;
        if (p->op != OP_PARAM || p->shape.rank == 0 || ir_shape_eq(&p->shape, want)) continue;
        diag_error(d, n->at, "dense shares '%s', which is %s, but this dense needs %s", p->name ? p->name : "?",
                   ir_shape_str(g->a, &p->shape), ir_shape_str(g->a, want));
        return -1;
    }
    if (w->op == OP_PARAM) w->shape = ws;   /* conv passes a view of its own */
    if (n->nin == 3) n->in[2]->shape = bs;
    if (w->op == OP_PARAM && check_size(g, w, n->at, d)) return -1;
    n->shape = x->shape;
    n->shape.dim[n->shape.rank - 1] = units;
    n->batched = x->batched;
    return 0;
}

/* attention(q, k, v): q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] -> [..., Tq, dv], the
 * same leading axes (the heads) in all three, and the batch in all three or in none (the
 * kernel runs per example and head; a gradient summed over the batch would need more).
 * Its gradients have the shape of the operand they are the gradient of. */
static int infer_attention(ir_graph *g, ir_node *n, diag *d) {
    if (n->op == OP_ATTENTION_GRAD) {
        n->shape = n->in[1]->in[n->arg]->shape;
        n->batched = n->in[1]->in[n->arg]->batched;
        return 0;
    }
    ir_node *q = n->in[0], *k = n->in[1], *v = n->in[2];
    static const char *const names[] = {"q", "k", "v"};
    for (int i = 0; i < 3; i++)
        if (n->in[i]->shape.rank < 2) {
            diag_error(d, n->at, "attention needs %s as [..., T, d] (a matrix per head); %s is %s", names[i],
                       describe(g, n->in[i]), ir_shape_str(g->a, &n->in[i]->shape));
            return -1;
        }
    int r = q->shape.rank;
    int64_t tq = q->shape.dim[r - 2], dk = q->shape.dim[r - 1];
    ir_shape heads = q->shape;
    heads.rank = r - 2;
    for (int i = 1; i < 3; i++) {
        ir_shape h = n->in[i]->shape;
        h.rank -= 2;
        if (!ir_shape_eq(&h, &heads)) {
            diag_error(d, n->at, "attention needs the same leading (head) axes in q, k and v: q is %s, %s is %s",
                       ir_shape_str(g->a, &q->shape), names[i], ir_shape_str(g->a, &n->in[i]->shape));
            return -1;
        }
    }
    int64_t tk = k->shape.dim[r - 2];
    if (k->shape.dim[r - 1] != dk || v->shape.dim[r - 2] != tk) {
        int keys = k->shape.dim[r - 1] == dk;   /* else the widths differ */
        diag_error(d, n->at, "shape mismatch in attention: q %s, k %s, v %s: %s (%lld) and %s (%lld) differ; "
                   "attention takes q [..., Tq, d], k [..., Tk, d] and v [..., Tk, dv]", ir_shape_str(g->a, &q->shape),
                   ir_shape_str(g->a, &k->shape), ir_shape_str(g->a, &v->shape),
                   keys ? "k's keys Tk" : "q's width d", (long long)(keys ? tk : dk),
                   keys ? "v's" : "k's", (long long)(keys ? v->shape.dim[r - 2] : k->shape.dim[r - 1]));
        return -1;
    }
    if (q->batched != k->batched || q->batched != v->batched) {
        ir_node *other = k->batched != q->batched ? k : v;
        diag_error(d, n->at, "attention needs q, k and v all with the batch or all without: q is %s, %s is %s",
                   ir_node_shape_str(g->a, q), other == k ? "k" : "v", ir_node_shape_str(g->a, other));
        return -1;
    }
    if (isnan(n->attr[1])) n->attr[1] = 1 / sqrt((double)dk);
    n->shape = q->shape;
    n->shape.dim[r - 2] = tq;
    n->shape.dim[r - 1] = v->shape.dim[r - 1];
    n->batched = q->batched;
    return 0;
}

/* A per-example axis as written (negative counts from the end) made absolute; -1 if out of range. */
static int norm_axis(int axis, int rank) {
    if (axis < 0) axis += rank;
    return axis >= 0 && axis < rank ? axis : -1;
}

static int check_axis(ir_graph *g, ir_node *n, ir_node *x, diag *d) {
    int axis = norm_axis(n->axis, x->shape.rank);
    if (axis < 0)
        diag_error(d, n->at, "'%s': axis %d is out of range for %s, which has %d ax%s per example", op_spelling(n),
                   n->axis, ir_shape_str(g->a, &x->shape), x->shape.rank, x->shape.rank == 1 ? "is" : "es");
    else
        n->axis = axis;
    return axis < 0 ? -1 : 0;
}

/* reshape / flatten / a reduction's dropped axis: the same elements, another shape. */
static int infer_reshape(ir_graph *g, ir_node *n, diag *d) {
    ir_node *x = n->in[0];
    int64_t total = ir_numel(&x->shape);
    n->batched = x->batched;
    if (n->view == VIEW_FLATTEN) {
        n->shape = (ir_shape){1, {total}};
        return 0;
    }
    if (n->view == VIEW_SQUEEZE) {
        if (check_axis(g, n, x, d)) return -1;
        n->shape = x->shape;
        for (int i = n->axis; i + 1 < n->shape.rank; i++) n->shape.dim[i] = n->shape.dim[i + 1];
        n->shape.rank--;
        return 0;
    }
    int64_t known = 1;   /* saturates at total + 1: a shape past total cannot fit, nor the product overflow */
    int free_axis = -1;
    for (int i = 0; i < n->shape.rank; i++) {
        int64_t v = n->shape.dim[i];
        if (v == 0) free_axis = i;
        else known = known > total / v ? total + 1 : known * v;
    }
    int fits = free_axis >= 0 ? known <= total && total % known == 0 : known == total;
    if (fits && free_axis >= 0) n->shape.dim[free_axis] = total / known;
    if (!fits) {
        if (free_axis >= 0) n->shape.dim[free_axis] = -1;   /* as written */
        diag_error(d, n->at, "reshape: %s has %lld elements, which do not fit %s", ir_shape_str(g->a, &x->shape),
                   (long long)total, ir_shape_str(g->a, &n->shape));
        return -1;
    }
    return 0;
}

/* A slice that lies inside one operand of a concatenation along its axis reads that
 * operand instead.  rnn() and lstm() concatenate every step's state; a model that reads
 * only the last step (`slice(h, axis=0, start=-1)`) then copies nothing per step, and
 * backprop does not push the gradient back through the concatenation. */
static void slice_through_concat(ir_node *n, int64_t *start, int64_t *end) {
    for (ir_node *x = n->in[0]; x->op == OP_CONCAT && x->axis == n->axis; x = n->in[0]) {
        int64_t at = 0;
        int k = 0;
        while (k < x->nin && at + x->in[k]->shape.dim[n->axis] <= *start) at += x->in[k++]->shape.dim[n->axis];
        if (k == x->nin || *end > at + x->in[k]->shape.dim[n->axis]) return;
        n->in[0] = x->in[k];
        *start -= at;
        *end -= at;
    }
}

/* The axes of a transpose as lowered (ir.h, perm) made a permutation of x's axes. */
static int transpose_perm(ir_graph *g, ir_node *n, const ir_node *x, diag *d) {
    int rank = x->shape.rank;
    if (n->nperm == 0) {   /* transpose(x): of a matrix */
        if (rank != 2) {
            diag_error(d, n->at, "transpose takes a matrix per example; %s is %s", describe(g, x), ir_shape_str(g->a, &x->shape));
            return -1;
        }
        n->perm[0] = 1, n->perm[1] = 0;
        n->nperm = 2;
        return 0;
    }
    if (n->attr[0] == 1) {   /* transpose(x, a, b): the identity with a and b swapped */
        int a = norm_axis(n->perm[0], rank), b = norm_axis(n->perm[1], rank);
        if (a < 0 || b < 0) {
            diag_error(d, n->at, "transpose: axis %d is out of range for %s, which has %d ax%s per example",
                       a < 0 ? n->perm[0] : n->perm[1], ir_shape_str(g->a, &x->shape), rank, rank == 1 ? "is" : "es");
            return -1;
        }
        for (int i = 0; i < rank; i++) n->perm[i] = i == a ? b : i == b ? a : i;
        n->nperm = rank, n->attr[0] = 0;
        return 0;
    }
    if (n->nperm != rank) {
        diag_error(d, n->at, "permute: %d axes given for %s, which has %d per example; list each axis once",
                   n->nperm, ir_shape_str(g->a, &x->shape), rank);
        return -1;
    }
    int seen = 0;
    for (int i = 0; i < rank; i++) {
        int a = norm_axis(n->perm[i], rank);
        if (a < 0 || seen & 1 << a) {
            diag_error(d, n->at, "permute: axis %d %s for %s; the axes must be a permutation of 0..%d", n->perm[i],
                       a < 0 ? "is out of range" : "is given twice", ir_shape_str(g->a, &x->shape), rank - 1);
            return -1;
        }
        seen |= 1 << a;
        n->perm[i] = a;
    }
    return 0;
}

/* transpose and permute: axis i of the result is axis perm[i] of x.  One that keeps the
 * order of the axes longer than 1 moves no element: it becomes a view (a reshape). */
static int infer_transpose(ir_graph *g, ir_node *n, diag *d) {
    ir_node *x = n->in[0];
    if (transpose_perm(g, n, x, d)) return -1;
    n->shape.rank = x->shape.rank;
    int last = -1, moves = 0;
    for (int i = 0; i < x->shape.rank; i++) {
        int64_t len = n->shape.dim[i] = x->shape.dim[n->perm[i]];
        if (len > 1) moves |= n->perm[i] < last, last = n->perm[i];
    }
    if (!moves) n->op = OP_RESHAPE, n->view = VIEW_GIVEN;
    return 0;
}

/* concat(a, b, ...): shapes that differ only along the axis, which adds up. */
static int infer_concat(ir_graph *g, ir_node *n, diag *d) {
    ir_node *x = n->in[0];
    if (check_axis(g, n, x, d)) return -1;
    n->shape = x->shape;
    for (int k = 1; k < n->nin; k++) {
        ir_node *y = n->in[k];
        ir_shape want = x->shape;
        want.dim[n->axis] = y->shape.rank == x->shape.rank ? y->shape.dim[n->axis] : 0;
        if (!ir_shape_eq(&want, &y->shape) || x->batched != y->batched) {
            diag_error(d, n->at, "concat along axis %d needs shapes that differ only there%s: %s and %s", n->axis,
                       x->batched != y->batched ? " (and both with or both without the batch)" : "",
                       ir_shape_str(g->a, &x->shape), ir_shape_str(g->a, &y->shape));
            return -1;
        }
        n->shape.dim[n->axis] += y->shape.dim[n->axis];
    }
    return 0;
}

static int infer_layout(ir_graph *g, ir_node *n, diag *d) {
    ir_node *x = n->in[0];
    n->batched = x->batched;
    switch (n->op) {
    case OP_TRANSPOSE: return infer_transpose(g, n, d);
    case OP_CONCAT: return infer_concat(g, n, d);
    case OP_SLICE: {
        if (check_axis(g, n, x, d)) return -1;
        int64_t dim = x->shape.dim[n->axis], start = (int64_t)n->attr[0], end = (int64_t)n->attr[1];
        if (start < 0) start += dim;
        if (end < 0 || n->attr[1] < 0) end += dim;
        if (n->attr[1] > 1e17) end = dim;       /* end not given */
        if (start < 0 || end > dim || start >= end) {
            diag_error(d, n->at, "slice [%lld, %lld) is empty or outside axis %d of %s", (long long)start,
                       (long long)end, n->axis, ir_shape_str(g->a, &x->shape));
            return -1;
        }
        slice_through_concat(n, &start, &end);
        n->attr[0] = (double)start;
        n->attr[1] = (double)end;
        n->shape = n->in[0]->shape;
        n->shape.dim[n->axis] = end - start;
        return 0;
    }
    default:
        return 0;   /* pad: the shape of the sliced tensor, given by autodiff */
    }
}

/* sum_to or reduce_max over one axis: the axis kept with size 1; over every axis: []. */
static int infer_reduce_axis(ir_graph *g, ir_node *n, diag *d) {
    ir_node *x = n->in[0];
    if (n->axis == IR_NOAXIS) {
        if (n->op == OP_REDUCE_MAX) n->shape.rank = 0, n->batched = x->batched;
        return 0;   /* sum_to: shape given by autodiff */
    }
    if (check_axis(g, n, x, d)) return -1;
    n->shape = x->shape;
    if (n->attr[1]) n->attr[0] = 1.0 / (double)x->shape.dim[n->axis], n->attr[1] = 0;   /* mean */
    n->shape.dim[n->axis] = 1;
    n->batched = x->batched;
    return 0;
}

int shape_infer(ir_graph *g, ir_node *n, diag *d) {
    for (int i = 0; i < n->nin; i++) n->bad |= n->in[i]->bad;   /* already reported */
    if (n->bad) return -1;
    ir_family fam = ir_ops[n->op].fam;
    int rc = fam == FAM_LEAF ? 0 : require_float(g, n, d);
    if (rc == 0) {
        switch (n->op) {
        case OP_CONST: case OP_INV_N:
            n->shape.rank = 0;
            break;
        case OP_EXPAND: case OP_INPUT: case OP_LABEL: case OP_TARGET: case OP_PARAM: case OP_CONST_TENSOR:
        case OP_IM2COL: case OP_COL2IM: case OP_POOL: case OP_POOL_GRAD: case OP_BN_UPDATE:
        case OP_GATHER: case OP_SCATTER_ADD: case OP_PAD_ADD: case OP_NORM_STATS: case OP_NORM_PARAM_GRAD:
        case OP_SCAN_STATE: case OP_SCAN_X: case OP_SCAN_OUT: case OP_SCAN_SEED: case OP_SCAN_DX: case OP_SCAN_ACC:
            break;   /* shape given by whoever built the node */
        case OP_SELECT: case OP_DROPOUT_MASK:
            n->shape = n->in[0]->shape;
            n->batched = n->in[0]->batched;
            break;
        case OP_SUM_TO: case OP_REDUCE_MAX: rc = infer_reduce_axis(g, n, d); break;
        case OP_RESHAPE: rc = infer_reshape(g, n, d); break;
        case OP_TRANSPOSE: case OP_CONCAT: case OP_SLICE: case OP_PAD: rc = infer_layout(g, n, d); break;
        case OP_MATMUL:   /* `@` as written; layers (conv) and autodiff set the views themselves */
            if (n->pass == IR_FWD && n->mm.ar == 0) rc = infer_user_matmul(g, n, d);
            else if (n->pass == IR_FWD) {
                n->shape = (ir_shape){2, {n->mm.ta ? n->mm.ac : n->mm.ar, n->mm.tb ? n->mm.br : n->mm.bc}};
                n->batched = n->in[0]->batched || n->in[1]->batched;
            }
            break;
        case OP_DENSE: rc = infer_dense(g, n, d); break;
        case OP_ATTENTION: case OP_ATTENTION_GRAD: rc = infer_attention(g, n, d); break;
        case OP_SUM:
            /* mean: the 1/N scale is known once the operand's shape is */
            if (n->attr[1]) n->attr[0] /= (double)ir_numel(&n->in[0]->shape), n->attr[1] = 0;
            n->shape.rank = 0;
            n->batched = n->in[0]->batched;
            break;
        case OP_CROSS_ENTROPY: case OP_PICK: rc = infer_cross_entropy(g, n, d); break;
        case OP_PICK_GRAD:
            break;   /* the shape of the scores, given by autodiff */
        case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_SOFTMAX_GRAD: case OP_LOG_SOFTMAX_GRAD:
        case OP_CROSS_ENTROPY_GRAD:
            rc = infer_last_axis(g, n, d);
            break;
        case OP_LAYERNORM: case OP_RMSNORM: case OP_LAYERNORM_GRAD: case OP_RMSNORM_GRAD: {
            const ir_node *x = n->in[n->op == OP_LAYERNORM || n->op == OP_RMSNORM ? 0 : 1];   /* dx: x's shape */
            n->shape = x->shape;
            n->batched = x->batched;
            break;
        }
        default:
            rc = infer_elementwise(g, n, d);
        }
    }
    if (n->op != OP_LABEL && !(n->op == OP_INPUT && n->dtype == DT_CLASS)) n->dtype = DT_FLOAT;
    if (rc == 0) rc = check_size(g, n, n->at, d);
    if (rc) n->bad = 1;
    return rc;
}

/* Marks, in topological order, every node that reads a label or target. */
static char *reads_labels(ir_graph *g) {
    char *dep = arena_alloc(g->a, (size_t)g->nodes.n + 1);
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        dep[i] = n->role == ROLE_LABEL || n->role == ROLE_TARGET;
        for (int k = 0; k < n->nin; k++) dep[i] |= dep[n->in[k]->id];
    }
    return dep;
}

void shape_upto(ir_graph *g, diag *d) {
    /* nodes are only appended: those before the mark were all seen (a function's every call
     * asks, so a walk from 0 would be quadratic) */
    for (int i = g->shaped_upto; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if (n->shaped) continue;
        n->shaped = 1;
        if (!n->bad) shape_infer(g, n, d);
    }
    g->shaped_upto = g->nodes.n;
}

void shape_pass(ir_graph *g, diag *d) {
    shape_upto(g, d);
    ir_node *loss = g->loss;
    if (loss && !loss->bad && loss->shape.rank != 0) {
        /* at the loss statement, where the fix goes; a name bound elsewhere gets a note there */
        loc at = g->loss_at.line ? g->loss_at : loss->at;
        diag_error(d, at, "the loss must be a scalar per example, but it is %s; reduce it with "
                   "sum() or mean()", ir_shape_str(g->a, &loss->shape));
        if (at.line != loss->at.line || at.col != loss->at.col)
            diag_note(d, loss->at, "'%s' is computed here, with shape %s", loss->name ? loss->name : "it",
                      ir_shape_str(g->a, &loss->shape));
    }
    char *dep = reads_labels(g);
    for (int i = 0; i < g->outputs.n; i++) {
        ir_output *o = g->outputs.v[i];
        if (o->node->bad) continue;
        if (dep[o->node->id])
            diag_error(d, o->at, "output '%s' depends on a label or target, which predict does not have",
                       o->name);
    }
}
