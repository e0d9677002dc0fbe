#!/usr/bin/env bash
# e2e.sh NNC WORKDIR — end-to-end: what a user does, checked.
#
# Compiles the examples into trainer programs and runs them on Debian's Fashion-MNIST:
# training lowers the loss, eval/predict/grads/init work on the saved checkpoint, the
# f64 build trains, the embedding example (a C program using only the generated header)
# links and learns, the inspection outputs (--emit, --graph, --summary) print what they
# promise, nnc exits 0 on success, 1 on an error in the model and 2 on a missing file or
# an unknown option, and an installed nnc builds trainers.  (tests/driver.sh checks the
# rest of the command line: `-`, -o, --header, --exe's refusals.)
set -u
. "$(dirname "$0")/lib.sh"
NNC=$(realpath "$1")
WORK=$2
SRC=$(cd "$(dirname "$0")/.." && pwd)
DATA=/usr/share/datasets/fashion-mnist
BUILD=$(dirname "$NNC")
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1

lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
csv_col() { awk -F, -v c="$2" -v r="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i } NR == r + 1 { print $k }' "$1"; }
TRAIN=(--train "x=$DATA/train-images-idx3-ubyte.gz" --train "y=$DATA/train-labels-idx1-ubyte.gz")
TEST=(--test "x=$DATA/t10k-images-idx3-ubyte.gz" --test "y=$DATA/t10k-labels-idx1-ubyte.gz")

# ---- the nnc command ----
check "nnc --version" status_is 0 "$NNC" --version
check "nnc --help" status_is 0 "$NNC" --help
check "missing file exits 2" status_is 2 "$NNC" no-such-model.nn
check "unknown option exits 2" status_is 2 "$NNC" "$SRC/examples/fashion_mlp.nn" --frobnicate
printf 'model bad\ninput x: [3]\nloss = sum(y)\n' >bad.nn
check "model error exits 1" status_is 1 "$NNC" bad.nn
check "--emit backward prints only backward" bash -c \
    "'$NNC' '$SRC/examples/fashion_mlp.nn' --emit backward >bw.c && grep -q 'static void fashion_mlp_backward' bw.c \
     && ! grep -q 'fashion_mlp_forward' bw.c && grep -q 'd relu(u)/du' bw.c"
check "--graph writes Graphviz" bash -c "'$NNC' '$SRC/examples/fashion_mlp.nn' --graph -o g.dot && head -1 g.dot | grep -q digraph \
     && grep -q cluster_backward g.dot"
check "--summary totals" bash -c "'$NNC' '$SRC/examples/fashion_mlp.nn' --summary | grep -q '235,146'"

# ---- the trainer program ----
check "compile fashion_mlp --exe" "$NNC" "$SRC/examples/fashion_mlp.nn" --exe -o fm
check "train 2 epochs: loss goes down" bash -c "./fm train ${TRAIN[*]} ${TEST[*]} --epochs 2 --log run.csv --save fm.safetensors"
l1=$(csv_col run.csv train_loss 1) l2=$(csv_col run.csv train_loss 2) acc=$(csv_col run.csv test_accuracy 2)
check "epoch 2 loss ($l2) < epoch 1 loss ($l1)" lt "$l2" "$l1"
check "test accuracy after 2 epochs ($acc) > 0.8" lt 0.8 "$acc"
check "log has epoch,train_loss,test_loss,test_accuracy,seconds" \
    grep -q '^epoch,train_loss,test_loss,test_accuracy,seconds' run.csv
check "eval on the checkpoint" bash -c "./fm eval --load fm.safetensors ${TEST[*]} >eval.txt && tail -1 eval.txt | grep -q '^accuracy: 0\.[89]'"
check "predict writes one row per example" bash -c "./fm predict --load fm.safetensors --input x=$DATA/t10k-images-idx3-ubyte.gz --out p.csv \
     && [ \$(wc -l <p.csv) -eq 10001 ] && head -1 p.csv | grep -q '^probs_0,'"
# a 3-example batch file (x F32 [3, 784], y I64 [3]) and checks of the files the trainer writes
cat >st.py <<'EOF'
import json, struct, sys
def header(path):
    h = open(path, 'rb').read()
    return json.loads(h[8:8 + struct.unpack('<Q', h[:8])[0]])
if sys.argv[1] == 'batch':
    x = struct.pack('<2352f', *[(i % 7) / 7 for i in range(2352)])
    y = struct.pack('<3q', 1, 5, 9)
    hdr = json.dumps({'x': {'dtype': 'F32', 'shape': [3, 784], 'data_offsets': [0, len(x)]},
                      'y': {'dtype': 'I64', 'shape': [3], 'data_offsets': [len(x), len(x) + len(y)]}}).encode()
    hdr += b' ' * (-len(hdr) % 8)
    open('b.safetensors', 'wb').write(struct.pack('<Q', len(hdr)) + hdr + x + y)
else:
    meta = header(sys.argv[2])
    w = meta['h1.weight']
    assert w['shape'] == [256, 784] and w['dtype'] == 'F32', w
    assert sys.argv[1] != 'grads' or meta['loss']['shape'] == [], meta
EOF
check "init writes the parameters" bash -c "./fm init --seed 3 --save p0.safetensors && python3 st.py params p0.safetensors"
check "grads writes every gradient and the loss" bash -c "python3 st.py batch && \
     ./fm grads --params p0.safetensors --batch b.safetensors --out g.safetensors | grep -q '^loss: ' && \
     python3 st.py grads g.safetensors"
check "gradcheck (f32) of the example" bash -c "./fm gradcheck --samples 16 --tol 2e-2"

# ---- the lectures' worked examples ----
cat >qxyz.py <<'EOF'
import json, struct, sys
if sys.argv[1] == 'batch':   # x = -2, y = 5, z = -4, one example each
    vals = {'x': -2.0, 'y': 5.0, 'z': -4.0}
    blob = b''.join(struct.pack('<f', v) for v in vals.values())
    hdr = json.dumps({k: {'dtype': 'F32', 'shape': [1], 'data_offsets': [4 * i, 4 * i + 4]}
                      for i, k in enumerate(vals)}).encode()
    hdr += b' ' * (-len(hdr) % 8)
    open('qxyz.safetensors', 'wb').write(struct.pack('<Q', len(hdr)) + hdr + blob)
else:                        # the gradients must be df/dx = df/dy = z = -4, df/dz = x + y = 3
    h = open('qg.safetensors', 'rb').read()
    n = struct.unpack('<Q', h[:8])[0]
    meta = json.loads(h[8:8 + n])
    get = lambda k: struct.unpack('<f', h[8 + n + meta[k]['data_offsets'][0]:][:4])[0]
    assert (get('x'), get('y'), get('z')) == (-4.0, -4.0, 3.0), (get('x'), get('y'), get('z'))
EOF
check "seed_qxyz: (x+y)z at (-2, 5, -4) has gradients -4, -4, 3" bash -c "python3 qxyz.py batch && \
     '$NNC' '$SRC/examples/seed_qxyz.nn' --exe -o qxyz && ./qxyz init --save q0.safetensors && \
     ./qxyz grads --params q0.safetensors --batch qxyz.safetensors --out qg.safetensors | grep -q '^loss: -12' && \
     python3 qxyz.py check"
for seed in seed_fx seed_twolayer; do
    check "$seed gradcheck in f64" bash -c "'$NNC' '$SRC/examples/$seed.nn' --dtype f64 --exe -o $seed && \
         ./$seed gradcheck --samples 0 --tol 1e-6"
done

# ---- the lectures' CNN: one epoch on the 10,000 t10k images learns ----
check "fashion_cnn trains" bash -c "'$NNC' '$SRC/examples/fashion_cnn.nn' --exe -o cnn && \
     ./cnn train --train x=$DATA/t10k-images-idx3-ubyte.gz --train y=$DATA/t10k-labels-idx1-ubyte.gz --epochs 1 \
       --val-split 0.2 --log cnn.csv >/dev/null && \
     awk -F, 'NR == 2 { exit !(\$7 > 0.7) }' cnn.csv"

# ---- functions: repeat's blocks learn; share= makes one set of weights; one_hot's values ----
check "residual_mlp (repeat) trains" bash -c "'$NNC' '$SRC/examples/residual_mlp.nn' --exe -o rmlp && \
     ./rmlp train --train x=$DATA/t10k-images-idx3-ubyte.gz --train y=$DATA/t10k-labels-idx1-ubyte.gz --epochs 1 \
       --val-split 0.2 --log rmlp.csv >/dev/null && \
     awk -F, 'NR == 2 { exit !(\$7 > 0.7) }' rmlp.csv"
check "siamese: three uses of embed, one set of parameters" bash -c \
    "'$NNC' '$SRC/examples/siamese.nn' --summary | grep -q 'total params: *56,064 '"
printf 'model oh\ninput ids: class(4) [3]\ntarget t: [3, 4]\no = one_hot(ids, 4) + zeros([4]) * 5 + ones([3, 4]) * 0.5\noutput p = o\nloss = sum(o * t)\n' >oh.nn
printf 'ids0,ids1,ids2\n2,0,3\n1,1,1\n' >oh_ids.csv
check "one_hot, zeros and ones compute their values" bash -c "'$NNC' oh.nn --exe -o oh && \
     ./oh init --save oh.safetensors && ./oh predict --load oh.safetensors --input ids=oh_ids.csv --out oh.csv && \
     sed -n 2p oh.csv | grep -qx '0.5,0.5,1.5,0.5,1.5,0.5,0.5,0.5,0.5,0.5,0.5,1.5' && \
     sed -n 3p oh.csv | grep -qx '0.5,1.5,0.5,0.5,0.5,1.5,0.5,0.5,0.5,1.5,0.5,0.5'"

# ---- examples are independent: an example's prediction does not depend on its neighbours
# (a convolution reading past its image would read the next example; padding after, too) ----
cat >indep.nn <<'EOF'
model indep
input  x: [1, 3, 4]
target t: [2]
c = conv2d(x, 2, kernel=2, pad=same)
d = conv2d(relu(c), 1, kernel=4, pad=same)
e = avgpool2d(maxpool2d(d, 2), 1)
output o = flatten(e)
loss = mse(dense(flatten(d), 2), t)
train { batch = 4 }
EOF
printf '1,2,3,4,5,6,7,8,9,10,11,12\n-5,4,-3,2,-1,0,1,-2,3,-4,5,-6\n' >two.csv
head -1 two.csv >one.csv
check "a convolution's output depends on its own example only" bash -c "'$NNC' indep.nn --exe -o indep && \
     ./indep init --seed 5 --save i0.safetensors && \
     ./indep predict --load i0.safetensors --input x=two.csv --out i2.csv && \
     ./indep predict --load i0.safetensors --input x=one.csv --out i1.csv && \
     [ \"\$(sed -n 2p i2.csv)\" = \"\$(sed -n 2p i1.csv)\" ]"

# ---- training and inference modes: predict skips dropout and uses running statistics ----
cat >modes.nn <<'EOF'
model modes
input  x: [3]
target t: [3]
y = dropout(batchnorm(x), 0.5)
loss = mse(y, t)
output o = y
train { batch = 4; optimizer = sgd(lr=0.1) }
EOF
printf 'x0,x1,x2\n1,2,3\n-1,0.5,4\n' >x.csv
printf 't0,t1,t2\n0,0,0\n0,0,0\n' >t.csv
# fresh parameters: running mean 0, variance 1, weight 1, bias 0, so o = x / sqrt(1 + 1e-5)
check "predict uses running statistics and no dropout" bash -c "'$NNC' modes.nn --dtype f64 --exe -o modes && \
     ./modes init --save m0.safetensors && ./modes predict --load m0.safetensors --input x=x.csv --out o.csv && \
     awk -F, 'NR == 2 { e = 1 / sqrt(1 + 1e-5); exit !(\$1 - e < 1e-12 && e - \$1 < 1e-12 && (\$3 - 3 * e)^2 < 1e-20) }' o.csv"
# one training step moves the running mean to 0.1 * the batch mean: predictions change
check "training updates the running statistics" bash -c "./modes train --train x=x.csv --train t=t.csv --epochs 1 \
     --load m0.safetensors --save m1.safetensors >/dev/null && ./modes predict --load m1.safetensors --input x=x.csv --out i1.csv && \
     ! cmp -s o.csv o1.csv"
check "eval loss is deterministic (no dropout)" bash -c "./modes eval --load m1.safetensors --test x=x.csv --test t=t.csv | tail -1 >e1 && \
     ./modes eval --load m1.safetensors --test x=x.csv --test t=t.csv | tail -1 >e2 && cmp e1 e2"

# ---- --check-numerics: an exp that overflows is caught at its tensor, before the update ----
# (the loss climbs a thousandfold first: --diverge-factor 0 keeps the divergence guard from
# stopping the run before the overflow)
cat >blowup.nn <<'EOF'
model blowup
input  x: [784]
label  y: class(10)
h = exp(dense(x, 64))
logits = dense(h, 10)
loss = cross_entropy(logits, y)
train { batch = 64; optimizer = sgd(lr=0.2) }
EOF
check "--check-numerics names the tensor, its line, the pass and the step" bash -c "'$NNC' blowup.nn --exe -o blowup && \
     ! ./blowup train ${TRAIN[*]} --epochs 1 --check-numerics --diverge-factor 0 --checkpoint bl.safetensors --checkpoint-every 2 \
         >/dev/null 2>bl.err && cat bl.err && \
     grep -q 'non-finite value .* in h\[[0-9]*\] (line 4) in the forward pass at step [0-9]' bl.err && \
     ./blowup export --load bl.safetensors --out bl_params.safetensors"

# ---- recurrent models are scans: min-char-rnn carries its state; a GRU predicts every byte ----
head -c 60000 /usr/share/dict/american-english >text.txt
check "min_char_rnn's loss falls, its state carried chunk to chunk by train.c" bash -c \
    "'$NNC' '$SRC/examples/min_char_rnn/min_char_rnn.nn' -o min_char_rnn.c && \
     cc -std=c11 -O2 -fopenmp -Wall -Wextra -Werror ${NNC_CFLAGS:-} -I. -I'$SRC/runtime' \
        '$SRC/examples/min_char_rnn/train.c' min_char_rnn.c '$BUILD/libnnr.a' -lopenblas -ljansson -lz -lm -o mcr && \
     OMP_NUM_THREADS=1 ./mcr text.txt 1500 >mcr.txt && cat mcr.txt && grep -q 'for (int t = 24; t >= 0; t--)' min_char_rnn.c"
check "char_gru learns the next byte at every position (--text, per-token accuracy)" bash -c \
    "'$NNC' '$SRC/examples/char_gru/char_gru.nn' --exe -o char_gru && \
     ./char_gru train --text text.txt --epochs 3 --val-split 0.1 --log gru.csv >/dev/null && \
     awk -F, 'NR == 4 { exit !(\$2 < 2.6 && \$7 > 0.2) }' gru.csv"

# ---- double precision ----
check "compile --dtype f64 and train" bash -c "'$NNC' '$SRC/examples/fashion_mlp.nn' --dtype f64 --exe -o fm64 && grep -q nnr_dgemm fm64.c \
     && ./fm64 train ${TRAIN[*]} --epochs 1 | grep -q 'epoch 1/1'"

# ---- embedding the generated trainer in an application ----
check "embed_mlp builds from the generated header" bash -c "'$NNC' '$SRC/examples/fashion_mlp.nn' -o fashion_mlp.c && \
     cc -std=c11 -O2 -fopenmp -Wall -Wextra -Werror ${NNC_CFLAGS:-} -I. -I'$SRC/runtime' '$SRC/examples/embed_mlp.c' fashion_mlp.c '$BUILD/libnnr.a' \
        -lopenblas -ljansson -lz -lm -o embed_mlp"
check "embed_mlp learns and its checkpoint reloads" bash -c "./embed_mlp $DATA 300 >embed.txt && cat embed.txt && \
     awk '/first 20/ { exit !(\$NF < \$(NF - 5)) }' embed.txt && \
     awk '/test accuracy/ { exit !(\$3 == \$6 && \$3 > 0.7) }' embed.txt"

# ---- generated C is warning-free ----
# every example in both dtypes, as C99 under gcc and C11 under clang (the Winograd
# epilogue's unused oi/oj and C11's aligned_alloc once broke -std=c99 -Werror; fuzz/cc_check.sh
# does the same for fuzzed models)
# and fuzz/cc_check.sh's finds: a loss of parameters only (no pass reads n), u ^ 1 (whose
# gradient never reads u)
printf 'model nobatch\ninput x: [3, 4]\nparam b: [3]\nloss = sum(b)\n' >nobatch.nn
printf 'model pow1\ninput x: [4] grad\ntarget t: [3]\nh = dense(x, 3)\nloss = sum(h ^ 1 * t)\n' >pow1.nn
for f in "$SRC"/examples/*.nn "$SRC"/examples/*/*.nn nobatch.nn pow1.nn; do
    for dtype in f32 f64; do
        m=$(basename "$f" .nn)
        check "$m ($dtype) compiles with gcc -std=c99 and clang -std=c11, -Wall -Wextra -Werror" bash -c \
            "'$NNC' '$f' --dtype $dtype -o warn_$m.c &&
             gcc -std=c99 -fopenmp -Wall -Wextra -Werror -c -I. -I'$SRC/runtime' warn_$m.c -o /dev/null &&
             clang -std=c11 -fopenmp -Wall -Wextra -Werror -c -I. -I'$SRC/runtime' warn_$m.c -o /dev/null"
    done
done

# ---- an installed nnc ----
check "install and build a trainer with the installed nnc" bash -c "cmake --install '$BUILD' --prefix '$WORK/prefix' >/dev/null && \
     '$WORK/prefix/bin/nnc' '$SRC/examples/fashion_mlp.nn' --exe -o installed && ./installed summary | grep -q fashion_mlp"

finish
