/* parallel.c — data-parallel training inside the trainer: what `m train` does differently
 * when several processes (ranks) train one model together (docs/distributed.md).
 *
 * Every rank holds the whole model and the whole data set, draws the same shuffled order
 * from the seed, and takes its own contiguous share of each global batch: examples
 * nb·r/N .. nb·(r+1)/N − 1 of a batch of nb, so shares differ by at most one example when
 * N does not divide nb.  The model is told where its share lies (info->shard), so that
 * its loss and gradients are the share's part of the global batch's mean and dropout
 * draws the masks the whole batch would: summing the gradient blocks over the ranks then
 * gives the single-process gradient, up to the order of the additions.  Every rank applies
 * the same update to the same sum, so the parameters stay identical (--check-ranks K
 * verifies it).  Batchnorm uses each rank's own statistics, as PyTorch's
 * DistributedDataParallel does, unless --sync-batchnorm asks the model to sum them over
 * the ranks, which makes a run the single-process one again.
 *
 * The gradient block is summed in one call after the backward pass rather than in buckets
 * started during it: on one machine the sum is copies and additions done by the ranks' own
 * cores, which are busy with the backward pass, so overlap hides none of it (bench/mpi.sh
 * measures the sums at 3-25 % of a 2-rank epoch; docs/distributed.md).  The engine
 * (mpi.c) knows MPI; this file only calls nnr_comm_world's functions.
 */
#include "nnr.h"
#include "trainer.h"

#include <math.h>
#include <string.h>

const nnr_comm *nnr_comm_world;   /* set by the MPI engine before nnr_main */

static double comm_secs;

double nnr_par_comm_seconds(void) { return comm_secs; }

/* The options that only mean something with ranks, and the model's fitness for them. */
int nnr_par_usage(const nnr_model_info *info, const options *o) {
    const nnr_comm *c = nnr_comm_world;
    if (!c) {
        if (o->sync_batchnorm || o->check_ranks >= 0)
            return nnr_trainer_usage_error(o->cmd, "%s is for data-parallel training: build the "
                                           "trainer with `nnc MODEL.nn --exe --mpi` and run it under "
                                           "mpirun", o->sync_batchnorm ? "--sync-batchnorm" : "--check-ranks");
        return 0;
    }
    if (!info->update || !info->shard) {
        nnr_set_error("%s cannot train on several processes: its model info has no update or "
                      "shard entry (a hand-written model; nnc's generated models have both)", info->name);
        return -1;
    }
    if (info->batch < c->size) {
        nnr_set_error("the compiled batch of %d examples cannot give each of %d ranks one "
                      "(the global batch is the compiled one, split over the ranks): run fewer "
                      "ranks or compile a larger batch", info->batch, c->size);
        return -1;
    }
    return 0;
}

/* With synchronized statistics every rank takes part in every sum, so each needs an
 * example of every batch, the last partial one too. */
int nnr_par_check_data(const nnr_model_info *info, const options *o, int64_t n) {
    const nnr_comm *c = nnr_comm_world;
    int64_t last = n % info->batch;
    if (!c || !o->sync_batchnorm || last == 0 || last >= c->size) return 0;
    nnr_set_error("--sync-batchnorm: the last batch of each epoch has %lld example%s (%lld "
                  "training examples in batches of %d), fewer than the %d ranks, and each rank "
                  "needs one to take part in the batch statistics: use %lld more or %lld fewer "
                  "examples (--val-split moves some), or fewer ranks", (long long)last,
                  last == 1 ? "" : "s", (long long)n, info->batch, c->size,
                  (long long)(c->size - last), (long long)last);
    return -1;
}

/* The model's nnr_sum_fn: batch statistics, in the model's dtype, over every rank. */
static void sum_stats(void *ctx, void *x, int64_t count) {
    const nnr_model_info *info = ctx;
    nnr_comm_world->sum(x, count, info->dtype);
}

double nnr_par_step(const nnr_model_info *info, session *s, const options *o, int64_t at, int nb,
                    int stop_in, int *stop) {
    const nnr_comm *c = nnr_comm_world;
    int64_t lo = (int64_t)nb * c->rank / c->size, hi = (int64_t)nb * (c->rank + 1) / c->size;
    double part = 0;
    if (hi > lo) {
        nnr_data_gather(info, &s->data, s->order + at + lo, (int)(hi - lo), s->stage);
        info->shard(s->m, lo, nb, o->sync_batchnorm ? sum_stats : NULL, (void *)info);
        part = info->loss_grad(s->m, (int)(hi - lo), (const void *const *)s->stage);
        info->shard(s->m, 0, 0, NULL, NULL);
    } else {   /* a last batch smaller than the ranks: this one adds nothing */
        memset(info->grads(s->m), 0, (size_t)info->param_size * nnr_dtype_size(info->dtype));
    }
    double t0 = nnr_now();
    double v[2] = {part, stop_in ? 1 : 0};
    int bad = c->sum(info->grads(s->m), info->param_size, info->dtype) || c->sum(v, 2, NNR_F64);
    comm_secs += nnr_now() - t0;
    *stop = v[1] > 0;
    if (bad) return NAN;
    if (isfinite(v[0])) info->update(s->m);
    return v[0];
}

/* FNV-1a over the bytes of the parameters (batchnorm's running statistics too when they
 * are synchronized: otherwise each rank keeps its own, as DDP's do). */
static uint64_t params_hash(const nnr_model_info *info, void *m, int with_buffers) {
    size_t es = nnr_dtype_size(info->dtype);
    const unsigned char *p = info->params(m);
    uint64_t h = 1469598103934665603ull;
    for (int k = 0; k < info->nparam; k++) {
        const nnr_param *q = &info->param[k];
        if (q->buffer == 1 && !with_buffers) continue;
        const unsigned char *b = p + (size_t)q->offset * es;
        for (size_t i = 0; i < (size_t)q->size * es; i++) h = (h ^ b[i]) * 1099511628211ull;
    }
    return h;
}

int nnr_par_check_same(const nnr_model_info *info, void *m, const options *o) {
    const nnr_comm *c = nnr_comm_world;
    int64_t step = *info->step(m);
    if (!c || o->check_ranks <= 0 || step % o->check_ranks != 0) return 0;
    uint64_t h = params_hash(info, m, o->sync_batchnorm), v[2] = {h, ~h};
    if (c->min_u64(v, 2)) return -1;
    if (v[0] == ~v[1]) return 0;   /* the smallest hash is also the largest: all equal */
    nnr_set_error("--check-ranks: the ranks' parameters differ after step %lld (this rank's "
                  "hash %016llx; the smallest %016llx, the largest %016llx): the ranks no "
                  "longer train one model", (long long)step, (unsigned long long)h,
                  (unsigned long long)v[0], (unsigned long long)~v[1]);
    return -1;
}

/* Batchnorm's running statistics are each rank's own unless synchronized; rank 0's are
 * the model's (the ones it saves), as DDP broadcasts rank 0's buffers. */
static int share_buffers(const nnr_model_info *info, void *m) {
    size_t es = nnr_dtype_size(info->dtype);
    char *p = info->params(m);
    for (int k = 0; k < info->nparam; k++) {
        const nnr_param *q = &info->param[k];
        if (q->buffer == 1 && nnr_comm_world->bcast(p + (size_t)q->offset * es, q->size * (int64_t)es))
            return -1;
    }
    return 0;
}

/* Each rank scores a contiguous part of d; the sums are added over the ranks. */
scores nnr_par_evaluate(const nnr_model_info *info, void *m, const nnr_dataset *d, evaluator *ev) {
    const nnr_comm *c = nnr_comm_world;
    if (!c) return nnr_session_evaluate(info, m, d, ev);
    scores bad = {NAN, NAN};
    if (share_buffers(info, m)) return bad;
    int64_t lo = d->n * c->rank / c->size, hi = d->n * (c->rank + 1) / c->size, hits = 0;
    double v[2] = {0, 0};
    nnr_session_evaluate_range(info, m, d, lo, hi, ev, &v[0], &hits);
    v[1] = (double)hits;   /* exact: counts stay far below 2^53 */
    if (c->sum(v, 2, NNR_F64)) return bad;
    scores s = {v[0] / (double)d->n, NAN};
    if (ev->confusion) s.accuracy = v[1] / (double)(d->n * ev->labels);
    return s;
}
