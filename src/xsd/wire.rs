//! The wire format of `xs_wire.h`: a 16-byte little-endian header
//! (`type`, `req_id`, `tx_id`, `len`) and at most 4096 bytes of payload,
//! mostly NUL-terminated strings.

use alloc::vec::Vec;

use super::Errno;

/// Bytes in a header.
pub const HEADER: usize = 16;
/// `XENSTORE_PAYLOAD_MAX`: the longest payload either way. A longer one
/// from a client is a protocol violation (its connection is dropped).
pub const PAYLOAD_MAX: usize = 4096;

/// The message types of `xs_wire.h` this server knows by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Type {
    Control = 0,
    Directory = 1,
    Read = 2,
    GetPerms = 3,
    Watch = 4,
    Unwatch = 5,
    TransactionStart = 6,
    TransactionEnd = 7,
    Introduce = 8,
    Release = 9,
    GetDomainPath = 10,
    Write = 11,
    Mkdir = 12,
    Rm = 13,
    SetPerms = 14,
    WatchEvent = 15,
    Error = 16,
    IsDomainIntroduced = 17,
    Resume = 18,
    SetTarget = 19,
    ResetWatches = 21,
    DirectoryPart = 22,
}

impl Type {
    /// The type numbered `n`, or None for one this server does not
    /// implement (20, the removed RESTRICT; 23–26, the optional feature
    /// and quota types; anything larger): those get ENOSYS, as
    /// xenstore.txt says of unsupported types.
    pub fn from_u32(n: u32) -> Option<Type> {
        use Type::*;
        const ALL: [Type; 22] = [
            Control,
            Directory,
            Read,
            GetPerms,
            Watch,
            Unwatch,
            TransactionStart,
            TransactionEnd,
            Introduce,
            Release,
            GetDomainPath,
            Write,
            Mkdir,
            Rm,
            SetPerms,
            WatchEvent,
            Error,
            IsDomainIntroduced,
            Resume,
            SetTarget,
            ResetWatches,
            DirectoryPart,
        ];
        ALL.iter().copied().find(|t| *t as u32 == n)
    }
}

/// A message header, as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ty: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub len: u32,
}

impl Header {
    /// The header at the start of `b` (at least [`HEADER`] bytes).
    pub fn parse(b: &[u8]) -> Header {
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Header { ty: word(0), req_id: word(4), tx_id: word(8), len: word(12) }
    }
}

/// One whole message: header and payload (`body.len() <= PAYLOAD_MAX`).
pub fn message(ty: u32, req_id: u32, tx_id: u32, body: &[u8]) -> Vec<u8> {
    debug_assert!(body.len() <= PAYLOAD_MAX);
    let mut m = Vec::with_capacity(HEADER + body.len());
    for w in [ty, req_id, tx_id, body.len() as u32] {
        m.extend_from_slice(&w.to_le_bytes());
    }
    m.extend_from_slice(body);
    m
}

/// The payload of an `XS_ERROR` reply: the name and its NUL.
pub fn error_body(e: Errno) -> Vec<u8> {
    let mut b = Vec::from(e.name().as_bytes());
    b.push(0);
    b
}

/// The fields of a request's payload, taken front to back.
pub struct Args<'a> {
    rest: &'a [u8],
}

impl<'a> Args<'a> {
    pub fn new(body: &'a [u8]) -> Self {
        Args { rest: body }
    }

    /// The next NUL-terminated string (without its NUL); EINVAL when
    /// there is no NUL: a missing terminator is a malformed request.
    pub fn string(&mut self) -> Result<&'a [u8], Errno> {
        let end = self.rest.iter().position(|&b| b == 0).ok_or(Errno::EINVAL)?;
        let s = &self.rest[..end];
        self.rest = &self.rest[end + 1..];
        Ok(s)
    }

    /// The next string as UTF-8 (paths, numbers, tokens are ASCII).
    pub fn text(&mut self) -> Result<&'a str, Errno> {
        core::str::from_utf8(self.string()?).map_err(|_| Errno::EINVAL)
    }

    /// The last field, whose NUL is optional (DIRECTORY_PART's offset is
    /// written `<path>|<offset>` in xenstore.txt; libxenstore sends one).
    pub fn last_text(&mut self) -> Result<&'a str, Errno> {
        let s = match self.rest.iter().position(|&b| b == 0) {
            Some(end) => &self.rest[..end],
            None => self.rest,
        };
        self.rest = &[];
        core::str::from_utf8(s).map_err(|_| Errno::EINVAL)
    }

    /// Everything not taken yet (WRITE's value, which may hold NULs).
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.rest)
    }

    /// Every remaining NUL-terminated string (SET_PERMS' entries); a
    /// trailing piece without a NUL is malformed.
    pub fn strings(&mut self) -> Result<Vec<&'a str>, Errno> {
        let mut v = Vec::new();
        while !self.rest.is_empty() {
            v.push(self.text()?);
        }
        Ok(v)
    }
}

/// A decimal number as the protocol writes domids, ports and offsets:
/// digits only, no sign, in range.
pub fn number<T: TryFrom<u64>>(s: &str) -> Result<T, Errno> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Errno::EINVAL);
    }
    let n: u64 = s.parse().map_err(|_| Errno::EINVAL)?;
    T::try_from(n).map_err(|_| Errno::EINVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_message_is_header_then_body() {
        let m = message(2, 7, 9, b"abc");
        assert_eq!(Header::parse(&m), Header { ty: 2, req_id: 7, tx_id: 9, len: 3 });
        assert_eq!(&m[HEADER..], b"abc");
    }

    #[test]
    fn types_known_and_unknown() {
        assert_eq!(Type::from_u32(22), Some(Type::DirectoryPart));
        assert_eq!(Type::from_u32(20), None);
        assert_eq!(Type::from_u32(23), None);
        assert_eq!(Type::from_u32(0xffff), None);
    }

    #[test]
    fn args_need_their_nuls() {
        let mut a = Args::new(b"p\0v\0al");
        assert_eq!(a.string(), Ok(&b"p"[..]));
        assert_eq!(a.rest(), b"v\0al");
        assert_eq!(Args::new(b"nonul").string(), Err(Errno::EINVAL));
        assert_eq!(Args::new(b"a\0b").strings(), Err(Errno::EINVAL));
        assert_eq!(Args::new(b"a\0b\0").strings(), Ok(alloc::vec!["a", "b"]));
        let mut d = Args::new(b"p\x0012");
        d.string().unwrap();
        assert_eq!(d.last_text(), Ok("12"));
    }

    #[test]
    fn numbers_are_plain_decimal_in_range() {
        assert_eq!(number::<u16>("65535"), Ok(65535));
        assert_eq!(number::<u16>("65536"), Err(Errno::EINVAL));
        assert_eq!(number::<u32>("-1"), Err(Errno::EINVAL));
        assert_eq!(number::<u32>(""), Err(Errno::EINVAL));
        assert_eq!(number::<u64>("99999999999999999999999"), Err(Errno::EINVAL));
    }
}
