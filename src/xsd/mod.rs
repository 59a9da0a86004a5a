//! The xenstore daemon's core: the tree of nodes with their permissions,
//! transactions, watches and quotas, and the wire protocol of
//! `docs/misc/xenstore.txt` and `xs_wire.h`, as plain Rust that never sees
//! Xen (unit-tested on the host, fuzzed). The xenstore domain app
//! (`apps/xenstored`) moves the bytes between it and the guests' rings.
//!
//! One file an idea, bottom to top: [`errno`] (the error names sent back),
//! [`wire`] (header, types, payload fields), [`path`] (syntax,
//! canonical form), [`perms`] (ACLs and who may do what), [`quota`]
//! (limits, per-domain usage), [`tree`] (the nodes and their accounting),
//! [`txn`] (a transaction's private view), [`ops`] (the node operations on
//! either view), [`watch`] (watches and events), [`conn`] (a connection's
//! framing and queues), [`domain`] (introduce, release, domain death), [`control`] (CONTROL) and
//! [`server`] (the [`Server`] and its dispatch).
//!
//! docs/xenstored.md, "The protocol core", lists what is supported and
//! which error each refusal gives.

pub mod conn;
pub mod control;
pub mod domain;
pub mod errno;
pub mod ops;
pub mod path;
pub mod perms;
pub mod quota;
pub mod server;
pub mod tree;
pub mod txn;
pub mod watch;
pub mod wire;

#[cfg(test)]
mod tests;

pub use errno::Errno;
pub use quota::Config;
pub use server::{Host, Server};

/// A domain id; 0 is dom0, the privileged (master) connection.
pub type DomId = u16;
