"""bench/attention_torch.py — PyTorch's side of bench/attention.sh: forward + backward of
causal attention, softmax(q kᵀ / sqrt(d) + mask) v (torch 1.13 has no
scaled_dot_product_attention), with loss = sum(o * t), on [B, heads, T, d] float32
tensors, at one thread (or THREADS).

    attention_torch.py B HEADS T D STEPS [THREADS]

Prints `min US median US` per step, over STEPS steps after 5 not timed."""
import math
import sys
import time

import torch


def main():
    b, h, t, d, steps = (int(a) for a in sys.argv[1:6])
    torch.set_num_threads(int(sys.argv[6]) if len(sys.argv) > 6 else 1)
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(b, h, t, d, generator=g, requires_grad=True) for _ in range(3))
    target = torch.randn(b, h, t, d, generator=g)
    mask = torch.full((t, t), float("-inf")).triu(1)
    times = []
    for s in range(steps + 5):
        t0 = time.perf_counter()
        p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + mask, -1)
        loss = (p @ v * target).sum() / b
        loss.backward()
        q.grad = k.grad = v.grad = None
        if s >= 5:
            times.append(time.perf_counter() - t0)
    times.sort()
    print(f"min {times[0] * 1e6:.1f} median {times[len(times) // 2] * 1e6:.1f}")


main()
