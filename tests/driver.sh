#!/usr/bin/env bash
# driver.sh NNC WORKDIR — the nnc command's file conventions and exit statuses.
#
# `-` is standard input for the model and standard output for -o and --header: `-o -`
# prints exactly the C file `-o FILE` writes and creates no file named `-`; --header
# puts the header where it says and the C includes it by that name; one standard output
# only; every output option (--summary, --emit, --graph) writes the same bytes to -o FILE,
# -o - and by default; --dump-ir goes to standard error.  --exe -o names a program, so
# m.c, m.h and - are refused before anything is written.  Exit statuses: 0 success, 1
# errors in the model, 2 usage and I/O errors (a missing file, an unwritable output, a
# full disk).
set -u
. "$(dirname "$0")/lib.sh"
NNC=$(realpath "$1")
WORK=$2
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1

# in_dir DIR COMMAND...: COMMAND run in a fresh directory DIR, which then holds what it wrote
in_dir() { local d=$1; shift; rm -rf "$d" && mkdir "$d" && (cd "$d" && "$@"); }
# only DIR FILE...: DIR holds exactly these files
only() {
    local d=$1 want=""
    shift
    [ $# -gt 0 ] && want=$(printf '%s\n' "$@" | sort)
    [ "$(cd "$d" && ls -A | sort)" = "$want" ] || { echo "$d holds: $(ls -A "$d")"; return 1; }
}
export -f in_dir only

cat >tiny.nn <<'EOF'
model tiny
input x: [4]
label y: class(3)
h = tanh(dense(x, 5))
z = dense(h, 3)
loss = cross_entropy(z, y)
train { batch = 4 }
EOF
printf 'model bad\ninput x: [3]\nloss = sum(nope)\n' >bad.nn
M=$WORK/tiny.nn

# ---- -o - and --header ----
check "-o tiny.c writes tiny.c and tiny.h" bash -c "in_dir ref '$NNC' '$M' -o tiny.c && only ref tiny.c tiny.h"
check "no -o writes tiny.c and tiny.h, the same bytes" bash -c \
    "in_dir dflt '$NNC' '$M' && cmp dflt/tiny.c ref/tiny.c && cmp dflt/tiny.h ref/tiny.h"
check "-o - prints the C byte for byte, writes no file (no '-', no header)" bash -c \
    "in_dir std sh -c \"'$NNC' '$M' -o - >../std.c\" && cmp std.c ref/tiny.c && only std"
check "--header FILE with -o - writes the header there; the C includes it by name" bash -c \
    "in_dir hdr sh -c \"mkdir inc && '$NNC' '$M' -o - --header inc/other.h >../hdr.c\" && only hdr inc &&
     cmp hdr/inc/other.h ref/tiny.h && grep -q '^#include \"other.h\"\$' hdr.c &&
     [ \"\$(diff hdr.c ref/tiny.c | grep -c '^[<>]')\" = 2 ]"
check "--header FILE with a named -o overrides 'beside the C'" bash -c \
    "in_dir named sh -c \"mkdir src inc && '$NNC' '$M' -o src/m.c --header inc/m.h\" &&
     only named/src m.c && cmp named/inc/m.h ref/tiny.h && grep -q '^#include \"m.h\"\$' named/src/m.c"
check "--header - prints the header, the C goes to -o" bash -c \
    "in_dir hstd sh -c \"'$NNC' '$M' -o tiny.c --header - >../hstd.h\" && only hstd tiny.c &&
     cmp hstd.h ref/tiny.h && cmp hstd/tiny.c ref/tiny.c"
check "-o - --header - is refused (exit 2), nothing printed" bash -c \
    "in_dir both sh -c \"'$NNC' '$M' -o - --header - >../both.out 2>../both.err; test \\\$? = 2\" &&
     [ ! -s both.out ] && grep -q 'both write to standard output' both.err && only both"
check "-o m.h (C and header in one file) is refused" bash -c \
    "in_dir clash sh -c \"'$NNC' '$M' -o m.h 2>../clash.err; test \\\$? = 2\" && only clash &&
     grep -q 'would both be m.h' clash.err"
check "an output onto the model file is refused, the model kept" bash -c \
    "cp tiny.nn keep.nn && '$NNC' keep.nn -o ./keep.nn 2>keep.err; test \$? = 2 && cmp keep.nn tiny.nn &&
     '$NNC' keep.nn --summary -o keep.nn 2>>keep.err; test \$? = 2 && cmp keep.nn tiny.nn &&
     grep -q 'is the model file' keep.err"

# ---- --exe ----
for o in m.c m.h sub/m.c -; do
    check "--exe -o $o is refused (exit 2), nothing written" bash -c \
        "in_dir exe sh -c \"mkdir sub && '$NNC' '$M' --exe -o '$o' 2>../exe.err; test \\\$? = 2\" &&
         only exe sub && only exe/sub && grep -q -- '--exe' exe.err"
done
check "--exe -o m.c says to name the program" bash -c \
    "'$NNC' '$M' --exe -o m.c 2>&1 | grep -q 'names the program, not its C file: -o m.c would make a program'"
check "--exe --header is refused" status_is 2 "$NNC" "$M" --exe -o p --header p.h
check "--exe -o -p: a program named like an option builds" bash -c \
    "in_dir dash '$NNC' '$M' --exe -o -p && only dash -p -p.c -p.h && [ -x dash/-p ]"

# ---- the model from standard input ----
check "- reads the model from standard input (-o -)" bash -c \
    "'$NNC' - -o - <tiny.nn | sed 's/<stdin>/tiny.nn/' | cmp - <('$NNC' tiny.nn -o -)"
check "- reads the model, -o names the output" bash -c \
    "in_dir sin sh -c \"'$NNC' - -o t.c <../tiny.nn\" && only sin t.c t.h && grep -q '^#include \"t.h\"\$' sin/t.c"
check "diagnostics from standard input name <stdin>, exit 1" bash -c \
    "'$NNC' - --summary <bad.nn 2>sin.err; test \$? = 1 && grep -q '^<stdin>:3:' sin.err"
check "- without -o is refused (no file name to write), exit 2" bash -c \
    "in_dir sno sh -c \"'$NNC' - <../tiny.nn 2>../sno.err; test \\\$? = 2\" && only sno &&
     grep -q 'standard input' sno.err"
check "--exe from standard input needs -o" status_is 2 "$NNC" - --exe <tiny.nn

# ---- every output option with - ----
for opt in --summary "--emit forward" "--emit backward" "--emit update" "--emit infer" --graph; do
    # shellcheck disable=SC2086
    check "$opt: -o FILE, -o - and the default write the same bytes" bash -c \
        "'$NNC' '$M' $opt -o out.txt && '$NNC' '$M' $opt -o - >std.txt && '$NNC' '$M' $opt >dflt.txt &&
         [ -s out.txt ] && cmp out.txt std.txt && cmp out.txt dflt.txt && [ ! -e ./- ]"
done
check "--dump-ir goes to standard error, the output stays as it was" bash -c \
    "'$NNC' '$M' --dump-ir --emit forward >ir.out 2>ir.err && '$NNC' '$M' --emit forward | cmp - ir.out &&
     grep -q '^; IR after shapes' ir.err"
check "--summary with --graph is refused" status_is 2 "$NNC" "$M" --summary --graph
check "--header with --summary is refused" status_is 2 "$NNC" "$M" --summary --header x.h

# ---- exit statuses ----
check "a good model exits 0" status_is 0 "$NNC" "$M" -o ok.c
check "a model with an error exits 1" status_is 1 "$NNC" bad.nn -o bad.c
check "a model with an error writes nothing" bash -c "[ ! -e bad.c ] && [ ! -e bad.h ]"
check "a missing model file exits 2" status_is 2 "$NNC" no-such-model.nn
check "an unknown option exits 2" status_is 2 "$NNC" "$M" --frobnicate
check "an option without its value exits 2" status_is 2 "$NNC" "$M" -o
check "an unwritable output exits 2" status_is 2 "$NNC" "$M" -o no-such-dir/m.c
check "--help and --version exit 0, anywhere on the line" bash -c \
    "'$NNC' '$M' --help | grep -q -- '--header FILE' && '$NNC' '$M' --version | grep -q '^nnc '"
check "--help states the exit statuses" bash -c "'$NNC' --help | grep -q '^exit status: 0 success; 1 errors in the model'"
if [ -c /dev/full ]; then
    check "a full disk on standard output exits 2 and says so" bash -c \
        "'$NNC' '$M' -o - >/dev/full 2>full.err; test \$? = 2 && grep -q 'cannot write standard output' full.err"
    check "--summary onto a full disk exits 2" bash -c "'$NNC' '$M' --summary >/dev/full 2>/dev/null; test \$? = 2"
    check "-o /dev/full exits 2 and leaves the device alone" bash -c \
        "'$NNC' '$M' --graph -o /dev/full 2>/dev/null; test \$? = 2 && [ -c /dev/full ]"
else
    echo "NOTE /dev/full is not a character device here; the full-disk checks did not run"
fi
finish
