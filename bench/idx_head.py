#!/usr/bin/python3
# bench/idx_head.py: a smaller Fashion-MNIST for bench/bench.sh's QUICK mode: the first
# NTRAIN training and NTEST test examples of the four IDX files of SRC, written as IDX
# files of the same names (gzip) into DST, so nnc's trainers and the PyTorch scripts read
# them as they read the full set.
#
#   /usr/bin/python3 bench/idx_head.py SRC DST NTRAIN NTEST
import gzip
import os
import sys

if len(sys.argv) != 5:
    sys.exit("usage: idx_head.py SRC DST NTRAIN NTEST")
src, dst, ntrain, ntest = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.makedirs(dst, exist_ok=True)
for prefix, n in (("train", ntrain), ("t10k", ntest)):
    for kind in ("images-idx3", "labels-idx1"):
        name = f"{prefix}-{kind}-ubyte.gz"
        path = os.path.join(src, name)
        if not os.path.isfile(path):
            sys.exit(f"idx_head.py: {path} is missing (apt install dataset-fashion-mnist)")
        with gzip.open(path, "rb") as f:
            raw = f.read()
        ndim = raw[3]
        dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
        if n > dims[0]:
            sys.exit(f"idx_head.py: {path} has {dims[0]} examples, fewer than {n}")
        per = 1
        for d in dims[1:]:
            per *= d
        head = raw[:4] + n.to_bytes(4, "big") + raw[8:4 + 4 * ndim]
        body = raw[4 + 4 * ndim: 4 + 4 * ndim + n * per]
        with gzip.open(os.path.join(dst, name), "wb", compresslevel=1) as f:
            f.write(head + body)
