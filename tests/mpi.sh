#!/usr/bin/env bash
# mpi.sh NNC WORKDIR — data-parallel training under mpirun (docs/distributed.md): a model
# with batchnorm and dropout trained by 1, 2 and 3 ranks of `nnc --exe --mpi` against the
# one-process trainer, with the same global batch.
#
# - 1 rank gives the one-process trainer's checkpoint bit for bit;
# - 2 and 3 ranks with --sync-batchnorm give its parameters within 1e-9 in f64 (momentum
#   SGD and Adam; measured about 1e-13): not bit for bit, since a rank's gradient is summed
#   over its share before the shares are added.  In f32 that rounding (1e-7) is enough
#   to flip, now and then, a ReLU whose input is within it of 0, which moves that example's
#   gradient for good: measured 3e-6 (2 ranks) and 1e-5 (3 ranks) after the 120 steps at
#   -O3, but 2e-2 at 3 ranks in the -O1 sanitizer build, so f32 is held to 5e-2, which
#   still catches a wrong share, scale or mask (those differ by more than 1e-1);
#   --check-ranks 1 checks after every step that the ranks hold the same parameters;
# - with each rank's own batch statistics (the default, as PyTorch's DDP) the run differs;
# - the test set is scored in shards: the last epoch's test loss is `m eval`'s;
# - rank 1 killed with SIGKILL mid-epoch ends the job with a message, the checkpoint stays
#   whole, and --resume from it ends bit for bit where an uninterrupted run does; a
#   SIGTERM to one rank stops every rank after the same step, also resumable exactly;
# - what cannot run is refused with a message.
set -u
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
start_work "$1" "$2"
# mpirun refuses root unless told; CI runs as root.  Two cores: oversubscribe for 3 ranks.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN="mpirun --oversubscribe"
# under scripts/test.sh --sanitize: Open MPI's own allocations, kept until exit, are not
# nnc's leaks (tests/mpi.supp); its libraries have no frame pointers, so LeakSanitizer
# needs the slow unwinder to see them in a stack, and its components must stay loaded
export LSAN_OPTIONS="suppressions=$HERE/mpi.supp:print_suppressions=0"
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"
export OMPI_MCA_mca_base_component_disable_dlclose=1

fashion_safetensors 1790 all.safetensors
python3 - <<'PY'
# 890 training examples (batches of 15: the last has 5), 200 test ones, and 16 examples
# whose last batch has 1, fewer than 2 ranks
import json, struct
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); return b[8 + n:], h
def save(p, body, h, lo, hi):
    out, off, hdr = b'', 0, {}
    for k in ('x', 'y'):
        v = h[k]; s, e = v['data_offsets']; per = (e - s) // v['shape'][0]
        part = body[s + lo * per:s + hi * per]
        hdr[k] = {'dtype': v['dtype'], 'shape': [hi - lo] + v['shape'][1:], 'data_offsets': [off, off + len(part)]}
        out += part; off += len(part)
    j = json.dumps(hdr).encode(); j += b' ' * (-len(j) % 8)
    open(p, 'wb').write(struct.pack('<Q', len(j)) + j + out)
body, h = load('all.safetensors')
save('train.safetensors', body, h, 0, 890)
save('test.safetensors', body, h, 890, 1090)
save('sixteen.safetensors', body, h, 1090, 1106)
save('big.safetensors', body, h, 0, 1790)
PY
# relclose A B TOL: every tensor of A within TOL of B's, relative to the tensor's largest
# magnitude (batchnorm's running statistics and the optimizer state included)
cat >relclose.py <<'PY'
import json, struct, sys
def load(p):
    b = open(p, 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); d = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        s, e = v['data_offsets']; raw = b[8 + n + s:8 + n + e]; f = {'F32': 'f', 'F64': 'd'}[v['dtype']]
        d[k] = struct.unpack('<%d%s' % (len(raw) // struct.calcsize(f), f), raw)
    return d
a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
assert sorted(a) == sorted(b), (sorted(a), sorted(b))
worst, where = 0.0, ''
for k in a:
    scale = max(max(abs(x) for x in a[k]), 1e-30)
    d = max(abs(x - y) for x, y in zip(a[k], b[k])) / scale
    if d > worst: worst, where = d, k
print('largest difference %.3g (%s), tolerance %g' % (worst, where, tol))
sys.exit(0 if worst <= tol else 1)
PY

cat >bn.nn <<'EOF'
model bn
input  x: [784]
label  y: class(10)
c      = relu(batchnorm(conv2d(reshape(x, [1, 28, 28]), 4, kernel=3, stride=2, bias=false)))
h      = dropout(relu(batchnorm(dense(flatten(c), 32, bias=false))), 0.3)
logits = dense(h, 10)
loss   = cross_entropy(logits, y)
output probs = softmax(logits)
train {
  batch     = 15
  epochs    = 2
  seed      = 5
  optimizer = momentum(lr=0.05)
}
EOF
sed 's/momentum(lr=0.05)/adam(lr=0.003)/' bn.nn >adam.nn
check "compile the one-process trainer" "$NNC" bn.nn --exe -o one
check "compile the MPI trainer (--exe --mpi)" "$NNC" bn.nn --exe --mpi -o ranks
check "compile both in f64, and both in f64 with Adam" bash -c "'$NNC' bn.nn --dtype f64 --exe -o one64 &&
    '$NNC' bn.nn --dtype f64 --exe --mpi -o ranks64 && '$NNC' adam.nn --dtype f64 --exe -o adam64 &&
    '$NNC' adam.nn --dtype f64 --exe --mpi -o adamranks64"
TRAIN="--train train.safetensors"

check "one process" ./one train $TRAIN --save one.safetensors
check "1 rank: the one-process checkpoint, bit for bit" bash -c \
    "$MPIRUN -np 1 ./ranks train $TRAIN --save r1.safetensors --check-ranks 1 >/dev/null && cmp one.safetensors r1.safetensors"
check "one process, f64: momentum SGD and Adam" bash -c "./one64 train $TRAIN --save one64.safetensors >/dev/null &&
    ./adam64 train $TRAIN --save adam64.safetensors >/dev/null"
for np in 2 3; do
    check "$np ranks, f32, --sync-batchnorm: the same parameters on every rank after every step (--check-ranks 1)" \
        $MPIRUN -np $np ./ranks train $TRAIN --save r$np.safetensors --sync-batchnorm --check-ranks 1
    check "$np ranks, f32: the one-process parameters within 5e-2 (f32's rounding, see above)" \
        python3 relclose.py one.safetensors r$np.safetensors 5e-2
    check "$np ranks, f64, --sync-batchnorm, momentum SGD: the one-process parameters within 1e-9" bash -c \
        "$MPIRUN -np $np ./ranks64 train $TRAIN --save r64_$np.safetensors --sync-batchnorm --check-ranks 1 >/dev/null &&
         python3 relclose.py one64.safetensors r64_$np.safetensors 1e-9"
    check "$np ranks, f64, --sync-batchnorm, Adam: the one-process parameters within 1e-9" bash -c \
        "$MPIRUN -np $np ./adamranks64 train $TRAIN --save a64_$np.safetensors --sync-batchnorm --check-ranks 1 >/dev/null &&
         python3 relclose.py adam64.safetensors a64_$np.safetensors 1e-9"
done
check "control: 2 ranks give other bits than one process (the sum's order)" bash -c "! cmp -s one64.safetensors r64_2.safetensors"
check "each rank's own batch statistics (the default): the ranks agree, the run differs from one process" bash -c \
    "$MPIRUN -np 2 ./ranks64 train $TRAIN --save local.safetensors --check-ranks 1 >/dev/null && \
     ! python3 relclose.py one64.safetensors local.safetensors 1e-1"

# sharded evaluation: the last epoch's test loss is the whole test set's
check "2 ranks score the test set in shards: the last epoch's test loss is m eval's" bash -c \
    "$MPIRUN -np 2 ./ranks train $TRAIN --test test.safetensors --sync-batchnorm --log shards.csv --save ev.safetensors >/dev/null && \
     ./one eval --load ev.safetensors --test test.safetensors >eval.txt && \
     python3 -c \"
import csv, re, sys
row = list(csv.DictReader(open('shards.csv')))[-1]
whole = float(re.search(r'loss:? *([0-9.]+)', open('eval.txt').read()).group(1))
print(row['test_loss'], whole)
sys.exit(0 if abs(float(row['test_loss']) - whole) <= 1e-4 * whole else 1)\""

check "other commands under mpirun run on rank 0 alone: eval prints its result once" bash -c \
    "$MPIRUN -np 2 ./ranks eval --load ev.safetensors --test test.safetensors >eval2.txt && diff eval.txt eval2.txt"

# rank 1 killed mid-epoch; the job ends, the checkpoint stays whole, --resume completes
ARGS="--train big.safetensors --epochs 8 --checkpoint-every 20"
check "uninterrupted 2-rank run" $MPIRUN -np 2 ./ranks train $ARGS --sync-batchnorm --checkpoint full.ckpt --save full.safetensors
rank_pid() {   # rank_pid PROG RANK: the pid of that rank of the running job
    local p   # by command line: the trainer restarts itself as /proc/self/exe (runtime/gemm.c)
    for p in $(pgrep -f "^./$1 train"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
    done
}
$MPIRUN -np 2 ./ranks train $ARGS --sync-batchnorm --checkpoint kill.ckpt --save kill.safetensors >kill.out 2>&1 &
job=$!
for _ in $(seq 600); do [ -s kill.ckpt ] && break; sleep 0.05; done   # the first periodic checkpoint
victim=$(rank_pid ranks 1)
[ -n "$victim" ] && kill -9 "$victim"
status=0
wait $job || status=$?
check "SIGKILL to rank 1 (pid ${victim:-none}) ends the job with a message" bash -c \
    "[ $status -ne 0 ] && grep -q 'exited on signal 9' kill.out && grep -q 'if a rank has died, the job ends now' kill.out"
check "the job ended before its last step: the checkpoint is a partial run's" bash -c \
    "[ ! -e kill.safetensors ] && ./one export --load kill.ckpt --out kill.params"
check "--resume from the last checkpoint: the uninterrupted run's model, bit for bit" bash -c \
    "$MPIRUN -np 2 ./ranks train $ARGS --sync-batchnorm --resume kill.ckpt --checkpoint kill.ckpt --save kill.safetensors >/dev/null && \
     cmp full.safetensors kill.safetensors"
# SIGTERM to one rank: every rank stops after the same step, saves, and says how to resume
$MPIRUN -np 2 ./ranks train $ARGS --sync-batchnorm --checkpoint term.ckpt --save term.safetensors >term.out 2>&1 &
job=$!
for _ in $(seq 600); do [ -s term.ckpt ] && break; sleep 0.05; done
victim=$(rank_pid ranks 1)
[ -n "$victim" ] && kill -TERM "$victim"
status=0
wait $job || status=$?
check "SIGTERM to rank 1 alone: every rank stops after one step, rank 0 says how to resume" bash -c \
    "[ $status -ne 0 ] && grep -q 'a signal to another rank: stopped after step' term.out && grep -q 'to resume:' term.out"
check "... and --resume ends bit for bit where the uninterrupted run does" bash -c \
    "$MPIRUN -np 2 ./ranks train $ARGS --sync-batchnorm --resume term.ckpt --checkpoint term.ckpt --save term.safetensors >/dev/null && \
     cmp full.safetensors term.safetensors"

# refusals
expect "--sync-batchnorm needs a rank's share of every batch" 1 "fewer than the 2 ranks" \
    $MPIRUN -np 2 ./ranks train --train sixteen.safetensors --sync-batchnorm
sed 's/batch     = 15/batch     = 1/' bn.nn >one_each.nn
check "compile a batch-1 model" "$NNC" one_each.nn --exe --mpi -o one_each
expect "a global batch smaller than the ranks is refused" 1 "cannot give each of 2 ranks one" \
    $MPIRUN -np 2 ./one_each train $TRAIN
expect "the one-process trainer refuses --sync-batchnorm" 2 "build the trainer with \`nnc MODEL.nn --exe --mpi\`" \
    ./one train $TRAIN --sync-batchnorm
expect "nnc refuses --mpi without --exe" 2 "give it with --exe" "$NNC" bn.nn --mpi -o bn.c

finish
