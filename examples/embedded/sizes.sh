#!/usr/bin/env bash
# sizes.sh [BUILD_DIR] — the flash and RAM of the Fashion MLP and CNN compiled for a
# Cortex-M4F (arm-none-eabi-gcc -O2), inference only and with training, as a Markdown table
# (docs/embedded.md, README.md).  The model's object alone, without a program around it:
# `text` is its code and baked weights (flash), `bss` its static arrays (RAM).  The weights'
# values do not change the sizes: a checkpoint from `m init` serves.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$HERE/../../build}" && pwd)
NNC=$BUILD/nnc
ARCH=(-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16)
WORK=$(mktemp -d /tmp/nnc-sizes.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
echo "| model | build | batch | flash: code | flash: weights | RAM (bss) | of which parameters, gradients, optimizer state, activations |"
echo "|---|---|---|---|---|---|---|"
for m in fashion_mlp fashion_cnn; do
    "$NNC" "$HERE/../$m.nn" --exe -o host_$m >/dev/null
    ./host_$m init --seed 1 --save ck_$m.safetensors >/dev/null
    while IFS=';' read -r what batch flags; do
        "$NNC" "$HERE/../$m.nn" --target embedded --batch "$batch" $flags -o "$m.c"
        arm-none-eabi-gcc "${ARCH[@]}" -std=c99 -O2 -fopenmp-simd -c "$m.c" -o "$m.o"
        read -r text data bss _ < <(arm-none-eabi-size "$m.o" | tail -1)
        U=$(echo "$m" | tr a-z A-Z)
        ram() { awk -v k="${U}_RAM_$1" '$2 == k { print $3 }' "$m.h"; }
        weights=$(awk -v k="${U}_FLASH_WEIGHTS" '$2 == k { print $3 }' "$m.h")
        printf '| %s | %s | %s | %s | %s | %s | %s, %s, %s, %s |\n' "$m" "$what" "$batch" "$((text - weights))" "$weights" \
            "$((data + bss))" "$(ram PARAMS)" "$(ram GRADS)" "$(ram STATE)" "$(ram ACTS)"
    done <<LIST
inference, --weights --infer-only;1;--weights ck_$m.safetensors --infer-only
training (adam), --weights;16;--weights ck_$m.safetensors
training (adam), from NAME_init;16;
LIST
done
# the MLP's last layer fine-tuned on the device: the first two layers frozen, in flash
"$NNC" "$HERE/fashion_mlp_tail.nn" --exe -o host_tail >/dev/null
python3 "$HERE/rename_params.py" ck_fashion_mlp.safetensors ck_tail.safetensors \
    h1.weight=h1_weight h1.bias=h1_bias h2.weight=h2_weight h2.bias=h2_bias >/dev/null
"$NNC" "$HERE/fashion_mlp_tail.nn" --target embedded --batch 16 --weights ck_tail.safetensors -o tail.c
arm-none-eabi-gcc "${ARCH[@]}" -std=c99 -O2 -fopenmp-simd -c tail.c -o tail.o
read -r text data bss _ < <(arm-none-eabi-size tail.o | tail -1)
ram() { awk -v k="FASHION_MLP_TAIL_RAM_$1" '$2 == k { print $3 }' tail.h; }
weights=$(awk '$2 == "FASHION_MLP_TAIL_FLASH_WEIGHTS" { print $3 }' tail.h)
printf '| fashion_mlp_tail | fine-tuning the last layer (adam), --weights | 16 | %s | %s | %s | %s, %s, %s, %s |\n' \
    "$((text - weights))" "$weights" "$((data + bss))" "$(ram PARAMS)" "$(ram GRADS)" "$(ram STATE)" "$(ram ACTS)"
