/* emit_products.c — products: `@` and dense as GEMM calls over the batch, and the
 * sparse path of a backward product whose left operand is mostly zero.
 *
 * A product between a parameter and a per-example tensor is one nnr_sgemm/nnr_dgemm
 * (cblas_sgemm's arguments; runtime/gemm.c cuts it into blocks for nnc's threads) with
 * the batch stacked into its rows or its inner dimension; between two per-example tensors
 * it is a GEMM per example.  dense starts its output from the bias and accumulates the
 * product into it; a dense added to another tensor starts the sum from both.  A product
 * that fuse.c gave a sparse path (relu's or dropout's gradient on the left) counts that
 * operand's nonzeros and, below a fraction, sums only the rows they select.  A product that is a convolution goes to emit_conv.c. */
#include "emit.h"

/* A GEMM operand: where it is, whether it has a batch, its stored [rows, cols] and
 * whether the product reads it transposed. */
typedef struct gop { const ir_node *x; int batched; int64_t r, c; int t; } gop;

static const char *trans(int t) { return t ? "CblasTrans" : "CblasNoTrans"; }

/* n times v: a GEMM's M or K never passes INT_MAX (plan_check_sizes refuses it), so this
 * stays int there; a count of elements may not, and is then 64-bit (emit_times). */
static const char *mul_n(emitter *e, int64_t v) { return emit_times(e, "n", v); }

void emit_gemm(emitter *e, FILE *o, const char *ind, int ta, int tb, const char *M, const char *N,
               const char *K, const char *A, int64_t lda, const char *B, int64_t ldb, const char *beta,
               const char *C, int64_t ldc) {
    fprintf(o, "%s%s(CblasRowMajor, %s, %s, %s, %s, %s,\n%s            %s, %s, %lld, %s, %lld,\n"
               "%s            %s, %s, %lld);\n",
            ind, emit_gemm_fn(e, 1), trans(ta), trans(tb), M, N, K, ind, emit_lit(e, 1), A, (long long)lda, B,
            (long long)ldb, ind, beta, C, (long long)ldc);
}

static void emit_sparse_product(emitter *e, FILE *o, ir_node *n);

void emit_matmul(emitter *e, FILE *o, ir_node *n) {
    if (n->direct) {
        emit_conv_direct(e, o, n);
        return;
    }
    if (n->sparse_a) {
        emit_sparse_product(e, o, n);
        return;
    }
    if (n->scratch) {
        emit_conv_weight_grad(e, o, n);
        return;
    }
    if (n->mm.srank) {
        emit_stack_matmul(e, o, n);
        return;
    }
    ir_mm m = n->mm;
    gop A = {n->in[0], n->in[0]->batched, m.ar, m.ac, m.ta}, B = {n->in[1], n->in[1]->batched, m.br, m.bc, m.tb};
    int64_t p = m.ta ? m.ac : m.ar, k = m.ta ? m.ar : m.ac, q = m.tb ? m.br : m.bc;
    /* a product summed over a scan's steps is added into the sum (beta = 1) */
    const ir_node *dst = n->into ? n->into : n;
    const char *a = emit_mark(e, A.x), *b = emit_mark(e, B.x), *c = emit_mark(e, dst);
    int ob = n->batched;
    fprintf(o, "    /* %s %s %s %s%s %s @ %s%s %s%s */\n", c, emit_shape_of(e, n), n->into ? "+=" : "=", a,
            A.t ? "^T" : "", emit_shape_of(e, A.x), b, B.t ? "^T" : "", emit_shape_of(e, B.x),
            !ob && (A.batched || B.batched) ? ", summed over the batch" : "");
    const char *zero = emit_lit(e, n->into ? 1 : 0);   /* beta */
    if (!A.batched && !B.batched) {
        emit_gemm(e, o, "    ", A.t, B.t, arena_printf(e->a, "%lld", (long long)p),
                  arena_printf(e->a, "%lld", (long long)q), arena_printf(e->a, "%lld", (long long)k), a, A.c, b, B.c,
                  zero, c, q);
    } else if (ob && A.batched && !B.batched && (!A.t || p == 1)) {
        /* the batch stacks the rows of A: one GEMM with n·p rows */
        emit_gemm(e, o, "    ", 0, B.t, mul_n(e, p), arena_printf(e->a, "%lld", (long long)q),
                  arena_printf(e->a, "%lld", (long long)k), a, k, b, B.c, zero, c, q);
    } else if (ob && !A.batched && B.batched && q == 1) {
        /* one column per example: Cᵀ[n, p] = B[n, k] · op(A)ᵀ */
        emit_gemm(e, o, "    ", 0, !A.t, "n", arena_printf(e->a, "%lld", (long long)p),
                  arena_printf(e->a, "%lld", (long long)k), b, k, a, A.c, zero, c, p);
    } else if (!ob && A.batched && B.batched && (A.t || k == 1) && (!B.t || k == 1)) {
        /* summing over the batch stacks the inner dimension: one GEMM with n·k inner */
        emit_gemm(e, o, "    ", 1, 0, arena_printf(e->a, "%lld", (long long)p),
                  arena_printf(e->a, "%lld", (long long)q), mul_n(e, k), a, p, b, q, zero, c, q);
    } else {
        fprintf(o, "    for (int b = 0; b < n; b++)\n");
        const char *ap = A.batched ? arena_printf(e->a, "%s + %s", a, emit_times(e, "b", A.r * A.c)) : a;
        const char *bp = B.batched ? arena_printf(e->a, "%s + %s", b, emit_times(e, "b", B.r * B.c)) : b;
        const char *cp = ob ? arena_printf(e->a, "%s + %s", c, emit_times(e, "b", p * q)) : c;
        const char *beta = ob || n->into ? zero : arena_printf(e->a, "b ? %s : %s", emit_lit(e, 1), zero);
        emit_gemm(e, o, "        ", A.t, B.t, arena_printf(e->a, "%lld", (long long)p), arena_printf(e->a, "%lld", (long long)q),
                  arena_printf(e->a, "%lld", (long long)k), ap, A.c, bp, B.c, beta, cp, q);
    }
}

/* ---- products with a mostly-zero left operand (see fuse.c) --------------------- */

/* Output rows `rows` (from 0), columns q0 .. q0 + w: each row sums, in registers, its
 * listed nonzeros times the rows of B they select.  acc is two-dimensional, vector
 * registers of lanes, on purpose: GCC 12 turns a flat acc[w] summed over a list into
 * gathers (measured 2-5x slower), and vectorizes this form without a pragma. */
static void sparse_block(emitter *e, FILE *o, const char *rows, long long L, long long q, long long w,
                         const char *B, const char *C, const char *ind, int parallel) {
    const char *T = e->T;
    long long lanes = 64 / (e->f[0] ? 4 : 8), vbs = w % lanes == 0 ? w / lanes : 1;
    if (w % lanes) lanes = w;
    if (parallel) emit_omp_rows(e, o, ind, "");
    fprintf(o, "%sfor (int r = 0; r < %s; r++) {\n", ind, rows);
    fprintf(o, "%s    %s acc[%lld][%lld];\n", ind, T, vbs, lanes);
    fprintf(o, "%s    for (int vb = 0; vb < %lld; vb++)\n", ind, vbs);
    fprintf(o, "%s        for (int lane = 0; lane < %lld; lane++) acc[vb][lane] = %s;\n", ind, lanes, emit_lit(e, 0));
    fprintf(o, "%s    for (int zi = 0; zi < nz_cnt[r]; zi++) {\n", ind);
    fprintf(o, "%s        const %s g = nz_val[(size_t)r * %lld + zi];\n", ind, T, L);
    fprintf(o, "%s        const %s *restrict brow = %s + (size_t)nz_at[(size_t)r * %lld + zi] * %lld + q0;\n", ind, T, B,
            L, q);
    fprintf(o, "%s        for (int vb = 0; vb < %lld; vb++) {\n", ind, vbs);
    fprintf(o, "%s            for (int lane = 0; lane < %lld; lane++)\n", ind, lanes);
    fprintf(o, "%s                acc[vb][lane] = NNR_MADD(g, brow[vb * %lld + lane], acc[vb][lane]);\n", ind, lanes);
    fprintf(o, "%s        }\n%s    }\n", ind, ind);
    fprintf(o, "%s    for (int vb = 0; vb < %lld; vb++)\n", ind, vbs);
    fprintf(o, "%s        for (int lane = 0; lane < %lld; lane++)\n", ind, lanes);
    fprintf(o, "%s            %s[(size_t)r * %lld + q0 + vb * %lld + lane] = acc[vb][lane];\n", ind, C, q, lanes);
    fprintf(o, "%s}\n", ind);
}

/* C = A · B (form 1: A's rows stacked by the batch) or Aᵀ · B summed over the batch
 * (form 2), A mostly zero: the GEMM, or per output row the list of A's nonzeros that
 * meet it (a row of A for form 1, a column for form 2) and sparse_block's sums, runs of
 * 512 bytes of columns first (16 vector registers), then the rest. */
static void emit_sparse_product(emitter *e, FILE *o, ir_node *n) {
    ir_mm m = n->mm;
    int form = fuse_sparse_form(n);
    long long p = m.ta ? m.ac : m.ar, k = m.ta ? m.ar : m.ac, q = m.bc, batch = e->g->train.batch;
    const char *T = e->T, *a = emit_mark(e, n->in[0]), *b = emit_mark(e, n->in[1]), *c = emit_mark(e, n);
    long long total = p * k, L = form == 1 ? k : batch * k, at = (long long)n->scratch_offset;
    long long lists = total * batch;   /* A's elements in a batch */
    const char *rows = form == 1 ? mul_n(e, p) : arena_printf(e->a, "%lld", p);
    fprintf(o, "    /* %s %s = %s%s %s @ %s %s%s */\n", n->cname, emit_shape_of(e, n), a, form == 2 ? "^T" : "",
            emit_shape_of(e, n->in[0]), b, emit_shape_of(e, n->in[1]), form == 2 ? ", summed over the batch" : "");
    fprintf(o, "    /* %s is mostly zero where relu's gradient or dropout zeroes it: when at most\n"
               "     * NNR_GEMM_SPARSE_BELOW of it is nonzero, each row of %s sums only the rows\n"
               "     * of %s that a nonzero of %s meets,\n"
               "     * a run of columns at a time in registers. */\n",
            a, c, b, form == 1 ? arena_printf(e->a, "its row of %s", a) : arena_printf(e->a, "its column of %s", a));
    fprintf(o, "    {\n");
    fprintf(o, "        int32_t *restrict nz_at = (int32_t *)(m->acts + %lld);   /* the nonzeros' positions */\n", at);
    fprintf(o, "        %s *restrict nz_val = m->acts + %lld;   /* their values */\n", T, at + lists);
    fprintf(o, "        int32_t *restrict nz_cnt = (int32_t *)(m->acts + %lld);   /* how many per output row */\n",
            at + 2 * lists);
    const char *count = emit_count_type(e, total);
    fprintf(o, "        %s nonzero = 0;\n", count);
    fprintf(o, "        for (%s i = 0; i < %s; i++) nonzero += %s[i] != 0;\n", count, mul_n(e, total), a);
    int large = (double)lists * (double)q >= (double)(1 << 27);   /* multiply-adds of the dense path, a batch */
    fprintf(o, "        if (nonzero > %s * nnr_gemm_sparse_limit(NNR_GEMM_SPARSE_BELOW, %d)) {%s\n", mul_n(e, total), large,
            large ? "   /* a large product: 3/4 of the fraction */" : "");
    const char *in3 = "            ";
    if (form == 1)
        emit_gemm(e, o, in3, 0, 0, mul_n(e, p), arena_printf(e->a, "%lld", q), arena_printf(e->a, "%lld", k), a, k, b,
                  q, emit_lit(e, 0), c, q);
    else
        emit_gemm(e, o, in3, 1, 0, arena_printf(e->a, "%lld", p), arena_printf(e->a, "%lld", q), mul_n(e, k), a, p, b,
                  q, emit_lit(e, 0), c, q);
    fprintf(o, "        } else {\n");
    if (form == 1) {   /* row r of A: its nonzero columns */
        fprintf(o, "            for (int r = 0; r < %s; r++) {\n", rows);
        fprintf(o, "                int count = 0;\n");
        fprintf(o, "                for (int j = 0; j < %lld; j++) {\n", k);
        fprintf(o, "                    const %s av = %s[(size_t)r * %lld + j];\n", T, a, k);
        fprintf(o, "                    nz_at[(size_t)r * %lld + count] = j;\n", L);
        fprintf(o, "                    nz_val[(size_t)r * %lld + count] = av;\n", L);
        fprintf(o, "                    count += av != 0;\n                }\n");
        fprintf(o, "                nz_cnt[r] = count;\n            }\n");
    } else {   /* column i of A: its nonzero rows, over the batch */
        fprintf(o, "            for (int i = 0; i < %lld; i++) nz_cnt[i] = 0;\n", p);
        fprintf(o, "            for (int r = 0; r < %s; r++)\n", mul_n(e, k));
        fprintf(o, "                for (int i = 0; i < %lld; i++) {\n", p);
        fprintf(o, "                    const %s av = %s[(size_t)r * %lld + i];\n", T, a, p);
        fprintf(o, "                    nz_at[(size_t)i * %lld + nz_cnt[i]] = r;\n", L);
        fprintf(o, "                    nz_val[(size_t)i * %lld + nz_cnt[i]] = av;\n", L);
        fprintf(o, "                    nz_cnt[i] += av != 0;\n                }\n");
    }
    long long run = 512 / (e->f[0] ? 4 : 8), lanes = 64 / (e->f[0] ? 4 : 8);
    long long full = q / run * run, rest = q - full, mid = rest / lanes * lanes, tail = rest - mid;
    const char *in4 = "                ";
    if (full) {
        /* one output row per iteration: the rows are shared among nnc's threads */
        emit_omp_rows(e, o, "            ", " collapse(2)");
        fprintf(o, "            for (int q0 = 0; q0 < %lld; q0 += %lld)\n", full, run);
        sparse_block(e, o, rows, L, q, run, b, c, in4, 0);
    }
    if (mid) {
        fprintf(o, "            {\n                const int q0 = %lld;\n", full);
        sparse_block(e, o, rows, L, q, mid, b, c, in4, 1);
        fprintf(o, "            }\n");
    }
    if (tail) {
        fprintf(o, "            {\n                const int q0 = %lld;\n", full + mid);
        sparse_block(e, o, rows, L, q, tail, b, c, in4, 1);
        fprintf(o, "            }\n");
    }
    fprintf(o, "        }\n    }\n");
}

/* dense d's product x Wᵀ into C, over the batch's rows; beta 1 adds it to what C holds. */
static void dense_gemm(emitter *e, FILE *o, const ir_node *d, const char *C, int beta) {
    const ir_node *x = d->in[0], *w = d->in[1];
    int64_t units = w->shape.dim[0], in = w->shape.dim[1], rows = ir_numel(&x->shape) / in;
    emit_gemm(e, o, "    ", 0, 1, x->batched ? mul_n(e, rows) : arena_printf(e->a, "%lld", (long long)rows),
              arena_printf(e->a, "%lld", (long long)units), arena_printf(e->a, "%lld", (long long)in), emit_mark(e, x),
              in, emit_mark(e, w), in, emit_lit(e, beta), C, units);
}

/* "x [B, 128] @ w^T [512, 128] + bias": dense d's formula, for a comment. */
static const char *dense_formula(emitter *e, const ir_node *d) {
    const ir_node *x = d->in[0], *w = d->in[1], *bias = d->nin == 3 ? d->in[2] : NULL;
    return arena_printf(e->a, "%s %s @ %s^T [%lld, %lld]%s%s", emit_mark(e, x), emit_shape_of(e, x), emit_mark(e, w),
                        (long long)w->shape.dim[0], (long long)w->shape.dim[1], bias ? " + " : "",
                        bias ? emit_mark(e, bias) : "");
}

void emit_dense(emitter *e, FILE *o, ir_node *n) {
    ir_node *x = n->in[0], *w = n->in[1], *bias = n->nin == 3 ? n->in[2] : NULL;
    int64_t units = w->shape.dim[0], rows = ir_numel(&x->shape) / w->shape.dim[1];
    fprintf(o, "    /* %s %s = %s */\n", n->cname, emit_shape_of(e, n), dense_formula(e, n));
    if (bias) {
        fprintf(o, "    for (%s r = 0; r < %s; r++)   /* start from the bias, then accumulate the product */\n",
                emit_count_type(e, x->batched ? ir_numel(&n->shape) : 1),
                x->batched ? mul_n(e, rows) : arena_printf(e->a, "%lld", (long long)rows));
        fprintf(o, "        memcpy(%s + r * %lld, %s, %lld * sizeof(%s));\n", emit_mark(e, n), (long long)units,
                emit_mark(e, bias), (long long)units, e->T);
    }
    dense_gemm(e, o, n, emit_mark(e, n), bias != NULL);
}

/* A dense product accumulated into the sum n = z + d that reads it (fuse.c,
 * plan_added_products): n starts from z plus the bias, then the GEMM adds x Wᵀ (beta = 1). */
void emit_dense_into(emitter *e, FILE *o, ir_node *d, ir_node *n, ir_node *z) {
    ir_node *bias = d->nin == 3 ? d->in[2] : NULL;
    const char *zs = z->op == OP_CONST ? emit_lit(e, z->attr[0]) : emit_who(e, z);
    fprintf(o, "    /* %s %s = %s + %s: the sum starts from %s%s, the GEMM adds the product */\n", emit_mark(e, n),
            emit_shape_of(e, n), zs, dense_formula(e, d), zs, bias ? " plus the bias" : "");
    ictx c = emit_layout_ctx(n);   /* nested: the last axis's variable indexes the bias */
    const char *ind = emit_open_loops(e, o, &c, "    ", 1);
    emit_stmt_open(e);
    const char *v = emit_read_at(e, z, &c);
    const char *b = bias ? arena_printf(e->a, " + %s[%s]", emit_mark(e, bias), c.v[c.rank - 1]) : "";
    emit_stmt_close(e, o, ind, arena_printf(e->a, "%s[%s] = %s%s;", emit_mark(e, n), emit_index_of(e, n, &c), v, b));
    dense_gemm(e, o, d, emit_mark(e, n), 1);
}
