/* ast.c — constructors the grammar's actions call (see ast.h).  They only record what
 * was written; checking happens in lower.c so that every problem gets one message. */
#include "ast.h"
#include <stdlib.h>
#include <string.h>

static ast_expr *expr_new(parse_ctx *c, ast_kind kind, loc at) {
    ast_expr *e = arena_alloc(c->a, sizeof *e);
    e->kind = kind;
    e->at = at;
    return e;
}

ast_expr *ast_num(parse_ctx *c, loc at, const char *text) {
    ast_expr *e = expr_new(c, AST_NUM, at);
    e->num = strtod(text, NULL);
    e->is_int = strpbrk(text, ".eE") == NULL;
    return e;
}

ast_expr *ast_name(parse_ctx *c, loc at, const char *name) {
    ast_expr *e = expr_new(c, AST_NAME, at);
    e->name = name;
    return e;
}

ast_expr *ast_call(parse_ctx *c, loc at, const char *callee, ast_arg *args) {
    ast_expr *e = expr_new(c, AST_CALL, at);
    e->name = callee;
    e->args = args;
    return e;
}

ast_expr *ast_binary(parse_ctx *c, loc at, int op, ast_expr *lhs, ast_expr *rhs) {
    ast_expr *e = expr_new(c, AST_BINARY, at);
    e->op = op;
    e->lhs = lhs;
    e->rhs = rhs;
    return e;
}

ast_expr *ast_neg(parse_ctx *c, loc at, ast_expr *operand) {
    ast_expr *e = expr_new(c, AST_NEG, at);
    e->lhs = operand;
    return e;
}

ast_expr *ast_list(parse_ctx *c, loc at, ast_arg *elems) {
    ast_expr *e = expr_new(c, AST_LIST, at);
    e->args = elems;
    return e;
}

ast_arg *ast_arg_new(parse_ctx *c, loc at, const char *key, ast_expr *value) {
    ast_arg *a = arena_alloc(c->a, sizeof *a);
    a->key = key;
    a->at = at;
    a->value = value;
    return a;
}

ast_arg *ast_arg_append(ast_arg *list, ast_arg *arg) {
    if (!list) return arg;
    ast_arg *p = list;
    while (p->next) p = p->next;
    p->next = arg;
    return list;
}

/* A tuple (a, b, ...): first and the rest of the elements. */
ast_expr *ast_tuple(parse_ctx *c, loc at, ast_expr *first, ast_arg *rest) {
    ast_expr *e = expr_new(c, AST_TUPLE, at);
    e->args = ast_arg_append(ast_arg_new(c, first->at, NULL, first), rest);
    return e;
}

ast_arg *ast_name_item(parse_ctx *c, loc at, const char *name) {
    return ast_arg_new(c, at, name, NULL);
}

static ast_stmt *stmt_make(parse_ctx *c, ast_stmt_kind kind, loc at, const char *name, loc name_at) {
    ast_stmt *s = arena_alloc(c->a, sizeof *s);
    s->kind = kind;
    s->at = at;
    s->name = name;
    s->name_at = name_at;
    return s;
}

static ast_stmt *stmt_new(parse_ctx *c, ast_stmt_kind kind, loc at, const char *name, loc name_at) {
    ast_stmt *s = stmt_make(c, kind, at, name, name_at);
    if (c->prog.last) c->prog.last->next = s;
    else c->prog.first = s;
    c->prog.last = s;
    return s;
}

void ast_model(parse_ctx *c, loc at, const char *name, loc name_at) {
    stmt_new(c, ST_MODEL, at, name, name_at);
}

void ast_input(parse_ctx *c, loc at, const char *name, loc name_at, ast_expr *classes,
               ast_expr *shape, int grad) {
    ast_stmt *s = stmt_new(c, ST_INPUT, at, name, name_at);
    s->classes = classes;
    s->shape = shape;
    s->grad = grad;
}

void ast_label(parse_ctx *c, loc at, const char *name, loc name_at, ast_expr *classes,
               ast_expr *shape) {
    ast_stmt *s = stmt_new(c, ST_LABEL, at, name, name_at);
    s->classes = classes;
    s->shape = shape;
}

void ast_target(parse_ctx *c, loc at, const char *name, loc name_at, ast_expr *shape) {
    stmt_new(c, ST_TARGET, at, name, name_at)->shape = shape;
}

void ast_param(parse_ctx *c, loc at, const char *name, loc name_at, ast_expr *shape,
               ast_expr *init, const char *word, loc word_at) {
    ast_stmt *s = stmt_new(c, ST_PARAM, at, name, name_at);
    s->shape = shape;
    s->value = init;
    s->grad = word != NULL;
    if (word && strcmp(word, "frozen") != 0)
        diag_error(c->d, word_at, "unexpected '%s' after the parameter; the only word allowed there is 'frozen' "
                   "(saved but not trained)", word);
}

void ast_const(parse_ctx *c, loc at, const char *name, loc name_at, ast_expr *shape,
               ast_expr *init) {
    ast_stmt *s = stmt_new(c, ST_CONST, at, name, name_at);
    s->shape = shape;
    s->value = init;
}

void ast_bind(parse_ctx *c, loc at, const char *name, ast_expr *value) {
    stmt_new(c, ST_BIND, at, name, at)->value = value;
}

void ast_loss(parse_ctx *c, loc at, ast_expr *value) {
    stmt_new(c, ST_LOSS, at, "loss", at)->value = value;
}

void ast_output(parse_ctx *c, loc at, const char *name, loc name_at, ast_expr *value) {
    stmt_new(c, ST_OUTPUT, at, name, name_at)->value = value;
}

void ast_train(parse_ctx *c, loc at, ast_arg *items) {
    stmt_new(c, ST_TRAIN, at, "train", at)->items = items;
}

/* `a, b = EXPR`: the statement is named after its first name (its layers are too). */
ast_stmt *ast_body_bind(parse_ctx *c, ast_arg *names, ast_expr *value) {
    ast_stmt *s = stmt_make(c, ST_BIND, names->at, names->key, names->at);
    s->names = names->next ? names : NULL;
    s->value = value;
    return s;
}

ast_stmt *ast_body_return(parse_ctx *c, loc at, ast_expr *value) {
    ast_stmt *s = stmt_make(c, ST_RETURN, at, "return", at);
    s->value = value;
    return s;
}

ast_stmt *ast_stmt_append(ast_stmt *list, ast_stmt *s) {
    if (!s) return list;
    if (!list) return s;
    ast_stmt *p = list;
    while (p->next) p = p->next;
    p->next = s;
    return list;
}

void ast_unpack(parse_ctx *c, ast_arg *names, ast_expr *value) {
    ast_stmt *s = stmt_new(c, ST_BIND, names->at, names->key, names->at);
    s->names = names;
    s->value = value;
}

void ast_def(parse_ctx *c, loc at, const char *name, loc name_at, ast_arg *params, ast_stmt *body) {
    ast_stmt *s = stmt_new(c, ST_DEF, at, name, name_at);
    s->params = params;
    s->body = body;
}
