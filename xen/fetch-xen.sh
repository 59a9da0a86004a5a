#!/bin/sh
# Fetch Debian's Xen 4.17 hypervisor and unpack it as a multiboot ELF that
# QEMU can boot with -kernel. Usage: xen/fetch-xen.sh DIR  (writes DIR/xen.bin)
# Needs only apt-get (run as root on Debian); nothing is installed.
set -eu
dir=${1:?usage: $0 DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
pkg=xen-hypervisor-4.17-amd64
"$here/tests/support/fetch-debs.sh" "$dir/unpacked" "$pkg"
zcat "$dir/unpacked/$pkg/boot/xen-4.17-amd64.gz" > "$dir/xen.bin.tmp"
mv "$dir/xen.bin.tmp" "$dir/xen.bin"
echo "$dir/xen.bin"
