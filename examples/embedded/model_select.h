/* model_select.h: which generated model classify.c and finetune.c are compiled against.
 *
 * nnc prefixes every symbol of a generated model with its name (fashion_mlp_new,
 * FASHION_MLP_BATCH, ...).  The programs call them through NNR_FN(new) and NNR_MACRO(BATCH),
 * so one source serves every model:
 *   (default)        fashion_mlp       from fashion_mlp.h
 *   -DMODEL_CNN      fashion_cnn       from fashion_cnn.h
 *   -DMODEL_TAIL     fashion_mlp_tail  from fashion_mlp_tail.h (finetune.c's default)
 *   -DNNR_MODEL=foo -DNNR_MODEL_U=FOO -DNNR_MODEL_H='"foo.h"'   any other model
 */
#ifndef MODEL_SELECT_H
#define MODEL_SELECT_H

#if defined(NNR_MODEL)
/* given on the command line */
#elif defined(MODEL_CNN)
#define NNR_MODEL   fashion_cnn
#define NNR_MODEL_U FASHION_CNN
#define NNR_MODEL_H "fashion_cnn.h"
#elif defined(MODEL_TAIL)
#define NNR_MODEL   fashion_mlp_tail
#define NNR_MODEL_U FASHION_MLP_TAIL
#define NNR_MODEL_H "fashion_mlp_tail.h"
#else
#define NNR_MODEL   fashion_mlp
#define NNR_MODEL_U FASHION_MLP
#define NNR_MODEL_H "fashion_mlp.h"
#endif

#define NNR_CAT_(a, b) a##b
#define NNR_CAT(a, b) NNR_CAT_(a, b)
#define NNR_STR_(a) #a
#define NNR_STR(a) NNR_STR_(a)
#define NNR_FN(f) NNR_CAT(NNR_MODEL, NNR_CAT(_, f))        /* NNR_FN(new): fashion_mlp_new */
#define NNR_MACRO(m) NNR_CAT(NNR_MODEL_U, NNR_CAT(_, m))   /* NNR_MACRO(BATCH) */
#define NNR_MODEL_NAME NNR_STR(NNR_MODEL)

#include NNR_MODEL_H

#endif
