/* lower_args.c — what a call's arguments mean (see lower_internal.h): gathering them by
 * position and by keyword against a function's argument list, with the count, unknown
 * keyword and duplicate errors every function shares; reading constant numbers,
 * integers in a range and booleans; and initializers (init=, param ... = INIT), which
 * take arguments of their own.  The built-in functions' lists come from their rows
 * (builtins.c); initializers, optimizers and schedules pass theirs. */
#include "lower_internal.h"
#include <math.h>
#include <string.h>

/* ---- arguments ------------------------------------------------------------------- */

/* Splits a call's arguments into positional ones and the allowed keywords (a keyword may
 * also name a positional parameter: keys[i] for i < named).  -1 after an error. */
static int gather(lower *L, const ast_expr *call, int minpos, int maxpos, int named, const char *const *keys,
                  callargs *ca) {
    memset(ca, 0, sizeof *ca);
    ca->call = call;
    ca->keys = keys;
    int nkeys = 0;
    while (keys && keys[nkeys]) nkeys++;
    for (const ast_arg *a = call->args; a; a = a->next) {
        if (!a->key) {
            if (ca->npos >= maxpos || ca->npos >= CALLARGS_MAXPOS) {
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
        if (ca->kw[k] || (k < named && k < ca->npos)) {
            diag_error(L->d, a->at, "argument '%s' of '%s' is given twice", a->key, call->name);
            return -1;
        }
        ca->kw[k] = a;
    }
    /* keywords naming positional parameters fill them */
    for (int k = 0; k < named && k < 8; k++)
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

int lower_gather_args(lower *L, const ast_expr *call, int minpos, int maxpos, const char *const *keys,
                      callargs *ca) {
    return gather(L, call, minpos, maxpos, maxpos, keys, ca);
}

int lower_gather_varargs(lower *L, const ast_expr *call, int minpos, int named, const char *const *keys,
                         callargs *ca) {
    return gather(L, call, minpos, CALLARGS_MAXPOS, named, keys, ca);
}

/* The i-th parameter: positional i, or the keyword keys[i]; NULL when absent. */
const ast_arg *lower_arg_at(const callargs *ca, int i) {
    if (i < ca->npos) return ca->pos[i];
    return i < 8 ? ca->kw[i] : NULL;
}

/* A constant: a literal, a name bound to a number (a function's parameter) or to a
 * constant, or + - * / of constants. */
int lower_const_number(lower *L, const ast_expr *e, double *v) {
    double a, b;
    switch (e->kind) {
    case AST_NUM: *v = e->num; return 0;
    case AST_NEG:
        if (lower_const_number(L, e->lhs, v)) return -1;
        *v = -*v;
        return 0;
    case AST_NAME: {
        binding *bd = lower_lookup(L, e->name);
        if (bd && bd->v.kind == LV_NUMBER) { *v = bd->v.num; return 0; }
        if (bd && bd->v.kind == LV_TENSOR && bd->v.node->op == OP_CONST && !bd->v.node->bad) {
            *v = bd->v.node->attr[0];
            return 0;
        }
        return -1;
    }
    case AST_BINARY:
        if (e->op == '@' || e->op == '^' || lower_const_number(L, e->lhs, &a) || lower_const_number(L, e->rhs, &b))
            return -1;
        *v = e->op == '+' ? a + b : e->op == '-' ? a - b : e->op == '*' ? a * b : a / b;
        return 0;
    default: return -1;
    }
}

int lower_number_arg(lower *L, const ast_arg *a, const char *what, double *v) {
    if (lower_const_number(L, a->value, v) == 0 && isfinite(*v)) return 0;
    diag_error(L->d, a->value->at, "%s must be a number", what);
    return -1;
}

int lower_int_arg(lower *L, const ast_arg *a, const char *what, int64_t lo, int64_t hi, int64_t *v) {
    double x;
    if (lower_const_number(L, a->value, &x) || x != floor(x) || x < (double)lo || x > (double)hi) {
        diag_error(L->d, a->value->at, "%s must be an integer in [%lld, %lld]", what, (long long)lo, (long long)hi);
        return -1;
    }
    *v = (int64_t)x;
    return 0;
}

int lower_bool_arg(lower *L, const ast_arg *a, const char *what, int *v) {
    const ast_expr *e = a->value;
    if (e->kind == AST_NAME && (!strcmp(e->name, "true") || !strcmp(e->name, "false"))) {
        *v = e->name[0] == 't';
        return 0;
    }
    double x;
    if (lower_const_number(L, e, &x) == 0 && (x == 0 || x == 1)) { *v = x == 1; return 0; }
    diag_error(L->d, e->at, "%s must be true or false", what);
    return -1;
}

/* ---- initializers ------------------------------------------------------------------ */

static const struct { const char *name; int kind, nargs; double a, b; } initializers[] = {
    {"zeros", INIT_ZEROS, 0, 0, 0},           {"ones", INIT_ONES, 0, 0, 0},
    {"const", INIT_CONST, 1, 0, 0},           {"uniform", INIT_UNIFORM, 2, 0, 1},
    {"normal", INIT_NORMAL, 2, 0, 1},         {"lecun_uniform", INIT_LECUN_UNIFORM, 0, 0, 0},
    {"glorot_uniform", INIT_GLOROT_UNIFORM, 0, 0, 0}, {"glorot_normal", INIT_GLOROT_NORMAL, 0, 0, 0},
    {"he_uniform", INIT_HE_UNIFORM, 0, 0, 0}, {"he_normal", INIT_HE_NORMAL, 0, 0, 0},
    {"orthogonal", INIT_ORTHOGONAL, 0, 0, 0},
    {"tril", INIT_TRIL, 0, 0, 0},             {"triu", INIT_TRIU, 0, 0, 0},
    {"eye", INIT_EYE, 0, 0, 0},               {"causal_mask", INIT_CAUSAL_MASK, 0, 0, 0},
    {"arange", INIT_ARANGE, 0, 0, 0},
};

int lower_init(lower *L, const ast_expr *e, ir_param_info *p) {
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
        if (lower_gather_args(L, e, p->init == INIT_CONST ? 1 : 0, n, n ? keys : NULL, &ca)) return -1;
        const ast_arg *x = lower_arg_at(&ca, 0), *y = lower_arg_at(&ca, 1);
        if (x && lower_number_arg(L, x, "an initializer argument", &p->a)) return -1;
        if (y && lower_number_arg(L, y, "an initializer argument", &p->b)) return -1;
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
               "lecun_uniform, glorot_uniform, glorot_normal, he_uniform, he_normal, orthogonal, tril, triu, eye, "
               "arange or causal_mask", name ? " " : "", name ? arena_printf(L->g->a, "'%s'", name) : "");
    return -1;
}

int lower_init_fits(lower *L, const ast_expr *e, const ir_param_info *p, const ir_shape *shape, int is_const) {
    int k = p->init;
    if (k == INIT_CAUSAL_MASK && !is_const) {
        diag_error(L->d, e->at, "causal_mask (-inf above the diagonal) can only fill a const tensor: a parameter "
                   "must be finite");
        return -1;
    }
    if ((k == INIT_TRIL || k == INIT_TRIU || k == INIT_EYE || k == INIT_CAUSAL_MASK) && shape->rank < 2) {
        diag_error(L->d, e->at, "%s fills the last two axes of a tensor of rank >= 2, not a shape of rank %d",
                   ir_init_names[k], shape->rank);
        return -1;
    }
    return 0;
}
