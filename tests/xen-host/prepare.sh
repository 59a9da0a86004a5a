#!/bin/sh
# Make what the Xen host tests share before they start, side by side: the
# patched QEMU (qemu/build.sh) and the hosts (build.sh). Each is a no-op
# when its stamp is current, and the tests run the same scripts and find
# them done. Left to the tests, a fresh clone made them one after another,
# each inside the first test that needed it while that test held its test
# threads (the first, xen_timers, holds all of them): about 5 minutes with
# one core idle for much of it. `make test` runs this while the test
# binaries compile.
#
# Usage: tests/xen-host/prepare.sh [VERSION...]   (4.17 and 4.20 if none)
# With HVMLITE_XEN_QEMU set, the tests use that QEMU and none is built.
# Each job's output goes to target/xen-prepare/NAME.log; one line a job on
# success, the log's tail on failure (and exit 1).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
logs="$root/target/xen-prepare"
mkdir -p "$logs"
[ $# -gt 0 ] || set -- 4.17 4.20

# QEMU's build tools first, alone: apt-get update rewrites the system's
# package lists, which the 4.17 host's downloads read.
[ -n "${HVMLITE_XEN_QEMU:-}" ] || sh "$here/qemu/tools.sh"

job() {
    name=$1
    shift
    (
        t0=$(date +%s)
        if "$@" >"$logs/$name.log" 2>&1; then
            echo "xen-prepare: $name ready in $(($(date +%s) - t0)) s"
        else
            tail -n 30 "$logs/$name.log" >&2
            echo "xen-prepare: $name FAILED (its whole log: target/xen-prepare/$name.log)" >&2
            exit 1
        fi
    ) &
    pids="$pids $!"
}

pids=
[ -n "${HVMLITE_XEN_QEMU:-}" ] || job qemu sh "$here/qemu/build.sh" "$root/target/xen-qemu"
for v in "$@"; do
    case "$v" in
    4.17) job host-4.17 env XEN_HOST=4.17 sh "$here/build.sh" "$root/target/xen-host" ;;
    4.20) job host-4.20 env XEN_HOST=4.20 sh "$here/build.sh" "$root/target/xen-host-4.20" ;;
    *)
        echo "prepare.sh: $v: 4.17 or 4.20" >&2
        exit 1
        ;;
    esac
done
rc=0
for p in $pids; do
    wait "$p" || rc=1
done
exit $rc
