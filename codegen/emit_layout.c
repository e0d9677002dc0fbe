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

/* The term of index variable i%d in an index: "i2 * 12", "i2" at stride 1. */
static const char *index_term(emitter *e, int axis, int64_t stride) {
    return stride == 1 ? arena_printf(e->a, "i%d", axis) : arena_printf(e->a, "i%d * %lld", axis, (long long)stride);
}

/* Whether a permute copies its last two axes in tiles: when the second-to-last reads x's
 * last axis (the innermost loop then reads x at a stride) and the two hold more than
 * PERMUTE_TILE_MIN elements.  Measured on [8, A, 64] swapping its last two axes, batch
 * 8, gcc -O3 -march=native: A = 64 and 128 are 15% slower tiled (what they read stays in
 * L1), A = 512 twice as fast, [8, 256, 256] 1.7 times. */
#define PERMUTE_TILE     16
#define PERMUTE_TILE_MIN 16384
static int permute_tiled(const ir_node *n) {
    int r = n->shape.rank;
    return n->perm[r - 2] == r - 1 && n->shape.dim[r - 2] > 1 && n->shape.dim[r - 1] > 1 &&
           n->shape.dim[r - 2] * n->shape.dim[r - 1] > PERMUTE_TILE_MIN;
}

/* transpose of more than two axes (permute): out written in order, one loop per axis
 * longer than 1, each reading x at that axis's stride in x; the last two axes in tiles
 * when that reads x far apart (permute_tiled). */
static void emit_permute(emitter *e, FILE *o, const ir_node *n) {
    const ir_node *x = n->in[0];
    int rank = n->shape.rank, tiled = permute_tiled(n);
    int64_t stride[IR_MAXRANK], ostride[IR_MAXRANK], numel = ir_numel(&n->shape);
    for (int i = rank - 1, s = 1; i >= 0; s *= (int)x->shape.dim[i--]) stride[i] = s;
    for (int i = rank - 1, s = 1; i >= 0; s *= (int)n->shape.dim[i--]) ostride[i] = s;
    char perm[64] = "", index[256] = "", oindex[256] = "";
    for (int i = 0; i < rank; i++) {
        snprintf(perm + strlen(perm), sizeof perm - strlen(perm), "%s%d", i ? ", " : "", n->perm[i]);
        if (n->shape.dim[i] == 1) continue;
        snprintf(index + strlen(index), sizeof index - strlen(index), "%s%s", *index ? " + " : "",
                 index_term(e, i, stride[n->perm[i]]));
        snprintf(oindex + strlen(oindex), sizeof oindex - strlen(oindex), "%s%s", *oindex ? " + " : "",
                 index_term(e, i, ostride[i]));
    }
    fprintf(o, "    /* %s %s = %s(%s %s, [%s]): axis i of %s is axis [%s][i] of %s; d %s = d %s permuted back */\n",
            n->cname, emit_shape_of(e, n), n->what ? n->what : "transpose", emit_who(e, x), emit_shape_of(e, x), perm,
            n->cname, perm, emit_who(e, x), emit_who(e, x), n->cname);
    const char *ind = x->batched ? "        " : "    ", *to = emit_mark(e, n), *from = emit_mark(e, x);
    const char *base = x->batched ? arena_printf(e->a, " + %s", emit_times(e, "b", numel)) : "";
    fprintf(o, x->batched ? "    for (int b = 0; b < n; b++) {\n" : "    {\n");
    fprintf(o, "%sconst %s *src = %s%s;\n%s%s *out = %s%s;\n", ind, e->T, from, base, ind, e->T, to, base);
    for (int i = 0; i < rank - 2 * tiled; i++) {
        if (n->shape.dim[i] == 1) continue;
        fprintf(o, "%sfor (int i%d = 0; i%d < %lld; i%d++)\n", ind, i, i, (long long)n->shape.dim[i], i);
        ind = arena_printf(e->a, "%s    ", ind);
    }
    if (!tiled) {
        fprintf(o, "%s*out++ = src[%s];\n    }\n", ind, *index ? index : "0");
        return;
    }
    long long d1 = (long long)n->shape.dim[rank - 2], d2 = (long long)n->shape.dim[rank - 1];
    fprintf(o, "%sfor (int ii = 0; ii < %lld; ii += %d)   /* tiles of %d x %d: what a tile reads stays in cache */\n",
            ind, d1, PERMUTE_TILE, PERMUTE_TILE, PERMUTE_TILE);
    fprintf(o, "%s    for (int jj = 0; jj < %lld; jj += %d)\n", ind, d2, PERMUTE_TILE);
    fprintf(o, "%s        for (int i%d = ii; i%d < (ii + %d < %lld ? ii + %d : %lld); i%d++)\n", ind, rank - 2, rank - 2,
            PERMUTE_TILE, d1, PERMUTE_TILE, d1, rank - 2);
    fprintf(o, "%s            for (int i%d = jj; i%d < (jj + %d < %lld ? jj + %d : %lld); i%d++)\n", ind, rank - 1,
            rank - 1, PERMUTE_TILE, d2, PERMUTE_TILE, d2, rank - 1);
    fprintf(o, "%s                out[%s] = src[%s];\n    }\n", ind, oindex, index);
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
