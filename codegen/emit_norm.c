/* emit_norm.c — layernorm and rmsnorm: each one pass over the rows (the last axis), forward
 * and backward, after llm.c's layernorm_forward and layernorm_backward.
 *
 * Forward, a row's pass computes its statistics (layernorm: the mean, then the biased
 * variance about it; rmsnorm: the mean square), writes y, and keeps the statistics in the
 * norm's by-product norm_stats for the backward pass.  Backward, a row's pass reads them
 * back, sums the two row means dx needs, then writes dx and adds the row's share into the
 * weight's and bias's gradients (by-products norm_param_grad, zeroed first): they are sums
 * over every row of every example, whatever the input's rank, so they need no pass of
 * their own.  A by-product's own block is empty: its value is written by its input's. */
#include "emit.h"
#include <string.h>

/* n's by-product `op` (norm_param_grad: the weight's, which = 0, or the bias's, 1) when the
 * function being written computes it; NULL otherwise (inference keeps no statistics). */
static const ir_node *by_product(emitter *e, const ir_node *n, ir_op op, int which) {
    if (e->infer_mode) return NULL;
    for (int i = n->id + 1; i < e->g->nodes.n; i++) {
        const ir_node *p = ir_at(e->g, i);
        if (p->op == op && p->in[0] == n && (int)p->attr[0] == which && p->mem != MEM_NONE && p->in_train) return p;
    }
    return NULL;
}

static int is_rms(const ir_node *n) { return n->op == OP_RMSNORM || n->op == OP_RMSNORM_GRAD; }

/* `for (r ...) {` over every row of x, the batch's included; returns the row length. */
static long long open_rows(emitter *e, FILE *o, const ir_node *x) {
    int64_t d = x->shape.dim[x->shape.rank - 1], per = ir_numel(&x->shape) / d;
    const char *count = x->batched ? emit_times(e, "n", per) : arena_printf(e->a, "%lld", (long long)per);
    fprintf(o, "    for (%s r = 0; r < %s; r++) {\n", emit_count_type(e, x->batched ? ir_numel(&x->shape) : 1), count);
    return (long long)d;
}

/* The pragma before a row's sum: the compiler may reorder it (and so vectorize it), as
 * emit_sum's; without it a float sum is kept in order, one element at a time. */
static const char *simd_sum(emitter *e, const char *vars) {
    return arena_printf(e->a, "#pragma omp simd reduction(+:%s)", vars);
}

static void emit_norm_forward(emitter *e, FILE *o, const ir_node *n) {
    const ir_node *x = n->in[0], *stats = by_product(e, n, OP_NORM_STATS, 0);
    int rms = is_rms(n);
    const char *T = e->T, *sq = emit_fn(e, "sqrt");
    long long d = (long long)x->shape.dim[x->shape.rank - 1];
    if (rms)
        fprintf(o, "    /* %s %s = rmsnorm(%s %s) of each row of %lld, eps %g:\n"
                   "     * y = x rstd weight, rstd = 1 / sqrt(mean(x^2) + eps)", n->cname, emit_shape_of(e, n),
                emit_who(e, x), emit_shape_of(e, x), d, n->attr[0]);
    else
        fprintf(o, "    /* %s %s = layernorm(%s %s) of each row of %lld, eps %g:\n"
                   "     * y = (x - mean) rstd weight + bias, rstd = 1 / sqrt(var + eps), var the biased variance",
                n->cname, emit_shape_of(e, n), emit_who(e, x), emit_shape_of(e, x), d, n->attr[0]);
    if (stats) fprintf(o, ";\n     * each row's %s kept in %s %s for the backward pass", rms ? "rstd" : "mean and rstd",
                       emit_mark(e, stats), emit_shape_of(e, stats));
    fprintf(o, " */\n");
    open_rows(e, o, x);
    fprintf(o, "        const %s *xr = %s + r * %lld;\n", T, emit_mark(e, x), d);
    fprintf(o, "        %s *yr = %s + r * %lld;\n", T, emit_mark(e, n), d);
    const char *w = emit_mark(e, n->in[1]);
    if (rms) {
        fprintf(o, "        %s ss = 0;\n", T);
        fprintf(o, "        %s\n", simd_sum(e, "ss"));
        fprintf(o, "        for (int j = 0; j < %lld; j++) ss += xr[j] * xr[j];\n", d);
        fprintf(o, "        const %s rstd = %s / %s(ss / %s + %s);\n", T, emit_lit(e, 1), sq, emit_lit(e, (double)d),
                emit_lit(e, n->attr[0]));
        fprintf(o, "        for (int j = 0; j < %lld; j++) yr[j] = xr[j] * rstd * %s[j];\n", d, w);
        if (stats) fprintf(o, "        %s[r] = rstd;\n", emit_mark(e, stats));
    } else {
        fprintf(o, "        %s mean = 0, var = 0;\n", T);
        fprintf(o, "        %s\n", simd_sum(e, "mean"));
        fprintf(o, "        for (int j = 0; j < %lld; j++) mean += xr[j];\n", d);
        fprintf(o, "        mean /= %s;\n", emit_lit(e, (double)d));
        fprintf(o, "        %s\n", simd_sum(e, "var"));
        fprintf(o, "        for (int j = 0; j < %lld; j++) var += (xr[j] - mean) * (xr[j] - mean);\n", d);
        fprintf(o, "        const %s rstd = %s / %s(var / %s + %s);\n", T, emit_lit(e, 1), sq, emit_lit(e, (double)d),
                emit_lit(e, n->attr[0]));
        fprintf(o, "        for (int j = 0; j < %lld; j++) yr[j] = (xr[j] - mean) * rstd * %s[j] + %s[j];\n", d, w,
                emit_mark(e, n->in[2]));
        if (stats) fprintf(o, "        %s[2 * r] = mean;\n        %s[2 * r + 1] = rstd;\n", stats->cname, stats->cname);
    }
    fprintf(o, "    }\n");
}

/* dx = d norm(x)/dx · dy; with xhat = (x - mean) rstd (rmsnorm: x rstd) and g = dy weight,
 * layernorm's dx = rstd (g - mean(g) - xhat mean(g xhat)), rmsnorm's rstd (g - xhat mean(g xhat)). */
static void emit_norm_backward(emitter *e, FILE *o, const ir_node *n) {
    const ir_node *dy = n->in[0], *x = n->in[1], *stats = n->in[2], *w = n->in[3];
    const ir_node *dw = by_product(e, n, OP_NORM_PARAM_GRAD, 0), *db = by_product(e, n, OP_NORM_PARAM_GRAD, 1);
    int rms = is_rms(n);
    const char *T = e->T;
    long long d = (long long)x->shape.dim[x->shape.rank - 1];
    fprintf(o, "    /* %s %s = d %s(%s)/dx . dy, one pass per row reading its %s from %s:\n"
               "     * xhat = %s, g = dy weight, dx = rstd (g%s - xhat mean(g xhat))", n->cname, emit_shape_of(e, n),
            rms ? "rmsnorm" : "layernorm", emit_who(e, x), rms ? "rstd" : "mean and rstd", emit_who(e, stats),
            rms ? "x rstd" : "(x - mean) rstd", rms ? "" : " - mean(g)");
    if (dw || db)
        fprintf(o, ";\n     * %s%s%s added up over every row in the same pass", dw ? "d weight = sum of dy xhat" : "",
                dw && db ? ", " : "", db ? "d bias = sum of dy" : "");
    fprintf(o, " */\n");
    if (dw) fprintf(o, "    memset(%s, 0, %lld * sizeof(%s));\n", emit_mark(e, dw), d, T);
    if (db) fprintf(o, "    memset(%s, 0, %lld * sizeof(%s));\n", emit_mark(e, db), d, T);
    open_rows(e, o, x);
    fprintf(o, "        const %s *dyr = %s + r * %lld, *xr = %s + r * %lld;\n", T, emit_mark(e, dy), d, emit_mark(e, x), d);
    fprintf(o, "        %s *dxr = %s + r * %lld;\n", T, emit_mark(e, n), d);
    const char *xhat = rms ? "xr[j] * rstd" : "(xr[j] - mean) * rstd", *wt = emit_mark(e, w);
    if (rms) fprintf(o, "        const %s rstd = %s[r];\n", T, emit_mark(e, stats));
    else fprintf(o, "        const %s mean = %s[2 * r], rstd = %s[2 * r + 1];\n", T, emit_mark(e, stats), stats->cname);
    fprintf(o, "        %s %sgx_mean = 0;\n", T, rms ? "" : "g_mean = 0, ");
    fprintf(o, "        %s\n", simd_sum(e, rms ? "gx_mean" : "g_mean, gx_mean"));
    fprintf(o, "        for (int j = 0; j < %lld; j++) {\n", d);
    fprintf(o, "            const %s xhat = %s, g = dyr[j] * %s[j];\n", T, xhat, wt);
    if (!rms) fprintf(o, "            g_mean += g;\n");
    fprintf(o, "            gx_mean += g * xhat;\n        }\n");
    if (!rms) fprintf(o, "        g_mean /= %s;\n", emit_lit(e, (double)d));
    fprintf(o, "        gx_mean /= %s;\n", emit_lit(e, (double)d));
    fprintf(o, "        for (int j = 0; j < %lld; j++) {\n", d);
    fprintf(o, "            const %s xhat = %s;\n", T, xhat);
    if (dw) fprintf(o, "            %s[j] += dyr[j] * xhat;\n", dw->cname);
    if (db) fprintf(o, "            %s[j] += dyr[j];\n", db->cname);
    fprintf(o, "            dxr[j] = rstd * (dyr[j] * %s[j]%s - xhat * gx_mean);\n", wt, rms ? "" : " - g_mean");
    fprintf(o, "        }\n    }\n");
}

void emit_norm(emitter *e, FILE *o, ir_node *n) {
    switch (n->op) {
    case OP_LAYERNORM: case OP_RMSNORM: emit_norm_forward(e, o, n); break;
    case OP_LAYERNORM_GRAD: case OP_RMSNORM_GRAD: emit_norm_backward(e, o, n); break;
    default: break;   /* a by-product: written by its input's block */
    }
}
