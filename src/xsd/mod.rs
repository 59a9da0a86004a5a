//! The xenstore daemon's core: the tree of nodes with their permissions,
//! transactions, watches and quotas, and the wire protocol of
//! `docs/misc/xenstore.txt` and `xs_wire.h`, as plain Rust that never sees
//! Xen (unit-tested on the host, fuzzed). The xenstore domain app
//! (`apps/xenstored`) moves the bytes between it and the guests' rings.
