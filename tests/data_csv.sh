#!/usr/bin/env bash
# data_csv.sh NNC WORKDIR — one CSV file feeds a whole model, and the checkpoint remembers
# what the file said (issue 24; docs/data.md).
#
# Through trainers built by nnc, on an iris-like data set generated here from a fixed seed:
# predict needs only the inputs its outputs depend on (an input read by the loss alone is
# neither required nor read, and a missing needed one is named); the feature columns'
# names and the class names of string labels are stored in the checkpoint's metadata;
# eval and predict reorder columns given in another order, refuse a missing or unknown
# column and an unknown label (with its line); --label-column feeds a float target
# (regression from one CSV); integer labels keep working and more distinct labels than
# the label's K are refused.
set -u
. "$(dirname "$0")/lib.sh"
start_work "$1" "$2"

# meta FILE KEY: a checkpoint's "__metadata__" value KEY (empty when absent)
meta() {
    python3 - "$1" "$2" <<'PY'
import json, struct, sys
f = open(sys.argv[1], 'rb')
n = struct.unpack('<Q', f.read(8))[0]
print(json.loads(f.read(n)).get('__metadata__', {}).get(sys.argv[2], ''))
PY
}

# ---- models --------------------------------------------------------------------------
cat >iris.nn <<'NN'
model iris
input x: [4]
label y: class(3)
h = relu(dense(x, 16))
logits = dense(h, 3)
loss = cross_entropy(logits, y)
output probs = softmax(logits)
train { batch = 16; epochs = 30; optimizer = adam(lr=0.01) }
NN
# v is read by the loss alone: predict has no use for it
cat >aux.nn <<'NN'
model aux
input x: [4]
input v: [2]
label y: class(3)
logits = dense(relu(dense(x, 8)), 3)
loss = cross_entropy(logits, y) + 0.01 * sum(v * v)
output probs = softmax(logits)
train { batch = 8; epochs = 2; optimizer = sgd(lr=0.1) }
NN
cat >reg.nn <<'NN'
model reg
input x: [3]
target t: [1]
pred = dense(x, 1)
loss = mse(pred, t)
output price = pred
train { batch = 16; epochs = 200; optimizer = sgd(lr=0.05) }
NN
for m in iris aux reg; do
    "$NNC" $m.nn --exe -o $m >build.log 2>&1 || { cat build.log; exit 1; }
done

# ---- data: three Gaussian clusters named as iris's species, seed 7 ---------------------
python3 - <<'PY'
import random
r = random.Random(7)
names = ['setosa', 'versicolor', 'virginica']
centers = [(5.0, 3.4, 1.5, 0.2), (5.9, 2.8, 4.3, 1.3), (6.6, 3.0, 5.6, 2.0)]
head = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width', 'species']
def rows(n):
    out = []
    for _ in range(n):
        c = r.randrange(3)
        out.append([str(round(v + r.gauss(0, 0.25), 2)) for v in centers[c]] + [names[c]])
    return out
def write(path, rs, order=range(5), label=lambda s: s):
    with open(path, 'w') as f:
        f.write(','.join(head[i] for i in order) + '\n')
        for row in rs:
            row = row[:4] + [label(row[4])]
            f.write(','.join(row[i] for i in order) + '\n')
train, test = rows(150), rows(60)
write('train.csv', train)
write('test.csv', test)
write('test_reordered.csv', test, order=[4, 3, 2, 0, 1])
write('features.csv', test, order=[2, 0, 1, 3])                       # no label column
write('train_int.csv', train, label=lambda s: str(names.index(s)))   # labels 0, 1, 2
write('test_int.csv', test, label=lambda s: str(names.index(s)))
with open('x.csv', 'w') as f:
    for row in test: f.write(','.join(row[:4]) + '\n')
with open('y.csv', 'w') as f:
    for row in test: f.write('%d\n' % names.index(row[4]))
with open('z.csv', 'w') as f:
    for row in test: f.write('0.5,-0.5\n')
with open('z_short.csv', 'w') as f:
    f.write('1,2\n')
rr = random.Random(3)
with open('house.csv', 'w') as f:
    f.write('rooms,age,size,price\n')
    for _ in range(200):
        a, b, c = [round(rr.uniform(-1, 1), 3) for _ in range(3)]
        f.write('%s,%s,%s,%s\n' % (a, b, c, round(2 * a - 3 * b + 0.5 * c + 1, 4)))
PY
# the test file's 8th data row (line 9) carries a label the training file never had
awk -F, -v OFS=, 'NR == 9 { $5 = "virginca" } 1' test.csv >typo.csv
sed '1s/petal_width/petal_w/' test.csv >renamed.csv
cut -d, -f1-3,5 test.csv >missing.csv
awk -F, -v OFS=, 'NR == 3 { $5 = "setosa_x" } 1' train.csv >four_classes.csv
sed '5s/,[^,]*$/,cheap/' house.csv >house_text.csv

# ---- 1. predict needs only the inputs its outputs depend on ----------------------------
grep -q 'v is not read: no output depends on it, so NULL may be passed' aux.h &&
    grep -q '{"v", NNR_IO_INPUT, 1, {2}, 2, 0, 0, 1}' aux.c &&
    grep -q '{"x", NNR_IO_INPUT, 1, {4}, 4, 0, 0, 0}' aux.c &&
    grep -q 'x + (size_t)at \* 4' aux.c && ! grep -q 'v + (size_t)at' aux.c &&
    pass "generated predict does not read v, and says so" || fail "generated predict does not read v, and says so" aux.h
check "aux trains from x, v and y" ./aux train --train x=x.csv --train v=z.csv --train y=y.csv \
    --epochs 2 --save aux.safetensors
check "predict from x alone" ./aux predict --load aux.safetensors --input x=x.csv --out p1.csv
check "predict ignores a v given (even of another length)" ./aux predict --load aux.safetensors \
    --input x=x.csv --input v=z_short.csv --out p2.csv
[ "$(wc -l <p1.csv)" -eq 61 ] && cmp -s p1.csv p2.csv && pass "61 lines, the same with v given" ||
    fail "61 lines, the same with v given" p1.csv
expect "predict without x names it" 1 "no data for input 'x', which the model's outputs depend on (give x=FILE)" \
    ./aux predict --load aux.safetensors --input v=z.csv
expect "eval still needs v (its loss reads it)" 1 "no data for input 'v'" \
    ./aux eval --load aux.safetensors --test x=x.csv --test y=y.csv

# ---- 2 and 4. names stored in the checkpoint, string labels --------------------------
check "train from string labels" ./iris train --train train.csv --label-column species \
    --test test.csv --save ck.safetensors
[ "$(meta ck.safetensors csv_columns)" = '["sepal_length","sepal_width","petal_length","petal_width"]' ] &&
    pass "csv_columns stored" || { meta ck.safetensors csv_columns >last.log; fail "csv_columns stored" last.log; }
[ "$(meta ck.safetensors csv_classes)" = '["setosa","versicolor","virginica"]' ] &&
    pass "csv_classes stored, sorted" || { meta ck.safetensors csv_classes >last.log; fail "csv_classes stored, sorted" last.log; }
./iris eval --load ck.safetensors --test test.csv --label-column species >eval1.txt 2>&1
./iris eval --load ck.safetensors --test test_reordered.csv --label-column species >eval2.txt 2>&1
acc=$(sed -n 's/^accuracy: //p' eval1.txt)
awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' && pass "eval through the class names: accuracy $acc >= 0.9" ||
    fail "eval through the class names: accuracy $acc >= 0.9" eval1.txt
grep -qx 'classes: 0 setosa, 1 versicolor, 2 virginica' eval1.txt && grep -Eq '^ +versicolor +[0-9.]+ ' eval1.txt &&
    pass "eval's confusion matrix and per-class table name the classes" ||
    fail "eval's confusion matrix and per-class table name the classes" eval1.txt
cmp -s eval1.txt eval2.txt && pass "columns in another order are matched by name" ||
    fail "columns in another order are matched by name" eval2.txt
expect "an unknown label names its line" 1 \
    "typo.csv:9: label 'virginca' in column 'species' is not one of the 3 classes the model was trained on (setosa, versicolor, virginica)" \
    ./iris eval --load ck.safetensors --test typo.csv --label-column species
expect "an unknown column is named" 1 \
    "renamed.csv: column 'petal_w' is not one of the 4 feature columns the model was trained on" \
    ./iris eval --load ck.safetensors --test renamed.csv --label-column species
expect "a missing column is named" 1 \
    "missing.csv: no column 'petal_width', a feature column the model was trained on" \
    ./iris predict --load ck.safetensors --input missing.csv --label-column species
./iris predict --load ck.safetensors --input test.csv --label-column species --out pa.csv 2>last.log &&
    ./iris predict --load ck.safetensors --input features.csv --label-column species --out pb.csv 2>>last.log
[ -s pa.csv ] && cmp -s pa.csv pb.csv && pass "predict: label column dropped, columns reordered by name" ||
    fail "predict: label column dropped, columns reordered by name" last.log
python3 - <<'PY' >last.log 2>&1 && pass "predict: the argmax column names the classes, right on 90 % or more" ||
import csv
rows = list(csv.reader(open('pa.csv')))
truth = [r[4] for r in list(csv.reader(open('test.csv')))[1:]]
assert rows[0][-1] == 'probs_argmax', rows[0]
got = [r[-1] for r in rows[1:]]
assert set(got) <= {'setosa', 'versicolor', 'virginica'}, set(got)
right = sum(g == t for g, t in zip(got, truth)) / len(truth)
assert len(got) == len(truth) and right >= 0.9, (len(got), len(truth), right)
PY
    fail "predict: the argmax column names the classes, right on 90 % or more" last.log
check "train standardized from string labels" ./iris train --train train.csv --label-column species \
    --standardize --epochs 2 --save std.safetensors
[ "$(meta std.safetensors csv_classes)" = '["setosa","versicolor","virginica"]' ] &&
    [ -n "$(meta std.safetensors csv_columns)" ] && pass "--standardize keeps the names" ||
    fail "--standardize keeps the names" last.log
check "resume keeps the class names" ./iris train --train train.csv --label-column species \
    --resume ck.safetensors --epochs 31 --save ck2.safetensors
[ "$(meta ck2.safetensors csv_classes)" = '["setosa","versicolor","virginica"]' ] &&
    pass "class names survive --resume" || fail "class names survive --resume" last.log
expect "more distinct labels than K" 1 \
    "four_classes.csv: column 'species' has 4 distinct labels (setosa, setosa_x, versicolor, virginica), but label 'y' is class(3)" \
    ./iris train --train four_classes.csv --label-column species

# integer labels: as before, and no class names stored
check "train from integer labels" ./iris train --train train_int.csv --label-column species \
    --save int.safetensors
[ -z "$(meta int.safetensors csv_classes)" ] && pass "no csv_classes for integer labels" ||
    fail "no csv_classes for integer labels" last.log
./iris eval --load int.safetensors --test test_int.csv --label-column species >eval3.txt 2>&1
acc=$(sed -n 's/^accuracy: //p' eval3.txt)
awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' && pass "integer labels: accuracy $acc >= 0.9" ||
    fail "integer labels: accuracy $acc >= 0.9" eval3.txt
first=$(awk -F, 'NR == 2 { print $5 }' test.csv)
expect "string labels against a model of numeric labels" 1 \
    "test.csv:2: label '$first' in column 'species' is not a class number, and no class names were stored" \
    ./iris eval --load int.safetensors --test test.csv --label-column species

# ---- 3. --label-column feeds a float target -------------------------------------------
check "regression from one CSV" ./reg train --train house.csv --label-column price --save reg.safetensors
./reg eval --load reg.safetensors --test house.csv --label-column price >reg_eval.txt 2>&1
loss=$(sed -n 's/^loss: //p' reg_eval.txt)
awk -v l="$loss" 'BEGIN { exit !(l != "" && l < 1e-3) }' && pass "the target is learned: mse $loss < 1e-3" ||
    fail "the target is learned: mse $loss < 1e-3" reg_eval.txt
[ "$(meta reg.safetensors csv_columns)" = '["rooms","age","size"]' ] && pass "regression stores its columns" ||
    fail "regression stores its columns" reg_eval.txt
./reg predict --load reg.safetensors --input house.csv --label-column price --out price.csv 2>last.log
python3 - <<'PY' && pass "predicted prices match the formula" || fail "predicted prices match the formula" last.log
import csv
rows = list(csv.DictReader(open('house.csv')))
pred = [float(r['price']) for r in csv.DictReader(open('price.csv'))]
assert len(pred) == len(rows) == 200
assert max(abs(p - float(r['price'])) for p, r in zip(pred, rows)) < 0.05
PY
expect "a target that is not a number" 1 "house_text.csv:5: target 't' from column 'price': 'cheap' is not a number" \
    ./reg train --train house_text.csv --label-column price

finish
