/* gemm.c — the matrix products of generated code, and nnc's threads.
 *
 * A generated step calls nnr_sgemm / nnr_dgemm where it would call cblas_sgemm /
 * cblas_dgemm (same arguments).  A product large enough to be worth it is cut into a
 * fixed number of blocks of rows or columns of C — 1, 2, 4 or 8, chosen from its shape
 * alone — and each block is one single-threaded cblas call, run on nnc's threads.  So
 * every element of every result is computed by the same call with the same operands at
 * any thread count, and a training run gives the same bits with 1 thread or 16: OpenBLAS's
 * own threads split a product in ways that depend on their number (with 0.3.21, sgemm with
 * K = 784 sums in another order at 2 threads than at 1), which made a run's accuracy
 * depend on the machine it ran on.
 *
 * nnc's thread count is what OpenBLAS would have used (OPENBLAS_NUM_THREADS, else
 * OMP_NUM_THREADS, else one per core), read once; OpenBLAS itself is then set to one
 * thread, so that its threads and nnc's never compete for the cores.
 *
 * How idle threads wait is chosen once, at start (nnr_threads_passive).  libgomp's
 * default spins a worker for about 300,000 iterations after each parallel region; with
 * another process busy on a 2-core machine the spinner takes the core the other thread
 * needs, and every region's barrier then waits for a time slice.  Measured on the
 * character LSTM example, one epoch of 8 KB of text beside one CPU-burning process:
 * 1 thread 1.79 s, 2 threads 9.57 s spinning, 1.74 s passive.  But a thread that sleeps
 * at once is woken for each of the LSTM's 48 small products a batch, which on an idle
 * machine made its 2-thread epoch 1.26x that of a bounded spin (README, "Threads").  So
 * the threads spin for NNR_SPINCOUNT iterations when the processes already running
 * leave a core for each of them, and sleep at once otherwise.
 */
#include "nnr.h"

#include <cblas.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int nnr_nthreads = 1;
static pthread_once_t nnr_threads_once = PTHREAD_ONCE_INIT;

static void threads_init(void) {
    int t = openblas_get_num_threads();
    nnr_nthreads = t > 1 ? t : 1;
    openblas_set_num_threads(1);
}

int nnr_threads(void) {
    pthread_once(&nnr_threads_once, threads_init);
    return nnr_nthreads;
}

void nnr_set_threads(int n) {
    pthread_once(&nnr_threads_once, threads_init);
    nnr_nthreads = n > 1 ? n : 1;
}

/* How long an idle thread spins before it sleeps, in libgomp's iterations: about 0.3 ms
 * here.  The char LSTM's 2-thread epoch on an idle machine, 4 alternating rounds: 3,000
 * iterations 0.83x the passive one, 10,000 0.79x, as fast as spinning without end. */
#define NNR_SPINCOUNT "10000"

int nnr_wait_spins(int threads, int cpus, int others) {
    return threads > 1 && others >= 0 && (long)others + threads <= cpus;
}

/* This process's threads that are running or runnable now, or -1 without /proc. */
static int own_running(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    for (struct dirent *t; (t = readdir(d));) {
        if (t->d_name[0] == '.') continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", t->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        const char *state = strrchr(buf, ')');   /* "pid (comm) S ...": comm may hold spaces */
        n += state && state[1] == ' ' && state[2] == 'R';
    }
    closedir(d);
    return n;
}

/* The threads of other processes running or runnable, the kernel's procs_running less
 * this process's own: the median of 7 looks 1 ms apart, so that a blip (a shell, a
 * daemon waking) does not count and a busy process does; -1 when unknown (no /proc). */
static int others_running(void) {
    int seen[7];
    for (int i = 0; i < 7; i++) {
        FILE *f = fopen("/proc/stat", "r");
        if (!f) return -1;
        char line[256];
        int all = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "procs_running %d", &all) == 1) break;
        fclose(f);
        int own = own_running();
        if (all < 0 || own < 0) return -1;
        seen[i] = all - own;
        for (int j = i; j > 0 && seen[j - 1] > seen[j]; j--) {   /* kept sorted */
            int t = seen[j];
            seen[j] = seen[j - 1];
            seen[j - 1] = t;
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    return seen[3];
}

void nnr_threads_passive(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT") || !argv || !argv[0]) return;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int spin = nnr_wait_spins(nnr_threads(), cpus > 0 && cpus < 1 << 20 ? (int)cpus : 1, others_running());
    const char *var = spin ? "GOMP_SPINCOUNT" : "OMP_WAIT_POLICY";
    if (setenv(var, spin ? NNR_SPINCOUNT : "passive", 1)) return;
    execv("/proc/self/exe", argv);
    unsetenv(var);   /* no /proc: keep libgomp's default, as loaded */
}

/* How a product is cut: into blocks of `size` rows of C (rows) or columns (!rows). */
typedef struct gemm_block { int rows; long long size; } gemm_block;

#ifndef NNR_GEMM_BLOCK_MACS
#define NNR_GEMM_BLOCK_MACS (1LL << 21)
#endif

/* How many blocks a product of m x n x k multiply-adds is cut into: one per
 * NNR_GEMM_BLOCK_MACS (2^21, about 50 us on one core), rounded down to a power of two so that
 * 2 and 4 threads share them evenly, at most 8, never thinner than 16 rows or columns.
 * Every block packs again the operand it shares with the others, which one thread pays
 * for: at 2^20 the Fashion MLP's one-thread epoch took 4 % longer and the char LSTM's 5 %,
 * at 2^21 and 2^22 neither moved, but at 2^22 the LSTM's 64x512x128 step products stayed
 * whole and a second thread did not speed it up at all (2^21: 1.4x).  C is cut along its
 * longer side, so that the operand every block packs again is the smaller one. */
static int gemm_blocks(long long m, long long n, long long k, gemm_block *b) {
    double macs = (double)m * (double)n * (double)k;   /* three int sizes can pass 2^63 */
    long long along = m >= n ? m : n;
    int blocks = 1;
    while (blocks < 8 && macs >= 2.0 * NNR_GEMM_BLOCK_MACS * blocks && along >= 32LL * blocks) blocks *= 2;
    b->rows = m >= n;
    if (blocks == 1) {
        b->size = along;
        return 1;
    }
    b->size = ((along + blocks - 1) / blocks + 15) / 16 * 16;   /* whole vectors of C a block */
    return (int)((along + b->size - 1) / b->size);
}

/* Block p of the product: its size, and how far A (rows) or B (columns) and C move. */
static long long block_at(const gemm_block *g, int p, long long m, long long n, enum CBLAS_TRANSPOSE ta,
                          enum CBLAS_TRANSPOSE tb, int lda, int ldb, int ldc, long long *da, long long *db,
                          long long *dc) {
    long long at = p * g->size, len = (g->rows ? m : n) - at;
    if (len > g->size) len = g->size;
    if (g->rows) {   /* rows of op(A): rows of A, or its columns when transposed */
        *da = ta == CblasNoTrans ? at * lda : at, *db = 0, *dc = at * ldc;
    } else {         /* columns of op(B): columns of B, or its rows when transposed */
        *da = 0, *db = tb == CblasNoTrans ? at : at * ldb, *dc = at;
    }
    return len;
}

/* Runs the blocks of C = alpha op(A) op(B) + beta C, f64 when dbl, else f32 (alpha and
 * beta go through double exactly).  A product of one block is called without a parallel
 * region: even one that `if` turns off costs some 2 us a call, as much as a 64x64x32
 * product takes (bench/stack_matmul.sh: a loop of 256 of them ran at 48 GFLOP/s through
 * the region, 85 without). */
static void gemm_cut(int dbl, enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m,
                     int n, int k, double alpha, const void *a, int lda, const void *b, int ldb, double beta,
                     void *c, int ldc) {
    gemm_block g;
    int threads = nnr_threads(), blocks = order == CblasRowMajor ? gemm_blocks(m, n, k, &g) : 1;
    size_t es = dbl ? sizeof(double) : sizeof(float);
    if (blocks == 1) {
        if (dbl)
            cblas_dgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else
            cblas_sgemm(order, ta, tb, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int p = 0; p < blocks; p++) {
        long long da, db, dc, len = block_at(&g, p, m, n, ta, tb, lda, ldb, ldc, &da, &db, &dc);
        int bm = g.rows ? (int)len : m, bn = g.rows ? n : (int)len;
        const char *pa = (const char *)a + da * es, *pb = (const char *)b + db * es;
        char *pc = (char *)c + dc * es;
        if (dbl)
            cblas_dgemm(order, ta, tb, bm, bn, k, alpha, (const double *)pa, lda, (const double *)pb, ldb, beta,
                        (double *)pc, ldc);
        else
            cblas_sgemm(order, ta, tb, bm, bn, k, (float)alpha, (const float *)pa, lda, (const float *)pb, ldb,
                        (float)beta, (float *)pc, ldc);
    }
}

void nnr_sgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n,
               int k, float alpha, const float *a, int lda, const float *b, int ldb, float beta, float *c,
               int ldc) {
    gemm_cut(0, order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void nnr_dgemm(enum CBLAS_ORDER order, enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int m, int n,
               int k, double alpha, const double *a, int lda, const double *b, int ldb, double beta,
               double *c, int ldc) {
    gemm_cut(1, order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
