/* app.c — a C application that embeds a model nnc generated: examples/consumer/quadrants.nn
 * (a two-layer MLP) trained on synthetic points, then used to classify new ones.
 *
 * It uses only the generated header quadrants.h: quadrants_new, _init, _loss_grad,
 * _train_step, _predict and _free.  It exits 1 when training did not lower the held-out
 * loss or the trained model classifies no better than 90%, so the build of this example
 * (tests/consumer.sh) is also a test that the linked model works.
 *
 *   nnc quadrants.nn -o quadrants.c
 *   cc app.c quadrants.c $(pkg-config --cflags --libs nnr) -o app_c && ./app_c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "quadrants.h"

enum { TRAIN = 2048, TEST = 512, STEPS = 600 };

/* xorshift64*: the same points on every machine, without the runtime's RNG */
static float uniform(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (float)((*s * 2685821657736338717ull) >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}

/* n points of [-1, 1]^2; class 1 in the 1st and 3rd quadrants, 0 in the 2nd and 4th */
static void make_points(uint64_t *seed, int n, float *x, int32_t *y) {
    for (int i = 0; i < n; i++) {
        x[2 * i] = uniform(seed);
        x[2 * i + 1] = uniform(seed);
        y[i] = (x[2 * i] > 0) == (x[2 * i + 1] > 0);
    }
}

/* the mean loss over n examples, in calls of at most QUADRANTS_BATCH */
static float mean_loss(quadrants *m, int n, const float *x, const int32_t *y) {
    double sum = 0;
    for (int i = 0; i < n; i += QUADRANTS_BATCH) {
        int k = n - i < QUADRANTS_BATCH ? n - i : QUADRANTS_BATCH;
        sum += (double)quadrants_loss_grad(m, k, x + 2 * i, y + i) * k;
    }
    return (float)(sum / n);
}

int main(void) {
    static float x[TRAIN * 2], tx[TEST * 2], probs[TEST * 2];
    static int32_t y[TRAIN], ty[TEST];
    uint64_t seed = 42;
    make_points(&seed, TRAIN, x, y);
    make_points(&seed, TEST, tx, ty);

    quadrants *m = quadrants_new();
    if (!m) {
        fprintf(stderr, "app_c: out of memory\n");
        return 1;
    }
    quadrants_init(m, 1);
    float before = mean_loss(m, TEST, tx, ty);
    for (int step = 0; step < STEPS; step++) {   /* batches taken in turn from the set */
        int i = step * QUADRANTS_BATCH % TRAIN;
        quadrants_train_step(m, QUADRANTS_BATCH, x + 2 * i, y + i);
    }
    float after = mean_loss(m, TEST, tx, ty);

    quadrants_predict(m, TEST, tx, probs);   /* probs: [TEST, 2] */
    int right = 0;
    for (int i = 0; i < TEST; i++) right += (probs[2 * i + 1] > probs[2 * i]) == ty[i];
    double accuracy = (double)right / TEST;
    quadrants_free(m);

    printf("app_c: held-out loss %.4f -> %.4f after %d steps, accuracy %.3f\n", before, after,
           STEPS, accuracy);
    if (!(after < before) || accuracy < 0.9) {
        fprintf(stderr, "app_c: the model did not learn\n");
        return 1;
    }
    return 0;
}
