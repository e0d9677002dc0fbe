/* graph.c — `nnc --graph`: the forward and backward computation graphs as one Graphviz
 * digraph, for `dot -Tsvg`.
 *
 * The forward cluster draws data flowing from the inputs down to the loss.  The backward
 * cluster mirrors it: each backward edge is written against the flow with `dir=back`, so
 * dot ranks the gradient of a parameter level with the parameter and the gradient of the
 * loss at the bottom, while the arrows still point the way gradients travel (from the
 * gradient of a consumer toward the gradient of its input).  Where a tensor feeds several
 * consumers its gradient is a sum, drawn as a "+" circle.  Dashed edges show which
 * forward tensors the backward pass reads (the relu output read by relu_grad, the inputs
 * read by a dense layer's weight gradient); they do not constrain the layout, which keeps
 * the two clusters side by side. */
#include <string.h>
#include "codegen.h"

/* Writes S as the inside of a DOT string: quotes and backslashes escaped, newlines as
 * DOT's centred line break, other control characters dropped (dot rejects them). */
static void put_escaped(FILE *out, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c == '\n')        fputs("\\n", out);
        else if (c >= 0x20)        fputc(c, out);
    }
}

static void put_attr(FILE *out, const char *key, const char *value) {
    fprintf(out, ", %s=\"", key);
    put_escaped(out, value);
    fputc('"', out);
}

static const char *op_name(const ir_node *n) { return ir_op_name(n); }

/* What a node is called in the picture: its name, "d<name>" for a whole gradient,
 * the value for a constant, else the op. */
static const char *title(arena *a, const ir_node *n) {
    if (n->name) return n->name;
    if (n->grad_of) {
        const ir_node *f = n->grad_of;
        return arena_printf(a, "d%s", f->name ? f->name : arena_printf(a, "(%s)", op_name(f)));
    }
    if (n->op == OP_CONST) return arena_printf(a, "%g", n->attr[0]);
    if (n->op == OP_INV_N) return "1/n";
    return op_name(n);
}

static const char *label(arena *a, const ir_node *n) {
    const char *t = title(a, n), *shape = ir_node_shape_str(a, n);
    if (strcmp(t, op_name(n)) == 0) return arena_printf(a, "%s\n%s", t, shape);
    return arena_printf(a, "%s\n%s %s", t, op_name(n), shape);
}

/* Which backward nodes add up gradient contributions: the add autodiff marks as a
 * whole gradient (grad_of set) and, when three or more consumers contribute, the
 * partial sums chained into it as its first operand.  Indexed by node id. */
static char *grad_sums(const ir_graph *g) {
    int max_id = 0;
    for (int i = 0; i < g->nodes.n; i++)
        if (ir_at(g, i)->id > max_id) max_id = ir_at(g, i)->id;
    char *sum = arena_alloc(g->a, (size_t)max_id + 1);
    for (int i = g->nodes.n - 1; i >= 0; i--) {
        const ir_node *n = ir_at(g, i);
        if (n->pass != IR_BWD || n->op != OP_ADD) continue;
        if (n->grad_of) sum[n->id] = 1;
        const ir_node *x = n->in[0];
        if (sum[n->id] && x && x->pass == IR_BWD && x->op == OP_ADD && !x->grad_of && !x->name)
            sum[x->id] = 1;
    }
    return sum;
}

static int is_output(const ir_graph *g, const ir_node *n) {
    for (int i = 0; i < g->outputs.n; i++)
        if (((ir_output *)g->outputs.v[i])->node == n) return 1;
    return 0;
}

/* The shape and fill that say what kind of tensor a node is. */
static const char *style(const ir_graph *g, const ir_node *n) {
    switch (n->op) {
    case OP_PARAM:  return "shape=box, style=filled, fillcolor=\"#f3d98b\"";
    case OP_INPUT: case OP_LABEL: case OP_TARGET:
                    return "shape=box, style=rounded";
    case OP_CONST: case OP_INV_N:
                    return "shape=plaintext";
    default: break;
    }
    if (n->grad_of && n->grad_of->op == OP_PARAM)
        return "shape=box, style=filled, fillcolor=\"#b9d7ee\"";
    if (n == g->loss) return "shape=ellipse, style=bold";
    if (is_output(g, n)) return "shape=ellipse, peripheries=2";
    return "shape=ellipse";
}

static void put_node(const ir_graph *g, FILE *out, const ir_node *n, const char *sums) {
    if (sums[n->id]) {
        /* a small circle; the gradient it completes is named beside it */
        fprintf(out, "    n%d [shape=circle, width=0.3, fixedsize=true, label=\"+\"", n->id);
        if (n->grad_of) put_attr(out, "xlabel", title(g->a, n));
    } else {
        fprintf(out, "    n%d [%s", n->id, style(g, n));
        put_attr(out, "label", label(g->a, n));
    }
    fputs("];\n", out);
}

static void put_cluster(const ir_graph *g, FILE *out, ir_pass pass, const char *sums) {
    const char *name = pass == IR_FWD ? "forward" : "backward";
    fprintf(out, "  subgraph cluster_%s {\n    label=\"%s\";\n", name, name);
    for (int i = 0; i < g->nodes.n; i++)
        if (ir_at(g, i)->pass == pass) put_node(g, out, ir_at(g, i), sums);
    fputs("  }\n", out);
}

static void put_edges(const ir_graph *g, FILE *out) {
    for (int i = 0; i < g->nodes.n; i++) {
        const ir_node *n = ir_at(g, i);
        for (int j = 0; j < n->nin; j++) {
            const ir_node *x = n->in[j];
            if (!x) continue;
            if (n->pass == IR_FWD)
                fprintf(out, "  n%d -> n%d;\n", x->id, n->id);
            else if (x->pass == IR_BWD)
                fprintf(out, "  n%d -> n%d [dir=back];\n", n->id, x->id);
            else
                fprintf(out, "  n%d -> n%d [style=dashed, color=gray50, constraint=false];\n",
                        x->id, n->id);
        }
    }
}

void graph_dot(ir_graph *g, FILE *out) {
    fputs("digraph \"", out);
    put_escaped(out, g->model ? g->model : "model");
    fputs("\" {\n  rankdir=TB;\n  forcelabels=true;\n"
          "  node [fontname=\"Helvetica\", fontsize=10];\n"
          "  edge [fontname=\"Helvetica\", fontsize=9];\n", out);
    const char *sums = grad_sums(g);
    put_cluster(g, out, IR_FWD, sums);
    put_cluster(g, out, IR_BWD, sums);
    put_edges(g, out);
    fputs("}\n", out);
}
