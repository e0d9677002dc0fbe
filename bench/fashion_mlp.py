#!/usr/bin/python3
# bench/fashion_mlp.py: the PyTorch reference for examples/fashion_mlp.nn, used by
# bench/run.sh.  It is the same model, loss, optimizer, batching and (by default) the
# same init as nnc's trainer: 784-256-128-10 MLP with ReLU, cross-entropy, Adam(lr=1e-3),
# batch 64, shuffled every epoch, last partial batch kept, glorot-uniform weights and
# zero biases.  Run it with Debian's interpreter (/usr/bin/python3 has python3-torch).
#
#   /usr/bin/python3 bench/fashion_mlp.py [--threads N] [--epochs E] [--seed S]
#                                         [--init glorot|pytorch] [--data DIR] [--log CSV]
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

DATA = "/usr/share/datasets/fashion-mnist"


def load_idx(path):
    """Read an IDX file (.gz or raw) into a numpy array of its declared shape."""
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


def make_model(init):
    model = nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )
    if init == "glorot":  # nnc's default for dense(): glorot_uniform weights, zero biases
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
    return model  # init == "pytorch": nn.Linear's own kaiming_uniform(a=sqrt(5)) init


def evaluate(model, x, y, chunk=1000):
    """Mean cross-entropy and accuracy over (x, y), in eval() mode, in chunks (a CNN's
    activations of 10000 images at once would take ~1.2 GB)."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            logits = model(x[i:i + chunk])
            loss_sum += F.cross_entropy(logits, y[i:i + chunk], reduction="sum").item()
            correct += (logits.argmax(1) == y[i:i + chunk]).sum().item()
    return loss_sum / len(x), correct / len(x)


def main(make_model=make_model, shape=(784,), epochs=5, batch=64):
    """The training loop shared by the benchmarks: data, Adam, per-epoch timing, the log."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--init", choices=["glorot", "pytorch"], default="glorot")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--log", help="write CSV epoch,train_loss,test_loss,test_accuracy,seconds")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    xtr, ytr = load_split(args.data, "train", shape)
    xte, yte = load_split(args.data, "t10k", shape)
    model = make_model(args.init)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n, bs = len(xtr), args.batch

    log = open(args.log, "w") if args.log else None
    if log:
        log.write("epoch,train_loss,test_loss,test_accuracy,seconds\n")
    acc = 0.0
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
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
        seconds = time.perf_counter() - t0
        train_loss = total.item() / n

        test_loss, acc = evaluate(model, xte, yte)
        print(f"epoch {epoch}  train_loss {train_loss:.4f}  test_accuracy {acc:.4f}  "
              f"time {seconds:.2f}s", flush=True)
        if log:
            log.write(f"{epoch},{train_loss:.9f},{test_loss:.9f},{acc:.4f},{seconds:.4f}\n")
            log.flush()
    print(f"test accuracy: {acc:.4f}")


if __name__ == "__main__":
    main()
