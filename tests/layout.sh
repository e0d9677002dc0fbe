#!/bin/sh
# The source tree keeps the shape the README's "Layout" describes: one file, one concern.
#
#   - no source file of grammar/, dsl/, codegen/, runtime/ or driver/ passes 900 lines
#     (past that it holds two things: split it);
#   - each opens with a comment naming itself, `/* name.c — what it owns`;
#   - the project's headers include each other without a circle.
#
# usage: tests/layout.sh [ROOT]      (default: the repository holding this script)
# Prints `PASS|FAIL what` per check and ends with `N passed, M failed`.
set -eu
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"
. "$root/tests/lib.sh"
limit=900
files=$(ls grammar/*.y grammar/*.l dsl/*.[ch] codegen/*.[ch] runtime/*.[ch] driver/*.c)

long=$(for f in $files; do n=$(wc -l <"$f"); [ "$n" -le $limit ] || echo "$f ($n lines)"; done)
if [ -z "$long" ]; then pass "every source file within $limit lines"; else fail "files over $limit lines: $long"; fi

unnamed=$(for f in $files; do head -n 1 "$f" | grep -q "^/\* $(basename "$f") — " || echo "$f"; done)
if [ -z "$unnamed" ]; then pass "every source file opens with '/* its name — what it owns'"
else fail "files without an opening comment naming them: $unnamed"; fi

# Edges "a.h b.h" for every #include "b.h" in a header a.h; then a depth-first search
# for a header reached again while it is on the path.
edges=$(for f in $files; do
    case $f in *.h) ;; *) continue ;; esac
    sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f" | while read -r inc; do echo "$(basename "$f") $inc"; done
done)
cycle=$(printf '%s\n' "$edges" | awk '
    NF == 2 { out[$1] = out[$1] " " $2; node[$1] = 1; node[$2] = 1 }
    function visit(n, path,   k, m, list) {
        if (state[n] == 1) { found = path " " n; return }
        if (state[n] == 2 || found) return
        state[n] = 1
        m = split(out[n], list, " ")
        for (k = 1; k <= m; k++) visit(list[k], path " " n)
        state[n] = 2
    }
    END { for (n in node) if (!state[n]) visit(n, ""); print found }')
if [ -z "$cycle" ]; then pass "the headers include each other without a circle"
else fail "an include circle:$cycle"; fi
finish
