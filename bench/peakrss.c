/* bench/peakrss.c — runs one command and records its peak resident set size, for
 * bench/bench.sh.  The command's output passes through; its exit status is ours.
 *
 *   peakrss KB_FILE COMMAND [ARGS...]
 *
 * KB_FILE gets one number: the command's peak RSS in KiB, ru_maxrss as wait4 reports it
 * (a child the command waited for counts only where it was bigger).  Linux carries the
 * RSS of the process that called exec into that figure, so the wrapper is a small C
 * program (about 1 MiB) rather than a script whose interpreter would set the floor. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: peakrss KB_FILE COMMAND [ARGS...]\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "peakrss: fork: %s\n", strerror(errno));
        return 2;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        fprintf(stderr, "peakrss: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "peakrss: wait4: %s\n", strerror(errno));
            return 2;
        }
    FILE *f = fopen(argv[1], "w");
    if (!f || fprintf(f, "%ld\n", ru.ru_maxrss) < 0 || fclose(f) != 0) {
        fprintf(stderr, "peakrss: cannot write %s\n", argv[1]);
        return 2;
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
