/* builtins.h — the table of every built-in function of the model language.
 *
 * One row per function: its name, its arguments with their defaults, the function that
 * lowers a call of it and a line for the docs.  Lowering finds a call's row here,
 * checks the call's arguments against the row before the row's function sees them and,
 * for a name with no row, suggests the nearest name of the table; docs/functions.md is
 * printed from the same rows (builtins_markdown), so the docs cannot miss a function.
 * The table itself is in builtins.c. */
#ifndef NNC_BUILTINS_H
#define NNC_BUILTINS_H
#include <stdio.h>
#include "ast.h"
#include "ir.h"

#define BUILTIN_MAXARGS 8     /* as many as a call's gathered arguments hold (callargs) */

/* The docs' groups, in the order the docs list them. */
typedef enum { BK_ELEMENTWISE, BK_REDUCTION, BK_LAST_AXIS, BK_LAYOUT, BK_TENSOR, BK_PRODUCT, BK_LAYER, BK_LOSS,
               BK_REGULARIZER, BK__COUNT } builtin_kind;

struct lower;
struct callargs;
/* Lowers call e, its arguments gathered against its row (callargs, lower_internal.h). */
typedef ir_node *builtin_fn(struct lower *L, const ast_expr *e, const struct callargs *ca);

typedef struct builtin {
    const char  *name;
    builtin_kind kind;
    /* The arguments, written as a Python signature: "x, units, *, bias=true, init=...".
     * Those before '*' are given by position or by name, those after it by name only,
     * and a last "/" allows no names at all.  "=v" is the default as the docs print it,
     * in parentheses where it is not a value one could write ("(every axis)"); an
     * argument without one must be given.  No default holds a ','.  A "..." after the
     * positional arguments takes any number more of them (concat's operands). */
    const char  *args;
    builtin_fn  *lower;
    int          how;         /* handed to lower (callargs.how): an op, conv2d's 2 dimensions, ... */
    const char  *doc;         /* one line for the docs */
} builtin;

/* A row's args taken apart (builtin_parse). */
typedef struct builtin_sig {
    int         nargs, positional, required, no_keywords;
    int         variadic;                    /* "...": more positional arguments may follow */
    const char *name[BUILTIN_MAXARGS + 1];   /* NULL after the last */
    const char *def[BUILTIN_MAXARGS];        /* NULL where there is no default */
    char        buf[160];                    /* the names and defaults point here */
} builtin_sig;

/* Every row; the name of the last is NULL. */
extern const builtin builtins[];

/* The row for a call of name with npos positional arguments, or NULL.  A name may have
 * several rows (max(x) reduces, max(a, b) compares): the one whose positional count
 * the call has, else the name's last row.  The row's args are left taken apart in sig. */
const builtin *builtin_find(const char *name, int npos, builtin_sig *sig);
/* Takes b's args apart into s; arguments past BUILTIN_MAXARGS are dropped (the unit
 * tests check that every row parses cleanly). */
void builtin_parse(const builtin *b, builtin_sig *s);
/* docs/functions.md: the table as markdown, grouped by kind. */
void builtins_markdown(FILE *out);
#endif
