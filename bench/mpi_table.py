#!/usr/bin/env python3
"""mpi_table.py RUNS.csv SUMS.csv — bench/mpi.sh's table: per model, the epoch times of
1 rank x 1 thread (A), 2 ranks x 1 thread (B) and 1 rank x 2 threads (C), min and median
over the rounds; each round's speedups A/B (ranks) and A/C (threads), best and median; B
against C; the share of B's epoch its ranks spent in the gradient sums (waits for the
slower rank included, from the trainer's closing line), and what the sums alone cost
(bench/allreduce.c's time times the steps of an epoch)."""
import csv
import statistics
import sys


def main(runs_path, sums_path):
    rows = list(csv.DictReader(open(runs_path)))
    sums = {r['model']: r for r in csv.DictReader(open(sums_path))}
    print('| model | 1 rank x 1 thread, s (min, median) | 2 ranks x 1 thread, s | 1 rank x 2 threads, s '
          '| 2 ranks over 1: speedup (best, median) | 2 threads over 1: speedup (best, median) '
          '| 2 ranks / 2 threads, time (min, median) | sums and waits, % of the 2-rank epoch '
          '| the sums alone, % of the 2-rank epoch |')
    print('|---|---|---|---|---|---|---|---|---|')
    for m in dict.fromkeys(r['model'] for r in rows):
        t = {c: {int(r['round']): float(r['seconds']) for r in rows if r['model'] == m and r['config'] == c}
             for c in 'ABC'}
        ab = [t['A'][k] / t['B'][k] for k in t['B']]
        ac = [t['A'][k] / t['C'][k] for k in t['C']]
        bc = [t['B'][k] / t['C'][k] for k in t['B']]
        share = [float(r['comm_share']) for r in rows if r['model'] == m and r['config'] == 'B' and r['comm_share']]
        alone = float(sums[m]['allreduce_us']) * 1e-6 * int(sums[m]['steps']) / statistics.median(t['B'].values())

        def span(v):
            return '%.2f, %.2f' % (min(v), statistics.median(v))

        def best(v):
            return '%.2fx, %.2fx' % (max(v), statistics.median(v))
        print('| %s | %s | %s | %s | %s | %s | %s | %.1f | %.1f |' % (
            m, span(t['A'].values()), span(t['B'].values()), span(t['C'].values()), best(ab), best(ac), span(bc),
            statistics.median(share) if share else float('nan'), 100 * alone))


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: mpi_table.py RUNS.csv SUMS.csv (written by bench/mpi.sh)')
    main(sys.argv[1], sys.argv[2])
