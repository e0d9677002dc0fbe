/* emit_layout.c — tensors that move elements without arithmetic: transpose, concat of
 * any number of operands, slice and pad (a slice's gradient) as copies of contiguous
 * blocks, a permutation of more than two axes as one loop per axis, a reshape or a
 * training/inference select that needs memory of its own, and embedding's gather with
 * its gradient, a scatter-add into the table's rows. */
#include "emit.h"
#include <string.h>

/* Outer rows before `axis` (times the batch) and the elements after it, for block copies. */
static const char *outer_rows(emitter *e, const ir_node *x, int axis) {
    int64_t p = 1;
    for (int i = 0; i < axis; i++) p *= x->shape.dim[i];
    if (!x->batched) return arena_printf(e->a, "%lld", (long long)p);
    return emit_times(e, "n", p);
}

/* The loop over x's outer rows: r is 64-bit when r times a row's length can pass INT_MAX. */
static const char *row_loop(emitter *e, const ir_node *x, const char *rows) {
    return arena_printf(e->a, "for (%s r = 0; r < %s; r++)", emit_count_type(e, x->batched ? ir_numel(&x->shape) : 1),
                        rows);
}

static int64_t inner_size(const ir_node *x, int axis) {
    int64_t q = 1;
    for (int i = axis + 1; i < x->shape.rank; i++) q *= x->shape.dim[i];
    return q;
}

/* transpose of more than two axes (permute): out written in order, one loop per axis
 * longer than 1, each reading x at that axis's stride in x. */
static void emit_permute(emitter *e, FILE *o, const ir_node *n) {
    const ir_node *x = n->in[0];
    int64_t stride[IR_MAXRANK], numel = ir_numel(&n->shape);
    for (int i = x->shape.rank - 1, s = 1; i >= 0; s *= (int)x->shape.dim[i--]) stride[i] = s;
    char perm[64] = "", index[256] = "";
    for (int i = 0; i < n->shape.rank; i++) {
        snprintf(perm + strlen(perm), sizeof perm - strlen(perm), "%s%d", i ? ", " : "", n->perm[i]);
        if (n->shape.dim[i] > 1)
            snprintf(index + strlen(index), sizeof index - strlen(index), "%si%d%s", *index ? " + " : "", i,
                     stride[n->perm[i]] == 1 ? "" : arena_printf(e->a, " * %lld", (long long)stride[n->perm[i]]));
    }
    fprintf(o, "    /* %s %s = %s(%s %s, [%s]): axis i of %s is axis [%s][i] of %s; d %s = d %s permuted back */\n",
            n->cname, emit_shape_of(e, n), n->what ? n->what : "transpose", emit_who(e, x), emit_shape_of(e, x), perm,
            n->cname, perm, emit_who(e, x), emit_who(e, x), n->cname);
    const char *ind = x->batched ? "        " : "    ", *to = emit_mark(e, n), *from = emit_mark(e, x);
    const char *base = x->batched ? arena_printf(e->a, " + %s", emit_times(e, "b", numel)) : "";
    fprintf(o, x->batched ? "    for (int b = 0; b < n; b++) {\n" : "    {\n");
    fprintf(o, "%sconst %s *src = %s%s;\n%s%s *out = %s%s;\n", ind, e->T, from, base, ind, e->T, to, base);
    for (int i = 0; i < n->shape.rank; i++) {
        if (n->shape.dim[i] == 1) continue;
        fprintf(o, "%sfor (int i%d = 0; i%d < %lld; i%d++)\n", ind, i, i, (long long)n->shape.dim[i], i);
        ind = arena_printf(e->a, "%s    ", ind);
    }
    fprintf(o, "%s*out++ = src[%s];\n    }\n", ind, *index ? index : "0");
}

/* transpose, concat, slice and pad (slice's gradient): copies of contiguous blocks. */
void emit_copy(emitter *e, FILE *o, ir_node *n) {
    ir_node *x = n->in[0];
    const char *T = e->T, *out = emit_mark(e, n), *src = emit_mark(e, x);
    if (n->op == OP_PAD_ADD) {   /* in place: `out` is the memory of the first slice's gradient */
        const ir_node *gr = n->in[1];
        long long inner = (long long)inner_size(n, n->axis), whole = (long long)n->shape.dim[n->axis];
        long long start = (long long)n->attr[0], len = (long long)(n->attr[1] - n->attr[0]);
        const char *op = n->tiled ? "=" : "+=";   /* tiled: the part nothing else writes */
        fprintf(o, "    /* %s %s %s %s %s into [%lld, %lld) along axis %d (a slice's gradient, in place) */\n", out,
                emit_shape_of(e, n), op, emit_mark(e, gr), emit_shape_of(e, gr), start, start + len, n->axis);
        fprintf(o, "    %s\n", row_loop(e, n, outer_rows(e, n, n->axis)));
        fprintf(o, "        for (int i = 0; i < %lld; i++)\n", len * inner);
        fprintf(o, "            %s[r * %lld + %lld + i] %s %s[r * %lld + i];\n", out, whole * inner, start * inner, op,
                emit_mark(e, gr), len * inner);
        return;
    }
    if (n->op == OP_TRANSPOSE && n->shape.rank > 2) {
        emit_permute(e, o, n);
        return;
    }
    fprintf(o, "    /* %s %s = %s(%s %s", n->cname, emit_shape_of(e, n), ir_op_name(n), emit_who(e, x),
            emit_shape_of(e, x));
    for (int k = 1; n->op == OP_CONCAT && k < n->nin; k++)
        fprintf(o, ", %s %s", emit_who(e, n->in[k]), emit_shape_of(e, n->in[k]));
    if (n->op == OP_TRANSPOSE) fprintf(o, ") */\n");
    else if (n->op == OP_CONCAT) fprintf(o, ", axis=%d) */\n", n->axis);
    else fprintf(o, ", axis=%d, [%lld, %lld))%s */\n", n->axis, (long long)n->attr[0], (long long)n->attr[1],
                 n->tiled ? "; the other slices' gradients fill the rest" : "");
    if (n->op == OP_TRANSPOSE) {
        long long r0 = (long long)x->shape.dim[0], c0 = (long long)x->shape.dim[1];
        const char *base = x->batched ? arena_printf(e->a, "%s + ", emit_times(e, "b", r0 * c0)) : "";
        fprintf(o, "%s", x->batched ? "    for (int b = 0; b < n; b++)\n" : "");
        const char *ind = x->batched ? "        " : "    ";
        fprintf(o, "%sfor (int i = 0; i < %lld; i++)\n%s    for (int j = 0; j < %lld; j++)\n", ind, c0, ind, r0);
        fprintf(o, "%s        %s[%si * %lld + j] = %s[%sj * %lld + i];\n", ind, out, base, r0, src, base, c0);
        return;
    }
    const ir_node *wide = n->op == OP_SLICE ? x : n;     /* the tensor with the whole axis */
    long long inner = (long long)inner_size(wide, n->axis), whole = (long long)wide->shape.dim[n->axis];
    const char *rows = outer_rows(e, wide, n->axis);
    if (n->op == OP_CONCAT) {   /* each operand's rows into their place in each of out's */
        fprintf(o, "    %s {\n", row_loop(e, wide, rows));
        long long at = 0;
        for (int k = 0; k < n->nin; k++) {
            long long part = (long long)n->in[k]->shape.dim[n->axis] * inner;
            fprintf(o, "        memcpy(%s + r * %lld%s, %s + r * %lld, %lld * sizeof(%s));\n", out, whole * inner,
                    at ? arena_printf(e->a, " + %lld", at) : "", emit_mark(e, n->in[k]), part, part, T);
            at += part;
        }
        fprintf(o, "    }\n");
        return;
    }
    long long start = (long long)n->attr[0], len = (long long)(n->attr[1] - n->attr[0]);
    if (n->op == OP_SLICE) {
        fprintf(o, "    %s\n", row_loop(e, wide, rows));
        fprintf(o, "        memcpy(%s + r * %lld, %s + r * %lld + %lld, %lld * sizeof(%s));\n", out, len * inner, src,
                whole * inner, start * inner, len * inner, T);
        return;
    }
    if (!n->tiled)   /* tiled: the other slices' gradients write the rest (fuse.c) */
        fprintf(o, "    memset(%s, 0, (size_t)(%s) * %lld * sizeof(%s));   /* zero outside the slice */\n", out, rows,
                whole * inner, T);
    fprintf(o, "    %s\n", row_loop(e, wide, rows));
    fprintf(o, "        memcpy(%s + r * %lld + %lld, %s + r * %lld, %lld * sizeof(%s));\n", out, whole * inner,
            start * inner, src, len * inner, len * inner, T);
}

/* A reshape that must have memory of its own (an output, a gradient users read). */
void emit_view_copy(emitter *e, FILE *o, ir_node *n) {
    long long numel = (long long)ir_numel(&n->shape);
    const ir_node *src = n->in[n->op == OP_SELECT ? e->infer_mode : 0];
    fprintf(o, "    /* %s %s: the elements of %s%s */\n", n->cname, emit_shape_of(e, n),
            src->cname ? src->cname : "its input",
            n->op == OP_SELECT ? (e->infer_mode ? " (inference mode)" : " (training mode)") : ", reshaped");
    fprintf(o, "    memcpy(%s, %s, (size_t)%s%lld * sizeof(%s));\n", emit_mark(e, n), emit_mark(e, src),
            n->batched ? "n * " : "", numel, e->T);
}

/* embedding: row ids[r] of the table for every index r; its gradient adds each row of
 * the upstream gradient into the row of the table it was read from. */
void emit_gather(emitter *e, FILE *o, ir_node *n) {
    int back = n->op == OP_SCATTER_ADD;
    const ir_node *rows = back ? n->in[0] : n, *ids = n->in[1], *table = back ? n : n->in[0];
    long long dim = (long long)table->shape.dim[1], count = (long long)ir_numel(&ids->shape);
    const char *R = emit_mark(e, rows), *I = emit_mark(e, ids), *W = emit_mark(e, table);
    fprintf(o, "    /* %s %s = %s(%s %s, %s %s)%s */\n", n->cname, emit_shape_of(e, n), ir_op_name(n),
            emit_who(e, n->in[0]), emit_shape_of(e, n->in[0]), ids->cname, emit_shape_of(e, ids),
            back ? ": d table[id]/d table = 1 for the rows read" : "");
    const char *total = ids->batched ? emit_times(e, "n", count) : arena_printf(e->a, "%lld", count);
    const char *loop = row_loop(e, ids, total);
    if (back) {
        fprintf(o, "    memset(%s, 0, %lld * sizeof(%s));\n", W, (long long)ir_numel(&table->shape), e->T);
        fprintf(o, "    %s\n        for (int j = 0; j < %lld; j++)\n", loop, dim);
        fprintf(o, "            %s[(size_t)%s[r] * %lld + j] += %s[(size_t)r * %lld + j];\n", W, I, dim, R, dim);
    } else {
        fprintf(o, "    %s\n", loop);
        fprintf(o, "        memcpy(%s + (size_t)r * %lld, %s + (size_t)%s[r] * %lld, %lld * sizeof(%s));\n", R, dim, W, I,
                dim, dim, e->T);
    }
}
