/* fuse.c — which tensors get memory and which live only inside a loop.
 *
 * An elementwise node with a single consumer in the same pass, read at the same index
 * space, is inlined: the consumer's loop computes it as part of one expression, so a
 * chain such as relu(a * b + c) or the backward (p - t) * 2 / N becomes one loop with no
 * buffer for its temporaries.  Constants, the seed 1/n and broadcasts of them are read
 * by any loop (and as the loss gradient's value per row); code that indexes its input's
 * memory (a GEMM, a copy, pooling, a row op) gets them materialized, as it does with
 * everything else — tensors read twice, read by the other pass, read by a GEMM or a row
 * op, the loss, outputs and gradients users see.
 * The pass also decides which nodes each generated function computes: the training
 * forward pass (what the loss and backward need), the backward pass, and inference
 * (what the outputs need); which convolutions are computed directly (some with
 * Winograd's F(2x2, 3x3)) and which of their gradients get a sparse path, with the
 * working memory of each, and which of them compute max pooling's gradient too (or, for
 * a Winograd convolution, the pooling itself); which products of the backward pass get
 * a second path for a mostly-zero gradient; which producers write their elementwise
 * reader as they store (epilogues); which slices are read in place by their readers'
 * loops instead of copied; which dense products accumulate straight into a sum; and
 * attention's working memory, with its gradients computed by one kernel. */
#include <stdlib.h>
#include <string.h>
#include "codegen.h"

/* Marks what `root` needs; `mode` picks the side of a select: 0 training, 1 inference.
 * An explicit stack: graphs may be deep chains.  It holds IR_MAXIN entries per node,
 * since each node pushes its inputs once, and is allocated once per plan: a model with
 * thousands of parameters marks from each one's gradient. */
static void mark_mode(ir_node **stack, ir_node *root, char *mark, int mode) {
    if (!root) return;
    int top = 0;
    stack[top++] = root;
    while (top) {
        ir_node *n = stack[--top];
        if (mark[n->id]) continue;
        mark[n->id] = 1;
        for (int k = 0; k < n->nin; k++)
            if (n->op != OP_SELECT || k == mode) stack[top++] = n->in[k];
    }
}

static void mark_ancestors(ir_node **stack, ir_node *root, char *mark) { mark_mode(stack, root, mark, 0); }

static int reads_expressions(const ir_node *consumer) {
    ir_family f = ir_ops[consumer->op].fam;
    /* a scan's initial state and its sums over the steps are loops reading any expression;
     * its copies (scan_x, scan_out, scan_dx) read memory */
    return f == FAM_ELEMWISE || f == FAM_REDUCE || consumer->op == OP_SCAN_STATE || consumer->op == OP_SCAN_ACC;
}

/* Input k of n is one value per row, which emit_elementwise.c's row_value() reads as an expression
 * when it has no memory (cross-entropy's and pick's upstream gradient, often 1/n). */
static int reads_row_value(const ir_node *n, int k) {
    return (n->op == OP_CROSS_ENTROPY_GRAD || n->op == OP_PICK_GRAD) && k == 0;
}

static int is_root(const ir_graph *g, const ir_node *n) {
    if (n == g->loss || n->op == OP_BN_UPDATE || n->keep) return 1;
    for (int i = 0; i < g->outputs.n; i++)
        if (((ir_output *)g->outputs.v[i])->node == n) return 1;
    return n->grad_of && (n->grad_of->op == OP_PARAM || n->grad_of->op == OP_INPUT) && n->grad_of->grad == n;
}

/* A convolution's gradients — its weights' (dY · colᵀ, summed over the batch) and its
 * input's (col2im of Wᵀ · dY) — are written as one block with a second path for a dY
 * that is mostly zero, as it is after relu and max pooling: each nonzero of dY adds its
 * share straight into both gradients, over images kept channel-last so that a kernel
 * row's taps are one contiguous run.  Its working memory: two images [Hp, Wp, C] padded
 * so that every tap lands inside them, two filter banks in [F, kh, kw, C] order, and the
 * list of one filter's nonzeros (positions). */
void fuse_conv_extent(const ir_conv *g, int64_t *hp, int64_t *wp) {
    int64_t th = (g->oh - 1) * g->sh + g->kh, tw = (g->ow - 1) * g->sw + g->kw;   /* the taps' reach */
    *hp = g->h + g->ph > th ? g->h + g->ph : th;
    *wp = g->w + g->pw > tw ? g->w + g->pw : tw;
}

static int64_t conv_scratch(const ir_conv *g, int64_t filters) {
    int64_t hp, wp;
    fuse_conv_extent(g, &hp, &wp);
    return 2 * hp * wp * g->c + 2 * filters * g->kh * g->kw * g->c + g->oh * g->ow;
}

/* The forward convolution Y = W · im2col(X) is computed directly (emit_conv.c): per example,
 * the image is copied channel-last and zero-padded, the filters once per call into
 * [kh, kw, C, F] order, and blocks of output positions × filters are accumulated in
 * registers over every tap — no im2col tensor, and no GEMM packing a copy of it again.
 * Measured against im2col + sgemm (OpenBLAS, one thread) for 3×3 kernels: 16→32
 * channels on 26×26, 52 µs vs 70 µs per example; 32→64 on 14×14, 36 vs 61; 128→128
 * on 18×18, 0.78 ms vs 0.99.  When nothing else reads the im2col tensor but a weight
 * gradient (whose dense path then rebuilds one example's patches at a time), it gets no
 * memory: for the lecture's CNN that is 10.6 MB per batch. */
static int is_conv_forward(const ir_node *n) {
    return n->op == OP_MATMUL && n->pass == IR_FWD && n->batched && !n->in[0]->batched && n->in[1]->batched &&
           n->in[1]->op == OP_IM2COL && !n->mm.ta && !n->mm.tb && n->mem != MEM_NONE;
}

static int64_t direct_scratch(const ir_conv *g, int64_t filters) {
    int64_t hp, wp;
    fuse_conv_extent(g, &hp, &wp);
    if (fuse_winograd(g)) {
        fuse_wino_mem w = fuse_wino_layout(g, filters);
        return w.image + w.filters + w.u + w.v + w.m;
    }
    return hp * wp * g->c + filters * g->kh * g->kw * g->c;
}

/* A 3×3, stride-1 convolution over 8 channels or more is computed with Winograd's minimal
 * filtering F(2×2, 3×3) (Lavin & Gray, 2016): each 2×2 block of outputs comes from a
 * 4×4 tile of the image through 16 products per channel and filter instead of 36, plus
 * transforms that cost additions per channel and per filter.  Measured per example
 * against the direct loops (one thread, f32, 26×26 images): 8→32 channels 25.7 µs vs
 * 29.0, 16→32 36.7 vs 54.8, 32→32 62.9 vs 103.1; over one channel it would not pay.
 * The results differ from the direct sum by rounding only (a few units in the last
 * place).  An odd last row or column of outputs is computed by the direct loops. */
int fuse_winograd(const ir_conv *g) {
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->c >= 8 && g->oh >= 2 && g->ow >= 2;
}

/* Its working memory, in order: the image channel-last and padded, the filters in
 * [kh, kw, C, F] order for the direct loops of an odd edge (none without one), the
 * transformed filters U [16, C, F], a block of transformed tiles V [16, tiles, C] and
 * their products M [16, tiles, filters]. */
fuse_wino_mem fuse_wino_layout(const ir_conv *g, int64_t filters) {
    int64_t hp, wp;
    fuse_conv_extent(g, &hp, &wp);
    fuse_wino_mem w = {hp * wp * g->c, 0, 16 * g->c * filters, 16 * FUSE_WINO_TILES * g->c,
                       16 * FUSE_WINO_TILES * FUSE_WINO_FILTERS};
    if (g->oh % 2 || g->ow % 2) w.filters = 9 * g->c * filters;
    return w;
}

static int is_conv_weight_grad(const ir_node *n);

static void plan_direct_convs(ir_graph *g) {
    int nn = g->nodes.n;
    for (int i = 0; i < nn; i++) {
        ir_node *n = ir_at(g, i);
        if ((n->in_train || n->in_infer || n->in_eval) && is_conv_forward(n)) {
            n->direct = 1;
            n->scratch = direct_scratch(&n->in[1]->conv, n->mm.ar);
        }
    }
    /* an im2col read only by direct convolutions and planned weight gradients is dropped */
    char *other = arena_alloc(g->a, (size_t)nn);
    for (int i = 0; i < nn; i++) {
        ir_node *n = ir_at(g, i);
        if (!n->in_train && !n->in_infer && !n->in_eval) continue;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k]->op == OP_IM2COL && !n->direct && !(is_conv_weight_grad(n) && n->scratch && k == 1))
                other[n->in[k]->id] = 1;
    }
    for (int i = 0; i < nn; i++) {
        ir_node *col = ir_at(g, i);
        if (col->op != OP_IM2COL || col->mem == MEM_NONE || other[i]) continue;
        col->mem = MEM_NONE;
        col->folded = 1;
        for (int j = 0; j < nn; j++) {   /* the weight gradient's dense path: one example's patches */
            ir_node *w = ir_at(g, j);
            if (w->in[1] == col && w->scratch && is_conv_weight_grad(w)) w->scratch += ir_numel(&col->shape);
        }
    }
}

/* dW = dY [F, P] · colᵀ summed over the batch, col the im2col of the layer's input */
static int is_conv_weight_grad(const ir_node *n) {
    return n->op == OP_MATMUL && n->pass == IR_BWD && !n->batched && n->in[0]->batched && n->in[1]->batched &&
           n->in[1]->op == OP_IM2COL && n->mm.tb && !n->mm.ta;
}

/* dX = col2im(Wᵀ · dY), the product used by nothing else */
static int is_conv_input_grad(const ir_node *n) {
    const ir_node *p = n->op == OP_COL2IM ? n->in[0] : NULL;
    return p && n->pass == IR_BWD && p->op == OP_MATMUL && p->uses == 1 && p->mem == MEM_ACT && p->batched &&
           !p->in[0]->batched && p->in[1]->batched && p->mm.ta && !p->mm.tb;
}

static void plan_epilogues(ir_graph *g);
static void plan_pooled_conv_grads(ir_graph *g);
static void plan_pooled_convs(ir_graph *g);
static void plan_slice_views(ir_graph *g);
static void plan_sparse_products(ir_graph *g);
static void plan_step_sums(ir_graph *g);
static void plan_added_products(ir_graph *g);
static void plan_tiled_pads(ir_graph *g);
static void plan_conv_chunks(ir_graph *g);
static void plan_batch_sums(ir_graph *g);

static void plan_conv_grads(ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if (!n->in_train || n->mem == MEM_NONE || n->folded) continue;
        if (is_conv_weight_grad(n)) {
            n->scratch = conv_scratch(&n->in[1]->conv, n->mm.ar);
            /* the input's gradient from the same dY, computed in the same block */
            for (int j = i + 1; j < g->nodes.n; j++) {
                ir_node *x = ir_at(g, j);
                if (x->in_train && x->mem != MEM_NONE && is_conv_input_grad(x) && x->in[0]->in[1] == n->in[0]) {
                    n->also = x;
                    x->folded = x->in[0]->folded = 1;
                    break;
                }
            }
        } else if (is_conv_input_grad(n)) {
            n->scratch = conv_scratch(&n->conv, n->in[0]->mm.ar);
            n->in[0]->folded = 1;
        }
    }
    plan_direct_convs(g);
    plan_epilogues(g);
    plan_pooled_conv_grads(g);
    plan_pooled_convs(g);
    plan_conv_chunks(g);
    plan_sparse_products(g);
}

/* The examples that chunks may divide: the batch, or 1 for the embedded target, which runs
 * on one core and has no memory to spare for the chunks' partial sums. */
int64_t fuse_chunk_batch(const ir_graph *g) { return g->embedded ? 1 : g->train.batch; }

/* A convolution's per-example loop (forward, or its gradients) runs on nnc's threads in a
 * fixed number of chunks of consecutive examples, chosen from the shapes alone — never
 * from the thread count — so that every number is computed the same way, and a run gives
 * the same bits, at any thread count: each chunk has its own working memory (the
 * example's image, its lists, ...), and where examples' contributions are summed (the
 * weights' gradient, the bias's sum of a pooled gradient) each chunk sums its own
 * examples into a partial of its own, the partials added in chunk order afterwards.
 * Chunks come in powers of two up to FUSE_CONV_CHUNKS_MAX (2 and 4 threads share them
 * evenly), at most one per example, and only as many as keep FUSE_CONV_CHUNK_MACS of
 * work in each: a parallel region costs a few microseconds to start (tens where idle
 * threads sleep), a chunk of 2^20 multiply-adds some 50 us on one core. */
int fuse_conv_chunks(const ir_conv *g, int64_t filters, int64_t batch) {
    double macs = (double)batch * (double)(g->oh * g->ow) * (double)filters * (double)(g->c * g->kh * g->kw);
    int chunks = 1;
    while (chunks < FUSE_CONV_CHUNKS_MAX && 2LL * chunks <= batch && macs >= 2.0 * FUSE_CONV_CHUNK_MACS * chunks)
        chunks *= 2;
    return chunks;
}

/* The weights' gradient and, with a pooled dY, the bias's sum: the partials each chunk of a
 * convolution's gradients adds after its other working memory (emit_conv.c). */
int64_t fuse_conv_partials(const ir_node *n) {
    int wgrad = is_conv_weight_grad(n);
    int64_t filters = wgrad ? n->mm.ar : n->in[0]->mm.ar, bias = n->pool_sum ? filters : 0;
    if (!wgrad) return bias;
    const ir_conv *c = &n->in[1]->conv;
    return filters * c->c * c->kh * c->kw + bias;
}

static void plan_conv_chunks(ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if (!n->scratch || n->folded) continue;
        if (n->direct) {
            n->scratch *= fuse_conv_chunks(&n->in[1]->conv, n->mm.ar, fuse_chunk_batch(g));
        } else if (n->in_train && n->pass == IR_BWD && (is_conv_weight_grad(n) || is_conv_input_grad(n))) {
            int chunks = is_conv_weight_grad(n) ? fuse_conv_chunks(&n->in[1]->conv, n->mm.ar, fuse_chunk_batch(g))
                                                : fuse_conv_chunks(&n->conv, n->in[0]->mm.ar, fuse_chunk_batch(g));
            n->scratch = chunks * (n->scratch + fuse_conv_partials(n));
        }
    }
}

/* Sparse products.  A dense layer's backward pass multiplies its output's gradient dY
 * twice — dX = dY · W and dW = dYᵀ · X — and after relu (and dropout) most of dY is
 * zero.  Such a product gets a second path, taken when at most a fraction of the
 * operand is nonzero (emit_products.c): the nonzeros of each of dY's rows (for dX) or columns
 * (for dW) are listed, and every output row is the sum of those nonzeros times rows of
 * the other operand, a run of columns at a time in registers.  Measured against
 * OpenBLAS for the lecture CNN's 4608→128 layer at batch 32, one thread, with a quarter
 * of dY nonzero: 194 µs vs 474 µs for dX, 179 vs 458 for dW; they break even near one
 * half.  An operand may be mostly zero when its expression has a gradient that is zero
 * on a region (relu, clip, max, ...) or a dropout mask. */
static int zero_region(const ir_node *x, int top) {
    if (!top && x->mem != MEM_NONE) return 0;
    if (x->op == OP_DROPOUT_MASK) return 1;
    if (x->op == OP_MAP_GRAD) {
        const char *d = ir_maps[x->fn].grad[x->arg];
        size_t len = d ? strlen(d) : 0;
        if (len >= 5 && !strcmp(d + len - 5, ": #0)")) return 1;
    }
    for (int k = 0; k < x->nin; k++)
        if (zero_region(x->in[k], 0)) return 1;
    return 0;
}

/* dX = dY · W (the batch stacks dY's rows) or dW = dYᵀ · X summed over the batch, with
 * the other operand read by rows. */
int fuse_sparse_form(const ir_node *n) {
    if (n->op != OP_MATMUL || n->pass != IR_BWD || n->mm.tb || !n->in[0]->batched || n->mm.srank) return 0;
    if (n->batched && !n->in[1]->batched && !n->mm.ta) return 1;
    if (!n->batched && n->in[1]->batched && n->mm.ta) return 2;
    return 0;
}

static void plan_sparse_products(ir_graph *g) {
    /* the lists take two to three times dY's memory, which a microcontroller does not spare */
    if (g->embedded) return;
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        int form = fuse_sparse_form(n);
        if (!form || !n->in_train || n->mem != MEM_ACT || n->folded || n->scratch || n->direct || n->epi ||
            n->mm.bc < 16 || !zero_region(n->in[0], 1))
            continue;
        int64_t a = ir_numel(&n->in[0]->shape) * g->train.batch;   /* dY's elements in a batch */
        int64_t rows = form == 1 ? a / n->mm.ac : n->mm.ac;      /* the output's rows */
        n->sparse_a = 1;
        n->scratch = 2 * a + rows;   /* the lists: positions, values, and a count per row */
    }
}

/* Pooling windows that tile the plane exactly: the gradient writes every element once. */
int fuse_pool_tiled(const ir_conv *g) {
    return g->sh == g->kh && g->sw == g->kw && g->oh * g->kh == g->h && g->ow * g->kw == g->w;
}

/* Epilogues.  A direct convolution and a max pooling's tiled gradient write each element
 * of their result once, from a value in a register; when their only reader is one
 * elementwise node R (the bias and relu after a convolution, relu's gradient after the
 * pooling's), that code writes R instead — R's whole expression, with the value in
 * place of the tensor — and the tensor gets no memory.  One pass over the batch's
 * activations less each, for the lecture's CNN 2.3 MB read and written per step.
 * R's other operands must exist before the producer runs (parameters, inputs, earlier
 * nodes), and R is computed in exactly the functions the producer is. */

/* Reads of p in x's inline expression tree (through views); -1 when the tree reads a
 * tensor that is computed after p. */
static int reads_of(const ir_node *x, const ir_node *p, int top) {
    if (x == p) return 1;
    if (!top && x->mem != MEM_NONE)   /* a stored operand: it must be there before p's code */
        return x->mem == MEM_PARAM || x->mem == MEM_EXTERN || x->id < p->id ? 0 : -1;
    if (!top && ir_index_free(x)) return 0;
    int count = 0;
    for (int k = 0; k < x->nin; k++) {
        int r = reads_of(x->in[k], p, 0);
        if (r < 0) return -1;
        count += r;
    }
    return count;
}

/* The one reader of p's result through views: a chain of single uses. */
/* The first node computed in some function that reads x. */
static ir_node *first_reader(ir_graph *g, const ir_node *x) {
    for (int i = x->id + 1; i < g->nodes.n; i++) {
        ir_node *c = ir_at(g, i);
        if (!c->in_train && !c->in_infer && !c->in_eval) continue;
        for (int k = 0; k < c->nin; k++)
            if (c->in[k] == x) return c;
    }
    return NULL;
}

static ir_node *sole_reader(ir_graph *g, const ir_node *p) {
    const ir_node *x = p;
    for (;;) {
        if (x->uses != 1) return NULL;
        ir_node *next = first_reader(g, x);
        if (!next) return NULL;
        if (next->mem == MEM_NONE && !(next->op == OP_RESHAPE || ir_is_elementwise(next))) return NULL;
        if (next->mem != MEM_NONE) return next;
        x = next;
    }
}

static int epilogue_layout(const ir_node *p, const ir_node *r) {
    if (r->batched != p->batched || ir_numel(&r->shape) != ir_numel(&p->shape)) return 0;
    if (p->direct) {   /* R indexed as [F, oh, ow] or [F, oh·ow] */
        const ir_conv *c = &p->in[1]->conv;
        return r->shape.dim[0] == p->mm.ar &&
               ((r->shape.rank == 3 && r->shape.dim[1] == c->oh && r->shape.dim[2] == c->ow) || r->shape.rank == 2);
    }
    return ir_same_layout(r, p);
}

/* Every stored operand of R's tree has R's layout (the pooling's epilogue indexes flat). */
static int flat_tree(const ir_node *x, const ir_node *r, const ir_node *p) {
    if (x == p || ir_index_free(x)) return 1;
    if (x != r && x->mem != MEM_NONE) return ir_same_layout(x, r);
    for (int k = 0; k < x->nin; k++)
        if (!flat_tree(x->in[k], r, p)) return 0;
    return 1;
}

static void plan_epilogues(ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *p = ir_at(g, i);
        int pool = p->op == OP_POOL_GRAD && p->attr[0] != 0 && fuse_pool_tiled(&p->conv);
        if (p->mem != MEM_ACT || (!p->direct && !pool) || is_root(g, p)) continue;
        ir_node *r = sole_reader(g, p);
        if (!r || r->mem != MEM_ACT || !ir_is_elementwise(r) || r->folded || r->pass != p->pass || r->loop != p->loop ||
            r->in_train != p->in_train || r->in_infer != p->in_infer || r->in_eval != p->in_eval ||
            r->dtype == DT_CLASS || !epilogue_layout(p, r) || reads_of(r, p, 1) != 1 || (pool && !flat_tree(r, r, p)))
            continue;
        p->epi = r;
        r->folded = 1;
        p->mem = MEM_NONE;
    }
}

/* attention (emit_attention.c): the forward kernel keeps each example's and head's
 * probabilities P [Tq, Tk] in its working memory, which the backward pass reads (the plan
 * reuses no memory, so they are there until then); the first of its gradients computes
 * them all (the others are folded into its code, chained by `also`) with a [Tq, Tk]
 * buffer per example and head for d scores. */
static int64_t attention_scratch(const ir_graph *g, const ir_node *n) {
    const ir_node *f = n->op == OP_ATTENTION ? n : n->in[1];
    int64_t tk = f->in[1]->shape.dim[f->in[1]->shape.rank - 2];
    int64_t rows = ir_numel(&f->shape) / f->shape.dim[f->shape.rank - 1];   /* heads x Tq */
    return rows * tk * (f->batched ? g->train.batch : 1);
}

static void plan_attention(ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if (n->op == OP_ATTENTION && (n->in_train || n->in_infer || n->in_eval)) n->scratch = attention_scratch(g, n);
        if (n->op != OP_ATTENTION_GRAD || !n->in_train || n->mem == MEM_NONE || n->folded) continue;
        n->scratch = attention_scratch(g, n);
        ir_node *last = n;
        for (int j = i + 1; j < g->nodes.n; j++) {
            ir_node *x = ir_at(g, j);
            if (x->op != OP_ATTENTION_GRAD || x->in[1] != n->in[1] || !x->in_train || x->mem == MEM_NONE) continue;
            last->also = x;
            x->folded = 1;
            last = x;
        }
    }
}

void fuse_plan(ir_graph *g) {
    int nn = g->nodes.n;
    ir_node **consumer = arena_alloc(g->a, sizeof(ir_node *) * (size_t)nn);
    int *by_memory = arena_alloc(g->a, sizeof(int) * (size_t)nn);   /* consumers that read memory: rows, GEMMs */
    int *by_index = arena_alloc(g->a, sizeof(int) * (size_t)nn);   /* ... except a row op's value per row (a literal may be one) */
    char *live = arena_alloc(g->a, (size_t)nn), *train = arena_alloc(g->a, (size_t)nn),
         *infer = arena_alloc(g->a, (size_t)nn);

    /* what each pass computes */
    ir_node **stack = arena_alloc(g->a, sizeof(ir_node *) * ((size_t)nn * IR_MAXIN + 1));
    mark_ancestors(stack, g->loss, train);
    for (int i = 0; i < g->params.n; i++) mark_ancestors(stack, ((ir_node *)g->params.v[i])->grad, live);
    for (int i = 0; i < g->io.n; i++) mark_ancestors(stack, ((ir_node *)g->io.v[i])->grad, live);
    /* a backward loop's carries: read by the next step's seed, not through an input */
    for (int i = 0; i < nn; i++)
        if (ir_at(g, i)->op == OP_SCAN_SEED && live[i])
            for (int k = 0; k < ir_at(g, i)->loop->nstate; k++) mark_ancestors(stack, ir_at(g, i)->loop->carry[k], live);
    for (int i = 0; i < nn; i++) train[i] |= live[i] && ir_at(g, i)->pass == IR_FWD;
    for (int i = 0; i < g->effects.n; i++) mark_ancestors(stack, g->effects.v[i], train);
    for (int i = 0; i < g->outputs.n; i++) mark_mode(stack, ((ir_output *)g->outputs.v[i])->node, infer, 1);
    char *eval = arena_alloc(g->a, (size_t)nn);
    mark_mode(stack, g->loss, eval, 1);
    for (int i = 0; i < nn; i++) {
        ir_node *n = ir_at(g, i);
        n->in_train = train[i] || (live[i] && n->pass == IR_BWD);
        n->in_infer = infer[i];
        n->in_eval = eval[i];
        n->uses = 0;
    }
    for (int i = 0; i < nn; i++) {
        ir_node *n = ir_at(g, i);
        if (!n->in_train && !n->in_infer && !n->in_eval) continue;
        for (int k = 0; k < n->nin; k++) {
            ir_node *x = n->in[k];
            x->uses++;
            consumer[x->id] = n;
            if (n->pass == IR_FWD) x->used_fwd = 1; else x->used_bwd = 1;
            if (!reads_expressions(n)) {
                by_memory[x->id]++;
                if (!reads_row_value(n, k)) by_index[x->id]++;
            }
        }
    }
    for (int i = 0; i < nn; i++) {
        ir_node *n = ir_at(g, i);
        n->mem = MEM_NONE;
        /* inputs and parameters are part of the API even when the loss ignores them */
        switch (n->op) {
        case OP_INPUT: case OP_LABEL: case OP_TARGET: n->mem = MEM_EXTERN; continue;
        case OP_PARAM: n->mem = MEM_PARAM; continue;
        case OP_CONST_TENSOR: n->mem = MEM_ACT; continue;   /* written once by NAME_new (emit_api.c) */
        case OP_CONST: case OP_INV_N: continue;
        default: break;
        }
        if (!n->in_train && !n->in_infer && !n->in_eval) continue;
        int inline_ok;
        if (n->op == OP_PAD_ADD) continue;   /* always in its first input's memory (grad.c's own() copies a root) */
        if (n->op == OP_RESHAPE || n->op == OP_SELECT)   /* views of their inputs' memory */
            inline_ok = !n->in[0]->per_step || n->in[0]->loop == n->loop;
        else if (ir_index_free(n))      /* a literal can be read by any loop, not by code that indexes memory */
            inline_ok = by_index[i] == 0;
        else
            inline_ok = ir_is_elementwise(n) && n->uses == 1 && by_memory[i] == 0 &&
                        consumer[i]->pass == n->pass && consumer[i]->loop == n->loop &&
                        (ir_ops[consumer[i]->op].fam == FAM_REDUCE || ir_same_layout(consumer[i], n));
        if (is_root(g, n)) inline_ok = 0;
        n->mem = inline_ok ? MEM_NONE : MEM_ACT;
    }
    plan_conv_grads(g);
    plan_attention(g);
    plan_slice_views(g);
    plan_step_sums(g);
    plan_added_products(g);
    plan_tiled_pads(g);
    plan_batch_sums(g);
}

/* A sum over the batch (a bias's gradient: sum_to a shape without the batch) of a large
 * tensor runs on nnc's threads like a convolution's loop (fuse_conv_chunks): the batch in
 * fixed chunks chosen from the shapes alone, at least FUSE_SUM_CHUNK_ELEMENTS elements
 * each, every chunk summing its examples into a partial of its own (working memory: one
 * copy of the result per chunk), the partials added in chunk order (emit_elementwise.c).
 * The partials are at most an eighth of the elements summed, so that zeroing and adding
 * them up costs one thread little (a wide sum over a few examples stays whole).  Sums
 * inside a scan's loop or added into one (`into`) stay on one thread.  Returns 1 for a
 * node that is no such sum. */
int fuse_batch_sum_chunks(const ir_node *n, int64_t batch) {
    if (n->op != OP_SUM_TO || n->batched || !n->in[0]->batched || n->into || n->loop || n->in[0]->per_step) return 1;
    double elements = (double)ir_numel(&n->in[0]->shape) * (double)batch, out = (double)ir_numel(&n->shape);
    int chunks = 1;
    while (chunks < FUSE_CONV_CHUNKS_MAX && 2LL * chunks <= batch && elements >= 2.0 * FUSE_SUM_CHUNK_ELEMENTS * chunks &&
           2.0 * chunks * out * 8 <= elements)
        chunks *= 2;
    return chunks;
}

/* How far apart the chunks' partials are: whole 64-byte lines of floats (of doubles, two),
 * so that no two threads write one line. */
int64_t fuse_sum_part_stride(const ir_node *n) { return (ir_numel(&n->shape) + 15) / 16 * 16; }

static void plan_batch_sums(ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if ((!n->in_train && !n->in_infer && !n->in_eval) || n->mem == MEM_NONE || n->folded || n->scratch) continue;
        int chunks = fuse_batch_sum_chunks(n, fuse_chunk_batch(g));
        if (chunks > 1) n->scratch = chunks * fuse_sum_part_stride(n);
    }
}

/* A product a scan's backward loop sums over the steps (a recurrent weight's gradient)
 * is added straight into the sum by its GEMM (beta = 1), and so is a sum over the batch
 * (a bias's): no tensor for one step's part, no pass adding it up. */
static void plan_step_sums(ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i), *x = n->op == OP_SCAN_ACC ? n->in[0] : NULL;
        int sum = x && x->op == OP_SUM_TO && x->attr[0] == 0;   /* a bias's gradient: unscaled */
        if (!x || !n->in_train || (x->op != OP_MATMUL && !sum) || x->mem != MEM_ACT || x->uses != 1 ||
            x->loop != n->loop || x->direct || x->sparse_a || x->scratch || x->epi || x->folded ||
            !ir_same_layout(x, n))
            continue;
        x->into = n;
        x->mem = MEM_NONE;
        n->folded = 1;
    }
}

/* A dense layer's output added to another tensor z, as in each step of a recurrent layer
 * (step t's input projection plus h W_hhᵀ + b_hh) or a residual connection: the sum
 * starts from z plus the bias and the GEMM accumulates the product into it (beta = 1),
 * in the sum's block (emit_products.c, emit_dense_into).  No tensor for the product, no
 * pass adding it; z is read where it is, a step of a sequence included. */
static void plan_added_products(ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *a = ir_at(g, i);
        if (a->op != OP_ADD || a->mem != MEM_ACT || a->folded || a->dtype == DT_CLASS) continue;
        for (int k = 0; k < 2; k++) {
            ir_node *d = a->in[k];
            if (d->op != OP_DENSE || d->mem != MEM_ACT || d->uses != 1 || is_root(g, d) || d->folded || d->into ||
                d->loop != a->loop || d->pass != a->pass || d->in_train != a->in_train || d->in_infer != a->in_infer ||
                d->in_eval != a->in_eval || !ir_same_layout(d, a))
                continue;
            d->into = a;
            d->mem = MEM_NONE;
            d->folded = 1;
            break;
        }
    }
}

static int by_start(const void *a, const void *b) {
    double x = (*(ir_node *const *)a)->attr[0], y = (*(ir_node *const *)b)->attr[0];
    return (x > y) - (x < y);
}

/* The gradients of slices that tile an axis, each part once (an LSTM's four gates): the
 * pad their sum starts from (grad.c, total) writes no zeros first, and each slice's
 * gradient is stored into its part instead of added to it.  Linear: one pass links each
 * pad to the chain of in-place adds that follows it, one sort checks the parts. */
static void plan_tiled_pads(ir_graph *g) {
    int nn = g->nodes.n;
    ir_node **next = arena_alloc(g->a, sizeof(ir_node *) * (size_t)nn), **parts = NULL;   /* zeroed */
    for (int i = 0; i < nn; i++)
        if (ir_at(g, i)->op == OP_PAD_ADD) next[ir_at(g, i)->in[0]->id] = ir_at(g, i);
    for (int i = 0; i < nn; i++) {
        ir_node *p = ir_at(g, i);
        if (p->op != OP_PAD || (p->mem != MEM_ACT && p->mem != MEM_GRAD) || !next[i]) continue;
        if (!parts) parts = arena_alloc(g->a, sizeof(ir_node *) * (size_t)nn);
        parts[0] = p;
        int k = 1;
        for (ir_node *x = next[i]; x; x = next[x->id]) parts[k++] = x;
        qsort(parts, (size_t)k, sizeof *parts, by_start);
        double end = 0;
        int ok = 1;
        for (int j = 0; j < k && ok; j++) {
            ok = parts[j]->axis == p->axis && parts[j]->attr[0] == end;
            end = parts[j]->attr[1];
        }
        if (!ok || end != (double)p->shape.dim[p->axis]) continue;
        for (int j = 0; j < k; j++) parts[j]->tiled = 1;
    }
}

/* Whether reader c of slice x computes in a plain elementwise loop over x's layout: c is
 * a stored elementwise tensor of that layout, or an inlined one whose chain of single
 * readers, elementwise and of that layout too, ends in such a stored tensor. */
static int plain_loop_reads(ir_graph *g, const ir_node *c, const ir_node *x) {
    for (int depth = 0; depth < 64; depth++) {
        if (ir_ops[c->op].fam != FAM_ELEMWISE || c->folded || !ir_same_layout(c, x) || c->loop != x->loop) return 0;
        if (c->mem == MEM_ACT) return 1;
        if (c->mem != MEM_NONE || c->uses != 1 || !(c = first_reader(g, c))) return 0;
    }
    return 0;
}

/* Slices read in place.  A slice whose every reader computes in a plain elementwise loop
 * of the slice's own layout gets no memory: those loops read the sliced tensor at
 * shifted indices instead (emit.c, read_sliced).  An LSTM's four gates are slices of one
 * [B, 4·hidden] tensor; read in place, a step copies none of them.  A scan's step of its
 * sequence (scan_x) is read in place the same way, at step t.  Decided after every
 * other plan, when it is known which tensors are stored and which loops are plain
 * elementwise loops (an epilogue's, a reduction's are not). */
static void plan_slice_views(ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if ((n->op != OP_SLICE && n->op != OP_SCAN_X) || n->mem != MEM_ACT || n->dtype == DT_CLASS || is_root(g, n) ||
            n->in[0]->mem == MEM_NONE)
            continue;
        int readers = 0, ok = 1;
        for (int j = n->id + 1; j < g->nodes.n && ok; j++) {
            const ir_node *c = ir_at(g, j);
            if (!c->in_train && !c->in_infer && !c->in_eval) continue;
            for (int k = 0; k < c->nin && ok; k++)
                if (c->in[k] == n) readers++, ok = plain_loop_reads(g, c, n);
        }
        if (ok && readers) n->mem = MEM_NONE;
    }
}

/* Max pooling's gradient inside a convolution's gradients.  When a convolution's dY is
 * the epilogue R of a tiled max pooling's gradient (relu's gradient, as in the lecture's
 * CNN: conv → relu → maxpool), each window has one nonzero at most — at its maximum — so
 * the windows themselves list the nonzeros the sparse path needs: the gradient block
 * finds each window's maximum, evaluates R there, and adds it to dW and dX as before.
 * dY is never written (2.4 MB per batch for the lecture's CNN), nor read back to count,
 * list and sum it; R's other readers may be one sum per channel (the bias gradient),
 * added up on the way, and the views the two products read.  Such a block has no dense
 * path: at most 1/(kh·kw) of dY is nonzero.  The Wᵀ · dY product of the dense path's
 * col2im gets no memory either (10.6 MB for the lecture's CNN).  Measured on that CNN
 * (one thread, `farm-bench`, 4 paired one-epoch runs on 60,000 images): 0.907× the
 * epoch time. */
static const ir_node *through_views(const ir_node *x) {
    while (x->mem == MEM_NONE && x->op == OP_RESHAPE) x = x->in[0];
    return x;
}

/* The sum of R per channel over the batch and the other axes: the bias gradient. */
static int is_channel_sum(const ir_node *s, const ir_node *r) {
    return s->op == OP_SUM_TO && s->in[0] == r && !s->batched && s->axis == IR_NOAXIS && s->attr[0] == 0 &&
           s->mem == MEM_ACT && ir_numel(&s->shape) == r->shape.dim[0] && s->shape.dim[0] == r->shape.dim[0];
}

/* Whether every reader of x (through views) is one of the products a, b or the sum s;
 * sets *s to the sum found, and fails on anything else. */
static int reads_only(ir_graph *g, const ir_node *x, const ir_node *a, const ir_node *b, ir_node **s, int depth) {
    for (int i = x->id + 1; i < g->nodes.n; i++) {
        ir_node *c = ir_at(g, i);
        if (!c->in_train && !c->in_infer && !c->in_eval) continue;
        for (int k = 0; k < c->nin; k++) {
            if (c->in[k] != x) continue;
            if (c == a || c == b) continue;
            if (c->mem == MEM_NONE && c->op == OP_RESHAPE && depth < 8) {
                if (!reads_only(g, c, a, b, s, depth + 1)) return 0;
            } else if (depth == 0 && !*s && is_channel_sum(c, x)) {
                *s = c;
            } else {
                return 0;
            }
        }
    }
    return 1;
}

/* Whether x is zero wherever p is, whatever else it reads: p times something, or a sum of
 * such terms.  A gradient template is the upstream gradient times the local derivative
 * (ir.h), so it vanishes with its first input. */
static int vanishes_with(const ir_node *x, const ir_node *p, int top) {
    if (x == p) return 1;
    if (!top && x->mem != MEM_NONE) return 0;   /* another stored tensor: any values */
    switch (x->op) {
    case OP_MUL: return vanishes_with(x->in[0], p, 0) || vanishes_with(x->in[1], p, 0);
    case OP_ADD: case OP_SUB: return vanishes_with(x->in[0], p, 0) && vanishes_with(x->in[1], p, 0);
    case OP_DIV: case OP_NEG: case OP_COPY: case OP_EXPAND: case OP_MAP_GRAD: case OP_POWC_GRAD:
    case OP_REDUCE_MAX_GRAD:
        return vanishes_with(x->in[0], p, 0);
    default: return 0;
    }
}

/* Every reader of x's memory comes after node id `after` (views run no code: their readers). */
static int read_after(ir_graph *g, const ir_node *x, int after) {
    for (int i = x->id + 1; i < g->nodes.n; i++) {
        ir_node *c = ir_at(g, i);
        for (int k = 0; k < c->nin; k++) {
            if (c->in[k] != x) continue;
            if (c->mem == MEM_NONE && c->op == OP_RESHAPE ? !read_after(g, c, after) : c->id <= after) return 0;
        }
    }
    return 1;
}

static void plan_pooled_conv_grads(ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if (!n->scratch || !n->in_train || n->folded || n->pass != IR_BWD) continue;
        int wgrad = is_conv_weight_grad(n);
        if (!wgrad && !is_conv_input_grad(n)) continue;
        ir_node *xn = wgrad ? n->also : n, *prod = xn ? xn->in[0] : NULL;
        const ir_node *dy = wgrad ? n->in[0] : prod->in[1];
        ir_node *r = (ir_node *)through_views(dy), *p = NULL;
        for (int j = 0; j < r->id && !p; j++)
            if (ir_at(g, j)->epi == r) p = ir_at(g, j);
        if (!p || p->op != OP_POOL_GRAD || !p->attr[0] || !fuse_pool_tiled(&p->conv) || !r->batched ||
            r->mem != MEM_ACT || r->shape.rank != 3 || p->in_infer || p->in_eval || !vanishes_with(r, p, 1))
            continue;
        const ir_conv *c = wgrad ? &n->in[1]->conv : &n->conv;
        int64_t filters = wgrad ? n->mm.ar : prod->mm.ar;
        if (r->shape.dim[0] != filters || r->shape.dim[1] != c->oh || r->shape.dim[2] != c->ow) continue;
        ir_node *sum = NULL;
        if (!reads_only(g, r, wgrad ? n : prod, wgrad ? prod : NULL, &sum, 0)) continue;
        if (sum && !read_after(g, sum, n->id)) continue;
        n->pool = p;
        n->pool_sum = sum;
        p->folded = 1;
        r->mem = MEM_NONE;
        if (prod) prod->mem = MEM_NONE;   /* Wᵀ · dY for col2im: the dense path's only */
        if (sum) sum->folded = 1;
        n->scratch += c->oh * c->ow;   /* the listed nonzeros' values */
        if (wgrad && n->in[1]->mem == MEM_NONE)   /* no dense path: no example's patches to rebuild */
            n->scratch -= ir_numel(&n->in[1]->shape);
    }
}

/* Max pooling inside a Winograd convolution.  Each 2x2 block of outputs F(2x2, 3x3)
 * computes is exactly one window of a 2x2, stride-2 max pooling of the convolution's
 * epilogue R (bias + relu, for the lecture's CNN), so the convolution can pool as it
 * goes: it writes the pooled value and, when the pooling's gradient is computed inside
 * the convolution's gradients (above), the window's pick (which of its 4 taps is the
 * first maximum, a byte).  R itself is never stored (2.4 MB per batch for the lecture's
 * CNN), the pooling's own pass over it is gone, and the gradient block reads the picks
 * instead of scanning R's windows again: R's gradient expression is evaluated with the
 * pooled value, which is R at the pick.  Allowed when R's only readers are the pooling
 * (computed in the same functions as the convolution) and, in the backward pass, that
 * folded gradient and its epilogue.  The picks are the pooling's working memory, live
 * from the forward pass to the backward one (plan.c reuses no memory). */
static int folded_pool_grad(ir_graph *g, const ir_node *pg) {
    if (pg->op != OP_POOL_GRAD || !pg->folded || !pg->epi) return 0;
    for (int i = pg->id + 1; i < g->nodes.n; i++)
        if (ir_at(g, i)->pool == pg) return 1;
    return 0;
}

static int same_window(const ir_conv *a, const ir_conv *b) {
    return a->c == b->c && a->h == b->h && a->w == b->w && a->kh == b->kh && a->kw == b->kw && a->sh == b->sh &&
           a->sw == b->sw && a->oh == b->oh && a->ow == b->ow;
}

static void plan_pooled_convs(ir_graph *g) {
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i), *r = n->epi;
        if (!n->direct || !r || !fuse_winograd(&n->in[1]->conv) || r->mem != MEM_ACT || !r->batched ||
            r->shape.rank != 3 || is_root(g, r))
            continue;
        const ir_conv *cv = &n->in[1]->conv;
        ir_node *pool = NULL, *pg = NULL, *rg = NULL;
        int ok = 1;
        for (int j = r->id + 1; j < g->nodes.n && ok; j++) {
            ir_node *c = ir_at(g, j);
            if (!c->in_train && !c->in_infer && !c->in_eval) continue;
            for (int k = 0; k < c->nin && ok; k++) {
                if (c->in[k] != r) continue;
                if (c->op == OP_POOL && k == 0 && !pool) pool = c;
                else if (c->op == OP_POOL_GRAD && k == 1 && !pg) pg = c;
                else if ((!rg || rg == c) && c->pass == IR_BWD && ir_is_elementwise(c)) rg = c;
                else ok = 0;
            }
        }
        if (!ok || !pool || !pool->attr[0] || pool->mem != MEM_ACT || pool->conv.kh != 2 || pool->conv.kw != 2 ||
            !fuse_pool_tiled(&pool->conv) || pool->conv.h != cv->oh || pool->conv.w != cv->ow ||
            pool->conv.c != n->mm.ar || pool->in_train != n->in_train || pool->in_infer != n->in_infer ||
            pool->in_eval != n->in_eval)
            continue;
        /* the gradient side: none, or the folded pooling gradient whose epilogue reads R */
        if (pg ? !folded_pool_grad(g, pg) || !same_window(&pg->conv, &pool->conv) || pg->epi != rg : rg != NULL)
            continue;
        n->pooled = pool;
        pool->folded = 1;
        r->mem = MEM_NONE;
        if (pg) {
            pg->pooled = pool;
            int64_t bytes = ir_numel(&pool->shape) * g->train.batch, size = g->f64 ? 8 : 4;
            pool->scratch = (bytes + size - 1) / size;
        }
    }
}
