/* shape.h — shape inference: per-example shapes with NumPy broadcasting and the
 * implicit batch dimension, checked for every op with a located message that shows
 * both shapes.  A node whose shape cannot be inferred is marked bad and its consumers
 * are skipped silently, so one mistake gives one message. */
#ifndef NNC_SHAPE_H
#define NNC_SHAPE_H
#include "ir.h"

/* Infers the shape of one node from its inputs; 0 on success, -1 after an error. */
int  shape_infer(ir_graph *g, ir_node *n, diag *d);
/* Infers every node not yet inferred, in order (lowering calls it so that a layer can
 * size its parameters from its input). */
void shape_upto(ir_graph *g, diag *d);
/* Runs shape_infer over the forward graph and checks the loss and outputs. */
void shape_pass(ir_graph *g, diag *d);
/* NumPy broadcast of two shapes; 0, or -1 when they do not broadcast. */
int  shape_broadcast(const ir_shape *a, const ir_shape *b, ir_shape *out);
#endif
