/* lower.c — AST to forward IR (see lower.h): statements, names and expressions, and the
 * built-in functions that are not layers (elementwise, reductions, softmax, layout).
 *
 * Statements are lowered in order, so a name must be bound before it is used, which
 * keeps the node array topological.  Errors are reported and lowering goes on with a
 * placeholder node marked bad, so the rest of the file is still checked.  A call is
 * looked up in the built-in table (builtins.c), which gives its arguments and the
 * function that lowers it; the layers, losses and regularizers are in layer_*.c and
 * losses.c, the train { } block in lower_train.c.  Names are bound to values (a tensor, a
 * number, a function, a tuple); functions, their calls, repeat and share= of a function
 * are in lower_func.c, which the expressions here hand every call of a def. */
#include "lower_internal.h"
#include "shape.h"
#include <math.h>
#include <string.h>

/* ---- names ------------------------------------------------------------------------- */

static unsigned hash(const char *s) {
    unsigned h = 2166136261u;
    while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
    return h & 255;
}

/* The model's names hash into 256 buckets; a call's few locals are one list (a table per
 * call would cost more than its names: repeat and nested calls make many calls). */
static unsigned bucket(const lower *L, binding *const *table, const char *name) {
    return table == L->scope ? 0 : hash(name);
}

static binding *lookup_in(const lower *L, binding *const *table, const char *name) {
    for (binding *b = table[bucket(L, table, name)]; b; b = b->next)
        if (strcmp(b->name, name) == 0) return b;
    return NULL;
}

/* A function call sees its own locals, then the model's names bound so far (Python's rule
 * for globals: those bound before the call, not those bound before the def). */
binding *lower_lookup(lower *L, const char *name) {
    binding *b = L->scope ? lookup_in(L, L->scope, name) : NULL;
    return b ? b : lookup_in(L, L->table, name);
}

static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 64 || lb > 64) return 99;
    int prev[65], cur[65];
    for (int j = 0; j <= lb; j++) prev[j] = j;
    for (int i = 1; i <= la; i++) {
        cur[0] = i;
        for (int j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof(int) * (size_t)(lb + 1));
    }
    return prev[lb];
}

static void closest_in(binding *const *table, int buckets, const char *name, const char **best, int *bestd) {
    for (int h = 0; h < buckets; h++)
        for (binding *b = table[h]; b; b = b->next) {
            int dist = edit_distance(name, b->name);
            if (dist <= *bestd && (!*best || dist < *bestd)) *best = b->name, *bestd = dist;
        }
}

static const char *closest_name(lower *L, const char *name) {
    const char *best = NULL;
    int bestd = (int)strlen(name) / 3 > 1 ? (int)strlen(name) / 3 : 1;   /* a typo, not another name */
    if (L->scope) closest_in(L->scope, 1, name, &best, &bestd);
    closest_in(L->table, 256, name, &best, &bestd);
    return best;
}

/* Binds name in the current scope: a function's locals may hide the model's names. */
void lower_bind(lower *L, const char *name, lvalue v, loc at) {
    binding **table = L->scope ? L->scope : L->table;
    binding *old = lookup_in(L, table, name);
    if (old) {
        diag_error(L->d, at, "'%s' is already bound (each name is bound once)", name);
        diag_note(L->d, old->at, "'%s' was bound here", name);
        return;
    }
    binding *b = arena_alloc(L->g->a, sizeof *b);
    b->name = name;
    b->v = v;
    b->at = at;
    unsigned h = bucket(L, table, name);
    b->next = table[h];
    table[h] = b;
}

static void bind(lower *L, const char *name, ir_node *n, loc at) {
    lower_bind(L, name, (lvalue){.kind = LV_TENSOR, .node = n, .at = at}, at);
}

static int check_plain_name(lower *L, const char *name, loc at) {
    if (!strchr(name, '.')) return 0;
    diag_error(L->d, at, "'%s': a name bound in the model cannot contain '.' (dotted names refer to layer parameters)", name);
    return -1;
}

/* A placeholder for an expression that failed, so its users are skipped silently. */
ir_node *lower_bad_node(lower *L, loc at) {
    ir_node *n = ir_const(L->g, 0, at);
    n->bad = 1;
    return n;
}

ir_node *lower_new_param(lower *L, const char *name, loc at, ir_param_info init) {
    ir_node *p = ir_node_new(L->g, OP_PARAM, 0, NULL, at);
    p->role = ROLE_PARAM;
    p->name = name;
    p->param = init;
    p->param_index = L->g->params.n;
    ptrvec_push(L->g->a, &L->g->params, p);
    return p;
}

/* ---- shapes ------------------------------------------------------------------------- */

#define MAX_ELEMENTS ((int64_t)1 << 40)

static int lower_shape(lower *L, const ast_expr *e, ir_shape *s) {
    s->rank = 0;
    if (!e) return 0;
    int64_t total = 1;
    for (const ast_arg *a = e->args; a; a = a->next) {
        if (s->rank == IR_MAXRANK) {
            diag_error(L->d, a->at, "a shape has at most %d dimensions", IR_MAXRANK);
            return -1;
        }
        int64_t v;
        if (lower_int_arg(L, a, "a shape dimension", 1, MAX_ELEMENTS, &v)) return -1;
        if (total > MAX_ELEMENTS / v) {
            diag_error(L->d, e->at, "this shape has more than 2^40 elements");
            return -1;
        }
        total *= v;
        s->dim[s->rank++] = v;
    }
    return 0;
}

static int lower_classes(lower *L, const ast_expr *e, int *k) {
    int64_t v;
    ast_arg tmp = {NULL, e->at, (ast_expr *)e, NULL};
    if (lower_int_arg(L, &tmp, "the class count of class(K)", 2, 1 << 24, &v)) return -1;
    *k = (int)v;
    return 0;
}

/* ---- expressions ------------------------------------------------------------------ */

void lower_unknown_name(lower *L, const char *name, loc at) {
    const char *near = closest_name(L, name);
    diag_error(L->d, at, "unknown %s '%s'%s%s%s", strchr(name, '.') ? "parameter" : "name", name,
               near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
}

/* fn of ir_maps applied to x, for the functions built from them (losses, rnn and lstm cells). */
ir_node *lower_map_of(lower *L, const char *fn, ir_node *x, loc at) {
    ir_node *n = ir_unary(L->g, OP_MAP, x, at);
    n->fn = ir_map_find(fn);
    return n;
}

ir_node *lower_view(lower *L, ir_node *x, int mode, int axis, loc at) {
    ir_node *v = ir_unary(L->g, OP_RESHAPE, x, at);
    v->view = mode;
    v->axis = axis;
    return v;
}

ir_node *call_unary(lower *L, const ast_expr *e, const callargs *ca) {
    ir_op op = (ir_op)ca->how;
    return ir_unary(L->g, op, lower_expr(L, ca->pos[0]->value), e->at);
}

ir_node *call_binary(lower *L, const ast_expr *e, const callargs *ca) {
    ir_op op = (ir_op)ca->how;
    return ir_binary(L->g, op, lower_expr(L, ca->pos[0]->value), lower_expr(L, ca->pos[1]->value), e->at);
}

/* An elementwise function of ir_maps: its tensor arguments, then its constants. */
ir_node *call_map(lower *L, const ast_expr *e, const callargs *ca) {
    int fn = ir_map_find(e->name);
    const ir_mapinfo *m = &ir_maps[fn];
    ir_node *in[3];
    for (int i = 0; i < m->nargs; i++) in[i] = lower_expr(L, ca->pos[i]->value);
    ir_node *n = ir_node_new(L->g, OP_MAP, m->nargs, in, e->at);
    n->fn = fn;
    n->attr[0] = 0.01;
    for (int k = 0; k < m->nconst; k++) {
        const ast_arg *a = lower_arg_at(ca, m->nargs + k);
        if (a &&
            lower_number_arg(L, a, arena_printf(L->g->a, "'%s' of %s", ca->keys[m->nargs + k], m->name), &n->attr[k]))
            n->bad = 1;
    }
    if (m->nconst == 2 && !n->bad && !(n->attr[0] <= n->attr[1])) {
        diag_error(L->d, e->at, "clip(x, lo, hi) needs lo <= hi");
        n->bad = 1;
    }
    return n;
}

/* gelu(x, approximate=none | tanh): the two forms are two functions of ir_maps, each
 * with its own code; approximate names the form by a bare word, as PyTorch's string. */
ir_node *call_gelu(lower *L, const ast_expr *e, const callargs *ca) {
    const ast_expr *a = ca->kw[1] ? ca->kw[1]->value : NULL;
    int tanh_form = a && a->kind == AST_NAME && !strcmp(a->name, "tanh");
    if (a && !tanh_form && !(a->kind == AST_NAME && !strcmp(a->name, "none"))) {
        diag_error(L->d, a->at, "approximate= of gelu is none (the erf form) or tanh");
        return lower_bad_node(L, e->at);
    }
    return lower_map_of(L, tanh_form ? "_gelu_tanh" : "gelu", lower_expr(L, ca->pos[0]->value), e->at);
}

/* sum, mean, max, min over every axis of an example, or over axis=k (which is dropped):
 * a reduction to the shape with that axis kept as 1, then a view without it. */
ir_node *call_reduce(lower *L, const ast_expr *e, const callargs *ca) {
    int kind = ca->how;
    int64_t axis = IR_NOAXIS;
    if (ca->kw[1] && lower_int_arg(L, ca->kw[1], "axis", -IR_MAXRANK, IR_MAXRANK - 1, &axis))
        return lower_bad_node(L, e->at);
    ir_node *x = lower_expr(L, ca->pos[0]->value), *r;
    if (kind == 'M' || kind == 'm') {
        r = ir_unary(L->g, OP_REDUCE_MAX, x, e->at);
        r->attr[0] = kind == 'M' ? 1 : -1;
    } else if (axis == IR_NOAXIS) {
        r = ir_unary(L->g, OP_SUM, x, e->at);
        r->attr[0] = 1;
        r->attr[1] = kind == 'a';   /* mean: 1/N once x's shape is known */
        return r;
    } else {
        r = ir_unary(L->g, OP_SUM_TO, x, e->at);
        r->attr[1] = kind == 'a';
    }
    r->axis = (int)axis;
    r->what = e->name;
    return axis == IR_NOAXIS ? r : lower_view(L, r, VIEW_SQUEEZE, (int)axis, e->at);
}

/* norm2(x[, axis]) = sqrt(sum(x * x)) */
ir_node *call_norm2(lower *L, const ast_expr *e, const callargs *ca) {
    int64_t axis = IR_NOAXIS;
    if (ca->kw[1] && lower_int_arg(L, ca->kw[1], "axis", -IR_MAXRANK, IR_MAXRANK - 1, &axis))
        return lower_bad_node(L, e->at);
    ir_node *x = lower_expr(L, ca->pos[0]->value);
    ir_node *sq = ir_binary(L->g, OP_MUL, x, x, e->at), *s;
    if (axis == IR_NOAXIS) {
        s = ir_unary(L->g, OP_SUM, sq, e->at);
        s->attr[0] = 1;
    } else {
        s = ir_unary(L->g, OP_SUM_TO, sq, e->at);
        s->axis = (int)axis;
        s->what = e->name;
        s = lower_view(L, s, VIEW_SQUEEZE, (int)axis, e->at);
    }
    ir_node *r = ir_unary(L->g, OP_MAP, s, e->at);
    r->fn = ir_map_find("sqrt");
    return r;
}

/* flatten(x), reshape(x, [d, ...]) (one -1 is inferred), transpose(x[, a, b]), permute(x, [axes]),
 * concat(a, b, ..., axis=k), slice(x, axis=k, start=i, end=j), split(x, n, axis=k): all on
 * the per-example axes. */
ir_node *call_flatten(lower *L, const ast_expr *e, const callargs *ca) {
    ir_node *x = lower_expr(L, ca->pos[0]->value);
    return lower_view(L, x, VIEW_FLATTEN, IR_NOAXIS, e->at);
}

/* x with axes a and b swapped: a transpose whose axes shape inference completes (ir.h, perm). */
static ir_node *swap_axes(lower *L, ir_node *x, int a, int b, loc at) {
    ir_node *n = ir_unary(L->g, OP_TRANSPOSE, x, at);
    n->perm[0] = a, n->perm[1] = b;
    n->nperm = 2;
    n->attr[0] = 1;
    return n;
}

ir_node *call_transpose(lower *L, const ast_expr *e, const callargs *ca) {
    ir_node *x = lower_expr(L, ca->pos[0]->value);
    const ast_arg *a = lower_arg_at(ca, 1), *b = lower_arg_at(ca, 2);
    if (!a && !b) return ir_unary(L->g, OP_TRANSPOSE, x, e->at);
    int64_t ia, ib;
    if (!a || !b) {
        diag_error(L->d, e->at, "transpose takes two axes to swap, transpose(x, a, b), or none (a matrix's transpose)");
        return lower_bad_node(L, e->at);
    }
    if (lower_int_arg(L, a, "an axis of transpose", -IR_MAXRANK, IR_MAXRANK - 1, &ia) ||
        lower_int_arg(L, b, "an axis of transpose", -IR_MAXRANK, IR_MAXRANK - 1, &ib))
        return lower_bad_node(L, e->at);
    return swap_axes(L, x, (int)ia, (int)ib, e->at);
}

ir_node *call_permute(lower *L, const ast_expr *e, const callargs *ca) {
    ir_node *x = lower_expr(L, ca->pos[0]->value);
    const ast_expr *axes = ca->pos[1]->value;
    if (axes->kind != AST_LIST) {
        diag_error(L->d, axes->at, "permute needs the axes as a list, like permute(x, [2, 0, 1])");
        return lower_bad_node(L, e->at);
    }
    ir_node *n = ir_unary(L->g, OP_TRANSPOSE, x, e->at);
    n->what = "permute";
    for (const ast_arg *a = axes->args; a; a = a->next) {
        int64_t v;
        if (n->nperm == IR_MAXRANK) {
            diag_error(L->d, a->at, "permute takes at most %d axes", IR_MAXRANK);
            return lower_bad_node(L, e->at);
        }
        if (lower_int_arg(L, a, "an axis of permute", -IR_MAXRANK, IR_MAXRANK - 1, &v)) return lower_bad_node(L, e->at);
        n->perm[n->nperm++] = (int)v;
    }
    if (!n->nperm) {
        diag_error(L->d, axes->at, "permute needs every axis of x, like permute(x, [2, 0, 1])");
        return lower_bad_node(L, e->at);
    }
    return n;
}

ir_node *call_reshape(lower *L, const ast_expr *e, const callargs *ca) {
    int64_t v = 0;   /* v == 0 is tested after a failed int_arg too: a bad first dimension gets both messages */
    ir_node *x = lower_expr(L, ca->pos[0]->value);
    const ast_expr *shape = ca->pos[1]->value;
    if (shape->kind != AST_LIST) {
        diag_error(L->d, shape->at, "reshape needs the new shape as a list, like reshape(x, [4, 7])");
        return lower_bad_node(L, e->at);
    }
    ir_node *r = lower_view(L, x, VIEW_GIVEN, IR_NOAXIS, e->at);
    int inferred = 0;
    for (const ast_arg *a = shape->args; a; a = a->next) {
        if (r->shape.rank == IR_MAXRANK ||
            lower_int_arg(L, a, "a dimension of reshape (or -1)", -1, (int64_t)1 << 40, &v) ||
            v == 0 || (v == -1 && inferred++)) {
            if (v == 0 || inferred > 1) diag_error(L->d, a->at, "reshape takes positive dimensions and at most one -1");
            return lower_bad_node(L, e->at);
        }
        r->shape.dim[r->shape.rank++] = v == -1 ? 0 : v;
    }
    return r;
}

/* One node joins up to IR_MAXIN operands, each copied once; more are chained. */
ir_node *call_concat(lower *L, const ast_expr *e, const callargs *ca) {
    int64_t axis = -1;
    if (ca->kw[2] && lower_int_arg(L, ca->kw[2], "axis", -IR_MAXRANK, IR_MAXRANK - 1, &axis))
        return lower_bad_node(L, e->at);
    ir_node *in[IR_MAXIN], *n = NULL;
    for (int i = 0; i < ca->npos;) {
        int k = 0;
        if (n) in[k++] = n;
        while (k < IR_MAXIN && i < ca->npos) in[k++] = lower_expr(L, ca->pos[i++]->value);
        n = ir_node_new(L->g, OP_CONCAT, k, in, e->at);
        n->axis = (int)axis;
    }
    return n;
}

ir_node *call_slice(lower *L, const ast_expr *e, const callargs *ca) {
    int64_t axis = 0, start = 0, end = 0;
    if (!ca->kw[1] || !ca->kw[2]) {
        diag_error(L->d, e->at, "slice needs axis= and start= (end= defaults to the end of the axis)");
        return lower_bad_node(L, e->at);
    }
    if (lower_int_arg(L, ca->kw[1], "axis", -IR_MAXRANK, IR_MAXRANK - 1, &axis) ||
        lower_int_arg(L, ca->kw[2], "start", -((int64_t)1 << 40), (int64_t)1 << 40, &start) ||
        (ca->kw[3] && lower_int_arg(L, ca->kw[3], "end", -((int64_t)1 << 40), (int64_t)1 << 40, &end)))
        return lower_bad_node(L, e->at);
    ir_node *n = ir_unary(L->g, OP_SLICE, lower_expr(L, ca->pos[0]->value), e->at);
    n->axis = (int)axis;
    n->attr[0] = (double)start;
    n->attr[1] = ca->kw[3] ? (double)end : 1e18;
    return n;
}

/* split(x, n, axis=k): n slices of equal length, a tuple (ca->tuple) of them. */
ir_node *call_split(lower *L, const ast_expr *e, const callargs *ca) {
    int64_t parts, axis = -1;
    ir_node *x = lower_expr(L, ca->pos[0]->value);
    if (lower_int_arg(L, ca->pos[1], "the number of parts of split", 1, (int64_t)1 << 20, &parts) ||
        (ca->kw[2] && lower_int_arg(L, ca->kw[2], "axis", -IR_MAXRANK, IR_MAXRANK - 1, &axis)))
        return lower_bad_node(L, e->at);
    shape_upto(L->g, L->d);   /* the parts' lengths come from x's shape */
    if (x->bad) return x;
    int rank = x->shape.rank, k = (int)(axis < 0 ? axis + rank : axis);
    if (k < 0 || k >= rank) {
        diag_error(L->d, e->at, "split: axis %d is out of range for %s, which has %d ax%s per example", (int)axis,
                   ir_shape_str(L->g->a, &x->shape), rank, rank == 1 ? "is" : "es");
        return lower_bad_node(L, e->at);
    }
    int64_t len = x->shape.dim[k];
    if (len % parts) {
        diag_error(L->d, e->at, "split: axis %d of %s has length %lld, which does not split into %lld equal parts", k,
                   ir_shape_str(L->g->a, &x->shape), (long long)len, (long long)parts);
        return lower_bad_node(L, e->at);
    }
    lvalue t = {.kind = LV_TUPLE, .n = (int)parts, .at = e->at};
    t.items = arena_alloc(L->g->a, sizeof(lvalue) * (size_t)parts);
    for (int64_t i = 0; i < parts; i++) {
        ir_node *s = ir_unary(L->g, OP_SLICE, x, e->at);
        s->axis = k;
        s->attr[0] = (double)(i * (len / parts));
        s->attr[1] = (double)((i + 1) * (len / parts));
        s->what = "split";
        t.items[i] = (lvalue){.kind = LV_TENSOR, .node = s, .at = e->at};
    }
    if (!ca->tuple) return lower_as_tensor(L, t, e->at);   /* says to take the parts apart */
    *ca->tuple = t;
    return t.items[0].node;
}

/* softmax and log_softmax along the last axis as always; along another, between two
 * transposes that make it the last (each a copy, of which backward transposes back). */
ir_node *call_softmax(lower *L, const ast_expr *e, const callargs *ca) {
    int64_t axis = -1;
    ir_node *x = lower_expr(L, ca->pos[0]->value);
    if (ca->kw[1] && lower_int_arg(L, ca->kw[1], "axis", -IR_MAXRANK, IR_MAXRANK - 1, &axis))
        return lower_bad_node(L, e->at);
    if (axis == -1) return ir_unary(L->g, (ir_op)ca->how, x, e->at);
    shape_upto(L->g, L->d);
    if (x->bad) return x;
    int rank = x->shape.rank, k = (int)(axis < 0 ? axis + rank : axis);
    if (k < 0 || k >= rank) {
        diag_error(L->d, e->at, "%s: axis %d is out of range for %s, which has %d ax%s per example", e->name, (int)axis,
                   ir_shape_str(L->g->a, &x->shape), rank, rank == 1 ? "is" : "es");
        return lower_bad_node(L, e->at);
    }
    if (k == rank - 1) return ir_unary(L->g, (ir_op)ca->how, x, e->at);
    ir_node *y = ir_unary(L->g, (ir_op)ca->how, swap_axes(L, x, k, rank - 1, e->at), e->at);
    return swap_axes(L, y, k, rank - 1, e->at);
}

static void consider(const char *f, const char *name, const char **best, int *bestd) {
    int dist = edit_distance(f, name);
    if (dist <= *bestd && (!*best || dist < *bestd)) *best = name, *bestd = dist;
}

/* The nearest name of the built-in table, a tie going to the earlier row. */
static const char *closest_function(const char *f) {
    const char *best = NULL;
    int bestd = (int)strlen(f) / 3 > 1 ? (int)strlen(f) / 3 : 1;
    for (const builtin *b = builtins; b->name; b++) consider(f, b->name, &best, &bestd);
    return best;
}

/* ... or of the functions made with def in scope. */
static const char *closest_def(lower *L, const char *f, const char *best) {
    int bestd = best ? edit_distance(f, best) : ((int)strlen(f) / 3 > 1 ? (int)strlen(f) / 3 : 1);
    binding **tables[2] = {L->scope, L->table};
    for (int t = 0; t < 2; t++)
        for (int h = 0; tables[t] && h < (t ? 256 : 1); h++)
            for (binding *b = tables[t][h]; b; b = b->next)
                if (b->v.kind == LV_FUNC) consider(f, b->name, &best, &bestd);
    return best;
}

/* A call: its row of the built-in table, its arguments checked against the row, then the
 * row's function, which puts a tuple it gives in *tuple (NULL: a tensor is wanted). */
static ir_node *call_builtin(lower *L, const ast_expr *e, lvalue *tuple) {
    const char *f = e->name;
    int npos = 0;
    for (const ast_arg *a = e->args; a; a = a->next) npos += !a->key;
    builtin_sig sig;
    const builtin *b = builtin_find(f, npos, &sig);
    if (!b) {
        const char *near = closest_def(L, f, closest_function(f));
        diag_error(L->d, e->at, "unknown function '%s'%s%s%s", f, near ? "; did you mean '" : "", near ? near : "",
                   near ? "'?" : "");
        return lower_bad_node(L, e->at);
    }
    callargs ca;
    const char *const *keys = sig.no_keywords ? NULL : sig.name;
    if (sig.variadic ? lower_gather_varargs(L, e, sig.required, sig.positional, keys, &ca)
                     : lower_gather_args(L, e, sig.required, sig.positional, keys, &ca))
        return lower_bad_node(L, e->at);
    ca.how = b->how;
    ca.tuple = tuple;
    /* share=NAME: the layer params of this call (not of calls in its arguments, which are
     * deeper) are NAME's */
    const char *share = L->share;
    int share_depth = L->share_depth;
    loc share_at = L->share_at;
    for (int k = 0; k < sig.nargs; k++)
        if (ca.kw[k] && !strcmp(sig.name[k], "share")) {
            const ast_expr *v = ca.kw[k]->value;
            if (v->kind != AST_NAME) {
                diag_error(L->d, v->at, "share= takes the name of an earlier binding, such as share=h1");
                return lower_bad_node(L, e->at);
            }
            L->share = v->name, L->share_depth = L->call_depth + 1, L->share_at = v->at;
        }
    L->call_depth++;
    ir_node *n = b->lower(L, e, &ca);
    L->call_depth--;
    L->share = share, L->share_depth = share_depth, L->share_at = share_at;
    return n;
}

ir_node *lower_call_builtin(lower *L, const ast_expr *e) { return call_builtin(L, e, NULL); }

lvalue lower_call_builtin_value(lower *L, const ast_expr *e) {
    lvalue t = {.kind = LV_BAD};
    ir_node *n = call_builtin(L, e, &t);
    return t.kind == LV_TUPLE ? t : (lvalue){.kind = LV_TENSOR, .node = n, .at = e->at};
}

static ir_node *lower_power(lower *L, const ast_expr *e) {
    double c;
    ir_node *x = lower_expr(L, e->lhs);
    if (lower_const_number(L, e->rhs, &c) || !isfinite(c)) {
        diag_error(L->d, e->rhs->at, "the exponent of '^' must be a constant number");
        return lower_bad_node(L, e->at);
    }
    ir_node *n = ir_unary(L->g, OP_POWC, x, e->at);
    n->attr[0] = c;
    return n;
}

ir_node *lower_expr(lower *L, const ast_expr *e) {
    switch (e->kind) {
    case AST_NUM: return ir_const(L->g, e->num, e->at);
    case AST_NAME: case AST_TUPLE: return lower_as_tensor(L, lower_value_of(L, e), e->at);
    case AST_CALL:
        if (lower_is_user_call(L, e)) return lower_as_tensor(L, lower_value_of(L, e), e->at);
        return lower_call_builtin(L, e);
    case AST_NEG: {
        double v;
        if (lower_is_literal(e) && lower_const_number(L, e, &v) == 0) return ir_const(L->g, v, e->at);
        return ir_unary(L->g, OP_NEG, lower_expr(L, e->lhs), e->at);
    }
    case AST_LIST:
        diag_error(L->d, e->at, "a list [...] is only allowed as a shape");
        return lower_bad_node(L, e->at);
    case AST_BINARY:
        break;
    }
    ir_op op;
    switch (e->op) {
    case '+': op = OP_ADD; break;
    case '-': op = OP_SUB; break;
    case '*': op = OP_MUL; break;
    case '/': op = OP_DIV; break;
    case '@': op = OP_MATMUL; break;
    default: return lower_power(L, e);
    }
    ir_node *a = lower_expr(L, e->lhs), *b = lower_expr(L, e->rhs);
    return ir_binary(L->g, op, a, b, e->at);
}

/* ---- statements ------------------------------------------------------------------- */

static ir_node *leaf(lower *L, const ast_stmt *s, ir_op op, ir_role role) {
    if (check_plain_name(L, s->name, s->name_at)) return NULL;
    ir_node *n = ir_node_new(L->g, op, 0, NULL, s->name_at);
    n->role = role;
    n->name = s->name;
    n->batched = op != OP_PARAM;
    if (lower_shape(L, s->shape, &n->shape)) n->bad = 1;
    if (s->classes) {
        n->dtype = DT_CLASS;
        if (lower_classes(L, s->classes, &n->classes)) n->bad = 1;
    }
    if (op != OP_PARAM) {
        n->io_index = L->g->io.n;
        ptrvec_push(L->g->a, &L->g->io, n);
    }
    bind(L, s->name, n, s->name_at);
    return n;
}

static const char *layer_name(lower *L, const char *owner, int layer, const char *name) {
    if (L->layers > 1) return owner ? arena_printf(L->g->a, "%s.%d.%s", owner, layer, name)
                                    : arena_printf(L->g->a, "%d.%s", layer, name);
    return owner ? arena_printf(L->g->a, "%s.%s", owner, name) : name;
}

/* Layers inside one binding are named after it: h.weight, or h.0.weight, h.1.weight.  The
 * caller empties the lists (a function's call keeps them for its own caller). */
void lower_name_layers(lower *L, const char *owner) {
    for (int i = 0; i < L->layer_params.n; i++) {
        ir_node *p = L->layer_params.v[i];
        p->name = layer_name(L, owner, (int)p->attr[1], p->name);
        bind(L, p->name, p, p->at);
    }
    for (lower_named *m = L->named; m; m = m->next) m->n->name = layer_name(L, owner, m->layer, m->n->name);
}

static void name_layer_params(lower *L, const char *owner) {
    lower_name_layers(L, owner);
    L->layer_params.n = 0;
    L->named = NULL;
    L->layers = 0;
}

static const char *layer_prefix(lower *L) {
    return L->owner ? L->owner : "layer";
}

static ir_node *lower_value(lower *L, const ast_stmt *s, const char *owner) {
    L->owner = owner;
    ir_node *n = lower_expr(L, s->value);
    name_layer_params(L, layer_prefix(L));
    L->owner = NULL;
    return n;
}

/* NAME = EXPR, or a, b = EXPR of a tuple.  A number is bound as a constant tensor, as it
 * always was at the top level (it is still a number where one is wanted). */
static void lower_bind_stmt(lower *L, const ast_stmt *s) {
    for (const ast_arg *a = s->names; a; a = a->next)
        if (check_plain_name(L, a->key, a->at)) return;
    if (check_plain_name(L, s->name, s->name_at)) return;
    L->owner = s->name;
    lvalue v = lower_value_of(L, s->value);
    name_layer_params(L, layer_prefix(L));
    L->owner = NULL;
    lower_bind_values(L, s, v);
}

static void lower_loss(lower *L, const ast_stmt *s) {
    ir_node *n = lower_value(L, s, "loss");
    if (L->g->loss) {
        diag_error(L->d, s->at, "'loss' is already bound (a model has one loss; add terms with '+')");
        return;
    }
    if (!n->name && n->role == ROLE_NONE) n->name = "loss";
    L->g->loss = n;
    L->g->loss_at = s->value->at;
}

static void lower_output(lower *L, const ast_stmt *s) {
    if (check_plain_name(L, s->name, s->name_at)) return;
    ir_node *n = lower_value(L, s, s->name);
    if (!n->name && n->role == ROLE_NONE) n->name = s->name;
    bind(L, s->name, n, s->name_at);
    ir_output *o = arena_alloc(L->g->a, sizeof *o);
    o->name = s->name;
    o->node = n;
    o->at = s->name_at;
    ptrvec_push(L->g->a, &L->g->outputs, o);
}

static void lower_param(lower *L, const ast_stmt *s) {
    if (check_plain_name(L, s->name, s->name_at)) return;
    ir_shape shape;
    int bad = lower_shape(L, s->shape, &shape);
    ir_param_info init = {shape.rank >= 2 ? INIT_GLOROT_UNIFORM : INIT_ZEROS, 0, 0, 0};
    if (s->value && (lower_init(L, s->value, &init) || lower_init_fits(L, s->value, &init, &shape, 0))) bad = 1;
    init.buffer = s->grad ? 2 : 0;   /* frozen: saved with the buffers, never trained */
    /* bound even when wrong, so its uses do not report it again as unknown */
    ir_node *p = bad ? lower_bad_node(L, s->name_at) : lower_new_param(L, s->name, s->name_at, init);
    p->shape = shape;
    bind(L, s->name, p, s->name_at);
}

/* const NAME: SHAPE = INIT: a tensor without the batch axis, made once from its initializer
 * (random ones from the train block's seed) and then only read. */
static void lower_const(lower *L, const ast_stmt *s) {
    if (check_plain_name(L, s->name, s->name_at)) return;
    ir_shape shape;
    int bad = lower_shape(L, s->shape, &shape);
    ir_param_info init = {INIT_ZEROS, 0, 0, 0};
    if (!s->value) {
        diag_error(L->d, s->name_at, "const '%s' needs an initializer: const %s: SHAPE = INIT (zeros, ones, const(v), "
                   "arange, eye, tril, triu, causal_mask, uniform(a, b), ...)", s->name, s->name);
        bad = 1;
    } else if (lower_init(L, s->value, &init) || lower_init_fits(L, s->value, &init, &shape, 1)) {
        bad = 1;
    }
    ir_node *n = bad ? lower_bad_node(L, s->name_at) : ir_node_new(L->g, OP_CONST_TENSOR, 0, NULL, s->name_at);
    n->name = s->name;
    n->shape = shape;
    n->param = init;
    bind(L, s->name, n, s->name_at);
}

static void lower_stmt(lower *L, const ast_stmt *s) {
    switch (s->kind) {
    case ST_MODEL:
        if (L->g->model) diag_error(L->d, s->at, "the model is already named '%s'", L->g->model);
        else if (check_plain_name(L, s->name, s->name_at) == 0) L->g->model = s->name, L->g->model_at = s->name_at;
        break;
    case ST_INPUT: {
        ir_node *n = leaf(L, s, OP_INPUT, ROLE_INPUT);
        if (n) n->wants_grad = s->grad;
        break;
    }
    case ST_LABEL: leaf(L, s, OP_LABEL, ROLE_LABEL); break;
    case ST_TARGET: leaf(L, s, OP_TARGET, ROLE_TARGET); break;
    case ST_PARAM: lower_param(L, s); break;
    case ST_CONST: lower_const(L, s); break;
    case ST_BIND: lower_bind_stmt(L, s); break;
    case ST_DEF: lower_def(L, s); break;
    case ST_RETURN: break;   /* only in a def's body (the grammar) */
    case ST_LOSS: lower_loss(L, s); break;
    case ST_OUTPUT: lower_output(L, s); break;
    case ST_TRAIN: lower_train(L, s); break;
    }
}

void lower_program(ir_graph *g, const ast_program *prog, diag *d) {
    lower L = {.g = g, .d = d};
    d->context = lower_call_notes;
    d->context_arg = &L;
    lower_train_defaults(&g->train);
    if (!prog->first || prog->first->kind != ST_MODEL)
        diag_error(d, prog->first ? prog->first->at : (loc){0, 0, 0, 0},
                   "a model file must start with 'model NAME'");
    for (const ast_stmt *s = prog->first; s && !diag_too_many(d); s = s->next) {
        int first = g->nodes.n;
        lower_stmt(&L, s);
        for (int i = first; i < g->nodes.n; i++) {   /* a function's nodes keep its line and note the call's */
            ir_node *n = ir_at(g, i);
            if (n->in_fn) n->call_line = s->at.line;
            else n->stmt_line = s->at.line;
        }
    }
    d->context = NULL;
    if (!g->model) g->model = "model";
    if (!g->loss && d->errors == 0)
        diag_error(d, (loc){0, 0, 0, 0}, "the model has no 'loss = ...' statement");
}
