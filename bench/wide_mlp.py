#!/usr/bin/python3
# bench/wide_mlp.py: the PyTorch reference for bench/wide_mlp.nn, used by bench/bench.sh:
# 784-2048-2048-10 MLP with ReLU, cross-entropy, Adam(lr=1e-3), batch 256, shuffled every
# epoch, last partial batch kept, nnc's init (glorot-uniform weights, zero biases).  The
# data, the training loop (--loader index|dataloader) and the timing are
# bench/fashion_mlp.py's main().
#
#   /usr/bin/python3 bench/wide_mlp.py [--threads N] [--epochs E] [--seed S]
#                                      [--loader index|dataloader] [--data DIR] [--log CSV]
from fashion_mlp import main, mlp


def make_model(init):
    return mlp([784, 2048, 2048, 10], init)


if __name__ == "__main__":
    main(make_model, shape=(784,), epochs=2, batch=256)
