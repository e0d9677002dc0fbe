/* schedule.c — learning-rate schedules (docs/language.md, "Schedules"), one value per epoch
 * or per optimizer step.
 *
 * t counts epochs from 0, as a PyTorch scheduler stepped once per epoch, or optimizer steps
 * from 0 with schedule_every = step (a scheduler stepped after every optimizer.step()): step
 * is StepLR, exponential is ExponentialLR, cosine is CosineAnnealingLR with eta_min = 0 in
 * its closed form, warmup_cosine the LambdaLR factor of warmup_cosine_factor below.  polynomial is the lectures' alpha / (beta + t)^gamma and ignores the base
 * rate.  Parameters the compiler has validated are not checked again, except that a
 * zero period leaves the rate constant instead of dividing by zero.
 */
#include "nnr.h"

#include <math.h>

/* LambdaLR's factor: a linear warmup reaching 1 at t = warmup - 1, a half cosine from 1
 * at t = warmup down to 0 at t = t_max, then 0. */
static double warmup_cosine_factor(double t, double warmup, double t_max) {
    if (t < warmup) return (t + 1) / warmup;
    if (t >= t_max) return 0;
    return 0.5 * (1.0 + cos(M_PI * (t - warmup) / (t_max - warmup)));
}

double nnr_schedule_lr(const nnr_train_config *cfg, double base_lr, int64_t step) {
    double t = (double)step;
    switch (cfg->sched) {
    case NNR_SCHED_CONSTANT:
        return base_lr;
    case NNR_SCHED_STEP:
        if (cfg->sched_a <= 0) return base_lr;
        return base_lr * pow(cfg->sched_b, floor(t / cfg->sched_a));
    case NNR_SCHED_EXPONENTIAL:
        return base_lr * pow(cfg->sched_a, t);
    case NNR_SCHED_POLYNOMIAL:
        return cfg->sched_a / pow(cfg->sched_b + t, cfg->sched_c);
    case NNR_SCHED_COSINE:
        if (cfg->sched_a <= 0) return base_lr;
        return base_lr * (1.0 + cos(M_PI * t / cfg->sched_a)) / 2.0;
    case NNR_SCHED_WARMUP_COSINE:
        if (cfg->sched_b <= cfg->sched_a) return base_lr;
        return base_lr * warmup_cosine_factor(t, cfg->sched_a, cfg->sched_b);
    }
    return base_lr;
}
