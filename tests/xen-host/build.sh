#!/bin/sh
# Build a Xen host for tests: Debian's Xen 4.17 with Debian's Linux 6.1 as
# PV dom0 and the xl toolstack in an initramfs. Everything comes from
# Debian packages through tests/support/fetch-debs.sh; nothing is installed.
#
# Usage: tests/xen-host/build.sh OUTDIR
#   XEN_HOST=4.17 (the default): Debian 12 (bookworm), Xen 4.17, Linux 6.1,
#                 packages cached in target/debs/.
#   XEN_HOST=4.20: Debian 13 (trixie), Xen 4.20, Linux 6.12, packages cached
#                 in target/debs-trixie/ (fetch-debs.sh with SUITE=trixie).
# Writes, in OUTDIR:
#   xen.bin         Xen as a multiboot ELF (xen/fetch-xen.sh)
#   vmlinux         dom0 kernel: the ELF inside Debian's bzImage, so that Xen
#                   does not spend seconds decompressing xz under TCG
#   initramfs.gz    newc cpio, gzip: busybox, xl (with libxl-save-helper),
#                   xenstored, oxenstored,
#                   init-xenstore-domain, test-xenstore, xenconsoled,
#                   xen-init-dom0, xenstore-*, their libraries, the Xen
#                   modules and tests/xen-host/init as /init; padded with
#                   zeros to 512 bytes so more cpio archives can be appended
#   busybox         the static busybox (tests/xen-host/shell.sh uses its cpio)
#   stamp           hash of the inputs; with it equal, nothing is rebuilt
# Needs: apt-get, dpkg, gzip, sha256sum, od; xz or python3's lzma (else
# xz-utils is installed). cpio is the fetched busybox-static's.
set -eu
out=${1:?usage: $0 OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
xv=${XEN_HOST:-4.17}
case "$xv" in
4.17)
    unset SUITE
    debs="$root/target/debs"
    ;;
4.20)
    SUITE=trixie
    export SUITE
    debs="$root/target/debs-trixie"
    ;;
*)
    echo "build.sh: XEN_HOST=$xv: 4.17 or 4.20" >&2
    exit 1
    ;;
esac
mkdir -p "$out" "$debs"
out=$(cd "$out" && pwd)
# One build at a time per OUTDIR (parallel test binaries, two checkouts' tests).
if command -v flock >/dev/null; then
    exec 9>"$out/.lock"
    flock 9
fi

# The kernel: the package cached last time if any (stable, offline), else
# whatever Debian's linux-image-amd64 depends on now.
kpkg=$(ls "$debs" 2>/dev/null | sed -n 's/^\(linux-image-[0-9][^_]*-amd64\)_.*\.deb$/\1/p' | sort -V | tail -n1)
if [ -z "$kpkg" ]; then
    if [ "$xv" != 4.17 ]; then
        # The suite's lists are fetch-debs.sh's own: ask its metapackage.
        "$root/tests/support/fetch-debs.sh" "$out/meta" linux-image-amd64 >/dev/null
        rm -rf "$out/meta"
        kpkg=$(dpkg-deb -f "$(ls "$debs"/linux-image-amd64_*.deb | head -n1)" Depends |
            tr ',|' '\n\n' | sed -n 's/^ *\(linux-image-[0-9][^ ]*-amd64\).*/\1/p' | head -n1)
    else
        kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
        if [ -z "$kpkg" ]; then
            apt-get update -qq
            kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
        fi
    fi
    [ -n "$kpkg" ] || { echo "build.sh: cannot resolve linux-image-amd64" >&2; exit 1; }
fi

libs="libc6 libgcc-s1 liblzma5 libuuid1 zlib1g libzstd1 libyajl2
      libxenmisc$xv libxenstore4 libxencall1 libxenevtchn1
      libxenforeignmemory1 libxengnttab1 libxentoollog1 libxendevicemodel1
      libxenhypfs1 libxentoolcore1"
pkgs="xen-hypervisor-$xv-amd64 $kpkg busybox-static xen-utils-$xv xen-utils-common xenstore-utils $libs"

# Cheap check first: when every .deb is cached and the inputs hash to the
# stamp, the outputs are current.
inputs() {
    for p in $pkgs; do
        f=$(ls "$debs/${p}"_*.deb 2>/dev/null | head -n1)
        echo "${f##*/}:$p"
    done
    cat "$here/build.sh" "$here/init" "$here/lib.sh" "$here/block" "$here/vif" "$root/xen/fetch-xen.sh"
}
hash=$(inputs | sha256sum | cut -d' ' -f1)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$hash" ] &&
   [ -f "$out/xen.bin" ] && [ -f "$out/vmlinux" ] && [ -f "$out/initramfs.gz" ] && [ -f "$out/busybox" ]; then
    echo "xen-host: cached in $out"
    exit 0
fi

echo "xen-host: building in $out (kernel $kpkg)"
rm -f "$out/stamp"
work="$out/work"
rm -rf "$work"
mkdir -p "$work"
u="$work/unpacked"
"$root/tests/support/fetch-debs.sh" "$u" $pkgs
hash=$(inputs | sha256sum | cut -d' ' -f1)

# Xen.
XEN_HOST=$xv "$root/xen/fetch-xen.sh" "$work/xen" >/dev/null
mv "$work/xen/xen.bin" "$out/xen.bin"

# (busybox's unxz lacks the x86 BCJ filter Debian's kernel uses.)
if ! command -v xz >/dev/null && ! python3 -c 'import lzma' 2>/dev/null; then
    echo "installing xz-utils"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xz-utils >/dev/null
fi
unxz_() {
    if command -v xz >/dev/null; then
        xz -dc "$1"
    else
        python3 -c 'import lzma,sys; sys.stdout.buffer.write(lzma.decompress(open(sys.argv[1],"rb").read()))' "$1"
    fi
}

# dom0 kernel: the bzImage's payload is at (setup_sects+1)*512 + payload_offset
# (0x248), payload_length (0x24c) long, ending in 4 bytes of uncompressed size.
bz=$(ls "$u/$kpkg"/boot/vmlinuz-*)
le32() { od -An -t u4 -j "$2" -N 4 "$1" | tr -d ' '; }
setup_sects=$(od -An -t u1 -j $((0x1f1)) -N 1 "$bz" | tr -d ' ')
poff=$(le32 "$bz" $((0x248)))
plen=$(le32 "$bz" $((0x24c)))
start=$(( (setup_sects + 1) * 512 + poff ))
magic=$(od -An -t x1 -j "$start" -N 6 "$bz" | tr -d ' ')
case "$magic" in
fd377a585a00)
    tail -c +$((start + 1)) "$bz" | head -c $((plen - 4)) > "$work/vmlinux.xz"
    unxz_ "$work/vmlinux.xz" > "$work/vmlinux"
    ;;
28b52ffd*)
    # Debian 13's kernel: zstd.
    if ! command -v zstd >/dev/null; then
        echo "installing zstd"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zstd >/dev/null
    fi
    tail -c +$((start + 1)) "$bz" | head -c $((plen - 4)) > "$work/vmlinux.zst"
    zstd -q -d -c "$work/vmlinux.zst" > "$work/vmlinux"
    ;;
*)
    echo "build.sh: $bz: payload is neither xz nor zstd ($magic)" >&2
    exit 1
    ;;
esac
[ "$(od -An -c -N 4 "$work/vmlinux" | tr -d ' ')" = '177ELF' ] || { echo "build.sh: vmlinux is not an ELF" >&2; exit 1; }
mv "$work/vmlinux" "$out/vmlinux"

# The initramfs, merged-/usr layout.
r="$work/root"
mkdir -p "$r/usr/bin" "$r/usr/sbin" "$r/usr/lib/x86_64-linux-gnu" "$r/usr/lib64" \
    "$r/usr/lib/xen-$xv/bin" "$r/usr/lib/modules" "$r/usr/share/xen-host" "$r/etc/xen" \
    "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/run" "$r/root" "$r/scenario" \
    "$r/var/lib/xen" "$r/var/lib/xenstored" "$r/var/log/xen" "$r/var/lock" "$r/etc/xen/scripts"
ln -s usr/bin "$r/bin"
ln -s usr/sbin "$r/sbin"
ln -s usr/lib "$r/lib"
ln -s usr/lib64 "$r/lib64"
ln -s ../run "$r/var/run"

bb="$u/busybox-static/bin/busybox"
[ -f "$bb" ] || bb="$u/busybox-static/usr/bin/busybox"
cp "$bb" "$r/usr/bin/busybox"
for a in $("$bb" --list); do
    [ "$a" = busybox ] || ln -s busybox "$r/usr/bin/$a"
done

# Shared libraries (not gconv, not python modules), wherever each package
# keeps them, all into /usr/lib/x86_64-linux-gnu; symlinks kept.
for p in $libs; do
    for d in "$u/$p/lib/x86_64-linux-gnu" "$u/$p/usr/lib/x86_64-linux-gnu"; do
        [ -d "$d" ] || continue
        find "$d" -maxdepth 1 -name '*.so*' \( -type f -o -type l \) -exec cp -P {} "$r/usr/lib/x86_64-linux-gnu/" \;
    done
done
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$r/usr/lib64/ld-linux-x86-64.so.2"

x="$u/xen-utils-$xv/usr/lib/xen-$xv/bin"
# The xenstore choices of tests/xen-host/init: the C daemon, the OCaml one
# (with its config from xen-utils-common), or a xenstore domain built by
# init-xenstore-domain; test-xenstore exercises whichever serves.
# libxl-save-helper: what `xl save`, `restore` and `migrate` exec to move
# a domain's memory (without it every save fails).
for b in xl xenstored xenconsoled xen-init-dom0 xenconsole xenstore-control \
         oxenstored init-xenstore-domain test-xenstore libxl-save-helper; do
    cp "$x/$b" "$r/usr/lib/xen-$xv/bin/$b"
    ln -s ../lib/xen-$xv/bin/$b "$r/usr/sbin/$b"
done
# oxenstored from Xen 4.19 on loads its xenctrl glue as an OCaml plugin.
if [ -d "$u/xen-utils-$xv/usr/lib/xen-$xv/ocaml" ]; then
    cp -R "$u/xen-utils-$xv/usr/lib/xen-$xv/ocaml" "$r/usr/lib/xen-$xv/ocaml"
fi
cp "$u/xenstore-utils/usr/bin/xenstore" "$r/usr/bin/xenstore"
for t in read write exists rm list ls watch chmod; do
    ln -sf xenstore "$r/usr/bin/xenstore-$t"
done
cp "$u/xen-utils-common/etc/xen/xl.conf" "$r/etc/xen/xl.conf"
cp "$u/xen-utils-common/etc/xen/oxenstored.conf" "$r/etc/xen/oxenstored.conf"

# Xen modules; modules.dep is not in the .deb: /init loads them in order.
# (Debian 13 keeps them in /usr/lib/modules, xz-compressed: they go in
# uncompressed, for busybox's insmod.)
k=$(ls -d "$u/$kpkg"/lib/modules/* "$u/$kpkg"/usr/lib/modules/* 2>/dev/null | head -n1)/kernel
kmod() {
    for f in "$@"; do
        if [ -f "$k/$f" ]; then
            cp "$k/$f" "$r/usr/lib/modules/"
        else
            unxz_ "$k/$f.xz" > "$r/usr/lib/modules/${f##*/}"
        fi
    done
}
m=drivers/xen
kmod $m/xen-evtchn.ko $m/xen-privcmd.ko $m/xen-gntdev.ko $m/xen-gntalloc.ko $m/xenfs/xenfs.ko
# The block backend, loaded by scenarios that give a domain a disk
# (lib.sh: disk_backend): a loop device and blkback, with a /bin/sh
# hotplug script in place of Debian's bash one.
kmod drivers/block/loop.ko drivers/block/xen-blkback/xen-blkback.ko
cp "$here/block" "$r/etc/xen/scripts/block-sh"
chmod 755 "$r/etc/xen/scripts/block-sh"
# The network backend (lib.sh: net_backend): a bridge and netback, loaded
# in dependency order (llc, stp, bridge), with a /bin/sh vif script in
# place of Debian's bash vif-bridge.
kmod net/llc/llc.ko net/802/stp.ko net/bridge/bridge.ko \
    drivers/net/xen-netback/xen-netback.ko
cp "$here/vif" "$r/etc/xen/scripts/vif-sh"
chmod 755 "$r/etc/xen/scripts/vif-sh"

cp "$here/init" "$r/init"
chmod 755 "$r/init"
cp "$here/lib.sh" "$r/usr/share/xen-host/lib.sh"
echo "root:x:0:0:root:/root:/bin/sh" > "$r/etc/passwd"
echo "root:x:0:" > "$r/etc/group"

( cd "$r" && find . | sed 's|^\./||' | grep -v '^\.$' | sort | "$bb" cpio -o -H newc -R 0:0 2>/dev/null ) | gzip -6 > "$work/initramfs.gz"
# Pad to 512 bytes: an appended cpio must start 4-byte aligned, and zeros
# between archives are skipped by the kernel.
size=$(stat -c %s "$work/initramfs.gz")
pad=$(( (512 - size % 512) % 512 ))
[ "$pad" -eq 0 ] || head -c "$pad" /dev/zero >> "$work/initramfs.gz"
mv "$work/initramfs.gz" "$out/initramfs.gz"

# The static busybox, for shell.sh's cpio on hosts without one.
cp "$bb" "$out/busybox"

rm -rf "$work"
echo "$hash" > "$out/stamp"
echo "xen-host: built $(du -h "$out/vmlinux" | cut -f1) vmlinux, $(du -h "$out/initramfs.gz" | cut -f1) initramfs"
