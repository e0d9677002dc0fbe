/* plan.c — the memory plan: every materialized tensor gets a block and an offset,
 * fixed at compile time, so the generated code allocates once (in NAME_new) and never
 * inside a training step.  Parameters are laid out in declaration order in one block
 * and their gradients at the same offsets in a second, which lets the optimizer update
 * every parameter in one loop.  Activations and backward temporaries share a third
 * block; each batched tensor holds BATCH examples, and a node that needs working memory
 * (a direct convolution, a convolution's gradients: fuse.c) gets it right after its own
 * tensor, if it has one.
 * Offsets are aligned to 64 bytes.  The optimizer's state is a fourth block, its size
 * given here for the emitter and --summary alike.
 * (No buffer is reused yet: the activation block is the sum of the tensors.) */
#include "codegen.h"

#define ALIGN 16   /* elements: 64 bytes of floats */

static int64_t align_up(int64_t v) { return (v + ALIGN - 1) / ALIGN * ALIGN; }

void plan_memory(ir_graph *g) {
    int64_t off = 0;
    /* trainable parameters first, so the optimizer's loop stops before the buffers */
    for (int buffers = 0; buffers < 2; buffers++) {
        for (int i = 0; i < g->params.n; i++) {
            ir_node *p = g->params.v[i];
            if (p->param.buffer != buffers) continue;
            p->offset = off;
            off = align_up(off + ir_numel(&p->shape));
            /* the gradient lives at the same offset of the gradient block */
            if (p->grad && p->grad->mem == MEM_ACT) {
                p->grad->mem = MEM_GRAD;
                p->grad->offset = p->offset;
            }
        }
        if (!buffers) g->train_size = off;
    }
    g->param_size = off;
    off = 0;
    for (int i = 0; i < g->nodes.n; i++) {
        ir_node *n = ir_at(g, i);
        if (n->mem != MEM_ACT && !n->scratch) continue;
        if (n->mem == MEM_ACT) {
            n->offset = off;
            off = align_up(off + ir_numel(&n->shape) * (n->batched ? g->train.batch : 1));
        }
        n->scratch_offset = off;
        off = align_up(off + n->scratch);
    }
    g->act_size = off;
}

int plan_state_slots(int opt) {
    switch (opt) {
    case 0: return 0;                  /* sgd */
    case 1: case 2: case 3: case 4: return 1;   /* momentum, nesterov, adagrad, rmsprop */
    default: return 2;                 /* adadelta, adam, adamax, nadam */
    }
}

/* nadam (8) also keeps the running product of its momentum coefficients, a double, in
 * two more elements (room for it in f32), so a checkpoint of the block is complete. */
int64_t plan_state_size(const ir_graph *g) {
    return plan_state_slots(g->train.opt) * g->train_size + (g->train.opt == 8 ? 2 : 0);
}
