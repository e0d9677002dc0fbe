/* test_math.c — tests emit_math.c: writes a C file with every function in float and double (prefix
 * "t"), compiles it warning-free with gcc and clang (-std=c99 -Wall -Wextra -Werror -pedantic) and
 * for Cortex-M4F with arm-none-eabi-gcc, checks with arm-none-eabi-nm that the float object
 * references nothing (the double one: only libgcc's soft-float helpers), then compiles this same
 * file as the checker (-DTM_CHECKER, including the generated file) and runs it: max ulp error per
 * function against glibc's long double libm over random bit patterns and dense sweeps, and C's
 * special values.  Exits nonzero when a bound is exceeded or a step fails.
 *
 *   cc -O2 -I codegen -o test_math tests/embedded/test_math.c && ./test_math [workdir]   (default /tmp/tm_math;
 *   tests/embedded.sh runs it) */
#ifndef TM_CHECKER
#define EMIT_MATH_STANDALONE
#include "emit_math.c"
#include <stdlib.h>

static int run(const char *cmd) {
    printf("$ %s\n", cmd);
    fflush(stdout);
    int rc = system(cmd);
    if (rc) printf("  -> FAILED (%d)\n", rc);
    return rc != 0;
}

/* a generated file with `used` of one precision or both */
static int write_gen(const char *path, int which, unsigned used) {
    FILE *o = fopen(path, "w");
    if (!o) { perror(path); return 1; }
    fputs("#include <math.h>\n#include <stdint.h>\n#include <string.h>\n", o);
    if (which & 1) emit_math(o, "t", 0, used);
    if (which & 2) emit_math(o, "t", 1, used);
    /* something must use the static functions, or every one is unused: one exported table */
    fputs("\ntypedef void (*tm_fp)(void);\ntm_fp tm_keep[] = {\n", o);
    for (int i = 0; i < N_FNS; i++) {
        if (!FNS[i].libm || !(used & FNS[i].bit)) continue;
        if (which & 1) fprintf(o, "    (tm_fp)t_%sf,\n", FNS[i].libm);
        if (which & 2) fprintf(o, "    (tm_fp)t_%s,\n", FNS[i].libm);
    }
    fputs("    0\n};\n", o);
    return fclose(o) != 0;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/tmp/tm_math";
    const char *warn = "-std=c99 -Wall -Wextra -Werror -pedantic";
    const char *arm = "arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16";
    char cmd[2048], path[512];
    int fail = 0;
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (run(cmd)) return 1;

    /* every function alone, so that a missing dependency or an unused helper shows */
    for (int i = 0; i < N_FNS; i++) {
        if (!FNS[i].libm) continue;
        snprintf(path, sizeof path, "%s/one_%s.c", dir, FNS[i].libm);
        if (write_gen(path, 3, FNS[i].bit)) return 1;
        snprintf(cmd, sizeof cmd, "gcc %s -O2 -c %s -o %s/one.o && clang %s -O2 -c %s -o %s/one.o", warn, path, dir, warn,
                 path, dir);
        fail |= run(cmd);
    }
    /* all of them: host compilers, then the MCU, float and double apart */
    snprintf(path, sizeof path, "%s/tm_gen.c", dir);
    if (write_gen(path, 3, 0x7fff)) return 1;
    snprintf(cmd, sizeof cmd, "gcc %s -O2 -c %s -o %s/all_gcc.o && clang %s -O2 -c %s -o %s/all_clang.o", warn, path, dir,
             warn, path, dir);
    fail |= run(cmd);
    for (int p = 0; p < 2; p++) {
        for (int errno_flag = 0; errno_flag < 2; errno_flag++) {
            snprintf(path, sizeof path, "%s/tm_arm%d.c", dir, p);
            if (write_gen(path, 1 << p, 0x7fff)) return 1;
            snprintf(cmd, sizeof cmd, "%s %s -O2 %s -c %s -o %s/arm%d.o && arm-none-eabi-nm -u %s/arm%d.o > %s/arm%d.undef",
                     arm, warn, errno_flag ? "-fno-math-errno" : "", path, dir, p, dir, p, dir, p);
            fail |= run(cmd);
            /* float: no undefined symbol except memcpy/memset; double: also libgcc's __aeabi_* soft floats */
            snprintf(cmd, sizeof cmd, "cat %s/arm%d.undef; ! grep -v -E ' (memcpy|memset%s)$' %s/arm%d.undef", dir, p,
                     p ? "|__aeabi_[a-z0-9]+" : "", dir, p);
            fail |= run(cmd);
        }
    }
    snprintf(cmd, sizeof cmd, "%s -O2 -c %s/tm_arm0.c -o %s/arm0.o && arm-none-eabi-size %s/arm0.o", arm, dir, dir, dir);
    fail |= run(cmd);

    /* the checker: this file again, including the generated one */
    snprintf(path, sizeof path, "%s/tm_gen.c", dir);
    snprintf(cmd, sizeof cmd, "cc -O2 -std=gnu99 -DTM_CHECKER -DTM_GEN='\"%s\"' %s -o %s/checker -lm && %s/checker",
             path, __FILE__, dir, dir);
    fail |= run(cmd);
    printf(fail ? "test_math: FAILED\n" : "test_math: all passed\n");
    return fail;
}

#else /* TM_CHECKER ------------------------------------------------------------------------------ */
#include TM_GEN
#include <stdio.h>
#include <stdlib.h>
#include <float.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) {   /* xorshift64* */
    rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}
static float f_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static double d_bits(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
static double uni(double lo, double hi) { return lo + (hi - lo) * (double)(next() >> 11) * 0x1p-53; }

/* |got - ref| in ulps of the precision at ref (2^-149 / 2^-1074 below the normal range); exact
 * infinities and NaNs agree; p = 24 or 53. */
static double ulps(long double got, long double ref, int p) {
    int emin = p == 24 ? -126 : -1022;
    long double maxv = p == 24 ? FLT_MAX : DBL_MAX;
    if (isnan(ref) || isnan(got)) return isnan(ref) && isnan(got) ? 0 : 1e30;
    if (fabsl(ref) > maxv) {   /* rounds to inf, or to MAX when only just above */
        long double r = p == 24 ? (long double)(float)ref : (long double)(double)ref;
        if (got == r) return 0;
        if (isinf(got)) return isinf(r) ? 0 : 1;
        ref = ref > 0 ? maxv : -maxv;
    }
    if (isinf(got)) return 1e30;
    int e = ref == 0 ? emin : ilogbl(ref);
    if (e < emin) e = emin;
    return (double)(fabsl(got - ref) / ldexpl(1, e - (p - 1)));
}

typedef struct {
    const char *name;
    float (*f)(float);
    double (*d)(double);
    long double (*ref)(long double);
    double lo, hi;        /* the dense range */
    double lim32, lim64;  /* accuracy claimed for |x| <= lim (0: everywhere) */
} fn1;

static long double r_exp(long double x) { return expl(x); }
static long double r_log(long double x) { return logl(x); }
static long double r_expm1(long double x) { return expm1l(x); }
static long double r_log1p(long double x) { return log1pl(x); }
static long double r_tanh(long double x) { return tanhl(x); }
static long double r_sin(long double x) { return sinl(x); }
static long double r_cos(long double x) { return cosl(x); }
static long double r_tan(long double x) { return tanl(x); }
static long double r_erf(long double x) { return erfl(x); }
static long double r_sqrt(long double x) { return sqrtl(x); }

static const fn1 FN1[] = {
    {"exp", t_expf, t_exp, r_exp, -110, 90, 0, 0},
    {"log", t_logf, t_log, r_log, 0, 4, 0, 0},
    {"expm1", t_expm1f, t_expm1, r_expm1, -20, 20, 0, 0},
    {"log1p", t_log1pf, t_log1p, r_log1p, -1, 4, 0, 0},
    {"tanh", t_tanhf, t_tanh, r_tanh, -10, 10, 0, 0},
    {"erf", t_erff, t_erf, r_erf, -6, 6, 0, 0},
    {"sqrt", t_sqrtf, t_sqrt, r_sqrt, 0, 4, 0, 0},
    {"sin", t_sinf, t_sin, r_sin, -10, 10, 12800, 1.6e6},
    {"cos", t_cosf, t_cos, r_cos, -10, 10, 12800, 1.6e6},
    {"tan", t_tanf, t_tan, r_tan, -10, 10, 12800, 1.6e6},
};
#define BOUND 4.0

static double worst32, worst64;
static double wx32, wx64;

static void one32(const fn1 *t, float x) {
    if (t->lim32 && !(fabsf(x) <= t->lim32)) {   /* beyond: only bounded, for sin and cos */
        float y = t->f(x);
        if (t->ref != r_tan && !(y >= -1 && y <= 1) && !isnan(x) && !isinf(x)) { worst32 = 1e30; wx32 = x; }
        return;
    }
    double u = ulps(t->f(x), t->ref(x), 24);
    if (u > worst32) { worst32 = u; wx32 = x; }
}
static void one64(const fn1 *t, double x) {
    if (t->lim64 && !(fabs(x) <= t->lim64)) {
        double y = t->d(x);
        if (t->ref != r_tan && !(y >= -1 && y <= 1) && !isnan(x) && !isinf(x)) { worst64 = 1e30; wx64 = x; }
        return;
    }
    double u = ulps(t->d(x), t->ref(x), 53);
    if (u > worst64) { worst64 = u; wx64 = x; }
}

/* floats / doubles nearest n pi/2 and their neighbours: where the reduction cancels most */
static void trig_hard(const fn1 *t) {
    for (long n = 1; n < 8192; n++) {
        float x = (float)(n * 1.57079632679489661923132169163975144L);
        for (int k = -2; k <= 2; k++) {
            uint32_t u; memcpy(&u, &x, 4); u += (uint32_t)k;
            one32(t, f_bits(u)), one32(t, -f_bits(u));
        }
    }
    for (long n = 1; n < (1L << 20); n++) {
        double x = (double)(n * 1.57079632679489661923132169163975144L);
        for (int k = -1; k <= 1; k++) {
            uint64_t u; memcpy(&u, &x, 8); u += (uint64_t)(int64_t)k;
            one64(t, d_bits(u));
        }
    }
}

static int test1(const fn1 *t, int nrand) {
    worst32 = worst64 = 0;
    for (int i = 0; i < nrand; i++) {
        one32(t, f_bits((uint32_t)next()));
        one64(t, d_bits(next()));
        one32(t, (float)uni(t->lo, t->hi));
        one64(t, uni(t->lo, t->hi));
        if (t->lim32) {
            one32(t, (float)uni(-t->lim32, t->lim32));
            one64(t, uni(-t->lim64, t->lim64));
        }
    }
    /* consecutive floats from lo and around 0 */
    {
        float x = (float)t->lo;
        for (int i = 0; i < 2000000; i++, x = nextafterf(x, INFINITY)) one32(t, x);
        for (int i = 0; i < 200000; i++) {
            one32(t, f_bits((uint32_t)i * 997u)), one32(t, -f_bits((uint32_t)i * 997u));
            one64(t, d_bits((uint64_t)i * 977777777777ull)), one64(t, -d_bits((uint64_t)i * 977777777777ull));
        }
    }
    if (t->lim32) trig_hard(t);
    int bad = worst32 > BOUND || worst64 > BOUND;
    printf("%-6s  f32 max %7.3f ulp (x = %.9g)   f64 max %7.3f ulp (x = %.17g)%s\n", t->name, worst32, wx32, worst64,
           wx64, bad ? "   <-- over bound" : "");
    return bad;
}

/* pow: positive bases over the range where the result is finite, negative bases with integers */
static int test_pow(int n) {
    double w32 = 0, w64 = 0, a32 = 0, b32 = 0, a64 = 0, b64 = 0;
    for (int i = 0; i < n; i++) {
        for (int kind = 0; kind < 5; kind++) {
            double x, y;
            switch (kind) {
            case 0: x = uni(0, 10); y = uni(-30, 30); break;
            case 1: x = exp(uni(-80, 80)); y = uni(-1, 1) * 80 / fabs(log(x) + 1e-300); break;  /* |y log x| up to 80 */
            case 2: x = 1 + uni(-1e-3, 1e-3); y = uni(-1, 1) * 80 / fabs(log(x) + 1e-300); break;
            case 3: x = -uni(0, 20); y = floor(uni(-40, 40)); break;
            default: x = exp(uni(-700, 700)); y = uni(-1, 1) * 700 / fabs(log(x) + 1e-300); break;
            }
            float xf = (float)x, yf = (float)y;
            if (kind == 3) yf = (float)y;
            if (kind != 4) {
                double u = ulps(t_powf(xf, yf), powl(xf, yf), 24);
                if (u > w32) { w32 = u; a32 = xf; b32 = yf; }
            }
            double u = ulps(t_pow(x, y), powl(x, y), 53);
            if (u > w64) { w64 = u; a64 = x; b64 = y; }
        }
    }
    int bad = w32 > BOUND || w64 > BOUND;
    printf("%-6s  f32 max %7.3f ulp (%.9g^%.9g)   f64 max %7.3f ulp (%.17g^%.17g)%s\n", "pow", w32, a32, b32, w64, a64,
           b64, bad ? "   <-- over bound" : "");
    return bad;
}

/* special values: the result and its sign must match exactly (NaN: any NaN) */
static int nbad;
static void same(const char *what, double got, double want) {
    int ok = isnan(want) ? isnan(got) : got == want && signbit(got) == signbit(want);
    if (!ok) { printf("special: %s = %g, want %g\n", what, got, want); nbad++; }
}
#define S1(fn, x, want) (same(#fn "f(" #x ")", t_##fn##f(x), want), same(#fn "(" #x ")", t_##fn(x), want))
#define S2(fn, x, y, want) (same(#fn "f(" #x ", " #y ")", t_##fn##f(x, y), want), same(#fn "(" #x ", " #y ")", t_##fn(x, y), want))

static int specials(void) {
    const double inf = INFINITY, nan = NAN;
    S1(exp, 1000, inf); S1(exp, -1000, 0); S1(exp, inf, inf); S1(exp, -inf, 0); S1(exp, nan, nan); S1(exp, 0, 1); S1(exp, -0.0, 1);
    S1(log, 0, -inf); S1(log, -0.0, -inf); S1(log, -1, nan); S1(log, inf, inf); S1(log, -inf, nan); S1(log, nan, nan); S1(log, 1, 0);
    S1(expm1, 0, 0); S1(expm1, -0.0, -0.0); S1(expm1, inf, inf); S1(expm1, -inf, -1); S1(expm1, 1000, inf); S1(expm1, nan, nan);
    S1(log1p, 0, 0); S1(log1p, -0.0, -0.0); S1(log1p, -1, -inf); S1(log1p, -2, nan); S1(log1p, inf, inf); S1(log1p, nan, nan);
    S1(tanh, inf, 1); S1(tanh, -inf, -1); S1(tanh, 0, 0); S1(tanh, -0.0, -0.0); S1(tanh, nan, nan); S1(tanh, 50, 1);
    S1(sin, 0, 0); S1(sin, -0.0, -0.0); S1(sin, inf, nan); S1(sin, nan, nan);
    S1(cos, 0, 1); S1(cos, inf, nan); S1(cos, -inf, nan); S1(cos, nan, nan);
    S1(tan, 0, 0); S1(tan, -0.0, -0.0); S1(tan, inf, nan); S1(tan, nan, nan);
    S1(erf, 0, 0); S1(erf, -0.0, -0.0); S1(erf, inf, 1); S1(erf, -inf, -1); S1(erf, nan, nan); S1(erf, 10, 1);
    S1(sqrt, 0, 0); S1(sqrt, -0.0, -0.0); S1(sqrt, -1, nan); S1(sqrt, inf, inf); S1(sqrt, -inf, nan); S1(sqrt, nan, nan);
    S1(sqrt, 4, 2); S1(sqrt, 0x1p-148, 0x1p-74); S1(sqrt, 0x1p126, 0x1p63);
    same("sqrtf(FLT_MAX)", t_sqrtf(FLT_MAX), sqrtf(FLT_MAX)); same("sqrt(DBL_MAX)", t_sqrt(DBL_MAX), sqrt(DBL_MAX));
    S1(fabs, -0.0, 0); S1(fabs, -inf, inf); S1(fabs, -3, 3); S1(fabs, nan, nan);
    S2(fmax, nan, 1, 1); S2(fmax, 1, nan, 1); S2(fmax, 1, 2, 2); S2(fmax, nan, nan, nan); S2(fmax, -inf, -5, -5);
    S2(fmin, nan, 1, 1); S2(fmin, 1, nan, 1); S2(fmin, 1, 2, 1); S2(fmin, nan, nan, nan); S2(fmin, inf, 5, 5);
    same("fmaf(2,3,1)", t_fmaf(2, 3, 1), 7); same("fma(2,3,1)", t_fma(2, 3, 1), 7);
    /* pow, C99 F.9.4.4 */
    S2(pow, -8, 1.0 / 3, nan); S2(pow, -2, 3, -8); S2(pow, -2, 2, 4); S2(pow, -2, -1, -0.5); S2(pow, 2, 10, 1024);
    S2(pow, nan, 0, 1); S2(pow, 1, nan, 1); S2(pow, nan, 1, nan); S2(pow, 2, nan, nan);
    S2(pow, 0.0, -3, inf); S2(pow, -0.0, -3, -inf); S2(pow, -0.0, -2, inf); S2(pow, 0.0, -0.5, inf);
    S2(pow, -0.0, 3, -0.0); S2(pow, -0.0, 2, 0); S2(pow, 0.0, 0.5, 0);
    S2(pow, -1, inf, 1); S2(pow, -1, -inf, 1); S2(pow, 0.5, inf, 0); S2(pow, 0.5, -inf, inf); S2(pow, 2, inf, inf);
    S2(pow, 2, -inf, 0);
    S2(pow, -inf, -3, -0.0); S2(pow, -inf, -2, 0); S2(pow, -inf, -0.5, 0); S2(pow, -inf, 3, -inf); S2(pow, -inf, 2, inf);
    S2(pow, -inf, 0.5, inf); S2(pow, inf, -1, 0); S2(pow, inf, 2, inf);
    same("powf(10, 100)", t_powf(10, 100), inf); same("powf(10, -100)", t_powf(10, -100), 0);
    same("powf(-10, 101)", t_powf(-10, 101), -inf); same("powf(-10, -101)", t_powf(-10, -101), -0.0);
    same("pow(10, 400)", t_pow(10, 400), inf); same("pow(10, -400)", t_pow(10, -400), 0);
    same("pow(-10, 401)", t_pow(-10, 401), -inf); same("pow(-10, -401)", t_pow(-10, -401), -0.0);
    same("powf(10, 40)", t_powf(10, 40), inf); same("powf(2, -150)", t_powf(2, -150), 0);
    same("powf(2, -149)", t_powf(2, -149), 0x1p-149); same("pow(2, -1074)", t_pow(2, -1074), 0x1p-1074);
    same("powf(2, 127)", t_powf(2, 127), 0x1p127); same("pow(2, 1023)", t_pow(2, 1023), 0x1p1023);
    same("expf(-103.9)", t_expf(-103.9f) > 0, 1);
    printf("special values: %s (%d wrong)\n", nbad ? "FAILED" : "all right", nbad);
    return nbad != 0;
}

int main(void) {
    int bad = 0;
    printf("max error in ulps (bound %.0f); sin/cos/tan for |x| <= 12800 (f32) / 1.6e6 (f64)\n", BOUND);
    for (size_t i = 0; i < sizeof FN1 / sizeof FN1[0]; i++) bad |= test1(&FN1[i], 1000000);
    bad |= test_pow(1000000);
    bad |= specials();
    return bad;
}
#endif
