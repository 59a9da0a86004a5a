# Helpers for scenario scripts: `. /usr/share/xen-host/lib.sh`.

# xl_state NAME: the State column of `xl list NAME` (e.g. "-b----"), or
# nothing when there is no such domain.
xl_state() {
    xl list "$1" 2>/dev/null | awk 'NR == 2 { print $5 }'
}

# wait_gone NAME [SECONDS]: wait until domain NAME has left `xl list`.
wait_gone() {
    _i=0
    while xl domid "$1" >/dev/null 2>&1; do
        _i=$((_i + 1))
        if [ $_i -gt $((${2:-30} * 10)) ]; then
            echo "wait_gone: $1 still there after ${2:-30}s"
            return 1
        fi
        sleep 0.1
    done
}

# wait_state NAME LETTER [SECONDS]: wait until the State column of NAME
# holds LETTER (r running, b blocked, p paused, s shutdown, c crashed,
# d dying).
wait_state() {
    _i=0
    while :; do
        case "$(xl_state "$1")" in *"$2"*) return 0 ;; esac
        _i=$((_i + 1))
        if [ $_i -gt $((${3:-30} * 10)) ]; then
            echo "wait_state: $1 not '$2' after ${3:-30}s: $(xl_state "$1")"
            return 1
        fi
        sleep 0.1
    done
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
