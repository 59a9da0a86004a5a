# Helpers for scenario scripts: `. /usr/share/xen-host/lib.sh`.

# xl_state NAME: the State column of `xl list NAME` (e.g. "-b----"), or
# nothing when there is no such domain.
xl_state() {
    xl list "$1" 2>/dev/null | awk 'NR == 2 { print $5 }'
}

# until_released SECONDS CMD...: run CMD until it succeeds, again each
# time xenstored fires @releaseDomain (a domain shut down, crashed or
# died) and at least every 3 s; 1 if it has not succeeded after SECONDS.
# It sleeps on the watch instead of polling: the host has one CPU, and
# each `xl` run takes about 0.15 s of it from the domain under test
# (polling every 0.1 s made a Linux disk boot take 48 s instead of 27).
# The watch is set before CMD first runs (its first event says so), so a
# release between CMD and the sleep still wakes it.
until_released() {
    _end=$(( $(date +%s) + $1 ))
    shift
    # A directory of its own: two waits at once (in background jobs,
    # which share $$) must not share the FIFO.
    _d=$(mktemp -d /tmp/until_released.XXXXXX) || return 1
    mkfifo "$_d/w" || { rm -rf "$_d"; return 1; }
    xenstore-watch @releaseDomain >"$_d/w" 2>/dev/null &
    _w=$!
    exec 9<"$_d/w"
    rm -rf "$_d"
    read -t 2 _ <&9
    _rc=1
    while :; do
        if "$@"; then _rc=0; break; fi
        [ "$(date +%s)" -lt $_end ] || break
        # Woken by an event; otherwise (2 s passed, or the watch has gone
        # and EOF comes at once) a second more, so it can never spin.
        read -t 2 _ <&9 || sleep 1
    done
    kill $_w 2>/dev/null
    wait $_w 2>/dev/null
    exec 9<&-
    return $_rc
}

# domain_gone NAME: NAME is not in `xl list`. domain_in_state NAME
# LETTER: its State column holds LETTER.
domain_gone() { ! xl domid "$1" >/dev/null 2>&1; }
domain_in_state() { case "$(xl_state "$1")" in *"$2"*) return 0 ;; esac; return 1; }

# wait_gone NAME [SECONDS]: wait until domain NAME has left `xl list`.
wait_gone() {
    until_released ${2:-30} domain_gone "$1" && return 0
    echo "wait_gone: $1 still there after ${2:-30}s"
    return 1
}

# wait_state NAME LETTER [SECONDS]: wait until the State column of NAME
# holds LETTER (r running, b blocked, p paused, s shutdown, c crashed,
# d dying).
wait_state() {
    until_released ${3:-30} domain_in_state "$1" "$2" && return 0
    echo "wait_state: $1 not '$2' after ${3:-30}s: $(xl_state "$1")"
    return 1
}

# disk_backend: load the block backend (loop devices and blkback), once.
disk_backend() {
    [ -d /sys/module/xen_blkback ] && return 0
    insmod /usr/lib/modules/loop.ko max_loop=8 || return 1
    insmod /usr/lib/modules/xen-blkback.ko || return 1
}

# attach IMAGE: a loop device for IMAGE (printed), for a disk spec's
# target=; the spec names script=block-sh. (busybox losetup: -f alone
# prints the next free device.)
attach() {
    _d=$(losetup -f) || return 1
    losetup "$_d" "$1" || return 1
    echo "$_d"
}

# net_backend [ADDR/PREFIX]: load the network backend (bridge and netback),
# once, and make bridge xenbr0 with dom0's address on it (default
# 192.168.77.1/24). A vif spec names script=vif-sh and bridge=xenbr0.
net_backend() {
    if [ ! -d /sys/module/xen_netback ]; then
        for m in llc stp bridge xen-netback; do
            insmod /usr/lib/modules/$m.ko || return 1
        done
    fi
    [ -d /sys/class/net/xenbr0 ] && return 0
    ip link set lo up
    brctl addbr xenbr0 || return 1
    brctl setfd xenbr0 0 2>/dev/null
    ip addr add "${1:-192.168.77.1/24}" dev xenbr0 || return 1
    ip link set xenbr0 up
}
