/* build.c — `nnc --exe`: compile a generated C file and link it with the runtime
 * library (libnnr.a) into a trainer program.
 *
 * The runtime is taken from where this nnc comes from: an nnc run from its build tree
 * links the runtime built beside it, so a developer never links a stale installed copy;
 * an installed nnc links the installed one.  The compiler runs through fork/execvp, never
 * a shell, so paths with spaces or quotes need no quoting.  NNC_CC (default "cc") and
 * NNC_CFLAGS are split on whitespace, the way make splits CC and CFLAGS, which lets
 * NNC_CC="ccache gcc" work; NNC_CFLAGS come after nnc's own flags so they can override
 * them (e.g. -march=x86-64 for a program that must run on another machine). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "codegen.h"

/* CMake defines these for the nncfront library; the fallbacks let this file compile on
 * its own, as an nnc that was never in a build tree. */
#ifndef NNC_BUILD_DIR
#define NNC_BUILD_DIR ""
#endif
#ifndef NNC_BUILD_INCLUDE
#define NNC_BUILD_INCLUDE ""
#endif
#ifndef NNC_BUILD_LIB
#define NNC_BUILD_LIB ""
#endif
#ifndef NNC_INSTALL_INCLUDE
#define NNC_INSTALL_INCLUDE "/usr/local/include"
#endif
#ifndef NNC_INSTALL_LIB
#define NNC_INSTALL_LIB "/usr/local/lib"
#endif
#ifndef NNC_CBLAS_INCLUDE
#define NNC_CBLAS_INCLUDE ""
#endif
#ifndef NNC_INSTALL_INCLUDEDIR
#define NNC_INSTALL_INCLUDEDIR "include"
#endif
#ifndef NNC_INSTALL_LIBDIR
#define NNC_INSTALL_LIBDIR "lib"
#endif
#ifndef NNC_MPI_CFLAGS
#define NNC_MPI_CFLAGS ""
#endif
#ifndef NNC_MPI_LIBS
#define NNC_MPI_LIBS ""     /* empty: this nnc was built without MPI */
#endif
#ifndef NNC_LINK_LIBS
#define NNC_LINK_LIBS "-lopenblas -ljansson -lz -lm"
#endif

/* The directory of the running executable, or NULL where /proc is not available. */
static char *self_dir(arena *a) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return NULL;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash) return NULL;
    return arena_strndup(a, buf, slash == buf ? 1 : (size_t)(slash - buf));
}

/* Whether DIR is the build directory or below it (the test programs live in
 * build/tests).  Both sides are resolved, since the build directory may be reached
 * through a symbolic link. */
static int in_build_tree(arena *a) {
    if (!NNC_BUILD_DIR[0]) return 0;
    char *dir = self_dir(a), *build = realpath(NNC_BUILD_DIR, NULL);
    char *self = dir ? realpath(dir, NULL) : NULL;
    int inside = 0;
    if (self && build) {
        size_t len = strlen(build);
        inside = strncmp(self, build, len) == 0 && (self[len] == '\0' || self[len] == '/');
    }
    free(build);
    free(self);
    return inside;
}

static void add(arena *a, ptrvec *argv, const char *arg) {
    ptrvec_push(a, argv, (void *)arg);
}

static void add_words(arena *a, ptrvec *argv, const char *s) {
    while (s && *s) {
        size_t skip = strspn(s, " \t\n"), len = strcspn(s + skip, " \t\n");
        if (len) add(a, argv, arena_strndup(a, s + skip, len));
        s += skip + len;
    }
}

/* ARG as a shell would need it: bare when harmless, else in single quotes. */
static const char *shell_quote(arena *a, const char *arg) {
    static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789_-+=/.,:@%";
    size_t len = strlen(arg);
    if (len && strspn(arg, safe) == len) return arg;
    char *q = arena_alloc(a, 4 * len + 3), *o = q;
    *o++ = '\'';
    for (const char *p = arg; *p; p++) {
        if (*p == '\'') { memcpy(o, "'\\''", 4); o += 4; }
        else *o++ = *p;
    }
    *o = '\'';
    return q;
}

/* The command for messages, in a form the user can paste into a shell. */
static char *command_text(arena *a, const ptrvec *argv) {
    char *text = "";
    for (int i = 0; i < argv->n - 1; i++)
        text = arena_printf(a, "%s%s%s", text, i ? " " : "", shell_quote(a, argv->v[i]));
    return text;
}

/* Runs argv and waits for it; returns its wait status, or -1 after saying why it could
 * not start.  A close-on-exec pipe carries execvp's errno back, so a missing compiler
 * is reported as such rather than as a compiler that failed with status 127. */
static int run(const ptrvec *argv) {
    char **args = (char **)argv->v;
    int fd[2];
    if (pipe(fd) < 0 || fcntl(fd[1], F_SETFD, FD_CLOEXEC) < 0) {
        fprintf(stderr, "nnc: cannot start the C compiler: %s\n", strerror(errno));
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        execvp(args[0], args);
        int err = errno;
        ssize_t unused = write(fd[1], &err, sizeof err);
        (void)unused;
        _exit(127);
    }
    int start_errno = errno, err = 0;
    close(fd[1]);
    if (pid < 0) {
        close(fd[0]);
        fprintf(stderr, "nnc: cannot start the C compiler: %s\n", strerror(start_errno));
        return -1;
    }
    ssize_t got;
    while ((got = read(fd[0], &err, sizeof err)) < 0 && errno == EINTR) {}
    close(fd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "nnc: waiting for the C compiler: %s\n", strerror(errno));
            return -1;
        }
    if (got == (ssize_t)sizeof err) {
        fprintf(stderr, "nnc: cannot run the C compiler '%s': %s (set NNC_CC to choose another)\n",
                args[0], strerror(err));
        return -1;
    }
    return status;
}

static int check_exists(const char *what, const char *path) {
    if (access(path, R_OK) == 0) return 0;
    fprintf(stderr, "nnc: runtime %s not found: %s (build the 'nnr' target or install nnc)\n",
            what, path);
    return -1;
}

/* An installed nnc finds the runtime beside itself (PREFIX/bin/nnc, PREFIX/include,
 * PREFIX/lib), so an installation can be moved; the configured prefix is the fallback. */
static const char *installed(arena *a, const char *rel, const char *configured) {
    char *dir = self_dir(a);
    if (dir) {
        const char *path = arena_printf(a, "%s/../%s", dir, rel);
        if (access(path, R_OK) == 0) return path;
    }
    return configured;
}

static int build(arena *a, const char *c_path, const char *exe_path, int mpi, int verbose) {
    int local = in_build_tree(a);
    const char *inc = local ? NNC_BUILD_INCLUDE : installed(a, NNC_INSTALL_INCLUDEDIR, NNC_INSTALL_INCLUDE);
    const char *libdir = local ? NNC_BUILD_LIB : installed(a, NNC_INSTALL_LIBDIR, NNC_INSTALL_LIB);
    const char *lib = arena_printf(a, "%s/libnnr.a", libdir), *mpi_lib = arena_printf(a, "%s/libnnr_mpi.a", libdir);
    if (mpi && !NNC_MPI_LIBS[0]) {
        fprintf(stderr, "nnc: --mpi: this nnc was built without MPI (install Open MPI's development files, "
                        "e.g. apt-get install libopenmpi-dev openmpi-bin, and build nnc again)\n");
        return -1;
    }
    if (check_exists("library", lib) < 0 || (mpi && check_exists("MPI library", mpi_lib) < 0) ||
        check_exists("header", arena_printf(a, "%s/nnr.h", inc)) < 0)
        return -1;

    ptrvec argv = {0};
    const char *cc = getenv("NNC_CC");
    add_words(a, &argv, cc && cc[strspn(cc, " \t\n")] ? cc : "cc");
    add_words(a, &argv, "-std=c11 -O3 -march=native -fno-math-errno -fopenmp -D_POSIX_C_SOURCE=200809L");
    add_words(a, &argv, getenv("NNC_CFLAGS"));
    add(a, &argv, arena_printf(a, "-I%s", inc));
    if (NNC_CBLAS_INCLUDE[0]) add(a, &argv, "-I" NNC_CBLAS_INCLUDE);
    if (mpi) add_words(a, &argv, NNC_MPI_CFLAGS);
    add(a, &argv, c_path);
    add(a, &argv, "-o");
    add(a, &argv, exe_path);
    if (mpi) add(a, &argv, mpi_lib);   /* before libnnr.a, whose nnr_main it calls */
    add(a, &argv, lib);
    add_words(a, &argv, NNC_LINK_LIBS);
    if (mpi) add_words(a, &argv, NNC_MPI_LIBS);
    add(a, &argv, NULL);

    if (verbose) fprintf(stderr, "%s\n", command_text(a, &argv));
    int status = run(&argv);
    if (status < 0) return -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "nnc: the C compiler was killed by signal %d: %s\n",
                WTERMSIG(status), command_text(a, &argv));
    else
        fprintf(stderr, "nnc: the C compiler failed (exit %d): %s\n",
                WEXITSTATUS(status), command_text(a, &argv));
    return -1;
}

int build_exe(const char *c_path, const char *exe_path, int mpi, int verbose) {
    arena a = {0};      /* build_exe has no compilation arena; this one lives for the call */
    int rc = build(&a, c_path, exe_path, mpi, verbose);
    arena_free(&a);
    return rc;
}
