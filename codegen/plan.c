/* plan.c — the memory plan: every materialized tensor gets a block and an offset,
 * fixed at compile time, so the generated code allocates once (in NAME_new) and never
 * inside a training step.  Parameters are laid out in declaration order in one block
 * and their gradients at the same offsets in a second, which lets the optimizer update
 * every parameter in one loop.  Activations and backward temporaries share a third
 * block; each batched tensor holds BATCH examples, and a node that needs working memory
 * (a direct convolution, a convolution's gradients: fuse.c) gets it right after its own
 * tensor, if it has one.
 * Offsets are aligned to 64 bytes.  The optimizer's state is a fourth block, its size
 * given here for the emitter and --summary alike.
 * For training no buffer is reused: the activation block is the sum of the tensors; with
 * --infer-only, tensors whose lifetimes in the inference pass do not overlap share memory
 * (plan_reuse).  A tensor of
 * a scan's forward body is stored once per step, step_stride elements apart.
 * Sizes are 64-bit and saturate at INT64_MAX instead of wrapping, so a plan too large
 * for any machine is refused (plan_check_memory) rather than printed small. */
#include "codegen.h"
#include <stdlib.h>
#include <string.h>

#define ALIGN 16   /* elements: 64 bytes of floats */
#define PLAN_INT_MAX 2147483647LL   /* BLAS's sizes are int */

static int64_t sat_add(int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; }
static int64_t sat_mul(int64_t a, int64_t b) { return b && a > INT64_MAX / b ? INT64_MAX : a * b; }
static int64_t align_up(int64_t v) { return v > INT64_MAX - ALIGN ? INT64_MAX : (v + ALIGN - 1) / ALIGN * ALIGN; }

/* ---- --infer-only: tensors whose lifetimes do not overlap share memory ------------- */

/* A block of the inference pass's memory: a tensor, or a node's working memory, live from
 * the first node that writes it to the last that reads it (indices of the graph, which the
 * pass runs in order). */
typedef struct span { ir_node *n; int scratch, first, last; int64_t size, offset; } span;

static int by_first(const void *x, const void *y) {
    const span *a = x, *b = y;
    return a->first != b->first ? (a->first > b->first) - (a->first < b->first) : (a->n->id > b->n->id) - (a->n->id < b->n->id);
}

/* Lifetimes, conservatively: a node's memory is live from the first node whose code writes
 * it (itself, or the producer whose code writes it as an epilogue, a pooling or a sum:
 * epi, pooled, into, also) to the last node that reads it, a tensor computed inside its
 * consumer's loop or a view reading it where that consumer runs.  Whatever a scan's loop
 * touches, a const tensor, an output (predict copies it after the pass) and what another
 * node's code computes (folded) live through the whole pass. */
static void lifetimes(ir_graph *g, int *first, int *last) {
    int nn = g->nodes.n, end = nn;
    int *use = malloc(sizeof *use * (size_t)(nn + 1));
    for (int i = 0; i < nn; i++) first[i] = last[i] = i, use[i] = -1;
    for (int i = 0; i < nn; i++) {
        ir_node *q = ir_at(g, i);
        if (!q->in_infer) continue;
        ir_node *targets[3 + 64] = {q->epi, q->pooled, q->into};
        int k = 3;
        for (ir_node *a = q->also; a && k < 3 + 64; a = a->also) targets[k++] = a;
        for (int t = 0; t < k; t++) {
            if (!targets[t]) continue;
            int id = targets[t]->id;
            if (i < first[id]) first[id] = i;
            if (i > last[id]) last[id] = i;
            if (q->loop) first[id] = 0, last[id] = end;
        }
    }
    for (int i = 0; i < g->outputs.n; i++) last[((ir_output *)g->outputs.v[i])->node->id] = end;
    for (int i = nn - 1; i >= 0; i--) {   /* consumers before their inputs */
        ir_node *c = ir_at(g, i);
        if (!c->in_infer) continue;
        int pinned = c->loop || c->folded || c->keep || c->per_step || c->op == OP_CONST_TENSOR;
        if (pinned) first[i] = 0, last[i] = end;
        /* when c's value is read: its own block, or (computed inline, a view) its readers' */
        int at = pinned ? end : c->mem == MEM_NONE && !c->epi && !c->into ? (use[i] > i ? use[i] : i) : i;
        for (int k = 0; k < c->nin; k++) {
            int x = c->in[k]->id;
            if (at > use[x]) use[x] = at;
            if (at > last[x]) last[x] = at;
        }
    }
    free(use);
}

/* Places each block at the lowest offset where it meets no block live at the same time
 * (first fit, in order of first use), 64-byte aligned. */
static void plan_reuse(ir_graph *g) {
    int nn = g->nodes.n, count = 0;
    int *first = malloc(sizeof *first * (size_t)(nn + 1)), *last = malloc(sizeof *last * (size_t)(nn + 1));
    span *s = malloc(sizeof *s * (size_t)(2 * nn + 1));
    lifetimes(g, first, last);
    for (int i = 0; i < nn; i++) {
        ir_node *n = ir_at(g, i);
        if (!n->in_infer) continue;
        int64_t size = align_up(sat_mul(ir_numel(&n->shape), n->batched ? g->train.batch : 1));
        if (n->mem == MEM_ACT)   /* a scan body's tensor: one per step (step_stride, set above) */
            s[count++] = (span){n, 0, first[i], last[i], n->per_step ? sat_mul(size, n->loop->steps) : size, 0};
        if (n->scratch) s[count++] = (span){n, 1, first[i], i > last[i] ? i : last[i], align_up(n->scratch), 0};
    }
    qsort(s, (size_t)count, sizeof *s, by_first);
    int64_t top = 0;
    span **live = malloc(sizeof *live * (size_t)(count + 1));
    for (int a = 0; a < count; a++) {
        int nlive = 0;   /* the placed blocks whose lifetimes meet this one's, by offset */
        for (int b = 0; b < a; b++)
            if (s[b].first <= s[a].last && s[a].first <= s[b].last) {
                int j = nlive++;
                while (j > 0 && live[j - 1]->offset > s[b].offset) live[j] = live[j - 1], j--;
                live[j] = &s[b];
            }
        int64_t at = 0;
        for (int j = 0; j < nlive && sat_add(at, s[a].size) > live[j]->offset; j++)
            if (sat_add(live[j]->offset, live[j]->size) > at) at = sat_add(live[j]->offset, live[j]->size);
        s[a].offset = at;
        if (s[a].scratch) s[a].n->scratch_offset = at;
        else s[a].n->offset = at;
        if (sat_add(at, s[a].size) > top) top = sat_add(at, s[a].size);
    }
    g->act_size = top;
    free(live);
    free(s);
    free(first);
    free(last);
}

void plan_memory(ir_graph *g) {
    int64_t off = 0;
    /* trainable parameters first, so the optimizer's loop stops before the buffers */
    for (int buffers = 0; buffers < 2; buffers++) {
        for (int i = 0; i < g->params.n; i++) {
            ir_node *p = g->params.v[i];
            if ((p->param.buffer != 0) != buffers) continue;   /* frozen ones go with the buffers */
            p->offset = off;
            off = align_up(sat_add(off, ir_numel(&p->shape)));
            /* the gradient lives at the same offset of the gradient block */
            if (p->grad && p->grad->mem == MEM_ACT) {
                p->grad->mem = MEM_GRAD;
                p->grad->offset = p->offset;
            }
        }
        if (!buffers) g->train_size = off;
    }
    g->param_size = off;
    off = 0;
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if (n->mem != MEM_ACT && !n->scratch) continue;
        if (g->infer_only && !n->in_infer) continue;   /* --infer-only: RAM is inference's activations */
        if (n->mem == MEM_ACT) {
            int64_t size = align_up(sat_mul(ir_numel(&n->shape), n->batched ? g->train.batch : 1));
            n->offset = off;
            /* a scan body's tensor: one per step, the backward loop reads each step's */
            n->step_stride = n->per_step ? size : 0;
            off = sat_add(off, n->per_step ? sat_mul(size, n->loop->steps) : size);
        }
        n->scratch_offset = off;
        off = align_up(sat_add(off, n->scratch));
    }
    g->act_size = off;
    if (g->infer_only) plan_reuse(g);
}

/* The end of the parameters that are not frozen: with --weights the embedded target keeps
 * the frozen ones, which lie after the trainable ones, in flash (emit_embedded.c). */
int64_t plan_unfrozen_end(const ir_graph *g) {
    int64_t end = 0;
    for (int i = 0; i < g->params.n; i++) {
        const ir_node *p = g->params.v[i];
        if (p->param.buffer != 2 && p->offset + ir_numel(&p->shape) > end) end = p->offset + ir_numel(&p->shape);
    }
    return end;
}

int plan_state_slots(int opt) {
    switch (opt) {
    case 0: return 0;                  /* sgd */
    case 1: case 2: case 3: case 4: return 1;   /* momentum, nesterov, adagrad, rmsprop */
    default: return 2;                 /* adadelta, adam, adamax, nadam */
    }
}

/* nadam (8) also keeps the running product of its momentum coefficients, a double, in
 * two more elements (room for it in f32), so a checkpoint of the block is complete. */
int64_t plan_state_size(const ir_graph *g) {
    return sat_add(sat_mul(plan_state_slots(g->train.opt), g->train_size), g->train.opt == 8 ? 2 : 0);
}

int64_t plan_total_bytes(const ir_graph *g) {
    int64_t elements = sat_add(sat_add(sat_mul(2, g->param_size), plan_state_size(g)), g->act_size);
    return sat_mul(elements, g->f64 ? 8 : 4);
}

/* ---- what the generated C can represent ------------------------------------------ */

/* The GEMM argument a product's batch multiplies, as emit_matmul and emit_dense write
 * the call (keep the forms in step): M when the batch stacks the rows, K when it stacks
 * the inner dimension; 0 when its GEMMs are per example (sizes shape.c already bounds). */
static int64_t stacked_by_batch(const ir_node *n, const char **arg) {
    *arg = "M";
    if (n->op == OP_DENSE) {
        const ir_node *x = n->in[0];
        return x->batched ? ir_numel(&x->shape) / x->shape.dim[x->shape.rank - 1] : 0;
    }
    if (n->op != OP_MATMUL || n->direct) return 0;
    if (n->mm.srank) return stack_by_batch(n, arg);
    ir_mm m = n->mm;
    int64_t p = m.ta ? m.ac : m.ar, k = m.ta ? m.ar : m.ac, q = m.tb ? m.br : m.bc;
    int ab = n->in[0]->batched, bb = n->in[1]->batched, ob = n->batched;
    if (n->sparse_a) {
        if (fuse_sparse_form(n) == 1) return p;
        *arg = "K";
        return k;
    }
    if (n->scratch) return 0;   /* a convolution's gradients: per example */
    if (ob && ab && !bb && (!m.ta || p == 1)) return p;
    if (ob && !ab && bb && q == 1) return 1;
    *arg = "K";
    if (!ob && ab && bb && (m.ta || k == 1) && (!m.tb || k == 1)) return k;
    return 0;
}

static const char *product_called(ir_graph *g, const ir_node *n) {
    const ir_node *f = n->grad_of;
    if (n->name) return arena_printf(g->a, "'%s'", n->name);
    if (f && f->name) return arena_printf(g->a, "the gradient of '%s'", f->name);
    return n->op == OP_DENSE ? "dense" : "'@'";
}

int plan_check_sizes(ir_graph *g, diag *d) {
    int64_t batch = g->train.batch;
    int said[2] = {0, 0};   /* the last line told of M, of K: a statement's products repeat them */
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        const char *arg;
        int64_t per = stacked_by_batch(n, &arg);
        if (per == 0 || batch * per <= PLAN_INT_MAX || said[*arg == 'K'] == n->at.line) continue;
        said[*arg == 'K'] = n->at.line;
        diag_error(d, n->at, "%s is computed by a GEMM whose %s is the batch (%lld) times %lld = %lld, more than "
                   "BLAS's int takes (2^31-1 = %lld); a batch of at most %lld fits", product_called(g, n), arg,
                   (long long)batch, (long long)per, (long long)(batch * per), PLAN_INT_MAX, PLAN_INT_MAX / per);
    }
    return d->errors;
}

/* ---- the memory limit (--max-memory) --------------------------------------------- */

const char *plan_human_bytes(arena *a, int64_t bytes) {
    static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 6) v /= 1024, u++;
    return u ? arena_printf(a, "%.1f %s", v, unit[u]) : arena_printf(a, "%lld bytes", (long long)bytes);
}

/* The largest activations first, for the notes under the error. */
static int by_size_desc(const void *x, const void *y) {
    int64_t a = ((const int64_t *)x)[0], b = ((const int64_t *)y)[0];
    return a < b ? 1 : a > b ? -1 : 0;
}

static void note_largest(ir_graph *g, diag *d, int64_t eb, int count) {
    int64_t (*rows)[2] = malloc(sizeof *rows * (size_t)(g->nodes.n + 1));
    int nrows = 0;
    if (!rows) return;
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if (n->mem != MEM_ACT && !n->scratch) continue;
        if (g->infer_only && !n->in_infer) continue;   /* --infer-only: RAM is inference's activations */
        int64_t el = n->mem == MEM_ACT ? sat_mul(ir_numel(&n->shape), n->batched ? g->train.batch : 1) : 0;
        if (n->per_step) el = sat_mul(el, n->loop->steps);
        rows[nrows][0] = sat_mul(sat_add(el, n->scratch), eb);
        rows[nrows++][1] = i;
    }
    qsort(rows, (size_t)nrows, sizeof *rows, by_size_desc);
    for (int r = 0; r < nrows && r < count; r++) {
        ir_node *n = ir_at(g, (int)rows[r][1]);
        const char *who = n->name ? arena_printf(g->a, "'%s'", n->name)
                          : n->grad_of && n->grad_of->name ? arena_printf(g->a, "the gradient of '%s'", n->grad_of->name)
                          : arena_printf(g->a, "a '%s'", ir_op_name(n));
        if (n->mem == MEM_ACT)
            diag_note(d, n->at, "%s %s takes %s of the activations%s%s", who, ir_node_shape_str(g->a, n),
                      plan_human_bytes(g->a, rows[r][0]), n->per_step ? ", one per step of its scan" : "",
                      n->scratch ? " (with its working memory)" : "");
        else
            diag_note(d, n->at, "%s %s needs %s of working memory in the activations", who,
                      ir_node_shape_str(g->a, n), plan_human_bytes(g->a, rows[r][0]));
    }
    free(rows);
}

int plan_check_memory(ir_graph *g, int64_t limit, const char *limit_from, diag *d) {
    int64_t total = plan_total_bytes(g), eb = g->f64 ? 8 : 4;
    if (limit <= 0 || total <= limit) return 0;
    arena *a = g->a;
    diag_error(d, g->model_at, "the model's memory plan needs %s (%lld bytes), more than the limit of %s (%lld bytes, "
               "%s): params %s, grads %s, optimizer state %s, activations at batch %d %s",
               total == INT64_MAX ? "more than 2^63 bytes" : plan_human_bytes(a, total), (long long)total,
               plan_human_bytes(a, limit), (long long)limit, limit_from, plan_human_bytes(a, sat_mul(g->param_size, eb)),
               plan_human_bytes(a, sat_mul(g->param_size, eb)), plan_human_bytes(a, sat_mul(plan_state_size(g), eb)),
               g->train.batch, plan_human_bytes(a, sat_mul(g->act_size, eb)));
    note_largest(g, d, eb, 3);
    return 1;
}
