# lib.sh — what the shell test scripts share: PASS/FAIL lines, the counts, the closing
# `N passed, M failed` line that ctest and CI read, and a small Fashion-MNIST batch file.
# Sourced; a script sets WORK (where check keeps the last command's output) before
# calling check.
passed=0 failed=0
last_status=0

# The output of a failed check, indented; a script may redefine it (valgrind.sh does).
show_failure() { sed 's/^/    /' "$1" | tail -15; }

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; [ -n "${2:-}" ] && show_failure "$2"; failed=$((failed + 1)); }

# check NAME COMMAND...: passes when COMMAND succeeds
check() {
    local name=$1
    shift
    if "$@" >"$WORK/last.log" 2>&1; then
        pass "$name"
    else
        last_status=$?
        fail "$name" "$WORK/last.log"
    fi
}

# log_rows FILE: a --log CSV without its seconds column, the only one two runs of the same
# training may differ in
log_rows() { cut -d, -f1-4,6- "$1"; }

# start_work NNC WORKDIR: what a test script of a trainer does first: NNC made absolute,
# WORK made afresh and entered, one BLAS thread
start_work() {
    NNC=$(realpath "$1")
    WORK=$2
    rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
    export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
}

# expect NAME STATUS TEXT COMMAND...: COMMAND exits STATUS and its output holds TEXT
expect() {
    local name=$1 want=$2 text=$3 rc=0
    shift 3
    "$@" >"$WORK/last.log" 2>&1 || rc=$?
    if [ "$rc" -eq "$want" ] && grep -qF -- "$text" "$WORK/last.log"; then
        pass "$name"
    else
        echo "    exit $rc (wanted $want), wanted the text: $text" >>"$WORK/last.log"
        fail "$name" "$WORK/last.log"
    fi
}

# status_is WANT COMMAND...: the command exits with WANT
status_is() {
    local want=$1
    shift
    "$@"
    local got=$?
    [ "$got" -eq "$want" ] || { echo "exit status $got, expected $want"; return 1; }
}

# run_kept NAME CMD...: runs CMD, keeping its stdout, stderr and status in NAME.{out,err,rc}
# and all three in NAME.log
run_kept() {
    local name=$1
    shift
    "$@" >"$name.out" 2>"$name.err"
    echo $? >"$name.rc"
    { cat "$name.out" "$name.err"; echo "(exit status $(cat "$name.rc"))"; } >"$name.log"
}

# small_model: small.nn, a Fashion MLP with dropout, nadam and a step schedule (the
# resume and trainer tests' model)
small_model() {
    cat >small.nn <<'EOF'
model small
input  x: [784]
label  y: class(10)
h1     = dropout(relu(dense(x, 48)), 0.3)
logits = dense(h1, 10)
loss   = cross_entropy(logits, y)
output probs = softmax(logits)
train {
  batch     = 16
  epochs    = 3
  seed      = 11
  optimizer = nadam(lr=0.002)
  schedule  = step(1, 0.5)
}
EOF
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# fashion_safetensors N FILE: the first N t10k images of Fashion-MNIST as one safetensors
# data set, x [N, 784] F32 in [0, 1] and y [N] I64 (Debian's dataset-fashion-mnist)
fashion_safetensors() {
    python3 - "$1" "$2" <<'PY'
import gzip, json, struct, sys
n, D = int(sys.argv[1]), '/usr/share/datasets/fashion-mnist'
img = gzip.open(D + '/t10k-images-idx3-ubyte.gz').read()[16:16 + n * 784]
lab = gzip.open(D + '/t10k-labels-idx1-ubyte.gz').read()[8:8 + n]
x = struct.pack('<%df' % (n * 784), *[b / 255.0 for b in img])
y = struct.pack('<%dq' % n, *lab)
h = json.dumps({'x': {'dtype': 'F32', 'shape': [n, 784], 'data_offsets': [0, len(x)]},
                'y': {'dtype': 'I64', 'shape': [n], 'data_offsets': [len(x), len(x) + len(y)]}}).encode()
h += b' ' * (-len(h) % 8)
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(h)) + h + x + y)
PY
}
