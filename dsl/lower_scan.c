/* lower_scan.c — scan(f, xs, init): s_t = f(s_{t-1}, xs[t]) over the first axis of xs,
 * with s_{-1} = init, one set of parameters for every step, and the states stacked
 * [T, ...] as its value (docs/language.md, "Scans").
 *
 * The body is f applied once, to the loop's state tensors and the step's slice of xs
 * (ir.h, ir_loop): its nodes are built between ir_loop_begin and ir_loop_end, so the
 * generated C is one loop over t, forward and (autodiff) in reverse, whatever T is.  A
 * state may be a tuple: f returns (h, c) when init is (h0, c0), and scan returns the
 * tuple of stacked states. */
#include "lower_internal.h"
#include "shape.h"

static lvalue bad_value(loc at) { return (lvalue){.kind = LV_BAD, .at = at}; }

/* The tensors of a state value (a tensor or a tuple of tensors) into t[]; their count,
 * or -1 after an error. */
static int state_tensors(lower *L, lvalue v, ir_node **t, const char *what, loc at) {
    if (v.kind == LV_BAD) return -1;
    if (v.kind != LV_TUPLE) {
        t[0] = lower_as_tensor(L, v, at);
        return t[0]->bad ? -1 : 1;
    }
    if (v.n > IR_MAXSTATE) {
        diag_error(L->d, v.at, "%s is a tuple of %d tensors; a scan's state holds at most %d", what, v.n, IR_MAXSTATE);
        return -1;
    }
    for (int i = 0; i < v.n; i++) {
        if (v.items[i].kind == LV_TUPLE) {
            diag_error(L->d, v.items[i].at, "%s: a state is a tensor or a tuple of tensors, not a nested tuple", what);
            return -1;
        }
        t[i] = lower_as_tensor(L, v.items[i], v.items[i].at);
        if (t[i]->bad) return -1;
    }
    return v.n;
}

static lvalue tensor_value(ir_node *n, loc at) { return (lvalue){.kind = LV_TENSOR, .node = n, .at = at}; }

/* The state value f receives: a tensor, or a tuple like init. */
static lvalue state_value(lower *L, ir_node *const *s, int count, int tuple, loc at) {
    if (!tuple) return tensor_value(s[0], at);
    lvalue v = {.kind = LV_TUPLE, .n = count, .at = at};
    v.items = arena_alloc(L->g->a, sizeof(lvalue) * (size_t)count);
    for (int i = 0; i < count; i++) v.items[i] = tensor_value(s[i], at);
    return v;
}

/* f's result must be a state like init: as many tensors, each of its state's shape. */
static int check_results(lower *L, const ast_expr *e, lvalue r, ir_node *const *s, int count, int tuple,
                         ir_node **res) {
    if (r.kind == LV_BAD) return -1;
    if ((r.kind == LV_TUPLE) != tuple || (tuple && r.n != count)) {
        diag_error(L->d, e->at, "scan: the function returns %s, but the state (init) is %s",
                   r.kind == LV_TUPLE ? arena_printf(L->g->a, "a tuple of %d", r.n) : "one tensor",
                   tuple ? arena_printf(L->g->a, "a tuple of %d", count) : "one tensor");
        return -1;
    }
    if (state_tensors(L, r, res, "the function's result", e->at) < 0) return -1;
    shape_upto(L->g, L->d);
    for (int i = 0; i < count; i++) {
        if (res[i]->bad) return -1;
        if (!ir_shape_eq(&res[i]->shape, &s[i]->shape)) {
            diag_error(L->d, e->at, "scan: the function returns a state%s of shape %s, but it starts as %s: each "
                       "step must return the state it receives", tuple ? arena_printf(L->g->a, " (item %d)", i + 1) : "",
                       ir_shape_str(L->g->a, &res[i]->shape), ir_shape_str(L->g->a, &s[i]->shape));
            return -1;
        }
    }
    return 0;
}

lvalue call_scan(lower *L, const ast_expr *e) {
    const ast_arg *a[3] = {0};
    const char *share;
    int npos = 0;
    if (lower_call_share(L, e, &share)) return bad_value(e->at);
    for (const ast_arg *x = e->args; x; x = x->next) {
        if (x->key) continue;
        if (npos < 3) a[npos] = x;
        npos++;
    }
    if (npos != 3) {
        diag_error(L->d, e->at, "scan takes 3 arguments (f, xs, init), not %d", npos);
        return bad_value(e->at);
    }
    if (L->scan_depth) {
        diag_error(L->d, e->at, "a scan inside the function of another scan is not supported; scan the outer "
                   "sequence's states afterwards instead");
        return bad_value(e->at);
    }
    lvalue f = lower_value_of(L, a[0]->value);
    if (f.kind != LV_FUNC) {
        if (f.kind != LV_BAD)
            diag_error(L->d, a[0]->value->at, "scan's first argument must be a function (def), f(state, x_t)");
        return bad_value(e->at);
    }
    ir_node *xs = lower_as_tensor(L, lower_value_of(L, a[1]->value), a[1]->value->at), *init[IR_MAXSTATE];
    lvalue iv = lower_value_of(L, a[2]->value);
    int count = state_tensors(L, iv, init, "init", a[2]->value->at);
    shape_upto(L->g, L->d);
    if (xs->bad || count < 0) return bad_value(e->at);
    if (xs->shape.rank < 1 || xs->dtype == DT_CLASS) {
        diag_error(L->d, a[1]->value->at, "scan runs over the first axis of a float sequence [T, ...]; %s is %s%s",
                   xs->name ? arena_printf(L->g->a, "'%s'", xs->name) : "it", ir_shape_str(L->g->a, &xs->shape),
                   xs->dtype == DT_CLASS ? " of class indices (embed them first)" : "");
        return bad_value(e->at);
    }
    ir_graph *g = L->g;
    ir_loop *loop = ir_loop_begin(g, xs, "scan", e->at);
    ir_node *s[IR_MAXSTATE], *res[IR_MAXSTATE];
    for (int i = 0; i < count; i++) s[i] = ir_loop_state(g, loop, init[i], init[i]->shape, e->at);
    lvalue args[2] = {state_value(L, s, count, iv.kind == LV_TUPLE, a[2]->value->at),
                      tensor_value(ir_loop_x(g, loop, xs, a[1]->value->at), a[1]->value->at)};
    L->scan_depth++;
    lvalue r = lower_apply(L, &f, args, 2, NULL, share, e->at);
    L->scan_depth--;
    if (check_results(L, e, r, s, count, iv.kind == LV_TUPLE, res)) {
        ir_loop_mark(g, loop, loop->first);   /* what was built stays a loop's, never emitted */
        return bad_value(e->at);
    }
    ir_loop_end(g, loop, res, e->at);
    for (int i = 0; i < count; i++) loop->out[i]->what = "scan";
    if (iv.kind != LV_TUPLE) return tensor_value(loop->out[0], e->at);
    lvalue out = {.kind = LV_TUPLE, .n = count, .at = e->at};
    out.items = arena_alloc(g->a, sizeof(lvalue) * (size_t)count);
    for (int i = 0; i < count; i++) out.items[i] = tensor_value(loop->out[i], e->at);
    return out;
}
