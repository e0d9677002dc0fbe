#!/usr/bin/env bash
# run.sh: the embedded example end to end, in a temporary directory.
#
#   examples/embedded/run.sh [BUILD_DIR]        (default: the repository's build/; nnc is BUILD_DIR/nnc)
#
# 1. bakes the first 20 Fashion-MNIST test images into C (bake_images.py), and writes the
#    same 20 records as IDX files for the host;
# 2. for fashion_mlp and fashion_cnn: builds the host trainer (`nnc M.nn --exe`), trains it
#    for one epoch on the first TRAIN_N training images (--save ck.safetensors), predicts the 20 images on the host, generates
#    the embedded C (`--target embedded --weights ck.safetensors --infer-only --batch 1`),
#    cross-compiles classify.c with it for the Cortex-M4F, runs it under qemu (mps2-an386)
#    and compares the classes the device printed with the host's;
# 3. carries fashion_mlp's trained parameters over to fashion_mlp_tail.nn (rename_params.py),
#    generates it for training (`--target embedded --weights tail.safetensors --batch 20`),
#    runs finetune.c under qemu: the last layer trains for 10 steps, and its loss must fall;
# 4. prints arm-none-eabi-size of each ELF.
# Exits 0 when everything ran and matched, 1 otherwise.  KEEP=1 keeps the temporary
# directory (its path is printed); EPOCHS (default 1), TRAIN_N (training examples, default
# 10000 of the 60000) and QEMU_TIMEOUT (seconds, default
# 300) can be set in the environment.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
EXAMPLES=$(cd "$HERE/.." && pwd)
BUILD=$(cd "${1:-$EXAMPLES/../build}" && pwd)
NNC=$BUILD/nnc
DATA=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
EPOCHS=${EPOCHS:-1}
TRAIN_N=${TRAIN_N:-10000}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-300}
N=20

die() { echo "run.sh: $*" >&2; exit 1; }
for tool in arm-none-eabi-gcc arm-none-eabi-size qemu-system-arm python3 timeout; do
    command -v $tool >/dev/null || die "$tool not found (Debian: gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)"
done
[ -x "$NNC" ] || die "$NNC: no nnc there (build it: bash scripts/build.sh)"
"$NNC" --help 2>&1 | grep -q -- '--target' || die "$NNC has no --target (an nnc without the embedded target)"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    [ -r "$DATA/$f" ] || die "$DATA/$f: missing (Debian: dataset-fashion-mnist)"
done

T=$(mktemp -d "${TMPDIR:-/tmp}/nnc-embedded.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then echo "run.sh: working in $T (kept)"; else trap 'rm -rf "$T"' EXIT; fi
cd "$T"

ARCH="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
CC="arm-none-eabi-gcc $ARCH -O2"
QEMU="qemu-system-arm -machine mps2-an386 -nographic -semihosting-config enable=on,target=native -kernel"
status=0
elfs=()

# cross-compile: OUT.elf from the generated model MODEL.c and the program PROG.c (extra flags after)
cross() {
    local out=$1 model=$2 prog=$3; shift 3
    # the generated C as its header asks: C99, the simd pragmas without an OpenMP runtime
    $CC -std=c99 -fopenmp-simd -ffunction-sections -fdata-sections -c "$model.c" -o "$model.o"
    $CC -Wall -Wextra -ffunction-sections -fdata-sections -I. -I"$HERE" "$@" -c "$HERE/$prog.c" -o "$out.prog.o"
    $CC -Wall -Wextra -c "$HERE/startup.c" -o startup.o
    $CC -Wall -Wextra -ffunction-sections -fdata-sections -c test_images.c -o test_images.o
    $CC --specs=rdimon.specs -T "$HERE/link.ld" -Wl,--gc-sections -Wl,-Map="$out.map" \
        startup.o "$out.prog.o" "$model.o" test_images.o -lm -o "$out.elf"
    elfs+=("$out.elf")
}

# run an ELF under qemu: its output to OUT.txt (and, less the probs lines, the terminal);
# the status is main's
device() {
    local out=$1 rc=0 t0 t1
    echo "--- qemu: $out.elf"
    t0=$(date +%s.%N)
    timeout "$QEMU_TIMEOUT" $QEMU "$out.elf" > "$out.txt" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    grep -v '^probs ' "$out.txt" || true
    echo "(qemu: status $rc, $(awk -v a=$t0 -v b=$t1 'BEGIN { printf "%.1f", b - a }') s)"
    [ $rc = 124 ] && echo "run.sh: $out.elf did not finish in ${QEMU_TIMEOUT}s" >&2
    return $rc
}

echo "=== baking the first $N test images"
python3 "$HERE/bake_images.py" -n $N --dir "$DATA" -o test_images --idx t$N
# the first TRAIN_N training examples (IDX: a count in the header, then the records): a
# model trained on them classifies well enough, and the test under AddressSanitizer
# (scripts/test.sh --sanitize) stays within minutes
python3 - "$DATA" "$TRAIN_N" <<'PY'
import gzip, struct, sys
data, n = sys.argv[1], int(sys.argv[2])
for kind, record in (('images', 784), ('labels', 1)):
    raw = gzip.open('%s/train-%s-idx%d-ubyte.gz' % (data, kind, 3 if kind == 'images' else 1)).read()
    head = 16 if kind == 'images' else 8
    count = min(n, struct.unpack('>I', raw[4:8])[0])
    open('train-%s' % kind, 'wb').write(raw[:4] + struct.pack('>I', count) + raw[8:head] + raw[head:head + count * record])
PY

for model in fashion_mlp fashion_cnn; do
    echo "=== $model"
    "$NNC" "$EXAMPLES/$model.nn" --exe -o "$model-host" >/dev/null
    ./"$model-host" train --train x=train-images y=train-labels \
        --test x="$DATA/t10k-images-idx3-ubyte.gz" y="$DATA/t10k-labels-idx1-ubyte.gz" \
        --epochs "$EPOCHS" --save "$model.safetensors" 2>/dev/null | grep -E '^(epoch|test accuracy)'
    ./"$model-host" predict --load "$model.safetensors" --input x=t$N-images-idx3-ubyte --out "$model-host.csv"
    # the host's classes: the last column, probs_argmax
    tail -n +2 "$model-host.csv" | awk -F, '{print $NF}' > "$model-host.classes"

    "$NNC" "$EXAMPLES/$model.nn" --target embedded --weights "$model.safetensors" --infer-only --batch 1 -o "$model.c"
    flags=()
    [ $model = fashion_cnn ] && flags=(-DMODEL_CNN)
    cross "classify-$model" "$model" classify -DNNR_PRINT_PROBS "${flags[@]}"
    if ! device "classify-$model"; then
        echo "FAIL: classify-$model.elf did not exit 0"; status=1; continue
    fi
    sed -n 's/^image [0-9]*: class \([0-9]*\) (label [0-9]*)$/\1/p' "classify-$model.txt" > "$model-device.classes"
    if [ "$(wc -l < "$model-device.classes")" != $N ]; then
        echo "FAIL: $model: the device printed $(wc -l < "$model-device.classes") classes, not $N"; status=1
    elif ! cmp -s "$model-host.classes" "$model-device.classes"; then
        echo "FAIL: $model: the device's classes differ from the host's predict:"
        paste "$model-host.classes" "$model-device.classes" | awk '{ printf "image %d: host %s device %s%s\n", NR-1, $1, $2, $1 == $2 ? "" : "   <-- differs" }'
        status=1
    else
        echo "$model: the device's $N classes match the host's predict: $(tr '\n' ' ' < "$model-device.classes")"
    fi
    # and the probabilities, to 1e-4 absolute (float32 sums in another order)
    if ! awk -F'[ ,]+' 'NR == FNR { if (FNR > 1) for (j = 1; j <= 10; j++) h[FNR - 2, j - 1] = $j; next }
              /^probs / { k = $2 + 0; n++
                          for (j = 0; j < 10; j++) { e = $(j + 3) - h[k, j]; if (e < 0) e = -e
                                                     if (e > worst) worst = e } }
              END { printf "worst difference of a probability: %.3g\n", worst
                    exit !(n > 0 && worst <= 1e-4) }' "$model-host.csv" "classify-$model.txt"; then
        echo "FAIL: $model: the device's probabilities differ from the host's by more than 1e-4"; status=1
    fi
done

echo "=== fashion_mlp_tail: training the last layer on the device"
./fashion_mlp-host export --load fashion_mlp.safetensors --out fashion_mlp.params.safetensors
python3 "$HERE/rename_params.py" fashion_mlp.params.safetensors tail.safetensors \
    h1.weight=h1_weight h1.bias=h1_bias h2.weight=h2_weight h2.bias=h2_bias
"$NNC" "$HERE/fashion_mlp_tail.nn" --target embedded --weights tail.safetensors --batch $N -o fashion_mlp_tail.c
cross finetune fashion_mlp_tail finetune
if ! device finetune; then echo "FAIL: finetune.elf did not exit 0 (the loss did not fall?)"; status=1; fi

# the reference: the same program against nnc's host target, from the same parameters
echo "--- host: finetune (nnc's host target, libnnr)"
SRC=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$BUILD/CMakeCache.txt" 2>/dev/null || true)
[ -r "$SRC/runtime/nnr.h" ] || SRC=$(cd "$HERE/../.." && pwd)   # the build's sources, else these
mkdir -p host
"$NNC" "$HERE/fashion_mlp_tail.nn" -o host/fashion_mlp_tail.c
# NNC_CFLAGS: the flags libnnr was built with, as for --exe (scripts/test.sh --sanitize's)
cc -std=c11 -O2 -Wall -Wextra -fopenmp ${NNC_CFLAGS:-} -Ihost -I. -I"$HERE" -I"$SRC/runtime" \
    $(pkg-config --cflags openblas 2>/dev/null || true) -DNNR_HOST_LOAD='"tail.safetensors"' \
    "$HERE/finetune.c" host/fashion_mlp_tail.c test_images.c "$BUILD/libnnr.a" \
    -lopenblas -ljansson -lz -lm -o finetune-host
./finetune-host > finetune-host.txt || true
cat finetune-host.txt
# every step's loss within 1e-4 relative (float32 sums in another order; no dropout)
if ! awk '/^step [0-9]+: loss/ { s = $2; sub(":", "", s); v = $4
              if (FILENAME == ARGV[1]) h[s] = v; else { d[s] = v; n++ } }
          END { bad = 0
                for (s = 1; s <= n; s++) { e = d[s] - h[s]; if (e < 0) e = -e
                               if (!(s in h) || e > 1e-4 * (h[s] < 0 ? -h[s] : h[s]) + 1e-6) {
                                   printf "step %s: device %s host %s\n", s, d[s], h[s]; bad = 1 } }
                if (n == 0) { print "no steps from the device"; bad = 1 }
                exit bad }' finetune-host.txt finetune.txt; then
    echo "FAIL: the device's finetune losses differ from the host's"; status=1
else
    echo "finetune: the device's losses match the host target's (within 1e-4 relative)"
fi

echo "=== arm-none-eabi-size"
arm-none-eabi-size "${elfs[@]}"

[ $status = 0 ] && echo "run.sh: all passed" || echo "run.sh: FAILED"
exit $status
