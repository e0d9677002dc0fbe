/* bench/mlp_step.c — where one training step of the Fashion MLP goes, for
 * bench/mlp_step.sh: it includes the C that nnc generates from examples/fashion_mlp.nn
 * (MODEL_C, its `main` renamed away) and runs the trainer's epoch loop itself, timing
 * each part of every step with CLOCK_MONOTONIC: the batch gathered from the data set
 * (nnr_data_gather, as the trainer does), fashion_mlp_forward_pass, fashion_mlp_backward_pass and
 * fashion_mlp_update.  Then the floor of the update: a loop that does only what Adam
 * cannot do without per parameter, one square root and one division, over as many
 * floats, as many times as there are steps.
 *
 *   mlp_step TRAIN_IMAGES TRAIN_LABELS [EPOCHS]
 *
 * Prints a line per epoch and then the last epoch's parts (and their sum, `step`) as
 * `part NAME US_PER_STEP` lines.  The examples are shuffled each epoch and the parameters
 * initialized with seed 0, so the sparse paths see real batches of a real run.
 * Build (bench/mlp_step.sh): cc -O3 -march=native -fopenmp -DMODEL_C='"fashion_mlp.c"'
 * mlp_step.c libnnr.a -lopenblas -ljansson -lz -lm. */
#define main fashion_mlp_trainer_main
#include MODEL_C
#undef main
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *must(void *p) {
    if (!p) {
        fprintf(stderr, "mlp_step: out of memory\n");
        exit(1);
    }
    return p;
}

/* The update's floor: q = a / (sqrt(b) * c + eps) over n floats, `steps` times. */
static double update_floor(int64_t n, int64_t steps) {
    float *a = must(nnr_alloc_aligned((size_t)n * sizeof(float)));
    float *b = must(nnr_alloc_aligned((size_t)n * sizeof(float)));
    float *q = must(nnr_alloc_aligned((size_t)n * sizeof(float)));
    for (int64_t i = 0; i < n; i++) a[i] = 1e-3f * (float)(i % 97), b[i] = 1e-6f * (float)(i % 89 + 1);
    volatile float c = 1.0005f, eps = 1e-8f;   /* not folded into the loop */
    const float cc = c, ee = eps;
    double t0 = now();
    for (int64_t s = 0; s < steps; s++) {
        for (int64_t i = 0; i < n; i++) q[i] = a[i] / (sqrtf(b[i]) * cc + ee);
        __asm__ volatile("" : : "r"(q) : "memory");   /* every step's stores happen */
    }
    double t = now() - t0;
    free(a), free(b), free(q);
    return t;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: mlp_step TRAIN_IMAGES TRAIN_LABELS [EPOCHS]\n");
        return 2;
    }
    const nnr_model_info *info = &fashion_mlp_model;
    char xs[4096], ys[4096];
    snprintf(xs, sizeof xs, "x=%s", argv[1]);
    snprintf(ys, sizeof ys, "y=%s", argv[2]);
    const char *spec[] = {xs, ys};
    int epochs = argc == 4 ? atoi(argv[3]) : 3;
    if (epochs < 1) {
        fprintf(stderr, "mlp_step: EPOCHS must be a positive integer, not '%s'\n", argv[3]);
        return 2;
    }
    nnr_dataset d;
    if (nnr_data_load(info, 2, spec, 1u << NNR_IO_INPUT | 1u << NNR_IO_LABEL, &d)) {
        fprintf(stderr, "mlp_step: %s\n", nnr_error());
        return 1;
    }
    fashion_mlp *m = must(fashion_mlp_new());
    fashion_mlp_init(m, 0);
    void *stage[2] = {must(nnr_alloc_aligned((size_t)info->batch * 784 * sizeof(float))),
                      must(nnr_alloc_aligned((size_t)info->batch * sizeof(int32_t)))};
    int64_t *order = must(malloc((size_t)d.n * sizeof *order));
    const int64_t steps = (d.n + info->batch - 1) / info->batch;
    double part[4] = {0};   /* gather, forward, backward, update: seconds in the last epoch */
    printf("mlp_step: %lld examples, batch %d, %lld steps an epoch, %d threads\n", (long long)d.n,
           info->batch, (long long)steps, nnr_threads());
    for (int e = 0; e < epochs; e++) {
        nnr_rng rng;
        nnr_rng_seed(&rng, 0x5eed + (uint64_t)e);
        for (int64_t i = 0; i < d.n; i++) order[i] = i;
        nnr_rng_shuffle(&rng, order, d.n);
        for (int k = 0; k < 4; k++) part[k] = 0;
        for (int64_t s = 0; s < steps; s++) {
            int nb = (int)(d.n - s * info->batch < info->batch ? d.n - s * info->batch : info->batch);
            double t0 = now();
            nnr_data_gather(info, &d, order + s * info->batch, nb, stage);
            double t1 = now();
            fashion_mlp_bind_(m, (const void *const *)stage);
            fashion_mlp_forward_pass(m, nb);
            double t2 = now();
            fashion_mlp_backward_pass(m, nb);
            double t3 = now();
            fashion_mlp_update(m);
            double t4 = now();
            part[0] += t1 - t0, part[1] += t2 - t1, part[2] += t3 - t2, part[3] += t4 - t3;
        }
        printf("epoch %d  seconds %.4f  loss of the last batch %.4f\n", e + 1,
               part[0] + part[1] + part[2] + part[3], m->loss);
    }
    static const char *const name[4] = {"gather", "forward", "backward", "update"};
    for (int k = 0; k < 4; k++) printf("part %s %.1f\n", name[k], part[k] / (double)steps * 1e6);
    printf("part step %.1f\n", (part[0] + part[1] + part[2] + part[3]) / (double)steps * 1e6);
    printf("part update_floor %.1f\n", update_floor(info->param_size, steps) / (double)steps * 1e6);
    fashion_mlp_free(m);
    nnr_data_free(&d);
    free(stage[0]), free(stage[1]), free(order);
    return 0;
}
