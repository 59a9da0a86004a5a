//! The errors a request can fail with, sent back as their names in an
//! `XS_ERROR` reply.

/// A request's failure. The names on the wire are `xs_wire.h`'s list, the
/// only ones clients know (Linux's xenbus turns any other name into
/// EINVAL): [`Errno::EQUOTA`], the server's own "a quota was hit", goes
/// out as `ENOSPC`.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    EINVAL,
    EACCES,
    EEXIST,
    EISDIR,
    ENOENT,
    ENOMEM,
    ENOSPC,
    EIO,
    ENOTEMPTY,
    ENOSYS,
    EROFS,
    EBUSY,
    EAGAIN,
    EISCONN,
    E2BIG,
    EPERM,
    /// A per-domain quota was hit; sent as `ENOSPC`.
    EQUOTA,
}

impl Errno {
    /// The name as sent in `XS_ERROR` (without its NUL).
    pub fn name(self) -> &'static str {
        match self {
            Errno::EINVAL => "EINVAL",
            Errno::EACCES => "EACCES",
            Errno::EEXIST => "EEXIST",
            Errno::EISDIR => "EISDIR",
            Errno::ENOENT => "ENOENT",
            Errno::ENOMEM => "ENOMEM",
            Errno::ENOSPC | Errno::EQUOTA => "ENOSPC",
            Errno::EIO => "EIO",
            Errno::ENOTEMPTY => "ENOTEMPTY",
            Errno::ENOSYS => "ENOSYS",
            Errno::EROFS => "EROFS",
            Errno::EBUSY => "EBUSY",
            Errno::EAGAIN => "EAGAIN",
            Errno::EISCONN => "EISCONN",
            Errno::E2BIG => "E2BIG",
            Errno::EPERM => "EPERM",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Errno;

    #[test]
    fn names_are_xs_wire_names_and_quota_is_enospc() {
        assert_eq!(Errno::ENOENT.name(), "ENOENT");
        assert_eq!(Errno::E2BIG.name(), "E2BIG");
        assert_eq!(Errno::EQUOTA.name(), "ENOSPC");
    }
}
