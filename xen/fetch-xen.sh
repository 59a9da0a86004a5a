#!/bin/sh
# Fetch Debian's Xen hypervisor and unpack it as a multiboot ELF that QEMU
# can boot with -kernel. Usage: xen/fetch-xen.sh DIR  (writes DIR/xen.bin)
#   XEN_HOST=4.17 (the default): Debian 12's xen-hypervisor-4.17-amd64;
#   XEN_HOST=4.20: Debian 13's xen-hypervisor-4.20-amd64 (the trixie suite,
#                  through tests/support/fetch-debs.sh's own package lists).
# Needs only apt-get (run as root on Debian); nothing is installed.
set -eu
dir=${1:?usage: $0 DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
xv=${XEN_HOST:-4.17}
case $xv in
4.17) unset SUITE ;;
4.20) SUITE=trixie; export SUITE ;;
*) echo "fetch-xen.sh: XEN_HOST=$xv: 4.17 or 4.20" >&2; exit 2 ;;
esac
pkg=xen-hypervisor-$xv-amd64
"$here/tests/support/fetch-debs.sh" "$dir/unpacked" "$pkg"
zcat "$dir/unpacked/$pkg/boot/xen-$xv-amd64.gz" > "$dir/xen.bin.$$"
mv "$dir/xen.bin.$$" "$dir/xen.bin"
echo "$dir/xen.bin"
