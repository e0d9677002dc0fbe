#!/usr/bin/env bash
# consumer.sh BUILD SRC WORKDIR CC [CFLAGS] — nnc as a dependency of other projects
# (issue 24): what a user does with an installed nnc, or with nnc's source tree inside
# their own, checked.
#
#   - `cmake --install BUILD --prefix P` into a fresh directory outside the build tree
#     (an nnc inside its build tree would link the build's runtime, not the installed one);
#   - examples/consumer (find_package(nnc), nnc_add_model, a C and a C++17 program)
#     configured with CMAKE_PREFIX_PATH=P, built, and both programs run: they exit 1 unless
#     training lowered the held-out loss and the model classifies 90% right;
#   - the same C program built by the pkg-config one-liner and run;
#   - a super-project that add_subdirectory()s the source tree (tests are then off by
#     default), puts a model in a static library with nnc_add_model and links a C++ program to it:
#     it builds and runs, defines no tests of nnc's, and nnc's compile options (C11,
#     -Wall, the POSIX defines) stay out of the parent's targets, the model's C included;
#   - the installed man pages render (man -l), and the installed nnc's --exe builds a
#     trainer from the installed header and library;
#   - when nnc was built with Open MPI (issue 26): the installed nnc's --exe --mpi builds a
#     trainer with the installed libnnr_mpi.a that trains under `mpirun -np 2`; a project
#     whose main() calls nnr_mpi_main, its model added by nnc_add_model(... MPI), builds
#     against the installed package and trains under `mpirun -np 2`; where the consumer
#     finds no MPI, nnc is still found (examples/consumer configures) and
#     nnc_add_model(... MPI) stops cmake with a message saying what to install.
#
# CC and CFLAGS are the build's compiler and flags (a sanitizer build's libnnr.a needs
# its -fsanitize flags on the consumer's link line too); the C++ compiler is CC's sibling.
set -u
. "$(dirname "$0")/lib.sh"
BUILD=$(realpath "$1")
SRC=$(realpath "$2")
WORK=$3
CC=$4
CFLAGS=${5:-}
case $(basename "$CC") in
    *clang*) CXX=$(dirname "$CC")/$(basename "$CC" | sed 's/clang/clang++/') ;;
    *gcc*) CXX=$(dirname "$CC")/$(basename "$CC" | sed 's/gcc/g++/') ;;
    *) CXX=$(dirname "$CC")/c++ ;;
esac
command -v "$CXX" >/dev/null || CXX=c++
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" && WORK=$(pwd) || exit 1
PREFIX=$(mktemp -d /tmp/nnc-consumer.XXXXXX) || exit 1
trap 'rm -rf "$PREFIX"' EXIT
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
CONSUMER=$SRC/examples/consumer

# cmake_c_cxx DIR BUILDDIR ARGS...: configure with the build's compilers and flags
cmake_c_cxx() {
    local dir=$1 out=$2
    shift 2
    cmake -S "$dir" -B "$out" -DCMAKE_C_COMPILER="$CC" -DCMAKE_CXX_COMPILER="$CXX" \
        -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_CXX_FLAGS="$CFLAGS" "$@"
}

check "cmake --install into a temporary prefix" cmake --install "$BUILD" --prefix "$PREFIX"
for f in bin/nnc include/nnc/nnr.h; do
    check "the prefix has $f" test -f "$PREFIX/$f"
done
config=$(find "$PREFIX" -path '*/cmake/nnc/nncConfig.cmake' | head -1)
pc=$(find "$PREFIX" -name nnr.pc | head -1)
check "the prefix has nncConfig.cmake, nncConfigVersion.cmake and nnr.pc" \
    test -n "$config" -a -f "${config%/*}/nncConfigVersion.cmake" -a -n "$pc"

# ---- find_package(nnc) ----
find_package_build() {
    cmake_c_cxx "$CONSUMER" "$WORK/consumer" -DCMAKE_PREFIX_PATH="$PREFIX" &&
        grep -qx "nnc_DIR:PATH=${config%/*}" "$WORK/consumer/CMakeCache.txt" &&
        cmake --build "$WORK/consumer" -j2
}
check "examples/consumer configures against the prefix (find_package) and builds" find_package_build
check "examples/consumer/CMakeLists.txt is at most 10 lines" test "$(wc -l <"$CONSUMER/CMakeLists.txt")" -le 10
check "the consumer's C program trains and predicts" "$WORK/consumer/app_c"
check "the consumer's C++ program trains and predicts" "$WORK/consumer/app_cpp"

# ---- pkg-config ----
pkg_config_build() {
    mkdir -p "$WORK/pc" && cd "$WORK/pc" && cp "$CONSUMER/app.c" . || return 1
    "$PREFIX/bin/nnc" "$CONSUMER/quadrants.nn" -o quadrants.c || return 1
    local flags
    flags=$(PKG_CONFIG_PATH=${pc%/*} pkg-config --cflags --libs nnr) || return 1
    echo "$CC $CFLAGS app.c quadrants.c $flags -o app_c"
    # shellcheck disable=SC2086  # flags, split into words as the one-liner splits them
    "$CC" $CFLAGS app.c quadrants.c $flags -o app_c && ./app_c
}
check "the C program builds with \$(pkg-config --cflags --libs nnr) and runs" pkg_config_build
cd "$WORK" || exit 1

# ---- add_subdirectory ----
mkdir -p "$WORK/super"
cp "$CONSUMER/app.cpp" "$CONSUMER/quadrants.nn" "$WORK/super/"
cat >"$WORK/super/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.21)
project(super LANGUAGES C CXX)
set(CMAKE_CXX_STANDARD 17)
add_subdirectory("$SRC" nnc)
add_library(model STATIC)
nnc_add_model(model quadrants.nn)
add_executable(app app.cpp)
target_link_libraries(app PRIVATE model)
EOF
super_build() {
    cmake_c_cxx "$WORK/super" "$WORK/super/build" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON &&
        cmake --build "$WORK/super/build" -j2 --target app
}
check "a super-project builds nnc with add_subdirectory and a model with nnc_add_model" super_build
check "the super-project's program trains and predicts" "$WORK/super/build/app"
no_tests() { ctest --test-dir "$WORK/super/build" -N | grep -q "Total Tests: 0"; }
check "the super-project has none of nnc's tests (NNC_BUILD_TESTS is OFF in a subproject)" no_tests
parent_flags() {   # the parent's compile commands (app.cpp, the generated quadrants.c)
    python3 - "$WORK/super/build/compile_commands.json" <<'PY'
import json, sys
cmds = [c['command'] for c in json.load(open(sys.argv[1]))
        if c['file'].endswith(('/app.cpp', '/quadrants.c'))]
print('\n'.join(cmds))
leaked = [f for f in ('-Wall', '-Wextra', '-D_POSIX_C_SOURCE', '-D_DEFAULT_SOURCE', '-std=c11')
          for c in cmds if f in c]
sys.exit(1 if leaked or len(cmds) != 2 else 0)
PY
}
check "nnc's compile options do not reach the parent's targets" parent_flags

# ---- man pages and the installed nnc --exe ----
if command -v man >/dev/null; then
    for page in nnc nnc-trainer; do
        f=$PREFIX/share/man/man1/$page.1
        check "man -l renders the installed $page.1" bash -c "test -f '$f' && man -l '$f' | grep -q NAME"
    done
else
    fail "man is not installed (scripts/deps.sh installs man-db)"
fi
installed_exe() {   # with the build's compiler: a clang-built libnnr.a needs clang's OpenMP
    NNC_CC=${NNC_CC:-$CC} "$PREFIX/bin/nnc" "$CONSUMER/quadrants.nn" --exe -v -o quadrants >exe.log 2>&1 ||
        { cat exe.log; return 1; }
    cat exe.log
    grep -q -- "-I$PREFIX/bin/../include/nnc" exe.log &&
        grep -q -- "$PREFIX/bin/../lib[^ ]*/libnnr.a" exe.log &&
        ./quadrants summary | grep -q quadrants
}
check "the installed nnc --exe compiles against the installed header and library" installed_exe

# ---- MPI: the installed nnc --exe --mpi, and nnc_add_model(... MPI) ----
# scripts/deps.sh installs Open MPI, so an nnc built without it is a failure here, not a skip
if [ -z "$(find "$PREFIX" -name libnnr_mpi.a)" ]; then
    fail "the installation has libnnr_mpi.a (nnc was built with Open MPI)"
    finish; exit
fi
pass "the installation has libnnr_mpi.a (nnc was built with Open MPI)"
# mpirun refuses root unless told (CI runs as root).  Under scripts/test.sh --sanitize,
# Open MPI's own allocations are not nnc's leaks (tests/mpi.sh says why these three).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export LSAN_OPTIONS="suppressions=$SRC/tests/mpi.supp:print_suppressions=0"
[ -n "${ASAN_OPTIONS:-}" ] && export ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0"
export OMPI_MCA_mca_base_component_disable_dlclose=1
python3 - >"$WORK/quadrants.csv" <<'PY'
# 256 points of the consumer's problem: class 1 in the 1st and 3rd quadrants
import random
r = random.Random(1)
print('x0,x1,y')
for _ in range(256):
    a, b = r.uniform(-1, 1), r.uniform(-1, 1)
    print('%.4f,%.4f,%d' % (a, b, (a > 0) == (b > 0)))
PY
# trains_on_2_ranks PROG LOG: an epoch under mpirun -np 2 exits 0 and the banner says 2 ranks
trains_on_2_ranks() {
    mpirun --oversubscribe -np 2 "$1" train --train "$WORK/quadrants.csv" --label-column y \
        --epochs 1 >"$2" 2>&1 || { cat "$2"; return 1; }
    cat "$2"
    grep -q "2 ranks, each taking 16 of every batch" "$2" && grep -q "^epoch 1/1" "$2"
}
installed_exe_mpi() {
    NNC_CC=${NNC_CC:-$CC} "$PREFIX/bin/nnc" "$CONSUMER/quadrants.nn" --exe --mpi -v \
        -o quadrants_mpi >exe_mpi.log 2>&1 || { cat exe_mpi.log; return 1; }
    cat exe_mpi.log
    grep -q -- "$PREFIX/bin/../lib[^ ]*/libnnr_mpi.a" exe_mpi.log &&
        trains_on_2_ranks ./quadrants_mpi train_mpi.log
}
check "the installed nnc --exe --mpi links the installed libnnr_mpi.a and trains on 2 ranks" \
    installed_exe_mpi

# a consumer project of two files: nnc_add_model(... MPI), main() calling nnr_mpi_main
mkdir -p "$WORK/mpi"
cp "$CONSUMER/quadrants.nn" "$WORK/mpi/"
cat >"$WORK/mpi/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.21)
project(ranks LANGUAGES C)
find_package(nnc 0.1 REQUIRED)
add_executable(ranks main.c)
nnc_add_model(ranks quadrants.nn MPI)
EOF
cat >"$WORK/mpi/main.c" <<'EOF'
#include "quadrants.h"
int main(int argc, char **argv) { return nnr_mpi_main(quadrants_info(), argc, argv); }
EOF
mpi_project_build() {
    cmake_c_cxx "$WORK/mpi" "$WORK/mpi/build" -DCMAKE_PREFIX_PATH="$PREFIX" &&
        grep -qx "nnc_DIR:PATH=${config%/*}" "$WORK/mpi/build/CMakeCache.txt" &&
        cmake --build "$WORK/mpi/build" -j2
}
check "a project with nnc_add_model(... MPI) builds against the prefix" mpi_project_build
check "its program, whose main() calls nnr_mpi_main, trains on 2 ranks under mpirun" \
    trains_on_2_ranks "$WORK/mpi/build/ranks" "$WORK/mpi/train.log"

# A consumer without MPI (CMAKE_DISABLE_FIND_PACKAGE_MPI: its find_package(MPI) fails)
# still finds nnc, and nnc_add_model(... MPI) says what is missing.
no_mpi_finds_nnc() {
    cmake_c_cxx "$CONSUMER" "$WORK/consumer-nompi" -DCMAKE_PREFIX_PATH="$PREFIX" \
        -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON >nompi.log 2>&1 || { cat nompi.log; return 1; }
}
check "without MPI, examples/consumer still finds nnc" no_mpi_finds_nnc
no_mpi_refused() {
    cmake_c_cxx "$WORK/mpi" "$WORK/mpi/nompi" -DCMAKE_PREFIX_PATH="$PREFIX" \
        -DCMAKE_DISABLE_FIND_PACKAGE_MPI=ON >nompi_mpi.log 2>&1
    local rc=$?
    cat nompi_mpi.log
    # cmake wraps the message: read it as one line
    [ $rc -ne 0 ] && tr -s ' \n' '  ' <nompi_mpi.log |
        grep -q "nnc::nnr_mpi is not defined: find_package(MPI COMPONENTS C) found no MPI (Debian: apt-get install libopenmpi-dev openmpi-bin)"
}
check "without MPI, nnc_add_model(... MPI) stops cmake, naming what to install" no_mpi_refused
finish
