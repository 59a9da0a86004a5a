#!/bin/sh
# Build the QEMU that runs the Xen test hosts: Debian's own QEMU source
# (the version this machine's suite ships, with Debian's patches), plus the
# fixes in this folder (*.patch, applied in name order), for x86_64 with TCG
# only. Debian's qemu-system-x86 stays what the plain PVH tests use.
#
# Why: QEMU's TCG emulation of AMD SVM, which Xen runs its HVM and PVH
# guests on, delivers an injected interrupt twice now and then (see
# svm-vmrun-intr-exception-index.patch and docs/lifecycle.md); Linux guests
# on the test hosts died of it about once in a hundred boots. And it could
# lose the local APIC timer's interrupt request, leaving Xen halted for good
# (svm-vmrun-virq-under-bql.patch; docs/testing.md).
#
# Usage: tests/xen-host/qemu/build.sh OUTDIR
# Writes OUTDIR/qemu-system-x86_64 (firmware from Debian's qemu-system-data
# and seabios under /usr/share) and OUTDIR/stamp (hash of the source
# package and the patches; with it equal, nothing is rebuilt). The source
# package is cached in target/debs-src/.
# Needs apt-get and root (tools.sh installs the build tools when missing:
# meson, ninja, glib, pixman, libfdt headers, dpkg-dev); about 3 minutes
# on 2 cores.
set -eu
out=${1:?usage: $0 OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
if command -v flock >/dev/null; then
    exec 9>"$out/.lock"
    flock 9
fi

# The source package, through package lists of our own (the machine's
# sources name binary packages only), cached like the .debs.
cache="$root/target/debs-src"
state="$root/target/apt-src"
mkdir -p "$cache" "$state/lists/partial"
if ! ls "$cache"/qemu_*.dsc >/dev/null 2>&1; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:?}")
    . "$root/tests/support/apt-private.sh"
    uri=$(debian_uri)
    printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' \
        "$uri" "$codename" "$uri" "$codename-updates" > "$state/sources.list"
    apt() { apt_private "$state" -o APT::Sandbox::User=root "$@"; }
    apt update -qq
    ( cd "$cache" && apt source --download-only -qq qemu >/dev/null )
fi
dsc=$(ls "$cache"/qemu_*.dsc | sort -V | tail -n1)
stamp=$( (cat "$dsc" "$here"/*.patch "$0") | sha256sum | cut -d' ' -f1)
if [ -x "$out/qemu-system-x86_64" ] && [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ]; then
    exit 0
fi

# Build tools, installed once (as the other deps-* are).
sh "$here/tools.sh"

t0=$(date +%s)
src="$out/src"
rm -rf "$src" "$out/qemu-system-x86_64" "$out/stamp"
# Debian's patch series (the upstream stable releases among them) applies
# on extraction.
dpkg-source --no-check -x "$dsc" "$src" >/dev/null
for p in "$here"/*.patch; do
    patch -d "$src" -p1 -s < "$p"
done
mkdir "$src/build"
# Firmware (SeaBIOS, option ROMs) from Debian's packages. The prefix is
# never installed to: QEMU rewrites paths under its prefix relative to
# where the binary lies, so it must not be /usr.
( cd "$src/build" &&
    ../configure --prefix=/opt/hvmlite-xen-qemu --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu \
        --target-list=x86_64-softmmu --without-default-features --enable-fdt=system \
        --disable-docs --disable-tools --disable-werror >"$out/configure.log" 2>&1 ) ||
    { tail -n 20 "$out/configure.log" >&2; echo "qemu/build.sh: configure failed" >&2; exit 1; }
ninja -C "$src/build" qemu-system-x86_64 >"$out/ninja.log" 2>&1 ||
    { tail -n 30 "$out/ninja.log" >&2; echo "qemu/build.sh: build failed" >&2; exit 1; }
cp "$src/build/qemu-system-x86_64" "$out/qemu-system-x86_64.tmp"
mv "$out/qemu-system-x86_64.tmp" "$out/qemu-system-x86_64"
rm -rf "$src" "$out"/qemu_*.orig.tar.*
echo "$stamp" > "$out/stamp"
echo "qemu/build.sh: $(basename "$dsc" .dsc) with $(ls "$here"/*.patch | wc -l) patch(es) in $(($(date +%s) - t0)) s" >&2
