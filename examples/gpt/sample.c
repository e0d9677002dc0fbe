/* sample.c — text from a trained character GPT (examples/gpt/gpt.nn).
 *
 * The model reads a window of T bytes and gives, at every position, the distribution of
 * the byte after it; causal attention makes position i depend on bytes 0..i only.  This
 * program uses only the header nnc generates for it (gpt.h, which brings the runtime's
 * nnr.h for the RNG and the model's description): it loads a checkpoint, puts a prompt at
 * the start of the window and draws byte after byte from the distribution at the last
 * filled position, sharpened or flattened by a temperature.  Once the window is full it
 * slides on by one byte, as GPT samplers crop their context to the block size; the
 * positions after the last filled one hold anything (they cannot reach it).
 *
 *   nnc examples/gpt/gpt.nn -o gpt.c
 *   cc -std=c11 -O2 -I. -I<nnc>/runtime examples/gpt/sample.c gpt.c \
 *      <nnc build>/libnnr.a -lopenblas -ljansson -lz -lm -o sample
 *   ./sample CKPT [--prompt TEXT] [--bytes N] [--temperature T] [--seed S]
 *
 * Defaults: prompt "This ", 200 bytes, temperature 0.8, seed 1.  Only bytes the
 * vocabulary holds can be in the prompt (ASCII for the example's class(128)).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt.h"

typedef struct settings {
    const char *ckpt, *prompt;
    long        bytes;
    double      temperature;
    unsigned long long seed;
} settings;

static int usage(const char *prog) {
    fprintf(stderr, "usage: %s CKPT [--prompt TEXT] [--bytes N] [--temperature T] [--seed S]\n", prog);
    return 2;
}

/* 0, or the exit status of a command line that cannot be understood. */
static int parse(int argc, char **argv, settings *s) {
    *s = (settings){NULL, "This ", 200, 0.8, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (a[0] != '-' && !s->ckpt) { s->ckpt = a; continue; }
        if (!v) return usage(argv[0]);
        if (strcmp(a, "--prompt") == 0) { s->prompt = v; i++; continue; }
        if (strcmp(a, "--bytes") == 0) s->bytes = strtol(v, &end, 10);
        else if (strcmp(a, "--temperature") == 0) s->temperature = strtod(v, &end);
        else if (strcmp(a, "--seed") == 0) s->seed = strtoull(v, &end, 0);
        else return usage(argv[0]);
        if (*end) return usage(argv[0]);
        i++;
    }
    if (!s->ckpt || s->bytes < 0 || !(s->temperature > 0) || !*s->prompt) return usage(argv[0]);
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

int main(int argc, char **argv) {
    settings s;
    int bad = parse(argc, argv, &s);
    if (bad) return bad;
    const nnr_model_info *info = gpt_info();
    const int t = (int)info->io[0].size, k = info->io[0].classes;
    gpt *m = gpt_new();
    int32_t *ctx = calloc((size_t)t, sizeof *ctx);
    float *probs = malloc((size_t)t * (size_t)k * sizeof *probs);
    double *w = malloc((size_t)k * sizeof *w);
    if (!m || !ctx || !probs || !w) {
        fprintf(stderr, "sample: out of memory\n");
        return 1;
    }
    if (gpt_load(m, s.ckpt)) {
        fprintf(stderr, "sample: %s\n", nnr_error());
        return 1;
    }
    /* the prompt's last t bytes fill the window's start */
    size_t plen = strlen(s.prompt);
    const char *p = plen > (size_t)t ? s.prompt + plen - (size_t)t : s.prompt;
    int filled = 0;
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= k) {
            fprintf(stderr, "sample: the prompt's byte %d is outside the vocabulary of %d\n", c, k);
            return 1;
        }
        ctx[filled++] = c;
    }
    fputs(s.prompt, stdout);
    nnr_rng rng;
    nnr_rng_seed(&rng, s.seed);
    for (long i = 0; i < s.bytes; i++) {
        gpt_predict(m, 1, ctx, probs);
        int byte = draw(probs + (size_t)(filled - 1) * (size_t)k, k, s.temperature, &rng, w);
        putchar(byte);
        if (filled == t) {
            memmove(ctx, ctx + 1, (size_t)(t - 1) * sizeof *ctx);
            filled--;
        }
        ctx[filled++] = byte;
    }
    putchar('\n');
    gpt_free(m);
    free(ctx);
    free(probs);
    free(w);
    return 0;
}
