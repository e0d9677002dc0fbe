# gen_coeffs.py - derives the polynomial coefficients codegen/emit_math.c embeds (Chebyshev fits
# with mpmath, near-minimax), rounded to float / double, and prints the C tables.  A developer's
# tool, not a test: it needs Debian's python3-mpmath, which nnc does not.  Run: python3 gen_coeffs.py
import struct, sys
from mpmath import mp, mpf, chebyfit, expm1, atanh, sin, cos, erf, erfc, exp, sqrt, pi, log, polyval
mp.dps = 60

def rnd(v, f64):
    return float(v) if f64 else struct.unpack('f', struct.pack('f', float(v)))[0]

def series_guard(fn, taylor, eps=mpf('1e-12')):
    return lambda t: taylor(t) if abs(t) < eps else fn(t)

# name: (function of the fit variable, interval, target max abs error of that function per precision)
def fits(f64):
    U = mpf(2)**(-53 if f64 else -24)      # unit roundoff
    r_exp = mpf('0.3466') * mpf('1.03')
    z_log = ((sqrt(2)-1)/(sqrt(2)+1))**2 * mpf('1.01')
    r_trig = pi/4 * mpf('1.01')
    xe = mpf('0.875')
    xend = mpf(6) if f64 else mpf(4)
    F = {
      # expm1(r) = r + r^2/2 + r^3 P(r)
      'expm1': (series_guard(lambda r: (expm1(r) - r - r*r/2)/r**3, lambda r: mpf(1)/6 + r/24 + r*r/120),
                [-r_exp, r_exp], U/8),
      # 2 atanh(s) = 2s + s R, R = z Q(z), z = s^2  (pow needs ~2^-8 U)
      'log': (series_guard(lambda z: (2*atanh(sqrt(z)) - 2*sqrt(z))/sqrt(z)**3, lambda z: mpf(2)/3 + 2*z/5 + 2*z*z/7),
              [0, z_log], U/256),
      # pow's log: 2 atanh(s) = 2s + 2s^3/3 + s^5 Q1(z)
      'logx': (series_guard(lambda z: (2*atanh(sqrt(z)) - 2*sqrt(z) - 2*sqrt(z)**3/3)/sqrt(z)**5, lambda z: mpf(2)/5 + 2*z/7 + 2*z*z/9),
              [0, z_log], U/64),
      # sin r = r + r^3 S(z)
      'sin': (series_guard(lambda z: (sin(sqrt(z)) - sqrt(z))/sqrt(z)**3, lambda z: -mpf(1)/6 + z/120),
              [0, r_trig**2], U/8),
      # cos r = 1 - z/2 + z^2 C(z)
      'cos': (series_guard(lambda z: (cos(sqrt(z)) - 1 + z/2)/z**2, lambda z: mpf(1)/24 - z/720),
              [0, r_trig**2], U/8),
      # erf x = x + x H(z), |x| < 0.875
      'erf': (series_guard(lambda z: erf(sqrt(z))/sqrt(z) - 1, lambda z: 2/sqrt(pi) - 1 - 2/sqrt(pi)*z/3),
              [0, xe**2], U/8),
    }
    return F, xe, xend, U

def fit(fn, iv, target, maxdeg=30):
    for n in range(1, maxdeg):
        p, err = chebyfit(fn, iv, n, error=True)
        if err < target:
            return p, err
    raise SystemExit('no fit')

def fmt(v, f64):
    return repr(v) if f64 else '%.9g' % v

for f64 in (0, 1):
    F, xe, xend, U = fits(f64)
    print('/* %s */' % ('double' if f64 else 'float'))
    for name, (fn, iv, target) in F.items():
        p, err = fit(fn, iv, target)
        c = [rnd(v, f64) for v in reversed(p)]   # lowest degree first
        print('%-6s deg %2d err %.3g (U %.3g): {%s}' % (name, len(c)-1, float(err), float(U), ', '.join(fmt(v, f64) for v in c)))
    # erfc(x) e^(x^2) on pieces of [0.875, xend]
    K = lambda x: erfc(x)*exp(x*x)
    cuts = [xe, mpf(2), xend] if not f64 else [xe, mpf('1.75'), mpf('2.75'), mpf('4'), xend]
    for a, b in zip(cuts, cuts[1:]):
        m = (a+b)/2
        g = lambda t, m=m: K(t + m)          # fit in t = x - mid
        p, err = fit(g, [a-m, b-m], U/4 * (1 if a < 1 else 2))
        c = [rnd(v, f64) for v in reversed(p)]
        print('erfc [%g,%g] mid %g deg %d err %.3g: {%s}' % (a, b, m, len(c)-1, float(err), ', '.join(fmt(v, f64) for v in c)))
