#!/bin/sh
# Fetch Debian's Xen 4.17 hypervisor and unpack it as a multiboot ELF that
# QEMU can boot with -kernel. Usage: xen/fetch-xen.sh DIR  (writes DIR/xen.bin)
# Needs only apt-get (run as root on Debian); nothing is installed.
set -eu
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
cd "$dir"
pkg=xen-hypervisor-4.17-amd64
if ! ls ${pkg}_*.deb >/dev/null 2>&1; then
    # apt-get download needs package lists; refresh them once if it fails.
    apt-get download "$pkg" 2>/dev/null || { apt-get update -qq && apt-get download "$pkg"; }
fi
rm -rf unpacked && mkdir unpacked
dpkg -x ${pkg}_*.deb unpacked
zcat unpacked/boot/xen-4.17-amd64.gz > xen.bin.tmp
mv xen.bin.tmp xen.bin
echo "$dir/xen.bin"
