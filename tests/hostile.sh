#!/usr/bin/env bash
# hostile.sh NNC WORKDIR — user names and text never break the generated C.
#
# Models whose model name and tensor names are C keywords, libc/libm/BLAS symbols and
# macros (int, main, free, I, NULL, cblas_sgemm, double, exp, m, n, i, names ending in '_',
# names starting with '__', inputs named as the model struct's members) are compiled with `nnc --exe` by gcc and by clang (NNC_CC) with
# -Wall -Wextra -Werror (NNC_CFLAGS), in f64 and f32; each f64 trainer runs `init`, trains
# two steps and passes `gradcheck --tol 1e-6`.  Then user text that could escape a C comment
# or string: a model whose comments and names hold `*/`, `??/` (a trigraph), backslashes
# (a line-continuing one too) and quotes, compiled from a file whose name has spaces and
# quotes: the generated file must compile.  Every nnc run is limited to 20 s and 4 GB
# (a hang fails instead of blocking).  Prints PASS/FAIL per check and ends with
# `N passed, M failed`.
set -u
. "$(dirname "$0")/lib.sh"
NNC=$(realpath "$1")
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

cat >nnc <<SH
#!/bin/sh
# a hang that allocates forever fails here rather than exhausting the machine; not under
# AddressSanitizer, whose shadow memory reserves terabytes of address space (the timeout
# still bounds a hang there)
[ -n "${ASAN_OPTIONS:-}" ] || ulimit -v 4000000
exec timeout 20 "$NNC" "\$@"
SH
chmod +x nnc
PATH=$WORK:$PATH
compilers=""
for cc in gcc clang; do command -v $cc >/dev/null && compilers="$compilers $cc"; done
# a sanitized runtime (scripts/test.sh --sanitize) links only with the compiler that built it
[ -z "${ASAN_OPTIONS:-}" ] || compilers=gcc
[ "$compilers" = " gcc clang" ] || echo "note: only$compilers found; clang comes with scripts/deps.sh"

# ---- models named after C ------------------------------------------------------------
# main: [4] -> free -> I -> cblas_sgemm (an elementwise/matmul mix) -> double -> 3 classes
cat >keywords.nn <<'NN'
model int
input  main: [4]
label  NULL: class(3)
param  ones_: [5, 6] = ones
free   = tanh(dense(main, 5))
I      = sigmoid(dense(free, 6))
cblas_sgemm = I * 2 + free @ ones_
double = dense(cblas_sgemm, 3)
exp    = exp(double)
m      = sum(exp)
n      = m + 1
i      = log(n)
x_     = double
__x    = x_
loss   = cross_entropy(__x, NULL) + 0.01 * i
output probs = softmax(x_)
train { batch = 4; epochs = 1; optimizer = sgd(lr=0.01) }
NN
# C and libc names as the model's name (its symbols' prefix), for inputs, targets, params
cat >main.nn <<'NN'
model main
input  free: [3] grad
target malloc: [2]
param  cblas_dgemm_: [3, 2]
param  NAN: [2] = zeros
sqrt   = free @ cblas_dgemm_
if     = sqrt + NAN
while  = square(if - malloc)
loss   = sum(while)
output goto = if
train { batch = 4; epochs = 1; optimizer = adam(lr=0.01) }
NN
cat >free.nn <<'NN'
model free
input  printf: [2, 3]
label  EOF: class(2)
stdin  = relu(dense(flatten(printf), 4))
errno  = dropout(stdin, 0.1)
assert = dense(errno, 2)
loss   = cross_entropy(assert, EOF)
output FILE = softmax(assert)
train { batch = 4; epochs = 1 }
NN
cat >underscore.nn <<'NN'
model m_
input  x: [3]
label  y: class(3)
_      = dense(x, 3)
a__b   = tanh(_)
u_     = a__b * _
loss   = cross_entropy(u_, y)
train { batch = 4; epochs = 1 }
NN
# the inputs, labels and targets are members of the model's struct: named as its own
# members (params, grads, state, step, acts, norm, pending, ...)
cat >members.nn <<'NN'
model members
input  pending: [3] grad
input  norm: [2]
label  step: class(3)
target acts: [2]
h      = tanh(dense(pending, 4) + dense(norm, 4))
params = dense(h, 3)
grads  = dense(h, 2)
state  = mse(grads, acts)
loss   = cross_entropy(params, step) + state
output seed = softmax(params)
train { batch = 4; epochs = 1 }
NN

python3 - <<'PY'
import json, struct
def st(path, tensors):
    hdr, blob = {}, b''
    for name, (dt, shape, data) in tensors.items():
        hdr[name] = {'dtype': dt, 'shape': shape, 'data_offsets': [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(hdr).encode(); h += b' ' * (-len(h) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + blob)
f = lambda n, k=0.1: struct.pack('<%dd' % n, *[((i * 7 + 3) % 11) * k - 0.5 for i in range(n)])
i64 = lambda n, K: struct.pack('<%dq' % n, *[i % K for i in range(n)])
st('keywords.safetensors', {'main': ('F64', [8, 4], f(32)), 'NULL': ('I64', [8], i64(8, 3))})
st('main.safetensors', {'free': ('F64', [8, 3], f(24)), 'malloc': ('F64', [8, 2], f(16))})
st('free.safetensors', {'printf': ('F64', [8, 2, 3], f(48)), 'EOF': ('I64', [8], i64(8, 2))})
st('underscore.safetensors', {'x': ('F64', [8, 3], f(24)), 'y': ('I64', [8], i64(8, 3))})
st('members.safetensors', {'pending': ('F64', [8, 3], f(24)), 'norm': ('F64', [8, 2], f(16)),
                           'step': ('I64', [8], i64(8, 3)), 'acts': ('F64', [8, 2], f(16))})
PY

for model in keywords main free underscore members; do
    for cc in $compilers; do
        for dt in f64 f32; do
            exe=${model}_${cc}_$dt
            check "$model.nn: nnc --exe --dtype $dt with $cc -Wall -Wextra -Werror" \
                env NNC_CC=$cc NNC_CFLAGS="${NNC_CFLAGS:-} -Wall -Wextra -Werror" nnc $model.nn --dtype $dt --exe -o $exe
        done
        exe=${model}_${cc}_f64
        [ -x "$exe" ] || continue
        check "$model.nn ($cc, f64): init" ./$exe init --seed 3 --save $exe.init.safetensors
        check "$model.nn ($cc, f64): train two steps" \
            ./$exe train --train $model.safetensors --load $exe.init.safetensors --epochs 1 \
            --save $exe.trained.safetensors
        check "$model.nn ($cc, f64): gradcheck --tol 1e-6" ./$exe gradcheck --tol 1e-6
    done
done

# ---- user text that could escape comments and strings -----------------------------------
# the file name has spaces, both quotes, a backslash and a trigraph; comments and the model hold */, ??/, \ and "
name="we\"ird 'model' * \\ x??=.nn"   # '/' cannot be in a file name
cat >"$name" <<'NN'
# a comment that tries to close a C comment: */ int evil = 1; /*
# a trigraph ??/
# a backslash at the end of a line \
# quotes " and ' and a string "\n*/"
model esc_ape   # */ #define x 1 ??/
input  x: [3]   # \ */ " '
label  y: class(2)   # ??= ??( ??) ??' ??< ??> ??! ??-
h      = tanh(dense(x, 4))   # "*/" \" \\ ??/
logits = dense(h, 2)   /* not a comment in the DSL? */
loss   = cross_entropy(logits, y)
output probs = softmax(logits)   # */
NN
if nnc "$name" -o esc.c >esc.log 2>&1; then
    :
else
    # the DSL may refuse `/* ... */`; retry without that line's C-style comment
    sed -i 's|   /\* not a comment in the DSL? \*/||' "$name"
fi
for cc in $compilers; do
    check "escapes: nnc --exe with $cc -Wall -Wextra -Werror (trigraphs on: -std=c11)" \
        env NNC_CC=$cc NNC_CFLAGS="${NNC_CFLAGS:-} -std=c11 -Wall -Wextra -Werror -Wno-unused-command-line-argument" \
        nnc "$name" --exe -o "esc_$cc"
done
check "escapes: nnc -o esc.c" nnc "$name" -o esc.c
# with comments removed (the preprocessor's -fpreprocessed keeps everything else), user
# text may remain only inside string literals: never as code
check "escapes: the comments' text never becomes code" \
    sh -c 'gcc -fpreprocessed -dD -E esc.c >esc.nocomments.c && ! grep -n "int evil\|define x 1" esc.nocomments.c | grep -v "\"[^\"]*int evil[^\"]*\"\|\"[^\"]*define x 1[^\"]*\"" | grep .'
finish
