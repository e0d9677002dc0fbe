/* emit_attention.c — attention(q, k, v) as one fused kernel per example and head, forward
 * and backward (PyTorch's scaled_dot_product_attention).
 *
 * Every (example, head) pair is independent: the kernel is an `omp parallel for` over
 * them, each iteration two (forward) or up to four (backward) small GEMMs, each one
 * cblas call on the iteration's thread (so the same bits at any thread count), and a row
 * loop between them:
 *
 *   forward    S = scale Q Kᵀ [Tq, Tk];  P = softmax(S + mask) along each row, the row's
 *              maximum subtracted;  O = P V [Tq, dv]
 *   backward   dV = Pᵀ dO;  dP = dO Vᵀ;  dS = scale P ∘ (dP − D), D_i = dO_i · O_i (the
 *              softmax's backward, scale folded in);  dQ = dS K;  dK = dSᵀ Q
 *
 * The mask (causal) is PyTorch's is_causal: query i sees keys 0 .. i (top-left aligned
 * when Tq != Tk), so a row's softmax runs over its first min(i + 1, Tk) scores and the
 * rest of P is zero, which makes their dS zero too.
 *
 * The forward kernel keeps P for the backward pass in its working memory (fuse.c), one
 * [Tq, Tk] block per example and head, rather than keeping each row's log-sum-exp and
 * recomputing P from Q and K in the backward pass as FlashAttention does: recomputing
 * costs one more GEMM and Tq·Tk exponentials per head to save 16 KiB per example and head
 * (f32, T = 64), and at these sizes reading P back is the cheaper of the two.  Measured at
 * the GPT example's sizes (4 heads, T = 64, d = 32, causal, one thread, forward + backward
 * of bench/attention.sh's [heads, T, d] model): recomputing took 1.25x the step at B = 64
 * (median 7.9 ms against 6.5 ms) and 1.25x at B = 32.  The backward kernel's working memory
 * is a [Tq, Tk] block per example and head for dP, turned into dS in place. */
#include "emit.h"

/* The sizes of the kernel of forward node f: heads (the product of the leading axes),
 * queries, keys, the query/key width d and the value width dv. */
typedef struct att_dims { long long h, tq, tk, d, dv; } att_dims;

static att_dims dims_of(const ir_node *f) {
    const ir_shape *q = &f->in[0]->shape, *v = &f->in[2]->shape;
    att_dims a = {1, q->dim[q->rank - 2], v->dim[v->rank - 2], q->dim[q->rank - 1], v->dim[v->rank - 1]};
    for (int i = 0; i < q->rank - 2; i++) a.h *= q->dim[i];
    return a;
}

/* C = alpha op(A) op(B) (beta 0) as one cblas call: each example and head runs on one
 * thread already, so the product is not cut into blocks for nnc's threads as nnr_sgemm
 * would (whose parallel region, nested in the loop's, would cost more than a product of
 * this size: measured 7% of the step at T = 64), and each element is computed by the same
 * call at any thread count. */
static void gemm(emitter *e, FILE *o, int ta, int tb, long long m, long long n, long long k, double alpha,
                 const char *a, long long lda, const char *b, long long ldb, const char *c, long long ldc) {
    fprintf(o, "            %s(CblasRowMajor, %s, %s, %lld, %lld, %lld, %s, %s, %lld, %s, %lld, %s, %s, %lld);\n",
            emit_gemm_fn(e, 0), ta ? "CblasTrans" : "CblasNoTrans", tb ? "CblasTrans" : "CblasNoTrans", m, n, k,
            emit_lit(e, alpha), a, lda, b, ldb, emit_lit(e, 0), c, ldc);
}

/* "x + (size_t)bh * per": the block of example and head bh of x. */
static const char *at_head(emitter *e, const char *x, long long per) {
    return arena_printf(e->a, "%s + (size_t)bh * %lld", x, per);
}

/* The loop over every example and head. */
static void open_heads(const emitter *e, FILE *o, const ir_node *f, att_dims a) {
    emit_omp_rows(e, o, "        ", "");
    fprintf(o, "        for (int bh = 0; bh < %s%lld; bh++) {\n", f->batched ? "n * " : "", a.h);
}

static const char *describe(emitter *e, const ir_node *f) {
    return arena_printf(e->a, "attention(%s %s, %s %s, %s %s)%s, scale %g", emit_who(e, f->in[0]),
                        emit_shape_of(e, f->in[0]), emit_who(e, f->in[1]), emit_shape_of(e, f->in[1]),
                        emit_who(e, f->in[2]), emit_shape_of(e, f->in[2]), f->attr[0] ? ", causal" : "", f->attr[1]);
}

/* The scores of row i that the mask lets through: att_len of them. */
static void row_len(FILE *o, const ir_node *f, att_dims a, const char *ind) {
    if (f->attr[0])
        fprintf(o, "%sconst int att_len = i + 1 < %lld ? i + 1 : %lld;   /* causal: keys 0 .. i */\n", ind, a.tk, a.tk);
    else
        fprintf(o, "%sconst int att_len = %lld;\n", ind, a.tk);
}

static void emit_forward(emitter *e, FILE *o, ir_node *n) {
    att_dims a = dims_of(n);
    const char *T = e->T, *out = emit_mark(e, n);
    fprintf(o, "    /* %s %s = %s, per example and head (%lld head%s):\n", out, emit_shape_of(e, n), describe(e, n),
            a.h, a.h == 1 ? "" : "s");
    fprintf(o, "     *   S = scale Q K^T [%lld, %lld] (a GEMM); P = softmax(S%s) along each row, less its maximum;\n",
            a.tq, a.tk, n->attr[0] ? " + mask, -inf at key j > query i" : "");
    fprintf(o, "     *   O = P V [%lld, %lld] (a GEMM).  P is kept for the backward pass: [%s%lld, %lld, %lld] at acts + %lld */\n",
            a.tq, a.dv, n->batched ? "B, " : "", a.h, a.tq, a.tk, (long long)n->scratch_offset);
    fprintf(o, "    {\n        %s *restrict att_p0 = m->acts + %lld;\n", T, (long long)n->scratch_offset);
    open_heads(e, o, n, a);
    fprintf(o, "            const %s *restrict att_q = %s, *restrict att_k = %s, *restrict att_v = %s;\n", T,
            at_head(e, emit_mark(e, n->in[0]), a.tq * a.d), at_head(e, emit_mark(e, n->in[1]), a.tk * a.d),
            at_head(e, emit_mark(e, n->in[2]), a.tk * a.dv));
    fprintf(o, "            %s *restrict att_p = %s;\n", T, at_head(e, "att_p0", a.tq * a.tk));
    gemm(e, o, 0, 1, a.tq, a.tk, a.d, n->attr[1], "att_q", a.d, "att_k", a.d, "att_p", a.tk);
    fprintf(o, "            for (int i = 0; i < %lld; i++) {\n", a.tq);
    fprintf(o, "                %s *restrict row = att_p + (size_t)i * %lld;\n", T, a.tk);
    row_len(o, n, a, "                ");
    fprintf(o, "                %s mx = row[0];\n", T);
    fprintf(o, "                for (int j = 1; j < att_len; j++) mx = row[j] > mx ? row[j] : mx;\n");
    fprintf(o, "                %s sum = %s;\n", T, emit_lit(e, 0));
    fprintf(o, "                for (int j = 0; j < att_len; j++) {\n");
    fprintf(o, "                    row[j] = %s(row[j] - mx);\n", emit_fn(e, "exp"));
    fprintf(o, "                    sum += row[j];\n                }\n");
    fprintf(o, "                const %s att_inv = %s / sum;\n", T, emit_lit(e, 1));
    fprintf(o, "                for (int j = 0; j < att_len; j++) row[j] *= att_inv;\n");
    if (n->attr[0]) fprintf(o, "                for (int j = att_len; j < %lld; j++) row[j] = %s;\n", a.tk, emit_lit(e, 0));
    fprintf(o, "            }\n");
    gemm(e, o, 0, 0, a.tq, a.dv, a.tk, 1, "att_p", a.tk, "att_v", a.dv, at_head(e, out, a.tq * a.dv), a.dv);
    fprintf(o, "        }\n    }\n");
}

/* dS = scale P ∘ (dP − D) in dP's place, row by row, with D_i = dO_i · O_i. */
static void emit_softmax_back(emitter *e, FILE *o, const ir_node *f, att_dims a) {
    const char *T = e->T;
    fprintf(o, "            for (int i = 0; i < %lld; i++) {\n", a.tq);
    fprintf(o, "                %s att_d = %s;\n", T, emit_lit(e, 0));
    fprintf(o, "                for (int j = 0; j < %lld; j++) att_d += att_do[(size_t)i * %lld + j] * att_o[(size_t)i * %lld + j];\n",
            a.dv, a.dv, a.dv);
    fprintf(o, "                %s *restrict row = att_ds + (size_t)i * %lld;\n", T, a.tk);
    fprintf(o, "                const %s *restrict att_prow = att_p + (size_t)i * %lld;\n", T, a.tk);
    row_len(o, f, a, "                ");
    fprintf(o, "                for (int j = 0; j < att_len; j++) row[j] = %s * att_prow[j] * (row[j] - att_d);\n",
            emit_lit(e, f->attr[1]));
    if (f->attr[0]) fprintf(o, "                for (int j = att_len; j < %lld; j++) row[j] = %s;\n", a.tk, emit_lit(e, 0));
    fprintf(o, "            }\n");
}

/* The gradients of forward node f that n's code computes: n and the nodes chained to it by
 * `also` (fuse.c), by argument (q, k, v); NULL for one nobody needs. */
static void emit_backward(emitter *e, FILE *o, ir_node *n) {
    ir_node *f = n->in[1], *d[3] = {NULL, NULL, NULL};
    for (ir_node *x = n; x; x = x->also) d[x->arg] = x;
    att_dims a = dims_of(f);
    const char *T = e->T;
    int scores = d[0] || d[1];   /* dS is needed for d q and d k only */
    fprintf(o, "    /* the gradients%s%s%s of %s = %s, per example and head:\n", d[0] ? " dq" : "", d[1] ? " dk" : "",
            d[2] ? " dv" : "", emit_who(e, f), describe(e, f));
    if (d[2]) fprintf(o, "     *   dV = P^T dO (a GEMM, P as the forward pass kept it)\n");
    if (scores)
        fprintf(o, "     *   dP = dO V^T (a GEMM); dS = scale P * (dP - D), D_i = dO_i . O_i: the softmax's backward\n"
                   "     *   (dP and then dS [%s%lld, %lld, %lld] at acts + %lld)\n",
                f->batched ? "B, " : "", a.h, a.tq, a.tk, (long long)n->scratch_offset);
    if (d[0]) fprintf(o, "     *   dQ = dS K (a GEMM)\n");
    if (d[1]) fprintf(o, "     *   dK = dS^T Q (a GEMM) */\n");
    else fprintf(o, "     */\n");
    fprintf(o, "    {\n        const %s *restrict att_p0 = m->acts + %lld;\n", T, (long long)f->scratch_offset);
    if (scores) fprintf(o, "        %s *restrict att_ds0 = m->acts + %lld;\n", T, (long long)n->scratch_offset);
    open_heads(e, o, f, a);
    fprintf(o, "            const %s *restrict att_do = %s, *restrict att_p = %s;\n", T,
            at_head(e, emit_mark(e, n->in[0]), a.tq * a.dv), at_head(e, "att_p0", a.tq * a.tk));
    if (d[2])
        gemm(e, o, 1, 0, a.tk, a.dv, a.tq, 1, "att_p", a.tk, "att_do", a.dv, at_head(e, emit_mark(e, d[2]), a.tk * a.dv),
             a.dv);
    if (scores) {
        fprintf(o, "            const %s *restrict att_o = %s, *restrict att_v = %s;\n", T,
                at_head(e, emit_mark(e, f), a.tq * a.dv), at_head(e, emit_mark(e, f->in[2]), a.tk * a.dv));
        fprintf(o, "            %s *restrict att_ds = %s;\n", T, at_head(e, "att_ds0", a.tq * a.tk));
        gemm(e, o, 0, 1, a.tq, a.tk, a.dv, 1, "att_do", a.dv, "att_v", a.dv, "att_ds", a.tk);
        emit_softmax_back(e, o, f, a);
    }
    if (d[0])
        gemm(e, o, 0, 0, a.tq, a.d, a.tk, 1, "att_ds", a.tk, at_head(e, emit_mark(e, f->in[1]), a.tk * a.d), a.d,
             at_head(e, emit_mark(e, d[0]), a.tq * a.d), a.d);
    if (d[1])
        gemm(e, o, 1, 0, a.tk, a.d, a.tq, 1, "att_ds", a.tk, at_head(e, emit_mark(e, f->in[0]), a.tq * a.d), a.d,
             at_head(e, emit_mark(e, d[1]), a.tk * a.d), a.d);
    fprintf(o, "        }\n    }\n");
}

void emit_attention(emitter *e, FILE *o, ir_node *n) {
    if (n->op == OP_ATTENTION) emit_forward(e, o, n);
    else emit_backward(e, o, n);
}
