/* lower_func.c — the values of the language beyond tensors, and what makes them: functions
 * (def), calls of them, tuples and destructuring, repeat(f, n, x, ...), and share=.
 *
 * A value (lvalue, lower_internal.h) is a tensor, a number, a function or a tuple.  A
 * function's body is lowered anew at every call (an inline expansion): its parameters are
 * bound to the arguments in a scope of its own, which sees the model's names bound before
 * the call.  The layers a call makes are named relative to the call as its statements go
 * (`a.weight` for `a = relu(dense(h, units))`, `weight` for the return expression's), and
 * the whole call is one layer of the statement that calls it, which prefixes the names
 * again (`b1.a.weight`), so nested calls nest their prefixes like PyTorch's module tree.
 * share=NAME makes the call's parameters as usual, then replaces each by NAME's parameter
 * of the same relative name (the shapes known by then) and drops the new ones.  The nodes
 * of a body keep the line in the function (stmt_line) and the function (in_fn); lower.c
 * adds the top-level call's line (call_line) for the generated comments. */
#include "lower_internal.h"
#include "shape.h"
#include <string.h>

#define MAX_CALL_ARGS 16
#define MAX_CALL_DEPTH 200          /* calls in calls: the C stack of lowering */
#define MAX_NODES (1 << 19)         /* a model expanding to more ops is a mistake (or a fuzzer's) */

static lvalue bad_value(loc at) { return (lvalue){.kind = LV_BAD, .at = at}; }

static lvalue tensor_value(ir_node *n, loc at) { return (lvalue){.kind = LV_TENSOR, .node = n, .at = at}; }

ir_node *lower_as_tensor(lower *L, lvalue v, loc at) {
    switch (v.kind) {
    case LV_TENSOR: return v.node;
    case LV_NUMBER: return ir_const(L->g, v.num, at);
    case LV_FUNC:
        diag_error(L->d, at, "'%s' is a function, not a tensor; call it with its arguments: %s(...)", v.fn->name,
                   v.fn->name);
        break;
    case LV_TUPLE:
        diag_error(L->d, at, "a tuple of %d values is not a tensor; take its parts apart with `a, b = ...`", v.n);
        break;
    case LV_BAD: break;
    }
    return lower_bad_node(L, at);
}

int lower_is_literal(const ast_expr *e) {
    return e->kind == AST_NUM || (e->kind == AST_NEG && lower_is_literal(e->lhs));
}

static int reserved_call(const char *name) { return !strcmp(name, "repeat") || !strcmp(name, "scan"); }

int lower_is_user_call(lower *L, const ast_expr *e) {
    if (e->kind != AST_CALL) return 0;
    if (reserved_call(e->name)) return 1;
    binding *b = lower_lookup(L, e->name);   /* a def with errors is bound bad: its calls are skipped */
    return b && (b->v.kind == LV_FUNC || (b->v.kind == LV_BAD && b->v.fn));
}

/* ---- def ------------------------------------------------------------------------------ */

static int count_args(const ast_arg *a) {
    int n = 0;
    for (; a; a = a->next) n++;
    return n;
}

/* Checks a def (its name, parameters and the place of its return) and binds its name. */
void lower_def(lower *L, const ast_stmt *s) {
    builtin_sig sig;
    if (builtin_find(s->name, 0, &sig) || reserved_call(s->name)) {
        diag_error(L->d, s->name_at, "'%s' is a built-in function; give this function another name", s->name);
        return;
    }
    if (strchr(s->name, '.')) {
        diag_error(L->d, s->name_at, "'%s': a function's name cannot contain '.'", s->name);
        return;
    }
    int bad = 0;
    for (const ast_arg *p = s->params; p; p = p->next) {
        for (const ast_arg *q = s->params; q != p; q = q->next)
            if (!strcmp(p->key, q->key)) {
                diag_error(L->d, p->at, "'%s' names two parameters of '%s'", p->key, s->name);
                bad = 1;
            }
        if (strchr(p->key, '.')) {
            diag_error(L->d, p->at, "'%s': a parameter's name cannot contain '.'", p->key);
            bad = 1;
        }
    }
    const ast_stmt *ret = NULL;
    for (const ast_stmt *b = s->body; b; b = b->next) {
        if (ret) {
            diag_error(L->d, b->at, "nothing may follow the 'return' of '%s'", s->name);
            diag_note(L->d, ret->at, "'%s' returns here", s->name);
            bad = 1;
            break;
        }
        if (b->kind == ST_RETURN) ret = b;
    }
    if (!ret) {
        diag_error(L->d, s->name_at, "'%s' has no 'return'; a function's body ends with `return EXPR`", s->name);
        bad = 1;
    }
    lower_bind(L, s->name, (lvalue){.kind = bad ? LV_BAD : LV_FUNC, .fn = s, .at = s->name_at}, s->name_at);
}

/* ---- binding values ------------------------------------------------------------------- */

static void bind_one(lower *L, const char *name, lvalue v, loc at) {
    if (v.kind == LV_NUMBER && !L->frame) v = tensor_value(ir_const(L->g, v.num, v.at), v.at);   /* as always */
    if (v.kind == LV_TENSOR && !v.node->name && v.node->role == ROLE_NONE) {
        v.node->name = name;
        if (L->frame) {   /* a local: prefixed like the call's layers, later */
            lower_named *m = arena_alloc(L->g->a, sizeof *m);
            m->n = v.node;
            m->next = L->named;
            L->named = m;
        }
    }
    lower_bind(L, name, v, at);
}

/* Binds statement s's name to v, or its names `a, b = ...` to the parts of tuple v. */
void lower_bind_values(lower *L, const ast_stmt *s, lvalue v) {
    if (!s->names) {
        bind_one(L, s->name, v, s->name_at);
        return;
    }
    int n = count_args(s->names);
    if (v.kind != LV_TUPLE || v.n != n) {
        if (v.kind != LV_BAD && !(v.kind == LV_TENSOR && v.node->bad)) {   /* a bad call said why */
            if (v.kind == LV_TUPLE)
                diag_error(L->d, s->value->at, "%d names for a tuple of %d values", n, v.n);
            else
                diag_error(L->d, s->value->at, "%d names, but the value is not a tuple", n);
        }
        for (const ast_arg *a = s->names; a; a = a->next) lower_bind(L, a->key, bad_value(a->at), a->at);
        return;
    }
    int i = 0;
    for (const ast_arg *a = s->names; a; a = a->next) bind_one(L, a->key, v.items[i++], a->at);
}

/* ---- share= ----------------------------------------------------------------------------- */

static ir_node *find_param(lower *L, const char *full) {
    binding *b = lower_lookup(L, full);
    if (b && b->v.kind == LV_BAD) return lower_bad_node(L, b->at);
    return b && b->v.kind == LV_TENSOR && b->v.node->op == OP_PARAM ? b->v.node : NULL;
}

static void no_such_param(lower *L, const char *share, const char *full, loc at) {
    if (!lower_lookup(L, share))
        diag_error(L->d, at, "share=%s: there is no binding '%s' before this", share, share);
    else
        diag_error(L->d, at, "share=%s: '%s' made no parameter '%s'", share, share, full);
}

/* The parameter NAME.<name> of share=NAME on the built-in layer being lowered, instead of a
 * new one; its shape must agree (dense's is checked by shape inference, which sizes it). */
ir_node *lower_shared_param(lower *L, const char *name, ir_shape shape, loc at) {
    const char *full = arena_printf(L->g->a, "%s.%s", L->share, name);
    ir_node *q = find_param(L, full);
    if (!q) no_such_param(L, L->share, full, L->share_at);
    else if (!q->bad && shape.rank && q->shape.rank && !ir_shape_eq(&shape, &q->shape))
        diag_error(L->d, L->share_at, "share=%s: '%s' is %s, but this layer needs %s", L->share, full,
                   ir_shape_str(L->g->a, &q->shape), ir_shape_str(L->g->a, &shape));
    else
        return q;
    L->share_depth = -1;   /* one message per call: its other parameters are made anew */
    return lower_bad_node(L, at);
}

/* After a call with share=: each new parameter replaced in the call's nodes (from nstart)
 * by the one of the same name under share, and dropped from the model's parameters. */
static void share_params(lower *L, const ptrvec *made, int pstart, int nstart, const char *share, loc at) {
    ir_graph *g = L->g;
    ir_node **with = arena_alloc(g->a, sizeof(ir_node *) * (size_t)(made->n + 1));
    for (int i = 0; i < made->n; i++) {
        ir_node *p = made->v[i];
        const char *full = arena_printf(g->a, "%s.%s", share, p->name);
        ir_node *q = find_param(L, full);
        if (!q) {
            no_such_param(L, share, full, at);
            return;
        }
        if (!q->bad && !p->bad && !ir_shape_eq(&p->shape, &q->shape)) {
            diag_error(L->d, at, "share=%s: '%s' is %s, but this call's '%s' would be %s", share, full,
                       ir_shape_str(g->a, &q->shape), p->name, ir_shape_str(g->a, &p->shape));
            return;
        }
        with[i] = q;
    }
    if (g->params.n - pstart != made->n) {
        diag_error(L->d, at, "internal error: share=%s lost track of the call's parameters", share);
        return;
    }
    for (int i = nstart; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        for (int k = 0; k < n->nin; k++)
            for (int j = 0; j < made->n; j++)
                if (n->in[k] == made->v[j]) n->in[k] = with[j];
    }
    for (int j = 0; j < made->n; j++) {   /* the new parameters become unused constants */
        ir_node *p = made->v[j];
        p->op = OP_CONST;
        p->role = ROLE_NONE;
        p->name = NULL;
        p->attr[0] = p->attr[1] = 0;
        p->shape.rank = 0;
    }
    g->params.n = pstart;
}

/* ---- calls ------------------------------------------------------------------------------ */

/* The calls being lowered, innermost first: the first few, then the outermost. */
void lower_call_notes(void *arg) {
    lower *L = arg;
    int shown = 0, left = 0;
    const lower_frame *last = NULL;
    for (const lower_frame *f = L->frame; f; f = f->up) {
        if (shown < 6) diag_note(L->d, f->at, "in this call of '%s'", f->fn->name), shown++;
        else left++, last = f;
    }
    if (last) diag_note(L->d, last->at, "in this call of '%s', the outermost, %d calls further out", last->fn->name, left);
}

static int check_call(lower *L, const lvalue *f, const lvalue *args, int nargs, loc at) {
    if (f->kind == LV_BAD) return -1;
    for (int i = 0; i < nargs; i++)
        if (args[i].kind == LV_BAD) return -1;
    if (f->kind != LV_FUNC) {
        diag_error(L->d, f->at, "this is not a function: only a function made with def can be applied here");
        return -1;
    }
    const ast_stmt *fn = f->fn;
    int np = count_args(fn->params);
    if (np != nargs) {
        diag_error(L->d, at, "'%s' takes %d argument%s, got %d", fn->name, np, np == 1 ? "" : "s", nargs);
        diag_note(L->d, fn->name_at, "'%s' is defined here", fn->name);
        return -1;
    }
    int depth = 0;
    for (const lower_frame *fr = L->frame; fr; fr = fr->up) depth++;
    if (L->too_big) return -1;   /* said once: every call after it is too big too */
    if (depth >= MAX_CALL_DEPTH || L->g->nodes.n > MAX_NODES) {
        diag_error(L->d, at, depth >= MAX_CALL_DEPTH ? "calls of functions nested more than %d deep"
                                                     : "the model expands to more than %d operations at this call",
                   depth >= MAX_CALL_DEPTH ? MAX_CALL_DEPTH : MAX_NODES);
        L->too_big = 1;
        return -1;
    }
    for (const lower_frame *fr = L->frame; fr; fr = fr->up)
        if (fr->fn == fn) {
            diag_error(L->d, at, "'%s' calls itself%s%s%s: recursion is not supported (a network has a fixed depth)",
                       fn->name, L->frame->fn != fn ? " through '" : "", L->frame->fn != fn ? L->frame->fn->name : "",
                       L->frame->fn != fn ? "'" : "");
            diag_note(L->d, fn->name_at, "'%s' is defined here", fn->name);
            return -1;
        }
    return 0;
}

/* The caller's state while a body is lowered. */
typedef struct saved_state {
    binding    **scope;
    lower_frame *frame;
    const char  *owner, *share;
    ptrvec       layer_params;
    lower_named *named;
    int          layers, call_depth, share_depth;
    loc          share_at;
} saved_state;

static saved_state enter(lower *L) {
    saved_state s = {L->scope, L->frame, L->owner, L->share, L->layer_params, L->named, L->layers,
                     L->call_depth, L->share_depth, L->share_at};
    L->scope = arena_alloc(L->g->a, sizeof(binding *));   /* one list: lower.c's bucket() */
    L->share = NULL;
    L->call_depth = 0;
    return s;
}

static void leave(lower *L, const saved_state *s) {
    L->scope = s->scope, L->frame = s->frame, L->owner = s->owner, L->share = s->share;
    L->layer_params = s->layer_params, L->named = s->named, L->layers = s->layers;
    L->call_depth = s->call_depth, L->share_depth = s->share_depth, L->share_at = s->share_at;
}

/* One statement of a body; its layer params and named nodes are added to the call's. */
static lvalue body_stmt(lower *L, const ast_stmt *st, ptrvec *made, lower_named **named) {
    int first = L->g->nodes.n;
    L->layer_params = (ptrvec){0};
    L->named = NULL;
    L->layers = 0;
    int ret = st->kind == ST_RETURN;
    L->owner = ret ? NULL : st->name;
    lvalue v = lower_value_of(L, st->value);
    lower_name_layers(L, L->owner);   /* the return expression's layers: named after the call itself */
    if (!ret) lower_bind_values(L, st, v);
    for (int i = 0; i < L->layer_params.n; i++) ptrvec_push(L->g->a, made, L->layer_params.v[i]);
    while (L->named) {
        lower_named *m = L->named;
        L->named = m->next;
        m->next = *named;
        *named = m;
    }
    for (int i = first; i < L->g->nodes.n; i++) {
        ir_node *n = ir_at(L->g, i);
        if (!n->in_fn) n->stmt_line = st->at.line, n->in_fn = L->frame->fn->name, n->call_id = L->frame->id;
    }
    return v;
}

lvalue lower_apply(lower *L, const lvalue *f, const lvalue *args, int nargs, const char *owner, const char *share,
                   loc at) {
    if (check_call(L, f, args, nargs, at)) return bad_value(at);
    const ast_stmt *fn = f->fn;
    int pstart = L->g->params.n, nstart = L->g->nodes.n;
    shape_upto(L->g, L->d);   /* the arguments' errors are the caller's: before the call is noted */
    saved_state saved = enter(L);
    lower_frame frame = {fn, at, ++L->calls, L->frame};
    L->frame = &frame;
    int i = 0;
    for (const ast_arg *p = fn->params; p; p = p->next, i++) lower_bind(L, p->key, args[i], p->at);
    ptrvec made = {0};
    lower_named *named = NULL;
    lvalue result = bad_value(at);
    for (const ast_stmt *st = fn->body; st && !diag_too_many(L->d); st = st->next) result = body_stmt(L, st, &made, &named);
    shape_upto(L->g, L->d);   /* the body's shape errors, while the call is noted */
    leave(L, &saved);
    if (result.kind != LV_BAD) result.at = at;
    if (share) share_params(L, &made, pstart, nstart, share, at);
    for (int k = 0; k < made.n && !share; k++) {
        ir_node *p = made.v[k];
        if (owner) p->name = arena_printf(L->g->a, "%s.%s", owner, p->name);
        p->attr[1] = L->layers;
        ptrvec_push(L->g->a, &L->layer_params, p);
    }
    while (named) {
        lower_named *m = named;
        named = m->next;
        if (owner) m->n->name = arena_printf(L->g->a, "%s.%s", owner, m->n->name);
        m->layer = L->layers;
        m->next = L->named;
        L->named = m;
    }
    if (made.n && !share) L->layers++;
    return result;
}

/* The keyword share=NAME of a user function call, repeat or scan; the others are refused. */
int lower_call_share(lower *L, const ast_expr *e, const char **share) {
    *share = NULL;
    for (const ast_arg *a = e->args; a; a = a->next) {
        if (!a->key) continue;
        if (strcmp(a->key, "share") != 0) {
            diag_error(L->d, a->at, "'%s' has no argument '%s'; its arguments are given by position, and share= is "
                       "its only keyword", e->name, a->key);
            return -1;
        }
        if (a->value->kind != AST_NAME) {
            diag_error(L->d, a->value->at, "share= takes the name of an earlier binding, such as share=h1");
            return -1;
        }
        *share = a->value->name;
    }
    return 0;
}

/* The positional arguments of e as values (and pos, their syntax); their count, or -1. */
static int call_values(lower *L, const ast_expr *e, lvalue *out, const ast_arg **pos) {
    int n = 0;
    for (const ast_arg *a = e->args; a; a = a->next) {
        if (a->key) continue;
        if (n == MAX_CALL_ARGS) {
            diag_error(L->d, a->at, "a call takes at most %d arguments", MAX_CALL_ARGS);
            return -1;
        }
        if (pos) pos[n] = a;
        out[n++] = lower_value_of(L, a->value);
    }
    return n;
}

static lvalue call_user(lower *L, const ast_expr *e, const lvalue *f) {
    const char *share;
    lvalue args[MAX_CALL_ARGS];
    if (lower_call_share(L, e, &share)) return bad_value(e->at);
    int n = call_values(L, e, args, NULL);
    if (n < 0) return bad_value(e->at);
    return lower_apply(L, f, args, n, NULL, share, e->at);
}

/* repeat(f, n, x, ARGS...): x = f(x, ARGS...) n times, each application with its own
 * parameters numbered like nn.Sequential's (0.…, 1.…); together one layer of the statement. */
static lvalue call_repeat(lower *L, const ast_expr *e) {
    const char *share;
    const ast_arg *pos[MAX_CALL_ARGS];
    lvalue vals[MAX_CALL_ARGS], args[MAX_CALL_ARGS];
    if (lower_call_share(L, e, &share)) return bad_value(e->at);
    int n = call_values(L, e, vals, pos);
    if (n < 0) return bad_value(e->at);
    if (n < 3) {
        diag_error(L->d, e->at, "repeat takes at least 3 arguments (repeat(f, n, x, ARGS...)), got %d", n);
        return bad_value(e->at);
    }
    int64_t times;
    if (lower_int_arg(L, pos[1], "the count of repeat", 1, 4096, &times)) return bad_value(e->at);
    if (vals[0].kind != LV_FUNC && vals[0].kind != LV_BAD) {
        diag_error(L->d, pos[0]->value->at, "repeat applies a function made with def; this is not one");
        return bad_value(e->at);
    }
    for (int i = 2; i < n; i++) args[i - 2] = vals[i];
    int layer = L->layers, made = 0;
    for (int64_t i = 0; i < times && args[0].kind != LV_BAD; i++) {
        L->layers = layer;
        int before = L->layer_params.n;
        const char *owner = arena_printf(L->g->a, "%lld", (long long)i);
        const char *sh = share ? arena_printf(L->g->a, "%s.%lld", share, (long long)i) : NULL;
        args[0] = lower_apply(L, &vals[0], args, n - 2, owner, sh, e->at);
        made |= L->layer_params.n > before;
        ir_node *y = args[0].kind == LV_TENSOR ? args[0].node : NULL;
        if (y && i + 1 < times && !y->name && y->role == ROLE_NONE) {   /* a step's output: h.0, h.1, ... */
            y->name = owner;
            lower_named *m = arena_alloc(L->g->a, sizeof *m);
            *m = (lower_named){y, layer, L->named};
            L->named = m;
        }
    }
    L->layers = layer + made;
    return args[0];
}

/* ---- values ------------------------------------------------------------------------------ */

static lvalue name_value(lower *L, const ast_expr *e) {
    binding *b = lower_lookup(L, e->name);
    if (b) {
        lvalue v = b->v;
        v.at = e->at;
        return v;
    }
    builtin_sig sig;
    if (builtin_find(e->name, 0, &sig) || reserved_call(e->name))
        diag_error(L->d, e->at, "'%s' is a built-in function; only a function made with def is a value", e->name);
    else
        lower_unknown_name(L, e->name, e->at);
    return bad_value(e->at);
}

lvalue lower_value_of(lower *L, const ast_expr *e) {
    double v;
    switch (e->kind) {
    case AST_NAME: return name_value(L, e);
    case AST_NUM: return (lvalue){.kind = LV_NUMBER, .num = e->num, .at = e->at};
    case AST_NEG:
        if (lower_is_literal(e) && lower_const_number(L, e, &v) == 0)
            return (lvalue){.kind = LV_NUMBER, .num = v, .at = e->at};
        break;
    case AST_TUPLE: {
        lvalue t = {.kind = LV_TUPLE, .n = count_args(e->args), .at = e->at};
        t.items = arena_alloc(L->g->a, sizeof(lvalue) * (size_t)t.n);
        int i = 0;
        for (const ast_arg *a = e->args; a; a = a->next) {
            t.items[i] = lower_value_of(L, a->value);
            if (t.items[i++].kind == LV_BAD) t.kind = LV_BAD;
        }
        return t;
    }
    case AST_CALL:
        if (!lower_is_user_call(L, e)) return lower_call_builtin_value(L, e);
        if (!strcmp(e->name, "repeat") || !strcmp(e->name, "scan")) {
            binding *b = lower_lookup(L, e->name);
            if (!b || b->v.kind != LV_FUNC) return e->name[0] == 'r' ? call_repeat(L, e) : call_scan(L, e);
        }
        return call_user(L, e, &lower_lookup(L, e->name)->v);
    default: break;
    }
    return tensor_value(lower_expr(L, e), e->at);
}
