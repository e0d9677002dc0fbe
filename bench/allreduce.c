/* allreduce.c — what one gradient sum costs alone: MPI_Allreduce (MPI_SUM, in place) of a
 * block of N floats, as a data-parallel trainer's step ends (runtime/parallel.c), timed
 * over ROUNDS calls after WARMUP.  bench/mpi.sh runs it for each bench model's gradient
 * block; the time, times the steps of an epoch, bounds what overlapping the sum with the
 * backward pass could save.
 *
 *   mpicc -O2 bench/allreduce.c -o allreduce && mpirun -np 2 ./allreduce N [ROUNDS]
 *
 * Prints, from rank 0: "N floats: T us per allreduce (min over ranks of the mean)". */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#define WARMUP 20

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long n = argc > 1 ? atol(argv[1]) : 0, rounds = argc > 2 ? atol(argv[2]) : 200;
    if (n <= 0 || n > 1L << 30 || rounds <= 0) {
        if (rank == 0) fprintf(stderr, "usage: mpirun -np N allreduce FLOATS [ROUNDS]\n");
        MPI_Finalize();
        return 2;
    }
    float *x = malloc((size_t)n * sizeof *x);
    if (!x) MPI_Abort(MPI_COMM_WORLD, 1);
    for (long i = 0; i < n; i++) x[i] = 1e-3f * (float)(i % 1000);
    double t0 = 0;
    for (long r = 0; r < WARMUP + rounds; r++) {
        if (r == WARMUP) {
            MPI_Barrier(MPI_COMM_WORLD);
            t0 = MPI_Wtime();
        }
        MPI_Allreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        for (long i = 0; i < n; i += 4096) x[i] *= 0.5f;   /* keep the values finite */
    }
    double mean = (MPI_Wtime() - t0) / (double)rounds, least;
    MPI_Reduce(&mean, &least, 1, MPI_DOUBLE, MPI_MIN, 0, MPI_COMM_WORLD);
    if (rank == 0) printf("%ld floats: %.1f us per allreduce on %d ranks\n", n, least * 1e6, size);
    free(x);
    MPI_Finalize();
    return 0;
}
