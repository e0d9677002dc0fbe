/* ir.c — the op table, node constructors and the IR dump (see ir.h).  Constructors only
 * link nodes; shapes come from shape.c, which the front end runs over the forward graph
 * and autodiff runs on each node it creates. */
#include "ir.h"
#include <string.h>

const ir_opinfo ir_ops[OP__COUNT] = {
    [OP_INPUT] = {"input", 0, FAM_LEAF},          [OP_LABEL] = {"label", 0, FAM_LEAF},
    [OP_TARGET] = {"target", 0, FAM_LEAF},        [OP_PARAM] = {"param", 0, FAM_LEAF},
    [OP_CONST] = {"const", 0, FAM_LEAF},          [OP_INV_N] = {"inv_n", 0, FAM_LEAF},
    [OP_CONST_TENSOR] = {"const_tensor", 0, FAM_LEAF},
    [OP_ADD] = {"add", 2, FAM_ELEMWISE},          [OP_SUB] = {"sub", 2, FAM_ELEMWISE},
    [OP_MUL] = {"mul", 2, FAM_ELEMWISE},          [OP_DIV] = {"div", 2, FAM_ELEMWISE},
    [OP_NEG] = {"neg", 1, FAM_ELEMWISE},          [OP_POWC] = {"pow", 1, FAM_ELEMWISE},
    [OP_COPY] = {"copy", 1, FAM_ELEMWISE},
    [OP_MAP] = {"map", -1, FAM_ELEMWISE},          [OP_MAP_GRAD] = {"map_grad", -1, FAM_ELEMWISE},
    [OP_POWC_GRAD] = {"pow_grad", 2, FAM_ELEMWISE},
    [OP_EXPAND] = {"expand", 1, FAM_ELEMWISE},
    [OP_SUM] = {"sum", 1, FAM_REDUCE},            [OP_SUM_TO] = {"sum_to", 1, FAM_REDUCE},
    [OP_SOFTMAX] = {"softmax", 1, FAM_ROW},       [OP_LOG_SOFTMAX] = {"log_softmax", 1, FAM_ROW},
    [OP_SOFTMAX_GRAD] = {"softmax_grad", 2, FAM_ROW},
    [OP_LOG_SOFTMAX_GRAD] = {"log_softmax_grad", 2, FAM_ROW},
    [OP_LAYERNORM] = {"layernorm", 3, FAM_ROW},   [OP_RMSNORM] = {"rmsnorm", 2, FAM_ROW},
    [OP_LAYERNORM_GRAD] = {"layernorm_grad", 4, FAM_ROW},
    [OP_RMSNORM_GRAD] = {"rmsnorm_grad", 4, FAM_ROW},
    [OP_NORM_STATS] = {"norm_stats", 1, FAM_ROW}, [OP_NORM_PARAM_GRAD] = {"norm_param_grad", 1, FAM_ROW},
    [OP_CROSS_ENTROPY] = {"cross_entropy", 2, FAM_ROW},
    [OP_CROSS_ENTROPY_GRAD] = {"cross_entropy_grad", 3, FAM_ROW},
    [OP_PICK] = {"pick", 2, FAM_ROW},             [OP_PICK_GRAD] = {"pick_grad", 2, FAM_ROW},
    [OP_REDUCE_MAX] = {"reduce_max", 1, FAM_REDUCE},
    [OP_REDUCE_MAX_GRAD] = {"reduce_max_grad", 3, FAM_ELEMWISE},
    [OP_RESHAPE] = {"reshape", 1, FAM_VIEW},      [OP_TRANSPOSE] = {"transpose", 1, FAM_COPY},
    [OP_CONCAT] = {"concat", -1, FAM_COPY},       [OP_SLICE] = {"slice", 1, FAM_COPY},
    [OP_PAD] = {"pad", 1, FAM_COPY},              [OP_PAD_ADD] = {"pad_add", 2, FAM_COPY},
    [OP_IM2COL] = {"im2col", 1, FAM_COPY},        [OP_COL2IM] = {"col2im", 1, FAM_COPY},
    [OP_POOL] = {"pool", 1, FAM_COPY},            [OP_POOL_GRAD] = {"pool_grad", 2, FAM_COPY},
    [OP_SELECT] = {"select", 2, FAM_VIEW},        [OP_DROPOUT_MASK] = {"dropout_mask", 1, FAM_ELEMWISE},
    [OP_BN_UPDATE] = {"bn_update", 4, FAM_EFFECT},
    [OP_GATHER] = {"gather", 2, FAM_COPY},        [OP_SCATTER_ADD] = {"scatter_add", 2, FAM_COPY},
    [OP_MATMUL] = {"matmul", 2, FAM_MATMUL},      [OP_DENSE] = {"dense", -1, FAM_DENSE},
    [OP_ATTENTION] = {"attention", 3, FAM_ATTENTION}, [OP_ATTENTION_GRAD] = {"attention_grad", 2, FAM_ATTENTION},
    [OP_SCAN_STATE] = {"scan_state", 1, FAM_SCAN}, [OP_SCAN_X] = {"scan_x", 1, FAM_SCAN},
    [OP_SCAN_OUT] = {"scan_out", 1, FAM_SCAN},    [OP_SCAN_SEED] = {"scan_seed", -1, FAM_SCAN},
    [OP_SCAN_DX] = {"scan_dx", 1, FAM_SCAN},      [OP_SCAN_ACC] = {"scan_acc", 1, FAM_SCAN},
};

/* PyTorch's conventions at kinks: relu'(0) = 0, abs'(0) = 0, min/max split a tie evenly,
 * clip passes the gradient on the bounds; softplus and sigmoid are evaluated stably. */
const ir_mapinfo ir_maps[] = {
    {"relu", 1, 0, "($a > #0 ? $a : #0)", {"($y > #0 ? $g : #0)"}, {"d relu(u)/du = [u > 0]"}},
    {"sigmoid", 1, 0, "(#1 / (#1 + @exp(-$a)))", {"($g * $y * (#1 - $y))"}, {"d sigmoid(u)/du = y (1 - y)"}},
    {"tanh", 1, 0, "@tanh($a)", {"($g * (#1 - $y * $y))"}, {"d tanh(u)/du = 1 - y^2"}},
    {"exp", 1, 0, "@exp($a)", {"($g * $y)"}, {"d exp(u)/du = exp(u)"}},
    {"log", 1, 0, "@log($a)", {"($g / $a)"}, {"d log(u)/du = 1/u"}},
    {"sin", 1, 0, "@sin($a)", {"($g * @cos($a))"}, {"d sin(u)/du = cos(u)"}},
    {"cos", 1, 0, "@cos($a)", {"(-$g * @sin($a))"}, {"d cos(u)/du = -sin(u)"}},
    {"tan", 1, 0, "@tan($a)", {"($g * (#1 + $y * $y))"}, {"d tan(u)/du = 1 + tan(u)^2"}},
    {"sqrt", 1, 0, "@sqrt($a)", {"($g / (#2 * $y))"}, {"d sqrt(u)/du = 1 / (2 sqrt(u))"}},
    {"abs", 1, 0, "@fabs($a)", {"($a > #0 ? $g : $a < #0 ? -$g : #0)"}, {"d |u|/du = sign(u)"}},
    {"square", 1, 0, "($a * $a)", {"(#2 * $a * $g)"}, {"d u^2/du = 2u"}},
    {"sign", 1, 0, "($a > #0 ? #1 : $a < #0 ? -#1 : #0)", {NULL}, {"d sign(u)/du = 0"}},
    {"elu", 1, 0, "($a > #0 ? $a : @expm1($a))", {"($a > #0 ? $g : $g * ($y + #1))"},
     {"d elu(u)/du = 1 for u > 0, exp(u) below"}},
    {"softplus", 1, 0, "(@fmax($a, #0) + @log1p(@exp(-@fabs($a))))", {"($g / (#1 + @exp(-$a)))"},
     {"d softplus(u)/du = sigmoid(u)"}},
    {"erf", 1, 0, "@erf($a)", {"($g * #1.1283791670955126 * @exp(-$a * $a))"}, {"d erf(u)/du = 2/sqrt(pi) exp(-u^2)"}},
    {"silu", 1, 0, "($a / (#1 + @exp(-$a)))", {"($g * (#1 + $a * (#1 - #1 / (#1 + @exp(-$a)))) / (#1 + @exp(-$a)))"},
     {"d silu(u)/du = s (1 + u (1 - s)), s = sigmoid(u)"}},
    /* gelu's two forms, as PyTorch's approximate='none' (x Phi(x), Phi the normal CDF) and 'tanh' */
    {"gelu", 1, 0, "(#0.5 * $a * (#1 + @erf($a * #0.70710678118654752)))",
     {"($g * (#0.5 * (#1 + @erf($a * #0.70710678118654752)) + $a * #0.39894228040143268 * @exp(-#0.5 * $a * $a)))"},
     {"d gelu(u)/du = Phi(u) + u phi(u), phi the normal density"}},
    {"_gelu_tanh", 1, 0, "(#0.5 * $a * (#1 + @tanh(#0.79788456080286536 * ($a + #0.044715 * $a * $a * $a))))",
     {"($g * (#0.5 * (#1 + @tanh(#0.79788456080286536 * ($a + #0.044715 * $a * $a * $a))) + #0.5 * $a * "
      "(#1 - @tanh(#0.79788456080286536 * ($a + #0.044715 * $a * $a * $a)) * "
      "@tanh(#0.79788456080286536 * ($a + #0.044715 * $a * $a * $a))) * "
      "#0.79788456080286536 * (#1 + #0.134145 * $a * $a)))"},
     {"d gelu_tanh(u)/du = (1 + t)/2 + u (1 - t^2) c (1 + 3 k u^2) / 2, t = tanh(c (u + k u^3)), c = sqrt(2/pi), k = 0.044715"}},
    {"leaky_relu", 1, 1, "($a > #0 ? $a : $p * $a)", {"($a > #0 ? $g : $p * $g)"},
     {"d leaky_relu(u)/du = 1 for u > 0, a below"}},
    {"clip", 1, 2, "@fmin(@fmax($a, $p), $q)", {"($a >= $p && $a <= $q ? $g : #0)"},
     {"d clip(u)/du = [lo <= u <= hi]"}},
    {"min", 2, 0, "@fmin($a, $b)", {"($a < $b ? $g : $a == $b ? #0.5 * $g : #0)", "($b < $a ? $g : $a == $b ? #0.5 * $g : #0)"},
     {"d min(a, b)/da = [a < b] (half at a tie)", "d min(a, b)/db = [b < a] (half at a tie)"}},
    {"_xlogx", 1, 0, "($a > #0 ? $a * @log($a) : #0)", {"($a > #0 ? $g * (@log($a) + #1) : #0)"},
     {"d u log(u)/du = log(u) + 1 (0 log 0 = 0)"}},
    {"max", 2, 0, "@fmax($a, $b)", {"($a > $b ? $g : $a == $b ? #0.5 * $g : #0)", "($b > $a ? $g : $a == $b ? #0.5 * $g : #0)"},
     {"d max(a, b)/da = [a > b] (half at a tie)", "d max(a, b)/db = [b > a] (half at a tie)"}},
    /* bce's logarithm, clamped at -100 as PyTorch's BCELoss does, so that a saturated sigmoid
     * (p rounded to exactly 0 or 1) gives a finite loss and gradient: 0 below the clamp */
    {"_log_clamped", 1, 0, "@fmax(@log($a), -#100)", {"($y > -#100 ? $g / $a : #0)"},
     {"d max(log u, -100)/du = 1/u above the clamp, 0 below"}},
    /* a choice, not c a + (1 - c) b: that would make 0 * inf = nan of an unchosen infinity;
     * no gradient flows to the condition */
    {"where", 3, 0, "($a != #0 ? $b : $c)", {NULL, "($a != #0 ? $g : #0)", "($a != #0 ? #0 : $g)"},
     {"d where(c, a, b)/dc = 0", "d where(c, a, b)/da = [c != 0]", "d where(c, a, b)/db = [c == 0]"}},
    {NULL, 0, 0, NULL, {NULL}, {NULL}},
};

int ir_map_find(const char *name) {
    for (int i = 0; ir_maps[i].name; i++)
        if (!strcmp(ir_maps[i].name, name)) return i;
    return -1;
}

ir_graph *ir_graph_new(arena *a, const source *src) {
    ir_graph *g = arena_alloc(a, sizeof *g);
    g->a = a;
    g->src = src;
    return g;
}

ir_node *ir_node_new(ir_graph *g, ir_op op, int nin, ir_node *const *in, loc at) {
    ir_node *n = arena_alloc(g->a, sizeof *n);
    n->id = g->nodes.n;
    n->op = op;
    n->nin = nin;
    for (int i = 0; i < nin; i++) {
        n->in[i] = in[i];
        if (in[i]->bad) n->bad = 1;
    }
    n->at = at;
    n->stmt_line = at.line;
    n->io_index = n->param_index = -1;
    n->axis = IR_NOAXIS;
    ptrvec_push(g->a, &g->nodes, n);
    return n;
}

ir_node *ir_unary(ir_graph *g, ir_op op, ir_node *x, loc at) {
    return ir_node_new(g, op, 1, &x, at);
}

ir_node *ir_binary(ir_graph *g, ir_op op, ir_node *x, ir_node *y, loc at) {
    ir_node *in[2] = {x, y};
    return ir_node_new(g, op, 2, in, at);
}

ir_node *ir_const(ir_graph *g, double v, loc at) {
    ir_node *n = ir_node_new(g, OP_CONST, 0, NULL, at);
    n->attr[0] = v;
    return n;
}

/* ---- scans ---- */

ir_loop *ir_loop_begin(ir_graph *g, const ir_node *xs, const char *what, loc at) {
    ir_loop *l = arena_alloc(g->a, sizeof *l);
    l->steps = xs->shape.rank ? xs->shape.dim[0] : 1;
    l->batched = xs->batched;
    l->what = what;
    l->line = at.line;
    l->first = g->nodes.n;
    return l;
}

ir_node *ir_loop_state(ir_graph *g, ir_loop *l, ir_node *init, ir_shape shape, loc at) {
    ir_node *s = ir_unary(g, OP_SCAN_STATE, init, at);
    s->shape = shape;
    s->batched = l->batched || init->batched;
    s->loop = l;
    s->attr[0] = l->nstate;
    l->state[l->nstate++] = s;
    return s;
}

ir_node *ir_loop_x(ir_graph *g, ir_loop *l, ir_node *xs, loc at) {
    ir_node *x = ir_unary(g, OP_SCAN_X, xs, at);
    x->shape.rank = xs->shape.rank - 1;
    for (int d = 1; d < xs->shape.rank; d++) x->shape.dim[d - 1] = xs->shape.dim[d];
    x->batched = xs->batched;
    x->loop = l;
    l->x = x;
    return x;
}

/* Parameters and literals made while the body was built (a function's layers) are the
 * same at every step: they stay outside the loop. */
void ir_loop_mark(ir_graph *g, ir_loop *l, int first) {
    l->first = first;
    l->last = g->nodes.n - 1;
    for (int i = first; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if (n->op != OP_PARAM && n->op != OP_CONST && n->op != OP_INV_N) n->loop = l;
    }
}

/* A result the body did not compute in the step (a state passed through, an outer
 * tensor) or that has no memory of its own (a view) is copied, so that every state a
 * step ends with is a tensor of the step. */
static ir_node *own_result(ir_graph *g, ir_loop *l, ir_node *r, loc at) {
    int view = r->op == OP_RESHAPE || r->op == OP_SELECT || r->op == OP_SLICE;
    if (r->id >= l->first && !view && r->op != OP_SCAN_STATE && r->op != OP_SCAN_X) return r;
    ir_node *c = ir_unary(g, OP_COPY, r, at);
    c->shape = r->shape;
    c->batched = r->batched;
    c->shaped = 1;
    return c;
}

void ir_loop_end(ir_graph *g, ir_loop *l, ir_node *const *results, loc at) {
    for (int k = 0; k < l->nstate; k++) {
        ir_node *r = own_result(g, l, results[k], at);
        r->keep = 1;
        l->result[k] = r;
    }
    for (int k = 0; k < l->nstate; k++) {
        ir_node *r = l->result[k], *o = ir_unary(g, OP_SCAN_OUT, r, at);
        o->shape.rank = r->shape.rank + 1;
        o->shape.dim[0] = l->steps;
        for (int d = 0; d < r->shape.rank; d++) o->shape.dim[d + 1] = r->shape.dim[d];
        o->batched = r->batched;
        o->attr[0] = k;
        o->shaped = 1;
        l->out[k] = o;
    }
    ir_loop_mark(g, l, l->first);
    for (int i = l->first; i <= l->last; i++) {
        ir_node *n = ir_at(g, i);
        n->per_step = n->loop == l && n->op != OP_SCAN_OUT;
    }
}

int64_t ir_mm_count(const ir_mm *m) {
    int64_t count = 1;
    for (int i = 0; i < m->srank; i++) count *= m->stack[i];
    return count;
}

/* " stack [2,4] a[2,1] b[1,4] c[2,4]": the stack and each operand's share of it. */
static const char *mm_stack_str(arena *a, const ir_mm *m) {
    const char *s = " stack [";
    for (int i = 0; i < m->srank; i++) s = arena_printf(a, "%s%s%lld", s, i ? "," : "", (long long)m->stack[i]);
    s = arena_printf(a, "%s]", s);
    for (int k = 0; k < 3; k++) {
        s = arena_printf(a, "%s %c[", s, "abc"[k]);
        for (int i = 0; i < m->srank; i++)
            s = arena_printf(a, "%s%s%lld", s, i ? "," : "", m->one[k][i] ? 1LL : (long long)m->stack[i]);
        s = arena_printf(a, "%s]", s);
    }
    return s;
}

int64_t ir_numel(const ir_shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) n *= s->dim[i];
    return n;
}

int ir_shape_eq(const ir_shape *a, const ir_shape *b) {
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return 0;
    return 1;
}

int ir_same_layout(const ir_node *a, const ir_node *b) {
    return a->batched == b->batched && ir_shape_eq(&a->shape, &b->shape);
}

static char *shape_str(arena *a, const ir_shape *s, int batched) {
    char buf[256];
    int len = snprintf(buf, sizeof buf, "[%s", batched ? "B" : "");
    for (int i = 0; i < s->rank && len < 200; i++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%lld", i || batched ? ", " : "",
                        (long long)s->dim[i]);
    snprintf(buf + len, sizeof buf - (size_t)len, "]");
    return arena_strdup(a, buf);
}

char *ir_shape_str(arena *a, const ir_shape *s) { return shape_str(a, s, 0); }
char *ir_node_shape_str(arena *a, const ir_node *n) { return shape_str(a, &n->shape, n->batched); }

int ir_is_elementwise(const ir_node *n) { return ir_ops[n->op].fam == FAM_ELEMWISE; }

int ir_index_free(const ir_node *n) {
    if (n->op == OP_CONST || n->op == OP_INV_N) return 1;
    if (n->op == OP_EXPAND || n->op == OP_COPY || n->op == OP_NEG) return ir_index_free(n->in[0]);
    return 0;
}

const char *ir_op_name(const ir_node *n) {
    if (n->op == OP_MAP || n->op == OP_MAP_GRAD) return ir_maps[n->fn].name;
    return ir_ops[n->op].name;
}

const char *const ir_init_names[] = {"zeros", "ones", "const", "uniform", "normal", "lecun_uniform",
                                     "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "orthogonal",
                                     "tril", "triu", "eye", "causal_mask", "arange"};
const int ir_init_nargs[] = {0, 0, 1, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

static const char *mem_names[] = {"-", "extern", "param", "grad", "act"};

void ir_dump(const ir_graph *g, FILE *out, const char *after_pass) {
    fprintf(out, "; IR after %s: model %s, %d nodes (%d forward)\n", after_pass,
            g->model ? g->model : "?", g->nodes.n, g->fwd_count ? g->fwd_count : g->nodes.n);
    arena *a = g->a;
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *n = ir_at(g, i);
        if (n->op == OP_MAP) fprintf(out, "%%%d = %s", n->id, ir_maps[n->fn].name);
        else if (n->op == OP_MAP_GRAD) fprintf(out, "%%%d = d%s/d%d", n->id, ir_maps[n->fn].name, n->arg);
        else fprintf(out, "%%%d = %s", n->id, ir_ops[n->op].name);
        for (int k = 0; k < n->nin; k++) fprintf(out, "%s%%%d", k ? ", " : " ", n->in[k]->id);
        if (n->op == OP_CONST || n->op == OP_POWC || n->op == OP_POWC_GRAD || n->op == OP_SUM ||
            ((n->op == OP_MAP || n->op == OP_MAP_GRAD) && ir_maps[n->fn].nconst == 1))
            fprintf(out, " {%g}", n->attr[0]);
        if ((n->op == OP_MAP || n->op == OP_MAP_GRAD) && ir_maps[n->fn].nconst == 2)
            fprintf(out, " {%g, %g}", n->attr[0], n->attr[1]);
        if (n->op == OP_CONCAT || n->op == OP_SLICE || n->op == OP_PAD || n->op == OP_PAD_ADD || n->op == OP_REDUCE_MAX)
            fprintf(out, " {axis %d%s}", n->axis, n->op == OP_REDUCE_MAX ? (n->attr[0] > 0 ? " max" : " min") : "");
        if (n->op == OP_SLICE || n->op == OP_PAD || n->op == OP_PAD_ADD) fprintf(out, " {start %g}", n->attr[0]);
        if (n->op == OP_TRANSPOSE && n->nperm > 2)   /* a matrix's transpose is the only one of rank 2 */
            for (int k = 0; k < n->nperm; k++)
                fprintf(out, "%s%d%s", k ? " " : " {perm ", n->perm[k], k + 1 < n->nperm ? "" : "}");
        if (n->op == OP_LAYERNORM || n->op == OP_RMSNORM) fprintf(out, " {eps %g}", n->attr[0]);
        if (n->op == OP_NORM_PARAM_GRAD) fprintf(out, " {%s}", n->attr[0] ? "bias" : "weight");
        if (n->op == OP_PARAM && n->param.buffer == 2) fputs(" {frozen}", out);
        if (n->op == OP_CONST_TENSOR) {
            int k = n->param.init;
            fprintf(out, " {%s", ir_init_names[k]);
            if (ir_init_nargs[k]) fprintf(out, ir_init_nargs[k] == 1 ? "(%g)" : "(%g, %g)", n->param.a, n->param.b);
            fputc('}', out);
        }
        if (n->op == OP_ATTENTION)
            fprintf(out, " {%sscale %g}", n->attr[0] ? "causal, " : "", n->attr[1]);
        if (n->op == OP_ATTENTION_GRAD) fprintf(out, " {d%c}", "qkv"[n->arg % 3]);
        if (n->op == OP_MATMUL)
            fprintf(out, " {[%lld,%lld]%s @ [%lld,%lld]%s%s}", (long long)n->mm.ar, (long long)n->mm.ac,
                    n->mm.ta ? "T" : "", (long long)n->mm.br, (long long)n->mm.bc, n->mm.tb ? "T" : "",
                    n->mm.srank ? mm_stack_str(a, &n->mm) : "");
        fprintf(out, " : %s%s", n->bad ? "?" : ir_node_shape_str(a, n),
                n->dtype == DT_CLASS ? " class" : "");
        if (n->name) fprintf(out, " '%s'", n->name);
        if (n->grad_of) fprintf(out, " d%%%d", n->grad_of->id);
        if (n->loop)
            fprintf(out, " {%s loop %%%d..%%%d%s}", n->loop->backward ? "reverse" : "step", n->loop->first,
                    n->loop->last, n->per_step ? ", per step" : "");
        fprintf(out, " %s line %d", n->pass == IR_BWD ? "bwd" : "fwd", n->stmt_line);
        if (n->mem != MEM_NONE || n->cname) fprintf(out, " [%s", mem_names[n->mem]);
        if (n->mem == MEM_PARAM || n->mem == MEM_GRAD || n->mem == MEM_ACT)
            fprintf(out, " +%lld", (long long)n->offset);
        if (n->cname) fprintf(out, " %s", n->cname);
        if (n->mem != MEM_NONE || n->cname) fputc(']', out);
        fputc('\n', out);
    }
}
