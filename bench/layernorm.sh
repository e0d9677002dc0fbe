#!/bin/sh
# bench/layernorm.sh: layernorm's forward and backward passes over a batch of 64 examples of
# [64, 128] (4096 rows of 128), in the C nnc generates against torch.nn.LayerNorm(128), at
# one thread (issue 25).  Both compute y = layernorm(x), the loss sum(y) per example and
# its batch mean, and the gradients of x, weight and bias.  nnc's: bench/layernorm_step.c
# around the generated C, compiled as `nnc --exe` compiles a trainer; PyTorch's: the same
# steps under time.perf_counter().  Each prints the median and the best of REPS steps.
#
#   bench/layernorm.sh          # a few seconds
#
# Environment: REPS (default 300), CC (default cc), WORKDIR (default a fresh temporary
# directory).  Needs /usr/bin/python3 with PyTorch for the second line.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-300}
CC=${CC:-cc}
WORKDIR=${WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/nnc-layernorm.XXXXXX")}
mkdir -p "$WORKDIR"
log=$(bash "$ROOT/scripts/build.sh" 2>&1) || { printf '%s\n' "$log" >&2; exit 1; }
CBLAS_INC=$(sed -n 's/^CBLAS_INCLUDE_DIR:[A-Z]*=//p' "$ROOT/build/CMakeCache.txt")
cat > "$WORKDIR/lnb.nn" <<'NN'
model lnb
input x: [64, 128] grad
h = layernorm(x)
loss = sum(h)
train { batch = 64 }
NN
"$ROOT/build/nnc" "$WORKDIR/lnb.nn" -o "$WORKDIR/lnb.c"
# the flags `nnc --exe` compiles a trainer with (README.md, "Building a trainer")
"$CC" -std=c11 -O3 -march=native -fno-math-errno -fopenmp -D_POSIX_C_SOURCE=200809L \
    -I"$ROOT/runtime" -I"$WORKDIR" ${CBLAS_INC:+-I"$CBLAS_INC"} -DMODEL_C='"lnb.c"' \
    "$ROOT/bench/layernorm_step.c" -o "$WORKDIR/layernorm_step" "$ROOT/build/libnnr.a" -lopenblas -ljansson -lz -lm

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
"$WORKDIR/layernorm_step" "$REPS"
/usr/bin/python3 - "$REPS" <<'PY'
import sys, time, torch
torch.set_num_threads(1)
reps = int(sys.argv[1])
g = torch.Generator().manual_seed(1)
x = (torch.rand(64, 64, 128, generator=g) - 0.5).requires_grad_()
ln = torch.nn.LayerNorm(128)
with torch.no_grad():
    ln.weight.copy_(1 + 0.01 * torch.arange(128.0))
ts = []
for r in range(reps):
    t0 = time.perf_counter()
    loss = ln(x).sum((1, 2)).mean()
    x.grad = ln.weight.grad = ln.bias.grad = None
    loss.backward()
    ts.append(time.perf_counter() - t0)
ts = sorted(ts[10:])
print(f"torch.nn.LayerNorm forward+backward [64, 64, 128]: median {1e6 * ts[len(ts) // 2]:.1f} us, "
      f"best {1e6 * ts[0]:.1f} us")
PY
