/* emit_elementwise.c — the loops of elementwise ops, reductions and last-axis ops.
 *
 * An elementwise node (and every inlined node it reads: fuse.c) is one loop, flat, per
 * example or nested per axis, whichever reads every operand correctly (emit.c's
 * emit_choose_mode); its comment gives the local derivatives in math and the slices it
 * reads in place; a value its expression reads twice is a local of the loop body (emit.c's
 * operand).  Reductions: a sum over an example with a register accumulator, and
 * sum_to / max / min over axes.  Last-axis ops, a loop over rows: softmax, log_softmax
 * and cross_entropy with the log-sum-exp shift, a class's pick, their gradients.  And
 * batchnorm's running statistics, updated by each training step. */
#include "emit.h"
#include <string.h>

/* The slices x's loop reads in place, for its comment: "h_add [256, 384) of axis 1". */
static void collect_views(emitter *e, const ir_node *x, char *buf, size_t cap, int top) {
    if (emit_is_slice_view(x)) {
        const char *v = x->op == OP_SCAN_X ? emit_who(e, x)
                        : arena_printf(e->a, "%s [%lld, %lld) of axis %d", emit_who(e, x->in[0]), (long long)x->attr[0],
                                       (long long)x->attr[1], x->axis);
        if (!strstr(buf, v) && strlen(buf) + strlen(v) + 4 < cap) {
            if (*buf) strcat(buf, ", ");
            strcat(buf, v);
        }
        return;
    }
    if (!top && !emit_is_inline(x)) return;
    for (int k = 0; k < x->nin; k++) collect_views(e, x->in[k], buf, cap, 0);
}

void emit_elementwise(emitter *e, FILE *o, ir_node *n) {
    for (int k = 0; k < n->nin && n->op == OP_ADD; k++)
        if (n->in[k]->op == OP_DENSE && n->in[k]->into == n) {   /* a dense's GEMM accumulates into the sum */
            emit_dense_into(e, o, n->in[k], n, n->in[1 - k]);
            return;
        }
    ictx c = emit_layout_ctx(n);
    emit_choose_mode(&c, (const ir_node *const *)n->in, n->nin, 1);
    char math[512] = "", views[256] = "";
    if (n->pass == IR_BWD) emit_collect_math(n, math, sizeof math, 1);
    collect_views(e, n, views, sizeof views, 1);
    fprintf(o, "    /* %s %s%s%s%s%s */\n", n->cname, emit_shape_of(e, n), *math ? ": " : "", math,
            *views ? (*math ? "; reads in place " : ", reading in place ") : "", views);
    if (ir_numel(&n->shape) * (n->batched ? e->g->train.batch : 1) >= EMIT_LOOP_PARALLEL_MIN)
        emit_omp_rows(e, o, "    ", "");   /* each iteration writes its own element */
    const char *ind = emit_open_loops(e, o, &c, "    ", 1);
    emit_stmt_open(e);
    const char *v = emit_expr(e, n, &c);
    emit_stmt_close(e, o, ind, arena_printf(e->a, "%s[%s] = %s;", emit_mark(e, n), emit_index_of(e, n, &c), v));
}

void emit_sum(emitter *e, FILE *o, ir_node *n) {
    ir_node *x = n->in[0];
    ictx c = emit_layout_ctx(x);
    c.batched = x->batched;
    const ir_node *roots[1] = {x};
    emit_choose_mode(&c, roots, 1, 0);
    double scale = n->attr[0];
    fprintf(o, "    /* %s %s = %s over each example's %lld elements of %s */\n", n->cname, emit_shape_of(e, n),
            scale == 1 ? "sum" : "scaled sum", (long long)ir_numel(&x->shape), emit_shape_of(e, x));
    const char *ind = "    ";
    if (x->batched) {
        fprintf(o, "    for (int b = 0; b < n; b++) {\n");
        ind = "        ";
    } else {
        fprintf(o, "    {\n");
        ind = "        ";
    }
    fprintf(o, "%s%s acc = 0;\n", ind, e->T);
    ictx inner = c;
    inner.batched = 0;   /* the batch loop is already open */
    const char *ind2;
    if (c.mode == LOOP_EXAMPLE) {
        fprintf(o, "%s#pragma omp simd reduction(+:acc)   /* lets the compiler reorder the sum */\n", ind);
        fprintf(o, "%sfor (int i = 0; i < %lld; i++)", ind, (long long)ir_numel(&x->shape));
        ind2 = arena_printf(e->a, "%s    ", ind);
    } else {
        ind2 = emit_open_loops(e, o, &inner, ind, 0);
    }
    emit_stmt_open(e);
    emit_stmt_close(e, o, ind2, arena_printf(e->a, "acc += %s;", emit_read_at(e, x, &c)));
    if (scale == 1) fprintf(o, "%s%s[%s] = acc;\n", ind, emit_mark(e, n), x->batched ? "b" : "0");
    else fprintf(o, "%s%s[%s] = acc * %s;\n", ind, emit_mark(e, n), x->batched ? "b" : "0", emit_lit(e, scale));
    fprintf(o, "    }\n");
}

/* Whether the code of x (its inlined expression) computes where's choice or its gradient. */
static int reads_where(const ir_node *x) {
    if ((x->op == OP_MAP || x->op == OP_MAP_GRAD) && ir_maps[x->fn].nargs == 3) return 1;
    for (int k = 0; k < x->nin; k++)
        if (emit_is_inline(x->in[k]) && reads_where(x->in[k])) return 1;
    return 0;
}

/* The loops folding every element of x (read at c's index) into the element of n it
 * reduces to, stored in `name`, opened at `ind`; the batch's loop is open already when
 * batch_open.  An innermost axis that is summed away goes through a register. */
static void fold_into(emitter *e, FILE *o, const ir_node *n, ictx c, const char *name, const char *ind0,
                      int batch_open, int inner_reduced, int simd) {
    const ir_node *x = n->in[0];
    int is_max = n->op == OP_REDUCE_MAX, hi = n->attr[0] > 0, last = x->shape.rank - 1;
    ictx loops = c;
    if (batch_open) loops.batched = 0;
    if (inner_reduced && !is_max) {
        /* the innermost axis is summed: a register accumulates it, in an order the compiler may vectorize */
        loops.rank--;
        const char *ind = emit_open_loops(e, o, &loops, ind0, 0);
        fprintf(o, " {\n%s%s acc = 0;\n%s#pragma omp simd reduction(+:acc)\n", ind, e->T, ind);
        fprintf(o, "%sfor (int %s = 0; %s < %lld; %s++)", ind, c.v[last], c.v[last], (long long)x->shape.dim[last], c.v[last]);
        emit_stmt_open(e);
        emit_stmt_close(e, o, arena_printf(e->a, "%s    ", ind), arena_printf(e->a, "acc += %s;", emit_read_at(e, x, &c)));
        c.v[last] = "0";
        fprintf(o, "%s%s[%s] += acc;\n", ind, name, emit_index_of(e, n, &c));
        fprintf(o, "%.*s}\n", (int)strlen(ind) - 4, ind);
        return;
    }
    const char *ind = emit_open_loops(e, o, &loops, ind0, simd);
    emit_stmt_open(e);
    const char *at = arena_printf(e->a, "%s[%s]", name, emit_index_of(e, n, &c)), *v = emit_read_at(e, x, &c);
    if (is_max)
        emit_stmt_close(e, o, ind, arena_printf(e->a, "%s = %s(%s, %s);", at, emit_fn(e, hi ? "fmax" : "fmin"), at, v));
    else
        emit_stmt_close(e, o, ind, arena_printf(e->a, "%s += %s;", at, v));
}

/* A sum over the batch of a large tensor (fuse.c): the batch in fixed chunks shared among
 * nnc's threads, each summing its examples into a partial of its own, the partials then
 * added in chunk order into `name`. */
static void sum_chunks(emitter *e, FILE *o, const ir_node *n, ictx c, int chunks, const char *name, int inner_reduced,
                       int simd) {
    const char *T = e->T;
    long long numel = (long long)ir_numel(&n->shape), each = (e->g->train.batch + chunks - 1) / chunks;
    long long at = (long long)n->scratch_offset, per = (long long)fuse_sum_part_stride(n);
    fprintf(o, "    /* the batch in %d chunks of %lld examples, chosen from the shapes alone (fuse.c) and shared\n"
               "     * among nnc's threads: each chunk sums its examples into a partial of its own, and the\n"
               "     * partials are added in chunk order after the loop, so the same bits at any thread count */\n",
            chunks, each);
    emit_omp_rows(e, o, "    ", "");
    fprintf(o, "    for (int ch = 0; ch < %d; ch++) {\n", chunks);
    fprintf(o, "        %s *restrict part = m->acts + %lld + (size_t)ch * %lld;   /* the chunk's sum */\n", T, at, per);
    fprintf(o, "        memset(part, 0, %lld * sizeof(%s));\n", numel, T);
    fprintf(o, "        for (int b = ch * %lld; b < n && b < (ch + 1) * %lld; b++) {\n", each, each);
    fold_into(e, o, n, c, "part", "            ", 1, inner_reduced, simd);
    fprintf(o, "        }\n    }\n");
    fprintf(o, "    {\n        const %s *restrict parts = m->acts + %lld;   /* chunk ch's at ch * %lld */\n", T, at, per);
    fprintf(o, "        for (int i = 0; i < %lld; i++) {\n", numel);
    fprintf(o, "            %s sum = parts[i];\n", T);
    fprintf(o, "            for (int ch = 1; ch < %d; ch++) sum += parts[(size_t)ch * %lld + i];\n", chunks, per);
    fprintf(o, "            %s[i] = sum;\n        }\n    }\n", name);
}

/* sum_to (undoing a broadcast, or sum/mean over an axis) and max/min over axes: the
 * output starts at the identity of the combination, then every input element is folded
 * into the output element it reduces to. */
void emit_sum_to(emitter *e, FILE *o, ir_node *n) {
    ir_node *x = n->in[0];
    const ir_node *dst = n->into ? n->into : n;   /* a sum over a scan's steps: added into it */
    const char *name = emit_mark(e, dst), *is = n->into ? "+=" : "=";
    ictx c = emit_layout_ctx(x);
    c.mode = LOOP_NESTED;
    int is_max = n->op == OP_REDUCE_MAX, hi = n->attr[0] > 0;
    double scale = !is_max && n->attr[0] != 0 ? n->attr[0] : 1;
    const char *src = emit_is_inline(x) ? "the gradient" : emit_who(e, x);
    if (is_max)
        fprintf(o, "    /* %s %s = %s of %s %s over the reduced axes */\n", name, emit_shape_of(e, n),
                hi ? "max" : "min", src, emit_shape_of(e, x));
    else if (n->axis != IR_NOAXIS)
        fprintf(o, "    /* %s %s %s %s of %s %s over axis %d */\n", name, emit_shape_of(e, n), is,
                scale == 1 ? "sum" : "mean", src, emit_shape_of(e, x), n->axis);
    else if (x->op == OP_REDUCE_MAX_GRAD && x->in[0]->op == OP_CONST)   /* grad.c's tie count */
        fprintf(o, "    /* %s %s = how many elements of %s %s tie at the %s (their gradient is shared) */\n", name,
                emit_shape_of(e, n), emit_who(e, x->in[1]), emit_shape_of(e, x),
                x->in[2]->attr[0] > 0 ? "maximum" : "minimum");
    else if (n->ranks && x->batched == n->batched && ir_numel(&x->shape) == ir_numel(&n->shape))
        fprintf(o, "    /* %s %s: a batch statistic's gradient, this share's part */\n", name,
                emit_shape_of(e, n));   /* grad.c's sum over the processes */
    else
        fprintf(o, "    /* %s %s %s %s %s summed over the axes it was broadcast along%s */\n", name,
                emit_shape_of(e, n), is, src, emit_shape_of(e, x), n->batched ? "" : " (the batch too)");
    long long numel = (long long)ir_numel(&n->shape);
    const char *count = n->batched ? emit_times(e, "n", numel) : arena_printf(e->a, "%lld", numel);
    const char *it = emit_count_type(e, n->batched ? numel : 1);
    int last = x->shape.rank - 1, off = x->shape.rank - n->shape.rank;
    int inner_reduced = last >= 0 && x->shape.dim[last] > 1 && (last - off < 0 || n->shape.dim[last - off] == 1);
    /* each iteration of the innermost loop folds into its own element: `omp simd` keeps
     * GCC 12 from miscompiling where's select broadcast along the middle loop at -O3
     * with AVX2 (emit_open_loops; where's gradient summed to a broadcast operand,
     * tests/gradcheck/where.nn) */
    int simd = !inner_reduced && !is_max && reads_where(x);
    int chunks = n->scratch ? fuse_batch_sum_chunks(n, fuse_chunk_batch(e->g)) : 1;
    if (chunks > 1) {
        sum_chunks(e, o, n, c, chunks, name, inner_reduced, simd);
    } else {
        if (is_max)
            fprintf(o, "    for (%s i = 0; i < %s; i++) %s[i] = %sINFINITY;\n", it, count, name, hi ? "-" : "");
        else if (!n->into)
            fprintf(o, "    memset(%s, 0, (size_t)(%s) * sizeof(%s));\n", name, count, e->T);
        fold_into(e, o, n, c, name, "    ", 0, inner_reduced, simd);
    }
    if (scale != 1) fprintf(o, "    for (%s i = 0; i < %s; i++) %s[i] *= %s;\n", it, count, name, emit_lit(e, scale));
    if (n->ranks && !e->embedded)
        fprintf(o, "    /* synchronized batchnorm (NAME_shard): summed over every process's share of the batch */\n"
                   "    if (m->sum_ranks) m->sum_ranks(m->sum_ranks_ctx, %s, %s);\n", name, count);
}

/* Rows of a last-axis op: every example's leading axes, times the batch. */
static const char *rows_of(emitter *e, const ir_node *x) {
    int64_t k = x->shape.dim[x->shape.rank - 1], r = ir_numel(&x->shape) / k;
    if (!x->batched) return arena_printf(e->a, "%lld", (long long)r);
    return emit_times(e, "n", r);
}

/* A per-row value (the loss gradient of cross_entropy): stored, or a literal such as 1/n. */
static const char *row_value(emitter *e, const ir_node *x) {
    static const ictx no_index = {LOOP_FLAT, 0, 0, {0}, {0}};
    if (ir_index_free(x) && x->mem == MEM_NONE) return emit_read_at(e, x, &no_index);
    return arena_printf(e->a, "%s[%s]", emit_mark(e, x), ir_numel(&x->shape) == 1 && !x->batched ? "0" : "r");
}

static const char *row_ptr(emitter *e, const ir_node *x, long long k) {
    return arena_printf(e->a, "%s + r * %lld", emit_mark(e, x), k);
}

void emit_row(emitter *e, FILE *o, ir_node *n) {
    ir_node *x = n->op == OP_CROSS_ENTROPY_GRAD ? n->in[1] : n->op == OP_PICK_GRAD ? n : n->in[0];
    long long k = (long long)x->shape.dim[x->shape.rank - 1];
    const char *T = e->T, *ex = emit_fn(e, "exp"), *lg = emit_fn(e, "log");
    char math[256] = "";
    emit_collect_math(n, math, sizeof math, 1);
    fprintf(o, "    /* %s %s = %s(%s) along the last axis (%lld)%s%s */\n", n->cname, emit_shape_of(e, n),
            ir_op_name(n), emit_shape_of(e, x), k, *math ? "; " : "", math);
    fprintf(o, "    for (%s r = 0; r < %s; r++) {\n", emit_count_type(e, x->batched ? ir_numel(&x->shape) : 1),
            rows_of(e, x));
    switch (n->op) {
    case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_CROSS_ENTROPY: case OP_CROSS_ENTROPY_GRAD: {
        const char *in = n->op == OP_CROSS_ENTROPY_GRAD ? emit_who(e, n->in[1]) : emit_who(e, x);
        emit_mark(e, x);
        fprintf(o, "        const %s *src = %s;\n", T, row_ptr(e, x, k));
        fprintf(o, "        %s mx = src[0], sum = 0;   /* log-sum-exp shift: exp never overflows */\n", T);
        fprintf(o, "        for (int j = 1; j < %lld; j++) mx = src[j] > mx ? src[j] : mx;\n", k);
        fprintf(o, "        for (int j = 0; j < %lld; j++) sum += %s(src[j] - mx);\n", k, ex);
        (void)in;
        if (n->op == OP_SOFTMAX) {
            fprintf(o, "        %s *out = %s;\n", T, row_ptr(e, n, k));
            fprintf(o, "        for (int j = 0; j < %lld; j++) out[j] = %s(src[j] - mx) / sum;\n", k, ex);
        } else if (n->op == OP_LOG_SOFTMAX) {
            fprintf(o, "        %s *out = %s;\n", T, row_ptr(e, n, k));
            fprintf(o, "        const %s lse = mx + %s(sum);\n", T, lg);
            fprintf(o, "        for (int j = 0; j < %lld; j++) out[j] = src[j] - lse;\n", k);
        } else if (n->op == OP_CROSS_ENTROPY) {
            fprintf(o, "        %s[r] = mx + %s(sum) - src[%s[r]];\n", emit_mark(e, n), lg, emit_mark(e, n->in[1]));
        } else {
            fprintf(o, "        %s *out = %s;\n", T, row_ptr(e, n, k));
            fprintf(o, "        const %s dl = %s;\n", T, row_value(e, n->in[0]));
            fprintf(o, "        for (int j = 0; j < %lld; j++) out[j] = dl * %s(src[j] - mx) / sum;\n", k, ex);
            fprintf(o, "        out[%s[r]] -= dl;\n", emit_mark(e, n->in[2]));
        }
        break;
    }
    case OP_PICK:
        fprintf(o, "        %s[r] = %s[r * %lld + %s[r]];\n", emit_mark(e, n), emit_mark(e, x), k,
                emit_mark(e, n->in[1]));
        break;
    case OP_PICK_GRAD:
        fprintf(o, "        %s *out = %s;\n", T, row_ptr(e, n, k));
        fprintf(o, "        for (int j = 0; j < %lld; j++) out[j] = 0;\n", k);
        fprintf(o, "        out[%s[r]] = %s;\n", emit_mark(e, n->in[1]), row_value(e, n->in[0]));
        break;
    case OP_SOFTMAX_GRAD: case OP_LOG_SOFTMAX_GRAD: {
        ir_node *dy = n->in[0], *y = n->in[1];
        fprintf(o, "        const %s *dsrc = %s, *ysrc = %s;\n", T, row_ptr(e, dy, k), row_ptr(e, y, k));
        fprintf(o, "        %s *out = %s;\n", T, row_ptr(e, n, k));
        fprintf(o, "        %s sum = 0;\n", T);
        if (n->op == OP_SOFTMAX_GRAD) {
            fprintf(o, "        for (int j = 0; j < %lld; j++) sum += dsrc[j] * ysrc[j];\n", k);
            fprintf(o, "        for (int j = 0; j < %lld; j++) out[j] = ysrc[j] * (dsrc[j] - sum);\n", k);
        } else {
            fprintf(o, "        for (int j = 0; j < %lld; j++) sum += dsrc[j];\n", k);
            fprintf(o, "        for (int j = 0; j < %lld; j++) out[j] = dsrc[j] - %s(ysrc[j]) * sum;\n", k, ex);
        }
        break;
    }
    default: break;
    }
    fprintf(o, "    }\n");
}

/* batchnorm's running statistics, updated by each training step as PyTorch does:
 * r = (1 - momentum) r + momentum · batch statistic, with the unbiased variance. */
void emit_bn_update(emitter *e, FILE *o, ir_node *n) {
    ir_node *rm = n->in[0], *rv = n->in[1];
    long long c = (long long)ir_numel(&rm->shape), per = (long long)n->attr[1];
    double mom = n->attr[0];
    fprintf(o, "    /* %s and %s: running statistics, momentum %g, unbiased variance */\n", rm->name, rv->name, mom);
    fprintf(o, "    {\n        %s *run_mean = m->params + %lld, *run_var = m->params + %lld;\n", e->T,
            (long long)rm->offset, (long long)rv->offset);
    fprintf(o, "        const int64_t count = %s;   /* the values each batch statistic spans */\n",
            emit_times(e, emit_stats_n(e), per));
    fprintf(o, "        const %s unbias = count > 1 ? (%s)count / (count - 1) : %s;\n", e->T, e->T, emit_lit(e, 1));
    fprintf(o, "        for (int ci = 0; ci < %lld; ci++) {\n", c);
    fprintf(o, "            run_mean[ci] = %s * run_mean[ci] + %s * %s[ci];\n", emit_lit(e, 1 - mom), emit_lit(e, mom), emit_mark(e, n->in[2]));
    fprintf(o, "            run_var[ci] = %s * run_var[ci] + %s * %s[ci] * unbias;\n", emit_lit(e, 1 - mom),
            emit_lit(e, mom), emit_mark(e, n->in[3]));
    fprintf(o, "        }\n    }\n");
}
