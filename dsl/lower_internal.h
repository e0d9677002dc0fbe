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
       INIT_GLOROT_UNIFORM, INIT_GLOROT_NORMAL, INIT_HE_UNIFORM, INIT_HE_NORMAL, INIT_ORTHOGONAL };

typedef struct binding binding;

typedef struct lower {
    ir_graph   *g;
    diag       *d;
    binding    *table[256];       /* names in scope: io, params, bindings */
    const char *owner;            /* the binding whose layers are being built */
    ptrvec      layer_params;     /* params created for the current statement */
    int         layers;           /* layers created for the current statement */
} lower;

/* A call's arguments, sorted by gather_args. */
typedef struct callargs {
    const ast_expr    *call;
    const ast_arg     *pos[8];
    int                npos;
    const ast_arg     *kw[8];     /* by index into the function's keyword list */
    const char *const *keys;      /* that list */
    int                how;       /* a built-in's row tells its function which op or variant */
} callargs;

/* ---- lower.c: expressions and parameters */
ir_node *lower_expr(lower *L, const ast_expr *e);
ir_node *lower_bad_node(lower *L, loc at);
ir_node *lower_new_param(lower *L, const char *name, loc at, ir_param_info init);
ir_node *lower_view(lower *L, ir_node *x, int mode, int axis, loc at);
ir_node *lower_map_of(lower *L, const char *fn, ir_node *x, loc at);

/* ---- lower_args.c: arguments */
int lower_gather_args(lower *L, const ast_expr *call, int minpos, int maxpos, const char *const *keys,
                      callargs *ca);
const ast_arg *lower_arg_at(const callargs *ca, int i);
int lower_const_number(const ast_expr *e, double *v);
int lower_number_arg(lower *L, const ast_arg *a, const char *what, double *v);
int lower_int_arg(lower *L, const ast_arg *a, const char *what, int64_t lo, int64_t hi, int64_t *v);
int lower_bool_arg(lower *L, const ast_arg *a, const char *what, int *v);
int lower_init(lower *L, const ast_expr *e, ir_param_info *p);

/* ---- layer_dense.c: what every layer uses */
ir_node *layer_param(lower *L, const char *name, ir_shape shape, ir_param_info init, loc at);
ir_node *layer_input(lower *L, const ast_expr *e, const ast_arg *a, int rank, const char *layout);
ir_node *layer_view_as(lower *L, ir_node *x, ir_shape shape, loc at);

/* ---- lower_train.c: the train { } block */
void lower_train_defaults(ir_train *t);
void lower_train(lower *L, const ast_stmt *s);

/* ---- the built-in functions, each named in its row of builtins.c */
builtin_fn call_unary, call_binary, call_map, call_reduce, call_norm2,          /* lower.c */
           call_flatten, call_transpose, call_reshape, call_concat, call_slice;
builtin_fn call_dense;                                                           /* layer_dense.c */
builtin_fn call_conv, call_pool;                                                 /* layer_conv.c */
builtin_fn call_dropout, call_batchnorm;                                         /* layer_norm.c */
builtin_fn call_embedding, call_recurrent;                                       /* layer_seq.c */
builtin_fn call_squared_error, call_loss, call_regularizer;                      /* losses.c */
#endif
