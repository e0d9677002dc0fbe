/* rng.c — the runtime's random numbers: xoshiro256** seeded through splitmix64.
 *
 * Every random choice nnc makes (initial weights, shuffling, dropout masks) comes from
 * here, so a seed fixes a whole training run on any machine.  The generator and the
 * seeding follow Blackman and Vigna's reference code; floating-point draws are built
 * only from integer operations and libm's log/cos/sqrt so they do not depend on the
 * platform's rand().
 */
#include "nnr.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void nnr_rng_seed(nnr_rng *r, uint64_t seed) {
    /* splitmix64 never yields four zero words, the one state xoshiro cannot leave. */
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

uint64_t nnr_rng_next(nnr_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* The top 53 bits are the generator's best and fill a double's mantissa exactly. */
double nnr_rng_uniform(nnr_rng *r) { return (double)(nnr_rng_next(r) >> 11) * 0x1.0p-53; }

/* Box-Muller, one value per call: the partner value is dropped because nnr_rng holds no
 * room to cache it, and a stateless draw keeps streams easy to reason about. */
double nnr_rng_normal(nnr_rng *r) {
    double u1 = 1.0 - nnr_rng_uniform(r);        /* (0, 1]: log(u1) is finite */
    double u2 = nnr_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Rejection of the lowest 2^64 mod n values makes every remainder equally likely.
 * n == 0 has no valid answer; it returns 0. */
uint64_t nnr_rng_below(nnr_rng *r, uint64_t n) {
    if (n == 0) return 0;
    uint64_t threshold = -n % n;
    for (;;) {
        uint64_t x = nnr_rng_next(r);
        if (x >= threshold) return x % n;
    }
}

void nnr_rng_shuffle(nnr_rng *r, int64_t *idx, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)nnr_rng_below(r, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
