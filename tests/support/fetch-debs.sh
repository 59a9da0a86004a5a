#!/bin/sh
# Download Debian packages (no install) and unpack each one.
# Usage: tests/support/fetch-debs.sh DEST PKG...
#   .debs are cached in target/debs/; PKG is unpacked into DEST/PKG/.
# Needs apt-get (lists are refreshed once if a download fails) and dpkg.
set -eu
dest=${1:?usage: $0 DEST PKG...}
shift
here=$(cd "$(dirname "$0")/../.." && pwd)
cache="$here/target/debs"
mkdir -p "$cache" "$dest"
for pkg in "$@"; do
    if ! ls "$cache/${pkg}"_*.deb >/dev/null 2>&1; then
        ( cd "$cache" && { apt-get download "$pkg" 2>/dev/null || { apt-get update -qq && apt-get download "$pkg"; }; } )
    fi
    if [ ! -d "$dest/$pkg" ]; then
        rm -rf "$dest/$pkg.tmp"
        dpkg -x "$(ls "$cache/${pkg}"_*.deb | head -n1)" "$dest/$pkg.tmp"
        mv "$dest/$pkg.tmp" "$dest/$pkg"
    fi
done
