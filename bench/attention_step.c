/* bench/attention_step.c — the time of one forward + backward pass of a model that nnc
 * generated, for bench/attention.sh: it includes the model's C (MODEL_C, its `main`
 * renamed away), fills every input with normal(0, 1)-ish values, and times STEPS calls of
 * M_loss_grad (forward, then backward) with CLOCK_MONOTONIC, after 5 not timed.
 *
 *   attention_step N STEPS [MASK_T]
 *
 * N: the batch; MASK_T > 0 makes the input `mask` [T, T] causal: 0 on and below the
 * diagonal, -inf above (the composition's mask, as causal_mask).  Prints `min US median US`
 * per step (and the losses' sum on standard error, so that no step is optimized away).
 * Build: cc -O3 -march=native -fopenmp -DMODEL_C='"m.c"' -DM=m -DINPUTS='q, k, v, t'
 * attention_step.c libnnr.a -lopenblas -ljansson -lz -lm, where INPUTS lists the
 * model's inputs in declaration order, each one an array of this file (q k v mask t). */
#define main model_trainer_main
#include MODEL_C
#undef main
#include <time.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(x) CAT(M, x)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *filled(size_t n, unsigned *seed) {
    float *x = malloc(n * sizeof *x);
    if (!x) exit(1);
    for (size_t i = 0; i < n; i++) {
        float s = 0;
        for (int k = 0; k < 4; k++) s += (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
        x[i] = s * 1.7f;
    }
    return x;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: attention_step N STEPS [MASK_T]\n");
        return 2;
    }
    int n = atoi(argv[1]), steps = atoi(argv[2]), mt = argc > 3 ? atoi(argv[3]) : 0;
    unsigned seed = 1;
    size_t big = (size_t)n * 16384;   /* as many as any input of the bench's models holds */
    float *q = filled(big, &seed), *k = filled(big, &seed), *v = filled(big, &seed), *t = filled(big, &seed);
    float *mask = calloc((size_t)n * (mt > 0 ? mt * mt : 1), sizeof *mask);
    for (int b = 0; b < n && mt > 0; b++)
        for (int i = 0; i < mt; i++)
            for (int j = i + 1; j < mt; j++) mask[((size_t)b * mt + i) * mt + j] = -INFINITY;
    M *m = FN(_new)();
    FN(_init)(m, 1);
    double *dt = malloc(sizeof *dt * (size_t)steps), sink = 0;
    for (int s = -5; s < steps; s++) {
        double t0 = now();
        sink += FN(_loss_grad)(m, n, INPUTS);
        if (s >= 0) dt[s] = now() - t0;
    }
    (void)mask;
    qsort(dt, (size_t)steps, sizeof *dt, by_value);
    printf("min %.1f median %.1f\n", dt[0] * 1e6, dt[steps / 2] * 1e6);
    fprintf(stderr, "loss sum %g\n", sink);
    FN(_free)(m);
    return 0;
}
