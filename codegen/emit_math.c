/* emit_math.c — the generated file's own math functions, for targets without libm
 * (`--math inline`, the embedded target): exp, log, expm1, log1p, tanh, sin, cos, tan, erf,
 * pow, sqrt, fabs, fmax, fmin and fma, in float (PREFIX_expf, ...) or double (PREFIX_exp, ...).
 *
 * Each function is written once, as a template shared by both precisions; emit_math expands it
 * with the precision's type, suffixes, constants and polynomial coefficients.  The polynomials
 * are Chebyshev fits (near-minimax), derived with mpmath by gen_coeffs.py (beside test_math.c),
 * and rounded to the precision.  The float functions use only float
 * arithmetic (Cortex-M4F has no double unit: a double would call the soft-float library) and
 * 32-bit integers; where more precision is needed (pow's log, sqrt's last step) they carry
 * values as hi + lo pairs.  Accuracy, measured against glibc: NOTES.md.
 *
 * The generated text needs <math.h> (NAN, INFINITY), <stdint.h> and <string.h> (memcpy for bit
 * casts) included before it, and calls nothing else.
 *
 * For codegen/emit.h:
 *
 *   #include <stdio.h>
 *   (* The names emit_math_name returns are "PREFIX_expf" etc.; emit_math writes the static
 *    * definitions of the functions in `used` (a bitmask of EMIT_MATH_* below) into o. *)
 *   enum { EMIT_MATH_EXP = 1, EMIT_MATH_LOG = 2, EMIT_MATH_EXPM1 = 4, EMIT_MATH_LOG1P = 8, EMIT_MATH_TANH = 16,
 *          EMIT_MATH_SIN = 32, EMIT_MATH_COS = 64, EMIT_MATH_TAN = 128, EMIT_MATH_ERF = 256, EMIT_MATH_POW = 512,
 *          EMIT_MATH_SQRT = 1024, EMIT_MATH_FABS = 2048, EMIT_MATH_FMAX = 4096, EMIT_MATH_FMIN = 8192, EMIT_MATH_FMA = 16384 };
 *   int  emit_math_bit(const char *libm_name);   (* "exp" -> EMIT_MATH_EXP; 0 if not one of them *)
 *   void emit_math(FILE *o, const char *prefix, int f64, unsigned used);
 *
 * Besides the public functions, the file gets the helpers they need, named PREFIX_k_* (PREFIX_k_scalef,
 * ...): each is written once, before its first user, and only when something uses it. */
#ifndef EMIT_MATH_STANDALONE   /* in nnc; test_math.c includes this file alone */
#include "emit.h"
#else
#include <stdio.h>
enum { EMIT_MATH_EXP = 1, EMIT_MATH_LOG = 2, EMIT_MATH_EXPM1 = 4, EMIT_MATH_LOG1P = 8, EMIT_MATH_TANH = 16,
       EMIT_MATH_SIN = 32, EMIT_MATH_COS = 64, EMIT_MATH_TAN = 128, EMIT_MATH_ERF = 256, EMIT_MATH_POW = 512,
       EMIT_MATH_SQRT = 1024, EMIT_MATH_FABS = 2048, EMIT_MATH_FMAX = 4096, EMIT_MATH_FMIN = 8192, EMIT_MATH_FMA = 16384 };
int  emit_math_bit(const char *libm_name);
void emit_math(FILE *o, const char *prefix, int f64, unsigned used);
#endif
#include <string.h>

/* ---- the precisions: constants and polynomials ---------------------------------------------- */

/* A named constant's C text in float and in double.  Values that must be exact (the parts of
 * ln 2 and pi/2, powers of two, bit patterns) are exactly representable as printed. */
typedef struct { const char *name, *f32, *f64; } math_const;

static const math_const CONSTS[] = {
    {"MANT",   "23", "52"},                               /* stored significand bits */
    {"BIAS",   "127", "1023"},
    {"EMAX",   "127", "1023"},
    {"EMIN",   "-126", "-1022"},
    {"TINY_UP", "0x1p-102f", "0x1p-969"},                 /* 2^(EMIN+MANT+1): see k_scale */
    {"TINY_N", "102", "969"},
    {"HUGE_UP", "0x1p127f", "0x1p1023"},
    {"MIN_NORMAL", "0x1p-126f", "0x1p-1022"},
    {"SUB_UP", "0x1p24f", "0x1p54"},                      /* scales a subnormal up to a normal (even power) */
    {"SUB_N",  "24", "54"},
    {"SQRT_SMALL", "0x1p-64f", "0x1p-512"},               /* sqrt scales x into [2^-64, 2^64] / [2^-512, 2^512]: */
    {"SQRT_BIG", "0x1p64f", "0x1p512"},                   /* the exact s^2 of k_mul2 must neither under- */
    {"SQRT_UP", "0x1p100f", "0x1p700"},                   /* nor overflow */
    {"SQRT_UP_BACK", "0x1p-50f", "0x1p-350"},
    {"SQRT_DN", "0x1p-24f", "0x1p-54"},
    {"SQRT_DN_BACK", "0x1p12f", "0x1p27"},
    {"C3H", "0.666666687f", "0.6666666666666666"},        /* 2/3 = C3H + C3L */
    {"C3L", "-1.98682155e-08f", "3.700743415417188e-17"},
    {"ONE_BITS",   "0x3f800000u", "0x3ff0000000000000ull"},
    {"SQRTH_BITS", "0x3f3504f3u", "0x3fe6a09e667f3bcdull"},   /* sqrt(1/2) */
    {"MANT_MASK",  "0x007fffffu", "0x000fffffffffffffull"},
    {"ABS_MASK",   "0x7fffffffu", "0x7fffffffffffffffull"},
    {"RSQRT_MAGIC", "0x5f3759dfu", "0x5fe6eb50c7b537a9ull"},  /* first guess of 1/sqrt from the bits */
    {"SPLIT",  "4097.0f", "134217729.0"},                 /* 2^ceil(p/2) + 1, Veltkamp's split */
    {"SHIFT",  "12582912.0f", "6755399441055744.0"},      /* 1.5 2^MANT: (v + SHIFT) - SHIFT rounds v to an integer */
    {"INT_ALL", "8388608.0f", "4503599627370496.0"},      /* 2^MANT: every value from here on is an integer */
    {"LOG2E",  "1.44269502f", "1.4426950408889634"},
    {"LN2HI",  "0.693145752f", "0.6931471805598903"},     /* ln 2 with 15 / 42 bits: k LN2HI exact for |k| < 2^9 / 2^11 */
    {"LN2LO",  "1.42860677e-06f", "5.497923018708371e-14"},
    {"HALF_LN2", "0.346573591f", "0.34657359027997264"},
    {"SQRTH_M1", "-0.292893231f", "-0.2928932188134525"}, /* sqrt(1/2) - 1 */
    {"SQRT2_M1", "0.414213568f", "0.41421356237309503"},  /* sqrt(2) - 1 */
    {"EXP_OVF", "89.0f", "710.0"},                        /* e^x overflows above, ... */
    {"EXP_UNF", "-104.0f", "-746.0"},                     /* ... and rounds to 0 below */
    {"EXPM1_NEG", "-17.5f", "-38.5"},                     /* e^x - 1 rounds to -1 below */
    {"TANH_ONE", "9.1f", "19.5"},                         /* tanh x rounds to 1 above */
    {"TINY",   "0x1p-12f", "0x1p-27"},                    /* x^2/3 < 2^-(MANT+2): sin x, tan x, tanh x round to x */
    {"ERF_SMALL", "0.875f", "0.875"},
    {"ERF_ONE", "4.0f", "6.0"},                           /* erf x rounds to 1 above */
    {"TWO_OVER_PI", "0.636619747f", "0.6366197723675814"},
    {"PIO2_1", "1.5703125f", "1.5707963267341256"},       /* pi/2 = PIO2_1 + ... + PIO2_5: 11 / 33 bits each, */
    {"PIO2_2", "0.000483751297f", "6.077100506303966e-11"},  /* the last one full */
    {"PIO2_3", "7.54953362e-08f", "2.0222662487111665e-21"},
    {"PIO2_4", "2.56328292e-12f", "8.478427660348229e-32"},
    {"PIO2_5", "6.12323426e-17f", "2.0670321098263988e-43"},
    {"TRIG_LIMIT", "12800.0f", "1600000.0"},              /* n = x 2/pi below 2^13 / 2^20: n PIO2_i exact */
    {"TWO_PI", "6.28318548f", "6.283185307179586"},       /* the nearest to 2 pi */
    {"FAST_FMA", "__FP_FAST_FMAF", "__FP_FAST_FMA"},      /* GCC's: the target has a fused multiply-add */
    {"ARM_FP_BIT", "4", "8"},                             /* __ARM_FP's bit: hardware of this precision */
};

/* A polynomial's coefficients, lowest degree first, per precision. */
typedef struct { const char *name; const double *f32; int n32; const double *f64; int n64; } math_poly;

/* expm1(r) = r + r^2/2 + r^3 P(r), |r| <= 0.357 */
static const double P_EXPM1_32[] = {0.166666672, 0.0416666679, 0.00833330769, 0.00138888636, 0.000198940208,
                                     2.48543256e-05};
static const double P_EXPM1_64[] = {0.16666666666666669, 0.041666666666666664, 0.008333333333329189,
                                     0.001388888888888593, 0.00019841269867279244, 2.48015873201621e-05,
                                     2.7557262089845055e-06, 2.7557278420519073e-07, 2.510332603204832e-08,
                                     2.091333651064608e-09};
/* 2 atanh(s) = 2s + s z Q(z), z = s^2 <= 0.0298 */
static const double P_LOG_32[] = {0.666666687, 0.399999976, 0.285717636, 0.221907631, 0.193749711};
/* 2 atanh(s) = 2s + 2s^3/3 + s^5 Q1(z) (pow's log) */
static const double P_LOGX_32[] = {0.400000006, 0.285714269, 0.222225145, 0.181545258, 0.164194822};
static const double P_LOGX_64[] = {0.4, 0.28571428571428564, 0.22222222222228882, 0.18181818179522571,
                                   0.1538461578064774, 0.13333295011900106, 0.1176687865598926, 0.10454866026728715,
                                   0.10775601089388141};
static const double P_LOG_64[] = {0.6666666666666666, 0.3999999999999999, 0.2857142857143586, 0.22222222219710297,
                                  0.18181818615177278, 0.15384573450028968, 0.13335711085008436,
                                  0.11686508917312045, 0.11896558568412165};
/* sin r = r + r^3 S(z), cos r = 1 - z/2 + z^2 C(z), z = r^2, |r| <= 0.794 */
static const double P_SIN_32[] = {-0.166666672, 0.00833333191, -0.00019840039, 2.72437819e-06};
static const double P_SIN_64[] = {-0.16666666666666666, 0.008333333333333331, -0.00019841269841264567,
                                  2.7557319218954762e-06, -2.505210610025599e-08, 1.6058510875319195e-10,
                                  -7.585486485235938e-13};
static const double P_COS_32[] = {0.0416666642, -0.00138882792, 2.4542871e-05};
static const double P_COS_64[] = {0.041666666666666664, -0.0013888888888887241, 2.480158729853226e-05,
                                  -2.7557317151858866e-07, 2.0876121534608454e-09, -1.1380868171449914e-11};
/* erf x = x + x H(z), z = x^2, |x| < 0.875 */
static const double P_ERF_32[] = {0.128379166, -0.376126349, 0.112837352, -0.0268617067, 0.00520704873,
                                  -0.00082145707, 8.69036885e-05};
static const double P_ERF_64[] = {0.1283791670955126, -0.3761263890318374, 0.11283791670954353,
                                  -0.026866170644942594, 0.005223977623059443, -0.0008548326845690305,
                                  0.00012055324561705379, -1.492538720169797e-05, 1.6456607597388118e-06,
                                  -1.6289242608284092e-07, 1.4122777660357666e-08, -8.666276629203472e-10};
/* erfc(x) e^(x^2) on pieces of [0.875, ERF_ONE], in t = x - the piece's middle */
static const double P_ERFC_32A[] = {0.332117558, -0.173541144, 0.0826521143, -0.0364872366, 0.0151023194,
                                    -0.00589483697, 0.00219666376, -0.000850613753, 0.000289513409};
static const double P_ERFC_32B[] = {0.179001153, -0.0543722101, 0.0158843603, -0.00448008208, 0.00122319104,
                                    -0.000321806612, 8.30125937e-05, -2.40037934e-05, 5.85107364e-06};
static const double P_ERFC_64A[] = {0.3551767864976341, -0.19604010253922294, 0.09787415191490514,
                                    -0.04505351876727457, 0.019370704266305553, -0.007851787767001732,
                                    0.003021744279188789, -0.0011102138320475403, 0.00039114705035090286,
                                    -0.00013262956927536472, 4.3415328321914e-05, -1.3754589661439176e-05,
                                    4.219779810694072e-06, -1.2605886839761334e-06, 3.899220899832563e-07,
                                    -1.1024943899364327e-07};
static const double P_ERFC_64B[] = {0.23108725873039188, -0.08848650280874928, 0.03199262741070629,
                                    -0.011002060756420412, 0.00361899535435344, -0.0011437284845011713,
                                    0.00034853542224593437, -0.0001027210650419414, 2.9353243552615397e-05,
                                    -8.150440387836985e-06, 2.203059146225163e-06, -5.798145281575868e-07,
                                    1.4923927256016932e-07, -3.9763207492200635e-08, 9.772453965979988e-09};
static const double P_ERFC_64C[] = {0.16063106812654446, -0.04411945724133785, 0.011727899937019117,
                                    -0.003025196635907561, 0.0007589306458288832, -0.00018552228313349108,
                                    4.426430705997468e-05, -1.0322920276709691e-05, 2.3561593370726566e-06,
                                    -5.269068650410098e-07, 1.1539477079911704e-07, -2.484897280714802e-08,
                                    5.580915113549541e-09, -1.158726229435423e-09};
static const double P_ERFC_64D[] = {0.11070463773306863, -0.021332789764826766, 0.0040406889089371475,
                                    -0.0007528968134103096, 0.00013810242089763806, -2.4953883753362215e-05,
                                    4.444334378504417e-06, -7.806310798953313e-07, 1.35293513834834e-07,
                                    -2.3149602195480604e-08, 3.911576045501576e-09, -6.502150536423046e-10,
                                    1.0730827031906663e-10, -1.9373905066881707e-11, 3.119800563482243e-12};

#define N_(a) (int)(sizeof a / sizeof a[0])
static const math_poly POLYS[] = {
    {"expm1", P_EXPM1_32, N_(P_EXPM1_32), P_EXPM1_64, N_(P_EXPM1_64)},
    {"log", P_LOG_32, N_(P_LOG_32), P_LOG_64, N_(P_LOG_64)},
    {"logx", P_LOGX_32, N_(P_LOGX_32), P_LOGX_64, N_(P_LOGX_64)},
    {"sin", P_SIN_32, N_(P_SIN_32), P_SIN_64, N_(P_SIN_64)},
    {"cos", P_COS_32, N_(P_COS_32), P_COS_64, N_(P_COS_64)},
    {"erf", P_ERF_32, N_(P_ERF_32), P_ERF_64, N_(P_ERF_64)},
};

/* erfc's pieces: [from, to) and the middle each polynomial is centred on. */
typedef struct { double to, mid; const double *c; int n; } erfc_piece;
static const erfc_piece ERFC_32[] = {{2.0, 1.4375, P_ERFC_32A, N_(P_ERFC_32A)}, {4.0, 3.0, P_ERFC_32B, N_(P_ERFC_32B)}};
static const erfc_piece ERFC_64[] = {{1.75, 1.3125, P_ERFC_64A, N_(P_ERFC_64A)}, {2.75, 2.25, P_ERFC_64B, N_(P_ERFC_64B)},
                                     {4.0, 3.375, P_ERFC_64C, N_(P_ERFC_64C)}, {6.0, 5.0, P_ERFC_64D, N_(P_ERFC_64D)}};
#undef N_

/* ---- the templates ----------------------------------------------------------------------------
 * Tokens: $P prefix, $F name suffix ("f" or ""), $T type, $U unsigned type of the same width,
 * $L literal suffix, ${NAME} a constant of CONSTS, $[poly:v] the polynomial `poly` in v (Horner),
 * $E erf's chain of erfc pieces. */

/* Helpers: bits above the public EMIT_MATH_* ones. */
enum { H_BITS = 1 << 16, H_FROM = 1 << 17, H_POW2 = 1 << 18, H_SCALE = 1 << 19, H_MUL2 = 1 << 20,
       H_EXPK = 1 << 21, H_EXPCORE = 1 << 22, H_FREXP = 1 << 23, H_LOGK = 1 << 24, H_LOGX = 1 << 25,
       H_TRIG = 1 << 26 };

static const char T_BITS[] =
    "/* x's bits (memcpy: the one well-defined bit cast in C99) */\n"
    "static $U $P_k_bits$F($T x) { $U u; memcpy(&u, &x, sizeof u); return u; }\n";

static const char T_FROM[] =
    "/* the value with bits u */\n"
    "static $T $P_k_from$F($U u) { $T x; memcpy(&x, &u, sizeof x); return x; }\n";

static const char T_POW2[] =
    "/* 2^n for n in [${EMIN}, ${EMAX}], from its bits */\n"
    "static $T $P_k_pow2$F(int n) { return $P_k_from$F(($U)(n + ${BIAS}) << ${MANT}); }\n";

static const char T_SCALE[] =
    "/* v 2^n for |n| up to about ${EMAX} + ${MANT}: one extra step keeps 2^n representable; below the\n"
    " * normal range v is first brought down to 2^${EMIN} exactly, so a subnormal result rounds once. */\n"
    "static $T $P_k_scale$F($T v, int n) {\n"
    "    if (n > ${EMAX}) { v *= ${HUGE_UP}; n -= ${EMAX}; if (n > ${EMAX}) n = ${EMAX}; }\n"
    "    else if (n < ${EMIN}) { v *= ${TINY_UP}; n += ${TINY_N}; if (n < ${EMIN}) n = ${EMIN}; }\n"
    "    return v * $P_k_pow2$F(n);\n"
    "}\n";

static const char T_MUL2[] =
    "/* a b = *hi + *lo exactly: one fused multiply-add where the target has one, else Dekker's product\n"
    " * (Veltkamp's split into halves whose products are exact; the statements are kept apart so that\n"
    " * no compiler contracts them).  Needs |a|, |b| well below the overflow threshold / ${SPLIT}. */\n"
    "static void $P_k_mul2$F($T a, $T b, $T *hi, $T *lo) {\n"
    "    *hi = a * b;\n"
    "#if defined(__GNUC__) && defined(${FAST_FMA})\n"
    "    *lo = __builtin_fma$F(a, b, -*hi);\n"
    "#else\n"
    "    {\n"
    "        $T ca = ${SPLIT} * a, cb = ${SPLIT} * b, ah, al, bh, bl;\n"
    "        ah = ca - (ca - a);\n"
    "        bh = cb - (cb - b);\n"
    "        al = a - ah;\n"
    "        bl = b - bh;\n"
    "        *lo = ((ah * bh - *hi) + ah * bl + al * bh) + al * bl;\n"
    "    }\n"
    "#endif\n"
    "}\n";

static const char T_EXPK[] =
    "/* e^r - 1 for |r| <= ln2/2 (+ a little): r + r^2/2 + r^3 P(r), P a degree-$N[expm1] Chebyshev fit\n"
    " * of (e^r - 1 - r - r^2/2) / r^3; the two leading terms exact, so the error is in the small part. */\n"
    "static $T $P_k_expm1$F($T r) {\n"
    "    $T z = r * r;\n"
    "    return r + (0.5$L * z + z * r * $[expm1:r]);\n"
    "}\n";

static const char T_EXPCORE[] =
    "/* e^(h + l) with l tiny against h (0 for exp), h in [${EXP_UNF}, ${EXP_OVF}]: n = round(h / ln 2),\n"
    " * r = h - n ln 2 + l (Cody-Waite: n LN2HI is exact, h - n LN2HI too), then 2^n (1 + expm1(r)). */\n"
    "static $T $P_k_exp$F($T h, $T l) {\n"
    "    $T n = (h * ${LOG2E} + ${SHIFT}) - ${SHIFT};\n"
    "    $T r = ((h - n * ${LN2HI}) - n * ${LN2LO}) + l;\n"
    "    return $P_k_scale$F(1 + $P_k_expm1$F(r), (int)n);\n"
    "}\n";

static const char T_FREXP[] =
    "/* x = 2^*k m with m in [sqrt(1/2), sqrt 2), for finite x > 0: adding ONE_BITS - SQRTH_BITS to the\n"
    " * bits moves [sqrt(1/2), sqrt 2) onto one binade, whose exponent is k (subnormals scaled up first). */\n"
    "static $T $P_k_frexp$F($T x, int *k) {\n"
    "    int sub = 0;\n"
    "    $U u;\n"
    "    if (x < ${MIN_NORMAL}) { x *= ${SUB_UP}; sub = ${SUB_N}; }\n"
    "    u = $P_k_bits$F(x) + (${ONE_BITS} - ${SQRTH_BITS});\n"
    "    *k = (int)(u >> ${MANT}) - ${BIAS} - sub;\n"
    "    return $P_k_from$F((u & ${MANT_MASK}) + ${SQRTH_BITS});\n"
    "}\n";

static const char T_LOGK[] =
    "/* log(1 + f) + c for f in [sqrt(1/2) - 1, sqrt 2 - 1] and a small correction c: log(1 + f) = 2 atanh s,\n"
    " * s = f / (2 + f), = 2s + s R with R = z Q(z), z = s^2, Q a degree-$N[log] Chebyshev fit; written as\n"
    " * f - (f^2/2 - s (f^2/2 + R)) (fdlibm's arrangement) so that the exact f carries the result. */\n"
    "static $T $P_k_log1p$F($T f, $T c) {\n"
    "    $T s = f / (2 + f), z = s * s, hfsq = 0.5$L * f * f;\n"
    "    return f - (hfsq - (s * (hfsq + z * $[log:z]) + c));\n"
    "}\n";

static const char T_LOGX[] =
    "/* log x = hi + *lo for finite x > 0, to about 2^-10 of an ulp, for pow.  As in log, x = 2^k (1 + f),\n"
    " * log(1 + f) = 2 atanh s = 2s + 2s^3/3 + s^5 Q1(s^2), Q1 a degree-$N[logx] Chebyshev fit; but s = f/(2 + f)\n"
    " * is carried as sh + sl (2 + f = d + dl exactly, the quotient's remainder from k_mul2), 2s^3/3 as a\n"
    " * pair from exact products, and k LN2HI + 2 sh + 2s^3/3 summed by Knuth's 2Sum, the small terms last. */\n"
    "static $T $P_k_logx$F($T x, $T *lo) {\n"
    "    int k;\n"
    "    $T m = $P_k_frexp$F(x, &k), f = m - 1, d = 2 + f, dl = f - (d - 2), sh = f / d;\n"
    "    $T p, pe, sl, z, ze, c, ce, t, s2, h, b, e;\n"
    "    $P_k_mul2$F(sh, d, &p, &pe);\n"
    "    sl = (((f - p) - pe) - sh * dl) / d;\n"
    "    $P_k_mul2$F(sh, sh, &z, &ze);          /* s^2 = z + ze */\n"
    "    ze += 2 * sh * sl;\n"
    "    $P_k_mul2$F(sh, z, &c, &ce);           /* s^3 = c + ce */\n"
    "    ce += sh * ze + sl * z;\n"
    "    $P_k_mul2$F(c, ${C3H}, &p, &pe);       /* 2s^3/3 = p + pe */\n"
    "    pe += c * ${C3L} + ce * ${C3H};\n"
    "    t = ($T)k * ${LN2HI};\n"
    "    s2 = 2 * sh;\n"
    "    h = t + s2;\n"
    "    b = h - t;\n"
    "    e = (t - (h - b)) + (s2 - b);\n"
    "    t = h + p;\n"
    "    b = t - h;\n"
    "    e += (h - (t - b)) + (p - b);\n"
    "    e += 2 * sl + pe + c * z * $[logx:z] + ($T)k * ${LN2LO};\n"
    "    h = t + e;\n"
    "    *lo = e - (h - t);\n"
    "    return h;\n"
    "}\n";

static const char T_TRIG[] =
    "/* t - a, its rounding error added to *lo (Knuth's 2Sum) */\n"
    "static $T $P_k_sub2$F($T t, $T a, $T *lo) {\n"
    "    $T y = t - a, b = y - t;\n"
    "    *lo += (t - (y - b)) - (a + b);\n"
    "    return y;\n"
    "}\n"
    "\n"
    "/* x - n pi/2 = *r + *rl with |*r| <= pi/4 (+ a little); returns n mod 4.  Cody-Waite with pi/2 in five\n"
    " * parts, the first four short enough that n PIO2_i is exact for |x| < ${TRIG_LIMIT} (n < 2^13 / 2^20);\n"
    " * the rounding errors of the subtractions are kept in *rl, so r is right to about 2^-${MANT} of itself\n"
    " * even where x lies near a multiple of pi/2.  Beyond ${TRIG_LIMIT}, x is first reduced modulo TWO_PI,\n"
    " * the float nearest 2 pi (exactly: each step subtracts TWO_PI 2^j from a value below twice it): the\n"
    " * result is bounded but no longer accurate there.  x finite. */\n"
    "static int $P_k_rempio2$F($T x, $T *r, $T *rl) {\n"
    "    $T n, t, lo = 0;\n"
    "    if (x > ${TRIG_LIMIT} || x < -${TRIG_LIMIT}) {\n"
    "        $T ax = x < 0 ? -x : x, c = ${TWO_PI};\n"
    "        while (c <= 0.5$L * ax) c *= 2;\n"
    "        for (; c >= ${TWO_PI}; c *= 0.5$L)\n"
    "            if (ax >= c) ax -= c;\n"
    "        x = x < 0 ? -ax : ax;\n"
    "    }\n"
    "    n = (x * ${TWO_OVER_PI} + ${SHIFT}) - ${SHIFT};\n"
    "    t = x - n * ${PIO2_1};\n"
    "    t = $P_k_sub2$F(t, n * ${PIO2_2}, &lo);\n"
    "    t = $P_k_sub2$F(t, n * ${PIO2_3}, &lo);\n"
    "    t = $P_k_sub2$F(t, n * ${PIO2_4}, &lo);\n"
    "    t = $P_k_sub2$F(t, n * ${PIO2_5}, &lo);\n"
    "    *r = t + lo;\n"
    "    *rl = lo - (*r - t);\n"
    "    return (int)n & 3;\n"
    "}\n"
    "\n"
    "/* sin(r + rl), |r| <= pi/4: r + (r^3 S(z) + rl (1 - z/2)), z = r^2, S a degree-$N[sin] Chebyshev fit\n"
    " * of (sin r - r) / r^3 in z */\n"
    "static $T $P_k_sin$F($T r, $T rl) {\n"
    "    $T z = r * r;\n"
    "    return r + (r * z * $[sin:z] + rl * (1 - 0.5$L * z));\n"
    "}\n"
    "\n"
    "/* cos(r + rl), |r| <= pi/4: 1 - z/2 + z^2 C(z) - r rl, C a degree-$N[cos] Chebyshev fit of\n"
    " * (cos r - 1 + z/2) / z^2 in z; the rounding error of 1 - z/2 is added back */\n"
    "static $T $P_k_cos$F($T r, $T rl) {\n"
    "    $T z = r * r, hz = 0.5$L * z, w = 1 - hz;\n"
    "    return w + (((1 - w) - hz) + (z * z * $[cos:z] - r * rl));\n"
    "}\n";

static const char T_EXP[] =
    "/* e^x: k_exp (Cody-Waite reduction by ln 2, degree-$N[expm1] polynomial, scaling by 2^n) */\n"
    "static $T $P_exp$F($T x) {\n"
    "    if (x != x) return x;\n"
    "    if (x > ${EXP_OVF}) return INFINITY;\n"
    "    if (x < ${EXP_UNF}) return 0;\n"
    "    return $P_k_exp$F(x, 0);\n"
    "}\n";

static const char T_EXPM1[] =
    "/* e^x - 1.  |x| <= ln2/2: the kernel alone.  Otherwise x = n ln 2 + r + c (Cody-Waite; c is r's\n"
    " * rounding error) and e^x - 1 = 2^n em + (2^n - 1), em = expm1(r + c): for |n| <= ${MANT} + 1 both\n"
    " * terms are exact and only their sum rounds; above, e^x = 2^n (1 + em). */\n"
    "static $T $P_expm1$F($T x) {\n"
    "    $T n, hi, lo, r, c, em, p;\n"
    "    if (x != x || x == 0) return x;\n"
    "    if (x > ${EXP_OVF}) return INFINITY;\n"
    "    if (x < ${EXPM1_NEG}) return -1;\n"
    "    if (x >= -${HALF_LN2} && x <= ${HALF_LN2}) return $P_k_expm1$F(x);\n"
    "    n = (x * ${LOG2E} + ${SHIFT}) - ${SHIFT};\n"
    "    hi = x - n * ${LN2HI};\n"
    "    lo = n * ${LN2LO};\n"
    "    r = hi - lo;\n"
    "    c = (hi - r) - lo;\n"
    "    em = $P_k_expm1$F(r);\n"
    "    em += c + c * em;\n"
    "    if (n > ${MANT} + 1) return $P_k_scale$F(1 + em, (int)n);\n"
    "    p = $P_k_pow2$F((int)n);\n"
    "    return em * p + (p - 1);\n"
    "}\n";

static const char T_LOG[] =
    "/* log x = k ln 2 + log(1 + f), x = 2^k (1 + f) with 1 + f in [sqrt(1/2), sqrt 2): k_log1p */\n"
    "static $T $P_log$F($T x) {\n"
    "    int k;\n"
    "    $T m;\n"
    "    if (x != x || x == INFINITY) return x;\n"
    "    if (x < 0) return NAN;\n"
    "    if (x == 0) return -INFINITY;\n"
    "    m = $P_k_frexp$F(x, &k);\n"
    "    return ($T)k * ${LN2HI} + $P_k_log1p$F(m - 1, ($T)k * ${LN2LO});\n"
    "}\n";

static const char T_LOG1P[] =
    "/* log(1 + x).  For 1 + x in [sqrt(1/2), sqrt 2) the kernel takes f = x itself, unrounded; otherwise\n"
    " * u = 1 + x is split as in log and u's rounding error c (exact) is added back as c/u. */\n"
    "static $T $P_log1p$F($T x) {\n"
    "    int k;\n"
    "    $T u, c, m;\n"
    "    if (x != x || x == INFINITY) return x;\n"
    "    if (x <= -1) return x == -1 ? -INFINITY : NAN;\n"
    "    if (x > ${SQRTH_M1} && x < ${SQRT2_M1}) return $P_k_log1p$F(x, 0);\n"
    "    u = 1 + x;\n"
    "    c = (u >= 2 ? 1 - (u - x) : x - (u - 1)) / u;\n"
    "    m = $P_k_frexp$F(u, &k);\n"
    "    return ($T)k * ${LN2HI} + $P_k_log1p$F(m - 1, ($T)k * ${LN2LO} + c);\n"
    "}\n";

static const char T_TANH[] =
    "/* tanh x = -t / (t + 2), t = expm1(-2|x|), odd; 1 above ${TANH_ONE}, x below ${TINY} */\n"
    "static $T $P_tanh$F($T x) {\n"
    "    $T ax = x < 0 ? -x : x, t, y;\n"
    "    if (x != x) return x;\n"
    "    if (ax > ${TANH_ONE}) return x < 0 ? -1 : 1;\n"
    "    if (ax < ${TINY}) return x;\n"
    "    t = $P_expm1$F(-2 * ax);\n"
    "    y = -t / (t + 2);\n"
    "    return x < 0 ? -y : y;\n"
    "}\n";

static const char T_SIN[] =
    "/* sin x: k_rempio2 (accurate for |x| < ${TRIG_LIMIT}), then the kernel of the quadrant */\n"
    "static $T $P_sin$F($T x) {\n"
    "    $T r, rl;\n"
    "    if (!(x - x == 0)) return x - x;\n"
    "    if (x < ${TINY} && x > -${TINY}) return x;\n"
    "    switch ($P_k_rempio2$F(x, &r, &rl)) {\n"
    "    case 0: return $P_k_sin$F(r, rl);\n"
    "    case 1: return $P_k_cos$F(r, rl);\n"
    "    case 2: return -$P_k_sin$F(r, rl);\n"
    "    default: return -$P_k_cos$F(r, rl);\n"
    "    }\n"
    "}\n";

static const char T_COS[] =
    "/* cos x: k_rempio2 (accurate for |x| < ${TRIG_LIMIT}), then the kernel of the quadrant */\n"
    "static $T $P_cos$F($T x) {\n"
    "    $T r, rl;\n"
    "    if (!(x - x == 0)) return x - x;\n"
    "    switch ($P_k_rempio2$F(x, &r, &rl)) {\n"
    "    case 0: return $P_k_cos$F(r, rl);\n"
    "    case 1: return -$P_k_sin$F(r, rl);\n"
    "    case 2: return -$P_k_cos$F(r, rl);\n"
    "    default: return $P_k_sin$F(r, rl);\n"
    "    }\n"
    "}\n";

static const char T_TAN[] =
    "/* tan x = sin r / cos r, or -cos r / sin r in odd quadrants (k_rempio2: |x| < ${TRIG_LIMIT}) */\n"
    "static $T $P_tan$F($T x) {\n"
    "    $T r, rl, s, c;\n"
    "    int q;\n"
    "    if (!(x - x == 0)) return x - x;\n"
    "    if (x < ${TINY} && x > -${TINY}) return x;\n"
    "    q = $P_k_rempio2$F(x, &r, &rl);\n"
    "    s = $P_k_sin$F(r, rl);\n"
    "    c = $P_k_cos$F(r, rl);\n"
    "    return q & 1 ? -c / s : s / c;\n"
    "}\n";

static const char T_ERF[] =
    "/* erf x, odd.  |x| < ${ERF_SMALL}: x + x H(x^2), H a degree-$N[erf] Chebyshev fit of erf(x)/x - 1.\n"
    " * Above: 1 - e^(-x^2) K(x), K = erfc(x) e^(x^2) smooth, fitted piecewise in x - the piece's middle;\n"
    " * 1 above ${ERF_ONE}. */\n"
    "static $T $P_erf$F($T x) {\n"
    "    $T ax = x < 0 ? -x : x, y, k;\n"
    "    if (x != x) return x;\n"
    "    if (ax < ${ERF_SMALL}) {\n"
    "        $T z = x * x;\n"
    "        return x + x * $[erf:z];\n"
    "    }\n"
    "    if (ax >= ${ERF_ONE}) return x < 0 ? -1 : 1;\n"
    "$E"
    "    y = 1 - $P_exp$F(-ax * ax) * k;\n"
    "    return x < 0 ? -y : y;\n"
    "}\n";

static const char T_POW[] =
    "/* v >= 0 is an integer: from 2^${MANT} on every value is; below, (v + SHIFT) - SHIFT rounds to one */\n"
    "static int $P_k_isint$F($T v) { return v >= ${INT_ALL} || (v + ${SHIFT}) - ${SHIFT} == v; }\n"
    "\n"
    "/* x^y, with C's special cases (C99 F.9.4.4).  Otherwise |x|^y = e^(y log|x|): log|x| as hi + lo\n"
    " * (k_logx), y log|x| as a pair (k_mul2), so that the product, up to ${EXP_OVF} in size before\n"
    " * overflow, keeps about ${MANT} + 6 bits; x < 0: NaN unless y is an integer, negative for odd y. */\n"
    "static $T $P_pow$F($T x, $T y) {\n"
    "    $T ax = x < 0 ? -x : x, ay = y < 0 ? -y : y, lh, ll, ph, pl, sign = 1;\n"
    "    int yint;   /* 0: y is not an integer; 1: odd; 2: even */\n"
    "    if (y == 0 || x == 1) return 1;\n"
    "    if (x != x || y != y) return x + y;\n"
    "    yint = !$P_k_isint$F(ay) ? 0 : !$P_k_isint$F(0.5$L * ay) ? 1 : 2;\n"
    "    if (ay == INFINITY) return ax == 1 ? 1 : (ax < 1) == (y < 0) ? INFINITY : 0;\n"
    "    if (ax == 0) return y < 0 ? (yint == 1 ? 1 / x : INFINITY) : (yint == 1 ? x : 0);\n"
    "    if (ax == INFINITY) return x < 0 && yint == 1 ? (y < 0 ? -0.0$L : -INFINITY) : (y < 0 ? 0 : INFINITY);\n"
    "    if (x < 0) {\n"
    "        if (!yint) return NAN;\n"
    "        if (yint == 1) sign = -1;\n"
    "    }\n"
    "    lh = $P_k_logx$F(ax, &ll);\n"
    "    $P_k_mul2$F(y, lh, &ph, &pl);\n"
    "    if (ph > ${EXP_OVF}) return sign * INFINITY;\n"
    "    if (ph < ${EXP_UNF}) return sign * 0;\n"
    "    pl += y * ll;\n"
    "    return sign * $P_k_exp$F(ph, pl);\n"
    "}\n";

static const char T_SQRT[] =
    "/* sqrt x: 1/sqrt x from the bits and Newton's iteration, s = x / sqrt x, then one correction from\n"
    " * the exact residual x - s^2 (k_mul2): within an ulp, nearly always correctly rounded.  Where\n"
    " * GCC compiles with -fno-math-errno for an ARM FPU of this precision, x >= 0 takes the hardware's\n"
    " * instruction (__builtin_sqrt then calls no library). */\n"
    "static $T $P_sqrt$F($T x) {\n"
    "    $T y, h, s, p, pe, e, back = 1;\n"
    "    int i;\n"
    "#if defined(__GNUC__) && defined(__NO_MATH_ERRNO__) && defined(__ARM_FP) && (__ARM_FP & ${ARM_FP_BIT})\n"
    "    if (x >= 0) return __builtin_sqrt$F(x);\n"
    "#endif\n"
    "    if (!(x > 0) || x == INFINITY) return x < 0 ? NAN : x;\n"
    "    if (x < ${SQRT_SMALL}) { x *= ${SQRT_UP}; back = ${SQRT_UP_BACK}; }\n"
    "    else if (x > ${SQRT_BIG}) { x *= ${SQRT_DN}; back = ${SQRT_DN_BACK}; }\n"
    "    y = $P_k_from$F(${RSQRT_MAGIC} - ($P_k_bits$F(x) >> 1));\n"
    "    h = 0.5$L * x;\n"
    "    for (i = 0; i < $R; i++) y = y * (1.5$L - h * y * y);\n"
    "    s = x * y;\n"
    "    $P_k_mul2$F(s, s, &p, &pe);\n"
    "    e = (x - p) - pe;\n"
    "    return (s + 0.5$L * y * e) * back;\n"
    "}\n";

static const char T_FABS[] =
    "/* |x|: the sign bit cleared (NaN and -0 included) */\n"
    "static $T $P_fabs$F($T x) { return $P_k_from$F($P_k_bits$F(x) & ${ABS_MASK}); }\n";

static const char T_FMAX[] =
    "/* the larger; a NaN operand yields the other one (C's fmax) */\n"
    "static $T $P_fmax$F($T x, $T y) {\n"
    "    if (x != x) return y;\n"
    "    if (y != y) return x;\n"
    "    return x > y ? x : y;\n"
    "}\n";

static const char T_FMIN[] =
    "/* the smaller; a NaN operand yields the other one (C's fmin) */\n"
    "static $T $P_fmin$F($T x, $T y) {\n"
    "    if (x != x) return y;\n"
    "    if (y != y) return x;\n"
    "    return x < y ? x : y;\n"
    "}\n";

static const char T_FMA[] =
    "/* a b + c: fused where the target has the instruction (GCC's ${FAST_FMA}); otherwise NOT fused,\n"
    " * two roundings (a correct software fma would cost far more than the models need) */\n"
    "static $T $P_fma$F($T a, $T b, $T c) {\n"
    "#if defined(__GNUC__) && defined(${FAST_FMA})\n"
    "    return __builtin_fma$F(a, b, c);\n"
    "#else\n"
    "    return a * b + c;\n"
    "#endif\n"
    "}\n";

/* Everything that can be written, in an order where each comes after what it uses. */
typedef struct { unsigned bit, deps; const char *libm, *text; } math_fn;
static const math_fn FNS[] = {
    {H_BITS, 0, NULL, T_BITS},
    {H_FROM, 0, NULL, T_FROM},
    {H_POW2, H_FROM, NULL, T_POW2},
    {H_SCALE, H_POW2, NULL, T_SCALE},
    {H_MUL2, 0, NULL, T_MUL2},
    {H_EXPK, 0, NULL, T_EXPK},
    {H_EXPCORE, H_EXPK | H_SCALE, NULL, T_EXPCORE},
    {H_FREXP, H_BITS | H_FROM, NULL, T_FREXP},
    {H_LOGK, 0, NULL, T_LOGK},
    {H_LOGX, H_FREXP | H_MUL2, NULL, T_LOGX},
    {H_TRIG, 0, NULL, T_TRIG},
    {EMIT_MATH_EXP, H_EXPCORE, "exp", T_EXP},
    {EMIT_MATH_EXPM1, H_EXPK | H_SCALE | H_POW2, "expm1", T_EXPM1},
    {EMIT_MATH_LOG, H_FREXP | H_LOGK, "log", T_LOG},
    {EMIT_MATH_LOG1P, H_FREXP | H_LOGK, "log1p", T_LOG1P},
    {EMIT_MATH_TANH, EMIT_MATH_EXPM1, "tanh", T_TANH},
    {EMIT_MATH_SIN, H_TRIG, "sin", T_SIN},
    {EMIT_MATH_COS, H_TRIG, "cos", T_COS},
    {EMIT_MATH_TAN, H_TRIG, "tan", T_TAN},
    {EMIT_MATH_ERF, EMIT_MATH_EXP, "erf", T_ERF},
    {EMIT_MATH_POW, H_LOGX | H_MUL2 | H_EXPCORE, "pow", T_POW},
    {EMIT_MATH_SQRT, H_BITS | H_FROM | H_MUL2, "sqrt", T_SQRT},
    {EMIT_MATH_FABS, H_BITS | H_FROM, "fabs", T_FABS},
    {EMIT_MATH_FMAX, 0, "fmax", T_FMAX},
    {EMIT_MATH_FMIN, 0, "fmin", T_FMIN},
    {EMIT_MATH_FMA, 0, "fma", T_FMA},
};
#define N_FNS (int)(sizeof FNS / sizeof FNS[0])

int emit_math_bit(const char *libm_name) {
    for (int i = 0; i < N_FNS; i++)
        if (FNS[i].libm && !strcmp(FNS[i].libm, libm_name)) return (int)FNS[i].bit;
    return 0;
}

/* ---- expansion ---------------------------------------------------------------------------------- */

typedef struct { FILE *o; const char *prefix; int f64; } math_out;

/* A coefficient as a literal of the precision (always with a '.' or an exponent: "1" + "f" is no literal). */
static void put_number(const math_out *m, double v) {
    char buf[40];
    snprintf(buf, sizeof buf, m->f64 ? "%.17g" : "%.9g", v);
    fputs(buf, m->o);
    if (!strpbrk(buf, ".eEn")) fputs(".0", m->o);
    if (!m->f64) fputc('f', m->o);
}

/* c[0] + v (c[1] + v (... c[n-1])), Horner's scheme */
static void put_horner(const math_out *m, const double *c, int n, const char *v, size_t vlen) {
    fputc('(', m->o);
    for (int i = 0; i < n; i++) {
        put_number(m, c[i]);
        if (i + 1 < n) fprintf(m->o, " + %.*s * (", (int)vlen, v);
    }
    for (int i = 0; i < n; i++) fputc(')', m->o);
}

static const math_poly *find_poly(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof POLYS / sizeof POLYS[0]; i++)
        if (strlen(POLYS[i].name) == len && !strncmp(POLYS[i].name, name, len)) return &POLYS[i];
    return NULL;
}

static const char *find_const(const math_out *m, const char *name, size_t len) {
    for (size_t i = 0; i < sizeof CONSTS / sizeof CONSTS[0]; i++)
        if (strlen(CONSTS[i].name) == len && !strncmp(CONSTS[i].name, name, len))
            return m->f64 ? CONSTS[i].f64 : CONSTS[i].f32;
    return "?";   /* a template's typo: shows in the output and fails to compile */
}

/* erf's selection of the erfc piece: sets t and k */
static void put_erfc_pieces(const math_out *m) {
    const erfc_piece *p = m->f64 ? ERFC_64 : ERFC_32;
    int n = m->f64 ? (int)(sizeof ERFC_64 / sizeof ERFC_64[0]) : (int)(sizeof ERFC_32 / sizeof ERFC_32[0]);
    for (int i = 0; i < n; i++) {
        if (i + 1 < n) {
            fputs(i == 0 ? "    if (ax < " : "    else if (ax < ", m->o);
            put_number(m, p[i].to);
            fputs(") {\n", m->o);
        } else {
            fputs("    else {\n", m->o);
        }
        fprintf(m->o, "        %s t = ax - ", m->f64 ? "double" : "float");
        put_number(m, p[i].mid);
        fputs(";\n        k = ", m->o);
        put_horner(m, p[i].c, p[i].n, "t", 1);
        fputs(";\n    }\n", m->o);
    }
}

/* Writes a template with its tokens expanded (see above). */
static void put_template(const math_out *m, const char *s) {
    for (; *s; s++) {
        if (*s != '$') { fputc(*s, m->o); continue; }
        switch (*++s) {
        case 'P': fputs(m->prefix, m->o); break;
        case 'F': case 'L': if (!m->f64) fputc('f', m->o); break;
        case 'T': fputs(m->f64 ? "double" : "float", m->o); break;
        case 'U': fputs(m->f64 ? "uint64_t" : "uint32_t", m->o); break;
        case 'R': fputs(m->f64 ? "4" : "3", m->o); break;   /* sqrt's Newton steps from 2^-8: 2^-16, -32, -64 */
        case 'E': put_erfc_pieces(m); break;
        case '{': {
            const char *end = strchr(s, '}');
            fputs(find_const(m, s + 1, (size_t)(end - s - 1)), m->o);
            s = end;
            break;
        }
        case 'N': {   /* $N[poly]: the polynomial's degree, for comments */
            const char *end = strchr(s, ']');
            const math_poly *p = find_poly(s + 2, (size_t)(end - s - 2));
            fprintf(m->o, "%d", p ? (m->f64 ? p->n64 : p->n32) - 1 : -1);
            s = end;
            break;
        }
        case '[': {   /* $[poly:var] */
            const char *colon = strchr(s, ':'), *end = strchr(s, ']');
            const math_poly *p = find_poly(s + 1, (size_t)(colon - s - 1));
            if (p) put_horner(m, m->f64 ? p->f64 : p->f32, m->f64 ? p->n64 : p->n32, colon + 1, (size_t)(end - colon - 1));
            else fputs("?", m->o);
            s = end;
            break;
        }
        default: fputc('$', m->o); fputc(*s, m->o);
        }
    }
}

void emit_math(FILE *o, const char *prefix, int f64, unsigned used) {
    math_out m = {o, prefix, f64};
    /* close `used` under the dependencies: FNS lists each dependency before its users, so one pass
     * from the end reaches every transitive one */
    for (int i = N_FNS - 1; i >= 0; i--)
        if (used & FNS[i].bit) used |= FNS[i].deps;
    fprintf(o, "\n/* ---- math functions (%s, no libm): methods and accuracy in nnc's emit_math.c ---- */\n",
            f64 ? "double" : "float");
    for (int i = 0; i < N_FNS; i++) {
        if (!(used & FNS[i].bit)) continue;
        fputc('\n', o);
        put_template(&m, FNS[i].text);
    }
}
