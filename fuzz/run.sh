#!/usr/bin/env bash
# run.sh — builds nnc's libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined)
# and runs each for a fixed time, to find crashes, leaks and undefined behaviour in:
#   fuzz_frontend     the .nn front end and code generator (parse ... names, emit)
#   fuzz_safetensors  the safetensors reader/writer, checkpoint and data loading
#   fuzz_idx          the IDX reader (raw and gzip) and IDX data specs
#   fuzz_csv          the CSV reader and CSV data loading (header, label column)
#
#   bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#   FUZZ_SECONDS=600 bash fuzz/run.sh       the same through the environment (default 60)
#
# Seeds: examples/*.nn, tests/golden/**/*.nn, tests/gradcheck/*.nn for the front end, small
# data files written here for the loaders, and fuzz/regressions/TARGET/* for each target.
# Everything goes under $FUZZ_BUILD (default build-fuzz/): the clang build, the growing
# corpora (corpus/TARGET, kept between runs) and crash reproducers (artifacts/TARGET/).
# A target that crashes FAILs; copy its reproducer into fuzz/regressions/TARGET/ once
# fixed (ctest fuzz_regressions replays them).  Prints PASS/FAIL per target, the number of
# executions, and ends with `N passed, M failed`.  See fuzz/README.md.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-${FUZZ_SECONDS:-60}}
[ $# -gt 0 ] && shift
targets=${*:-fuzz_frontend fuzz_safetensors fuzz_idx fuzz_csv}
B=${FUZZ_BUILD:-$root/build-fuzz}
CC=${FUZZ_CC:-clang}
mkdir -p "$B"

if ! command -v "$CC" >/dev/null; then
    echo "fuzz: $CC not found (scripts/deps.sh installs clang and libclang-rt-dev)" >&2
    exit 2
fi

# ---- build: the libraries instrumented for coverage, the targets linked with libFuzzer
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
cmake -S "$root" -B "$B/cmake" -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link $san" >"$B/cmake.log" 2>&1 &&
cmake --build "$B/cmake" -j"$(nproc)" --target nnr nncfront >>"$B/cmake.log" 2>&1 || {
    echo "fuzz: building the libraries failed; see $B/cmake.log" >&2
    tail -20 "$B/cmake.log" >&2
    exit 2
}
inc="-I$root/runtime -I$root/dsl -I$root/codegen -I$root/tests/unit -I$B/cmake"
libs="$B/cmake/libnncfront.a $B/cmake/libnnr.a -ljansson -lz -lopenblas -lm"
for t in $targets; do
    extra=""
    case $t in fuzz_safetensors|fuzz_idx|fuzz_csv) extra=$root/tests/unit/toy_model.c ;; esac
    $CC -fsanitize=fuzzer $san -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $inc \
        "$root/fuzz/$t.c" $extra $libs -o "$B/$t" 2>"$B/$t.build.log" || {
        echo "fuzz: building $t failed:" >&2
        cat "$B/$t.build.log" >&2
        exit 2
    }
done

# ---- seeds
seeds=$B/seeds
rm -rf "$seeds"
mkdir -p "$seeds/fuzz_frontend" "$seeds/fuzz_safetensors" "$seeds/fuzz_idx" "$seeds/fuzz_csv"
i=0
for f in examples/*.nn tests/golden/*/*.nn tests/gradcheck/*.nn; do
    [ -f "$f" ] && cp "$f" "$seeds/fuzz_frontend/$i-$(basename "$f")" && i=$((i + 1))
done
python3 - "$seeds" <<'PY'
import gzip, json, struct, sys
d = sys.argv[1]
def st(path, tensors, meta=None):
    hdr, blob = {}, b''
    if meta: hdr['__metadata__'] = meta
    for name, (dt, shape, data) in tensors.items():
        hdr[name] = {'dtype': dt, 'shape': shape, 'data_offsets': [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(hdr).encode(); h += b' ' * (-len(h) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + blob)
f32 = lambda *v: struct.pack('<%df' % len(v), *v)
st(d + '/fuzz_safetensors/data', {'x': ('F32', [2, 4], f32(*range(8))),
                                   'y': ('I64', [2], struct.pack('<2q', 0, 2))})
st(d + '/fuzz_safetensors/params', {'lin.weight': ('F32', [3, 4], f32(*range(12))),
                                     'lin.bias': ('F32', [3], f32(1, 2, 3))},
   {'nnc_model': 'toy_cls', 'step': '3'})
st(d + '/fuzz_safetensors/ckpt', {'lin.weight': ('F32', [3, 4], f32(*range(12))),
                                   'lin.bias': ('F32', [3], f32(1, 2, 3)),
                                   'optimizer.state': ('F32', [17], f32(*range(17))),
                                   'standardize.mean': ('F64', [4], struct.pack('<4d', 0, 1, 2, 3)),
                                   'standardize.std': ('F64', [4], struct.pack('<4d', 1, 1, 1, 1))},
   {'nnc_model': 'toy_mom', 'nnc_schema': '0123456789abcdef', 'nnc_checkpoint': '1', 'step': '5',
    'epoch': '1', 'batch': '0', 'epochs': '4', 'examples': '2', 'seed': '5', 'lr': '0.1',
    'loss_sum': '0', 'best_loss': '1.5', 'best_epoch': '1'})
st(d + '/fuzz_safetensors/dtypes', {n: (n, [2], b'\0' * (2 * s)) for n, s in
   [('F32', 4), ('F64', 8), ('I32', 4), ('I64', 8), ('U8', 1), ('I8', 1), ('I16', 2), ('BF16', 2)]})
open(d + '/fuzz_safetensors/empty', 'wb').write(struct.pack('<Q', 2) + b'{}')
def idx(code, shape, data):
    return b'\0\0' + bytes([code, len(shape)]) + b''.join(struct.pack('>I', s) for s in shape) + data
open(d + '/fuzz_idx/u8', 'wb').write(idx(0x08, [3, 2, 2], bytes(range(12))))
open(d + '/fuzz_idx/labels', 'wb').write(idx(0x08, [3], bytes([0, 1, 2])))
open(d + '/fuzz_idx/f32', 'wb').write(idx(0x0D, [2, 4], struct.pack('>8f', *range(8))))
open(d + '/fuzz_idx/f64', 'wb').write(idx(0x0E, [2], struct.pack('>2d', 1, 2)))
open(d + '/fuzz_idx/i16', 'wb').write(idx(0x0B, [2], struct.pack('>2h', 1, -2)))
open(d + '/fuzz_idx/i32', 'wb').write(idx(0x0C, [2], struct.pack('>2i', 1, -2)))
open(d + '/fuzz_idx/i8', 'wb').write(idx(0x09, [2], struct.pack('>2b', 1, -2)))
open(d + '/fuzz_idx/gz', 'wb').write(gzip.compress(idx(0x08, [2, 4], bytes(range(8)))))
open(d + '/fuzz_idx/scalar', 'wb').write(idx(0x08, [], b'\x07'))
open(d + '/fuzz_csv/header', 'w').write('a,b,c,d,y\n1,2,3,4,0\n5.5,-6e3,7,8,2\n')
open(d + '/fuzz_csv/plain', 'w').write('1,2,3,4\n0.5,0.25,1e-3,-7\n')
open(d + '/fuzz_csv/labels', 'w').write('0\n1\n2\n')
open(d + '/fuzz_csv/quoted', 'w').write('"a","b,c",d,e,y\r\n1,2,3,4,1\r\n  5 , 6 ,7,8,0\r\n')
open(d + '/fuzz_csv/nan', 'w').write('x1,x2,x3,x4,y\nnan,inf,-inf,1,0\n')
PY

# ---- run
passed=0 failed=0
for t in $targets; do
    corpus=$B/corpus/$t
    art=$B/artifacts/$t
    mkdir -p "$corpus" "$art"
    dict=""
    [ "$t" = fuzz_frontend ] && dict="-dict=$root/fuzz/nn.dict"
    regs=""
    [ -d "$root/fuzz/regressions/$t" ] && regs="$root/fuzz/regressions/$t"
    log=$B/$t.log
    start=$(date +%s)
    (cd "$B" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
        OPENBLAS_NUM_THREADS=1 \
        "./$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -max_len=16384 \
        -print_final_stats=1 -artifact_prefix="$art/" $dict \
        "$corpus" "$seeds/$t" $regs) >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "PASS $t: ${execs:-?} executions in ${took}s, corpus $(ls "$corpus" | wc -l) files"
        passed=$((passed + 1))
    else
        echo "FAIL $t (exit $rc after ${took}s, ${execs:-?} executions): reproducer in $art/"
        grep -m1 -A25 'ERROR: \|runtime error\|==ERROR' "$log" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
