#!/bin/sh
# bench/attention.sh: attention's fused kernel (codegen/emit_attention.c) against the
# composition of primitives it replaces, softmax((q @ transpose(k)) * scale + mask) @ v,
# forward + backward, and against PyTorch.
#
# The first two nnc models take one head per example, [T, d] operands, causal
# (the composition reads its mask, 0 or -inf, as an input), loss = sum(o * t); the batch
# is B x HEADS examples, the work of B examples of HEADS heads.  Two more, the fused op and
# the composition (`@` on stacks, transpose(k, -1, -2), a const causal mask) on
# [HEADS, T, d] per example at batch B, are the GPT example's shape; PyTorch (1 thread,
# its formula: torch 1.13 has no scaled_dot_product_attention) runs the same shape.  Each
# program times STEPS steps of forward + backward after 5 warm-up ones and prints the
# minimum and the median microseconds per step (bench/attention_step.c); this script
# prints them and the ratios fused / composition.
#
#   bench/attention.sh            # B = 64, HEADS = 4, T = 64, d = 32; about 30 s
#   B=32 bench/attention.sh
#
# Environment: B (64), HEADS (4), T (64), D (32), STEPS (200), THREADS (1), CC (cc),
# PYTHON (/usr/bin/python3; NOTORCH=1 skips PyTorch), WORKDIR (a fresh temporary directory).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-64} HEADS=${HEADS:-4} T=${T:-64} D=${D:-32} STEPS=${STEPS:-200} THREADS=${THREADS:-1}
CC=${CC:-cc} PYTHON=${PYTHON:-/usr/bin/python3}
WORKDIR=${WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/nnc-attn.XXXXXX")}
mkdir -p "$WORKDIR"
log=$(bash "$ROOT/scripts/build.sh" 2>&1) || { printf '%s\n' "$log" >&2; exit 1; }
CBLAS_INC=$(sed -n 's/^CBLAS_INCLUDE_DIR:[A-Z]*=//p' "$ROOT/build/CMakeCache.txt")
SCALE=$(awk "BEGIN { printf \"%.9g\", 1 / sqrt($D) }")
N=$((B * HEADS))

cat > "$WORKDIR/att_fused.nn" <<NN
model att_fused
input q: [$T, $D] grad
input k: [$T, $D] grad
input v: [$T, $D] grad
target t: [$T, $D]
o = attention(q, k, v, causal=true)
loss = sum(o * t)
train { batch = $N }
NN
cat > "$WORKDIR/att_comp.nn" <<NN
model att_comp
input q: [$T, $D] grad
input k: [$T, $D] grad
input v: [$T, $D] grad
input mask: [$T, $T]
target t: [$T, $D]
o = softmax((q @ transpose(k)) * $SCALE + mask) @ v
loss = sum(o * t)
train { batch = $N }
NN
cat > "$WORKDIR/att_heads.nn" <<NN
model att_heads
input q: [$HEADS, $T, $D] grad
input k: [$HEADS, $T, $D] grad
input v: [$HEADS, $T, $D] grad
target t: [$HEADS, $T, $D]
o = attention(q, k, v, causal=true)
loss = sum(o * t)
train { batch = $B }
NN
cat > "$WORKDIR/att_heads_comp.nn" <<NN
model att_heads_comp
input q: [$HEADS, $T, $D] grad
input k: [$HEADS, $T, $D] grad
input v: [$HEADS, $T, $D] grad
target t: [$HEADS, $T, $D]
const causal: [$T, $T] = causal_mask
o = softmax((q @ transpose(k, -1, -2)) * $SCALE + causal) @ v
loss = sum(o * t)
train { batch = $B }
NN

build() {   # build NAME INPUTS
    "$ROOT/build/nnc" "$WORKDIR/$1.nn" -o "$WORKDIR/$1.c"
    # the flags `nnc --exe` compiles a trainer with (README.md, "Building a trainer")
    "$CC" -std=c11 -O3 -march=native -fno-math-errno -fopenmp -D_POSIX_C_SOURCE=200809L \
        -I"$ROOT/runtime" -I"$WORKDIR" ${CBLAS_INC:+-I"$CBLAS_INC"} -DMODEL_C="\"$1.c\"" -DM="$1" \
        -DINPUTS="$2" "$ROOT/bench/attention_step.c" -o "$WORKDIR/$1" "$ROOT/build/libnnr.a" \
        -lopenblas -ljansson -lz -lm
}
build att_fused "q, k, v, t"
build att_comp "q, k, v, mask, t"
build att_heads "q, k, v, t"
build att_heads_comp "q, k, v, t"

export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
echo "B=$B heads=$HEADS T=$T d=$D causal, forward + backward, us per step, $THREADS thread(s)"
fused=$("$WORKDIR/att_fused" "$N" "$STEPS" 2>/dev/null)
comp=$("$WORKDIR/att_comp" "$N" "$STEPS" "$T" 2>/dev/null)
heads=$("$WORKDIR/att_heads" "$B" "$STEPS" 2>/dev/null)
heads_comp=$("$WORKDIR/att_heads_comp" "$B" "$STEPS" 2>/dev/null)
echo "one head per example, batch $N:"
echo "  fused attention           $fused"
echo "  softmax(q @ k^T ...) @ v  $comp"
echo "$fused $comp" | awk '{ printf "  fused / composition: min %.3f median %.3f\n", $2 / $6, $4 / $8 }'
echo "[heads, T, d] per example, batch $B:"
echo "  fused attention           $heads"
echo "  the same composed         $heads_comp"
echo "$heads $heads_comp" | awk '{ printf "  fused / composition: min %.3f median %.3f\n", $2 / $6, $4 / $8 }'
if [ -z "${NOTORCH:-}" ]; then
    torch=$("$PYTHON" "$ROOT/bench/attention_torch.py" "$B" "$HEADS" "$T" "$D" "$STEPS" "$THREADS")
    echo "  PyTorch                   $torch"
    echo "$heads $torch" | awk '{ printf "  nnc / PyTorch: min %.3f median %.3f\n", $2 / $6, $4 / $8 }'
fi
