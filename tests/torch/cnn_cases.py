"""nnc's conformance cases for convolutions, pooling and batchnorm against PyTorch, in the
case format of tests/torch/check.py: run with
    /usr/bin/python3 tests/torch/check.py build/nnc tests/torch/cnn_cases.py
Each case is a model in nnc's language and the same model in PyTorch (float64), compared
on loss and every gradient.  Inputs are channel-first per example: conv2d/pooling take
[C, H, W], conv1d takes [C, L] (PyTorch's layouts without the batch).  Covered: conv2d
with stride 2, pad=same with odd and even kernels (the extra element of an even kernel's
padding goes at the end, as PyTorch's padding='same' and Keras do), pad=same with stride 2
(Keras/TensorFlow: output ceil(in/stride), written with F.pad here), explicit pad=N,
non-square inputs, one and several input channels, 3x3 stride-1 convolutions over 8
channels or more (computed with Winograd's F(2x2, 3x3)), conv1d, max and average pooling with
kernel 2 and with kernel 3 stride 2, batchnorm in training mode after dense, conv2d and
conv1d (batch statistics; the harness randomizes running_mean/var, which do not enter a
training-mode loss, and lists no running stats in `params`), a two-layer binding's
numbered parameters, convolutions that run in chunks of examples on nnc's threads, and a
tiny version of the lecture's CNN (no dropout: its random masks cannot match PyTorch's).  Batches are never larger than the compiled batch, so
`grads` sees the whole batch at once (batchnorm's statistics depend on it)."""
import warnings

import torch
import torch.nn.functional as F

# PyTorch warns that padding='same' with an even kernel copies the input; that is the point
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")


def lin(p, name, x):
    return x @ p[name + ".weight"].T + p[name + ".bias"]


def conv(p, name, x, **kw):
    """conv2d or conv1d by the rank of the weight, PyTorch layout [out, in, k...]."""
    f = F.conv2d if p[name + ".weight"].dim() == 4 else F.conv1d
    return f(x, p[name + ".weight"], p[name + ".bias"], **kw)


def conv_same(p, name, x, stride):
    """nnc's pad=same for any stride (Keras/TensorFlow): output ceil(in/stride) per spatial
    axis, total padding max((out-1)*stride + k - in, 0), the odd element at the end."""
    w = p[name + ".weight"]
    pads = []
    for size, k in zip(reversed(x.shape[2:]), reversed(w.shape[2:])):  # F.pad: last axis first
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        pads += [total // 2, total - total // 2]
    return conv(p, name, F.pad(x, pads), stride=stride)


def lecture_cnn(p, b):
    """conv c1, relu, conv c2, relu, 2x2 max pooling, dense h, relu, dense z, cross entropy"""
    c2 = F.relu(conv(p, "c2", F.relu(conv(p, "c1", b["x"]))))
    return F.cross_entropy(lin(p, "z", F.relu(lin(p, "h", F.max_pool2d(c2, 2).flatten(1)))), b["y"])


def lecture_case(name, size, f1, f2):
    """lecture_cnn's model on a [1, size, size] image: f1 then f2 3x3 filters, 5 classes."""
    pooled = (size - 4) // 2
    return dict(
        nn=f"""model {name}
input x: [1, {size}, {size}]
label y: class(5)
c1 = relu(conv2d(x, {f1}, kernel=3))
c2 = relu(conv2d(c1, {f2}, kernel=3))
p = maxpool2d(c2, 2)
h = relu(dense(flatten(p), 8))
z = dense(h, 5)
loss = cross_entropy(z, y)
output probs = softmax(z)
train {{ batch = 8 }}
""",
        params={"c1.weight": [f1, 1, 3, 3], "c1.bias": [f1], "c2.weight": [f2, f1, 3, 3], "c2.bias": [f2],
                "h.weight": [8, f2 * pooled * pooled], "h.bias": [8], "z.weight": [5, 8], "z.bias": [5]},
        batch={"x": ("float", [1, size, size]), "y": ("class", 5, [])},
        n=6, scale=0.3,
        torch=lecture_cnn,
    )


def bn(p, name, x):
    """batchnorm in training mode: batch statistics over every axis but the channel (axis 1),
    biased variance, eps 1e-5, PyTorch's BatchNorm1d/2d; running stats are not used."""
    return F.batch_norm(x, None, None, p[name + ".weight"], p[name + ".bias"], training=True, eps=1e-5)


CASES = {
    # conv2d stride 2 on a non-square input with several channels: [2, 9, 11] -> [3, 4, 5]
    "conv2d_stride2": dict(
        nn="""model conv2d_stride2
input x: [2, 9, 11] grad
label y: class(3)
c = relu(conv2d(x, 3, kernel=3, stride=2))
z = dense(flatten(c), 3)
loss = cross_entropy(z, y)
train { batch = 8 }
""",
        params={"c.weight": [3, 2, 3, 3], "c.bias": [3], "z.weight": [3, 60], "z.bias": [3]},
        batch={"x": ("float", [2, 9, 11]), "y": ("class", 3, [])},
        n=5, scale=0.3, input_grads=["x"],
        torch=lambda p, b: F.cross_entropy(
            lin(p, "z", F.relu(conv(p, "c", b["x"], stride=2)).flatten(1)), b["y"]),
    ),
    # pad=same, odd kernel, one input channel, non-square: [1, 7, 8] -> [4, 7, 8]
    "conv2d_same_odd": dict(
        nn="""model conv2d_same_odd
input x: [1, 7, 8]
target t: [4, 7, 8]
c = tanh(conv2d(x, 4, kernel=3, pad=same))
loss = mse(c, t)
train { batch = 8 }
""",
        params={"c.weight": [4, 1, 3, 3], "c.bias": [4]},
        batch={"x": ("float", [1, 7, 8]), "t": ("float", [4, 7, 8])},
        n=4,
        torch=lambda p, b: F.mse_loss(torch.tanh(conv(p, "c", b["x"], padding="same")), b["t"]),
    ),
    # 3x3, stride 1, 8 channels or more: computed with Winograd's F(2x2, 3x3) in f32;
    # [8, 7, 9] -same-> [40, 7, 9] (odd last row and column, 40 filters: a block of 32 and
    # a remainder) -valid-> [9, 5, 7]; and an even [8, 6, 14] -pad 1-> [8, 6, 14] (7 tiles a row)
    "conv2d_winograd": dict(
        nn="""model conv2d_winograd
input x: [8, 7, 9] grad
input w: [8, 6, 14] grad
label y: class(3)
c = relu(conv2d(x, 40, kernel=3, pad=same))
d = conv2d(c, 9, kernel=3, bias=false)
e = tanh(conv2d(w, 8, kernel=3, pad=1))
z = dense(flatten(d), 3) + dense(flatten(e), 3)
loss = cross_entropy(z, y)
train { batch = 8 }
""",
        params={"c.weight": [40, 8, 3, 3], "c.bias": [40], "d.weight": [9, 40, 3, 3],
                "e.weight": [8, 8, 3, 3], "e.bias": [8],
                "z.0.weight": [3, 315], "z.0.bias": [3], "z.1.weight": [3, 672], "z.1.bias": [3]},
        batch={"x": ("float", [8, 7, 9]), "w": ("float", [8, 6, 14]), "y": ("class", 3, [])},
        n=5, scale=0.3, input_grads=["x", "w"],
        torch=lambda p, b: F.cross_entropy(
            lin(p, "z.0", F.conv2d(F.relu(conv(p, "c", b["x"], padding="same")), p["d.weight"]).flatten(1))
            + lin(p, "z.1", torch.tanh(conv(p, "e", b["w"], padding=1)).flatten(1)), b["y"]),
    ),
    # convolutions large enough to run in fixed chunks of examples on nnc's threads (fuse.c):
    # c in 2 chunks of 4 examples (dense-path gradients through tanh, dX too), d in 4 chunks of
    # 2 (pooled Winograd, sparse path); n = 5 leaves chunks partly full and one empty
    "conv2d_chunks": dict(
        nn="""model conv2d_chunks
input x: [8, 16, 16] grad
label y: class(3)
c = tanh(conv2d(x, 16, kernel=3, pad=same))
d = maxpool2d(relu(conv2d(c, 16, kernel=3, pad=same)), 2)
z = dense(flatten(d), 3)
loss = cross_entropy(z, y)
train { batch = 8 }
""",
        params={"c.weight": [16, 8, 3, 3], "c.bias": [16], "d.weight": [16, 16, 3, 3], "d.bias": [16],
                "z.weight": [3, 1024], "z.bias": [3]},
        batch={"x": ("float", [8, 16, 16]), "y": ("class", 3, [])},
        n=5, scale=0.3, input_grads=["x"],
        torch=lambda p, b: F.cross_entropy(lin(p, "z", F.max_pool2d(F.relu(conv(
            p, "d", torch.tanh(conv(p, "c", b["x"], padding=1)), padding=1)), 2).flatten(1)), b["y"]),
    ),
    # pad=same, even kernels (4 and 2): PyTorch's padding='same' puts the odd element at the
    # end (right/bottom); several input channels, non-square: [3, 6, 7] -> [2, 6, 7] -> [2, 6, 7]
    "conv2d_same_even": dict(
        nn="""model conv2d_same_even
input x: [3, 6, 7] grad
label y: class(4)
c = relu(conv2d(x, 2, kernel=4, pad=same))
d = conv2d(c, 2, kernel=2, pad=same)
z = dense(flatten(d), 4)
loss = cross_entropy(z, y)
train { batch = 8 }
""",
        params={"c.weight": [2, 3, 4, 4], "c.bias": [2], "d.weight": [2, 2, 2, 2], "d.bias": [2],
                "z.weight": [4, 84], "z.bias": [4]},
        batch={"x": ("float", [3, 6, 7]), "y": ("class", 4, [])},
        n=5, scale=0.3, input_grads=["x"],
        torch=lambda p, b: F.cross_entropy(lin(p, "z", conv(
            p, "d", F.relu(conv(p, "c", b["x"], padding="same")), padding="same").flatten(1)), b["y"]),
    ),
    # pad=same with stride 2 (Keras/TensorFlow): [1, 9, 8] -k3s2-> [3, 5, 4] -k4s2-> [2, 3, 2];
    # the paddings are (1,1)x(0,1), then (1,2)x(1,1)
    "conv2d_same_stride2": dict(
        nn="""model conv2d_same_stride2
input x: [1, 9, 8] grad
target t: [2, 3, 2]
c = relu(conv2d(x, 3, kernel=3, stride=2, pad=same))
d = conv2d(c, 2, kernel=4, stride=2, pad=same)
loss = sse(d, t)
train { batch = 8 }
""",
        params={"c.weight": [3, 1, 3, 3], "c.bias": [3], "d.weight": [2, 3, 4, 4], "d.bias": [2]},
        batch={"x": ("float", [1, 9, 8]), "t": ("float", [2, 3, 2])},
        n=4, input_grads=["x"],
        torch=lambda p, b: (0.5 * ((conv_same(p, "d", F.relu(conv_same(p, "c", b["x"], 2)), 2)
                                    - b["t"]) ** 2).flatten(1).sum(1)).mean(),
    ),
    # explicit pad=N: pad 2 with kernel 3 grows the image, pad 1 with stride 2 on a
    # non-square image: [2, 5, 6] -> [3, 7, 8] -> [2, 4, 4]
    "conv2d_pad_n": dict(
        nn="""model conv2d_pad_n
input x: [2, 5, 6] grad
label y: class(3)
c = sigmoid(conv2d(x, 3, kernel=3, pad=2))
d = relu(conv2d(c, 2, kernel=3, stride=2, pad=1))
z = dense(flatten(d), 3)
loss = cross_entropy(z, y)
train { batch = 8 }
""",
        params={"c.weight": [3, 2, 3, 3], "c.bias": [3], "d.weight": [2, 3, 3, 3], "d.bias": [2],
                "z.weight": [3, 32], "z.bias": [3]},
        batch={"x": ("float", [2, 5, 6]), "y": ("class", 3, [])},
        n=5, input_grads=["x"],
        torch=lambda p, b: F.cross_entropy(lin(p, "z", F.relu(conv(
            p, "d", torch.sigmoid(conv(p, "c", b["x"], padding=2)), stride=2, padding=1)).flatten(1)), b["y"]),
    ),
    # conv1d on [C, L] = [3, 12]: valid k3 -> [5, 10], same with an even kernel -> [4, 10],
    # stride 2 -> [2, 4]
    "conv1d": dict(
        nn="""model conv1d
input x: [3, 12] grad
label y: class(3)
c = tanh(conv1d(x, 5, kernel=3))
d = relu(conv1d(c, 4, kernel=2, pad=same))
e = conv1d(d, 2, kernel=3, stride=2)
z = dense(flatten(e), 3)
loss = cross_entropy(z, y)
train { batch = 8 }
""",
        params={"c.weight": [5, 3, 3], "c.bias": [5], "d.weight": [4, 5, 2], "d.bias": [4],
                "e.weight": [2, 4, 3], "e.bias": [2], "z.weight": [3, 8], "z.bias": [3]},
        batch={"x": ("float", [3, 12]), "y": ("class", 3, [])},
        n=5, input_grads=["x"],
        torch=lambda p, b: F.cross_entropy(lin(p, "z", conv(p, "e", F.relu(conv(
            p, "d", torch.tanh(conv(p, "c", b["x"])), padding="same")), stride=2).flatten(1)), b["y"]),
    ),
    # maxpool2d kernel 2 (stride 2) on the input, odd sizes floor: [2, 9, 7] -> [2, 4, 3];
    # then after a conv: [3, 7, 5] -> [3, 3, 2]
    "maxpool2d_k2": dict(
        nn="""model maxpool2d_k2
input x: [2, 9, 7] grad
label y: class(3)
p = maxpool2d(x, 2)
c = relu(conv2d(x, 3, kernel=3))
q = maxpool2d(c, 2)
zp = dense(flatten(p), 3)
zq = dense(flatten(q), 3)
loss = cross_entropy(zp + zq, y)
train { batch = 8 }
""",
        params={"c.weight": [3, 2, 3, 3], "c.bias": [3], "zp.weight": [3, 24], "zp.bias": [3],
                "zq.weight": [3, 18], "zq.bias": [3]},
        batch={"x": ("float", [2, 9, 7]), "y": ("class", 3, [])},
        n=5, input_grads=["x"],
        torch=lambda p, b: F.cross_entropy(
            lin(p, "zp", F.max_pool2d(b["x"], 2).flatten(1))
            + lin(p, "zq", F.max_pool2d(F.relu(conv(p, "c", b["x"])), 2).flatten(1)), b["y"]),
    ),
    # maxpool2d kernel 3 stride 2: overlapping windows, gradients add where they overlap:
    # [2, 9, 10] -> [2, 4, 4]
    "maxpool2d_k3s2": dict(
        nn="""model maxpool2d_k3s2
input x: [2, 9, 10] grad
target t: [2, 4, 4]
p = maxpool2d(x, 3, stride=2)
loss = mse(p, t)
train { batch = 8 }
""",
        params={},
        batch={"x": ("float", [2, 9, 10]), "t": ("float", [2, 4, 4])},
        n=5, input_grads=["x"],
        torch=lambda p, b: F.mse_loss(F.max_pool2d(b["x"], 3, stride=2), b["t"]),
    ),
    # avgpool2d kernel 2 on a non-square image with a remainder: [3, 8, 7] -> [3, 4, 3]
    "avgpool2d_k2": dict(
        nn="""model avgpool2d_k2
input x: [3, 8, 7] grad
label y: class(4)
c = relu(conv2d(x, 2, kernel=1))
a = avgpool2d(c, 2)
z = dense(flatten(a), 4)
loss = cross_entropy(z, y)
train { batch = 8 }
""",
        params={"c.weight": [2, 3, 1, 1], "c.bias": [2], "z.weight": [4, 24], "z.bias": [4]},
        batch={"x": ("float", [3, 8, 7]), "y": ("class", 4, [])},
        n=5, input_grads=["x"],
        torch=lambda p, b: F.cross_entropy(
            lin(p, "z", F.avg_pool2d(F.relu(conv(p, "c", b["x"])), 2).flatten(1)), b["y"]),
    ),
    # avgpool2d kernel 3 stride 2, overlapping: [2, 11, 9] -> [2, 5, 4]
    "avgpool2d_k3s2": dict(
        nn="""model avgpool2d_k3s2
input x: [2, 11, 9] grad
target t: [2, 5, 4]
a = avgpool2d(x, 3, stride=2)
loss = sse(a, t)
train { batch = 8 }
""",
        params={},
        batch={"x": ("float", [2, 11, 9]), "t": ("float", [2, 5, 4])},
        n=5, input_grads=["x"],
        torch=lambda p, b: (0.5 * ((F.avg_pool2d(b["x"], 3, stride=2) - b["t"]) ** 2).flatten(1).sum(1)).mean(),
    ),
    # batchnorm after dense (BatchNorm1d on [B, 8]), training mode: batch statistics.
    # h.bias's gradient is zero in theory (batchnorm removes the mean).
    "batchnorm_dense": dict(
        nn="""model batchnorm_dense
input x: [6] grad
label y: class(3)
h = dense(x, 8)
b = relu(batchnorm(h))
z = dense(b, 3)
loss = cross_entropy(z, y)
train { batch = 8 }
""",
        params={"h.weight": [8, 6], "h.bias": [8], "b.weight": [8], "b.bias": [8],
                "z.weight": [3, 8], "z.bias": [3]},
        batch={"x": ("float", [6]), "y": ("class", 3, [])},
        n=7, input_grads=["x"],
        torch=lambda p, b: F.cross_entropy(lin(p, "z", F.relu(bn(p, "b", lin(p, "h", b["x"])))), b["y"]),
    ),
    # batchnorm after conv2d (BatchNorm2d: statistics per channel over batch, height, width)
    "batchnorm_conv2d": dict(
        nn="""model batchnorm_conv2d
input x: [2, 7, 6] grad
label y: class(3)
c = conv2d(x, 4, kernel=3)
b = relu(batchnorm(c))
q = maxpool2d(b, 2)
z = dense(flatten(q), 3)
loss = cross_entropy(z, y)
train { batch = 8 }
""",
        params={"c.weight": [4, 2, 3, 3], "c.bias": [4], "b.weight": [4], "b.bias": [4],
                "z.weight": [3, 16], "z.bias": [3]},
        batch={"x": ("float", [2, 7, 6]), "y": ("class", 3, [])},
        n=6, input_grads=["x"],
        torch=lambda p, b: F.cross_entropy(lin(p, "z", F.max_pool2d(
            F.relu(bn(p, "b", conv(p, "c", b["x"]))), 2).flatten(1)), b["y"]),
    ),
    # batchnorm after conv1d (BatchNorm1d on [B, C, L]: statistics per channel over batch, length)
    "batchnorm_conv1d": dict(
        nn="""model batchnorm_conv1d
input x: [2, 9]
target t: [3, 7]
c = conv1d(x, 3, kernel=3)
b = tanh(batchnorm(c))
loss = mse(b, t)
train { batch = 8 }
""",
        params={"c.weight": [3, 2, 3], "c.bias": [3], "b.weight": [3], "b.bias": [3]},
        batch={"x": ("float", [2, 9]), "t": ("float", [3, 7])},
        n=4,
        torch=lambda p, b: F.mse_loss(torch.tanh(bn(p, "b", conv(p, "c", b["x"]))), b["t"]),
    ),
    # one binding, two layers: numbered in evaluation order (b.0 = dense, b.1 = batchnorm)
    "batchnorm_numbered": dict(
        nn="""model batchnorm_numbered
input x: [5]
label y: class(4)
b = relu(batchnorm(dense(x, 8)))
z = dense(b, 4)
loss = cross_entropy(z, y)
train { batch = 8 }
""",
        params={"b.0.weight": [8, 5], "b.0.bias": [8], "b.1.weight": [8], "b.1.bias": [8],
                "z.weight": [4, 8], "z.bias": [4]},
        batch={"x": ("float", [5]), "y": ("class", 4, [])},
        n=8,
        torch=lambda p, b: F.cross_entropy(lin(p, "z", F.relu(bn(p, "b.1", lin(p, "b.0", b["x"])))), b["y"]),
    ),
    # the lecture's CNN in miniature (no dropout): two convs, maxpool, flatten, dense, dense
    "tiny_lecture_cnn": lecture_case("tiny_lecture_cnn", 12, 3, 4),
    # the second convolution (8 channels in: Winograd's) max pools its 2x2 blocks as it
    # computes them, and its gradient block reads the recorded picks (fuse.c)
    "lecture_cnn_pooled": lecture_case("lecture_cnn_pooled", 14, 8, 16),
}
