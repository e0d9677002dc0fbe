/* lower_internal.h — what the files of lowering share (lower.h is the front end's view).
 *
 * lower.c lowers statements and expressions and hands each call to its row of the
 * built-in table (builtins.h); the rows' functions live in the layer library
 * (layer_*.c, losses.c) and in lower.c itself.  They all build nodes through the
 * lowering context below and read their arguments with lower_args.c's helpers, which
 * report a bad argument at the argument and return -1, so that a function can give up
 * with bad_node and lowering go on. */
#ifndef NNC_LOWER_INTERNAL_H
#define NNC_LOWER_INTERNAL_H
#include "builtins.h"
#include "lower.h"

/* nnr_init_kind values, as in runtime/nnr.h */
enum { INIT_ZEROS, INIT_ONES, INIT_CONST, INIT_UNIFORM, INIT_NORMAL, INIT_LECUN_UNIFORM,
       INIT_GLOROT_UNIFORM, INIT_GLOROT_NORMAL, INIT_HE_UNIFORM, INIT_HE_NORMAL, INIT_ORTHOGONAL,
       INIT_TRIL, INIT_TRIU, INIT_EYE, INIT_CAUSAL_MASK, INIT_ARANGE };

/* ---- values (lower_func.c): what a name or an expression stands for.  A tensor is an
 * IR node; a number is a constant usable wherever the language wants one (dense's units);
 * a function is its def (the statement); a tuple holds n values. */
typedef enum { LV_TENSOR, LV_NUMBER, LV_FUNC, LV_TUPLE, LV_BAD } lvalue_kind;
typedef struct lvalue lvalue;
struct lvalue { lvalue_kind kind; ir_node *node; double num; const ast_stmt *fn; /* the def */ int n; lvalue *items; loc at; };

typedef struct binding binding;
struct binding { const char *name; lvalue v; loc at; binding *next; };

/* A name a statement gives to a node it makes (a local of a function: `a` of `a = ...`),
 * prefixed like the statement's layer parameters once the enclosing names are known. */
typedef struct lower_named { ir_node *n; int layer; struct lower_named *next; } lower_named;

/* A call of a user function being lowered: its def, where it is called, the caller's. */
typedef struct lower_frame {
    const ast_stmt     *fn;
    loc                 at;
    int                 id;       /* the calls' count when it began: its nodes' call_id */
    struct lower_frame *up;
} lower_frame;

typedef struct lower {
    ir_graph   *g;
    diag       *d;
    binding    *table[256];       /* names in scope: io, params, bindings */
    binding   **scope;            /* a function call's local names (one list), NULL at top level */
    lower_frame *frame;           /* the innermost call being lowered, NULL at top level */
    const char *owner;            /* the binding whose layers are being built */
    ptrvec      layer_params;     /* params created for the current statement */
    lower_named *named;           /* nodes named by the current statement (in a function) */
    int         layers;           /* layers created for the current statement */
    int         call_depth;       /* built-in calls being lowered, nested */
    int         calls;            /* calls of functions lowered so far */
    int         scan_depth;       /* scans whose function is being lowered (lower_scan.c) */
    int         too_big;          /* calls went too deep or made too many nodes: no more are lowered */
    const char *share;            /* share=NAME of the built-in call at share_depth */
    int         share_depth;
    loc         share_at;
} lower;

/* A call's arguments, sorted by gather_args. */
#define CALLARGS_MAXPOS 16
typedef struct callargs {
    const ast_expr    *call;
    const ast_arg     *pos[CALLARGS_MAXPOS];
    int                npos;
    const ast_arg     *kw[8];     /* by index into the function's keyword list */
    const char *const *keys;      /* that list */
    int                how;       /* a built-in's row tells its function which op or variant */
    lvalue            *tuple;     /* where a function giving a tuple (split) puts it; NULL where a tensor is wanted */
} callargs;

/* ---- lower.c: names, expressions and parameters */
binding *lower_lookup(lower *L, const char *name);                   /* the local scope, then the model's */
void     lower_bind(lower *L, const char *name, lvalue v, loc at);   /* into the current scope */
void     lower_unknown_name(lower *L, const char *name, loc at);
ir_node *lower_call_builtin(lower *L, const ast_expr *e);
lvalue   lower_call_builtin_value(lower *L, const ast_expr *e);  /* ... which may give a tuple (split) */
/* The statement's layer parameters (L->layer_params) and named nodes named under owner
 * (NULL: no prefix), h.weight or h.0.weight for several layers, and bound. */
void     lower_name_layers(lower *L, const char *owner);
ir_node *lower_expr(lower *L, const ast_expr *e);
ir_node *lower_bad_node(lower *L, loc at);
ir_node *lower_new_param(lower *L, const char *name, loc at, ir_param_info init);
ir_node *lower_view(lower *L, ir_node *x, int mode, int axis, loc at);
ir_node *lower_map_of(lower *L, const char *fn, ir_node *x, loc at);

/* ---- lower_args.c: arguments */
int lower_gather_args(lower *L, const ast_expr *call, int minpos, int maxpos, const char *const *keys,
                      callargs *ca);
/* ... for a function taking any number of positional arguments (up to CALLARGS_MAXPOS) after
 * its first `named` ones, which keywords may name too (concat) */
int lower_gather_varargs(lower *L, const ast_expr *call, int minpos, int named, const char *const *keys,
                         callargs *ca);
const ast_arg *lower_arg_at(const callargs *ca, int i);
int lower_const_number(lower *L, const ast_expr *e, double *v);
int lower_number_arg(lower *L, const ast_arg *a, const char *what, double *v);
int lower_int_arg(lower *L, const ast_arg *a, const char *what, int64_t lo, int64_t hi, int64_t *v);
int lower_bool_arg(lower *L, const ast_arg *a, const char *what, int *v);
int lower_init(lower *L, const ast_expr *e, ir_param_info *p);
/* Whether init p can fill a tensor of this shape (a const's: is_const); else an error at e. */
int lower_init_fits(lower *L, const ast_expr *e, const ir_param_info *p, const ir_shape *shape, int is_const);

/* ---- layer_dense.c: what every layer uses */
ir_node *layer_param(lower *L, const char *name, ir_shape shape, ir_param_info init, loc at);
ir_node *layer_input(lower *L, const ast_expr *e, const ast_arg *a, int rank, const char *layout);
ir_node *layer_view_as(lower *L, ir_node *x, ir_shape shape, loc at);

/* ---- lower_func.c: functions (def), tuples, repeat and share= */
lvalue   lower_value_of(lower *L, const ast_expr *e);          /* any expression as a value */
/* Applies function value f to args; its layers are named under `owner` (a dotted prefix such
 * as "h" or "h.0", relative to the statement or call being lowered: NULL for none), or take
 * the parameters of `share` (an earlier binding's prefix) when share != NULL.  The call's
 * parameters join the current statement as one layer of it (L->layers counts it when it
 * made any).  Errors inside point at the function's line with a note at the call (at). */
lvalue   lower_apply(lower *L, const lvalue *f, const lvalue *args, int nargs, const char *owner, const char *share,
                     loc at);
ir_node *lower_as_tensor(lower *L, lvalue v, loc at);        /* a tensor, or an error and a bad node */
int      lower_is_user_call(lower *L, const ast_expr *e);     /* a call that lower_value_of lowers itself */
void     lower_def(lower *L, const ast_stmt *s);               /* binds a def's name to the function */
void     lower_bind_values(lower *L, const ast_stmt *s, lvalue v);   /* NAME = v, or a, b = tuple v */
int      lower_is_literal(const ast_expr *e);                 /* a number, or - of a literal */
/* The layer parameter NAME.<name> of the share= of the built-in call being lowered. */
ir_node *lower_shared_param(lower *L, const char *name, ir_shape shape, loc at);
/* Prints the calls being lowered as notes after an error (diag's context hook). */
void     lower_call_notes(void *L);

/* The keyword share=NAME of a call of a function, repeat or scan (NULL when absent); -1
 * after refusing another keyword. */
int      lower_call_share(lower *L, const ast_expr *e, const char **share);

/* ---- lower_scan.c: scan(f, xs, init) */
lvalue   call_scan(lower *L, const ast_expr *e);

/* ---- lower_train.c: the train { } block */
void lower_train_defaults(ir_train *t);
void lower_train(lower *L, const ast_stmt *s);

/* ---- the built-in functions, each named in its row of builtins.c */
builtin_fn call_unary, call_binary, call_map, call_gelu, call_reduce, call_norm2, /* lower.c */
           call_flatten, call_transpose, call_reshape, call_concat, call_slice,
           call_permute, call_split, call_softmax;
builtin_fn call_dense, call_one_hot, call_filled;                               /* layer_dense.c */
builtin_fn call_conv, call_pool;                                                 /* layer_conv.c */
builtin_fn call_dropout, call_batchnorm, call_rownorm;                           /* layer_norm.c */
builtin_fn call_embedding, call_recurrent;                                       /* layer_seq.c */
builtin_fn call_attention;                                                       /* lower_attention.c */
builtin_fn call_squared_error, call_loss, call_regularizer;                      /* losses.c */
#endif
