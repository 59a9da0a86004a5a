#!/bin/sh
# Download Debian packages (no install) and unpack each one.
# Usage: tests/support/fetch-debs.sh DEST PKG...
#   .debs are cached in target/debs/; PKG is unpacked into DEST/PKG/.
#   With SUITE=NAME (e.g. trixie) in the environment, from that suite of
#   the archive the machine's own sources name, through package lists kept
#   in target/apt-NAME/ (the system's lists are not touched), cached in
#   target/debs-NAME/.
# Needs apt-get (lists are refreshed once if a download fails) and dpkg.
set -eu
dest=${1:?usage: $0 DEST PKG...}
shift
here=$(cd "$(dirname "$0")/../.." && pwd)
cache="$here/target/debs"
apt() { apt-get "$@"; }
[ -z "${SUITE:-}" ] || cache="$here/target/debs-$SUITE"
mkdir -p "$cache"
# One fetch at a time per cache: tests run side by side in processes of
# their own, and two of them may want the same package.
if command -v flock >/dev/null; then
    exec 9>"$cache/.lock"
    flock 9
fi
if [ -n "${SUITE:-}" ]; then
    state="$here/target/apt-$SUITE"
    mkdir -p "$state/lists/partial"
    . "$here/tests/support/apt-private.sh"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_uri) $SUITE main" > "$state/sources.list"
    apt() { apt_private "$state" "$@"; }
    [ -n "$(ls "$state/lists" 2>/dev/null | grep -v partial)" ] || apt update -qq
fi
mkdir -p "$cache" "$dest"
for pkg in "$@"; do
    if ! ls "$cache/${pkg}"_*.deb >/dev/null 2>&1; then
        ( cd "$cache" && { apt download "$pkg" 2>/dev/null || { apt update -qq && apt download "$pkg"; }; } )
    fi
    if [ ! -d "$dest/$pkg" ]; then
        rm -rf "$dest/$pkg.tmp"
        dpkg -x "$(ls "$cache/${pkg}"_*.deb | head -n1)" "$dest/$pkg.tmp"
        mv "$dest/$pkg.tmp" "$dest/$pkg"
    fi
done
