#!/bin/sh
# Install what build.sh needs to build QEMU, where missing (apt-get, root).
# Its own script so that tests/xen-host/prepare.sh can run it alone before
# anything else reads the system's package lists: apt-get update rewrites
# them under its lock.
set -eu
missing=
command -v meson >/dev/null || missing="$missing meson"
command -v ninja >/dev/null || missing="$missing ninja-build"
command -v dpkg-source >/dev/null || missing="$missing dpkg-dev"
command -v patch >/dev/null || missing="$missing patch"
command -v pkg-config >/dev/null || missing="$missing pkg-config"
pkg-config --exists glib-2.0 2>/dev/null || missing="$missing libglib2.0-dev"
pkg-config --exists pixman-1 2>/dev/null || missing="$missing libpixman-1-dev"
[ -e /usr/include/libfdt.h ] || missing="$missing libfdt-dev"
if [ -n "$missing" ]; then
    echo "qemu/tools.sh: installing$missing" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
