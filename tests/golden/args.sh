# args.sh — the command line both golden scripts take, `[--update] NNC`: sourced, it sets
# update (1 with --update, else 0) and nnc (NNC made absolute, checked executable), or
# exits 2 with the usage.
update=0
if [ "${1:-}" = "--update" ]; then
    update=1
    shift
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--update] NNC" >&2
    exit 2
fi
nnc=$1
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
if [ ! -x "$nnc" ]; then
    echo "$0: $nnc is not an executable" >&2
    exit 2
fi
