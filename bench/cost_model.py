#!/usr/bin/env python3
"""cost_model.py COSTS.csv — docs/distributed.md's cost model of data-parallel training on a
cluster, from what bench/mpi.sh measured on one machine: each model's gradient bytes, its
compiled (global) batch and its step time on one rank of one thread.

Per optimizer step on N ranks:
  compute    t1 / N        the global batch split over the ranks (strong scaling; no rank
                           gets less than one example, so N <= batch), assuming a rank's
                           share costs in proportion to its examples (small shares run a
                           little worse than that: the estimate is optimistic)
  allreduce  2 (N-1)/N x bytes / bandwidth + 2 (N-1) x latency
                           a ring allreduce (reduce-scatter, then all-gather): each rank
                           sends and receives 2 (N-1)/N of the gradient block
  step       compute + allreduce, or with the sum overlapped with the backward pass (about
             2/3 of the compute), compute + max(0, allreduce - 2/3 compute)
The speedup over one rank is t1 / step; a model "stops scaling" at the N where adding ranks
no longer makes the step faster (the speedup's maximum).  Weak scaling keeps the compiled
batch on every rank (a global batch N times larger): its efficiency is t1 / (t1 + allreduce).
"""
import csv
import sys

LINKS = {'10 Gbit/s': 10e9 / 8, '100 Gbit/s': 100e9 / 8}
LATENCY = 5e-6          # per message of the ring, seconds (a TCP/Ethernet hop; InfiniBand ~1-2 us)
RANKS = [1, 2, 4, 8, 16, 32, 64, 128, 256]


def allreduce(n, nbytes, bw):
    return 0.0 if n == 1 else 2 * (n - 1) / n * nbytes / bw + 2 * (n - 1) * LATENCY


def step(t1, n, nbytes, bw, overlap=False):
    comp, ar = t1 / n, allreduce(n, nbytes, bw)
    return comp + (max(0.0, ar - 2 / 3 * comp) if overlap else ar)


def peak(t1, nbytes, bw, batch, overlap=False):
    """The rank count (at most the batch) where the strong-scaling speedup is largest."""
    n = max((n for n in RANKS if n <= batch), key=lambda n: t1 / step(t1, n, nbytes, bw, overlap))
    return n, t1 / step(t1, n, nbytes, bw, overlap)


def main(path):
    rows = list(csv.DictReader(open(path)))
    for r in rows:
        name, nbytes, batch, t1 = r['model'], int(r['grad_bytes']), int(r['batch']), float(r['step_seconds'])
        print('### %s: %.2f MB of gradients, global batch %d, %.3f ms a step on one rank\n'
              % (name, nbytes / 1e6, batch, t1 * 1e3))
        print('| ranks | allreduce ms, ' + ', '.join(LINKS) + ' | strong: compute ms | strong: speedup, '
              + ', '.join(LINKS) + ' | weak: efficiency, ' + ', '.join(LINKS) + ' |')
        print('|---:|---:|---:|---:|---:|')
        for n in RANKS[1:]:
            ar = ', '.join('%.3f' % (allreduce(n, nbytes, bw) * 1e3) for bw in LINKS.values())
            if n <= batch:
                comp = '%.3f' % (t1 / n * 1e3)
                sp = ', '.join('%.2f' % (t1 / step(t1, n, nbytes, bw)) for bw in LINKS.values())
            else:
                comp, sp = '-', '- (fewer examples than ranks)'
            weak = ', '.join('%.2f' % (t1 / (t1 + allreduce(n, nbytes, bw))) for bw in LINKS.values())
            print('| %d | %s | %s | %s | %s |' % (n, ar, comp, sp, weak))
        print()
        for k, bw in LINKS.items():
            n, sp = peak(t1, nbytes, bw, batch)
            no, spo = peak(t1, nbytes, bw, batch, overlap=True)
            nh, sph = peak(t1, nbytes / 2, bw, batch)
            def at(n, sp):
                return 'no speedup at any rank count' if n == 1 else '%d ranks (%.2fx)' % (n, sp)
            stop = ('no rank count helps: the sum of one step takes longer than the compute it saves'
                    if n == 1 else 'the speedup peaks at %s' % at(n, sp))
            print('- %s: %s; with the sum overlapped with the backward pass, %s; with gradients sent in '
                  '16 bits, %s; weak scaling (the compiled batch on every rank) keeps %.0f%% '
                  'efficiency at 256 ranks.' % (k, stop, at(no, spo), at(nh, sph),
                                                 100 * t1 / (t1 + allreduce(256, nbytes, bw))))
        print()


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: cost_model.py COSTS.csv (written by bench/mpi.sh)')
    main(sys.argv[1])
