/* emit_stack.c — stacks of products: `@` on operands of rank > 2 (NumPy's matmul) and
 * their gradients, as GEMM calls.
 *
 * A stack product (ir_mm.srank > 0) is a loop over the stack's axes and the batch, one
 * GEMM per matrix, each operand's pointer moving by its stride along every axis (0 where
 * it is broadcast; the result's 0 where the product sums, as a broadcast operand's
 * gradient does).  stack_plan first drops axes of size 1 and merges neighbouring axes
 * along which every operand is contiguous (the batch and the heads of [B, H, T, d] are
 * one axis of B·H matrices), then folds the innermost axis into the GEMM itself when the
 * memory allows, which is what makes a stack fast: an operand shared by the whole stack
 * times a contiguous one is one GEMM with the stack in its rows ([B, H, T, d] @ W [d, k]
 * is one [B·H·T, d] x [d, k] product); a gradient summed over the stack is one GEMM with
 * the stack in its inner dimension (dW = Xᵀ dY with K = B·H·T); a shared matrix times a
 * stack of vectors is one GEMM with a row per vector.  What is left is a loop of GEMMs:
 * the axes the result is not summed along outside, run on nnc's threads when each GEMM
 * is too small for nnr_sgemm to cut (runtime/gemm.c; each product is still computed by
 * the same one call at any thread count), those it is summed along inside, the first of
 * their iterations storing (beta = 0) and the others adding (beta = 1).  plan.c asks
 * stack_plan which GEMM argument the batch multiplies. */
#include "emit.h"

/* Merging axis i with the inner axis i + 1: every operand steps over the inner axis's
 * extent exactly when it steps along axis i once. */
static int mergeable(const stack_axis *outer, const stack_axis *inner) {
    for (int x = 0; x < 3; x++)
        if (outer->stride[x] != inner->stride[x] * inner->size) return 0;
    return 1;
}

/* The loops over the batch (if any operand has it) and the stack, outermost first, with
 * each operand's stride (elements) along them; axes of size 1 dropped, contiguous ones merged. */
static void stack_axes(const ir_node *n, stack_plan *s) {
    const ir_mm *m = &n->mm;
    int64_t mat[3] = {m->ar * m->ac, m->br * m->bc, s->p * s->q};
    int batched[3] = {n->in[0]->batched, n->in[1]->batched, n->batched};
    stack_axis ax[IR_MAXRANK + 1];
    int count = 0;
    int64_t extent[3] = {mat[0], mat[1], mat[2]};   /* one example's elements, from the innermost axis out */
    for (int i = m->srank - 1; i >= -1; i--) {
        stack_axis a = {i < 0 ? 1 : m->stack[i], i < 0, {0, 0, 0}};
        for (int x = 0; x < 3; x++) {
            int whole = i < 0 ? batched[x] : !m->one[x][i];
            a.stride[x] = whole ? extent[x] : 0;
            if (i >= 0 && whole) extent[x] *= a.size;
        }
        if (i < 0 ? (batched[0] || batched[1]) : a.size > 1) ax[count++] = a;
    }
    s->naxes = 0;   /* reversed to outermost first, merging into the inner axis kept last */
    for (int i = count - 1; i >= 0; i--) {
        stack_axis *last = s->naxes ? &s->axis[s->naxes - 1] : NULL;
        if (last && mergeable(last, &ax[i]) && !ax[i].batch) {
            last->size *= ax[i].size;
            for (int x = 0; x < 3; x++) last->stride[x] = ax[i].stride[x];
        } else {
            s->axis[s->naxes++] = ax[i];
        }
    }
}

/* The innermost loop folded into the GEMM when the operands' memory lets it. */
static void fold_inner(const ir_node *n, stack_plan *s) {
    const ir_mm *m = &n->mm;
    int64_t p = s->p, k = s->k, q = s->q;
    s->fold = STACK_LOOP;
    s->swap = 0, s->ta = m->ta, s->tb = m->tb;
    s->M = p, s->N = q, s->K = k, s->lda = m->ac, s->ldb = m->bc, s->ldc = q;
    if (!s->naxes) return;
    const stack_axis *in = &s->axis[s->naxes - 1];
    int64_t ma = m->ar * m->ac, mb = m->br * m->bc, mc = p * q;
    if (in->stride[1] == 0 && in->stride[0] == ma && in->stride[2] == mc && (!m->ta || p == 1)) {
        s->fold = STACK_ROWS;   /* op(A) of every matrix stacked into the rows: [size·p, k] */
        s->ta = 0, s->lda = k;
    } else if (in->stride[2] == 0 && in->stride[0] == ma && in->stride[1] == mb && (m->ta || k == 1) &&
               (!m->tb || k == 1)) {
        s->fold = STACK_INNER;  /* Σ op(A) op(B) = [p, size·k] · [size·k, q] */
        s->ta = 1, s->tb = 0, s->lda = p, s->ldb = q;
    } else if (in->stride[0] == 0 && in->stride[1] == mb && in->stride[2] == mc && q == 1) {
        s->fold = STACK_COLS;   /* the columns as rows: Cᵀ [size, p] = B [size, k] · op(A)ᵀ */
        s->swap = 1, s->ta = 0, s->tb = !m->ta, s->M = 1, s->N = p, s->lda = k, s->ldb = m->ac, s->ldc = p;
    } else {
        return;
    }
    s->folded = *in;
    s->naxes--;
}

void stack_plan_of(const ir_node *n, stack_plan *s) {
    const ir_mm *m = &n->mm;
    *s = (stack_plan){0};
    s->p = m->ta ? m->ac : m->ar, s->k = m->ta ? m->ar : m->ac, s->q = m->tb ? m->br : m->bc;
    stack_axes(n, s);
    fold_inner(n, s);
}

int64_t stack_by_batch(const ir_node *n, const char **arg) {
    stack_plan s;
    stack_plan_of(n, &s);
    *arg = s.fold == STACK_INNER ? "K" : "M";
    if (s.fold == STACK_LOOP || !s.folded.batch) return 0;
    return (s.fold == STACK_INNER ? s.K : s.M) * s.folded.size;
}

/* ---- the generated C ---------------------------------------------------------------- */

/* Below this many multiply-adds nnr_sgemm runs a product as one block on one thread
 * (runtime/gemm.c's gemm_blocks: 2 · NNR_GEMM_BLOCK_MACS), so the stack's loop shares
 * its products among the threads instead. */
#define STACK_ONE_BLOCK_MACS (1LL << 22)

static const char *const loop_var[] = {"i", "j", "k", "l", "r", "p"};   /* names.c reserves them */

/* An axis's extent: "4", "n", "n * 4". */
static const char *extent(emitter *e, const stack_axis *a) {
    if (!a->batch) return arena_printf(e->a, "%lld", (long long)a->size);
    return a->size == 1 ? "n" : arena_printf(e->a, "n * %lld", (long long)a->size);
}

/* "v * stride", 64-bit when the axis's whole extent can pass INT_MAX. */
static const char *step(emitter *e, const char *v, const stack_axis *a, int64_t stride) {
    int wide = a->batch ? emit_wide(e, a->size * stride) : a->size * stride > EMIT_INDEX32_MAX;
    if (stride == 1) return v;
    return arena_printf(e->a, "%s%s * %lld", wide ? "(int64_t)" : "", v, (long long)stride);
}

/* Operand x's pointer at the loops' variables. */
static const char *at(emitter *e, const char *base, const stack_plan *s, const char *const *var, int x) {
    const char *p = base;
    for (int i = 0; i < s->naxes; i++)
        if (s->axis[i].stride[x]) p = arena_printf(e->a, "%s + %s", p, step(e, var[i], &s->axis[i], s->axis[i].stride[x]));
    return p;
}

/* The stack as written in a comment: "[B, 4]". */
static const char *stack_str(emitter *e, const ir_node *n) {
    const char *t = "[";
    int first = 1;
    if (n->in[0]->batched || n->in[1]->batched) t = "[B", first = 0;
    for (int i = 0; i < n->mm.srank; i++, first = 0)
        t = arena_printf(e->a, "%s%s%lld", t, first ? "" : ", ", (long long)n->mm.stack[i]);
    return arena_printf(e->a, "%s]", t);
}

static const char *how(emitter *e, const ir_node *n, const stack_plan *s) {
    const char *a = emit_mark(e, n->in[0]);
    switch (s->fold) {
    case STACK_ROWS:  return arena_printf(e->a, "the matrices of %s stacked into the rows of one GEMM", a);
    case STACK_INNER: return "the sum over the stack as the inner dimension of one GEMM";
    case STACK_COLS:  return "one GEMM with a row per vector of the stack";
    default:          return arena_printf(e->a, "a GEMM per matrix of the stack %s", stack_str(e, n));
    }
}

/* "dq [B, 4, 64, 32] = ds [B, 4, 64, 64] @ k [B, 4, 64, 32]^T" and what is summed. */
static void comment(emitter *e, FILE *o, const ir_node *n, const stack_plan *s) {
    const ir_node *dst = n->into ? n->into : n;
    const char *summed = "";
    for (int i = 0; i < n->mm.srank; i++)
        if (n->mm.one[2][i] && n->mm.stack[i] > 1) summed = ", summed over the stack axes it is broadcast along";
    if (!n->batched && (n->in[0]->batched || n->in[1]->batched))
        summed = *summed ? ", summed over the batch and the stack axes it is broadcast along" : ", summed over the batch";
    fprintf(o, "    /* %s %s %s %s %s%s @ %s %s%s: %s%s */\n", emit_mark(e, dst), emit_shape_of(e, n),
            n->into ? "+=" : "=", emit_mark(e, n->in[0]), emit_shape_of(e, n->in[0]), n->mm.ta ? "^T" : "",
            emit_mark(e, n->in[1]), emit_shape_of(e, n->in[1]), n->mm.tb ? "^T" : "", how(e, n, s), summed);
}

static const char *num(emitter *e, int64_t v) { return arena_printf(e->a, "%lld", (long long)v); }

/* GEMM size v, times the folded axis's extent when it is the one the fold grows. */
static const char *grown(emitter *e, const stack_plan *s, int64_t v, int grows) {
    if (!grows) return num(e, v);
    int64_t by = v * s->folded.size;
    if (!s->folded.batch) return num(e, by);
    return by == 1 ? "n" : arena_printf(e->a, "n * %lld", (long long)by);
}

void emit_stack_matmul(emitter *e, FILE *o, ir_node *n) {
    stack_plan s;
    stack_plan_of(n, &s);
    comment(e, o, n, &s);
    const char *var[IR_MAXRANK + 1], *ind = "    ";
    int order[IR_MAXRANK + 1], no = 0, outer = 0;
    for (int pass = 0; pass < 2; pass++)   /* the loops the result is not summed along first */
        for (int i = 0; i < s.naxes; i++)
            if ((s.axis[i].stride[2] == 0) == pass) order[no++] = i, outer += !pass;
    for (int i = 0, named = 0; i < s.naxes; i++) var[i] = s.axis[i].batch ? "b" : loop_var[named++];
    const char *beta = emit_lit(e, n->into ? 1 : 0), *first = "";
    for (int j = outer; j < no; j++) first = arena_printf(e->a, "%s%s%s", first, *first ? " || " : "", var[order[j]]);
    if (*first && !n->into) beta = arena_printf(e->a, "%s ? %s : %s", first, emit_lit(e, 1), emit_lit(e, 0));
    if (outer && s.p * s.k * s.q < STACK_ONE_BLOCK_MACS)
        emit_omp_rows(e, o, "    ", outer > 1 ? arena_printf(e->a, " collapse(%d)", outer) : "");
    for (int j = 0; j < no; j++, ind = arena_printf(e->a, "%s    ", ind)) {
        const stack_axis *a = &s.axis[order[j]];
        fprintf(o, "%sfor (%s %s = 0; %s < %s; %s++)\n", ind, a->batch ? emit_count_type(e, a->size) : "int",
                var[order[j]], var[order[j]], extent(e, a), var[order[j]]);
    }
    const char *pa = at(e, emit_mark(e, n->in[0]), &s, var, 0), *pb = at(e, emit_mark(e, n->in[1]), &s, var, 1);
    const char *pc = at(e, emit_mark(e, n->into ? n->into : n), &s, var, 2);
    if (s.swap) {
        const char *t = pa;
        pa = pb, pb = t;
    }
    int fm = s.fold == STACK_ROWS || s.fold == STACK_COLS, fk = s.fold == STACK_INNER;
    emit_gemm(e, o, ind, s.ta, s.tb, grown(e, &s, s.M, fm), num(e, s.N), grown(e, &s, s.K, fk), pa, s.lda, pb, s.ldb,
              beta, pc, s.ldc);
}
