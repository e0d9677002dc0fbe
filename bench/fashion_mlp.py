#!/usr/bin/python3
# bench/fashion_mlp.py: the PyTorch reference for examples/fashion_mlp.nn, used by
# bench/run.sh and bench/bench.sh, and the training loop (main) that the other PyTorch
# references (fashion_cnn.py, wide_mlp.py, charlm_lstm.py) share.  It is the same model,
# loss, optimizer, batching and (by default) the same init as nnc's trainer: 784-256-128-10
# MLP with ReLU, cross-entropy, Adam(lr=1e-3), batch 64, shuffled every epoch, last partial
# batch kept, glorot-uniform weights and zero biases.  Run it with Debian's interpreter
# (/usr/bin/python3 has python3-torch).
#
#   /usr/bin/python3 bench/fashion_mlp.py [--threads N] [--epochs E] [--seed S]
#                                         [--loader index|dataloader]
#                                         [--init glorot|pytorch] [--data DIR] [--log CSV]
#
# --loader index (default, the "tuned" loop): randperm + index slices of in-memory tensors,
# zero_grad(set_to_none=True), no .item() per step.  --loader dataloader (the "idiomatic"
# loop, as PyTorch's tutorials write it): DataLoader(TensorDataset(x, y), batch_size=B,
# shuffle=True), opt.zero_grad(), loss.backward(), opt.step(), running loss by .item().
#
# Prints one line per epoch, `epoch E  train_loss L  test_accuracy A  time Ts` (T: the
# training time of that epoch only, no evaluation), then `test accuracy: A`.
import argparse
import gzip
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

DATA = "/usr/share/datasets/fashion-mnist"


def load_idx(path):
    """Read an IDX file (.gz or raw) into a numpy array of its declared shape."""
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: missing (Fashion-MNIST: apt install dataset-fashion-mnist)")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise SystemExit(f"{path}: size does not match its header {dims}")
    return data.reshape(dims)


def load_split(data_dir, prefix, shape):
    """Images as floats in [0, 1] with `shape` per example, labels as int64."""
    x = load_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    y = load_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(x.reshape(len(x), *shape).astype(np.float32) / 255.0)
    y = torch.from_numpy(y.astype(np.int64))
    return x, y


def mlp(sizes, init):
    """Linear layers between the given widths, ReLU between them, as nnc's dense() chain."""
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    if init == "glorot":  # nnc's default for dense(): glorot_uniform weights, zero biases
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
    return model  # init == "pytorch": nn.Linear's own kaiming_uniform(a=sqrt(5)) init


def make_model(init):
    return mlp([784, 256, 128, 10], init)


def evaluate(model, x, y, chunk=1000):
    """Mean cross-entropy and accuracy over (x, y), in eval() mode, in chunks (a CNN's
    activations of 10000 images at once would take ~1.2 GB)."""
    if len(x) == 0:
        return float("nan"), float("nan")
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            logits = model(x[i:i + chunk])
            loss_sum += F.cross_entropy(logits, y[i:i + chunk], reduction="sum").item()
            correct += (logits.argmax(1) == y[i:i + chunk]).sum().item()
    return loss_sum / len(x), correct / len(x)


def train_epoch_index(model, opt, xtr, ytr, bs):
    """The tuned loop: one randperm, batches gathered by index slices (last partial batch
    kept), no DataLoader, gradients set to None, the loss summed without a sync per step.
    Returns the mean training loss of the epoch."""
    n = len(xtr)
    perm = torch.randperm(n)
    total = torch.zeros((), dtype=torch.float64)
    for i in range(0, n, bs):  # last partial batch kept (drop_last=False)
        idx = perm[i:i + bs]
        xb, yb = xtr[idx], ytr[idx]
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach() * len(idx)  # no .item(): keep the loop sync-free
    return total.item() / n


def train_epoch_dataloader(model, opt, loader):
    """The idiomatic loop of PyTorch's tutorials: iterate a shuffling DataLoader over a
    TensorDataset (per-example indexing, default collate; drop_last=False keeps the last
    partial batch), zero_grad() (set_to_none=False in 1.13), backward, step, .item()."""
    running, n = 0.0, 0
    for xb, yb in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        running += loss.item() * len(xb)
        n += len(xb)
    return running / n


def main(make_model=make_model, shape=(784,), epochs=5, batch=64, lr=1e-3, load=None,
         add_args=None):
    """The training loop shared by the benchmarks: data, Adam, per-epoch timing, the log.
    load(args) -> (xtr, ytr, xte, yte) replaces the Fashion-MNIST loader (images reshaped
    to `shape`); add_args(parser) adds the options load needs."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--init", choices=["glorot", "pytorch"], default="glorot")
    ap.add_argument("--loader", choices=["index", "dataloader"], default="index",
                    help="index: the tuned randperm/slice loop; dataloader: the idiomatic "
                         "DataLoader(TensorDataset) loop")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--log", help="write CSV epoch,train_loss,test_loss,test_accuracy,seconds")
    if add_args:
        add_args(ap)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    if load:
        xtr, ytr, xte, yte = load(args)
    else:
        xtr, ytr = load_split(args.data, "train", shape)
        xte, yte = load_split(args.data, "t10k", shape)
    model = make_model(args.init)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    loader = (DataLoader(TensorDataset(xtr, ytr), batch_size=args.batch, shuffle=True)
              if args.loader == "dataloader" else None)

    log = open(args.log, "w") if args.log else None
    if log:
        log.write("epoch,train_loss,test_loss,test_accuracy,seconds\n")
    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        if loader is not None:
            train_loss = train_epoch_dataloader(model, opt, loader)
        else:
            train_loss = train_epoch_index(model, opt, xtr, ytr, args.batch)
        seconds = time.perf_counter() - t0

        test_loss, acc = evaluate(model, xte, yte)
        print(f"epoch {epoch}  train_loss {train_loss:.4f}  test_accuracy {acc:.4f}  "
              f"time {seconds:.2f}s", flush=True)
        if log:
            log.write(f"{epoch},{train_loss:.9f},{test_loss:.9f},{acc:.4f},{seconds:.4f}\n")
            log.flush()
    print(f"test accuracy: {acc:.4f}")


if __name__ == "__main__":
    main()
