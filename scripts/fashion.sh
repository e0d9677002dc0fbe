#!/usr/bin/env bash
# fashion.sh — the main job: builds nnc, compiles examples/fashion_mlp.nn into a trainer
# and trains it on Debian's Fashion-MNIST (5 epochs, as the model's train block says),
# printing each epoch and the test accuracy.  Extra arguments go to `train`
# (e.g. --epochs 1, --seed 3, --log run.csv).
set -eu
cd "$(dirname "$0")/.."
bash scripts/build.sh
DATA=/usr/share/datasets/fashion-mnist
mkdir -p build/fashion
build/nnc examples/fashion_mlp.nn --exe -o build/fashion/fashion_mlp
build/fashion/fashion_mlp train \
    --train x=$DATA/train-images-idx3-ubyte.gz --train y=$DATA/train-labels-idx1-ubyte.gz \
    --test x=$DATA/t10k-images-idx3-ubyte.gz --test y=$DATA/t10k-labels-idx1-ubyte.gz \
    --save build/fashion/fashion_mlp.safetensors "$@"
