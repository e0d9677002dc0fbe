/* train.c — `m train`: the epochs over a shuffled training set, the banner, the progress
 * bar and the per-epoch line, the --log file, checkpoints (--save, --checkpoint, --resume),
 * early stopping (--patience) and stopping on SIGINT or SIGTERM.
 *
 * A training step only gathers a shuffled batch into staging buffers and calls the model:
 * everything else is allocated before the loop (a periodic checkpoint write is the one
 * exception: the safetensors writer builds its header).  Training is exactly resumable:
 * each epoch's order is a function of (seed, epoch) alone, and a checkpoint records the
 * step, the epoch, the batches done in it and the partial loss sum, so a run resumed from
 * any checkpoint replays the remaining steps of the uninterrupted run.
 */
#include "nnr.h"
#include "trainer.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH      20           /* the bar itself, at most (narrower terminals: less) */
#define BAR_INTERVAL   0.1          /* seconds between progress redraws */
#define TERM_COLUMNS   80           /* when neither the terminal nor $COLUMNS says */

double nnr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct bar { int on; double t0, last; } bar;

/* 21540 -> "21,540" */
static const char *grouped(char *buf, size_t cap, int64_t v) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%lld", (long long)v);
    size_t j = 0;
    for (int i = 0; i < len && j + 2 < cap; i++) {
        if (i > 0 && (len - i) % 3 == 0) buf[j++] = ',';
        buf[j++] = digits[i];
    }
    buf[j] = '\0';
    return buf;
}

static const char *duration(char *buf, size_t cap, double secs) {
    long t = lround(secs);
    if (t < 60) snprintf(buf, cap, "%lds", t);
    else if (t < 3600) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
    return buf;
}

/* The terminal's width: stderr's window size, else $COLUMNS, else TERM_COLUMNS.  Asked
 * at every redraw (at most 10 a second), so a resized window is followed. */
static int term_columns(void) {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *env = getenv("COLUMNS");
    long c = env ? strtol(env, NULL, 10) : 0;
    return c > 0 && c < 10000 ? (int)c : TERM_COLUMNS;
}

/* `epoch 2/5 [=========>          ] 31232/60000  loss 0.4312  21,540 ex/s  ETA 1s`, redrawn
 * in place at most every BAR_INTERVAL seconds, and always when the epoch completes.  It
 * fits the terminal's width less one column (a line that fills the last column wraps on
 * some terminals): the bar narrows to 10 columns, then the rate and ETA go, then the bar,
 * then the line is cut. */
static void bar_draw(bar *b, int epoch, int epochs, int64_t done, int64_t n, double loss) {
    if (!b->on) return;
    double t = nnr_now();
    if (done < n && t - b->last < BAR_INTERVAL) return;
    b->last = t;
    char rate[32], eta[32], head[64], tail[96], stats[96], line[512];
    double per_sec = (double)done / fmax(t - b->t0, 1e-9);
    int digits = snprintf(NULL, 0, "%lld", (long long)n);
    snprintf(head, sizeof head, "epoch %d/%d ", epoch, epochs);
    snprintf(tail, sizeof tail, " %*lld/%lld  loss %.4f", digits, (long long)done, (long long)n, loss);
    snprintf(stats, sizeof stats, "  %s ex/s  ETA %s", grouped(rate, sizeof rate, llround(per_sec)),
             duration(eta, sizeof eta, (double)(n - done) / per_sec));
    int room = term_columns() - 1, fixed = (int)(strlen(head) + strlen(tail));
    if (fixed + 12 + (int)strlen(stats) > room) stats[0] = '\0';
    int width = room - fixed - (int)strlen(stats) - 2;   /* the brackets */
    if (width > BAR_WIDTH) width = BAR_WIDTH;
    char fill[BAR_WIDTH + 3] = "";
    if (width >= 10) {
        int w = (int)(width * done / n);
        fill[0] = '[';
        for (int i = 0; i < width; i++) fill[i + 1] = i < w - 1 ? '=' : i == w - 1 ? '>' : ' ';
        fill[width + 1] = ']';
        fill[width + 2] = '\0';
    }
    int len = snprintf(line, sizeof line, "%s%s%s%s", head, fill, tail, stats);
    if (len > room) len = room > 0 ? room : 0;
    fprintf(stderr, "\r%.*s\033[K", len, line);
}

static void bar_clear(const bar *b) {
    if (b->on) fprintf(stderr, "\r\033[K");
}

/* The per-epoch line on stdout. */
static void print_epoch(int e, int epochs, double train_loss, const scores *val,
                        const scores *test, double secs) {
    printf("epoch %d/%d  train_loss %.4f", e, epochs, train_loss);
    if (val) {
        printf("  val_loss %.4f", val->loss);
        if (!isnan(val->accuracy)) printf("  val_accuracy %.4f", val->accuracy);
    }
    if (test) {
        printf("  test_loss %.4f", test->loss);
        if (!isnan(test->accuracy)) printf("  test_accuracy %.4f", test->accuracy);
    }
    printf("  time %.2fs\n", secs);
    fflush(stdout);
}

/* A CSV field: the number, or empty when it was not measured. */
static const char *field(char *buf, size_t cap, double v) {
    if (isnan(v)) buf[0] = '\0';
    else snprintf(buf, cap, "%.9g", v);
    return buf;
}

/* One epoch's row: the columns of log_open's header.  The optimizer's description has
 * commas, so it is quoted (RFC 4180; it holds no quotes). */
static int log_row(FILE *f, const char *path, int e, double train_loss, const scores *val,
                   const scores *test, double secs, double lr, const char *optimizer) {
    char a[32], b[32], c[32], d[32];
    fprintf(f, "%d,%.9g,%s,%s,%.4f", e, train_loss, field(a, sizeof a, test->loss),
            field(b, sizeof b, test->accuracy), secs);
    if (val) fprintf(f, ",%s,%s", field(c, sizeof c, val->loss), field(d, sizeof d, val->accuracy));
    fprintf(f, ",%.9g,\"%s\"\n", lr, optimizer);
    if (fflush(f) || ferror(f)) {
        nnr_set_error("%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int train_alloc(const nnr_model_info *info, session *s) {
    if (!(s->order = malloc((size_t)s->data.n * sizeof(int64_t)))) return oom();
    if (!(s->stage = calloc((size_t)info->nio + 1, sizeof(void *)))) return oom();
    for (int k = 0; k < info->nio; k++)
        if (!(s->stage[k] = nnr_alloc_aligned((size_t)info->batch * (size_t)info->io[k].size *
                                   col_elem_size(info, &info->io[k]))))
            return oom();
    return nnr_session_evaluator_alloc(info, &s->ev);
}

/* Epoch e's order of the n training examples: a permutation drawn from a generator seeded
 * by (seed, e) alone, so a resumed run shuffles exactly as the uninterrupted one did. */
static void epoch_order(int64_t *order, int64_t n, uint64_t seed, int e) {
    nnr_rng rng;
    nnr_rng_seed(&rng, (seed ^ SHUFFLE_STREAM) + 0x9E3779B97F4A7C15ULL * (uint64_t)e);
    for (int64_t i = 0; i < n; i++) order[i] = i;
    nnr_rng_shuffle(&rng, order, n);
}

/* The divergence guard (--diverge-factor): the per-step training loss smoothed by an
 * exponential moving average over about 1/GUARD_ALPHA steps, and its minimum so far in the
 * run.  Training stops when the average rises past `factor` times that minimum (0: never).
 * A single batch's loss is too noisy to compare (near zero, one hard batch is many times
 * the mean), an epoch's mean too late (periodic checkpoints replace the file within it). */
#define GUARD_ALPHA     NNR_DIVERGE_ALPHA
#define ABSURD_LOSS     1e15        /* a finite loss past this gets a warning */

typedef struct guard { double factor, ema, min; int64_t steps; int warned; } guard;

/* A periodic checkpoint is written one step late: the parameters after step k are only
 * known to be good once step k+1 has measured their loss, so they wait here (a copy of the
 * blocks and the position) until it has, and are dropped when that loss is not finite or
 * is past the guard's limit. */
typedef struct snapshot { void *params, *state; int64_t step; nnr_checkpoint ck; int due; } snapshot;

/* Where periodic checkpoints go: every `every` optimizer steps (0: only at epochs' ends). */
typedef struct saver {
    const char *path;
    int64_t     every;
    guard       g;
    snapshot    snap;
    int         numerics;           /* --check-numerics, for the guard's message */
} saver;

static int snapshot_alloc(const nnr_model_info *info, saver *sv) {
    if (!sv->path || sv->every <= 0) return 0;
    size_t es = nnr_dtype_size(info->dtype);
    if (!(sv->snap.params = malloc((size_t)info->param_size * es + 1)) ||
        !(sv->snap.state = malloc((size_t)info->state_size * es + 1)))
        return oom();
    return 0;
}

static void snapshot_take(const nnr_model_info *info, void *m, const nnr_checkpoint *ck, snapshot *sn) {
    size_t es = nnr_dtype_size(info->dtype);
    memcpy(sn->params, info->params(m), (size_t)info->param_size * es);
    if (info->state_size > 0) memcpy(sn->state, info->state(m), (size_t)info->state_size * es);
    sn->step = *info->step(m);
    sn->ck = *ck;
    sn->due = 1;
}

/* Writes the snapshot the step of `loss` has measured, unless that loss is past the
 * guard's limit: the average takes a few steps to rise past it, one step's loss does not,
 * and a noisy batch only skips one checkpoint. */
static int snapshot_flush(const nnr_model_info *info, saver *sv, double loss) {
    snapshot *sn = &sv->snap;
    const guard *g = &sv->g;
    if (!sn->due) return 0;
    sn->due = 0;
    if (g->factor > 0 && g->min > 0 && loss > g->factor * g->min) return 0;
    return nnr_checkpoint_write(info, sn->params, info->state_size > 0 ? sn->state : NULL,
                                sn->step, sv->path, &sn->ck);
}

/* "; CKPT is left as it was" when there is one, for the messages of a stop. */
static const char *kept(char *buf, size_t cap, const char *path) {
    buf[0] = '\0';
    if (path && access(path, F_OK) == 0)
        snprintf(buf, cap, "; %s is left as it was", path);
    return buf;
}

/* Feeds one step's finite loss to the guard: -1 (after recording why) when it trips. */
static int guard_step(guard *g, double loss, const char *ckpt, int e, int64_t step, int numerics) {
    g->ema = g->steps++ ? g->ema + GUARD_ALPHA * (loss - g->ema) : loss;
    if (g->steps == 1 || g->ema < g->min) g->min = g->ema;
    if (!g->warned && fabs(loss) > ABSURD_LOSS) {
        g->warned = 1;
        fprintf(stderr, "%s: warning: the training loss is %g at step %lld (epoch %d); a loss "
                "this large usually means diverging training (a lower --lr) or inputs of a "
                "large scale (--standardize)\n", nnr_trainer_prog, loss, (long long)step, e);
    }
    if (!(g->factor > 0 && g->min > 0 && g->ema > g->factor * g->min)) return 0;
    char k[1024];
    nnr_set_error("training diverged: the training loss (averaged over about %d steps) rose "
                  "from %.6g to %.6g, past %g times its minimum, by step %lld in epoch %d; "
                  "stopped before saving%s; a lower --lr may help (--diverge-factor F sets the "
                  "limit, 0 turns this check off%s)", (int)(1 / GUARD_ALPHA), g->min, g->ema,
                  g->factor, (long long)step, e, kept(k, sizeof k, ckpt),
                  numerics ? " and lets --check-numerics go on to the first non-finite value" : "");
    return -1;
}

/* The largest magnitude among m's parameters. */
static double largest_param(const nnr_model_info *info, void *m) {
    const void *p = info->params(m);
    double big = 0;
    for (int64_t i = 0; i < info->param_size; i++) big = fmax(big, fabs(get(info, p, i)));
    return big;
}

/* Whether training was diverging when the loss stopped being finite (the loss had risen,
 * or the parameters have grown absurdly large): then a lower --lr is the likely cure, not
 * a fault of the model's arithmetic. */
static int was_diverging(const nnr_model_info *info, void *m, const guard *g) {
    return (g->steps > 0 && (fabs(g->ema) > ABSURD_LOSS || (g->min > 0 && g->ema > 2 * g->min))) ||
           largest_param(info, m) > ABSURD_LOSS;
}

/* A step whose loss is not finite: the message names what is known about where. */
static double loss_failed(const nnr_model_info *info, session *s, const saver *sv, double loss,
                          int e, int64_t step, int64_t at, int nb) {
    const char *why = info->numerics ? info->numerics(s->m) : NULL;
    char k[1024], fault[1024] = "";
    kept(k, sizeof k, sv->path);
    if (why) {  /* --check-numerics: the step stopped before its update */
        nnr_set_error("%s: %s, in epoch %d (examples %lld-%lld of the shuffled set)%s",
                      info->source, why, e, (long long)at + 1, (long long)(at + nb), k);
        return NAN;
    }
    if (nnr_model_check_finite(info, s->m, 1)) snprintf(fault, sizeof fault, "; %s", nnr_error());
    nnr_set_error("the training loss became %g at step %lld in epoch %d (examples %lld-%lld of "
                  "the shuffled set)%s%s; %s(--check-numerics finds where)", loss, (long long)step,
                  e, (long long)at + 1, (long long)(at + nb), fault, k,
                  was_diverging(info, s->m, &sv->g) ? "a lower --lr may help " : "");
    return NAN;
}

/* Parameters or optimizer state that stopped being finite: the run stops unsaved. */
static int state_failed(const nnr_model_info *info, session *s, int e, const char *ckpt) {
    char fault[1024], k[1024];
    snprintf(fault, sizeof fault, "%s", nnr_error());
    nnr_set_error("after step %lld (epoch %d): %s; training stopped without saving it%s "
                  "(--check-numerics finds the first tensor that is not finite)",
                  (long long)*info->step(s->m), e, fault, kept(k, sizeof k, ckpt));
    return -1;
}

static int64_t batches_in(const nnr_model_info *info, int64_t n) {
    return (n + info->batch - 1) / info->batch;
}

/* ---- stopping on SIGINT and SIGTERM ------------------------------------------------------
 * The first signal only sets stop_signal, which the step loop reads after each step (a
 * plain load: no system call in the loop); the run then saves and says how to resume.  A
 * second signal while it does so kills the program at once, as the default action would.
 * A signal the parent ignored (nohup, a background job of a shell without job control)
 * stays ignored. */
static volatile sig_atomic_t stop_signal;   /* 0, or the signal that asked to stop */
static int stop_agreed;                     /* with ranks: some rank was asked to stop, as
                                               every rank learned at the same step */

/* Whether to stop: with ranks, only as they all agreed (parallel.c), so that they stop
 * after the same step, whichever of them the signal reached. */
static int stopping(void) { return nnr_comm_world ? stop_agreed : stop_signal != 0; }
static char stop_message[160];              /* written by the handler: write(2) is safe */

static void on_stop_signal(int sig) {
    if (stop_signal) {
        signal(sig, SIG_DFL);
        raise(sig);                 /* delivered once this handler returns */
        return;
    }
    stop_signal = sig;
    ssize_t ignored = write(STDERR_FILENO, stop_message, strlen(stop_message));
    (void)ignored;
}

typedef struct stop_handlers { struct sigaction old_int, old_term; } stop_handlers;

static void stop_handlers_install(stop_handlers *h) {
    if (nnr_comm_world)   /* mpirun also sends SIGTERM when another rank has died */
        snprintf(stop_message, sizeof stop_message, "\n%s: stopping after this step with every "
                 "rank and saving; if a rank has died, the job ends now and the last checkpoint "
                 "stays as it was\n", nnr_trainer_prog);
    else
        snprintf(stop_message, sizeof stop_message, "\n%s: stopping after this step and saving "
                 "(interrupt again to quit at once)\n", nnr_trainer_prog);
    stop_signal = 0;
    stop_agreed = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;       /* a write the signal lands in goes on */
    sigaction(SIGINT, NULL, &h->old_int);
    sigaction(SIGTERM, NULL, &h->old_term);
    if (h->old_int.sa_handler != SIG_IGN) sigaction(SIGINT, &sa, NULL);
    if (h->old_term.sa_handler != SIG_IGN) sigaction(SIGTERM, &sa, NULL);
}

static void stop_handlers_restore(const stop_handlers *h) {
    sigaction(SIGINT, &h->old_int, NULL);
    sigaction(SIGTERM, &h->old_term, NULL);
}

enum { EPOCH_DONE = 0, EPOCH_FAILED = -1, EPOCH_STOPPED = 1 };

/* Epoch e over the shuffled training set from batch s->ck.batch on (0 unless resumed),
 * continuing the loss sum s->ck.loss_sum: EPOCH_DONE with *mean the epoch's mean loss,
 * EPOCH_FAILED after recording why training cannot go on, or EPOCH_STOPPED when a signal
 * asked to stop before its last batch (s->ck then holds the position after the last step
 * taken).  *secs: the time its steps took. */
static int train_epoch(const nnr_model_info *info, session *s, const options *o, saver *sv,
                       int e, int epochs, double *mean, double *secs) {
    const int64_t n = s->data.n, last = batches_in(info, n) - 1;
    nnr_checkpoint *ck = &s->ck;
    double sum = ck->loss_sum;
    double t0 = nnr_now();
    bar b = {isatty(fileno(stderr)), t0, t0};       /* first drawn once a rate is known */
    for (int64_t bi = ck->batch; bi <= last; bi++) {
        int64_t at = bi * info->batch;
        int nb = (int)(n - at < info->batch ? n - at : info->batch);
        int64_t step = *info->step(s->m) + 1;     /* this step's number (from 1) */
        /* schedule_every = step: t is the optimizer steps done, which a checkpoint keeps */
        if (info->train.sched_every == NNR_SCHED_EVERY_STEP)
            info->set_lr(s->m, nnr_schedule_lr(&info->train, ck->lr, step - 1));
        double loss;
        if (nnr_comm_world) {
            loss = nnr_par_step(info, s, o, at, nb, stop_signal != 0, &stop_agreed);
            if (isfinite(loss) && nnr_par_check_same(info, s->m, o)) {
                bar_clear(&b);
                return EPOCH_FAILED;
            }
        } else {
            nnr_data_gather(info, &s->data, s->order + at, nb, s->stage);
            loss = info->train_step(s->m, nb, (const void *const *)s->stage);
        }
        if (!isfinite(loss)) {
            bar_clear(&b);
            loss_failed(info, s, sv, loss, e, step, at, nb);
            return EPOCH_FAILED;
        }
        if (guard_step(&sv->g, loss, sv->path, e, step, sv->numerics) ||
            snapshot_flush(info, sv, loss)) {
            bar_clear(&b);
            return EPOCH_FAILED;
        }
        sum += loss * nb;
        /* the last batch's checkpoint is the end-of-epoch one, written after evaluation */
        if (sv->path && sv->every > 0 && bi < last && step % sv->every == 0) {
            if (nnr_model_check_finite(info, s->m, 1)) {
                bar_clear(&b);
                state_failed(info, s, e, sv->path);
                return EPOCH_FAILED;
            }
            ck->batch = bi + 1;
            ck->loss_sum = sum;
            snapshot_take(info, s->m, ck, &sv->snap);
            /* with the guard off, no loss decides: written at once */
            if (sv->g.factor == 0 && snapshot_flush(info, sv, loss)) {
                bar_clear(&b);
                return EPOCH_FAILED;
            }
        }
        bar_draw(&b, e, epochs, at + nb, n, sum / (double)(at + nb));
        if (stopping() && bi < last) {
            ck->batch = bi + 1;
            ck->loss_sum = sum;
            bar_clear(&b);
            return EPOCH_STOPPED;
        }
    }
    *secs = nnr_now() - t0;
    bar_clear(&b);
    *mean = sum / (double)n;
    return EPOCH_DONE;
}

/* The log of a resumed run: the rows of the epochs the checkpoint has completed are kept
 * (rows written after the checkpoint are dropped, since those epochs run again) under
 * this run's header (a log of an older nnc lacks the last columns), and the file stays
 * open for appending.  A missing file starts afresh. */
static int log_reopen(session *s, const char *path, const char *header, int64_t epochs_done) {
    FILE *f = fopen(path, "r");
    char *kept = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&kept, &len);
    if (!mem) {
        if (f) fclose(f);
        return oom();
    }
    char *line = NULL;
    size_t cap = 0;
    int first = 1;
    fputs(header, mem);
    while (f && getline(&line, &cap, f) >= 0) {
        if (!first && line[0] >= '0' && line[0] <= '9' && strtoll(line, NULL, 10) <= epochs_done)
            fputs(line, mem);
        first = 0;
    }
    if (f) fclose(f);
    free(line);
    fclose(mem);
    int rc = 0;
    if (!(s->file = fopen(path, "w")) || fwrite(kept, 1, len, s->file) != len || fflush(s->file)) {
        nnr_set_error("%s: %s", path, strerror(errno));
        rc = -1;
    }
    free(kept);
    return rc;
}

static int log_open(session *s, const options *o, int has_val, int resumed) {
    if (!o->log) return 0;
    char header[128];
    snprintf(header, sizeof header, "epoch,train_loss,test_loss,test_accuracy,seconds%s,lr,optimizer\n",
             has_val ? ",val_loss,val_accuracy" : "");
    if (resumed) return log_reopen(s, o->log, header, s->ck.epoch);
    if (!(s->file = fopen(o->log, "w"))) {
        nnr_set_error("%s: %s", o->log, strerror(errno));
        return -1;
    }
    fputs(header, s->file);
    return 0;
}

/* Checks of the command line that need no files. */
static int train_usage(const nnr_model_info *info, const options *o, int64_t *epochs) {
    (void)info;
    if (!o->train.n && !o->text)
        return nnr_trainer_usage_error(o->cmd, "train needs --train NAME=FILE (or --text FILE)");
    int bad = nnr_trainer_text_usage(o);
    if (bad) return bad;
    if (*epochs < 1 || *epochs > INT_MAX)
        return nnr_trainer_usage_error(o->cmd, "--epochs %lld is outside [1, %d]",
                                       (long long)*epochs, INT_MAX);
    if (o->resume && o->load)
        return nnr_trainer_usage_error(o->cmd, "--resume and --load exclude each other (--resume "
                                               "restores the parameters too)");
    if (o->checkpoint_every >= 0 && !o->checkpoint)
        return nnr_trainer_usage_error(o->cmd, "--checkpoint-every needs --checkpoint CKPT");
    if (o->checkpoint && o->save && strcmp(o->checkpoint, o->save) == 0)
        return nnr_trainer_usage_error(o->cmd, "--checkpoint and --save name the same file (the "
                                               "latest position and the final or best model)");
    int has_val = !isnan(o->val_split) && o->val_split != 0;
    if (o->patience >= 0 && !has_val && !o->test.n && !o->test_text)
        return nnr_trainer_usage_error(o->cmd, "--patience watches the validation loss: give "
                                               "--val-split F or --test NAME=FILE");
    if (!isnan(o->diverge) && o->diverge != 0 && !(o->diverge > 1))
        return nnr_trainer_usage_error(o->cmd, "--diverge-factor %g: give a factor above 1, or "
                                               "0 to turn the divergence check off", o->diverge);
    return 0;
}

/* The run's settings: from the command line and the model's defaults, or, when resuming,
 * from the checkpoint unless the command line overrides them. */
static void run_settings(const nnr_model_info *info, const options *o, nnr_checkpoint *ck,
                         int resumed, int64_t *epochs) {
    if (!resumed) {
        ck->seed = o->seed.set ? o->seed.v : info->train.seed;
        ck->lr = isnan(o->lr) ? info->train.lr : o->lr;
        ck->epoch = ck->batch = 0;
        ck->loss_sum = 0;
        ck->best_loss = NAN;
        ck->best_epoch = 0;
    } else {
        if (o->seed.set) ck->seed = o->seed.v;
        if (!isnan(o->lr)) ck->lr = o->lr;
        if (o->epochs < 0) *epochs = ck->epochs;
    }
    ck->epochs = *epochs;
}

/* The statistics of --standardize, from the training set, into s->ck. */
static int standardize_stats(const nnr_model_info *info, session *s) {
    int64_t nf = nnr_data_features(info);
    free(s->ck.mean);   /* a loaded file's statistics are replaced; its CSV names are kept */
    free(s->ck.std);
    s->ck.mean = s->ck.std = NULL;
    s->ck.nstd = 0;
    if (!(s->ck.mean = malloc((size_t)(nf ? nf : 1) * sizeof(double))) ||
        !(s->ck.std = malloc((size_t)(nf ? nf : 1) * sizeof(double))))
        return oom();
    nnr_data_stats(info, &s->data, s->ck.mean, s->ck.std);
    s->ck.nstd = nf;
    return 0;
}

/* A resumed run must see the data the checkpoint was written with, and the checkpoint's
 * position must be one a run can reach: a batch within the epoch, a step count that is
 * the batches of the epochs done plus those of the partial one. */
static int check_resume(const nnr_model_info *info, const options *o, const session *s) {
    const nnr_checkpoint *ck = &s->ck;
    int64_t per = batches_in(info, s->data.n);
    if (ck->examples != s->data.n) {
        nnr_set_error("%s: written for %lld training examples, --train gives %lld (resume "
                      "with the same data and --val-split)", o->resume,
                      (long long)ck->examples, (long long)s->data.n);
        return -1;
    }
    if (ck->batch >= per) {
        nnr_set_error("%s: checkpoint metadata 'batch' is %lld, past the end of the epoch (%lld "
                      "examples in batches of %d make %lld batches)", o->resume,
                      (long long)ck->batch, (long long)s->data.n, info->batch, (long long)per);
        return -1;
    }
    /* -1 when epoch is too large for any step count */
    int64_t want = ck->epoch <= (INT64_MAX - ck->batch) / per ? ck->epoch * per + ck->batch : -1;
    if (ck->step != want) {
        nnr_set_error("%s: checkpoint metadata 'step' is %lld, but epoch %lld and batch %lld "
                      "of %lld batches an epoch make step %lld", o->resume, (long long)ck->step,
                      (long long)ck->epoch, (long long)ck->batch, (long long)per, (long long)want);
        return -1;
    }
    if (ck->best_epoch > ck->epoch) {
        nnr_set_error("%s: checkpoint metadata 'best_epoch' is %lld, after its epoch %lld",
                      o->resume, (long long)ck->best_epoch, (long long)ck->epoch);
        return -1;
    }
    if (ck->batch == 0 && ck->loss_sum != 0) {
        nnr_set_error("%s: checkpoint metadata 'loss_sum' is %g at the start of an epoch (batch "
                      "0), where it is 0", o->resume, ck->loss_sum);
        return -1;
    }
    return 0;
}

/* Early stopping: records a better monitored loss; returns 1 when it improved. */
static int improved(nnr_checkpoint *ck, double loss, int e) {
    if (!isnan(ck->best_loss) && !(loss < ck->best_loss)) return 0;
    ck->best_loss = loss;
    ck->best_epoch = e;
    return 1;
}

static int patience_over(const options *o, const nnr_checkpoint *ck) {
    return o->patience > 0 && ck->best_epoch > 0 && ck->epoch - ck->best_epoch >= o->patience;
}

/* What the epochs of a run share besides the session, set up by nnr_cmd_train. */
typedef struct run {
    int     epochs, has_val, has_test;
    char    optimizer[512];         /* the banner's and the log's description */
    int64_t saved_epoch;            /* --patience: the epoch this run last wrote --save at */
    scores  best_test;              /* --patience: the test scores of that epoch's model */
    int64_t best_test_epoch;        /* the epoch best_test is of; 0: none in this run */
} run;

/* Everything after epoch e's steps: evaluation, the printed line, the log row, the best
 * checkpoint (--patience), the end-of-epoch checkpoint. */
static int end_epoch(const nnr_model_info *info, session *s, const options *o, run *r, int e,
                     double train_loss, double secs, double lr, scores *val, scores *test) {
    nnr_checkpoint *ck = &s->ck;
    int has_val = r->has_val, has_test = r->has_test;
    if (nnr_model_check_finite(info, s->m, 1))
        return state_failed(info, s, e, o->checkpoint ? o->checkpoint : o->save);
    ck->epoch = e;
    ck->batch = 0;
    ck->loss_sum = 0;
    if (has_val) *val = nnr_par_evaluate(info, s->m, &s->val, &s->ev);
    if (has_test) *test = nnr_par_evaluate(info, s->m, &s->test, &s->ev);
    print_epoch(e, r->epochs, train_loss, has_val ? val : NULL, has_test ? test : NULL, secs);
    if (s->file && log_row(s->file, o->log, e, train_loss, has_val ? val : NULL, test, secs, lr,
                           r->optimizer))
        return -1;
    if ((has_val && isnan(val->loss)) || (has_test && isnan(test->loss))) {
        char k[1024];
        nnr_set_error("the %s loss is nan after epoch %d although the parameters are finite "
                      "(a loss that is not finite on some example); training stopped without "
                      "saving%s", has_val && isnan(val->loss) ? "validation" : "test", e,
                      kept(k, sizeof k, o->checkpoint ? o->checkpoint : o->save));
        return -1;
    }
    if (o->patience > 0 && improved(ck, has_val ? val->loss : test->loss, e)) {
        r->best_test = *test;
        r->best_test_epoch = e;
        if (o->save) {
            if (nnr_checkpoint_save(info, s->m, o->save, ck)) return -1;
            r->saved_epoch = e;
        }
    }
    if (o->checkpoint && nnr_checkpoint_save(info, s->m, o->checkpoint, ck)) return -1;
    return 0;
}

/* ---- what the run says: the banner and the closing lines ------------------------------ */

/* Each optimizer's settings besides lr, as the train block names them (docs/language.md). */
static const struct { const char *name, *keys[3]; } optimizers[] = {
    [NNR_OPT_SGD] = {"sgd", {NULL}},
    [NNR_OPT_MOMENTUM] = {"momentum", {"mu"}},
    [NNR_OPT_NESTEROV] = {"nesterov", {"mu"}},
    [NNR_OPT_ADAGRAD] = {"adagrad", {"eps"}},
    [NNR_OPT_RMSPROP] = {"rmsprop", {"rho", "eps"}},
    [NNR_OPT_ADADELTA] = {"adadelta", {"rho", "eps"}},
    [NNR_OPT_ADAM] = {"adam", {"beta1", "beta2", "eps"}},
    [NNR_OPT_ADAMAX] = {"adamax", {"beta1", "beta2", "eps"}},
    [NNR_OPT_NADAM] = {"nadam", {"beta1", "beta2", "eps"}},
    [NNR_OPT_ADAMW] = {"adamw", {"beta1", "beta2", "eps"}},
};

static double setting(const nnr_train_config *t, const char *key) {
    return !strcmp(key, "mu") ? t->mu : !strcmp(key, "rho") ? t->rho : !strcmp(key, "eps") ? t->eps
           : !strcmp(key, "beta1") ? t->beta1 : t->beta2;
}

/* "adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08), schedule constant, weight_decay 0,
 * clip_value off, clip_norm off": everything the update does, lr being this run's base
 * rate (--lr, or the checkpoint's when resuming, else the train block's). */
static void describe_optimizer(char *buf, size_t cap, const nnr_train_config *t, double lr) {
    size_t n = 0;
#define PUT(...) (n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__))
    PUT("%s(lr=%g", optimizers[t->opt].name, lr);
    for (int i = 0; i < 3 && optimizers[t->opt].keys[i]; i++)
        PUT(", %s=%g", optimizers[t->opt].keys[i], setting(t, optimizers[t->opt].keys[i]));
    if (t->opt == NNR_OPT_ADAMW) PUT(", weight_decay=%g", t->weight_decay);
    PUT("), schedule ");
    switch (t->sched) {
    case NNR_SCHED_CONSTANT: PUT("constant"); break;
    case NNR_SCHED_STEP: PUT("step(every=%g, gamma=%g)", t->sched_a, t->sched_b); break;
    case NNR_SCHED_EXPONENTIAL: PUT("exponential(gamma=%g)", t->sched_a); break;
    case NNR_SCHED_POLYNOMIAL:
        PUT("polynomial(alpha=%g, beta=%g, gamma=%g)", t->sched_a, t->sched_b, t->sched_c);
        break;
    case NNR_SCHED_COSINE: PUT("cosine(t_max=%g)", t->sched_a); break;
    case NNR_SCHED_WARMUP_COSINE: PUT("warmup_cosine(warmup=%g, t_max=%g)", t->sched_a, t->sched_b); break;
    }
    if (t->sched_every == NNR_SCHED_EVERY_STEP) PUT(" every step");
    /* adamw's decay is its own (above); no L2 term is added to the gradients */
    PUT(", weight_decay %g", t->opt == NNR_OPT_ADAMW ? 0.0 : t->weight_decay);
    if (t->clip_value > 0) PUT(", clip_value %g", t->clip_value);
    else PUT(", clip_value off");
    if (t->clip_norm > 0) PUT(", clip_norm %g", t->clip_norm);
    else PUT(", clip_norm off");
#undef PUT
}

/* What a run is about to do, as Keras prints it: the model's table, then the data and
 * the whole optimizer, so a log says what produced it. */
static void announce(const nnr_model_info *info, const session *s, const options *o,
                     const run *r) {
    nnr_summary_print(info, stdout);
    printf("\ntraining on %lld examples", (long long)s->data.n);
    if (s->val.n) printf(", validating on %lld", (long long)s->val.n);
    if (s->test.n) printf(", testing on %lld", (long long)s->test.n);
    printf("; batch %d, %d epoch%s", info->batch, r->epochs, r->epochs == 1 ? "" : "s");
    const nnr_comm *c = nnr_comm_world;
    if (c)
        printf("; %d rank%s, each taking %d%s of every batch%s", c->size, c->size == 1 ? "" : "s",
               info->batch / c->size, info->batch % c->size ? " or one more" : "",
               o->sync_batchnorm ? ", batch statistics over all ranks" : "");
    if (o->resume)
        printf(", resumed from %s after %lld epoch%s and %lld batch%s", o->resume,
               (long long)s->ck.epoch, s->ck.epoch == 1 ? "" : "s", (long long)s->ck.batch,
               s->ck.batch == 1 ? "" : "es");
    printf("\noptimizer %s\n\n", r->optimizer);
    fflush(stdout);
}

/* The closing test line.  Under --patience it is the best epoch's model's, the one --save
 * holds (measured when that epoch ended); when that epoch was before this run resumed,
 * the last model's, saying so. */
static void report_test(const options *o, const nnr_checkpoint *ck, const run *r,
                        const scores *last) {
    const scores *sc = last;
    char note[1200] = "";
    if (o->patience > 0 && ck->best_epoch > 0 && r->best_test_epoch == ck->best_epoch) {
        sc = &r->best_test;
        snprintf(note, sizeof note, " (the best epoch's model: epoch %lld%s%s)",
                 (long long)ck->best_epoch, o->save ? ", saved in " : "", o->save ? o->save : "");
    } else if (o->patience > 0 && ck->best_epoch > 0 && ck->best_epoch != ck->epoch) {
        snprintf(note, sizeof note, " (the last epoch's model: the best epoch, %lld, was before "
                 "this run resumed)", (long long)ck->best_epoch);
    }
    if (isnan(sc->loss)) return;
    if (isnan(sc->accuracy)) printf("test loss: %.6f%s\n", sc->loss, note);
    else printf("test accuracy: %.4f%s\n", sc->accuracy, note);
}

/* After a stop signal: the model at its last step goes to --checkpoint and (unless
 * --patience has a best epoch there) to --save, and the run says where it stopped and how
 * to go on.  Returns 130 (128 + SIGINT, as a shell reports a program Ctrl-C ended), or -1
 * when the state is not finite or a write failed. */
static int interrupted(const nnr_model_info *info, session *s, const options *o, const run *r,
                       int64_t first_step) {
    const char *sig = stop_signal == SIGTERM ? "SIGTERM" : stop_signal == SIGINT ? "SIGINT"
                      : "a signal to another rank";
    nnr_checkpoint *ck = &s->ck;
    int64_t step = *info->step(s->m);
    if (step == first_step) {
        fprintf(stderr, "%s: %s before the first step; nothing was written\n", nnr_trainer_prog, sig);
        return 130;
    }
    if (nnr_model_check_finite(info, s->m, 0))
        return state_failed(info, s, (int)ck->epoch + (ck->batch > 0), o->checkpoint ? o->checkpoint : o->save);
    if (o->checkpoint && nnr_checkpoint_save(info, s->m, o->checkpoint, ck)) return -1;
    int best_kept = o->patience > 0 && ck->best_epoch > 0;
    if (o->save && !best_kept && nnr_checkpoint_save(info, s->m, o->save, ck)) return -1;
    fprintf(stderr, "%s: %s: stopped after step %lld (", nnr_trainer_prog, sig, (long long)step);
    if (ck->batch > 0)
        fprintf(stderr, "batch %lld of epoch %lld)", (long long)ck->batch, (long long)ck->epoch + 1);
    else
        fprintf(stderr, "the end of epoch %lld)", (long long)ck->epoch);
    if (o->checkpoint) fprintf(stderr, "; --checkpoint %s holds it", o->checkpoint);
    if (o->save && !best_kept) fprintf(stderr, "; --save %s holds it", o->save);
    else if (o->save && r->saved_epoch)
        fprintf(stderr, "; --save %s holds the best epoch's model (epoch %lld)", o->save,
                (long long)r->saved_epoch);
    else if (o->save)
        fprintf(stderr, "; --save %s was not written: the best epoch, %lld, was before this "
                "run resumed", o->save, (long long)ck->best_epoch);
    if (o->log) fprintf(stderr, "; --log %s has the epochs completed", o->log);
    fputc('\n', stderr);
    const char *from = o->checkpoint ? o->checkpoint : o->save && !best_kept ? o->save : NULL;
    if (from) {
        fprintf(stderr, "to resume: ");
        nnr_trainer_resume_command(stderr, o, from);
    } else {
        fprintf(stderr, "no checkpoint of this position was written: --checkpoint CKPT makes "
                        "an interrupted run resumable\n");
    }
    return 130;
}

int nnr_cmd_train(const nnr_model_info *info, const options *given) {
    int64_t epochs = given->epochs >= 0 ? given->epochs : info->train.epochs;
    int bad = train_usage(info, given, &epochs);
    if (!bad) bad = nnr_par_usage(info, given);
    if (bad) return bad < 0 ? nnr_trainer_fail() : bad;
    /* with ranks, rank 0 alone writes the log, the checkpoints and the saved model: the
     * others hold the same parameters */
    options rank_opts = *given;
    if (nnr_comm_world && nnr_comm_world->rank > 0)
        rank_opts.log = rank_opts.save = rank_opts.checkpoint = NULL;
    const options *o = &rank_opts;
    run r = {0};
    r.has_val = !isnan(o->val_split) && o->val_split != 0;
    r.has_test = o->test.n > 0 || o->test_text;
    r.best_test = (scores){NAN, NAN};
    int resumed = o->resume != NULL;
    stop_handlers handlers;
    stop_handlers_install(&handlers);

    session s = {0};
    s.ck.best_loss = NAN;
    int rc = 0;
    if (!(s.m = info->create())) rc = nnr_session_no_memory(info);
    else if (resumed) rc = nnr_checkpoint_load(info, s.m, o->resume, &s.ck, 1);
    else if (o->load) rc = nnr_checkpoint_load(info, s.m, o->load, &s.ck, 0);
    else nnr_model_init(info, s.m, o->seed.set ? o->seed.v : info->train.seed);
    if (!rc) {
        run_settings(info, o, &s.ck, resumed, &epochs);
        if (info->set_seed) info->set_seed(s.m, s.ck.seed);   /* dropout's masks */
    }
    r.epochs = (int)epochs;
    describe_optimizer(r.optimizer, sizeof r.optimizer, &info->train, s.ck.lr);
    rc = rc || nnr_session_load_set(info, o, "--train", &o->train, "--text", o->text, &s.ck,
                                    &s.data) ||
         (r.has_val && nnr_data_split(info, &s.data, o->val_split, &s.val)) ||
         (r.has_test && nnr_session_load_set(info, o, "--test", &o->test, "--test-text",
                                             o->test_text, &s.ck, &s.test)) ||
         (resumed && check_resume(info, o, &s)) ||
         nnr_par_check_data(info, o, s.data.n) ||
         (o->standardize && !resumed && standardize_stats(info, &s)) ||
         nnr_session_apply_standardize(info, &s,
                                       o->resume ? o->resume : o->load ? o->load : "--standardize") ||
         train_alloc(info, &s) || log_open(&s, o, r.has_val, resumed);
    s.ck.examples = s.data.n;

    if (!rc && o->check_numerics) {
        if (info->set_check) info->set_check(s.m, 1);
        else rc = (nnr_set_error("this model cannot check its tensors (--check-numerics)"), -1);
    }
    if (!rc) announce(info, &s, o, &r);
    saver sv = {o->checkpoint, o->checkpoint_every > 0 ? o->checkpoint_every : 0,
                {isnan(o->diverge) ? NNR_DIVERGE_FACTOR : o->diverge, 0, 0, 0, 0}, {0}, o->check_numerics};
    if (!rc) rc = snapshot_alloc(info, &sv);
    scores val = {NAN, NAN}, test = {NAN, NAN};
    int64_t first_step = s.m ? *info->step(s.m) : 0;
    double step_secs = 0;
    int stopped = !rc && patience_over(o, &s.ck), status = EPOCH_DONE;
    for (int e = (int)s.ck.epoch + 1; !rc && !stopped && !stopping() && e <= epochs; e++) {
        /* per step, the epoch's row logs the rate of its first step (also when resumed within it) */
        int per_step = info->train.sched_every == NNR_SCHED_EVERY_STEP;
        int64_t t = per_step ? (int64_t)(e - 1) * batches_in(info, s.data.n) : e - 1;
        double lr = nnr_schedule_lr(&info->train, s.ck.lr, t);
        info->set_lr(s.m, lr);
        epoch_order(s.order, s.data.n, s.ck.seed, e);
        double secs = 0, train_loss = NAN;
        status = train_epoch(info, &s, o, &sv, e, (int)epochs, &train_loss, &secs);
        step_secs += secs;
        rc = status == EPOCH_FAILED ? -1
             : status == EPOCH_DONE ? end_epoch(info, &s, o, &r, e, train_loss, secs, lr, &val, &test)
                                    : 0;
        stopped = !rc && patience_over(o, &s.ck);
    }
    /* a signal that came after the last epoch's steps lets the run finish as usual */
    int signalled = !rc && stopping() && !stopped && (status == EPOCH_STOPPED || s.ck.epoch < epochs);
    if (!rc && stopped)
        printf("early stopping: %s_loss has not improved for %lld epoch%s; best epoch %lld "
               "(%s_loss %.4f)%s%s\n", r.has_val ? "val" : "test", (long long)o->patience,
               o->patience == 1 ? "" : "s",
               (long long)s.ck.best_epoch, r.has_val ? "val" : "test", s.ck.best_loss,
               o->save ? ", its model is in " : "", o->save ? o->save : "");
    if (!rc && !signalled && r.has_test) report_test(o, &s.ck, &r, &test);
    if (!rc && nnr_comm_world && step_secs > 0)   /* what data parallelism cost (bench/mpi.sh) */
        printf("ranks: summing the gradients over %d ranks took %.3f s of the epochs' %.3f s (%.1f%%)\n",
               nnr_comm_world->size, nnr_par_comm_seconds(), step_secs,
               100 * nnr_par_comm_seconds() / step_secs);
    if (!rc && s.file) {
        int bad_close = fclose(s.file);
        s.file = NULL;
        if (bad_close) {
            nnr_set_error("%s: write failed: %s", o->log, strerror(errno));
            rc = -1;
        }
    }
    if (!rc && signalled) rc = interrupted(info, &s, o, &r, first_step);
    /* with --patience, --save already holds the best epoch's checkpoint */
    else if (!rc && o->save && o->patience < 0) rc = nnr_checkpoint_save(info, s.m, o->save, &s.ck);
    nnr_session_free(info, &s);
    free(sv.snap.params);
    free(sv.snap.state);
    stop_handlers_restore(&handlers);
    return rc == 130 ? 130 : rc ? nnr_trainer_fail() : 0;
}
