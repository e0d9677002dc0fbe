/* sample.c — new words from a trained character model (examples/charlm/charlm.nn).
 *
 * The model predicts the next byte of a word list from the bytes before it.  This program
 * uses only the header nnc generates for it (charlm.h, which brings the runtime's nnr.h
 * for the RNG and the model's description): it loads a checkpoint, starts from a context
 * of '\n' bytes, as training saw the start of the file, and draws byte after byte from the
 * predicted distribution sharpened or flattened by a temperature, until a '\n' ends the
 * word.  The context then slides on into the next word, as the training windows do, so
 * every word after the first is made up after a word the model made up itself.
 *
 *   nnc examples/charlm/charlm.nn -o charlm.c
 *   cc -std=c11 -O2 -I. -I<nnc>/runtime examples/charlm/sample.c charlm.c \
 *      <nnc build>/libnnr.a -lopenblas -ljansson -lz -lm -o sample
 *   ./sample CKPT [--words N] [--temperature T] [--seed S] [--max-len L]
 *
 * Defaults: 10 words, temperature 0.8 (below 1 favours the likelier bytes), seed 1, at
 * most 32 bytes a word (a longer one is cut there and ended).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charlm.h"

typedef struct settings {
    const char *ckpt;
    long        words, max_len;
    double      temperature;
    unsigned long long seed;
} settings;

static int usage(const char *prog) {
    fprintf(stderr, "usage: %s CKPT [--words N] [--temperature T] [--seed S] [--max-len L]\n",
            prog);
    return 2;
}

/* 0, or the exit status of a command line that cannot be understood. */
static int parse(int argc, char **argv, settings *s) {
    *s = (settings){NULL, 10, 32, 0.8, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (a[0] != '-' && !s->ckpt) { s->ckpt = a; continue; }
        if (!v) return usage(argv[0]);
        if (strcmp(a, "--words") == 0) s->words = strtol(v, &end, 10);
        else if (strcmp(a, "--max-len") == 0) s->max_len = strtol(v, &end, 10);
        else if (strcmp(a, "--temperature") == 0) s->temperature = strtod(v, &end);
        else if (strcmp(a, "--seed") == 0) s->seed = strtoull(v, &end, 0);
        else return usage(argv[0]);
        if (*end) return usage(argv[0]);
        i++;
    }
    if (!s->ckpt || s->words < 0 || s->max_len < 1 || !(s->temperature > 0)) return usage(argv[0]);
    return 0;
}

/* A byte drawn from probs[0..k) raised to the power 1/temperature and renormalized. */
static int draw(const float *probs, int k, double temperature, nnr_rng *rng, double *w) {
    double top = -INFINITY, sum = 0;
    for (int c = 0; c < k; c++) {
        w[c] = probs[c] > 0 ? log(probs[c]) / temperature : -INFINITY;
        if (w[c] > top) top = w[c];
    }
    for (int c = 0; c < k; c++) sum += w[c] = exp(w[c] - top);
    double u = nnr_rng_uniform(rng) * sum;
    for (int c = 0; c < k; c++)
        if ((u -= w[c]) < 0) return c;
    return k - 1;                       /* rounding left u at the end */
}

/* Slides the window one byte on. */
static void push(int32_t *ctx, int t, int byte) {
    memmove(ctx, ctx + 1, (size_t)(t - 1) * sizeof *ctx);
    ctx[t - 1] = byte;
}

int main(int argc, char **argv) {
    settings s;
    int bad = parse(argc, argv, &s);
    if (bad) return bad;
    const nnr_model_info *info = charlm_info();
    const int t = (int)info->io[0].size, k = (int)info->out[0].size;
    charlm *m = charlm_new();
    int32_t *ctx = malloc((size_t)t * sizeof *ctx);
    float *probs = malloc((size_t)k * sizeof *probs);
    double *w = malloc((size_t)k * sizeof *w);
    if (!m || !ctx || !probs || !w) {
        fprintf(stderr, "sample: out of memory\n");
        return 1;
    }
    if (charlm_load(m, s.ckpt)) {
        fprintf(stderr, "sample: %s\n", nnr_error());
        return 1;
    }
    nnr_rng rng;
    nnr_rng_seed(&rng, s.seed);
    for (int i = 0; i < t; i++) ctx[i] = '\n';
    /* an empty word (a '\n' straight after one) is not counted, up to a limit */
    for (long word = 0, tries = 0; word < s.words && tries < 100 * (s.words + 1); tries++) {
        long len = 0;
        for (;; len++) {
            int byte = '\n';
            if (len < s.max_len) {
                charlm_predict(m, 1, ctx, probs);
                byte = draw(probs, k, s.temperature, &rng, w);
            }
            push(ctx, t, byte);
            if (byte == '\n') break;
            putchar(byte);
        }
        if (len > 0) {
            putchar('\n');
            word++;
        }
    }
    charlm_free(m);
    free(ctx);
    free(probs);
    free(w);
    return 0;
}
