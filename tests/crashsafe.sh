#!/usr/bin/env bash
# crashsafe.sh NNC WORKDIR — checkpoint files survive crashes and full disks.
#
# A small generated MLP (64 -> 256 -> 10, adam: a checkpoint of ~300 KB) trains on 2000
# random examples with --checkpoint CKPT --checkpoint-every 1, so it rewrites CKPT on every
# optimizer step.  It is killed with SIGKILL after a random delay (TRIALS trials, default
# 40, delays of 5-150 ms, seeded by CRASHSAFE_SEED so a failure replays), each trial
# resuming from the last one's checkpoint (the first is killed only once it has written
# one).  After every kill:
#   - once CKPT has been written it exists, and `m export --load CKPT` reads it;
#   - no temporary file stands in its place (CKPT is a whole safetensors file; stale
#     CKPT.tmp.PID files of killed writers are counted and removed);
#   - `m train --resume CKPT` accepts it (the next trial).
# Then a full disk: with `ulimit -f` below the checkpoint's size (SIGXFSZ ignored, so
# writes fail with EFBIG), `m train --resume CKPT --checkpoint CKPT` must exit non-zero
# with a message naming CKPT, leave CKPT byte-identical, and leave no temporary file.
# Prints PASS/FAIL per check and ends with `N passed, M failed`.
set -u
. "$(dirname "$0")/lib.sh"
NNC=$(realpath "$1")
WORK=$2
TRIALS=${CRASHSAFE_TRIALS:-40}
RANDOM=${CRASHSAFE_SEED:-8}          # seeds bash's $RANDOM: the same delays every run
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1


cat >cs.nn <<'NN'
model cs
input  x: [64]
label  y: class(10)
h      = relu(dense(x, 256))
logits = dense(h, 10)
loss   = cross_entropy(logits, y)
output probs = softmax(logits)
train { batch = 16; epochs = 1000; optimizer = adam(lr=0.001) }
NN
python3 - 2000 data.safetensors <<'PY'
import json, random, struct, sys
n = int(sys.argv[1]); r = random.Random(1)
x = struct.pack('<%df' % (n * 64), *[r.uniform(-1, 1) for _ in range(n * 64)])
y = struct.pack('<%dq' % n, *[r.randrange(10) for _ in range(n)])
h = json.dumps({'x': {'dtype': 'F32', 'shape': [n, 64], 'data_offsets': [0, len(x)]},
                'y': {'dtype': 'I64', 'shape': [n], 'data_offsets': [len(x), len(x) + len(y)]}}).encode()
h += b' ' * (-len(h) % 8)
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(h)) + h + x + y)
PY
if "$NNC" cs.nn --exe -o cs >build.log 2>&1; then pass "compile the model"; else
    fail "compile the model" build.log
    finish
    exit 1
fi

# ---- SIGKILL at random moments --------------------------------------------------------
CKPT=$WORK/ck.safetensors
bad_load=0 missing=0 early_exit=0 stale=0 written=0
for t in $(seq 1 "$TRIALS"); do
    if [ -f "$CKPT" ]; then resume="--resume $CKPT"; else resume=""; fi
    ms=$((5 + RANDOM % 146))
    # shellcheck disable=SC2086
    ./cs train --train data.safetensors $resume --checkpoint "$CKPT" --checkpoint-every 1 \
        >"train.$t.log" 2>&1 &
    pid=$!
    if [ "$t" -eq 1 ]; then          # the first run: wait for its first checkpoint (<= 60 s)
        for _ in $(seq 600); do [ -f "$CKPT" ] && break; sleep 0.1; done
    fi
    sleep "$(printf '0.%03d' "$ms")"
    kill -KILL "$pid" 2>/dev/null
    { wait "$pid"; } 2>/dev/null       # no "Killed" line from the shell
    rc=$?
    if [ "$rc" -ne 137 ]; then        # it ended by itself: only an error can do that here
        early_exit=$((early_exit + 1))
        echo "    trial $t: the trainer exited with status $rc before the kill:"
        tail -3 "train.$t.log" | sed 's/^/    /'
    fi
    for f in "$CKPT".tmp.*; do [ -e "$f" ] && stale=$((stale + 1)) && rm -f "$f"; done
    if [ -f "$CKPT" ]; then
        written=1
        if ! ./cs export --load "$CKPT" --out params.safetensors >"export.$t.log" 2>&1; then
            bad_load=$((bad_load + 1))
            echo "    trial $t (killed after $ms ms): the checkpoint does not load:"
            sed 's/^/    /' "export.$t.log"
            cp "$CKPT" "bad.$t.safetensors"
        fi
    elif [ "$written" -eq 1 ]; then
        missing=$((missing + 1))
        echo "    trial $t (killed after $ms ms): the checkpoint has disappeared"
    fi
done
step=$(head -c 4096 "$CKPT" 2>/dev/null | grep -ao '"step": *"[0-9]*"' | head -1)
echo "    $TRIALS kills; last checkpoint ${step:-none}; $stale stale temporary files removed"
[ "$written" -eq 1 ] && pass "a checkpoint was written before the kills" ||
    fail "a checkpoint was written before the kills (the delays are too short for this machine?)"
[ "$bad_load" -eq 0 ] && pass "every killed run's checkpoint loads ($TRIALS kills)" ||
    fail "every killed run's checkpoint loads ($bad_load of $TRIALS did not)"
[ "$missing" -eq 0 ] && pass "the checkpoint never disappears" ||
    fail "the checkpoint never disappears ($missing times it did)"
[ "$early_exit" -eq 0 ] && pass "every resumed run kept running until killed" ||
    fail "every resumed run kept running until killed ($early_exit did not)"

# ---- a full disk ----------------------------------------------------------------------
# ulimit -f counts 1024-byte blocks in bash; the checkpoint is ~300 KB, the logs tiny.
if [ -f "$CKPT" ]; then
    cp "$CKPT" before.safetensors
    (
        trap '' XFSZ
        ulimit -f 64
        exec ./cs train --train data.safetensors --resume "$CKPT" --checkpoint "$CKPT" \
            --checkpoint-every 1 --epochs 2000
    ) >full.out 2>full.err
    rc=$?
    { cat full.out full.err; echo "(exit status $rc)"; } >full.log
    [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && pass "full disk: the trainer exits with an error (status $rc)" ||
        fail "full disk: the trainer exits with an error" full.log
    grep -q "$CKPT" full.err && pass "full disk: the message names the checkpoint: $(head -c 200 full.err | tr '\n' ' ')" ||
        fail "full disk: the message names the checkpoint" full.log
    cmp -s "$CKPT" before.safetensors && pass "full disk: the old checkpoint is intact" ||
        fail "full disk: the old checkpoint is intact" full.log
    ls "$CKPT".tmp.* >/dev/null 2>&1 && fail "full disk: no temporary file is left" ||
        pass "full disk: no temporary file is left"
    ./cs export --load "$CKPT" --out params.safetensors >export.full.log 2>&1 &&
        pass "full disk: the checkpoint still loads" || fail "full disk: the checkpoint still loads" export.full.log
    # the same through --save at the end of a run
    cp "$CKPT" save.safetensors
    cp save.safetensors save.before
    (
        trap '' XFSZ
        ulimit -f 64
        exec ./cs train --train data.safetensors --load save.safetensors --save save.safetensors --epochs 1
    ) >fullsave.out 2>fullsave.err
    rc=$?
    { cat fullsave.out fullsave.err; echo "(exit status $rc)"; } >fullsave.log
    [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && grep -q save.safetensors fullsave.err &&
        cmp -s save.safetensors save.before &&
        pass "full disk: --save fails naming its file and keeps the old one" ||
        fail "full disk: --save fails naming its file and keeps the old one" fullsave.log
else
    fail "full disk: no checkpoint to test with"
fi
finish
