/* init.c — parameter initializers (docs/language.md, "Initializers"), as torch.nn.init defines them.
 *
 * Fans follow PyTorch's _calculate_fan_in_and_fan_out: for rank >= 2, fan_in is
 * shape[1] times the receptive field (the product of shape[2:]) and fan_out is shape[0]
 * times it; PyTorch refuses rank < 2, nnc uses the element count for both.  Values are
 * drawn in double precision in row-major order from the caller's generator and stored in
 * the model's dtype, so a seed gives the same weights in F32 and F64 up to rounding
 * (orthogonal, which works in place in the model's dtype, up to F32's precision).
 */
#include "nnr.h"

#include <math.h>

typedef struct fans { double in, out; } fans;

static int64_t numel_of(int rank, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= shape[i];
    return n;
}

static fans fans_of(int rank, const int64_t *shape) {
    if (rank < 2) {
        double n = (double)numel_of(rank, shape);
        return (fans){n, n};
    }
    double field = (double)numel_of(rank - 2, shape + 2);
    return (fans){(double)shape[1] * field, (double)shape[0] * field};
}

static void store(void *data, nnr_dtype dt, int64_t i, double x) {
    if (dt == NNR_F64) ((double *)data)[i] = x;
    else ((float *)data)[i] = (float)x;
}

static void fill_uniform(void *data, nnr_dtype dt, int64_t n, double lo, double hi, nnr_rng *r) {
    for (int64_t i = 0; i < n; i++) store(data, dt, i, lo + (hi - lo) * nnr_rng_uniform(r));
}

static void fill_normal(void *data, nnr_dtype dt, int64_t n, double mean, double std, nnr_rng *r) {
    for (int64_t i = 0; i < n; i++) store(data, dt, i, mean + std * nnr_rng_normal(r));
}

static void fill_const(void *data, nnr_dtype dt, int64_t n, double v) {
    for (int64_t i = 0; i < n; i++) store(data, dt, i, v);
}

/* The structured initializers over the last two axes [R, C], each leading index alike. */
static double structured(nnr_init_kind k, int64_t i, int64_t j) {
    switch (k) {
    case NNR_INIT_TRIL: return j <= i;
    case NNR_INIT_TRIU: return j >= i;
    case NNR_INIT_EYE: return j == i;
    default: return j > i ? -INFINITY : 0.0;   /* causal_mask */
    }
}

static void fill_structured(void *data, nnr_dtype dt, int rank, const int64_t *shape, nnr_init_kind k) {
    int64_t n = numel_of(rank, shape);
    if (rank < 2) {   /* the compiler refuses it; a hand-written table gets zeros */
        fill_const(data, dt, n, 0.0);
        return;
    }
    int64_t rows = shape[rank - 2], cols = shape[rank - 1];
    for (int64_t x = 0; x < n; x++) store(data, dt, x, structured(k, x / cols % rows, x % cols));
}

static double load(const void *data, nnr_dtype dt, int64_t i) {
    return dt == NNR_F64 ? ((const double *)data)[i] : ((const float *)data)[i];
}

/* k vectors of m elements inside a tensor: element r of vector j is at j*vs + r*es. */
typedef struct vecs { void *data; nnr_dtype dt; int64_t m, k, vs, es; } vecs;

static double get(const vecs *v, int64_t j, int64_t r) {
    return load(v->data, v->dt, j * v->vs + r * v->es);
}

static void set(const vecs *v, int64_t j, int64_t r, double x) {
    store(v->data, v->dt, j * v->vs + r * v->es, x);
}

static double dot(const vecs *v, int64_t a, int64_t b) {
    double s = 0;
    for (int64_t r = 0; r < v->m; r++) s += get(v, a, r) * get(v, b, r);
    return s;
}

/* Orthonormalizes the vectors in order by modified Gram-Schmidt, in place, with every
 * projection run twice so that rounding, F32 storage included, leaves no visible
 * non-orthogonality ("twice is enough").  The result is the Q of a QR factorization with
 * a positive diagonal in R, which is what torch's sign correction q *= sign(diag(r))
 * makes of LAPACK's Q. */
static void gram_schmidt(const vecs *v) {
    for (int64_t j = 0; j < v->k; j++) {
        for (int pass = 0; pass < 2; pass++)
            for (int64_t i = 0; i < j; i++) {
                double c = dot(v, i, j);
                for (int64_t r = 0; r < v->m; r++) set(v, j, r, get(v, j, r) - c * get(v, i, r));
            }
        double norm = sqrt(dot(v, j, j));
        /* A dependent Gaussian vector has probability zero; leave it rather than divide. */
        if (norm > 0)
            for (int64_t r = 0; r < v->m; r++) set(v, j, r, get(v, j, r) / norm);
    }
}

/* torch.nn.init.orthogonal_ with gain 1: view the tensor as rows = shape[0] by
 * cols = numel / rows, draw it from N(0, 1) and orthonormalize along the smaller side,
 * so the rows (rows <= cols) or the columns (rows > cols) come out orthonormal. */
static void fill_orthogonal(void *data, nnr_dtype dt, int rank, const int64_t *shape, nnr_rng *r) {
    int64_t n = numel_of(rank, shape);
    if (n == 0) return;
    int64_t rows = rank ? shape[0] : 1, cols = n / rows;
    fill_normal(data, dt, n, 0.0, 1.0, r);
    vecs v = rows <= cols ? (vecs){data, dt, cols, rows, cols, 1}   /* the rows */
                          : (vecs){data, dt, rows, cols, 1, cols};  /* the columns */
    gram_schmidt(&v);
}

void nnr_init_fill(void *data, nnr_dtype dt, int rank, const int64_t *shape, nnr_init init,
                   nnr_rng *rng) {
    int64_t n = numel_of(rank, shape);
    fans f = fans_of(rank, shape);
    double lim;
    switch (init.kind) {
    case NNR_INIT_ZEROS: fill_const(data, dt, n, 0.0); break;
    case NNR_INIT_ONES:  fill_const(data, dt, n, 1.0); break;
    case NNR_INIT_CONST: fill_const(data, dt, n, init.a); break;
    case NNR_INIT_UNIFORM: fill_uniform(data, dt, n, init.a, init.b, rng); break;
    case NNR_INIT_NORMAL:  fill_normal(data, dt, n, init.a, init.b, rng); break;
    case NNR_INIT_LECUN_UNIFORM:
        lim = 1.0 / sqrt(f.in);
        fill_uniform(data, dt, n, -lim, lim, rng);
        break;
    case NNR_INIT_GLOROT_UNIFORM:
        lim = sqrt(6.0 / (f.in + f.out));
        fill_uniform(data, dt, n, -lim, lim, rng);
        break;
    case NNR_INIT_GLOROT_NORMAL:
        fill_normal(data, dt, n, 0.0, sqrt(2.0 / (f.in + f.out)), rng);
        break;
    case NNR_INIT_HE_UNIFORM:
        lim = sqrt(6.0 / f.in);
        fill_uniform(data, dt, n, -lim, lim, rng);
        break;
    case NNR_INIT_HE_NORMAL:
        fill_normal(data, dt, n, 0.0, sqrt(2.0 / f.in), rng);
        break;
    case NNR_INIT_ORTHOGONAL: fill_orthogonal(data, dt, rank, shape, rng); break;
    case NNR_INIT_TRIL: case NNR_INIT_TRIU: case NNR_INIT_EYE: case NNR_INIT_CAUSAL_MASK:
        fill_structured(data, dt, rank, shape, init.kind);
        break;
    case NNR_INIT_ARANGE:
        for (int64_t i = 0; i < n; i++) store(data, dt, i, (double)i);
        break;
    }
}
