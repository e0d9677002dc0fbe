#!/usr/bin/env bash
# bench/rnn_scaling.sh: how the 2-layer LSTM character model scales with its sequence
# length T (issue 23's table).  For each T it writes the model
#
#   input  x: class(256) [T]
#   e = embedding(x, 256, 64);  h1 = lstm(e, 128);  h2 = lstm(h1, 128)
#   per-step labels:  label y: class(256) [T];  logits = dense(h2, 256)
#   or the last step: label y: class(256);  logits = dense(flatten(slice(h2, axis=0, start=-1)), 256)
#   loss = cross_entropy(logits, y) (its mean over the steps); Adam(lr=0.003), batch 64
#
# and measures: the lines of C `nnc --exe` writes, nnc's time (`nnc M -o model.c`, the
# least of NNC_RUNS), the C compiler's time and peak memory on exactly the command
# `nnc --exe` runs (codegen/build.c; printed by `nnc --exe -v`), under a timeout, and the
# time of one training epoch (the trainer's --log seconds: training only, no test pass)
# over a fixed generated text with `--text`.  Prints a markdown table.
#
#   bench/rnn_scaling.sh NNC [T...]            # default T: 25 100 400
#   nice bench/rnn_scaling.sh build/nnc 25 100
#
# Environment: LABELS (auto | steps | last; auto: per-step labels when the trainer's
# --text makes a label per step for a `class(256) [T]` label, tried on a T = 4 model,
# else the last step), CC_TIMEOUT (600 s per C compile: "> 600 s" in the table, and no
# epoch), EPOCH_TIMEOUT (1800 s), NNC_RUNS (3), CC_RUNS (1), EPOCH_RUNS (1): the least of
# the runs is reported; THREADS (1: OPENBLAS_NUM_THREADS and OMP_NUM_THREADS of the
# trainer), TEXT_BYTES (50000), WORKDIR (default a new temporary directory: models,
# trainers, logs, the text), NNC_CC as nnc's (default cc).
#
# The text is made, not downloaded: words of /usr/share/dict/american-english (Debian's
# wamerican, which scripts/deps.sh installs) drawn by a fixed linear congruential
# generator (exact in any awk's doubles), ten to a line, TEXT_BYTES bytes; its sha256 is printed under the table.
set -eu -o pipefail

die() { echo "rnn_scaling.sh: $*" >&2; exit 2; }
[ $# -ge 1 ] || die "usage: bench/rnn_scaling.sh NNC [T...]"
NNC=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -x "$NNC" ] || die "$1: not an executable nnc"
shift
[ $# -gt 0 ] || set -- 25 100 400
for t in "$@"; do case $t in ''|*[!0-9]*|0) die "T '$t' is not a positive integer" ;; esac; done
LABELS=${LABELS:-auto}
case $LABELS in auto|steps|last) ;; *) die "LABELS=$LABELS: auto, steps or last" ;; esac
CC_TIMEOUT=${CC_TIMEOUT:-600}
EPOCH_TIMEOUT=${EPOCH_TIMEOUT:-1800}
NNC_RUNS=${NNC_RUNS:-3}
CC_RUNS=${CC_RUNS:-1}
EPOCH_RUNS=${EPOCH_RUNS:-1}
THREADS=${THREADS:-1}
TEXT_BYTES=${TEXT_BYTES:-50000}
DICT=/usr/share/dict/american-english
[ -r "$DICT" ] || die "missing $DICT (apt install wamerican)"
[ -x /usr/bin/time ] || die "missing /usr/bin/time (apt install time)"
WORKDIR=${WORKDIR:-$(mktemp -d /tmp/rnn-scaling.XXXXXX)}
mkdir -p "$WORKDIR"
export OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS

# ---- the text ------------------------------------------------------------------------
TEXT=$WORKDIR/text.txt
LC_ALL=C awk -v bytes="$TEXT_BYTES" '
    /^[a-z]+$/ { w[n++] = $0 }
    END {
        s = 12345; out = 0; k = 0   # Park and Miller: s * 16807 stays exact in a double
        while (out < bytes) {
            s = (s * 16807) % 2147483647
            word = w[s % n]
            sep = (++k % 10 == 0) ? "\n" : " "
            printf "%s%s", word, sep
            out += length(word) + 1
        }
    }' "$DICT" | head -c "$TEXT_BYTES" >"$TEXT"

# ---- the model ------------------------------------------------------------------------
# model T LABELS FILE
model() {
    local t=$1 labels=$2 f=$3
    {
        echo "model rnn$t"
        echo "input  x: class(256) [$t]"
        if [ "$labels" = steps ]; then echo "label  y: class(256) [$t]"; else echo "label  y: class(256)"; fi
        echo "e      = embedding(x, 256, 64)"
        echo "h1     = lstm(e, 128)"
        echo "h2     = lstm(h1, 128)"
        if [ "$labels" = steps ]; then
            echo "logits = dense(h2, 256)"
            echo "loss   = mean(cross_entropy(logits, y))"
        else
            echo "last   = flatten(slice(h2, axis=0, start=-1))"
            echo "logits = dense(last, 256)"
            echo "loss   = cross_entropy(logits, y)"
        fi
        echo "train {"
        echo "  batch     = 64"
        echo "  epochs    = 1"
        echo "  optimizer = adam(lr=0.003)"
        echo "}"
    } >"$f"
}

# cc_command DIR: the C compiler's command line of `nnc DIR/model.nn --exe` (as printed
# by -v, with `true` standing in for the compiler while nnc writes the files)
cc_command() {
    local d=$1 cc=${NNC_CC:-cc}
    NNC_CC=true "$NNC" "$d/model.nn" --exe -o "$d/model" -v 2>"$d/cc_command.txt" >/dev/null ||
        die "nnc failed on $d/model.nn: $(cat "$d/cc_command.txt")"
    local line
    line=$(tail -n 1 "$d/cc_command.txt")
    echo "$cc ${line#true }"
}

# peak_rss_kb PID: the largest resident size (KiB) of any process below PID, sampled every
# second until PID ends.  For a compile that the timeout kills: /usr/bin/time then reports
# only `timeout` itself, cc1 having been killed before its parent could collect it.
peak_rss_kb() {
    local root=$1 peak=0 now
    while kill -0 "$root" 2>/dev/null; do
        now=$(ps -eo pid=,ppid=,rss= | awk -v root="$root" '
            { parent[$1] = $2; rss[$1] = $3 }
            END {
                for (p in parent) {
                    for (q = parent[p]; q > 1 && q != root; q = parent[q]) {}
                    if (q == root && rss[p] > max) max = rss[p]
                }
                print max + 0
            }')
        [ "$now" -gt "$peak" ] && peak=$now
        sleep 1
    done
    echo "$peak"
}

# least NUMBERS...: the smallest
least() { printf '%s\n' "$@" | sort -g | head -n 1; }

if [ "$LABELS" = auto ]; then
    d=$WORKDIR/probe
    mkdir -p "$d"
    model 4 steps "$d/model.nn"
    head -c 2000 "$TEXT" >"$d/probe.txt"
    LABELS=last
    if "$NNC" "$d/model.nn" --exe -o "$d/model" >"$d/nnc.log" 2>&1 &&
        "$d/model" train --text "$d/probe.txt" --epochs 1 >"$d/train.log" 2>&1; then
        LABELS=steps
    fi
fi

rows=()
for t in "$@"; do
    d=$WORKDIR/T$t
    mkdir -p "$d"
    model "$t" "$LABELS" "$d/model.nn"
    # nnc alone
    times=()
    for ((i = 0; i < NNC_RUNS; i++)); do
        /usr/bin/time -f %e -o "$d/nnc.time" "$NNC" "$d/model.nn" -o "$d/model_only.c" >/dev/null ||
            die "nnc failed on $d/model.nn"
        times+=("$(tail -n 1 "$d/nnc.time")")
    done
    nnc_s=$(least "${times[@]}")
    cmd=$(cc_command "$d")
    lines=$(wc -l <"$d/model.c")
    # the C compiler, as nnc --exe runs it
    cc_times=() cc_mbs=() built=0
    for ((i = 0; i < CC_RUNS; i++)); do
        rc=0
        # shellcheck disable=SC2086  # the command's words, as nnc passes them to execvp
        /usr/bin/time -f '%e %M' -o "$d/cc.time" timeout "$CC_TIMEOUT" $cmd >"$d/cc.log" 2>&1 &
        job=$!
        sampled=$(peak_rss_kb "$job")
        wait "$job" || rc=$?
        read -r s kb < <(tail -n 1 "$d/cc.time")
        if [ "$rc" = 124 ]; then   # killed: time saw no compiler exit, the samples did
            built=0 cc_times=("> $CC_TIMEOUT") cc_mbs=("> $((sampled / 1024))")
            break
        fi
        [ "$rc" = 0 ] || die "the C compiler failed on $d/model.c (see $d/cc.log)"
        built=1
        cc_times+=("$s")
        cc_mbs+=("$((kb / 1024))")
    done
    cc_s=$(least "${cc_times[@]}")
    cc_mb=$(least "${cc_mbs[@]}")
    # one epoch over the text
    epoch_s="-"
    if [ "$built" = 1 ]; then
        secs=()
        for ((i = 0; i < EPOCH_RUNS; i++)); do
            rc=0
            timeout "$EPOCH_TIMEOUT" "$d/model" train --text "$TEXT" --epochs 1 --log "$d/run$i.csv" \
                >"$d/train$i.log" 2>&1 || rc=$?
            if [ "$rc" = 124 ]; then secs=("> $EPOCH_TIMEOUT"); break; fi
            [ "$rc" = 0 ] || die "training failed (see $d/train$i.log)"
            secs+=("$(awk -F, 'NR == 2 { print $NF }' "$d/run$i.csv")")
        done
        case ${secs[0]} in ">"*) epoch_s=${secs[0]} ;; *) epoch_s=$(least "${secs[@]}") ;; esac
    fi
    rows+=("| $t | $lines | $nnc_s | $cc_s | $cc_mb | $epoch_s |")
    echo "rnn_scaling.sh: T=$t done: $lines lines, nnc $nnc_s s, cc $cc_s s, $cc_mb MB, epoch $epoch_s s" >&2
done

echo
echo "2-layer LSTM char model (embedding 64, lstm 128, lstm 128, dense 256; batch 64, Adam)," \
    "labels: $([ "$LABELS" = steps ] && echo "one per step ([T])" || echo "the last step's next byte")"
echo
echo "| T | lines of C | nnc s | C compile s | C compiler peak MB | epoch s |"
echo "|--:|-----------:|------:|------------:|-------------------:|--------:|"
printf '%s\n' "${rows[@]}"
echo
echo "Text: $TEXT_BYTES bytes, sha256 $(sha256sum "$TEXT" | cut -c1-16)…, $(wc -c <"$TEXT") examples;" \
    "C compiler: $(${NNC_CC:-cc} --version | head -n 1); threads $THREADS;" \
    "least of $NNC_RUNS nnc, $CC_RUNS compile, $EPOCH_RUNS epoch run(s); work in $WORKDIR"
