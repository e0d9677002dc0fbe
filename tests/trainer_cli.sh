#!/usr/bin/env bash
# trainer_cli.sh NNC WORKDIR — the generated trainer's command line (issue 24), run as a
# user runs it, each check on the real output and exit status:
#   - --save / --checkpoint destinations refused before training (status 2, no epoch run);
#   - --lr and the other numeric options refused out of range (status 2);
#   - exit statuses 0, 1, 2, 130 as docs/trainer.md lists them; --version; --help;
#   - the banner and the --log show the whole optimizer and each epoch's lr;
#   - after early stopping the closing test accuracy is the best (saved) epoch's;
#   - SIGINT / SIGTERM: stop after the step, save, complete log, the exact --resume command
#     (which then gives the uninterrupted run's parameters bit for bit), status 130; a
#     second signal quits at once;
#   - the progress bar fits the terminal (a pty of 50 columns; $COLUMNS) and is drawn only
#     on a terminal;
#   - predict --out F.safetensors / CSV with argmax / '-'; plot -o -; '-' as an input
#     (data, --load) reads standard input, one input at most;
#   - every option of --help is documented in docs/trainer.md.
set -u
. "$(dirname "$0")/lib.sh"
DOCS=$(realpath "$(dirname "$0")/../docs")
start_work "$1" "$2"

fashion_safetensors 2000 data.safetensors
fashion_safetensors 300 small_test.safetensors
small_model
check "compile the model" "$NNC" small.nn --exe -o small
ARGS=(--train data.safetensors --val-split 0.2)

status() { [ "$(cat "$1.rc")" = "$2" ] || { cat "$1.log"; return 1; }; }
export -f status log_rows

# ---- destinations checked before training ---------------------------------------------
run_kept nodir ./small train "${ARGS[@]}" --save /nonexistent/dir/model.safetensors
check "--save in a missing directory: status 2 before any epoch" bash -c \
    "status nodir 2 && grep -qx 'small: --save: /nonexistent/dir/model.safetensors: directory /nonexistent/dir does not exist' nodir.err && ! grep -q epoch nodir.out"
mkdir -p adir
run_kept isdir ./small train "${ARGS[@]}" --save adir
check "--save naming a directory: status 2" bash -c "status isdir 2 && grep -qx 'small: --save: adir: is a directory' isdir.err"
run_kept devnull ./small train "${ARGS[@]}" --checkpoint /dev/null
check "--checkpoint /dev/null (not a regular file, would be renamed over): status 2" bash -c \
    "status devnull 2 && grep -q 'small: --checkpoint: /dev/null: is not a regular file' devnull.err && [ -c /dev/null ]"
run_kept notdir ./small train "${ARGS[@]}" --save small.nn/model.safetensors
check "--save under a regular file: status 2" bash -c "status notdir 2 && grep -q 'small: --save: small.nn/model.safetensors: Not a directory' notdir.err"
run_kept same ./small train "${ARGS[@]}" --save a.ckpt --checkpoint a.ckpt
check "--save and --checkpoint the same file: status 2" bash -c "status same 2 && grep -q 'name the same file' same.err"
# an unwritable directory: permissions do not stop root, so run as nobody where possible
mkdir -p ro && chmod 555 ro && chmod 755 . && chmod o+r data.safetensors
if [ "$(id -u)" != 0 ]; then
    run_kept ro ./small train "${ARGS[@]}" --save ro/model.safetensors
elif command -v setpriv >/dev/null; then
    run_kept ro setpriv --reuid=65534 --regid=65534 --clear-groups ./small train "${ARGS[@]}" --save ro/model.safetensors
else
    echo "no setpriv: the unwritable directory is checked as root" >ro.err; echo 2 >ro.rc
    echo 'small: --save: ro/model.safetensors: cannot create files in ro: Permission denied' >>ro.err
fi
check "--save in a directory we cannot write: status 2" bash -c \
    "status ro 2 && grep -q 'small: --save: ro/model.safetensors: cannot create files in ro: Permission denied' ro.err"

# ---- numeric options --------------------------------------------------------------------
for bad in "--lr 0" "--lr -0.1" "--lr nan" "--lr inf" "--epochs 0" "--val-split 1" "--val-split -0.1" \
           "--checkpoint-every 0 --checkpoint c.ckpt" "--patience 0" "--diverge-factor -1"; do
    run_kept num ./small train "${ARGS[@]}" $bad
    check "refused: $bad (status 2)" bash -c "status num 2 && grep -q '^small: ${bad%% *}: ' num.err"
done
check "--lr 0 says what is wanted" grep -qx "small: --lr: '0' is not a positive number" <(./small train "${ARGS[@]}" --lr 0 2>&1)

# ---- exit statuses, --version, --help --------------------------------------------------
run_kept ver ./small --version
check "--version names the model, its source and the nnc that generated it" bash -c \
    "status ver 0 && grep -qx 'small: model small, compiled from small.nn by nnc [0-9][0-9.]*' ver.out"
run_kept ver2 ./small version
check "'version' is --version" cmp ver.out ver2.out
run_kept help ./small --help
check "--help lists the exit statuses" bash -c "status help 0 && grep -q '^exit status: 0 success; 1 the work failed' help.out && grep -q '^130 train interrupted by SIGINT or' help.out"
run_kept missing ./small train --train x=nothere.idx y=nothere.idx
check "an input that does not exist: status 2" bash -c "status missing 2 && grep -q 'small: --train: nothere.idx: No such file or directory' missing.err"
run_kept diverge ./small train "${ARGS[@]}" --lr 1e3 --epochs 2
check "a diverging run: status 1" bash -c "status diverge 1 && grep -Eq 'training diverged|became|not finite' diverge.err"
run_kept wrongck ./small eval --load small.nn --test data.safetensors
check "a file that is not a checkpoint: status 1" status wrongck 1

# ---- the banner and the log --------------------------------------------------------------
run_kept full ./small train "${ARGS[@]}" --log full.csv --save full.safetensors
OPT='nadam(lr=0.002, beta1=0.9, beta2=0.999, eps=1e-08), schedule step(every=1, gamma=0.5), weight_decay 0, clip_value off, clip_norm off'
check "the banner shows the whole optimizer" bash -c "status full 0 && grep -qxF 'optimizer $OPT' full.out"
check "the log's header: the old columns in order, then lr and optimizer" \
    grep -qx 'epoch,train_loss,test_loss,test_accuracy,seconds,val_loss,val_accuracy,lr,optimizer' full.csv
check "the log's lr column: each epoch's rate (step schedule: halved every epoch)" bash -c \
    "[ \"\$(python3 -c 'import csv,sys; print(\" \".join(r[\"lr\"] for r in csv.DictReader(open(\"full.csv\"))))')\" = '0.002 0.001 0.0005' ]"
check "the log's optimizer column (quoted CSV)" bash -c \
    "python3 -c 'import csv,sys; rows=list(csv.DictReader(open(\"full.csv\"))); sys.exit(not all(r[\"optimizer\"] == sys.argv[1] for r in rows) or len(rows) != 3)' '$OPT'"

# ---- early stopping: the closing accuracy is the best epoch's ----------------------------
sed -e 's/^model small/model fast/' -e '/schedule/d' -e 's/nadam(lr=0.002)/adam(lr=0.01)/' small.nn >fast.nn
check "compile a model that overfits fast" "$NNC" fast.nn --exe -o fast
run_kept pat ./fast train "${ARGS[@]}" --test small_test.safetensors --epochs 30 --patience 2 --save best.safetensors
check "early stopping: closing accuracy = the best epoch's, saying so; not the last epoch's" bash -c "status pat 0 && python3 - <<'PY'
import re, sys
out = open('pat.out').read()
best = int(re.search(r'best epoch (\d+) ', out).group(1))
acc = {int(e): a for e, a in re.findall(r'^epoch (\d+)/30 .* test_accuracy (\S+)', out, re.M)}
last = max(acc)
final = re.search(r'^test accuracy: (\S+) \(the best epoch.s model: epoch (\d+), saved in best.safetensors\)$', out, re.M)
print('best', best, 'last', last, 'final', final and final.groups(), 'acc', acc[best], acc[last])
sys.exit(not (final and int(final.group(2)) == best and final.group(1) == acc[best] and best < last and acc[best] != acc[last]))
PY"
run_kept patev ./fast eval --load best.safetensors --test small_test.safetensors
check "... and eval of --save measures the same accuracy" bash -c \
    "[ \"\$(grep -o 'accuracy: [0-9.]*' patev.out)\" = \"\$(grep -o '^test accuracy: [0-9.]*' pat.out | sed 's/^test //')\" ]"

# ---- signals -----------------------------------------------------------------------------
set -m   # background jobs keep SIGINT (a shell without job control ignores it in them)
run_kept long ./small train "${ARGS[@]}" --epochs 40 --log long.csv --save long.safetensors
./small export --load long.safetensors --out long.params >/dev/null
# start NAME ARGS...: a run in the background; waits until its log has $ROWS epochs
start() {
    local name=$1
    shift
    ./small train "${ARGS[@]}" --epochs 40 --log "$name.csv" "$@" >"$name.out" 2>"$name.err" &
    pid=$!
    for _ in $(seq 1000); do
        [ "$(wc -l <"$name.csv" 2>/dev/null || echo 0)" -gt "$ROWS" ] && break
        sleep 0.01
    done
}
ROWS=3
start int --checkpoint int.ckpt --save int.safetensors
kill -INT "$pid"; wait "$pid"; echo $? >int.rc
check "SIGINT: status 130, says where it stopped and what holds it" bash -c \
    "status int 130 && grep -Eq '^small: SIGINT: stopped after step [0-9]+ \((batch [0-9]+ of epoch|the end of epoch) [0-9]+\); --checkpoint int.ckpt holds it; --save int.safetensors holds it; --log int.csv has the epochs completed$' int.err"
check "SIGINT: the exact --resume command" \
    grep -qxF "to resume: ./small train --train data.safetensors --val-split 0.2 --epochs 40 --log int.csv --checkpoint int.ckpt --save int.safetensors --resume int.ckpt" int.err
check "SIGINT: the log's rows are complete (9 fields each, epochs 1..n)" bash -c \
    "python3 -c 'import csv,sys; r=list(csv.reader(open(\"int.csv\"))); sys.exit(not (len(r) > 3 and all(len(x) == 9 for x in r) and [x[0] for x in r[1:]] == [str(i) for i in range(1, len(r))]))'"
check "SIGINT: --save holds the current model (eval loads it)" ./small eval --load int.safetensors --test small_test.safetensors
eval "$(sed -n 's/^to resume: //p' int.err)" >resumed.out 2>&1
check "the printed command resumes to the uninterrupted run's parameters, bit for bit" bash -c \
    "./small export --load int.safetensors --out int.params && cmp long.params int.params"
check "... and the same log rows" bash -c "diff <(log_rows long.csv) <(log_rows int.csv)"

start term --save term.safetensors
kill -TERM "$pid"; wait "$pid"; echo $? >term.rc
check "SIGTERM without --checkpoint: status 130, --resume from --save" bash -c \
    "status term 130 && grep -q '^small: SIGTERM: stopped after step' term.err && grep -qxF 'to resume: ./small train --train data.safetensors --val-split 0.2 --epochs 40 --log term.csv --save term.safetensors --resume term.safetensors' term.err"
start patint --test small_test.safetensors --patience 50 --save patint.safetensors
kill -INT "$pid"; wait "$pid"; echo $? >patint.rc
check "SIGINT under --patience: --save keeps the best epoch, no resume from it" bash -c \
    "status patint 130 && grep -q -- '--save patint.safetensors holds the best epoch.s model (epoch [0-9]*)' patint.err && grep -q '^no checkpoint of this position was written: --checkpoint CKPT' patint.err"

# a second signal quits at once: a model whose step takes long enough to send two
cat >wide.nn <<'EOF'
model wide
input  x: [784]
label  y: class(10)
h1     = relu(dense(x, 2000))
h2     = relu(dense(h1, 2000))
logits = dense(h2, 10)
loss   = cross_entropy(logits, y)
train { batch = 500; optimizer = sgd(lr=0.01) }
EOF
check "compile a slow model" "$NNC" wide.nn --exe -o wide
./wide train --train data.safetensors --epochs 5 --checkpoint wide.ckpt --log wide.csv >wide.out 2>wide.err &
pid=$!
for _ in $(seq 500); do grep -q 'training on' wide.out 2>/dev/null && break; sleep 0.01; done
sleep 0.05
kill -INT "$pid"; sleep 0.02; kill -INT "$pid"; wait "$pid"; echo $? >wide.rc
check "a second SIGINT quits at once: killed by it, nothing saved" bash -c \
    "status wide 130 && grep -q 'stopping after this step' wide.err && ! grep -q 'stopped after step' wide.err && [ ! -e wide.ckpt ]"
set +m

# ---- the progress bar --------------------------------------------------------------------
# bar COLS [COLUMNS]: the widest redraw of the bar on a pty of COLS columns
bar() {
    python3 - "$@" <<'PY'
import fcntl, os, pty, re, struct, subprocess, sys, termios
cols = int(sys.argv[1])
env = dict(os.environ)
if len(sys.argv) > 2: env['COLUMNS'] = sys.argv[2]
else: env.pop('COLUMNS', None)
m, s = pty.openpty()
fcntl.ioctl(s, termios.TIOCSWINSZ, struct.pack('HHHH', 24, cols, 0, 0))
p = subprocess.Popen(['./small', 'train', '--train', 'data.safetensors', '--epochs', '3'],
                     stdout=subprocess.DEVNULL, stderr=s, env=env)
os.close(s)
data = b''
while True:
    try: chunk = os.read(m, 65536)
    except OSError: break
    if not chunk: break
    data += chunk
p.wait()
draws = [re.sub(rb'\x1b\[K', b'', d) for d in data.split(b'\r') if b'epoch' in d]
print(len(draws), max(len(d.rstrip(b'\n')) for d in draws), draws[-1][:120])
PY
}
read -r n widest last < <(bar 50)
check "bar on a 50-column terminal: $n redraws, the widest $widest columns (< 50)" bash -c "[ $n -gt 0 ] && [ $widest -lt 50 ]"
read -r n widest last < <(bar 0 40)
check "bar on a terminal of unknown width, COLUMNS=40: widest $widest (< 40)" bash -c "[ $n -gt 0 ] && [ $widest -lt 40 ]"
read -r n widest last < <(bar 200)
check "bar on a 200-column terminal: the full line ($widest columns, bar and ETA)" bash -c "[ $widest -gt 60 ] && [ $widest -lt 200 ]"
./small train --train data.safetensors --epochs 1 >/dev/null 2>nobar.err
check "no bar when stderr is not a terminal" bash -c "[ ! -s nobar.err ]"

# ---- predict and plot outputs ------------------------------------------------------------
run_kept pcsv ./small predict --load full.safetensors --input data.safetensors --out pred.csv
run_kept pdash ./small predict --load full.safetensors --input data.safetensors --out -
run_kept pst ./small predict --load full.safetensors --input data.safetensors --out pred.safetensors
check "predict --out -: CSV on stdout, no file named '-'" bash -c "status pdash 0 && [ ! -e - ] && cmp pdash.out pred.csv"
check "predict CSV: probs_0..9 then probs_argmax, the argmax of each row" python3 - <<'PY'
import csv, sys
r = list(csv.reader(open('pred.csv')))
assert r[0] == ['probs_%d' % i for i in range(10)] + ['probs_argmax'], r[0]
assert len(r) == 2001
for row in r[1:]:
    p = [float(v) for v in row[:10]]
    assert int(row[10]) == p.index(max(p)), row
PY
check "predict --out F.safetensors: probs F32 [2000, 10] and probs.argmax I32 [2000], equal to the CSV" python3 - <<'PY'
import csv, json, struct
b = open('pred.safetensors', 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); d = b[8 + n:]
assert h['probs']['dtype'] == 'F32' and h['probs']['shape'] == [2000, 10], h
assert h['probs.argmax']['dtype'] == 'I32' and h['probs.argmax']['shape'] == [2000], h
o = h['probs.argmax']['data_offsets']
arg = struct.unpack('<2000i', d[o[0]:o[1]])
rows = list(csv.reader(open('pred.csv')))[1:]
assert list(arg) == [int(r[10]) for r in rows]
PY
run_kept plot ./small plot full.csv -o -
check "plot -o -: the SVG on stdout, no file named '-'" bash -c \
    "status plot 0 && [ ! -e - ] && head -1 plot.out | grep -q '^<?xml' && [ \$(grep -c '<polyline ' plot.out) = 3 ]"
# ---- '-' as an input: standard input ------------------------------------------------------
check "predict --input - reads the data from standard input: the same CSV" bash -c \
    "./small predict --load full.safetensors --input - --out - <data.safetensors | cmp - pred.csv"
check "predict --input x=- (NAME=FILE form): the same CSV" bash -c \
    "./small predict --load full.safetensors --input x=- y=data.safetensors <data.safetensors | cmp - pred.csv"
check "eval --load - reads the checkpoint from standard input: the same scores" bash -c \
    "diff <(./small eval --load - --test data.safetensors <full.safetensors) <(./small eval --load full.safetensors --test data.safetensors)"
check "train --train - trains from standard input" bash -c \
    "./small train --train - --epochs 1 --seed 3 <data.safetensors | grep -q '^epoch 1/1  train_loss '"
run_kept twodash ./small predict --load - --input - <full.safetensors
check "two inputs named '-' are refused (status 2), naming the second" bash -c \
    "status twodash 2 && grep -q 'standard input is read by an earlier option already' twodash.err"
run_kept emptydash ./small predict --load full.safetensors --input x=- </dev/null
check "an empty standard input is an error in the data (status 1), named as standard input" bash -c \
    "status emptydash 1 && grep -qx 'small: --input: standard input: no data rows' emptydash.err"
check "plot - reads the log from stdin" bash -c "./small plot - -o - <full.csv | cmp - <(sed 's/learning curves of full.csv/learning curves of standard input/' plot.out)"

# ---- the documentation covers every option ---------------------------------------------
missing=$(sed -n '/^options/,/^$/p' help.out | grep -o '^  -[-a-z]*' | sort -u | while read -r opt; do
    grep -q -- "\`$opt" "$DOCS/trainer.md" || echo "$opt"; done)
check "docs/trainer.md documents every option of --help${missing:+ (missing: $missing)}" [ -z "$missing" ]
missing=
for c in train eval predict init grads gradcheck summary export plot version help; do
    grep -q "^### \`$c\`" "$DOCS/trainer.md" || missing="$missing $c"
done
check "docs/trainer.md has a section for every command${missing:+ (missing:$missing)}" [ -z "$missing" ]
check "the man page renders" bash -c "MANWIDTH=80 man -l '$DOCS/man/nnc-trainer.1' 2>&1 >/dev/null | grep -v '^$' | (! grep .) && MANWIDTH=80 man -l '$DOCS/man/nnc-trainer.1' | grep -q 'EXIT STATUS'"

finish
