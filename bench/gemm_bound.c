/* bench/gemm_bound.c — the GEMM-only bound of one training epoch of an MLP or of the char LSTM,
 * for bench/bench.sh: it times exactly the sgemm calls that backpropagation through the
 * MLP's layers must make, and nothing else (no bias, activation, loss, optimizer or data
 * gathering), with the OpenBLAS the trainers use and its thread count
 * (OPENBLAS_NUM_THREADS).  No trainer can take less time per epoch with these GEMMs.
 *
 *   gemm_bound --layers 784,256,128,10 --batch 64 --examples 60000 [--epochs E]
 *              [--passes forward]
 *
 * Per step of b examples (b = the batch, or what is left for the last partial batch), for
 * every layer l (in -> out), as nnc's generated code calls them (row-major; forward
 * layer by layer, then backward from the last layer, input gradient before weight gradient):
 *   forward          Y_l  [b, out] = X_l [b, in] @ W_l^T              b*out*in multiply-adds
 *   input gradient   dX_l [b, in]  = dY_l [b, out] @ W_l [out, in]    b*in*out, every layer
 *                    but the first (the data needs no gradient)
 *   weight gradient  dW_l [out, in] = dY_l^T [out, b] @ X_l [b, in]   out*in*b
 * `--passes forward` times the forward products alone (what even a trainer whose backward
 * products cost nothing would take; bench/mlp_step.sh).  FLOPs are 2 per multiply-add.
 *
 *   gemm_bound --lstm T,E,H,V --batch B --examples N [--epochs E]
 *
 * times instead the products of the char LSTM (examples/charlm: T steps of an embedding of
 * E, one LSTM layer of H, a dense layer to V classes from the last state), as nnc's
 * generated code calls them: the input projection of every step [B·T, E] @ W_ihᵀ [E, 4H]
 * once, the recurrent product [B, H] @ W_hhᵀ [H, 4H] at each of the T steps, the output
 * [B, H] @ W_outᵀ; backward the output's two products, at each step in reverse
 * dh_next = dg [B, 4H] @ W_hh and dW_hh += dgᵀ @ h_prev, then the input projection's two
 * products over all steps at once.
 *
 *   gemm_bound --gpt L,T,D,H,V --batch B --examples N [--epochs E]
 *
 * times the products of the character GPT (examples/gpt: L pre-norm blocks of width D, H
 * heads of D/H, context T, V classes, logits by the embedding's transpose), as nnc's
 * generated code calls them: per block the dense layers over all B·T positions at once
 * (c_attn [B·T, D] @ [D, 3D], c_proj, c_fc [D, 4D], the MLP's c_proj [4D, D]), and
 * attention's two products per example and head (S = Q Kᵀ [T, D/H] @ [D/H, T], O = P V),
 * then the logits [B·T, D] @ wteᵀ; backward each dense layer's input and weight gradients
 * (dX = dY W, dW = dYᵀ X with K = B·T) and attention's four products per example and head
 * (dV = Pᵀ dO, dP = dO Vᵀ, dQ = dS K, dK = dSᵀ Q).  Buffers are shared between blocks, which
 * only makes the bound lower.
 * One untimed step warms OpenBLAS up (its threads, its buffers); each epoch is then timed
 * with CLOCK_MONOTONIC.  Prints one line per epoch and then `seconds_per_epoch S` (the
 * median), `gflop_per_epoch F` and `gflops G` lines.
 * Build: cc -O2 gemm_bound.c -lopenblas (bench/bench.sh adds the cblas.h directory). */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LAYERS 64

static void die(const char *msg) {
    fprintf(stderr, "gemm_bound: %s\n"
            "usage: gemm_bound --layers D0,D1,...,DL --batch B --examples N [--epochs E]\n"
            "                  [--passes forward|all]\n"
            "       gemm_bound --lstm T,E,H,V --batch B --examples N [--epochs E]\n"
            "       gemm_bound --gpt L,T,D,H,V --batch B --examples N [--epochs E]\n", msg);
    exit(2);
}

static long parse_count(const char *s, const char *what) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 1) {
        fprintf(stderr, "gemm_bound: %s: '%s' is not a positive integer\n", what, s);
        exit(2);
    }
    return v;
}

static float *buffer(size_t n, unsigned *seed) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "gemm_bound: out of memory (%zu floats)\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {   /* small values: no overflow, no denormals */
        *seed = *seed * 1103515245u + 12345u;
        p[i] = ((float)((*seed >> 8) & 0xffff) / 65536.0f - 0.5f) * 0.2f;
    }
    return p;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The char LSTM's buffers, sized for a full batch b. */
typedef struct lstm { int T, E, H, V; float *e, *w_ih, *w_hh, *w_out, *xw, *h, *dg, *last, *logits, *dw_ih, *dw_hh,
                      *dw_out, *dlast, *dh, *de; } lstm;

static void lstm_alloc(lstm *m, long b, unsigned *seed) {
    size_t T = (size_t)m->T, E = (size_t)m->E, H = (size_t)m->H, G = 4 * H, V = (size_t)m->V, B = (size_t)b;
    m->e = buffer(B * T * E, seed), m->de = buffer(B * T * E, seed);
    m->w_ih = buffer(G * E, seed), m->dw_ih = buffer(G * E, seed);
    m->w_hh = buffer(G * H, seed), m->dw_hh = buffer(G * H, seed);
    m->w_out = buffer(V * H, seed), m->dw_out = buffer(V * H, seed);
    m->xw = buffer(B * T * G, seed), m->dg = buffer(B * T * G, seed);
    m->h = buffer(B * T * H, seed), m->dh = buffer(B * H, seed);
    m->last = buffer(B * H, seed), m->dlast = buffer(B * H, seed), m->logits = buffer(B * V, seed);
}

/* One training step's products on b examples. */
static void lstm_step(const lstm *m, int b) {
    int T = m->T, E = m->E, H = m->H, G = 4 * m->H, V = m->V;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b * T, G, E, 1.0f, m->e, E, m->w_ih, E, 1.0f, m->xw, G);
    for (int t = 0; t < T; t++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, G, H, 1.0f, m->h + (size_t)t * b * H, H, m->w_hh, H,
                    1.0f, m->xw + (size_t)t * b * G, G);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, V, H, 1.0f, m->last, H, m->w_out, H, 1.0f, m->logits, V);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, H, V, 1.0f, m->logits, V, m->w_out, H, 0.0f, m->dlast, H);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, H, b, 1.0f, m->logits, V, m->last, H, 0.0f, m->dw_out, H);
    for (int t = T - 1; t >= 0; t--) {
        const float *dg = m->dg + (size_t)t * b * G;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, H, G, 1.0f, dg, G, m->w_hh, H, 0.0f, m->dh, H);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, H, b, 1.0f, dg, G, m->h + (size_t)t * b * H, H,
                    1.0f, m->dw_hh, H);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b * T, E, G, 1.0f, m->dg, G, m->w_ih, E, 0.0f, m->de, E);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, E, b * T, 1.0f, m->dg, G, m->e, E, 0.0f, m->dw_ih, E);
}

/* The character GPT's buffers, sized for a full batch b: one of each kind, shared by the blocks. */
typedef struct gpt { int L, T, D, H, V; float *x, *w_attn, *qkv, *w_proj, *y, *w_fc, *f, *w_mlp, *wte, *logits,
                     *att_p, *att_dp, *dw; } gpt;

static void gpt_alloc(gpt *m, long b, unsigned *seed) {
    size_t BT = (size_t)b * (size_t)m->T, D = (size_t)m->D, T = (size_t)m->T, V = (size_t)m->V;
    m->x = buffer(BT * D, seed), m->y = buffer(BT * D, seed), m->qkv = buffer(BT * 3 * D, seed);
    m->f = buffer(BT * 4 * D, seed), m->logits = buffer(BT * V, seed);
    m->w_attn = buffer(3 * D * D, seed), m->w_proj = buffer(D * D, seed), m->w_fc = buffer(4 * D * D, seed);
    m->w_mlp = buffer(4 * D * D, seed), m->wte = buffer(V * D, seed), m->dw = buffer(4 * D * D, seed);
    m->att_p = buffer(T * T, seed), m->att_dp = buffer(T * T, seed);
}

/* A dense layer's products over n rows: forward Y = X Wᵀ, backward dX = dY W, dW = dYᵀ X. */
static void gpt_dense(int pass, int n, int in, int out, float *x, float *w, float *y, float *dw) {
    if (pass == 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, y, out, w, in, 0.0f, x, in);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, y, out, x, in, 0.0f, dw, in);
    }
}

/* Attention's products for each example and head: q, k, v and o rows of stride 3D or D. */
static void gpt_attention(const gpt *m, int pass, int b) {
    int T = m->T, D = m->D, hd = m->D / m->H, ld = 3 * D;
    for (int i = 0; i < b * m->H; i++) {
        int e = i / m->H, h = i % m->H;
        float *q = m->qkv + (size_t)e * T * ld + (size_t)h * hd, *k = q + D, *v = q + 2 * D;
        float *o = m->y + (size_t)e * T * D + (size_t)h * hd, *p = m->att_p, *dp = m->att_dp;
        if (pass == 0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, q, ld, k, ld, 0.0f, p, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, p, T, v, ld, 0.0f, o, D);
        } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, p, T, o, D, 0.0f, v, ld);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, o, D, v, ld, 0.0f, dp, T);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, dp, T, k, ld, 0.0f, q, ld);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, dp, T, q, ld, 0.0f, k, ld);
        }
    }
}

/* One training step's products on b examples. */
static void gpt_step(const gpt *m, int b) {
    int n = b * m->T, D = m->D;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)   /* the logits' gradients: d ln_f = dlogits wte, d wte = dlogitsᵀ ln_f */
            gpt_dense(1, n, D, m->V, m->x, m->wte, m->logits, m->dw);
        for (int l = 0; l < m->L; l++) {
            if (pass == 0) {
                gpt_dense(0, n, D, 3 * D, m->x, m->w_attn, m->qkv, NULL);
                gpt_attention(m, 0, b);
                gpt_dense(0, n, D, D, m->y, m->w_proj, m->x, NULL);
                gpt_dense(0, n, D, 4 * D, m->x, m->w_fc, m->f, NULL);
                gpt_dense(0, n, 4 * D, D, m->f, m->w_mlp, m->x, NULL);
            } else {
                gpt_dense(1, n, 4 * D, D, m->f, m->w_mlp, m->x, m->dw);
                gpt_dense(1, n, D, 4 * D, m->x, m->w_fc, m->f, m->dw);
                gpt_dense(1, n, D, D, m->y, m->w_proj, m->x, m->dw);
                gpt_attention(m, 1, b);
                gpt_dense(1, n, D, 3 * D, m->x, m->w_attn, m->qkv, m->dw);
            }
        }
        if (pass == 0) gpt_dense(0, n, D, m->V, m->x, m->wte, m->logits, NULL);
    }
}

int main(int argc, char **argv) {
    int dims[MAX_LAYERS + 1], nd = 0;
    long batch = 0, examples = 0, epochs = 1;
    int backward = 1;
    lstm rnn = {0};
    gpt tf = {0};
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) die("every option needs a value");
        const char *v = argv[++i];
        if (!strcmp(argv[i - 1], "--layers")) {
            char *copy = strdup(v);
            for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
                if (nd > MAX_LAYERS) die("too many layers");
                dims[nd++] = (int)parse_count(tok, "--layers");
            }
            free(copy);
        } else if (!strcmp(argv[i - 1], "--lstm")) {
            int *f[4] = {&rnn.T, &rnn.E, &rnn.H, &rnn.V}, k = 0;
            char *copy = strdup(v);
            for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
                if (k == 4) die("--lstm is T,E,H,V");
                *f[k++] = (int)parse_count(tok, "--lstm");
            }
            free(copy);
            if (k != 4) die("--lstm is T,E,H,V");
        } else if (!strcmp(argv[i - 1], "--gpt")) {
            int *f[5] = {&tf.L, &tf.T, &tf.D, &tf.H, &tf.V}, k = 0;
            char *copy = strdup(v);
            for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
                if (k == 5) die("--gpt is L,T,D,H,V");
                *f[k++] = (int)parse_count(tok, "--gpt");
            }
            free(copy);
            if (k != 5 || tf.D % tf.H) die("--gpt is L,T,D,H,V with H dividing D");
        } else if (!strcmp(argv[i - 1], "--batch")) {
            batch = parse_count(v, "--batch");
        } else if (!strcmp(argv[i - 1], "--examples")) {
            examples = parse_count(v, "--examples");
        } else if (!strcmp(argv[i - 1], "--epochs")) {
            epochs = parse_count(v, "--epochs");
        } else if (!strcmp(argv[i - 1], "--passes")) {
            if (strcmp(v, "forward") && strcmp(v, "all")) die("--passes is forward or all");
            backward = !strcmp(v, "all");
        } else {
            die("unknown option");
        }
    }
    if (nd < 2 && !rnn.T && !tf.L) die("--layers needs at least two sizes (input, output)");
    if (!!nd + !!rnn.T + !!tf.L > 1) die("--layers, --lstm and --gpt are three models: give one");
    if (!batch || !examples) die("--batch and --examples are required");
    int nl = rnn.T || tf.L ? 0 : nd - 1;

    /* act[l]: the input of layer l [B, dims[l]] (act[0] the data batch); dact[l]: its
     * gradient (dact[nl] the loss gradient) */
    unsigned seed = 12345;
    float *w[MAX_LAYERS], *dw[MAX_LAYERS], *act[MAX_LAYERS + 1], *dact[MAX_LAYERS + 1];
    double flop_per_example = 0;
    for (int l = 0; l < nl; l++) {
        w[l] = buffer((size_t)dims[l + 1] * dims[l], &seed);
        dw[l] = buffer((size_t)dims[l + 1] * dims[l], &seed);
        flop_per_example += 2.0 * dims[l] * dims[l + 1] * (!backward ? 1 : l == 0 ? 2 : 3);
    }
    for (int l = 0; l <= nl && nd; l++) {
        act[l] = buffer((size_t)batch * dims[l], &seed);
        dact[l] = buffer((size_t)batch * dims[l], &seed);
    }

    if (rnn.T) {
        double T = rnn.T, E = rnn.E, H = rnn.H, G = 4.0 * rnn.H, V = rnn.V;
        lstm_alloc(&rnn, batch, &seed);
        flop_per_example = 2 * 3 * (T * E * G + T * H * G + H * V);
    }
    if (tf.L) {
        double T = tf.T, D = tf.D, V = tf.V;
        gpt_alloc(&tf, batch, &seed);
        flop_per_example = 2 * 3 * (tf.L * (T * D * 12 * D + 2 * T * T * D) + T * D * V);
    }
    long steps = (examples + batch - 1) / batch;
    double *sec = malloc((size_t)epochs * sizeof *sec);
    if (!sec) die("out of memory");
    if (tf.L) {
        printf("gemm_bound: GPT, %d blocks, context %d, width %d, %d heads, %d classes", tf.L, tf.T, tf.D, tf.H, tf.V);
    } else if (rnn.T) {
        printf("gemm_bound: char LSTM, %d steps, embedding %d, hidden %d, %d classes", rnn.T, rnn.E, rnn.H, rnn.V);
    } else {
        printf("gemm_bound: layers");
        for (int l = 0; l <= nl; l++) printf("%c%d", l ? '-' : ' ', dims[l]);
    }
    printf(", batch %ld, %ld examples (%ld steps, last batch %ld), OpenBLAS threads %d%s\n", batch,
           examples, steps, examples - (steps - 1) * batch, openblas_get_num_threads(),
           backward ? "" : ", forward products only");

    for (long e = -1; e < epochs; e++) {   /* e = -1: one untimed warm-up step */
        double t0 = now();
        for (long s = 0; s < (e < 0 ? 1 : steps); s++) {
            int b = (int)(s == steps - 1 ? examples - s * batch : batch);
            if (rnn.T) lstm_step(&rnn, b);
            if (tf.L) gpt_step(&tf, b);
            for (int l = 0; l < nl; l++)   /* forward: Y = X W^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, dims[l + 1], dims[l], 1.0f,
                            act[l], dims[l], w[l], dims[l], 0.0f, act[l + 1], dims[l + 1]);
            for (int l = nl - 1; backward && l >= 0; l--) {
                if (l > 0)   /* input gradient: dX = dY W */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, dims[l], dims[l + 1], 1.0f,
                                dact[l + 1], dims[l + 1], w[l], dims[l], 0.0f, dact[l], dims[l]);
                /* weight gradient: dW = dY^T X, summed over the batch */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dims[l + 1], dims[l], b, 1.0f,
                            dact[l + 1], dims[l + 1], act[l], dims[l], 0.0f, dw[l], dims[l]);
            }
        }
        double t = now() - t0;
        if (e >= 0) {
            sec[e] = t;
            printf("epoch %ld  seconds %.4f  GFLOP/s %.2f\n", e + 1, t,
                   flop_per_example * (double)examples / t * 1e-9);
        }
    }
    qsort(sec, (size_t)epochs, sizeof *sec, cmp_double);
    double med = epochs % 2 ? sec[epochs / 2] : 0.5 * (sec[epochs / 2 - 1] + sec[epochs / 2]);
    double gflop = flop_per_example * (double)examples * 1e-9;
    printf("seconds_per_epoch %.6f\ngflop_per_epoch %.4f\ngflops %.3f\n", med, gflop, gflop / med);
    fflush(stdout);
    return 0;
}
