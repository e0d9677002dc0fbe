#!/usr/bin/env bash
# hostile2.sh NNC WORKDIR — hostile data files and outputs get clear messages (issue 22).
#
# Through a trainer built by nnc: a corrupted first CSV row is an error naming line 1 (not
# a header); CR-only line ends are read; UTF-16 files are named as such; hexadecimal and
# non-finite CSV values are refused with line and field; predict --out onto a full device
# (/dev/full) and past a file size limit (ulimit -f, EFBIG) fails non-zero with the cause
# and leaves the old file whole; a directory given as data says it is a directory (exit 2,
# before any work); a bare
# safetensors FILE without the label's tensor names the FILE and its tensors.
set -u
. "$(dirname "$0")/lib.sh"
start_work "$1" "$2"

cat >m.nn <<'NN'
model m
input x: [2]
label y: class(2)
logits = dense(x, 2)
loss = cross_entropy(logits, y)
output probs = softmax(logits)
train { batch = 4; optimizer = sgd(lr=0.1) }
NN
cat >c.nn <<'NN'
model c
input ids: class(256) [2]
label y: class(256)
loss = cross_entropy(dense(flatten(embedding(ids, 256, 2)), 256), y)
train { batch = 4 }
NN
"$NNC" m.nn --exe -o m >build.log 2>&1 && "$NNC" c.nn --exe -o c >>build.log 2>&1 ||
    { cat build.log; exit 1; }

printf 'a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n' >good.csv
printf '1,2\n3,4\n5,6\n7,8\n' >x.csv
printf '0\n1\n0\n1\n' >y.csv
expect "clean CSV trains" 0 "epoch 1/1" ./m train --train good.csv --label-column y
printf '1,x2\n1,2\n3,4\n5,6\n7,8\n' >corrupt.csv
expect "corrupted first row is an error at line 1" 1 \
    "corrupt.csv:1: field 2 'x2' is not a number, but field 1 '1' is" \
    ./m train --train x=corrupt.csv y=y.csv
printf 'a,b,y\r1,2,0\r3,4,1\r5,6,0\r7,8,1\r' >cr.csv
expect "CR-only line ends are read" 0 "training on 4 examples" ./m train --train cr.csv --label-column y
printf '\xEF\xBB\xBFa,b,y\r\n1,2,0\r\n3,4,1\r\n' >bom.csv
expect "UTF-8 BOM and CRLF are read" 0 "training on 2 examples" ./m train --train bom.csv --label-column y
python3 -c "import sys; open('u16.csv','wb').write(open('good.csv').read().encode('utf-16'))"
expect "UTF-16 is named" 1 "u16.csv: the file is UTF-16 text (byte order mark FF FE); save it as UTF-8" \
    ./m train --train u16.csv --label-column y
python3 -c "import sys; open('u16n.csv','wb').write(open('x.csv').read().encode('utf-16-le'))"
expect "UTF-16 without a BOM is named" 1 "u16n.csv:1: a NUL byte (offset 1): the file looks like UTF-16" \
    ./m train --train x=u16n.csv y=y.csv
printf '1,2\n0x10,4\n5,6\n7,8\n' >hex.csv
expect "hexadecimal is refused" 1 "hex.csv:2: field 1 '0x10' is hexadecimal" ./m train --train x=hex.csv y=y.csv
printf '1,2\n3,4\n5,nan\n7,8\n' >nan.csv
expect "nan is refused" 1 "nan.csv:3: field 2 'nan' is not finite" ./m train --train x=nan.csv y=y.csv
printf '1,2\n3,4\n5,6\n7,1e999\n' >big.csv
expect "1e999 is refused" 1 "big.csv:4: field 2 '1e999' is out of range for F32" ./m train --train x=big.csv y=y.csv

# predict --out: a full device, a file size limit; the old file stays whole
expect "train a checkpoint" 0 "epoch 1/1" ./m train --train good.csv --label-column y --save ck.safetensors
python3 -c "print('a,b'); [print('%d,%d' % (i, -i)) for i in range(20000)]" >many.csv
expect "predict --out /dev/full" 1 "/dev/full: write failed: No space left on device" \
    ./m predict --load ck.safetensors --input x=many.csv --out /dev/full
echo "old predictions" >out.csv
expect "predict --out past ulimit -f" 1 "out.csv: write failed: File too large" \
    bash -c "ulimit -f 64; trap '' XFSZ; exec ./m predict --load ck.safetensors --input x=many.csv --out out.csv"
check "the old file is kept, no temporary left" bash -c \
    '[ "$(cat out.csv)" = "old predictions" ] && [ -z "$(ls | grep out.csv.tmp)" ]'
check "predict --out without limits" ./m predict --load ck.safetensors --input x=many.csv --out out.csv
check "the new file is whole" bash -c '[ "$(wc -l <out.csv)" -eq 20001 ]'

# directories as data
mkdir -p dir dir.csv dir.idx dir.safetensors
expect "--text DIR" 2 "--text: dir: is a directory" ./c train --text dir
for d in dir dir.csv dir.idx dir.safetensors; do
    expect "--train x=$d" 2 "--train: $d: is a directory" ./m train --train x=$d y=y.csv
done
expect "--train DIR.safetensors" 2 "--train: dir.safetensors: is a directory" ./m train --train dir.safetensors
expect "--label-column with a DIR" 2 "--train: dir.csv: is a directory" ./m train --train dir.csv --label-column y

# a bare safetensors file without the label's tensor
python3 - <<'PY'
import json, struct
x = struct.pack('<8f', *range(8)); l = struct.pack('<4q', 0, 1, 0, 1)
h = json.dumps({'x': {'dtype': 'F32', 'shape': [4, 2], 'data_offsets': [0, 32]},
                'labels': {'dtype': 'I64', 'shape': [4], 'data_offsets': [32, 64]}}).encode()
h += b' ' * (-len(h) % 8)
open('nolabel.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h + x + l)
PY
expect "bare safetensors without the label" 1 \
    "no data for label 'y': no tensor 'y' in nolabel.safetensors (its tensors: x, labels); give y=FILE" \
    ./m train --train nolabel.safetensors
finish
