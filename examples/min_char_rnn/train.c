/* examples/min_char_rnn/train.c — min-char-rnn's training loop on the generated model:
 * reads a text, walks it in chunks of 25 bytes (min_char_rnn.nn), trains on each with the
 * previous chunk's last hidden state as h0, and prints the smoothed loss as min-char-rnn
 * does.  The state is carried by predict (inference mode: the same forward pass), whose
 * output hlast becomes the next h0; at the end of the text it starts over from zeros.
 *
 *   cc -O2 -I. -I runtime train.c min_char_rnn.c libnnr.a -lopenblas -lm -o train
 *   ./train TEXT [ITERATIONS]                 */
#include "min_char_rnn.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T = 25, H = 100, K = 256 };

static unsigned char *read_text(const char *path, long *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (*len = ftell(f)) > T + 1 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)*len)) != NULL && fread(buf, 1, (size_t)*len, f) != (size_t)*len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s TEXT [ITERATIONS]\n", argv[0]);
        return 2;
    }
    long len = 0, iterations = argc > 2 ? atol(argv[2]) : 2000;
    unsigned char *text = read_text(argv[1], &len);
    if (!text) {
        fprintf(stderr, "%s: cannot read %s (it needs more than %d bytes)\n", argv[0], argv[1], T + 1);
        return 1;
    }
    min_char_rnn *m = min_char_rnn_new();
    if (!m) return 1;
    min_char_rnn_init(m, 42);
    int32_t ids[T], y[T];
    float h0[H] = {0}, hlast[H], probs[T * K];
    double smooth = -log(1.0 / K) * T, first = smooth;
    long p = 0;
    for (long it = 0; it < iterations; it++) {
        if (p + T + 1 > len) {   /* the end of the text: start over, from a zero state */
            p = 0;
            memset(h0, 0, sizeof h0);
        }
        for (int t = 0; t < T; t++) ids[t] = text[p + t], y[t] = text[p + t + 1];
        float loss = min_char_rnn_train_step(m, 1, ids, h0, y);
        min_char_rnn_predict(m, 1, ids, h0, hlast, probs);
        memcpy(h0, hlast, sizeof h0);
        smooth = smooth * 0.999 + loss * 0.001;
        if (it % 500 == 0) printf("iter %ld, loss %f\n", it, smooth);
        p += T;
    }
    printf("smoothed loss %f after %ld iterations (%f at the start)\n", smooth, iterations, first);
    min_char_rnn_free(m);
    free(text);
    return smooth < first ? 0 : 1;
}
