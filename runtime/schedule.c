/* schedule.c — learning-rate schedules (docs/language.md, "Schedules"), one value per epoch.
 *
 * t counts epochs from 0, as a PyTorch scheduler stepped once per epoch: step is StepLR,
 * exponential is ExponentialLR, cosine is CosineAnnealingLR with eta_min = 0 in its
 * closed form.  polynomial is the lectures' alpha / (beta + t)^gamma and ignores the base
 * rate.  Parameters the compiler has validated are not checked again, except that a
 * zero period leaves the rate constant instead of dividing by zero.
 */
#include "nnr.h"

#include <math.h>

double nnr_schedule_lr(const nnr_train_config *cfg, double base_lr, int epoch) {
    double t = epoch;
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
    }
    return base_lr;
}
