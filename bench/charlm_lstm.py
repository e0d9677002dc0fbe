#!/usr/bin/python3
# bench/charlm_lstm.py: the PyTorch reference for examples/charlm/charlm.nn, used by
# bench/bench.sh: a character LSTM (Embedding(256, 32), one-layer LSTM(32, 128), the state
# after the last of 16 context bytes, Linear(128, 256)), cross-entropy on the next byte,
# Adam(lr=3e-3), batch 64, shuffled every epoch, last partial batch kept.  The data,
# the training loop (--loader index|dataloader) and the timing are bench/fashion_mlp.py's
# main(); the examples are the ones nnc's `--text FILE` makes (load_text below).
#
# Init matched to nnc's (dsl/layer_seq.c): embedding(ids, 256, 32) is N(0, 1), as
# nn.Embedding's default; lstm(e, 128) has PyTorch's parameters weight_ih [512, 32],
# weight_hh [512, 128], bias_ih [512], bias_hh [512], gates in the order i, f, g, o, zero
# initial h and c, every parameter U(-1/sqrt(128), 1/sqrt(128)), which is nn.LSTM's own
# default; dense(last, 256) is glorot-uniform weights and zero bias (xavier_uniform_ below;
# --init pytorch keeps nn.Linear's kaiming-uniform for it).  The values differ (another
# random generator), the distributions are the same.
#
#   /usr/bin/python3 bench/charlm_lstm.py --text WORDS.txt [--test-text TEST.txt]
#                  [--threads N] [--epochs E] [--seed S] [--loader index|dataloader] [--log CSV]
import os

import numpy as np
import torch
import torch.nn as nn

from fashion_mlp import main

CONTEXT = 16   # input ids: class(256) [16]
PAD = 10       # runtime/data.c's TEXT_PAD, '\n': the context before the file's first byte


def load_text(path):
    """runtime/data.c's nnr_data_load_text: one example per byte i of the file, the input
    the CONTEXT bytes before it (offsets i-16 .. i-1, those before the file's start are
    '\\n'), the label byte i itself.  Inputs and labels as int64 (nnc holds int32)."""
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: missing text file (examples/charlm/run.sh makes it; "
                         "bench/bench.sh runs it with CHARLM_TEXT_ONLY=1)")
    with open(path, "rb") as f:
        b = np.frombuffer(f.read(), dtype=np.uint8)
    if len(b) == 0:
        raise SystemExit(f"{path}: empty file, no examples")
    padded = np.concatenate([np.full(CONTEXT, PAD, dtype=np.uint8), b])
    # window i is padded[i : i + 16] = bytes i-16 .. i-1 of the file
    ids = np.lib.stride_tricks.sliding_window_view(padded, CONTEXT)[:len(b)]
    return (torch.from_numpy(ids.astype(np.int64)),
            torch.from_numpy(b.astype(np.int64)))


class CharLSTM(nn.Module):
    def __init__(self, init):
        super().__init__()
        self.e = nn.Embedding(256, 32)                      # N(0, 1), as nnc's embedding
        self.h = nn.LSTM(32, 128, batch_first=True)         # U(+-1/sqrt(128)), as nnc's lstm
        self.logits = nn.Linear(128, 256)
        if init == "glorot":   # nnc's default for dense(): glorot_uniform weight, zero bias
            nn.init.xavier_uniform_(self.logits.weight)
            nn.init.zeros_(self.logits.bias)

    def forward(self, ids):
        h, _ = self.h(self.e(ids))                          # [B, 16, 128], zero h0 and c0
        return self.logits(h[:, -1])                        # the state after the last byte


def add_args(ap):
    ap.add_argument("--text", required=True, help="training text (nnc's --text)")
    ap.add_argument("--test-text", help="test text (nnc's --test-text)")


def load(args):
    xtr, ytr = load_text(args.text)
    if args.test_text:
        xte, yte = load_text(args.test_text)
    else:
        xte, yte = xtr[:0], ytr[:0]
    return xtr, ytr, xte, yte


if __name__ == "__main__":
    main(CharLSTM, epochs=3, batch=64, lr=3e-3, load=load, add_args=add_args)
