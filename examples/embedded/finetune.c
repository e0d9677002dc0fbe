/* finetune.c: training on the device.  The model, fashion_mlp_tail.nn, is fashion_mlp with
 * its first two layers frozen, compiled by `nnc fashion_mlp_tail.nn --target embedded
 * --weights tail.safetensors --batch 20` (no --infer-only: the training functions are
 * there) from a checkpoint trained on the host.  It trains the last layer for NNR_STEPS
 * steps (default 10) on the images baked into test_images.c, NAME_BATCH at a time (the
 * batches go round the baked set), prints `step S: loss X` after each, the loss of the
 * whole set before and after, and returns nonzero when the last step's loss is not below
 * the first's (or the model could not be created).
 *
 * The same program builds for the host against nnc's host target (`nnc
 * fashion_mlp_tail.nn -o fashion_mlp_tail.c`, linked with libnnr) with
 * -DNNR_HOST_LOAD='"tail.safetensors"': the host model starts from that file instead of
 * baked weights, and its losses are the reference run.sh compares the device's with.
 */
#include <stdio.h>
#include <stdint.h>

#ifndef MODEL_CNN
#ifndef NNR_MODEL
#define MODEL_TAIL
#endif
#endif
#include "model_select.h"
#include "test_images.h"

#ifndef NNR_STEPS
#define NNR_STEPS 10
#endif
#ifndef NNR_LR            /* the learning rate; 0 keeps the train block's */
#define NNR_LR 0
#endif

/* The mean loss over the baked set, without training (forward only, BATCH at a time). */
static double set_loss(NNR_MODEL *m)
{
    double sum = 0;
    for (int k = 0; k < NNR_TEST_N; k += NNR_MACRO(BATCH)) {
        int n = NNR_TEST_N - k < NNR_MACRO(BATCH) ? NNR_TEST_N - k : NNR_MACRO(BATCH);
        sum += (double)NNR_FN(forward)(m, n, nnr_test_images[k], &nnr_test_labels[k]) * n;
    }
    return sum / NNR_TEST_N;
}

int main(void)
{
#ifdef NNR_HOST_LOAD
    printf("model %s (host): %ld parameters, batch %d\n", NNR_MODEL_NAME,
           (long)NNR_MACRO(PARAMS), (int)NNR_MACRO(BATCH));
    NNR_MODEL *m = NNR_FN(new)();
    if (!m || NNR_FN(load)(m, NNR_HOST_LOAD) != 0) {
        printf("error: %s: %s\n", NNR_HOST_LOAD, nnr_error());
        return 1;
    }
#else
    printf("model %s: %ld parameters, batch %d, %ld bytes of RAM "
           "(params %ld, grads %ld, state %ld, acts %ld), %ld bytes of baked weights\n",
           NNR_MODEL_NAME, (long)NNR_MACRO(PARAMS), (int)NNR_MACRO(BATCH),
           (long)NNR_MACRO(RAM_BYTES), (long)NNR_MACRO(RAM_PARAMS), (long)NNR_MACRO(RAM_GRADS),
           (long)NNR_MACRO(RAM_STATE), (long)NNR_MACRO(RAM_ACTS),
           (long)NNR_MACRO(FLASH_WEIGHTS));
    NNR_MODEL *m = NNR_FN(new)();
    if (!m) {
        printf("error: %s_new: %s\n", NNR_MODEL_NAME, NNR_FN(error)());
        return 1;
    }
#endif
    if (NNR_LR > 0) NNR_FN(set_lr)(m, NNR_LR);
    printf("learning rate %g, %d steps on %d images\n", NNR_FN(lr)(m), NNR_STEPS, NNR_TEST_N);
    printf("loss of the %d images before: %.6f\n", NNR_TEST_N, set_loss(m));

    float first = 0, last = 0;
    int k = 0;
    for (int s = 1; s <= NNR_STEPS; s++) {
        int n = NNR_TEST_N - k < NNR_MACRO(BATCH) ? NNR_TEST_N - k : NNR_MACRO(BATCH);
        last = NNR_FN(train_step)(m, n, nnr_test_images[k], &nnr_test_labels[k]);
        if (s == 1) first = last;
        printf("step %d: loss %.6f\n", s, (double)last);
        k = (k + n) % NNR_TEST_N;
    }
    printf("loss of the %d images after %ld steps: %.6f\n", NNR_TEST_N,
           (long)NNR_FN(step)(m), set_loss(m));
    NNR_FN(free)(m);
    if (!(last < first)) {
        printf("FAIL: the last loss %.6f is not below the first %.6f\n", (double)last,
               (double)first);
        return 1;
    }
    printf("ok: the loss went from %.6f to %.6f\n", (double)first, (double)last);
    return 0;
}
