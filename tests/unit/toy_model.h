/* toy_model.h — hand-written models that describe themselves to the runtime exactly as
 * nnc's generated code does, so the trainer can be tested without the compiler. */
#ifndef TOY_MODEL_H
#define TOY_MODEL_H

#include "nnr.h"

/* F32 softmax regression: input x: [4], label y: class(3), output probs = softmax(lin(x)),
 * loss = cross_entropy; parameters lin.weight [3, 4], lin.bias [3]; SGD; batch 8. */
extern const nnr_model_info toy_cls_info;

/* F64 linear regression: input x: [3] grad, target t: [2], output pred = lin(x),
 * loss = mse(pred, t); parameters lin.weight [2, 3], lin.bias [2]; SGD; batch 8. */
extern const nnr_model_info toy_reg_info;

/* toy_reg with a wrong gradient (lin.bias's is doubled), for gradcheck to catch. */
extern const nnr_model_info toy_reg_bad_info;

/* toy_cls's model with a momentum step on a gradient scaled by a factor drawn from (seed,
 * step), optimizer state of 15 velocities then a double (2 floats' room), a step schedule
 * (every 2 epochs x 0.5); 4 epochs, seed 5.  For checkpoints and exact resumption. */
extern const nnr_model_info toy_mom_info;

#endif
