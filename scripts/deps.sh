#!/usr/bin/env bash
# deps.sh — installs the Debian packages nnc needs to build, test and run its examples,
# when any is missing.  As root it runs apt-get; otherwise it prints the command to run.
# Sourced by the other scripts; also runnable alone.
set -eu
# g++ and man-db are for the tests: the generated header from C++, the C++ consumer
# project (tests/portable.sh, tests/consumer.sh), and the installed man pages (man -l);
# Open MPI for data-parallel trainers (`nnc --exe --mpi`, tests/mpi.sh); the Arm cross
# compiler, newlib and qemu for the embedded target (`--target embedded`, examples/embedded,
# tests/embedded.sh)
NNC_PACKAGES="gcc make cmake pkg-config flex bison libopenblas-dev libcunit1-dev zlib1g-dev
libjansson-dev dataset-fashion-mnist wamerican python3 clang libclang-rt-dev libomp-dev valgrind
libopenmpi-dev openmpi-bin
gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
g++ man-db"
missing=""
for p in $NNC_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "deps: installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq $missing >/dev/null
    else
        echo "deps: missing Debian packages:$missing" >&2
        echo "deps: run: sudo apt-get install -y$missing" >&2
        exit 1
    fi
fi
