/* bench/layernorm_step.c — layernorm's forward and backward passes in the C nnc generates,
 * for bench/layernorm.sh: it includes the C of a model whose step is a layernorm of
 * [64, 128] per example and the sum of it (MODEL_C, model `lnb`, its `main` renamed away)
 * and times lnb_forward + lnb_backward on a batch of 64, called through pointers as a
 * program linking the model calls them (included here, they would be inlined into this
 * loop and compiled otherwise).  Prints the median and the best of REPS steps (the
 * first 10 left out), in microseconds.
 *
 *   layernorm_step [REPS]      (default 300) */
#define main lnb_trainer_main
#include MODEL_C
#undef main
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 300, n = 64;
    if (reps < 11) reps = 11;
    lnb *m = lnb_new();
    float *x = malloc(sizeof(float) * (size_t)n * 64 * 128);
    double *t = malloc(sizeof(double) * (size_t)reps);
    if (!m || !x || !t) return 1;
    unsigned s = 1;
    for (int i = 0; i < n * 64 * 128; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = (float)((s >> 8) & 0xffff) / 65536.0f - 0.5f;
    }
    for (int i = 0; i < 128; i++) lnb_params(m)[i] = 1.0f + 0.01f * (float)i;   /* weight; bias 0 */
    float (*volatile fwd)(lnb *, int, const float *) = lnb_forward;
    int (*volatile bwd)(lnb *) = lnb_backward;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        fwd(m, n, x);
        bwd(m);
        t[r] = now() - t0;
    }
    qsort(t + 10, (size_t)(reps - 10), sizeof *t, by_value);
    printf("nnc layernorm forward+backward [64, 64, 128]: median %.1f us, best %.1f us\n",
           1e6 * t[10 + (reps - 10) / 2], 1e6 * t[10]);
    lnb_free(m);
    free(x);
    free(t);
    return 0;
}
