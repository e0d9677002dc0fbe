/* emit_scan.c — a scan's loops: `for (int t = 0; t < T; t++)` around its body in the
 * forward pass, and backpropagation through time written as such in the backward pass,
 * `for (int t = T - 1; t >= 0; t--)` around the body's gradients (ir.h, ir_loop).
 *
 * A body's tensors are ordinary tensors to every kernel: the loop declares, at the top
 * of each step, a pointer to step t's copy of each one the step reads (the forward
 * body's tensors are stored once per step, plan.c), so the kernels inside are those of
 * any other block.  The ops of the loop itself are copies: the state a step starts from
 * (the initial state, or the state the step before ended with), the step's slice of the
 * sequence, the state written into the stacked output; backward, the state's gradient
 * (the output's at t plus the carry from step t+1), the slice's gradient written into
 * the sequence's, and the parameters' gradients added up over the steps. */
#include "emit.h"
#include <stdlib.h>
#include <string.h>

/* "n" or "1": the examples a loop over the batch runs, for a batched tensor or not. */
static const char *examples(const ir_node *x) { return x->batched ? "n" : "1"; }

/* Step t's part of a stacked [T, ...] tensor x of one example b: its offset. */
static const char *at_step(emitter *e, const ir_node *x) {
    int64_t per = ir_numel(&x->shape), step = per / x->shape.dim[0];
    return arena_printf(e->a, "%s + t * %lld", emit_times(e, "b", per), (long long)step);
}

/* A loop over n's elements, n[i] `op` x at i, x read as any expression (broadcast, inlined). */
static void emit_loop_of(emitter *e, FILE *o, ir_node *n, ir_node *x, const char *ind, const char *op) {
    ictx c = emit_layout_ctx(n);
    const ir_node *roots[1] = {x};
    emit_choose_mode(&c, roots, 1, 1);
    const char *body = emit_open_loops(e, o, &c, ind, 1);
    emit_stmt_open(e);
    const char *v = emit_read_at(e, x, &c);
    emit_stmt_close(e, o, body, arena_printf(e->a, "%s[%s] %s %s;", emit_mark(e, n), emit_index_of(e, n, &c), op, v));
}

/* A step's state: the initial state at t = 0 (broadcast), then the state step t-1 ended
 * with, which is the result's copy of the step before. */
static void emit_state(emitter *e, FILE *o, ir_node *n) {
    const ir_loop *l = n->loop;
    ir_node *init = n->in[0], *res = l->result[(int)n->attr[0]];
    long long numel = (long long)ir_numel(&n->shape);
    fprintf(o, "    /* %s %s: the state step t starts from, %s at t = 0 */\n", emit_mark(e, n), emit_shape_of(e, n),
            emit_who(e, init));
    fprintf(o, "    if (t > 0) {\n        memcpy(%s, %s - %lld, (size_t)%s * %lld * sizeof *%s);   /* %s of step t-1 */\n",
            emit_mark(e, n), emit_mark(e, res), (long long)res->step_stride, examples(n), numel, emit_mark(e, n),
            emit_mark(e, res));
    fprintf(o, "    } else {\n");
    emit_loop_of(e, o, n, init, "        ", "=");
    fprintf(o, "    }\n");
}

/* The copies between a step's tensor and step t of a stacked [T, ...] one, one example's
 * run at a time: the step's slice of the sequence (scan_x), the state the step ends with
 * into the stacked output (scan_out), the slice's gradient into the sequence's (scan_dx). */
static void emit_step_copy(emitter *e, FILE *o, ir_node *n) {
    int into_stack = n->op != OP_SCAN_X;
    ir_node *in = n->in[0], *step = into_stack ? in : n, *stack = into_stack ? n : in;
    const char *step_at = arena_printf(e->a, "%s + %s", emit_mark(e, step), emit_times(e, "b", ir_numel(&step->shape)));
    const char *stack_at = arena_printf(e->a, "%s + %s", emit_mark(e, stack), at_step(e, stack));
    const char *what = n->op == OP_SCAN_X ? arena_printf(e->a, " = %s[t], the step's slice of the sequence", emit_who(e, in))
                       : n->op == OP_SCAN_OUT ? ": step t's state, stacked" : " at step t: the gradient of the step's slice";
    fprintf(o, "    /* %s %s%s */\n", emit_mark(e, n), emit_shape_of(e, n), what);
    fprintf(o, "    for (int b = 0; b < %s; b++)\n        memcpy(%s, %s, %lld * sizeof(%s));\n", examples(step),
            into_stack ? stack_at : step_at, into_stack ? step_at : stack_at, (long long)ir_numel(&step->shape), e->T);
}

/* The gradient of step t's state: the stacked output's gradient at t, plus what step
 * t+1 sent back through the state it started from (none at the last step). */
static void emit_seed(emitter *e, FILE *o, ir_node *n) {
    const ir_loop *l = n->loop;
    ir_node *carry = l->carry[(int)n->attr[0]], *dout = n->nin ? n->in[0] : NULL;
    long long per = (long long)ir_numel(&n->shape);
    fprintf(o, "    /* %s %s: d of the state step t ends with = %s%s%s */\n", emit_mark(e, n), emit_shape_of(e, n),
            dout ? arena_printf(e->a, "%s[t]", emit_who(e, dout)) : "",
            dout && carry ? " + " : "", carry ? arena_printf(e->a, "what step t+1 sent back (%s)", carry->cname) : "");
    const char *from_out = dout ? arena_printf(e->a, "%s[%s + i]", emit_mark(e, dout), at_step(e, dout)) : NULL;
    const char *from_next = carry ? arena_printf(e->a, "(t < %lld ? %s[b * %lld + i] : %s)", (long long)l->steps - 1,
                                                 emit_mark(e, carry), per, emit_lit(e, 0)) : NULL;
    fprintf(o, "    for (int b = 0; b < %s; b++)\n        for (int i = 0; i < %lld; i++)\n", examples(n), per);
    fprintf(o, "            %s[b * %lld + i] = %s%s%s;\n", emit_mark(e, n), per, from_out ? from_out : "",
            from_out && from_next ? " + " : "", from_next ? from_next : (from_out ? "" : emit_lit(e, 0)));
}

static void emit_acc(emitter *e, FILE *o, ir_node *n) {
    ir_node *x = n->in[0];
    fprintf(o, "    /* %s %s += step t's part */\n", emit_mark(e, n), emit_shape_of(e, n));
    emit_loop_of(e, o, n, x, "    ", "+=");
}

void emit_scan_op(emitter *e, FILE *o, ir_node *n) {
    switch (n->op) {
    case OP_SCAN_STATE: emit_state(e, o, n); break;
    case OP_SCAN_X: case OP_SCAN_OUT: case OP_SCAN_DX: emit_step_copy(e, o, n); break;
    case OP_SCAN_SEED: emit_seed(e, o, n); break;
    case OP_SCAN_ACC: emit_acc(e, o, n); break;
    default: break;
    }
}

/* Every line of text, indented four more spaces. */
static void indented(FILE *o, const char *text) {
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        if (len) fprintf(o, "    %.*s", (int)len, p);
        if (p[len] == '\n') fputc('\n', o), len++;
        p += len;
    }
}

int emit_loop(emitter *e, FILE *o, ir_loop *l, fn_kind k) {
    ir_graph *g = e->g;
    const ir_loop *f = l->backward ? l->fwd : l;
    int line = l->line;
    fprintf(o, "\n    /* line %d: %s\n     * %s%s: %s */\n", line, emit_source_line(e, line),
            emit_comment_text(e, l->what, strlen(l->what)),
            l->call_line ? arena_printf(e->a, " (called at line %d)", l->call_line) : "",
            l->backward ? arena_printf(e->a, "backpropagation through time, the %lld steps in reverse: step t's "
                                       "gradients, and what it sends back to step t-1", (long long)l->steps)
                        : arena_printf(e->a, "a loop over the %lld steps, one set of parameters for every step",
                                       (long long)l->steps));
    e->last_line = line;
    for (int i = l->first; i <= l->last; i++) {   /* the sums over the steps start at zero */
        ir_node *n = ir_at(g, i);
        if (n->op == OP_SCAN_ACC && emit_in_fn(n, k))
            fprintf(o, "    memset(%s, 0, %s * sizeof *%s);\n", emit_mark(e, n),
                    n->batched ? emit_times(e, "(size_t)n", ir_numel(&n->shape))
                               : arena_printf(e->a, "%lld", (long long)ir_numel(&n->shape)),
                    emit_mark(e, n));
    }
    char *text = NULL;
    size_t len = 0;
    FILE *body = open_memstream(&text, &len);
    for (int i = l->first; i <= l->last; i++) {
        ir_node *n = ir_at(g, i);
        if (emit_in_fn(n, k) && !n->folded) emit_block(e, body, n, k);
    }
    fclose(body);
    if (l->backward) fprintf(o, "    for (int t = %lld; t >= 0; t--) {\n", (long long)l->steps - 1);
    else fprintf(o, "    for (int t = 0; t < %lld; t++) {\n", (long long)l->steps);
    for (int i = f->first; i <= f->last; i++) {   /* step t's copy of each step tensor it reads */
        ir_node *x = ir_at(g, i);
        if (!e->used[i] || !x->per_step) continue;
        e->used[i] = 0;
        fprintf(o, "        %s *restrict %s = m->acts + %lld + (size_t)t * %lld;   /* %s at step t */\n", e->T,
                x->cname, (long long)x->offset, (long long)x->step_stride, emit_shape_of(e, x));
    }
    indented(o, text);
    fprintf(o, "    }\n");
    free(text);
    e->last_line = 0;
    return l->last;
}
