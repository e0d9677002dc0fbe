/* ast.h — the syntax tree the parser builds, one statement list per model file.
 *
 * The grammar stays thin: every bison action is one call to a constructor here, passing
 * the locations along.  The tree keeps the source form (names, calls with keyword
 * arguments, bare identifiers such as `pad=same`); lower.c gives it meaning. */
#ifndef NNC_AST_H
#define NNC_AST_H
#include "arena.h"
#include "diag.h"

typedef enum { AST_NUM, AST_NAME, AST_CALL, AST_BINARY, AST_NEG, AST_LIST, AST_TUPLE } ast_kind;

typedef struct ast_arg ast_arg;
typedef struct ast_expr ast_expr;
struct ast_expr {
    ast_kind    kind;
    loc         at;        /* the operator for binary/unary, the name for calls */
    double      num;       /* AST_NUM */
    int         is_int;    /* AST_NUM written without '.', exponent */
    const char *name;      /* AST_NAME (possibly dotted), AST_CALL callee */
    int         op;        /* AST_BINARY: '+', '-', '*', '/', '@', '^' */
    ast_expr   *lhs, *rhs; /* AST_BINARY; AST_NEG uses lhs */
    ast_arg    *args;      /* AST_CALL arguments, AST_LIST and AST_TUPLE elements (key NULL) */
};

struct ast_arg {
    const char *key;       /* NULL for positional */
    loc         at;
    ast_expr   *value;
    ast_arg    *next;
};

typedef enum {
    ST_MODEL, ST_INPUT, ST_LABEL, ST_TARGET, ST_PARAM, ST_CONST, ST_BIND, ST_LOSS, ST_OUTPUT, ST_TRAIN,
    ST_DEF, ST_RETURN
} ast_stmt_kind;

typedef struct ast_stmt ast_stmt;
struct ast_stmt {
    ast_stmt_kind kind;
    loc         at;         /* the keyword or the bound name */
    const char *name;
    loc         name_at;
    ast_expr   *shape;      /* AST_LIST, or NULL when absent */
    ast_expr   *classes;    /* class(K): K; NULL for float tensors */
    int         grad;       /* input ... grad; param ... frozen */
    ast_expr   *value;      /* binding, loss, output; param and const initializer (NULL: default) */
    ast_arg    *items;      /* train { key = value ... } */
    ast_arg    *names;      /* ST_BIND `a, b = EXPR`: the names (key, at), NULL for one name */
    ast_arg    *params;     /* ST_DEF: the parameters (key, at) */
    ast_stmt   *body;       /* ST_DEF: the statements of the body (ST_BIND, ST_RETURN) */
    ast_stmt   *next;
};

typedef struct ast_program {
    ast_stmt *first, *last;
} ast_program;

/* The parser's context: the arena, the diagnostics and the program being built. */
typedef struct parse_ctx {
    arena       *a;
    diag        *d;
    ast_program  prog;
} parse_ctx;

ast_expr *ast_num(parse_ctx *c, loc at, const char *text);
ast_expr *ast_name(parse_ctx *c, loc at, const char *name);
ast_expr *ast_call(parse_ctx *c, loc at, const char *callee, ast_arg *args);
ast_expr *ast_binary(parse_ctx *c, loc at, int op, ast_expr *lhs, ast_expr *rhs);
ast_expr *ast_neg(parse_ctx *c, loc at, ast_expr *operand);
ast_expr *ast_list(parse_ctx *c, loc at, ast_arg *elems);
ast_arg  *ast_arg_new(parse_ctx *c, loc at, const char *key, ast_expr *value);
ast_arg  *ast_arg_append(ast_arg *list, ast_arg *arg);
ast_expr *ast_tuple(parse_ctx *c, loc at, ast_expr *first, ast_arg *rest);
ast_arg  *ast_name_item(parse_ctx *c, loc at, const char *name);   /* a name of a list of names */

void ast_model(parse_ctx *c, loc at, const char *name, loc name_at);
void ast_input(parse_ctx *c, loc at, const char *name, loc name_at, ast_expr *classes,
               ast_expr *shape, int grad);
void ast_label(parse_ctx *c, loc at, const char *name, loc name_at, ast_expr *classes,
               ast_expr *shape);
void ast_target(parse_ctx *c, loc at, const char *name, loc name_at, ast_expr *shape);
/* word: the word after it (NULL, or "frozen": saved but not trained), at word_at */
void ast_param(parse_ctx *c, loc at, const char *name, loc name_at, ast_expr *shape,
               ast_expr *init, const char *word, loc word_at);
void ast_const(parse_ctx *c, loc at, const char *name, loc name_at, ast_expr *shape,
               ast_expr *init);
void ast_bind(parse_ctx *c, loc at, const char *name, ast_expr *value);
void ast_loss(parse_ctx *c, loc at, ast_expr *value);
void ast_output(parse_ctx *c, loc at, const char *name, loc name_at, ast_expr *value);
void ast_train(parse_ctx *c, loc at, ast_arg *items);
void ast_unpack(parse_ctx *c, ast_arg *names, ast_expr *value);
void ast_def(parse_ctx *c, loc at, const char *name, loc name_at, ast_arg *params, ast_stmt *body);
/* The statements of a def's body: built without joining the program, then chained. */
ast_stmt *ast_body_bind(parse_ctx *c, ast_arg *names, ast_expr *value);
ast_stmt *ast_body_return(parse_ctx *c, loc at, ast_expr *value);
ast_stmt *ast_stmt_append(ast_stmt *list, ast_stmt *s);

/* Parses SRC into c->prog, reporting syntax errors to c->d; returns the error count. */
int parse_source(parse_ctx *c, const source *src);
#endif
