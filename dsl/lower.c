/* lower.c — AST to forward IR (see lower.h).
 *
 * Statements are lowered in order, so a name must be bound before it is used, which
 * keeps the node array topological.  Errors are reported and lowering goes on with a
 * placeholder node marked bad, so the rest of the file is still checked. */
#include "lower.h"
#include "shape.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* nnr_init_kind, nnr_opt_kind and nnr_sched_kind values, as in runtime/nnr.h */
enum { INIT_ZEROS, INIT_ONES, INIT_CONST, INIT_UNIFORM, INIT_NORMAL, INIT_LECUN_UNIFORM,
       INIT_GLOROT_UNIFORM, INIT_GLOROT_NORMAL, INIT_HE_UNIFORM, INIT_HE_NORMAL, INIT_ORTHOGONAL };
enum { OPT_SGD, OPT_MOMENTUM, OPT_NESTEROV, OPT_ADAGRAD, OPT_RMSPROP, OPT_ADADELTA, OPT_ADAM,
       OPT_ADAMAX, OPT_NADAM };
enum { SCHED_CONSTANT, SCHED_STEP, SCHED_EXPONENTIAL, SCHED_POLYNOMIAL, SCHED_COSINE };

typedef struct binding { const char *name; ir_node *node; loc at; struct binding *next; } binding;

typedef struct lower {
    ir_graph   *g;
    diag       *d;
    binding    *table[256];       /* names in scope: io, params, bindings */
    const char *owner;            /* the binding whose layers are being built */
    ptrvec      layer_params;     /* params created for the current statement */
    int         layers;           /* layers created for the current statement */
} lower;

/* ---- names ------------------------------------------------------------------------- */

static unsigned hash(const char *s) {
    unsigned h = 2166136261u;
    while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
    return h & 255;
}

static binding *lookup(lower *L, const char *name) {
    for (binding *b = L->table[hash(name)]; b; b = b->next)
        if (strcmp(b->name, name) == 0) return b;
    return NULL;
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

static const char *closest_name(lower *L, const char *name) {
    const char *best = NULL;
    int bestd = (int)strlen(name) / 3 > 1 ? (int)strlen(name) / 3 : 1;   /* a typo, not another name */
    for (int h = 0; h < 256; h++)
        for (binding *b = L->table[h]; b; b = b->next) {
            int dist = edit_distance(name, b->name);
            if (dist <= bestd && (!best || dist < bestd)) best = b->name, bestd = dist;
        }
    return best;
}

static void bind(lower *L, const char *name, ir_node *n, loc at) {
    binding *old = lookup(L, name);
    if (old) {
        diag_error(L->d, at, "'%s' is already bound (each name is bound once)", name);
        diag_note(L->d, old->at, "'%s' was bound here", name);
        return;
    }
    binding *b = arena_alloc(L->g->a, sizeof *b);
    b->name = name;
    b->node = n;
    b->at = at;
    unsigned h = hash(name);
    b->next = L->table[h];
    L->table[h] = b;
}

static int check_plain_name(lower *L, const char *name, loc at) {
    if (!strchr(name, '.')) return 0;
    diag_error(L->d, at, "'%s': a name bound in the model cannot contain '.' (dotted names refer to layer parameters)", name);
    return -1;
}

/* A placeholder for an expression that failed, so its users are skipped silently. */
static ir_node *bad_node(lower *L, loc at) {
    ir_node *n = ir_const(L->g, 0, at);
    n->bad = 1;
    return n;
}

/* ---- arguments ------------------------------------------------------------------- */

typedef struct callargs {
    const ast_expr *call;
    const ast_arg  *pos[8];
    int             npos;
    const ast_arg  *kw[8];        /* by index into the function's keyword list */
} callargs;

/* Splits a call's arguments into positional ones and the allowed keywords (a keyword may
 * also name a positional parameter: keys[i] for i < maxpos).  -1 after an error. */
static int gather_args(lower *L, const ast_expr *call, int minpos, int maxpos,
                       const char *const *keys, callargs *ca) {
    memset(ca, 0, sizeof *ca);
    ca->call = call;
    int nkeys = 0;
    while (keys && keys[nkeys]) nkeys++;
    for (const ast_arg *a = call->args; a; a = a->next) {
        if (!a->key) {
            if (ca->npos >= maxpos || ca->npos >= 8) {
                if (maxpos == 0)
                    diag_error(L->d, a->at, "'%s' takes no arguments", call->name);
                else if (maxpos == minpos)
                    diag_error(L->d, a->at, "'%s' takes %d argument%s", call->name, maxpos, maxpos == 1 ? "" : "s");
                else
                    diag_error(L->d, a->at, "'%s' takes at most %d arguments", call->name, maxpos);
                return -1;
            }
            ca->pos[ca->npos++] = a;
            continue;
        }
        int k = 0;
        while (k < nkeys && strcmp(keys[k], a->key) != 0) k++;
        if (k == nkeys) {
            char list[256] = "";
            for (int j = 0; j < nkeys; j++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "", keys[j]);
            if (nkeys) diag_error(L->d, a->at, "'%s' has no argument '%s'; it takes %s", call->name, a->key, list);
            else diag_error(L->d, a->at, "'%s' takes no keyword arguments", call->name);
            return -1;
        }
        if (ca->kw[k] || (k < maxpos && k < ca->npos)) {
            diag_error(L->d, a->at, "argument '%s' of '%s' is given twice", a->key, call->name);
            return -1;
        }
        ca->kw[k] = a;
    }
    /* keywords naming positional parameters fill them */
    for (int k = 0; k < maxpos && k < 8; k++)
        if (k >= ca->npos && ca->kw[k]) {
            if (k != ca->npos) break;
            ca->pos[ca->npos++] = ca->kw[k];
            ca->kw[k] = NULL;
        }
    if (ca->npos < minpos) {
        diag_error(L->d, call->at, "'%s' takes %s%d argument%s, got %d", call->name,
                   minpos == maxpos ? "" : "at least ", minpos, minpos == 1 ? "" : "s", ca->npos);
        return -1;
    }
    return 0;
}

/* The i-th parameter: positional i, or the keyword keys[i]; NULL when absent. */
static const ast_arg *arg_at(const callargs *ca, int i) {
    if (i < ca->npos) return ca->pos[i];
    return i < 8 ? ca->kw[i] : NULL;
}

static int const_number(const ast_expr *e, double *v) {
    if (e->kind == AST_NUM) { *v = e->num; return 0; }
    if (e->kind == AST_NEG && const_number(e->lhs, v) == 0) { *v = -*v; return 0; }
    return -1;
}

static int number_arg(lower *L, const ast_arg *a, const char *what, double *v) {
    if (const_number(a->value, v) == 0 && isfinite(*v)) return 0;
    diag_error(L->d, a->value->at, "%s must be a number", what);
    return -1;
}

static int int_arg(lower *L, const ast_arg *a, const char *what, int64_t lo, int64_t hi, int64_t *v) {
    double x;
    if (const_number(a->value, &x) || x != floor(x) || x < (double)lo || x > (double)hi) {
        diag_error(L->d, a->value->at, "%s must be an integer in [%lld, %lld]", what, (long long)lo, (long long)hi);
        return -1;
    }
    *v = (int64_t)x;
    return 0;
}

static int bool_arg(lower *L, const ast_arg *a, const char *what, int *v) {
    const ast_expr *e = a->value;
    if (e->kind == AST_NAME && (!strcmp(e->name, "true") || !strcmp(e->name, "false"))) {
        *v = e->name[0] == 't';
        return 0;
    }
    double x;
    if (const_number(e, &x) == 0 && (x == 0 || x == 1)) { *v = x == 1; return 0; }
    diag_error(L->d, e->at, "%s must be true or false", what);
    return -1;
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
        if (int_arg(L, a, "a shape dimension", 1, MAX_ELEMENTS, &v)) return -1;
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
    if (int_arg(L, &tmp, "the class count of class(K)", 2, 1 << 24, &v)) return -1;
    *k = (int)v;
    return 0;
}

/* ---- initializers ------------------------------------------------------------------ */

static const struct { const char *name; int kind, nargs; double a, b; } initializers[] = {
    {"zeros", INIT_ZEROS, 0, 0, 0},           {"ones", INIT_ONES, 0, 0, 0},
    {"const", INIT_CONST, 1, 0, 0},           {"uniform", INIT_UNIFORM, 2, 0, 1},
    {"normal", INIT_NORMAL, 2, 0, 1},         {"lecun_uniform", INIT_LECUN_UNIFORM, 0, 0, 0},
    {"glorot_uniform", INIT_GLOROT_UNIFORM, 0, 0, 0}, {"glorot_normal", INIT_GLOROT_NORMAL, 0, 0, 0},
    {"he_uniform", INIT_HE_UNIFORM, 0, 0, 0}, {"he_normal", INIT_HE_NORMAL, 0, 0, 0},
    {"orthogonal", INIT_ORTHOGONAL, 0, 0, 0},
};

static int lower_init(lower *L, const ast_expr *e, ir_param_info *p) {
    const char *name = e->kind == AST_NAME || e->kind == AST_CALL ? e->name : NULL;
    for (size_t i = 0; name && i < sizeof initializers / sizeof *initializers; i++) {
        if (strcmp(initializers[i].name, name) != 0) continue;
        p->init = initializers[i].kind;
        p->a = initializers[i].a;
        p->b = initializers[i].b;
        if (e->kind == AST_NAME) {
            if (initializers[i].kind == INIT_CONST) {
                diag_error(L->d, e->at, "const needs a value: const(v)");
                return -1;
            }
            return 0;
        }
        static const char *const ab[] = {"a", "b", NULL}, *const ms[] = {"mean", "std", NULL},
                                 *const v[] = {"v", NULL};
        const char *const *keys = p->init == INIT_NORMAL ? ms : p->init == INIT_CONST ? v : ab;
        int n = initializers[i].nargs;
        callargs ca;
        if (gather_args(L, e, p->init == INIT_CONST ? 1 : 0, n, n ? keys : NULL, &ca)) return -1;
        const ast_arg *x = arg_at(&ca, 0), *y = arg_at(&ca, 1);
        if (x && number_arg(L, x, "an initializer argument", &p->a)) return -1;
        if (y && number_arg(L, y, "an initializer argument", &p->b)) return -1;
        if (p->init == INIT_UNIFORM && !(p->a < p->b)) {
            diag_error(L->d, e->at, "uniform(a, b) needs a < b");
            return -1;
        }
        if (p->init == INIT_NORMAL && !(p->b >= 0)) {
            diag_error(L->d, e->at, "normal(mean, std) needs std >= 0");
            return -1;
        }
        return 0;
    }
    diag_error(L->d, e->at, "unknown initializer%s%s; expected zeros, ones, const(v), uniform(a, b), normal(mean, std), "
               "lecun_uniform, glorot_uniform, glorot_normal, he_uniform, he_normal or orthogonal",
               name ? " " : "", name ? arena_printf(L->g->a, "'%s'", name) : "");
    return -1;
}

static ir_node *new_param(lower *L, const char *name, loc at, ir_param_info init) {
    ir_node *p = ir_node_new(L->g, OP_PARAM, 0, NULL, at);
    p->role = ROLE_PARAM;
    p->name = name;
    p->param = init;
    p->param_index = L->g->params.n;
    ptrvec_push(L->g->a, &L->g->params, p);
    return p;
}

/* ---- expressions ------------------------------------------------------------------ */

static ir_node *lower_expr(lower *L, const ast_expr *e);

static ir_node *lower_name(lower *L, const ast_expr *e) {
    binding *b = lookup(L, e->name);
    if (b) return b->node;
    const char *near = closest_name(L, e->name);
    if (strchr(e->name, '.'))
        diag_error(L->d, e->at, "unknown parameter '%s'%s%s%s", e->name, near ? "; did you mean '" : "",
                   near ? near : "", near ? "'?" : "");
    else
        diag_error(L->d, e->at, "unknown name '%s'%s%s%s", e->name, near ? "; did you mean '" : "",
                   near ? near : "", near ? "'?" : "");
    return bad_node(L, e->at);
}

static ir_node *call_unary(lower *L, const ast_expr *e, ir_op op) {
    callargs ca;
    if (gather_args(L, e, 1, 1, NULL, &ca)) return bad_node(L, e->at);
    return ir_unary(L->g, op, lower_expr(L, ca.pos[0]->value), e->at);
}

/* An elementwise function of ir_maps: its tensor arguments, then its constants. */
static ir_node *call_map(lower *L, const ast_expr *e, int fn) {
    static const char *const unary[] = {"x", NULL}, *const binary[] = {"a", "b", NULL},
                             *const slope[] = {"x", "a", NULL}, *const bounds[] = {"x", "lo", "hi", NULL};
    const ir_mapinfo *m = &ir_maps[fn];
    const char *const *keys = m->nargs == 2 ? binary : m->nconst == 1 ? slope : m->nconst == 2 ? bounds : unary;
    int required = m->nargs + (m->nconst == 2 ? 2 : 0);   /* leaky_relu's slope defaults to 0.01 */
    callargs ca;
    if (gather_args(L, e, required, m->nargs + m->nconst, keys, &ca)) return bad_node(L, e->at);
    ir_node *in[2];
    for (int i = 0; i < m->nargs; i++) in[i] = lower_expr(L, ca.pos[i]->value);
    ir_node *n = ir_node_new(L->g, OP_MAP, m->nargs, in, e->at);
    n->fn = fn;
    n->attr[0] = 0.01;
    for (int k = 0; k < m->nconst; k++) {
        const ast_arg *a = arg_at(&ca, m->nargs + k);
        if (a && number_arg(L, a, arena_printf(L->g->a, "'%s' of %s", keys[m->nargs + k], m->name), &n->attr[k]))
            n->bad = 1;
    }
    if (m->nconst == 2 && !n->bad && !(n->attr[0] <= n->attr[1])) {
        diag_error(L->d, e->at, "clip(x, lo, hi) needs lo <= hi");
        n->bad = 1;
    }
    return n;
}

static ir_node *view(lower *L, ir_node *x, int mode, int axis, loc at) {
    ir_node *v = ir_unary(L->g, OP_RESHAPE, x, at);
    v->view = mode;
    v->axis = axis;
    return v;
}

/* sum, mean, max, min over every axis of an example, or over axis=k (which is dropped):
 * a reduction to the shape with that axis kept as 1, then a view without it. */
static ir_node *call_reduce(lower *L, const ast_expr *e, int kind) {
    static const char *const keys[] = {"x", "axis", NULL};
    callargs ca;
    if (gather_args(L, e, 1, 1, keys, &ca)) return bad_node(L, e->at);
    int64_t axis = IR_NOAXIS;
    if (ca.kw[1] && int_arg(L, ca.kw[1], "axis", -IR_MAXRANK, IR_MAXRANK - 1, &axis)) return bad_node(L, e->at);
    ir_node *x = lower_expr(L, ca.pos[0]->value), *r;
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
    return axis == IR_NOAXIS ? r : view(L, r, VIEW_SQUEEZE, (int)axis, e->at);
}

/* norm2(x[, axis]) = sqrt(sum(x * x)) */
static ir_node *call_norm2(lower *L, const ast_expr *e) {
    static const char *const keys[] = {"x", "axis", NULL};
    callargs ca;
    if (gather_args(L, e, 1, 1, keys, &ca)) return bad_node(L, e->at);
    int64_t axis = IR_NOAXIS;
    if (ca.kw[1] && int_arg(L, ca.kw[1], "axis", -IR_MAXRANK, IR_MAXRANK - 1, &axis)) return bad_node(L, e->at);
    ir_node *x = lower_expr(L, ca.pos[0]->value);
    ir_node *sq = ir_binary(L->g, OP_MUL, x, x, e->at), *s;
    if (axis == IR_NOAXIS) {
        s = ir_unary(L->g, OP_SUM, sq, e->at);
        s->attr[0] = 1;
    } else {
        s = ir_unary(L->g, OP_SUM_TO, sq, e->at);
        s->axis = (int)axis;
        s->what = e->name;
        s = view(L, s, VIEW_SQUEEZE, (int)axis, e->at);
    }
    ir_node *r = ir_unary(L->g, OP_MAP, s, e->at);
    r->fn = ir_map_find("sqrt");
    return r;
}

/* flatten(x), reshape(x, [d, ...]) (one -1 is inferred), transpose(x), concat(a, b, axis=k),
 * slice(x, axis=k, start=i, end=j): all on the per-example axes. */
static ir_node *call_layout(lower *L, const ast_expr *e) {
    static const char *const one[] = {"x", NULL}, *const rs[] = {"x", "shape", NULL},
                             *const cat[] = {"a", "b", "axis", NULL}, *const sl[] = {"x", "axis", "start", "end", NULL};
    const char *f = e->name;
    callargs ca;
    int64_t v;
    if (!strcmp(f, "flatten") || !strcmp(f, "transpose")) {
        if (gather_args(L, e, 1, 1, one, &ca)) return bad_node(L, e->at);
        ir_node *x = lower_expr(L, ca.pos[0]->value);
        return f[0] == 'f' ? view(L, x, VIEW_FLATTEN, IR_NOAXIS, e->at) : ir_unary(L->g, OP_TRANSPOSE, x, e->at);
    }
    if (!strcmp(f, "reshape")) {
        if (gather_args(L, e, 2, 2, rs, &ca)) return bad_node(L, e->at);
        ir_node *x = lower_expr(L, ca.pos[0]->value);
        const ast_expr *shape = ca.pos[1]->value;
        if (shape->kind != AST_LIST) {
            diag_error(L->d, shape->at, "reshape needs the new shape as a list, like reshape(x, [4, 7])");
            return bad_node(L, e->at);
        }
        ir_node *r = view(L, x, VIEW_GIVEN, IR_NOAXIS, e->at);
        int inferred = 0;
        for (const ast_arg *a = shape->args; a; a = a->next) {
            if (r->shape.rank == IR_MAXRANK || int_arg(L, a, "a dimension of reshape (or -1)", -1, (int64_t)1 << 40, &v) ||
                v == 0 || (v == -1 && inferred++)) {
                if (v == 0 || inferred > 1) diag_error(L->d, a->at, "reshape takes positive dimensions and at most one -1");
                return bad_node(L, e->at);
            }
            r->shape.dim[r->shape.rank++] = v == -1 ? 0 : v;
        }
        return r;
    }
    if (!strcmp(f, "concat")) {
        if (gather_args(L, e, 2, 2, cat, &ca)) return bad_node(L, e->at);
        int64_t axis = -1;
        if (ca.kw[2] && int_arg(L, ca.kw[2], "axis", -IR_MAXRANK, IR_MAXRANK - 1, &axis)) return bad_node(L, e->at);
        ir_node *n = ir_binary(L->g, OP_CONCAT, lower_expr(L, ca.pos[0]->value), lower_expr(L, ca.pos[1]->value), e->at);
        n->axis = (int)axis;
        return n;
    }
    /* slice */
    if (gather_args(L, e, 1, 1, sl, &ca)) return bad_node(L, e->at);
    int64_t axis = 0, start = 0, end = 0;
    if (!ca.kw[1] || !ca.kw[2]) {
        diag_error(L->d, e->at, "slice needs axis= and start= (end= defaults to the end of the axis)");
        return bad_node(L, e->at);
    }
    if (int_arg(L, ca.kw[1], "axis", -IR_MAXRANK, IR_MAXRANK - 1, &axis) ||
        int_arg(L, ca.kw[2], "start", -((int64_t)1 << 40), (int64_t)1 << 40, &start) ||
        (ca.kw[3] && int_arg(L, ca.kw[3], "end", -((int64_t)1 << 40), (int64_t)1 << 40, &end)))
        return bad_node(L, e->at);
    ir_node *n = ir_unary(L->g, OP_SLICE, lower_expr(L, ca.pos[0]->value), e->at);
    n->axis = (int)axis;
    n->attr[0] = (double)start;
    n->attr[1] = ca.kw[3] ? (double)end : 1e18;
    return n;
}

static ir_node *call_binary(lower *L, const ast_expr *e, ir_op op, const char *const *keys) {
    callargs ca;
    if (gather_args(L, e, 2, 2, keys, &ca)) return bad_node(L, e->at);
    return ir_binary(L->g, op, lower_expr(L, ca.pos[0]->value), lower_expr(L, ca.pos[1]->value), e->at);
}

/* mse(p, t) = mean((p - t)^2), sse(p, t) = 1/2 sum((p - t)^2): built from simpler ops so
 * autodiff and fusion handle them like any user expression. */
static ir_node *call_squared_error(lower *L, const ast_expr *e, int mean) {
    static const char *const keys[] = {"p", "t", NULL};
    callargs ca;
    if (gather_args(L, e, 2, 2, keys, &ca)) return bad_node(L, e->at);
    ir_node *p = lower_expr(L, ca.pos[0]->value), *t = lower_expr(L, ca.pos[1]->value);
    ir_node *diff = ir_binary(L->g, OP_SUB, p, t, e->at);
    diff->what = e->name;
    ir_node *sq = ir_unary(L->g, OP_POWC, diff, e->at);
    sq->attr[0] = 2;
    ir_node *s = ir_unary(L->g, OP_SUM, sq, e->at);
    s->attr[0] = mean ? 1 : 0.5;
    s->attr[1] = mean;
    return s;
}

/* ---- losses and regularizers, built from simpler ops ---------------------------------
 * Each is the SPEC's definition written with ops that autodiff and fusion already know,
 * in the numerically stable form where there is one (softplus for the logit losses).
 * Their nodes carry the loss's name for error messages. */

static ir_node *named_op(ir_node *n, const char *what) {
    n->what = what;
    return n;
}

static ir_node *map1(lower *L, const char *fn, ir_node *x, loc at) {
    ir_node *n = ir_unary(L->g, OP_MAP, x, at);
    n->fn = ir_map_find(fn);
    return n;
}

static ir_node *mean_all(lower *L, ir_node *x, loc at) {
    ir_node *s = ir_unary(L->g, OP_SUM, x, at);
    s->attr[0] = 1;
    s->attr[1] = 1;
    return s;
}

static ir_node *sum_all(lower *L, ir_node *x, loc at) {
    ir_node *s = ir_unary(L->g, OP_SUM, x, at);
    s->attr[0] = 1;
    return s;
}

static ir_node *call_loss(lower *L, const ast_expr *e) {
    static const char *const pt[] = {"p", "t", NULL}, *const zt[] = {"z", "t", NULL}, *const zy[] = {"z", "y", NULL},
                             *const lq[] = {"logp", "q", NULL}, *const ly[] = {"logp", "y", NULL},
                             *const tri[] = {"a", "p", "n", "margin", NULL};
    const char *f = e->name;
    int triplet = !strcmp(f, "triplet");
    const char *const *keys = !strcmp(f, "l1_loss") || !strcmp(f, "bce") ? pt : !strcmp(f, "hinge") ? zy
                            : !strcmp(f, "kl_div") ? lq : !strcmp(f, "nll") ? ly : triplet ? tri : zt;
    callargs ca;
    if (gather_args(L, e, triplet ? 3 : 2, triplet ? 4 : 2, keys, &ca)) return bad_node(L, e->at);
    ir_node *a = lower_expr(L, ca.pos[0]->value), *b = lower_expr(L, ca.pos[1]->value);
    loc at = e->at;
    ir_graph *g = L->g;
    if (!strcmp(f, "nll"))     /* -logp[y] */
        return ir_unary(g, OP_NEG, named_op(ir_binary(g, OP_PICK, a, b, at), f), at);
    if (!strcmp(f, "hinge")) { /* sum_j max(0, 1 + z_j - z_y) over j != y: the j = y term is 1 */
        ir_node *zy_ = named_op(ir_binary(g, OP_PICK, a, b, at), f);
        ir_node *margins = map1(L, "relu", ir_binary(g, OP_ADD, ir_const(g, 1, at),
                                                     named_op(ir_binary(g, OP_SUB, a, zy_, at), f), at), at);
        return ir_binary(g, OP_SUB, sum_all(L, margins, at), ir_const(g, 1, at), at);
    }
    if (!strcmp(f, "l1_loss"))  /* mean |p - t| */
        return mean_all(L, map1(L, "abs", named_op(ir_binary(g, OP_SUB, a, b, at), f), at), at);
    if (!strcmp(f, "bce")) {    /* -mean(t log p + (1 - t) log(1 - p)) */
        ir_node *one = ir_const(g, 1, at);
        ir_node *pos = named_op(ir_binary(g, OP_MUL, b, map1(L, "log", a, at), at), f);
        ir_node *neg = ir_binary(g, OP_MUL, ir_binary(g, OP_SUB, one, b, at),
                                 map1(L, "log", ir_binary(g, OP_SUB, ir_const(g, 1, at), a, at), at), at);
        return ir_unary(g, OP_NEG, mean_all(L, ir_binary(g, OP_ADD, pos, neg, at), at), at);
    }
    if (!strcmp(f, "bce_logits")) /* mean(softplus(z) - z t): log(1 + e^z) - z t, stable */
        return mean_all(L, ir_binary(g, OP_SUB, map1(L, "softplus", a, at),
                                     named_op(ir_binary(g, OP_MUL, a, b, at), f), at), at);
    if (!strcmp(f, "logistic"))   /* mean log(1 + exp(-t z)) = mean softplus(-t z) */
        return mean_all(L, map1(L, "softplus", ir_unary(g, OP_NEG, named_op(ir_binary(g, OP_MUL, b, a, at), f), at), at), at);
    if (!strcmp(f, "kl_div"))     /* sum q (log q - logp), with 0 log 0 = 0 */
        return sum_all(L, ir_binary(g, OP_SUB, map1(L, "_xlogx", b, at),
                                    named_op(ir_binary(g, OP_MUL, b, a, at), f), at), at);
    /* triplet: max(0, margin + |a - p| - |a - n|), distances as PyTorch's pairwise_distance (eps 1e-6) */
    double margin = 1;
    if (arg_at(&ca, 3) && number_arg(L, arg_at(&ca, 3), "the margin of triplet", &margin)) return bad_node(L, at);
    ir_node *n = lower_expr(L, ca.pos[2]->value);
    ir_node *dp = named_op(ir_binary(g, OP_ADD, ir_binary(g, OP_SUB, a, b, at), ir_const(g, 1e-6, at), at), f);
    ir_node *dn = named_op(ir_binary(g, OP_ADD, ir_binary(g, OP_SUB, a, n, at), ir_const(g, 1e-6, at), at), f);
    ir_node *np = map1(L, "sqrt", sum_all(L, ir_binary(g, OP_MUL, dp, dp, at), at), at);
    ir_node *nn = map1(L, "sqrt", sum_all(L, ir_binary(g, OP_MUL, dn, dn, at), at), at);
    return map1(L, "relu", ir_binary(g, OP_ADD, ir_const(g, margin, at), ir_binary(g, OP_SUB, np, nn, at), at), at);
}

/* l2(W) = sum of squares, l1(W) = sum of absolute values, of a parameter. */
static ir_node *call_regularizer(lower *L, const ast_expr *e) {
    static const char *const keys[] = {"w", NULL};
    callargs ca;
    if (gather_args(L, e, 1, 1, keys, &ca)) return bad_node(L, e->at);
    ir_node *w = lower_expr(L, ca.pos[0]->value);
    if (!w->bad && w->op != OP_PARAM) {
        diag_error(L->d, ca.pos[0]->value->at, "%s() regularizes a parameter, such as %s(h1.weight)", e->name, e->name);
        return bad_node(L, e->at);
    }
    ir_node *t = e->name[1] == '2' ? ir_binary(L->g, OP_MUL, w, w, e->at) : map1(L, "abs", w, e->at);
    return sum_all(L, t, e->at);
}

static const char *layer_prefix(lower *L) {
    return L->owner ? L->owner : "layer";
}

static ir_node *call_dense(lower *L, const ast_expr *e) {
    static const char *const keys[] = {"x", "units", "bias", "init", NULL};
    callargs ca;
    if (gather_args(L, e, 2, 2, keys, &ca)) return bad_node(L, e->at);
    ir_node *x = lower_expr(L, ca.pos[0]->value);
    int64_t units;
    if (int_arg(L, ca.pos[1], "the units of dense", 1, 1 << 24, &units)) return bad_node(L, e->at);
    int bias = 1;
    if (ca.kw[2] && bool_arg(L, ca.kw[2], "bias=", &bias)) return bad_node(L, e->at);
    ir_param_info winit = {INIT_GLOROT_UNIFORM, 0, 0, 0}, binit = {INIT_ZEROS, 0, 0, 0};
    if (ca.kw[3] && lower_init(L, ca.kw[3]->value, &winit)) return bad_node(L, e->at);
    ir_node *in[3];
    in[0] = x;
    in[1] = new_param(L, "weight", e->at, winit);
    ptrvec_push(L->g->a, &L->layer_params, in[1]);
    if (bias) {
        in[2] = new_param(L, "bias", e->at, binit);
        ptrvec_push(L->g->a, &L->layer_params, in[2]);
    }
    for (int i = 1; i < 2 + bias; i++) in[i]->attr[1] = L->layers;   /* layer number, for naming */
    L->layers++;
    ir_node *n = ir_node_new(L->g, OP_DENSE, 2 + bias, in, e->at);
    n->attr[0] = (double)units;
    return n;
}

/* ---- convolutional layers ------------------------------------------------------------
 * These need their input's shape to size their parameters and lowering buffers, so they
 * first run shape inference over what is built so far.  conv2d is the weight viewed
 * [out, in*kh*kw] times im2col's patches [in*kh*kw, positions], plus the bias; dropout
 * and batchnorm are built from elementwise ops and reductions, with a select between the
 * training and the inference form. */

static int64_t kernel_dim(lower *L, const ast_arg *a, int which, int64_t *v) {
    const ast_expr *e = a->value;
    if (e->kind == AST_LIST) {
        int i = 0;
        for (const ast_arg *d = e->args; d; d = d->next, i++)
            if (i == which) return int_arg(L, d, "a kernel or stride size", 1, 1 << 16, v);
        diag_error(L->d, e->at, "give one size, or one per spatial axis");
        return -1;
    }
    return int_arg(L, a, "a kernel or stride size", 1, 1 << 16, v);
}

/* pad=valid | same | N along one axis of length len: padding before and output length.
 * same follows Keras (output ceil(len / stride), the odd element of padding after). */
static int pad_geometry(lower *L, const ast_arg *pad, int64_t len, int64_t k, int64_t s, int64_t *before,
                        int64_t *out) {
    int64_t p = 0;
    const ast_expr *e = pad ? pad->value : NULL;
    if (e && e->kind == AST_NAME && !strcmp(e->name, "same")) {
        *out = (len + s - 1) / s;
        int64_t total = (*out - 1) * s + k - len;
        *before = total > 0 ? total / 2 : 0;
        return 0;
    }
    if (e && !(e->kind == AST_NAME && !strcmp(e->name, "valid")) && int_arg(L, pad, "pad (valid, same or a number)", 0, 1 << 16, &p))
        return -1;
    *before = p;
    *out = len + 2 * p >= k ? (len + 2 * p - k) / s + 1 : 0;
    return 0;
}

static ir_node *view_as(lower *L, ir_node *x, ir_shape shape, loc at) {
    ir_node *v = view(L, x, VIEW_GIVEN, IR_NOAXIS, at);
    v->shape = shape;
    return v;
}

static ir_node *layer_param(lower *L, const char *name, ir_shape shape, ir_param_info init, loc at) {
    ir_node *p = new_param(L, name, at, init);
    p->shape = shape;
    p->attr[1] = L->layers;
    ptrvec_push(L->g->a, &L->layer_params, p);
    return p;
}

/* The input of a layer, shape inferred, with the rank it must have per example. */
static ir_node *layer_input(lower *L, const ast_expr *e, const ast_arg *a, int rank, const char *layout) {
    ir_node *x = lower_expr(L, a->value);
    shape_upto(L->g, L->d);
    if (x->bad) return NULL;
    if (x->dtype == DT_CLASS || (rank && x->shape.rank != rank)) {
        diag_error(L->d, e->at, "%s takes %s per example; %s is %s", e->name, layout,
                   x->name ? arena_printf(L->g->a, "'%s'", x->name) : "its input", ir_shape_str(L->g->a, &x->shape));
        return NULL;
    }
    return x;
}

static ir_node *call_conv(lower *L, const ast_expr *e, int dims) {
    static const char *const keys[] = {"x", "filters", "kernel", "stride", "pad", "bias", "init", NULL};
    callargs ca;
    if (gather_args(L, e, 2, 2, keys, &ca)) return bad_node(L, e->at);
    if (!ca.kw[2]) {
        diag_error(L->d, e->at, "%s needs kernel=k", e->name);
        return bad_node(L, e->at);
    }
    ir_node *x = layer_input(L, e, ca.pos[0], dims + 1, dims == 2 ? "[C, H, W]" : "[C, L]");
    int64_t filters, kh = 1, kw, sh = 1, sw = 1;
    if (!x || int_arg(L, ca.pos[1], "the filters of a convolution", 1, 1 << 16, &filters) ||
        kernel_dim(L, ca.kw[2], dims - 1, &kw) || (dims == 2 && kernel_dim(L, ca.kw[2], 0, &kh)) ||
        (ca.kw[3] && (kernel_dim(L, ca.kw[3], dims - 1, &sw) || (dims == 2 && kernel_dim(L, ca.kw[3], 0, &sh)))))
        return bad_node(L, e->at);
    int bias = 1;
    if (ca.kw[5] && bool_arg(L, ca.kw[5], "bias=", &bias)) return bad_node(L, e->at);
    ir_param_info winit = {INIT_GLOROT_UNIFORM, 0, 0, 0}, binit = {INIT_ZEROS, 0, 0, 0};
    if (ca.kw[6] && lower_init(L, ca.kw[6]->value, &winit)) return bad_node(L, e->at);
    ir_conv g = {.c = x->shape.dim[0], .h = dims == 2 ? x->shape.dim[1] : 1, .w = x->shape.dim[dims],
                 .kh = kh, .kw = kw, .sh = sh, .sw = sw};
    if ((dims == 2 && pad_geometry(L, ca.kw[4], g.h, kh, sh, &g.ph, &g.oh)) ||
        pad_geometry(L, ca.kw[4], g.w, kw, sw, &g.pw, &g.ow))
        return bad_node(L, e->at);
    if (dims == 1) g.oh = 1;
    if (g.oh < 1 || g.ow < 1) {
        diag_error(L->d, e->at, "%s: the kernel does not fit in %s", e->name, ir_shape_str(L->g->a, &x->shape));
        return bad_node(L, e->at);
    }
    int64_t k = g.c * kh * kw, positions = g.oh * g.ow;
    ir_shape wshape = dims == 2 ? (ir_shape){4, {filters, g.c, kh, kw}} : (ir_shape){3, {filters, g.c, kw}};
    ir_node *w = layer_param(L, "weight", wshape, winit, e->at);
    ir_node *b = bias ? layer_param(L, "bias", (ir_shape){1, {filters}}, binit, e->at) : NULL;
    L->layers++;
    ir_node *col = ir_unary(L->g, OP_IM2COL, x, e->at);
    col->conv = g;
    col->shape = (ir_shape){2, {k, positions}};
    col->batched = x->batched;
    /* W viewed [F, K] times the patches [K, P]: the output comes out channel-first */
    ir_node *y = ir_binary(L->g, OP_MATMUL, view_as(L, w, (ir_shape){2, {filters, k}}, e->at), col, e->at);
    y->mm = (ir_mm){filters, k, k, positions, 0, 0};
    y->what = e->name;
    /* the bias is added to the output's own shape, so that bias and activation fuse into
     * one loop over it (through a view the add would need a buffer of its own) */
    ir_shape out = dims == 2 ? (ir_shape){3, {filters, g.oh, g.ow}} : (ir_shape){2, {filters, g.ow}};
    y = view_as(L, y, out, e->at);
    if (b) {
        ir_shape bshape = dims == 2 ? (ir_shape){3, {filters, 1, 1}} : (ir_shape){2, {filters, 1}};
        y = ir_binary(L->g, OP_ADD, y, view_as(L, b, bshape, e->at), e->at);
    }
    return y;
}

static ir_node *call_pool(lower *L, const ast_expr *e, int is_max) {
    static const char *const keys[] = {"x", "k", "stride", NULL};
    callargs ca;
    if (gather_args(L, e, 2, 2, keys, &ca)) return bad_node(L, e->at);
    ir_node *x = layer_input(L, e, ca.pos[0], 3, "[C, H, W]");
    int64_t kh, kw, sh, sw;
    if (!x || kernel_dim(L, ca.pos[1], 0, &kh) || kernel_dim(L, ca.pos[1], 1, &kw)) return bad_node(L, e->at);
    sh = kh, sw = kw;
    if (ca.kw[2] && (kernel_dim(L, ca.kw[2], 0, &sh) || kernel_dim(L, ca.kw[2], 1, &sw))) return bad_node(L, e->at);
    ir_conv g = {.c = x->shape.dim[0], .h = x->shape.dim[1], .w = x->shape.dim[2], .kh = kh, .kw = kw, .sh = sh, .sw = sw};
    g.oh = g.h >= kh ? (g.h - kh) / sh + 1 : 0;
    g.ow = g.w >= kw ? (g.w - kw) / sw + 1 : 0;
    if (g.oh < 1 || g.ow < 1) {
        diag_error(L->d, e->at, "%s: the window does not fit in %s", e->name, ir_shape_str(L->g->a, &x->shape));
        return bad_node(L, e->at);
    }
    ir_node *p = ir_unary(L->g, OP_POOL, x, e->at);
    p->conv = g;
    p->attr[0] = is_max;
    p->shape = (ir_shape){3, {g.c, g.oh, g.ow}};
    p->batched = x->batched;
    return p;
}

static ir_node *call_dropout(lower *L, const ast_expr *e) {
    static const char *const keys[] = {"x", "p", NULL};
    callargs ca;
    double p;
    if (gather_args(L, e, 2, 2, keys, &ca)) return bad_node(L, e->at);
    ir_node *x = lower_expr(L, ca.pos[0]->value);
    if (number_arg(L, ca.pos[1], "the rate of dropout", &p)) return bad_node(L, e->at);
    if (p < 0 || p >= 1) {
        diag_error(L->d, ca.pos[1]->value->at, "the rate of dropout must be in [0, 1)");
        return bad_node(L, e->at);
    }
    if (p == 0) return x;
    ir_node *mask = ir_unary(L->g, OP_DROPOUT_MASK, x, e->at);   /* x only gives the shape */
    mask->attr[0] = p;
    ir_node *kept = ir_binary(L->g, OP_MUL, x, mask, e->at);
    ir_node *sel = ir_binary(L->g, OP_SELECT, kept, x, e->at);
    sel->what = "dropout";
    return sel;
}

static ir_node *scaled(lower *L, ir_node *x, double per_example, loc at) {   /* x / (n * per_example) */
    return ir_binary(L->g, OP_MUL, ir_binary(L->g, OP_MUL, x, ir_node_new(L->g, OP_INV_N, 0, NULL, at), at),
                     ir_const(L->g, 1 / per_example, at), at);
}

/* batchnorm(x): per feature of [F], per channel of [C, ...]; batch statistics in
 * training (biased variance), running ones in inference; momentum 0.1, eps 1e-5. */
static ir_node *call_batchnorm(lower *L, const ast_expr *e) {
    static const char *const keys[] = {"x", "momentum", "eps", NULL};
    callargs ca;
    if (gather_args(L, e, 1, 1, keys, &ca)) return bad_node(L, e->at);
    double momentum = 0.1, eps = 1e-5;
    if ((ca.kw[1] && number_arg(L, ca.kw[1], "momentum", &momentum)) || (ca.kw[2] && number_arg(L, ca.kw[2], "eps", &eps)))
        return bad_node(L, e->at);
    ir_node *x = layer_input(L, e, ca.pos[0], 0, "");
    if (!x) return bad_node(L, e->at);
    if (x->shape.rank == 0 || !x->batched) {
        diag_error(L->d, e->at, "batchnorm normalizes features over the batch; its input needs a batch and an axis");
        return bad_node(L, e->at);
    }
    loc at = e->at;
    ir_graph *g = L->g;
    int64_t c = x->shape.dim[0], per = ir_numel(&x->shape) / c;
    ir_shape vec = {1, {c}}, cs = x->shape;   /* [C, 1, ..., 1] */
    for (int i = 1; i < cs.rank; i++) cs.dim[i] = 1;
    ir_node *w = layer_param(L, "weight", vec, (ir_param_info){INIT_ONES, 0, 0, 0}, at);
    ir_node *b = layer_param(L, "bias", vec, (ir_param_info){INIT_ZEROS, 0, 0, 0}, at);
    ir_node *rm = layer_param(L, "running_mean", vec, (ir_param_info){INIT_ZEROS, 0, 0, 1}, at);
    ir_node *rv = layer_param(L, "running_var", vec, (ir_param_info){INIT_ONES, 0, 0, 1}, at);
    L->layers++;
    ir_node *wv = view_as(L, w, cs, at), *bv = view_as(L, b, cs, at);
    ir_node *s1 = ir_unary(g, OP_SUM_TO, x, at);
    s1->shape = cs;
    ir_node *mean = scaled(L, s1, (double)per, at);
    ir_node *xc = ir_binary(g, OP_SUB, x, mean, at);
    ir_node *s2 = ir_unary(g, OP_SUM_TO, ir_binary(g, OP_MUL, xc, xc, at), at);
    s2->shape = cs;
    ir_node *var = scaled(L, s2, (double)per, at);
    ir_node *inv = ir_unary(g, OP_POWC, ir_binary(g, OP_ADD, var, ir_const(g, eps, at), at), at);
    inv->attr[0] = -0.5;
    ir_node *train = ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, ir_binary(g, OP_MUL, xc, inv, at), wv, at), bv, at);
    ir_node *rinv = ir_unary(g, OP_POWC, ir_binary(g, OP_ADD, view_as(L, rv, cs, at), ir_const(g, eps, at), at), at);
    rinv->attr[0] = -0.5;
    ir_node *infer = ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, ir_binary(g, OP_MUL, ir_binary(g, OP_SUB, x,
                               view_as(L, rm, cs, at), at), rinv, at), wv, at), bv, at);
    ir_node *y = ir_binary(g, OP_SELECT, train, infer, at);
    y->what = "batchnorm";
    ir_node *upd_in[4] = {rm, rv, mean, var};
    ir_node *upd = ir_node_new(g, OP_BN_UPDATE, 4, upd_in, at);
    upd->attr[0] = momentum;
    upd->attr[1] = (double)per;
    ptrvec_push(g->a, &g->effects, upd);
    return y;
}

/* ---- embeddings and recurrent layers ----------------------------------------------------
 * embedding(ids, vocab, dim) gathers rows of a [vocab, dim] table.  rnn and lstm are
 * unrolled over the T steps of the sequence: the input projection of all steps is one
 * dense layer (one GEMM for the batch and every step), then each step adds the recurrent
 * product (a GEMM across the batch) and applies the cell, with PyTorch's parameters and
 * gate order (i, f, g, o); autodiff then gives backpropagation through time. */

static ir_node *call_embedding(lower *L, const ast_expr *e) {
    static const char *const keys[] = {"ids", "vocab", "dim", NULL};
    callargs ca;
    int64_t vocab, dim;
    if (gather_args(L, e, 3, 3, keys, &ca)) return bad_node(L, e->at);
    ir_node *ids = lower_expr(L, ca.pos[0]->value);
    shape_upto(L->g, L->d);
    if (ids->bad || int_arg(L, ca.pos[1], "the vocabulary of embedding", 1, 1 << 24, &vocab) ||
        int_arg(L, ca.pos[2], "the dimension of embedding", 1, 1 << 20, &dim))
        return bad_node(L, e->at);
    if (ids->dtype != DT_CLASS || ids->classes > vocab) {
        diag_error(L->d, ca.pos[0]->value->at, ids->dtype != DT_CLASS
                   ? "embedding looks up class indices; declare the input `input ids: class(K) [T]`"
                   : "embedding: the ids are class(%d), more than the vocabulary of %lld", ids->classes, (long long)vocab);
        return bad_node(L, e->at);
    }
    ir_node *table = layer_param(L, "weight", (ir_shape){2, {vocab, dim}}, (ir_param_info){INIT_NORMAL, 0, 1, 0}, e->at);
    L->layers++;
    ir_node *n = ir_binary(L->g, OP_GATHER, table, ids, e->at);
    n->shape = ids->shape;
    n->shape.dim[n->shape.rank++] = dim;
    n->batched = ids->batched;
    return n;
}

static ir_node *step_slice(lower *L, ir_node *x, int axis, int64_t start, int64_t len, loc at) {
    ir_node *s = ir_unary(L->g, OP_SLICE, x, at);
    s->axis = axis;
    s->attr[0] = (double)start;
    s->attr[1] = (double)(start + len);
    return s;
}

static ir_node *map_of(lower *L, const char *fn, ir_node *x, loc at) {
    ir_node *n = ir_unary(L->g, OP_MAP, x, at);
    n->fn = ir_map_find(fn);
    return n;
}

/* The steps' states as one [T, hidden] tensor: concatenations paired as a balanced tree,
 * so the forward pass copies each state log2(T) times, not up to T times as a chain of
 * concatenations would (and the gradient's slices likewise). */
static ir_node *concat_rows(ir_graph *g, ir_node **rows, int64_t count, loc at) {
    if (count == 1) return rows[0];
    int64_t half = count / 2;
    ir_node *n = ir_binary(g, OP_CONCAT, concat_rows(g, rows, half, at), concat_rows(g, rows + half, count - half, at), at);
    n->axis = 0;
    return n;
}

static ir_node *call_recurrent(lower *L, const ast_expr *e, int lstm) {
    static const char *const keys[] = {"xs", "hidden", NULL};
    callargs ca;
    int64_t hidden;
    if (gather_args(L, e, 2, 2, keys, &ca)) return bad_node(L, e->at);
    ir_node *xs = layer_input(L, e, ca.pos[0], 2, "a sequence [T, d]");
    if (!xs || int_arg(L, ca.pos[1], "the hidden size", 1, 1 << 16, &hidden)) return bad_node(L, e->at);
    ir_graph *g = L->g;
    loc at = e->at;
    int64_t steps = xs->shape.dim[0], d = xs->shape.dim[1], gates = lstm ? 4 : 1, gh = gates * hidden;
    double k = 1 / sqrt((double)hidden);   /* PyTorch: every parameter U(-1/sqrt(hidden), 1/sqrt(hidden)) */
    ir_param_info init = {INIT_UNIFORM, -k, k, 0};
    ir_node *w_ih = layer_param(L, "weight_ih", (ir_shape){2, {gh, d}}, init, at);
    ir_node *w_hh = layer_param(L, "weight_hh", (ir_shape){2, {gh, hidden}}, init, at);
    ir_node *b_ih = layer_param(L, "bias_ih", (ir_shape){1, {gh}}, init, at);
    ir_node *b_hh = layer_param(L, "bias_hh", (ir_shape){1, {gh}}, init, at);
    L->layers++;
    ir_node *in[3] = {xs, w_ih, b_ih};
    ir_node *xw = ir_node_new(g, OP_DENSE, 3, in, at);   /* every step's input projection */
    xw->attr[0] = (double)gh;
    ir_node *h = NULL, *c = NULL, **rows = arena_alloc(g->a, sizeof(ir_node *) * (size_t)steps);
    for (int64_t t = 0; t < steps; t++) {   /* each step's tensors are [1, ·]: rows of the sequence */
        ir_node *pre = step_slice(L, xw, 0, t, 1, at);
        if (h) {
            ir_node *rin[3] = {h, w_hh, b_hh};
            ir_node *rec = ir_node_new(g, OP_DENSE, 3, rin, at);
            rec->attr[0] = (double)gh;
            pre = ir_binary(g, OP_ADD, pre, rec, at);
        } else {
            pre = ir_binary(g, OP_ADD, pre, b_hh, at);   /* h0 = 0: only the bias */
        }
        if (!lstm) {
            h = map_of(L, "tanh", pre, at);
        } else {
            ir_node *i = map_of(L, "sigmoid", step_slice(L, pre, 1, 0, hidden, at), at);
            ir_node *f = map_of(L, "sigmoid", step_slice(L, pre, 1, hidden, hidden, at), at);
            ir_node *gg = map_of(L, "tanh", step_slice(L, pre, 1, 2 * hidden, hidden, at), at);
            ir_node *o = map_of(L, "sigmoid", step_slice(L, pre, 1, 3 * hidden, hidden, at), at);
            ir_node *ig = ir_binary(g, OP_MUL, i, gg, at);
            c = c ? ir_binary(g, OP_ADD, ir_binary(g, OP_MUL, f, c, at), ig, at) : ig;   /* c0 = 0 */
            h = ir_binary(g, OP_MUL, o, map_of(L, "tanh", c, at), at);
        }
        rows[t] = h;
    }
    ir_node *out = concat_rows(g, rows, steps, at);
    out->what = e->name;
    return out;
}



static const char *const functions[] = {
    "neg", "softmax", "log_softmax", "sum", "mean", "cross_entropy", "mse", "sse", "dense", "nll", "l1_loss",
    "bce", "bce_logits", "logistic", "hinge", "kl_div", "triplet", "l1", "l2", "norm2", "flatten", "reshape",
    "transpose", "concat", "slice", "conv1d", "conv2d", "maxpool2d", "avgpool2d", "dropout", "batchnorm", "embedding", "rnn",
    "lstm", NULL};

static void consider(const char *f, const char *name, const char **best, int *bestd) {
    int dist = edit_distance(f, name);
    if (dist <= *bestd && (!*best || dist < *bestd)) *best = name, *bestd = dist;
}

static const char *closest_function(const char *f) {
    const char *best = NULL;
    int bestd = (int)strlen(f) / 3 > 1 ? (int)strlen(f) / 3 : 1;
    for (int i = 0; functions[i]; i++) consider(f, functions[i], &best, &bestd);
    for (int i = 0; ir_maps[i].name; i++) consider(f, ir_maps[i].name, &best, &bestd);
    return best;
}

static ir_node *lower_call(lower *L, const ast_expr *e) {
    static const char *const ce_keys[] = {"z", "y", NULL};
    const char *f = e->name;
    int npos = 0;
    for (const ast_arg *a = e->args; a; a = a->next) npos += !a->key;
    /* max(x) and min(x) reduce; max(a, b) and min(a, b) compare elementwise */
    if ((!strcmp(f, "max") || !strcmp(f, "min")) && npos == 1) return call_reduce(L, e, f[1] == 'a' ? 'M' : 'm');
    int fn = ir_map_find(f);
    if (fn >= 0) return call_map(L, e, fn);
    if (!strcmp(f, "norm2")) return call_norm2(L, e);
    if (!strcmp(f, "flatten") || !strcmp(f, "reshape") || !strcmp(f, "transpose") || !strcmp(f, "concat") ||
        !strcmp(f, "slice"))
        return call_layout(L, e);
    if (!strcmp(f, "neg")) return call_unary(L, e, OP_NEG);
    if (!strcmp(f, "softmax")) return call_unary(L, e, OP_SOFTMAX);
    if (!strcmp(f, "log_softmax")) return call_unary(L, e, OP_LOG_SOFTMAX);
    if (!strcmp(f, "sum")) return call_reduce(L, e, 's');
    if (!strcmp(f, "mean")) return call_reduce(L, e, 'a');
    if (!strcmp(f, "cross_entropy")) return call_binary(L, e, OP_CROSS_ENTROPY, ce_keys);
    if (!strcmp(f, "mse")) return call_squared_error(L, e, 1);
    if (!strcmp(f, "sse")) return call_squared_error(L, e, 0);
    if (!strcmp(f, "dense")) return call_dense(L, e);
    if (!strcmp(f, "nll") || !strcmp(f, "l1_loss") || !strcmp(f, "bce") || !strcmp(f, "bce_logits") ||
        !strcmp(f, "logistic") || !strcmp(f, "hinge") || !strcmp(f, "kl_div") || !strcmp(f, "triplet"))
        return call_loss(L, e);
    if (!strcmp(f, "l1") || !strcmp(f, "l2")) return call_regularizer(L, e);
    if (!strcmp(f, "conv2d") || !strcmp(f, "conv1d")) return call_conv(L, e, f[4] == '2' ? 2 : 1);
    if (!strcmp(f, "maxpool2d") || !strcmp(f, "avgpool2d")) return call_pool(L, e, f[0] == 'm');
    if (!strcmp(f, "dropout")) return call_dropout(L, e);
    if (!strcmp(f, "batchnorm")) return call_batchnorm(L, e);
    if (!strcmp(f, "embedding")) return call_embedding(L, e);
    if (!strcmp(f, "rnn") || !strcmp(f, "lstm")) return call_recurrent(L, e, f[0] == 'l');
    const char *near = closest_function(f);
    diag_error(L->d, e->at, "unknown function '%s'%s%s%s", f, near ? "; did you mean '" : "", near ? near : "",
               near ? "'?" : "");
    return bad_node(L, e->at);
}

static ir_node *lower_power(lower *L, const ast_expr *e) {
    double c;
    ir_node *x = lower_expr(L, e->lhs);
    if (const_number(e->rhs, &c) || !isfinite(c)) {
        diag_error(L->d, e->rhs->at, "the exponent of '^' must be a constant number");
        return bad_node(L, e->at);
    }
    ir_node *n = ir_unary(L->g, OP_POWC, x, e->at);
    n->attr[0] = c;
    return n;
}

static ir_node *lower_expr(lower *L, const ast_expr *e) {
    switch (e->kind) {
    case AST_NUM: return ir_const(L->g, e->num, e->at);
    case AST_NAME: return lower_name(L, e);
    case AST_CALL: return lower_call(L, e);
    case AST_NEG: {
        double v;
        if (const_number(e, &v) == 0) return ir_const(L->g, v, e->at);
        return ir_unary(L->g, OP_NEG, lower_expr(L, e->lhs), e->at);
    }
    case AST_LIST:
        diag_error(L->d, e->at, "a list [...] is only allowed as a shape");
        return bad_node(L, e->at);
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

/* Layers inside one binding are named after it: h.weight, or h.0.weight, h.1.weight. */
static void name_layer_params(lower *L, const char *owner) {
    for (int i = 0; i < L->layer_params.n; i++) {
        ir_node *p = L->layer_params.v[i];
        p->name = L->layers > 1 ? arena_printf(L->g->a, "%s.%d.%s", owner, (int)p->attr[1], p->name)
                                : arena_printf(L->g->a, "%s.%s", owner, p->name);
        bind(L, p->name, p, p->at);
    }
    L->layer_params.n = 0;
    L->layers = 0;
}

static ir_node *lower_value(lower *L, const ast_stmt *s, const char *owner) {
    L->owner = owner;
    ir_node *n = lower_expr(L, s->value);
    name_layer_params(L, layer_prefix(L));
    L->owner = NULL;
    return n;
}

static void lower_bind(lower *L, const ast_stmt *s) {
    if (check_plain_name(L, s->name, s->name_at)) return;
    ir_node *n = lower_value(L, s, s->name);
    if (!n->name && n->role == ROLE_NONE) n->name = s->name;
    bind(L, s->name, n, s->name_at);
}

static void lower_loss(lower *L, const ast_stmt *s) {
    ir_node *n = lower_value(L, s, "loss");
    if (L->g->loss) {
        diag_error(L->d, s->at, "'loss' is already bound (a model has one loss; add terms with '+')");
        return;
    }
    if (!n->name && n->role == ROLE_NONE) n->name = "loss";
    L->g->loss = n;
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
    if (s->value && lower_init(L, s->value, &init)) bad = 1;
    /* bound even when wrong, so its uses do not report it again as unknown */
    ir_node *p = bad ? bad_node(L, s->name_at) : new_param(L, s->name, s->name_at, init);
    p->shape = shape;
    bind(L, s->name, p, s->name_at);
}

/* ---- train { } ------------------------------------------------------------------- */

static const struct { const char *name; int kind; double lr; const char *keys[5]; } optimizers[] = {
    {"sgd", OPT_SGD, 0.01, {"lr"}},
    {"momentum", OPT_MOMENTUM, 0.01, {"lr", "mu"}},
    {"nesterov", OPT_NESTEROV, 0.01, {"lr", "mu"}},
    {"adagrad", OPT_ADAGRAD, 0.01, {"lr", "eps"}},
    {"rmsprop", OPT_RMSPROP, 0.01, {"lr", "rho", "eps"}},
    {"adadelta", OPT_ADADELTA, 1.0, {"rho", "eps", "lr"}},
    {"adam", OPT_ADAM, 0.001, {"lr", "beta1", "beta2", "eps"}},
    {"adamax", OPT_ADAMAX, 0.002, {"lr", "beta1", "beta2", "eps"}},
    {"nadam", OPT_NADAM, 0.002, {"lr", "beta1", "beta2", "eps"}},
};

static void set_defaults(ir_train *t, int opt) {
    t->opt = opt;
    t->beta1 = 0.9;
    t->beta2 = 0.999;
    t->mu = 0.9;
    t->eps = opt == OPT_ADAGRAD ? 1e-10 : opt == OPT_ADADELTA ? 1e-6 : 1e-8;
    t->rho = opt == OPT_ADADELTA ? 0.9 : 0.99;
}

static double *opt_field(ir_train *t, const char *key) {
    if (!strcmp(key, "lr")) return &t->lr;
    if (!strcmp(key, "mu")) return &t->mu;
    if (!strcmp(key, "eps")) return &t->eps;
    if (!strcmp(key, "rho")) return &t->rho;
    if (!strcmp(key, "beta1")) return &t->beta1;
    return &t->beta2;
}

static void lower_optimizer(lower *L, const ast_expr *e) {
    const char *name = e->kind == AST_NAME || e->kind == AST_CALL ? e->name : "";
    for (size_t i = 0; i < sizeof optimizers / sizeof *optimizers; i++) {
        if (strcmp(optimizers[i].name, name) != 0) continue;
        ir_train *t = &L->g->train;
        set_defaults(t, optimizers[i].kind);
        t->lr = optimizers[i].lr;
        if (e->kind == AST_NAME) return;
        int nkeys = 0;
        while (nkeys < 5 && optimizers[i].keys[nkeys]) nkeys++;
        callargs ca;
        if (gather_args(L, e, 0, nkeys, optimizers[i].keys, &ca)) return;
        for (int k = 0; k < nkeys; k++) {
            const ast_arg *a = arg_at(&ca, k);
            double v;
            if (!a || number_arg(L, a, arena_printf(L->g->a, "%s of %s", optimizers[i].keys[k], name), &v)) continue;
            const char *key = optimizers[i].keys[k];
            int is_lr = !strcmp(key, "lr"), is_beta = key[0] == 'b' || !strcmp(key, "rho");
            if (v < 0 || (is_lr && v == 0) || (is_beta && v >= 1)) {
                diag_error(L->d, a->value->at, "'%s' of %s must be %s", key, name,
                           is_lr ? "positive" : is_beta ? "in [0, 1)" : "non-negative");
                continue;
            }
            *opt_field(t, optimizers[i].keys[k]) = v;
        }
        return;
    }
    diag_error(L->d, e->at, "unknown optimizer%s%s%s; expected sgd, momentum, nesterov, adagrad, rmsprop, "
               "adadelta, adam, adamax or nadam", *name ? " '" : "", name, *name ? "'" : "");
}

static const struct { const char *name; int kind, nargs; const char *keys[4]; double def[3]; } schedules[] = {
    {"constant", SCHED_CONSTANT, 0, {NULL}, {0, 0, 0}},
    {"step", SCHED_STEP, 2, {"every", "gamma", NULL}, {1, 0.1, 0}},
    {"exponential", SCHED_EXPONENTIAL, 1, {"gamma", NULL}, {0.95, 0, 0}},
    {"polynomial", SCHED_POLYNOMIAL, 3, {"alpha", "beta", "gamma", NULL}, {0.1, 1, 1}},
    {"cosine", SCHED_COSINE, 1, {"t_max", NULL}, {10, 0, 0}},
};

static void lower_schedule(lower *L, const ast_expr *e) {
    const char *name = e->kind == AST_NAME || e->kind == AST_CALL ? e->name : "";
    for (size_t i = 0; i < sizeof schedules / sizeof *schedules; i++) {
        if (strcmp(schedules[i].name, name) != 0) continue;
        ir_train *t = &L->g->train;
        t->sched = schedules[i].kind;
        double v[3] = {schedules[i].def[0], schedules[i].def[1], schedules[i].def[2]};
        if (e->kind == AST_CALL) {
            callargs ca;
            if (gather_args(L, e, 0, schedules[i].nargs, schedules[i].nargs ? schedules[i].keys : NULL, &ca)) return;
            for (int k = 0; k < schedules[i].nargs; k++) {
                const ast_arg *a = arg_at(&ca, k);
                if (a && number_arg(L, a, arena_printf(L->g->a, "%s of %s", schedules[i].keys[k], name), &v[k]) == 0 &&
                    !(v[k] > 0 || (t->sched == SCHED_POLYNOMIAL && k == 1 && v[k] >= 0)))
                    diag_error(L->d, a->value->at, "'%s' of %s must be positive", schedules[i].keys[k], name);
            }
        }
        t->sched_a = v[0];
        t->sched_b = v[1];
        t->sched_c = v[2];
        return;
    }
    diag_error(L->d, e->at, "unknown schedule%s%s%s; expected constant, step(every, gamma), exponential(gamma), "
               "polynomial(alpha, beta, gamma) or cosine(t_max)", *name ? " '" : "", name, *name ? "'" : "");
}

static void lower_train(lower *L, const ast_stmt *s) {
    ir_train *t = &L->g->train;
    for (const ast_arg *it = s->items; it; it = it->next) {
        int64_t v;
        double x;
        if (!strcmp(it->key, "batch")) {
            if (int_arg(L, it, "batch", 1, 1 << 20, &v) == 0) t->batch = (int)v;
        } else if (!strcmp(it->key, "epochs")) {
            if (int_arg(L, it, "epochs", 0, 1 << 30, &v) == 0) t->epochs = (int)v;
        } else if (!strcmp(it->key, "seed")) {
            if (int_arg(L, it, "seed", 0, INT64_MAX / 2, &v) == 0) t->seed = (uint64_t)v;
        } else if (!strcmp(it->key, "optimizer")) {
            lower_optimizer(L, it->value);
        } else if (!strcmp(it->key, "schedule")) {
            lower_schedule(L, it->value);
        } else if (!strcmp(it->key, "weight_decay") || !strcmp(it->key, "clip_norm")) {
            if (number_arg(L, it, it->key, &x) == 0) {
                if (x < 0) diag_error(L->d, it->value->at, "%s must be >= 0", it->key);
                else *(it->key[0] == 'w' ? &t->weight_decay : &t->clip_norm) = x;
            }
        } else {
            diag_error(L->d, it->at, "unknown train setting '%s'; expected batch, epochs, optimizer, schedule, "
                       "weight_decay, clip_norm or seed", it->key);
        }
    }
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
    case ST_BIND: lower_bind(L, s); break;
    case ST_LOSS: lower_loss(L, s); break;
    case ST_OUTPUT: lower_output(L, s); break;
    case ST_TRAIN: lower_train(L, s); break;
    }
}

void lower_program(ir_graph *g, const ast_program *prog, diag *d) {
    lower L = {.g = g, .d = d};
    g->train = (ir_train){.batch = 32, .epochs = 1, .lr = 0.001};
    set_defaults(&g->train, OPT_ADAM);
    g->train.sched = SCHED_CONSTANT;
    if (!prog->first || prog->first->kind != ST_MODEL)
        diag_error(d, prog->first ? prog->first->at : (loc){0, 0, 0, 0},
                   "a model file must start with 'model NAME'");
    for (const ast_stmt *s = prog->first; s && !diag_too_many(d); s = s->next) {
        int first = g->nodes.n;
        lower_stmt(&L, s);
        for (int i = first; i < g->nodes.n; i++) ir_at(g, i)->stmt_line = s->at.line;
    }
    if (!g->model) g->model = "model";
    if (!g->loss && d->errors == 0)
        diag_error(d, (loc){0, 0, 0, 0}, "the model has no 'loss = ...' statement");
}
