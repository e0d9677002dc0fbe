#!/bin/sh
# bench/run_cnn.sh [THREADS...]: bench/run.sh for the lectures' CNN (examples/fashion_cnn.nn
# against bench/fashion_cnn.py), 3 epochs, 1 thread unless told otherwise.
[ $# -gt 0 ] || set -- 1
MODEL=fashion_cnn exec "$(dirname "$0")/run.sh" "$@"
