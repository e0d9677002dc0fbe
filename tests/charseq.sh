#!/usr/bin/env bash
# charseq.sh NNC WORKDIR — a character model with a label per position, fed by --text.
#
# The model reads 16 bytes and predicts, at every position, the byte after it:
#     input x: class(256) [16]; label y: class(256) [16]
#     logits = dense(embedding(x, 256, 32), 256)        [16, 256], one row per position
#     loss = mean(cross_entropy(logits, y))             the mean over the 16 positions
# Each position sees only its own byte, so the model can learn nothing but a table from a
# byte to the label at its position.  On a text that repeats "abcdefghij\n" (every byte
# has one successor) --text's labels are the input shifted by one byte, and what is
# checked is exactly that:
#   - predict on the window "abcdefghij\nabcde" gives, at every position, the byte after
#     it ("bcdefghij\nabcdef"), not the byte itself or any other shift;
#   - the per-token accuracy (train's test_accuracy, eval's `accuracy:`) counts all 16
#     positions: a test text whose last label alone is wrong ("abcdefghij\nabcdeX", one
#     window) scores exactly 15/16 = 0.9375 (a per-example accuracy would be 0 or 1), and
#     the untrained model scores near 1/256 on the same positions;
#   - the batch loss of `grads` is the mean over every token of the batch of
#     log-sum-exp(z) - z_y, which is PyTorch's CrossEntropyLoss on logits [B*T, K] and
#     labels [B*T] (reduction 'mean'); computed here in Python from the same parameters in
#     f64, and with torch.nn.functional.cross_entropy as well where PyTorch is installed.
set -u
. "$(dirname "$0")/lib.sh"
start_work "$1" "$2"

cat >charseq.nn <<'NN'
model charseq
input  x: class(256) [16]
label  y: class(256) [16]
h      = embedding(x, 256, 32)
logits = dense(h, 256)
loss   = mean(cross_entropy(logits, y))
output probs = softmax(logits)
train {
  batch     = 8
  epochs    = 10
  seed      = 1
  optimizer = adam(lr=0.02)
}
NN
for i in $(seq 60); do printf 'abcdefghij\n'; done >train.txt   # 660 bytes: 41 windows of 16
printf 'abcdefghij\nabcdeX' >test.txt                            # 17 bytes: one window

check "compile the model" "$NNC" charseq.nn --exe -o charseq
check "compile it in f64" "$NNC" charseq.nn --dtype f64 --exe -o charseq64

# --text cuts 660 bytes (659 to predict) into 41 windows of 16 and one more at the end
check "train with --text and --test-text" bash -c \
    "./charseq train --text train.txt --test-text test.txt --log run.csv --save cs.safetensors >train.out 2>&1 &&
     grep -q 'training on 42 examples, testing on 1' train.out"
check "train reports the per-token test accuracy: 15 of 16 positions" \
    grep -q '^test accuracy: 0.9375$' train.out
check "the log's test_accuracy column holds it" bash -c \
    "tail -n 1 run.csv | cut -d, -f4 | grep -qx '0.9375'"
check "eval's accuracy counts every position" bash -c \
    "./charseq eval --load cs.safetensors --test-text test.txt >eval.out && grep -qx 'accuracy: 0.9375' eval.out"

# predict: the argmax at each of the 16 positions, as bytes, must be the next byte
printf 'abcdefghij\nabcde' | od -An -v -tu1 | tr -s ' \n' ',,' | sed 's/^,//; s/,$//' >window.csv
echo >>window.csv
cat >argmax.py <<'PY'
import csv, sys
row = [float(v) for v in list(csv.reader(open(sys.argv[1])))[1]]
best = bytes(max(range(256), key=lambda k: row[p * 256 + k]) for p in range(16))
print("predicted %r" % best)
sys.exit(best != sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
PY
check "predict gives the next byte at every position" bash -c \
    "./charseq predict --load cs.safetensors --input x=window.csv --out pred.csv &&
     python3 argmax.py pred.csv 'bcdefghij\\nabcdef'"

check "the untrained model's per-token accuracy is near chance" bash -c \
    "./charseq init --seed 1 --save init.safetensors >/dev/null &&
     ./charseq eval --load init.safetensors --test-text test.txt >init.out &&
     awk '/^accuracy:/ { exit !(\$2 <= 0.125) }' init.out"

# the batch loss against the mean over every token (PyTorch's CrossEntropyLoss)
python3 - <<'PY'
import json, struct
def put(path, tensors):   # name -> (dtype, shape, flat values)
    header, blob = {}, b""
    for name, (dt, shape, vals) in tensors.items():
        data = struct.pack("<%d%s" % (len(vals), {"F64": "d", "I64": "q"}[dt]), *vals)
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + blob)
import random
r = random.Random(7)
x = [r.randrange(256) for _ in range(3 * 16)]
y = [r.randrange(256) for _ in range(3 * 16)]
put("batch.safetensors", {"x": ("I64", [3, 16], x), "y": ("I64", [3, 16], y)})
PY
check "grads on a batch of 3 in f64" bash -c \
    "./charseq64 init --seed 5 --save p64.safetensors >/dev/null &&
     ./charseq64 grads --params p64.safetensors --batch batch.safetensors --out g64.safetensors >grads.out"
PYTHON=python3   # where PyTorch is, it is most likely Debian's, for /usr/bin/python3
[ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3
cat >mean_tokens.py <<'PY'
import json, math, struct, sys
def get(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    out = {}
    for name, t in json.loads(b[8:8 + n]).items():
        if name == "__metadata__":
            continue
        lo, hi = t["data_offsets"]
        fmt = {"F64": "d", "I64": "q", "F32": "f"}[t["dtype"]]
        out[name] = list(struct.unpack("<%d%s" % ((hi - lo) // struct.calcsize(fmt), fmt), b[8 + n + lo:8 + n + hi]))
    return out
p, d = get(sys.argv[1]), get(sys.argv[2])
E, W, B = p["h.weight"], p["logits.weight"], p["logits.bias"]
total, count, rows = 0.0, 0, []
for i, (xi, yi) in enumerate(zip(d["x"], d["y"])):
    z = [B[k] + sum(E[xi * 32 + j] * W[k * 32 + j] for j in range(32)) for k in range(256)]
    m = max(z)
    total += m + math.log(sum(math.exp(v - m) for v in z)) - z[yi]
    count += 1
    rows.append(z)
want = total / count   # over all 3 * 16 tokens
got = float(open(sys.argv[3]).read().split("loss")[-1].strip(" :=\n").split()[0])
print("nnc %.15g, mean over tokens %.15g" % (got, want))
ok = abs(got - want) <= 1e-12 * abs(want)
try:
    import torch
    t = torch.nn.functional.cross_entropy(torch.tensor(rows, dtype=torch.float64),
                                          torch.tensor(d["y"]), reduction="mean").item()
    print("torch CrossEntropyLoss on [48, 256]: %.15g" % t)
    ok = ok and abs(got - t) <= 1e-12 * abs(t)
except ImportError:
    print("(no PyTorch here: the Python mean alone)")
sys.exit(0 if ok else 1)
PY
check "the batch loss is the mean over every token (PyTorch's CrossEntropyLoss)" \
    "$PYTHON" mean_tokens.py p64.safetensors batch.safetensors grads.out
sed 's/^/    /' "$WORK/last.log"    # the three losses, shown when it passes too
finish
