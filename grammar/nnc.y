/* nnc.y — the grammar of .nn model files (docs/language.md).
 *
 * A reentrant, pure parser with locations.  Actions do nothing but call the ast_
 * constructors with the locations of what they build; all meaning is given later
 * (dsl/lower.c).  Statements end at a newline or ';'; a syntax error skips to the end of
 * its statement so that one mistake gives one message and parsing goes on. */
%define api.pure full
%define parse.error detailed
%define parse.lac full
%define api.location.type {loc}
%locations
%lex-param {void *scanner}
%parse-param {void *scanner} {parse_ctx *ctx}

%code requires {
#include "ast.h"
/* State of the reentrant scanner: nesting depth of () and [] (newlines inside them
 * continue the statement) and whether the final newline was sent at end of file. */
typedef struct lex_state {
    parse_ctx *ctx;
    int depth, eof_newline, line, col;
    loc open_at;            /* the outermost open bracket */
    char open_ch;
    int unclosed;           /* the statement ended at a keyword with open_ch still open */
    int nl_in_brackets;     /* a newline was skipped inside brackets ... */
    int first_after_nl;     /* ... and the token just returned is the first after it */
    int stray_line;         /* a stray character was reported on this line */
    loc brace_at;           /* the open '{' of a train block, if brace_open */
    int brace_open;
} lex_state;
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                              \
    do {                                                                         \
        if (N) {                                                                 \
            (Cur).line = YYRHSLOC(Rhs, 1).line;                                  \
            (Cur).col = YYRHSLOC(Rhs, 1).col;                                    \
            (Cur).end_line = YYRHSLOC(Rhs, N).end_line;                          \
            (Cur).end_col = YYRHSLOC(Rhs, N).end_col;                            \
        } else {                                                                 \
            (Cur).line = (Cur).end_line = YYRHSLOC(Rhs, 0).end_line;             \
            (Cur).col = (Cur).end_col = YYRHSLOC(Rhs, 0).end_col;                \
        }                                                                        \
    } while (0)
}

%code {
#include <string.h>
int yylex(YYSTYPE *yylval, loc *yylloc, void *scanner);
static void yyerror(loc *at, void *scanner, parse_ctx *ctx, const char *msg);
}

%union {
    const char *str;
    ast_expr   *expr;
    ast_arg    *arg;
    ast_stmt   *stmt;
    int         flag;
}

%token MODEL "'model'" INPUT "'input'" LABEL "'label'" TARGET "'target'" PARAM "'param'"
%token OUTPUT "'output'" LOSS "'loss'" TRAIN "'train'" GRAD "'grad'" CLASS "'class'"
%token DEF "'def'" RETURN "'return'" CONST "'const'"
%token NEWLINE "end of line"
%token <str> IDENT "identifier" NUMBER "number"

%type <expr> expr primary shape opt_shape opt_init class_spec
%type <arg>  args arglist arg elems elemlist train_body train_item names more_names params
%type <stmt> body body_item
%type <flag> opt_grad
%type <str>  opt_word

%left '+' '-'
%left '*' '/' '@'
%precedence NEG
%right '^'

%%

program
    : %empty
    | program line
    ;

line
    : NEWLINE
    | stmt NEWLINE
    | error NEWLINE                          { yyerrok; }
    ;

stmt
    : MODEL IDENT                            { ast_model(ctx, @1, $2, @2); }
    | INPUT IDENT ':' shape opt_grad         { ast_input(ctx, @1, $2, @2, NULL, $4, $5); }
    | INPUT IDENT ':' class_spec opt_shape   { ast_input(ctx, @1, $2, @2, $4, $5, 0); }
    | LABEL IDENT ':' class_spec opt_shape   { ast_label(ctx, @1, $2, @2, $4, $5); }
    | TARGET IDENT ':' shape                 { ast_target(ctx, @1, $2, @2, $4); }
    | PARAM IDENT ':' shape opt_init opt_word { ast_param(ctx, @1, $2, @2, $4, $5, $6, @6); }
    | CONST IDENT ':' shape opt_init         { ast_const(ctx, @1, $2, @2, $4, $5); }
    | IDENT '=' expr                         { ast_bind(ctx, @1, $1, $3); }
    | LOSS '=' expr                          { ast_loss(ctx, @1, $3); }
    | OUTPUT IDENT '=' expr                  { ast_output(ctx, @1, $2, @2, $4); }
    | TRAIN '{' train_body '}'               { ast_train(ctx, @1, $3); }
    | IDENT ',' more_names '=' expr          { ast_unpack(ctx, ast_arg_append(ast_name_item(ctx, @1, $1), $3), $5); }
    | DEF IDENT '(' params ')' '{' body '}'  { ast_def(ctx, @1, $2, @2, $4, $7); }
    ;

/* a def's body: statements separated by newlines or ';' */
body
    : body_item
    | body NEWLINE body_item                 { $$ = ast_stmt_append($1, $3); }
    ;

body_item
    : %empty                                 { $$ = NULL; }
    | names '=' expr                         { $$ = ast_body_bind(ctx, $1, $3); }
    | RETURN expr                            { $$ = ast_body_return(ctx, @1, $2); }
    ;

names
    : IDENT                                  { $$ = ast_name_item(ctx, @1, $1); }
    | IDENT ',' more_names                   { $$ = ast_arg_append(ast_name_item(ctx, @1, $1), $3); }
    ;

more_names
    : IDENT                                  { $$ = ast_name_item(ctx, @1, $1); }
    | more_names ',' IDENT                   { $$ = ast_arg_append($1, ast_name_item(ctx, @3, $3)); }
    ;

params
    : %empty                                 { $$ = NULL; }
    | more_names
    ;

class_spec
    : CLASS '(' expr ')'                     { $$ = $3; }
    ;

shape
    : '[' elems ']'                          { $$ = ast_list(ctx, @1, $2); }
    ;

opt_shape
    : %empty                                 { $$ = NULL; }
    | shape
    ;

opt_grad
    : %empty                                 { $$ = 0; }
    | GRAD                                   { $$ = 1; }
    ;

opt_init
    : %empty                                 { $$ = NULL; }
    | '=' expr                               { $$ = $2; }
    ;

/* a word ending a statement: `param ... frozen` */
opt_word
    : %empty                                 { $$ = NULL; }
    | IDENT
    ;

train_body
    : %empty                                 { $$ = NULL; }
    | train_body NEWLINE                     { $$ = $1; }
    | train_body train_item                  { $$ = ast_arg_append($1, $2); }
    ;

train_item
    : IDENT '=' expr                         { $$ = ast_arg_new(ctx, @1, $1, $3); }
    ;

expr
    : expr '+' expr                          { $$ = ast_binary(ctx, @2, '+', $1, $3); }
    | expr '-' expr                          { $$ = ast_binary(ctx, @2, '-', $1, $3); }
    | expr '*' expr                          { $$ = ast_binary(ctx, @2, '*', $1, $3); }
    | expr '/' expr                          { $$ = ast_binary(ctx, @2, '/', $1, $3); }
    | expr '@' expr                          { $$ = ast_binary(ctx, @2, '@', $1, $3); }
    | expr '^' expr                          { $$ = ast_binary(ctx, @2, '^', $1, $3); }
    | '-' expr %prec NEG                     { $$ = ast_neg(ctx, @1, $2); }
    | primary
    ;

primary
    : NUMBER                                 { $$ = ast_num(ctx, @1, $1); }
    | IDENT                                  { $$ = ast_name(ctx, @1, $1); }
    | IDENT '(' args ')'                     { $$ = ast_call(ctx, @1, $1, $3); }
    | '(' expr ')'                           { $$ = $2; }
    | '(' expr ',' elemlist ')'              { $$ = ast_tuple(ctx, @1, $2, $4); }
    | '[' elems ']'                          { $$ = ast_list(ctx, @1, $2); }
    ;

args
    : %empty                                 { $$ = NULL; }
    | arglist
    ;

arglist
    : arg
    | arglist ',' arg                        { $$ = ast_arg_append($1, $3); }
    ;

arg
    : expr                                   { $$ = ast_arg_new(ctx, @1, NULL, $1); }
    | IDENT '=' expr                         { $$ = ast_arg_new(ctx, @1, $1, $3); }
    ;

elems
    : %empty                                 { $$ = NULL; }
    | elemlist
    ;

elemlist
    : expr                                   { $$ = ast_arg_new(ctx, @1, NULL, $1); }
    | elemlist ',' expr                      { $$ = ast_arg_append($1, ast_arg_new(ctx, @3, NULL, $3)); }
    ;

%%

#include "nnc.lex.h"

int nnc_lex_raw(YYSTYPE *yylval, loc *yylloc, yyscan_t scanner);

/* Notes for yyerror whether the token follows a newline that an open bracket swallowed. */
int yylex(YYSTYPE *yylval, loc *yylloc, void *scanner) {
    lex_state *st = yyget_extra(scanner);
    int token = nnc_lex_raw(yylval, yylloc, scanner);
    st->first_after_nl = st->nl_in_brackets;
    st->nl_in_brackets = 0;
    return token;
}

static void yyerror(loc *at, void *scanner, parse_ctx *ctx, const char *msg) {
    lex_state *st = yyget_extra(scanner);
    /* a bracket left open reads the next lines as part of its statement: blame the bracket */
    if (st->unclosed || (st->depth > 0 && st->first_after_nl)) {
        st->unclosed = 0;
        st->depth = 0;
        diag_error(ctx->d, st->open_at, "this '%c' is never closed", st->open_ch);
        return;
    }
    if (at->line == st->stray_line) return;   /* the stray character was the problem, reported */
    if (!strcmp(msg, "memory exhausted")) msg = "expression nested too deeply";
    diag_error(ctx->d, *at, "%s", msg);
}

int parse_source(parse_ctx *c, const source *src) {
    yyscan_t scanner;
    lex_state st = {.ctx = c, .line = 1, .col = 1};
    int before = c->d->errors;
    if (yylex_init_extra(&st, &scanner)) {
        diag_error(c->d, (loc){0, 0, 0, 0}, "cannot start the scanner");
        return 1;
    }
    YY_BUFFER_STATE buf = yy_scan_bytes(src->text, (int)src->len, scanner);
    yyparse(scanner, c);
    yy_delete_buffer(buf, scanner);
    yylex_destroy(scanner);
    return c->d->errors - before;
}
