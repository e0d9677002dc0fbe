#!/usr/bin/env bash
# embedded.sh NNC WORKDIR — the embedded target (nnc --target embedded, docs/embedded.md):
#
# - for every example and gradcheck model, the embedded file against the host's on the
#   same parameters and batch: init, loss, gradients, update and predict within 1e-5
#   (tests/embedded/equal.py writes each comparison program);
# - its object has no malloc, free, aligned_alloc, fopen, printf, cblas_* or omp_*
#   symbols (nm), and it compiles warning-free as C99 and C11 under gcc and clang, and for
#   a Cortex-M4F with arm-none-eabi-gcc;
# - --weights bakes a checkpoint: predict gives the host's predict on the same checkpoint
#   (with its input standardization); --infer-only has no training API and its RAM is the
#   activations alone; --summary states RAM and flash;
# - what cannot be is refused with a message.
set -u
. "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(dirname "$(realpath "$1")")
start_work "$1" "$2"
HOSTLIBS=("$BUILD/libnnr.a" -lopenblas -ljansson -lz -lm -fopenmp)
CF=(-std=c99 -O1 -fopenmp-simd -Wall -Wextra -Werror ${NNC_CFLAGS:-})

# equal MODEL.nn [FLAGS...]: the embedded target (with FLAGS) equals the host's on MODEL; the
# host's object is made once per model, in eq_MODEL/, each embedded build in a directory of
# its own inside
equal() {
    local nn=$1 d v rc
    shift
    d=eq_$(basename "$nn" .nn)
    v=$d/emb$(echo "$@" | tr -c 'a-z\n' _)
    mkdir -p "$v" || return 1
    { [ -f "$d/host.o" ] || { "$NNC" "$nn" -o "$d/host.c" &&
          gcc -std=c11 -O1 -fopenmp ${NNC_CFLAGS:-} -I"$SRC/runtime" -c "$d/host.c" -o "$d/host.o"; }; } &&
        "$NNC" "$nn" --target embedded "$@" -o "$v/emb.c" &&
        gcc "${CF[@]}" -c "$v/emb.c" -o "$v/emb0.o" &&
        nm --defined-only -g "$v/emb0.o" | awk '{print $3" emb_"$3}' >"$v/syms" &&
        objcopy --redefine-syms="$v/syms" "$v/emb0.o" "$v/emb.o" &&
        python3 "$SRC/tests/embedded/equal.py" host.h "$v/emb.h" "$v/equal.c" &&
        gcc -std=c11 -O1 -fopenmp ${NNC_CFLAGS:-} -I"$SRC/runtime" -I"$d" "$v/equal.c" "$d/host.o" "$v/emb.o" \
            "${HOSTLIBS[@]}" -o "$v/equal" &&
        "$v/equal" >"$v/equal.log"
    rc=$?
    [ $rc -ne 0 ] && grep -v "^ok" "$v/equal.log" 2>/dev/null
    return $rc
}

models=("$SRC"/examples/*.nn "$SRC"/examples/*/*.nn "$SRC"/tests/gradcheck/*.nn)
for nn in "${models[@]}"; do
    check "equal: $(basename "$(dirname "$nn")")/$(basename "$nn")" equal "$nn"
done
# --infer-only: the inference plan alone, its tensors sharing memory where their lifetimes
# do not meet (plan.c): predict must not change
for nn in "${models[@]}"; do
    check "equal, --infer-only: $(basename "$(dirname "$nn")")/$(basename "$nn")" equal "$nn" --infer-only
done

# --math inline: the file's own exp, log, tanh... (codegen/emit_math.c) within a few ulp of
# libm's, so the models still agree within 1e-5
for nn in "$SRC"/examples/fashion_mlp.nn "$SRC"/examples/fashion_cnn.nn "$SRC"/examples/gpt/gpt.nn \
          "$SRC"/tests/gradcheck/{erf_silu,gelu,trig,elu_softplus,lstm,pow_half,prob_losses,log}.nn; do
    check "equal, --math inline: $(basename "$nn")" equal "$nn" --math inline
done
# tensors named as the file's own functions and the model's members: renamed, never hiding them
cat >mm.nn <<'NN'
model mm
input  in_use: [8]
target y: [4]
mm_gemm = dense(in_use, 4)
mm_tanhf = sigmoid(mm_gemm)
mm_expf = exp(mm_gemm) + mm_tanhf
loss = mse(tanh(mm_expf), y)
output mm_weights = mm_expf
NN
check "equal, --math inline: tensors named mm_gemm, mm_expf, mm_tanhf, an input named in_use" \
    equal "$PWD/mm.nn" --math inline
# ... each function against glibc over its range (max ulp), warning-free, no libm symbol
check "--math inline: every function within 4 ulp of glibc, no libm symbol on a Cortex-M4F" \
    sh -c "cc -O2 -I'$SRC/codegen' -o test_math '$SRC/tests/embedded/test_math.c' && ./test_math \"\$PWD/math_work\""

# ---- symbols and warnings -------------------------------------------------------------
"$NNC" "$SRC/examples/fashion_cnn.nn" --target embedded -o cnn.c
"$NNC" "$SRC/examples/fashion_mlp.nn" --target embedded -o mlp.c
forbidden() {   # forbidden OBJ: none of the symbols the embedded target must not use
    ! nm "$1" | grep -E ' U (malloc|calloc|realloc|free|aligned_alloc|posix_memalign|fopen|fwrite|fread|printf|fprintf|snprintf|puts|cblas_.*|omp_.*|GOMP_.*|nnr_.*)$'
}
for m in mlp cnn; do
    check "$m: gcc -std=c99 -Wall -Wextra -pedantic, no allocation, stdio, BLAS or OpenMP" \
        sh -c "gcc -std=c99 -O2 -fopenmp-simd -Wall -Wextra -pedantic -Werror -c $m.c -o $m.o && nm $m.o | grep ' U '"
    check "$m: nm shows none of malloc, free, aligned_alloc, fopen, printf, cblas_*, omp_*" forbidden $m.o
    check "$m: clang -std=c11 -Wall -Wextra -pedantic" clang -std=c11 -O2 -fopenmp-simd -Wall -Wextra -pedantic -Werror -c $m.c -o /dev/null
    check "$m: g++ reads the header" sh -c "echo '#include \"$m.h\"
int main() { return 0; }' > h_$m.cc && g++ -Wall -Wextra -Werror -c h_$m.cc -o /dev/null"
    if command -v arm-none-eabi-gcc >/dev/null; then
        check "$m: arm-none-eabi-gcc for a Cortex-M4F, warning-free" arm-none-eabi-gcc -std=c99 -O2 -mcpu=cortex-m4 -mthumb \
            -mfloat-abi=hard -mfpu=fpv4-sp-d16 -fopenmp-simd -Wall -Wextra -Werror -c $m.c -o arm_$m.o
        check "$m: the Cortex-M4F object has none of them either" forbidden arm_$m.o
    else
        fail "$m: arm-none-eabi-gcc is missing (scripts/deps.sh installs gcc-arm-none-eabi)"
    fi
done

# ---- --weights, --infer-only, --summary -------------------------------------------------
fashion_safetensors 200 data.safetensors
"$NNC" "$SRC/examples/fashion_mlp.nn" --exe -o mlp_host >/dev/null
./mlp_host train --train data.safetensors --epochs 1 --standardize --save ck.safetensors >train.log 2>&1
check "the host trains a checkpoint with a standardization" test -s ck.safetensors
./mlp_host predict --load ck.safetensors --input data.safetensors --out host_probs.csv >/dev/null 2>&1
python3 - <<'PY'
import json, struct
b = open('data.safetensors', 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
lo, hi = h['x']['data_offsets']
open('x.bin', 'wb').write(b[8 + n + lo:8 + n + hi])
PY
cat >predict.c <<'EOF'
#include <stdio.h>
#include "m.h"
static float x[200 * 784], p[200 * 10];
int main(void) {
    FILE *f = fopen("x.bin", "rb");
    if (!f || fread(x, sizeof x, 1, f) != 1) return 2;
    fashion_mlp *m = fashion_mlp_new();
    if (!m || fashion_mlp_new()) return 3;   /* one model a file */
    fashion_mlp_predict(m, 200, x, p);
    for (int i = 0; i < 200; i++)
        for (int k = 0; k < 10; k++) printf("%.9g%c", p[i * 10 + k], k < 9 ? ',' : '\n');
    fashion_mlp_free(m);
    return fashion_mlp_new() ? 0 : 4;
}
EOF
same_probs() {   # same_probs CSV: predict's probabilities within 1e-5 of the host's
    python3 - "$1" <<'PY'
import sys
host = [l for l in open('host_probs.csv') if l[0].isdigit() or l[0] in '-.']
emb = open(sys.argv[1]).read().split('\n')[:-1]
def rows(lines): return [[float(v) for v in l.split(',')[:10]] for l in lines]   # the host's last column: argmax
h, e = rows(host), rows(emb)
assert len(h) == len(e) == 200, (len(h), len(e))
worst = max(abs(a - b) for r, s in zip(h, e) for a, b in zip(r, s))
print('worst difference', worst)
sys.exit(worst > 1e-5)
PY
}
for mode in train infer; do
    flags=(--target embedded --weights ck.safetensors --batch 8)
    [ $mode = infer ] && flags+=(--infer-only)
    "$NNC" "$SRC/examples/fashion_mlp.nn" "${flags[@]}" -o m.c
    gcc "${CF[@]}" -D_POSIX_C_SOURCE=200809L predict.c m.c -lm -o predict_$mode && ./predict_$mode >emb_$mode.csv
    check "--weights ($mode): predict equals the host's predict on the checkpoint" same_probs emb_$mode.csv
done
check "--infer-only: no training API in the header" sh -c "! grep -E '(train_step|backward|_grads)\(' m.h"
check "--infer-only with --weights: parameters in flash, RAM is the activations" \
    sh -c "grep -q 'FASHION_MLP_RAM_PARAMS 0' m.h && grep -q 'FASHION_MLP_RAM_GRADS 0' m.h &&
           grep -q 'FASHION_MLP_RAM_BYTES' m.h && grep -q 'static const float fashion_mlp_weights' m.c"
expect "--summary prints the embedded target's RAM" 0 "embedded target" "$NNC" "$SRC/examples/fashion_mlp.nn" --target embedded --summary

# ---- refused ----------------------------------------------------------------------------
expect "--weights without --target embedded" 2 "add --target embedded" "$NNC" "$SRC/examples/fashion_mlp.nn" --weights ck.safetensors -o x.c
expect "--target embedded --exe" 2 "trainer program" "$NNC" "$SRC/examples/fashion_mlp.nn" --target embedded --exe -o x
expect "--target other" 2 "host (the default) or embedded" "$NNC" "$SRC/examples/fashion_mlp.nn" --target gpu -o x.c
expect "--batch 0" 2 "--batch takes" "$NNC" "$SRC/examples/fashion_mlp.nn" --batch 0 -o x.c
expect "--weights of another model" 2 "has no tensor for the model's parameter" \
    "$NNC" "$SRC/examples/fashion_cnn.nn" --target embedded --weights ck.safetensors -o x.c
expect "--weights of a missing file" 2 "--weights" "$NNC" "$SRC/examples/fashion_mlp.nn" --target embedded --weights nope.safetensors -o x.c
expect "a second backward without zero_grad is refused" 0 "zero_grad first" sh -c "cat > twice.c <<'EOF'
#include <stdio.h>
#include \"mlp.h\"
static float x[784]; static int y[1];
int main(void) {
    fashion_mlp *m = fashion_mlp_new();
    fashion_mlp_init(m, 1);
    fashion_mlp_loss_grad(m, 1, x, y);
    fashion_mlp_forward(m, 1, x, y);
    if (fashion_mlp_backward(m) != -1) return 1;
    puts(fashion_mlp_error());
    return 0;
}
EOF
gcc -std=c99 -O1 -fopenmp-simd -Wall -Werror twice.c mlp.c -lm -o twice && ./twice"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
