//! HTTP/1.x for small servers: one request read and parsed by `httparse`
//! (no_std, zero-copy), one answer, close — what a status page or a
//! health check needs.

use alloc::string::String;

#[cfg(target_os = "none")]
pub use hw::*;

/// A request line, as far as a small server cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
}

/// What the head of a request says so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// Complete: the request line.
    Done(Request),
    /// More bytes needed.
    Partial,
    /// Not HTTP, or longer than the room for it: answer 400.
    Bad,
}

/// Parse the head of a request (`buf` is everything read so far; `full`
/// says no more will fit).
pub fn parse_head(buf: &[u8], full: bool) -> Head {
    let mut h = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Request::new(&mut h);
    match r.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            Head::Done(Request { method: String::from(r.method.unwrap_or("")), path: String::from(r.path.unwrap_or("")) })
        }
        Ok(httparse::Status::Partial) if !full => Head::Partial,
        _ => Head::Bad,
    }
}

#[cfg(target_os = "none")]
mod hw {
    use super::*;
    use alloc::format;
    use core::time::Duration;

    use crate::rt::net::{NetError, TcpStream};
    use crate::rt::time;

    /// Read one request's head (at most `N` bytes, within `within`). `None`:
    /// the peer sent nothing and closed, or was too slow; `Some(Err(()))`:
    /// a request came that is not HTTP (or too long, or cut short).
    pub async fn read_request<const N: usize>(s: &mut TcpStream, within: Duration) -> Option<Result<Request, ()>> {
        let (mut buf, mut len) = ([0u8; N], 0);
        let read = async {
            loop {
                match parse_head(&buf[..len], len == N) {
                    Head::Done(r) => return Some(Ok(r)),
                    Head::Bad => return Some(Err(())),
                    Head::Partial => {}
                }
                match s.read(&mut buf[len..]).await {
                    Ok(n @ 1..) => len += n,
                    _ => return (len > 0).then_some(Err(())),
                }
            }
        };
        time::timeout(within, read).await.ok().flatten()
    }

    /// Answer with `status` (`"200 OK"`), a content type and `body`, HTTP/1.0
    /// style (the connection closes after it); the bytes sent.
    pub async fn respond(s: &mut TcpStream, status: &str, content_type: &str, body: &str) -> Result<usize, NetError> {
        let out = format!(
            "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(out.as_bytes()).await?;
        Ok(out.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_partially_and_refuse_junk() {
        let r = Request { method: "GET".into(), path: "/status".into() };
        assert_eq!(parse_head(b"GET /status HTTP/1.0\r\nHost: x\r\n\r\n", false), Head::Done(r));
        assert_eq!(parse_head(b"GET /status HTTP/1.0\r\nHo", false), Head::Partial);
        assert_eq!(parse_head(b"GET /status HTTP/1.0\r\nHo", true), Head::Bad);
        assert_eq!(parse_head(b"\x00\x01 junk\r\n\r\n", false), Head::Bad);
        assert_eq!(parse_head(b"", false), Head::Partial);
    }
}
