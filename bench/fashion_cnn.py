#!/usr/bin/python3
# bench/fashion_cnn.py: the PyTorch reference for examples/fashion_cnn.nn, used by
# bench/run_cnn.sh.  It is the lecture's CNN (worksheet 4, written there in Keras) with
# the same loss, optimizer, batching and (by default) the same init as nnc's trainer:
# Conv2d(1,16,3) ReLU, Conv2d(16,32,3) ReLU, MaxPool2d(2), Dropout(0.25), Flatten,
# Linear(32*12*12,128) ReLU, Dropout(0.5), Linear(128,10); cross-entropy, Adam(lr=1e-3),
# batch 32, shuffled every epoch, last partial batch kept, glorot-uniform weights and
# zero biases for the convolutions and the dense layers.  Each example is one channel-
# first image [1, 28, 28].  Run it with Debian's interpreter (/usr/bin/python3 has
# python3-torch).
#
#   /usr/bin/python3 bench/fashion_cnn.py [--threads N] [--epochs E] [--seed S]
#                                         [--init glorot|pytorch] [--data DIR] [--log CSV]
#
# Prints one line per epoch, `epoch E  train_loss L  test_accuracy A  time Ts` (T: the
# training time of that epoch only, no evaluation), then `test accuracy: A`.  The test
# set is evaluated in eval() mode (dropout off).
import torch.nn as nn

from fashion_mlp import main   # data, training loop and timing are the MLP benchmark's


def make_model(init):
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3), nn.ReLU(),            # [16, 26, 26]
        nn.Conv2d(16, 32, 3), nn.ReLU(),           # [32, 24, 24]
        nn.MaxPool2d(2),                           # [32, 12, 12]
        nn.Dropout(0.25),
        nn.Flatten(),                              # [4608]
        nn.Linear(32 * 12 * 12, 128), nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 10),
    )
    if init == "glorot":  # nnc's default for conv2d() and dense(): glorot_uniform weights, zero biases
        for m in model:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
    return model  # init == "pytorch": the layers' own kaiming_uniform(a=sqrt(5)) init


if __name__ == "__main__":
    main(make_model, shape=(1, 28, 28), epochs=3, batch=32)
