# lib.sh — the bookkeeping the shell test scripts share: PASS/FAIL lines, the counts, and
# the closing `N passed, M failed` line that ctest and CI read.  Sourced; a script sets
# WORK (where check keeps the last command's output) before calling check.
passed=0 failed=0
last_status=0

# The output of a failed check, indented; a script may redefine it (valgrind.sh does).
show_failure() { sed 's/^/    /' "$1" | tail -15; }

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1"; [ -n "${2:-}" ] && show_failure "$2"; failed=$((failed + 1)); }

# check NAME COMMAND...: passes when COMMAND succeeds
check() {
    local name=$1
    shift
    if "$@" >"$WORK/last.log" 2>&1; then
        pass "$name"
    else
        last_status=$?
        fail "$name" "$WORK/last.log"
    fi
}

finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
