/* emit_conv.c — convolutions: im2col and col2im, the forward convolution computed
 * directly or by Winograd's F(2x2, 3x3) (with max pooling inside it), a convolution's
 * gradients with their path for a mostly-zero dY, and the epilogues that store an
 * elementwise expression as each output is computed (emit_pool.c's pooling uses them).
 *
 * fuse.c decides which path each convolution takes, the working memory it gets
 * (scratch_offset in the activation block) and the fixed chunks of examples its loop runs
 * in on nnc's threads, each chunk with its own copy of that memory and its own partial
 * sums (fuse_conv_chunks); this file writes the loops.  Each kernel's
 * comment in the generated C gives the geometry (kernel, stride, padding) and the
 * layout of every buffer it uses. */
#include "emit.h"

#include <string.h>

/* ---- im2col and col2im --------------------------------------------------------- */

/* im2col / col2im: one row per kernel tap (c, i, j) of each example, holding what the
 * tap sees at every output position (zero in the padding); col2im adds the rows back
 * onto the positions they came from (its transpose).  With stride 1 a row's inner loop
 * is a contiguous copy. */
static int conv_padded(const ir_conv *g) {
    return g->ph || g->pw || (g->oh - 1) * g->sh + g->kh > g->h + g->ph || (g->ow - 1) * g->sw + g->kw > g->w + g->pw ||
           (g->oh - 1) * g->sh + g->kh - g->ph > g->h || (g->ow - 1) * g->sw + g->kw - g->pw > g->w;
}

/* The loops of im2col (back = 0) or col2im (back = 1) between image I and patches C, at
 * indentation ind; over the batch when nb is given, else for the example b in scope, whose
 * patches are at C's start when one_col (a buffer for one example). */
static void im2col_loops(emitter *e, FILE *o, const ir_conv *g, int back, const char *I, const char *C,
                         const char *nb, int one_col, const char *ind) {
    long long k = (long long)(g->c * g->kh * g->kw), p = (long long)(g->oh * g->ow), hw = (long long)(g->h * g->w);
    const char *T = e->T;
    /* taps can fall outside the image with padding before, or after (same with an even kernel) */
    int padded = conv_padded(g);
    const char *in = ind;
    if (nb) {
        if ((long long)e->g->train.batch * k * p >= EMIT_LOOP_PARALLEL_MIN)
            emit_omp_rows(e, o, ind, "   /* each example's own rows / image */");
        fprintf(o, "%sfor (int b = 0; b < %s; b++)\n", ind, nb);
        in = arena_printf(e->a, "%s    ", ind);
    }
    fprintf(o, "%sfor (int ci = 0; ci < %lld; ci++)%s\n", in, (long long)g->c, back ? " {" : "");
    if (back)   /* zeroed plane by plane, while it is in cache for the taps that follow */
        fprintf(o, "%s    memset(%s + ((size_t)b * %lld + ci) * %lld, 0, %lld * sizeof(%s));\n", in, I, (long long)g->c,
                hw, hw, T);
    fprintf(o, "%s    for (int ki = 0; ki < %lld; ki++)\n", in, (long long)g->kh);
    fprintf(o, "%s        for (int kj = 0; kj < %lld; kj++) {\n", in, (long long)g->kw);
    fprintf(o, "%s            %s%s *restrict row = %s + ((size_t)%s * %lld + (ci * %lld + ki) * %lld + kj) * %lld;\n", in,
            back ? "const " : "", T, C, one_col ? "0" : "b", k, (long long)g->kh, (long long)g->kw, p);
    fprintf(o, "%s            %s%s *restrict img = %s + ((size_t)b * %lld + ci) * %lld;\n", in, back ? "" : "const ", T,
            I, (long long)g->c, hw);
    fprintf(o, "%s            for (int oi = 0; oi < %lld; oi++) {\n", in, (long long)g->oh);
    fprintf(o, "%s                const int ii = oi * %lld - %lld + ki;\n", in, (long long)g->sh, (long long)g->ph);
    if (padded) {
        fprintf(o, "%s                if (ii < 0 || ii >= %lld) {\n", in, (long long)g->h);
        if (!back) fprintf(o, "%s                    memset(row + oi * %lld, 0, %lld * sizeof(%s));\n", in,
                           (long long)g->ow, (long long)g->ow, T);
        fprintf(o, "%s                    continue;\n%s                }\n", in, in);
    }
    fprintf(o, "%s                for (int oj = 0; oj < %lld; oj++) {\n", in, (long long)g->ow);
    fprintf(o, "%s                    const int jj = oj * %lld - %lld + kj;\n", in, (long long)g->sw, (long long)g->pw);
    const char *at = arena_printf(e->a, "img[ii * %lld + jj]", (long long)g->w);
    const char *r = arena_printf(e->a, "row[oi * %lld + oj]", (long long)g->ow);
    const char *inside = arena_printf(e->a, "jj >= 0 && jj < %lld", (long long)g->w);
    const char *stmt = back && padded ? arena_printf(e->a, "if (%s) %s += %s;", inside, at, r)
                     : back           ? arena_printf(e->a, "%s += %s;", at, r)
                     : padded         ? arena_printf(e->a, "%s = %s ? %s : %s;", r, inside, at, emit_lit(e, 0))
                                      : arena_printf(e->a, "%s = %s;", r, at);
    fprintf(o, "%s                    %s\n", in, stmt);
    fprintf(o, "%s                }\n%s            }\n%s        }\n", in, in, in);
    if (back) fprintf(o, "%s}\n", in);
}

static void emit_conv_input_grad(emitter *e, FILE *o, ir_node *n);

void emit_im2col(emitter *e, FILE *o, ir_node *n) {
    if (n->scratch) {
        emit_conv_input_grad(e, o, n);
        return;
    }
    int back = n->op == OP_COL2IM;
    const ir_node *img = back ? n : n->in[0], *col = back ? n->in[0] : n;
    ir_conv g = n->conv;
    fprintf(o, "    /* %s %s = %s(%s %s): kernel %lldx%lld, stride %lldx%lld, padding %lldx%lld before */\n", n->cname,
            emit_shape_of(e, n), ir_op_name(n), emit_who(e, n->in[0]), emit_shape_of(e, n->in[0]), (long long)g.kh,
            (long long)g.kw, (long long)g.sh, (long long)g.sw, (long long)g.ph, (long long)g.pw);
    im2col_loops(e, o, &g, back, emit_mark(e, img), emit_mark(e, col), img->batched ? "n" : "1", 0, "    ");
}

/* ---- the fixed chunks of examples of a convolution's loop (see fuse.c) ----------- */

/* Opens the loop over a convolution's chunks of examples, shared among nnc's threads,
 * or a plain block for one chunk; `partials` says what each chunk sums on its own. */
static void open_chunks(emitter *e, FILE *o, int chunks, const char *partials) {
    if (chunks == 1) {
        fprintf(o, "    {\n");
        return;
    }
    long long each = (e->g->train.batch + chunks - 1) / chunks;
    fprintf(o, "    /* the batch in %d chunks of %lld examples, chosen from the shapes alone (fuse.c) and shared\n"
               "     * among nnc's threads: each chunk has its own working memory%s, so every number is\n"
               "     * computed the same way at any thread count */\n",
            chunks, each, partials ? arena_printf(e->a, "\n     * and %s, added in chunk order after the loop", partials) : "");
    emit_omp_rows(e, o, "    ", "");
    fprintf(o, "    for (int ch = 0; ch < %d; ch++) {\n", chunks);
}

/* Where chunk ch's copy of the working memory at `at` is: per elements apart. */
static const char *chunk_at(emitter *e, long long at, int chunks, long long per) {
    if (chunks == 1) return arena_printf(e->a, "%lld", at);
    return at ? arena_printf(e->a, "%lld + (size_t)ch * %lld", at, per) : arena_printf(e->a, "(size_t)ch * %lld", per);
}

/* The bounds of chunk ch's loop over its examples (the last chunks have fewer, or none,
 * when n is below the compiled batch). */
static const char *chunk_examples(emitter *e, int chunks) {
    long long each = (e->g->train.batch + chunks - 1) / chunks;
    return chunks > 1 ? arena_printf(e->a, "ch * %lld; b < n && b < (ch + 1) * %lld", each, each) : "0; b < n";
}

/* ---- a convolution's gradients, with a path for sparse dY (see fuse.c) --------- */

/* A convolution's geometry as the loops print it; hp, wp: the padded channel-last image. */
typedef struct convgeo {
    long long c, h, w, f, kh, kw, sh, sw, ph, pw, oh, ow, hp, wp, k, p;
} convgeo;

static convgeo conv_geo(const ir_conv *g, int64_t filters) {
    convgeo v = {g->c, g->h, g->w, filters, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->oh, g->ow, 0, 0, 0, 0};
    int64_t hp, wp;
    fuse_conv_extent(g, &hp, &wp);
    v.hp = hp;
    v.wp = wp;
    v.k = v.c * v.kh * v.kw;
    v.p = v.oh * v.ow;
    return v;
}

/* Counts example b's nonzeros of dY (a loop the compiler vectorizes); the path is chosen
 * on the count. */
static void count_nonzeros(emitter *e, FILE *o, const char *dy, const convgeo *v) {
    fprintf(o, "            const %s *restrict dy = %s + (size_t)b * %lld;\n", e->T, dy, v->f * v->p);
    fprintf(o, "            int nonzero = 0;\n");
    fprintf(o, "            for (int i = 0; i < %lld; i++) nonzero += dy[i] != 0;\n", v->f * v->p);
}

/* Filter f's nonzeros when dY is max pooling's gradient R (fuse.c): one per window at
 * most, at its first maximum (as PyTorch breaks ties; the first tap when the maximum is
 * NaN), where R's expression is evaluated with the window's gradient; listed with their
 * values (nzv), and summed for the bias gradient when the block computes it. */
static void pooled_nonzeros(emitter *e, FILE *o, const convgeo *v, const ir_node *owner) {
    const ir_node *p = owner->pool, *r = p->epi;
    const ir_conv *q = &p->conv;
    const char *T = e->T;
    long long kh = q->kh, kw = q->kw, W = v->ow, pw = q->ow, nw = q->oh * q->ow;
    if (owner->pool_sum) fprintf(o, "                %s bsum = %s;\n", T, emit_lit(e, 0));
    fprintf(o, "                for (int oi = 0; oi < %lld; oi++) {   /* every window: its maximum's position and value */\n",
            (long long)q->oh);
    fprintf(o, "                    #pragma omp simd%s\n", owner->pool_sum ? " reduction(+:bsum)" : "");
    fprintf(o, "                    for (int oj = 0; oj < %lld; oj++) {\n", pw);
    fprintf(o, "                        const size_t first = (((size_t)b * %lld + f) * %lld + oi * %lld) * %lld + oj * %lld;\n",
            v->f, v->oh, kh, W, kw);
    const char *window = arena_printf(e->a, "(((size_t)b * %lld + f) * %lld + oi) * %lld + oj", v->f, (long long)q->oh, pw);
    if (p->pooled) {   /* the convolution recorded the pick (fuse.c) */
        fprintf(o, "                        const int pick = picks[%s];\n", window);
    } else {
        const char *X = emit_mark(e, p->in[1]);
        fprintf(o, "                        %s acc = %s[first];\n", T, X);
        fprintf(o, "                        for (int ki = 0; ki < %lld; ki++)\n", kh);
        fprintf(o, "                            for (int kj = 0; kj < %lld; kj++)\n", kw);
        fprintf(o, "                                acc = %s[first + ki * %lld + kj] > acc ? %s[first + ki * %lld + kj] : acc;\n", X, W, X, W);
        fprintf(o, "                        int pick = 0;   /* the first tap at the maximum */\n");
        fprintf(o, "                        for (int ki = %lld; ki >= 0; ki--)\n", kh - 1);
        fprintf(o, "                            for (int kj = %lld; kj >= 0; kj--)\n", kw - 1);
        fprintf(o, "                                pick = %s[first + ki * %lld + kj] == acc ? ki * %lld + kj : pick;\n", X, W, kw);
    }
    fprintf(o, "                        const size_t i = first + (size_t)(pick / %lld) * %lld + pick %% %lld;\n", kw, W, kw);
    fprintf(o, "                        const %s gv = %s[%s];\n", T, emit_mark(e, p->in[0]), window);
    if (p->pooled)
        fprintf(o, "                        const %s pv = %s[%s];   /* %s at the pick */\n", T, emit_mark(e, p->pooled),
                window, emit_label(e, p->in[1]));
    /* R's expression at i (flat: fuse.c checked every operand has R's layout), with gv for the pooling's gradient
     * and, when the convolution pooled, the window's maximum for the pooling's input */
    ictx flat = {LOOP_FLAT, r->batched, 0, {0}, {0}};
    e->subst = p;
    e->subst_value = "gv";
    e->subst2 = p->pooled ? p->in[1] : NULL;
    e->subst2_value = "pv";
    const char *val = emit_expr(e, r, &flat);
    e->subst = e->subst2 = NULL;
    fprintf(o, "                        const %s gz = %s;\n", T, val);
    fprintf(o, "                        nz[oi * %lld + oj] = (int)(i - ((size_t)b * %lld + f) * %lld);\n", pw, v->f, v->p);
    fprintf(o, "                        nzv[oi * %lld + oj] = gz;\n", pw);
    if (owner->pool_sum) fprintf(o, "                        bsum += gz;\n");
    fprintf(o, "                    }\n                }\n");
    if (owner->pool_sum) fprintf(o, "                bias_part[f] += bsum;\n");
    fprintf(o, "                int count = 0;   /* the nonzeros, moved to the front */\n");
    fprintf(o, "                for (int z = 0; z < %lld; z++) {\n", nw);
    fprintf(o, "                    nz[count] = nz[z];\n                    nzv[count] = nzv[z];\n");
    fprintf(o, "                    count += nzv[z] != 0;\n                }\n");
}

/* Filter f's nonzeros of the example, one at a time: their positions are listed in nz
 * without a branch per element (whose outcome would be a coin toss), then each g =
 * dY[f, oi, oj] meets, for every kernel row ki, the run of kw·C channel-last values its
 * taps touch (xr, dr) and the filter's row (from w_t, or the sums of dW's row in acc).
 * dW's row is summed in registers over the nonzeros and added once; dX's positions
 * overlap from one nonzero to the next, so they are added in memory. */
static void sparse_filter(emitter *e, FILE *o, const convgeo *v, int dw, int dx, const ir_node *owner) {
    const char *T = e->T;
    long long run = v->kw * v->c, fk = v->kh * run;
    const char *patch = arena_printf(e->a, "((size_t)(nz[z] / %lld * %lld + ki) * %lld + nz[z] %% %lld * %lld) * %lld",
                                     v->ow, v->sh, v->wp, v->ow, v->sw, v->c);
    const char *gz = owner->pool ? "nzv[z]" : "dyf[nz[z]]";
    fprintf(o, "            for (int f = 0; f < %lld; f++) {\n", v->f);
    if (owner->pool) {
        pooled_nonzeros(e, o, v, owner);
    } else {
        fprintf(o, "                const %s *restrict dyf = dy + (size_t)f * %lld;\n", T, v->p);
        fprintf(o, "                int count = 0;\n");
        fprintf(o, "                for (int i = 0; i < %lld; i++) {\n", v->p);
        fprintf(o, "                    nz[count] = i;\n                    count += dyf[i] != 0;\n                }\n");
    }
    if (dw) {
        fprintf(o, "                %s acc[%lld][%lld];   /* dW's row f */\n", T, v->kh, run);
        fprintf(o, "                for (int ki = 0; ki < %lld; ki++)\n", v->kh);
        fprintf(o, "                    for (int t = 0; t < %lld; t++) acc[ki][t] = %s;\n", run, emit_lit(e, 0));
        fprintf(o, "                for (int z = 0; z < count; z++) {\n");
        fprintf(o, "                    const %s g = %s;\n", T, gz);
        fprintf(o, "                    for (int ki = 0; ki < %lld; ki++) {\n", v->kh);
        fprintf(o, "                        const %s *restrict xr = x_hwc + %s;\n", T, patch);
        fprintf(o, "                        #pragma omp simd\n");
        fprintf(o, "                        for (int t = 0; t < %lld; t++) acc[ki][t] = NNR_MADD(g, xr[t], acc[ki][t]);\n", run);
        fprintf(o, "                    }\n                }\n");
        fprintf(o, "                for (int ki = 0; ki < %lld; ki++)\n", v->kh);
        fprintf(o, "                    for (int t = 0; t < %lld; t++) dw_t[(size_t)f * %lld + ki * %lld + t] += acc[ki][t];\n",
                run, fk, run);
    }
    if (dx) {
        fprintf(o, "                const %s *restrict wf = w_t + (size_t)f * %lld;\n", T, fk);
        fprintf(o, "                for (int z = 0; z < count; z++) {\n");
        fprintf(o, "                    const %s g = %s;\n", T, gz);
        fprintf(o, "                    for (int ki = 0; ki < %lld; ki++) {\n", v->kh);
        fprintf(o, "                        %s *restrict dr = dx_hwc + %s;\n", T, patch);
        fprintf(o, "                        #pragma omp simd\n");
        fprintf(o, "                        for (int t = 0; t < %lld; t++) dr[t] = NNR_MADD(g, wf[ki * %lld + t], dr[t]);\n", run, run);
        fprintf(o, "                    }\n                }\n");
    }
    fprintf(o, "            }\n");
}

/* An example's image between channel-first [C, H, W] and the padded channel-last
 * [Hp, Wp, C] (to_hwc), a row of the image at a time, so that both sides stay in cache. */
static void relayout(FILE *o, const convgeo *v, int to_hwc, const char *dst, const char *src) {
    const char *chw = "[(ci * %lld + ii) * %lld + jj]", *hwc = "[((ii + %lld) * %lld + jj + %lld) * %lld + ci]";
    char a[160], b[160];
    snprintf(a, sizeof a, chw, v->h, v->w);
    snprintf(b, sizeof b, hwc, v->ph, v->wp, v->pw, v->c);
    const char *outer = "ii", *mid = to_hwc ? "jj" : "ci", *inner = to_hwc ? "ci" : "jj";
    long long n0 = v->h, n1 = to_hwc ? v->w : v->c, n2 = to_hwc ? v->c : v->w;
    fprintf(o, "            for (int %s = 0; %s < %lld; %s++)\n", outer, outer, n0, outer);
    fprintf(o, "                for (int %s = 0; %s < %lld; %s++)\n", mid, mid, n1, mid);
    fprintf(o, "                    for (int %s = 0; %s < %lld; %s++)\n", inner, inner, n2, inner);
    fprintf(o, "                        %s%s = %s%s;\n", dst, to_hwc ? b : a, src, to_hwc ? a : b);
}

/* C = op(A) op(B) + beta C for one example: nnr_sgemm, which cuts a large product among
 * nnc's threads, when the examples run one after the other; within a chunk of examples
 * (already on a thread of its own), one cblas call, whose product is the same at any
 * thread count. */
static void example_gemm(emitter *e, FILE *o, int chunks, int ta, int tb, long long m, long long n, long long k,
                         const char *a, long long lda, const char *b, long long ldb, int beta, const char *c,
                         long long ldc) {
    const char *ind = "                ";
    if (chunks == 1) {
        emit_gemm(e, o, ind, ta, tb, arena_printf(e->a, "%lld", m), arena_printf(e->a, "%lld", n),
                  arena_printf(e->a, "%lld", k), a, lda, b, ldb, emit_lit(e, beta), c, ldc);
        return;
    }
    fprintf(o, "%s%s(CblasRowMajor, %s, %s, %lld, %lld, %lld, %s, %s, %lld, %s, %lld, %s, %s, %lld);\n", ind,
            emit_gemm_fn(e, 0), ta ? "CblasTrans" : "CblasNoTrans", tb ? "CblasTrans" : "CblasNoTrans", m, n, k,
            emit_lit(e, 1), a, lda, b, ldb, emit_lit(e, beta), c, ldc);
}

/* The dense path of a convolution's gradients for example b: taken when more than
 * NNR_CONV_SPARSE_BELOW of its dY is nonzero; two GEMMs (the weights' over the example's
 * im2col, rebuilt here when there is no im2col tensor) and col2im. */
static void emit_dense_conv_grads(emitter *e, FILE *o, ir_node *wn, ir_node *xn, const convgeo *vg, int one_col,
                                  int chunks) {
    convgeo v = *vg;
    ir_node *prod = xn ? xn->in[0] : NULL;
    const ir_node *col = wn ? wn->in[1] : NULL;
    const char *dy = emit_mark(e, wn ? wn->in[0] : prod->in[1]);
    const char *cl = wn && !one_col ? emit_mark(e, col) : NULL, *X = wn ? emit_mark(e, col->in[0]) : NULL;
    const char *dx = xn ? emit_mark(e, xn) : NULL, *dcol = xn ? emit_mark(e, prod) : NULL,
               *W = xn ? emit_mark(e, prod->in[0]) : NULL;
    long long fp = v.f * v.p;
    count_nonzeros(e, o, dy, &v);
    fprintf(o, "            if (nonzero > %lld * NNR_CONV_SPARSE_BELOW) {   /* dense: GEMMs%s */\n", fp,
            xn ? " and col2im" : "");
    const char *ind = "                ";
    if (one_col) im2col_loops(e, o, &col->conv, 0, X, "col_b", NULL, 1, ind);
    if (wn)
        example_gemm(e, o, chunks, 0, 1, v.f, v.k, v.p, "dy", v.p,
                     one_col ? "col_b" : arena_printf(e->a, "%s + (size_t)b * %lld", cl, v.k * v.p), v.p, 1, "dw_part", v.k);
    if (xn) {
        example_gemm(e, o, chunks, 1, 0, v.k, v.p, v.f, W, v.k, "dy", v.p, 0,
                     arena_printf(e->a, "%s + (size_t)b * %lld", dcol, v.k * v.p), v.p);
        im2col_loops(e, o, &xn->conv, 1, dx, dcol, NULL, 0, ind);
    }
    fprintf(o, "                continue;\n            }\n");
}

/* dst [count] = the chunks' partials (at, per elements apart) added in chunk order: the
 * same sum at any thread count. */
static void add_partials(emitter *e, FILE *o, int chunks, long long per, const char *dst, const char *what,
                         long long at, long long count) {
    const char *T = e->T;
    if (chunks == 1) {
        fprintf(o, "    memcpy(%s, m->acts + %lld, %lld * sizeof(%s));   /* %s */\n", dst, at, count, T, what);
        return;
    }
    fprintf(o, "    {   /* %s: the chunks' partials, added in chunk order */\n", what);
    fprintf(o, "        const %s *restrict parts = m->acts + %lld;   /* chunk ch's at ch * %lld */\n", T, at, per);
    fprintf(o, "        for (int i = 0; i < %lld; i++) {\n", count);
    fprintf(o, "            %s sum = parts[i];\n", T);
    fprintf(o, "            for (int ch = 1; ch < %d; ch++) sum += parts[(size_t)ch * %lld + i];\n", chunks, per);
    fprintf(o, "            %s[i] = sum;\n        }\n    }\n", dst);
}

/* A convolution's gradients from dY [B, F, P]: the weights' dW = dY · colᵀ summed over
 * the batch (node wn) and the input's dX = col2im(Wᵀ · dY) (node xn), either of which may
 * be absent.  Per example, a GEMM path or, for a mostly-zero dY, the sparse one; only
 * the sparse one when max pooling's windows list dY's nonzeros (fuse.c). */
static void emit_conv_grads(emitter *e, FILE *o, ir_node *wn, ir_node *xn) {
    ir_node *prod = xn ? xn->in[0] : NULL, *owner = wn ? wn : xn;
    const ir_node *col = wn ? wn->in[1] : NULL;
    convgeo v = wn ? conv_geo(&col->conv, wn->mm.ar) : conv_geo(&xn->conv, prod->mm.ar);
    const ir_node *pool = owner->pool;   /* dY is listed from max pooling's windows: no dense path */
    const char *T = e->T, *dy = pool ? "dY" : emit_mark(e, wn ? wn->in[0] : prod->in[1]);
    int one_col = wn && col->mem == MEM_NONE;   /* no im2col tensor (fuse.c): one example's, rebuilt here */
    const char *dw = wn ? emit_mark(e, wn) : NULL, *cl = wn && !one_col ? emit_who(e, col) : NULL,
               *X = wn ? emit_mark(e, col->in[0]) : NULL;
    const char *dx = xn ? emit_mark(e, xn) : NULL, *dcol = xn ? (pool ? "dcol" : emit_mark(e, prod)) : NULL,
               *W = xn ? emit_mark(e, prod->in[0]) : NULL;
    long long hwc = v.hp * v.wp * v.c, fk = v.f * v.k, at = (long long)owner->scratch_offset;
    if (wn) fprintf(o, "    /* %s %s = %s [B, %lld, %lld] @ %s^T %s, summed over the batch */\n", dw,
                    emit_shape_of(e, wn), dy, v.f, v.p, one_col ? arena_printf(e->a, "im2col(%s)", X) : cl,
                    emit_shape_of(e, col));
    if (xn) fprintf(o, "    /* %s %s = col2im(%s = %s^T [%lld, %lld] @ %s [B, %lld, %lld]) */\n", dx,
                    emit_shape_of(e, xn), dcol, W, v.k, v.f, dy, v.f, v.p);
    if (pool)
        fprintf(o, "    /* dY comes from the gradient of line %d's max pooling (%s): one nonzero per window at\n"
                   "     * most, at the window's maximum, so the windows list them and dY is never stored%s.\n"
                   "     * Each nonzero g adds",
                pool->stmt_line, emit_who(e, pool->in[0]),
                owner->pool_sum ? arena_printf(e->a, ";\n     * %s (its sum per channel) is added up on the way",
                                               owner->pool_sum->cname) : "");
    else
        fprintf(o, "    /* An example whose gradient is mostly zero (after relu and max pooling it is) takes\n"
                   "     * the sparse path: each nonzero g of %s adds", dy);
    fprintf(o, "%s%s%s,\n"
               "     * over images kept channel-last and zero-padded [%lld, %lld, %lld] and filters\n"
               "     * in [F, kh, kw, C] order. */\n",
            wn ? " g times the patch it saw to dW" : "", wn && xn ? "\n     * and" : "",
            xn ? " g times its filter to the positions the patch came from" : "", v.hp, v.wp, v.c);
    int chunks = fuse_conv_chunks(wn ? &col->conv : &xn->conv, v.f, fuse_chunk_batch(e->g));
    long long per = (long long)owner->scratch / chunks;   /* each chunk's working memory (fuse.c) */
    long long parts = per - (long long)fuse_conv_partials(owner), bias_parts = parts + (wn ? fk : 0);
    const char *psum = owner->pool_sum ? emit_mark(e, owner->pool_sum) : NULL;
    if (xn) {
        fprintf(o, "    {   /* the filters, once for every chunk of examples */\n");
        fprintf(o, "        %s *restrict w_t = m->acts + %lld;   /* [F, kh, kw, C] */\n", T, at + 2 * hwc + fk);
        fprintf(o, "        for (int f = 0; f < %lld; f++)\n", v.f);
        fprintf(o, "            for (int ci = 0; ci < %lld; ci++)\n", v.c);
        fprintf(o, "                for (int kk = 0; kk < %lld; kk++)   /* ki * kw + kj */\n", v.kh * v.kw);
        fprintf(o, "                    w_t[(f * %lld + kk) * %lld + ci] = %s[(f * %lld + ci) * %lld + kk];\n", v.kh * v.kw,
                v.c, W, v.c, v.kh * v.kw);
        fprintf(o, "    }\n");
    }
    const char *sums = wn && psum ? "its own partial sums of dW and the bias"
                     : wn         ? "its own partial sum of dW"
                     : psum       ? "its own partial sum of the bias" : NULL;
    open_chunks(e, o, chunks, sums);
    if (wn) {
        fprintf(o, "        %s *restrict x_hwc = m->acts + %s;   /* the example's input */\n", T, chunk_at(e, at, chunks, per));
        fprintf(o, "        %s *restrict dw_t = m->acts + %s;   /* the sparse examples' dW */\n", T,
                chunk_at(e, at + 2 * hwc, chunks, per));
        fprintf(o, "        %s *restrict dw_part = m->acts + %s;   /* the chunk's dW */\n", T, chunk_at(e, at + parts, chunks, per));
    }
    if (xn) {
        fprintf(o, "        %s *restrict dx_hwc = m->acts + %s;   /* the example's dX */\n", T, chunk_at(e, at + hwc, chunks, per));
        fprintf(o, "        const %s *restrict w_t = m->acts + %lld;   /* the filters */\n", T, at + 2 * hwc + fk);
    }
    if (psum)
        fprintf(o, "        %s *restrict bias_part = m->acts + %s;   /* the chunk's sum of %s */\n", T,
                chunk_at(e, at + bias_parts, chunks, per), psum);
    fprintf(o, "        int32_t *restrict nz = (int32_t *)(m->acts + %s);   /* [%lld] */\n",
            chunk_at(e, at + 2 * hwc + 2 * fk, chunks, per), v.p);
    if (pool)
        fprintf(o, "        %s *restrict nzv = m->acts + %s;   /* their values */\n", T,
                chunk_at(e, at + 2 * hwc + 2 * fk + v.p, chunks, per));
    if (pool && pool->pooled)
        fprintf(o, "        const uint8_t *restrict picks = (const uint8_t *)(m->acts + %lld);   /* each window's, from the forward pass */\n",
                (long long)pool->pooled->scratch_offset);
    if (one_col && !pool)
        fprintf(o, "        %s *restrict col_b = m->acts + %s;   /* the example's patches [%lld, %lld] */\n", T,
                chunk_at(e, at + 2 * hwc + 2 * fk + v.p, chunks, per), v.k, v.p);
    if (wn) {
        fprintf(o, "        memset(x_hwc, 0, %lld * sizeof(%s));   /* the padding stays zero */\n", hwc, T);
        fprintf(o, "        memset(dw_t, 0, %lld * sizeof(%s));\n", fk, T);
        fprintf(o, "        memset(dw_part, 0, %lld * sizeof(%s));\n", fk, T);
    }
    if (psum) fprintf(o, "        memset(bias_part, 0, %lld * sizeof(%s));\n", v.f, T);
    fprintf(o, "        for (int b = %s; b++) {\n", chunk_examples(e, chunks));
    if (!pool) emit_dense_conv_grads(e, o, wn, xn, &v, one_col, chunks);

    if (wn) {
        fprintf(o, "            const %s *restrict img = %s + (size_t)b * %lld;\n", T, X, v.c * v.h * v.w);
        relayout(o, &v, 1, "x_hwc", "img");
    }
    if (xn) fprintf(o, "            memset(dx_hwc, 0, %lld * sizeof(%s));\n", hwc, T);
    sparse_filter(e, o, &v, wn != NULL, xn != NULL, owner);
    if (xn) {
        fprintf(o, "            %s *restrict out = %s + (size_t)b * %lld;\n", T, dx, v.c * v.h * v.w);
        relayout(o, &v, 0, "out", "dx_hwc");
    }
    fprintf(o, "        }\n");
    if (wn) {
        fprintf(o, "        for (int f = 0; f < %lld; f++)   /* the sparse examples' dW, in dW's order */\n", v.f);
        fprintf(o, "            for (int ci = 0; ci < %lld; ci++)\n", v.c);
        fprintf(o, "                for (int kk = 0; kk < %lld; kk++)\n", v.kh * v.kw);
        fprintf(o, "                    dw_part[(f * %lld + ci) * %lld + kk] += dw_t[(f * %lld + kk) * %lld + ci];\n", v.c,
                v.kh * v.kw, v.kh * v.kw, v.c);
    }
    fprintf(o, "    }\n");
    if (wn) add_partials(e, o, chunks, per, dw, "dW", at + parts, fk);
    if (psum) add_partials(e, o, chunks, per, psum, "the bias's sum", at + bias_parts, v.f);
}

void emit_conv_weight_grad(emitter *e, FILE *o, ir_node *n) { emit_conv_grads(e, o, n, n->also); }

static void emit_conv_input_grad(emitter *e, FILE *o, ir_node *n) { emit_conv_grads(e, o, NULL, n); }

/* ---- epilogues (see fuse.c) ---------------------------------------------------- */

/* The statement storing value, node p's element at c's index: p's own, or that of the
 * node whose expression its code computes, with value in place of p. */
const char *emit_epilogue_store(emitter *e, const ir_node *p, const ictx *c, const char *own, const char *value) {
    if (!p->epi) return arena_printf(e->a, "%s = %s;", own, value);
    e->subst = p;
    e->subst_value = arena_printf(e->a, "(%s)", value);
    const char *v = emit_expr(e, p->epi, c);
    e->subst = NULL;
    return arena_printf(e->a, "%s[%s] = %s;", emit_mark(e, p->epi), emit_index_of(e, p->epi, c), v);
}

/* A comment line saying what an epilogue writes. */
void emit_epilogue_note(emitter *e, FILE *o, const ir_node *p, const char *ind) {
    if (!p->epi) return;
    char math[512] = "";
    if (p->epi->pass == IR_BWD) emit_collect_math(p->epi, math, sizeof math, 1);
    fprintf(o, "%s/* ... and written through %s %s%s%s, computed as each element is stored */\n", ind, p->epi->cname,
            emit_shape_of(e, p->epi), *math ? ": " : "", math);
}

/* ---- the forward convolution, computed directly (see fuse.c) ------------------- */

/* One block of q output positions (from oj) of output row oi times fbn filters (from
 * fb): its sums stay in registers (acc) while every tap adds in, each tap one input
 * value times a contiguous run of filters. */
static void direct_block(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long q,
                         long long fbn, const char *ind) {
    const char *T = e->T;
    fprintf(o, "%s    %s acc[%lld][%lld];\n", ind, T, q, fbn);
    fprintf(o, "%s    for (int qi = 0; qi < %lld; qi++)\n", ind, q);
    fprintf(o, "%s        for (int f = 0; f < %lld; f++) acc[qi][f] = %s;\n", ind, fbn, emit_lit(e, 0));
    fprintf(o, "%s    for (int ki = 0; ki < %lld; ki++)\n", ind, v->kh);
    fprintf(o, "%s        for (int kj = 0; kj < %lld; kj++) {\n", ind, v->kw);
    fprintf(o, "%s            const %s *restrict xr = x_hwc + ((size_t)(oi * %lld + ki) * %lld + oj * %lld + kj) * %lld;\n",
            ind, T, v->sh, v->wp, v->sw, v->c);
    fprintf(o, "%s            const %s *restrict wr = w_t + (size_t)(ki * %lld + kj) * %lld + fb;\n", ind, T, v->kw,
            v->c * v->f);
    fprintf(o, "%s            for (int ci = 0; ci < %lld; ci++)\n", ind, v->c);
    fprintf(o, "%s                for (int qi = 0; qi < %lld; qi++) {\n", ind, q);
    fprintf(o, "%s                    const %s xv = xr[qi * %lld + ci];\n", ind, T, v->sw * v->c);
    fprintf(o, "%s                    #pragma omp simd\n", ind);
    fprintf(o, "%s                    for (int f = 0; f < %lld; f++) acc[qi][f] = NNR_MADD(xv, wr[ci * %lld + f], acc[qi][f]);\n", ind, fbn,
            v->f);
    fprintf(o, "%s                }\n%s        }\n", ind, ind);
    fprintf(o, "%s    for (int qi = 0; qi < %lld; qi++)\n", ind, q);
    fprintf(o, "%s        for (int f = 0; f < %lld; f++)\n", ind, fbn);
    fprintf(o, "%s            %s\n", ind,
            emit_epilogue_store(e, n, c, arena_printf(e->a, "out[((size_t)(fb + f) * %lld + oi) * %lld + oj + qi]", v->oh, v->ow),
                  "acc[qi][f]"));
}

/* The blocks of fbn filters from fb over output rows oi0..oi1 and columns oj0..oj1:
 * rows, then runs of q positions and the row's remainder. */
static void direct_rows(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long q,
                        long long fbn, const char *ind, const long long r[4]) {
    long long width = r[3] - r[2];
    if (q > width) q = width;
    long long full = width / q * q, rest = width - full;
    fprintf(o, "%sfor (int oi = %lld; oi < %lld; oi++) {\n", ind, r[0], r[1]);
    const char *in2 = arena_printf(e->a, "%s    ", ind);
    if (full) {
        fprintf(o, "%sfor (int oj = %lld; oj < %lld; oj += %lld) {\n", in2, r[2], r[2] + full, q);
        direct_block(e, o, n, c, v, q, fbn, in2);
        fprintf(o, "%s}\n", in2);
    }
    if (rest) {
        fprintf(o, "%s{\n%s    const int oj = %lld;\n", in2, in2, r[2] + full);
        direct_block(e, o, n, c, v, rest, fbn, in2);
        fprintf(o, "%s}\n", in2);
    }
    fprintf(o, "%s}\n", ind);
}

/* The direct loops over the outputs in rows r[0]..r[1], columns r[2]..r[3], every
 * filter: blocks of fb filters and the remainder. */
static void direct_filters(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long q,
                           long long fb, const long long r[4]) {
    long long full = v->f / fb * fb, rest = v->f - full;
    if (full) {
        fprintf(o, "            for (int fb = 0; fb < %lld; fb += %lld)\n", full, fb);
        direct_rows(e, o, n, c, v, q, fb, "                ", r);
    }
    if (rest) {
        fprintf(o, "            {\n                const int fb = %lld;\n", full);
        direct_rows(e, o, n, c, v, q, rest, "                ", r);
        fprintf(o, "            }\n");
    }
}

/* ---- Winograd's F(2x2, 3x3) for a direct convolution (see fuse.c) -------------- */

/* U = G g Gᵀ for every filter g [3, 3] and channel, stored [16, C, F]:
 * G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]. */
static void wino_filters(emitter *e, FILE *o, const convgeo *v, const char *W) {
    const char *T = e->T, *h = emit_lit(e, 0.5);
    fprintf(o, "        for (int f = 0; f < %lld; f++)   /* wu = G g G^T, G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1] */\n", v->f);
    fprintf(o, "            for (int ci = 0; ci < %lld; ci++) {\n", v->c);
    fprintf(o, "                const %s *restrict g = %s + ((size_t)f * %lld + ci) * 9;\n", T, W, v->c);
    fprintf(o, "                %s tr[4][3];   /* G g */\n", T);
    fprintf(o, "                for (int j = 0; j < 3; j++) {\n");
    fprintf(o, "                    tr[0][j] = g[j];\n");
    fprintf(o, "                    tr[1][j] = %s * (g[j] + g[3 + j] + g[6 + j]);\n", h);
    fprintf(o, "                    tr[2][j] = %s * (g[j] - g[3 + j] + g[6 + j]);\n", h);
    fprintf(o, "                    tr[3][j] = g[6 + j];\n");
    fprintf(o, "                }\n");
    fprintf(o, "                for (int i = 0; i < 4; i++) {   /* (G g) G^T */\n");
    const char *rows[4] = {"tr[i][0]", "%s * (tr[i][0] + tr[i][1] + tr[i][2])", "%s * (tr[i][0] - tr[i][1] + tr[i][2])",
                           "tr[i][2]"};
    for (int j = 0; j < 4; j++)
        fprintf(o, "                    wu[((i * 4 + %d) * %lld + ci) * %lld + f] = %s;\n", j, v->c, v->f,
                arena_printf(e->a, rows[j], h));
    fprintf(o, "                }\n            }\n");
}

/* V = Bᵀ d B for the tq-th tile d [4, 4] of a block, every channel at once (the loop
 * over channels runs along the channel-last image): Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. */
static void wino_tiles_in(emitter *e, FILE *o, const convgeo *v, long long tb, const char *ind) {
    const char *T = e->T;
    fprintf(o, "%sfor (int tq = 0; tq < %lld; tq++) {   /* wv = B^T d B */\n", ind, tb);
    fprintf(o, "%s    const %s *restrict dt = x_hwc + ((size_t)(2 * ti) * %lld + 2 * (tj0 + tq)) * %lld;\n", ind, T, v->wp,
            v->c);
    fprintf(o, "%s    #pragma omp simd   /* the tile's arrays are per channel: no dependence */\n", ind);
    fprintf(o, "%s    for (int ci = 0; ci < %lld; ci++) {\n", ind, v->c);
    fprintf(o, "%s        %s ta[4][4], tr[4][4];\n", ind, T);
    fprintf(o, "%s        for (int i = 0; i < 4; i++)\n", ind);
    fprintf(o, "%s            for (int j = 0; j < 4; j++) ta[i][j] = dt[(i * %lld + j) * %lld + ci];\n", ind, v->wp, v->c);
    fprintf(o, "%s        for (int j = 0; j < 4; j++) {   /* B^T d */\n", ind);
    fprintf(o, "%s            tr[0][j] = ta[0][j] - ta[2][j];\n", ind);
    fprintf(o, "%s            tr[1][j] = ta[1][j] + ta[2][j];\n", ind);
    fprintf(o, "%s            tr[2][j] = ta[2][j] - ta[1][j];\n", ind);
    fprintf(o, "%s            tr[3][j] = ta[1][j] - ta[3][j];\n", ind);
    fprintf(o, "%s        }\n", ind);
    fprintf(o, "%s        for (int i = 0; i < 4; i++) {   /* (B^T d) B */\n", ind);
    const char *cols[4] = {"tr[i][0] - tr[i][2]", "tr[i][1] + tr[i][2]", "tr[i][2] - tr[i][1]", "tr[i][1] - tr[i][3]"};
    for (int j = 0; j < 4; j++)
        fprintf(o, "%s            wv[((i * 4 + %d) * %lld + tq) * %lld + ci] = %s;\n", ind, j, tb, v->c, cols[j]);
    fprintf(o, "%s        }\n%s    }\n%s}\n", ind, ind, ind);
}

/* A tile's four outputs, Y = Aᵀ M A, in the order of the block's (and a pooling window's)
 * positions: from the rows of Aᵀ M that wino_at_m() computes. */
static const char *const wino_y[4] = {"r0[0] + r0[1] + r0[2]", "r0[1] - r0[2] - r0[3]", "r1[0] + r1[1] + r1[2]",
                                      "r1[1] - r1[2] - r1[3]"};

/* Aᵀ M for one filter of a tile, M[i][j] at mf[(i * 4 + j) * stride]. */
static void wino_at_m(emitter *e, FILE *o, long long stride, const char *ind) {
    fprintf(o, "%s%s r0[4], r1[4];   /* A^T M */\n", ind, e->T);
    fprintf(o, "%sfor (int j = 0; j < 4; j++) {\n", ind);
    fprintf(o, "%s    r0[j] = mf[j * %lld] + mf[(4 + j) * %lld] + mf[(8 + j) * %lld];\n", ind, stride, stride, stride);
    fprintf(o, "%s    r1[j] = mf[(4 + j) * %lld] - mf[(8 + j) * %lld] - mf[(12 + j) * %lld];\n", ind, stride, stride, stride);
    fprintf(o, "%s}\n", ind);
}

/* A tile's outputs written through the epilogue R into yv (one filter's): oi, oj name the
 * output for R's index, declared where R reads another tensor there (-Wunused). */
static void wino_outputs(emitter *e, FILE *o, const ir_node *n, const ictx *c, long long stride, const char *ind) {
    wino_at_m(e, o, stride, ind);
    fprintf(o, "%s%s yv[4];   /* %s at the block's outputs */\n", ind, e->T, emit_label(e, n->epi));
    for (int k = 0; k < 4; k++) {
        e->subst = n;
        e->subst_value = arena_printf(e->a, "(%s)", wino_y[k]);
        const char *v = emit_expr(e, n->epi, c);
        e->subst = NULL;
        int oi = emit_names_id(v, "oi"), oj = emit_names_id(v, "oj");
        if (!oi && !oj) {
            fprintf(o, "%syv[%d] = %s;\n", ind, k, v);
            continue;
        }
        fprintf(o, "%s{\n%s    const int ", ind, ind);
        if (oi) fprintf(o, "oi = 2 * ti + %d%s", k / 2, oj ? ", " : "");
        if (oj) fprintf(o, "oj = 2 * (tj0 + tq) + %d", k % 2);
        fprintf(o, ";\n%s    yv[%d] = %s;\n%s}\n", ind, k, v, ind);
    }
}

/* The pooled convolution's last stage (fuse.c): each tile's block of outputs through R
 * is one window of the max pooling, whose maximum is stored (as the pooling's own loop
 * finds it, from -inf) with its pick, the first tap at the maximum as the pooling's
 * gradient takes it. */
static void wino_pooled_out(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long tb,
                            long long fbn, const char *ind) {
    const char *T = e->T, *P = emit_mark(e, n->pooled);
    int picks = n->pooled->scratch != 0;
    long long ph = v->oh / 2, pw = v->ow / 2;
    fprintf(o, "%sfor (int tq = 0; tq < %lld; tq++) {   /* Y = A^T wm A through %s, and its maximum */\n", ind, tb,
            emit_label(e, n->epi));
    fprintf(o, "%s    %s pm[%lld];\n", ind, T, fbn);
    if (picks) fprintf(o, "%s    uint8_t pk[%lld];\n", ind, fbn);
    fprintf(o, "%s    #pragma omp simd\n", ind);
    fprintf(o, "%s    for (int f = 0; f < %lld; f++) {\n", ind, fbn);
    const char *in2 = arena_printf(e->a, "%s        ", ind);
    fprintf(o, "%sconst %s *restrict mf = wm + tq * %lld + f;   /* M[i][j] at mf[(i * 4 + j) * %lld] */\n", in2, T, fbn,
            tb * fbn);
    wino_outputs(e, o, n, c, tb * fbn, in2);
    fprintf(o, "%s%s mx = -INFINITY;\n", in2, T);
    fprintf(o, "%sfor (int k = 0; k < 4; k++) mx = yv[k] > mx ? yv[k] : mx;\n", in2);
    fprintf(o, "%spm[f] = mx;\n", in2);
    if (picks) {
        fprintf(o, "%s%s best = yv[0];\n", in2, T);
        fprintf(o, "%sfor (int k = 1; k < 4; k++) best = yv[k] > best ? yv[k] : best;\n", in2);
        fprintf(o, "%sint pick = 0;\n", in2);
        fprintf(o, "%sfor (int k = 3; k >= 0; k--) pick = yv[k] == best ? k : pick;\n", in2);
        fprintf(o, "%spk[f] = (uint8_t)pick;\n", in2);
    }
    fprintf(o, "%s    }\n", ind);
    fprintf(o, "%s    for (int f = 0; f < %lld; f++) {\n", ind, fbn);
    const char *at = arena_printf(e->a, "(((size_t)b * %lld + fb + f) * %lld + ti) * %lld + tj0 + tq", v->f, ph, pw);
    fprintf(o, "%s        %s[%s] = pm[f];\n", ind, P, at);
    if (picks) fprintf(o, "%s        picks[%s] = pk[f];\n", ind, at);
    fprintf(o, "%s    }\n%s}\n", ind, ind);
}

/* For fbn filters from fb: the 16 products M = Σ_c V·U of each tile, summed in registers,
 * then Y = Aᵀ M A, Aᵀ = [1 1 1 0; 0 1 -1 -1], stored through the epilogue. */
static void wino_tiles_out(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long tb,
                           long long fbn, const char *ind) {
    const char *T = e->T;
    fprintf(o, "%sfor (int xi = 0; xi < 16; xi++) {   /* wm = the sum over channels of wv .* wu */\n", ind);
    fprintf(o, "%s    %s acc[%lld][%lld];\n", ind, T, tb, fbn);
    fprintf(o, "%s    for (int tq = 0; tq < %lld; tq++)\n", ind, tb);
    fprintf(o, "%s        for (int f = 0; f < %lld; f++) acc[tq][f] = %s;\n", ind, fbn, emit_lit(e, 0));
    fprintf(o, "%s    const %s *restrict vx = wv + (size_t)xi * %lld;\n", ind, T, tb * v->c);
    fprintf(o, "%s    const %s *restrict ux = wu + (size_t)xi * %lld + fb;\n", ind, T, v->c * v->f);
    fprintf(o, "%s    for (int ci = 0; ci < %lld; ci++)\n", ind, v->c);
    fprintf(o, "%s        for (int tq = 0; tq < %lld; tq++) {\n", ind, tb);
    fprintf(o, "%s            const %s xv = vx[tq * %lld + ci];\n", ind, T, v->c);
    fprintf(o, "%s            #pragma omp simd\n", ind);
    fprintf(o, "%s            for (int f = 0; f < %lld; f++) acc[tq][f] = NNR_MADD(xv, ux[ci * %lld + f], acc[tq][f]);\n", ind,
            fbn, v->f);
    fprintf(o, "%s        }\n", ind);
    fprintf(o, "%s    for (int tq = 0; tq < %lld; tq++)\n", ind, tb);
    fprintf(o, "%s        for (int f = 0; f < %lld; f++) wm[(xi * %lld + tq) * %lld + f] = acc[tq][f];\n", ind, fbn, tb, fbn);
    fprintf(o, "%s}\n", ind);
    if (n->pooled) {
        wino_pooled_out(e, o, n, c, v, tb, fbn, ind);
        return;
    }
    fprintf(o, "%sfor (int tq = 0; tq < %lld; tq++) {   /* Y = A^T wm A */\n", ind, tb);
    fprintf(o, "%s    %s ym[2][2][%lld];\n", ind, T, fbn);
    fprintf(o, "%s    #pragma omp simd\n", ind);
    fprintf(o, "%s    for (int f = 0; f < %lld; f++) {\n", ind, fbn);
    fprintf(o, "%s        const %s *restrict mf = wm + tq * %lld + f;   /* M[i][j] at mf[(i * 4 + j) * %lld] */\n", ind, T,
            fbn, tb * fbn);
    const char *in2 = arena_printf(e->a, "%s        ", ind);
    wino_at_m(e, o, tb * fbn, in2);
    for (int k = 0; k < 4; k++) fprintf(o, "%sym[%d][%d][f] = %s;\n", in2, k / 2, k % 2, wino_y[k]);
    fprintf(o, "%s    }\n", ind);
    fprintf(o, "%s    for (int di = 0; di < 2; di++)\n", ind);
    fprintf(o, "%s        for (int dj = 0; dj < 2; dj++) {\n", ind);
    fprintf(o, "%s            const int oi = 2 * ti + di, oj = 2 * (tj0 + tq) + dj;\n", ind);
    fprintf(o, "%s            for (int f = 0; f < %lld; f++)\n", ind, fbn);
    fprintf(o, "%s                %s\n", ind,
            emit_epilogue_store(e, n, c, arena_printf(e->a, "out[((size_t)(fb + f) * %lld + oi) * %lld + oj]", v->oh, v->ow),
                  "ym[di][dj][f]"));
    fprintf(o, "%s        }\n%s}\n", ind, ind);
}

/* A block of tb tiles from (ti, tj0): transformed once, then every block of filters. */
static void wino_block(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long tb,
                       long long fb, const char *ind) {
    wino_tiles_in(e, o, v, tb, ind);
    long long full = v->f / fb * fb, rest = v->f - full;
    const char *in2 = arena_printf(e->a, "%s    ", ind);
    if (full) {
        fprintf(o, "%sfor (int fb = 0; fb < %lld; fb += %lld) {\n", ind, full, fb);
        wino_tiles_out(e, o, n, c, v, tb, fb, in2);
        fprintf(o, "%s}\n", ind);
    }
    if (rest) {
        fprintf(o, "%s{\n%s    const int fb = %lld;\n", ind, ind, full);
        wino_tiles_out(e, o, n, c, v, tb, rest, in2);
        fprintf(o, "%s}\n", ind);
    }
}

/* Every 2x2 tile of outputs: rows of tiles, blocks of tb tiles and the row's remainder. */
static void wino_rows(emitter *e, FILE *o, const ir_node *n, const ictx *c, const convgeo *v, long long fb) {
    long long th = v->oh / 2, tw = v->ow / 2, tb = FUSE_WINO_TILES < tw ? FUSE_WINO_TILES : tw;
    long long full = tw / tb * tb, rest = tw - full;
    fprintf(o, "            for (int ti = 0; ti < %lld; ti++) {\n", th);
    if (full) {
        fprintf(o, "                for (int tj0 = 0; tj0 < %lld; tj0 += %lld) {\n", full, tb);
        wino_block(e, o, n, c, v, tb, fb, "                    ");
        fprintf(o, "                }\n");
    }
    if (rest) {
        fprintf(o, "                {\n                    const int tj0 = %lld;\n", full);
        wino_block(e, o, n, c, v, rest, fb, "                    ");
        fprintf(o, "                }\n");
    }
    fprintf(o, "            }\n");
}

/* Y [B, F, P] = W [F, C·kh·kw] · im2col(X), per example, without im2col: see fuse.c. */
void emit_conv_direct(emitter *e, FILE *o, ir_node *n) {
    const ir_node *col = n->in[1], *w = n->in[0], *x = col->in[0];
    convgeo v = conv_geo(&col->conv, n->mm.ar);
    const char *T = e->T, *Y = n->epi ? NULL : emit_mark(e, n), *W = emit_mark(e, w), *X = emit_mark(e, x);
    long long hwc = v.hp * v.wp * v.c, at = (long long)n->scratch_offset, size = e->f[0] ? 4 : 8;
    int wino = fuse_winograd(&col->conv);
    fuse_wino_mem wm = fuse_wino_layout(&col->conv, v.f);
    /* the epilogue's index space: [F, oh, ow] or [F, oh·ow] (fuse.c) */
    ictx c = {LOOP_NESTED, 1, 2, {v.f, v.p}, {"(fb + f)", NULL}};
    c.v[1] = arena_printf(e->a, "(oi * %lld + oj + qi)", v.ow);
    if (n->epi && n->epi->shape.rank == 3) {
        c.rank = 3;
        c.dim[1] = v.oh;
        c.dim[2] = v.ow;
        c.v[1] = "oi";
        c.v[2] = "(oj + qi)";
    }
    ictx cw = c;   /* Winograd's stores: oi, oj name the output itself */
    cw.v[c.rank - 1] = c.rank == 3 ? "oj" : arena_printf(e->a, "(oi * %lld + oj)", v.ow);
    /* about 24 vector registers of sums: a block of up to 128 bytes of filters (32 floats)
     * times as many positions as fill them */
    long long fb = v.f * size <= 128 ? v.f : 128 / size, q = 768 / (fb * size);
    if (q > 24) q = 24;
    if (q < 1) q = 1;
    if (q > v.ow) q = v.ow;
    if (wino)
        fprintf(o, "    /* %s %s = %s %s @ im2col(%s %s),\n"
                   "     * computed directly with Winograd's F(2x2, 3x3) (Lavin & Gray, 2016): kernel 3x3, stride 1x1,\n"
                   "     * padding %lldx%lld before.  Each 2x2 block of outputs Y comes from a 4x4 tile d of the\n"
                   "     * image as Y = A^T [sum over channels of (G g G^T) .* (B^T d B)] A: 16 products per\n"
                   "     * channel and filter instead of 36.  The filters are transformed once per call (wu\n"
                   "     * [16, C, F]), blocks of %lld tiles of the example's image, channel-last and zero-padded\n"
                   "     * [%lld, %lld, %lld], once per block (wv [16, tiles, C]); the products are summed in\n"
                   "     * registers, %lld filters at a time (wm [16, tiles, filters]).%s */\n",
                n->cname ? n->cname : "the product", emit_shape_of(e, n), W, emit_shape_of(e, w), emit_who(e, x),
                emit_shape_of(e, x), v.ph, v.pw, FUSE_WINO_TILES < v.ow / 2 ? (long long)FUSE_WINO_TILES : v.ow / 2, v.hp, v.wp, v.c, fb,
                wm.filters ? "  The odd last row or column of outputs\n     * is summed directly over the taps, filters in [kh, kw, C, F] order (w_t)." : "");
    else
        fprintf(o, "    /* %s %s = %s %s @ im2col(%s %s),\n"
                   "     * computed directly: kernel %lldx%lld, stride %lldx%lld, padding %lldx%lld before.  Each block\n"
                   "     * of %lld output positions x %lld filters stays in registers while all %lld taps add in,\n"
                   "     * over the example's image channel-last and zero-padded [%lld, %lld, %lld] and the\n"
                   "     * filters in [kh, kw, C, F] order. */\n",
                n->cname ? n->cname : "the product", emit_shape_of(e, n), W, emit_shape_of(e, w), emit_who(e, x),
                emit_shape_of(e, x), v.kh, v.kw, v.sh, v.sw, v.ph, v.pw, q, fb, v.k, v.hp, v.wp, v.c);
    if (n->pooled)
        fprintf(o, "    /* ... %s %s computed at each 2x2 block of outputs and max pooled as it is: line %d's\n"
                   "     * %s %s, written with each window's pick%s; %s is never stored */\n",
                emit_label(e, n->epi), emit_shape_of(e, n->epi), n->pooled->stmt_line, n->pooled->cname,
                emit_shape_of(e, n->pooled),
                n->pooled->scratch ? " (the first tap at the maximum) for the\n     * gradient" : "", emit_label(e, n->epi));
    else
        emit_epilogue_note(e, o, n, "    ");
    int chunks = fuse_conv_chunks(&col->conv, v.f, fuse_chunk_batch(e->g));
    long long per = (long long)n->scratch / chunks;   /* each chunk's working memory (fuse.c) */
    int taps = !wino || wm.filters;   /* the direct loops run somewhere */
    if (taps || wino) {
        fprintf(o, "    {   /* the filters, once for every chunk of examples */\n");
        if (taps) fprintf(o, "        %s *restrict w_t = m->acts + %lld;   /* [kh, kw, C, F] */\n", T, at + hwc);
        if (wino)
            fprintf(o, "        %s *restrict wu = m->acts + %lld;   /* transformed */\n", T, at + wm.image + wm.filters);
    }
    if (taps) {
        fprintf(o, "        for (int f = 0; f < %lld; f++)\n", v.f);
        fprintf(o, "            for (int ci = 0; ci < %lld; ci++)\n", v.c);
        fprintf(o, "                for (int kk = 0; kk < %lld; kk++)   /* ki * kw + kj */\n", v.kh * v.kw);
        fprintf(o, "                    w_t[(kk * %lld + ci) * %lld + f] = %s[(f * %lld + ci) * %lld + kk];\n", v.c, v.f,
                W, v.c, v.kh * v.kw);
    }
    if (wino) wino_filters(e, o, &v, W);
    if (taps || wino) fprintf(o, "    }\n");
    open_chunks(e, o, chunks, NULL);
    fprintf(o, "        %s *restrict x_hwc = m->acts + %s;   /* the example's image */\n", T, chunk_at(e, at, chunks, per));
    if (taps) fprintf(o, "        const %s *restrict w_t = m->acts + %lld;   /* the filters */\n", T, at + hwc);
    if (wino) {
        long long u = at + wm.image + wm.filters;
        fprintf(o, "        const %s *restrict wu = m->acts + %lld;   /* the filters, transformed */\n", T, u);
        fprintf(o, "        %s *restrict wv = m->acts + %s;   /* a block of tiles, transformed */\n", T,
                chunk_at(e, u + wm.u, chunks, per));
        fprintf(o, "        %s *restrict wm = m->acts + %s;   /* their products */\n", T,
                chunk_at(e, u + wm.u + wm.v, chunks, per));
    }
    if (n->pooled && n->pooled->scratch)
        fprintf(o, "        uint8_t *restrict picks = (uint8_t *)(m->acts + %lld);   /* [B, %lld, %lld, %lld] */\n",
                (long long)n->pooled->scratch_offset, v.f, v.oh / 2, v.ow / 2);
    if (v.hp * v.wp != v.h * v.w)
        fprintf(o, "        memset(x_hwc, 0, %lld * sizeof(%s));   /* the padding stays zero */\n", hwc, T);
    fprintf(o, "        for (int b = %s; b++) {\n", chunk_examples(e, chunks));
    fprintf(o, "            const %s *restrict img = %s + (size_t)b * %lld;\n", T, X, v.c * v.h * v.w);
    relayout(o, &v, 1, "x_hwc", "img");
    if (Y) fprintf(o, "            %s *restrict out = %s + (size_t)b * %lld;\n", T, Y, v.f * v.p);
    if (!wino) {
        const long long all[4] = {0, v.oh, 0, v.ow};
        direct_filters(e, o, n, &c, &v, q, fb, all);
    } else {
        wino_rows(e, o, n, &cw, &v, fb);
        long long eh = v.oh / 2 * 2, ew = v.ow / 2 * 2;
        if (ew < v.ow) {
            fprintf(o, "            /* the odd last column, directly */\n");
            const long long col_r[4] = {0, eh, ew, v.ow};
            direct_filters(e, o, n, &c, &v, q, fb, col_r);
        }
        if (eh < v.oh) {
            fprintf(o, "            /* the odd last row, directly */\n");
            const long long row_r[4] = {eh, v.oh, 0, v.ow};
            direct_filters(e, o, n, &c, &v, q, fb, row_r);
        }
    }
    fprintf(o, "        }\n    }\n");
}
