#!/usr/bin/env bash
# numerics.sh NNC WORKDIR — numerical edge cases of generated code, checked against the
# numbers PyTorch gives for the same computation (torch 2.x, written here as constants).
#
# bce(p, t) clamps each logarithm at -100 as PyTorch's BCELoss does: once a sigmoid
# saturates (p rounds to exactly 1 or 0) the loss and its gradient stay finite, and a
# classifier that separates its data keeps training instead of dying on log(0).
set -u
. "$(dirname "$0")/lib.sh"
NNC=$(realpath "$1")
WORK=$2
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(dirname "$NNC")
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
CFLAGS=(-std=c11 -O2 -fopenmp -Wall -Wextra -Werror ${NNC_CFLAGS:-} -I. -I"$SRC/runtime")   # the sanitizers' flags in --sanitize
LIBS=("$BUILD/libnnr.a" -lopenblas -ljansson -lz -lm)

# bce of sigmoid(z) on three examples given on the command line: the loss, then dloss/dz
cat >bce.nn <<'NN'
model bce_sat
input z: [3] grad
target t: [3]
loss = bce(sigmoid(z), t)
train { batch = 1 }
NN
cat >bce_main.c <<'C'
#include "bce_sat.h"
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    REAL z[3], t[3];
    for (int i = 0; i < 3; i++) z[i] = (REAL)atof(argv[1 + i]), t[i] = (REAL)atof(argv[4 + i]);
    bce_sat *m = bce_sat_new();
    if (!m || argc != 7) return 2;
    double loss = bce_sat_loss_grad(m, 1, z, t);
    const REAL *g = bce_sat_grad_z(m);
    printf("%.9g %.9g %.9g %.9g\n", loss, (double)g[0], (double)g[1], (double)g[2]);
    bce_sat_free(m);
    return 0;
}
C
# near A B TOL: A is a finite number within TOL x max(1, |B|) of B
near() {
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { if (a !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/) exit 1
        d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; if (m < 1) m = 1; exit !(d <= t * m) }'
}
# bce_case NAME DTYPE "Z..." "T..." LOSS "GRAD...": output of the driver within tolerance of PyTorch's
bce_case() {
    local name=$1 dtype=$2 z=$3 t=$4 want_loss=$5 want_grad=$6
    read -r l g0 g1 g2 < <(./bce_$dtype $z $t)
    local w=($want_grad)
    check "$name: loss $l (PyTorch $want_loss)" near "$l" "$want_loss" 1e-6
    check "$name: dloss/dz = $g0 $g1 $g2 (PyTorch $want_grad)" \
        bash -c "near() { $(declare -f near | tail -n +2); }; near $g0 ${w[0]} 1e-6 && near $g1 ${w[1]} 1e-6 && near $g2 ${w[2]} 1e-6"
}
for dtype in f32 f64; do
    flag=$([ $dtype = f64 ] && echo "--dtype f64")
    real=$([ $dtype = f64 ] && echo double || echo float)
    check "compile bce ($dtype)" bash -c "'$NNC' bce.nn $flag -o bce_sat.c && cc ${CFLAGS[*]} -DREAL=$real bce_main.c bce_sat.c ${LIBS[*]} -o bce_$dtype"
done
# torch.nn.functional.binary_cross_entropy(torch.sigmoid(z), t) in float32, and z.grad
bce_case "saturated on both sides (f32)" f32 "20 -100 3" "1 0 1" 0.0161957815 "0 0 -0.0158086214"
bce_case "sigmoid rounds to 1 at z = 17, right answer (f32)" f32 "17 17 17" "1 1 1" 0 "0 0 0"
bce_case "sigmoid rounds to 0 at z = -90, right answer (f32)" f32 "-90 -90 -90" "0 0 0" 0 "0 0 0"
bce_case "saturated and wrong: log clamped at -100 (f32)" f32 "20 -100 0" "0 1 1" 66.8977127 "0 0 -0.166666672"
# the same in float64, where sigmoid saturates later: at z = 40 and -800
bce_case "saturated on both sides (f64)" f64 "40 -800 3" "1 0 1" 0.0161957839 "0 0 -0.0158086244"
bce_case "saturated and wrong: log clamped at -100 (f64)" f64 "40 -800 0" "0 1 1" 66.8977157 "0 0 -0.166666667"

# A logistic regression on two clusters far apart, trained long and fast enough to
# saturate its sigmoid (the shape of Keras's iris example): it must finish, with a finite
# loss near 0.  The same model with bce's unclamped formula,
# -mean(t * log(p) + (1 - t) * log(1 - p)), stops with a NaN loss in epoch 14.
python3 - <<'PY'
import json, struct
n = 64
xs, ts = [], []
for i in range(n):
    a = (i % 8) / 7.0 - 0.5; b = (i // 8) / 7.0 - 0.5
    s = 1 if a + b > 0 else -1          # two clusters, well apart: the sigmoid saturates
    xs += [10 * a + 5 * s, 10 * b + 5 * s]; ts.append(1.0 if s > 0 else 0.0)
def save(path, tensors):
    h, data, off = {}, b'', 0
    for name, (shape, vals) in tensors.items():
        raw = struct.pack('<%df' % len(vals), *vals)
        h[name] = {'dtype': 'F32', 'shape': shape, 'data_offsets': [off, off + len(raw)]}
        data += raw; off += len(raw)
    hb = json.dumps(h).encode(); hb += b' ' * (-len(hb) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(hb)) + hb + data)
save('sep.safetensors', {'x': ([n, 2], xs), 't': ([n, 1], ts)})
PY
cat >sep.nn <<'NN'
model sep
input x: [2]
target t: [1]
p = sigmoid(dense(x, 1))
loss = bce(p, t)
train {
  batch = 16
  optimizer = sgd(lr=5)
}
NN
check "compile the separable classifier" "$NNC" sep.nn --exe -o sep
check "400 epochs of a saturating sigmoid + bce train to the end" \
    ./sep train --train sep.safetensors --epochs 400 --log sep.csv --save sep.safetensors.out
last=$(tail -1 sep.csv 2>/dev/null | cut -d, -f2)
check "its last epoch's loss ($last) is finite and below 1e-4" near "$last" 0 1e-4
finish
