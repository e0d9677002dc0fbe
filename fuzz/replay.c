/* replay.c — a main() for the fuzz targets without libFuzzer: runs
 * LLVMFuzzerTestOneInput once over each file named on the command line (directories are
 * read one level deep), so the regression corpus fuzz/regressions/TARGET/ replays under
 * any compiler (ctest fuzz_regressions, built by tests/CMakeLists.txt with gcc and
 * -fsanitize=address,undefined).  Prints one line per file and exits non-zero if any file
 * cannot be read; a crash aborts through the sanitizers, and a file that runs longer than
 * REPLAY_SECONDS (default 30) fails as a hang. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *current;
static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "replay: timed out (a hang) on ";
    if (write(2, msg, sizeof msg - 1) < 0 || write(2, current, strlen(current)) < 0 ||
        write(2, "\n", 1) < 0) _exit(3);
    _exit(3);
}

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "replay: cannot open %s\n", path); return -1; }
    size_t len = 0, cap = 4096;
    uint8_t *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len, f)) > 0;) {
        len += got;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) { fprintf(stderr, "replay: out of memory reading %s\n", path); return -1; }
    /* an exact-size copy, so reads past the end are caught as on libFuzzer's buffers */
    uint8_t *exact = malloc(len ? len : 1);
    if (len) memcpy(exact, buf, len);
    free(buf);
    const char *secs = getenv("REPLAY_SECONDS");
    current = path;
    signal(SIGALRM, on_alarm);
    alarm(secs ? (unsigned)atoi(secs) : 30);
    LLVMFuzzerTestOneInput(exact, len);
    alarm(0);
    free(exact);
    printf("replayed %s (%zu bytes)\n", path, len);
    return 0;
}

int main(int argc, char **argv) {
    int bad = 0, n = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            if (!d) { bad++; continue; }
            struct dirent *e;
            while ((e = readdir(d))) {
                if (e->d_name[0] == '.') continue;
                char p[4096];
                snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
                bad += run_file(p) != 0;
                n++;
            }
            closedir(d);
        } else {
            bad += run_file(argv[i]) != 0;
            n++;
        }
    }
    printf("%d files replayed, %d unreadable\n", n, bad);
    return bad ? 1 : 0;
}
