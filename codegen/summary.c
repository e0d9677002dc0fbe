/* summary.c — the Keras-like table of `nnc --summary`, also embedded in the trainer
 * for its `summary` command.
 *
 * One row per tensor a user can name: inputs, labels, targets, explicit `param`s, every
 * binding, the outputs and the loss.  Unnamed temporaries get no row of their own: their
 * FLOPs, and the parameters of the layers they stand for, go to the row of the first
 * named tensor that consumes them, so `h1 = relu(dense(x, 256))` is one row holding the
 * dense's cost and h1.weight and h1.bias.  FLOPs are per example and rough on purpose (a
 * multiply-add is 2, exp or log is 1, softmax about 5 per element): they are for
 * comparing layers, not for predicting run time.  Work without the batch dimension (an
 * l2 term on a weight) runs once per batch and is shared out over its examples. */
#include <stdlib.h>
#include <string.h>
#include "codegen.h"

typedef struct row {
    ir_node    *n;
    const char *name;
    int64_t     params, flops;
} row;

/* Classes are int32 in memory whatever the float type. */
static int64_t elem_bytes(const ir_graph *g, const ir_node *n) {
    return n->dtype == DT_CLASS ? 4 : g->f64 ? 8 : 4;
}

static int64_t last_dim(const ir_node *n) {
    return n->shape.rank ? n->shape.dim[n->shape.rank - 1] : 1;
}

static int64_t in_numel(const ir_node *n, int i) {
    return i < n->nin && n->in[i] ? ir_numel(&n->in[i]->shape) : 0;
}

static int64_t dense_flops(const ir_node *n) {
    int64_t units = last_dim(n), in = n->nin > 0 && n->in[0] ? last_dim(n->in[0]) : 0;
    if (units <= 0) return 0;
    int64_t rows = ir_numel(&n->shape) / units;
    int has_bias = n->nin >= 3 && n->in[2];
    return rows * (2 * in * units + (has_bias ? units : 0));
}

static int64_t matmul_flops(const ir_node *n) {
    const ir_mm *m = &n->mm;
    int64_t p = m->ta ? m->ac : m->ar, q = m->tb ? m->br : m->bc, k = m->ta ? m->ar : m->ac;
    return 2 * p * q * k * ir_mm_count(m);
}

/* attention: two products [Tq, d] x [d, Tk] and [Tq, Tk] x [Tk, dv] per head, and about 5
 * operations a score for the softmax; its gradient: four products and the softmax's. */
static int64_t attention_flops(const ir_node *n) {
    const ir_node *f = n->op == OP_ATTENTION ? n : n->in[1];
    if (n->op == OP_ATTENTION_GRAD && n->folded) return 0;   /* counted at the first gradient */
    const ir_shape *q = &f->in[0]->shape, *v = &f->in[2]->shape;
    if (q->rank < 2 || v->rank < 2) return 0;
    int64_t tq = q->dim[q->rank - 2], d = q->dim[q->rank - 1], tk = v->dim[v->rank - 2], dv = v->dim[v->rank - 1];
    int64_t heads = ir_numel(q) / (tq * d), per = 2 * tq * tk * (d + dv) + 5 * tq * tk;
    return heads * (n->op == OP_ATTENTION ? per : 2 * per);
}

/* FLOPs of one node for one example. */
static int64_t node_flops(const ir_node *n) {
    int64_t out = ir_numel(&n->shape);
    switch (ir_ops[n->op].fam) {
    case FAM_LEAF: case FAM_VIEW: case FAM_COPY: case FAM_EFFECT: case FAM_SCAN: return 0;   /* no arithmetic */
    case FAM_ELEMWISE: return n->op == OP_EXPAND || n->op == OP_COPY ? 0 : out; /* moves only */
    case FAM_REDUCE:   return in_numel(n, 0);
    case FAM_ROW: {
        if (n->op == OP_NORM_STATS || n->op == OP_NORM_PARAM_GRAD) return 0;   /* computed by their input's pass */
        /* cross_entropy's output is one number per row: count over its logits */
        int64_t x = in_numel(n, 0);
        return 5 * (x > out ? x : out);
    }
    case FAM_MATMUL:   return matmul_flops(n);
    case FAM_DENSE:    return dense_flops(n);
    case FAM_ATTENTION: return attention_flops(n);
    }
    return 0;
}

/* A scan's body runs once per step.  A node without the batch dimension (computed from parameters only, such as an l2
 * term) runs once per batch, so one example's share is a batch-th of it. */
static int64_t example_flops(const ir_graph *g, const ir_node *n) {
    int64_t f = node_flops(n) * (n->loop ? n->loop->steps : 1), batch = g->train.batch > 0 ? g->train.batch : 1;
    return n->batched ? f : (f + batch - 1) / batch;
}

/* A parameter a layer made ("h1.weight") belongs to the layer's row; one the user
 * declared with `param` (no dot: an identifier) is a row of its own. */
static int is_layer_param(const ir_node *n) {
    return n->op == OP_PARAM && n->name && strchr(n->name, '.');
}

static int is_output(const ir_graph *g, const ir_node *n) {
    for (int i = 0; i < g->outputs.n; i++)
        if (((ir_output *)g->outputs.v[i])->node == n) return 1;
    return 0;
}

static int is_visible(const ir_graph *g, const ir_node *n) {
    return n->pass == IR_FWD && !is_layer_param(n) && (n->name || n == g->loss || is_output(g, n));
}

/* The row's name: the tensor's own, noting an output or the loss bound to an existing
 * tensor under another name (`output p = h` is the row of h). */
static const char *row_name(const ir_graph *g, const ir_node *n) {
    const char *base = n->name ? n->name : n == g->loss ? "loss" : NULL, *name = base;
    for (int i = 0; i < g->outputs.n; i++) {
        ir_output *o = g->outputs.v[i];
        if (o->node != n) continue;
        if (!base) name = base = o->name;
        else if (strcmp(base, o->name) != 0) name = arena_printf(g->a, "%s (output %s)", name, o->name);
    }
    if (n == g->loss && strcmp(base, "loss") != 0) name = arena_printf(g->a, "%s (loss)", name);
    return name;
}

/* Positions in g->nodes by node id, so that inputs can be looked up in the arrays below. */
static int *positions(const ir_graph *g) {
    int max_id = 0;
    for (int i = 0; i < g->nodes.n; i++)
        if (ir_at(g, i)->id > max_id) max_id = ir_at(g, i)->id;
    int *pos = arena_alloc(g->a, sizeof(int) * ((size_t)max_id + 1));
    for (int i = 0; i < g->nodes.n; i++) pos[ir_at(g, i)->id] = i;
    return pos;
}

/* owner[i]: the position of the row node i is counted in, or -1 when no named tensor
 * consumes it.  Consumers come later in topological order, so a backward sweep sees
 * every consumer of a node before the node; taking the earliest row keeps a layer's
 * parameters with the layer even when a regularizer later reads them. */
static void assign_owners(const ir_graph *g, const int *pos, int *owner) {
    for (int i = g->nodes.n - 1; i >= 0; i--) {
        ir_node *n = ir_at(g, i);
        if (n->pass != IR_FWD || owner[i] < 0) continue;
        for (int j = 0; j < n->nin; j++) {
            if (!n->in[j]) continue;
            int p = pos[n->in[j]->id];
            if (owner[p] == p) continue;
            if (owner[p] < 0 || owner[i] < owner[p]) owner[p] = owner[i];
        }
    }
}

/* The rows in graph order; *nrows receives their count. */
static row *collect_rows(ir_graph *g, int *nrows) {
    int n = g->nodes.n, *pos = positions(g), *owner = arena_alloc(g->a, sizeof(int) * (n + 1));
    for (int i = 0; i < n; i++)
        owner[i] = is_visible(g, ir_at(g, i)) ? i : -1;
    assign_owners(g, pos, owner);
    for (int i = 0; i < n; i++)          /* a layer parameter nothing reads: show it anyway */
        if (is_layer_param(ir_at(g, i)) && ir_at(g, i)->pass == IR_FWD && owner[i] < 0)
            owner[i] = i;

    int *slot = arena_alloc(g->a, sizeof(int) * (n + 1));
    row *rows = arena_alloc(g->a, sizeof(row) * (n + 1));
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (owner[i] != i) continue;
        slot[i] = k;
        rows[k++] = (row){ ir_at(g, i), row_name(g, ir_at(g, i)), 0, 0 };
    }
    for (int i = 0; i < n; i++) {
        ir_node *x = ir_at(g, i);
        if (owner[i] < 0) continue;
        row *r = &rows[slot[owner[i]]];
        r->flops += example_flops(g, x);
        if (x->op == OP_PARAM) r->params += ir_numel(&x->shape);
    }
    *nrows = k;
    return rows;
}

/* 203530 -> "203,530" */
static char *group(arena *a, int64_t v) {
    char digits[32], out[48];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)(v < 0 ? -v : v)), o = 0;
    if (v < 0) out[o++] = '-';
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    return arena_strdup(a, out);
}

enum { COLS = 6 };
static const char *const heads[COLS] = { "name", "op", "output shape", "params", "FLOPs", "bytes" };
static const int right[COLS] = { 0, 0, 0, 1, 1, 1 };

static void cells_of(ir_graph *g, const row *r, const char **c) {
    int is_param = r->n->op == OP_PARAM;
    c[0] = r->name;
    c[1] = ir_op_name(r->n);
    c[2] = ir_node_shape_str(g->a, r->n);
    c[3] = group(g->a, r->params);
    c[4] = group(g->a, r->flops);
    /* parameters are not activations; their bytes are in the totals */
    c[5] = is_param ? "-" : group(g->a, ir_numel(&r->n->shape) * elem_bytes(g, r->n));
}

static void print_line(FILE *f, const char *const *c, const int *w) {
    for (int j = 0; j < COLS; j++) {
        const char *sep = j + 1 < COLS ? "  " : "";
        if (right[j])            fprintf(f, "%*s%s", w[j], c[j], sep);
        else if (j + 1 < COLS)   fprintf(f, "%-*s%s", w[j], c[j], sep);
        else                     fputs(c[j], f);
    }
    fputc('\n', f);
}

static void print_rule(FILE *f, const int *w, char ch) {
    int total = 2 * (COLS - 1);
    for (int j = 0; j < COLS; j++) total += w[j];
    for (int i = 0; i < total; i++) fputc(ch, f);
    fputc('\n', f);
}

static void print_table(ir_graph *g, FILE *f, const row *rows, int nrows) {
    const char **cells = arena_alloc(g->a, sizeof(char *) * COLS * ((size_t)nrows + 1));
    int w[COLS];
    for (int j = 0; j < COLS; j++) w[j] = (int)strlen(heads[j]);
    for (int i = 0; i < nrows; i++) {
        cells_of(g, &rows[i], cells + COLS * i);
        for (int j = 0; j < COLS; j++) {
            int len = (int)strlen(cells[COLS * i + j]);
            if (len > w[j]) w[j] = len;
        }
    }
    print_line(f, heads, w);
    print_rule(f, w, '=');
    for (int i = 0; i < nrows; i++) print_line(f, cells + COLS * i, w);
    print_rule(f, w, '-');
}

static void print_totals(ir_graph *g, FILE *f, const row *rows, int nrows) {
    int64_t params = 0, param_bytes = 0, flops = 0, act = 0;
    int batch = g->train.batch > 0 ? g->train.batch : 1;
    int64_t frozen = 0;   /* `param ... frozen`: counted, saved, not trained */
    for (int i = 0; i < g->params.n; i++) {
        ir_node *p = g->params.v[i];
        params += ir_numel(&p->shape);
        param_bytes += ir_numel(&p->shape) * elem_bytes(g, p);
        if (p->param.buffer == 2) frozen += ir_numel(&p->shape);
    }
    /* every forward node, so the total holds even what no named tensor consumes */
    for (int i = 0; i < g->nodes.n; i++)
        if (ir_at(g, i)->pass == IR_FWD) flops += example_flops(g, ir_at(g, i));
    for (int i = 0; i < nrows; i++) {
        const ir_node *n = rows[i].n;
        if (n->op == OP_PARAM) continue;
        act += ir_numel(&n->shape) * elem_bytes(g, n) * (n->batched ? batch : 1);
    }
    const char *label[4] = {
        "total params:", "forward FLOPs per example:",
        "forward+backward FLOPs per example (~3x forward):",
        arena_printf(g->a, "activation bytes per batch of %d:", batch) };
    const char *value[4] = {
        arena_printf(g->a, "%s (%s bytes)%s%s", group(g->a, params), group(g->a, param_bytes),
                     frozen ? ", frozen (not trained) " : "", frozen ? group(g->a, frozen) : ""),
        group(g->a, flops), group(g->a, 3 * flops), group(g->a, act) };
    int w = 0;
    for (int i = 0; i < 4; i++)
        if ((int)strlen(label[i]) > w) w = (int)strlen(label[i]);
    for (int i = 0; i < 4; i++) fprintf(f, "%-*s %s\n", w, label[i], value[i]);
    if (g->act_size > 0) {   /* once planned: the blocks the generated code allocates, nothing else */
        int64_t eb = g->f64 ? 8 : 4, p = g->param_size * eb,
                s = plan_state_size(g) * eb,
                a = g->act_size * eb;
        fprintf(f, "memory plan (bytes): params %s, grads %s, optimizer state %s, activations %s, total %s\n",
                group(g->a, p), group(g->a, p), group(g->a, s), group(g->a, a), group(g->a, 2 * p + s + a));
    }
}

char *summary_text(ir_graph *g) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        fputs("nnc: out of memory\n", stderr);
        exit(2);
    }
    int nrows;
    row *rows = collect_rows(g, &nrows);
    fprintf(f, "model %s (dtype %s, batch %d)\n\n", g->model ? g->model : "?",
            g->f64 ? "f64" : "f32", g->train.batch);
    print_table(g, f, rows, nrows);
    print_totals(g, f, rows, nrows);
    fclose(f);
    char *text = arena_strndup(g->a, buf, len);
    free(buf);
    return text;
}

/* --summary --target embedded: the static RAM each block takes and the flash that
 * --weights adds, as the generated header's NAME_RAM_* macros state them (code size
 * depends on the compiler: arm-none-eabi-size of the built image gives it). */
char *summary_embedded(ir_graph *g) {
    int64_t es = g->f64 ? 8 : 4, params = g->param_size * es;
    int64_t grads = g->infer_only ? 0 : g->train_size * es;
    int64_t state = g->infer_only ? 0 : plan_state_size(g) * es, acts = g->act_size * es;
    char *s = arena_printf(g->a, "\nembedded target (%s, batch %d): static RAM in bytes\n", g->infer_only ? "inference only" : "training",
                           g->train.batch);
    s = arena_printf(g->a, "%s  parameters      %12lld   (in flash instead with --weights --infer-only)\n", s, (long long)params);
    s = arena_printf(g->a, "%s  gradients       %12lld\n  optimizer state %12lld\n  activations     %12lld\n", s,
                     (long long)grads, (long long)state, (long long)acts);
    s = arena_printf(g->a, "%s  total           %12lld\n", s, (long long)(params + grads + state + acts));
    return arena_printf(g->a, "%sflash: --weights adds %lld bytes of parameters (and 16 a feature of a standardization)\n", s,
                        (long long)params);
}
