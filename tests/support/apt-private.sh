# Sourced by the scripts that fetch from Debian's archive with package lists
# of their own (a suite or source packages the machine's sources do not
# name), leaving the system's lists untouched.

# The Debian archive the machine's own sources name.
debian_uri() {
    u=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
    [ -n "$u" ] || u=$(sed -n 's/^deb \(http[^ ]*debian\)\/* .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n1)
    echo "${u:-http://deb.debian.org/debian}"
}

# apt_private STATE ARGS...: apt-get ARGS with STATE/sources.list as the
# only sources and STATE/lists as the package lists.
apt_private() {
    st=$1
    shift
    apt-get -o Dir::Etc::sourcelist="$st/sources.list" -o Dir::Etc::sourceparts=- \
        -o Dir::State::Lists="$st/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= "$@"
}
