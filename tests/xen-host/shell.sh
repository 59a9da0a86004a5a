#!/bin/sh
# Boot the Xen host with a dom0 shell on this terminal, with hvmlite.elf at
# /usr/lib/hvmlite/hvmlite.elf and xen/hvmlite-pvh.cfg at
# /etc/xen/hvmlite-pvh.cfg:  xl create /etc/xen/hvmlite-pvh.cfg
# `exit` powers the host off; Ctrl-a x quits QEMU.
# Usage: tests/xen-host/shell.sh [HVMLITE_ELF]   (`make xen-host-shell`)
#   XEN_HOST=4.17 (the default) or 4.20 picks the host, as for build.sh
#   (`make xen-host-shell XEN_HOST=4.20`: Debian 13's Xen 4.20, Linux 6.12).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
elf=$(cd "$(dirname "${1:-$root/hvmlite.elf}")" && pwd)/$(basename "${1:-$root/hvmlite.elf}")
case ${XEN_HOST:-4.17} in
4.17) out="$root/target/xen-host" ;;
4.20) out="$root/target/xen-host-4.20" ;;
*) echo "shell.sh: XEN_HOST=$XEN_HOST: 4.17 or 4.20" >&2; exit 2 ;;
esac
XEN_HOST=${XEN_HOST:-4.17} sh "$root/tests/xen-host/build.sh" "$out"
# The tests' QEMU (Debian's with the fixes in tests/xen-host/qemu/).
sh "$root/tests/xen-host/qemu/build.sh" "$root/target/xen-qemu"
s="$root/target/test-scratch/xen-host-shell"
rm -rf "$s"
mkdir -p "$s/root/usr/lib/hvmlite" "$s/root/etc/xen"
cp "$elf" "$s/root/usr/lib/hvmlite/hvmlite.elf"
cp "$root/xen/hvmlite-pvh.cfg" "$s/root/etc/xen/hvmlite-pvh.cfg"
cp "$out/initramfs.gz" "$s/initramfs"
( cd "$s/root" && find usr etc | "$out/busybox" cpio -o -H newc -R 0:0 2>/dev/null ) >> "$s/initramfs"
exec "$root/target/xen-qemu/qemu-system-x86_64" -accel tcg -M q35 -cpu qemu64,+npt -m 1024 -smp 1 -nographic -nodefaults \
    -no-reboot -serial mon:stdio -kernel "$out/xen.bin" \
    -append "console=com1 loglvl=all guest_loglvl=all noreboot bootscrub=0 dom0_mem=384M,max:384M dom0_max_vcpus=1" \
    -initrd "$out/vmlinux console=hvc0 earlyprintk=xen rdinit=/init quiet xenhost.shell,$s/initramfs"
