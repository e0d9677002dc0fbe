/* lower.h — from the syntax tree to the forward IR graph: names resolved, every call
 * checked against the function table (argument count, keywords, kinds), layers expanded
 * into their parameters (named after the binding that holds them), the train { } block
 * read into the training configuration. */
#ifndef NNC_LOWER_H
#define NNC_LOWER_H
#include "ast.h"
#include "ir.h"

/* Builds g's forward graph from prog; reports every problem to d. */
void lower_program(ir_graph *g, const ast_program *prog, diag *d);
#endif
