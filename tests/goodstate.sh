#!/usr/bin/env bash
# goodstate.sh NNC WORKDIR — the trainer keeps only good states (issue 22).
#
# Two small generated MLPs (64 -> 32 -> 10, adam, batch 16) train on 800 random examples
# (50 steps an epoch):
#   - `sq` adds sqrt(h * k) to its hidden layer, k an input that is 1 except for one
#     example whose k is 0: that example's gradient is NaN (sqrt's slope at 0 times 0)
#     while its loss stays finite.  With --checkpoint-every 1 the run must stop with the
#     parameter and the gradient named, a non-zero status, the last good checkpoint in
#     place (it loads, one step before the bad one) and no --save written; without
#     checkpoints, at the epoch's end, the same.  `tl` adds sqrt(k) alone: a test set with
#     a k of -1 gives a NaN test loss, which stops the run unsaved too.
#   - `mlp` trains one good epoch; resumed with --lr 3e38 (parameters near FLT_MAX) or
#     --lr 10 (a loss that climbs) it must stop before touching its checkpoint (compared
#     byte for byte), the second with the divergence guard's message; --lr 1e10 warns of
#     an absurd loss; --diverge-factor 0 turns the guard off.  Inputs scaled by 1e25 give a
#     finite loss and an adam state overflowing to inf: stopped at the epoch's end, unsaved.
#   - checkpoints damaged in their optimizer state (NaN; a negative second moment) or their
#     position (a batch past the end of the epoch, a step that does not match) are refused
#     by --resume, naming the file and what is wrong, and the first by --load too.
#   - a planted CKPT.tmp.PID of a dead process is removed by the next save to CKPT; one of a
#     live process stays.
# Prints PASS/FAIL per check and ends with `N passed, M failed`.
set -u
. "$(dirname "$0")/lib.sh"
start_work "$1" "$2"

model() {   # model NAME EXTRA-INPUT HIDDEN-EXPRESSION
    cat >"$1.nn" <<NN
model $1
input  x: [64]
$2
label  y: class(10)
h      = relu(dense(x, 32))
g      = $3
logits = dense(g, 10)
loss   = cross_entropy(logits, y)
output probs = softmax(logits)
train { batch = 16; epochs = 1; seed = 3; optimizer = adam(lr=0.003) }
NN
}
model mlp "" "h"
model sq "input  k: [32]" "h + sqrt(h * k)"
model tl "input  k: [32]" "h + sqrt(k)"

# st.py: the data, and the checkpoint surgery of the checks below
cat >st.py <<'PY'
import json, random, struct, sys
def read(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    return json.loads(b[8:8 + n]), b[8 + n:]
def write(path, head, data):
    h = json.dumps(head, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + data)
def data(path, n, bad, kbad):   # x [n, 64], k [n, 32] (1, kbad for example `bad`), y [n]
    r = random.Random(1)
    x = struct.pack('<%df' % (n * 64), *[r.uniform(-1, 1) for _ in range(n * 64)])
    k = struct.pack('<%df' % (n * 32), *[kbad if i // 32 == bad else 1.0 for i in range(n * 32)])
    y = struct.pack('<%dq' % n, *[r.randrange(10) for _ in range(n)])
    head, at = {}, 0
    for name, blob, dt, shape in (('x', x, 'F32', [n, 64]), ('k', k, 'F32', [n, 32]), ('y', y, 'I64', [n])):
        head[name] = {'dtype': dt, 'shape': shape, 'data_offsets': [at, at + len(blob)]}
        at += len(blob)
    write(path, head, x + k + y)
def state(src, dst, element, value):   # optimizer.state[element] = value
    head, d = read(src)
    at = head['optimizer.state']['data_offsets'][0] + 4 * element
    write(dst, head, d[:at] + struct.pack('<f', value) + d[at + 4:])
def meta(src, dst, key, value):
    head, d = read(src)
    head['__metadata__'][key] = value
    write(dst, head, d)
def scale(src, dst, factor):   # x times factor
    head, d = read(src)
    s, e = head['x']['data_offsets']
    x = struct.unpack('<%df' % ((e - s) // 4), d[s:e])
    write(dst, head, d[:s] + struct.pack('<%df' % len(x), *[v * factor for v in x]) + d[e:])
def get(src, key):
    print(read(src)[0]['__metadata__'][key])
cmd = sys.argv[1]
if cmd == 'data': data(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
elif cmd == 'state': state(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
elif cmd == 'meta': meta(*sys.argv[2:6])
elif cmd == 'get': get(sys.argv[2], sys.argv[3])
elif cmd == 'scale': scale(sys.argv[2], sys.argv[3], float(sys.argv[4]))
PY
python3 st.py data data.safetensors 800 700 0
python3 st.py data ones.safetensors 800 -1 0
python3 st.py data negative.safetensors 800 5 -1
for m in mlp sq tl; do
    check "compile $m" "$NNC" "$m.nn" --exe -o "$m"
done

failed_with() {   # failed_with NAME TEXT...: non-zero (not a signal), stderr has every TEXT
    local name=$1 t
    shift
    [ "$(cat "$name.rc")" -ne 0 ] && [ "$(cat "$name.rc")" -lt 128 ] || return 1
    for t in "$@"; do grep -qF -- "$t" "$name.err" || return 1; done
}
export -f failed_with
verdict() {   # verdict NAME DESCRIPTION COMMAND...
    local name=$1 what=$2
    shift 2
    if "$@"; then pass "$what: $(head -c 400 "$name.err" | tr '\n' ' ')"; else fail "$what" "$name.log"; fi
}
TRAIN=(--train data.safetensors)

# ---- a NaN gradient with a finite loss ------------------------------------------------
run_kept sqck ./sq train "${TRAIN[@]}" --checkpoint sq.ck --checkpoint-every 1 --save sq.save
verdict sqck "a NaN gradient stops the run, naming the parameter and its gradient" \
    failed_with sqck "parameter 'h.weight' holds" "the gradient of 'h.weight' holds" "sq.ck is left as it was"
bad_step=$(grep -o 'after step [0-9]*' sqck.err | grep -o '[0-9]*$')
verdict sqck "the last good checkpoint stays, one step before the bad one, and loads" \
    bash -c "[ -n '$bad_step' ] && [ \"\$(python3 st.py get sq.ck step)\" = \$(($bad_step - 1)) ] && \
             ./sq export --load sq.ck --out sq.params"
verdict sqck "--save is not written" test ! -e sq.save
run_kept sqend ./sq train "${TRAIN[@]}" --test data.safetensors --save sq.save
verdict sqend "without checkpoints the epoch's end stops it, and --save is not written" \
    bash -c "failed_with sqend \"parameter 'h.weight' holds\" 'training stopped without saving it' && [ ! -e sq.save ]"

# a test example whose k is -1: a NaN test loss from finite parameters
run_kept tl ./tl train --train ones.safetensors --test negative.safetensors --save tl.save
verdict tl "a NaN test loss stops the run, and --save is not written" \
    bash -c "failed_with tl 'the test loss is nan after epoch 1' && [ ! -e tl.save ]"

# ---- divergence -----------------------------------------------------------------------
check "one good epoch" ./mlp train "${TRAIN[@]}" --checkpoint good.ck --checkpoint-every 1
cp good.ck before.ck
run_kept lr38 ./mlp train "${TRAIN[@]}" --resume good.ck --lr 3e38 --checkpoint good.ck --checkpoint-every 1 --epochs 3
verdict lr38 "--resume --lr 3e38 stops and the checkpoint is unchanged" \
    bash -c "failed_with lr38 'a lower --lr may help' && cmp good.ck before.ck"
run_kept lr10 ./mlp train "${TRAIN[@]}" --resume good.ck --lr 10 --checkpoint good.ck --checkpoint-every 1 --epochs 3
verdict lr10 "--resume --lr 10: the guard stops it and the checkpoint is unchanged" \
    bash -c "failed_with lr10 'training diverged: the training loss' 'rose from' '--diverge-factor' && cmp good.ck before.ck"
run_kept lr10end ./mlp train "${TRAIN[@]}" --resume good.ck --lr 10 --checkpoint good.ck --epochs 3 --save lr10.save
verdict lr10end "the same with end-of-epoch checkpoints and --save" \
    bash -c "failed_with lr10end 'training diverged' && cmp good.ck before.ck && [ ! -e lr10.save ]"
run_kept absurd ./mlp train "${TRAIN[@]}" --resume good.ck --lr 1e10 --epochs 3
verdict absurd "an absurd finite loss is warned of" \
    bash -c "failed_with absurd 'warning: the training loss is' 'a loss this large'"
run_kept off ./mlp train "${TRAIN[@]}" --resume good.ck --lr 10 --epochs 2 --diverge-factor 0 --save off.save
verdict off "--diverge-factor 0 turns the guard off: the run goes on to its end" \
    bash -c "[ \"\$(cat off.rc)\" = 0 ] && ! grep -q 'diverged' off.err && grep -q 'epoch 2/2' off.out && [ -e off.save ]"
# inputs of 1e25: a finite (absurd) loss, gradients whose squares overflow adam's second
# moment to inf while the parameters stay finite
python3 st.py scale data.safetensors huge.safetensors 1e25
run_kept overflow ./mlp train --train huge.safetensors --save overflow.save
verdict overflow "an optimizer state that overflows stops the run unsaved, naming its parameter" \
    bash -c "failed_with overflow \"'optimizer.state' holds inf at element\" \"of 'h.weight' element\" \
             'warning: the training loss is' && [ ! -e overflow.save ]"
run_kept factor ./mlp train "${TRAIN[@]}" --diverge-factor 1
verdict factor "--diverge-factor 1 is a usage error" bash -c "[ \"\$(cat factor.rc)\" = 2 ] && grep -q 'above 1' factor.err"

# ---- damaged checkpoints --------------------------------------------------------------
python3 st.py state before.ck nanstate.ck 100 nan
run_kept nanstate ./mlp train "${TRAIN[@]}" --resume nanstate.ck --epochs 2
verdict nanstate "--resume refuses a NaN in optimizer.state" \
    failed_with nanstate "nanstate.ck: 'optimizer.state' holds nan at element 100"
run_kept nanload ./mlp train "${TRAIN[@]}" --load nanstate.ck --epochs 1
verdict nanload "--load refuses it too" failed_with nanload "nanstate.ck: 'optimizer.state' holds nan"
# adam's state: [first moments | second moments], 2416 elements each (2410 and padding)
python3 st.py state before.ck negstate.ck 2500 -1
run_kept negstate ./mlp train "${TRAIN[@]}" --resume negstate.ck --epochs 2
verdict negstate "--resume refuses a negative second moment" \
    failed_with negstate "negstate.ck: 'optimizer.state' holds -1 at element 2500, a negative sum of squares"
python3 st.py meta before.ck pastend.ck batch 50
run_kept pastend ./mlp train "${TRAIN[@]}" --resume pastend.ck --epochs 2
verdict pastend "--resume refuses a batch past the end of the epoch" \
    failed_with pastend "pastend.ck: checkpoint metadata 'batch' is 50, past the end of the epoch"
python3 st.py meta before.ck badstep.ck batch 7
run_kept badstep ./mlp train "${TRAIN[@]}" --resume badstep.ck --epochs 2
verdict badstep "--resume refuses a step that does not match the epoch and batch" \
    failed_with badstep "badstep.ck: checkpoint metadata 'step' is 50, but epoch 1 and batch 7"

# ---- stale temporary files ------------------------------------------------------------
sh -c 'exit 0' &
dead=$!
wait "$dead"
sleep 300 &
live=$!
cp before.ck tmp.ck
echo half >"tmp.ck.tmp.$dead"
echo half >"tmp.ck.tmp.$live"
run_kept stale ./mlp train "${TRAIN[@]}" --resume tmp.ck --checkpoint tmp.ck --epochs 2
verdict stale "a dead process's tmp.ck.tmp.PID is removed by the next save" \
    bash -c "[ \"\$(cat stale.rc)\" = 0 ] && [ ! -e tmp.ck.tmp.$dead ]"
verdict stale "a live process's stays" test -e "tmp.ck.tmp.$live"
kill "$live"
wait "$live" 2>/dev/null
finish
