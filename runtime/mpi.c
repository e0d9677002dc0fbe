/* mpi.c — the MPI engine of data-parallel training (libnnr_mpi): nnr_mpi_main starts MPI,
 * fills nnr_comm_world with MPI's collectives and runs the trainer (parallel.c says what
 * the ranks do with them).  A trainer built with `nnc MODEL.nn --exe --mpi` calls it from
 * main, and runs as `mpirun -np N ./MODEL train ...`.
 *
 * `train` is the command the ranks share; any other runs on rank 0 alone.  Rank 0 alone
 * speaks: the other ranks' standard output and error go to /dev/null, since
 * they would print the same lines, and a rank other than 0 that fails says so on the
 * standard error it started with.  A run that fails, or a rank that dies, ends the whole
 * job: mpirun kills the others (MPI_Abort here), since a rank left waiting in a
 * collective would wait for ever.  Checkpoints are written atomically by rank 0, so the
 * last one stays whole whatever dies when.
 */
#include "nnr.h"
#include "trainer.h"

#include <fcntl.h>
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* MPI counts are int: larger blocks go in pieces of at most this many elements. */
#define CHUNK (1 << 30)

static int failed(const char *what, int code) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    nnr_set_error("MPI_%s failed: %.*s", what, len, text);
    return -1;
}

static int mpi_sum(void *x, int64_t count, nnr_dtype dtype) {
    MPI_Datatype t = dtype == NNR_F32 ? MPI_FLOAT : dtype == NNR_F64 ? MPI_DOUBLE : MPI_INT64_T;
    size_t es = nnr_dtype_size(dtype);
    for (int64_t at = 0; at < count; at += CHUNK) {
        int n = (int)(count - at < CHUNK ? count - at : CHUNK);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)x + (size_t)at * es, n, t, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return failed("Allreduce", rc);
    }
    return 0;
}

static int mpi_min_u64(uint64_t *x, int count) {
    int rc = MPI_Allreduce(MPI_IN_PLACE, x, count, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : failed("Allreduce", rc);
}

static int mpi_bcast(void *x, int64_t bytes) {
    for (int64_t at = 0; at < bytes; at += CHUNK) {
        int n = (int)(bytes - at < CHUNK ? bytes - at : CHUNK);
        int rc = MPI_Bcast((char *)x + at, n, MPI_BYTE, 0, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return failed("Bcast", rc);
    }
    return 0;
}

/* Ranks other than 0 print nothing; returns a descriptor of the old standard error. */
static int quiet(void) {
    fflush(stdout);
    fflush(stderr);
    int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        close(null);
    }
    return saved;
}

int nnr_mpi_main(const nnr_model_info *info, int argc, char **argv) {
    /* nnr_main may start the program again with how idle threads wait in its environment:
     * that must happen before MPI starts, which a process does once */
    nnr_threads_passive(argv);
    /* nnc's OpenMP threads never call MPI, but they exist: the standard's level for
     * that is FUNNELED (only the main thread calls MPI), not SINGLE */
    int provided = MPI_THREAD_SINGLE;
    int rc = MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) {
        fprintf(stderr, "%s: MPI_Init_thread failed (error %d)\n", argc > 0 ? argv[0] : info->name, rc);
        return 1;
    }
    /* a failed collective returns its error, which the trainer reports, instead of
     * aborting from inside MPI with a message that names no step */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    static nnr_comm comm = {0, 1, mpi_sum, mpi_min_u64, mpi_bcast};
    MPI_Comm_rank(MPI_COMM_WORLD, &comm.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &comm.size);
    nnr_comm_world = &comm;
    /* train is the one command the ranks share; any other (eval, predict, export, ...)
     * runs on rank 0 alone, so that the others do not write its outputs over it */
    if (comm.rank > 0 && (argc < 2 || strcmp(argv[1], "train") != 0)) {
        MPI_Finalize();
        return 0;
    }
    int saved = comm.rank > 0 ? quiet() : -1;
    int status = nnr_main(info, argc, argv);
    fflush(stdout);
    fflush(stderr);
    /* done; stopped by a signal every rank agreed on; a usage error, the same on every rank */
    if (status == 0 || status == 130 || status == 2) {
        MPI_Finalize();
        return status;
    }
    if (saved >= 0) {
        FILE *err = fdopen(saved, "w");
        if (err) {
            fprintf(err, "%s: rank %d of %d: %s\n", nnr_trainer_prog, comm.rank, comm.size, nnr_error());
            fflush(err);
        }
    }
    MPI_Abort(MPI_COMM_WORLD, status);
    return status;
}
