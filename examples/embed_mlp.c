/* embed_mlp.c — an application that compiles a generated trainer into itself.
 *
 * nnc turns examples/fashion_mlp.nn into fashion_mlp.c and fashion_mlp.h; this program
 * uses only that header (and the runtime's IDX reader) to train the model for some
 * steps with its own loop (zero_grad, forward, backward, update: what train_step does in
 * one call), save it, load it into a second instance, read a parameter by name and
 * classify the test set.  docs/c-api.md describes the whole API.
 *
 *   nnc examples/fashion_mlp.nn -o fashion_mlp.c
 *   cc -O2 -fopenmp -I. -I<nnc>/runtime examples/embed_mlp.c fashion_mlp.c <nnc build>/libnnr.a \
 *      -lopenblas -ljansson -lz -lm -o embed_mlp
 *   ./embed_mlp /usr/share/datasets/fashion-mnist [steps]
 */
#include <stdio.h>
#include <stdlib.h>
#include "fashion_mlp.h"

/* IDX images as floats in [0, 1] and labels as int32, as the trainer program loads them. */
static int load(const char *dir, const char *set, float **x, int32_t **y, int *n) {
    char path[1024];
    nnr_tensor img, lab;
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte.gz", dir, set);
    if (nnr_idx_read(path, &img)) return -1;
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte.gz", dir, set);
    if (nnr_idx_read(path, &lab)) { nnr_tensor_free(&img); return -1; }
    *n = (int)lab.shape[0];
    *x = malloc(sizeof(float) * (size_t)*n * 784);
    *y = malloc(sizeof(int32_t) * (size_t)*n);
    for (int64_t i = 0; i < (int64_t)*n * 784; i++) (*x)[i] = ((uint8_t *)img.data)[i] / 255.0f;
    for (int i = 0; i < *n; i++) (*y)[i] = ((uint8_t *)lab.data)[i];
    nnr_tensor_free(&img);
    nnr_tensor_free(&lab);
    return 0;
}

static double accuracy(fashion_mlp *m, const float *x, const int32_t *y, int n) {
    float *probs = malloc(sizeof(float) * (size_t)n * 10);
    fashion_mlp_predict(m, n, x, probs);
    int right = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++) if (probs[i * 10 + k] > probs[i * 10 + best]) best = k;
        right += best == y[i];
    }
    free(probs);
    return (double)right / n;
}

int main(int argc, char **argv) {
    nnr_threads_passive(argv);   /* how idle threads wait: see README, "Threads" */
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    int steps = argc > 2 ? atoi(argv[2]) : 938;   /* one epoch of 64-example batches */
    float *xtr, *xte;
    int32_t *ytr, *yte;
    int ntr, nte;
    if (load(dir, "train", &xtr, &ytr, &ntr) || load(dir, "t10k", &xte, &yte, &nte)) {
        fprintf(stderr, "embed_mlp: %s\n", nnr_error());
        return 1;
    }
    fashion_mlp *m = fashion_mlp_new();
    fashion_mlp_init(m, 42);
    double first = 0, last = 0;
    for (int s = 0; s < steps; s++) {
        int at = (s * FASHION_MLP_BATCH) % ntr, n = ntr - at < FASHION_MLP_BATCH ? ntr - at : FASHION_MLP_BATCH;
        fashion_mlp_zero_grad(m);
        float loss = fashion_mlp_forward(m, n, xtr + (size_t)at * 784, ytr + at);
        if (fashion_mlp_backward(m)) {   /* only without a forward, or after a refused one */
            fprintf(stderr, "embed_mlp: %s\n", nnr_error());
            return 1;
        }
        fashion_mlp_update(m);
        if (s < 20) first += loss / 20;
        if (s >= steps - 20) last += loss / 20;
    }
    printf("mean loss of the first 20 steps %.4f, of the last 20 steps %.4f\n", first, last);
    if (fashion_mlp_save(m, "embed_mlp.safetensors")) {
        fprintf(stderr, "embed_mlp: %s\n", nnr_error());
        return 1;
    }
    fashion_mlp *copy = fashion_mlp_new();
    if (fashion_mlp_load(copy, "embed_mlp.safetensors")) {
        fprintf(stderr, "embed_mlp: %s\n", nnr_error());
        return 1;
    }
    printf("test accuracy %.4f (trained model), %.4f (reloaded copy)\n", accuracy(m, xte, yte, nte),
           accuracy(copy, xte, yte, nte));
    nnr_shape shape;
    const float *bias = fashion_mlp_param(copy, "logits.bias", &shape);
    printf("logits.bias [%lld]:", (long long)shape.dim[0]);
    for (int k = 0; bias && k < shape.dim[0]; k++) printf(" %.3f", bias[k]);
    printf("\n");
    fashion_mlp_free(m);
    fashion_mlp_free(copy);
    free(xtr); free(ytr); free(xte); free(yte);
    return 0;
}
