/* test_trainer.c — CUnit tests of data loading (runtime/data.c) and the trainer program
 * (runtime/trainer.c's command line and the commands of train.c, eval.c, gradcheck.c and
 * export.c), driven by the hand-written models of toy_model.c.
 *
 * Checkpoints, exact resumption, early stopping, eval's per-class table, CSV files with a
 * label column and standardization, plot's SVG, and text files feeding a character model
 * (--text, with a hand-written bigram model) are tested here too.
 *
 * Every test writes its files into one mkdtemp directory and runs nnr_main in-process
 * with stdout and stderr redirected to files, so it checks exactly what a user sees.
 */
#include <CUnit/Basic.h>

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "nnr.h"
#include "toy_model.h"

static char dir[64];

/* dir/name, in one of a few rotating buffers so several can appear in one call. */
static const char *at(const char *name) {
    static char buf[8][512];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 512, "%s/%s", dir, name);
    return p;
}

static int setup(void) { return mkdtemp(strcpy(dir, "/tmp/test_trainer_XXXXXX")) ? 0 : -1; }

static int teardown(void) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(at(e->d_name));
    closedir(d);
    return rmdir(dir);
}

/* ---- writing test files ------------------------------------------------------------- */

/* An IDX file; data is host-order and written big-endian; gz compresses. */
static void write_idx(const char *path, int gz, unsigned char type, int rank,
                      const uint32_t *dims, const void *data, size_t esize) {
    gzFile g = gzopen(path, gz ? "wb" : "wbT");
    CU_ASSERT_FATAL(g != NULL);
    unsigned char head[4] = {0, 0, type, (unsigned char)rank};
    gzwrite(g, head, 4);
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        unsigned char be[4] = {dims[i] >> 24, dims[i] >> 16 & 255, dims[i] >> 8 & 255, dims[i] & 255};
        gzwrite(g, be, 4);
        n *= dims[i];
    }
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)data + i * esize;
        for (size_t b = 0; b < esize; b++) gzwrite(g, p + esize - 1 - b, 1);
    }
    CU_ASSERT_FATAL(gzclose(g) == Z_OK);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

static nnr_tensor tensor(const char *name, nnr_dtype dt, int rank, const int64_t *shape,
                         const void *data) {
    nnr_tensor t = {(char *)name, dt, rank, {0}, (void *)data};
    memcpy(t.shape, shape, (size_t)rank * sizeof *shape);
    return t;
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    s[fread(s, 1, (size_t)n, f)] = '\0';
    fclose(f);
    return s;
}

/* ---- running the trainer ------------------------------------------------------------ */

static char *out_text, *err_text;      /* what the last run printed */

static int run_argv(const nnr_model_info *info, int argc, char **argv) {
    free(out_text);
    free(err_text);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    int fo = open(at("stdout.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(at("stderr.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    int rc = nnr_main(info, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    out_text = read_all(at("stdout.txt"));
    err_text = read_all(at("stderr.txt"));
    return rc;
}

static int run(const nnr_model_info *info, ...) {
    char *argv[64] = {"m"};
    int argc = 1;
    va_list ap;
    va_start(ap, info);
    for (char *a; (a = va_arg(ap, char *));) argv[argc++] = a;
    va_end(ap);
    return run_argv(info, argc, argv);
}
#define RUN(...) run(__VA_ARGS__, (char *)NULL)

/* The line `back` lines from the end of text (0: the last), copied out. */
static const char *line_from_end(const char *text, int back) {
    static char buf[4096];
    const char *end = text + strlen(text);
    if (end > text && end[-1] == '\n') end--;
    for (;;) {
        const char *start = end;
        while (start > text && start[-1] != '\n') start--;
        if (back-- == 0 || start == text) {
            snprintf(buf, sizeof buf, "%.*s", (int)(end - start), start);
            return buf;
        }
        end = start - 1;
    }
}

static int count_lines(const char *text, const char *prefix) {
    int n = 0;
    for (const char *p = text; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
        n += strncmp(p, prefix, strlen(prefix)) == 0;
    return n;
}

/* The number after `key` in text, NAN when key is absent. */
static double number_after(const char *text, const char *key) {
    const char *p = strstr(text, key);
    return p ? strtod(p + strlen(key), NULL) : NAN;
}

static const unsigned need_xy = 1u << NNR_IO_INPUT | 1u << NNR_IO_LABEL;

/* Loads specs into d for toy_cls; returns nnr_data_load's result. */
static int load(const nnr_model_info *info, unsigned need, nnr_dataset *d, int n, ...) {
    const char *specs[8];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) specs[i] = va_arg(ap, const char *);
    va_end(ap);
    return nnr_data_load(info, n, specs, need, d);
}

/* Loading fails and the message holds every one of the given fragments. */
static void expect_error(int rc, ...) {
    CU_ASSERT_EQUAL(rc, -1);
    va_list ap;
    va_start(ap, rc);
    for (const char *s; (s = va_arg(ap, const char *));) {
        if (!strstr(nnr_error(), s)) printf("\nmessage '%s' lacks '%s'\n", nnr_error(), s);
        CU_ASSERT_PTR_NOT_NULL(strstr(nnr_error(), s));
    }
    va_end(ap);
}
#define EXPECT_ERROR(rc, ...) expect_error(rc, __VA_ARGS__, (const char *)NULL)

/* ---- data loading ------------------------------------------------------------------- */

/* Six 2x2 ubyte images (pixel i*10 + j) and their labels i % 3. */
static void write_mnist_like(const char *images, const char *labels, int gz_labels) {
    uint8_t px[24], lab[6];
    for (int i = 0; i < 24; i++) px[i] = (uint8_t)(i / 4 * 10 + i % 4);
    for (int i = 0; i < 6; i++) lab[i] = (uint8_t)(i % 3);
    write_idx(images, 0, 0x08, 3, (uint32_t[]){6, 2, 2}, px, 1);
    write_idx(labels, gz_labels, 0x08, 1, (uint32_t[]){6}, lab, 1);
}

static void check_mnist_like(const nnr_dataset *d) {
    CU_ASSERT_EQUAL_FATAL(d->n, 6);
    CU_ASSERT_EQUAL(d->ncol, 2);
    const float *x = d->col[0];
    const int32_t *y = d->col[1];
    for (int i = 0; i < 24; i++) CU_ASSERT_EQUAL(x[i], (float)((i / 4 * 10 + i % 4) / 255.0));
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(y[i], i % 3);
}

static void test_load_idx(void) {
    char xs[300], ys[300];
    nnr_dataset d;
    write_mnist_like(at("imgs-idx3-ubyte"), at("labels-idx1-ubyte.gz"), 1);
    snprintf(xs, sizeof xs, "x=%s", at("imgs-idx3-ubyte"));
    snprintf(ys, sizeof ys, "y=%s", at("labels-idx1-ubyte.gz"));
    CU_ASSERT_EQUAL_FATAL(load(&toy_cls_info, need_xy, &d, 2, xs, ys), 0);
    check_mnist_like(&d);
    nnr_data_free(&d);

    /* names that say nothing: the content decides */
    write_mnist_like(at("imgs.bin"), at("labels.dat"), 1);
    snprintf(xs, sizeof xs, "x=%s", at("imgs.bin"));
    snprintf(ys, sizeof ys, "y=%s", at("labels.dat"));
    CU_ASSERT_EQUAL_FATAL(load(&toy_cls_info, need_xy, &d, 2, ys, xs), 0);
    check_mnist_like(&d);
    nnr_data_free(&d);

    /* int32 labels, big-endian on disk */
    int32_t lab[6] = {2, 1, 0, 2, 1, 0};
    write_idx(at("l32.idx"), 0, 0x0C, 1, (uint32_t[]){6}, lab, 4);
    snprintf(ys, sizeof ys, "y=%s", at("l32.idx"));
    CU_ASSERT_EQUAL_FATAL(load(&toy_cls_info, need_xy, &d, 2, xs, ys), 0);
    CU_ASSERT_EQUAL(((int32_t *)d.col[1])[0], 2);
    CU_ASSERT_EQUAL(((int32_t *)d.col[1])[4], 1);
    nnr_data_free(&d);
}

static void test_load_safetensors(void) {
    double x[20];
    int64_t y[5] = {0, 1, 2, 1, 0};
    float junk[2] = {1, 2};
    for (int i = 0; i < 20; i++) x[i] = i * 0.25 - 1;
    nnr_tensor ts[3] = {tensor("junk", NNR_F32, 1, (int64_t[]){2}, junk),
                        tensor("y", NNR_I64, 1, (int64_t[]){5}, y),
                        tensor("x", NNR_F64, 2, (int64_t[]){5, 4}, x)};
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("data.safetensors"), ts, 3, NULL, 0), 0);
    nnr_dataset d;
    CU_ASSERT_EQUAL_FATAL(load(&toy_cls_info, need_xy, &d, 1, at("data.safetensors")), 0);
    CU_ASSERT_EQUAL(d.n, 5);
    for (int i = 0; i < 20; i++) CU_ASSERT_EQUAL(((float *)d.col[0])[i], (float)x[i]);
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(((int32_t *)d.col[1])[i], y[i]);
    nnr_data_free(&d);

    /* NAME=FILE: the tensor of that name, or a file's only tensor whatever its name */
    float img[20];
    for (int i = 0; i < 20; i++) img[i] = (float)i;
    nnr_tensor only = tensor("images", NNR_F32, 3, (int64_t[]){5, 2, 2}, img);
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("images.safetensors"), &only, 1, NULL, 0), 0);
    char xs[300], ys[300];
    snprintf(xs, sizeof xs, "x=%s", at("images.safetensors"));
    snprintf(ys, sizeof ys, "y=%s", at("data.safetensors"));
    CU_ASSERT_EQUAL_FATAL(load(&toy_cls_info, need_xy, &d, 2, xs, ys), 0);
    CU_ASSERT_EQUAL(((float *)d.col[0])[7], 7.0f);
    CU_ASSERT_EQUAL(((int32_t *)d.col[1])[2], 2);
    nnr_data_free(&d);

    /* only the kinds asked for come from a bare file */
    CU_ASSERT_EQUAL_FATAL(load(&toy_cls_info, 1u << NNR_IO_INPUT, &d, 1, at("data.safetensors")), 0);
    CU_ASSERT_PTR_NOT_NULL(d.col[0]);
    CU_ASSERT_PTR_NULL(d.col[1]);
    nnr_data_free(&d);
}

static void test_load_csv(void) {
    write_text(at("x.csv"), "a,b,c,d\n0.5,1,2,3\n-1,0,0,1e-3\n4,5,6,7\n");
    write_text(at("y.csv"), "label\n0\n2\n1\n");
    char xs[300], ys[300];
    snprintf(xs, sizeof xs, "x=%s", at("x.csv"));
    snprintf(ys, sizeof ys, "y=%s", at("y.csv"));
    nnr_dataset d;
    CU_ASSERT_EQUAL_FATAL(load(&toy_cls_info, need_xy, &d, 2, xs, ys), 0);
    CU_ASSERT_EQUAL(d.n, 3);
    CU_ASSERT_EQUAL(((float *)d.col[0])[0], 0.5f);
    CU_ASSERT_EQUAL(((float *)d.col[0])[7], 1e-3f);
    CU_ASSERT_EQUAL(((int32_t *)d.col[1])[1], 2);
    nnr_data_free(&d);

    write_text(at("yfrac.csv"), "0\n1.5\n1\n");
    snprintf(ys, sizeof ys, "y=%s", at("yfrac.csv"));
    EXPECT_ERROR(load(&toy_cls_info, need_xy, &d, 2, xs, ys), "yfrac.csv", "label 1.5 at example 1",
                 "not an integer");
}

static void test_load_errors(void) {
    char xs[300], ys[300], bad[300];
    nnr_dataset d;
    write_mnist_like(at("e-imgs-idx3-ubyte"), at("e-labels-idx1-ubyte"), 0);
    snprintf(xs, sizeof xs, "x=%s", at("e-imgs-idx3-ubyte"));
    snprintf(ys, sizeof ys, "y=%s", at("e-labels-idx1-ubyte"));

    snprintf(bad, sizeof bad, "foo=%s", at("e-imgs-idx3-ubyte"));
    EXPECT_ERROR(load(&toy_cls_info, need_xy, &d, 2, bad, ys), "unknown tensor 'foo'",
                 "the model has x, y");

    uint8_t px[36] = {0};
    write_idx(at("wide.idx"), 0, 0x08, 3, (uint32_t[]){6, 2, 3}, px, 1);
    snprintf(bad, sizeof bad, "x=%s", at("wide.idx"));
    EXPECT_ERROR(load(&toy_cls_info, need_xy, &d, 2, bad, ys), "wide.idx",
                 "4 elements per example expected for input 'x', the file has 2x3=6");

    uint8_t five[5] = {0, 1, 2, 0, 1};
    write_idx(at("five.idx"), 0, 0x08, 1, (uint32_t[]){5}, five, 1);
    snprintf(bad, sizeof bad, "y=%s", at("five.idx"));
    EXPECT_ERROR(load(&toy_cls_info, need_xy, &d, 2, xs, bad), "'x' has 6 examples",
                 "'y' has 5", "five.idx");

    uint8_t big[6] = {0, 1, 2, 0, 7, 1};
    write_idx(at("big.gz"), 1, 0x08, 1, (uint32_t[]){6}, big, 1);
    snprintf(bad, sizeof bad, "y=%s", at("big.gz"));
    EXPECT_ERROR(load(&toy_cls_info, need_xy, &d, 2, xs, bad), "big.gz",
                 "label 7 at example 4 is outside [0, 3)");

    EXPECT_ERROR(load(&toy_cls_info, need_xy, &d, 1, xs), "no data for label 'y'", "y=FILE");

    float inf[8] = {0, 0, 0, 0, 1, INFINITY, 0, 0};
    nnr_tensor t = tensor("x", NNR_F32, 2, (int64_t[]){2, 4}, inf);
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("inf.safetensors"), &t, 1, NULL, 0), 0);
    EXPECT_ERROR(load(&toy_cls_info, 1u << NNR_IO_INPUT, &d, 1, at("inf.safetensors")),
                 "inf.safetensors", "non-finite value at example 1");

    EXPECT_ERROR(load(&toy_cls_info, need_xy, &d, 1, at("e-imgs-idx3-ubyte")),
                 "e-imgs-idx3-ubyte", "not a safetensors file");
    EXPECT_ERROR(load(&toy_cls_info, need_xy, &d, 3, xs, ys, xs), "'x' is given twice");
    EXPECT_ERROR(load(&toy_cls_info, need_xy, &d, 2, "x=/nonexistent/a.idx", ys),
                 "/nonexistent/a.idx");

    nnr_tensor other = tensor("a", NNR_F32, 2, (int64_t[]){2, 4}, inf);
    nnr_tensor pair[2] = {other, tensor("b", NNR_F32, 2, (int64_t[]){2, 4}, inf)};
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("ab.safetensors"), pair, 2, NULL, 0), 0);
    snprintf(bad, sizeof bad, "x=%s", at("ab.safetensors"));
    EXPECT_ERROR(load(&toy_cls_info, need_xy, &d, 1, bad), "ab.safetensors", "no tensor 'x'");
}

/* Ten examples whose x row i holds i*10 + j and y = i % 3, from a bare file. */
static void load_ten(nnr_dataset *d) {
    float x[40];
    int32_t y[10];
    for (int i = 0; i < 40; i++) x[i] = (float)(i / 4 * 10 + i % 4);
    for (int i = 0; i < 10; i++) y[i] = i % 3;
    nnr_tensor ts[2] = {tensor("x", NNR_F32, 2, (int64_t[]){10, 4}, x),
                        tensor("y", NNR_I32, 1, (int64_t[]){10}, y)};
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("ten.safetensors"), ts, 2, NULL, 0), 0);
    CU_ASSERT_EQUAL_FATAL(load(&toy_cls_info, need_xy, d, 1, at("ten.safetensors")), 0);
}

static void test_split(void) {
    nnr_dataset d, val;
    load_ten(&d);
    CU_ASSERT_EQUAL_FATAL(nnr_data_split(&toy_cls_info, &d, 0.2, &val), 0);
    CU_ASSERT_EQUAL(d.n, 8);
    CU_ASSERT_EQUAL(val.n, 2);
    CU_ASSERT_EQUAL(((float *)d.col[0])[7 * 4], 70.0f);        /* the head stays */
    CU_ASSERT_EQUAL(((float *)val.col[0])[0], 80.0f);          /* the tail moves */
    CU_ASSERT_EQUAL(((float *)val.col[0])[7], 93.0f);
    CU_ASSERT_EQUAL(((int32_t *)val.col[1])[1], 9 % 3);
    nnr_data_free(&val);
    EXPECT_ERROR(nnr_data_split(&toy_cls_info, &d, 1.0, &val), "validation split 1");
    EXPECT_ERROR(nnr_data_split(&toy_cls_info, &d, 1e-18, &val), "empty validation set");
    nnr_data_free(&d);
}

static void test_gather(void) {
    nnr_dataset d;
    load_ten(&d);
    float x[3 * 4];
    int32_t y[3];
    void *dst[2] = {x, y};
    int64_t idx[3] = {3, 0, 9};
    nnr_data_gather(&toy_cls_info, &d, idx, 3, dst);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 4; j++) CU_ASSERT_EQUAL(x[i * 4 + j], (float)(idx[i] * 10 + j));
        CU_ASSERT_EQUAL(y[i], idx[i] % 3);
    }
    nnr_data_free(&d);
}

/* ---- the trainer -------------------------------------------------------------------- */

/* n examples of three well separated classes in 4-D, as a bare safetensors file. */
static void write_blobs(const char *path, int n, uint64_t seed) {
    float *x = malloc((size_t)n * 4 * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    nnr_rng r;
    nnr_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        y[i] = i % 3;
        for (int j = 0; j < 4; j++) x[i * 4 + j] = (float)(2.0 * (j == y[i]) + 0.3 * nnr_rng_normal(&r));
    }
    nnr_tensor ts[2] = {tensor("x", NNR_F32, 2, (int64_t[]){n, 4}, x),
                        tensor("y", NNR_I32, 1, (int64_t[]){n}, y)};
    CU_ASSERT_EQUAL(nnr_st_write(path, ts, 2, NULL, 0), 0);
    free(x);
    free(y);
}

static void test_train(void) {
    write_blobs(at("train.safetensors"), 240, 1);
    write_blobs(at("test.safetensors"), 60, 2);
    int rc = RUN(&toy_cls_info, "train", "--train", at("train.safetensors"), "--test",
                 at("test.safetensors"), "--epochs", "5", "--lr", "0.2", "--log", at("run.csv"),
                 "--save", at("ck.safetensors"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(count_lines(out_text, "epoch "), 5);
    const char *first = strstr(out_text, "epoch 1/5  train_loss ");
    const char *last = strstr(out_text, "epoch 5/5  train_loss ");
    CU_ASSERT_FATAL(first && last);
    CU_ASSERT(number_after(first, "train_loss ") > number_after(last, "train_loss "));
    CU_ASSERT_PTR_NOT_NULL(strstr(first, "  test_loss "));
    CU_ASSERT_PTR_NOT_NULL(strstr(first, "  test_accuracy "));
    CU_ASSERT_PTR_NOT_NULL(strstr(first, "  time "));
    CU_ASSERT_STRING_EQUAL(line_from_end(out_text, 0), "test accuracy: 1.0000");
    CU_ASSERT(number_after(line_from_end(out_text, 0), "test accuracy: ") >= 0.95);
    CU_ASSERT_STRING_EQUAL(err_text, "");           /* no bar when stderr is a file */

    char *log = read_all(at("run.csv"));
    CU_ASSERT_EQUAL(strncmp(log, "epoch,train_loss,test_loss,test_accuracy,seconds,lr,optimizer\n", 62), 0);
    /* the epoch's learning rate and the whole optimizer, quoted (its description has commas) */
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "\n1,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, ",0.2,\"sgd(lr=0.2), schedule constant, weight_decay 0, "
                                       "clip_value off, clip_norm off\"\n"));
    CU_ASSERT_EQUAL(count_lines(log, ""), 6);
    CU_ASSERT_EQUAL(count_lines(log, "3,"), 1);
    CU_ASSERT_EQUAL(strncmp(line_from_end(log, 0), "5,", 2), 0);
    free(log);

    /* a validation split without a test set: val columns, empty test fields */
    rc = RUN(&toy_cls_info, "train", "--train", at("train.safetensors"), "--epochs", "2",
             "--val-split", "0.25", "--log", at("run2.csv"), "--seed", "9");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "epoch 2/2  train_loss "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "  val_loss "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "  val_accuracy "));
    CU_ASSERT_PTR_NULL(strstr(out_text, "test"));
    char *first_run = strdup(out_text);
    log = read_all(at("run2.csv"));
    CU_ASSERT_EQUAL(strncmp(log, "epoch,train_loss,test_loss,test_accuracy,seconds,val_loss,val_accuracy,"
                                 "lr,optimizer\n", 84), 0);
    CU_ASSERT_EQUAL(count_lines(log, ""), 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "\n1,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(strstr(log, "\n1,") + 3, ",,,"));
    free(log);

    /* the same seed gives the same run, up to the timings */
    rc = RUN(&toy_cls_info, "train", "--train", at("train.safetensors"), "--epochs", "2",
             "--val-split", "0.25", "--seed", "9");
    CU_ASSERT_EQUAL(rc, 0);
    for (char *a = first_run, *b = out_text; a && b; a = strstr(a + 1, "epoch "), b = strstr(b + 1, "epoch "))
        CU_ASSERT_EQUAL(strncmp(a, b, (size_t)(strstr(a, "time") - a)), 0);
    free(first_run);

    /* training resumes from a checkpoint */
    rc = RUN(&toy_cls_info, "train", "--train", at("train.safetensors"), "--test",
             at("test.safetensors"), "--epochs", "1", "--load", at("ck.safetensors"));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(number_after(out_text, "train_loss ") < 0.5);
}

static void test_eval(void) {
    int rc = RUN(&toy_cls_info, "eval", "--load", at("ck.safetensors"), "--test", at("test.safetensors"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(strncmp(line_from_end(out_text, 1), "loss: ", 6), 0);
    CU_ASSERT_EQUAL(strncmp(line_from_end(out_text, 0), "accuracy: ", 10), 0);
    CU_ASSERT(number_after(line_from_end(out_text, 0), "accuracy: ") >= 0.95);
    CU_ASSERT(number_after(line_from_end(out_text, 1), "loss: ") < 0.5);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "confusion matrix (rows: true class, columns: predicted class)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "\n  0  20   0   0\n"));   /* 60 examples, all right */

    /* a model without accuracy ends with its loss */
    rc = RUN(&toy_reg_info, "init", "--save", at("reg.safetensors"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    double x[6] = {1, 2, 3, 4, 5, 6}, t[4] = {1, 0, 0, 1};
    nnr_tensor ts[2] = {tensor("x", NNR_F64, 2, (int64_t[]){2, 3}, x),
                        tensor("t", NNR_F64, 2, (int64_t[]){2, 2}, t)};
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("regdata.safetensors"), ts, 2, NULL, 0), 0);
    rc = RUN(&toy_reg_info, "eval", "--load", at("reg.safetensors"), "--test", at("regdata.safetensors"));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(strncmp(line_from_end(out_text, 0), "loss: ", 6), 0);
    CU_ASSERT_PTR_NULL(strstr(out_text, "accuracy"));
}

static void test_predict(void) {
    char xs[300];
    snprintf(xs, sizeof xs, "x=%s", at("test.safetensors"));
    int rc = RUN(&toy_cls_info, "predict", "--load", at("ck.safetensors"), "--input", xs, "--out",
                 at("pred.csv"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(out_text, "");
    char *csv = read_all(at("pred.csv"));
    /* probs is the class output (accuracy is measured on it): its argmax follows it */
    CU_ASSERT_EQUAL(strncmp(csv, "probs_0,probs_1,probs_2,probs_argmax\n", 37), 0);
    CU_ASSERT_EQUAL(count_lines(csv, ""), 61);
    int good = 0;
    for (const char *p = strchr(csv, '\n') + 1; *p; p = strchr(p, '\n') + 1) {
        char *end;
        double a = strtod(p, &end), b = strtod(end + 1, &end), c = strtod(end + 1, &end);
        long k = strtol(end + 1, &end, 10);
        long want = a >= b && a >= c ? 0 : b >= c ? 1 : 2;
        good += fabs(a + b + c - 1) < 1e-5 && k == want && *end == '\n';
    }
    CU_ASSERT_EQUAL(good, 60);
    free(csv);

    /* --out F.safetensors: the outputs as tensors and the argmax as int32 */
    rc = RUN(&toy_cls_info, "predict", "--load", at("ck.safetensors"), "--input", xs, "--out",
             at("pred.safetensors"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    nnr_tensors pt = {0};
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(at("pred.safetensors"), &pt), 0);
    const nnr_tensor *probs = nnr_tensors_find(&pt, "probs"), *arg = nnr_tensors_find(&pt, "probs.argmax");
    CU_ASSERT_FATAL(probs && arg);
    CU_ASSERT(probs->dtype == NNR_F32 && probs->rank == 2 && probs->shape[0] == 60 && probs->shape[1] == 3);
    CU_ASSERT(arg->dtype == NNR_I32 && arg->rank == 1 && arg->shape[0] == 60);
    int agree = 0;
    for (int i = 0; i < 60; i++) {
        const float *q = (const float *)probs->data + 3 * i;
        agree += ((const int32_t *)arg->data)[i] == (q[0] >= q[1] && q[0] >= q[2] ? 0 : q[1] >= q[2] ? 1 : 2);
    }
    CU_ASSERT_EQUAL(agree, 60);
    nnr_tensors_free(&pt);

    /* to stdout, from a bare file whose labels predict does not need */
    rc = RUN(&toy_cls_info, "predict", "--load", at("ck.safetensors"), "--input", at("test.safetensors"));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(count_lines(out_text, ""), 61);
    CU_ASSERT_EQUAL(strncmp(out_text, "probs_0,probs_1,probs_2,probs_argmax\n", 37), 0);
    /* "--out -" is standard output too, never a file named "-" */
    rc = RUN(&toy_cls_info, "predict", "--load", at("ck.safetensors"), "--input", xs, "--out", "-");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(count_lines(out_text, ""), 61);
    CU_ASSERT_EQUAL(access("-", F_OK), -1);
}

/* The gradient of the mean mse over n examples, as toy_reg defines it, computed here in
 * one pass: the reference the chunked `grads` must match. */
static void reg_reference(const double *w, const double *x, const double *t, int n,
                          double *dw, double *db, double *dx, double *loss) {
    memset(dw, 0, 6 * sizeof *dw);
    memset(db, 0, 2 * sizeof *db);
    memset(dx, 0, (size_t)n * 3 * sizeof *dx);
    *loss = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) {
            double p = w[6 + k];
            for (int j = 0; j < 3; j++) p += w[k * 3 + j] * x[i * 3 + j];
            double d = p - t[i * 2 + k];
            *loss += d * d / 2 / n;
            double dp = d / n;                     /* 2 d / (2 n) */
            db[k] += dp;
            for (int j = 0; j < 3; j++) {
                dw[k * 3 + j] += dp * x[i * 3 + j];
                dx[i * 3 + j] += dp * w[k * 3 + j];
            }
        }
}

static int close_to(double a, double b) { return fabs(a - b) <= 1e-12 * fmax(1, fabs(b)); }

static void test_grads(void) {
    CU_ASSERT_EQUAL_FATAL(RUN(&toy_reg_info, "init", "--seed", "3", "--save", at("p.safetensors")), 0);
    nnr_tensors p = {0};
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(at("p.safetensors"), &p), 0);
    CU_ASSERT_EQUAL(p.n, 2);
    const nnr_tensor *pw = nnr_tensors_find(&p, "lin.weight"), *pb = nnr_tensors_find(&p, "lin.bias");
    CU_ASSERT_FATAL(pw && pb);
    CU_ASSERT_EQUAL(pw->rank, 2);
    CU_ASSERT_EQUAL(pw->shape[1], 3);
    double w[8];
    memcpy(w, pw->data, 6 * sizeof(double));
    memcpy(w + 6, pb->data, 2 * sizeof(double));

    /* 20 examples: three chunks of the compiled batch of 8 */
    enum { N = 20 };
    double x[N * 3];
    float t[N * 2];
    nnr_rng r;
    nnr_rng_seed(&r, 11);
    for (int i = 0; i < N * 3; i++) x[i] = nnr_rng_normal(&r);
    for (int i = 0; i < N * 2; i++) t[i] = (float)nnr_rng_normal(&r);
    nnr_tensor ts[2] = {tensor("x", NNR_F64, 2, (int64_t[]){N, 3}, x),
                        tensor("t", NNR_F32, 2, (int64_t[]){N, 2}, t)};
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("b.safetensors"), ts, 2, NULL, 0), 0);
    int rc = RUN(&toy_reg_info, "grads", "--params", at("p.safetensors"), "--batch",
                 at("b.safetensors"), "--out", at("g.safetensors"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(strncmp(out_text, "loss: ", 6), 0);

    nnr_tensors g = {0};
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(at("g.safetensors"), &g), 0);
    CU_ASSERT_EQUAL(g.n, 4);
    const nnr_tensor *gw = nnr_tensors_find(&g, "lin.weight"), *gb = nnr_tensors_find(&g, "lin.bias"),
                     *gx = nnr_tensors_find(&g, "x"), *gl = nnr_tensors_find(&g, "loss");
    CU_ASSERT_FATAL(gw && gb && gx && gl);
    CU_ASSERT_PTR_NULL(nnr_tensors_find(&g, "t"));
    CU_ASSERT(gw->dtype == NNR_F64 && gw->rank == 2 && gw->shape[0] == 2 && gw->shape[1] == 3);
    CU_ASSERT(gb->rank == 1 && gb->shape[0] == 2);
    CU_ASSERT(gx->rank == 2 && gx->shape[0] == N && gx->shape[1] == 3);
    CU_ASSERT_EQUAL(gl->rank, 0);

    double t64[N * 2], dw[6], db[2], dx[N * 3], loss;
    for (int i = 0; i < N * 2; i++) t64[i] = t[i];
    reg_reference(w, x, t64, N, dw, db, dx, &loss);
    int good = 0;
    for (int i = 0; i < 6; i++) good += close_to(((double *)gw->data)[i], dw[i]);
    for (int i = 0; i < 2; i++) good += close_to(((double *)gb->data)[i], db[i]);
    for (int i = 0; i < N * 3; i++) good += close_to(((double *)gx->data)[i], dx[i]);
    CU_ASSERT_EQUAL(good, 6 + 2 + N * 3);
    CU_ASSERT(close_to(*(double *)gl->data, loss));
    CU_ASSERT(close_to(number_after(out_text, "loss: "), loss));
    nnr_tensors_free(&g);
    nnr_tensors_free(&p);

    /* F32 classifier, I64 labels: parameters and loss only, in F32 */
    CU_ASSERT_EQUAL_FATAL(RUN(&toy_cls_info, "init", "--save", at("pc.safetensors")), 0);
    float cx[12] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
    int64_t cy[3] = {0, 1, 2};
    nnr_tensor cb[2] = {tensor("x", NNR_F32, 2, (int64_t[]){3, 4}, cx),
                        tensor("y", NNR_I64, 1, (int64_t[]){3}, cy)};
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("cb.safetensors"), cb, 2, NULL, 0), 0);
    rc = RUN(&toy_cls_info, "grads", "--params", at("pc.safetensors"), "--batch",
             at("cb.safetensors"), "--out", at("cg.safetensors"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(at("cg.safetensors"), &g), 0);
    CU_ASSERT_EQUAL(g.n, 3);
    CU_ASSERT_PTR_NOT_NULL(nnr_tensors_find(&g, "lin.weight"));
    CU_ASSERT_PTR_NOT_NULL(nnr_tensors_find(&g, "lin.bias"));
    CU_ASSERT_PTR_NOT_NULL(nnr_tensors_find(&g, "loss"));
    CU_ASSERT_EQUAL(nnr_tensors_find(&g, "loss")->dtype, NNR_F32);
    nnr_tensors_free(&g);
}

static void test_gradcheck(void) {
    int rc = RUN(&toy_reg_info, "gradcheck");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "  lin.weight  [2, 3]  checked 6       worst err "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "  lin.bias    [2]     checked 2       worst err "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "  x           [4, 3]  checked 12      worst err "));
    CU_ASSERT_EQUAL(strncmp(line_from_end(out_text, 0), "gradcheck: PASS: 3 of 3 tensors within "
                            "tolerance; worst err ", 59), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "(f64, step 1e-06, rtol 1e-06, 0 elements at kinks)"));
    const char *verdict = line_from_end(out_text, 0);
    CU_ASSERT(number_after(verdict, "worst err ") < 1e-2 * number_after(verdict, "against tolerance "));

    /* lin.bias's gradient doubled: that tensor fails, by name, and the program exits 1 */
    rc = RUN(&toy_reg_bad_info, "gradcheck");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "  lin.weight  [2, 3]  checked 6       worst err "));
    CU_ASSERT_PTR_NOT_NULL(strstr(strstr(out_text, "  lin.bias "), "FAIL\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "gradcheck: FAIL: 2 of 3 tensors within tolerance"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "in lin.bias (f64"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "gradcheck: the analytic gradient of lin.bias differs "
                                            "from the finite differences beyond tolerance"));
    /* --tol sets rtol: a 100 % error passes a tolerance of 200 % */
    CU_ASSERT_EQUAL(RUN(&toy_reg_bad_info, "gradcheck", "--tol", "2"), 0);

    rc = RUN(&toy_cls_info, "gradcheck", "--samples", "0", "--seed", "4");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "  lin.weight  [3, 4]  checked 12      worst err "));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "(f32, step 0.001, rtol 0.001"));

    /* given parameters and batch, sampling 2 elements a tensor */
    rc = RUN(&toy_cls_info, "gradcheck", "--params", at("pc.safetensors"), "--batch",
             at("cb.safetensors"), "--samples", "2");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "  lin.weight  [3, 4]  checked 2       worst err "));

    rc = RUN(&toy_reg_info, "gradcheck", "--batch", at("b.safetensors"));
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "more than the model's batch of 8"));
}

static void test_command_line(void) {
    CU_ASSERT_EQUAL(RUN(&toy_cls_info), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "usage: m COMMAND"));
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "--help"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "m gradcheck"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "--val-split F"));
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "-h"), 0);
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "frobnicate"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "unknown command 'frobnicate'"));

    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--bogus", "--train", at("train.safetensors")), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "unknown option '--bogus'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "usage: m train"));
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "eval", "--epochs", "3"), 2);      /* not eval's option */
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--epochs", "many", "--train", at("train.safetensors")), 2);
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--epochs"), 2);
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "eval", "--test", at("test.safetensors")), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "--load"));

    /* files that cannot be read or written, and unknown tensor names: status 2, before
     * any work */
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--train", "x=/nonexistent/x.idx", "y=/nonexistent/y.idx"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "m: --train: /nonexistent/x.idx: No such file or directory"));
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--train=foo=a.idx"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "unknown tensor 'foo' in foo=a.idx; the model has x, y"));
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "eval", "--load", at("missing.safetensors"), "--test",
                        at("test.safetensors")), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "missing.safetensors: No such file or directory"));
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--train", at("train.safetensors"), "--save",
                        "/nonexistent/dir/ck.safetensors"), 2);
    CU_ASSERT_STRING_EQUAL(err_text, "m: --save: /nonexistent/dir/ck.safetensors: directory "
                                     "/nonexistent/dir does not exist\n");
    CU_ASSERT_STRING_EQUAL(out_text, "");                        /* no epoch ran */
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--train", at("train.safetensors"), "--checkpoint",
                        "/dev/null"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "m: --checkpoint: /dev/null: is not a regular file"));
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--train", at("train.safetensors"), "--lr", "0"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "m: --lr: '0' is not a positive number"));
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--train", at("train.safetensors"), "--lr", "-1e-3"), 2);
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--train", at("train.safetensors"), "--lr", "inf"), 2);
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--train", at("train.safetensors"), "--epochs", "0"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "m: --epochs: '0' is not a count of at least 1"));
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--train", at("train.safetensors"), "--val-split", "1"), 2);
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "--version"), 0);
    CU_ASSERT_STRING_EQUAL(out_text, "m: model toy_cls, compiled from toy_cls.nn by nnc (unknown)\n");

    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "summary"), 0);
    CU_ASSERT_STRING_EQUAL(out_text, toy_cls_info.summary);
    /* nnc writes the table as lines (summary_lines); the last one may lack its newline */
    static const char *const lines[] = {"toy_cls: lin = dense(x, 3)\n", "[3]  15 parameters", NULL};
    nnr_model_info by_lines = toy_cls_info;
    by_lines.summary = NULL;
    by_lines.summary_lines = lines;
    CU_ASSERT_EQUAL(RUN(&by_lines, "summary"), 0);
    CU_ASSERT_STRING_EQUAL(out_text, "toy_cls: lin = dense(x, 3)\n[3]  15 parameters\n");
}

/* ---- checkpoints, resuming, early stopping ----------------------------------------- */

/* The bytes of a file, and how many. */
static char *read_bytes(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)*n + 1);
    if (fread(s, 1, (size_t)*n, f) != (size_t)*n) *n = -1;
    fclose(f);
    return s;
}

static int same_file(const char *a, const char *b) {
    long na = -2, nb = -3;
    char *x = read_bytes(a, &na), *y = read_bytes(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, (size_t)na) == 0;
    free(x);
    free(y);
    return same;
}

/* `"key":"value"` in a file's metadata JSON. */
static int meta_has(const nnr_tensors *ts, const char *key, const char *value) {
    char want[256];
    snprintf(want, sizeof want, "\"%s\":\"%s\"", key, value);
    return ts->metadata && strstr(ts->metadata, want) != NULL;
}

static void test_checkpoint_contents(void) {
    write_blobs(at("mtrain.safetensors"), 60, 3);            /* 8 batches an epoch */
    int rc = RUN(&toy_mom_info, "train", "--train", at("mtrain.safetensors"), "--epochs", "2",
                 "--seed", "21", "--lr", "0.05", "--save", at("mom.ckpt"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    nnr_tensors ts = {0};
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(at("mom.ckpt"), &ts), 0);
    CU_ASSERT_EQUAL(ts.n, 3);
    CU_ASSERT_PTR_NOT_NULL(nnr_tensors_find(&ts, "lin.weight"));
    CU_ASSERT_PTR_NOT_NULL(nnr_tensors_find(&ts, "lin.bias"));
    const nnr_tensor *st = nnr_tensors_find(&ts, "optimizer.state");
    CU_ASSERT_FATAL(st != NULL);
    CU_ASSERT(st->dtype == NNR_F32 && st->rank == 1 && st->shape[0] == 17);
    CU_ASSERT(meta_has(&ts, "nnc_model", "toy_mom"));
    CU_ASSERT(meta_has(&ts, "nnc_schema", "00000000000070c2"));
    CU_ASSERT(meta_has(&ts, "nnc_checkpoint", "1"));
    CU_ASSERT(meta_has(&ts, "step", "16"));
    CU_ASSERT(meta_has(&ts, "epoch", "2"));
    CU_ASSERT(meta_has(&ts, "batch", "0"));
    CU_ASSERT(meta_has(&ts, "epochs", "2"));
    CU_ASSERT(meta_has(&ts, "examples", "60"));
    CU_ASSERT(meta_has(&ts, "seed", "21"));
    CU_ASSERT(meta_has(&ts, "lr", "0.050000000000000003"));
    /* the double at the end of the state: 0.9^16, byte for byte */
    double product;
    memcpy(&product, (const float *)st->data + 15, sizeof product);
    double want = 1;
    for (int i = 0; i < 16; i++) want *= 0.9;
    CU_ASSERT_EQUAL(product, want);

    /* resuming restores state and step exactly */
    void *m = toy_mom_info.create();
    nnr_checkpoint ck;
    CU_ASSERT_EQUAL_FATAL(nnr_checkpoint_load(&toy_mom_info, m, at("mom.ckpt"), &ck, 1), 0);
    CU_ASSERT_EQUAL(*toy_mom_info.step(m), 16);
    CU_ASSERT_EQUAL(memcmp(toy_mom_info.state(m), st->data, 17 * sizeof(float)), 0);
    CU_ASSERT(ck.epoch == 2 && ck.batch == 0 && ck.seed == 21 && ck.lr == 0.05 && ck.full == 1);
    CU_ASSERT_EQUAL(ck.nstd, 0);
    nnr_checkpoint_free(&ck);
    toy_mom_info.destroy(m);
    nnr_tensors_free(&ts);

    /* export: the parameters alone; periodic checkpoints at the end hold the last epoch */
    CU_ASSERT_EQUAL_FATAL(RUN(&toy_mom_info, "export", "--load", at("mom.ckpt"), "--out",
                              at("mom.params")), 0);
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(at("mom.params"), &ts), 0);
    CU_ASSERT_EQUAL(ts.n, 2);
    CU_ASSERT_PTR_NULL(nnr_tensors_find(&ts, "optimizer.state"));
    CU_ASSERT_PTR_NULL(strstr(ts.metadata, "step"));
    nnr_tensors_free(&ts);
    rc = RUN(&toy_mom_info, "train", "--train", at("mtrain.safetensors"), "--epochs", "2",
             "--seed", "21", "--lr", "0.05", "--checkpoint", at("every.ckpt"),
             "--checkpoint-every", "3", "--save", at("mom2.ckpt"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(same_file(at("mom.ckpt"), at("mom2.ckpt")));    /* checkpoints change nothing */
    CU_ASSERT(same_file(at("mom.ckpt"), at("every.ckpt")));
}

static void test_resume(void) {
    /* 4 epochs straight, against 1 epoch, then resumed to 3, then to 4 (step schedule) */
    int rc = RUN(&toy_mom_info, "train", "--train", at("mtrain.safetensors"), "--val-split",
                 "0.2", "--log", at("straight.csv"), "--save", at("straight.ckpt"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char *straight = strdup(out_text);
    rc = RUN(&toy_mom_info, "train", "--train", at("mtrain.safetensors"), "--val-split", "0.2",
             "--log", at("parts.csv"), "--epochs", "1", "--save", at("p1.ckpt"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    rc = RUN(&toy_mom_info, "train", "--train", at("mtrain.safetensors"), "--val-split", "0.2",
             "--log", at("parts.csv"), "--epochs", "3", "--resume", at("p1.ckpt"), "--save",
             at("p3.ckpt"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NULL(strstr(out_text, "epoch 1/"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "epoch 2/3"));
    rc = RUN(&toy_mom_info, "train", "--train", at("mtrain.safetensors"), "--val-split", "0.2",
             "--log", at("parts.csv"), "--epochs", "4", "--resume", at("p3.ckpt"), "--save",
             at("p4.ckpt"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char *resumed = strdup(out_text);
    CU_ASSERT_EQUAL(RUN(&toy_mom_info, "export", "--load", at("straight.ckpt"), "--out", at("s.params")), 0);
    CU_ASSERT_EQUAL(RUN(&toy_mom_info, "export", "--load", at("p4.ckpt"), "--out", at("p.params")), 0);
    CU_ASSERT(same_file(at("s.params"), at("p.params")));
    /* the epoch lines and the log rows agree up to the timings */
    const char *a = strstr(straight, "epoch 4/4"), *b = strstr(resumed, "epoch 4/4");
    CU_ASSERT_FATAL(a && b);
    CU_ASSERT_EQUAL(strncmp(a, b, (size_t)(strstr(a, "time") - a)), 0);
    char *la = read_all(at("straight.csv")), *lb = read_all(at("parts.csv"));
    CU_ASSERT_EQUAL(count_lines(lb, ""), 5);
    for (int e = 1; e <= 4; e++) {
        char key[8];
        snprintf(key, sizeof key, "\n%d,", e);
        const char *ra = strstr(la, key), *rb = strstr(lb, key);
        CU_ASSERT_FATAL(ra && rb);
        int commas = 0;                       /* epoch,train_loss,test_loss,test_accuracy, */
        size_t len = 0;
        while (commas < 4 && ra[++len]) commas += ra[len] == ',';
        CU_ASSERT_EQUAL(strncmp(ra, rb, len), 0);
    }
    free(la);
    free(lb);
    free(straight);
    free(resumed);

    /* resuming on other data is refused */
    rc = RUN(&toy_mom_info, "train", "--train", at("mtrain.safetensors"), "--resume",
             at("p1.ckpt"));
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "written for 48 training examples, --train gives 60"));
}

/* A run whose loss climbs stops before it saves (the divergence guard), whatever its
 * checkpoints; --diverge-factor 0 lets it go on. */
static void test_divergence(void) {
    write_blobs(at("dtrain.safetensors"), 240, 7);
    int rc = RUN(&toy_cls_info, "train", "--train", at("dtrain.safetensors"), "--epochs", "2",
                 "--lr", "0.2", "--save", at("dgood.ckpt"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(RUN(&toy_cls_info, "train", "--train", at("dtrain.safetensors"),
                              "--epochs", "2", "--lr", "0.2", "--save", at("dck.ckpt")), 0);
    rc = RUN(&toy_cls_info, "train", "--train", at("dtrain.safetensors"), "--resume",
             at("dck.ckpt"), "--lr", "1e4", "--epochs", "6", "--checkpoint", at("dck.ckpt"),
             "--checkpoint-every", "1", "--save", at("dsave.ckpt"));
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "training diverged: the training loss"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "dck.ckpt is left as it was"));
    CU_ASSERT(same_file(at("dck.ckpt"), at("dgood.ckpt")));
    CU_ASSERT_EQUAL(access(at("dsave.ckpt"), F_OK), -1);
    rc = RUN(&toy_cls_info, "train", "--train", at("dtrain.safetensors"), "--resume",
             at("dck.ckpt"), "--lr", "1e4", "--epochs", "6", "--diverge-factor", "0");
    CU_ASSERT_PTR_NULL(strstr(err_text, "diverged"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "epoch 6/6"));
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--train", at("dtrain.safetensors"),
                        "--diverge-factor", "0.5"), 2);
}

static void test_refuse_other_model(void) {
    /* toy_cls's checkpoint into toy_reg: name, schema and the first parameter that differs */
    int rc = RUN(&toy_reg_info, "export", "--load", at("ck.safetensors"), "--out", at("x.params"));
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "ck.safetensors: a checkpoint of model 'toy_cls' "
                                            "(schema 00000000000070c1), not of model 'toy_reg' "
                                            "(schema 00000000000007e9); "));
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "parameter 'lin.weight' has shape [3, 4] in the file "
                                            "but [2, 3] in model toy_reg"));
    /* same shapes, other model: still refused, by name */
    rc = RUN(&toy_mom_info, "train", "--train", at("mtrain.safetensors"), "--resume",
             at("ck.safetensors"));
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "a checkpoint of model 'toy_cls' (schema "
                                            "00000000000070c1), not of model 'toy_mom'"));
    /* same name, other schema */
    float w[15] = {0};
    nnr_tensor ts[2] = {tensor("lin.weight", NNR_F32, 2, (int64_t[]){3, 4}, w),
                        tensor("lin.bias", NNR_F32, 1, (int64_t[]){3}, w + 12)};
    const char *meta[] = {"nnc_model", "toy_mom", "nnc_schema", "00000000000070c9",
                          "nnc_checkpoint", "1"};
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("schema.ckpt"), ts, 2, meta, 3), 0);
    rc = RUN(&toy_mom_info, "train", "--train", at("mtrain.safetensors"), "--resume",
             at("schema.ckpt"));
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "schema.ckpt: schema 00000000000070c9 differs from "
                                            "model toy_mom's 00000000000070c2"));
    /* a plain parameter file (PyTorch's): --load takes it, --resume does not */
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("plain.safetensors"), ts, 2, NULL, 0), 0);
    rc = RUN(&toy_mom_info, "train", "--train", at("mtrain.safetensors"), "--epochs", "1",
             "--load", at("plain.safetensors"));
    CU_ASSERT_EQUAL(rc, 0);
    rc = RUN(&toy_mom_info, "train", "--train", at("mtrain.safetensors"), "--resume",
             at("plain.safetensors"));
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "plain.safetensors: a parameter file, not a checkpoint"));
    CU_ASSERT_EQUAL(RUN(&toy_mom_info, "train", "--train", at("mtrain.safetensors"), "--resume",
                        at("p1.ckpt"), "--load", at("p1.ckpt")), 2);
}

static void test_patience(void) {
    /* a test set whose labels are all shifted: its loss grows as training fits the blobs */
    write_blobs(at("ptrain.safetensors"), 120, 4);
    float x[60 * 4];
    int32_t y[60];
    nnr_rng r;
    nnr_rng_seed(&r, 8);
    for (int i = 0; i < 60; i++) {
        int c = i % 3;
        y[i] = (c + 1) % 3;
        for (int j = 0; j < 4; j++) x[i * 4 + j] = (float)(2.0 * (j == c) + 0.3 * nnr_rng_normal(&r));
    }
    nnr_tensor ts[2] = {tensor("x", NNR_F32, 2, (int64_t[]){60, 4}, x),
                        tensor("y", NNR_I32, 1, (int64_t[]){60}, y)};
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("shifted.safetensors"), ts, 2, NULL, 0), 0);
    int rc = RUN(&toy_cls_info, "train", "--train", at("ptrain.safetensors"), "--test",
                 at("shifted.safetensors"), "--epochs", "10", "--patience", "2", "--save",
                 at("best.ckpt"), "--log", at("pat.csv"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL(count_lines(out_text, "epoch "), 3);        /* best at 1, then 2 worse */
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "early stopping: test_loss has not improved for 2 "
                                            "epochs; best epoch 1"));
    double best = number_after(out_text, "best epoch 1 (test_loss ");
    double first = number_after(strstr(out_text, "epoch 1/10"), "test_loss ");
    CU_ASSERT(fabs(best - first) < 1e-4);
    /* the closing accuracy is the saved (best) model's, epoch 1's, and says so (that it
     * is not the last epoch's is checked on real data by tests/trainer_cli.sh) */
    double acc1 = number_after(strstr(out_text, "epoch 1/10"), "test_accuracy ");
    const char *final = line_from_end(out_text, 0);
    CU_ASSERT_EQUAL(strncmp(final, "test accuracy: ", 15), 0);
    CU_ASSERT(fabs(number_after(final, "test accuracy: ") - acc1) < 1e-9);
    CU_ASSERT_PTR_NOT_NULL(strstr(final, " (the best epoch's model: epoch 1, saved in "));
    nnr_tensors ck = {0};
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(at("best.ckpt"), &ck), 0);
    CU_ASSERT(meta_has(&ck, "epoch", "1"));                     /* --save: the best epoch's */
    CU_ASSERT(meta_has(&ck, "best_epoch", "1"));
    nnr_tensors_free(&ck);
    char *log = read_all(at("pat.csv"));
    CU_ASSERT_EQUAL(count_lines(log, ""), 4);
    free(log);
    /* the patience state survives resuming: nothing more to do */
    rc = RUN(&toy_cls_info, "train", "--train", at("ptrain.safetensors"), "--test",
             at("shifted.safetensors"), "--epochs", "10", "--patience", "2", "--resume",
             at("best.ckpt"));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(count_lines(out_text, "epoch "), 2);        /* epochs 2 and 3 again */
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--train", at("ptrain.safetensors"), "--patience", "2"), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "--patience watches the validation loss"));
}

/* ---- eval's precision and recall --------------------------------------------------- */

static void test_precision_recall(void) {
    /* lin.weight picks x[0..2], so the prediction is the hot position: a known confusion
     * (true, predicted): (0,0) x3, (0,1) x1, (1,1) x2, (2,0) x2 */
    float w[15] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    nnr_tensor ps[2] = {tensor("lin.weight", NNR_F32, 2, (int64_t[]){3, 4}, w),
                        tensor("lin.bias", NNR_F32, 1, (int64_t[]){3}, w + 12)};
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("pick.safetensors"), ps, 2, NULL, 0), 0);
    int truth[8] = {0, 0, 0, 0, 1, 1, 2, 2}, pred[8] = {0, 0, 0, 1, 1, 1, 0, 0};
    float x[32] = {0};
    int32_t y[8];
    for (int i = 0; i < 8; i++) {
        x[i * 4 + pred[i]] = 5;
        y[i] = truth[i];
    }
    nnr_tensor ds[2] = {tensor("x", NNR_F32, 2, (int64_t[]){8, 4}, x),
                        tensor("y", NNR_I32, 1, (int64_t[]){8}, y)};
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("known.safetensors"), ds, 2, NULL, 0), 0);
    int rc = RUN(&toy_cls_info, "eval", "--load", at("pick.safetensors"), "--test",
                 at("known.safetensors"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "  class  precision  recall      f1  support\n"
                                            "      0     0.6000  0.7500  0.6667        4\n"
                                            "      1     0.6667  1.0000  0.8000        2\n"
                                            "      2          -  0.0000  0.0000        2\n"));
    CU_ASSERT_EQUAL(strncmp(line_from_end(out_text, 1), "loss: ", 6), 0);
    CU_ASSERT_STRING_EQUAL(line_from_end(out_text, 0), "accuracy: 0.6250");
}

/* ---- CSV with a label column, standardization -------------------------------------- */

static void test_csv_label_column(void) {
    /* blobs on very different scales, the label in the middle column */
    FILE *f = fopen(at("iris.csv"), "w");
    CU_ASSERT_FATAL(f != NULL);
    fprintf(f, "a,b,species,c,d\n");
    nnr_rng r;
    nnr_rng_seed(&r, 12);
    double sum[4] = {0}, sq[4] = {0};
    for (int i = 0; i < 90; i++) {
        int c = i % 3;
        double v[4];
        for (int j = 0; j < 4; j++) {
            float fv = (float)((2.0 * (j == c) + 0.3 * nnr_rng_normal(&r)) * (j + 1) * 100 + 1000 * j);
            v[j] = fv;
            sum[j] += v[j];
        }
        fprintf(f, "%.9g,%.9g,%d,%.9g,%.9g\n", v[0], v[1], c, v[2], v[3]);
    }
    fclose(f);
    nnr_dataset d;
    CU_ASSERT_EQUAL_FATAL(nnr_data_load_csv(&toy_cls_info, at("iris.csv"), "species", need_xy, NULL, 1, &d), 0);
    CU_ASSERT_EQUAL(d.n, 90);
    CU_ASSERT_EQUAL(((int32_t *)d.col[1])[4], 1);
    double mean[4], std[4];
    nnr_data_stats(&toy_cls_info, &d, mean, std);
    for (int i = 0; i < 90; i++)
        for (int j = 0; j < 4; j++) {
            double dv = ((float *)d.col[0])[i * 4 + j] - sum[j] / 90;
            sq[j] += dv * dv;
        }
    for (int j = 0; j < 4; j++) {
        CU_ASSERT(fabs(mean[j] - sum[j] / 90) < 1e-9 * fabs(mean[j]) + 1e-9);
        CU_ASSERT(fabs(std[j] - sqrt(sq[j] / 90)) < 1e-6 * std[j]);
    }
    nnr_data_free(&d);
    CU_ASSERT_EQUAL(nnr_data_load_csv(&toy_cls_info, at("iris.csv"), "class", need_xy, NULL, 1, &d), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(nnr_error(), "iris.csv: no column named 'class' in its header row (5 columns)"));
    CU_ASSERT_EQUAL(nnr_data_load_csv(&toy_reg_info, at("iris.csv"), "species", need_xy, NULL, 1, &d), -1);

    /* train standardized; the statistics go into the checkpoint */
    int rc = RUN(&toy_cls_info, "train", "--train", at("iris.csv"), "--label-column", "species",
                 "--standardize", "--epochs", "20", "--save", at("iris.ckpt"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    nnr_tensors ts = {0};
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(at("iris.ckpt"), &ts), 0);
    const nnr_tensor *tm = nnr_tensors_find(&ts, "standardize.mean");
    const nnr_tensor *tsd = nnr_tensors_find(&ts, "standardize.std");
    CU_ASSERT_FATAL(tm && tsd);
    CU_ASSERT(tm->dtype == NNR_F64 && tm->rank == 1 && tm->shape[0] == 4);
    CU_ASSERT_EQUAL(memcmp(tm->data, mean, sizeof mean), 0);
    CU_ASSERT_EQUAL(memcmp(tsd->data, std, sizeof std), 0);
    nnr_tensors_free(&ts);

    /* eval and predict apply them, and export keeps them: predictions on the raw CSV equal
     * the exported parameters' on the raw features as safetensors */
    rc = RUN(&toy_cls_info, "eval", "--load", at("iris.ckpt"), "--test", at("iris.csv"),
             "--label-column", "species");
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(number_after(line_from_end(out_text, 0), "accuracy: ") >= 0.95);
    rc = RUN(&toy_cls_info, "predict", "--load", at("iris.ckpt"), "--input", at("iris.csv"),
             "--label-column", "species", "--out", at("iris_pred.csv"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_EQUAL_FATAL(nnr_data_load_csv(&toy_cls_info, at("iris.csv"), "species", need_xy, NULL, 1, &d), 0);
    nnr_tensor xs = tensor("x", NNR_F32, 2, (int64_t[]){90, 4}, d.col[0]);
    CU_ASSERT_EQUAL_FATAL(nnr_st_write(at("iris_raw.safetensors"), &xs, 1, NULL, 0), 0);
    nnr_data_free(&d);
    CU_ASSERT_EQUAL_FATAL(RUN(&toy_cls_info, "export", "--load", at("iris.ckpt"), "--out",
                              at("iris.params")), 0);
    CU_ASSERT_EQUAL_FATAL(nnr_st_read(at("iris.params"), &ts), 0);
    tm = nnr_tensors_find(&ts, "standardize.mean");
    CU_ASSERT(tm && tm->dtype == NNR_F64 && tm->shape[0] == 4 && !memcmp(tm->data, mean, sizeof mean));
    CU_ASSERT_PTR_NULL(nnr_tensors_find(&ts, "optimizer.state"));   /* parameters, not a checkpoint */
    nnr_tensors_free(&ts);
    char spec[300];
    snprintf(spec, sizeof spec, "x=%s", at("iris_raw.safetensors"));
    rc = RUN(&toy_cls_info, "predict", "--load", at("iris.params"), "--input", spec, "--out",
             at("iris_pred2.csv"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT(same_file(at("iris_pred.csv"), at("iris_pred2.csv")));
    /* a file of features only feeds predict */
    write_text(at("feats.csv"), "a,b,c,d\n1000,2000,3000,4000\n");
    rc = RUN(&toy_cls_info, "predict", "--load", at("iris.ckpt"), "--input", at("feats.csv"),
             "--label-column", "species");
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(count_lines(out_text, ""), 2);
    rc = RUN(&toy_cls_info, "train", "--train", "x=a.csv", "--label-column", "species");
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "--train: with --label-column give one CSV FILE"));
}

/* ---- plot ---------------------------------------------------------------------------- */

/* Parse-level checks of an SVG: every tag closes in order, one root <svg>, no stray '<'
 * or '&'.  Returns the number of elements, -1 when malformed. */
static int svg_elements(const char *s) {
    char stack[64][32];
    int depth = 0, elements = 0, roots = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '&' && strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) && strncmp(p, "&amp;", 5)) return -1;
        if (*p != '<') continue;
        const char *end = strchr(p, '>');
        if (!end || memchr(p + 1, '<', (size_t)(end - p - 1))) return -1;
        if (p[1] == '?') {                                       /* the XML declaration */
            if (p != s) return -1;
        } else if (p[1] == '/') {
            size_t n = strcspn(p + 2, " >");
            if (!depth || strlen(stack[depth - 1]) != n || strncmp(stack[depth - 1], p + 2, n)) return -1;
            depth--;
        } else {
            size_t n = strcspn(p + 1, " />");
            if (n == 0 || n >= 32) return -1;
            elements++;
            if (depth == 0 && roots++) return -1;
            if (end[-1] != '/') {
                if (depth == 64) return -1;
                snprintf(stack[depth++], 32, "%.*s", (int)n, p + 1);
            }
        }
        p = end;
    }
    return depth == 0 && roots == 1 ? elements : -1;
}

static int count_of(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p++) n++;
    return n;
}

static void test_plot(void) {
    /* run.csv of test_train: 5 epochs of train and test; pat.csv has no accuracy gaps */
    int rc = RUN(&toy_cls_info, "plot", at("run.csv"), "-o", at("curves.svg"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    char *svg = read_all(at("curves.svg"));
    const char *head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"";
    CU_ASSERT_EQUAL(strncmp(svg, head, strlen(head)), 0);
    CU_ASSERT(svg_elements(svg) > 50);
    CU_ASSERT_EQUAL(count_of(svg, "<polyline "), 3);           /* train_loss, test_loss, test_accuracy */
    CU_ASSERT_EQUAL(count_of(svg, "<circle "), 15);
    CU_ASSERT_PTR_NOT_NULL(strstr(svg, "<g class=\"panel\" id=\"loss\">"));
    CU_ASSERT_PTR_NOT_NULL(strstr(svg, "<g class=\"panel\" id=\"accuracy\">"));
    CU_ASSERT_PTR_NOT_NULL(strstr(svg, "id=\"train_loss\""));
    CU_ASSERT_PTR_NULL(strstr(svg, "id=\"val_loss\""));
    CU_ASSERT_EQUAL(count_of(svg, ">epoch</text>"), 2);
    CU_ASSERT_EQUAL(count_of(svg, "<g class=\"legend\">"), 2);
    /* each polyline holds 5 points */
    for (const char *p = strstr(svg, "points=\""); p; p = strstr(p + 1, "points=\"")) {
        int pts = 1;
        for (const char *q = p + 8; *q != '"'; q++) pts += *q == ' ';
        CU_ASSERT_EQUAL(pts, 5);
    }
    free(svg);
    /* with a validation split: three loss curves; errors name the file */
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "plot", at("run2.csv"), "-o", at("c2.svg")), 0);
    svg = read_all(at("c2.svg"));
    CU_ASSERT_EQUAL(count_of(svg, "<polyline "), 3);           /* train_loss, val_loss, val_accuracy */
    CU_ASSERT(svg_elements(svg) > 0);
    free(svg);
    write_text(at("bad.csv"), "a,b\n1,2\n");
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "plot", at("bad.csv"), "-o", at("c3.svg")), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "bad.csv: no 'epoch' column"));
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "plot", at("run.csv")), 2);
}

/* ---- text files: a character model's (window, next byte) examples ------------------ */

enum { CHR_T = 3, CHR_V = 256, CHR_BATCH = 8 };

/* A bigram model over bytes, written by hand the way nnc generates models: input
 * ids: class(256) [3], label y: class(256), logits = table.weight[ids[2]] (the row of the
 * last byte of the window), loss = cross_entropy, output probs = softmax; SGD; batch 8.
 * Zero initial weights give the uniform baseline ln 256 on the first step. */
typedef struct toy_chr {
    float   param[CHR_V * CHR_V], grad[CHR_V * CHR_V];
    float   probs[CHR_BATCH * CHR_V];
    float   lr;
    int64_t step;
} toy_chr;

static double chr_forward(toy_chr *m, int n, const int32_t *ids, const int32_t *y) {
    double total = 0;
    for (int i = 0; i < n; i++) {
        const float *z = m->param + ids[i * CHR_T + CHR_T - 1] * CHR_V;
        float *p = m->probs + i * CHR_V, zmax = -INFINITY, sum = 0;
        for (int c = 0; c < CHR_V; c++) zmax = fmaxf(zmax, z[c]);
        for (int c = 0; c < CHR_V; c++) sum += p[c] = expf(z[c] - zmax);
        for (int c = 0; c < CHR_V; c++) p[c] /= sum;
        if (y) total += logf(sum) + zmax - z[y[i]];
    }
    return total / n;
}

static double chr_loss(void *m, int n, const void *const *in, int training) {
    (void)training;
    return chr_forward(m, n, in[0], in[1]);
}

static double chr_loss_grad(void *vm, int n, const void *const *in) {
    toy_chr *m = vm;
    const int32_t *ids = in[0], *y = in[1];
    double loss = chr_forward(m, n, ids, y);
    memset(m->grad, 0, sizeof m->grad);
    for (int i = 0; i < n; i++) {
        float *g = m->grad + ids[i * CHR_T + CHR_T - 1] * CHR_V;
        for (int c = 0; c < CHR_V; c++) g[c] += (m->probs[i * CHR_V + c] - (c == y[i])) / n;
    }
    return loss;
}

static double chr_train_step(void *vm, int n, const void *const *in) {
    toy_chr *m = vm;
    double loss = chr_loss_grad(m, n, in);
    for (int i = 0; i < CHR_V * CHR_V; i++) m->param[i] -= m->lr * m->grad[i];
    m->step++;
    return loss;
}

static void chr_predict(void *vm, int n, const void *const *in, void *const *out) {
    toy_chr *m = vm;
    chr_forward(m, n, in[0], NULL);
    memcpy(out[0], m->probs, (size_t)n * CHR_V * sizeof(float));
}

static void *chr_create(void) { return calloc(1, sizeof(toy_chr)); }
static void chr_destroy(void *m) { free(m); }
static void *chr_params(void *m) { return ((toy_chr *)m)->param; }
static void *chr_grads(void *m) { return ((toy_chr *)m)->grad; }
static void *chr_none(void *m) { (void)m; return NULL; }
static void *chr_no_input_grad(void *m, int k) { (void)m; (void)k; return NULL; }
static int64_t *chr_step(void *m) { return &((toy_chr *)m)->step; }
static void chr_set_lr(void *m, double lr) { ((toy_chr *)m)->lr = (float)lr; }

static const nnr_io chr_io[] = {
    {"ids", NNR_IO_INPUT, 1, {CHR_T}, CHR_T, CHR_V, 0, 0},
    {"y", NNR_IO_LABEL, 0, {0}, 1, CHR_V, 0, 0},
};
static const nnr_io chr_out[] = {{"probs", NNR_IO_OUTPUT, 1, {CHR_V}, CHR_V, 0, 0, 0}};
static const nnr_param chr_param[] = {
    {"table.weight", 2, {CHR_V, CHR_V}, CHR_V * CHR_V, 0, {NNR_INIT_ZEROS, 0, 0}, 0},
};

static const nnr_model_info toy_chr_info = {
    .name = "toy_chr", .source = "toy_chr.nn", .dtype = NNR_F32, .batch = CHR_BATCH,
    .nio = 2, .io = chr_io, .nout = 1, .out = chr_out,
    .nparam = 1, .param = chr_param, .param_size = CHR_V * CHR_V, .state_size = 0,
    .acc_out = 0, .acc_label = 1,
    .train = {.batch = CHR_BATCH, .epochs = 2, .seed = 3, .opt = NNR_OPT_SGD, .lr = 2,
              .sched = NNR_SCHED_CONSTANT},
    .summary = "toy_chr: logits = table.weight[ids[2]] [256]  65536 parameters\n",
    .schema_hash = 0xc4a2,
    .create = chr_create, .destroy = chr_destroy, .params = chr_params, .grads = chr_grads,
    .state = chr_none, .step = chr_step, .input_grad = chr_no_input_grad, .loss = chr_loss,
    .loss_grad = chr_loss_grad, .train_step = chr_train_step, .predict = chr_predict,
    .set_lr = chr_set_lr,
};

/* toy_chr's io with other vocabularies, shapes or entries, for the loader's checks. */
static nnr_model_info chr_with(const nnr_io *io, int nio) {
    nnr_model_info info = toy_chr_info;
    info.io = io;
    info.nio = nio;
    return info;
}

static void test_text_windows(void) {
    write_text(at("abc.txt"), "ab\ncd");
    nnr_dataset d;
    CU_ASSERT_EQUAL_FATAL(nnr_data_load_text(&toy_chr_info, at("abc.txt"), &d), 0);
    CU_ASSERT_EQUAL_FATAL(d.n, 5);                  /* every byte is predicted */
    CU_ASSERT_EQUAL(d.ncol, 2);
    const int32_t want[5][CHR_T + 1] = {
        {'\n', '\n', '\n', 'a'},                    /* the file's start: padded with '\n' */
        {'\n', '\n', 'a', 'b'},
        {'\n', 'a', 'b', '\n'},
        {'a', 'b', '\n', 'c'},                      /* a full window */
        {'b', '\n', 'c', 'd'},
    };
    const int32_t *ids = d.col[0], *y = d.col[1];
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < CHR_T; j++) CU_ASSERT_EQUAL(ids[i * CHR_T + j], want[i][j]);
        CU_ASSERT_EQUAL(y[i], want[i][CHR_T]);
    }
    nnr_data_free(&d);

    /* bytes above 127 are classes too; a one-byte file is one padded example */
    write_text(at("one.txt"), "\xC3");
    CU_ASSERT_EQUAL_FATAL(nnr_data_load_text(&toy_chr_info, at("one.txt"), &d), 0);
    CU_ASSERT_EQUAL(d.n, 1);
    CU_ASSERT_EQUAL(((int32_t *)d.col[0])[0], '\n');
    CU_ASSERT_EQUAL(((int32_t *)d.col[0])[2], '\n');
    CU_ASSERT_EQUAL(((int32_t *)d.col[1])[0], 0xC3);
    nnr_data_free(&d);

    /* a scalar class input is a window of one byte */
    const nnr_io one[] = {{"ids", NNR_IO_INPUT, 0, {0}, 1, 256, 0, 0}, chr_io[1]};
    nnr_model_info info = chr_with(one, 2);
    CU_ASSERT_EQUAL_FATAL(nnr_data_load_text(&info, at("abc.txt"), &d), 0);
    CU_ASSERT_EQUAL(d.n, 5);
    CU_ASSERT_EQUAL(((int32_t *)d.col[0])[0], '\n');
    CU_ASSERT_EQUAL(((int32_t *)d.col[0])[4], 'c');
    CU_ASSERT_EQUAL(((int32_t *)d.col[1])[4], 'd');
    nnr_data_free(&d);
}

static void test_text_errors(void) {
    nnr_dataset d;
    /* class(128): a byte >= 128 is named with its offset, as context or as label */
    const nnr_io ascii[] = {{"ids", NNR_IO_INPUT, 1, {CHR_T}, CHR_T, 128, 0, 0},
                            {"y", NNR_IO_LABEL, 0, {0}, 1, 128, 0, 0}};
    nnr_model_info info = chr_with(ascii, 2);
    write_text(at("ascii.txt"), "plain\ntext\n");
    CU_ASSERT_EQUAL(nnr_data_load_text(&info, at("ascii.txt"), &d), 0);
    nnr_data_free(&d);
    write_text(at("utf8.txt"), "caf\xC3\xA9\n");
    EXPECT_ERROR(nnr_data_load_text(&info, at("utf8.txt"), &d), "utf8.txt: byte 195 at offset 3",
                 "class(128)");
    /* the label's vocabulary is checked on its own */
    const nnr_io small_label[] = {chr_io[0], {"y", NNR_IO_LABEL, 0, {0}, 1, 100, 0, 0}};
    info = chr_with(small_label, 2);
    EXPECT_ERROR(nnr_data_load_text(&info, at("ascii.txt"), &d),
                 "ascii.txt: byte 112 at offset 0", "label 'y', class(100)");
    /* the last byte is never context, so only the label's vocabulary holds it */
    const nnr_io small_input[] = {{"ids", NNR_IO_INPUT, 1, {CHR_T}, CHR_T, 101, 0, 0}, chr_io[1]};
    info = chr_with(small_input, 2);
    write_text(at("last.txt"), "ab\nd");
    CU_ASSERT_EQUAL(nnr_data_load_text(&info, at("last.txt"), &d), 0);
    CU_ASSERT_EQUAL(d.n, 4);
    nnr_data_free(&d);
    write_text(at("mid.txt"), "aeb\n");
    EXPECT_ERROR(nnr_data_load_text(&info, at("mid.txt"), &d), "mid.txt: byte 101 at offset 1",
                 "input 'ids', class(101)");

    /* files */
    EXPECT_ERROR(nnr_data_load_text(&toy_chr_info, at("none.txt"), &d), "none.txt: cannot open");
    write_text(at("empty.txt"), "");
    EXPECT_ERROR(nnr_data_load_text(&toy_chr_info, at("empty.txt"), &d), "empty.txt: empty file");

    /* models a text file cannot feed */
    EXPECT_ERROR(nnr_data_load_text(&toy_cls_info, at("ascii.txt"), &d), "ascii.txt: ",
                 "input 'x' cannot be fed from it");
    const nnr_io extra[] = {chr_io[0], chr_io[1], {"t", NNR_IO_TARGET, 1, {2}, 2, 0, 0, 0}};
    info = chr_with(extra, 3);
    EXPECT_ERROR(nnr_data_load_text(&info, at("ascii.txt"), &d), "target 't' cannot be fed");
    info = chr_with(chr_io + 1, 1);
    EXPECT_ERROR(nnr_data_load_text(&info, at("ascii.txt"), &d), "has no class input");
    info = chr_with(chr_io, 1);
    EXPECT_ERROR(nnr_data_load_text(&info, at("ascii.txt"), &d), "has no label");
    const nnr_io grid[] = {{"ids", NNR_IO_INPUT, 2, {2, 3}, 6, 256, 0, 0}, chr_io[1]};
    info = chr_with(grid, 2);
    EXPECT_ERROR(nnr_data_load_text(&info, at("ascii.txt"), &d), "input 'ids'", "[T], not [2, 3]");
    const nnr_io tiny[] = {{"ids", NNR_IO_INPUT, 1, {CHR_T}, CHR_T, 10, 0, 0}, chr_io[1]};
    info = chr_with(tiny, 2);
    EXPECT_ERROR(nnr_data_load_text(&info, at("ascii.txt"), &d), "class(10)", "padding byte");
    /* a label with a shape must be the input's [T]: the next byte at every position */
    const nnr_io seq[] = {chr_io[0], {"y", NNR_IO_LABEL, 1, {4}, 4, 256, 0, 0}};
    info = chr_with(seq, 2);
    EXPECT_ERROR(nnr_data_load_text(&info, at("ascii.txt"), &d), "label 'y' must be one class",
                 "or class(K) [3] like the input", "not [4]");
    const nnr_io seq3[] = {chr_io[0], {"y", NNR_IO_LABEL, 1, {3}, 3, 256, 0, 0}};
    info = chr_with(seq3, 2);
    write_text(at("three.txt"), "abc");            /* a window of 3 and the byte after: 4 */
    EXPECT_ERROR(nnr_data_load_text(&info, at("three.txt"), &d), "three.txt: 3 bytes, too short",
                 "label 'y'", "window of 3 bytes");
    /* the first byte is only context there: the label's vocabulary does not hold it */
    const nnr_io seq_small[] = {chr_io[0], {"y", NNR_IO_LABEL, 1, {3}, 3, 100, 0, 0}};
    info = chr_with(seq_small, 2);
    write_text(at("first.txt"), "pab\n");
    CU_ASSERT_EQUAL(nnr_data_load_text(&info, at("first.txt"), &d), 0);
    nnr_data_free(&d);
    write_text(at("second.txt"), "apb\n");
    EXPECT_ERROR(nnr_data_load_text(&info, at("second.txt"), &d), "second.txt: byte 112 at offset 1",
                 "label 'y', class(100)");
}

/* A label [T] like the input: windows of T bytes one after another, each labelled with the
 * window shifted by one byte; the last window ends at the file's end. */
static void test_text_sequences(void) {
    const nnr_io seq[] = {chr_io[0], {"y", NNR_IO_LABEL, 1, {CHR_T}, CHR_T, 256, 0, 0}};
    nnr_model_info info = chr_with(seq, 2);
    nnr_dataset d;
    write_text(at("seq.txt"), "abcdefghij");       /* 10 bytes: 9 to predict, 3 windows of 3 */
    CU_ASSERT_EQUAL_FATAL(nnr_data_load_text(&info, at("seq.txt"), &d), 0);
    CU_ASSERT_EQUAL_FATAL(d.n, 3);
    const char *want_ids[] = {"abc", "def", "ghi"}, *want_y[] = {"bcd", "efg", "hij"};
    const int32_t *ids = d.col[0], *y = d.col[1];
    for (int e = 0; e < 3; e++)
        for (int j = 0; j < CHR_T; j++) {
            CU_ASSERT_EQUAL(ids[e * CHR_T + j], want_ids[e][j]);
            CU_ASSERT_EQUAL(y[e * CHR_T + j], want_y[e][j]);
        }
    nnr_data_free(&d);

    write_text(at("seq2.txt"), "abcdefgh");        /* 7 to predict: 2 windows, then one at the end */
    CU_ASSERT_EQUAL_FATAL(nnr_data_load_text(&info, at("seq2.txt"), &d), 0);
    CU_ASSERT_EQUAL_FATAL(d.n, 3);
    ids = d.col[0];
    y = d.col[1];
    CU_ASSERT_EQUAL(ids[6], 'e');                  /* e f g -> f g h */
    CU_ASSERT_EQUAL(ids[8], 'g');
    CU_ASSERT_EQUAL(y[6], 'f');
    CU_ASSERT_EQUAL(y[8], 'h');
    CU_ASSERT_EQUAL(ids[3], 'd');                  /* d e f -> e f g */
    CU_ASSERT_EQUAL(y[5], 'g');
    nnr_data_free(&d);

    write_text(at("seq3.txt"), "wxyz");            /* exactly one window and its next byte */
    CU_ASSERT_EQUAL_FATAL(nnr_data_load_text(&info, at("seq3.txt"), &d), 0);
    CU_ASSERT_EQUAL(d.n, 1);
    CU_ASSERT_EQUAL(((int32_t *)d.col[0])[0], 'w');
    CU_ASSERT_EQUAL(((int32_t *)d.col[1])[2], 'z');
    nnr_data_free(&d);

    /* no padding byte is needed, so a vocabulary without '\n' is fine */
    const nnr_io tiny[] = {{"ids", NNR_IO_INPUT, 1, {CHR_T}, CHR_T, 10, 0, 0},
                           {"y", NNR_IO_LABEL, 1, {CHR_T}, CHR_T, 10, 0, 0}};
    info = chr_with(tiny, 2);
    FILE *f = fopen(at("digits.bin"), "wb");
    CU_ASSERT_FATAL(f != NULL);
    for (int i = 0; i < 7; i++) fputc(i, f);
    fclose(f);
    CU_ASSERT_EQUAL_FATAL(nnr_data_load_text(&info, at("digits.bin"), &d), 0);
    CU_ASSERT_EQUAL(d.n, 2);
    CU_ASSERT_EQUAL(((int32_t *)d.col[1])[5], 6);
    nnr_data_free(&d);
}

/* A repetitive text: a bigram model learns it well below the uniform ln 256. */
static void write_chant(const char *path) {
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    for (int i = 0; i < 40; i++) fputs("abcd\n", f);
    fclose(f);
}

static void test_text_train(void) {
    write_chant(at("chant.txt"));
    write_text(at("chant_test.txt"), "abcd\nabcd\n");
    int rc = RUN(&toy_chr_info, "train", "--text", at("chant.txt"), "--test-text",
                 at("chant_test.txt"), "--epochs", "3", "--log", at("chr.csv"), "--save",
                 at("chr.safetensors"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "training on 200 examples, testing on 10"));
    const char *first = strstr(out_text, "epoch 1/3  train_loss ");
    const char *last = strstr(out_text, "epoch 3/3  train_loss ");
    CU_ASSERT_FATAL(first && last);
    CU_ASSERT(number_after(first, "train_loss ") < log(256.0));
    CU_ASSERT(number_after(last, "train_loss ") < 0.5);
    CU_ASSERT(number_after(last, "test_loss ") < 0.5);
    CU_ASSERT_STRING_EQUAL(line_from_end(out_text, 0), "test accuracy: 1.0000");
    char *log_text = read_all(at("chr.csv"));
    CU_ASSERT_EQUAL(count_lines(log_text, ""), 4);
    free(log_text);

    /* eval on a text file */
    rc = RUN(&toy_chr_info, "eval", "--load", at("chr.safetensors"), "--test-text",
             at("chant_test.txt"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(line_from_end(out_text, 0), "accuracy: 1.0000");
    CU_ASSERT(number_after(out_text, "\nloss: ") < 0.5);

    /* a validation split, then resuming on the same text */
    rc = RUN(&toy_chr_info, "train", "--text", at("chant.txt"), "--val-split", "0.2",
             "--epochs", "1", "--save", at("chr1.safetensors"));
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "training on 160 examples, validating on 40"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "  val_loss "));
    rc = RUN(&toy_chr_info, "train", "--text", at("chant.txt"), "--val-split", "0.2",
             "--epochs", "2", "--resume", at("chr1.safetensors"));
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NULL(strstr(out_text, "epoch 1/2"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out_text, "epoch 2/2  train_loss "));

    /* the command line */
    CU_ASSERT_EQUAL(RUN(&toy_chr_info, "train", "--text", at("chant.txt"), "--train",
                        at("x.safetensors")), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "--text and --train exclude each other"));
    CU_ASSERT_EQUAL(RUN(&toy_chr_info, "eval", "--load", at("chr.safetensors")), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "--test-text FILE"));
    CU_ASSERT_EQUAL(RUN(&toy_chr_info, "eval", "--load", at("chr.safetensors"), "--text",
                        at("chant.txt")), 2);                 /* --text is train's */
    CU_ASSERT_EQUAL(RUN(&toy_chr_info, "train", "--text", at("chant.txt"), "--label-column",
                        "y"), 2);
    CU_ASSERT_EQUAL(RUN(&toy_cls_info, "train", "--text", at("chant.txt")), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "m: --text: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "chant.txt: a text file feeds models"));
    CU_ASSERT_EQUAL(RUN(&toy_chr_info, "train", "--text", at("chant.txt"), "--test-text",
                        at("nothere.txt")), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "m: --test-text: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(err_text, "nothere.txt: No such file or directory"));
}

int main(void) {
    /* nnr_main would otherwise re-execute this program to set how idle threads wait
     * (nnr_threads_passive), running every test again inside the first trainer call */
    setenv("OMP_WAIT_POLICY", "passive", 1);
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    CU_pSuite s = CU_add_suite("trainer", setup, teardown);
    if (!s) goto done;
    /* order matters from test_train on: later tests use the checkpoint and files it writes */
    CU_add_test(s, "load IDX, raw and gzip", test_load_idx);
    CU_add_test(s, "load safetensors, bare and NAME=FILE", test_load_safetensors);
    CU_add_test(s, "load CSV", test_load_csv);
    CU_add_test(s, "loading errors name the file and tensor", test_load_errors);
    CU_add_test(s, "validation split", test_split);
    CU_add_test(s, "gather", test_gather);
    CU_add_test(s, "train", test_train);
    CU_add_test(s, "eval", test_eval);
    CU_add_test(s, "predict", test_predict);
    CU_add_test(s, "init and grads", test_grads);
    CU_add_test(s, "gradcheck", test_gradcheck);
    CU_add_test(s, "command line", test_command_line);
    CU_add_test(s, "checkpoint contents, export", test_checkpoint_contents);
    CU_add_test(s, "resume gives the uninterrupted run", test_resume);
    CU_add_test(s, "a diverging run stops before it saves", test_divergence);
    CU_add_test(s, "another model's checkpoint is refused", test_refuse_other_model);
    CU_add_test(s, "early stopping", test_patience);
    CU_add_test(s, "precision and recall of a known confusion", test_precision_recall);
    CU_add_test(s, "CSV label column and standardization", test_csv_label_column);
    CU_add_test(s, "plot writes a well-formed SVG", test_plot);
    CU_add_test(s, "text files: windows, padding, labels", test_text_windows);
    CU_add_test(s, "text files: vocabulary, file and model errors", test_text_errors);
    CU_add_test(s, "text files: a label per position, the window shifted by one", test_text_sequences);
    CU_add_test(s, "text files: train, eval, validation split, resume", test_text_train);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
done:
    free(out_text);
    free(err_text);
    int failed = CU_get_number_of_failures() != 0;
    CU_cleanup_registry();
    return failed || CU_get_error();
}
