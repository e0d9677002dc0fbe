/* bench/stack_matmul.c — how fast generated code runs a stack of products, for
 * bench/stack_matmul.sh: it includes the C that nnc generates from bench/stack_matmul.nn
 * (MODEL_C, its `main` renamed away) and times its inference function, which is the
 * product alone: s [64, 4, 64, 64] = q [64, 4, 64, 32] @ kt [64, 4, 32, 64], 256 GEMMs of
 * 64x64x32 (codegen/emit_stack.c: a loop over the batch and the heads, shared among
 * nnc's threads).  Next to it, the same multiply-adds as one GEMM of [16384, 32] x
 * [32, 64], through nnr_sgemm (cut into blocks for nnc's threads, as generated code calls
 * it) and through cblas_sgemm on OpenBLAS's single thread; and the 256 GEMMs as a plain
 * loop of cblas_sgemm, and of nnr_sgemm, on one thread.  Each is the median of REPS runs,
 * in GFLOP/s.
 *
 *   stack_matmul [REPS]
 *
 * Build (bench/stack_matmul.sh): cc -O3 -march=native -fopenmp -DMODEL_C='"stack_matmul_model.c"'
 * stack_matmul.c libnnr.a -lopenblas -ljansson -lz -lm. */
#define main stack_matmul_trainer_main
#include MODEL_C
#undef main
#include <time.h>

enum { B = 64, H = 4, T = 64, D = 32 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static float *must(float *p) {
    if (!p) {
        fprintf(stderr, "stack_matmul: out of memory\n");
        exit(1);
    }
    return p;
}

static const float *q, *kt;
static float *s;
static stack_matmul *model;

static void generated(void) { stack_matmul_infer(model, B); }

static void one_gemm_nnr(void) {
    nnr_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B * H * T, T, D, 1.0f, q, D, kt, T, 0.0f, s, T);
}

static void one_gemm_cblas(void) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B * H * T, T, D, 1.0f, q, D, kt, T, 0.0f, s, T);
}

static void loop_nnr(void) {
    for (int b = 0; b < B * H; b++)
        nnr_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, T, D, 1.0f, q + b * T * D, D, kt + b * D * T, T, 0.0f,
                  s + b * T * T, T);
}

static void loop_cblas(void) {
    for (int b = 0; b < B * H; b++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, T, D, 1.0f, q + b * T * D, D, kt + b * D * T, T, 0.0f,
                    s + b * T * T, T);
}

/* The median of reps runs of f, in GFLOP/s. */
static double gflops(void (*f)(void), int reps) {
    double *t = malloc(sizeof *t * (size_t)reps);
    if (!t) exit(1);
    for (int w = 0; w < 10; w++) f();   /* warm: pages touched, threads started, the clock up */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        f();
        t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, by_value);
    double median = t[reps / 2], flops = 2.0 * B * H * T * T * D;
    free(t);
    return flops / median * 1e-9;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 200;
    if (reps < 1) reps = 1;
    float *qq = must(nnr_alloc_aligned((size_t)B * H * T * D * sizeof(float)));
    float *kk = must(nnr_alloc_aligned((size_t)B * H * D * T * sizeof(float)));
    s = must(nnr_alloc_aligned((size_t)B * H * T * T * sizeof(float)));
    for (size_t i = 0; i < (size_t)B * H * T * D; i++) qq[i] = (float)(i % 13) * 0.1f - 0.6f, kk[i] = (float)(i % 7) * 0.2f - 0.6f;
    q = qq, kt = kk;
    model = stack_matmul_new();
    if (!model) return 1;
    const void *in[3] = {q, kt, s};   /* the target is not read by inference */
    stack_matmul_bind_(model, in);
    printf("stack_matmul: [%d, %d, %d, %d] @ [%d, %d, %d, %d], %.1f MFLOP, %d threads, median of %d\n", B, H, T, D, B, H,
           D, T, 2e-6 * B * H * T * T * D, nnr_threads(), reps);
    printf("generated code (a GEMM per matrix, threads over the stack) %7.2f GFLOP/s\n", gflops(generated, reps));
    printf("one GEMM [16384, 32] x [32, 64], nnr_sgemm                  %7.2f GFLOP/s\n", gflops(one_gemm_nnr, reps));
    printf("one GEMM [16384, 32] x [32, 64], cblas_sgemm, 1 thread      %7.2f GFLOP/s\n", gflops(one_gemm_cblas, reps));
    printf("256 GEMMs 64x64x32, a loop of cblas_sgemm, 1 thread         %7.2f GFLOP/s\n", gflops(loop_cblas, reps));
    printf("256 GEMMs 64x64x32, a loop of nnr_sgemm, no pragma          %7.2f GFLOP/s\n", gflops(loop_nnr, reps));
    stack_matmul_free(model);
    free(qq), free(kk), free(s);
    return 0;
}
