#!/usr/bin/env bash
# resume.sh NNC WORKDIR — stopping a training run with SIGKILL and resuming it from its last
# checkpoint gives bit-identical parameters to the uninterrupted run.
#
# A small MLP with dropout and nadam (whose state ends with a double) and a step schedule is
# trained for 3 epochs on the first 2000 Fashion-MNIST test images (written here to a
# safetensors file), once straight through.  Then the same run is started with
# --checkpoint-every 1 and killed once the checkpoint's step (read from its header) passes a
# target, resumed with --resume, and its parameters (`m export`, parameters only) and log
# rows compared with the uninterrupted run's, byte for byte.  One thread, same binary.
# Then the same for a model with adamw, a warmup_cosine schedule evaluated every optimizer
# step (t is the step count the checkpoint keeps), a frozen parameter and a const tensor.
set -u
. "$(dirname "$0")/lib.sh"
NNC=$(realpath "$1")
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

fashion_safetensors 2000 data.safetensors
small_model
check "compile the model" "$NNC" small.nn --exe -o small
ARGS=(--train data.safetensors --val-split 0.2 --epochs 3)

# the value of metadata KEY in a checkpoint's header (empty when there is no file yet)
meta() { head -c 1024 "$1" 2>/dev/null | grep -ao "\"$2\":\"[0-9]*\"" | grep -o '[0-9][0-9]*'; }
export -f meta log_rows

check "uninterrupted run" bash -c "./small train ${ARGS[*]} --log full.csv --save full.safetensors >full.txt && ./small export --load full.safetensors --out full.params"
check "--checkpoint-every does not change the run" bash -c "./small train ${ARGS[*]} --checkpoint every.ckpt --checkpoint-every 1 --save every.safetensors >/dev/null && ./small export --load every.safetensors --out every.params && cmp full.params every.params"
check "the checkpoint holds the optimizer state and the run's position" bash -c \
    "head -c 1024 every.ckpt | grep -q '\"optimizer.state\":{\"dtype\":\"F32\"' && [ \"\$(meta every.ckpt step)\" = 300 ] && [ \"\$(meta every.ckpt epoch)\" = 3 ] && [ \"\$(meta every.ckpt batch)\" = 0 ]" 
check "--resume refuses a parameter file" bash -c "! ./small train ${ARGS[*]} --resume full.params 2>err.txt && grep -q 'not a checkpoint' err.txt"

# start a checkpointed run, kill it once its checkpoint reaches step TARGET; prints where
run_and_kill() {   # run_and_kill TARGET CKPT [extra train args]
    local target=$1 ck=$2
    shift 2
    ${BIN:-./small} train "${ARGS[@]}" --log "$ck.csv" --checkpoint "$ck" --checkpoint-every 1 "$@" >/dev/null 2>&1 &
    local pid=$! step
    while kill -0 "$pid" 2>/dev/null; do
        step=$(meta "$ck" step)
        if [ -n "$step" ] && [ "$step" -ge "$target" ]; then
            kill -KILL "$pid" 2>/dev/null
            break
        fi
        sleep 0.005
    done
    wait "$pid" 2>/dev/null
    echo "killed at step $(meta "$ck" step): epoch $(meta "$ck" epoch) done, batch $(meta "$ck" batch) of the next"
}

interrupted=0
# one kill each: early in epoch 1, at the end of epoch 1 (100 steps an epoch), in epoch 2, late in epoch 3
for target in 17 100 163 261; do
    ck=k$target.ckpt
    where=$(run_and_kill "$target" "$ck")
    [ "$(meta "$ck" step)" -lt 300 ] && interrupted=$((interrupted + 1))
    cp "$ck" "$ck.killed"
    check "kill at step >= $target ($where), resume: same parameters" bash -c \
        "./small train ${ARGS[*]} --resume $ck --log $ck.csv --checkpoint $ck --save $ck.final >/dev/null && \
         ./small export --load $ck.final --out $ck.params && cmp full.params $ck.params"
    check "kill at step >= $target, resume: same log rows" bash -c "diff <(log_rows full.csv) <(log_rows $ck.csv)"
done
# the comparison can fail: the same checkpoint resumed with another seed (other shuffles and
# dropout masks) ends elsewhere
check "control: resuming with another --seed gives other parameters" bash -c \
    "./small train ${ARGS[*]} --resume k163.ckpt.killed --seed 12 --save other.final >/dev/null && \
     ./small export --load other.final --out other.params && ! cmp -s full.params other.params"
# killed twice, resumed twice
where1=$(run_and_kill 40 twice.ckpt)
where2=$(run_and_kill 210 twice.ckpt --resume twice.ckpt)
check "killed twice ($where1; $where2), resumed: same parameters" bash -c \
    "./small train ${ARGS[*]} --resume twice.ckpt --log twice.ckpt.csv --save twice.final >/dev/null && \
     ./small export --load twice.final --out twice.params && cmp full.params twice.params && diff <(log_rows full.csv) <(log_rows twice.ckpt.csv)"
check "at least two runs were killed before they finished ($interrupted of 4)" [ "$interrupted" -ge 2 ]

cat >smallw.nn <<'EOF'
model smallw
input  x: [784]
label  y: class(10)
param  scale: [48] = uniform(0.5, 1.5) frozen
const  shift: [48] = arange
h1     = dropout(relu(dense(x, 48) * scale + shift * 0.001), 0.3)
logits = dense(h1, 10)
loss   = cross_entropy(logits, y)
train {
  batch     = 16
  seed      = 11
  optimizer = adamw(lr=0.002, weight_decay=0.05)
  schedule  = warmup_cosine(40, 250)
  schedule_every = step
}
EOF
check "compile the adamw model" "$NNC" smallw.nn --exe -o smallw
check "adamw, per-step schedule: uninterrupted run" bash -c "./smallw train ${ARGS[*]} --log wfull.csv --save wfull.safetensors >/dev/null && ./smallw export --load wfull.safetensors --out wfull.params"
for target in 57 130; do
    ck=w$target.ckpt
    where=$(BIN=./smallw run_and_kill "$target" "$ck")
    check "adamw, per-step schedule: kill at step >= $target ($where), resume: same parameters and log" bash -c \
        "./smallw train ${ARGS[*]} --resume $ck --log $ck.csv --save $ck.final >/dev/null && \
         ./smallw export --load $ck.final --out $ck.params && cmp wfull.params $ck.params && diff <(log_rows wfull.csv) <(log_rows $ck.csv)"
done

finish
